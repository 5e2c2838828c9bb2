//! The PDF letter's fonts: DejaVu Sans first, then the Noto fallbacks of `mappings/pdf-fonts.toml`, so
//! that every script a record can hold prints as written (issue 11 item 6).
//!
//! A character is set in the first font that has it, unless a fallback *prefers* it (its script is
//! better served there: Arabic joining, Hebrew points). Punctuation, spaces, marks and joiners stay in
//! the font of the character before them when that font has them, so an Arabic phrase, an emoji
//! sequence or a word with combining accents is shaped as one run. Only DejaVu Sans is used for a
//! letter in Latin script, and krilla embeds only fonts that are drawn with, so a Dutch letter is byte
//! for byte what it was with DejaVu Sans alone.
//!
//! Widths for line breaking are nominal advances (one lookup per character, linear); the x position of
//! each run on a line with several fonts or directions is its shaped width (rustybuzz, as krilla shapes
//! it), so runs neither overlap nor leave gaps.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::OnceLock;

use krilla::text::Font;
use serde::Deserialize;
use skrifa::charmap::Charmap;
use skrifa::instance::{LocationRef, Size};
use skrifa::metrics::GlyphMetrics;
use skrifa::{FontRef, MetadataProvider};

mod files {
    include!(concat!(env!("OUT_DIR"), "/fonts.rs"));
}
pub(crate) use files::FONT_FILES;

