//! Hand-written FHIR R4 resources and datatypes: the ones the gateway emits, and a few it will need for
//! documents, audit and tasks. No generated mega-crate: each type lists only the elements of the R4
//! definition that the gateway has a use for, **in the order of the R4 definition**, so that serde's
//! field order is FHIR's element order and the JSON output reads like the specification's examples.
//!
//! Conventions, enforced by the two macros below rather than by hand on every field:
//! - every element is optional on the Rust side (`Option`, `Vec`, or a type whose default is empty) and
//!   is left out of the JSON when empty, because FHIR forbids empty objects, arrays and strings;
//! - names are FHIR's JSON names (`camelCase`; `r#type` becomes `type`, `family_ext` is `_family`);
//! - a choice element `value[x]` is one `Option` per type we use (`value_string`, `value_codeable_concept`),
//!   except in [`Extension`], where the value is the [`ExtensionValue`] enum;
//! - codes of FHIR's own required bindings that the gateway *decides* (consent permit/deny, bundle type,
//!   telecom system) are Rust enums, so a renderer's `match` is checked by the compiler; other FHIR codes
//!   (statuses) are strings taken from the mappings.
//!
//! Both `Serialize` and `Deserialize` are derived, so an emitted Bundle reads back into the same value
//! (a test checks JSON → model → JSON is byte-identical). Deserialising is lenient: unknown elements are
//! ignored, because the model is for output, and intake reads FHIR as `serde_json::Value`.

/// Declares a FHIR element or datatype: every field optional, camelCase, skipped when empty.
macro_rules! fhir_element {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            $(
                $(#[$fm])*
                #[serde(default, skip_serializing_if = "crate::fhir::model::IsEmpty::is_empty")]
                pub $field: $ty,
            )*
        }

        impl crate::fhir::model::IsEmpty for $name {
            fn is_empty(&self) -> bool {
                *self == Self::default()
            }
        }
    };
}

/// Declares a FHIR DomainResource: the elements every DomainResource starts with (id, meta, text,
/// extension, modifierExtension), then the resource's own.
macro_rules! fhir_resource {
    ($(#[$m:meta])* $name:ident { $($rest:tt)* }) => {
        fhir_element! {
            $(#[$m])*
            $name {
                /// Logical id (a UUID in the gateway's output).
                id: Option<String>,
                meta: Option<crate::fhir::model::Meta>,
                text: Option<crate::fhir::model::Narrative>,
                extension: Vec<crate::fhir::model::Extension>,
                modifier_extension: Vec<crate::fhir::model::Extension>,
                $($rest)*
            }
        }
    };
}

mod clinical;
mod datatypes;
mod entities;
mod foundation;

pub use clinical::*;
pub use datatypes::*;
pub use entities::*;
pub use foundation::*;

use serde::{Deserialize, Serialize};

/// Whether a value would be an empty JSON element, which FHIR forbids and the model therefore leaves
/// out. Implemented for everything a model field can be.
pub trait IsEmpty {
    fn is_empty(&self) -> bool;
}

impl<T> IsEmpty for Option<T> {
    fn is_empty(&self) -> bool {
        self.is_none()
    }
}

impl<T> IsEmpty for Vec<T> {
    fn is_empty(&self) -> bool {
        Vec::is_empty(self)
    }
}

impl IsEmpty for String {
    fn is_empty(&self) -> bool {
        String::is_empty(self)
    }
}

impl<T: IsEmpty> IsEmpty for Box<T> {
    fn is_empty(&self) -> bool {
        (**self).is_empty()
    }
}

impl IsEmpty for serde_json::Value {
    fn is_empty(&self) -> bool {
        match self {
            serde_json::Value::Null => true,
            serde_json::Value::Array(a) => a.is_empty(),
            serde_json::Value::Object(o) => o.is_empty(),
            serde_json::Value::String(s) => s.is_empty(),
            _ => false,
        }
    }
}

/// Declares [`Resource`], its `From` conversions and the accessors every resource has.
macro_rules! resources {
    ($($variant:ident),+ $(,)?) => {
        /// Any resource the model knows, tagged by `resourceType` (which serde writes first).
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "resourceType")]
        pub enum Resource {
            $($variant(Box<$variant>)),+
        }

        impl Resource {
            /// The FHIR resource type name (`"Patient"`).
            pub fn resource_type(&self) -> &'static str {
                match self {
                    $(Resource::$variant(_) => stringify!($variant)),+
                }
            }

            pub fn id(&self) -> Option<&str> {
                match self {
                    $(Resource::$variant(r) => r.id.as_deref()),+
                }
            }

            pub fn meta(&self) -> Option<&Meta> {
                match self {
                    $(Resource::$variant(r) => r.meta.as_ref()),+
                }
            }
        }

        $(
            impl From<$variant> for Resource {
                fn from(r: $variant) -> Resource {
                    Resource::$variant(Box::new(r))
                }
            }
        )+
    };
}

