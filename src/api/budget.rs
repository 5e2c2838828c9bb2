//! Time limits of one request: its body must arrive within `body_read_timeout_seconds` (else `408`),
//! and its handling must end within `request_timeout_seconds` (else `503` with `Retry-After`).
//!
//! The body is read here, whole, before the handler runs, so the two are separate: a slow uplink
//! gets the body timeout, a slow gateway the time budget, and the budget never eats into the time a
//! large body needs to arrive. A handler that runs out of time is dropped at its next `.await`;
//! everything it writes is in one database transaction, so a dropped handover is not stored at all
//! (the transaction rolls back), and rendering that was already running finishes on its blocking
//! thread and is thrown away (`service::cpu`).

use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, MAX_BODY_BYTES};
use crate::config::ServerLimits;

#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub body_read: Duration,
    pub request: Duration,
}

impl Budget {
    pub fn from_limits(l: &ServerLimits) -> Budget {
        Budget { body_read: ServerLimits::duration(l.body_read_timeout_seconds), request: ServerLimits::duration(l.request_timeout_seconds) }
    }
}

/// Why a body could not be read.
enum BodyError {
    TooLarge,
    Broken(String),
}

/// Reads the whole body, refusing it as soon as it passes `MAX_BODY_BYTES`.
async fn read_body(body: Body) -> Result<Vec<u8>, BodyError> {
    let mut body = std::pin::pin!(body);
    let mut out = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let frame = frame.map_err(|e| BodyError::Broken(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > MAX_BODY_BYTES {
                return Err(BodyError::TooLarge);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// The middleware: body under its timeout, then the handler under the budget.
pub async fn enforce(State(budget): State<Budget>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match tokio::time::timeout(budget.body_read, read_body(body)).await {
        Err(_) => {
            // By route template: concrete paths carry BSNs.
            let route = parts.extensions.get::<axum::extract::MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_default();
            tracing::info!(%route, "request body timed out");
            return ApiError::BodyTimeout.into_response();
        }
        Ok(Err(BodyError::TooLarge)) => return ApiError::TooLarge.into_response(),
        Ok(Err(BodyError::Broken(e))) => return ApiError::BadRequest(format!("the body could not be read: {e}")).into_response(),
        Ok(Ok(b)) => b,
    };
    let req = Request::from_parts(parts, Body::from(bytes));
    match tokio::time::timeout(budget.request, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::warn!("request over its time budget: abandoned");
            ApiError::OverBudget.into_response()
        }
    }
}
