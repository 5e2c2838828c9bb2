//! The NEN 7513 audit trail end to end, on SQLite and PostgreSQL: entries for what happened, the
//! hash chain verified by the real `acp-gateway audit verify`, which must find a changed, a deleted
//! and a reordered entry; and `audit export` in NEN 7513 JSON and as IHE BALP AuditEvents.

mod support_service;

use serde_json::Value;
use support_service::*;

/// Some history: an accepted handover, a refused one, a read and a consent withdrawal.
async fn history(h: &Harness) {
    let a = h.hand_over(&discharge(record(BSN, Some("agreed")))).await;
    let mut bad = discharge(record(BSN, Some("agreed")));
    bad["context"] = serde_json::json!("holiday");
    let (s, _) = h.post(HOSPITAL, "/v1/handovers", &bad).await;
    assert_eq!(s, 422);
    let (s, _) = h.get(GP, &format!("/v1/handovers/{}", a["id"].as_str().unwrap())).await;
    assert_eq!(s, 200);
    let (s, _) = h.delete(HOSPITAL, &format!("/v1/patients/{BSN}/consent")).await;
    assert_eq!(s, 200);
}

fn verify(h: &Harness) -> (i32, String) {
    let (code, out, err) = h.cli(&["audit", "verify"]);
    (code, format!("{out}{err}"))
}

fn drop_triggers(h: &Harness) -> Vec<&'static str> {
    match h.backend {
        Backend::Sqlite => vec!["DROP TRIGGER audit_entries_no_update", "DROP TRIGGER audit_entries_no_delete"],
        Backend::Postgres => vec!["DROP TRIGGER audit_entries_no_update ON audit_entries"],
    }
}

async fn verify_passes_on_an_intact_trail(h: &Harness) {
    history(h).await;
    let (code, out) = verify(h);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact"), "{out}");
}

async fn the_trail_is_append_only(h: &Harness) {
    history(h).await;
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&h.db_url).await.unwrap();
    for sql in ["UPDATE audit_entries SET content = 'x' WHERE seq = 1", "DELETE FROM audit_entries WHERE seq = 1"] {
        let r = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut conn).await;
        assert!(r.is_err(), "{sql} must be refused");
    }
    assert_eq!(verify(h).0, 0);
}

async fn verify_finds_a_changed_entry(h: &Harness) {
    history(h).await;
    let mut sql = drop_triggers(h);
    sql.push("UPDATE audit_entries SET content = replace(content, 'handover received', 'handover RECEIVED') WHERE seq = 1");
    h.tamper(&sql).await;
    let (code, out) = verify(h);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("entry 1") && out.contains("changed"), "{out}");
}

async fn verify_finds_a_changed_lookup_column(h: &Harness) {
    history(h).await;
    let mut sql = drop_triggers(h);
    sql.push("UPDATE audit_entries SET patient_bsn = '999911120' WHERE seq = 2");
    h.tamper(&sql).await;
    let (code, out) = verify(h);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("entry 2"), "{out}");
}

async fn verify_finds_a_deleted_entry(h: &Harness) {
    history(h).await;
    let mut sql = drop_triggers(h);
    sql.push("DELETE FROM audit_entries WHERE seq = 3");
    h.tamper(&sql).await;
    let (code, out) = verify(h);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("entry 3") && out.contains("missing"), "{out}");
}

async fn verify_finds_a_cut_off_tail(h: &Harness) {
    history(h).await;
    let mut sql = drop_triggers(h);
    sql.push("DELETE FROM audit_entries WHERE seq = (SELECT MAX(seq) FROM audit_entries)");
    h.tamper(&sql).await;
    let (code, out) = verify(h);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("removed from the end"), "{out}");
}

async fn verify_finds_a_reordering(h: &Harness) {
    history(h).await;
    let mut sql = drop_triggers(h);
    sql.extend([
        "UPDATE audit_entries SET seq = -2 WHERE seq = 2",
        "UPDATE audit_entries SET seq = 2 WHERE seq = 3",
        "UPDATE audit_entries SET seq = 3 WHERE seq = -2",
    ]);
    h.tamper(&sql).await;
    let (code, out) = verify(h);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("entry 2"), "{out}");
}

