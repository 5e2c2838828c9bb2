//! Real receivers for the delivery tests, on 127.0.0.1 only: a test PKI (rcgen), an HTTPS receiver
//! (axum + rustls through axum-server) that can be told to fail, refuse, hang or demand a client
//! certificate, and an SMTP server (Python `aiosmtpd`, `tests/smtp_receiver.py`) with or without
//! STARTTLS.
//!
//! The receivers record what they took, keyed by the delivery key (HTTPS `Idempotency-Key`, SMTP
//! Message-ID), so that a test counts deliveries at the receiver instead of trusting the sender's
//! word. `aiosmtpd` missing fails the SMTP tests under CI and skips them loudly elsewhere, as the
//! other tests that need an outside checker do.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};

pub fn temp_dir(what: &str) -> PathBuf {
    let mut b = [0u8; 6];
    rand::rng().fill_bytes(&mut b);
    let d = std::env::temp_dir().join(format!("acp-delivery-{what}-{}", hex::encode(b)));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// An SMTP endpoint of the gateway sending to a receiver on 127.0.0.1:`port` over STARTTLS, trusting
/// the test CA.
pub fn smtp_endpoint(pki: &Pki, port: u16) -> acp_gateway::config::ChannelEndpoint {
    acp_gateway::config::ChannelEndpoint {
        sink: "smtp".into(),
        host: Some("127.0.0.1".into()),
        port: Some(port),
        from: Some("gateway@gw.test".into()),
        domain: Some("gw.test".into()),
        ca_file: Some(pki.ca.clone()),
        timeout_seconds: Some(10.0),
        ..acp_gateway::config::ChannelEndpoint::default()
    }
}

/// A test CA with a server certificate for 127.0.0.1 and a client certificate, and a second,
/// unrelated CA (for "the wrong roots"), all as PEM files in one directory.
pub struct Pki {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub other_ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn new_ca() -> (rcgen::Certificate, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert, Issuer::new(params, key))
}

impl Pki {
    pub fn new() -> Pki {
        let dir = temp_dir("pki");
        let (ca_cert, ca) = new_ca();
        let (other_cert, _) = new_ca();
        let mut server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate().unwrap();
        let server_cert = server.signed_by(&server_key, &ca).unwrap();
        let mut client = CertificateParams::new(vec!["acp-gateway.test".to_owned()]).unwrap();
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_key = KeyPair::generate().unwrap();
        let client_cert = client.signed_by(&client_key, &ca).unwrap();
        let write = |name: &str, text: String| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        Pki {
            ca: write("ca.pem", ca_cert.pem()),
            other_ca: write("other-ca.pem", other_cert.pem()),
            server_cert: write("server.pem", server_cert.pem()),
            server_key: write("server.key", server_key.serialize_pem()),
            client_cert: write("client.pem", client_cert.pem()),
            client_key: write("client.key", client_key.serialize_pem()),
            dir,
        }
    }

    fn server_config(&self, require_client_cert: bool) -> rustls::ServerConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().unwrap();
        let builder = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(&self.ca).unwrap() {
                roots.add(c.unwrap()).unwrap();
            }
            builder.with_client_cert_verifier(
                rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap(),
            )
        } else {
            builder.with_no_client_auth()
        };
        let certs = CertificateDer::pem_file_iter(&self.server_cert).unwrap().collect::<Result<Vec<_>, _>>().unwrap();
        let key = PrivateKeyDer::from_pem_file(&self.server_key).unwrap();
        let mut cfg = builder.with_single_cert(certs, key).unwrap();
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        cfg
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One request the HTTPS receiver answered 2xx.
#[derive(Debug, Clone)]
pub struct HttpDelivery {
    pub path: String,
    pub idempotency_key: Option<String>,
    pub request_id: Option<String>,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    pub body: Vec<u8>,
}

/// How the HTTPS receiver answers the next requests.
#[derive(Default)]
struct Behaviour {
    /// Answer this many requests with 503 first.
    fail_next: u32,
    /// Answer every request with this status and OperationOutcome.
    reject: Option<(u16, Value)>,
    /// Never answer.
    hang: bool,
}

#[derive(Default)]
struct HttpState {
    behaviour: Behaviour,
    /// Every request that reached the handler, answered or not.
    attempts: u32,
    deliveries: Vec<HttpDelivery>,
}

/// An HTTPS receiver on 127.0.0.1 with the test PKI's server certificate.
pub struct HttpsReceiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<HttpState>>,
    handle: axum_server::Handle<SocketAddr>,
    require_client_cert: bool,
}

impl HttpsReceiver {
    /// Starts on a free port; with `require_client_cert`, only clients with a certificate of the test
    /// CA get through the handshake.
    pub async fn start(pki: &Pki, require_client_cert: bool) -> HttpsReceiver {
        Self::start_at(pki, require_client_cert, "127.0.0.1:0".parse().unwrap(), Arc::default()).await
    }

