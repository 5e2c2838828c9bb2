//! The QuestionnaireResponse form in both directions: the IKNL example read item by item, every answer
//! option of the real Questionnaire reachable, broken responses reported at their exact FHIRPath, and
//! records surviving record → QuestionnaireResponse → record (minus what the form cannot carry).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

mod support;

use acp_gateway::intake::{self, InputForm, Intake};
use acp_gateway::record::*;
use acp_gateway::render::questionnaire::render;
use acp_gateway::validate::{IssueType, Problem, Severity};
use serde_json::{json, Value};
use support::questionnaire_projection;

const RESOURCES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/reference/iknl-pzp-r4/resources/");
const EXAMPLE: &str = "QuestionnaireResponse-HendrikHartman-20201001.json";
const OLD_CANONICAL: &str = "https://fhir.iknl.nl/fhir/Questionnaire/ACP-zib2020";
const NEW_CANONICAL: &str = "https://api.iknl.nl/docs/pzp/r4/Questionnaire/ACP-zib2020";

fn shared(name: &str) -> Value {
    let path = format!("{RESOURCES}{name}");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e} (keep ../shared beside the project)"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn read(v: &Value) -> Intake {
    intake::read(&serde_json::to_vec(v).unwrap())
}

fn errors(i: &Intake) -> Vec<&Problem> {
    i.problems.iter().filter(|p| p.severity == Severity::Error).collect()
}

fn error_locations(i: &Intake) -> BTreeSet<String> {
    errors(i).iter().map(|p| p.location.to_string()).collect()
}

/// The record of an input that must be free of errors.
fn record_of(v: &Value) -> AcpRecord {
    let i = read(v);
    assert!(errors(&i).is_empty(), "unexpected errors: {:#?}", errors(&i));
    i.record.expect("a record")
}

/// The item with `link` anywhere in a QuestionnaireResponse (under `item` or `answer.item`).
fn find_item<'a>(v: &'a Value, link: &str) -> Option<&'a Value> {
    if v.get("linkId").and_then(Value::as_str) == Some(link) {
        return Some(v);
    }
    let nested = v.get("item").and_then(Value::as_array).into_iter().flatten();
    let under_answers = v
        .get("answer")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| a.get("item").and_then(Value::as_array))
        .flatten();
    nested.chain(under_answers).find_map(|c| find_item(c, link))
}

fn find_item_mut<'a>(v: &'a mut Value, link: &str) -> Option<&'a mut Value> {
    if v.get("linkId").and_then(Value::as_str) == Some(link) {
        return Some(v);
    }
    let obj = v.as_object_mut()?;
    let mut children: Vec<&'a mut Value> = Vec::new();
    for (k, c) in obj.iter_mut() {
        match (k.as_str(), c) {
            ("item", Value::Array(items)) => children.extend(items.iter_mut()),
            ("answer", Value::Array(answers)) => {
                for a in answers.iter_mut() {
                    if let Some(Value::Array(items)) = a.get_mut("item") {
                        children.extend(items.iter_mut());
                    }
                }
            }
            _ => {}
        }
    }
    children.into_iter().find_map(|c| find_item_mut(c, link))
}

/// The first answer's value of an item in the source.
fn answer<'a>(src: &'a Value, link: &str, key: &str) -> &'a Value {
    find_item(src, link)
        .and_then(|i| i.pointer(&format!("/answer/0/{key}")))
        .unwrap_or_else(|| panic!("the source has no {key} for {link}"))
}

fn text(src: &Value, link: &str) -> Option<String> {
    answer(src, link, "valueString").as_str().map(str::to_owned)
}

fn date(src: &Value, link: &str) -> Option<FhirDate> {
    answer(src, link, "valueDateTime").as_str().and_then(|s| FhirDate::parse(s).ok())
}

fn code(src: &Value, link: &str) -> String {
    let c = answer(src, link, "valueCoding");
    format!("{}#{}", c["system"].as_str().unwrap_or(""), c["code"].as_str().unwrap_or(""))
}

fn limit(decision: Decision, explanation: Option<String>) -> Option<TreatmentLimit> {
    Some(TreatmentLimit { decision, explanation, discussed_on: None })
}

// --- (a) the IKNL example, item by item --------------------------------------------------------------

