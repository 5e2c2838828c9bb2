//! Crash safety of the whole gateway: the real server binary on SQLite takes handovers from 32
//! concurrent clients and is killed with SIGKILL at random moments, five times, then restarted for
//! good. Every handover that was answered 2xx must be delivered exactly once (one spool file per
//! route, no file of a route the database does not have), and `acp-gateway audit verify` must pass.
//!
//! Leases are short here (1 s) so that routes a killed process had claimed are recovered quickly;
//! their repeated attempt writes the same spool file name (the delivery key), never a second file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::{Connection, Row};

const TOKEN: &str = "crash-test-token-0123456789abcdef0123456789";
const KILLS: usize = 5;
const ACCEPTED_AT_LEAST: usize = 500;
const CLIENTS: usize = 32;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn config(dir: &Path) -> PathBuf {
    let toml = format!(
        r#"data_dir = "{dir}"
[database]
url = "sqlite:{dir}/gateway.db"
[[clients]]
id = "hospital-epd"
organization = {{ ura = "11111111" }}
role = "medisch-specialist"
token_sha256 = "{hash}"
scopes = ["handovers:write", "handovers:read"]
[delivery]
workers = 2
batch = 16
poll_interval_ms = 20
lease_seconds = 1
base_delay_ms = 20
max_delay_ms = 200
"#,
        dir = dir.display(),
        hash = hex::encode(Sha256::digest(TOKEN.as_bytes())),
    );
    let p = dir.join("gateway.toml");
    std::fs::write(&p, toml).unwrap();
    p
}

fn start(cfg: &Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_acp-gateway"))
        .args(["serve", "--config"])
        .arg(cfg)
        .env("ACP_GATEWAY__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start acp-gateway serve")
}

async fn wait_ready(http: &reqwest::Client, base: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while http.get(format!("{base}/readyz")).send().await.map(|r| r.status().as_u16()).ok() != Some(200) {
        assert!(std::time::Instant::now() < deadline, "the gateway did not come up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One handover: every one is its own route, so one patient serves them all.
fn body() -> Value {
    json!({
        "record": {
            "date_filled_in": "2025-06-02",
            "patient": {"bsn": "999990019", "name": {"given": "Grietje", "family": "Bakker"}, "birth_date": "1941-03-09"},
            "treatment_limits": {"resuscitation": {"decision": "do-not-perform", "explanation": "Op eigen verzoek"}},
            "sharing_consent": "agreed"
        },
        "sender": {"role": "medisch-specialist", "organization": {"ura": "11111111"}},
        "recipients": [{"role": "huisarts", "organization": {"ura": "22222222"}, "endpoints": {"edifact": "GPCRASH1"}}],
        "context": "discharge"
    })
}

/// Sends handovers from `CLIENTS` tasks until `stop`; records the route id of every 2xx answer.
fn senders(http: &reqwest::Client, base: &str, stop: &Arc<AtomicBool>, accepted: &Arc<Mutex<Vec<String>>>) -> Vec<tokio::task::JoinHandle<()>> {
    (0..CLIENTS)
        .map(|_| {
            let (http, base, stop, accepted) = (http.clone(), base.to_owned(), stop.clone(), accepted.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let sent = http.post(format!("{base}/v1/handovers")).bearer_auth(TOKEN).json(&body()).send().await;
                    match sent {
                        Ok(r) if r.status().is_success() => {
                            if let Ok(v) = r.json::<Value>().await {
                                accepted.lock().unwrap().push(v["routes"][0]["id"].as_str().unwrap().to_owned());
                            }
                        }
                        Ok(r) => panic!("a valid handover was refused: {}", r.status()),
                        // The process is gone (killed): not acknowledged, so not owed.
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
            })
        })
        .collect()
}

async fn undelivered(db_url: &str) -> i64 {
    let mut c = sqlx::SqliteConnection::connect(db_url).await.unwrap();
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM routes WHERE status <> 'delivered'").fetch_one(&mut c).await.unwrap().get("n");
    c.close().await.ok();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_five_times_every_acknowledged_handover_is_delivered_exactly_once() {
    let dir = std::env::temp_dir().join(format!("acp-gateway-crash-{}", rand::rng().random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = config(&dir);
    let db_url = format!("sqlite:{}/gateway.db", dir.display());
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let accepted = Arc::new(Mutex::new(Vec::new()));

    // Five runs that end in SIGKILL at a random moment, while clients send and workers deliver.
    for run in 0..KILLS {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let mut child = start(&cfg, port);
        wait_ready(&http, &base).await;
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = senders(&http, &base, &stop, &accepted);
        let after = Duration::from_millis(rand::rng().random_range(150..900));
        tokio::time::sleep(after).await;
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        eprintln!("run {run}: killed after {after:?}; {} acknowledged so far", accepted.lock().unwrap().len());
    }

    // The last run: more handovers until enough were acknowledged, then every route delivered.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = start(&cfg, port);
    wait_ready(&http, &base).await;
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = senders(&http, &base, &stop, &accepted);
    while accepted.lock().unwrap().len() < ACCEPTED_AT_LEAST {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        let left = undelivered(&db_url).await;
        if left == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{left} routes still undelivered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let mut child = child;
    assert!(child.wait().unwrap().success(), "graceful stop");

    // Exactly once: one spool file per acknowledged route, and no file of a route never stored.
    let accepted: Vec<String> = accepted.lock().unwrap().clone();
    assert!(accepted.len() >= ACCEPTED_AT_LEAST);
    let files: Vec<String> = std::fs::read_dir(dir.join("spool/edifact"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    let stems: BTreeSet<String> = files.iter().map(|f| f.trim_end_matches(".edi").to_owned()).collect();
    assert_eq!(stems.len(), files.len(), "one file per route");
    for route in &accepted {
        assert!(stems.contains(route), "acknowledged route {route} was not delivered");
    }
    let mut c = sqlx::SqliteConnection::connect(&db_url).await.unwrap();
    let stored: BTreeSet<String> =
        sqlx::query("SELECT id FROM routes").fetch_all(&mut c).await.unwrap().iter().map(|r| r.get::<String, _>("id")).collect();
    c.close().await.ok();
    assert_eq!(stems, stored, "every stored route delivered once, and nothing else spooled");

    let out = Command::new(env!("CARGO_BIN_EXE_acp-gateway")).args(["audit", "verify", "--config"]).arg(&cfg).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{} acknowledged, {} routes stored, all delivered once; {}", accepted.len(), stored.len(), String::from_utf8_lossy(&out.stdout).trim());
    let _ = std::fs::remove_dir_all(&dir);
}
