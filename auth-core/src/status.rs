//! What the stored credentials mean for a client right now: method, state, token, expiry,
//! account and the last refresh error. Derived by one pure function from the credentials and
//! the backoff that applies to them.

use crate::jwt;
use crate::policy::{Backoff, MAX_BACKOFF, TokenTimes};
use crate::secret::Secret;
use crate::store::format::{AuthFile, AuthMode, REFRESH_CAUSE_REJECTED, RefreshFailureRecord};
use crate::time;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    ApiKey,
    Oauth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthState {
    SignedOut,
    Active,
    Degraded,
    NeedsLogin,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Account {
    pub subject: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshErrorKind {
    Permanent,
    Transient,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshErrorInfo {
    pub kind: RefreshErrorKind,
    /// The RFC 6749 error code, when the provider sent one.
    pub code: Option<String>,
    pub message: String,
    /// Transient only: whole seconds, rounded up, until the next attempt may hit the network.
    pub retry_after_secs: Option<u64>,
}

/// The answer to "what is my auth status?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub method: Option<AuthMethod>,
    pub state: AuthState,
    /// Present only when asked for and usable.
    pub token: Option<Secret>,
    pub expires_at: Option<i64>,
    pub account: Option<Account>,
    pub refresh_error: Option<RefreshErrorInfo>,
    /// Where the credentials are kept (set by the credential, which knows its store).
    pub storage: Option<crate::store::StorageKind>,
    /// The RFC 8707 resource the tokens are for, as recorded (a named credential's).
    pub resource: Option<String>,
}

impl StatusReport {
    pub fn signed_out() -> Self {
        Self {
            method: None,
            state: AuthState::SignedOut,
            token: None,
            expires_at: None,
            account: None,
            refresh_error: None,
            storage: None,
            resource: None,
        }
    }
}

/// Stored credentials with what is derived from them, computed once per read of `auth.json`.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub file: AuthFile,
    pub method: AuthMethod,
    /// Expiry, lifetime and last refresh of the access token.
    pub times: TokenTimes,
    pub account: Option<Account>,
    /// SHA-256 of the refresh token, when there is one.
    pub refresh_fingerprint: Option<String>,
    /// SHA-256 of what failure records are keyed to: the refresh token, or the access token
    /// when there is none (a rejected token that cannot be refreshed is dead).
    pub failure_key: Option<String>,
    /// The recorded permanent failure, when it applies to these tokens.
    pub poison: Option<RefreshFailureRecord>,
    /// The recorded shared backoff, when it applies to these tokens.
    pub backoff: Option<Backoff>,
    /// When these tokens came from a report-triggered refresh: when they were stored.
    pub report_refresh_at: Option<i64>,
}

impl Credentials {
    pub fn new(file: AuthFile) -> Self {
        let method = match file.auth_mode {
            AuthMode::ApiKey => AuthMethod::ApiKey,
            AuthMode::Oauth => AuthMethod::Oauth,
        };
        let tokens = file.tokens.as_ref().filter(|_| method == AuthMethod::Oauth);
        let access_claims = tokens.and_then(|t| jwt::claims(t.access_token.expose()));
        let expires_at = tokens
            .and_then(|t| t.expires_at)
            .or_else(|| access_claims.as_ref()?.exp);
        // Advisory records are never trusted past what this server itself would write: tokens
        // stored in the future, or a backoff longer than the longest one, are a broken clock
        // or a hostile file, and would block refreshes for as long as they claim.
        let now_ms = time::now_ms();
        let issued_at = tokens
            .and_then(|t| t.issued_at)
            .map(|at| at.min(now_ms.div_euclid(1000)));
        let latest_retry_ms = now_ms.saturating_add(MAX_BACKOFF.as_millis() as i64);
        // Lifetime: as stored, else as the JWT says.
        let lifetime = match (expires_at, issued_at) {
            (Some(at), Some(issued)) => Some(at.saturating_sub(issued)),
            _ => access_claims
                .as_ref()
                .and_then(|c| Some(c.exp?.saturating_sub(c.iat?))),
        };
        let times = TokenTimes {
            expires_at,
            lifetime,
            last_refresh: file.last_refresh.as_deref().and_then(time::parse_rfc3339),
        };
        let account = tokens
            .and_then(|t| t.id_token.as_ref())
            .and_then(|id| jwt::claims(id.expose()))
            .and_then(|c| {
                let account = Account {
                    subject: c.sub,
                    email: c.email,
                    name: c.name,
                };
                (account != Account::default()).then_some(account)
            });
        let refresh_fingerprint = tokens
            .and_then(|t| t.refresh_token.as_ref())
            .map(Secret::fingerprint);
        let failure_key = refresh_fingerprint
            .clone()
            .or_else(|| tokens.map(|t| t.access_token.fingerprint()));
        let applies = |sha: &str| failure_key.as_deref() == Some(sha);
        let poison = file
            .refresh_failure
            .clone()
            .filter(|record| applies(&record.refresh_token_sha256));
        let backoff = file
            .refresh_backoff
            .as_ref()
            .filter(|record| applies(&record.refresh_token_sha256))
            .map(|record| Backoff {
                fingerprint: record.refresh_token_sha256.clone(),
                retry_at_ms: record.retry_at.saturating_mul(1000).min(latest_retry_ms),
                failures: record.failures,
                code: record.code.clone(),
                message: record.message.clone(),
            });
        let report_refresh_at = tokens
            .filter(|t| t.refresh_cause.as_deref() == Some(REFRESH_CAUSE_REJECTED))
            .and(issued_at);
        Self {
            file,
            method,
            times,
            account,
            refresh_fingerprint,
            failure_key,
            poison,
            backoff,
            report_refresh_at,
        }
    }

    /// The bearer credential: the API key, or the OAuth access token.
    pub fn bearer(&self) -> Option<&Secret> {
        match self.method {
            AuthMethod::ApiKey => self.file.api_key.as_ref(),
            AuthMethod::Oauth => self.file.tokens.as_ref().map(|t| &t.access_token),
        }
    }

    pub fn refresh_token(&self) -> Option<&Secret> {
        self.file
            .tokens
            .as_ref()
            .and_then(|t| t.refresh_token.as_ref())
    }

    /// The backoff that applies: the recorded one, or `local` (a failure this process could
    /// not record, e.g. a lock wait that timed out), whichever waits longer.
    pub fn backoff_with(&self, local: Option<&Backoff>) -> Option<Backoff> {
        let local = local
            .filter(|b| self.refresh_fingerprint.as_deref() == Some(b.fingerprint.as_str()))
            .cloned();
        Backoff::later(self.backoff.clone(), local)
    }
}

/// The one place where (credentials, backoff, time) become a status. `refreshable`: whether
/// this server could refresh these credentials at all; `backoff`: the one that applies (see
/// [`Credentials::backoff_with`]). An access token past its expiry is never handed out.
pub fn describe(
    credentials: &Credentials,
    refreshable: bool,
    backoff: Option<&Backoff>,
    now_ms: i64,
    include_token: bool,
) -> StatusReport {
    let now_unix = now_ms.div_euclid(1000);
    let expired = credentials.times.is_expired(now_unix);
    let mut report = StatusReport {
        method: Some(credentials.method),
        state: AuthState::Active,
        token: None,
        expires_at: credentials.times.expires_at,
        account: credentials.account.clone(),
        refresh_error: None,
        storage: None,
        resource: credentials.file.resource.clone(),
    };
    if credentials.method == AuthMethod::ApiKey {
        report.token = credentials.bearer().filter(|_| include_token).cloned();
        return report;
    }
    if let Some(poison) = &credentials.poison {
        report.state = AuthState::NeedsLogin;
        report.refresh_error = Some(RefreshErrorInfo {
            kind: RefreshErrorKind::Permanent,
            code: Some(poison.reason.clone()).filter(|r| !r.is_empty()),
            message: poison.message.clone(),
            retry_after_secs: None,
        });
    } else if !refreshable && expired {
        // Nothing here can renew it (no refresh token, or no provider for its issuer).
        report.state = AuthState::NeedsLogin;
    } else if let Some(backoff) = backoff {
        report.state = AuthState::Degraded;
        report.refresh_error = Some(RefreshErrorInfo {
            kind: RefreshErrorKind::Transient,
            code: backoff.code.clone(),
            message: backoff.message.clone(),
            retry_after_secs: Some(backoff.retry_after_secs(now_ms)),
        });
    }
    let usable = matches!(report.state, AuthState::Active | AuthState::Degraded) && !expired;
    if include_token && usable {
        report.token = credentials.bearer().cloned();
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::format::{RefreshBackoffRecord, StoredTokens};

    /// Now, in unix seconds (tests use small numbers).
    const NOW: i64 = 10;
    const NOW_MS: i64 = NOW * 1000;

    fn tokens(refresh: Option<&str>, expires_at: Option<i64>) -> StoredTokens {
        StoredTokens {
            access_token: Secret::new("at"),
            refresh_token: refresh.map(Secret::new),
            id_token: None,
            token_type: None,
            scope: None,
            expires_at,
            issued_at: None,
            refresh_cause: None,
            extra: Default::default(),
        }
    }

    fn oauth(refresh: Option<&str>, expires_at: Option<i64>) -> Credentials {
        Credentials::new(AuthFile::oauth(
            Some("https://i".into()),
            Some("c".into()),
            tokens(refresh, expires_at),
        ))
    }

    fn backoff_for(credentials: &Credentials, retry_in_ms: i64) -> Backoff {
        Backoff {
            fingerprint: credentials.refresh_fingerprint.clone().unwrap(),
            retry_at_ms: NOW_MS + retry_in_ms,
            failures: 1,
            code: None,
            message: "try later".into(),
        }
    }

    #[test]
    fn active_oauth_hands_out_the_token_only_when_asked() {
        let credentials = oauth(Some("rt"), Some(1_000));
        let quiet = describe(&credentials, true, None, NOW_MS, false);
        assert_eq!(
            (quiet.state, quiet.token.is_none(), quiet.expires_at),
            (AuthState::Active, true, Some(1_000))
        );
        let asked = describe(&credentials, true, None, NOW_MS, true);
        assert_eq!(asked.token.unwrap().expose(), "at");
    }

    #[test]
    fn an_expired_access_token_is_never_handed_out() {
        let report = describe(&oauth(Some("rt"), Some(NOW)), true, None, NOW_MS, true);
        assert_eq!(
            (report.state, report.token),
            (AuthState::Active, None),
            "a refresh would fix it, so the state stays active"
        );
    }

    #[test]
    fn poison_applies_only_to_the_refresh_token_it_was_recorded_for() {
        let mut credentials = oauth(Some("rt"), Some(1_000));
        credentials.file.refresh_failure = Some(RefreshFailureRecord {
            reason: "invalid_grant".into(),
            message: "sign in again".into(),
            at: "2026-01-01T00:00:00Z".into(),
            refresh_token_sha256: Secret::new("rt").fingerprint(),
        });
        let poisoned = describe(
            &Credentials::new(credentials.file.clone()),
            true,
            None,
            NOW_MS,
            true,
        );
        assert_eq!(
            (poisoned.state, poisoned.method, poisoned.token),
            (AuthState::NeedsLogin, Some(AuthMethod::Oauth), None)
        );
        assert_eq!(
            poisoned.refresh_error.unwrap().code.as_deref(),
            Some("invalid_grant")
        );

        credentials.file.tokens.as_mut().unwrap().refresh_token = Some(Secret::new("rt2"));
        let fresh = describe(
            &Credentials::new(credentials.file),
            true,
            None,
            NOW_MS,
            true,
        );
        assert_eq!(fresh.state, AuthState::Active);
    }

    #[test]
    fn poison_is_keyed_to_the_refresh_token_or_else_the_access_token() {
        // (refresh token, token the record names, applies)
        let cases = [
            (Some("rt"), "rt", true),
            (Some("rt"), "at", false),
            (None, "at", true),
            (None, "rt", false),
            (None, "other", false),
        ];
        for (refresh, keyed_to, applies) in cases {
            let mut file = oauth(refresh, Some(1_000)).file;
            file.refresh_failure = Some(RefreshFailureRecord {
                reason: String::new(),
                message: "sign in again".into(),
                at: "2026-01-01T00:00:00Z".into(),
                refresh_token_sha256: Secret::new(keyed_to).fingerprint(),
            });
            let credentials = Credentials::new(file);
            assert_eq!(
                credentials.poison.is_some(),
                applies,
                "{refresh:?} {keyed_to}"
            );
            let report = describe(&credentials, refresh.is_some(), None, NOW_MS, true);
            assert_eq!(report.token.is_none(), applies, "{refresh:?} {keyed_to}");
        }
    }

    #[test]
    fn degraded_keeps_an_unexpired_token_and_rounds_the_wait_up() {
        let credentials = oauth(Some("rt"), None);
        let backoff = backoff_for(&credentials, 1_500);
        let report = describe(&credentials, true, Some(&backoff), NOW_MS, true);
        assert_eq!(report.state, AuthState::Degraded);
        assert!(
            report.token.is_some(),
            "unknown expiry counts as not expired"
        );
        assert_eq!(report.refresh_error.unwrap().retry_after_secs, Some(2));

        let expired = oauth(Some("rt"), Some(5));
        let backoff = backoff_for(&expired, 0);
        let report = describe(&expired, true, Some(&backoff), NOW_MS, true);
        assert_eq!((report.state, report.token), (AuthState::Degraded, None));
        assert_eq!(report.refresh_error.unwrap().retry_after_secs, Some(0));
    }

    #[test]
    fn the_recorded_backoff_applies_to_its_refresh_token_only() {
        let mut file = oauth(Some("rt"), Some(1_000)).file;
        file.refresh_backoff = Some(RefreshBackoffRecord {
            refresh_token_sha256: Secret::new("rt").fingerprint(),
            retry_at: NOW + 4,
            failures: 3,
            message: "the provider failed (503); will retry".into(),
            code: None,
        });
        let credentials = Credentials::new(file.clone());
        let backoff = credentials.backoff_with(None);
        let report = describe(&credentials, true, backoff.as_ref(), NOW_MS, false);
        assert_eq!(report.state, AuthState::Degraded);
        assert_eq!(report.refresh_error.unwrap().retry_after_secs, Some(4));
        // A later local window wins; one for another token is ignored.
        let mut local = backoff.clone().unwrap();
        local.retry_at_ms += 3_000;
        assert_eq!(credentials.backoff_with(Some(&local)), Some(local.clone()));
        local.fingerprint = "other".into();
        assert_eq!(credentials.backoff_with(Some(&local)), backoff);

        file.tokens.as_mut().unwrap().refresh_token = Some(Secret::new("rt2"));
        assert_eq!(Credentials::new(file).backoff_with(None), None);
    }

    #[test]
    fn an_expired_token_without_refresh_token_needs_login() {
        let report = describe(&oauth(None, Some(5)), false, None, NOW_MS, true);
        assert_eq!((report.state, report.token), (AuthState::NeedsLogin, None));
        let report = describe(&oauth(None, Some(50)), false, None, NOW_MS, true);
        assert_eq!(report.state, AuthState::Active, "not expired yet");
    }

    #[test]
    fn the_lifetime_comes_from_issued_at_else_from_the_jwt() {
        let mut file = oauth(Some("rt"), Some(1_120)).file;
        assert_eq!(Credentials::new(file.clone()).times.lifetime, None);
        file.tokens.as_mut().unwrap().issued_at = Some(1_000);
        assert_eq!(Credentials::new(file.clone()).times.lifetime, Some(120));
        let tokens = file.tokens.as_mut().unwrap();
        tokens.issued_at = None;
        tokens.expires_at = None;
        tokens.access_token = Secret::new(jwt::encode_for_test(
            serde_json::json!({"exp": 2_000, "iat": 1_700}),
        ));
        let credentials = Credentials::new(file);
        assert_eq!(
            (credentials.times.expires_at, credentials.times.lifetime),
            (Some(2_000), Some(300))
        );
    }

    #[test]
    fn report_refreshed_tokens_are_marked_with_their_time() {
        let mut file = oauth(Some("rt"), Some(1_000)).file;
        let tokens = file.tokens.as_mut().unwrap();
        tokens.issued_at = Some(900);
        assert_eq!(Credentials::new(file.clone()).report_refresh_at, None);
        file.tokens.as_mut().unwrap().refresh_cause = Some(REFRESH_CAUSE_REJECTED.into());
        assert_eq!(Credentials::new(file).report_refresh_at, Some(900));
    }

    #[test]
    fn advisory_records_are_never_trusted_past_what_this_server_writes() {
        let now_ms = time::now_ms();
        let mut file = oauth(Some("rt"), Some(i64::MAX)).file;
        file.refresh_backoff = Some(RefreshBackoffRecord {
            refresh_token_sha256: Secret::new("rt").fingerprint(),
            retry_at: i64::MAX,
            failures: 1,
            message: "m".into(),
            code: None,
        });
        let tokens = file.tokens.as_mut().unwrap();
        tokens.issued_at = Some(i64::MAX - 1);
        tokens.refresh_cause = Some(REFRESH_CAUSE_REJECTED.into());
        let credentials = Credentials::new(file);
        let after_ms = time::now_ms();
        // A backoff at most 300 s ahead (an i64::MAX one would block refreshes forever and
        // give clients a retryAfterSecs past JavaScript's safe integers).
        let backoff = credentials.backoff.as_ref().unwrap();
        assert!(backoff.retry_at_ms <= after_ms + 300_000, "{backoff:?}");
        assert!(backoff.retry_at_ms >= now_ms + 300_000, "{backoff:?}");
        assert!(backoff.retry_after_secs(now_ms) <= 300);
        // Tokens stored "in the future" count as stored now: the report bound lasts 60 s from
        // here, not forever.
        let at = credentials.report_refresh_at.unwrap();
        assert!((now_ms / 1000..=after_ms / 1000).contains(&at), "{at}");
        assert_eq!(credentials.times.lifetime, Some(i64::MAX - at));
    }

    #[test]
    fn account_and_expiry_come_from_jwt_claims() {
        let mut file = oauth(Some("rt"), None).file;
        file.tokens.as_mut().unwrap().id_token = Some(Secret::new(jwt::encode_for_test(
            serde_json::json!({"sub": "u1", "email": "a@example.com"}),
        )));
        let credentials = Credentials::new(file.clone());
        assert_eq!(
            credentials.account.as_ref().unwrap().email.as_deref(),
            Some("a@example.com")
        );
        file.tokens.as_mut().unwrap().access_token =
            Secret::new(jwt::encode_for_test(serde_json::json!({"exp": 77})));
        assert_eq!(Credentials::new(file).times.expires_at, Some(77));
    }
}
