//! The ACP handover gateway: carries the national uniform Advance Care Planning record (proactieve
//! zorgplanning) from one care provider to the next, correctly and only with the patient's consent.
//!
//! A record travels through the modules in this order; no module reaches back up the chain:
//!
//! ```text
//! cli ─► intake ─► record ─► validate ─► render
//!        (uniform JSON,   (the model)  (field and    (record JSON,
//!         QuestionnaireResponse,        record rules)  OperationOutcome, ...)
//!         FHIR JSON/XML)
//! ```
//!
//! `mappings` loads the code tables and canonicals from `mappings/`; `fhir` holds the FHIR plumbing
//! (the XML form) that intake and render share. Consent, routing, the outbox and delivery follow as
//! later stages (see `../shared/spec/architecture.md`).

pub mod cli;
pub mod edifact;
pub mod fhir;
pub mod intake;
pub mod mappings;
pub mod record;
pub mod render;
pub mod routing;
pub mod validate;

// The service (serve, store, consent, audit): added by the service issue.
pub mod api;
pub mod audit;
pub mod config;
pub mod consent;
pub mod service;
pub mod store;
pub mod telemetry;
