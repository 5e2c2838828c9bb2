//! The patient's sharing consent through the API: `PUT|GET|DELETE /v1/patients/{bsn}/consent`.
//!
//! Consent authority (README "Consent"): only an organisation with a care relation to the patient
//! ([`store::org_knows_patient`]) records, changes or reads the patient's consent; anyone else gets the
//! same 404 as for a patient the gateway does not know, so the answer never tells that the patient
//! exists. How the decisions of several care providers combine (a withdrawal stands, a later permit of
//! another party is a conflict) is [`consent::history`]'s rule; this module records decisions,
//! re-decides every route not yet delivered, and shows the history without naming other
//! organisations. Every decision, and every read, is an audit entry with who and why.

use serde_json::Value;

use super::views::{ConsentEntryView, ConsentView, PatientRef};
use super::{clock, sharing_from_key, ConsentState, Gateway, Result, ServiceError};
use crate::audit::{self, Action, AuditEvent, EventCode, Outcome};
use crate::consent::{self, ConsentHistory, Overall, Standing, StoredConsent, StoredDecision};
use crate::record::Bsn;
use crate::service::model::{Caller, OrgId, RouteStatus, Scope};
use crate::store::{self, ConsentRow, RouteUpdate};
use crate::validate::{IssueType, Location, Problem};

/// How another organisation is named to a reader: not at all.
const ANOTHER: &str = "another care provider";

/// A stored consent row as the consent gate reads it (`None` for a row it cannot read, which then
/// does not count: a stored decision is always one of the three the table's CHECK allows).
fn stored_consent(row: &ConsentRow) -> Option<StoredConsent> {
    Some(StoredConsent {
        id: row.id,
        decision: StoredDecision::parse(&row.decision)?,
        actors: row.actors_json.as_deref().and_then(|j| serde_json::from_str::<Vec<OrgId>>(j).ok()),
        period_end: row.period_end.clone(),
        recorded_at: row.recorded_at.clone(),
        recorded_by: row.recorded_by.clone(),
        renews: row.renews,
    })
}

/// The patient's consent history as the consent gate reads it.
pub(crate) async fn history<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(e: E, bsn: &str) -> std::result::Result<ConsentHistory, sqlx::Error> {
    Ok(ConsentHistory::new(store::patient_consents(e, bsn).await?.iter().filter_map(stored_consent).collect()))
}

fn who(d: &StoredConsent, viewer: &OrgId) -> String {
    if d.recorded_by == viewer.as_str() {
        viewer.to_string()
    } else {
        ANOTHER.to_owned()
    }
}

/// The consent as `viewer` may read it: the state, and each decision with its own party named only
/// when it is the viewer's.
fn consent_state(bsn: &str, h: &ConsentHistory, viewer: &OrgId, sources: &[ConsentRow], now: &str) -> ConsentState {
    let (overall, deciding) = h.overall(now);
    let by = |d: &StoredConsent| if d.recorded_by == viewer.as_str() { "this organisation" } else { ANOTHER };
    let summary = match (overall, deciding) {
        (Overall::Conflict, Some(d)) => format!(
            "consent conflict: {} by {} on {} (decision {}), and a permit recorded later by another party does not override it; \
             routes stay blocked until the party that {} records a permit, or a permit recorded as the patient's renewed \
             consent names decision {}",
            if d.decision == StoredDecision::Withdrawn { "withdrawn" } else { "refused" },
            by(d),
            d.recorded_at,
            d.id,
            if d.decision == StoredDecision::Withdrawn { "withdrew" } else { "refused" },
            d.id
        ),
        (Overall::Withdrawn, Some(d)) => format!("withdrawn by {} on {} (decision {})", by(d), d.recorded_at, d.id),
        (Overall::Deny, Some(d)) => format!("sharing refused, recorded by {} on {} (decision {})", by(d), d.recorded_at, d.id),
        (Overall::Permit, Some(d)) => format!("sharing permitted, recorded by {} on {} (decision {})", by(d), d.recorded_at, d.id),
        _ => "no recorded decision stands: form item 8b of each handover decides".to_owned(),
    };
    let history = h
        .all()
        .iter()
        .map(|d| {
            let standing = h.standing_of(d);
            let own = d.recorded_by == viewer.as_str();
            ConsentEntryView {
                id: d.id.to_string(),
                decision: d.decision.as_str().to_owned(),
                standing: standing.as_str().to_owned(),
                superseded_by: match standing {
                    Standing::Superseded(by) => Some(by.to_string()),
                    _ => None,
                },
                renews: d.renews.map(|r| r.to_string()),
                source: sources.iter().find(|r| r.id == d.id).map(|r| r.source.clone()).unwrap_or_default(),
                recorded_at: d.recorded_at.clone(),
                recorded_by: who(d, viewer),
                applies_to: if d.actors.is_some() { "named care providers" } else { "everyone" }.to_owned(),
                actors: d.actors.as_ref().filter(|_| own).map(|a| a.iter().map(ToString::to_string).collect()),
                period_end: d.period_end.clone(),
            }
        })
        .collect();
    ConsentState {
        view: ConsentView {
            patient: PatientRef { bsn: bsn.to_owned() },
            decision: overall.as_str().to_owned(),
            scope: consent::SCOPE.to_owned(),
            summary,
            deciding: deciding.map(|d| d.id.to_string()),
            history,
        },
        fhir: consent::to_fhir(bsn, overall, deciding, viewer),
    }
}

