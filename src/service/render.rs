//! The one place where a route's message is rendered for its channel.
//!
//! Every channel's bytes come from the same validated record through the renderers in
//! `crate::render`; this module only picks the renderer and reads the parties' settings from the
//! envelope ([`RouteContext`] carries the sender and the recipient's position, from which the stable
//! Message-ID and document ids are derived: route ids do not exist yet when a handover is rendered).
//! A [`RenderError`] with a pointer becomes a 422 naming the recipient's member.

use serde_json::Value;

use crate::record::AcpRecord;
pub use crate::render::packaging::RouteContext;
use crate::render::packaging::{route_key, Moment, Party, Route};
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
pub fn render_route(
    channel: Channel,
    record: &AcpRecord,
    recipient: &Value,
    ctx: &RouteContext<'_>,
) -> Result<RenderedMessage, RenderError> {
    use crate::render::{dossier, edifact, fhir, letter, mail, pdf, worklist, zorgdomein};
    let date = Moment::for_message(record, ctx.source_date_epoch);
    let sender = Party::from_json(ctx.sender);
    let to = Party::from_json(recipient);
    // Lazily: the Edifact and FHIR channels need neither the key nor the parties.
    let route = || Route {
        sender: &sender,
        recipient: &to,
        date,
        key: route_key(record, recipient, ctx, channel),
        recipient_index: ctx.recipient_index,
    };
    // The PDF is identified as the post route's letter on every channel that carries it, so the mail
    // attachment and the ZorgDomein DocumentReference are byte for byte the letter the print queue gets.
    let make_pdf = || {
        let document_id = hex::encode(route_key(record, recipient, ctx, Channel::Post));
        pdf::render(record, &pdf::PdfLetter { sender: &sender, recipient: &to, date, document_id })
            .map_err(|e| RenderError { recipient_pointer: None, message: e.to_string() })
    };
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
        Channel::Post => RenderedMessage {
            content_type: "application/pdf",
            renderer: "pdf (A4 letter, PDF/A-2u)",
            body: Body::Binary(make_pdf()?),
        },
        Channel::SecureMail => {
            let message = mail::render(&letter::render(record), &make_pdf()?, &route()).map_err(|e| RenderError {
                recipient_pointer: Some("/endpoints/email".to_owned()),
                message: e.to_string(),
            })?;
            RenderedMessage {
                content_type: "message/rfc822",
                renderer: "secure mail (MIME, letter + PDF)",
                body: Body::Text(message),
            }
        }
        Channel::Zorgdomein => {
            let package = zorgdomein::bundle(record, &route(), &letter::render(record), &make_pdf()?);
            RenderedMessage {
                content_type: "application/fhir+json",
                renderer: "zorgdomein (FHIR document Bundle, ICPC A20 referral)",
                body: Body::Text(fhir::to_json(&package)),
            }
        }
        Channel::Dossier => RenderedMessage {
            content_type: "application/fhir+json",
            renderer: "dossier (FHIR document Bundle of the whole record)",
            body: Body::Text(fhir::to_json(&dossier::bundle(record, &route(), &letter::render(record)))),
        },
        Channel::Mdo => RenderedMessage {
            content_type: "application/fhir+json",
            renderer: "mdo (FHIR Task worklist item)",
            body: Body::Text(worklist::to_json(&worklist::task(record, &route(), &letter::render(record)))),
        },
    })
}
