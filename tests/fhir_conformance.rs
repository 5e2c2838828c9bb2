//! The FHIR output checked against the IKNL PZP profile constraints that matter to a receiver.
//!
//! Every emitted resource of every record here (hand-made ones that reach every decision, ICD answer,
//! advance directive and observation; the IKNL example QuestionnaireResponse; every `fixtures/*.json`)
//! is checked on the JSON a receiver gets, not on the Rust model: cardinalities, fixed codes, required
//! bindings to the value sets in `mappings/`, the invariants (ACP-Patient-1, cr-date-required, ppc-1,
//! obs-6, "no provision.type beside specificationOther"), references that resolve inside the Bundle,
//! unique fullUrls, `meta.profile` on every ACP resource, and determinism. The clinical mapping table
//! (do-not-perform is deny, a restriction is never permit and is carried verbatim, unknown has no type)
//! has tests of its own.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use acp_gateway::intake;
use acp_gateway::mappings::{self, Coding};
use acp_gateway::record::*;
use acp_gateway::render::fhir::{bundle, tables, to_json, BundleKind};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use serde_json::Value;

const SHARED_QR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/reference/iknl-pzp-r4/resources/QuestionnaireResponse-HendrikHartman-20201001.json"
);

// --- building records --------------------------------------------------------------------------------

fn date(s: &str) -> FhirDate {
    FhirDate::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

fn name(given: &str, prefix: Option<&str>, family: &str) -> Name {
    Name { given: Some(given.into()), prefix: prefix.map(Into::into), family: Some(family.into()) }
}

fn other<T: Coded>(code: T, text: &str) -> Answer<T> {
    Answer::new(code, Some(text.into())).unwrap_or_else(|c| panic!("{c:?} takes no text"))
}

fn limit(decision: Decision) -> TreatmentLimit {
    TreatmentLimit { decision, explanation: Some("besproken met broer".into()), discussed_on: Some(date("2024-05-01")) }
}

/// A restriction with the whitespace and characters a real one has; it must arrive byte for byte.
const RESTRICTION: &str = "  Alleen als er kans is op herstel;\nmax. 48 uur geïntubeerd ≤ IC  ";

fn decisions() -> [Decision; 4] {
    [
        Decision::Perform,
        Decision::PerformWithRestrictions { restriction: RESTRICTION.into() },
        Decision::DoNotPerform,
        Decision::Unknown,
    ]
}

/// Everything the form has, filled in.
fn full() -> AcpRecord {
    let mut limits = TreatmentLimits::default();
    for (i, t) in NAMED_TREATMENTS.into_iter().enumerate() {
        *limits.slot_mut(t).expect("a named treatment has a slot") = Some(limit(decisions()[i % 4].clone()));
    }
    limits.other = vec![
        OtherTreatmentLimit {
            treatment: Some("Dialyse in het ziekenhuis".into()),
            limit: limit(Decision::DoNotPerform),
        },
        OtherTreatmentLimit {
            treatment: None,
            limit: TreatmentLimit {
                decision: Decision::PerformWithRestrictions { restriction: "sondevoeding alleen tijdelijk".into() },
                explanation: None,
                discussed_on: None,
            },
        },
    ];
    AcpRecord {
        date_filled_in: Some(date("2024-05-01")),
        patient: Patient {
            bsn: Some(Bsn::parse("999911120").unwrap()),
            other_identifiers: vec![Identifier {
                system: "urn:oid:2.16.840.1.113883.2.4.6.3.99".into(),
                value: "12345".into(),
            }],
            name: name("Hendrik", None, "Hartman"),
            birth_date: Some(date("1961-01-01")),
        },
        conducted_by: Some(Professional {
            name: name("Jan", Some("van"), "Huissen"),
            function: Some(ProfessionalFunction::GeneralPractitioner),
            agb: Some(Agb::parse("01999999").unwrap()),
            other_identifiers: vec![],
        }),
        legal_capacity: Some(LegalCapacity { capable: Some(false), explanation: Some("sinds CVA wisselend".into()) }),
        representative: Some(Representative {
            person: ContactPerson {
                name: name("Michiel", None, "Hartman"),
                phones: vec![
                    Phone {
                        number: "0612345678".into(),
                        telecom_type: Some(TelecomType::Mobile),
                        number_use: Some(NumberUse::Home),
                        comment: Some("na 18 uur".into()),
                    },
                    Phone { number: "0301234567".into(), telecom_type: None, number_use: None, comment: None },
                ],
                emails: vec![Email { address: "michiel@example.org".into(), email_use: Some(EmailUse::Work) }],
                relationship: Some(Answer::code(Relationship::Brother)),
            },
            roles: vec![Answer::code(ContactRole::Mentor), other(ContactRole::Other, "zaakwaarnemer")],
            is_first_contact: Some(true),
        }),
        first_contact: None,
        present: Some(Presence {
            patient: true,
            roles: vec![Answer::code(ContactRole::Curator)],
            relationships: vec![Answer::code(Relationship::Daughter), other(Relationship::Other, "buurvrouw")],
        }),
        medical_policy_goal: Some(MedicalPolicyGoal::PalliativeSymptomRelief),
        treatment_limits: limits,
        icd: Some(Icd {
            present: YesNoUnknown::Yes,
            product_type: Some(IcdProductType::Icd),
            explanation: Some("Geïmplanteerd in 2018".into()),
        }),
        icd_deactivation: Some(IcdDeactivation {
            agreement: IcdDeactivationAgreement::NotYetDecided,
            explanation: Some("bespreekt dit met de cardioloog".into()),
            discussed_on: Some(date("2024-05-01")),
        }),
        care_wishes: Some("Wil zo lang mogelijk blijven hardlopen.".into()),
        place_of_death: Some(PlaceOfDeathWish {
            preference: other(PlaceOfDeath::Other, "bijna-thuis-huis"),
            explanation: Some("dicht bij de kinderen".into()),
        }),
        euthanasia: Some(Euthanasia {
            position: EuthanasiaPosition::HasDeclaration,
            explanation: Some("sinds 2019".into()),
        }),
        organ_donation_registered: Some(YesNoUnknown::Yes),
        sense_of_purpose: Some("Over een tijdje vervolggesprek".into()),
        earlier_agreements: Some(EarlierAgreements {
            recorded: YesNoUnknown::Yes,
            explanation: Some("bij de huisarts".into()),
            differ_from_current: Some(YesNoUnknown::No),
        }),
        relatives_informed: Some(true),
        sharing_consent: Some(SharingConsent::Agreed),
        advance_directives: vec![
            AdvanceDirective {
                kind: AdvanceDirectiveType::DoNotResuscitate,
                date: Some(date("2023-06-28")),
                comment: Some("penning".into()),
                document: Some(Document {
                    content_type: "application/pdf".into(),
                    title: Some("niet reanimeren verklaring".into()),
                    data: "JVBERi0xLjcNCg==".into(),
                }),
            },
            AdvanceDirective {
                kind: AdvanceDirectiveType::EuthanasiaRequest,
                date: None,
                comment: None,
                document: None,
            },
        ],
        directives_not_in_force: Vec::new(),
    }
}

/// Records that between them reach every coded answer the renderer maps, and the edge cases: no
/// professional, no date, no name, a separate first contact, an empty record.
fn variants() -> Vec<(String, AcpRecord)> {
    let mut out = vec![("full".to_owned(), full()), ("empty".to_owned(), AcpRecord::default())];
    for (i, d) in decisions().into_iter().enumerate() {
        let mut r = full();
        for t in NAMED_TREATMENTS {
            *r.treatment_limits.slot_mut(t).unwrap() = Some(limit(d.clone()));
        }
        r.treatment_limits.other[0].limit.decision = d;
        out.push((format!("every treatment decision {i}"), r));
    }
    for a in IcdDeactivationAgreement::ALL {
        let mut r = full();
        r.icd_deactivation.as_mut().unwrap().agreement = *a;
        out.push((format!("icd deactivation {a:?}"), r));
    }
    for p in YesNoUnknown::ALL {
        let mut r = full();
        r.icd.as_mut().unwrap().present = *p;
        r.organ_donation_registered = Some(*p);
        out.push((format!("icd present / organ donation {p:?}"), r));
    }
    for p in PlaceOfDeath::ALL {
        let mut r = full();
        r.place_of_death = Some(PlaceOfDeathWish { preference: Answer::code(*p), explanation: None });
        out.push((format!("place of death {p:?}"), r));
    }
    for (i, e) in EuthanasiaPosition::ALL.iter().enumerate() {
        let mut r = full();
        r.euthanasia = Some(Euthanasia { position: *e, explanation: None });
        r.medical_policy_goal = MedicalPolicyGoal::ALL.get(i).copied();
        out.push((format!("euthanasia {e:?}"), r));
    }
    let mut r = full();
    r.advance_directives = AdvanceDirectiveType::ALL
        .iter()
        .map(|k| AdvanceDirective { kind: *k, date: Some(date("2022-01-01")), comment: None, document: None })
        .collect();
    out.push(("every advance directive type".to_owned(), r));
    for f in ProfessionalFunction::ALL {
        let mut r = full();
        r.conducted_by.as_mut().unwrap().function = Some(*f);
        out.push((format!("function {f:?}"), r));
    }

    let mut r = full();
    r.conducted_by = None;
    out.push(("no professional".to_owned(), r));
    let mut r = full();
    r.date_filled_in = None;
    out.push(("no date".to_owned(), r));
    let mut r = full();
    r.date_filled_in = Some(date("2024-05-01T14:30:00+02:00"));
    r.patient.name = Name::default();
    r.legal_capacity = Some(LegalCapacity { capable: Some(true), explanation: None });
    r.present = Some(Presence { patient: false, ..Default::default() });
    out.push(("no name, a time, patient absent".to_owned(), r));
    let mut r = full();
    r.representative.as_mut().unwrap().is_first_contact = Some(false);
    r.first_contact = Some(ContactPerson {
        name: name("Anna", Some("de"), "Vries"),
        phones: vec![Phone {
            number: "0201234567".into(),
            telecom_type: Some(TelecomType::Landline),
            number_use: Some(NumberUse::Work),
            comment: None,
        }],
        emails: vec![],
        relationship: Some(Answer::code(Relationship::Daughter)),
    });
    out.push(("separate first contact".to_owned(), r));
    let mut r = full();
    r.representative.as_mut().unwrap().person = ContactPerson::default();
    out.push(("representative without details".to_owned(), r));
    out
}

// --- reading the output ------------------------------------------------------------------------------

fn json(record: &AcpRecord, kind: BundleKind) -> Value {
    serde_json::from_str(&to_json(&bundle(record, kind))).expect("the output is JSON")
}

fn resources(b: &Value) -> Vec<&Value> {
    b["entry"].as_array().map(|e| e.iter().map(|e| &e["resource"]).collect()).unwrap_or_default()
}

fn of_type<'a>(b: &'a Value, t: &str) -> Vec<&'a Value> {
    resources(b).into_iter().filter(|r| r["resourceType"] == t).collect()
}

