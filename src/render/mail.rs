//! Renderer: the secure e-mail ("veilig mailen", NTA 7516) of route row 7: an RFC 5322 message, MIME
//! `multipart/mixed`, with the clinical letter as `text/plain` (UTF-8, quoted-printable) and the A4 PDF
//! letter as attachment (base64). Its content type as a whole is `message/rfc822`.
//!
//! Written by hand rather than with a mail crate, because every byte must be reproducible:
//! - **No patient data in any header** (headers are logged and routed in the clear, also by NTA 7516
//!   providers): the Subject is the fixed text of `mappings/packaging.toml`, the attachment's file name is
//!   neutral too, and the From/To display names are the organisations' and professionals' only.
//! - **Message-ID** `<first 16 bytes of the route key in hex>.<recipient position>@<domain>`: the route key
//!   ([`crate::render::packaging::route_key`]) covers the record, both parties, the recipient's position
//!   and the channel, so a re-rendered handover keeps its Message-ID and each recipient gets its own.
//!   It identifies the stand-alone message (`translate --to mail`); the SMTP sink sends it with the
//!   transport's `<delivery-key@domain>` in its place (see `crate::channels::smtp`).
//! - **Date** from SOURCE_DATE_EPOCH or the conversation date, never the clock.
//! - **Boundary** `=_acp_<hex>`, derived from the key as well; it cannot occur in quoted-printable
//!   (which writes `=` as `=3D`) or base64 content.
//! - Lines end in CRLF; body lines stay within 76 characters (RFC 2045), header lines within 78
//!   (RFC 5322, folded).
//!
//! S/MIME (CMS SignedData, then EnvelopedData) is not done here but by the SMTP sink at send time
//! (`channels::smime`, when certificates are configured), so that this rendering, stored and audited,
//! stays readable for the operator and only the wire copy is protected.

use base64::Engine as _;

use crate::render::packaging::{defaults, Party, Route};

/// Why a mail cannot be made for this recipient.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    #[error("{0:?} is not an e-mail address this gateway can write into a header")]
    Address(String),
}

/// A plain `local@domain` without spaces, angle brackets, quotes or control characters: enough to
/// keep a header from being forged through an address, not a full RFC 5322 address parser.
fn check_address(a: &str) -> Result<&str, MailError> {
    let ok = a.len() <= 254
        && a.split('@').count() == 2
        && a.split('@').all(|p| !p.is_empty())
        && a.chars().all(|c| c.is_ascii_graphic() && !"<>()[]\\,;:\"".contains(c));
    if ok {
        Ok(a)
    } else {
        Err(MailError::Address(a.to_owned()))
    }
}

/// A display name as a header shows it: ASCII as a quoted string, anything else as an RFC 2047
/// encoded word. Control characters (a line break could forge a header) are dropped.
fn display_name(name: &str) -> String {
    let clean: String = name.chars().filter(|c| !c.is_control()).collect();
    if clean.is_ascii() {
        format!("\"{}\"", clean.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        // Encoded words of at most 75 characters. A chunk ends after a space where it can (the space
        // inside the encoded text: RFC 2047 drops the folding whitespace between encoded words, so a
        // word is never split by a space that was not there, nor glued to the next).
        // 39 bytes are 52 base64 characters: with `=?UTF-8?B?...?=` and a header name the line stays
        // within 78 characters.
        const CHUNK: usize = 39;
        let mut words = Vec::new();
        let mut chunk = String::new();
        for piece in clean.split_inclusive(' ') {
            if !chunk.is_empty() && chunk.len() + piece.len() > CHUNK {
                words.push(std::mem::take(&mut chunk));
            }
            for c in piece.chars() {
                if chunk.len() + c.len_utf8() > CHUNK {
                    words.push(std::mem::take(&mut chunk));
                }
                chunk.push(c);
            }
        }
        words.push(chunk);
        words
            .iter()
            .map(|w| format!("=?UTF-8?B?{}?=", base64::engine::general_purpose::STANDARD.encode(w)))
            .collect::<Vec<_>>()
            .join("\r\n ")
    }
}

fn mailbox(party: &Party, fallback_name: &str, fallback_email: &str) -> Result<String, MailError> {
    let name =
        [party.person.as_deref(), party.organization.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(", ");
    let name = if name.is_empty() { fallback_name } else { &name };
    let address = check_address(party.email.as_deref().unwrap_or(fallback_email))?;
    let shown = display_name(name);
    // Folded before the address when the line would pass 78 characters (RFC 5322 §2.1.1).
    let last_line = shown.rsplit("\r\n").next().unwrap_or_default();
    let sep = if last_line.len() + address.len() + 16 > 78 { "\r\n " } else { " " };
    Ok(format!("{shown}{sep}<{address}>"))
}

/// Quoted-printable (RFC 2045 §6.7) of UTF-8 text, lines ending in CRLF, at most 76 characters each.
pub fn quoted_printable(text: &str) -> String {
    let mut out = String::new();
    let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = normalised.split('\n').collect();
    for (n, line) in lines.iter().enumerate() {
        let bytes = line.as_bytes();
        let mut col = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let last = i + 1 == bytes.len();
            // Spaces and tabs are literal except at the end of a line, where transport may strip them.
            // A line starting "From " or "." is written encoded, so that mbox ("From " becomes
            // ">From ") and naive SMTP dot handling cannot change the letter (RFC 2049's guidelines).
            let guarded = i == 0 && (b == b'.' || line.starts_with("From "));
            let literal = !guarded && ((b == b' ' || b == b'\t') && !last || (33..=126).contains(&b) && b != b'=');
            let piece = if literal { (b as char).to_string() } else { format!("={b:02X}") };
            // Room for the soft break "=" at the end of a line.
            if col + piece.len() > 75 {
                out.push_str("=\r\n");
                col = 0;
            }
            out.push_str(&piece);
            col += piece.len();
        }
        if n + 1 < lines.len() {
            out.push_str("\r\n");
        }
    }
    out
}

/// Base64 in lines of 76 characters, each ending in CRLF.
fn base64_lines(bytes: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 38);
    for chunk in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push_str("\r\n");
    }
    out
}

