//! The service's configuration: an embedded default, a TOML file, and environment overrides.
//!
//! Precedence (lowest first), as zero2prod does it: the built-in defaults (loopback, SQLite in
//! `./acp-gateway-data/`, spool channels, a development client), then `--config FILE`, then
//! environment variables `ACP_GATEWAY__SECTION__KEY` (double underscores separate the levels, e.g.
//! `ACP_GATEWAY__SERVER__LISTEN=0.0.0.0:8443`, `ACP_GATEWAY__DATABASE__URL=postgres://...`). An
//! environment value is read as a TOML value when it parses as one (`8`, `true`, `["a","b"]`),
//! otherwise as a string, so URLs and paths need no quoting.
//!
//! `deploy/gateway.example.toml` documents every key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::service::model::OrgId;

/// The prefix of environment overrides.
pub const ENV_PREFIX: &str = "ACP_GATEWAY__";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the embedded database, the spool and the development token live.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub database: DatabaseConfig,
    /// API clients. When none are configured, one development client is created (see `service::startup`).
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    #[serde(default)]
    pub channels: ChannelsConfig,
    #[serde(default)]
    pub retention: RetentionConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    #[serde(default)]
    pub delivery: DeliveryConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Serve HTTPS (rustls) instead of plain HTTP.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace_seconds: u64,
    /// Time limits and the connection cap (`[server.limits]`): one client cannot hold the gateway.
    #[serde(default)]
    pub limits: ServerLimits,
}

/// What one client may take of the server (`[server.limits]`); every time in seconds, fractions allowed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerLimits {
    /// The time budget of one request once its body is read; over it the client gets `503` with
    /// `Retry-After` (a handover is stored whole or not at all, so retrying with the same
    /// Idempotency-Key is safe). Default 30.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_seconds: f64,
    /// How long reading a request body may take; a slower body gets `408`. Default 60.
    #[serde(default = "default_body_read_timeout")]
    pub body_read_timeout_seconds: f64,
    /// How long a client may take to send a request's headers, counted from when the connection
    /// waits for a request: also how long an idle HTTP/1.1 keep-alive connection stays open.
    /// Default 10.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout_seconds: f64,
    /// A connection on which nothing at all is read or written for this long is closed (HTTP/1.1
    /// and HTTP/2, including a stalled TLS handshake). Longer than the request budget. Default 120.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_seconds: f64,
    /// Most connections served at once; more wait in the listen queue until one closes. Lowered at
    /// start to stay below the file-descriptor limit (minus a reserve for the database, spool and
    /// mail connections). Default 1024.
    #[serde(default = "default_server_max_connections")]
    pub max_connections: usize,
    /// Renders (PDF, letters, FHIR) running at once, off the async workers; 0: one per CPU core.
    #[serde(default)]
    pub render_threads: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain of the server.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificates; when set, clients must present a certificate issued by one of them
    /// (mutual TLS), in addition to their bearer token.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite:PATH` or `postgres://...`; default `sqlite:<data_dir>/gateway.db`.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// SQLite only: `full` (fsync every commit; survives power loss) or `normal` (WAL default;
    /// survives a crash of the gateway, may lose the last commits on power loss).
    #[serde(default = "default_synchronous")]
    pub sqlite_synchronous: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub id: String,
    /// The organisation the client acts for: `{ ura = "..." }` or `{ agb = "..." }`, with an optional `name`.
    pub organization: OrgConfig,
    /// The role the client acts in (NEN 7513 gebruikersrol), e.g. `medisch-specialist`.
    pub role: String,
    /// Hex SHA-256 of the bearer token; the token itself is never stored.
    pub token_sha256: String,
    /// SHA-256 fingerprints (hex, colons allowed: `openssl x509 -noout -fingerprint -sha256`) of the
    /// client certificates this client connects with. When given, the token is accepted only over a
    /// connection that presented one of them, so a leaked token is useless without the matching key.
    /// Several for a certificate rollover. Needs `server.tls.client_ca`.
    #[serde(default)]
    pub certificate_sha256: Vec<String>,
    /// What the client may do; see `service::model::Scope`. Default: everything but `operator`.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgConfig {
    #[serde(default)]
    pub ura: Option<String>,
    #[serde(default)]
    pub agb: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