#[test]
fn the_iknl_example_reads_without_errors_and_every_value_matches_its_item() {
    let src = shared(EXAMPLE);
    let intake = read(&src);
    assert_eq!(intake.form, Some(InputForm::QuestionnaireResponse));
    assert!(errors(&intake).is_empty(), "{:#?}", errors(&intake));
    let r = intake.record.clone().expect("a record");

    // Header.
    assert_eq!(r.date_filled_in, date(&src, "963"));
    assert_eq!(r.date_filled_in.as_ref().map(FhirDate::as_str), Some("2020-10-01T16:27:36.364Z"));
    assert_eq!(r.patient.name.given, text(&src, "964"));
    assert_eq!(r.patient.name.given.as_deref(), Some("Hendrik"));
    assert_eq!(r.patient.name.prefix, None);
    assert_eq!(r.patient.name.family, text(&src, "966"));
    assert_eq!(r.patient.name.family.as_deref(), Some("Hartman"));
    assert_eq!(r.patient.birth_date, date(&src, "967"));
    assert_eq!(r.patient.bsn, None, "the example has no subject");
    let pro = r.conducted_by.as_ref().expect("8 Gesprek gevoerd door");
    assert_eq!(pro.name.given, None);
    assert_eq!(pro.name.prefix, text(&src, "969"));
    assert_eq!(pro.name.prefix.as_deref(), Some("van"));
    assert_eq!(pro.name.family, text(&src, "970"));
    assert_eq!(pro.name.family.as_deref(), Some("Huissen"));
    assert_eq!(code(&src, "1405"), "http://fhir.nl/fhir/NamingSystem/uzi-rolcode#01.015");
    assert_eq!(pro.function, Some(ProfessionalFunction::GeneralPractitioner));

    // 1. Capacity and representative.
    assert_eq!(code(&src, "1406"), "#1");
    assert_eq!(r.legal_capacity, Some(LegalCapacity { capable: Some(true), explanation: None }));
    let rep = r.representative.as_ref().expect("1a-d representative");
    assert_eq!(rep.person.name.given, text(&src, "973"));
    assert_eq!(rep.person.name.given.as_deref(), Some("Michiel"));
    assert_eq!(rep.person.name.family, text(&src, "975"));
    assert_eq!(rep.person.name.family.as_deref(), Some("Hartman"));
    assert!(rep.person.phones.is_empty());
    assert_eq!(rep.person.emails.len(), 1);
    assert_eq!(Some(rep.person.emails[0].address.clone()), text(&src, "980"));
    assert_eq!(rep.person.emails[0].address, "michiel.hartman@iknl.nl");
    assert_eq!(code(&src, "981"), "http://terminology.hl7.org/CodeSystem/v3-AddressUse#HP");
    assert_eq!(rep.person.emails[0].email_use, Some(EmailUse::Private));
    assert_eq!(code(&src, "983"), "http://terminology.hl7.org/CodeSystem/v3-RoleCode#BRO");
    assert_eq!(rep.person.relationship, Some(Answer::code(Relationship::Brother)));
    assert!(rep.roles.is_empty());
    assert_eq!(code(&src, "984"), "#1");
    assert_eq!(rep.is_first_contact, Some(true));
    assert_eq!(r.first_contact, None);

    // 2. Present: the patient and the brother.
    assert_eq!(code(&src, "82"), "#Patiënt");
    assert_eq!(code(&src, "998"), "http://terminology.hl7.org/CodeSystem/v3-RoleCode#BRO");
    assert_eq!(
        r.present,
        Some(Presence { patient: true, roles: vec![], relationships: vec![Answer::code(Relationship::Brother)] })
    );

    // 3. Goal.
    assert_eq!(code(&src, "999"), "http://snomed.info/sct#1351964001");
    assert_eq!(r.medical_policy_goal, Some(MedicalPolicyGoal::PalliativeLifeProlonging));

    // 4a-f: all "Wel uitvoeren".
    for (t, link) in NAMED_TREATMENTS.iter().zip(["1386", "1387", "1390", "1393", "1396", "1399"]) {
        assert_eq!(code(&src, link), "urn:oid:2.16.840.1.113883.2.4.3.11.60.40.4.25.1#0");
        assert_eq!(r.treatment_limits.get(*t), limit(Decision::Perform, None).as_ref(), "{t:?}");
    }
    // 4g: "Niet uitvoeren" with its explanation under the decision's answer.
    assert_eq!(code(&src, "1422"), "http://terminology.hl7.org/CodeSystem/v3-NullFlavor#OTH");
    assert_eq!(code(&src, "1402"), "urn:oid:2.16.840.1.113883.2.4.3.11.60.40.4.25.1#2");
    assert_eq!(
        r.treatment_limits.other,
        vec![OtherTreatmentLimit { treatment: None, limit: limit(Decision::DoNotPerform, text(&src, "1404")).unwrap() }]
    );
    assert_eq!(text(&src, "1404").as_deref(), Some("Alleen de bovengenomende afspraken zijn besproken"));
    // 4h/4i.
    assert_eq!(code(&src, "1006"), "http://snomed.info/sct#373066001");
    assert_eq!(code(&src, "1008"), "#ICD");
    assert_eq!(
        r.icd,
        Some(Icd { present: YesNoUnknown::Yes, product_type: Some(IcdProductType::Icd), explanation: text(&src, "1009") })
    );
    assert_eq!(text(&src, "1009").as_deref(), Some("Geïmplanteerd in 2018"));
    assert_eq!(code(&src, "1005"), "http://terminology.hl7.org/CodeSystem/v3-NullFlavor#NASK");
    assert_eq!(
        r.icd_deactivation,
        Some(IcdDeactivation {
            agreement: IcdDeactivationAgreement::NotDiscussed,
            explanation: text(&src, "1010"),
            discussed_on: None
        })
    );
    assert_eq!(text(&src, "1010").as_deref(), Some("Daar wil Hendrik het nog niet over hebben"));

    // 5.
    assert_eq!(r.care_wishes, text(&src, "1190"));
    assert!(r.care_wishes.as_deref().is_some_and(|s| s.starts_with("Hendrik wil er alles aan doen")));
    assert_eq!(code(&src, "1191"), "http://terminology.hl7.org/CodeSystem/v3-NullFlavor#UNK");
    assert_eq!(
        r.place_of_death,
        Some(PlaceOfDeathWish { preference: Answer::code(PlaceOfDeath::Unknown), explanation: text(&src, "1192") })
    );
    assert_eq!(code(&src, "1193"), "http://terminology.hl7.org/CodeSystem/v3-NullFlavor#UNK");
    assert_eq!(r.euthanasia, Some(Euthanasia { position: EuthanasiaPosition::Unknown, explanation: text(&src, "1194") }));
    assert_eq!(text(&src, "1194").as_deref(), Some("Nog niet besproken"));
    assert_eq!(code(&src, "1435"), "http://snomed.info/sct#373066001");
    assert_eq!(r.organ_donation_registered, Some(YesNoUnknown::Yes));

    // 6-8.
    assert_eq!(r.sense_of_purpose, text(&src, "1196"));
    assert!(r.sense_of_purpose.as_deref().is_some_and(|s| s.starts_with("Michiel gaat nadenken")));
    assert_eq!(code(&src, "1197"), "http://snomed.info/sct#373067005");
    assert_eq!(
        r.earlier_agreements,
        Some(EarlierAgreements { recorded: YesNoUnknown::No, explanation: None, differ_from_current: None })
    );
    assert_eq!(code(&src, "1200"), "#1");
    assert_eq!(r.relatives_informed, Some(true));
    assert_eq!(code(&src, "1201"), "http://snomed.info/sct#441898007");
    assert_eq!(r.sharing_consent, Some(SharingConsent::Agreed));
    assert!(r.advance_directives.is_empty());

    // Nothing else was decoded: the whole record is exactly the values above.
    assert_eq!(r, hendrik_hartman());
}

/// The example's record, written out by hand.
fn hendrik_hartman() -> AcpRecord {
    let s = |v: &str| Some(v.to_owned());
    AcpRecord {
        date_filled_in: FhirDate::parse("2020-10-01T16:27:36.364Z").ok(),
        patient: Patient {
            bsn: None,
            other_identifiers: vec![],
            name: Name { given: s("Hendrik"), prefix: None, family: s("Hartman") },
            birth_date: FhirDate::parse("1961-01-01T14:27:36.000Z").ok(),
        },
        conducted_by: Some(Professional {
            name: Name { given: None, prefix: s("van"), family: s("Huissen") },
            function: Some(ProfessionalFunction::GeneralPractitioner),
            agb: None,
            other_identifiers: vec![],
        }),
        legal_capacity: Some(LegalCapacity { capable: Some(true), explanation: None }),
        representative: Some(Representative {
            person: ContactPerson {
                name: Name { given: s("Michiel"), prefix: None, family: s("Hartman") },
                phones: vec![],
                emails: vec![Email { address: "michiel.hartman@iknl.nl".into(), email_use: Some(EmailUse::Private) }],
                relationship: Some(Answer::code(Relationship::Brother)),
            },
            roles: vec![],
            is_first_contact: Some(true),
        }),
        first_contact: None,
        present: Some(Presence { patient: true, roles: vec![], relationships: vec![Answer::code(Relationship::Brother)] }),
        medical_policy_goal: Some(MedicalPolicyGoal::PalliativeLifeProlonging),
        treatment_limits: TreatmentLimits {
            resuscitation: limit(Decision::Perform, None),
            invasive_ventilation: limit(Decision::Perform, None),
            icu_admission: limit(Decision::Perform, None),
            hospital_admission: limit(Decision::Perform, None),
            antibiotics: limit(Decision::Perform, None),
            blood_products: limit(Decision::Perform, None),
            other: vec![OtherTreatmentLimit {
                treatment: None,
                limit: TreatmentLimit {
                    decision: Decision::DoNotPerform,
                    explanation: s("Alleen de bovengenomende afspraken zijn besproken"),
                    discussed_on: None,
                },
            }],
        },
        icd: Some(Icd { present: YesNoUnknown::Yes, product_type: Some(IcdProductType::Icd), explanation: s("Geïmplanteerd in 2018") }),
        icd_deactivation: Some(IcdDeactivation {
            agreement: IcdDeactivationAgreement::NotDiscussed,
            explanation: s("Daar wil Hendrik het nog niet over hebben"),
            discussed_on: None,
        }),
        care_wishes: s("Hendrik wil er alles aan doen om zo lang mogelijk in goede gezondheid te kunnen leven. Hij probeert regelmatig te sporten en zou graag willen blijven hardlopen. Broer Michiel woont om de hoek en is erg betrokken bij het proces van Hendrik"),
        place_of_death: Some(PlaceOfDeathWish { preference: Answer::code(PlaceOfDeath::Unknown), explanation: s("Nog niet besproken") }),
        euthanasia: Some(Euthanasia { position: EuthanasiaPosition::Unknown, explanation: s("Nog niet besproken") }),
        organ_donation_registered: Some(YesNoUnknown::Yes),
        sense_of_purpose: s("Michiel gaat nadenken over wat hij belangrijk vindt. Over een tijdje vervolggesprek "),
        earlier_agreements: Some(EarlierAgreements { recorded: YesNoUnknown::No, explanation: None, differ_from_current: None }),
        relatives_informed: Some(true),
        sharing_consent: Some(SharingConsent::Agreed),
        advance_directives: vec![],
        directives_not_in_force: vec![],
    }
}

