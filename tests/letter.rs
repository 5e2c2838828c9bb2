//! The clinical letter (`render::letter`): every decision, label and restriction text of the record
//! appears on the line of its item; unknown answers and unrecorded items are stated, never left out.

mod handover_records;

use acp_gateway::record::*;
use acp_gateway::render::letter;
use handover_records::*;

/// The line of an item (the first whose text starts with `prefix`) and its continuation lines (those
/// indented deeper, up to a blank line), joined with spaces.
fn item(letter: &str, prefix: &str) -> String {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let lines: Vec<&str> = letter.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim_start().starts_with(prefix))
        .unwrap_or_else(|| panic!("no item {prefix:?} in the letter:\n{letter}"));
    let mut out = vec![lines[start].trim()];
    for l in &lines[start + 1..] {
        if l.trim().is_empty() || indent(l) <= indent(lines[start]) {
            break;
        }
        out.push(l.trim());
    }
    out.join(" ")
}

/// How the letter must show a decision.
fn shown(d: &Decision) -> String {
    let display = d.code().entry().coding.display.clone();
    match d {
        Decision::DoNotPerform => display.to_uppercase(),
        Decision::PerformWithRestrictions { restriction } => {
            format!("Ja, maar met beperkingen: {}", letter::shown_text(restriction))
        }
        Decision::Perform | Decision::Unknown => display,
    }
}

const LIMIT_ITEMS: [&str; 6] = ["4a.", "4b.", "4c.", "4d.", "4e.", "4f."];

#[test]
fn every_decision_appears_on_its_treatments_line() {
    for record in every_decision() {
        let text = letter::render(&record);
        for (prefix, t) in LIMIT_ITEMS.iter().zip(NAMED_TREATMENTS) {
            let limit = record.treatment_limits.get(t).unwrap();
            let line = item(&text, prefix);
            let first = line.split("Toelichting").next().unwrap().trim_end();
            assert!(first.ends_with(&format!(": {}", shown(&limit.decision))), "{prefix}: {line}");
            assert!(line.contains(&format!("Toelichting: Toelichting bij {}", t.key())), "{line}");
            assert!(line.contains("Laatst besproken: 20-05-2025"), "{line}");
        }
        let other = &record.treatment_limits.other[0];
        let line = item(&text, "4g.");
        assert!(line.contains(OTHER_TREATMENT) && line.contains(&shown(&other.limit.decision)), "{line}");
    }
}

#[test]
fn do_not_perform_is_only_ever_in_capitals_and_restrictions_are_verbatim() {
    let record = full(2); // 4a resuscitation: do-not-perform
    assert_eq!(record.treatment_limits.resuscitation.as_ref().unwrap().decision, Decision::DoNotPerform);
    let text = letter::render(&record);
    let display = DecisionCode::DoNotPerform.entry().coding.display.clone();
    assert!(text.contains(&format!("Reanimatie: {}", display.to_uppercase())), "{text}");
    assert!(!text.contains(&display), "mixed-case '{display}' is easy to overlook:\n{text}");
    for t in NAMED_TREATMENTS {
        if let Some(r) = record.treatment_limits.get(t).unwrap().decision.restriction() {
            assert!(text.contains(&letter::shown_text(r)), "restriction {r:?} changed:\n{text}");
        }
    }
}

#[test]
fn every_label_of_a_full_record_appears() {
    let record = full(0);
    let text = letter::render(&record);
    let expect = |prefix: &str, want: &[&str]| {
        let line = item(&text, prefix);
        for w in want {
            assert!(line.contains(w), "{prefix}: missing {w:?} in {line:?}");
        }
    };
    let function = ProfessionalFunction::GeneralPractitioner.entry().coding.display.as_str();
    expect("Naam:", &["Grietje Maria van der Bakker"]);
    expect("Geboortedatum:", &["09-03-1941"]);
    expect("BSN:", &["999990019"]);
    expect("Datum van het gesprek:", &["02-06-2025 10:30"]);
    expect("Gesprek gevoerd door:", &["Anna Jansen", function]);
    expect(
        "Gesprek gevoerd in bijzijn van:",
        &[&ContactRole::Mentor.entry().coding.display, &Relationship::Son.entry().coding.display, "buurvrouw"],
    );
    expect("Wilsbekwaam", &["Nee", "Dementie, matig"]);
    expect(
        "Wettelijk vertegenwoordiger:",
        &[
            "Pieter Bakker",
            &ContactRole::Mentor.entry().coding.display,
            &Relationship::Son.entry().coding.display,
            "06-12345678",
            &TelecomType::Mobile.entry().coding.display,
            &NumberUse::Home.entry().coding.display,
            "bereikbaar na 18 uur",
            "p.bakker@example.nl",
            &EmailUse::Private.entry().coding.display,
        ],
    );
    expect("Eerste contactpersoon:", &["Ineke de Wit", "buurvrouw", "020-7654321"]);
    expect("3.", &[&MedicalPolicyGoal::PalliativeSymptomRelief.entry().coding.display]);
    expect(
        "4h.",
        &[&YesNoUnknown::Yes.entry().coding.display, &IcdProductType::Icd.entry().coding.display, "Sinds 2019"],
    );
    expect(
        "4i.",
        &[
            &IcdDeactivationAgreement::Yes.entry().coding.display,
            "Uitzetten bij start palliatieve sedatie",
            "21-05-2025",
        ],
    );
    expect("5a.", &["Wil graag thuis blijven.", "Imam bezoekt haar wekelijks."]);
    expect(
        "5b.",
        &[&format!("{}: bij haar dochter in Gent", PlaceOfDeath::Other.entry().coding.display), "Dochter heeft ruimte"],
    );
    expect("5c.", &[&EuthanasiaPosition::NoEuthanasia.entry().coding.display, "Geloofsovertuiging"]);
    expect("5d.", &[&YesNoUnknown::No.entry().coding.display]);
    expect("6.", &["Haar kleinkinderen; de tuin; muziek van Bach."]);
    expect("7a.", &[&YesNoUnknown::Yes.entry().coding.display, "Niet-reanimerenpenning sinds 2020"]);
    expect("7b.", &[&YesNoUnknown::No.entry().coding.display]);
    expect("8a.", &["Ja"]);
    expect("8b.", &[&SharingConsent::Agreed.entry().coding.display]);
    expect(
        "- ",
        &[
            &AdvanceDirectiveType::DoNotResuscitate.entry().coding.display,
            "01-02-2020",
            "Penning gedragen",
            "NR-verklaring.pdf",
        ],
    );
    assert!(!text.contains("niet vastgelegd"), "a full record has nothing unrecorded:\n{text}");
}

