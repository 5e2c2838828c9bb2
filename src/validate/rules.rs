//! Record-level rules: what no single field shows.
//!
//! Problems are located by a JSON pointer into the uniform record; the caller passes a `locate`
//! function that translates it into the input's own terms (a linkId for a QuestionnaireResponse, a
//! resource for FHIR), so an integrator is pointed at what they sent.

use std::cmp::Ordering;

use crate::record::*;
use crate::validate::{IssueType, Location, Problem, Severity};

/// How much of the form an input claims to carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completeness {
    /// A whole form (uniform record JSON, QuestionnaireResponse): the header items are required.
    Complete,
    /// A single FHIR resource, or a Bundle with part of the form: what is missing is only a warning.
    Partial,
}

impl Completeness {
    /// What a record itself shows: a record without one of the header items a whole form must carry
    /// can only have come from a partial input. Writers use it to mark their output partial
    /// (`"partial": true`, a QuestionnaireResponse `in-progress`), so that it is accepted again.
    pub fn of(record: &AcpRecord) -> Completeness {
        let whole = record.date_filled_in.is_some()
            && record.patient.name.family.is_some()
            && record.patient.birth_date.is_some();
        if whole {
            Completeness::Complete
        } else {
            Completeness::Partial
        }
    }
}

/// The form items a complete record must carry, and those whose absence is worth a warning, with the
/// record pointer and the form's own label.
const REQUIRED: &[(&str, &str)] = &[
    ("/date_filled_in", "Datum van invullen"),
    ("/patient/name/family", "Naam patiënt (achternaam)"),
    ("/patient/birth_date", "Geboortedatum patiënt"),
];

