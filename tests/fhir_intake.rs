//! FHIR R4 resources (JSON and XML) through `acp_gateway::intake::read`: the Nictiz zib2020 examples,
//! the fixtures in `fixtures/fhir/`, hostile and broken inputs, the XML round trip, and the decision
//! table of treatment directives.

use std::path::{Path, PathBuf};

use acp_gateway::fhir::xml;
use acp_gateway::intake::{self, InputForm, Intake};
use acp_gateway::mappings;
use acp_gateway::record::*;
use acp_gateway::validate::rules::Completeness;
use acp_gateway::validate::{IssueType, Location, Problem, Severity};
use serde_json::{json, Value};

fn crate_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn nictiz_examples() -> Vec<PathBuf> {
    let dir = crate_path("../shared/reference/nictiz-zib2020/examples");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    v.sort();
    assert!(v.len() >= 7, "expected the Nictiz examples, found {v:?}");
    v
}

fn fixture_files(ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(crate_path("fixtures/fhir"))
        .expect("fixtures/fhir")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

fn read_path(path: &Path) -> Intake {
    intake::read(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn read(rel: &str) -> Intake {
    read_path(&crate_path(rel))
}

fn read_value(v: &Value) -> Intake {
    intake::read(serde_json::to_string(v).expect("json").as_bytes())
}

fn errors(i: &Intake) -> Vec<&Problem> {
    i.problems.iter().filter(|p| p.severity == Severity::Error).collect()
}

fn assert_valid(i: &Intake, what: &str) -> AcpRecord {
    assert!(errors(i).is_empty(), "{what}: {:#?}", errors(i));
    i.record.clone().unwrap_or_else(|| panic!("{what}: no record"))
}

fn has(i: &Intake, severity: Severity, kind: IssueType, location: &str) -> bool {
    i.problems.iter().any(|p| p.severity == severity && p.issue_type == kind && p.location.to_string() == location)
}

fn date(s: &str) -> Option<FhirDate> {
    Some(FhirDate::parse(s).expect("test date"))
}

fn marker(kind: &str) -> String {
    mappings::get().text_markers(kind)[0].clone()
}

// --- (a) the Nictiz zib2020 examples ---------------------------------------------------------------

#[test]
fn every_nictiz_example_reads_without_errors() {
    for path in nictiz_examples() {
        let i = read_path(&path);
        assert_eq!(i.form, Some(InputForm::FhirXml), "{}", path.display());
        assert_eq!(i.completeness, Completeness::Partial, "{}", path.display());
        assert_valid(&i, &path.display().to_string());
    }
}

#[test]
fn nictiz_treatment_directive_decoded_field_by_field() {
    let i = read("../shared/reference/nictiz-zib2020/examples/nl-core-TreatmentDirective2-01.xml");
    let r = assert_valid(&i, "nl-core-TreatmentDirective2-01");
    // The example is inactive (ended 2012-10-15): not a current limit, carried apart as it was.
    assert!(r.treatment_limits.is_empty() && r.icd_deactivation.is_none(), "{:#?}", r.treatment_limits);
    let [d] = r.directives_not_in_force.as_slice() else { panic!("{:#?}", r.directives_not_in_force) };
    assert_eq!((d.status, d.ended_on.clone()), (DirectiveStatus::Inactive, date("2012-10-15")));
    let RecordedDirective::TreatmentLimit(l) = &d.directive else { panic!("{d:#?}") };
    assert_eq!(l.treatment, Treatment::IcuAdmission, "4c opname op intensive care");
    assert_eq!(l.limit.decision, Decision::Perform);
    assert_eq!(l.limit.explanation, None);
    assert_eq!(l.limit.discussed_on, date("2012-09-11"));
    // What takes it out of force, and what the record cannot hold, is said where it is.
    assert!(has(&i, Severity::Warning, IssueType::Value, "Consent.status"), "{:#?}", i.problems);
    let reason = i
        .problems
        .iter()
        .find(|p| p.location.to_string() == "Consent.provision.extension[0]")
        .expect("reason for ending");
    assert!(reason.message.contains("hersteld en ontslagen"), "{reason}");
}

#[test]
fn nictiz_advance_directive_patient_and_contacts_decoded() {
    let r = assert_valid(
        &read("../shared/reference/nictiz-zib2020/examples/nl-core-TreatmentDirective2-01-Consent-01.xml"),
        "AD",
    );
    let ad = &r.advance_directives[0];
    assert_eq!(ad.kind, AdvanceDirectiveType::PowerOfAttorney);
    assert_eq!(ad.date, date("2010-05-06"));
    assert_eq!(ad.comment.as_deref(), Some("volmacht aan echtgenote"));
    let doc = ad.document.as_ref().expect("document");
    assert_eq!((doc.content_type.as_str(), doc.data.as_str()), ("application/octet-stream", "volmacht"));

    let r = assert_valid(&read("../shared/reference/nictiz-zib2020/examples/nl-core-Patient-01.xml"), "Patient");
    assert_eq!(r.patient.bsn.as_ref().map(Bsn::as_str), Some("111222333"));
    assert_eq!(r.patient.name.given.as_deref(), Some("Johanna Petronella Maria"));
    assert_eq!(r.patient.name.prefix.as_deref(), Some("van"));
    assert_eq!(r.patient.name.family.as_deref(), Some("Putten-van der Giessen"));
    assert_eq!(r.patient.birth_date, date("1934-04-28"));
    // Patient.contact (01 Eerste relatie) without a RelatedPerson of its own is the first contact.
    let fc = r.first_contact.expect("first contact from Patient.contact");
    assert_eq!(fc.phones[0].telecom_type, Some(TelecomType::Mobile));
    assert_eq!(fc.emails[0].email_use, Some(EmailUse::Work));

    let r = assert_valid(
        &read("../shared/reference/nictiz-zib2020/examples/nl-core-TreatmentDirective2-01-RelatedPerson-01.xml"),
        "RP",
    );
    let fc = r.first_contact.expect("01 makes the first contact");
    assert_eq!(fc.relationship.map(|a| a.value()), Some(Relationship::Husband));
    assert_eq!(fc.phones[0].comment.as_deref(), Some("test toelichting"));
    assert_eq!(fc.phones[0].number_use, Some(NumberUse::Home));
    assert_eq!(fc.emails[0].email_use, Some(EmailUse::Private));

    let r = assert_valid(
        &read("../shared/reference/nictiz-zib2020/examples/nl-core-TreatmentDirective2-01-PractitionerRole-01.xml"),
        "role",
    );
    assert_eq!(r.conducted_by.and_then(|p| p.function), Some(ProfessionalFunction::Physician));
}

/// Every array the XML reader makes comes from the table in `xml::shape` (none from an element that
/// merely repeated), and the elements the examples carry have the shape FHIR JSON gives them.
#[test]
fn the_array_table_holds_on_every_nictiz_example() {
    fn walk(v: &Value, root: &str, parent: &str, path: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                let root = map.get("resourceType").and_then(Value::as_str).unwrap_or(root);
                let here = if map.contains_key("resourceType") { root } else { parent };
                for (k, child) in map {
                    let name = k.trim_start_matches('_');
                    if let Value::Array(items) = child {
                        if !xml::shape::is_array(root, here, name) {
                            out.push(format!("{path}.{k}"));
                        }
                        for item in items {
                            walk(item, root, name, &format!("{path}.{k}"), out);
                        }
                    } else {
                        walk(child, root, name, &format!("{path}.{k}"), out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, root, parent, path, out)),
            _ => {}
        }
    }
    for path in nictiz_examples() {
        let v = xml::parse(&std::fs::read_to_string(&path).expect("example")).expect("parses");
        let mut unsanctioned = Vec::new();
        walk(&v, "", "", "", &mut unsanctioned);
        assert!(unsanctioned.is_empty(), "{}: arrays not in the table: {unsanctioned:?}", path.display());
    }
    let patient = xml::parse(
        &std::fs::read_to_string(crate_path("../shared/reference/nictiz-zib2020/examples/nl-core-Patient-01.xml"))
            .unwrap(),
    )
    .unwrap();
    for array in [
        "/name",
        "/name/0/given",
        "/_name/0/given",
        "/telecom",
        "/address",
        "/address/0/line",
        "/contact",
        "/contact/0/relationship",
        "/communication",
        "/identifier",
        "/extension",
        "/meta/profile",
        "/maritalStatus/coding",
    ] {
        let at = array.replace("/_name/0/given", "/name/0/_given");
        assert!(patient.pointer(&at).is_some_and(Value::is_array), "Patient-01 {at} should be an array");
    }
    for single in ["/contact/0/name", "/contact/0/address", "/maritalStatus", "/birthDate", "/gender"] {
        assert!(patient.pointer(single).is_some_and(|v| !v.is_array()), "Patient-01 {single} should not be an array");
    }
    assert_eq!(patient.pointer("/deceasedBoolean"), Some(&json!(false)));
    assert_eq!(patient.pointer("/multipleBirthBoolean"), Some(&json!(true)));
    let consent = xml::parse(
        &std::fs::read_to_string(crate_path(
            "../shared/reference/nictiz-zib2020/examples/nl-core-TreatmentDirective2-01.xml",
        ))
        .unwrap(),
    )
    .unwrap();
    for array in ["/category", "/policy", "/provision/actor", "/provision/code", "/provision/extension"] {
        assert!(consent.pointer(array).is_some_and(Value::is_array), "Consent {array} should be an array");
    }
    for single in
        ["/provision", "/scope", "/patient", "/provision/period", "/provision/actor/0/role", "/sourceReference"]
    {
        assert!(consent.pointer(single).is_some_and(Value::is_object), "Consent {single} should be an object");
    }
}

// --- (b) fixtures -------------------------------------------------------------------------------------

fn full_bundle_record() -> AcpRecord {
    let i = read("fixtures/fhir/bundle-transaction-full.json");
    assert_eq!(i.form, Some(InputForm::FhirJson));
    assert_eq!(i.completeness, Completeness::Partial);
    assert_valid(&i, "bundle-transaction-full.json")
}

#[test]
fn the_full_transaction_bundle_fills_every_item_the_profiles_carry() {
    let r = full_bundle_record();
    assert_eq!(r.date_filled_in, date("2025-03-14"));
    let p = &r.patient;
    assert_eq!(p.bsn.as_ref().map(Bsn::as_str), Some("999990044"));
    assert_eq!(
        p.other_identifiers,
        vec![Identifier { system: "urn:oid:2.16.840.1.113883.2.4.6.99.1".into(), value: "ZH-448812".into() }]
    );
    assert_eq!(
        p.name,
        Name { given: Some("Geertruida Johanna".into()), prefix: Some("van den".into()), family: Some("Berg".into()) }
    );
    assert_eq!(p.birth_date, date("1938-11-02"));
    let lc = r.legal_capacity.as_ref().expect("1. Wilsbekwaamheid");
    assert_eq!(lc.capable, Some(true));
    assert_eq!(lc.explanation.as_deref(), Some("Mevrouw overziet de gevolgen van haar keuzes goed."));

    let pro = r.conducted_by.as_ref().expect("professional");
    assert_eq!(pro.name, Name { given: Some("Pieter".into()), prefix: None, family: Some("Jansen".into()) });
    assert_eq!(pro.agb.as_ref().map(Agb::as_str), Some("01234567"));
    assert_eq!(pro.function, Some(ProfessionalFunction::GeneralPractitioner));
    assert_eq!(pro.other_identifiers.len(), 1);

    let rep = r.representative.as_ref().expect("1a-d");
    assert_eq!(
        rep.person.name,
        Name { given: Some("Anna".into()), prefix: Some("de".into()), family: Some("Vries".into()) }
    );
    assert_eq!(rep.roles, vec![Answer::code(ContactRole::Mentor)]);
    assert_eq!(rep.is_first_contact, Some(true));
    assert_eq!(rep.person.relationship, Some(Answer::code(Relationship::Daughter)));
    assert_eq!(
        rep.person.phones,
        vec![Phone {
            number: "0612345678".into(),
            telecom_type: Some(TelecomType::Mobile),
            number_use: Some(NumberUse::Home),
            comment: Some("Bij voorkeur na 17.00 uur".into()),
        }]
    );
    assert_eq!(
        rep.person.emails,
        vec![Email { address: "anna.devries@example.nl".into(), email_use: Some(EmailUse::Work) }]
    );
    assert!(r.first_contact.is_none());
    let present = r.present.as_ref().expect("2. present");
    assert!(present.patient);
    assert_eq!(present.relationships, vec![Answer::code(Relationship::Daughter), Answer::code(Relationship::Son)]);
    assert!(present.roles.is_empty());

    assert_eq!(r.medical_policy_goal, Some(MedicalPolicyGoal::PalliativeSymptomRelief));
    let tl = &r.treatment_limits;
    let limit = |t| tl.get(t).expect("limit").clone();
    assert_eq!(limit(Treatment::Resuscitation).decision, Decision::DoNotPerform);
    assert_eq!(
        limit(Treatment::Resuscitation).explanation.as_deref(),
        Some("Mevrouw wil na een hartstilstand niet gereanimeerd worden.")
    );
    assert_eq!(
        limit(Treatment::InvasiveVentilation).decision,
        Decision::PerformWithRestrictions { restriction: "Alleen kortdurend, maximaal drie dagen".into() }
    );
    assert_eq!(limit(Treatment::IcuAdmission).decision, Decision::Unknown);
    assert_eq!(limit(Treatment::HospitalAdmission).decision, Decision::Perform);
    assert_eq!(limit(Treatment::Antibiotics).discussed_on, date("2025-02-20"));
    assert_eq!(limit(Treatment::BloodProducts).decision, Decision::DoNotPerform);
    assert_eq!(tl.other.len(), 1);
    assert_eq!(tl.other[0].treatment.as_deref(), Some("Dialyse in het ziekenhuis"));
    assert_eq!(tl.other[0].limit.decision, Decision::DoNotPerform);
    let icd_off = r.icd_deactivation.as_ref().expect("4i");
    assert_eq!(icd_off.agreement, IcdDeactivationAgreement::Yes);
    assert_eq!(icd_off.explanation.as_deref(), Some("De ICD wordt uitgezet zodra mevrouw stervende is."));
    let icd = r.icd.as_ref().expect("4h");
    assert_eq!((icd.present, icd.product_type), (YesNoUnknown::Yes, Some(IcdProductType::Icd)));
    assert_eq!(icd.explanation.as_deref(), Some("ICD geplaatst in 2021 na een hartinfarct."));

    assert_eq!(
        r.care_wishes.as_deref(),
        Some("Mevrouw wil zo lang mogelijk thuis blijven wonen, met haar kat.\nZe hecht aan de ziekenzalving.")
    );
    let pod = r.place_of_death.as_ref().expect("5b");
    assert_eq!(pod.preference, Answer::new(PlaceOfDeath::Other, Some("Bij haar dochter thuis".into())).unwrap());
    assert_eq!(pod.explanation.as_deref(), Some("Dochter heeft hiervoor een kamer ingericht."));
    let eu = r.euthanasia.as_ref().expect("5c");
    assert_eq!(eu.position, EuthanasiaPosition::MightRequest);
    assert_eq!(eu.explanation.as_deref(), Some("Wil dit bespreken als het lijden ondraaglijk wordt."));
    assert_eq!(r.organ_donation_registered, Some(YesNoUnknown::No));
    assert_eq!(r.sense_of_purpose.as_deref(), Some("Haar geloof en de wekelijkse koorrepetitie geven haar kracht."));
    assert_eq!(r.relatives_informed, Some(true));

    let ad = &r.advance_directives;
    assert_eq!(ad.len(), 1);
    assert_eq!(ad[0].kind, AdvanceDirectiveType::DoNotResuscitate);
    assert_eq!(ad[0].date, date("2024-09-30"));
    let doc = ad[0].document.as_ref().expect("document");
    assert_eq!(
        (doc.content_type.as_str(), doc.title.as_deref()),
        ("application/pdf", Some("Niet-reanimerenverklaring"))
    );
    // Only the form's own items are left, as warnings: 7a/7b and 8b have no discrete profile.
    assert!(r.earlier_agreements.is_none() && r.sharing_consent.is_none());
}

#[test]
fn the_full_bundle_reports_what_it_does_not_hand_over() {
    let i = read("fixtures/fhir/bundle-transaction-full.json");
    // The practitioner's title and the encounter's end are read nowhere; each is said once, where it is.
    let title = i
        .problems
        .iter()
        .find(|p| p.location.to_string() == "Bundle.entry[3].resource.name[0]")
        .expect("title warning");
    assert_eq!((title.severity, title.issue_type), (Severity::Warning, IssueType::NotSupported));
    assert!(title.message.contains("prefix"), "{title}");
    // Nothing from the Procedure, the Device, the Patient.contact that points at a RelatedPerson.
    for quiet in ["Bundle.entry[6].resource", "Bundle.entry[22].resource", "Bundle.entry[0].resource.contact[0]"] {
        assert!(!i.problems.iter().any(|p| p.location.to_string() == quiet), "{quiet}: {:#?}", i.problems);
    }
    // 8b is the only form item the Bundle cannot carry that the rules ask for.
    assert!(i
        .problems
        .iter()
        .any(|p| p.issue_type == IssueType::Required && p.location.to_string().starts_with("QuestionnaireResponse")));
}

#[test]
fn the_full_bundle_as_xml_is_the_same_resources_and_record() {
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(crate_path("fixtures/fhir/bundle-transaction-full.json")).unwrap(),
    )
    .unwrap();
    let xml_text = std::fs::read_to_string(crate_path("fixtures/fhir/bundle-transaction-full.xml")).unwrap();
    assert_eq!(xml::parse(&xml_text).expect("parses"), json);
    let i = read("fixtures/fhir/bundle-transaction-full.xml");
    assert_eq!(i.form, Some(InputForm::FhirXml));
    assert_eq!(assert_valid(&i, "bundle-transaction-full.xml"), full_bundle_record());
}

#[test]
fn a_single_restricted_directive_json_and_xml() {
    let from_json = read("fixtures/fhir/treatment-directive-restricted.json");
    let from_xml = read("fixtures/fhir/treatment-directive-restricted.xml");
    let r = assert_valid(&from_json, "json");
    assert_eq!(from_json.completeness, Completeness::Partial);
    assert_eq!(assert_valid(&from_xml, "xml"), r);
    let limit = r.treatment_limits.invasive_ventilation.as_ref().expect("4b");
    // Verbatim, the ampersand included; never a permit.
    assert_eq!(
        limit.decision,
        Decision::PerformWithRestrictions {
            restriction: "Wel beademen bij een acute, goed behandelbare oorzaak; niet langer dan twee weken & niet bij progressie van de COPD.".into()
        }
    );
    assert_eq!(
        limit.explanation.as_deref(),
        Some("Besproken met meneer en zijn echtgenote; zie ook het verslag van de longarts.")
    );
    assert_eq!(limit.discussed_on, date("2025-01-22"));
    // The patient's identity comes from the reference's identifier.
    assert_eq!(r.patient.bsn.as_ref().map(Bsn::as_str), Some("999990111"));
    // A partial record: the rest of the form is a warning, not an error.
    assert!(from_json.is_valid());
    assert!(from_json.problems.iter().any(|p| p.severity == Severity::Warning && p.issue_type == IssueType::Required));
}

#[test]
fn an_rc1_bundle_with_old_canonicals_and_relative_references() {
    let i = read("fixtures/fhir/bundle-rc1-collection.json");
    let r = assert_valid(&i, "rc1");
    assert_eq!(r.date_filled_in, date("2024-06-03T14:00:00+02:00"));
    assert_eq!(r.patient.bsn.as_ref().map(Bsn::as_str), Some("999990081"));
    assert_eq!(r.patient.name.prefix.as_deref(), Some("ten"));
    assert_eq!(r.patient.name.family.as_deref(), Some("Brink"));
    let lc = r.legal_capacity.as_ref().expect("old ext-LegallyCapable url");
    assert_eq!(lc.capable, Some(false));
    assert_eq!(lc.explanation.as_deref(), Some("Gevorderde dementie; zijn mentor beslist mee."));
    let rep = r.representative.as_ref().expect("24 Wettelijke vertegenwoordiger");
    assert_eq!(rep.roles, vec![Answer::code(ContactRole::Mentor)]);
    // Without role 01 FHIR does not say "Nee" to 1d; with no QuestionnaireResponse it stays unrecorded.
    assert_eq!(rep.is_first_contact, None);
    assert_eq!(rep.person.relationship, Some(Answer::new(Relationship::Other, Some("oud-collega".into())).unwrap()));
    assert_eq!(rep.person.phones.len(), 1, "the 'old' number is dropped");
    assert!(has(&i, Severity::Warning, IssueType::Value, "Bundle.entry[1].resource.telecom[1].use"));
    let pro = r.conducted_by.as_ref().expect("professional via relative references");
    assert_eq!(pro.agb.as_ref().map(Agb::as_str), Some("03987654"));
    assert_eq!(pro.function, Some(ProfessionalFunction::ElderlyCarePhysician));
    assert_eq!(r.present.as_ref().map(|p| p.patient), Some(true));
    assert_eq!(r.treatment_limits.resuscitation.as_ref().map(|l| &l.decision), Some(&Decision::DoNotPerform));
    let icd_off = r.icd_deactivation.as_ref().expect("4i");
    assert_eq!(icd_off.agreement, IcdDeactivationAgreement::NotYetDecided);
    assert_eq!(icd_off.explanation.as_deref(), Some("Volgende maand samen met de cardioloog bespreken."));
    assert_eq!(r.medical_policy_goal, Some(MedicalPolicyGoal::PalliativeLifeProlonging));
    let pod = r.place_of_death.as_ref().expect("dataAbsentReason");
    assert_eq!(pod.preference.value(), PlaceOfDeath::Unknown);
    assert_eq!(pod.explanation.as_deref(), Some("Mentor wil dit eerst met de familie overleggen."));
    assert_eq!(r.euthanasia.as_ref().map(|e| e.position), Some(EuthanasiaPosition::Unknown));
    assert_eq!(
        r.sense_of_purpose.as_deref(),
        Some("Muziek van vroeger stelt hem gerust."),
        "ACP-OtherImportantInformation"
    );
    assert_eq!(r.icd.as_ref().map(|i| i.present), Some(YesNoUnknown::Yes));
    assert_eq!(r.relatives_informed, Some(true), "ACP-Communication");
}

#[test]
fn the_icd_pitfall_and_the_goal_pitfall() {
    // OTH + a text naming 400231000146108, no profile: recognised by scope and text.
    let i = read("fixtures/fhir/icd-deactivation-oth-text.json");
    let r = assert_valid(&i, "icd");
    assert_eq!(r.icd_deactivation.as_ref().map(|d| d.agreement), Some(IcdDeactivationAgreement::Yes));
    assert_eq!(r.icd_deactivation.as_ref().and_then(|d| d.discussed_on.clone()), date("2025-05-08"));
    assert!(r.treatment_limits.is_empty(), "not an 'other' limit: {:?}", r.treatment_limits);
    assert_eq!(r.patient.bsn.as_ref().map(Bsn::as_str), Some("999990093"));

    // The Questionnaire's 225353007 for the FHIR value set's 713148004.
    let r = assert_valid(&read("fixtures/fhir/goal-225353007.json"), "goal");
    assert_eq!(r.medical_policy_goal, Some(MedicalPolicyGoal::PalliativeSymptomRelief));
}

/// The gateway's own FHIR output reads back as the record it came from (the Bundle carries the form as
/// a QuestionnaireResponse too, which makes it complete), in JSON and in XML.
#[test]
fn the_gateways_own_bundle_reads_back() {
    let qr = read("../shared/reference/iknl-pzp-r4/resources/QuestionnaireResponse-HendrikHartman-20201001.json");
    let mut record = qr.record.clone().expect("the shared QuestionnaireResponse reads");
    let bundle = acp_gateway::render::fhir::bundle(&record, acp_gateway::render::fhir::BundleKind::Transaction);
    let json = acp_gateway::render::fhir::to_json(&bundle);
    let back = intake::read(json.as_bytes());
    assert_eq!(back.completeness, Completeness::Complete);
    assert!(errors(&back).is_empty(), "{:#?}", errors(&back));
    // FHIR's birthDate is a date: the time of day the form tool added does not travel.
    record.patient.birth_date =
        record.patient.birth_date.and_then(|d| d.date_part()).and_then(|d| FhirDate::parse(&d).ok());
    assert_eq!(back.record.as_ref(), Some(&record));
    let xml_text = xml::write(&serde_json::from_str(&json).expect("json"));
    let from_xml = intake::read(xml_text.as_bytes());
    assert_eq!(from_xml.record.as_ref(), Some(&record));
}

// --- (c) broken and hostile inputs ------------------------------------------------------------------

fn only_error(i: &Intake) -> &Problem {
    assert!(i.record.is_none(), "nothing is read from a refused document");
    assert_eq!(i.problems.len(), 1, "{:#?}", i.problems);
    &i.problems[0]
}

#[test]
fn a_doctype_is_refused_unexpanded() {
    for (file, line) in
        [("fixtures/fhir/invalid/doctype-billion-laughs.xml", 2), ("fixtures/fhir/invalid/external-entity.xml", 2)]
    {
        let started = std::time::Instant::now();
        let i = read(file);
        let p = only_error(&i);
        assert_eq!((p.severity, p.issue_type), (Severity::Error, IssueType::Security), "{file}: {p}");
        assert_eq!(p.location, Location::Document { line: Some(line), column: Some(1) }, "{file}");
        assert!(!p.message.contains("lol") && !p.message.contains("root:"), "nothing of the DTD is expanded: {p}");
        assert!(started.elapsed().as_secs() < 2, "refused without expanding");
    }
}

#[test]
fn malformed_xml_is_a_structure_error_with_its_position() {
    let i = read("fixtures/fhir/invalid/malformed.xml");
    let p = only_error(&i);
    assert_eq!(p.issue_type, IssueType::Structure);
    assert!(matches!(p.location, Location::Document { line: Some(7), column: Some(_) }), "{p}");
}

#[test]
fn too_deep_xml_is_too_costly() {
    let deep = format!(
        "<Patient xmlns=\"http://hl7.org/fhir\">{}{}</Patient>",
        "<extension url=\"x\">".repeat(200),
        "</extension>".repeat(200)
    );
    let i = intake::read(deep.as_bytes());
    assert_eq!(only_error(&i).issue_type, IssueType::TooCostly);
}

#[test]
fn a_wrong_code_is_code_invalid_at_the_coding() {
    let i = read("fixtures/fhir/invalid/wrong-code.json");
    assert!(
        has(&i, Severity::Error, IssueType::CodeInvalid, "Consent.provision.code[0].coding[0]"),
        "{:#?}",
        i.problems
    );
    assert!(i.record.as_ref().is_some_and(|r| r.treatment_limits.is_empty()));
    assert!(!i.is_valid());
}

#[test]
fn a_bad_bsn_is_a_value_error() {
    let i = read("fixtures/fhir/invalid/bad-bsn.json");
    let bsn = errors(&i);
    assert_eq!(bsn.len(), 1, "{bsn:#?}");
    assert_eq!(
        (bsn[0].issue_type, bsn[0].location.to_string()),
        (IssueType::Value, "Patient.identifier[0].value".to_owned())
    );
    assert!(bsn[0].message.contains("11-proof"), "{}", bsn[0]);
}

#[test]
fn an_unknown_modifier_extension_stops_the_resource() {
    let i = read("fixtures/fhir/invalid/unknown-modifier.json");
    assert!(
        has(&i, Severity::Error, IssueType::NotSupported, "Bundle.entry[1].resource.modifierExtension[0]"),
        "{:#?}",
        i.problems
    );
    let r = i.record.as_ref().expect("record");
    assert!(r.treatment_limits.resuscitation.is_none(), "a resource with an unknown modifier is not read");
    assert_eq!(r.patient.name.family.as_deref(), Some("Mulder"), "the rest of the Bundle is");
}

#[test]
fn foreign_and_conflicting_resources() {
    let patient = |id: &str, bsn: &str| json!({"resourceType": "Patient", "id": id, "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": bsn}]});
    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:a", "resource": patient("a", "999990007")},
        {"fullUrl": "urn:uuid:b", "resource": patient("b", "999990019")},
        {"fullUrl": "urn:uuid:c", "resource": {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}, "valueQuantity": {"value": 72}}}
    ]});
    let i = read_value(&bundle);
    assert!(has(&i, Severity::Error, IssueType::Invariant, "Bundle.entry[1].resource"), "{:#?}", i.problems);
    assert!(has(&i, Severity::Warning, IssueType::NotSupported, "Bundle.entry[2].resource"));

    let nothing = read_value(&json!({"resourceType": "Observation", "status": "final", "code": {"text": "pols"}}));
    assert!(has(&nothing, Severity::Error, IssueType::NotSupported, "Observation"), "{:#?}", nothing.problems);
}

