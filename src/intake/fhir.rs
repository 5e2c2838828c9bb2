//! Intake of FHIR R4 resources (IKNL PZP profiles, nl-core zib2020): a Bundle or a single resource.

use serde_json::Value;

use crate::intake::cursor::Problems;
use crate::record::AcpRecord;
use crate::validate::rules::Completeness;
use crate::validate::Location;

pub fn read(_v: &Value, _p: &mut Problems) -> (AcpRecord, Completeness) {
    (AcpRecord::default(), Completeness::Partial)
}

/// Translates a record pointer into the FHIR input's terms.
pub fn locate(pointer: &str) -> Location {
    Location::JsonPointer(pointer.to_owned())
}