fn profiled<'a>(b: &'a Value, concept: &str) -> Vec<&'a Value> {
    let url = tables::get().profile(concept);
    resources(b).into_iter().filter(|r| r["meta"]["profile"][0] == url).collect()
}

fn one<'a>(b: &'a Value, concept: &str) -> &'a Value {
    let found = profiled(b, concept);
    assert_eq!(found.len(), 1, "expected one {concept}");
    found[0]
}

fn codings(cc: &Value) -> Vec<(String, String)> {
    cc["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| (c["system"].as_str().unwrap_or("").to_owned(), c["code"].as_str().unwrap_or("").to_owned()))
        .collect()
}

fn is(cc: &Value, c: &Coding) -> bool {
    codings(cc).iter().any(|(s, k)| *s == c.system && *k == c.code)
}

fn fixed(key: &str) -> &'static Coding {
    tables::get().coding(key)
}

fn question(key: &str) -> &'static Coding {
    &mappings::get().valueset("question").by_key(key).unwrap().coding
}

/// Required binding: every coding is one of the value set's FHIR codings (never a Questionnaire-only
/// or input-only alias).
fn bound(cc: &Value, value_set: &str, what: &str) {
    let vs = mappings::get().valueset(value_set);
    let cs = codings(cc);
    assert!(!cs.is_empty(), "{what}: no coding in {cc}");
    for (s, k) in cs {
        assert!(
            vs.entries.iter().any(|e| e.coding.system == s && e.coding.code == k),
            "{what}: {s}#{k} is not in [{value_set}]"
        );
    }
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn ext<'a>(v: &'a Value, field: &str, url: &str) -> Vec<&'a Value> {
    v[field].as_array().into_iter().flatten().filter(|e| e["url"] == url).collect()
}

