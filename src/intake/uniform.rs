//! Intake of the uniform ACP record JSON: the project's own shape of the national form, exactly what
//! `serde_json::to_value(&AcpRecord)` produces (schema in `mappings/acp-record.schema.json`).
//!
//! The reader is hand-written on the [`Obj`] cursor rather than a serde `Deserialize`, because an
//! integrator fixing a message wants every problem at once, each at its JSON pointer, and because the
//! record's types only admit valid values: a BSN is parsed (11-proof), a restriction text can only sit on
//! "Ja maar met beperkingen", an "Anders, namelijk" text only on "Anders". Whatever breaks those rules is
//! reported where the sender wrote it, and reading goes on; the record returned holds what could be read.
//!
//! Every object is closed with `finish(.., Severity::Error)`: this is our own format, so an unknown key is
//! a typo, and a typo in a treatment limit must not pass as "not recorded".

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::Value;

use crate::intake::cursor::{Obj, Path, Problems};
use crate::mappings;
use crate::record::*;
use crate::validate::rules::Completeness;
use crate::validate::{IssueType, Severity};

/// Reads a uniform record; problems go to `p`, the record holds what could be read.
/// `"partial": true` marks a record that carries only part of the form (the gateway writes it for a
/// record read from a single FHIR resource): the header items are then warnings, not errors.
pub fn completeness(v: &Value) -> Completeness {
    if v.get("partial") == Some(&Value::Bool(true)) {
        Completeness::Partial
    } else {
        Completeness::Complete
    }
}

pub fn read(v: &Value, p: &mut Problems) -> AcpRecord {
    let mut r = AcpRecord::default();
    let Some(o) = Obj::new(v, Path::pointer(), p) else {
        return r;
    };
    // Editors use `$schema` to find the schema; it carries nothing of the record.
    o.skip("$schema");
    // Read by [`completeness`]; here only checked to be a boolean.
    let _ = o.bool("partial", p);
    r.date_filled_in = o.date("date_filled_in", p);
    if let Some(patient) = object(&o, "patient", p, read_patient) {
        r.patient = patient;
    }
    r.conducted_by = object(&o, "conducted_by", p, read_professional);
    r.legal_capacity = object(&o, "legal_capacity", p, |o, p| LegalCapacity {
        capable: o.bool("capable", p),
        explanation: o.str("explanation", p),
    });
    r.representative = object(&o, "representative", p, read_representative);
    r.first_contact = object(&o, "first_contact", p, read_contact_person);
    r.present = object(&o, "present", p, read_presence).flatten();
    r.medical_policy_goal = o.coded("medical_policy_goal", p);
    if let Some(limits) = object(&o, "treatment_limits", p, read_treatment_limits) {
        r.treatment_limits = limits;
    }
    r.icd = object(&o, "icd", p, |o, p| {
        let present = o.coded("present", p);
        let product_type = o.coded("product_type", p);
        let explanation = o.str("explanation", p);
        let present = require(o, "present", present, "4h (Heeft de patiënt een ICD?)", p)?;
        Some(Icd { present, product_type, explanation })
    })
    .flatten();
    r.icd_deactivation = object(&o, "icd_deactivation", p, read_icd_deactivation).flatten();
    r.care_wishes = o.str("care_wishes", p);
    r.place_of_death = object(&o, "place_of_death", p, |o, p| {
        let preference = object(o, "preference", p, read_answer).flatten();
        let explanation = o.str("explanation", p);
        let preference = require(o, "preference", preference, "5b (Voorkeursplek)", p)?;
        Some(PlaceOfDeathWish { preference, explanation })
    })
    .flatten();
    r.euthanasia = object(&o, "euthanasia", p, |o, p| {
        let position = o.coded("position", p);
        let explanation = o.str("explanation", p);
        let position = require(o, "position", position, "5c (Euthanasie standpunt)", p)?;
        Some(Euthanasia { position, explanation })
    })
    .flatten();
    r.organ_donation_registered = o.coded("organ_donation_registered", p);
    r.sense_of_purpose = o.str("sense_of_purpose", p);
    r.earlier_agreements = object(&o, "earlier_agreements", p, |o, p| {
        let recorded = o.coded("recorded", p);
        let explanation = o.str("explanation", p);
        let differ_from_current = o.coded("differ_from_current", p);
        let recorded = require(o, "recorded", recorded, "7a (Heeft de patiënt eerder behandelafspraken vastgelegd?)", p)?;
        Some(EarlierAgreements { recorded, explanation, differ_from_current })
    })
    .flatten();
    r.relatives_informed = o.bool("relatives_informed", p);
    r.sharing_consent = o.coded("sharing_consent", p);
    r.advance_directives = list(&o, "advance_directives", p, read_advance_directive);
    let day = DirectiveNotInForce::judged_on(r.date_filled_in.as_ref());
    let judged = if r.date_filled_in.is_some() { "the date filled in" } else { "today" };
    r.directives_not_in_force = list(&o, "directives_not_in_force", p, |o, p| read_not_in_force(o, p, &day, judged));
    o.finish(p, Severity::Error);
    r
}

