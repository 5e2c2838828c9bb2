//! FHIR XML <-> FHIR JSON, so that every FHIR reader and writer works on one form.
//!
//! [`parse`] turns FHIR R4 XML into the FHIR JSON value the same resource has in JSON, following the R4
//! rules of <https://hl7.org/fhir/R4/xml.html> and <https://hl7.org/fhir/R4/json.html>:
//! - the root element names the resource type (`resourceType` in JSON); elements are in the FHIR
//!   namespace `http://hl7.org/fhir`;
//! - a primitive is `<name value="..."/>`; its `id` attribute and `extension` children become the JSON
//!   `_name` object (for repeating primitives the `_name` array runs in step with the values, `null`
//!   where an item has none);
//! - `id` on an element and `url` on an extension are attributes in XML and members in JSON;
//! - the narrative `div` (XHTML namespace) is kept as its XHTML source text, byte for byte;
//! - a nested resource (`contained`, `Bundle.entry.resource`, ...) is the single child element of its
//!   container, recognised by its upper-case name (every FHIR element name starts lower-case);
//! - XML does not say which elements repeat, or which primitives are booleans or numbers. Both come from
//!   the tables in [`shape`], the one place that knows them for the resources in scope.
//!
//! Hostile input costs nothing: a DOCTYPE (which FHIR XML forbids) is refused with
//! [`IssueType::Security`] before anything in it is looked at, so external entities and entity-expansion
//! bombs are never expanded (quick-xml itself never expands DTD entities either); nesting deeper than
//! [`MAX_DEPTH`] elements is refused as [`IssueType::TooCostly`]; malformed XML is
//! [`IssueType::Structure`] with the line and column. Nothing here panics on input.
//!
//! [`write`] is the reverse, for the FHIR XML output. Decimals travel as JSON numbers (`f64`), so a
//! decimal's trailing zeros (`1.50`) are not kept; no element of the ACP profiles is a decimal.

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;
use serde_json::{Map, Value};

use crate::validate::IssueType;

/// The FHIR namespace every FHIR element lives in.
pub const FHIR_NS: &str = "http://hl7.org/fhir";
/// The XHTML namespace of the narrative `div`.
pub const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";
/// Deepest element nesting accepted. The deepest ACP resource (an extension inside a primitive inside a
/// coding of a Bundle entry) is under 15 levels; 64 leaves room for any real FHIR and none for abuse.
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError {
    pub kind: IssueType,
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub message: String,
}

