//! The refresh rules' tables.

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

/// What a row asks, and the decision expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Poll(PollDecision),
    /// A report of the stored token when `true`, of an older one when `false`.
    Report(bool, ReportDecision),
}

/// A row: what is true, what is asked, and the decision.
struct Row {
    name: &'static str,
    oauth: bool,
    expires_in: Option<i64>,
    lifetime: Option<i64>,
    poisoned: bool,
    refresh_token: bool,
    blocker: Option<Blocker>,
    backoff_ms_left: Option<i64>,
    report_refresh_age: Option<i64>,
    in_flight: bool,
    case: Case,
}

const BASE: Row = Row {
    name: "",
    oauth: true,
    expires_in: Some(3600),
    lifetime: Some(3600),
    poisoned: false,
    refresh_token: true,
    blocker: None,
    backoff_ms_left: None,
    report_refresh_age: None,
    in_flight: false,
    case: Case::Poll(PollDecision::Answer),
};

const BOUNDED: Case = Case::Poll(PollDecision::Refresh(Wait::AtMost(POLL_WAIT)));
const FULL: Case = Case::Poll(PollDecision::Refresh(Wait::UntilDone));
const fn report(decision: ReportDecision) -> Case {
    Case::Report(true, decision)
}
const fn report_of_older(decision: ReportDecision) -> Case {
    Case::Report(false, decision)
}

#[test]
fn the_decision_table() {
    use Blocker::{NoRefreshToken, OtherIssuer};
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
            case: BOUNDED,
            ..BASE
        },
        Row {
            name: "expired: wait for the refresh",
            expires_in: Some(-1),
            case: FULL,
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
            case: Case::Poll(PollDecision::Answer),
            ..BASE
        },
        Row {
            name: "expired with a refresh in flight: join it and wait",
            expires_in: Some(0),
            in_flight: true,
            case: FULL,
            ..BASE
        },
        Row {
            name: "stale inside a backoff window: no network",
            expires_in: Some(100),
            backoff_ms_left: Some(1),
            case: Case::Poll(PollDecision::BackingOff),
            ..BASE
        },
        Row {
            name: "stale after the backoff window: refresh",
            expires_in: Some(100),
            backoff_ms_left: Some(0),
            case: BOUNDED,
            ..BASE
        },
        Row {
            name: "poisoned: never refresh",
            expires_in: Some(-1),
            poisoned: true,
            case: Case::Poll(PollDecision::Poisoned),
            ..BASE
        },
        Row {
            name: "poisoned and fresh: never refresh",
            poisoned: true,
            case: Case::Poll(PollDecision::Poisoned),
            ..BASE
        },
        Row {
            name: "stale without a way to refresh",
            expires_in: Some(-1),
            blocker: Some(NoRefreshToken),
            case: Case::Poll(PollDecision::Blocked(NoRefreshToken)),
            ..BASE
        },
        Row {
            name: "fresh but blocked: answer",
            blocker: Some(NoRefreshToken),
            ..BASE
        },
        Row {
            name: "report of an API key",
            oauth: false,
            case: report(ReportDecision::ApiKey),
            ..BASE
        },
        Row {
            name: "report on poisoned credentials",
            poisoned: true,
            case: report_of_older(ReportDecision::Poisoned),
            ..BASE
        },
        Row {
            name: "report of an older token",
            case: report_of_older(ReportDecision::AlreadyRotated),
            ..BASE
        },
        Row {
            name: "report of a fresh current token: refresh and wait",
            case: report(ReportDecision::Refresh),
            ..BASE
        },
        Row {
            name: "report of a token a report refreshed 59 s ago",
            report_refresh_age: Some(59),
            case: report(ReportDecision::DidNotHelp),
            ..BASE
        },
        Row {
            name: "report of a token a report refreshed 60 s ago",
            report_refresh_age: Some(60),
            case: report(ReportDecision::Refresh),
            ..BASE
        },
        Row {
            name: "report inside a backoff window",
            backoff_ms_left: Some(500),
            case: report(ReportDecision::BackingOff),
            ..BASE
        },
        Row {
            name: "report of the current token without a refresh token: dead",
            refresh_token: false,
            blocker: Some(NoRefreshToken),
            case: report(ReportDecision::Dead),
            ..BASE
        },
        Row {
            name: "report of an older token without a refresh token",
            refresh_token: false,
            blocker: Some(NoRefreshToken),
            case: report_of_older(ReportDecision::AlreadyRotated),
            ..BASE
        },
        Row {
            name: "report of a refreshable token for another provider",
            blocker: Some(OtherIssuer),
            case: report(ReportDecision::Blocked(OtherIssuer)),
            ..BASE
        },
        Row {
            name: "expired without a refresh token, polled: not dead until rejected",
            expires_in: Some(-1),
            refresh_token: false,
            blocker: Some(NoRefreshToken),
            case: Case::Poll(PollDecision::Blocked(NoRefreshToken)),
            ..BASE
        },
        Row {
            name: "report while a refresh is in flight: join it and wait",
            in_flight: true,
            case: report(ReportDecision::Refresh),
            ..BASE
        },
        Row {
            name: "report inside a backoff window while a refresh is in flight: join it",
            in_flight: true,
            backoff_ms_left: Some(500),
            case: report(ReportDecision::Refresh),
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
            blocker: row.blocker,
            backoff: backoff.as_ref(),
            report_refresh_at: row.report_refresh_age.map(|age| NOW - age),
            in_flight: row.in_flight,
            now_ms,
        };
        let decided = match row.case {
            Case::Poll(_) => Case::Poll(decide_poll(&facts)),
            Case::Report(current, _) => Case::Report(current, decide_report(&facts, current)),
        };
        assert_eq!(decided, row.case, "{}", row.name);
    }
}