    async fn start_at(pki: &Pki, require_client_cert: bool, addr: SocketAddr, state: Arc<Mutex<HttpState>>) -> HttpsReceiver {
        let listener = std::net::TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(handle).with_state(state.clone());
        let tls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(pki.server_config(require_client_cert)));
        let handle = axum_server::Handle::<SocketAddr>::new();
        let server = axum_server::from_tcp_rustls(listener, tls).unwrap().handle(handle.clone());
        tokio::spawn(async move {
            let _ = server.serve(app.into_make_service()).await;
        });
        HttpsReceiver { addr, state, handle, require_client_cert }
    }

    /// Stops listening (the port refuses connections); what was received is kept.
    pub async fn stop(&self) {
        self.handle.shutdown();
        // Wait until the listener is really gone, so that "down" is down.
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(self.addr).await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Starts again on the same port, with the same records (after [`HttpsReceiver::stop`]).
    pub async fn restart(&self, pki: &Pki) -> HttpsReceiver {
        Self::start_at(pki, self.require_client_cert, self.addr, self.state.clone()).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    pub fn fail_next(&self, n: u32) {
        self.state.lock().unwrap().behaviour.fail_next = n;
    }

    /// From now on, answer every request with `status` and an OperationOutcome saying `text`.
    pub fn reject(&self, status: u16, text: &str) {
        let oo = json!({"resourceType": "OperationOutcome", "issue": [{
            "severity": "error", "code": "invalid", "diagnostics": text, "expression": ["Bundle.entry[0].resource"]
        }]});
        self.state.lock().unwrap().behaviour.reject = Some((status, oo));
    }

    pub fn hang(&self, on: bool) {
        self.state.lock().unwrap().behaviour.hang = on;
    }

    pub fn attempts(&self) -> u32 {
        self.state.lock().unwrap().attempts
    }

    pub fn deliveries(&self) -> Vec<HttpDelivery> {
        self.state.lock().unwrap().deliveries.clone()
    }

    /// Deliveries with this Idempotency-Key.
    pub fn count(&self, key: &str) -> usize {
        self.state.lock().unwrap().deliveries.iter().filter(|d| d.idempotency_key.as_deref() == Some(key)).count()
    }
}

async fn handle(State(state): State<Arc<Mutex<HttpState>>>, uri: axum::http::Uri, headers: HeaderMap, body: Bytes) -> Response {
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let answer = {
        let mut s = state.lock().unwrap();
        s.attempts += 1;
        if s.behaviour.hang {
            None
        } else if s.behaviour.fail_next > 0 {
            s.behaviour.fail_next -= 1;
            Some((StatusCode::SERVICE_UNAVAILABLE, "busy, try again").into_response())
        } else if let Some((status, oo)) = &s.behaviour.reject {
            let status = StatusCode::from_u16(*status).unwrap();
            Some((status, [("content-type", "application/fhir+json")], oo.to_string()).into_response())
        } else {
            let n = s.deliveries.len() + 1;
            s.deliveries.push(HttpDelivery {
                path: uri.path().to_owned(),
                idempotency_key: h("idempotency-key"),
                request_id: h("x-request-id"),
                content_type: h("content-type"),
                authorization: h("authorization"),
                body: body.to_vec(),
            });
            let location = format!("{}/received/{n}", uri.path().trim_end_matches('/'));
            Some((StatusCode::CREATED, [("location", location)], "{\"resourceType\":\"OperationOutcome\",\"issue\":[]}").into_response())
        }
    };
    match answer {
        Some(r) => r,
        None => std::future::pending().await,
    }
}

/// How the SMTP receiver is started.
#[derive(Debug, Clone, Default)]
pub struct SmtpMode {
    /// Offer STARTTLS (and require it) with the test PKI's server certificate.
    pub starttls: bool,
    /// Require SMTP AUTH with these credentials.
    pub auth: Option<(String, String)>,
    /// Answer the first N messages with this reply instead of 250.
    pub fail_first: Option<(u32, String)>,
    /// Never answer DATA.
    pub hang: bool,
}

/// The Python `aiosmtpd` server of `tests/smtp_receiver.py`, as a child process.
pub struct SmtpReceiver {
    pub port: u16,
    pub dir: PathBuf,
    child: Child,
}

/// Whether python3 has aiosmtpd; `false` after a loud SKIPPED line outside CI, a panic under CI.
pub fn aiosmtpd_or_skip(test: &str) -> bool {
    let ok = Command::new("python3").args(["-c", "import aiosmtpd"]).output().is_ok_and(|o| o.status.success());
    if !ok {
        let msg = format!("{test}: aiosmtpd is not installed for python3 (python3 -m pip install aiosmtpd); the SMTP receiver cannot run");
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("\n*** SKIPPED {msg} ***\n");
    }
    ok
}

impl SmtpReceiver {
    pub fn start(pki: &Pki, mode: &SmtpMode) -> SmtpReceiver {
        let dir = temp_dir("smtp");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_receiver.py");
        let mut cmd = Command::new("python3");
        cmd.arg(&script).arg("--dir").arg(&dir);
        if mode.starttls {
            cmd.arg("--tls").arg(&pki.server_cert).arg(&pki.server_key);
        }
        if let Some((u, p)) = &mode.auth {
            cmd.arg("--auth").arg(format!("{u}:{p}"));
        }
        if let Some((n, reply)) = &mode.fail_first {
            cmd.arg("--fail-first").arg(n.to_string()).arg("--fail-reply").arg(reply);
        }
        if mode.hang {
            cmd.arg("--hang");
        }
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("python3 starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the SMTP receiver did not start: {line:?}"));
        SmtpReceiver { port, dir, child }
    }

    /// Every DATA the receiver answered, in order (accepted, duplicate, or refused by `fail_first`).
    pub fn log(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.dir.join("received.jsonl")).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// The messages accepted and kept (duplicates and refusals left out).
    pub fn messages(&self) -> Vec<Value> {
        self.log().into_iter().filter(|r| r.get("refused").is_none() && r["duplicate"] == false).collect()
    }

    /// Accepted messages with this Message-ID, duplicates included: what a receiver without
    /// deduplication would have filed.
    pub fn count_message_id(&self, message_id: &str) -> usize {
        self.log().iter().filter(|r| r["message_id"] == message_id).count()
    }
}

impl Drop for SmtpReceiver {
    fn drop(&mut self) {
        // Closing stdin ends the script; kill it in case it hangs, then reap it.
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The decoded payload of a part recorded by the SMTP receiver.
pub fn part_bytes(part: &Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(part["data_b64"].as_str().unwrap()).unwrap()
}
