//! The outbox's SQL: claiming due routes with a lease, recording an attempt's outcome only while the
//! lease is still the worker's, replays, and the MDO worklist.
//!
//! Claiming works the same on both databases: inside a write transaction the due routes are selected
//! and marked `delivering` with a lease. On PostgreSQL the select is `FOR UPDATE OF r SKIP LOCKED`, so
//! several workers and several processes never take the same route; on SQLite the store's single
//! writer connection serialises claiming transactions, which gives one node the same semantics.
//! The final update of an attempt is conditional on `status = 'delivering' AND lease_owner = <token>`:
//! a route an operator cancelled, or a consent withdrawal blocked, while the attempt was in flight
//! keeps its new status.
//!
//! Waking: a process's own workers are woken in memory when it makes a route due; on PostgreSQL the
//! transaction that does so also sends `NOTIFY acp_gateway_due` ([`announce_due`], delivered at
//! commit), which the workers of every other process hear through [`listen_due`], so a separate
//! `acp-gateway worker` starts at once instead of at its next poll.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{Any, Executor, Row};

use super::{assembled, route_row, Backend, Db, RouteRow, Tx, ROUTE_COLS};

/// The PostgreSQL notification channel for "a route became due".
const DUE_CHANNEL: &str = "acp_gateway_due";

/// Inside a transaction that makes a route due: tells the other processes' workers, at commit
/// (PostgreSQL; SQLite has no other processes to tell but through the file, which they poll).
pub async fn announce_due(tx: &mut Tx, backend: Backend) -> Result<(), sqlx::Error> {
    if backend == Backend::Postgres {
        sqlx::query(assembled(format!("NOTIFY {DUE_CHANNEL}"))).execute(&mut **tx).await?;
    }
    Ok(())
}

