//! `<home>/registrations.json`: the clients this app registered (RFC 7591), keyed by the
//! issuer identifier exactly as the authorization server's metadata states it, so that every
//! process and every restart signs in with the same registration.
//!
//! It holds no secret (a public client has none; anything secret in an answer is dropped
//! before it gets here). Written like `auth.json`: a complete 0600 temporary file in the home,
//! fsynced and renamed over the old one, by a writer holding `auth.json.lock`. A file that
//! cannot be read is moved aside to `registrations.json.corrupt-<unix time>`, never lost.
//!
//! Its calls block on the disk (a write is two fsyncs): the sign-in makes them on a blocking
//! thread, never on the runtime's thread that answers polls.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::safe_file::{
    TEMP_SUFFIX, is_absent, open_without_waiting, remove_temp_files, replace_atomically,
    within_read_limit,
};
use crate::store::{AuthStore, MAX_FILE_BYTES, WriteLock};

const FILE_NAME: &str = "registrations.json";
const TEMP_PREFIX: &str = ".registrations.json.";

/// One client registered at one authorization server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub client_id: String,
    /// RFC 3339, when this app registered it.
    pub registered_at: String,
    pub registration_endpoint: String,
    pub redirect_uris: Vec<String>,
    pub client_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id_issued_at: Option<i64>,
    /// Unix seconds; 0 or absent: it does not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id_expires_at: Option<i64>,
}

impl Registration {
    /// Usable at `now` (unix seconds) for a sign-in whose redirect is `redirect_uris`: the
    /// first URI registered is that redirect (a port-less loopback one may be followed by the
    /// same with the port of the registering sign-in, see [`Registration::redirect_port`]).
    pub fn fits(&self, redirect_uris: &[String], now: i64) -> bool {
        let expired = self
            .client_id_expires_at
            .is_some_and(|at| at != 0 && at <= now);
        self.redirect_uris.first() == redirect_uris.first() && !expired
    }

    /// The port of the loopback redirect registered with a port, if any. A sign-in with this
    /// client listens there when it is free: authorization servers that match redirect URIs
    /// exactly, port included (against RFC 8252 §7.3), then accept it too.
    pub fn redirect_port(&self) -> Option<u16> {
        self.redirect_uris.iter().find_map(|uri| {
            let url = reqwest::Url::parse(uri).ok()?;
            (url.host_str() == Some("127.0.0.1") && url.path() == "/callback")
                .then(|| url.port())
                .flatten()
        })
    }
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registrations {
    #[serde(default = "version")]
    pub version: u32,
    /// Issuer identifier → its registration.
    #[serde(default)]
    pub registrations: BTreeMap<String, Registration>,
}

impl Default for Registrations {
    fn default() -> Self {
        Self {
            version: version(),
            registrations: BTreeMap::new(),
        }
    }
}

fn version() -> u32 {
    1
}

#[derive(Debug, Clone)]
pub struct RegistrationFile {
    home: PathBuf,
    path: PathBuf,
    /// Test only: the store's pause inside every atomic write (`TEST_WRITE_DELAY_ENV`).
    test_write_delay: Option<std::time::Duration>,
}

impl RegistrationFile {
    pub fn new(home: &Path) -> Self {
        Self {
            home: home.to_path_buf(),
            path: home.join(FILE_NAME),
            test_write_delay: None,
        }
    }

    /// The registrations file of `store`'s home, written as slowly as `store` in tests.
    pub fn of(store: &AuthStore) -> Self {
        Self {
            test_write_delay: store.test_write_delay(),
            ..Self::new(store.home())
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The registrations on disk; a missing file holds none. `Err` says why the file cannot
    /// be used (never quoting it).
    pub fn load(&self) -> Result<Registrations, String> {
        let metadata = match fs::symlink_metadata(&self.path) {
            Ok(metadata) => metadata,
            Err(e) if is_absent(&e) => return Ok(Registrations::default()),
            Err(e) => return Err(e.to_string()),
        };
        let unusable = |metadata: &fs::Metadata| {
            (!metadata.is_file() || metadata.len() > MAX_FILE_BYTES)
                .then(|| format!("it is not a regular file of at most {MAX_FILE_BYTES} bytes"))
        };
        if let Some(why) = unusable(&metadata) {
            return Err(why);
        }
        // Checked again on the opened file: it may have been swapped meanwhile.
        let file = open_without_waiting(&self.path).map_err(|e| e.to_string())?;
        if let Some(why) = file
            .metadata()
            .map_err(|e| e.to_string())
            .map(|m| unusable(&m))?
        {
            return Err(why);
        }
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| e.to_string())?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(format!("it grew past {MAX_FILE_BYTES} bytes while read"));
        }
        serde_json::from_slice(&bytes).map_err(|e| format!("not a registrations file ({e})"))
    }

