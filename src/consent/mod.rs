//! The consent gate: may this route's message go to this recipient?
//!
//! [`decide`] is the one function every stage asks: intake when a handover is accepted, the consent
//! API when the patient's consent changes, and the outbox just before each delivery attempt. It is pure:
//! the caller loads the stored consent and passes what the record says.
//!
//! The rule (interface.md "Consent rule"), in order:
//! 1. a consent withdrawn through the API denies everything;
//! 2. an explicit deny recorded through the API denies (for the recipients it names, or everyone);
//! 3. an explicit permit recorded through the API permits (for the recipients it names, or everyone);
//! 4. otherwise form item 8b decides: "Akkoord" (`agreed`, SNOMED 441898007) permits sharing with the
//!    care providers involved in this handover; "Nog onbekend" and an absent 8b deny.
//!
//! This is privacy consent (FHIR Consent scope `patient-privacy`) only. The ACP record's own
//! Consents (treatment directives, scope `treatment`; advance directives, scope `adr`) are record
//! content and never read here; a PUT of one is refused (see [`parse_input`]).

use serde_json::{json, Value};

use crate::record::{Bsn, SharingConsent};
use crate::service::model::OrgId;
use crate::validate::{IssueType, Location, Problem};

pub const SCOPE: &str = "patient-privacy";
const SCOPE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/consentscope";
const BSN_SYSTEM: &str = "http://fhir.nl/fhir/NamingSystem/bsn";

/// The patient's consent as recorded through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredDecision {
    Permit,
    Deny,
    Withdrawn,
}

impl StoredDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            StoredDecision::Permit => "permit",
            StoredDecision::Deny => "deny",
            StoredDecision::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<StoredDecision> {
        match s {
            "permit" => Some(StoredDecision::Permit),
            "deny" => Some(StoredDecision::Deny),
            "withdrawn" => Some(StoredDecision::Withdrawn),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredConsent {
    pub decision: StoredDecision,
    /// The organisations the provision names; `None` applies to everyone.
    pub actors: Option<Vec<OrgId>>,
    /// RFC 3339 end of the provision's period, if any.
    pub period_end: Option<String>,
    pub recorded_at: String,
}

impl StoredConsent {
    fn applies_to(&self, recipient: Option<&OrgId>, now: &str) -> bool {
        let in_period = self.period_end.as_deref().map_or(true, |end| now <= end);
        let actor = match (&self.actors, recipient) {
            (None, _) => true,
            (Some(list), Some(r)) => list.contains(r),
            (Some(_), None) => false,
        };
        in_period && actor
    }
}

/// The outcome for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentDecision {
    pub permit: bool,
    /// Why, in words an operator and the patient can read.
    pub reason: String,
    /// What the decision rested on (NEN 7513 toestemmingsprofiel): `api:withdrawn`, `api:deny`,
    /// `api:permit`, `8b:agreed`, `8b:unknown`, `8b:absent`.
    pub profile: &'static str,
}

/// Decides whether the record may be shared with `recipient` now.
pub fn decide(
    record_sharing_consent: Option<SharingConsent>,
    stored: Option<&StoredConsent>,
    recipient: Option<&OrgId>,
    now: &str,
) -> ConsentDecision {
    let deny = |profile, reason: String| ConsentDecision { permit: false, reason, profile };
    if let Some(s) = stored {
        match s.decision {
            StoredDecision::Withdrawn => {
                return deny("api:withdrawn", format!("the patient's consent to share was withdrawn on {}", s.recorded_at));
            }
            StoredDecision::Deny if s.applies_to(recipient, now) => {
                return deny("api:deny", format!("the patient refused sharing (recorded {})", s.recorded_at));
            }
            StoredDecision::Permit if s.applies_to(recipient, now) => {
                return ConsentDecision {
                    permit: true,
                    reason: format!("the patient's explicit permission to share (recorded {})", s.recorded_at),
                    profile: "api:permit",
                };
            }
            _ => {}
        }
    }
    match record_sharing_consent {
        Some(SharingConsent::Agreed) => ConsentDecision {
            permit: true,
            reason: "form item 8b 'Akkoord': the patient agreed to share with the care providers involved".into(),
            profile: "8b:agreed",
        },
        Some(SharingConsent::Unknown) => {
            deny("8b:unknown", "form item 8b is 'Nog onbekend': the patient has not (yet) agreed to sharing".into())
        }
        None => deny("8b:absent", "form item 8b (agreement to share) is not recorded, so nothing may be shared".into()),
    }
}

/// A consent as sent to `PUT /v1/patients/{bsn}/consent`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsentInput {
    pub decision: StoredDecision,
    pub actors: Option<Vec<OrgId>>,
    pub period_end: Option<String>,
    /// `fhir-consent` or `simple-json`.
    pub source: &'static str,
    pub resource: Option<Value>,
}