const FONTS_TOML: &str = include_str!("../../../mappings/pdf-fonts.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FontList {
    primary: String,
    fallback: Vec<FallbackEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FallbackEntry {
    file: String,
    #[serde(default)]
    index: u32,
    #[serde(default)]
    prefer: Vec<String>,
}

/// One font of the stack.
pub(crate) struct Face {
    pub(crate) file: String,
    bytes: &'static [u8],
    index: u32,
    charmap: Charmap<'static>,
    font_ref: FontRef<'static>,
    prefer: Vec<RangeInclusive<u32>>,
    krilla: OnceLock<Font>,
    shaper: OnceLock<Option<rustybuzz::Face<'static>>>,
}

impl Face {
    fn has(&self, c: char) -> bool {
        self.charmap.map(c).is_some()
    }

    fn prefers(&self, c: char) -> bool {
        self.prefer.iter().any(|r| r.contains(&(c as u32)))
    }

    /// The font as krilla draws it: one instance per face, so each is embedded (as a subset) once.
    pub(crate) fn font(&self) -> Font {
        self.krilla
            .get_or_init(|| {
                Font::new(self.bytes.into(), self.index)
                    .unwrap_or_else(|| panic!("assets/fonts/{} face {} parses (checked by a test)", self.file, self.index))
            })
            .clone()
    }

    /// The shaped width of `text` at `size`, as krilla's shaping sets it.
    fn shaped_width(&self, text: &str, size: f32, rtl: bool) -> Option<f32> {
        let face = self.shaper.get_or_init(|| rustybuzz::Face::from_slice(self.bytes, self.index)).as_ref()?;
        let mut buffer = rustybuzz::UnicodeBuffer::new();
        buffer.push_str(text);
        buffer.guess_segment_properties();
        buffer.set_direction(if rtl { rustybuzz::Direction::RightToLeft } else { rustybuzz::Direction::LeftToRight });
        let shaped = rustybuzz::shape(face, &[], buffer);
        let units: i64 = shaped.glyph_positions().iter().map(|p| i64::from(p.x_advance)).sum();
        Some(units as f32 / f32::from(face.units_per_em() as u16) * size)
    }
}

/// The font stack, primary first.
pub(crate) struct Fonts {
    faces: Vec<Face>,
}

/// Which face sets each character of a text, by its byte offset.
pub(crate) type Assigned = Vec<(usize, char, usize)>;

impl Fonts {
    pub(crate) fn get() -> &'static Fonts {
        static F: OnceLock<Fonts> = OnceLock::new();
        // The list and the files are part of the build and checked by the tests; no input reaches this.
        F.get_or_init(|| Fonts::load().unwrap_or_else(|e| panic!("mappings/pdf-fonts.toml: {e}")))
    }

    fn load() -> Result<Fonts, String> {
        let list: FontList = toml::from_str(FONTS_TOML).map_err(|e| e.to_string())?;
        let entries = std::iter::once(FallbackEntry { file: list.primary, index: 0, prefer: Vec::new() })
            .chain(list.fallback);
        let faces = entries.map(Face::load).collect::<Result<Vec<_>, _>>()?;
        Ok(Fonts { faces })
    }

    #[cfg(test)]
    pub(crate) fn faces(&self) -> &[Face] {
        &self.faces
    }

    pub(crate) fn face(&self, i: usize) -> &Face {
        &self.faces[i]
    }

    /// The face for a character on its own: the first that prefers and has it, else the first that has it.
    fn own(&self, c: char) -> Option<usize> {
        self.faces
            .iter()
            .position(|f| f.prefers(c) && f.has(c))
            .or_else(|| self.faces.iter().position(|f| f.has(c)))
    }

    /// Whether some font has the character.
    pub(crate) fn has(&self, c: char) -> bool {
        self.faces.iter().any(|f| f.has(c))
    }

    /// The face of each character of a text (see the module's rule), in one pass. A character no font
    /// has (the caller has replaced those by their code points) goes to the primary font.
    pub(crate) fn assign(&self, text: &str) -> Assigned {
        let mut cache: HashMap<char, Option<usize>> = HashMap::new();
        let mut prev: Option<usize> = None;
        let mut out = Vec::with_capacity(text.len());
        for (i, c) in text.char_indices() {
            let own = if c.is_ascii() && self.faces[0].has(c) {
                Some(0)
            } else {
                *cache.entry(c).or_insert_with(|| self.own(c))
            };
            let keep = prev.filter(|&p| {
                !c.is_alphanumeric() && self.faces[p].has(c) && !own.is_some_and(|o| o != p && self.faces[o].prefers(c))
            });
            let face = keep.or(own).unwrap_or(0);
            prev = Some(face);
            out.push((i, c, face));
        }
        out
    }

    /// Each character's nominal advance at `size`, in the face that sets it: one lookup per character.
    pub(crate) fn advances(&self, text: &str, size: f32) -> Vec<(usize, char, f32)> {
        let mut metrics: HashMap<usize, GlyphMetrics<'static>> = HashMap::new();
        self.assign(text)
            .into_iter()
            .map(|(i, c, face)| {
                let f = &self.faces[face];
                let m = metrics
                    .entry(face)
                    .or_insert_with(|| f.font_ref.glyph_metrics(Size::new(size), LocationRef::default()));
                let g = f.charmap.map(c).unwrap_or_default();
                (i, c, m.advance_width(g).unwrap_or(size * 0.6))
            })
            .collect()
    }

    /// The nominal width of a text (for centring the footer).
    pub(crate) fn width(&self, text: &str, size: f32) -> f32 {
        self.advances(text, size).iter().map(|a| a.2).sum()
    }

    /// The space of the primary font, which joins the words of a wrapped line.
    pub(crate) fn space(&self, size: f32) -> f32 {
        let f = &self.faces[0];
        let g = f.charmap.map(' ').unwrap_or_default();
        f.font_ref.glyph_metrics(Size::new(size), LocationRef::default()).advance_width(g).unwrap_or(size * 0.3)
    }

    /// The shaped width of a run in one face.
    pub(crate) fn shaped_width(&self, face: usize, text: &str, size: f32, rtl: bool) -> f32 {
        let f = &self.faces[face];
        f.shaped_width(text, size, rtl).unwrap_or_else(|| {
            let a = self.advances(text, size);
            a.iter().map(|x| x.2).sum()
        })
    }

    /// The text with every character no font can draw written as its code point, `[U+1F642]`: an
    /// empty box would hide what the record says, the code point keeps it recoverable. Tabs become four
    /// spaces; other control characters, and invisible format characters (joiners, variation
    /// selectors, direction marks) that no font has, print as nothing and are dropped.
    pub(crate) fn printable(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut cache: HashMap<char, bool> = HashMap::new();
        for c in text.chars() {
            let mut has = |c: char| c.is_ascii_graphic() || c == ' ' || *cache.entry(c).or_insert_with(|| self.has(c));
            match c {
                '\t' => out.push_str("    "),
                c if c.is_control() => {}
                c if has(c) => out.push(c),
                c if invisible(c) => {}
                c => out.push_str(&format!("[U+{:04X}]", c as u32)),
            }
        }
        out
    }

    /// Whether some font has a glyph for every character (PDF/A forbids `.notdef`).
    pub(crate) fn covers(&self, text: &str) -> bool {
        text.chars().all(|c| c.is_control() || self.has(c))
    }
}

