//! The uniform ACP record: the national form "Uniform vastleggen proactieve zorgplanning" as Rust types.
//!
//! This is the heart of the gateway and depends on nothing else in it but the code tables. Every input
//! form becomes an [`AcpRecord`]; every output is rendered from one. The types parse rather than
//! validate: a [`Bsn`] passed the 11-proof, a [`FhirDate`] is a real date, a restriction text exists only
//! inside [`Decision::PerformWithRestrictions`]. Section numbers in the comments are the form's.
//!
//! Every item is optional because a *partial* record (a single FHIR resource, say) is legitimate; which
//! items a complete handover needs is the validator's business (`crate::validate`), not the type's.
//!
//! The `Serialize` derive *is* the uniform record JSON (`mappings/acp-record.schema.json` documents it);
//! `crate::intake::uniform` reads it back.

pub mod codes;
pub mod date;
pub mod ids;
pub mod today;

use serde::Serialize;

pub use codes::*;
pub use date::{DateError, FhirDate};
pub use ids::{Agb, Bsn, IdError, Identifier, Ura};

/// One ACP conversation's record, as the national form holds it.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub struct AcpRecord {
    /// Datum van invullen (963): the date the form was filled in, also the conversation date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_filled_in: Option<FhirDate>,
    pub patient: Patient,
    /// Gesprek gevoerd door (8): the professional who held the conversation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conducted_by: Option<Professional>,
    /// 1. Wilsbekwaamheid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legal_capacity: Option<LegalCapacity>,
    /// 1a-d. De wettelijk vertegenwoordiger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub representative: Option<Representative>,
    /// 1e-g. Eerste contactpersoon (when not the representative).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_contact: Option<ContactPerson>,
    /// 2. Gesprek gevoerd in bijzijn van.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub present: Option<Presence>,
    /// 3. Belangrijkste overeengekomen doel van medisch beleid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub medical_policy_goal: Option<MedicalPolicyGoal>,
    /// 4a-g. Behandelgrenzen.
    #[serde(skip_serializing_if = "TreatmentLimits::is_empty")]
    pub treatment_limits: TreatmentLimits,
    /// 4h. Heeft de patiënt een ICD?
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icd: Option<Icd>,
    /// 4i. Afspraak over het moment van uitzetten ICD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icd_deactivation: Option<IcdDeactivation>,
    /// 5a. Wat zorgverleners moeten weten; specifieke wensen (free text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub care_wishes: Option<String>,
    /// 5b. Gewenste plek van overlijden.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place_of_death: Option<PlaceOfDeathWish>,
    /// 5c. Euthanasie standpunt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub euthanasia: Option<Euthanasia>,
    /// 5d. Keuze orgaandonatie vastgelegd in donorregister?
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organ_donation_registered: Option<YesNoUnknown>,
    /// 6. Wat verder nog belangrijk is (free text; "gevoel van zingeving").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sense_of_purpose: Option<String>,
    /// 7a/7b. Eerder vastgelegde behandelwensen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub earlier_agreements: Option<EarlierAgreements>,
    /// 8a. Patiënt geïnformeerd over eigen verantwoordelijkheid om naasten te informeren.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relatives_informed: Option<bool>,
    /// 8b. Patiënt gaat akkoord met het delen van deze behandelafspraken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sharing_consent: Option<SharingConsent>,
    /// Wilsverklaringen (advance directives) the patient has, e.g. a do-not-resuscitate declaration.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub advance_directives: Vec<AdvanceDirective>,
    /// Directives that are on file but not in force (ended, not yet agreed, rejected, entered in
    /// error). Never a current limit: kept apart so that every output can show them as such.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub directives_not_in_force: Vec<DirectiveNotInForce>,
}

/// A person's name as the form asks it: given names, prefix ("van der"), family name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Name {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
}

impl Name {
    pub fn is_empty(&self) -> bool {
        self.given.is_none() && self.prefix.is_none() && self.family.is_none()
    }

