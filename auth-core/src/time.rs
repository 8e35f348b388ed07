//! Wall-clock helpers: unix seconds and RFC 3339 timestamps for `auth.json`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs() as i64
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Seconds since the RFC 3339 timestamp `at`; `None` when it does not parse.
pub fn age_secs(at: &str) -> Option<i64> {
    let then = humantime::parse_rfc3339_weak(at).ok()?;
    Some(match SystemTime::now().duration_since(then) {
        Ok(age) => age.as_secs() as i64,
        Err(ahead) => -(ahead.duration().as_secs() as i64),
    })
}

/// Unix seconds as RFC 3339 (UTC).
pub fn rfc3339(unix: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}
