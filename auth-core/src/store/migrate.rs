//! Moving the credentials between the backends, and choosing the backend at start
//! (`[storage] backend`): `auto` asks the keyring whether it answers and says which backend it
//! took; a switch between the file and the keyring moves the credentials, deleting the old copy
//! only once the new one is confirmed ([`Migration`], `AuthStore::migrate`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::AuthStore;
use super::error::StoreError;
use super::file;
use super::home::Home;
use super::keyring::{self, KeyringItem};
use super::loaded::{Stored, parsed};
use super::lock::lock_within;
use super::marker::{self, Marker};

/// What a start-up move of the credentials between the file and the keyring did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Migration {
    /// Nothing to move.
    None,
    /// `auth.json` was moved into the keyring item (and deleted once the item was confirmed).
    IntoKeyring,
    /// The keyring item was moved into `auth.json` (and deleted once the file was written).
    IntoFile,
    /// A stale keyring item (signed out or replaced with the file backend) was deleted.
    StaleDeleted,
    /// Something is left where it was; the reason says what and what to do.
    Left(String),
}

/// `[storage] backend`: where the credential document is kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// `<home>/auth.json`.
    #[default]
    File,
    /// The OS keyring; an error (never a fallback) when it does not answer.
    Keyring,
    /// The keyring when one answers at start, else the file (said in the log and the status).
    Auto,
}

impl std::str::FromStr for StorageBackend {
    type Err = ();

    fn from_str(value: &str) -> Result<Self, ()> {
        match value.trim() {
            "file" => Ok(Self::File),
            "keyring" => Ok(Self::Keyring),
            "auto" => Ok(Self::Auto),
            _ => Err(()),
        }
    }
}

/// The backend that holds `home`'s credentials now, for when the configured one cannot be
/// read: the keyring when its marker says the item holds them (not superseded by the file
/// backend), else the file.
pub fn in_use(home: &Path) -> StorageBackend {
    if AuthStore::keyring(home).has_marker() {
        StorageBackend::Keyring
    } else {
        StorageBackend::File
    }
}

/// The store for `backend` in `home`, with the credentials moved into it (waiting at most
/// `lock_timeout` for another process's lock). Never fails: what could not be done is logged
/// (a keyring that does not answer is then an error on each request that needs it, which says
/// what to do).
pub async fn open(home: PathBuf, backend: StorageBackend, lock_timeout: Duration) -> AuthStore {
    let store = match backend {
        StorageBackend::File => AuthStore::new(home),
        StorageBackend::Keyring => AuthStore::keyring(home),
        StorageBackend::Auto => {
            let item = KeyringItem::for_home(&home);
            match tokio::task::spawn_blocking(move || item.probe()).await {
                Ok(Ok(())) => {
                    tracing::warn!(
                        storage = "keyring",
                        "[storage] backend = \"auto\": the OS keyring answered; the credentials are kept there"
                    );
                    AuthStore::keyring(home)
                }
                Ok(Err(error)) => {
                    let store = AuthStore::new(home);
                    tracing::warn!(
                        storage = "file",
                        %error,
                        "[storage] backend = \"auto\": no OS keyring answered; the credentials are kept in {}",
                        store.path().display()
                    );
                    store
                }
                Err(error) => {
                    tracing::warn!(storage = "file", %error, "[storage] backend = \"auto\": the keyring probe failed; the credentials are kept in the file");
                    AuthStore::new(home)
                }
            }
        }
    };
    let migrating = store.clone();
    match migrating.migrate(lock_timeout).await {
        Ok(Migration::None) => {}
        Ok(Migration::IntoKeyring) => tracing::warn!(
            "moved the credentials from {} into {}; the file is deleted",
            store.path().display(),
            store.location()
        ),
        Ok(Migration::IntoFile) => tracing::warn!(
            "moved the credentials from the OS keyring into {}; the keyring item is deleted",
            store.path().display()
        ),
        Ok(Migration::StaleDeleted) => tracing::warn!(
            "deleted the OS keyring item of this folder: it held credentials signed out or replaced with the file backend"
        ),
        Ok(Migration::Left(why)) => tracing::warn!("{why}"),
        Err(error) => tracing::error!(
            %error,
            "the credentials were not moved to the {} backend; they stay where they are (nothing was deleted) and the move is tried again at the next start",
            store.kind().as_str()
        ),
    }
    store
}

