//! Where the credential document lives (`auth.json`, or the OS keyring), atomic writes, the
//! cross-process lock, and cheap change detection.
//!
//! Both backends share the lock (`auth.json.lock`) and the document format. With the keyring
//! backend the document is one keyring item (see `keyring`) and no secret is in any file: the
//! home holds a non-secret marker, `auth.storage`, rewritten atomically after every confirmed
//! keyring write, whose stamp stands for the document's (one `stat` per request, a keyring
//! read only when another process changed something).
//!
//! Readers never lock: every write is a rename of a complete, fsynced temporary file, so a
//! reader sees either the old file or the new one. Writers hold an exclusive lock on the
//! separate `auth.json.lock` (the rename replaces `auth.json` itself, so a lock on it would
//! coordinate nothing) from their re-read until their write is done.
//!
//! Reads, writes, deletions and keyring calls block the calling thread (a write is two
//! `fsync`s, which take seconds on a slow disk): the server makes them through [`off_runtime`],
//! never on the runtime's thread that answers polls. Only [`AuthStore::stamp`] (one `stat`)
//! and the lock's non-blocking tries run there.
//!
//! What a file can make the server do is bounded (docs/storage.md, bounds): `auth.json` that is not
//! a regular file (a FIFO, a device, through a symlink or not) or holds more than
//! [`MAX_FILE_BYTES`] is unreadable, and is never opened for a blocking read; the lock file is
//! created 0600 and never followed through a symlink.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::auth_file::{AuthFile, FormatError};
use crate::keyring::{KeyringError, KeyringItem};

const FILE_NAME: &str = "auth.json";
const MARKER_NAME: &str = "auth.storage";
const MARKER_TEMP_PREFIX: &str = ".auth.storage.";
/// The marker's `backend` when the keyring item holds the credentials...
const KEYRING_BACKEND: &str = "keyring";
/// ...and when the file backend signed in or out since, so that the item is stale.
const FILE_BACKEND: &str = "file";

/// What `auth.storage` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    Absent,
    /// The keyring item holds this home's credentials.
    Keyring,
    /// The file backend signed in or out after the item was written: the item is stale.
    Superseded,
}
const LOCK_NAME: &str = "auth.json.lock";
const TEMP_PREFIX: &str = ".auth.json.";
const TEMP_SUFFIX: &str = ".tmp";
/// The most `auth.json` may hold; a credential set takes a few KiB.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Identifies one version of the file: a new inode (every atomic write makes one), size or
/// modification time means the content may have changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    modified_ns: i128,
    changed_ns: i128,
}

impl FileStamp {
    fn of(metadata: &fs::Metadata) -> Self {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Self {
                dev: metadata.dev(),
                ino: metadata.ino(),
                len: metadata.len(),
                modified_ns: i128::from(metadata.mtime()) * 1_000_000_000
                    + i128::from(metadata.mtime_nsec()),
                changed_ns: i128::from(metadata.ctime()) * 1_000_000_000
                    + i128::from(metadata.ctime_nsec()),
            }
        }
        #[cfg(not(unix))]
        {
            let nanos = |t: io::Result<SystemTime>| {
                t.ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos() as i128)
            };
            Self {
                dev: 0,
                ino: 0,
                len: metadata.len(),
                modified_ns: nanos(metadata.modified()),
                changed_ns: 0,
            }
        }
    }
}

/// What the file held when it was read.
#[derive(Debug, Clone)]
pub enum Stored {
    Missing,
    /// The file exists but cannot be used; the reason never quotes its content.
    Unreadable(String),
    Present(Box<AuthFile>),
}

/// One read of the file: its stamp (absent when missing) and what it held.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub stamp: Option<FileStamp>,
    pub stored: Stored,
}

impl Loaded {
    /// `Unreadable` when `metadata` (of `auth.json`, or of its target) shows that it cannot
    /// hold credentials: not a regular file, or too large.
    fn unusable(metadata: &fs::Metadata) -> Option<Self> {
        let reason = if !metadata.is_file() {
            let kind = kind_of(&metadata.file_type());
            format!("it is {kind}, not a regular file")
        } else if metadata.len() > MAX_FILE_BYTES {
            too_large(Some(metadata.len()))
        } else {
            return None;
        };
        Some(Self {
            stamp: Some(FileStamp::of(metadata)),
            stored: Stored::Unreadable(reason),
        })
    }
}

