//! The spool sink: writes each rendered message as one file into `<spool_dir>/<channel>/`, for
//! integrators' pick-up clients, the print/transfer queue and the embedded default.
//!
//! A file appears whole or not at all: the bytes go to a temporary file in the same directory, which
//! is fsynced, renamed to its final name, and the directory is fsynced so the rename itself survives
//! a power loss. The final name comes from the delivery key, so an attempt repeated after a crash
//! (delivered, but killed before the outcome was recorded) overwrites the same file instead of
//! leaving a second copy. Pick-up clients must ignore names starting with `.` (temporary files a crash
//! may leave behind).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{file_name, BoxFuture, Failure, Outgoing, Receipt, Sink};

pub struct SpoolSink {
    dir: PathBuf,
}

impl SpoolSink {
    /// A spool into `dir` (the channel's own directory), created on the first delivery if missing.
    pub fn new(dir: PathBuf) -> SpoolSink {
        SpoolSink { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn write_atomically(dir: &Path, name: &str, body: &[u8]) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.{}.tmp", crate::service::clock::new_id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(body)?;
        f.sync_all()?;
        let target = dir.join(name);
        std::fs::rename(&tmp, &target)?;
        std::fs::File::open(dir)?.sync_all()?;
        Ok(target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

impl Sink for SpoolSink {
    fn kind(&self) -> &'static str {
        "spool"
    }

    fn deliver<'a>(&'a self, msg: &'a Outgoing<'a>) -> BoxFuture<'a, Result<Receipt, Failure>> {
        Box::pin(async move {
            let dir = self.dir.clone();
            let name = file_name(msg.delivery_key, msg.content_type);
            let body = msg.body.to_vec();
            let written = tokio::task::spawn_blocking(move || write_atomically(&dir, &name, &body))
                .await
                .map_err(|e| Failure::Transient(format!("spool writer failed: {e}")))?;
            match written {
                Ok(path) => Ok(Receipt { detail: format!("spooled to {}", path.display()) }),
                // A full disk, a missing mount or a wrong permission is an operator's to fix; the
                // message waits for it with the usual backoff.
                Err(e) => Err(Failure::Transient(format!("cannot write to the spool {}: {e}", self.dir.display()))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_escape_the_directory() {
        assert_eq!(file_name("../../etc/passwd", "text/plain"), "_.._etc_passwd.txt");
        assert_eq!(file_name("abc-1", "application/edifact"), "abc-1.edi");
        assert_eq!(file_name("...", "application/fhir+json; fhirVersion=4.0"), "message.json");
    }

    #[test]
    fn a_repeated_write_replaces_the_file() {
        let dir = std::env::temp_dir().join(format!("acp-spool-unit-{}", crate::service::clock::new_id()));
        write_atomically(&dir, "k.txt", b"one").unwrap();
        write_atomically(&dir, "k.txt", b"two").unwrap();
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(names.len(), 1);
        assert_eq!(std::fs::read(dir.join("k.txt")).unwrap(), b"two");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
