//! A record as a FHIR R4 QuestionnaireResponse answering the national form ACP-zib2020
//! (`translate --to questionnaire-response`).
//!
//! The items come from the same description of the form that the reader uses
//! (`crate::intake::questionnaire::form`): the writer here is the second implementation of its `Walk`,
//! so whatever it writes the reader reads back. What a response cannot carry (treatment discussion
//! dates, the document of an advance directive, professional identifiers, ...) is listed on
//! `form::walk`; what it carries in the Questionnaire's free-text items (4g's restriction in 1404, the
//! advance directives in 1198, roles the Questionnaire does not offer as "Anders", the place-of-death
//! "Anders" text in 1192) is documented there too. No linkId or answer code outside the Questionnaire.
//!
//! Output conventions:
//! - items in the Questionnaire's order, with the Questionnaire's `text`; an item, group or section
//!   without data is left out, and so is a read-only code ("MetingNaam", treatment) whose group has
//!   nothing else;
//! - an item that explains an answer (Toelichting, SpecificatieAnders, "Anders, namelijk") is nested
//!   under that answer (`answer.item`), as FHIR asks for children of a question;
//! - deterministic: `authored` is the date the form was filled in, never the clock, and `id` is derived
//!   from the content, so the same record always gives the same bytes.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::fhir::model as fhir;

use crate::intake::questionnaire::form::{self, Fixed, Kind, Walk, YesNo};
use crate::mappings::{self, Coding};
use crate::record::*;
use crate::validate::rules::Completeness;

/// The record as a QuestionnaireResponse. Total: any record gives a response, never a panic.
pub fn render(record: &AcpRecord) -> Value {
    let mut qr = response(record);
    qr.id = Some(content_id(&qr));
    serde_json::to_value(fhir::Resource::from(qr)).expect("the FHIR model serialises (no maps with non-string keys)")
}

/// The response without an id. The FHIR Bundle gives it an id of its own, so it takes this and is
/// spared hashing the whole item tree.
pub(crate) fn response(record: &AcpRecord) -> fhir::QuestionnaireResponse {
    // The walk works on `&mut`, since the reader fills the record through it; the writer only reads.
    let mut copy = record.clone();
    let mut writer = Writer { open: vec![Vec::new()], emitted: 0 };
    form::walk(&mut writer, &mut copy);
    let items = nest(writer.open.pop().unwrap_or_default(), None).into_iter().map(to_item).collect();

    let m = mappings::get();
    fhir::QuestionnaireResponse {
        // The newest canonical is listed last in mappings/canonicals.toml; the reader accepts them all.
        questionnaire: m.canonicals.questionnaire.get("acp-zib2020").and_then(|urls| urls.last()).cloned(),
        // A partial record is a form not (yet) filled in whole; readers take it as partial.
        status: Some(if Completeness::of(record) == Completeness::Complete { "completed" } else { "in-progress" }.into()),
        subject: subject_identifier(&record.patient)
            .map(|identifier| fhir::Reference { identifier: Some(identifier), ..Default::default() }),
        authored: record.date_filled_in.as_ref().map(|d| d.as_str().to_owned()),
        item: items,
        ..Default::default()
    }
}

/// The BSN when known, otherwise the first other identifier: `subject.identifier` holds one.
fn subject_identifier(patient: &Patient) -> Option<fhir::Identifier> {
    let (system, value) = match &patient.bsn {
        Some(bsn) => (mappings::get().naming_systems.get("bsn")?.uri.as_str(), bsn.as_str()),
        None => patient.other_identifiers.first().map(|i| (i.system.as_str(), i.value.as_str()))?,
    };
    Some(fhir::Identifier { system: Some(system.to_owned()), value: Some(value.to_owned()), ..Default::default() })
}

