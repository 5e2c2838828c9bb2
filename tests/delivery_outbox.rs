//! The outbox against a real gateway on loopback (SQLite, and PostgreSQL where marked): delivery to
//! the spool exactly once, retries with what `GET /v1/handovers/{id}` shows of them, consent withdrawn
//! and cancel during retries, cancel while an attempt is in flight (the late result does not undo it),
//! dead after the channel's maximum attempts (one state-change event, not one per attempt), replay as
//! a linked second delivery, and the MDO worklist.
//!
//! A failing receiver is a spool directory replaced by a plain file: writing into it fails even for
//! root (CI runs as root, so a read-only directory would not do), and putting the directory back is
//! the receiver coming up again.

mod support_service;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use support_service::*;


fn spool(h: &Harness, channel: &str) -> PathBuf {
    h.dir.join("spool").join(channel)
}

/// The receiver is down: the channel's spool directory is a file.
fn break_spool(h: &Harness, channel: &str) {
    let d = spool(h, channel);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::write(&d, b"not a directory").unwrap();
}

/// The receiver is up again.
fn mend_spool(h: &Harness, channel: &str) {
    let d = spool(h, channel);
    std::fs::remove_file(&d).unwrap();
    std::fs::create_dir_all(&d).unwrap();
}

/// Final (non-temporary) spool files of a channel.
fn spool_files(h: &Harness, channel: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(spool(h, channel))
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| !n.starts_with('.')).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// Polls the handover until `done` holds for it; panics after a generous minute (a liveness limit,
/// not a timing assertion).
async fn wait_for(h: &Harness, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (s, b) = h.get(HOSPITAL, &format!("/v1/handovers/{id}")).await;
        assert_eq!(s, 200, "{b:#}");
        if done(&b) {
            return b;
        }
        assert!(std::time::Instant::now() < deadline, "gave up waiting for {what}: {b:#}");
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

fn route0(h: &Value) -> &Value {
    &h["routes"][0]
}

fn status_is(s: &'static str) -> impl Fn(&Value) -> bool {
    move |b| route0(b)["status"] == s
}

async fn metric(h: &Harness, line_start: &str) -> u64 {
    let text = h.http.get(h.url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines().find(|l| l.starts_with(line_start)).and_then(|l| l.rsplit(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

async fn audit_codes_for_route(h: &Harness, bsn: &str, route: &str) -> Vec<String> {
    let (s, b) = h.get(HOSPITAL, &format!("/v1/audit?patient={bsn}")).await;
    assert_eq!(s, 200);
    b["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["object"]["routeId"] == route)
        .map(|e| e["gebeurtenis"]["gebeurteniscode"].as_str().unwrap().to_owned())
        .collect()
}

async fn delivered_once_to_the_spool(h: &Harness) {
    let a = h.hand_over(&discharge(record(BSN, Some("agreed")))).await;
    let id = a["id"].as_str().unwrap();
    let route = route0(&a)["id"].as_str().unwrap().to_owned();
    let got = wait_for(h, id, "delivery", status_is("delivered")).await;
    let r = route0(&got);
    assert_eq!(r["attempts"], 1, "{r:#}");
    assert!(r["delivered_at"].is_string() && r["next_attempt_at"].is_null(), "{r:#}");
    assert!(r["receipt"].as_str().unwrap().contains(&route), "{r:#}");
    assert_eq!(spool_files(h, "edifact"), [format!("{route}.edi")]);
    let body = std::fs::read_to_string(spool(h, "edifact").join(format!("{route}.edi"))).unwrap();
    assert!(body.starts_with("UNA") || body.starts_with("UNB"), "{body}");
    assert!(body.contains("GPTEST01"), "the recipient's mailbox is in the interchange");

    // Claimed with a consent decision, then handed over: each step is in the audit trail.
    let codes = audit_codes_for_route(h, BSN, &route).await;
    assert_eq!(codes.iter().filter(|c| *c == "disclosure").count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| *c == "consent-decision").count(), 2, "intake and before the attempt: {codes:?}");
    let (code, out, err) = h.cli(&["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(metric(h, "acp_gateway_delivery_state_changes_total{change=\"delivered\"}").await, 1);
}

async fn retries_show_in_the_handover_then_recover_once(h: &Harness) {
    break_spool(h, "edifact");
    let a = h.hand_over(&discharge(record(BSN, Some("agreed")))).await;
    let id = a["id"].as_str().unwrap();
    let route = route0(&a)["id"].as_str().unwrap().to_owned();
    let got = wait_for(h, id, "three failed attempts", |b| route0(b)["status"] == "retrying" && route0(b)["attempts"].as_i64() >= Some(3)).await;
    let r = route0(&got);
    assert!(r["next_attempt_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{r:#}");
    assert!(r["last_error"].as_str().unwrap().contains("cannot write to the spool"), "{r:#}");
    assert!(r["reason"].as_str().unwrap().contains("retrying"), "{r:#}");

    mend_spool(h, "edifact");
    let got = wait_for(h, id, "recovery", status_is("delivered")).await;
    let attempts = route0(&got)["attempts"].as_i64().unwrap();
    assert!(attempts >= 4, "{got:#}");
    assert_eq!(spool_files(h, "edifact"), [format!("{route}.edi")]);
    // Many attempts, but one change into failing and one back out of it.
    assert_eq!(metric(h, "acp_gateway_delivery_state_changes_total{change=\"failing\"}").await, 1);
    assert_eq!(metric(h, "acp_gateway_delivery_state_changes_total{change=\"recovered\"}").await, 1);
    let codes = audit_codes_for_route(h, BSN, &route).await;
    assert_eq!(codes.iter().filter(|c| *c == "disclosure").count(), 1, "{codes:?}");
}

/// A second handover (another patient) that is delivered after the receiver came back: proof the
/// workers ran, so that "nothing delivered" for the first one means something.
async fn control_delivery(h: &Harness) -> String {
    let a = h.hand_over(&discharge(record(OTHER_BSN, Some("agreed")))).await;
    let id = a["id"].as_str().unwrap().to_owned();
    wait_for(h, &id, "the control handover", status_is("delivered")).await;
    route0(&a)["id"].as_str().unwrap().to_owned()
}

async fn consent_withdrawn_while_retrying_blocks_it(h: &Harness) {
    break_spool(h, "edifact");
    let a = h.hand_over(&discharge(record(BSN, Some("agreed")))).await;
    let id = a["id"].as_str().unwrap();
    let route = route0(&a)["id"].as_str().unwrap().to_owned();
    wait_for(h, id, "retrying", status_is("retrying")).await;
    let (s, b) = h.delete(HOSPITAL, &format!("/v1/patients/{BSN}/consent")).await;
    assert_eq!(s, 200, "{b:#}");
    let got = wait_for(h, id, "blocked", status_is("blocked-consent")).await;
    assert!(route0(&got)["reason"].as_str().unwrap().contains("withdrawn"), "{got:#}");

    mend_spool(h, "edifact");
    let control = control_delivery(h).await;
    let (_, got) = h.get(HOSPITAL, &format!("/v1/handovers/{id}")).await;
    assert_eq!(route0(&got)["status"], "blocked-consent", "{got:#}");
    assert_eq!(spool_files(h, "edifact"), [format!("{control}.edi")], "nothing of the withdrawn patient was delivered");
    assert!(!audit_codes_for_route(h, BSN, &route).await.contains(&"disclosure".to_owned()));
}

async fn cancel_during_retries_stops_them(h: &Harness) {
    break_spool(h, "edifact");
    let a = h.hand_over(&discharge(record(BSN, Some("agreed")))).await;
    let id = a["id"].as_str().unwrap();
    let route = route0(&a)["id"].as_str().unwrap().to_owned();
    wait_for(h, id, "retrying", |b| route0(b)["status"] == "retrying" && route0(b)["attempts"].as_i64() >= Some(2)).await;
    let (s, b) = h.post(HOSPITAL, &format!("/v1/handovers/{id}/routes/{route}/cancel"), &json!({})).await;
    assert_eq!(s, 200, "{b:#}");
    assert_eq!(b["status"], "cancelled");

    mend_spool(h, "edifact");
    let control = control_delivery(h).await;
    let (_, got) = h.get(HOSPITAL, &format!("/v1/handovers/{id}")).await;
    let r = route0(&got);
    assert_eq!(r["status"], "cancelled", "{got:#}");
    assert!(r["next_attempt_at"].is_null(), "{r:#}");
    assert_eq!(spool_files(h, "edifact"), [format!("{control}.edi")]);
}

async fn dead_after_the_channels_maximum_with_one_alert(h: &Harness) {
    // [delivery.channels.edifact] max_attempts = 3 (see the test's configuration).
    break_spool(h, "edifact");
    let a = h.hand_over(&discharge(record(BSN, Some("agreed")))).await;
    let id = a["id"].as_str().unwrap();
    let got = wait_for(h, id, "dead", status_is("dead")).await;
    let r = route0(&got);
    assert_eq!(r["attempts"], 3, "{r:#}");
    assert!(r["reason"].as_str().unwrap().starts_with("gave up after 3 attempts"), "{r:#}");
    assert!(r["next_attempt_at"].is_null());
    assert_eq!(metric(h, "acp_gateway_delivery_state_changes_total{change=\"failing\"}").await, 1);
    assert_eq!(metric(h, "acp_gateway_delivery_state_changes_total{change=\"dead\"}").await, 1);

    // The operator retries the dead route once the receiver is back: a fresh budget, delivered.
    mend_spool(h, "edifact");
    let route = r["id"].as_str().unwrap();
    let (s, b) = h.post(HOSPITAL, &format!("/v1/handovers/{id}/routes/{route}/retry"), &json!({})).await;
    assert_eq!(s, 200, "{b:#}");
    let got = wait_for(h, id, "delivery after retry", status_is("delivered")).await;
    assert_eq!(route0(&got)["attempts"], 1, "{got:#}");
    assert_eq!(spool_files(h, "edifact"), [format!("{route}.edi")]);
}

async fn replay_is_a_second_linked_delivery(h: &Harness) {
    let a = h.hand_over(&discharge(record(BSN, Some("agreed")))).await;
    let id = a["id"].as_str().unwrap();
    let route = route0(&a)["id"].as_str().unwrap().to_owned();
    wait_for(h, id, "delivery", status_is("delivered")).await;

    let (s, replay) = h.post(HOSPITAL, &format!("/v1/handovers/{id}/routes/{route}/replay"), &json!({})).await;
    assert_eq!(s, 201, "{replay:#}");
    assert_eq!(replay["replay_of"], route.as_str());
    assert_eq!(replay["replay_number"], 1);
    assert_ne!(replay["id"], route.as_str());
    let (s, rerendered) = h.post(HOSPITAL, &format!("/v1/handovers/{id}/routes/{route}/replay?rerender=true"), &json!({})).await;
    assert_eq!(s, 201, "{rerendered:#}");
    assert_eq!(rerendered["replay_number"], 2);
    let got = wait_for(h, id, "both replays delivered", |b| {
        b["routes"].as_array().unwrap().len() == 3 && b["routes"].as_array().unwrap().iter().all(|r| r["status"] == "delivered")
    })
    .await;
    // The original keeps its own history.
    assert_eq!(got["routes"][0]["id"], route.as_str());
    assert_eq!(got["routes"][0]["attempts"], 1);
    let files = spool_files(h, "edifact");
    assert_eq!(files, [format!("{route}-replay-1.edi"), format!("{route}-replay-2.edi"), format!("{route}.edi")]);
    let original = std::fs::read(spool(h, "edifact").join(format!("{route}.edi"))).unwrap();
    assert_eq!(std::fs::read(spool(h, "edifact").join(format!("{route}-replay-1.edi"))).unwrap(), original, "the original message, byte for byte");
    let codes = audit_codes_for_route(h, BSN, &route).await;
    assert_eq!(codes.iter().filter(|c| *c == "operator-replay").count(), 2, "{codes:?}");

    // Only a delivered route can be replayed, and consent is decided again.
    let (s, _) = h.post(HOSPITAL, &format!("/v1/handovers/{id}/routes/nope/replay"), &json!({})).await;
    assert_eq!(s, 404);
    let (s, _) = h.post(GP, &format!("/v1/handovers/{id}/routes/{route}/replay"), &json!({})).await;
    assert_eq!(s, 403, "the recipient cannot replay");
    let (s, _) = h.delete(HOSPITAL, &format!("/v1/patients/{BSN}/consent")).await;
    assert_eq!(s, 200);
    let (s, b) = h.post(HOSPITAL, &format!("/v1/handovers/{id}/routes/{route}/replay"), &json!({})).await;
    assert_eq!(s, 409, "{b:#}");
    assert!(b["detail"].as_str().unwrap().contains("consent"), "{b:#}");
}

async fn the_mdo_worklist_is_fetched_by_its_recipient_only(h: &Harness) {
    let body = json!({
        "record": record(BSN, Some("agreed")),
        "sender": {"role": "huisarts", "organization": {"ura": GP_URA}},
        "recipients": [{"role": "wijkverpleging", "organization": {"ura": STRANGER_URA, "name": "Wijkteam"}}],
        "context": "regular"
    });
    let (s, a) = h.post(GP, "/v1/handovers", &body).await;
    assert_eq!(s, 201, "{a:#}");
    assert_eq!(route0(&a)["channel"], "mdo");
    let id = a["id"].as_str().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (s, b) = h.get(GP, &format!("/v1/handovers/{id}")).await;
        assert_eq!(s, 200);
        if route0(&b)["status"] == "delivered" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{b:#}");
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let (s, list) = h.get(STRANGER, "/v1/worklist").await;
    assert_eq!(s, 200, "{list:#}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list:#}");
    assert_eq!(items[0]["handover_id"], id);
    assert_eq!(items[0]["route_id"], route0(&a)["id"]);
    assert_eq!(items[0]["encoding"], "utf-8");
    assert!(!items[0]["body"].as_str().unwrap().is_empty());
    let (_, other) = h.get(HOSPITAL, "/v1/worklist").await;
    assert_eq!(other["items"].as_array().unwrap().len(), 0, "another organisation sees nothing");
    let (_, later) = h.get(STRANGER, &format!("/v1/worklist?since={}", items[0]["created_at"].as_str().unwrap())).await;
    assert_eq!(later["items"].as_array().unwrap().len(), 0);
    assert!(spool_files(h, "mdo").is_empty(), "mdo goes to the worklist, not the spool");
}

/// A sink that holds every message until released: an attempt "in flight" for as long as a test needs.
struct Gate {
    entered: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

impl acp_gateway::channels::Sink for Gate {
    fn kind(&self) -> &'static str {
        "gate"
    }
    fn deliver<'a>(
        &'a self,
        msg: &'a acp_gateway::channels::Outgoing<'a>,
    ) -> acp_gateway::channels::BoxFuture<'a, Result<acp_gateway::channels::Receipt, acp_gateway::channels::Failure>> {
        Box::pin(async move {
            self.entered.notify_one();
            self.release.notified().await;
            Ok(acp_gateway::channels::Receipt { detail: format!("held and let through {}", msg.delivery_key) })
        })
    }
}

/// A gateway without delivery workers and an outbox whose Edifact sink is a [`Gate`].
async fn gated() -> (Harness, std::sync::Arc<acp_gateway::outbox::Outbox>, std::sync::Arc<Gate>) {
    let h = Harness::sqlite().await;
    let cfg = acp_gateway::config::Config::load_with_env(Some(&h.config_path), Vec::new()).unwrap();
    let mut outbox = acp_gateway::service::startup::outbox(&cfg, &h.server.gateway).unwrap();
    let gate = std::sync::Arc::new(Gate { entered: tokio::sync::Notify::new(), release: tokio::sync::Notify::new() });
    outbox.sinks.set(acp_gateway::routing::Channel::Edifact, gate.clone());
    (h, std::sync::Arc::new(outbox), gate)
}

/// Cancel while the attempt is in flight: the message goes out (it was already on its way), the
/// disclosure is audited, and the late "delivered" does not turn the route back from `cancelled`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_result_does_not_undo_a_cancel() {
    let (h, outbox, gate) = gated().await; // no workers of its own: this test drives the rounds itself

    let a = h.hand_over(&discharge(record(BSN, Some("agreed")))).await;
    let id = a["id"].as_str().unwrap().to_owned();
    let route = route0(&a)["id"].as_str().unwrap().to_owned();
    let round = tokio::spawn({
        let outbox = outbox.clone();
        async move { outbox.run_once("test").await }
    });
    gate.entered.notified().await;
    let (_, during) = h.get(HOSPITAL, &format!("/v1/handovers/{id}")).await;
    assert_eq!(route0(&during)["status"], "delivering", "{during:#}");
    let (s, b) = h.post(HOSPITAL, &format!("/v1/handovers/{id}/routes/{route}/cancel"), &json!({})).await;
    assert_eq!(s, 200, "{b:#}");
    gate.release.notify_one();
    assert_eq!(round.await.unwrap().unwrap(), 1);

    let (_, after) = h.get(HOSPITAL, &format!("/v1/handovers/{id}")).await;
    assert_eq!(route0(&after)["status"], "cancelled", "{after:#}");
    let (_, log) = h.get(HOSPITAL, &format!("/v1/audit?patient={BSN}")).await;
    let disclosure = log["entries"].as_array().unwrap().iter().find(|e| e["gebeurtenis"]["gebeurteniscode"] == "disclosure").expect("audited");
    assert!(disclosure["gebeurtenis"]["toelichting"].as_str().unwrap().contains("became cancelled while this attempt was in flight"), "{disclosure:#}");
    // Nothing is due any more: the next round claims nothing.
    assert_eq!(outbox.run_once("test").await.unwrap(), 0);
    h.finish().await;
}

/// A withdrawal while the attempt is in flight: the message goes out (it was already on its way), so
/// the route says `delivered`, not `blocked-consent`; the disclosure is audited, and nothing is sent
/// again afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_during_the_send_leaves_the_route_delivered() {
    let (h, outbox, gate) = gated().await; // no workers of its own: this test drives the rounds itself

    let a = h.hand_over(&discharge(record(BSN, Some("agreed")))).await;
    let id = a["id"].as_str().unwrap().to_owned();
    let round = tokio::spawn({
        let outbox = outbox.clone();
        async move { outbox.run_once("test").await }
    });
    gate.entered.notified().await;
    let (s, b) = h.delete(HOSPITAL, &format!("/v1/patients/{BSN}/consent")).await;
    assert_eq!(s, 200, "{b:#}");
    let (_, during) = h.get(HOSPITAL, &format!("/v1/handovers/{id}")).await;
    assert_eq!(route0(&during)["status"], "blocked-consent", "{during:#}");
    gate.release.notify_one();
    assert_eq!(round.await.unwrap().unwrap(), 1);

    let (_, after) = h.get(HOSPITAL, &format!("/v1/handovers/{id}")).await;
    let r = route0(&after);
    assert_eq!(r["status"], "delivered", "{after:#}");
    assert!(r["delivered_at"].is_string() && r["receipt"].as_str().unwrap().contains("held and let through"), "{r:#}");
    assert!(r["reason"].as_str().unwrap().contains("already on its way"), "{r:#}");
    let (_, log) = h.get(HOSPITAL, &format!("/v1/audit?patient={BSN}")).await;
    let entries = log["entries"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["gebeurtenis"]["gebeurteniscode"] == "disclosure"), "the disclosure is audited");
    assert!(
        entries.iter().any(|e| e["gebeurtenis"]["toelichting"].as_str().is_some_and(|t| t.contains("blocked-consent -> delivered"))),
        "the status change is audited"
    );
    // The withdrawal still stops everything later: nothing is due.
    assert_eq!(outbox.run_once("test").await.unwrap(), 0);
    h.finish().await;
}

/// Retention deletes the payload and rendered messages of a handover whose routes are final, audited
/// once, and leaves a handover whose route can still be sent alone; the record stays, so a replay
/// needs `?rerender=true` afterwards.
async fn retention_deletes_bodies_of_finished_handovers_only(h: &Harness) {
    let done = h.hand_over(&discharge(record(BSN, Some("agreed")))).await;
    let done_id = done["id"].as_str().unwrap().to_owned();
    let route = route0(&done)["id"].as_str().unwrap().to_owned();
    wait_for(h, &done_id, "delivery", status_is("delivered")).await;
    break_spool(h, "edifact");
    let open = h.hand_over(&discharge(record(BSN, Some("agreed")))).await;
    let open_id = open["id"].as_str().unwrap().to_owned();
    wait_for(h, &open_id, "a failed attempt", |b| route0(b)["attempts"].as_i64().unwrap_or(0) >= 1).await;

    // A pass "a day later" with a one-day term purges nothing yet: the term counts from the last change.
    let db = &h.server.gateway.db;
    let in_a_day = std::time::SystemTime::now() + Duration::from_secs(86_400 / 2);
    assert_eq!(acp_gateway::service::retention::purge_due(db, 1, "test", in_a_day).await.unwrap(), 0);
    // Two days later: the delivered handover goes, the retrying one stays.
    let later = std::time::SystemTime::now() + Duration::from_secs(2 * 86_400);
    assert_eq!(acp_gateway::service::retention::purge_due(db, 1, "test", later).await.unwrap(), 1);
    assert_eq!(acp_gateway::service::retention::purge_due(db, 1, "test", later).await.unwrap(), 0, "purged once");

    let (s, got) = h.get(HOSPITAL, &format!("/v1/handovers/{done_id}")).await;
    assert_eq!(s, 200, "the handover and its routes stay: {got:#}");
    assert_eq!(route0(&got)["status"], "delivered");
    let (s, b) = h.post(HOSPITAL, &format!("/v1/handovers/{done_id}/routes/{route}/replay"), &json!({})).await;
    assert_eq!(s, 409, "the original message is gone: {b:#}");
    assert!(b["detail"].as_str().unwrap().contains("rerender"), "{b:#}");
    mend_spool(h, "edifact");
    let (s, b) = h.post(HOSPITAL, &format!("/v1/handovers/{done_id}/routes/{route}/replay?rerender=true"), &json!({})).await;
    assert_eq!(s, 201, "the record stays, so it can be rendered again: {b:#}");
    wait_for(h, &open_id, "the kept handover delivered", status_is("delivered")).await;

    let (s, log) = h.get(HOSPITAL, &format!("/v1/audit?patient={BSN}")).await;
    assert_eq!(s, 200);
    let purges: Vec<&Value> = log["entries"].as_array().unwrap().iter().filter(|e| e["gebeurtenis"]["gebeurteniscode"] == "retention-purge").collect();
    assert_eq!(purges.len(), 1, "{purges:#?}");
    assert_eq!(purges[0]["gebeurtenis"]["actiecode"], "D", "{:#}", purges[0]);
    let (code, out, err) = h.cli(&["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
}

macro_rules! sqlite_tests {
    ($($name:ident: $extra:expr),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let h = super::Harness::sqlite_with({ use super::*; $extra }).await;
                    super::$name(&h).await;
                    h.finish().await;
                }
            )*
        }
    };
}

macro_rules! postgres_tests {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(h) = super::Harness::postgres_with(concat!("postgres::", stringify!($name)), super::FAST_DELIVERY).await else { return };
                    super::$name(&h).await;
                    h.finish().await;
                }
            )*
        }
    };
}

const DEAD_AFTER_3: &str = "[delivery]
workers = 2
poll_interval_ms = 20
base_delay_ms = 20
max_delay_ms = 100
[delivery.channels.edifact]
max_attempts = 3
";

sqlite_tests! {
    delivered_once_to_the_spool: FAST_DELIVERY,
    retries_show_in_the_handover_then_recover_once: FAST_DELIVERY,
    consent_withdrawn_while_retrying_blocks_it: FAST_DELIVERY,
    cancel_during_retries_stops_them: FAST_DELIVERY,
    dead_after_the_channels_maximum_with_one_alert: DEAD_AFTER_3,
    replay_is_a_second_linked_delivery: FAST_DELIVERY,
    the_mdo_worklist_is_fetched_by_its_recipient_only: FAST_DELIVERY,
    retention_deletes_bodies_of_finished_handovers_only: FAST_DELIVERY,
}

postgres_tests! {
    delivered_once_to_the_spool,
    consent_withdrawn_while_retrying_blocks_it,
    cancel_during_retries_stops_them,
    replay_is_a_second_linked_delivery,
    retention_deletes_bodies_of_finished_handovers_only,
}