pub fn check(record: &AcpRecord, completeness: Completeness, locate: &dyn Fn(&str) -> Location) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut push = |severity, kind, pointer: &str, message: String| {
        out.push(Problem::new(severity, kind, locate(pointer), message));
    };

    // --- presence ------------------------------------------------------------------------------
    let required_severity = match completeness {
        Completeness::Complete => Severity::Error,
        Completeness::Partial => Severity::Warning,
    };
    let present = |pointer: &str| -> bool {
        match pointer {
            "/date_filled_in" => record.date_filled_in.is_some(),
            "/patient/name/family" => record.patient.name.family.is_some(),
            "/patient/birth_date" => record.patient.birth_date.is_some(),
            _ => true,
        }
    };
    for (pointer, label) in REQUIRED {
        if !present(pointer) {
            push(required_severity, IssueType::Required, pointer, format!("{label} is missing"));
        }
    }
    for (pointer, label, missing) in recommended(record) {
        if missing {
            push(
                Severity::Warning,
                IssueType::Required,
                &pointer,
                format!("{label} is not recorded; outputs will state it as not recorded (the form asks 'nog onbekend' when a topic was not discussed)"),
            );
        }
    }

    // --- dates: nothing happens after the form was filled in, nobody is born after it ----------------
    if let Some(filled) = &record.date_filled_in {
        let mut not_after = |pointer: &str, label: &str, d: &FhirDate| {
            if d.cmp_day(filled) == Ordering::Greater {
                push(
                    Severity::Error,
                    IssueType::Invariant,
                    pointer,
                    format!("{label} ({d}) is after the date the form was filled in ({filled})"),
                );
            }
        };
        if let Some(b) = &record.patient.birth_date {
            not_after("/patient/birth_date", "the birth date", b);
        }
        for t in NAMED_TREATMENTS {
            if let Some(d) = record.treatment_limits.get(t).and_then(|l| l.discussed_on.as_ref()) {
                let p = format!("/treatment_limits/{}/discussed_on", TreatmentLimits::field_name(t));
                not_after(&p, "the discussion date", d);
            }
        }
        for (i, o) in record.treatment_limits.other.iter().enumerate() {
            if let Some(d) = &o.limit.discussed_on {
                not_after(&format!("/treatment_limits/other/{i}/discussed_on"), "the discussion date", d);
            }
        }
        if let Some(d) = record.icd_deactivation.as_ref().and_then(|i| i.discussed_on.as_ref()) {
            not_after("/icd_deactivation/discussed_on", "the discussion date", d);
        }
        for (i, a) in record.advance_directives.iter().enumerate() {
            if let Some(d) = &a.date {
                not_after(&format!("/advance_directives/{i}/date"), "the date of the advance directive", d);
            }
        }
    }
    if let Some(b) = &record.patient.birth_date {
        for (i, a) in record.advance_directives.iter().enumerate() {
            if let Some(d) = &a.date {
                if d.cmp_day(b) == Ordering::Less {
                    push(
                        Severity::Error,
                        IssueType::Invariant,
                        &format!("/advance_directives/{i}/date"),
                        format!("the advance directive's date ({d}) is before the patient's birth date ({b})"),
                    );
                }
            }
        }
    }

    // --- the form's conditional items (enableWhen) ---------------------------------------------------
    if let Some(ea) = &record.earlier_agreements {
        if ea.differ_from_current.is_some() && ea.recorded != YesNoUnknown::Yes {
            push(
                Severity::Error,
                IssueType::Invariant,
                "/earlier_agreements/differ_from_current",
                "7b (do earlier agreements differ?) is only asked when 7a says earlier agreements were recorded ('yes')".into(),
            );
        }
    }
    if let Some(icd) = &record.icd {
        if icd.present != YesNoUnknown::Yes && (icd.product_type.is_some() || icd.explanation.is_some()) {
            push(
                Severity::Warning,
                IssueType::Invariant,
                "/icd",
                "4h: the ICD's product type and explanation are only asked when the patient has an ICD".into(),
            );
        }
        if icd.present == YesNoUnknown::No && record.icd_deactivation.is_some() {
            push(
                Severity::Error,
                IssueType::Invariant,
                "/icd_deactivation",
                "4i: there is an agreement about switching off an ICD, but 4h says the patient has no ICD".into(),
            );
        }
    }
    if let Some(rep) = &record.representative {
        if rep.is_first_contact == Some(true) && record.first_contact.is_some() {
            push(
                Severity::Warning,
                IssueType::Invariant,
                "/first_contact",
                "1d says the representative is the first contact person, yet a separate first contact (1e-g) is given".into(),
            );
        }
    }
    if record.legal_capacity.as_ref().and_then(|l| l.capable) == Some(false) && record.representative.is_none() {
        // ACP-Patient-1 (a warning in the profile too).
        push(
            Severity::Warning,
            IssueType::Invariant,
            "/representative",
            "the patient is not legally capable of treatment decisions, but no legal representative is recorded (ACP-Patient-1)".into(),
        );
    }
    // Length limits (issue 17): one check over the record covers all three input forms.
    out.extend(super::limits::check_record(record, locate));
    out
}

/// How the "not recorded" warning names the patient's BSN (its message starts with this).
const BSN_LABEL: &str = "The patient's BSN";

/// Whether `p` is the warning that the record carries no BSN: the service drops it when the
/// handover's envelope (`patient.bsn`) supplies the BSN, as it may for a QuestionnaireResponse.
pub fn is_missing_bsn_warning(p: &Problem) -> bool {
    p.severity == Severity::Warning && p.message.starts_with(BSN_LABEL) && p.message.contains("is not recorded")
}

