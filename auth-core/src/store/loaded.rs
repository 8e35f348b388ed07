//! What one read of the credential document gives, whichever the backend ([`Loaded`],
//! [`Stored`]), and how its bytes become that.

use super::format::{AuthFile, FormatError};
use super::safe_file::MAX_FILE_BYTES;
use super::stamp::FileStamp;

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

/// What a document's bytes hold. An ill-typed advisory member is logged, never fatal.
pub(super) fn parsed(bytes: &[u8]) -> Stored {
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

/// Why a document over [`MAX_FILE_BYTES`] is unreadable (`len` when known).
pub(super) fn too_large(len: Option<u64>) -> String {
    let len = len.map(|len| format!(" ({len} bytes)")).unwrap_or_default();
    format!("it holds more than {MAX_FILE_BYTES} bytes{len}; credentials take a few KiB")
}
