//! The uniform record JSON end to end: the fixtures match the JSON Schema and read without errors;
//! any valid record survives render → read unchanged; every broken variant in `fixtures/invalid/` is
//! refused at its exact location; and the fixtures, the generated records, the schema and the code's
//! enums cover the same answers, so none of them can drift from the others.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use acp_gateway::intake::{self, InputForm};
use acp_gateway::record::*;
use acp_gateway::render::record_json;
use acp_gateway::validate::rules::{self, Completeness};
use acp_gateway::validate::{IssueType, Location, Severity};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{RngSeed, TestRunner};
use serde_json::{json, Value};
use support::arb::{civil_from_days, days_from_civil};
use support::*;

fn json_of(name: &str, bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn pointer(p: &str) -> Location {
    Location::JsonPointer(p.to_owned())
}

// --- (a) the fixtures ---------------------------------------------------------------------------------

#[test]
fn the_schema_is_a_closed_described_draft_2020_12_schema() {
    let schema = record_schema();
    if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
        panic!("mappings/acp-record.schema.json is not a valid draft 2020-12 schema: {e}");
    }
    // Every object is closed (an unknown key is a typo) and every item says what it is on the form.
    fn walk(node: &Value, at: &str, out: &mut Vec<String>) {
        let Some(obj) = node.as_object() else { return };
        if let Some(props) = obj.get("properties").and_then(Value::as_object) {
            if obj.get("additionalProperties") != Some(&Value::Bool(false)) {
                out.push(format!("{at}: not closed with additionalProperties: false"));
            }
            for (key, prop) in props {
                let described = prop.get("description").and_then(Value::as_str).is_some_and(|d| !d.is_empty());
                if prop.is_object() && !described {
                    out.push(format!("{at}/properties/{key}: no description"));
                }
            }
        }
        // Conditions (if/then/else/not) only test values; they describe no item.
        for (key, child) in obj.iter().filter(|(k, _)| !["if", "then", "else", "not"].contains(&k.as_str())) {
            match child {
                Value::Object(_) => walk(child, &format!("{at}/{key}"), out),
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        walk(item, &format!("{at}/{key}/{i}"), out);
                    }
                }
                _ => {}
            }
        }
    }
    let mut faults = Vec::new();
    walk(&schema, "", &mut faults);
    assert!(faults.is_empty(), "{faults:#?}");
    let described = |p: &str| schema.pointer(p).and_then(|v| v["description"].as_str()).unwrap_or_default().to_owned();
    assert!(described("/properties/date_filled_in").contains("963"));
    assert!(described("/properties/treatment_limits/properties/resuscitation").contains("Reanimatie"));
}

#[test]
fn fixtures_match_the_schema_read_cleanly_and_survive_render_and_read() {
    let fixtures = uniform_fixtures();
    assert!(fixtures.len() >= 8, "at least 8 uniform fixtures, found {}", fixtures.len());
    let validator = record_validator();
    for (name, bytes) in &fixtures {
        let json = json_of(name, bytes);
        let violations = schema_violations(&validator, &json);
        assert!(violations.is_empty(), "{name} violates the schema:\n{}", violations.join("\n"));

        assert_eq!(intake::read(bytes).form, Some(InputForm::UniformRecord), "{name}");
        let record = read_valid(name, bytes);
        // The record holds exactly what the fixture says: nothing dropped or rewritten on the way in.
        let mut written = json.clone();
        if let Some(o) = written.as_object_mut() {
            o.remove("$schema");
        }
        assert_eq!(serde_json::to_value(&record).ok(), Some(written), "{name}");

        let rendered = record_json::render(&record);
        let again = read_valid(&format!("{name}, rendered"), rendered.as_bytes());
        assert_eq!(again, record, "{name}: render → read changed the record");
        assert_eq!(record_json::render(&again), rendered, "{name}: rendering is stable");
    }
}

// --- (b) generated records ----------------------------------------------------------------------------

