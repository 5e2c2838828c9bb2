//! The gateway service over HTTP, on SQLite and on PostgreSQL: handovers, consent, idempotency,
//! access between organisations, operator actions, and bad input that must never give a 500.

mod support_service;

use serde_json::{json, Value};
use support_service::*;

fn routes(answer: &Value) -> Vec<Value> {
    answer["routes"].as_array().cloned().unwrap_or_default()
}

async fn discharge_with_agreement_is_pending_on_edifact(h: &Harness) {
    let resp = h
        .send(h.http.post(h.url("/v1/handovers")).bearer_auth(HOSPITAL).json(&discharge(record(BSN, Some("agreed")))))
        .await;
    assert_eq!(resp.0, 201, "{:#}", resp.2);
    let a = resp.2;
    let id = a["id"].as_str().unwrap();
    let rs = routes(&a);
    assert_eq!(rs.len(), 1, "{a:#}");
    assert_eq!(rs[0]["channel"], "edifact");
    assert_eq!(rs[0]["status"], "pending");
    assert_eq!(rs[0]["consent"]["permit"], true);
    assert_eq!(a["patient"]["bsn"], BSN);

    // Location, and the stored handover reads back the same.
    let r = h.http.post(h.url("/v1/handovers")).bearer_auth(HOSPITAL).json(&discharge(record(BSN, Some("agreed")))).send().await.unwrap();
    let location = r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap().to_owned();
    assert!(location.starts_with("/v1/handovers/"), "{location}");
    let (s, got) = h.get(HOSPITAL, &format!("/v1/handovers/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(got["routes"][0]["status"], "pending");
    assert_eq!(got["routes"][0]["attempts"], 0);

    // A recipient with a FHIR endpoint also gets the structured FHIR route.
    let mut body = discharge(record(BSN, Some("agreed")));
    body["recipients"][0]["endpoints"]["fhir"] = json!("https://gp.example/fhir");
    let a = h.hand_over(&body).await;
    let channels: Vec<&str> = a["routes"].as_array().unwrap().iter().map(|r| r["channel"].as_str().unwrap()).collect();
    assert_eq!(channels, ["edifact", "fhir"]);
}

/// Issue 11 item 6: a record with text the Edifact character set cannot carry is accepted, and the
/// 201 answer warns about that route (the letter itself opens with a note); a Dutch record has no
/// such warning.
async fn text_edifact_cannot_carry_is_a_warning_on_its_route(h: &Harness) {
    let mut r = record(BSN, Some("agreed"));
    r["care_wishes"] = json!("Familie spreekt Arabisch: عائلة 🙂");
    let resp = h.send(h.http.post(h.url("/v1/handovers")).bearer_auth(HOSPITAL).json(&discharge(r))).await;
    assert_eq!(resp.0, 201, "{:#}", resp.2);
    assert_eq!(routes(&resp.2)[0]["channel"], "edifact");
    let warnings = resp.2["warnings"].as_array().cloned().unwrap_or_default();
    let w = warnings
        .iter()
        .find(|w| w["pointer"] == "/recipients/0" && w["message"].as_str().unwrap_or("").contains("edifact route cannot carry"))
        .unwrap_or_else(|| panic!("no warning for the edifact route: {:#}", resp.2));
    assert_eq!(w["severity"], "warning");
    assert!(w["message"].as_str().unwrap().contains("6 distinct character(s)"), "{w}");
    // The route detail keeps saying it: the handover read back has the letter's note at that route.
    let id = resp.2["id"].as_str().unwrap();
    let (status, _, detail) = h.send(h.http.get(h.url(&format!("/v1/handovers/{id}"))).bearer_auth(HOSPITAL)).await;
    assert_eq!(status, 200, "{detail:#}");
    let notes = detail["warnings"].as_array().cloned().unwrap_or_default();
    assert!(
        notes.iter().any(|n| n["pointer"] == "/routes/0" && n["message"].as_str().unwrap_or("").contains("LET OP: 6 verschillende tekens")),
        "{detail:#}"
    );
    let plain = h.send(h.http.post(h.url("/v1/handovers")).bearer_auth(HOSPITAL).json(&discharge(record(BSN, Some("agreed"))))).await;
    assert_eq!(plain.0, 201);
    let text = plain.2["warnings"].to_string();
    assert!(!text.contains("edifact route cannot carry"), "{text}");
    let id = plain.2["id"].as_str().unwrap();
    let (_, _, detail) = h.send(h.http.get(h.url(&format!("/v1/handovers/{id}"))).bearer_auth(HOSPITAL)).await;
    assert!(!detail.to_string().contains("LET OP"), "{detail:#}");
}

async fn unknown_consent_blocks_every_route_and_spools_nothing(h: &Harness) {
    let mut body = discharge(record(BSN, Some("unknown")));
    body["recipients"][0]["endpoints"]["fhir"] = json!("https://gp.example/fhir");
    let a = h.hand_over(&body).await;
    let rs = routes(&a);
    assert_eq!(rs.len(), 2);
    for r in &rs {
        assert_eq!(r["status"], "blocked-consent", "{r:#}");
        assert!(r["reason"].as_str().unwrap().contains("Nog onbekend"), "{r:#}");
        assert_eq!(r["consent"]["permit"], false);
    }
    // Absent 8b blocks too.
    let a = h.hand_over(&discharge(record(BSN, None))).await;
    assert_eq!(routes(&a)[0]["status"], "blocked-consent");
    assert_eq!(h.spooled_files(), 0);
}

async fn an_invalid_record_is_422_with_every_location(h: &Harness) {
    let mut rec = record(BSN, Some("agreed"));
    rec["patient"]["bsn"] = json!("999990018");
    rec["treatment_limits"]["resuscitation"]["decision"] = json!("perhaps");
    let mut body = discharge(rec);
    body["context"] = json!("holiday");
    let (s, ct, b) = h.send(h.http.post(h.url("/v1/handovers")).bearer_auth(HOSPITAL).json(&body)).await;
    assert_eq!(s, 422, "{b:#}");
    assert!(ct.starts_with("application/problem+json"), "{ct}");
    assert_eq!(b["status"], 422);
    let pointers: Vec<&str> = b["errors"].as_array().unwrap().iter().map(|e| e["pointer"].as_str().unwrap()).collect();
    for p in ["/context", "/record/patient/bsn", "/record/treatment_limits/resuscitation/decision"] {
        assert!(pointers.iter().any(|x| x.starts_with(p)), "{p} in {pointers:?}");
    }
    assert!(b["errors"].as_array().unwrap().iter().all(|e| e["message"].as_str().is_some_and(|m| !m.is_empty())));

    // A FHIR client gets an OperationOutcome with the same problems.
    let (s, ct, b) = h
        .send(h.http.post(h.url("/v1/handovers")).bearer_auth(HOSPITAL).header("accept", "application/fhir+json").json(&body))
        .await;
    assert_eq!(s, 422);
    assert!(ct.starts_with("application/fhir+json"), "{ct}");
    assert_eq!(b["resourceType"], "OperationOutcome");
    assert!(b["issue"].as_array().unwrap().len() >= 3, "{b:#}");
}

async fn bsn_contradiction_and_missing_route_are_422(h: &Harness) {
    let mut body = discharge(record(BSN, Some("agreed")));
    body["patient"] = json!({"bsn": OTHER_BSN});
    let (s, b) = h.post(HOSPITAL, "/v1/handovers", &body).await;
    assert_eq!(s, 422, "{b:#}");
    assert_eq!(b["errors"][0]["pointer"], "/patient/bsn");

    // District nursing is no sender in the regional table.
    let mut body = discharge(record(BSN, Some("agreed")));
    body["sender"]["role"] = json!("wijkverpleging");
    let (s, b) = h.post(HOSPITAL, "/v1/handovers", &body).await;
    assert_eq!(s, 422, "{b:#}");
    assert_eq!(b["errors"][0]["pointer"], "/recipients/0/role");
    assert!(b["errors"][0]["message"].as_str().unwrap().contains("handover table"), "{b:#}");

    // A record without a BSN is completed by the envelope.
    let mut rec = record(BSN, Some("agreed"));
    rec["patient"].as_object_mut().unwrap().remove("bsn");
    let mut body = discharge(rec.clone());
    let (s, b) = h.post(HOSPITAL, "/v1/handovers", &body).await;
    assert_eq!(s, 422, "{b:#}");
    assert_eq!(b["errors"][0]["pointer"], "/patient/bsn");
    body["patient"] = json!({"bsn": BSN});
    let a = h.hand_over(&body).await;
    assert_eq!(a["patient"]["bsn"], BSN);
}

async fn idempotent_resubmission_returns_the_same_answer(h: &Harness) {
    let body = discharge(record(BSN, Some("agreed")));
    let post = |key: &'static str, body: Value| {
        h.send(h.http.post(h.url("/v1/handovers")).bearer_auth(HOSPITAL).header("idempotency-key", key).json(&body))
    };
    let first = post("epd-msg-0001", body.clone()).await;
    assert_eq!(first.0, 201, "{:#}", first.2);
    let again = post("epd-msg-0001", body.clone()).await;
    assert_eq!(again.0, 201);
    assert_eq!(again.2, first.2, "the same answer, byte for byte");
    let (_, list) = h.get(HOSPITAL, &format!("/v1/handovers?patient={BSN}")).await;
    assert_eq!(list["handovers"].as_array().unwrap().len(), 1, "no second handover: {list:#}");

    let mut other = body.clone();
    other["context"] = json!("regular");
    let conflict = post("epd-msg-0001", other).await;
    assert_eq!(conflict.0, 409, "{:#}", conflict.2);
    assert!(conflict.1.starts_with("application/problem+json"));

    // Keys are per client: another client's same key is a new request.
    let (s, _) = h.post(GP, "/v1/handovers", &json!({})).await;
    assert_eq!(s, 422);
}

async fn organisations_see_only_their_own(h: &Harness) {
    let a = h.hand_over(&discharge(record(BSN, Some("agreed")))).await;
    let id = a["id"].as_str().unwrap();
    let path = format!("/v1/handovers/{id}");
    // The recipient sees the route addressed to it.
    let (s, b) = h.get(GP, &path).await;
    assert_eq!(s, 200, "{b:#}");
    // An unrelated organisation gets the same 404 as for a handover that does not exist.
    let (s, b) = h.get(STRANGER, &path).await;
    assert_eq!(s, 404, "{b:#}");
    let (s2, b2) = h.get(STRANGER, "/v1/handovers/00000000-0000-4000-8000-000000000000").await;
    assert_eq!((s2, &b2), (404, &b));
    let (_, list) = h.get(STRANGER, "/v1/handovers").await;
    assert_eq!(list["handovers"], json!([]));
    for (s, _) in [
        h.get(STRANGER, &format!("/v1/patients/{BSN}/consent")).await,
        h.get(STRANGER, &format!("/v1/audit?patient={BSN}")).await,
        h.put(STRANGER, &format!("/v1/patients/{BSN}/consent"), &json!({"decision": "permit"})).await,
        h.post(STRANGER, &format!("{path}/routes/{}/cancel", a["routes"][0]["id"].as_str().unwrap()), &json!({})).await,
    ] {
        assert_eq!(s, 404);
    }
    // A recipient does not see a route that consent blocks.
    let blocked = h.hand_over(&discharge(record(OTHER_BSN, Some("unknown")))).await;
    let (s, _) = h.get(GP, &format!("/v1/handovers/{}", blocked["id"].as_str().unwrap())).await;
    assert_eq!(s, 404);
}

/// A typo in a party's member (`endpionts`) would drop a route silently: it is refused with its
/// pointer, as an unknown member of the record is.
async fn unknown_party_members_are_422_with_their_pointer(h: &Harness) {
    let mut body = discharge(record(BSN, Some("agreed")));
    body["recipients"][0]["endpionts"] = json!({"fhir": "https://gp.example/fhir"});
    body["sender"]["organization"]["naam"] = json!("Ziekenhuis Test");
    let (s, b) = h.post(HOSPITAL, "/v1/handovers", &body).await;
    assert_eq!(s, 422, "{b:#}");
    let pointers: Vec<&str> = b["errors"].as_array().unwrap().iter().map(|e| e["pointer"].as_str().unwrap()).collect();
    assert!(pointers.contains(&"/recipients/0/endpionts"), "{pointers:?}");
    assert!(pointers.contains(&"/sender/organization/naam"), "{pointers:?}");
    assert_eq!(h.spooled_files(), 0);
}

/// A QuestionnaireResponse carries no BSN; with the BSN in the envelope's `patient`, the handover is
/// complete in that, and no "BSN not recorded" warning is given.
async fn a_questionnaire_with_the_bsn_in_the_envelope_gets_no_bsn_warning(h: &Harness) {
    let qr: Value = serde_json::from_str(
        &std::fs::read_to_string("../shared/reference/iknl-pzp-r4/resources/QuestionnaireResponse-HendrikHartman-20201001.json").unwrap(),
    )
    .unwrap();
    let mut body = discharge(qr);
    body["patient"] = json!({"bsn": BSN});
    let a = h.hand_over(&body).await;
    assert_eq!(a["patient"]["bsn"], BSN);
    let warnings = a["warnings"].as_array().cloned().unwrap_or_default();
    assert!(
        !warnings.iter().any(|w| w["message"].as_str().unwrap_or("").contains("BSN")),
        "no BSN warning when the envelope gives it: {warnings:#?}"
    );
}

async fn no_token_is_401(h: &Harness) {
    let (s, ct, b) = h.send(h.http.post(h.url("/v1/handovers")).json(&discharge(record(BSN, Some("agreed"))))).await;
    assert_eq!(s, 401);
    assert!(ct.starts_with("application/problem+json"), "{ct}");
    assert_eq!(b["status"], 401);
    let r = h.http.get(h.url("/v1/handovers")).bearer_auth("not-a-token").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers().get("www-authenticate").unwrap(), "Bearer");
}

