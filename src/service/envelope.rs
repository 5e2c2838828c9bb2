//! The body of `POST /v1/handovers`: the record in any input form, wrapped in who sends it to whom
//! and why (interface.md "HTTP API").
//!
//! Reading the envelope collects every problem with a JSON pointer into the body, like intake does for
//! the record, so one 422 answer lists everything that is wrong.

use serde_json::{Map, Value};

use crate::record::Bsn;
use crate::service::model::OrgId;
use crate::routing::{Channel, Context, Role};
use crate::validate::{IssueType, Location, Problem};

/// At most this many recipients in one handover (each becomes one or more routes).
pub const MAX_RECIPIENTS: usize = 50;

/// Which channel a recipient's `endpoints` member stands for.
const ENDPOINT_CHANNELS: [(&str, Channel); 4] =
    [("edifact", Channel::Edifact), ("email", Channel::SecureMail), ("fhir", Channel::Fhir), ("zorgdomein", Channel::Zorgdomein)];

const MEMBERS: [&str; 5] = ["record", "patient", "sender", "recipients", "context"];

/// The members a party (sender or recipient) may have, and those of its objects: what the routes and
/// the renderers read (`render::packaging::Party`). Anything else is refused with its pointer, as the
/// record's unknown members are: a typo such as `endpionts` would otherwise be dropped silently and,
/// with it, a channel the sender meant.
const PARTY_MEMBERS: [&str; 6] = ["role", "organization", "practitioner", "name", "address", "endpoints"];
const ORGANIZATION_MEMBERS: [&str; 3] = ["ura", "agb", "name"];
const PRACTITIONER_MEMBERS: [&str; 4] = ["agb", "uzi", "big", "name"];
const ENDPOINT_MEMBERS: [&str; 4] = ["edifact", "email", "fhir", "zorgdomein"];

#[derive(Debug, Clone)]
pub struct Envelope {
    /// The record's bytes as intake reads them: the JSON object or FHIR JSON re-serialised, or the
    /// FHIR XML string's text.
    pub record_bytes: Vec<u8>,
    /// Whether the record came as a JSON value (its problems' pointers are then relative to `/record`).
    pub record_is_json: bool,
    pub patient_bsn: Option<Bsn>,
    pub sender: Party,
    pub recipients: Vec<Party>,
    pub context: Context,
}

/// The sender or one recipient.
#[derive(Debug, Clone)]
pub struct Party {
    pub role: Role,
    pub organization: Option<OrgId>,
    /// For the sender: the practitioner on whose behalf the handover is sent (`agb:...`, `uzi:...`,
    /// `big:...`), NEN 7513's "verantwoordelijke gebruiker".
    pub practitioner: Option<String>,
    /// For a recipient: the channels it names an endpoint for (`endpoints.fhir` → `fhir`, ...), which
    /// the route table's "also offer" channels are matched against.
    pub accepted: Vec<Channel>,
    /// The member as sent, kept for the route (names, endpoints).
    pub raw: Value,
}

pub(crate) fn problem(kind: IssueType, pointer: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem::error(kind, Location::JsonPointer(pointer.into()), message)
}

