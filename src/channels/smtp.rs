//! The SMTP sink (secure mail, and Edifact through a mail relay): lettre over rustls, STARTTLS required.
//!
//! Every connection starts in plain text and must be upgraded with STARTTLS before anything else is
//! said: a server that does not offer STARTTLS, or whose certificate does not verify against the
//! configured roots (`ca_file`, else the webpki roots), is a permanent failure and the message is never
//! sent. SMTP AUTH happens only over that TLS connection. Connections are kept for reuse (at most
//! `max_connections`, which also bounds the sends in flight), so a burst of deliveries pays the TCP +
//! TLS + AUTH cost once per connection, not once per message; lettre speaks SMTP on them, the sink
//! opens them itself to set TCP_NODELAY (see [`SmtpSink::open`]). A whole attempt has one time
//! limit (`timeout_seconds`): a server that stops answering costs a transient failure, never a stuck
//! worker.
//!
//! What is sent:
//! - `message/rfc822`: the bytes are a complete MIME message made by the mail renderer; they go as
//!   they are, except that bare LF line ends become CRLF (SMTP's line end; otherwise a line starting
//!   with "." after a bare LF would escape dot-stuffing) and the Message-ID is the transport's,
//!   `<{delivery_key}@{domain}>`, in place of any the renderer wrote. The transport owns it because
//!   only it knows the delivery: every retry of one route carries the same id (the receiver drops a
//!   copy sent again after a lost reply), a replay carries a new one (the receiver takes the resend),
//!   and the domain is the deployment's, not the renderer's placeholder. Otherwise the receiver gets
//!   exactly the rendered bytes.
//! - anything else (the Edifact interchange, the letter text): a minimal transport message, a
//!   neutral text part plus the body as an attachment of its own content type. The Subject and every
//!   other header are free of patient data; `Message-ID: <{delivery_key}@{domain}>` lets the receiving
//!   side drop a copy that a retry after a lost reply sent again.
//! - with `smime_cert`/`smime_key`/`smime_recipient_certs`, either of the above is then signed and
//!   encrypted for the envelope To's certificate ([`super::smime`]); no certificate, no send.
//!
//! The envelope To is the recipient's `endpoints.email`, or the endpoint's fixed `to` (an Edifact
//! mail service's intake address; `{edifact}` in it becomes the recipient's mailbox).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, CertificateStore, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, Message};
use serde_json::Value;

use crate::config::ChannelEndpoint;

use super::{BoxFuture, Failure, Outgoing, Receipt, Sink};

/// The Subject of every wrapped message: says what it is without saying whom it is about.
pub const NEUTRAL_SUBJECT: &str = "Overdracht proactieve zorgplanning (ACP)";

const NEUTRAL_TEXT: &str = "Dit bericht bevat een overdracht van de ACP-overdrachtsgateway als bijlage.\r\n\
This message carries a handover from the ACP handover gateway as an attachment.\r\n";

const DEFAULT_PORT: u16 = 587;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(crate::config::DEFAULT_TIMEOUT_SECONDS);
const DEFAULT_MAX_CONNECTIONS: u32 = 8;
/// An idle connection older than this is closed rather than reused (servers drop idle clients).
const IDLE_LIMIT: Duration = Duration::from_secs(60);
/// An idle connection older than this is checked with NOOP before reuse; a busy one is not.
const PROBE_AFTER: Duration = Duration::from_secs(2);

/// What a configured SMTP endpoint is, checked once when the sink is made.
struct Settings {
    host: String,
    port: u16,
    from: Mailbox,
    fixed_to: Option<String>,
    domain: String,
    credentials: Option<Credentials>,
    tls: TlsParameters,
    timeout: Duration,
    /// Sign and encrypt every message (channels::smime), when configured.
    smime: Option<super::smime::SmimeSender>,
}

pub struct SmtpSink {
    channel: String,
    settings: Settings,
    /// Connections after STARTTLS (and AUTH), idle since the instant given.
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    /// At most `max_connections` sends at a time, so that a burst waits for a kept connection
    /// instead of opening (TCP, STARTTLS, AUTH) and closing one per concurrent send.
    in_flight: tokio::sync::Semaphore,
}

