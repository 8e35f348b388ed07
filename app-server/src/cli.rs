//! Command-line flags. Every flag is listed only where it applies: the home and provider flags
//! for serving and the credential commands (not `generate-json-schema`), before or after the
//! command's name; `--log-level` everywhere with the default that applies there; `--credential`
//! (and `logout --all`) after the name of a credential command, the only place it means anything.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Shown at the end of `--help`: what no command means, and the exit codes.
const AFTER_HELP: &str = "\
With no command, the server speaks JSON-RPC 2.0 on stdin/stdout, one message per line, for the
app that spawns it (logs go to stderr). The commands are for people at a terminal. Each acts on
the default credential (auth.json), or with --credential NAME on that named one
(credentials/NAME.json); `status` without --credential lists every stored credential, and
`logout --all` signs out of all of them.

Exit codes of the commands: 0 usable / done; 1 signed out, or the command failed; 2 needs login;
3 temporarily unusable (the access token has expired and could not be renewed yet); 4 a
credential's file (auth.json, credentials/NAME.json) or config.toml cannot be read or written;
64 usage error (an unknown command or flag, a missing value, a --credential name that breaks the
rule); 130 interrupted. `status` listing several credentials exits with the highest code among
them (0 when all are usable).";

/// Shown at the end of `status --help`.
const STATUS_EXIT_CODES: &str = "\
Exit codes: 0 usable; 1 signed out; 2 needs login; 3 temporarily unusable (the access token has
expired and could not be renewed yet); 4 a credential's file or config.toml cannot be read; 64
usage error (a --credential name that breaks the rule, too). Listing several credentials: the
highest code among them, so 0 when all are usable.";

/// Shown at the end of `token --help`.
const TOKEN_EXIT_CODES: &str = "\
Exit codes: 0 usable; 1 signed out; 2 needs login; 3 temporarily unusable (the access token has
expired and could not be renewed yet); 4 the credential's file or config.toml cannot be read; 64
usage error (a --credential name that breaks the rule, too).";

#[derive(Debug, Parser)]
#[command(
    name = "auth-app-server",
    version,
    about = "Owns OAuth 2.0 / API-key credentials (a default one and named ones) and serves them over JSON-RPC on stdin/stdout.",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(flatten)]
    pub setup: Setup,
    /// Log level for stderr; RUST_LOG is honoured when this is absent [default: info]
    #[arg(long, value_name = "L")]
    pub log_level: Option<LogLevel>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// `--log-level`, wherever it was given (after the command name wins), and the default.
    pub fn log_level(&self) -> (Option<LogLevel>, LogLevel) {
        match &self.command {
            None => (self.log_level, LogLevel::Info),
            Some(command) => (command.log().log_level.or(self.log_level), LogLevel::Warn),
        }
    }

    /// The home and provider flags, wherever they were given; after the command name wins.
    pub fn setup(&self) -> Setup {
        match self.command.as_ref().and_then(Command::setup) {
            Some(after) => after.clone().or(&self.setup),
            None => self.setup.clone(),
        }
    }
}

/// Where the credentials are and which provider issues them.
#[derive(Debug, Clone, Default, Args)]
pub struct Setup {
    /// Folder of auth.json and config.toml [env: AUTH_APP_SERVER_HOME; default: the platform config folder]
    #[arg(long, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// OAuth issuer URL (overrides config.toml) [env: AUTH_APP_SERVER_ISSUER]
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
    /// OAuth client id (overrides config.toml) [env: AUTH_APP_SERVER_CLIENT_ID]
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// Scope to request; repeat for several (replaces config.toml's list)
    #[arg(long = "scope", value_name = "S")]
    pub scopes: Vec<String>,
    /// Protected resource (e.g. an MCP server URL) whose RFC 9728 metadata names the issuer [env: AUTH_APP_SERVER_PROTECTED_RESOURCE]
    #[arg(long, value_name = "URL")]
    pub protected_resource: Option<String>,
    /// Where the credentials are kept: auth.json, the OS keyring, or the keyring when one answers (overrides config.toml) [env: AUTH_APP_SERVER_STORAGE; default: file]
    #[arg(long, value_name = "BACKEND")]
    pub storage: Option<Storage>,
}

