//! Intake of FHIR R4 resources (IKNL PZP profiles, nl-core zib2020): a Bundle or a single resource.
//!
//! ## What is read
//! A Bundle of any type (transaction, collection, document, searchset, ...) or one resource, with
//! references resolved by `fullUrl`, `Type/id` (also at the end of an absolute URL), `urn:uuid:` and
//! `#id` (contained resources). Each resource is recognised by its `meta.profile` (old
//! `https://fhir.iknl.nl/fhir/` and new `https://api.iknl.nl/docs/pzp/r4/` canonicals, rc1 and rc2
//! names, plain nl-core / zib2020: `crate::mappings` canonicals), or, without a profile it knows, by
//! content: Consent scope `treatment` / `adr` (or a treatment / advance-directive type in
//! `provision.code`), Observation by its question code, and the resource type for the rest. The mapping
//! to the record follows `acp-fhir-standard.md` §5:
//! - Encounter `period.start` is the date filled in; its `subject` says the patient was present; its
//!   RelatedPerson participants are the others present (by relation if they have one, else by role).
//!   A participant known only by role or relation (no name, no telecom: the form names nobody present)
//!   is only that, never the representative or first contact.
//! - RelatedPerson (ACP-ContactPerson): role 24 makes the legal representative (also the first contact
//!   when it has 01 too); 01 without 24 the first contact. `Patient.contact` is read the same way when
//!   it does not point (`patient-relatedPerson`) at a RelatedPerson of the input.
//! - Treatment directives: `provision.type` permit/deny is "Ja"/"Nee"; without a type the modifier
//!   extension `specificationOther` is the decision: a `decision-unknown` text marker is "Onbekend",
//!   any other text is "Ja maar met beperkingen" with the text verbatim. Never a permit. When both are
//!   given the modifier overrules the type (zib rule), with a warning. 4i (ICD deactivation, NullFlavor
//!   OTH + a text naming 400231000146108, or that code itself): permit is "Ja"; without a type the ICD
//!   text markers, and an unknown text is "not yet decided" (no type means no agreement to switch off)
//!   with the text kept in the explanation.
//!
//! ## Telecom (one mapping, for every person)
//! `system` phone/fax/pager/sms → a phone, `email` → an e-mail address; other systems are reported and
//! dropped. The phone's type is the TelecomType coding nl-core puts in an extension on `system`
//! (ext-CodeSpecification; any extension there whose coding is in the TelecomType value set); without
//! one, fax → fax, pager → pager, sms or `use` mobile → mobile. `use` home/work/temp → the number use
//! (e-mail: home → private, work → work); `old` numbers are dropped with a warning. ext-Comment on a
//! phone is its comment.
//!
//! ## What is reported as not read
//! Every object the reader opens ends with one warning (NotSupported) listing the elements it did not
//! read, so nothing vanishes silently and nothing floods: one line per object. Not listed, because they
//! carry no form content: `id`, `meta`, `text` (the narrative is generated from the data), `language`,
//! statuses (checked, see below), business identifiers of resources other than Patient and
//! Practitioner, references that were resolved or that only tie resources together (patient, subject,
//! encounter, performer, agreement parties, ...), the fixed codes that identify a profile (scope,
//! category, code, method, policy), and the ACP encounter-reference extension. A resource of a type
//! the record has no place for is one warning. An unknown `modifierExtension` (or `implicitRules`) is an
//! error and the resource is not read: FHIR forbids processing a resource whose modifier one does not
//! understand. A status that takes a resource out of force (entered-in-error, rejected, cancelled, ...)
//! is a warning and the resource is not read; directives are the exception (below).
//!
//! ## Directive status and period
//! A treatment directive or advance directive is a current limit only when its `status` is `active`
//! and its `provision.period.end`, if any, is not before the date filled in (before today, Dutch date,
//! when the input has no date). Every other directive (inactive, ended, draft, proposed, rejected,
//! entered-in-error) is read in full and carried in `directives_not_in_force` with its status and end
//! date, with a warning at `status` or `provision.period.end`: never as a current limit, and never
//! competing with the current limit for the same treatment. A missing or unknown status is an error.
//!
//! ## Completeness
//! Partial (interface.md: "A single resource, or a Bundle that carries only part of the form, is a
//! partial record"), except when the Bundle carries the form itself as an ACP-zib2020
//! QuestionnaireResponse (the gateway's own FHIR output does): that is read too, fills the items the
//! discrete resources leave open (7a/7b, 8b, ...), gives 1c/1d as the form answered them, and makes the
//! record complete. Where the two disagree on an answer, the discrete resource is kept, with a warning.
//!
//! Locations are FHIRPath: `Bundle.entry[3].resource.provision.code.coding[0]`, or
//! `Consent.provision...` for a single resource.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::Value;

use crate::intake::cursor::{coded_from_coding, type_name, Obj, Path, Problems};
use crate::intake::questionnaire;
use crate::mappings;
use crate::record::*;
use crate::validate::rules::Completeness;
use crate::validate::{IssueType, Location, Severity};

/// FHIR's own structural names: resource types, the consentscope codes that say what a Consent is,
/// HL7 core extension URLs, element names of extensions. Codes of the form's answers are never here.
mod names {
    pub const BUNDLE: &str = "Bundle";
    pub const PATIENT: &str = "Patient";
    pub const RELATED_PERSON: &str = "RelatedPerson";
    pub const PRACTITIONER: &str = "Practitioner";
    pub const PRACTITIONER_ROLE: &str = "PractitionerRole";
    pub const ENCOUNTER: &str = "Encounter";
    pub const PROCEDURE: &str = "Procedure";
    pub const CONSENT: &str = "Consent";
    pub const GOAL: &str = "Goal";
    pub const OBSERVATION: &str = "Observation";
    pub const DEVICE_USE_STATEMENT: &str = "DeviceUseStatement";
    pub const DEVICE: &str = "Device";
    pub const COMMUNICATION_REQUEST: &str = "CommunicationRequest";
    pub const COMMUNICATION: &str = "Communication";
    pub const QUESTIONNAIRE_RESPONSE: &str = "QuestionnaireResponse";
    /// Resources that only hold others together (a document's index, the output's provenance).
    pub const STRUCTURAL: &[&str] = &["Composition", "Provenance", "OperationOutcome"];

    /// `Consent.scope` codes (http://terminology.hl7.org/CodeSystem/consentscope) that say which kind
    /// of Consent this is.
    pub const SCOPE_TREATMENT: &str = "treatment";
    pub const SCOPE_ADVANCE_DIRECTIVE: &str = "adr";

    pub const PERMIT: &str = "permit";
    pub const DENY: &str = "deny";

    /// HL7 core extensions (the `http://hl7.org/fhir` namespace) nl-core uses on names and contacts.
    pub const OWN_PREFIX: &str = "http://hl7.org/fhir/StructureDefinition/humanname-own-prefix";
    pub const OWN_NAME: &str = "http://hl7.org/fhir/StructureDefinition/humanname-own-name";
    pub const PARTNER_PREFIX: &str = "http://hl7.org/fhir/StructureDefinition/humanname-partner-prefix";
    pub const PARTNER_NAME: &str = "http://hl7.org/fhir/StructureDefinition/humanname-partner-name";
    pub const PATIENT_RELATED_PERSON: &str = "http://hl7.org/fhir/StructureDefinition/patient-relatedPerson";

    /// The slices (sub-extension urls) of the IKNL legal-capacity extension.
    pub const LEGALLY_CAPABLE: &str = "legallyCapable";
    pub const LEGALLY_CAPABLE_COMMENT: &str = "legallyCapableComment";

    /// Resource elements that never carry form content (see the module documentation).
    pub const ALWAYS_STRUCTURAL: &[&str] = &["resourceType", "id", "meta", "text", "language", "contained"];
}

/// What a resource is to the ACP record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Patient,
    ContactPerson,
    Practitioner,
    PractitionerRole,
    Encounter,
    Procedure,
    TreatmentDirective,
    AdvanceDirective,
    Goal,
    CareWishes,
    PlaceOfDeath,
    Euthanasia,
    OrganDonation,
    SenseOfPurpose,
    DeviceUse,
    Device,
    InformRelatives,
    Form,
    Structural,
    Other,
}

impl Kind {
    /// The kind of a `canonicals.toml` profile concept, and the resource type that profile constrains.
    fn of_concept(concept: &str) -> Option<(Kind, &'static str)> {
        use names::*;
        Some(match concept {
            "patient" => (Kind::Patient, PATIENT),
            "contact-person" => (Kind::ContactPerson, RELATED_PERSON),
            "practitioner" => (Kind::Practitioner, PRACTITIONER),
            "practitioner-role" => (Kind::PractitionerRole, PRACTITIONER_ROLE),
            "encounter" => (Kind::Encounter, ENCOUNTER),
            "procedure" => (Kind::Procedure, PROCEDURE),
            "treatment-directive" => (Kind::TreatmentDirective, CONSENT),
            "advance-directive" => (Kind::AdvanceDirective, CONSENT),
            "medical-policy-goal" => (Kind::Goal, GOAL),
            "care-wishes" => (Kind::CareWishes, OBSERVATION),
            "place-of-death" => (Kind::PlaceOfDeath, OBSERVATION),
            "euthanasia-position" => (Kind::Euthanasia, OBSERVATION),
            "organ-donation" => (Kind::OrganDonation, OBSERVATION),
            "sense-of-purpose" => (Kind::SenseOfPurpose, OBSERVATION),
            "medical-device" => (Kind::DeviceUse, DEVICE_USE_STATEMENT),
            "device-product" => (Kind::Device, DEVICE),
            // rc2 CommunicationRequest; <= rc1 Communication (both ids name this concept).
            "inform-relatives" => (Kind::InformRelatives, COMMUNICATION_REQUEST),
            _ => return None,
        })
    }

    /// Whether the record holds something of this kind (as opposed to structure or foreign data).
    fn is_acp(self) -> bool {
        !matches!(self, Kind::Structural | Kind::Other | Kind::Procedure | Kind::Device)
    }
}

/// One resource of the input.
struct Res<'a> {
    v: &'a Value,
    path: Path,
    rtype: String,
    /// The resource whose `contained` this one is in.
    container: Option<usize>,
    kind: Kind,
    /// Classified by a profile it claims (stricter: its codes must be the profile's).
    by_profile: bool,
    /// Not to be read (unknown modifier, out of force).
    skip: bool,
    /// Read into the record, or deliberately part of another resource's reading.
    used: bool,
}

/// The input's resources and how to find them by reference.
struct Input<'a> {
    res: Vec<Res<'a>>,
    /// fullUrl and `Type/id` of each top-level resource.
    urls: BTreeMap<String, usize>,
    /// `#id` of contained resources, per container.
    local: BTreeMap<(usize, String), usize>,
    patient: Option<usize>,
}

impl<'a> Input<'a> {
    /// The resource a Reference (object with `reference`) points to, if it is in the input.
    fn resolve(&self, from: usize, reference: &Value) -> Option<usize> {
        let r = reference.get("reference")?.as_str()?;
        let r = r.split("/_history/").next().unwrap_or(r);
        if let Some(local) = r.strip_prefix('#') {
            let container = self.res.get(from).and_then(|x| x.container).unwrap_or(from);
            return self.local.get(&(container, local.to_owned())).copied();
        }
        if let Some(i) = self.urls.get(r) {
            return Some(*i);
        }
        // An absolute URL ending in Type/id, or a relative reference against another base.
        let mut parts = r.rsplit('/');
        let id = parts.next()?;
        let rtype = parts.next()?;
        self.urls.get(&format!("{rtype}/{id}")).copied()
    }

    fn kind_of(&self, from: usize, reference: &Value) -> Option<(usize, Kind)> {
        self.resolve(from, reference).and_then(|i| self.res.get(i).map(|r| (i, r.kind)))
    }
}

// --- small readers ----------------------------------------------------------------------------------

/// Marks keys as read because they carry no form content (see the module documentation).
fn skip(o: &Obj<'_>, keys: &[&str]) {
    for k in keys {
        o.skip(k);
    }
}

/// Ends an object: one warning listing the elements nobody read. The `_name` companion of an element
/// that was read belongs to it (ids and extensions of a primitive) and is not listed.
fn done(o: Obj<'_>, p: &mut Problems) {
    let at = o.path.clone();
    let prefix = at.location().to_string();
    let map = o.map;
    let mut unread = Problems::default();
    o.finish(&mut unread, Severity::Warning);
    let keys: Vec<String> = unread
        .list
        .iter()
        .filter_map(|x| x.location.to_string().strip_prefix(&prefix).map(|k| k.trim_start_matches('.').to_owned()))
        .collect();
    let listed: Vec<&str> = keys
        .iter()
        // `_x` goes with `x`: listed when `x` is unread or absent (extensions without a value).
        .filter(|k| match k.strip_prefix('_') {
            Some(base) => !map.contains_key(base) || keys.iter().any(|other| other == base),
            None => true,
        })
        .map(|k| k.strip_prefix('_').unwrap_or(k))
        .fold(Vec::new(), |mut acc, k| {
            if !acc.contains(&k) {
                acc.push(k);
            }
            acc
        });
    if !listed.is_empty() {
        p.warning(
            IssueType::NotSupported,
            &at,
            format!("not part of the ACP record, so not handed over: {}", listed.join(", ")),
        );
    }
}

/// The items of an array element, each with its path (an absent element is an empty list).
fn items<'v>(o: &Obj<'v>, key: &str, p: &mut Problems) -> Vec<(Path, &'v Value)> {
    o.array(key, p).map(|a| a.iter().enumerate().map(|(i, v)| (o.at(key).index(i), v)).collect()).unwrap_or_default()
}

/// The `(system, code)` pairs of a CodeableConcept.
fn codings(cc: &Value) -> Vec<(Option<&str>, &str, usize)> {
    cc.get("coding")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .enumerate()
                .filter_map(|(i, c)| Some((c.get("system").and_then(Value::as_str), c.get("code")?.as_str()?, i)))
                .collect()
        })
        .unwrap_or_default()
}

fn cc_text(cc: &Value) -> Option<String> {
    cc.get("text").and_then(Value::as_str).filter(|t| !t.trim().is_empty()).map(str::to_owned)
}

