//! FHIR R4 clinical and workflow resources: Encounter, Procedure, Consent, Goal, Observation,
//! DeviceUseStatement, CommunicationRequest, ServiceRequest, QuestionnaireResponse.

use serde::{Deserialize, Serialize};

use super::*;

fhir_resource! {
    Encounter {
        identifier: Vec<Identifier>,
        status: Option<String>,
        /// 1..1 in R4.
        class: Option<Coding>,
        r#type: Vec<CodeableConcept>,
        subject: Option<Reference>,
        participant: Vec<EncounterParticipant>,
        period: Option<Period>,
        reason_code: Vec<CodeableConcept>,
        reason_reference: Vec<Reference>,
        service_provider: Option<Reference>,
    }
}

fhir_element! {
    EncounterParticipant {
        r#type: Vec<CodeableConcept>,
        period: Option<Period>,
        individual: Option<Reference>,
    }
}

fhir_resource! {
    Procedure {
        identifier: Vec<Identifier>,
        based_on: Vec<Reference>,
        part_of: Vec<Reference>,
        status: Option<String>,
        status_reason: Option<CodeableConcept>,
        category: Option<CodeableConcept>,
        code: Option<CodeableConcept>,
        subject: Option<Reference>,
        encounter: Option<Reference>,
        performed_date_time: Option<String>,
        performed_period: Option<Period>,
        recorder: Option<Reference>,
        asserter: Option<Reference>,
        performer: Vec<ProcedurePerformer>,
        location: Option<Reference>,
        reason_code: Vec<CodeableConcept>,
        reason_reference: Vec<Reference>,
        note: Vec<Annotation>,
    }
}

fhir_element! {
    ProcedurePerformer {
        function: Option<CodeableConcept>,
        actor: Option<Reference>,
        on_behalf_of: Option<Reference>,
    }
}

fhir_resource! {
    /// A treatment directive (scope `treatment`) or an advance directive (scope `adr`).
    Consent {
        identifier: Vec<Identifier>,
        status: Option<String>,
        scope: Option<CodeableConcept>,
        category: Vec<CodeableConcept>,
        patient: Option<Reference>,
        date_time: Option<String>,
        performer: Vec<Reference>,
        organization: Vec<Reference>,
        source_attachment: Option<Attachment>,
        source_reference: Option<Reference>,
        /// Invariant ppc-1: a policy or a policyRule.
        policy: Vec<ConsentPolicy>,
        policy_rule: Option<CodeableConcept>,
        provision: Option<ConsentProvision>,
    }
}

fhir_element! {
    ConsentPolicy {
        authority: Option<String>,
        uri: Option<String>,
    }
}

fhir_element! {
    ConsentProvision {
        extension: Vec<Extension>,
        /// Left out when `specificationOther` (a modifier extension of the Consent) says what was
        /// agreed: a restriction, or "unknown".
        r#type: Option<ProvisionType>,
        period: Option<Period>,
        actor: Vec<ConsentActor>,
        action: Vec<CodeableConcept>,
        code: Vec<CodeableConcept>,
        provision: Vec<ConsentProvision>,
    }
}

fhir_element! {
    ConsentActor {
        role: Option<CodeableConcept>,
        reference: Option<Reference>,
    }
}

/// Consent.provision.type (required binding consent-provision-type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProvisionType {
    Permit,
    Deny,
}

fhir_resource! {
    Goal {
        identifier: Vec<Identifier>,
        lifecycle_status: Option<String>,
        achievement_status: Option<CodeableConcept>,
        category: Vec<CodeableConcept>,
        priority: Option<CodeableConcept>,
        description: Option<CodeableConcept>,
        subject: Option<Reference>,
        start_date: Option<String>,
        status_date: Option<String>,
        status_reason: Option<String>,
        expressed_by: Option<Reference>,
        addresses: Vec<Reference>,
        note: Vec<Annotation>,
    }
}