/// Which elements repeat and which primitives are typed, for the FHIR R4 resources the gateway meets.
///
/// An element name alone usually decides (`extension` always repeats, `birthDate` never does). Where the
/// same name repeats in one place and not in another, the entry is qualified:
/// - `"Patient.name"`: a direct child of a resource of that type (upper-case first segment);
/// - `"provision.actor"`: a child of an element with that name (lower-case first segment).
pub mod shape {
    /// Elements that are arrays in FHIR JSON (max > 1 in R4).
    pub const ARRAYS: &[&str] = &[
        // Everywhere.
        "extension",
        "modifierExtension",
        "coding",
        "given",
        "prefix",
        "suffix",
        "line",
        "telecom",
        "contained",
        "profile",
        "tag",
        "security",
        "entry",
        "link",
        "item",
        "answer",
        "note",
        "reasonCode",
        "reasonReference",
        "specialty",
        "policy",
        "contact",
        "participant",
        "recipient",
        "basedOn",
        "derivedFrom",
        "hasMember",
        "component",
        "interpretation",
        "referenceRange",
        "addresses",
        "outcomeCode",
        "outcomeReference",
        "payload",
        "medium",
        "about",
        "replaces",
        "inResponseTo",
        "instantiatesCanonical",
        "instantiatesUri",
        "udiCarrier",
        "deviceName",
        "statusHistory",
        "classHistory",
        "episodeOfCare",
        "diagnosis",
        "account",
        "appointment",
        "qualification",
        "generalPractitioner",
        "photo",
        "availableTime",
        "notAvailable",
        "daysOfWeek",
        "endpoint",
        "healthcareService",
        "agent",
        "entity",
        "alias",
        "event",
        // Only in some places.
        "Patient.name",
        "Practitioner.name",
        "RelatedPerson.name",
        "Person.name",
        "Patient.address",
        "Practitioner.address",
        "RelatedPerson.address",
        "Organization.address",
        "Person.address",
        "Patient.communication",
        "Practitioner.communication",
        "RelatedPerson.communication",
        "RelatedPerson.relationship",
        "contact.relationship",
        "Encounter.type",
        "Organization.type",
        "Location.type",
        "HealthcareService.type",
        "participant.type",
        "signature.type",
        "Encounter.location",
        "PractitionerRole.location",
        "HealthcareService.location",
        "PractitionerRole.code",
        "Questionnaire.code",
        "item.code",
        "Observation.category",
        "Goal.category",
        "Consent.category",
        "CommunicationRequest.category",
        "Communication.category",
        "Condition.category",
        "Composition.category",
        "CarePlan.category",
        "DocumentReference.category",
        "DiagnosticReport.category",
        "ServiceRequest.category",
        "CareTeam.category",
        "Flag.category",
        "Observation.performer",
        "Procedure.performer",
        "Consent.performer",
        "DiagnosticReport.performer",
        "ServiceRequest.performer",
        "Observation.focus",
        "Observation.partOf",
        "Procedure.partOf",
        "Communication.partOf",
        "Procedure.bodySite",
        "Condition.bodySite",
        "Procedure.report",
        "Procedure.complication",
        "Procedure.complicationDetail",
        "Procedure.followUp",
        "Procedure.focalDevice",
        "Procedure.usedReference",
        "Procedure.usedCode",
        "Goal.target",
        "Provenance.target",
        "Provenance.signature",
        "QuestionnaireResponse.partOf",
        "qualification.identifier",
        "Provenance.reason",
        "agent.role",
        "Consent.organization",
        "Consent.verification",
        "Device.version",
        "Device.property",
        "Device.specialization",
        "Device.safety",
        "Device.statusReason",
        "hospitalization.dietPreference",
        "hospitalization.specialCourtesy",
        "hospitalization.specialArrangement",
        "repeat.dayOfWeek",
        "repeat.timeOfDay",
        "repeat.when",
        // Consent.provision: the top provision is single, the nested ones repeat, and so do these.
        "provision.provision",
        "provision.actor",
        "provision.code",
        "provision.action",
        "provision.securityLabel",
        "provision.purpose",
        "provision.class",
        "provision.data",
        "Patient.identifier",
        "Practitioner.identifier",
        "PractitionerRole.identifier",
        "RelatedPerson.identifier",
        "Organization.identifier",
        "Encounter.identifier",
        "Procedure.identifier",
        "Consent.identifier",
        "Goal.identifier",
        "Observation.identifier",
        "DeviceUseStatement.identifier",
        "Device.identifier",
        "CommunicationRequest.identifier",
        "Communication.identifier",
        "Condition.identifier",
        "Location.identifier",
        "HealthcareService.identifier",
        "Endpoint.identifier",
        "DocumentReference.identifier",
        "CarePlan.identifier",
        "CareTeam.identifier",
        "Person.identifier",
        "ServiceRequest.identifier",
        "DiagnosticReport.identifier",
        "Questionnaire.identifier",
        "Flag.identifier",
    ];

    /// Primitive elements whose JSON value is `true` / `false`.
    const BOOLEANS: &[&str] = &[
        "active",
        "preferred",
        "doNotPerform",
        "allDay",
        "experimental",
        "immutable",
        "inactive",
        "abstract",
        "primarySource",
        "required",
        "repeats",
        "readOnly",
        "mustSupport",
        "isModifier",
        "isSummary",
        "multipleAnd",
        "multipleOr",
        "lockedDate",
        "actual",
        "exclude",
        "selected",
    ];

    /// Primitive elements whose JSON value is a number (integer, decimal, positiveInt, unsignedInt).
    const NUMBERS: &[&str] = &[
        "rank",
        "count",
        "countMax",
        "frequency",
        "frequencyMax",
        "duration",
        "durationMax",
        "period",
        "periodMax",
        "offset",
        "size",
        "total",
        "score",
        "sequence",
        "numberOfSeries",
        "numberOfInstances",
        "factor",
        "lowerLimit",
        "upperLimit",
        "dimensions",
        "maxLength",
        "quantity",
    ];