/// An I/O failure on the credentials folder, with the path it concerns, or a failure of the
/// OS keyring (then `path` is the home whose item it concerns).
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}: {source}", place(path, *keyring))]
pub struct StoreError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
    /// The OS keyring failed (its message says what to do), not the file system.
    pub keyring: bool,
}

fn place(path: &Path, keyring: bool) -> String {
    if keyring {
        format!("the OS keyring item of {}", path.display())
    } else {
        path.display().to_string()
    }
}

/// Held while the exclusive lock on `auth.json.lock` is held; dropping it (its last handle,
/// see [`WriteLock::share`]) releases the lock.
#[derive(Debug)]
pub struct WriteLock {
    _file: std::sync::Arc<File>,
}

impl WriteLock {
    fn new(file: File) -> Self {
        Self {
            _file: std::sync::Arc::new(file),
        }
    }

    /// Another handle on the same lock, for work moved to a blocking thread ([`off_runtime`]):
    /// the lock is released when the last handle is dropped, so it stays held until that work
    /// is done even if the task that started it has given up.
    pub(crate) fn share(&self) -> Self {
        Self {
            _file: self._file.clone(),
        }
    }
}

/// Environment knob, **for tests only**: every atomic write of this store sleeps this many
/// milliseconds between writing (and fsyncing) its temporary file and renaming it, as a slow
/// `fsync` would (a laptop's encrypted disk, a network home). Read once at start by the binary
/// ([`AuthStore::with_test_write_delay`]); never set it in production.
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

#[derive(Debug, Clone)]
pub struct AuthStore {
    home: PathBuf,
    path: PathBuf,
    lock_path: PathBuf,
    marker_path: PathBuf,
    /// `Some` for the keyring backend.
    keyring: Option<KeyringItem>,
    /// Test only ([`TEST_WRITE_DELAY_ENV`]): a pause inside every atomic write.
    test_write_delay: Option<Duration>,
}

impl AuthStore {
    /// The file backend: `<home>/auth.json`.
    pub fn new(home: impl Into<PathBuf>) -> Self {
        let home = home.into();
        Self {
            path: home.join(FILE_NAME),
            lock_path: home.join(LOCK_NAME),
            marker_path: home.join(MARKER_NAME),
            keyring: None,
            test_write_delay: None,
            home,
        }
    }

    /// This store with every atomic write pausing `delay` between its temporary file and the
    /// rename (tests only: see [`TEST_WRITE_DELAY_ENV`]).
    pub fn with_test_write_delay(mut self, delay: Option<Duration>) -> Self {
        if let Some(delay) = delay {
            tracing::warn!(
                delay_ms = delay.as_millis() as u64,
                "{TEST_WRITE_DELAY_ENV} is set: every write of the credentials is slowed down (for tests only)"
            );
        }
        self.test_write_delay = delay;
        self
    }

    /// The test-only write delay, for other files written like this store's
    /// (`registrations.json`).
    pub(crate) fn test_write_delay(&self) -> Option<Duration> {
        self.test_write_delay
    }

    /// The keyring backend: the document in the OS keyring item of `home`.
    pub fn keyring(home: impl Into<PathBuf>) -> Self {
        let mut store = Self::new(home);
        store.keyring = Some(KeyringItem::for_home(&store.home));
        store
    }

    pub fn kind(&self) -> StorageKind {
        match self.keyring {
            Some(_) => StorageKind::Keyring,
            None => StorageKind::File,
        }
    }

