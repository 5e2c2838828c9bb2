//! The worklist sink (the `mdo` channel): the message becomes an item on the receiving organisation's
//! MDO worklist, which that organisation's client fetches with `GET /v1/worklist` (its own items
//! only; each fetch is audited as a read of the patients' data).
//!
//! The item is stored under the delivery key, so an attempt repeated after a crash stores it once.

use crate::service::model::OrgId;
use crate::store::{self, Db};

use super::{BoxFuture, Failure, Outgoing, Receipt, Sink};

pub struct WorklistSink {
    db: Db,
}

impl WorklistSink {
    pub fn new(db: Db) -> WorklistSink {
        WorklistSink { db }
    }
}

impl Sink for WorklistSink {
    fn kind(&self) -> &'static str {
        "worklist"
    }

    fn deliver<'a>(&'a self, msg: &'a Outgoing<'a>) -> BoxFuture<'a, Result<Receipt, Failure>> {
        Box::pin(async move {
            // The same normal form as the route's recipient_org, which GET /v1/worklist matches on.
            let org = msg.recipient.get("organization").and_then(|o| match (o.get("ura"), o.get("agb")) {
                (Some(u), _) => OrgId::ura(u.as_str()?).ok(),
                (None, Some(a)) => OrgId::agb(a.as_str()?).ok(),
                _ => None,
            });
            let Some(org) = org else {
                return Err(Failure::Permanent("an MDO worklist item needs the recipient's organisation (URA or AGB)".into()));
            };
            let (body, encoding) = match std::str::from_utf8(msg.body) {
                Ok(t) => (t.to_owned(), "utf-8"),
                Err(_) => {
                    use base64::Engine as _;
                    (base64::engine::general_purpose::STANDARD.encode(msg.body), "base64")
                }
            };
            let item = store::outbox::WorklistItem {
                id: msg.delivery_key.to_owned(),
                route_id: msg.route_id.to_owned(),
                handover_id: msg.handover_id.to_owned(),
                recipient_org: Some(org.to_string()),
                content_type: msg.content_type.to_owned(),
                body,
                encoding: encoding.to_owned(),
                created_at: crate::service::clock::now(),
                patient_bsn: String::new(),
            };
            let mut tx = self.db.begin().await.map_err(|e| Failure::Transient(format!("worklist store: {e}")))?;
            store::outbox::insert_worklist_item(&mut *tx, &item).await.map_err(|e| Failure::Transient(format!("worklist store: {e}")))?;
            self.db.commit(tx).await.map_err(|e| Failure::Transient(format!("worklist store: {e}")))?;
            Ok(Receipt { detail: format!("on the MDO worklist of {org} as item {}", item.id) })
        })
    }
}
