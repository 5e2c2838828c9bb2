//! EDIFACT interchange syntax as the Dutch "Medeur" messages (MEDVRI, MEDSPE, ...) use it: segments,
//! elements and components, the release character, UNOA text, 70-character text lines and the tag
//! counters (`TXT:1`, `TXT:2`, ...) that Medeur attaches to a tag.
//!
//! This module knows the syntax only, not what any message means, so that the renderer
//! (`crate::render::edifact`) and a future Edifact intake share one writer and one reader. The reader
//! accepts what Dutch writers send: an optional `UNA` service string advice, CR/LF between segments
//! (and line breaks inside one, from transports that fold long lines), release characters, and tag
//! counters. Background: `../shared/spec/background/legacy-transports.md` §1.
//!
//! Text is made UNOA-safe by [`to_unoa`]: printable ASCII, with letters stripped of their accents and a
//! few characters spelled out (ß → ss, € → EUR). Strict UNOA is ISO 646 upper case only; Medeur senders
//! use mixed case in practice and receivers expect it, so case is kept.

use std::fmt;

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Separates the components of a composite element.
pub const COMPONENT_SEPARATOR: char = ':';
/// Separates the elements of a segment (and the tag from the first element).
pub const ELEMENT_SEPARATOR: char = '+';
/// Makes the next character literal.
pub const RELEASE: char = '?';
/// Ends a segment.
pub const SEGMENT_TERMINATOR: char = '\'';
/// The longest free-text line (`TXT`, `CON`: an..70).
pub const MAX_TEXT_LINE: usize = 70;

/// One segment: its tag, the Medeur repeat counters on the tag, and its elements, each a list of
/// components (a simple element has one).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Segment {
    pub tag: String,
    /// `TXT:3` has counters `[3]`; most segments have none.
    pub counters: Vec<u32>,
    pub elements: Vec<Vec<String>>,
}

impl Segment {
    pub fn new(tag: &str) -> Segment {
        Segment { tag: tag.to_owned(), counters: Vec::new(), elements: Vec::new() }
    }

    /// A segment whose tag carries a Medeur repeat counter (`TXT:n`).
    pub fn counted(tag: &str, counter: u32) -> Segment {
        Segment { counters: vec![counter], ..Segment::new(tag) }
    }

    /// Appends a composite element (its components in order).
    pub fn composite<I, S>(mut self, components: I) -> Segment
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.elements.push(components.into_iter().map(Into::into).collect());
        self
    }

    /// Appends a simple element (one component).
    pub fn simple(self, value: impl Into<String>) -> Segment {
        self.composite([value])
    }

    /// The value of component `component` of element `element` (both from 0), if present.
    pub fn value(&self, element: usize, component: usize) -> Option<&str> {
        self.elements.get(element)?.get(component).map(String::as_str)
    }

    /// The segment as the writer puts it on the wire: every value in UNOA ([`to_unoa`]), trailing empty
    /// components and elements left out (EDIFACT omits them). A reader gives back exactly this.
    pub fn canonical(&self) -> Segment {
        let mut elements: Vec<Vec<String>> = self
            .elements
            .iter()
            .map(|e| {
                let mut comps: Vec<String> = e.iter().map(|c| to_unoa(c)).collect();
                while comps.last().is_some_and(String::is_empty) {
                    comps.pop();
                }
                comps
            })
            .collect();
        while elements.last().is_some_and(Vec::is_empty) {
            elements.pop();
        }
        // An element left with no components in the middle reads back as one empty component.
        for e in &mut elements {
            if e.is_empty() {
                e.push(String::new());
            }
        }
        Segment { tag: self.tag.clone(), counters: self.counters.clone(), elements }
    }
}

/// What follows each segment terminator on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineBreak {
    /// `'` CR LF: one segment per line in any editor; readers skip it (the default).
    #[default]
    Crlf,
    /// `'` CR, as some Dutch writers do.
    Cr,
    /// `'` LF.
    Lf,
    /// Nothing: the whole interchange on one line.
    None,
}

impl LineBreak {
    pub fn as_str(self) -> &'static str {
        match self {
            LineBreak::Crlf => "\r\n",
            LineBreak::Cr => "\r",
            LineBreak::Lf => "\n",
            LineBreak::None => "",
        }
    }
}

/// Prefixes the four service characters with the release character.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, COMPONENT_SEPARATOR | ELEMENT_SEPARATOR | RELEASE | SEGMENT_TERMINATOR) {
            out.push(RELEASE);
        }
        out.push(c);
    }
    out
}

