//! `audit verify`: walks the whole chain and checks every anchor against it.
//!
//! The walk finds a changed entry (its link no longer verifies), an inserted or reordered one (a
//! broken link or sequence), a deleted one (a gap), lookup columns that disagree with the hashed
//! content, and a head row that disagrees with the last entry. Under the key, nobody without it can
//! rewrite entries and recompute the links. The anchors then find what a consistent shorter chain
//! hides: an anchored entry that is gone (a cut tail, a wiped table) or different (a rewrite even
//! with the key), and a chain rewritten as an unkeyed one.
//!
//! Entries are plain SHA-256 links until the chain is keyed: from entry 1 (a chain started with a
//! key) or from the `audit-chain-keyed` marker; after that every entry must be keyed.

use std::collections::BTreeMap;
use std::path::Path;

use sqlx::Row;

use super::anchor::{self, Anchor};
use super::{chain_hash, entry_of, keyed_hash, AuditKey, ChainedContent, EventCode, GENESIS};
use crate::store::Db;

/// The first place where the trail is broken, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// The sequence number where the break was found (the entry expected or found there).
    pub seq: i64,
    pub reason: String,
}

/// An intact trail, with what the check covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intact {
    pub entries: i64,
    pub head: String,
    /// The first keyed entry; None for a chain written before keying (plain SHA-256 only).
    pub keyed_from: Option<i64>,
    pub anchors: usize,
    /// The newest anchor's entry and time.
    pub last_anchor: Option<(i64, String)>,
    /// Lines of the anchor file that are no anchor (a line torn by a crash), skipped.
    pub torn_lines: usize,
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Intact(Intact),
    Broken(Break),
}

fn broken(seq: i64, reason: String) -> Result<Verdict, String> {
    Ok(Verdict::Broken(Break { seq, reason }))
}

