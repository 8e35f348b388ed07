//! Keeping the device off the runtime's thread: [`off_runtime`], through which every call
//! that may wait on the disk or the keyring is made, and the test-only knobs that make such
//! calls slow on purpose ([`TEST_WRITE_DELAY_ENV`]).

use std::time::Duration;

/// Environment knob, **for tests only**: every atomic write of this store sleeps this many
/// milliseconds between writing (and fsyncing) its temporary file and renaming it, as a slow
/// `fsync` would (a laptop's encrypted disk, a network home). Read once at start by the binary
/// ([`super::AuthStore::with_test_write_delay`]); never set it in production.
pub const TEST_WRITE_DELAY_ENV: &str = "AUTH_APP_SERVER_TEST_WRITE_DELAY_MS";

/// The test-only write delay of [`TEST_WRITE_DELAY_ENV`], if set to a number of milliseconds.
pub fn test_write_delay_from_env() -> Option<Duration> {
    test_delay_from_env(TEST_WRITE_DELAY_ENV)
}

/// A test-only delay (this store's [`TEST_WRITE_DELAY_ENV`], the provider's
/// `TEST_TRUST_ANCHORS_DELAY_ENV`): the variable's whole number of milliseconds, if above 0.
pub(crate) fn test_delay_from_env(variable: &str) -> Option<Duration> {
    std::env::var(variable)
        .ok()?
        .parse::<u64>()
        .ok()
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis)
}

/// Runs `work` on tokio's blocking pool and waits for it there. Every call that may wait on
/// the device (a write and its fsyncs, a read of the store, a keyring call) goes through this:
/// the runtime's one thread answers every request, so a slow disk or keyring on it would make
/// every poll of the process wait.
pub(crate) async fn off_runtime<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}
