//! Problems found in an input, and the record-level rules that find the ones no single field shows.
//!
//! Intake reports what it meets while reading (bad code, bad BSN, malformed JSON) as [`Problem`]s and
//! keeps reading, so that one run lists every problem. [`rules::check`] then applies the rules that span
//! fields (dates not after the date filled in, 7b only after 7a = yes, required items). Each problem has
//! a location in the input's own terms, a severity and a message an integrator can act on.

pub mod limits;
pub mod rules;

use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The input cannot be accepted.
    Error,
    /// Accepted, but something is missing or looser than the dataset wants.
    Warning,
    /// For the integrator's information (e.g. an element the gateway does not use).
    Information,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "information",
        }
    }
}

/// Where a problem is, in the terms of the input it was found in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", content = "path", rename_all = "kebab-case")]
pub enum Location {
    /// RFC 6901 JSON pointer into a JSON document (the uniform record, or the whole input).
    JsonPointer(String),
    /// FHIRPath expression into a FHIR resource (JSON or XML).
    FhirPath(String),
    /// The whole input (e.g. it is not JSON at all), with a line and column where known.
    Document { line: Option<u64>, column: Option<u64> },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::JsonPointer(p) if p.is_empty() => f.write_str("/"),
            Location::JsonPointer(p) | Location::FhirPath(p) => f.write_str(p),
            Location::Document { line: Some(l), column: Some(c) } => write!(f, "line {l}, column {c}"),
            Location::Document { line: Some(l), .. } => write!(f, "line {l}"),
            Location::Document { .. } => f.write_str("(document)"),
        }
    }
}

/// The kind of problem, as FHIR's OperationOutcome `issue.code` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IssueType {
    /// Not well-formed JSON/XML, wrong encoding.
    Structure,
    /// A required item is missing.
    Required,
    /// A value has the wrong form (bad BSN, impossible date, wrong JSON type).
    Value,
    /// A code is not in the item's value set.
    CodeInvalid,
    /// A combination of values contradicts the form's rules.
    Invariant,
    /// An element the gateway does not read.
    NotSupported,
    /// The input is too large or too deeply nested.
    TooCostly,
    /// Refused for safety (external entities, entity expansion).
    Security,
    /// The same thing given twice where it may be given once (a repeated JSON key): which one was
    /// meant cannot be known.
    Duplicate,
}

impl IssueType {
    pub fn as_str(self) -> &'static str {
        match self {
            IssueType::Structure => "structure",
            IssueType::Required => "required",
            IssueType::Value => "value",
            IssueType::CodeInvalid => "code-invalid",
            IssueType::Invariant => "invariant",
            IssueType::NotSupported => "not-supported",
            IssueType::TooCostly => "too-costly",
            IssueType::Security => "security",
            IssueType::Duplicate => "duplicate",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Problem {
    pub severity: Severity,
    #[serde(rename = "code")]
    pub issue_type: IssueType,
    pub location: Location,
    pub message: String,
}

impl Problem {
    pub fn new(severity: Severity, issue_type: IssueType, location: Location, message: impl Into<String>) -> Self {
        Problem { severity, issue_type, location, message: message.into() }
    }

    pub fn error(issue_type: IssueType, location: Location, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, issue_type, location, message)
    }

    pub fn warning(issue_type: IssueType, location: Location, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, issue_type, location, message)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.severity.as_str(), self.location, self.message)
    }
}

/// Whether any problem stops the input from being accepted.
pub fn has_errors(problems: &[Problem]) -> bool {
    problems.iter().any(|p| p.severity == Severity::Error)
}
