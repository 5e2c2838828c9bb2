//! The coded answers of the form, as closed Rust enums.
//!
//! An enum fixes *which* answers exist (so a `match` in a renderer must handle every one, and a new
//! answer is a compile error wherever it matters); `mappings/valuesets.toml` says which code each answer
//! stands for. The two are tied by key: the kebab-case token that the uniform record JSON uses. The test
//! `every_enum_matches_its_value_set` keeps them in step.

use serde::Serialize;

use crate::mappings::{self, Entry};

/// A closed set of coded answers backed by a value set in `mappings/valuesets.toml`.
pub trait Coded: Sized + Copy + Eq + std::fmt::Debug + 'static {
    /// The value set's name in `mappings/valuesets.toml`.
    const VALUE_SET: &'static str;
    /// Every answer, in the form's order.
    const ALL: &'static [Self];
    /// The key of this answer (the uniform JSON token).
    fn key(self) -> &'static str;

    fn from_key(key: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.key() == key)
    }

    /// The codings of this answer (FHIR coding, Questionnaire coding, accepted aliases).
    fn entry(self) -> &'static Entry {
        mappings::get()
            .valueset(Self::VALUE_SET)
            .by_key(self.key())
            .unwrap_or_else(|| panic!("[{}] has no key {}", Self::VALUE_SET, self.key()))
    }

    /// The answer a received coding stands for.
    fn from_coding(system: Option<&str>, code: &str) -> Option<Self> {
        mappings::get()
            .valueset(Self::VALUE_SET)
            .find(system, code)
            .and_then(|e| Self::from_key(&e.key))
    }

    /// Whether this is the form's "Anders" answer, which carries a free-text description.
    fn is_other(self) -> bool {
        self.key() == "other"
    }
}

/// Declares a coded enum: variants with their keys, serialised as the key.
macro_rules! coded_enum {
    ($(#[$meta:meta])* $name:ident = $vs:literal { $($(#[$vmeta:meta])* $variant:ident = $key:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $key)] $variant),+
        }
        impl Coded for $name {
            const VALUE_SET: &'static str = $vs;
            const ALL: &'static [Self] = &[$(Self::$variant),+];
            fn key(self) -> &'static str {
                match self { $(Self::$variant => $key),+ }
            }
        }
    };
}

coded_enum! {
    /// 1405 Functie (Specialisme) of the professional who held the conversation.
    ProfessionalFunction = "professional-function" {
        Physician = "physician",
        GeneralPractitioner = "general-practitioner",
        ElderlyCarePhysician = "elderly-care-physician",
        Nurse = "nurse",
        PhysicianAssistant = "physician-assistant",
        OtherCareProvider = "other-care-provider",
    }
}

coded_enum! {
    /// 977/989 TelecomType.
    TelecomType = "telecom-type" { Landline = "landline", Fax = "fax", Pager = "pager", Mobile = "mobile" }
}

coded_enum! {
    /// 978/990 NummerSoort.
    NumberUse = "number-use" { Home = "home", Temporary = "temporary", Work = "work" }
}

coded_enum! {
    /// 981/993 EmailSoort.
    EmailUse = "email-use" { Private = "private", Work = "work" }
}

coded_enum! {
    /// 982/997 the role of a contact person (legal representative, mentor, ...).
    ContactRole = "contact-role" {
        LegalRepresentative = "legal-representative",
        FirstContact = "first-contact",
        ContactPerson = "contact-person",
        WrittenAuthorisation = "written-authorisation",
        Curator = "curator",
        Mentor = "mentor",
        Other = "other",
    }
}

coded_enum! {
    /// 983/995/998 the family relation of a contact person to the patient.
    Relationship = "relationship" {
        Partner = "partner",
        Husband = "husband",
        Wife = "wife",
        Father = "father",
        Mother = "mother",
        Son = "son",
        Daughter = "daughter",
        Brother = "brother",
        Sister = "sister",
        Other = "other",
    }
}

coded_enum! {
    /// 3. Belangrijkste overeengekomen doel van medisch beleid.
    MedicalPolicyGoal = "medical-policy-goal" {
        Curative = "curative",
        PalliativeLifeProlonging = "palliative-life-prolonging",
        PalliativeSymptomRelief = "palliative-symptom-relief",
        Unknown = "unknown",
    }
}

coded_enum! {
    /// The decision code of a treatment limit (603 BehandelBesluit). The record holds it inside
    /// [`crate::record::Decision`], which adds the restriction text where the code needs one.
    DecisionCode = "treatment-decision" {
        Perform = "perform",
        PerformWithRestrictions = "perform-with-restrictions",
        DoNotPerform = "do-not-perform",
        Unknown = "unknown",
    }
}

coded_enum! {
    /// The treatments of section 4 (the codes of `Consent.provision.code`).
    Treatment = "treatment" {
        Resuscitation = "resuscitation",
        InvasiveVentilation = "invasive-ventilation",
        IcuAdmission = "icu-admission",
        HospitalAdmission = "hospital-admission",
        Antibiotics = "antibiotics",
        BloodProducts = "blood-products",
        Other = "other",
        IcdDeactivation = "icd-deactivation",
    }
}

coded_enum! {
    /// Ja / Nee / Nog onbekend (4h, 5d, 7a, 7b).
    YesNoUnknown = "yes-no-unknown" { Yes = "yes", No = "no", Unknown = "unknown" }
}

