//! A reader over parsed JSON that records every problem with its location and keeps going.
//!
//! serde's derive stops at the first error; an integrator fixing a message wants all of them at once.
//! Every intake form walks its input with this cursor: it asks for a field, gets `Some(value)` or
//! `None`, and any mismatch (wrong type, bad code, bad BSN) is pushed to the shared [`Problems`] with
//! the exact location. Fields nobody asked for are reported by [`Obj::finish`], so nothing is dropped
//! silently.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::rc::Rc;

use serde_json::{Map, Value};

use crate::record::{Coded, FhirDate};
use crate::validate::{IssueType, Location, Problem, Severity};

/// How locations are written: JSON pointers for the uniform record, FHIRPath for FHIR resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathStyle {
    Pointer,
    FhirPath,
}

#[derive(Debug, PartialEq, Eq)]
enum Seg {
    Key(Box<str>),
    Index(usize),
    /// A FHIRPath filter such as `where(linkId='1386')`, written as is.
    Raw(Box<str>),
    /// The filter `where(linkId='…')` for this linkId: kept as the bare linkId, because every item
    /// gets a path and almost none is ever written out.
    Link(Box<str>),
}

/// One step of a [`Path`], linked to the step before it. Paths are built for every element walked but
/// written out only for the few that have a problem, so a step shares its parent instead of copying it.
#[derive(Debug, PartialEq, Eq)]
struct Step {
    parent: Option<Rc<Step>>,
    seg: Seg,
}

/// A location inside the input, built up while walking it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    style: PathStyle,
    /// For FHIRPath: the root resource type ("Consent").
    root: Rc<str>,
    last: Option<Rc<Step>>,
}

impl Path {
    pub fn pointer() -> Path {
        Path { style: PathStyle::Pointer, root: Rc::from(""), last: None }
    }

    pub fn fhir(root: &str) -> Path {
        Path { style: PathStyle::FhirPath, root: Rc::from(root), last: None }
    }

    fn then(&self, seg: Seg) -> Path {
        Path { style: self.style, root: Rc::clone(&self.root), last: Some(Rc::new(Step { parent: self.last.clone(), seg })) }
    }

    pub fn key(&self, k: &str) -> Path {
        self.then(Seg::Key(k.into()))
    }

    pub fn index(&self, i: usize) -> Path {
        self.then(Seg::Index(i))
    }

    /// Appends a raw FHIRPath step (ignored in pointer style, where it has no meaning).
    pub fn raw(&self, step: &str) -> Path {
        self.then(Seg::Raw(step.into()))
    }

    /// Appends the FHIRPath filter for a linkId ([`where_link`]; ignored in pointer style).
    pub fn link(&self, link: &str) -> Path {
        self.then(Seg::Link(link.into()))
    }

    pub fn location(&self) -> Location {
        let mut segs = Vec::new();
        let mut at = self.last.as_deref();
        while let Some(step) = at {
            segs.push(&step.seg);
            at = step.parent.as_deref();
        }
        segs.reverse();
        match self.style {
            PathStyle::Pointer => {
                let mut s = String::new();
                for seg in segs {
                    match seg {
                        Seg::Key(k) => {
                            let _ = write!(s, "/{}", k.replace('~', "~0").replace('/', "~1"));
                        }
                        Seg::Index(i) => {
                            let _ = write!(s, "/{i}");
                        }
                        Seg::Raw(_) | Seg::Link(_) => {}
                    }
                }
                Location::JsonPointer(s)
            }
            PathStyle::FhirPath => {
                let mut s = self.root.to_string();
                for seg in segs {
                    match seg {
                        Seg::Key(k) => {
                            let _ = write!(s, ".{k}");
                        }
                        Seg::Index(i) => {
                            let _ = write!(s, "[{i}]");
                        }
                        Seg::Raw(r) => {
                            let _ = write!(s, ".{r}");
                        }
                        Seg::Link(l) => {
                            let _ = write!(s, ".{}", where_link(l));
                        }
                    }
                }
                Location::FhirPath(s)
            }
        }
    }
}

