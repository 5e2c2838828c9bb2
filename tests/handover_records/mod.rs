//! Hand-built ACP records shared by the letter and Edifact tests (`mod handover_records;`).
//!
//! Built field by field so that every treatment limit meets every decision, every coded item meets its
//! "unknown" answer, and free texts carry the characters that Edifact must escape or transliterate.

#![allow(dead_code)] // each test crate uses its own part

use acp_gateway::record::*;

pub fn date(s: &str) -> FhirDate {
    FhirDate::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

pub fn name(given: &str, prefix: Option<&str>, family: &str) -> Name {
    Name { given: Some(given.into()), prefix: prefix.map(Into::into), family: Some(family.into()) }
}

pub const DECISIONS: [DecisionCode; 4] =
    [DecisionCode::Perform, DecisionCode::PerformWithRestrictions, DecisionCode::DoNotPerform, DecisionCode::Unknown];

/// The restriction text of a treatment: distinct per treatment, with Edifact's service characters
/// (`? ' + :`), a non-ASCII letter and a quote that must survive every channel.
pub fn restriction_for(t: &str) -> String {
    format!("Alleen bij {t}: max. 3 dagen, géén 'tube' + overleg? ja")
}

pub fn decision(code: DecisionCode, treatment: &str) -> Decision {
    let text = (code == DecisionCode::PerformWithRestrictions).then(|| restriction_for(treatment));
    Decision::new(code, text).unwrap_or_else(|e| panic!("{e}"))
}

pub fn limit(code: DecisionCode, treatment: &str) -> TreatmentLimit {
    TreatmentLimit {
        decision: decision(code, treatment),
        explanation: Some(format!("Toelichting bij {treatment}")),
        discussed_on: Some(date("2025-05-20")),
    }
}

/// The name 4g gives its treatment in these records.
pub const OTHER_TREATMENT: &str = "Dialyse";

/// A complete record; treatment `j` of 4a-f gets decision `DECISIONS[(shift + j) % 4]`, 4g the next,
/// so that four shifts meet every treatment with every decision.
pub fn full(shift: usize) -> AcpRecord {
    let mut r = AcpRecord {
        date_filled_in: Some(date("2025-06-02T10:30:00+02:00")),
        patient: Patient {
            bsn: Some(Bsn::parse("999990019").unwrap()),
            other_identifiers: vec![],
            name: name("Grietje Maria", Some("van der"), "Bakker"),
            birth_date: Some(date("1941-03-09")),
        },
        conducted_by: Some(Professional {
            name: name("Anna", None, "Jansen"),
            function: Some(ProfessionalFunction::GeneralPractitioner),
            agb: None,
            other_identifiers: vec![],
        }),
        legal_capacity: Some(LegalCapacity { capable: Some(false), explanation: Some("Dementie, matig".into()) }),
        representative: Some(Representative {
            person: ContactPerson {
                name: name("Pieter", None, "Bakker"),
                phones: vec![Phone {
                    number: "06-12345678".into(),
                    telecom_type: Some(TelecomType::Mobile),
                    number_use: Some(NumberUse::Home),
                    comment: Some("bereikbaar na 18 uur".into()),
                }],
                emails: vec![Email { address: "p.bakker@example.nl".into(), email_use: Some(EmailUse::Private) }],
                relationship: Some(Answer::code(Relationship::Son)),
            },
            roles: vec![Answer::code(ContactRole::Mentor)],
            is_first_contact: Some(false),
        }),
        first_contact: Some(ContactPerson {
            name: name("Ineke", None, "de Wit"),
            phones: vec![Phone {
                number: "020-7654321".into(),
                telecom_type: Some(TelecomType::Landline),
                number_use: None,
                comment: None,
            }],
            emails: vec![],
            relationship: Some(Answer::new(Relationship::Other, Some("buurvrouw".into())).unwrap()),
        }),
        present: Some(Presence {
            patient: true,
            roles: vec![Answer::code(ContactRole::Mentor)],
            relationships: vec![
                Answer::code(Relationship::Son),
                Answer::new(Relationship::Other, Some("buurvrouw".into())).unwrap(),
            ],
        }),
        medical_policy_goal: Some(MedicalPolicyGoal::PalliativeSymptomRelief),
        icd: Some(Icd {
            present: YesNoUnknown::Yes,
            product_type: Some(IcdProductType::Icd),
            explanation: Some("Sinds 2019".into()),
        }),
        icd_deactivation: Some(IcdDeactivation {
            agreement: IcdDeactivationAgreement::Yes,
            explanation: Some("Uitzetten bij start palliatieve sedatie".into()),
            discussed_on: Some(date("2025-05-21")),
        }),
        care_wishes: Some("Wil graag thuis blijven.\nImam bezoekt haar wekelijks.".into()),
        place_of_death: Some(PlaceOfDeathWish {
            preference: Answer::new(PlaceOfDeath::Other, Some("bij haar dochter in Gent".into())).unwrap(),
            explanation: Some("Dochter heeft ruimte".into()),
        }),
        euthanasia: Some(Euthanasia {
            position: EuthanasiaPosition::NoEuthanasia,
            explanation: Some("Geloofsovertuiging".into()),
        }),
        organ_donation_registered: Some(YesNoUnknown::No),
        sense_of_purpose: Some("Haar kleinkinderen; de tuin; muziek van Bach.".into()),
        earlier_agreements: Some(EarlierAgreements {
            recorded: YesNoUnknown::Yes,
            explanation: Some("Niet-reanimerenpenning sinds 2020".into()),
            differ_from_current: Some(YesNoUnknown::No),
        }),
        relatives_informed: Some(true),
        sharing_consent: Some(SharingConsent::Agreed),
        advance_directives: vec![AdvanceDirective {
            kind: AdvanceDirectiveType::DoNotResuscitate,
            date: Some(date("2020-02-01")),
            comment: Some("Penning gedragen".into()),
            document: Some(Document {
                content_type: "application/pdf".into(),
                title: Some("NR-verklaring.pdf".into()),
                data: "JVBERi0=".into(),
            }),
        }],
        ..AcpRecord::default()
    };
    for (j, t) in NAMED_TREATMENTS.iter().enumerate() {
        let code = DECISIONS[(shift + j) % DECISIONS.len()];
        *r.treatment_limits.slot_mut(*t).unwrap() = Some(limit(code, t.key()));
    }
    let code = DECISIONS[(shift + NAMED_TREATMENTS.len()) % DECISIONS.len()];
    r.treatment_limits
        .other
        .push(OtherTreatmentLimit { treatment: Some(OTHER_TREATMENT.into()), limit: limit(code, OTHER_TREATMENT) });
    r
}

/// Four records that together give every treatment (4a-g) every decision.
pub fn every_decision() -> Vec<AcpRecord> {
    (0..DECISIONS.len()).map(full).collect()
}

/// Every coded item answered "unknown" (Onbekend / Nog onbekend); free-text items left out.
pub fn all_unknown() -> AcpRecord {
    let mut r = AcpRecord {
        date_filled_in: Some(date("2025-06-02")),
        patient: Patient { bsn: Some(Bsn::parse("123456782").unwrap()), ..Patient::default() },
        medical_policy_goal: Some(MedicalPolicyGoal::Unknown),
        icd: Some(Icd { present: YesNoUnknown::Unknown, product_type: None, explanation: None }),
        place_of_death: Some(PlaceOfDeathWish { preference: Answer::code(PlaceOfDeath::Unknown), explanation: None }),
        euthanasia: Some(Euthanasia { position: EuthanasiaPosition::Unknown, explanation: None }),
        organ_donation_registered: Some(YesNoUnknown::Unknown),
        earlier_agreements: Some(EarlierAgreements {
            recorded: YesNoUnknown::Unknown,
            explanation: None,
            differ_from_current: None,
        }),
        sharing_consent: Some(SharingConsent::Unknown),
        ..AcpRecord::default()
    };
    for t in NAMED_TREATMENTS {
        *r.treatment_limits.slot_mut(t).unwrap() =
            Some(TreatmentLimit { decision: Decision::Unknown, explanation: None, discussed_on: None });
    }
    r
}

/// The example records of `fixtures/*.json` (uniform record JSON), by file name.
pub fn fixtures() -> Vec<(String, AcpRecord)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let intake = acp_gateway::intake::read(&std::fs::read(&p).unwrap());
            let record =
                intake.valid_record().unwrap_or_else(|| panic!("fixture {name} is not a valid record")).clone();
            (name, record)
        })
        .collect()
}