/// Fixed seed: the suite gives the same verdict on every run and machine.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, rng_seed: RngSeed::Fixed(20_251_123), failure_persistence: None, ..ProptestConfig::default() }
}

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(record_validator)
}

proptest! {
    #![proptest_config(config(2000))]

    /// Any valid record is rendered and read back unchanged, and intake adds no problem of its own:
    /// the only problems are the record rules' warnings (items not recorded), never an error.
    #[test]
    fn generated_records_survive_render_and_read(record in arb_record()) {
        let rule_problems = rules::check(&record, Completeness::Complete, &pointer);
        prop_assert!(errors(&rule_problems).is_empty(), "generated record breaks a rule:\n{}", list(&errors(&rule_problems)));
        let rendered = record_json::render(&record);
        let intake = intake::read(rendered.as_bytes());
        prop_assert_eq!(&intake.problems, &rule_problems, "{}", rendered);
        prop_assert_eq!(intake.form, Some(InputForm::UniformRecord));
        prop_assert_eq!(intake.record.as_ref(), Some(&record), "{}", rendered);
    }
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn generated_records_match_the_schema(record in arb_record()) {
        let json = serde_json::to_value(&record).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let violations = schema_violations(validator(), &json);
        prop_assert!(violations.is_empty(), "{}\n{:#}", violations.join("\n"), json);
    }
}

/// One way to damage a valid record: replace a value, remove it, or add a key nobody knows.
#[derive(Debug, Clone)]
enum Damage {
    Replace(Value),
    Remove,
    AddUnknownKey,
}

fn arb_damage() -> impl Strategy<Value = Damage> {
    let values = vec![
        Value::Null,
        Value::Bool(true),
        json!(42),
        json!("x"),
        json!("other"),
        json!("2023-02-30"),
        json!([]),
        json!({}),
    ];
    prop_oneof![
        proptest::sample::select(values).prop_map(Damage::Replace),
        Just(Damage::Remove),
        Just(Damage::AddUnknownKey),
    ]
}

/// The pointer of every value below the root.
fn node_pointers(v: &Value, at: &str, out: &mut Vec<String>) {
    let children: Vec<(String, &Value)> = match v {
        Value::Object(map) => map.iter().map(|(k, c)| (format!("{at}/{k}"), c)).collect(),
        Value::Array(items) => items.iter().enumerate().map(|(i, c)| (format!("{at}/{i}"), c)).collect(),
        _ => Vec::new(),
    };
    for (here, child) in children {
        out.push(here.clone());
        node_pointers(child, &here, out);
    }
}

fn parent_of(pointer: &str) -> (&str, &str) {
    pointer.rsplit_once('/').unwrap_or(("", pointer))
}

/// Damages `doc` at `target`; for an added key, returns the pointer where it was added.
fn damage(doc: &mut Value, target: &str, how: &Damage) -> Option<String> {
    match how {
        Damage::Replace(v) => {
            if let Some(slot) = doc.pointer_mut(target) {
                *slot = v.clone();
            }
            None
        }
        Damage::Remove => {
            let (parent, last) = parent_of(target);
            match doc.pointer_mut(parent) {
                Some(Value::Object(map)) => {
                    map.remove(last);
                }
                Some(Value::Array(items)) => {
                    if let Ok(i) = last.parse::<usize>() {
                        items.remove(i);
                    }
                }
                _ => {}
            }
            None
        }
        Damage::AddUnknownKey => {
            // The nearest object at or above the target.
            let mut at = target.to_owned();
            loop {
                if let Some(Value::Object(map)) = doc.pointer_mut(&at) {
                    map.insert("unknown_item".into(), json!("?"));
                    return Some(format!("{at}/unknown_item"));
                }
                at = parent_of(&at).0.to_owned();
            }
        }
    }
}

