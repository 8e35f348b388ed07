//! The file backend: the credential document as `<home>/auth.json` (the keyring backend uses
//! these too: it moves an `auth.json` into its item at start, and deletes one left behind at a
//! logout).
//!
//! Readers never lock: every write is a rename of a complete, fsynced temporary file, so a
//! reader sees either the old file or the new one. What the file can make the server do is
//! bounded (docs/storage.md, bounds): `auth.json` that is not a regular file (a FIFO, a device,
//! through a symlink or not) or holds more than [`MAX_FILE_BYTES`] is unreadable, and is never
//! opened for a blocking read.

use std::fs::{self, Metadata};
use std::io::{self, Read};

use super::error::StoreError;
use super::format::AuthFile;
use super::home::Home;
use super::loaded::{Loaded, Stored, parsed, too_large};
use super::lock::WriteLock;
use super::safe_file::{
    MAX_FILE_BYTES, is_absent, kind_of, open_without_waiting, within_read_limit,
};
use super::stamp::FileStamp;

/// The stamp of `auth.json` as it is now (one `stat`), `None` when missing.
pub(super) fn stamp(home: &Home) -> Result<Option<FileStamp>, StoreError> {
    FileStamp::current(home.auth_json())
}

/// Reads `auth.json`. The stamp is taken from the open file, so it matches the content read.
///
/// A file that is not a regular file or holds more than [`MAX_FILE_BYTES`] is `Unreadable`
/// without a byte read: a symlink's target is checked before opening (a device is never
/// opened), the open never waits (a FIFO swapped in meanwhile would hang the server), the open
/// file is checked again, and one byte past the limit at most is read.
pub(super) fn load(home: &Home) -> Result<Loaded, StoreError> {
    let path = home.auth_json();
    let failed = |source| StoreError::io("read", path, source);
    let missing = Loaded {
        stamp: None,
        stored: Stored::Missing,
    };
    match fs::metadata(path) {
        Ok(metadata) => {
            if let Some(unreadable) = unusable(&metadata) {
                return Ok(unreadable);
            }
        }
        Err(e) if is_absent(&e) => return Ok(missing),
        Err(source) => return Err(failed(source)),
    }
    let file = match open_without_waiting(path) {
        Ok(file) => file,
        Err(e) if is_absent(&e) => return Ok(missing),
        Err(source) => return Err(failed(source)),
    };
    let metadata = file.metadata().map_err(failed)?;
    if let Some(unreadable) = unusable(&metadata) {
        return Ok(unreadable);
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(failed)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        // It grew since the check.
        return Ok(Loaded {
            stamp: Some(FileStamp::of(&metadata)),
            stored: Stored::Unreadable(too_large(None)),
        });
    }
    Ok(Loaded {
        stamp: Some(FileStamp::of(&metadata)),
        stored: parsed(&bytes),
    })
}

/// `Unreadable` when `metadata` (of `auth.json`, or of its target) shows that it cannot hold
/// credentials: not a regular file, or too large.
fn unusable(metadata: &Metadata) -> Option<Loaded> {
    let reason = if !metadata.is_file() {
        let kind = kind_of(&metadata.file_type());
        format!("it is {kind}, not a regular file")
    } else if metadata.len() > MAX_FILE_BYTES {
        too_large(Some(metadata.len()))
    } else {
        return None;
    };
    Some(Loaded {
        stamp: Some(FileStamp::of(metadata)),
        stored: Stored::Unreadable(reason),
    })
}

/// Replaces `auth.json` atomically: a 0600 temporary file in the home, written and fsynced,
/// renamed over `auth.json`, then the folder fsynced so that the rename is durable. A document
/// that a reader would refuse is never written.
pub(super) fn write(
    home: &Home,
    _lock: &WriteLock,
    file: &AuthFile,
) -> Result<FileStamp, StoreError> {
    home.remove_leftover_temp_files();
    let bytes = encoded(home, file)?;
    home.replace(home.file_temp_prefix(), home.auth_json(), &bytes)
}

/// The bytes of `file` as either backend stores them, when a reader would accept them (at
/// most [`MAX_FILE_BYTES`]): a document that every process would refuse is never written.
pub(super) fn encoded(home: &Home, file: &AuthFile) -> Result<Vec<u8>, StoreError> {
    within_read_limit(file.to_bytes())
        .map_err(|source| StoreError::io("write", home.auth_json(), source))
}

/// Deletes `auth.json`, and any temporary file a killed writer left (it may hold the secrets
/// being signed out). A missing file is not an error.
pub(super) fn remove(home: &Home, _lock: &WriteLock) -> Result<(), StoreError> {
    home.remove_leftover_temp_files();
    match fs::remove_file(home.auth_json()) {
        Ok(()) => {
            home.sync();
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StoreError::io("delete", home.auth_json(), source)),
    }
}

/// Moves an unreadable `auth.json` aside to `auth.json.corrupt-<now>` (`-<n>` added when
/// taken) so that it is never lost; returns where it went.
pub(super) fn move_aside(home: &Home, _lock: &WriteLock, now: u64) -> Result<String, StoreError> {
    let mut target = home
        .dir()
        .join(format!("{}.corrupt-{now}", home.file_name()));
    let mut n = 1;
    while target.exists() {
        target = home
            .dir()
            .join(format!("{}.corrupt-{now}-{n}", home.file_name()));
        n += 1;
    }
    home.remove_leftover_temp_files();
    fs::rename(home.auth_json(), &target)
        .map_err(|source| StoreError::io("move aside", home.auth_json(), source))?;
    home.sync();
    Ok(target.display().to_string())
}