    /// Choice-type suffixes of primitive types (`valueBoolean`, `multipleBirthInteger`, ...).
    const BOOLEAN_SUFFIXES: &[&str] = &["Boolean"];
    const NUMBER_SUFFIXES: &[&str] = &["Integer", "Decimal", "PositiveInt", "UnsignedInt", "Integer64"];
    const PRIMITIVE_SUFFIXES: &[&str] = &[
        "String",
        "Code",
        "Date",
        "DateTime",
        "Boolean",
        "Integer",
        "Decimal",
        "Uri",
        "Url",
        "Canonical",
        "Instant",
        "Time",
        "Oid",
        "Uuid",
        "Id",
        "Markdown",
        "Base64Binary",
        "PositiveInt",
        "UnsignedInt",
    ];
    /// The stems of choice elements (`value[x]`, `deceased[x]`, ...), so that `valueCode` counts as a
    /// primitive and `reasonCode` (a CodeableConcept) does not.
    const CHOICE_STEMS: &[&str] = &[
        "value",
        "deceased",
        "multipleBirth",
        "effective",
        "onset",
        "abatement",
        "performed",
        "occurrence",
        "timing",
        "born",
        "asNeeded",
        "answer",
        "initial",
        "default",
        "fixed",
        "pattern",
        "serviced",
        "used",
    ];
    /// Primitive elements that may carry only extensions (no value), such as a data-absent-reason.
    const PRIMITIVES: &[&str] = &[
        "birthDate",
        "gender",
        "family",
        "given",
        "prefix",
        "suffix",
        "text",
        "line",
        "city",
        "district",
        "state",
        "postalCode",
        "country",
        "system",
        "value",
        "use",
        "code",
        "display",
        "version",
        "status",
        "date",
        "dateTime",
        "start",
        "end",
        "reference",
        "url",
        "uri",
        "contentType",
        "data",
        "title",
        "issued",
        "authoredOn",
        "sent",
        "received",
        "recorded",
        "timestamp",
        "lastUpdated",
        "startDate",
        "statusDate",
        "lifecycleStatus",
        "intent",
        "comment",
        "rank",
    ];

    /// Parents whose primitive `value` is a decimal (the Quantity family and Money).
    const QUANTITY_PARENTS: &[&str] = &["quantity", "low", "high", "numerator", "denominator", "amount", "origin"];
    const QUANTITY_SUFFIXES: &[&str] = &["Quantity", "Age", "Duration", "Distance", "Count", "Money"];

    /// Whether `name`, a child of `parent` in a resource of type `root`, is an array in FHIR JSON.
    /// `parent` is the resource type itself for a direct child of the resource.
    pub fn is_array(root: &str, parent: &str, name: &str) -> bool {
        ARRAYS.iter().any(|entry| match entry.split_once('.') {
            None => *entry == name,
            Some((ctx, n)) if n == name => {
                if ctx.starts_with(|c: char| c.is_ascii_uppercase()) {
                    ctx == root && parent == root
                } else {
                    ctx == parent
                }
            }
            Some(_) => false,
        })
    }

    /// The JSON type of a primitive element.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Primitive {
        String,
        Boolean,
        Number,
    }

    fn has_suffix(name: &str, suffixes: &[&str]) -> bool {
        suffixes.iter().any(|s| name.len() > s.len() && name.ends_with(s))
    }

    /// How the `value` attribute of the primitive `name` (a child of `parent`) is typed in JSON.
    pub fn primitive(parent: &str, name: &str) -> Primitive {
        if BOOLEANS.contains(&name) || has_suffix(name, BOOLEAN_SUFFIXES) {
            Primitive::Boolean
        } else if NUMBERS.contains(&name)
            || has_suffix(name, NUMBER_SUFFIXES)
            || (name == "value" && (QUANTITY_PARENTS.contains(&parent) || has_suffix(parent, QUANTITY_SUFFIXES)))
        {
            Primitive::Number
        } else {
            Primitive::String
        }
    }

    /// Whether an element with extensions but no `value` is a primitive (JSON `_name`) rather than a
    /// complex element whose only content is extensions.
    pub fn is_primitive(name: &str) -> bool {
        PRIMITIVES.contains(&name)
            || CHOICE_STEMS
                .iter()
                .any(|stem| name.strip_prefix(stem).is_some_and(|rest| PRIMITIVE_SUFFIXES.contains(&rest)))
    }
}

// --- XML -> JSON ---------------------------------------------------------------------------------------

/// One element of the document, as read.
#[derive(Debug, Default)]
struct Node {
    name: String,
    /// Byte offset of the element's `<`, for error positions.
    offset: usize,
    value: Option<String>,
    id: Option<String>,
    url: Option<String>,
    children: Vec<Node>,
    /// The XHTML source of a narrative `div`.
    div: Option<String>,
}

/// Line and column (1-based, in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (u64, u64) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() as u64 + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u64 + 1;
    (line, column)
}

fn error_at(text: &str, offset: usize, kind: IssueType, message: impl Into<String>) -> XmlError {
    let (line, column) = line_col(text, offset);
    XmlError { kind, line: Some(line), column: Some(column), message: message.into() }
}

/// A narrative `div` being captured: where it starts and how deep inside it the reader is.
struct DivCapture {
    node: Node,
    start: usize,
    depth: usize,
}

/// Parses FHIR XML into the equivalent FHIR JSON value.
pub fn parse(text: &str) -> Result<Value, XmlError> {
    let root = read_tree(text)?;
    let mut map = Map::new();
    if root.value.is_some() || root.url.is_some() || root.id.is_some() {
        return Err(error_at(text, root.offset, IssueType::Structure, format!("the resource element <{}> has attributes; FHIR XML gives a resource none (its id is the <id value=\"...\"/> element)", root.name)));
    }
    resource(text, &root, &mut map)?;
    Ok(Value::Object(map))
}

