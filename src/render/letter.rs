//! Renderer: the clinical letter (Dutch, plain text) that every human-readable channel carries: the
//! Edifact `TXT` lines, the secure-mail text and the printed PDF.
//!
//! The wording lives in one template, `mappings/letter.nl.txt` (minijinja); this module only turns the
//! record into the values the template shows. Coded answers arrive as their key and their Dutch label
//! from `mappings/valuesets.toml`, dates as dd-mm-jjjj, and every form item is present in the context
//! (absent as `none`), so the template states "niet vastgelegd" instead of leaving an item out, and a
//! typing error in the template fails every test instead of blanking an item.

use std::sync::OnceLock;

use minijinja::value::{Serde, Value};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use crate::mappings;
use crate::render::packaging::Moment;
use crate::record::{
    AcpRecord, AdvanceDirective, Answer, Coded, ContactPerson, Decision, DirectiveNotInForce, FhirDate,
    RecordedDirective, TreatmentLimit, TreatmentLimits, NAMED_TREATMENTS,
};

const TEMPLATE_NAME: &str = "letter.nl.txt";
const TEMPLATE: &str = include_str!("../../mappings/letter.nl.txt");

/// A coded answer as the template sees it: the key to branch on, the form's label to print, and the
/// "Anders, namelijk" text where the answer has one.
#[derive(Serialize)]
struct Label {
    key: &'static str,
    label: String,
    other: Option<String>,
}

fn label<T: Coded>(v: T) -> Label {
    Label { key: v.key(), label: v.entry().coding.display.clone(), other: None }
}

fn answer<T: Coded>(a: &Answer<T>) -> Label {
    Label { other: a.other_text().map(one_line), ..label(a.value()) }
}

/// A Ja/Nee item the record holds as a boolean (1, 1d, 8a), labelled from the `yes-no` value set.
fn yes_no(b: bool) -> Label {
    let key = if b { "yes" } else { "no" };
    let label = mappings::get().valueset("yes-no").by_key(key).map(|e| e.coding.display.clone()).unwrap_or_default();
    Label { key, label, other: None }
}

/// dd-mm-jjjj (or mm-jjjj, jjjj at lower precision); a value with a time as dd-mm-jjjj hh:mm in Dutch
/// local time (a time given in UTC would otherwise read as local, and near midnight on the wrong day).
fn date(d: &FhirDate) -> String {
    if d.has_time() {
        return Moment::from_date(d).dutch_date_time();
    }
    let s = d.as_str();
    let day = [s.get(8..10), s.get(5..7), s.get(0..4)].into_iter().flatten().collect::<Vec<_>>().join("-");
    match (d.has_time(), s.get(11..16)) {
        (true, Some(time)) => format!("{day} {time}"),
        _ => day,
    }
}

/// Every character that starts a new line somewhere: CR, LF (and CRLF), NEL, VT, FF, and Unicode's line
/// and paragraph separators. A PDF viewer, a mail client or an Edifact reader may each break on a
/// different one, so the letter treats them all alike.
const LINE_BREAKS: [char; 7] = ['\r', '\n', '\u{85}', '\u{b}', '\u{c}', '\u{2028}', '\u{2029}'];

/// A free-text item (explanation, restriction, wishes): trimmed, every kind of line break made a plain
/// `\n`. The template then marks each continuation line with `cont`, so no line of free text can stand
/// where an item line stands: a restriction containing "\n  4b. ... Wel uitvoeren" shows that text
/// quoted inside its own item, never as a line of its own above the real 4b.
fn text(s: &Option<String>) -> Option<String> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(normalise_breaks)
}

fn normalise_breaks(s: &str) -> String {
    if !s.contains(LINE_BREAKS) {
        return s.to_owned();
    }
    s.replace("\r\n", "\n").replace(LINE_BREAKS, "\n")
}

/// A value printed inside one line (a name, a number, an "Anders, namelijk" text): a line break there
/// can only be a mistake of the source, and must not start a line in the letter, so it is shown as
/// " / ".
fn one_line(s: &str) -> String {
    if !s.contains(LINE_BREAKS) {
        return s.to_owned();
    }
    s.split(LINE_BREAKS).map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" / ")
}