impl OrgConfig {
    pub fn org_id(&self) -> Result<OrgId, String> {
        match (&self.ura, &self.agb) {
            (Some(u), None) => OrgId::ura(u),
            (None, Some(a)) => OrgId::agb(a),
            _ => Err("an organisation has exactly one of `ura` or `agb`".into()),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelsConfig {
    /// Root of the local spool; default `<data_dir>/spool`. Each channel spools to `<spool_dir>/<channel>/`.
    #[serde(default)]
    pub spool_dir: Option<PathBuf>,
    /// Per-channel endpoint settings, keyed by channel name (`edifact`, `post`, `zorgdomein`, ...).
    /// A channel without an entry delivers to the spool.
    #[serde(default)]
    pub endpoints: BTreeMap<String, ChannelEndpoint>,
}

/// A sink attempt's time limit when `timeout_seconds` is not set.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 30;
/// How long a receiver is assumed to keep `Idempotency-Key`s when `key_window_seconds` is not set.
pub const DEFAULT_KEY_WINDOW_SECONDS: u64 = 86_400;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelEndpoint {
    /// `spool` (default), `https`, `smtp`, ... (the delivery worker decides which it supports).
    #[serde(default = "default_sink")]
    pub sink: String,
    /// Where to: a URL, a mailbox, a directory; meaning depends on the sink. For `https`, the URL used
    /// when the recipient has no endpoint of the channel's kind; for `smtp`, the relay as `host[:port]`
    /// when `host` is not set.
    #[serde(default)]
    pub target: Option<String>,
    // --- smtp (channels::smtp): the relay, always over STARTTLS ---
    /// SMTP relay host name; also the name its certificate must carry.
    #[serde(default)]
    pub host: Option<String>,
    /// SMTP port; default 587 (submission).
    #[serde(default)]
    pub port: Option<u16>,
    /// Envelope and header From address.
    #[serde(default)]
    pub from: Option<String>,
    /// A fixed envelope To (an Edifact mail service's intake address, for example) instead of the
    /// recipient's `endpoints.email`; `{edifact}` in it is replaced by the recipient's Edifact mailbox.
    #[serde(default)]
    pub to: Option<String>,
    /// The gateway's mail domain: the right-hand side of Message-IDs and the EHLO name.
    #[serde(default)]
    pub domain: Option<String>,
    /// SMTP AUTH user; AUTH is used only when this is set.
    #[serde(default)]
    pub username: Option<String>,
    /// SMTP AUTH password (prefer `password_env`, so the secret is not in the file).
    #[serde(default)]
    pub password: Option<String>,
    /// The environment variable holding the SMTP AUTH password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Most SMTP connections kept open for reuse; default 8.
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// S/MIME (channels::smime; smtp only): when `smime_cert`, `smime_key` and
    /// `smime_recipient_certs` are set (all three or none), every message the endpoint sends is signed
    /// with them and encrypted for the recipient's certificate, and a recipient without one is a
    /// permanent failure (never a plain send). The sender's certificate, PEM.
    #[serde(default)]
    pub smime_cert: Option<PathBuf>,
    /// The private key of `smime_cert`: RSA, PKCS#8 PEM.
    #[serde(default)]
    pub smime_key: Option<PathBuf>,
    /// A directory of recipient certificates, one PEM file per envelope To address:
    /// `<address>.pem` (e.g. `huisarts@praktijk.example.pem`), looked up at each send, so that a new or
    /// renewed certificate needs no restart.
    #[serde(default)]
    pub smime_recipient_certs: Option<PathBuf>,
    // --- smtp and https: TLS and time limits ---
    /// PEM file of the CA certificates to trust instead of the built-in (webpki) roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Seconds one attempt may take (SMTP: connecting, STARTTLS, AUTH and sending; HTTPS: the
    /// request) before it is given up as a transient failure; fractions allowed. Default 30. Must be
    /// below `[delivery] lease_seconds`, else a slow attempt's route is claimed and sent again while
    /// the first is still on its way.
    #[serde(default)]
    pub timeout_seconds: Option<f64>,
    /// HTTPS: how long the receivers behind this endpoint keep an `Idempotency-Key` they have seen
    /// (their deduplication window); default 86,400 (24 h). Delivery is at least once: a route is sent
    /// again under the same key after a crash (once its lease expires) and after a transient failure,
    /// always within [`DeliveryConfig::resend_horizon_seconds`] of its first attempt; the gateway
    /// refuses to start when that horizon does not fit in this window.
    #[serde(default)]
    pub key_window_seconds: Option<u64>,
    // --- https (channels::https) ---
    /// PEM client certificate chain for mutual TLS (with `client_key`).
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert` (PKCS#8, PKCS#1 or SEC1).
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// Bearer token sent as `Authorization: Bearer ...` (prefer `bearer_token_env`).
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// The environment variable holding the bearer token.
    #[serde(default)]
    pub bearer_token_env: Option<String>,
    /// The hosts this endpoint may send to: names (`fhir.praktijk.example`), `*.domain` for any
    /// subdomain, or IP addresses. A recipient's URL on another host is refused (the route goes
    /// `dead`), so that a handover cannot send patient data, the client certificate or the bearer
    /// token to a host the operator did not choose. Default: the host of `target` only.
    #[serde(default)]
    pub allowed_hosts: Option<Vec<String>>,
}

impl Default for ChannelEndpoint {
    /// The spool, and every transport setting unset.
    fn default() -> Self {
        ChannelEndpoint {
            sink: default_sink(),
            target: None,
            host: None,
            port: None,
            from: None,
            to: None,
            domain: None,
            username: None,
            password: None,
            password_env: None,
            max_connections: None,
            smime_cert: None,
            smime_key: None,
            smime_recipient_certs: None,
            ca_file: None,
            timeout_seconds: None,
            key_window_seconds: None,
            client_cert: None,
            client_key: None,
            bearer_token: None,
            bearer_token_env: None,
            allowed_hosts: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days to keep received payloads and rendered messages after their routes are final.
    #[serde(default = "default_message_days")]
    pub message_days: u32,
    /// Years to keep the audit trail (NEN 7513 asks at least five).
    #[serde(default = "default_audit_years")]
    pub audit_years: u32,
    /// Minutes between retention passes in `serve`; 0 turns the pruner off.
    #[serde(default = "default_retention_interval")]
    pub interval_minutes: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// NEN 7513 "identificatie van de bron" (AuditSourceID) written into every entry.
    #[serde(default = "default_source_id")]
    pub source_id: String,
    /// The HMAC key of the hash chain (at least 32 bytes; `openssl rand -hex 32`), kept outside the
    /// database. Configured: it must exist and be readable, or nothing starts. Not configured:
    /// `<data_dir>/audit-key`, which `serve` creates (mode 0600) the first time.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The append-only file of signed checkpoints of the chain; default `<data_dir>/audit-anchors.log`.
    #[serde(default)]
    pub anchor_file: Option<PathBuf>,
    /// `serve` writes a checkpoint once this many entries were appended since the last one ...
    #[serde(default = "default_anchor_every_entries")]
    pub anchor_every_entries: u64,
    /// ... or once this many seconds passed with new entries; and one at start and at shutdown.
    #[serde(default = "default_anchor_every_seconds")]
    pub anchor_every_seconds: u64,
}

/// The outbox worker (`crate::outbox`): how many, how often, and the retry policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Worker tasks `serve` runs; 0 runs none (an API-only node, with `acp-gateway worker` elsewhere).
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Routes one worker claims per database round trip.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// How often an idle worker looks for due routes (new handovers also wake it at once).
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// How long a worker lets due routes gather before a round that would not fill its batch: a
    /// round costs two transactions whatever its size, so under a stream of handovers a short wait
    /// gives fewer, fuller rounds. A delivery is later by at most this much. 0: no waiting.
    #[serde(default = "default_gather_ms")]
    pub gather_ms: u64,
    /// How long a claim is held; a route still `delivering` after this was lost by a crashed worker
    /// and is claimed again. Must exceed the slowest sink's own timeout.
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: u64,
    /// The retry policy of every channel without its own entry below (see [`RetryPolicy`]).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_base_delay_ms")]
    pub base_delay_ms: u64,
    #[serde(default = "default_max_delay_ms")]
    pub max_delay_ms: u64,
    /// Per-channel retry policy, keyed by channel name (`fhir`, `secure-mail`, ...); unset keys fall
    /// back to the section's own.
    #[serde(default)]
    pub channels: BTreeMap<String, RetryOverride>,
}

/// Exponential backoff with full jitter: the delay before attempt n+1 is uniformly random in
/// `[0, min(max_delay, base_delay * 2^(n-1))]`; after `max_attempts` failed attempts the route is `dead`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryOverride {
    #[serde(default)]
    pub max_attempts: Option<u32>,
    #[serde(default)]
    pub base_delay_ms: Option<u64>,
    #[serde(default)]
    pub max_delay_ms: Option<u64>,
}

impl DeliveryConfig {
    /// The longest time after a route's first attempt that it can be sent again under the same
    /// delivery key without an operator: every attempt ends within a lease (a crashed worker's route is
    /// claimed again when its lease expires) and waits at most `max_delay_ms` before the next.
    pub fn resend_horizon_seconds(&self, channel: &str) -> u64 {
        let p = self.policy(channel);
        u64::from(p.max_attempts).saturating_mul(self.lease_seconds.saturating_add(p.max_delay_ms.div_ceil(1000)))
    }

    /// The retry policy of one channel.
    pub fn policy(&self, channel: &str) -> RetryPolicy {
        let base = RetryPolicy { max_attempts: self.max_attempts, base_delay_ms: self.base_delay_ms, max_delay_ms: self.max_delay_ms };
        match self.channels.get(channel) {
            None => base,
            Some(o) => RetryPolicy {
                max_attempts: o.max_attempts.unwrap_or(base.max_attempts),
                base_delay_ms: o.base_delay_ms.unwrap_or(base.base_delay_ms),
                max_delay_ms: o.max_delay_ms.unwrap_or(base.max_delay_ms),
            },
        }
    }
}

fn default_workers() -> usize {
    2
}
fn default_batch() -> usize {
    16
}
fn default_gather_ms() -> u64 {
    20
}
fn default_poll_interval_ms() -> u64 {
    500
}
fn default_lease_seconds() -> u64 {
    120
}
fn default_max_attempts() -> u32 {
    12
}
fn default_base_delay_ms() -> u64 {
    2_000
}
fn default_max_delay_ms() -> u64 {
    3_600_000
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            workers: default_workers(),
            batch: default_batch(),
            poll_interval_ms: default_poll_interval_ms(),
            gather_ms: default_gather_ms(),
            lease_seconds: default_lease_seconds(),
            max_attempts: default_max_attempts(),
            base_delay_ms: default_base_delay_ms(),
            max_delay_ms: default_max_delay_ms(),
            channels: BTreeMap::new(),
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./acp-gateway-data")
}
fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_shutdown_grace() -> u64 {
    30
}
fn default_max_connections() -> u32 {
    8
}
fn default_synchronous() -> String {
    "full".into()
}
fn default_sink() -> String {
    "spool".into()
}
fn default_message_days() -> u32 {
    90
}
fn default_retention_interval() -> u64 {
    60
}
fn default_audit_years() -> u32 {
    5
}
fn default_source_id() -> String {
    "acp-gateway".into()
}
fn default_anchor_every_entries() -> u64 {
    1000
}
fn default_anchor_every_seconds() -> u64 {
    60
}
pub fn default_scopes() -> Vec<String> {
    ["handovers:write", "handovers:read", "consent:write", "consent:read", "audit:read"]
        .map(String::from)
        .to_vec()
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig { listen: default_listen(), tls: None, shutdown_grace_seconds: default_shutdown_grace(), limits: ServerLimits::default() }
    }
}
impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            request_timeout_seconds: default_request_timeout(),
            body_read_timeout_seconds: default_body_read_timeout(),
            header_read_timeout_seconds: default_header_read_timeout(),
            idle_timeout_seconds: default_idle_timeout(),
            max_connections: default_server_max_connections(),
            render_threads: 0,
        }
    }
}
impl ServerLimits {
    /// A setting in seconds as a duration; a negative, zero or non-finite value is refused at load.
    pub fn duration(seconds: f64) -> std::time::Duration {
        std::time::Duration::from_secs_f64(seconds)
    }

    fn check(&self) -> Result<(), String> {
        for (name, v) in [
            ("request_timeout_seconds", self.request_timeout_seconds),
            ("body_read_timeout_seconds", self.body_read_timeout_seconds),
            ("header_read_timeout_seconds", self.header_read_timeout_seconds),
            ("idle_timeout_seconds", self.idle_timeout_seconds),
        ] {
            // A zero or absent limit is no limit: exactly what these settings exist to prevent.
            if !(v.is_finite() && v > 0.0 && v < 1e9) {
                return Err(format!("server.limits.{name} must be a positive number of seconds, got {v}"));
            }
        }
        if self.max_connections == 0 {
            return Err("server.limits.max_connections must be at least 1".into());
        }
        Ok(())
    }
}
fn default_request_timeout() -> f64 {
    30.0
}
fn default_body_read_timeout() -> f64 {
    60.0
}
fn default_header_read_timeout() -> f64 {
    10.0
}
fn default_idle_timeout() -> f64 {
    120.0
}
fn default_server_max_connections() -> usize {
    1024
}
impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig { url: None, max_connections: default_max_connections(), sqlite_synchronous: default_synchronous() }
    }
}
impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            message_days: default_message_days(),
            audit_years: default_audit_years(),
            interval_minutes: default_retention_interval(),
        }
    }
}
impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            source_id: default_source_id(),
            key_file: None,
            anchor_file: None,
            anchor_every_entries: default_anchor_every_entries(),
            anchor_every_seconds: default_anchor_every_seconds(),
        }
    }
}
impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: default_data_dir(),
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            clients: Vec::new(),
            channels: ChannelsConfig::default(),
            retention: RetentionConfig::default(),
            audit: AuditConfig::default(),
            delivery: DeliveryConfig::default(),
        }
    }
}

impl Config {
    /// Loads the configuration: defaults, then `file` (if any), then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Config, String> {
        Self::load_with_env(file, std::env::vars())
    }

    /// As [`Config::load`], with the environment given (so tests need not touch the process's).
    pub fn load_with_env(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Config, String> {
        let mut root = match file {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
                text.parse::<toml::Table>().map_err(|e| format!("{}: {e}", p.display()))?
            }
            None => toml::Table::new(),
        };
        let mut overrides: Vec<(String, String)> = env.into_iter().filter(|(k, _)| k.starts_with(ENV_PREFIX)).collect();
        // Sorted, so that the outcome does not depend on the environment's order.
        overrides.sort();
        for (key, raw) in overrides {
            let path: Vec<String> = key[ENV_PREFIX.len()..].split("__").map(str::to_ascii_lowercase).collect();
            if path.iter().any(String::is_empty) {
                return Err(format!("{key}: empty section in the variable name"));
            }
            set_path(&mut root, &path, env_value(&raw)).map_err(|e| format!("{key}: {e}"))?;
        }
        let cfg: Config = toml::Value::Table(root).try_into().map_err(|e: toml::de::Error| e.to_string())?;
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<(), String> {
        for c in &self.clients {
            c.organization.org_id().map_err(|e| format!("client {}: {e}", c.id))?;
            if c.token_sha256.len() != 64 || hex::decode(&c.token_sha256).is_err() {
                return Err(format!("client {}: token_sha256 must be 64 hex digits (the SHA-256 of the token)", c.id));
            }
            for s in &c.scopes {
                if crate::service::model::Scope::parse(s).is_none() {
                    return Err(format!("client {}: unknown scope {s:?}", c.id));
                }
            }
        }
        for ch in self.delivery.channels.keys().chain(self.channels.endpoints.keys()) {
            if ch.parse::<crate::routing::Channel>().is_err() {
                return Err(format!("unknown channel {ch:?} in the configuration"));
            }
        }
        if self.delivery.batch == 0 || self.delivery.lease_seconds == 0 {
            return Err("delivery.batch and delivery.lease_seconds must be at least 1".into());
        }
        if self.audit.anchor_every_entries == 0 || self.audit.anchor_every_seconds == 0 {
            return Err("audit.anchor_every_entries and audit.anchor_every_seconds must be at least 1".into());
        }
        for (channel, ep) in &self.channels.endpoints {
            if !matches!(ep.sink.as_str(), "https" | "smtp") {
                continue;
            }
            let timeout = ep.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS as f64);
            if timeout >= self.delivery.lease_seconds as f64 {
                return Err(format!(
                    "channels.endpoints.{channel}: timeout_seconds ({timeout}) must be below delivery.lease_seconds ({}), \
                     else a slow attempt is claimed and sent again while it is still on its way",
                    self.delivery.lease_seconds
                ));
            }
            let window = ep.key_window_seconds.unwrap_or(DEFAULT_KEY_WINDOW_SECONDS);
            let horizon = self.delivery.resend_horizon_seconds(channel);
            if ep.sink == "https" && horizon > window {
                return Err(format!(
                    "channels.endpoints.{channel}: a route may be sent again under the same Idempotency-Key up to {horizon} s \
                     after its first attempt (max_attempts x (lease_seconds + max_delay)), longer than the receivers' key window \
                     key_window_seconds = {window}: lower the retries or the lease, or confirm a longer window"
                ));
            }
        }
        if !matches!(self.database.sqlite_synchronous.as_str(), "full" | "normal") {
            return Err("database.sqlite_synchronous must be `full` or `normal`".into());
        }
        self.server.limits.check()?;
        Ok(())
    }

    /// The database URL, with the embedded default.
    pub fn database_url(&self) -> String {
        self.database.url.clone().unwrap_or_else(|| format!("sqlite:{}", self.data_dir.join("gateway.db").display()))
    }

    pub fn spool_dir(&self) -> PathBuf {
        self.channels.spool_dir.clone().unwrap_or_else(|| self.data_dir.join("spool"))
    }

    pub fn dev_token_path(&self) -> PathBuf {
        self.data_dir.join("dev-token")
    }

    /// The audit chain's key file: the configured one, else `<data_dir>/audit-key`.
    pub fn audit_key_path(&self) -> PathBuf {
        self.audit.key_file.clone().unwrap_or_else(|| self.data_dir.join("audit-key"))
    }

    /// The audit anchor log: the configured one, else `<data_dir>/audit-anchors.log`.
    pub fn audit_anchor_path(&self) -> PathBuf {
        self.audit.anchor_file.clone().unwrap_or_else(|| self.data_dir.join("audit-anchors.log"))
    }
}

fn env_value(raw: &str) -> toml::Value {
    match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| toml::Value::String(raw.to_owned())),
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("no key")?;
    let mut t = table;
    for p in parents {
        let entry = t.entry(p.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = entry.as_table_mut().ok_or_else(|| format!("`{p}` is not a section"))?;
    }
    t.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_loopback_and_embedded_sqlite() {
        let c = Config::load_with_env(None, Vec::new()).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:8080");
        assert_eq!(c.database_url(), "sqlite:./acp-gateway-data/gateway.db");
        assert_eq!(c.spool_dir(), PathBuf::from("./acp-gateway-data/spool"));
    }

    #[test]
    fn environment_overrides_nested_keys() {
        let env = vec![
            ("ACP_GATEWAY__SERVER__LISTEN".to_owned(), "127.0.0.1:9999".to_owned()),
            ("ACP_GATEWAY__DATABASE__URL".to_owned(), "postgres://postgres@127.0.0.1/test".to_owned()),
            ("ACP_GATEWAY__DATABASE__MAX_CONNECTIONS".to_owned(), "3".to_owned()),
            ("UNRELATED".to_owned(), "x".to_owned()),
        ];
        let c = Config::load_with_env(None, env).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:9999");
        assert_eq!(c.database.url.as_deref(), Some("postgres://postgres@127.0.0.1/test"));
        assert_eq!(c.database.max_connections, 3);
    }

    #[test]
    fn the_example_config_loads() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/gateway.example.toml");
        let c = Config::load_with_env(Some(&p), Vec::new()).unwrap_or_else(|e| panic!("{e}"));
        assert!(!c.clients.is_empty());
    }

    #[test]
    fn the_lease_and_the_receivers_key_window_must_agree() {
        let load = |toml: &str| {
            let dir = std::env::temp_dir().join(format!("acp-gateway-config-{}", crate::service::clock::new_id()));
            std::fs::create_dir_all(&dir).unwrap();
            let p = dir.join("gateway.toml");
            std::fs::write(&p, toml).unwrap();
            let c = Config::load_with_env(Some(&p), Vec::new());
            let _ = std::fs::remove_dir_all(&dir);
            c
        };
        let https = "[channels.endpoints.fhir]\nsink = \"https\"\ntarget = \"https://fhir.example/fhir\"\n";
        // The defaults agree: 12 x (120 s + 3,600 s) fits in a day.
        let c = load(https).unwrap();
        assert_eq!(c.delivery.resend_horizon_seconds("fhir"), 12 * (120 + 3_600));
        assert!(c.delivery.resend_horizon_seconds("fhir") <= DEFAULT_KEY_WINDOW_SECONDS);
        // A receiver that forgets keys after an hour cannot take the default retries.
        let short = load(&format!("{https}key_window_seconds = 3600\n")).unwrap_err();
        assert!(short.contains("key_window_seconds") && short.contains("Idempotency-Key"), "{short}");
        // ... unless the retries fit in its window.
        let fits = format!("{https}key_window_seconds = 3600\n[delivery]\nlease_seconds = 60\nmax_attempts = 5\nmax_delay_ms = 600000\n");
        assert_eq!(load(&fits).unwrap().channels.endpoints["fhir"].key_window_seconds, Some(3600));
        // A sink time limit as long as the lease would let a slow attempt be sent twice.
        let slow = load(&format!("{https}timeout_seconds = 120\n")).unwrap_err();
        assert!(slow.contains("lease_seconds"), "{slow}");
    }

    #[test]
    fn bad_keys_and_hashes_are_refused() {
        assert!(Config::load_with_env(None, vec![("ACP_GATEWAY__NOPE".into(), "1".into())]).is_err());
        let env = vec![
            ("ACP_GATEWAY__CLIENTS".to_owned(), r#"[{id="a", organization={ura="12345678"}, role="huisarts", token_sha256="00"}]"#.to_owned()),
        ];
        assert!(Config::load_with_env(None, env).unwrap_err().contains("token_sha256"));
    }
}