/// Reads the object at `key` with `body`, then reports the keys `body` did not read.
fn object<'a, T>(o: &Obj<'a>, key: &str, p: &mut Problems, body: impl FnOnce(&Obj<'a>, &mut Problems) -> T) -> Option<T> {
    let inner = o.obj(key, p)?;
    let value = body(&inner, p);
    inner.finish(p, Severity::Error);
    Some(value)
}

/// Reads every object of the array at `key` with `body`; an element that cannot be read is left out
/// (its problems are reported), the others are kept.
fn list<'a, T>(
    o: &Obj<'a>,
    key: &str,
    p: &mut Problems,
    body: impl Fn(&Obj<'a>, &mut Problems) -> Option<T>,
) -> Vec<T> {
    let mut out = Vec::new();
    for (i, v) in o.array(key, p).into_iter().flatten().enumerate() {
        if let Some(item) = Obj::new(v, o.at(key).index(i), p) {
            out.extend(body(&item, p));
            item.finish(p, Severity::Error);
        }
    }
    out
}

/// Whether `key` holds anything: JSON `null` and blank text count as absent, as the cursor reads them.
fn given(o: &Obj<'_>, key: &str) -> bool {
    match o.map.get(key) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(_) => true,
    }
}

/// Passes `value` through, reporting a required item that is absent. An item that is present but could
/// not be read has been reported already and is not reported twice.
fn require<T>(o: &Obj<'_>, key: &str, value: Option<T>, label: &str, p: &mut Problems) -> Option<T> {
    if value.is_none() && !given(o, key) {
        p.error(IssueType::Required, &o.at(key), format!("'{key}' is required here: {label}"));
    }
    value
}

/// An identifier with its own validator (BSN, AGB), reported with the validator's message.
fn checked_id<T>(o: &Obj<'_>, key: &str, parse: fn(&str) -> Result<T, IdError>, p: &mut Problems) -> Option<T> {
    let raw = o.str(key, p)?;
    parse(&raw).map_err(|e| p.error(IssueType::Value, &o.at(key), e.to_string())).ok()
}

/// `{system, value}` identifiers of other systems. `dedicated` names the identifier (naming-system key
/// and pointer) that has its own checked field: given here it would bypass that check, so it is refused.
fn read_identifiers(o: &Obj<'_>, p: &mut Problems, dedicated: (&str, &str)) -> Vec<Identifier> {
    list(o, "other_identifiers", p, |o, p| {
        let system = o.str("system", p);
        let value = o.str("value", p);
        let system = require(o, "system", system, "the identifier's system (a URI)", p);
        let value = require(o, "value", value, "the identifier's value", p);
        let system = system.filter(|s| usable_system(o, s, dedicated, p));
        Some(Identifier { system: system?, value: value? })
    })
}

/// Whether an identifier system can be handed on: an absolute URI (FHIR's `Identifier.system`), and not
/// the system of an identifier that has its own, checked field.
fn usable_system(o: &Obj<'_>, system: &str, (ns_key, field): (&str, &str), p: &mut Problems) -> bool {
    let scheme = system.split_once(':').map_or("", |(scheme, _)| scheme);
    let absolute = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !absolute {
        p.error(
            IssueType::Value,
            &o.at("system"),
            format!("the identifier system {system:?} is not an absolute URI (e.g. urn:oid:… or http://…)"),
        );
        return false;
    }
    if mappings::get().naming_system(ns_key).matches(system) {
        p.error(
            IssueType::Invariant,
            &o.at("system"),
            format!("this identifier belongs in '{field}', where it is checked; do not list it among the other identifiers"),
        );
        return false;
    }
    true
}

