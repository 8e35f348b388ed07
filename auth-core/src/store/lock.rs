//! The cross-process write lock: an exclusive lock on `auth.json.lock`, held by a writer from
//! its re-read until its write is done ([`WriteLock`]). It is a separate file because every
//! write renames a new `auth.json` into place, so a lock on `auth.json` itself would coordinate
//! nothing. The file is created 0600 and never followed through a symlink; only the
//! non-blocking tries of [`lock_within`] run on the runtime's thread.

use std::fs::{File, OpenOptions};
use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::error::StoreError;
use super::home::Home;

/// Held while the exclusive lock on `auth.json.lock` is held; dropping it (its last handle,
/// see [`WriteLock::share`]) releases the lock.
#[derive(Debug)]
pub struct WriteLock {
    _file: Arc<File>,
}

impl WriteLock {
    fn new(file: File) -> Self {
        Self {
            _file: Arc::new(file),
        }
    }

    /// Another handle on the same lock, for work moved to a blocking thread
    /// ([`super::off_runtime`]): the lock is released when the last handle is dropped, so it
    /// stays held until that work is done even if the task that started it has given up.
    pub(crate) fn share(&self) -> Self {
        Self {
            _file: self._file.clone(),
        }
    }
}

/// Takes the lock of `home`, waiting for other holders as long as they hold it.
pub(super) fn lock(home: &Home) -> Result<WriteLock, StoreError> {
    loop {
        let file = open_lock_file(home)?;
        file.lock()
            .map_err(|source| StoreError::io("lock", home.lock_path(), source))?;
        if still_in_place(home, &file) {
            return Ok(WriteLock::new(file));
        }
    }
}

/// Takes the lock if nobody holds it: `Ok(None)` when another holder does.
pub(super) fn try_lock(home: &Home) -> Result<Option<WriteLock>, StoreError> {
    loop {
        let file = open_lock_file(home)?;
        match file.try_lock() {
            Ok(()) if still_in_place(home, &file) => return Ok(Some(WriteLock::new(file))),
            // Its holder deleted it (a named credential's logout): the lock is the new file's.
            Ok(()) => continue,
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(StoreError::io("lock", home.lock_path(), source));
            }
        }
    }
}

/// Whether the lock file `file` locks is still the one at its path: a named credential's
/// logout deletes its lock file while holding it, and a process that opened it before then
/// holds a lock on a file nobody else will open (it must take the new file's).
fn still_in_place(home: &Home, file: &File) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let (Ok(held), Ok(at_path)) =
            (file.metadata(), std::fs::symlink_metadata(home.lock_path()))
        else {
            return false;
        };
        held.dev() == at_path.dev() && held.ino() == at_path.ino()
    }
    #[cfg(not(unix))]
    {
        let _ = (home, file);
        true
    }
}

/// Deletes the lock file of a named credential whose document is gone (its logout), while
/// `_lock` holds it: see [`still_in_place`]. A missing file is not an error.
pub(super) fn remove_lock_file(home: &Home, _lock: &WriteLock) {
    match std::fs::remove_file(home.lock_path()) {
        Ok(()) => home.sync(),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => {
            tracing::warn!(path = %home.lock_path().display(), %error, "cannot delete the lock file of a signed-out credential")
        }
    }
}

/// Takes the lock, waiting at most `limit` for another holder (a process suspended while
/// holding it must not hang this one). Polls without blocking a thread, so a wait that gives
/// up leaves nothing behind. Past `limit`: an error of kind `TimedOut`.
pub(super) async fn lock_within(home: &Home, limit: Duration) -> Result<WriteLock, StoreError> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(lock) = try_lock(home)? {
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
            return Err(StoreError::io("lock", home.lock_path(), held));
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_millis(25));
    }
}

fn open_lock_file(home: &Home) -> Result<File, StoreError> {
    home.ensure()?;
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
    let file = options.open(home.lock_path()).and_then(|file| {
        if file.metadata()?.is_file() {
            Ok(file)
        } else {
            Err(io::Error::other("it is not a regular file"))
        }
    });
    file.map_err(|source| StoreError::io("open the lock file", home.lock_path(), source))
}