/// The Message-ID of a route's mail (with angle brackets).
pub fn message_id(key: &[u8; 32], recipient_index: usize) -> String {
    format!("<{}.{recipient_index}@{}>", hex::encode(&key[..16]), defaults().mail.message_id_domain)
}

/// The whole message, CRLF line ends, ready for SMTP submission.
pub fn render(letter_text: &str, pdf: &[u8], info: &Route<'_>) -> Result<String, MailError> {
    let d = defaults();
    let from = mailbox(info.sender, &d.sender.organization, &d.sender.email)?;
    let to = mailbox(info.recipient, &d.recipient.name, &d.recipient.email)?;
    let boundary = format!("=_acp_{}", hex::encode(&info.key[16..28]));
    let attachment = &d.mail.attachment_name;
    let mut m = String::new();
    for (name, value) in [
        ("From", from.as_str()),
        ("To", to.as_str()),
        ("Subject", d.mail.subject.as_str()),
        ("Date", info.date.rfc5322().as_str()),
        ("Message-ID", message_id(&info.key, info.recipient_index).as_str()),
        ("MIME-Version", "1.0"),
        ("Content-Type", format!("multipart/mixed;\r\n boundary=\"{boundary}\"").as_str()),
    ] {
        m.push_str(&format!("{name}: {value}\r\n"));
    }
    m.push_str("\r\nDit bericht bestaat uit meerdere delen (MIME).\r\n");
    m.push_str(&format!("\r\n--{boundary}\r\n"));
    m.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    m.push_str("Content-Transfer-Encoding: quoted-printable\r\n");
    m.push_str("Content-Disposition: inline\r\n\r\n");
    m.push_str(&quoted_printable(letter_text));
    m.push_str(&format!("\r\n--{boundary}\r\n"));
    m.push_str(&format!("Content-Type: application/pdf;\r\n name=\"{attachment}\"\r\n"));
    m.push_str("Content-Transfer-Encoding: base64\r\n");
    m.push_str(&format!("Content-Disposition: attachment;\r\n filename=\"{attachment}\"\r\n\r\n"));
    m.push_str(&base64_lines(pdf));
    m.push_str(&format!("--{boundary}--\r\n"));
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_printable_keeps_lines_short_and_escapes() {
        let qp = quoted_printable("Patiënt = ja \nregel  \n".repeat(20).as_str());
        assert!(qp.split("\r\n").all(|l| l.len() <= 76), "{qp}");
        assert!(qp.contains("Pati=C3=ABnt =3D ja=20\r\n"));
        assert_eq!(quoted_printable("From here\n.\n"), "=46rom here\r\n=2E\r\n");
        let long = quoted_printable(&"ééééé".repeat(30));
        assert!(long.split("\r\n").all(|l| l.len() <= 76));
    }

    #[test]
    fn names_cannot_forge_headers() {
        assert_eq!(display_name("Dr. \"A\"\r\nBcc: x"), "\"Dr. \\\"A\\\"Bcc: x\"");
        assert!(display_name("Huisartsenpraktijk Ünal").starts_with("=?UTF-8?B?"));
        assert!(check_address("a@b.nl").is_ok());
        assert!(check_address("a@b.nl>\r\nBcc: c@d").is_err());
        assert!(check_address("geen adres").is_err());
    }
}