/// Writes one segment (canonical form, escaped) followed by the terminator, without a line break.
pub fn write_segment(segment: &Segment, out: &mut String) {
    debug_assert!(is_tag(&segment.tag), "segment tag {:?}", segment.tag);
    let seg = segment.canonical();
    out.push_str(&seg.tag);
    for n in &seg.counters {
        out.push(COMPONENT_SEPARATOR);
        out.push_str(&n.to_string());
    }
    for element in &seg.elements {
        out.push(ELEMENT_SEPARATOR);
        let comps: Vec<String> = element.iter().map(|c| escape(c)).collect();
        out.push_str(&comps.join(&COMPONENT_SEPARATOR.to_string()));
    }
    out.push(SEGMENT_TERMINATOR);
}

/// Writes segments, each followed by `line_break`.
pub fn write(segments: &[Segment], line_break: LineBreak) -> String {
    let mut out = String::new();
    for s in segments {
        write_segment(s, &mut out);
        out.push_str(line_break.as_str());
    }
    out
}

/// The interchange envelope (`UNB`): syntax `UNOA:1`, the two mailbox ids, the preparation moment and
/// the interchange control reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterchangeHeader {
    pub sender: String,
    pub recipient: String,
    /// `YYMMDD`.
    pub date: String,
    /// `HHMM`.
    pub time: String,
    pub reference: String,
}

/// One message of an interchange: its reference, type (`MEDVRI`, `1`) and the segments between `UNH`
/// and `UNT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub reference: String,
    pub message_type: String,
    pub version: String,
    pub body: Vec<Segment>,
}

/// The whole interchange as segments: `UNB`, per message `UNH` … `UNT` (with the segment count
/// `UNH`..`UNT` inclusive), and `UNZ` with the number of messages.
pub fn interchange(header: &InterchangeHeader, messages: &[Message]) -> Vec<Segment> {
    let mut out = vec![Segment::new("UNB")
        .composite(["UNOA", "1"])
        .simple(header.sender.as_str())
        .simple(header.recipient.as_str())
        .composite([header.date.as_str(), header.time.as_str()])
        .simple(header.reference.as_str())];
    for m in messages {
        out.push(
            Segment::new("UNH").simple(m.reference.as_str()).composite([m.message_type.as_str(), m.version.as_str()]),
        );
        out.extend(m.body.iter().cloned());
        out.push(Segment::new("UNT").simple((m.body.len() + 2).to_string()).simple(m.reference.as_str()));
    }
    out.push(Segment::new("UNZ").simple(messages.len().to_string()).simple(header.reference.as_str()));
    out
}

/// Text segments with Medeur counters `tag:start`, `tag:start+1`, … one per line.
pub fn counted_lines<I, S>(tag: &str, lines: I) -> Vec<Segment>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    lines.into_iter().zip(1u32..).map(|(line, n)| Segment::counted(tag, n).simple(line)).collect()
}

/// Text in UNOA: printable ASCII only. Accented letters lose their accent (é → e, ö → o), letters
/// without a decomposition are spelled out (ß → ss, æ → ae, ø → o, ı → i), typographic punctuation
/// becomes its ASCII form (curly quotes → straight, dashes → `-`, … → `...`), € → EUR, µ → u; line
/// breaks, tabs and other control characters become a space; invisible format characters (soft hyphen,
/// zero-width space, variation selectors) are dropped; anything else becomes `?`, so that a reader sees
/// something was there. ASCII text is returned unchanged.
pub fn to_unoa(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_unoa(c, &mut out);
    }
    out
}

/// The characters of a text that UNOA cannot carry even transliterated (each is sent as `?`): Arabic,
/// Chinese, emoji and the like, each once, in the order they first appear. An accent dropped or a
/// letter spelled out (é → e, ß → ss) is not a loss: the word still reads.
pub fn lost_in_unoa(text: &str) -> Vec<char> {
    let mut lost: Vec<char> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut out = String::new();
    for c in text.chars().filter(|c| !c.is_ascii()) {
        if !seen.insert(c) {
            continue;
        }
        out.clear();
        push_unoa(c, &mut out);
        if out == "?" {
            lost.push(c);
        }
    }
    lost
}

