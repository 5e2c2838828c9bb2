//! S/MIME on the secure-mail channel (issue 4 item 5), checked by an independent implementation: the
//! `openssl cms` command-line tool (OpenSSL 3) decrypts what `channels::smime::protect` made, verifies
//! its signature against the test CA and must give back exactly the rendered mail's MIME entity; the
//! wrong recipient key must not. The certificates are made by the openssl tool as well (a test CA, a
//! sender with emailProtection, a recipient and a stranger), so no part of the check shares code with
//! the gateway's CMS.
//!
//! Through the SMTP sink: with S/MIME configured, a recipient without a certificate is a permanent
//! failure before any connection is made (never a plain send), and a delivery to a real SMTP receiver
//! (aiosmtpd, STARTTLS) arrives encrypted and decrypts to the rendered mail.
//!
//! Without the openssl tool the tests fail under CI and are skipped loudly otherwise.

mod support_receivers;

use std::path::{Path, PathBuf};
use std::process::Command;

use acp_gateway::channels::smime::{mime_entity, protect, SmimeSettings};
use acp_gateway::channels::smtp::SmtpSink;
use acp_gateway::channels::{Failure, Outgoing, Sink};
use acp_gateway::config::ChannelEndpoint;
use acp_gateway::routing::Channel;
use serde_json::{json, Value};
use support_receivers::{aiosmtpd_or_skip, smtp_endpoint, temp_dir, Pki, SmtpMode, SmtpReceiver};

/// A mail rendered by `render::mail` (the golden file of the renderer's own tests).
const GOLDEN: &str = "tests/golden/mail/uniform-03-heart-failure-icd.specialist-ouderengeneeskunde-to-huisarts.eml";
const RECIPIENT: &str = "praktijk@delinde.example";

fn golden_mail() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN)).expect("the golden mail exists")
}

/// Whether the openssl tool runs; `false` after a loud SKIPPED line outside CI, a panic under CI.
fn openssl_or_skip(test: &str) -> bool {
    let ok = Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success());
    if !ok {
        let msg = format!("{test}: the openssl command-line tool is not installed (apt-get install openssl); S/MIME cannot be checked");
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("\n*** SKIPPED {msg} ***\n");
    }
    ok
}

fn openssl(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("openssl").current_dir(dir).args(args).output().expect("openssl runs")
}