    /// The registrations on disk, for a writer: an unreadable file is moved aside (and
    /// reported) and counts as holding none.
    pub fn load_for_update(&self, _lock: &WriteLock) -> Registrations {
        match self.load() {
            Ok(registrations) => registrations,
            Err(why) => {
                let aside = self
                    .home
                    .join(format!("{FILE_NAME}.corrupt-{}", crate::time::now_unix()));
                match fs::rename(&self.path, &aside) {
                    Ok(()) => {
                        tracing::warn!(%why, path = %aside.display(), "unreadable registrations file moved aside")
                    }
                    Err(error) => {
                        tracing::warn!(%why, %error, "unreadable registrations file not moved aside")
                    }
                }
                Registrations::default()
            }
        }
    }

    /// Replaces the file atomically (the lock is held).
    pub fn write(&self, _lock: &WriteLock, registrations: &Registrations) -> io::Result<()> {
        self.remove_leftover_temp_files();
        let mut bytes = serde_json::to_vec_pretty(registrations).map_err(io::Error::other)?;
        bytes.push(b'\n');
        let bytes = within_read_limit(bytes)?;
        replace_atomically(
            &self.home,
            TEMP_PREFIX,
            &self.path,
            &bytes,
            self.test_write_delay,
        )
        .map_err(|e| e.source)?;
        Ok(())
    }

    /// A temporary file found by the lock's holder was left by a writer that was killed.
    fn remove_leftover_temp_files(&self) {
        remove_temp_files(&self.home, &[TEMP_PREFIX], TEMP_SUFFIX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(client_id: &str) -> Registration {
        Registration {
            client_id: client_id.into(),
            registered_at: "2026-01-01T00:00:00Z".into(),
            registration_endpoint: "https://as.example/register".into(),
            redirect_uris: vec!["http://127.0.0.1/callback".into()],
            client_name: "Editor".into(),
            client_id_issued_at: None,
            client_id_expires_at: None,
        }
    }

    #[test]
    fn written_privately_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = AuthStore::new(dir.path());
        let file = RegistrationFile::new(dir.path());
        assert_eq!(file.load().unwrap(), Registrations::default());
        let lock = store.lock().unwrap();
        let mut all = file.load_for_update(&lock);
        all.registrations
            .insert("https://as.example".into(), registration("c-1"));
        file.write(&lock, &all).unwrap();
        assert_eq!(file.load().unwrap(), all);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(file.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let text = fs::read_to_string(file.path()).unwrap();
        assert!(text.contains("\"version\": 1"), "{text}");
    }

    #[test]
    fn a_document_the_reader_would_refuse_is_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = AuthStore::new(dir.path());
        let file = RegistrationFile::new(dir.path());
        let lock = store.lock().unwrap();
        let mut all = Registrations::default();
        all.registrations
            .insert("https://as.example".into(), registration("c-1"));
        file.write(&lock, &all).unwrap();
        let before = fs::read(file.path()).unwrap();
        let mut huge = registration("c-2");
        huge.client_name = "n".repeat(MAX_FILE_BYTES as usize);
        all.registrations
            .insert("https://other.example".into(), huge);
        let error = file.write(&lock, &all).unwrap_err().to_string();
        assert!(error.contains("nothing was written"), "{error}");
        assert_eq!(fs::read(file.path()).unwrap(), before);
        assert!(file.load().is_ok());
    }

    #[test]
    fn an_unreadable_file_is_moved_aside_by_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = AuthStore::new(dir.path());
        let file = RegistrationFile::new(dir.path());
        fs::write(file.path(), "{not json").unwrap();
        assert!(file.load().is_err());
        let lock = store.lock().unwrap();
        assert_eq!(file.load_for_update(&lock), Registrations::default());
        assert!(!file.path().exists());
        let aside = fs::read_dir(dir.path()).unwrap().flatten().any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("registrations.json.corrupt-")
        });
        assert!(aside);
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_or_an_oversized_file_is_unreadable_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let file = RegistrationFile::new(dir.path());
        crate::store::safe_file::mkfifo(file.path());
        // A blocking open of a FIFO with no writer would never return.
        let why = file.load().unwrap_err();
        assert!(why.contains("not a regular file"), "{why}");
        fs::remove_file(file.path()).unwrap();

        let big = fs::File::create(file.path()).unwrap();
        big.set_len(MAX_FILE_BYTES + 1).unwrap();
        let why = file.load().unwrap_err();
        assert!(why.contains("not a regular file of at most"), "{why}");
    }

    #[test]
    fn a_registration_fits_its_redirect_until_it_expires() {
        let wanted = ["http://127.0.0.1/callback".to_owned()];
        let mut r = registration("c");
        assert!(r.fits(&wanted, 100));
        assert!(!r.fits(&["http://127.0.0.1:8976/callback".to_owned()], 100));
        r.client_id_expires_at = Some(0);
        assert!(r.fits(&wanted, 100));
        r.client_id_expires_at = Some(100);
        assert!(!r.fits(&wanted, 100));
        assert!(r.fits(&wanted, 99));
    }
}
