//! Renderer: the MDO item of route row 4 (GP → district nursing, "vast agendapunt in het MDO"): one
//! FHIR R4 Task that a nursing team's system (or the console) shows on its worklist.
//!
//! The Task says in a short Dutch description what to do (discuss the ACP agreements in the MDO), names
//! the patient (by BSN and name, and as `Patient/<id>`), points at the ACP conversation (`focus`:
//! `Procedure/<id>`, the ids of the structured FHIR that the route table offers alongside), and carries
//! the whole clinical letter as an input, so the item itself shows every treatment limit as the letter
//! words it, also where the structured FHIR did not arrive. Codes and texts: `mappings/fhir-documents.toml`
//! ([worklist]). The Task id comes from the route key: the same handover gives the same item.

use crate::fhir::model as fhir;
use crate::record::AcpRecord;
use crate::render::packaging::documents::{acp_entries, tables};
use crate::render::packaging::{uuid, Moment, Party, Route};

/// `Type/id` of the first entry of that type in the record's FHIR, for a relative reference.
fn relative(entries: &[fhir::BundleEntry], resource_type: &str) -> Option<String> {
    entries
        .iter()
        .filter_map(|e| e.resource.as_ref())
        .find(|r| r.resource_type() == resource_type)
        .and_then(|r| r.id().map(|id| format!("{resource_type}/{id}")))
}

fn named(party: &Party) -> Option<fhir::Reference> {
    let display = [party.person.as_deref(), party.organization.as_deref()].into_iter().flatten().collect::<Vec<_>>();
    (!display.is_empty()).then(|| fhir::Reference { display: Some(display.join(", ")), ..Default::default() })
}

/// The MDO worklist item; `letter` is the clinical letter text.
pub fn task(record: &AcpRecord, info: &Route<'_>, letter: &str) -> fhir::Task {
    let w = &tables().worklist;
    let (entries, _) = acp_entries(record);
    let date = record
        .date_filled_in
        .as_ref()
        .map(|d| Moment::from_date(d).dutch_date())
        .unwrap_or_else(|| "datum niet vastgelegd".into());
    let name = Some(record.patient.name.display()).filter(|n| !n.is_empty());
    let patient = fhir::Reference {
        reference: relative(&entries, "Patient"),
        identifier: record.patient.bsn.as_ref().map(|b| fhir::Identifier {
            system: Some(tables().identifiers.bsn.clone()),
            value: Some(b.as_str().to_owned()),
            ..Default::default()
        }),
        display: name,
        ..Default::default()
    };
    fhir::Task {
        id: Some(uuid(&info.key, "task")),
        status: Some(w.status.clone()),
        intent: Some(w.intent.clone()),
        priority: Some(w.priority.clone()),
        code: Some(w.code.concept()),
        description: Some(w.description.replace("{date}", &date)),
        focus: relative(&entries, "Procedure").map(|r| fhir::Reference { reference: Some(r), ..Default::default() }),
        r#for: Some(patient),
        authored_on: Some(info.date.fhir_instant()),
        requester: named(info.sender),
        owner: named(info.recipient),
        input: vec![fhir::TaskParameter {
            r#type: Some(fhir::CodeableConcept { text: Some(w.letter_input.clone()), ..Default::default() }),
            value_string: Some(letter.to_owned()),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The Task as pretty FHIR JSON with a trailing newline.
pub fn to_json(task: &fhir::Task) -> String {
    let mut s = serde_json::to_string_pretty(&fhir::Resource::from(task.clone())).expect("the FHIR model serialises");
    s.push('\n');
    s
}
