//! Intake of a FHIR R4 QuestionnaireResponse answering the national form ACP-zib2020.
//!
//! ## One description of the form, used in both directions
//! `form::walk` states once which record field each item of the Questionnaire carries. It is generic
//! over `form::Walk`: the `Reader` here fills a record from a response, the writer in
//! `crate::render::questionnaire` emits items from a record, and `form::Tracer` notes which record
//! pointer each linkId carries (for [`locate`]). A linkId is written in exactly one place, so the reader,
//! the writer and the error locations cannot drift apart. (The description depends on nothing in this
//! file; it could as well live in `crate::fhir`, the FHIR plumbing that intake and render share.)
//!
//! ## How a response is read
//! The items are first parsed into a tree that records every item's FHIRPath. The walk then looks each
//! linkId up *below the group it belongs to*, whether the sender nested it as `item` under its parent
//! item or under the parent's `answer[].item` (both occur in the IKNL example). When a sender left a
//! group wrapper out, its items are looked up where the group would have stood; linkIds are unique in
//! the Questionnaire, so this cannot mix items up. Whatever the walk did not read is reported at the
//! end: an unknown linkId as a warning (a newer Questionnaire may add items), a known item that could
//! not be placed (an explanation without the answer it explains) as an error, because its content would
//! otherwise vanish.

use serde_json::Value;

use crate::intake::cursor::{coded_from_coding, type_name, Obj, Path, Problems};
use crate::mappings;
use crate::record::*;
use crate::validate::rules::Completeness;
use crate::validate::{IssueType, Location, Severity};
use form::{Fixed, Kind, Walk, YesNo};

/// The resource type, which is also the root of every FHIRPath location.
const ROOT: &str = "QuestionnaireResponse";

/// Reads a QuestionnaireResponse for ACP-zib2020; problems go to `p`, the record holds what could be read.
pub fn read(v: &Value, p: &mut Problems) -> AcpRecord {
    let root = Path::fhir(ROOT);
    let mut record = AcpRecord::default();
    let Some(o) = Obj::new(v, root.clone(), p) else {
        return record;
    };
    // Resource metadata that says nothing about the form's content.
    for key in ["resourceType", "id", "meta", "text", "language", "author"] {
        o.skip(key);
    }
    if o.get("modifierExtension").is_some() {
        p.error(
            IssueType::NotSupported,
            &o.at("modifierExtension"),
            "modifier extensions change the meaning of the response, and this gateway knows none for ACP-zib2020",
        );
    }
    // Valid FHIR, but nothing the ACP record holds: said plainly rather than as a possible typo.
    for key in ["identifier", "basedOn", "partOf", "encounter", "source", "contained", "extension", "implicitRules"] {
        if o.get(key).is_some() {
            p.warning(
                IssueType::NotSupported,
                &o.at(key),
                format!("'{key}' is not part of the ACP record, so it is not handed over"),
            );
        }
    }
    check_questionnaire(&o, p);
    check_status(&o, p);
    // `authored` is when the response was saved (the IKNL example saved it years after the conversation),
    // not the conversation date (item 963); it is only checked to be a real date.
    let _ = o.date("authored", p);
    read_subject(&o, &mut record.patient, p);

    let mut tree = Tree::default();
    if let Some(items) = o.array("item", p) {
        tree.top = tree.items(items, &root, p);
    }
    o.finish(p, Severity::Warning);

    let scope = tree.top.clone();
    let mut reader = Reader { tree, scope, p, values: 0 };
    form::walk(&mut reader, &mut record);
    reader.report_unread();
    record
}

/// How much of the form a response claims to carry: one still `in-progress` (or `stopped`) was not
/// filled in whole, so what it lacks is a warning, as for a single FHIR resource. The gateway writes a
/// partial record so.
pub fn completeness(v: &Value) -> Completeness {
    match v.get("status").and_then(Value::as_str) {
        Some("in-progress" | "stopped") => Completeness::Partial,
        _ => Completeness::Complete,
    }
}

fn check_questionnaire(o: &Obj<'_>, p: &mut Problems) {
    let at = o.at("questionnaire");
    if o.get("questionnaire").is_none() {
        p.error(IssueType::Required, &at, "the response does not say which Questionnaire it answers; expected ACP-zib2020");
        return;
    }
    let Some(url) = o.str("questionnaire", p) else { return };
    let canonicals = &mappings::get().canonicals;
    if !canonicals.is_acp_questionnaire(&url) {
        let accepted = canonicals.questionnaire.get("acp-zib2020").map(|u| u.join(", ")).unwrap_or_default();
        // The items are still read: an unknown canonical is most likely a release this gateway does
        // not know yet, and the integrator wants every other problem in the same run.
        p.error(
            IssueType::Value,
            &at,
            format!("'{url}' is not the ACP-zib2020 Questionnaire; accepted: {accepted} (with or without |version)"),
        );
    }
}

fn check_status(o: &Obj<'_>, p: &mut Problems) {
    let at = o.at("status");
    // The FHIR QuestionnaireResponse status codes (a required binding of the resource itself).
    match o.str("status", p).as_deref() {
        None | Some("completed") | Some("amended") => {}
        Some(s @ ("in-progress" | "stopped")) => p.warning(
            IssueType::Value,
            &at,
            format!("the response is '{s}': the form was not finished, so unanswered items may still be open"),
        ),
        Some("entered-in-error") => {
            p.error(IssueType::Value, &at, "the response is marked 'entered-in-error' and must not be handed over")
        }
        Some(s) => p.error(
            IssueType::CodeInvalid,
            &at,
            format!(
                "'{s}' is not a QuestionnaireResponse status; use completed, amended, in-progress, stopped or entered-in-error"
            ),
        ),
    }
}

/// `subject.identifier`: the BSN when the naming system is BSN's, otherwise kept as another identifier.
fn read_subject(o: &Obj<'_>, patient: &mut Patient, p: &mut Problems) {
    let Some(subject) = o.obj("subject", p) else { return };
    for key in ["reference", "display", "type"] {
        subject.skip(key);
    }
    if let Some(id) = subject.obj("identifier", p) {
        for key in ["use", "type", "period", "assigner"] {
            id.skip(key);
        }
        let system = id.str("system", p);
        let value = id.str("value", p);
        match (system, value) {
            (Some(system), Some(value)) if mappings::get().naming_system_key(&system) == Some("bsn") => {
                match Bsn::parse(&value) {
                    Ok(bsn) => patient.bsn = Some(bsn),
                    Err(e) => p.error(IssueType::Value, &id.at("value"), e.to_string()),
                }
            }
            (Some(system), Some(value)) => patient.other_identifiers.push(Identifier { system, value }),
            (None, Some(_)) => p.warning(
                IssueType::Required,
                &id.at("system"),
                "the patient identifier has no system, so it cannot be read as a BSN; it is ignored",
            ),
            (_, None) => p.warning(IssueType::Required, &id.at("value"), "the patient identifier has no value; it is ignored"),
        }
        id.finish(p, Severity::Warning);
    }
    subject.finish(p, Severity::Warning);
}

/// Translates a record pointer (as `crate::validate::rules` reports it) into the FHIRPath of the item
/// that carries it, as the writer nests it.
///
/// The pointer is matched against the pointers `form::walk` gives each item; a pointer that names a
/// part of the record (`/icd`, `/treatment_limits/resuscitation`) lands on the item that holds all of
/// that part, and a field the form cannot carry (`/treatment_limits/resuscitation/discussed_on`) on the
/// item of its nearest carried parent. What the form has no item for at all lands on the resource.
pub fn locate(pointer: &str) -> Location {
    // The patient's identifiers are not an item but the response's subject.
    if ["/patient/bsn", "/patient/other_identifiers"].iter().any(|p| pointer == *p || pointer.starts_with(&format!("{p}/"))) {
        return Location::FhirPath(format!("{ROOT}.subject.identifier"));
    }
    let trace = form::traced();
    let mut prefix = pointer.trim_end_matches('/');
    while !prefix.is_empty() {
        let links: Vec<&'static str> = trace
            .iter()
            .filter(|(ptr, _)| ptr == prefix || ptr.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/')))
            .map(|(_, link)| *link)
            .collect();
        if !links.is_empty() {
            return match form::common_ancestor(&links) {
                Some(link) => form::canonical_path(link).location(),
                None => Path::fhir(ROOT).location(),
            };
        }
        prefix = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
    }
    Path::fhir(ROOT).location()
}

// --- the parsed response ------------------------------------------------------------------------------

/// One item of the response, with its location and whether the walk has read it.
struct Node<'a> {
    /// The linkId; empty when the item had none (reported while parsing).
    link: &'a str,
    /// The item's [`form::position`], which the walk's searches compare instead of the linkId text.
    pos: usize,
    path: Path,
    answers: Vec<AnswerNode<'a>>,
    /// Items nested directly under the item (`item.item`).
    kids: Vec<usize>,
    read: bool,
}

struct AnswerNode<'a> {
    path: Path,
    /// The `value[x]` key and value, when the answer has one.
    value: Option<(&'a str, &'a Value)>,
    /// Items nested under this answer (`answer.item`).
    kids: Vec<usize>,
}

#[derive(Default)]
struct Tree<'a> {
    nodes: Vec<Node<'a>>,
    top: Vec<usize>,
}

impl<'a> Tree<'a> {
    /// Parses the `item` list of the element at `owner`.
    fn items(&mut self, list: &'a [Value], owner: &Path, p: &mut Problems) -> Vec<usize> {
        let links: Vec<Option<&str>> = list.iter().map(|v| v.get("linkId").and_then(Value::as_str)).collect();
        let mut out = Vec::new();
        for (i, v) in list.iter().enumerate() {
            let path = match links[i] {
                Some(link) => {
                    let path = owner.key("item").link(link);
                    // Repeated siblings (phones, several 4g limits) are told apart by an index.
                    if links.iter().filter(|l| **l == Some(link)).count() > 1 {
                        path.index(links[..i].iter().filter(|l| **l == Some(link)).count())
                    } else {
                        path
                    }
                }
                None => owner.key("item").index(i),
            };
            if let Some(n) = self.item(v, path, p) {
                out.push(n);
            }
        }
        out
    }

