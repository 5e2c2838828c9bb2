//! The audit chain's secret: an HMAC-SHA-256 key held outside the database.
//!
//! A plain hash chain proves nothing against someone who can write the database: they change an entry
//! and recompute every hash after it. Keyed with a secret the database never sees, the chain can be
//! extended and rewritten only by whoever holds the key file. The key is the trimmed content of the
//! file (at least 32 bytes, e.g. `openssl rand -hex 32`); its *key id* (a truncated MAC of a fixed
//! label) names it in marker entries and anchors without revealing it, so a wrong key file is told
//! apart from a rewritten trail.

use std::io::Write;
use std::path::Path;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// The fewest key bytes accepted: HMAC-SHA-256 gains nothing from more, and fewer is guessable.
pub const MIN_KEY_BYTES: usize = 32;

/// The key. Its bytes never leave this type (no Debug, no Display of them).
#[derive(Clone)]
pub struct AuditKey {
    bytes: Vec<u8>,
    id: String,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditKey(id {})", self.id)
    }
}

impl AuditKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<AuditKey, String> {
        if bytes.len() < MIN_KEY_BYTES {
            return Err(format!("the audit key has {} bytes, at least {MIN_KEY_BYTES} are needed", bytes.len()));
        }
        let mut key = AuditKey { bytes: bytes.to_vec(), id: String::new() };
        key.id = key.mac(&[b"acp-gateway audit key id"])[..16].to_owned();
        Ok(key)
    }

    /// Reads the key file: missing, unreadable or too short is an error (never a fallback).
    pub fn load(path: &Path) -> Result<AuditKey, String> {
        let raw = std::fs::read(path).map_err(|e| format!("audit key file {}: {e}", path.display()))?;
        let key = AuditKey::from_bytes(raw.trim_ascii()).map_err(|e| format!("audit key file {}: {e}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = std::fs::metadata(path) {
                if meta.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(path = %path.display(), "the audit key file is readable by others than its owner; make it mode 0600");
                }
            }
        }
        Ok(key)
    }

    /// Reads the key file, or creates it with a new random key (mode 0600) when there is none.
    /// Returns whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(AuditKey, bool), String> {
        if path.exists() {
            return AuditKey::load(path).map(|k| (k, false));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let text = hex::encode(bytes);
        let mut opts = std::fs::OpenOptions::new();
        // create_new: two processes starting at once must not each write a key of their own.
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        match opts.open(path) {
            Ok(mut f) => {
                writeln!(f, "{text}").and_then(|_| f.sync_all()).map_err(|e| format!("{}: {e}", path.display()))?;
                crate::audit::anchor::sync_dir(path);
                AuditKey::from_bytes(text.as_bytes()).map(|k| (k, true))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => AuditKey::load(path).map(|k| (k, false)),
            Err(e) => Err(format!("audit key file {}: {e}", path.display())),
        }
    }

    /// The key id: 16 hex digits, safe to print and to store.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// HMAC-SHA-256 over the concatenated parts, as hex.
    pub fn mac(&self, parts: &[&[u8]]) -> String {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.bytes).expect("HMAC takes keys of any length");
        for p in parts {
            m.update(p);
        }
        hex::encode(m.finalize().into_bytes())
    }

    /// Compares a stored MAC with the one computed here, in constant time.
    pub fn verify(&self, parts: &[&[u8]], stored_hex: &str) -> bool {
        let Ok(stored) = hex::decode(stored_hex) else { return false };
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.bytes).expect("HMAC takes keys of any length");
        for p in parts {
            m.update(p);
        }
        m.verify_slice(&stored).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keys_are_refused_and_the_id_does_not_reveal_the_key() {
        assert!(AuditKey::from_bytes(&[7u8; 31]).is_err());
        let k = AuditKey::from_bytes(&[7u8; 32]).unwrap();
        assert_eq!(k.id().len(), 16);
        assert!(!format!("{k:?}").contains("0707"));
        let mac = k.mac(&[b"a", b"bc"]);
        assert_eq!(mac, k.mac(&[b"ab", b"c"]));
        assert!(k.verify(&[b"abc"], &mac));
        assert!(!AuditKey::from_bytes(&[8u8; 32]).unwrap().verify(&[b"abc"], &mac));
    }

    #[test]
    fn a_created_key_is_owner_only_and_read_back_the_same() {
        let dir = std::env::temp_dir().join(format!("acp-audit-key-{}", rand::rng().next_u64()));
        let path = dir.join("audit-key");
        let (a, created) = AuditKey::load_or_create(&path).unwrap();
        assert!(created);
        let (b, created) = AuditKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(a.id(), b.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert!(AuditKey::load(&dir.join("missing")).unwrap_err().contains("missing"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