fn read_name(o: &Obj<'_>, p: &mut Problems) -> Name {
    Name { given: o.str("given", p), prefix: o.str("prefix", p), family: o.str("family", p) }
}

fn read_patient(o: &Obj<'_>, p: &mut Problems) -> Patient {
    Patient {
        bsn: checked_id(o, "bsn", Bsn::parse, p),
        other_identifiers: read_identifiers(o, p, ("bsn", "/patient/bsn")),
        name: object(o, "name", p, read_name).unwrap_or_default(),
        birth_date: o.date("birth_date", p),
    }
}

fn read_professional(o: &Obj<'_>, p: &mut Problems) -> Professional {
    Professional {
        name: object(o, "name", p, read_name).unwrap_or_default(),
        function: o.coded("function", p),
        agb: checked_id(o, "agb", Agb::parse, p),
        other_identifiers: read_identifiers(o, p, ("agb", "/conducted_by/agb")),
    }
}

fn read_contact_person(o: &Obj<'_>, p: &mut Problems) -> ContactPerson {
    ContactPerson {
        name: object(o, "name", p, read_name).unwrap_or_default(),
        phones: list(o, "phones", p, |o, p| {
            let number = o.str("number", p);
            let telecom_type = o.coded("type", p);
            let number_use = o.coded("use", p);
            let comment = o.str("comment", p);
            let number = require(o, "number", number, "the telephone number (Telefoonnummer)", p)?;
            Some(Phone { number, telecom_type, number_use, comment })
        }),
        emails: list(o, "emails", p, |o, p| {
            let address = o.str("address", p);
            let email_use = o.coded("use", p);
            let address = require(o, "address", address, "the e-mail address (EmailAdres)", p)?;
            Some(Email { address, email_use })
        }),
        relationship: object(o, "relationship", p, read_answer).flatten(),
    }
}

fn read_representative(o: &Obj<'_>, p: &mut Problems) -> Representative {
    Representative {
        person: read_contact_person(o, p),
        roles: list(o, "roles", p, read_answer),
        is_first_contact: o.bool("is_first_contact", p),
    }
}

fn read_presence(o: &Obj<'_>, p: &mut Problems) -> Option<Presence> {
    let patient = o.bool("patient", p);
    let roles = list(o, "roles", p, read_answer);
    let relationships = list(o, "relationships", p, read_answer);
    // Whether the patient took part is never assumed: `false` would state that they were absent.
    let patient = require(o, "patient", patient, "2 (was the patient present? true or false)", p)?;
    Some(Presence { patient, roles, relationships })
}

/// A coded answer `{code, other}`; the "Anders, namelijk" text is accepted only on "other".
fn read_answer<T: Coded>(o: &Obj<'_>, p: &mut Problems) -> Option<Answer<T>> {
    let code = o.coded::<T>("code", p);
    let other = o.str("other", p);
    let code = require(o, "code", code, "the answer", p)?;
    match Answer::new(code, other) {
        Ok(a) => Some(a),
        Err(code) => {
            p.error(
                IssueType::Invariant,
                &o.at("other"),
                format!("an 'Anders, namelijk' text belongs only to the answer 'other'; this answer is '{}'", code.key()),
            );
            // The code itself was read; the record is refused anyway because of the error.
            Some(Answer::code(code))
        }
    }
}

fn read_treatment_limits(o: &Obj<'_>, p: &mut Problems) -> TreatmentLimits {
    let mut limits = TreatmentLimits::default();
    for t in NAMED_TREATMENTS {
        let value = object(o, TreatmentLimits::field_name(t), p, read_treatment_limit).flatten();
        if let Some(slot) = limits.slot_mut(t) {
            *slot = value;
        }
    }
    limits.other = list(o, TreatmentLimits::field_name(Treatment::Other), p, read_other_limit);
    limits
}

/// 4g: a limit with the name of its treatment.
fn read_other_limit(o: &Obj<'_>, p: &mut Problems) -> Option<OtherTreatmentLimit> {
    let treatment = o.str("treatment", p);
    let limit = read_treatment_limit(o, p)?;
    Some(OtherTreatmentLimit { treatment, limit })
}

