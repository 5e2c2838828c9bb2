//! Proptest strategies for valid uniform ACP records, for every test that needs arbitrary records
//! (the uniform JSON round trip here; clinical safety tests of the FHIR and QuestionnaireResponse outputs).
//!
//! [`arb_record`] covers every field and every coded answer, yet only generates records the form allows,
//! so that `validate::rules::check` finds no error in them: BSNs pass the 11-proof (8 random digits plus
//! the computed check digit), no date lies after the date filled in, no advance directive predates the
//! birth date, 7b is only answered after 7a = yes, there is no ICD agreement when 4h says "no ICD", and no
//! restriction text reads as "Onbekend", and a directive not in force is never active unless its end
//! lies before the date filled in. The form's conditional items are followed too (the ICD's product
//! type only with an ICD, no separate first contact when the representative is it), so outputs that
//! follow the form's enableWhen carry the whole record. Texts are non-empty and trimmed, and deliberately
//! contain what renderers must escape: Dutch diacritics, quotes, Edifact's `' + : ?`, XML's `< > &`,
//! and (in multi-line texts) newlines.
//!
//! The larger parts are boxed (`.boxed()`): unboxed, a record's value tree is one value of several
//! hundred kilobytes built on the stack, which overflows a test thread's 2 MiB stack as soon as a test
//! combines `arb_record()` with another strategy.

use acp_gateway::mappings;
use acp_gateway::record::*;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

/// Free text on one line: names, identifier values, titles, "Anders, namelijk" texts.
pub fn arb_line() -> impl Strategy<Value = String> {
    "[A-Za-z0-9ëïéèöüÉĲ'\"+:?&<>]([ A-Za-z0-9ëïéèöüçÉĲ€'\"+:?&<>().,/-]{0,30}[A-Za-z0-9ëïé'\"+:?&<>.)])?"
}

/// Free text that may span lines: explanations, wishes, restrictions.
pub fn arb_text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9ëïéèöüÉĲ'\"+:?&<>]([ \nA-Za-z0-9ëïéèöüçÉĲ€'\"+:?&<>().,/-]{0,60}[A-Za-z0-9ëïé'\"+:?&<>.)])?"
}

/// Any answer of a coded item.
pub fn arb_coded<T: Coded>() -> impl Strategy<Value = T> {
    select(T::ALL)
}

/// A coded answer; "other" sometimes carries its "Anders, namelijk" text, no other answer ever does.
pub fn arb_answer<T: Coded>() -> impl Strategy<Value = Answer<T>> {
    (arb_coded::<T>(), option::of(arb_line())).prop_map(|(code, text)| {
        let text = text.filter(|_| code.is_other());
        Answer::new(code, text).unwrap_or_else(|_| Answer::code(code))
    })
}

/// A BSN that passes the 11-proof: 8 random digits and the check digit that completes them (the eight
/// digits for which that would be 10 have no BSN and are skipped, as is 000000000).
pub fn arb_bsn() -> impl Strategy<Value = Bsn> {
    proptest::array::uniform8(0u32..10).prop_filter_map("these 8 digits have no valid check digit", |d| {
        let sum: u32 = d.iter().zip((2..=9).rev()).map(|(digit, weight)| digit * weight).sum();
        let check = sum % 11;
        if check == 10 {
            return None;
        }
        let text: String = d.iter().chain([check].iter()).filter_map(|x| char::from_digit(*x, 10)).collect();
        Bsn::parse(&text).ok()
    })
}

pub fn arb_agb() -> impl Strategy<Value = Agb> {
    "[0-9]{8}".prop_filter_map("8 digits are an AGB code", |s| Agb::parse(&s).ok())
}