    /// "Hendrik van Huissen": the name as a letter would address it.
    pub fn display(&self) -> String {
        [&self.given, &self.prefix, &self.family]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Patient {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bsn: Option<Bsn>,
    /// Identifiers of other systems (hospital patient number, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_identifiers: Vec<Identifier>,
    #[serde(skip_serializing_if = "Name::is_empty")]
    pub name: Name,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<FhirDate>,
}

/// The professional who held the conversation (8, 16, 1405).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Professional {
    #[serde(skip_serializing_if = "Name::is_empty")]
    pub name: Name,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<ProfessionalFunction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agb: Option<Agb>,
    /// Other identifiers (UZI, BIG), kept verbatim.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_identifiers: Vec<Identifier>,
}

/// 1. Is de patiënt op dit moment wilsbekwaam m.b.t. medische behandelbeslissingen?
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct LegalCapacity {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Phone {
    pub number: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub telecom_type: Option<TelecomType>,
    #[serde(rename = "use", skip_serializing_if = "Option::is_none")]
    pub number_use: Option<NumberUse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Email {
    pub address: String,
    #[serde(rename = "use", skip_serializing_if = "Option::is_none")]
    pub email_use: Option<EmailUse>,
}

/// A contact person: the first contact (1e-g), and the base of the representative.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ContactPerson {
    #[serde(skip_serializing_if = "Name::is_empty")]
    pub name: Name,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<Phone>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<Email>,
    /// Relatie tot patiënt (family relation), with "Anders, namelijk" text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relationship: Option<Answer<Relationship>>,
}

/// 1a-d. The legal representative (wettelijk vertegenwoordiger).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Representative {
    #[serde(flatten)]
    pub person: ContactPerson,
    /// 1c Relatie tot patiënt (1): the legal role(s), repeating (e.g. mentor; schriftelijk gemachtigde).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Answer<ContactRole>>,
    /// 1d Is de wettelijk vertegenwoordiger ook de eerste contactpersoon?
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_first_contact: Option<bool>,
}

/// 2. Who was present at the conversation.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Presence {
    /// The patient was present.
    pub patient: bool,
    /// Others present, by legal role (curator, mentor, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Answer<ContactRole>>,
    /// Others present, by family relation.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub relationships: Vec<Answer<Relationship>>,
}

/// The decision on one treatment (BehandelBesluit).
///
/// The restriction text lives inside `PerformWithRestrictions`, so it can neither be lost from a
/// restricted decision nor attached to any other decision.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Decision {
    /// "Ja" / Wel uitvoeren.
    Perform,
    /// "Ja maar met beperkingen": the restriction text is the real decision and is carried verbatim.
    PerformWithRestrictions { restriction: String },
    /// "Nee" / Niet uitvoeren.
    DoNotPerform,
    /// "Onbekend": not decided or not discussed. Never a decision either way.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    #[error("'Ja maar met beperkingen' needs the restriction text (SpecificatieAnders); without it the limit is unknown")]
    MissingRestriction,
    #[error("the restriction text {0:?} reads as 'Onbekend'; give the restriction itself, or the decision 'unknown'")]
    AmbiguousRestriction(String),
    #[error("a restriction text belongs only to 'Ja maar met beperkingen'; this decision is '{0}'")]
    UnexpectedRestriction(&'static str),
}

impl Decision {
    /// Builds a decision from its code and the optional restriction text, refusing the states the form
    /// does not allow. Whitespace-only text counts as absent.
    pub fn new(code: DecisionCode, restriction: Option<String>) -> Result<Decision, DecisionError> {
        let restriction = restriction.filter(|s| !s.trim().is_empty());
        match (code, restriction) {
            // FHIR carries "Onbekend" in the same element as a restriction text; a restriction that reads
            // like it would come back as "unknown" after a round trip, so it is refused here.
            (DecisionCode::PerformWithRestrictions, Some(r)) if crate::mappings::get().is_text_marker("decision-unknown", &r) => {
                Err(DecisionError::AmbiguousRestriction(r))
            }
            (DecisionCode::PerformWithRestrictions, Some(r)) => Ok(Decision::PerformWithRestrictions { restriction: r }),
            (DecisionCode::PerformWithRestrictions, None) => Err(DecisionError::MissingRestriction),
            (code, Some(_)) => Err(DecisionError::UnexpectedRestriction(code.key())),
            (DecisionCode::Perform, None) => Ok(Decision::Perform),
            (DecisionCode::DoNotPerform, None) => Ok(Decision::DoNotPerform),
            (DecisionCode::Unknown, None) => Ok(Decision::Unknown),
        }
    }

