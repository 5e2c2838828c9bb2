//! The service's command-line commands: `serve`, `worker`, `audit verify`, `audit export`,
//! `bench deliver`. The `cli` module
//! parses arguments and calls these; they return the exit status.

use std::path::Path;

use crate::audit::{self, Verdict};
use crate::config::Config;
use crate::record::Bsn;
use crate::telemetry::{self, LogFormat};

const EXIT_OK: u8 = 0;
const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())
}

fn load(config: Option<&Path>) -> Result<Config, u8> {
    Config::load(config).map_err(|e| {
        eprintln!("acp-gateway: configuration: {e}");
        EXIT_USAGE
    })
}

/// `acp-gateway serve [--config FILE] [--log-format text|json]`.
pub fn serve(config: Option<&Path>, log_format: LogFormat) -> u8 {
    telemetry::init(log_format);
    let cfg = match load(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let result = runtime().and_then(|rt| rt.block_on(crate::service::startup::run(cfg)));
    match result {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("acp-gateway: {e}");
            EXIT_FAILED
        }
    }
}

/// `acp-gateway worker [--config FILE]`: only the outbox workers (`[delivery] workers`, at least
/// one), against the configured database, until SIGTERM/SIGINT; then the current round finishes.
pub fn worker(config: Option<&Path>, log_format: LogFormat) -> u8 {
    telemetry::init(log_format);
    let cfg = match load(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let result = runtime().and_then(|rt| {
        rt.block_on(async {
            let db = crate::service::startup::open_db(&cfg, true).await?;
            let gateway = crate::service::Gateway::new(db, Vec::new(), cfg.audit.source_id.clone());
            let outbox = std::sync::Arc::new(crate::service::startup::outbox(&cfg, &gateway)?);
            let workers = outbox.start(cfg.delivery.workers.max(1));
            crate::service::startup::shutdown_signal().await;
            tracing::info!("shutdown requested: finishing the current delivery round");
            workers.stop(std::time::Duration::from_secs(cfg.server.shutdown_grace_seconds)).await;
            gateway.db.close().await;
            Ok::<(), String>(())
        })
    });
    match result {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("acp-gateway: {e}");
            EXIT_FAILED
        }
    }
}

/// `acp-gateway bench deliver --sink spool|smtp [--routes N] [--workers W] [--smtp-port P]`: accepts
/// N handovers (one Edifact route each) into a fresh SQLite database in a temporary directory, then
/// times the outbox delivering all of them and prints deliveries per second.
pub fn bench_deliver(sink: &str, routes: usize, workers: usize, smtp_port: Option<u16>, smtp_ca: Option<&Path>) -> u8 {
    let dir = std::env::temp_dir().join(format!("acp-gateway-bench-deliver-{}", crate::service::clock::new_id()));
    let mut toml = format!(
        "data_dir = {dir:?}\n[delivery]\nworkers = 0\nbatch = 32\nbase_delay_ms = 50\nmax_delay_ms = 1000\n",
        dir = dir.display().to_string()
    );
    match (sink, smtp_port) {
        ("spool", _) => {}
        ("smtp", Some(port)) => {
            toml.push_str(&format!(
                "[channels.endpoints.edifact]\nsink = \"smtp\"\nhost = \"localhost\"\nport = {port}\nfrom = \"gateway@localhost\"\nto = \"{{edifact}}@localhost\"\n"
            ));
            if let Some(ca) = smtp_ca {
                toml.push_str(&format!("ca_file = {:?}\n", ca.display().to_string()));
            }
        }
        _ => {
            eprintln!("acp-gateway: --sink is spool, or smtp with --smtp-port (and --smtp-ca for a test CA)");
            return EXIT_USAGE;
        }
    }
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("bench.toml");
    let cfg = match std::fs::write(&path, toml).map_err(|e| e.to_string()).and_then(|_| Config::load_with_env(Some(&path), Vec::new())) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("acp-gateway: bench configuration: {e}");
            return EXIT_USAGE;
        }
    };
    let result = runtime().and_then(|rt| rt.block_on(bench_deliver_run(&cfg, routes.max(1), workers.max(1))));
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(line) => {
            println!("{line}");
            EXIT_OK
        }
        Err(e) => {
            eprintln!("acp-gateway: {e}");
            EXIT_FAILED
        }
    }
}

