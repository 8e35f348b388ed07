//! The store's unit tests, through its façade ([`AuthStore`]): atomic writes, the lock, the
//! bounds of a read, moving aside and removing.

use std::fs::{self, File};
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::home::LOCK_NAME;
#[cfg(unix)]
use super::safe_file::mkfifo;
use super::safe_file::without_hanging;
use super::*;
use crate::secret::Secret;

fn store() -> (tempfile::TempDir, AuthStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = AuthStore::new(dir.path().join("home"));
    (dir, store)
}

#[test]
fn write_creates_private_folder_and_file_atomically() {
    let (_dir, store) = store();
    let lock = store.lock().unwrap();
    let stamp = store
        .write(&lock, &AuthFile::api_key(Secret::new("k1")))
        .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(store.home()).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(
            fs::metadata(store.path()).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let names: Vec<_> = fs::read_dir(store.home())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names.len(),
        2,
        "only auth.json and its lock, no temporary file: {names:?}"
    );
    let loaded = store.load().unwrap();
    assert_eq!(loaded.stamp, Some(stamp));
    assert!(
        matches!(loaded.stored, Stored::Present(ref f) if f.api_key.as_ref().unwrap().expose() == "k1")
    );
}

#[test]
fn every_write_changes_the_stamp() {
    let (_dir, store) = store();
    let lock = store.lock().unwrap();
    let first = store
        .write(&lock, &AuthFile::api_key(Secret::new("k1")))
        .unwrap();
    let second = store
        .write(&lock, &AuthFile::api_key(Secret::new("k1")))
        .unwrap();
    assert_ne!(first, second);
    assert_eq!(store.stamp().unwrap(), Some(second));
}

#[test]
fn a_reader_during_writes_never_sees_a_partial_file() {
    let (_dir, store) = store();
    let lock = store.lock().unwrap();
    store
        .write(&lock, &AuthFile::api_key(Secret::new("k0")))
        .unwrap();
    let reader_store = store.clone();
    let reader = std::thread::spawn(move || {
        for _ in 0..300 {
            match reader_store.load().unwrap().stored {
                Stored::Present(_) => {}
                other => panic!("reader saw {other:?}"),
            }
        }
    });
    for n in 0..300 {
        let key = format!("key-{n}-{}", "x".repeat(n * 10));
        store
            .write(&lock, &AuthFile::api_key(Secret::new(key)))
            .unwrap();
    }
    reader.join().unwrap();
}

#[test]
fn temp_files_of_a_dead_writer_are_removed_by_the_next_write() {
    let (_dir, store) = store();
    let lock = store.lock().unwrap();
    let leftover = store.home().join(".auth.json.AbC123.tmp");
    fs::write(&leftover, b"{\"version\":1,\"auth_mo").unwrap();
    store
        .write(&lock, &AuthFile::api_key(Secret::new("k1")))
        .unwrap();
    assert!(!leftover.exists());
}

#[tokio::test]
async fn a_bounded_lock_wait_gives_up_and_leaves_the_lock_free() {
    let (_dir, store) = store();
    let held = store.lock().unwrap();
    assert!(store.try_lock().unwrap().is_none());
    let error = store
        .lock_within(Duration::from_millis(30))
        .await
        .unwrap_err();
    assert_eq!(error.source.kind(), io::ErrorKind::TimedOut);
    assert!(
        error.to_string().contains("held it for over 30 ms"),
        "{error}"
    );
    drop(held);
    assert!(store.lock_within(Duration::ZERO).await.is_ok());
}

#[test]
fn the_lock_excludes_a_second_holder() {
    let (_dir, store) = store();
    let held = store.lock().unwrap();
    let other = File::options()
        .write(true)
        .open(store.home().join(LOCK_NAME))
        .unwrap();
    assert!(other.try_lock().is_err());
    drop(held);
    assert!(other.try_lock().is_ok());
}

#[test]
fn corrupt_file_is_reported_and_moved_aside_intact() {
    let (_dir, store) = store();
    let lock = store.lock().unwrap();
    fs::write(store.path(), b"{ half a file").unwrap();
    assert!(
        matches!(store.load().unwrap().stored, Stored::Unreadable(reason) if reason.contains("line 1"))
    );
    let aside = PathBuf::from(store.move_aside(&lock).unwrap());
    assert_eq!(fs::read(&aside).unwrap(), b"{ half a file");
    assert!(
        aside
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("auth.json.corrupt-")
    );
    assert!(matches!(store.load().unwrap().stored, Stored::Missing));
}

fn unreadable_reason(store: &AuthStore) -> String {
    let store = store.clone();
    match without_hanging(move || store.load().unwrap().stored) {
        Stored::Unreadable(reason) => reason,
        other => panic!("expected Unreadable, got {other:?}"),
    }
}