impl SmtpSink {
    pub fn from_endpoint(channel: &str, endpoint: &ChannelEndpoint) -> Result<SmtpSink, String> {
        let err = |m: String| format!("channel {channel} (smtp): {m}");
        let (host, port) = match (&endpoint.host, &endpoint.target) {
            (Some(h), _) => (h.clone(), endpoint.port.unwrap_or(DEFAULT_PORT)),
            (None, Some(t)) => split_host_port(t).map_err(err)?,
            (None, None) => return Err(err("needs `host` (or `target` as host[:port]) of the SMTP relay".into())),
        };
        let (host, port) = (host, endpoint.port.unwrap_or(port));
        let from: Mailbox = endpoint
            .from
            .as_deref()
            .ok_or_else(|| err("needs `from`, the envelope sender address".into()))?
            .parse()
            .map_err(|e| err(format!("`from`: {e}")))?;
        let domain = endpoint.domain.clone().unwrap_or_else(|| from.email.domain().to_owned());
        if domain.is_empty() || !domain.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') {
            return Err(err(format!("`domain` {domain:?} is not a host name")));
        }
        let password = match (&endpoint.password, &endpoint.password_env) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(var)) => {
                Some(std::env::var(var).map_err(|_| err(format!("`password_env`: the variable {var} is not set")))?)
            }
            (None, None) => None,
        };
        let credentials = match (&endpoint.username, password) {
            (Some(u), Some(p)) => Some(Credentials::new(u.clone(), p)),
            (Some(_), None) => return Err(err("`username` without `password` or `password_env`".into())),
            (None, Some(_)) => return Err(err("a password without `username`".into())),
            (None, None) => None,
        };
        let mut tls = TlsParameters::builder(host.clone());
        if let Some(p) = &endpoint.ca_file {
            // Only the configured CAs: a private relay's certificate must not also be acceptable when
            // signed by any public CA, nor the other way round.
            let pem = std::fs::read(p).map_err(|e| err(format!("`ca_file` {}: {e}", p.display())))?;
            let certs = Certificate::from_pem(&pem).map_err(|e| err(format!("`ca_file` {}: {e}", p.display())))?;
            tls = tls.certificate_store(CertificateStore::None).add_root_certificate(certs);
        } else {
            tls = tls.certificate_store(CertificateStore::WebpkiRoots);
        }
        let tls = tls.build_rustls().map_err(|e| err(format!("TLS settings: {e}")))?;
        let timeout = timeout_from(endpoint.timeout_seconds).map_err(err)?;
        let max_connections = endpoint.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS).clamp(1, 1024);
        let smime = super::smime::SmimeSender::from_paths(
            endpoint.smime_cert.as_deref(),
            endpoint.smime_key.as_deref(),
            endpoint.smime_recipient_certs.as_deref(),
        )
        .map_err(err)?;
        Ok(SmtpSink {
            channel: channel.to_owned(),
            settings: Settings {
                host,
                port,
                from,
                fixed_to: endpoint.to.clone(),
                domain,
                credentials,
                tls,
                timeout,
                smime,
            },
            idle: Mutex::new(Vec::new()),
            in_flight: tokio::sync::Semaphore::new(max_connections as usize),
        })
    }

    fn at(&self) -> String {
        format!("smtp {}:{}", self.settings.host, self.settings.port)
    }

    /// A new connection, after STARTTLS and AUTH.
    async fn open(&self) -> Result<AsyncSmtpConnection, Failure> {
        let s = &self.settings;
        let at = self.at();
        let tcp = tokio::net::TcpStream::connect((s.host.as_str(), s.port))
            .await
            .map_err(|e| Failure::Transient(format!("{at}: cannot connect: {e}")))?;
        // lettre writes a message and its final "." in two writes; with Nagle's algorithm the second
        // waits for the server's delayed ACK, some 40 ms per message on every connection.
        let _ = tcp.set_nodelay(true);
        let hello = ClientId::Domain(s.domain.clone());
        let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &hello).await.map_err(|e| classify(&e, &at))?;
        if !conn.can_starttls() {
            conn.abort().await;
            return Err(Failure::Permanent(format!(
                "{at} does not offer STARTTLS; the message was not sent, because it is never sent in plain text"
            )));
        }
        conn.starttls(s.tls.clone(), &hello).await.map_err(|e| classify(&e, &at))?;
        if let Some(c) = &s.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], c).await.map_err(|e| classify(&e, &at))?;
        }
        Ok(conn)
    }

    /// A kept connection that still works, or a new one.
    async fn checkout(&self) -> Result<AsyncSmtpConnection, Failure> {
        loop {
            let kept = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let Some((mut conn, since)) = kept else { return self.open().await };
            let idle = since.elapsed();
            if idle > IDLE_LIMIT || (idle > PROBE_AFTER && !conn.test_connected().await) {
                conn.abort().await;
                continue;
            }
            return Ok(conn);
        }
    }

    fn checkin(&self, conn: AsyncSmtpConnection) {
        if !conn.has_broken() {
            self.idle.lock().unwrap_or_else(|e| e.into_inner()).push((conn, Instant::now()));
        }
    }

    /// The envelope recipient for this message.
    fn recipient_address(&self, recipient: &Value) -> Result<Address, Failure> {
        let text = match &self.settings.fixed_to {
            Some(to) if to.contains("{edifact}") => {
                let mailbox = recipient.pointer("/endpoints/edifact").and_then(Value::as_str).ok_or_else(|| {
                    Failure::Permanent("the recipient has no endpoints.edifact mailbox for the relay address".into())
                })?;
                if mailbox.is_empty() || !mailbox.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
                    return Err(Failure::Permanent(format!("endpoints.edifact {mailbox:?} cannot be part of an address")));
                }
                to.replace("{edifact}", mailbox)
            }
            Some(to) => to.clone(),
            None => recipient
                .pointer("/endpoints/email")
                .and_then(Value::as_str)
                .ok_or_else(|| Failure::Permanent("the recipient has no endpoints.email address".into()))?
                .to_owned(),
        };
        text.trim().parse::<Address>().map_err(|e| Failure::Permanent(format!("recipient address {text:?}: {e}")))
    }

    /// The bytes to put after DATA.
    fn message_bytes(&self, msg: &Outgoing<'_>, to: &Address) -> Result<Vec<u8>, Failure> {
        let message_id = message_id(msg.delivery_key, &self.settings.domain);
        if is_rfc822(msg.content_type) {
            return Ok(prepare_rfc822(msg.body, &message_id));
        }
        let content_type = ContentType::parse(msg.content_type)
            .map_err(|e| Failure::Permanent(format!("content type {:?}: {e}", msg.content_type)))?;
        let filename = super::file_name(msg.delivery_key, msg.content_type);
        let message = Message::builder()
            .from(self.settings.from.clone())
            .to(Mailbox::new(None, to.clone()))
            .subject(NEUTRAL_SUBJECT)
            .message_id(Some(message_id))
            .multipart(
                MultiPart::mixed()
                    .singlepart(SinglePart::plain(NEUTRAL_TEXT.to_owned()))
                    .singlepart(Attachment::new(filename).body(msg.body.to_vec(), content_type)),
            )
            .map_err(|e| Failure::Permanent(format!("building the transport message: {e}")))?;
        Ok(message.formatted())
    }

    async fn send(&self, msg: &Outgoing<'_>) -> Result<Receipt, Failure> {
        let to = self.recipient_address(msg.recipient)?;
        let bytes = self.message_bytes(msg, &to)?;
        // S/MIME protects the wire copy only; the stored rendering stays readable. Without the
        // recipient's certificate nothing is sent (Permanent), never a plain copy.
        let bytes = match &self.settings.smime {
            None => bytes,
            Some(smime) => {
                let settings = smime.settings_for(to.as_ref()).map_err(Failure::Permanent)?;
                let protected = super::smime::protect(&bytes, &settings).map_err(Failure::Permanent)?;
                prepare_rfc822(&protected, &message_id(msg.delivery_key, &self.settings.domain))
            }
        };
        let envelope = Envelope::new(Some(self.settings.from.email.clone()), vec![to.clone()])
            .map_err(|e| Failure::Permanent(format!("envelope: {e}")))?;
        let _permit = self.in_flight.acquire().await.map_err(|_| Failure::Transient("the sink is shutting down".into()))?;
        let at = self.at();
        let attempt = async {
            let mut conn = self.checkout().await?;
            // lettre aborts the connection on any negative reply, so a failed one is not kept.
            let sent = conn.send(&envelope, &bytes).await;
            self.checkin(conn);
            sent.map_err(|e| classify(&e, &at))
        };
        // Dropping the attempt on time-out closes its connection.
        let resp = tokio::time::timeout(self.settings.timeout, attempt).await.map_err(|_| {
            Failure::Transient(format!("{at}: no answer within {:?}", self.settings.timeout))
        })??;
        Ok(Receipt {
            detail: format!(
                "{at} accepted for <{to}>: {} {}",
                resp.code(),
                shorten(&resp.message().collect::<Vec<_>>().join(" "), 200)
            ),
        })
    }
}

