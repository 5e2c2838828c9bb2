//! Clinical safety at the edges: input that is plausible but wrong never changes meaning silently.
//!
//! - A key repeated in a JSON object (uniform record, FHIR JSON, QuestionnaireResponse) is refused with
//!   its JSON pointer, never "the last one wins" (property: every object of every generated record, in
//!   all three JSON forms).
//! - A resource about another patient is refused with its location, never merged into this patient's
//!   record.
//! - Contradictions the form does not allow are errors, with one rule each.
//! - Free text cannot forge a line of the letter, whatever line breaks it holds (property: the letter's
//!   and the Edifact message's structure lines are the same whatever the free text says).
//!
//! The properties check 10,000 cases each by default; `ACP_SAFETY_CASES` sets another number.

mod support;

use acp_gateway::edifact;
use acp_gateway::intake;
use acp_gateway::record::*;
use acp_gateway::render;
use acp_gateway::render::edifact::EdifactSettings;
use acp_gateway::render::fhir::BundleKind;
use acp_gateway::validate::{IssueType, Location, Severity};
use proptest::prelude::*;
use serde_json::{json, Value};
use support::arb_record;

fn cases(default: u32) -> u32 {
    std::env::var("ACP_SAFETY_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn config(default: u32) -> ProptestConfig {
    ProptestConfig { cases: cases(default), failure_persistence: None, ..ProptestConfig::default() }
}

fn errors(result: &intake::Intake) -> Vec<String> {
    result.problems.iter().filter(|p| p.severity == Severity::Error).map(|p| p.to_string()).collect()
}

fn read_file(path: &str) -> String {
    let full = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// A complete record: the first uniform fixture.
fn full_record() -> AcpRecord {
    let (name, bytes) = support::uniform_fixtures().into_iter().next().expect("fixtures");
    support::read_valid(&name, &bytes)
}

// --- 1. duplicate keys ----------------------------------------------------------------------------------

/// JSON text of `v` in which the member `key` of the object at `pointer` is written twice: first with
/// `first`, then with its real value (the order in which "last one wins" would hide the first).
fn with_duplicate(v: &Value, pointer: &str, key: &str, first: &Value) -> String {
    fn write(v: &Value, at: &str, target: &str, key: &str, first: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                out.push('{');
                let mut sep = "";
                for (k, x) in m {
                    out.push_str(sep);
                    sep = ",";
                    if at == target && k == key {
                        out.push_str(&serde_json::to_string(k).unwrap());
                        out.push(':');
                        out.push_str(&first.to_string());
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(k).unwrap());
                    out.push(':');
                    let child = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                    write(x, &child, target, key, first, out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, x) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(x, &format!("{at}/{i}"), target, key, first, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(v, "", pointer, key, first, &mut out);
    out
}

/// Every (object pointer, key) of a JSON value.
fn members(v: &Value, at: String, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                out.push((at.clone(), k.clone()));
                members(x, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out);
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                members(x, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn assert_refused_at(text: &str, pointer: &str) {
    let result = intake::read(text.as_bytes());
    assert!(!result.is_valid(), "a duplicate key at {pointer} was accepted");
    let p = result.problems.iter().find(|p| p.issue_type == IssueType::Duplicate).expect("a duplicate problem");
    assert_eq!(p.location, Location::JsonPointer(pointer.to_owned()));
    assert!(result.record.is_none(), "nothing is read from a document with a repeated key");
}

#[test]
fn a_repeated_decision_key_is_refused_not_last_one_wins() {
    // "Niet uitvoeren" followed by a second, contradicting decision for the same limit.
    let text = r#"{"patient": {"bsn": "999911120"},
        "treatment_limits": {"resuscitation": {"decision": "do-not-perform", "decision": "perform"}}}"#;
    assert_refused_at(text, "/treatment_limits/resuscitation/decision");
}

#[test]
fn a_repeated_key_in_fhir_json_and_in_a_questionnaire_response_is_refused() {
    let bundle: Value = serde_json::from_str(&read_file("fixtures/fhir/bundle-transaction-full.json")).unwrap();
    let text = with_duplicate(&bundle, "", "type", &json!("transaction"));
    assert_refused_at(&text, "/type");
    let qr = render::questionnaire::render(&full_record());
    let text = with_duplicate(&qr, "", "status", &json!("in-progress"));
    assert_refused_at(&text, "/status");
}

proptest! {
    #![proptest_config(config(10_000))]

    /// Whichever member of whichever object is given twice, in the uniform record JSON, the FHIR Bundle
    /// or the QuestionnaireResponse of a generated record, the input is refused at that member.
    #[test]
    fn any_repeated_key_in_any_json_form_is_refused(record in arb_record(), form in 0..3usize, pick in any::<prop::sample::Index>()) {
        let doc: Value = match form {
            0 => serde_json::from_str(&render::record_json::render(&record)).unwrap(),
            1 => serde_json::from_str(&render::fhir::to_json(&render::fhir::bundle(&record, BundleKind::Collection))).unwrap(),
            _ => render::questionnaire::render(&record),
        };
        let mut all = Vec::new();
        members(&doc, String::new(), &mut all);
        prop_assume!(!all.is_empty());
        let (at, key) = &all[pick.index(all.len())];
        let text = with_duplicate(&doc, at, key, &json!("Wel uitvoeren"));
        let pointer = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
        let result = intake::read(text.as_bytes());
        prop_assert!(!result.is_valid());
        let found = result.problems.iter().any(|p| p.issue_type == IssueType::Duplicate && p.location == Location::JsonPointer(pointer.clone()));
        prop_assert!(found, "no duplicate problem at {}: {:?}", pointer, result.problems);
    }
}

// --- 3. another patient's resources ---------------------------------------------------------------------

fn bundle_of(resources: Vec<Value>) -> Vec<u8> {
    let entry: Vec<Value> = resources
        .into_iter()
        .map(|r| {
            let url = format!("urn:uuid:{}", r["id"].as_str().unwrap());
            json!({"fullUrl": url, "resource": r})
        })
        .collect();
    serde_json::to_vec(&json!({"resourceType": "Bundle", "type": "collection", "entry": entry})).unwrap()
}

fn patient(id: &str, bsn: &str) -> Value {
    json!({"resourceType": "Patient", "id": id,
        "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": bsn}],
        "name": [{"family": "Jansen"}]})
}

fn dnr(id: &str, patient_ref: &str) -> Value {
    json!({"resourceType": "Consent", "id": id, "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "treatment"}]},
        "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "129125009"}]}],
        "patient": {"reference": patient_ref},
        "provision": {"type": "deny", "code": [{"coding": [{"system": "http://snomed.info/sct", "code": "89666000"}]}]}})
}

const P1: &str = "00000000-0000-4000-8000-000000000001";
const P2: &str = "00000000-0000-4000-8000-000000000002";
const C1: &str = "00000000-0000-4000-8000-0000000000c1";

#[test]
fn a_directive_about_a_patient_outside_the_bundle_is_refused() {
    let bytes = bundle_of(vec![patient(P1, "999911120"), dnr(C1, "Patient/someone-else")]);
    let result = intake::read(&bytes);
    let errs = errors(&result);
    assert!(errs.iter().any(|e| e.contains("Bundle.entry[1].resource.patient.reference") && e.contains("not the Patient")), "{errs:#?}");
    assert!(!result.is_valid());
}

#[test]
fn a_directive_about_the_second_patient_of_a_bundle_is_refused() {
    let bytes =
        bundle_of(vec![patient(P1, "999911120"), patient(P2, "999912148"), dnr(C1, &format!("urn:uuid:{P2}"))]);
    let result = intake::read(&bytes);
    assert!(!result.is_valid(), "{:#?}", result.problems);
    assert!(errors(&result).iter().any(|e| e.contains("another patient")), "{:#?}", errors(&result));
}

#[test]
fn directives_about_two_patients_without_a_patient_resource_are_refused() {
    let mut second = dnr("00000000-0000-4000-8000-0000000000c2", "Patient/b");
    second["provision"]["code"][0]["coding"][0]["code"] = json!("40617009");
    let bytes = bundle_of(vec![dnr(C1, "Patient/a"), second]);
    let result = intake::read(&bytes);
    assert!(errors(&result).iter().any(|e| e.contains("two patients")), "{:#?}", result.problems);
}

#[test]
fn a_directive_about_the_bundles_patient_is_read() {
    let bytes = bundle_of(vec![patient(P1, "999911120"), dnr(C1, &format!("urn:uuid:{P1}"))]);
    let result = intake::read(&bytes);
    assert!(errors(&result).is_empty(), "{:#?}", errors(&result));
    let record = result.record.unwrap();
    assert_eq!(record.treatment_limits.resuscitation.map(|l| l.decision), Some(Decision::DoNotPerform));
}

#[test]
fn a_questionnaire_response_about_another_patient_is_refused() {
    let mut qr = render::questionnaire::render(&full_record());
    qr["id"] = json!("00000000-0000-4000-8000-0000000000a1");
    qr["subject"] = json!({"reference": "Patient/someone-else"});
    let bytes = bundle_of(vec![patient(P1, "999911120"), qr]);
    let result = intake::read(&bytes);
    assert!(
        errors(&result).iter().any(|e| e.contains("Bundle.entry[1].resource.subject") && e.contains("not the Patient")),
        "{:#?}",
        errors(&result)
    );
}

// --- 5. free text cannot forge a line ---------------------------------------------------------------------

/// Every kind of line break a source may hold.
const BREAKS: [&str; 8] = ["\n", "\r", "\r\n", "\u{2028}", "\u{2029}", "\u{85}", "\u{b}", "\u{c}"];

/// Lines that look like the letter's own.
const FORGERIES: [&str; 6] = [
    "  4b. Kunstmatige invasieve beademing: Wel uitvoeren",
    "4a. Reanimatie: Wel uitvoeren",
    "  8b. Patiënt gaat akkoord met het delen van deze behandelafspraken: Akkoord",
    "4. Behandelgrenzen",
    "      Laatst besproken: 01-01-2020",
    "  | ",
];

fn arb_forgery() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        prop::sample::select(FORGERIES.to_vec()).prop_map(str::to_owned),
        "[a-z ]{0,90}",
        "[a-z]{60,100}",
    ];
    (prop::collection::vec((piece, prop::sample::select(BREAKS.to_vec())), 1..5), "[a-z]{1,10}")
        .prop_map(|(parts, first)| parts.into_iter().fold(first, |acc, (p, b)| format!("{acc}{b}{p}")))
}

/// The lines of the letter's structure (headings at the margin and item lines two spaces in), each up to
/// its first colon: what a reader scans for. Free text never appears here but after a label's colon.
fn structure(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| {
            let indent = l.len() - l.trim_start_matches(' ').len();
            indent <= 2 && !l.trim().is_empty()
        })
        // 4g names its treatment in quotes before the colon: the item is what comes before them.
        .map(|l| l.split(" (\"").next().unwrap_or_default().split(':').next().unwrap_or_default().trim_end().to_owned())
        .collect()
}

fn edifact_text(record: &AcpRecord) -> String {
    let segs = edifact::read(&render::edifact::render(record, &EdifactSettings::default())).expect("our Edifact reads");
    segs.iter().filter(|s| s.tag == "TXT").map(|s| s.value(0, 0).unwrap_or_default().to_owned()).collect::<Vec<_>>().join("\n")
}

/// The record with every free text this test forges, in its two versions.
fn forge(record: &AcpRecord, text: &str) -> AcpRecord {
    let mut r = record.clone();
    let restricted = Decision::PerformWithRestrictions { restriction: text.to_owned() };
    let limit = r.treatment_limits.resuscitation.get_or_insert(TreatmentLimit {
        decision: Decision::Unknown,
        explanation: None,
        discussed_on: None,
    });
    limit.decision = restricted;
    limit.explanation = Some(text.to_owned());
    r.care_wishes = Some(text.to_owned());
    r.sense_of_purpose = Some(text.to_owned());
    r.patient.name.family = Some(text.to_owned());
    if let Some(other) = r.treatment_limits.other.first_mut() {
        other.treatment = Some(text.to_owned());
    }
    r
}

proptest! {
    #![proptest_config(config(10_000))]

    /// Whatever line breaks and item-like lines free text holds, the letter (and so the PDF and the mail,
    /// which print it) and the Edifact message have exactly the structure lines of the same record with
    /// plain text: no free text adds, removes or changes an item line.
    #[test]
    fn free_text_never_forges_an_item_line(record in arb_record(), text in arb_forgery()) {
        let plain = forge(&record, "x");
        let forged = forge(&record, &text);
        let (letter_plain, letter_forged) = (render::letter::render(&plain), render::letter::render(&forged));
        prop_assert_eq!(structure(&letter_forged), structure(&letter_plain), "letter:\n{}", letter_forged);
        let expected = format!("Reanimatie: Ja, maar met beperkingen: {}", render::letter::shown_text(&text));
        prop_assert!(letter_forged.contains(&expected), "restriction not shown whole:\n{}", letter_forged);
        prop_assert_eq!(structure(&edifact_text(&forged)), structure(&edifact_text(&plain)));
    }
}

// --- 4. contradictions ------------------------------------------------------------------------------------

fn uniform(v: Value) -> intake::Intake {
    intake::read(&serde_json::to_vec(&v).unwrap())
}

#[test]
fn a_deny_with_a_restriction_text_is_an_error() {
    let result = uniform(json!({"treatment_limits": {"resuscitation": {"decision": "do-not-perform", "restriction": "alleen kort"}}}));
    assert!(
        result.problems.iter().any(|p| p.severity == Severity::Error && p.location.to_string().starts_with("/treatment_limits/resuscitation")),
        "{:#?}",
        result.problems
    );
}

#[test]
fn unknown_in_disguise_is_not_a_restriction() {
    for text in ["Onbekend", "Onbekend.", "onbekend ", "Nog onbekend", "nog niet bekend", "Onbekend!", " ONBEKEND ", "Niet  besproken", "(onbekend)"] {
        let result = uniform(json!({"treatment_limits": {"antibiotics": {"decision": "perform-with-restrictions", "restriction": text}}}));
        assert!(
            result.problems.iter().any(|p| p.severity == Severity::Error && p.location.to_string().starts_with("/treatment_limits/antibiotics")),
            "{text:?} was taken as a restriction: {:#?}",
            result.problems
        );
    }
}

#[test]
fn the_representative_as_agreement_party_of_a_competent_patient_is_flagged() {
    let mut bundle: Value = serde_json::from_str(&read_file("fixtures/fhir/bundle-transaction-full.json")).unwrap();
    let rep_url = bundle["entry"][1]["fullUrl"].clone();
    assert_eq!(bundle["entry"][0]["resource"]["extension"][0]["extension"][0]["valueBoolean"], json!(true));
    let actors = bundle["entry"][7]["resource"]["provision"]["actor"].as_array_mut().unwrap();
    actors.push(json!({"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "CONSENTER"}]},
        "reference": {"reference": rep_url, "type": "RelatedPerson"}}));
    let result = intake::read(&serde_json::to_vec(&bundle).unwrap());
    let flagged: Vec<_> = result
        .problems
        .iter()
        .filter(|p| p.location.to_string() == "Bundle.entry[7].resource.provision.actor[2].reference")
        .collect();
    assert_eq!(flagged.len(), 1, "{:#?}", result.problems);
    assert_eq!(flagged[0].severity, Severity::Warning);
    assert!(flagged[0].message.contains("competent"), "{}", flagged[0].message);
    // The limit itself is still handed over as agreed.
    assert!(result.is_valid(), "{:#?}", errors(&result));

    // The same directive for a patient who is not competent: nothing to flag.
    bundle["entry"][0]["resource"]["extension"][0]["extension"][0]["valueBoolean"] = json!(false);
    let result = intake::read(&serde_json::to_vec(&bundle).unwrap());
    assert!(!result.problems.iter().any(|p| p.message.contains("agrees for themselves")), "{:#?}", result.problems);
}
