//! Intake: bytes in, one [`AcpRecord`] out, with every problem found on the way.
//!
//! The input form is detected from the content, never from a flag (interface.md "Inputs"):
//! - XML (first non-blank character `<`): FHIR XML, converted to FHIR JSON by [`crate::fhir::xml`]
//!   and then read like FHIR JSON;
//! - JSON with `resourceType: QuestionnaireResponse` answering ACP-zib2020: [`questionnaire`];
//! - JSON with another `resourceType` (a Bundle or a single resource): [`fhir`];
//! - any other JSON object: the uniform record JSON, [`uniform`].
//!
//! Hostile input is refused before it costs anything: a size cap, UTF-8 only, serde_json's nesting
//! limit, and an XML reader without DTDs or entity expansion.

pub mod cursor;
pub mod fhir;
pub mod json;
pub mod questionnaire;
pub mod uniform;

use serde::Serialize;
use serde_json::Value;

use crate::record::AcpRecord;
use crate::validate::rules::{self, Completeness};
use crate::validate::{has_errors, IssueType, Location, Problem};
use cursor::Problems;

/// Inputs larger than this are refused unread. The largest real form (with a scanned PDF declaration
/// attached) is well under 2 MiB.
pub const MAX_INPUT_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputForm {
    UniformRecord,
    QuestionnaireResponse,
    FhirJson,
    FhirXml,
}

impl InputForm {
    pub fn as_str(self) -> &'static str {
        match self {
            InputForm::UniformRecord => "uniform record JSON",
            InputForm::QuestionnaireResponse => "FHIR QuestionnaireResponse (ACP-zib2020)",
            InputForm::FhirJson => "FHIR JSON resources",
            InputForm::FhirXml => "FHIR XML resources",
        }
    }
}

/// What intake made of one input.
#[derive(Debug)]
pub struct Intake {
    /// The detected form; `None` when the input could not even be parsed.
    pub form: Option<InputForm>,
    /// The record read, as far as it could be; `None` when the input could not be parsed.
    pub record: Option<AcpRecord>,
    pub completeness: Completeness,
    /// Every problem, intake's and the record rules', in the order found.
    pub problems: Vec<Problem>,
}

impl Intake {
    /// Whether the input is acceptable (warnings allowed).
    pub fn is_valid(&self) -> bool {
        self.record.is_some() && !has_errors(&self.problems)
    }

    /// The record, if the input is valid.
    pub fn valid_record(&self) -> Option<&AcpRecord> {
        self.is_valid().then_some(self.record.as_ref()).flatten()
    }

    fn failed(form: Option<InputForm>, problem: Problem) -> Intake {
        Intake { form, record: None, completeness: Completeness::Complete, problems: vec![problem] }
    }
}

fn document_error(kind: IssueType, line: Option<u64>, column: Option<u64>, message: String) -> Problem {
    Problem::error(kind, Location::Document { line, column }, message)
}

/// Reads one input in any of the three forms.
pub fn read(bytes: &[u8]) -> Intake {
    if bytes.len() > MAX_INPUT_BYTES {
        return Intake::failed(
            None,
            document_error(
                IssueType::TooCostly,
                None,
                None,
                format!("the input is {} bytes; the limit is {MAX_INPUT_BYTES} bytes", bytes.len()),
            ),
        );
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let offset = e.valid_up_to();
            let line = bytes[..offset].iter().filter(|b| **b == b'\n').count() as u64 + 1;
            return Intake::failed(
                None,
                document_error(
                    IssueType::Structure,
                    Some(line),
                    None,
                    format!("the input is not UTF-8 (invalid byte at offset {offset}); FHIR and the uniform record require UTF-8"),
                ),
            );
        }
    };
    match text.trim_start().chars().next() {
        Some('<') => read_xml(text),
        Some(_) => read_json(text),
        None => Intake::failed(None, document_error(IssueType::Structure, None, None, "the input is empty".into())),
    }
}

fn read_xml(text: &str) -> Intake {
    match crate::fhir::xml::parse(text) {
        Ok(value) => read_fhir_value(&value, InputForm::FhirXml),
        Err(e) => Intake::failed(Some(InputForm::FhirXml), document_error(e.kind, e.line, e.column, e.message)),
    }
}

fn read_json(text: &str) -> Intake {
    // serde_json refuses nesting deeper than 128 levels with an error (no stack overflow); the strict
    // reader also refuses a key repeated in one object, with its pointer.
    let value: Value = match json::parse(text) {
        Ok(v) => v,
        Err(e) => return Intake::failed(None, json_problem(&e, "")),
    };
    match value.get("resourceType") {
        Some(_) => read_fhir_value(&value, InputForm::FhirJson),
        None if value.is_object() => {
            let mut p = Problems::default();
            let record = uniform::read(&value, &mut p);
            finish(InputForm::UniformRecord, record, uniform::completeness(&value), p, &|ptr| {
                Location::JsonPointer(ptr.to_owned())
            })
        }
        None => Intake::failed(
            None,
            document_error(
                IssueType::Structure,
                None,
                None,
                "expected a JSON object: a uniform ACP record, or a FHIR resource with a resourceType".into(),
            ),
        ),
    }
}

/// The problem for JSON that could not be read: a repeated key at its pointer (below `prefix`, the
/// pointer of the document inside a larger one), anything else at its line and column.
pub fn json_problem(e: &json::JsonError, prefix: &str) -> Problem {
    match &e.pointer {
        Some(pointer) => Problem::error(IssueType::Duplicate, Location::JsonPointer(format!("{prefix}{pointer}")), e.message.clone()),
        None => {
            let kind = if e.too_deep { IssueType::TooCostly } else { IssueType::Structure };
            document_error(kind, Some(e.line as u64), Some(e.column as u64), format!("malformed JSON: {e}"))
        }
    }
}

/// FHIR JSON (or XML already converted to FHIR JSON).
fn read_fhir_value(value: &Value, form: InputForm) -> Intake {
    let mut p = Problems::default();
    let is_qr = value.get("resourceType").and_then(Value::as_str) == Some("QuestionnaireResponse");
    if is_qr {
        let record = questionnaire::read(value, &mut p);
        let form = if form == InputForm::FhirXml { form } else { InputForm::QuestionnaireResponse };
        return finish(form, record, questionnaire::completeness(value), p, &questionnaire::locate);
    }
    let (record, completeness) = fhir::read(value, &mut p);
    finish(form, record, completeness, p, &fhir::locate)
}

fn finish(
    form: InputForm,
    record: AcpRecord,
    completeness: Completeness,
    mut p: Problems,
    locate: &dyn Fn(&str) -> Location,
) -> Intake {
    // A required item that was present but unreadable has been reported where it stands; the rules would
    // add "is missing" at the same place, which only confuses.
    let rule_problems = rules::check(&record, completeness, locate);
    let already: std::collections::HashSet<Location> = p.list.iter().map(|x| x.location.clone()).collect();
    p.list.extend(
        rule_problems.into_iter().filter(|x| !(x.issue_type == IssueType::Required && already.contains(&x.location))),
    );
    Intake { form: Some(form), record: Some(record), completeness, problems: p.list }
}