    fn item(&mut self, v: &'a Value, path: Path, p: &mut Problems) -> Option<usize> {
        let o = Obj::new(v, path.clone(), p)?;
        let link = match o.get("linkId") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.as_str(),
            Some(other) => {
                p.error(IssueType::Value, &o.at("linkId"), format!("a linkId is a non-empty string, got {}", type_name(other)));
                ""
            }
            None => {
                p.error(IssueType::Required, &path, "the item has no linkId, so it cannot be matched to the form");
                ""
            }
        };
        for key in ["id", "text", "definition"] {
            o.skip(key);
        }
        if o.get("modifierExtension").is_some() {
            p.error(
                IssueType::NotSupported,
                &o.at("modifierExtension"),
                "modifier extensions on items are not understood by this gateway",
            );
        }
        let index = self.nodes.len();
        // An item without a linkId is reported above, once; it counts as read so that it is not reported again.
        let pos = form::position(link);
        self.nodes.push(Node { link, pos, path: path.clone(), answers: Vec::new(), kids: Vec::new(), read: link.is_empty() });
        let mut answers = Vec::new();
        if let Some(list) = o.array("answer", p) {
            for (j, a) in list.iter().enumerate() {
                if let Some(a) = self.answer(a, path.key("answer").index(j), p) {
                    answers.push(a);
                }
            }
        }
        if !answers.is_empty() && form::item(link).is_some_and(|i| i.kind == Kind::Group) {
            p.error(
                IssueType::Structure,
                &path.key("answer"),
                format!("item {link} is a group of the form; a group has no answers of its own"),
            );
        }
        let kids = o.array("item", p).map(|list| self.items(list, &path, p)).unwrap_or_default();
        o.finish(p, Severity::Warning);
        let node = &mut self.nodes[index];
        node.answers = answers;
        node.kids = kids;
        Some(index)
    }

    fn answer(&mut self, v: &'a Value, path: Path, p: &mut Problems) -> Option<AnswerNode<'a>> {
        let o = Obj::new(v, path.clone(), p)?;
        o.skip("id");
        let mut value = None;
        for key in o.map.keys().filter(|k| k.starts_with("value")) {
            let Some(v) = o.get(key) else { continue };
            if value.is_some() {
                p.error(IssueType::Structure, &path.key(key), "an answer has exactly one value[x]");
            } else {
                value = Some((key.as_str(), v));
            }
        }
        let kids = o.array("item", p).map(|list| self.items(list, &path, p)).unwrap_or_default();
        o.finish(p, Severity::Warning);
        Some(AnswerNode { path, value, kids })
    }

    /// Depth first, in document order, through `nodes` and what is inside them (as [`Tree::inner`]
    /// lists it), without a list per node: the walk searches once per linkId of the form.
    /// `pos` is `link`'s [`form::position`]: equal positions mean equal linkIds, except among the
    /// linkIds the form does not know, which all share the last position.
    fn find_in(&self, nodes: &[usize], link: &str, pos: usize, out: &mut Vec<usize>) {
        for &n in nodes {
            let node = &self.nodes[n];
            if node.pos == pos && (pos != usize::MAX || node.link == link) {
                out.push(n);
                continue;
            }
            self.find_in(&node.kids, link, pos, out);
            for a in &node.answers {
                self.find_in(&a.kids, link, pos, out);
            }
        }
    }

    /// The items directly inside `n`: nested under the item and under its answers.
    fn inner(&self, n: usize) -> Vec<usize> {
        let node = &self.nodes[n];
        node.kids.iter().copied().chain(node.answers.iter().flat_map(|a| a.kids.iter().copied())).collect()
    }
}

// --- the reader -----------------------------------------------------------------------------------------

/// Fills a record from the parsed response, one [`form::walk`] step at a time.
struct Reader<'a, 'p> {
    tree: Tree<'a>,
    /// Where lookups start: the items inside the group being read (the top-level items at first).
    scope: Vec<usize>,
    p: &'p mut Problems,
    /// How many answers were read into the record, so that [`Walk::optional`] knows whether a part
    /// of the record had any answer.
    values: usize,
}

/// The form's label of an item, for messages.
fn label(link: &str) -> String {
    match form::item(link) {
        Some(i) => format!("item {link} ('{}')", i.text.trim()),
        None => format!("item {link}"),
    }
}

/// The text of a `valueString`; empty text counts as not recorded, as everywhere in intake.
fn string_of(v: &Value, at: &Path, p: &mut Problems) -> Option<String> {
    match v {
        Value::String(s) if s.trim().is_empty() => {
            p.warning(IssueType::Value, at, "empty text is treated as not recorded");
            None
        }
        Value::String(s) => Some(s.clone()),
        other => {
            p.error(IssueType::Value, at, format!("expected a string, got {}", type_name(other)));
            None
        }
    }
}

/// The system and code of a `valueCoding` (shape errors are reported by `coded_from_coding`'s callers).
fn coding_of(v: &Value) -> (Option<&str>, Option<&str>) {
    (v.get("system").and_then(Value::as_str), v.get("code").and_then(Value::as_str))
}

impl<'a> Reader<'a, '_> {
    /// Every occurrence of `link` below the current scope, in document order. The search does not
    /// descend into an occurrence (an item never contains its own linkId).
    fn find(&self, link: &str) -> Vec<usize> {
        let mut out = Vec::new();
        self.tree.find_in(&self.scope, link, form::position(link), &mut out);
        out
    }

    /// The one occurrence of a non-repeating item; further occurrences are errors, since their answers
    /// could not be told apart.
    fn single(&mut self, link: &str) -> Option<usize> {
        let found = self.find(link);
        for &n in &found {
            self.tree.nodes[n].read = true;
        }
        for &n in found.iter().skip(1) {
            let at = self.tree.nodes[n].path.clone();
            self.p.error(IssueType::Structure, &at, format!("{} appears more than once; the form has it once", label(link)));
        }
        found.first().copied()
    }

    /// The value of the single answer of `link`, checked to be one of the `kinds` of value[x].
    fn value_of(&mut self, link: &str, kinds: &[&str]) -> Option<(&'a str, &'a Value, Path)> {
        let n = self.single(link)?;
        let node = &self.tree.nodes[n];
        for extra in node.answers.iter().skip(1) {
            self.p.error(IssueType::Structure, &extra.path, format!("{} takes one answer", label(link)));
        }
        let answer = node.answers.first()?;
        let (key, value) = answer.value?;
        let at = answer.path.key(key);
        if !kinds.contains(&key) {
            self.p.error(IssueType::Value, &at, format!("{} is answered with {}; got {key}", label(link), kinds.join(" or ")));
            return None;
        }
        Some((key, value, at))
    }

    /// A coded answer of a non-repeating choice item.
    fn coded_value<T: Coded>(&mut self, link: &str) -> Option<(T, Path)> {
        let (_, v, at) = self.value_of(link, &["valueCoding"])?;
        coded_from_coding::<T>(v, &at, self.p).map(|c| (c, at))
    }

    /// A free text ("Anders, namelijk", SpecificatieAnders) with its location.
    fn text_value(&mut self, link: &str) -> Option<(String, Path)> {
        let (_, v, at) = self.value_of(link, &["valueString"])?;
        string_of(v, &at, self.p).map(|s| (s, at))
    }

    /// Reports what the walk did not read.
    fn report_unread(&mut self) {
        for n in &self.tree.nodes {
            if n.read {
                continue;
            }
            let Some(item) = form::item(n.link) else {
                self.p.warning(
                    IssueType::NotSupported,
                    &n.path,
                    format!(
                        "linkId '{}' is not an item of ACP-zib2020 as this gateway knows the form (perhaps a newer version); its answers were not read",
                        n.link
                    ),
                );
                continue;
            };
            // An empty item, or a misplaced group whose items are reported themselves, loses nothing.
            if !n.answers.iter().any(|a| a.value.is_some()) {
                continue;
            }
            // A read-only code left standing in a group without answers (4g's "Other", say) loses nothing.
            if item.kind == Kind::ReadOnly && n.answers.iter().all(|a| a.value.map_or(true, |(k, _)| k == "valueCoding")) {
                continue;
            }
            let why = match item.parent.and_then(form::item) {
                Some(parent) if parent.kind != Kind::Group => {
                    format!("it belongs to the answer of {}, which is missing", label(parent.link))
                }
                Some(parent) => format!("it is outside its group {}, or the answer it goes with is missing", label(parent.link)),
                None => "it is not where the Questionnaire places it".to_owned(),
            };
            self.p.error(
                IssueType::Structure,
                &n.path,
                format!("{} was not read, so its answer would be lost: {why}", label(n.link)),
            );
        }
    }
}

impl Walk for Reader<'_, '_> {
    fn group(&mut self, link: &'static str, body: impl FnOnce(&mut Self)) {
        let found = self.find(link);
        let saved = self.scope.clone();
        // A group the sender left out is read where it would have stood (see the module comment).
        if !found.is_empty() {
            for &n in &found {
                self.tree.nodes[n].read = true;
            }
            self.scope = found.iter().flat_map(|&n| self.tree.inner(n)).collect();
        }
        body(self);
        self.scope = saved;
    }

    fn repeat<T>(
        &mut self,
        link: &'static str,
        ptr: &str,
        list: &mut Vec<T>,
        mut body: impl FnMut(&mut Self, &str, &mut Option<T>),
    ) {
        let saved = self.scope.clone();
        for n in self.find(link) {
            self.tree.nodes[n].read = true;
            self.scope = self.tree.inner(n);
            let mut slot = None;
            body(self, &format!("{ptr}/{}", list.len()), &mut slot);
            list.extend(slot);
        }
        self.scope = saved;
    }

    fn optional<T: Default>(&mut self, slot: &mut Option<T>, body: impl FnOnce(&mut Self, &mut T)) {
        let before = self.values;
        let mut part = T::default();
        body(self, &mut part);
        if self.values > before {
            *slot = Some(part);
        }
    }

    fn part<T, H>(
        &mut self,
        slot: &mut Option<T>,
        head: impl FnOnce(&mut Self, &mut Option<H>),
        assemble: impl FnOnce(H) -> T,
        _split: impl FnOnce(&T) -> H,
        rest: impl FnOnce(&mut Self, &mut T),
    ) {
        let mut h = None;
        head(self, &mut h);
        // Without its leading answer the rest is not read, and so is reported as unread.
        if let Some(h) = h {
            let mut part = assemble(h);
            rest(self, &mut part);
            *slot = Some(part);
        }
    }

    fn text(&mut self, link: &'static str, _ptr: &str, slot: &mut Option<String>) {
        if let Some((s, _)) = self.text_value(link) {
            *slot = Some(s);
            self.values += 1;
        }
    }

    fn date(&mut self, link: &'static str, _ptr: &str, slot: &mut Option<FhirDate>) {
        let Some((_, v, at)) = self.value_of(link, &["valueDateTime", "valueDate"]) else { return };
        let Some(raw) = string_of(v, &at, self.p) else { return };
        match FhirDate::parse(&raw) {
            Ok(d) => {
                *slot = Some(d);
                self.values += 1;
            }
            Err(e) => self.p.error(IssueType::Value, &at, e.to_string()),
        }
    }

    fn coded<T: Coded>(&mut self, link: &'static str, _ptr: &str, slot: &mut Option<T>) {
        if let Some((c, _)) = self.coded_value::<T>(link) {
            *slot = Some(c);
            self.values += 1;
        }
    }

    fn yes_no(&mut self, link: &'static str, _ptr: &str, slot: &mut Option<bool>) {
        if let Some((c, _)) = self.coded_value::<YesNo>(link) {
            *slot = Some(c == YesNo::Yes);
            self.values += 1;
        }
    }

