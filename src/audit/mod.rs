//! The NEN 7513 audit trail: who did what with which patient's data, when, on what authority.
//!
//! Every stage calls [`append`] inside the transaction of the change it logs, so an entry exists if
//! and only if the change does. The trail is append-only (database triggers refuse UPDATE, DELETE,
//! `INSERT OR REPLACE` over an entry and TRUNCATE) and chained with a secret: entry *n* stores
//! `hash = HMAC-SHA-256(key, hash(n-1) || content(n))`, where `content` is the canonical JSON of the
//! entry including its sequence number and the key ([`key`]) lives in a file, never in the database.
//! Someone who can write the database but has not the key cannot change, insert or reorder an entry
//! and recompute the rest. Signed checkpoints outside the database ([`anchor`]) catch what the chain
//! alone cannot: a cut-off tail or a wiped table. [`verify()`] checks both.
//!
//! Chains written before the key existed were plain SHA-256 chains. They are kept as they are: the
//! first append with a key writes a marker entry (`audit-chain-keyed`, itself keyed) and every entry
//! from the marker on is keyed; the verifier checks the entries before it as the plain chain they are,
//! and they are protected from then on because the keyed entries after them link to their hashes.
//! A chain started with a key is keyed from entry 1 and has no marker.
//!
//! Appends are serialised so the chain stays linear: the single `audit_head` row is read and updated
//! in the appending transaction, with `FOR UPDATE` on PostgreSQL; on SQLite the store's single writer
//! connection already serialises every write transaction.
//!
//! Field names follow NEN 7513:2018 §7 (event, user, object, log data); [`nen7513_json`] writes them
//! with the Dutch names for the per-patient export, and [`fhir`] writes IHE BALP AuditEvents.

pub mod anchor;
pub mod fhir;
pub mod key;
mod verify;

pub use anchor::Anchor;
pub use key::AuditKey;
pub use verify::{verify, Break, Intact, Verdict};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::store::{Backend, Db, RouteRow, Tx};

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened (NEN 7513 gebeurteniscode). The kebab-case names are the gateway's own vocabulary;
/// [`fhir`] maps each to the BALP pattern it follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventCode {
    /// A handover was received, validated and stored (creation of patient data in the gateway).
    HandoverReceived,
    /// A handover was refused because the record or its envelope is invalid.
    ValidationFailed,
    /// A consent decision for one route (permit or deny).
    ConsentDecision,
    /// A route changed status (including its creation).
    RouteStatus,
    /// An operator asked to retry a route.
    OperatorRetry,
    /// An operator cancelled a route.
    OperatorCancel,
    /// An operator replayed a delivered route (a new route linked to the original).
    OperatorReplay,
    /// A route's message was handed to its channel ("overdragen van gegevens"; written by delivery).
    Disclosure,
    /// Patient data was read (a handover, a consent, the patient's audit log).
    PatientRead,
    /// A search that returns patient data.
    PatientQuery,
    /// The patient's privacy consent was recorded or changed through the API.
    ConsentRecorded,
    /// The patient's privacy consent was withdrawn through the API.
    ConsentWithdrawn,
    /// Retention deleted a handover's received payload and rendered messages ("vernietiging").
    RetentionPurge,
    /// From this entry on the chain is keyed (HMAC); the entries before it are an older plain chain.
    AuditChainKeyed,
}

impl EventCode {
    pub fn as_str(self) -> &'static str {
        match self {
            EventCode::HandoverReceived => "handover-received",
            EventCode::ValidationFailed => "validation-failed",
            EventCode::ConsentDecision => "consent-decision",
            EventCode::RouteStatus => "route-status",
            EventCode::OperatorRetry => "operator-retry",
            EventCode::OperatorCancel => "operator-cancel",
            EventCode::OperatorReplay => "operator-replay",
            EventCode::Disclosure => "disclosure",
            EventCode::PatientRead => "patient-read",
            EventCode::PatientQuery => "patient-query",
            EventCode::ConsentRecorded => "consent-recorded",
            EventCode::ConsentWithdrawn => "consent-withdrawn",
            EventCode::RetentionPurge => "retention-purge",
            EventCode::AuditChainKeyed => "audit-chain-keyed",
        }
    }
}

/// NEN 7513 actiecode (RFC 3881 EventActionCode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    C,
    R,
    U,
    D,
    E,
}

/// NEN 7513 resultaat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Success,
    /// Refused: invalid input, or a consent deny.
    Refused,
    Error,
}

impl Outcome {
    /// FHIR AuditEvent.outcome: 0 success, 4 minor failure, 8 serious failure.
    pub fn fhir_code(self) -> &'static str {
        match self {
            Outcome::Success => "0",
            Outcome::Refused => "4",
            Outcome::Error => "8",
        }
    }
}

