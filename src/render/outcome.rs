//! Problems as a FHIR R4 OperationOutcome (`validate --format json`, and the HTTP answer to FHIR
//! clients).

use serde_json::{json, Value};

use crate::validate::{Location, Problem};

/// An OperationOutcome listing every problem; an input without problems gets the one informational
/// issue FHIR requires (`issue` is 1..*).
pub fn operation_outcome(problems: &[Problem]) -> Value {
    let issues: Vec<Value> = if problems.is_empty() {
        vec![json!({"severity": "information", "code": "informational", "diagnostics": "no problems found"})]
    } else {
        problems.iter().map(issue).collect()
    };
    json!({"resourceType": "OperationOutcome", "issue": issues})
}

fn issue(p: &Problem) -> Value {
    let mut v = json!({
        "severity": p.severity.as_str(),
        "code": p.issue_type.as_str(),
        "diagnostics": p.message,
    });
    match &p.location {
        Location::FhirPath(path) => v["expression"] = json!([path]),
        // R4's `location` is a free string; a JSON pointer or a line number is what the sender can use.
        other => v["location"] = json!([other.to_string()]),
    }
    v
}