    pub fn code(&self) -> DecisionCode {
        match self {
            Decision::Perform => DecisionCode::Perform,
            Decision::PerformWithRestrictions { .. } => DecisionCode::PerformWithRestrictions,
            Decision::DoNotPerform => DecisionCode::DoNotPerform,
            Decision::Unknown => DecisionCode::Unknown,
        }
    }

    pub fn restriction(&self) -> Option<&str> {
        match self {
            Decision::PerformWithRestrictions { restriction } => Some(restriction),
            _ => None,
        }
    }
}

/// One treatment limit (4a-f): the decision, its explanation and when it was last discussed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TreatmentLimit {
    #[serde(flatten)]
    pub decision: Decision,
    /// Toelichting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    /// MeestRecenteBespreekdatum: when this limit was last discussed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discussed_on: Option<FhirDate>,
}

/// 4g. Another treatment limit, named in free text (e.g. "Dialyse").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OtherTreatmentLimit {
    /// What treatment this limit is about; absent when the form only says "Overige".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub treatment: Option<String>,
    #[serde(flatten)]
    pub limit: TreatmentLimit,
}

/// 4a-g, one slot per treatment of the form.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct TreatmentLimits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resuscitation: Option<TreatmentLimit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invasive_ventilation: Option<TreatmentLimit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icu_admission: Option<TreatmentLimit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hospital_admission: Option<TreatmentLimit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub antibiotics: Option<TreatmentLimit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blood_products: Option<TreatmentLimit>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<OtherTreatmentLimit>,
}

/// The six named treatments of 4a-f, in the form's order, for code that walks them all.
pub const NAMED_TREATMENTS: [Treatment; 6] = [
    Treatment::Resuscitation,
    Treatment::InvasiveVentilation,
    Treatment::IcuAdmission,
    Treatment::HospitalAdmission,
    Treatment::Antibiotics,
    Treatment::BloodProducts,
];

impl TreatmentLimits {
    pub fn is_empty(&self) -> bool {
        NAMED_TREATMENTS.iter().all(|t| self.get(*t).is_none()) && self.other.is_empty()
    }

    /// The slot of a named treatment (4a-f); `None` for `Other` and `IcdDeactivation`, which live
    /// elsewhere.
    pub fn get(&self, t: Treatment) -> Option<&TreatmentLimit> {
        self.slot(t).and_then(|s| s.as_ref())
    }

    fn slot(&self, t: Treatment) -> Option<&Option<TreatmentLimit>> {
        Some(match t {
            Treatment::Resuscitation => &self.resuscitation,
            Treatment::InvasiveVentilation => &self.invasive_ventilation,
            Treatment::IcuAdmission => &self.icu_admission,
            Treatment::HospitalAdmission => &self.hospital_admission,
            Treatment::Antibiotics => &self.antibiotics,
            Treatment::BloodProducts => &self.blood_products,
            Treatment::Other | Treatment::IcdDeactivation => return None,
        })
    }

    /// The mutable slot of a named treatment (4a-f).
    pub fn slot_mut(&mut self, t: Treatment) -> Option<&mut Option<TreatmentLimit>> {
        Some(match t {
            Treatment::Resuscitation => &mut self.resuscitation,
            Treatment::InvasiveVentilation => &mut self.invasive_ventilation,
            Treatment::IcuAdmission => &mut self.icu_admission,
            Treatment::HospitalAdmission => &mut self.hospital_admission,
            Treatment::Antibiotics => &mut self.antibiotics,
            Treatment::BloodProducts => &mut self.blood_products,
            Treatment::Other | Treatment::IcdDeactivation => return None,
        })
    }

    /// The uniform-JSON field name of a named treatment, for locations in messages.
    pub fn field_name(t: Treatment) -> &'static str {
        match t {
            Treatment::Resuscitation => "resuscitation",
            Treatment::InvasiveVentilation => "invasive_ventilation",
            Treatment::IcuAdmission => "icu_admission",
            Treatment::HospitalAdmission => "hospital_admission",
            Treatment::Antibiotics => "antibiotics",
            Treatment::BloodProducts => "blood_products",
            Treatment::Other => "other",
            Treatment::IcdDeactivation => "icd_deactivation",
        }
    }
}

/// 4h. ICD present, with product type and explanation (asked only when present).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Icd {
    pub present: YesNoUnknown,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_type: Option<IcdProductType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
}

/// 4i. The agreement on when to switch the ICD off.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IcdDeactivation {
    pub agreement: IcdDeactivationAgreement,
    /// Toelichting gemaakte afspraken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discussed_on: Option<FhirDate>,
}

