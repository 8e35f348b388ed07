//! `auth.storage`, the keyring backend's marker in the home. It holds no secret: rewritten
//! atomically after every confirmed keyring write (a new file, so a new stamp), its stamp
//! stands for the keyring item's, so that a request costs one `stat` and the keyring is read
//! only when another process changed something. It also says which backend wrote last: once
//! the file backend has signed in or out, the item is stale ([`Marker::Superseded`]).

use std::fs;
use std::io::{self, Read};

use super::error::StoreError;
use super::home::Home;
use super::lock::WriteLock;
use super::safe_file::open_without_waiting;
use super::stamp::FileStamp;

/// The marker's `backend` when the keyring item holds the credentials...
const KEYRING_BACKEND: &str = "keyring";
/// ...and when the file backend signed in or out since, so that the item is stale.
const FILE_BACKEND: &str = "file";

/// What `auth.storage` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Marker {
    Absent,
    /// The keyring item holds this home's credentials.
    Keyring,
    /// The file backend signed in or out after the item was written: the item is stale.
    Superseded,
}

/// The marker's stamp as it is now (one `stat`), `None` when missing.
pub(super) fn stamp(home: &Home) -> Result<Option<FileStamp>, StoreError> {
    FileStamp::current(home.marker_path())
}

/// What the marker says about the keyring item of `home`.
pub(super) fn state(home: &Home) -> Marker {
    if !home.marker_path().exists() {
        return Marker::Absent;
    }
    // Anything but a marker the file backend wrote counts as the keyring's (as markers of
    // earlier versions do): the item is then never deleted on a guess.
    match read(home) {
        Some(marker) if marker.get("backend").and_then(|b| b.as_str()) == Some(FILE_BACKEND) => {
            Marker::Superseded
        }
        _ => Marker::Keyring,
    }
}

/// Rewrites the marker to say that the keyring item holds the credentials, with the next
/// generation (a new file, so a new stamp every time): it only tells other processes to read
/// again.
pub(super) fn bump(home: &Home, _lock: &WriteLock) -> Result<FileStamp, StoreError> {
    write(
        home,
        KEYRING_BACKEND,
        "the credentials of this folder are in the OS keyring (service auth-app-server); this file holds no secret and only tells other processes that they changed",
    )
}

/// With the file backend, before `auth.json` is written or deleted: a marker that says the
/// keyring holds the credentials (its item could not be moved into the file, the keyring did
/// not answer) is rewritten to say that the item is stale. Otherwise a logout would leave that
/// item for the next start to move back: signed-out credentials resurrected. The item itself
/// is not touched here (the keyring may not answer); it is never read again as credentials,
/// and the next start that reaches the keyring deletes it (`AuthStore::migrate`).
pub(super) fn supersede(home: &Home, _lock: &WriteLock) -> Result<(), StoreError> {
    if state(home) != Marker::Keyring {
        return Ok(());
    }
    write(
        home,
        FILE_BACKEND,
        "the file backend signed in or out after the OS keyring held the credentials of this folder: its item (service auth-app-server) is stale, is never used, and is deleted at the next start that reaches the keyring; this file holds no secret",
    )?;
    Ok(())
}

pub(super) fn remove(home: &Home) -> Result<(), StoreError> {
    match fs::remove_file(home.marker_path()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StoreError::io("delete", home.marker_path(), source)),
    }
}

/// Writes the marker with the next generation: a new file, so a new stamp every time.
fn write(home: &Home, backend: &str, note: &str) -> Result<FileStamp, StoreError> {
    let generation = read(home)
        .and_then(|marker| marker.get("generation")?.as_u64())
        .unwrap_or(0)
        .wrapping_add(1);
    let marker = serde_json::json!({
        "backend": backend,
        "generation": generation,
        "note": note,
    });
    home.replace(
        home.marker_temp_prefix(),
        home.marker_path(),
        format!("{marker}\n").as_bytes(),
    )
}

/// The marker's content; `None` when missing or not JSON. Read like auth.json: never
/// waiting in the open, a regular file only, bounded.
fn read(home: &Home) -> Option<serde_json::Value> {
    let file = open_without_waiting(home.marker_path()).ok()?;
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return None;
    }
    let mut text = String::new();
    file.take(4096).read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}
