//! [`Home`]: the credentials folder and the files this store keeps in it (`auth.json`, its
//! lock `auth.json.lock`, the keyring backend's marker `auth.storage`); created private
//! (0700) and warned about when it is not; files in it replaced atomically (with the test-only
//! pause, [`crate::limits::TEST_WRITE_DELAY_ENV`]) and the temporary files a killed writer left swept.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::error::StoreError;
use super::safe_file::{TEMP_SUFFIX, remove_temp_files, replace_atomically, sync_folder};
use super::stamp::FileStamp;

#[cfg(test)]
pub(super) const LOCK_NAME: &str = "auth.json.lock";
/// The folder of the named credentials (contract version 3) in the home.
pub const CREDENTIALS_FOLDER: &str = "credentials";

/// The files of one credential: `auth.json` and its neighbours in the home for the default
/// one, `credentials/NAME.json` and its neighbours for a named one.
#[derive(Debug, Clone)]
pub(super) struct Home {
    /// The home folder (where `config.toml` and `registrations.json` are).
    root: PathBuf,
    /// The folder of the files below: the home, or `<home>/credentials`.
    dir: PathBuf,
    /// `None` for the default credential.
    credential: Option<Arc<str>>,
    /// `auth.json` or `NAME.json`.
    file_name: String,
    auth_json: PathBuf,
    lock: PathBuf,
    marker: PathBuf,
    /// The temporary files of the document's atomic writes, and of the marker's.
    file_temp_prefix: String,
    marker_temp_prefix: String,
    /// Test only ([`crate::limits::TEST_WRITE_DELAY_ENV`]): a pause inside every atomic write.
    test_write_delay: Option<Duration>,
}

impl Home {
    /// The default credential's files: `<home>/auth.json`, `auth.json.lock`, `auth.storage`.
    pub(super) fn new(dir: PathBuf) -> Self {
        Self::with_names(dir.clone(), dir, None, "auth.json", "auth.storage")
    }

    /// A named credential's files: `<home>/credentials/NAME.json`, `NAME.json.lock`,
    /// `NAME.storage`.
    pub(super) fn named(root: PathBuf, name: &str) -> Self {
        let dir = root.join(CREDENTIALS_FOLDER);
        Self::with_names(
            root,
            dir,
            Some(name.into()),
            &format!("{name}.json"),
            &format!("{name}.storage"),
        )
    }

    fn with_names(
        root: PathBuf,
        dir: PathBuf,
        credential: Option<Arc<str>>,
        file_name: &str,
        marker_name: &str,
    ) -> Self {
        Self {
            auth_json: dir.join(file_name),
            lock: dir.join(format!("{file_name}.lock")),
            marker: dir.join(marker_name),
            file_temp_prefix: format!(".{file_name}."),
            marker_temp_prefix: format!(".{marker_name}."),
            file_name: file_name.to_owned(),
            credential,
            test_write_delay: None,
            root,
            dir,
        }
    }

    /// The home folder.
    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of this credential's files.
    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The credential's name; `None` for the default one.
    pub(super) fn credential(&self) -> Option<&Arc<str>> {
        self.credential.as_ref()
    }

    /// `auth.json` or `NAME.json`.
    pub(super) fn file_name(&self) -> &str {
        &self.file_name
    }

    /// The prefix of the document's temporary files.
    pub(super) fn file_temp_prefix(&self) -> &str {
        &self.file_temp_prefix
    }

    /// The prefix of the marker's temporary files.
    pub(super) fn marker_temp_prefix(&self) -> &str {
        &self.marker_temp_prefix
    }

    /// This credential's keyring item.
    pub(super) fn keyring_item(&self) -> super::keyring::KeyringItem {
        super::keyring::KeyringItem::for_credential(&self.root, self.credential.clone())
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

    /// Creates the folder (0700) when missing. The `credentials` folder of the named ones is
    /// refused when it is a symlink, and made private (0700) when others could enter it.
    pub(super) fn ensure(&self) -> Result<(), StoreError> {
        if self.credential.is_some() {
            self.check_credentials_folder()?;
        }
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

    /// The `credentials` folder, when it exists, must be a real folder (not a symlink, which
    /// could send the secrets elsewhere) that only its owner can enter: a folder others can
    /// read is made private (0700), a symlink is refused with what to do.
    pub(super) fn check_credentials_folder(&self) -> Result<(), StoreError> {
        let Ok(meta) = fs::symlink_metadata(&self.dir) else {
            return Ok(());
        };
        if meta.file_type().is_symlink() || !meta.is_dir() {
            return Err(StoreError::io(
                "use the credentials folder",
                &self.dir,
                std::io::Error::other(
                    "it is a symlink or not a folder; remove it (the named credentials are kept in a real folder inside the home)",
                ),
            ));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700)).map_err(
                    |source| StoreError::io("make private (chmod 700)", &self.dir, source),
                )?;
                tracing::warn!(folder = %self.dir.display(), mode = format!("{:o}", mode & 0o777), "the credentials folder was accessible to other users; made private (0700)");
            }
        }
        Ok(())
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
            &[&self.file_temp_prefix, &self.marker_temp_prefix],
            TEMP_SUFFIX,
        );
    }
}
