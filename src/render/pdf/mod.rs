//! Renderer: the clinical letter as an A4 PDF for the print queue (the post channel, route rows 2 and
//! 7), and the attachment of the secure mail and the ZorgDomein package.
//!
//! The text is exactly the letter of [`crate::render::letter`], set in DejaVu Sans with the Noto fonts
//! as fallbacks for every other script ([`fonts`], `mappings/pdf-fonts.toml`; all embedded as subsets),
//! under a sender
//! block, the recipient block at the window position of a Dutch window envelope (left window,
//! 25 mm from the left, 50 mm from the top), a date and subject line. Every page carries the patient's
//! name and birth date in a running header and "Pagina n van m" in the footer, so a loose page still
//! says whose it is and that pages may be missing.
//!
//! Choices:
//! - **PDF/A-2u** (archival, every glyph mapped to Unicode so the text can be extracted and searched)
//!   through krilla's validator. A character no embedded font has is printed as its code
//!   point, `[U+0378]`, not as an empty box that hides it. Should the validator still refuse a letter,
//!   it is written as a plain PDF 1.7 with the same text and layout: the letter must print.
//! - **Scripts**: Arabic and Hebrew phrases are ordered right to left by the Unicode bidirectional
//!   algorithm inside the Dutch (left-to-right) line and shaped by krilla (rustybuzz); Chinese,
//!   Japanese, Korean, Indic and other scripts and emoji print in their Noto font.
//! - **Keep-together**: a letter item (a line and the lines indented under it: a treatment limit with its
//!   explanation and date) is never split over two pages unless it is longer than a page, so a decision
//!   and its restriction are read together and `pdftotext` finds a restriction in one piece.
//! - Lines wrap at word boundaries (a word wider than the line is cut), in time linear in the text
//!   ([`layout`]); wrapped lines keep their item's
//!   indentation plus two spaces. Tabs become spaces, runs of spaces inside a line one space (the
//!   whitespace a reader cannot see anyway); no other character is changed.
//! - **Deterministic**: no clock. The document date and the PDF's creation date are the
//!   [`Moment`] the caller gives (SOURCE_DATE_EPOCH or the conversation date); the document id is derived
//!   from the route key, so the same handover gives the same bytes.

mod fonts;
mod layout;

use krilla::configure::{Archival, ConfigurationBuilder};
use krilla::geom::Point;
use krilla::metadata::{DateTime, Metadata};
use krilla::page::PageSettings;
use krilla::text::TextDirection;
use krilla::{Document, SerializeSettings};
use unicode_bidi::{BidiInfo, Level};

use crate::record::AcpRecord;
use crate::render::letter;
use crate::render::packaging::{defaults, Moment, Party};
use fonts::Fonts;
use layout::{items, paginate};

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

/// Draws one line of text from `x`: in one piece when it is one font left to right (as every Dutch
/// line is, so those bytes never change), else run by run in visual order.
fn draw(surface: &mut krilla::surface::Surface<'_>, x: f32, y: f32, size: f32, text: &str) {
    if text.is_empty() {
        return;
    }
    let fonts = Fonts::get();
    let runs = visual_runs(fonts, text);
    if let [(face, range, false)] = runs.as_slice() {
        if range.len() == text.len() {
            let font = fonts.face(*face).font();
            surface.draw_text(Point::from_xy(x, y), font, size, text, false, TextDirection::Auto);
            return;
        }
    }
    let mut x = x;
    for (face, range, rtl) in runs {
        let run = &text[range];
        let direction = if rtl { TextDirection::RightToLeft } else { TextDirection::LeftToRight };
        surface.draw_text(Point::from_xy(x, y), fonts.face(face).font(), size, run, false, direction);
        x += fonts.shaped_width(face, run, size, rtl);
    }
}

