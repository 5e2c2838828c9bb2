//! The delivery worker: claim a batch of due routes, deliver each through its sink, record the
//! outcomes. Runs as tasks inside `serve` (`[delivery] workers`), or alone as `acp-gateway worker`.
//!
//! One round ([`Outbox::run_once`]) is three steps:
//! 1. **claim**, one write transaction: the due routes are selected (PostgreSQL: `FOR UPDATE SKIP
//!    LOCKED`), consent is decided for each with [`consent::decide`] (latest stored consent and form
//!    item 8b), and each becomes `delivering` under a fresh lease token, or `blocked-consent` with the
//!    reason. Every decision and status change is audited in the same transaction.
//! 2. **deliver**, outside any transaction: for each claimed route, the lease is checked once more
//!    (a cancel or a withdrawal since the claim stops the send), the stored message is loaded and
//!    handed to the sink; the routes of a batch go out concurrently.
//! 3. **record**, one write transaction: each outcome is written only where the route is still
//!    `delivering` under this lease, with its status change and (when delivered) the disclosure
//!    entry. A message that went out although the route was cancelled or blocked meanwhile is still
//!    audited as a disclosure: it happened. A route a consent change blocked while its message was on
//!    the way says `delivered` (the status tells what happened; later sends stay blocked); a
//!    cancelled one stays `cancelled`, as the operator asked.
//!
//! A crash between 2 and 3 leaves the route `delivering` with a lease that expires; the next claim
//! repeats the attempt under the same delivery key, which the sinks make idempotent.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{watch, Notify};
use tokio::task::{JoinHandle, JoinSet};

use crate::audit::{self, Action, Actor, AuditEvent, EventCode, Outcome};
use crate::channels::{Failure, Outgoing, Receipt, Registry};
use crate::config::DeliveryConfig;
use crate::consent::{self, ConsentHistory};
use crate::routing::Channel;
use crate::service::{clock, patient_consent, sharing_from_key};
use crate::service::metrics::Metrics;
use crate::service::model::{OrgId, RouteStatus};
use crate::service::render::Body;
use crate::store::outbox::{self as q, DueRoute, Finish};
use crate::store::{self, Db, RouteUpdate};

/// Why a route that consent blocked during its attempt says `delivered`.
const IN_FLIGHT_WHEN_BLOCKED: &str =
    "the message was already on its way when the consent change blocked the route, and the receiver took it; later sends stay blocked";

/// Everything a worker needs; shared by the worker tasks of one process.
pub struct Outbox {
    pub db: Db,
    pub metrics: Arc<Metrics>,
    pub sinks: Registry,
    pub config: DeliveryConfig,
    pub source_id: String,
    pub wake: Arc<Notify>,
    /// Names this process's workers in leases and audit entries (`<host-ish id>/<n>`).
    pub node: String,
}

/// What one attempt came to.
enum Attempt {
    Delivered(Receipt),
    Failed(Failure),
    /// The route was cancelled, blocked or reclaimed between claim and send: nothing was sent.
    NotSent,
}

struct Claimed {
    due: DueRoute,
    /// The status before this claim, for the audit entry and the failing/recovered bookkeeping.
    from: RouteStatus,
    /// Attempts including this one.
    attempts: i64,
    consent_profile: &'static str,
}

/// The running worker tasks of a process.
pub struct Workers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// PostgreSQL: the task hearing other processes' due-route notifications.
    listener: Option<JoinHandle<()>>,
}

impl Workers {
    /// Asks every worker to stop after its current round and waits (at most `grace`) for them.
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        if let Some(l) = &self.listener {
            l.abort();
        }
        let all = futures_join(self.tasks);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("delivery workers did not finish within the grace period; their leases will expire");
        }
    }
}

async fn futures_join(tasks: Vec<JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}

impl Outbox {
    /// Starts `n` worker tasks.
    pub fn start(self: &Arc<Self>, n: usize) -> Workers {
        let (stop, rx) = watch::channel(false);
        let tasks = (0..n)
            .map(|i| {
                let me = self.clone();
                let mut rx = rx.clone();
                let name = format!("{}/{i}", self.node);
                tokio::spawn(async move { me.run(&name, &mut rx).await })
            })
            .collect();
        let listener = q::listen_due(&self.db, self.wake.clone());
        tracing::info!(workers = n, node = %self.node, listening = listener.is_some(), "delivery workers started");
        Workers { stop, tasks, listener }
    }

