//! Renderer: the ACP record as a Dutch Medeur Edifact interchange, the letter to the GP of route row 1.
//!
//! The message is MEDVRI (vrij bericht, which every GP system reads) unless the recipient's settings ask
//! for MEDSPE (specialistenbrief). Both carry the clinical letter of [`crate::render::letter`] as `TXT:n`
//! lines of at most 70 characters, so the Edifact text says exactly what the mail and the PDF say.
//!
//! ```text
//! UNB+UNOA:1+<sender mailbox>+<recipient mailbox>+YYMMDD:HHMM+<ref>'
//! UNH+<ref>+MEDVRI:1'  GGA  DET  [PID]  TXT:1..n  GGO  UNT+<count>+<ref>'
//! UNH+<ref>+MEDSPE:1'  ART  SPE  [ZKH]  [AFD]  [PID]  DET  TXT:1..n  UNT+<count>+<ref>'
//! UNZ+1+<ref>'
//! ```
//!
//! Segment layouts follow `../shared/spec/background/legacy-transports.md` §1.2-1.4. Choices made here:
//! - `PAD` (patient address) is left out: the uniform record carries no address.
//! - `PID` element 2 (sex) is empty: the record carries none. The name goes into the composite as
//!   family name : prefix : : : given names : initials (as both public Medeur examples fill it), and
//!   element 5 is `BSN` + the 9 digits. `PID` is left out when the record has no patient data at all.
//! - Dates: `DET` is the conversation date (form item 963), its time in Dutch local time
//!   (Europe/Amsterdam, summer time included; a date without a time is that date at 00:00); `UNB` is
//!   the preparation moment given in the settings (`SOURCE_DATE_EPOCH`, in Dutch local time), else the
//!   same date, so the same record gives the same bytes; only a record without any date is dated by
//!   the clock (the moment of rendering), never 1970. Unknown birth month/day are sent as `00`.
//! - The interchange and message reference is the same 12-digit number, derived from a SHA-256 of the
//!   record's canonical JSON, the message type and both mailbox ids: stable for a record and recipient,
//!   different per recipient. A deployment that keeps a counter passes its own reference.
//! - `GGA` / `GGO` carry name, department and institution; their address and phone elements are not
//!   sent (nothing configures them yet). In `ART` the recipient's name fills the family-name component
//!   of the doctor's name, since a deployment knows it as one string.
//! - Text UNOA cannot carry even transliterated (Arabic, Chinese, emoji) is sent as `?`, and the letter
//!   then opens with a note: how many characters, that they show as `?`, and that the original is with
//!   the sender (named, with the interchange reference). The intake warns about it on the route.
//! - Values are cut to their Medeur length (names a..40, department and institution a..70, specialty
//!   a..30) after UNOA transliteration; a doctor code that is not 6 digits is left out.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::edifact::{self, InterchangeHeader, LineBreak, Message, Segment, MAX_TEXT_LINE};
use crate::record::{AcpRecord, FhirDate, Name};
use crate::render::packaging::Moment;
use crate::render::{letter, record_json};

/// The embedded channel settings; `[edifact]` holds the defaults of [`EdifactSettings`].
const CHANNELS_TOML: &str = include_str!("../../mappings/channels.toml");
const SECTION: &str = "edifact";

/// The Medeur message that carries the letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MedeurMessage {
    /// Vrij bericht: the generic letter every GP system reads.
    Medvri,
    /// Specialistenbrief: for a recipient whose system takes it.
    Medspe,
}

impl MedeurMessage {
    /// The message type in `UNH`.
    pub fn code(self) -> &'static str {
        match self {
            MedeurMessage::Medvri => "MEDVRI",
            MedeurMessage::Medspe => "MEDSPE",
        }
    }
}

/// Who sends (GGA in MEDVRI; SPE, ZKH, AFD in MEDSPE). Empty strings are not sent.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderSettings {
    /// Empty: the professional who held the conversation (form item 8).
    pub name: String,
    pub department: String,
    pub institution: String,
    pub specialty: String,
    pub doctor_code: String,
}