resources!(
    Bundle,
    Patient,
    RelatedPerson,
    Practitioner,
    PractitionerRole,
    Organization,
    Encounter,
    Procedure,
    Consent,
    Goal,
    Observation,
    Device,
    DeviceUseStatement,
    CommunicationRequest,
    QuestionnaireResponse,
    OperationOutcome,
    Composition,
    DocumentReference,
    ServiceRequest,
    Provenance,
    AuditEvent,
    Task,
);

impl IsEmpty for Resource {
    fn is_empty(&self) -> bool {
        // A resource always has its resourceType, so it is never an empty element.
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resource_type_comes_first_and_empty_elements_are_left_out() {
        let p = Patient {
            id: Some("p1".into()),
            name: vec![HumanName { text: Some("Hendrik Hartman".into()), ..Default::default() }],
            telecom: vec![],
            ..Default::default()
        };
        let text = serde_json::to_string(&Resource::from(p)).unwrap();
        assert_eq!(text, r#"{"resourceType":"Patient","id":"p1","name":[{"text":"Hendrik Hartman"}]}"#);
    }

    #[test]
    fn extension_values_are_value_x_keys_and_read_back() {
        let ext = Extension {
            url: "http://example.org/a".into(),
            extension: vec![Extension::new("legallyCapable", ExtensionValue::Boolean(false))],
            value: None,
        };
        let v = serde_json::to_value(&ext).unwrap();
        assert_eq!(
            v,
            json!({"url": "http://example.org/a", "extension": [{"url": "legallyCapable", "valueBoolean": false}]})
        );
        let back: Extension = serde_json::from_value(v).unwrap();
        assert_eq!(back, ext);

        let coded = Extension::new(
            "http://example.org/b",
            ExtensionValue::CodeableConcept(CodeableConcept { text: Some("x".into()), ..Default::default() }),
        );
        let v = serde_json::to_value(&coded).unwrap();
        assert_eq!(v, json!({"url": "http://example.org/b", "valueCodeableConcept": {"text": "x"}}));
        assert_eq!(serde_json::from_value::<Extension>(v).unwrap(), coded);
    }

    #[test]
    fn primitive_extensions_sit_beside_their_value() {
        let n = HumanName {
            family: Some("van Huissen".into()),
            family_ext: Some(Element {
                extension: vec![Extension::new("own-prefix", ExtensionValue::String("van".into()))],
                ..Default::default()
            }),
            ..Default::default()
        };
        let v = serde_json::to_value(&n).unwrap();
        assert_eq!(
            v,
            json!({"family": "van Huissen", "_family": {"extension": [{"url": "own-prefix", "valueString": "van"}]}})
        );
    }

    #[test]
    fn a_bundle_reads_back_into_the_same_value() {
        let b = Bundle {
            id: Some("b".into()),
            r#type: Some(BundleType::Transaction),
            entry: vec![BundleEntry {
                full_url: Some("urn:uuid:1".into()),
                resource: Some(Resource::from(Consent {
                    id: Some("1".into()),
                    modifier_extension: vec![Extension::new("spec", ExtensionValue::String("alleen kort".into()))],
                    provision: Some(ConsentProvision {
                        code: vec![CodeableConcept { text: Some("Dialyse".into()), ..Default::default() }],
                        ..Default::default()
                    }),
                    ..Default::default()
                })),
                request: Some(BundleRequest { method: Some(HttpVerb::Put), url: Some("Consent/1".into()) }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = serde_json::to_string(&Resource::from(b.clone())).unwrap();
        let back: Resource = serde_json::from_str(&text).unwrap();
        assert_eq!(back, Resource::from(b));
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
        assert_eq!(back.resource_type(), "Bundle");
    }
}