/// Reads the envelope of an already parsed body. `caller_org` is the authenticated client's
/// organisation: a sender organisation, when given, must be it.
pub fn read(body: &Value, caller_org: &OrgId) -> Result<Envelope, Vec<Problem>> {
    let mut p = Vec::new();
    let Some(obj) = body.as_object() else {
        return Err(vec![problem(
            IssueType::Structure,
            "",
            "the body is a JSON object {\"record\", \"patient\", \"sender\", \"recipients\", \"context\"}",
        )]);
    };
    for k in obj.keys().filter(|k| !MEMBERS.contains(&k.as_str())) {
        p.push(problem(IssueType::NotSupported, format!("/{}", escape(k)), format!("unknown member `{k}` (expected one of {MEMBERS:?})")));
    }

    let (record_bytes, record_is_json) = match obj.get("record") {
        Some(Value::Object(_)) => (serde_json::to_vec(&obj["record"]).unwrap_or_default(), true),
        Some(Value::String(s)) => (s.clone().into_bytes(), false),
        Some(_) => {
            p.push(problem(IssueType::Structure, "/record", "`record` is the ACP record: a JSON object, or FHIR XML as a JSON string"));
            (Vec::new(), false)
        }
        None => {
            p.push(problem(IssueType::Required, "/record", "`record` is missing"));
            (Vec::new(), false)
        }
    };

    let patient_bsn = match obj.get("patient") {
        None | Some(Value::Null) => None,
        Some(Value::Object(pat)) => match pat.get("bsn") {
            None => None,
            Some(Value::String(s)) => match Bsn::parse(s) {
                Ok(b) => Some(b),
                Err(e) => {
                    p.push(problem(IssueType::Value, "/patient/bsn", e.to_string()));
                    None
                }
            },
            Some(_) => {
                p.push(problem(IssueType::Value, "/patient/bsn", "`bsn` is a string of 9 digits"));
                None
            }
        },
        Some(_) => {
            p.push(problem(IssueType::Structure, "/patient", "`patient` is an object {\"bsn\": ...}"));
            None
        }
    };

    let sender = match obj.get("sender") {
        Some(Value::Object(s)) => party(s, "/sender", true, &mut p),
        Some(_) => {
            p.push(problem(IssueType::Structure, "/sender", "`sender` is an object {\"role\", \"organization\", \"practitioner\"}"));
            None
        }
        None => {
            p.push(problem(IssueType::Required, "/sender", "`sender` is missing"));
            None
        }
    };
    if let Some(s) = &sender {
        if let Some(org) = &s.organization {
            if org != caller_org {
                p.push(problem(
                    IssueType::Invariant,
                    "/sender/organization",
                    format!("the sender organisation {org} is not the organisation of the authenticated client ({caller_org})"),
                ));
            }
        }
    }

    let mut recipients = Vec::new();
    match obj.get("recipients") {
        Some(Value::Array(list)) if list.is_empty() => {
            p.push(problem(IssueType::Required, "/recipients", "`recipients` lists at least one recipient"))
        }
        Some(Value::Array(list)) if list.len() > MAX_RECIPIENTS => p.push(problem(
            IssueType::TooCostly,
            "/recipients",
            format!("at most {MAX_RECIPIENTS} recipients per handover; got {}", list.len()),
        )),
        Some(Value::Array(list)) => {
            for (i, r) in list.iter().enumerate() {
                let ptr = format!("/recipients/{i}");
                match r {
                    Value::Object(o) => recipients.extend(party(o, &ptr, false, &mut p)),
                    _ => p.push(problem(IssueType::Structure, ptr, "a recipient is an object {\"role\", \"organization\", \"name\", \"endpoints\"}")),
                }
            }
        }
        Some(_) => p.push(problem(IssueType::Structure, "/recipients", "`recipients` is an array")),
        None => p.push(problem(IssueType::Required, "/recipients", "`recipients` is missing")),
    }

    let context = match obj.get("context") {
        Some(Value::String(s)) => match s.parse::<Context>() {
            Ok(c) => Some(c),
            Err(_) => {
                p.push(problem(IssueType::CodeInvalid, "/context", format!("unknown context {s:?}; one of {}", names(Context::ALL))));
                None
            }
        },
        Some(_) => {
            p.push(problem(IssueType::Value, "/context", "`context` is a string"));
            None
        }
        None => {
            p.push(problem(IssueType::Required, "/context", format!("`context` is missing; one of {}", names(Context::ALL))));
            None
        }
    };

    match (sender, context) {
        (Some(sender), Some(context)) if p.is_empty() => {
            Ok(Envelope { record_bytes, record_is_json, patient_bsn, sender, recipients, context })
        }
        _ => Err(p),
    }
}

fn names<T: std::fmt::Display>(all: &[T]) -> String {
    all.iter().map(|x| format!("`{x}`")).collect::<Vec<_>>().join(", ")
}

/// RFC 6901 escaping of one reference token.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// One problem per member of `o` that `known` does not list.
fn unknown_members(o: &Map<String, Value>, known: &[&str], ptr: &str, what: &str, p: &mut Vec<Problem>) {
    for k in o.keys().filter(|k| !known.contains(&k.as_str())) {
        p.push(problem(IssueType::NotSupported, format!("{ptr}/{}", escape(k)), format!("unknown member `{k}` of {what} (expected one of {known:?})")));
    }
}

