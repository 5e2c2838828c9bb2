//! What the channel packagings (PDF letter, secure mail, ZorgDomein package, dossier, MDO item) share:
//! who sends and who receives as the letter shows them, the moment a message is dated, and the stable
//! identity of one handover to one recipient from which Message-IDs and document ids are derived.
//!
//! A message is dated by `SOURCE_DATE_EPOCH` when the caller passes it, else by the record's
//! conversation date, so the same input gives the same bytes; only a record without a date, rendered
//! without `SOURCE_DATE_EPOCH` (a partial record in `translate`), is dated by the clock, the moment of
//! rendering: the date a reader needs on a letter is when it was written, never a made-up 1970.
//! What people read (the letter's and the PDF's dates, Edifact's DET/UNB) is in Dutch local time
//! (Europe/Amsterdam, summer time included); machine-readable instants keep their offset.
//! Placeholder names and addresses come from `mappings/packaging.toml`.

use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::record::{AcpRecord, FhirDate};
use crate::render::record_json;
use crate::routing::Channel;

const PACKAGING_TOML: &str = include_str!("../../mappings/packaging.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderDefaults {
    pub organization: String,
    pub address: Vec<String>,
    pub email: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientDefaults {
    pub name: String,
    pub address: Vec<String>,
    pub email: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PdfTexts {
    pub title: String,
    pub header: String,
    pub footer: String,
    pub language: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailTexts {
    pub subject: String,
    pub message_id_domain: String,
    pub attachment_name: String,
}

/// `mappings/packaging.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Packaging {
    pub sender: SenderDefaults,
    pub recipient: RecipientDefaults,
    pub pdf: PdfTexts,
    pub mail: MailTexts,
}

/// The embedded table, parsed once; a defect in it fails every test, never a record.
pub fn defaults() -> &'static Packaging {
    static P: OnceLock<Packaging> = OnceLock::new();
    P.get_or_init(|| toml::from_str(PACKAGING_TOML).unwrap_or_else(|e| panic!("mappings/packaging.toml: {e}")))
}

/// One side of a handover as the packagings show it: taken from the API envelope's party object
/// (`{"role", "name", "organization": {"name", "agb"|"ura"}, "practitioner": {...}, "endpoints": {...}}`,
/// interface.md), with the placeholders of `mappings/packaging.toml` where it is silent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Party {
    pub role: Option<String>,
    /// The person (a recipient's `name`, a sender's `practitioner.name`).
    pub person: Option<String>,
    pub organization: Option<String>,
    /// AGB code of the organisation (or of the practitioner when the organisation has none).
    pub agb: Option<String>,
    pub ura: Option<String>,
    /// Postal address lines, when the envelope carries them (`address`: a string or a list of lines).
    pub address: Vec<String>,
    pub email: Option<String>,
}

fn text(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

impl Party {
    /// Reads an envelope party; anything missing stays `None` (the caller decides the placeholder).
    pub fn from_json(v: &Value) -> Party {
        let address = match v.get("address") {
            Some(Value::String(s)) => s.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect(),
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        Party {
            role: text(v, "/role"),
            person: text(v, "/name").or_else(|| text(v, "/practitioner/name")),
            organization: text(v, "/organization/name"),
            agb: text(v, "/organization/agb").or_else(|| text(v, "/practitioner/agb")),
            ura: text(v, "/organization/ura"),
            address,
            email: text(v, "/endpoints/email"),
        }
    }

    /// The lines of an address block: person, organisation, address (placeholder when none).
    pub fn block(&self, placeholder_name: &str, placeholder_address: &[String]) -> Vec<String> {
        let mut lines: Vec<String> = [self.person.clone(), self.organization.clone()].into_iter().flatten().collect();
        if lines.is_empty() {
            lines.push(placeholder_name.to_owned());
        }
        if self.address.is_empty() {
            lines.extend(placeholder_address.iter().cloned());
        } else {
            lines.extend(self.address.iter().cloned());
        }
        lines
    }
}

/// One route's message as the packagings see it: both parties, the moment it is dated, the route key
/// its ids derive from, and the recipient's position (for the Message-ID).
#[derive(Debug, Clone)]
pub struct Route<'a> {
    pub sender: &'a Party,
    pub recipient: &'a Party,
    pub date: Moment,
    pub key: [u8; 32],
    pub recipient_index: usize,
}

/// Which handover and which route a message belongs to, as far as rendering needs to know.
///
/// The service creates route ids only after rendering (in `submit`, after `prepare`), so the route is
/// identified by the recipient's position in the request instead; together with the record and both
/// parties that is stable for a handover and different for each of its routes.
#[derive(Debug, Clone, Copy)]
pub struct RouteContext<'a> {
    /// The envelope's sender object (`Value::Null` when there is none, as in `translate`).
    pub sender: &'a Value,
    /// The recipient's position in the envelope's `recipients` list (0 in `translate`).
    pub recipient_index: usize,
    /// `SOURCE_DATE_EPOCH`, when the caller takes its times from there (the CLI); otherwise the record
    /// dates the message.
    pub source_date_epoch: Option<i64>,
}

