//! Issue 11 item 2: a treatment directive or advance directive that is not in force (inactive, ended
//! period, draft, proposed, rejected, entered-in-error) is never a current limit.
//!
//! Per status, from the fixtures in `fixtures/fhir/directive-status/` (a "Niet reanimeren" directive of
//! that status): the record has no current resuscitation limit and carries the directive, structured,
//! among the directives not in force, with a warning at what took it out of force; the letter (hence
//! PDF, Edifact and mail) shows "niet vastgelegd" at 4a and the directive only in its own section; the
//! FHIR output writes it back as a Consent of its own status (and end date), which reads back the
//! same. Beside these: an active directive next to one not in force for the same treatment, a withdrawn
//! wilsverklaring, the uniform record JSON's own rule, and a missing or unknown status.

mod support;

use acp_gateway::intake::{self, Intake};
use acp_gateway::record::*;
use acp_gateway::render;
use acp_gateway::render::fhir::BundleKind;
use acp_gateway::validate::{IssueType, Severity};
use serde_json::{json, Value};
use support::crate_path;

fn fixture(name: &str) -> Value {
    let path = crate_path(&format!("fixtures/fhir/directive-status/{name}.json"));
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).expect("JSON")
}

fn read(v: &Value) -> Intake {
    intake::read(serde_json::to_string(v).expect("JSON").as_bytes())
}

fn valid(i: &Intake, what: &str) -> AcpRecord {
    let errors: Vec<_> = i.problems.iter().filter(|p| p.severity == Severity::Error).collect();
    assert!(errors.is_empty(), "{what}: {errors:#?}");
    i.record.clone().unwrap_or_else(|| panic!("{what}: no record"))
}

fn date(s: &str) -> FhirDate {
    FhirDate::parse(s).expect("test date")
}

/// The Consents of a FHIR JSON Bundle.
fn consents(bundle: &Value) -> Vec<&Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == "Consent")
        .collect()
}

fn fhir_json(record: &AcpRecord) -> String {
    render::fhir::to_json(&render::fhir::bundle(record, BundleKind::Transaction))
}

/// The letter's section 4, the current limits.
fn section_4(letter: &str) -> &str {
    let start = letter.find("\n4. Behandelgrenzen\n").expect("section 4");
    let end = start + letter[start..].find("\n5. Behandelwensen").expect("section 5");
    &letter[start..end]
}

const NOT_IN_FORCE: &str = "Niet (meer) geldende afspraken - geen behandelgrens:";

/// (fixture, status, end date, where the warning is, the status as the letter says it)
const CASES: [(&str, &str, Option<&str>, &str, &str); 6] = [
    ("inactive", "inactive", Some("2025-01-20"), "Consent.status", "beëindigd op 20-01-2025"),
    ("ended-period", "active", Some("2025-01-20"), "Consent.provision.period.end", "beëindigd op 20-01-2025"),
    ("draft", "draft", None, "Consent.status", "concept"),
    ("proposed", "proposed", None, "Consent.status", "voorgesteld"),
    ("rejected", "rejected", None, "Consent.status", "afgewezen"),
    ("entered-in-error", "entered-in-error", None, "Consent.status", "ingevoerd in fout"),
];

fn dnr() -> RecordedDirective {
    RecordedDirective::TreatmentLimit(NamedTreatmentLimit {
        treatment: Treatment::Resuscitation,
        limit: TreatmentLimit {
            decision: Decision::DoNotPerform,
            explanation: Some("Afgesproken tijdens de opname op de intensive care.".into()),
            discussed_on: Some(date("2024-12-02")),
        },
    })
}

