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
//! - the clinical letter states every limit with its decision and restriction text;
//! - a directive not in force (ended, draft, proposed, rejected, entered in error) never reads as a
//!   current limit: not as an active Consent in FHIR, not among the letter's limits (section 4), only in
//!   its own section after everything current.
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

/// Whether a directive Consent is a current limit as any receiver reads FHIR: status `active` and no
/// `provision.period.end` at all (the gateway writes the end only for a directive not in force).
fn is_current(consent: &Value) -> bool {
    consent["status"] == "active" && consent["provision"]["period"]["end"].is_null()
}

/// The treatment-directive Consents of a FHIR Bundle (JSON) that are current limits, by the treatment
/// they are about: (treatment code or OTH text, provision.type, specificationOther text).
fn treatment_consents(bundle: &Value) -> Vec<(String, Option<String>, Option<String>)> {
    directive_consents(bundle, "treatment", true)
}

/// The directive Consents of a scope (`treatment`, `adr`), current ones or the others.
fn directive_consents(bundle: &Value, scope: &str, current: bool) -> Vec<(String, Option<String>, Option<String>)> {
    let spec_other = &mappings::get().canonicals.extensions["specification-other"];
    let mut out = Vec::new();
    for entry in bundle["entry"].as_array().into_iter().flatten() {
        let r = &entry["resource"];
        if r["resourceType"] != "Consent" || is_current(r) != current {
            continue;
        }
        if r["scope"]["coding"][0]["code"].as_str().unwrap_or_default() != scope {
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

/// Whether a directive not in force is a treatment directive (4a-g, 4i) rather than an advance directive.
fn is_treatment_directive(d: &DirectiveNotInForce) -> bool {
    !matches!(d.directive, RecordedDirective::AdvanceDirective(_))
}

/// The letter's section 4 (the current limits): from its heading to section 5.
fn current_limits_section(letter: &str) -> &str {
    let start = letter.find("\n4. Behandelgrenzen\n").expect("section 4");
    let end = letter[start..].find("\n5. Behandelwensen").map_or(letter.len(), |e| start + e);
    &letter[start..end]
}

/// The heading of the letter's section of directives not in force.
const NOT_IN_FORCE_HEADING: &str = "Niet (meer) geldende afspraken - geen behandelgrens:";

proptest! {
    #![proptest_config(config(10_000))]

    /// No directive that is not in force ever reads as a current limit: in the FHIR output every
    /// Consent that is a current limit (status active, no end) is one of the record's current limits,
    /// each directive not in force is a Consent of its own status (with its end), and in the letter a
    /// treatment whose only directive is not in force reads "niet vastgelegd" among the limits, while
    /// the directive stands in its own section after everything current.
    #[test]
    fn directives_not_in_force_never_read_as_current_limits(record in arb_record()) {
        let bundle: Value = serde_json::from_str(&render::fhir::to_json(
            &render::fhir::bundle(&record, BundleKind::Collection),
        ))
        .expect("the renderer writes JSON");
        // FHIR: the current Consents are exactly the current limits (4a-g, 4i) and advance directives.
        let current = directive_consents(&bundle, "treatment", true);
        let expected = NAMED_TREATMENTS.iter().filter(|t| record.treatment_limits.get(**t).is_some()).count()
            + record.treatment_limits.other.len()
            + usize::from(record.icd_deactivation.is_some());
        prop_assert_eq!(current.len(), expected, "current treatment Consents");
        prop_assert_eq!(directive_consents(&bundle, "adr", true).len(), record.advance_directives.len());
        let aside_treatments = record.directives_not_in_force.iter().filter(|d| is_treatment_directive(d)).count();
        prop_assert_eq!(directive_consents(&bundle, "treatment", false).len(), aside_treatments, "Consents not in force");
        prop_assert_eq!(
            directive_consents(&bundle, "adr", false).len(),
            record.directives_not_in_force.len() - aside_treatments
        );
        for t in NAMED_TREATMENTS {
            let code = &t.entry().coding.code;
            if record.treatment_limits.get(t).is_none() {
                prop_assert!(!current.iter().any(|c| &c.0 == code), "{:?} has no current limit, yet an active Consent", t);
            }
        }
        // The letter: section 4 shows only current limits; the rest stands in its own section.
        let letter = render::letter::render(&record);
        let limits = current_limits_section(&letter);
        let labels = [
            (Treatment::Resuscitation, "  4a. Reanimatie: "),
            (Treatment::InvasiveVentilation, "  4b. Kunstmatige invasieve beademing: "),
            (Treatment::IcuAdmission, "  4c. Opname op intensive care: "),
            (Treatment::HospitalAdmission, "  4d. Opname in ziekenhuis: "),
            (Treatment::Antibiotics, "  4e. Behandeling met antibiotica: "),
            (Treatment::BloodProducts, "  4f. Toediening van een bloedproduct: "),
        ];
        for (t, label) in labels {
            let line = limits.lines().find(|l| l.starts_with(label));
            prop_assert!(line.is_some(), "{:?}: no line in section 4:\n{}", t, limits);
            if record.treatment_limits.get(t).is_none() {
                prop_assert_eq!(line.unwrap_or_default(), format!("{label}niet vastgelegd"), "{:?}", t);
            }
        }
        let other_lines = limits.lines().filter(|l| l.starts_with("  4g. Overige behandelgrens (")).count();
        prop_assert_eq!(other_lines, record.treatment_limits.other.len(), "4g lines in section 4");
        if record.icd_deactivation.is_none() {
            let icd_line = limits.lines().find(|l| l.starts_with("  4i. "));
            prop_assert!(icd_line.is_none_or(|l| l.ends_with(": niet vastgelegd")), "4i: {:?}", icd_line);
        }
        prop_assert!(!limits.contains(NOT_IN_FORCE_HEADING));
        match letter.find(NOT_IN_FORCE_HEADING) {
            None => prop_assert!(record.directives_not_in_force.is_empty(), "directives not in force are missing:\n{}", letter),
            Some(at) => {
                prop_assert!(at > letter.find("\nWilsverklaringen\n").unwrap_or(usize::MAX), "the section comes after everything current");
                let items = letter[at..].lines().filter(|l| l.starts_with("  - ")).count();
                prop_assert_eq!(items, record.directives_not_in_force.len(), "one line per directive not in force");
                for d in &record.directives_not_in_force {
                    let status = d.status.entry().coding.display.as_str();
                    let shown = match (&d.ended_on, d.status) {
                        (Some(_), DirectiveStatus::Active | DirectiveStatus::Inactive) => "beëindigd op",
                        _ => status,
                    };
                    prop_assert!(letter[at..].contains(&format!("[{shown}")), "status {:?} not shown", d.status);
                }
            }
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
