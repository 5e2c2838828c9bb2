//! The HTTPS sink (FHIR, ZorgDomein, an HTTPS print service): reqwest over rustls, optional mTLS.
//!
//! Placeholder: the delivery issue builds it. Until then every attempt is a permanent failure, so that
//! nothing is ever sent by an unfinished adapter.

use crate::config::ChannelEndpoint;

use super::{BoxFuture, Failure, Outgoing, Receipt, Sink};

pub struct HttpsSink {
    channel: String,
}

impl HttpsSink {
    pub fn from_endpoint(channel: &str, _endpoint: &ChannelEndpoint) -> Result<HttpsSink, String> {
        Ok(HttpsSink { channel: channel.to_owned() })
    }
}

impl Sink for HttpsSink {
    fn kind(&self) -> &'static str {
        "https"
    }

    fn deliver<'a>(&'a self, _msg: &'a Outgoing<'a>) -> BoxFuture<'a, Result<Receipt, Failure>> {
        Box::pin(async move { Err(Failure::Permanent(format!("the https sink of channel {} is not built yet", self.channel))) })
    }
}