async fn export_in_nen7513_and_balp(h: &Harness) {
    history(h).await;
    let (code, out, err) = h.cli(&["audit", "export", "--patient", BSN]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let entries = v["entries"].as_array().unwrap();
    let codes: Vec<&str> = entries.iter().filter_map(|e| e["gebeurtenis"]["gebeurteniscode"].as_str()).collect();
    for c in ["handover-received", "validation-failed", "consent-decision", "route-status", "patient-read", "consent-withdrawn"] {
        assert!(codes.contains(&c), "{c} in {codes:?}");
    }
    for e in entries {
        for field in ["/gebeurtenis/actiecode", "/gebeurtenis/datumTijd", "/gebeurtenis/resultaat", "/gebruiker/gebruikersId",
                      "/gebruiker/gebruikersrol", "/object/identificatortype", "/object/identificator", "/object/autorisatieprotocol",
                      "/loggegevens/bronId", "/loggegevens/hash"] {
            assert!(!e.pointer(field).unwrap_or(&Value::Null).is_null(), "{field} in {e:#}");
        }
        assert!(e["gebeurtenis"]["datumTijd"].as_str().unwrap().ends_with('Z'), "UTC");
    }
    // The intake entry names the practitioner on whose behalf the hospital's system acted.
    let intake = entries.iter().find(|e| e["gebeurtenis"]["gebeurteniscode"] == "handover-received").unwrap();
    assert_eq!(intake["gebruiker"]["verantwoordelijkeGebruikerId"], "agb:01234567");
    assert_eq!(intake["object"]["toestemmingsprofiel"], "8b:agreed");

    let (code, out, err) = h.cli(&["audit", "export", "--patient", BSN, "--format", "fhir"]);
    assert_eq!(code, 0, "{err}");
    let bundle: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(bundle["resourceType"], "Bundle");
    let events: Vec<&Value> = bundle["entry"].as_array().unwrap().iter().map(|e| &e["resource"]).collect();
    let profiles: Vec<&str> = events.iter().filter_map(|e| e["meta"]["profile"][0].as_str()).collect();
    assert!(profiles.iter().any(|p| p.ends_with("IHE.BasicAudit.AuthZconsent")), "{profiles:?}");
    assert!(profiles.iter().any(|p| p.ends_with("IHE.BasicAudit.PatientRead")), "{profiles:?}");
    let authz = events.iter().find(|e| e["meta"]["profile"][0].as_str().unwrap().ends_with("AuthZconsent")).unwrap();
    assert_eq!(authz["type"]["code"], "110113");
    assert_eq!(authz["action"], "E");
    assert_eq!(authz["entity"][0]["what"]["identifier"]["value"], BSN);
    // A deny carries its reason.
    assert!(events.iter().any(|e| e["outcome"] == "4" && e["outcomeDesc"].as_str().is_some_and(|d| d.contains("withdrawn"))));

    // Another patient's export is empty; a bad BSN is a usage error.
    let (code, out, _) = h.cli(&["audit", "export", "--patient", OTHER_BSN]);
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["entries"], serde_json::json!([]));
    assert_eq!(h.cli(&["audit", "export", "--patient", "123"]).0, 2);
}

async fn concurrent_writers_keep_the_chain_linear(h: &Harness) {
    let mut tasks = Vec::new();
    for i in 0..24 {
        let http = h.http.clone();
        let url = h.url("/v1/handovers");
        let body = discharge(record(if i % 2 == 0 { BSN } else { OTHER_BSN }, Some("agreed")));
        tasks.push(tokio::spawn(async move { http.post(url).bearer_auth(HOSPITAL).json(&body).send().await.unwrap().status().as_u16() }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 201);
    }
    let (code, out) = verify(h);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("72 entries"), "3 entries per handover: {out}");
}

on_both_databases!(
    verify_passes_on_an_intact_trail,
    the_trail_is_append_only,
    verify_finds_a_changed_entry,
    verify_finds_a_changed_lookup_column,
    verify_finds_a_deleted_entry,
    verify_finds_a_cut_off_tail,
    verify_finds_a_reordering,
    export_in_nen7513_and_balp,
    concurrent_writers_keep_the_chain_linear,
);