    /// The keyring item, for the keyring backend.
    pub fn keyring_item(&self) -> Option<&KeyringItem> {
        self.keyring.as_ref()
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    /// `<home>/auth.json` (whichever the backend: it names the file a migration reads).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the document is, in words: the file's path, or the keyring item.
    pub fn location(&self) -> String {
        match &self.keyring {
            None => self.path.display().to_string(),
            Some(item) => format!(
                "the OS keyring item (service \"{}\", home \"{}\")",
                crate::keyring::SERVICE,
                item.home_attribute()
            ),
        }
    }

    /// The stamp of the document as it is now (`None` when missing): one `stat` of
    /// `auth.json`, or of the keyring backend's marker.
    pub fn stamp(&self) -> Result<Option<FileStamp>, StoreError> {
        let path = self.stamped_path();
        match fs::metadata(path) {
            Ok(metadata) => Ok(Some(FileStamp::of(&metadata))),
            Err(e) if is_absent(&e) => Ok(None),
            Err(source) => Err(self.error("read", path, source)),
        }
    }

    fn stamped_path(&self) -> &Path {
        match self.keyring {
            Some(_) => &self.marker_path,
            None => &self.path,
        }
    }

    /// Reads the file. The stamp is taken from the open file, so it matches the content read.
    ///
    /// A file that is not a regular file or holds more than [`MAX_FILE_BYTES`] is
    /// `Unreadable` without a byte read: a symlink's target is checked before opening (a
    /// device is never opened), the open never waits (a FIFO swapped in meanwhile would hang
    /// the server), the open file is checked again, and one byte past the limit at most is read.
    pub fn load(&self) -> Result<Loaded, StoreError> {
        match &self.keyring {
            Some(item) => self.load_keyring(item),
            None => self.load_file(),
        }
    }

    /// Reads the keyring item. The marker's stamp is taken first: a write that lands between
    /// the two changes the marker again, so the next request reads once more.
    fn load_keyring(&self, item: &KeyringItem) -> Result<Loaded, StoreError> {
        let stamp = self.stamp()?;
        if self.marker() == Marker::Superseded {
            // The file backend signed in or out after the item was written: what the item
            // still holds is stale, signed out, and never comes back.
            return Ok(Loaded {
                stamp,
                stored: Stored::Missing,
            });
        }
        let bytes = item
            .read()
            .map_err(|e| self.keyring_error("read the credentials from", e))?;
        let stored = match bytes {
            None => Stored::Missing,
            Some(bytes) if bytes.len() as u64 > MAX_FILE_BYTES => {
                Stored::Unreadable(too_large(Some(bytes.len() as u64)))
            }
            Some(bytes) => parsed(&bytes),
        };
        Ok(Loaded { stamp, stored })
    }

    /// Reads `auth.json` (whichever the backend: the migration reads it too).
    pub fn load_file(&self) -> Result<Loaded, StoreError> {
        let failed = |source| self.error("read", &self.path, source);
        let missing = Loaded {
            stamp: None,
            stored: Stored::Missing,
        };
        match fs::metadata(&self.path) {
            Ok(metadata) => {
                if let Some(unreadable) = Loaded::unusable(&metadata) {
                    return Ok(unreadable);
                }
            }
            Err(e) if is_absent(&e) => return Ok(missing),
            Err(source) => return Err(failed(source)),
        }
        let file = match open_without_waiting(&self.path) {
            Ok(file) => file,
            Err(e) if is_absent(&e) => return Ok(missing),
            Err(source) => return Err(failed(source)),
        };
        let metadata = file.metadata().map_err(failed)?;
        if let Some(unreadable) = Loaded::unusable(&metadata) {
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

    /// Takes the exclusive cross-process lock, waiting for other holders as long as they hold
    /// it. Blocks the thread: for tests and tools; the server uses [`Self::lock_within`].
    pub fn lock(&self) -> Result<WriteLock, StoreError> {
        let file = self.open_lock_file()?;
        file.lock()
            .map_err(|source| self.error("lock", &self.lock_path, source))?;
        Ok(WriteLock::new(file))
    }

    /// Takes the lock if nobody holds it: `Ok(None)` when another holder does.
    pub fn try_lock(&self) -> Result<Option<WriteLock>, StoreError> {
        let file = self.open_lock_file()?;
        match file.try_lock() {
            Ok(()) => Ok(Some(WriteLock::new(file))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(source)) => {
                Err(self.error("lock", &self.lock_path, source))
            }
        }
    }

    /// Takes the lock, waiting at most `limit` for another holder (a process suspended while
    /// holding it must not hang this one). Polls without blocking a thread, so a wait that
    /// gives up leaves nothing behind. Past `limit`: an error of kind `TimedOut`.
    pub async fn lock_within(&self, limit: Duration) -> Result<WriteLock, StoreError> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(lock) = self.try_lock()? {
                return Ok(lock);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                let held = io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "another process has held it for over {} ms (a suspended or stuck auth-app-server, or another tool)",
                        limit.as_millis()
                    ),
                );
                return Err(self.error("lock", &self.lock_path, held));
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_millis(25));
        }
    }

    fn open_lock_file(&self) -> Result<File, StoreError> {
        self.ensure_home()?;
        let mut options = OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Created private; a symlink planted in its place is refused, not followed, and a
            // FIFO fails at once (no reader) instead of blocking the open.
            options
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
        }
        let file = options.open(&self.lock_path).and_then(|file| {
            if file.metadata()?.is_file() {
                Ok(file)
            } else {
                Err(io::Error::other("it is not a regular file"))
            }
        });
        file.map_err(|source| self.error("open the lock file", &self.lock_path, source))
    }

    /// Replaces the file atomically: a 0600 temporary file in the same folder, written and
    /// fsynced, renamed over `auth.json`, then the folder fsynced so the rename is durable.
    ///
    /// With the keyring backend: the item is replaced and read back, and only then the marker
    /// is rewritten (its new stamp is returned). A failed keyring write leaves the previous
    /// item as it was.
    pub fn write(&self, lock: &WriteLock, file: &AuthFile) -> Result<FileStamp, StoreError> {
        match &self.keyring {
            Some(item) => {
                self.remove_leftover_temp_files();
                let bytes = within_read_limit(file.to_bytes())
                    .map_err(|source| self.error("write", &self.path, source))?;
                item.write(&bytes)
                    .map_err(|e| self.keyring_error("store the credentials in", e))?;
                self.bump_marker(lock)
            }
            None => {
                self.supersede_marker(lock)?;
                self.write_file(lock, file)
            }
        }
    }

    /// Replaces `auth.json` atomically (whichever the backend: the migration back writes it).
    pub fn write_file(&self, _lock: &WriteLock, file: &AuthFile) -> Result<FileStamp, StoreError> {
        self.remove_leftover_temp_files();
        let bytes = within_read_limit(file.to_bytes())
            .map_err(|source| self.error("write", &self.path, source))?;
        self.replace_atomically(TEMP_PREFIX, &self.path, &bytes)
    }

    /// Writes `bytes` to `target` through a 0600 temporary file in the home, fsynced and
    /// renamed, then fsyncs the folder. Returns the new file's stamp.
    fn replace_atomically(
        &self,
        prefix: &str,
        target: &Path,
        bytes: &[u8],
    ) -> Result<FileStamp, StoreError> {
        let mut temp = tempfile::Builder::new()
            .prefix(prefix)
            .suffix(TEMP_SUFFIX)
            .permissions(private_file_permissions())
            .tempfile_in(&self.home)
            .map_err(|source| self.error("create a temporary file in", &self.home, source))?;
        temp.write_all(bytes)
            .and_then(|()| temp.as_file().sync_all())
            .map_err(|source| self.error("write", temp.path(), source))?;
        if let Some(delay) = self.test_write_delay {
            std::thread::sleep(delay);
        }
        let persisted = temp
            .persist(target)
            .map_err(|e| self.error("replace", target, e.error))?;
        let stamp = persisted
            .metadata()
            .map_err(|source| self.error("read", target, source))?;
        self.sync_home();
        Ok(FileStamp::of(&stamp))
    }

    /// Rewrites the keyring backend's marker with the next generation (a new file, so a new
    /// stamp every time). It holds no secret: it only tells other processes to read again.
    fn bump_marker(&self, _lock: &WriteLock) -> Result<FileStamp, StoreError> {
        self.write_marker(
            KEYRING_BACKEND,
            "the credentials of this folder are in the OS keyring (service auth-app-server); this file holds no secret and only tells other processes that they changed",
        )
    }

    /// Writes the marker with the next generation: a new file, so a new stamp every time.
    fn write_marker(&self, backend: &str, note: &str) -> Result<FileStamp, StoreError> {
        let generation = self
            .read_marker()
            .and_then(|marker| marker.get("generation")?.as_u64())
            .unwrap_or(0)
            .wrapping_add(1);
        let marker = serde_json::json!({
            "backend": backend,
            "generation": generation,
            "note": note,
        });
        self.replace_atomically(
            MARKER_TEMP_PREFIX,
            &self.marker_path,
            format!("{marker}\n").as_bytes(),
        )
    }

    /// The marker's content; `None` when missing or not JSON. Read like auth.json: never
    /// waiting in the open, a regular file only, bounded.
    fn read_marker(&self) -> Option<serde_json::Value> {
        let file = open_without_waiting(&self.marker_path).ok()?;
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            return None;
        }
        let mut text = String::new();
        file.take(4096).read_to_string(&mut text).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// What the marker says about the keyring item of this home.
    fn marker(&self) -> Marker {
        if !self.marker_path.exists() {
            return Marker::Absent;
        }
        // Anything but a marker the file backend wrote counts as the keyring's (as markers
        // of earlier versions do): the item is then never deleted on a guess.
        match self.read_marker() {
            Some(marker)
                if marker.get("backend").and_then(|b| b.as_str()) == Some(FILE_BACKEND) =>
            {
                Marker::Superseded
            }
            _ => Marker::Keyring,
        }
    }

    /// Whether the marker says that the keyring held this home's credentials last (not
    /// superseded by a sign-in or sign-out with the file backend since).
    pub fn has_marker(&self) -> bool {
        self.marker() == Marker::Keyring
    }

    /// With the file backend, before `auth.json` is written or deleted: a marker that says
    /// the keyring holds the credentials (its item could not be moved into the file, the
    /// keyring did not answer) is rewritten to say that the item is stale. Otherwise a logout
    /// would leave that item for the next start to move back: signed-out credentials
    /// resurrected. The item itself is not touched here (the keyring may not answer); it is
    /// never read again as credentials, and the next start that reaches the keyring deletes
    /// it ([`Self::migrate`]).
    fn supersede_marker(&self, _lock: &WriteLock) -> Result<(), StoreError> {
        if self.marker() != Marker::Keyring {
            return Ok(());
        }
        self.write_marker(
            FILE_BACKEND,
            "the file backend signed in or out after the OS keyring held the credentials of this folder: its item (service auth-app-server) is stale, is never used, and is deleted at the next start that reaches the keyring; this file holds no secret",
        )?;
        Ok(())
    }

    fn remove_marker(&self) -> Result<(), StoreError> {
        match fs::remove_file(&self.marker_path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(self.error("delete", &self.marker_path, source)),
        }
    }

    /// Temporary files exist only while a writer holds the lock; one found by the lock's
    /// holder was left by a writer that died mid-write (e.g. SIGKILL), and is removed.
    fn remove_leftover_temp_files(&self) {
        remove_temp_files(&self.home, &[TEMP_PREFIX, MARKER_TEMP_PREFIX], TEMP_SUFFIX);
    }

    /// Deletes the file (logout), and any temporary file a killed writer left (it may hold
    /// the secrets being signed out). A missing file is not an error.
    ///
    /// With the keyring backend: the item is deleted, then the marker (and an `auth.json` that
    /// should not be there: no secret stays in the home after a logout).
    ///
    /// With the file backend, a marker that says the keyring holds the credentials is first
    /// superseded (see [`Self::supersede_marker`]): nothing signed out comes back.
    pub fn remove(&self, lock: &WriteLock) -> Result<(), StoreError> {
        match &self.keyring {
            Some(item) => {
                item.delete()
                    .map_err(|e| self.keyring_error("delete the credentials from", e))?;
                self.remove_marker()?;
            }
            None => self.supersede_marker(lock)?,
        }
        self.remove_file(lock)
    }

    /// Deletes `auth.json` (whichever the backend: the migration removes it).
    pub fn remove_file(&self, _lock: &WriteLock) -> Result<(), StoreError> {
        self.remove_leftover_temp_files();
        match fs::remove_file(&self.path) {
            Ok(()) => {
                self.sync_home();
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(self.error("delete", &self.path, source)),
        }
    }

    /// Moves an unreadable file aside to `auth.json.corrupt-<unix time>` so that it is never
    /// lost; returns where it went. With the keyring backend the item's content is kept in
    /// another item, tagged `moved_aside = <unix time>`, and the item is deleted.
    pub fn move_aside(&self, lock: &WriteLock) -> Result<String, StoreError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        if let Some(item) = &self.keyring {
            let failed = |e| self.keyring_error("move aside the credentials in", e);
            if let Some(bytes) = item.read().map_err(failed)? {
                item.set_aside(&bytes, &now.to_string()).map_err(failed)?;
                item.delete().map_err(failed)?;
            }
            self.bump_marker(lock)?;
            return Ok(format!(
                "an OS keyring item (service \"{}\", home \"{}\", moved_aside \"{now}\")",
                crate::keyring::SERVICE,
                item.home_attribute()
            ));
        }
        let mut target = self.home.join(format!("{FILE_NAME}.corrupt-{now}"));
        let mut n = 1;
        while target.exists() {
            target = self.home.join(format!("{FILE_NAME}.corrupt-{now}-{n}"));
            n += 1;
        }
        self.remove_leftover_temp_files();
        fs::rename(&self.path, &target)
            .map_err(|source| self.error("move aside", &self.path, source))?;
        self.sync_home();
        Ok(target.display().to_string())
    }

    /// Creates the home folder (0700) when missing.
    fn ensure_home(&self) -> Result<(), StoreError> {
        if self.home.is_dir() {
            return Ok(());
        }
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(&self.home)
            .map_err(|source| self.error("create the folder", &self.home, source))
    }

    /// A warning for the log when others can read or enter the home folder.
    pub fn permission_warning(&self) -> Option<String> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&self.home).ok()?.permissions().mode();
            (mode & 0o077 != 0).then(|| {
                format!(
                    "the credentials folder {} is accessible to other users (mode {:o}); run `chmod 700 {}`",
                    self.home.display(),
                    mode & 0o777,
                    self.home.display()
                )
            })
        }
        #[cfg(not(unix))]
        None
    }

    fn sync_home(&self) {
        // Durability of the rename; a failure here leaves the file itself intact.
        if let Ok(dir) = File::open(&self.home) {
            let _ = dir.sync_all();
        }
    }

    /// A keyring failure as a store error about the home (`TimedOut` kind for a timeout).
    fn keyring_error(&self, action: &'static str, error: KeyringError) -> StoreError {
        let kind = if error.is_timeout() {
            io::ErrorKind::TimedOut
        } else {
            io::ErrorKind::Other
        };
        StoreError {
            action,
            path: self.home.clone(),
            source: io::Error::new(kind, error),
            keyring: true,
        }
    }

    fn error(&self, action: &'static str, path: &Path, source: io::Error) -> StoreError {
        StoreError {
            action,
            path: path.to_path_buf(),
            source,
            keyring: false,
        }
    }
}

