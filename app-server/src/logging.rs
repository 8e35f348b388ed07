//! Logging to stderr only: stdout carries protocol lines and nothing else.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

use crate::cli::LogLevel;

/// `--log-level` wins; else `RUST_LOG`; else `default` (the server logs at info, the
/// commands for people at warn).
pub fn init(level: Option<LogLevel>, default: LogLevel) {
    let level = match level {
        Some(level) => level,
        None => match std::env::var_os(EnvFilter::DEFAULT_ENV) {
            Some(_) => {
                let filter = EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| EnvFilter::new(default.as_str()));
                return subscriber().with_env_filter(filter).init();
            }
            None => default,
        },
    };
    // A plain level is the same filter as `EnvFilter::new(level)`, without building one (its
    // directive tables and per-callsite maps): a few pages less to touch at start.
    subscriber().with_max_level(level_filter(level)).init();
}

type Builder = tracing_subscriber::fmt::SubscriberBuilder<
    tracing_subscriber::fmt::format::DefaultFields,
    tracing_subscriber::fmt::format::Format,
    LevelFilter,
    fn() -> std::io::Stderr,
>;

fn subscriber() -> Builder {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr as fn() -> std::io::Stderr)
        // Plain text even on a terminal: colours would need tracing-subscriber's `ansi` feature
        // (and panic without it), and logs are for reading and grepping, not for show.
        .with_ansi(false)
        .with_target(false)
}

fn level_filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Error => LevelFilter::ERROR,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Trace => LevelFilter::TRACE,
    }
}