fn read_tree(text: &str) -> Result<Node, XmlError> {
    let mut reader = NsReader::from_str(text);
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let mut div: Option<DivCapture> = None;
    loop {
        let before = reader.buffer_position() as usize;
        let (ns, event) = match reader.read_resolved_event() {
            Ok(x) => x,
            Err(e) => {
                // quick-xml records where each syntax error starts; other errors (namespaces) are
                // placed at the event being read.
                let at = match (reader.error_position() as usize, &e) {
                    (0, e) if !matches!(e, quick_xml::Error::Syntax(_)) => before,
                    (p, _) => p,
                };
                // A DOCTYPE quick-xml cannot even delimit is still a DOCTYPE: refused as such.
                let doctype =
                    text.get(at..).and_then(|rest| rest.get(..9)).is_some_and(|k| k.eq_ignore_ascii_case("<!DOCTYPE"));
                let kind = if doctype { IssueType::Security } else { IssueType::Structure };
                return Err(error_at(text, at, kind, format!("malformed XML: {e}")));
            }
        };
        match event {
            Event::DocType(_) => {
                return Err(error_at(
                    text,
                    before,
                    IssueType::Security,
                    "the document has a DOCTYPE; FHIR XML forbids DTDs, and entity declarations are refused unread (no external entities, no entity expansion)",
                ));
            }
            Event::Start(_) if div.is_some() => {
                if let Some(d) = div.as_mut() {
                    d.depth += 1;
                    if stack.len() + d.depth > MAX_DEPTH {
                        return Err(too_deep(text, before));
                    }
                }
            }
            // An empty element inside the div opens nothing.
            Event::Empty(_) if div.is_some() => {}
            Event::End(_) if div.is_some() => {
                let done = div.as_mut().is_some_and(|d| {
                    d.depth -= 1;
                    d.depth == 0
                });
                if done {
                    if let Some(mut d) = div.take() {
                        let end = reader.buffer_position() as usize;
                        d.node.div = Some(text.get(d.start..end).unwrap_or_default().to_owned());
                        attach(&mut stack, &mut root, d.node, text)?;
                    }
                }
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_empty = matches!(event, Event::Empty(_));
                let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let namespace = match &ns {
                    ResolveResult::Bound(n) => Some(String::from_utf8_lossy(n.as_ref()).into_owned()),
                    _ => None,
                };
                if stack.len() + 1 > MAX_DEPTH {
                    return Err(too_deep(text, before));
                }
                if root.is_some() && stack.is_empty() {
                    return Err(error_at(
                        text,
                        before,
                        IssueType::Structure,
                        "a second root element; a FHIR XML document holds one resource",
                    ));
                }
                if local == "div" && namespace.as_deref() == Some(XHTML_NS) {
                    let node = Node { name: local, offset: before, ..Default::default() };
                    if is_empty {
                        let mut node = node;
                        node.div =
                            Some(text.get(before..reader.buffer_position() as usize).unwrap_or_default().to_owned());
                        attach(&mut stack, &mut root, node, text)?;
                    } else {
                        div = Some(DivCapture { node, start: before, depth: 1 });
                    }
                    continue;
                }
                if namespace.as_deref() != Some(FHIR_NS) {
                    let got = namespace.map_or_else(|| "no namespace".to_owned(), |n| format!("namespace {n}"));
                    return Err(error_at(
                        text,
                        before,
                        IssueType::Structure,
                        format!("<{local}> is in {got}; FHIR XML elements are in the namespace {FHIR_NS}"),
                    ));
                }
                let node = element(text, e, local, before)?;
                if is_empty {
                    attach(&mut stack, &mut root, node, text)?;
                } else {
                    stack.push(node);
                }
            }
            Event::End(_) => {
                if let Some(node) = stack.pop() {
                    attach(&mut stack, &mut root, node, text)?;
                }
            }
            Event::Text(t) => {
                if div.is_none() && !t.iter().all(u8::is_ascii_whitespace) {
                    return Err(error_at(
                        text,
                        before,
                        IssueType::Structure,
                        "text content outside the narrative div; FHIR XML carries every value in a value attribute",
                    ));
                }
            }
            Event::CData(_) => {
                if div.is_none() {
                    return Err(error_at(
                        text,
                        before,
                        IssueType::Structure,
                        "a CDATA section outside the narrative div; FHIR XML carries every value in a value attribute",
                    ));
                }
            }
            // Comments, processing instructions and the XML declaration carry no FHIR content.
            Event::Comment(_) | Event::PI(_) | Event::Decl(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last().map(|n| n.name.clone()).or_else(|| div.as_ref().map(|d| d.node.name.clone())) {
        return Err(error_at(text, text.len(), IssueType::Structure, format!("the document ends before </{open}>")));
    }
    root.ok_or_else(|| {
        error_at(
            text,
            0,
            IssueType::Structure,
            "no root element; expected a FHIR resource such as <Bundle xmlns=\"http://hl7.org/fhir\">",
        )
    })
}

fn too_deep(text: &str, at: usize) -> XmlError {
    error_at(
        text,
        at,
        IssueType::TooCostly,
        format!("elements are nested more than {MAX_DEPTH} deep; no FHIR resource needs that"),
    )
}

/// The attributes of a FHIR element: `value`, `id`, `url`. Namespace declarations and attributes of
/// other namespaces (`xsi:schemaLocation`) are ignored; any other attribute is an error, since its
/// content would otherwise vanish.
fn element(text: &str, e: &BytesStart<'_>, name: String, offset: usize) -> Result<Node, XmlError> {
    let mut node = Node { name, offset, ..Default::default() };
    for attr in e.attributes() {
        let attr = attr.map_err(|err| {
            error_at(text, offset, IssueType::Structure, format!("malformed attribute on <{}>: {err}", node.name))
        })?;
        let key = attr.key.as_ref();
        if key == b"xmlns" || key.contains(&b':') {
            continue;
        }
        let value = attr.unescape_value().map_err(|err| {
            error_at(
                text,
                offset,
                IssueType::Structure,
                format!("attribute of <{}>: {err}; FHIR XML allows only the predefined XML entities and character references", node.name),
            )
        })?;
        let slot = match key {
            b"value" => &mut node.value,
            b"id" => &mut node.id,
            b"url" => &mut node.url,
            other => {
                return Err(error_at(
                    text,
                    offset,
                    IssueType::Structure,
                    format!(
                        "<{}> has an attribute '{}'; FHIR XML uses only value, id and url",
                        node.name,
                        String::from_utf8_lossy(other)
                    ),
                ))
            }
        };
        *slot = Some(value.into_owned());
    }
    Ok(node)
}

fn attach(stack: &mut [Node], root: &mut Option<Node>, node: Node, text: &str) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(parent) => parent.children.push(node),
        None if root.is_none() => *root = Some(node),
        None => {
            return Err(error_at(
                text,
                node.offset,
                IssueType::Structure,
                "a second root element; a FHIR XML document holds one resource",
            ))
        }
    }
    Ok(())
}

/// A resource element: `resourceType` and its members.
fn resource(text: &str, node: &Node, map: &mut Map<String, Value>) -> Result<(), XmlError> {
    map.insert("resourceType".into(), Value::String(node.name.clone()));
    members(text, node, &node.name, map)
}

/// Whether a child element is a resource (resource type names start upper-case, element names never).
fn is_resource_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase())
}

