//! Where the credential document lives (`auth.json`, or the OS keyring), atomic writes, the
//! cross-process lock, and cheap change detection: [`AuthStore`], the one façade over the two
//! backends (`file`, [`keyring`]).
//!
//! Both backends share the lock (`auth.json.lock`, `lock`) and the document format
//! ([`format`]). With the keyring backend the document is one keyring item and no secret is in
//! any file: the home holds a non-secret marker, `auth.storage` (`marker`), rewritten
//! atomically after every confirmed keyring write, whose stamp stands for the document's (one
//! `stat` per request, a keyring read only when another process changed something). At start,
//! [`open`] picks the backend and moves the credentials into it (`migrate`).
//!
//! Readers never lock: every write is a rename of a complete, fsynced temporary file
//! (`safe_file`), so a reader sees either the old file or the new one. Writers hold an
//! exclusive lock on the separate `auth.json.lock` from their re-read until their write is
//! done.
//!
//! Reads, writes, deletions and keyring calls block the calling thread (a write is two
//! `fsync`s, which take seconds on a slow disk): the server makes them through [`off_runtime`],
//! never on the runtime's thread that answers polls. Only [`AuthStore::stamp`] (one `stat`)
//! and the lock's non-blocking tries run there.
//!
//! What a file can make the server do is bounded (docs/storage.md, bounds): `auth.json` that is
//! not a regular file (a FIFO, a device, through a symlink or not) or holds more than
//! [`MAX_FILE_BYTES`] is unreadable, and is never opened for a blocking read; the lock file is
//! created 0600 and never followed through a symlink.

mod blocking;
mod error;
mod file;
pub mod format;
mod home;
pub mod keyring;
mod loaded;
mod lock;
mod marker;
mod migrate;
pub(crate) mod safe_file;
mod stamp;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::limits::TEST_WRITE_DELAY_ENV;
pub(crate) use blocking::off_runtime;
pub use error::StoreError;
pub use home::CREDENTIALS_FOLDER;
pub use loaded::{Loaded, Stored};
pub use lock::WriteLock;
pub use migrate::{Migration, StorageBackend, in_use, open};
pub use safe_file::MAX_FILE_BYTES;
pub use stamp::FileStamp;

use format::AuthFile;
use home::Home;
use keyring::KeyringItem;

/// Where the credential document is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    /// `<home>/auth.json`.
    File,
    /// One item in the OS keyring; the home holds only the lock and a non-secret marker.
    Keyring,
}

impl StorageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Keyring => "keyring",
        }
    }
}

/// The credential store of one home: its folder, and the backend that keeps the document.
#[derive(Debug, Clone)]
pub struct AuthStore {
    home: Home,
    backend: Backend,
}

/// The two places a document can be kept. The file backend needs nothing beyond the home: its
/// `auth.json` is in every home, and the keyring backend moves one into its item at start and
/// deletes one left behind at a logout.
#[derive(Debug, Clone)]
enum Backend {
    /// `<home>/auth.json`.
    File,
    /// This OS keyring item; the home holds the lock and the marker.
    Keyring(KeyringItem),
}

impl AuthStore {
    /// The file backend: `<home>/auth.json`.
    pub fn new(home: impl Into<PathBuf>) -> Self {
        Self {
            home: Home::new(home.into()),
            backend: Backend::File,
        }
    }

    /// The keyring backend: the document in the OS keyring item of `home`.
    pub fn keyring(home: impl Into<PathBuf>) -> Self {
        let home = Home::new(home.into());
        let item = home.keyring_item();
        Self {
            home,
            backend: Backend::Keyring(item),
        }
    }

    /// The store of the named credential `name` (contract version 3) of `home`, with the
    /// backend of `kind`: `<home>/credentials/NAME.json`, or its own keyring item. The name
    /// must already be checked ([`crate::registry::CredentialName`]).
    pub fn named(home: impl Into<PathBuf>, name: &str, kind: StorageKind) -> Self {
        let home = Home::named(home.into(), name);
        let backend = match kind {
            StorageKind::File => Backend::File,
            StorageKind::Keyring => Backend::Keyring(home.keyring_item()),
        };
        Self { home, backend }
    }

    /// The credential's name; `None` for the default one (`auth.json`).
    pub fn credential(&self) -> Option<&str> {
        self.home.credential().map(|name| &**name)
    }

