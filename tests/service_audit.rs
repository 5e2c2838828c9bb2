//! The NEN 7513 audit trail end to end, on SQLite and PostgreSQL: entries for what happened, the
//! keyed chain and its anchors verified by the real `acp-gateway audit verify`, which must find a
//! changed, a deleted and a reordered entry, a chain rewritten and recomputed by someone with
//! database access (without the key, and with it), a cut-off end and an emptied table; the triggers
//! that refuse UPDATE, DELETE, INSERT OR REPLACE and TRUNCATE; and `audit export` in NEN 7513 JSON
//! and as IHE BALP AuditEvents.

mod support_service;

use acp_gateway::audit::{self, AuditKey};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{Connection, Row};
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

/// `audit verify` must fail (exit 1) and say each of `needles`.
fn verify_breaks(h: &Harness, needles: &[&str]) {
    let (code, out) = verify(h);
    assert_eq!(code, 1, "{out}");
    for n in needles {
        assert!(out.contains(n), "{n:?} in {out}");
    }
}

fn drop_triggers(h: &Harness) -> Vec<&'static str> {
    match h.backend {
        Backend::Sqlite => vec!["DROP TRIGGER IF EXISTS audit_entries_no_update", "DROP TRIGGER IF EXISTS audit_entries_no_delete"],
        Backend::Postgres => vec!["DROP TRIGGER IF EXISTS audit_entries_no_update ON audit_entries"],
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

/// Triggers refuse what an honest mistake or a careless script could do; the dialect's own way of
/// replacing or emptying must be refused too.
async fn replacing_or_truncating_is_refused(h: &Harness) {
    history(h).await;
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&h.db_url).await.unwrap();
    let cols = "seq, prev_hash, hash, content, event_code, recorded_at, patient_bsn, organization, handover_id";
    let attempts: Vec<String> = match h.backend {
        Backend::Sqlite => vec![
            format!("INSERT OR REPLACE INTO audit_entries ({cols}) SELECT seq, prev_hash, hash, replace(content, 'success', 'refused'), event_code, recorded_at, patient_bsn, organization, handover_id FROM audit_entries WHERE seq = 1"),
            format!("REPLACE INTO audit_entries ({cols}) SELECT seq, prev_hash, hash, content, event_code, recorded_at, NULL, organization, handover_id FROM audit_entries WHERE seq = 2"),
        ],
        Backend::Postgres => vec![
            "TRUNCATE audit_entries".to_owned(),
            format!("INSERT INTO audit_entries ({cols}) SELECT {cols} FROM audit_entries WHERE seq = 1 ON CONFLICT (seq) DO UPDATE SET content = 'x'"),
        ],
    };
    for sql in attempts {
        let r = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone())).execute(&mut conn).await;
        assert!(r.is_err(), "{sql} must be refused");
    }
    conn.close().await.ok();
    let (code, out) = verify(h);
    assert_eq!(code, 0, "{out}");
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

/// The stored chain: (seq, prev_hash, hash, content), in order.
async fn entries(h: &Harness) -> Vec<(i64, String, String, String)> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&h.db_url).await.unwrap();
    let rows = sqlx::query("SELECT seq, prev_hash, hash, content FROM audit_entries ORDER BY seq").fetch_all(&mut conn).await.unwrap();
    conn.close().await.ok();
    rows.iter().map(|r| (r.get("seq"), r.get("prev_hash"), r.get("hash"), r.get("content"))).collect()
}

fn sql_text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// What someone with write access to the database does to hide a change: edit entry `target`, then
/// recompute every link from there with `link` (prev_hash, content -> hash) and move the head along.
async fn rewrite(h: &Harness, target: i64, edit: impl Fn(&str) -> String, link: impl Fn(&str, &str) -> String) {
    let chain = entries(h).await;
    let mut sql: Vec<String> = drop_triggers(h).into_iter().map(String::from).collect();
    let mut prev = chain.iter().find(|e| e.0 == target).map(|e| e.1.clone()).unwrap();
    for (seq, _, _, content) in chain.iter().filter(|e| e.0 >= target) {
        let content = if *seq == target {
            let edited = edit(content);
            assert_ne!(&edited, content, "the edit changes entry {target}");
            edited
        } else {
            content.clone()
        };
        let hash = link(&prev, &content);
        sql.push(format!(
            "UPDATE audit_entries SET prev_hash = {}, hash = {}, content = {} WHERE seq = {seq}",
            sql_text(&prev),
            sql_text(&hash),
            sql_text(&content)
        ));
        prev = hash;
    }
    sql.push(format!("UPDATE audit_head SET hash = {} WHERE id = 1", sql_text(&prev)));
    h.tamper(&sql.iter().map(String::as_str).collect::<Vec<_>>()).await;
}

fn plain_link(prev: &str, content: &str) -> String {
    let mut d = Sha256::new();
    d.update(prev.as_bytes());
    d.update(content.as_bytes());
    hex::encode(d.finalize())
}