/// The answer a CodeableConcept stands for without reporting: the first coding in the value set.
fn concept_quiet<T: Coded>(cc: &Value) -> Option<T> {
    codings(cc).into_iter().find_map(|(s, c, _)| T::from_coding(s, c))
}

/// The answer of a CodeableConcept bound (required) to the item's value set. Unknown codes are an error
/// that lists the allowed ones; a concept without codings is an error too.
fn concept<T: Coded>(cc: &Value, at: &Path, p: &mut Problems) -> Option<T> {
    if let Some(v) = concept_quiet::<T>(cc) {
        return Some(v);
    }
    match cc.get("coding").and_then(Value::as_array).and_then(|a| a.first()) {
        Some(first) => coded_from_coding::<T>(first, &at.key("coding").index(0), p),
        None if cc.is_object() => {
            p.error(
                IssueType::Required,
                &at.key("coding"),
                "the concept has no coding; the form's answer needs one of its codes",
            );
            None
        }
        None => {
            p.error(IssueType::Value, at, format!("expected a CodeableConcept object, got {}", type_name(cc)));
            None
        }
    }
}

/// A string value of an extension object (`valueString`).
fn ext_string(ext: &Value, at: &Path, p: &mut Problems) -> Option<String> {
    match ext.get("valueString") {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(Value::String(_)) => {
            p.warning(IssueType::Value, &at.key("valueString"), "empty text is treated as not recorded");
            None
        }
        Some(other) => {
            p.error(IssueType::Value, &at.key("valueString"), format!("expected a string, got {}", type_name(other)));
            None
        }
        None => {
            p.error(IssueType::Required, at, "the extension has no valueString");
            None
        }
    }
}

/// The extensions of one element, taken by what they are; whatever is not taken is reported.
struct Exts<'v> {
    list: Vec<(Path, &'v str, &'v Value)>,
    taken: Vec<bool>,
}