    /// Checks the `credentials` folder of a named credential (a symlink is refused, a folder
    /// others can enter is made private); nothing for the default one.
    pub fn check_folder(&self) -> Result<(), StoreError> {
        if self.home.credential().is_some() {
            self.home.check_credentials_folder()?;
        }
        Ok(())
    }

    /// This store with every atomic write pausing `delay` between its temporary file and the
    /// rename (tests only: see [`crate::limits::TEST_WRITE_DELAY_ENV`]).
    pub fn with_test_write_delay(mut self, delay: Option<Duration>) -> Self {
        if let Some(delay) = delay {
            tracing::warn!(
                delay_ms = delay.as_millis() as u64,
                "{TEST_WRITE_DELAY_ENV} is set: every write of the credentials is slowed down (for tests only)"
            );
        }
        self.home.set_test_write_delay(delay);
        self
    }

    /// The test-only write delay, for other files written like this store's
    /// (`registrations.json`).
    pub(crate) fn test_write_delay(&self) -> Option<Duration> {
        self.home.test_write_delay()
    }

    pub fn kind(&self) -> StorageKind {
        match self.backend {
            Backend::File => StorageKind::File,
            Backend::Keyring(_) => StorageKind::Keyring,
        }
    }

    /// The keyring item, for the keyring backend.
    pub fn keyring_item(&self) -> Option<&KeyringItem> {
        match &self.backend {
            Backend::File => None,
            Backend::Keyring(item) => Some(item),
        }
    }

    /// The home folder (for a named credential too: not its `credentials` folder).
    pub fn home(&self) -> &Path {
        self.home.root()
    }

    /// `<home>/auth.json`, or `<home>/credentials/NAME.json` (whichever the backend: it names
    /// the file a migration reads).
    pub fn path(&self) -> &Path {
        self.home.auth_json()
    }

    /// Where the document is, in words: the file's path, or the keyring item.
    pub fn location(&self) -> String {
        match &self.backend {
            Backend::File => self.path().display().to_string(),
            Backend::Keyring(item) => keyring::location(item),
        }
    }

    /// The stamp of the document as it is now (`None` when missing): one `stat` of
    /// `auth.json`, or of the keyring backend's marker.
    pub fn stamp(&self) -> Result<Option<FileStamp>, StoreError> {
        match self.backend {
            Backend::File => file::stamp(&self.home),
            Backend::Keyring(_) => marker::stamp(&self.home),
        }
    }

    /// Reads the document. The stamp is taken from the open file (or, with the keyring, the
    /// marker's before the item is read), so it matches the content read or is older.
    ///
    /// A file that is not a regular file or holds more than [`MAX_FILE_BYTES`] is
    /// `Unreadable` without a byte read: a symlink's target is checked before opening (a
    /// device is never opened), the open never waits (a FIFO swapped in meanwhile would hang
    /// the server), the open file is checked again, and one byte past the limit at most is read.
    pub fn load(&self) -> Result<Loaded, StoreError> {
        match &self.backend {
            Backend::File => file::load(&self.home),
            Backend::Keyring(item) => keyring::load(&self.home, item),
        }
    }

    /// Reads `auth.json` (whichever the backend: the migration reads it too).
    pub fn load_file(&self) -> Result<Loaded, StoreError> {
        file::load(&self.home)
    }

    /// Takes the exclusive cross-process lock, waiting for other holders as long as they hold
    /// it. Blocks the thread: for tests and tools; the server uses [`Self::lock_within`].
    pub fn lock(&self) -> Result<WriteLock, StoreError> {
        lock::lock(&self.home)
    }

    /// Takes the lock if nobody holds it: `Ok(None)` when another holder does.
    pub fn try_lock(&self) -> Result<Option<WriteLock>, StoreError> {
        lock::try_lock(&self.home)
    }

    /// Takes the lock, waiting at most `limit` for another holder (a process suspended while
    /// holding it must not hang this one). Polls without blocking a thread, so a wait that
    /// gives up leaves nothing behind. Past `limit`: an error of kind `TimedOut`.
    pub async fn lock_within(&self, limit: Duration) -> Result<WriteLock, StoreError> {
        lock::lock_within(&self.home, limit).await
    }