proptest! {
    #![proptest_config(config(500))]

    /// Whatever is damaged, reading does not panic, a problem with a value points at that value in the
    /// input (only a missing item, or a rule's warning, can point where there is nothing), and an unknown
    /// key is an error exactly where it was added.
    #[test]
    fn damaged_records_are_reported_where_the_damage_is(
        record in arb_record(),
        at in any::<proptest::sample::Index>(),
        how in arb_damage(),
    ) {
        let mut doc = serde_json::to_value(&record).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut nodes = Vec::new();
        node_pointers(&doc, "", &mut nodes);
        let target = at.get(&nodes).clone();
        let added = damage(&mut doc, &target, &how);
        let bytes = serde_json::to_vec(&doc).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let intake = intake::read(&bytes);
        for p in &intake.problems {
            let Location::JsonPointer(ptr) = &p.location else {
                return Err(TestCaseError::fail(format!("not a JSON pointer: {p}")));
            };
            let missing_item = p.issue_type == IssueType::Required || p.severity == Severity::Warning;
            prop_assert!(missing_item || doc.pointer(ptr).is_some(), "{} points at nothing in\n{:#}", p, doc);
        }
        if let Some(ptr) = added {
            prop_assert!(
                intake.problems.iter().any(|p| p.location == pointer(&ptr) && p.severity == Severity::Error),
                "no error at {}: {:#?}", ptr, intake.problems
            );
        }
    }
}

#[test]
fn generated_dates_are_real_calendar_days() {
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
    assert_eq!(days_from_civil(2024, 3, 1) - days_from_civil(2024, 2, 28), 2);
    assert_eq!(civil_from_days(days_from_civil(1900, 3, 1) - 1), (1900, 2, 28));
}

/// A fixed sample of generated records, serialised.
fn generated_sample(n: usize) -> Vec<Value> {
    let mut runner = TestRunner::deterministic();
    let strategy = arb_record();
    (0..n)
        .map(|_| {
            let record = strategy.new_tree(&mut runner).map(|t| t.current()).unwrap_or_else(|e| panic!("{e}"));
            serde_json::to_value(&record).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect()
}

// --- (c) broken variants -------------------------------------------------------------------------------

/// How a broken variant must be refused: exactly these error locations (with the kind of problem found
/// there), and whether the JSON Schema refuses it as well. Some rules are beyond a schema (the 11-proof,
/// calendar dates, the order of dates), so the schema alone never suffices.
struct Broken {
    file: &'static str,
    errors: &'static [(&'static str, IssueType)],
    schema_refuses: bool,
}