#[test]
fn unknown_answers_are_stated_as_such() {
    let text = letter::render(&all_unknown());
    let unknown_decision = DecisionCode::Unknown.entry().coding.display.clone();
    for prefix in LIMIT_ITEMS {
        assert!(item(&text, prefix).ends_with(&format!(": {unknown_decision}")), "{}", item(&text, prefix));
    }
    let not_yet =
        |label: &str, prefix: &str| assert!(item(&text, prefix).contains(label), "{prefix}: {}", item(&text, prefix));
    not_yet(&MedicalPolicyGoal::Unknown.entry().coding.display, "3.");
    for prefix in ["4h.", "5d.", "7a."] {
        not_yet(&YesNoUnknown::Unknown.entry().coding.display, prefix);
    }
    not_yet(&PlaceOfDeath::Unknown.entry().coding.display, "5b.");
    not_yet(&EuthanasiaPosition::Unknown.entry().coding.display, "5c.");
    not_yet(&SharingConsent::Unknown.entry().coding.display, "8b.");
}

#[test]
fn unrecorded_items_are_stated_not_left_out() {
    let text = letter::render(&AcpRecord::default());
    for prefix in
        ["3.", "4a.", "4b.", "4c.", "4d.", "4e.", "4f.", "4h.", "5a.", "5b.", "5c.", "5d.", "6.", "7a.", "8a.", "8b."]
    {
        assert!(item(&text, prefix).contains("niet vastgelegd"), "{prefix}: {}", item(&text, prefix));
    }
    for prefix in [
        "Naam:",
        "Geboortedatum:",
        "BSN:",
        "Datum van het gesprek:",
        "Gesprek gevoerd door:",
        "Wilsbekwaam",
        "Wettelijk vertegenwoordiger:",
    ] {
        assert!(item(&text, prefix).contains("niet vastgelegd"), "{prefix}: {}", item(&text, prefix));
    }
    // 4i and 7b are asked only after a "Ja"; an empty record does not ask them.
    assert!(!text.contains("4i.") && !text.contains("7b."), "{text}");
}

#[test]
fn follow_up_questions_after_a_yes_are_stated_when_missing() {
    let mut record = full(0);
    record.icd_deactivation = None;
    record.earlier_agreements.as_mut().unwrap().differ_from_current = None;
    let text = letter::render(&record);
    assert!(item(&text, "4i.").ends_with("niet vastgelegd"), "{}", item(&text, "4i."));
    assert!(item(&text, "7b.").ends_with("niet vastgelegd"), "{}", item(&text, "7b."));
}

#[test]
fn every_fixture_letter_shows_each_treatment_limit() {
    let fixtures = fixtures();
    assert!(!fixtures.is_empty(), "fixtures/*.json");
    for (name, record) in fixtures {
        let text = letter::render(&record);
        for (prefix, t) in LIMIT_ITEMS.iter().zip(NAMED_TREATMENTS) {
            let line = item(&text, prefix);
            match record.treatment_limits.get(t) {
                Some(l) => assert!(line.contains(&shown(&l.decision)), "{name} {prefix}: {line}"),
                None => assert!(line.contains("niet vastgelegd"), "{name} {prefix}: {line}"),
            }
        }
        for other in &record.treatment_limits.other {
            assert!(text.contains(&shown(&other.limit.decision)), "{name} 4g:\n{text}");
        }
    }
}

#[test]
fn rendering_is_deterministic() {
    let record = full(1);
    assert_eq!(letter::render(&record), letter::render(&record.clone()));
}

#[test]
fn the_layout_has_no_stray_whitespace() {
    let mut records = every_decision();
    records.push(all_unknown());
    for record in records {
        let text = letter::render(&record);
        assert!(text.lines().all(|l| l == l.trim_end()), "trailing spaces:\n{text}");
        assert!(
            !text.contains("\n\n\n") && !text.starts_with('\n') && !text.ends_with("\n\n"),
            "stray blank lines:\n{text}"
        );
    }
}