fn openssl_ok(dir: &Path, args: &[&str]) {
    let out = openssl(dir, args);
    assert!(out.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// A test CA and three RSA-2048 end-entity certificates (`sender`, `recipient`, `stranger`), made by
/// the openssl tool: `<name>.pem` (certificate) and `<name>.key` (PKCS#8).
struct TestPki {
    dir: PathBuf,
}

impl TestPki {
    fn new() -> TestPki {
        let dir = temp_dir("smime");
        std::fs::write(dir.join("ca.ext"), "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n").unwrap();
        openssl_ok(&dir, &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "ca.key"]);
        openssl_ok(&dir, &["req", "-new", "-key", "ca.key", "-subj", "/CN=ACP S-MIME Test CA", "-out", "ca.csr"]);
        openssl_ok(&dir, &["x509", "-req", "-in", "ca.csr", "-signkey", "ca.key", "-days", "2", "-extfile", "ca.ext", "-out", "ca.pem"]);
        for (serial, name, email) in
            [("11", "sender", "gateway@gw.test"), ("12", "recipient", RECIPIENT), ("13", "stranger", "stranger@elders.example")]
        {
            std::fs::write(
                dir.join(format!("{name}.ext")),
                format!(
                    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
                     extendedKeyUsage=emailProtection\nsubjectAltName=email:{email}\n"
                ),
            )
            .unwrap();
            let key = format!("{name}.key");
            let csr = format!("{name}.csr");
            openssl_ok(&dir, &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", &key]);
            openssl_ok(&dir, &["req", "-new", "-key", &key, "-subj", &format!("/CN={name}/emailAddress={email}"), "-out", &csr]);
            openssl_ok(&dir, &[
                "x509", "-req", "-in", &csr, "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", serial, "-days", "2",
                "-extfile", &format!("{name}.ext"), "-out", &format!("{name}.pem"),
            ]);
        }
        TestPki { dir }
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.join(file)).unwrap()
    }

    fn settings(&self) -> SmimeSettings {
        SmimeSettings {
            sign_cert_pem: self.read("sender.pem"),
            sign_key_pem: self.read("sender.key"),
            recipient_cert_pem: self.read("recipient.pem"),
        }
    }
}

/// CRLF → LF, so that a comparison does not depend on how a tool writes line ends.
fn lf(bytes: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(bytes).replace("\r\n", "\n").into_bytes()
}

/// The header section of a message (up to the empty line), CRLF.
fn headers(message: &[u8]) -> String {
    let text = String::from_utf8_lossy(message);
    text.split("\r\n\r\n").next().unwrap().to_owned()
}

/// Decrypts with a key and verifies against the test CA; returns the recovered content.
fn decrypt_and_verify(pki: &TestPki, wire: &[u8], cert: &str, key: &str) -> Vec<u8> {
    let dir = &pki.dir;
    std::fs::write(dir.join("wire.eml"), wire).unwrap();
    openssl_ok(dir, &["cms", "-decrypt", "-in", "wire.eml", "-recip", cert, "-inkey", key, "-out", "signed.eml"]);
    let signed = std::fs::read(dir.join("signed.eml")).unwrap();
    let signed_text = String::from_utf8_lossy(&signed);
    assert!(
        signed_text.to_ascii_lowercase().contains("application/pkcs7-mime; smime-type=signed-data"),
        "the decrypted entity is opaque signed-data: {}",
        &signed_text[..signed_text.len().min(300)]
    );
    openssl_ok(dir, &["cms", "-verify", "-in", "signed.eml", "-CAfile", "ca.pem", "-signer", "signer.pem", "-out", "content.eml"]);
    // The signature names the gateway's certificate.
    assert_eq!(lf(&std::fs::read(dir.join("signer.pem")).unwrap()), lf(pki.read("sender.pem").as_bytes()));
    std::fs::read(dir.join("content.eml")).unwrap()
}

#[test]
fn openssl_decrypts_and_verifies_a_protected_rendered_mail_to_the_original_entity() {
    if !openssl_or_skip("openssl_decrypts_and_verifies") {
        return;
    }
    let pki = TestPki::new();
    let mail = golden_mail();
    let wire = protect(&mail, &pki.settings()).expect("protect");

    // Outside: the original transport headers, byte for byte, and an enveloped-data body only.
    let original_headers = headers(&mail);
    let wire_headers = headers(&wire);
    for field in original_headers.split("\r\n").filter(|l| !l.starts_with(' ')) {
        let name = field.split(':').next().unwrap();
        if name.eq_ignore_ascii_case("Content-Type") {
            continue;
        }
        assert!(wire_headers.contains(field), "transport header {name} kept outside");
    }
    assert!(wire_headers.contains("Content-Type: application/pkcs7-mime; smime-type=enveloped-data;"), "{wire_headers}");
    assert!(!wire_headers.contains("multipart/mixed"), "the entity's own Content-Type is inside only");
    let wire_text = String::from_utf8(wire.clone()).expect("ASCII");
    let body = wire_text.split_once("\r\n\r\n").unwrap().1;
    assert!(body.ends_with("\r\n"));
    assert!(body.trim_end().split("\r\n").all(|l| l.len() <= 76 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))));
    assert!(body.split("\r\n").next().unwrap().len() == 76, "76-character base64 lines");
    assert!(!wire_text.contains("\n\n") && wire_text.matches('\n').count() == wire_text.matches("\r\n").count(), "CRLF only");
    // Nothing of the letter is readable on the wire.
    assert!(!wire_text.contains("text/plain") && !wire_text.contains("application/pdf"));

    let content = decrypt_and_verify(&pki, &wire, "recipient.pem", "recipient.key");
    let expected = mime_entity(&mail).unwrap();
    assert!(expected.starts_with(b"Content-Type: multipart/mixed;"));
    assert_eq!(lf(&content), lf(&expected), "openssl recovers exactly the rendered MIME entity");
    // And that entity is the rendered mail minus its transport headers, nothing lost.
    let mail_text = String::from_utf8(mail.clone()).unwrap();
    let mail_body = mail_text.split_once("\r\n\r\n").unwrap().1;
    assert!(lf(&content).ends_with(&lf(mail_body.as_bytes())));
}

