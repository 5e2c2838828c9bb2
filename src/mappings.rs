//! The data tables in `mappings/`, embedded at build time and parsed once.
//!
//! Code tables, identifier systems and canonical URLs are data, not code: a new IKNL release or a new
//! code is a change to a TOML file. This module reads the tables the record and intake share
//! (`valuesets`, `naming-systems`, `canonicals`); tables that belong to one output are embedded beside
//! their single reader (`routes.toml` in `routing`, `profiles.toml` / `fhir-output.toml` in
//! `render::fhir`, `channels.toml` in `render::edifact`, the letter template in `render::letter`). The files are embedded (not read at run time) so that the binary needs no installation
//! directory and `translate` is the same on every machine. Their consistency with the record's enums is
//! checked by the unit tests at the bottom of this file.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

const VALUESETS_TOML: &str = include_str!("../mappings/valuesets.toml");
const NAMING_SYSTEMS_TOML: &str = include_str!("../mappings/naming-systems.toml");
const CANONICALS_TOML: &str = include_str!("../mappings/canonicals.toml");

/// A code in a code system, as FHIR's `Coding` carries it. An empty `system` stands for the local,
/// system-less codes the Questionnaire uses for some Ja/Nee answers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Coding {
    pub system: String,
    pub code: String,
    #[serde(default)]
    pub display: String,
}

impl Coding {
    /// Whether this coding names the given system and code (an absent system matches only a local code).
    pub fn matches(&self, system: Option<&str>, code: &str) -> bool {
        self.code == code && self.system == system.unwrap_or("")
    }
}

/// One answer of a value set: its key in the record and the codings it stands for.
#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    #[serde(skip)]
    pub key: String,
    #[serde(flatten)]
    pub coding: Coding,
    /// The coding the Questionnaire uses where it differs from the FHIR profiles.
    #[serde(default)]
    pub questionnaire: Option<Coding>,
    /// Further codings read as this key on input.
    #[serde(default)]
    pub also: Vec<Coding>,
}

impl Entry {
    /// The coding to write into a QuestionnaireResponse.
    pub fn questionnaire_coding(&self) -> &Coding {
        self.questionnaire.as_ref().unwrap_or(&self.coding)
    }

    fn matches(&self, system: Option<&str>, code: &str) -> bool {
        self.coding.matches(system, code)
            || self.questionnaire.as_ref().is_some_and(|c| c.matches(system, code))
            || self.also.iter().any(|c| c.matches(system, code))
    }
}

/// A value set: the answers one form item allows, in the form's order.
#[derive(Debug, Clone)]
pub struct ValueSet {
    pub name: String,
    pub entries: Vec<Entry>,
}

impl ValueSet {
    pub fn by_key(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// The entry a received coding stands for, if the value set has it.
    pub fn find(&self, system: Option<&str>, code: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.matches(system, code))
    }

