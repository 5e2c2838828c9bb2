//! The audit trail as FHIR R4 AuditEvents following IHE Basic Audit Log Patterns (BALP 1.1), for
//! `audit export --format fhir`.
//!
//! Which pattern an entry follows depends on its event code:
//! - consent decisions → `IHE.BasicAudit.AuthZconsent` (type DCM 110113 Security Alert, subtype
//!   AuthZ-Consent, action E, outcome 0 permit / 4 deny with the reason in `outcomeDesc`);
//! - disclosures to a recipient → `IHE.BasicAudit.PrivacyDisclosure.Source` (type transmit, the
//!   recipient as an agent);
//! - reads → `IHE.BasicAudit.PatientRead`, searches → `PatientQuery`;
//! - creations, changes, withdrawals → `PatientCreate` / `PatientUpdate` / `PatientDelete`.
//!
//! R4 has no `AuditEvent.patient`; the patient is an entity with role 1 (Patient) and the BSN as
//! identifier, as BALP does it. The NEN 7513 fields BALP has no element for (autorisatieprotocol,
//! toestemmingsprofiel) go to `agent.policy` and a consent entity, following the background note §2.4.

use serde_json::{json, Value};

use super::{Action, AuditEvent, Entry, EventCode};

const BALP: &str = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/";
const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const BSN_SYSTEM: &str = "http://fhir.nl/fhir/NamingSystem/bsn";

/// A Bundle (type `collection`) of the entries as AuditEvents.
pub fn bundle(entries: &[Entry]) -> Value {
    let items: Vec<Value> = entries
        .iter()
        .filter_map(|e| e.event().map(|ev| (e, ev)))
        .map(|(e, ev)| json!({"fullUrl": format!("urn:uuid:audit-{}", e.seq), "resource": audit_event(e, &ev)}))
        .collect();
    json!({"resourceType": "Bundle", "type": "collection", "total": items.len(), "entry": items})
}

fn org_identifier(org: &str) -> Value {
    match org.split_once(':') {
        Some(("ura", v)) => json!({"system": "http://fhir.nl/fhir/NamingSystem/ura", "value": v}),
        Some(("agb", v)) => json!({"system": "http://fhir.nl/fhir/NamingSystem/agb-z", "value": v}),
        _ => json!({"value": org}),
    }
}

fn rest_subtype(code: &str) -> Value {
    json!({"system": "http://hl7.org/fhir/restful-interaction", "code": code})
}

/// One entry as an AuditEvent.
pub fn audit_event(e: &Entry, ev: &AuditEvent) -> Value {
    let rest_type = json!({"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"});
    let (profile, event_type, subtype) = match ev.event_code {
        EventCode::ConsentDecision => (
            "IHE.BasicAudit.AuthZconsent",
            json!({"system": DCM, "code": "110113", "display": "Security Alert"}),
            json!({"system": "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType", "code": "AuthZ-Consent", "display": "Authorization Decision using Roles and Consent"}),
        ),
        EventCode::Disclosure => (
            "IHE.BasicAudit.PrivacyDisclosure.Source",
            json!({"system": "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle", "code": "transmit", "display": "Transmit Record Lifecycle Event"}),
            json!({"system": DCM, "code": "110106", "display": "Export"}),
        ),
        EventCode::PatientRead => ("IHE.BasicAudit.PatientRead", rest_type, rest_subtype("read")),
        EventCode::PatientQuery => ("IHE.BasicAudit.PatientQuery", rest_type, rest_subtype("search-type")),
        _ => match ev.action {
            Action::C => ("IHE.BasicAudit.PatientCreate", rest_type, rest_subtype("create")),
            Action::D => ("IHE.BasicAudit.PatientDelete", rest_type, rest_subtype("delete")),
            _ => ("IHE.BasicAudit.PatientUpdate", rest_type, rest_subtype("update")),
        },
    };

    let mut user = json!({
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP", "display": "information recipient"}]},
        "who": {"identifier": {"system": "urn:acp-gateway:client", "value": ev.user_id}},
        "role": [{"coding": [{"system": "urn:acp-gateway:role", "code": ev.user_role}]}],
        "requestor": true,
        "policy": [format!("urn:acp-gateway:authorization:{}", ev.authorization_protocol)],
    });
    if let Some(ap) = &ev.access_point {
        user["network"] = json!({"address": ap, "type": "2"});
    }
    let mut agents = vec![
        json!({
            "type": {"coding": [{"system": DCM, "code": "110150", "display": "Application"}]},
            "who": {"display": ev.source_id},
            "requestor": false,
        }),
        user,
        json!({
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type", "code": "datacollector", "display": "data collector"}]},
            "who": {"identifier": org_identifier(&ev.user_organization)},
            "requestor": false,
        }),
    ];
    if let Some(r) = &ev.responsible_user_id {
        agents.push(json!({
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleClass", "code": "PROV", "display": "healthcare provider"}]},
            "who": {"identifier": {"value": r}},
            "role": ev.responsible_user_role.as_ref().map(|role| json!([{"coding": [{"system": "urn:acp-gateway:role", "code": role}]}])),
            "requestor": false,
        }));
    }
    if let Some(rec) = &ev.recipient {
        let code = if ev.event_code == EventCode::ConsentDecision { "authserver" } else { "custodian" };
        agents.push(json!({
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": if code == "authserver" { "IRCP" } else { "RCV" }}]},
            "who": {"identifier": org_identifier(rec)},
            "requestor": false,
        }));
    }
    for a in &mut agents {
        if let Some(o) = a.as_object_mut() {
            o.retain(|_, v| !v.is_null());
        }
    }

    let mut entities = Vec::new();
    if let (Some(kind), Some(id)) = (&ev.patient_id_type, &ev.patient_id) {
        let system = if kind == "BSN" { BSN_SYSTEM } else { "urn:acp-gateway:patient-id" };
        entities.push(json!({
            "what": {"identifier": {"system": system, "value": id}},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"},
        }));
    }
    if let Some(profile) = &ev.consent_profile {
        entities.push(json!({
            "what": {"display": profile},
            "type": {"system": "http://hl7.org/fhir/resource-types", "code": "Consent"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "13", "display": "Security Resource"},
        }));
    }
    if let Some(id) = ev.route_id.as_ref().or(ev.object_id.as_ref()).or(ev.handover_id.as_ref()) {
        entities.push(json!({
            "what": {"identifier": {"system": format!("urn:acp-gateway:{}", ev.object_type), "value": id}},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "4", "display": "Domain Resource"},
            "description": ev.event_code.as_str(),
        }));
    }

    let mut out = json!({
        "resourceType": "AuditEvent",
        "id": format!("audit-{}", e.seq),
        "meta": {"profile": [format!("{BALP}{profile}")]},
        "type": event_type,
        "subtype": [subtype],
        "action": ev.action,
        "period": {"start": ev.event_time, "end": ev.event_time},
        "recorded": ev.event_time,
        "outcome": ev.outcome.fhir_code(),
        "agent": agents,
        "source": {
            "observer": {"display": ev.source_id},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server"}],
        },
        "entity": entities,
    });
    if let Some(d) = &ev.outcome_description {
        out["outcomeDesc"] = json!(d);
    }
    if ev.event_code == EventCode::ConsentDecision || ev.event_code == EventCode::Disclosure {
        out["purposeOfEvent"] = json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT", "display": "treatment"}]}]);
    }
    out
}
