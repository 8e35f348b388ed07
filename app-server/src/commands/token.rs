//! `auth-app-server token`: a usable bearer token on stdout (refreshing a stale one first),
//! for scripts; a message on stderr and a non-zero exit when there is none.

use std::sync::Arc;

use auth_core::{AuthState, Credential, StatusOptions};

use super::{exit, fail, fail_with};

pub async fn run(credential: &Arc<Credential>) -> u8 {
    let report = match credential
        .status(StatusOptions {
            include_token: true,
            refresh: true,
            // A one-shot command ends its process when it returns: the refresh must not be
            // cut off mid-rotation.
            wait_for_refresh: true,
            received: None,
        })
        .await
    {
        Ok(report) => report,
        Err(error) => return fail_with(&error),
    };
    if let Some(token) = &report.token {
        println!("{}", token.expose());
        return exit::OK;
    }
    let why = report.refresh_error.as_ref().map(|e| e.message.clone());
    match report.state {
        AuthState::SignedOut => fail(
            "not signed in: run `auth-app-server login --device` (or --browser, --with-api-key)",
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
