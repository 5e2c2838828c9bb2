//! FHIR R4 foundation resources: Bundle, OperationOutcome, Composition, DocumentReference, Provenance,
//! AuditEvent, Task.

use serde::{Deserialize, Serialize};

use super::*;

fhir_element! {
    /// A Bundle is a Resource but not a DomainResource: no text or extensions.
    Bundle {
        id: Option<String>,
        meta: Option<Meta>,
        identifier: Option<Identifier>,
        r#type: Option<BundleType>,
        timestamp: Option<String>,
        total: Option<u32>,
        link: Vec<BundleLink>,
        entry: Vec<BundleEntry>,
    }
}

fhir_element! {
    BundleLink {
        relation: Option<String>,
        url: Option<String>,
    }
}

fhir_element! {
    BundleEntry {
        link: Vec<BundleLink>,
        full_url: Option<String>,
        resource: Option<Resource>,
        request: Option<BundleRequest>,
        response: Option<BundleResponse>,
    }
}

fhir_element! {
    /// How a transaction applies the entry: the gateway PUTs `Type/id`, so a resend is idempotent.
    BundleRequest {
        method: Option<HttpVerb>,
        url: Option<String>,
    }
}

fhir_element! {
    BundleResponse {
        status: Option<String>,
        location: Option<String>,
        etag: Option<String>,
        last_modified: Option<String>,
        outcome: Option<Resource>,
    }
}

/// Bundle.type (required binding bundle-type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BundleType {
    Document,
    Message,
    Transaction,
    TransactionResponse,
    Batch,
    BatchResponse,
    History,
    Searchset,
    Collection,
}

/// Bundle.entry.request.method (required binding http-verb).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpVerb {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Patch,
}

fhir_resource! {
    OperationOutcome {
        issue: Vec<OperationOutcomeIssue>,
    }
}

fhir_element! {
    OperationOutcomeIssue {
        severity: Option<String>,
        code: Option<String>,
        details: Option<CodeableConcept>,
        diagnostics: Option<String>,
        location: Vec<String>,
        expression: Vec<String>,
    }
}

fhir_resource! {
    Composition {
        identifier: Option<Identifier>,
        status: Option<String>,
        r#type: Option<CodeableConcept>,
        category: Vec<CodeableConcept>,
        subject: Option<Reference>,
        encounter: Option<Reference>,
        date: Option<String>,
        author: Vec<Reference>,
        title: Option<String>,
        confidentiality: Option<String>,
        custodian: Option<Reference>,
        section: Vec<CompositionSection>,
    }
}

fhir_element! {
    CompositionSection {
        title: Option<String>,
        code: Option<CodeableConcept>,
        author: Vec<Reference>,
        focus: Option<Reference>,
        text: Option<Narrative>,
        entry: Vec<Reference>,
        empty_reason: Option<CodeableConcept>,
        section: Vec<CompositionSection>,
    }
}

fhir_resource! {
    DocumentReference {
        master_identifier: Option<Identifier>,
        identifier: Vec<Identifier>,
        status: Option<String>,
        doc_status: Option<String>,
        r#type: Option<CodeableConcept>,
        category: Vec<CodeableConcept>,
        subject: Option<Reference>,
        date: Option<String>,
        author: Vec<Reference>,
        custodian: Option<Reference>,
        description: Option<String>,
        content: Vec<DocumentReferenceContent>,
    }
}

fhir_element! {
    DocumentReferenceContent {
        attachment: Option<Attachment>,
        format: Option<Coding>,
    }
}

fhir_resource! {
    /// Who made the resources and by what rules: for the gateway, the software and the mappings
    /// version that translated the record.
    Provenance {
        target: Vec<Reference>,
        occurred_date_time: Option<String>,
        /// An instant (date, time with seconds, and zone).
        recorded: Option<String>,
        policy: Vec<String>,
        location: Option<Reference>,
        reason: Vec<CodeableConcept>,
        activity: Option<CodeableConcept>,
        agent: Vec<ProvenanceAgent>,
        entity: Vec<ProvenanceEntity>,
    }
}

fhir_element! {
    ProvenanceAgent {
        r#type: Option<CodeableConcept>,
        role: Vec<CodeableConcept>,
        who: Option<Reference>,
        on_behalf_of: Option<Reference>,
    }
}

fhir_element! {
    ProvenanceEntity {
        role: Option<String>,
        what: Option<Reference>,
    }
}

fhir_resource! {
    AuditEvent {
        r#type: Option<Coding>,
        subtype: Vec<Coding>,
        action: Option<String>,
        period: Option<Period>,
        recorded: Option<String>,
        outcome: Option<String>,
        outcome_desc: Option<String>,
        purpose_of_event: Vec<CodeableConcept>,
        agent: Vec<AuditEventAgent>,
        source: Option<AuditEventSource>,
        entity: Vec<AuditEventEntity>,
    }
}

fhir_element! {
    AuditEventAgent {
        r#type: Option<CodeableConcept>,
        role: Vec<CodeableConcept>,
        who: Option<Reference>,
        alt_id: Option<String>,
        name: Option<String>,
        requestor: Option<bool>,
        location: Option<Reference>,
        policy: Vec<String>,
        network: Option<AuditEventNetwork>,
        purpose_of_use: Vec<CodeableConcept>,
    }
}

fhir_element! {
    AuditEventNetwork {
        address: Option<String>,
        r#type: Option<String>,
    }
}

fhir_element! {
    AuditEventSource {
        site: Option<String>,
        observer: Option<Reference>,
        r#type: Vec<Coding>,
    }
}

fhir_element! {
    AuditEventEntity {
        what: Option<Reference>,
        r#type: Option<Coding>,
        role: Option<Coding>,
        lifecycle: Option<Coding>,
        security_label: Vec<Coding>,
        name: Option<String>,
        description: Option<String>,
        query: Option<String>,
        detail: Vec<AuditEventEntityDetail>,
    }
}

fhir_element! {
    AuditEventEntityDetail {
        r#type: Option<String>,
        value_string: Option<String>,
        value_base64_binary: Option<String>,
    }
}

fhir_resource! {
    /// A unit of work, e.g. one delivery of a handover to one recipient.
    Task {
        identifier: Vec<Identifier>,
        instantiates_uri: Option<String>,
        based_on: Vec<Reference>,
        group_identifier: Option<Identifier>,
        part_of: Vec<Reference>,
        status: Option<String>,
        status_reason: Option<CodeableConcept>,
        business_status: Option<CodeableConcept>,
        intent: Option<String>,
        priority: Option<String>,
        code: Option<CodeableConcept>,
        description: Option<String>,
        focus: Option<Reference>,
        r#for: Option<Reference>,
        encounter: Option<Reference>,
        execution_period: Option<Period>,
        authored_on: Option<String>,
        last_modified: Option<String>,
        requester: Option<Reference>,
        owner: Option<Reference>,
        reason_code: Option<CodeableConcept>,
        note: Vec<Annotation>,
        input: Vec<TaskParameter>,
        output: Vec<TaskParameter>,
    }
}

fhir_element! {
    TaskParameter {
        r#type: Option<CodeableConcept>,
        value_string: Option<String>,
        value_reference: Option<Reference>,
        value_date_time: Option<String>,
    }
}