/// The children of `node` as JSON members, grouped by name in document order.
fn members(text: &str, node: &Node, root: &str, map: &mut Map<String, Value>) -> Result<(), XmlError> {
    let mut order: Vec<&str> = Vec::new();
    for c in &node.children {
        if !order.contains(&c.name.as_str()) {
            order.push(&c.name);
        }
    }
    for name in order {
        let nodes: Vec<&Node> = node.children.iter().filter(|c| c.name == name).collect();
        if is_resource_name(name) {
            let at = nodes.first().map_or(node.offset, |n| n.offset);
            return Err(error_at(text, at, IssueType::Structure, format!("resource <{name}> inside <{}>; a nested resource is the only child of its container element (contained, resource, ...)", node.name)));
        }
        if map.contains_key(name) {
            let at = nodes.first().map_or(node.offset, |n| n.offset);
            return Err(error_at(
                text,
                at,
                IssueType::Structure,
                format!("<{name}> clashes with a member of the same name in <{}>", node.name),
            ));
        }
        let items = nodes.iter().map(|n| value_of(text, n, root, &node.name)).collect::<Result<Vec<_>, _>>()?;
        // An element the table calls single that occurs more than once is kept as an array: invalid
        // FHIR, which the reader then reports, rather than content dropped here.
        let array = shape::is_array(root, &node.name, name) || items.len() > 1;
        if array {
            let values: Vec<Value> = items.iter().map(|(v, _)| v.clone().unwrap_or(Value::Null)).collect();
            let underscores: Vec<Value> =
                items.iter().map(|(_, u)| u.clone().map_or(Value::Null, Value::Object)).collect();
            if values.iter().any(|v| !v.is_null()) {
                map.insert(name.to_owned(), Value::Array(values));
            }
            if underscores.iter().any(|u| !u.is_null()) {
                map.insert(format!("_{name}"), Value::Array(underscores));
            }
        } else if let Some((value, underscore)) = items.into_iter().next() {
            if let Some(v) = value {
                map.insert(name.to_owned(), v);
            }
            if let Some(u) = underscore {
                map.insert(format!("_{name}"), Value::Object(u));
            }
        }
    }
    Ok(())
}