impl<'v> Exts<'v> {
    fn of(o: &Obj<'v>, key: &str, p: &mut Problems) -> Exts<'v> {
        let mut list = Vec::new();
        for (at, v) in items(o, key, p) {
            match v.get("url").and_then(Value::as_str) {
                Some(url) => list.push((at, url, v)),
                None => p.error(IssueType::Required, &at.key("url"), "the extension has no url"),
            }
        }
        let taken = vec![false; list.len()];
        Exts { list, taken }
    }

    /// Extensions of a `_name` primitive companion object.
    fn of_value(v: Option<&'v Value>, at: &Path) -> Exts<'v> {
        let list: Vec<_> = v
            .and_then(|u| u.get("extension"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .enumerate()
                    .filter_map(|(i, e)| Some((at.key("extension").index(i), e.get("url")?.as_str()?, e)))
                    .collect()
            })
            .unwrap_or_default();
        let taken = vec![false; list.len()];
        Exts { list, taken }
    }

    fn take(&mut self, pred: impl Fn(&str) -> bool) -> Vec<(Path, &'v Value)> {
        let mut out = Vec::new();
        for (i, (at, url, v)) in self.list.iter().enumerate() {
            if pred(url) {
                self.taken[i] = true;
                out.push((at.clone(), *v));
            }
        }
        out
    }

    /// The extension named in canonicals.toml [extensions] (`comment`, ...).
    fn take_known(&mut self, key: &str) -> Vec<(Path, &'v Value)> {
        let c = &mappings::get().canonicals;
        self.take(|url| c.is_extension(key, url))
    }

    fn take_url(&mut self, url: &str) -> Option<(Path, &'v Value)> {
        self.take(|u| u == url).into_iter().next()
    }

    fn done(self, p: &mut Problems) {
        for ((at, url, _), taken) in self.list.into_iter().zip(self.taken) {
            if !taken {
                p.warning(
                    IssueType::NotSupported,
                    &at,
                    format!("extension {url} is not part of the ACP record, so it is not handed over"),
                );
            }
        }
    }
}

/// ext-Comment (the form's Toelichting) of an element.
fn comment(exts: &mut Exts<'_>, p: &mut Problems) -> Option<String> {
    let found = exts.take_known("comment");
    let texts: Vec<String> = found.iter().filter_map(|(at, v)| ext_string(v, at, p)).collect();
    (!texts.is_empty()).then(|| texts.join("\n"))
}

/// `note[].text`, joined by line breaks.
fn notes(o: &Obj<'_>, p: &mut Problems) -> Option<String> {
    let texts: Vec<String> = items(o, "note", p)
        .into_iter()
        .filter_map(|(at, n)| {
            let no = Obj::new(n, at, p)?;
            skip(&no, &["id", "author", "authorReference", "authorString", "time", "extension"]);
            let t = no.str("text", p);
            done(no, p);
            t
        })
        .collect();
    (!texts.is_empty()).then(|| texts.join("\n"))
}

fn parse_date(raw: &str, at: &Path, p: &mut Problems) -> Option<FhirDate> {
    match FhirDate::parse(raw) {
        Ok(d) => Some(d),
        Err(e) => {
            p.error(IssueType::Value, at, e.to_string());
            None
        }
    }
}

// --- people -----------------------------------------------------------------------------------------

/// The parts of a HumanName the form asks: given names, the own prefix ("van der"), the family name.
///
/// nl-core keeps the whole family name in `family` and its parts in `_family` extensions. The prefix is
/// the own-prefix extension when the family name starts with it; the family name is the rest of
/// `family` (so a partner's name, "Putten-van der Giessen", stays whole). Without `family` text the
/// parts are assembled from the extensions. `family` without extensions is kept verbatim: guessing a
/// prefix from text ("Van Gogh", "ten Brink") is a guess. HumanName `prefix` is a title ("Dr."), not a
/// Dutch voorvoegsel, and is not read.
fn read_human_name(n: &Value, at: Path, p: &mut Problems) -> Name {
    let Some(o) = Obj::new(n, at, p) else { return Name::default() };
    skip(&o, &["id", "use", "period", "extension"]);
    let text = o.str("text", p);
    let family_text = o.str("family", p);
    let mut parts = Exts::of_value(o.get("_family"), &o.at("_family"));
    let part = |parts: &mut Exts<'_>, url: &str, p: &mut Problems| {
        parts.take_url(url).and_then(|(at, v)| ext_string(v, &at, p))
    };
    let own_prefix = part(&mut parts, names::OWN_PREFIX, p);
    let own_name = part(&mut parts, names::OWN_NAME, p);
    let partner_prefix = part(&mut parts, names::PARTNER_PREFIX, p);
    let partner_name = part(&mut parts, names::PARTNER_NAME, p);
    parts.done(p);
    let (prefix, family) = match (family_text, own_prefix) {
        (Some(f), Some(pre)) => match f.strip_prefix(pre.as_str()).filter(|rest| rest.starts_with(' ')) {
            Some(rest) => (Some(pre), Some(rest.trim().to_owned())),
            None => (None, Some(f)),
        },
        (Some(f), None) => (None, Some(f)),
        (None, pre) => {
            let partner = [partner_prefix, partner_name].into_iter().flatten().collect::<Vec<_>>().join(" ");
            let family = match (own_name, partner.is_empty()) {
                (Some(own), true) => Some(own),
                (Some(own), false) => Some(format!("{own}-{partner}")),
                (None, false) => Some(partner),
                (None, true) => None,
            };
            (pre, family)
        }
    };
    let titles: Vec<&str> =
        ["prefix", "suffix"].iter().filter_map(|k| o.array(k, p)).flatten().filter_map(Value::as_str).collect();
    if !titles.is_empty() {
        p.warning(
            IssueType::NotSupported,
            &o.path,
            format!(
                "titles ({}, HumanName prefix/suffix) have no place on the form; they are not handed over",
                titles.join(", ")
            ),
        );
    }
    let given: Vec<String> = o
        .array("given", p)
        .map(|a| a.iter().filter_map(Value::as_str).filter(|s| !s.trim().is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    o.skip("_given"); // name-part qualifiers (initials, birth names): the given names are read as written
    let mut name = Name { given: (!given.is_empty()).then(|| given.join(" ")), prefix, family };
    if name.is_empty() {
        if let Some(t) = text {
            p.warning(IssueType::Value, &o.at("text"), "the name has only text; it is read as the family name");
            name.family = Some(t);
        }
    }
    done(o, p);
    name
}

/// Names of a Patient/Practitioner/RelatedPerson: the official one (else the first that is not the
/// call name). The call name (`use` usual, roepnaam) has no place on the form and is skipped quietly;
/// any further name is reported.
fn read_names(o: &Obj<'_>, p: &mut Problems) -> Name {
    let list = items(o, "name", p);
    let use_of = |v: &Value| v.get("use").and_then(Value::as_str).map(str::to_owned);
    let chosen = list
        .iter()
        .position(|(_, v)| use_of(v).as_deref() == Some("official"))
        .or_else(|| list.iter().position(|(_, v)| use_of(v).as_deref() != Some("usual")))
        .or(if list.is_empty() { None } else { Some(0) });
    let mut name = Name::default();
    for (i, (at, v)) in list.iter().enumerate() {
        if Some(i) == chosen {
            name = read_human_name(v, at.clone(), p);
        } else if use_of(v).as_deref() != Some("usual") {
            p.warning(
                IssueType::NotSupported,
                at,
                "the record holds one name per person (the official one); this name is not handed over",
            );
        }
    }
    name
}

/// Phones and e-mail addresses (the mapping is in the module documentation).
fn read_telecom(list: Vec<(Path, &Value)>, p: &mut Problems) -> (Vec<Phone>, Vec<Email>) {
    let mut phones = Vec::new();
    let mut emails = Vec::new();
    for (at, v) in list {
        let Some(o) = Obj::new(v, at, p) else { continue };
        skip(&o, &["id", "rank", "period"]);
        let system = o.str("system", p);
        let value = o.str("value", p);
        let fhir_use = o.str("use", p);
        let mut system_exts = Exts::of_value(o.get("_system"), &o.at("_system"));
        let coded_type = system_exts
            .take(|_| true)
            .into_iter()
            .find_map(|(_, e)| e.get("valueCodeableConcept").and_then(concept_quiet::<TelecomType>));
        let mut exts = Exts::of(&o, "extension", p);
        let note = comment(&mut exts, p);
        exts.done(p);
        let Some(value) = value else {
            p.warning(IssueType::Required, &o.at("value"), "a contact point without a value is skipped");
            done(o, p);
            continue;
        };
        if fhir_use.as_deref() == Some("old") {
            p.warning(
                IssueType::Value,
                &o.at("use"),
                "a contact point marked 'old' (no longer in use) is not handed over",
            );
            done(o, p);
            continue;
        }
        match system.as_deref() {
            Some(s @ ("phone" | "fax" | "pager" | "sms")) => {
                let telecom_type = coded_type.or(match (s, fhir_use.as_deref()) {
                    ("fax", _) => Some(TelecomType::Fax),
                    ("pager", _) => Some(TelecomType::Pager),
                    ("sms", _) | (_, Some("mobile")) => Some(TelecomType::Mobile),
                    _ => None,
                });
                let number_use = match fhir_use.as_deref() {
                    Some("home") => Some(NumberUse::Home),
                    Some("work") => Some(NumberUse::Work),
                    Some("temp") => Some(NumberUse::Temporary),
                    _ => None,
                };
                phones.push(Phone { number: value, telecom_type, number_use, comment: note });
            }
            Some("email") => {
                let email_use = match fhir_use.as_deref() {
                    Some("home") => Some(EmailUse::Private),
                    Some("work") => Some(EmailUse::Work),
                    _ => None,
                };
                if note.is_some() {
                    p.warning(IssueType::NotSupported, &o.at("extension"), "the form keeps no comment with an e-mail address; it is not handed over");
                }
                emails.push(Email { address: value, email_use });
            }
            other => p.warning(
                IssueType::NotSupported,
                &o.at("system"),
                format!(
                    "a contact point of system {} is neither a phone number nor an e-mail address; it is not handed over",
                    other.unwrap_or("(none)")
                ),
            ),
        }
        done(o, p);
    }
    (phones, emails)
}

/// A contact person's roles and relations, from the codings of `relationship`.
#[derive(Default)]
struct Relations {
    roles: Vec<Answer<ContactRole>>,
    relations: Vec<Answer<Relationship>>,
}

impl Relations {
    fn has(&self, role: ContactRole) -> bool {
        self.roles.iter().any(|a| a.value() == role)
    }
}

fn read_relations(list: Vec<(Path, &Value)>, p: &mut Problems) -> Relations {
    let mut out = Relations::default();
    for (at, cc) in list {
        let text = cc_text(cc);
        if let Some(role) = concept_quiet::<ContactRole>(cc) {
            out.roles.push(Answer::new(role, text).unwrap_or_else(Answer::code));
        } else if let Some(rel) = concept_quiet::<Relationship>(cc) {
            out.relations.push(Answer::new(rel, text).unwrap_or_else(Answer::code));
        } else {
            let what = codings(cc)
                .first()
                .map(|(s, c, _)| format!("{}#{c}", s.unwrap_or("(no system)")))
                .or(text)
                .unwrap_or_else(|| "(empty)".into());
            // The profiles' binding is wider than the form's lists (RoleCodeLijst), so this is valid
            // FHIR that the form cannot carry, not an error.
            p.warning(
                IssueType::NotSupported,
                &at,
                format!("relationship {what} is none of the form's roles or relations; it is not handed over"),
            );
        }
    }
    out
}

/// A person read from a RelatedPerson or a Patient.contact.
struct Person {
    person: ContactPerson,
    rel: Relations,
    at: Path,
}

fn person(name: Name, telecom: (Vec<Phone>, Vec<Email>), rel: Relations, at: Path, p: &mut Problems) -> Person {
    let relationship = rel.relations.first().cloned();
    if rel.relations.len() > 1 {
        p.warning(
            IssueType::NotSupported,
            &at.key("relationship"),
            "the form records one relation per person; the further relations are not handed over",
        );
    }
    Person { person: ContactPerson { name, phones: telecom.0, emails: telecom.1, relationship }, rel, at }
}

// --- decisions ------------------------------------------------------------------------------------------

/// `Consent.provision.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProvisionType {
    Permit,
    Deny,
}

impl ProvisionType {
    fn name(self) -> &'static str {
        match self {
            ProvisionType::Permit => names::PERMIT,
            ProvisionType::Deny => names::DENY,
        }
    }
}

/// A decision as read, with the warning it deserves.
#[derive(Debug, PartialEq)]
struct Read<T> {
    value: T,
    warning: Option<String>,
    /// Text to keep in the explanation (an unrecognised 4i text).
    explanation: Option<String>,
}

fn overruled(t: Option<ProvisionType>, text: &str, read_as: &str) -> Option<String> {
    t.map(|t| {
        format!(
            "provision.type '{}' and specificationOther '{text}' are both given; the modifier extension overrules the type (zib TreatmentDirective2), so this reads as {read_as}",
            t.name()
        )
    })
}

/// 4a-g: permit = "Ja", deny = "Nee"; the specificationOther text (which overrules a type) is "Onbekend"
/// when it is a `decision-unknown` text marker, otherwise the restriction, verbatim. A coded decision
/// (zib2017 TreatmentPermitted, where configured) counts like the type.
fn treatment_decision(
    t: Option<ProvisionType>,
    text: Option<&str>,
    code: Option<DecisionCode>,
) -> Result<Read<Decision>, String> {
    let text = text.filter(|s| !s.trim().is_empty());
    if let Some(code) = code {
        let agrees = matches!(
            (code, t),
            (_, None)
                | (DecisionCode::Perform, Some(ProvisionType::Permit))
                | (DecisionCode::DoNotPerform, Some(ProvisionType::Deny))
        );
        if !agrees {
            return Err(format!("the coded decision '{}' contradicts provision.type", code.key()));
        }
        let restriction = (code == DecisionCode::PerformWithRestrictions).then(|| text.map(str::to_owned)).flatten();
        let warning = (code != DecisionCode::PerformWithRestrictions && text.is_some())
            .then(|| "a specificationOther text beside a coded decision other than 'Ja maar met beperkingen' is not handed over".to_owned());
        return Decision::new(code, restriction)
            .map(|value| Read { value, warning, explanation: None })
            .map_err(|e| e.to_string());
    }
    match (t, text) {
        (t, Some(text)) => {
            let m = mappings::get();
            let (value, read_as) = if m.is_text_marker("decision-unknown", text) {
                (Decision::Unknown, "'Onbekend'")
            } else {
                (Decision::PerformWithRestrictions { restriction: text.to_owned() }, "'Ja maar met beperkingen' with this restriction")
            };
            Ok(Read { value, warning: overruled(t, text, read_as), explanation: None })
        }
        (Some(ProvisionType::Permit), None) => Ok(Read { value: Decision::Perform, warning: None, explanation: None }),
        (Some(ProvisionType::Deny), None) => Ok(Read { value: Decision::DoNotPerform, warning: None, explanation: None }),
        (None, None) => Err("the directive states no decision: neither provision.type (permit/deny) nor the modifier extension specificationOther (restriction or 'Onbekend')".into()),
    }
}

/// 4i: permit = "Ja" (nothing maps to deny); without a type the specificationOther text is one of the
/// ICD markers, or else "not yet decided" (no type means no agreement to switch the ICD off) with the
/// text kept in the explanation.
fn icd_decision(t: Option<ProvisionType>, text: Option<&str>) -> Result<Read<IcdDeactivationAgreement>, String> {
    let text = text.filter(|s| !s.trim().is_empty());
    match (t, text) {
        (t, Some(text)) => {
            let m = mappings::get();
            if m.is_text_marker("icd-not-yet-decided", text) {
                Ok(Read { value: IcdDeactivationAgreement::NotYetDecided, warning: overruled(t, text, "'Nee, nog geen besluit genomen'"), explanation: None })
            } else if m.is_text_marker("icd-not-discussed", text) {
                Ok(Read { value: IcdDeactivationAgreement::NotDiscussed, warning: overruled(t, text, "'Niet besproken'"), explanation: None })
            } else {
                let mut warning = format!(
                    "'{text}' is none of the 4i answers; without provision.type there is no agreement to switch the ICD off, so this reads as 'Nee, nog geen besluit genomen', with the text kept in the explanation"
                );
                if let Some(w) = overruled(t, text, "not yet decided") {
                    warning = format!("{w}. {warning}");
                }
                Ok(Read { value: IcdDeactivationAgreement::NotYetDecided, warning: Some(warning), explanation: Some(text.to_owned()) })
            }
        }
        (Some(ProvisionType::Permit), None) => Ok(Read { value: IcdDeactivationAgreement::Yes, warning: None, explanation: None }),
        (Some(ProvisionType::Deny), None) => Err("4i (switching off the ICD) has no 'deny' answer: 'Ja' is permit; 'Nee, nog geen besluit genomen' and 'Niet besproken' go in specificationOther without a type".into()),
        (None, None) => Err("the ICD directive states no decision: neither provision.type permit nor the modifier extension specificationOther".into()),
    }
}

// --- the reader -------------------------------------------------------------------------------------

/// Which treatment a directive is about.
enum Subject {
    Named(Treatment),
    Other(Option<String>),
    Icd,
}

/// A directive's status and end, as read.
struct DirectiveState {
    status: DirectiveStatus,
    ended_on: Option<FhirDate>,
    in_force: bool,
}

impl DirectiveState {
    /// The directive back when it is in force (to become a current limit); otherwise carried apart.
    fn set_aside(self, directive: RecordedDirective) -> Result<RecordedDirective, DirectiveNotInForce> {
        if self.in_force {
            Ok(directive)
        } else {
            Err(DirectiveNotInForce { status: self.status, ended_on: self.ended_on, directive })
        }
    }
}

/// What a status does to a resource.
enum Gate {
    Read,
    Skip(&'static str),
}

/// FHIR's status codes (required bindings of each resource) that take a resource out of force.
fn gate(kind: Kind, rtype: &str, v: &Value) -> Gate {
    let status = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    match kind {
        // A directive's status (and period) decides whether it is a current limit or is carried apart
        // as not in force; the directive readers do that (`Reader::directive_state`).
        Kind::TreatmentDirective | Kind::AdvanceDirective => Gate::Read,
        Kind::CareWishes | Kind::PlaceOfDeath | Kind::Euthanasia | Kind::OrganDonation | Kind::SenseOfPurpose => {
            match status("status").as_str() {
                "cancelled" | "entered-in-error" => Gate::Skip("this observation was cancelled or entered in error; it is not handed over"),
                _ => Gate::Read,
            }
        }
        Kind::Goal => match status("lifecycleStatus").as_str() {
            "cancelled" | "entered-in-error" | "rejected" => Gate::Skip("this goal was cancelled, rejected or entered in error; it is not handed over"),
            _ => Gate::Read,
        },
        Kind::DeviceUse => match status("status").as_str() {
            "entered-in-error" => Gate::Skip("this device use was entered in error; it is not handed over"),
            "completed" | "stopped" => Gate::Skip("the device is no longer in use (status completed or stopped); 4h is not derived from it"),
            _ => Gate::Read,
        },
        Kind::Encounter => match status("status").as_str() {
            "cancelled" | "entered-in-error" => Gate::Skip("this encounter was cancelled or entered in error; it is not read"),
            _ => Gate::Read,
        },
        Kind::InformRelatives if rtype == names::COMMUNICATION_REQUEST => match status("status").as_str() {
            "active" | "completed" => Gate::Read,
            _ => Gate::Skip("only an active or completed request says the patient was asked to inform their relatives; it is not handed over"),
        },
        Kind::InformRelatives => match status("status").as_str() {
            "completed" | "in-progress" | "not-done" => Gate::Read,
            _ => Gate::Skip("only a completed (or not-done) communication says whether the patient was informed; it is not handed over"),
        },
        _ => Gate::Read,
    }
}

/// Reads FHIR resources; problems go to `p`, the record holds what could be read.
pub fn read(v: &Value, p: &mut Problems) -> (AcpRecord, Completeness) {
    let mut input = collect(v, p);
    for i in 0..input.res.len() {
        classify(&mut input, i, p);
    }
    for i in 0..input.res.len() {
        check_modifiers(&mut input, i, p);
        let r = &input.res[i];
        if r.skip {
            continue;
        }
        match gate(r.kind, &r.rtype, r.v) {
            Gate::Read => {}
            Gate::Skip(why) => {
                p.warning(IssueType::Value, &r.path.key("status"), why);
                input.res[i].skip = true;
                input.res[i].used = true;
            }
        }
    }
    let mut record = AcpRecord::default();
    let mut reader = Reader { input, r: &mut record, p, slots: BTreeMap::new(), form: false, absent_patient: None, representative_res: None };
    reader.run();
    let complete = reader.form;
    let completeness = if complete { Completeness::Complete } else { Completeness::Partial };
    (record, completeness)
}

/// Every resource of the input: the Bundle's entries (or the one resource) and their contained ones.
fn collect<'a>(v: &'a Value, p: &mut Problems) -> Input<'a> {
    let mut input = Input { res: Vec::new(), urls: BTreeMap::new(), local: BTreeMap::new(), patient: None };
    let is_bundle = v.get("resourceType").and_then(Value::as_str) == Some(names::BUNDLE);
    let mut top: Vec<(&'a Value, Path, Option<String>)> = Vec::new();
    if is_bundle {
        let root = Path::fhir(names::BUNDLE);
        let Some(b) = Obj::new(v, root, p) else { return input };
        skip(
            &b,
            &[
                "resourceType",
                "id",
                "meta",
                "language",
                "identifier",
                "type",
                "timestamp",
                "total",
                "link",
                "signature",
            ],
        );
        if b.get("implicitRules").is_some() {
            p.error(
                IssueType::NotSupported,
                &b.at("implicitRules"),
                "the Bundle says it follows implicit rules the gateway does not know; FHIR forbids processing it",
            );
            return input;
        }
        let entries = items(&b, "entry", p);
        if entries.is_empty() {
            p.error(
                IssueType::Required,
                &b.at("entry"),
                "the Bundle has no entries, so it carries nothing of the ACP record",
            );
        }
        for (at, e) in entries {
            let Some(eo) = Obj::new(e, at, p) else { continue };
            skip(&eo, &["id", "link", "search", "request", "response", "extension"]);
            let full_url = eo.str("fullUrl", p);
            if let Some(mods) = eo.get("modifierExtension") {
                let urls: Vec<&str> = mods
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|m| m.get("url").and_then(Value::as_str))
                    .collect();
                p.error(
                    IssueType::NotSupported,
                    &eo.at("modifierExtension"),
                    format!("unknown modifier extension {} on the entry; FHIR forbids processing what it modifies, so its resource is not read", urls.join(", ")),
                );
                eo.skip("resource");
                done(eo, p);
                continue;
            }
            match eo.get("resource") {
                Some(r) => top.push((r, eo.at("resource"), full_url)),
                None => {
                    p.warning(IssueType::NotSupported, &eo.path, "an entry without a resource carries nothing to read")
                }
            }
            done(eo, p);
        }
        b.skip("entry");
        done(b, p);
    } else {
        let rtype = v.get("resourceType").and_then(Value::as_str).unwrap_or_default();
        top.push((v, Path::fhir(rtype), None));
    }
    for (rv, path, full_url) in top {
        let Some(rtype) = rv.get("resourceType").and_then(Value::as_str) else {
            p.error(IssueType::Required, &path.key("resourceType"), "the resource has no resourceType");
            continue;
        };
        let idx = input.res.len();
        if let Some(u) = full_url {
            input.urls.entry(u).or_insert(idx);
        }
        if let Some(id) = rv.get("id").and_then(Value::as_str) {
            input.urls.entry(format!("{rtype}/{id}")).or_insert(idx);
        }
        input.res.push(Res {
            v: rv,
            path: path.clone(),
            rtype: rtype.to_owned(),
            container: None,
            kind: Kind::Other,
            by_profile: false,
            skip: false,
            used: false,
        });
        if let Some(contained) = rv.get("contained").and_then(Value::as_array) {
            for (ci, c) in contained.iter().enumerate() {
                let cpath = path.key("contained").index(ci);
                let Some(ctype) = c.get("resourceType").and_then(Value::as_str) else {
                    p.error(
                        IssueType::Required,
                        &cpath.key("resourceType"),
                        "the contained resource has no resourceType",
                    );
                    continue;
                };
                if let Some(cid) = c.get("id").and_then(Value::as_str) {
                    input.local.insert((idx, cid.to_owned()), input.res.len());
                }
                input.res.push(Res {
                    v: c,
                    path: cpath,
                    rtype: ctype.to_owned(),
                    container: Some(idx),
                    kind: Kind::Other,
                    by_profile: false,
                    skip: false,
                    used: false,
                });
            }
        }
    }
    input
}