// --- (b) canonicals ------------------------------------------------------------------------------------

#[test]
fn old_and_new_canonicals_with_or_without_version_read_alike() {
    let expected = hendrik_hartman();
    for canonical in [
        NEW_CANONICAL.to_owned(),
        format!("{NEW_CANONICAL}|1.0.0-rc2"),
        OLD_CANONICAL.to_owned(),
        format!("{OLD_CANONICAL}|0.1.3-beta3"),
    ] {
        let mut src = shared(EXAMPLE);
        src["questionnaire"] = json!(canonical);
        assert_eq!(record_of(&src), expected, "{canonical}");
    }
}

// --- (c) every answer option of the Questionnaire -------------------------------------------------------

/// The shared Questionnaire, indexed by linkId.
struct Questionnaire {
    /// linkId → (parent linkId, item JSON), in the Questionnaire's order.
    items: Vec<(String, Option<String>, Value)>,
}

impl Questionnaire {
    fn load() -> Questionnaire {
        fn walk(list: &Value, parent: Option<&str>, out: &mut Vec<(String, Option<String>, Value)>) {
            for it in list.as_array().into_iter().flatten() {
                let link = it["linkId"].as_str().expect("linkId").to_owned();
                out.push((link.clone(), parent.map(str::to_owned), it.clone()));
                walk(&it["item"], Some(&link), out);
            }
        }
        let mut items = Vec::new();
        walk(&shared("Questionnaire-ACP-zib2020.json")["item"], None, &mut items);
        Questionnaire { items }
    }

    fn get(&self, link: &str) -> Option<&(String, Option<String>, Value)> {
        self.items.iter().find(|(l, _, _)| l == link)
    }

    fn options(&self, link: &str) -> Vec<Value> {
        let (_, _, it) = self.get(link).unwrap_or_else(|| panic!("no item {link}"));
        it["answerOption"].as_array().cloned().unwrap_or_default().into_iter().map(|o| o["valueCoding"].clone()).collect()
    }

    /// A response answering `answers` (linkId → answer objects), each item placed where the
    /// Questionnaire puts it: explanations under their question's answer, the rest under their group.
    fn response(&self, answers: &[(&str, Value)]) -> Value {
        let mut needed: BTreeSet<String> = BTreeSet::new();
        for (link, _) in answers {
            let mut next = Some(link.to_string());
            while let Some(l) = next {
                next = self.get(&l).unwrap_or_else(|| panic!("no item {l}")).1.clone();
                needed.insert(l);
            }
        }
        let answered: BTreeMap<&str, &Value> = answers.iter().map(|(l, a)| (*l, a)).collect();
        let items = self.nodes(None, &needed, &answered);
        json!({"resourceType": "QuestionnaireResponse", "questionnaire": NEW_CANONICAL, "status": "completed", "item": items})
    }

    /// The needed items under `parent`, in the Questionnaire's order, each with its own items.
    fn nodes(&self, parent: Option<&str>, needed: &BTreeSet<String>, answered: &BTreeMap<&str, &Value>) -> Vec<Value> {
        let links = self.items.iter().filter(|(l, p, _)| p.as_deref() == parent && needed.contains(l)).map(|(l, _, _)| l);
        links
            .map(|link| {
                let kids = self.nodes(Some(link), needed, answered);
                let mut item = json!({"linkId": link});
                match answered.get(link.as_str()) {
                    Some(a) => {
                        let mut a = (*a).clone();
                        if !kids.is_empty() {
                            a["item"] = Value::Array(kids);
                        }
                        item["answer"] = json!([a]);
                    }
                    None if !kids.is_empty() => item["item"] = Value::Array(kids),
                    None => {}
                }
                item
            })
            .collect()
    }
}

/// What every probe needs besides its item: the header the rules require.
fn header() -> Vec<(&'static str, Value)> {
    vec![
        ("963", json!({"valueDateTime": "2024-03-01"})),
        ("966", json!({"valueString": "Jansen"})),
        ("967", json!({"valueDateTime": "1950-05-06"})),
    ]
}

struct Probes {
    q: Questionnaire,
    done: BTreeSet<String>,
}

