//! Intake of the uniform ACP record JSON (the project's own shape; schema in
//! `mappings/acp-record.schema.json`).

use serde_json::Value;

use crate::intake::cursor::Problems;
use crate::record::AcpRecord;

/// Reads a uniform record; problems go to `p`, the record holds what could be read.
pub fn read(_v: &Value, _p: &mut Problems) -> AcpRecord {
    AcpRecord::default()
}