/// One audit entry's content, before it is chained. Carries no record content: identifiers, codes
/// and short descriptions only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    // --- gebeurtenis (event)
    pub event_code: EventCode,
    pub action: Action,
    /// UTC, RFC 3339.
    pub event_time: String,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome_description: Option<String>,
    // --- gebruiker (user)
    /// The API client (or `system` / `cli` for the gateway itself).
    pub user_id: String,
    /// The organisation the user acts for (`ura:...` / `agb:...`).
    pub user_organization: String,
    pub user_role: String,
    /// On whose behalf the user acted (verantwoordelijke gebruiker), e.g. the sending practitioner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responsible_user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responsible_user_role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_point: Option<String>,
    // --- object (patient / data)
    /// `BSN` when the patient is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient_id_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient_id: Option<String>,
    /// What was acted on: `handover`, `route`, `consent`, `audit-log`.
    pub object_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    /// The rule that authorised the action (autorisatieprotocol).
    pub authorization_protocol: String,
    /// The consent the action relied on (toestemmingsprofiel), e.g. `8b:agreed` or `api:deny`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_profile: Option<String>,
    /// The receiving organisation of a route (consent decisions, disclosures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    // --- loggegevens (log data)
    pub source_id: String,
    // --- links for lookups
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_id: Option<String>,
}

/// Who acted (NEN 7513 gebruiker): the API client, or `system:...` / `cli:...` for the gateway itself.
pub struct Actor {
    pub user_id: String,
    pub organization: String,
    pub role: String,
}

impl AuditEvent {
    /// An entry with the fields every entry must have; the object (type `handover`) and the optional
    /// fields start empty, for the caller to fill with struct update syntax.
    pub fn new(
        code: EventCode,
        action: Action,
        outcome: Outcome,
        event_time: &str,
        actor: Actor,
        authorization_protocol: String,
        source_id: &str,
    ) -> AuditEvent {
        AuditEvent {
            event_code: code,
            action,
            event_time: event_time.to_owned(),
            outcome,
            outcome_description: None,
            user_id: actor.user_id,
            user_organization: actor.organization,
            user_role: actor.role,
            responsible_user_id: None,
            responsible_user_role: None,
            access_point: None,
            patient_id_type: None,
            patient_id: None,
            object_type: "handover".into(),
            object_id: None,
            authorization_protocol,
            consent_profile: None,
            recipient: None,
            source_id: source_id.to_owned(),
            handover_id: None,
            route_id: None,
        }
    }

    /// This entry as one about `route` of the patient `bsn`: object, recipient, handover and route.
    pub fn about_route(self, bsn: &str, route: &RouteRow) -> AuditEvent {
        AuditEvent {
            patient_id_type: Some("BSN".into()),
            patient_id: Some(bsn.to_owned()),
            object_type: "route".into(),
            object_id: Some(route.id.clone()),
            recipient: route.recipient_org.clone(),
            handover_id: Some(route.handover_id.clone()),
            route_id: Some(route.id.clone()),
            ..self
        }
    }
}

/// The chained form: the sequence number is part of what is hashed, so entries cannot be swapped.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChainedContent {
    pub seq: i64,
    #[serde(flatten)]
    pub event: AuditEvent,
}

/// A stored entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub seq: i64,
    pub prev_hash: String,
    pub hash: String,
    pub content: String,
}

impl Entry {
    pub fn event(&self) -> Option<AuditEvent> {
        serde_json::from_str::<ChainedContent>(&self.content).ok().map(|c| c.event)
    }
}

/// The plain link of chains written before the key: `SHA-256(prev_hash || content)`.
pub fn chain_hash(prev_hash: &str, content: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(content.as_bytes());
    hex::encode(h.finalize())
}

/// The keyed link: `HMAC-SHA-256(key, prev_hash || content)`.
pub fn keyed_hash(key: &AuditKey, prev_hash: &str, content: &str) -> String {
    key.mac(&[prev_hash.as_bytes(), content.as_bytes()])
}

/// Takes the chain head lock for the rest of `tx`. Write transactions call it first, so that they are
/// serialised on PostgreSQL as SQLite's single writer serialises them (see `crate::service`).
pub async fn lock(tx: &mut Tx, backend: Backend) -> Result<(), sqlx::Error> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE").fetch_one(&mut **tx).await?;
    }
    Ok(())
}

/// Appends entries to the chain inside `tx`, keyed with `db`'s audit key. Commits with the caller's
/// transaction. A store opened without a key cannot append: an unkeyed entry would break the chain.
pub async fn append(tx: &mut Tx, db: &Db, events: &[AuditEvent]) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    write(tx, db, events, &events[0].event_time, &events[0].source_id).await.map(|_| ())
}

