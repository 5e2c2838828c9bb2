//! Starting and stopping the service: database, clients, spool, listener (HTTP or HTTPS with
//! optional client certificates), and graceful shutdown.
//!
//! [`Server::start`] is what `acp-gateway serve` runs and what the tests start in-process on
//! `127.0.0.1:0`; [`run`] adds the signal handling: on SIGTERM or SIGINT the listener stops accepting,
//! in-flight requests get `server.shutdown_grace_seconds` to finish, and the process exits 0.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::{Config, ServerLimits, TlsConfig};
use crate::outbox::{Outbox, Workers};
use crate::service::model::{Client, OrgId, Scope};
use crate::routing::Channel;
use crate::service::anchors::Anchorer;
use crate::service::listener::{self, CappedListener, PeerAddr};
use crate::service::retention::Pruner;
use crate::service::{clock, cpu, Gateway};
use crate::store::{Db, DbOptions};

/// The development organisation's URA: a placeholder no real organisation has.
pub const DEV_ORG_URA: &str = "00000001";

/// A running gateway.
pub struct Server {
    pub addr: SocketAddr,
    /// The development client's token, when the development client is in use.
    pub dev_token: Option<String>,
    pub gateway: Arc<Gateway>,
    pub tls: bool,
    /// The delivery workers running in this process (none with `[delivery] workers = 0`).
    workers: Option<Workers>,
    /// The retention pruner (none with `[retention] interval_minutes = 0`).
    pruner: Option<Pruner>,
    /// The audit anchor writer.
    anchorer: Option<Anchorer>,
    grace: Duration,
    /// The connection cap in force (`server.limits.max_connections`, lowered to fit the descriptor limit).
    pub max_connections: usize,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), String>>,
}

/// Opens the configured database with the audit key. `create` (serve, worker): creates and migrates
/// the database, creates the default audit key when none is configured, checks that the key is the
/// chain's and keys a chain written before keying. Without `create` (the `audit` commands) nothing is
/// created and a missing default key is left to the command to report.
pub async fn open_db(cfg: &Config, create: bool) -> Result<Db, String> {
    let url = cfg.database_url();
    let opts = DbOptions {
        max_connections: cfg.database.max_connections,
        sqlite_synchronous: cfg.database.sqlite_synchronous.clone(),
        create,
        audit_key: audit_key(cfg, create)?.map(Arc::new),
    };
    let db = Db::connect(&url, &opts).await.map_err(|e| format!("{e} ({})", crate::store::redact(&url)))?;
    if create {
        db.migrate().await.map_err(|e| e.to_string())?;
        crate::audit::check_key(&db).await?;
        crate::audit::ensure_keyed(&db, &clock::now(), &cfg.audit.source_id).await.map_err(|e| e.to_string())?;
    }
    Ok(db)
}

/// The audit key: a configured `[audit] key_file` must load (missing or unreadable refuses the
/// start); else `<data_dir>/audit-key`, created by `create` callers when it does not exist yet.
pub fn audit_key(cfg: &Config, create: bool) -> Result<Option<crate::audit::AuditKey>, String> {
    use crate::audit::AuditKey;
    let path = cfg.audit_key_path();
    if cfg.audit.key_file.is_some() {
        return AuditKey::load(&path).map(Some);
    }
    if !create {
        return if path.exists() { AuditKey::load(&path).map(Some) } else { Ok(None) };
    }
    let (key, created) = AuditKey::load_or_create(&path)?;
    if created {
        tracing::warn!(path = %path.display(), key_id = key.id(), "no [audit] key_file configured: created a new audit chain key; keep it outside the database and its backups");
        eprintln!(
            "acp-gateway: created the audit chain key {} (key id {}); configure [audit] key_file to keep it elsewhere",
            path.display(),
            key.id()
        );
    }
    Ok(Some(key))
}

