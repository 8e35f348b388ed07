//! The auth manager: the one owner of this process's view of `auth.json`.
//!
//! Every request first checks the file's stamp (one `stat`); when another process changed the
//! file the manager reloads it and announces the new (method, state). Writers (login, logout,
//! refresh) are serialized in-process by an async gate and across processes by the file lock,
//! and re-read the file under the lock before deciding what to write.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::api_key;
use crate::auth_file::{AuthFile, StoredTokens};
use crate::config::{ConfigError, ProviderConfig};
use crate::error::AuthError;
use crate::login::PendingLogin;
use crate::provider::ProviderClient;
use crate::refresh::Trigger;
use crate::secret::Secret;
use crate::status::{AuthMethod, AuthState, Credentials, StatusReport, TransientFailure, describe};
use crate::store::{AuthStore, FileStamp, Loaded, StoreError, Stored, WriteLock};
use crate::time;

/// How long a writer waits for another process's lock on `auth.json.lock` (which may be
/// held across one refresh request) before giving up.
const LOCK_WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// How long a logout's revocation may take before it is abandoned.
const REVOCATION_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Something clients should hear about, without being asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthEvent {
    StatusChanged {
        method: Option<AuthMethod>,
        state: AuthState,
    },
    LoginCompleted {
        login_id: String,
        success: bool,
        error: Option<String>,
    },
}

/// Receives events synchronously, in the order they happen (before the answer of the request
/// that caused them).
pub type EventSink = Arc<dyn Fn(AuthEvent) + Send + Sync>;

/// The configured provider, if any.
#[derive(Debug, Clone)]
pub enum Provider {
    None,
    /// Configured but invalid: interactive logins report why.
    Misconfigured(ConfigError),
    Configured(Arc<ProviderConfig>),
}

/// Tokens the host obtained itself (`login` type `tokens`).
#[derive(Debug, Clone)]
pub struct HostTokens {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    pub id_token: Option<Secret>,
    pub expires_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct StatusOptions {
    pub include_token: bool,
    pub refresh: bool,
}

/// The file as this process last saw it.
#[derive(Debug, Clone)]
pub(crate) enum View {
    Missing,
    Unreadable(String),
    Present(Arc<Credentials>),
}

impl View {
    fn from_stored(stored: Stored) -> Self {
        match stored {
            Stored::Missing => Self::Missing,
            Stored::Unreadable(reason) => Self::Unreadable(reason),
            Stored::Present(file) => Self::Present(Arc::new(Credentials::new(*file))),
        }
    }
}

pub(crate) struct Inner {
    /// `None` until the first successful read.
    stamp: Option<Option<FileStamp>>,
    view: View,
    pub(crate) transient: Option<TransientFailure>,
    /// The last (method, state) clients were told about, or found at start.
    announced: Option<(Option<AuthMethod>, AuthState)>,
}

pub struct AuthManager {
    pub(crate) store: AuthStore,
    provider: Provider,
    client: Option<Arc<ProviderClient>>,
    events: EventSink,
    inner: Mutex<Inner>,
    pending_login: Mutex<Option<PendingLogin>>,
    /// Best-effort work that outlives its request (revocation); awaited, bounded, at shutdown.
    background: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Serializes this process's writers (login, logout, refresh); refreshes queue on it,
    /// which makes them single-flight.
    pub(crate) write_gate: tokio::sync::Mutex<()>,
}

impl AuthManager {
    /// Reads `auth.json` once; the state found is the baseline for `authStatusChanged`.
    pub fn new(store: AuthStore, provider: Provider, events: EventSink) -> Self {
        let client = match &provider {
            Provider::Configured(config) => Some(Arc::new(ProviderClient::new(config.clone()))),
            _ => None,
        };
        let manager = Self {
            store,
            provider,
            client,
            events,
            inner: Mutex::new(Inner {
                stamp: None,
                view: View::Missing,
                transient: None,
                announced: None,
            }),
            write_gate: tokio::sync::Mutex::new(()),
            pending_login: Mutex::new(None),
            background: Mutex::new(Vec::new()),
        };
        match manager.store.load() {
            Ok(loaded) => {
                let mut inner = manager.lock_inner();
                inner.stamp = Some(loaded.stamp);
                inner.view = View::from_stored(loaded.stored);
            }
            Err(error) => tracing::warn!(%error, "credentials not readable at start"),
        }
        let view = manager.lock_inner().view.clone();
        let summary = manager.summary(&view);
        manager.lock_inner().announced = summary;
        manager
    }