/// How the letter shows a free text that follows an item's label (a restriction, an explanation):
/// line breaks normalised, continuation lines marked. For tests and for channels that must find the
/// text again.
pub fn shown_text(text: &str) -> String {
    continuation(normalise_breaks(text), DETAIL_INDENT)
}

/// The indentation of an item's detail lines, and so of its free text's continuation lines (`cont(6)`
/// in the template).
pub const DETAIL_INDENT: usize = 6;

fn line_text(s: &Option<String>) -> Option<String> {
    text(s).map(|t| one_line(&t))
}

/// The template filter `cont(n)`: every line after the first starts with `n` spaces and `| `, so a
/// continuation is visibly part of the item above it (an empty line keeps only the bar, so the letter
/// has no trailing spaces).
fn continuation(value: String, indent: usize) -> String {
    if !value.contains('\n') {
        return value;
    }
    let bar = format!("{}|", " ".repeat(indent));
    let mut out = String::with_capacity(value.len() + 16);
    for (i, line) in value.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            out.push_str(&bar);
            if !line.is_empty() {
                out.push(' ');
            }
        }
        out.push_str(line);
    }
    out
}

#[derive(Serialize)]
struct Phone {
    number: String,
    kind: Option<Label>,
    number_use: Option<Label>,
    comment: Option<String>,
}

#[derive(Serialize)]
struct Email {
    address: String,
    email_use: Option<Label>,
}

#[derive(Serialize)]
struct Contact {
    name: Option<String>,
    relationship: Option<Label>,
    phones: Vec<Phone>,
    emails: Vec<Email>,
}

fn contact(c: &ContactPerson) -> Contact {
    Contact {
        name: Some(one_line(&c.name.display())).filter(|n| !n.is_empty()),
        relationship: c.relationship.as_ref().map(answer),
        phones: c
            .phones
            .iter()
            .map(|p| Phone {
                number: one_line(&p.number),
                kind: p.telecom_type.map(label),
                number_use: p.number_use.map(label),
                comment: line_text(&p.comment),
            })
            .collect(),
        emails: c
            .emails
            .iter()
            .map(|e| Email { address: one_line(&e.address), email_use: e.email_use.map(label) })
            .collect(),
    }
}

#[derive(Serialize)]
struct Representative {
    #[serde(flatten)]
    person: Contact,
    roles: Vec<Label>,
    is_first_contact: Option<Label>,
}

#[derive(Serialize)]
struct Limit {
    /// The treatment's key (`resuscitation`, ...; `other` for 4g).
    key: &'static str,
    /// 4g: what the treatment is, as written.
    treatment: Option<String>,
    decision: Option<DecisionView>,
    explanation: Option<String>,
    discussed_on: Option<String>,
}

#[derive(Serialize)]
struct DecisionView {
    key: &'static str,
    label: String,
    restriction: Option<String>,
}

fn decision(d: &Decision) -> DecisionView {
    let l = label(d.code());
    DecisionView { key: l.key, label: l.label, restriction: d.restriction().map(normalise_breaks) }
}

fn limit(key: &'static str, treatment: Option<String>, l: Option<&TreatmentLimit>) -> Limit {
    Limit {
        key,
        treatment,
        decision: l.map(|l| decision(&l.decision)),
        explanation: l.and_then(|l| text(&l.explanation)),
        discussed_on: l.and_then(|l| l.discussed_on.as_ref()).map(date),
    }
}

#[derive(Serialize)]
struct Icd {
    present: Label,
    product_type: Option<Label>,
    explanation: Option<String>,
}

#[derive(Serialize)]
struct IcdDeactivation {
    agreement: Label,
    explanation: Option<String>,
    discussed_on: Option<String>,
}

#[derive(Serialize)]
struct Explained {
    value: Label,
    explanation: Option<String>,
}

#[derive(Serialize)]
struct Earlier {
    recorded: Label,
    explanation: Option<String>,
    differ_from_current: Option<Label>,
}

#[derive(Serialize)]
struct Attachment {
    title: Option<String>,
    content_type: String,
}

