//! The keyring worker against a real Secret Service (docs/storage.md, the OS keyring,
//! "Bounded"): a call queued behind one that takes its whole 2 s bound is never performed
//! after its caller gave up. Otherwise a write whose caller reported failure (and released
//! `auth.json.lock`) could still land in the item later, over what another writer stored.
//!
//! Its own test binary: it points this process's `DBUS_SESSION_BUS_ADDRESS` at the test bus,
//! which the worker reads when it connects.

use std::time::{Duration, Instant};

use auth_app_server_tests::keyring::SecretService;
use auth_core::store::keyring::{KEYRING_TIMEOUT, KeyringError, KeyringItem};

#[test]
fn a_write_queued_behind_a_hung_call_never_lands_after_its_caller_gave_up() {
    let keyring = SecretService::start();
    // SAFETY: the only test of this binary, before any thread that reads the environment.
    unsafe { std::env::set_var("DBUS_SESSION_BUS_ADDRESS", keyring.address()) };
    let home = tempfile::tempdir().unwrap();
    let item = KeyringItem::for_home(home.path());
    item.write(b"old").unwrap();

    // The daemon stops answering: the first call hangs for its whole bound, and the write is
    // queued behind it.
    keyring.suspend();
    let hung = item.clone();
    let first = std::thread::spawn(move || hung.read());
    // Nothing observable says the read is queued first; it is sent at once.
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    assert_eq!(item.write(b"new"), Err(KeyringError::TimedOut));
    let gave_up = started.elapsed();
    assert!(gave_up >= KEYRING_TIMEOUT, "gave up after {gave_up:?}");
    assert_eq!(first.join().unwrap(), Err(KeyringError::TimedOut));

    // The daemon answers again right after the write's caller gave up: before the fix, the
    // worker only now started the write (with a fresh 2 s) and it landed.
    keyring.resume();
    assert_eq!(item.read().unwrap().as_deref(), Some(&b"old"[..]));
    assert_eq!(keyring.lookup(home.path()).as_deref(), Some("old"));
}
