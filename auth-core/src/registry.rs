//! Many credentials in one home (contract version 3): [`Registry`] maps names to
//! [`Credential`]s, each created when first used, each with its own store (its file or keyring
//! item, its own lock), its own provider client and its own refresh, so that one never waits
//! for another. `"default"` (or no name) is the credential of versions 1 and 2: `auth.json` and
//! the `[provider]` of `config.toml`.
//!
//! A named credential's provider is, first match wins: its `[credentials.NAME]` table in
//! `config.toml` (read when the first named credential is used); the `provider` object of the
//! `login` that signs it in; what its file recorded (issuer, client_id, resource), as for
//! `auth.json` without a configured provider.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::config::{self, ConfigError, ProviderConfig, ProviderObject};
use crate::credential::{AuthEvent, Credential, EventSink, Provider, StatusOptions, StatusReport};
use crate::error::AuthError;
use crate::limits::Limits;
use crate::store::{AuthStore, CREDENTIALS_FOLDER, StorageKind, off_runtime};

/// The rule every credential name follows.
pub const NAME_RULE: &str = "^[a-z0-9][a-z0-9._-]{0,63}$";
/// The name of the credential of `auth.json`, meant when none is given.
pub const DEFAULT_NAME: &str = "default";
/// The most credentials one home keeps (the default one included).
pub const MAX_CREDENTIALS: usize = 256;

/// Whether `name` follows [`NAME_RULE`].
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    matches!(bytes.first(), Some(first) if allowed(first))
        && bytes.len() <= 64
        && bytes[1..]
            .iter()
            .all(|b| allowed(b) || matches!(b, b'.' | b'_' | b'-'))
}

/// A checked credential name: the default one, or a named one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Which {
    Default,
    Named(Arc<str>),
}

impl Which {
    /// The `credential` member of a request: absent or `"default"` is the default one; a name
    /// that breaks the rule is invalid input quoting the rule, never the value.
    pub fn parse(raw: Option<&str>) -> Result<Self, AuthError> {
        match raw {
            None | Some(DEFAULT_NAME) => Ok(Self::Default),
            Some(name) if is_valid_name(name) => Ok(Self::Named(name.into())),
            Some(_) => Err(AuthError::InvalidInput(format!(
                "\"credential\" must match {NAME_RULE} (lowercase letters, digits, '.', '_' and '-', at most 64, starting with a letter or digit); leave it out for the default credential"
            ))),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Default => DEFAULT_NAME,
            Self::Named(name) => name,
        }
    }
}

/// Receives every credential's events with its name.
pub type NamedEventSink = Arc<dyn Fn(&str, AuthEvent) + Send + Sync>;

/// One stored credential as `listCredentials` shows it: no token.
#[derive(Debug, Clone)]
pub struct Listed {
    pub name: String,
    /// Its status; `Err` with the message when its document cannot be read.
    pub status: Result<StatusReport, String>,
    pub issuer: Option<String>,
    pub resource: Option<String>,
    pub storage: StorageKind,
}

/// The named providers of `config.toml`, read once, when first needed.
type Tables = Result<BTreeMap<String, Result<ProviderConfig, ConfigError>>, ConfigError>;

/// A named credential in the making: created once, however many requests ask at once.
type Slot = Arc<tokio::sync::OnceCell<Arc<Credential>>>;

/// Every credential of one home this process has used.
pub struct Registry {
    home: PathBuf,
    kind: StorageKind,
    test_write_delay: Option<Duration>,
    default: Arc<Credential>,
    named: Mutex<HashMap<Arc<str>, Slot>>,
    tables: OnceLock<Tables>,
    events: NamedEventSink,
    limits: Limits,
    /// `clientInfo.name` of `initialize`, for the credentials created after it.
    client_name: Mutex<Option<String>>,
}

impl Registry {
    /// The registry of the home of `default_store`, whose default credential is read now (the
    /// named ones are read when first used).
    pub fn new(
        default_store: AuthStore,
        default_provider: Provider,
        events: NamedEventSink,
        limits: Limits,
    ) -> Self {
        let home = default_store.home().to_path_buf();
        let kind = default_store.kind();
        let test_write_delay = default_store.test_write_delay();
        let default = Arc::new(Credential::new(
            default_store,
            default_provider,
            sink_for(&events, DEFAULT_NAME.into()),
            limits,
        ));
        Self {
            home,
            kind,
            test_write_delay,
            default,
            named: Mutex::new(HashMap::new()),
            tables: OnceLock::new(),
            events,
            limits,
            client_name: Mutex::new(None),
        }
    }

