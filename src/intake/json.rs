//! Strict JSON: serde_json's parser with one rule added, a key appears once in an object.
//!
//! JSON (RFC 8259) only says names *should* be unique, and serde_json keeps the last value of a
//! repeated key without a word. In a clinical document that is a silent change of meaning: a
//! resuscitation decision `"Niet uitvoeren"` followed by a second `"Wel uitvoeren"` for the same key
//! would hand over "perform". Every JSON the gateway takes from outside (the uniform record, FHIR JSON,
//! the QuestionnaireResponse, the HTTP bodies around them) is read here, and a repeated key is an error
//! that names its JSON pointer, line and column. The XML reader already refuses repeated elements where
//! FHIR allows one.
//!
//! It is serde_json's own tokenizer (and its nesting limit) driven through a [`DeserializeSeed`] that
//! builds the same [`Value`] serde_json would, so there is no second JSON parser to keep correct. The
//! path to the current value is a chain of borrowed segments on the stack: nothing is allocated for it
//! unless a duplicate is found.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a text is not acceptable JSON.
#[derive(Debug)]
pub struct JsonError {
    /// Where, as an RFC 6901 pointer, when the problem is a repeated key.
    pub pointer: Option<String>,
    pub line: usize,
    pub column: usize,
    /// serde_json's message (with its position) or the duplicate-key message.
    pub message: String,
    /// The nesting limit was reached: the input is too costly rather than malformed.
    pub too_deep: bool,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Marks the message of a duplicate-key error so that [`parse`] can tell it from serde_json's own.
const DUPLICATE: &str = "\u{0}duplicate\u{0}";

/// Parses `text` as JSON, refusing a key repeated in one object.
pub fn parse(text: &str) -> Result<Value, JsonError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let result = Strict { path: &Path::Root }.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    result.map_err(|e| {
        let (line, column) = (e.line(), e.column());
        let text = e.to_string();
        match text.strip_prefix(DUPLICATE) {
            Some(rest) => {
                // serde_json appends " at line L column C" to a custom message; the pointer comes first.
                let pointer = rest.split(DUPLICATE).next().unwrap_or_default().to_owned();
                JsonError {
                    message: format!(
                        "the key {pointer} appears more than once in its object (line {line}, column {column}); \
                         which value was meant cannot be known, so the document is refused"
                    ),
                    pointer: Some(pointer),
                    line,
                    column,
                    too_deep: false,
                }
            }
            None => JsonError { too_deep: text.contains("recursion limit"), message: text, pointer: None, line, column },
        }
    })
}

/// Parses bytes as JSON (UTF-8), refusing a repeated key.
pub fn parse_slice(bytes: &[u8]) -> Result<Value, JsonError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(text),
        Err(e) => {
            let offset = e.valid_up_to();
            let line = bytes[..offset].iter().filter(|b| **b == b'\n').count() + 1;
            Err(JsonError {
                pointer: None,
                line,
                column: 0,
                message: format!("the JSON is not UTF-8 (invalid byte at offset {offset})"),
                too_deep: false,
            })
        }
    }
}

/// The way from the document's root to the value being read.
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    /// The RFC 6901 pointer (`~` and `/` escaped).
    fn pointer(&self) -> String {
        match self {
            Path::Root => String::new(),
            Path::Key(parent, key) => format!("{}/{}", parent.pointer(), key.replace('~', "~0").replace('/', "~1")),
            Path::Index(parent, i) => format!("{}/{i}", parent.pointer()),
        }
    }
}

struct Strict<'a> {
    path: &'a Path<'a>,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // As serde_json's own Value: a finite float (JSON has no other).
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        loop {
            let path = Path::Index(self.path, items.len());
            match seq.next_element_seed(Strict { path: &path })? {
                Some(v) => items.push(v),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = {
                let path = Path::Key(self.path, &key);
                map.next_value_seed(Strict { path: &path })?
            };
            // One hash per key: the entry tells whether the key was there already.
            match object.entry(key) {
                serde_json::map::Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                serde_json::map::Entry::Occupied(slot) => {
                    let pointer = Path::Key(self.path, slot.key()).pointer();
                    return Err(de::Error::custom(format_args!("{DUPLICATE}{pointer}{DUPLICATE}")));
                }
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_value_as_serde_json() {
        let text = r#"{"a": [1, -2, 3.5, 1e400, true, null, "x\u00e9"], "b": {"c": {}}, "d": 18446744073709551615}"#;
        // 1e400 is out of range for both: serde_json refuses it, and so does the strict reader.
        assert!(serde_json::from_str::<Value>(text).is_err());
        assert!(parse(text).is_err());
        let text = r#"{"a": [1, -2, 3.5, 1e300, true, null, "x\u00e9"], "b": {"c": {}}, "d": 18446744073709551615}"#;
        assert_eq!(parse(text).unwrap(), serde_json::from_str::<Value>(text).unwrap());
    }

    #[test]
    fn a_repeated_key_is_refused_with_its_pointer() {
        let text = "{\"treatment_limits\": {\"cpr\": {\"decision\": \"Niet uitvoeren\",\n \"decision\": \"Wel uitvoeren\"}}}";
        let e = parse(text).unwrap_err();
        assert_eq!(e.pointer.as_deref(), Some("/treatment_limits/cpr/decision"));
        assert_eq!(e.line, 2);
        assert!(e.message.contains("/treatment_limits/cpr/decision"), "{}", e.message);
    }

    #[test]
    fn pointers_escape_and_count_array_items() {
        let e = parse(r#"{"entry": [{}, {"a/b~c": 1, "a/b~c": 2}]}"#).unwrap_err();
        assert_eq!(e.pointer.as_deref(), Some("/entry/1/a~1b~0c"));
    }

    #[test]
    fn the_same_key_in_different_objects_is_fine() {
        assert!(parse(r#"[{"a": 1}, {"a": 2}, {"b": {"a": 3}}]"#).is_ok());
    }

    #[test]
    fn nesting_limit_still_holds() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        let e = parse(&deep).unwrap_err();
        assert!(e.too_deep, "{}", e.message);
    }

    #[test]
    fn trailing_garbage_is_refused() {
        assert!(parse("{} x").is_err());
    }
}
