//! The service at the edges: a JSON body that gives a key twice is refused with the key's pointer, on
//! intake and on consent, so "the last one wins" can never turn a "Niet uitvoeren" into "Wel uitvoeren"
//! or a withdrawal into a permit.

mod support_service;

use support_service::*;

async fn a_repeated_key_in_a_handover_body_is_refused_with_its_pointer(h: &Harness) {
    let body = serde_json::to_string(&discharge(record(BSN, Some("agreed")))).unwrap();
    let forged = body.replacen(r#""decision":"do-not-perform""#, r#""decision":"do-not-perform","decision":"perform""#, 1);
    assert_ne!(body, forged, "the record has a resuscitation decision to repeat");
    let (status, _, answer) = h
        .send(h.http.post(h.url("/v1/handovers")).bearer_auth(HOSPITAL).header("content-type", "application/json").body(forged))
        .await;
    assert_eq!(status, 422, "{answer:#}");
    let pointers: Vec<&str> = answer["errors"].as_array().unwrap().iter().filter_map(|e| e["pointer"].as_str()).collect();
    assert_eq!(pointers, ["/record/treatment_limits/resuscitation/decision"], "{answer:#}");
    assert_eq!(h.spooled_files(), 0);

    // A repeated envelope member is refused the same way.
    let forged = body.replacen(r#""context":"discharge""#, r#""context":"discharge","context":"referral""#, 1);
    let (status, _, answer) = h
        .send(h.http.post(h.url("/v1/handovers")).bearer_auth(HOSPITAL).header("content-type", "application/json").body(forged))
        .await;
    assert_eq!(status, 422, "{answer:#}");
    assert_eq!(answer["errors"][0]["pointer"], "/context", "{answer:#}");
}

async fn a_repeated_consent_decision_is_refused(h: &Harness) {
    h.hand_over(&discharge(record(BSN, Some("agreed")))).await;
    let (status, _, answer) = h
        .send(
            h.http
                .put(h.url(&format!("/v1/patients/{BSN}/consent")))
                .bearer_auth(HOSPITAL)
                .header("content-type", "application/json")
                .body(r#"{"decision": "deny", "decision": "permit"}"#),
        )
        .await;
    assert_eq!(status, 422, "{answer:#}");
    assert_eq!(answer["errors"][0]["pointer"], "/decision", "{answer:#}");
}

on_both_databases!(a_repeated_key_in_a_handover_body_is_refused_with_its_pointer, a_repeated_consent_decision_is_refused);