    /// "a | b | c", for error messages that tell an integrator what is allowed.
    pub fn describe_allowed(&self) -> String {
        self.entries
            .iter()
            .map(|e| {
                if e.coding.system.is_empty() {
                    format!("{} ({})", e.coding.code, e.coding.display)
                } else {
                    format!("{}#{} ({})", e.coding.system, e.coding.code, e.coding.display)
                }
            })
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

/// Every table of `mappings/`, parsed.
#[derive(Debug)]
pub struct Mappings {
    pub version: String,
    pub pzp_release: String,
    valuesets: BTreeMap<String, ValueSet>,
    text_markers: BTreeMap<String, Vec<String>>,
    pub naming_systems: BTreeMap<String, NamingSystem>,
    pub canonicals: Canonicals,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NamingSystem {
    pub uri: String,
    #[serde(default)]
    pub also: Vec<String>,
}

impl NamingSystem {
    pub fn matches(&self, uri: &str) -> bool {
        self.uri == uri || self.also.iter().any(|a| a == uri)
    }
}

#[derive(Debug, Deserialize)]
pub struct Canonicals {
    pub questionnaire: BTreeMap<String, Vec<String>>,
    #[serde(rename = "profile-bases")]
    pub profile_bases: BTreeMap<String, Vec<String>>,
    #[serde(rename = "profile-ids")]
    pub profile_ids: BTreeMap<String, String>,
    pub extensions: BTreeMap<String, Vec<String>>,
}

impl Canonicals {
    /// Whether `url` (with or without `|version`) names the ACP-zib2020 Questionnaire.
    pub fn is_acp_questionnaire(&self, url: &str) -> bool {
        let bare = url.split('|').next().unwrap_or(url);
        self.questionnaire
            .get("acp-zib2020")
            .is_some_and(|urls| urls.iter().any(|u| u == bare))
    }

    /// The concept a `meta.profile` canonical stands for (e.g. "treatment-directive"), whatever
    /// release base or rc1/rc2 name it uses.
    pub fn profile_concept(&self, url: &str) -> Option<&str> {
        let bare = url.split('|').next().unwrap_or(url);
        self.profile_bases
            .values()
            .flatten()
            .find_map(|base| bare.strip_prefix(base.as_str()))
            .and_then(|id| self.profile_ids.get(id))
            .map(String::as_str)
    }

    /// Whether `url` is one of the spellings of the named extension.
    pub fn is_extension(&self, name: &str, url: &str) -> bool {
        self.extensions.get(name).is_some_and(|urls| urls.iter().any(|u| u == url))
    }
}

impl Mappings {
    pub fn valueset(&self, name: &str) -> &ValueSet {
        // A missing value set is a build defect (the enums and the TOML disagree), caught by the unit
        // tests below; it can never depend on input.
        self.valuesets
            .get(name)
            .unwrap_or_else(|| panic!("mappings/valuesets.toml has no value set [{name}]"))
    }

    /// The free texts that stand for a coded answer inside `specificationOther` (see
    /// `[text-markers]` in valuesets.toml). The first is the one to write.
    pub fn text_markers(&self, name: &str) -> &[String] {
        self.text_markers
            .get(name)
            .map(Vec::as_slice)
            .unwrap_or_else(|| panic!("mappings/valuesets.toml has no [text-markers] {name}"))
    }

    /// Whether `text` is one of the named markers (case-insensitive, trimmed).
    /// Whether `text` is one of the marker texts `name`, as a person would write it: case, surrounding
    /// punctuation and runs of white space do not count ("Onbekend.", " onbekend ", "(Nog  onbekend)").
    pub fn is_text_marker(&self, name: &str, text: &str) -> bool {
        let t = marker_form(text);
        self.text_markers(name).iter().any(|m| marker_form(m) == t)
    }

    pub fn naming_system(&self, key: &str) -> &NamingSystem {
        self.naming_systems
            .get(key)
            .unwrap_or_else(|| panic!("mappings/naming-systems.toml has no [{key}]"))
    }

    /// The key of the naming system a URI belongs to ("bsn", "agb", ...).
    pub fn naming_system_key(&self, uri: &str) -> Option<&str> {
        self.naming_systems.iter().find(|(_, ns)| ns.matches(uri)).map(|(k, _)| k.as_str())
    }
}

/// The parsed tables. Parsing happens once, on first use.
pub fn get() -> &'static Mappings {
    static MAPPINGS: OnceLock<Mappings> = OnceLock::new();
    MAPPINGS.get_or_init(|| parse().expect("the embedded mappings/ files are valid (checked by tests)"))
}

fn parse() -> Result<Mappings, String> {
    let raw: toml::Table = toml::from_str(VALUESETS_TOML).map_err(|e| format!("valuesets.toml: {e}"))?;
    let mut version = String::new();
    let mut pzp_release = String::new();
    let mut valuesets = BTreeMap::new();
    let mut text_markers = BTreeMap::new();
    for (name, value) in raw {
        if name == "text-markers" {
            let table = value.as_table().ok_or("valuesets.toml: [text-markers] is not a table")?;
            for (k, v) in table {
                let list: Vec<String> = v.clone().try_into().map_err(|e| format!("valuesets.toml: [text-markers] {k}: {e}"))?;
                text_markers.insert(k.clone(), list);
            }
            continue;
        }
        if name == "meta" {
            let meta = value.as_table().ok_or("valuesets.toml: [meta] is not a table")?;
            version = meta.get("version").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
            pzp_release = meta.get("pzp_release").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
            continue;
        }
        let table = value.as_table().ok_or_else(|| format!("valuesets.toml: [{name}] is not a table"))?;
        let mut entries = Vec::new();
        for (key, entry) in table {
            let mut entry: Entry = entry
                .clone()
                .try_into()
                .map_err(|e| format!("valuesets.toml: [{name}] {key}: {e}"))?;
            entry.key = key.clone();
            entries.push(entry);
        }
        valuesets.insert(name.clone(), ValueSet { name, entries });
    }
    let naming_systems: BTreeMap<String, NamingSystem> =
        toml::from_str(NAMING_SYSTEMS_TOML).map_err(|e| format!("naming-systems.toml: {e}"))?;
    let canonicals: Canonicals = toml::from_str(CANONICALS_TOML).map_err(|e| format!("canonicals.toml: {e}"))?;
    Ok(Mappings { version, pzp_release, valuesets, text_markers, naming_systems, canonicals })
}

/// The comparable form of a marker text: lower case, white space runs as one space, no punctuation
/// around it.
fn marker_form(text: &str) -> String {
    let trimmed = text.trim_matches(|c: char| !c.is_alphanumeric());
    trimmed.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_tables_parse() {
        let m = parse().expect("mappings parse");
        assert!(!m.version.is_empty());
        assert!(m.valuesets.len() >= 15, "value sets: {:?}", m.valuesets.keys());
        assert_eq!(m.naming_system_key("http://fhir.nl/fhir/NamingSystem/bsn"), Some("bsn"));
    }

    #[test]
    fn goal_code_pitfall_is_mapped_both_ways() {
        let vs = get().valueset("medical-policy-goal");
        let by_fhir = vs.find(Some("http://snomed.info/sct"), "713148004").unwrap();
        let by_questionnaire = vs.find(Some("http://snomed.info/sct"), "225353007").unwrap();
        assert_eq!(by_fhir.key, "palliative-symptom-relief");
        assert_eq!(by_questionnaire.key, "palliative-symptom-relief");
        assert_eq!(by_fhir.questionnaire_coding().code, "225353007");
        assert_eq!(by_fhir.coding.code, "713148004");
    }

    #[test]
    fn no_two_entries_of_a_value_set_share_a_coding() {
        for vs in get().valuesets.values() {
            for (i, a) in vs.entries.iter().enumerate() {
                for b in &vs.entries[i + 1..] {
                    let sys = (!a.coding.system.is_empty()).then_some(a.coding.system.as_str());
                    assert!(
                        !b.matches(sys, &a.coding.code),
                        "[{}] {} and {} share {}#{}",
                        vs.name,
                        a.key,
                        b.key,
                        a.coding.system,
                        a.coding.code
                    );
                }
            }
        }
    }

    #[test]
    fn canonicals_accept_old_and_new_bases_and_names() {
        let c = &get().canonicals;
        assert!(c.is_acp_questionnaire("https://fhir.iknl.nl/fhir/Questionnaire/ACP-zib2020|0.1.3-beta3"));
        assert!(c.is_acp_questionnaire("https://api.iknl.nl/docs/pzp/r4/Questionnaire/ACP-zib2020"));
        assert!(!c.is_acp_questionnaire("https://example.org/Questionnaire/ACP-zib2020"));
        assert_eq!(
            c.profile_concept("https://fhir.iknl.nl/fhir/StructureDefinition/ACP-OtherImportantInformation"),
            Some("sense-of-purpose")
        );
        assert_eq!(
            c.profile_concept("https://api.iknl.nl/docs/pzp/r4/StructureDefinition/ACP-SenseOfPurpose|1.0.0-rc2"),
            Some("sense-of-purpose")
        );
        assert_eq!(
            c.profile_concept("http://nictiz.nl/fhir/StructureDefinition/nl-core-TreatmentDirective2"),
            Some("treatment-directive")
        );
    }
}