/// The FHIRPath filter for a linkId (a quote in a received linkId is escaped, so the path stays valid).
pub fn where_link(link: &str) -> String {
    format!("where(linkId='{}')", link.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The problems found so far in one input.
#[derive(Debug, Default)]
pub struct Problems {
    pub list: Vec<Problem>,
}

impl Problems {
    pub fn push(&mut self, severity: Severity, kind: IssueType, at: &Path, message: impl Into<String>) {
        self.list.push(Problem::new(severity, kind, at.location(), message));
    }

    pub fn error(&mut self, kind: IssueType, at: &Path, message: impl Into<String>) {
        self.push(Severity::Error, kind, at, message);
    }

    pub fn warning(&mut self, kind: IssueType, at: &Path, message: impl Into<String>) {
        self.push(Severity::Warning, kind, at, message);
    }
}

/// The JSON type of a value, for messages ("expected a string, got a number").
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON object being read: remembers which keys were read so the rest can be reported.
pub struct Obj<'a> {
    pub map: &'a Map<String, Value>,
    pub path: Path,
    /// The keys read so far; objects have few keys, so a list is quicker than a set.
    seen: RefCell<Vec<&'a str>>,
}

impl<'a> Obj<'a> {
    /// Reads `v` as an object; reports and returns `None` when it is not one.
    pub fn new(v: &'a Value, path: Path, p: &mut Problems) -> Option<Obj<'a>> {
        match v {
            Value::Object(map) => Some(Obj { map, path, seen: RefCell::new(Vec::new()) }),
            other => {
                p.error(IssueType::Value, &path, format!("expected an object, got {}", type_name(other)));
                None
            }
        }
    }

    pub fn at(&self, key: &str) -> Path {
        self.path.key(key)
    }

    /// The raw value of `key`, marking it read. JSON `null` counts as absent.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        let (k, v) = self.map.get_key_value(key)?;
        self.mark(k);
        (!v.is_null()).then_some(v)
    }

    /// Marks a key as read without reading it (for keys handled elsewhere or deliberately ignored).
    pub fn skip(&self, key: &str) {
        if let Some((k, _)) = self.map.get_key_value(key) {
            self.mark(k);
        }
    }

    fn mark(&self, k: &'a str) {
        let mut seen = self.seen.borrow_mut();
        if !seen.contains(&k) {
            seen.push(k);
        }
    }

    pub fn obj(&self, key: &str, p: &mut Problems) -> Option<Obj<'a>> {
        self.get(key).and_then(|v| Obj::new(v, self.at(key), p))
    }

    /// A string; empty or whitespace-only strings count as absent (with a warning), since every
    /// consumer would have to treat them as "not recorded" anyway.
    pub fn str(&self, key: &str, p: &mut Problems) -> Option<String> {
        match self.get(key)? {
            Value::String(s) if s.trim().is_empty() => {
                p.warning(IssueType::Value, &self.at(key), "empty text is treated as not recorded");
                None
            }
            Value::String(s) => Some(s.clone()),
            other => {
                p.error(IssueType::Value, &self.at(key), format!("expected a string, got {}", type_name(other)));
                None
            }
        }
    }

    pub fn bool(&self, key: &str, p: &mut Problems) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            other => {
                p.error(IssueType::Value, &self.at(key), format!("expected true or false, got {}", type_name(other)));
                None
            }
        }
    }

    pub fn array(&self, key: &str, p: &mut Problems) -> Option<&'a Vec<Value>> {
        match self.get(key)? {
            Value::Array(a) => Some(a),
            other => {
                p.error(IssueType::Value, &self.at(key), format!("expected an array, got {}", type_name(other)));
                None
            }
        }
    }

    /// A coded answer given by its key (the uniform JSON token).
    pub fn coded<T: Coded>(&self, key: &str, p: &mut Problems) -> Option<T> {
        let at = self.at(key);
        let raw = self.str(key, p)?;
        coded_from_key(&raw, &at, p)
    }

    /// A FHIR date / dateTime.
    pub fn date(&self, key: &str, p: &mut Problems) -> Option<FhirDate> {
        let raw = self.str(key, p)?;
        match FhirDate::parse(&raw) {
            Ok(d) => Some(d),
            Err(e) => {
                p.error(IssueType::Value, &self.at(key), e.to_string());
                None
            }
        }
    }

    /// Reports every key that was not read: an element the gateway does not understand must not
    /// vanish without a word.
    pub fn finish(self, p: &mut Problems, severity: Severity) {
        let seen = self.seen.into_inner();
        for key in self.map.keys() {
            if !seen.contains(&key.as_str()) {
                p.push(
                    severity,
                    IssueType::NotSupported,
                    &self.path.key(key),
                    format!("unknown element '{key}' (not part of this form); check its spelling"),
                );
            }
        }
    }
}

