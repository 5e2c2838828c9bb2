//! The ACP handover gateway: carries the national uniform Advance Care Planning record (proactieve
//! zorgplanning) from one care provider to the next, correctly and only with the patient's consent.
//!
//! A handover travels through the modules in this order; no module reaches back up the chain:
//!
//! ```text
//! api / cli ─► intake ─► record ─► validate ─► consent ─► routing ─► render ─► store ─► outbox ─► channels
//!              (uniform   (the      (field and   (the       (the       (record JSON, FHIR,   (durable  (spool, SMTP,
//!               JSON, QR,  model)    record       gate)      handover   QuestionnaireResponse, queue,    HTTPS, MDO
//!               FHIR JSON            rules)                  table)     letter, Edifact)       worker)   worklist)
//!               and XML)
//!                        audit (NEN 7513 hash chain) alongside every stage
//! ```
//!
//! `mappings` loads the code tables, the route table's companions and the canonicals from `mappings/`;
//! `fhir` holds the FHIR R4 model and the XML form that intake and render share; `edifact` the
//! interchange syntax. `service` ties the stages together for `serve`; `store` is the only module that
//! speaks SQL. `outbox` delivers the stored routes through `channels`, re-asking `consent` before each
//! attempt.

pub mod cli;
pub mod edifact;
pub mod fhir;
pub mod intake;
pub mod mappings;
pub mod record;
pub mod render;
pub mod routing;
pub mod validate;

pub mod api;
pub mod audit;
pub mod channels;
pub mod config;
pub mod consent;
pub mod outbox;
pub mod service;
pub mod store;
pub mod telemetry;