const fn broken(file: &'static str, errors: &'static [(&'static str, IssueType)], schema_refuses: bool) -> Broken {
    Broken { file, errors, schema_refuses }
}

use IssueType::{CodeInvalid, Invariant, NotSupported, Required, Structure, TooCostly, Value as Val};

const BROKEN: &[Broken] = &[
    broken("advance-directive-before-birth.json", &[("/advance_directives/0/date", Invariant)], false),
    broken("bad-agb.json", &[("/conducted_by/agb", Val)], true),
    broken("bad-base64-document.json", &[("/advance_directives/0/document/data", Val)], true),
    broken("bad-bsn-eleven-proof.json", &[("/patient/bsn", Val)], false),
    broken("bsn-among-other-identifiers.json", &[("/patient/other_identifiers/0/system", Invariant)], false),
    broken("bsn-as-json-number.json", &[("/patient/bsn", Val)], true),
    broken("deeply-nested-arrays.json", &[("line 1, column 143", TooCostly)], false),
    broken("differ-without-earlier-agreements-yes.json", &[("/earlier_agreements/differ_from_current", Invariant)], true),
    broken("discussion-after-date-filled-in.json", &[("/treatment_limits/antibiotics/discussed_on", Invariant)], false),
    broken("document-without-content-type.json", &[("/advance_directives/0/document/content_type", Required)], true),
    broken("empty.json", &[("(document)", Structure)], false),
    broken("icd-deactivation-without-icd.json", &[("/icd_deactivation", Invariant)], true),
    broken("identifier-without-value.json", &[("/patient/other_identifiers/0/value", Required)], true),
    broken("impossible-date-february-30.json", &[("/treatment_limits/resuscitation/discussed_on", Val)], false),
    broken("malformed-json-truncated.json", &[("line 52, column 2", Structure)], false),
    broken(
        "many-errors-at-once.json",
        &[
            ("/date_filled_in", Val),
            ("/patient/bsn", Val),
            ("/representative/phones/0/number", Required),
            ("/place_of_death/preference", Val),
            ("/sharing_consent", CodeInvalid),
        ],
        true,
    ),
    broken("missing-birth-date.json", &[("/patient/birth_date", Required)], true),
    broken("missing-family-name.json", &[("/patient/name/family", Required)], true),
    broken("non-utf8-latin1.json", &[("line 78", Structure)], false),
    broken("other-text-on-plain-relationship.json", &[("/representative/relationship/other", Invariant)], true),
    broken("presence-without-patient.json", &[("/present/patient", Required)], true),
    broken("restricted-decision-without-restriction.json", &[("/treatment_limits/hospital_admission/decision", Required)], true),
    broken("restriction-on-do-not-perform.json", &[("/treatment_limits/resuscitation/restriction", Invariant)], true),
    broken("restriction-reads-as-unknown.json", &[("/treatment_limits/icu_admission/restriction", Invariant)], false),
    broken("top-level-array.json", &[("(document)", Structure)], true),
    broken("treatment-limit-without-decision.json", &[("/treatment_limits/icu_admission/decision", Required)], true),
    broken("unknown-field-typo-nested.json", &[("/treatment_limits/resuscitation/explenation", NotSupported)], true),
    broken("unknown-field-typo-sharing-consent.json", &[("/sharing_concent", NotSupported)], true),
    broken("wrong-code-medical-policy-goal.json", &[("/medical_policy_goal", CodeInvalid)], true),
    broken("wrong-json-type-boolean.json", &[("/relatives_informed", Val)], true),
];

#[test]
fn every_broken_variant_is_refused_at_its_location() {
    let files = invalid_fixtures();
    let on_disk: BTreeSet<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    let listed: BTreeSet<&str> = BROKEN.iter().map(|b| b.file).collect();
    assert_eq!(on_disk, listed, "every file in fixtures/invalid/ has its expectation here, and only those");

    let validator = record_validator();
    for (name, bytes) in &files {
        let Some(expected) = BROKEN.iter().find(|b| b.file == name) else { continue };
        let intake = intake::read(bytes);
        assert!(!intake.is_valid(), "{name} was accepted");
        let errors = errors(&intake.problems);
        let found: BTreeSet<String> = errors.iter().map(|p| p.location.to_string()).collect();
        let wanted: BTreeSet<String> = expected.errors.iter().map(|(l, _)| (*l).to_owned()).collect();
        assert_eq!(found, wanted, "{name}: error locations\n{}", list(&errors));
        for (location, kind) in expected.errors {
            assert!(
                errors.iter().any(|p| p.location.to_string() == *location && p.issue_type == *kind),
                "{name}: no {kind:?} error at {location}\n{}",
                list(&errors)
            );
        }
        assert!(errors.iter().all(|p| p.severity == Severity::Error && !p.message.is_empty()));
        if expected.schema_refuses {
            let json = json_of(name, bytes);
            assert!(!validator.is_valid(&json), "{name}: the schema accepts it");
        }
    }
}

// --- (d) coverage: fixtures, generated records, schema and enums in step ---------------------------------

/// Every coded item's value set name and answer keys, in the code's order.
fn coded_enums() -> Vec<(&'static str, Vec<&'static str>)> {
    fn k<T: Coded>() -> (&'static str, Vec<&'static str>) {
        (T::VALUE_SET, T::ALL.iter().map(|v| v.key()).collect())
    }
    vec![
        k::<ProfessionalFunction>(),
        k::<TelecomType>(),
        k::<NumberUse>(),
        k::<EmailUse>(),
        k::<ContactRole>(),
        k::<Relationship>(),
        k::<MedicalPolicyGoal>(),
        k::<DecisionCode>(),
        k::<Treatment>(),
        k::<YesNoUnknown>(),
        k::<IcdProductType>(),
        k::<IcdDeactivationAgreement>(),
        k::<PlaceOfDeath>(),
        k::<EuthanasiaPosition>(),
        k::<SharingConsent>(),
        k::<AdvanceDirectiveType>(),
        k::<DirectiveStatus>(),
    ]
}

/// The values at a pointer pattern, where `*` stands for any array index.
fn values_at<'a>(doc: &'a Value, pattern: &str) -> Vec<&'a Value> {
    let mut nodes = vec![doc];
    for seg in pattern.split('/').skip(1) {
        nodes = nodes
            .into_iter()
            .flat_map(|n| match (seg, n) {
                ("*", Value::Array(items)) => items.iter().collect::<Vec<_>>(),
                (key, Value::Object(map)) => map.get(key).into_iter().collect(),
                _ => Vec::new(),
            })
            .collect();
    }
    nodes
}

