//! A patient's consent decisions from several care providers, and which of them stand.
//!
//! Consent authority (interface.md "Consent rule", README "Consent"): only an organisation with a
//! care relation to the patient records, changes or reads the patient's consent (the service checks
//! the relation). Each such organisation is a *party*; the gateway keeps every decision (the history is
//! evidence) and combines them so that no party can silently undo another's protection:
//! - a party's latest decision replaces its own earlier ones (a party may always lift its own
//!   withdrawal);
//! - a withdrawal or refusal stands until the party that recorded it records something else, or until
//!   a permit recorded as **the patient's own renewed consent** names it (`renews`): that supersedes
//!   it, whoever records the renewal, and the renewal is audited as such;
//! - a permit recorded by another party *after* a standing withdrawal or refusal does not override
//!   it: the two are a **conflict**, which blocks the routes they concern until it is resolved in one
//!   of the two ways above.

use std::collections::{BTreeMap, BTreeSet};

use super::StoredDecision;
use crate::service::model::OrgId;

/// One decision as recorded through the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredConsent {
    /// The decision's id: increasing in the order of recording; shown by `GET .../consent` and named
    /// by a renewal.
    pub id: i64,
    pub decision: StoredDecision,
    /// The organisations the provision names; `None` applies to everyone.
    pub actors: Option<Vec<OrgId>>,
    /// RFC 3339 end of the provision's period, if any.
    pub period_end: Option<String>,
    pub recorded_at: String,
    /// The party (organisation id) that recorded it.
    pub recorded_by: String,
    /// For a permit recorded as the patient's renewed consent: the decision it supersedes.
    pub renews: Option<i64>,
}

impl StoredConsent {
    pub fn applies_to(&self, recipient: Option<&OrgId>, now: &str) -> bool {
        let in_period = self.period_end.as_deref().is_none_or(|end| now <= end);
        let actor = match (&self.actors, recipient) {
            (None, _) => true,
            (Some(list), Some(r)) => list.contains(r),
            (Some(_), None) => false,
        };
        in_period && actor
    }
}

/// Whether a decision still counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    InForce,
    /// The same party recorded a later decision.
    Replaced,
    /// A renewal of the patient's consent (this decision id) superseded it.
    Superseded(i64),
}

impl Standing {
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::InForce => "in-force",
            Standing::Replaced => "replaced",
            Standing::Superseded(_) => "superseded",
        }
    }
}

/// The patient's consent as a whole, for reading it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overall {
    Permit,
    Deny,
    Withdrawn,
    /// A permit recorded after another party's standing withdrawal or refusal.
    Conflict,
    /// Decisions were recorded, none stands: form item 8b decides.
    None,
}

impl Overall {
    pub fn as_str(self) -> &'static str {
        match self {
            Overall::Permit => "permit",
            Overall::Deny => "deny",
            Overall::Withdrawn => "withdrawn",
            Overall::Conflict => "conflict",
            Overall::None => "none",
        }
    }
}

/// Every decision recorded for one patient, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentHistory(Vec<StoredConsent>);

impl ConsentHistory {
    pub fn new(mut decisions: Vec<StoredConsent>) -> ConsentHistory {
        decisions.sort_by_key(|d| d.id);
        ConsentHistory(decisions)
    }

    pub fn all(&self) -> &[StoredConsent] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether decision `d` still counts.
    pub fn standing_of(&self, d: &StoredConsent) -> Standing {
        if let Some(r) = self.0.iter().find(|r| r.renews == Some(d.id) && r.decision == StoredDecision::Permit) {
            return Standing::Superseded(r.id);
        }
        if self.0.iter().any(|later| later.recorded_by == d.recorded_by && later.id > d.id) {
            return Standing::Replaced;
        }
        Standing::InForce
    }

    /// The decisions in force, oldest first: each party's latest, unless a renewal superseded it.
    pub fn standing(&self) -> Vec<&StoredConsent> {
        let superseded: BTreeSet<i64> =
            self.0.iter().filter(|r| r.decision == StoredDecision::Permit).filter_map(|r| r.renews).collect();
        let mut latest: BTreeMap<&str, &StoredConsent> = BTreeMap::new();
        for d in &self.0 {
            latest.insert(d.recorded_by.as_str(), d);
        }
        let mut v: Vec<&StoredConsent> = latest.into_values().filter(|d| !superseded.contains(&d.id)).collect();
        v.sort_by_key(|d| d.id);
        v
    }

