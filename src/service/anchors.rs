//! The anchor writer of `serve`: signed checkpoints of the audit chain into the anchor file
//! (`crate::audit::anchor` says what they are and why).
//!
//! One at start (so a trail cut or wiped while the gateway was down cannot pass as the whole trail
//! after the next anchor), then whenever `anchor_every_entries` entries were appended since the last
//! one or `anchor_every_seconds` passed with new entries, and a last one at shutdown. It polls the
//! chain head, which costs one indexed read a second, instead of hooking every append: entries are
//! appended by every transaction of every process on the database, and the head sees them all.
//!
//! An anchor vouches only for what is on disk: on SQLite it waits for the group commit's fsync first,
//! so that a power loss cannot leave an anchor for an entry the database lost, which would make an
//! honest trail fail verification.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;

use crate::audit::{self, anchor, Anchor};
use crate::service::clock;
use crate::store::Db;

/// How often the head is looked at (at most; less often when `anchor_every_seconds` is smaller).
const POLL: Duration = Duration::from_secs(1);

struct Writer {
    db: Db,
    path: PathBuf,
    /// The entry of the last anchor this process wrote.
    last: Mutex<Option<i64>>,
}

impl Writer {
    /// Writes an anchor for the current head unless the last one already covers it. Returns the
    /// anchored entry, or None when nothing was written.
    async fn anchor(&self, force: bool) -> Result<Option<i64>, String> {
        let mut last = self.last.lock().await;
        let (seq, head, keyed_from) = audit::head(&self.db).await.map_err(|e| e.to_string())?;
        if !force && *last == Some(seq) {
            return Ok(None);
        }
        let key = self.db.audit_key().ok_or("no audit key loaded")?;
        // A chain is keyed before serve anchors it (`ensure_keyed` at start); 1 is an empty chain's.
        let keyed_from = keyed_from.unwrap_or(1);
        self.db.sync_committed().await.map_err(|e| e.to_string())?;
        let a = Anchor::new(key, seq, &head, keyed_from, &clock::now());
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || anchor::append(&path, &a))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("audit anchor file {}: {e}", self.path.display()))?;
        *last = Some(seq);
        Ok(Some(seq))
    }
}

/// The running anchor writer.
pub struct Anchorer {
    writer: Arc<Writer>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Anchorer {
    /// Writes the start anchor (an error here refuses the start: a trail that cannot be anchored is
    /// one whose end can be cut unnoticed) and starts the periodic writer.
    pub async fn start(db: Db, path: PathBuf, every_entries: u64, every_seconds: u64) -> Result<Anchorer, String> {
        let writer = Arc::new(Writer { db, path, last: Mutex::new(None) });
        writer.anchor(true).await?;
        let (stop, mut rx) = watch::channel(false);
        let w = writer.clone();
        let interval = Duration::from_secs(every_seconds);
        let task = tokio::spawn(async move {
            let mut since = Instant::now();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(POLL.min(interval)) => {}
                    _ = rx.changed() => return,
                }
                let behind = match (audit::head(&w.db).await, *w.last.lock().await) {
                    (Ok((seq, _, _)), Some(last)) => seq.saturating_sub(last),
                    (Ok((seq, _, _)), None) => seq,
                    (Err(e), _) => {
                        tracing::warn!(error = %e, "audit anchor: cannot read the chain head");
                        continue;
                    }
                };
                if behind == 0 || (behind < every_entries as i64 && since.elapsed() < interval) {
                    continue;
                }
                match w.anchor(false).await {
                    Ok(_) => since = Instant::now(),
                    Err(e) => tracing::error!(error = %e, "audit anchor not written; trying again"),
                }
            }
        });
        Ok(Anchorer { writer, stop, task })
    }

    /// Writes an anchor now (when there is something new to anchor).
    pub async fn anchor_now(&self) -> Result<Option<i64>, String> {
        self.writer.anchor(false).await
    }

    /// Stops the writer and writes the shutdown anchor. Call before the database closes.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        if let Err(e) = self.writer.anchor(false).await {
            tracing::error!(error = %e, "audit anchor at shutdown not written");
        }
    }
}