/// Who receives (GGO in MEDVRI; ART in MEDSPE). Delivery goes by the UNB mailbox, not by these.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientSettings {
    pub name: String,
    pub doctor_type: String,
    pub doctor_code: String,
}

/// A moment to the minute, as the UNB and DET segments carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
}

impl Stamp {
    /// The date (and time) of a FHIR date: a time in Dutch local time, a missing month or day as the
    /// first, a missing time as 00:00.
    pub fn from_date(date: &FhirDate) -> Stamp {
        if date.has_time() {
            return Stamp::of(Moment::from_date(date).dutch());
        }
        let s = date.as_str();
        let part = |range: std::ops::Range<usize>| s.get(range).and_then(|p| p.parse::<u16>().ok());
        Stamp {
            year: part(0..4).unwrap_or(0),
            month: part(5..7).map_or(1, |m| m as u8),
            day: part(8..10).map_or(1, |d| d as u8),
            hour: 0,
            minute: 0,
        }
    }

    /// A Unix time (e.g. `SOURCE_DATE_EPOCH`) in Dutch local time.
    pub fn from_unix_seconds(secs: i64) -> Stamp {
        Stamp::of(Moment::from_unix_seconds(secs).dutch())
    }

    /// The moment of rendering, for an interchange that nothing else dates.
    pub fn now() -> Stamp {
        Stamp::of(Moment::now().dutch())
    }

    fn of(m: Moment) -> Stamp {
        Stamp { year: m.year.clamp(0, 9999) as u16, month: m.month, day: m.day, hour: m.hour, minute: m.minute }
    }

    fn yy(self) -> String {
        format!("{:02}", self.year % 100)
    }
    fn mm(self) -> String {
        format!("{:02}", self.month)
    }
    fn dd(self) -> String {
        format!("{:02}", self.day)
    }
    fn hhmm(self) -> [String; 2] {
        [format!("{:02}", self.hour), format!("{:02}", self.minute)]
    }
}

/// What a deployment configures for the Edifact channel; defaults in `mappings/channels.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdifactSettings {
    /// UNB sender id (mailbox number or AGB, as agreed with the partner).
    pub sender_mailbox: String,
    /// UNB recipient id: the GP's Edifact mailbox (API recipient `endpoints.edifact`).
    pub recipient_mailbox: String,
    pub message: MedeurMessage,
    pub line_break: LineBreak,
    pub sender: SenderSettings,
    pub recipient: RecipientSettings,
    /// The interchange reference to use instead of the one derived from content (an..14).
    #[serde(skip)]
    pub reference: Option<String>,
    /// The UNB preparation moment (e.g. from `SOURCE_DATE_EPOCH`); default: the conversation date.
    #[serde(skip)]
    pub prepared_at: Option<Stamp>,
}

/// A settings file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("edifact settings: not valid: {0}")]
    Toml(String),
    #[error("edifact settings: `{field}`: {message}")]
    Field { field: &'static str, message: String },
}

impl Default for EdifactSettings {
    /// The documented placeholders of `mappings/channels.toml`.
    fn default() -> Self {
        // The embedded file is part of the build and checked by the tests; it cannot depend on input.
        EdifactSettings::from_table(embedded_section())
            .unwrap_or_else(|e| panic!("mappings/channels.toml [edifact]: {e}"))
    }
}

fn embedded_section() -> toml::Table {
    let all: toml::Table = CHANNELS_TOML.parse().unwrap_or_else(|e| panic!("mappings/channels.toml: {e}"));
    match all.get(SECTION) {
        Some(toml::Value::Table(t)) => t.clone(),
        _ => panic!("mappings/channels.toml has no [{SECTION}] table"),
    }
}

