//! The canonical uniform record JSON (`translate --to record`).
//!
//! Field order is the record's declaration order and absent items are left out, so the same record
//! always gives the same bytes. A partial record (one without the header a whole form has, e.g. from a
//! single FHIR resource) opens with `"partial": true`, so that it is read back as partial.

use crate::record::AcpRecord;
use crate::validate::rules::Completeness;

/// Pretty-printed JSON with a trailing newline.
pub fn render(record: &AcpRecord) -> String {
    let mut s = serde_json::to_string_pretty(record).expect("the record serialises (no maps with non-string keys)");
    if Completeness::of(record) == Completeness::Partial {
        // `patient` is always written, so the object is never empty and opens with "{\n".
        s = s.replacen("{\n", "{\n  \"partial\": true,\n", 1);
    }
    s.push('\n');
    s
}