async fn bench_deliver_run(cfg: &Config, routes: usize, workers: usize) -> Result<String, String> {
    use crate::service::model::{Caller, OrgId, Scope};
    let db = crate::service::startup::open_db(cfg, true).await?;
    let gateway = crate::service::Gateway::new(db, Vec::new(), cfg.audit.source_id.clone());
    let caller = Caller {
        client_id: "bench".into(),
        org: OrgId::ura("00000001")?,
        role: "medisch-specialist".into(),
        scopes: Scope::ALL.to_vec(),
        access_point: None,
        authentication: "bench",
    };
    let body = serde_json::json!({
        "record": {
            "date_filled_in": "2025-06-02",
            "patient": {"bsn": "999990019", "name": {"given": "Grietje", "family": "Bakker"}, "birth_date": "1941-03-09"},
            "treatment_limits": {"resuscitation": {"decision": "do-not-perform", "explanation": "Op eigen verzoek"}},
            "sharing_consent": "agreed"
        },
        "sender": {"role": "medisch-specialist", "organization": {"ura": "00000001"}},
        "recipients": [{"role": "huisarts", "organization": {"ura": "22222222"}, "endpoints": {"edifact": "GPBENCH1"}}],
        "context": "discharge"
    })
    .to_string();
    for _ in 0..routes {
        gateway.submit(&caller, body.as_bytes(), None).await.map_err(|e| format!("accepting a handover: {e}"))?;
    }
    let outbox = std::sync::Arc::new(crate::service::startup::outbox(cfg, &gateway)?);
    let start = std::time::Instant::now();
    let running = outbox.start(workers);
    loop {
        let counts = crate::store::route_counts(&gateway.db).await.map_err(|e| e.to_string())?;
        let n = |s: &str| counts.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
        if n("delivered") + n("dead") >= routes as i64 {
            let elapsed = start.elapsed().as_secs_f64();
            running.stop(std::time::Duration::from_secs(10)).await;
            gateway.db.close().await;
            let sink = outbox.sinks.sink(crate::routing::Channel::Edifact).map_or("?", |s| s.kind());
            return Ok(format!(
                "deliver ({sink}, SQLite, {workers} workers): {} delivered, {} dead in {elapsed:.2} s = {:.0} deliveries/s",
                n("delivered"),
                n("dead"),
                n("delivered") as f64 / elapsed
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// `acp-gateway audit verify [--config FILE]`: 0 intact, 1 broken (the first bad entry or anchor
/// printed), 2 when the trail cannot be read or checked at all (e.g. no key for a keyed chain).
pub fn audit_verify(config: Option<&Path>) -> u8 {
    let cfg = match load(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let anchors = cfg.audit_anchor_path();
    let verdict = crate::service::startup::audit_key(&cfg, false).and_then(|key| {
        runtime().and_then(|rt| {
            rt.block_on(async {
                let db = crate::service::startup::open_db(&cfg, false).await?;
                let v = audit::verify(&db, key.as_ref(), &anchors).await;
                db.close().await;
                v.map(|v| (v, key.map(|k| k.id().to_owned())))
            })
        })
    });
    match verdict {
        Ok((Verdict::Intact(i), key_id)) => {
            println!("audit trail intact: {} entries, head {}", i.entries, i.head);
            match (i.keyed_from, key_id) {
                (Some(k), Some(id)) => println!("keyed (HMAC-SHA-256, key id {id}) from entry {k}{}", if k > 1 { "; the entries before it are the earlier plain SHA-256 chain" } else { "" }),
                _ => println!("NOT keyed: a plain SHA-256 chain written before the audit key; anyone with write access to the database could have rewritten it"),
            }
            match i.last_anchor {
                Some((seq, time)) => println!("{} anchors in {} agree with it; the last vouches for entry {seq} ({time})", i.anchors, anchors.display()),
                None => println!("no anchors in {}: a cut-off end or an emptied table cannot be detected", anchors.display()),
            }
            if i.torn_lines > 0 {
                println!("{} line(s) of the anchor file are no anchor (torn by a crash) and were skipped", i.torn_lines);
            }
            EXIT_OK
        }
        Ok((Verdict::Broken(b), _)) => {
            println!("audit trail BROKEN at entry {}: {}", b.seq, b.reason);
            EXIT_FAILED
        }
        Err(e) => {
            eprintln!("acp-gateway: cannot check the audit trail: {e}");
            EXIT_USAGE
        }
    }
}

/// `acp-gateway audit export --patient BSN [--format fhir] [--config FILE]`: the patient's entries,
/// as JSON with NEN 7513 field names, or a FHIR Bundle of IHE BALP AuditEvents.
pub fn audit_export(config: Option<&Path>, patient: &str, fhir: bool) -> u8 {
    let bsn = match Bsn::parse(patient) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("acp-gateway: --patient: {e}");
            return EXIT_USAGE;
        }
    };
    let cfg = match load(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let entries = runtime().and_then(|rt| {
        rt.block_on(async {
            let db = crate::service::startup::open_db(&cfg, false).await?;
            let e = audit::patient_entries(&db, bsn.as_str(), None).await.map_err(|e| e.to_string());
            // Reading a patient's log is itself a read of the patient's data (NEN 7513 §6).
            let logged = match &e {
                Ok(_) => log_export(&db, &cfg, &bsn).await.map_err(|e| e.to_string()),
                Err(_) => Ok(()),
            };
            db.close().await;
            logged.and(e)
        })
    });
    match entries {
        Ok(entries) => {
            let out = if fhir {
                audit::fhir::bundle(&entries)
            } else {
                serde_json::json!({
                    "patient": {"bsn": bsn.as_str()},
                    "entries": entries.iter().map(audit::nen7513_json).collect::<Vec<_>>(),
                })
            };
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            EXIT_OK
        }
        Err(e) => {
            eprintln!("acp-gateway: cannot read the audit trail: {e}");
            EXIT_USAGE
        }
    }
}

/// The audit entry for an export from the command line: the operator is the local OS user.
async fn log_export(db: &crate::store::Db, cfg: &Config, bsn: &Bsn) -> Result<(), sqlx::Error> {
    let user = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into());
    let actor = audit::Actor { user_id: format!("cli:{user}"), organization: "local-operator".into(), role: "operator".into() };
    let protocol = "local database access (acp-gateway audit export)".to_owned();
    let now = crate::service::clock::now();
    let event = audit::AuditEvent {
        outcome_description: Some("audit log exported on the command line".into()),
        patient_id_type: Some("BSN".into()),
        patient_id: Some(bsn.as_str().to_owned()),
        object_type: "audit-log".into(),
        ..audit::AuditEvent::new(audit::EventCode::PatientRead, audit::Action::R, audit::Outcome::Success, &now, actor, protocol, &cfg.audit.source_id)
    };
    let mut tx = db.begin().await?;
    audit::lock(&mut tx, db.backend).await?;
    audit::append(&mut tx, db, &[event]).await?;
    db.commit(tx).await
}