fn problem(pointer: &str, message: impl Into<String>) -> Problem {
    Problem::error(IssueType::Value, Location::JsonPointer(pointer.to_owned()), message)
}

/// Reads a consent body: a FHIR Consent with scope `patient-privacy`, or `{"decision": "permit"|"deny"}`.
pub fn parse_input(body: &Value, bsn: &Bsn) -> Result<ConsentInput, Vec<Problem>> {
    let Some(obj) = body.as_object() else {
        return Err(vec![problem("", "expected a JSON object: a FHIR Consent, or {\"decision\": \"permit\"|\"deny\"}")]);
    };
    if obj.get("resourceType").is_none() {
        let decision = match obj.get("decision").and_then(Value::as_str) {
            Some("permit") => StoredDecision::Permit,
            Some("deny") => StoredDecision::Deny,
            _ => return Err(vec![problem("/decision", "`decision` must be \"permit\" or \"deny\" (use DELETE to withdraw)")]),
        };
        let unknown: Vec<Problem> = obj
            .keys()
            .filter(|k| *k != "decision")
            .map(|k| problem(&format!("/{k}"), format!("unknown member `{k}`; the simple form has only `decision`")))
            .collect();
        if !unknown.is_empty() {
            return Err(unknown);
        }
        return Ok(ConsentInput { decision, actors: None, period_end: None, source: "simple-json", resource: None });
    }
    parse_fhir(body, bsn)
}

fn parse_fhir(v: &Value, bsn: &Bsn) -> Result<ConsentInput, Vec<Problem>> {
    let mut problems = Vec::new();
    if v.get("resourceType").and_then(Value::as_str) != Some("Consent") {
        return Err(vec![problem("/resourceType", "expected a FHIR Consent")]);
    }
    let scope_codes: Vec<&str> = v
        .pointer("/scope/coding")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().filter_map(|c| c.get("code").and_then(Value::as_str)).collect())
        .unwrap_or_default();
    if !scope_codes.contains(&SCOPE) {
        let what = if scope_codes.iter().any(|c| *c == "treatment" || *c == "adr") {
            format!(
                "this Consent has scope {:?}: that is ACP record content (a treatment or advance directive), \
                 which is sent inside a handover; the patient's sharing consent has scope `{SCOPE}` ({SCOPE_SYSTEM})",
                scope_codes
            )
        } else {
            format!("a sharing consent has scope `{SCOPE}` ({SCOPE_SYSTEM})")
        };
        problems.push(problem("/scope", what));
    }
    match v.get("status").and_then(Value::as_str) {
        Some("active") => {}
        _ => problems.push(problem("/status", "status must be `active`; to withdraw consent, DELETE it")),
    }
    if let Some(ids) = v.pointer("/patient/identifier") {
        let same = ids.get("system").and_then(Value::as_str) == Some(BSN_SYSTEM)
            && ids.get("value").and_then(Value::as_str).and_then(|s| Bsn::parse(s).ok()).as_ref() == Some(bsn);
        if !same {
            problems.push(problem("/patient/identifier", "the Consent's patient is not the BSN in the URL"));
        }
    }
    let decision = match v.pointer("/provision/type").and_then(Value::as_str) {
        Some("permit") => Some(StoredDecision::Permit),
        Some("deny") => Some(StoredDecision::Deny),
        _ => {
            problems.push(problem("/provision/type", "provision.type must be `permit` or `deny`"));
            None
        }
    };
    let mut actors = None;
    if let Some(list) = v.pointer("/provision/actor").and_then(Value::as_array) {
        let mut out = Vec::new();
        for (i, a) in list.iter().enumerate() {
            let ident = a.pointer("/reference/identifier");
            let system = ident.and_then(|x| x.get("system")).and_then(Value::as_str).unwrap_or("");
            let value = ident.and_then(|x| x.get("value")).and_then(Value::as_str).unwrap_or("");
            let org = match system {
                "http://fhir.nl/fhir/NamingSystem/ura" => OrgId::ura(value),
                "http://fhir.nl/fhir/NamingSystem/agb-z" | "http://fhir.nl/fhir/NamingSystem/agb" => OrgId::agb(value),
                _ => Err("an actor is identified by a URA or AGB identifier (reference.identifier)".into()),
            };
            match org {
                Ok(o) => out.push(o),
                Err(e) => problems.push(problem(&format!("/provision/actor/{i}/reference/identifier"), e)),
            }
        }
        if !out.is_empty() {
            actors = Some(out);
        }
    }
    let period_end = v.pointer("/provision/period/end").and_then(Value::as_str).map(str::to_owned);
    match (decision, problems.is_empty()) {
        (Some(decision), true) => {
            Ok(ConsentInput { decision, actors, period_end, source: "fhir-consent", resource: Some(v.clone()) })
        }
        _ => Err(problems),
    }
}

