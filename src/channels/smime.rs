//! S/MIME for the secure-mail channel (issue 4 item 5): sign with the gateway's key, then encrypt for
//! the recipient's certificate, applied by the SMTP sink to the wire copy only.
//!
//! The mail renderer's message is stored and audited in the clear, so an operator can read what was
//! sent; [`protect`] turns that message into what goes over SMTP:
//!
//! ```text
//! From, To, Subject, Date, Message-ID, MIME-Version ... (the original transport headers, outside)
//! Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"
//!   CMS EnvelopedData (AES-256-CBC, RSA PKCS#1 v1.5 key transport to the recipient's certificate) of
//!     Content-Type: application/pkcs7-mime; smime-type=signed-data; name="smime.p7m"
//!       CMS SignedData (SHA-256, RSA PKCS#1 v1.5, the sender's certificate included) of
//!         the original MIME entity: its Content-* header fields and its body, byte for byte
//! ```
//!
//! Why opaque `signed-data` rather than `multipart/signed`: the signed entity travels inside the
//! encryption, so the one advantage of multipart/signed (a reader without S/MIME still sees the text)
//! does not exist here, while its risk does: a clear-signed part must reach the verifier byte for byte
//! (boundaries, transfer encodings, line ends), which relays and mail stores do not always respect.
//! Inside the CMS the signed bytes are an OCTET STRING that nothing on the way can re-encode.
//! Why sign first, then encrypt (RFC 8551 §3.7): the signature covers the clinical content a
//! professional reads, and the signer is hidden from anyone who only sees the envelope.
//!
//! The transport headers stay outside because mail servers must read them; they carry no patient data
//! (see `render::mail`). Content transfer is base64 in lines of 76 characters ending in CRLF (RFC 2045).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use cms::builder::{
    create_signing_time_attribute, ContentEncryptionAlgorithm, EnvelopedDataBuilder, KeyEncryptionInfo,
    KeyTransRecipientInfoBuilder, SignedDataBuilder, SignerInfoBuilder,
};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::ContentInfo;
use cms::enveloped_data::RecipientIdentifier;
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier};
use der::{Any, DecodePem as _, Encode as _};
use rsa::pkcs1v15::{Signature, SigningKey};
use rsa::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;
use x509_cert::spki::{AlgorithmIdentifierOwned, ObjectIdentifier};
use x509_cert::Certificate;

/// id-data (RFC 5652 §4), id-envelopedData (§6.1), id-sha256 (RFC 5754 §2.2).
const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const ID_ENVELOPED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.3");
const ID_SHA_256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");

/// The sender's certificate and key and the recipient's certificate, as PEM text.
#[derive(Clone)]
pub struct SmimeSettings {
    /// The gateway's signing certificate (the first certificate of the PEM is used).
    pub sign_cert_pem: String,
    /// Its RSA private key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub sign_key_pem: String,
    /// The recipient's encryption certificate (RSA).
    pub recipient_cert_pem: String,
}

impl std::fmt::Debug for SmimeSettings {
    /// Never prints the private key (settings end up in error messages and logs).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmimeSettings").finish_non_exhaustive()
    }
}

/// Header fields of the MIME entity being protected; everything else is transport and stays outside.
fn is_content_field(field: &[u8]) -> bool {
    field.len() >= 8 && field[..8].eq_ignore_ascii_case(b"content-")
}

fn is_field(field: &[u8], name: &str) -> bool {
    field.len() > name.len() && field[..name.len()].eq_ignore_ascii_case(name.as_bytes()) && field[name.len()] == b':'
}

