//! [`StoreError`]: what failed on the credentials folder or in the OS keyring, and where.

use std::io;
use std::path::{Path, PathBuf};

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

impl StoreError {
    /// A failure of the file system on `path`.
    pub(super) fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        Self {
            action,
            path: path.to_path_buf(),
            source,
            keyring: false,
        }
    }
}

fn place(path: &Path, keyring: bool) -> String {
    if keyring {
        format!("the OS keyring item of {}", path.display())
    } else {
        path.display().to_string()
    }
}