/// Opens `path` for reading without ever waiting in the open: a FIFO swapped in after a
/// check would otherwise block the thread until a writer came. For a regular file the flag
/// changes nothing; callers check the opened file's metadata before reading.
/// `bytes` when a reader would accept them (at most [`MAX_FILE_BYTES`]): a document is never
/// written that every process would then refuse.
pub(crate) fn within_read_limit(bytes: Vec<u8>) -> io::Result<Vec<u8>> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(io::Error::other(format!(
            "the new document would hold {} bytes, more than the {MAX_FILE_BYTES} any process reads; nothing was written",
            bytes.len()
        )));
    }
    Ok(bytes)
}

pub(crate) fn open_without_waiting(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options.open(path)
}

/// Reads a file that a setting names (`config.toml`, a PEM bundle) as `auth.json` is read:
/// a path that is not a regular file (a FIFO, a device, a folder, through a symlink or not) is
/// refused without a byte read, the open never waits (a FIFO swapped in meanwhile), and at most
/// `max` bytes are read (one more tells that it is larger). The error's text says which of
/// these it is, never the content; a missing file keeps its `NotFound` kind.
pub(crate) fn read_bounded(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let refuse = |metadata: &fs::Metadata| -> io::Result<()> {
        if !metadata.is_file() {
            let kind = kind_of(&metadata.file_type());
            return Err(io::Error::other(format!(
                "it is {kind}, not a regular file"
            )));
        }
        if metadata.len() > max {
            return Err(io::Error::other(format!(
                "it holds {} bytes, more than the {max} this file may hold",
                metadata.len()
            )));
        }
        Ok(())
    };
    refuse(&fs::metadata(path)?)?;
    let file = open_without_waiting(path)?;
    let metadata = file.metadata()?;
    refuse(&metadata)?;
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::other(format!(
            "it holds more than the {max} bytes this file may hold"
        )));
    }
    Ok(bytes)
}