    /// Replaces the document atomically: `auth.json` through a 0600 temporary file in the
    /// same folder, written and fsynced, renamed over `auth.json`, then the folder fsynced so
    /// the rename is durable.
    ///
    /// With the keyring backend: the item is replaced and read back, and only then the marker
    /// is rewritten (its new stamp is returned). A failed keyring write leaves the previous
    /// item as it was.
    ///
    /// With the file backend, a marker that says the keyring holds the credentials is first
    /// superseded (see `marker::supersede`): nothing signed out comes back.
    pub fn write(&self, lock: &WriteLock, file: &AuthFile) -> Result<FileStamp, StoreError> {
        match &self.backend {
            Backend::File => {
                marker::supersede(&self.home, lock)?;
                file::write(&self.home, lock, file)
            }
            Backend::Keyring(item) => keyring::write(&self.home, item, lock, file),
        }
    }

    /// Replaces `auth.json` atomically (whichever the backend: the migration back writes it).
    pub fn write_file(&self, lock: &WriteLock, file: &AuthFile) -> Result<FileStamp, StoreError> {
        file::write(&self.home, lock, file)
    }

    /// Whether the marker says that the keyring held this home's credentials last (not
    /// superseded by a sign-in or sign-out with the file backend since).
    pub fn has_marker(&self) -> bool {
        marker::state(&self.home) == marker::Marker::Keyring
    }

    /// Deletes the document (logout), and any temporary file a killed writer left (it may
    /// hold the secrets being signed out). A missing file is not an error.
    ///
    /// With the keyring backend: the item is deleted, then the marker (and an `auth.json` that
    /// should not be there: no secret stays in the home after a logout).
    ///
    /// With the file backend, a marker that says the keyring holds the credentials is first
    /// superseded (see `marker::supersede`): nothing signed out comes back.
    ///
    /// A named credential's lock file goes too (contract version 3: nothing is left of it).
    pub fn remove(&self, lock: &WriteLock) -> Result<(), StoreError> {
        match &self.backend {
            Backend::File => {
                marker::supersede(&self.home, lock)?;
                file::remove(&self.home, lock)?;
            }
            Backend::Keyring(item) => keyring::remove(&self.home, item, lock)?,
        }
        if self.home.credential().is_some() {
            lock::remove_lock_file(&self.home, lock);
        }
        Ok(())
    }

    /// Deletes `auth.json` (whichever the backend: the migration removes it).
    pub fn remove_file(&self, lock: &WriteLock) -> Result<(), StoreError> {
        file::remove(&self.home, lock)
    }

    /// Moves an unreadable file aside to `auth.json.corrupt-<unix time>` so that it is never
    /// lost; returns where it went. With the keyring backend the item's content is kept in
    /// another item, tagged `moved_aside = <unix time>`, and the item is deleted.
    pub fn move_aside(&self, lock: &WriteLock) -> Result<String, StoreError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        match &self.backend {
            Backend::File => file::move_aside(&self.home, lock, now),
            Backend::Keyring(item) => keyring::move_aside(&self.home, item, lock, now),
        }
    }

    /// Moves the credentials to this store's backend, under the lock: with the keyring, an
    /// `auth.json` holding credentials goes into the keyring item and is deleted only once the
    /// item is written and read back; with the file, a keyring item that the marker says holds
    /// this home's credentials goes into `auth.json` and is deleted only once the file is
    /// written. A file backend with no marker never touches the keyring.
    ///
    /// A stale item (the marker superseded by the file backend, `marker::supersede`) is
    /// never moved anywhere: either backend deletes it, then the marker, when the keyring
    /// answers and the marker, read again under the lock, still says it is stale.
    pub async fn migrate(&self, lock_timeout: Duration) -> Result<Migration, StoreError> {
        if migrate::only_a_stale_item(&self.home)? {
            return migrate::delete_stale_item(&self.home, lock_timeout).await;
        }
        match &self.backend {
            Backend::File => migrate::into_file(&self.home, lock_timeout).await,
            Backend::Keyring(item) => migrate::into_keyring(&self.home, item, lock_timeout).await,
        }
    }

    /// A warning for the log when others can read or enter the home folder.
    pub fn permission_warning(&self) -> Option<String> {
        self.home.permission_warning()
    }
}

#[cfg(test)]
mod tests;
