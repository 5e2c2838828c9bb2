//! The gateway service: the handover pipeline behind the HTTP API, and the `serve` / `audit`
//! commands.
//!
//! A handover travels `envelope → intake → consent → routing → render → store`, and every step that
//! touches patient data leaves a NEN 7513 entry in the audit trail, written in the same transaction as
//! the change it records. The `api` module is a thin HTTP skin over [`Gateway`]; this module knows
//! nothing about HTTP beyond the [`ServiceError`] kinds the api maps to statuses.
//!
//! Every write transaction first takes the audit chain's head lock ([`crate::audit::lock`]): on
//! PostgreSQL that serialises writers, on SQLite the single writer connection already does. So a
//! consent withdrawal and a new handover of the same patient cannot interleave: either the handover's
//! routes exist when the withdrawal re-evaluates them, or the handover sees the withdrawal.

pub mod anchors;
pub mod clock;
pub mod commands;
pub mod cpu;
pub mod envelope;
pub mod listener;
pub mod metrics;
pub mod model;
pub mod patient_consent;
pub mod render;
pub mod retention;
pub mod startup;
pub mod views;

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::audit::{self, Action, Actor, AuditEvent, EventCode, Outcome};
use crate::consent::{self, ConsentDecision};
use crate::intake::{self, InputForm};
use crate::record::{AcpRecord, Bsn, SharingConsent};
use crate::store::{self, Db, HandoverRow, RouteRow, RouteUpdate};
use crate::validate::rules::Completeness;
use crate::validate::{has_errors, IssueType, Location, Problem, Severity};
use crate::routing::{self, RouteTable};
use envelope::{problem, Envelope, Party};
use metrics::Metrics;
use model::{Caller, Client, OrgId, RouteStatus, Scope};
use views::*;

/// Everything that can go wrong in a request, by what the client should do about it.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The body or a parameter cannot be read at all (400).
    #[error("{0}")]
    Malformed(String),
    /// Readable, but wrong: every problem, with its location (422).
    #[error("{title}")]
    Invalid { title: String, problems: Vec<Problem> },
    /// The client lacks the scope for this action (403).
    #[error("{0}")]
    Forbidden(String),
    /// Not there, or not the caller's to see: the two are never told apart (404).
    #[error("not found")]
    NotFound,
    /// The request conflicts with the resource's state or an earlier request (409).
    #[error("{0}")]
    Conflict(String),
    /// The database failed (500); the detail goes to the log, not to the client.
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
}

pub type Result<T> = std::result::Result<T, ServiceError>;

/// A request's JSON body, read strictly: a key repeated in one object (a consent `decision` given twice,
/// a treatment limit's decision given twice inside the record) is a 422 naming its pointer, never the
/// last value silently.
fn read_body(body: &[u8]) -> Result<Value> {
    crate::intake::json::parse_slice(body).map_err(|e| match e.pointer {
        Some(_) => ServiceError::Invalid {
            title: "the body gives a key twice".into(),
            problems: vec![crate::intake::json_problem(&e, "")],
        },
        None => ServiceError::Malformed(format!("the body is not valid JSON: {e}")),
    })
}

/// The answer to a `POST /v1/handovers`: stored verbatim for idempotent replays.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub status: u16,
    pub body: String,
    pub handover_id: Option<String>,
    /// Whether this is the stored answer to an earlier request with the same Idempotency-Key.
    pub replayed: bool,
}

/// The consent in force, in both forms the API answers with.
#[derive(Debug, Clone)]
pub struct ConsentState {
    pub view: ConsentView,
    pub fhir: Value,
}

/// The gateway: database, clients, metrics and settings, shared by every request.
pub struct Gateway {
    pub db: Db,
    pub metrics: Arc<Metrics>,
    /// Wakes the outbox workers of this process when a route becomes due (a new handover, a retry,
    /// a replay); they also poll, for routes other processes make due.
    pub wake: Arc<tokio::sync::Notify>,
    pub clients: Vec<Client>,
    pub source_id: String,
    /// The regional handover table (`mappings/routes.toml`); shared with the render threads.
    pub routes: Arc<RouteTable>,
    /// Where reading and rendering run: off the async workers, a bounded number at once.
    pub cpu: cpu::CpuPool,
}

/// What [`Gateway::prepare`] makes of a valid request: everything needed to store it.
struct Prepared {
    envelope: Envelope,
    record: AcpRecord,
    bsn: Bsn,
    form: InputForm,
    warnings: Vec<Problem>,
    routes: Vec<PreparedRoute>,
}

struct PreparedRoute {
    recipient: Party,
    channel: routing::Channel,
    message: render::RenderedMessage,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn form_key(f: InputForm) -> &'static str {
    match f {
        InputForm::UniformRecord => "uniform-record",
        InputForm::QuestionnaireResponse => "questionnaire-response",
        InputForm::FhirJson => "fhir-json",
        InputForm::FhirXml => "fhir-xml",
    }
}

fn sharing_key(s: Option<SharingConsent>) -> Option<String> {
    s.map(|s| match s {
        SharingConsent::Agreed => "agreed".to_owned(),
        SharingConsent::Unknown => "unknown".to_owned(),
    })
}

/// Form item 8b as the handovers table stores it.
pub(crate) fn sharing_from_key(s: Option<&str>) -> Option<SharingConsent> {
    match s {
        Some("agreed") => Some(SharingConsent::Agreed),
        Some("unknown") => Some(SharingConsent::Unknown),
        _ => None,
    }
}

