//! The PDF letter's layout: lines wrapped to the body width, the letter's items kept together, items
//! distributed over pages.
//!
//! Line breaking is linear in the text (issue 17: an unbroken word of 160,000 characters once took
//! 15 s, since every candidate line and every prefix of a cut word was measured from its start). Each
//! character's advance is looked up once per source line ([`Fonts::advances`]) and added to a running
//! width once for each line it is tried on; a word is tried on at most its own line and the next. The
//! running width adds left to right, exactly as measuring the whole candidate did, so every break is
//! where it was (a property test compares with the old algorithm).

use super::fonts::Fonts;
use super::BODY_SIZE;

/// One printed line: its x offset (from the indentation) and its text.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Line {
    pub(super) indent: f32,
    pub(super) text: String,
}

/// Adds one advance to a running width (counted in tests: the work line breaking does).
fn add(w: f32, advance: f32) -> f32 {
    #[cfg(test)]
    tests::MEASURED.with(|m| m.set(m.get() + 1));
    w + advance
}

/// The width of `start` followed by `chars`, or None once it passes the line (advances are never
/// negative, so a sum past the line stays past it).
fn fits(indent: f32, width: f32, start: f32, chars: &[(usize, char, f32)]) -> Option<f32> {
    let mut w = start;
    for g in chars {
        w = add(w, g.2);
        if indent + w > width {
            return None;
        }
    }
    Some(w)
}

/// Wraps one line of the letter to the body width: at word boundaries (spaces), a word wider than a
/// line cut where it must be; wrapped lines keep the line's indentation plus two spaces.
pub(super) fn wrap(source: &str, width: f32) -> Vec<Line> {
    let fonts = Fonts::get();
    let chars = fonts.advances(source, BODY_SIZE);
    let text = |from: &[(usize, char, f32)]| -> (usize, usize) {
        let start = from.first().map_or(source.len(), |g| g.0);
        let end = from.last().map_or(start, |g| g.0 + g.1.len_utf8());
        (start, end)
    };
    let lead = source.len() - source.trim_start_matches(' ').len();
    let space = fonts.space(BODY_SIZE);
    let first_indent = lead as f32 * space;
    let next_indent = first_indent + 2.0 * space;
    let mut out = Vec::new();
    let mut current = String::new();
    // The width of `current`, summed left to right.
    let mut current_w = 0.0f32;
    let mut indent = first_indent;
    for word in chars.split(|g| g.1 == ' ').filter(|w| !w.is_empty()) {
        let (ws, we) = text(word);
        let joined = if current.is_empty() { Some(0.0) } else { fits(indent, width, current_w, &[(0, ' ', space)]) };
        if let Some(w) = joined.and_then(|start| fits(indent, width, start, word)) {
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(&source[ws..we]);
            current_w = w;
            continue;
        }
        if !current.is_empty() {
            out.push(Line { indent, text: std::mem::take(&mut current) });
            indent = next_indent;
        }
        // Each pass measures one line's worth of the word, and the character that did not fit.
        let mut rest = word;
        loop {
            let mut w = 0.0f32;
            let mut cut = 0;
            let mut whole = true;
            for g in rest {
                w = add(w, g.2);
                if indent + w > width {
                    whole = false;
                    break;
                }
                cut += 1;
            }
            if whole {
                let (s, e) = text(rest);
                current = source[s..e].to_owned();
                current_w = w;
                break;
            }
            // Not even one character fits (an indentation past the margin): one character a line.
            let cut = cut.max(1);
            let (s, e) = text(&rest[..cut]);
            out.push(Line { indent, text: source[s..e].to_owned() });
            indent = next_indent;
            rest = &rest[cut..];
        }
    }
    if !current.is_empty() || out.is_empty() {
        out.push(Line { indent, text: current });
    }
    out
}