    /// The decision with this id, if it stands and is a withdrawal or refusal (what a renewal may name).
    pub fn standing_stop(&self, id: i64) -> Option<&StoredConsent> {
        self.standing().into_iter().find(|d| d.id == id && d.decision.stops())
    }

    /// The consent as a whole (for everyone, ignoring which recipients a provision names), with the
    /// decision it rests on.
    pub fn overall(&self, now: &str) -> (Overall, Option<&StoredConsent>) {
        let standing: Vec<&StoredConsent> =
            self.standing().into_iter().filter(|d| d.period_end.as_deref().is_none_or(|end| now <= end)).collect();
        let stops: Vec<&StoredConsent> = standing.iter().copied().filter(|d| d.decision.stops()).collect();
        let permits: Vec<&StoredConsent> = standing.iter().copied().filter(|d| d.decision == StoredDecision::Permit).collect();
        if let Some((stop, _)) = conflict(&stops, &permits) {
            return (Overall::Conflict, Some(stop));
        }
        if let Some(w) = stops.iter().find(|d| d.decision == StoredDecision::Withdrawn) {
            return (Overall::Withdrawn, Some(w));
        }
        if let Some(d) = stops.first() {
            return (Overall::Deny, Some(d));
        }
        match permits.last() {
            Some(p) => (Overall::Permit, Some(p)),
            None => (Overall::None, None),
        }
    }
}

/// The first standing withdrawal or refusal that a later permit of another party contradicts, with
/// that permit.
pub fn conflict<'a>(stops: &[&'a StoredConsent], permits: &[&'a StoredConsent]) -> Option<(&'a StoredConsent, &'a StoredConsent)> {
    stops.iter().find_map(|s| permits.iter().find(|p| p.id > s.id && p.recorded_by != s.recorded_by).map(|p| (*s, *p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(id: i64, decision: StoredDecision, by: &str) -> StoredConsent {
        StoredConsent {
            id,
            decision,
            actors: None,
            period_end: None,
            recorded_at: format!("2025-06-0{id}T10:00:00Z"),
            recorded_by: by.into(),
            renews: None,
        }
    }

    const NOW: &str = "2025-06-09T00:00:00Z";

    #[test]
    fn a_later_permit_of_another_party_is_a_conflict_until_resolved() {
        let w = d(1, StoredDecision::Withdrawn, "ura:11111111");
        let p = d(2, StoredDecision::Permit, "ura:33333333");
        let h = ConsentHistory::new(vec![w.clone(), p.clone()]);
        assert_eq!(h.overall(NOW).0, Overall::Conflict);
        // The party that withdrew lifts its own withdrawal: resolved.
        let lifted = ConsentHistory::new(vec![w.clone(), p.clone(), d(3, StoredDecision::Permit, "ura:11111111")]);
        assert_eq!(lifted.overall(NOW).0, Overall::Permit);
        assert_eq!(lifted.standing_of(&w), Standing::Replaced);
        // The patient's renewed consent naming the withdrawal: resolved, whoever records it.
        let renewal = StoredConsent { renews: Some(1), ..d(3, StoredDecision::Permit, "ura:33333333") };
        let renewed = ConsentHistory::new(vec![w.clone(), p, renewal]);
        assert_eq!(renewed.overall(NOW).0, Overall::Permit);
        assert_eq!(renewed.standing_of(&w), Standing::Superseded(3));
        // A new withdrawal after the renewal stands again.
        let again = ConsentHistory::new(vec![renewed.all().to_vec(), vec![d(4, StoredDecision::Withdrawn, "ura:11111111")]].concat());
        assert_eq!(again.overall(NOW).0, Overall::Withdrawn);
    }

    #[test]
    fn an_earlier_permit_gives_way_to_a_withdrawal() {
        let h = ConsentHistory::new(vec![d(1, StoredDecision::Permit, "ura:11111111"), d(2, StoredDecision::Withdrawn, "ura:33333333")]);
        assert_eq!(h.overall(NOW).0, Overall::Withdrawn);
        assert_eq!(h.standing().len(), 2);
    }
}
