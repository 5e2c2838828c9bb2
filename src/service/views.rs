//! What the API answers with: the JSON shapes of handovers, routes, consents and problems. Their
//! `ToSchema` derives feed the OpenAPI document, so the document describes exactly these types.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::service::model::RouteStatus;
use crate::validate::{Location, Problem};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PatientRef {
    pub bsn: String,
}

/// A handover as its sender (or a recipient) sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HandoverView {
    pub id: String,
    pub patient: PatientRef,
    pub context: String,
    /// The sender as it was sent (role, organization, practitioner).
    #[schema(value_type = Object)]
    pub sender: Value,
    /// The input form detected (`uniform-record`, `questionnaire-response`, `fhir-json`, `fhir-xml`).
    pub input_form: String,
    /// Form item 8b as recorded (`agreed`, `unknown`), absent when not recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sharing_consent: Option<String>,
    pub created_at: String,
    pub routes: Vec<RouteView>,
    /// Warnings of validation (missing recommended items): accepted, but worth fixing. Also, at
    /// `/recipients/{i}` (intake) or `/routes/{k}` (read back), text a route's channel cannot carry.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<ProblemItem>,
}

/// One route: one recipient over one channel.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RouteView {
    pub id: String,
    /// The recipient as it was sent (role, organization, name, endpoints).
    #[schema(value_type = Object)]
    pub recipient: Value,
    pub channel: String,
    pub status: RouteStatus,
    /// Why the route has its status (e.g. the consent decision that blocks it).
    pub reason: Option<String>,
    /// Delivery attempts so far (an operator's retry starts a fresh count).
    pub attempts: i64,
    /// When the outbox tries next (`pending` / `retrying`).
    pub next_attempt_at: Option<String>,
    /// The last failed attempt's error, kept after a later success for the record.
    pub last_error: Option<String>,
    /// When the receiver took the message, and its receipt (a spool path, a Message-ID, a Location).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    /// For a replay: the route it sends again, and which replay of it this is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_of: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_number: Option<i64>,
    /// The last consent decision (taken at intake, on each consent change, and before each attempt).
    pub consent: ConsentDecisionView,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsentDecisionView {
    pub permit: bool,
    pub reason: String,
    pub decided_at: String,
}

/// The MDO worklist of the caller's organisation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorklistView {
    pub items: Vec<WorklistItemView>,
}

/// One item on an MDO worklist: a rendered message for the receiving team.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorklistItemView {
    /// The delivery key (stable: the same item is never listed twice under two ids).
    pub id: String,
    pub handover_id: String,
    pub route_id: String,
    pub content_type: String,
    /// `utf-8` (the body is the text) or `base64`.
    pub encoding: String,
    pub body: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HandoverList {
    pub handovers: Vec<HandoverView>,
}

/// The patient's sharing consent as it stands, with every decision recorded through the API (the
/// simple JSON form). Another organisation is never named: its decisions read "another care provider".
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsentView {
    pub patient: PatientRef,
    /// The consent as it stands: `permit`, `deny`, `withdrawn`, `conflict` (a permit recorded after
    /// another care provider's withdrawal or refusal: it blocks routes until resolved) or `none`
    /// (no decision stands: form item 8b decides).
    pub decision: String,
    /// Always `patient-privacy`.
    pub scope: String,
    /// The state in words, e.g. "withdrawn by another care provider on DATE (decision 3)".
    pub summary: String,
    /// The decision the state rests on (`id` of an entry of `history`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deciding: Option<String>,
    /// Every decision recorded for the patient, oldest first.
    pub history: Vec<ConsentEntryView>,
}

/// One recorded consent decision.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsentEntryView {
    /// The decision's id; a renewal names it.
    pub id: String,
    /// `permit`, `deny` or `withdrawn`.
    pub decision: String,
    /// `in-force`, `replaced` (its party recorded a later decision) or `superseded` (by the patient's
    /// renewed consent, `superseded_by`).
    pub standing: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
    /// For the patient's renewed consent: the decision it supersedes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renews: Option<String>,
    /// `fhir-consent`, `simple-json` or `api-delete`.
    pub source: String,
    pub recorded_at: String,
    /// The reader's own organisation id, or "another care provider".
    pub recorded_by: String,
    /// `everyone`, or `named care providers`.
    pub applies_to: String,
    /// The organisations a provision names: only on the reader's own decisions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actors: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_end: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditList {
    pub patient: PatientRef,
    /// Entries with NEN 7513 field names, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub entries: Vec<Value>,
}

/// One problem of an RFC 9457 problem document's `errors` list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemItem {
    /// JSON pointer into the request body.
    pub pointer: String,
    pub message: String,
    pub severity: String,
    /// The FHIR issue type (`required`, `value`, `code-invalid`, ...).
    pub code: String,
    /// FHIRPath of the problem inside a FHIR record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemDocument {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemItem>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<ProblemItem>,
}

/// A problem with its location in the body: JSON pointers as they are; FHIRPath and line/column
/// locations (which intake gives for FHIR and XML records) point at `/record` and say where inside.
pub fn problem_item(p: &Problem) -> ProblemItem {
    let (pointer, expression, line, column) = match &p.location {
        Location::JsonPointer(ptr) => (ptr.clone(), None, None, None),
        Location::FhirPath(path) => ("/record".to_owned(), Some(path.clone()), None, None),
        Location::Document { line, column } => ("/record".to_owned(), None, *line, *column),
    };
    ProblemItem {
        pointer,
        message: p.message.clone(),
        severity: p.severity.as_str().to_owned(),
        code: p.issue_type.as_str().to_owned(),
        expression,
        line,
        column,
    }
}