impl Probes {
    /// Answers item `link` with each of its Questionnaire options in turn (plus `with(option)`), and
    /// checks that the record holds `expect[i]` for option `i`.
    fn run<T: PartialEq + Debug>(
        &mut self,
        link: &str,
        with: impl Fn(&Value) -> Vec<(&'static str, Value)>,
        expect: &[T],
        get: impl Fn(&AcpRecord) -> T,
    ) {
        let options = self.q.options(link);
        assert_eq!(options.len(), expect.len(), "item {link} has {} options: {options:#?}", options.len());
        for (option, want) in options.iter().zip(expect) {
            let mut answers: Vec<(&str, Value)> = header();
            answers.push((link, json!({"valueCoding": option})));
            answers.extend(with(option));
            let qr = self.q.response(&answers);
            let r = record_of(&qr);
            assert_eq!(&get(&r), want, "item {link}, option {option}");
        }
        self.done.insert(link.to_owned());
    }
}

fn nothing(_: &Value) -> Vec<(&'static str, Value)> {
    vec![]
}

fn string(s: &str) -> Value {
    json!({"valueString": s})
}

fn coding(system: &str, code: &str) -> Value {
    json!({"valueCoding": {"system": system, "code": code}})
}

const DECISION_SYSTEM: &str = "urn:oid:2.16.840.1.113883.2.4.3.11.60.40.4.25.1";
const SNOMED: &str = "http://snomed.info/sct";

#[test]
fn every_answer_option_of_every_choice_item_is_read() {
    let mut p = Probes { q: Questionnaire::load(), done: BTreeSet::new() };
    use YesNoUnknown as Ynu;

    p.run("1405", nothing, ProfessionalFunction::ALL, |r| r.conducted_by.as_ref().and_then(|c| c.function).unwrap());
    p.run("1406", nothing, &[Some(true), Some(false)], |r| r.legal_capacity.as_ref().and_then(|l| l.capable));

    let rep = |r: &AcpRecord| r.representative.clone().expect("representative");
    let fc = |r: &AcpRecord| r.first_contact.clone().expect("first contact");
    let number = |link: &'static str| move |_: &Value| vec![(link, string("0612345678"))];
    use TelecomType as Tt;
    p.run("977", number("976"), &[Tt::Landline, Tt::Fax, Tt::Pager, Tt::Mobile], |r| {
        rep(r).person.phones[0].telecom_type.unwrap()
    });
    p.run("989", number("988"), &[Tt::Landline, Tt::Fax, Tt::Mobile, Tt::Pager], |r| fc(r).phones[0].telecom_type.unwrap());
    p.run("978", number("976"), NumberUse::ALL, |r| rep(r).person.phones[0].number_use.unwrap());
    p.run("990", number("988"), NumberUse::ALL, |r| fc(r).phones[0].number_use.unwrap());
    let address = |link: &'static str| move |_: &Value| vec![(link, string("a@example.org"))];
    p.run("981", address("980"), EmailUse::ALL, |r| rep(r).person.emails[0].email_use.unwrap());
    p.run("993", address("992"), EmailUse::ALL, |r| fc(r).emails[0].email_use.unwrap());
    use ContactRole as Cr;
    p.run(
        "982",
        nothing,
        &[Cr::LegalRepresentative, Cr::FirstContact, Cr::WrittenAuthorisation, Cr::Curator, Cr::Mentor, Cr::Other],
        |r| rep(r).roles[0].value(),
    );
    p.run("983", nothing, Relationship::ALL, |r| rep(r).person.relationship.unwrap().value());
    p.run("984", nothing, &[Some(true), Some(false)], |r| rep(r).is_first_contact);
    p.run("995", nothing, Relationship::ALL, |r| fc(r).relationship.unwrap().value());

    let present = |r: &AcpRecord| r.present.clone().expect("presence");
    p.run("82", nothing, &[true], |r| present(r).patient);
    p.run("997", nothing, &[Cr::Curator, Cr::Mentor, Cr::WrittenAuthorisation, Cr::Other], |r| present(r).roles[0].value());
    p.run("998", nothing, Relationship::ALL, |r| present(r).relationships[0].value());

    use MedicalPolicyGoal as G;
    // 225353007 (the Questionnaire's symptom-relief code) is the same answer as FHIR's 713148004.
    p.run("999", nothing, &[G::Curative, G::PalliativeLifeProlonging, G::PalliativeSymptomRelief, G::Unknown], |r| {
        r.medical_policy_goal.unwrap()
    });
    p.run("1408", |_| vec![("999", coding(SNOMED, "385987000"))], &[Some(G::Curative)], |r| r.medical_policy_goal);

    use DecisionCode as D;
    let groups = [
        ("1410", "1386", "1001"),
        ("1412", "1387", "1388"),
        ("1414", "1390", "1391"),
        ("1416", "1393", "1394"),
        ("1418", "1396", "1397"),
        ("1420", "1399", "1400"),
    ];
    for ((treatment, decision, restriction), t) in groups.into_iter().zip(NAMED_TREATMENTS) {
        let with = move |o: &Value| {
            if o["code"] == "1" {
                vec![(restriction, string("hooguit drie dagen"))]
            } else {
                vec![]
            }
        };
        p.run(decision, with, &[D::Perform, D::PerformWithRestrictions, D::DoNotPerform, D::Unknown], |r| {
            r.treatment_limits.get(t).unwrap().decision.code()
        });
        p.run(
            treatment,
            move |_| vec![(decision, coding(DECISION_SYSTEM, "2"))],
            &[Some(Decision::DoNotPerform)],
            |r| r.treatment_limits.get(t).map(|l| l.decision.clone()),
        );
    }
    p.run("1402", nothing, &[D::Perform, D::DoNotPerform, D::Unknown], |r| r.treatment_limits.other[0].limit.decision.code());
    p.run(
        "1422",
        |_| vec![("1402", coding(DECISION_SYSTEM, "0"))],
        &[(1, None)],
        |r| (r.treatment_limits.other.len(), r.treatment_limits.other[0].treatment.clone()),
    );

    p.run("1006", nothing, Ynu::ALL, |r| r.icd.as_ref().unwrap().present);
    p.run(
        "1008",
        |_| vec![("1006", coding(SNOMED, "373066001"))],
        &[Some(IcdProductType::Icd)],
        |r| r.icd.as_ref().unwrap().product_type,
    );
    use IcdDeactivationAgreement as Ida;
    p.run("1005", nothing, &[Ida::Yes, Ida::NotYetDecided, Ida::NotDiscussed], |r| {
        r.icd_deactivation.as_ref().unwrap().agreement
    });
    p.run(
        "1426",
        |_| vec![("1005", coding(DECISION_SYSTEM, "0"))],
        &[Some(Ida::Yes)],
        |r| r.icd_deactivation.as_ref().map(|d| d.agreement),
    );

    p.run("1428", |_| vec![("1190", string("thuis"))], &[Some("thuis".to_owned())], |r| r.care_wishes.clone());
    p.run("1191", nothing, PlaceOfDeath::ALL, |r| r.place_of_death.as_ref().unwrap().preference.value());
    p.run(
        "1430",
        |_| vec![("1191", coding(SNOMED, "264362003"))],
        &[Some(PlaceOfDeath::Home)],
        |r| r.place_of_death.as_ref().map(|p| p.preference.value()),
    );
    use EuthanasiaPosition as E;
    p.run("1193", nothing, &[E::HasDeclaration, E::NoEuthanasia, E::MightRequest, E::Unknown], |r| {
        r.euthanasia.as_ref().unwrap().position
    });
    p.run(
        "1432",
        |_| vec![("1193", coding(SNOMED, "340201000146103"))],
        &[Some(E::NoEuthanasia)],
        |r| r.euthanasia.as_ref().map(|e| e.position),
    );
    p.run("1435", nothing, Ynu::ALL, |r| r.organ_donation_registered.unwrap());
    p.run("1434", |_| vec![("1435", coding(SNOMED, "373067005"))], &[Some(Ynu::No)], |r| r.organ_donation_registered);
    p.run("1436", |_| vec![("1196", string("muziek"))], &[Some("muziek".to_owned())], |r| r.sense_of_purpose.clone());

    p.run("1197", nothing, Ynu::ALL, |r| r.earlier_agreements.as_ref().unwrap().recorded);
    p.run(
        "1199",
        |_| vec![("1197", coding(SNOMED, "373066001"))],
        &[Some(Ynu::Yes), Some(Ynu::No), Some(Ynu::Unknown)],
        |r| r.earlier_agreements.as_ref().unwrap().differ_from_current,
    );
    p.run("1200", nothing, &[Some(true), Some(false)], |r| r.relatives_informed);
    p.run("1201", nothing, &[SharingConsent::Agreed, SharingConsent::Unknown], |r| r.sharing_consent.unwrap());

    let choice_items: BTreeSet<String> =
        p.q.items.iter().filter(|(_, _, it)| it.get("answerOption").is_some()).map(|(l, _, _)| l.clone()).collect();
    assert_eq!(p.done, choice_items, "every item with answer options is probed");
}

#[test]
fn open_choice_4g_takes_a_treatment_name_and_anders_texts_attach_to_anders() {
    let q = Questionnaire::load();
    let mut answers = header();
    answers.extend([
        ("1422", string("Dialyse")),
        ("1402", coding(DECISION_SYSTEM, "2")),
        ("982", coding("urn:oid:2.16.840.1.113883.2.4.3.11.22.472", "09")),
        ("411", string("buurvrouw")),
        ("983", coding("http://terminology.hl7.org/CodeSystem/v3-NullFlavor", "OTH")),
        ("408", string("neef")),
        ("995", coding("http://terminology.hl7.org/CodeSystem/v3-NullFlavor", "OTH")),
        ("412", string("nicht")),
        ("997", coding("urn:oid:2.16.840.1.113883.2.4.3.11.22.472", "09")),
        ("414", string("notaris")),
        ("998", coding("http://terminology.hl7.org/CodeSystem/v3-NullFlavor", "OTH")),
        ("413", string("vriend")),
        ("1386", coding(DECISION_SYSTEM, "1")),
        ("1001", string("geen defibrillatie")),
        ("1002", string("na overleg")),
    ]);
    let r = record_of(&q.response(&answers));
    assert_eq!(r.treatment_limits.other[0].treatment.as_deref(), Some("Dialyse"));
    assert_eq!(r.treatment_limits.other[0].limit.decision, Decision::DoNotPerform);
    let rep = r.representative.unwrap();
    assert_eq!(rep.roles, vec![Answer::new(ContactRole::Other, Some("buurvrouw".into())).unwrap()]);
    assert_eq!(rep.person.relationship, Some(Answer::new(Relationship::Other, Some("neef".into())).unwrap()));
    assert_eq!(r.first_contact.unwrap().relationship, Some(Answer::new(Relationship::Other, Some("nicht".into())).unwrap()));
    let present = r.present.unwrap();
    assert!(!present.patient, "82 is absent, yet others were present");
    assert_eq!(present.roles, vec![Answer::new(ContactRole::Other, Some("notaris".into())).unwrap()]);
    assert_eq!(present.relationships, vec![Answer::new(Relationship::Other, Some("vriend".into())).unwrap()]);
    assert_eq!(
        r.treatment_limits.resuscitation,
        limit(Decision::PerformWithRestrictions { restriction: "geen defibrillatie".into() }, Some("na overleg".into()))
    );
}

// --- (d) broken responses, located exactly -------------------------------------------------------------

/// The example with one change made to the item `link`.
fn broken(link: &str, change: impl FnOnce(&mut Value)) -> Value {
    let mut src = shared(EXAMPLE);
    change(find_item_mut(&mut src, link).unwrap_or_else(|| panic!("no item {link}")));
    src
}

fn the_error<'a>(i: &'a Intake, location: &str) -> &'a Problem {
    errors(i)
        .into_iter()
        .find(|p| p.location.to_string() == location)
        .unwrap_or_else(|| panic!("no error at {location}; problems: {:#?}", i.problems))
}