/// Makes sure the chain is keyed: on a chain written before the key, appends the marker entry now
/// (`serve` calls it at start, so the marker carries the start time). Returns the first keyed entry.
pub async fn ensure_keyed(db: &Db, now: &str, source_id: &str) -> Result<i64, sqlx::Error> {
    let mut tx = db.begin().await?;
    lock(&mut tx, db.backend).await?;
    let keyed_from = write(&mut tx, db, &[], now, source_id).await?;
    db.commit(tx).await?;
    Ok(keyed_from)
}

/// The marker entry of [`EventCode::AuditChainKeyed`].
fn marker(key: &AuditKey, keyed_from: i64, time: &str, source_id: &str) -> AuditEvent {
    let actor = Actor { user_id: "system:audit".into(), organization: "system".into(), role: "system".into() };
    AuditEvent {
        object_type: "audit-log".into(),
        outcome_description: Some(format!(
            "the audit chain is keyed (HMAC-SHA-256, key id {}) from this entry, {keyed_from}, on; entries 1 to {} are the earlier plain SHA-256 chain",
            key.id(),
            keyed_from - 1
        )),
        ..AuditEvent::new(EventCode::AuditChainKeyed, Action::E, Outcome::Success, time, actor, "gateway start-up with an audit key".into(), source_id)
    }
}

/// The head row and the appends: the marker first when the chain is not keyed yet.
async fn write(tx: &mut Tx, db: &Db, events: &[AuditEvent], time: &str, source_id: &str) -> Result<i64, sqlx::Error> {
    let key = db.audit_key().ok_or_else(|| {
        sqlx::Error::Configuration("no audit key loaded: the chain cannot be extended without it ([audit] key_file)".into())
    })?;
    let lock = if db.backend == Backend::Postgres { " FOR UPDATE" } else { "" };
    let head = sqlx::query(crate::store::assembled(format!("SELECT seq, hash, keyed_from FROM audit_head WHERE id = 1{lock}")))
        .fetch_one(&mut **tx)
        .await?;
    let (mut seq, mut hash): (i64, String) = (head.try_get("seq")?, head.try_get("hash")?);
    let stored_keyed_from: Option<i64> = head.try_get("keyed_from")?;
    let mut all: Vec<AuditEvent> = Vec::with_capacity(events.len() + 1);
    let keyed_from = match stored_keyed_from {
        Some(k) => k,
        None if seq == 0 => 1,
        None => {
            all.push(marker(key, seq + 1, time, source_id));
            seq + 1
        }
    };
    all.extend_from_slice(events);
    if all.is_empty() {
        if stored_keyed_from.is_none() {
            sqlx::query("UPDATE audit_head SET keyed_from = $1 WHERE id = 1").bind(keyed_from).execute(&mut **tx).await?;
        }
        return Ok(keyed_from);
    }

    // One multi-row INSERT: an accepted handover writes several entries, and a round trip each would
    // be most of its cost on SQLite.
    const COLS: usize = 9;
    let mut rows = Vec::with_capacity(all.len());
    for event in &all {
        seq += 1;
        let content = serde_json::to_string(&ChainedContent { seq, event: event.clone() })
            .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        let new_hash = keyed_hash(key, &hash, &content);
        rows.push((seq, std::mem::replace(&mut hash, new_hash.clone()), new_hash, content, event));
    }
    // SQLite allows 32766 bound values per statement; 200 rows of 9 stay far below it.
    for chunk in rows.chunks(200) {
        let values = (0..chunk.len())
            .map(|i| format!("({})", (1..=COLS).map(|c| format!("${}", i * COLS + c)).collect::<Vec<_>>().join(", ")))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO audit_entries (seq, prev_hash, hash, content, event_code, recorded_at, patient_bsn, organization, handover_id) VALUES {values}"
        );
        let mut q = sqlx::query(crate::store::assembled(sql));
        for (seq, prev, hash, content, e) in chunk {
            q = q
                .bind(*seq)
                .bind(prev.as_str())
                .bind(hash.as_str())
                .bind(content.as_str())
                .bind(e.event_code.as_str())
                .bind(e.event_time.as_str())
                .bind(e.patient_id.as_deref())
                .bind(e.user_organization.as_str())
                .bind(e.handover_id.as_deref());
        }
        q.execute(&mut **tx).await?;
    }
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2, keyed_from = $3 WHERE id = 1")
        .bind(seq)
        .bind(&hash)
        .bind(keyed_from)
        .execute(&mut **tx)
        .await?;
    Ok(keyed_from)
}

/// The chain's head: its last entry, that entry's hash, and the first keyed entry (None before keying).
pub async fn head(db: &Db) -> Result<(i64, String, Option<i64>), sqlx::Error> {
    let r = sqlx::query("SELECT seq, hash, keyed_from FROM audit_head WHERE id = 1").fetch_one(db.reader()).await?;
    Ok((r.try_get("seq")?, r.try_get("hash")?, r.try_get("keyed_from")?))
}