/// Resolves a uniform-JSON token to a coded answer, listing the allowed tokens when it is unknown.
pub fn coded_from_key<T: Coded>(raw: &str, at: &Path, p: &mut Problems) -> Option<T> {
    match T::from_key(raw) {
        Some(v) => Some(v),
        None => {
            let allowed = T::ALL.iter().map(|v| v.key()).collect::<Vec<_>>().join(", ");
            p.error(IssueType::CodeInvalid, at, format!("'{raw}' is not an allowed answer; use one of: {allowed}"));
            None
        }
    }
}

/// Resolves a FHIR Coding (`{system, code}` object) to a coded answer; unknown codes are reported
/// with the value set's allowed codings.
pub fn coded_from_coding<T: Coded>(coding: &Value, at: &Path, p: &mut Problems) -> Option<T> {
    let Some(obj) = coding.as_object() else {
        p.error(IssueType::Value, at, format!("expected a Coding object, got {}", type_name(coding)));
        return None;
    };
    let system = obj.get("system").and_then(Value::as_str);
    let Some(code) = obj.get("code").and_then(Value::as_str) else {
        p.error(IssueType::Required, &at.key("code"), "the coding has no code");
        return None;
    };
    match T::from_coding(system, code) {
        Some(v) => Some(v),
        None => {
            let vs = crate::mappings::get().valueset(T::VALUE_SET);
            p.error(
                IssueType::CodeInvalid,
                at,
                format!(
                    "code {}#{code} is not in the value set for this item; allowed: {}",
                    system.unwrap_or("(no system)"),
                    vs.describe_allowed()
                ),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::YesNoUnknown;
    use serde_json::json;

    #[test]
    fn reports_every_problem_and_unknown_keys() {
        let v = json!({"a": 1, "b": "yes", "c": "perhaps", "typo": true});
        let mut p = Problems::default();
        let o = Obj::new(&v, Path::pointer(), &mut p).unwrap();
        assert_eq!(o.str("a", &mut p), None);
        assert_eq!(o.coded::<YesNoUnknown>("b", &mut p), Some(YesNoUnknown::Yes));
        assert_eq!(o.coded::<YesNoUnknown>("c", &mut p), None);
        o.finish(&mut p, Severity::Error);
        let locs: Vec<String> = p.list.iter().map(|x| x.location.to_string()).collect();
        assert_eq!(locs, ["/a", "/c", "/typo"]);
    }

    #[test]
    fn fhirpath_locations() {
        let path = Path::fhir("QuestionnaireResponse").key("item").index(3).raw("where(linkId='1386')");
        assert_eq!(path.location().to_string(), "QuestionnaireResponse.item[3].where(linkId='1386')");
        assert_eq!(Path::pointer().key("a/b").index(0).location().to_string(), "/a~1b/0");
    }
}
