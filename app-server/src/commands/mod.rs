//! Commands for people at a terminal, in the style of `gh auth`: the same home, lock and rules
//! as the server, through the same `Credential`. What a command was asked for goes to stdout
//! (the status report, the token, `--json`); progress, prompts and errors go to stderr. Errors of
//! `auth-core` are told in terminal words here (flags and commands, not params and restarts).

mod login;
mod logout;
mod status;
mod token;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use auth_core::config::ConfigError;
use auth_core::store::AuthStore;
use auth_core::{AuthError, AuthEvent, Credential, EventSink, Limits, Provider};
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
    /// auth.json or the configuration cannot be read or written.
    pub const ERROR: u8 = 4;
    /// The command line is not valid: an unknown command or flag, a missing value
    /// (`EX_USAGE` of sysexits.h).
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
    let config_error = match &provider {
        Provider::Misconfigured(error) => Some(error.clone()),
        _ => None,
    };
    let (sender, events) = mpsc::unbounded_channel();
    let sink: EventSink = Arc::new(move |event: AuthEvent| {
        let _ = sender.send(event);
    });
    let credential = Arc::new(Credential::new(store, provider, sink, limits));
    let code = match command {
        Command::Status { json, .. } => {
            let code = status::run(&credential, json).await;
            match config_error {
                // What is stored is shown all the same; the exit code says what to fix first.
                Some(error) => fail(config_text(&error), exit::ERROR),
                None => code,
            }
        }
        Command::Token { .. } => match config_error {
            Some(error) => fail(config_text(&error), exit::ERROR),
            None => token::run(&credential).await,
        },
        Command::Login {
            with_api_key,
            device,
            browser,
            ..
        } => {
            let how = login::How::from_flags(with_api_key, device, browser);
            if let (Some(error), login::How::ApiKey) = (&config_error, &how) {
                eprintln!("warning: {error}; only API-key login works until it is fixed");
            }
            login::run(&credential, how, events).await
        }
        Command::Logout { .. } => {
            if let Some(error) = &config_error {
                eprintln!("warning: {error}; the sign-in may not be revoked at the provider");
            }
            logout::run(&credential).await
        }
        Command::GenerateJsonSchema { .. } => unreachable!("handled before the runtime starts"),
    };
    // A logout's revocation may still be on its way.
    credential.wait_background(Duration::from_secs(5)).await;
    ExitCode::from(code)
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
        AuthError::Unreadable { .. }
        | AuthError::Unwritable(_)
        | AuthError::TooManyCredentials { .. }
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