coded_enum! {
    /// 1008 ProductType van ICD.
    IcdProductType = "icd-product-type" { Icd = "icd" }
}

coded_enum! {
    /// 4i Afspraak uitzetten ICD.
    IcdDeactivationAgreement = "icd-deactivation-agreement" {
        Yes = "yes",
        NotYetDecided = "not-yet-decided",
        NotDiscussed = "not-discussed",
    }
}

coded_enum! {
    /// 5b Gewenste plek van overlijden.
    PlaceOfDeath = "place-of-death" {
        Home = "home",
        Hospital = "hospital",
        NursingHome = "nursing-home",
        Hospice = "hospice",
        Other = "other",
        Unknown = "unknown",
    }
}

coded_enum! {
    /// 5c Euthanasie standpunt.
    EuthanasiaPosition = "euthanasia-position" {
        HasDeclaration = "has-declaration",
        NoEuthanasia = "no-euthanasia",
        MightRequest = "might-request",
        Unknown = "unknown",
    }
}

coded_enum! {
    /// 8b Akkoord met het delen van de behandelafspraken.
    SharingConsent = "sharing-consent" { Agreed = "agreed", Unknown = "unknown" }
}

coded_enum! {
    /// WilsverklaringType of an advance directive.
    AdvanceDirectiveType = "advance-directive-type" {
        DoNotResuscitate = "do-not-resuscitate",
        PowerOfAttorney = "power-of-attorney",
        TreatmentRefusal = "treatment-refusal",
        TreatmentRefusalCompletedLife = "treatment-refusal-completed-life",
        VerbalAgreement = "verbal-agreement",
        EuthanasiaRequest = "euthanasia-request",
        EuthanasiaRequestDementia = "euthanasia-request-dementia",
        LifeWish = "life-wish",
        DonorDeclaration = "donor-declaration",
        SelfBinding = "self-binding",
        Other = "other",
    }
}

coded_enum! {
    /// The status of a treatment directive or advance directive (FHIR `Consent.status`). Only a
    /// directive that is `Active` and whose period has not ended is a current limit; the record keeps
    /// the others apart, in [`crate::record::DirectiveNotInForce`].
    DirectiveStatus = "directive-status" {
        Active = "active",
        Inactive = "inactive",
        Draft = "draft",
        Proposed = "proposed",
        Rejected = "rejected",
        EnteredInError = "entered-in-error",
    }
}

/// A coded answer whose "Anders" option carries a free-text description ("Anders, namelijk: ...").
///
/// The description can only exist on the "other" answer: the fields are private and [`Answer::new`]
/// refuses a description on any other code, so a renderer never meets text it would have to drop.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Answer<T: Coded> {
    code: T,
    #[serde(skip_serializing_if = "Option::is_none")]
    other: Option<String>,
}

impl<T: Coded> Answer<T> {
    /// A plain answer (no description).
    pub fn code(code: T) -> Self {
        Answer { code, other: None }
    }

    /// An answer with its optional "Anders, namelijk" text; `Err` when text is given for a code that
    /// is not "other". Empty text counts as absent.
    pub fn new(code: T, other: Option<String>) -> Result<Self, T> {
        let other = other.filter(|s| !s.trim().is_empty());
        if other.is_some() && !code.is_other() {
            return Err(code);
        }
        Ok(Answer { code, other })
    }

    pub fn value(&self) -> T {
        self.code
    }

    /// The "Anders, namelijk" description, only ever present on the "other" answer.
    pub fn other_text(&self) -> Option<&str> {
        self.other.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mappings;

    fn check<T: Coded>() {
        let vs = mappings::get().valueset(T::VALUE_SET);
        for v in T::ALL {
            assert!(vs.by_key(v.key()).is_some(), "[{}] lacks key {}", T::VALUE_SET, v.key());
            assert_eq!(T::from_key(v.key()), Some(*v));
            let c = &v.entry().coding;
            let sys = (!c.system.is_empty()).then_some(c.system.as_str());
            assert_eq!(T::from_coding(sys, &c.code), Some(*v), "{}#{}", c.system, c.code);
        }
        for e in &vs.entries {
            assert!(T::from_key(&e.key).is_some(), "enum for [{}] lacks key {}", T::VALUE_SET, e.key);
        }
    }

    #[test]
    fn every_enum_matches_its_value_set() {
        check::<ProfessionalFunction>();
        check::<TelecomType>();
        check::<NumberUse>();
        check::<EmailUse>();
        check::<ContactRole>();
        check::<Relationship>();
        check::<MedicalPolicyGoal>();
        check::<DecisionCode>();
        check::<Treatment>();
        check::<YesNoUnknown>();
        check::<IcdProductType>();
        check::<IcdDeactivationAgreement>();
        check::<PlaceOfDeath>();
        check::<EuthanasiaPosition>();
        check::<SharingConsent>();
        check::<AdvanceDirectiveType>();
        check::<DirectiveStatus>();
    }

    #[test]
    fn answer_refuses_other_text_on_a_plain_code() {
        assert!(Answer::new(Relationship::Brother, Some("buurman".into())).is_err());
        let a = Answer::new(Relationship::Other, Some("buurman".into())).unwrap();
        assert_eq!(a.other_text(), Some("buurman"));
        assert_eq!(Answer::new(Relationship::Brother, Some("  ".into())).unwrap().other_text(), None);
    }
}