/// Identifier systems of other systems than the patient's BSN (hospital numbers, ...).
const PATIENT_SYSTEMS: &[&str] = &[
    "http://ziekenhuis-rivierenland.example/fhir/NamingSystem/patientnummer",
    "urn:oid:2.16.840.1.113883.2.4.3.999.7.1",
];
/// Identifier systems of a professional other than AGB (UZI, BIG).
const PROFESSIONAL_SYSTEMS: &[&str] =
    &["http://fhir.nl/fhir/NamingSystem/uzi-nr-pers", "http://fhir.nl/fhir/NamingSystem/big"];

fn arb_identifiers(systems: &'static [&'static str]) -> impl Strategy<Value = Vec<Identifier>> {
    vec((select(systems), arb_line()).prop_map(|(s, value)| Identifier { system: s.to_owned(), value }), 0..3)
}

pub fn arb_name() -> impl Strategy<Value = Name> {
    (option::of(arb_line()), option::of(arb_line()), option::of(arb_line())).prop_map(|(given, prefix, family)| Name {
        given,
        prefix,
        family,
    })
}

// --- dates -------------------------------------------------------------------------------------------

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub use acp_gateway::record::date::days_from_civil;

/// The calendar date of a day number (inverse of [`days_from_civil`]).
pub use acp_gateway::record::date::civil_from_days;

/// How precisely a date is written: FHIR allows a year, a month, a day or a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    Year,
    Month,
    Day,
    DateTime,
}

const ALL_PRECISIONS: &[Precision] = &[Precision::Year, Precision::Month, Precision::Day, Precision::DateTime];
/// A birth date is a date, never a moment.
const DATE_PRECISIONS: &[Precision] = &[Precision::Year, Precision::Month, Precision::Day];
const DAY_PRECISIONS: &[Precision] = &[Precision::Day, Precision::DateTime];
const ZONES: &[&str] = &["Z", "+01:00", "+02:00", "-05:00", "+05:30", "+14:00", "-12:00"];

/// A date on day `day` written at one of `precisions`. Writing a day less precisely never moves it past
/// a later day at any shared precision, so the bounds hold whatever precision is chosen.
pub fn arb_date_on(day: i64, precisions: &'static [Precision]) -> impl Strategy<Value = FhirDate> {
    (select(precisions), 0u32..24, 0u32..60, 0u32..60, option::of(0u32..1000), select(ZONES))
        .prop_filter_map("a generated date parses", move |(precision, h, mi, s, fraction, zone)| {
            let (y, m, d) = civil_from_days(day);
            let text = match precision {
                Precision::Year => format!("{y:04}"),
                Precision::Month => format!("{y:04}-{m:02}"),
                Precision::Day => format!("{y:04}-{m:02}-{d:02}"),
                Precision::DateTime => {
                    let fraction = fraction.map(|f| format!(".{f:03}")).unwrap_or_default();
                    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}{fraction}{zone}")
                }
            };
            FhirDate::parse(&text).ok()
        })
        .boxed()
}

/// A date between two day numbers (inclusive), at any precision.
pub fn arb_date_between(first: i64, last: i64) -> impl Strategy<Value = FhirDate> {
    (first..=last.max(first)).prop_flat_map(|day| arb_date_on(day, ALL_PRECISIONS))
}

// --- the parts of the record -------------------------------------------------------------------------

pub fn arb_patient(birth_day: i64) -> impl Strategy<Value = Patient> {
    (
        option::of(arb_bsn()),
        arb_identifiers(PATIENT_SYSTEMS),
        (arb_name(), arb_line()),
        arb_date_on(birth_day, DATE_PRECISIONS),
    )
        .prop_map(|(bsn, other_identifiers, (name, family), birth_date)| Patient {
            bsn,
            other_identifiers,
            // The family name is required of a complete record.
            name: Name { family: Some(family), ..name },
            birth_date: Some(birth_date),
        })
        .boxed()
}

pub fn arb_professional() -> impl Strategy<Value = Professional> {
    (arb_name(), option::of(arb_coded()), option::of(arb_agb()), arb_identifiers(PROFESSIONAL_SYSTEMS))
        .prop_map(|(name, function, agb, other_identifiers)| Professional { name, function, agb, other_identifiers })
        .boxed()
}

