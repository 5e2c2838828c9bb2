//! Golden files for the FHIR outputs: every fixture in `fixtures/` that is a complete, valid record is
//! rendered as FHIR JSON and FHIR XML (a transaction Bundle) and as a QuestionnaireResponse, and each
//! must equal, byte for byte, its file under `tests/golden/fhir-json/`, `tests/golden/fhir-xml/` and
//! `tests/golden/questionnaire-response/`. This is what `translate --to fhir-json | fhir-xml |
//! questionnaire-response` writes; the files pin it so that work on speed cannot change a byte unseen.
//!
//! A golden file is named after its fixture's path below `fixtures/` (`/` written as `__`) plus the
//! output's extension, e.g. `fhir__bundle-transaction-full.xml.json`.
//!
//! After an intended change of the output, rewrite them and review the diff before committing:
//!
//! ```sh
//! UPDATE_GOLDEN=1 cargo test --test golden_fhir
//! ```

use std::path::{Path, PathBuf};

use acp_gateway::intake;
use acp_gateway::render;
use acp_gateway::validate::rules::Completeness;

fn crate_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn files_below(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files_below(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The fixtures that are complete, valid records, with their golden name stem.
fn complete_fixtures() -> Vec<(String, acp_gateway::record::AcpRecord)> {
    let root = crate_path("fixtures");
    let mut files = Vec::new();
    files_below(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .filter_map(|path| {
            let read = intake::read(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
            let record = read.valid_record().filter(|_| read.completeness == Completeness::Complete)?.clone();
            let rel = path.strip_prefix(&root).expect("below fixtures/").to_string_lossy().replace('/', "__");
            Some((rel, record))
        })
        .collect()
}

/// The three outputs, as `translate` writes them.
fn outputs(record: &acp_gateway::record::AcpRecord) -> [(&'static str, &'static str, String); 3] {
    let bundle = render::fhir::bundle(record, render::fhir::BundleKind::Transaction);
    let mut qr = serde_json::to_string_pretty(&render::questionnaire::render(record)).expect("JSON serialises");
    qr.push('\n');
    [
        ("fhir-json", "json", render::fhir::to_json(&bundle)),
        ("fhir-xml", "xml", render::fhir::to_xml(&bundle)),
        ("questionnaire-response", "json", qr),
    ]
}

#[test]
fn fhir_outputs_of_every_complete_fixture_equal_their_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let fixtures = complete_fixtures();
    assert!(fixtures.len() >= 10, "expected the uniform fixtures and the complete FHIR ones, found {}", fixtures.len());
    let mut failures = Vec::new();
    let mut expected_files = std::collections::BTreeSet::new();
    for (stem, record) in &fixtures {
        for (channel, ext, rendered) in outputs(record) {
            let path = crate_path(&format!("tests/golden/{channel}/{stem}.{ext}"));
            expected_files.insert(path.clone());
            if update {
                std::fs::create_dir_all(path.parent().expect("a folder")).expect("golden folder writable");
                std::fs::write(&path, &rendered).expect("golden file writable");
                continue;
            }
            match std::fs::read(&path) {
                Ok(golden) if golden == rendered.as_bytes() => {}
                Ok(golden) => {
                    let line = golden
                        .split(|b| *b == b'\n')
                        .zip(rendered.as_bytes().split(|b| *b == b'\n'))
                        .position(|(a, b)| a != b)
                        .map_or("where one ends".to_owned(), |i| format!("at line {}", i + 1));
                    failures.push(format!("{}: the output differs {line}", path.display()));
                }
                Err(e) => failures.push(format!("{}: {e}", path.display())),
            }
        }
    }
    // A golden file without its fixture would pin nothing.
    for channel in ["fhir-json", "fhir-xml", "questionnaire-response"] {
        let dir = crate_path(&format!("tests/golden/{channel}"));
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for path in entries.map(|e| e.expect("a directory entry").path()) {
            if !expected_files.contains(&path) {
                if update {
                    std::fs::remove_file(&path).expect("stale golden file removable");
                } else {
                    failures.push(format!("{}: no complete, valid fixture renders to it", path.display()));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "golden files differ (after an intended change: UPDATE_GOLDEN=1 cargo test --test golden_fhir, then review the diff):\n{}",
        failures.join("\n")
    );
}
