//! Command-line flags. Every flag is global, so it may come before or after a subcommand.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "auth-app-server",
    version,
    about = "Owns one OAuth 2.0 / API-key credential set and serves it over JSON-RPC on stdin/stdout."
)]
pub struct Cli {
    /// Folder of auth.json and config.toml [env: AUTH_APP_SERVER_HOME; default: the platform config folder]
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// OAuth issuer URL (overrides config.toml) [env: AUTH_APP_SERVER_ISSUER]
    #[arg(long, global = true, value_name = "URL")]
    pub issuer: Option<String>,
    /// OAuth client id (overrides config.toml) [env: AUTH_APP_SERVER_CLIENT_ID]
    #[arg(long, global = true, value_name = "ID")]
    pub client_id: Option<String>,
    /// Scope to request; repeat for several (replaces config.toml's list)
    #[arg(long = "scope", global = true, value_name = "S")]
    pub scopes: Vec<String>,
    /// Protected resource (e.g. an MCP server URL) whose RFC 9728 metadata names the issuer [env: AUTH_APP_SERVER_PROTECTED_RESOURCE]
    #[arg(long, global = true, value_name = "URL")]
    pub protected_resource: Option<String>,
    /// Log level for stderr (RUST_LOG is honoured when this is absent) [default: info]
    #[arg(long, global = true, value_name = "L")]
    pub log_level: Option<LogLevel>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show whether you are signed in and whether the credentials are usable
    ///
    /// Exit codes: 0 usable; 1 signed out; 2 needs login; 3 temporarily unusable (a refresh
    /// failed transiently and the token has expired); 4 credentials or configuration unreadable.
    Status {
        /// Print the getAuthStatus JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Print a usable bearer token (refreshing a stale one first), for scripts
    Token,
    /// Sign in: --with-api-key (key read from stdin), --device, or --browser
    Login {
        /// Read an API key from stdin (never from the command line)
        #[arg(long, group = "how")]
        with_api_key: bool,
        /// Sign in with a code shown here, approved on another device (RFC 8628)
        #[arg(long, group = "how")]
        device: bool,
        /// Sign in in a web browser (opened when there is one; else the URL is printed)
        #[arg(long, group = "how")]
        browser: bool,
    },
    /// Sign out: delete the stored credentials and revoke the refresh token
    Logout,
    /// Write the JSON Schema of every wire type, plus a bundle, into DIR and exit
    GenerateJsonSchema {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }
}