/// The letter's items: a line with the lines indented deeper under it, up to a blank line; each item
/// as its wrapped lines. A heading (a line that starts at the margin) is kept with the item after it,
/// so no page ends in a heading. A blank line is an item of its own (an empty line).
pub(super) fn items(text: &str, width: f32) -> Vec<Vec<Line>> {
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
pub(super) fn paginate(items: Vec<Vec<Line>>, first: usize, rest: usize) -> Vec<Vec<Line>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// Advances added up by line breaking on this thread.
        pub(super) static MEASURED: Cell<u64> = const { Cell::new(0) };
    }

    fn measured_by(f: impl FnOnce()) -> u64 {
        MEASURED.with(|m| m.set(0));
        f();
        MEASURED.with(Cell::get)
    }

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
    fn items_stay_together_when_they_fit() {
        let l = |t: &str| Line { indent: 0.0, text: t.into() };
        let pages = paginate(vec![vec![l("a"), l("b")], vec![l("c"), l("d"), l("e")]], 3, 3);
        assert_eq!(pages.len(), 2);
        assert_eq!(pages[1], vec![l("c"), l("d"), l("e")]);
    }

    /// The nominal width of a text, measured from its start (as the old line breaking did).
    fn width(text: &str) -> f32 {
        Fonts::get().advances(text, BODY_SIZE).iter().map(|a| add(0.0, a.2)).sum()
    }

    /// The line breaking as it was before it was made linear (measuring every candidate line and every
    /// prefix of a cut word from its start): the new one must break exactly where it did.
    fn reference_wrap(source: &str, width_: f32) -> Vec<Line> {
        let lead = source.len() - source.trim_start_matches(' ').len();
        let space = width(" ");
        let first_indent = lead as f32 * space;
        let next_indent = first_indent + 2.0 * space;
        let mut out = Vec::new();
        let mut current = String::new();
        let mut indent = first_indent;
        for word in source.split(' ').filter(|w| !w.is_empty()) {
            let candidate = if current.is_empty() { word.to_owned() } else { format!("{current} {word}") };
            if indent + width(&candidate) <= width_ {
                current = candidate;
                continue;
            }
            if !current.is_empty() {
                out.push(Line { indent, text: std::mem::take(&mut current) });
                indent = next_indent;
            }
            let mut rest = word;
            while indent + width(rest) > width_ {
                let mut cut = 0;
                for (i, c) in rest.char_indices() {
                    if indent + width(&rest[..i + c.len_utf8()]) > width_ {
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

    /// Issue 17: an unbroken word made line breaking quadratic. The work (advances added) must stay
    /// within a constant times the input, for one long word, a long text and a mix, at every size.
    #[test]
    fn line_breaking_work_is_linear_in_the_input() {
        for n in [1_000usize, 4_000, 16_000] {
            let word = "é".repeat(n);
            let text = "woord ".repeat(n / 6);
            let cut = "ab ".to_owned() + &"x".repeat(n) + " cd";
            for (what, input) in [("one word", &word), ("a text", &text), ("words around a long one", &cut)] {
                let chars = input.chars().count() as u64;
                let work = measured_by(|| {
                    wrap(input, 400.0);
                });
                assert!(work <= 3 * chars + 8, "{what}, {chars} characters: {work} advances added");
            }
        }
        // The old algorithm, for contrast: the same bound fails already at 1,000 characters.
        let word = "x".repeat(1_000);
        assert!(measured_by(|| drop(reference_wrap(&word, 400.0))) > 3 * 1_000 + 8);
    }

    /// A line indented past the right margin (free text that starts with hundreds of spaces) made the
    /// old cutting loop spin for ever on the empty rest of a cut word; it must end, one character a line.
    #[test]
    fn a_line_indented_past_the_margin_still_ends() {
        let source = " ".repeat(200) + "abc";
        let lines = wrap(&source, 400.0);
        assert_eq!(lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        /// The linear line breaking breaks exactly where the old one did (so no letter's layout moves),
        /// and adds each character's advance a bounded number of times.
        #[test]
        fn linear_wrap_breaks_where_the_old_one_did(
            words in proptest::collection::vec("[a-zé ]{0,6}|x{60,400}", 0..40),
            lead in 0usize..12,
            width in 60.0f32..460.0,
        ) {
            let source = " ".repeat(lead) + &words.join(" ");
            let chars = source.chars().count() as u64;
            let mut new = Vec::new();
            let work = measured_by(|| new = wrap(&source, width));
            proptest::prop_assert_eq!(new, reference_wrap(&source, width));
            proptest::prop_assert!(work <= 3 * chars + 8, "{} added for {} characters", work, chars);
        }
    }
}