fn push_unoa(c: char, out: &mut String) {
    if c.is_ascii_graphic() || c == ' ' {
        out.push(c);
        return;
    }
    if c.is_control() {
        out.push(' ');
        return;
    }
    if is_invisible(c) {
        return;
    }
    if let Some(s) = spelled(c) {
        out.push_str(s);
        return;
    }
    // Compatibility decomposition: accents become combining marks (dropped), ligatures and full-width
    // forms become their ASCII letters, a no-break space becomes a space.
    let mut produced = false;
    let mut only_marks = true;
    for d in c.nfkd() {
        if is_combining_mark(d) {
            continue;
        }
        only_marks = false;
        if d.is_ascii_graphic() || d == ' ' {
            out.push(d);
            produced = true;
        } else if let Some(s) = spelled(d) {
            out.push_str(s);
            produced = true;
        }
    }
    // A lone combining mark belongs to the letter before it, already written.
    if !produced && !only_marks {
        out.push('?');
    }
}

/// Characters that show nothing and carry no text.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{2060}' | '\u{FEFF}' | '\u{FE00}'..='\u{FE0F}')
}

/// Characters with no ASCII decomposition that have a customary ASCII spelling.
fn spelled(c: char) -> Option<&'static str> {
    Some(match c {
        'ß' => "ss",
        'ẞ' => "SS",
        'æ' => "ae",
        'Æ' => "AE",
        'œ' => "oe",
        'Œ' => "OE",
        'ø' => "o",
        'Ø' => "O",
        'ı' => "i",
        'ł' => "l",
        'Ł' => "L",
        'đ' | 'ð' => "d",
        'Đ' | 'Ð' => "D",
        'þ' => "th",
        'Þ' => "Th",
        'ħ' => "h",
        'Ħ' => "H",
        'ŧ' => "t",
        'Ŧ' => "T",
        'ŋ' => "n",
        'Ŋ' => "N",
        'ĸ' => "k",
        '‘' | '’' | '‚' | '‛' | '′' | '‹' | '›' | 'ʼ' => "'",
        '“' | '”' | '„' | '‟' | '″' | '«' | '»' => "\"",
        '‐' | '‑' | '‒' | '–' | '—' | '―' | '−' => "-",
        '•' | '·' | '∙' => "*",
        '⁄' | '∕' => "/",
        '€' => "EUR",
        '£' => "GBP",
        'µ' | 'μ' => "u",
        '°' => "o",
        '±' => "+/-",
        '×' => "x",
        '÷' => "/",
        '≥' => ">=",
        '≤' => "<=",
        '≠' => "<>",
        '→' => "->",
        '←' => "<-",
        '©' => "(c)",
        '®' => "(R)",
        _ => return None,
    })
}

/// Splits text into lines of at most `width` characters for `TXT`-like segments. Each line of the input
/// stays a line (an empty one stays empty); a longer line is broken at the last space that fits, and a
/// word longer than the room left is cut. Continuation lines are indented four spaces deeper than their
/// line (up to half the width), so a wrapped piece of free text can never stand where an item line
/// stands: "  4b. ..." is an item, a wrapped "      4b. ..." visibly is not. The text is first made UNOA ([`to_unoa`]), so the
/// width counts what is sent (the release characters the writer adds do not count: an..70 is the
/// value's length). Spaces at a break and at the end of a line are dropped; nothing else is.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    /// How much deeper than its line a wrapped continuation starts.
    const WRAP_INDENT: usize = 4;
    let width = width.max(1);
    let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut lines = Vec::new();
    for paragraph in normalised.split('\n') {
        let para = to_unoa(paragraph);
        let mut rest = para.trim_end();
        let indent = " ".repeat((rest.len() - rest.trim_start().len() + WRAP_INDENT).min(width / 2));
        let mut prefix = "";
        loop {
            let room = width - prefix.len();
            if rest.len() <= room {
                lines.push(format!("{prefix}{rest}"));
                break;
            }
            // Break at the last space within room + 1 (a space right after `room` characters is a
            // perfect break); leading spaces are indentation, not a break.
            let window = &rest[..=room];
            let lead = window.len() - window.trim_start().len();
            let line = match window.rfind(' ').filter(|&i| i > lead) {
                Some(i) => {
                    let line = rest[..i].trim_end();
                    rest = rest[i..].trim_start();
                    line
                }
                None => {
                    let (line, tail) = rest.split_at(room);
                    rest = tail;
                    line
                }
            };
            lines.push(format!("{prefix}{line}"));
            prefix = &indent;
        }
    }
    lines
}

