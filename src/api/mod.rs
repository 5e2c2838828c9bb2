//! The HTTP API (contract: `../shared/spec/interface.md`, "HTTP API"): thin on purpose.
//!
//! Handlers parse (path, query, headers, body bytes), call [`crate::service::Gateway`], and turn the
//! outcome into a response. Errors become statuses in ONE place, [`ApiError`]'s `IntoResponse`: an
//! RFC 9457 `application/problem+json` document with an `errors` list of `{pointer, message}`; the
//! [`fhir_outcomes`] layer rewrites it as a FHIR OperationOutcome when the client sent or asked for
//! `application/fhir+json`. No input reaches a 500: a 500 means the database failed.
//!
//! Every route is declared through `utoipa_axum::routes!` from its `#[utoipa::path]` annotation, so
//! the router and `/openapi.json` are made from the same declarations (a test checks both ways).

pub mod auth;
pub mod budget;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::service::views::*;
use crate::service::{Gateway, ServiceError};
use crate::validate::Problem;
use auth::Auth;

/// Request bodies larger than this are refused with 413 (the record itself is capped at the same size
/// by intake).
pub const MAX_BODY_BYTES: usize = crate::intake::MAX_INPUT_BYTES;

const PROBLEM_JSON: &str = "application/problem+json";
const FHIR_JSON: &str = "application/fhir+json";

#[derive(Clone)]
pub struct AppState {
    pub gateway: Arc<Gateway>,
    /// Whether clients also authenticate with a TLS certificate (recorded in the audit trail).
    pub mtls: bool,
    openapi: Arc<String>,
}

// ------------------------------------------------------------------------------------------------
// Errors: the one place where outcomes become statuses

/// Everything a request can end in besides success.
#[derive(Debug)]
pub enum ApiError {
    Service(ServiceError),
    Unauthorized,
    TooLarge,
    UnsupportedMediaType(String),
    BadRequest(String),
    NoSuchRoute,
    MethodNotAllowed,
    /// The body did not arrive within `server.limits.body_read_timeout_seconds` (408).
    BodyTimeout,
    /// The request ran over its time budget, `server.limits.request_timeout_seconds` (503).
    OverBudget,
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        ApiError::Service(e)
    }
}

