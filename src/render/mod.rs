//! Render: a record (or a validation result) out as bytes. One module per output; none of them knows
//! about HTTP, storage or delivery.

pub mod edifact;
pub mod fhir;
pub mod letter;
pub mod outcome;
pub mod questionnaire;
pub mod record_json;
