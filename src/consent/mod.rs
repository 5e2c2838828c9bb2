//! The consent gate: may this route's message go to this recipient?
//!
//! [`decide`] is the one function every stage asks: intake when a handover is accepted, the consent
//! API when the patient's consent changes, and the outbox just before each delivery attempt. It is pure:
//! the caller loads the patient's consent history ([`ConsentHistory`]) and passes what the record says.
//!
//! Who may record consent (the care relation, checked by the service) and how the decisions of
//! several care providers combine are in [`history`]. The rule (interface.md "Consent rule"), in order:
//! 1. a withdrawal that stands denies everything, and a refusal (deny) that stands denies the
//!    recipients it names (or everyone); a permit another care provider recorded *after* such a
//!    withdrawal or refusal does not override it: that is a **consent conflict**, which denies too;
//! 2. otherwise a permit that stands permits (for the recipients it names, or everyone);
//! 3. otherwise form item 8b decides: "Akkoord" (`agreed`, SNOMED 441898007) permits sharing with the
//!    care providers involved in this handover; "Nog onbekend" and an absent 8b deny.
//!
//! This is privacy consent (FHIR Consent scope `patient-privacy`) only. The ACP record's own
//! Consents (treatment directives, scope `treatment`; advance directives, scope `adr`) are record
//! content and never read here; a PUT of one is refused (see [`parse_input`]).

pub mod history;

use serde_json::{json, Value};

use crate::record::{Bsn, SharingConsent};
use crate::service::model::OrgId;
use crate::validate::{IssueType, Location, Problem};

pub use history::{ConsentHistory, Overall, Standing, StoredConsent};

pub const SCOPE: &str = "patient-privacy";
const SCOPE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/consentscope";
const BSN_SYSTEM: &str = "http://fhir.nl/fhir/NamingSystem/bsn";
/// The extension of a FHIR Consent that records it as the patient's own renewed consent, naming (by
/// its `id` in `GET .../consent`) the withdrawal or refusal it supersedes; `valueString`.
pub const RENEWS_EXTENSION: &str = "urn:acp-gateway:consent:renews";

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

    /// A withdrawal or a refusal: what a later permit of another care provider cannot override.
    pub fn stops(self) -> bool {
        self != StoredDecision::Permit
    }
}

/// The outcome for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentDecision {
    pub permit: bool,
    /// Why, in words an operator and the patient can read. Names no organisation: it is shown to the
    /// sending organisation, whoever recorded the consent.
    pub reason: String,
    /// What the decision rested on (NEN 7513 toestemmingsprofiel): `api:withdrawn`, `api:deny`,
    /// `api:conflict`, `api:permit`, `8b:agreed`, `8b:unknown`, `8b:absent`.
    pub profile: &'static str,
}