fn spec_other(consent: &Value) -> Option<&str> {
    let url = tables::get().extension("specification-other");
    ext(consent, "modifierExtension", url).first().and_then(|e| text(e, "valueString"))
}

fn collect_references<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("reference", Value::String(s)) => out.push(s),
                    _ => collect_references(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_references(x, out)),
        _ => {}
    }
}

// --- the checks --------------------------------------------------------------------------------------

/// Which resource type each concept's profile constrains.
fn resource_type_of(concept: &str) -> &'static str {
    match concept {
        "patient" => "Patient",
        "contact-person" => "RelatedPerson",
        "practitioner" => "Practitioner",
        "practitioner-role" => "PractitionerRole",
        "encounter" => "Encounter",
        "procedure" => "Procedure",
        "treatment-directive" | "advance-directive" => "Consent",
        "medical-policy-goal" => "Goal",
        "care-wishes" | "place-of-death" | "euthanasia-position" | "organ-donation" | "sense-of-purpose" => {
            "Observation"
        }
        "medical-device" => "DeviceUseStatement",
        "device-product" => "Device",
        "inform-relatives" => "CommunicationRequest",
        other => panic!("unknown concept {other}"),
    }
}

/// Every profile constraint this suite knows, on one Bundle of one record.
fn conforms(label: &str, record: &AcpRecord, b: &Value, kind: BundleKind) {
    let ctx = |what: &str| format!("{label}: {what}");
    let t = tables::get();
    let entries = b["entry"].as_array().unwrap_or_else(|| panic!("{}", ctx("no entries")));

    // Bundle: type, unique urn:uuid fullUrls equal to the ids, PUT Type/id in a transaction.
    let expected_type = match kind {
        BundleKind::Transaction => "transaction",
        BundleKind::Collection => "collection",
    };
    assert_eq!(b["type"], expected_type, "{}", ctx("Bundle.type"));
    let mut full_urls = BTreeMap::new();
    for e in entries {
        let r = &e["resource"];
        let id = text(r, "id").unwrap_or_else(|| panic!("{}", ctx("resource without id")));
        assert_eq!(id.len(), 36, "{}", ctx(&format!("id {id} is not a UUID")));
        assert!(id.chars().all(|c| c.is_ascii_hexdigit() || c == '-'), "{}", ctx(id));
        let full_url = text(e, "fullUrl").unwrap_or_default();
        assert_eq!(full_url, format!("urn:uuid:{id}"), "{}", ctx("fullUrl"));
        assert!(
            full_urls.insert(full_url.to_owned(), r["resourceType"].as_str().unwrap_or_default()).is_none(),
            "{}",
            ctx(&format!("duplicate fullUrl {full_url}"))
        );
        match kind {
            BundleKind::Transaction => {
                assert_eq!(e["request"]["method"], "PUT", "{}", ctx("request.method"));
                assert_eq!(
                    e["request"]["url"],
                    format!("{}/{id}", r["resourceType"].as_str().unwrap()),
                    "{}",
                    ctx("request.url")
                );
            }
            BundleKind::Collection => assert!(e.get("request").is_none(), "{}", ctx("request in a collection")),
        }
    }

    // Every reference resolves inside the Bundle.
    let mut refs = Vec::new();
    collect_references(b, &mut refs);
    assert!(!refs.is_empty(), "{}", ctx("no references at all"));
    for r in &refs {
        assert!(full_urls.contains_key(*r), "{}", ctx(&format!("dangling reference {r}")));
    }
    let target = |reference: &Value| full_urls.get(reference["reference"].as_str().unwrap_or_default()).copied();

    // meta.profile on every ACP resource: one pinned canonical, of the right resource type, and one
    // the intake reads back.
    for r in resources(b) {
        let rt = r["resourceType"].as_str().unwrap();
        if matches!(rt, "QuestionnaireResponse" | "Provenance") {
            continue;
        }
        let profiles =
            r["meta"]["profile"].as_array().unwrap_or_else(|| panic!("{}", ctx(&format!("{rt} without meta.profile"))));
        assert_eq!(profiles.len(), 1, "{}", ctx(rt));
        let url = profiles[0].as_str().unwrap();
        assert!(url.starts_with(&t.release.base), "{}", ctx(url));
        let concept = mappings::get()
            .canonicals
            .profile_concept(url)
            .unwrap_or_else(|| panic!("{}", ctx(&format!("{url} is not read back"))));
        assert_eq!(resource_type_of(concept), rt, "{}", ctx(url));
    }

    // ACP-Patient: exactly one, name 1..*, ACP-Patient-1.
    let patients = of_type(b, "Patient");
    assert_eq!(patients.len(), 1, "{}", ctx("one Patient"));
    let patient = patients[0];
    let patient_url = format!("urn:uuid:{}", patient["id"].as_str().unwrap());
    let names = patient["name"].as_array().unwrap_or_else(|| panic!("{}", ctx("Patient.name 1..*")));
    assert!(!names.is_empty(), "{}", ctx("Patient.name 1..*"));
    for n in names {
        assert!(
            n.get("text").is_some() || n.get("family").is_some() || n.get("extension").is_some(),
            "{}",
            ctx("empty name")
        );
    }
    if let Some(bsn) = &record.patient.bsn {
        let system = &mappings::get().naming_system("bsn").uri;
        assert!(
            patient["identifier"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["system"] == *system && i["value"] == bsn.as_str()),
            "{}",
            ctx("BSN")
        );
    }
    if let Some(birth) = &record.patient.birth_date {
        let written = text(patient, "birthDate").unwrap_or_default();
        assert!(!written.contains('T'), "{}", ctx("birthDate is a date"));
        let time = patient["_birthDate"]["extension"][0]["valueDateTime"].as_str();
        assert_eq!(time.is_some(), birth.has_time(), "{}", ctx("patient-birthTime only for a time of birth"));
        assert_eq!(time.unwrap_or(written), birth.as_str(), "{}", ctx("the birth date arrives whole"));
    }
    let capable_ext = ext(patient, "extension", t.extension("legally-capable"));
    let capable = capable_ext.first().and_then(|e| {
        e["extension"].as_array()?.iter().find(|s| s["url"] == t.legally_capable_part("capable"))?["valueBoolean"]
            .as_bool()
    });
    assert_eq!(capable, record.legal_capacity.as_ref().and_then(|l| l.capable), "{}", ctx("legallyCapable"));
    let representative_reachable = record
        .representative
        .as_ref()
        .is_some_and(|r| !r.person.name.is_empty() || !r.person.phones.is_empty() || !r.person.emails.is_empty());
    if capable == Some(false) && representative_reachable {
        let contacts = patient["contact"].as_array().cloned().unwrap_or_default();
        let ok = contacts.iter().any(|c| {
            c["relationship"].as_array().into_iter().flatten().any(|r| codings(r).iter().any(|(_, k)| k == "24"))
                || !ext(c, "extension", t.extension("patient-related-person")).is_empty()
        });
        assert!(ok, "{}", ctx("ACP-Patient-1: not legally capable, yet no representative contact"));
    }
    for c in patient["contact"].as_array().into_iter().flatten() {
        // pat-1
        assert!(c.get("name").is_some() || c.get("telecom").is_some(), "{}", ctx("pat-1"));
    }

    // ACP-ContactPerson: patient, relationship 1..* with at least one role.
    let roles = mappings::get().valueset("contact-role");
    for rp in of_type(b, "RelatedPerson") {
        assert_eq!(rp["patient"]["reference"], patient_url, "{}", ctx("RelatedPerson.patient"));
        let rels =
            rp["relationship"].as_array().unwrap_or_else(|| panic!("{}", ctx("RelatedPerson.relationship 1..*")));
        assert!(!rels.is_empty(), "{}", ctx("relationship 1..*"));
        let has_role = rels.iter().any(|r| {
            codings(r).iter().any(|(s, k)| roles.entries.iter().any(|e| e.coding.system == *s && e.coding.code == *k))
        });
        assert!(has_role, "{}", ctx("relationship[role] 1..*"));
        for r in rels {
            let (s, k) = &codings(r)[0];
            let known = ["contact-role", "relationship"].iter().any(|vs| {
                mappings::get().valueset(vs).entries.iter().any(|e| e.coding.system == *s && e.coding.code == *k)
            });
            assert!(known, "{}", ctx(&format!("relationship {s}#{k}")));
        }
    }

    // Practitioner / PractitionerRole.
    for pr in of_type(b, "PractitionerRole") {
        assert_eq!(target(&pr["practitioner"]), Some("Practitioner"), "{}", ctx("PractitionerRole.practitioner"));
        for s in pr["specialty"].as_array().into_iter().flatten() {
            bound(s, "professional-function", &ctx("specialty"));
        }
    }
    assert_eq!(
        of_type(b, "PractitionerRole").len(),
        usize::from(record.conducted_by.is_some()),
        "{}",
        ctx("PractitionerRole")
    );

    // ACP-Encounter and ACP-Procedure.
    let encounter = one(b, "encounter");
    let procedure = one(b, "procedure");
    assert!(encounter.get("class").is_some(), "{}", ctx("Encounter.class 1..1"));
    assert!(encounter.get("status").is_some(), "{}", ctx("Encounter.status 1..1"));
    assert_eq!(
        encounter["reasonReference"][0]["reference"],
        format!("urn:uuid:{}", procedure["id"].as_str().unwrap()),
        "{}",
        ctx("reasonReference → Procedure")
    );
    assert_eq!(
        text(&encounter["period"], "start"),
        record.date_filled_in.as_ref().map(FhirDate::as_str),
        "{}",
        ctx("period.start = date filled in")
    );
    let present = record.present.as_ref().is_some_and(|p| p.patient);
    assert_eq!(
        encounter.get("subject").is_some(),
        present,
        "{}",
        ctx("Encounter.subject only when the patient was present")
    );
    let code = procedure["code"]["coding"].as_array().unwrap();
    assert_eq!(code.len(), 1, "{}", ctx("Procedure.code 1..1"));
    assert!(is(&procedure["code"], question("acp-procedure")), "{}", ctx("Procedure.code = 713603004"));
    assert_eq!(procedure["subject"]["reference"], patient_url, "{}", ctx("Procedure.subject"));
    assert!(procedure.get("status").is_some(), "{}", ctx("Procedure.status"));

    // ACP-TreatmentDirective.
    let treatments = mappings::get().valueset("treatment");
    let icd_code = &Treatment::IcdDeactivation.entry().coding;
    // A current directive is `active` without an end; one not in force has its own status (or the
    // end that took it out of force).
    let statuses = mappings::get().valueset("directive-status");
    let current = |c: &Value| c["status"] == t.status("consent") && c["provision"]["period"]["end"].is_null();
    for c in profiled(b, "treatment-directive").into_iter().chain(profiled(b, "advance-directive")) {
        let status = c["status"].as_str().unwrap_or_default();
        assert!(statuses.by_key(status).is_some(), "{}", ctx(&format!("Consent.status {status}")));
    }
    let not_in_force = |ad: bool| {
        record.directives_not_in_force.iter().filter(|d| matches!(d.directive, RecordedDirective::AdvanceDirective(_)) == ad).count()
    };
    assert_eq!(
        profiled(b, "treatment-directive").into_iter().filter(|c| !current(c)).count(),
        not_in_force(false),
        "{}",
        ctx("treatment directives not in force")
    );
    for c in profiled(b, "treatment-directive") {
        assert!(is(&c["scope"], fixed("treatment-directive-scope")), "{}", ctx("scope treatment"));
        assert!(
            c["category"].as_array().unwrap().iter().any(|cat| is(cat, fixed("treatment-directive-category"))),
            "{}",
            ctx("category 129125009")
        );
        assert_eq!(c["patient"]["reference"], patient_url, "{}", ctx("Consent.patient"));
        assert!(
            c["policy"][0]["uri"].as_str().is_some_and(|u| !u.is_empty()) || c.get("policyRule").is_some(),
            "{}",
            ctx("ppc-1")
        );
        let provision = &c["provision"];
        let codes = provision["code"].as_array().unwrap();
        assert_eq!(codes.len(), 1, "{}", ctx("provision.code max 1"));
        // Required binding to BehandelingCodelijst: the six treatments and OTH, never the ICD code.
        let (s, k) = &codings(&codes[0])[0];
        assert!(
            treatments.entries.iter().any(|e| e.coding.system == *s && e.coding.code == *k),
            "{}",
            ctx(&format!("{s}#{k}"))
        );
        assert!(
            !(s == &icd_code.system && k == &icd_code.code),
            "{}",
            ctx("the ICD code is outside the bound value set")
        );
        match (provision.get("type").and_then(Value::as_str), spec_other(c)) {
            (Some(ty), None) => assert!(ty == "permit" || ty == "deny", "{}", ctx(ty)),
            (None, Some(text)) => assert!(!text.is_empty(), "{}", ctx("empty specificationOther")),
            (ty, spec) => panic!("{}", ctx(&format!("provision.type {ty:?} beside specificationOther {spec:?}"))),
        }
        let parties = provision["actor"].as_array().unwrap();
        assert!(!parties.is_empty(), "{}", ctx("agreement parties"));
        for p in parties {
            assert!(is(&p["role"], fixed("agreement-party")), "{}", ctx("CONSENTER"));
            assert!(
                matches!(target(&p["reference"]), Some("Patient" | "PractitionerRole" | "RelatedPerson")),
                "{}",
                ctx("party")
            );
        }
    }

    // ACP-AdvanceDirective.
    let directives = profiled(b, "advance-directive");
    assert_eq!(directives.iter().filter(|c| current(c)).count(), record.advance_directives.len(), "{}", ctx("one AdvanceDirective each"));
    assert_eq!(directives.len(), record.advance_directives.len() + not_in_force(true), "{}", ctx("and one per wilsverklaring not in force"));
    for c in directives {
        assert!(is(&c["scope"], fixed("advance-directive-scope")), "{}", ctx("scope adr"));
        assert!(
            c["category"].as_array().unwrap().iter().any(|cat| is(cat, fixed("advance-directive-category"))),
            "{}",
            ctx("category acd")
        );
        assert!(c["policy"][0]["uri"].is_string(), "{}", ctx("ppc-1"));
        bound(&c["provision"]["code"][0], "advance-directive-type", &ctx("WilsverklaringType"));
    }

    // ACP-Medical-Policy-Goal.
    for g in profiled(b, "medical-policy-goal") {
        bound(&g["description"], "medical-policy-goal", &ctx("Goal.description"));
        assert!(
            g["category"].as_array().unwrap().iter().any(|c| is(c, question("acp-procedure"))),
            "{}",
            ctx("Goal.category")
        );
        assert!(g.get("lifecycleStatus").is_some(), "{}", ctx("Goal.lifecycleStatus"));
        assert_eq!(g["subject"]["reference"], patient_url, "{}", ctx("Goal.subject"));
    }

    // The five Observations: fixed code, value type and binding, obs-6, method.
    let observations = [
        ("care-wishes", "care-wishes", None),
        ("place-of-death", "place-of-death", Some("place-of-death")),
        ("euthanasia-position", "euthanasia-position", Some("euthanasia-position")),
        ("organ-donation", "organ-donation", Some("yes-no-unknown")),
        ("sense-of-purpose", "sense-of-purpose", None),
    ];
    for (concept, question_key, value_set) in observations {
        for o in profiled(b, concept) {
            assert!(is(&o["code"], question(question_key)), "{}", ctx(&format!("{concept} code")));
            assert_eq!(o["status"], t.status("observation"), "{}", ctx("Observation.status"));
            assert_eq!(o["subject"]["reference"], patient_url, "{}", ctx("Observation.subject"));
            let has_value = o.get("valueString").is_some() || o.get("valueCodeableConcept").is_some();
            assert!(
                has_value != o.get("dataAbsentReason").is_some(),
                "{}",
                ctx(&format!("{concept}: obs-6, value xor dataAbsentReason"))
            );
            match value_set {
                Some(vs) => {
                    if let Some(v) = o.get("valueCodeableConcept") {
                        bound(v, vs, &ctx(concept));
                    }
                    assert!(o.get("valueString").is_none(), "{}", ctx(concept));
                }
                None => assert!(o["valueString"].is_string(), "{}", ctx(&format!("{concept}: value[x] only string"))),
            }
        }
    }
    for o in profiled(b, "care-wishes") {
        assert!(is(&o["method"], fixed("care-wishes-method")), "{}", ctx("method 370819000"));
    }
    for o in profiled(b, "organ-donation") {
        assert!(is(&o["method"], fixed("organ-donation-method")), "{}", ctx("method 1156040003"));
    }

    // ACP-MedicalDevice + Product-ICD: only for a patient with an ICD.
    let has_icd = record.icd.as_ref().is_some_and(|i| i.present == YesNoUnknown::Yes);
    assert_eq!(profiled(b, "medical-device").len(), usize::from(has_icd), "{}", ctx("DeviceUseStatement"));
    assert_eq!(profiled(b, "device-product").len(), usize::from(has_icd), "{}", ctx("Device"));
    for d in profiled(b, "device-product") {
        if let Some(ty) = d.get("type") {
            bound(ty, "icd-product-type", &ctx("Device.type"));
        }
    }
    for s in profiled(b, "medical-device") {
        assert_eq!(target(&s["device"]), Some("Device"), "{}", ctx("DeviceUseStatement.device"));
        assert_eq!(s["subject"]["reference"], patient_url, "{}", ctx("DeviceUseStatement.subject"));
        assert!(s.get("status").is_some(), "{}", ctx("DeviceUseStatement.status"));
    }

    // ACP-InformRelativesRequest.
    let requests = profiled(b, "inform-relatives");
    let expected = record.relatives_informed == Some(true) && record.conducted_by.is_some();
    assert_eq!(requests.len(), usize::from(expected), "{}", ctx("CommunicationRequest iff 8a = Ja (and a requester)"));
    for cr in requests {
        assert!(
            cr["category"].as_array().unwrap().iter().any(|c| is(c, fixed("inform-relatives-category"))),
            "{}",
            ctx("category 223449006")
        );
        assert_eq!(cr["subject"]["reference"], patient_url, "{}", ctx("subject 1..1"));
        assert!(
            matches!(target(&cr["requester"]), Some("PractitionerRole" | "Practitioner")),
            "{}",
            ctx("requester 1..1")
        );
        assert_eq!(cr["sender"]["reference"], patient_url, "{}", ctx("sender 1..1 = patient"));
        assert!(
            cr["reasonCode"].as_array().unwrap().iter().any(|c| is(c, question("acp-procedure"))),
            "{}",
            ctx("reasonCode 713603004")
        );
        assert!(cr.get("authoredOn").is_some() || cr.get("encounter").is_some(), "{}", ctx("cr-date-required"));
        assert!(matches!(cr["status"].as_str(), Some("active" | "completed")), "{}", ctx("status"));
    }

    // The QuestionnaireResponse carries the whole form; the Provenance names the gateway.
    let qrs = of_type(b, "QuestionnaireResponse");
    assert_eq!(qrs.len(), 1, "{}", ctx("one QuestionnaireResponse"));
    let own = acp_gateway::render::questionnaire::render(record);
    for key in ["questionnaire", "status", "authored", "item"] {
        assert_eq!(
            qrs[0].get(key),
            own.get(key),
            "{}",
            ctx(&format!("QuestionnaireResponse.{key} as the form renders it"))
        );
    }
    assert_eq!(qrs[0]["subject"]["reference"], patient_url, "{}", ctx("QuestionnaireResponse.subject"));

    let provenances = of_type(b, "Provenance");
    assert_eq!(provenances.len(), usize::from(record.date_filled_in.is_some()), "{}", ctx("Provenance iff dated"));
    for p in provenances {
        let targets: BTreeSet<&str> =
            p["target"].as_array().unwrap().iter().filter_map(|r| r["reference"].as_str()).collect();
        let others: BTreeSet<&str> = full_urls
            .keys()
            .map(String::as_str)
            .filter(|u| *u != format!("urn:uuid:{}", p["id"].as_str().unwrap()))
            .collect();
        assert_eq!(targets, others, "{}", ctx("Provenance.target = every other entry"));
        let recorded = p["recorded"].as_str().unwrap();
        assert!(
            recorded.len() >= 20
                && &recorded[10..11] == "T"
                && (recorded.ends_with('Z') || recorded.contains('+') || recorded[11..].contains('-')),
            "{}",
            ctx(&format!("recorded {recorded} is not an instant"))
        );
        assert!(
            p["agent"][0]["who"]["display"].as_str().unwrap().contains(env!("CARGO_PKG_VERSION")),
            "{}",
            ctx("gateway version")
        );
        assert!(p["policy"][0].as_str().unwrap().ends_with(&mappings::get().version), "{}", ctx("mappings version"));
    }
}

