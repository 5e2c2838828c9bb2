//! Renderer: the clinical letter as an A4 PDF for the print queue (the post channel, route rows 2 and
//! 7), and the attachment of the secure mail and the ZorgDomein package.
//!
//! The text is exactly the letter of [`crate::render::letter`], set in DejaVu Sans (embedded as a
//! subset, so Dutch accents and every other character the font has print as written) under a sender
//! block, the recipient block at the window position of a Dutch window envelope (left window,
//! 25 mm from the left, 50 mm from the top), a date and subject line. Every page carries the patient's
//! name and birth date in a running header and "Pagina n van m" in the footer, so a loose page still
//! says whose it is and that pages may be missing.
//!
//! Choices:
//! - **PDF/A-2u** (archival, every glyph mapped to Unicode so the text can be extracted and searched)
//!   through krilla's validator. A character DejaVu Sans lacks (an emoji, CJK) is printed as its code
//!   point, `[U+1F642]`, not as an empty box that hides it. Should the validator still refuse a letter,
//!   it is written as a plain PDF 1.7 with the same text and layout: the letter must print.
//! - **Keep-together**: a letter item (a line and the lines indented under it: a treatment limit with its
//!   explanation and date) is never split over two pages unless it is longer than a page, so a decision
//!   and its restriction are read together and `pdftotext` finds a restriction in one piece.
//! - Lines wrap at word boundaries (a word wider than the line is cut); wrapped lines keep their item's
//!   indentation plus two spaces. Tabs become spaces, runs of spaces inside a line one space (the
//!   whitespace a reader cannot see anyway); no other character is changed.
//! - **Deterministic**: no clock. The document date and the PDF's creation date are the
//!   [`Moment`] the caller gives (SOURCE_DATE_EPOCH or the conversation date); the document id is derived
//!   from the route key, so the same handover gives the same bytes.

use std::sync::OnceLock;

use krilla::configure::{Archival, ConfigurationBuilder};
use krilla::geom::Point;
use krilla::metadata::{DateTime, Metadata};
use krilla::page::PageSettings;
use krilla::text::{Font, TextDirection};
use krilla::{Document, SerializeSettings};
use skrifa::instance::{LocationRef, Size};
use skrifa::{FontRef, MetadataProvider};

use crate::record::AcpRecord;
use crate::render::letter;
use crate::render::packaging::{defaults, Moment, Party};

/// DejaVu Sans 2.37 (Debian fonts-dejavu-core), Bitstream Vera licence: `assets/fonts/LICENSE-DejaVu.txt`.
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// A4 in points.
const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const MM: f32 = 72.0 / 25.4;
const MARGIN_LEFT: f32 = 25.0 * MM;
const MARGIN_RIGHT: f32 = 20.0 * MM;
const BODY_SIZE: f32 = 10.0;
const LEADING: f32 = 13.5;
const SMALL: f32 = 8.5;
/// Baseline of the running header and of the footer.
const HEADER_Y: f32 = 14.0 * MM;
const FOOTER_Y: f32 = PAGE_H - 12.0 * MM;
/// The body's first baseline on pages after the first, and its last.
const BODY_TOP: f32 = 24.0 * MM;
const BODY_BOTTOM: f32 = PAGE_H - 22.0 * MM;
/// Window envelope: the recipient block's first baseline.
const WINDOW_Y: f32 = 50.0 * MM;

/// Everything the letter's page furniture shows besides the letter text.
#[derive(Debug, Clone)]
pub struct PdfLetter<'a> {
    pub sender: &'a Party,
    pub recipient: &'a Party,
    pub date: Moment,
    /// Becomes the PDF's document id (any stable string; the route key in hex).
    pub document_id: String,
}

fn font() -> &'static Font {
    static F: OnceLock<Font> = OnceLock::new();
    F.get_or_init(|| Font::new(FONT_BYTES.into(), 0).expect("the embedded DejaVu Sans parses"))
}

/// Advance widths, for wrapping; krilla shapes with kerning, which only narrows a line.
struct Metrics {
    font: FontRef<'static>,
}