/// A FHIR id from the content: the first 128 bits of the SHA-256 of the resource without its id
/// (nor its `resourceType`), as compact JSON.
fn content_id(qr: &fhir::QuestionnaireResponse) -> String {
    // Hashed as it is written, which spares a copy of the JSON text.
    let mut hasher = HashWriter(Sha256::new());
    serde_json::to_writer(&mut hasher, qr).expect("the FHIR model serialises");
    hex::encode(&hasher.0.finalize()[..16])
}

/// Feeds serialised bytes straight into a hash.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An item being written.
struct Node {
    link: &'static str,
    answers: Vec<AnswerNode>,
    items: Vec<Node>,
    /// A read-only code, which alone does not make its group worth writing.
    fixed: bool,
}

struct AnswerNode {
    value: AnswerValue,
    items: Vec<Node>,
}

/// The `value[x]` of an answer.
enum AnswerValue {
    String(String),
    DateTime(String),
    Coding(fhir::Coding),
}

impl Node {
    fn new(link: &'static str, answers: Vec<AnswerNode>) -> Node {
        Node { link, answers, items: Vec::new(), fixed: false }
    }
}

fn answer(value: AnswerValue) -> AnswerNode {
    AnswerNode { value, items: Vec::new() }
}

fn text_answer(s: &str) -> AnswerNode {
    answer(AnswerValue::String(s.to_owned()))
}

fn coding(c: &Coding) -> AnswerNode {
    let filled = |s: &String| (!s.is_empty()).then(|| s.clone());
    // The Questionnaire's local codes (Ja/Nee, ICD) have no system.
    answer(AnswerValue::Coding(fhir::Coding {
        system: filled(&c.system),
        code: Some(c.code.clone()),
        display: filled(&c.display),
        ..Default::default()
    }))
}

fn coded<T: Coded>(v: T) -> AnswerNode {
    coding(v.entry().questionnaire_coding())
}

/// Text worth writing: blank text is "not recorded" to every reader.
fn filled(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.trim().is_empty())
}

/// Emits items as the walk visits them. Items go into the innermost open group; explanations are
/// moved under the answer they explain, and everything is put in the Questionnaire's order, by [`nest`].
struct Writer {
    /// The items of each open group, innermost last; the first is the response's top level.
    open: Vec<Vec<Node>>,
    /// How many items were emitted, so that [`Walk::part`] knows whether its leading answer was written.
    emitted: usize,
}

impl Writer {
    fn emit(&mut self, node: Node) {
        self.emitted += 1;
        if let Some(items) = self.open.last_mut() {
            items.push(node);
        }
    }

    /// Runs `body` in a fresh group and emits the group when anything but read-only codes was written.
    fn collect(&mut self, link: &'static str, body: impl FnOnce(&mut Self)) {
        self.open.push(Vec::new());
        body(self);
        let items = self.open.pop().unwrap_or_default();
        if items.iter().any(|i| !i.fixed) {
            self.emit(Node { link, answers: Vec::new(), items, fixed: false });
        }
    }
}

impl Walk for Writer {
    fn group(&mut self, link: &'static str, body: impl FnOnce(&mut Self)) {
        self.collect(link, body);
    }

    fn repeat<T>(
        &mut self,
        link: &'static str,
        ptr: &str,
        list: &mut Vec<T>,
        mut body: impl FnMut(&mut Self, &str, &mut Option<T>),
    ) {
        for (i, e) in std::mem::take(list).into_iter().enumerate() {
            self.collect(link, |w| body(w, &format!("{ptr}/{i}"), &mut Some(e)));
        }
    }

    fn optional<T: Default>(&mut self, slot: &mut Option<T>, body: impl FnOnce(&mut Self, &mut T)) {
        if let Some(t) = slot {
            body(self, t);
        }
    }

    fn part<T, H>(
        &mut self,
        slot: &mut Option<T>,
        head: impl FnOnce(&mut Self, &mut Option<H>),
        _assemble: impl FnOnce(H) -> T,
        split: impl FnOnce(&T) -> H,
        rest: impl FnOnce(&mut Self, &mut T),
    ) {
        let Some(t) = slot else { return };
        let before = self.emitted;
        head(self, &mut Some(split(t)));
        // A part whose leading answer is blank (a phone without a number) is not written at all: its
        // other items would be unreadable without it.
        if self.emitted > before {
            rest(self, t);
        }
    }