/// A line's runs (face, byte range, right to left) in the order they are drawn from left to right.
/// The line is laid out by the Unicode bidirectional algorithm with a left-to-right paragraph (the
/// letter is Dutch): an Arabic or Hebrew phrase reads right to left in its place, shaped as a whole
/// within each font; its font runs are drawn in reverse, as the phrase reads from the right.
fn visual_runs(fonts: &Fonts, text: &str) -> Vec<(usize, std::ops::Range<usize>, bool)> {
    let assigned = fonts.assign(text);
    // Font runs within a byte range of the text.
    let font_runs = |range: std::ops::Range<usize>| {
        let mut out: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
        let from = assigned.partition_point(|a| a.0 < range.start);
        for &(i, c, face) in assigned[from..].iter().take_while(|a| a.0 < range.end) {
            match out.last_mut() {
                Some((f, r)) if *f == face => r.end = i + c.len_utf8(),
                _ => out.push((face, i..i + c.len_utf8())),
            }
        }
        out
    };
    let bidi = BidiInfo::new(text, Some(Level::ltr()));
    if !bidi.has_rtl() {
        return font_runs(0..text.len()).into_iter().map(|(f, r)| (f, r, false)).collect();
    }
    let mut out = Vec::new();
    for para in &bidi.paragraphs {
        let (levels, runs) = bidi.visual_runs(para, para.range.clone());
        for run in runs {
            let rtl = levels[run.start].is_rtl();
            let mut pieces = font_runs(run);
            if rtl {
                pieces.reverse();
            }
            out.extend(pieces.into_iter().map(|(f, r)| (f, r, rtl)));
        }
    }
    out
}

/// Why the PDF could not be made (a defect of the layout or the crate, never of the record: every
/// record can be printed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the PDF letter could not be written: {0}")]
pub struct PdfError(String);

/// The A4 letter for a record.
pub fn render(record: &AcpRecord, letter_info: &PdfLetter<'_>) -> Result<Vec<u8>, PdfError> {
    let m = Fonts::get();
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
    // The running header is one line: a name too long for it is cut, with an ellipsis, before the
    // birth date, which must stay (the letter's own name line carries the name whole).
    let fonts = Fonts::get();
    let prefix = format!("{}: ", d.pdf.header);
    let suffix = format!(", geboren {birth}");
    let room = PAGE_W - MARGIN_LEFT - MARGIN_RIGHT - fonts.width(&prefix, SMALL) - fonts.width(&suffix, SMALL);
    let name = fonts.printable(&name);
    let name = if fonts.width(&name, SMALL) <= room {
        name
    } else {
        let mut used = fonts.width("…", SMALL);
        let kept = fonts.advances(&name, SMALL).into_iter().take_while(|a| {
            used += a.2;
            used <= room
        });
        let end = kept.last().map_or(0, |a| a.0 + a.1.len_utf8());
        format!("{}…", &name[..end])
    };
    vec![
        format!("{prefix}{name}{suffix}"),
        format!("Datum: {}", info.date.dutch_date()),
        format!("Betreft: {}", d.pdf.title),
    ]
}

fn write(text: &str, info: &PdfLetter<'_>, head: &[String], archival: bool) -> Result<Vec<u8>, String> {
    let d = defaults();
    let width = PAGE_W - MARGIN_LEFT - MARGIN_RIGHT;

    // Page 1: sender block at the top right, recipient in the window, then date and subject.
    // The address blocks come from the API's parties: any script, printable like the letter.
    let fonts = Fonts::get();
    let printable = |block: Vec<String>| -> Vec<String> { block.iter().map(|l| fonts.printable(l)).collect() };
    let sender = printable(info.sender.block(&d.sender.organization, &d.sender.address));
    let recipient = printable(info.recipient.block(&d.recipient.name, &d.recipient.address));
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
        let fw = Fonts::get().width(&footer, SMALL);
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
    fn right_to_left_phrases_are_drawn_in_visual_order() {
        let fonts = Fonts::get();
        let text = "Wens: لا إنعاش (DNR) en אין החייאה.";
        let runs = visual_runs(fonts, text);
        let pieces: Vec<(&str, bool)> = runs.iter().map(|(_, r, rtl)| (&text[r.clone()], *rtl)).collect();
        // Every character is drawn exactly once.
        let mut drawn: Vec<usize> = runs.iter().flat_map(|(_, r, _)| r.clone()).collect();
        drawn.sort_unstable();
        assert_eq!(drawn, (0..text.len()).collect::<Vec<_>>());
        assert_eq!(pieces[0], ("Wens: ", false));
        assert!(pieces.iter().any(|&(p, rtl)| rtl && p.contains("إنعاش")), "{pieces:?}");
        assert!(pieces.iter().any(|&(p, rtl)| rtl && p.contains("החייאה")), "{pieces:?}");
        // A Latin line is one run, drawn as before.
        assert_eq!(visual_runs(fonts, "4a. Reanimatie: Nee").len(), 1);
    }
}
