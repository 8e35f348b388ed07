//! Wall-clock helpers: unix seconds and milliseconds, and RFC 3339 timestamps for `auth.json`.
//! Arithmetic on times read from files or providers saturates: a hostile number never panics.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn now_unix() -> i64 {
    now_ms().div_euclid(1000)
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis()
        .try_into()
        .unwrap_or(i64::MAX)
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// The RFC 3339 timestamp `at` in unix seconds; `None` when it does not parse.
pub fn parse_rfc3339(at: &str) -> Option<i64> {
    let then = humantime::parse_rfc3339_weak(at).ok()?;
    Some(match then.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    })
}

/// Unix seconds as RFC 3339 (UTC); times beyond what the format can show are clamped to its
/// range (years 1970 to 9999).
pub fn rfc3339(unix: i64) -> String {
    const LAST: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    let at = UNIX_EPOCH + Duration::from_secs(unix.clamp(0, LAST) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_and_extremes_do_not_panic() {
        assert_eq!(parse_rfc3339(&rfc3339(1_700_000_000)), Some(1_700_000_000));
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(i64::MIN), "1970-01-01T00:00:00Z");
        assert_eq!(parse_rfc3339("not a time"), None);
    }
}
