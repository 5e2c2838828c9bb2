//! The gateway's durable store: one sqlx code path for SQLite and PostgreSQL.
//!
//! The service runs on either database, chosen by the URL (`sqlite:` / `postgres:`), so the store uses
//! sqlx's `Any` driver with SQL both dialects accept (`$1` placeholders, TEXT and BIGINT columns,
//! RFC 3339 text times). Where the dialects differ (locking the audit chain head), [`Backend`] says
//! which one is in use. Schema: `migrations/sqlite/` and `migrations/postgres/`, kept column for column
//! equal and embedded in the binary.
//!
//! Writers are serialised differently per database, because SQLite has one writer at a time anyway:
//! on SQLite every write transaction goes through a pool of exactly one connection (so writers queue
//! in the gateway instead of failing with SQLITE_BUSY), and reads use a separate pool; on PostgreSQL
//! one pool serves both and the audit chain head row is locked with `SELECT ... FOR UPDATE`.

pub mod durable;
pub mod outbox;
pub mod retention;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Executor, Row};

/// A write transaction.
pub type Tx = sqlx::Transaction<'static, Any>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL must start with `sqlite:` or `postgres:`/`postgresql:`: {0}")]
    Url(String),
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// How to open the store.
#[derive(Debug, Clone)]
pub struct DbOptions {
    pub max_connections: u32,
    /// SQLite: `full` (a commit is on disk before anyone is told: group commit, see [`durable`]) or
    /// `normal` (a commit survives a crash of the gateway, maybe not a power loss).
    pub sqlite_synchronous: String,
    /// Create the SQLite file when it does not exist (the server does; `audit verify` does not).
    pub create: bool,
    /// The audit chain's key (from a file outside the database); without it nothing can be audited,
    /// so nothing can be written (`crate::audit::append` refuses).
    pub audit_key: Option<Arc<crate::audit::AuditKey>>,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions { max_connections: 8, sqlite_synchronous: "full".into(), create: true, audit_key: None }
    }
}

#[derive(Debug, Clone)]
pub struct Db {
    pub backend: Backend,
    writer: AnyPool,
    reader: AnyPool,
    /// SQLite with `synchronous = full`: the shared fsync that makes commits durable.
    durable: Option<Arc<durable::Durability>>,
    /// PostgreSQL: the URL, for the LISTEN connection of [`outbox::listen_due`].
    postgres_url: Option<Arc<str>>,
    audit_key: Option<Arc<crate::audit::AuditKey>>,
}

