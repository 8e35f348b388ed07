//! The refresh rules (docs/refresh-policy.md) in one place, as pure functions: when an access
//! token is stale, how long a transient failure backs off, and what a poll or a rejected-token
//! report should do right now. No I/O, no clock: callers pass `now`. The code that performs
//! I/O (`refresh`, `manager`) only carries out these decisions.

use std::time::Duration;

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

/// Why a refresh is being considered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A status poll with `refreshToken: true`.
    Poll,
    /// A client reported that an API rejected a token; `current` when it is the stored one.
    Rejected { current: bool },
}

/// Everything the decision depends on, gathered by the caller.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// OAuth credentials (else an API key).
    pub oauth: bool,
    pub times: TokenTimes,
    /// A permanent failure is recorded for these credentials.
    pub poisoned: bool,
    /// The credentials hold a refresh token.
    pub refresh_token: bool,
    /// Why this server cannot refresh these credentials (no refresh token, no provider for
    /// their issuer), if it cannot.
    pub blocker: Option<&'a str>,
    /// The shared backoff that applies to this refresh token, if any.
    pub backoff: Option<&'a Backoff>,
    /// When the current tokens came from a report-triggered refresh: when they were stored.
    pub report_refresh_at: Option<i64>,
    /// A refresh is running in this process now.
    pub in_flight: bool,
    pub now_ms: i64,
}

/// How long a caller waits for a refresh it starts or joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The token still works: answer with it after this long at most; the refresh goes on.
    AtMost(Duration),
    /// The token is expired or rejected: wait for the outcome.
    UntilDone,
}

/// Why no refresh can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRefresh {
    ApiKey,
    Poisoned,
    /// See [`Facts::blocker`].
    Blocked,
    /// Reports only: the current access token was rejected and there is no refresh token, so
    /// it is dead: poison the credentials as a permanent refresh failure would.
    Dead,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Answer from the stored credentials; nothing is due.
    Answer,
    /// Start a refresh (or join the one in flight) and wait as said. A poll on a working token
    /// joins nothing: it starts the refresh and waits at most 200 ms, or, when one is already
    /// running, answers at once.
    Refresh {
        join: bool,
        wait: Wait,
    },
    /// Due, but inside the backoff window of a transient failure: answer without network I/O.
    BackingOff,
    CannotRefresh(NoRefresh),
    /// Reports only: the rejected token is no longer the stored one.
    AlreadyRotated,
    /// Reports only: the token came from a report-triggered refresh less than 60 s ago.
    DidNotHelp,
}