const AT_1386: &str = "QuestionnaireResponse.item.where(linkId='83').item.where(linkId='1409').item.where(linkId='1386')";

#[test]
fn a_wrong_decision_code_is_an_error_at_the_coding() {
    let i = read(&broken("1386", |it| it["answer"][0]["valueCoding"]["code"] = json!("7")));
    let location = format!("{AT_1386}.answer[0].valueCoding");
    assert_eq!(error_locations(&i), BTreeSet::from([location.clone()]));
    assert_eq!(the_error(&i, &location).issue_type, IssueType::CodeInvalid);
}

#[test]
fn a_wrong_treatment_code_on_a_read_only_item_is_an_error() {
    // 1410 carrying ventilation would attach the resuscitation decision to the wrong treatment.
    let i = read(&broken("1410", |it| it["answer"][0]["valueCoding"]["code"] = json!("40617009")));
    let location =
        "QuestionnaireResponse.item.where(linkId='83').item.where(linkId='1409').item.where(linkId='1410').answer[0].valueCoding";
    assert_eq!(error_locations(&i), BTreeSet::from([location.to_owned()]));
    assert!(the_error(&i, location).message.contains("wrong treatment"), "{}", the_error(&i, location).message);
    // The same for a question code ("MetingNaam").
    let i = read(&broken("1430", |it| it["answer"][0]["valueCoding"]["code"] = json!("153851000146100")));
    assert_eq!(
        error_locations(&i),
        BTreeSet::from(["QuestionnaireResponse.item.where(linkId='107').item.where(linkId='1429').item.where(linkId='1430').answer[0].valueCoding".to_owned()])
    );
    // And 1426 must be the ICD deactivation procedure.
    let i = read(&broken("1426", |it| it["answer"][0]["valueCoding"]["code"] = json!("89666000")));
    assert_eq!(
        error_locations(&i),
        BTreeSet::from(["QuestionnaireResponse.item.where(linkId='83').item.where(linkId='1425').item.where(linkId='1426').answer[0].valueCoding".to_owned()])
    );
}

#[test]
fn a_4g_limit_with_a_named_treatment_code_is_an_error() {
    let i = read(&broken("1422", |it| it["answer"][0]["valueCoding"] = json!({"system": SNOMED, "code": "89666000"})));
    assert_eq!(
        error_locations(&i),
        BTreeSet::from(["QuestionnaireResponse.item.where(linkId='83').item.where(linkId='1421').item.where(linkId='1422').answer[0].valueCoding".to_owned()])
    );
}

#[test]
fn an_unknown_canonical_is_an_error_but_the_items_are_still_read() {
    let mut src = shared(EXAMPLE);
    src["questionnaire"] = json!("https://example.org/Questionnaire/ACP-zib2020");
    let i = read(&src);
    assert_eq!(error_locations(&i), BTreeSet::from(["QuestionnaireResponse.questionnaire".to_owned()]));
    assert_eq!(i.record.as_ref(), Some(&hendrik_hartman()));
    src.as_object_mut().unwrap().remove("questionnaire");
    let i = read(&src);
    assert_eq!(the_error(&i, "QuestionnaireResponse.questionnaire").issue_type, IssueType::Required);
}

#[test]
fn an_impossible_date_is_an_error_at_the_value() {
    let i = read(&broken("963", |it| it["answer"][0]["valueDateTime"] = json!("2023-02-30")));
    // The date is refused, so the record also lacks its required conversation date (located at 963).
    assert_eq!(
        error_locations(&i),
        BTreeSet::from([
            "QuestionnaireResponse.item.where(linkId='963')".to_owned(),
            "QuestionnaireResponse.item.where(linkId='963').answer[0].valueDateTime".to_owned(),
        ])
    );
    let i = read(&broken("967", |it| it["answer"][0] = json!({"valueDate": "1961-13-01"})));
    assert!(error_locations(&i).contains("QuestionnaireResponse.item.where(linkId='967').answer[0].valueDate"));
}

#[test]
fn a_restriction_decision_without_its_text_is_an_error_at_the_decision() {
    let i = read(&broken("1386", |it| it["answer"][0]["valueCoding"]["code"] = json!("1")));
    let location = format!("{AT_1386}.answer[0].valueCoding");
    assert_eq!(error_locations(&i), BTreeSet::from([location.clone()]));
    assert_eq!(the_error(&i, &location).issue_type, IssueType::Required);
    // A restriction text on "Wel uitvoeren" is refused there too.
    let i = read(&broken("1386", |it| {
        it["answer"][0]["item"] = json!([{"linkId": "1001", "answer": [{"valueString": "max. 3 dagen"}]}])
    }));
    assert_eq!(error_locations(&i), BTreeSet::from([location]));
}

#[test]
fn an_unknown_link_id_is_a_warning_naming_it() {
    let mut src = shared(EXAMPLE);
    src["item"].as_array_mut().unwrap().push(json!({"linkId": "2001", "text": "Nieuw", "answer": [{"valueString": "x"}]}));
    let i = read(&src);
    assert!(errors(&i).is_empty(), "{:#?}", errors(&i));
    let w = i
        .problems
        .iter()
        .find(|p| p.location.to_string() == "QuestionnaireResponse.item.where(linkId='2001')")
        .expect("a warning at the unknown item");
    assert_eq!((w.severity, w.issue_type), (Severity::Warning, IssueType::NotSupported));
    assert!(w.message.contains("'2001'"), "{}", w.message);
    assert_eq!(i.record.as_ref(), Some(&hendrik_hartman()));
}

#[test]
fn a_string_where_a_coding_is_expected_is_an_error() {
    let i = read(&broken("999", |it| it["answer"][0] = json!({"valueString": "palliatief"})));
    assert_eq!(
        error_locations(&i),
        BTreeSet::from([
            "QuestionnaireResponse.item.where(linkId='586').item.where(linkId='999').answer[0].valueString".to_owned()
        ])
    );
    assert_eq!(i.record.and_then(|r| r.medical_policy_goal), None);
}

#[test]
fn an_explanation_whose_answer_is_missing_is_an_error_not_a_silent_loss() {
    // 1006's coding removed: 1008/1009 hang under an answer without value.
    let i = read(&broken("1006", |it| {
        it["answer"][0].as_object_mut().unwrap().remove("valueCoding");
    }));
    let base = "QuestionnaireResponse.item.where(linkId='83').item.where(linkId='1006').answer[0]";
    assert_eq!(
        error_locations(&i),
        BTreeSet::from([format!("{base}.item.where(linkId='1008')"), format!("{base}.item.where(linkId='1009')")])
    );
}

#[test]
fn a_repeated_single_item_and_rule_violations_are_located_at_their_items() {
    let mut src = shared(EXAMPLE);
    let dup = src["item"][0].clone();
    src["item"].as_array_mut().unwrap().insert(1, dup);
    let i = read(&src);
    assert_eq!(error_locations(&i), BTreeSet::from(["QuestionnaireResponse.item.where(linkId='963')[1]".to_owned()]));

    // 7b while 7a is "Nee": the record rule is reported at item 1199.
    let src = broken("115", |it| {
        it["item"]
            .as_array_mut()
            .unwrap()
            .push(json!({"linkId": "1199", "answer": [{"valueCoding": {"system": SNOMED, "code": "373066001"}}]}))
    });
    let i = read(&src);
    assert_eq!(
        error_locations(&i),
        BTreeSet::from(["QuestionnaireResponse.item.where(linkId='115').item.where(linkId='1199')".to_owned()])
    );
}

