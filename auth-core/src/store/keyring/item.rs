//! [`KeyringItem`]: one home's item in the OS keyring (a Secret Service item, found by its
//! attributes), read, replaced, deleted or set aside as whole bytes, through a worker thread.
//!
//! Every call is bounded by [`KEYRING_TIMEOUT`]: a keyring that is locked behind a prompt
//! nobody sees, or a session bus that accepts a connection and never answers, becomes an error
//! that says what to do, never a hang. The calls run on one worker thread of their own (with
//! its own small async runtime and a cached connection), so that the store's API stays
//! synchronous like the file's; the caller waits for the answer at most the limit, and the
//! worker drops a call that overruns it. Each call carries the caller's deadline: a call
//! queued behind a slow one only gets what is left of its caller's time, and one whose caller
//! has given up is never performed (a write must not land after its caller reported failure
//! and released the lock).
//!
//! Items are keyed by `service = auth-app-server` and `home = <canonical home path>`, so two
//! homes never share one. Nothing here logs or formats a secret: errors carry the keyring's
//! own messages, which never quote an item's content.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// How long one keyring call (connecting included) may take.
pub const KEYRING_TIMEOUT: Duration = Duration::from_secs(2);
/// The `service` attribute of every item this program stores.
pub const SERVICE: &str = "auth-app-server";
/// What to do when the keyring cannot be used, appended to every error.
const WHAT_TO_DO: &str = "unlock the keyring (or start its daemon, e.g. gnome-keyring-daemon, in this session), or keep the credentials in a file with `--storage file` ([storage] backend = \"file\")";

/// Why the keyring could not be used. The messages never quote an item's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    #[error(
        "the OS keyring did not answer within {} s: {WHAT_TO_DO}",
        KEYRING_TIMEOUT.as_secs()
    )]
    TimedOut,
    #[error("no OS keyring answers here ({0}): {WHAT_TO_DO}")]
    Unavailable(String),
    #[error("the OS keyring is locked: {WHAT_TO_DO}")]
    Locked,
    #[error("the OS keyring refused the request ({0}): {WHAT_TO_DO}")]
    Failed(String),
    #[error(
        "the OS keyring did not keep what was written (reading the item back gave other content); the previous credentials are unchanged: {WHAT_TO_DO}"
    )]
    NotConfirmed,
    #[error(
        "the OS keyring is not supported on this platform in this version: use `--storage file`"
    )]
    Unsupported,
}

impl KeyringError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::TimedOut)
    }
}

/// What the worker is asked to do with the home's item. No `Debug`: the bytes are the
/// credential document.
enum Request {
    /// Connect and find a usable collection (for `auto`).
    Probe,
    Read,
    /// Replace the item, then read it back to confirm.
    Write(Vec<u8>),
    Delete,
    /// Keep `bytes` in another item marked `moved_aside = <tag>` (an unparseable document,
    /// kept rather than overwritten).
    SetAside {
        bytes: Vec<u8>,
        tag: String,
    },
}

/// No `Debug`, as for [`Request`].
enum Reply {
    Done,
    Read(Option<Vec<u8>>),
}

/// A request, where to answer, and when its caller stops waiting for the keyring.
type Call = (
    Request,
    mpsc::Sender<Result<Reply, KeyringError>>,
    std::time::Instant,
);

/// The keyring item of one home. Cheap to clone; the worker thread starts on first use, so a
/// store that never touches the keyring never starts it.
#[derive(Clone)]
pub struct KeyringItem {
    home: Arc<str>,
    /// The `credential` attribute of a named credential's item (contract version 3); the
    /// default credential's item has none.
    credential: Option<Arc<str>>,
    worker: Arc<Mutex<Option<mpsc::Sender<Call>>>>,
}

impl std::fmt::Debug for KeyringItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyringItem")
            .field("service", &SERVICE)
            .field("home", &self.home)
            .field("credential", &self.credential)
            .finish()
    }
}

impl KeyringItem {
    /// The item of `home`, keyed by its canonical path (the longest existing ancestor
    /// resolved, so that the key is the same before and after the folder is created).
    pub fn for_home(home: &Path) -> Self {
        Self::for_credential(home, None)
    }