impl Metrics {
    fn get() -> &'static Metrics {
        static M: OnceLock<Metrics> = OnceLock::new();
        M.get_or_init(|| Metrics { font: FontRef::new(FONT_BYTES).expect("the embedded DejaVu Sans parses") })
    }

    fn width(&self, text: &str, size: f32) -> f32 {
        let charmap = self.font.charmap();
        let gm = self.font.glyph_metrics(Size::new(size), LocationRef::default());
        text.chars()
            .map(|c| {
                let g = charmap.map(c).unwrap_or_default();
                gm.advance_width(g).unwrap_or(size * 0.6)
            })
            .sum()
    }

    /// Whether the font has a glyph for every character (PDF/A forbids `.notdef`).
    fn covers(&self, text: &str) -> bool {
        let charmap = self.font.charmap();
        text.chars().all(|c| c.is_control() || charmap.map(c).is_some())
    }

    /// The text with every character the font cannot draw written as its code point, `[U+1F642]`:
    /// an empty box would hide what the record says, the code point keeps it recoverable. Tabs become
    /// four spaces; other control characters, which print as nothing, are dropped.
    fn printable(&self, text: &str) -> String {
        let charmap = self.font.charmap();
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                '\t' => out.push_str("    "),
                c if c.is_control() => {}
                c if charmap.map(c).is_some() => out.push(c),
                c => out.push_str(&format!("[U+{:04X}]", c as u32)),
            }
        }
        out
    }
}

/// One printed line: its x offset (from the indentation) and its text.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    indent: f32,
    text: String,
}

/// Wraps one line of the letter to the body width.
fn wrap(source: &str, width: f32) -> Vec<Line> {
    let m = Metrics::get();
    let lead = source.len() - source.trim_start_matches(' ').len();
    let space = m.width(" ", BODY_SIZE);
    let first_indent = lead as f32 * space;
    let next_indent = first_indent + 2.0 * space;
    let mut out = Vec::new();
    let mut current = String::new();
    let mut indent = first_indent;
    for word in source.split(' ').filter(|w| !w.is_empty()) {
        let candidate = if current.is_empty() { word.to_owned() } else { format!("{current} {word}") };
        if indent + m.width(&candidate, BODY_SIZE) <= width {
            current = candidate;
            continue;
        }
        if !current.is_empty() {
            out.push(Line { indent, text: std::mem::take(&mut current) });
            indent = next_indent;
        }
        // A word wider than a whole line is cut where it must be.
        let mut rest = word;
        while indent + m.width(rest, BODY_SIZE) > width {
            let mut cut = 0;
            for (i, c) in rest.char_indices() {
                if indent + m.width(&rest[..i + c.len_utf8()], BODY_SIZE) > width {
                    break;
                }
                cut = i + c.len_utf8();
            }
            if cut == 0 {
                cut = rest.chars().next().map_or(rest.len(), char::len_utf8);
            }
            out.push(Line { indent, text: rest[..cut].to_owned() });
            indent = next_indent;
            rest = &rest[cut..];
        }
        current = rest.to_owned();
    }
    if !current.is_empty() || out.is_empty() {
        out.push(Line { indent, text: current });
    }
    out
}

/// The letter's items: a line with the lines indented deeper under it, up to a blank line; each item
/// as its wrapped lines. A heading (a line that starts at the margin) is kept with the item after it,
/// so no page ends in a heading. A blank line is an item of its own (an empty line).
fn items(text: &str, width: f32) -> Vec<Vec<Line>> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut out: Vec<Vec<Line>> = Vec::new();
    let mut head_indent: Option<usize> = None;
    let mut heading_open = false;
    for l in text.lines() {
        let blank = l.trim().is_empty();
        let continues = !blank && head_indent.is_some_and(|h| indent(l) > h);
        let wrapped = wrap(l, width);
        match out.last_mut() {
            Some(item) if continues => item.extend(wrapped),
            Some(item) if heading_open && !blank => {
                item.extend(wrapped);
                head_indent = Some(indent(l));
                heading_open = false;
            }
            _ => {
                out.push(wrapped);
                head_indent = (!blank && indent(l) > 0).then(|| indent(l));
                heading_open = !blank && indent(l) == 0;
            }
        }
    }
    out
}