/// Sets a resource's kind: by a profile it claims, else by content.
fn classify(input: &mut Input<'_>, i: usize, p: &mut Problems) {
    let r = &input.res[i];
    let canonicals = &mappings::get().canonicals;
    let profiles: Vec<&str> =
        r.v.get("meta")
            .and_then(|m| m.get("profile"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
    let mut by_profile = None;
    for (pi, url) in profiles.iter().enumerate() {
        let Some((kind, rtype)) = canonicals.profile_concept(url).and_then(Kind::of_concept) else { continue };
        // ACP-Communication (<= rc1) is the same concept on Communication.
        let fits = rtype == r.rtype || (kind == Kind::InformRelatives && r.rtype == names::COMMUNICATION);
        if !fits {
            p.error(
                IssueType::Value,
                &r.path.key("meta").key("profile").index(pi),
                format!("profile {url} is for {rtype} resources, not {}", r.rtype),
            );
            continue;
        }
        by_profile.get_or_insert(kind);
    }
    let kind = by_profile.unwrap_or_else(|| by_content(r));
    let r = &mut input.res[i];
    r.kind = kind;
    r.by_profile = by_profile.is_some();
}

fn by_content(r: &Res<'_>) -> Kind {
    let v = r.v;
    match r.rtype.as_str() {
        names::PATIENT => Kind::Patient,
        names::RELATED_PERSON => Kind::ContactPerson,
        names::PRACTITIONER => Kind::Practitioner,
        names::PRACTITIONER_ROLE => Kind::PractitionerRole,
        names::ENCOUNTER => Kind::Encounter,
        names::PROCEDURE => Kind::Procedure,
        names::GOAL => Kind::Goal,
        names::DEVICE_USE_STATEMENT => Kind::DeviceUse,
        names::DEVICE => Kind::Device,
        names::COMMUNICATION_REQUEST | names::COMMUNICATION => Kind::InformRelatives,
        names::QUESTIONNAIRE_RESPONSE => {
            let q = v.get("questionnaire").and_then(Value::as_str).unwrap_or_default();
            if mappings::get().canonicals.is_acp_questionnaire(q) {
                Kind::Form
            } else {
                Kind::Other
            }
        }
        names::CONSENT => {
            let scope = v.get("scope").map(codings).unwrap_or_default();
            if scope.iter().any(|(_, c, _)| *c == names::SCOPE_TREATMENT) {
                return Kind::TreatmentDirective;
            }
            if scope.iter().any(|(_, c, _)| *c == names::SCOPE_ADVANCE_DIRECTIVE) {
                return Kind::AdvanceDirective;
            }
            // No scope to go by: the kind of code in provision.code. OTH is in both lists, so it only
            // counts for a treatment when its text names the ICD deactivation.
            let code =
                v.get("provision").and_then(|pr| pr.get("code")).and_then(Value::as_array).and_then(|a| a.first());
            let Some(cc) = code else { return Kind::Other };
            match concept_quiet::<Treatment>(cc) {
                Some(Treatment::Other) if !names_icd(cc) => {}
                Some(_) => return Kind::TreatmentDirective,
                None => {}
            }
            match concept_quiet::<AdvanceDirectiveType>(cc) {
                Some(AdvanceDirectiveType::Other) | None => Kind::Other,
                Some(_) => Kind::AdvanceDirective,
            }
        }
        names::OBSERVATION => {
            let key = v
                .get("code")
                .map(codings)
                .unwrap_or_default()
                .into_iter()
                .find_map(|(s, c, _)| mappings::get().valueset("question").find(s, c).map(|e| e.key.clone()));
            match key.as_deref() {
                Some("care-wishes") => Kind::CareWishes,
                Some("place-of-death") => Kind::PlaceOfDeath,
                Some("euthanasia-position") => Kind::Euthanasia,
                Some("organ-donation") => Kind::OrganDonation,
                Some("sense-of-purpose") => Kind::SenseOfPurpose,
                _ => Kind::Other,
            }
        }
        t if names::STRUCTURAL.contains(&t) => Kind::Structural,
        _ => Kind::Other,
    }
}

/// Whether a treatment concept is the ICD deactivation: its own code, or OTH with a text naming it.
fn names_icd(cc: &Value) -> bool {
    let icd = &Treatment::IcdDeactivation.entry().coding.code;
    concept_quiet::<Treatment>(cc) == Some(Treatment::IcdDeactivation)
        || cc_text(cc).is_some_and(|t| t.contains(icd.as_str()))
}

/// Unknown modifier extensions anywhere in a resource (and `implicitRules`) stop it being read.
fn check_modifiers(input: &mut Input<'_>, i: usize, p: &mut Problems) {
    let r = &input.res[i];
    let canonicals = &mappings::get().canonicals;
    let root_allowed = |url: &str| {
        r.kind == Kind::TreatmentDirective
            && (canonicals.is_extension("specification-other", url)
                || canonicals.is_extension("treatment-permitted", url))
    };
    let mut bad = false;
    if r.v.get("implicitRules").is_some() {
        p.error(
            IssueType::NotSupported,
            &r.path.key("implicitRules"),
            "the resource says it follows implicit rules the gateway does not know; FHIR forbids processing it, so it is not read",
        );
        bad = true;
    }
    let mut stack: Vec<(&Value, Path, bool)> = vec![(r.v, r.path.clone(), true)];
    while let Some((v, at, is_root)) = stack.pop() {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    if k == "contained" && is_root {
                        continue; // read as resources of their own
                    }
                    if k == "modifierExtension" {
                        for (mi, m) in child.as_array().into_iter().flatten().enumerate() {
                            let url = m.get("url").and_then(Value::as_str).unwrap_or("(no url)");
                            if !(is_root && root_allowed(url)) {
                                p.error(
                                    IssueType::NotSupported,
                                    &at.key(k).index(mi),
                                    format!("unknown modifier extension {url}: it changes the meaning of the resource, and FHIR forbids processing a resource with a modifier the receiver does not understand, so this {} is not read", r.rtype),
                                );
                                bad = true;
                            }
                        }
                        continue;
                    }
                    stack.push((child, at.key(k), false));
                }
            }
            Value::Array(a) => {
                for (ai, item) in a.iter().enumerate() {
                    stack.push((item, at.index(ai), false));
                }
            }
            _ => {}
        }
    }
    if bad {
        input.res[i].skip = true;
        input.res[i].used = true;
    }
}

struct Reader<'a, 'r> {
    input: Input<'a>,
    r: &'r mut AcpRecord,
    p: &'r mut Problems,
    /// Which resource (in force) filled each treatment slot.
    slots: BTreeMap<String, usize>,
    /// The form itself (a QuestionnaireResponse) was read.
    form: bool,
    /// Without a Patient resource in the input: the first patient reference met, and where.
    absent_patient: Option<(String, String)>,
    /// The RelatedPerson read as the legal representative.
    representative_res: Option<usize>,
}

impl<'a, 'r> Reader<'a, 'r> {
    fn indices(&self, kind: Kind) -> Vec<usize> {
        (0..self.input.res.len()).filter(|i| self.input.res[*i].kind == kind && !self.input.res[*i].skip).collect()
    }