/// Removes the files in `home` named `<one of prefixes>…<suffix>`: temporary files of atomic
/// writes, which exist only while a writer holds the lock, so one found by the lock's holder
/// was left by a writer that was killed mid-write.
pub(crate) fn remove_temp_files(home: &Path, prefixes: &[&str], suffix: &str) {
    let Ok(entries) = fs::read_dir(home) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if prefixes.iter().any(|prefix| name.starts_with(prefix)) && name.ends_with(suffix) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// What a document's bytes hold. An ill-typed advisory member is logged, never fatal.
fn parsed(bytes: &[u8]) -> Stored {
    match AuthFile::parse(bytes) {
        Ok(file) => {
            if !file.ignored.is_empty() {
                tracing::warn!(
                    "the stored credentials have ill-typed advisory members ({}): ignored; the credentials are used, and the next write records them afresh",
                    file.ignored.join(", ")
                );
            }
            Stored::Present(Box::new(file))
        }
        Err(FormatError { .. }) if bytes.is_empty() => {
            Stored::Unreadable("the document is empty".into())
        }
        Err(error) => Stored::Unreadable(error.to_string()),
    }
}

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

impl AuthStore {
    /// Moves the credentials to this store's backend, under the lock: with the keyring, an
    /// `auth.json` holding credentials goes into the keyring item and is deleted only once the
    /// item is written and read back; with the file, a keyring item that the marker says holds
    /// this home's credentials goes into `auth.json` and is deleted only once the file is
    /// written. A file backend with no marker never touches the keyring.
    ///
    /// A stale item (the marker superseded by the file backend, [`Self::supersede_marker`]) is
    /// never moved anywhere: either backend deletes it, then the marker, when the keyring
    /// answers and the marker, read again under the lock, still says it is stale.
    pub async fn migrate(&self, lock_timeout: Duration) -> Result<Migration, StoreError> {
        if self.marker() == Marker::Superseded && self.stamp_of_file()?.is_none() {
            return self.delete_stale_item(lock_timeout).await;
        }
        match &self.keyring {
            Some(item) => {
                if self.stamp_of_file()?.is_none() {
                    return Ok(Migration::None);
                }
                let lock = self.lock_within(lock_timeout).await?;
                let file = match self.load_file()?.stored {
                    Stored::Present(file) => file,
                    Stored::Missing => return Ok(Migration::None),
                    Stored::Unreadable(reason) => {
                        return Ok(Migration::Left(format!(
                            "{} cannot be read ({reason}), so it was not moved into the OS keyring; fix or delete it",
                            self.path.display()
                        )));
                    }
                };
                item.write(&file.to_bytes())
                    .map_err(|e| self.keyring_error("move the credentials into", e))?;
                self.bump_marker(&lock)?;
                self.remove_file(&lock)?;
                Ok(Migration::IntoKeyring)
            }
            None => {
                if !self.has_marker() {
                    return Ok(Migration::None);
                }
                let lock = self.lock_within(lock_timeout).await?;
                if self.stamp_of_file()?.is_some() {
                    return Ok(Migration::Left(format!(
                        "{} exists, so the credentials in the OS keyring item of this folder were left there; `--storage keyring` would use the file's instead",
                        self.path.display()
                    )));
                }
                let item = KeyringItem::for_home(&self.home);
                let failed = |e| self.keyring_error("move the credentials out of", e);
                match item.read().map_err(failed)? {
                    Some(bytes) => {
                        let Stored::Present(file) = parsed(&bytes) else {
                            return Ok(Migration::Left(
                                "the OS keyring item of this folder cannot be read, so it was left there; sign in again".into(),
                            ));
                        };
                        self.write_file(&lock, &file)?;
                        item.delete().map_err(failed)?;
                        self.remove_marker()?;
                        Ok(Migration::IntoFile)
                    }
                    None => {
                        self.remove_marker()?;
                        Ok(Migration::None)
                    }
                }
            }
        }
    }

    async fn delete_stale_item(&self, lock_timeout: Duration) -> Result<Migration, StoreError> {
        let lock = self.lock_within(lock_timeout).await?;
        if self.marker() != Marker::Superseded {
            return Ok(Migration::None);
        }
        match KeyringItem::for_home(&self.home).delete() {
            Ok(()) => {
                self.remove_marker()?;
                drop(lock);
                Ok(Migration::StaleDeleted)
            }
            Err(error) => Ok(Migration::Left(format!(
                "the OS keyring item of this folder holds credentials that were signed out or replaced with the file backend; it is never used, but it could not be deleted now ({error}); deleting it is tried again at the next start"
            ))),
        }
    }

    fn stamp_of_file(&self) -> Result<Option<FileStamp>, StoreError> {
        match fs::metadata(&self.path) {
            Ok(metadata) => Ok(Some(FileStamp::of(&metadata))),
            Err(e) if is_absent(&e) => Ok(None),
            Err(source) => Err(self.error("read", &self.path, source)),
        }
    }
}

fn too_large(len: Option<u64>) -> String {
    let len = len.map(|len| format!(" ({len} bytes)")).unwrap_or_default();
    format!("it holds more than {MAX_FILE_BYTES} bytes{len}; credentials take a few KiB")
}

fn kind_of(file_type: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if file_type.is_char_device() || file_type.is_block_device() {
            return "a device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        "a folder"
    } else {
        "a special file"
    }
}

/// No file there: missing, or a path through something that is not a folder (a home that
/// does not exist yet cannot hold credentials either).
pub(crate) fn is_absent(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

fn private_file_permissions() -> fs::Permissions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::Permissions::from_mode(0o600)
    }
    #[cfg(not(unix))]
    {
        fs::metadata(".")
            .map(|m| m.permissions())
            .expect("current folder is readable")
    }
}