impl Gateway {
    fn parse_bsn(raw: &str) -> Result<Bsn> {
        Bsn::parse(raw).map_err(|e| ServiceError::Malformed(format!("the BSN in the path: {e}")))
    }

    /// `GET /v1/patients/{bsn}/consent`: for organisations with a care relation to the patient; anyone
    /// else gets 404, as when nothing is recorded.
    pub async fn consent(&self, caller: &Caller, bsn: &str) -> Result<ConsentState> {
        Self::require(caller, Scope::ConsentRead)?;
        let bsn = Self::parse_bsn(bsn)?;
        if !store::org_knows_patient(self.db.reader(), caller.org.as_str(), bsn.as_str()).await? {
            return Err(ServiceError::NotFound);
        }
        let rows = store::patient_consents(self.db.reader(), bsn.as_str()).await?;
        let h = ConsentHistory::new(rows.iter().filter_map(stored_consent).collect());
        if h.is_empty() {
            return Err(ServiceError::NotFound);
        }
        let now = clock::now();
        let state = consent_state(bsn.as_str(), &h, &caller.org, &rows, &now);
        let event = AuditEvent {
            patient_id_type: Some("BSN".into()),
            patient_id: Some(bsn.as_str().to_owned()),
            object_type: "consent".into(),
            consent_profile: Some(format!("api:{}", state.view.decision)),
            outcome_description: Some(format!("sharing consent read: {}", state.view.decision)),
            ..self.event(caller, Scope::ConsentRead, EventCode::PatientRead, Action::R, Outcome::Success, &now)
        };
        self.append_alone(&[event]).await?;
        Ok(state)
    }

    /// `PUT /v1/patients/{bsn}/consent`: a permit or a refusal, by an organisation with a care
    /// relation to the patient (else 404). A permit may be the patient's renewed consent, naming the
    /// withdrawal or refusal it supersedes (`renews`).
    pub async fn put_consent(&self, caller: &Caller, bsn: &str, body: &[u8]) -> Result<ConsentState> {
        Self::require(caller, Scope::ConsentWrite)?;
        let bsn = Self::parse_bsn(bsn)?;
        let value = super::read_body(body)?;
        let input = consent::parse_input(&value, &bsn)
            .map_err(|problems| ServiceError::Invalid { title: "the consent cannot be recorded".into(), problems })?;
        let actors_json = input.actors.as_ref().map(|a| serde_json::to_string(a).unwrap_or_default());
        let resource_json = input.resource.as_ref().map(Value::to_string);
        let new = NewDecision {
            decision: input.decision,
            actors_json: actors_json.as_deref(),
            period_end: input.period_end.as_deref(),
            source: input.source,
            resource_json: resource_json.as_deref(),
            renews: input.renews,
            renews_pointer: if input.source == "fhir-consent" { "/extension" } else { "/renews" },
        };
        self.record_consent(caller, &bsn, &new).await
    }

    /// `DELETE /v1/patients/{bsn}/consent`: the patient withdraws consent, through an organisation
    /// with a care relation (else 404). Recorded as a withdrawal (never a deletion: the history is
    /// evidence), which blocks every route not yet delivered, whoever sent it.
    pub async fn withdraw_consent(&self, caller: &Caller, bsn: &str) -> Result<ConsentState> {
        Self::require(caller, Scope::ConsentWrite)?;
        let bsn = Self::parse_bsn(bsn)?;
        let new = NewDecision {
            decision: StoredDecision::Withdrawn,
            actors_json: None,
            period_end: None,
            source: "api-delete",
            resource_json: None,
            renews: None,
            renews_pointer: "",
        };
        self.record_consent(caller, &bsn, &new).await
    }

