//! The canonical uniform record JSON (`translate --to record`).
//!
//! Field order is the record's declaration order and absent items are left out, so the same record
//! always gives the same bytes.

use crate::record::AcpRecord;

/// Pretty-printed JSON with a trailing newline.
pub fn render(record: &AcpRecord) -> String {
    let mut s = serde_json::to_string_pretty(record).expect("the record serialises (no maps with non-string keys)");
    s.push('\n');
    s
}