#[derive(Serialize)]
struct Directive {
    kind: Label,
    date: Option<String>,
    comment: Option<String>,
    /// The attached document (the scanned declaration), mentioned by title; its bytes travel apart.
    document: Option<Attachment>,
}

fn directive(d: &AdvanceDirective) -> Directive {
    Directive {
        kind: label(d.kind),
        date: d.date.as_ref().map(date),
        comment: text(&d.comment),
        document: d
            .document
            .as_ref()
            .map(|doc| Attachment { title: line_text(&doc.title), content_type: one_line(&doc.content_type) }),
    }
}

fn icd_deactivation(d: &crate::record::IcdDeactivation) -> IcdDeactivation {
    IcdDeactivation {
        agreement: label(d.agreement),
        explanation: text(&d.explanation),
        discussed_on: d.discussed_on.as_ref().map(date),
    }
}

/// A directive that is not in force: its status and end, and what it was (one of the three).
#[derive(Serialize)]
struct NotInForce {
    status: Label,
    ended_on: Option<String>,
    /// 4a-g, with the key of the treatment (`other` for 4g).
    limit: Option<Limit>,
    icd_deactivation: Option<IcdDeactivation>,
    directive: Option<Directive>,
}

fn not_in_force(d: &DirectiveNotInForce) -> NotInForce {
    let mut n = NotInForce {
        status: label(d.status),
        ended_on: d.ended_on.as_ref().map(date),
        limit: None,
        icd_deactivation: None,
        directive: None,
    };
    match &d.directive {
        RecordedDirective::TreatmentLimit(l) => n.limit = Some(limit(l.treatment.key(), None, Some(&l.limit))),
        RecordedDirective::OtherTreatmentLimit(o) => n.limit = Some(limit("other", line_text(&o.treatment), Some(&o.limit))),
        RecordedDirective::IcdDeactivation(i) => n.icd_deactivation = Some(icd_deactivation(i)),
        RecordedDirective::AdvanceDirective(a) => n.directive = Some(directive(a)),
    }
    n
}

/// Everything the template shows; every item is a field, `none` when the record does not hold it.
#[derive(Serialize)]
struct Letter {
    patient_name: Option<String>,
    birth_date: Option<String>,
    bsn: Option<String>,
    date: Option<String>,
    held_by_name: Option<String>,
    held_by_function: Option<Label>,
    /// `none`: item 2 not recorded.
    present_patient: Option<bool>,
    present_others: Vec<Label>,
    capable: Option<Label>,
    capacity_explanation: Option<String>,
    representative: Option<Representative>,
    first_contact: Option<Contact>,
    goal: Option<Label>,
    limits: Vec<Limit>,
    other_limits: Vec<Limit>,
    icd: Option<Icd>,
    /// 4i is asked when the patient has an ICD; stated when recorded or when it should have been.
    icd_deactivation_asked: bool,
    icd_deactivation: Option<IcdDeactivation>,
    care_wishes: Option<String>,
    place_of_death: Option<Explained>,
    euthanasia: Option<Explained>,
    organ_donation: Option<Label>,
    sense_of_purpose: Option<String>,
    earlier: Option<Earlier>,
    relatives_informed: Option<Label>,
    sharing_consent: Option<Label>,
    directives: Vec<Directive>,
    /// Directives not in force: their own section after everything current, never among the limits.
    not_in_force: Vec<NotInForce>,
}