fn check_both_kinds(label: &str, record: &AcpRecord) {
    for kind in [BundleKind::Transaction, BundleKind::Collection] {
        conforms(label, record, &json(record, kind), kind);
    }
}

// --- the tests ---------------------------------------------------------------------------------------

#[test]
fn every_hand_made_record_conforms() {
    let variants = variants();
    assert!(variants.len() > 30);
    for (label, record) in &variants {
        check_both_kinds(label, record);
    }
}

#[test]
fn the_iknl_example_form_and_every_fixture_conform() {
    let bytes =
        std::fs::read(SHARED_QR).unwrap_or_else(|e| panic!("{SHARED_QR}: {e} (keep ../shared beside the project)"));
    let example = intake::read(&bytes);
    let record = example.record.expect("the IKNL example reads");
    check_both_kinds("IKNL example QuestionnaireResponse", &record);
    // The example holds the conversation's treatment limits; they must all arrive as directives.
    let b = json(&record, BundleKind::Collection);
    let named = NAMED_TREATMENTS.iter().filter(|t| record.treatment_limits.get(**t).is_some()).count();
    assert!(named > 0);
    assert_eq!(
        profiled(&b, "treatment-directive").len(),
        named + record.treatment_limits.other.len() + usize::from(record.icd_deactivation.is_some())
    );

    // Every valid fixture: the uniform records, and the FHIR inputs in JSON and XML.
    let mut checked = 0;
    let fixtures = support::files_in("fixtures", "json")
        .into_iter()
        .chain(support::files_in("fixtures/fhir", "json"))
        .chain(support::files_in("fixtures/fhir", "xml"));
    for (name, bytes) in fixtures {
        let i = intake::read(&bytes);
        if let Some(record) = i.valid_record() {
            check_both_kinds(&name, record);
            checked += 1;
        }
    }
    assert!(checked >= support::uniform_fixtures().len(), "only {checked} fixtures were valid records");
}

