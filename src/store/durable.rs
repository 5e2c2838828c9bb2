//! Group commit for SQLite: one fsync makes many commits durable.
//!
//! With `synchronous = FULL` SQLite fsyncs the write-ahead log inside every commit, while it holds
//! the database's only write lock; concurrent handovers then queue behind one another's fsync, and a
//! disk that syncs in a millisecond caps the gateway near a thousand commits a second whatever the
//! CPU could do. So for `sqlite_synchronous = "full"` the connections run `synchronous = NORMAL`
//! (a commit writes its WAL frames but does not sync them) and every writer, after its commit and
//! before it tells anyone the change happened, waits for [`Durability::sync`]: one `fdatasync` of the
//! WAL file covers every commit finished before it started, so the writers that commit while one
//! sync runs share the next one.
//!
//! This gives what `FULL` gives: an acknowledged commit is on disk. SQLite in WAL mode with `NORMAL`
//! already syncs the WAL before each checkpoint, the database after it, and the WAL header before the
//! log is reused (sqlite.org/pragma.html#pragma_synchronous), so the only gap `NORMAL` leaves is the
//! tail of the log since the last checkpoint, and that is what this sync closes. A crash of the process
//! alone (`kill -9`) never loses a commit either way: the frames are in the kernel's page cache.
//!
//! An fsync that fails poisons the store: what the kernel dropped cannot be known, so from then on
//! every write reports a storage error instead of acknowledging what may not be on disk.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug)]
pub struct Durability {
    /// The database file and its write-ahead log.
    files: [PathBuf; 2],
    /// Tickets: a writer takes one after its commit returned.
    committed: AtomicU64,
    /// The highest ticket known durable; the lock also makes syncs take turns.
    synced: tokio::sync::Mutex<u64>,
    poisoned: AtomicBool,
}

impl Durability {
    pub fn new(database: PathBuf) -> Arc<Durability> {
        let mut wal = database.clone().into_os_string();
        wal.push("-wal");
        Arc::new(Durability {
            files: [database, PathBuf::from(wal)],
            committed: AtomicU64::new(0),
            synced: tokio::sync::Mutex::new(0),
            poisoned: AtomicBool::new(false),
        })
    }

    /// Returns once every commit that finished before this call is on disk.
    pub async fn sync(&self) -> io::Result<()> {
        let ticket = self.committed.fetch_add(1, Ordering::SeqCst) + 1;
        let mut synced = self.synced.lock().await;
        self.check()?;
        if *synced >= ticket {
            // A sync that started after our commit has finished meanwhile.
            return Ok(());
        }
        // Every ticket up to here was taken after its commit returned, so this sync covers them all.
        let upto = self.committed.load(Ordering::SeqCst);
        let files = self.files.clone();
        let result = tokio::task::spawn_blocking(move || sync_files(&files))
            .await
            .unwrap_or_else(|e| Err(io::Error::other(format!("the sync task failed: {e}"))));
        match result {
            Ok(()) => {
                *synced = upto;
                Ok(())
            }
            Err(e) => {
                self.poisoned.store(true, Ordering::SeqCst);
                tracing::error!(error = %e, "fsync of the SQLite database failed; refusing further writes");
                Err(e)
            }
        }
    }

    fn check(&self) -> io::Result<()> {
        if self.poisoned.load(Ordering::SeqCst) {
            return Err(io::Error::other("an earlier fsync of the database failed; restart the gateway after checking the disk"));
        }
        Ok(())
    }
}

fn sync_files(files: &[PathBuf]) -> io::Result<()> {
    for f in files {
        match std::fs::File::open(f) {
            Ok(file) => file.sync_data()?,
            // No log (yet, or checkpointed away): nothing of it to sync.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("acp-gateway-durable-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test]
    async fn concurrent_writers_share_syncs_and_all_return() {
        let dir = scratch("share");
        let db = dir.join("x.db");
        std::fs::write(&db, b"data").unwrap();
        std::fs::write(dir.join("x.db-wal"), b"log").unwrap();
        let d = Durability::new(db);
        let tasks: Vec<_> = (0..64).map(|_| {
            let d = d.clone();
            tokio::spawn(async move { d.sync().await })
        }).collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(*d.synced.lock().await, 64, "every ticket is covered by a sync");
    }

    #[tokio::test]
    async fn a_missing_log_is_not_an_error_but_a_failed_sync_poisons() {
        let d = Durability::new(scratch("absent").join("absent.db"));
        d.sync().await.unwrap();
        d.poisoned.store(true, Ordering::SeqCst);
        assert!(d.sync().await.is_err(), "after a failed fsync no write is acknowledged");
    }
}
