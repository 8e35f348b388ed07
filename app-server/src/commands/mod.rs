//! Commands for people at a terminal, in the style of `gh auth`: the same home, lock and rules
//! as the server, through the same `Registry` of credentials. Each acts on the default
//! credential, or on the one `--credential NAME` names (its results then start with `NAME: `);
//! `status` without it lists every stored credential and `logout --all` signs out of each. What
//! a command was asked for goes to stdout (the status report, the token, `--json`); progress,
//! prompts and errors go to stderr. Errors of `auth-core` are told in terminal words here
//! (flags and commands, not params and restarts).

mod login;
mod logout;
mod status;
mod token;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use auth_core::config::ConfigError;
use auth_core::registry::{MAX_CREDENTIALS, NAME_RULE, NamedEventSink, Registry, Which};
use auth_core::store::AuthStore;
use auth_core::{AuthError, AuthEvent, Limits, Provider};
use tokio::sync::mpsc;

use crate::cli::Command;

/// Exit codes shared by the commands (documented in `--help` and the README).
pub mod exit {
    /// The credentials are usable / the command succeeded.
    pub const OK: u8 = 0;
    /// Not signed in (status, token) or the command failed (login, logout).
    pub const SIGNED_OUT_OR_FAILED: u8 = 1;
    /// Signed in, but the sign-in can no longer be renewed: sign in again.
    pub const NEEDS_LOGIN: u8 = 2;
    /// A refresh failed for a while and the token has expired: retry later.
    pub const TEMPORARILY_UNUSABLE: u8 = 3;
    /// A credential's file (auth.json, credentials/NAME.json) or the configuration cannot be
    /// read or written; a new credential past the most a home keeps.
    pub const ERROR: u8 = 4;
    /// The command line is not valid: an unknown command or flag, a missing value, a
    /// `--credential` name that breaks the rule (`EX_USAGE` of sysexits.h).
    pub const USAGE: u8 = 64;
    /// Interrupted (Ctrl-C).
    pub const INTERRUPTED: u8 = 130;
}

pub async fn run(
    command: Command,
    store: AuthStore,
    provider: Provider,
    limits: Limits,
) -> ExitCode {
    let chosen = match chosen(command.credential()) {
        Ok(chosen) => chosen,
        Err(code) => return ExitCode::from(code),
    };
    let which = chosen.clone().unwrap_or(Which::Default);
    let config_error = match &provider {
        Provider::Misconfigured(error) => Some(error.clone()),
        _ => None,
    };
    let (sender, events) = mpsc::unbounded_channel();
    // A login waits for its own loginId, whichever credential it is for.
    let sink: NamedEventSink = Arc::new(move |_: &str, event: AuthEvent| {
        let _ = sender.send(event);
    });
    let registry = Registry::new(store, provider, sink, limits);
    let code = match command {
        Command::Status { json, .. } => {
            let code = status::run(&registry, chosen.as_ref(), json).await;
            match config_error {
                // What is stored is shown all the same; the exit code says what to fix first.
                Some(error) => fail(config_text(&error), exit::ERROR),
                None => code,
            }
        }
        Command::Token { .. } => match config_error {
            Some(error) => fail(config_text(&error), exit::ERROR),
            None => token::run(&registry, &which).await,
        },
        Command::Login {
            with_api_key,
            device,
            browser,
            ..
        } => {
            let Some(how) = login::How::from_flags(with_api_key, device, browser) else {
                return ExitCode::from(fail(
                    "choose how to sign in: --device, --browser, or --with-api-key (reads the key from stdin)",
                    exit::USAGE,
                ));
            };
            match (&config_error, &how, &which) {
                (Some(error), login::How::ApiKey, _) => {
                    eprintln!("warning: {error}; only API-key login works until it is fixed");
                    login::run(&registry, &which, how, events).await
                }
                // A config.toml that cannot be read cannot say the named credential's
                // provider either (its [credentials.NAME] table).
                (Some(error), login::How::Device | login::How::Browser, Which::Named(_)) => {
                    fail(config_text(error), exit::ERROR)
                }
                _ => login::run(&registry, &which, how, events).await,
            }
        }
        Command::Logout { all, .. } => {
            if let Some(error) = &config_error {
                eprintln!("warning: {error}; the sign-in may not be revoked at the provider");
            }
            if all {
                logout::run_all(&registry).await
            } else {
                logout::run(&registry, &which).await
            }
        }
        Command::GenerateJsonSchema { .. } => unreachable!("handled before the runtime starts"),
    };
    // A logout's revocation may still be on its way.
    registry.wait_background(Duration::from_secs(5)).await;
    ExitCode::from(code)
}