#[test]
fn the_wrong_recipient_key_does_not_decrypt() {
    if !openssl_or_skip("the_wrong_recipient_key_does_not_decrypt") {
        return;
    }
    let pki = TestPki::new();
    let mail = golden_mail();
    let wire = protect(&mail, &pki.settings()).expect("protect");
    std::fs::write(pki.dir.join("wire.eml"), &wire).unwrap();
    // Another certificate and key: not a recipient of this message.
    let out = openssl(&pki.dir, &["cms", "-decrypt", "-in", "wire.eml", "-recip", "stranger.pem", "-inkey", "stranger.key", "-out", "x.eml"]);
    assert!(!out.status.success(), "a stranger's key must not decrypt");
    // The recipient's certificate with the stranger's key: RSA decryption of the content key fails
    // (OpenSSL 3.2+ answers PKCS#1 v1.5 failures with a random key, so the content may "decrypt" to
    // garbage: then it must not be the signed entity).
    let out = openssl(&pki.dir, &["cms", "-decrypt", "-in", "wire.eml", "-recip", "recipient.pem", "-inkey", "stranger.key", "-out", "y.eml"]);
    let got = std::fs::read(pki.dir.join("y.eml")).unwrap_or_default();
    assert!(!out.status.success() || !String::from_utf8_lossy(&got).contains("smime-type=signed-data"));
    // A signature checked against another CA fails: the verification really uses the chain.
    let content = decrypt_and_verify(&pki, &wire, "recipient.pem", "recipient.key");
    assert!(!content.is_empty());
    let out = openssl(&pki.dir, &["cms", "-verify", "-in", "signed.eml", "-CAfile", "stranger.pem", "-out", "z.eml"]);
    assert!(!out.status.success(), "verification against an unrelated trust anchor must fail");
}

#[test]
fn protect_refuses_a_key_that_is_not_the_certificates() {
    if !openssl_or_skip("protect_refuses_a_key_that_is_not_the_certificates") {
        return;
    }
    let pki = TestPki::new();
    let mut s = pki.settings();
    s.sign_key_pem = pki.read("stranger.key");
    assert!(protect(&golden_mail(), &s).is_err_and(|e| e.contains("does not belong")));
    let mut s = pki.settings();
    s.recipient_cert_pem = "not a certificate".into();
    assert!(protect(&golden_mail(), &s).is_err_and(|e| e.contains("recipient certificate")));
}

#[test]
fn protect_refuses_a_recipient_certificate_outside_its_validity() {
    if !openssl_or_skip("protect_refuses_a_recipient_certificate_outside_its_validity") {
        return;
    }
    let pki = TestPki::new();
    let dated = |from: (i32, u8, u8), to: (i32, u8, u8)| {
        let mut params = rcgen::CertificateParams::new(vec![RECIPIENT.to_owned()]).unwrap();
        params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        params.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
        params.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap().pem()
    };
    let mut s = pki.settings();
    s.recipient_cert_pem = dated((2020, 1, 1), (2021, 1, 1));
    let e = protect(&golden_mail(), &s).unwrap_err();
    assert!(e.contains("recipient certificate expired on 2021-01-01"), "{e}");
    s.recipient_cert_pem = dated((2999, 1, 1), (3000, 1, 1));
    let e = protect(&golden_mail(), &s).unwrap_err();
    assert!(e.contains("recipient certificate is not valid before 2999-01-01"), "{e}");
}

/// A rendered mail as the outbox hands it to the secure-mail sink.
fn mail_to<'a>(recipient: &'a Value, mail: &'a [u8], key: &'a str) -> Outgoing<'a> {
    Outgoing {
        handover_id: "h",
        route_id: key,
        channel: Channel::SecureMail,
        recipient,
        content_type: "message/rfc822",
        body: mail,
        delivery_key: key,
    }
}