pub fn arb_phone() -> impl Strategy<Value = Phone> {
    ("\\+?[0-9]{2,4}[ -]?[0-9]{6,8}", option::of(arb_coded()), option::of(arb_coded()), option::of(arb_line()))
        .prop_map(|(number, telecom_type, number_use, comment)| Phone { number, telecom_type, number_use, comment })
}

pub fn arb_email() -> impl Strategy<Value = Email> {
    ("[a-z]{1,8}(\\.[a-z]{1,8})?@[a-z]{2,10}\\.(nl|com|example)", option::of(arb_coded()))
        .prop_map(|(address, email_use)| Email { address, email_use })
}

pub fn arb_contact_person() -> impl Strategy<Value = ContactPerson> {
    (arb_name(), vec(arb_phone(), 0..3), vec(arb_email(), 0..3), option::of(arb_answer()))
        .prop_map(|(name, phones, emails, relationship)| ContactPerson { name, phones, emails, relationship })
        .boxed()
}

pub fn arb_representative() -> impl Strategy<Value = Representative> {
    (arb_contact_person(), vec(arb_answer(), 0..3), option::of(any::<bool>()))
        .prop_map(|(person, roles, is_first_contact)| Representative { person, roles, is_first_contact })
        .boxed()
}

pub fn arb_presence() -> impl Strategy<Value = Presence> {
    (any::<bool>(), vec(arb_answer(), 0..3), vec(arb_answer(), 0..3))
        .prop_map(|(patient, roles, relationships)| Presence { patient, roles, relationships })
        .boxed()
}

/// A restriction text: never one that reads as "Onbekend", which the form cannot tell from "unknown".
pub fn arb_restriction() -> impl Strategy<Value = String> {
    arb_text().prop_filter("a restriction must not read as 'Onbekend'", |t| {
        !mappings::get().is_text_marker("decision-unknown", t)
    })
}

pub fn arb_decision() -> impl Strategy<Value = Decision> {
    prop_oneof![
        Just(Decision::Perform),
        arb_restriction().prop_map(|restriction| Decision::PerformWithRestrictions { restriction }),
        Just(Decision::DoNotPerform),
        Just(Decision::Unknown),
    ]
}

/// A treatment limit discussed no later than `filled` (a day number).
pub fn arb_treatment_limit(filled: i64) -> impl Strategy<Value = TreatmentLimit> {
    (arb_decision(), option::of(arb_text()), option::of(arb_date_between(filled - 3 * 365, filled)))
        .prop_map(|(decision, explanation, discussed_on)| TreatmentLimit { decision, explanation, discussed_on })
        .boxed()
}

pub fn arb_treatment_limits(filled: i64) -> impl Strategy<Value = TreatmentLimits> {
    let slot = move || option::of(arb_treatment_limit(filled));
    let other = (option::of(arb_line()), arb_treatment_limit(filled))
        .prop_map(|(treatment, limit)| OtherTreatmentLimit { treatment, limit });
    ((slot(), slot(), slot(), slot(), slot(), slot()), vec(other, 0..3))
        .prop_map(
            |(
                (resuscitation, invasive_ventilation, icu_admission, hospital_admission, antibiotics, blood_products),
                other,
            )| {
                TreatmentLimits {
                    resuscitation,
                    invasive_ventilation,
                    icu_admission,
                    hospital_admission,
                    antibiotics,
                    blood_products,
                    other,
                }
            },
        )
        .boxed()
}