    /// The item of the credential `credential` of `home` (`None`: the default one).
    pub fn for_credential(home: &Path, credential: Option<Arc<str>>) -> Self {
        Self {
            home: canonical(home).to_string_lossy().into(),
            credential,
            worker: Arc::new(Mutex::new(None)),
        }
    }

    /// The `home` attribute of the item.
    pub fn home_attribute(&self) -> &str {
        &self.home
    }

    /// Whether a keyring answers and has a collection to store into.
    pub fn probe(&self) -> Result<(), KeyringError> {
        self.call(Request::Probe).map(|_| ())
    }

    /// The stored document, `None` when there is no item.
    pub fn read(&self) -> Result<Option<Vec<u8>>, KeyringError> {
        match self.call(Request::Read)? {
            Reply::Read(bytes) => Ok(bytes),
            Reply::Done => Ok(None),
        }
    }

    /// Replaces the item's content and confirms it by reading it back. On any error the
    /// previous content is what the keyring holds (an item is replaced in one call).
    pub fn write(&self, bytes: &[u8]) -> Result<(), KeyringError> {
        self.call(Request::Write(bytes.to_vec())).map(|_| ())
    }

    /// Deletes the item; a missing item is not an error.
    pub fn delete(&self) -> Result<(), KeyringError> {
        self.call(Request::Delete).map(|_| ())
    }

    /// Keeps `bytes` in a separate item tagged `moved_aside = tag` (never overwritten).
    pub fn set_aside(&self, bytes: &[u8], tag: &str) -> Result<(), KeyringError> {
        self.call(Request::SetAside {
            bytes: bytes.to_vec(),
            tag: tag.to_owned(),
        })
        .map(|_| ())
    }

    /// Hands `request` to the worker and waits for its answer, at most the limit (plus a
    /// margin: the worker bounds the call itself by the same deadline and answers `TimedOut`,
    /// so once this gives up the worker is done with the call or never starts it).
    fn call(&self, request: Request) -> Result<Reply, KeyringError> {
        let (reply, answer) = mpsc::channel();
        let deadline = std::time::Instant::now() + KEYRING_TIMEOUT;
        {
            let mut worker = self.worker.lock().unwrap_or_else(|p| p.into_inner());
            let sender = match worker.as_ref() {
                Some(sender) => sender.clone(),
                None => {
                    let sender = worker::spawn(self.home.clone(), self.credential.clone())?;
                    *worker = Some(sender.clone());
                    sender
                }
            };
            if sender.send((request, reply, deadline)).is_err() {
                // The worker is gone (it could not start its runtime): start afresh next time.
                *worker = None;
                return Err(KeyringError::Failed(
                    "the keyring worker stopped".to_owned(),
                ));
            }
        }
        match answer.recv_timeout(KEYRING_TIMEOUT + Duration::from_millis(500)) {
            Ok(result) => result,
            Err(_) => Err(KeyringError::TimedOut),
        }
    }
}

/// `home` with its longest existing ancestor resolved (symlinks, `..`), made absolute.
fn canonical(home: &Path) -> PathBuf {
    let absolute = std::path::absolute(home).unwrap_or_else(|_| home.to_path_buf());
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(resolved) = std::fs::canonicalize(existing) {
            return rest
                .iter()
                .rev()
                .fold(resolved, |path, part| path.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return absolute,
        }
    }
}

#[cfg(all(unix, not(target_os = "macos")))]
mod worker {
    //! The Secret Service (freedesktop.org) over the session D-Bus, pure Rust (zbus).

    use std::collections::HashMap;
    use std::sync::{Arc, mpsc};

    use secret_service::{EncryptionType, Error, SecretService};

    use super::{Call, KeyringError, Reply, Request, SERVICE};

    const CONTENT_TYPE: &str = "application/json";

