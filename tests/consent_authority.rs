//! Who may change a patient's consent (issue 17, item 1), over HTTP on SQLite and PostgreSQL: only an
//! organisation with a care relation to the patient records, changes or reads it (others get the same
//! 404 as for an unknown patient); a withdrawal stands, and a later permit of another care provider is
//! a conflict that keeps every route blocked until the party that withdrew lifts it or the patient's
//! renewed consent names the withdrawal; reading consent never names another organisation.

mod support_service;

use serde_json::{json, Value};
use support_service::*;

fn route0(answer: &Value) -> &Value {
    &answer["routes"][0]
}

/// A discharge handover sent by the unrelated organisation's client: after it, that organisation has
/// a care relation with the patient too (it sent an accepted handover).
fn from_stranger(record: Value) -> Value {
    let mut body = discharge(record);
    body["sender"]["organization"] = json!({"ura": STRANGER_URA, "name": "Thuiszorg Elders"});
    body
}

async fn status_of(h: &Harness, answer: &Value) -> Value {
    let (s, got) = h.get(HOSPITAL, &format!("/v1/handovers/{}", answer["id"].as_str().unwrap())).await;
    assert_eq!(s, 200, "{got:#}");
    route0(&got).clone()
}

/// The reported attack: A withdraws; B, by posting a handover of the patient, gains a relation and
/// records a permit. A's routes, old and new, stay blocked as a conflict; A lifting its own withdrawal
/// resolves it.
async fn another_providers_permit_does_not_override_a_withdrawal(h: &Harness) {
    let consent = format!("/v1/patients/{BSN}/consent");
    let first = h.hand_over(&discharge(record(BSN, Some("agreed")))).await;
    let (s, b) = h.delete(HOSPITAL, &consent).await;
    assert_eq!((s, b["decision"].as_str()), (200, Some("withdrawn")), "{b:#}");

    let (s, theirs) = h.post(STRANGER, "/v1/handovers", &from_stranger(record(BSN, Some("agreed")))).await;
    assert_eq!(s, 201, "{theirs:#}");
    assert_eq!(route0(&theirs)["status"], "blocked-consent", "the withdrawal holds for every sender");
    let (s, b) = h.put(STRANGER, &consent, &json!({"decision": "permit"})).await;
    assert_eq!(s, 200, "{b:#}");
    assert_eq!(b["decision"], "conflict", "{b:#}");

    let r = status_of(h, &first).await;
    assert_eq!(r["status"], "blocked-consent", "{r:#}");
    assert!(r["reason"].as_str().unwrap().contains("consent conflict"), "{r:#}");
    let next = h.hand_over(&discharge(record(BSN, Some("agreed")))).await;
    assert_eq!(route0(&next)["status"], "blocked-consent", "{next:#}");
    assert!(route0(&next)["reason"].as_str().unwrap().contains("consent conflict"), "{next:#}");
    assert!(!route0(&next)["reason"].as_str().unwrap().contains(STRANGER_URA), "the reason names no organisation");

    // The party that withdrew lifts its own withdrawal: the conflict is resolved.
    let (s, b) = h.put(HOSPITAL, &consent, &json!({"decision": "permit"})).await;
    assert_eq!((s, b["decision"].as_str()), (200, Some("permit")), "{b:#}");
    assert_eq!(status_of(h, &first).await["status"], "pending");
    assert_eq!(status_of(h, &next).await["status"], "pending");

    // Every decision is audited with who and why.
    let (s, log) = h.get(HOSPITAL, &format!("/v1/audit?patient={BSN}")).await;
    assert_eq!(s, 200);
    let entries = log["entries"].as_array().unwrap();
    let refused: Vec<&Value> = entries
        .iter()
        .filter(|e| e["gebeurtenis"]["gebeurteniscode"] == "consent-decision" && e["gebeurtenis"]["resultaat"] == "refused")
        .collect();
    assert!(refused.iter().any(|e| e.to_string().contains("consent conflict")), "the conflict decision is audited");
}