impl Db {
    pub async fn connect(url: &str, opts: &DbOptions) -> Result<Db, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Url(redact(url)));
        };
        match backend {
            Backend::Sqlite => {
                let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
                let (path, _) = path.split_once('?').unwrap_or((path, ""));
                if opts.create {
                    if let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
                        std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
                    }
                }
                let mode = if opts.create { "rwc" } else { "rw" };
                let sep = if url.contains('?') { '&' } else { '?' };
                let full = format!("{url}{sep}mode={mode}");
                let connect = AnyConnectOptions::from_str(&full)?;
                // `full` is reached by group commit (`durable`), not by SQLite syncing inside each
                // commit under the write lock; an in-memory database has nothing to sync.
                let durable = (opts.sqlite_synchronous != "normal" && !path.is_empty() && !path.starts_with(":memory:"))
                    .then(|| durable::Durability::new(std::path::PathBuf::from(path)));
                let pool = |max: u32| {
                    AnyPoolOptions::new()
                        .max_connections(max)
                        .acquire_timeout(Duration::from_secs(30))
                        .after_connect(move |conn, _| {
                            Box::pin(async move {
                                conn.execute("PRAGMA journal_mode = WAL").await?;
                                conn.execute("PRAGMA synchronous = NORMAL").await?;
                                conn.execute("PRAGMA busy_timeout = 10000").await?;
                                // Checkpoints run beside the writer (`checkpoint_in_background`); a
                                // commit checkpoints itself only when the log passes ~40 MB anyway.
                                conn.execute("PRAGMA wal_autocheckpoint = 10000").await?;
                                conn.execute("PRAGMA foreign_keys = ON").await?;
                                Ok(())
                            })
                        })
                };
                let writer = pool(1).connect_with(connect.clone()).await?;
                let reader = pool(opts.max_connections.max(1)).connect_with(connect).await?;
                checkpoint_in_background(reader.clone());
                Ok(Db { backend, writer, reader, durable, postgres_url: None, audit_key: opts.audit_key.clone() })
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(opts.max_connections.max(2))
                    .acquire_timeout(Duration::from_secs(30))
                    .connect(url)
                    .await?;
                // PostgreSQL syncs its own log at commit and groups concurrent commits itself.
                Ok(Db {
                    backend,
                    writer: pool.clone(),
                    reader: pool,
                    durable: None,
                    postgres_url: Some(url.into()),
                    audit_key: opts.audit_key.clone(),
                })
            }
        }
    }

    /// Brings the schema up to date (embedded migrations of the backend in use).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&self.writer).await?,
            Backend::Postgres => sqlx::migrate!("migrations/postgres").run(&self.writer).await?,
        }
        Ok(())
    }

    /// A write transaction. Everything one request changes commits (or not) together.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        self.writer.begin().await
    }

    /// Commits, and returns once the commit is durable: only then may anyone be told (a `201`, a
    /// delivery recorded). Every write transaction ends here, never in a bare `tx.commit()`.
    pub async fn commit(&self, tx: Tx) -> Result<(), sqlx::Error> {
        tx.commit().await?;
        if let Some(d) = &self.durable {
            d.sync().await.map_err(sqlx::Error::Io)?;
        }
        Ok(())
    }

    /// Returns once every commit that finished before the call is on disk (SQLite group commit;
    /// PostgreSQL commits are durable when they return). The audit anchors vouch only for that.
    pub async fn sync_committed(&self) -> Result<(), sqlx::Error> {
        if let Some(d) = &self.durable {
            d.sync().await.map_err(sqlx::Error::Io)?;
        }
        Ok(())
    }

    /// The audit chain's key, when one was loaded.
    pub fn audit_key(&self) -> Option<&crate::audit::AuditKey> {
        self.audit_key.as_deref()
    }

    pub fn reader(&self) -> &AnyPool {
        &self.reader
    }

    /// Readiness: the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.reader).await.is_ok()
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

/// SQLite: copies the write-ahead log into the database twice a second from a reader connection.
/// By default the commit that fills the log past 1,000 pages does this itself, with its fsyncs, while
/// it holds the only write lock, so every writer behind it waited; a PASSIVE checkpoint beside the
/// writer does the same work without blocking it. Ends when the pool closes.
fn checkpoint_in_background(reader: AnyPool) {
    tokio::spawn(async move {
        while !reader.is_closed() {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&reader).await {
                if !reader.is_closed() {
                    tracing::warn!(error = %e, "background WAL checkpoint failed; commits will checkpoint");
                }
            }
        }
    });
}

/// A URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// SQL assembled at run time from constant fragments (column lists, placeholders, a dialect's lock
/// clause). Values are always bound, never formatted in; this marks the few statements built that way.
pub fn assembled(sql: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql)
}

/// Whether an error is a unique-key violation (a concurrent duplicate).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

// ------------------------------------------------------------------------------------------------
// Rows

#[derive(Debug, Clone)]
pub struct HandoverRow {
    pub id: String,
    pub organization: String,
    pub client_id: String,
    pub patient_bsn: String,
    pub context: String,
    pub sender_role: String,
    pub input_form: String,
    pub sharing_consent: Option<String>,
    pub envelope_json: String,
    pub created_at: String,
}

const HANDOVER_COLS: &str =
    "id, organization, client_id, patient_bsn, context, sender_role, input_form, sharing_consent, envelope_json, created_at";

