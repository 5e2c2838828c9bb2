//! The HTTPS sink (FHIR, ZorgDomein, an HTTPS print service): reqwest over rustls, optional mTLS.
//!
//! One POST of the rendered bytes with their content type to the recipient's endpoint
//! (`endpoints.fhir` for the `fhir` channel, `endpoints.zorgdomein` for `zorgdomein`), or to the
//! endpoint's configured `target` when the recipient names none (and for channels without a
//! recipient URL, such as a print service). Only `https://` URLs are used; redirects are not followed
//! (a POST that moved is a configuration matter, not something to guess at). A recipient's URL must
//! be on one of the endpoint's `allowed_hosts` (default: the `target`'s host): the URL comes with the
//! handover, and without the list any client could point the gateway, with its client certificate and
//! bearer token, at any host it can reach.
//!
//! A retry must not create a second copy at the receiver. Two things make sure of that:
//! - every request carries `Idempotency-Key` and `X-Request-Id` set to the delivery key, which is the
//!   same for every attempt of one delivery, for receivers that deduplicate on a request id;
//! - the FHIR transaction Bundle the renderer makes already writes every entry as `PUT Type/id` with
//!   ids derived from the record's content, so a FHIR server that processes it twice ends with the
//!   same resources (update-as-create), and a replay of the same record changes nothing. A sink only
//!   moves bytes, so it does not rewrite the Bundle into conditional creates (`If-None-Exist` belongs
//!   to POST entries, which the renderer deliberately does not make).
//!
//! Answers: 2xx is a receipt (status and `Location`); 408, 429, 5xx, time-outs and connection errors
//! are transient; any other 4xx (and 3xx) is permanent and carries the server's OperationOutcome text,
//! shortened; a certificate that does not verify, or a TLS handshake the server refuses (a client
//! certificate required and not given), is permanent.


use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION};
use reqwest::{Certificate, Client, Identity, StatusCode};
use serde_json::Value;

use crate::config::ChannelEndpoint;
use crate::routing::Channel;

use super::smtp::{shorten, timeout_from};
use super::{BoxFuture, Failure, Outgoing, Receipt, Sink};

pub struct HttpsSink {
    channel: String,
    client: Client,
    target: Option<String>,
    bearer: Option<HeaderValue>,
    /// Lower-case host names or addresses, or `*.domain`.
    allowed_hosts: Vec<String>,
}