/// 4h and 4i together: the ICD's details only with an ICD, and no agreement about switching off an ICD
/// the patient does not have.
pub fn arb_icd_section(filled: i64) -> impl Strategy<Value = (Option<Icd>, Option<IcdDeactivation>)> {
    let icd = (arb_coded::<YesNoUnknown>(), option::of(arb_coded()), option::of(arb_text())).prop_map(
        |(present, product_type, explanation)| {
            let with_icd = present == YesNoUnknown::Yes;
            Icd {
                present,
                product_type: product_type.filter(|_| with_icd),
                explanation: explanation.filter(|_| with_icd),
            }
        },
    );
    let deactivation = (arb_coded(), option::of(arb_text()), option::of(arb_date_between(filled - 3 * 365, filled)))
        .prop_map(|(agreement, explanation, discussed_on)| IcdDeactivation { agreement, explanation, discussed_on });
    (option::of(icd), option::of(deactivation))
        .prop_map(|(icd, deactivation)| {
            let no_icd = icd.as_ref().is_some_and(|i| i.present == YesNoUnknown::No);
            (icd, deactivation.filter(|_| !no_icd))
        })
        .boxed()
}

pub fn arb_earlier_agreements() -> impl Strategy<Value = EarlierAgreements> {
    (arb_coded::<YesNoUnknown>(), option::of(arb_text()), option::of(arb_coded()))
        .prop_map(|(recorded, explanation, differ)| EarlierAgreements {
            recorded,
            explanation,
            // 7b is only asked when 7a is yes.
            differ_from_current: differ.filter(|_| recorded == YesNoUnknown::Yes),
        })
        .boxed()
}

pub fn arb_document() -> impl Strategy<Value = Document> {
    (
        select(&["application/pdf", "image/jpeg", "image/png", "text/plain"][..]),
        option::of(arb_line()),
        vec(any::<u8>(), 1..48),
    )
        .prop_map(|(content_type, title, bytes)| Document {
            content_type: content_type.to_owned(),
            title,
            data: BASE64.encode(bytes),
        })
        .boxed()
}

/// An advance directive made between the birth and the date filled in (day numbers).
pub fn arb_advance_directive(birth: i64, filled: i64) -> impl Strategy<Value = AdvanceDirective> {
    (arb_coded(), option::of(arb_date_between(birth, filled)), option::of(arb_text()), option::of(arb_document()))
        .prop_map(|(kind, date, comment, document)| AdvanceDirective { kind, date, comment, document })
        .boxed()
}

/// A directive that is not in force, about anything a directive can be about: a status other than
/// active (with or without an end date), or active with an end before the day filled in (day precision,
/// so that it is before that day at every shared precision).
pub fn arb_not_in_force(birth: i64, filled: i64) -> impl Strategy<Value = DirectiveNotInForce> {
    let named = (select(&NAMED_TREATMENTS[..]), arb_treatment_limit(filled))
        .prop_map(|(treatment, limit)| RecordedDirective::TreatmentLimit(NamedTreatmentLimit { treatment, limit }));
    let other = (option::of(arb_line()), arb_treatment_limit(filled))
        .prop_map(|(treatment, limit)| RecordedDirective::OtherTreatmentLimit(OtherTreatmentLimit { treatment, limit }));
    let icd = (arb_coded(), option::of(arb_text()), option::of(arb_date_between(filled - 3 * 365, filled))).prop_map(
        |(agreement, explanation, discussed_on)| {
            RecordedDirective::IcdDeactivation(IcdDeactivation { agreement, explanation, discussed_on })
        },
    );
    let advance = arb_advance_directive(birth, filled).prop_map(RecordedDirective::AdvanceDirective);
    let directive = prop_oneof![named, other, icd, advance];
    let not_active = DirectiveStatus::ALL.iter().copied().filter(|s| *s != DirectiveStatus::Active).collect::<Vec<_>>();
    let state = prop_oneof![
        (select(not_active), option::of(arb_date_between(filled - 3 * 365, filled + 2 * 365))),
        (filled - 3 * 365..filled)
            .prop_flat_map(|day| arb_date_on(day, DAY_PRECISIONS))
            .prop_map(|end| (DirectiveStatus::Active, Some(end))),
    ];
    (state, directive)
        .prop_map(|((status, ended_on), directive)| DirectiveNotInForce { status, ended_on, directive })
        .boxed()
}

