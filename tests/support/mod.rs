//! Shared helpers of the integration tests: the project's fixtures, the JSON Schema of the uniform record,
//! reading an input that must be valid, and (in [`arb`]) proptest strategies for valid records.
//!
//! A test crate includes this with `mod support;` and uses part of it, so unused items are allowed.
#![allow(dead_code)]

pub mod arb;

use std::path::{Path, PathBuf};

use acp_gateway::intake::{self, Intake};
use acp_gateway::record::{Answer, Coded, AcpRecord, ContactPerson, ContactRole, LegalCapacity, Professional, Representative, NAMED_TREATMENTS};
use acp_gateway::validate::{Problem, Severity};
use serde_json::Value;

#[allow(unused_imports)] // not every test crate that includes this module generates records
pub use arb::arb_record;

/// A path inside the project.
pub fn crate_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The files of a directory whose names end in `ext`, sorted by name, with their bytes.
pub fn files_in(dir: &str, ext: &str) -> Vec<(String, Vec<u8>)> {
    let dir = crate_path(dir);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<(String, Vec<u8>)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == ext))
        .map(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (name, bytes)
        })
        .collect();
    files.sort();
    files
}

/// The valid uniform records of `fixtures/`.
pub fn uniform_fixtures() -> Vec<(String, Vec<u8>)> {
    files_in("fixtures", "json").into_iter().filter(|(name, _)| name.starts_with("uniform-")).collect()
}

/// The broken variants of `fixtures/invalid/`.
pub fn invalid_fixtures() -> Vec<(String, Vec<u8>)> {
    files_in("fixtures/invalid", "json")
}

/// `mappings/acp-record.schema.json`, parsed.
pub fn record_schema() -> Value {
    let path = crate_path("mappings/acp-record.schema.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A validator for the uniform record schema (draft 2020-12).
pub fn record_validator() -> jsonschema::Validator {
    jsonschema::draft202012::new(&record_schema()).unwrap_or_else(|e| panic!("the record schema compiles: {e}"))
}

/// Every schema violation of `instance`, as "instance path: message", for assertion messages.
pub fn schema_violations(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator.iter_errors(instance).map(|e| format!("{}: {e}", e.instance_path)).collect()
}

pub fn errors(problems: &[Problem]) -> Vec<&Problem> {
    problems.iter().filter(|p| p.severity == Severity::Error).collect()
}

/// Reads an input that must be free of errors (warnings allowed) and returns its record.
pub fn read_valid(what: &str, bytes: &[u8]) -> AcpRecord {
    let intake: Intake = intake::read(bytes);
    let errors = errors(&intake.problems);
    assert!(errors.is_empty(), "{what}: unexpected errors:\n{}", list(&errors));
    intake.record.unwrap_or_else(|| panic!("{what}: no record"))
}

/// One problem a line, for assertion messages.
pub fn list(problems: &[&Problem]) -> String {
    problems.iter().map(|p| format!("  {p}\n")).collect()
}

/// The record as a QuestionnaireResponse can carry it (see `form::walk` in src/intake/questionnaire.rs).
pub fn questionnaire_projection(r: &AcpRecord) -> AcpRecord {
    let mut r = r.clone();
    if r.patient.bsn.is_some() {
        r.patient.other_identifiers.clear();
    } else {
        r.patient.other_identifiers.truncate(1);
    }
    if let Some(c) = &mut r.conducted_by {
        c.agb = None;
        c.other_identifiers.clear();
    }
    for t in NAMED_TREATMENTS {
        if let Some(Some(l)) = r.treatment_limits.slot_mut(t) {
            l.discussed_on = None;
        }
    }
    for o in &mut r.treatment_limits.other {
        o.limit.discussed_on = None;
    }
    if let Some(d) = &mut r.icd_deactivation {
        d.discussed_on = None;
    }
    // The form has no place for a directive that is not in force (it has no status).
    r.directives_not_in_force.clear();
    // Advance directives ride in 7a's Toelichting, all but their document (scan).
    for d in &mut r.advance_directives {
        d.document = None;
    }
    // One "Anders, namelijk" item per repeating choice: every "Anders" text, and the name of every
    // answer the Questionnaire does not offer there, joined on the first "Anders" answer.
    if let Some(rep) = &mut r.representative {
        one_other_text(&mut rep.roles, &[ContactRole::ContactPerson]);
    }
    if let Some(p) = &mut r.present {
        one_other_text(&mut p.roles, &[ContactRole::LegalRepresentative, ContactRole::FirstContact, ContactRole::ContactPerson]);
        one_other_text(&mut p.relationships, &[]);
    }
    if r.present.as_ref().is_some_and(|p| !p.patient && p.roles.is_empty() && p.relationships.is_empty()) {
        r.present = None;
    }
    if r.conducted_by == Some(Professional::default()) {
        r.conducted_by = None;
    }
    if r.legal_capacity == Some(LegalCapacity::default()) {
        r.legal_capacity = None;
    }
    if r.representative == Some(Representative::default()) {
        r.representative = None;
    }
    if r.first_contact == Some(ContactPerson::default()) {
        r.first_contact = None;
    }
    r
}

/// A repeating choice as a QuestionnaireResponse carries it: the answers it offers as they are; "Anders"
/// and the answers in `not_offered` as "Anders" in their place, the first of them with every text (an
/// answer not offered: its display) joined by "; ", read back as the answer not offered when the text
/// is exactly that one's display.
fn one_other_text<T: Coded>(list: &mut [Answer<T>], not_offered: &[T]) {
    let other = T::from_key("other").expect("a choice with 'Anders'");
    let mut texts: Vec<String> = Vec::new();
    let mut first = None;
    for (i, a) in list.iter_mut().enumerate() {
        let v = a.value();
        if !v.is_other() && !not_offered.contains(&v) {
            continue;
        }
        if v.is_other() {
            texts.extend(a.other_text().map(str::to_owned));
        } else {
            texts.push(v.entry().coding.display.clone());
        }
        first.get_or_insert(i);
        *a = Answer::code(other);
    }
    if let Some(i) = first {
        let text = (!texts.is_empty()).then(|| texts.join("; "));
        list[i] = match not_offered.iter().find(|v| Some(&v.entry().coding.display) == text.as_ref()) {
            Some(v) => Answer::code(*v),
            None => Answer::new(other, text).expect("'other' takes a text"),
        };
    }
}

/// The record as a FHIR Bundle can carry it: everything, except sections that say nothing at all (an
/// empty legal-capacity answer; a presence that only says the patient was not there, which FHIR
/// expresses by leaving `Encounter.subject` out and so cannot tell from "not recorded").
pub fn fhir_projection(r: &AcpRecord) -> AcpRecord {
    let mut r = r.clone();
    if r.legal_capacity == Some(LegalCapacity::default()) {
        r.legal_capacity = None;
    }
    if r.present.as_ref().is_some_and(|p| !p.patient && p.roles.is_empty() && p.relationships.is_empty()) {
        r.present = None;
    }
    r
}
