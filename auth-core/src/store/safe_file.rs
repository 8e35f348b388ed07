//! Files in folders that others may reach, read and written so that they cannot make the server
//! hang or read without bound: the bounded read that never waits in the open, the atomic
//! replacement (a complete, fsynced 0600 temporary file renamed over the old one, then the
//! folder fsynced), the sweep of the temporary files a killed writer left, and the limit of a
//! document. Used by `auth.json` and its marker, by `registrations.json`, and for the files a
//! setting names (`config.toml`, a PEM bundle).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The most `auth.json` may hold; a credential set takes a few KiB.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// How every temporary file of an atomic replacement ends.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

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

/// Opens `path` for reading without ever waiting in the open: a FIFO swapped in after a
/// check would otherwise block the thread until a writer came. For a regular file the flag
/// changes nothing; callers check the opened file's metadata before reading.
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

/// Which step of [`replace_atomically`] failed, on which path.
#[derive(Debug)]
pub(crate) struct ReplaceError {
    pub action: &'static str,
    pub path: PathBuf,
    pub source: io::Error,
}

/// Writes `bytes` to `target` through a 0600 temporary file `<prefix>…`[`TEMP_SUFFIX`] in
/// `folder` (the target's), written and fsynced, renamed over `target`, then fsyncs the folder
/// so that the rename is durable. A reader sees the old file or the new one, never a part.
/// `pause` (tests only: a slow `fsync`) is slept between the temporary file and the rename.
/// Returns the new file.
pub(crate) fn replace_atomically(
    folder: &Path,
    prefix: &str,
    target: &Path,
    bytes: &[u8],
    pause: Option<Duration>,
) -> Result<File, ReplaceError> {
    let failed = |action, path: &Path, source| ReplaceError {
        action,
        path: path.to_path_buf(),
        source,
    };
    let mut temp = tempfile::Builder::new()
        .prefix(prefix)
        .suffix(TEMP_SUFFIX)
        .permissions(private_file_permissions())
        .tempfile_in(folder)
        .map_err(|source| failed("create a temporary file in", folder, source))?;
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|source| failed("write", temp.path(), source))?;
    if let Some(pause) = pause {
        std::thread::sleep(pause);
    }
    let persisted = temp
        .persist(target)
        .map_err(|e| failed("replace", target, e.error))?;
    sync_folder(folder);
    Ok(persisted)
}

/// Makes a rename or a deletion in `folder` durable. A failure here leaves the files
/// themselves intact, so it is not reported.
pub(crate) fn sync_folder(folder: &Path) {
    if let Ok(dir) = File::open(folder) {
        let _ = dir.sync_all();
    }
}

/// Removes the files in `home` named `<one of prefixes>…<suffix>`, where `…` (random letters
/// and digits) holds no dot, so that the prefix `.a.json.` never matches the temporary files
/// of `a.json.json`: temporary files of atomic writes, which exist only while a writer holds the lock, so one found by the lock's holder
/// was left by a writer that was killed mid-write.
pub(crate) fn remove_temp_files(home: &Path, prefixes: &[&str], suffix: &str) {
    let Ok(entries) = fs::read_dir(home) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ours = prefixes.iter().any(|prefix| {
            name.strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(suffix))
                .is_some_and(|random| !random.contains('.'))
        });
        if ours {
            let _ = fs::remove_file(entry.path());
        }
    }
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

/// What a file that is not a regular file is, in words.
pub(crate) fn kind_of(file_type: &fs::FileType) -> &'static str {
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

/// Test only: makes a FIFO at `path` (nobody writes to it, so a blocking open would hang).
#[cfg(all(test, unix))]
pub(crate) fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo {}", path.display());
}

/// Test only: runs `f` on another thread and fails the test if it has not returned in 30 s
/// (a guard against a hang, not a timing assertion).
#[cfg(test)]
pub(crate) fn without_hanging<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(f()));
    result
        .recv_timeout(Duration::from_secs(30))
        .expect("the call hung")
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

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
}