impl RouteContext<'static> {
    /// No envelope: `translate` without sender details.
    pub const NONE: RouteContext<'static> =
        RouteContext { sender: &Value::Null, recipient_index: 0, source_date_epoch: None };
}

/// A moment to the second with its UTC offset in minutes, as the headers and FHIR instants need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    pub year: i64,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub offset_minutes: i32,
}

impl Moment {
    pub const EPOCH: Moment = Moment { year: 1970, month: 1, day: 1, hour: 0, minute: 0, second: 0, offset_minutes: 0 };

    pub fn from_unix_seconds(secs: i64) -> Moment {
        let (y, m, d) = crate::record::date::civil_from_days(secs.div_euclid(86_400));
        let rem = secs.rem_euclid(86_400);
        Moment {
            year: y,
            month: m as u8,
            day: d as u8,
            hour: (rem / 3600) as u8,
            minute: (rem % 3600 / 60) as u8,
            second: (rem % 60) as u8,
            offset_minutes: 0,
        }
    }

    /// The moment a FHIR date names: as written, at its own offset; a missing month or day counts as
    /// the first, a missing time as midnight UTC.
    pub fn from_date(d: &FhirDate) -> Moment {
        let s = d.as_str();
        let n = |r: std::ops::Range<usize>| s.get(r).and_then(|p| p.parse::<i64>().ok());
        let mut m = Moment {
            year: n(0..4).unwrap_or(1970),
            month: n(5..7).unwrap_or(1) as u8,
            day: n(8..10).unwrap_or(1) as u8,
            ..Moment::EPOCH
        };
        if d.has_time() {
            m.hour = n(11..13).unwrap_or(0) as u8;
            m.minute = n(14..16).unwrap_or(0) as u8;
            m.second = n(17..19).unwrap_or(0) as u8;
            // The zone follows the seconds (and any fraction): Z, +hh:mm or -hh:mm.
            let zone = s.get(19..).unwrap_or("").trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
            if let (Some(sign), Some(h), Some(mi)) = (zone.chars().next(), zone.get(1..3), zone.get(4..6)) {
                let mins = h.parse::<i32>().unwrap_or(0) * 60 + mi.parse::<i32>().unwrap_or(0);
                m.offset_minutes = if sign == '-' { -mins } else { mins };
            }
        }
        m
    }

    /// `SOURCE_DATE_EPOCH` if given, else the conversation date, else the moment of rendering (the
    /// only place the clock is read: a letter needs the day it was written, not 1970).
    pub fn for_message(record: &AcpRecord, source_date_epoch: Option<i64>) -> Moment {
        match (source_date_epoch, &record.date_filled_in) {
            (Some(secs), _) => Moment::from_unix_seconds(secs),
            (None, Some(d)) => Moment::from_date(d),
            (None, None) => Moment::now(),
        }
    }

    /// The wall clock, to the second, in UTC. Only for a message that nothing else dates.
    pub fn now() -> Moment {
        Moment::from_unix_seconds(jiff::Timestamp::now().as_second())
    }