fn party(o: &Map<String, Value>, ptr: &str, is_sender: bool, p: &mut Vec<Problem>) -> Option<Party> {
    let before = p.len();
    let what = if is_sender { "the sender" } else { "a recipient" };
    unknown_members(o, &PARTY_MEMBERS, ptr, what, p);
    for (member, known) in [("organization", &ORGANIZATION_MEMBERS[..]), ("practitioner", &PRACTITIONER_MEMBERS), ("endpoints", &ENDPOINT_MEMBERS)] {
        if let Some(Value::Object(inner)) = o.get(member) {
            unknown_members(inner, known, &format!("{ptr}/{member}"), &format!("`{member}`"), p);
        }
    }
    let role = match o.get("role") {
        Some(Value::String(s)) => s.parse::<Role>().map_err(|_| {
            p.push(problem(IssueType::CodeInvalid, format!("{ptr}/role"), format!("unknown role {s:?}; one of {}", names(Role::ALL))))
        }),
        Some(_) => {
            p.push(problem(IssueType::Value, format!("{ptr}/role"), "`role` is a string"));
            Err(())
        }
        None => {
            p.push(problem(IssueType::Required, format!("{ptr}/role"), format!("`role` is missing; one of {}", names(Role::ALL))));
            Err(())
        }
    };
    let organization = match o.get("organization") {
        None | Some(Value::Null) => None,
        Some(Value::Object(org)) => {
            let ura = org.get("ura").map(|v| (v, "ura"));
            let agb = org.get("agb").map(|v| (v, "agb"));
            match (ura, agb) {
                (Some((v, k)), None) | (None, Some((v, k))) => {
                    let raw = v.as_str().unwrap_or("");
                    let parsed = if k == "ura" { OrgId::ura(raw) } else { OrgId::agb(raw) };
                    match parsed {
                        Ok(id) => Some(id),
                        Err(e) => {
                            p.push(problem(IssueType::Value, format!("{ptr}/organization/{k}"), e));
                            None
                        }
                    }
                }
                (Some(_), Some(_)) => {
                    p.push(problem(IssueType::Invariant, format!("{ptr}/organization"), "give one of `ura` or `agb`, not both"));
                    None
                }
                (None, None) => {
                    p.push(problem(IssueType::Required, format!("{ptr}/organization"), "an organisation is identified by `ura` or `agb`"));
                    None
                }
            }
        }
        Some(_) => {
            p.push(problem(IssueType::Structure, format!("{ptr}/organization"), "`organization` is an object {\"ura\"|\"agb\", \"name\"}"));
            None
        }
    };
    let mut practitioner = None;
    if is_sender {
        if let Some(pr) = o.get("practitioner") {
            match pr.as_object() {
                Some(m) => {
                    practitioner = ["agb", "uzi", "big"].into_iter().find_map(|k| {
                        m.get(k).and_then(Value::as_str).filter(|s| !s.trim().is_empty()).map(|v| format!("{k}:{}", v.trim()))
                    });
                    if practitioner.is_none() {
                        p.push(problem(IssueType::Required, format!("{ptr}/practitioner"), "a practitioner is identified by `agb`, `uzi` or `big`"));
                    }
                }
                None => p.push(problem(IssueType::Structure, format!("{ptr}/practitioner"), "`practitioner` is an object")),
            }
        }
    }
    let mut accepted = Vec::new();
    if !is_sender {
        match o.get("endpoints") {
            None | Some(Value::Null) => {}
            Some(Value::Object(eps)) => {
                for (k, v) in eps {
                    if !v.is_string() {
                        p.push(problem(IssueType::Value, format!("{ptr}/endpoints/{}", escape(k)), "an endpoint is a string"));
                    }
                }
                accepted = ENDPOINT_CHANNELS
                    .iter()
                    .filter(|(k, _)| eps.get(*k).and_then(Value::as_str).is_some_and(|s| !s.trim().is_empty()))
                    .map(|(_, ch)| *ch)
                    .collect();
            }
            Some(_) => p.push(problem(IssueType::Structure, format!("{ptr}/endpoints"), "`endpoints` is an object")),
        }
    }
    match role {
        Ok(role) if p.len() == before => {
            Some(Party { role, organization, practitioner, accepted, raw: Value::Object(o.clone()) })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn org() -> OrgId {
        OrgId::ura("12345678").unwrap()
    }

    #[test]
    fn every_problem_is_listed() {
        let body = json!({"record": 5, "patient": {"bsn": "123"}, "sender": {"role": "chirurg"},
                          "recipients": [{"role": "huisarts", "organization": {"ura": "x"}}], "context": "holiday", "extra": 1});
        let problems = read(&body, &org()).unwrap_err();
        let pointers: Vec<String> = problems.iter().map(|p| p.location.to_string()).collect();
        for expected in ["/extra", "/record", "/patient/bsn", "/sender/role", "/recipients/0/organization/ura", "/context"] {
            assert!(pointers.iter().any(|p| p == expected), "{expected} in {pointers:?}");
        }
    }

    #[test]
    fn unknown_party_members_are_refused_with_their_pointer() {
        let body = json!({"record": {}, "sender": {"role": "huisarts", "orgnization": {"ura": "12345678"}},
                          "recipients": [{"role": "wijkverpleging", "endpionts": {"fhir": "https://x.example/fhir"}},
                                         {"role": "wijkverpleging", "endpoints": {"fihr": "https://x.example/fhir"},
                                          "organization": {"ura": "12345678", "naam": "X"}}],
                          "context": "regular"});
        let problems = read(&body, &org()).unwrap_err();
        let mut pointers: Vec<String> = problems.iter().map(|p| p.location.to_string()).collect();
        pointers.sort();
        assert_eq!(
            pointers,
            ["/recipients/0/endpionts", "/recipients/1/endpoints/fihr", "/recipients/1/organization/naam", "/sender/orgnization"],
            "{problems:#?}"
        );
    }

    #[test]
    fn sender_organisation_must_be_the_callers() {
        let body = json!({"record": {}, "sender": {"role": "huisarts", "organization": {"ura": "87654321"}},
                          "recipients": [{"role": "wijkverpleging"}], "context": "regular"});
        let problems = read(&body, &org()).unwrap_err();
        assert_eq!(problems[0].location.to_string(), "/sender/organization");
    }
}