    fn obj(&mut self, i: usize) -> Option<Obj<'a>> {
        let r = &self.input.res[i];
        let o = Obj::new(r.v, r.path.clone(), self.p)?;
        skip(&o, names::ALWAYS_STRUCTURAL);
        self.input.res[i].used = true;
        Some(o)
    }

    /// A resource's extensions: the ACP encounter reference only ties resources together; any other
    /// is reported.
    fn extensions(&mut self, o: &Obj<'a>) {
        let mut exts = Exts::of(o, "extension", self.p);
        exts.take_known("encounter-reference");
        exts.done(self.p);
    }

    fn run(&mut self) {
        self.patient();
        let participants = self.encounter();
        self.procedures();
        self.professional(&participants.professionals);
        self.people(&participants.people);
        // Both kinds in the input's order, so that the directives not in force keep it.
        for i in 0..self.input.res.len() {
            match self.input.res[i].kind {
                _ if self.input.res[i].skip => {}
                Kind::TreatmentDirective => self.treatment_directive(i),
                Kind::AdvanceDirective => self.advance_directive(i),
                _ => {}
            }
        }
        for i in self.indices(Kind::Goal) {
            self.goal(i);
        }
        for kind in [Kind::CareWishes, Kind::PlaceOfDeath, Kind::Euthanasia, Kind::OrganDonation, Kind::SenseOfPurpose]
        {
            for i in self.indices(kind) {
                self.observation(i, kind);
            }
        }
        for i in self.indices(Kind::DeviceUse) {
            self.device_use(i);
        }
        for i in self.indices(Kind::InformRelatives) {
            self.inform_relatives(i);
        }
        for i in self.indices(Kind::Form) {
            self.form(i);
        }
        self.agreement_parties();
        self.unused();
    }

    /// A competent patient makes their own treatment agreements: a directive that names the legal
    /// representative as its agreement party (`provision.actor`) while the record says the patient is
    /// competent (1: wilsbekwaam) contradicts itself. The limit is still handed over as agreed (dropping
    /// it would be worse), with a warning that the sender must look at.
    fn agreement_parties(&mut self) {
        let (Some(rep), Some(true)) = (self.representative_res, self.r.legal_capacity.as_ref().and_then(|c| c.capable)) else {
            return;
        };
        for i in 0..self.input.res.len() {
            let r = &self.input.res[i];
            if r.skip || !matches!(r.kind, Kind::TreatmentDirective | Kind::AdvanceDirective) {
                continue;
            }
            let actors = r.v.get("provision").and_then(|p| p.get("actor")).and_then(Value::as_array);
            for (k, actor) in actors.into_iter().flatten().enumerate() {
                let Some(reference) = actor.get("reference") else { continue };
                if self.input.resolve(i, reference) == Some(rep) {
                    let at = self.input.res[i].path.key("provision").key("actor").index(k).key("reference");
                    self.p.warning(
                        IssueType::Invariant,
                        &at,
                        "the legal representative is named as a party to this agreement, but the patient is recorded as \
                         competent (1: wilsbekwaam), and a competent patient agrees for themselves; check who made the agreement",
                    );
                }
            }
        }
    }

    // --- references ----------------------------------------------------------------------------------

    /// Reads a reference to the patient (`patient`, `subject`): it must not name another patient, and
    /// its identifier gives the BSN when the input has no Patient resource.
    fn patient_ref(&mut self, from: usize, o: &Obj<'a>, key: &str) {
        let Some(refv) = o.get(key) else { return };
        let at = o.at(key);
        self.check_patient_ref(from, refv, &at);
    }

    /// The rule behind [`Self::patient_ref`]. A resource that names another patient is an error, never a
    /// warning: attaching another patient's do-not-resuscitate to this patient is the worst thing the
    /// gateway could do. So, when the input carries its Patient, a reference must resolve to it (one to
    /// a patient outside the input cannot be shown to be this one); without a Patient resource (a single
    /// resource, or a Bundle of directives), every reference must name the same patient.
    fn check_patient_ref(&mut self, from: usize, refv: &Value, at: &Path) {
        match (self.input.kind_of(from, refv), self.input.patient) {
            (Some((i, Kind::Patient)), Some(main)) if i != main => {
                self.p.error(
                    IssueType::Invariant,
                    at,
                    "refers to another patient than the record's; an ACP record is about one patient",
                );
            }
            (Some((_, Kind::Patient)), _) => {}
            (Some((_, _)), _) => {
                self.p.error(IssueType::Value, at, "refers to a resource that is not a Patient");
            }
            (None, _) => {
                if let Some(id) = refv.get("identifier") {
                    self.reference_identifier(id, &at.key("identifier"));
                }
                let Some(reference) = refv.get("reference").and_then(Value::as_str) else { return };
                if self.input.patient.is_some() {
                    self.p.error(
                        IssueType::Invariant,
                        &at.key("reference"),
                        format!(
                            "refers to {reference:?}, which is not the Patient of this input; a resource about \
                             another patient (or one the input does not show to be this patient) is not handed over"
                        ),
                    );
                    return;
                }
                match &self.absent_patient {
                    None => self.absent_patient = Some((reference.to_owned(), at.location().to_string())),
                    Some((first, first_at)) if first != reference => {
                        let first_at = first_at.clone();
                        self.p.error(
                            IssueType::Invariant,
                            &at.key("reference"),
                            format!(
                                "refers to {reference:?}, but {first_at} refers to {first:?}; an ACP record is about \
                                 one patient, so resources about two patients are not handed over together"
                            ),
                        );
                    }
                    Some(_) => {}
                }
            }
        }
    }

    /// `Reference.identifier` of the patient: the BSN, checked against one already read.
    fn reference_identifier(&mut self, id: &Value, at: &Path) {
        let system = id.get("system").and_then(Value::as_str).unwrap_or_default();
        let Some(value) = id.get("value").and_then(Value::as_str) else { return };
        if mappings::get().naming_system_key(system) != Some("bsn") {
            return;
        }
        match Bsn::parse(value) {
            Ok(bsn) => match &self.r.patient.bsn {
                None => self.r.patient.bsn = Some(bsn),
                Some(known) if *known != bsn => self.p.error(
                    IssueType::Invariant,
                    at,
                    format!("BSN {bsn} differs from the patient's BSN {known}; an ACP record is about one patient"),
                ),
                Some(_) => {}
            },
            Err(e) => self.p.error(IssueType::Value, &at.key("value"), e.to_string()),
        }
    }

    // --- Patient --------------------------------------------------------------------------------------

    fn patient(&mut self) {
        let patients = self.indices(Kind::Patient);
        let Some(&main) = patients.first() else { return };
        self.input.patient = Some(main);
        for &other in &patients[1..] {
            let at = self.input.res[other].path.clone();
            self.p.error(
                IssueType::Invariant,
                &at,
                "a second Patient; an ACP record is about one patient, so it is not read",
            );
            self.input.res[other].used = true;
        }
        let Some(o) = self.obj(main) else { return };
        skip(&o, &["active", "link", "managingOrganization", "generalPractitioner"]);
        self.r.patient.name = read_names(&o, self.p);
        self.r.patient.birth_date = o.date("birthDate", self.p);
        for (at, id) in items(&o, "identifier", self.p) {
            self.patient_identifier(id, &at);
        }
        let mut exts = Exts::of(&o, "extension", self.p);
        if let Some((at, ext)) = exts.take_known("legally-capable").into_iter().next() {
            self.r.legal_capacity = legal_capacity(ext, &at, self.p);
        }
        exts.done(self.p);
        // Patient.contact: read in people(), where the RelatedPersons are known.
        o.skip("contact");
        done(o, self.p);
    }

    fn patient_identifier(&mut self, id: &Value, at: &Path) {
        let Some(o) = Obj::new(id, at.clone(), self.p) else { return };
        skip(&o, &["id", "use", "type", "period", "assigner", "extension"]);
        let system = o.str("system", self.p);
        let value = o.str("value", self.p);
        match (system, value) {
            (Some(system), Some(value)) if mappings::get().naming_system_key(&system) == Some("bsn") => {
                match Bsn::parse(&value) {
                    Ok(bsn) => match &self.r.patient.bsn {
                        Some(known) if *known != bsn => self.p.error(
                            IssueType::Invariant,
                            &o.at("value"),
                            format!("a second BSN {bsn} beside {known}; a patient has one BSN"),
                        ),
                        _ => self.r.patient.bsn = Some(bsn),
                    },
                    Err(e) => self.p.error(IssueType::Value, &o.at("value"), e.to_string()),
                }
            }
            (Some(system), Some(value)) => self.r.patient.other_identifiers.push(Identifier { system, value }),
            (None, Some(_)) => self.p.warning(
                IssueType::Required,
                &o.at("system"),
                "an identifier without a system cannot be read as a BSN; it is not handed over",
            ),
            (_, None) => {
                self.p.warning(IssueType::Required, &o.at("value"), "an identifier without a value is skipped")
            }
        }
        done(o, self.p);
    }

    // --- Encounter and Procedure ----------------------------------------------------------------------

    /// The ACP encounter (the one whose reason is the ACP procedure, else the first): the date filled
    /// in, the patient's presence, and who took part.
    fn encounter(&mut self) -> Participants {
        let mut out = Participants::default();
        let encounters = self.indices(Kind::Encounter);
        let acp = encounters
            .iter()
            .copied()
            .find(|&e| {
                let r = self.input.res[e].v;
                r.get("reasonReference")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|rr| self.input.kind_of(e, rr).is_some_and(|(_, k)| k == Kind::Procedure))
            })
            .or(encounters.first().copied());
        let Some(e) = acp else { return out };
        for &other in encounters.iter().filter(|x| **x != e) {
            let at = self.input.res[other].path.clone();
            self.p.warning(
                IssueType::NotSupported,
                &at,
                "the record holds one conversation; this other encounter is not handed over",
            );
            self.input.res[other].used = true;
        }
        let Some(o) = self.obj(e) else { return out };
        skip(
            &o,
            &[
                "identifier",
                "status",
                "statusHistory",
                "class",
                "classHistory",
                "type",
                "serviceType",
                "priority",
                "episodeOfCare",
                "basedOn",
                "appointment",
                "reasonCode",
                "reasonReference",
                "serviceProvider",
                "partOf",
                "account",
                "length",
            ],
        );
        self.extensions(&o);
        if let Some(period) = o.obj("period", self.p) {
            self.r.date_filled_in = period.date("start", self.p);
            skip(&period, &["id", "end", "extension"]);
            done(period, self.p);
        }
        let patient_present = o.get("subject").is_some();
        self.patient_ref(e, &o, "subject");
        let mut others = Vec::new();
        for (at, part) in items(&o, "participant", self.p) {
            let Some(po) = Obj::new(part, at, self.p) else { continue };
            skip(&po, &["id", "type", "period", "extension"]);
            if let Some(ind) = po.get("individual") {
                match self.input.kind_of(e, ind) {
                    Some((i, Kind::PractitionerRole | Kind::Practitioner)) => out.professionals.push(i),
                    Some((i, Kind::ContactPerson)) => others.push(i),
                    Some((_, _)) => self.p.warning(
                        IssueType::NotSupported,
                        &po.at("individual"),
                        "a participant that is neither a professional nor a contact person is not handed over",
                    ),
                    None => {}
                }
            }
            done(po, self.p);
        }
        done(o, self.p);
        out.people = others.clone();
        self.r.present = (patient_present || !others.is_empty())
            .then(|| Presence { patient: patient_present, ..Default::default() });
        out
    }

    /// The ACP procedure is structure; its date stands in for a missing encounter date.
    fn procedures(&mut self) {
        for i in self.indices(Kind::Procedure) {
            let v = self.input.res[i].v;
            let is_acp = v.get("code").map(|c| concept_quiet_question(c) == Some("acp-procedure")).unwrap_or(false);
            if !is_acp {
                continue; // reported as not part of the record at the end
            }
            let Some(o) = self.obj(i) else { continue };
            skip(
                &o,
                &[
                    "identifier",
                    "status",
                    "statusReason",
                    "category",
                    "code",
                    "subject",
                    "encounter",
                    "performer",
                    "recorder",
                    "asserter",
                    "location",
                    "reasonCode",
                    "reasonReference",
                    "basedOn",
                    "partOf",
                    "performedPeriod",
                    "performedDateTime",
                    "performedString",
                    "performedAge",
                    "performedRange",
                ],
            );
            self.extensions(&o);
            if self.r.date_filled_in.is_none() {
                let when = v.get("performedDateTime").map(|d| (d, o.at("performedDateTime"))).or_else(|| {
                    v.get("performedPeriod")
                        .and_then(|pp| pp.get("start"))
                        .map(|d| (d, o.at("performedPeriod").key("start")))
                });
                if let Some((Value::String(d), at)) = when {
                    self.r.date_filled_in = parse_date(d, &at, self.p);
                }
            }
            self.patient_ref(i, &o, "subject");
            done(o, self.p);
        }
    }

    // --- the professional -------------------------------------------------------------------------------

    /// Who held the conversation: the encounter's professional participant, else the only (first)
    /// PractitionerRole or Practitioner of the input.
    fn professional(&mut self, from_encounter: &[usize]) {
        let chosen = from_encounter
            .first()
            .copied()
            .or_else(|| self.indices(Kind::PractitionerRole).first().copied())
            .or_else(|| self.indices(Kind::Practitioner).first().copied());
        let Some(i) = chosen else { return };
        let mut pro = Professional::default();
        let practitioner = if self.input.res[i].kind == Kind::PractitionerRole {
            let Some(o) = self.obj(i) else { return };
            skip(
                &o,
                &[
                    "identifier",
                    "active",
                    "period",
                    "organization",
                    "location",
                    "healthcareService",
                    "availableTime",
                    "notAvailable",
                    "availabilityExceptions",
                    "endpoint",
                    "code",
                ],
            );
            self.extensions(&o);
            let specialties = items(&o, "specialty", self.p);
            for (at, cc) in &specialties {
                match concept_quiet::<ProfessionalFunction>(cc) {
                    Some(f) if pro.function.is_none() => pro.function = Some(f),
                    Some(_) => self.p.warning(
                        IssueType::NotSupported,
                        at,
                        "the form records one function; this further specialty is not handed over",
                    ),
                    None => {
                        let what = codings(cc)
                            .first()
                            .map(|(s, c, _)| format!("{}#{c}", s.unwrap_or("(no system)")))
                            .unwrap_or_default();
                        let allowed = mappings::get().valueset(ProfessionalFunction::VALUE_SET).describe_allowed();
                        // nl-core binds specialty to wider lists (AGB specialisms, ...): valid FHIR
                        // that the form's function item cannot carry.
                        self.p.warning(
                            IssueType::CodeInvalid,
                            at,
                            format!("specialty {what} is not one of the form's functions ({allowed}); the function is not handed over"),
                        );
                    }
                }
            }
            let pr = o
                .get("practitioner")
                .and_then(|r| self.input.kind_of(i, r))
                .filter(|(_, k)| *k == Kind::Practitioner)
                .map(|(x, _)| x);
            o.skip("practitioner");
            o.skip("telecom"); // the role's (work) contact details are not the form's
            done(o, self.p);
            pr
        } else {
            Some(i)
        };
        if let Some(pi) = practitioner {
            if let Some(o) = self.obj(pi) {
                skip(&o, &["active"]);
                self.extensions(&o);
                pro.name = read_names(&o, self.p);
                for (at, id) in items(&o, "identifier", self.p) {
                    let system = id.get("system").and_then(Value::as_str);
                    let value = id.get("value").and_then(Value::as_str);
                    match (system, value) {
                        (Some(s), Some(v)) if mappings::get().naming_system_key(s) == Some("agb") => {
                            match Agb::parse(v) {
                                Ok(agb) => pro.agb = Some(agb),
                                Err(e) => self.p.error(IssueType::Value, &at.key("value"), e.to_string()),
                            }
                        }
                        (Some(s), Some(v)) => {
                            pro.other_identifiers.push(Identifier { system: s.to_owned(), value: v.to_owned() })
                        }
                        _ => self.p.warning(
                            IssueType::Required,
                            &at,
                            "an identifier needs a system and a value; it is not handed over",
                        ),
                    }
                }
                done(o, self.p);
            }
        }
        self.r.conducted_by = Some(pro);
    }

    // --- contact persons --------------------------------------------------------------------------------

    fn related_person(&mut self, i: usize) -> Option<Person> {
        let o = self.obj(i)?;
        skip(&o, &["identifier", "active", "period"]);
        self.extensions(&o);
        self.patient_ref(i, &o, "patient");
        let name = read_names(&o, self.p);
        let telecom = read_telecom(items(&o, "telecom", self.p), self.p);
        let rel = read_relations(items(&o, "relationship", self.p), self.p);
        let at = o.path.clone();
        done(o, self.p);
        Some(person(name, telecom, rel, at, self.p))
    }

    /// The representative, the first contact and the others present.
    fn people(&mut self, present: &[usize]) {
        let mut persons: Vec<(usize, Person)> = Vec::new();
        for i in self.indices(Kind::ContactPerson) {
            if let Some(pe) = self.related_person(i) {
                persons.push((i, pe));
            }
        }
        let mut contacts = self.patient_contacts();
        for (i, pe) in &persons {
            if present.contains(i) {
                let pr = self.r.present.get_or_insert_with(Presence::default);
                // One entry per person: by relation when there is one (ACP-ContactPerson then adds role
                // 23 only because a role is required), else by role.
                if let Some(rel) = pe.rel.relations.first() {
                    pr.relationships.push(rel.clone());
                } else {
                    pr.roles.extend(pe.rel.roles.iter().cloned());
                }
            }
        }
        let all: Vec<(Option<usize>, Person)> =
            persons.into_iter().map(|(i, pe)| (Some(i), pe)).chain(contacts.drain(..).map(|pe| (None, pe))).collect();
        for (i, pe) in all {
            let is_present = i.is_some_and(|i| present.contains(&i));
            let anonymous = pe.person.name.is_empty() && pe.person.phones.is_empty() && pe.person.emails.is_empty();
            if is_present && anonymous {
                // Someone present known only by role or relation (the form names nobody present): the
                // presence list holds them; they are not the representative or first contact.
                continue;
            }
            let is_rep = pe.rel.has(ContactRole::LegalRepresentative);
            let is_first = pe.rel.has(ContactRole::FirstContact);
            if is_rep {
                if self.r.representative.is_some() {
                    self.p.warning(
                        IssueType::NotSupported,
                        &pe.at,
                        "a second legal representative; the record holds one, so this one is not handed over",
                    );
                    continue;
                }
                let roles = pe
                    .rel
                    .roles
                    .iter()
                    .filter(|a| !matches!(a.value(), ContactRole::LegalRepresentative | ContactRole::FirstContact))
                    .cloned()
                    .collect();
                self.r.representative =
                    Some(Representative { person: pe.person, roles, is_first_contact: is_first.then_some(true) });
                self.representative_res = i;
            } else if is_first {
                if self.r.first_contact.is_some() {
                    self.p.warning(
                        IssueType::NotSupported,
                        &pe.at,
                        "a second first contact; the record holds one, so this one is not handed over",
                    );
                    continue;
                }
                let extra: Vec<&str> = pe
                    .rel
                    .roles
                    .iter()
                    .filter(|a| a.value() != ContactRole::FirstContact)
                    .map(|a| a.value().key())
                    .collect();
                if !extra.is_empty() {
                    self.p.warning(
                        IssueType::NotSupported,
                        &pe.at.key("relationship"),
                        format!("the first contact's further roles ({}) have no place on the form; they are not handed over", extra.join(", ")),
                    );
                }
                self.r.first_contact = Some(pe.person);
            } else if !is_present {
                self.p.warning(
                    IssueType::NotSupported,
                    &pe.at,
                    "this contact person is neither the legal representative (role 24), the first contact (01), nor present at the conversation; the form has no place for them",
                );
            }
        }
    }

    /// `Patient.contact` entries that are not a RelatedPerson of the input (the ACP profiles prefer
    /// RelatedPerson and may repeat it here, linked by `patient-relatedPerson`).
    fn patient_contacts(&mut self) -> Vec<Person> {
        let Some(main) = self.input.patient else { return Vec::new() };
        let patient = &self.input.res[main];
        let (pv, ppath) = (patient.v, patient.path.clone());
        let Some(list) = pv.get("contact").and_then(Value::as_array) else { return Vec::new() };
        let mut out = Vec::new();
        for (ci, c) in list.iter().enumerate() {
            let at = ppath.key("contact").index(ci);
            let Some(o) = Obj::new(c, at, self.p) else { continue };
            skip(&o, &["id", "period", "organization", "gender", "address", "modifierExtension"]);
            let mut exts = Exts::of(&o, "extension", self.p);
            let linked = exts.take_url(names::PATIENT_RELATED_PERSON);
            exts.done(self.p);
            let resolved = linked
                .as_ref()
                .and_then(|(_, e)| e.get("valueReference"))
                .and_then(|r| self.input.kind_of(main, r))
                .is_some_and(|(_, k)| k == Kind::ContactPerson);
            if resolved {
                // The same person as a RelatedPerson of the input, which is what is read.
                for k in ["relationship", "name", "telecom"] {
                    o.skip(k);
                }
                done(o, self.p);
                continue;
            }
            let name = o.get("name").map(|n| read_human_name(n, o.at("name"), self.p)).unwrap_or_default();
            let telecom = read_telecom(items(&o, "telecom", self.p), self.p);
            let rel = read_relations(items(&o, "relationship", self.p), self.p);
            let at = o.path.clone();
            if c.get("address").is_some() {
                self.p.warning(
                    IssueType::NotSupported,
                    &o.at("address"),
                    "a contact person's address has no place on the form; it is not handed over",
                );
            }
            done(o, self.p);
            out.push(person(name, telecom, rel, at, self.p));
        }
        out
    }

    // --- 4. treatment directives ----------------------------------------------------------------------

    fn treatment_directive(&mut self, i: usize) {
        let Some(o) = self.obj(i) else { return };
        skip(
            &o,
            &[
                "identifier",
                "status",
                "scope",
                "category",
                "policy",
                "policyRule",
                "performer",
                "organization",
                "sourceReference",
                "sourceAttachment",
                "verification",
            ],
        );
        self.patient_ref(i, &o, "patient");
        let mut exts = Exts::of(&o, "extension", self.p);
        let explanation = comment(&mut exts, self.p);
        exts.take_known("encounter-reference");
        exts.take_known("additional-advance-directive");
        exts.done(self.p);
        let mut mods = Exts::of(&o, "modifierExtension", self.p);
        let spec: Vec<(Path, Option<String>)> = mods
            .take_known("specification-other")
            .into_iter()
            .map(|(at, v)| {
                let t = ext_string(v, &at, self.p);
                (at, t)
            })
            .collect();
        let coded: Vec<(Path, &Value)> = mods.take_known("treatment-permitted");
        // Unknown modifiers were refused before reading; nothing is left here.
        mods.done(self.p);
        if spec.len() > 1 {
            self.p.error(
                IssueType::Invariant,
                &o.at("modifierExtension"),
                "more than one specificationOther; the decision must be stated once",
            );
            done(o, self.p);
            return;
        }
        let spec_text = spec.into_iter().next().and_then(|(_, t)| t);
        let code = match coded.first() {
            Some((at, v)) => match v.get("valueCodeableConcept") {
                Some(cc) => concept::<DecisionCode>(cc, &at.key("valueCodeableConcept"), self.p),
                None => None,
            },
            None => None,
        };
        let discussed_on = o.date("dateTime", self.p);
        let Some(prov) = o.obj("provision", self.p) else {
            self.p.error(
                IssueType::Required,
                &o.at("provision"),
                "the directive has no provision: neither its treatment nor its decision",
            );
            done(o, self.p);
            return;
        };
        skip(&prov, &["id", "actor", "period"]);
        let Some(state) = self.directive_state(i, &prov) else {
            done(prov, self.p);
            done(o, self.p);
            return;
        };
        let mut pexts = Exts::of(&prov, "extension", self.p);
        for (at, v) in pexts.take_known("reason-for-ending") {
            let why = v.get("valueString").and_then(Value::as_str).unwrap_or_default();
            self.p.warning(IssueType::NotSupported, &at, format!("the reason the directive ended ('{why}', RedenBeeindigd) has no place in the record; it is not handed over"));
        }
        pexts.done(self.p);
        let provision_type = match prov.str("type", self.p).as_deref() {
            None => None,
            Some(names::PERMIT) => Some(ProvisionType::Permit),
            Some(names::DENY) => Some(ProvisionType::Deny),
            Some(other) => {
                self.p.error(
                    IssueType::CodeInvalid,
                    &prov.at("type"),
                    format!("provision.type '{other}' is neither permit nor deny"),
                );
                done(prov, self.p);
                done(o, self.p);
                return;
            }
        };
        let codes = items(&prov, "code", self.p);
        let subject = match codes.as_slice() {
            [] => {
                self.p.error(
                    IssueType::Required,
                    &prov.at("code"),
                    "the directive does not say which treatment it is about (provision.code)",
                );
                None
            }
            [(at, cc)] => self.directive_subject(cc, at),
            _ => {
                self.p.error(
                    IssueType::Invariant,
                    &prov.at("code"),
                    "one directive is about one treatment; provision.code has more than one",
                );
                None
            }
        };
        let type_at = prov.at("type");
        done(prov, self.p);
        let at = o.path.clone();
        done(o, self.p);
        let Some(subject) = subject else { return };
        let decision_at = if spec_text.is_some() { at.key("modifierExtension") } else { type_at };
        match subject {
            Subject::Icd => match icd_decision(provision_type, spec_text.as_deref()) {
                Ok(read) => {
                    if let Some(w) = &read.warning {
                        self.p.warning(IssueType::Invariant, &decision_at, w.clone());
                    }
                    let explanation = match (read.explanation, explanation) {
                        (Some(a), Some(b)) => Some(format!("{a}\n{b}")),
                        (a, b) => a.or(b),
                    };
                    let d = IcdDeactivation { agreement: read.value, explanation, discussed_on };
                    match state.set_aside(RecordedDirective::IcdDeactivation(d)) {
                        Err(d) => self.r.directives_not_in_force.push(d),
                        Ok(RecordedDirective::IcdDeactivation(d)) if self.claim_slot("icd_deactivation", i, &at) => {
                            self.r.icd_deactivation = Some(d);
                        }
                        Ok(_) => {}
                    }
                }
                Err(e) => self.p.error(IssueType::Invariant, &decision_at, e),
            },
            Subject::Named(t) => match treatment_decision(provision_type, spec_text.as_deref(), code) {
                Ok(read) => {
                    if let Some(w) = &read.warning {
                        self.p.warning(IssueType::Invariant, &decision_at, w.clone());
                    }
                    let limit = TreatmentLimit { decision: read.value, explanation, discussed_on };
                    match state.set_aside(RecordedDirective::TreatmentLimit(NamedTreatmentLimit { treatment: t, limit })) {
                        Err(d) => self.r.directives_not_in_force.push(d),
                        Ok(RecordedDirective::TreatmentLimit(l)) if self.claim_slot(TreatmentLimits::field_name(t), i, &at) => {
                            if let Some(slot) = self.r.treatment_limits.slot_mut(t) {
                                *slot = Some(l.limit);
                            }
                        }
                        Ok(_) => {}
                    }
                }
                Err(e) => self.p.error(IssueType::Invariant, &decision_at, e),
            },
            Subject::Other(treatment) => match treatment_decision(provision_type, spec_text.as_deref(), code) {
                Ok(read) => {
                    if let Some(w) = &read.warning {
                        self.p.warning(IssueType::Invariant, &decision_at, w.clone());
                    }
                    let limit = TreatmentLimit { decision: read.value, explanation, discussed_on };
                    match state.set_aside(RecordedDirective::OtherTreatmentLimit(OtherTreatmentLimit { treatment, limit })) {
                        Err(d) => self.r.directives_not_in_force.push(d),
                        Ok(RecordedDirective::OtherTreatmentLimit(o)) => self.r.treatment_limits.other.push(o),
                        Ok(_) => {}
                    }
                }
                Err(e) => self.p.error(IssueType::Invariant, &decision_at, e),
            },
        }
    }

    /// The treatment of `provision.code`.
    fn directive_subject(&mut self, cc: &Value, at: &Path) -> Option<Subject> {
        if names_icd(cc) {
            return Some(Subject::Icd);
        }
        match concept_quiet::<Treatment>(cc) {
            Some(Treatment::Other) => Some(Subject::Other(cc_text(cc))),
            Some(t) => Some(Subject::Named(t)),
            None if codings(cc).is_empty() => {
                match cc_text(cc) {
                    Some(text) => {
                        self.p.warning(IssueType::CodeInvalid, at, format!("the treatment has no coding; it is read as another treatment limit (4g) named '{text}'"));
                        Some(Subject::Other(Some(text)))
                    }
                    None => {
                        self.p.error(IssueType::Required, at, "the treatment has neither a coding nor a text");
                        None
                    }
                }
            }
            None => {
                concept::<Treatment>(cc, at, self.p);
                None
            }
        }
    }

    /// One directive in force per treatment: a second one is an error. Only directives in force claim
    /// a slot; those not in force are carried apart and never compete with the current limit.
    fn claim_slot(&mut self, slot: &str, i: usize, at: &Path) -> bool {
        match self.slots.get(slot).copied() {
            None => {
                self.slots.insert(slot.to_owned(), i);
                true
            }
            Some(prev) => {
                let prev_at = self.input.res[prev].path.location();
                self.p.error(IssueType::Invariant, at, format!("a second directive in force for {slot} (the first is {prev_at}); the record holds one current decision per treatment"));
                false
            }
        }
    }

    /// The status and `provision.period.end` of directive `i`, and whether it is in force: only
    /// `active` with no end before the date filled in (before today without one). A directive not in
    /// force gets a warning at what takes it out of force, saying where it goes; `None` (with an
    /// error) when the status is missing or not a FHIR Consent status.
    fn directive_state(&mut self, i: usize, prov: &Obj<'a>) -> Option<DirectiveState> {
        let at = self.input.res[i].path.key("status");
        let status = match self.input.res[i].v.get("status") {
            None | Some(Value::Null) => {
                self.p.error(IssueType::Required, &at, "the directive has no status; only an active directive is a current limit, so without one it cannot be read");
                return None;
            }
            Some(v) => match v.as_str().and_then(DirectiveStatus::from_key) {
                Some(s) => s,
                None => {
                    let allowed = DirectiveStatus::ALL.iter().map(|s| s.key()).collect::<Vec<_>>().join(", ");
                    self.p.error(IssueType::CodeInvalid, &at, format!("status {v} is not a Consent status ({allowed})"));
                    return None;
                }
            },
        };
        let end_at = prov.at("period").key("end");
        let ended_on = match prov.get("period").and_then(|pp| pp.get("end")) {
            Some(Value::String(raw)) => parse_date(raw, &end_at, self.p),
            Some(other) => {
                self.p.error(IssueType::Value, &end_at, format!("provision.period.end must be a date, not {}", type_name(other)));
                return None;
            }
            None => None,
        };
        let day = DirectiveNotInForce::judged_on(self.r.date_filled_in.as_ref());
        let judged = if self.r.date_filled_in.is_some() { "the date the form was filled in" } else { "today" };
        let in_force = DirectiveNotInForce::in_force(status, ended_on.as_ref(), &day);
        const CARRIED: &str = "it is not a current limit: it is handed over apart, as an agreement that is not (or no longer) in force (\"Niet (meer) geldende afspraken\" in the letter, its own status in FHIR), never among the current limits";
        match (in_force, status, &ended_on) {
            (true, _, Some(end)) => self.p.warning(
                IssueType::NotSupported,
                &end_at,
                format!("this directive is in force until {end} (DatumBeeindigd); a current limit has no place for its end date, so it is handed over without it"),
            ),
            (true, _, None) => {}
            (false, DirectiveStatus::Active, Some(end)) => self.p.warning(
                IssueType::Value,
                &end_at,
                format!("this directive ended on {end}, before {judged} ({day}); {CARRIED}"),
            ),
            (false, _, _) => {
                let what = match status {
                    DirectiveStatus::Inactive => "inactive (it has ended)",
                    DirectiveStatus::Draft => "a draft (not yet agreed)",
                    DirectiveStatus::Proposed => "proposed (not yet agreed)",
                    DirectiveStatus::Rejected => "rejected",
                    DirectiveStatus::EnteredInError => "entered in error",
                    DirectiveStatus::Active => "active",
                };
                self.p.warning(IssueType::Value, &at, format!("this directive is {what} (status '{}'); {CARRIED}", status.key()));
            }
        }
        Some(DirectiveState { status, ended_on, in_force })
    }

    // --- advance directives ---------------------------------------------------------------------------

    fn advance_directive(&mut self, i: usize) {
        let Some(o) = self.obj(i) else { return };
        skip(
            &o,
            &[
                "identifier",
                "status",
                "scope",
                "category",
                "policy",
                "policyRule",
                "performer",
                "organization",
                "verification",
            ],
        );
        self.patient_ref(i, &o, "patient");
        let mut exts = Exts::of(&o, "extension", self.p);
        let note = comment(&mut exts, self.p);
        exts.take_known("encounter-reference");
        exts.done(self.p);
        let date = o.date("dateTime", self.p);
        let document = o.obj("sourceAttachment", self.p).and_then(|a| {
            let d = attachment(&a, self.p);
            done(a, self.p);
            d
        });
        let mut kind = None;
        let mut state = None;
        if let Some(prov) = o.obj("provision", self.p) {
            skip(&prov, &["id", "actor", "type", "period"]);
            state = self.directive_state(i, &prov);
            let codes = items(&prov, "code", self.p);
            match codes.as_slice() {
                [(at, cc)] => kind = concept::<AdvanceDirectiveType>(cc, at, self.p),
                [] => self.p.error(
                    IssueType::Required,
                    &prov.at("code"),
                    "the advance directive does not say which kind it is (provision.code, WilsverklaringType)",
                ),
                _ => self.p.error(
                    IssueType::Invariant,
                    &prov.at("code"),
                    "an advance directive is of one kind; provision.code has more than one",
                ),
            }
            done(prov, self.p);
        } else {
            self.p.error(
                IssueType::Required,
                &o.at("provision"),
                "the advance directive has no provision.code (WilsverklaringType)",
            );
        }
        done(o, self.p);
        let (Some(kind), Some(state)) = (kind, state) else { return };
        match state.set_aside(RecordedDirective::AdvanceDirective(AdvanceDirective { kind, date, comment: note, document })) {
            Err(d) => self.r.directives_not_in_force.push(d),
            Ok(RecordedDirective::AdvanceDirective(ad)) => self.r.advance_directives.push(ad),
            Ok(_) => {}
        }
    }

    // --- 3, 5, 6 ------------------------------------------------------------------------------------------

    fn goal(&mut self, i: usize) {
        let Some(o) = self.obj(i) else { return };
        skip(
            &o,
            &[
                "identifier",
                "lifecycleStatus",
                "achievementStatus",
                "category",
                "priority",
                "startDate",
                "startCodeableConcept",
                "statusDate",
                "statusReason",
                "expressedBy",
                "addresses",
            ],
        );
        self.extensions(&o);
        self.patient_ref(i, &o, "subject");
        let goal = o.get("description").and_then(|cc| concept::<MedicalPolicyGoal>(cc, &o.at("description"), self.p));
        done(o, self.p);
        if let Some(g) = goal {
            if self.r.medical_policy_goal.is_some_and(|known| known != g) {
                let at = self.input.res[i].path.clone();
                self.p.error(
                    IssueType::Invariant,
                    &at,
                    "a second, different goal of medical policy; the record holds one",
                );
            } else {
                self.r.medical_policy_goal = Some(g);
            }
        }
    }

    fn observation(&mut self, i: usize, kind: Kind) {
        let Some(o) = self.obj(i) else { return };
        skip(
            &o,
            &[
                "identifier",
                "basedOn",
                "partOf",
                "status",
                "category",
                "code",
                "encounter",
                "effectiveDateTime",
                "effectivePeriod",
                "effectiveInstant",
                "issued",
                "performer",
                "method",
            ],
        );
        self.extensions(&o);
        self.patient_ref(i, &o, "subject");
        let absent = o.get("dataAbsentReason").is_some();
        let at = o.path.clone();
        let text_value = |o: &Obj<'_>, p: &mut Problems| -> Option<String> {
            let value_keys: Vec<&String> = o.map.keys().filter(|k| k.starts_with("value")).collect();
            match value_keys.as_slice() {
                [] => None,
                [k] if k.as_str() == "valueString" => o.str("valueString", p),
                [k] => {
                    let k = k.to_string();
                    o.skip(&k);
                    p.error(
                        IssueType::Value,
                        &o.at(&k),
                        format!("this observation's value is text (valueString), not {k}"),
                    );
                    None
                }
                _ => None,
            }
        };
        let duplicate = |this: &mut Self, filled: bool| {
            if filled {
                this.p.error(
                    IssueType::Invariant,
                    &at,
                    "a second observation of the same item; the record holds one answer",
                );
            }
            filled
        };
        match kind {
            Kind::CareWishes => {
                let t = text_value(&o, self.p);
                if t.is_some() && !duplicate(self, self.r.care_wishes.is_some()) {
                    self.r.care_wishes = t;
                }
            }
            Kind::SenseOfPurpose => {
                let t = text_value(&o, self.p);
                if t.is_some() && !duplicate(self, self.r.sense_of_purpose.is_some()) {
                    self.r.sense_of_purpose = t;
                }
            }
            Kind::PlaceOfDeath => {
                let explanation = notes(&o, self.p);
                let preference = match o.get("valueCodeableConcept") {
                    Some(cc) => self.place_of_death(cc, &o.at("valueCodeableConcept")),
                    None if absent => Some(Answer::code(PlaceOfDeath::Unknown)),
                    None => None,
                };
                if let Some(preference) = preference {
                    if !duplicate(self, self.r.place_of_death.is_some()) {
                        self.r.place_of_death = Some(PlaceOfDeathWish { preference, explanation });
                    }
                }
            }
            Kind::Euthanasia => {
                let explanation = notes(&o, self.p);
                let position = match o.get("valueCodeableConcept") {
                    Some(cc) => concept::<EuthanasiaPosition>(cc, &o.at("valueCodeableConcept"), self.p),
                    None if absent => Some(EuthanasiaPosition::Unknown),
                    None => None,
                };
                if let Some(position) = position {
                    if !duplicate(self, self.r.euthanasia.is_some()) {
                        self.r.euthanasia = Some(Euthanasia { position, explanation });
                    }
                }
            }
            Kind::OrganDonation => {
                let value = match o.get("valueCodeableConcept") {
                    Some(cc) => concept::<YesNoUnknown>(cc, &o.at("valueCodeableConcept"), self.p),
                    None if absent => Some(YesNoUnknown::Unknown),
                    None => None,
                };
                if let Some(v) = value {
                    if !duplicate(self, self.r.organ_donation_registered.is_some()) {
                        self.r.organ_donation_registered = Some(v);
                    }
                }
            }
            _ => {}
        }
        // A data-absent reason says why there is no value; it is the absence itself, not content.
        o.skip("dataAbsentReason");
        done(o, self.p);
    }

    /// 5b: the binding is extensible, so a place outside the list is valid FHIR; it is read as "Anders"
    /// with its text (or display), and said so.
    fn place_of_death(&mut self, cc: &Value, at: &Path) -> Option<Answer<PlaceOfDeath>> {
        let text = cc_text(cc);
        if let Some(place) = concept_quiet::<PlaceOfDeath>(cc) {
            return match Answer::new(place, text.clone()) {
                Ok(a) => Some(a),
                Err(_) => {
                    self.p.warning(
                        IssueType::NotSupported,
                        &at.key("text"),
                        "the text beside a listed place has no place on the form; it is not handed over",
                    );
                    Some(Answer::code(place))
                }
            };
        }
        let (system, code, ci) = codings(cc).into_iter().next()?;
        let display = cc
            .get("coding")
            .and_then(|c| c.get(ci))
            .and_then(|c| c.get("display"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let named = text.or(display).unwrap_or_else(|| format!("{}#{code}", system.unwrap_or("(no system)")));
        self.p.warning(
            IssueType::CodeInvalid,
            &at.key("coding").index(ci),
            format!(
                "place {}#{code} is not one of the form's places; it is read as 'Anders: {named}'",
                system.unwrap_or("(no system)")
            ),
        );
        Answer::new(PlaceOfDeath::Other, Some(named)).ok()
    }

    // --- 4h, 8a -------------------------------------------------------------------------------------------

    fn device_use(&mut self, i: usize) {
        let v = self.input.res[i].v;
        let device =
            v.get("device").and_then(|d| self.input.kind_of(i, d)).filter(|(_, k)| *k == Kind::Device).map(|(d, _)| d);
        let mut product = None;
        let mut is_icd = true;
        if let Some(d) = device {
            let by_profile = self.input.res[d].by_profile || self.input.res[i].by_profile;
            if let Some(o) = self.obj(d) {
                skip(
                    &o,
                    &[
                        "identifier",
                        "definition",
                        "udiCarrier",
                        "status",
                        "statusReason",
                        "patient",
                        "owner",
                        "manufacturer",
                        "manufactureDate",
                        "expirationDate",
                        "lotNumber",
                        "serialNumber",
                        "deviceName",
                        "modelNumber",
                        "partNumber",
                    ],
                );
                self.extensions(&o);
                if let Some(cc) = o.get("type") {
                    product = concept_quiet::<IcdProductType>(cc);
                    if product.is_none() {
                        if by_profile {
                            concept::<IcdProductType>(cc, &o.at("type"), self.p);
                        }
                        is_icd = false;
                    }
                }
                done(o, self.p);
            }
        }
        if !is_icd {
            let at = self.input.res[i].path.clone();
            if !self.input.res[i].by_profile {
                self.p.warning(
                    IssueType::NotSupported,
                    &at,
                    "this device is not an ICD; the form asks about an ICD only, so it is not handed over",
                );
            }
            self.input.res[i].used = true;
            return;
        }
        let Some(o) = self.obj(i) else { return };
        skip(&o, &["identifier", "basedOn", "status", "derivedFrom", "device", "recordedOn", "source"]);
        self.extensions(&o);
        self.patient_ref(i, &o, "subject");
        let explanation = notes(&o, self.p);
        let at = o.path.clone();
        done(o, self.p);
        if self.r.icd.is_some() {
            self.p.error(IssueType::Invariant, &at, "a second ICD; the record holds one");
            return;
        }
        self.r.icd = Some(Icd { present: YesNoUnknown::Yes, product_type: product, explanation });
    }

    fn inform_relatives(&mut self, i: usize) {
        let status = self.input.res[i].v.get("status").and_then(Value::as_str).unwrap_or_default().to_owned();
        let Some(o) = self.obj(i) else { return };
        skip(
            &o,
            &[
                "identifier",
                "basedOn",
                "instantiatesCanonical",
                "instantiatesUri",
                "partOf",
                "inResponseTo",
                "replaces",
                "groupIdentifier",
                "status",
                "statusReason",
                "category",
                "priority",
                "medium",
                "subject",
                "about",
                "topic",
                "encounter",
                "sent",
                "received",
                "authoredOn",
                "occurrenceDateTime",
                "occurrencePeriod",
                "requester",
                "sender",
                "recipient",
                "reasonCode",
                "reasonReference",
            ],
        );
        self.extensions(&o);
        self.patient_ref(i, &o, "subject");
        done(o, self.p);
        // 8a: a request (rc2) or a communication (<= rc1) that took place says "Ja"; a communication
        // marked not-done says "Nee".
        let informed = status != "not-done";
        match self.r.relatives_informed {
            Some(known) if known != informed => {
                let at = self.input.res[i].path.clone();
                self.p.error(
                    IssueType::Invariant,
                    &at,
                    "contradicts another resource on whether the patient was informed (8a)",
                );
            }
            _ => self.r.relatives_informed = Some(informed),
        }
    }

    // --- the form as a QuestionnaireResponse ------------------------------------------------------------

    /// The whole form: read with the QuestionnaireResponse reader, then used for what the discrete
    /// resources leave open. Where both say something different, the discrete resource is read and the
    /// difference reported.
    fn form(&mut self, i: usize) {
        self.input.res[i].used = true;
        let (v, at) = (self.input.res[i].v, self.input.res[i].path.clone());
        // The form inside a Bundle must be about the Bundle's patient, like every other resource.
        if let Some(subject) = v.get("subject") {
            self.check_patient_ref(i, subject, &at.key("subject"));
        }
        let mut qp = Problems::default();
        let qr = questionnaire::read(v, &mut qp);
        let root = at.location().to_string();
        for mut prob in qp.list {
            if let Location::FhirPath(s) = &prob.location {
                if let Some(rest) = s.strip_prefix(names::QUESTIONNAIRE_RESPONSE) {
                    prob.location = Location::FhirPath(format!("{root}{rest}"));
                }
            }
            self.p.list.push(prob);
        }
        merge(self.r, qr, &at, self.p);
        // A form still in progress (the gateway writes a partial record so) does not make the record whole.
        self.form = questionnaire::completeness(v) == Completeness::Complete;
    }

    // --- the rest ---------------------------------------------------------------------------------------

    fn unused(&mut self) {
        let mut read_any = self.form;
        for r in &self.input.res {
            read_any |= r.used && r.kind.is_acp();
            if r.used || r.skip {
                continue;
            }
            let msg = match r.kind {
                Kind::Structural => continue,
                Kind::Procedure => format!("a Procedure other than the ACP conversation ({}) is not part of the ACP record, so it is not handed over", question_display("acp-procedure")),
                Kind::Device => "a Device that no DeviceUseStatement of the input uses is not handed over".to_owned(),
                Kind::PractitionerRole | Kind::Practitioner => {
                    "a professional other than the one who held the conversation has no place on the form; not handed over".to_owned()
                }
                _ => format!("a {} is not part of the ACP record, so it is not handed over", r.rtype),
            };
            self.p.warning(IssueType::NotSupported, &r.path, msg);
        }
        if !read_any && !self.input.res.is_empty() {
            let root = self.input.res[0].path.clone();
            let root = if self.input.res.len() > 1
                || self.input.res[0].path.location().to_string().starts_with(names::BUNDLE)
            {
                Path::fhir(names::BUNDLE)
            } else {
                root
            };
            self.p.error(IssueType::NotSupported, &root, "the input carries none of the ACP resources (IKNL PZP profiles, nl-core TreatmentDirective2 / AdvanceDirective), so there is no ACP record to read");
        }
    }
}

/// Who took part in the ACP encounter.
#[derive(Default)]
struct Participants {
    professionals: Vec<usize>,
    people: Vec<usize>,
}

/// The [question] key a CodeableConcept's coding stands for.
fn concept_quiet_question(cc: &Value) -> Option<&'static str> {
    let vs = mappings::get().valueset("question");
    codings(cc).into_iter().find_map(|(s, c, _)| vs.find(s, c).map(|e| e.key.as_str()))
}