/// The stored consent as a FHIR Consent (scope `patient-privacy`).
pub fn to_fhir(bsn: &str, s: &StoredConsent, recorded_by: &OrgId) -> Value {
    let (status, provision_type) = match s.decision {
        StoredDecision::Permit => ("active", "permit"),
        StoredDecision::Deny => ("active", "deny"),
        StoredDecision::Withdrawn => ("inactive", "deny"),
    };
    let mut provision = json!({"type": provision_type});
    if let Some(actors) = &s.actors {
        provision["actor"] = actors
            .iter()
            .map(|a| json!({
                "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
                "reference": {"identifier": {"system": a.fhir_system(), "value": a.code()}},
            }))
            .collect();
    }
    if let Some(end) = &s.period_end {
        provision["period"] = json!({"end": end});
    }
    json!({
        "resourceType": "Consent",
        "status": status,
        "scope": {"coding": [{"system": SCOPE_SYSTEM, "code": SCOPE}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]}],
        "patient": {"identifier": {"system": BSN_SYSTEM, "value": bsn}},
        "dateTime": s.recorded_at,
        "organization": [{"identifier": {"system": recorded_by.fhir_system(), "value": recorded_by.code()}}],
        "policy": [{"uri": "urn:acp-gateway:policy:acp-sharing"}],
        "provision": provision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2025-06-02T10:00:00.000Z";

    fn stored(decision: StoredDecision, actors: Option<Vec<OrgId>>) -> StoredConsent {
        StoredConsent { decision, actors, period_end: None, recorded_at: NOW.into() }
    }

    #[test]
    fn eight_b_decides_when_nothing_is_recorded() {
        assert!(decide(Some(SharingConsent::Agreed), None, None, NOW).permit);
        assert!(!decide(Some(SharingConsent::Unknown), None, None, NOW).permit);
        assert!(!decide(None, None, None, NOW).permit);
    }

    #[test]
    fn withdrawal_and_deny_override_agreement() {
        let gp = OrgId::ura("12345678").unwrap();
        let w = stored(StoredDecision::Withdrawn, None);
        assert_eq!(decide(Some(SharingConsent::Agreed), Some(&w), Some(&gp), NOW).profile, "api:withdrawn");
        let d = stored(StoredDecision::Deny, None);
        assert!(!decide(Some(SharingConsent::Agreed), Some(&d), Some(&gp), NOW).permit);
        // A deny naming another organisation leaves this one to 8b.
        let other = stored(StoredDecision::Deny, Some(vec![OrgId::ura("87654321").unwrap()]));
        assert!(decide(Some(SharingConsent::Agreed), Some(&other), Some(&gp), NOW).permit);
    }

    #[test]
    fn an_explicit_permit_counts_until_it_expires() {
        let gp = OrgId::ura("12345678").unwrap();
        let mut p = stored(StoredDecision::Permit, None);
        assert!(decide(Some(SharingConsent::Unknown), Some(&p), Some(&gp), NOW).permit);
        p.period_end = Some("2025-01-01".into());
        assert!(!decide(Some(SharingConsent::Unknown), Some(&p), Some(&gp), NOW).permit);
    }

    #[test]
    fn a_treatment_consent_is_not_a_privacy_consent() {
        let bsn = Bsn::parse("999990019").unwrap();
        let body = json!({"resourceType": "Consent", "status": "active",
            "scope": {"coding": [{"system": SCOPE_SYSTEM, "code": "treatment"}]}, "provision": {"type": "deny"}});
        let err = parse_input(&body, &bsn).unwrap_err();
        assert!(err[0].message.contains("ACP record content"), "{err:?}");
        let ok = json!({"resourceType": "Consent", "status": "active",
            "scope": {"coding": [{"system": SCOPE_SYSTEM, "code": SCOPE}]},
            "patient": {"identifier": {"system": BSN_SYSTEM, "value": "999990019"}},
            "provision": {"type": "permit", "actor": [{"reference": {"identifier": {"system": "http://fhir.nl/fhir/NamingSystem/ura", "value": "12345678"}}}]}});
        let c = parse_input(&ok, &bsn).unwrap();
        assert_eq!(c.decision, StoredDecision::Permit);
        assert_eq!(c.actors, Some(vec![OrgId::ura("12345678").unwrap()]));
        assert_eq!(parse_input(&json!({"decision": "deny"}), &bsn).unwrap().decision, StoredDecision::Deny);
        assert!(parse_input(&json!({"decision": "maybe"}), &bsn).is_err());
    }
}