/// The configured clients, or the development client (with its token) when none are configured.
fn clients(cfg: &Config) -> Result<(Vec<Client>, Option<String>), String> {
    let mtls = cfg.server.tls.as_ref().is_some_and(|t| t.client_ca.is_some());
    if !cfg.clients.is_empty() {
        let mut out = Vec::new();
        for c in &cfg.clients {
            let mut hash = [0u8; 32];
            hex::decode_to_slice(&c.token_sha256, &mut hash).map_err(|e| format!("client {}: {e}", c.id))?;
            let certificates = c
                .certificate_sha256
                .iter()
                .map(|f| fingerprint(f).map_err(|e| format!("client {}: certificate_sha256 {f:?}: {e}", c.id)))
                .collect::<Result<Vec<_>, _>>()?;
            if !certificates.is_empty() && !mtls {
                // A pin that can never be checked would look like protection and be none.
                return Err(format!("client {}: certificate_sha256 needs client certificates (server.tls.client_ca)", c.id));
            }
            if certificates.is_empty() && mtls {
                tracing::warn!(client = %c.id, "client has no certificate_sha256: any certificate of the client CA will do with its token");
            }
            out.push(Client {
                id: c.id.clone(),
                org: c.organization.org_id()?,
                org_name: c.organization.name.clone(),
                role: c.role.clone(),
                token_sha256: hash,
                scopes: c.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
                certificates,
            });
        }
        return Ok((out, None));
    }
    let token = dev_token(&cfg.dev_token_path())?;
    tracing::warn!(path = %cfg.dev_token_path().display(), "no clients configured: using the development client");
    let client = Client {
        id: "development".into(),
        org: OrgId::ura(DEV_ORG_URA)?,
        org_name: Some("Development organisation".into()),
        role: "medisch-specialist".into(),
        token_sha256: Sha256::digest(token.as_bytes()).into(),
        scopes: Scope::ALL.to_vec(),
        certificates: Vec::new(),
    };
    Ok((vec![client], Some(token)))
}

/// A SHA-256 fingerprint as hex, with or without colons, any case.
fn fingerprint(text: &str) -> Result<[u8; 32], String> {
    let hex: String = text.chars().filter(|c| *c != ':').collect();
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex.trim(), &mut out).map_err(|e| format!("not a SHA-256 fingerprint ({e})"))?;
    Ok(out)
}

/// The development token: the one in the file if there is one (so scripts keep working across
/// restarts), else a new random one written there with mode 0600. The gateway keeps only its hash.
fn dev_token(path: &Path) -> Result<String, String> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let t = existing.trim();
        if t.len() >= 32 {
            return Ok(t.to_owned());
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let token = clock::new_secret();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    writeln!(f, "{token}").map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(token)
}

