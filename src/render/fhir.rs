//! A record as FHIR R4 resources of the IKNL PZP profiles, in one Bundle (`translate --to fhir-json`,
//! `--to fhir-xml`, and the FHIR delivery channel): [`bundle`], then [`to_json`] or [`to_xml`].
//!
//! What goes where follows the IKNL mapping (`acp-fhir-standard.md` §5); the profile canonicals are those
//! of the pinned release in `mappings/profiles.toml`, the fixed codes around the answers are in
//! `mappings/fhir-output.toml`, the answers' codes in `mappings/valuesets.toml`.
//!
//! Decisions worth knowing:
//! - **Treatment limits**: one ACP-TreatmentDirective per treatment. "Ja" is `permit`, "Nee" `deny`. A
//!   restriction ("Ja maar met beperkingen") and "Onbekend" have *no* `provision.type`; the modifier
//!   extension `specificationOther` carries the restriction verbatim, or the first `decision-unknown`
//!   text marker. A restriction is never written as `permit`. 4i (ICD deactivation) works the same way
//!   with its own markers, and its treatment is NullFlavor OTH + the text the IKNL examples use.
//! - **Directives not in force** (`directives_not_in_force`: ended, draft, proposed, rejected, entered
//!   in error) are written after the current ones as the Consent each was, with its own `status` and
//!   its end as `provision.period.end`; every current directive has status `active`. The intake reads
//!   them back as not in force, so record → FHIR → record is lossless and none becomes a current limit.
//! - **Nothing vanishes**: what the profiles have no place for (7a/7b earlier agreements, 8b consent to
//!   share, 8a "Nee", ICD "Nee"/"Nog onbekend", the conversation's presence list as the form states it)
//!   travels in the record's QuestionnaireResponse (`crate::render::questionnaire`), which every Bundle
//!   carries. A receiver that reads the discrete resources and then the response for the rest recovers
//!   the whole record.
//! - **Unknown preferred place of death** follows the IKNL example instance: no value, `dataAbsentReason`
//!   asked-unknown, the explanation in `note` (obs-6 forbids a value beside it). Other "Nog onbekend"
//!   answers (euthanasia, organ donation, goal) are in their required value sets as NullFlavor UNK.
//! - **Patient presence**: ACP-Encounter reads `subject` as "the patient was present" (dataset 514), so
//!   the Encounter names the patient only when the record says so; every other resource names the
//!   patient always. Others present are ACP-ContactPersons named by role or relation only (the form has
//!   no names for them); one by relation gets role 23 "Contactpersoon" as well, as the IKNL examples do,
//!   because ACP-ContactPerson requires a role. For a reader: the RelatedPersons that are
//!   `Encounter.participant`s are exactly these presence entries; the representative (role 24) and the
//!   first contact (01 without 24) are never participants, even when they were there.
//! - **Contact roles**: the representative always carries 24 and, when also the first contact (1d), 01,
//!   as ACP-ContactPerson asks; a 1c role "Wettelijke vertegenwoordiger" or "Eerste contactpersoon" is
//!   therefore not told apart from those in FHIR. The QuestionnaireResponse (982, 984) tells them apart.
//! - **Names**: `family` is the whole family name with the nl-core own-prefix / own-name parts in
//!   `_family`; the given names stay one string, as recorded. A birth date with a time keeps the time in
//!   the `patient-birthTime` extension, since `birthDate` is a date.
//! - **Ids** are derived from the content: SHA-256 of the record's canonical JSON, then of that digest
//!   and the resource's role in the Bundle ("patient", "treatment/resuscitation", ...), formatted as a
//!   UUID (version 8, RFC 9562). Every `fullUrl` is `urn:uuid:<id>`; transaction entries PUT `Type/id`,
//!   so sending the same record twice changes nothing. A changed record gets new ids.
//! - **Time** comes from the record only: `date_filled_in` dates the Encounter, Procedure, observations
//!   and the CommunicationRequest, and (as an instant, midnight UTC when only a date is known) the
//!   Provenance and `Bundle.timestamp`. Without a date there is no Provenance (its `recorded` is 1..1).
//! - **Not invented**: a professional's function, a treatment's discussion date, the ICD product type,
//!   an encounter's contact type are written only when recorded. The CommunicationRequest for 8a needs
//!   the professional as requester (1..1), so without one 8a travels in the QuestionnaireResponse only.

use sha2::{Digest, Sha256};

use crate::fhir::model as fhir;
use crate::fhir::model::{CodeableConcept, Extension, ExtensionValue, ProvisionType, Reference};
use crate::mappings::{self, Coding};
use crate::record::{
    AcpRecord, AdvanceDirective, Answer, Coded, ContactPerson, ContactRole, Decision, Email, EmailUse, FhirDate,
    IcdDeactivation, IcdDeactivationAgreement, Name, NumberUse, OtherTreatmentLimit, Phone, PlaceOfDeath,
    RecordedDirective, Relationship, TelecomType, TreatmentLimit, TreatmentLimits, YesNoUnknown, NAMED_TREATMENTS,
};

/// How the receiver is to take the Bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleKind {
    /// Every entry is a `PUT Type/id`: a FHIR server stores the lot atomically, idempotently.
    Transaction,
    /// Just the resources, for a receiver that files them itself.
    Collection,
}

/// The record as a Bundle of IKNL PZP resources. Total: any record gives a Bundle, never a panic.
pub fn bundle(record: &AcpRecord, kind: BundleKind) -> fhir::Bundle {
    Builder::new(record).build(kind)
}

/// Pretty-printed FHIR JSON with a trailing newline.
pub fn to_json(bundle: &fhir::Bundle) -> String {
    // A Bundle of a whole form is some 80 KiB; starting big spares most of the regrowth.
    let mut out = Vec::with_capacity(64 * 1024);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Pretty::default());
    // Serialising the model cannot fail: it has no maps with non-string keys and no fallible Serialize.
    serde::Serialize::serialize(&Tagged::Bundle(bundle), &mut ser)
        .expect("the FHIR model serialises (no maps with non-string keys)");
    out.push(b'\n');
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Writes exactly what `serde_json::ser::PrettyFormatter` writes (two-space indent), but each line
/// break with its indentation in one piece instead of one write per level: the QuestionnaireResponse
/// nests ten levels deep, and those small writes were a tenth of the rendering time.
#[derive(Default)]
struct Pretty {
    level: usize,
    has_value: bool,
}

impl Pretty {
    fn line<W: ?Sized + std::io::Write>(&self, w: &mut W) -> std::io::Result<()> {
        const SPACES: &[u8; 129] = b"\n                                                                                                                                ";
        let mut n = 2 * self.level;
        w.write_all(&SPACES[..1 + n.min(128)])?;
        while n > 128 {
            n -= 128;
            w.write_all(&SPACES[1..1 + n.min(128)])?;
        }
        Ok(())
    }

    fn open<W: ?Sized + std::io::Write>(&mut self, w: &mut W, bracket: &[u8]) -> std::io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(bracket)
    }

    fn close<W: ?Sized + std::io::Write>(&mut self, w: &mut W, bracket: &[u8]) -> std::io::Result<()> {
        self.level -= 1;
        if self.has_value {
            self.line(w)?;
        }
        w.write_all(bracket)
    }

    fn next<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        self.line(w)
    }
}

