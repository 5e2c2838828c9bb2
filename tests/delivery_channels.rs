//! The SMTP and HTTPS sinks against real receivers on loopback (issue 6, channels).
//!
//! Sink level: each test calls a sink directly, the way the outbox worker does, against a real server
//! (`support_receivers`: aiosmtpd with STARTTLS and a test CA, an axum + rustls HTTPS receiver), and
//! then asks the receiver what it got. What is proved: mail goes only over STARTTLS with a verified
//! certificate, arrives intact and carries a Message-ID from the delivery key (so the receiver drops
//! the copy a retry sends); HTTPS answers are sorted into transient and permanent as the outbox needs
//! them, a hanging receiver costs a time-out and not a stuck worker, and mutual TLS works.
//!
//! End to end: a real gateway (`support_service`) with delivery workers and its `fhir` and
//! `secure-mail` channels pointed at these receivers, so the outbox's retry policy meets real
//! transports: a receiver down and then up gets the route exactly once; one that keeps failing makes
//! it `dead` after the channel's maximum with one state change; a mail server without STARTTLS
//! never receives it and the route says why.

mod support_receivers;
mod support_service;

use acp_gateway::channels::https::HttpsSink;
use acp_gateway::channels::smtp::{SmtpSink, NEUTRAL_SUBJECT};
use acp_gateway::channels::{Failure, Outgoing, Sink};
use acp_gateway::config::ChannelEndpoint;
use acp_gateway::routing::Channel;
use serde_json::{json, Value};
use support_receivers::{aiosmtpd_or_skip, part_bytes, smtp_endpoint, HttpsReceiver, Pki, SmtpMode, SmtpReceiver};

const EDIFACT: &str = "UNB+UNOA:1+500000101+500000201+260831:0930+2601'\r\nUNH+2601+MEDVRI:1'\r\n\
PID+1941:03:09+V+Bakker::::G.++BSN999990019'\r\nTXT:1+Niet reanimeren.'\r\nUNT+4+2601'\r\nUNZ+1+2601'\r\n";
const FHIR: &str = r#"{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:0","request":{"method":"PUT","url":"Patient/0"},"resource":{"resourceType":"Patient","id":"0"}}]}"#;

fn recipient() -> Value {
    json!({
        "role": "huisarts",
        "name": "Huisartsenpraktijk Test",
        "organization": {"agb": "01234567"},
        "endpoints": {"email": "huisarts@praktijk.test", "edifact": "500000201", "fhir": "https://127.0.0.1:1/unused"}
    })
}

fn outgoing<'a>(channel: Channel, recipient: &'a Value, content_type: &'a str, body: &'a [u8], key: &'a str) -> Outgoing<'a> {
    Outgoing { handover_id: "handover-1", route_id: key, channel, recipient, content_type, body, delivery_key: key }
}

fn header<'a>(msg: &'a Value, name: &str) -> Option<&'a str> {
    msg["headers"].as_array().unwrap().iter().find(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name)).map(|h| h[1].as_str().unwrap())
}