    pub(super) fn spawn(
        home: Arc<str>,
        credential: Option<Arc<str>>,
    ) -> Result<mpsc::Sender<Call>, KeyringError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| KeyringError::Failed(format!("cannot start the keyring worker: {e}")))?;
        let (sender, calls) = mpsc::channel::<Call>();
        std::thread::Builder::new()
            .name("keyring".into())
            .spawn(move || serve(runtime, &home, credential.as_deref(), calls))
            .map_err(|e| KeyringError::Failed(format!("cannot start the keyring worker: {e}")))?;
        Ok(sender)
    }

    /// Answers calls until every sender is gone. The connection is kept between calls and
    /// dropped after any failure (the daemon may have restarted).
    fn serve(
        runtime: tokio::runtime::Runtime,
        home: &str,
        credential: Option<&str>,
        calls: mpsc::Receiver<Call>,
    ) {
        let mut service: Option<SecretService<'static>> = None;
        for (request, reply, deadline) in calls {
            // Queued behind a call that took its whole bound, this one's caller has given up
            // (or is about to): performing it now could store a document after the caller
            // reported the write failed and released the lock.
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                let _ = reply.send(Err(KeyringError::TimedOut));
                continue;
            }
            let result = runtime.block_on(async {
                let bounded = tokio::time::timeout(left, async {
                    if let Some(connected) = &service {
                        match perform(connected, home, credential, &request).await {
                            // A stale connection: retry once on a new one.
                            Err(KeyringError::Unavailable(_) | KeyringError::Failed(_)) => {}
                            done => return (done, None),
                        }
                    }
                    match SecretService::connect(EncryptionType::Dh).await {
                        Ok(fresh) => {
                            let done = perform(&fresh, home, credential, &request).await;
                            (done, Some(fresh))
                        }
                        Err(error) => (Err(unavailable(error)), None),
                    }
                });
                bounded.await
            });
            let result = match result {
                Ok((done, fresh)) => {
                    if let Some(fresh) = fresh {
                        service = Some(fresh);
                    }
                    if done.is_err() {
                        service = None;
                    }
                    done
                }
                Err(_) => {
                    service = None;
                    Err(KeyringError::TimedOut)
                }
            };
            let _ = reply.send(result);
        }
    }

    async fn perform(
        service: &SecretService<'_>,
        home: &str,
        credential: Option<&str>,
        request: &Request,
    ) -> Result<Reply, KeyringError> {
        let mut key = HashMap::from([("service", SERVICE), ("home", home)]);
        if let Some(name) = credential {
            key.insert("credential", name);
        }
        match request {
            Request::Probe => {
                let collection = service.get_any_collection().await.map_err(failed)?;
                collection.ensure_unlocked().await.map_err(failed)?;
                Ok(Reply::Done)
            }
            Request::Read => Ok(Reply::Read(read(service, &key).await?)),
            Request::Write(bytes) => {
                let collection = service.get_any_collection().await.map_err(failed)?;
                collection.ensure_unlocked().await.map_err(failed)?;
                // The item is rewritten in place: `create_item` with `replace` replaces every
                // item whose attributes include the key's, so the default credential's would
                // replace the named ones (and the items set aside).
                match current(service, &key).await? {
                    Some(item) => item.set_secret(bytes, CONTENT_TYPE).await.map_err(failed)?,
                    None => {
                        collection
                            .create_item(
                                &label(home, credential),
                                key.clone(),
                                bytes,
                                false,
                                CONTENT_TYPE,
                            )
                            .await
                            .map_err(failed)?;
                    }
                }
                match read(service, &key).await? {
                    Some(stored) if stored == *bytes => Ok(Reply::Done),
                    _ => Err(KeyringError::NotConfirmed),
                }
            }
            Request::Delete => {
                let found = service.search_items(key).await.map_err(failed)?;
                if !found.locked.is_empty() {
                    return Err(KeyringError::Locked);
                }
                for item in found.unlocked {
                    // A search by the default item's attributes finds the named ones too.
                    if credential.is_none() && is_named(&item).await? {
                        continue;
                    }
                    item.delete().await.map_err(failed)?;
                }
                Ok(Reply::Done)
            }
            Request::SetAside { bytes, tag } => {
                let collection = service.get_any_collection().await.map_err(failed)?;
                collection.ensure_unlocked().await.map_err(failed)?;
                let mut aside = key.clone();
                aside.insert("moved_aside", tag);
                let label = format!(
                    "{} (unreadable, moved aside {tag})",
                    label(home, credential)
                );
                collection
                    .create_item(&label, aside, bytes, false, CONTENT_TYPE)
                    .await
                    .map_err(failed)?;
                Ok(Reply::Done)
            }
        }
    }

    /// The item's content; a locked item is an error (never taken for a missing one). Only the
    /// item without a `moved_aside` attribute counts, and for the default credential (no
    /// `credential` in `key`) only one without a `credential` attribute.
    async fn read(
        service: &SecretService<'_>,
        key: &HashMap<&str, &str>,
    ) -> Result<Option<Vec<u8>>, KeyringError> {
        match current(service, key).await? {
            Some(item) => item.get_secret().await.map(Some).map_err(failed),
            None => Ok(None),
        }
    }

    /// The item that holds the document (see [`read`]); a locked one is an error.
    async fn current<'a>(
        service: &'a SecretService<'_>,
        key: &HashMap<&str, &str>,
    ) -> Result<Option<secret_service::Item<'a>>, KeyringError> {
        let named = key.contains_key("credential");
        let counts = |attributes: &HashMap<String, String>| {
            !attributes.contains_key("moved_aside")
                && (named || !attributes.contains_key("credential"))
        };
        let found = service.search_items(key.clone()).await.map_err(failed)?;
        for item in found.unlocked {
            let attributes = item.get_attributes().await.map_err(failed)?;
            if counts(&attributes) {
                return Ok(Some(item));
            }
        }
        for item in &found.locked {
            let attributes = item.get_attributes().await.map_err(failed)?;
            if counts(&attributes) {
                return Err(KeyringError::Locked);
            }
        }
        Ok(None)
    }

    /// Whether `item` is a named credential's.
    async fn is_named(item: &secret_service::Item<'_>) -> Result<bool, KeyringError> {
        let attributes = item.get_attributes().await.map_err(failed)?;
        Ok(attributes.contains_key("credential"))
    }

    fn label(home: &str, credential: Option<&str>) -> String {
        match credential {
            None => format!("auth-app-server credentials ({home})"),
            Some(name) => format!("auth-app-server credentials ({home}, {name})"),
        }
    }

    fn unavailable(error: Error) -> KeyringError {
        match error {
            Error::Locked => KeyringError::Locked,
            other => KeyringError::Unavailable(other.to_string()),
        }
    }

    fn failed(error: Error) -> KeyringError {
        match error {
            Error::Locked => KeyringError::Locked,
            Error::Unavailable | Error::Zbus(_) => KeyringError::Unavailable(error.to_string()),
            Error::NoResult => KeyringError::Failed(
                "it has no collection to store items in: create a default keyring".to_owned(),
            ),
            other => KeyringError::Failed(other.to_string()),
        }
    }
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
mod worker {
    use std::sync::{Arc, mpsc};

    use super::{Call, KeyringError};

    pub(super) fn spawn(
        _home: Arc<str>,
        _credential: Option<Arc<str>>,
    ) -> Result<mpsc::Sender<Call>, KeyringError> {
        Err(KeyringError::Unsupported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_the_same_before_and_after_the_home_exists() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("a").join("home");
        let before = KeyringItem::for_home(&home);
        std::fs::create_dir_all(&home).unwrap();
        let after = KeyringItem::for_home(&home);
        assert_eq!(before.home_attribute(), after.home_attribute());
        let dotted = KeyringItem::for_home(&dir.path().join("a").join("..").join("a/home"));
        assert_eq!(dotted.home_attribute(), after.home_attribute());
    }

    #[test]
    fn every_error_says_what_to_do_and_debug_shows_no_content() {
        for error in [
            KeyringError::TimedOut,
            KeyringError::Unavailable("no bus".into()),
            KeyringError::Locked,
            KeyringError::Failed("x".into()),
            KeyringError::NotConfirmed,
        ] {
            assert!(error.to_string().contains("--storage file"), "{error}");
        }
        let item = KeyringItem::for_home(Path::new("/tmp/h"));
        assert!(format!("{item:?}").contains("auth-app-server"));
    }
}