fn question_display(key: &str) -> String {
    mappings::get().valueset("question").by_key(key).map(|e| e.coding.display.clone()).unwrap_or_default()
}

/// The IKNL legal-capacity extension: `legallyCapable` (boolean) and `legallyCapableComment`.
fn legal_capacity(ext: &Value, at: &Path, p: &mut Problems) -> Option<LegalCapacity> {
    let o = Obj::new(ext, at.clone(), p)?;
    o.skip("url");
    o.skip("id");
    let mut lc = LegalCapacity::default();
    for (sat, sub) in items(&o, "extension", p) {
        match sub.get("url").and_then(Value::as_str) {
            Some(names::LEGALLY_CAPABLE) => match sub.get("valueBoolean") {
                Some(Value::Bool(b)) => lc.capable = Some(*b),
                Some(other) => p.error(
                    IssueType::Value,
                    &sat.key("valueBoolean"),
                    format!("expected true or false, got {}", type_name(other)),
                ),
                None => p.error(IssueType::Required, &sat, "legallyCapable has no valueBoolean"),
            },
            Some(names::LEGALLY_CAPABLE_COMMENT) => lc.explanation = ext_string(sub, &sat, p),
            other => p.warning(
                IssueType::NotSupported,
                &sat,
                format!(
                    "part {} of the legal-capacity extension is not known; it is not handed over",
                    other.unwrap_or("(no url)")
                ),
            ),
        }
    }
    done(o, p);
    (lc != LegalCapacity::default()).then_some(lc)
}

