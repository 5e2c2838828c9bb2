//! Length limits on every text field, so that no single request can make rendering (or storing) slow.
//!
//! The limits are data (`mappings/field-limits.toml`, one table for the record and the envelope); this
//! module applies them. The record is checked after intake, on the record itself (its `Serialize` is
//! the uniform record JSON), so one check covers all three input forms and locates each problem in
//! the input's own terms through the caller's `locate`. The envelope (`sender`, `recipients`) is
//! checked on the request body, with JSON pointers into it.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

use crate::record::AcpRecord;
use crate::validate::{IssueType, Location, Problem};

const FIELD_LIMITS_TOML: &str = include_str!("../../mappings/field-limits.toml");

/// The limits of one document (the record, or the envelope).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// For a string field not in `fields`.
    pub default: usize,
    /// All strings together, except the members in `total_excludes`.
    pub total: usize,
    pub total_excludes: Vec<String>,
    /// By member name (the last member of the JSON pointer, array indices skipped).
    pub fields: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldLimits {
    pub record: Limits,
    pub envelope: Limits,
}

/// The table, parsed once.
pub fn table() -> &'static FieldLimits {
    static TABLE: OnceLock<FieldLimits> = OnceLock::new();
    TABLE.get_or_init(|| toml::from_str(FIELD_LIMITS_TOML).expect("mappings/field-limits.toml is valid (unit-tested)"))
}

impl Limits {
    /// The limit of a field, by its member name.
    pub fn of(&self, member: &str) -> usize {
        self.fields.get(member).copied().unwrap_or(self.default)
    }

    /// Every string in `value` over its limit, then the total; `pointer` is `value`'s own pointer.
    fn check(&self, value: &Value, pointer: &str, what: &str, out: &mut Vec<(String, String)>) {
        let mut total = 0usize;
        walk(value, pointer, None, &mut |ptr, member, s| {
            // Counted only as far as the limit needs: a 16 MiB string costs no more than the limit.
            let member = member.unwrap_or("");
            let limit = self.of(member);
            let n = s.chars().take(limit.saturating_add(1)).count();
            if n > limit {
                out.push((ptr.to_owned(), format!("this text is longer than the {limit} characters the gateway accepts here ({what}; mappings/field-limits.toml)")));
            }
            if !self.total_excludes.iter().any(|x| x == member) {
                total = total.saturating_add(n);
            }
        });
        if total > self.total {
            out.push((
                pointer.to_owned(),
                format!("the texts of the {what} together are longer than the {} characters the gateway accepts (mappings/field-limits.toml)", self.total),
            ));
        }
    }
}

/// Calls `f(pointer, member, text)` for every string under `value`.
fn walk(value: &Value, pointer: &str, member: Option<&str>, f: &mut dyn FnMut(&str, Option<&str>, &str)) {
    match value {
        Value::String(s) => f(pointer, member, s),
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, &format!("{pointer}/{i}"), member, f);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                walk(v, &format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1")), Some(k), f);
            }
        }
        _ => {}
    }
}

fn too_long(location: Location, message: String) -> Problem {
    Problem::error(IssueType::TooCostly, location, message)
}

/// The record's fields over their limits, located by `locate` (a record pointer into the input's terms).
pub fn check_record(record: &AcpRecord, locate: &dyn Fn(&str) -> Location) -> Vec<Problem> {
    let Ok(value) = serde_json::to_value(record) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    table().record.check(&value, "", "record", &mut found);
    found.into_iter().map(|(ptr, msg)| too_long(locate(&ptr), msg)).collect()
}

/// The envelope's parties' fields over their limits, with JSON pointers into the request body.
pub fn check_envelope(body: &Value) -> Vec<Problem> {
    let limits = &table().envelope;
    let mut found = Vec::new();
    for member in ["sender", "recipients"] {
        if let Some(v) = body.get(member) {
            limits.check(v, &format!("/{member}"), member, &mut found);
        }
    }
    found.into_iter().map(|(ptr, msg)| too_long(Location::JsonPointer(ptr), msg)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_table_parses_and_names_are_bounded() {
        let t = table();
        assert_eq!(t.record.of("family"), 200);
        assert_eq!(t.record.of("explanation"), t.record.default);
        assert!(t.record.total < crate::intake::MAX_INPUT_BYTES);
    }

    #[test]
    fn a_long_envelope_name_is_located() {
        let long = "x".repeat(201);
        let body = json!({"sender": {"role": "huisarts"}, "recipients": [{"role": "huisarts", "name": long}]});
        let p = check_envelope(&body);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].location, Location::JsonPointer("/recipients/0/name".into()));
        assert_eq!(p[0].issue_type, IssueType::TooCostly);
    }

    #[test]
    fn limits_count_characters_not_bytes() {
        let mut r = AcpRecord::default();
        r.patient.name.family = Some("é".repeat(200));
        assert!(check_record(&r, &|p| Location::JsonPointer(p.into())).is_empty());
        r.patient.name.family = Some("é".repeat(201));
        let p = check_record(&r, &|p| Location::JsonPointer(p.into()));
        assert_eq!(p[0].location, Location::JsonPointer("/patient/name/family".into()));
    }

    /// The schema documents the table: every `maxLength` of a member equals its limit, and every
    /// text field of the record has one.
    #[test]
    fn the_schema_documents_every_limit() {
        let schema: Value = serde_json::from_str(include_str!("../../mappings/acp-record.schema.json")).unwrap();
        let t = &table().record;
        let text_max = schema.pointer("/$defs/text/maxLength").and_then(Value::as_u64);
        assert_eq!(text_max, Some(t.default as u64), "$defs/text carries the default limit");
        let mut checked = 0;
        walk_schema(&schema, None, &mut |member, node| {
            if let Some(max) = node.get("maxLength").and_then(Value::as_u64) {
                assert_eq!(max as usize, t.of(member), "maxLength of `{member}`");
                checked += 1;
            }
        });
        assert!(checked >= 10, "only {checked} maxLength found");
    }

    fn walk_schema(node: &Value, member: Option<&str>, f: &mut dyn FnMut(&str, &Value)) {
        match node {
            Value::Object(map) => {
                if let Some(m) = member {
                    f(m, node);
                }
                for (k, v) in map {
                    match k.as_str() {
                        "properties" => {
                            for (name, prop) in v.as_object().into_iter().flatten() {
                                walk_schema(prop, Some(name), f);
                            }
                        }
                        // A `$defs` entry is no member: its own maxLength is checked above (`text`).
                        "$defs" => {
                            for d in v.as_object().into_iter().flat_map(|m| m.values()) {
                                walk_schema(d, None, f);
                            }
                        }
                        _ => walk_schema(v, member, f),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk_schema(v, member, f)),
            _ => {}
        }
    }
}
