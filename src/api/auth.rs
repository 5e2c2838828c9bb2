//! Who is calling: bearer tokens, checked against the configured clients' SHA-256 hashes.
//!
//! The token is hashed and compared with every client's hash in constant time (no early exit, no
//! hash-map lookup keyed by the secret), so response times say nothing about how close a guess was.
//! A client configured with certificate fingerprints is accepted only over a TLS connection that
//! presented one of those certificates: the token alone, stolen, opens nothing.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum_server::tls::TlsInfo;
use sha2::{Digest, Sha256};

use super::{ApiError, AppState};
use crate::service::model::{Caller, Client};

/// The authenticated caller, as a handler argument.
pub struct Auth(pub Caller);

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The client a token belongs to, if any. Looks at every client whatever the outcome.
pub fn authenticate<'a>(clients: &'a [Client], token: &str) -> Option<&'a Client> {
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let mut found = None;
    for c in clients {
        if constant_time_eq(&digest, &c.token_sha256) && found.is_none() {
            found = Some(c);
        }
    }
    found
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
        let token = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let client = authenticate(&state.gateway.clients, token).ok_or(ApiError::Unauthorized)?;
        if !client.certificates.is_empty() {
            let presented = parts
                .extensions
                .get::<Arc<TlsInfo>>()
                .and_then(|info| info.peer_certificates.first())
                .map(|der| <[u8; 32]>::from(Sha256::digest(der)));
            if !presented.is_some_and(|p| client.certificates.contains(&p)) {
                tracing::warn!(client = %client.id, "token presented over a connection without the client's certificate");
                return Err(ApiError::Unauthorized);
            }
        }
        let access_point = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ci| ci.0.ip().to_string());
        Ok(Auth(Caller {
            client_id: client.id.clone(),
            org: client.org.clone(),
            role: client.role.clone(),
            scopes: client.scopes.clone(),
            access_point,
            authentication: if state.mtls { "bearer-token+mtls" } else { "bearer-token" },
        }))
    }
}