    /// The same instant in Dutch local time (Europe/Amsterdam: CET, CEST in summer), with that offset.
    pub fn dutch(&self) -> Moment {
        let local = || {
            let zoned = jiff::Timestamp::from_second(self.unix_seconds()).ok()?.to_zoned(crate::record::today::dutch_zone()?.clone());
            Some(Moment {
                year: i64::from(zoned.year()),
                month: zoned.month() as u8,
                day: zoned.day() as u8,
                hour: zoned.hour() as u8,
                minute: zoned.minute() as u8,
                second: zoned.second() as u8,
                offset_minutes: zoned.offset().seconds() / 60,
            })
        };
        // Out of jiff's range (years beyond ±9999) the moment is printed as it is.
        local().unwrap_or(*self)
    }

    /// Seconds since 1970-01-01T00:00:00Z.
    pub fn unix_seconds(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
            - i64::from(self.offset_minutes) * 60
    }

    fn offset(&self, colon: bool) -> String {
        let sign = if self.offset_minutes < 0 { '-' } else { '+' };
        let a = self.offset_minutes.unsigned_abs();
        if colon {
            format!("{sign}{:02}:{:02}", a / 60, a % 60)
        } else {
            format!("{sign}{:02}{:02}", a / 60, a % 60)
        }
    }

    /// A FHIR `instant` / `dateTime` with seconds and zone.
    pub fn fhir_instant(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}",
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.offset(true)
        )
    }

    /// The RFC 5322 `Date:` value, e.g. `Mon, 02 Jun 2025 10:30:00 +0200`.
    pub fn rfc5322(&self) -> String {
        const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]; // 1970-01-01 was a Thursday
        const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        let weekday = DAYS[days_from_civil(self.year, self.month, self.day).rem_euclid(7) as usize];
        format!(
            "{weekday}, {:02} {} {:04} {:02}:{:02}:{:02} {}",
            self.day,
            MONTHS[(self.month.clamp(1, 12) - 1) as usize],
            self.year,
            self.hour,
            self.minute,
            self.second,
            self.offset(false)
        )
    }

    /// dd-mm-jjjj, as the letter writes dates, of the Dutch local date.
    pub fn dutch_date(&self) -> String {
        let m = self.dutch();
        format!("{:02}-{:02}-{:04}", m.day, m.month, m.year)
    }

    /// dd-mm-jjjj hh:mm in Dutch local time, for a value that has a time.
    pub fn dutch_date_time(&self) -> String {
        let m = self.dutch();
        format!("{:02}-{:02}-{:04} {:02}:{:02}", m.day, m.month, m.year, m.hour, m.minute)
    }
}


