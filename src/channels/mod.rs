//! Channels: the adapters that move a rendered message to its recipient (the outbox's sinks).
//!
//! A route's message is rendered once, at intake, by `crate::render` (through
//! `service::render::render_route`) and stored; a sink only moves those bytes: into the local spool, over
//! SMTP, over HTTPS, onto the worklist. Keeping the rendering out of the sinks means a retry or a replay
//! sends exactly what was rendered and audited, and a new transport never touches clinical content.
//!
//! Every sink answers the same way, so that the outbox worker owns the one retry policy:
//! [`Failure::Transient`] (try again later: connection refused, timeout, 5xx, 408/429) or
//! [`Failure::Permanent`] (trying again cannot help: a 4xx with the server's OperationOutcome, an SMTP
//! server without STARTTLS, a recipient without an address). A sink must be safe to call again for the
//! same [`Outgoing::delivery_key`] after a crash: the spool overwrites the same file name, mail carries a
//! stable Message-ID, HTTPS uses a stable id or a conditional create.

pub mod https;
pub mod smime;
pub mod smtp;
pub mod spool;
pub mod worklist;

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;

use crate::routing::Channel;

/// A boxed future, so that sinks can sit behind `dyn Sink`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One delivery attempt's message.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    pub handover_id: &'a str,
    pub route_id: &'a str,
    /// The route's channel in the handover table's terms (`edifact`, `secure-mail`, ...).
    pub channel: Channel,
    /// The recipient object of the handover (`role`, `organization`, `name`, `endpoints`), for the
    /// addresses a sink needs (`endpoints.email`, `endpoints.fhir`, ...).
    pub recipient: &'a Value,
    pub content_type: &'a str,
    pub body: &'a [u8],
    /// Stable for every attempt of one delivery (the route id, or the route id and replay number):
    /// the receiver's deduplication key.
    pub delivery_key: &'a str,
}

/// What the receiver said when it took the message (kept as the route's delivery detail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub detail: String,
}

/// Why an attempt failed, and whether another attempt can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Transient(String),
    #[error("{0}")]
    Permanent(String),
}

impl Failure {
    pub fn is_permanent(&self) -> bool {
        matches!(self, Failure::Permanent(_))
    }
}

/// A transport for rendered messages.
pub trait Sink: Send + Sync {
    /// The sink's kind as configuration names it (`spool`, `smtp`, `https`, `worklist`).
    fn kind(&self) -> &'static str;

    /// Delivers one message; must not panic on any input.
    fn deliver<'a>(&'a self, msg: &'a Outgoing<'a>) -> BoxFuture<'a, Result<Receipt, Failure>>;
}

/// The file name of a delivered message (a spool file, a mail attachment): the delivery key with only
/// `[A-Za-z0-9._-]`, never starting with `.` (so it cannot escape a directory or look like a temporary
/// file), and an extension from the content type, so pick-up clients and mail readers can tell the kind.
pub fn file_name(delivery_key: &str, content_type: &str) -> String {
    let safe: String = delivery_key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '_' })
        .collect();
    let safe = safe.trim_start_matches('.');
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let extension = match essence.as_str() {
        "application/edifact" => "edi",
        "application/fhir+json" | "application/json" => "json",
        "application/fhir+xml" | "application/xml" | "text/xml" => "xml",
        "application/pdf" => "pdf",
        "message/rfc822" => "eml",
        "text/plain" => "txt",
        _ => "bin",
    };
    format!("{}.{extension}", if safe.is_empty() { "message" } else { safe })
}

/// One sink per channel, built from `[channels.endpoints.<channel>]`: `sink = "spool"` (the default:
/// `<spool_dir>/<channel>/`, or the endpoint's `target` directory), `"smtp"`, `"https"` or
/// `"worklist"`. The `mdo` channel without an endpoint goes to the worklist.
pub struct Registry {
    sinks: std::collections::BTreeMap<Channel, std::sync::Arc<dyn Sink>>,
}

impl Registry {
    pub fn from_config(cfg: &crate::config::Config, db: &crate::store::Db) -> Result<Registry, String> {
        let mut sinks = std::collections::BTreeMap::new();
        for &channel in Channel::ALL {
            let key = channel.key();
            let endpoint = cfg.channels.endpoints.get(key);
            let kind = match endpoint {
                Some(e) => e.sink.as_str(),
                None if channel == Channel::Mdo => "worklist",
                None => "spool",
            };
            let sink: std::sync::Arc<dyn Sink> = match (kind, endpoint) {
                ("spool", e) => {
                    let dir = e.and_then(|e| e.target.as_ref()).map(std::path::PathBuf::from).unwrap_or_else(|| cfg.spool_dir().join(key));
                    std::sync::Arc::new(spool::SpoolSink::new(dir))
                }
                ("worklist", _) => std::sync::Arc::new(worklist::WorklistSink::new(db.clone())),
                ("smtp", Some(e)) => std::sync::Arc::new(smtp::SmtpSink::from_endpoint(key, e)?),
                ("https", Some(e)) => std::sync::Arc::new(https::HttpsSink::from_endpoint(key, e)?),
                (other, _) => {
                    return Err(format!("channels.endpoints.{key}.sink: unknown sink {other:?} (spool, smtp, https, worklist)"))
                }
            };
            sinks.insert(channel, sink);
        }
        Ok(Registry { sinks })
    }

    /// Replaces the sink of one channel (an embedding application's own transport, or a test's).
    pub fn set(&mut self, channel: Channel, sink: std::sync::Arc<dyn Sink>) {
        self.sinks.insert(channel, sink);
    }

    /// The sink of a channel (every channel has one).
    pub fn sink(&self, channel: Channel) -> Option<std::sync::Arc<dyn Sink>> {
        self.sinks.get(&channel).cloned()
    }
}
