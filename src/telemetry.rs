//! Logging through tracing-subscriber. Levels come from `RUST_LOG`. Each
//! request has a span (see `api::request_span`) whose fields every line
//! logged while handling it carries. The domain's entry points that do I/O
//! have spans of their own at `debug` (`#[tracing::instrument]`, with
//! `skip_all` and only ids as fields: nothing personal, no token), so that
//! `RUST_LOG=debug` shows which operation a line comes from, at no cost
//! otherwise.

use std::io::IsTerminal;

use tracing_subscriber::{fmt, layer::SubscriberExt, util::SubscriberInitExt, EnvFilter};

use crate::config::LogFormat;

/// The filter used when `RUST_LOG` is not set: our logs at info, the
/// database drivers' per-statement logs off.
fn default_filter() -> String {
    format!("info,{}", crate::db::DRIVER_LOG_FILTER)
}

pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter()));
    let registry = tracing_subscriber::registry().with(filter);
    // Logs go to stderr so that stdout stays free for command output
    // (`key create` prints only the token).
    let result = match format {
        // Colours only on a terminal: escape codes in a log file or a
        // journal make it hard to read and to grep.
        LogFormat::Pretty => registry
            .with(
                fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal()),
            )
            .try_init(),
        // Each line names its spans (`span`, the innermost, and `spans`,
        // all of them, outermost first) with their fields, so a request's
        // `request_id` is on every line logged while it is handled; the
        // pretty format prefixes the same fields.
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    // A second init (tests start many apps in one process) keeps the first.
    let _ = result;
}