/// Days since 1970-01-01 of a civil date (the inverse of `record::date::civil_from_days`).
fn days_from_civil(y: i64, m: u8, d: u8) -> i64 {
    let (m, d) = (i64::from(m.clamp(1, 12)), i64::from(d.clamp(1, 31)));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The identity of one route's message: SHA-256 over the record's canonical JSON, both envelope
/// parties, the recipient's position and the channel. The same handover rendered again gives the same
/// key; another recipient, channel or record gives another.
pub fn route_key(record: &AcpRecord, recipient: &Value, ctx: &RouteContext<'_>, channel: Channel) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [
        record_json::render(record),
        ctx.sender.to_string(),
        recipient.to_string(),
        ctx.recipient_index.to_string(),
        channel.to_string(),
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    h.finalize().into()
}

/// A UUID (version 8, RFC 9562, as the FHIR renderer makes its ids) from a key and a role, so each
/// resource a packaging adds has its own stable id.
pub fn uuid(key: &[u8; 32], role: &str) -> String {
    let mut h = Sha256::new();
    h.update(key);
    h.update(role.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &x[0..8], &x[8..12], &x[12..16], &x[16..20], &x[20..32])
}

/// The FHIR side the document packagings share: `mappings/fhir-documents.toml`, the structured ACP
/// resources as Bundle entries, and the parties as Organization resources.
pub mod documents {
    use std::sync::OnceLock;

    use serde::Deserialize;

    use super::Party;
    use crate::fhir::model as fhir;
    use crate::record::AcpRecord;
    use crate::render::fhir::{bundle, BundleKind};

    const DOCUMENTS_TOML: &str = include_str!("../../mappings/fhir-documents.toml");

    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Code {
        pub system: String,
        pub code: String,
        pub display: String,
    }

    impl Code {
        pub fn concept(&self) -> fhir::CodeableConcept {
            fhir::CodeableConcept {
                coding: vec![fhir::Coding {
                    system: Some(self.system.clone()),
                    code: Some(self.code.clone()),
                    display: Some(self.display.clone()),
                    ..Default::default()
                }],
                text: None,
            }
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Identifiers {
        pub bsn: String,
        pub agb: String,
        pub ura: String,
        pub document: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Zorgdomein {
        pub composition_title: String,
        pub letter_title: String,
        pub service_request_status: String,
        pub service_request_intent: String,
        pub service_request_text: String,
        pub composition_type: Code,
        pub service_request_code: Code,
        pub reason: Code,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Section {
        pub title: String,
        /// Resource types; `*` takes whatever no earlier section took.
        pub resources: Vec<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Dossier {
        pub composition_title: String,
        pub letter_section: String,
        pub composition_type: Code,
        pub section: Vec<Section>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Worklist {
        pub status: String,
        pub intent: String,
        pub priority: String,
        pub description: String,
        pub letter_input: String,
        pub code: Code,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Documents {
        pub identifiers: Identifiers,
        pub zorgdomein: Zorgdomein,
        pub dossier: Dossier,
        pub worklist: Worklist,
    }

    /// The embedded table, parsed once.
    pub fn tables() -> &'static Documents {
        static D: OnceLock<Documents> = OnceLock::new();
        D.get_or_init(|| toml::from_str(DOCUMENTS_TOML).unwrap_or_else(|e| panic!("mappings/fhir-documents.toml: {e}")))
    }

    /// The structured ACP resources of the record (the IKNL PZP collection of `render::fhir`), as
    /// entries to carry in a document, and the `fullUrl` of its Patient.
    pub fn acp_entries(record: &AcpRecord) -> (Vec<fhir::BundleEntry>, Option<String>) {
        let entries = bundle(record, BundleKind::Collection).entry;
        let patient = entries
            .iter()
            .find(|e| matches!(e.resource, Some(fhir::Resource::Patient(_))))
            .and_then(|e| e.full_url.clone());
        (entries, patient)
    }

    fn identifier(system: &str, value: &str) -> fhir::Identifier {
        fhir::Identifier { system: Some(system.to_owned()), value: Some(value.to_owned()), ..Default::default() }
    }

    /// A party's organisation as a resource: its name (or the person, or the placeholder) and its AGB
    /// and URA codes when the envelope gives them.
    pub fn organization(party: &Party, id: &str, placeholder: &str) -> fhir::Organization {
        let t = tables();
        let mut ids = Vec::new();
        if let Some(agb) = &party.agb {
            ids.push(identifier(&t.identifiers.agb, agb));
        }
        if let Some(ura) = &party.ura {
            ids.push(identifier(&t.identifiers.ura, ura));
        }
        fhir::Organization {
            id: Some(id.to_owned()),
            identifier: ids,
            name: Some(
                party.organization.clone().or_else(|| party.person.clone()).unwrap_or_else(|| placeholder.to_owned()),
            ),
            ..Default::default()
        }
    }

    /// An entry whose `fullUrl` is `urn:uuid:<id>`.
    pub fn entry(id: &str, resource: impl Into<fhir::Resource>) -> fhir::BundleEntry {
        fhir::BundleEntry {
            full_url: Some(format!("urn:uuid:{id}")),
            resource: Some(resource.into()),
            ..Default::default()
        }
    }

    /// The identifier of a document or its Composition: its own `urn:uuid` (FHIR bdl-9).
    pub fn document_identifier(id: &str) -> fhir::Identifier {
        fhir::Identifier {
            system: Some(tables().identifiers.document.clone()),
            value: Some(format!("urn:uuid:{id}")),
            ..Default::default()
        }
    }

    /// A `document` Bundle of these entries (the Composition first), stamped with `timestamp`.
    pub fn document(id: &str, timestamp: String, entries: Vec<fhir::BundleEntry>) -> fhir::Bundle {
        fhir::Bundle {
            id: Some(id.to_owned()),
            identifier: Some(document_identifier(id)),
            r#type: Some(fhir::BundleType::Document),
            timestamp: Some(timestamp),
            entry: entries,
            ..Default::default()
        }
    }

    /// A reference to an entry by its `fullUrl`.
    pub fn reference(full_url: &str, display: Option<String>) -> fhir::Reference {
        fhir::Reference { reference: Some(full_url.to_owned()), display, ..Default::default() }
    }

    /// The letter as XHTML narrative (one `<pre>`, so line breaks and indentation read as in the letter).
    pub fn narrative(letter: &str) -> fhir::Narrative {
        // XML 1.0 has no place for control characters other than line breaks and tabs.
        let clean: String = letter.chars().filter(|c| !c.is_control() || *c == '\n' || *c == '\t').collect();
        let escaped = clean.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        fhir::Narrative {
            status: Some("generated".into()),
            div: Some(format!("<div xmlns=\"http://www.w3.org/1999/xhtml\"><pre>{escaped}</pre></div>")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_table_loads() {
        assert!(defaults().mail.message_id_domain.ends_with(".invalid"));
    }

    #[test]
    fn dutch_local_time_follows_summer_time_and_the_date_line() {
        let at = |s: &str| Moment::from_date(&FhirDate::parse(s).unwrap()).dutch_date_time();
        // The night summer time starts (02:00 CET becomes 03:00 CEST) and ends (03:00 CEST becomes 02:00 CET).
        assert_eq!(at("2026-03-29T00:30:00Z"), "29-03-2026 01:30");
        assert_eq!(at("2026-03-29T01:30:00Z"), "29-03-2026 03:30");
        assert_eq!(at("2026-10-25T00:30:00Z"), "25-10-2026 02:30");
        assert_eq!(at("2026-10-25T01:30:00Z"), "25-10-2026 02:30");
        // New Year's Eve in UTC is already New Year's Day in the Netherlands.
        assert_eq!(at("2026-12-31T23:30:00Z"), "01-01-2027 00:30");
        assert_eq!(Moment::from_date(&FhirDate::parse("2026-12-31T23:30:00Z").unwrap()).dutch_date(), "01-01-2027");
        // A date without a time is that date.
        assert_eq!(Moment::from_date(&FhirDate::parse("2026-12-31").unwrap()).dutch_date(), "31-12-2026");
    }

    #[test]
    fn a_message_without_any_date_is_dated_now_not_1970() {
        let m = Moment::for_message(&AcpRecord::default(), None);
        assert!(m.year >= 2026, "{m:?}");
    }

    #[test]
    fn dates_and_weekdays() {
        let m = Moment::from_date(&FhirDate::parse("2025-06-02T10:30:00+02:00").unwrap());
        assert_eq!(m.rfc5322(), "Mon, 02 Jun 2025 10:30:00 +0200");
        assert_eq!(m.fhir_instant(), "2025-06-02T10:30:00+02:00");
        assert_eq!(Moment::from_unix_seconds(m.unix_seconds()).fhir_instant(), "2025-06-02T08:30:00+00:00");
        assert_eq!(Moment::from_unix_seconds(1_709_214_300).unix_seconds(), 1_709_214_300);
        assert_eq!(Moment::from_unix_seconds(0).rfc5322(), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(Moment::from_unix_seconds(1_709_214_300).rfc5322(), "Thu, 29 Feb 2024 13:45:00 +0000");
        let d = Moment::from_date(&FhirDate::parse("2024-12-31").unwrap());
        assert_eq!(d.rfc5322(), "Tue, 31 Dec 2024 00:00:00 +0000");
        let z = Moment::from_date(&FhirDate::parse("2020-10-01T16:27:36.364-03:30").unwrap());
        assert_eq!(z.fhir_instant(), "2020-10-01T16:27:36-03:30");
    }

    #[test]
    fn ids_are_uuids() {
        let u = uuid(&[7u8; 32], "x");
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "8");
        assert_ne!(u, uuid(&[7u8; 32], "y"));
    }
}