    fn text(&mut self, link: &'static str, _ptr: &str, slot: &mut Option<String>) {
        if let Some(s) = filled(slot) {
            self.emit(Node::new(link, vec![text_answer(s)]));
        }
    }

    fn date(&mut self, link: &'static str, _ptr: &str, slot: &mut Option<FhirDate>) {
        // Items 963 and 967 are dateTime items; a FHIR dateTime also takes a date of any precision.
        if let Some(d) = slot {
            self.emit(Node::new(link, vec![answer(AnswerValue::DateTime(d.as_str().to_owned()))]));
        }
    }

    fn coded<T: Coded>(&mut self, link: &'static str, _ptr: &str, slot: &mut Option<T>) {
        if let Some(v) = slot {
            self.emit(Node::new(link, vec![coded(*v)]));
        }
    }

    fn yes_no(&mut self, link: &'static str, _ptr: &str, slot: &mut Option<bool>) {
        if let Some(b) = slot {
            self.emit(Node::new(link, vec![coded(YesNo::of(*b))]));
        }
    }

    fn flag(&mut self, link: &'static str, _ptr: &str, slot: &mut bool) {
        if *slot {
            let local =
                Coding { system: String::new(), code: form::PATIENT_PRESENT.into(), display: form::PATIENT_PRESENT.into() };
            self.emit(Node::new(link, vec![coding(&local)]));
        }
    }

    fn fixed(&mut self, link: &'static str, code: Fixed) {
        if let Some(c) = code.coding() {
            self.emit(Node { fixed: true, ..Node::new(link, vec![coding(c)]) });
        }
    }

    fn answer<T: Coded>(&mut self, link: &'static str, other: &'static str, _ptr: &str, slot: &mut Option<Answer<T>>) {
        let Some(a) = slot else { return };
        let mut node = coded(a.value());
        if let Some(t) = a.other_text().filter(|t| !t.trim().is_empty()) {
            node.items.push(Node::new(other, vec![text_answer(t)]));
        }
        self.emit(Node::new(link, vec![node]));
    }

    fn answers<T: Coded>(&mut self, link: &'static str, other: &'static str, _ptr: &str, list: &mut Vec<Answer<T>>) {
        if list.is_empty() {
            return;
        }
        // An answer the Questionnaire does not offer here is written as "Anders", in its place. The
        // form has one "Anders, namelijk" item per question: every "Anders" text and the name of every
        // such answer go into it, joined by "; ", on the first "Anders".
        let mut texts: Vec<&str> = Vec::new();
        let mut first = None;
        let mut answers: Vec<AnswerNode> = Vec::new();
        for a in list.iter() {
            let v = a.value();
            if form::offered(link, v) && !v.is_other() {
                answers.push(coded(v));
                continue;
            }
            match a.other_text() {
                _ if !v.is_other() => texts.push(&v.entry().coding.display),
                Some(t) if !t.trim().is_empty() => texts.push(t),
                _ => {}
            }
            first.get_or_insert(answers.len());
            answers.push(coded(T::from_key("other").unwrap_or(v)));
        }
        if let (Some(i), false) = (first, texts.is_empty()) {
            answers[i].items.push(Node::new(other, vec![text_answer(&texts.join("; "))]));
        }
        self.emit(Node::new(link, answers));
    }

    fn decision(&mut self, link: &'static str, restriction: &'static str, _ptr: &str, slot: &mut Option<Decision>) {
        let Some(d) = slot else { return };
        self.emit(Node::new(link, vec![coded(d.code())]));
        if let Some(r) = d.restriction() {
            self.emit(Node::new(restriction, vec![text_answer(r)]));
        }
    }

