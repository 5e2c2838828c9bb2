//! Partial records (issue 11, item 8): every output the gateway writes for a record that carries only
//! part of the form (a single Nictiz zib2020 resource, a partial fixture) is accepted again as input,
//! still partial (what it lacks is a warning), and reads back as the same record (as far as the
//! format carries it: a QuestionnaireResponse per `support::questionnaire_projection`).

mod support;

use acp_gateway::intake::{self, Intake};
use acp_gateway::record::AcpRecord;
use acp_gateway::render;
use acp_gateway::render::fhir::BundleKind;
use acp_gateway::validate::rules::Completeness;
use acp_gateway::validate::Severity;
use support::{files_in, fhir_projection, questionnaire_projection};

const NICTIZ: &str = "../shared/reference/nictiz-zib2020/examples";

fn errors(i: &Intake) -> Vec<String> {
    i.problems.iter().filter(|p| p.severity == Severity::Error).map(|p| p.to_string()).collect()
}

/// Every single-resource Nictiz example, and every fixture that reads as a partial record.
fn partial_inputs() -> Vec<(String, AcpRecord)> {
    let mut inputs = Vec::new();
    let nictiz = files_in(NICTIZ, "xml");
    assert!(nictiz.len() >= 7, "the Nictiz examples are found in ../shared");
    for (name, bytes) in nictiz {
        let i = intake::read(&bytes);
        assert!(errors(&i).is_empty(), "{name} is refused: {:#?}", errors(&i));
        assert_eq!(i.completeness, Completeness::Partial, "{name} is one resource");
        inputs.push((name, i.record.expect("a record")));
    }
    let mut fixtures = 0;
    for ext in ["json", "xml"] {
        for (name, bytes) in files_in("fixtures/fhir", ext) {
            let i = intake::read(&bytes);
            if i.completeness == Completeness::Partial && i.is_valid() {
                fixtures += 1;
                inputs.push((name, i.record.expect("a record")));
            }
        }
    }
    assert!(fixtures >= 3, "the partial fixtures are found");
    inputs
}

/// Reads an output back: no errors, still partial when the record is.
fn read_back(what: &str, bytes: &[u8], partial: bool) -> AcpRecord {
    let i = intake::read(bytes);
    assert!(
        errors(&i).is_empty(),
        "{what}: the gateway's own output is refused: {:#?}\n{}",
        errors(&i),
        String::from_utf8_lossy(bytes)
    );
    if partial {
        assert_eq!(i.completeness, Completeness::Partial, "{what}: a partial record stays partial");
    }
    i.record.expect("a record")
}

#[test]
fn every_output_of_a_partial_record_is_accepted_again_and_reads_back_the_same() {
    for (name, record) in partial_inputs() {
        let partial = Completeness::of(&record) == Completeness::Partial;

        let json = render::record_json::render(&record);
        assert_eq!(read_back(&format!("{name} as record"), json.as_bytes(), partial), record, "{name} as record");

        let bundle = render::fhir::bundle(&record, BundleKind::Transaction);
        let back = read_back(&format!("{name} as fhir-json"), render::fhir::to_json(&bundle).as_bytes(), partial);
        assert_eq!(back, fhir_projection(&record), "{name} as fhir-json");
        let back = read_back(&format!("{name} as fhir-xml"), render::fhir::to_xml(&bundle).as_bytes(), partial);
        assert_eq!(back, fhir_projection(&record), "{name} as fhir-xml");

        let qr = serde_json::to_vec_pretty(&render::questionnaire::render(&record)).expect("JSON");
        let back = read_back(&format!("{name} as questionnaire-response"), &qr, partial);
        assert_eq!(back, questionnaire_projection(&record), "{name} as questionnaire-response");
    }
}

#[test]
fn a_partial_record_is_marked_so_and_a_whole_one_is_not() {
    let (_, bytes) = files_in(NICTIZ, "xml").into_iter().find(|(n, _)| n == "nl-core-TreatmentDirective2-01.xml").expect("example");
    let record = intake::read(&bytes).record.expect("a record");
    assert_eq!(Completeness::of(&record), Completeness::Partial);
    assert!(render::record_json::render(&record).starts_with("{\n  \"partial\": true,\n"));
    assert_eq!(render::questionnaire::render(&record)["status"], "in-progress");

    for (name, bytes) in support::uniform_fixtures() {
        let record = support::read_valid(&name, &bytes);
        assert!(!render::record_json::render(&record).contains("\"partial\""), "{name}");
        assert_eq!(render::questionnaire::render(&record)["status"], "completed", "{name}");
    }
}

#[test]
fn a_record_marked_partial_still_has_its_header_checked_when_present_and_a_whole_record_still_needs_it() {
    // Without the mark, a record without its date is refused as before.
    let whole = intake::read(br#"{"patient": {"name": {"family": "Bakker"}, "birth_date": "1941-03-09"}}"#);
    assert!(!errors(&whole).is_empty());
    // With it, the missing header is a warning.
    let partial = intake::read(br#"{"partial": true, "patient": {}}"#);
    assert!(errors(&partial).is_empty(), "{:#?}", errors(&partial));
    assert_eq!(partial.completeness, Completeness::Partial);
    // The mark is a boolean.
    let wrong = intake::read(br#"{"partial": "yes", "patient": {}}"#);
    assert!(!errors(&wrong).is_empty());
}
