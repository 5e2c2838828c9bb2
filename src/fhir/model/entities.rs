//! FHIR R4 resources for the people, organisations and things a record is about: Patient,
//! RelatedPerson, Practitioner, PractitionerRole, Organization, Device.

use super::*;

fhir_resource! {
    Patient {
        identifier: Vec<Identifier>,
        active: Option<bool>,
        /// ACP-Patient: 1..*.
        name: Vec<HumanName>,
        telecom: Vec<ContactPoint>,
        gender: Option<String>,
        birth_date: Option<String>,
        /// Extensions of `birthDate`, e.g. the birth time (`patient-birthTime`).
        #[serde(rename = "_birthDate")]
        birth_date_ext: Option<Element>,
        deceased_boolean: Option<bool>,
        deceased_date_time: Option<String>,
        contact: Vec<PatientContact>,
        general_practitioner: Vec<Reference>,
        managing_organization: Option<Reference>,
    }
}

fhir_element! {
    /// Patient.contact; nl-core links it to the full RelatedPerson with the `patient-relatedPerson`
    /// extension. Invariant pat-1: a name, telecom, address or organization must be present.
    PatientContact {
        extension: Vec<Extension>,
        relationship: Vec<CodeableConcept>,
        name: Option<HumanName>,
        telecom: Vec<ContactPoint>,
        gender: Option<String>,
        organization: Option<Reference>,
        period: Option<Period>,
    }
}

fhir_resource! {
    /// A contact person (nl-core-ContactPerson / ACP-ContactPerson).
    RelatedPerson {
        identifier: Vec<Identifier>,
        active: Option<bool>,
        patient: Option<Reference>,
        /// ACP-ContactPerson: 1..*, with at least one role (`urn:oid:...22.472`).
        relationship: Vec<CodeableConcept>,
        name: Vec<HumanName>,
        telecom: Vec<ContactPoint>,
        gender: Option<String>,
        birth_date: Option<String>,
        period: Option<Period>,
    }
}

fhir_resource! {
    Practitioner {
        identifier: Vec<Identifier>,
        active: Option<bool>,
        name: Vec<HumanName>,
        telecom: Vec<ContactPoint>,
        gender: Option<String>,
        birth_date: Option<String>,
    }
}

fhir_resource! {
    PractitionerRole {
        identifier: Vec<Identifier>,
        active: Option<bool>,
        period: Option<Period>,
        practitioner: Option<Reference>,
        organization: Option<Reference>,
        code: Vec<CodeableConcept>,
        /// The function (specialism) of the professional.
        specialty: Vec<CodeableConcept>,
        location: Vec<Reference>,
        telecom: Vec<ContactPoint>,
    }
}

fhir_resource! {
    Organization {
        identifier: Vec<Identifier>,
        active: Option<bool>,
        r#type: Vec<CodeableConcept>,
        name: Option<String>,
        alias: Vec<String>,
        telecom: Vec<ContactPoint>,
        part_of: Option<Reference>,
    }
}

fhir_resource! {
    /// A device such as an ICD (ACP-MedicalDevice.Product-ICD).
    Device {
        identifier: Vec<Identifier>,
        status: Option<String>,
        r#type: Option<CodeableConcept>,
        patient: Option<Reference>,
        owner: Option<Reference>,
        note: Vec<Annotation>,
    }
}
