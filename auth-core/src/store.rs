//! `auth.json` on disk: atomic writes, the cross-process lock, and cheap change detection.
//!
//! Readers never lock: every write is a rename of a complete, fsynced temporary file, so a
//! reader sees either the old file or the new one. Writers hold an exclusive lock on the
//! separate `auth.json.lock` (the rename replaces `auth.json` itself, so a lock on it would
//! coordinate nothing) from their re-read until their write is done.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::auth_file::{AuthFile, FormatError};

const FILE_NAME: &str = "auth.json";
const LOCK_NAME: &str = "auth.json.lock";
const TEMP_PREFIX: &str = ".auth.json.";
const TEMP_SUFFIX: &str = ".tmp";

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

/// An I/O failure on the credentials folder, with the path it concerns.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {path}: {source}")]
pub struct StoreError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// Held while the exclusive lock on `auth.json.lock` is held; dropping it releases the lock.
#[derive(Debug)]
pub struct WriteLock {
    _file: File,
}

#[derive(Debug, Clone)]
pub struct AuthStore {
    home: PathBuf,
    path: PathBuf,
    lock_path: PathBuf,
}

impl AuthStore {
    pub fn new(home: impl Into<PathBuf>) -> Self {
        let home = home.into();
        Self {
            path: home.join(FILE_NAME),
            lock_path: home.join(LOCK_NAME),
            home,
        }
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stamp of the file as it is now (`None` when missing). One `stat`.
    pub fn stamp(&self) -> Result<Option<FileStamp>, StoreError> {
        match fs::metadata(&self.path) {
            Ok(metadata) => Ok(Some(FileStamp::of(&metadata))),
            Err(e) if is_absent(&e) => Ok(None),
            Err(source) => Err(self.error("read", &self.path, source)),
        }
    }

    /// Reads the file. The stamp is taken from the open file, so it matches the content read.
    pub fn load(&self) -> Result<Loaded, StoreError> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if is_absent(&e) => {
                return Ok(Loaded {
                    stamp: None,
                    stored: Stored::Missing,
                });
            }
            Err(source) => return Err(self.error("read", &self.path, source)),
        };
        let read = file.metadata().and_then(|metadata| {
            let mut bytes = Vec::with_capacity(metadata.len() as usize);
            file.read_to_end(&mut bytes)?;
            Ok((FileStamp::of(&metadata), bytes))
        });
        let (stamp, bytes) = read.map_err(|source| self.error("read", &self.path, source))?;
        let stored = match AuthFile::parse(&bytes) {
            Ok(file) => Stored::Present(Box::new(file)),
            Err(FormatError { .. }) if bytes.is_empty() => {
                Stored::Unreadable("the file is empty".into())
            }
            Err(error) => Stored::Unreadable(error.to_string()),
        };
        Ok(Loaded {
            stamp: Some(stamp),
            stored,
        })
    }

    /// Takes the exclusive cross-process lock, waiting for other holders as long as they hold
    /// it. Blocks the thread: for tests and tools; the server uses [`Self::lock_within`].
    pub fn lock(&self) -> Result<WriteLock, StoreError> {
        let file = self.open_lock_file()?;
        file.lock()
            .map_err(|source| self.error("lock", &self.lock_path, source))?;
        Ok(WriteLock { _file: file })
    }

    /// Takes the lock if nobody holds it: `Ok(None)` when another holder does.
    pub fn try_lock(&self) -> Result<Option<WriteLock>, StoreError> {
        let file = self.open_lock_file()?;
        match file.try_lock() {
            Ok(()) => Ok(Some(WriteLock { _file: file })),
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
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)
            .map_err(|source| self.error("open the lock file", &self.lock_path, source))
    }

    /// Replaces the file atomically: a 0600 temporary file in the same folder, written and
    /// fsynced, renamed over `auth.json`, then the folder fsynced so the rename is durable.
    pub fn write(&self, _lock: &WriteLock, file: &AuthFile) -> Result<FileStamp, StoreError> {
        self.remove_leftover_temp_files();
        let bytes = file.to_bytes();
        let mut temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(TEMP_SUFFIX)
            .permissions(private_file_permissions())
            .tempfile_in(&self.home)
            .map_err(|source| self.error("create a temporary file in", &self.home, source))?;
        temp.write_all(&bytes)
            .and_then(|()| temp.as_file().sync_all())
            .map_err(|source| self.error("write", temp.path(), source))?;
        let persisted = temp
            .persist(&self.path)
            .map_err(|e| self.error("replace", &self.path, e.error))?;
        let stamp = persisted
            .metadata()
            .map_err(|source| self.error("read", &self.path, source))?;
        self.sync_home();
        Ok(FileStamp::of(&stamp))
    }

    /// Temporary files exist only while a writer holds the lock; one found by the lock's
    /// holder was left by a writer that died mid-write (e.g. SIGKILL), and is removed.
    fn remove_leftover_temp_files(&self) {
        let Ok(entries) = fs::read_dir(&self.home) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// Deletes the file (logout), and any temporary file a killed writer left (it may hold
    /// the secrets being signed out). A missing file is not an error.
    pub fn remove(&self, _lock: &WriteLock) -> Result<(), StoreError> {
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
    /// lost; returns where it went.
    pub fn move_aside(&self, _lock: &WriteLock) -> Result<PathBuf, StoreError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
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
        Ok(target)
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

    fn error(&self, action: &'static str, path: &Path, source: io::Error) -> StoreError {
        StoreError {
            action,
            path: path.to_path_buf(),
            source,
        }
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
        let aside = store.move_aside(&lock).unwrap();
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
    fn remove_of_a_missing_file_succeeds() {
        let (_dir, store) = store();
        let lock = store.lock().unwrap();
        store.remove(&lock).unwrap();
        assert_eq!(store.stamp().unwrap(), None);
    }
}