/// Lays `over` onto `base`, key by key, descending into tables.
fn overlay(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => overlay(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

impl EdifactSettings {
    /// The defaults with the `[edifact]` section of a deployment's TOML laid over them: only the keys
    /// to change need to be given. Unknown keys and invalid values are errors.
    pub fn from_toml(text: &str) -> Result<EdifactSettings, SettingsError> {
        let given: toml::Table = text.parse().map_err(|e: toml::de::Error| SettingsError::Toml(e.to_string()))?;
        let mut table = embedded_section();
        match given.get(SECTION) {
            Some(toml::Value::Table(t)) => overlay(&mut table, t),
            Some(_) => return Err(SettingsError::Toml(format!("[{SECTION}] is not a table"))),
            None => {}
        }
        EdifactSettings::from_table(table)
    }

    fn from_table(table: toml::Table) -> Result<EdifactSettings, SettingsError> {
        let s: EdifactSettings =
            toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| SettingsError::Toml(e.to_string()))?;
        s.check()?;
        Ok(s)
    }

    /// Checks what the Medeur syntax requires of configured values.
    pub fn check(&self) -> Result<(), SettingsError> {
        for (field, id) in [("sender_mailbox", &self.sender_mailbox), ("recipient_mailbox", &self.recipient_mailbox)] {
            if id.is_empty() || id.len() > 35 || !id.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(SettingsError::Field {
                    field,
                    message: format!("{id:?} is not a mailbox id (1 to 35 printable ASCII characters)"),
                });
            }
        }
        for (field, code) in
            [("sender.doctor_code", &self.sender.doctor_code), ("recipient.doctor_code", &self.recipient.doctor_code)]
        {
            if !code.is_empty() && !is_doctor_code(code) {
                return Err(SettingsError::Field {
                    field,
                    message: format!("{code:?} is not a Medeur doctor code (6 digits)"),
                });
            }
        }
        if self.recipient.doctor_type.chars().count() > 1 {
            return Err(SettingsError::Field { field: "recipient.doctor_type", message: "is one letter".into() });
        }
        Ok(())
    }
}

