//! `auth-app-server status [--credential NAME] [--json]`: what state the credentials are in and
//! what to do, on stdout (so that it can be piped); errors on stderr. Never prints the token.
//!
//! Without `--credential`, a home holding named credentials is listed, one line per stored
//! credential (`--json`: the `listCredentials` array); a home holding only the default one (or
//! none) shows that one's report, as in version 2.

use auth_core::registry::{DEFAULT_NAME, Listed, Registry, Which};
use auth_core::store::StorageKind;
use auth_core::{AuthMethod, AuthState, StatusOptions, StatusReport};

use super::{command_line, exit, fail_with};
use crate::convert;

/// `chosen` is what `--credential` named, if it was given.
pub async fn run(registry: &Registry, chosen: Option<&Which>, json: bool) -> u8 {
    match chosen {
        Some(which) => one(registry, which, json).await,
        None if registry.stored_names().await.is_empty() => {
            one(registry, &Which::Default, json).await
        }
        None => all(registry, json).await,
    }
}

/// The report of one credential; the exit code says whether it is usable.
async fn one(registry: &Registry, which: &Which, json: bool) -> u8 {
    let credential = match registry.existing(which).await {
        Ok(credential) => credential,
        Err(error) => return fail_with(&error),
    };
    let report = match credential {
        Some(credential) => match credential.status(options()).await {
            Ok(report) => report,
            Err(error) => return fail_with(&error),
        },
        // Nothing stored under this name: signed out, and nothing kept for it.
        None => StatusReport {
            storage: Some(registry.default_credential().store().kind()),
            ..StatusReport::signed_out()
        },
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
        print!("{}", describe(&report, now, which));
    }
    code
}

/// One line per stored credential; the exit code is the highest of theirs (0 when all are
/// usable).
async fn all(registry: &Registry, json: bool) -> u8 {
    let listed = registry.list().await;
    if listed.iter().all(|entry| entry.name == DEFAULT_NAME) {
        // The named documents hold no sign-in: the default credential's report.
        return one(registry, &Which::Default, json).await;
    }
    let now = auth_core::time::now_unix();
    let code = list_exit_code(&listed, now);
    if json {
        let wire: Vec<_> = listed.into_iter().map(convert::listed).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&wire).expect("the list serializes")
        );
    } else {
        for entry in &listed {
            match &entry.status {
                Ok(report) => println!("{}: {}", entry.name, headline(report, now)),
                Err(message) => println!("{}: {message}", entry.name),
            }
        }
    }
    code
}

/// What `status` asks of a credential: its state as stored, no token, no request.
fn options() -> StatusOptions {
    StatusOptions {
        include_token: false,
        refresh: false,
        wait_for_refresh: false,
        received: None,
    }
}