type Item = (Option<Value>, Option<Map<String, Value>>);

/// One element as JSON: the value, and the `_name` object of a primitive's id and extensions.
fn value_of(text: &str, node: &Node, root: &str, parent: &str) -> Result<Item, XmlError> {
    if let Some(div) = &node.div {
        return Ok((Some(Value::String(div.clone())), None));
    }
    // A resource container: <contained><Patient>...</Patient></contained>.
    if node.children.iter().any(|c| is_resource_name(&c.name)) {
        let [only] = node.children.as_slice() else {
            return Err(error_at(
                text,
                node.offset,
                IssueType::Structure,
                format!(
                    "<{}> holds a resource and something else; a resource container holds the resource only",
                    node.name
                ),
            ));
        };
        if node.value.is_some() || node.id.is_some() || node.url.is_some() {
            return Err(error_at(
                text,
                node.offset,
                IssueType::Structure,
                format!("<{}> holds a resource and has attributes", node.name),
            ));
        }
        let mut map = Map::new();
        resource(text, only, &mut map)?;
        return Ok((Some(Value::Object(map)), None));
    }
    let only_extensions = node.children.iter().all(|c| c.name == "extension");
    if node.value.is_some() || (only_extensions && !node.children.is_empty() && shape::is_primitive(&node.name)) {
        if !only_extensions {
            let odd = node.children.iter().find(|c| c.name != "extension").map_or("", |c| c.name.as_str());
            return Err(error_at(
                text,
                node.offset,
                IssueType::Structure,
                format!("the primitive <{}> has a child <{odd}>; a primitive holds only extensions", node.name),
            ));
        }
        let value = node.value.as_deref().map(|raw| typed(parent, &node.name, raw));
        let mut underscore = Map::new();
        if let Some(id) = &node.id {
            underscore.insert("id".into(), Value::String(id.clone()));
        }
        members(text, node, root, &mut underscore)?;
        return Ok((value, (!underscore.is_empty()).then_some(underscore)));
    }
    let mut map = Map::new();
    if let Some(url) = &node.url {
        map.insert("url".into(), Value::String(url.clone()));
    }
    if let Some(id) = &node.id {
        map.insert("id".into(), Value::String(id.clone()));
    }
    members(text, node, root, &mut map)?;
    if map.is_empty() {
        // <given/>: no value, no content; FHIR forbids it and there is nothing to keep.
        return Ok((None, None));
    }
    Ok((Some(Value::Object(map)), None))
}

/// A primitive's JSON value: a boolean or number where the element is one and the text reads as one,
/// a string otherwise (a malformed boolean stays a string, for the reader to report).
fn typed(parent: &str, name: &str, raw: &str) -> Value {
    match shape::primitive(parent, name) {
        shape::Primitive::Boolean => match raw {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(raw.to_owned()),
        },
        shape::Primitive::Number => serde_json::from_str::<serde_json::Number>(raw)
            .map(Value::Number)
            .unwrap_or_else(|_| Value::String(raw.to_owned())),
        shape::Primitive::String => Value::String(raw.to_owned()),
    }
}

// --- JSON -> XML ---------------------------------------------------------------------------------------

/// FHIR JSON → FHIR XML: elements in JSON order (FHIR's element order for the gateway's own output),
/// `value` attributes, `url` on extensions, ids as attributes, `_name` merged into its primitive, the
/// narrative `div` written as it is. Total: a value that is not a resource gives an empty `<Resource/>`.
pub fn write(resource: &Value) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let empty = Map::new();
    let map = resource.as_object().unwrap_or(&empty);
    write_resource(&mut out, map, 0, true);
    out
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

/// Escapes an attribute value. Line breaks and tabs become character references, because XML
/// attribute-value normalisation would turn them into spaces.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

fn write_resource(out: &mut String, map: &Map<String, Value>, depth: usize, top: bool) {
    let name = map.get("resourceType").and_then(Value::as_str).filter(|n| is_resource_name(n)).unwrap_or("Resource");
    indent(out, depth);
    out.push('<');
    out.push_str(name);
    if top {
        out.push_str(" xmlns=\"");
        out.push_str(FHIR_NS);
        out.push('"');
    }
    if map.keys().all(|k| k == "resourceType") {
        out.push_str("/>\n");
        return;
    }
    out.push_str(">\n");
    write_members(out, map, depth + 1, true, false);
    indent(out, depth);
    out.push_str("</");
    out.push_str(name);
    out.push_str(">\n");
}