/// Start-up check that `db`'s key is the key the chain was written with: the last entry, when keyed,
/// must verify under it. Another node's or a lost key would otherwise fork the chain silently.
pub async fn check_key(db: &Db) -> Result<(), String> {
    let key = db.audit_key().ok_or("no audit key loaded")?;
    let (seq, hash, keyed_from) = head(db).await.map_err(|e| e.to_string())?;
    if !keyed_from.is_some_and(|k| seq >= k) {
        return Ok(());
    }
    let r = sqlx::query("SELECT prev_hash, hash, content FROM audit_entries WHERE seq = $1")
        .bind(seq)
        .fetch_optional(db.reader())
        .await
        .map_err(|e| e.to_string())?;
    let ok = r.is_some_and(|r| {
        let (prev, stored, content): (String, String, String) =
            (r.try_get("prev_hash").unwrap_or_default(), r.try_get("hash").unwrap_or_default(), r.try_get("content").unwrap_or_default());
        stored == hash && keyed_hash(key, &prev, &content) == stored
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the audit key (key id {}) does not verify the chain's last entry {seq}: the chain was written with another key, or its end was rewritten; run `acp-gateway audit verify`",
            key.id()
        ))
    }
}

/// The number of entries in the chain (its head's sequence number).
pub async fn chain_length(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT seq FROM audit_head WHERE id = 1").fetch_one(db.reader()).await?.try_get("seq")
}

pub(crate) fn entry_of(r: &sqlx::any::AnyRow) -> Result<Entry, sqlx::Error> {
    Ok(Entry { seq: r.try_get("seq")?, prev_hash: r.try_get("prev_hash")?, hash: r.try_get("hash")?, content: r.try_get("content")? })
}

/// The patient's entries, oldest first; `visible_to` limits them to what one organisation may see
/// (entries it wrote, and entries about handovers it sent or receives).
pub async fn patient_entries(db: &Db, bsn: &str, visible_to: Option<&str>) -> Result<Vec<Entry>, sqlx::Error> {
    let rows = match visible_to {
        None => {
            sqlx::query("SELECT seq, prev_hash, hash, content FROM audit_entries WHERE patient_bsn = $1 ORDER BY seq")
                .bind(bsn)
                .fetch_all(db.reader())
                .await?
        }
        Some(org) => {
            sqlx::query(
                "SELECT a.seq, a.prev_hash, a.hash, a.content FROM audit_entries a WHERE a.patient_bsn = $1 AND \
                   (a.organization = $2 OR a.handover_id IN \
                      (SELECT h.id FROM handovers h WHERE h.organization = $2 \
                       UNION SELECT r.handover_id FROM routes r WHERE r.recipient_org = $2)) \
                 ORDER BY a.seq",
            )
            .bind(bsn)
            .bind(org)
            .fetch_all(db.reader())
            .await?
        }
    };
    rows.iter().map(entry_of).collect()
}

/// An entry with the NEN 7513:2018 §7 field names, grouped as the standard groups them.
pub fn nen7513_json(e: &Entry) -> Value {
    let Some(ev) = e.event() else {
        return json!({"volgnummer": e.seq, "hash": e.hash, "fout": "unreadable entry"});
    };
    json!({
        "volgnummer": e.seq,
        "gebeurtenis": {
            "gebeurteniscode": ev.event_code.as_str(),
            "actiecode": ev.action,
            "datumTijd": ev.event_time,
            "resultaat": ev.outcome,
            "toelichting": ev.outcome_description,
        },
        "gebruiker": {
            "gebruikersId": ev.user_id,
            "organisatie": ev.user_organization,
            "gebruikersrol": ev.user_role,
            "verantwoordelijkeGebruikerId": ev.responsible_user_id,
            "verantwoordelijkeGebruikerRol": ev.responsible_user_role,
            "toegangspunt": ev.access_point,
        },
        "object": {
            "identificatortype": ev.patient_id_type,
            "identificator": ev.patient_id,
            "klasse": ev.object_type,
            "objectId": ev.object_id,
            "autorisatieprotocol": ev.authorization_protocol,
            "toestemmingsprofiel": ev.consent_profile,
            "ontvanger": ev.recipient,
            "overdrachtId": ev.handover_id,
            "routeId": ev.route_id,
        },
        "loggegevens": {
            "bronId": ev.source_id,
            "vorigeHash": e.prev_hash,
            "hash": e.hash,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_the_previous_hash_and_the_content() {
        let a = chain_hash(GENESIS, "{}");
        assert_ne!(a, chain_hash(GENESIS, "{ }"));
        assert_ne!(a, chain_hash(&a, "{}"));
        assert_eq!(a.len(), 64);
    }
}
