//! Anchors: signed checkpoints of the audit chain, kept outside the database.
//!
//! The keyed chain stops anyone without the key from changing or inserting entries, but not from
//! removing entries from the end (and resetting the head row), or from wiping the table: what is left
//! is still a valid chain. An anchor is a line `{"seq", "head", "keyed_from", "time", "key_id", "mac"}`
//! appended (O_APPEND, fsynced) to a file the database cannot reach: entry `seq` had hash `head`, the
//! chain was keyed from entry `keyed_from`, MAC'd with the audit key. `serve` writes one at start,
//! every `anchor_every_entries` entries or `anchor_every_seconds` seconds, and at shutdown; `audit
//! verify` checks every anchor against the chain, so cutting behind an anchor, wiping, or rewriting an
//! anchored entry (even with the key) shows. What an attacker can still remove unnoticed is what was
//! appended after the last anchor.
//!
//! A crash (kill -9, power loss) can leave a torn last line. The next append first ends it with a
//! newline, and the reader skips lines that are not an anchor at all (counted and reported), while a
//! complete anchor whose MAC does not verify is a failure: a torn line says nothing, a wrong MAC is a
//! forgery or a wrong key.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::audit::key::AuditKey;

/// One checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anchor {
    /// The entry vouched for (0: the empty chain, whose head is the genesis hash).
    pub seq: i64,
    /// That entry's chain hash.
    pub head: String,
    /// The first keyed entry (1 for a chain keyed from the start; else the marker entry).
    pub keyed_from: i64,
    /// When the anchor was written, UTC RFC 3339.
    pub time: String,
    /// The key's id, to tell a wrong key file from a forged anchor.
    pub key_id: String,
    /// HMAC-SHA-256 over the fields above.
    pub mac: String,
}

impl Anchor {
    pub fn new(key: &AuditKey, seq: i64, head: &str, keyed_from: i64, time: &str) -> Anchor {
        let mut a = Anchor { seq, head: head.to_owned(), keyed_from, time: time.to_owned(), key_id: key.id().to_owned(), mac: String::new() };
        a.mac = key.mac(&[a.signed_text().as_bytes()]);
        a
    }

    fn signed_text(&self) -> String {
        format!("acp-gateway audit anchor v1\n{}\n{}\n{}\n{}\n{}", self.seq, self.head, self.keyed_from, self.time, self.key_id)
    }

    pub fn mac_ok(&self, key: &AuditKey) -> bool {
        key.verify(&[self.signed_text().as_bytes()], &self.mac)
    }
}

/// Appends one anchor and fsyncs it. A torn last line (a crash mid-write) is ended first, so that
/// it cannot swallow this anchor.
pub fn append(path: &Path, anchor: &Anchor) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let existed = path.exists();
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o640);
    }
    let mut f = opts.open(path)?;
    let mut line = serde_json::to_string(anchor).map_err(std::io::Error::other)?;
    line.push('\n');
    let len = f.metadata()?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        f.seek(SeekFrom::Start(len - 1))?;
        f.read_exact(&mut last)?;
        if last[0] != b'\n' {
            line.insert(0, '\n');
        }
    }
    // One write of the whole line: with O_APPEND it lands at the end even if another process appends.
    f.write_all(line.as_bytes())?;
    f.sync_data()?;
    if !existed {
        sync_dir(path);
    }
    Ok(())
}

/// Makes a newly created file's directory entry durable (best effort: not every platform can).
pub fn sync_dir(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// What the anchor file holds.
#[derive(Debug, Default)]
pub struct AnchorFile {
    pub exists: bool,
    /// (line number from 1, anchor), in file order.
    pub anchors: Vec<(usize, Anchor)>,
    /// Line numbers of lines that are not an anchor (torn by a crash).
    pub unreadable: Vec<usize>,
}

pub fn read(path: &Path) -> std::io::Result<AnchorFile> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AnchorFile::default()),
        Err(e) => return Err(e),
    };
    let mut out = AnchorFile { exists: true, ..AnchorFile::default() };
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Anchor>(line) {
            Ok(a) => out.anchors.push((i + 1, a)),
            Err(_) => out.unreadable.push(i + 1),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> AuditKey {
        AuditKey::from_bytes(&[3u8; 32]).unwrap()
    }

    #[test]
    fn a_torn_line_is_ended_and_skipped_and_the_next_anchor_survives() {
        let dir = std::env::temp_dir().join(format!("acp-anchor-{}", rand::random::<u64>()));
        let path = dir.join("a.log");
        let k = key();
        append(&path, &Anchor::new(&k, 1, "aa", 1, "t1")).unwrap();
        // A crash in the middle of the second line.
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"seq\":2,\"he").unwrap();
        append(&path, &Anchor::new(&k, 3, "cc", 1, "t3")).unwrap();
        let f = read(&path).unwrap();
        assert_eq!(f.anchors.iter().map(|(_, a)| a.seq).collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(f.unreadable, vec![2]);
        assert!(f.anchors.iter().all(|(_, a)| a.mac_ok(&k)));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_changed_anchor_or_another_key_fails_its_mac() {
        let k = key();
        let a = Anchor::new(&k, 5, "ab", 1, "t");
        assert!(a.mac_ok(&k));
        assert!(!Anchor { seq: 4, ..a.clone() }.mac_ok(&k));
        assert!(!Anchor { keyed_from: 2, ..a.clone() }.mac_ok(&k));
        assert!(!a.mac_ok(&AuditKey::from_bytes(&[4u8; 32]).unwrap()));
    }

    proptest::proptest! {
        /// A crash can cut the file at any byte: every anchor written completely before the cut is
        /// read back and verifies, the torn rest is at most one skipped line, and the next anchor
        /// is read back whole.
        #[test]
        fn a_cut_at_any_byte_loses_only_the_torn_line(n in 1usize..5, cut_back in 0usize..200) {
            let dir = std::env::temp_dir().join(format!("acp-anchor-cut-{}", rand::random::<u64>()));
            let path = dir.join("a.log");
            let k = key();
            for i in 0..n {
                append(&path, &Anchor::new(&k, i as i64, &format!("{i:02x}"), 1, "2026-01-01T00:00:00.000Z")).unwrap();
            }
            let full = std::fs::read(&path).unwrap();
            let cut = full.len().saturating_sub(cut_back);
            std::fs::write(&path, &full[..cut]).unwrap();
            // A line survives when all of its text does (its newline may be the byte that was cut).
            let complete = full.iter().enumerate().filter(|(i, b)| **b == b'\n' && *i <= cut).count();
            append(&path, &Anchor::new(&k, 99, "ff", 1, "2026-01-01T00:00:01.000Z")).unwrap();
            let f = read(&path).unwrap();
            let seqs: Vec<i64> = f.anchors.iter().map(|(_, a)| a.seq).collect();
            let mut expected: Vec<i64> = (0..complete as i64).collect();
            expected.push(99);
            proptest::prop_assert_eq!(seqs, expected);
            proptest::prop_assert!(f.anchors.iter().all(|(_, a)| a.mac_ok(&k)));
            proptest::prop_assert!(f.unreadable.len() <= 1);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