/// Items whose absence deserves a warning, with pointer, form label and whether they are missing.
fn recommended(r: &AcpRecord) -> Vec<(String, &'static str, bool)> {
    let mut v = vec![
        ("/patient/bsn".to_owned(), BSN_LABEL, r.patient.bsn.is_none()),
        ("/conducted_by".to_owned(), "Gesprek gevoerd door (the professional)", r.conducted_by.is_none()),
        ("/legal_capacity".to_owned(), "1. Wilsbekwaamheid", r.legal_capacity.is_none()),
        ("/medical_policy_goal".to_owned(), "3. Doel van medisch beleid", r.medical_policy_goal.is_none()),
    ];
    let labels = [
        "4a. Reanimatie",
        "4b. Kunstmatige invasieve beademing",
        "4c. Opname op intensive care",
        "4d. Opname in ziekenhuis",
        "4e. Behandeling met antibiotica",
        "4f. Toediening van een bloedproduct",
    ];
    for (t, label) in NAMED_TREATMENTS.iter().zip(labels) {
        v.push((
            format!("/treatment_limits/{}", TreatmentLimits::field_name(*t)),
            label,
            r.treatment_limits.get(*t).is_none(),
        ));
    }
    v.extend([
        ("/icd".to_owned(), "4h. Heeft de patiënt een ICD?", r.icd.is_none()),
        ("/care_wishes".to_owned(), "5a. Specifieke wensen", r.care_wishes.is_none()),
        ("/place_of_death".to_owned(), "5b. Gewenste plek van overlijden", r.place_of_death.is_none()),
        ("/euthanasia".to_owned(), "5c. Euthanasie standpunt", r.euthanasia.is_none()),
        ("/organ_donation_registered".to_owned(), "5d. Orgaandonatie in donorregister", r.organ_donation_registered.is_none()),
        ("/sense_of_purpose".to_owned(), "6. Wat verder nog belangrijk is", r.sense_of_purpose.is_none()),
        ("/earlier_agreements".to_owned(), "7. Eerder vastgelegde behandelwensen", r.earlier_agreements.is_none()),
        ("/relatives_informed".to_owned(), "8a. Patiënt geïnformeerd", r.relatives_informed.is_none()),
        (
            "/sharing_consent".to_owned(),
            "8b. Akkoord met delen (without it no route will be delivered)",
            r.sharing_consent.is_none(),
        ),
    ]);
    if r.icd.as_ref().is_some_and(|i| i.present == YesNoUnknown::Yes) {
        v.push(("/icd_deactivation".to_owned(), "4i. Afspraak uitzetten ICD", r.icd_deactivation.is_none()));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pointer(p: &str) -> Location {
        Location::JsonPointer(p.to_owned())
    }

    #[test]
    fn empty_complete_record_misses_the_header() {
        let problems = check(&AcpRecord::default(), Completeness::Complete, &pointer);
        let errors: Vec<_> = problems.iter().filter(|p| p.severity == Severity::Error).collect();
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(errors.iter().any(|p| p.location == pointer("/date_filled_in")));
    }

    #[test]
    fn partial_record_only_warns() {
        let problems = check(&AcpRecord::default(), Completeness::Partial, &pointer);
        assert!(problems.iter().all(|p| p.severity == Severity::Warning));
        assert!(problems.iter().any(|p| p.location == pointer("/treatment_limits/resuscitation")));
    }

    #[test]
    fn discussion_after_filling_in_is_an_error() {
        let mut r = AcpRecord { date_filled_in: Some(FhirDate::parse("2024-03-01").unwrap()), ..Default::default() };
        r.treatment_limits.resuscitation = Some(TreatmentLimit {
            decision: Decision::DoNotPerform,
            explanation: None,
            discussed_on: Some(FhirDate::parse("2024-03-02").unwrap()),
        });
        let problems = check(&r, Completeness::Partial, &pointer);
        let p = problems.iter().find(|p| p.severity == Severity::Error).expect("an error");
        assert_eq!(p.location, pointer("/treatment_limits/resuscitation/discussed_on"));
    }

    #[test]
    fn earlier_agreements_differ_needs_yes() {
        let r = AcpRecord {
            earlier_agreements: Some(EarlierAgreements {
                recorded: YesNoUnknown::No,
                explanation: None,
                differ_from_current: Some(YesNoUnknown::Yes),
            }),
            ..Default::default()
        };
        let problems = check(&r, Completeness::Partial, &pointer);
        assert!(problems
            .iter()
            .any(|p| p.severity == Severity::Error && p.location == pointer("/earlier_agreements/differ_from_current")));
    }
}