async fn consent_withdrawal_blocks_pending_routes(h: &Harness) {
    let a = h.hand_over(&discharge(record(BSN, Some("agreed")))).await;
    let other_patient = h.hand_over(&discharge(record(OTHER_BSN, Some("agreed")))).await;
    let id = a["id"].as_str().unwrap();
    let consent = format!("/v1/patients/{BSN}/consent");
    let (s, _) = h.get(HOSPITAL, &consent).await;
    assert_eq!(s, 404, "nothing recorded yet");

    let (s, b) = h.delete(HOSPITAL, &consent).await;
    assert_eq!(s, 200, "{b:#}");
    assert_eq!(b["decision"], "withdrawn");
    let (_, got) = h.get(HOSPITAL, &format!("/v1/handovers/{id}")).await;
    assert_eq!(got["routes"][0]["status"], "blocked-consent", "{got:#}");
    assert!(got["routes"][0]["reason"].as_str().unwrap().contains("withdrawn"));
    // Another patient's route is untouched.
    let (_, other) = h.get(HOSPITAL, &format!("/v1/handovers/{}", other_patient["id"].as_str().unwrap())).await;
    assert_eq!(other["routes"][0]["status"], "pending");
    // A new handover of the patient is blocked from the start, 8b "agreed" notwithstanding.
    let later = h.hand_over(&discharge(record(BSN, Some("agreed")))).await;
    assert_eq!(later["routes"][0]["status"], "blocked-consent");

    // An explicit permit (FHIR Consent, scope patient-privacy) releases them again.
    let fhir = json!({
        "resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "patient": {"identifier": {"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": BSN}},
        "provision": {"type": "permit"}
    });
    let (s, b) = h.put(HOSPITAL, &consent, &fhir).await;
    assert_eq!(s, 200, "{b:#}");
    assert_eq!(b["decision"], "permit");
    let (_, got) = h.get(HOSPITAL, &format!("/v1/handovers/{id}")).await;
    assert_eq!(got["routes"][0]["status"], "pending", "{got:#}");
    // GET as FHIR.
    let (s, _, c) = h.send(h.http.get(h.url(&consent)).bearer_auth(GP).header("accept", "application/fhir+json")).await;
    assert_eq!(s, 200);
    assert_eq!(c["resourceType"], "Consent");
    assert_eq!(c["scope"]["coding"][0]["code"], "patient-privacy");

    // An ACP treatment Consent is not a sharing consent.
    let mut treatment = fhir.clone();
    treatment["scope"]["coding"][0]["code"] = json!("treatment");
    let (s, b) = h.put(HOSPITAL, &consent, &treatment).await;
    assert_eq!(s, 422, "{b:#}");
    assert_eq!(b["errors"][0]["pointer"], "/scope");

    // A simple deny blocks again; every decision is in the patient's audit log.
    let (s, _) = h.put(HOSPITAL, &consent, &json!({"decision": "deny"})).await;
    assert_eq!(s, 200);
    let (_, got) = h.get(HOSPITAL, &format!("/v1/handovers/{id}")).await;
    assert_eq!(got["routes"][0]["status"], "blocked-consent");
    let (s, log) = h.get(HOSPITAL, &format!("/v1/audit?patient={BSN}")).await;
    assert_eq!(s, 200);
    let entries = log["entries"].as_array().unwrap();
    let decisions: Vec<&Value> = entries.iter().filter(|e| e["gebeurtenis"]["gebeurteniscode"] == "consent-decision").collect();
    assert!(decisions.iter().any(|e| e["gebeurtenis"]["resultaat"] == "success"));
    assert!(decisions.iter().any(|e| e["gebeurtenis"]["resultaat"] == "refused"));
    assert!(entries.iter().any(|e| e["gebeurtenis"]["gebeurteniscode"] == "consent-withdrawn"));
    assert!(entries.iter().all(|e| e["object"]["identificator"] == BSN));
}