    pub fn store(&self) -> &AuthStore {
        &self.store
    }

    pub fn provider(&self) -> &Provider {
        &self.provider
    }

    pub(crate) fn client(&self) -> Option<&ProviderClient> {
        self.client.as_deref()
    }

    pub(crate) fn shared_client(&self) -> Option<Arc<ProviderClient>> {
        self.client.clone()
    }

    pub(crate) fn pending_login(&self) -> MutexGuard<'_, Option<PendingLogin>> {
        self.pending_login
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn emit(&self, event: AuthEvent) {
        (self.events)(event);
    }

    /// Waits, at most `limit`, for best-effort background work (revocations) to finish.
    pub async fn wait_background(&self, limit: std::time::Duration) {
        let tasks: Vec<_> =
            std::mem::take(&mut *self.background.lock().unwrap_or_else(|p| p.into_inner()));
        let all = async {
            for task in tasks {
                let _ = task.await;
            }
        };
        let _ = tokio::time::timeout(limit, all).await;
    }

    /// The current status. `refresh` renews a stale OAuth access token first (never a fresh
    /// one, an API key or poisoned credentials).
    pub async fn status(&self, options: StatusOptions) -> Result<StatusReport, AuthError> {
        let view = self.sync()?;
        if options.refresh
            && let View::Present(credentials) = &view
            && self.wants_refresh(credentials, &Trigger::IfStale)
        {
            match self.refresh(Trigger::IfStale).await {
                Ok(_) => {}
                Err(error @ AuthError::Unreadable { .. }) => return Err(error),
                Err(error) => {
                    tracing::warn!(%error, "refresh not attempted; answering from the stored credentials")
                }
            }
        }
        self.current_status(options.include_token)
    }

    /// The status of the current view (no file check, no refresh), announced if it changed.
    pub(crate) fn current_status(&self, include_token: bool) -> Result<StatusReport, AuthError> {
        let view = self.lock_inner().view.clone();
        let report = self.report(&view, include_token)?;
        self.observe(report.method, report.state);
        Ok(report)
    }

    /// Stores an API key (trimmed) and returns advice about it.
    pub async fn login_api_key(&self, raw: &Secret) -> Result<Vec<String>, AuthError> {
        let (key, warnings) = api_key::review(raw.expose());
        if key.is_empty() {
            return Err(AuthError::InvalidInput(
                "the API key is empty: pass the key in \"apiKey\"".into(),
            ));
        }
        self.replace_credentials(AuthFile::api_key(Secret::new(key)))
            .await?;
        tracing::info!("signed in with an API key");
        Ok(warnings)
    }

    /// Stores tokens the host obtained itself, recorded as issued by the configured provider
    /// (if any) so that they are refreshed only there.
    pub async fn login_tokens(&self, tokens: HostTokens) -> Result<(), AuthError> {
        if tokens.access_token.expose().trim().is_empty() {
            return Err(AuthError::InvalidInput(
                "the access token is empty: pass it in \"accessToken\"".into(),
            ));
        }
        // Recorded as issued by the configured provider, so they are refreshed only there.
        let (issuer, client_id) = match &self.client {
            Some(client) => match client.issuer().await {
                Ok(issuer) => (
                    Some(issuer.to_string()),
                    Some(client.config().client_id.clone()),
                ),
                Err(reason) => {
                    tracing::warn!(%reason, "issuer unknown; the tokens are stored but will not be refreshed");
                    (None, None)
                }
            },
            None => (None, None),
        };
        let stored = StoredTokens {
            access_token: tokens.access_token,
            refresh_token: tokens
                .refresh_token
                .filter(|t| !t.expose().trim().is_empty()),
            id_token: tokens.id_token.filter(|t| !t.expose().trim().is_empty()),
            token_type: None,
            scope: None,
            expires_at: tokens.expires_at,
            extra: Default::default(),
        };
        let mut file = AuthFile::oauth(issuer, client_id, stored);
        file.last_refresh = Some(time::now_rfc3339());
        self.replace_credentials(file).await?;
        tracing::info!("signed in with tokens from the host");
        Ok(())
    }