/// 5b. Preferred place of death with explanation; "other" may name the place.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlaceOfDeathWish {
    pub preference: Answer<PlaceOfDeath>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
}

/// 5c. Position regarding euthanasia with explanation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Euthanasia {
    pub position: EuthanasiaPosition,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
}

/// 7a/7b. Earlier recorded treatment agreements.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EarlierAgreements {
    /// 7a. Heeft de patiënt eerder behandelafspraken vastgelegd?
    pub recorded: YesNoUnknown,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    /// 7b. Do they hold other wishes than this record? (asked only when 7a is yes)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub differ_from_current: Option<YesNoUnknown>,
}

/// An attached document (e.g. the scanned declaration), base64 as FHIR Attachment carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Document {
    pub content_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Base64 of the document bytes (checked to decode at intake).
    pub data: String,
}

/// A wilsverklaring (advance directive).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdvanceDirective {
    #[serde(rename = "type")]
    pub kind: AdvanceDirectiveType,
    /// WilsverklaringDatum.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<FhirDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<Document>,
}

/// A treatment directive or advance directive that is not in force: not `active`, or active with a
/// `provision.period` that ended before the date filled in (before today when the record has none).
/// It keeps the directive exactly as it was written, so that it can be shown (as no limit) and handed
/// on, but it lives outside `treatment_limits`, `icd_deactivation` and `advance_directives`: nothing
/// that reads the current limits can mistake it for one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DirectiveNotInForce {
    pub status: DirectiveStatus,
    /// `provision.period.end` (DatumBeeindigd), when the directive states one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_on: Option<FhirDate>,
    #[serde(flatten)]
    pub directive: RecordedDirective,
}

impl DirectiveNotInForce {
    /// Whether a directive with this status and end date is in force on `day`: only an active one
    /// whose end (if any) is not before that day.
    pub fn in_force(status: DirectiveStatus, ended_on: Option<&FhirDate>, day: &FhirDate) -> bool {
        status == DirectiveStatus::Active && !ended_on.is_some_and(|end| end.cmp_day(day).is_lt())
    }

    /// The day an end date is judged against: the date the form was filled in, else today (Dutch).
    pub fn judged_on(date_filled_in: Option<&FhirDate>) -> FhirDate {
        date_filled_in.cloned().unwrap_or_else(today::dutch_today)
    }
}

/// What a directive that is not in force was about, in the shape the record gives it when current.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordedDirective {
    /// One of the treatments 4a-f.
    TreatmentLimit(NamedTreatmentLimit),
    /// 4g.
    OtherTreatmentLimit(OtherTreatmentLimit),
    /// 4i.
    IcdDeactivation(IcdDeactivation),
    /// A wilsverklaring.
    AdvanceDirective(AdvanceDirective),
}

/// A limit on one of the named treatments (4a-f) with the treatment it is about.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NamedTreatmentLimit {
    /// One of [`NAMED_TREATMENTS`].
    pub treatment: Treatment,
    #[serde(flatten)]
    pub limit: TreatmentLimit,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restriction_text_exists_only_on_a_restricted_decision() {
        assert_eq!(
            Decision::new(DecisionCode::PerformWithRestrictions, None),
            Err(DecisionError::MissingRestriction)
        );
        assert_eq!(
            Decision::new(DecisionCode::DoNotPerform, Some("alleen kort".into())),
            Err(DecisionError::UnexpectedRestriction("do-not-perform"))
        );
        assert!(matches!(
            Decision::new(DecisionCode::PerformWithRestrictions, Some(" onbekend ".into())),
            Err(DecisionError::AmbiguousRestriction(_))
        ));
        let d = Decision::new(DecisionCode::PerformWithRestrictions, Some("max. 3 dagen".into())).unwrap();
        assert_eq!(d.restriction(), Some("max. 3 dagen"));
        assert_eq!(d.code(), DecisionCode::PerformWithRestrictions);
    }

    #[test]
    fn decision_serialises_flat() {
        let limit = TreatmentLimit {
            decision: Decision::PerformWithRestrictions { restriction: "geen intubatie".into() },
            explanation: None,
            discussed_on: None,
        };
        let json = serde_json::to_value(&limit).unwrap();
        assert_eq!(json, serde_json::json!({"decision": "perform-with-restrictions", "restriction": "geen intubatie"}));
    }
}