async fn operator_retry_and_cancel(h: &Harness) {
    let a = h.hand_over(&discharge(record(BSN, Some("agreed")))).await;
    let id = a["id"].as_str().unwrap();
    let route = a["routes"][0]["id"].as_str().unwrap();
    let base = format!("/v1/handovers/{id}/routes/{route}");
    let (s, _) = h.post(HOSPITAL, &format!("{base}/retry"), &json!({})).await;
    assert_eq!(s, 409, "a pending route has nothing to retry");
    let (s, _) = h.post(GP, &format!("{base}/cancel"), &json!({})).await;
    assert_eq!(s, 403, "the recipient sees the route but cannot act on it");
    let (s, b) = h.post(HOSPITAL, &format!("{base}/cancel"), &json!({})).await;
    assert_eq!(s, 200, "{b:#}");
    assert_eq!(b["status"], "cancelled");
    let (s, _) = h.post(HOSPITAL, &format!("{base}/cancel"), &json!({})).await;
    assert_eq!(s, 409);
    let (s, b) = h.post(HOSPITAL, &format!("{base}/retry"), &json!({})).await;
    assert_eq!(s, 200, "{b:#}");
    assert_eq!(b["status"], "pending");
    let (s, _) = h.post(HOSPITAL, &format!("/v1/handovers/{id}/routes/nope/retry"), &json!({})).await;
    assert_eq!(s, 404);
    let (_, log) = h.get(HOSPITAL, &format!("/v1/audit?patient={BSN}")).await;
    let codes: Vec<&str> = log["entries"].as_array().unwrap().iter().filter_map(|e| e["gebeurtenis"]["gebeurteniscode"].as_str()).collect();
    assert!(codes.contains(&"operator-cancel") && codes.contains(&"operator-retry"), "{codes:?}");
}