fn route_view(r: &RouteRow) -> RouteView {
    RouteView {
        id: r.id.clone(),
        recipient: serde_json::from_str(&r.recipient_json).unwrap_or(Value::Null),
        channel: r.channel.clone(),
        status: RouteStatus::parse(&r.status).unwrap_or(RouteStatus::Pending),
        reason: r.reason.clone(),
        attempts: r.attempts,
        next_attempt_at: r.next_attempt_at.clone(),
        last_error: r.last_error.clone(),
        delivered_at: r.delivered_at.clone(),
        receipt: r.receipt.clone(),
        replay_of: r.replay_of.clone(),
        replay_number: (r.replay_number > 0).then_some(r.replay_number),
        consent: ConsentDecisionView {
            permit: r.consent_permit,
            reason: r.consent_reason.clone(),
            decided_at: r.consent_decided_at.clone(),
        },
    }
}

/// The intake warnings of an accepted handover as its audit entry keeps them: where each stands (a
/// directive set aside as not in force, a transliterated route, ...), never the message text, which may
/// quote the record. The full warnings are in the `201` answer.
fn warnings_note(warnings: &[Problem]) -> String {
    const LISTED: usize = 20;
    if warnings.is_empty() {
        return String::new();
    }
    let at: Vec<String> = warnings.iter().take(LISTED).map(|w| format!("{} [{}]", w.location, w.issue_type.as_str())).collect();
    let more = warnings.len().saturating_sub(LISTED);
    let more = if more > 0 { format!(" and {more} more") } else { String::new() };
    format!("; {} intake warning(s) at {}{more}", warnings.len(), at.join(", "))
}

fn handover_view(h: &HandoverRow, routes: &[RouteRow], warnings: Vec<ProblemItem>) -> HandoverView {
    let envelope: Value = serde_json::from_str(&h.envelope_json).unwrap_or(Value::Null);
    HandoverView {
        id: h.id.clone(),
        patient: PatientRef { bsn: h.patient_bsn.clone() },
        context: h.context.clone(),
        sender: envelope.get("sender").cloned().unwrap_or(Value::Null),
        input_form: h.input_form.clone(),
        sharing_consent: h.sharing_consent.clone(),
        created_at: h.created_at.clone(),
        routes: routes.iter().map(route_view).collect(),
        warnings,
    }
}

/// The warning for a route whose channel cannot carry some of the letter's characters (Edifact: UNOA),
/// so the sender knows before the GP does (issue 11 item 6). The letter itself says it at the top.
fn transliteration_warning(channel: routing::Channel, record: &AcpRecord, recipient: usize) -> Option<Problem> {
    if channel != routing::Channel::Edifact {
        return None;
    }
    let lost = crate::render::edifact::lost_characters(record);
    let examples: Vec<String> = lost.iter().take(5).map(|c| format!("'{c}' (U+{:04X})", *c as u32)).collect();
    (!lost.is_empty()).then(|| {
        Problem::warning(
            IssueType::NotSupported,
            Location::JsonPointer(format!("/recipients/{recipient}")),
            format!(
                "the edifact route cannot carry {} distinct character(s) of the letter, e.g. {}: Edifact (UNOA) \
                 sends each as '?', and the letter opens with a note that the original text is with the sender",
                lost.len(),
                examples.join(", ")
            ),
        )
    })
}

/// The routes of a handover the caller may see; `None` when it may not see the handover at all.
/// A sender sees every route; a recipient organisation sees the routes addressed to it, once consent
/// permits them (a blocked route must not tell the recipient the patient exists).
fn visible_routes(h: &HandoverRow, routes: Vec<RouteRow>, org: &OrgId) -> Option<Vec<RouteRow>> {
    if h.organization == org.as_str() {
        return Some(routes);
    }
    let mine: Vec<RouteRow> = routes
        .into_iter()
        .filter(|r| r.recipient_org.as_deref() == Some(org.as_str()) && r.status != RouteStatus::BlockedConsent.as_str())
        .collect();
    (!mine.is_empty()).then_some(mine)
}

/// A record problem located in the request body: pointers into a JSON record get the `/record`
/// prefix; FHIRPath and line/column locations stay as they are (they are read as inside `/record`).
fn rebase(mut p: Problem, record_is_json: bool) -> Problem {
    if let Location::JsonPointer(ptr) = &p.location {
        p.location = if record_is_json {
            Location::JsonPointer(format!("/record{ptr}"))
        } else {
            p.message = format!("{} (at {ptr} in the record)", p.message);
            Location::JsonPointer("/record".into())
        };
    }
    p
}

impl Gateway {
    pub fn new(db: Db, clients: Vec<Client>, source_id: String) -> Gateway {
        Gateway { db, metrics: Arc::new(Metrics::default()), wake: Arc::new(tokio::sync::Notify::new()), clients, source_id, routes: Arc::new(RouteTable::load()), cpu: cpu::CpuPool::default() }
    }

    /// An audit entry of `caller`'s action, with the object fields left for the caller to fill.
    fn event(&self, caller: &Caller, scope: Scope, code: EventCode, action: Action, outcome: Outcome, now: &str) -> AuditEvent {
        let actor = Actor { user_id: caller.client_id.clone(), organization: caller.org.to_string(), role: caller.role.clone() };
        let protocol = format!("{}; organisation-scoped; scope {}", caller.authentication, scope.as_str());
        AuditEvent { access_point: caller.access_point.clone(), ..AuditEvent::new(code, action, outcome, now, actor, protocol, &self.source_id) }
    }