/// On PostgreSQL: a task that wakes `wake`'s waiters whenever any process announces a due route,
/// reconnecting after a lost connection (polling covers the gap). `None` on SQLite.
pub fn listen_due(db: &Db, wake: Arc<tokio::sync::Notify>) -> Option<tokio::task::JoinHandle<()>> {
    let url = db.postgres_url.clone()?;
    Some(tokio::spawn(async move {
        loop {
            if let Err(e) = listen(&url, &wake).await {
                tracing::warn!(error = %e, "listening for due routes failed; polling meanwhile, reconnecting");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }))
}

/// Listens until the connection fails for good (`PgListener` itself reconnects once per loss).
async fn listen(url: &str, wake: &tokio::sync::Notify) -> Result<(), sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen(DUE_CHANNEL).await?;
    loop {
        listener.recv().await?;
        wake.notify_waiters();
    }
}

/// A claimed (or claimable) route with what the worker needs of its handover.
#[derive(Debug, Clone)]
pub struct DueRoute {
    pub route: RouteRow,
    /// The sending organisation and client (on whose behalf the gateway delivers).
    pub organization: String,
    pub client_id: String,
    pub patient_bsn: String,
    /// Form item 8b of the handover (`agreed` | `unknown` | NULL).
    pub sharing_consent: Option<String>,
}

/// The condition of a route a worker may claim at `$1` (now).
const DUE: &str = "((r.status IN ('pending', 'retrying') AND r.next_attempt_at <= $1) \
                    OR (r.status = 'delivering' AND r.lease_expires_at <= $1))";

/// Whether any route is due (a cheap read, so an idle worker does not take the writer).
pub async fn any_due<'e, E: Executor<'e, Database = Any>>(e: E, now: &str) -> Result<bool, sqlx::Error> {
    let q = format!("SELECT r.id FROM routes r WHERE {DUE} LIMIT 1");
    Ok(sqlx::query(assembled(q)).bind(now).fetch_optional(e).await?.is_some())
}

/// Selects up to `limit` due routes inside `tx`, locked (PostgreSQL: skipping those another worker
/// holds). The caller marks each one claimed or blocked before committing.
pub async fn select_due(tx: &mut Tx, backend: Backend, now: &str, limit: i64) -> Result<Vec<DueRoute>, sqlx::Error> {
    let cols = ROUTE_COLS.split(", ").map(|c| format!("r.{}", c.trim())).collect::<Vec<_>>().join(", ");
    let lock = if backend == Backend::Postgres { " FOR UPDATE OF r SKIP LOCKED" } else { "" };
    let q = format!(
        "SELECT {cols}, h.organization AS h_organization, h.client_id AS h_client_id, h.patient_bsn AS h_patient_bsn, \
           h.sharing_consent AS h_sharing_consent \
         FROM routes r JOIN handovers h ON h.id = r.handover_id WHERE {DUE} \
         ORDER BY r.next_attempt_at, r.id LIMIT $2{lock}"
    );
    let rows = sqlx::query(assembled(q)).bind(now).bind(limit).fetch_all(&mut **tx).await?;
    rows.iter()
        .map(|r| {
            Ok(DueRoute {
                route: route_row(r)?,
                organization: r.try_get("h_organization")?,
                client_id: r.try_get("h_client_id")?,
                patient_bsn: r.try_get("h_patient_bsn")?,
                sharing_consent: r.try_get("h_sharing_consent")?,
            })
        })
        .collect()
}

/// Marks a selected route `delivering` under a lease, counting the attempt, with the consent
/// decision just taken.
pub async fn mark_claimed(
    tx: &mut Tx,
    route_id: &str,
    lease_owner: &str,
    lease_expires_at: &str,
    consent_reason: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE routes SET status = 'delivering', attempts = attempts + 1, lease_owner = $1, lease_expires_at = $2, \
           consent_permit = 1, consent_reason = $3, consent_decided_at = $4, updated_at = $4 WHERE id = $5",
    )
    .bind(lease_owner)
    .bind(lease_expires_at)
    .bind(consent_reason)
    .bind(now)
    .bind(route_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Whether the route is still `delivering` under this lease (checked just before a send, so an
/// attempt cancelled or blocked since its claim does not go out).
pub async fn lease_held<'e, E: Executor<'e, Database = Any>>(e: E, route_id: &str, lease_owner: &str) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT id FROM routes WHERE id = $1 AND status = 'delivering' AND lease_owner = $2")
        .bind(route_id)
        .bind(lease_owner)
        .fetch_optional(e)
        .await?;
    Ok(row.is_some())
}

/// A route's stored message: content type, body, encoding.
pub async fn message<'e, E: Executor<'e, Database = Any>>(e: E, route_id: &str) -> Result<Option<(String, String, String)>, sqlx::Error> {
    let row = sqlx::query("SELECT content_type, body, encoding FROM messages WHERE route_id = $1").bind(route_id).fetch_optional(e).await?;
    row.map(|r| Ok((r.try_get("content_type")?, r.try_get("body")?, r.try_get("encoding")?))).transpose()
}

/// An attempt's outcome.
pub struct Finish<'a> {
    pub status: &'a str,
    pub reason: Option<&'a str>,
    pub next_attempt_at: Option<&'a str>,
    pub last_error: Option<&'a str>,
    pub delivered_at: Option<&'a str>,
    pub receipt: Option<&'a str>,
    pub now: &'a str,
}

/// Records an attempt's outcome and releases the lease, only while the lease is still `lease_owner`'s
/// and the route still `delivering`. Returns whether it did (false: the route was cancelled, blocked
/// or reclaimed meanwhile, and keeps that status).
pub async fn finish(tx: &mut Tx, route_id: &str, lease_owner: &str, f: &Finish<'_>) -> Result<bool, sqlx::Error> {
    finish_from(tx, route_id, lease_owner, "delivering", f).await
}

/// [`finish`] for a route in status `from` that still carries this lease: a route a consent change
/// blocked while the attempt was in flight (`blocked-consent`) is recorded `delivered` when the
/// receiver took the message.
pub async fn finish_from(tx: &mut Tx, route_id: &str, lease_owner: &str, from: &str, f: &Finish<'_>) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE routes SET status = $1, reason = $2, next_attempt_at = $3, last_error = COALESCE($4, last_error), \
           delivered_at = COALESCE($5, delivered_at), receipt = COALESCE($6, receipt), updated_at = $7, \
           lease_owner = NULL, lease_expires_at = NULL \
         WHERE id = $8 AND status = $10 AND lease_owner = $9",
    )
    .bind(f.status)
    .bind(f.reason)
    .bind(f.next_attempt_at)
    .bind(f.last_error)
    .bind(f.delivered_at)
    .bind(f.receipt)
    .bind(f.now)
    .bind(route_id)
    .bind(lease_owner)
    .bind(from)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// An operator's retry starts a fresh attempt budget (the audit trail keeps the earlier attempts).
pub async fn reset_attempts(tx: &mut Tx, route_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE routes SET attempts = 0, lease_owner = NULL, lease_expires_at = NULL WHERE id = $1")
        .bind(route_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The next replay number of a route, and the position a new route of its handover takes.
pub async fn next_replay(tx: &mut Tx, original_id: &str, handover_id: &str) -> Result<(i64, i64), sqlx::Error> {
    let n: i64 = sqlx::query("SELECT COALESCE(MAX(replay_number), 0) AS n FROM routes WHERE replay_of = $1")
        .bind(original_id)
        .fetch_one(&mut **tx)
        .await?
        .try_get("n")?;
    let p: i64 = sqlx::query("SELECT COALESCE(MAX(position), -1) AS p FROM routes WHERE handover_id = $1")
        .bind(handover_id)
        .fetch_one(&mut **tx)
        .await?
        .try_get("p")?;
    Ok((n + 1, p + 1))
}

/// The validated record of a handover (canonical uniform JSON), for a re-rendered replay.
pub async fn record_json(tx: &mut Tx, handover_id: &str) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query("SELECT record_json FROM handovers WHERE id = $1").bind(handover_id).fetch_optional(&mut **tx).await?;
    row.map(|r| r.try_get("record_json")).transpose()
}

// ------------------------------------------------------------------------------------------------
// The MDO worklist

/// One worklist item, as stored and as `GET /v1/worklist` lists it.
#[derive(Debug, Clone)]
pub struct WorklistItem {
    pub id: String,
    pub route_id: String,
    pub handover_id: String,
    pub recipient_org: Option<String>,
    pub content_type: String,
    pub body: String,
    pub encoding: String,
    pub created_at: String,
    /// The patient (for the read's audit entry; not a column of the item).
    pub patient_bsn: String,
}

/// Stores an item once per delivery key: a repeated attempt after a crash changes nothing.
pub async fn insert_worklist_item<'e, E: Executor<'e, Database = Any>>(e: E, item: &WorklistItem) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO worklist_items (id, route_id, handover_id, recipient_org, content_type, body, encoding, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&item.id)
    .bind(&item.route_id)
    .bind(&item.handover_id)
    .bind(&item.recipient_org)
    .bind(&item.content_type)
    .bind(&item.body)
    .bind(&item.encoding)
    .bind(&item.created_at)
    .execute(e)
    .await?;
    Ok(())
}

/// The items addressed to one organisation, oldest first, after `since` (a `created_at`) when given.
pub async fn worklist_for<'e, E: Executor<'e, Database = Any>>(
    e: E,
    org: &str,
    since: Option<&str>,
    limit: i64,
) -> Result<Vec<WorklistItem>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT w.id, w.route_id, w.handover_id, w.recipient_org, w.content_type, w.body, w.encoding, w.created_at, \
           h.patient_bsn FROM worklist_items w JOIN handovers h ON h.id = w.handover_id \
         WHERE w.recipient_org = $1 AND ($2 IS NULL OR w.created_at > $2) ORDER BY w.created_at, w.id LIMIT $3",
    )
    .bind(org)
    .bind(since)
    .bind(limit)
    .fetch_all(e)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(WorklistItem {
                id: r.try_get("id")?,
                route_id: r.try_get("route_id")?,
                handover_id: r.try_get("handover_id")?,
                recipient_org: r.try_get("recipient_org")?,
                content_type: r.try_get("content_type")?,
                body: r.try_get("body")?,
                encoding: r.try_get("encoding")?,
                created_at: r.try_get("created_at")?,
                patient_bsn: r.try_get("patient_bsn")?,
            })
        })
        .collect()
}