fn view(r: &AcpRecord) -> Letter {
    let tl: &TreatmentLimits = &r.treatment_limits;
    let icd_yes = r.icd.as_ref().is_some_and(|i| i.present.key() == "yes");
    Letter {
        patient_name: Some(one_line(&r.patient.name.display())).filter(|n| !n.is_empty()),
        birth_date: r.patient.birth_date.as_ref().map(date),
        bsn: r.patient.bsn.as_ref().map(|b| b.to_string()),
        date: r.date_filled_in.as_ref().map(date),
        held_by_name: r.conducted_by.as_ref().map(|p| one_line(&p.name.display())).filter(|n| !n.is_empty()),
        held_by_function: r.conducted_by.as_ref().and_then(|p| p.function).map(label),
        present_patient: r.present.as_ref().map(|p| p.patient),
        present_others: r
            .present
            .iter()
            .flat_map(|p| p.roles.iter().map(answer).chain(p.relationships.iter().map(answer)))
            .collect(),
        capable: r.legal_capacity.as_ref().and_then(|c| c.capable).map(yes_no),
        capacity_explanation: r.legal_capacity.as_ref().and_then(|c| text(&c.explanation)),
        representative: r.representative.as_ref().map(|rep| Representative {
            person: contact(&rep.person),
            roles: rep.roles.iter().map(answer).collect(),
            is_first_contact: rep.is_first_contact.map(yes_no),
        }),
        first_contact: r.first_contact.as_ref().map(contact),
        goal: r.medical_policy_goal.map(label),
        limits: NAMED_TREATMENTS.iter().map(|t| limit(t.key(), None, tl.get(*t))).collect(),
        other_limits: tl.other.iter().map(|o| limit("other", line_text(&o.treatment), Some(&o.limit))).collect(),
        icd: r.icd.as_ref().map(|i| Icd {
            present: label(i.present),
            product_type: i.product_type.map(label),
            explanation: text(&i.explanation),
        }),
        icd_deactivation_asked: icd_yes || r.icd_deactivation.is_some(),
        icd_deactivation: r.icd_deactivation.as_ref().map(icd_deactivation),
        care_wishes: text(&r.care_wishes),
        place_of_death: r
            .place_of_death
            .as_ref()
            .map(|p| Explained { value: answer(&p.preference), explanation: text(&p.explanation) }),
        euthanasia: r
            .euthanasia
            .as_ref()
            .map(|e| Explained { value: label(e.position), explanation: text(&e.explanation) }),
        organ_donation: r.organ_donation_registered.map(label),
        sense_of_purpose: text(&r.sense_of_purpose),
        earlier: r.earlier_agreements.as_ref().map(|e| Earlier {
            recorded: label(e.recorded),
            explanation: text(&e.explanation),
            differ_from_current: e.differ_from_current.map(label),
        }),
        relatives_informed: r.relatives_informed.map(yes_no),
        sharing_consent: r.sharing_consent.map(label),
        directives: r.advance_directives.iter().map(directive).collect(),
        not_in_force: r.directives_not_in_force.iter().map(not_in_force).collect(),
    }
}

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // Plain text: nothing to escape. Strict: a misspelt name in the template is an error in every
        // test, not a silently empty item in a clinical letter.
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .unwrap_or_else(|e| panic!("letter template syntax settings: {e}")),
        );
        env.add_filter("cont", continuation);
        env.add_template(TEMPLATE_NAME, TEMPLATE)
            .unwrap_or_else(|e| panic!("mappings/{TEMPLATE_NAME} does not compile: {e:#}"));
        env
    })
}

/// Trims the template's leading line breaks and ends the letter with exactly one newline. Nothing
/// inside the letter is touched: free text, above all a restriction, must reach the reader exactly as
/// written (its own blank lines and spaces included), so the template itself is laid out to leave no
/// stray blank lines or trailing spaces (checked by the tests below).
fn finish(raw: &str) -> String {
    let mut out = raw.trim_start_matches(['\n', '\r']).trim_end().to_owned();
    out.push('\n');
    out
}