/// Section 5: wishes (care wishes, place of death, euthanasia, organ donation).
fn arb_wishes(
) -> impl Strategy<Value = (Option<String>, Option<PlaceOfDeathWish>, Option<Euthanasia>, Option<YesNoUnknown>)> {
    (
        option::of(arb_text()),
        option::of(
            (arb_answer(), option::of(arb_text()))
                .prop_map(|(preference, explanation)| PlaceOfDeathWish { preference, explanation }),
        ),
        option::of(
            (arb_coded(), option::of(arb_text()))
                .prop_map(|(position, explanation)| Euthanasia { position, explanation }),
        ),
        option::of(arb_coded()),
    )
        .boxed()
}

/// The first day a generated form may be filled in (2015-01-01) and the span after it (about 15 years).
const FIRST_FILLED_DAY: (i64, i64, i64) = (2015, 1, 1);
const FILLED_SPAN_DAYS: i64 = 15 * 365;
/// Patients are 0 to 110 years old.
const MAX_AGE_DAYS: i64 = 110 * 365;

/// A complete, valid uniform record: required items always present, every other item sometimes.
pub fn arb_record() -> impl Strategy<Value = AcpRecord> {
    let first = days_from_civil(FIRST_FILLED_DAY.0, FIRST_FILLED_DAY.1, FIRST_FILLED_DAY.2);
    (first..first + FILLED_SPAN_DAYS, 0..=MAX_AGE_DAYS)
        .prop_flat_map(|(filled, age)| {
            let birth = filled - age;
            let people = (
                arb_patient(birth),
                option::of(arb_professional()),
                option::of(
                    (option::of(any::<bool>()), option::of(arb_text()))
                        .prop_map(|(capable, explanation)| LegalCapacity { capable, explanation }),
                ),
                option::of(arb_representative()),
                option::of(arb_contact_person()),
                option::of(arb_presence()),
            );
            let treatment = (option::of(arb_coded()), arb_treatment_limits(filled), arb_icd_section(filled));
            let rest = (
                arb_wishes(),
                option::of(arb_text()),
                option::of(arb_earlier_agreements()),
                option::of(any::<bool>()),
                option::of(arb_coded()),
                vec(arb_advance_directive(birth, filled), 0..4),
                vec(arb_not_in_force(birth, filled), 0..3),
            );
            (arb_date_on(filled, DAY_PRECISIONS), people, treatment, rest).prop_map(
                |(date_filled_in, people, treatment, rest)| {
                    let (patient, conducted_by, legal_capacity, representative, first_contact, present) = people;
                    let (medical_policy_goal, treatment_limits, (icd, icd_deactivation)) = treatment;
                    let (
                        wishes,
                        sense_of_purpose,
                        earlier_agreements,
                        relatives_informed,
                        sharing_consent,
                        advance_directives,
                        directives_not_in_force,
                    ) = rest;
                    let (care_wishes, place_of_death, euthanasia, organ_donation_registered) = wishes;
                    // 1e-g is asked only when the representative is not the first contact (984 = Nee).
                    let rep_is_first = representative.as_ref().and_then(|r| r.is_first_contact) == Some(true);
                    AcpRecord {
                        date_filled_in: Some(date_filled_in),
                        patient,
                        conducted_by,
                        legal_capacity,
                        representative,
                        first_contact: first_contact.filter(|_| !rep_is_first),
                        present,
                        medical_policy_goal,
                        treatment_limits,
                        icd,
                        icd_deactivation,
                        care_wishes,
                        place_of_death,
                        euthanasia,
                        organ_donation_registered,
                        sense_of_purpose,
                        earlier_agreements,
                        relatives_informed,
                        sharing_consent,
                        advance_directives,
                        directives_not_in_force,
                    }
                },
            )
        })
        .boxed()
}