/// Where each coded item is answered in the uniform JSON. A value set used in several places is listed
/// per place where every answer must occur at that very place (the decision of each treatment, each
/// Ja/Nee/Onbekend question), and once for all its places otherwise.
fn coded_places() -> Vec<(&'static str, Vec<String>)> {
    let p = |patterns: &[&str]| patterns.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let mut places = vec![
        ("professional-function", p(&["/conducted_by/function"])),
        ("telecom-type", p(&["/representative/phones/*/type", "/first_contact/phones/*/type"])),
        ("number-use", p(&["/representative/phones/*/use", "/first_contact/phones/*/use"])),
        ("email-use", p(&["/representative/emails/*/use", "/first_contact/emails/*/use"])),
        ("contact-role", p(&["/representative/roles/*/code", "/present/roles/*/code"])),
        (
            "relationship",
            p(&["/representative/relationship/code", "/first_contact/relationship/code", "/present/relationships/*/code"]),
        ),
        ("medical-policy-goal", p(&["/medical_policy_goal"])),
        ("treatment-decision", p(&["/treatment_limits/other/*/decision"])),
        ("icd-product-type", p(&["/icd/product_type"])),
        ("icd-deactivation-agreement", p(&["/icd_deactivation/agreement"])),
        ("place-of-death", p(&["/place_of_death/preference/code"])),
        ("euthanasia-position", p(&["/euthanasia/position"])),
        ("sharing-consent", p(&["/sharing_consent"])),
        ("advance-directive-type", p(&["/advance_directives/*/type"])),
        ("directive-status", p(&["/directives_not_in_force/*/status"])),
    ];
    for t in NAMED_TREATMENTS {
        places.push(("treatment-decision", vec![format!("/treatment_limits/{}/decision", TreatmentLimits::field_name(t))]));
    }
    let yes_no_unknown =
        ["/icd/present", "/organ_donation_registered", "/earlier_agreements/recorded", "/earlier_agreements/differ_from_current"];
    for at in yes_no_unknown {
        places.push(("yes-no-unknown", vec![at.to_owned()]));
    }
    places
}

/// Where each treatment's limit lives: a named slot, the list of 4g, or 4i.
fn treatment_place(t: Treatment) -> String {
    match t {
        Treatment::Other => "/treatment_limits/other/*".to_owned(),
        Treatment::IcdDeactivation => "/icd_deactivation".to_owned(),
        named => format!("/treatment_limits/{}", TreatmentLimits::field_name(named)),
    }
}

/// A shape the form allows: what it is, where, and how to recognise it.
type Shape<'a> = (&'a str, &'a str, &'a dyn Fn(&Value) -> bool);