#[test]
fn a_file_over_the_limit_is_unreadable_even_when_sparse_or_valid() {
    let (_dir, store) = store();
    fs::create_dir_all(store.home()).unwrap();
    let sparse = File::create(store.path()).unwrap();
    sparse.set_len(2 * MAX_FILE_BYTES).unwrap();
    let reason = unreadable_reason(&store);
    assert!(reason.contains("more than 1048576 bytes"), "{reason}");

    // Valid JSON padded to exactly the limit is read; one byte more is not.
    let padded = |len: u64| {
        let start = br#"{"version":1,"auth_mode":"api_key","api_key":"k1","x_pad":""#;
        let mut bytes = start.to_vec();
        bytes.resize(len as usize - 2, b'p');
        bytes.extend_from_slice(b"\"}");
        bytes
    };
    fs::write(store.path(), padded(MAX_FILE_BYTES)).unwrap();
    assert!(matches!(store.load().unwrap().stored, Stored::Present(_)));
    fs::write(store.path(), padded(MAX_FILE_BYTES + 1)).unwrap();
    let reason = unreadable_reason(&store);
    assert!(reason.contains("more than 1048576 bytes"), "{reason}");
}

#[cfg(unix)]
#[test]
fn a_fifo_or_a_device_is_unreadable_and_never_waited_on() {
    let (_dir, store) = store();
    fs::create_dir_all(store.home()).unwrap();
    mkfifo(store.path());
    let reason = unreadable_reason(&store);
    assert!(
        reason.contains("FIFO") && reason.contains("not a regular file"),
        "{reason}"
    );

    fs::remove_file(store.path()).unwrap();
    std::os::unix::fs::symlink("/dev/zero", store.path()).unwrap();
    let reason = unreadable_reason(&store);
    assert!(reason.contains("device"), "{reason}");

    // Through a symlink to a regular file is fine.
    fs::remove_file(store.path()).unwrap();
    let target = store.home().join("elsewhere.json");
    fs::write(
        &target,
        br#"{"version":1,"auth_mode":"api_key","api_key":"k1"}"#,
    )
    .unwrap();
    std::os::unix::fs::symlink(&target, store.path()).unwrap();
    assert!(matches!(store.load().unwrap().stored, Stored::Present(_)));
}

#[cfg(unix)]
#[test]
fn the_lock_file_is_private_and_never_followed() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, store) = store();
    let lock_path = store.home().join(LOCK_NAME);
    drop(store.lock().unwrap());
    let mode = fs::metadata(&lock_path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // A symlink in its place, to a missing or an existing file: refused, target untouched.
    fs::remove_file(&lock_path).unwrap();
    let target = store.home().join("target");
    std::os::unix::fs::symlink(&target, &lock_path).unwrap();
    assert!(store.lock().is_err());
    assert!(!target.exists(), "the lock was created through the symlink");
    fs::write(&target, b"keep").unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
    let error = store.lock().unwrap_err();
    assert!(error.to_string().contains("lock file"), "{error}");
    assert_eq!(fs::read(&target).unwrap(), b"keep");
    assert_eq!(
        fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o644
    );

    // A FIFO in its place: refused at once, not waited on.
    fs::remove_file(&lock_path).unwrap();
    mkfifo(&lock_path);
    let locking = store.clone();
    assert!(without_hanging(move || locking.lock().is_err()));
}

#[test]
fn logout_removes_the_temp_files_of_a_dead_writer() {
    let (_dir, store) = store();
    let lock = store.lock().unwrap();
    let leftover = store.home().join(".auth.json.k1LL3d.tmp");
    fs::write(
        &leftover,
        b"{\"version\":1,\"auth_mode\":\"api_key\",\"api_key\":\"sk-",
    )
    .unwrap();
    store.remove(&lock).unwrap();
    assert!(!leftover.exists());
}

#[test]
fn a_document_the_reader_would_refuse_is_never_written() {
    let (_dir, store) = store();
    let lock = store.lock().unwrap();
    let small = AuthFile::api_key(Secret::new("sk-small"));
    store.write(&lock, &small).unwrap();
    let before = fs::read(store.path()).unwrap();
    let huge = AuthFile::api_key(Secret::new("k".repeat(MAX_FILE_BYTES as usize)));
    let error = store.write(&lock, &huge).unwrap_err().to_string();
    assert!(error.contains("nothing was written"), "{error}");
    assert!(!error.contains("kkkk"), "{error}");
    assert_eq!(fs::read(store.path()).unwrap(), before);
    assert!(matches!(store.load().unwrap().stored, Stored::Present(_)));
}

#[test]
fn remove_of_a_missing_file_succeeds() {
    let (_dir, store) = store();
    let lock = store.lock().unwrap();
    store.remove(&lock).unwrap();
    assert_eq!(store.stamp().unwrap(), None);
}