/// Attached to every error response so [`fhir_outcomes`] can rewrite it without re-parsing.
#[derive(Clone)]
struct ProblemInfo {
    code: &'static str,
    detail: String,
    problems: Arc<Vec<Problem>>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title, detail, problems, fhir_code): (StatusCode, &str, &str, Option<String>, Vec<Problem>, &'static str) =
            match self {
                ApiError::Service(ServiceError::Malformed(d)) => (StatusCode::BAD_REQUEST, "malformed", "Malformed request", Some(d), vec![], "structure"),
                ApiError::Service(ServiceError::Invalid { title, problems }) => {
                    let n = problems.iter().filter(|p| p.severity == crate::validate::Severity::Error).count();
                    let detail = format!("{title}: {n} problem(s); see `errors`");
                    (StatusCode::UNPROCESSABLE_ENTITY, "invalid", "Unprocessable request", Some(detail), problems, "invalid")
                }
                ApiError::Service(ServiceError::Forbidden(d)) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden", Some(d), vec![], "forbidden"),
                ApiError::Service(ServiceError::NotFound) => (StatusCode::NOT_FOUND, "not-found", "Not found", None, vec![], "not-found"),
                ApiError::Service(ServiceError::Conflict(d)) => (StatusCode::CONFLICT, "conflict", "Conflict", Some(d), vec![], "conflict"),
                ApiError::Service(ServiceError::Storage(e)) => {
                    // The detail may name tables or values; it goes to the log only.
                    tracing::error!(error = %e, "storage error");
                    (StatusCode::INTERNAL_SERVER_ERROR, "storage", "Storage failure", Some("the request could not be stored; try again".into()), vec![], "exception")
                }
                ApiError::Unauthorized => (
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "Unauthorized",
                    Some("send `Authorization: Bearer <token>` with a token issued for this gateway".into()),
                    vec![],
                    "login",
                ),
                ApiError::TooLarge => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too-large",
                    "Payload too large",
                    Some(format!("the body is larger than {MAX_BODY_BYTES} bytes")),
                    vec![],
                    "too-costly",
                ),
                ApiError::UnsupportedMediaType(d) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", "Unsupported media type", Some(d), vec![], "not-supported"),
                ApiError::BadRequest(d) => (StatusCode::BAD_REQUEST, "malformed", "Malformed request", Some(d), vec![], "structure"),
                ApiError::NoSuchRoute => (StatusCode::NOT_FOUND, "no-such-route", "Not found", Some("no such endpoint; see /openapi.json".into()), vec![], "not-found"),
                ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed", Some("see /openapi.json".into()), vec![], "not-supported"),
                ApiError::BodyTimeout => (
                    StatusCode::REQUEST_TIMEOUT,
                    "body-timeout",
                    "Request timeout",
                    Some("the request body did not arrive in time; nothing was stored".into()),
                    vec![],
                    "timeout",
                ),
                ApiError::OverBudget => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "over-time-budget",
                    "Service unavailable",
                    Some("the request took longer than the gateway allows; nothing was stored unless a later GET shows it. Retry (with the same Idempotency-Key for a handover)".into()),
                    vec![],
                    "timeout",
                ),
            };
        let doc = ProblemDocument {
            kind: format!("urn:acp-gateway:problem:{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.clone(),
            errors: problems.iter().filter(|p| p.severity == crate::validate::Severity::Error).map(problem_item).collect(),
            warnings: problems.iter().filter(|p| p.severity != crate::validate::Severity::Error).map(problem_item).collect(),
        };
        let mut resp = (status, [(header::CONTENT_TYPE, PROBLEM_JSON)], serde_json::to_string(&doc).unwrap_or_default()).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body may still be on its way: the connection cannot carry another request.
            resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        resp.extensions_mut().insert(ProblemInfo { code: fhir_code, detail: detail.unwrap_or_else(|| title.to_owned()), problems: Arc::new(problems) });
        resp
    }
}

fn wants_fhir(headers: &HeaderMap) -> bool {
    [header::CONTENT_TYPE, header::ACCEPT]
        .iter()
        .any(|h| headers.get(h).and_then(|v| v.to_str().ok()).is_some_and(|v| v.to_ascii_lowercase().contains(FHIR_JSON)))
}

/// Rewrites problem documents as FHIR OperationOutcomes for FHIR clients (same status).
async fn fhir_outcomes(req: Request, next: Next) -> Response {
    let fhir = wants_fhir(req.headers());
    let resp = next.run(req).await;
    if !fhir {
        return resp;
    }
    let Some(info) = resp.extensions().get::<ProblemInfo>().cloned() else {
        return resp;
    };
    let outcome = if info.problems.is_empty() {
        json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": info.code, "diagnostics": info.detail}]})
    } else {
        crate::render::outcome::operation_outcome(&info.problems)
    };
    let (mut parts, _) = resp.into_parts();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(outcome.to_string()))
}

/// Counts every request and logs it by route template, never by concrete path: paths and queries
/// carry BSNs.
async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_else(|| "(unmatched)".into());
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    state.gateway.metrics.request(method.as_str(), &route, status);
    tracing::debug!(method = %method, route = %route, status, "request");
    resp
}

// ------------------------------------------------------------------------------------------------
// Helpers for handlers

fn json_response(status: StatusCode, body: String, fhir: bool) -> Response {
    let ct = if fhir { FHIR_JSON } else { "application/json" };
    (status, [(header::CONTENT_TYPE, ct)], body).into_response()
}

fn ok_json<T: serde::Serialize>(v: &T) -> Response {
    json_response(StatusCode::OK, serde_json::to_string(v).unwrap_or_default(), false)
}

