//! What the stored credentials mean for a client right now: method, state, token, expiry,
//! account and the last refresh error. Derived by one pure function from the credentials and
//! the in-memory record of transient refresh failures.

use std::time::Instant;

use crate::auth_file::{AuthFile, AuthMode, RefreshFailureRecord};
use crate::jwt;
use crate::secret::Secret;

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
        }
    }
}

/// Stored credentials with what is derived from them, computed once per read of `auth.json`.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub file: AuthFile,
    pub method: AuthMethod,
    /// `tokens.expires_at`, else the access token's JWT `exp`.
    pub expires_at: Option<i64>,
    pub account: Option<Account>,
    /// SHA-256 of the refresh token, when there is one.
    pub refresh_fingerprint: Option<String>,
    /// The recorded permanent failure, when it applies to this refresh token.
    pub poison: Option<RefreshFailureRecord>,
}

impl Credentials {
    pub fn new(file: AuthFile) -> Self {
        let method = match file.auth_mode {
            AuthMode::ApiKey => AuthMethod::ApiKey,
            AuthMode::Oauth => AuthMethod::Oauth,
        };
        let tokens = file.tokens.as_ref().filter(|_| method == AuthMethod::Oauth);
        let expires_at = tokens.and_then(|t| {
            t.expires_at
                .or_else(|| jwt::claims(t.access_token.expose())?.exp)
        });
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
        let poison = file.refresh_failure.clone().filter(|record| {
            refresh_fingerprint.as_deref() == Some(record.refresh_token_sha256.as_str())
        });
        Self {
            file,
            method,
            expires_at,
            account,
            refresh_fingerprint,
            poison,
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

    /// Whether the access token's known expiry has passed. Unknown expiry is not expired.
    pub fn is_expired(&self, now_unix: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now_unix)
    }

    /// Whether the access token should be refreshed now (SPEC §6): its expiry is known and less
    /// than 300 s away; or, unknown, the last refresh is missing or over 8 days old.
    pub fn is_stale(&self, now_unix: i64) -> bool {
        match self.expires_at {
            Some(at) => at - now_unix < STALE_WITHIN_SECS,
            None => self
                .file
                .last_refresh
                .as_deref()
                .and_then(crate::time::age_secs)
                .is_none_or(|age| age > UNKNOWN_EXPIRY_MAX_AGE_SECS),
        }
    }
}

/// An access token this close to its expiry is refreshed.
pub const STALE_WITHIN_SECS: i64 = 300;
/// Without a known expiry, a token is refreshed when its last refresh is older than this.
pub const UNKNOWN_EXPIRY_MAX_AGE_SECS: i64 = 8 * 24 * 3600;

/// A transient refresh failure of the credentials with `fingerprint`, kept in memory only: a
/// restarted server may try again at once.
#[derive(Debug, Clone)]
pub struct TransientFailure {
    pub fingerprint: String,
    pub code: Option<String>,
    pub message: String,
    pub consecutive: u32,
    /// No network attempt before this instant.
    pub retry_at: Instant,
}

/// The one place where (credentials, transient failure, time) become a status.
/// `refreshable`: whether this server could refresh these credentials at all.
pub fn describe(
    credentials: &Credentials,
    refreshable: bool,
    transient: Option<&TransientFailure>,
    now_unix: i64,
    now: Instant,
    include_token: bool,
) -> StatusReport {
    let mut report = StatusReport {
        method: Some(credentials.method),
        state: AuthState::Active,
        token: None,
        expires_at: credentials.expires_at,
        account: credentials.account.clone(),
        refresh_error: None,
    };
    if credentials.method == AuthMethod::ApiKey {
        report.token = credentials.bearer().filter(|_| include_token).cloned();
        return report;
    }
    let transient = transient
        .filter(|t| credentials.refresh_fingerprint.as_deref() == Some(t.fingerprint.as_str()));
    if let Some(poison) = &credentials.poison {
        report.state = AuthState::NeedsLogin;
        report.refresh_error = Some(RefreshErrorInfo {
            kind: RefreshErrorKind::Permanent,
            code: Some(poison.reason.clone()).filter(|r| !r.is_empty()),
            message: poison.message.clone(),
            retry_after_secs: None,
        });
    } else if !refreshable && credentials.is_expired(now_unix) {
        // Nothing here can renew it (no refresh token, or no provider for its issuer).
        report.state = AuthState::NeedsLogin;
    } else if let Some(transient) = transient {
        report.state = AuthState::Degraded;
        let wait = transient.retry_at.saturating_duration_since(now);
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        report.refresh_error = Some(RefreshErrorInfo {
            kind: RefreshErrorKind::Transient,
            code: transient.code.clone(),
            message: transient.message.clone(),
            retry_after_secs: Some(secs),
        });
    }
    let usable = match report.state {
        AuthState::Active => true,
        AuthState::Degraded => !credentials.is_expired(now_unix),
        AuthState::SignedOut | AuthState::NeedsLogin => false,
    };
    if include_token && usable {
        report.token = credentials.bearer().cloned();
    }
    report
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::auth_file::StoredTokens;

    fn oauth(
        refresh: Option<&str>,
        expires_at: Option<i64>,
        id_token: Option<String>,
    ) -> Credentials {
        let tokens = StoredTokens {
            access_token: Secret::new("at"),
            refresh_token: refresh.map(Secret::new),
            id_token: id_token.map(Secret::new),
            token_type: None,
            scope: None,
            expires_at,
            extra: Default::default(),
        };
        Credentials::new(AuthFile::oauth(
            Some("https://i".into()),
            Some("c".into()),
            tokens,
        ))
    }

    fn transient_for(
        credentials: &Credentials,
        retry_in: Duration,
        now: Instant,
    ) -> TransientFailure {
        TransientFailure {
            fingerprint: credentials.refresh_fingerprint.clone().unwrap(),
            code: None,
            message: "try later".into(),
            consecutive: 1,
            retry_at: now + retry_in,
        }
    }

    #[test]
    fn active_oauth_hands_out_the_token_only_when_asked() {
        let credentials = oauth(Some("rt"), Some(1_000), None);
        let now = Instant::now();
        let quiet = describe(&credentials, true, None, 10, now, false);
        assert_eq!(
            (quiet.state, quiet.token.is_none(), quiet.expires_at),
            (AuthState::Active, true, Some(1_000))
        );
        assert_eq!(
            describe(&credentials, true, None, 10, now, true)
                .token
                .unwrap()
                .expose(),
            "at"
        );
    }

    #[test]
    fn poison_applies_only_to_the_refresh_token_it_was_recorded_for() {
        let mut credentials = oauth(Some("rt"), Some(1_000), None);
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
            10,
            Instant::now(),
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
            10,
            Instant::now(),
            true,
        );
        assert_eq!(fresh.state, AuthState::Active);
    }