    fn flag(&mut self, link: &'static str, _ptr: &str, slot: &mut bool) {
        let Some((_, v, at)) = self.value_of(link, &["valueCoding"]) else { return };
        match coding_of(v) {
            (None, Some(code)) if code == form::PATIENT_PRESENT => {
                *slot = true;
                self.values += 1;
            }
            (system, code) => self.p.error(
                IssueType::CodeInvalid,
                &at,
                format!(
                    "{} has one answer, the local code '{}' (no system); got {}#{}",
                    label(link),
                    form::PATIENT_PRESENT,
                    system.unwrap_or("(no system)"),
                    code.unwrap_or("(no code)")
                ),
            ),
        }
    }

    fn fixed(&mut self, link: &'static str, code: Fixed) {
        let Some(n) = self.single(link) else { return };
        let answers: Vec<(Path, Option<(&str, &Value)>)> =
            self.tree.nodes[n].answers.iter().map(|a| (a.path.clone(), a.value)).collect();
        for (path, value) in answers {
            let Some((key, v)) = value else { continue };
            let at = path.key(key);
            if key != "valueCoding" {
                self.p.error(IssueType::Value, &at, format!("{} is answered with valueCoding; got {key}", label(link)));
                continue;
            }
            let (system, c) = coding_of(v);
            if !c.is_some_and(|c| code.matches(system, c)) {
                let expected = code.coding().map(|c| format!("{}#{} ({})", c.system, c.code, c.display)).unwrap_or_default();
                self.p.error(
                    IssueType::CodeInvalid,
                    &at,
                    format!(
                        "{} is the form's fixed code for this group and must be {expected}; got {}#{}. Answers in this group would be attached to the wrong {}",
                        label(link),
                        system.unwrap_or("(no system)"),
                        c.unwrap_or("(no code)"),
                        code.what()
                    ),
                );
            }
        }
    }

    fn answer<T: Coded>(&mut self, link: &'static str, other: &'static str, _ptr: &str, slot: &mut Option<Answer<T>>) {
        let code = self.coded_value::<T>(link).map(|(c, _)| c);
        let text = self.text_value(other);
        match (code, text) {
            (Some(code), text) => {
                let at = text.as_ref().map(|(_, at)| at.clone());
                match Answer::new(code, text.map(|(s, _)| s)) {
                    Ok(a) => {
                        *slot = Some(a);
                        self.values += 1;
                    }
                    Err(_) => self.p.error(
                        IssueType::Invariant,
                        &at.unwrap_or_else(|| Path::fhir(ROOT)),
                        format!(
                            "the 'Anders, namelijk' text belongs only to the answer 'Anders', but {} answers '{}'",
                            label(link),
                            code.key()
                        ),
                    ),
                }
            }
            (None, Some((_, at))) => self.p.error(
                IssueType::Invariant,
                &at,
                format!("the 'Anders, namelijk' text needs the answer 'Anders' in {}", label(link)),
            ),
            (None, None) => {}
        }
    }

    fn answers<T: Coded>(&mut self, link: &'static str, other: &'static str, _ptr: &str, list: &mut Vec<Answer<T>>) {
        // A repeating choice: every answer of every occurrence (a form tool may split them).
        let mut codes = Vec::new();
        for n in self.find(link) {
            self.tree.nodes[n].read = true;
            let answers: Vec<(Path, Option<(&str, &Value)>)> =
                self.tree.nodes[n].answers.iter().map(|a| (a.path.clone(), a.value)).collect();
            for (path, value) in answers {
                let Some((key, v)) = value else { continue };
                let at = path.key(key);
                if key != "valueCoding" {
                    self.p.error(IssueType::Value, &at, format!("{} is answered with valueCoding; got {key}", label(link)));
                } else if let Some(c) = coded_from_coding::<T>(v, &at, self.p) {
                    codes.push(c);
                }
            }
        }
        let mut text = self.text_value(other);
        for code in codes {
            let own = if code.is_other() { text.take().map(|(s, _)| s) } else { None };
            // An answer the Questionnaire does not offer here, written as "Anders" with its display.
            let answer = match own.as_deref().and_then(|t| form::not_offered_named::<T>(link, t)) {
                Some(named) => Answer::code(named),
                None => Answer::new(code, own).unwrap_or(Answer::code(code)),
            };
            list.push(answer);
            self.values += 1;
        }
        if let Some((_, at)) = text {
            self.p.error(
                IssueType::Invariant,
                &at,
                format!("the 'Anders, namelijk' text needs the answer 'Anders' in {}", label(link)),
            );
        }
    }

    fn decision(&mut self, link: &'static str, restriction: &'static str, _ptr: &str, slot: &mut Option<Decision>) {
        let code = self.coded_value::<DecisionCode>(link);
        let text = self.text_value(restriction);
        match code {
            Some((code, at)) => match Decision::new(code, text.map(|(s, _)| s)) {
                Ok(d) => {
                    *slot = Some(d);
                    self.values += 1;
                }
                Err(e) => {
                    let kind = if e == DecisionError::MissingRestriction { IssueType::Required } else { IssueType::Invariant };
                    // At the decision, so that the integrator sees which treatment the problem is about.
                    self.p.error(kind, &at, format!("{}: {e}", label(link)));
                }
            },
            None => {
                if let Some((_, at)) = text {
                    self.p.error(
                        IssueType::Invariant,
                        &at,
                        format!("a restriction text needs the decision 'Ja maar met beperkingen' in {}", label(link)),
                    );
                }
            }
        }
    }

    fn open_treatment(&mut self, link: &'static str, _ptr: &str, slot: &mut Option<String>) {
        let Some((key, v, at)) = self.value_of(link, &["valueCoding", "valueString"]) else { return };
        if key == "valueString" {
            if let Some(s) = string_of(v, &at, self.p) {
                *slot = Some(s);
                self.values += 1;
            }
            return;
        }
        let (system, code) = coding_of(v);
        match code.and_then(|c| Treatment::from_coding(system, c)) {
            Some(Treatment::Other) => {}
            Some(t) => self.p.error(
                IssueType::CodeInvalid,
                &at,
                format!(
                    "{} is for treatments the form does not name; '{}' has its own item, so a decision here would be attached to the wrong treatment. Answer 'Other' or a text naming the treatment",
                    label(link),
                    t.key()
                ),
            ),
            None => self.p.error(
                IssueType::CodeInvalid,
                &at,
                format!(
                    "{} is answered with the code 'Other' or a text naming the treatment; got {}#{}",
                    label(link),
                    system.unwrap_or("(no system)"),
                    code.unwrap_or("(no code)")
                ),
            ),
        }
    }

    fn refuse(&mut self, link: &'static str, message: &str) {
        let at = self.find(link).first().map(|&n| self.tree.nodes[n].path.clone()).unwrap_or_else(|| Path::fhir(ROOT));
        self.p.error(IssueType::Invariant, &at, format!("{}: {message}", label(link)));
    }
}

// --- the form ---------------------------------------------------------------------------------------------

/// The Questionnaire ACP-zib2020 as data: its items, and the walk that ties each item to the record.
pub(crate) mod form {
    use std::sync::OnceLock;

    use crate::intake::cursor::Path;
    use crate::mappings::{self, Coding};
    use crate::record::*;

    use super::ROOT;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Kind {
        Group,
        Question,
        /// A question with a fixed, read-only answer (the "MetingNaam" and treatment codes).
        ReadOnly,
    }

    /// One item of the Questionnaire.
    #[derive(Debug)]
    pub(crate) struct Item {
        pub(crate) link: &'static str,
        /// The enclosing item; `None` at the top level.
        pub(crate) parent: Option<&'static str>,
        pub(crate) kind: Kind,
        pub(crate) repeats: bool,
        /// The Questionnaire's `text` (without its `prefix`, as the FHIR validator compares it).
        pub(crate) text: &'static str,
    }

    const fn row(link: &'static str, parent: Option<&'static str>, kind: Kind, repeats: bool, text: &'static str) -> Item {
        Item { link, parent, kind, repeats, text }
    }

    /// The label of the "Anders, namelijk" items, which also introduces a folded place of death.
    pub(crate) const OTHER_LABEL: &str = "Anders, namelijk:";

    /// Item 82's only answer option: a local code, without system, equal to its label. It has no value
    /// set in `mappings/valuesets.toml`, so it is kept with the form's structure here.
    pub(crate) const PATIENT_PRESENT: &str = "Patiënt";

    use Kind::{Group, Question, ReadOnly};

