//! The keyring backend (`[storage] backend = "keyring"`): the credential document as one OS
//! keyring item per home ([`KeyringItem`]), holding exactly the bytes `auth.json` would hold,
//! and no secret in any file. The home keeps the lock and the marker `auth.storage`, rewritten
//! after every confirmed keyring write, whose stamp stands for the document's (one `stat` per
//! request, a keyring read only when another process changed something).

mod item;

use std::io;

pub use item::{KEYRING_TIMEOUT, KeyringError, KeyringItem, SERVICE};

use super::error::StoreError;
use super::file;
use super::format::AuthFile;
use super::home::Home;
use super::loaded::{Loaded, Stored, parsed, too_large};
use super::lock::WriteLock;
use super::marker::{self, Marker};
use super::safe_file::MAX_FILE_BYTES;
use super::stamp::FileStamp;

/// Where the document is, in words.
pub(super) fn location(item: &KeyringItem) -> String {
    format!(
        "the OS keyring item (service \"{SERVICE}\", home \"{}\")",
        item.home_attribute()
    )
}

/// Reads the keyring item. The marker's stamp is taken first: a write that lands between the
/// two changes the marker again, so the next request reads once more.
pub(super) fn load(home: &Home, item: &KeyringItem) -> Result<Loaded, StoreError> {
    let stamp = marker::stamp(home)?;
    if marker::state(home) == Marker::Superseded {
        // The file backend signed in or out after the item was written: what the item still
        // holds is stale, signed out, and never comes back.
        return Ok(Loaded {
            stamp,
            stored: Stored::Missing,
        });
    }
    let bytes = item
        .read()
        .map_err(|e| failure(home, "read the credentials from", e))?;
    let stored = match bytes {
        None => Stored::Missing,
        Some(bytes) if bytes.len() as u64 > MAX_FILE_BYTES => {
            Stored::Unreadable(too_large(Some(bytes.len() as u64)))
        }
        Some(bytes) => parsed(&bytes),
    };
    Ok(Loaded { stamp, stored })
}

/// Replaces the item and reads it back, and only then rewrites the marker (its new stamp is
/// returned). A failed keyring write leaves the previous item as it was.
pub(super) fn write(
    home: &Home,
    item: &KeyringItem,
    lock: &WriteLock,
    document: &AuthFile,
) -> Result<FileStamp, StoreError> {
    home.remove_leftover_temp_files();
    let bytes = file::encoded(home, document)?;
    item.write(&bytes)
        .map_err(|e| failure(home, "store the credentials in", e))?;
    marker::bump(home, lock)
}

/// Deletes the item, then the marker, then an `auth.json` that should not be there (and the
/// temporary files a killed writer left): no secret stays in the home after a logout.
pub(super) fn remove(home: &Home, item: &KeyringItem, lock: &WriteLock) -> Result<(), StoreError> {
    item.delete()
        .map_err(|e| failure(home, "delete the credentials from", e))?;
    marker::remove(home)?;
    file::remove(home, lock)
}

/// Keeps the item's content in another item, tagged `moved_aside = <now>`, deletes the item
/// and rewrites the marker; returns where the content went.
pub(super) fn move_aside(
    home: &Home,
    item: &KeyringItem,
    lock: &WriteLock,
    now: u64,
) -> Result<String, StoreError> {
    let failed = |e| failure(home, "move aside the credentials in", e);
    if let Some(bytes) = item.read().map_err(failed)? {
        item.set_aside(&bytes, &now.to_string()).map_err(failed)?;
        item.delete().map_err(failed)?;
    }
    marker::bump(home, lock)?;
    Ok(format!(
        "an OS keyring item (service \"{SERVICE}\", home \"{}\", moved_aside \"{now}\")",
        item.home_attribute()
    ))
}

/// A keyring failure as a store error about the home (`TimedOut` kind for a timeout).
pub(super) fn failure(home: &Home, action: &'static str, error: KeyringError) -> StoreError {
    let kind = if error.is_timeout() {
        io::ErrorKind::TimedOut
    } else {
        io::ErrorKind::Other
    };
    StoreError {
        action,
        path: home.dir().to_path_buf(),
        source: io::Error::new(kind, error),
        keyring: true,
    }
}