/// Test only: makes a FIFO at `path` (nobody writes to it, so a blocking open would hang).
#[cfg(all(test, unix))]
pub(crate) fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo {}", path.display());
}

#[cfg(test)]
mod tests {
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

    /// Runs `f` on another thread and fails the test if it has not returned in 30 s (a
    /// guard against a hang, not a timing assertion).
    fn without_hanging<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || done.send(f()));
        result
            .recv_timeout(Duration::from_secs(30))
            .expect("the call hung")
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
    fn a_setting_s_file_is_read_bounded_and_never_waited_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings");
        fs::write(&path, b"0123456789").unwrap();
        assert_eq!(read_bounded(&path, 10).unwrap(), b"0123456789");
        let error = read_bounded(&path, 9).unwrap_err().to_string();
        assert!(error.contains("more than the 9"), "{error}");
        let missing = read_bounded(&dir.path().join("none"), 9).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);

        fs::remove_file(&path).unwrap();
        mkfifo(&path);
        let fifo = path.clone();
        let error = without_hanging(move || read_bounded(&fifo, 9).unwrap_err().to_string());
        assert!(
            error.contains("FIFO (named pipe), not a regular file"),
            "{error}"
        );
        let error = without_hanging(|| {
            read_bounded(Path::new("/dev/zero"), 1 << 20)
                .unwrap_err()
                .to_string()
        });
        assert!(error.contains("a device, not a regular file"), "{error}");
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
}