/// Removes every entry after `keep` and sets the head to entry `keep`, so the rest is a valid chain.
async fn cut_after(h: &Harness, keep: i64) {
    let chain = entries(h).await;
    let head = if keep == 0 { audit::GENESIS.to_owned() } else { chain.iter().find(|e| e.0 == keep).unwrap().2.clone() };
    let mut sql: Vec<String> = drop_triggers(h).into_iter().map(String::from).collect();
    sql.push(format!("DELETE FROM audit_entries WHERE seq > {keep}"));
    sql.push(format!("UPDATE audit_head SET seq = {keep}, hash = {} WHERE id = 1", sql_text(&head)));
    h.tamper(&sql.iter().map(String::as_str).collect::<Vec<_>>()).await;
}

/// Writes an anchor for everything so far, as the service does every N entries or T seconds.
async fn anchor(h: &Harness) -> i64 {
    h.server.anchor_audit().await.unwrap().expect("new entries to anchor")
}

async fn rewriting_and_recomputing_the_chain_is_found(h: &Harness) {
    history(h).await;
    // No anchor covers these entries yet: the key alone must give the rewrite away.
    rewrite(h, 2, |c| c.replace("\"outcome\":\"success\"", "\"outcome\":\"refused\""), plain_link).await;
    verify_breaks(h, &["entry 2 was changed"]);
}

async fn rewriting_the_whole_chain_unkeyed_is_found(h: &Harness) {
    history(h).await;
    // Recomputed from entry 1 on, the trail is a consistent plain chain; only the start anchor,
    // which says the chain is keyed from entry 1, tells it apart from one written before keying.
    rewrite(h, 1, |c| c.replace("\"outcome\":\"success\"", "\"outcome\":\"refused\""), plain_link).await;
    verify_breaks(h, &["keyed from entry 1, but the trail is not keyed at all"]);
}

async fn rewriting_with_the_key_is_found_by_an_anchor(h: &Harness) {
    history(h).await;
    let anchored = anchor(h).await;
    let key = AuditKey::load(&h.dir.join("audit-key")).unwrap();
    rewrite(h, 3, |c| c.replace("\"outcome\":\"success\"", "\"outcome\":\"error\""), |p, c| audit::keyed_hash(&key, p, c)).await;
    verify_breaks(h, &[&format!("entry {anchored} is not the entry"), "rewritten"]);
}

async fn cutting_the_end_behind_an_anchor_is_found(h: &Harness) {
    history(h).await;
    let anchored = anchor(h).await;
    cut_after(h, anchored - 2).await;
    verify_breaks(h, &[&format!("vouches for entry {anchored}"), &format!("entries from {} on were removed", anchored - 1)]);
}

async fn emptying_the_trail_is_found(h: &Harness) {
    history(h).await;
    anchor(h).await;
    cut_after(h, 0).await;
    verify_breaks(h, &["the audit table was emptied"]);
}

async fn cutting_after_the_last_anchor_is_the_documented_limit(h: &Harness) {
    history(h).await;
    let anchored = anchor(h).await;
    let (s, _) = h.get(HOSPITAL, &format!("/v1/handovers?patient={BSN}")).await;
    assert_eq!(s, 200);
    // What came after the last anchor can go unnoticed; what it vouches for cannot.
    cut_after(h, anchored).await;
    assert_eq!(verify(h).0, 0);
    cut_after(h, anchored - 1).await;
    assert_eq!(verify(h).0, 1);
}

async fn a_torn_anchor_line_passes_and_a_forged_one_fails(h: &Harness) {
    history(h).await;
    anchor(h).await;
    let path = h.dir.join("audit-anchors.log");
    // A crash in the middle of writing an anchor leaves a torn last line.
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"seq\":7,\"head\":\"ab");
    std::fs::write(&path, &text).unwrap();
    let (code, out) = verify(h);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("torn"), "{out}");
    // The next anchor still counts.
    let (s, _) = h.get(HOSPITAL, &format!("/v1/handovers?patient={BSN}")).await;
    assert_eq!(s, 200);
    anchor(h).await;
    assert_eq!(verify(h).0, 0);
    // A complete anchor with a MAC that does not verify is a forgery (or the wrong key).
    let last = std::fs::read_to_string(&path).unwrap().lines().last().unwrap().to_owned();
    let mut forged: Value = serde_json::from_str(&last).unwrap();
    forged["seq"] = serde_json::json!(forged["seq"].as_i64().unwrap() + 100);
    std::fs::write(&path, format!("{}{}\n", std::fs::read_to_string(&path).unwrap(), forged)).unwrap();
    verify_breaks(h, &["does not verify", "altered or forged"]);
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
    replacing_or_truncating_is_refused,
    rewriting_and_recomputing_the_chain_is_found,
    rewriting_the_whole_chain_unkeyed_is_found,
    rewriting_with_the_key_is_found_by_an_anchor,
    cutting_the_end_behind_an_anchor_is_found,
    emptying_the_trail_is_found,
    cutting_after_the_last_anchor_is_the_documented_limit,
    a_torn_anchor_line_passes_and_a_forged_one_fails,
    export_in_nen7513_and_balp,
    concurrent_writers_keep_the_chain_linear,
);