/// CRLF line ends throughout: the canonical form that S/MIME signs (RFC 8551 §3.1.1).
fn crlf(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 32);
    let mut prev = 0u8;
    for &b in message {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// Splits a message (CRLF) into its header fields (each with its folded continuation lines and
/// final CRLF) and its body (after the empty line).
fn split_message(message: &[u8]) -> Result<(Vec<&[u8]>, &[u8]), String> {
    let mut fields: Vec<&[u8]> = Vec::new();
    let mut pos = 0;
    let mut start: Option<usize> = None;
    loop {
        let Some(rel) = message[pos..].windows(2).position(|w| w == b"\r\n") else {
            return Err("the message has no empty line ending its header section".into());
        };
        let line_end = pos + rel + 2;
        let line = &message[pos..pos + rel];
        if line.is_empty() {
            if let Some(s) = start {
                fields.push(&message[s..pos]);
            }
            return Ok((fields, &message[line_end..]));
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if start.is_none() {
                return Err("the message starts with a folded line".into());
            }
        } else {
            if !line.contains(&b':') {
                return Err(format!("header line {:?} has no colon", String::from_utf8_lossy(line)));
            }
            if let Some(s) = start {
                fields.push(&message[s..pos]);
            }
            start = Some(pos);
        }
        pos = line_end;
    }
}

/// Base64 in lines of 76 characters, each ending in CRLF (RFC 2045 §6.8).
fn base64_lines(bytes: &[u8]) -> Vec<u8> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = Vec::with_capacity(encoded.len() + encoded.len() / 38 + 2);
    for chunk in encoded.as_bytes().chunks(76) {
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// An `application/pkcs7-mime` entity holding a DER ContentInfo.
fn pkcs7_entity(smime_type: &str, der: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "Content-Type: application/pkcs7-mime; smime-type={smime_type};\r\n name=\"smime.p7m\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"smime.p7m\"\r\n\r\n"
    )
    .into_bytes();
    out.extend_from_slice(&base64_lines(der));
    out
}

fn certificate(pem: &str, what: &str) -> Result<Certificate, String> {
    // A chain file is common for a sender certificate; the first block is the end entity.
    const END: &str = "-----END CERTIFICATE-----";
    let first = pem.find(END).map_or(pem, |i| &pem[..i + END.len()]);
    Certificate::from_pem(first.trim_start().as_bytes()).map_err(|e| format!("{what}: not a PEM X.509 certificate: {e}"))
}

/// Whether the certificate is valid at `now`: mail encrypted for an expired certificate may be
/// unreadable to its owner (a renewed key) and is against the PKIoverheid rules; one signed with an
/// expired certificate fails verification. Either way it is better not sent, with a reason an
/// operator can act on (drop in the renewed certificate, then retry the route).
fn check_validity(cert: &Certificate, what: &str, now: std::time::SystemTime) -> Result<(), String> {
    let validity = &cert.tbs_certificate.validity;
    let now = now.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    if now < validity.not_before.to_unix_duration() {
        return Err(format!("{what} is not valid before {}", validity.not_before));
    }
    if now > validity.not_after.to_unix_duration() {
        return Err(format!("{what} expired on {}", validity.not_after));
    }
    Ok(())
}

fn issuer_and_serial(cert: &Certificate) -> IssuerAndSerialNumber {
    IssuerAndSerialNumber {
        issuer: cert.tbs_certificate.issuer.clone(),
        serial_number: cert.tbs_certificate.serial_number.clone(),
    }
}

fn rsa_public_key(cert: &Certificate, what: &str) -> Result<RsaPublicKey, String> {
    let spki = cert.tbs_certificate.subject_public_key_info.to_der().map_err(|e| format!("{what}: {e}"))?;
    RsaPublicKey::from_public_key_der(&spki).map_err(|e| format!("{what}: not an RSA public key: {e}"))
}

/// The signing key and certificate, checked to belong together (a mismatch would produce mail that
/// no recipient can verify, which is better refused when the gateway starts).
fn signer(settings: &SmimeSettings) -> Result<(Certificate, RsaPrivateKey), String> {
    let cert = certificate(&settings.sign_cert_pem, "S/MIME sender certificate")?;
    let key = RsaPrivateKey::from_pkcs8_pem(settings.sign_key_pem.trim())
        .map_err(|e| format!("S/MIME sender key: not a PKCS#8 PEM RSA private key: {e}"))?;
    if rsa_public_key(&cert, "S/MIME sender certificate")? != key.to_public_key() {
        return Err("S/MIME sender key does not belong to the sender certificate".into());
    }
    Ok((cert, key))
}

/// Checks the sender's certificate and key (for configuration loading).
pub fn check_sender(sign_cert_pem: &str, sign_key_pem: &str) -> Result<(), String> {
    let probe = SmimeSettings {
        sign_cert_pem: sign_cert_pem.to_owned(),
        sign_key_pem: sign_key_pem.to_owned(),
        recipient_cert_pem: String::new(),
    };
    signer(&probe).map(|_| ())
}

/// CMS SignedData over `content` (encapsulated), DER.
fn sign(content: &[u8], cert: &Certificate, key: RsaPrivateKey) -> Result<Vec<u8>, String> {
    let err = |e: cms::builder::Error| format!("S/MIME signing: {e:?}");
    let econtent = Any::new(der::Tag::OctetString, content).map_err(|e| format!("S/MIME signing: {e}"))?;
    let encap = EncapsulatedContentInfo { econtent_type: ID_DATA, econtent: Some(econtent) };
    let sha256 = AlgorithmIdentifierOwned { oid: ID_SHA_256, parameters: None };
    let signing_key = SigningKey::<Sha256>::new(key);
    let mut signer_info = SignerInfoBuilder::new(
        &signing_key,
        SignerIdentifier::IssuerAndSerialNumber(issuer_and_serial(cert)),
        sha256.clone(),
        &encap,
        None,
    )
    .map_err(err)?;
    // The signing time tells the reader when the gateway signed (RFC 8551 §2.5.1).
    signer_info.add_signed_attribute(create_signing_time_attribute().map_err(err)?).map_err(err)?;
    let signed = SignedDataBuilder::new(&encap)
        .add_digest_algorithm(sha256)
        .map_err(err)?
        // The certificate goes along, so the recipient can verify without a directory lookup.
        .add_certificate(CertificateChoices::Certificate(cert.clone()))
        .map_err(err)?
        .add_signer_info::<SigningKey<Sha256>, Signature>(signer_info)
        .map_err(err)?
        .build()
        .map_err(err)?;
    signed.to_der().map_err(|e| format!("S/MIME signing: {e}"))
}

/// CMS EnvelopedData of `content` for one recipient certificate, DER.
fn encrypt(content: &[u8], recipient: &Certificate) -> Result<Vec<u8>, String> {
    let err = |e: cms::builder::Error| format!("S/MIME encryption: {e:?}");
    let public_key = rsa_public_key(recipient, "S/MIME recipient certificate")?;
    let mut key_rng = rsa::rand_core::OsRng;
    let mut content_rng = rsa::rand_core::OsRng;
    let enveloped = EnvelopedDataBuilder::new(None, content, ContentEncryptionAlgorithm::Aes256Cbc, None)
        .map_err(err)?
        .add_recipient_info(
            KeyTransRecipientInfoBuilder::new(
                RecipientIdentifier::IssuerAndSerialNumber(issuer_and_serial(recipient)),
                KeyEncryptionInfo::Rsa(public_key),
                &mut key_rng,
            )
            .map_err(err)?,
        )
        .map_err(err)?
        .build_with_rng(&mut content_rng)
        .map_err(err)?;
    let info = ContentInfo {
        content_type: ID_ENVELOPED_DATA,
        content: Any::encode_from(&enveloped).map_err(|e| format!("S/MIME encryption: {e}"))?,
    };
    info.to_der().map_err(|e| format!("S/MIME encryption: {e}"))
}

/// The MIME entity of a message: its Content-* fields and its body, ending in CRLF.
pub fn mime_entity(message: &[u8]) -> Result<Vec<u8>, String> {
    let message = crlf(message);
    let (fields, body) = split_message(&message)?;
    let mut entity: Vec<u8> = fields.iter().filter(|f| is_content_field(f)).flat_map(|f| f.iter().copied()).collect();
    entity.extend_from_slice(b"\r\n");
    entity.extend_from_slice(body);
    // SMTP framing may have taken the last line end (see channels::smtp); the entity's canonical form
    // ends its last line.
    if !entity.ends_with(b"\r\n") {
        entity.extend_from_slice(b"\r\n");
    }
    Ok(entity)
}

/// Signs the message's MIME entity with the sender's key, encrypts the signed entity for the
/// recipient's certificate, and returns the message with its transport headers and the encrypted
/// `application/pkcs7-mime` body (CRLF line ends).
pub fn protect(message: &[u8], settings: &SmimeSettings) -> Result<Vec<u8>, String> {
    let (cert, key) = signer(settings)?;
    let recipient = certificate(&settings.recipient_cert_pem, "S/MIME recipient certificate")?;
    let now = std::time::SystemTime::now();
    check_validity(&cert, "the S/MIME sender certificate", now)?;
    check_validity(&recipient, "the S/MIME recipient certificate", now)?;
    let message = crlf(message);
    let (fields, _) = split_message(&message)?;
    let entity = mime_entity(&message)?;
    let signed = pkcs7_entity("signed-data", &sign(&entity, &cert, key)?);
    let enveloped = encrypt(&signed, &recipient)?;
    let mut out = Vec::with_capacity(enveloped.len() * 4 / 3 + 1024);
    for field in fields.iter().filter(|f| !is_content_field(f)) {
        out.extend_from_slice(field);
    }
    if !fields.iter().any(|f| is_field(f, "MIME-Version")) {
        out.extend_from_slice(b"MIME-Version: 1.0\r\n");
    }
    out.extend_from_slice(&pkcs7_entity("enveloped-data", &enveloped));
    Ok(out)
}

/// An SMTP endpoint's S/MIME configuration: the sender's certificate and key (read and checked once,
/// when the sink is made) and the directory of recipient certificates (read at each send).
pub struct SmimeSender {
    cert_pem: String,
    key_pem: String,
    recipient_dir: PathBuf,
}

impl SmimeSender {
    /// `None` when none of the three settings is given; an error when only some are, because a
    /// half-configured S/MIME would otherwise send in the clear.
    pub fn from_paths(
        cert: Option<&Path>,
        key: Option<&Path>,
        recipient_dir: Option<&Path>,
    ) -> Result<Option<SmimeSender>, String> {
        let (cert, key, recipient_dir) = match (cert, key, recipient_dir) {
            (None, None, None) => return Ok(None),
            (Some(c), Some(k), Some(d)) => (c, k, d),
            _ => return Err("`smime_cert`, `smime_key` and `smime_recipient_certs` go together".into()),
        };
        let read = |p: &Path, what: &str| std::fs::read_to_string(p).map_err(|e| format!("`{what}` {}: {e}", p.display()));
        let sender =
            SmimeSender { cert_pem: read(cert, "smime_cert")?, key_pem: read(key, "smime_key")?, recipient_dir: recipient_dir.to_owned() };
        check_sender(&sender.cert_pem, &sender.key_pem)?;
        if !recipient_dir.is_dir() {
            return Err(format!("`smime_recipient_certs` {} is not a directory", recipient_dir.display()));
        }
        Ok(Some(sender))
    }

    /// The settings for one envelope recipient: `<address>.pem` (as given, else in lower case) from
    /// the recipient directory. An error means the message must not be sent.
    pub fn settings_for(&self, address: &str) -> Result<SmimeSettings, String> {
        // The address becomes a file name: nothing that could leave the directory.
        if address.is_empty() || address.starts_with('.') || address.contains(['/', '\\', '\0']) {
            return Err(format!("no S/MIME certificate for the recipient {address:?}: not usable as a file name"));
        }
        let lower = address.to_ascii_lowercase();
        for name in [address, lower.as_str()] {
            let path = self.recipient_dir.join(format!("{name}.pem"));
            match std::fs::read_to_string(&path) {
                Ok(pem) => {
                    return Ok(SmimeSettings {
                        sign_cert_pem: self.cert_pem.clone(),
                        sign_key_pem: self.key_pem.clone(),
                        recipient_cert_pem: pem,
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(format!("S/MIME certificate of the recipient {address}: {}: {e}", path.display())),
            }
        }
        Err(format!(
            "no S/MIME certificate for the recipient {address} ({}); the message was not sent, because S/MIME is configured",
            self.recipient_dir.join(format!("{address}.pem")).display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIL: &[u8] = b"From: \"A\" <a@x.nl>\nTo: <b@y.nl>\nSubject: s\nMIME-Version: 1.0\nContent-Type: multipart/mixed;\n boundary=\"q\"\nMessage-ID: <m@x.nl>\n\n--q\nContent-Type: text/plain\n\nhoi\n--q--\n";

    #[test]
    fn the_entity_is_the_content_fields_and_the_body() {
        let entity = mime_entity(MAIL).unwrap();
        assert_eq!(entity, b"Content-Type: multipart/mixed;\r\n boundary=\"q\"\r\n\r\n--q\r\nContent-Type: text/plain\r\n\r\nhoi\r\n--q--\r\n".to_vec());
        // The transport's trimmed last line end comes back.
        let trimmed = &MAIL[..MAIL.len() - 1];
        assert_eq!(mime_entity(trimmed).unwrap(), entity);
    }

    #[test]
    fn a_message_without_a_header_end_or_with_garbage_headers_is_refused() {
        assert!(mime_entity(b"Subject: s\r\nno end").is_err());
        assert!(mime_entity(b" folded first\r\n\r\nbody").is_err());
        assert!(mime_entity(b"no colon here\r\n\r\nbody").is_err());
    }

    #[test]
    fn base64_lines_are_76_characters_with_crlf() {
        let out = base64_lines(&[7u8; 200]);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.ends_with("\r\n"));
        assert!(text.split("\r\n").all(|l| l.len() <= 76));
        assert_eq!(text.split("\r\n").next().unwrap().len(), 76);
    }

    #[test]
    fn bad_sender_material_is_refused_and_the_key_is_never_printed() {
        let s = SmimeSettings {
            sign_cert_pem: "nope".into(),
            sign_key_pem: "-----BEGIN PRIVATE KEY-----secret".into(),
            recipient_cert_pem: String::new(),
        };
        assert!(protect(MAIL, &s).is_err_and(|e| e.contains("sender certificate")));
        assert!(!format!("{s:?}").contains("secret"));
    }
}
