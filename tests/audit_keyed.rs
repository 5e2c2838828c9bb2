//! The audit chain's key and anchors across starts: where the key comes from (a configured file
//! that must exist, or one `serve` creates owner-only), that another key cannot continue a keyed
//! chain, that a chain written before keying is kept and keyed from a marker entry on, and that
//! `serve` anchors by itself, every N entries and at shutdown. The real binary's `audit verify`
//! judges each outcome.

mod support_service;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use acp_gateway::config::Config;
use acp_gateway::service::startup::Server;
use sha2::{Digest, Sha256};
use sqlx::{Connection, Row};
use support_service::*;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("acp-gateway-{name}-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A configuration with the development client, SQLite in `dir`, no delivery; `extra` appended.
fn config(dir: &Path, extra: &str) -> PathBuf {
    let toml = format!(
        "data_dir = \"{d}\"\n[server]\nlisten = \"127.0.0.1:0\"\n[database]\nurl = \"sqlite:{d}/gateway.db\"\nsqlite_synchronous = \"normal\"\n[delivery]\nworkers = 0\n{extra}\n",
        d = dir.display()
    );
    let p = dir.join("gateway.toml");
    std::fs::write(&p, toml).unwrap();
    p
}

async fn start(cfg: &Path) -> Result<Server, String> {
    Server::start(&Config::load_with_env(Some(cfg), Vec::new()).unwrap()).await
}

/// One accepted handover through the development client (three audit entries).
async fn hand_over(server: &Server) {
    let mut body = discharge(record(BSN, Some("agreed")));
    body["sender"].as_object_mut().unwrap().remove("organization");
    let r = reqwest::Client::new()
        .post(format!("{}/v1/handovers", server.url()))
        .bearer_auth(server.dev_token.as_deref().unwrap())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
}

/// A run of the gateway: start, `n` handovers, graceful stop.
async fn run(cfg: &Path, n: usize) {
    let server = start(cfg).await.unwrap();
    for _ in 0..n {
        hand_over(&server).await;
    }
    server.stop().await.unwrap();
}

fn verify(cfg: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_acp-gateway")).args(["audit", "verify", "--config"]).arg(cfg).output().unwrap();
    (out.status.code().unwrap_or(-1), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// `audit verify` exits with `code` and says each of `needles`.
fn verify_says(cfg: &Path, code: i32, needles: &[&str]) {
    let (got, out) = verify(cfg);
    assert_eq!(got, code, "{out}");
    for n in needles {
        assert!(out.contains(n), "{n:?} in {out}");
    }
}

fn anchored_seqs(dir: &Path) -> Vec<i64> {
    std::fs::read_to_string(dir.join("audit-anchors.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["seq"].as_i64())
        .collect()
}

async fn db(dir: &Path) -> sqlx::SqliteConnection {
    sqlx::SqliteConnection::connect(&format!("sqlite:{}/gateway.db", dir.display())).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_key_file_must_exist_and_be_long_enough() {
    let dir = temp_dir("audit-key-config");
    let missing = dir.join("secrets/audit-key");
    let cfg = config(&dir, &format!("[audit]\nkey_file = \"{}\"", missing.display()));
    let err = start(&cfg).await.err().expect("a missing key file refuses the start");
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert!(!missing.exists(), "a configured key is never made up");

    std::fs::create_dir_all(missing.parent().unwrap()).unwrap();
    std::fs::write(&missing, "too short\n").unwrap();
    let err = start(&cfg).await.err().expect("a short key refuses the start");
    assert!(err.contains("at least 32"), "{err}");

    std::fs::write(&missing, format!("{}\n", hex::encode([9u8; 32]))).unwrap();
    run(&cfg, 1).await;
    assert!(!dir.join("audit-key").exists(), "the configured key is used, no default one");
    verify_says(&cfg, 0, &["intact"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_creates_an_owner_only_key_and_another_key_cannot_continue_the_chain() {
    let dir = temp_dir("audit-key-default");
    let cfg = config(&dir, "");
    run(&cfg, 1).await;
    let key = dir.join("audit-key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert!(dir.join("dev-token").exists() && dir.join("audit-anchors.log").exists());
    verify_says(&cfg, 0, &["keyed (HMAC-SHA-256", "from entry 1"]);

    // A lost or swapped key: the gateway does not start a second chain on top of the first.
    let original = std::fs::read(&key).unwrap();
    std::fs::write(&key, format!("{}\n", hex::encode([1u8; 32]))).unwrap();
    let err = start(&cfg).await.err().expect("another key refuses the start");
    assert!(err.contains("does not verify the chain's last entry"), "{err}");
    verify_says(&cfg, 1, &["the wrong key file?"]);
    std::fs::write(&key, original).unwrap();
    assert_eq!(verify(&cfg).0, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_written_before_the_key_is_kept_and_keyed_from_a_marker_on() {
    let dir = temp_dir("audit-legacy");
    let cfg = config(&dir, "");
    run(&cfg, 2).await;

    // Turn it into what an older gateway left: a plain SHA-256 chain, no key, no anchors.
    let mut c = db(&dir).await;
    sqlx::raw_sql("DROP TRIGGER audit_entries_no_update").execute(&mut c).await.unwrap();
    let rows = sqlx::query("SELECT seq, content FROM audit_entries ORDER BY seq").fetch_all(&mut c).await.unwrap();
    let mut prev = acp_gateway::audit::GENESIS.to_owned();
    for r in &rows {
        let (seq, content): (i64, String) = (r.get("seq"), r.get("content"));
        let hash = hex::encode(Sha256::digest(format!("{prev}{content}").as_bytes()));
        sqlx::query("UPDATE audit_entries SET prev_hash = ?, hash = ? WHERE seq = ?").bind(&prev).bind(&hash).bind(seq).execute(&mut c).await.unwrap();
        prev = hash;
    }
    sqlx::query("UPDATE audit_head SET hash = ?, keyed_from = NULL WHERE id = 1").bind(&prev).execute(&mut c).await.unwrap();
    c.close().await.ok();
    std::fs::remove_file(dir.join("audit-key")).unwrap();
    std::fs::remove_file(dir.join("audit-anchors.log")).unwrap();
    let legacy = rows.len() as i64;
    verify_says(&cfg, 0, &["NOT keyed"]);

    // The new gateway keeps those entries and keys the chain from a marker entry on.
    run(&cfg, 1).await;
    verify_says(&cfg, 0, &[&format!("from entry {}", legacy + 1), "earlier plain SHA-256 chain"]);
    let mut c = db(&dir).await;
    let marker: String = sqlx::query("SELECT event_code FROM audit_entries WHERE seq = ?").bind(legacy + 1).fetch_one(&mut c).await.unwrap().get(0);
    assert_eq!(marker, "audit-chain-keyed");

    // The old entries are protected now: a plain rewrite of them no longer fits the keyed rest.
    let content: String = sqlx::query("SELECT content FROM audit_entries WHERE seq = 1").fetch_one(&mut c).await.unwrap().get(0);
    let forged = content.replace("\"outcome\":\"success\"", "\"outcome\":\"refused\"");
    assert_ne!(forged, content);
    let mut prev = acp_gateway::audit::GENESIS.to_owned();
    for seq in 1..=legacy {
        let content: String = if seq == 1 {
            forged.clone()
        } else {
            sqlx::query("SELECT content FROM audit_entries WHERE seq = ?").bind(seq).fetch_one(&mut c).await.unwrap().get(0)
        };
        let hash = hex::encode(Sha256::digest(format!("{prev}{content}").as_bytes()));
        sqlx::query("UPDATE audit_entries SET prev_hash = ?, hash = ?, content = ? WHERE seq = ?")
            .bind(&prev)
            .bind(&hash)
            .bind(&content)
            .bind(seq)
            .execute(&mut c)
            .await
            .unwrap();
        prev = hash;
    }
    c.close().await.ok();
    let (code, out) = verify(&cfg);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("BROKEN at entry {}", legacy + 1)) || out.contains(&format!("BROKEN at entry {legacy}")), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_anchors_every_n_entries_and_at_shutdown() {
    let dir = temp_dir("audit-anchor-every");
    let cfg = config(&dir, "[audit]\nanchor_every_entries = 3\nanchor_every_seconds = 3600");
    let server = start(&cfg).await.unwrap();
    assert_eq!(anchored_seqs(&dir), vec![0], "the start anchor");
    hand_over(&server).await;
    hand_over(&server).await;
    // The writer polls the head; wait (bounded) until it anchored at least the first handover.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while anchored_seqs(&dir).iter().max() < Some(&3) {
        assert!(std::time::Instant::now() < deadline, "no anchor after 6 entries: {:?}", anchored_seqs(&dir));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    hand_over(&server).await;
    server.stop().await.unwrap();
    assert_eq!(anchored_seqs(&dir).last(), Some(&9), "the shutdown anchor covers the last entry");
    verify_says(&cfg, 0, &["the last vouches for entry 9"]);
    let _ = std::fs::remove_dir_all(&dir);
}