impl serde_json::ser::Formatter for Pretty {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, b"[")
    }

    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"]")
    }

    fn begin_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        self.next(w, first)
    }

    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, b"{")
    }

    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"}")
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        self.next(w, first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// FHIR XML, by way of the JSON form (`crate::fhir::xml` is the one JSON <-> XML converter), so both
/// carry the same elements in the same order.
pub fn to_xml(bundle: &fhir::Bundle) -> String {
    let value =
        serde_json::to_value(Tagged::Bundle(bundle)).expect("the FHIR model serialises (no maps with non-string keys)");
    crate::fhir::xml::write(&value)
}

/// A borrowed Bundle with its `resourceType`, so writing it needs no copy of the whole Bundle.
#[derive(serde::Serialize)]
#[serde(tag = "resourceType")]
enum Tagged<'a> {
    Bundle(&'a fhir::Bundle),
}

/// The tables of `mappings/profiles.toml` and `mappings/fhir-output.toml`.
///
/// `crate::mappings` owns the tables intake and output share; these two are read only by this renderer,
/// so they are loaded here, the same way (embedded, parsed once).
pub mod tables {
    use std::collections::BTreeMap;
    use std::sync::OnceLock;

    use serde::Deserialize;

    use crate::mappings::Coding;

    const PROFILES_TOML: &str = include_str!("../../mappings/profiles.toml");
    const OUTPUT_TOML: &str = include_str!("../../mappings/fhir-output.toml");

    #[derive(Debug, Deserialize)]
    pub struct Release {
        pub package: String,
        pub version: String,
        pub base: String,
    }

    #[derive(Debug, Deserialize)]
    struct ProfilesFile {
        release: Release,
        profiles: BTreeMap<String, String>,
        #[serde(rename = "iknl-extensions")]
        iknl_extensions: BTreeMap<String, String>,
        #[serde(rename = "legally-capable-parts")]
        legally_capable_parts: BTreeMap<String, String>,
        extensions: BTreeMap<String, String>,
    }

    #[derive(Debug, Deserialize)]
    struct OutputFile {
        codings: BTreeMap<String, Coding>,
        status: BTreeMap<String, String>,
        texts: BTreeMap<String, String>,
    }

    /// Both files, parsed.
    #[derive(Debug)]
    pub struct Tables {
        pub release: Release,
        /// concept -> full canonical.
        pub profiles: BTreeMap<String, String>,
        /// key -> full URL (IKNL ones resolved under the release base).
        pub extensions: BTreeMap<String, String>,
        pub legally_capable_parts: BTreeMap<String, String>,
        pub codings: BTreeMap<String, Coding>,
        pub status: BTreeMap<String, String>,
        pub texts: BTreeMap<String, String>,
    }

    impl Tables {
        // A missing key is a build defect (the code and the TOML disagree), caught by the unit tests,
        // which look up every key the renderer uses; it never depends on input.
        fn get<'a>(map: &'a BTreeMap<String, String>, file: &str, key: &str) -> &'a str {
            map.get(key).map(String::as_str).unwrap_or_else(|| panic!("{file} has no key {key}"))
        }

        /// The canonical to put in `meta.profile` for a concept ("treatment-directive").
        pub fn profile(&self, concept: &str) -> &str {
            Self::get(&self.profiles, "mappings/profiles.toml [profiles]", concept)
        }

        pub fn extension(&self, key: &str) -> &str {
            Self::get(&self.extensions, "mappings/profiles.toml extensions", key)
        }

        pub fn legally_capable_part(&self, key: &str) -> &str {
            Self::get(&self.legally_capable_parts, "mappings/profiles.toml [legally-capable-parts]", key)
        }

        pub fn coding(&self, key: &str) -> &Coding {
            self.codings.get(key).unwrap_or_else(|| panic!("mappings/fhir-output.toml [codings] has no key {key}"))
        }

        pub fn status(&self, key: &str) -> &str {
            Self::get(&self.status, "mappings/fhir-output.toml [status]", key)
        }

        pub fn text(&self, key: &str) -> &str {
            Self::get(&self.texts, "mappings/fhir-output.toml [texts]", key)
        }
    }

    pub fn get() -> &'static Tables {
        static TABLES: OnceLock<Tables> = OnceLock::new();
        TABLES.get_or_init(|| {
            parse().expect("the embedded mappings/profiles.toml and fhir-output.toml are valid (checked by tests)")
        })
    }

    pub(super) fn parse() -> Result<Tables, String> {
        let p: ProfilesFile = toml::from_str(PROFILES_TOML).map_err(|e| format!("profiles.toml: {e}"))?;
        let o: OutputFile = toml::from_str(OUTPUT_TOML).map_err(|e| format!("fhir-output.toml: {e}"))?;
        let base = p.release.base.clone();
        let profiles = p.profiles.into_iter().map(|(k, id)| (k, format!("{base}{id}"))).collect();
        let mut extensions: BTreeMap<String, String> =
            p.iknl_extensions.into_iter().map(|(k, id)| (k, format!("{base}{id}"))).collect();
        for (k, url) in p.extensions {
            if extensions.insert(k.clone(), url).is_some() {
                return Err(format!("profiles.toml: extension {k} is listed twice"));
            }
        }
        Ok(Tables {
            release: p.release,
            profiles,
            extensions,
            legally_capable_parts: p.legally_capable_parts,
            codings: o.codings,
            status: o.status,
            texts: o.texts,
        })
    }
}

/// The keys of the tables this renderer uses, listed once so a unit test can check each exists.
mod keys {
    #[cfg(test)]
    pub const CONCEPTS: &[&str] = &[
        PATIENT,
        CONTACT_PERSON,
        PRACTITIONER,
        PRACTITIONER_ROLE,
        ENCOUNTER,
        PROCEDURE,
        TREATMENT_DIRECTIVE,
        ADVANCE_DIRECTIVE,
        GOAL,
        CARE_WISHES,
        PLACE_OF_DEATH,
        EUTHANASIA,
        ORGAN_DONATION,
        SENSE_OF_PURPOSE,
        MEDICAL_DEVICE,
        DEVICE_PRODUCT,
        INFORM_RELATIVES,
    ];
    pub const PATIENT: &str = "patient";
    pub const CONTACT_PERSON: &str = "contact-person";
    pub const PRACTITIONER: &str = "practitioner";
    pub const PRACTITIONER_ROLE: &str = "practitioner-role";
    pub const ENCOUNTER: &str = "encounter";
    pub const PROCEDURE: &str = "procedure";
    pub const TREATMENT_DIRECTIVE: &str = "treatment-directive";
    pub const ADVANCE_DIRECTIVE: &str = "advance-directive";
    pub const GOAL: &str = "medical-policy-goal";
    pub const CARE_WISHES: &str = "care-wishes";
    pub const PLACE_OF_DEATH: &str = "place-of-death";
    pub const EUTHANASIA: &str = "euthanasia-position";
    pub const ORGAN_DONATION: &str = "organ-donation";
    pub const SENSE_OF_PURPOSE: &str = "sense-of-purpose";
    pub const MEDICAL_DEVICE: &str = "medical-device";
    pub const DEVICE_PRODUCT: &str = "device-product";
    pub const INFORM_RELATIVES: &str = "inform-relatives";