impl Sink for SmtpSink {
    fn kind(&self) -> &'static str {
        "smtp"
    }

    fn deliver<'a>(&'a self, msg: &'a Outgoing<'a>) -> BoxFuture<'a, Result<Receipt, Failure>> {
        Box::pin(async move {
            self.send(msg).await.map_err(|f| match f {
                Failure::Transient(m) => Failure::Transient(format!("{}: {m}", self.channel)),
                Failure::Permanent(m) => Failure::Permanent(format!("{}: {m}", self.channel)),
            })
        })
    }
}

/// Whether another attempt can help, with a reason an operator can act on.
fn classify(e: &lettre::transport::smtp::Error, at: &str) -> Failure {
    let text = super::https::chain(e);
    if let Some(code) = e.status() {
        // 4xx: the server asks to try later (greylisting, a full queue); 5xx: it will not take it.
        return if e.is_transient() {
            Failure::Transient(format!("{at} answered {code} (temporary): {text}"))
        } else {
            Failure::Permanent(format!("{at} refused the message with {code}: {text}"))
        };
    }
    if let Some(tls) = super::https::tls_error(e) {
        return super::https::classify_tls(at, tls);
    }
    if e.is_timeout() {
        return Failure::Transient(format!("{at}: timed out: {text}"));
    }
    if e.is_client() {
        // lettre's client errors are decisions about this message or this server, not accidents of
        // the network: 8-bit content for a 7-bit server, and so on.
        return Failure::Permanent(format!("{at}: {text}"));
    }
    // Connection refused or reset, name resolution, a dropped connection: the server may be back soon.
    Failure::Transient(format!("{at}: {text}"))
}

