//! Render: a record (or a validation result) out as bytes. One module per output; none of them knows
//! about HTTP, storage or delivery.
//!
//! The channel packagings wrap the clinical letter and the FHIR resources for one route: `pdf` (the A4
//! letter for the post), `mail` (the secure e-mail with the letter and the PDF), `zorgdomein` (the
//! referral package), `dossier` (the FHIR document of the whole record) and `worklist` (the MDO item);
//! `packaging` holds what they share (parties, dates, the route key behind stable ids).

pub mod dossier;
pub mod edifact;
pub mod fhir;
pub mod letter;
pub mod mail;
pub mod outcome;
pub mod packaging;
pub mod pdf;
pub mod questionnaire;
pub mod record_json;
pub mod worklist;
pub mod zorgdomein;
