//! Ingest throughput and latency of the gateway service: accepted handovers per second and the
//! latency percentiles of `POST /v1/handovers` (each one validated, routed, consent-checked, rendered
//! and committed with its audit entries before the `201`).
//!
//! Against a running server:
//!   cargo bench --bench ingest -- --url http://127.0.0.1:8080 --token "$(cat acp-gateway-data/dev-token)"
//! Without `--url` it starts a gateway in-process on 127.0.0.1 with a fresh SQLite database in a
//! temporary directory (`--sync full|normal` picks SQLite's `synchronous`, default `full`).
//! Options: `--seconds N` (default 10), `--concurrency N` (default 16), `--workers N` (in-process
//! only: delivery workers beside the intake, default the gateway's; 0 measures intake alone). Loopback
//! only; the run is bounded by `--seconds` and stops by itself.

use std::time::{Duration, Instant};

use serde_json::json;

struct Args {
    url: Option<String>,
    token: Option<String>,
    seconds: u64,
    concurrency: usize,
    sync: String,
    workers: Option<u32>,
}

fn args() -> Args {
    let mut a = Args { url: None, token: None, seconds: 10, concurrency: 16, sync: "full".into(), workers: None };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        // `cargo bench` passes `--bench`; anything unknown is ignored.
        match k.as_str() {
            "--url" => a.url = it.next(),
            "--token" => a.token = it.next(),
            "--seconds" => a.seconds = it.next().and_then(|v| v.parse().ok()).unwrap_or(a.seconds),
            "--concurrency" => a.concurrency = it.next().and_then(|v| v.parse().ok()).unwrap_or(a.concurrency),
            "--sync" => a.sync = it.next().unwrap_or(a.sync),
            "--workers" => a.workers = it.next().and_then(|v| v.parse().ok()),
            _ => {}
        }
    }
    a
}

fn body() -> serde_json::Value {
    json!({
        "record": {
            "date_filled_in": "2025-06-02",
            "patient": {"bsn": "999990019", "name": {"given": "Grietje", "family": "Bakker"}, "birth_date": "1941-03-09"},
            "medical_policy_goal": "palliative-symptom-relief",
            "treatment_limits": {
                "resuscitation": {"decision": "do-not-perform", "explanation": "Op eigen verzoek"},
                "hospital_admission": {"decision": "perform-with-restrictions", "restriction": "Alleen bij een heupfractuur"}
            },
            "sharing_consent": "agreed"
        },
        "sender": {"role": "medisch-specialist", "practitioner": {"agb": "01234567"}},
        "recipients": [{"role": "huisarts", "organization": {"ura": "22222222"}, "endpoints": {"edifact": "GPTEST01"}}],
        "context": "discharge"
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let mut local = None;
        let (url, token) = match (&a.url, &a.token) {
            (Some(u), Some(t)) => (u.trim_end_matches('/').to_owned(), t.clone()),
            (Some(_), None) => panic!("--url needs --token"),
            _ => {
                let dir = std::env::temp_dir().join(format!("acp-gateway-bench-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                let mut env = vec![
                    ("ACP_GATEWAY__DATA_DIR".to_owned(), dir.display().to_string()),
                    ("ACP_GATEWAY__SERVER__LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
                    ("ACP_GATEWAY__DATABASE__SQLITE_SYNCHRONOUS".to_owned(), a.sync.clone()),
                ];
                if let Some(w) = a.workers {
                    env.push(("ACP_GATEWAY__DELIVERY__WORKERS".to_owned(), w.to_string()));
                }
                let cfg = acp_gateway::config::Config::load_with_env(None, env).expect("config");
                let server = acp_gateway::service::startup::Server::start(&cfg).await.expect("server");
                let u = server.url();
                let t = server.dev_token.clone().expect("dev token");
                local = Some((server, dir));
                (u, t)
            }
        };
        let endpoint = format!("{url}/v1/handovers");
        let body = serde_json::to_vec(&body()).unwrap();
        let http = reqwest::Client::builder().pool_max_idle_per_host(a.concurrency).build().unwrap();

        // Warm-up: connections, SQLite caches.
        for _ in 0..50 {
            let _ = http.post(&endpoint).bearer_auth(&token).header("content-type", "application/json").body(body.clone()).send().await;
        }

        let deadline = Instant::now() + Duration::from_secs(a.seconds);
        let started = Instant::now();
        let mut workers = Vec::new();
        for _ in 0..a.concurrency {
            let (http, endpoint, token, body) = (http.clone(), endpoint.clone(), token.clone(), body.clone());
            workers.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut failed = 0u64;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let r = http.post(&endpoint).bearer_auth(&token).header("content-type", "application/json").body(body.clone()).send().await;
                    match r {
                        Ok(resp) if resp.status().as_u16() == 201 => {
                            let _ = resp.bytes().await;
                            lat.push(t.elapsed());
                        }
                        _ => failed += 1,
                    }
                }
                (lat, failed)
            }));
        }
        let mut all = Vec::new();
        let mut failed = 0;
        for w in workers {
            let (lat, f) = w.await.unwrap();
            all.extend(lat);
            failed += f;
        }
        let elapsed = started.elapsed();
        all.sort();
        println!(
            "ingest: {} accepted in {:.1} s = {:.0} handovers/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} failed; concurrency {}{}",
            all.len(),
            elapsed.as_secs_f64(),
            all.len() as f64 / elapsed.as_secs_f64(),
            percentile(&all, 0.50).as_secs_f64() * 1000.0,
            percentile(&all, 0.99).as_secs_f64() * 1000.0,
            all.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
            failed,
            a.concurrency,
            match (&local, a.workers) {
                (Some(_), Some(w)) => format!(", in-process SQLite (synchronous={}), {w} delivery worker(s)", a.sync),
                (Some(_), None) => format!(", in-process SQLite (synchronous={}), default delivery workers", a.sync),
                _ => String::new(),
            },
        );
        if let Some((server, dir)) = local {
            server.stop().await.expect("stop");
            let _ = std::fs::remove_dir_all(dir);
        }
    });
}