async fn list_filters_by_patient_and_status(h: &Harness) {
    h.hand_over(&discharge(record(BSN, Some("agreed")))).await;
    h.hand_over(&discharge(record(OTHER_BSN, Some("unknown")))).await;
    let (s, b) = h.get(HOSPITAL, "/v1/handovers").await;
    assert_eq!(s, 200);
    assert_eq!(b["handovers"].as_array().unwrap().len(), 2);
    let (_, b) = h.get(HOSPITAL, "/v1/handovers?status=blocked-consent").await;
    assert_eq!(b["handovers"].as_array().unwrap().len(), 1);
    assert_eq!(b["handovers"][0]["patient"]["bsn"], OTHER_BSN);
    let (_, b) = h.get(HOSPITAL, &format!("/v1/handovers?patient={BSN}&status=pending")).await;
    assert_eq!(b["handovers"].as_array().unwrap().len(), 1);
    // The recipient lists only what consent lets it see.
    let (_, b) = h.get(GP, "/v1/handovers").await;
    assert_eq!(b["handovers"].as_array().unwrap().len(), 1);
}

/// Every kind of bad input gets a problem document with a 4xx status: never a 500.
async fn bad_input_never_gives_a_500(h: &Harness) {
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("application/json", b"".to_vec()),
        ("application/json", b"null".to_vec()),
        ("application/json", b"[]".to_vec()),
        ("application/json", b"42".to_vec()),
        ("application/json", b"\"record\"".to_vec()),
        ("application/json", b"{".to_vec()),
        ("application/json", b"{}".to_vec()),
        ("application/json", vec![0xff, 0xfe, 0x00, 0x7b]),
        ("application/json", deep.clone().into_bytes()),
        ("application/json", br#"{"record": 1, "sender": [], "recipients": {}, "context": 5}"#.to_vec()),
        ("application/json", br#"{"record": "<Bundle xmlns=\"http://hl7.org/fhir\"><unclosed>", "sender": {"role": "medisch-specialist"}, "recipients": [{"role": "huisarts"}], "context": "discharge"}"#.to_vec()),
        ("application/json", br#"{"record": "<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><x>&e;</x>", "sender": {"role": "medisch-specialist"}, "recipients": [{"role": "huisarts"}], "context": "discharge"}"#.to_vec()),
        ("application/json", br#"{"record": {"resourceType": 7}, "sender": {"role": "medisch-specialist"}, "recipients": [{"role": "huisarts"}], "context": "discharge"}"#.to_vec()),
        ("application/json", br#"{"record": {"resourceType": "Bundle", "entry": "x"}, "sender": {"role": "medisch-specialist"}, "recipients": [{"role": "huisarts"}], "context": "discharge"}"#.to_vec()),
        ("application/json", br#"{"record": {"patient": {"bsn": 12, "name": []}, "date_filled_in": "2025-13-45"}, "sender": {"role": "medisch-specialist", "organization": {"ura": "1", "agb": "2"}}, "recipients": [null, 1, {"role": null, "endpoints": 3}], "context": "discharge", "\u0000": 1}"#.to_vec()),
        ("application/json", br#"{"record": {}, "patient": {"bsn": "999990019"}, "sender": {"role": "medisch-specialist"}, "recipients": [{"role": "huisarts"}], "context": "discharge"}"#.to_vec()),
        ("application/fhir+json", b"{\"resourceType\": \"Consent\"}".to_vec()),
        ("application/json; charset=utf-8", serde_json::to_vec(&json!({"record": record(BSN, Some("agreed")), "sender": {"role": "medisch-specialist"}, "recipients": (0..60).map(|_| json!({"role": "huisarts"})).collect::<Vec<_>>(), "context": "discharge"})).unwrap()),
        ("text/plain", serde_json::to_vec(&discharge(record(BSN, Some("agreed")))).unwrap()),
        ("", b"{}".to_vec()),
        ("application/xml", b"<Bundle/>".to_vec()),
    ];
    for (ct, body) in bodies {
        let mut req = h.http.post(h.url("/v1/handovers")).bearer_auth(HOSPITAL).body(body.clone());
        if !ct.is_empty() {
            req = req.header("content-type", ct);
        }
        let (s, rct, b) = h.send(req).await;
        assert!(matches!(s, 400 | 413 | 415 | 422), "{ct} {:?}: {s} {b:#}", String::from_utf8_lossy(&body[..body.len().min(80)]));
        assert!(rct.contains("problem+json") || rct.contains("fhir+json"), "{s}: content type {rct}");
    }
    let (s, _, _) = h
        .send(h.http.post(h.url("/v1/handovers")).bearer_auth(HOSPITAL).header("content-type", "text/plain").body("x"))
        .await;
    assert_eq!(s, 415);

    // Over 16 MiB: 413 before anything else is looked at.
    let big = vec![b' '; 16 * 1024 * 1024 + 10];
    let (s, _, _) = h.send(h.http.post(h.url("/v1/handovers")).bearer_auth(HOSPITAL).header("content-type", "application/json").body(big)).await;
    assert_eq!(s, 413);

    // Bad idempotency keys, paths, queries, methods.
    let (s, _, _) = h
        .send(h.http.post(h.url("/v1/handovers")).bearer_auth(HOSPITAL).header("idempotency-key", "x".repeat(300)).json(&json!({})))
        .await;
    assert_eq!(s, 400);
    for path in [
        "/v1/handovers?patient=12345",
        "/v1/handovers?status=lost",
        "/v1/handovers?limit=-1",
        "/v1/handovers?limit=99999999999999999999",
        "/v1/handovers?patient=%ZZ",
        "/v1/audit",
        "/v1/audit?patient=abc",
        "/v1/patients/123/consent",
        "/v1/patients/%F0%9F%92%A9/consent",
        "/v1/handovers/'%20OR%201=1--",
        "/v1/handovers/..%2F..%2Fetc%2Fpasswd",
        "/v1/nothing-here",
    ] {
        let (s, _, b) = h.send(h.http.get(h.url(path)).bearer_auth(HOSPITAL)).await;
        assert!(matches!(s, 400 | 404 | 422), "{path}: {s} {b:#}");
    }
    let (s, _, _) = h.send(h.http.patch(h.url("/v1/handovers")).bearer_auth(HOSPITAL)).await;
    assert_eq!(s, 405);
    for body in [json!(null), json!({"decision": "maybe"}), json!({"resourceType": "Consent", "scope": 5}), json!({"decision": "deny", "x": 1})] {
        let (s, b) = h.put(HOSPITAL, &format!("/v1/patients/{BSN}/consent"), &body).await;
        assert!(matches!(s, 400 | 422), "{body}: {s} {b:#}");
    }
    let (s, _, _) = h
        .send(h.http.put(h.url(&format!("/v1/patients/{BSN}/consent"))).bearer_auth(HOSPITAL).header("content-type", "application/json").body("{nope"))
        .await;
    assert_eq!(s, 400);
    let (s, _, _) = h.send(h.http.get(h.url("/readyz"))).await;
    assert_eq!(s, 200);
}

async fn operations_endpoints(h: &Harness) {
    h.hand_over(&discharge(record(BSN, Some("agreed")))).await;
    let (s, _, b) = h.send(h.http.get(h.url("/healthz"))).await;
    assert_eq!((s, &b["status"]), (200, &json!("ok")));
    let (s, _, b) = h.send(h.http.get(h.url("/readyz"))).await;
    assert_eq!((s, &b["status"]), (200, &json!("ready")));
    let (s, ct, text) = h.send(h.http.get(h.url("/metrics"))).await;
    assert_eq!(s, 200);
    assert!(ct.starts_with("text/plain"));
    let text = text.as_str().unwrap();
    for needle in [
        "acp_gateway_handovers_total{outcome=\"accepted\"} 1",
        "acp_gateway_routes{status=\"pending\"} 1",
        "acp_gateway_consent_decisions_total{decision=\"permit\"} 1",
        "acp_gateway_http_requests_total{method=\"POST\",route=\"/v1/handovers\",status=\"201\"} 1",
        "acp_gateway_audit_chain_length ",
    ] {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }
    assert!(!text.contains(BSN), "metrics never carry identifiers");
}

on_both_databases!(
    discharge_with_agreement_is_pending_on_edifact,
    text_edifact_cannot_carry_is_a_warning_on_its_route,
    unknown_consent_blocks_every_route_and_spools_nothing,
    an_invalid_record_is_422_with_every_location,
    bsn_contradiction_and_missing_route_are_422,
    idempotent_resubmission_returns_the_same_answer,
    organisations_see_only_their_own,
    no_token_is_401,
    unknown_party_members_are_422_with_their_pointer,
    a_questionnaire_with_the_bsn_in_the_envelope_gets_no_bsn_warning,
    consent_withdrawal_blocks_pending_routes,
    operator_retry_and_cancel,
    list_filters_by_patient_and_status,
    bad_input_never_gives_a_500,
    operations_endpoints,
);
