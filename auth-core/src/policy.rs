//! The refresh rules (docs/refresh-policy.md) in one place, as pure functions: when an access
//! token is stale, which credentials this server may refresh at all (and why not, as a
//! [`Blocker`] whose message is written here once), how long a transient failure backs off
//! ([`Backoff::next`]), and what a poll ([`decide_poll`]) or a rejected-token report
//! ([`decide_report`]) should do right now. No I/O, no clock: callers pass `now`. The code
//! that performs I/O (`refresh::run`, the credential) only carries out these decisions.

use std::fmt;
use std::time::Duration;

use reqwest::Url;

/// A token is refreshed when less than this is left, or less than half its lifetime if that is
/// shorter.
pub const STALE_WINDOW_MAX_SECS: i64 = 300;
/// Without a known expiry, a token is refreshed when its last refresh is older than this.
pub const UNKNOWN_EXPIRY_MAX_AGE_SECS: i64 = 8 * 24 * 3600;
/// The longest wait any transient failure imposes, `Retry-After` included.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long a poll waits for a due refresh while its access token still works.
pub const POLL_WAIT: Duration = Duration::from_millis(200);
/// Tokens obtained by a report-triggered refresh this recently are not refreshed again when
/// reported: one more refresh would not help an API that rejects every token.
pub const REPORT_REFRESH_BOUND_SECS: i64 = 60;

/// How close to its expiry a token of `lifetime` seconds becomes stale:
/// `min(300 s, lifetime / 2)`, or 300 s when the lifetime is unknown.
pub fn stale_window(lifetime: Option<i64>) -> i64 {
    match lifetime {
        Some(lifetime) => (lifetime / 2).clamp(0, STALE_WINDOW_MAX_SECS),
        None => STALE_WINDOW_MAX_SECS,
    }
}

/// The access token's timing, as far as it is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenTimes {
    /// Unix seconds.
    pub expires_at: Option<i64>,
    /// `expires_at − issued_at`, else the JWT's `exp − iat`.
    pub lifetime: Option<i64>,
    /// `last_refresh` in unix seconds, when recorded.
    pub last_refresh: Option<i64>,
}

impl TokenTimes {
    /// Past its known expiry. An unknown expiry is not expired.
    pub fn is_expired(&self, now_unix: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now_unix)
    }

    /// Due for a refresh: inside the stale window of a known expiry; with an unknown expiry,
    /// when the last refresh is missing or over 8 days old.
    pub fn is_stale(&self, now_unix: i64) -> bool {
        match self.expires_at {
            Some(at) => at.saturating_sub(now_unix) < stale_window(self.lifetime),
            None => self
                .last_refresh
                .is_none_or(|at| now_unix.saturating_sub(at) > UNKNOWN_EXPIRY_MAX_AGE_SECS),
        }
    }
}

/// How long to wait after the `failures`-th consecutive transient failure: 1 s doubling per
/// failure, or the provider's `Retry-After`; never more than [`MAX_BACKOFF`].
pub fn backoff_delay(failures: u32, retry_after: Option<Duration>) -> Duration {
    let doubling = Duration::from_secs(1u64 << failures.saturating_sub(1).min(9));
    retry_after.unwrap_or(doubling).min(MAX_BACKOFF)
}

/// One refresh attempt retries a connection error or 5xx at most this many more times...
pub const MAX_RETRIES_IN_ATTEMPT: u32 = 2;
/// ...and only while the attempt stays within this.
pub const ATTEMPT_WINDOW: Duration = Duration::from_secs(2);

/// Whether a failed request of one attempt is tried again, and after what pause (200 ms, then
/// 600 ms): only `retryable` failures (connection errors, 5xx without `Retry-After`), at most
/// twice, and only while the attempt stays within 2 s in total.
pub fn retry_within_attempt(retryable: bool, retries: u32, elapsed: Duration) -> Option<Duration> {
    let pause = Duration::from_millis(200 * 3u64.pow(retries.min(10)));
    (retryable && retries < MAX_RETRIES_IN_ATTEMPT && elapsed + pause < ATTEMPT_WINDOW)
        .then_some(pause)
}

/// A backoff window after transient failures of the refresh token with `fingerprint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    pub fingerprint: String,
    /// Unix milliseconds; no attempt may reach the network before.
    pub retry_at_ms: i64,
    pub failures: u32,
    pub code: Option<String>,
    pub message: String,
}

impl Backoff {
    /// The window after one more transient failure of the refresh token `fingerprint`, when
    /// `previous` applied before it: the failures are counted on from `previous`, and the
    /// window is [`backoff_delay`] of that count (or the provider's `retry_after`) from
    /// `now_ms`.
    pub fn next(
        previous: Option<&Backoff>,
        fingerprint: String,
        retry_after: Option<Duration>,
        code: Option<String>,
        message: String,
        now_ms: i64,
    ) -> Backoff {
        let failures = previous.map_or(0, |b| b.failures).saturating_add(1);
        let wait = backoff_delay(failures, retry_after);
        Backoff {
            fingerprint,
            retry_at_ms: now_ms.saturating_add(wait.as_millis() as i64),
            failures,
            code,
            message,
        }
    }

