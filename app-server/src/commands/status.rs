//! `auth-app-server status [--json]`: what state the credentials are in and what to do, on
//! stdout (so that it can be piped); errors on stderr. Never prints the token.

use std::sync::Arc;

use auth_core::store::StorageKind;
use auth_core::{AuthMethod, AuthState, Credential, StatusOptions, StatusReport};

use super::{exit, fail_with};
use crate::convert;

pub async fn run(credential: &Arc<Credential>, json: bool) -> u8 {
    let report = match credential
        .status(StatusOptions {
            include_token: false,
            refresh: false,
            wait_for_refresh: false,
            received: None,
        })
        .await
    {
        Ok(report) => report,
        Err(error) => return fail_with(&error),
    };
    let now = auth_core::time::now_unix();
    let code = exit_code(&report, now);
    if json {
        let wire = convert::status(report);
        println!(
            "{}",
            serde_json::to_string_pretty(&wire).expect("status serializes")
        );
    } else {
        print!("{}", describe(&report, now));
    }
    code
}

/// An access token past its expiry is not usable, whatever the state says: `token` would
/// have to renew it first.
fn is_expired(report: &StatusReport, now: i64) -> bool {
    report.expires_at.is_some_and(|at| at <= now)
}

fn exit_code(report: &StatusReport, now: i64) -> u8 {
    match report.state {
        AuthState::SignedOut => exit::SIGNED_OUT_OR_FAILED,
        AuthState::NeedsLogin => exit::NEEDS_LOGIN,
        AuthState::Active | AuthState::Degraded if is_expired(report, now) => {
            exit::TEMPORARILY_UNUSABLE
        }
        AuthState::Active | AuthState::Degraded => exit::OK,
    }
}

/// The text for people: state, method, account, expiry, last error and what to do.
fn describe(report: &StatusReport, now: i64) -> String {
    let mut out = String::new();
    let method = match report.method {
        Some(AuthMethod::ApiKey) => "an API key",
        Some(AuthMethod::Oauth) => "OAuth",
        None => "",
    };
    let who = report
        .account
        .as_ref()
        .and_then(|a| {
            a.email
                .clone()
                .or_else(|| a.name.clone())
                .or_else(|| a.subject.clone())
        })
        .map(|who| format!(" as {who}"))
        .unwrap_or_default();
    let expired = is_expired(report, now);
    let storage = match report.storage {
        Some(StorageKind::Keyring) => "Credentials are kept in the OS keyring.\n",
        Some(StorageKind::File) => "Credentials are kept in auth.json.\n",
        None => "",
    };
    match report.state {
        AuthState::SignedOut => {
            out.push_str("Not signed in.\n");
            out.push_str("Sign in with `auth-app-server login --device`, `--browser`, or `--with-api-key`.\n");
            out.push_str(storage);
            return out;
        }
        AuthState::Active if expired => out.push_str(&format!(
            "Signed in with {method}{who}: the access token has expired and was not renewed yet.\n"
        )),
        AuthState::Active => out.push_str(&format!("Signed in with {method}{who}: active.\n")),
        AuthState::Degraded => out.push_str(&format!(
            "Signed in with {method}{who}: degraded (the last refresh failed).\n"
        )),
        AuthState::NeedsLogin => out.push_str(&format!(
            "Signed in with {method}{who}, but the sign-in must be renewed.\n"
        )),
    }
    if let Some(at) = report.expires_at {
        let when = auth_core::time::rfc3339(at);
        if at > now {
            out.push_str(&format!(
                "Access token expires at {when} (in {}).\n",
                human_duration(at - now)
            ));
        } else {
            out.push_str(&format!("Access token expired at {when}.\n"));
        }
    }
    if let Some(error) = &report.refresh_error {
        let code = error
            .code
            .as_deref()
            .map(|c| format!(" ({c})"))
            .unwrap_or_default();
        out.push_str(&format!("Last refresh error{code}: {}.\n", error.message));
        if let Some(secs) = error.retry_after_secs {
            out.push_str(&format!(
                "The next attempt may start in {}.\n",
                human_duration(secs as i64)
            ));
        }
    }
    match report.state {
        AuthState::SignedOut => {}
        AuthState::NeedsLogin => out.push_str(
            "What to do: sign in again with `auth-app-server login --device` (or `--browser`).\n",
        ),
        AuthState::Degraded if expired => out.push_str(
            "The credentials are not usable until a refresh succeeds; it is retried automatically \
             (`auth-app-server token` tries now).\n",
        ),
        AuthState::Active if expired => out.push_str(
            "The credentials are not usable until the token is renewed: `auth-app-server token` \
             renews it (so does the next use by an app).\n",
        ),
        AuthState::Degraded => out
            .push_str("The credentials are usable; the token is refreshed again automatically.\n"),
        AuthState::Active => out.push_str("The credentials are usable.\n"),
    }
    out.push_str(storage);
    out
}

fn human_duration(secs: i64) -> String {
    match secs {
        s if s < 90 => format!("{s} s"),
        s if s < 90 * 60 => format!("{} min", (s + 30) / 60),
        s if s < 48 * 3600 => format!("{} h", (s + 1800) / 3600),
        s => format!("{} days", (s + 43_200) / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(5), "5 s");
        assert_eq!(human_duration(3600), "60 min");
        assert_eq!(human_duration(7200), "2 h");
        assert_eq!(human_duration(86_400 * 3), "3 days");
    }

    #[test]
    fn signed_out_says_how_to_sign_in() {
        let text = describe(&StatusReport::signed_out(), 0);
        assert!(
            text.contains("Not signed in") && text.contains("login --device"),
            "{text}"
        );
    }

    #[test]
    fn an_expired_access_token_is_never_called_usable() {
        for state in [AuthState::Active, AuthState::Degraded] {
            let report = StatusReport {
                method: Some(AuthMethod::Oauth),
                state,
                expires_at: Some(100),
                ..StatusReport::signed_out()
            };
            assert_eq!(exit_code(&report, 99), exit::OK, "{state:?}");
            assert!(describe(&report, 99).contains("are usable"), "{state:?}");
            for now in [100, 5_000] {
                assert_eq!(
                    exit_code(&report, now),
                    exit::TEMPORARILY_UNUSABLE,
                    "{state:?}"
                );
                let text = describe(&report, now);
                assert!(
                    text.contains("not usable") && !text.contains("are usable"),
                    "{state:?}: {text}"
                );
            }
        }
    }
}