fn read_icd_deactivation(o: &Obj<'_>, p: &mut Problems) -> Option<IcdDeactivation> {
    let agreement = o.coded("agreement", p);
    let explanation = o.str("explanation", p);
    let discussed_on = o.date("discussed_on", p);
    let agreement = require(o, "agreement", agreement, "4i (Afspraak uitzetten ICD)", p)?;
    Some(IcdDeactivation { agreement, explanation, discussed_on })
}

/// What a directive not in force was, one key each (the shape the record gives it when current).
const RECORDED_DIRECTIVES: [&str; 4] = ["treatment_limit", "other_treatment_limit", "icd_deactivation", "advance_directive"];

/// A directive that is not in force: its status, end date and the directive itself. One that is in
/// force (active, not ended before `day`) is refused here: it belongs among the current limits, and
/// hiding it in this list would drop a current limit from every output.
fn read_not_in_force(o: &Obj<'_>, p: &mut Problems, day: &FhirDate, judged: &str) -> Option<DirectiveNotInForce> {
    let status = o.coded::<DirectiveStatus>("status", p);
    let ended_on = o.date("ended_on", p);
    let kinds: Vec<&str> = RECORDED_DIRECTIVES.iter().copied().filter(|k| given(o, k)).collect();
    let directive = match kinds.as_slice() {
        [] => {
            p.error(
                IssueType::Required,
                &o.path,
                format!("say what the directive was: one of {}", RECORDED_DIRECTIVES.join(", ")),
            );
            None
        }
        [key] => read_recorded_directive(o, key, p),
        [_, more @ ..] => {
            for key in more {
                o.skip(key);
            }
            p.error(IssueType::Invariant, &o.at(more[0]), format!("one directive per entry; this one already is a {}", kinds[0]));
            o.skip(kinds[0]);
            None
        }
    };
    let status = require(o, "status", status, "the directive's status (FHIR Consent.status)", p)?;
    if DirectiveNotInForce::in_force(status, ended_on.as_ref(), day) {
        let why = match &ended_on {
            Some(end) => format!("an active directive that ends on {end}, not before {judged} ({day}), is in force"),
            None => "an active directive without an end date is in force".to_owned(),
        };
        p.error(
            IssueType::Invariant,
            &o.at("status"),
            format!("{why}: it is a current limit and belongs in treatment_limits, icd_deactivation or advance_directives, not among the directives not in force"),
        );
        return None;
    }
    Some(DirectiveNotInForce { status, ended_on, directive: directive? })
}

fn read_recorded_directive(o: &Obj<'_>, key: &str, p: &mut Problems) -> Option<RecordedDirective> {
    match key {
        "treatment_limit" => object(o, key, p, |o, p| {
            let treatment = o.coded::<Treatment>("treatment", p);
            let limit = read_treatment_limit(o, p);
            let treatment = require(o, "treatment", treatment, "which of the treatments 4a-f this limit was about", p)?;
            if !NAMED_TREATMENTS.contains(&treatment) {
                p.error(
                    IssueType::Invariant,
                    &o.at("treatment"),
                    format!("'{}' is not one of 4a-f: give it as other_treatment_limit or icd_deactivation", treatment.key()),
                );
                return None;
            }
            Some(RecordedDirective::TreatmentLimit(NamedTreatmentLimit { treatment, limit: limit? }))
        }),
        "other_treatment_limit" => object(o, key, p, |o, p| read_other_limit(o, p).map(RecordedDirective::OtherTreatmentLimit)),
        "icd_deactivation" => object(o, key, p, |o, p| read_icd_deactivation(o, p).map(RecordedDirective::IcdDeactivation)),
        _ => object(o, key, p, |o, p| read_advance_directive(o, p).map(RecordedDirective::AdvanceDirective)),
    }
    .flatten()
}

/// One treatment limit: the decision (with its restriction text), explanation and discussion date.
fn read_treatment_limit(o: &Obj<'_>, p: &mut Problems) -> Option<TreatmentLimit> {
    let code = o.coded::<DecisionCode>("decision", p);
    let restriction = o.str("restriction", p);
    let explanation = o.str("explanation", p);
    let discussed_on = o.date("discussed_on", p);
    let code = require(o, "decision", code, "the decision (BehandelBesluit)", p)?;
    match Decision::new(code, restriction) {
        Ok(decision) => Some(TreatmentLimit { decision, explanation, discussed_on }),
        Err(e) => {
            // A missing restriction is a fault of the decision; a misplaced or ambiguous one of the text.
            let (key, kind) = match e {
                DecisionError::MissingRestriction => ("decision", IssueType::Required),
                DecisionError::AmbiguousRestriction(_) | DecisionError::UnexpectedRestriction(_) => {
                    ("restriction", IssueType::Invariant)
                }
            };
            p.error(kind, &o.at(key), e.to_string());
            None
        }
    }
}