    /// The end of the window in whole unix seconds, as `auth.json` records it: rounded up, so
    /// that the recorded window is never shorter than the wait.
    pub fn retry_at_secs(&self) -> i64 {
        self.retry_at_ms.div_euclid(1000) + i64::from(self.retry_at_ms % 1000 != 0)
    }

    pub fn is_active(&self, now_ms: i64) -> bool {
        now_ms < self.retry_at_ms
    }

    /// Whole seconds from `now_ms` until the window ends, rounded up.
    pub fn retry_after_secs(&self, now_ms: i64) -> u64 {
        let left = self.retry_at_ms.saturating_sub(now_ms).max(0) as u64;
        left.div_ceil(1000)
    }

    /// Of two records for the same token, the one that waits longer (with the higher count).
    pub fn later(a: Option<Backoff>, b: Option<Backoff>) -> Option<Backoff> {
        match (a, b) {
            (Some(a), Some(b)) => {
                let failures = a.failures.max(b.failures);
                let mut later = if b.retry_at_ms > a.retry_at_ms { b } else { a };
                later.failures = failures;
                Some(later)
            }
            (a, b) => a.or(b),
        }
    }
}

/// Why this server cannot refresh some credentials. Each has one message
/// ([`Blocker::message`]), quoted by report answers, refresh outcomes and logout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocker {
    ApiKey,
    NoRefreshToken,
    /// No provider is configured and the tokens do not name their issuer and client_id.
    NoProvider,
    /// The tokens were issued by another issuer than the client's: a refresh token is only
    /// ever sent to the issuer recorded with it.
    OtherIssuer,
    OtherClientId,
    /// Neither the configuration nor the tokens name a client_id.
    NoClientId,
}

impl Blocker {
    /// What clients are told.
    pub fn message(self) -> &'static str {
        match self {
            Self::ApiKey => "API keys are not refreshed",
            Self::NoRefreshToken => "there is no refresh token: sign in again",
            Self::NoProvider => {
                "no OAuth provider is configured and the tokens do not say which issuer and client_id they belong to, so they cannot be refreshed: configure a provider or sign in again"
            }
            Self::OtherIssuer => {
                "the tokens were issued by another provider than the configured one: sign in again"
            }
            Self::OtherClientId => {
                "the tokens were issued to another client_id than the configured one: sign in again"
            }
            Self::NoClientId => {
                "no client_id is configured and the tokens do not say which client_id they were issued to, so they cannot be refreshed: sign in again"
            }
        }
    }
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// What decides whether this server may refresh some credentials, gathered by the caller.
#[derive(Debug, Clone, Copy)]
pub struct Eligibility<'a> {
    /// OAuth credentials (else an API key).
    pub oauth: bool,
    /// The credentials hold a refresh token.
    pub refresh_token: bool,
    /// The issuer and client_id recorded with the tokens.
    pub stored_issuer: Option<&'a str>,
    pub stored_client_id: Option<&'a str>,
    /// The client that would refresh them, `None` when there is none. Only asked about for
    /// OAuth credentials with a refresh token.
    pub client: Option<RefreshClient<'a>>,
}

/// What [`blocker`] needs to know of the client that would refresh some credentials.
#[derive(Debug, Clone, Copy)]
pub struct RefreshClient<'a> {
    /// Its issuer, when known without network I/O.
    pub known_issuer: Option<&'a Url>,
    /// Its configured client_id.
    pub client_id: Option<&'a str>,
}

/// Why these credentials cannot be refreshed by this server, if they cannot. An issuer still
/// to be found (RFC 9728) is checked by the refresh once it is known.
pub fn blocker(facts: &Eligibility) -> Option<Blocker> {
    if !facts.oauth {
        return Some(Blocker::ApiKey);
    }
    if !facts.refresh_token {
        return Some(Blocker::NoRefreshToken);
    }
    let Some(client) = facts.client else {
        return Some(Blocker::NoProvider);
    };
    let same = match (facts.stored_issuer, client.known_issuer) {
        (None, _) => false,
        (Some(stored), Some(known)) => same_issuer(stored, known),
        (Some(_), None) => true,
    };
    if !same {
        return Some(Blocker::OtherIssuer);
    }
    match (client.client_id, facts.stored_client_id) {
        (Some(configured), Some(recorded)) if configured != recorded => {
            Some(Blocker::OtherClientId)
        }
        (None, None) => Some(Blocker::NoClientId),
        _ => None,
    }
}

/// Issuer identifiers compare as URLs written with or without a trailing slash.
pub fn same_issuer(stored: &str, issuer: &Url) -> bool {
    stored.trim_end_matches('/') == issuer.as_str().trim_end_matches('/')
}

