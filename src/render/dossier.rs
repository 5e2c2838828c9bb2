//! Renderer: the dossier of route row 5 (GP → elderly-care physician at a nursing-home admission): the
//! whole ACP record as a FHIR R4 `document` Bundle that travels with the transferred file.
//!
//! The Composition comes first (FHIR bdl-11); its first section carries the clinical letter as
//! narrative, so a receiver that only shows documents still reads every treatment limit as the letter
//! words it; the further sections reference the IKNL PZP resources of `render::fhir`, grouped by resource
//! type as `mappings/fhir-documents.toml` ([dossier]) lists them. Every resource of the record is in a
//! section (a catch-all section takes types the table does not name), the Patient is the subject.
//! Ids of the Composition and Bundle come from the route key; the dossier is byte-identical for the same
//! handover.

use crate::fhir::model as fhir;
use crate::record::AcpRecord;
use crate::render::packaging::documents::{
    acp_entries, document, document_identifier, entry, narrative, organization, reference, tables,
};
use crate::render::packaging::{defaults, uuid, Route};

/// The dossier as a document Bundle; `letter` is the clinical letter text.
pub fn bundle(record: &AcpRecord, info: &Route<'_>, letter: &str) -> fhir::Bundle {
    let t = tables();
    let dt = &t.dossier;
    let id = |role: &str| uuid(&info.key, role);
    let url = |role: &str| format!("urn:uuid:{}", id(role));
    let instant = info.date.fhir_instant();
    let (acp, patient) = acp_entries(record);
    let author = organization(info.sender, &id("sender"), &defaults().sender.organization);
    let author_ref = reference(&url("sender"), author.name.clone());

    // Each resource into the first section that names its type; `*` takes the rest.
    let mut sections: Vec<fhir::CompositionSection> = vec![fhir::CompositionSection {
        title: Some(dt.letter_section.clone()),
        text: Some(narrative(letter)),
        ..Default::default()
    }];
    let mut taken = vec![false; acp.len()];
    for s in &dt.section {
        let mut refs = Vec::new();
        for (i, e) in acp.iter().enumerate() {
            let Some(r) = &e.resource else { continue };
            let wanted = s.resources.iter().any(|t| t == r.resource_type() || t == "*");
            if taken[i] || !wanted || e.full_url.as_deref() == patient.as_deref() {
                continue;
            }
            taken[i] = true;
            if let Some(u) = &e.full_url {
                refs.push(reference(u, None));
            }
        }
        if !refs.is_empty() {
            sections.push(fhir::CompositionSection { title: Some(s.title.clone()), entry: refs, ..Default::default() });
        }
    }

    let composition = fhir::Composition {
        id: Some(id("composition")),
        identifier: Some(document_identifier(&id("composition"))),
        status: Some("final".into()),
        r#type: Some(dt.composition_type.concept()),
        subject: patient.as_deref().map(|p| reference(p, None)),
        date: Some(instant.clone()),
        author: vec![author_ref],
        title: Some(dt.composition_title.clone()),
        section: sections,
        ..Default::default()
    };
    let mut entries = vec![entry(&id("composition"), composition), entry(&id("sender"), author)];
    entries.extend(acp);
    document(&id("bundle"), instant, entries)
}