fn tls_config(tls: &TlsConfig) -> Result<rustls::ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?;
    let builder = match &tls.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{}: {e}", ca.display()))? {
                roots.add(cert.map_err(|e| format!("{}: {e}", ca.display()))?).map_err(|e| format!("{}: {e}", ca.display()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("tls client_ca: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", tls.cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| format!("{}: {e}", tls.key.display()))?;
    let mut cfg = builder.with_single_cert(certs, key).map_err(|e| format!("tls: {e}"))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

impl Server {
    /// Opens everything and starts listening; returns once the listener is bound.
    pub async fn start(cfg: &Config) -> Result<Server, String> {
        let db = open_db(cfg, true).await?;
        let (clients, dev_token) = clients(cfg)?;
        let anchorer = Anchorer::start(
            db.clone(),
            cfg.audit_anchor_path(),
            cfg.audit.anchor_every_entries,
            cfg.audit.anchor_every_seconds,
        )
        .await?;
        let spool = cfg.spool_dir();
        for ch in Channel::ALL {
            let dir = spool.join(ch.key());
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let mut gateway = Gateway::new(db, clients, cfg.audit.source_id.clone());
        gateway.cpu = cpu::CpuPool::new(cfg.server.limits.render_threads);
        let gateway = Arc::new(gateway);
        let outbox = Arc::new(outbox(cfg, &gateway)?);
        let workers = (cfg.delivery.workers > 0).then(|| outbox.start(cfg.delivery.workers));
        let pruner = (cfg.retention.interval_minutes > 0).then(|| {
            let interval = Duration::from_secs(cfg.retention.interval_minutes.saturating_mul(60));
            Pruner::start(gateway.db.clone(), cfg.retention.message_days, interval, cfg.audit.source_id.clone())
        });
        let tls = cfg.server.tls.as_ref().map(tls_config).transpose()?;
        let mtls = cfg.server.tls.as_ref().is_some_and(|t| t.client_ca.is_some());
        let limits = &cfg.server.limits;
        let app = crate::api::app(gateway.clone(), mtls, limits).into_make_service_with_connect_info::<SocketAddr>();
        let grace = Duration::from_secs(cfg.server.shutdown_grace_seconds);
        let (tx, rx) = oneshot::channel::<()>();

        let listener = std::net::TcpListener::bind(&cfg.server.listen).map_err(|e| format!("listen {}: {e}", cfg.server.listen))?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
        let max_connections = listener::connection_cap(limits.max_connections, listener::fd_limit());
        if max_connections < limits.max_connections {
            tracing::warn!(configured = limits.max_connections, max_connections, "connection cap lowered to fit the file-descriptor limit");
        }
        let listener = CappedListener::new(listener, max_connections, ServerLimits::duration(limits.idle_timeout_seconds));
        let is_tls = tls.is_some();
        // Plain HTTP and HTTPS are served the same way (axum-server), so both get the same limits.
        let handle = axum_server::Handle::<PeerAddr>::new();
        let server = bounded(axum_server::Server::<PeerAddr>::from_listener(listener), limits).handle(handle.clone());
        let header_timeout = ServerLimits::duration(limits.header_read_timeout_seconds);
        let task = tokio::spawn(async move {
            tokio::spawn(async move {
                let _ = rx.await;
                // Stops accepting; in-flight requests get the grace period.
                handle.graceful_shutdown(Some(grace));
            });
            let served = match tls {
                None => server.serve(app).await,
                Some(tls) => {
                    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls)))
                        .handshake_timeout(header_timeout);
                    server.acceptor(acceptor).serve(app).await
                }
            };
            served.map_err(|e| e.to_string())
        });
        tracing::info!(%addr, tls = is_tls, mtls, database = ?gateway.db.backend, "acp-gateway listening");
        tracing::info!(max_connections, "connection limits in force");
        Ok(Server {
            addr,
            dev_token,
            gateway,
            tls: is_tls,
            workers,
            pruner,
            anchorer: Some(anchorer),
            grace,
            max_connections,
            shutdown: Some(tx),
            task,
        })
    }

    /// Writes an audit anchor for the chain's current head now (when it has new entries); returns
    /// the anchored entry. The periodic writer does this by itself; tests and tools ask for it.
    pub async fn anchor_audit(&self) -> Result<Option<i64>, String> {
        match &self.anchorer {
            Some(a) => a.anchor_now().await,
            None => Ok(None),
        }
    }

    /// The base URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr)
    }

    /// Stops accepting, lets in-flight requests finish, closes the database.
    pub async fn stop(mut self) -> Result<(), String> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let r = (&mut self.task).await.map_err(|e| e.to_string());
        // Workers finish their round (the outcomes of attempts in flight are recorded), then stop.
        if let Some(w) = self.workers.take() {
            w.stop(self.grace).await;
        }
        if let Some(p) = self.pruner.take() {
            p.stop().await;
        }
        // The last anchor covers every entry written until here.
        if let Some(a) = self.anchorer.take() {
            a.stop().await;
        }
        let r = r?;
        self.gateway.db.close().await;
        r
    }
}

/// The per-connection limits of `[server.limits]` on an axum-server server: the first request's
/// headers (hyper leaves its protocol detection untimed) and every later request's headers, which
/// for HTTP/1.1 is also how long a keep-alive connection may sit idle between requests.
fn bounded(mut server: axum_server::Server<PeerAddr>, limits: &ServerLimits) -> axum_server::Server<PeerAddr> {
    let header = ServerLimits::duration(limits.header_read_timeout_seconds);
    server.http_builder().http1().header_read_timeout(header).keep_alive(true);
    // HTTP/2 (over TLS): pings find dead peers; the idle timeout of the stream closes silent ones.
    server.http_builder().http2().keep_alive_interval(Some(header)).keep_alive_timeout(header);
    server.first_request_timeout(header)
}

/// The outbox of a gateway: its sinks from `[channels]`, its policy from `[delivery]`, sharing the
/// gateway's database, metrics and wake-up signal.
pub fn outbox(cfg: &Config, gateway: &Gateway) -> Result<Outbox, String> {
    let sinks = crate::channels::Registry::from_config(cfg, &gateway.db)?;
    Ok(Outbox {
        db: gateway.db.clone(),
        metrics: gateway.metrics.clone(),
        sinks,
        config: cfg.delivery.clone(),
        source_id: cfg.audit.source_id.clone(),
        wake: gateway.wake.clone(),
        node: format!("{}-{}", std::process::id(), &clock::new_id()[..8]),
    })
}

/// Runs until SIGTERM or SIGINT, then drains and returns.
pub async fn run(cfg: Config) -> Result<(), String> {
    let server = Server::start(&cfg).await?;
    if server.dev_token.is_some() {
        eprintln!(
            "acp-gateway: listening on {} with the development client; its token is in {}",
            server.url(),
            cfg.dev_token_path().display()
        );
    }
    shutdown_signal().await;
    tracing::info!("shutdown requested: draining");
    server.stop().await?;
    tracing::info!("stopped");
    Ok(())
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