#[test]
fn the_subject_gives_the_bsn_after_the_eleven_proof() {
    let mut src = shared(EXAMPLE);
    src["subject"] = json!({"identifier": {"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "999911120"}});
    assert_eq!(record_of(&src).patient.bsn, Bsn::parse("999911120").ok());
    src["subject"]["identifier"]["value"] = json!("999911121");
    let i = read(&src);
    assert_eq!(error_locations(&i), BTreeSet::from(["QuestionnaireResponse.subject.identifier.value".to_owned()]));
}

// --- (e) round trips -----------------------------------------------------------------------------------


/// Writes `r`, checks the response against the shared Questionnaire, reads it back as bytes.
fn round_trip(q: &Questionnaire, r: &AcpRecord) -> AcpRecord {
    let qr = render(r);
    assert_eq!(render(r), qr, "rendering is deterministic");
    conforms(q, &qr);
    let whole = r.date_filled_in.is_some() && r.patient.name.family.is_some() && r.patient.birth_date.is_some();
    assert_eq!(qr["status"], if whole { "completed" } else { "in-progress" });
    let bytes = serde_json::to_vec_pretty(&qr).unwrap();
    let i = intake::read(&bytes);
    assert_eq!(i.form, Some(InputForm::QuestionnaireResponse));
    assert!(errors(&i).is_empty(), "errors reading back {qr:#}: {:#?}", errors(&i));
    i.record.expect("a record")
}

/// Every written item is the Questionnaire's, with its text, under its parent (explanations under
/// their question's answer), and every coding is one of that item's answer options: no linkId and no
/// code outside IKNL's Questionnaire. (Group 1421 may repeat, the one documented deviation.)
fn conforms(q: &Questionnaire, qr: &Value) {
    assert_eq!(qr["resourceType"], "QuestionnaireResponse");
    assert_eq!(qr["questionnaire"], NEW_CANONICAL);
    // A partial record goes out as a form still in progress (issue 11, item 8).
    assert!(qr["status"] == "completed" || qr["status"] == "in-progress", "{}", qr["status"]);
    fn check(q: &Questionnaire, items: &Value, parent: Option<&str>) {
        for it in items.as_array().into_iter().flatten() {
            let link = it["linkId"].as_str().unwrap();
            let (_, qparent, qitem) = q.get(link).unwrap_or_else(|| panic!("{link} is not in the Questionnaire"));
            assert_eq!(qparent.as_deref(), parent, "{link} is under {parent:?}");
            assert_eq!(it["text"], qitem["text"], "{link}'s text");
            let is_group = qitem["type"] == "group";
            if !is_group {
                assert!(it.get("item").is_none() || it.get("answer").is_none(), "{link}: children go under the answer");
            }
            let options = q.options(link);
            for a in it["answer"].as_array().into_iter().flatten() {
                if let Some(c) = a.get("valueCoding") {
                    let known = options.iter().any(|o| o["system"] == c["system"] && o["code"] == c["code"]);
                    assert!(known, "{link}: {c} is not an answer option");
                }
                check(q, &a["item"], Some(link));
            }
            check(q, &it["item"], Some(link));
        }
    }
    check(q, &qr["item"], None);
}

#[test]
fn the_iknl_example_survives_a_round_trip() {
    let q = Questionnaire::load();
    let original = record_of(&shared(EXAMPLE));
    assert_eq!(round_trip(&q, &original), questionnaire_projection(&original));
    // And writing what was read back gives the same bytes again.
    assert_eq!(render(&round_trip(&q, &original)), render(&original));
}

/// Hand-built records that together use every answer of every coded field, several list entries, the
/// extensions (4g restrictions, several 4g limits, folded "Anders" places) and fields a response cannot carry.
fn variants() -> Vec<AcpRecord> {
    fn pick<T: Coded>(k: usize) -> T {
        T::ALL[k % T::ALL.len()]
    }
    let s = |v: &str| Some(v.to_owned());
    let decisions = |k: usize| match k % 4 {
        0 => Decision::Perform,
        1 => Decision::PerformWithRestrictions { restriction: format!("beperking {k}") },
        2 => Decision::DoNotPerform,
        _ => Decision::Unknown,
    };
    fn answer<T: Coded>(code: T, k: usize) -> Answer<T> {
        Answer::new(code, (k % 2 == 0).then(|| "anders".to_owned())).unwrap_or(Answer::code(code))
    }
    (0..11)
        .map(|k| {
            let person = |n: &str| ContactPerson {
                name: Name { given: s(n), prefix: (k % 2 == 0).then(|| "van der".to_owned()), family: s("Berg") },
                phones: (0..k % 3)
                    .map(|j| Phone {
                        number: format!("06{j}"),
                        telecom_type: Some(pick(k + j)),
                        number_use: (j == 0).then(|| pick(k)),
                        comment: (j == 1).then(|| "overdag".to_owned()),
                    })
                    .collect(),
                emails: (0..k % 2 + 1)
                    .map(|j| Email { address: format!("{n}{j}@example.org"), email_use: (j == 0).then(|| pick(k)) })
                    .collect(),
                relationship: Some(answer(pick::<Relationship>(k), k)),
            };
            let icd = pick::<YesNoUnknown>(k);
            let recorded = pick::<YesNoUnknown>(k + 1);
            let place = pick::<PlaceOfDeath>(k);
            let limit = |j: usize| {
                Some(TreatmentLimit {
                    decision: decisions(k + j),
                    explanation: (j % 2 == 0).then(|| format!("toelichting {j}")),
                    discussed_on: FhirDate::parse("2024-02-01").ok(),
                })
            };
            AcpRecord {
                date_filled_in: FhirDate::parse(if k % 2 == 0 { "2024-03-01" } else { "2024-03-01T10:00:00+01:00" }).ok(),
                patient: Patient {
                    bsn: (k % 3 != 1).then(|| Bsn::parse("999990019").ok()).flatten(),
                    other_identifiers: vec![Identifier {
                        system: "urn:oid:2.16.840.1.113883.2.4.6.99".into(),
                        value: format!("P{k}"),
                    }],
                    name: Name { given: s("Grietje"), prefix: None, family: s("Bakker") },
                    birth_date: FhirDate::parse(if k % 2 == 0 { "1941" } else { "1941-03-09" }).ok(),
                },
                conducted_by: Some(Professional {
                    name: Name { given: None, prefix: None, family: (k % 4 != 3).then(|| "Visser".to_owned()) },
                    function: Some(pick(k)),
                    agb: Agb::parse("01234567").ok(),
                    other_identifiers: vec![],
                }),
                legal_capacity: Some(LegalCapacity {
                    capable: Some(k % 2 == 0),
                    explanation: (k % 3 == 0).then(|| "helder".to_owned()),
                }),
                representative: Some(Representative {
                    person: person("Anna"),
                    roles: vec![answer(pick::<ContactRole>(k), k), answer(pick::<ContactRole>(k + 3), k)],
                    is_first_contact: Some(k % 2 == 1),
                }),
                first_contact: (k % 2 == 0).then(|| person("Bert")),
                present: Some(Presence {
                    patient: k % 3 != 0,
                    roles: if k % 3 == 0 { vec![] } else { vec![answer(pick::<ContactRole>(k + 1), k)] },
                    relationships: if k % 5 == 0 {
                        vec![]
                    } else {
                        vec![answer(pick::<Relationship>(k + 2), k), Answer::code(Relationship::Son)]
                    },
                }),
                medical_policy_goal: Some(pick(k)),
                treatment_limits: TreatmentLimits {
                    resuscitation: limit(0),
                    invasive_ventilation: limit(1),
                    icu_admission: limit(2),
                    hospital_admission: limit(3),
                    antibiotics: limit(4),
                    blood_products: (k % 4 != 2).then(|| limit(5)).flatten(),
                    other: (0..k % 3)
                        .map(|j| OtherTreatmentLimit {
                            treatment: (j == 0).then(|| "Dialyse".to_owned()),
                            limit: limit(j + 6).expect("a limit"),
                        })
                        .collect(),
                },
                icd: Some(Icd {
                    present: icd,
                    product_type: (icd == YesNoUnknown::Yes).then_some(IcdProductType::Icd),
                    explanation: (icd == YesNoUnknown::Yes).then(|| "2019".to_owned()),
                }),
                icd_deactivation: (icd != YesNoUnknown::No).then(|| IcdDeactivation {
                    agreement: pick(k),
                    explanation: (k % 2 == 0).then(|| "bij de laatste fase".to_owned()),
                    discussed_on: FhirDate::parse("2024-02-01").ok(),
                }),
                care_wishes: s("Graag thuis verzorgd"),
                place_of_death: Some(PlaceOfDeathWish {
                    preference: Answer::new(
                        place,
                        (place.is_other() && k % 3 != 0).then(|| "bij dochter\n\"Zwolle\"".to_owned()),
                    )
                    .unwrap_or(Answer::code(place)),
                    explanation: match k % 3 {
                        0 => s("Anders, namelijk: dit is de toelichting zelf"),
                        1 => s("met uitzicht op de tuin"),
                        _ => None,
                    },
                }),
                euthanasia: Some(Euthanasia { position: pick(k), explanation: (k % 2 == 1).then(|| "besproken".to_owned()) }),
                organ_donation_registered: Some(pick(k + 2)),
                sense_of_purpose: (k % 2 == 0).then(|| "Muziek en de kleinkinderen".to_owned()),
                earlier_agreements: Some(EarlierAgreements {
                    recorded,
                    explanation: (k % 2 == 0).then(|| "bij de vorige huisarts".to_owned()),
                    differ_from_current: (recorded == YesNoUnknown::Yes).then(|| pick(k)),
                }),
                relatives_informed: Some(k % 2 == 0),
                sharing_consent: Some(pick(k)),
                advance_directives: vec![AdvanceDirective {
                    kind: pick(k),
                    date: FhirDate::parse("2020-01-01").ok(),
                    comment: None,
                    document: None,
                }],
                directives_not_in_force: vec![],
            }
        })
        .chain([AcpRecord {
            present: Some(Presence { patient: false, roles: vec![], relationships: vec![] }),
            ..hendrik_hartman()
        }])
        .collect()
}

#[test]
fn hand_built_records_with_every_option_survive_a_round_trip() {
    let q = Questionnaire::load();
    let records = variants();
    // The variants really do use every answer of the coded fields they cycle through.
    let goals: BTreeSet<_> = records.iter().filter_map(|r| r.medical_policy_goal).collect();
    assert_eq!(goals.len(), MedicalPolicyGoal::ALL.len());
    let places: BTreeSet<_> = records.iter().filter_map(|r| r.place_of_death.as_ref().map(|p| p.preference.value())).collect();
    assert_eq!(places.len(), PlaceOfDeath::ALL.len());
    for (k, r) in records.iter().enumerate() {
        assert_eq!(round_trip(&q, r), questionnaire_projection(r), "variant {k}");
    }
    // The empty record gives a response without items, which reads back as the empty record (its
    // missing header is the rules' business).
    let empty = render(&AcpRecord::default());
    conforms(&q, &empty);
    assert_eq!(read(&empty).record, Some(AcpRecord::default()));
}

#[test]
fn a_4g_restriction_and_several_4g_limits_travel_in_the_documented_items() {
    let mut r = hendrik_hartman();
    r.treatment_limits.other = vec![
        OtherTreatmentLimit {
            treatment: Some("Dialyse".into()),
            limit: TreatmentLimit {
                decision: Decision::PerformWithRestrictions { restriction: "proefperiode van een maand".into() },
                explanation: None,
                discussed_on: None,
            },
        },
        OtherTreatmentLimit {
            treatment: None,
            limit: TreatmentLimit { decision: Decision::Unknown, explanation: Some("later".into()), discussed_on: None },
        },
    ];
    let qr = render(&r);
    let groups: Vec<&Value> = qr["item"].as_array().unwrap().iter().find(|i| i["linkId"] == "83").unwrap()["item"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["linkId"] == "1421")
        .collect();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["item"][0]["answer"][0]["valueString"], "Dialyse");
    let decision = &groups[0]["item"][1];
    assert_eq!(decision["linkId"], "1402");
    // 1402 offers no "Ja maar met beperkingen": unanswered, the restriction opens its Toelichting 1404.
    assert!(decision.get("answer").is_none());
    assert_eq!(decision["item"][0]["linkId"], "1404");
    assert_eq!(decision["item"][0]["answer"][0]["valueString"], "Ja maar met beperkingen: \"proefperiode van een maand\"");
    assert_eq!(groups[1]["item"][0]["answer"][0]["valueCoding"]["code"], "OTH");
    assert_eq!(record_of(&qr), r);
}

#[test]
fn a_place_of_death_other_text_is_folded_into_the_explanation() {
    let mut r = hendrik_hartman();
    r.place_of_death = Some(PlaceOfDeathWish {
        preference: Answer::new(PlaceOfDeath::Other, Some("bij mijn dochter".into())).unwrap(),
        explanation: Some("Zij woont in Zwolle.".into()),
    });
    let qr = render(&r);
    let note = find_item(&qr, "1192").unwrap();
    assert_eq!(note["answer"][0]["valueString"], "Anders, namelijk: \"bij mijn dochter\"\nZij woont in Zwolle.");
    assert_eq!(record_of(&qr), r);
}

#[test]
fn the_writer_uses_the_new_canonical_the_bsn_and_no_clock() {
    let mut r = hendrik_hartman();
    r.patient.bsn = Bsn::parse("999911120").ok();
    let qr = render(&r);
    assert_eq!(qr["questionnaire"], NEW_CANONICAL);
    assert_eq!(qr["subject"], json!({"identifier": {"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "999911120"}}));
    assert_eq!(qr["authored"], "2020-10-01T16:27:36.364Z");
    let id = qr["id"].as_str().unwrap();
    assert!(id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
    r.care_wishes = Some("iets anders".into());
    assert_ne!(render(&r)["id"], qr["id"], "the id follows the content");
}

#[test]
fn hostile_shapes_are_reported_never_a_panic() {
    let base = |items: Value| json!({"resourceType": "QuestionnaireResponse", "questionnaire": NEW_CANONICAL, "item": items});
    let cases = [
        base(json!("not a list")),
        base(json!(["not an item", 7, null])),
        base(json!([{"linkId": 963, "answer": [{"valueDateTime": "2024-01-01"}]}])),
        base(json!([{"answer": [{"valueString": "no linkId"}]}])),
        base(json!([{"linkId": "963", "answer": {"valueDateTime": "2024-01-01"}}])),
        base(json!([{"linkId": "963", "answer": [{"valueDateTime": 20240101}]}])),
        base(json!([{"linkId": "963", "answer": [{"valueDateTime": "2024-01-01", "valueString": "twee"}]}])),
        base(json!([{"linkId": "586", "item": [{"linkId": "999", "answer": [{"valueCoding": "385987000"}]}]}])),
        base(json!([{"linkId": "586", "item": [{"linkId": "999", "answer": [{"valueCoding": {"system": SNOMED}}]}]}])),
        base(json!([{"linkId": "83", "answer": [{"valueString": "a group with an answer"}]}])),
        base(
            json!([{"linkId": "a'b", "item": [{"linkId": "1409", "item": [{"linkId": "1386", "answer": [{"valueBoolean": true}]}]}]}]),
        ),
        base(
            json!([{"linkId": "83", "item": [{"linkId": "1421", "item": [{"linkId": "1422", "answer": [{"valueInteger": 3}]}]}]}]),
        ),
        json!({"resourceType": "QuestionnaireResponse", "questionnaire": 42, "status": "vandaag", "subject": "Patient/1", "authored": "gisteren"}),
    ];
    for qr in cases {
        let i = read(&qr);
        assert!(!errors(&i).is_empty(), "no error for {qr}");
        assert!(
            i.problems.iter().all(|p| p.location.to_string().starts_with("QuestionnaireResponse")),
            "{qr}: {:#?}",
            i.problems
        );
    }
}

#[test]
fn the_writer_is_total_on_odd_records_and_leaves_blank_text_out() {
    let q = Questionnaire::load();
    let mut r = hendrik_hartman();
    // Blank texts and a phone without a number are "not recorded" to every reader.
    r.care_wishes = Some(" ".into());
    r.representative.as_mut().unwrap().person.phones =
        vec![Phone { number: "  ".into(), telecom_type: Some(TelecomType::Fax), number_use: None, comment: Some("x".into()) }];
    r.legal_capacity = Some(LegalCapacity { capable: None, explanation: Some("wisselend".into()) });
    r.treatment_limits.other.push(OtherTreatmentLimit {
        treatment: Some(" ".into()),
        limit: TreatmentLimit { decision: Decision::Perform, explanation: None, discussed_on: None },
    });
    let back = round_trip(&q, &r);
    let mut want = r.clone();
    want.care_wishes = None;
    want.representative.as_mut().unwrap().person.phones.clear();
    want.treatment_limits.other[1].treatment = None;
    assert_eq!(back, want);
}

// --- (f) nothing outside IKNL's Questionnaire, nothing vanishes (issue 11, item 7) -------------------

/// Every valid input of `fixtures/`: the uniform records and the FHIR fixtures.
fn fixture_records() -> Vec<(String, AcpRecord)> {
    let mut out: Vec<(String, AcpRecord)> = support::uniform_fixtures()
        .into_iter()
        .map(|(name, bytes)| {
            let r = support::read_valid(&name, &bytes);
            (name, r)
        })
        .collect();
    for ext in ["json", "xml"] {
        for (name, bytes) in support::files_in("fixtures/fhir", ext) {
            let r = support::read_valid(&name, &bytes);
            out.push((name, r));
        }
    }
    out
}

#[test]
fn every_fixture_is_written_with_the_questionnaires_items_and_codes_only() {
    let q = Questionnaire::load();
    let fixtures = fixture_records();
    assert!(fixtures.len() >= 15, "the fixtures are found");
    for (name, r) in fixtures {
        let back = round_trip(&q, &r);
        assert_eq!(back, questionnaire_projection(&r), "{name}");
    }
}

/// The 1198 text of a response, where the advance directives ride.
fn earlier_agreements_note(qr: &Value) -> String {
    fn find(items: &Value, out: &mut Vec<String>) {
        for it in items.as_array().into_iter().flatten() {
            if it["linkId"] == "1198" {
                out.extend(it["answer"][0]["valueString"].as_str().map(str::to_owned));
            }
            find(&it["item"], out);
            for a in it["answer"].as_array().into_iter().flatten() {
                find(&a["item"], out);
            }
        }
    }
    let mut out = Vec::new();
    find(&qr["item"], &mut out);
    assert_eq!(out.len(), 1, "one 1198 in {qr:#}");
    out.remove(0)
}

#[test]
fn a_do_not_resuscitate_declaration_stays_visible_in_the_response() {
    let q = Questionnaire::load();
    let (name, bytes) = support::uniform_fixtures().into_iter().find(|(n, _)| n.starts_with("uniform-01")).expect("fixture 01");
    let r = support::read_valid(&name, &bytes);
    assert_eq!(r.advance_directives[0].kind, AdvanceDirectiveType::DoNotResuscitate);
    let qr = render(&r);
    let note = earlier_agreements_note(&qr);
    assert!(
        note.starts_with("Wilsverklaring: Niet reanimeren verklaring, 2021-01-14, toelichting \"Ondertekende verklaring; mevrouw draagt een niet-reanimerenpenning.\", document in de bron"),
        "{note}"
    );
    let back = round_trip(&q, &r);
    assert_eq!(back.advance_directives.len(), r.advance_directives.len());
    assert_eq!(back.advance_directives[0].kind, AdvanceDirectiveType::DoNotResuscitate);
    assert_eq!(back.advance_directives[0].comment, r.advance_directives[0].comment);
    assert_eq!(back.earlier_agreements, r.earlier_agreements);

    // Without 7a the directives still go out, under the unanswered question.
    let only = AcpRecord { advance_directives: r.advance_directives.clone(), ..Default::default() };
    let qr = render(&only);
    assert!(earlier_agreements_note(&qr).starts_with("Wilsverklaring: Niet reanimeren verklaring"));
    assert_eq!(round_trip(&q, &only), questionnaire_projection(&only));
}

#[test]
fn a_restricted_further_limit_goes_in_its_explanation_without_a_made_up_code() {
    let q = Questionnaire::load();
    let mut r = AcpRecord::default();
    r.treatment_limits.other = vec![OtherTreatmentLimit {
        treatment: Some("Dialyse".into()),
        limit: TreatmentLimit {
            decision: Decision::PerformWithRestrictions { restriction: "proefperiode van een maand".into() },
            explanation: Some("daarna opnieuw bespreken".into()),
            discussed_on: None,
        },
    }];
    let qr = render(&r);
    let group = &qr["item"][0]["item"][0];
    assert_eq!(group["linkId"], "1421");
    let decision = group["item"].as_array().unwrap().iter().find(|i| i["linkId"] == "1402").expect("1402");
    assert!(decision.get("answer").is_none(), "no code for 'Ja maar met beperkingen' on 1402: {decision:#}");
    assert_eq!(decision["item"][0]["linkId"], "1404");
    assert_eq!(
        decision["item"][0]["answer"][0]["valueString"],
        "Ja maar met beperkingen: \"proefperiode van een maand\"\ndaarna opnieuw bespreken"
    );
    assert_eq!(round_trip(&q, &r), r);

    // As a person would type it, without quotes.
    let mut answers = header();
    answers.push(("1422", json!({"valueString": "Dialyse"})));
    answers.push(("1404", json!({"valueString": "Ja maar met beperkingen: alleen overdag\nToelichting"})));
    let typed = q.response(&answers);
    let back = record_of(&typed);
    assert_eq!(
        back.treatment_limits.other[0].limit.decision,
        Decision::PerformWithRestrictions { restriction: "alleen overdag".into() }
    );
    assert_eq!(back.treatment_limits.other[0].limit.explanation.as_deref(), Some("Toelichting"));
}

#[test]
fn a_role_the_questionnaire_does_not_offer_goes_as_anders_with_its_name() {
    let q = Questionnaire::load();
    let r = AcpRecord {
        present: Some(Presence {
            patient: true,
            roles: vec![Answer::code(ContactRole::Mentor), Answer::code(ContactRole::LegalRepresentative)],
            relationships: Vec::new(),
        }),
        ..Default::default()
    };
    let qr = render(&r);
    let roles = &qr["item"][0]["item"][1];
    assert_eq!(roles["linkId"], "997");
    assert_eq!(roles["answer"][1]["valueCoding"]["code"], "09");
    assert_eq!(roles["answer"][1]["item"][0]["answer"][0]["valueString"], "Wettelijke vertegenwoordiger");
    assert_eq!(round_trip(&q, &r), r);
}

mod generated {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("ACP_SAFETY_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(500),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Generated records: only the Questionnaire's linkIds and each item's own answer codes, and the
        /// round trip keeps what the projection says (advance directives included).
        #[test]
        fn generated_responses_use_only_the_questionnaires_items_and_codes(r in support::arb_record()) {
            let q = Questionnaire::load();
            prop_assert_eq!(round_trip(&q, &r), questionnaire_projection(&r));
        }
    }
}