    #[cfg(test)]
    pub const EXTENSIONS: &[&str] = &[
        "legally-capable",
        "specification-other",
        "comment",
        "code-specification",
        "patient-related-person",
        "humanname-own-prefix",
        "humanname-own-name",
        "data-absent-reason",
        "patient-birth-time",
    ];
    #[cfg(test)]
    pub const LEGALLY_CAPABLE_PARTS: &[&str] = &["capable", "comment"];
    #[cfg(test)]
    pub const CODINGS: &[&str] = &[
        "treatment-directive-scope",
        "treatment-directive-category",
        "agreement-party",
        "advance-directive-scope",
        "advance-directive-category",
        "care-wishes-method",
        "organ-donation-method",
        "inform-relatives-category",
        "asked-unknown",
        "unknown",
        "encounter-class-unknown",
        "provenance-assembler",
    ];
    /// Statuses keyed by concept where the IKNL examples fix one.
    #[cfg(test)]
    pub const STATUSES: &[&str] =
        &["encounter", "procedure", "consent", "goal", "observation", "device-use", "inform-relatives"];
    #[cfg(test)]
    pub const TEXTS: &[&str] =
        &["consent-policy", "icd-deactivation-treatment", "bundle-identifier-system", "mappings-policy-prefix"];
    /// Keys of valuesets.toml [question] (the fixed "MetingNaam" codes and the ACP procedure code).
    #[cfg(test)]
    pub const QUESTIONS: &[&str] = &[
        "care-wishes",
        "place-of-death",
        "euthanasia-position",
        "organ-donation",
        "sense-of-purpose",
        "acp-procedure",
    ];
    /// Text markers of valuesets.toml [text-markers] the renderer writes.
    #[cfg(test)]
    pub const MARKERS: &[&str] = &["decision-unknown", "icd-not-yet-decided", "icd-not-discussed"];
}

// --- small conversions ---------------------------------------------------------------------------------

fn coding(c: &Coding) -> fhir::Coding {
    fhir::Coding {
        system: (!c.system.is_empty()).then(|| c.system.clone()),
        code: Some(c.code.clone()),
        display: (!c.display.is_empty()).then(|| c.display.clone()),
        ..Default::default()
    }
}

fn concept(c: &Coding) -> CodeableConcept {
    CodeableConcept { coding: vec![coding(c)], text: None }
}

/// The FHIR coding of a coded answer (not the Questionnaire's, where the two differ).
fn coded<T: Coded>(v: T) -> CodeableConcept {
    concept(&v.entry().coding)
}

/// A coded answer with its "Anders, namelijk" description as the concept's text.
fn answer<T: Coded>(a: &Answer<T>) -> CodeableConcept {
    CodeableConcept { text: a.other_text().and_then(filled).map(str::to_owned), ..coded(a.value()) }
}

fn fixed(key: &str) -> CodeableConcept {
    concept(tables::get().coding(key))
}

/// A fixed question code of valuesets.toml [question].
fn question(key: &str) -> CodeableConcept {
    let entry = mappings::get()
        .valueset("question")
        .by_key(key)
        .unwrap_or_else(|| panic!("mappings/valuesets.toml [question] has no key {key}"));
    concept(&entry.coding)
}

/// Text worth writing: FHIR forbids empty strings, and blank text is "not recorded" to every reader.
fn filled(s: &str) -> Option<&str> {
    (!s.trim().is_empty()).then_some(s)
}

fn filled_opt(s: &Option<String>) -> Option<&str> {
    s.as_deref().and_then(filled)
}

fn string_ext(key: &str, value: &str) -> Extension {
    Extension::new(tables::get().extension(key), ExtensionValue::String(value.to_owned()))
}

/// ext-Comment with the explanation, when there is one.
fn comment(explanation: &Option<String>) -> Vec<Extension> {
    filled_opt(explanation).map(|t| string_ext("comment", t)).into_iter().collect()
}

fn note(text: &Option<String>) -> Vec<fhir::Annotation> {
    filled_opt(text).map(|t| fhir::Annotation { text: Some(t.to_owned()), ..Default::default() }).into_iter().collect()
}

/// A FHIR `date` from a record date, which may carry a time (a `dateTime`).
fn date(d: &FhirDate) -> String {
    if d.has_time() {
        d.date_part().unwrap_or_else(|| d.as_str().to_owned())
    } else {
        d.as_str().to_owned()
    }
}

/// A FHIR `instant` from a record date: a dateTime as it is (the record's times have seconds and a
/// zone), a date as midnight UTC of its first day.
fn instant(d: &FhirDate) -> String {
    if d.has_time() {
        return d.as_str().to_owned();
    }
    let mut parts = d.as_str().split('-');
    let year = parts.next().unwrap_or_default();
    let month = parts.next().unwrap_or("01");
    let day = parts.next().unwrap_or("01");
    format!("{year}-{month}-{day}T00:00:00Z")
}

fn human_name(n: &Name) -> Option<fhir::HumanName> {
    let t = tables::get();
    let given = filled_opt(&n.given);
    let prefix = filled_opt(&n.prefix);
    let family = filled_opt(&n.family);
    if given.is_none() && prefix.is_none() && family.is_none() {
        return None;
    }
    // nl-core: `family` is the whole family name, its parts in the own-prefix / own-name extensions.
    let mut parts = Vec::new();
    if let Some(p) = prefix {
        parts.push(Extension::new(t.extension("humanname-own-prefix"), ExtensionValue::String(p.to_owned())));
    }
    if let Some(f) = family {
        parts.push(Extension::new(t.extension("humanname-own-name"), ExtensionValue::String(f.to_owned())));
    }
    // Without an own name there is no family name to write, only its prefix (as `_family` alone), so a
    // receiver does not take "van" for a surname.
    let whole_family = family.map(|f| prefix.map_or_else(|| f.to_owned(), |p| format!("{p} {f}")));
    let text = [given, prefix, family].into_iter().flatten().collect::<Vec<_>>().join(" ");
    Some(fhir::HumanName {
        r#use: Some(fhir::NameUse::Official),
        text: Some(text),
        family: whole_family,
        family_ext: (!parts.is_empty()).then(|| fhir::Element { extension: parts, ..Default::default() }),
        // The given names stay one string, as recorded: splitting would guess at names like "Jan Willem".
        given: given.map(str::to_owned).into_iter().collect(),
        ..Default::default()
    })
}

fn phone(p: &Phone) -> Option<fhir::ContactPoint> {
    let number = filled(&p.number)?;
    let system = match p.telecom_type {
        Some(TelecomType::Fax) => fhir::ContactPointSystem::Fax,
        Some(TelecomType::Pager) => fhir::ContactPointSystem::Pager,
        Some(TelecomType::Landline | TelecomType::Mobile) | None => fhir::ContactPointSystem::Phone,
    };
    // nl-core keeps the zib's telecom type (mobile, landline, ...) on `system`, which is coarser.
    let system_ext = p.telecom_type.map(|tt| fhir::Element {
        extension: vec![Extension::new(
            tables::get().extension("code-specification"),
            ExtensionValue::CodeableConcept(coded(tt)),
        )],
        ..Default::default()
    });
    let number_use = p.number_use.map(|u| match u {
        NumberUse::Home => fhir::ContactPointUse::Home,
        NumberUse::Temporary => fhir::ContactPointUse::Temp,
        NumberUse::Work => fhir::ContactPointUse::Work,
    });
    Some(fhir::ContactPoint {
        extension: comment(&p.comment),
        system: Some(system),
        system_ext,
        value: Some(number.to_owned()),
        r#use: number_use,
        ..Default::default()
    })
}