/// An Attachment with inline data (the scanned declaration).
fn attachment(a: &Obj<'_>, p: &mut Problems) -> Option<Document> {
    skip(a, &["id", "extension", "language", "size", "hash", "creation"]);
    let content_type = a.str("contentType", p);
    let title = a.str("title", p);
    let data = a.str("data", p);
    if a.get("url").is_some() && data.is_none() {
        p.warning(
            IssueType::NotSupported,
            &a.at("url"),
            "the document is only referenced by URL; the record carries documents inline, so it is not handed over",
        );
        return None;
    }
    let data = data?;
    let compact: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if let Err(e) = base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()) {
        p.error(IssueType::Value, &a.at("data"), format!("the document's data is not valid base64 ({e})"));
        return None;
    }
    let Some(content_type) = content_type else {
        p.error(IssueType::Required, &a.at("contentType"), "an attached document needs its contentType (FHIR att-1)");
        return None;
    };
    Some(Document { content_type, title, data: compact })
}

/// Fills what the discrete resources left open from the form (a QuestionnaireResponse), and reports
/// answers on which the two disagree (the discrete resource is kept).
fn merge(r: &mut AcpRecord, q: AcpRecord, at: &Path, p: &mut Problems) {
    let differ = |label: &str, p: &mut Problems| {
        p.warning(
            IssueType::Invariant,
            at,
            format!("the QuestionnaireResponse says otherwise about {label}; the discrete resource is handed over"),
        );
    };
    macro_rules! fill {
        ($field:ident, $label:literal) => {
            match (&r.$field, q.$field) {
                (None, Some(v)) => r.$field = Some(v),
                _ => {}
            }
        };
        ($field:ident, $label:literal, compare) => {
            match (&r.$field, q.$field) {
                (None, Some(v)) => r.$field = Some(v),
                (Some(a), Some(b)) if *a != b => differ($label, p),
                _ => {}
            }
        };
    }
    fill!(date_filled_in, "the date filled in", compare);
    fill!(conducted_by, "the professional");
    fill!(legal_capacity, "legal capacity");
    // 1c/1d as the form answers them: FHIR says "first contact" only by adding role 01 (its absence is
    // not a "Nee"), and writes role 24 whether or not 1c named it; the form's own answers are exact,
    // so with the form present they are taken from it.
    match (&mut r.representative, q.representative) {
        (None, Some(v)) => r.representative = Some(v),
        (Some(mine), Some(form)) => {
            mine.is_first_contact = form.is_first_contact;
            // The form's list of roles, with the "Anders" answers of the discrete resource, which keeps
            // one text per role (the form keeps one for all), and the roles the form can only write
            // as "Anders" (see `questionnaire::form::NOT_OFFERED`), in their places.
            let folded = |a: &Answer<ContactRole>| a.value() == ContactRole::Other || !questionnaire::form::offered("982", a.value());
            let mut own = mine.roles.iter().filter(|a| folded(a)).cloned().collect::<Vec<_>>().into_iter();
            let mut last = None;
            mine.roles = form
                .roles
                .into_iter()
                .map(|a| {
                    if !folded(&a) {
                        return a;
                    }
                    // A repeated identical role is written once; it keeps the last one seen.
                    if let Some(o) = own.next() {
                        last = Some(o);
                    }
                    last.clone().unwrap_or(a)
                })
                .collect();
        }
        _ => {}
    }
    fill!(first_contact, "the first contact");
    fill!(present, "who was present");
    fill!(medical_policy_goal, "the goal of medical policy (3)", compare);
    fill!(icd, "the ICD (4h)");
    fill!(care_wishes, "specific wishes (5a)");
    fill!(place_of_death, "the preferred place of death (5b)");
    fill!(euthanasia, "the position on euthanasia (5c)");
    fill!(organ_donation_registered, "organ donation (5d)", compare);
    fill!(sense_of_purpose, "what else matters (6)");
    fill!(earlier_agreements, "earlier agreements (7)");
    fill!(relatives_informed, "informing relatives (8a)", compare);
    fill!(sharing_consent, "consent to share (8b)");
    // A directive the discrete resources hold as not in force is not made current by the form, which
    // has no status: that would turn an ended or withdrawn limit back into a current one.
    let set_aside = |r: &AcpRecord, is: &dyn Fn(&RecordedDirective) -> bool| r.directives_not_in_force.iter().any(|d| is(&d.directive));
    let not_from_form = |label: &str, p: &mut Problems| {
        p.warning(
            IssueType::Invariant,
            at,
            format!("the QuestionnaireResponse gives {label} as current, but its directive is not in force; it stays among the directives not in force"),
        );
    };
    let icd_set_aside = set_aside(r, &|d| matches!(d, RecordedDirective::IcdDeactivation(_)));
    match (&r.icd_deactivation, q.icd_deactivation) {
        (None, Some(_)) if icd_set_aside => not_from_form("switching off the ICD (4i)", p),
        (None, Some(v)) => r.icd_deactivation = Some(v),
        (Some(a), Some(b)) if a.agreement != b.agreement => differ("switching off the ICD (4i)", p),
        _ => {}
    }
    let patient = &mut r.patient;
    if patient.bsn.is_none() {
        patient.bsn = q.patient.bsn;
    }
    if patient.name.is_empty() {
        patient.name = q.patient.name;
    }
    if patient.birth_date.is_none() {
        patient.birth_date = q.patient.birth_date;
    }
    if patient.other_identifiers.is_empty() {
        patient.other_identifiers = q.patient.other_identifiers;
    }
    for t in NAMED_TREATMENTS {
        let theirs = q.treatment_limits.get(t).cloned();
        let aside = set_aside(r, &|d| matches!(d, RecordedDirective::TreatmentLimit(l) if l.treatment == t));
        let Some(slot) = r.treatment_limits.slot_mut(t) else { continue };
        match (slot.as_ref(), theirs) {
            (None, Some(_)) if aside => not_from_form(&format!("treatment {}", t.key()), p),
            (None, Some(v)) => *slot = Some(v),
            (Some(a), Some(b)) if a.decision != b.decision => differ(&format!("treatment {}", t.key()), p),
            _ => {}
        }
    }
    if r.treatment_limits.other.is_empty() {
        for o in q.treatment_limits.other {
            if set_aside(r, &|d| matches!(d, RecordedDirective::OtherTreatmentLimit(x) if x.treatment == o.treatment)) {
                not_from_form(&format!("the other treatment limit (4g) {:?}", o.treatment.as_deref().unwrap_or("Overige")), p);
            } else {
                r.treatment_limits.other.push(o);
            }
        }
    }
    if r.advance_directives.is_empty() {
        for ad in q.advance_directives {
            if set_aside(r, &|d| matches!(d, RecordedDirective::AdvanceDirective(x) if x.kind == ad.kind)) {
                not_from_form(&format!("the advance directive '{}'", ad.kind.key()), p);
            } else {
                r.advance_directives.push(ad);
            }
        }
    }
}