    /// Every item of ACP-zib2020 0.1.3-beta3, in the Questionnaire's order (the writer's order too).
    ///
    /// Every row is an item of the Questionnaire. One deviation: group 1421 (4g) is allowed to repeat,
    /// one group per further treatment limit, where the Questionnaire has it once.
    pub(crate) static ITEMS: &[Item] = &[
        row("963", None, Question, false, "Datum van invullen"),
        row("7", None, Group, false, "Naam patiënt"),
        row("964", Some("7"), Question, false, "Voornamen"),
        row("965", Some("7"), Question, false, "Voorvoegsels"),
        row("966", Some("7"), Question, false, "Achternaam"),
        row("967", None, Question, false, "Geboortedatum patiënt"),
        row("8", None, Group, false, "Gesprek gevoerd door:"),
        row("16", Some("8"), Group, false, "Naam zorgverlener"),
        row("968", Some("16"), Question, false, "Voornamen"),
        row("969", Some("16"), Question, false, "Voorvoegsels"),
        row("970", Some("16"), Question, false, "Achternaam"),
        row("1405", Some("8"), Question, false, "Functie (Specialisme)"),
        row("26", None, Group, false, "Wilsbekwaamheid & Wettelijke vertegenwoordiging"),
        row("1406", Some("26"), Question, false, "Is de patiënt op dit moment wilsbekwaam m.b.t. medische behandelbeslissingen?"),
        row("1407", Some("1406"), Question, false, "Toelichting"),
        row(
            "29",
            Some("26"),
            Group,
            false,
            "Bij wilsonbekwaamheid m.b.t. medische behandelbeslissingen is/wordt de wettelijke vertegenwoordiger:",
        ),
        row("30", Some("29"), Group, false, "Naam wettelijk vertegenwoordiger"),
        row("973", Some("30"), Question, false, "Voornamen"),
        row("974", Some("30"), Question, false, "Voorvoegsels"),
        row("975", Some("30"), Question, false, "Achternaam"),
        row("39", Some("29"), Group, false, "Contactgegevens wettelijk vertegenwoordiger"),
        row("40", Some("39"), Group, true, "Telefoonnummers"),
        row("976", Some("40"), Question, false, "Telefoonnummer"),
        row("977", Some("40"), Question, false, "TelecomType"),
        row("978", Some("40"), Question, false, "NummerSoort"),
        row("979", Some("40"), Question, false, "Toelichting"),
        row("41", Some("39"), Group, true, "EmailAdressen"),
        row("980", Some("41"), Question, false, "EmailAdres"),
        row("981", Some("41"), Question, false, "EmailSoort"),
        row("982", Some("29"), Question, true, "Relatie tot patiënt (1)"),
        row("411", Some("982"), Question, false, OTHER_LABEL),
        row("983", Some("29"), Question, false, "Relatie tot patiënt (2)"),
        row("408", Some("983"), Question, false, OTHER_LABEL),
        row("984", Some("29"), Question, false, "Is de wettelijk vertegenwoordiger ook de eerste contactpersoon?"),
        row("53", Some("29"), Group, false, "Naam eerste contactpersoon"),
        row("985", Some("53"), Question, false, "Voornamen"),
        row("986", Some("53"), Question, false, "Voorvoegsels"),
        row("987", Some("53"), Question, false, "Achternaam"),
        row("61", Some("29"), Group, false, "Contactgegevens eerste contactpersoon"),
        row("62", Some("61"), Group, true, "Telefoonnummers"),
        row("988", Some("62"), Question, false, "Telefoonnummer"),
        row("989", Some("62"), Question, false, "TelecomType"),
        row("990", Some("62"), Question, false, "NummerSoort"),
        row("991", Some("62"), Question, false, "Toelichting"),
        row("66", Some("61"), Group, true, "EmailAdressen"),
        row("992", Some("66"), Question, false, "EmailAdres"),
        row("993", Some("66"), Question, false, "EmailSoort"),
        row("995", Some("29"), Question, false, "Relatie tot patiënt"),
        row("412", Some("995"), Question, false, OTHER_LABEL),
        row("78", None, Group, false, "Gesprek gevoerd in bijzijn van"),
        row("82", Some("78"), Question, false, "Patiënt"),
        row("997", Some("78"), Question, true, "Rol"),
        row("414", Some("997"), Question, false, OTHER_LABEL),
        row("998", Some("78"), Question, true, "Relatie tot patiënt"),
        row("413", Some("998"), Question, false, OTHER_LABEL),
        row("586", None, Group, false, "Belangrijkste overeengekomen doel van medisch beleid"),
        row("1408", Some("586"), ReadOnly, false, "Belangrijkste doel van behandeling ([MetingNaam])"),
        row("999", Some("586"), Question, false, "Doel ([MetingWaarde])"),
        row("83", None, Group, false, "Behandelgrenzen"),
        row("1409", Some("83"), Group, false, "Reanimatie"),
        row("1410", Some("1409"), ReadOnly, false, "Behandeling"),
        row("1386", Some("1409"), Question, false, "BehandelBesluit"),
        row("1001", Some("1386"), Question, false, "SpecificatieAnders"),
        row("1002", Some("1386"), Question, false, "Toelichting"),
        row("1411", Some("83"), Group, false, "Kunstmatige invasieve beademing"),
        row("1412", Some("1411"), ReadOnly, false, "Behandeling"),
        row("1387", Some("1411"), Question, false, "BehandelBesluit"),
        row("1388", Some("1387"), Question, false, "SpecificatieAnders"),
        row("1389", Some("1387"), Question, false, "Toelichting"),
        row("1413", Some("83"), Group, false, "Opname op intensive care"),
        row("1414", Some("1413"), ReadOnly, false, "Behandeling"),
        row("1390", Some("1413"), Question, false, "BehandelBesluit"),
        row("1391", Some("1390"), Question, false, "SpecificatieAnders"),
        row("1392", Some("1390"), Question, false, "Toelichting"),
        row("1415", Some("83"), Group, false, "Opname in ziekenhuis"),
        row("1416", Some("1415"), ReadOnly, false, "Behandeling"),
        row("1393", Some("1415"), Question, false, "BehandelBesluit"),
        row("1394", Some("1393"), Question, false, "SpecificatieAnders"),
        row("1395", Some("1393"), Question, false, "Toelichting"),
        row("1417", Some("83"), Group, false, "Behandeling met antibiotica"),
        row("1418", Some("1417"), ReadOnly, false, "Behandeling"),
        row("1396", Some("1417"), Question, false, "BehandelBesluit"),
        row("1397", Some("1396"), Question, false, "SpecificatieAnders"),
        row("1398", Some("1396"), Question, false, "Toelichting"),
        row("1419", Some("83"), Group, false, "Toediening van een bloedproduct"),
        row("1420", Some("1419"), ReadOnly, false, "Behandeling"),
        row("1399", Some("1419"), Question, false, "BehandelBesluit"),
        row("1400", Some("1399"), Question, false, "SpecificatieAnders"),
        row("1401", Some("1399"), Question, false, "Toelichting"),
        row("1421", Some("83"), Group, true, "Overige behandelgrenzen"),
        row("1422", Some("1421"), ReadOnly, false, "Behandeling"),
        row("1402", Some("1421"), Question, false, "BehandelBesluit"),
        row("1404", Some("1402"), Question, false, "Toelichting"),
        row("1006", Some("83"), Question, false, "Heeft de patiënt een ICD?"),
        row("1008", Some("1006"), Question, false, "ProductType van ICD"),
        row("1009", Some("1006"), Question, false, "Toelichting"),
        row("1425", Some("83"), Group, false, "Is er een afspraak over het moment van uitzetten ICD?"),
        row("1426", Some("1425"), ReadOnly, false, "Behandeling van uitzetten ICD (Behandeling)"),
        row("1005", Some("1425"), Question, false, "Afspraak uitzetten ICD (BehandelBesluit)"),
        row("1010", Some("1005"), Question, false, "Toelichting gemaakte afspraken"),
        row("107", None, Group, false, "Behandelwensen"),
        row(
            "1427",
            Some("107"),
            Group,
            false,
            "Wat zouden zorgverleners, volgens de patiënt, moeten weten om goede zorg te kunnen verlenen? Heeft deze patiënt specifieke wensen met betrekking tot zijn zorg? (incl. culturele/religieuze/sociale/spirituele aspecten)\u{a0}",
        ),
        row("1428", Some("1427"), ReadOnly, false, "Wens en verwachting patient ([MetingNaam])"),
        row("1190", Some("1427"), Question, false, "Wens en verwachting patient ([MetingWaarde])"),
        row("1429", Some("107"), Group, false, "Gewenste plek van overlijden"),
        row("1430", Some("1429"), ReadOnly, false, "Gewenste plek van overlijden ([MetingNaam])"),
        row("1191", Some("1429"), Question, false, "Voorkeursplek ([MetingWaarde])"),
        row("1192", Some("1191"), Question, false, "Toelichting"),
        row("1431", Some("107"), Group, false, "Euthanasie standpunt"),
        row("1432", Some("1431"), ReadOnly, false, "Euthanasie standpunt ([MetingNaam])"),
        row("1193", Some("1431"), Question, false, "Euthanasie standpunt ([MetingWaarde])"),
        row("1194", Some("1193"), Question, false, "Toelichting"),
        row("1433", Some("107"), Group, false, "Keuze orgaandonatie vastgelegd in donorregister?"),
        row("1434", Some("1433"), ReadOnly, false, "Keuze orgaandonatie vastgelegd in donorregister? ([MetingNaam])"),
        row("1435", Some("1433"), Question, false, "Keuze orgaandonatie in donorregister ([MetingWaarde])"),
        row("598", None, Group, false, "Wat verder nog belangrijk is"),
        row("1436", Some("598"), ReadOnly, false, "Wat verder nog belangrijk is ([MetingNaam])"),
        row("1196", Some("598"), Question, false, "Wat verder nog belangrijk is ([MetingWaarde])"),
        row("115", None, Group, false, "Eerder vastgelegde behandelwensen"),
        row("1197", Some("115"), Question, false, "Heeft de patiënt eerder behandelafspraken vastgelegd?"),
        row("1198", Some("1197"), Question, false, "Toelichting"),
        row("1199", Some("115"), Question, false, "Staan in eerder vastgelegde behandelafspraken andere wensen dan nu in deze verklaring?"),
        row("119", None, Group, false, "Informatie delen"),
        row(
            "1200",
            Some("119"),
            Question,
            false,
            "Heeft u patient geïnformeerd over eigen verantwoordelijkheid om deze behandelafspraken met naasten te bespreken?",
        ),
        row(
            "1201",
            Some("119"),
            Question,
            false,
            "Patiënt gaat akkoord met het delen van deze behandelafspraken met andere betrokken hulpverleners",
        ),
    ];

    /// FNV-1a, for the linkId index: linkIds are a few digits, for which SipHash's set-up costs more
    /// than the lookup. The index is fixed at start-up, so received linkIds cannot crowd it.
    #[derive(Default)]
    struct LinkHasher(u64);

    impl std::hash::Hasher for LinkHasher {
        fn write(&mut self, bytes: &[u8]) {
            let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
            for b in bytes {
                h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
            }
            self.0 = h;
        }

        fn finish(&self) -> u64 {
            self.0
        }
    }

    type LinkIndex = std::collections::HashMap<&'static str, usize, std::hash::BuildHasherDefault<LinkHasher>>;

