//! `auth-app-server token [--credential NAME]`: a usable bearer token on stdout (refreshing a
//! stale one first), for scripts; a message on stderr and a non-zero exit when there is none.

use auth_core::registry::{Registry, Which};
use auth_core::{AuthState, StatusOptions, StatusReport};

use super::{command_line, exit, fail, fail_with};

pub async fn run(registry: &Registry, which: &Which) -> u8 {
    let credential = match registry.existing(which).await {
        Ok(credential) => credential,
        Err(error) => return fail_with(&error),
    };
    let report = match credential {
        Some(credential) => {
            let options = StatusOptions {
                include_token: true,
                refresh: true,
                // A one-shot command ends its process when it returns: the refresh must not
                // be cut off mid-rotation.
                wait_for_refresh: true,
                received: None,
            };
            match credential.status(options).await {
                Ok(report) => report,
                Err(error) => return fail_with(&error),
            }
        }
        // Nothing stored under this name.
        None => StatusReport::signed_out(),
    };
    if let Some(token) = &report.token {
        println!("{}", token.expose());
        return exit::OK;
    }
    let why = report.refresh_error.as_ref().map(|e| e.message.clone());
    match report.state {
        AuthState::SignedOut => fail(
            format!(
                "not signed in: run `{} --device` (or --browser, --with-api-key)",
                command_line("login", which)
            ),
            exit::SIGNED_OUT_OR_FAILED,
        ),
        AuthState::Degraded => fail(
            format!(
                "no usable token right now: {}",
                why.unwrap_or_else(|| "the last refresh failed".into())
            ),
            exit::TEMPORARILY_UNUSABLE,
        ),
        AuthState::NeedsLogin | AuthState::Active => fail(
            format!(
                "no usable token: {}",
                why.unwrap_or_else(
                    || "the token expired and cannot be renewed: sign in again".into()
                )
            ),
            exit::NEEDS_LOGIN,
        ),
    }
}