/// The highest exit code of the credentials listed: a credential that cannot be read counts
/// as [`exit::ERROR`].
fn list_exit_code(listed: &[Listed], now: i64) -> u8 {
    listed
        .iter()
        .map(|entry| match &entry.status {
            Ok(report) => exit_code(report, now),
            Err(_) => exit::ERROR,
        })
        .max()
        .unwrap_or(exit::SIGNED_OUT_OR_FAILED)
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

/// The first line of [`describe`], without its line break: the state, method and account.
fn headline(report: &StatusReport, now: i64) -> String {
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
    match report.state {
        AuthState::SignedOut => "Not signed in.".to_owned(),
        AuthState::Active if is_expired(report, now) => format!(
            "Signed in with {method}{who}: the access token has expired and was not renewed yet."
        ),
        AuthState::Active => format!("Signed in with {method}{who}: active."),
        AuthState::Degraded => {
            format!("Signed in with {method}{who}: degraded (the last refresh failed).")
        }
        AuthState::NeedsLogin => {
            format!("Signed in with {method}{who}, but the sign-in must be renewed.")
        }
    }
}

/// The text for people about the credential `which`: state, method, account, expiry, last
/// error and what to do.
fn describe(report: &StatusReport, now: i64, which: &Which) -> String {
    let login = command_line("login", which);
    let token = command_line("token", which);
    let mut out = headline(report, now);
    out.push('\n');
    let expired = is_expired(report, now);
    let storage = match (report.storage, which) {
        (Some(StorageKind::Keyring), _) => "Credentials are kept in the OS keyring.\n".to_owned(),
        (Some(StorageKind::File), Which::Default) => {
            "Credentials are kept in auth.json.\n".to_owned()
        }
        (Some(StorageKind::File), Which::Named(name)) => {
            format!("Credentials are kept in credentials/{name}.json.\n")
        }
        (None, _) => String::new(),
    };
    if report.state == AuthState::SignedOut {
        out.push_str(&format!(
            "Sign in with `{login} --device`, `--browser`, or `--with-api-key`.\n"
        ));
        out.push_str(&storage);
        return out;
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
        AuthState::NeedsLogin => out.push_str(&format!(
            "What to do: sign in again with `{login} --device` (or `--browser`).\n"
        )),
        AuthState::Degraded if expired => out.push_str(&format!(
            "The credentials are not usable until a refresh succeeds; it is retried automatically \
             (`{token}` tries now).\n"
        )),
        AuthState::Active if expired => out.push_str(&format!(
            "The credentials are not usable until the token is renewed: `{token}` renews it (so \
             does the next use by an app).\n"
        )),
        AuthState::Degraded => out
            .push_str("The credentials are usable; the token is refreshed again automatically.\n"),
        AuthState::Active => out.push_str("The credentials are usable.\n"),
    }
    out.push_str(&storage);
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
        let text = describe(&StatusReport::signed_out(), 0, &Which::Default);
        assert!(
            text.contains("Not signed in") && text.contains("login --device"),
            "{text}"
        );
    }

    #[test]
    fn a_named_credential_is_told_how_to_use_its_own_commands_and_file() {
        let work = Which::Named("work".into());
        let signed_out = StatusReport {
            storage: Some(StorageKind::File),
            ..StatusReport::signed_out()
        };
        let text = describe(&signed_out, 0, &work);
        assert!(
            text.contains("`auth-app-server login --credential work --device`")
                && text.contains("credentials/work.json"),
            "{text}"
        );
        let expired = StatusReport {
            method: Some(AuthMethod::Oauth),
            state: AuthState::Active,
            expires_at: Some(100),
            ..StatusReport::signed_out()
        };
        let text = describe(&expired, 200, &work);
        assert!(
            text.contains("`auth-app-server token --credential work`"),
            "{text}"
        );
        assert_eq!(
            describe(&signed_out, 0, &Which::Default),
            "Not signed in.\nSign in with `auth-app-server login --device`, `--browser`, or \
             `--with-api-key`.\nCredentials are kept in auth.json.\n",
            "the default credential's text is that of version 2"
        );
    }

    #[test]
    fn a_list_exits_with_the_highest_code_of_its_credentials() {
        let entry = |state, expires_at| Listed {
            name: "x".into(),
            status: Ok(StatusReport {
                method: Some(AuthMethod::Oauth),
                state,
                expires_at,
                ..StatusReport::signed_out()
            }),
            issuer: None,
            resource: None,
            storage: StorageKind::File,
        };
        let unreadable = Listed {
            status: Err("cannot be read".into()),
            ..entry(AuthState::Active, None)
        };
        let cases = [
            (vec![], exit::SIGNED_OUT_OR_FAILED),
            (vec![entry(AuthState::Active, None)], exit::OK),
            (
                vec![
                    entry(AuthState::Active, None),
                    entry(AuthState::Degraded, Some(1_000)),
                ],
                exit::OK,
            ),
            (
                vec![
                    entry(AuthState::Active, None),
                    entry(AuthState::NeedsLogin, None),
                ],
                exit::NEEDS_LOGIN,
            ),
            (
                vec![
                    entry(AuthState::NeedsLogin, None),
                    entry(AuthState::Active, Some(10)),
                ],
                exit::TEMPORARILY_UNUSABLE,
            ),
            (
                vec![entry(AuthState::Active, Some(10)), unreadable],
                exit::ERROR,
            ),
        ];
        for (listed, code) in cases {
            assert_eq!(list_exit_code(&listed, 500), code, "{listed:?}");
        }
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
            assert!(
                describe(&report, 99, &Which::Default).contains("are usable"),
                "{state:?}"
            );
            for now in [100, 5_000] {
                assert_eq!(
                    exit_code(&report, now),
                    exit::TEMPORARILY_UNUSABLE,
                    "{state:?}"
                );
                let text = describe(&report, now, &Which::Default);
                assert!(
                    text.contains("not usable") && !text.contains("are usable"),
                    "{state:?}: {text}"
                );
            }
        }
    }
}