/// Joins text lines read back from `TXT`-like segments into one text, a line each.
pub fn unwrap<S: AsRef<str>>(lines: &[S]) -> String {
    lines.iter().map(|l| l.as_ref().trim_end()).collect::<Vec<_>>().join("\n")
}

/// Why an interchange could not be read; `offset` is the byte position in the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("EDIFACT syntax error at byte {offset}: {message}")]
pub struct ReadError {
    pub offset: usize,
    pub message: String,
}

/// The service characters of an interchange (from `UNA`, or the defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Delimiters {
    component: char,
    element: char,
    release: char,
    terminator: char,
}

impl Default for Delimiters {
    fn default() -> Self {
        Delimiters {
            component: COMPONENT_SEPARATOR,
            element: ELEMENT_SEPARATOR,
            release: RELEASE,
            terminator: SEGMENT_TERMINATOR,
        }
    }
}

fn is_tag(tag: &str) -> bool {
    tag.len() == 3 && tag.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn is_between_segments(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\t' | ' ')
}

/// Reads an interchange (or any run of segments) into segments, with release characters undone and
/// Medeur tag counters split off the tag. A leading `UNA` sets the service characters and is not
/// returned as a segment.
pub fn read(input: &str) -> Result<Vec<Segment>, ReadError> {
    let err = |offset: usize, message: &str| ReadError { offset, message: message.to_owned() };
    let start = input.len() - input.trim_start_matches(|c| is_between_segments(c) || c == '\u{FEFF}').len();
    let mut text = &input[start..];
    let mut base = start;
    let mut delims = Delimiters::default();
    if let Some(after) = text.strip_prefix("UNA") {
        let chars: Vec<char> = after.chars().take(6).collect();
        if chars.len() < 6 {
            return Err(err(base, "UNA needs six service characters"));
        }
        // UNA: component, element, decimal mark, release, reserved, terminator.
        delims = Delimiters { component: chars[0], element: chars[1], release: chars[3], terminator: chars[5] };
        let used = 3 + chars.iter().map(|c| c.len_utf8()).sum::<usize>();
        text = &text[used..];
        base += used;
    }

    let mut segments = Vec::new();
    let mut elements: Vec<Vec<String>> = Vec::new();
    let mut components: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut in_segment = false;
    let mut seg_start = base;
    let mut iter = text.char_indices();
    while let Some((i, c)) = iter.next() {
        let at = base + i;
        if !in_segment {
            if is_between_segments(c) {
                continue;
            }
            in_segment = true;
            seg_start = at;
        }
        if c == delims.release {
            match iter.next() {
                Some((_, next)) if next != '\r' && next != '\n' => current.push(next),
                Some(_) => return Err(err(at, "a release character cannot release a line break")),
                None => return Err(err(at, "the input ends after a release character")),
            }
        } else if c == delims.component {
            components.push(std::mem::take(&mut current));
        } else if c == delims.element {
            components.push(std::mem::take(&mut current));
            elements.push(std::mem::take(&mut components));
        } else if c == delims.terminator {
            components.push(std::mem::take(&mut current));
            elements.push(std::mem::take(&mut components));
            segments.push(segment_from(std::mem::take(&mut elements), seg_start)?);
            in_segment = false;
        } else if c == '\r' || c == '\n' {
            // A transport that folds long lines; UNOA text has no line breaks of its own.
        } else {
            current.push(c);
        }
    }
    if in_segment {
        return Err(err(seg_start, "the last segment has no terminator"));
    }
    Ok(segments)
}

/// Splits the tag element (`TXT:3`) into tag and counters.
fn segment_from(mut elements: Vec<Vec<String>>, offset: usize) -> Result<Segment, ReadError> {
    let err = |message: String| ReadError { offset, message };
    let head = elements.remove(0);
    let tag = head[0].clone();
    if !is_tag(&tag) {
        return Err(err(format!("{tag:?} is not a segment tag (three capitals or digits)")));
    }
    let counters = head[1..]
        .iter()
        .map(|n| {
            n.parse::<u32>()
                .ok()
                .filter(|_| n.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| err(format!("segment {tag}: counter {n:?} is not a number")))
        })
        .collect::<Result<Vec<u32>, ReadError>>()?;
    Ok(Segment { tag, counters, elements })
}

impl fmt::Display for Segment {
    /// The segment as written on the wire (without line break).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        write_segment(self, &mut s);
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_the_four_service_characters() {
        assert_eq!(escape("a?b'c+d:e"), "a??b?'c?+d?:e");
        let seg = Segment::counted("TXT", 2).simple("Kan?: ja + nee 'soms'");
        assert_eq!(seg.to_string(), "TXT:2+Kan???: ja ?+ nee ?'soms?''");
    }

    #[test]
    fn transliterates_to_printable_ascii() {
        let cases = [
            ("Patiënt geïnformeerd, café", "Patient geinformeerd, cafe"),
            ("Straße Ærø œuvre", "Strasse AEro oeuvre"),
            ("Dırk Øster", "Dirk Oster"),
            ("“quote” ‘single’ – — …", "\"quote\" 'single' - - ..."),
            ("€ 5,– en 10 µg", "EUR 5,- en 10 ug"),
            ("ﬁne ½", "fine 1/2"),
            ("tab\there\nnewline", "tab here newline"),
            ("soft\u{00AD}hyphen\u{200B}", "softhyphen"),
            ("e\u{0301}", "e"),
            ("北京 🙂\u{FE0F}", "?? ?"),
        ];
        for (input, want) in cases {
            assert_eq!(to_unoa(input), want, "{input:?}");
        }
    }

    #[test]
    fn wraps_at_words_and_cuts_long_words() {
        let text = "een twee drie vier vijf zes zeven acht negen tien elf twaalf dertien veertien";
        let lines = wrap(text, 20);
        assert!(lines.iter().all(|l| l.len() <= 20), "{lines:?}");
        assert_eq!(lines.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" "), text);
        assert!(lines[1..].iter().all(|l| l.starts_with("    ")), "{lines:?}");
        let long = "x".repeat(45);
        assert_eq!(wrap(&long, 20), ["x".repeat(20), format!("    {}", "x".repeat(16)), format!("    {}", "x".repeat(9))]);
        assert_eq!(wrap("a\n\nb", 70), ["a", "", "b"]);
        assert_eq!(wrap("  - item", 70), ["  - item"]);
        assert_eq!(wrap("    aaa bbb ccc", 20), ["    aaa bbb ccc"]);
        assert_eq!(wrap("  aaa bbb ccc ddd eee fff", 20), ["  aaa bbb ccc ddd", "      eee fff"]);
        assert_eq!(wrap("    aaa bbb ccc", 10), ["    aaa", "     bbb", "     ccc"]);
        assert_eq!(wrap("  xxxxxxxxxxxxxx", 10), ["  xxxxxxxx", "     xxxxx", "     x"]);
    }

    #[test]
    fn reads_una_crlf_folded_lines_and_counters() {
        let input = "UNA:+.? 'UNB+UNOA:1+A+B+260831:0930+1'\r\nTXT:12+a?+b?:c:d'\nBEP:1:1:2+x\r\ny'";
        let segs = read(input).unwrap();
        assert_eq!(segs.len(), 3);
        assert_eq!(segs[1].tag, "TXT");
        assert_eq!(segs[1].counters, [12]);
        assert_eq!(segs[1].elements, [vec!["a+b:c".to_owned(), "d".to_owned()]]);
        assert_eq!(segs[2].counters, [1, 1, 2]);
        assert_eq!(segs[2].value(0, 0), Some("xy"));
    }

    #[test]
    fn reader_reports_syntax_errors() {
        assert!(read("TXT+abc").unwrap_err().message.contains("no terminator"));
        assert!(read("txt+abc'").unwrap_err().message.contains("not a segment tag"));
        assert!(read("TXT:x+abc'").unwrap_err().message.contains("not a number"));
        assert!(read("TXT+abc?").is_err());
        assert_eq!(read("  \r\n").unwrap(), []);
    }

    #[test]
    fn envelope_counts_segments_and_messages() {
        let header = InterchangeHeader {
            sender: "S".into(),
            recipient: "R".into(),
            date: "260831".into(),
            time: "0930".into(),
            reference: "42".into(),
        };
        let msg = Message {
            reference: "42".into(),
            message_type: "MEDVRI".into(),
            version: "1".into(),
            body: counted_lines("TXT", ["a", "b"]),
        };
        let text = write(&interchange(&header, &[msg]), LineBreak::Lf);
        assert_eq!(
            text,
            "UNB+UNOA:1+S+R+260831:0930+42'\nUNH+42+MEDVRI:1'\nTXT:1+a'\nTXT:2+b'\nUNT+4+42'\nUNZ+1+42'\n"
        );
    }
}