/// The clinical mapping table of the IKNL Consent guidance, decision by decision.
#[test]
fn decisions_map_to_provision_type_or_verbatim_text() {
    let unknown_marker = &mappings::get().text_markers("decision-unknown")[0];
    for d in decisions() {
        let mut r = full();
        for t in NAMED_TREATMENTS {
            *r.treatment_limits.slot_mut(t).unwrap() = Some(limit(d.clone()));
        }
        r.treatment_limits.other[0].limit.decision = d.clone();
        let b = json(&r, BundleKind::Transaction);
        let directives = profiled(&b, "treatment-directive");
        let mut checked = 0;
        for t in NAMED_TREATMENTS {
            let c = directives
                .iter()
                .find(|c| is(&c["provision"]["code"][0], &t.entry().coding))
                .expect("a directive per treatment");
            let ty = c["provision"].get("type").and_then(Value::as_str);
            match &d {
                Decision::Perform => assert_eq!((ty, spec_other(c)), (Some("permit"), None), "{t:?}"),
                Decision::DoNotPerform => assert_eq!((ty, spec_other(c)), (Some("deny"), None), "{t:?}"),
                Decision::PerformWithRestrictions { restriction } => {
                    assert_eq!(ty, None, "{t:?}: a restriction is never permit");
                    assert_eq!(spec_other(c), Some(restriction.as_str()), "{t:?}: verbatim");
                }
                Decision::Unknown => {
                    assert_eq!(ty, None, "{t:?}: unknown has no type");
                    assert_eq!(spec_other(c), Some(unknown_marker.as_str()), "{t:?}");
                }
            }
            assert_eq!(c["dateTime"], "2024-05-01", "{t:?}: discussed on");
            assert_eq!(
                ext(c, "extension", tables::get().extension("comment"))[0]["valueString"],
                "besproken met broer"
            );
            checked += 1;
        }
        assert_eq!(checked, 6);
        // 4g: NullFlavor OTH with the treatment's name as text, same decision rule.
        let dialysis =
            directives.iter().find(|c| c["provision"]["code"][0]["text"] == "Dialyse in het ziekenhuis").expect("4g");
        assert!(is(&dialysis["provision"]["code"][0], &Treatment::Other.entry().coding));
        assert_eq!(
            dialysis["provision"].get("type").is_some(),
            matches!(d, Decision::Perform | Decision::DoNotPerform)
        );
    }
}

