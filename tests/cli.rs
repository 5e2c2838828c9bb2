//! The command line as a user meets it: the real binary, real files, exit statuses from interface.md.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_acp-gateway"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

fn crate_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn shared_qr() -> String {
    crate_path("../shared/reference/iknl-pzp-r4/resources/QuestionnaireResponse-HendrikHartman-20201001.json")
        .display()
        .to_string()
}

fn tmp_file(name: &str, contents: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("acp-gateway-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const MINIMAL: &str = r#"{
  "date_filled_in": "2025-06-02",
  "patient": {"bsn": "999990019", "name": {"given": "Grietje", "family": "Bakker"}, "birth_date": "1941-03-09"},
  "treatment_limits": {"resuscitation": {"decision": "do-not-perform", "explanation": "Op eigen verzoek"}},
  "sharing_consent": "agreed"
}"#;

#[test]
fn validate_accepts_the_shared_questionnaire_response() {
    let o = run(&["validate", &shared_qr()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).contains("valid (FHIR QuestionnaireResponse"), "{}", stdout(&o));
}

#[test]
fn validate_exit_statuses() {
    let good = tmp_file("good.json", MINIMAL.as_bytes());
    let bad = tmp_file("bad.json", br#"{"date_filled_in": "2025-06-02", "patient": {"#);
    assert_eq!(run(&["validate", good.to_str().unwrap()]).status.code(), Some(0));

    let o = run(&["validate", good.to_str().unwrap(), bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("bad.json: INVALID"), "{out}");
    assert!(out.contains("malformed JSON"), "{out}");
    assert!(out.contains("line 1"), "the location of the syntax error is given: {out}");

    let missing = run(&["validate", "/nonexistent/acp.json"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read"));

    assert_eq!(run(&["validate"]).status.code(), Some(2), "no file is a usage error");
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn validate_json_format_is_an_operation_outcome_per_file() {
    let bad = tmp_file(
        "badbsn.json",
        MINIMAL.replace("999990019", "999990018").as_bytes(),
    );
    let o = run(&["validate", "--format", "json", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let outcome: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("one JSON document");
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    let issues = outcome["issue"].as_array().unwrap();
    let bsn = issues
        .iter()
        .find(|i| i["severity"] == "error")
        .expect("an error issue");
    assert_eq!(bsn["location"][0], "/patient/bsn");
    assert!(bsn["diagnostics"].as_str().unwrap().contains("11-proof"));
}

#[test]
fn translate_to_record_is_deterministic_and_takes_a_bsn() {
    let qr = shared_qr();
    let a = run(&["translate", &qr, "--to", "record", "--bsn", "999911120"]);
    let b = run(&["translate", &qr, "--to", "record", "--bsn", "999911120"]);
    assert_eq!(a.status.code(), Some(0), "{}", String::from_utf8_lossy(&a.stderr));
    assert_eq!(a.stdout, b.stdout, "byte-identical across runs");
    let record: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    assert_eq!(record["patient"]["bsn"], "999911120");
    assert_eq!(record["patient"]["name"]["family"], "Hartman");

    // The canonical record reads back to itself.
    let path = tmp_file("hartman.json", &a.stdout);
    let again = run(&["translate", path.to_str().unwrap(), "--to", "record"]);
    assert_eq!(again.stdout, a.stdout);

    let bad_bsn = run(&["translate", &qr, "--to", "record", "--bsn", "123"]);
    assert_eq!(bad_bsn.status.code(), Some(2));
}

#[test]
fn translate_refuses_invalid_input_with_the_validate_messages() {
    let bad = tmp_file("nodate.json", MINIMAL.replace("\"date_filled_in\": \"2025-06-02\",", "").as_bytes());
    let o = run(&["translate", bad.to_str().unwrap(), "--to", "record"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    assert!(String::from_utf8_lossy(&o.stderr).contains("/date_filled_in"));
}

#[test]
fn bench_translate_reports_records_per_second() {
    let o = run(&["bench", "translate", "--input", &shared_qr(), "--seconds", "0.2"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    assert!(out.contains("records/s"), "{out}");
    let words: Vec<&str> = out.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "records").expect("a record count");
    let records: u64 = words[at - 1].parse().expect("a number before 'records'");
    assert!(records > 0, "{out}");
}