fhir_resource! {
    Observation {
        identifier: Vec<Identifier>,
        based_on: Vec<Reference>,
        part_of: Vec<Reference>,
        status: Option<String>,
        category: Vec<CodeableConcept>,
        code: Option<CodeableConcept>,
        subject: Option<Reference>,
        focus: Vec<Reference>,
        encounter: Option<Reference>,
        effective_date_time: Option<String>,
        effective_period: Option<Period>,
        issued: Option<String>,
        performer: Vec<Reference>,
        value_string: Option<String>,
        value_codeable_concept: Option<CodeableConcept>,
        value_boolean: Option<bool>,
        value_date_time: Option<String>,
        /// Invariant obs-6: only when there is no value.
        data_absent_reason: Option<CodeableConcept>,
        interpretation: Vec<CodeableConcept>,
        note: Vec<Annotation>,
        body_site: Option<CodeableConcept>,
        method: Option<CodeableConcept>,
        device: Option<Reference>,
        has_member: Vec<Reference>,
        derived_from: Vec<Reference>,
    }
}

fhir_resource! {
    DeviceUseStatement {
        identifier: Vec<Identifier>,
        based_on: Vec<Reference>,
        status: Option<String>,
        status_reason: Vec<CodeableConcept>,
        subject: Option<Reference>,
        derived_from: Vec<Reference>,
        timing_period: Option<Period>,
        timing_date_time: Option<String>,
        recorded_on: Option<String>,
        source: Option<Reference>,
        device: Option<Reference>,
        reason_code: Vec<CodeableConcept>,
        reason_reference: Vec<Reference>,
        body_site: Option<CodeableConcept>,
        note: Vec<Annotation>,
    }
}

fhir_resource! {
    CommunicationRequest {
        identifier: Vec<Identifier>,
        based_on: Vec<Reference>,
        replaces: Vec<Reference>,
        group_identifier: Option<Identifier>,
        status: Option<String>,
        status_reason: Option<CodeableConcept>,
        category: Vec<CodeableConcept>,
        priority: Option<String>,
        do_not_perform: Option<bool>,
        medium: Vec<CodeableConcept>,
        subject: Option<Reference>,
        about: Vec<Reference>,
        encounter: Option<Reference>,
        payload: Vec<CommunicationRequestPayload>,
        occurrence_date_time: Option<String>,
        authored_on: Option<String>,
        requester: Option<Reference>,
        recipient: Vec<Reference>,
        sender: Option<Reference>,
        reason_code: Vec<CodeableConcept>,
        reason_reference: Vec<Reference>,
        note: Vec<Annotation>,
    }
}

fhir_element! {
    CommunicationRequestPayload {
        content_string: Option<String>,
        content_attachment: Option<Attachment>,
        content_reference: Option<Reference>,
    }
}

fhir_resource! {
    ServiceRequest {
        identifier: Vec<Identifier>,
        based_on: Vec<Reference>,
        replaces: Vec<Reference>,
        status: Option<String>,
        intent: Option<String>,
        category: Vec<CodeableConcept>,
        priority: Option<String>,
        do_not_perform: Option<bool>,
        code: Option<CodeableConcept>,
        subject: Option<Reference>,
        encounter: Option<Reference>,
        occurrence_date_time: Option<String>,
        authored_on: Option<String>,
        requester: Option<Reference>,
        performer: Vec<Reference>,
        reason_code: Vec<CodeableConcept>,
        reason_reference: Vec<Reference>,
        note: Vec<Annotation>,
    }
}

fhir_resource! {
    /// A filled-in form.
    QuestionnaireResponse {
        identifier: Option<Identifier>,
        based_on: Vec<Reference>,
        part_of: Vec<Reference>,
        questionnaire: Option<String>,
        status: Option<String>,
        subject: Option<Reference>,
        encounter: Option<Reference>,
        authored: Option<String>,
        author: Option<Reference>,
        source: Option<Reference>,
        item: Vec<QuestionnaireResponseItem>,
    }
}

fhir_element! {
    /// One item of a response. `linkId` and `text` are the Questionnaire's, so the gateway's own output
    /// borrows them from its table of the form instead of copying them for every response.
    QuestionnaireResponseItem {
        link_id: Option<std::borrow::Cow<'static, str>>,
        text: Option<std::borrow::Cow<'static, str>>,
        answer: Vec<QuestionnaireResponseAnswer>,
        item: Vec<QuestionnaireResponseItem>,
    }
}

fhir_element! {
    /// An answer: one `value[x]` (the types the national form ACP-zib2020 uses) and the items that
    /// explain it.
    QuestionnaireResponseAnswer {
        value_date_time: Option<String>,
        value_string: Option<String>,
        value_coding: Option<Coding>,
        item: Vec<QuestionnaireResponseItem>,
    }
}