#[test]
fn which_credentials_this_server_may_refresh() {
    use Blocker::*;
    let url = |s: &str| Url::parse(s).unwrap();
    let (issuer, other) = (url("https://issuer.example/"), url("https://other.example"));
    let client = |known_issuer, client_id| {
        Some(RefreshClient {
            known_issuer,
            client_id,
        })
    };
    let base = Eligibility {
        oauth: true,
        refresh_token: true,
        stored_issuer: Some("https://issuer.example"),
        stored_client_id: Some("app"),
        client: client(Some(&issuer), Some("app")),
    };
    // (what differs from `base`, the blocker)
    let rows: &[(&str, Eligibility, Option<Blocker>)] = &[
        ("the issuer and client of the tokens", base, None),
        (
            "an API key",
            Eligibility {
                oauth: false,
                refresh_token: false,
                client: None,
                ..base
            },
            Some(ApiKey),
        ),
        (
            "no refresh token",
            Eligibility {
                refresh_token: false,
                ..base
            },
            Some(NoRefreshToken),
        ),
        (
            "no client to refresh with",
            Eligibility {
                client: None,
                ..base
            },
            Some(NoProvider),
        ),
        (
            "another issuer",
            Eligibility {
                client: client(Some(&other), Some("app")),
                ..base
            },
            Some(OtherIssuer),
        ),
        (
            "no issuer recorded with the tokens",
            Eligibility {
                stored_issuer: None,
                ..base
            },
            Some(OtherIssuer),
        ),
        (
            "an issuer still to be found: checked by the refresh",
            Eligibility {
                client: client(None, Some("app")),
                ..base
            },
            None,
        ),
        (
            "the same issuer with a trailing slash",
            Eligibility {
                stored_issuer: Some("https://issuer.example/"),
                ..base
            },
            None,
        ),
        (
            "another configured client_id",
            Eligibility {
                client: client(Some(&issuer), Some("other")),
                ..base
            },
            Some(OtherClientId),
        ),
        (
            "no client_id configured: the recorded one",
            Eligibility {
                client: client(Some(&issuer), None),
                ..base
            },
            None,
        ),
        (
            "a configured client_id, none recorded",
            Eligibility {
                stored_client_id: None,
                ..base
            },
            None,
        ),
        (
            "no client_id anywhere",
            Eligibility {
                stored_client_id: None,
                client: client(Some(&issuer), None),
                ..base
            },
            Some(NoClientId),
        ),
    ];
    for (name, facts, expected) in rows {
        assert_eq!(blocker(facts), *expected, "{name}");
    }
}

#[test]
fn blockers_say_why_in_one_sentence_each() {
    let all = [
        Blocker::ApiKey,
        Blocker::NoRefreshToken,
        Blocker::NoProvider,
        Blocker::OtherIssuer,
        Blocker::OtherClientId,
        Blocker::NoClientId,
    ];
    for blocker in all {
        assert_eq!(blocker.to_string(), blocker.message());
    }
    assert_eq!(
        Blocker::NoRefreshToken.message(),
        "there is no refresh token: sign in again"
    );
}

#[test]
fn the_next_backoff_counts_on_and_waits_longer() {
    let previous = |failures| Backoff {
        fingerprint: "old".into(),
        retry_at_ms: 0,
        failures,
        code: None,
        message: String::new(),
    };
    let now_ms = NOW * 1000 + 250;
    /// (failures before, Retry-After in s, failures after, wait in ms, recorded retry_at in s)
    type Next = (Option<u32>, Option<u64>, u32, i64, i64);
    let cases: &[Next] = &[
        (None, None, 1, 1_000, NOW + 2),
        (Some(0), None, 1, 1_000, NOW + 2),
        (Some(1), None, 2, 2_000, NOW + 3),
        (Some(4), None, 5, 16_000, NOW + 17),
        (Some(9), None, 10, 300_000, NOW + 301),
        (Some(u32::MAX), None, u32::MAX, 300_000, NOW + 301),
        (None, Some(30), 1, 30_000, NOW + 31),
        (Some(3), Some(7), 4, 7_000, NOW + 8),
        (None, Some(100_000), 1, 300_000, NOW + 301),
    ];
    for &(before, retry_after, failures, wait_ms, retry_at) in cases {
        let previous = before.map(previous);
        let next = Backoff::next(
            previous.as_ref(),
            "f".into(),
            retry_after.map(Duration::from_secs),
            Some("temporarily_unavailable".into()),
            "m".into(),
            now_ms,
        );
        let expected = Backoff {
            fingerprint: "f".into(),
            retry_at_ms: now_ms + wait_ms,
            failures,
            code: Some("temporarily_unavailable".into()),
            message: "m".into(),
        };
        assert_eq!(next, expected, "{before:?} {retry_after:?}");
        assert_eq!(next.retry_at_secs(), retry_at, "{before:?} {retry_after:?}");
    }
    // A window ending on a whole second is recorded as that second.
    let whole = Backoff::next(None, "f".into(), None, None, String::new(), NOW * 1000);
    assert_eq!(whole.retry_at_secs(), NOW + 1);
}
