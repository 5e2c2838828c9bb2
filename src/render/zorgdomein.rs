//! Renderer: the ZorgDomein referral package of route rows 3, 5 (first-line consult) and 6: a FHIR R4
//! `document` Bundle that the referring system hands to ZorgDomein with the referral (ZorgDomein
//! composes the referral itself and lets the user choose the recipient; the sender can only suggest one
//! by AGB code, `../shared/spec/background/legacy-transports.md` §2).
//!
//! ```text
//! Bundle (document, identifier urn:uuid, timestamp)
//!   Composition      Referral note; sections: referral, letter (narrative = the letter), ACP resources
//!   ServiceRequest   referral; reasonCode ICPC-1-NL A20 "Gesprek levenseinde/behandelwensen";
//!                    requester = sending organisation, performer = suggested recipient (AGB)
//!   DocumentReference the A4 PDF letter, base64
//!   Organization ×2  sender and suggested recipient
//!   the IKNL PZP resources of `render::fhir` (Patient, treatment directives, ..., QuestionnaireResponse)
//! ```
//!
//! Codes and titles are in `mappings/fhir-documents.toml` ([zorgdomein]). Ids of the resources added here
//! are derived from the route key, the ACP resources keep their content-derived ids, so the package is
//! byte-identical for the same handover. ZorgDomein's own FHIR edition may be STU3 and profile the
//! resources its own way (not published openly); this package is plain R4 with the IKNL profiles on the
//! ACP resources, for the referring system or an integration layer to map.

use base64::Engine as _;

use crate::fhir::model as fhir;
use crate::record::AcpRecord;
use crate::render::packaging::documents::{
    acp_entries, document, document_identifier, entry, narrative, organization, reference, tables,
};
use crate::render::packaging::{defaults, uuid, Party, Route};

/// The referral package as a document Bundle. `letter` is the clinical letter as text (the
/// Composition's narrative) and `pdf` as the A4 PDF (the DocumentReference).
pub fn bundle(record: &AcpRecord, info: &Route<'_>, letter: &str, pdf: &[u8]) -> fhir::Bundle {
    let t = tables();
    let z = &t.zorgdomein;
    let d = defaults();
    let id = |role: &str| uuid(&info.key, role);
    let url = |role: &str| format!("urn:uuid:{}", id(role));
    let instant = info.date.fhir_instant();
    let (acp, patient) = acp_entries(record);
    let subject = patient.as_deref().map(|p| reference(p, None));

    let sender = organization(info.sender, &id("sender"), &d.sender.organization);
    let recipient = organization(info.recipient, &id("recipient"), &d.recipient.name);
    let sender_ref = reference(&url("sender"), sender.name.clone());
    let recipient_ref = fhir::Reference {
        // The suggestion by AGB travels on the reference too, for a reader that does not resolve it.
        identifier: agb_identifier(info.recipient),
        ..reference(&url("recipient"), recipient.name.clone())
    };

    let referral = fhir::ServiceRequest {
        id: Some(id("service-request")),
        status: Some(z.service_request_status.clone()),
        intent: Some(z.service_request_intent.clone()),
        code: Some(fhir::CodeableConcept {
            text: Some(z.service_request_text.clone()),
            ..z.service_request_code.concept()
        }),
        subject: subject.clone(),
        authored_on: Some(instant.clone()),
        requester: Some(sender_ref.clone()),
        performer: vec![recipient_ref],
        reason_code: vec![z.reason.concept()],
        ..Default::default()
    };

    let letter_doc = fhir::DocumentReference {
        id: Some(id("letter")),
        status: Some("current".into()),
        r#type: Some(fhir::CodeableConcept { text: Some(z.letter_title.clone()), ..Default::default() }),
        subject: subject.clone(),
        date: Some(instant.clone()),
        author: vec![sender_ref.clone()],
        description: Some(z.letter_title.clone()),
        content: vec![fhir::DocumentReferenceContent {
            attachment: Some(fhir::Attachment {
                content_type: Some("application/pdf".into()),
                language: Some("nl".into()),
                data: Some(base64::engine::general_purpose::STANDARD.encode(pdf)),
                size: u32::try_from(pdf.len()).ok(),
                title: Some(d.mail.attachment_name.clone()),
                creation: Some(instant.clone()),
                ..Default::default()
            }),
            format: None,
        }],
        ..Default::default()
    };

    let structured: Vec<fhir::Reference> = acp
        .iter()
        .filter(|e| Some(e.full_url.as_deref()) != Some(patient.as_deref()))
        .filter_map(|e| e.full_url.as_deref().map(|u| reference(u, None)))
        .collect();
    let composition = fhir::Composition {
        id: Some(id("composition")),
        identifier: Some(document_identifier(&id("composition"))),
        status: Some("final".into()),
        r#type: Some(z.composition_type.concept()),
        subject,
        date: Some(instant.clone()),
        author: vec![sender_ref],
        title: Some(z.composition_title.clone()),
        section: vec![
            fhir::CompositionSection {
                title: Some("Verwijzing".into()),
                entry: vec![reference(&url("service-request"), None)],
                ..Default::default()
            },
            fhir::CompositionSection {
                title: Some(z.letter_title.clone()),
                text: Some(narrative(letter)),
                entry: vec![reference(&url("letter"), None)],
                ..Default::default()
            },
            fhir::CompositionSection {
                title: Some("Proactieve zorgplanning (gestructureerd, IKNL PZP)".into()),
                entry: structured,
                ..Default::default()
            },
        ],
        ..Default::default()
    };

    let mut entries = vec![
        entry(&id("composition"), composition),
        entry(&id("service-request"), referral),
        entry(&id("letter"), letter_doc),
        entry(&id("sender"), sender),
        entry(&id("recipient"), recipient),
    ];
    entries.extend(acp);
    document(&id("bundle"), instant, entries)
}

/// The suggested recipient's AGB code as an identifier, when the envelope gives one.
fn agb_identifier(party: &Party) -> Option<fhir::Identifier> {
    party.agb.as_ref().map(|agb| fhir::Identifier {
        system: Some(tables().identifiers.agb.clone()),
        value: Some(agb.clone()),
        ..Default::default()
    })
}
