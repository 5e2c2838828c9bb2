//! Several delivery processes on one PostgreSQL: two `acp-gateway worker` processes (four worker
//! tasks each) claim from the same outbox while 1,000 handovers arrive, and every route is delivered
//! exactly once: one disclosure in the audit trail per route, one attempt per route, one spool file
//! per route, and both processes took part.
//!
//! And a worker process that would poll only every ten minutes still delivers a new handover at once:
//! the accepting process's `NOTIFY` wakes it.
//!
//! PostgreSQL comes from the service harness (a fresh database per test; skipped loudly without it
//! outside CI, a failure under CI).

mod support_service;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use acp_gateway::service::model::{Caller, OrgId, Scope};
use sqlx::{Connection, Row};
use support_service::*;

const ROUTES: usize = 1000;

fn start_worker(h: &Harness) -> WorkerProcess {
    start_worker_polling(h, 10)
}

fn start_worker_polling(h: &Harness, poll_interval_ms: u64) -> WorkerProcess {
    let child = Command::new(env!("CARGO_BIN_EXE_acp-gateway"))
        .args(["worker", "--config"])
        .arg(&h.config_path)
        .env("ACP_GATEWAY__DELIVERY__WORKERS", "4")
        .env("ACP_GATEWAY__DELIVERY__BATCH", "8")
        .env("ACP_GATEWAY__DELIVERY__POLL_INTERVAL_MS", poll_interval_ms.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start acp-gateway worker");
    WorkerProcess(Some(child))
}

/// A worker process that is killed if the test fails before it is terminated, so that a failed
/// test leaves nothing running.
struct WorkerProcess(Option<Child>);

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn terminate(mut worker: WorkerProcess) {
    let mut child = worker.0.take().expect("running");
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = child.wait().expect("worker exits");
    assert!(status.success(), "the worker stops cleanly on SIGTERM: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_worker_processes_deliver_each_of_1000_routes_once() {
    let Some(h) = Harness::postgres("two_worker_processes_deliver_each_of_1000_routes_once").await else { return };
    let workers = [start_worker(&h), start_worker(&h)];

    // The handovers arrive while both processes are claiming.
    let gateway = h.server.gateway.clone();
    let caller = Arc::new(Caller {
        client_id: "hospital-epd".into(),
        org: OrgId::ura(HOSPITAL_URA).unwrap(),
        role: "medisch-specialist".into(),
        scopes: Scope::ALL.to_vec(),
        access_point: None,
        authentication: "test",
    });
    let body = Arc::new(serde_json::to_vec(&discharge(record(BSN, Some("agreed")))).unwrap());
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (gateway, caller, body) = (gateway.clone(), caller.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..ROUTES / 8 {
                let s = gateway.submit(&caller, &body, None).await.expect("accepted");
                assert_eq!(s.status, 201);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }

    let mut db = sqlx::PgConnection::connect(&h.db_url).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM routes WHERE status = 'delivered'").fetch_one(&mut db).await.unwrap().get("n");
        if n as usize >= ROUTES {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "only {n} of {ROUTES} delivered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for w in workers {
        terminate(w);
    }

    let routes: Vec<(String, i64, String)> = sqlx::query("SELECT id, attempts, status FROM routes")
        .fetch_all(&mut db)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("id"), r.get("attempts"), r.get("status")))
        .collect();
    assert_eq!(routes.len(), ROUTES);
    assert!(routes.iter().all(|(_, a, s)| *a == 1 && s == "delivered"), "every route claimed once and delivered");

    let mut disclosures: BTreeMap<String, usize> = BTreeMap::new();
    let mut processes = std::collections::BTreeSet::new();
    for row in sqlx::query("SELECT content FROM audit_entries WHERE event_code = 'disclosure'").fetch_all(&mut db).await.unwrap() {
        let content: serde_json::Value = serde_json::from_str(row.get::<String, _>("content").as_str()).unwrap();
        *disclosures.entry(content["route_id"].as_str().unwrap().to_owned()).or_default() += 1;
        // user_id is `system:outbox-worker:<pid>-<nonce>/<task>`.
        let user = content["user_id"].as_str().unwrap();
        processes.insert(user.rsplit_once('/').unwrap().0.to_owned());
    }
    assert_eq!(disclosures.len(), ROUTES);
    assert!(disclosures.values().all(|n| *n == 1), "no route was handed over twice");
    assert_eq!(processes.len(), 2, "both worker processes delivered: {processes:?}");

    let files = std::fs::read_dir(h.dir.join("spool/edifact")).unwrap().flatten().filter(|e| !e.file_name().to_string_lossy().starts_with('.')).count();
    assert_eq!(files, ROUTES);
    let (code, out, err) = h.cli(&["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
    db.close().await.ok();
    h.finish().await;
}

/// A worker process that polls only every ten minutes delivers a handover accepted by another process
/// well within the test's time limit: the accepting transaction's NOTIFY woke it. (Without it, the
/// route would wait for the next poll, long after the deadline below.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_process_is_woken_by_another_process_accepting_a_handover() {
    let Some(h) = Harness::postgres("a_worker_process_is_woken_by_another_process_accepting_a_handover").await else { return };
    let worker = start_worker_polling(&h, 600_000);
    let mut db = sqlx::PgConnection::connect(&h.db_url).await.unwrap();
    // The worker has started (its first round found nothing) and listens: its LISTEN connection shows.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%acp_gateway_due%'")
            .fetch_one(&mut db)
            .await
            .unwrap()
            .get("n");
        if n > 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the worker process never listened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Slack for the worker's first round (started beside the listener) to find nothing and go to
    // sleep: a handover that arrived before it would be delivered by that round, proving nothing.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let (s, _, b) = h.send(h.http.post(h.url("/v1/handovers")).bearer_auth(HOSPITAL).json(&discharge(record(BSN, Some("agreed"))))).await;
    assert_eq!(s, 201, "{b}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM routes WHERE status = 'delivered'").fetch_one(&mut db).await.unwrap().get("n");
        if n == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the route was not delivered: the worker was not woken");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    terminate(worker);
    db.close().await.ok();
    h.finish().await;
}