    async fn record_consent(&self, caller: &Caller, bsn: &Bsn, new: &NewDecision<'_>) -> Result<ConsentState> {
        let now = clock::now();
        let scope = Scope::ConsentWrite;
        let mut tx = self.db.begin().await?;
        audit::lock(&mut tx, self.db.backend).await?;
        // The relation is checked inside the transaction, after the lock: no handover can change it
        // in between.
        if !store::org_knows_patient(&mut *tx, caller.org.as_str(), bsn.as_str()).await? {
            return Err(ServiceError::NotFound);
        }
        let before = history(&mut *tx, bsn.as_str()).await?;
        let renewed = match new.renews {
            None => None,
            Some(id) => Some(before.standing_stop(id).cloned().ok_or_else(|| ServiceError::Invalid {
                title: "the consent cannot be recorded".into(),
                problems: vec![Problem::error(
                    IssueType::Value,
                    Location::JsonPointer(new.renews_pointer.to_owned()),
                    format!("decision {id} is not a withdrawal or refusal of this patient that stands (see GET .../consent)"),
                )],
            })?),
        };
        store::insert_consent(
            &mut tx,
            &store::NewConsent {
                patient_bsn: bsn.as_str(),
                decision: new.decision.as_str(),
                scope: consent::SCOPE,
                actors_json: new.actors_json,
                period_end: new.period_end,
                source: new.source,
                resource_json: new.resource_json,
                recorded_by: caller.org.as_str(),
                recorded_client: &caller.client_id,
                recorded_at: &now,
                renews: new.renews,
            },
        )
        .await?;
        let rows = store::patient_consents(&mut *tx, bsn.as_str()).await?;
        let h = ConsentHistory::new(rows.iter().filter_map(stored_consent).collect());
        let recorded = h.all().last().cloned().ok_or(ServiceError::NotFound)?;
        let state = consent_state(bsn.as_str(), &h, &caller.org, &rows, &now);

        // Why, for the audit trail: what was recorded, what it renews, and where that leaves the
        // patient's consent. Other parties appear by decision id only.
        let mut why = format!("sharing consent recorded: {} ({}), decision {}", new.decision.as_str(), new.source, recorded.id);
        if let Some(r) = &renewed {
            why.push_str(&format!(
                "; recorded as the patient's renewed consent, superseding the {} of {} (decision {})",
                r.decision.as_str(),
                r.recorded_at,
                r.id
            ));
        }
        why.push_str(&format!("; consent now {}", state.view.decision));
        let mut events = vec![AuditEvent {
            patient_id_type: Some("BSN".into()),
            patient_id: Some(bsn.as_str().to_owned()),
            object_type: "consent".into(),
            object_id: Some(recorded.id.to_string()),
            consent_profile: Some(format!("api:{}", new.decision.as_str())),
            outcome_description: Some(why),
            ..self.event(
                caller,
                scope,
                if new.decision == StoredDecision::Withdrawn { EventCode::ConsentWithdrawn } else { EventCode::ConsentRecorded },
                if new.decision == StoredDecision::Withdrawn { Action::D } else { Action::U },
                Outcome::Success,
                &now,
            )
        }];

        // Every route not yet delivered is decided anew, whoever sent it: a deny or a conflict blocks
        // it, a permit releases a blocked one. Each decision is audited, whether or not it changes the
        // route.
        let mut statuses: Vec<&str> = RouteStatus::WITHDRAWABLE.iter().map(|s| s.as_str()).collect();
        statuses.push(RouteStatus::BlockedConsent.as_str());
        let affected = store::patient_routes_in(&mut tx, self.db.backend, bsn.as_str(), &statuses).await?;
        let mut changed = 0usize;
        for (route, sharing) in &affected {
            let org = route.recipient_org.as_deref().and_then(|o| OrgId::try_from(o.to_owned()).ok());
            let d = consent::decide(sharing_from_key(sharing.as_deref()), &h, org.as_ref(), &now);
            events.push(self.consent_event(caller, scope, &now, bsn.as_str(), route, &d));
            let from = RouteStatus::parse(&route.status).unwrap_or(RouteStatus::Pending);
            let to = match (from, d.permit) {
                (RouteStatus::BlockedConsent, true) => Some(RouteStatus::Pending),
                (f, false) if f != RouteStatus::BlockedConsent => Some(RouteStatus::BlockedConsent),
                _ => None,
            };
            let reason = (!d.permit).then_some(d.reason.as_str());
            if let Some(to) = to {
                let next = (to == RouteStatus::Pending).then_some(now.as_str());
                let update = RouteUpdate { status: to.as_str(), reason, consent: Some((d.permit, &d.reason)), next_attempt_at: next, now: &now };
                store::update_route(&mut tx, &route.id, &update).await?;
                events.push(self.status_event(caller, scope, &now, bsn.as_str(), route, Some(from.as_str()), to, reason));
                changed += 1;
            } else {
                // Still blocked (perhaps now for another reason, such as a conflict): the reason shown
                // is the current one.
                let update = RouteUpdate {
                    status: from.as_str(),
                    reason: if d.permit { route.reason.as_deref() } else { reason },
                    consent: Some((d.permit, &d.reason)),
                    next_attempt_at: route.next_attempt_at.as_deref(),
                    now: &now,
                };
                store::update_route(&mut tx, &route.id, &update).await?;
            }
        }
        audit::append(&mut tx, &self.db, &events).await?;
        let released = affected.iter().any(|(r, _)| r.status == RouteStatus::BlockedConsent.as_str()) && changed > 0;
        if released {
            store::outbox::announce_due(&mut tx, self.db.backend).await?;
        }
        self.db.commit(tx).await?;
        if released {
            self.wake.notify_waiters();
        }
        tracing::info!(decision = new.decision.as_str(), state = %state.view.decision, routes_changed = changed, "sharing consent recorded");
        Ok(state)
    }
}

/// A decision to record, as the endpoints read it.
struct NewDecision<'a> {
    decision: StoredDecision,
    actors_json: Option<&'a str>,
    period_end: Option<&'a str>,
    source: &'a str,
    resource_json: Option<&'a str>,
    renews: Option<i64>,
    /// Where in the body `renews` was, for a 422.
    renews_pointer: &'a str,
}