impl HttpsSink {
    pub fn from_endpoint(channel: &str, endpoint: &ChannelEndpoint) -> Result<HttpsSink, String> {
        let err = |m: String| format!("channel {channel} (https): {m}");
        let read = |what: &str, p: &std::path::Path| std::fs::read(p).map_err(|e| err(format!("`{what}` {}: {e}", p.display())));
        let timeout = timeout_from(endpoint.timeout_seconds).map_err(err)?;
        let mut b = Client::builder()
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("acp-gateway/", env!("CARGO_PKG_VERSION")));
        if let Some(p) = &endpoint.ca_file {
            // Only the configured CAs, as for the SMTP sink.
            let certs = Certificate::from_pem_bundle(&read("ca_file", p)?).map_err(|e| err(format!("`ca_file`: {e}")))?;
            if certs.is_empty() {
                return Err(err(format!("`ca_file` {} holds no certificate", p.display())));
            }
            b = b.tls_built_in_root_certs(false);
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        match (&endpoint.client_cert, &endpoint.client_key) {
            (Some(c), Some(k)) => {
                let mut pem = read("client_cert", c)?;
                pem.push(b'\n');
                pem.extend(read("client_key", k)?);
                b = b.identity(Identity::from_pem(&pem).map_err(|e| err(format!("client certificate: {e}")))?);
            }
            (None, None) => {}
            _ => return Err(err("`client_cert` and `client_key` go together".into())),
        }
        let token = match (&endpoint.bearer_token, &endpoint.bearer_token_env) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(var)) => {
                Some(std::env::var(var).map_err(|_| err(format!("`bearer_token_env`: the variable {var} is not set")))?)
            }
            (None, None) => None,
        };
        let bearer = match token {
            Some(t) => {
                let mut v = HeaderValue::from_str(&format!("Bearer {}", t.trim()))
                    .map_err(|_| err("the bearer token is not a valid header value".into()))?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        if let Some(t) = &endpoint.target {
            check_url(t).map_err(|e| err(format!("`target`: {e}")))?;
        }
        let allowed_hosts = match &endpoint.allowed_hosts {
            Some(list) => list.iter().map(|h| h.trim().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase()).collect(),
            None => endpoint.target.as_deref().and_then(url_host).into_iter().collect(),
        };
        let client = b.build().map_err(|e| err(format!("HTTPS client: {e}")))?;
        Ok(HttpsSink { channel: channel.to_owned(), client, target: endpoint.target.clone(), bearer, allowed_hosts })
    }

    /// The URL for this message: the recipient's endpoint of the channel's kind, else the target.
    fn url(&self, msg: &Outgoing<'_>) -> Result<String, Failure> {
        let pointer = match msg.channel {
            Channel::Fhir => Some("/endpoints/fhir"),
            Channel::Zorgdomein => Some("/endpoints/zorgdomein"),
            _ => None,
        };
        let from_recipient = pointer.and_then(|p| msg.recipient.pointer(p)).and_then(Value::as_str);
        let url = from_recipient.or(self.target.as_deref()).ok_or_else(|| {
            Failure::Permanent(match pointer {
                Some(p) => format!("the recipient has no {} URL and the channel has no `target`", &p[1..].replace('/', ".")),
                None => "the channel has no `target` URL".to_owned(),
            })
        })?;
        check_url(url).map_err(Failure::Permanent)?;
        let host = url_host(url).unwrap_or_default();
        if !host_allowed(&host, &self.allowed_hosts) {
            return Err(Failure::Permanent(format!(
                "{url:?}: the host {host} is not among the channel's allowed_hosts ([channels.endpoints.{}] allowed_hosts{})",
                self.channel,
                if self.allowed_hosts.is_empty() { ", unset and no `target`".to_owned() } else { format!(" = {:?}", self.allowed_hosts) }
            )));
        }
        Ok(url.to_owned())
    }

    async fn send(&self, msg: &Outgoing<'_>) -> Result<Receipt, Failure> {
        let url = self.url(msg)?;
        let mut headers = HeaderMap::new();
        let ct = HeaderValue::from_str(msg.content_type)
            .map_err(|_| Failure::Permanent(format!("content type {:?} is not a header value", msg.content_type)))?;
        headers.insert(CONTENT_TYPE, ct);
        let fhir = msg.content_type.starts_with("application/fhir+");
        headers.insert(
            ACCEPT,
            HeaderValue::from_static(if fhir { "application/fhir+json, application/json;q=0.9, */*;q=0.1" } else { "*/*" }),
        );
        let key = HeaderValue::from_str(msg.delivery_key)
            .map_err(|_| Failure::Permanent(format!("delivery key {:?} is not a header value", msg.delivery_key)))?;
        headers.insert("idempotency-key", key.clone());
        headers.insert("x-request-id", key);
        if let Some(b) = &self.bearer {
            headers.insert(AUTHORIZATION, b.clone());
        }
        let resp = self
            .client
            .post(&url)
            .headers(headers)
            .body(msg.body.to_vec())
            .send()
            .await
            .map_err(|e| classify_request_error(&e, &url))?;
        let status = resp.status();
        let location = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        if status.is_success() {
            // Read the rest, so the connection goes back to the pool; the content does not matter.
            let _ = resp.bytes().await;
            let mut detail = format!("POST {url}: {status}");
            if let Some(l) = location {
                detail.push_str(&format!(", Location: {l}"));
            }
            return Ok(Receipt { detail });
        }
        let text = match resp.bytes().await {
            Ok(b) => outcome_text(&b),
            Err(e) => format!("(no readable body: {e})"),
        };
        let m = format!("POST {url}: {status}{}", if text.is_empty() { String::new() } else { format!(": {text}") });
        Err(if retryable(status) { Failure::Transient(m) } else { Failure::Permanent(m) })
    }
}

impl Sink for HttpsSink {
    fn kind(&self) -> &'static str {
        "https"
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

fn check_url(url: &str) -> Result<(), String> {
    let u = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if u.scheme() != "https" {
        return Err(format!("{url:?} is not an https:// URL; the HTTPS sink sends over TLS only"));
    }
    Ok(())
}

/// The URL's host, lower case, IPv6 without brackets.
fn url_host(url: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    let host = u.host_str()?;
    Some(host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase())
}

/// Whether `host` is on the list: equal to an entry, or below a `*.domain` entry.
fn host_allowed(host: &str, allowed: &[String]) -> bool {
    !host.is_empty()
        && allowed.iter().any(|a| match a.strip_prefix("*.") {
            Some(domain) => host.len() > domain.len() + 1 && host.ends_with(domain) && host[..host.len() - domain.len()].ends_with('.'),
            None => host == a,
        })
}

/// 408 Request Timeout, 429 Too Many Requests and every 5xx may go through on another attempt.
fn retryable(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT || status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// What the server said: the OperationOutcome's issues (severity, code, text) when it sent one,
/// otherwise the start of the body.
fn outcome_text(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        if v.get("resourceType").and_then(Value::as_str) == Some("OperationOutcome") {
            let issues: Vec<String> = v
                .get("issue")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|i| {
                            let s = |k: &str| i.get(k).and_then(Value::as_str).unwrap_or("");
                            let text = i
                                .pointer("/details/text")
                                .and_then(Value::as_str)
                                .or_else(|| i.get("diagnostics").and_then(Value::as_str))
                                .unwrap_or("");
                            let loc = i
                                .get("expression")
                                .or_else(|| i.get("location"))
                                .and_then(Value::as_array)
                                .and_then(|a| a.first())
                                .and_then(Value::as_str)
                                .map(|l| format!(" at {l}"))
                                .unwrap_or_default();
                            format!("{} {}{loc}: {text}", s("severity"), s("code"))
                        })
                        .collect()
                })
                .unwrap_or_default();
            return shorten(&format!("OperationOutcome: {}", issues.join("; ")), 500);
        }
    }
    shorten(&String::from_utf8_lossy(body), 300)
}