#[test]
fn a_restriction_arrives_byte_for_byte_and_never_as_permit() {
    let r = full();
    let text = to_json(&bundle(&r, BundleKind::Transaction));
    let b: Value = serde_json::from_str(&text).unwrap();
    let restricted: Vec<_> =
        profiled(&b, "treatment-directive").into_iter().filter(|c| spec_other(c) == Some(RESTRICTION)).collect();
    assert!(!restricted.is_empty());
    for c in restricted {
        assert!(c["provision"].get("type").is_none());
    }
    // The JSON escaping is the only change: the parsed string is the record's string.
    assert!(text.contains(&serde_json::to_string(RESTRICTION).unwrap()));
}

#[test]
fn icd_deactivation_is_oth_with_text_and_its_own_markers() {
    let m = mappings::get();
    let cases = [
        (IcdDeactivationAgreement::Yes, Some("permit"), None),
        (IcdDeactivationAgreement::NotYetDecided, None, Some(m.text_markers("icd-not-yet-decided")[0].as_str())),
        (IcdDeactivationAgreement::NotDiscussed, None, Some(m.text_markers("icd-not-discussed")[0].as_str())),
    ];
    for (agreement, ty, spec) in cases {
        let mut r = full();
        r.icd_deactivation.as_mut().unwrap().agreement = agreement;
        let b = json(&r, BundleKind::Collection);
        let icd_text = tables::get().text("icd-deactivation-treatment");
        let c = profiled(&b, "treatment-directive")
            .into_iter()
            .find(|c| c["provision"]["code"][0]["text"] == icd_text)
            .expect("4i directive");
        assert!(is(&c["provision"]["code"][0], &Treatment::Other.entry().coding));
        assert_eq!(c["provision"].get("type").and_then(Value::as_str), ty, "{agreement:?}");
        assert_eq!(spec_other(c), spec, "{agreement:?}");
        assert_eq!(
            ext(c, "extension", tables::get().extension("comment"))[0]["valueString"],
            "bespreekt dit met de cardioloog"
        );
    }
}