// --- (d) the XML round trip -------------------------------------------------------------------------

#[test]
fn xml_round_trips_on_every_example_and_fixture() {
    let mut files = nictiz_examples();
    files.extend(fixture_files("xml"));
    for path in files {
        let text = std::fs::read_to_string(&path).expect("xml");
        let first = xml::parse(&text).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        let written = xml::write(&first);
        assert!(written.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));
        let second = xml::parse(&written).unwrap_or_else(|e| panic!("{} rewritten: {e:?}\n{written}", path.display()));
        assert_eq!(first, second, "{}", path.display());
        assert_eq!(xml::write(&second), written, "{}: the writer is deterministic", path.display());
    }
}

/// Hand-written FHIR JSON through XML and back: the XML reader's array and type tables agree with the
/// JSON form for every element the fixtures use.
#[test]
fn json_fixtures_survive_the_trip_through_xml() {
    for path in fixture_files("json") {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(xml::parse(&xml::write(&v)).expect("parses"), v, "{}", path.display());
    }
}

// --- (e) the decision table -------------------------------------------------------------------------

/// A treatment directive for `code` with an optional provision.type and specificationOther.
fn directive(treatment: Value, provision_type: Option<&str>, specification: Option<&str>) -> Value {
    let mut c = json!({
        "resourceType": "Consent",
        "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "treatment"}]},
        "patient": {"identifier": {"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "999990019"}},
        "dateTime": "2025-06-02",
        "policy": [{"uri": "https://wetten.overheid.nl/"}],
        "provision": {"code": [treatment]}
    });
    if let Some(t) = provision_type {
        c["provision"]["type"] = json!(t);
    }
    if let Some(s) = specification {
        c["modifierExtension"] = json!([{"url": "http://nictiz.nl/fhir/StructureDefinition/ext-TreatmentDirective2.SpecificationOther", "valueString": s}]);
    }
    c
}

fn resuscitation() -> Value {
    let c = &Treatment::Resuscitation.entry().coding;
    json!({"coding": [{"system": c.system, "code": c.code}]})
}

fn icd_deactivation() -> Value {
    let oth = &Treatment::Other.entry().coding;
    let icd = &Treatment::IcdDeactivation.entry().coding;
    json!({"coding": [{"system": oth.system, "code": oth.code}], "text": format!("uitzetten van ICD (SNOMED CT - {})", icd.code)})
}

fn decision_of(t: Option<&str>, s: Option<&str>) -> (Option<Decision>, Intake) {
    let i = read_value(&directive(resuscitation(), t, s));
    let d = i.record.as_ref().and_then(|r| r.treatment_limits.resuscitation.as_ref()).map(|l| l.decision.clone());
    (d, i)
}

#[test]
fn decisions_permit_deny_restriction_unknown() {
    assert_eq!(decision_of(Some("permit"), None).0, Some(Decision::Perform));
    assert_eq!(decision_of(Some("deny"), None).0, Some(Decision::DoNotPerform));
    let (d, i) = decision_of(None, Some("Alleen als er uitzicht is op herstel"));
    assert_eq!(
        d,
        Some(Decision::PerformWithRestrictions { restriction: "Alleen als er uitzicht is op herstel".into() })
    );
    assert!(!i.problems.iter().any(|p| p.issue_type == IssueType::Invariant));
    for unknown in mappings::get().text_markers("decision-unknown") {
        assert_eq!(decision_of(None, Some(unknown)).0, Some(Decision::Unknown), "{unknown}");
    }
    let (d, i) = decision_of(None, None);
    assert_eq!(d, None);
    assert!(has(&i, Severity::Error, IssueType::Invariant, "Consent.provision.type"), "{:#?}", i.problems);
    let (d, i) = decision_of(Some("maybe"), None);
    assert_eq!(d, None);
    assert!(has(&i, Severity::Error, IssueType::CodeInvalid, "Consent.provision.type"));
}

#[test]
fn the_modifier_overrules_the_type_with_a_warning() {
    let (d, i) = decision_of(Some("permit"), Some("Niet bij een bekende terminale ziekte"));
    assert_eq!(
        d,
        Some(Decision::PerformWithRestrictions { restriction: "Niet bij een bekende terminale ziekte".into() })
    );
    assert!(has(&i, Severity::Warning, IssueType::Invariant, "Consent.modifierExtension"), "{:#?}", i.problems);
    assert!(i.is_valid());
    let (d, i) = decision_of(Some("deny"), Some(&marker("decision-unknown")));
    assert_eq!(d, Some(Decision::Unknown));
    assert!(has(&i, Severity::Warning, IssueType::Invariant, "Consent.modifierExtension"));
}

fn icd_of(treatment: Value, t: Option<&str>, s: Option<&str>) -> (Option<IcdDeactivation>, Intake) {
    let i = read_value(&directive(treatment, t, s));
    let d = i.record.as_ref().and_then(|r| r.icd_deactivation.clone());
    (d, i)
}

#[test]
fn icd_decisions_asku_nask_permit_and_unrecognised() {
    let (d, _) = icd_of(icd_deactivation(), Some("permit"), None);
    assert_eq!(d.map(|d| d.agreement), Some(IcdDeactivationAgreement::Yes));
    for (kind, expected) in [
        ("icd-not-yet-decided", IcdDeactivationAgreement::NotYetDecided),
        ("icd-not-discussed", IcdDeactivationAgreement::NotDiscussed),
    ] {
        for text in mappings::get().text_markers(kind) {
            let (d, i) = icd_of(icd_deactivation(), None, Some(text));
            assert_eq!(d.map(|d| d.agreement), Some(expected), "{text}");
            assert!(i.is_valid());
        }
    }
    // Not an answer 4i knows: no type means no agreement to switch off; the text is kept.
    let (d, i) = icd_of(icd_deactivation(), None, Some("Eerst met de cardioloog overleggen"));
    let d = d.expect("read");
    assert_eq!(d.agreement, IcdDeactivationAgreement::NotYetDecided);
    assert_eq!(d.explanation.as_deref(), Some("Eerst met de cardioloog overleggen"));
    assert!(has(&i, Severity::Warning, IssueType::Invariant, "Consent.modifierExtension"));
    // Nothing maps to deny.
    let (d, i) = icd_of(icd_deactivation(), Some("deny"), None);
    assert!(d.is_none());
    assert!(has(&i, Severity::Error, IssueType::Invariant, "Consent.provision.type"));
    // A real 400231000146108 coding works as well as the OTH + text workaround.
    let c = &Treatment::IcdDeactivation.entry().coding;
    let (d, _) = icd_of(json!({"coding": [{"system": c.system, "code": c.code}]}), Some("permit"), None);
    assert_eq!(d.map(|d| d.agreement), Some(IcdDeactivationAgreement::Yes));
}

// --- robustness ---------------------------------------------------------------------------------------

/// Every element of the full Bundle replaced, in turn, by a value of each other JSON type: the reader
/// reports what it can and never panics.
#[test]
fn any_element_of_any_type_is_reported_never_a_panic() {
    fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => m.iter().for_each(|(k, c)| pointers(c, format!("{at}/{k}"), out)),
            Value::Array(a) => a.iter().enumerate().for_each(|(i, c)| pointers(c, format!("{at}/{i}"), out)),
            _ => {}
        }
        out.push(at);
    }
    let original: Value = serde_json::from_str(
        &std::fs::read_to_string(crate_path("fixtures/fhir/bundle-transaction-full.json")).unwrap(),
    )
    .unwrap();
    let mut all = Vec::new();
    pointers(&original, String::new(), &mut all);
    let mut checked = 0;
    for ptr in all.iter().filter(|p| !p.is_empty()) {
        for replacement in [json!(7), json!("x"), json!({}), json!([{"a": 1}])] {
            let mut v = original.clone();
            let Some(slot) = v.pointer_mut(ptr) else { continue };
            if *slot == replacement {
                continue;
            }
            *slot = replacement;
            let i = read_value(&v);
            assert!(i.record.is_some(), "{ptr}");
            checked += 1;
        }
    }
    assert!(checked > 1000, "{checked}");
}

/// A FHIR XML document cut off anywhere is a structure error with a position, never a panic.
#[test]
fn truncated_xml_is_always_a_positioned_error() {
    let text = std::fs::read_to_string(crate_path("fixtures/fhir/bundle-transaction-full.xml")).unwrap();
    let mut cuts = 0;
    for cut in (0..text.len()).step_by(53) {
        let Some(part) = text.get(..cut) else { continue };
        let e = xml::parse(part).expect_err("a truncated document is refused");
        assert_eq!(e.kind, IssueType::Structure, "cut at {cut}: {e:?}");
        assert!(e.line.is_some(), "cut at {cut}: {e:?}");
        cuts += 1;
    }
    assert!(cuts > 100);
}