pub(super) fn shorten(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max).collect();
    out.push('…');
    out
}

fn split_host_port(t: &str) -> Result<(String, u16), String> {
    let t = t.strip_prefix("smtp://").unwrap_or(t);
    match t.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.starts_with('[') => {
            let port = p.parse().map_err(|_| format!("`target` {t:?}: the port is not a number"))?;
            Ok((h.trim_start_matches('[').trim_end_matches(']').to_owned(), port))
        }
        _ => Ok((t.to_owned(), DEFAULT_PORT)),
    }
}

pub(super) fn timeout_from(seconds: Option<f64>) -> Result<Duration, String> {
    match seconds {
        None => Ok(DEFAULT_TIMEOUT),
        Some(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Ok(Duration::from_secs_f64(s)),
        Some(s) => Err(format!("`timeout_seconds` {s} is not between 0 and 86400")),
    }
}

fn is_rfc822(content_type: &str) -> bool {
    content_type.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("message/rfc822"))
}

/// `<{key}@{domain}>`, with any character a Message-ID's left part cannot hold replaced by `-`.
pub fn message_id(delivery_key: &str, domain: &str) -> String {
    let left: String = delivery_key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c) { c } else { '-' })
        .collect();
    let left = left.trim_matches('.');
    let left = if left.is_empty() { "-" } else { left };
    format!("<{left}@{domain}>")
}