/// Distributes items over pages of `first` and then `rest` lines, keeping items whole where they fit.
fn paginate(items: Vec<Vec<Line>>, first: usize, rest: usize) -> Vec<Vec<Line>> {
    let mut pages: Vec<Vec<Line>> = vec![Vec::new()];
    let capacity = |n: usize| if n == 1 { first } else { rest };
    for item in items {
        let free = capacity(pages.len()) - pages.last().map_or(0, Vec::len);
        if item.len() > free && item.len() <= rest && !pages.last().is_some_and(Vec::is_empty) {
            pages.push(Vec::new());
        }
        for line in item {
            if pages.last().map_or(0, Vec::len) >= capacity(pages.len()) {
                pages.push(Vec::new());
            }
            // A blank line at the top of a page is dropped: it only separated items.
            if line.text.is_empty() && pages.last().is_some_and(Vec::is_empty) {
                continue;
            }
            pages.last_mut().expect("at least one page").push(line);
        }
    }
    pages
}

fn draw(surface: &mut krilla::surface::Surface<'_>, x: f32, y: f32, size: f32, text: &str) {
    if !text.is_empty() {
        surface.draw_text(Point::from_xy(x, y), font().clone(), size, text, false, TextDirection::Auto);
    }
}

/// Why the PDF could not be made (a defect of the layout or the crate, never of the record: every
/// record can be printed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the PDF letter could not be written: {0}")]
pub struct PdfError(String);

/// The A4 letter for a record.
pub fn render(record: &AcpRecord, letter_info: &PdfLetter<'_>) -> Result<Vec<u8>, PdfError> {
    let m = Metrics::get();
    let text: String = letter::render(record).lines().map(|l| m.printable(l) + "\n").collect();
    let d = defaults();
    let header_lines: Vec<String> = head(record, letter_info).iter().map(|l| m.printable(l)).collect();
    let archival = m.covers(&text) && header_lines.iter().all(|l| m.covers(l));
    match write(&text, letter_info, &header_lines, archival) {
        Ok(bytes) => Ok(bytes),
        // The validator refused something the font check did not foresee: the letter must still
        // print, so it goes out as a plain PDF.
        Err(_) if archival => write(&text, letter_info, &header_lines, false).map_err(PdfError),
        Err(e) => Err(PdfError(format!("{e} ({})", d.pdf.title))),
    }
}

/// The running header: the title and whose letter it is.
fn head(record: &AcpRecord, info: &PdfLetter<'_>) -> Vec<String> {
    let d = defaults();
    let name =
        Some(record.patient.name.display()).filter(|n| !n.is_empty()).unwrap_or_else(|| "naam niet vastgelegd".into());
    let birth = record
        .patient
        .birth_date
        .as_ref()
        .map(|b| Moment::from_date(b).dutch_date())
        .unwrap_or_else(|| "niet vastgelegd".into());
    vec![
        format!("{}: {name}, geboren {birth}", d.pdf.header),
        format!("Datum: {}", info.date.dutch_date()),
        format!("Betreft: {}", d.pdf.title),
    ]
}