#[test]
fn contact_persons_carry_their_roles() {
    let b = json(&full(), BundleKind::Collection);
    let role = |r: ContactRole| (r.entry().coding.system.clone(), r.entry().coding.code.clone());
    let rel_codes = |rp: &Value| -> Vec<(String, String)> {
        rp["relationship"].as_array().unwrap().iter().flat_map(codings).collect()
    };
    let people = profiled(&b, "contact-person");
    // Representative: 24, the 1c roles, 01 (also first contact), then the relation.
    let rep = people.iter().find(|p| p["name"][0]["text"] == "Michiel Hartman").expect("representative");
    let codes = rel_codes(rep);
    assert_eq!(codes[0], role(ContactRole::LegalRepresentative));
    assert!(codes.contains(&role(ContactRole::Mentor)));
    assert!(codes.contains(&role(ContactRole::FirstContact)));
    let brother = &Relationship::Brother.entry().coding;
    assert_eq!(codes.last(), Some(&(brother.system.clone(), brother.code.clone())));
    let other_role = rep["relationship"].as_array().unwrap().iter().find(|r| r["text"] == "zaakwaarnemer");
    assert!(other_role.is_some(), "'Anders, namelijk' text of a role");
    // Telecom: the zib telecom type on `system`, the comment as ext-Comment.
    let mobile = rep["telecom"].as_array().unwrap().iter().find(|t| t["value"] == "0612345678").unwrap();
    assert_eq!(mobile["system"], "phone");
    assert_eq!(mobile["use"], "home");
    assert!(is(&mobile["_system"]["extension"][0]["valueCodeableConcept"], &TelecomType::Mobile.entry().coding));
    assert_eq!(mobile["extension"][0]["valueString"], "na 18 uur");
    // Present by relation: role 23 plus the relation, with the "Anders" text.
    let neighbour = people.iter().find(|p| p["relationship"][1]["text"] == "buurvrouw").expect("present by relation");
    assert_eq!(rel_codes(neighbour)[0], role(ContactRole::ContactPerson));
    // Everyone present is a participant of the encounter.
    let encounter = one(&b, "encounter");
    assert_eq!(encounter["participant"].as_array().unwrap().len(), 1 + 3);

    let mut r = full();
    r.representative.as_mut().unwrap().is_first_contact = Some(false);
    r.first_contact = Some(ContactPerson { name: name("Anna", None, "Vries"), ..Default::default() });
    let b = json(&r, BundleKind::Collection);
    let people = profiled(&b, "contact-person");
    let rep = people.iter().find(|p| p["name"][0]["text"] == "Michiel Hartman").unwrap();
    assert!(!rel_codes(rep).contains(&role(ContactRole::FirstContact)));
    let anna = people.iter().find(|p| p["name"][0]["text"] == "Anna Vries").unwrap();
    assert_eq!(rel_codes(anna), vec![role(ContactRole::FirstContact)]);
}

