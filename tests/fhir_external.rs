//! The gateway's FHIR output read by a FHIR parser outside the project: the npm package `fhir`
//! (`tests/fhir_oracle/`), which parses FHIR JSON and XML and validates against the R4 base
//! specification. Every fixture is rendered as a FHIR JSON and a FHIR XML Bundle and must come through
//! without a single error.
//!
//! The checker is installed with `npm ci --prefix tests/fhir_oracle` (`.ci/run` does it). Without it
//! the test fails under CI and prints a loud SKIPPED line on a developer machine.

mod support;

use std::path::PathBuf;
use std::process::Command;

use acp_gateway::render::fhir::{bundle, to_json, to_xml, BundleKind};
use support::{crate_path, read_valid, uniform_fixtures};

fn oracle_ready() -> bool {
    let installed = crate_path("tests/fhir_oracle/node_modules/fhir").is_dir();
    let node = Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if installed && node {
        return true;
    }
    let why = "the npm package `fhir` is not installed (npm ci --prefix tests/fhir_oracle) or node is missing";
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!("*** SKIPPED: {why} ***");
    false
}

#[test]
fn every_fixture_bundle_passes_an_independent_fhir_validator() {
    if !oracle_ready() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("acp-gateway-fhir-external-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files: Vec<PathBuf> = Vec::new();
    let mut fixtures = uniform_fixtures();
    assert!(fixtures.len() >= 8);
    // The shared reference examples too: the IKNL QuestionnaireResponse and the Nictiz XML examples.
    let qr = "../shared/reference/iknl-pzp-r4/resources/QuestionnaireResponse-HendrikHartman-20201001.json";
    fixtures.push(("iknl-qr.json".to_owned(), std::fs::read(crate_path(qr)).unwrap()));
    for (name, bytes) in support::files_in("../shared/reference/nictiz-zib2020/examples", "xml") {
        fixtures.push((format!("nictiz-{}", name.replace(".xml", ".json")), bytes));
    }
    for (name, bytes) in &fixtures {
        let record = read_valid(name, bytes);
        let stem = name.trim_end_matches(".json");
        for (kind, tag) in [(BundleKind::Transaction, "transaction"), (BundleKind::Collection, "collection")] {
            let b = bundle(&record, kind);
            let json = dir.join(format!("{stem}.{tag}.json"));
            let xml = dir.join(format!("{stem}.{tag}.xml"));
            std::fs::write(&json, to_json(&b)).unwrap();
            std::fs::write(&xml, to_xml(&b)).unwrap();
            files.extend([json, xml]);
        }
    }
    let out = Command::new("node")
        .arg(crate_path("tests/fhir_oracle/validate.js"))
        .args(&files)
        .output()
        .expect("node runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON line per file"))
        .collect();
    assert_eq!(lines.len(), files.len(), "the checker reported on every file");
    for line in &lines {
        assert_eq!(line["resourceType"], "Bundle", "{line}");
        let errors = line["errors"].as_array().unwrap();
        assert!(errors.is_empty(), "{}: {errors:#?}", line["file"]);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