/// The members of an object as elements. In a resource, `id` is an element; elsewhere `id` (and `url`
/// on an extension, `url_attribute`) were written as attributes by the caller.
fn write_members(out: &mut String, map: &Map<String, Value>, depth: usize, resource_root: bool, url_attribute: bool) {
    for (key, value) in map {
        if key == "resourceType" || (!resource_root && key == "id") || (url_attribute && key == "url") {
            continue;
        }
        if let Some(base) = key.strip_prefix('_') {
            if !map.contains_key(base) {
                // Extensions of a primitive without a value.
                write_named(out, base, &Value::Null, Some(value), depth);
            }
            continue;
        }
        write_named(out, key, value, map.get(&format!("_{key}")), depth);
    }
}

/// One member: each item of an array in turn, paired with its `_name` item.
fn write_named(out: &mut String, name: &str, value: &Value, underscore: Option<&Value>, depth: usize) {
    match (value, underscore) {
        (Value::Array(items), u) => {
            let unders = u.and_then(Value::as_array);
            let n = items.len().max(unders.map_or(0, Vec::len));
            for i in 0..n {
                let v = items.get(i).unwrap_or(&Value::Null);
                write_element(out, name, v, unders.and_then(|u| u.get(i)), depth);
            }
        }
        (Value::Null, Some(Value::Array(unders))) => {
            for u in unders {
                write_element(out, name, &Value::Null, Some(u), depth);
            }
        }
        (v, u) => write_element(out, name, v, u, depth),
    }
}