fn handover_row(r: &AnyRow) -> Result<HandoverRow, sqlx::Error> {
    Ok(HandoverRow {
        id: r.try_get("id")?,
        organization: r.try_get("organization")?,
        client_id: r.try_get("client_id")?,
        patient_bsn: r.try_get("patient_bsn")?,
        context: r.try_get("context")?,
        sender_role: r.try_get("sender_role")?,
        input_form: r.try_get("input_form")?,
        sharing_consent: r.try_get("sharing_consent")?,
        envelope_json: r.try_get("envelope_json")?,
        created_at: r.try_get("created_at")?,
    })
}

#[derive(Debug, Clone)]
pub struct RouteRow {
    pub id: String,
    pub handover_id: String,
    pub position: i64,
    pub recipient_json: String,
    pub recipient_org: Option<String>,
    pub recipient_role: String,
    pub channel: String,
    pub status: String,
    pub reason: Option<String>,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    pub consent_permit: bool,
    pub consent_reason: String,
    pub consent_decided_at: String,
    pub updated_at: String,
    /// When the receiver took the message, and what it said (the sink's receipt).
    pub delivered_at: Option<String>,
    pub receipt: Option<String>,
    /// For a replay: the delivered route it repeats, and which replay of it this is (1, 2, ...).
    pub replay_of: Option<String>,
    pub replay_number: i64,
}

const ROUTE_COLS: &str = "id, handover_id, position, recipient_json, recipient_org, recipient_role, channel, status, reason, \
     attempts, next_attempt_at, last_error, consent_permit, consent_reason, consent_decided_at, updated_at, \
     delivered_at, receipt, replay_of, replay_number";

fn route_row(r: &AnyRow) -> Result<RouteRow, sqlx::Error> {
    Ok(RouteRow {
        id: r.try_get("id")?,
        handover_id: r.try_get("handover_id")?,
        position: r.try_get("position")?,
        recipient_json: r.try_get("recipient_json")?,
        recipient_org: r.try_get("recipient_org")?,
        recipient_role: r.try_get("recipient_role")?,
        channel: r.try_get("channel")?,
        status: r.try_get("status")?,
        reason: r.try_get("reason")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_error: r.try_get("last_error")?,
        consent_permit: r.try_get::<i64, _>("consent_permit")? != 0,
        consent_reason: r.try_get("consent_reason")?,
        consent_decided_at: r.try_get("consent_decided_at")?,
        updated_at: r.try_get("updated_at")?,
        delivered_at: r.try_get("delivered_at")?,
        receipt: r.try_get("receipt")?,
        replay_of: r.try_get("replay_of")?,
        replay_number: r.try_get("replay_number")?,
    })
}

#[derive(Debug, Clone)]
pub struct ConsentRow {
    pub id: i64,
    pub patient_bsn: String,
    pub decision: String,
    pub scope: String,
    pub actors_json: Option<String>,
    pub period_end: Option<String>,
    pub source: String,
    pub resource_json: Option<String>,
    pub recorded_by: String,
    pub recorded_client: String,
    pub recorded_at: String,
    /// A renewal of the patient's consent: the id of the decision it supersedes.
    pub renews: Option<i64>,
}

const CONSENT_COLS: &str =
    "id, patient_bsn, decision, scope, actors_json, period_end, source, resource_json, recorded_by, recorded_client, recorded_at, renews";

fn consent_row(r: &AnyRow) -> Result<ConsentRow, sqlx::Error> {
    Ok(ConsentRow {
        id: r.try_get("id")?,
        patient_bsn: r.try_get("patient_bsn")?,
        decision: r.try_get("decision")?,
        scope: r.try_get("scope")?,
        actors_json: r.try_get("actors_json")?,
        period_end: r.try_get("period_end")?,
        source: r.try_get("source")?,
        resource_json: r.try_get("resource_json")?,
        recorded_by: r.try_get("recorded_by")?,
        recorded_client: r.try_get("recorded_client")?,
        recorded_at: r.try_get("recorded_at")?,
        renews: r.try_get("renews")?,
    })
}

