//! FHIR R4 datatypes (Coding, CodeableConcept, Identifier, HumanName, ContactPoint, Reference, Period,
//! Extension, Attachment, Annotation, Meta, Narrative) and the FHIR code enumerations the gateway decides.

use serde::{Deserialize, Serialize};

fhir_element! {
    /// A code in a code system.
    Coding {
        system: Option<String>,
        version: Option<String>,
        code: Option<String>,
        display: Option<String>,
        user_selected: Option<bool>,
    }
}

fhir_element! {
    /// Codings for one concept, and the text a person reads ("Anders, namelijk: ..." goes here).
    CodeableConcept {
        coding: Vec<Coding>,
        text: Option<String>,
    }
}

fhir_element! {
    Identifier {
        r#use: Option<String>,
        r#type: Option<CodeableConcept>,
        system: Option<String>,
        value: Option<String>,
        period: Option<Period>,
        assigner: Option<Box<Reference>>,
    }
}

fhir_element! {
    /// A reference to another resource; in a Bundle, `reference` is the target entry's `fullUrl`.
    Reference {
        reference: Option<String>,
        r#type: Option<String>,
        identifier: Option<Identifier>,
        display: Option<String>,
    }
}

fhir_element! {
    Period {
        start: Option<String>,
        end: Option<String>,
    }
}

fhir_element! {
    /// The extensions of a primitive value, written as `_name` beside `name` in FHIR JSON.
    Element {
        id: Option<String>,
        extension: Vec<Extension>,
    }
}

fhir_element! {
    /// A person's name. nl-core splits the Dutch family name into own prefix and own name with
    /// extensions on `family`, which live in `_family` ([`HumanName::family_ext`]).
    HumanName {
        extension: Vec<Extension>,
        r#use: Option<NameUse>,
        text: Option<String>,
        family: Option<String>,
        #[serde(rename = "_family")]
        family_ext: Option<Element>,
        given: Vec<String>,
        prefix: Vec<String>,
        suffix: Vec<String>,
        period: Option<Period>,
    }
}

fhir_element! {
    /// A telephone number or e-mail address. nl-core carries the telecom type (mobile, landline) as an
    /// extension on `system`, in `_system` ([`ContactPoint::system_ext`]).
    ContactPoint {
        extension: Vec<Extension>,
        system: Option<ContactPointSystem>,
        #[serde(rename = "_system")]
        system_ext: Option<Element>,
        value: Option<String>,
        r#use: Option<ContactPointUse>,
        rank: Option<u32>,
        period: Option<Period>,
    }
}

fhir_element! {
    /// Document content, e.g. a scanned advance directive, base64 in `data`.
    Attachment {
        content_type: Option<String>,
        language: Option<String>,
        data: Option<String>,
        url: Option<String>,
        size: Option<u32>,
        hash: Option<String>,
        title: Option<String>,
        creation: Option<String>,
    }
}

fhir_element! {
    /// A note (`note.text`).
    Annotation {
        author_reference: Option<Reference>,
        author_string: Option<String>,
        time: Option<String>,
        text: Option<String>,
    }
}

fhir_element! {
    Meta {
        version_id: Option<String>,
        last_updated: Option<String>,
        source: Option<String>,
        /// The profiles the resource claims to conform to.
        profile: Vec<String>,
        security: Vec<Coding>,
        tag: Vec<Coding>,
    }
}

fhir_element! {
    /// Human-readable summary; `div` is XHTML.
    Narrative {
        status: Option<String>,
        div: Option<String>,
    }
}

/// An extension: a URL, nested extensions, and at most one value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Extension {
    pub url: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    /// `value[x]`: flattened, so the variant's name is the JSON key (`valueString`, ...).
    #[serde(flatten)]
    pub value: Option<ExtensionValue>,
}

impl Extension {
    /// A simple extension: one URL, one value.
    pub fn new(url: impl Into<String>, value: ExtensionValue) -> Extension {
        Extension { url: url.into(), extension: Vec::new(), value: Some(value) }
    }

    /// A complex extension: sub-extensions and no value.
    pub fn complex(url: impl Into<String>, extension: Vec<Extension>) -> Extension {
        Extension { url: url.into(), extension, value: None }
    }
}

impl crate::fhir::model::IsEmpty for Extension {
    fn is_empty(&self) -> bool {
        false
    }
}

/// The `value[x]` types the gateway's extensions use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ExtensionValue {
    #[serde(rename = "valueString")]
    String(String),
    #[serde(rename = "valueBoolean")]
    Boolean(bool),
    #[serde(rename = "valueCode")]
    Code(String),
    #[serde(rename = "valueUri")]
    Uri(String),
    #[serde(rename = "valueDateTime")]
    DateTime(String),
    #[serde(rename = "valueCoding")]
    Coding(Coding),
    #[serde(rename = "valueCodeableConcept")]
    CodeableConcept(CodeableConcept),
    #[serde(rename = "valueReference")]
    Reference(Reference),
    #[serde(rename = "valueIdentifier")]
    Identifier(Identifier),
    #[serde(rename = "valuePeriod")]
    Period(Period),
}

/// HumanName.use (required binding name-use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NameUse {
    Usual,
    Official,
    Temp,
    Nickname,
    Anonymous,
    Old,
    Maiden,
}

/// ContactPoint.system (required binding contact-point-system).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContactPointSystem {
    Phone,
    Fax,
    Email,
    Pager,
    Url,
    Sms,
    Other,
}

/// ContactPoint.use (required binding contact-point-use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContactPointUse {
    Home,
    Work,
    Temp,
    Old,
    Mobile,
}
