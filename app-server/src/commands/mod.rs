//! Commands for people at a terminal, in the style of `gh auth`: the same home, lock and rules
//! as the server, through the same `AuthManager`. Output for people goes to stderr, output for
//! scripts (the token, `--json`) to stdout.

mod login;
mod logout;
mod status;
mod token;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use auth_core::store::AuthStore;
use auth_core::{AuthEvent, AuthManager, EventSink, Provider};
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
    /// Interrupted (Ctrl-C).
    pub const INTERRUPTED: u8 = 130;
}

pub async fn run(command: Command, store: AuthStore, provider: Provider) -> ExitCode {
    let (sender, events) = mpsc::unbounded_channel();
    let sink: EventSink = Arc::new(move |event: AuthEvent| {
        let _ = sender.send(event);
    });
    let manager = Arc::new(AuthManager::new(store, provider, sink));
    let code = match command {
        Command::Status { json } => status::run(&manager, json).await,
        Command::Token => token::run(&manager).await,
        Command::Login {
            with_api_key,
            device,
            browser,
        } => {
            login::run(
                &manager,
                login::How::from_flags(with_api_key, device, browser),
                events,
            )
            .await
        }
        Command::Logout => logout::run(&manager).await,
        Command::GenerateJsonSchema { .. } => unreachable!("handled before the runtime starts"),
    };
    // A logout's revocation may still be on its way.
    manager.wait_background(Duration::from_secs(5)).await;
    ExitCode::from(code)
}

/// Prints a failure for people, prefixed with the program name.
fn fail(message: impl std::fmt::Display, code: u8) -> u8 {
    eprintln!("auth-app-server: {message}");
    code
}

/// Exit code for an error of the manager.
fn error_code(error: &auth_core::AuthError) -> u8 {
    use auth_core::AuthError::*;
    match error {
        Unreadable { .. } | Unwritable(_) | ProviderMisconfigured(_) => exit::ERROR,
        InvalidInput(_) | NoProvider { .. } | ProviderUnavailable(_) => exit::SIGNED_OUT_OR_FAILED,
    }
}