    /// Deletes the stored credentials (an unreadable file is moved aside instead), then revokes
    /// the refresh token at its issuer in the background, bounded by a short timeout.
    pub async fn logout(&self) -> Result<(), AuthError> {
        let _gate = self.write_gate.lock().await;
        let lock = self.lock_file().await?;
        let current = self.store.load().map_err(AuthError::Unwritable)?;
        let mut revocable = None;
        match current.stored {
            Stored::Unreadable(_) => self.move_aside(&lock)?,
            Stored::Present(file) => {
                self.store.remove(&lock).map_err(AuthError::Unwritable)?;
                let credentials = Credentials::new(*file);
                if self.refresh_blocker(&credentials).is_none() {
                    revocable = credentials.refresh_token().cloned();
                }
            }
            Stored::Missing => {}
        }
        drop(lock);
        self.lock_inner().transient = None;
        self.install(
            Loaded {
                stamp: None,
                stored: Stored::Missing,
            },
            true,
        );
        tracing::info!("signed out");
        if let (Some(token), Some(client)) = (revocable, self.shared_client()) {
            let task = tokio::spawn(async move {
                if tokio::time::timeout(REVOCATION_LIMIT, client.revoke(&token))
                    .await
                    .is_err()
                {
                    tracing::warn!(
                        "revocation timed out; the refresh token may stay valid at the provider"
                    );
                }
            });
            let mut background = self.background.lock().unwrap_or_else(|p| p.into_inner());
            background.retain(|t| !t.is_finished());
            background.push(task);
        }
        Ok(())
    }

    /// Login: replaces whatever is stored (moving an unreadable file aside first), keeping
    /// other tools' unknown top-level fields.
    pub(crate) async fn replace_credentials(&self, file: AuthFile) -> Result<(), AuthError> {
        let _gate = self.write_gate.lock().await;
        let lock = self.lock_file().await?;
        let current = self.store.load().map_err(AuthError::Unwritable)?;
        let previous = match current.stored {
            Stored::Present(previous) => Some(previous),
            Stored::Unreadable(_) => {
                self.move_aside(&lock)?;
                None
            }
            Stored::Missing => None,
        };
        let file = file.keeping_unknown_fields_of(previous.as_deref());
        let stamp = self
            .store
            .write(&lock, &file)
            .map_err(AuthError::Unwritable)?;
        drop(lock);
        self.install(
            Loaded {
                stamp: Some(stamp),
                stored: Stored::Present(Box::new(file)),
            },
            true,
        );
        Ok(())
    }

    fn move_aside(&self, lock: &WriteLock) -> Result<(), AuthError> {
        let target = self.store.move_aside(lock).map_err(AuthError::Unwritable)?;
        tracing::warn!(path = %target.display(), "unreadable auth.json moved aside");
        Ok(())
    }

