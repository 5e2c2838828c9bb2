//! Structured logs with `tracing`: human-readable text by default, one JSON object a line with
//! `--log-format json`. The level comes from `RUST_LOG` (default `info`).
//!
//! What is logged is decided where it is logged: route templates instead of paths, opaque handover
//! and route ids, counts. Never record content, names or BSNs.

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the global subscriber; a second call (tests starting several servers) is a no-op.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
    };
}