fn classify_request_error(e: &reqwest::Error, url: &str) -> Failure {
    let text = chain(e);
    if let Some(tls) = tls_error(e) {
        return classify_tls(&format!("POST {url}"), tls);
    }
    if e.is_timeout() {
        return Failure::Transient(format!("POST {url}: no answer in time: {text}"));
    }
    if e.is_builder() {
        return Failure::Permanent(format!("POST {url}: {text}"));
    }
    // Connection refused or reset, DNS, a dropped connection: the receiver may be back soon.
    Failure::Transient(format!("POST {url}: {text}"))
}

/// The error and its causes on one line (each cause once: many repeat their source's text).
pub(super) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        src = s.source();
    }
    shorten(&out, 400)
}

/// The rustls error somewhere in an error's causes. An `io::Error` hides its inner error from
/// `source()`, so each one is opened with `get_ref`.
pub(super) fn tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return Some(t);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if let Some(t) = tls_error(inner) {
                    return Some(t);
                }
            }
        }
        cur = err.source();
    }
    None
}

/// A TLS failure: permanent when it is about who is who (the server's certificate, our client
/// certificate, no common protocol), because another attempt meets the same certificates; transient
/// otherwise (a garbled record, a connection cut mid-handshake).
pub(super) fn classify_tls(at: &str, e: &rustls::Error) -> Failure {
    use rustls::AlertDescription as A;
    match e {
        rustls::Error::InvalidCertificate(c) => {
            Failure::Permanent(format!("{at}: the server's certificate is not trusted ({c:?}); check `ca_file` and the host name"))
        }
        rustls::Error::AlertReceived(
            a @ (A::CertificateRequired
            | A::BadCertificate
            | A::UnknownCA
            | A::CertificateUnknown
            | A::CertificateExpired
            | A::CertificateRevoked
            | A::UnsupportedCertificate
            | A::AccessDenied
            | A::HandshakeFailure
            | A::ProtocolVersion
            | A::InsufficientSecurity),
        ) => Failure::Permanent(format!(
            "{at}: the server refused the TLS handshake ({a:?}); a client certificate may be required or not accepted"
        )),
        rustls::Error::PeerIncompatible(p) => {
            Failure::Permanent(format!("{at}: no TLS parameters in common with the server ({p:?})"))
        }
        other => Failure::Transient(format!("{at}: TLS: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_outcomes_are_shortened_to_their_issues() {
        let oo = br#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid",
            "diagnostics":"Bundle.entry[0]: unknown profile","expression":["Bundle.entry[0]"]}]}"#;
        assert_eq!(outcome_text(oo), "OperationOutcome: error invalid at Bundle.entry[0]: Bundle.entry[0]: unknown profile");
        assert_eq!(outcome_text(b"plain words"), "plain words");
        assert!(outcome_text(&vec![b'x'; 1000]).ends_with('…'));
    }

    #[test]
    fn retry_is_for_408_429_and_5xx_only() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(retryable(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 412, 422, 301] {
            assert!(!retryable(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }

    #[test]
    fn recipient_urls_only_on_allowed_hosts() {
        let list = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(host_allowed("fhir.praktijk.example", &list(&["fhir.praktijk.example"])));
        assert!(host_allowed("a.zorg.example", &list(&["*.zorg.example"])));
        assert!(!host_allowed("zorg.example", &list(&["*.zorg.example"])), "the wildcard needs a subdomain");
        assert!(!host_allowed("evilzorg.example", &list(&["*.zorg.example"])));
        assert!(!host_allowed("169.254.169.254", &list(&["fhir.praktijk.example"])));
        assert!(!host_allowed("anything", &[]), "an empty list allows nothing");
        assert_eq!(url_host("https://[::1]:8443/fhir").as_deref(), Some("::1"));
        assert_eq!(url_host("https://FHIR.Example/x").as_deref(), Some("fhir.example"));

        let e = ChannelEndpoint { sink: "https".into(), target: Some("https://print.example/jobs".into()), ..ChannelEndpoint::default() };
        let sink = HttpsSink::from_endpoint("fhir", &e).unwrap();
        assert_eq!(sink.allowed_hosts, list(&["print.example"]), "default: the target's host only");
        let e = ChannelEndpoint { allowed_hosts: Some(list(&["*.Zorg.Example", "[::1]"])), ..e };
        let sink = HttpsSink::from_endpoint("fhir", &e).unwrap();
        assert_eq!(sink.allowed_hosts, list(&["*.zorg.example", "::1"]));
    }

    #[test]
    fn only_https_targets() {
        let e = ChannelEndpoint { sink: "https".into(), target: Some("http://127.0.0.1/x".into()), ..ChannelEndpoint::default() };
        assert!(HttpsSink::from_endpoint("fhir", &e).is_err_and(|m| m.contains("https://")));
        let e = ChannelEndpoint { target: Some("https://127.0.0.1/x".into()), ..e };
        assert!(HttpsSink::from_endpoint("fhir", &e).is_ok());
    }
}