/// The credential `--credential` names; `Ok(None)` without the flag. A name that breaks the
/// rule is a usage error that quotes the rule, never the value (it may be something pasted by
/// mistake, such as a token); `Err` is the exit code, the error already told.
fn chosen(flag: Option<&str>) -> Result<Option<Which>, u8> {
    let Some(flag) = flag else {
        return Ok(None);
    };
    Which::parse(Some(flag)).map(Some).map_err(|_| {
        fail(
            format!(
                "the name given to --credential must match {NAME_RULE}: lowercase letters, digits, \
                 '.', '_' and '-', at most 64 characters, starting with a letter or digit (leave \
                 --credential out, or pass `default`, for the default credential)"
            ),
            exit::USAGE,
        )
    })
}

/// How a person runs `command` on `which`: `auth-app-server login`, or
/// `auth-app-server login --credential work`.
fn command_line(command: &str, which: &Which) -> String {
    match which {
        Which::Default => format!("auth-app-server {command}"),
        Which::Named(name) => format!("auth-app-server {command} --credential {name}"),
    }
}

/// A result told to people: as in version 2 for the default credential, after `NAME: ` for a
/// named one.
fn about(which: &Which, text: &str) -> String {
    match which {
        Which::Default => text.to_owned(),
        Which::Named(name) => format!("{name}: {text}"),
    }
}

/// Prints a failure for people, prefixed with the program name.
fn fail(message: impl std::fmt::Display, code: u8) -> u8 {
    eprintln!("auth-app-server: {message}");
    code
}

/// Prints an error of the credential in terminal words and returns its exit code.
fn fail_with(error: &AuthError) -> u8 {
    fail(explain(error), error_code(error))
}

/// An error of the credential in terminal words. The credential's own texts are written for
/// clients of the protocol ("restart the server", a params member): those are rewritten here.
fn explain(error: &AuthError) -> String {
    match error {
        AuthError::ProviderMisconfigured(error) => config_text(error),
        AuthError::NoProvider { config_path } => format!(
            "no OAuth provider is configured: set issuer and client_id in the [provider] section \
             of {}, or pass --issuer and --client-id (`login --with-api-key` works without one)",
            config_path.display()
        ),
        AuthError::NoNamedProvider { name, config_path } => format!(
            "the credential \"{name}\" has no OAuth provider: add a [credentials.{name}] table to {} (API-key login works without one)",
            config_path.display()
        ),
        AuthError::TooManyCredentials { count } => format!(
            "this home already holds {count} credentials, the most it keeps ({MAX_CREDENTIALS}): \
             sign out of one that is no longer needed (`auth-app-server logout --credential \
             NAME`; `auth-app-server status` lists them), then sign in again. Nothing was changed"
        ),
        AuthError::Unreadable { .. }
        | AuthError::Unwritable(_)
        | AuthError::StorageUnavailable(_)
        | AuthError::InvalidInput(_)
        | AuthError::ProviderUnavailable(_) => error.to_string(),
    }
}

/// A `config.toml` (or provider flag) that is not valid, and what to do.
fn config_text(error: &ConfigError) -> String {
    format!("{error}; fix it and run the command again")
}

/// Exit code for an error of the credential.
fn error_code(error: &AuthError) -> u8 {
    use auth_core::AuthError::*;
    match error {
        Unreadable { .. }
        | Unwritable(_)
        | StorageUnavailable(_)
        | ProviderMisconfigured(_)
        | TooManyCredentials { .. } => exit::ERROR,
        InvalidInput(_) | NoProvider { .. } | NoNamedProvider { .. } | ProviderUnavailable(_) => {
            exit::SIGNED_OUT_OR_FAILED
        }
    }
}
