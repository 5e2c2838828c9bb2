//! The SMTP sink (secure mail, and Edifact through a mail relay): lettre over rustls, STARTTLS required.
//!
//! Placeholder: the delivery issue builds it. Until then every attempt is a permanent failure, so that
//! nothing is ever sent unencrypted by an unfinished adapter.

use crate::config::ChannelEndpoint;

use super::{BoxFuture, Failure, Outgoing, Receipt, Sink};

pub struct SmtpSink {
    channel: String,
}

impl SmtpSink {
    pub fn from_endpoint(channel: &str, _endpoint: &ChannelEndpoint) -> Result<SmtpSink, String> {
        Ok(SmtpSink { channel: channel.to_owned() })
    }
}

impl Sink for SmtpSink {
    fn kind(&self) -> &'static str {
        "smtp"
    }

    fn deliver<'a>(&'a self, _msg: &'a Outgoing<'a>) -> BoxFuture<'a, Result<Receipt, Failure>> {
        Box::pin(async move { Err(Failure::Permanent(format!("the smtp sink of channel {} is not built yet", self.channel))) })
    }
}