    fn refuse(&mut self, _link: &'static str, _message: &str) {}

    fn open_treatment(&mut self, link: &'static str, _ptr: &str, slot: &mut Option<String>) {
        let value = match filled(slot) {
            Some(s) => text_answer(s),
            None => coded(Treatment::Other),
        };
        self.emit(Node::new(link, vec![value]));
    }
}

/// Whether an item explains an answer (its parent in the form is a question, not a group).
fn explains_an_answer(link: &str) -> Option<&'static str> {
    let parent = form::item(link)?.parent?;
    (form::item(parent)?.kind != Kind::Group).then_some(parent)
}

/// Moves every explaining item under the answer of its question, and puts items in the form's order,
/// at every level. A question left unanswered (an explanation of capacity without the yes/no) still
/// carries its explanation, as a nested item of the question itself.
fn nest(items: Vec<Node>, owner: Option<&str>) -> Vec<Node> {
    // Items already inside their question (`owner`) stay where they are.
    let (explaining, mut out): (Vec<Node>, Vec<Node>) =
        items.into_iter().partition(|n| explains_an_answer(n.link).is_some_and(|parent| Some(parent) != owner));
    for n in explaining {
        let Some(parent) = explains_an_answer(n.link) else { continue };
        match out.iter_mut().find(|q| q.link == parent) {
            Some(q) => match q.answers.first_mut() {
                Some(a) => a.items.push(n),
                None => q.items.push(n),
            },
            None => out.push(Node { link: parent, answers: Vec::new(), items: vec![n], fixed: false }),
        }
    }
    // Stable, so repeated groups keep the record's order.
    out.sort_by_key(|n| form::position(n.link));
    for n in &mut out {
        n.items = nest(std::mem::take(&mut n.items), Some(n.link));
        for a in &mut n.answers {
            a.items = nest(std::mem::take(&mut a.items), Some(n.link));
        }
    }
    out
}

fn to_item(n: Node) -> fhir::QuestionnaireResponseItem {
    fhir::QuestionnaireResponseItem {
        link_id: Some(n.link.into()),
        text: form::item(n.link).map(|item| item.text.into()),
        answer: n
            .answers
            .into_iter()
            .map(|a| {
                let mut out = fhir::QuestionnaireResponseAnswer {
                    item: a.items.into_iter().map(to_item).collect(),
                    ..Default::default()
                };
                match a.value {
                    AnswerValue::String(s) => out.value_string = Some(s),
                    AnswerValue::DateTime(d) => out.value_date_time = Some(d),
                    AnswerValue::Coding(c) => out.value_coding = Some(c),
                }
                out
            })
            .collect(),
        item: n.items.into_iter().map(to_item).collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_record_is_an_empty_but_valid_response() {
        let qr = render(&AcpRecord::default());
        assert_eq!(qr["resourceType"], "QuestionnaireResponse");
        // Without the header an empty record is a partial one: a form still in progress.
        assert_eq!(qr["status"], "in-progress");
        assert!(qr.get("item").is_none(), "{qr:#}");
        assert_eq!(qr["id"].as_str().map(str::len), Some(32));
    }

    #[test]
    fn an_explanation_without_its_answer_is_kept_under_the_question() {
        let r = AcpRecord {
            legal_capacity: Some(LegalCapacity { capable: None, explanation: Some("wisselend".into()) }),
            ..Default::default()
        };
        let qr = render(&r);
        let q = &qr["item"][0]["item"][0];
        assert_eq!(q["linkId"], "1406");
        assert!(q.get("answer").is_none());
        assert_eq!(q["item"][0]["linkId"], "1407");
        assert_eq!(q["item"][0]["answer"][0]["valueString"], "wisselend");
    }

    #[test]
    fn a_group_with_only_its_read_only_code_is_left_out() {
        let r = AcpRecord { care_wishes: Some("   ".into()), ..Default::default() };
        assert!(render(&r).get("item").is_none());
    }
}
