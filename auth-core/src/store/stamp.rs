//! [`FileStamp`]: one version of a file, told apart by one `stat` (cheap change detection:
//! every request compares it, and reads the store again only when it changed).

use std::fs;
#[cfg(not(unix))]
use std::io;
use std::path::Path;
#[cfg(not(unix))]
use std::time::{SystemTime, UNIX_EPOCH};

use super::error::StoreError;
use super::safe_file::is_absent;

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
    /// A stamp no file has, told apart by `n` (unit tests of the view).
    #[cfg(test)]
    pub(crate) fn for_tests(n: u64) -> Self {
        Self {
            dev: u64::MAX,
            ino: n,
            len: 0,
            modified_ns: 0,
            changed_ns: 0,
        }
    }

    pub(super) fn of(metadata: &fs::Metadata) -> Self {
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

    /// The stamp of the file at `path` as it is now (one `stat`), `None` when missing.
    pub(super) fn current(path: &Path) -> Result<Option<Self>, StoreError> {
        match fs::metadata(path) {
            Ok(metadata) => Ok(Some(Self::of(&metadata))),
            Err(e) if is_absent(&e) => Ok(None),
            Err(source) => Err(StoreError::io("read", path, source)),
        }
    }
}