/// What to do now. Reports follow the order of the contract: poisoned, API key, already
/// rotated, dead (no refresh token), then the report bound; polls refresh only stale tokens.
pub fn decide(facts: &Facts, trigger: Trigger) -> Decision {
    let now_unix = facts.now_ms.div_euclid(1000);
    let wait = match trigger {
        Trigger::Poll => {
            if !facts.oauth {
                return Decision::Answer;
            }
            if facts.poisoned {
                return Decision::CannotRefresh(NoRefresh::Poisoned);
            }
            if !facts.times.is_stale(now_unix) {
                return Decision::Answer;
            }
            if facts.times.is_expired(now_unix) {
                Wait::UntilDone
            } else {
                Wait::AtMost(POLL_WAIT)
            }
        }
        Trigger::Rejected { current } => {
            if !facts.oauth {
                return Decision::CannotRefresh(NoRefresh::ApiKey);
            }
            if facts.poisoned {
                return Decision::CannotRefresh(NoRefresh::Poisoned);
            }
            if !current {
                return Decision::AlreadyRotated;
            }
            if !facts.refresh_token {
                return Decision::CannotRefresh(NoRefresh::Dead);
            }
            if facts
                .report_refresh_at
                .is_some_and(|at| now_unix.saturating_sub(at) < REPORT_REFRESH_BOUND_SECS)
            {
                return Decision::DidNotHelp;
            }
            Wait::UntilDone
        }
    };
    if facts.blocker.is_some() {
        return Decision::CannotRefresh(NoRefresh::Blocked);
    }
    if facts.in_flight {
        // Only the caller that started a refresh waits (at most 200 ms) while the token
        // works; the others answer at once, so a slow provider never slows a stream of polls.
        return match wait {
            Wait::AtMost(_) => Decision::Answer,
            Wait::UntilDone => Decision::Refresh { join: true, wait },
        };
    }
    if facts.backoff.is_some_and(|b| b.is_active(facts.now_ms)) {
        return Decision::BackingOff;
    }
    Decision::Refresh { join: false, wait }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;

    #[test]
    fn the_stale_window_follows_the_lifetime() {
        // (expires in, lifetime, stale?)
        let cases: &[(i64, Option<i64>, bool)] = &[
            (299, None, true),
            (300, None, false),
            // Keycloak's default 300 s token: stale in its last 150 s, not from birth.
            (300, Some(300), false),
            (151, Some(300), false),
            (149, Some(300), true),
            (120, Some(120), false),
            (61, Some(120), false),
            (59, Some(120), true),
            (60, Some(60), false),
            (29, Some(60), true),
            (3600, Some(3600), false),
            (299, Some(3600), true),
            (301, Some(3600), false),
            (0, Some(60), true),
            (-5, None, true),
            (10, Some(0), false),
            (10, Some(-50), false),
            (i64::MAX, Some(i64::MAX), false),
            (i64::MIN / 2, None, true),
        ];
        for &(left, lifetime, stale) in cases {
            let times = TokenTimes {
                expires_at: Some(NOW.saturating_add(left)),
                lifetime,
                last_refresh: None,
            };
            assert_eq!(times.is_stale(NOW), stale, "{left} s left of {lifetime:?}");
        }
    }

    #[test]
    fn an_unknown_expiry_is_stale_after_eight_days_or_without_a_last_refresh() {
        for (age, stale) in [(None, true), (Some(0), false), (Some(8 * 86_400 + 1), true)] {
            let times = TokenTimes {
                expires_at: None,
                lifetime: None,
                last_refresh: age.map(|age| NOW - age),
            };
            assert_eq!(times.is_stale(NOW), stale, "{age:?}");
            assert!(!times.is_expired(NOW));
        }
    }

    #[test]
    fn backoff_doubles_from_one_second_and_is_capped() {
        let cases: &[(u32, Option<u64>, u64)] = &[
            (0, None, 1),
            (1, None, 1),
            (2, None, 2),
            (3, None, 4),
            (9, None, 256),
            (10, None, 300),
            (u32::MAX, None, 300),
            (1, Some(7), 7),
            (5, Some(2), 2),
            (1, Some(100_000), 300),
        ];
        for &(failures, retry_after, secs) in cases {
            assert_eq!(
                backoff_delay(failures, retry_after.map(Duration::from_secs)),
                Duration::from_secs(secs),
                "{failures} {retry_after:?}"
            );
        }
    }

    #[test]
    fn an_attempt_retries_at_most_twice_within_two_seconds() {
        let ms = Duration::from_millis;
        // (retryable, retries so far, elapsed, pause)
        let cases: &[(bool, u32, u64, Option<u64>)] = &[
            (true, 0, 0, Some(200)),
            (true, 1, 250, Some(600)),
            (true, 2, 900, None),
            (true, 1, 1_500, None),
            (true, 0, 1_799, Some(200)),
            (true, 0, 1_800, None),
            (false, 0, 0, None),
        ];
        for &(retryable, retries, elapsed, pause) in cases {
            assert_eq!(
                retry_within_attempt(retryable, retries, ms(elapsed)),
                pause.map(ms),
                "{retryable} {retries} {elapsed}"
            );
        }
    }

    #[test]
    fn retry_after_secs_rounds_up() {
        let backoff = |retry_at_ms| Backoff {
            fingerprint: "f".into(),
            retry_at_ms,
            failures: 1,
            code: None,
            message: String::new(),
        };
        assert_eq!(backoff(NOW * 1000 + 1_500).retry_after_secs(NOW * 1000), 2);
        assert_eq!(backoff(NOW * 1000 + 2_000).retry_after_secs(NOW * 1000), 2);
        assert_eq!(backoff(NOW * 1000 - 10).retry_after_secs(NOW * 1000), 0);
        let later = Backoff::later(
            Some(backoff(5)),
            Some(Backoff {
                failures: 4,
                ..backoff(3)
            }),
        );
        assert_eq!(later.map(|b| (b.retry_at_ms, b.failures)), Some((5, 4)));
    }

    /// A row: what is true, the trigger, and the decision.
    struct Row {
        name: &'static str,
        oauth: bool,
        expires_in: Option<i64>,
        lifetime: Option<i64>,
        poisoned: bool,
        refresh_token: bool,
        blocked: bool,
        backoff_ms_left: Option<i64>,
        report_refresh_age: Option<i64>,
        in_flight: bool,
        trigger: Trigger,
        expected: Decision,
    }

    const BASE: Row = Row {
        name: "",
        oauth: true,
        expires_in: Some(3600),
        lifetime: Some(3600),
        poisoned: false,
        refresh_token: true,
        blocked: false,
        backoff_ms_left: None,
        report_refresh_age: None,
        in_flight: false,
        trigger: Trigger::Poll,
        expected: Decision::Answer,
    };

    const REPORT: Trigger = Trigger::Rejected { current: true };
    const BOUNDED: Decision = Decision::Refresh {
        join: false,
        wait: Wait::AtMost(POLL_WAIT),
    };
    const FULL: Decision = Decision::Refresh {
        join: false,
        wait: Wait::UntilDone,
    };

    #[test]
    fn the_decision_table() {
        let rows = [
            Row {
                name: "fresh token: answer",
                ..BASE
            },
            Row {
                name: "API key: answer",
                oauth: false,
                expires_in: None,
                ..BASE
            },
            Row {
                name: "stale, still valid: refresh, wait at most 200 ms",
                expires_in: Some(100),
                expected: BOUNDED,
                ..BASE
            },
            Row {
                name: "expired: wait for the refresh",
                expires_in: Some(-1),
                expected: FULL,
                ..BASE
            },
            Row {
                name: "120 s token just issued: not stale",
                expires_in: Some(119),
                lifetime: Some(120),
                ..BASE
            },
            Row {
                name: "stale, still valid, a refresh in flight: answer at once",
                expires_in: Some(100),
                in_flight: true,
                expected: Decision::Answer,
                ..BASE
            },
            Row {
                name: "expired with a refresh in flight: join it and wait",
                expires_in: Some(0),
                in_flight: true,
                expected: Decision::Refresh {
                    join: true,
                    wait: Wait::UntilDone,
                },
                ..BASE
            },
            Row {
                name: "stale inside a backoff window: no network",
                expires_in: Some(100),
                backoff_ms_left: Some(1),
                expected: Decision::BackingOff,
                ..BASE
            },
            Row {
                name: "stale after the backoff window: refresh",
                expires_in: Some(100),
                backoff_ms_left: Some(0),
                expected: BOUNDED,
                ..BASE
            },
            Row {
                name: "poisoned: never refresh",
                expires_in: Some(-1),
                poisoned: true,
                expected: Decision::CannotRefresh(NoRefresh::Poisoned),
                ..BASE
            },
            Row {
                name: "stale without a way to refresh",
                expires_in: Some(-1),
                blocked: true,
                expected: Decision::CannotRefresh(NoRefresh::Blocked),
                ..BASE
            },
            Row {
                name: "fresh but blocked: answer",
                blocked: true,
                ..BASE
            },
            Row {
                name: "report of an API key",
                oauth: false,
                trigger: REPORT,
                expected: Decision::CannotRefresh(NoRefresh::ApiKey),
                ..BASE
            },
            Row {
                name: "report on poisoned credentials",
                poisoned: true,
                trigger: Trigger::Rejected { current: false },
                expected: Decision::CannotRefresh(NoRefresh::Poisoned),
                ..BASE
            },
            Row {
                name: "report of an older token",
                trigger: Trigger::Rejected { current: false },
                expected: Decision::AlreadyRotated,
                ..BASE
            },
            Row {
                name: "report of a fresh current token: refresh and wait",
                trigger: REPORT,
                expected: FULL,
                ..BASE
            },
            Row {
                name: "report of a token a report refreshed 59 s ago",
                report_refresh_age: Some(59),
                trigger: REPORT,
                expected: Decision::DidNotHelp,
                ..BASE
            },
            Row {
                name: "report of a token a report refreshed 60 s ago",
                report_refresh_age: Some(60),
                trigger: REPORT,
                expected: FULL,
                ..BASE
            },
            Row {
                name: "report inside a backoff window",
                backoff_ms_left: Some(500),
                trigger: REPORT,
                expected: Decision::BackingOff,
                ..BASE
            },
            Row {
                name: "report of the current token without a refresh token: dead",
                refresh_token: false,
                blocked: true,
                trigger: REPORT,
                expected: Decision::CannotRefresh(NoRefresh::Dead),
                ..BASE
            },
            Row {
                name: "report of an older token without a refresh token",
                refresh_token: false,
                blocked: true,
                trigger: Trigger::Rejected { current: false },
                expected: Decision::AlreadyRotated,
                ..BASE
            },
            Row {
                name: "report of a refreshable token for another provider",
                blocked: true,
                trigger: REPORT,
                expected: Decision::CannotRefresh(NoRefresh::Blocked),
                ..BASE
            },
            Row {
                name: "expired without a refresh token, polled: not dead until rejected",
                expires_in: Some(-1),
                refresh_token: false,
                blocked: true,
                expected: Decision::CannotRefresh(NoRefresh::Blocked),
                ..BASE
            },
            Row {
                name: "report while a refresh is in flight: join it and wait",
                in_flight: true,
                trigger: REPORT,
                expected: Decision::Refresh {
                    join: true,
                    wait: Wait::UntilDone,
                },
                ..BASE
            },
        ];
        let now_ms = NOW * 1000;
        for row in rows {
            let backoff = row.backoff_ms_left.map(|left| Backoff {
                fingerprint: "f".into(),
                retry_at_ms: now_ms + left,
                failures: 1,
                code: None,
                message: String::new(),
            });
            let facts = Facts {
                oauth: row.oauth,
                times: TokenTimes {
                    expires_at: row.expires_in.map(|left| NOW + left),
                    lifetime: row.lifetime,
                    last_refresh: Some(NOW),
                },
                poisoned: row.poisoned,
                refresh_token: row.refresh_token,
                blocker: row.blocked.then_some("no refresh token"),
                backoff: backoff.as_ref(),
                report_refresh_at: row.report_refresh_age.map(|age| NOW - age),
                in_flight: row.in_flight,
                now_ms,
            };
            assert_eq!(decide(&facts, row.trigger), row.expected, "{}", row.name);
        }
    }
}