fn read_advance_directive(o: &Obj<'_>, p: &mut Problems) -> Option<AdvanceDirective> {
    let kind = o.coded("type", p);
    let date = o.date("date", p);
    let comment = o.str("comment", p);
    let document = object(o, "document", p, read_document).flatten();
    let kind = require(o, "type", kind, "the kind of advance directive (WilsverklaringType)", p)?;
    Some(AdvanceDirective { kind, date, comment, document })
}

fn read_document(o: &Obj<'_>, p: &mut Problems) -> Option<Document> {
    let content_type = o.str("content_type", p).filter(|ct| {
        let ok = ct.split_once('/').is_some_and(|(t, s)| !t.trim().is_empty() && !s.trim().is_empty());
        if !ok {
            p.error(
                IssueType::Value,
                &o.at("content_type"),
                format!("{ct:?} is not a media type such as application/pdf"),
            );
        }
        ok
    });
    let title = o.str("title", p);
    let data = read_base64(o, "data", p);
    let content_type = require(o, "content_type", content_type, "the document's media type, e.g. application/pdf", p);
    let data = require(o, "data", data, "the document itself, base64-encoded", p);
    Some(Document { content_type: content_type?, title, data: data? })
}

/// Base64 as FHIR's Attachment carries it. Line breaks (MIME-style wrapping) are removed with a warning,
/// so every output gets the compact form; anything else that does not decode is an error.
fn read_base64(o: &Obj<'_>, key: &str, p: &mut Problems) -> Option<String> {
    let raw = o.str(key, p)?;
    if BASE64.decode(&raw).is_ok() {
        return Some(raw);
    }
    let compact: String = raw.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    match BASE64.decode(&compact) {
        Ok(_) => {
            p.warning(IssueType::Value, &o.at(key), "line breaks and spaces in the base64 data were removed");
            Some(compact)
        }
        Err(e) => {
            p.error(IssueType::Value, &o.at(key), format!("the document data is not valid base64 (RFC 4648, padded): {e}"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::Problem;
    use serde_json::json;

    fn read_json(v: Value) -> (AcpRecord, Vec<Problem>) {
        let mut p = Problems::default();
        let r = read(&v, &mut p);
        (r, p.list)
    }

    /// (pointer, severity, issue type) of every problem, in the order reported.
    fn found(problems: &[Problem]) -> Vec<(String, Severity, IssueType)> {
        problems.iter().map(|p| (p.location.to_string(), p.severity, p.issue_type)).collect()
    }

    fn limits(v: Value) -> Value {
        json!({"treatment_limits": v})
    }

    #[test]
    fn schema_key_is_ignored_and_null_is_absent() {
        let (r, problems) = read_json(json!({
            "$schema": "../mappings/acp-record.schema.json",
            "date_filled_in": "2024-05-01",
            "care_wishes": null,
            "patient": {"name": {"family": "Visser"}}
        }));
        assert!(problems.is_empty(), "{problems:#?}");
        assert_eq!(r.care_wishes, None);
        assert_eq!(r.patient.name.family.as_deref(), Some("Visser"));
    }

    #[test]
    fn every_problem_is_reported_and_reading_goes_on() {
        let (r, problems) = read_json(json!({
            "date_filled_in": "2023-02-30",
            "patient": {"bsn": "999990018", "name": {"family": "Smit", "gievn": "Jan"}, "birth_date": 1950},
            "medical_policy_goal": "palliative",
            "relatives_informed": "ja",
            "sharing_consent": "agreed",
            "treatment_limts": {}
        }));
        assert_eq!(
            found(&problems),
            [
                ("/date_filled_in".into(), Severity::Error, IssueType::Value),
                ("/patient/bsn".into(), Severity::Error, IssueType::Value),
                ("/patient/name/gievn".into(), Severity::Error, IssueType::NotSupported),
                ("/patient/birth_date".into(), Severity::Error, IssueType::Value),
                ("/medical_policy_goal".into(), Severity::Error, IssueType::CodeInvalid),
                ("/relatives_informed".into(), Severity::Error, IssueType::Value),
                ("/treatment_limts".into(), Severity::Error, IssueType::NotSupported),
            ]
        );
        // What could be read is kept.
        assert_eq!(r.patient.name.family.as_deref(), Some("Smit"));
        assert_eq!(r.sharing_consent, Some(SharingConsent::Agreed));
        assert!(problems[1].message.contains("11-proof"), "{}", problems[1].message);
    }

    #[test]
    fn decision_errors_point_at_the_text_or_the_decision() {
        let (r, problems) = read_json(limits(json!({
            "resuscitation": {"decision": "do-not-perform", "restriction": "alleen thuis"},
            "invasive_ventilation": {"decision": "perform-with-restrictions"},
            "icu_admission": {"decision": "perform-with-restrictions", "restriction": " Nog onbekend "},
            "hospital_admission": {"decision": "perform-with-restrictions", "restriction": "   "},
            "antibiotics": {"restriction": "alleen oraal"},
            "blood_products": {"decision": "perform-with-restrictions", "restriction": "max. 2 eenheden"}
        })));
        assert_eq!(
            found(&problems),
            [
                ("/treatment_limits/resuscitation/restriction".into(), Severity::Error, IssueType::Invariant),
                ("/treatment_limits/invasive_ventilation/decision".into(), Severity::Error, IssueType::Required),
                ("/treatment_limits/icu_admission/restriction".into(), Severity::Error, IssueType::Invariant),
                // Blank text is "not recorded" (a warning), which leaves the decision without its text.
                ("/treatment_limits/hospital_admission/restriction".into(), Severity::Warning, IssueType::Value),
                ("/treatment_limits/hospital_admission/decision".into(), Severity::Error, IssueType::Required),
                ("/treatment_limits/antibiotics/decision".into(), Severity::Error, IssueType::Required),
            ]
        );
        assert!(problems[0].message.contains("do-not-perform"), "{}", problems[0].message);
        assert_eq!(r.treatment_limits.resuscitation, None, "a contradictory limit is not half-read");
        assert_eq!(
            r.treatment_limits.blood_products.map(|l| l.decision),
            Some(Decision::PerformWithRestrictions { restriction: "max. 2 eenheden".into() })
        );
    }

    #[test]
    fn other_limits_keep_their_name_and_position() {
        let (r, problems) = read_json(limits(json!({"other": [
            {"treatment": "Dialyse", "decision": "perform", "discussed_on": "2024-01-10"},
            {"decision": "maybe"},
            {"decision": "unknown", "explanation": "Overige"}
        ]})));
        assert_eq!(found(&problems), [("/treatment_limits/other/1/decision".into(), Severity::Error, IssueType::CodeInvalid)]);
        assert_eq!(r.treatment_limits.other.len(), 2);
        assert_eq!(r.treatment_limits.other[0].treatment.as_deref(), Some("Dialyse"));
        assert_eq!(r.treatment_limits.other[1].treatment, None);
    }

    #[test]
    fn other_text_only_on_the_other_answer() {
        let (r, problems) = read_json(json!({
            "first_contact": {"relationship": {"code": "son", "other": "schoonzoon"}},
            "present": {"patient": true, "roles": [{"code": "other", "other": "geestelijk verzorger"}, {"other": "buurman"}]},
            "place_of_death": {"preference": {"code": "other", "other": "bij mijn zus in Zeeland"}}
        }));
        assert_eq!(
            found(&problems),
            [
                ("/first_contact/relationship/other".into(), Severity::Error, IssueType::Invariant),
                ("/present/roles/1/code".into(), Severity::Error, IssueType::Required),
            ]
        );
        let roles = &r.present.as_ref().map(|x| x.roles.clone()).unwrap_or_default();
        assert_eq!(roles.len(), 1);
        assert_eq!(roles[0].other_text(), Some("geestelijk verzorger"));
        let place = r.place_of_death.map(|w| w.preference);
        assert_eq!(place.as_ref().and_then(|a| a.other_text()), Some("bij mijn zus in Zeeland"));
    }

    #[test]
    fn presence_of_the_patient_is_never_assumed() {
        let (r, problems) = read_json(json!({"present": {"relationships": [{"code": "daughter"}]}}));
        assert_eq!(found(&problems), [("/present/patient".into(), Severity::Error, IssueType::Required)]);
        assert_eq!(r.present, None);
    }

    #[test]
    fn identifiers_need_system_and_value_and_no_bypass_of_checked_fields() {
        let (r, problems) = read_json(json!({
            "patient": {"other_identifiers": [
                {"system": "urn:oid:2.16.840.1.113883.2.4.6.3", "value": "999990018"},
                {"system": "ziekenhuisnummer", "value": "12345"},
                {"value": "12345"},
                {"system": "urn:oid:2.16.528.1.1007.99.2110", "value": "Z-001"}
            ]},
            "conducted_by": {"agb": "123", "other_identifiers": [
                {"system": "http://fhir.nl/fhir/NamingSystem/agb-z", "value": "01234567"},
                {"system": "http://fhir.nl/fhir/NamingSystem/big", "value": "  "}
            ]}
        }));
        assert_eq!(
            found(&problems),
            [
                ("/patient/other_identifiers/0/system".into(), Severity::Error, IssueType::Invariant),
                ("/patient/other_identifiers/1/system".into(), Severity::Error, IssueType::Value),
                ("/patient/other_identifiers/2/system".into(), Severity::Error, IssueType::Required),
                ("/conducted_by/agb".into(), Severity::Error, IssueType::Value),
                ("/conducted_by/other_identifiers/0/system".into(), Severity::Error, IssueType::Invariant),
                ("/conducted_by/other_identifiers/1/value".into(), Severity::Warning, IssueType::Value),
                ("/conducted_by/other_identifiers/1/value".into(), Severity::Error, IssueType::Required),
            ]
        );
        let kept = Identifier { system: "urn:oid:2.16.528.1.1007.99.2110".into(), value: "Z-001".into() };
        assert_eq!(r.patient.other_identifiers, [kept]);
        assert!(problems[3].message.contains("8 digits"), "{}", problems[3].message);
    }

    #[test]
    fn documents_are_checked_base64_with_a_media_type() {
        let pdf = BASE64.encode(b"%PDF-1.4\n%%EOF\n");
        let wrapped = format!("{}\r\n{}", &pdf[..8], &pdf[8..]);
        let (r, problems) = read_json(json!({"advance_directives": [
            {"type": "do-not-resuscitate", "document": {"content_type": "application/pdf", "data": wrapped}},
            {"type": "life-wish", "document": {"data": "not base64!"}},
            {"type": "self-binding", "document": {"content_type": "pdf", "data": pdf}},
            {"date": "2020-01-01"}
        ]}));
        assert_eq!(
            found(&problems),
            [
                ("/advance_directives/0/document/data".into(), Severity::Warning, IssueType::Value),
                ("/advance_directives/1/document/data".into(), Severity::Error, IssueType::Value),
                ("/advance_directives/1/document/content_type".into(), Severity::Error, IssueType::Required),
                ("/advance_directives/2/document/content_type".into(), Severity::Error, IssueType::Value),
                ("/advance_directives/3/type".into(), Severity::Error, IssueType::Required),
            ]
        );
        // The directives are kept, without the document that could not be read.
        assert_eq!(r.advance_directives.len(), 3);
        assert_eq!(r.advance_directives[0].document.as_ref().map(|d| d.data.as_str()), Some(pdf.as_str()));
        assert_eq!(r.advance_directives[1].document, None);
    }

    #[test]
    fn wrong_json_types_are_reported_where_they_are() {
        let (_, problems) = read_json(json!({
            "patient": "Jan Smit",
            "advance_directives": {"type": "other"},
            "representative": {"phones": [{"number": 612345678}], "roles": ["mentor"], "is_first_contact": "nee"},
            "icd": {"present": true}
        }));
        assert_eq!(
            found(&problems),
            [
                ("/patient".into(), Severity::Error, IssueType::Value),
                ("/representative/phones/0/number".into(), Severity::Error, IssueType::Value),
                ("/representative/roles/0".into(), Severity::Error, IssueType::Value),
                ("/representative/is_first_contact".into(), Severity::Error, IssueType::Value),
                ("/icd/present".into(), Severity::Error, IssueType::Value),
                ("/advance_directives".into(), Severity::Error, IssueType::Value),
            ]
        );
        let (_, problems) = read_json(json!([{"date_filled_in": "2024-01-01"}]));
        assert_eq!(found(&problems), [("/".into(), Severity::Error, IssueType::Value)]);
    }
}
