//! The limits a server runs with (how long a writer waits for the lock, a sign-in for its
//! browser, a request for the provider) and the test-only slow-downs, read from the environment
//! once at start ([`Limits::from_env`]) into a plain struct that is passed down. No other module
//! reads these variables.

use std::time::Duration;

/// Environment knob: how long a writer waits for another process's lock on the credentials, in
/// milliseconds (default 10 000).
pub const LOCK_TIMEOUT_ENV: &str = "AUTH_APP_SERVER_LOCK_TIMEOUT_MS";
/// Environment knob: how long a browser or device sign-in may take, in seconds (default 600).
pub const LOGIN_TIMEOUT_ENV: &str = "AUTH_APP_SERVER_LOGIN_TIMEOUT_SECS";
/// Environment knob: the timeout of one HTTP request to the provider, in milliseconds (default
/// 15 000).
pub const HTTP_TIMEOUT_ENV: &str = "AUTH_APP_SERVER_HTTP_TIMEOUT_MS";
/// Environment knob, **for tests only**: every atomic write of the store sleeps this many
/// milliseconds between writing (and fsyncing) its temporary file and renaming it, as a slow
/// `fsync` would (a laptop's encrypted disk, a network home). Never set it in production.
pub const TEST_WRITE_DELAY_ENV: &str = "AUTH_APP_SERVER_TEST_WRITE_DELAY_MS";
/// Environment knob, **for tests only**: building the HTTP client sleeps this many milliseconds
/// before it reads the trust anchors, as a slow `ca_file` or platform store would.
pub const TEST_TRUST_ANCHORS_DELAY_ENV: &str = "AUTH_APP_SERVER_TEST_TRUST_ANCHORS_DELAY_MS";

/// What this process runs with. [`Limits::default`] is what it runs with when no variable is
/// set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a writer waits for another process's lock ([`LOCK_TIMEOUT_ENV`]).
    pub lock_timeout: Duration,
    /// How long a browser or device sign-in may take ([`LOGIN_TIMEOUT_ENV`]).
    pub login_timeout: Duration,
    /// The timeout of one request to the provider ([`HTTP_TIMEOUT_ENV`]).
    pub http_timeout: Duration,
    /// Test only ([`TEST_WRITE_DELAY_ENV`]).
    pub test_write_delay: Option<Duration>,
    /// Test only ([`TEST_TRUST_ANCHORS_DELAY_ENV`]).
    pub test_trust_anchors_delay: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            lock_timeout: Duration::from_secs(10),
            login_timeout: Duration::from_secs(600),
            http_timeout: Duration::from_secs(15),
            test_write_delay: None,
            test_trust_anchors_delay: None,
        }
    }
}

impl Limits {
    /// The limits this process's environment sets; a variable that is unset or not a whole
    /// number keeps its default.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The limits `lookup` (a variable's value by name) sets.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let number = |name: &str| lookup(name).and_then(|v| v.parse::<u64>().ok());
        let defaults = Self::default();
        Self {
            lock_timeout: number(LOCK_TIMEOUT_ENV)
                .map_or(defaults.lock_timeout, Duration::from_millis),
            login_timeout: number(LOGIN_TIMEOUT_ENV)
                .map_or(defaults.login_timeout, Duration::from_secs),
            http_timeout: number(HTTP_TIMEOUT_ENV)
                .map_or(defaults.http_timeout, Duration::from_millis),
            test_write_delay: number(TEST_WRITE_DELAY_ENV)
                .filter(|&ms| ms > 0)
                .map(Duration::from_millis),
            test_trust_anchors_delay: number(TEST_TRUST_ANCHORS_DELAY_ENV)
                .filter(|&ms| ms > 0)
                .map(Duration::from_millis),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_variable_sets_its_limit_and_anything_else_keeps_the_default() {
        let set = Limits::from_lookup(|name| {
            Some(
                match name {
                    LOCK_TIMEOUT_ENV => "250",
                    LOGIN_TIMEOUT_ENV => "3",
                    HTTP_TIMEOUT_ENV => "1500",
                    TEST_WRITE_DELAY_ENV => "40",
                    TEST_TRUST_ANCHORS_DELAY_ENV => "0",
                    _ => return None,
                }
                .to_owned(),
            )
        });
        assert_eq!(
            set,
            Limits {
                lock_timeout: Duration::from_millis(250),
                login_timeout: Duration::from_secs(3),
                http_timeout: Duration::from_millis(1500),
                test_write_delay: Some(Duration::from_millis(40)),
                test_trust_anchors_delay: None,
            }
        );
        assert_eq!(Limits::from_lookup(|_| None), Limits::default());
        assert_eq!(
            Limits::from_lookup(|_| Some("soon".to_owned())),
            Limits::default()
        );
    }
}
