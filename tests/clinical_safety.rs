//! Clinical-safety proofs: no treatment limit is ever dropped, inverted or blurred on its way through
//! the gateway.
//!
//! Property tests over generated records (`support::arb_record`, every item and every answer):
//! - record → FHIR Bundle (JSON and XML) → record is lossless;
//! - record → QuestionnaireResponse → record is lossless for everything a QuestionnaireResponse can
//!   carry (see `support::questionnaire_projection`);
//! - in the FHIR output every decision keeps its exact meaning: `Niet uitvoeren` is always `deny`, a
//!   restriction is never a `permit` and its text is carried verbatim in `specificationOther`,
//!   `Onbekend` is never a decision either way;
//! - the clinical letter states every limit with its decision and restriction text.
//!
//! The normal run checks 10,000 records per property; set `ACP_SAFETY_CASES` for a longer (nightly)
//! run, e.g. `ACP_SAFETY_CASES=200000 cargo test --release --test clinical_safety`.

mod support;

use acp_gateway::intake;
use acp_gateway::mappings;
use acp_gateway::record::*;
use acp_gateway::render;
use acp_gateway::render::fhir::BundleKind;
use proptest::prelude::*;
use serde_json::Value;
use support::{arb_record, fhir_projection, questionnaire_projection};

fn cases(default: u32) -> u32 {
    std::env::var("ACP_SAFETY_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn config(default: u32) -> ProptestConfig {
    ProptestConfig { cases: cases(default), failure_persistence: None, ..ProptestConfig::default() }
}

/// Reads bytes that must be a valid record.
fn read_back(bytes: &[u8]) -> Result<AcpRecord, TestCaseError> {
    let result = intake::read(bytes);
    let errors: Vec<String> = result
        .problems
        .iter()
        .filter(|p| p.severity == acp_gateway::validate::Severity::Error)
        .map(|p| p.to_string())
        .collect();
    prop_assert!(errors.is_empty(), "the gateway's own output is refused: {errors:#?}");
    Ok(result.record.expect("a valid input has a record"))
}

/// The treatment-directive Consents of a FHIR Bundle (JSON), by the treatment they are about:
/// (treatment code or OTH text, provision.type, specificationOther text).
fn treatment_consents(bundle: &Value) -> Vec<(String, Option<String>, Option<String>)> {
    let spec_other = &mappings::get().canonicals.extensions["specification-other"];
    let mut out = Vec::new();
    for entry in bundle["entry"].as_array().into_iter().flatten() {
        let r = &entry["resource"];
        if r["resourceType"] != "Consent" {
            continue;
        }
        let scope = r["scope"]["coding"][0]["code"].as_str().unwrap_or_default();
        if scope != "treatment" {
            continue;
        }
        let code = &r["provision"]["code"][0];
        let coding = code["coding"][0]["code"].as_str().unwrap_or_default();
        let about = if coding == "OTH" { code["text"].as_str().unwrap_or("OTH").to_owned() } else { coding.to_owned() };
        let kind = r["provision"]["type"].as_str().map(str::to_owned);
        let spec = r["modifierExtension"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["url"].as_str().is_some_and(|u| spec_other.iter().any(|s| s == u)))
            .and_then(|e| e["valueString"].as_str())
            .map(str::to_owned);
        out.push((about, kind, spec));
    }
    out
}

/// The decision semantics a Consent must show for one decision.
fn assert_decision_shown(
    what: &str,
    decision: &Decision,
    consent: &(String, Option<String>, Option<String>),
) -> Result<(), TestCaseError> {
    let (_, kind, spec) = consent;
    match decision {
        Decision::Perform => {
            prop_assert_eq!(kind.as_deref(), Some("permit"), "{}: perform must be permit", what);
            prop_assert!(spec.is_none(), "{}: perform carries no specificationOther", what);
        }
        Decision::DoNotPerform => {
            prop_assert_eq!(kind.as_deref(), Some("deny"), "{}: 'Niet uitvoeren' must be deny", what);
            prop_assert!(spec.is_none(), "{}: deny carries no specificationOther", what);
        }
        Decision::PerformWithRestrictions { restriction } => {
            prop_assert!(kind.is_none(), "{}: a restriction is never a permit (type {:?})", what, kind);
            prop_assert_eq!(spec.as_deref(), Some(restriction.as_str()), "{}: restriction text verbatim", what);
        }
        Decision::Unknown => {
            prop_assert!(kind.is_none(), "{}: 'Onbekend' is never a decision (type {:?})", what, kind);
            let marker = spec.as_deref().unwrap_or_default();
            prop_assert!(
                mappings::get().is_text_marker("decision-unknown", marker),
                "{}: 'Onbekend' must be stated as such, got {:?}",
                what,
                spec
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(10_000))]

    /// record → FHIR JSON Bundle → record gives the same record, item for item.
    #[test]
    fn fhir_json_round_trip_is_lossless(record in arb_record()) {
        let json = render::fhir::to_json(&render::fhir::bundle(&record, BundleKind::Transaction));
        let back = read_back(json.as_bytes())?;
        prop_assert_eq!(back, fhir_projection(&record));
    }

    /// Every treatment decision keeps its exact meaning in the FHIR output.
    #[test]
    fn fhir_decisions_keep_their_meaning(record in arb_record()) {
        let bundle: Value = serde_json::from_str(&render::fhir::to_json(
            &render::fhir::bundle(&record, BundleKind::Collection),
        ))
        .expect("the renderer writes JSON");
        let consents = treatment_consents(&bundle);
        for t in NAMED_TREATMENTS {
            let code = &t.entry().coding.code;
            let found: Vec<_> = consents.iter().filter(|c| &c.0 == code).collect();
            match record.treatment_limits.get(t) {
                None => prop_assert!(found.is_empty(), "{:?} not recorded, yet a Consent exists", t),
                Some(limit) => {
                    prop_assert_eq!(found.len(), 1, "{:?}: exactly one Consent", t);
                    assert_decision_shown(&format!("{t:?}"), &limit.decision, found[0])?;
                }
            }
        }
        // 4g: one Consent per "other" limit, each showing its decision exactly (several limits may
        // share a name, so each is matched against the Consents not yet claimed).
        let icd = &Treatment::IcdDeactivation.entry().coding.code;
        let mut others: Vec<_> = consents
            .iter()
            .filter(|c| !NAMED_TREATMENTS.iter().any(|t| t.entry().coding.code == c.0) && !c.0.contains(icd.as_str()))
            .collect();
        prop_assert_eq!(others.len(), record.treatment_limits.other.len(), "one Consent per 4g limit");
        for other in &record.treatment_limits.other {
            let name = other.treatment.as_deref().unwrap_or("OTH");
            let found = others
                .iter()
                .position(|c| c.0 == name && assert_decision_shown("4g", &other.limit.decision, c).is_ok());
            prop_assert!(found.is_some(), "4g limit {:?} lost its meaning among {:?}", other, others);
            others.remove(found.unwrap_or_default());
        }
    }
}

proptest! {
    // XML and the QuestionnaireResponse are slower to write and read; fewer cases keep the run short.
    #![proptest_config(config(2_000))]

    /// record → FHIR XML Bundle → record gives the same record.
    #[test]
    fn fhir_xml_round_trip_is_lossless(record in arb_record()) {
        let xml = render::fhir::to_xml(&render::fhir::bundle(&record, BundleKind::Transaction));
        let back = read_back(xml.as_bytes())?;
        prop_assert_eq!(back, fhir_projection(&record));
    }

    /// record → QuestionnaireResponse → record keeps every item the form has.
    #[test]
    fn questionnaire_round_trip_is_lossless(record in arb_record()) {
        let qr = serde_json::to_vec(&render::questionnaire::render(&record)).expect("JSON");
        let back = read_back(&qr)?;
        prop_assert_eq!(back, questionnaire_projection(&record));
    }

    /// The clinical letter (every human-readable channel's text) states every limit: its decision and,
    /// verbatim, its restriction.
    #[test]
    fn letter_states_every_limit(record in arb_record()) {
        let letter = render::letter::render(&record);
        for t in NAMED_TREATMENTS {
            if let Some(limit) = record.treatment_limits.get(t) {
                if let Some(r) = limit.decision.restriction() {
                    prop_assert!(letter.contains(&render::letter::shown_text(r.trim())), "{:?}: restriction text missing from the letter", t);
                }
            }
        }
        for other in &record.treatment_limits.other {
            if let Some(r) = other.limit.decision.restriction() {
                prop_assert!(letter.contains(&render::letter::shown_text(r.trim())), "4g restriction text missing from the letter");
            }
        }
    }
}