    #[test]
    fn degraded_keeps_an_unexpired_token_and_rounds_the_wait_up() {
        let now = Instant::now();
        let credentials = oauth(Some("rt"), None, None);
        let transient = transient_for(&credentials, Duration::from_millis(1_500), now);
        let report = describe(&credentials, true, Some(&transient), 10, now, true);
        assert_eq!(report.state, AuthState::Degraded);
        assert!(
            report.token.is_some(),
            "unknown expiry counts as not expired"
        );
        assert_eq!(report.refresh_error.unwrap().retry_after_secs, Some(2));

        let expired = oauth(Some("rt"), Some(5), None);
        let transient = transient_for(&expired, Duration::ZERO, now);
        let report = describe(&expired, true, Some(&transient), 10, now, true);
        assert_eq!((report.state, report.token), (AuthState::Degraded, None));
        assert_eq!(report.refresh_error.unwrap().retry_after_secs, Some(0));
    }

    #[test]
    fn an_expired_token_without_refresh_token_needs_login() {
        let report = describe(
            &oauth(None, Some(5), None),
            false,
            None,
            10,
            Instant::now(),
            true,
        );
        assert_eq!((report.state, report.token), (AuthState::NeedsLogin, None));
        let report = describe(
            &oauth(None, Some(50), None),
            false,
            None,
            10,
            Instant::now(),
            true,
        );
        assert_eq!(report.state, AuthState::Active, "not expired yet");
    }

    #[test]
    fn staleness_follows_expiry_then_last_refresh() {
        assert!(oauth(Some("rt"), Some(1_299), None).is_stale(1_000));
        assert!(!oauth(Some("rt"), Some(1_300), None).is_stale(1_000));
        let mut unknown = oauth(Some("rt"), None, None);
        assert!(unknown.is_stale(0), "no last_refresh");
        unknown.file.last_refresh = Some(crate::time::now_rfc3339());
        assert!(!unknown.is_stale(0));
        unknown.file.last_refresh = Some("2020-01-01T00:00:00Z".into());
        assert!(unknown.is_stale(0));
    }

    #[test]
    fn account_and_expiry_come_from_jwt_claims() {
        let id = jwt::encode_for_test(serde_json::json!({"sub": "u1", "email": "a@example.com"}));
        let mut credentials = oauth(Some("rt"), None, Some(id));
        assert_eq!(
            credentials.account.as_ref().unwrap().email.as_deref(),
            Some("a@example.com")
        );
        credentials.file.tokens.as_mut().unwrap().access_token =
            Secret::new(jwt::encode_for_test(serde_json::json!({"exp": 77})));
        assert_eq!(Credentials::new(credentials.file).expires_at, Some(77));
    }
}
