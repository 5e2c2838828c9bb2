//! The service's own small domain types: organisations, API clients and their scopes, route
//! statuses. The ACP record itself is `crate::record`; these only say who acts and where a route is.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::record::{Agb, Ura};

/// A care organisation, by URA (UZI-register) or AGB code. Written `ura:12345678` / `agb:01234567`
/// in the database and the audit trail, so that both kinds compare as one string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrgId(String);

impl OrgId {
    pub fn ura(raw: &str) -> Result<OrgId, String> {
        Ura::parse(raw).map(|u| OrgId(format!("ura:{}", u.as_str()))).map_err(|e| e.to_string())
    }

    pub fn agb(raw: &str) -> Result<OrgId, String> {
        Agb::parse(raw).map(|a| OrgId(format!("agb:{}", a.as_str()))).map_err(|e| e.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `ura` or `agb`.
    pub fn kind(&self) -> &str {
        self.0.split_once(':').map_or("", |(k, _)| k)
    }

    /// The bare 8-digit code.
    pub fn code(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, v)| v)
    }

    /// The FHIR NamingSystem of the code (for AuditEvent and Consent identifiers).
    pub fn fhir_system(&self) -> &'static str {
        match self.kind() {
            "ura" => "http://fhir.nl/fhir/NamingSystem/ura",
            _ => "http://fhir.nl/fhir/NamingSystem/agb-z",
        }
    }
}

impl TryFrom<String> for OrgId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        match s.split_once(':') {
            Some(("ura", v)) => OrgId::ura(v),
            Some(("agb", v)) => OrgId::agb(v),
            _ => Err(format!("not an organisation id (ura:NNNNNNNN or agb:NNNNNNNN): {s:?}")),
        }
    }
}

impl From<OrgId> for String {
    fn from(o: OrgId) -> String {
        o.0
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a client may do. Checked by the api layer per endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    HandoversWrite,
    HandoversRead,
    ConsentWrite,
    ConsentRead,
    AuditRead,
    /// Route retry and cancel.
    Operator,
}

impl Scope {
    pub const ALL: [Scope; 6] =
        [Scope::HandoversWrite, Scope::HandoversRead, Scope::ConsentWrite, Scope::ConsentRead, Scope::AuditRead, Scope::Operator];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::HandoversWrite => "handovers:write",
            Scope::HandoversRead => "handovers:read",
            Scope::ConsentWrite => "consent:write",
            Scope::ConsentRead => "consent:read",
            Scope::AuditRead => "audit:read",
            Scope::Operator => "operator",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// An API client as configured: the token is known only by its SHA-256.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub org: OrgId,
    pub org_name: Option<String>,
    pub role: String,
    pub token_sha256: [u8; 32],
    pub scopes: Vec<Scope>,
    /// Fingerprints of the client certificates the client must connect with (empty: any certificate
    /// the configured CA issued, or none without mTLS).
    pub certificates: Vec<[u8; 32]>,
}

/// Who is calling: the authenticated client, and where from (NEN 7513 "toegangspunt").
#[derive(Debug, Clone)]
pub struct Caller {
    pub client_id: String,
    pub org: OrgId,
    pub role: String,
    pub scopes: Vec<Scope>,
    pub access_point: Option<String>,
    /// How the caller was authenticated (NEN 7513 autorisatieprotocol), e.g. `bearer-token` or
    /// `bearer-token+mtls`.
    pub authentication: &'static str,
}

impl Caller {
    pub fn has(&self, s: Scope) -> bool {
        self.scopes.contains(&s)
    }
}

/// A route's status (interface.md "Route statuses").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RouteStatus {
    Pending,
    Delivering,
    Delivered,
    Retrying,
    Dead,
    BlockedConsent,
    Cancelled,
}

impl RouteStatus {
    pub const ALL: [RouteStatus; 7] = [
        RouteStatus::Pending,
        RouteStatus::Delivering,
        RouteStatus::Delivered,
        RouteStatus::Retrying,
        RouteStatus::Dead,
        RouteStatus::BlockedConsent,
        RouteStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RouteStatus::Pending => "pending",
            RouteStatus::Delivering => "delivering",
            RouteStatus::Delivered => "delivered",
            RouteStatus::Retrying => "retrying",
            RouteStatus::Dead => "dead",
            RouteStatus::BlockedConsent => "blocked-consent",
            RouteStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<RouteStatus> {
        RouteStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Statuses a consent withdrawal blocks: everything not delivered and not already stopped.
    pub const WITHDRAWABLE: [RouteStatus; 4] =
        [RouteStatus::Pending, RouteStatus::Delivering, RouteStatus::Retrying, RouteStatus::Dead];
}