    /// Takes the cross-process lock on a blocking thread (it waits for other processes).
    /// Waits at most [`LOCK_WAIT_LIMIT`]: a process stuck while holding the lock must not hang
    /// every request of this one.
    pub(crate) async fn lock_file(&self) -> Result<WriteLock, AuthError> {
        let store = self.store.clone();
        let failed = |source: std::io::Error| {
            AuthError::Unwritable(StoreError {
                action: "lock",
                path: self.store.path().with_extension("json.lock"),
                source,
            })
        };
        match tokio::time::timeout(
            LOCK_WAIT_LIMIT,
            tokio::task::spawn_blocking(move || store.lock()),
        )
        .await
        {
            Ok(Ok(locked)) => locked.map_err(AuthError::Unwritable),
            Ok(Err(join)) => Err(failed(std::io::Error::other(join.to_string()))),
            Err(_) => Err(failed(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "another process has held it for over {} s",
                    LOCK_WAIT_LIMIT.as_secs()
                ),
            ))),
        }
    }

    pub(crate) fn unreadable(&self, error: StoreError) -> AuthError {
        AuthError::Unreadable {
            path: self.store.path().to_path_buf(),
            reason: error.source.to_string(),
        }
    }

    /// Brings the view up to date with the file: one `stat`, and a read only when it changed.
    pub(crate) fn sync(&self) -> Result<View, AuthError> {
        let stamp = self.store.stamp().map_err(|e| self.unreadable(e))?;
        {
            let inner = self.lock_inner();
            if inner.stamp == Some(stamp) {
                return Ok(inner.view.clone());
            }
        }
        let loaded = self.store.load().map_err(|e| self.unreadable(e))?;
        tracing::debug!("auth.json changed on disk; reloaded");
        Ok(self.install(loaded, false))
    }

    /// Makes `loaded` the current view and announces the (method, state) it leads to: always
    /// when `force` (login, logout), else only when it changed.
    pub(crate) fn install(&self, loaded: Loaded, force: bool) -> View {
        let view = View::from_stored(loaded.stored);
        {
            let mut inner = self.lock_inner();
            inner.stamp = Some(loaded.stamp);
            inner.view = view.clone();
        }
        self.announce(&view, force);
        view
    }

    /// Replaces the view's content but not its stamp: used when a write failed, so that this
    /// process acts on what it decided until the file changes.
    pub(crate) fn install_in_memory(&self, file: AuthFile) {
        let view = View::Present(Arc::new(Credentials::new(file)));
        self.lock_inner().view = view.clone();
        self.announce(&view, false);
    }

    /// Announces the current view's (method, state) if it changed (e.g. after a transient
    /// failure, which changes the state without changing the file).
    pub(crate) fn announce_current(&self) {
        let view = self.lock_inner().view.clone();
        self.announce(&view, false);
    }

    fn announce(&self, view: &View, force: bool) {
        let Some((method, state)) = self.summary(view) else {
            return;
        };
        if force {
            self.lock_inner().announced = None;
        }
        self.observe(method, state);
    }

    /// Announces (method, state) when it differs from what clients were last told.
    fn observe(&self, method: Option<AuthMethod>, state: AuthState) {
        let mut inner = self.lock_inner();
        if inner.announced != Some((method, state)) {
            inner.announced = Some((method, state));
            drop(inner);
            (self.events)(AuthEvent::StatusChanged { method, state });
        }
    }

    fn report(&self, view: &View, include_token: bool) -> Result<StatusReport, AuthError> {
        match view {
            View::Missing => Ok(StatusReport::signed_out()),
            View::Unreadable(reason) => Err(AuthError::Unreadable {
                path: self.store.path().to_path_buf(),
                reason: reason.clone(),
            }),
            View::Present(credentials) => Ok(self.describe(credentials, include_token)),
        }
    }

    fn describe(&self, credentials: &Credentials, include_token: bool) -> StatusReport {
        let refreshable = self.refresh_blocker(credentials).is_none();
        let transient = self.lock_inner().transient.clone();
        describe(
            credentials,
            refreshable,
            transient.as_ref(),
            time::now_unix(),
            Instant::now(),
            include_token,
        )
    }

    /// (method, state) of a view; `None` for an unreadable file (nothing to announce).
    fn summary(&self, view: &View) -> Option<(Option<AuthMethod>, AuthState)> {
        match view {
            View::Missing => Some((None, AuthState::SignedOut)),
            View::Unreadable(_) => None,
            View::Present(credentials) => {
                let report = self.describe(credentials, false);
                Some((report.method, report.state))
            }
        }
    }

    pub(crate) fn lock_inner(&self) -> MutexGuard<'_, Inner> {
        // The state stays consistent even if a holder panicked: every update is one assignment.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
