//! [`Home`]: the credentials folder and the files this store keeps in it (`auth.json`, its
//! lock `auth.json.lock`, the keyring backend's marker `auth.storage`); created private
//! (0700) and warned about when it is not; files in it replaced atomically (with the test-only
//! pause, [`crate::limits::TEST_WRITE_DELAY_ENV`]) and the temporary files a killed writer left swept.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::StoreError;
use super::safe_file::{TEMP_SUFFIX, remove_temp_files, replace_atomically, sync_folder};
use super::stamp::FileStamp;

pub(super) const FILE_NAME: &str = "auth.json";
pub(super) const LOCK_NAME: &str = "auth.json.lock";
const MARKER_NAME: &str = "auth.storage";
/// The temporary files of `auth.json`'s atomic writes...
pub(super) const FILE_TEMP_PREFIX: &str = ".auth.json.";
/// ...and of the marker's.
pub(super) const MARKER_TEMP_PREFIX: &str = ".auth.storage.";

#[derive(Debug, Clone)]
pub(super) struct Home {
    dir: PathBuf,
    auth_json: PathBuf,
    lock: PathBuf,
    marker: PathBuf,
    /// Test only ([`crate::limits::TEST_WRITE_DELAY_ENV`]): a pause inside every atomic write.
    test_write_delay: Option<Duration>,
}

impl Home {
    pub(super) fn new(dir: PathBuf) -> Self {
        Self {
            auth_json: dir.join(FILE_NAME),
            lock: dir.join(LOCK_NAME),
            marker: dir.join(MARKER_NAME),
            test_write_delay: None,
            dir,
        }
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// `<home>/auth.json`.
    pub(super) fn auth_json(&self) -> &Path {
        &self.auth_json
    }

    /// `<home>/auth.json.lock`.
    pub(super) fn lock_path(&self) -> &Path {
        &self.lock
    }

    /// `<home>/auth.storage`.
    pub(super) fn marker_path(&self) -> &Path {
        &self.marker
    }

    pub(super) fn test_write_delay(&self) -> Option<Duration> {
        self.test_write_delay
    }

    pub(super) fn set_test_write_delay(&mut self, delay: Option<Duration>) {
        self.test_write_delay = delay;
    }

    /// Creates the folder (0700) when missing.
    pub(super) fn ensure(&self) -> Result<(), StoreError> {
        if self.dir.is_dir() {
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
            .create(&self.dir)
            .map_err(|source| StoreError::io("create the folder", &self.dir, source))
    }

    /// A warning for the log when others can read or enter the folder.
    pub(super) fn permission_warning(&self) -> Option<String> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&self.dir).ok()?.permissions().mode();
            (mode & 0o077 != 0).then(|| {
                format!(
                    "the credentials folder {} is accessible to other users (mode {:o}); run `chmod 700 {}`",
                    self.dir.display(),
                    mode & 0o777,
                    self.dir.display()
                )
            })
        }
        #[cfg(not(unix))]
        None
    }

    /// Writes `bytes` to `target` (a file of this folder) through a 0600 temporary file named
    /// `<prefix>…` in it, fsynced and renamed, then fsyncs the folder. Returns the new file's
    /// stamp.
    pub(super) fn replace(
        &self,
        prefix: &str,
        target: &Path,
        bytes: &[u8],
    ) -> Result<FileStamp, StoreError> {
        let persisted = replace_atomically(&self.dir, prefix, target, bytes, self.test_write_delay)
            .map_err(|e| StoreError::io(e.action, &e.path, e.source))?;
        let stamp = persisted
            .metadata()
            .map_err(|source| StoreError::io("read", target, source))?;
        Ok(FileStamp::of(&stamp))
    }

    /// Makes a rename or a deletion in the folder durable.
    pub(super) fn sync(&self) {
        sync_folder(&self.dir);
    }

    /// Temporary files exist only while a writer holds the lock; one found by the lock's
    /// holder was left by a writer that died mid-write (e.g. SIGKILL), and is removed.
    pub(super) fn remove_leftover_temp_files(&self) {
        remove_temp_files(
            &self.dir,
            &[FILE_TEMP_PREFIX, MARKER_TEMP_PREFIX],
            TEMP_SUFFIX,
        );
    }
}
