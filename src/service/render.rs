//! The one place where a route's message is rendered for its channel.
//!
//! Every channel's bytes come from the same validated record through the renderers in
//! `crate::render`; this module only picks the renderer and the recipient's settings. Channels whose
//! packaging is still to come (ZorgDomein referral package, MIME secure mail, PDF for the print queue,
//! MDO worklist item) get the clinical letter text or the FHIR Bundle they will wrap, labelled as such in
//! [`RenderedMessage::renderer`] so that nobody mistakes it for the final format.
//! A [`RenderError`] with a pointer becomes a 422 naming the recipient's member.

use serde_json::Value;

use crate::record::AcpRecord;
use crate::routing::Channel;

/// A message ready for its channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMessage {
    pub content_type: &'static str,
    /// Which renderer made it (stored with the message, for the operator and for replays).
    pub renderer: &'static str,
    pub body: Body,
}

/// A message body: text for every channel but the print queue's PDF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Text(String),
    Binary(Vec<u8>),
}

impl Body {
    /// The body as the `messages` table keeps it: the text itself, or base64 of the bytes, with the
    /// encoding that says which (`utf-8` | `base64`).
    pub fn stored(&self) -> (std::borrow::Cow<'_, str>, &'static str) {
        use base64::Engine as _;
        match self {
            Body::Text(t) => (std::borrow::Cow::Borrowed(t), "utf-8"),
            Body::Binary(b) => (std::borrow::Cow::Owned(base64::engine::general_purpose::STANDARD.encode(b)), "base64"),
        }
    }

    /// Reads a stored body back; `None` when the encoding is unknown or the base64 is damaged.
    pub fn from_stored(body: String, encoding: &str) -> Option<Body> {
        use base64::Engine as _;
        match encoding {
            "utf-8" => Some(Body::Text(body)),
            "base64" => base64::engine::general_purpose::STANDARD.decode(body.as_bytes()).ok().map(Body::Binary),
            _ => None,
        }
    }

    /// The bytes a channel moves.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Body::Text(t) => t.as_bytes(),
            Body::Binary(b) => b,
        }
    }
}

/// Why a message cannot be made for this recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderError {
    /// A JSON pointer relative to the recipient object (`/endpoints/edifact`), when the recipient
    /// lacks something the channel needs.
    pub recipient_pointer: Option<String>,
    pub message: String,
}

/// Renders the record for one route.
pub fn render_route(channel: Channel, record: &AcpRecord, recipient: &Value) -> Result<RenderedMessage, RenderError> {
    use crate::render::{edifact, fhir, letter};
    Ok(match channel {
        Channel::Edifact => {
            let mut settings = edifact::EdifactSettings::default();
            if let Some(mailbox) = recipient.pointer("/endpoints/edifact").and_then(Value::as_str) {
                settings.recipient_mailbox = mailbox.to_owned();
            }
            if let Some(name) = recipient.get("name").and_then(Value::as_str) {
                settings.recipient.name = name.to_owned();
            }
            settings.check().map_err(|e| RenderError {
                recipient_pointer: Some("/endpoints/edifact".to_owned()),
                message: e.to_string(),
            })?;
            RenderedMessage {
                content_type: "application/edifact",
                renderer: "edifact (Medeur MEDVRI/MEDSPE)",
                body: Body::Text(edifact::render(record, &settings)),
            }
        }
        Channel::Fhir => RenderedMessage {
            content_type: "application/fhir+json",
            renderer: "fhir (IKNL PZP transaction Bundle)",
            body: Body::Text(fhir::to_json(&fhir::bundle(record, fhir::BundleKind::Transaction))),
        },
        Channel::Dossier => RenderedMessage {
            content_type: "application/fhir+json",
            renderer: "dossier (FHIR collection Bundle of the whole record)",
            body: Body::Text(fhir::to_json(&fhir::bundle(record, fhir::BundleKind::Collection))),
        },
        Channel::Post | Channel::SecureMail | Channel::Zorgdomein | Channel::Mdo => RenderedMessage {
            content_type: "text/plain; charset=utf-8",
            renderer: "letter text (the channel's packaging is still to come)",
            body: Body::Text(letter::render(record)),
        },
    })
}
