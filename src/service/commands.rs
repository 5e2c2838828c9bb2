//! The service's command-line commands: `serve`, `audit verify`, `audit export`. The `cli` module
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

/// `acp-gateway audit verify [--config FILE]`: 0 intact, 1 broken (the first bad entry printed),
/// 2 when the trail cannot be read at all.
pub fn audit_verify(config: Option<&Path>) -> u8 {
    let cfg = match load(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let verdict = runtime().and_then(|rt| {
        rt.block_on(async {
            let db = crate::service::startup::open_db(&cfg, false).await?;
            let v = audit::verify(&db).await.map_err(|e| e.to_string());
            db.close().await;
            v
        })
    });
    match verdict {
        Ok(Verdict::Intact { entries, head }) => {
            println!("audit trail intact: {entries} entries, head {head}");
            EXIT_OK
        }
        Ok(Verdict::Broken(b)) => {
            println!("audit trail BROKEN at entry {}: {}", b.seq, b.reason);
            EXIT_FAILED
        }
        Err(e) => {
            eprintln!("acp-gateway: cannot read the audit trail: {e}");
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
    let event = audit::AuditEvent {
        event_code: audit::EventCode::PatientRead,
        action: audit::Action::R,
        event_time: crate::service::clock::now(),
        outcome: audit::Outcome::Success,
        outcome_description: Some("audit log exported on the command line".into()),
        user_id: format!("cli:{user}"),
        user_organization: "local-operator".into(),
        user_role: "operator".into(),
        responsible_user_id: None,
        responsible_user_role: None,
        access_point: None,
        patient_id_type: Some("BSN".into()),
        patient_id: Some(bsn.as_str().to_owned()),
        object_type: "audit-log".into(),
        object_id: None,
        authorization_protocol: "local database access (acp-gateway audit export)".into(),
        consent_profile: None,
        recipient: None,
        source_id: cfg.audit.source_id.clone(),
        handover_id: None,
        route_id: None,
    };
    let mut tx = db.begin().await?;
    audit::lock(&mut tx, db.backend).await?;
    audit::append(&mut tx, db.backend, &[event]).await?;
    tx.commit().await
}