/// CRLF line ends throughout, and the transport's Message-ID in front in place of any other.
fn prepare_rfc822(body: &[u8], message_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 128);
    out.extend_from_slice(format!("Message-ID: {message_id}\r\n").as_bytes());
    let body = without_message_id(body);
    let mut prev = 0u8;
    for &b in body.iter() {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    // lettre ends DATA with CRLF "." CRLF, whose first CRLF ends the last line; a message that
    // already ends with CRLF would otherwise gain an empty line.
    if out.ends_with(b"\r\n") {
        out.truncate(out.len() - 2);
    }
    out
}

/// The message without any Message-ID field in its header section (with the field's folded
/// continuation lines); the body is left as it is.
fn without_message_id(body: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let is_message_id = |line: &[u8]| line.len() >= 11 && line[..11].eq_ignore_ascii_case(b"message-id:");
    let mut out: Option<Vec<u8>> = None;
    let (mut offset, mut in_header, mut dropping) = (0, true, false);
    for line in body.split_inclusive(|&b| b == b'\n') {
        let bare = line.strip_suffix(b"\n").unwrap_or(line);
        let bare = bare.strip_suffix(b"\r").unwrap_or(bare);
        let drop = in_header && !bare.is_empty() && {
            dropping = is_message_id(bare) || (dropping && (bare[0] == b' ' || bare[0] == b'\t'));
            dropping
        };
        in_header &= !bare.is_empty();
        match (&mut out, drop) {
            (None, true) => out = Some(body[..offset].to_vec()),
            (Some(o), false) => o.extend_from_slice(line),
            _ => {}
        }
        offset += line.len();
    }
    match out {
        Some(o) => std::borrow::Cow::Owned(o),
        None => std::borrow::Cow::Borrowed(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_valid_and_stable() {
        assert_eq!(message_id("route-1a2b", "gw.example.nl"), "<route-1a2b@gw.example.nl>");
        assert_eq!(message_id("a b<c>", "d"), "<a-b-c-@d>");
        assert_eq!(message_id("", "d"), "<-@d>");
    }

    #[test]
    fn rfc822_gets_crlf_and_the_transports_message_id() {
        let with = b"Message-ID: <x@y>\nSubject: s\n\n.line\n";
        assert_eq!(prepare_rfc822(with, "<k@d>"), b"Message-ID: <k@d>\r\nSubject: s\r\n\r\n.line".to_vec());
        let without = b"Subject: s\r\n\r\nMessage-ID: in the body\r\n";
        let out = prepare_rfc822(without, "<k@d>");
        assert_eq!(out, b"Message-ID: <k@d>\r\nSubject: s\r\n\r\nMessage-ID: in the body".to_vec());
        let folded = b"From: a@b\r\nmessage-id:\r\n <x@y>\r\nSubject: s\r\n\r\nbody\r\n";
        assert_eq!(prepare_rfc822(folded, "<k@d>"), b"Message-ID: <k@d>\r\nFrom: a@b\r\nSubject: s\r\n\r\nbody".to_vec());
    }

    #[test]
    fn endpoints_need_a_relay_and_a_sender() {
        let mut e = ChannelEndpoint { sink: "smtp".into(), ..ChannelEndpoint::default() };
        assert!(SmtpSink::from_endpoint("secure-mail", &e).is_err_and(|m| m.contains("host")));
        e.target = Some("127.0.0.1:2525".into());
        assert!(SmtpSink::from_endpoint("secure-mail", &e).is_err_and(|m| m.contains("from")));
        e.from = Some("gateway@gw.example.nl".into());
        let s = SmtpSink::from_endpoint("secure-mail", &e).unwrap();
        assert_eq!((s.settings.host.as_str(), s.settings.port, s.settings.domain.as_str()), ("127.0.0.1", 2525, "gw.example.nl"));
        assert_eq!(s.in_flight.available_permits(), 8);
        e.username = Some("u".into());
        assert!(SmtpSink::from_endpoint("secure-mail", &e).is_err_and(|m| m.contains("password")));
    }
}