#[test]
fn unknown_place_of_death_is_asked_unknown_and_other_keeps_its_text() {
    let b = json(&full(), BundleKind::Collection);
    let o = one(&b, "place-of-death");
    assert_eq!(o["valueCodeableConcept"]["text"], "bijna-thuis-huis");
    assert!(is(&o["valueCodeableConcept"], &PlaceOfDeath::Other.entry().coding));
    assert_eq!(o["note"][0]["text"], "dicht bij de kinderen");

    let mut r = full();
    r.place_of_death = Some(PlaceOfDeathWish {
        preference: Answer::code(PlaceOfDeath::Unknown),
        explanation: Some("nog niet besproken".into()),
    });
    let b = json(&r, BundleKind::Collection);
    let o = one(&b, "place-of-death");
    assert!(o.get("valueCodeableConcept").is_none());
    assert!(is(&o["dataAbsentReason"], fixed("asked-unknown")));
    assert_eq!(o["note"][0]["text"], "nog niet besproken");
}

#[test]
fn the_goal_uses_the_fhir_code_not_the_questionnaire_one() {
    let b = json(&full(), BundleKind::Collection);
    let g = one(&b, "medical-policy-goal");
    let entry = MedicalPolicyGoal::PalliativeSymptomRelief.entry();
    assert!(is(&g["description"], &entry.coding));
    assert!(!is(&g["description"], entry.questionnaire_coding()), "225353007 is the Questionnaire's code");
}

/// 7a/7b, 8b, 8a "Nee" and ICD "Nee" have no profile; they must still be in the Bundle.
#[test]
fn what_the_profiles_cannot_hold_travels_in_the_questionnaire_response() {
    let mut r = full();
    r.relatives_informed = Some(false);
    r.icd = Some(Icd { present: YesNoUnknown::No, product_type: None, explanation: Some("nooit gehad".into()) });
    r.sharing_consent = Some(SharingConsent::Unknown);
    let b = json(&r, BundleKind::Transaction);
    assert!(profiled(&b, "inform-relatives").is_empty());
    assert!(profiled(&b, "medical-device").is_empty());
    let qr = of_type(&b, "QuestionnaireResponse")[0].to_string();
    for link in ["\"1197\"", "\"1198\"", "\"1199\"", "\"1200\"", "\"1201\"", "\"1006\""] {
        assert!(qr.contains(link), "linkId {link} missing from the Bundle's QuestionnaireResponse");
    }
    assert!(qr.contains("nooit gehad"));

    // 8a "Ja" without a professional to be the requester: the request cannot be made, the form keeps it.
    let mut r = full();
    r.conducted_by = None;
    let b = json(&r, BundleKind::Transaction);
    assert!(profiled(&b, "inform-relatives").is_empty());
    assert!(of_type(&b, "QuestionnaireResponse")[0].to_string().contains("\"1200\""));
}

#[test]
fn output_is_deterministic_and_content_addressed() {
    for (label, r) in variants().into_iter().take(6) {
        let a = to_json(&bundle(&r, BundleKind::Transaction));
        let b = to_json(&bundle(&r.clone(), BundleKind::Transaction));
        assert_eq!(a, b, "{label}: same record, same bytes");
        assert!(a.ends_with("}\n"), "{label}: pretty JSON with a trailing newline");
        // Transaction and collection hold the same resources.
        let t = json(&r, BundleKind::Transaction);
        let c = json(&r, BundleKind::Collection);
        assert_eq!(resources(&t), resources(&c), "{label}");
    }
    let a = json(&full(), BundleKind::Transaction);
    let mut changed = full();
    changed.care_wishes = Some("Wil thuis blijven.".into());
    let b = json(&changed, BundleKind::Transaction);
    assert_ne!(a["id"], b["id"], "a changed record is a new bundle");
    assert_ne!(of_type(&a, "Patient")[0]["id"], of_type(&b, "Patient")[0]["id"]);
}

#[test]
fn the_json_reads_back_into_the_model_unchanged() {
    for (label, r) in variants() {
        let text = to_json(&bundle(&r, BundleKind::Transaction));
        let model: acp_gateway::fhir::model::Resource =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{label}: {e}"));
        let mut again = serde_json::to_string_pretty(&model).unwrap();
        again.push('\n');
        assert_eq!(again, text, "{label}");
    }
}

#[test]
fn times_come_from_the_record_only() {
    let mut r = full();
    r.date_filled_in = Some(date("2021-03-04"));
    let b = json(&r, BundleKind::Transaction);
    assert_eq!(b["timestamp"], "2021-03-04T00:00:00Z");
    assert_eq!(of_type(&b, "Provenance")[0]["recorded"], "2021-03-04T00:00:00Z");
    assert_eq!(one(&b, "inform-relatives")["authoredOn"], "2021-03-04");
    assert_eq!(one(&b, "procedure")["performedDateTime"], "2021-03-04");
    assert_eq!(one(&b, "care-wishes")["effectiveDateTime"], "2021-03-04");
    // Without a date there is nothing to date the bundle by: no timestamp, no Provenance.
    r.date_filled_in = None;
    let b = json(&r, BundleKind::Transaction);
    assert!(b.get("timestamp").is_none());
    assert!(of_type(&b, "Provenance").is_empty());
}

#[test]
fn the_xml_is_the_same_bundle_as_the_json() {
    let example = intake::read(&std::fs::read(SHARED_QR).unwrap()).record.expect("the IKNL example reads");
    let cases = variants().into_iter().take(8).chain([("IKNL example".to_owned(), example)]);
    for (label, r) in cases {
        let b = bundle(&r, BundleKind::Transaction);
        let xml = acp_gateway::render::fhir::to_xml(&b);
        assert!(xml.contains("<Bundle xmlns=\"http://hl7.org/fhir\">"), "{label}");
        let back = acp_gateway::fhir::xml::parse(&xml).unwrap_or_else(|e| panic!("{label}: {e:?}"));
        let json: Value = serde_json::from_str(&to_json(&b)).unwrap();
        assert_eq!(back, json, "{label}: XML and JSON differ");
    }
}

proptest! {
    // Fixed seed, no persistence: the same cases on every run and machine.
    #![proptest_config(ProptestConfig { cases: 96, rng_seed: RngSeed::Fixed(20_260_501), failure_persistence: None, ..ProptestConfig::default() })]

    /// Any valid record the form allows gives a conforming Bundle.
    #[test]
    fn every_valid_record_conforms(record in support::arb_record()) {
        conforms("arbitrary record", &record, &json(&record, BundleKind::Transaction), BundleKind::Transaction);
    }
}