fn write(text: &str, info: &PdfLetter<'_>, head: &[String], archival: bool) -> Result<Vec<u8>, String> {
    let d = defaults();
    let width = PAGE_W - MARGIN_LEFT - MARGIN_RIGHT;

    // Page 1: sender block at the top right, recipient in the window, then date and subject.
    let sender = info.sender.block(&d.sender.organization, &d.sender.address);
    let recipient = info.recipient.block(&d.recipient.name, &d.recipient.address);
    let sender_x = PAGE_W - MARGIN_RIGHT - 70.0 * MM;
    let recipient_end = WINDOW_Y + recipient.len() as f32 * LEADING;
    let first_body = recipient_end.max(WINDOW_Y + 4.0 * LEADING) + 2.0 * LEADING + 3.0 * LEADING;
    let lines_on = |top: f32| ((BODY_BOTTOM - top) / LEADING).floor() as usize + 1;
    let pages = paginate(items(text, width), lines_on(first_body), lines_on(BODY_TOP));
    let count = pages.len();

    let mut settings = SerializeSettings { enable_tagging: false, ..SerializeSettings::default() };
    if archival {
        settings.configuration = ConfigurationBuilder::new()
            .with_archival_validator(Archival::A2_U)
            .finish()
            .map_err(|e| format!("{e:?}"))?;
    }
    let mut doc = Document::new_with(settings);
    // In UTC: krilla's zone carries its sign on the hour, which cannot say -00:30.
    let date = Moment::from_unix_seconds(info.date.unix_seconds());
    let created = DateTime::new(date.year.clamp(0, 9999) as u16)
        .month(date.month)
        .day(date.day)
        .hour(date.hour)
        .minute(date.minute)
        .second(date.second)
        .utc_offset_hour(0)
        .utc_offset_minute(0);
    doc.set_metadata(
        Metadata::new()
            .title(d.pdf.title.clone())
            .language(d.pdf.language.clone())
            .creator("acp-gateway".to_owned())
            .producer(format!("acp-gateway {}", env!("CARGO_PKG_VERSION")))
            .creation_date(created)
            .document_id(info.document_id.clone()),
    );

    for (i, body) in pages.iter().enumerate() {
        let mut page = doc.start_page_with(PageSettings::from_wh(PAGE_W, PAGE_H).ok_or("A4 is a valid size")?);
        let mut surface = page.surface();
        draw(&mut surface, MARGIN_LEFT, HEADER_Y, SMALL, &head[0]);
        let mut y = if i == 0 {
            for (k, l) in sender.iter().enumerate() {
                draw(&mut surface, sender_x, HEADER_Y + (k as f32 + 2.0) * (SMALL + 3.0), SMALL, l);
            }
            for (k, l) in recipient.iter().enumerate() {
                draw(&mut surface, MARGIN_LEFT, WINDOW_Y + k as f32 * LEADING, BODY_SIZE, l);
            }
            let y0 = recipient_end.max(WINDOW_Y + 4.0 * LEADING) + 2.0 * LEADING;
            draw(&mut surface, MARGIN_LEFT, y0, BODY_SIZE, &head[1]);
            draw(&mut surface, MARGIN_LEFT, y0 + LEADING, BODY_SIZE, &head[2]);
            first_body
        } else {
            BODY_TOP
        };
        for line in body {
            draw(&mut surface, MARGIN_LEFT + line.indent, y, BODY_SIZE, &line.text);
            y += LEADING;
        }
        let footer = d.pdf.footer.replace("{page}", &(i + 1).to_string()).replace("{pages}", &count.to_string());
        let fw = Metrics::get().width(&footer, SMALL);
        draw(&mut surface, (PAGE_W - fw) / 2.0, FOOTER_Y, SMALL, &footer);
        surface.finish();
        page.finish();
    }
    doc.finish().map_err(|e| format!("{e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_words_and_indents() {
        let long = format!("    4a. Reanimatie: Ja, maar met beperkingen: {}", "woord ".repeat(60));
        let lines = wrap(&long, 400.0);
        assert!(lines.len() > 2);
        assert!(lines[1].indent > lines[0].indent);
        let joined: Vec<&str> = lines.iter().flat_map(|l| l.text.split(' ')).collect();
        assert_eq!(joined.join(" "), long.trim());
        let huge = "x".repeat(500);
        assert_eq!(wrap(&huge, 300.0).iter().map(|l| l.text.as_str()).collect::<String>(), huge);
    }

    #[test]
    fn characters_the_font_lacks_print_as_code_points() {
        let m = Metrics::get();
        assert_eq!(m.printable("géén\t🙂 ≤ 48 uur\u{7}"), "géén    [U+1F642] ≤ 48 uur");
        assert!(m.covers(&m.printable("中文 🙂")));
    }

    #[test]
    fn items_stay_together_when_they_fit() {
        let l = |t: &str| Line { indent: 0.0, text: t.into() };
        let pages = paginate(vec![vec![l("a"), l("b")], vec![l("c"), l("d"), l("e")]], 3, 3);
        assert_eq!(pages.len(), 2);
        assert_eq!(pages[1], vec![l("c"), l("d"), l("e")]);
    }
}