    /// The default credential (`auth.json`).
    pub fn default_credential(&self) -> &Arc<Credential> {
        &self.default
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The credential `which`, read when first used. `Ok(None)`: a named credential this
    /// process has not used and nothing is stored under (one `stat`): it is signed out, and
    /// nothing is kept in memory for it.
    pub async fn existing(&self, which: &Which) -> Result<Option<Arc<Credential>>, AuthError> {
        let Which::Named(name) = which else {
            return Ok(Some(self.default.clone()));
        };
        if let Some(credential) = self.loaded(name) {
            return Ok(Some(credential));
        }
        let store = self.store_of(name);
        if matches!(store.stamp(), Ok(None)) {
            return Ok(None);
        }
        // Boxed: reading a credential first used is rare, and would make every poll's future
        // larger.
        Box::pin(self.get(which)).await.map(Some)
    }

    /// The credential `which`, read when first used.
    pub async fn get(&self, which: &Which) -> Result<Arc<Credential>, AuthError> {
        let Which::Named(name) = which else {
            return Ok(self.default.clone());
        };
        let slot = self.slot(name);
        let credential = slot
            .get_or_try_init(|| self.create(name.clone(), None))
            .await?;
        Ok(credential.clone())
    }

    /// Tells clients that `which` is signed out (a logout of a name nothing is stored under,
    /// which creates nothing).
    pub fn announce_signed_out(&self, which: &Which) {
        (self.events)(
            which.as_str(),
            AuthEvent::StatusChanged {
                method: None,
                state: crate::status::AuthState::SignedOut,
            },
        );
    }

    /// The credential a `login` signs in to. `provider` (the login's `provider` object) is
    /// used by a named credential without a `[credentials.NAME]` table; a sign-in to a name
    /// nothing is stored under is refused past [`MAX_CREDENTIALS`].
    pub async fn for_login(
        &self,
        which: &Which,
        provider: Option<ProviderObject>,
    ) -> Result<Arc<Credential>, AuthError> {
        let Which::Named(name) = which else {
            if provider.is_some() {
                return Err(AuthError::InvalidInput(
                    "\"provider\" is for named credentials (with \"credential\"); the default credential's provider is the [provider] table of config.toml".into(),
                ));
            }
            if matches!(self.default.store().stamp(), Ok(None)) {
                self.check_room(DEFAULT_NAME).await?;
            }
            return Ok(self.default.clone());
        };
        let table = self.table(name);
        let object = match (&table, provider) {
            (Some(_), Some(_)) => {
                tracing::warn!(credential = %name, "the login's \"provider\" is ignored: config.toml has a [credentials.{name}] table, which wins");
                None
            }
            (_, Some(object)) => Some(object.check(&self.home).map_err(AuthError::InvalidInput)?),
            (_, None) => None,
        };
        let stored = !matches!(self.store_of(name).stamp(), Ok(None));
        if !stored {
            self.check_room(name).await?;
        }
        let object = match object {
            Some(object) => object,
            None => {
                let credential = self.get(which).await?;
                // Signed in before with a provider nobody configured: sign in again with the
                // one its file recorded.
                let recorded = match (&table, credential.provider()) {
                    (None, Provider::None) => credential.recorded_provider(),
                    _ => None,
                };
                match recorded {
                    Some(recorded) => recorded,
                    None => return Ok(credential),
                }
            }
        };
        // A provider given by the login replaces the one the credential had in this process.
        let current = self.loaded(name);
        if let Some(current) = &current
            && let Provider::Configured(config) = current.provider()
            && **config == object
        {
            return Ok(current.clone());
        }
        let credential = self
            .create(name.clone(), Some(Provider::Configured(Arc::new(object))))
            .await?;
        let slot: Slot = Arc::new(tokio::sync::OnceCell::new_with(Some(credential.clone())));
        self.slots().insert(name.clone(), slot);
        Ok(credential)
    }

    /// Every stored credential, sorted by name (the default one as `"default"`, when
    /// `auth.json` or its keyring item holds something). Contacts no provider.
    pub async fn list(&self) -> Vec<Listed> {
        let names = self.stored_names().await;
        let mut listed = Vec::new();
        let default = self.describe(DEFAULT_NAME, &self.default).await;
        if !matches!(&default.status, Ok(report) if report.method.is_none()) {
            listed.push(default);
        }
        for name in names {
            let which = Which::Named(name.as_str().into());
            match self.existing(&which).await {
                Ok(Some(credential)) => {
                    let entry = self.describe(&name, &credential).await;
                    if !matches!(&entry.status, Ok(report) if report.method.is_none()) {
                        listed.push(entry);
                    }
                }
                Ok(None) => {}
                Err(error) => listed.push(Listed {
                    name,
                    status: Err(error.to_string()),
                    issuer: None,
                    resource: None,
                    storage: self.kind,
                }),
            }
        }
        listed.sort_by(|a, b| a.name.cmp(&b.name));
        listed
    }

    /// The names of the named credentials stored in this home, sorted (one directory read; no
    /// document is read and nothing is loaded).
    pub async fn stored_names(&self) -> BTreeSet<String> {
        let folder = self.home.join(CREDENTIALS_FOLDER);
        off_runtime(move || stored_names(&folder)).await
    }

    /// The credential whose pending login is `login_id` (`cancelLogin` and `completeLogin`
    /// name no credential); the default one when none has it, which then answers as before.
    pub fn with_login(&self, login_id: &str) -> Arc<Credential> {
        self.all_loaded()
            .into_iter()
            .find(|credential| credential.has_pending_login(login_id))
            .unwrap_or_else(|| self.default.clone())
    }

    /// Sets the `client_name` of dynamic registrations on every credential, now and later.
    pub fn set_client_name(&self, name: &str) {
        self.default.set_client_name(name);
        *self.client_name.lock().unwrap_or_else(|p| p.into_inner()) = Some(name.to_owned());
        for credential in self.all_loaded() {
            credential.set_client_name(name);
        }
    }

    /// Waits, at most `limit` in all, for every credential's work that outlives its request.
    pub async fn wait_background(&self, limit: Duration) {
        let mut all = vec![self.default.clone()];
        all.extend(self.all_loaded());
        let waits = all
            .iter()
            .map(|credential| credential.wait_background(limit));
        let _ = tokio::time::timeout(limit, futures_join_all(waits)).await;
    }

    /// The named credentials loaded in this process.
    pub fn all_loaded(&self) -> Vec<Arc<Credential>> {
        self.slots()
            .values()
            .filter_map(|slot| slot.get().cloned())
            .collect()
    }

    async fn describe(&self, name: &str, credential: &Arc<Credential>) -> Listed {
        let options = StatusOptions {
            include_token: false,
            refresh: false,
            wait_for_refresh: false,
            received: None,
        };
        let status = credential
            .status(options)
            .await
            .map_err(|error| error.to_string());
        let (issuer, resource) = credential.recorded_issuer_and_resource();
        Listed {
            name: name.to_owned(),
            status,
            issuer,
            resource,
            storage: credential.store().kind(),
        }
    }

    fn loaded(&self, name: &str) -> Option<Arc<Credential>> {
        self.slots().get(name).and_then(|slot| slot.get().cloned())
    }

    fn slot(&self, name: &Arc<str>) -> Slot {
        self.slots().entry(name.clone()).or_default().clone()
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<Arc<str>, Slot>> {
        self.named.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn store_of(&self, name: &str) -> AuthStore {
        AuthStore::named(&self.home, name, self.kind).with_test_write_delay(self.test_write_delay)
    }

    /// The `[credentials.NAME]` table of `name`, if config.toml has one (an invalid table is
    /// a provider that reports why).
    fn table(&self, name: &str) -> Option<Provider> {
        let tables = self.tables.get_or_init(|| {
            let tables = config::load_credential_tables(&self.home);
            // A table no request can name (`[credentials.default]`, a name that breaks the
            // rule) would otherwise never be reported.
            for (table, provider) in tables.iter().flatten() {
                if let Err(error) = provider
                    && (table == DEFAULT_NAME || !is_valid_name(table))
                {
                    tracing::warn!(%error, "a [credentials.*] table of config.toml is ignored");
                }
            }
            tables
        });
        match tables {
            Ok(tables) => tables.get(name).map(|table| match table {
                Ok(config) => Provider::Configured(Arc::new(config.clone())),
                Err(error) => Provider::Misconfigured(error.clone()),
            }),
            // config.toml cannot be read: said once at start for the default credential.
            Err(_) => None,
        }
    }

    /// Creates the credential `name`: its store, moved into the backend of this home, read
    /// off the runtime's thread.
    async fn create(
        &self,
        name: Arc<str>,
        provider: Option<Provider>,
    ) -> Result<Arc<Credential>, AuthError> {
        let provider = provider
            .or_else(|| self.table(&name))
            .unwrap_or(Provider::None);
        let store = self.store_of(&name);
        off_runtime({
            let store = store.clone();
            move || store.check_folder()
        })
        .await
        .map_err(AuthError::StorageUnavailable)?;
        match store.migrate(self.limits.lock_timeout).await {
            Ok(crate::store::Migration::None) => {}
            Ok(done) => {
                tracing::info!(credential = %name, ?done, "credential moved between storage backends")
            }
            Err(error) => {
                tracing::warn!(credential = %name, %error, "credential not moved between storage backends")
            }
        }
        let events = sink_for(&self.events, name.clone());
        let limits = self.limits;
        let client_name = self
            .client_name
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let credential =
            off_runtime(move || Credential::new(store, provider, events, limits)).await;
        if let Some(client_name) = client_name {
            credential.set_client_name(&client_name);
        }
        Ok(Arc::new(credential))
    }

    /// Refuses a new credential when the home already holds [`MAX_CREDENTIALS`].
    async fn check_room(&self, name: &str) -> Result<(), AuthError> {
        let folder = self.home.join(CREDENTIALS_FOLDER);
        let named = off_runtime(move || stored_names(&folder)).await;
        let default = !matches!(self.default.store().stamp(), Ok(None));
        let count = named.iter().filter(|n| n.as_str() != name).count() + usize::from(default);
        if count >= MAX_CREDENTIALS {
            return Err(AuthError::TooManyCredentials { count });
        }
        Ok(())
    }
}

/// The names stored in `folder` (`NAME.json`, or the keyring backend's `NAME.storage`), sorted.
///
/// A `credentials` folder that is a symlink holds none (requests about its credentials are
/// refused, see `AuthStore::check_folder`).
fn stored_names(folder: &Path) -> BTreeSet<String> {
    if std::fs::symlink_metadata(folder).is_ok_and(|meta| meta.file_type().is_symlink()) {
        tracing::warn!(folder = %folder.display(), "the credentials folder is a symlink: its credentials are not used; remove it");
        return BTreeSet::new();
    }
    let Ok(entries) = std::fs::read_dir(folder) else {
        return BTreeSet::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let name = name.to_str()?;
            let stem = name
                .strip_suffix(".json")
                .or_else(|| name.strip_suffix(".storage"))?;
            (is_valid_name(stem) && stem != DEFAULT_NAME).then(|| stem.to_owned())
        })
        .collect()
}

fn sink_for(events: &NamedEventSink, name: Arc<str>) -> EventSink {
    let events = events.clone();
    Arc::new(move |event| events(&name, event))
}

/// Runs the futures concurrently, to completion.
async fn futures_join_all<F: Future<Output = ()>>(futures: impl IntoIterator<Item = F>) {
    let mut set: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        set.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if set.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rule() {
        for good in ["a", "work", "mcp.example-1", "0_x", &"a".repeat(64)] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in [
            "",
            "A",
            "-a",
            ".a",
            "_a",
            "a/b",
            "a b",
            "é",
            "a\0",
            &"a".repeat(65),
            "../x",
        ] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn default_named_or_absent_is_the_default_and_a_bad_name_quotes_the_rule_only() {
        assert_eq!(Which::parse(None).unwrap(), Which::Default);
        assert_eq!(Which::parse(Some("default")).unwrap(), Which::Default);
        assert_eq!(
            Which::parse(Some("work")).unwrap(),
            Which::Named("work".into())
        );
        let error = Which::parse(Some("Secret-Token-Value"))
            .unwrap_err()
            .to_string();
        assert!(error.contains(NAME_RULE), "{error}");
        assert!(!error.contains("Secret-Token-Value"), "{error}");
    }

    #[test]
    fn stored_names_are_the_documents_and_markers_of_valid_names() {
        let dir = tempfile::tempdir().unwrap();
        for file in [
            "work.json",
            "work.json.lock",
            "home.storage",
            ".work.json.abc123.tmp",
            "work.json.corrupt-1",
            "Bad.json",
            "default.json",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(file), b"{}").unwrap();
        }
        let names: Vec<_> = stored_names(dir.path()).into_iter().collect();
        assert_eq!(names, ["home", "work"]);
    }
}