#[test]
fn a_directive_not_in_force_is_never_a_current_limit() {
    for (name, status, end, warned_at, shown) in CASES {
        let what = format!("treatment-directive-{name}");
        let input = read(&fixture(&what));
        let record = valid(&input, &what);

        // The record (as its uniform JSON, so that this test reads the same on the code before the
        // change): no current limit, the directive carried as it was, with its status and end.
        let as_json = serde_json::to_value(&record).expect("JSON");
        assert_eq!(as_json.get("treatment_limits"), None, "{what}: a current limit: {as_json:#}");
        let mut expected = json!({
            "status": status,
            "treatment_limit": {
                "treatment": "resuscitation",
                "decision": "do-not-perform",
                "explanation": "Afgesproken tijdens de opname op de intensive care.",
                "discussed_on": "2024-12-02"
            }
        });
        if let Some(end) = end {
            expected["ended_on"] = json!(end);
        }
        assert_eq!(as_json["directives_not_in_force"], json!([expected]), "{what}");
        let warning = input
            .problems
            .iter()
            .find(|p| p.severity == Severity::Warning && p.location.to_string() == warned_at)
            .unwrap_or_else(|| panic!("{what}: no warning at {warned_at}: {:#?}", input.problems));
        assert!(warning.message.contains("not a current limit"), "{what}: {}", warning.message);

        // The letter: 4a is not recorded; the directive stands only in its own section, after
        // everything current, and "Niet uitvoeren" is nowhere in capitals.
        let letter = render::letter::render(&record);
        assert!(section_4(&letter).contains("\n  4a. Reanimatie: niet vastgelegd\n"), "{what}:\n{letter}");
        assert!(!letter.contains("NIET UITVOEREN"), "{what}:\n{letter}");
        let at = letter.find(NOT_IN_FORCE).unwrap_or_else(|| panic!("{what}: no section:\n{letter}"));
        assert!(at > letter.find("\nWilsverklaringen\n").expect("Wilsverklaringen"), "{what}");
        assert!(
            letter[at..].contains(&format!("\n  - 4a. Reanimatie [{shown}]: Niet uitvoeren\n")),
            "{what}:\n{}",
            &letter[at..]
        );

        // FHIR: one resuscitation Consent, deny, with the status (and end); none active without an end.
        let json = fhir_json(&record);
        let bundle: Value = serde_json::from_str(&json).expect("JSON");
        let all = consents(&bundle);
        assert_eq!(all.len(), 1, "{what}");
        let c = all[0];
        assert_eq!(c["status"], status, "{what}");
        assert_eq!(c["provision"]["type"], "deny", "{what}");
        assert_eq!(c["provision"]["period"]["end"].as_str(), end, "{what}");
        assert_eq!(c["provision"]["code"][0]["coding"][0]["code"], "89666000", "{what}");
        // ... and it reads back as the same record, in JSON and in XML.
        let xml = render::fhir::to_xml(&render::fhir::bundle(&record, BundleKind::Transaction));
        for (form, bytes) in [("json", json.as_bytes()), ("xml", xml.as_bytes())] {
            let back = intake::read(bytes);
            assert_eq!(back.record, Some(record.clone()), "{what} via FHIR {form}: {:#?}", back.problems);
        }
    }
}

#[test]
fn an_ended_directive_is_judged_against_the_date_filled_in() {
    // The same active directive, ended on 2025-01-20: in force on the day it ends and before, ended
    // after. With the record dated by an Encounter, that date counts, not today.
    let consent = fixture("treatment-directive-ended-period");
    for (filled, in_force) in [("2025-01-19", true), ("2025-01-20", true), ("2025-01-21", false)] {
        let bundle = json!({
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                {"fullUrl": "urn:uuid:6d1c1f38-5b1e-4a57-9d6c-2f0a1b7e3c01", "resource": {
                    "resourceType": "Encounter",
                    "meta": {"profile": ["https://api.iknl.nl/docs/pzp/r4/StructureDefinition/ACP-Encounter"]},
                    "status": "finished",
                    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-NullFlavor", "code": "UNK"},
                    "period": {"start": filled}
                }},
                {"fullUrl": "urn:uuid:6d1c1f38-5b1e-4a57-9d6c-2f0a1b7e3c02", "resource": consent}
            ]
        });
        let record = valid(&read(&bundle), filled);
        assert_eq!(record.date_filled_in, Some(date(filled)));
        assert_eq!(record.treatment_limits.resuscitation.is_some(), in_force, "filled in {filled}");
        assert_eq!(record.directives_not_in_force.is_empty(), in_force, "filled in {filled}");
    }
}

#[test]
fn the_active_directive_is_the_limit_and_the_other_is_carried_beside_it() {
    let ended = fixture("treatment-directive-inactive");
    let mut current = fixture("treatment-directive-draft");
    current["id"] = json!("reanimatie-actueel");
    current["status"] = json!("active");
    current["provision"]["type"] = json!("permit");
    current["extension"][0]["valueString"] = json!("Na haar herstel wil mevrouw weer gereanimeerd worden.");
    // In both orders: the one in force never gives way, and the other is never an error.
    for entries in [[ended.clone(), current.clone()], [current.clone(), ended.clone()]] {
        let bundle = json!({
            "resourceType": "Bundle",
            "type": "collection",
            "entry": entries.iter().enumerate().map(|(i, r)| json!({"fullUrl": format!("urn:uuid:0b6f1c3e-0000-4000-8000-00000000000{i}"), "resource": r})).collect::<Vec<_>>()
        });
        let record = valid(&read(&bundle), "active beside inactive");
        let limit = record.treatment_limits.resuscitation.as_ref().expect("the active directive is the limit");
        assert_eq!(limit.decision, Decision::Perform);
        assert_eq!(record.directives_not_in_force.len(), 1);
        assert_eq!(record.directives_not_in_force[0].status, DirectiveStatus::Inactive);
        assert_eq!(record.directives_not_in_force[0].directive, dnr());
        let letter = render::letter::render(&record);
        assert!(section_4(&letter).contains("\n  4a. Reanimatie: Wel uitvoeren"), "{letter}");
        assert!(!section_4(&letter).contains("Niet uitvoeren"), "{letter}");
    }
}