/// Checks the chain in `db` with `key` (None: only a chain written before keying can be checked)
/// against the anchors in `anchor_path`. Err: the trail could not be read or checked at all.
pub async fn verify(db: &Db, key: Option<&AuditKey>, anchor_path: &Path) -> Result<Verdict, String> {
    let file = anchor::read(anchor_path).map_err(|e| format!("anchor file {}: {e}", anchor_path.display()))?;
    let place = |line: usize, a: &Anchor| format!("the anchor at line {line} of {} (entry {}, {})", anchor_path.display(), a.seq, a.time);
    if !file.anchors.is_empty() {
        let Some(key) = key else {
            return Err(format!("{} holds anchors, and checking them needs the audit key ([audit] key_file)", anchor_path.display()));
        };
        for (line, a) in &file.anchors {
            if !a.mac_ok(key) {
                let why = if a.key_id != key.id() {
                    format!("it was written with key id {}, and this key is {} (the wrong key file?)", a.key_id, key.id())
                } else {
                    "it was altered or forged".to_owned()
                };
                return broken(a.seq, format!("{} does not verify: {why}", place(*line, a)));
            }
        }
    }
    let mut by_seq: BTreeMap<i64, Vec<(usize, &Anchor)>> = BTreeMap::new();
    for (line, a) in &file.anchors {
        by_seq.entry(a.seq).or_default().push((*line, a));
    }
    for (line, a) in by_seq.get(&0).into_iter().flatten() {
        if a.head != GENESIS {
            return broken(0, format!("{} does not hold the genesis hash", place(*line, a)));
        }
    }

    const PAGE: i64 = 1000;
    let mut expected_seq = 1i64;
    let mut prev = GENESIS.to_owned();
    let mut keyed_from: Option<i64> = None;
    let db_err = |e: sqlx::Error| e.to_string();
    loop {
        let rows = sqlx::query(
            "SELECT seq, prev_hash, hash, content, event_code, recorded_at, patient_bsn, organization, handover_id \
             FROM audit_entries WHERE seq >= $1 ORDER BY seq LIMIT $2",
        )
        .bind(expected_seq)
        .bind(PAGE)
        .fetch_all(db.reader())
        .await
        .map_err(db_err)?;
        let n = rows.len() as i64;
        for r in &rows {
            let e = entry_of(r).map_err(db_err)?;
            if e.seq != expected_seq {
                return broken(expected_seq, format!("entry {expected_seq} is missing (the next entry is {})", e.seq));
            }
            if e.prev_hash != prev {
                return broken(
                    e.seq,
                    format!("entry {} does not link to the entry before it (prev_hash {} but the previous hash is {prev})", e.seq, e.prev_hash),
                );
            }
            let parsed = serde_json::from_str::<ChainedContent>(&e.content);
            let keyed_ok = key.map(|k| keyed_hash(k, &prev, &e.content) == e.hash);
            if keyed_from.is_some() {
                match keyed_ok {
                    Some(true) => {}
                    Some(false) => {
                        return broken(e.seq, format!("entry {} was changed: its MAC under the audit key does not match the stored {}", e.seq, e.hash))
                    }
                    None => return Err(format!("entry {} onwards are keyed, and checking them needs the audit key ([audit] key_file)", e.seq)),
                }
            } else if keyed_ok == Some(true) {
                // Keying starts at entry 1 or at the marker, nowhere else.
                let is_marker = parsed.as_ref().is_ok_and(|c| c.event.event_code == EventCode::AuditChainKeyed);
                if e.seq != 1 && !is_marker {
                    return broken(e.seq, format!("entry {} is keyed, but no marker entry starts the keyed chain there", e.seq));
                }
                keyed_from = Some(e.seq);
            } else if chain_hash(&prev, &e.content) != e.hash {
                return match keyed_ok {
                    Some(_) => broken(e.seq, format!("entry {} was changed: its content does not give the stored hash {}", e.seq, e.hash)),
                    None => Err(format!(
                        "entry {} is not a plain SHA-256 link: it is keyed (and no audit key is available, [audit] key_file) or it was changed",
                        e.seq
                    )),
                };
            } else if parsed.as_ref().is_ok_and(|c| c.event.event_code == EventCode::AuditChainKeyed) {
                return broken(e.seq, format!("entry {} claims to start the keyed chain but is not keyed", e.seq));
            }
            let parsed = match parsed {
                Ok(c) => c,
                Err(err) => return broken(e.seq, format!("entry {} content is not an audit entry: {err}", e.seq)),
            };
            if parsed.seq != e.seq {
                return broken(e.seq, format!("entry {} carries sequence number {} in its content", e.seq, parsed.seq));
            }
            // The lookup columns are outside the hash; they must say what the content says, or an
            // entry could be hidden from a patient's export without touching the chain.
            let ev = &parsed.event;
            let columns_agree = r.try_get::<String, _>("event_code").map_err(db_err)? == ev.event_code.as_str()
                && r.try_get::<String, _>("recorded_at").map_err(db_err)? == ev.event_time
                && r.try_get::<Option<String>, _>("patient_bsn").map_err(db_err)? == ev.patient_id
                && r.try_get::<String, _>("organization").map_err(db_err)? == ev.user_organization
                && r.try_get::<Option<String>, _>("handover_id").map_err(db_err)? == ev.handover_id;
            if !columns_agree {
                return broken(e.seq, format!("entry {}: its lookup columns disagree with its hashed content", e.seq));
            }
            for (line, a) in by_seq.get(&e.seq).into_iter().flatten() {
                if a.head != e.hash {
                    return broken(
                        e.seq,
                        format!("entry {} is not the entry {} vouches for: the trail was rewritten at or before entry {}", e.seq, place(*line, a), e.seq),
                    );
                }
            }
            prev = e.hash;
            expected_seq += 1;
        }
        if n < PAGE {
            break;
        }
    }
    let last = expected_seq - 1;

    // Anchors beyond the end: the tail was cut (and the head row reset to match), or all was wiped.
    if let Some((seq, list)) = by_seq.range(last + 1..).next() {
        let (line, a) = list[0];
        let what = if last == 0 { "the audit table was emptied".to_owned() } else { format!("entries from {} on were removed", last + 1) };
        return broken(last + 1, format!("the trail ends at entry {last}, but {} vouches for entry {seq}: {what}", place(line, a)));
    }
    let (head_seq, head_hash, _) = super::head(db).await.map_err(db_err)?;
    if head_seq != last || head_hash != prev {
        return broken(
            last + 1,
            format!("the chain ends at entry {last} (hash {prev}) but its head says entry {head_seq} (hash {head_hash}): entries were removed from the end"),
        );
    }
    // An unkeyed rewrite of a keyed chain: the anchors remember where keying began.
    for (line, a) in &file.anchors {
        if last >= a.keyed_from && keyed_from != Some(a.keyed_from) {
            let found = keyed_from.map_or("the trail is not keyed at all".to_owned(), |k| format!("the trail is keyed from entry {k}"));
            return broken(a.keyed_from, format!("{} says the chain is keyed from entry {}, but {found}: it was rewritten", place(*line, a), a.keyed_from));
        }
    }
    if keyed_from.is_some() && file.anchors.is_empty() {
        return broken(
            last + 1,
            format!(
                "the chain is keyed but {} holds no anchor ({}): a cut-off tail or a wiped table could not be seen; was the anchor log removed, or is this the wrong file ([audit] anchor_file)?",
                anchor_path.display(),
                if file.exists { "no valid line" } else { "no such file" }
            ),
        );
    }
    let last_anchor = file.anchors.iter().max_by_key(|(_, a)| a.seq).map(|(_, a)| (a.seq, a.time.clone()));
    Ok(Verdict::Intact(Intact {
        entries: last,
        head: prev,
        keyed_from,
        anchors: file.anchors.len(),
        last_anchor,
        torn_lines: file.unreadable.len(),
    }))
}