/// Format characters that print as nothing: zero-width space and joiners, direction marks and
/// embeddings, word joiner and invisible operators, variation selectors, the byte order mark.
fn invisible(c: char) -> bool {
    matches!(c as u32, 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2069 | 0xFE00..=0xFE0F | 0xFEFF | 0xE0100..=0xE01EF)
}

impl Face {
    fn load(entry: FallbackEntry) -> Result<Face, String> {
        let bytes = FONT_FILES
            .iter()
            .find(|(name, _)| *name == entry.file)
            .map(|(_, b)| *b)
            .ok_or_else(|| format!("{} is not in assets/fonts/", entry.file))?;
        let font_ref =
            FontRef::from_index(bytes, entry.index).map_err(|e| format!("{} face {}: {e}", entry.file, entry.index))?;
        let prefer = entry
            .prefer
            .iter()
            .map(|r| parse_range(r).ok_or_else(|| format!("{}: prefer {r:?} is not HEX-HEX", entry.file)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Face {
            charmap: font_ref.charmap(),
            font_ref,
            file: entry.file,
            bytes,
            index: entry.index,
            prefer,
            krilla: OnceLock::new(),
            shaper: OnceLock::new(),
        })
    }
}

fn parse_range(r: &str) -> Option<RangeInclusive<u32>> {
    let (a, b) = r.split_once('-')?;
    Some(u32::from_str_radix(a, 16).ok()?..=u32::from_str_radix(b, 16).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_font_is_embedded_parses_and_every_embedded_font_is_listed() {
        let fonts = Fonts::get();
        for f in fonts.faces() {
            // krilla and rustybuzz read it as well as skrifa.
            let _ = f.font();
            assert!(f.shaped_width("a", 10.0, false).is_some(), "{}", f.file);
        }
        for (name, _) in FONT_FILES {
            assert!(fonts.faces().iter().any(|f| f.file == *name), "assets/fonts/{name} is embedded but not listed");
        }
    }

    #[test]
    fn latin_stays_in_dejavu_and_other_scripts_find_their_font() {
        let fonts = Fonts::get();
        let face_of = |text: &str, at: usize| fonts.face(fonts.assign(text)[at].2).file.clone();
        assert!(fonts.assign("Géén reanimatie, ≤ 48 uur").iter().all(|a| a.2 == 0));
        assert_eq!(face_of("لا إنعاش", 0), "NotoSansArabic-Regular.ttf");
        // The space between Arabic words stays Arabic, so the phrase is one run.
        assert_eq!(face_of("لا إنعاش", 2), "NotoSansArabic-Regular.ttf");
        assert_eq!(face_of("אין החייאה", 0), "NotoSansHebrew-Regular.ttf");
        assert_eq!(face_of("不要抢救", 0), "NotoSansCJK-Regular.ttc");
        assert_eq!(face_of("蘇生しない", 2), "NotoSansCJK-Regular.ttc");
        assert_eq!(face_of("심폐소생술 거부", 0), "NotoSansCJK-Regular.ttc");
        assert_eq!(face_of("🙂", 0), "Symbola.ttf");
        assert_eq!(face_of("नहीं", 0), "NotoSansDevanagari-Regular.ttf");
        assert_eq!(face_of("ሰላም", 0), "NotoSansEthiopic-Regular.ttf");
        assert_eq!(face_of("ไม่", 0), "NotoSansThai-Regular.ttf");
    }

    #[test]
    fn characters_no_font_has_print_as_code_points() {
        let fonts = Fonts::get();
        // U+0378 is unassigned; U+E000 is private use, which no font here maps.
        assert_eq!(fonts.printable("géén\t🙂 \u{378}\u{E000} ≤ 48 uur\u{7}"), "géén    🙂 [U+0378][U+E000] ≤ 48 uur");
        assert!(fonts.covers(&fonts.printable("中文 🙂 \u{378}")));
    }
}