/// `--storage`: the values of `[storage] backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Storage {
    File,
    Keyring,
    Auto,
}

impl From<Storage> for auth_core::config::StorageBackend {
    fn from(storage: Storage) -> Self {
        match storage {
            Storage::File => Self::File,
            Storage::Keyring => Self::Keyring,
            Storage::Auto => Self::Auto,
        }
    }
}

/// `--log-level` of a command, whose default is quieter than the server's.
#[derive(Debug, Clone, Default, Args)]
pub struct CommandLog {
    /// Log level for stderr; RUST_LOG is honoured when this is absent [default: warn]
    #[arg(long, value_name = "L")]
    pub log_level: Option<LogLevel>,
}

impl Setup {
    /// These flags, each one absent taken from `earlier`.
    fn or(self, earlier: &Setup) -> Setup {
        Setup {
            home: self.home.or_else(|| earlier.home.clone()),
            issuer: self.issuer.or_else(|| earlier.issuer.clone()),
            client_id: self.client_id.or_else(|| earlier.client_id.clone()),
            scopes: if self.scopes.is_empty() {
                earlier.scopes.clone()
            } else {
                self.scopes
            },
            protected_resource: self
                .protected_resource
                .or_else(|| earlier.protected_resource.clone()),
            storage: self.storage.or(earlier.storage),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show whether you are signed in and whether the credentials are usable
    ///
    /// The report goes to stdout, errors to stderr. Never prints the token. Without
    /// --credential, when named credentials are stored: one line per stored credential
    /// (NAME: state), or with --json the listCredentials array; when only the default one is
    /// stored (or none), its report.
    #[command(after_help = STATUS_EXIT_CODES)]
    Status {
        /// Print the getAuthStatus JSON instead of text (the listCredentials array when listing)
        #[arg(long)]
        json: bool,
        /// Show only this credential [default: every stored credential]
        ///
        /// NAME matches ^[a-z0-9][a-z0-9._-]{0,63}$; "default" (or no flag) is the default credential
        /// (auth.json).
        #[arg(long, value_name = "NAME")]
        credential: Option<String>,
        #[command(flatten)]
        setup: Setup,
        #[command(flatten)]
        log: CommandLog,
    },
    /// Print a usable bearer token (refreshing a stale one first), for scripts
    #[command(after_help = TOKEN_EXIT_CODES)]
    Token {
        /// The credential whose token to print [default: the default credential]
        ///
        /// NAME matches ^[a-z0-9][a-z0-9._-]{0,63}$; "default" (or no flag) is the default credential
        /// (auth.json).
        #[arg(long, value_name = "NAME")]
        credential: Option<String>,
        #[command(flatten)]
        setup: Setup,
        #[command(flatten)]
        log: CommandLog,
    },
    /// Sign in: --with-api-key (key read from stdin), --device, or --browser
    Login {
        /// Read an API key from stdin (never from the command line); not echoed on a terminal
        #[arg(long, group = "how")]
        with_api_key: bool,
        /// Sign in with a code shown here, approved on another device (RFC 8628)
        #[arg(long, group = "how")]
        device: bool,
        /// Sign in in a web browser (opened when there is one; else the URL is printed)
        #[arg(long, group = "how")]
        browser: bool,
        /// The credential to sign in to [default: the default credential]
        ///
        /// --device and --browser sign a named credential in with the provider of its
        /// [credentials.NAME] table in config.toml, else the one its file recorded.
        ///
        /// NAME matches ^[a-z0-9][a-z0-9._-]{0,63}$; "default" (or no flag) is the default credential
        /// (auth.json).
        #[arg(long, value_name = "NAME")]
        credential: Option<String>,
        #[command(flatten)]
        setup: Setup,
        #[command(flatten)]
        log: CommandLog,
    },
    /// Sign out: delete the stored credentials and revoke the refresh token
    ///
    /// With --all, signs out of every stored credential, the default one included, one line
    /// each; exits 0 unless one failed (then with the highest code of those that failed).
    Logout {
        /// The credential to sign out of [default: the default credential]
        ///
        /// NAME matches ^[a-z0-9][a-z0-9._-]{0,63}$; "default" (or no flag) is the default credential
        /// (auth.json).
        #[arg(long, value_name = "NAME")]
        credential: Option<String>,
        /// Sign out of every stored credential, the default one included
        #[arg(long, conflicts_with = "credential")]
        all: bool,
        #[command(flatten)]
        setup: Setup,
        #[command(flatten)]
        log: CommandLog,
    },
    /// Write the protocol's JSON Schema and TypeScript bindings into DIR (for client authors)
    ///
    /// Writes one JSON Schema file per wire type, the bundle auth-app-server-protocol.schema.json,
    /// and the TypeScript bindings in DIR/typescript/; prints what it wrote. This is how schema/
    /// in the repository is made.
    GenerateJsonSchema {
        /// The folder to write into (created when missing; files in it are replaced)
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        #[command(flatten)]
        log: CommandLog,
    },
}

impl Command {
    /// The home and provider flags given after the command name, for commands that use them.
    fn setup(&self) -> Option<&Setup> {
        match self {
            Self::Status { setup, .. }
            | Self::Token { setup, .. }
            | Self::Login { setup, .. }
            | Self::Logout { setup, .. } => Some(setup),
            Self::GenerateJsonSchema { .. } => None,
        }
    }

    /// The value of `--credential`, for the commands that take it.
    pub fn credential(&self) -> Option<&str> {
        match self {
            Self::Status { credential, .. }
            | Self::Token { credential, .. }
            | Self::Login { credential, .. }
            | Self::Logout { credential, .. } => credential.as_deref(),
            Self::GenerateJsonSchema { .. } => None,
        }
    }

    fn log(&self) -> &CommandLog {
        match self {
            Self::Status { log, .. }
            | Self::Token { log, .. }
            | Self::Login { log, .. }
            | Self::Logout { log, .. }
            | Self::GenerateJsonSchema { log, .. } => log,
        }
    }
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_flags_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_after_the_command_name_win_and_the_others_are_kept() {
        let cli = Cli::parse_from([
            "auth-app-server",
            "--home",
            "/a",
            "--issuer",
            "https://i.example",
            "--scope",
            "x",
            "status",
            "--home",
            "/b",
        ]);
        let setup = cli.setup();
        assert_eq!(setup.home, Some(PathBuf::from("/b")));
        assert_eq!(setup.issuer.as_deref(), Some("https://i.example"));
        assert_eq!(setup.scopes, ["x"]);
        let quiet = Cli::parse_from(["auth-app-server", "--log-level", "debug", "token"]);
        assert!(matches!(
            quiet.log_level(),
            (Some(LogLevel::Debug), LogLevel::Warn)
        ));
    }

    #[test]
    fn each_help_shows_the_log_level_default_that_applies_there() {
        let mut cli = Cli::command();
        let serve = cli.render_long_help().to_string();
        assert!(serve.contains("[default: info]"), "{serve}");
        for name in ["status", "token", "login", "logout", "generate-json-schema"] {
            let help = cli
                .find_subcommand_mut(name)
                .expect("a command")
                .render_long_help()
                .to_string();
            assert!(help.contains("[default: warn]"), "{name}: {help}");
            assert!(!help.contains("[default: info]"), "{name}: {help}");
        }
    }

    #[test]
    fn generate_json_schema_takes_no_provider_flags() {
        let parsed = Cli::try_parse_from([
            "auth-app-server",
            "generate-json-schema",
            "--out",
            "d",
            "--issuer",
            "https://i.example",
        ]);
        assert!(parsed.is_err());
    }
}