/// Whether all there is to do is deleting a stale item: the marker says the file backend
/// superseded it, and there is no `auth.json` to move.
pub(super) fn only_a_stale_item(home: &Home) -> Result<bool, StoreError> {
    Ok(marker::state(home) == Marker::Superseded && file::stamp(home)?.is_none())
}

/// Deletes a stale item (never moved anywhere), then the marker, when the keyring answers and
/// the marker, read again under the lock, still says it is stale.
pub(super) async fn delete_stale_item(
    home: &Home,
    lock_timeout: Duration,
) -> Result<Migration, StoreError> {
    let lock = lock_within(home, lock_timeout).await?;
    if marker::state(home) != Marker::Superseded {
        return Ok(Migration::None);
    }
    match home.keyring_item().delete() {
        Ok(()) => {
            marker::remove(home)?;
            drop(lock);
            Ok(Migration::StaleDeleted)
        }
        Err(error) => Ok(Migration::Left(format!(
            "the OS keyring item of this folder holds credentials that were signed out or replaced with the file backend; it is never used, but it could not be deleted now ({error}); deleting it is tried again at the next start"
        ))),
    }
}

/// With the keyring backend: an `auth.json` holding credentials goes into the item, and is
/// deleted only once the item is written and read back.
pub(super) async fn into_keyring(
    home: &Home,
    item: &KeyringItem,
    lock_timeout: Duration,
) -> Result<Migration, StoreError> {
    if file::stamp(home)?.is_none() {
        return Ok(Migration::None);
    }
    let lock = lock_within(home, lock_timeout).await?;
    let file = match file::load(home)?.stored {
        Stored::Present(file) => file,
        Stored::Missing => return Ok(Migration::None),
        Stored::Unreadable(reason) => {
            return Ok(Migration::Left(format!(
                "{} cannot be read ({reason}), so it was not moved into the OS keyring; fix or delete it",
                home.auth_json().display()
            )));
        }
    };
    item.write(&file.to_bytes())
        .map_err(|e| keyring::failure(home, "move the credentials into", e))?;
    marker::bump(home, &lock)?;
    file::remove(home, &lock)?;
    Ok(Migration::IntoKeyring)
}

/// With the file backend: a keyring item that the marker says holds this home's credentials
/// goes into `auth.json`, and is deleted only once the file is written. Without such a marker
/// the keyring is never touched.
pub(super) async fn into_file(
    home: &Home,
    lock_timeout: Duration,
) -> Result<Migration, StoreError> {
    if marker::state(home) != Marker::Keyring {
        return Ok(Migration::None);
    }
    let lock = lock_within(home, lock_timeout).await?;
    if file::stamp(home)?.is_some() {
        return Ok(Migration::Left(format!(
            "{} exists, so the credentials in the OS keyring item of this folder were left there; `--storage keyring` would use the file's instead",
            home.auth_json().display()
        )));
    }
    let item = home.keyring_item();
    let failed = |e| keyring::failure(home, "move the credentials out of", e);
    match item.read().map_err(failed)? {
        Some(bytes) => {
            let Stored::Present(file) = parsed(&bytes) else {
                return Ok(Migration::Left(
                    "the OS keyring item of this folder cannot be read, so it was left there; sign in again".into(),
                ));
            };
            file::write(home, &lock, &file)?;
            item.delete().map_err(failed)?;
            marker::remove(home)?;
            Ok(Migration::IntoFile)
        }
        None => {
            marker::remove(home)?;
            Ok(Migration::None)
        }
    }
}