    async fn run(&self, name: &str, stop: &mut watch::Receiver<bool>) {
        let poll = Duration::from_millis(self.config.poll_interval_ms.max(1));
        let gather = Duration::from_millis(self.config.gather_ms);
        while !*stop.borrow() {
            match self.run_once(name).await {
                // A full batch: more are waiting.
                Ok(n) if n >= self.config.batch => continue,
                // Some: more are arriving; let them gather into the next round.
                Ok(n) if n > 0 => {
                    Self::pause(gather, stop).await;
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::error!(worker = name, error = %e, "delivery round failed; trying again"),
            }
            tokio::select! {
                _ = self.wake.notified() => Self::pause(gather, stop).await,
                _ = tokio::time::sleep(poll) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Waits `d`, or less if the worker is asked to stop.
    async fn pause(d: Duration, stop: &mut watch::Receiver<bool>) {
        if !d.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(d) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// One round: claims up to `batch` due routes, delivers them, records the outcomes. Returns the
    /// number of routes it claimed or blocked (0: nothing was due).
    pub async fn run_once(&self, worker: &str) -> Result<usize, sqlx::Error> {
        let t0 = SystemTime::now();
        let now = clock::format(t0);
        if !q::any_due(self.db.reader(), &now).await? {
            return Ok(0);
        }
        let lease = format!("{worker}/{}", clock::new_id());
        let lease_until = clock::format(t0 + Duration::from_secs(self.config.lease_seconds));
        let (claimed, touched) = self.claim(worker, &lease, &now, &lease_until).await?;
        if claimed.is_empty() {
            return Ok(touched);
        }

        let mut set = JoinSet::new();
        for (i, c) in claimed.iter().enumerate() {
            let db = self.db.clone();
            let sink = c.due.route.channel.parse::<Channel>().ok().and_then(|ch| self.sinks.sink(ch));
            let route = c.due.route.clone();
            let lease = lease.clone();
            set.spawn(async move { (i, attempt(&db, sink, &route, &lease).await) });
        }
        let mut results: Vec<Option<Attempt>> = (0..claimed.len()).map(|_| None).collect();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((i, a)) => results[i] = Some(a),
                Err(e) => tracing::error!(error = %e, "a delivery attempt panicked"),
            }
        }
        // A panicked attempt counts as a transient failure; its lease is released by the record step.
        let results: Vec<Attempt> = results
            .into_iter()
            .map(|a| a.unwrap_or_else(|| Attempt::Failed(Failure::Transient("the delivery attempt failed inside the gateway".into()))))
            .collect();
        self.record(worker, &lease, claimed, results).await?;
        Ok(touched)
    }

    fn event(&self, worker: &str, due: &DueRoute, code: EventCode, action: Action, outcome: Outcome, now: &str) -> AuditEvent {
        // The gateway delivers on behalf of the sending organisation and its client.
        let actor = Actor { user_id: format!("system:outbox-worker:{worker}"), organization: due.organization.clone(), role: "system".into() };
        let protocol = "delivery of an accepted handover on behalf of its sender; consent re-checked before each attempt".to_owned();
        let event = AuditEvent { responsible_user_id: Some(due.client_id.clone()), ..AuditEvent::new(code, action, outcome, now, actor, protocol, &self.source_id) };
        event.about_route(&due.patient_bsn, &due.route)
    }

    fn status_event(&self, worker: &str, due: &DueRoute, from: RouteStatus, to: RouteStatus, why: Option<&str>, now: &str) -> AuditEvent {
        let what = format!("route {} -> {}", from.as_str(), to.as_str());
        AuditEvent {
            outcome_description: Some(match why {
                Some(w) => format!("{what}: {w}"),
                None => what,
            }),
            ..self.event(worker, due, EventCode::RouteStatus, Action::U, Outcome::Success, now)
        }
    }

    /// Step 1: selects due routes and claims (or blocks) each, with its consent decision, in one
    /// transaction. Returns the claimed routes and how many routes it touched.
    async fn claim(&self, worker: &str, lease: &str, now: &str, lease_until: &str) -> Result<(Vec<Claimed>, usize), sqlx::Error> {
        let mut tx = self.db.begin().await?;
        // The audit head lock first, as every writer takes it: see `crate::service`.
        audit::lock(&mut tx, self.db.backend).await?;
        let due = q::select_due(&mut tx, self.db.backend, now, self.config.batch as i64).await?;
        let touched = due.len();
        let mut consents: BTreeMap<String, ConsentHistory> = BTreeMap::new();
        let mut events = Vec::with_capacity(due.len() * 2);
        let mut claimed = Vec::with_capacity(due.len());
        for d in due {
            if !consents.contains_key(&d.patient_bsn) {
                let c = patient_consent::history(&mut *tx, &d.patient_bsn).await?;
                consents.insert(d.patient_bsn.clone(), c);
            }
            let stored = &consents[&d.patient_bsn];
            let org = d.route.recipient_org.as_deref().and_then(|o| OrgId::try_from(o.to_owned()).ok());
            let decision = consent::decide(sharing_from_key(d.sharing_consent.as_deref()), stored, org.as_ref(), now);
            self.metrics.consent_decision(decision.permit);
            events.push(AuditEvent {
                outcome_description: Some(format!("before delivery attempt {}: {}", d.route.attempts + 1, decision.reason)),
                consent_profile: Some(decision.profile.to_owned()),
                ..self.event(
                    worker,
                    &d,
                    EventCode::ConsentDecision,
                    Action::E,
                    if decision.permit { Outcome::Success } else { Outcome::Refused },
                    now,
                )
            });
            let from = RouteStatus::parse(&d.route.status).unwrap_or(RouteStatus::Pending);
            if decision.permit {
                q::mark_claimed(&mut tx, &d.route.id, lease, lease_until, &decision.reason, now).await?;
                let why = (from == RouteStatus::Delivering).then_some("the previous attempt's lease expired (worker stopped or crashed)");
                events.push(self.status_event(worker, &d, from, RouteStatus::Delivering, why, now));
                let attempts = d.route.attempts + 1;
                claimed.push(Claimed { due: d, from, attempts, consent_profile: decision.profile });
            } else {
                let update = RouteUpdate {
                    status: RouteStatus::BlockedConsent.as_str(),
                    reason: Some(&decision.reason),
                    consent: Some((false, &decision.reason)),
                    next_attempt_at: None,
                    now,
                };
                store::update_route(&mut tx, &d.route.id, &update).await?;
                events.push(self.status_event(worker, &d, from, RouteStatus::BlockedConsent, Some(&decision.reason), now));
                tracing::info!(route = %d.route.id, handover = %d.route.handover_id, "route blocked by consent before delivery");
            }
        }
        audit::append(&mut tx, &self.db, &events).await?;
        self.db.commit(tx).await?;
        Ok((claimed, touched))
    }

    /// Step 3: the outcomes, their statuses and audit entries, in one transaction.
    async fn record(&self, worker: &str, lease: &str, claimed: Vec<Claimed>, results: Vec<Attempt>) -> Result<(), sqlx::Error> {
        let t = SystemTime::now();
        let now = clock::format(t);
        let mut tx = self.db.begin().await?;
        audit::lock(&mut tx, self.db.backend).await?;
        let mut events = Vec::new();
        // Logs and metrics only after the commit: a rolled-back outcome did not happen.
        let mut after: Vec<(String, String, &'static str, String)> = Vec::new();
        for (c, result) in claimed.iter().zip(results) {
            let route = &c.due.route;
            let channel = route.channel.as_str();
            let policy = self.config.policy(channel);
            let was_failing = matches!(c.from, RouteStatus::Retrying) || (c.from == RouteStatus::Delivering && route.last_error.is_some());
            let (to, reason, next, error, receipt): (RouteStatus, Option<String>, Option<String>, Option<String>, Option<String>) = match &result {
                Attempt::NotSent => {
                    // Cancelled, blocked or reclaimed since the claim: whoever changed it owns it now.
                    continue;
                }
                Attempt::Delivered(r) => (RouteStatus::Delivered, None, None, None, Some(r.detail.clone())),
                Attempt::Failed(Failure::Permanent(m)) => {
                    (RouteStatus::Dead, Some(format!("permanent failure: {m}")), None, Some(m.clone()), None)
                }
                Attempt::Failed(Failure::Transient(m)) if c.attempts >= i64::from(policy.max_attempts) => (
                    RouteStatus::Dead,
                    Some(format!("gave up after {} attempts; last: {m}", c.attempts)),
                    None,
                    Some(m.clone()),
                    None,
                ),
                Attempt::Failed(Failure::Transient(m)) => {
                    let attempts = u32::try_from(c.attempts).unwrap_or(u32::MAX);
                    let at = clock::format(t + super::backoff(&policy, attempts));
                    (RouteStatus::Retrying, Some(format!("attempt {} failed; retrying", c.attempts)), Some(at), Some(m.clone()), None)
                }
            };
            let delivered = to == RouteStatus::Delivered;
            let f = Finish {
                status: to.as_str(),
                reason: reason.as_deref(),
                next_attempt_at: next.as_deref(),
                last_error: error.as_deref(),
                delivered_at: delivered.then_some(now.as_str()),
                receipt: receipt.as_deref(),
                now: &now,
            };
            let mut kept = q::finish(&mut tx, &route.id, lease, &f).await?;
            if kept {
                events.push(self.status_event(worker, &c.due, RouteStatus::Delivering, to, reason.as_deref(), &now));
            }
            // A consent withdrawal blocked the route while the message was on its way: it went out,
            // so the route says delivered (not blocked), as the disclosure entry does.
            let blocked_in_flight = delivered
                && !kept
                && q::finish_from(&mut tx, &route.id, lease, RouteStatus::BlockedConsent.as_str(), &Finish { reason: Some(IN_FLIGHT_WHEN_BLOCKED), ..f })
                    .await?;
            if blocked_in_flight {
                events.push(self.status_event(worker, &c.due, RouteStatus::BlockedConsent, to, Some(IN_FLIGHT_WHEN_BLOCKED), &now));
                kept = true;
            }
            if delivered {
                let mut description = format!("{} message handed to the {} channel: {}", route.channel, route.channel, receipt.as_deref().unwrap_or(""));
                if blocked_in_flight {
                    description.push_str(&format!(" ({IN_FLIGHT_WHEN_BLOCKED})"));
                } else if !kept {
                    let status = store::route_for_update(&mut tx, self.db.backend, &route.id).await?.map(|r| r.status).unwrap_or_default();
                    description.push_str(&format!(" (the route became {status} while this attempt was in flight; its status is kept)"));
                }
                events.push(AuditEvent {
                    outcome_description: Some(description),
                    consent_profile: Some(c.consent_profile.to_owned()),
                    ..self.event(worker, &c.due, EventCode::Disclosure, Action::E, Outcome::Success, &now)
                });
            }
            if kept {
                let change = match (to, was_failing) {
                    (RouteStatus::Delivered, true) => Some("recovered"),
                    (RouteStatus::Retrying, false) => Some("failing"),
                    (RouteStatus::Dead, _) => Some("dead"),
                    _ => None,
                };
                if let Some(change) = change {
                    after.push((route.id.clone(), route.handover_id.clone(), change, channel.to_owned()));
                }
                if delivered {
                    after.push((route.id.clone(), route.handover_id.clone(), "delivered", channel.to_owned()));
                }
            }
        }
        audit::append(&mut tx, &self.db, &events).await?;
        self.db.commit(tx).await?;
        for (route, handover, change, channel) in after {
            self.metrics.delivery_change(change);
            match change {
                "failing" => tracing::warn!(alert = "delivery-failing", %route, %handover, %channel, "route delivery failing; retrying with backoff"),
                "recovered" => tracing::warn!(alert = "delivery-recovered", %route, %handover, %channel, "route delivered after failures"),
                "dead" => tracing::error!(alert = "delivery-dead", %route, %handover, %channel, "route dead: no further attempts"),
                _ => tracing::debug!(%route, %handover, %channel, "route delivered"),
            }
        }
        Ok(())
    }
}

/// Step 2 for one route: checks the lease, loads the message, calls the sink.
async fn attempt(db: &Db, sink: Option<Arc<dyn crate::channels::Sink>>, route: &store::RouteRow, lease: &str) -> Attempt {
    match q::lease_held(db.reader(), &route.id, lease).await {
        Ok(true) => {}
        Ok(false) => return Attempt::NotSent,
        Err(e) => return Attempt::Failed(Failure::Transient(format!("database: {e}"))),
    }
    let Some(sink) = sink else {
        return Attempt::Failed(Failure::Permanent(format!("no sink for channel {}", route.channel)));
    };
    let Ok(channel) = route.channel.parse::<Channel>() else {
        return Attempt::Failed(Failure::Permanent(format!("unknown channel {}", route.channel)));
    };
    let (content_type, body) = match q::message(db.reader(), &route.id).await {
        Ok(Some((ct, body, encoding))) => match Body::from_stored(body, &encoding) {
            Some(b) => (ct, b),
            None => return Attempt::Failed(Failure::Permanent("the stored message cannot be decoded".into())),
        },
        Ok(None) => return Attempt::Failed(Failure::Permanent("the rendered message is no longer stored (retention)".into())),
        Err(e) => return Attempt::Failed(Failure::Transient(format!("database: {e}"))),
    };
    let recipient: serde_json::Value = serde_json::from_str(&route.recipient_json).unwrap_or(serde_json::Value::Null);
    // A replay has its own key (`<original>-replay-<n>`): the receiver must take it as new.
    let key = match &route.replay_of {
        Some(orig) => format!("{orig}-replay-{}", route.replay_number),
        None => route.id.clone(),
    };
    let msg = Outgoing {
        handover_id: &route.handover_id,
        route_id: &route.id,
        channel,
        recipient: &recipient,
        content_type: &content_type,
        body: body.as_bytes(),
        delivery_key: &key,
    };
    match sink.deliver(&msg).await {
        Ok(r) => Attempt::Delivered(r),
        Err(f) => Attempt::Failed(f),
    }
}