fn smime_endpoint(pki: &TestPki, tls: &Pki, port: u16, certs: &Path) -> ChannelEndpoint {
    ChannelEndpoint {
        smime_cert: Some(pki.dir.join("sender.pem")),
        smime_key: Some(pki.dir.join("sender.key")),
        smime_recipient_certs: Some(certs.to_owned()),
        ..smtp_endpoint(tls, port)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smtp_sink_never_sends_plain_when_smime_is_configured_and_the_certificate_is_missing() {
    if !openssl_or_skip("the_smtp_sink_never_sends_plain") {
        return;
    }
    let pki = TestPki::new();
    let tls = Pki::new();
    let certs = temp_dir("smime-certs");
    // Nothing listens on the port: a send attempt would be a transient connection failure, so a
    // permanent "no certificate" proves the sink stopped before connecting.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let sink = SmtpSink::from_endpoint("secure-mail", &smime_endpoint(&pki, &tls, port, &certs)).unwrap();
    let r = json!({"role": "huisarts", "endpoints": {"email": RECIPIENT}});
    let mail = golden_mail();
    let msg = mail_to(&r, &mail, "route-smime-0");
    match sink.deliver(&msg).await {
        Err(Failure::Permanent(m)) => assert!(m.contains("no S/MIME certificate for the recipient"), "{m}"),
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    // Half a configuration is refused when the sink is made, not discovered as a plain send later.
    let mut half = smime_endpoint(&pki, &tls, port, &certs);
    half.smime_recipient_certs = None;
    assert!(SmtpSink::from_endpoint("secure-mail", &half).is_err_and(|m| m.contains("go together")));
    let mut wrong = smime_endpoint(&pki, &tls, port, &certs);
    wrong.smime_key = Some(pki.dir.join("stranger.key"));
    assert!(SmtpSink::from_endpoint("secure-mail", &wrong).is_err_and(|m| m.contains("does not belong")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smtp_sink_delivers_the_rendered_mail_encrypted_and_openssl_recovers_it() {
    if !openssl_or_skip("the_smtp_sink_delivers_encrypted") || !aiosmtpd_or_skip("the_smtp_sink_delivers_encrypted") {
        return;
    }
    let pki = TestPki::new();
    let tls = Pki::new();
    let certs = temp_dir("smime-certs");
    // Looked up by the envelope To, case-insensitively through the lower-case file name.
    std::fs::copy(pki.dir.join("recipient.pem"), certs.join(format!("{RECIPIENT}.pem"))).unwrap();
    let rx = SmtpReceiver::start(&tls, &SmtpMode { starttls: true, ..SmtpMode::default() });
    let sink = SmtpSink::from_endpoint("secure-mail", &smime_endpoint(&pki, &tls, rx.port, &certs)).unwrap();
    let r = json!({"role": "huisarts", "endpoints": {"email": "Praktijk@delinde.example"}});
    let mail = golden_mail();
    let msg = mail_to(&r, &mail, "route-smime-1");
    sink.deliver(&msg).await.expect("delivered");
    let got = rx.messages();
    assert_eq!(got.len(), 1);
    let wire = std::fs::read(rx.dir.join(got[0]["file"].as_str().unwrap())).unwrap();
    let wire_text = String::from_utf8_lossy(&wire);
    assert!(wire_text.contains("smime-type=enveloped-data"));
    assert!(!wire_text.contains("text/plain"), "nothing of the letter travels in the clear");
    // The Message-ID the receiver dedupes by (the transport's, from the delivery key) stays outside.
    assert!(headers(&wire).contains("Message-ID: <route-smime-1@"), "{}", headers(&wire));
    assert!(got[0]["message_id"].as_str().unwrap().starts_with("<route-smime-1@"), "{:#}", got[0]);
    let content = decrypt_and_verify(&pki, &wire, "recipient.pem", "recipient.key");
    assert_eq!(lf(&content), lf(&mime_entity(&mail).unwrap()));
}