    fn require(caller: &Caller, scope: Scope) -> Result<()> {
        if caller.has(scope) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!("this client lacks the scope `{}`", scope.as_str())))
        }
    }

    /// Records one consent decision for a route: an audit entry (BALP AuthZconsent) and a metric.
    fn consent_event(&self, caller: &Caller, scope: Scope, now: &str, bsn: &str, route: &RouteRow, d: &ConsentDecision) -> AuditEvent {
        self.metrics.consent_decision(d.permit);
        let outcome = if d.permit { Outcome::Success } else { Outcome::Refused };
        let event = AuditEvent {
            outcome_description: Some(d.reason.clone()),
            consent_profile: Some(d.profile.to_owned()),
            ..self.event(caller, scope, EventCode::ConsentDecision, Action::E, outcome, now)
        };
        event.about_route(bsn, route)
    }

    /// A route status change (or creation, `from = None`).
    #[allow(clippy::too_many_arguments)]
    fn status_event(
        &self,
        caller: &Caller,
        scope: Scope,
        now: &str,
        bsn: &str,
        route: &RouteRow,
        from: Option<&str>,
        to: RouteStatus,
        reason: Option<&str>,
    ) -> AuditEvent {
        let what = match from {
            None => format!("route created as {}", to.as_str()),
            Some(f) => format!("route {f} -> {}", to.as_str()),
        };
        AuditEvent {
            patient_id_type: Some("BSN".into()),
            patient_id: Some(bsn.to_owned()),
            object_type: "route".into(),
            object_id: Some(route.id.clone()),
            outcome_description: Some(match reason {
                Some(r) => format!("{what}: {r}"),
                None => what,
            }),
            recipient: route.recipient_org.clone(),
            handover_id: Some(route.handover_id.clone()),
            route_id: Some(route.id.clone()),
            ..self.event(caller, scope, EventCode::RouteStatus, if from.is_none() { Action::C } else { Action::U }, Outcome::Success, now)
        }
    }

    // --------------------------------------------------------------------------------------------
    // POST /v1/handovers

    /// Accepts a handover: validates, routes, decides consent per route, renders, and stores it all
    /// in one transaction before answering `201`.
    pub async fn submit(&self, caller: &Caller, body: &[u8], idempotency_key: Option<&str>) -> Result<Submitted> {
        Self::require(caller, Scope::HandoversWrite)?;
        let request_hash = sha256_hex(body);
        if let Some(key) = idempotency_key {
            if let Some(row) = store::get_idempotency(self.db.reader(), &caller.client_id, key).await? {
                return self.replay(caller, row, &request_hash).await;
            }
        }
        let value = read_body(body)?;
        let now = clock::now();
        // Reading, validating and rendering are CPU work: off the async workers (`cpu`).
        let (routes, who) = (self.routes.clone(), caller.clone());
        let prepared = match self.cpu.run(move || Self::prepare(&routes, &who, &value)).await {
            Ok(p) => p,
            Err((problems, bsn)) => {
                self.audit_rejection(caller, bsn.as_ref(), &problems, &now).await?;
                self.metrics.handover("rejected");
                return Err(ServiceError::Invalid { title: "the handover cannot be accepted".into(), problems });
            }
        };

        let handover_id = clock::new_id();
        let bsn = prepared.bsn.as_str().to_owned();
        let sharing = prepared.record.sharing_consent;
        let scope = Scope::HandoversWrite;
        let envelope_json = json!({
            "sender": prepared.envelope.sender.raw,
            "recipients": prepared.envelope.recipients.iter().map(|r| &r.raw).collect::<Vec<_>>(),
            "context": prepared.envelope.context.key(),
        });
        let handover = HandoverRow {
            id: handover_id.clone(),
            organization: caller.org.to_string(),
            client_id: caller.client_id.clone(),
            patient_bsn: bsn.clone(),
            context: prepared.envelope.context.key().to_owned(),
            sender_role: prepared.envelope.sender.role.key().to_owned(),
            input_form: form_key(prepared.form).to_owned(),
            sharing_consent: sharing_key(sharing),
            envelope_json: envelope_json.to_string(),
            created_at: now.clone(),
        };
        let record_json = crate::render::record_json::render(&prepared.record);
        let received = String::from_utf8_lossy(body);

        let mut tx = self.db.begin().await?;
        audit::lock(&mut tx, self.db.backend).await?;
        if let Some(key) = idempotency_key {
            // Claimed first, in the same transaction: a concurrent twin fails here and replays ours.
            let claim = store::IdempotencyRow {
                request_hash: request_hash.clone(),
                status_code: 201,
                response_body: String::new(),
                handover_id: Some(handover_id.clone()),
            };
            if let Err(e) = store::insert_idempotency(&mut tx, &caller.client_id, key, &claim, &now).await {
                drop(tx);
                if store::is_unique_violation(&e) {
                    if let Some(row) = store::get_idempotency(self.db.reader(), &caller.client_id, key).await? {
                        return self.replay(caller, row, &request_hash).await;
                    }
                }
                return Err(e.into());
            }
        }
        // Consent is read inside the transaction, after the lock: see the module documentation.
        let stored = patient_consent::history(&mut *tx, &bsn).await?;

        let mut events = vec![AuditEvent {
            patient_id_type: Some("BSN".into()),
            patient_id: Some(bsn.clone()),
            object_id: Some(handover_id.clone()),
            handover_id: Some(handover_id.clone()),
            responsible_user_id: prepared.envelope.sender.practitioner.clone(),
            responsible_user_role: Some(prepared.envelope.sender.role.key().to_owned()),
            consent_profile: Some(format!("8b:{}", sharing_key(sharing).unwrap_or_else(|| "absent".into()))),
            outcome_description: Some(format!(
                "handover received ({}, context {}, {} route(s)){}",
                form_key(prepared.form),
                prepared.envelope.context,
                prepared.routes.len(),
                warnings_note(&prepared.warnings)
            )),
            ..self.event(caller, scope, EventCode::HandoverReceived, Action::C, Outcome::Success, &now)
        }];
        store::insert_handover(&mut tx, &handover, &received, &record_json).await?;
        let mut routes = Vec::with_capacity(prepared.routes.len());
        for (i, pr) in prepared.routes.iter().enumerate() {
            let decision = consent::decide(sharing, &stored, pr.recipient.organization.as_ref(), &now);
            let status = if decision.permit { RouteStatus::Pending } else { RouteStatus::BlockedConsent };
            let route = RouteRow {
                id: clock::new_id(),
                handover_id: handover_id.clone(),
                position: i as i64,
                recipient_json: pr.recipient.raw.to_string(),
                recipient_org: pr.recipient.organization.as_ref().map(ToString::to_string),
                recipient_role: pr.recipient.role.key().to_owned(),
                channel: pr.channel.key().to_owned(),
                status: status.as_str().to_owned(),
                reason: (!decision.permit).then(|| decision.reason.clone()),
                attempts: 0,
                next_attempt_at: decision.permit.then(|| now.clone()),
                last_error: None,
                consent_permit: decision.permit,
                consent_reason: decision.reason.clone(),
                consent_decided_at: now.clone(),
                updated_at: now.clone(),
                delivered_at: None,
                receipt: None,
                replay_of: None,
                replay_number: 0,
            };
            store::insert_route(&mut tx, &route).await?;
            let (body, encoding) = pr.message.body.stored();
            store::insert_message(&mut tx, &route.id, pr.message.content_type, pr.message.renderer, &body, encoding, &now).await?;
            events.push(self.consent_event(caller, scope, &now, &bsn, &route, &decision));
            events.push(self.status_event(caller, scope, &now, &bsn, &route, None, status, route.reason.as_deref()));
            routes.push(route);
        }
        audit::append(&mut tx, &self.db, &events).await?;

        let warnings = prepared.warnings.iter().map(problem_item).collect();
        let body = serde_json::to_string(&handover_view(&handover, &routes, warnings)).unwrap_or_default();
        if let Some(key) = idempotency_key {
            store::set_idempotency_response(&mut tx, &caller.client_id, key, 201, &body).await?;
        }
        if routes.iter().any(|r| r.consent_permit) {
            store::outbox::announce_due(&mut tx, self.db.backend).await?;
        }
        self.db.commit(tx).await?;
        self.wake.notify_waiters();
        self.metrics.handover("accepted");
        tracing::info!(handover = %handover_id, routes = routes.len(), "handover accepted");
        Ok(Submitted { status: 201, body, handover_id: Some(handover_id), replayed: false })
    }

    /// The stored answer to an earlier request with the same key; the answer carries patient data,
    /// so handing it out again is audited as a read.
    async fn replay(&self, caller: &Caller, row: store::IdempotencyRow, request_hash: &str) -> Result<Submitted> {
        if row.request_hash != request_hash {
            return Err(ServiceError::Conflict(
                "this Idempotency-Key was used for a different request body; use a new key for a new handover".into(),
            ));
        }
        if let Some(h) = match &row.handover_id {
            Some(id) => store::get_handover(self.db.reader(), id).await?,
            None => None,
        } {
            let now = clock::now();
            let event = AuditEvent {
                patient_id_type: Some("BSN".into()),
                patient_id: Some(h.patient_bsn.clone()),
                object_id: Some(h.id.clone()),
                handover_id: Some(h.id.clone()),
                outcome_description: Some("idempotent resubmission: the stored answer was returned".into()),
                ..self.event(caller, Scope::HandoversWrite, EventCode::PatientRead, Action::R, Outcome::Success, &now)
            };
            self.append_alone(&[event]).await?;
        }
        self.metrics.handover("replayed");
        Ok(Submitted {
            status: u16::try_from(row.status_code).unwrap_or(201),
            body: row.response_body,
            handover_id: row.handover_id,
            replayed: true,
        })
    }

    /// Reads and checks the request; on failure, every problem and the patient's BSN if it is known.
    fn prepare(table: &RouteTable, caller: &Caller, value: &Value) -> std::result::Result<Prepared, (Vec<Problem>, Option<Bsn>)> {
        let env = envelope::read(value, &caller.org);
        // The record is read even when the envelope has problems, so that one answer lists them all.
        let record_bytes = match (&env, value.get("record")) {
            (Ok(e), _) => Some((e.record_bytes.clone(), e.record_is_json)),
            (Err(_), Some(r @ Value::Object(_))) => Some((serde_json::to_vec(r).unwrap_or_default(), true)),
            (Err(_), Some(Value::String(s))) => Some((s.clone().into_bytes(), false)),
            _ => None,
        };
        let mut problems = env.as_ref().err().cloned().unwrap_or_default();
        problems.extend(crate::validate::limits::check_envelope(value));
        let read = match record_bytes.map(|(bytes, is_json)| (read_record(&bytes), is_json)) {
            Some((Some(intake), is_json)) => Some((intake, is_json)),
            Some((None, _)) => {
                problems.push(problem(
                    IssueType::Structure,
                    "/record",
                    "the gateway failed while reading this record (an internal error, logged); the input was not accepted",
                ));
                return Err((problems, None));
            }
            None => None,
        };
        let mut warnings = Vec::new();
        if let Some((intake, is_json)) = &read {
            for p in &intake.problems {
                let p = rebase(p.clone(), *is_json);
                if p.severity == Severity::Error {
                    problems.push(p);
                } else {
                    warnings.push(p);
                }
            }
        }
        let envelope_bsn = value.pointer("/patient/bsn").and_then(Value::as_str).and_then(|s| Bsn::parse(s).ok());
        let record = read.as_ref().and_then(|(i, _)| i.record.as_ref());
        let record_bsn = record.and_then(|r| r.patient.bsn.clone());
        let bsn = match (&record_bsn, &envelope_bsn) {
            (Some(r), Some(e)) if r != e => {
                problems.push(problem(
                    IssueType::Invariant,
                    "/patient/bsn",
                    format!("patient.bsn {e} contradicts the record's BSN {r}; a handover carries one patient"),
                ));
                None
            }
            (Some(b), _) | (None, Some(b)) => Some(b.clone()),
            (None, None) => {
                if record.is_some() {
                    problems.push(problem(
                        IssueType::Required,
                        "/patient/bsn",
                        "the patient's BSN is needed: in the record, or in `patient.bsn` when the record form carries none",
                    ));
                }
                None
            }
        };
        if let Some((intake, _)) = &read {
            if intake.completeness == Completeness::Partial && intake.record.as_ref().is_some_and(|r| r.date_filled_in.is_none()) {
                problems.push(problem(
                    IssueType::Required,
                    "/record",
                    "a partial record is accepted only with the conversation date (Datum van invullen)",
                ));
            }
        }

        if record_bsn.is_none() && envelope_bsn.is_some() {
            // The envelope supplies the BSN the record form lacks: the record is complete in that.
            warnings.retain(|w| !crate::validate::rules::is_missing_bsn_warning(w));
        }
        let (Ok(envelope), Some((intake, _)), Some(bsn)) = (env, &read, bsn.clone()) else {
            return Err((problems, bsn));
        };
        let Some(valid) = intake.valid_record().filter(|_| !has_errors(&problems)) else {
            return Err((problems, Some(bsn)));
        };
        let mut record = valid.clone();
        record.patient.bsn = Some(bsn.clone());
        let form = intake.form.unwrap_or(InputForm::UniformRecord);

        let mut routes = Vec::new();
        for (i, recipient) in envelope.recipients.iter().enumerate() {
            // The table's channels, plus those it offers on every row (FHIR) to a recipient that names
            // an endpoint for them.
            let channels = match table.resolve_for_recipient(envelope.sender.role, recipient.role, envelope.context, &recipient.accepted) {
                Ok(c) => c,
                Err(no) => {
                    problems.push(problem(
                        IssueType::NotSupported,
                        format!("/recipients/{i}/role"),
                        format!("{no} (mappings/routes.toml; ../shared/spec/handover-table.md)"),
                    ));
                    continue;
                }
            };
            for channel in channels {
                match render::render_route(channel, &record, &recipient.raw, &render::RouteContext { sender: &envelope.sender.raw, recipient_index: i, source_date_epoch: None }) {
                    Ok(message) => {
                        warnings.extend(transliteration_warning(channel, &record, i));
                        routes.push(PreparedRoute { recipient: recipient.clone(), channel, message })
                    }
                    Err(e) => problems.push(problem(
                        IssueType::Required,
                        format!("/recipients/{i}{}", e.recipient_pointer.unwrap_or_default()),
                        format!("cannot render the {channel} message: {}", e.message),
                    )),
                }
            }
        }
        if has_errors(&problems) {
            return Err((problems, Some(bsn)));
        }
        Ok(Prepared { envelope, record, bsn, form, warnings, routes })
    }

    async fn audit_rejection(&self, caller: &Caller, bsn: Option<&Bsn>, problems: &[Problem], now: &str) -> Result<()> {
        let errors = problems.iter().filter(|p| p.severity == Severity::Error).count();
        let pointers: BTreeSet<String> = problems.iter().take(20).map(|p| p.location.to_string()).collect();
        let event = AuditEvent {
            patient_id_type: bsn.map(|_| "BSN".into()),
            patient_id: bsn.map(|b| b.as_str().to_owned()),
            // Locations only: messages may quote record content.
            outcome_description: Some(format!(
                "handover refused: {errors} problem(s) at {}",
                pointers.into_iter().collect::<Vec<_>>().join(", ")
            )),
            ..self.event(caller, Scope::HandoversWrite, EventCode::ValidationFailed, Action::C, Outcome::Refused, now)
        };
        let mut tx = self.db.begin().await?;
        audit::lock(&mut tx, self.db.backend).await?;
        audit::append(&mut tx, &self.db, &[event]).await?;
        self.db.commit(tx).await?;
        Ok(())
    }

    // --------------------------------------------------------------------------------------------
    // Reads

    /// `GET /v1/handovers/{id}`.
    pub async fn handover(&self, caller: &Caller, id: &str) -> Result<HandoverView> {
        Self::require(caller, Scope::HandoversRead)?;
        let h = store::get_handover(self.db.reader(), id).await?.ok_or(ServiceError::NotFound)?;
        let routes = store::routes_of(self.db.reader(), id).await?;
        let routes = visible_routes(&h, routes, &caller.org).ok_or(ServiceError::NotFound)?;
        let now = clock::now();
        let event = AuditEvent {
            patient_id_type: Some("BSN".into()),
            patient_id: Some(h.patient_bsn.clone()),
            object_id: Some(h.id.clone()),
            handover_id: Some(h.id.clone()),
            ..self.event(caller, Scope::HandoversRead, EventCode::PatientRead, Action::R, Outcome::Success, &now)
        };
        self.append_alone(&[event]).await?;
        let warnings = self.route_notes(&routes).await?;
        Ok(handover_view(&h, &routes, warnings))
    }

    /// What a route's stored message says it could not carry (an Edifact letter opens with a note when
    /// text was sent as `?`), as warnings at `/routes/{k}`: the route detail keeps saying so after the
    /// intake's answer. Nothing once the message has been purged.
    async fn route_notes(&self, routes: &[RouteRow]) -> Result<Vec<ProblemItem>> {
        let mut out = Vec::new();
        for (k, r) in routes.iter().enumerate().filter(|(_, r)| r.channel == routing::Channel::Edifact.key()) {
            let Some((_, body, encoding)) = store::outbox::message(self.db.reader(), &r.id).await? else { continue };
            if let Some(note) = (encoding == "utf-8").then(|| crate::render::edifact::transliteration_note_of(&body)).flatten() {
                let message = format!("the edifact letter could not carry all of the text; it opens with: {note}");
                out.push(problem_item(&Problem::warning(IssueType::NotSupported, Location::JsonPointer(format!("/routes/{k}")), message)));
            }
        }
        Ok(out)
    }

    /// `GET /v1/handovers?patient=&status=`: the caller's handovers, newest first.
    pub async fn handovers(&self, caller: &Caller, patient: Option<&str>, status: Option<&str>, limit: Option<&str>) -> Result<HandoverList> {
        Self::require(caller, Scope::HandoversRead)?;
        let patient = patient
            .map(|p| Bsn::parse(p).map_err(|e| ServiceError::Malformed(format!("query parameter `patient`: {e}"))))
            .transpose()?;
        let status = status
            .map(|s| {
                RouteStatus::parse(s).ok_or_else(|| {
                    let all: Vec<&str> = RouteStatus::ALL.iter().map(|s| s.as_str()).collect();
                    ServiceError::Malformed(format!("query parameter `status`: one of {}", all.join(", ")))
                })
            })
            .transpose()?;
        let limit = match limit {
            None => 100,
            Some(l) => l
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| ServiceError::Malformed("query parameter `limit`: a number from 1 to 1000".into()))?,
        };
        let rows = store::list_handovers(
            &self.db,
            caller.org.as_str(),
            patient.as_ref().map(Bsn::as_str),
            status.map(RouteStatus::as_str),
            limit,
        )
        .await?;
        let mut out = Vec::new();
        let mut patients = BTreeSet::new();
        for h in rows {
            let routes = store::routes_of(self.db.reader(), &h.id).await?;
            if let Some(routes) = visible_routes(&h, routes, &caller.org) {
                patients.insert(h.patient_bsn.clone());
                out.push(handover_view(&h, &routes, Vec::new()));
            }
        }
        let now = clock::now();
        let events: Vec<AuditEvent> = patients
            .into_iter()
            .map(|bsn| AuditEvent {
                patient_id_type: Some("BSN".into()),
                patient_id: Some(bsn),
                outcome_description: Some("handover search".into()),
                ..self.event(caller, Scope::HandoversRead, EventCode::PatientQuery, Action::E, Outcome::Success, &now)
            })
            .collect();
        self.append_alone(&events).await?;
        Ok(HandoverList { handovers: out })
    }

    async fn append_alone(&self, events: &[AuditEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.begin().await?;
        audit::lock(&mut tx, self.db.backend).await?;
        audit::append(&mut tx, &self.db, events).await?;
        self.db.commit(tx).await?;
        Ok(())
    }

    // --------------------------------------------------------------------------------------------
    // Operator actions

    /// The handover and route an operator acts on, locked; only the sending organisation may act.
    async fn operated_route(&self, tx: &mut store::Tx, caller: &Caller, handover_id: &str, route_id: &str) -> Result<(HandoverRow, RouteRow)> {
        let h = store::get_handover(&mut **tx, handover_id).await?.ok_or(ServiceError::NotFound)?;
        let route = store::route_for_update(tx, self.db.backend, route_id)
            .await?
            .filter(|r| r.handover_id == h.id)
            .ok_or(ServiceError::NotFound)?;
        if h.organization != caller.org.as_str() {
            // A recipient that may see the route learns nothing new from a 403; others get 404.
            let sees = route.recipient_org.as_deref() == Some(caller.org.as_str()) && route.status != RouteStatus::BlockedConsent.as_str();
            return Err(if sees {
                ServiceError::Forbidden("only the sending organisation can retry, cancel or replay a route".into())
            } else {
                ServiceError::NotFound
            });
        }
        Ok((h, route))
    }

    /// `POST /v1/handovers/{id}/routes/{route}/retry|cancel`: only the sending organisation acts on
    /// its routes. Retry re-checks consent: a route consent does not permit goes to `blocked-consent`.
    pub async fn route_action(&self, caller: &Caller, handover_id: &str, route_id: &str, retry: bool) -> Result<RouteView> {
        Self::require(caller, Scope::Operator)?;
        let now = clock::now();
        let mut tx = self.db.begin().await?;
        audit::lock(&mut tx, self.db.backend).await?;
        let (h, route) = self.operated_route(&mut tx, caller, handover_id, route_id).await?;
        let from = RouteStatus::parse(&route.status).unwrap_or(RouteStatus::Pending);
        let scope = Scope::Operator;
        let code = if retry { EventCode::OperatorRetry } else { EventCode::OperatorCancel };
        let base = self.event(caller, scope, code, Action::U, Outcome::Success, &now).about_route(&h.patient_bsn, &route);
        let mut events = Vec::new();
        let (to, reason, consent, next) = if retry {
            if matches!(from, RouteStatus::Pending | RouteStatus::Delivering | RouteStatus::Delivered) {
                return Err(ServiceError::Conflict(format!("the route is {}; there is nothing to retry", from.as_str())));
            }
            let stored = patient_consent::history(&mut *tx, &h.patient_bsn).await?;
            let org = route.recipient_org.as_deref().and_then(|o| OrgId::try_from(o.to_owned()).ok());
            let d = consent::decide(sharing_from_key(h.sharing_consent.as_deref()), &stored, org.as_ref(), &now);
            events.push(AuditEvent { outcome_description: Some(format!("retry requested (route was {} after {} attempt(s))", from.as_str(), route.attempts)), ..base });
            events.push(self.consent_event(caller, scope, &now, &h.patient_bsn, &route, &d));
            if d.permit {
                (RouteStatus::Pending, None, Some((true, d.reason)), Some(now.clone()))
            } else {
                (RouteStatus::BlockedConsent, Some(d.reason.clone()), Some((false, d.reason)), None)
            }
        } else {
            if matches!(from, RouteStatus::Delivered | RouteStatus::Cancelled) {
                return Err(ServiceError::Conflict(format!("the route is {}; it cannot be cancelled", from.as_str())));
            }
            events.push(AuditEvent { outcome_description: Some(format!("cancel requested (route was {})", from.as_str())), ..base });
            (RouteStatus::Cancelled, Some(format!("cancelled by {} ({})", caller.client_id, caller.org)), None, None)
        };
        let update = RouteUpdate {
            status: to.as_str(),
            reason: reason.as_deref(),
            consent: consent.as_ref().map(|(p, r)| (*p, r.as_str())),
            next_attempt_at: next.as_deref(),
            now: &now,
        };
        store::update_route(&mut tx, &route.id, &update).await?;
        if retry {
            // A fresh attempt budget; the audit trail keeps the attempts made so far.
            store::outbox::reset_attempts(&mut tx, &route.id).await?;
        }
        events.push(self.status_event(caller, scope, &now, &h.patient_bsn, &route, Some(from.as_str()), to, reason.as_deref()));
        audit::append(&mut tx, &self.db, &events).await?;
        let updated = store::route_for_update(&mut tx, self.db.backend, &route.id).await?.ok_or(ServiceError::NotFound)?;
        if to == RouteStatus::Pending {
            store::outbox::announce_due(&mut tx, self.db.backend).await?;
        }
        self.db.commit(tx).await?;
        if to == RouteStatus::Pending {
            self.wake.notify_waiters();
        }
        tracing::info!(handover = %h.id, route = %route.id, action = if retry { "retry" } else { "cancel" }, to = to.as_str(), "operator action");
        Ok(route_view(&updated))
    }

    /// `POST /v1/handovers/{id}/routes/{route}/replay[?rerender=true]`: sends a delivered route again
    /// as a new route linked to it (`replay_of`, `replay_number`), with the original rendered message,
    /// or re-rendered from the stored record with the current mappings. Consent is decided anew; a
    /// deny refuses the replay (409) and is audited. The original route keeps its own history.
    pub async fn replay_route(&self, caller: &Caller, handover_id: &str, route_id: &str, rerender: bool) -> Result<RouteView> {
        Self::require(caller, Scope::Operator)?;
        let now = clock::now();
        let scope = Scope::Operator;
        let mut tx = self.db.begin().await?;
        audit::lock(&mut tx, self.db.backend).await?;
        let (h, original) = self.operated_route(&mut tx, caller, handover_id, route_id).await?;
        if original.status != RouteStatus::Delivered.as_str() {
            return Err(ServiceError::Conflict(format!("the route is {}; only a delivered route can be replayed (retry a dead one)", original.status)));
        }
        let stored = patient_consent::history(&mut *tx, &h.patient_bsn).await?;
        let org = original.recipient_org.as_deref().and_then(|o| OrgId::try_from(o.to_owned()).ok());
        let d = consent::decide(sharing_from_key(h.sharing_consent.as_deref()), &stored, org.as_ref(), &now);
        let base = self.event(caller, scope, EventCode::OperatorReplay, Action::C, Outcome::Success, &now).about_route(&h.patient_bsn, &original);
        let mut events = vec![self.consent_event(caller, scope, &now, &h.patient_bsn, &original, &d)];
        if !d.permit {
            events.push(AuditEvent { outcome: Outcome::Refused, outcome_description: Some(format!("replay refused: {}", d.reason)), ..base });
            audit::append(&mut tx, &self.db, &events).await?;
            self.db.commit(tx).await?;
            return Err(ServiceError::Conflict(format!("consent does not permit sending this route again: {}", d.reason)));
        }
        let (content_type, renderer, body, encoding) = if rerender {
            let record_json = store::outbox::record_json(&mut tx, &h.id).await?.ok_or(ServiceError::NotFound)?;
            let record = intake::read(record_json.as_bytes())
                .valid_record()
                .cloned()
                .ok_or_else(|| ServiceError::Conflict("the stored record no longer validates with the current mappings; replay the original message instead".into()))?;
            let channel = original.channel.parse::<routing::Channel>().map_err(|e| ServiceError::Conflict(e.to_string()))?;
            let recipient: Value = serde_json::from_str(&original.recipient_json).unwrap_or(Value::Null);
            // The same context as at intake, so a re-render differs only where the mappings changed.
            let envelope: Value = serde_json::from_str(&h.envelope_json).unwrap_or(Value::Null);
            let recipient_index = envelope
                .get("recipients")
                .and_then(Value::as_array)
                .and_then(|all| all.iter().position(|r| *r == recipient))
                .unwrap_or(0);
            let m = self
                .cpu
                .run(move || {
                    let ctx = render::RouteContext { sender: envelope.get("sender").unwrap_or(&Value::Null), recipient_index, source_date_epoch: None };
                    render::render_route(channel, &record, &recipient, &ctx)
                })
                .await
                .map_err(|e| ServiceError::Conflict(format!("cannot re-render the {channel} message: {}", e.message)))?;
            let (body, encoding) = m.body.stored();
            (m.content_type.to_owned(), m.renderer.to_owned(), body.into_owned(), encoding.to_owned())
        } else {
            let (ct, body, encoding) = store::outbox::message(&mut *tx, &original.id).await?.ok_or_else(|| {
                ServiceError::Conflict("the original message is no longer stored (retention); replay with ?rerender=true".into())
            })?;
            (ct, "replay of the original message".to_owned(), body, encoding)
        };
        // A replay of a replay is linked to the first route, so the numbers count every resend of it.
        let root = original.replay_of.clone().unwrap_or_else(|| original.id.clone());
        let (number, position) = store::outbox::next_replay(&mut tx, &root, &h.id).await?;
        let replay = RouteRow {
            id: clock::new_id(),
            position,
            status: RouteStatus::Pending.as_str().to_owned(),
            reason: Some(format!("replay {number} of route {root}{}", if rerender { ", re-rendered" } else { "" })),
            attempts: 0,
            next_attempt_at: Some(now.clone()),
            last_error: None,
            consent_permit: true,
            consent_reason: d.reason.clone(),
            consent_decided_at: now.clone(),
            updated_at: now.clone(),
            delivered_at: None,
            receipt: None,
            replay_of: Some(root.clone()),
            replay_number: number,
            ..original.clone()
        };
        store::insert_route(&mut tx, &replay).await?;
        store::insert_message(&mut tx, &replay.id, &content_type, &renderer, &body, &encoding, &now).await?;
        events.push(AuditEvent {
            outcome_description: Some(format!(
                "replay {number} requested as route {} ({})",
                replay.id,
                if rerender { "re-rendered with the current mappings" } else { "the original rendered message" }
            )),
            ..base
        });
        events.push(self.status_event(caller, scope, &now, &h.patient_bsn, &replay, None, RouteStatus::Pending, replay.reason.as_deref()));
        audit::append(&mut tx, &self.db, &events).await?;
        store::outbox::announce_due(&mut tx, self.db.backend).await?;
        self.db.commit(tx).await?;
        self.wake.notify_waiters();
        tracing::info!(handover = %h.id, route = %original.id, replay = %replay.id, number, rerender, "operator replay");
        Ok(route_view(&replay))
    }

    /// `GET /v1/worklist[?since=TIME]`: the MDO worklist items addressed to the caller's organisation,
    /// oldest first; reading them is audited per patient.
    pub async fn worklist(&self, caller: &Caller, since: Option<&str>) -> Result<WorklistView> {
        Self::require(caller, Scope::HandoversRead)?;
        let items = store::outbox::worklist_for(self.db.reader(), caller.org.as_str(), since, 100).await?;
        let now = clock::now();
        let mut seen = BTreeSet::new();
        let events: Vec<AuditEvent> = items
            .iter()
            .filter(|i| seen.insert(i.handover_id.clone()))
            .map(|i| AuditEvent {
                patient_id_type: Some("BSN".into()),
                patient_id: Some(i.patient_bsn.clone()),
                object_type: "worklist-item".into(),
                object_id: Some(i.id.clone()),
                handover_id: Some(i.handover_id.clone()),
                route_id: Some(i.route_id.clone()),
                outcome_description: Some("MDO worklist fetched".into()),
                ..self.event(caller, Scope::HandoversRead, EventCode::PatientRead, Action::R, Outcome::Success, &now)
            })
            .collect();
        self.append_alone(&events).await?;
        Ok(WorklistView {
            items: items
                .into_iter()
                .map(|i| WorklistItemView {
                    id: i.id,
                    handover_id: i.handover_id,
                    route_id: i.route_id,
                    content_type: i.content_type,
                    encoding: i.encoding,
                    body: i.body,
                    created_at: i.created_at,
                })
                .collect(),
        })
    }

    // --------------------------------------------------------------------------------------------
    // Audit

    /// `GET /v1/audit?patient=BSN`: the patient's entries that concern the caller's organisation.
    pub async fn audit(&self, caller: &Caller, patient: Option<&str>) -> Result<AuditList> {
        Self::require(caller, Scope::AuditRead)?;
        let raw = patient.ok_or_else(|| ServiceError::Malformed("query parameter `patient` (a BSN) is required".into()))?;
        let bsn = Bsn::parse(raw).map_err(|e| ServiceError::Malformed(format!("query parameter `patient`: {e}")))?;
        if !store::org_knows_patient(self.db.reader(), caller.org.as_str(), bsn.as_str()).await? {
            return Err(ServiceError::NotFound);
        }
        let entries = audit::patient_entries(&self.db, bsn.as_str(), Some(caller.org.as_str())).await?;
        let now = clock::now();
        let event = AuditEvent {
            patient_id_type: Some("BSN".into()),
            patient_id: Some(bsn.as_str().to_owned()),
            object_type: "audit-log".into(),
            ..self.event(caller, Scope::AuditRead, EventCode::PatientRead, Action::R, Outcome::Success, &now)
        };
        self.append_alone(&[event]).await?;
        Ok(AuditList { patient: PatientRef { bsn: bsn.as_str().to_owned() }, entries: entries.iter().map(audit::nen7513_json).collect() })
    }
}

/// Intake, with a panic in a reader (a gateway bug) turned into a refusal instead of a dropped
/// connection: no input may take the service down or answer with a 500.
fn read_record(bytes: &[u8]) -> Option<intake::Intake> {
    match std::panic::catch_unwind(|| intake::read(bytes)) {
        Ok(i) => Some(i),
        Err(_) => {
            tracing::error!("intake panicked on a record; refused with 422");
            None
        }
    }
}

/// Shared handle for the api layer.
pub type SharedGateway = Arc<Gateway>;