fn write_element(out: &mut String, name: &str, value: &Value, underscore: Option<&Value>, depth: usize) {
    let under = underscore.and_then(Value::as_object);
    match value {
        Value::Object(map) if map.contains_key("resourceType") => {
            indent(out, depth);
            out.push_str(&format!("<{name}>\n"));
            write_resource(out, map, depth + 1, false);
            indent(out, depth);
            out.push_str(&format!("</{name}>\n"));
        }
        Value::Object(map) => {
            indent(out, depth);
            out.push('<');
            out.push_str(name);
            if let Some(id) = map.get("id").and_then(Value::as_str) {
                out.push_str(&format!(" id=\"{}\"", escape(id)));
            }
            let is_extension = name == "extension" || name == "modifierExtension";
            if is_extension {
                if let Some(url) = map.get("url").and_then(Value::as_str) {
                    out.push_str(&format!(" url=\"{}\"", escape(url)));
                }
            }
            let has_children = map.iter().any(|(k, _)| k != "id" && !(is_extension && k == "url"));
            if !has_children {
                out.push_str("/>\n");
                return;
            }
            out.push_str(">\n");
            write_members(out, map, depth + 1, false, is_extension);
            indent(out, depth);
            out.push_str(&format!("</{name}>\n"));
        }
        Value::String(s) if name == "div" => {
            indent(out, depth);
            out.push_str(s);
            out.push('\n');
        }
        Value::Array(_) => {} // an array inside an array is not FHIR; nothing to write
        primitive => {
            let raw = match primitive {
                Value::String(s) => Some(s.clone()),
                Value::Bool(b) => Some(b.to_string()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            };
            if raw.is_none() && under.is_none() {
                return;
            }
            indent(out, depth);
            out.push('<');
            out.push_str(name);
            if let Some(id) = under.and_then(|u| u.get("id")).and_then(Value::as_str) {
                out.push_str(&format!(" id=\"{}\"", escape(id)));
            }
            if let Some(raw) = raw {
                out.push_str(&format!(" value=\"{}\"", escape(&raw)));
            }
            let exts = under.map(|u| u.iter().filter(|(k, _)| k.as_str() != "id").count()).unwrap_or(0);
            if exts == 0 {
                out.push_str("/>\n");
                return;
            }
            out.push_str(">\n");
            if let Some(u) = under {
                write_members(out, u, depth + 1, false, false);
            }
            indent(out, depth);
            out.push_str(&format!("</{name}>\n"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fhir(body: &str) -> String {
        format!("<Patient xmlns=\"http://hl7.org/fhir\">{body}</Patient>")
    }

    #[test]
    fn primitives_ids_extensions_and_arrays() {
        let xml = fhir(
            r#"<id value="p1"/><active value="true"/>
            <name><family value="van Dam"><extension url="http://hl7.org/fhir/StructureDefinition/humanname-own-prefix"><valueString value="van"/></extension></family>
            <given value="Jan"/><given id="g2" value="P."/></name>
            <birthDate><extension url="http://hl7.org/fhir/StructureDefinition/data-absent-reason"><valueCode value="unknown"/></extension></birthDate>
            <multipleBirthInteger value="2"/>"#,
        );
        let v = parse(&xml).unwrap();
        assert_eq!(
            v,
            json!({
                "resourceType": "Patient", "id": "p1", "active": true,
                "name": [{
                    "family": "van Dam",
                    "_family": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/humanname-own-prefix", "valueString": "van"}]},
                    "given": ["Jan", "P."], "_given": [null, {"id": "g2"}]
                }],
                "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]},
                "multipleBirthInteger": 2
            })
        );
        assert_eq!(parse(&write(&v)).unwrap(), v);
    }

    #[test]
    fn the_array_table_knows_context() {
        assert!(shape::is_array("Patient", "Patient", "name"));
        assert!(!shape::is_array("Patient", "contact", "name"));
        assert!(!shape::is_array("Patient", "contact", "address"));
        assert!(!shape::is_array("Consent", "Consent", "provision"));
        assert!(shape::is_array("Consent", "provision", "provision"));
        assert!(shape::is_array("Consent", "provision", "actor"));
        assert!(!shape::is_array("Procedure", "performer", "actor"));
        assert!(shape::is_array("Consent", "provision", "code"));
        assert!(!shape::is_array("Observation", "Observation", "code"));
        assert!(!shape::is_array("Bundle", "Bundle", "identifier"));
        assert!(!shape::is_array("Consent", "patient", "identifier"));
        assert!(!shape::is_array("Procedure", "Procedure", "category"));
        assert!(!shape::is_array("DeviceUseStatement", "DeviceUseStatement", "bodySite"));
        assert_eq!(shape::primitive("valueQuantity", "value"), shape::Primitive::Number);
        assert_eq!(shape::primitive("identifier", "value"), shape::Primitive::String);
        assert!(shape::is_primitive("valueCode") && !shape::is_primitive("reasonCode"));
    }

    #[test]
    fn nested_resources_and_narrative() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Bundle xmlns="http://hl7.org/fhir"><type value="collection"/>
  <entry><fullUrl value="urn:uuid:1"/><resource><Consent><id value="c"/>
    <text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p>a &amp; <b>b</b></p></div></text>
    <contained><Patient><id value="p"/></Patient></contained>
  </Consent></resource></entry>
</Bundle>"#;
        let v = parse(xml).unwrap();
        let consent = &v["entry"][0]["resource"];
        assert_eq!(consent["resourceType"], "Consent");
        assert_eq!(
            consent["text"]["div"],
            r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>a &amp; <b>b</b></p></div>"#
        );
        assert_eq!(consent["contained"][0]["resourceType"], "Patient");
        assert_eq!(parse(&write(&v)).unwrap(), v);
    }

    #[test]
    fn writer_escapes_and_keeps_line_breaks() {
        let v = json!({"resourceType": "Observation", "valueString": "a < b & \"c\"\nnext\tline"});
        let xml = write(&v);
        assert!(
            xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Observation xmlns=\"http://hl7.org/fhir\">")
        );
        assert!(xml.contains(r#"value="a &lt; b &amp; &quot;c&quot;&#10;next&#9;line""#), "{xml}");
        assert_eq!(parse(&xml).unwrap(), v);
    }

    #[test]
    fn refuses_doctype_depth_and_malformed_input() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><Patient xmlns="http://hl7.org/fhir"><id value="&lol2;"/></Patient>"#;
        let e = parse(bomb).unwrap_err();
        assert_eq!(e.kind, IssueType::Security);
        assert_eq!((e.line, e.column), (Some(1), Some(22)));

        let unterminated = "<!DOCTYPE x [ <!ENTITY a \"b\">";
        assert_eq!(parse(unterminated).unwrap_err().kind, IssueType::Security);

        let deep =
            format!("<Patient xmlns=\"http://hl7.org/fhir\">{}{}</Patient>", "<a>".repeat(100), "</a>".repeat(100));
        assert_eq!(parse(&deep).unwrap_err().kind, IssueType::TooCostly);

        let broken = "<Patient xmlns=\"http://hl7.org/fhir\">\n  <id value=\"x\">\n</Patient>";
        let e = parse(broken).unwrap_err();
        assert_eq!(e.kind, IssueType::Structure);
        assert!(e.line.is_some(), "{e:?}");

        for bad in [
            "",
            "<Patient/>",
            "<Patient xmlns=\"http://hl7.org/fhir\">text</Patient>",
            "<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"&xxe;\"/></Patient>",
            "<Patient xmlns=\"http://hl7.org/fhir\"><id foo=\"x\"/></Patient>",
            "<Patient xmlns=\"http://hl7.org/fhir\"></Patient><Patient xmlns=\"http://hl7.org/fhir\"></Patient>",
        ] {
            assert_eq!(parse(bad).map_err(|e| e.kind), Err(IssueType::Structure), "{bad}");
        }
    }
}