/// The patient's renewed consent, recorded by any party with a relation, resolves the conflict when it
/// names the withdrawal it supersedes; naming anything else is a 422.
async fn the_patients_renewed_consent_names_the_withdrawal_it_supersedes(h: &Harness) {
    let consent = format!("/v1/patients/{BSN}/consent");
    let first = h.hand_over(&discharge(record(BSN, Some("agreed")))).await;
    h.delete(HOSPITAL, &consent).await;
    let (s, _) = h.post(STRANGER, "/v1/handovers", &from_stranger(record(BSN, Some("agreed")))).await;
    assert_eq!(s, 201);
    let (_, b) = h.put(STRANGER, &consent, &json!({"decision": "permit"})).await;
    assert_eq!(b["decision"], "conflict", "{b:#}");
    let withdrawal = b["history"].as_array().unwrap().iter().find(|d| d["decision"] == "withdrawn").unwrap()["id"].clone();

    assert_eq!(b["deciding"], withdrawal, "the conflict rests on the withdrawal: {b:#}");

    // Not a standing withdrawal: refused with its location.
    let (s, e) = h.put(STRANGER, &consent, &json!({"decision": "permit", "renews": "999999"})).await;
    assert_eq!(s, 422, "{e:#}");
    assert_eq!(e["errors"][0]["pointer"], "/renews");
    let (s, _) = h.put(STRANGER, &consent, &json!({"decision": "deny", "renews": withdrawal})).await;
    assert_eq!(s, 422, "only a permit renews");

    let (s, b) = h.put(STRANGER, &consent, &json!({"decision": "permit", "renews": withdrawal})).await;
    assert_eq!(s, 200, "{b:#}");
    assert_eq!(b["decision"], "permit", "{b:#}");
    let w = b["history"].as_array().unwrap().iter().find(|d| d["id"] == withdrawal).unwrap().clone();
    assert_eq!(w["standing"], "superseded", "{w:#}");
    assert_eq!(status_of(h, &first).await["status"], "pending");

    // The renewal is in the audit trail as such.
    let (code, out, _) = h.cli(&["audit", "export", "--patient", BSN]);
    assert_eq!(code, 0);
    assert!(out.contains("the patient's renewed consent"), "{out}");

    // A new withdrawal stands again.
    let (_, b) = h.delete(HOSPITAL, &consent).await;
    assert_eq!(b["decision"], "withdrawn", "{b:#}");
    assert_eq!(status_of(h, &first).await["status"], "blocked-consent");
}

/// An organisation without a care relation can neither read, record nor withdraw consent, and the
/// answer is the same 404 as for a patient the gateway does not know.
async fn strangers_get_404_and_change_nothing(h: &Harness) {
    let consent = format!("/v1/patients/{BSN}/consent");
    let a = h.hand_over(&discharge(record(BSN, Some("agreed")))).await;
    let (_, unknown) = h.get(STRANGER, &format!("/v1/patients/{OTHER_BSN}/consent")).await;
    for (s, b) in [
        h.delete(STRANGER, &consent).await,
        h.put(STRANGER, &consent, &json!({"decision": "deny"})).await,
        h.put(STRANGER, &consent, &json!({"decision": "permit"})).await,
        h.get(STRANGER, &consent).await,
    ] {
        assert_eq!((s, &b), (404, &unknown), "{b:#}");
    }
    assert_eq!(status_of(h, &a).await["status"], "pending", "nothing a stranger did counts");
    let (s, _) = h.get(HOSPITAL, &consent).await;
    assert_eq!(s, 404, "nothing was recorded");

    // A recipient whose only route consent blocked has no relation either: the route never told it
    // the patient exists.
    let blocked = h.hand_over(&discharge(record(OTHER_BSN, Some("unknown")))).await;
    assert_eq!(route0(&blocked)["status"], "blocked-consent");
    let (s, _) = h.put(GP, &format!("/v1/patients/{OTHER_BSN}/consent"), &json!({"decision": "permit"})).await;
    assert_eq!(s, 404);
    assert_eq!(status_of(h, &blocked).await["status"], "blocked-consent");
}

/// Reading consent shows the decisions and their history, and names no other organisation: not who
/// recorded a decision, nor whom a provision names.
async fn reading_consent_names_no_other_organisation(h: &Harness) {
    let consent = format!("/v1/patients/{BSN}/consent");
    h.hand_over(&discharge(record(BSN, Some("agreed")))).await;
    let deny_for_one = json!({
        "resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "provision": {"type": "deny", "actor": [{"reference": {"identifier": {"system": "http://fhir.nl/fhir/NamingSystem/ura", "value": STRANGER_URA}}}]}
    });
    let (s, b) = h.put(HOSPITAL, &consent, &deny_for_one).await;
    assert_eq!(s, 200, "{b:#}");
    assert_eq!(b["history"][0]["recorded_by"], format!("ura:{HOSPITAL_URA}"), "the recorder sees its own name: {b:#}");
    assert_eq!(b["history"][0]["actors"], json!([format!("ura:{STRANGER_URA}")]));

    // The GP (its route is pending: a relation) reads the consent.
    let (s, b) = h.get(GP, &consent).await;
    assert_eq!(s, 200, "{b:#}");
    assert_eq!(b["decision"], "deny");
    assert_eq!(b["history"][0]["recorded_by"], "another care provider", "{b:#}");
    assert_eq!(b["history"][0]["applies_to"], "named care providers");
    assert!(b["summary"].as_str().unwrap().contains("another care provider"), "{b:#}");
    let text = b.to_string();
    assert!(!text.contains(HOSPITAL_URA) && !text.contains(STRANGER_URA), "no other organisation is named: {b:#}");
    let (s, _, fhir) = h.send(h.http.get(h.url(&consent)).bearer_auth(GP).header("accept", "application/fhir+json")).await;
    assert_eq!(s, 200);
    assert_eq!(fhir["resourceType"], "Consent");
    let text = fhir.to_string();
    assert!(!text.contains(HOSPITAL_URA) && !text.contains(STRANGER_URA), "nor in the FHIR form: {fhir:#}");
}

on_both_databases!(
    another_providers_permit_does_not_override_a_withdrawal,
    the_patients_renewed_consent_names_the_withdrawal_it_supersedes,
    strangers_get_404_and_change_nothing,
    reading_consent_names_no_other_organisation,
);