#[test]
fn a_withdrawn_advance_directive_is_not_on_file_as_current() {
    let input = read(&fixture("advance-directive-inactive"));
    let record = valid(&input, "advance-directive-inactive");
    assert!(record.advance_directives.is_empty(), "a withdrawn wilsverklaring is current: {record:#?}");
    let [d] = record.directives_not_in_force.as_slice() else { panic!("{record:#?}") };
    assert_eq!(d.status, DirectiveStatus::Inactive);
    assert_eq!(d.ended_on, Some(date("2025-01-20")));
    let RecordedDirective::AdvanceDirective(ad) = &d.directive else { panic!("{d:#?}") };
    assert_eq!(ad.kind, AdvanceDirectiveType::DoNotResuscitate);
    let letter = render::letter::render(&record);
    let current = &letter[letter.find("\nWilsverklaringen\n").expect("section")..letter.find(NOT_IN_FORCE).expect("not in force")];
    assert!(current.contains("niet vastgelegd") && !current.contains("Niet reanimeren"), "{letter}");
    assert!(letter.contains("\n  - Wilsverklaring Niet reanimeren verklaring, 03-12-2024 [beëindigd op 20-01-2025]"), "{letter}");
    let bundle: Value = serde_json::from_str(&fhir_json(&record)).expect("JSON");
    let c = consents(&bundle);
    assert_eq!((c.len(), c[0]["status"].as_str()), (1, Some("inactive")));
    assert_eq!(intake::read(fhir_json(&record).as_bytes()).record, Some(record));
}

#[test]
fn a_directive_without_a_known_status_is_refused() {
    let mut c = fixture("treatment-directive-draft");
    c.as_object_mut().expect("object").remove("status");
    let i = read(&c);
    assert!(i.problems.iter().any(|p| p.severity == Severity::Error
        && p.issue_type == IssueType::Required
        && p.location.to_string() == "Consent.status"), "{:#?}", i.problems);
    c["status"] = json!("suspended");
    let i = read(&c);
    assert!(i.problems.iter().any(|p| p.severity == Severity::Error
        && p.issue_type == IssueType::CodeInvalid
        && p.location.to_string() == "Consent.status"), "{:#?}", i.problems);
}

#[test]
fn the_record_json_refuses_a_directive_in_force_among_those_not_in_force() {
    let entry = |status: &str, ended_on: Option<&str>| {
        let mut e = json!({"status": status, "treatment_limit": {"treatment": "resuscitation", "decision": "do-not-perform"}});
        if let Some(end) = ended_on {
            e["ended_on"] = json!(end);
        }
        json!({"date_filled_in": "2025-06-02", "directives_not_in_force": [e]})
    };
    let errors_at = |v: Value| -> Vec<String> {
        intake::read(&serde_json::to_vec(&v).expect("JSON"))
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| p.location.to_string())
            .filter(|at| at.starts_with("/directives_not_in_force")) // not the items a complete record needs
            .collect()
    };
    // Active and not ended by the date filled in: a current limit, refused here.
    assert_eq!(errors_at(entry("active", None)), ["/directives_not_in_force/0/status"]);
    assert_eq!(errors_at(entry("active", Some("2025-06-02"))), ["/directives_not_in_force/0/status"]);
    assert!(errors_at(entry("active", Some("2025-06-01"))).is_empty());
    assert!(errors_at(entry("draft", None)).is_empty());
    // A treatment outside 4a-f, and two directives in one entry.
    let mut v = entry("draft", None);
    v["directives_not_in_force"][0]["treatment_limit"]["treatment"] = json!("other");
    assert_eq!(errors_at(v), ["/directives_not_in_force/0/treatment_limit/treatment"]);
    let mut v = entry("draft", None);
    v["directives_not_in_force"][0]["icd_deactivation"] = json!({"agreement": "yes"});
    assert_eq!(errors_at(v), ["/directives_not_in_force/0/icd_deactivation"]);
}

/// The uniform fixture with one directive not in force per status renders the section in every
/// human-readable channel (they all carry the letter).
#[test]
fn the_uniform_fixture_shows_every_status_apart_from_the_limits() {
    let bytes = std::fs::read(crate_path("fixtures/uniform-11-recovered-after-icu-directives-not-in-force.json")).expect("fixture");
    let record = support::read_valid("uniform-11", &bytes);
    assert_eq!(record.directives_not_in_force.len(), 6);
    let letter = render::letter::render(&record);
    let limits = section_4(&letter);
    assert!(!limits.contains("NIET UITVOEREN") && !limits.contains('['), "{limits}");
    let at = letter.find(NOT_IN_FORCE).expect("section");
    for shown in ["[beëindigd op 20-01-2025]", "[beëindigd op 28-02-2025]", "[concept]", "[voorgesteld]", "[afgewezen]", "[ingevoerd in fout]"] {
        assert!(letter[at..].contains(shown), "{shown}:\n{}", &letter[at..]);
    }
}
