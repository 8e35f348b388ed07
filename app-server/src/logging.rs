//! Logging to stderr only: stdout carries protocol lines and nothing else.

use tracing_subscriber::EnvFilter;

use crate::cli::LogLevel;

/// `--log-level` wins; else `RUST_LOG`; else `default` (the server logs at info, the
/// commands for people at warn).
pub fn init(level: Option<LogLevel>, default: LogLevel) {
    let filter = match level {
        Some(level) => EnvFilter::new(level.as_str()),
        None => {
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default.as_str()))
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Plain text even on a terminal: colours would need tracing-subscriber's `ansi` feature
        // (and panic without it), and logs are for reading and grepping, not for show.
        .with_ansi(false)
        .with_target(false)
        .init();
}