/// Decides whether the record may be shared with `recipient` now.
pub fn decide(
    record_sharing_consent: Option<SharingConsent>,
    history: &ConsentHistory,
    recipient: Option<&OrgId>,
    now: &str,
) -> ConsentDecision {
    let deny = |profile, reason: String| ConsentDecision { permit: false, reason, profile };
    let standing = history.standing();
    let stops: Vec<&StoredConsent> = standing
        .iter()
        .copied()
        .filter(|s| s.decision == StoredDecision::Withdrawn || (s.decision == StoredDecision::Deny && s.applies_to(recipient, now)))
        .collect();
    let permits: Vec<&StoredConsent> =
        standing.iter().copied().filter(|s| s.decision == StoredDecision::Permit && s.applies_to(recipient, now)).collect();
    if let Some((stop, permit)) = history::conflict(&stops, &permits) {
        return deny(
            "api:conflict",
            format!(
                "consent conflict: the patient's consent was {} by a care provider on {} (decision {}); a permit recorded \
                 later by another care provider (decision {}, {}) does not override it. Resolved when the care provider \
                 that {} records a permit, or by a permit recorded as the patient's renewed consent naming decision {}",
                if stop.decision == StoredDecision::Withdrawn { "withdrawn" } else { "refused" },
                stop.recorded_at,
                stop.id,
                permit.id,
                permit.recorded_at,
                if stop.decision == StoredDecision::Withdrawn { "withdrew it" } else { "recorded the refusal" },
                stop.id,
            ),
        );
    }
    if let Some(w) = stops.iter().find(|s| s.decision == StoredDecision::Withdrawn) {
        return deny("api:withdrawn", format!("the patient's consent to share was withdrawn on {} (decision {})", w.recorded_at, w.id));
    }
    if let Some(d) = stops.first() {
        return deny("api:deny", format!("the patient refused sharing (recorded {}, decision {})", d.recorded_at, d.id));
    }
    if let Some(p) = permits.last() {
        return ConsentDecision {
            permit: true,
            reason: format!("the patient's explicit permission to share (recorded {}, decision {})", p.recorded_at, p.id),
            profile: "api:permit",
        };
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
    /// A permit recorded as the patient's own renewed consent: the id of the withdrawal or refusal it
    /// supersedes (simple form `renews`; FHIR extension [`RENEWS_EXTENSION`]).
    pub renews: Option<i64>,
}

/// A decision id as a client names it: a JSON string or number of digits.
fn decision_id(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
    .filter(|n| *n > 0)
}

/// Checks a `renews` value: only a permit renews, and it names a decision id.
fn read_renews(v: Option<&Value>, decision: Option<StoredDecision>, pointer: &str, problems: &mut Vec<Problem>) -> Option<i64> {
    let v = v?;
    let id = decision_id(v);
    if id.is_none() {
        problems.push(problem(pointer, "names the withdrawal or refusal this renewed consent supersedes: its `id` from GET .../consent"));
    }
    if decision.is_some_and(|d| d != StoredDecision::Permit) {
        problems.push(problem(pointer, "only a permit can be the patient's renewed consent"));
    }
    id
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
        const SIMPLE: [&str; 2] = ["decision", "renews"];
        let decision = match obj.get("decision").and_then(Value::as_str) {
            Some("permit") => StoredDecision::Permit,
            Some("deny") => StoredDecision::Deny,
            _ => return Err(vec![problem("/decision", "`decision` must be \"permit\" or \"deny\" (use DELETE to withdraw)")]),
        };
        let mut problems: Vec<Problem> = obj
            .keys()
            .filter(|k| !SIMPLE.contains(&k.as_str()))
            .map(|k| problem(&format!("/{k}"), format!("unknown member `{k}`; the simple form has only `decision` and `renews`")))
            .collect();
        let renews = read_renews(obj.get("renews"), Some(decision), "/renews", &mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        return Ok(ConsentInput { decision, actors: None, period_end: None, source: "simple-json", resource: None, renews });
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
    let renewal = v.get("extension").and_then(Value::as_array).and_then(|exts| {
        exts.iter().position(|e| e.get("url").and_then(Value::as_str) == Some(RENEWS_EXTENSION)).map(|i| (i, &exts[i]))
    });
    let renews = renewal.and_then(|(i, e)| {
        read_renews(Some(e.get("valueString").unwrap_or(&Value::Null)), decision, &format!("/extension/{i}/valueString"), &mut problems)
    });
    match (decision, problems.is_empty()) {
        (Some(decision), true) => {
            Ok(ConsentInput { decision, actors, period_end, source: "fhir-consent", resource: Some(v.clone()), renews })
        }
        _ => Err(problems),
    }
}

/// The patient's consent as it stands, as a FHIR Consent (scope `patient-privacy`). `deciding` is the
/// decision it rests on; its organisation is named only when it is the reader's own (`viewer`).
pub fn to_fhir(bsn: &str, overall: Overall, deciding: Option<&StoredConsent>, viewer: &OrgId) -> Value {
    let (status, provision_type) = match overall {
        Overall::Permit => ("active", Some("permit")),
        Overall::Deny | Overall::Conflict => ("active", Some("deny")),
        Overall::Withdrawn => ("inactive", Some("deny")),
        Overall::None => ("inactive", None),
    };
    let mut c = json!({
        "resourceType": "Consent",
        "meta": {"tag": [{"system": "urn:acp-gateway:consent-state", "code": overall.as_str()}]},
        "status": status,
        "scope": {"coding": [{"system": SCOPE_SYSTEM, "code": SCOPE}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]}],
        "patient": {"identifier": {"system": BSN_SYSTEM, "value": bsn}},
        "policy": [{"uri": "urn:acp-gateway:policy:acp-sharing"}],
    });
    if let Some(t) = provision_type {
        c["provision"] = json!({"type": t});
    }
    if let Some(d) = deciding {
        c["dateTime"] = json!(d.recorded_at);
        if d.recorded_by == viewer.as_str() {
            c["organization"] = json!([{"identifier": {"system": viewer.fhir_system(), "value": viewer.code()}}]);
            if let Some(actors) = &d.actors {
                c["provision"]["actor"] = actors
                    .iter()
                    .map(|a| json!({
                        "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
                        "reference": {"identifier": {"system": a.fhir_system(), "value": a.code()}},
                    }))
                    .collect();
            }
        }
        if let (Some(end), Some(_)) = (&d.period_end, provision_type) {
            c["provision"]["period"] = json!({"end": end});
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2025-06-02T10:00:00.000Z";

    fn stored(decision: StoredDecision, actors: Option<Vec<OrgId>>) -> ConsentHistory {
        let one = StoredConsent { id: 1, decision, actors, period_end: None, recorded_at: NOW.into(), recorded_by: "ura:11111111".into(), renews: None };
        ConsentHistory::new(vec![one])
    }

    #[test]
    fn eight_b_decides_when_nothing_is_recorded() {
        let none = ConsentHistory::default();
        assert!(decide(Some(SharingConsent::Agreed), &none, None, NOW).permit);
        assert!(!decide(Some(SharingConsent::Unknown), &none, None, NOW).permit);
        assert!(!decide(None, &none, None, NOW).permit);
    }

    #[test]
    fn withdrawal_and_deny_override_agreement() {
        let gp = OrgId::ura("12345678").unwrap();
        let w = stored(StoredDecision::Withdrawn, None);
        assert_eq!(decide(Some(SharingConsent::Agreed), &w, Some(&gp), NOW).profile, "api:withdrawn");
        let d = stored(StoredDecision::Deny, None);
        assert!(!decide(Some(SharingConsent::Agreed), &d, Some(&gp), NOW).permit);
        // A deny naming another organisation leaves this one to 8b.
        let other = stored(StoredDecision::Deny, Some(vec![OrgId::ura("87654321").unwrap()]));
        assert!(decide(Some(SharingConsent::Agreed), &other, Some(&gp), NOW).permit);
    }

    #[test]
    fn an_explicit_permit_counts_until_it_expires() {
        let gp = OrgId::ura("12345678").unwrap();
        let p = stored(StoredDecision::Permit, None);
        assert!(decide(Some(SharingConsent::Unknown), &p, Some(&gp), NOW).permit);
        let mut expired = p.all()[0].clone();
        expired.period_end = Some("2025-01-01".into());
        assert!(!decide(Some(SharingConsent::Unknown), &ConsentHistory::new(vec![expired]), Some(&gp), NOW).permit);
    }

    #[test]
    fn another_partys_later_permit_is_a_conflict_that_denies() {
        let gp = OrgId::ura("12345678").unwrap();
        let mut all = stored(StoredDecision::Withdrawn, None).all().to_vec();
        all.push(StoredConsent { id: 2, decision: StoredDecision::Permit, recorded_by: "ura:33333333".into(), ..all[0].clone() });
        let d = decide(Some(SharingConsent::Agreed), &ConsentHistory::new(all), Some(&gp), NOW);
        assert!(!d.permit);
        assert_eq!(d.profile, "api:conflict");
        assert!(d.reason.contains("consent conflict") && !d.reason.contains("33333333"), "{}", d.reason);
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