fn email(e: &Email) -> Option<fhir::ContactPoint> {
    let address = filled(&e.address)?;
    Some(fhir::ContactPoint {
        system: Some(fhir::ContactPointSystem::Email),
        value: Some(address.to_owned()),
        r#use: e.email_use.map(|u| match u {
            EmailUse::Private => fhir::ContactPointUse::Home,
            EmailUse::Work => fhir::ContactPointUse::Work,
        }),
        ..Default::default()
    })
}

fn telecom(person: &ContactPerson) -> Vec<fhir::ContactPoint> {
    person.phones.iter().filter_map(phone).chain(person.emails.iter().filter_map(email)).collect()
}

fn identifier(system: &str, value: &str) -> fhir::Identifier {
    fhir::Identifier { system: Some(system.to_owned()), value: Some(value.to_owned()), ..Default::default() }
}

fn push_unique(list: &mut Vec<CodeableConcept>, c: CodeableConcept) {
    if !list.contains(&c) {
        list.push(c);
    }
}

/// 4g: NullFlavor OTH (the value set's "Anders") with the treatment's name as text.
fn other_treatment(other: &OtherTreatmentLimit) -> CodeableConcept {
    CodeableConcept { text: filled_opt(&other.treatment).map(str::to_owned), ..coded(crate::record::Treatment::Other) }
}

/// How one decision is written: a `provision.type`, or a `specificationOther` text that overrules
/// it, never both.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Written {
    Type(ProvisionType),
    Text(String),
}

/// The first text marker of a kind (the one to write); the coded answer's display should the list
/// ever be empty.
fn marker(kind: &str, fallback: &Coding) -> String {
    mappings::get().text_markers(kind).first().cloned().unwrap_or_else(|| fallback.display.clone())
}

/// 4a-g: Ja = permit, Nee = deny; a restriction and "Onbekend" have no type, only text.
fn written_decision(d: &Decision) -> Written {
    match d {
        Decision::Perform => Written::Type(ProvisionType::Permit),
        Decision::DoNotPerform => Written::Type(ProvisionType::Deny),
        // Verbatim: the restriction *is* the decision.
        Decision::PerformWithRestrictions { restriction } => Written::Text(restriction.clone()),
        Decision::Unknown => Written::Text(marker("decision-unknown", &d.code().entry().coding)),
    }
}

/// 4i: only "Ja" has a type (permit); nothing maps to deny.
fn written_icd(a: IcdDeactivationAgreement) -> Written {
    match a {
        IcdDeactivationAgreement::Yes => Written::Type(ProvisionType::Permit),
        IcdDeactivationAgreement::NotYetDecided => Written::Text(marker("icd-not-yet-decided", &a.entry().coding)),
        IcdDeactivationAgreement::NotDiscussed => Written::Text(marker("icd-not-discussed", &a.entry().coding)),
    }
}

// --- the builder -----------------------------------------------------------------------------------------

/// Roles of the resources in the Bundle: the second half of each id's hash input.
mod role {
    pub const BUNDLE: &str = "bundle";
    pub const PATIENT: &str = "patient";
    pub const REPRESENTATIVE: &str = "representative";
    pub const FIRST_CONTACT: &str = "first-contact";
    pub const PRESENT_BY_ROLE: &str = "present/role";
    pub const PRESENT_BY_RELATION: &str = "present/relationship";
    pub const PRACTITIONER: &str = "practitioner";
    pub const PRACTITIONER_ROLE: &str = "practitioner-role";
    pub const ENCOUNTER: &str = "encounter";
    pub const PROCEDURE: &str = "procedure";
    pub const TREATMENT: &str = "treatment";
    pub const ADVANCE_DIRECTIVE: &str = "advance-directive";
    pub const NOT_IN_FORCE: &str = "not-in-force";
    pub const GOAL: &str = "goal";
    pub const OBSERVATION: &str = "observation";
    pub const DEVICE: &str = "device";
    pub const DEVICE_USE: &str = "device-use";
    pub const INFORM_RELATIVES: &str = "inform-relatives";
    pub const QUESTIONNAIRE_RESPONSE: &str = "questionnaire-response";
    pub const PROVENANCE: &str = "provenance";
}

struct Builder<'r> {
    r: &'r AcpRecord,
    /// SHA-256 of the record's canonical JSON.
    seed: [u8; 32],
    entries: Vec<fhir::Resource>,
    patient: Reference,
    encounter: Reference,
    procedure: Reference,
    /// The PractitionerRole of the professional who held the conversation, if recorded.
    professional: Option<Reference>,
    representative: Option<Reference>,
}

impl<'r> Builder<'r> {
    fn new(r: &'r AcpRecord) -> Self {
        // The record's Serialize is its canonical JSON (fixed field order, absent items left out); it
        // cannot fail, and an empty input to the hash would still give stable ids.
        let canonical = serde_json::to_vec(r).unwrap_or_default();
        let seed: [u8; 32] = Sha256::digest(&canonical).into();
        let mut b = Builder {
            r,
            seed,
            entries: Vec::new(),
            patient: Reference::default(),
            encounter: Reference::default(),
            procedure: Reference::default(),
            professional: None,
            representative: None,
        };
        b.patient = b.reference("Patient", role::PATIENT);
        b.encounter = b.reference("Encounter", role::ENCOUNTER);
        b.procedure = b.reference("Procedure", role::PROCEDURE);
        b.professional = r.conducted_by.is_some().then(|| b.reference("PractitionerRole", role::PRACTITIONER_ROLE));
        b.representative = r.representative.is_some().then(|| b.reference("RelatedPerson", role::REPRESENTATIVE));
        b
    }