fn permanent(r: Result<acp_gateway::channels::Receipt, Failure>) -> String {
    match r {
        Err(Failure::Permanent(m)) => m,
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

fn transient(r: Result<acp_gateway::channels::Receipt, Failure>) -> String {
    match r {
        Err(Failure::Transient(m)) => m,
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

/// A loopback port with nothing listening on it.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    drop(l);
    p
}

// ---------------------------------------------------------------- SMTP

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_over_starttls_delivers_the_body_intact_with_a_message_id_from_the_delivery_key() {
    if !aiosmtpd_or_skip("smtp_over_starttls_delivers") {
        return;
    }
    let pki = Pki::new();
    let rx = SmtpReceiver::start(&pki, &SmtpMode { starttls: true, ..SmtpMode::default() });
    // Edifact through a mail relay: the fixed relay address with the recipient's mailbox in it.
    let mut ep = smtp_endpoint(&pki, rx.port);
    ep.to = Some("{edifact}@edifact-relay.test".into());
    let sink = SmtpSink::from_endpoint("edifact", &ep).unwrap();
    let r = recipient();
    let key = "route-7f3a9c";
    let msg = outgoing(Channel::Edifact, &r, "application/edifact", EDIFACT.as_bytes(), key);
    let receipt = sink.deliver(&msg).await.unwrap_or_else(|f| panic!("{f:?}"));
    assert!(receipt.detail.contains("250"), "{}", receipt.detail);

    let got = rx.messages();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m["tls"], true, "the message came over STARTTLS");
    assert_eq!(m["message_id"], "<route-7f3a9c@gw.test>");
    assert_eq!(m["mail_from"], "gateway@gw.test");
    assert_eq!(m["rcpt_tos"], json!(["500000201@edifact-relay.test"]));
    assert_eq!(header(m, "Subject"), Some(NEUTRAL_SUBJECT));
    // No header carries patient data (the name, the birth date, the BSN are in the body only).
    for h in m["headers"].as_array().unwrap() {
        let v = h[1].as_str().unwrap();
        for secret in ["Bakker", "999990019", "1941"] {
            assert!(!v.contains(secret), "header {h} leaks {secret}");
        }
    }
    let attachment = m["parts"].as_array().unwrap().iter().find(|p| p["content_type"] == "application/edifact").expect("the attachment");
    assert_eq!(attachment["disposition"], "attachment");
    assert_eq!(attachment["filename"], "route-7f3a9c.edi");
    assert_eq!(part_bytes(attachment), EDIFACT.as_bytes(), "the interchange arrives byte for byte");

    // A retry of the same delivery (the gateway did not hear the 250) carries the same Message-ID,
    // so the receiving side keeps one.
    sink.deliver(&msg).await.unwrap();
    assert_eq!(rx.count_message_id("<route-7f3a9c@gw.test>"), 2);
    assert_eq!(rx.messages().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_sends_a_rendered_mime_message_as_it_is_with_the_transports_message_id() {
    if !aiosmtpd_or_skip("smtp_sends_a_rendered_mime_message_as_it_is_with_the_transports_message_id") {
        return;
    }
    let pki = Pki::new();
    let rx = SmtpReceiver::start(&pki, &SmtpMode { starttls: true, ..SmtpMode::default() });
    let sink = SmtpSink::from_endpoint("secure-mail", &smtp_endpoint(&pki, rx.port)).unwrap();
    let r = recipient();
    // With its own Message-ID, a line that starts with a dot (SMTP dot-stuffing), CRLF throughout.
    let mime = "From: gateway@gw.test\r\nTo: huisarts@praktijk.test\r\nSubject: Overdracht\r\n\
Message-ID: <renderer-made@gw.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
Beste collega,\r\n.\r\n..twee punten\r\nGroet\r\n";
    sink.deliver(&outgoing(Channel::SecureMail, &r, "message/rfc822", mime.as_bytes(), "route-mime-1")).await.unwrap();
    // Bare LF line ends and no Message-ID: SMTP's CRLF, and a Message-ID from the delivery key.
    let lf = "From: gateway@gw.test\nTo: huisarts@praktijk.test\nSubject: Overdracht\n\nregel 1\n.regel 2\n";
    sink.deliver(&outgoing(Channel::SecureMail, &r, "message/rfc822", lf.as_bytes(), "route-mime-2")).await.unwrap();

    let got = rx.messages();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["rcpt_tos"], json!(["huisarts@praktijk.test"]));
    let file = |m: &Value| std::fs::read(rx.dir.join(m["file"].as_str().unwrap())).unwrap();
    let expected = format!("Message-ID: <route-mime-1@gw.test>\r\n{}", mime.replace("Message-ID: <renderer-made@gw.test>\r\n", ""));
    assert_eq!(file(&got[0]), expected.as_bytes(), "the rendered message arrives unchanged but for the transport's Message-ID");
    assert_eq!(got[0]["message_id"], "<route-mime-1@gw.test>");
    assert_eq!(
        file(&got[1]),
        b"Message-ID: <route-mime-2@gw.test>\r\nFrom: gateway@gw.test\r\nTo: huisarts@praktijk.test\r\nSubject: Overdracht\r\n\r\nregel 1\r\n.regel 2\r\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_without_starttls_is_a_permanent_failure_and_nothing_is_sent() {
    if !aiosmtpd_or_skip("smtp_without_starttls") {
        return;
    }
    let pki = Pki::new();
    let rx = SmtpReceiver::start(&pki, &SmtpMode::default());
    let sink = SmtpSink::from_endpoint("secure-mail", &smtp_endpoint(&pki, rx.port)).unwrap();
    let r = recipient();
    let why = permanent(sink.deliver(&outgoing(Channel::SecureMail, &r, "text/plain; charset=utf-8", b"brief", "route-plain")).await);
    assert!(why.contains("STARTTLS") && why.contains("plain text"), "{why}");
    assert!(rx.log().is_empty(), "the plain-text server received nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_with_a_certificate_from_another_ca_is_a_permanent_failure() {
    if !aiosmtpd_or_skip("smtp_with_a_certificate_from_another_ca") {
        return;
    }
    let pki = Pki::new();
    let rx = SmtpReceiver::start(&pki, &SmtpMode { starttls: true, ..SmtpMode::default() });
    let mut ep = smtp_endpoint(&pki, rx.port);
    ep.ca_file = Some(pki.other_ca.clone());
    let sink = SmtpSink::from_endpoint("secure-mail", &ep).unwrap();
    let r = recipient();
    let why = permanent(sink.deliver(&outgoing(Channel::SecureMail, &r, "text/plain", b"brief", "route-ca")).await);
    assert!(why.contains("certificate"), "{why}");
    assert!(rx.log().is_empty());
    // The default roots (webpki) do not know the test CA either.
    ep.ca_file = None;
    let sink = SmtpSink::from_endpoint("secure-mail", &ep).unwrap();
    permanent(sink.deliver(&outgoing(Channel::SecureMail, &r, "text/plain", b"brief", "route-ca")).await);
    assert!(rx.log().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_auth_is_used_when_configured() {
    if !aiosmtpd_or_skip("smtp_auth_is_used_when_configured") {
        return;
    }
    let pki = Pki::new();
    let mode = SmtpMode { starttls: true, auth: Some(("gateway".into(), "s3cret".into())), ..SmtpMode::default() };
    let rx = SmtpReceiver::start(&pki, &mode);
    let r = recipient();
    let msg = outgoing(Channel::SecureMail, &r, "text/plain", b"brief", "route-auth");

    let mut ep = smtp_endpoint(&pki, rx.port);
    ep.username = Some("gateway".into());
    ep.password_env = Some("ACP_TEST_SMTP_PASSWORD_WRONG_UNSET".into());
    assert!(SmtpSink::from_endpoint("secure-mail", &ep).is_err_and(|e| e.contains("ACP_TEST_SMTP_PASSWORD_WRONG_UNSET")));
    ep.password_env = None;
    ep.password = Some("wrong".into());
    let why = permanent(SmtpSink::from_endpoint("secure-mail", &ep).unwrap().deliver(&msg).await);
    assert!(why.contains("535"), "{why}");
    ep.password = Some("s3cret".into());
    SmtpSink::from_endpoint("secure-mail", &ep).unwrap().deliver(&msg).await.unwrap();
    let got = rx.messages();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["auth_user"], "gateway");
    assert_eq!(got[0]["tls"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_4xx_is_transient_and_5xx_permanent() {
    if !aiosmtpd_or_skip("smtp_4xx_is_transient_and_5xx_permanent") {
        return;
    }
    let pki = Pki::new();
    let r = recipient();
    let msg = outgoing(Channel::SecureMail, &r, "text/plain", b"brief", "route-codes");

    let mode = SmtpMode { starttls: true, fail_first: Some((1, "451 4.3.0 Mailbox busy".into())), ..SmtpMode::default() };
    let rx = SmtpReceiver::start(&pki, &mode);
    let sink = SmtpSink::from_endpoint("secure-mail", &smtp_endpoint(&pki, rx.port)).unwrap();
    let why = transient(sink.deliver(&msg).await);
    assert!(why.contains("451"), "{why}");
    // The next attempt goes through, on the same sink (a fresh pooled connection).
    sink.deliver(&msg).await.unwrap();
    assert_eq!(rx.messages().len(), 1);

    let mode = SmtpMode { starttls: true, fail_first: Some((1, "554 5.7.1 Relay access denied".into())), ..SmtpMode::default() };
    let rx = SmtpReceiver::start(&pki, &mode);
    let sink = SmtpSink::from_endpoint("secure-mail", &smtp_endpoint(&pki, rx.port)).unwrap();
    let why = permanent(sink.deliver(&msg).await);
    assert!(why.contains("554") && why.contains("Relay access denied"), "{why}");
    assert!(rx.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_a_server_that_stops_answering_is_a_transient_failure_after_the_time_out() {
    if !aiosmtpd_or_skip("smtp_a_server_that_stops_answering") {
        return;
    }
    let pki = Pki::new();
    let rx = SmtpReceiver::start(&pki, &SmtpMode { starttls: true, hang: true, ..SmtpMode::default() });
    let mut ep = smtp_endpoint(&pki, rx.port);
    ep.timeout_seconds = Some(0.5);
    let sink = SmtpSink::from_endpoint("secure-mail", &ep).unwrap();
    let r = recipient();
    let why = transient(sink.deliver(&outgoing(Channel::SecureMail, &r, "text/plain", b"brief", "route-hang")).await);
    assert!(why.contains("no answer within"), "{why}");
    assert!(rx.log().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_connection_refused_is_transient_and_a_recipient_without_address_permanent() {
    let pki = Pki::new();
    let sink = SmtpSink::from_endpoint("secure-mail", &smtp_endpoint(&pki, closed_port())).unwrap();
    let r = recipient();
    transient(sink.deliver(&outgoing(Channel::SecureMail, &r, "text/plain", b"brief", "route-down")).await);
    let nobody = json!({"role": "huisarts", "endpoints": {}});
    let why = permanent(sink.deliver(&outgoing(Channel::SecureMail, &nobody, "text/plain", b"brief", "route-none")).await);
    assert!(why.contains("endpoints.email"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_concurrent_deliveries_share_pooled_connections_and_each_arrives_once() {
    if !aiosmtpd_or_skip("smtp_concurrent_deliveries") {
        return;
    }
    let pki = Pki::new();
    let rx = SmtpReceiver::start(&pki, &SmtpMode { starttls: true, ..SmtpMode::default() });
    let mut ep = smtp_endpoint(&pki, rx.port);
    ep.max_connections = Some(4);
    let sink = std::sync::Arc::new(SmtpSink::from_endpoint("secure-mail", &ep).unwrap());
    let mut tasks = Vec::new();
    for i in 0..60 {
        let sink = sink.clone();
        tasks.push(tokio::spawn(async move {
            let r = recipient();
            let key = format!("route-{i:03}");
            let body = format!("brief {i}");
            sink.deliver(&outgoing(Channel::SecureMail, &r, "text/plain", body.as_bytes(), &key)).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap_or_else(|f| panic!("{f:?}"));
    }
    let mut ids: Vec<String> = rx.messages().iter().map(|m| m["message_id"].as_str().unwrap().to_owned()).collect();
    ids.sort();
    let expected: Vec<String> = (0..60).map(|i| format!("<route-{i:03}@gw.test>")).collect();
    assert_eq!(ids, expected);
}

/// Throughput of the SMTP sink over STARTTLS to the loopback aiosmtpd receiver, with 32 deliveries in
/// flight over the pool: prints deliveries per second (the issue's target is 100/s). Ignored in the
/// quick run, since it measures; run it with
/// `cargo test --test delivery_channels smtp_throughput -- --ignored --nocapture` (the test profile
/// is optimised, opt-level 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn smtp_throughput_over_starttls() {
    if !aiosmtpd_or_skip("smtp_throughput_over_starttls") {
        return;
    }
    let pki = Pki::new();
    let rx = SmtpReceiver::start(&pki, &SmtpMode { starttls: true, ..SmtpMode::default() });
    let mut ep = smtp_endpoint(&pki, rx.port);
    ep.max_connections = std::env::var("ACP_BENCH_SMTP_CONNECTIONS").ok().and_then(|v| v.parse().ok());
    let sink = std::sync::Arc::new(SmtpSink::from_endpoint("edifact", &ep).unwrap());
    let n = 1000;
    let started = std::time::Instant::now();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (sink, next) = (sink.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let r = recipient();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let key = format!("route-{i:05}");
                sink.deliver(&outgoing(Channel::SecureMail, &r, "application/edifact", EDIFACT.as_bytes(), &key)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(rx.messages().len(), n);
    println!("smtp sink, STARTTLS, loopback aiosmtpd: {n} deliveries in {secs:.2} s = {:.0}/s", n as f64 / secs);
}

// ---------------------------------------------------------------- HTTPS

fn https_endpoint(pki: &Pki) -> ChannelEndpoint {
    ChannelEndpoint {
        sink: "https".into(),
        ca_file: Some(pki.ca.clone()),
        timeout_seconds: Some(10.0),
        allowed_hosts: Some(vec!["127.0.0.1".into()]),
        ..ChannelEndpoint::default()
    }
}

fn fhir_recipient(url: &str) -> Value {
    json!({"role": "medisch-specialist", "organization": {"ura": "90000123"}, "endpoints": {"fhir": url}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_2xx_is_delivered_with_a_stable_request_id() {
    let pki = Pki::new();
    let rx = HttpsReceiver::start(&pki, false).await;
    let mut ep = https_endpoint(&pki);
    ep.bearer_token = Some("token-abc".into());
    let sink = HttpsSink::from_endpoint("fhir", &ep).unwrap();
    let r = fhir_recipient(&rx.url("/fhir"));
    let receipt = sink.deliver(&outgoing(Channel::Fhir, &r, "application/fhir+json", FHIR.as_bytes(), "route-h1")).await.unwrap();
    assert!(receipt.detail.contains("201") && receipt.detail.contains("Location: /fhir/received/1"), "{}", receipt.detail);
    let d = rx.deliveries();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].path, "/fhir");
    assert_eq!(d[0].body, FHIR.as_bytes());
    assert_eq!(d[0].content_type.as_deref(), Some("application/fhir+json"));
    assert_eq!(d[0].idempotency_key.as_deref(), Some("route-h1"));
    assert_eq!(d[0].request_id.as_deref(), Some("route-h1"));
    assert_eq!(d[0].authorization.as_deref(), Some("Bearer token-abc"));

    // Without a recipient URL the configured target is used; without either, nothing can be sent.
    let mut ep = https_endpoint(&pki);
    ep.target = Some(rx.url("/print"));
    let print = HttpsSink::from_endpoint("post", &ep).unwrap();
    let nobody = json!({"role": "huisarts"});
    print.deliver(&outgoing(Channel::Post, &nobody, "text/plain; charset=utf-8", b"brief", "route-h2")).await.unwrap();
    assert_eq!(rx.deliveries()[1].path, "/print");
    let why = permanent(sink.deliver(&outgoing(Channel::Fhir, &nobody, "application/fhir+json", FHIR.as_bytes(), "route-h3")).await);
    assert!(why.contains("endpoints.fhir"), "{why}");

    // A recipient URL on a host the endpoint does not allow is refused before anything is sent, even
    // when it is the same receiver under another name.
    let elsewhere = fhir_recipient(&rx.url("/fhir").replace("127.0.0.1", "localhost"));
    let why = permanent(sink.deliver(&outgoing(Channel::Fhir, &elsewhere, "application/fhir+json", FHIR.as_bytes(), "route-h4")).await);
    assert!(why.contains("allowed_hosts"), "{why}");
    assert_eq!(rx.deliveries().len(), 2, "nothing reached the receiver");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_503_is_transient_and_the_retry_delivers_once() {
    let pki = Pki::new();
    let rx = HttpsReceiver::start(&pki, false).await;
    let sink = HttpsSink::from_endpoint("fhir", &https_endpoint(&pki)).unwrap();
    let r = fhir_recipient(&rx.url("/fhir"));
    let msg = outgoing(Channel::Fhir, &r, "application/fhir+json", FHIR.as_bytes(), "route-503");
    rx.fail_next(2);
    assert!(transient(sink.deliver(&msg).await).contains("503"));
    assert!(transient(sink.deliver(&msg).await).contains("503"));
    sink.deliver(&msg).await.unwrap();
    assert_eq!(rx.attempts(), 3);
    assert_eq!(rx.count("route-503"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_4xx_is_permanent_with_the_operation_outcome_and_408_429_are_transient() {
    let pki = Pki::new();
    let rx = HttpsReceiver::start(&pki, false).await;
    let sink = HttpsSink::from_endpoint("fhir", &https_endpoint(&pki)).unwrap();
    let r = fhir_recipient(&rx.url("/fhir"));
    let msg = outgoing(Channel::Fhir, &r, "application/fhir+json", FHIR.as_bytes(), "route-400");
    rx.reject(400, "Profile http://fhir.nl/x is unknown here");
    let why = permanent(sink.deliver(&msg).await);
    assert!(why.contains("400") && why.contains("OperationOutcome") && why.contains("Profile http://fhir.nl/x is unknown here"), "{why}");
    rx.reject(429, "slow down");
    assert!(transient(sink.deliver(&msg).await).contains("429"));
    rx.reject(408, "too slow");
    assert!(transient(sink.deliver(&msg).await).contains("408"));
    assert!(rx.deliveries().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_a_hanging_receiver_is_a_transient_failure_after_the_time_out() {
    let pki = Pki::new();
    let rx = HttpsReceiver::start(&pki, false).await;
    let mut ep = https_endpoint(&pki);
    ep.timeout_seconds = Some(0.5);
    let sink = HttpsSink::from_endpoint("fhir", &ep).unwrap();
    let r = fhir_recipient(&rx.url("/fhir"));
    rx.hang(true);
    let why = transient(sink.deliver(&outgoing(Channel::Fhir, &r, "application/fhir+json", FHIR.as_bytes(), "route-hang")).await);
    assert!(why.contains("no answer in time"), "{why}");
    assert_eq!(rx.attempts(), 1, "the request reached the receiver, which never answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_mutual_tls_delivers_with_the_client_certificate_and_fails_without() {
    let pki = Pki::new();
    let rx = HttpsReceiver::start(&pki, true).await;
    let r = fhir_recipient(&rx.url("/zorgdomein"));
    let msg = outgoing(Channel::Fhir, &r, "application/fhir+json", FHIR.as_bytes(), "route-mtls");

    let without = HttpsSink::from_endpoint("fhir", &https_endpoint(&pki)).unwrap();
    // Refused in the handshake: permanent (the same certificates meet the same refusal next time).
    let why = permanent(without.deliver(&msg).await);
    assert!(why.contains("CertificateRequired"), "{why}");
    assert!(rx.deliveries().is_empty(), "nothing got through without a client certificate");

    let mut ep = https_endpoint(&pki);
    ep.client_cert = Some(pki.client_cert.clone());
    ep.client_key = Some(pki.client_key.clone());
    let with = HttpsSink::from_endpoint("fhir", &ep).unwrap();
    with.deliver(&msg).await.unwrap_or_else(|f| panic!("{f:?}"));
    assert_eq!(rx.count("route-mtls"), 1);

    ep.client_key = None;
    assert!(HttpsSink::from_endpoint("fhir", &ep).is_err_and(|e| e.contains("client_key")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_wrong_ca_is_permanent_and_a_receiver_that_is_down_transient() {
    let pki = Pki::new();
    let rx = HttpsReceiver::start(&pki, false).await;
    let mut ep = https_endpoint(&pki);
    ep.ca_file = Some(pki.other_ca.clone());
    let sink = HttpsSink::from_endpoint("fhir", &ep).unwrap();
    let r = fhir_recipient(&rx.url("/fhir"));
    let msg = outgoing(Channel::Fhir, &r, "application/fhir+json", FHIR.as_bytes(), "route-ca");
    let why = permanent(sink.deliver(&msg).await);
    assert!(why.contains("certificate"), "{why}");
    assert_eq!(rx.attempts(), 0);

    // Down, then up again on the same port: transient, then delivered once.
    let sink = HttpsSink::from_endpoint("fhir", &https_endpoint(&pki)).unwrap();
    rx.stop().await;
    transient(sink.deliver(&msg).await);
    let rx = rx.restart(&pki).await;
    sink.deliver(&msg).await.unwrap_or_else(|f| panic!("{f:?}"));
    assert_eq!(rx.count("route-ca"), 1);
}

// ---------------------------------------------------------------- end to end, through the outbox

/// Fast workers and short backoff, so that retries happen within a test.
fn delivery_config(pki: &Pki, smtp_port: Option<u16>, fhir_max_attempts: u32) -> String {
    let mut toml = support_service::FAST_DELIVERY.to_owned();
    toml.push_str(&format!(
        r#"
[delivery.channels.fhir]
max_attempts = {fhir_max_attempts}

[channels.endpoints.fhir]
sink = "https"
ca_file = "{ca}"
timeout_seconds = 5
allowed_hosts = ["127.0.0.1"]
"#,
        ca = pki.ca.display()
    ));
    if let Some(port) = smtp_port {
        toml.push_str(&format!(
            r#"
[channels.endpoints.secure-mail]
sink = "smtp"
host = "127.0.0.1"
port = {port}
from = "gateway@gw.test"
domain = "gw.test"
ca_file = "{ca}"
timeout_seconds = 5
"#,
            ca = pki.ca.display()
        ));
    }
    toml
}

/// A discharge to the GP with a FHIR endpoint: an Edifact route (to the spool) and a FHIR route.
fn discharge_with_fhir(url: &str) -> Value {
    let mut h = support_service::discharge(support_service::record(support_service::BSN, Some("agreed")));
    h["recipients"][0]["endpoints"]["fhir"] = json!(url);
    h
}

/// From the elderly-care physician to the GP (row 7): a secure-mail route and a post route.
fn letter_by_secure_mail() -> Value {
    let mut h = support_service::discharge(support_service::record(support_service::BSN, Some("agreed")));
    h["sender"]["role"] = json!("specialist-ouderengeneeskunde");
    h["recipients"][0]["endpoints"] = json!({"email": "huisarts@praktijk.test"});
    h
}

/// Polls the handover until its route of `channel` satisfies `done`; gives up after a generous
/// minute (a liveness limit for a stuck worker, not a timing assertion).
async fn route_when(h: &support_service::Harness, id: &str, channel: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (s, b) = h.get(support_service::HOSPITAL, &format!("/v1/handovers/{id}")).await;
        assert_eq!(s, 200, "{b:#}");
        let route = b["routes"].as_array().unwrap().iter().find(|r| r["channel"] == channel).unwrap_or_else(|| panic!("no {channel} route: {b:#}"));
        if done(route) {
            return route.clone();
        }
        assert!(std::time::Instant::now() < deadline, "the {channel} route never got there: {route:#}");
        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    }
}

async fn state_changes(h: &support_service::Harness, change: &str) -> u64 {
    let text = h.http.get(h.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let prefix = format!("acp_gateway_delivery_state_changes_total{{change=\"{change}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|n| n.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_a_fhir_receiver_down_then_up_gets_the_route_exactly_once() {
    let pki = Pki::new();
    let rx = HttpsReceiver::start(&pki, false).await;
    rx.stop().await;
    let h = support_service::Harness::sqlite_with(&delivery_config(&pki, None, 1000)).await;
    let a = h.hand_over(&discharge_with_fhir(&rx.url("/fhir"))).await;
    let id = a["id"].as_str().unwrap();
    // Down: connection refused, retried with backoff, the error on show.
    let r = route_when(&h, id, "fhir", |r| r["attempts"].as_i64() >= Some(2) && r["status"] == "retrying").await;
    assert!(r["last_error"].as_str().unwrap().contains("POST https://127.0.0.1:"), "{r:#}");
    assert_eq!(rx.attempts(), 0);

    let rx = rx.restart(&pki).await;
    let r = route_when(&h, id, "fhir", |r| r["status"] == "delivered").await;
    let route = r["id"].as_str().unwrap();
    assert_eq!(rx.count(route), 1, "delivered exactly once");
    assert_eq!(rx.deliveries().len(), 1);
    let d = &rx.deliveries()[0];
    assert_eq!(d.content_type.as_deref(), Some("application/fhir+json"));
    let bundle: Value = serde_json::from_slice(&d.body).unwrap();
    assert_eq!(bundle["type"], "transaction");
    assert!(r["receipt"].as_str().unwrap().contains("201"), "{r:#}");
    assert_eq!(state_changes(&h, "failing").await, 1);
    assert_eq!(state_changes(&h, "recovered").await, 1);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_a_fhir_receiver_that_keeps_failing_makes_the_route_dead_after_the_maximum() {
    let pki = Pki::new();
    let rx = HttpsReceiver::start(&pki, false).await;
    rx.fail_next(u32::MAX);
    let h = support_service::Harness::sqlite_with(&delivery_config(&pki, None, 3)).await;
    let a = h.hand_over(&discharge_with_fhir(&rx.url("/fhir"))).await;
    let id = a["id"].as_str().unwrap();
    let r = route_when(&h, id, "fhir", |r| r["status"] == "dead").await;
    assert_eq!(r["attempts"], 3, "{r:#}");
    assert_eq!(rx.attempts(), 3, "the receiver saw exactly the allowed attempts");
    assert!(r["last_error"].as_str().unwrap().contains("503"), "{r:#}");
    assert!(rx.deliveries().is_empty());
    assert_eq!(state_changes(&h, "failing").await, 1, "one alert when it started failing, not one per attempt");
    assert_eq!(state_changes(&h, "dead").await, 1);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_a_4xx_with_an_operation_outcome_is_dead_at_once_with_its_text() {
    let pki = Pki::new();
    let rx = HttpsReceiver::start(&pki, false).await;
    rx.reject(422, "Consent.provision: unknown code");
    let h = support_service::Harness::sqlite_with(&delivery_config(&pki, None, 1000)).await;
    let a = h.hand_over(&discharge_with_fhir(&rx.url("/fhir"))).await;
    let id = a["id"].as_str().unwrap();
    let r = route_when(&h, id, "fhir", |r| r["status"] == "dead").await;
    assert_eq!(r["attempts"], 1, "not retried: {r:#}");
    assert_eq!(rx.attempts(), 1);
    assert!(r["last_error"].as_str().unwrap().contains("Consent.provision: unknown code"), "{r:#}");
    assert_eq!(state_changes(&h, "dead").await, 1);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_secure_mail_over_starttls_is_delivered_once_with_the_route_as_message_id() {
    if !aiosmtpd_or_skip("end_to_end_secure_mail_over_starttls") {
        return;
    }
    let pki = Pki::new();
    let rx = SmtpReceiver::start(&pki, &SmtpMode { starttls: true, ..SmtpMode::default() });
    let h = support_service::Harness::sqlite_with(&delivery_config(&pki, Some(rx.port), 1000)).await;
    let a = h.hand_over(&letter_by_secure_mail()).await;
    let id = a["id"].as_str().unwrap();
    let r = route_when(&h, id, "secure-mail", |r| r["status"] == "delivered").await;
    let route = r["id"].as_str().unwrap();
    let got = rx.messages();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["message_id"], format!("<{route}@gw.test>"));
    assert_eq!(got[0]["tls"], true);
    assert_eq!(got[0]["rcpt_tos"], json!(["huisarts@praktijk.test"]));
    assert_eq!(rx.count_message_id(&format!("<{route}@gw.test>")), 1);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_a_plain_text_mail_server_never_gets_the_letter_and_the_route_says_why() {
    if !aiosmtpd_or_skip("end_to_end_a_plain_text_mail_server") {
        return;
    }
    let pki = Pki::new();
    let rx = SmtpReceiver::start(&pki, &SmtpMode::default());
    let h = support_service::Harness::sqlite_with(&delivery_config(&pki, Some(rx.port), 1000)).await;
    let a = h.hand_over(&letter_by_secure_mail()).await;
    let id = a["id"].as_str().unwrap();
    let r = route_when(&h, id, "secure-mail", |r| r["status"] == "dead").await;
    assert_eq!(r["attempts"], 1, "a permanent failure is not retried: {r:#}");
    let why = r["last_error"].as_str().unwrap();
    assert!(why.contains("does not offer STARTTLS") && why.contains("plain text"), "{r:#}");
    assert!(rx.log().is_empty(), "nothing reached the plain-text server");
    h.finish().await;
}
