//! Starting the service: the real binary with its embedded defaults (development client, SQLite,
//! spool) and graceful SIGTERM; HTTPS with client certificates; and the OpenAPI document, which must
//! list exactly the routes the router serves.

mod support_service;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use support_service::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("acp-gateway-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Polls until the server answers (bounded: a start that never answers fails the test).
async fn wait_ready(http: &reqwest::Client, url: &str) {
    for _ in 0..200 {
        if http.get(url).send().await.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the server at {url} did not become ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_embedded_defaults_then_sigterm_exits_0() {
    let dir = temp_dir("serve");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_acp-gateway"))
        .args(["serve", "--log-format", "json"])
        .current_dir(&dir)
        // No config file: the embedded defaults, with the port moved off 8080 by an override.
        .env("ACP_GATEWAY__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    wait_ready(&http, &format!("{base}/readyz")).await;

    let token_file = dir.join("acp-gateway-data/dev-token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the development token is private");
    }
    let token = std::fs::read_to_string(&token_file).unwrap().trim().to_owned();
    assert!(dir.join("acp-gateway-data/gateway.db").exists());
    for ch in ["edifact", "post", "zorgdomein", "secure-mail"] {
        assert!(dir.join("acp-gateway-data/spool").join(ch).is_dir(), "{ch}");
    }
    let mut body = discharge(record(BSN, Some("agreed")));
    body["sender"].as_object_mut().unwrap().remove("organization");
    let r = http.post(format!("{base}/v1/handovers")).bearer_auth(&token).json(&body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let r = http.get(format!("{base}/v1/handovers")).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(0), "drains and exits 0 on SIGTERM");

    // The logs are JSON lines and never carry the patient's BSN or the token.
    let mut lines = Vec::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.starts_with('{') {
            let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
            assert!(v.get("level").is_some(), "{line}");
            lines.push(line);
        }
    }
    let all = lines.join("\n");
    assert!(all.contains("handover accepted"), "{all}");
    assert!(!all.contains(BSN) && !all.contains(&token), "{all}");

    // The same directory, without config: the audit trail verifies.
    let out = Command::new(env!("CARGO_BIN_EXE_acp-gateway")).args(["audit", "verify"]).current_dir(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_client_certificates() {
    use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
    let dir = temp_dir("tls");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca = Issuer::new(ca_params, ca_key);

    let mut server_params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate().unwrap();
    let server_cert = server_params.signed_by(&server_key, &ca).unwrap();
    let client_cert = |name: &str| {
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        (cert, key)
    };
    // Two certificates of the same CA: the EPD's own, and another system's.
    let (epd_cert, epd_key) = client_cert("hospital-epd");
    let (other_cert, other_key) = client_cert("other-system");
    let epd_fingerprint = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(epd_cert.der());
        d.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
    };
    let hash = |t: &str| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(t.as_bytes()))
    };

    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), server_cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
    let toml = format!(
        "data_dir = \"{d}\"\n[server]\nlisten = \"127.0.0.1:0\"\n[server.tls]\ncert = \"{d}/server.pem\"\nkey = \"{d}/server.key\"\nclient_ca = \"{d}/ca.pem\"\n\
         [[clients]]\nid = \"epd-pinned\"\norganization = {{ ura = \"11111111\" }}\nrole = \"medisch-specialist\"\ntoken_sha256 = \"{pinned}\"\ncertificate_sha256 = [\"{epd_fingerprint}\"]\n\
         [[clients]]\nid = \"epd-unpinned\"\norganization = {{ ura = \"11111111\" }}\nrole = \"medisch-specialist\"\ntoken_sha256 = \"{unpinned}\"\n",
        d = dir.display(),
        pinned = hash("pinned-token-0123456789abcdef0123456789"),
        unpinned = hash("unpinned-token-0123456789abcdef012345678"),
    );
    std::fs::write(dir.join("gateway.toml"), toml).unwrap();
    let cfg = acp_gateway::config::Config::load_with_env(Some(&dir.join("gateway.toml")), Vec::new()).unwrap();
    let server = acp_gateway::service::startup::Server::start(&cfg).await.unwrap();
    let url = format!("{}/v1/handovers", server.url());
    assert!(url.starts_with("https://127.0.0.1:"));

    let root = reqwest::Certificate::from_pem(ca_cert.pem().as_bytes()).unwrap();
    let with = |cert: &rcgen::Certificate, key: &KeyPair| {
        let identity = reqwest::Identity::from_pem(format!("{}{}", cert.pem(), key.serialize_pem()).as_bytes()).unwrap();
        reqwest::Client::builder().use_rustls_tls().add_root_certificate(root.clone()).identity(identity).build().unwrap()
    };
    let (epd, other) = (with(&epd_cert, &epd_key), with(&other_cert, &other_key));
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(status(epd.get(&url).bearer_auth("pinned-token-0123456789abcdef0123456789").send().await.unwrap()), 200);
    // The pinned client's token over another (CA-valid) certificate: refused.
    assert_eq!(status(other.get(&url).bearer_auth("pinned-token-0123456789abcdef0123456789").send().await.unwrap()), 401);
    // A client without pins: any certificate of the CA, with its token.
    assert_eq!(status(other.get(&url).bearer_auth("unpinned-token-0123456789abcdef012345678").send().await.unwrap()), 200);
    // A certificate is not enough without a token.
    assert_eq!(status(epd.get(&url).send().await.unwrap()), 401);
    // Without a client certificate the handshake is refused.
    let without = reqwest::Client::builder().use_rustls_tls().add_root_certificate(root).build().unwrap();
    assert!(without.get(&url).bearer_auth("pinned-token-0123456789abcdef0123456789").send().await.is_err());
    server.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The router and `/openapi.json` are made from the same declarations; this checks both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_exactly_the_routes_served() {
    let h = Harness::sqlite().await;
    let (s, _, doc) = h.send(h.http.get(h.url("/openapi.json"))).await;
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let documented = acp_gateway::api::documented_operations();
    let mut from_doc = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in item.as_object().unwrap().keys().filter(|k| ["get", "post", "put", "delete", "patch"].contains(&k.as_str())) {
            from_doc.push((m.to_uppercase(), path.clone()));
        }
    }
    from_doc.sort();
    let mut listed: Vec<(String, String)> = documented.iter().map(|(m, p)| (m.to_string(), p.clone())).collect();
    listed.sort();
    assert_eq!(from_doc, listed);

    // The contract's endpoints (interface.md) are all there.
    for (m, p) in [
        ("POST", "/v1/handovers"),
        ("GET", "/v1/handovers"),
        ("GET", "/v1/handovers/{id}"),
        ("POST", "/v1/handovers/{id}/routes/{route}/retry"),
        ("POST", "/v1/handovers/{id}/routes/{route}/cancel"),
        ("POST", "/v1/handovers/{id}/routes/{route}/replay"),
        ("GET", "/v1/worklist"),
        ("PUT", "/v1/patients/{bsn}/consent"),
        ("GET", "/v1/patients/{bsn}/consent"),
        ("DELETE", "/v1/patients/{bsn}/consent"),
        ("GET", "/v1/audit"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
    ] {
        assert!(listed.contains(&(m.to_owned(), p.to_owned())), "{m} {p} documented");
    }

    // Document → router: every documented operation is served (not the router's fallbacks).
    for (m, p) in &listed {
        let path = p.replace("{id}", "00000000-0000-4000-8000-000000000000").replace("{route}", "r").replace("{bsn}", BSN);
        let method = reqwest::Method::from_bytes(m.as_bytes()).unwrap();
        let (s, _, b) = h.send(h.http.request(method, h.url(&path)).bearer_auth(HOSPITAL).json(&json!({}))).await;
        assert_ne!(s, 405, "{m} {p}");
        assert_ne!(b["type"], "urn:acp-gateway:problem:no-such-route", "{m} {p} is documented but not served");
    }
    // Router → document: the api declares routes only through `routes!` (which documents them), so
    // no route can be served without being in the document.
    let api = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/api/mod.rs")).unwrap();
    for forbidden in [".route(", ".nest(", ".merge(", "Router::new", ".route_service("] {
        assert!(!api.contains(forbidden), "src/api/mod.rs adds a route outside `routes!`: {forbidden}");
    }
    let (s, _, b) = h.send(h.http.get(h.url("/v1/undocumented"))).await;
    assert_eq!((s, b["type"].as_str()), (404, Some("urn:acp-gateway:problem:no-such-route")));
    h.finish().await;
}

/// A certificate pin that no TLS client authentication could ever check is a configuration error,
/// not a silent no-op.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_pins_without_client_certificates_refuse_to_start() {
    let dir = temp_dir("pin-no-mtls");
    let toml = format!(
        "data_dir = \"{d}\"\n[server]\nlisten = \"127.0.0.1:0\"\n\
         [[clients]]\nid = \"epd\"\norganization = {{ ura = \"11111111\" }}\nrole = \"medisch-specialist\"\n\
         token_sha256 = \"{z}\"\ncertificate_sha256 = [\"{z}\"]\n",
        d = dir.display(),
        z = "00".repeat(32),
    );
    std::fs::write(dir.join("gateway.toml"), toml).unwrap();
    let cfg = acp_gateway::config::Config::load_with_env(Some(&dir.join("gateway.toml")), Vec::new()).unwrap();
    let err = acp_gateway::service::startup::Server::start(&cfg).await.err().expect("refuses to start");
    assert!(err.contains("certificate_sha256 needs client certificates"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