/// The body, refused when too large (413) or not JSON (415).
fn json_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::BadRequest(format!("the body could not be read: {r}"))
        }
    })?;
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let is_json = essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"));
    if !is_json {
        return Err(ApiError::UnsupportedMediaType(format!(
            "send `Content-Type: application/json` (or `application/fhir+json`); got {:?}",
            if ct.is_empty() { "nothing" } else { ct }
        )));
    }
    Ok(body)
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let s = v.to_str().map_err(|_| ApiError::BadRequest("Idempotency-Key must be visible ASCII".into()))?.trim();
    if s.is_empty() || s.len() > 255 || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::BadRequest("Idempotency-Key is 1 to 255 visible ASCII characters".into()));
    }
    Ok(Some(s.to_owned()))
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t).map_err(|e| ApiError::BadRequest(format!("query: {}", e.body_text())))
}

// ------------------------------------------------------------------------------------------------
// Handlers

/// Hand over an ACP record.
#[utoipa::path(
    post, path = "/v1/handovers", tag = "handovers",
    request_body(content = Object, description = "`{record, patient, sender, recipients, context}`; `record` is the uniform record JSON, a FHIR JSON resource, or FHIR XML as a JSON string",
        content_type = "application/json"),
    params(("Idempotency-Key" = Option<String>, Header, description = "same key + same body → same answer; other body → 409")),
    responses(
        (status = 201, description = "accepted and stored; a resubmission with the same Idempotency-Key and body gets the stored answer again, with `Idempotent-Replayed: true`", body = HandoverView),
        (status = 400, description = "malformed JSON", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "no or unknown token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "Idempotency-Key reused for another body", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 408, description = "the body did not arrive within `server.limits.body_read_timeout_seconds`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 413, description = "body over 16 MiB", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 415, description = "not JSON", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "invalid record or envelope (a text over its length limit, `mappings/field-limits.toml`, included); every problem listed", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 503, description = "over the time budget `server.limits.request_timeout_seconds`; retry with the same Idempotency-Key", body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn post_handover(State(state): State<AppState>, Auth(caller): Auth, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let body = json_body(&headers, body)?;
    let key = idempotency_key(&headers)?;
    let out = state.gateway.submit(&caller, &body, key.as_deref()).await?;
    let status = StatusCode::from_u16(out.status).unwrap_or(StatusCode::CREATED);
    let mut resp = json_response(status, out.body, false);
    if let Some(id) = out.handover_id {
        if let Ok(v) = HeaderValue::from_str(&format!("/v1/handovers/{id}")) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
    }
    if out.replayed {
        resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(resp)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// The patient's BSN.
    patient: Option<String>,
    /// Only handovers with a route in this status.
    status: Option<String>,
    /// At most this many (1-1000, default 100).
    limit: Option<String>,
}

/// The caller's handovers, newest first.
#[utoipa::path(
    get, path = "/v1/handovers", tag = "handovers", params(ListQuery),
    responses(
        (status = 200, body = HandoverList),
        (status = 400, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn list_handovers(State(state): State<AppState>, Auth(caller): Auth, q: Result<Query<ListQuery>, QueryRejection>) -> Result<Response, ApiError> {
    let q = query(q)?;
    let list = state.gateway.handovers(&caller, q.patient.as_deref(), q.status.as_deref(), q.limit.as_deref()).await?;
    Ok(ok_json(&list))
}

/// One handover with each route's status, attempts, last error and consent decision.
#[utoipa::path(
    get, path = "/v1/handovers/{id}", tag = "handovers",
    params(("id" = String, Path, description = "the handover id")),
    responses(
        (status = 200, body = HandoverView),
        (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "no such handover, or not the caller's", body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn get_handover(State(state): State<AppState>, Auth(caller): Auth, Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(ok_json(&state.gateway.handover(&caller, &id).await?))
}

/// Operator action: retry one route (consent is checked again).
#[utoipa::path(
    post, path = "/v1/handovers/{id}/routes/{route}/retry", tag = "operator",
    params(("id" = String, Path), ("route" = String, Path)),
    responses(
        (status = 200, body = RouteView),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "nothing to retry", body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn retry_route(State(state): State<AppState>, Auth(caller): Auth, Path((id, route)): Path<(String, String)>) -> Result<Response, ApiError> {
    Ok(ok_json(&state.gateway.route_action(&caller, &id, &route, true).await?))
}

/// Operator action: cancel one route.
#[utoipa::path(
    post, path = "/v1/handovers/{id}/routes/{route}/cancel", tag = "operator",
    params(("id" = String, Path), ("route" = String, Path)),
    responses(
        (status = 200, body = RouteView),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "already delivered or cancelled", body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn cancel_route(State(state): State<AppState>, Auth(caller): Auth, Path((id, route)): Path<(String, String)>) -> Result<Response, ApiError> {
    Ok(ok_json(&state.gateway.route_action(&caller, &id, &route, false).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ReplayQuery {
    /// `true`: re-render from the stored record with the current mappings; default: the original
    /// rendered message.
    rerender: Option<bool>,
}

/// Operator action: send a delivered route again, as a new route linked to it (consent is checked again).
#[utoipa::path(
    post, path = "/v1/handovers/{id}/routes/{route}/replay", tag = "operator",
    params(("id" = String, Path), ("route" = String, Path), ReplayQuery),
    responses(
        (status = 201, description = "the new route (`replay_of` links it to the original); the outbox delivers it", body = RouteView),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "not delivered, consent does not permit it, or the original message is no longer stored", body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn replay_route(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path((id, route)): Path<(String, String)>,
    q: Result<Query<ReplayQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let view = state.gateway.replay_route(&caller, &id, &route, q.rerender.unwrap_or(false)).await?;
    Ok(json_response(StatusCode::CREATED, serde_json::to_string(&view).unwrap_or_default(), false))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct WorklistQuery {
    /// Only items created after this time (the `created_at` of the last item fetched).
    since: Option<String>,
}

/// The MDO worklist: items of the `mdo` channel addressed to the caller's organisation, oldest first (at most 100).
#[utoipa::path(
    get, path = "/v1/worklist", tag = "handovers", params(WorklistQuery),
    responses(
        (status = 200, body = WorklistView),
        (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn get_worklist(State(state): State<AppState>, Auth(caller): Auth, q: Result<Query<WorklistQuery>, QueryRejection>) -> Result<Response, ApiError> {
    let q = query(q)?;
    Ok(ok_json(&state.gateway.worklist(&caller, q.since.as_deref()).await?))
}

fn consent_response(state: &crate::service::ConsentState, headers: &HeaderMap) -> Response {
    if wants_fhir(headers) {
        json_response(StatusCode::OK, state.fhir.to_string(), true)
    } else {
        ok_json(&state.view)
    }
}

/// Record the patient's sharing consent: a FHIR Consent (scope `patient-privacy`) or `{"decision": "permit"|"deny", "renews"?: ID}`.
/// Only for an organisation with a care relation to the patient; a permit never overrides another care
/// provider's standing withdrawal (a conflict) unless it is the patient's renewed consent naming it.
#[utoipa::path(
    put, path = "/v1/patients/{bsn}/consent", tag = "consent",
    params(("bsn" = String, Path)),
    request_body(content = Object, description = "FHIR Consent with scope patient-privacy (extension urn:acp-gateway:consent:renews for a renewal), or {\"decision\": \"permit\"|\"deny\", \"renews\": ID}"),
    responses(
        (status = 200, description = "recorded; routes re-evaluated (a deny or a conflict blocks every route not yet delivered)", body = ConsentView),
        (status = 404, description = "a patient the caller's organisation has no care relation with", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn put_consent(State(state): State<AppState>, Auth(caller): Auth, Path(bsn): Path<String>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let body = json_body(&headers, body)?;
    let s = state.gateway.put_consent(&caller, &bsn, &body).await?;
    Ok(consent_response(&s, &headers))
}

/// The patient's sharing consent in force (FHIR Consent with `Accept: application/fhir+json`).
#[utoipa::path(
    get, path = "/v1/patients/{bsn}/consent", tag = "consent",
    params(("bsn" = String, Path)),
    responses(
        (status = 200, body = ConsentView),
        (status = 404, description = "nothing recorded, or a patient the caller's organisation does not know", body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn get_consent(State(state): State<AppState>, Auth(caller): Auth, Path(bsn): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    let s = state.gateway.consent(&caller, &bsn).await?;
    Ok(consent_response(&s, &headers))
}

/// Withdraw the patient's sharing consent: blocks every route not yet delivered.
#[utoipa::path(
    delete, path = "/v1/patients/{bsn}/consent", tag = "consent",
    params(("bsn" = String, Path)),
    responses(
        (status = 200, description = "withdrawal recorded", body = ConsentView),
        (status = 404, description = "a patient the caller's organisation has no care relation with", body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn delete_consent(State(state): State<AppState>, Auth(caller): Auth, Path(bsn): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    let s = state.gateway.withdraw_consent(&caller, &bsn).await?;
    Ok(consent_response(&s, &headers))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// The patient's BSN.
    patient: Option<String>,
}

/// The patient's audit entries that concern the caller's organisation (NEN 7513 fields).
#[utoipa::path(
    get, path = "/v1/audit", tag = "audit", params(AuditQuery),
    responses(
        (status = 200, body = AuditList),
        (status = 404, description = "a patient the caller's organisation does not know", body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn get_audit(State(state): State<AppState>, Auth(caller): Auth, q: Result<Query<AuditQuery>, QueryRejection>) -> Result<Response, ApiError> {
    let q = query(q)?;
    Ok(ok_json(&state.gateway.audit(&caller, q.patient.as_deref()).await?))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "alive")))]
async fn healthz() -> Response {
    ok_json(&json!({"status": "ok"}))
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "ready"), (status = 503, description = "database unreachable")))]
async fn readyz(State(state): State<AppState>) -> Response {
    if state.gateway.db.ping().await {
        ok_json(&json!({"status": "ready"}))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, [(header::CONTENT_TYPE, PROBLEM_JSON)], json!({"type": "urn:acp-gateway:problem:not-ready", "title": "Not ready", "status": 503, "detail": "the database does not answer"}).to_string()).into_response()
    }
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "metrics", content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.gateway.metrics.render(&state.gateway.db).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, description = "the OpenAPI document", content_type = "application/json")))]
async fn openapi_json(State(state): State<AppState>) -> Response {
    json_response(StatusCode::OK, state.openapi.as_str().to_owned(), false)
}

async fn no_such_route() -> ApiError {
    ApiError::NoSuchRoute
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "ACP handover gateway", description = "Hands over Advance Care Planning records between Dutch care providers (contract: interface.md)."),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// The routes and the OpenAPI document, made from the same declarations.
fn routes_and_doc() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(post_handover, list_handovers))
        .routes(routes!(get_handover))
        .routes(routes!(retry_route))
        .routes(routes!(cancel_route))
        .routes(routes!(replay_route))
        .routes(routes!(get_worklist))
        .routes(routes!(put_consent, get_consent, delete_consent))
        .routes(routes!(get_audit))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
        .split_for_parts()
}

/// The OpenAPI document of this API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes_and_doc().1
}

/// The whole application, ready to serve, with the time limits of `[server.limits]`.
pub fn app(gateway: Arc<Gateway>, mtls: bool, limits: &crate::config::ServerLimits) -> Router {
    let (routes, doc) = routes_and_doc();
    let state = AppState { gateway, mtls, openapi: Arc::new(doc.to_json().unwrap_or_default()) };
    routes
        .fallback(no_such_route)
        .method_not_allowed_fallback(method_not_allowed)
        // Inside `fhir_outcomes` and `track`: a timeout is answered and counted like any error.
        .layer(middleware::from_fn_with_state(budget::Budget::from_limits(limits), budget::enforce))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .layer(middleware::from_fn(fhir_outcomes))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Methods and paths of the document (for the test that compares it with the router).
pub fn documented_operations() -> Vec<(Method, String)> {
    let doc = openapi();
    let mut out = Vec::new();
    for (path, item) in doc.paths.paths {
        let ops = [
            (Method::GET, item.get.is_some()),
            (Method::POST, item.post.is_some()),
            (Method::PUT, item.put.is_some()),
            (Method::DELETE, item.delete.is_some()),
            (Method::PATCH, item.patch.is_some()),
        ];
        out.extend(ops.into_iter().filter(|(_, has)| *has).map(|(m, _)| (m, path.clone())));
    }
    out
}
