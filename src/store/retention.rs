//! Retention's SQL: which handovers' bodies are due for deletion, and the deletion itself.
//!
//! A handover's bodies (the payload as received, the rendered messages, the MDO worklist copies) are
//! kept while any of its routes can still be sent, and for `retention.message_days` after its last
//! route change; then they go. What stays: the validated record (replay with `?rerender=true` and the
//! handover view need it), the routes with their statuses, and the audit trail, which retention never
//! touches (it has its own, much longer, term).

use sqlx::{Any, Executor, Row};

use super::Tx;

/// A handover whose bodies may be deleted, with what its audit entry names.
#[derive(Debug, Clone)]
pub struct Purgeable {
    pub handover_id: String,
    pub patient_bsn: String,
    pub organization: String,
    pub client_id: String,
}

/// Up to `limit` handovers received before `cutoff` whose routes are all final (no route pending,
/// delivering or retrying) and unchanged since `cutoff`, bodies not yet deleted. Oldest first.
pub async fn purgeable<'e, E: Executor<'e, Database = Any>>(e: E, cutoff: &str, limit: i64) -> Result<Vec<Purgeable>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT h.id, h.patient_bsn, h.organization, h.client_id FROM handovers h \
         WHERE h.bodies_purged_at IS NULL AND h.created_at < $1 \
           AND NOT EXISTS (SELECT 1 FROM routes r WHERE r.handover_id = h.id \
                           AND (r.status IN ('pending', 'delivering', 'retrying') OR r.updated_at >= $1)) \
         ORDER BY h.created_at LIMIT $2",
    )
    .bind(cutoff)
    .bind(limit)
    .fetch_all(e)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Purgeable {
                handover_id: r.try_get(0)?,
                patient_bsn: r.try_get(1)?,
                organization: r.try_get(2)?,
                client_id: r.try_get(3)?,
            })
        })
        .collect()
}

/// Deletes one handover's bodies; returns the number of rendered messages deleted, or `None` when
/// another process purged it first (the update is conditional, so two pruners never audit twice).
pub async fn purge(tx: &mut Tx, handover_id: &str, now: &str) -> Result<Option<u64>, sqlx::Error> {
    let marked = sqlx::query("UPDATE handovers SET received_payload = '', bodies_purged_at = $2 WHERE id = $1 AND bodies_purged_at IS NULL")
        .bind(handover_id)
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if marked == 0 {
        return Ok(None);
    }
    let messages = sqlx::query("DELETE FROM messages WHERE route_id IN (SELECT id FROM routes WHERE handover_id = $1)")
        .bind(handover_id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    sqlx::query("DELETE FROM worklist_items WHERE handover_id = $1").bind(handover_id).execute(&mut **tx).await?;
    Ok(Some(messages))
}