    /// linkId -> position in [`ITEMS`], built once: the writer looks items up several times per item
    /// (text, parent, order), which a scan of the table made quadratic.
    fn index() -> &'static LinkIndex {
        static INDEX: OnceLock<LinkIndex> = OnceLock::new();
        INDEX.get_or_init(|| {
            let mut index = LinkIndex::with_capacity_and_hasher(ITEMS.len(), Default::default());
            for (n, i) in ITEMS.iter().enumerate() {
                // The first row wins, as a scan would find it (linkIds are unique in the Questionnaire).
                index.entry(i.link).or_insert(n);
            }
            index
        })
    }

    pub(crate) fn item(link: &str) -> Option<&'static Item> {
        index().get(link).map(|&n| &ITEMS[n])
    }

    /// The position of an item in the Questionnaire's order (unknown items last).
    pub(crate) fn position(link: &str) -> usize {
        index().get(link).copied().unwrap_or(usize::MAX)
    }

    /// The item and its enclosing items, innermost first.
    fn ancestry(link: &str) -> Vec<&'static Item> {
        let mut out = Vec::new();
        let mut next = item(link);
        // The table is a tree (checked by a test); the bound keeps a defective table from looping.
        while let Some(i) = next.filter(|_| out.len() <= ITEMS.len()) {
            out.push(i);
            next = i.parent.and_then(item);
        }
        out
    }

    /// The innermost item that holds all of `links`; `None` when only the resource holds them all.
    pub(crate) fn common_ancestor(links: &[&str]) -> Option<&'static str> {
        let first = ancestry(links.first()?);
        first
            .into_iter()
            .find(|candidate| links.iter().all(|l| ancestry(l).iter().any(|a| a.link == candidate.link)))
            .map(|i| i.link)
    }

    /// The FHIRPath of an item as the writer nests it: under its group's `item`, or under its
    /// question's `answer` when it explains an answer.
    pub(crate) fn canonical_path(link: &str) -> Path {
        let mut path = Path::fhir(ROOT);
        for i in ancestry(link).into_iter().rev() {
            if let Some(parent) = i.parent.and_then(item).filter(|p| p.kind != Kind::Group) {
                path = path.key("answer");
                if !parent.repeats {
                    path = path.index(0);
                }
            }
            path = path.key("item").link(i.link);
        }
        path
    }


    /// The Ja/Nee answers with local codes (1406, 984, 1200), which the record holds as booleans; their
    /// codes are the value set `[yes-no]`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum YesNo {
        Yes,
        No,
    }

    impl Coded for YesNo {
        const VALUE_SET: &'static str = "yes-no";
        const ALL: &'static [Self] = &[YesNo::Yes, YesNo::No];
        fn key(self) -> &'static str {
            match self {
                YesNo::Yes => "yes",
                YesNo::No => "no",
            }
        }
    }

    impl YesNo {
        pub(crate) fn of(b: bool) -> YesNo {
            if b {
                YesNo::Yes
            } else {
                YesNo::No
            }
        }
    }

    /// The fixed code of a read-only item: a treatment (4a-g, 4i) or a question ("MetingNaam").
    #[derive(Debug, Clone, Copy)]
    pub(crate) enum Fixed {
        Treatment(Treatment),
        /// A key of the `[question]` value set.
        Question(&'static str),
    }

    impl Fixed {
        /// The coding the writer emits; `None` only if the mappings lack the key (a build defect).
        pub(crate) fn coding(self) -> Option<&'static Coding> {
            match self {
                Fixed::Treatment(t) => Some(t.entry().questionnaire_coding()),
                Fixed::Question(key) => mappings::get().valueset("question").by_key(key).map(|e| e.questionnaire_coding()),
            }
        }

        pub(crate) fn matches(self, system: Option<&str>, code: &str) -> bool {
            match self {
                Fixed::Treatment(t) => Treatment::from_coding(system, code) == Some(t),
                Fixed::Question(key) => mappings::get().valueset("question").find(system, code).is_some_and(|e| e.key == key),
            }
        }

        /// What a wrong code would misattribute, for messages.
        pub(crate) fn what(self) -> &'static str {
            match self {
                Fixed::Treatment(_) => "treatment",
                Fixed::Question(_) => "question",
            }
        }
    }

    /// The steps of the form, implemented once per direction.
    ///
    /// Every leaf step names its item's linkId and the record pointer of the field it carries (the
    /// pointer only serves [`super::locate`]). Container steps shape the record: [`Walk::optional`] for
    /// parts whose fields are all optional, [`Walk::part`] for parts that exist only with a leading
    /// answer (an ICD answer, a decision, a phone number).
    pub(crate) trait Walk: Sized {
        /// A group item; `body` walks its items.
        fn group(&mut self, link: &'static str, body: impl FnOnce(&mut Self));
        /// A repeating group, one list element per occurrence; `body` gets the element's pointer.
        fn repeat<T>(
            &mut self,
            link: &'static str,
            ptr: &str,
            list: &mut Vec<T>,
            body: impl FnMut(&mut Self, &str, &mut Option<T>),
        );
        /// A part of the record that exists when any of its items is answered.
        fn optional<T: Default>(&mut self, slot: &mut Option<T>, body: impl FnOnce(&mut Self, &mut T));
        /// A part that exists only with its leading answer: `head` walks that answer, `assemble` builds
        /// the part from it (reading), `split` takes it out again (writing), `rest` walks the items that
        /// only make sense with it.
        fn part<T, H>(
            &mut self,
            slot: &mut Option<T>,
            head: impl FnOnce(&mut Self, &mut Option<H>),
            assemble: impl FnOnce(H) -> T,
            split: impl FnOnce(&T) -> H,
            rest: impl FnOnce(&mut Self, &mut T),
        );
        fn text(&mut self, link: &'static str, ptr: &str, slot: &mut Option<String>);
        fn date(&mut self, link: &'static str, ptr: &str, slot: &mut Option<FhirDate>);
        fn coded<T: Coded>(&mut self, link: &'static str, ptr: &str, slot: &mut Option<T>);
        /// A Ja/Nee question with the local codes of `[yes-no]`.
        fn yes_no(&mut self, link: &'static str, ptr: &str, slot: &mut Option<bool>);
        /// Item 82: answered (the patient was present) or left out.
        fn flag(&mut self, link: &'static str, ptr: &str, slot: &mut bool);
        /// A read-only item with its fixed code; a reader refuses any other code.
        fn fixed(&mut self, link: &'static str, code: Fixed);
        /// A choice with an "Anders, namelijk" text item `other`.
        fn answer<T: Coded>(&mut self, link: &'static str, other: &'static str, ptr: &str, slot: &mut Option<Answer<T>>);
        /// A repeating choice with an "Anders, namelijk" text item `other`.
        fn answers<T: Coded>(&mut self, link: &'static str, other: &'static str, ptr: &str, list: &mut Vec<Answer<T>>);
        /// A BehandelBesluit with its restriction text item (SpecificatieAnders); `ptr` is the limit's.
        fn decision(&mut self, link: &'static str, restriction: &'static str, ptr: &str, slot: &mut Option<Decision>);
        /// 4g's open-choice treatment: the code "Other", or a text naming the treatment.
        fn open_treatment(&mut self, link: &'static str, ptr: &str, slot: &mut Option<String>);
        /// What was read of `link` cannot be placed in the record (a folded text without the answer
        /// it needs): an error for a reader, nothing for a writer.
        fn refuse(&mut self, link: &'static str, message: &str);
    }

    struct PhoneLinks {
        group: &'static str,
        number: &'static str,
        kind: &'static str,
        usage: &'static str,
        comment: &'static str,
    }

    struct EmailLinks {
        group: &'static str,
        address: &'static str,
        usage: &'static str,
    }

    struct LimitLinks {
        group: &'static str,
        treatment: &'static str,
        decision: &'static str,
        restriction: &'static str,
        explanation: &'static str,
    }

    /// 4a-f, in the form's order.
    const LIMITS: [(Treatment, LimitLinks); 6] = [
        (
            Treatment::Resuscitation,
            LimitLinks { group: "1409", treatment: "1410", decision: "1386", restriction: "1001", explanation: "1002" },
        ),
        (
            Treatment::InvasiveVentilation,
            LimitLinks { group: "1411", treatment: "1412", decision: "1387", restriction: "1388", explanation: "1389" },
        ),
        (
            Treatment::IcuAdmission,
            LimitLinks { group: "1413", treatment: "1414", decision: "1390", restriction: "1391", explanation: "1392" },
        ),
        (
            Treatment::HospitalAdmission,
            LimitLinks { group: "1415", treatment: "1416", decision: "1393", restriction: "1394", explanation: "1395" },
        ),
        (
            Treatment::Antibiotics,
            LimitLinks { group: "1417", treatment: "1418", decision: "1396", restriction: "1397", explanation: "1398" },
        ),
        (
            Treatment::BloodProducts,
            LimitLinks { group: "1419", treatment: "1420", decision: "1399", restriction: "1400", explanation: "1401" },
        ),
    ];

    /// The whole form: which item carries which record field.
    ///
    /// What a QuestionnaireResponse cannot carry, because the form has no item for it:
    /// - `patient.other_identifiers` beyond one: `subject.identifier` holds a single identifier, the BSN
    ///   when known, otherwise the first other identifier;
    /// - `conducted_by.agb` and `conducted_by.other_identifiers` (the form names the professional only);
    /// - `discussed_on` of every treatment limit (4a-g) and of the ICD agreement (4i);
    /// - the document (scan) of an advance directive: its line in 1198 says that the source has one;
    /// - a `present` that says only "the patient was not present" (82 has no "no"): it reads back as
    ///   absent;
    /// - empty or whitespace-only texts, which every reader treats as not recorded (a phone or e-mail
    ///   whose number or address is blank is left out whole), and parts with nothing in them.
    ///
    /// What it carries in the Questionnaire's own free-text items, rather than drop it or invent an
    /// item or code (the reader reads all of these back):
    /// - a 4g "Ja maar met beperkingen", which 1402 does not offer: 1402 is left unanswered and the
    ///   restriction opens 4g's Toelichting 1404 (see [`fold_limit`]);
    /// - the advance directives (wilsverklaringen), one line each at the start of 7a's Toelichting 1198
    ///   (see [`fold_directives`]);
    /// - contact roles the Questionnaire does not offer on 982/997 (e.g. "Contactpersoon"), and every
    ///   "Anders" text of a repeating choice, as its one "Anders" answer with the names joined by "; "
    ///   in its "Anders, namelijk" item (see [`NOT_OFFERED`]);
    /// - the "Anders" text of the place of death, which has no item of its own, folded into 1192's
    ///   explanation (see [`fold`]).
    ///
    /// And one structural deviation: more than one 4g limit, as a repeated group 1421.
    pub(crate) fn walk<W: Walk>(w: &mut W, r: &mut AcpRecord) {
        w.date("963", "/date_filled_in", &mut r.date_filled_in);
        w.group("7", |w| name(w, ["964", "965", "966"], "/patient/name", &mut r.patient.name));
        w.date("967", "/patient/birth_date", &mut r.patient.birth_date);
        w.group("8", |w| {
            w.optional(&mut r.conducted_by, |w, pro| {
                w.group("16", |w| name(w, ["968", "969", "970"], "/conducted_by/name", &mut pro.name));
                w.coded("1405", "/conducted_by/function", &mut pro.function);
            })
        });

        // 1. Wilsbekwaamheid & wettelijke vertegenwoordiging.
        w.group("26", |w| {
            w.optional(&mut r.legal_capacity, |w, lc| {
                w.yes_no("1406", "/legal_capacity/capable", &mut lc.capable);
                w.text("1407", "/legal_capacity/explanation", &mut lc.explanation);
            });
            w.group("29", |w| {
                w.optional(&mut r.representative, |w, rep| {
                    w.group("30", |w| name(w, ["973", "974", "975"], "/representative/name", &mut rep.person.name));
                    w.group("39", |w| {
                        let phones = PhoneLinks { group: "40", number: "976", kind: "977", usage: "978", comment: "979" };
                        contact_details(
                            w,
                            phones,
                            EmailLinks { group: "41", address: "980", usage: "981" },
                            "/representative",
                            &mut rep.person,
                        )
                    });
                    w.answers("982", "411", "/representative/roles", &mut rep.roles);
                    w.answer("983", "408", "/representative/relationship", &mut rep.person.relationship);
                    w.yes_no("984", "/representative/is_first_contact", &mut rep.is_first_contact);
                });
                w.optional(&mut r.first_contact, |w, fc| {
                    w.group("53", |w| name(w, ["985", "986", "987"], "/first_contact/name", &mut fc.name));
                    w.group("61", |w| {
                        let phones = PhoneLinks { group: "62", number: "988", kind: "989", usage: "990", comment: "991" };
                        contact_details(w, phones, EmailLinks { group: "66", address: "992", usage: "993" }, "/first_contact", fc)
                    });
                    w.answer("995", "412", "/first_contact/relationship", &mut fc.relationship);
                });
            });
        });

        // 2. Gesprek gevoerd in bijzijn van.
        w.group("78", |w| {
            w.optional(&mut r.present, |w, pr| {
                w.flag("82", "/present/patient", &mut pr.patient);
                w.answers("997", "414", "/present/roles", &mut pr.roles);
                w.answers("998", "413", "/present/relationships", &mut pr.relationships);
            })
        });

        // 3. Doel van medisch beleid.
        w.group("586", |w| {
            w.fixed("1408", Fixed::Question("goal-focus"));
            w.coded("999", "/medical_policy_goal", &mut r.medical_policy_goal);
        });

        // 4. Behandelgrenzen.
        w.group("83", |w| {
            for (t, links) in LIMITS {
                let ptr = format!("/treatment_limits/{}", TreatmentLimits::field_name(t));
                if let Some(slot) = r.treatment_limits.slot_mut(t) {
                    w.group(links.group, |w| {
                        // Outside the part, so that a wrong treatment code is refused even without a decision.
                        w.fixed(links.treatment, Fixed::Treatment(t));
                        limit(w, &links, &ptr, slot);
                    });
                }
            }
            w.repeat("1421", "/treatment_limits/other", &mut r.treatment_limits.other, |w, ptr, slot| {
                // Folded on the way out, unfolded on the way in, like the place of death.
                let mut items = slot.take().map(|o| fold_limit(&o));
                w.optional(&mut items, |w, i| {
                    w.coded("1402", &format!("{ptr}/decision"), &mut i.decision);
                    w.open_treatment("1422", &format!("{ptr}/treatment"), &mut i.treatment);
                    w.text("1404", &format!("{ptr}/explanation"), &mut i.note);
                });
                *slot = items.and_then(|i| unfold_limit(w, i));
            });
            w.part(
                &mut r.icd,
                |w, h| w.coded("1006", "/icd/present", h),
                |present| Icd { present, product_type: None, explanation: None },
                |icd| icd.present,
                |w, icd| {
                    w.coded("1008", "/icd/product_type", &mut icd.product_type);
                    w.text("1009", "/icd/explanation", &mut icd.explanation);
                },
            );
            w.group("1425", |w| {
                w.fixed("1426", Fixed::Treatment(Treatment::IcdDeactivation));
                w.part(
                    &mut r.icd_deactivation,
                    |w, h| w.coded("1005", "/icd_deactivation/agreement", h),
                    |agreement| IcdDeactivation { agreement, explanation: None, discussed_on: None },
                    |d| d.agreement,
                    |w, d| w.text("1010", "/icd_deactivation/explanation", &mut d.explanation),
                );
            });
        });

        // 5. Behandelwensen.
        w.group("107", |w| {
            w.group("1427", |w| {
                w.fixed("1428", Fixed::Question("care-wishes"));
                w.text("1190", "/care_wishes", &mut r.care_wishes);
            });
            w.group("1429", |w| {
                w.fixed("1430", Fixed::Question("place-of-death"));
                w.part(
                    &mut r.place_of_death,
                    |w, h| w.coded("1191", "/place_of_death/preference", h),
                    |code| PlaceOfDeathWish { preference: Answer::code(code), explanation: None },
                    |pd| pd.preference.value(),
                    |w, pd| {
                        // Folded on the way out, unfolded on the way in; `unfold(fold(x)) == x`.
                        let mut note = fold(pd);
                        w.text("1192", "/place_of_death/explanation", &mut note);
                        (pd.preference, pd.explanation) = unfold(pd.preference.value(), note);
                    },
                );
            });
            w.group("1431", |w| {
                w.fixed("1432", Fixed::Question("euthanasia-position"));
                w.part(
                    &mut r.euthanasia,
                    |w, h| w.coded("1193", "/euthanasia/position", h),
                    |position| Euthanasia { position, explanation: None },
                    |e| e.position,
                    |w, e| w.text("1194", "/euthanasia/explanation", &mut e.explanation),
                );
            });
            w.group("1433", |w| {
                w.fixed("1434", Fixed::Question("organ-donation"));
                w.coded("1435", "/organ_donation_registered", &mut r.organ_donation_registered);
            });
        });

        // 6. Wat verder nog belangrijk is.
        w.group("598", |w| {
            w.fixed("1436", Fixed::Question("sense-of-purpose"));
            w.text("1196", "/sense_of_purpose", &mut r.sense_of_purpose);
        });

        // 7. Eerder vastgelegde behandelwensen.
        // 7a's Toelichting also carries the advance directives, which have no item of their own.
        w.group("115", |w| {
            let explanation = r.earlier_agreements.as_mut().and_then(|e| e.explanation.take());
            let mut note = fold_directives(&r.advance_directives, explanation.as_deref());
            w.part(
                &mut r.earlier_agreements,
                |w, h| w.coded("1197", "/earlier_agreements/recorded", h),
                |recorded| EarlierAgreements { recorded, explanation: None, differ_from_current: None },
                |e| e.recorded,
                |w, e| w.coded("1199", "/earlier_agreements/differ_from_current", &mut e.differ_from_current),
            );
            w.text("1198", "/earlier_agreements/explanation", &mut note);
            let (directives, explanation) = unfold_directives(note);
            r.advance_directives = directives;
            match (&mut r.earlier_agreements, explanation) {
                (Some(e), explanation) => e.explanation = explanation,
                (None, Some(_)) => w.refuse("1198", "this explanation belongs to the answer of 7a (1197), which is missing"),
                (None, None) => {}
            }
        });

        // 8. Informatie delen.
        w.group("119", |w| {
            w.yes_no("1200", "/relatives_informed", &mut r.relatives_informed);
            w.coded("1201", "/sharing_consent", &mut r.sharing_consent);
        });
    }

    fn name<W: Walk>(w: &mut W, [given, prefix, family]: [&'static str; 3], ptr: &str, n: &mut Name) {
        w.text(given, &format!("{ptr}/given"), &mut n.given);
        w.text(prefix, &format!("{ptr}/prefix"), &mut n.prefix);
        w.text(family, &format!("{ptr}/family"), &mut n.family);
    }

    fn contact_details<W: Walk>(w: &mut W, ph: PhoneLinks, em: EmailLinks, ptr: &str, person: &mut ContactPerson) {
        w.repeat(ph.group, &format!("{ptr}/phones"), &mut person.phones, |w, ptr, slot| {
            w.part(
                slot,
                |w, h| w.text(ph.number, &format!("{ptr}/number"), h),
                |number| Phone { number, telecom_type: None, number_use: None, comment: None },
                |phone| phone.number.clone(),
                |w, phone| {
                    w.coded(ph.kind, &format!("{ptr}/type"), &mut phone.telecom_type);
                    w.coded(ph.usage, &format!("{ptr}/use"), &mut phone.number_use);
                    w.text(ph.comment, &format!("{ptr}/comment"), &mut phone.comment);
                },
            )
        });
        w.repeat(em.group, &format!("{ptr}/emails"), &mut person.emails, |w, ptr, slot| {
            w.part(
                slot,
                |w, h| w.text(em.address, &format!("{ptr}/address"), h),
                |address| Email { address, email_use: None },
                |email| email.address.clone(),
                |w, email| w.coded(em.usage, &format!("{ptr}/use"), &mut email.email_use),
            )
        });
    }

    fn limit<W: Walk>(w: &mut W, links: &LimitLinks, ptr: &str, slot: &mut Option<TreatmentLimit>) {
        w.part(
            slot,
            |w, d| w.decision(links.decision, links.restriction, ptr, d),
            |decision| TreatmentLimit { decision, explanation: None, discussed_on: None },
            |l| l.decision.clone(),
            |w, l| w.text(links.explanation, &format!("{ptr}/explanation"), &mut l.explanation),
        );
    }

    /// The text of item 1192 for a place of death.
    ///
    /// The form has no "Anders, namelijk" item for 5b, so when the place is "Anders" its description is
    /// folded into the explanation: the first line is `Anders, namelijk: ` followed by the description as
    /// a JSON string literal (quotes, so that any text, line breaks included, comes back exactly), and
    /// the explanation, if any, follows after a line break:
    ///
    /// ```text
    /// Anders, namelijk: "bij mijn dochter thuis"
    /// Zij woont in Zwolle.
    /// ```
    ///
    /// A reader without this convention still shows a person everything. When the place is "Anders"
    /// without a description but the explanation itself starts with `Anders, namelijk:`, an empty
    /// description `""` is written first, so the explanation is not mistaken for one. For every other
    /// place the explanation is written as it is.
    pub(crate) fn fold(pd: &PlaceOfDeathWish) -> Option<String> {
        let explanation = pd.explanation.as_deref().filter(|s| !s.trim().is_empty());
        if !pd.preference.value().is_other() {
            return explanation.map(str::to_owned);
        }
        match (pd.preference.other_text(), explanation) {
            (Some(t), e) => Some(quote_labelled(OTHER_LABEL, t, e)),
            (None, Some(e)) if e.starts_with(OTHER_LABEL) => Some(quote_labelled(OTHER_LABEL, "", Some(e))),
            (None, e) => e.map(str::to_owned),
        }
    }

    /// The inverse of [`fold`]: the place and its explanation from item 1192's text. A description
    /// written by hand without quotes (`Anders, namelijk: bij mijn dochter`) is read up to the end of
    /// its line.
    pub(crate) fn unfold(code: PlaceOfDeath, note: Option<String>) -> (Answer<PlaceOfDeath>, Option<String>) {
        match note.as_deref().filter(|_| code.is_other()).and_then(|n| labelled(n, OTHER_LABEL)) {
            Some((description, explanation)) => {
                (Answer::new(code, Some(description)).unwrap_or(Answer::code(code)), explanation)
            }
            None => (Answer::code(code), note),
        }
    }

    /// `label "text"`, the text as a JSON string literal (quotes, so that any text, line breaks
    /// included, comes back exactly), then the rest, if any, after a line break.
    fn quote_labelled(label: &str, text: &str, rest: Option<&str>) -> String {
        let quoted = serde_json::Value::String(text.to_owned()).to_string();
        match rest {
            Some(rest) => format!("{label} {quoted}\n{rest}"),
            None => format!("{label} {quoted}"),
        }
    }

    /// The inverse of [`quote_labelled`]: the text and the rest (blank rest is none). A text written by
    /// hand without quotes is read up to the end of its line. `None` when `note` does not start with
    /// `label`, or more follows the closing quote on its line (not this convention).
    fn labelled(note: &str, label: &str) -> Option<(String, Option<String>)> {
        let rest = note.strip_prefix(label)?;
        let rest = rest.strip_prefix(' ').unwrap_or(rest);
        let (text, after) = if rest.starts_with('"') {
            let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<String>();
            match stream.next() {
                Some(Ok(d)) => (d, &rest[stream.byte_offset()..]),
                // Not a string literal after all: read it as written by hand.
                _ => split_line(rest),
            }
        } else {
            split_line(rest)
        };
        let after = match after.strip_prefix('\n') {
            Some(e) => e,
            None if after.is_empty() => "",
            None => return None,
        };
        Some((text, Some(after.to_owned()).filter(|e| !e.trim().is_empty())))
    }

    fn split_line(s: &str) -> (String, &str) {
        match s.find('\n') {
            Some(i) => (s[..i].to_owned(), &s[i..]),
            None => (s.to_owned(), ""),
        }
    }

    /// 4g's items as the Questionnaire has them: a decision among those 1402 offers, the treatment
    /// (1422) and the Toelichting (1404).
    #[derive(Default)]
    pub(crate) struct LimitItems {
        decision: Option<DecisionCode>,
        treatment: Option<String>,
        note: Option<String>,
    }

    /// The label that opens 1404 for a 4g "Ja maar met beperkingen": the decision's own display.
    fn restriction_label() -> String {
        format!("{}:", DecisionCode::PerformWithRestrictions.entry().coding.display)
    }

    /// A 4g limit in the Questionnaire's items. 1402 offers "Wel uitvoeren", "Niet uitvoeren" and
    /// "Onbekend", not "Ja maar met beperkingen" (nor the code 1 of 4a-f), and 4g has no
    /// SpecificatieAnders. So a restricted 4g limit leaves 1402 unanswered, rather than claim a plain
    /// "Wel uitvoeren", and its restriction opens the Toelichting 1404, quoted, before the explanation:
    ///
    /// ```text
    /// Ja maar met beperkingen: "alleen een proefperiode van een maand"
    /// Daarna opnieuw bespreken.
    /// ```
    ///
    /// A person reads the decision and its restriction there; a reader of this convention restores it.
    pub(crate) fn fold_limit(o: &OtherTreatmentLimit) -> LimitItems {
        let explanation = o.limit.explanation.as_deref().filter(|s| !s.trim().is_empty());
        let (decision, note) = match o.limit.decision.restriction() {
            Some(r) => (None, Some(quote_labelled(&restriction_label(), r, explanation))),
            None => (Some(o.limit.decision.code()), explanation.map(str::to_owned)),
        };
        LimitItems { decision, treatment: o.treatment.clone(), note }
    }

    /// The inverse of [`fold_limit`]. A 1404 that opens with the label counts as the restriction only
    /// when 1402 is unanswered (or answers "Ja maar met beperkingen" itself, as some senders do);
    /// otherwise it is the explanation as written.
    pub(crate) fn unfold_limit<W: Walk>(w: &mut W, i: LimitItems) -> Option<OtherTreatmentLimit> {
        let restricted = i
            .note
            .as_deref()
            .filter(|_| matches!(i.decision, None | Some(DecisionCode::PerformWithRestrictions)))
            .and_then(|n| labelled(n, &restriction_label()));
        let (decision, explanation) = match (i.decision, restricted) {
            (_, Some((restriction, explanation))) => {
                match Decision::new(DecisionCode::PerformWithRestrictions, Some(restriction)) {
                    Ok(d) => (d, explanation),
                    Err(e) => {
                        w.refuse("1404", &e.to_string());
                        return None;
                    }
                }
            }
            (Some(DecisionCode::PerformWithRestrictions), None) => {
                let message = format!(
                    "{e}; for 4g, write it at the start of the Toelichting (1404) as '{} \"...\"'",
                    restriction_label(),
                    e = DecisionError::MissingRestriction
                );
                w.refuse("1402", &message);
                return None;
            }
            (Some(code), None) => (Decision::new(code, None).ok()?, i.note),
            (None, None) => {
                if i.note.is_some() || i.treatment.is_some() {
                    let link = if i.note.is_some() { "1404" } else { "1422" };
                    w.refuse(link, "this further treatment limit has no decision (BehandelBesluit 1402), so its answers cannot be placed");
                }
                return None;
            }
        };
        Some(OtherTreatmentLimit { treatment: i.treatment, limit: TreatmentLimit { decision, explanation, discussed_on: None } })
    }

    /// The label of an advance directive's line in 7a's Toelichting.
    const DIRECTIVE_LABEL: &str = "Wilsverklaring:";
    /// Said on a directive's line when the source holds its document, which the form cannot carry.
    const DIRECTIVE_DOCUMENT: &str = "document in de bron";
    const DIRECTIVE_COMMENT: &str = "toelichting ";

    /// The text of item 1198 (7a's Toelichting): the advance directives, one line each, then the
    /// explanation. The Questionnaire has no item for advance directives; 7 ("Eerder vastgelegde
    /// behandelwensen") is where IKNL's dataset places them (element 721, AdvanceDirective). A line is
    ///
    /// ```text
    /// Wilsverklaring: Niet reanimeren verklaring, 2024-05-01, toelichting "ligt bij de huisarts", document in de bron
    /// ```
    ///
    /// the type's display, then the date, the comment as a JSON string literal and the note about
    /// the document, each only when present. A person reads it as written; [`unfold_directives`]
    /// restores every directive but its document.
    pub(crate) fn fold_directives(list: &[AdvanceDirective], explanation: Option<&str>) -> Option<String> {
        let mut lines: Vec<String> = list.iter().map(directive_line).collect();
        lines.extend(explanation.filter(|s| !s.trim().is_empty()).map(str::to_owned));
        (!lines.is_empty()).then(|| lines.join("\n"))
    }

    fn directive_line(d: &AdvanceDirective) -> String {
        let mut line = format!("{DIRECTIVE_LABEL} {}", d.kind.entry().coding.display);
        if let Some(date) = &d.date {
            line = format!("{line}, {}", date.as_str());
        }
        if let Some(c) = d.comment.as_deref().filter(|c| !c.trim().is_empty()) {
            line = format!("{line}, {DIRECTIVE_COMMENT}{}", serde_json::Value::String(c.to_owned()));
        }
        if d.document.is_some() {
            line = format!("{line}, {DIRECTIVE_DOCUMENT}");
        }
        line
    }

    /// The inverse of [`fold_directives`]: the leading lines that read as directives, and the rest as
    /// the explanation.
    pub(crate) fn unfold_directives(note: Option<String>) -> (Vec<AdvanceDirective>, Option<String>) {
        let Some(note) = note else { return (Vec::new(), None) };
        let mut directives = Vec::new();
        let mut rest = note.as_str();
        while !rest.is_empty() {
            let (line, tail) = rest.split_once('\n').unwrap_or((rest, ""));
            let Some(d) = parse_directive(line) else { break };
            directives.push(d);
            rest = tail;
        }
        if directives.is_empty() {
            return (directives, Some(note));
        }
        (directives, Some(rest.to_owned()).filter(|e| !e.trim().is_empty()))
    }

    fn parse_directive(line: &str) -> Option<AdvanceDirective> {
        let rest = line.strip_prefix(DIRECTIVE_LABEL)?.strip_prefix(' ')?;
        let display = |k: &AdvanceDirectiveType| k.entry().coding.display.as_str();
        // The longest display that opens the line ("Behandelverbod met aanvulling Voltooid Leven").
        let kind = *AdvanceDirectiveType::ALL
            .iter()
            .filter(|k| rest.starts_with(display(k)))
            .max_by_key(|k| display(k).len())?;
        let mut rest = &rest[display(&kind).len()..];
        let mut d = AdvanceDirective { kind, date: None, comment: None, document: None };
        if let Some(after) = rest.strip_prefix(", ").filter(|a| !a.starts_with(DIRECTIVE_COMMENT) && !a.starts_with(DIRECTIVE_DOCUMENT)) {
            let end = after.find(", ").unwrap_or(after.len());
            d.date = Some(FhirDate::parse(&after[..end]).ok()?);
            rest = &after[end..];
        }
        if let Some(after) = rest.strip_prefix(", ").and_then(|a| a.strip_prefix(DIRECTIVE_COMMENT)) {
            let mut stream = serde_json::Deserializer::from_str(after).into_iter::<String>();
            d.comment = Some(stream.next()?.ok()?);
            rest = &after[stream.byte_offset()..];
        }
        if let Some(after) = rest.strip_prefix(", ").and_then(|a| a.strip_prefix(DIRECTIVE_DOCUMENT)) {
            rest = after;
        }
        rest.is_empty().then_some(d)
    }

    /// Answers of a value set that the Questionnaire does not offer on a repeating choice, by linkId.
    /// The writer gives such an answer as "Anders" with its display in the "Anders, namelijk" item;
    /// the reader turns an "Anders" whose text is exactly that display back into the answer.
    pub(crate) static NOT_OFFERED: &[(&str, &[&str])] =
        &[("982", &["contact-person"]), ("997", &["legal-representative", "first-contact", "contact-person"])];

    /// Whether the Questionnaire offers `value` as an answer of `link`.
    pub(crate) fn offered<T: Coded>(link: &str, value: T) -> bool {
        !NOT_OFFERED.iter().any(|(l, keys)| *l == link && keys.contains(&value.key()))
    }

    /// The answer not offered on `link` whose display `text` is.
    pub(crate) fn not_offered_named<T: Coded>(link: &str, text: &str) -> Option<T> {
        T::ALL.iter().copied().find(|v| !offered(link, *v) && v.entry().coding.display == text)
    }

    /// Follows the walk over a record and notes, for every item that carries data, the record pointer
    /// of the field it carries.
    #[derive(Default)]
    pub(crate) struct Tracer {
        pub(crate) seen: Vec<(String, &'static str)>,
    }

    impl Tracer {
        fn note(&mut self, present: bool, ptr: &str, link: &'static str) {
            if present {
                self.seen.push((ptr.to_owned(), link));
            }
        }
    }

    impl Walk for Tracer {
        fn group(&mut self, _link: &'static str, body: impl FnOnce(&mut Self)) {
            body(self)
        }
        fn repeat<T>(
            &mut self,
            _link: &'static str,
            ptr: &str,
            list: &mut Vec<T>,
            mut body: impl FnMut(&mut Self, &str, &mut Option<T>),
        ) {
            for (i, e) in std::mem::take(list).into_iter().enumerate() {
                body(self, &format!("{ptr}/{i}"), &mut Some(e));
            }
        }
        fn optional<T: Default>(&mut self, slot: &mut Option<T>, body: impl FnOnce(&mut Self, &mut T)) {
            if let Some(t) = slot {
                body(self, t)
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
            if let Some(t) = slot {
                head(self, &mut Some(split(t)));
                rest(self, t);
            }
        }
        fn text(&mut self, link: &'static str, ptr: &str, slot: &mut Option<String>) {
            self.note(slot.is_some(), ptr, link)
        }
        fn date(&mut self, link: &'static str, ptr: &str, slot: &mut Option<FhirDate>) {
            self.note(slot.is_some(), ptr, link)
        }
        fn coded<T: Coded>(&mut self, link: &'static str, ptr: &str, slot: &mut Option<T>) {
            self.note(slot.is_some(), ptr, link)
        }
        fn yes_no(&mut self, link: &'static str, ptr: &str, slot: &mut Option<bool>) {
            self.note(slot.is_some(), ptr, link)
        }
        fn flag(&mut self, link: &'static str, ptr: &str, slot: &mut bool) {
            self.note(*slot, ptr, link)
        }
        fn fixed(&mut self, _link: &'static str, _code: Fixed) {}
        fn answer<T: Coded>(&mut self, link: &'static str, other: &'static str, ptr: &str, slot: &mut Option<Answer<T>>) {
            self.note(slot.is_some(), ptr, link);
            self.note(slot.as_ref().is_some_and(|a| a.other_text().is_some()), &format!("{ptr}/other"), other);
        }
        fn answers<T: Coded>(&mut self, link: &'static str, other: &'static str, ptr: &str, list: &mut Vec<Answer<T>>) {
            self.note(!list.is_empty(), ptr, link);
            if let Some(i) = list.iter().position(|a| a.other_text().is_some()) {
                self.note(true, &format!("{ptr}/{i}/other"), other);
            }
        }
        fn decision(&mut self, link: &'static str, restriction: &'static str, ptr: &str, slot: &mut Option<Decision>) {
            self.note(slot.is_some(), &format!("{ptr}/decision"), link);
            self.note(slot.as_ref().is_some_and(|d| d.restriction().is_some()), &format!("{ptr}/restriction"), restriction);
        }
        fn open_treatment(&mut self, link: &'static str, ptr: &str, slot: &mut Option<String>) {
            self.note(slot.is_some(), ptr, link)
        }
        fn refuse(&mut self, _link: &'static str, _message: &str) {}
    }

    /// A record that answers every item of the form (and carries a field of every kind the form
    /// cannot), so that tracing it reaches every item.
    pub(crate) fn exemplar() -> AcpRecord {
        let date = |s: &str| FhirDate::parse(s).ok();
        let text = |s: &str| Some(s.to_owned());
        let restricted = |s: &str| Decision::PerformWithRestrictions { restriction: s.to_owned() };
        let limit = |s: &str| {
            Some(TreatmentLimit { decision: restricted(s), explanation: text("toelichting"), discussed_on: date("2024-01-01") })
        };
        let name = |g: &str, p: &str, f: &str| Name { given: text(g), prefix: text(p), family: text(f) };
        let other_role = Answer::new(ContactRole::Other, text("buurvrouw")).unwrap_or(Answer::code(ContactRole::Other));
        let other_relation = Answer::new(Relationship::Other, text("neef")).unwrap_or(Answer::code(Relationship::Other));
        let person = |n: Name| ContactPerson {
            name: n,
            phones: vec![Phone {
                number: "0612345678".into(),
                telecom_type: Some(TelecomType::Mobile),
                number_use: Some(NumberUse::Home),
                comment: text("na 18 uur"),
            }],
            emails: vec![Email { address: "naam@example.org".into(), email_use: Some(EmailUse::Private) }],
            relationship: Some(other_relation.clone()),
        };
        AcpRecord {
            date_filled_in: date("2024-03-01"),
            patient: Patient {
                bsn: Bsn::parse("999911120").ok(),
                other_identifiers: Vec::new(),
                name: name("Jan", "van", "Dam"),
                birth_date: date("1940-02-03"),
            },
            conducted_by: Some(Professional {
                name: name("Els", "de", "Vries"),
                function: Some(ProfessionalFunction::GeneralPractitioner),
                agb: None,
                other_identifiers: Vec::new(),
            }),
            legal_capacity: Some(LegalCapacity { capable: Some(false), explanation: text("dementie") }),
            representative: Some(Representative {
                person: person(name("Piet", "van", "Dam")),
                roles: vec![Answer::code(ContactRole::Mentor), other_role.clone()],
                is_first_contact: Some(false),
            }),
            first_contact: Some(person(name("Kees", "ter", "Dam"))),
            present: Some(Presence { patient: true, roles: vec![other_role], relationships: vec![other_relation] }),
            medical_policy_goal: Some(MedicalPolicyGoal::PalliativeSymptomRelief),
            treatment_limits: TreatmentLimits {
                resuscitation: limit("geen defibrillatie"),
                invasive_ventilation: limit("kort"),
                icu_admission: limit("kort"),
                hospital_admission: limit("alleen bij fractuur"),
                antibiotics: limit("alleen oraal"),
                blood_products: limit("eenmalig"),
                other: vec![
                    OtherTreatmentLimit {
                        treatment: text("Dialyse"),
                        limit: limit("proefperiode").unwrap_or(TreatmentLimit {
                            decision: Decision::Unknown,
                            explanation: None,
                            discussed_on: None,
                        }),
                    },
                    // 1402 carries only an unrestricted decision (a restriction rides in 1404).
                    OtherTreatmentLimit {
                        treatment: text("Sondevoeding"),
                        limit: TreatmentLimit { decision: Decision::DoNotPerform, explanation: None, discussed_on: None },
                    },
                ],
            },
            icd: Some(Icd {
                present: YesNoUnknown::Yes,
                product_type: Some(IcdProductType::Icd),
                explanation: text("sinds 2019"),
            }),
            icd_deactivation: Some(IcdDeactivation {
                agreement: IcdDeactivationAgreement::Yes,
                explanation: text("in stervensfase"),
                discussed_on: date("2024-01-01"),
            }),
            care_wishes: text("thuis blijven"),
            place_of_death: Some(PlaceOfDeathWish {
                preference: Answer::new(PlaceOfDeath::Other, text("bij dochter")).unwrap_or(Answer::code(PlaceOfDeath::Other)),
                explanation: text("zij woont dichtbij"),
            }),
            euthanasia: Some(Euthanasia {
                position: EuthanasiaPosition::MightRequest,
                explanation: text("bij ondraaglijk lijden"),
            }),
            organ_donation_registered: Some(YesNoUnknown::No),
            sense_of_purpose: text("de kleinkinderen"),
            earlier_agreements: Some(EarlierAgreements {
                recorded: YesNoUnknown::Yes,
                explanation: text("bij de huisarts"),
                differ_from_current: Some(YesNoUnknown::No),
            }),
            relatives_informed: Some(true),
            sharing_consent: Some(SharingConsent::Agreed),
            advance_directives: Vec::new(),
            directives_not_in_force: Vec::new(),
        }
    }

    /// The record pointer → linkId pairs of [`exemplar`], computed once.
    pub(crate) fn traced() -> &'static [(String, &'static str)] {
        static TRACE: OnceLock<Vec<(String, &'static str)>> = OnceLock::new();
        TRACE.get_or_init(|| {
            let mut tracer = Tracer::default();
            walk(&mut tracer, &mut exemplar());
            tracer.seen
        })
    }
}

#[cfg(test)]
mod tests {
    use super::form::*;
    use super::*;
    use crate::validate::Severity;

    #[test]
    fn the_item_table_is_a_tree_in_questionnaire_order() {
        for (i, it) in ITEMS.iter().enumerate() {
            assert_eq!(position(it.link), i, "linkId {} is listed twice", it.link);
            if let Some(parent) = it.parent {
                assert!(position(parent) < i, "{}'s parent {parent} must come before it", it.link);
            }
        }
    }

    #[test]
    fn the_exemplar_reaches_every_answerable_item_through_a_real_pointer() {
        let json = serde_json::to_value(exemplar()).unwrap();
        for (ptr, link) in traced() {
            assert!(json.pointer(ptr).is_some(), "the walk gives {link} the pointer {ptr}, which the record JSON lacks");
        }
        for it in ITEMS.iter().filter(|i| i.kind == Kind::Question) {
            assert!(traced().iter().any(|(_, l)| *l == it.link), "no record field is walked to item {}", it.link);
        }
    }

    #[test]
    fn yes_no_matches_its_value_set() {
        for v in YesNo::ALL {
            let c = v.entry().questionnaire_coding();
            let sys = (!c.system.is_empty()).then_some(c.system.as_str());
            assert_eq!(YesNo::from_coding(sys, &c.code), Some(*v));
        }
        assert_eq!(mappings::get().valueset("yes-no").entries.len(), YesNo::ALL.len());
    }

    #[test]
    fn fixed_codes_exist_in_the_mappings() {
        for key in ["goal-focus", "care-wishes", "place-of-death", "euthanasia-position", "organ-donation", "sense-of-purpose"] {
            let c = Fixed::Question(key).coding().unwrap_or_else(|| panic!("[question] lacks {key}"));
            assert!(Fixed::Question(key).matches(Some(&c.system), &c.code));
        }
    }

    #[test]
    fn place_of_death_folding_is_lossless() {
        let other = |t: Option<&str>| Answer::new(PlaceOfDeath::Other, t.map(str::to_owned)).unwrap();
        let cases = [
            (other(Some("bij dochter")), None),
            (other(Some("bij dochter")), Some("zij woont\ndichtbij")),
            (other(Some("regel 1\nregel \"2\"")), Some("x")),
            (other(None), Some("Anders, namelijk: zelf geschreven")),
            (other(None), Some("gewoon")),
            (other(None), None),
            (Answer::code(PlaceOfDeath::Home), Some("Anders, namelijk: blijft zoals het is")),
        ];
        for (preference, explanation) in cases {
            let pd = PlaceOfDeathWish { preference, explanation: explanation.map(str::to_owned) };
            let (preference, explanation) = unfold(pd.preference.value(), fold(&pd));
            assert_eq!(PlaceOfDeathWish { preference, explanation }, pd);
        }
        let (a, e) = unfold(PlaceOfDeath::Other, Some("Anders, namelijk: bij de buren\nomdat".into()));
        assert_eq!((a.other_text(), e.as_deref()), (Some("bij de buren"), Some("omdat")));
    }

    #[test]
    fn locate_points_at_the_item_or_the_part_that_holds_the_field() {
        let at = |p: &str| locate(p).to_string();
        assert_eq!(at("/date_filled_in"), "QuestionnaireResponse.item.where(linkId='963')");
        assert_eq!(at("/patient/birth_date"), "QuestionnaireResponse.item.where(linkId='967')");
        assert_eq!(at("/patient/bsn"), "QuestionnaireResponse.subject.identifier");
        assert_eq!(at("/patient/name/family"), "QuestionnaireResponse.item.where(linkId='7').item.where(linkId='966')");
        assert_eq!(
            at("/treatment_limits/resuscitation"),
            "QuestionnaireResponse.item.where(linkId='83').item.where(linkId='1409').item.where(linkId='1386')"
        );
        assert_eq!(
            at("/treatment_limits/other/3/discussed_on"),
            "QuestionnaireResponse.item.where(linkId='83').item.where(linkId='1421')"
        );
        assert_eq!(at("/icd"), "QuestionnaireResponse.item.where(linkId='83').item.where(linkId='1006')");
        assert_eq!(at("/representative"), "QuestionnaireResponse.item.where(linkId='26').item.where(linkId='29')");
        assert_eq!(
            at("/legal_capacity/explanation"),
            "QuestionnaireResponse.item.where(linkId='26').item.where(linkId='1406').answer[0].item.where(linkId='1407')"
        );
        assert_eq!(at("/advance_directives/0/date"), "QuestionnaireResponse");
        // A received linkId with a quote still gives a valid FHIRPath string literal.
        assert_eq!(crate::intake::cursor::where_link("a'b"), r"where(linkId='a\'b')");
        assert_eq!(at(""), "QuestionnaireResponse");
    }

    #[test]
    fn a_non_object_is_one_error() {
        let mut p = Problems::default();
        let r = read(&serde_json::json!([]), &mut p);
        assert_eq!(r, AcpRecord::default());
        assert_eq!(p.list.len(), 1);
        assert_eq!(p.list[0].severity, Severity::Error);
    }
}