fn is_doctor_code(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

/// A value in UNOA, cut to its Medeur maximum length.
fn fit(value: &str, max: usize) -> String {
    let mut s = edifact::to_unoa(value).trim().to_owned();
    s.truncate(max);
    s.trim_end().to_owned()
}

fn non_empty(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

/// "G.M." from "Grietje Maria".
fn initials(given: &str) -> String {
    given.split_whitespace().filter_map(|g| g.chars().next()).flat_map(|c| c.to_uppercase().chain(['.'])).collect()
}

/// The interchange reference: settings, or 12 digits of a hash of what the interchange is about.
fn reference(record: &AcpRecord, settings: &EdifactSettings) -> String {
    if let Some(r) = settings.reference.as_deref().and_then(non_empty) {
        return fit(r, 14);
    }
    let mut h = Sha256::new();
    for part in [
        record_json::render(record).as_str(),
        settings.message.code(),
        &settings.sender_mailbox,
        &settings.recipient_mailbox,
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    format!("{:012}", u64::from_be_bytes(first) % 1_000_000_000_000)
}

/// The sender's person name: configured, else who held the conversation, else the institution or
/// mailbox, so that the required first element of GGA / SPE is never empty.
fn sender_name(record: &AcpRecord, settings: &EdifactSettings) -> String {
    let held_by = record.conducted_by.as_ref().map(|p| p.name.display()).unwrap_or_default();
    let name = [settings.sender.name.as_str(), &held_by, &settings.sender.institution, &settings.sender_mailbox]
        .into_iter()
        .find_map(non_empty)
        .unwrap_or_default();
    fit(name, 40)
}

/// `PID`: birth date, name composite, `BSN` + 9 digits; `None` when the record has no patient data.
fn pid(record: &AcpRecord) -> Option<Segment> {
    let p = &record.patient;
    if p.bsn.is_none() && p.birth_date.is_none() && p.name.is_empty() {
        return None;
    }
    let birth = p.birth_date.as_ref().map(|d| {
        let s = d.as_str();
        let part = |r: std::ops::Range<usize>| s.get(r).unwrap_or("00").to_owned();
        [part(0..4), part(5..7), part(8..10)]
    });
    let Name { given, prefix, family } = &p.name;
    let given = given.as_deref().unwrap_or_default();
    let name = [
        family.as_deref().unwrap_or_default().to_owned(),
        prefix.as_deref().unwrap_or_default().to_owned(),
        String::new(),
        String::new(),
        given.to_owned(),
        initials(&edifact::to_unoa(given)),
    ];
    Some(
        Segment::new("PID")
            .composite(birth.unwrap_or_default())
            .simple("")
            .composite(name)
            .simple("")
            .simple(p.bsn.as_ref().map(|b| format!("BSN{b}")).unwrap_or_default()),
    )
}

fn det(stamp: Stamp) -> Segment {
    Segment::new("DET").composite([stamp.yy(), stamp.mm(), stamp.dd()]).composite(stamp.hhmm())
}

/// The characters of the record's letter that UNOA cannot carry (sent as `?`): the intake warns
/// about them on an Edifact route, and the letter opens with [`transliteration_note`].
pub fn lost_characters(record: &AcpRecord) -> Vec<char> {
    edifact::lost_in_unoa(&letter::render(record))
}

/// The opening note of a stored Edifact interchange, when its letter has one (as the route detail
/// shows it after the intake's answer is gone): the note's text, in one line.
pub fn transliteration_note_of(interchange: &str) -> Option<String> {
    let segments = edifact::read(interchange).ok()?;
    let mut lines = segments.iter().filter(|s| s.tag == "TXT").map(|s| s.value(0, 0).unwrap_or_default().trim());
    let first = lines.next().filter(|l| l.starts_with(NOTE_START))?;
    let rest = lines.take_while(|l| !l.is_empty());
    Some(std::iter::once(first).chain(rest).collect::<Vec<_>>().join(" "))
}

/// How the note starts (and nothing else in a letter does: the letter starts with its title).
const NOTE_START: &str = "LET OP: ";

/// The paragraph that opens an Edifact letter whose text lost characters: that it did, how they show,
/// and where the GP gets the original (the sender, by the interchange reference the GP's system
/// shows with the message).
fn transliteration_note(lost: usize, sender: &str, reference: &str) -> String {
    format!(
        "{NOTE_START}{lost} verschillende tekens in deze brief (bijvoorbeeld Arabisch, Chinees of emoji) \
         kan Edifact niet overbrengen; elk staat hieronder als '?'. De oorspronkelijke tekst staat in \
         de overdracht bij de afzender ({sender}): vraag die op met Edifact-referentie {reference}, of \
         lees de PDF-brief of beveiligde e-mail als u die ook ontving.\n\n"
    )
}

/// The letter as `TXT:n` lines of at most 70 characters. A blank line of the letter is sent as one
/// space: a `TXT` without text is an empty segment, which readers may refuse. A letter with text UNOA
/// cannot carry opens with a note that says so (issue 11: never silently).
fn text_lines(record: &AcpRecord, settings: &EdifactSettings, reference: &str) -> Vec<Segment> {
    let mut letter = letter::render(record);
    let lost = edifact::lost_in_unoa(&letter);
    if !lost.is_empty() {
        let sender = [sender_name(record, settings), fit(&settings.sender.institution, 70)]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(", ");
        letter.insert_str(0, &transliteration_note(lost.len(), &sender, reference));
    }
    let lines =
        edifact::wrap(letter.trim_end(), MAX_TEXT_LINE)
            .into_iter()
            .map(|l| if l.is_empty() { " ".to_owned() } else { l });
    edifact::counted_lines("TXT", lines)
}

/// The message body (between UNH and UNT).
fn body(record: &AcpRecord, settings: &EdifactSettings, conversation: Stamp, reference: &str) -> Vec<Segment> {
    let sender = sender_name(record, settings);
    let code = |c: &str| if is_doctor_code(c) { c.to_owned() } else { String::new() };
    let mut out = Vec::new();
    match settings.message {
        MedeurMessage::Medvri => {
            out.push(
                Segment::new("GGA")
                    .simple(sender)
                    .simple(fit(&settings.sender.department, 70))
                    .simple(fit(&settings.sender.institution, 70)),
            );
            out.push(det(conversation));
            out.extend(pid(record));
            out.extend(text_lines(record, settings, reference));
            out.push(Segment::new("GGO").simple(fit(&settings.recipient.name, 40)));
        }
        MedeurMessage::Medspe => {
            out.push(
                Segment::new("ART")
                    .simple(fit(&settings.recipient.doctor_type, 1))
                    .simple(code(&settings.recipient.doctor_code))
                    .composite([fit(&settings.recipient.name, 40)]),
            );
            out.push(
                Segment::new("SPE")
                    .simple(fit(&settings.sender.specialty, 30))
                    .simple(sender)
                    .simple(code(&settings.sender.doctor_code)),
            );
            if let Some(i) = non_empty(&settings.sender.institution) {
                out.push(Segment::new("ZKH").simple(fit(i, 70)));
            }
            if let Some(d) = non_empty(&settings.sender.department) {
                out.push(Segment::new("AFD").simple(fit(d, 70)));
            }
            out.extend(pid(record));
            out.push(det(conversation));
            out.extend(text_lines(record, settings, reference));
        }
    }
    out
}

/// The interchange as segments, UNB to UNZ.
pub fn segments(record: &AcpRecord, settings: &EdifactSettings) -> Vec<Segment> {
    let reference = reference(record, settings);
    let conversation = record.date_filled_in.as_ref().map(Stamp::from_date);
    let prepared = settings.prepared_at.or(conversation).unwrap_or_else(Stamp::now);
    let header = InterchangeHeader {
        sender: settings.sender_mailbox.clone(),
        recipient: settings.recipient_mailbox.clone(),
        date: format!("{}{}{}", prepared.yy(), prepared.mm(), prepared.dd()),
        time: prepared.hhmm().concat(),
        reference: reference.clone(),
    };
    let body = body(record, settings, conversation.unwrap_or(prepared), &reference);
    let message = Message { reference, message_type: settings.message.code().to_owned(), version: "1".to_owned(), body };
    edifact::interchange(&header, &[message])
}

/// The interchange as text, ready for the recipient's mailbox.
pub fn render(record: &AcpRecord, settings: &EdifactSettings) -> String {
    edifact::write(&segments(record, settings), settings.line_break)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_are_the_documented_placeholders() {
        let s = EdifactSettings::default();
        assert_eq!(s.message, MedeurMessage::Medvri);
        assert_eq!(s.line_break, LineBreak::Crlf);
        assert_eq!(s.recipient_mailbox, "NOT-CONFIGURED");
    }

    #[test]
    fn overrides_change_only_what_they_name_and_are_checked() {
        let s = EdifactSettings::from_toml(
            "[edifact]\nmessage = \"medspe\"\n[edifact.recipient]\ndoctor_code = \"123456\"\n",
        )
        .unwrap();
        assert_eq!(s.message, MedeurMessage::Medspe);
        assert_eq!(s.recipient.doctor_code, "123456");
        assert_eq!(s.sender_mailbox, EdifactSettings::default().sender_mailbox);
        let bad = EdifactSettings::from_toml("[edifact.recipient]\ndoctor_code = \"12345678\"\n").unwrap_err();
        assert!(bad.to_string().contains("recipient.doctor_code"), "{bad}");
        assert!(EdifactSettings::from_toml("[edifact]\nmesage = \"medspe\"\n").is_err());
    }

    #[test]
    fn stamps_from_dates_and_unix_time() {
        // Times in Dutch local time: 16:27 UTC on 1 October is 18:27 summer time.
        let d = FhirDate::parse("2020-10-01T16:27:36.364Z").unwrap();
        assert_eq!(Stamp::from_date(&d), Stamp { year: 2020, month: 10, day: 1, hour: 18, minute: 27 });
        let y = FhirDate::parse("2024").unwrap();
        assert_eq!(Stamp::from_date(&y), Stamp { year: 2024, month: 1, day: 1, hour: 0, minute: 0 });
        let nye = FhirDate::parse("2026-12-31T23:30:00Z").unwrap();
        assert_eq!(Stamp::from_date(&nye), Stamp { year: 2027, month: 1, day: 1, hour: 0, minute: 30 });
        // 2024-02-29T13:45:00Z is 14:45 winter time.
        assert_eq!(
            Stamp::from_unix_seconds(1_709_214_300),
            Stamp { year: 2024, month: 2, day: 29, hour: 14, minute: 45 }
        );
        assert!(Stamp::now().year >= 2026);
    }

    #[test]
    fn initials_from_given_names() {
        assert_eq!(initials("Grietje maria"), "G.M.");
        assert_eq!(initials(""), "");
    }
}