/// What `docs` leave uncovered: answers that never occur at their place, and the shapes the form allows
/// that never occur ("Anders, namelijk" texts, 4g with and without a name, an attached document).
fn uncovered(docs: &[Value]) -> Vec<String> {
    let enums: BTreeMap<&str, Vec<&str>> = coded_enums().into_iter().collect();
    let mut missing = Vec::new();
    for (vs, patterns) in coded_places() {
        let found: BTreeSet<&str> = docs
            .iter()
            .flat_map(|d| patterns.iter().flat_map(move |p| values_at(d, p)))
            .filter_map(Value::as_str)
            .collect();
        for key in enums.get(vs).into_iter().flatten() {
            if !found.contains(key) {
                missing.push(format!("[{vs}] '{key}' never occurs at {patterns:?}"));
            }
        }
    }
    for t in Treatment::ALL {
        let at = treatment_place(*t);
        if docs.iter().all(|d| values_at(d, &at).is_empty()) {
            missing.push(format!("[treatment] '{}' never occurs at {at}", t.key()));
        }
    }
    let some = |pattern: &str, test: &dyn Fn(&Value) -> bool| docs.iter().any(|d| values_at(d, pattern).into_iter().any(test));
    let other_with_text = |v: &Value| v["code"] == "other" && v.get("other").is_some();
    let shapes: [Shape; 9] = [
        ("a representative role 'other' with its text", "/representative/roles/*", &other_with_text),
        ("a role present 'other' with its text", "/present/roles/*", &other_with_text),
        ("a representative's relationship 'other' with its text", "/representative/relationship", &other_with_text),
        ("a relationship present 'other' with its text", "/present/relationships/*", &other_with_text),
        ("a place of death 'other' with its text", "/place_of_death/preference", &other_with_text),
        ("a 4g limit naming its treatment", "/treatment_limits/other/*", &|v| v.get("treatment").is_some()),
        ("a 4g limit without a treatment name", "/treatment_limits/other/*", &|v| v.get("treatment").is_none()),
        ("an advance directive with its document", "/advance_directives/*", &|v| v.get("document").is_some()),
        ("a professional with other identifiers", "/conducted_by/other_identifiers/*", &|v| v.get("value").is_some()),
    ];
    for (what, pattern, test) in shapes {
        if !some(pattern, test) {
            missing.push(format!("no {what} ({pattern})"));
        }
    }
    missing
}

