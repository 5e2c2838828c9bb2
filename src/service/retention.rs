//! Retention: deletes the bodies of finished handovers after `retention.message_days`, audited.
//!
//! The gateway carries records; it is not the patient's dossier. Once every route of a handover is
//! final (delivered, dead, cancelled or blocked) and has been for the retention term, the payload as
//! received and the rendered messages are deleted (`store::retention` says what stays). Each deletion is
//! a NEN 7513 entry of its own ("vernietiging", action D), on the sending organisation's behalf; the
//! audit trail itself is never pruned here.
//!
//! The pruner runs inside `serve`, once shortly after start and then every `retention.interval_minutes`,
//! in batches so that it never holds the writer for long. Several gateway processes may prune at once:
//! the conditional update in `store::retention::purge` makes each deletion happen (and be audited) once.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::audit::{self, Action, Actor, AuditEvent, EventCode, Outcome};
use crate::service::clock;
use crate::store::{retention, Db};

/// Handovers purged per transaction.
const BATCH: i64 = 200;

/// One pass: purges every handover due at `now`; returns how many were purged.
pub async fn purge_due(db: &Db, message_days: u32, source_id: &str, now: SystemTime) -> Result<usize, sqlx::Error> {
    let cutoff = clock::format(now - Duration::from_secs(u64::from(message_days) * 86_400));
    let stamp = clock::format(now);
    let mut total = 0;
    loop {
        let due = retention::purgeable(db.reader(), &cutoff, BATCH).await?;
        if due.is_empty() {
            return Ok(total);
        }
        let mut tx = db.begin().await?;
        audit::lock(&mut tx, db.backend).await?;
        let mut events = Vec::with_capacity(due.len());
        for p in &due {
            let Some(messages) = retention::purge(&mut tx, &p.handover_id, &stamp).await? else { continue };
            let actor = Actor { user_id: "system:retention".into(), organization: p.organization.clone(), role: "system".into() };
            let protocol = format!("retention policy: message bodies kept {message_days} days after their routes are final");
            events.push(AuditEvent {
                outcome_description: Some(format!(
                    "retention: the received payload and {messages} rendered message(s) deleted, {message_days} days after the last route change; the record, routes and audit trail are kept"
                )),
                responsible_user_id: Some(p.client_id.clone()),
                patient_id_type: Some("BSN".into()),
                patient_id: Some(p.patient_bsn.clone()),
                object_id: Some(p.handover_id.clone()),
                handover_id: Some(p.handover_id.clone()),
                ..AuditEvent::new(EventCode::RetentionPurge, Action::D, Outcome::Success, &stamp, actor, protocol, source_id)
            });
        }
        let purged = events.len();
        audit::append(&mut tx, db, &events).await?;
        db.commit(tx).await?;
        total += purged;
        if purged == 0 {
            // Everything in this batch was purged by another process meanwhile.
            return Ok(total);
        }
    }
}

/// The running pruner of a process.
pub struct Pruner {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Pruner {
    /// Starts the pruner: a first pass a little after start (so that start-up is not slowed), then one
    /// every `interval`.
    pub fn start(db: Db, message_days: u32, interval: Duration, source_id: String) -> Pruner {
        let (stop, mut rx) = watch::channel(false);
        let db = Arc::new(db);
        let task = tokio::spawn(async move {
            let mut wait = Duration::from_secs(5).min(interval);
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = rx.changed() => return,
                }
                match purge_due(&db, message_days, &source_id, SystemTime::now()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(handovers = n, "retention: message bodies deleted"),
                    Err(e) => tracing::error!(error = %e, "retention pass failed; trying again at the next interval"),
                }
                wait = interval;
            }
        });
        Pruner { stop, task }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}
