//! Intake of a FHIR R4 QuestionnaireResponse answering the national form ACP-zib2020.

use serde_json::Value;

use crate::intake::cursor::Problems;
use crate::record::AcpRecord;
use crate::validate::Location;

pub fn read(_v: &Value, _p: &mut Problems) -> AcpRecord {
    AcpRecord::default()
}

/// Translates a record pointer into the QuestionnaireResponse's terms.
pub fn locate(pointer: &str) -> Location {
    Location::JsonPointer(pointer.to_owned())
}