/// Everything a poll's or a report's decision depends on, gathered by the caller.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// OAuth credentials (else an API key).
    pub oauth: bool,
    pub times: TokenTimes,
    /// A permanent failure is recorded for these credentials.
    pub poisoned: bool,
    /// The credentials hold a refresh token.
    pub refresh_token: bool,
    /// Why this server cannot refresh these credentials, if it cannot ([`blocker`]).
    pub blocker: Option<Blocker>,
    /// The shared backoff that applies to this refresh token, if any.
    pub backoff: Option<&'a Backoff>,
    /// When the current tokens came from a report-triggered refresh: when they were stored.
    pub report_refresh_at: Option<i64>,
    /// A refresh is running in this process now.
    pub in_flight: bool,
    pub now_ms: i64,
}

impl Facts<'_> {
    fn backing_off(&self) -> bool {
        self.backoff.is_some_and(|b| b.is_active(self.now_ms))
    }
}

/// How long a caller waits for a refresh it starts or joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The token still works: answer with it after this long at most; the refresh goes on.
    AtMost(Duration),
    /// The token is expired or rejected: wait for the outcome.
    UntilDone,
}

/// What a status poll with `refreshToken: true` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollDecision {
    /// Answer from the stored credentials: nothing is due, or a refresh of a token that still
    /// works is already running (only the caller that started it waits).
    Answer,
    /// Start a refresh (or, when the token is expired, join the one in flight) and wait as
    /// said.
    Refresh(Wait),
    /// Due, but inside the backoff window of a transient failure: answer without network I/O.
    BackingOff,
    /// A permanent failure is recorded: never refresh, due or not.
    Poisoned,
    /// Due, but this server cannot refresh these credentials.
    Blocked(Blocker),
}

/// What a report of a rejected token does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportDecision {
    /// An API key was rejected: nothing to refresh.
    ApiKey,
    /// A permanent failure is recorded: never refresh.
    Poisoned,
    /// The rejected token is no longer the stored one.
    AlreadyRotated,
    /// The current access token was rejected and there is no refresh token, so it is dead:
    /// poison the credentials as a permanent refresh failure would.
    Dead,
    /// The token came from a report-triggered refresh less than 60 s ago.
    DidNotHelp,
    /// This server cannot refresh these credentials.
    Blocked(Blocker),
    /// Inside the backoff window of a transient failure: answer without network I/O.
    BackingOff,
    /// Start a refresh (or join the one in flight) and wait for its outcome.
    Refresh,
}

/// What a poll does now: polls refresh only stale OAuth tokens, and wait for the refresh only
/// as long as [`Wait`] says.
pub fn decide_poll(facts: &Facts) -> PollDecision {
    let now_unix = facts.now_ms.div_euclid(1000);
    if !facts.oauth {
        return PollDecision::Answer;
    }
    if facts.poisoned {
        return PollDecision::Poisoned;
    }
    if !facts.times.is_stale(now_unix) {
        return PollDecision::Answer;
    }
    let wait = if facts.times.is_expired(now_unix) {
        Wait::UntilDone
    } else {
        Wait::AtMost(POLL_WAIT)
    };
    if let Some(blocker) = facts.blocker {
        return PollDecision::Blocked(blocker);
    }
    if facts.in_flight {
        // Only the caller that started a refresh waits (at most 200 ms) while the token
        // works; the others answer at once, so a slow provider never slows a stream of polls.
        return match wait {
            Wait::AtMost(_) => PollDecision::Answer,
            Wait::UntilDone => PollDecision::Refresh(wait),
        };
    }
    if facts.backing_off() {
        return PollDecision::BackingOff;
    }
    PollDecision::Refresh(wait)
}

/// What a report of a rejected token does now (`current` when the rejected token is the
/// stored one), in the order of the contract: poisoned, API key, already rotated, dead (no
/// refresh token), then the report bound.
pub fn decide_report(facts: &Facts, current: bool) -> ReportDecision {
    let now_unix = facts.now_ms.div_euclid(1000);
    if !facts.oauth {
        return ReportDecision::ApiKey;
    }
    if facts.poisoned {
        return ReportDecision::Poisoned;
    }
    if !current {
        return ReportDecision::AlreadyRotated;
    }
    if !facts.refresh_token {
        return ReportDecision::Dead;
    }
    if facts
        .report_refresh_at
        .is_some_and(|at| now_unix.saturating_sub(at) < REPORT_REFRESH_BOUND_SECS)
    {
        return ReportDecision::DidNotHelp;
    }
    if let Some(blocker) = facts.blocker {
        return ReportDecision::Blocked(blocker);
    }
    // A report joins the refresh in flight, whatever the backoff says: it waits for its outcome.
    if !facts.in_flight && facts.backing_off() {
        return ReportDecision::BackingOff;
    }
    ReportDecision::Refresh
}

#[cfg(test)]
mod tests;