    /// The UUID of the resource with this role.
    fn id(&self, role: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.seed);
        h.update([0]);
        h.update(role.as_bytes());
        let d = h.finalize();
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        b[6] = (b[6] & 0x0f) | 0x80; // version 8: custom (hash-derived)
        b[8] = (b[8] & 0x3f) | 0x80; // RFC 9562 variant
        // 8-4-4-4-12 hex digits; encoded into a stack buffer, since ids are made for every resource
        // and reference.
        let mut hex = [0u8; 32];
        hex::encode_to_slice(b, &mut hex).expect("16 bytes fill exactly 32 hex digits");
        let hex = std::str::from_utf8(&hex).expect("hex digits are ASCII");
        format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
    }

    fn reference(&self, resource_type: &str, role: &str) -> Reference {
        Reference {
            reference: Some(format!("urn:uuid:{}", self.id(role))),
            r#type: Some(resource_type.to_owned()),
            ..Default::default()
        }
    }

    fn meta(concept: &str) -> Option<fhir::Meta> {
        Some(fhir::Meta { profile: vec![tables::get().profile(concept).to_owned()], ..Default::default() })
    }

    fn status(key: &str) -> Option<String> {
        Some(tables::get().status(key).to_owned())
    }

    fn filled_in(&self) -> Option<String> {
        self.r.date_filled_in.as_ref().map(|d| d.as_str().to_owned())
    }

    fn push(&mut self, resource: impl Into<fhir::Resource>) {
        self.entries.push(resource.into());
    }

    fn build(mut self, kind: BundleKind) -> fhir::Bundle {
        self.patient_resource();
        self.contact_persons();
        self.professional_resources();
        self.encounter_and_procedure();
        self.treatment_directives();
        self.advance_directives();
        self.directives_not_in_force();
        self.goal();
        self.observations();
        self.icd();
        self.inform_relatives();
        self.questionnaire_response();
        self.provenance();

        let t = tables::get();
        let id = self.id(role::BUNDLE);
        let entry = self
            .entries
            .into_iter()
            .map(|resource| {
                let rid = resource.id().unwrap_or_default().to_owned();
                let request = (kind == BundleKind::Transaction).then(|| fhir::BundleRequest {
                    method: Some(fhir::HttpVerb::Put),
                    url: Some(format!("{}/{rid}", resource.resource_type())),
                });
                fhir::BundleEntry {
                    full_url: Some(format!("urn:uuid:{rid}")),
                    resource: Some(resource),
                    request,
                    ..Default::default()
                }
            })
            .collect();
        fhir::Bundle {
            identifier: Some(identifier(t.text("bundle-identifier-system"), &format!("urn:uuid:{id}"))),
            id: Some(id),
            r#type: Some(match kind {
                BundleKind::Transaction => fhir::BundleType::Transaction,
                BundleKind::Collection => fhir::BundleType::Collection,
            }),
            timestamp: self.r.date_filled_in.as_ref().map(instant),
            entry,
            ..Default::default()
        }
    }

    // --- people ------------------------------------------------------------------------------------------

    fn patient_resource(&mut self) {
        let t = tables::get();
        let p = &self.r.patient;
        let m = mappings::get();
        let mut ids = Vec::new();
        if let Some(bsn) = &p.bsn {
            ids.push(identifier(&m.naming_system("bsn").uri, bsn.as_str()));
        }
        ids.extend(p.other_identifiers.iter().map(|i| identifier(&i.system, &i.value)));

        // ACP-Patient requires a name; an unnamed record says so rather than inventing one.
        let name = human_name(&p.name).unwrap_or_else(|| fhir::HumanName {
            extension: vec![Extension::new(
                t.extension("data-absent-reason"),
                ExtensionValue::Code(t.coding("unknown").code.clone()),
            )],
            ..Default::default()
        });

        let mut extension = Vec::new();
        if let Some(lc) = &self.r.legal_capacity {
            let mut parts = Vec::new();
            if let Some(capable) = lc.capable {
                parts.push(Extension::new(t.legally_capable_part("capable"), ExtensionValue::Boolean(capable)));
            }
            if let Some(c) = filled_opt(&lc.explanation) {
                parts.push(Extension::new(t.legally_capable_part("comment"), ExtensionValue::String(c.to_owned())));
            }
            if !parts.is_empty() {
                extension.push(Extension::complex(t.extension("legally-capable"), parts));
            }
        }

        // Patient.contact repeats the representative and the first contact (linked to their
        // RelatedPerson), which is what invariant ACP-Patient-1 looks for when the patient is not legally
        // capable. pat-1 wants a name or telecom in each contact.
        let mut contact = Vec::new();
        let people = [
            self.r
                .representative
                .as_ref()
                .map(|rep| (&rep.person, self.representative_relationships(), role::REPRESENTATIVE)),
            self.r.first_contact.as_ref().map(|fc| (fc, Self::first_contact_relationships(fc), role::FIRST_CONTACT)),
        ];
        for (person, relationship, role) in people.into_iter().flatten() {
            let name = human_name(&person.name);
            let telecom = telecom(person);
            if name.is_none() && telecom.is_empty() {
                continue;
            }
            contact.push(fhir::PatientContact {
                extension: vec![Extension::new(
                    t.extension("patient-related-person"),
                    ExtensionValue::Reference(self.reference("RelatedPerson", role)),
                )],
                relationship,
                name,
                telecom,
                ..Default::default()
            });
        }

        let resource = fhir::Patient {
            id: Some(self.id(role::PATIENT)),
            meta: Self::meta(keys::PATIENT),
            extension,
            identifier: ids,
            name: vec![name],
            birth_date: p.birth_date.as_ref().map(date),
            // birthDate is a date; a recorded time of birth goes beside it rather than being dropped.
            birth_date_ext: p.birth_date.as_ref().filter(|d| d.has_time()).map(|d| fhir::Element {
                extension: vec![Extension::new(
                    t.extension("patient-birth-time"),
                    ExtensionValue::DateTime(d.as_str().to_owned()),
                )],
                ..Default::default()
            }),
            contact,
            ..Default::default()
        };
        self.push(resource);
    }

    /// Role 24 (legal representative), the roles of 1c, 01 when also the first contact (1d), then
    /// the family relation.
    fn representative_relationships(&self) -> Vec<CodeableConcept> {
        let Some(rep) = &self.r.representative else { return Vec::new() };
        let mut list = vec![coded(ContactRole::LegalRepresentative)];
        for a in &rep.roles {
            push_unique(&mut list, answer(a));
        }
        if rep.is_first_contact == Some(true) {
            push_unique(&mut list, coded(ContactRole::FirstContact));
        }
        if let Some(rel) = &rep.person.relationship {
            list.push(answer(rel));
        }
        list
    }

    fn first_contact_relationships(fc: &ContactPerson) -> Vec<CodeableConcept> {
        let mut list = vec![coded(ContactRole::FirstContact)];
        if let Some(rel) = &fc.relationship {
            list.push(answer(rel));
        }
        list
    }

    fn related_person(
        &self,
        role: &str,
        relationship: Vec<CodeableConcept>,
        person: Option<&ContactPerson>,
    ) -> fhir::RelatedPerson {
        fhir::RelatedPerson {
            id: Some(self.id(role)),
            meta: Self::meta(keys::CONTACT_PERSON),
            patient: Some(self.patient.clone()),
            relationship,
            name: person.and_then(|p| human_name(&p.name)).into_iter().collect(),
            telecom: person.map(telecom).unwrap_or_default(),
            ..Default::default()
        }
    }

    fn contact_persons(&mut self) {
        if let Some(rep) = &self.r.representative {
            let rp = self.related_person(role::REPRESENTATIVE, self.representative_relationships(), Some(&rep.person));
            self.push(rp);
        }
        if let Some(fc) = &self.r.first_contact {
            let rp = self.related_person(role::FIRST_CONTACT, Self::first_contact_relationships(fc), Some(fc));
            self.push(rp);
        }
        // Others present (2), by role or by relation: the form names no one, so each is a contact
        // person known only by that.
        if let Some(present) = &self.r.present {
            for (i, a) in present.roles.iter().enumerate() {
                let rp = self.related_person(&format!("{}/{i}", role::PRESENT_BY_ROLE), vec![answer(a)], None);
                self.push(rp);
            }
            for (i, a) in present.relationships.iter().enumerate() {
                let relationship = vec![coded(ContactRole::ContactPerson), answer::<Relationship>(a)];
                let rp = self.related_person(&format!("{}/{i}", role::PRESENT_BY_RELATION), relationship, None);
                self.push(rp);
            }
        }
    }

    fn present_others(&self) -> Vec<Reference> {
        let Some(present) = &self.r.present else { return Vec::new() };
        let by_role = (0..present.roles.len()).map(|i| format!("{}/{i}", role::PRESENT_BY_ROLE));
        let by_relation = (0..present.relationships.len()).map(|i| format!("{}/{i}", role::PRESENT_BY_RELATION));
        by_role.chain(by_relation).map(|role| self.reference("RelatedPerson", &role)).collect()
    }

    fn professional_resources(&mut self) {
        let Some(pro) = &self.r.conducted_by else { return };
        let m = mappings::get();
        let mut ids = Vec::new();
        if let Some(agb) = &pro.agb {
            ids.push(identifier(&m.naming_system("agb").uri, agb.as_str()));
        }
        ids.extend(pro.other_identifiers.iter().map(|i| identifier(&i.system, &i.value)));
        let practitioner = fhir::Practitioner {
            id: Some(self.id(role::PRACTITIONER)),
            meta: Self::meta(keys::PRACTITIONER),
            identifier: ids,
            name: human_name(&pro.name).into_iter().collect(),
            ..Default::default()
        };
        let practitioner_role = fhir::PractitionerRole {
            id: Some(self.id(role::PRACTITIONER_ROLE)),
            meta: Self::meta(keys::PRACTITIONER_ROLE),
            practitioner: Some(self.reference("Practitioner", role::PRACTITIONER)),
            specialty: pro.function.map(coded).into_iter().collect(),
            ..Default::default()
        };
        self.push(practitioner);
        self.push(practitioner_role);
    }

    // --- the conversation ------------------------------------------------------------------------------

    fn encounter_and_procedure(&mut self) {
        let patient_present = self.r.present.as_ref().is_some_and(|p| p.patient);
        let participant = self
            .professional
            .iter()
            .cloned()
            .chain(self.present_others())
            .map(|individual| fhir::EncounterParticipant { individual: Some(individual), ..Default::default() })
            .collect();
        let encounter = fhir::Encounter {
            id: Some(self.id(role::ENCOUNTER)),
            meta: Self::meta(keys::ENCOUNTER),
            status: Self::status("encounter"),
            class: Some(coding(tables::get().coding("encounter-class-unknown"))),
            // Dataset 514: the subject of the ACP encounter is the patient *present*.
            subject: patient_present.then(|| self.patient.clone()),
            participant,
            period: self.filled_in().map(|start| fhir::Period { start: Some(start), end: None }),
            reason_reference: vec![self.procedure.clone()],
            ..Default::default()
        };
        let procedure = fhir::Procedure {
            id: Some(self.id(role::PROCEDURE)),
            meta: Self::meta(keys::PROCEDURE),
            status: Self::status("procedure"),
            code: Some(question("acp-procedure")),
            subject: Some(self.patient.clone()),
            encounter: Some(self.encounter.clone()),
            performed_date_time: self.filled_in(),
            performer: self
                .professional
                .iter()
                .map(|actor| fhir::ProcedurePerformer { actor: Some(actor.clone()), ..Default::default() })
                .collect(),
            ..Default::default()
        };
        self.push(encounter);
        self.push(procedure);
    }

    // --- 4. treatment limits -----------------------------------------------------------------------------

    /// Who agreed: the patient, the professional, and the representative when there is one.
    fn agreement_parties(&self) -> Vec<fhir::ConsentActor> {
        let role = fixed("agreement-party");
        std::iter::once(self.patient.clone())
            .chain(self.professional.clone())
            .chain(self.representative.clone())
            .map(|reference| fhir::ConsentActor { role: Some(role.clone()), reference: Some(reference) })
            .collect()
    }

    fn policy() -> Vec<fhir::ConsentPolicy> {
        vec![fhir::ConsentPolicy { uri: Some(tables::get().text("consent-policy").to_owned()), ..Default::default() }]
    }

    fn treatment_directive(
        &self,
        role: &str,
        treatment: CodeableConcept,
        written: Written,
        explanation: &Option<String>,
        discussed_on: Option<&FhirDate>,
    ) -> fhir::Consent {
        let (provision_type, specification_other) = match written {
            Written::Type(t) => (Some(t), Vec::new()),
            Written::Text(text) => (None, vec![string_ext("specification-other", &text)]),
        };
        fhir::Consent {
            id: Some(self.id(role)),
            meta: Self::meta(keys::TREATMENT_DIRECTIVE),
            extension: comment(explanation),
            modifier_extension: specification_other,
            status: Self::status("consent"),
            scope: Some(fixed("treatment-directive-scope")),
            category: vec![fixed("treatment-directive-category")],
            patient: Some(self.patient.clone()),
            date_time: discussed_on.map(|d| d.as_str().to_owned()),
            policy: Self::policy(),
            provision: Some(fhir::ConsentProvision {
                r#type: provision_type,
                actor: self.agreement_parties(),
                code: vec![treatment],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn limit_directive(&self, role: &str, treatment: CodeableConcept, limit: &TreatmentLimit) -> fhir::Consent {
        self.treatment_directive(
            role,
            treatment,
            written_decision(&limit.decision),
            &limit.explanation,
            limit.discussed_on.as_ref(),
        )
    }

    fn treatment_directives(&mut self) {
        let limits = &self.r.treatment_limits;
        let mut out = Vec::new();
        for t in NAMED_TREATMENTS {
            if let Some(limit) = limits.get(t) {
                let role = format!("{}/{}", role::TREATMENT, TreatmentLimits::field_name(t));
                out.push(self.limit_directive(&role, coded(t), limit));
            }
        }
        for (i, other) in limits.other.iter().enumerate() {
            let role = format!("{}/other/{i}", role::TREATMENT);
            out.push(self.limit_directive(&role, other_treatment(other), &other.limit));
        }
        if let Some(icd) = &self.r.icd_deactivation {
            let role = format!("{}/icd-deactivation", role::TREATMENT);
            out.push(self.icd_directive(&role, icd));
        }
        for c in out {
            self.push(c);
        }
    }

    /// 4i: the ICD deactivation is outside the bound code list: OTH + the agreed text.
    fn icd_directive(&self, role: &str, icd: &IcdDeactivation) -> fhir::Consent {
        let treatment = CodeableConcept {
            text: Some(tables::get().text("icd-deactivation-treatment").to_owned()),
            ..coded(crate::record::Treatment::Other)
        };
        self.treatment_directive(role, treatment, written_icd(icd.agreement), &icd.explanation, icd.discussed_on.as_ref())
    }

    fn advance_directive(&self, i: usize, ad: &AdvanceDirective) -> fhir::Consent {
        self.advance_directive_as(&format!("{}/{i}", role::ADVANCE_DIRECTIVE), ad)
    }

    fn advance_directive_as(&self, role: &str, ad: &AdvanceDirective) -> fhir::Consent {
        fhir::Consent {
            id: Some(self.id(role)),
            meta: Self::meta(keys::ADVANCE_DIRECTIVE),
            extension: comment(&ad.comment),
            status: Self::status("consent"),
            scope: Some(fixed("advance-directive-scope")),
            category: vec![fixed("advance-directive-category")],
            patient: Some(self.patient.clone()),
            date_time: ad.date.as_ref().map(|d| d.as_str().to_owned()),
            source_attachment: ad.document.as_ref().map(|doc| fhir::Attachment {
                content_type: Some(doc.content_type.clone()),
                data: Some(doc.data.clone()),
                title: filled_opt(&doc.title).map(str::to_owned),
                ..Default::default()
            }),
            policy: Self::policy(),
            provision: Some(fhir::ConsentProvision { code: vec![coded(ad.kind)], ..Default::default() }),
            ..Default::default()
        }
    }

    fn advance_directives(&mut self) {
        let out: Vec<_> =
            self.r.advance_directives.iter().enumerate().map(|(i, ad)| self.advance_directive(i, ad)).collect();
        for c in out {
            self.push(c);
        }
    }

    /// Directives not in force, each as the Consent it was, with its own status and end date, so that
    /// no receiver (and no re-reading) can take one for a current limit. Written after the current ones,
    /// in the record's order.
    fn directives_not_in_force(&mut self) {
        let mut out = Vec::new();
        for (i, d) in self.r.directives_not_in_force.iter().enumerate() {
            let role = format!("{}/{i}", role::NOT_IN_FORCE);
            let mut c = match &d.directive {
                RecordedDirective::TreatmentLimit(l) => self.limit_directive(&role, coded(l.treatment), &l.limit),
                RecordedDirective::OtherTreatmentLimit(o) => self.limit_directive(&role, other_treatment(o), &o.limit),
                RecordedDirective::IcdDeactivation(icd) => self.icd_directive(&role, icd),
                RecordedDirective::AdvanceDirective(ad) => self.advance_directive_as(&role, ad),
            };
            c.status = Some(d.status.key().to_owned());
            if let Some(end) = &d.ended_on {
                let provision = c.provision.get_or_insert_with(Default::default);
                provision.period = Some(fhir::Period { start: None, end: Some(end.as_str().to_owned()) });
            }
            out.push(c);
        }
        for c in out {
            self.push(c);
        }
    }

    // --- 3., 5., 6. --------------------------------------------------------------------------------------

    fn goal(&mut self) {
        let Some(goal) = self.r.medical_policy_goal else { return };
        let resource = fhir::Goal {
            id: Some(self.id(role::GOAL)),
            meta: Self::meta(keys::GOAL),
            lifecycle_status: Self::status("goal"),
            // rc2: the ACP category, so receivers can find the ACP goal among others.
            category: vec![question("acp-procedure")],
            // The FHIR value set's coding (713148004), not the Questionnaire's (225353007).
            description: Some(coded(goal)),
            subject: Some(self.patient.clone()),
            status_date: self.r.date_filled_in.as_ref().map(date),
            ..Default::default()
        };
        self.push(resource);
    }

    fn observation(&self, concept: &str, question_key: &str) -> fhir::Observation {
        fhir::Observation {
            id: Some(self.id(&format!("{}/{concept}", role::OBSERVATION))),
            meta: Self::meta(concept),
            status: Self::status("observation"),
            code: Some(question(question_key)),
            subject: Some(self.patient.clone()),
            encounter: Some(self.encounter.clone()),
            effective_date_time: self.filled_in(),
            performer: self.professional.iter().cloned().collect(),
            ..Default::default()
        }
    }

    fn observations(&mut self) {
        let r = self.r;
        let mut out = Vec::new();
        if let Some(text) = filled_opt(&r.care_wishes) {
            out.push(fhir::Observation {
                value_string: Some(text.to_owned()),
                method: Some(fixed("care-wishes-method")),
                ..self.observation(keys::CARE_WISHES, "care-wishes")
            });
        }
        if let Some(wish) = &r.place_of_death {
            let mut o = fhir::Observation {
                note: note(&wish.explanation),
                ..self.observation(keys::PLACE_OF_DEATH, "place-of-death")
            };
            match wish.preference.value() {
                // The IKNL example instance: asked but unknown, as the reason the value is absent.
                PlaceOfDeath::Unknown => o.data_absent_reason = Some(fixed("asked-unknown")),
                _ => o.value_codeable_concept = Some(answer(&wish.preference)),
            }
            out.push(o);
        }
        if let Some(e) = &r.euthanasia {
            out.push(fhir::Observation {
                value_codeable_concept: Some(coded(e.position)),
                note: note(&e.explanation),
                ..self.observation(keys::EUTHANASIA, "euthanasia-position")
            });
        }
        if let Some(registered) = r.organ_donation_registered {
            out.push(fhir::Observation {
                value_codeable_concept: Some(coded(registered)),
                method: Some(fixed("organ-donation-method")),
                ..self.observation(keys::ORGAN_DONATION, "organ-donation")
            });
        }
        if let Some(text) = filled_opt(&r.sense_of_purpose) {
            out.push(fhir::Observation {
                value_string: Some(text.to_owned()),
                ..self.observation(keys::SENSE_OF_PURPOSE, "sense-of-purpose")
            });
        }
        for o in out {
            self.push(o);
        }
    }

    // --- 4h, 8a ------------------------------------------------------------------------------------------

    /// Only a patient *with* an ICD has a device to describe; "Nee" and "Nog onbekend" stay in the
    /// QuestionnaireResponse.
    fn icd(&mut self) {
        let Some(icd) = &self.r.icd else { return };
        if icd.present != YesNoUnknown::Yes {
            return;
        }
        let device = fhir::Device {
            id: Some(self.id(role::DEVICE)),
            meta: Self::meta(keys::DEVICE_PRODUCT),
            r#type: icd.product_type.map(coded),
            patient: Some(self.patient.clone()),
            ..Default::default()
        };
        let statement = fhir::DeviceUseStatement {
            id: Some(self.id(role::DEVICE_USE)),
            meta: Self::meta(keys::MEDICAL_DEVICE),
            status: Self::status("device-use"),
            subject: Some(self.patient.clone()),
            device: Some(self.reference("Device", role::DEVICE)),
            note: note(&icd.explanation),
            ..Default::default()
        };
        self.push(device);
        self.push(statement);
    }

    /// 8a "Ja": the professional asked the patient to inform their relatives.
    fn inform_relatives(&mut self) {
        if self.r.relatives_informed != Some(true) {
            return;
        }
        let Some(requester) = self.professional.clone() else { return };
        let resource = fhir::CommunicationRequest {
            id: Some(self.id(role::INFORM_RELATIVES)),
            meta: Self::meta(keys::INFORM_RELATIVES),
            status: Self::status("inform-relatives"),
            category: vec![fixed("inform-relatives-category")],
            subject: Some(self.patient.clone()),
            // cr-date-required: authoredOn or encounter; both are given.
            encounter: Some(self.encounter.clone()),
            authored_on: self.filled_in(),
            requester: Some(requester),
            sender: Some(self.patient.clone()),
            reason_code: vec![question("acp-procedure")],
            ..Default::default()
        };
        self.push(resource);
    }

    // --- the whole form, and where it came from --------------------------------------------------------

    /// The record as the national form, which carries what the profiles cannot (7a/7b, 8b, 8a "Nee",
    /// ICD "Nee"/"Nog onbekend"). Its subject is also linked to the Patient of the Bundle.
    fn questionnaire_response(&mut self) {
        let mut qr = crate::render::questionnaire::response(self.r);
        qr.id = Some(self.id(role::QUESTIONNAIRE_RESPONSE));
        let identifier = qr.subject.take().and_then(|s| s.identifier);
        qr.subject = Some(Reference { identifier, ..self.patient.clone() });
        self.push(qr);
    }

    /// The gateway, its version and the mappings version that made these resources. Needs the date
    /// the form was filled in: `recorded` is 1..1 and the wall clock is never used.
    fn provenance(&mut self) {
        let Some(filled_in) = &self.r.date_filled_in else { return };
        let t = tables::get();
        let target = self
            .entries
            .iter()
            .map(|e| Reference {
                reference: Some(format!("urn:uuid:{}", e.id().unwrap_or_default())),
                r#type: Some(e.resource_type().to_owned()),
                ..Default::default()
            })
            .collect();
        let resource = fhir::Provenance {
            id: Some(self.id(role::PROVENANCE)),
            target,
            recorded: Some(instant(filled_in)),
            policy: vec![format!("{}{}", t.text("mappings-policy-prefix"), mappings::get().version)],
            agent: vec![fhir::ProvenanceAgent {
                r#type: Some(fixed("provenance-assembler")),
                who: Some(Reference {
                    display: Some(format!("{} {}", env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        self.push(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::*;

    #[test]
    fn the_line_writer_writes_what_serde_jsons_pretty_printer_writes() {
        // Deeper than one run of spaces (64 levels), with empty and filled arrays and objects.
        let mut v = serde_json::json!({"a": [], "b": {}, "c": [1, {"d": "e\n\"f"}], "g": null});
        for i in 0..70 {
            v = serde_json::json!({"level": i, "inner": [v, [], {}]});
        }
        let mut ours = Vec::new();
        serde::Serialize::serialize(&v, &mut serde_json::Serializer::with_formatter(&mut ours, Pretty::default())).unwrap();
        assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string_pretty(&v).unwrap());
    }

    #[test]
    fn every_table_key_the_renderer_uses_exists() {
        let t = tables::parse().expect("tables parse");
        for k in keys::CONCEPTS {
            assert!(t.profiles.contains_key(*k), "profiles.toml lacks {k}");
        }
        for k in keys::EXTENSIONS {
            assert!(t.extensions.contains_key(*k), "profiles.toml lacks extension {k}");
        }
        for k in keys::LEGALLY_CAPABLE_PARTS {
            assert!(t.legally_capable_parts.contains_key(*k), "profiles.toml lacks legally-capable part {k}");
        }
        for k in keys::CODINGS {
            assert!(t.codings.contains_key(*k), "fhir-output.toml lacks coding {k}");
        }
        for k in keys::STATUSES {
            assert!(t.status.contains_key(*k), "fhir-output.toml lacks status {k}");
        }
        for k in keys::TEXTS {
            assert!(t.texts.contains_key(*k), "fhir-output.toml lacks text {k}");
        }
        let m = mappings::get();
        for k in keys::QUESTIONS {
            assert!(m.valueset("question").by_key(k).is_some(), "valuesets.toml [question] lacks {k}");
        }
        for k in keys::MARKERS {
            assert!(!m.text_markers(k).is_empty(), "valuesets.toml [text-markers] {k} is empty");
        }
    }

    #[test]
    fn what_is_written_is_what_the_intake_reads() {
        let t = tables::get();
        let c = &mappings::get().canonicals;
        for (concept, url) in &t.profiles {
            assert!(url.starts_with(&t.release.base), "{url}");
            assert_eq!(
                c.profile_concept(url),
                Some(concept.as_str()),
                "canonicals.toml does not read {url} as {concept}"
            );
        }
        // Every extension both files name must be one of the spellings the intake accepts.
        for (key, url) in &t.extensions {
            if c.extensions.contains_key(key) {
                assert!(c.is_extension(key, url), "canonicals.toml [extensions] {key} does not accept {url}");
            }
        }
        assert!(t.extensions["legally-capable"].starts_with(&t.release.base));
    }

    #[test]
    fn icd_deactivation_text_names_the_snomed_code_of_the_value_set() {
        let code = &Treatment::IcdDeactivation.entry().coding.code;
        assert!(tables::get().text("icd-deactivation-treatment").contains(code.as_str()));
    }

    #[test]
    fn decisions_map_to_type_or_text_never_both() {
        assert_eq!(written_decision(&Decision::Perform), Written::Type(ProvisionType::Permit));
        assert_eq!(written_decision(&Decision::DoNotPerform), Written::Type(ProvisionType::Deny));
        let r = Decision::PerformWithRestrictions { restriction: "  max. 3 dagen ".into() };
        assert_eq!(written_decision(&r), Written::Text("  max. 3 dagen ".into()));
        let unknown = mappings::get().text_markers("decision-unknown")[0].clone();
        assert_eq!(written_decision(&Decision::Unknown), Written::Text(unknown));
        assert_eq!(written_icd(IcdDeactivationAgreement::Yes), Written::Type(ProvisionType::Permit));
        for a in [IcdDeactivationAgreement::NotYetDecided, IcdDeactivationAgreement::NotDiscussed] {
            assert!(matches!(written_icd(a), Written::Text(_)), "{a:?}");
        }
    }

    #[test]
    fn instants_and_dates_from_record_dates() {
        let d = |s: &str| FhirDate::parse(s).unwrap();
        assert_eq!(instant(&d("2020-10-01")), "2020-10-01T00:00:00Z");
        assert_eq!(instant(&d("2020")), "2020-01-01T00:00:00Z");
        assert_eq!(instant(&d("2020-10-01T16:27:36.364Z")), "2020-10-01T16:27:36.364Z");
        assert_eq!(date(&d("2020-10-01T09:00:00+02:00")), "2020-10-01");
        assert_eq!(date(&d("1961-01")), "1961-01");
    }

    #[test]
    fn ids_are_uuids_stable_per_role_and_distinct() {
        let r = AcpRecord::default();
        let b = Builder::new(&r);
        let a = b.id("patient");
        assert_eq!(a, Builder::new(&r).id("patient"));
        assert_ne!(a, b.id("encounter"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "8", "version nibble: {a}");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "variant: {a}");
        let other = AcpRecord { care_wishes: Some("x".into()), ..Default::default() };
        assert_ne!(a, Builder::new(&other).id("patient"));
    }

    #[test]
    fn a_split_dutch_name_keeps_its_parts() {
        let n = Name { given: Some("Jan".into()), prefix: Some("van".into()), family: Some("Huissen".into()) };
        let h = human_name(&n).unwrap();
        assert_eq!(h.family.as_deref(), Some("van Huissen"));
        assert_eq!(h.text.as_deref(), Some("Jan van Huissen"));
        let parts = h.family_ext.unwrap().extension;
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].value, Some(ExtensionValue::String("van".into())));
        assert!(human_name(&Name { given: Some(" ".into()), ..Default::default() }).is_none());
        let prefix_only = human_name(&Name { prefix: Some("van".into()), ..Default::default() }).unwrap();
        assert_eq!(prefix_only.family, None);
        assert_eq!(prefix_only.family_ext.unwrap().extension.len(), 1);
    }
}