/// Every property path the schema allows, with `*` for array items (`$schema` and the writer's
/// `partial` mark aside: neither is an item of the form).
fn schema_paths(schema: &Value) -> BTreeSet<String> {
    fn walk(root: &Value, node: &Value, at: &str, out: &mut BTreeSet<String>) {
        if let Some(target) = node.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
            if let Some(def) = root.pointer(target) {
                walk(root, def, at, out);
            }
        }
        if let Some(items) = node.get("items") {
            let here = format!("{at}/*");
            out.insert(here.clone());
            walk(root, items, &here, out);
        }
        for (key, prop) in node.get("properties").and_then(Value::as_object).into_iter().flatten() {
            if key != "$schema" && !(at.is_empty() && key == "partial") {
                let here = format!("{at}/{key}");
                out.insert(here.clone());
                walk(root, prop, &here, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(schema, schema, "", &mut out);
    out
}

/// Every path that occurs in `docs`, with `*` for array items.
fn doc_paths(docs: &[Value]) -> BTreeSet<String> {
    fn walk(node: &Value, at: &str, out: &mut BTreeSet<String>) {
        match node {
            Value::Object(map) => {
                for (k, v) in map {
                    let here = format!("{at}/{k}");
                    out.insert(here.clone());
                    walk(v, &here, out);
                }
            }
            Value::Array(items) => {
                let here = format!("{at}/*");
                for v in items {
                    out.insert(here.clone());
                    walk(v, &here, out);
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    for d in docs {
        walk(d, "", &mut out);
    }
    out.remove("/$schema");
    out
}

#[test]
fn the_fixtures_cover_every_answer_and_every_field() {
    let docs: Vec<Value> = uniform_fixtures().iter().map(|(n, b)| json_of(n, b)).collect();
    let missing = uncovered(&docs);
    assert!(missing.is_empty(), "the fixtures miss:\n{}", missing.join("\n"));
    let never: Vec<String> = schema_paths(&record_schema()).difference(&doc_paths(&docs)).cloned().collect();
    assert!(never.is_empty(), "schema items no fixture uses: {never:#?}");
}

#[test]
fn generated_records_cover_every_answer_and_every_field() {
    let docs = generated_sample(400);
    let missing = uncovered(&docs);
    assert!(missing.is_empty(), "arb_record() misses:\n{}", missing.join("\n"));
    let paths = doc_paths(&docs);
    let never: Vec<String> = schema_paths(&record_schema()).difference(&paths).cloned().collect();
    assert!(never.is_empty(), "schema items arb_record() never generates: {never:#?}");
    let unknown: Vec<String> = paths.difference(&schema_paths(&record_schema())).cloned().collect();
    assert!(unknown.is_empty(), "generated items the schema does not describe: {unknown:#?}");
}

#[test]
fn every_schema_enum_is_a_value_set_of_the_code() {
    let schema = record_schema();
    // Every enum of the schema sits in $defs under its value set's name ...
    fn enums(node: &Value, at: &str, out: &mut Vec<String>) {
        match node {
            Value::Object(map) => {
                for (k, v) in map {
                    if k == "enum" {
                        out.push(at.to_owned());
                    }
                    enums(v, &format!("{at}/{k}"), out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    enums(v, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    enums(&schema, "", &mut found);
    let in_schema: BTreeSet<String> =
        found.iter().filter_map(|at| at.strip_prefix("/$defs/")).map(str::to_owned).collect();
    assert_eq!(in_schema.len(), found.len(), "an enum outside $defs: {found:?}");

    // ... and equals the keys of the enum in src/record/codes.rs, in the form's order.
    let mut expected = BTreeSet::new();
    for (vs, keys) in coded_enums() {
        expected.insert(vs.to_owned());
        let in_def: Vec<&str> = schema["$defs"][vs]["enum"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        if vs == Treatment::VALUE_SET {
            // 4a-f by key (a directive not in force names its treatment); the current ones are the
            // keys of treatment_limits, checked below.
            let named: Vec<&str> = NAMED_TREATMENTS.iter().map(|t| t.key()).collect();
            assert_eq!(in_def, named, "$defs/{vs}/enum");
            continue;
        }
        assert_eq!(in_def, keys, "$defs/{vs}/enum");
    }
    assert_eq!(in_schema, expected, "schema enums and coded enums");

    let named: Vec<&str> = schema["properties"]["treatment_limits"]["properties"]
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let mut slots: Vec<&str> = NAMED_TREATMENTS.iter().map(|t| TreatmentLimits::field_name(*t)).collect();
    slots.push(TreatmentLimits::field_name(Treatment::Other));
    assert_eq!(named, slots, "treatment_limits holds one slot per treatment of 4a-g");
}

/// The fixtures' BSNs are distinct (each fixture is another patient) and pass the 11-proof.
#[test]
fn fixture_patients_are_distinct_people() {
    let mut bsns = BTreeSet::new();
    for (name, bytes) in uniform_fixtures() {
        let raw = json_of(&name, &bytes)["patient"]["bsn"].as_str().map(str::to_owned);
        let bsn = raw.as_deref().map(Bsn::parse);
        assert!(matches!(bsn, Some(Ok(_))), "{name}: {bsn:?}");
        assert!(bsns.insert(raw), "{name} repeats another fixture's BSN");
    }
}
