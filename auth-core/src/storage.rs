//! Choosing where the credentials are kept at start (`[storage] backend`), and moving them
//! there: `auto` asks the keyring whether it answers and says which backend it took; a switch
//! between the file and the keyring moves the credentials, deleting the old copy only once the
//! new one is confirmed (`AuthStore::migrate`).

use std::path::{Path, PathBuf};

use crate::config::StorageBackend;
use crate::keyring::KeyringItem;
use crate::store::{AuthStore, Migration};

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

/// The store for `backend` in `home`, with the credentials moved into it. Never fails: what
/// could not be done is logged (a keyring that does not answer is then an error on each
/// request that needs it, which says what to do).
pub async fn open(home: PathBuf, backend: StorageBackend) -> AuthStore {
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
    let timeout = crate::credential::lock_timeout();
    match migrating.migrate(timeout).await {
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