#[derive(Debug, Clone)]
pub struct IdempotencyRow {
    pub request_hash: String,
    pub status_code: i64,
    pub response_body: String,
    pub handover_id: Option<String>,
}

// ------------------------------------------------------------------------------------------------
// Handovers, routes, messages

pub async fn insert_handover(tx: &mut Tx, h: &HandoverRow, received_payload: &str, record_json: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO handovers (id, organization, client_id, patient_bsn, context, sender_role, input_form, sharing_consent, \
         envelope_json, received_payload, record_json, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&h.id)
    .bind(&h.organization)
    .bind(&h.client_id)
    .bind(&h.patient_bsn)
    .bind(&h.context)
    .bind(&h.sender_role)
    .bind(&h.input_form)
    .bind(&h.sharing_consent)
    .bind(&h.envelope_json)
    .bind(received_payload)
    .bind(record_json)
    .bind(&h.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn insert_route(tx: &mut Tx, r: &RouteRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO routes (id, handover_id, position, recipient_json, recipient_org, recipient_role, channel, status, reason, \
         attempts, next_attempt_at, last_error, consent_permit, consent_reason, consent_decided_at, updated_at, replay_of, replay_number) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    )
    .bind(&r.id)
    .bind(&r.handover_id)
    .bind(r.position)
    .bind(&r.recipient_json)
    .bind(&r.recipient_org)
    .bind(&r.recipient_role)
    .bind(&r.channel)
    .bind(&r.status)
    .bind(&r.reason)
    .bind(r.attempts)
    .bind(&r.next_attempt_at)
    .bind(&r.last_error)
    .bind(i64::from(r.consent_permit))
    .bind(&r.consent_reason)
    .bind(&r.consent_decided_at)
    .bind(&r.updated_at)
    .bind(&r.replay_of)
    .bind(r.replay_number)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn insert_message(
    tx: &mut Tx,
    route_id: &str,
    content_type: &str,
    renderer: &str,
    body: &str,
    encoding: &str,
    created_at: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO messages (route_id, content_type, renderer, body, encoding, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(route_id)
        .bind(content_type)
        .bind(renderer)
        .bind(body)
        .bind(encoding)
        .bind(created_at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn get_handover<'e, E: Executor<'e, Database = Any>>(e: E, id: &str) -> Result<Option<HandoverRow>, sqlx::Error> {
    let q = format!("SELECT {HANDOVER_COLS} FROM handovers WHERE id = $1");
    sqlx::query(assembled(q)).bind(id).fetch_optional(e).await?.as_ref().map(handover_row).transpose()
}

pub async fn routes_of<'e, E: Executor<'e, Database = Any>>(e: E, handover_id: &str) -> Result<Vec<RouteRow>, sqlx::Error> {
    let q = format!("SELECT {ROUTE_COLS} FROM routes WHERE handover_id = $1 ORDER BY position");
    sqlx::query(assembled(q)).bind(handover_id).fetch_all(e).await?.iter().map(route_row).collect()
}

/// The handovers an organisation may see: those it sent, and those with a route addressed to it.
/// Newest first.
pub async fn list_handovers(
    db: &Db,
    org: &str,
    patient: Option<&str>,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<HandoverRow>, sqlx::Error> {
    let cols = HANDOVER_COLS.split(", ").map(|c| format!("h.{c}")).collect::<Vec<_>>().join(", ");
    let q = format!(
        "SELECT {cols} FROM handovers h WHERE \
           (h.organization = $1 OR EXISTS (SELECT 1 FROM routes r WHERE r.handover_id = h.id AND r.recipient_org = $1)) \
           AND ($2 IS NULL OR h.patient_bsn = $2) \
           AND ($3 IS NULL OR EXISTS (SELECT 1 FROM routes r WHERE r.handover_id = h.id AND r.status = $3)) \
         ORDER BY h.created_at DESC, h.id LIMIT $4"
    );
    sqlx::query(assembled(q))
        .bind(org)
        .bind(patient)
        .bind(status)
        .bind(limit)
        .fetch_all(db.reader())
        .await?
        .iter()
        .map(handover_row)
        .collect()
}

/// Whether an organisation has a care relation with the patient through the gateway (the consent
/// rule's definition): it sent a handover of the patient that the gateway accepted, or a route of one
/// is addressed to it that consent has not blocked (a blocked route must not tell the recipient that
/// the patient exists, so it makes no relation either; the same test as the recipient's view of a
/// handover).
pub async fn org_knows_patient<'e, E: Executor<'e, Database = Any>>(e: E, org: &str, bsn: &str) -> Result<bool, sqlx::Error> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM handovers h WHERE h.patient_bsn = $1 AND \
           (h.organization = $2 OR EXISTS (SELECT 1 FROM routes r WHERE r.handover_id = h.id AND r.recipient_org = $2 \
              AND r.status <> 'blocked-consent'))",
    )
    .bind(bsn)
    .bind(org)
    .fetch_one(e)
    .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

/// The routes of a patient in the given statuses, with the 8b answer of their handover; locked for
/// update on PostgreSQL, so a concurrent status change cannot slip in between decision and write.
pub async fn patient_routes_in(
    tx: &mut Tx,
    backend: Backend,
    bsn: &str,
    statuses: &[&str],
) -> Result<Vec<(RouteRow, Option<String>)>, sqlx::Error> {
    let cols = ROUTE_COLS.split(", ").map(|c| format!("r.{c}")).collect::<Vec<_>>().join(", ");
    let marks = (0..statuses.len()).map(|i| format!("${}", i + 2)).collect::<Vec<_>>().join(", ");
    let lock = if backend == Backend::Postgres { " FOR UPDATE OF r" } else { "" };
    let q = format!(
        "SELECT {cols}, h.sharing_consent AS sharing_consent FROM routes r JOIN handovers h ON h.id = r.handover_id \
         WHERE h.patient_bsn = $1 AND r.status IN ({marks}) ORDER BY h.created_at, r.handover_id, r.position{lock}"
    );
    let mut query = sqlx::query(assembled(q)).bind(bsn);
    for s in statuses {
        query = query.bind(*s);
    }
    let rows = query.fetch_all(&mut **tx).await?;
    rows.iter().map(|r| Ok((route_row(r)?, r.try_get("sharing_consent")?))).collect()
}

/// One route, locked for update on PostgreSQL.
pub async fn route_for_update(tx: &mut Tx, backend: Backend, route_id: &str) -> Result<Option<RouteRow>, sqlx::Error> {
    let lock = if backend == Backend::Postgres { " FOR UPDATE" } else { "" };
    let q = format!("SELECT {ROUTE_COLS} FROM routes WHERE id = $1{lock}");
    sqlx::query(assembled(q)).bind(route_id).fetch_optional(&mut **tx).await?.as_ref().map(route_row).transpose()
}

/// A route's new status, reason and (when decided anew) consent decision.
pub struct RouteUpdate<'a> {
    pub status: &'a str,
    pub reason: Option<&'a str>,
    pub consent: Option<(bool, &'a str)>,
    pub next_attempt_at: Option<&'a str>,
    pub now: &'a str,
}

pub async fn update_route(tx: &mut Tx, route_id: &str, u: &RouteUpdate<'_>) -> Result<(), sqlx::Error> {
    let (permit, reason) = match u.consent {
        Some((p, r)) => (Some(i64::from(p)), Some(r)),
        None => (None, None),
    };
    sqlx::query(
        "UPDATE routes SET status = $1, reason = $2, next_attempt_at = $3, updated_at = $4, \
           consent_permit = COALESCE($5, consent_permit), consent_reason = COALESCE($6, consent_reason), \
           consent_decided_at = CASE WHEN $5 IS NULL THEN consent_decided_at ELSE $4 END \
         WHERE id = $7",
    )
    .bind(u.status)
    .bind(u.reason)
    .bind(u.next_attempt_at)
    .bind(u.now)
    .bind(permit)
    .bind(reason)
    .bind(route_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Route counts by status (for /metrics).
pub async fn route_counts(db: &Db) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM routes GROUP BY status").fetch_all(db.reader()).await?;
    rows.iter().map(|r| Ok((r.try_get("status")?, r.try_get("n")?))).collect()
}

// ------------------------------------------------------------------------------------------------
// Consents

pub struct NewConsent<'a> {
    pub patient_bsn: &'a str,
    pub decision: &'a str,
    pub scope: &'a str,
    pub actors_json: Option<&'a str>,
    pub period_end: Option<&'a str>,
    pub source: &'a str,
    pub resource_json: Option<&'a str>,
    pub recorded_by: &'a str,
    pub recorded_client: &'a str,
    pub recorded_at: &'a str,
    pub renews: Option<i64>,
}

pub async fn insert_consent(tx: &mut Tx, c: &NewConsent<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO consents (patient_bsn, decision, scope, actors_json, period_end, source, resource_json, recorded_by, \
         recorded_client, recorded_at, renews) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(c.patient_bsn)
    .bind(c.decision)
    .bind(c.scope)
    .bind(c.actors_json)
    .bind(c.period_end)
    .bind(c.source)
    .bind(c.resource_json)
    .bind(c.recorded_by)
    .bind(c.recorded_client)
    .bind(c.recorded_at)
    .bind(c.renews)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Every consent decision recorded for a patient, oldest first (which of them stand is the consent
/// module's business: `consent::ConsentHistory`).
pub async fn patient_consents<'e, E: Executor<'e, Database = Any>>(e: E, bsn: &str) -> Result<Vec<ConsentRow>, sqlx::Error> {
    let q = format!("SELECT {CONSENT_COLS} FROM consents WHERE patient_bsn = $1 ORDER BY id");
    sqlx::query(assembled(q)).bind(bsn).fetch_all(e).await?.iter().map(consent_row).collect()
}

// ------------------------------------------------------------------------------------------------
// Idempotency keys

pub async fn get_idempotency<'e, E: Executor<'e, Database = Any>>(
    e: E,
    client_id: &str,
    key: &str,
) -> Result<Option<IdempotencyRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT request_hash, status_code, response_body, handover_id FROM idempotency_keys WHERE client_id = $1 AND idem_key = $2",
    )
    .bind(client_id)
    .bind(key)
    .fetch_optional(e)
    .await?;
    row.map(|r| {
        Ok(IdempotencyRow {
            request_hash: r.try_get("request_hash")?,
            status_code: r.try_get("status_code")?,
            response_body: r.try_get("response_body")?,
            handover_id: r.try_get("handover_id")?,
        })
    })
    .transpose()
}

pub async fn insert_idempotency(
    tx: &mut Tx,
    client_id: &str,
    key: &str,
    row: &IdempotencyRow,
    created_at: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO idempotency_keys (client_id, idem_key, request_hash, status_code, response_body, handover_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(client_id)
    .bind(key)
    .bind(&row.request_hash)
    .bind(row.status_code)
    .bind(&row.response_body)
    .bind(&row.handover_id)
    .bind(created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The answer to store for a claimed key, set before the claiming transaction commits.
pub async fn set_idempotency_response(tx: &mut Tx, client_id: &str, key: &str, status: i64, body: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE idempotency_keys SET status_code = $1, response_body = $2 WHERE client_id = $3 AND idem_key = $4")
        .bind(status)
        .bind(body)
        .bind(client_id)
        .bind(key)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("sqlite:./x.db"), "sqlite:./x.db");
    }
}