// --- locations --------------------------------------------------------------------------------------

/// Translates a record pointer (`crate::validate::rules`) into the FHIR resource that carries it, as
/// FHIRPath on the resource type. Items only the form itself carries (7, 8b) point into the
/// QuestionnaireResponse. Unknown pointers fall back to the whole input.
pub fn locate(pointer: &str) -> Location {
    let segs: Vec<&str> = pointer.trim_start_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let m = mappings::get();
    let question = |key: &str| {
        let code = m.valueset("question").by_key(key).map(|e| e.coding.code.clone()).unwrap_or_default();
        format!("{}.where(code.coding.code='{code}')", names::OBSERVATION)
    };
    let consent_for = |code: &str| format!("{}.where(provision.code.coding.code='{code}')", names::CONSENT);
    // Where in a treatment directive a limit's part is.
    let limit_part = |rest: &[&str]| match rest.first() {
        None => String::new(),
        Some(&"decision") => ".provision.type".into(),
        Some(&"restriction") => ".modifierExtension".into(),
        Some(&"explanation") => ".extension".into(),
        Some(&"discussed_on") => ".dateTime".into(),
        Some(&"treatment") => ".provision.code.text".into(),
        Some(_) => String::new(),
    };
    let path = match segs.as_slice() {
        ["date_filled_in", ..] => format!("{}.period.start", names::ENCOUNTER),
        ["patient", "bsn", ..] | ["patient", "other_identifiers", ..] => format!("{}.identifier", names::PATIENT),
        ["patient", "name", ..] => format!("{}.name", names::PATIENT),
        ["patient", "birth_date", ..] => format!("{}.birthDate", names::PATIENT),
        ["patient", ..] => names::PATIENT.to_owned(),
        ["conducted_by", "name", ..] | ["conducted_by", "agb", ..] | ["conducted_by", "other_identifiers", ..] => {
            names::PRACTITIONER.to_owned()
        }
        ["conducted_by", ..] => names::PRACTITIONER_ROLE.to_owned(),
        ["legal_capacity", ..] => format!("{}.extension", names::PATIENT),
        ["representative", ..] | ["first_contact", ..] => names::RELATED_PERSON.to_owned(),
        ["present", ..] => format!("{}.participant", names::ENCOUNTER),
        ["medical_policy_goal", ..] => format!("{}.description", names::GOAL),
        ["treatment_limits", "other", rest @ ..] => {
            let oth = &Treatment::Other.entry().coding.code;
            let rest = rest.get(1..).unwrap_or(&[]);
            format!("{}{}", consent_for(oth), limit_part(rest))
        }
        ["treatment_limits", field, rest @ ..] => {
            match NAMED_TREATMENTS.iter().find(|t| TreatmentLimits::field_name(**t) == *field) {
                Some(t) => format!("{}{}", consent_for(&t.entry().coding.code), limit_part(rest)),
                None => names::CONSENT.to_owned(),
            }
        }
        ["treatment_limits"] => names::CONSENT.to_owned(),
        ["icd_deactivation", rest @ ..] => {
            let icd = &Treatment::IcdDeactivation.entry().coding.code;
            let part = match rest.first() {
                Some(&"agreement") => ".provision.type".to_owned(),
                other => limit_part(other.map(std::slice::from_ref).unwrap_or(&[])),
            };
            format!("{}.where(provision.code.text.contains('{icd}')){part}", names::CONSENT)
        }
        ["icd", "product_type", ..] => format!("{}.type", names::DEVICE),
        ["icd", "explanation", ..] => format!("{}.note", names::DEVICE_USE_STATEMENT),
        ["icd", ..] => names::DEVICE_USE_STATEMENT.to_owned(),
        ["care_wishes", ..] => format!("{}.value", question("care-wishes")),
        ["place_of_death", "explanation", ..] => format!("{}.note", question("place-of-death")),
        ["place_of_death", ..] => format!("{}.value", question("place-of-death")),
        ["euthanasia", "explanation", ..] => format!("{}.note", question("euthanasia-position")),
        ["euthanasia", ..] => format!("{}.value", question("euthanasia-position")),
        ["organ_donation_registered", ..] => format!("{}.value", question("organ-donation")),
        ["sense_of_purpose", ..] => format!("{}.value", question("sense-of-purpose")),
        ["relatives_informed", ..] => names::COMMUNICATION_REQUEST.to_owned(),
        ["advance_directives", rest @ ..] => {
            let part = match rest.get(1) {
                Some(&"date") => ".dateTime",
                Some(&"type") => ".provision.code",
                Some(&"comment") => ".extension",
                Some(&"document") => ".sourceAttachment",
                _ => "",
            };
            format!("{}.where(scope.coding.code='{}'){part}", names::CONSENT, names::SCOPE_ADVANCE_DIRECTIVE)
        }
        ["directives_not_in_force", _, "status", ..] => format!("{}.status", names::CONSENT),
        ["directives_not_in_force", _, "ended_on", ..] => format!("{}.provision.period.end", names::CONSENT),
        ["directives_not_in_force", ..] => names::CONSENT.to_owned(),
        ["earlier_agreements", ..] | ["sharing_consent", ..] => return questionnaire::locate(pointer),
        _ => return Location::Document { line: None, column: None },
    };
    Location::FhirPath(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown_marker() -> String {
        mappings::get().text_markers("decision-unknown")[0].clone()
    }

    #[test]
    fn decision_table() {
        use ProvisionType::*;
        let d = |t, s: Option<&str>| treatment_decision(t, s, None).map(|r| (r.value, r.warning.is_some()));
        assert_eq!(d(Some(Permit), None), Ok((Decision::Perform, false)));
        assert_eq!(d(Some(Deny), None), Ok((Decision::DoNotPerform, false)));
        // The restriction is verbatim, whitespace and all.
        let text = "  alleen bij goede prognose ";
        assert_eq!(d(None, Some(text)), Ok((Decision::PerformWithRestrictions { restriction: text.into() }, false)));
        assert_eq!(d(None, Some(&unknown_marker().to_lowercase())), Ok((Decision::Unknown, false)));
        // Both given: the modifier overrules, never a permit, with a warning.
        assert_eq!(
            d(Some(Permit), Some("max 2 dagen")),
            Ok((Decision::PerformWithRestrictions { restriction: "max 2 dagen".into() }, true))
        );
        assert_eq!(d(Some(Deny), Some(&unknown_marker())), Ok((Decision::Unknown, true)));
        assert!(d(None, None).is_err());
        assert!(d(None, Some("   ")).is_err());
        // zib2017 coded decisions.
        let c = |t, s, code| treatment_decision(t, s, Some(code)).map(|r| r.value);
        assert_eq!(c(None, None, DecisionCode::DoNotPerform), Ok(Decision::DoNotPerform));
        assert!(c(Some(Permit), None, DecisionCode::DoNotPerform).is_err());
        assert!(c(None, None, DecisionCode::PerformWithRestrictions).is_err());
    }

    #[test]
    fn icd_decision_table() {
        use ProvisionType::*;
        let m = mappings::get();
        let asku = m.text_markers("icd-not-yet-decided")[0].clone();
        let nask = m.text_markers("icd-not-discussed")[0].clone();
        assert_eq!(icd_decision(Some(Permit), None).map(|r| r.value), Ok(IcdDeactivationAgreement::Yes));
        assert_eq!(icd_decision(None, Some(&asku)).map(|r| r.value), Ok(IcdDeactivationAgreement::NotYetDecided));
        assert_eq!(icd_decision(None, Some(&nask)).map(|r| r.value), Ok(IcdDeactivationAgreement::NotDiscussed));
        let odd = icd_decision(None, Some("bespreken met cardioloog")).unwrap();
        assert_eq!(odd.value, IcdDeactivationAgreement::NotYetDecided);
        assert_eq!(odd.explanation.as_deref(), Some("bespreken met cardioloog"));
        assert!(odd.warning.is_some());
        assert!(icd_decision(Some(Deny), None).is_err());
        assert!(icd_decision(None, None).is_err());
        assert!(icd_decision(Some(Permit), Some(&nask)).unwrap().warning.is_some());
    }

    #[test]
    fn unread_elements_are_listed_once_per_object() {
        let v = serde_json::json!({
            "resourceType": "Patient",
            "birthDate": "1950-01-01",
            "_birthDate": {"id": "b"},
            "_gender": {"extension": [{"url": "http://example.org/x", "valueString": "?"}]},
            "maritalStatus": {"text": "weduwe"}
        });
        let mut p = Problems::default();
        let (r, completeness) = read(&v, &mut p);
        assert_eq!(r.patient.birth_date.map(|d| d.to_string()).as_deref(), Some("1950-01-01"));
        assert_eq!(completeness, Completeness::Partial);
        let at_root: Vec<_> = p.list.iter().filter(|x| x.location.to_string() == "Patient").collect();
        assert_eq!(at_root.len(), 1, "{:#?}", p.list);
        let m = &at_root[0].message;
        assert!(m.contains("gender") && m.contains("maritalStatus") && !m.contains("birthDate"), "{m}");
    }

    #[test]
    fn locate_points_at_the_carrying_resource() {
        let code = &Treatment::Resuscitation.entry().coding.code;
        assert_eq!(
            locate("/treatment_limits/resuscitation/discussed_on"),
            Location::FhirPath(format!("Consent.where(provision.code.coding.code='{code}').dateTime"))
        );
        assert_eq!(locate("/date_filled_in"), Location::FhirPath("Encounter.period.start".into()));
        assert_eq!(locate("/patient/birth_date"), Location::FhirPath("Patient.birthDate".into()));
        assert!(matches!(locate("/sharing_consent"), Location::FhirPath(s) if s.starts_with("QuestionnaireResponse")));
        assert_eq!(locate("/nonsense"), Location::Document { line: None, column: None });
        assert!(matches!(locate("/advance_directives/0/date"), Location::FhirPath(s) if s.ends_with(".dateTime")));
    }
}