/// The letter for a record: plain text, Dutch, deterministic, one item per line (free text keeps its
/// own line breaks). Lines are not wrapped; each channel wraps to its own width.
pub fn render(record: &AcpRecord) -> String {
    // The template is embedded and every record gives the same shape of context (all fields present,
    // absent ones as `none`), so a render error is a defect of the template that the tests exercise,
    // never a property of the record.
    let tpl = environment().get_template(TEMPLATE_NAME).unwrap_or_else(|e| panic!("mappings/{TEMPLATE_NAME}: {e:#}"));
    let raw = tpl
        .render(Value::from(Serde(&view(record))))
        .unwrap_or_else(|e| panic!("mappings/{TEMPLATE_NAME} failed to render: {e:#}"));
    finish(&raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_dutch_order_at_their_precision() {
        let d = |s: &str| date(&FhirDate::parse(s).unwrap());
        assert_eq!(d("2025-06-02"), "02-06-2025");
        assert_eq!(d("1941-03"), "03-1941");
        assert_eq!(d("1941"), "1941");
        // Times in Dutch local time, summer time included.
        assert_eq!(d("2020-10-01T16:27:36.364Z"), "01-10-2020 18:27");
        assert_eq!(d("2026-03-29T00:30:00Z"), "29-03-2026 01:30");
        assert_eq!(d("2026-10-25T00:30:00Z"), "25-10-2026 02:30");
        assert_eq!(d("2026-12-31T23:30:00Z"), "01-01-2027 00:30");
        assert_eq!(d("2026-12-31T23:30:00+01:00"), "31-12-2026 23:30");
    }

    /// The template's own layout: no trailing spaces, no two blank lines in a row, for records whose
    /// free text has neither.
    #[test]
    fn the_template_leaves_no_stray_whitespace() {
        let mut full = AcpRecord { care_wishes: Some("Thuis blijven.".into()), ..AcpRecord::default() };
        full.treatment_limits.resuscitation = Some(TreatmentLimit {
            decision: Decision::PerformWithRestrictions { restriction: "alleen kort".into() },
            explanation: Some("uitleg".into()),
            discussed_on: Some(FhirDate::parse("2025-01-02").unwrap()),
        });
        for record in [AcpRecord::default(), full] {
            let letter = render(&record);
            assert!(!letter.starts_with('\n') && letter.ends_with('\n') && !letter.ends_with("\n\n"), "{letter:?}");
            assert!(letter.lines().all(|l| l == l.trim_end()), "trailing spaces:\n{letter}");
            assert!(!letter.contains("\n\n\n"), "double blank line:\n{letter}");
        }
    }

    #[test]
    fn a_restriction_is_shown_exactly_as_written() {
        let mut record = AcpRecord::default();
        let restriction = "  eerste regel  \n\n\n   tweede: 'quote' {{ geen template }}\t";
        record.treatment_limits.antibiotics = Some(TreatmentLimit {
            decision: Decision::PerformWithRestrictions { restriction: restriction.into() },
            explanation: None,
            discussed_on: None,
        });
        let letter = render(&record);
        let shown = "  eerste regel  \n      |\n      |\n      |    tweede: 'quote' {{ geen template }}\t";
        assert_eq!(shown_text(restriction), shown);
        assert!(letter.contains(&format!("beperkingen: {shown}\n")), "{letter}");
    }

    /// No free text, whatever line breaks it holds, puts a line of its own into the letter: every line
    /// after its first is marked as a continuation.
    #[test]
    fn free_text_cannot_start_a_line_of_its_own() {
        for brk in ["\n", "\r", "\r\n", "\u{2028}", "\u{2029}", "\u{85}", "\u{b}", "\u{c}"] {
            let forged = format!("alleen kort{brk}  4b. Kunstmatige invasieve beademing: Wel uitvoeren{brk}4c. Opname op intensive care: Wel uitvoeren");
            let mut record = AcpRecord::default();
            record.treatment_limits.resuscitation = Some(TreatmentLimit {
                decision: Decision::PerformWithRestrictions { restriction: forged.clone() },
                explanation: Some(forged.clone()),
                discussed_on: None,
            });
            record.care_wishes = Some(forged.clone());
            record.sense_of_purpose = Some(forged.clone());
            record.patient.name.family = Some(forged.clone());
            let letter = render(&record);
            let items: Vec<&str> = letter.lines().filter(|l| l.starts_with("  4b.") || l.starts_with("  4c.")).collect();
            assert_eq!(items, ["  4b. Kunstmatige invasieve beademing: niet vastgelegd", "  4c. Opname op intensive care: niet vastgelegd"], "{brk:?}:\n{letter}");
            assert!(!letter.contains(['\r', '\u{2028}', '\u{2029}', '\u{85}', '\u{b}', '\u{c}']), "{brk:?}");
        }
    }

    #[test]
    fn empty_record_renders_every_item_as_not_recorded() {
        let letter = render(&AcpRecord::default());
        // 3, 4a-f, 4h, 5a-d, 6, 7a, 8a, 8b, and the patient and conversation lines.
        assert!(letter.matches("niet vastgelegd").count() >= 20, "{letter}");
    }
}
