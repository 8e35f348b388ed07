//! The auth manager: the one owner of this process's view of `auth.json`, and the only type
//! that changes it. Its public methods are the whole API of `auth-core` for the binary: status,
//! logins, logout, reports of rejected tokens.
//!
//! Every request first checks the file's stamp (one `stat`); when another process changed the
//! file the manager reloads it and announces the new (method, state). What to do about a due
//! refresh is decided by `policy`; a refresh runs as one background task per process
//! (single-flight) that callers join and wait for as long as the decision says, and `refresh`
//! carries it out. Writers (login, logout, refresh) are serialized in-process by an async gate
//! and across processes by the file lock, whose wait is bounded.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

use crate::api_key;
use crate::auth_failure::{
    API_KEY_HINT, DID_NOT_HELP_HINT, FailureAction, FailureOutcome, INSUFFICIENT_SCOPE_HINT,
    RejectedRequest, Rejection, assess, challenge_scopes, step_up_hint,
};
use crate::auth_file::AuthFile;
use crate::config::{ConfigError, ProviderConfig};
use crate::error::AuthError;
use crate::login::{self, CancelSignal, LoginStart, PendingLogins};
use crate::policy::{self, Backoff, Decision, Facts, NoRefresh, Trigger, Wait};
use crate::provider::{Issued, ProviderClient, Revocation, TokenResponse};
use crate::refresh::{self, Cause, Finished, Job, NewView, RefreshOutcome, same_issuer};
use crate::secret::Secret;
use crate::status::{AuthMethod, AuthState, Credentials, StatusReport, describe};
use crate::store::{
    AuthStore, FileStamp, Loaded, StorageKind, StoreError, Stored, WriteLock, off_runtime,
};
use crate::time;

/// Environment knob: how long a writer waits for another process's `auth.json.lock`, in
/// milliseconds (default 10 000).
pub const LOCK_TIMEOUT_ENV: &str = "AUTH_APP_SERVER_LOCK_TIMEOUT_MS";
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a writer waits for another process's `auth.json.lock`: `LOCK_TIMEOUT_ENV`, else
/// 10 s.
pub fn lock_timeout() -> Duration {
    std::env::var(LOCK_TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(DEFAULT_LOCK_TIMEOUT, Duration::from_millis)
}

/// How long a logout's revocation may take before it is abandoned.
const REVOCATION_LIMIT: Duration = Duration::from_secs(5);

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

/// What a logout did beyond deleting the credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutOutcome {
    /// Whether the refresh token was revoked; `None` when there was none to revoke.
    pub revocation: Option<Revocation>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct StatusOptions {
    pub include_token: bool,
    /// Refresh a stale OAuth access token first (a poll waits for it at most 200 ms while the
    /// token still works).
    pub refresh: bool,
    /// Wait for a due refresh to end even while the token still works (one-shot commands,
    /// whose process would otherwise end in the middle of it).
    pub wait_for_refresh: bool,
}

/// The file as this process last saw it.
#[derive(Debug, Clone)]
enum View {
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

/// The outcome of the refresh in flight, once it ends (`None` until then).
type RefreshWatch = watch::Receiver<Option<RefreshOutcome>>;

struct Inner {
    /// `None` until the first successful read.
    stamp: Option<Option<FileStamp>>,
    view: View,
    /// A transient failure this process could not record in the file.
    unrecorded: Option<Backoff>,
    /// The refresh running in this process, if any.
    in_flight: Option<RefreshWatch>,
    /// Set while the view is a refresh's outcome this process could not store (the write
    /// failed): what the store held when it was decided. Stored by a later request
    /// (`store_unsaved_in_background`), or dropped when another process changes the store.
    unsaved: Option<Arc<AuthFile>>,
    /// A task storing the unsaved view is under way.
    storing_unsaved: bool,
    /// After a try at storing the unsaved view failed: no new try before this instant, so a
    /// store that keeps failing is not tried (and the cross-process lock not taken) on every
    /// request.
    unsaved_retry_at: Option<std::time::Instant>,
    /// The last (method, state) clients were told about, or found at start.
    announced: Option<(Option<AuthMethod>, AuthState)>,
}

pub struct Credential {
    store: AuthStore,
    provider: Provider,
    client: Option<Arc<ProviderClient>>,
    /// With no provider configured: a client for the issuer and `client_id` recorded with the
    /// stored tokens, so that they stay refreshable and revocable (built on first need).
    recorded: Mutex<Option<Arc<ProviderClient>>>,
    events: EventSink,
    inner: Mutex<Inner>,
    logins: PendingLogins,
    /// Work that outlives its request (refreshes, revocations); awaited, bounded, at shutdown.
    background: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Serializes this process's writers (login, logout, refresh).
    write_gate: tokio::sync::Mutex<()>,
    lock_timeout: Duration,
    /// `clientInfo.name` of `initialize`: the `client_name` of a dynamic client registration.
    client_name: Mutex<Option<String>>,
}

impl Credential {
    /// Reads `auth.json` once; the state found is the baseline for `authStatusChanged`.
    pub fn new(store: AuthStore, provider: Provider, events: EventSink) -> Self {
        let client = match &provider {
            Provider::Configured(config) => Some(Arc::new(ProviderClient::new(config.clone()))),
            _ => None,
        };
        let lock_timeout = lock_timeout();
        let manager = Self {
            store,
            provider,
            client,
            recorded: Mutex::new(None),
            events,
            inner: Mutex::new(Inner {
                stamp: None,
                view: View::Missing,
                unrecorded: None,
                in_flight: None,
                unsaved: None,
                storing_unsaved: false,
                unsaved_retry_at: None,
                announced: None,
            }),
            logins: PendingLogins::default(),
            background: Mutex::new(Vec::new()),
            write_gate: tokio::sync::Mutex::new(()),
            lock_timeout,
            client_name: Mutex::new(None),
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

    /// The name the client gave in `initialize`, registered as `client_name` when a sign-in
    /// registers a client (zero-configuration sign-in).
    pub fn set_client_name(&self, name: &str) {
        let name = name.trim();
        if !name.is_empty() {
            *self.client_name.lock().unwrap_or_else(|p| p.into_inner()) = Some(name.to_owned());
        }
    }

    fn client_name(&self) -> String {
        self.client_name
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_else(|| crate::registration::DEFAULT_CLIENT_NAME.to_owned())
    }

    /// Waits, at most `limit`, for work that outlives its request: a refresh in flight (so
    /// that rotated tokens are stored before the process ends), a last try at storing an
    /// outcome whose write failed, and revocations.
    pub async fn wait_background(self: &Arc<Self>, limit: Duration) {
        // The last try is made even within the pause after a failed one.
        self.lock_inner().unsaved_retry_at = None;
        self.store_unsaved_in_background();
        let tasks: Vec<_> = std::mem::take(&mut *self.background());
        let all = async {
            for task in tasks {
                let _ = task.await;
            }
        };
        let _ = tokio::time::timeout(limit, all).await;
    }

    // ---- status and refresh ----

    /// The current status. With `refresh`, a stale OAuth access token is renewed first (never
    /// a fresh one, an API key or poisoned credentials), waiting as the refresh policy says.
    pub async fn status(
        self: &Arc<Self>,
        options: StatusOptions,
    ) -> Result<StatusReport, AuthError> {
        let view = self.sync().await?;
        self.store_unsaved_in_background();
        if options.refresh
            && let View::Present(credentials) = &view
            && let Decision::Refresh { wait, .. } = self.decide(credentials, Trigger::Poll)
        {
            let wait = if options.wait_for_refresh {
                Wait::UntilDone
            } else {
                wait
            };
            self.refresh(credentials, Cause::Stale, wait).await;
        }
        self.current_status(options.include_token)
    }

    /// What the policy says about `credentials` now.
    fn decide(&self, credentials: &Credentials, trigger: Trigger) -> Decision {
        let blocker = self.refresh_blocker(credentials);
        let inner = self.lock_inner();
        let backoff = credentials.backoff_with(inner.unrecorded.as_ref());
        let facts = Facts {
            oauth: credentials.method == AuthMethod::Oauth,
            times: credentials.times,
            poisoned: credentials.poison.is_some(),
            refresh_token: credentials.refresh_token().is_some(),
            blocker: blocker.as_deref(),
            backoff: backoff.as_ref(),
            report_refresh_at: credentials.report_refresh_at,
            in_flight: inner.in_flight.is_some(),
            now_ms: time::now_ms(),
        };
        policy::decide(&facts, trigger)
    }

    /// Starts a refresh of `credentials` (or joins the one in flight) and waits as `wait`
    /// says. `None` when the wait ended first; the refresh goes on in the background.
    async fn refresh(
        self: &Arc<Self>,
        credentials: &Arc<Credentials>,
        cause: Cause,
        wait: Wait,
    ) -> Option<RefreshOutcome> {
        let mut outcome = self.start_or_join_refresh(credentials, cause);
        let done = outcome.wait_for(Option::is_some);
        let result = match wait {
            Wait::UntilDone => done.await.ok().map(|o| o.clone()),
            Wait::AtMost(limit) => match tokio::time::timeout(limit, done).await {
                Ok(result) => result.ok().map(|o| o.clone()),
                Err(_) => {
                    tracing::debug!("refresh still running; answering with the current token");
                    return None;
                }
            },
        };
        result.flatten()
    }

    /// The refresh in flight, or a new one. Concurrent callers share one task, so one lock
    /// wait and one HTTP request.
    fn start_or_join_refresh(
        self: &Arc<Self>,
        credentials: &Arc<Credentials>,
        cause: Cause,
    ) -> RefreshWatch {
        let mut inner = self.lock_inner();
        // A task that ended without an answer (it panicked) must not block refreshes forever.
        if let Some(running) = inner.in_flight.as_ref().filter(|w| w.has_changed().is_ok()) {
            return running.clone();
        }
        let (done, watch) = watch::channel(None);
        inner.in_flight = Some(watch.clone());
        let job = Job {
            store: self.store.clone(),
            client: self
                .client_for(credentials)
                .expect("the policy refreshes only with a provider"),
            snapshot: credentials.clone(),
            cause,
            lock_timeout: self.lock_timeout,
            unrecorded: inner.unrecorded.clone(),
            unsaved_from: inner.unsaved.clone(),
        };
        drop(inner);
        let manager = self.clone();
        let snapshot = credentials.clone();
        let task = tokio::spawn(async move {
            let outcome = {
                let _turn = manager.write_gate.lock().await;
                let finished = refresh::run(job).await;
                manager.apply(finished, &snapshot)
            };
            manager.lock_inner().in_flight = None;
            let _ = done.send(Some(outcome));
        });
        self.keep_in_background(task);
        watch
    }

    /// Records that `credentials`' rejected access token is dead (no refresh token), in turn
    /// with refreshes and other writes, then installs and announces it as a refresh's outcome.
    async fn poison_dead_token(&self, credentials: &Credentials) -> RefreshOutcome {
        let _turn = self.write_gate.lock().await;
        let unsaved_from = self.lock_inner().unsaved.clone();
        let finished = refresh::poison_dead_token(
            &self.store,
            credentials,
            unsaved_from.as_deref(),
            self.lock_timeout,
        )
        .await;
        self.apply(finished, credentials)
    }

    /// Installs what a refresh of `snapshot` left and announces the new state. Called with the
    /// write gate held, so that no store of an unsaved view runs in between.
    fn apply(&self, finished: Finished, snapshot: &Credentials) -> RefreshOutcome {
        match finished.view {
            Some(NewView::Loaded(loaded)) => {
                self.install(loaded, false);
            }
            Some(NewView::Unsaved(file)) => {
                let view = View::Present(Arc::new(Credentials::new(*file)));
                {
                    let mut inner = self.lock_inner();
                    inner.view = view.clone();
                    // The store holds what the snapshot was decided from, unless the snapshot
                    // was itself unsaved.
                    inner
                        .unsaved
                        .get_or_insert_with(|| Arc::new(snapshot.file.clone()));
                }
                self.announce(&view, false);
            }
            None => {}
        }
        let mut inner = self.lock_inner();
        match finished.unrecorded {
            Some(backoff) => inner.unrecorded = Some(backoff),
            None if matches!(finished.outcome, RefreshOutcome::Refreshed) => {
                inner.unrecorded = None
            }
            None => {}
        }
        drop(inner);
        self.announce_current();
        finished.outcome
    }

    /// Starts storing the view this process could not store (a refresh's outcome whose write
    /// failed), unless there is none or that is under way. In the background: no request
    /// waits for a store that may still not answer (a keyring bounds each call to 2 s).
    fn store_unsaved_in_background(self: &Arc<Self>) {
        {
            let mut inner = self.lock_inner();
            let waiting = inner
                .unsaved_retry_at
                .is_some_and(|at| std::time::Instant::now() < at);
            if inner.unsaved.is_none() || inner.storing_unsaved || waiting {
                return;
            }
            inner.storing_unsaved = true;
        }
        let manager = self.clone();
        let task = tokio::spawn(async move {
            let _storing = StoringUnsaved(&manager);
            let _turn = manager.write_gate.lock().await;
            // What is unsaved now: a refresh may have stored (or replaced) it meanwhile.
            let pending = match &*manager.lock_inner() {
                Inner {
                    view: View::Present(credentials),
                    unsaved: Some(from),
                    ..
                } => Some((credentials.clone(), from.clone())),
                _ => None,
            };
            let Some((credentials, from)) = pending else {
                return;
            };
            let stored = refresh::store_unsaved(
                &manager.store,
                &credentials.file,
                &from,
                manager.lock_timeout,
            )
            .await;
            match stored {
                Some(loaded) => {
                    manager.install(loaded, false);
                }
                None => {
                    manager.lock_inner().unsaved_retry_at =
                        Some(std::time::Instant::now() + UNSAVED_RETRY_PAUSE);
                }
            }
        });
        self.keep_in_background(task);
    }

    /// The client that refreshes and revokes `credentials`: the configured provider's; with
    /// none configured, one for the issuer and `client_id` recorded with them (discovery from
    /// that issuer), so credentials stay usable without the configuration that obtained them.
    /// A configured provider always wins (and `refresh_blocker` keeps a refresh token from
    /// ever being sent to another issuer than its own).
    fn client_for(&self, credentials: &Credentials) -> Option<Arc<ProviderClient>> {
        if let Some(client) = &self.client {
            return Some(client.clone());
        }
        if !matches!(self.provider, Provider::None) {
            return None;
        }
        let (Some(issuer), Some(client_id)) = (
            credentials.file.issuer.as_deref(),
            credentials.file.client_id.as_deref(),
        ) else {
            return None;
        };
        let mut recorded = self.recorded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = recorded.as_ref().filter(|c| {
            c.config().client_id.as_deref() == Some(client_id)
                && c.known_issuer()
                    .is_some_and(|known| same_issuer(issuer, known))
        }) {
            return Some(client.clone());
        }
        let issuer = match crate::config::provider_url("issuer", issuer) {
            Ok(issuer) => issuer,
            Err(error) => {
                tracing::warn!(%error, "the issuer recorded in auth.json is not usable");
                return None;
            }
        };
        let client = Arc::new(ProviderClient::new(Arc::new(ProviderConfig::recorded(
            issuer,
            client_id.to_owned(),
        ))));
        *recorded = Some(client.clone());
        Some(client)
    }

    /// Why these credentials cannot be refreshed by this server, if they cannot.
    fn refresh_blocker(&self, credentials: &Credentials) -> Option<String> {
        if credentials.method != AuthMethod::Oauth {
            return Some("API keys are not refreshed".into());
        }
        if credentials.refresh_token().is_none() {
            return Some("there is no refresh token: sign in again".into());
        }
        let Some(client) = self.client_for(credentials) else {
            return Some("no OAuth provider is configured and the tokens do not say which issuer and client_id they belong to, so they cannot be refreshed: configure a provider or sign in again".into());
        };
        // An issuer still to be found (RFC 9728) is checked by the refresh once it is known.
        let same = match (credentials.file.issuer.as_deref(), client.known_issuer()) {
            (None, _) => false,
            (Some(stored), Some(known)) => same_issuer(stored, known),
            (Some(_), None) => true,
        };
        if !same {
            // A refresh token is only ever sent to the issuer recorded with it.
            return Some(
                "the tokens were issued by another provider than the configured one: sign in again"
                    .into(),
            );
        }
        match (
            client.config().client_id.as_deref(),
            credentials.file.client_id.as_deref(),
        ) {
            (Some(configured), Some(recorded)) if configured != recorded => Some(
                "the tokens were issued to another client_id than the configured one: sign in again"
                    .into(),
            ),
            (None, None) => Some(
                "no client_id is configured and the tokens do not say which client_id they were issued to, so they cannot be refreshed: sign in again".into(),
            ),
            _ => None,
        }
    }

    // ---- reports of rejected tokens ----

    /// `reportAuthFailure`: classifies the rejection, then does what the refresh policy says
    /// (refresh and wait, or answer why not).
    pub async fn report_auth_failure(
        self: &Arc<Self>,
        request: RejectedRequest,
    ) -> Result<FailureOutcome, AuthError> {
        let rejection = assess(
            request.status,
            request.body.as_deref(),
            request.www_authenticate.as_deref(),
        );
        let view = self.sync().await?;
        self.store_unsaved_in_background();
        let answer = |action, hint: &str| -> Result<FailureOutcome, AuthError> {
            Ok(FailureOutcome {
                action,
                hint: Some(hint.to_owned()),
                status: self.current_status(true)?,
                required_scopes: Vec::new(),
            })
        };
        match rejection {
            Rejection::NotAuthFailure => {
                let hint = format!(
                    "status {} is not an authentication failure; nothing was refreshed: handle the error as it is",
                    request.status
                );
                return answer(FailureAction::NotAuthFailure, &hint);
            }
            Rejection::InsufficientScope => {
                let scopes = challenge_scopes(request.www_authenticate.as_deref().unwrap_or(""));
                if scopes.is_empty() {
                    return answer(FailureAction::InsufficientScope, INSUFFICIENT_SCOPE_HINT);
                }
                let mut outcome = answer(FailureAction::InsufficientScope, &step_up_hint(&scopes))?;
                outcome.required_scopes = scopes;
                return Ok(outcome);
            }
            Rejection::AuthFailure => {}
        }
        let credentials = match view {
            View::Missing => {
                return answer(
                    FailureAction::NeedsLogin,
                    "no credentials are stored: sign in",
                );
            }
            View::Unreadable(reason) => return Err(self.unreadable_error(reason)),
            View::Present(credentials) => credentials,
        };
        let current = credentials
            .bearer()
            .map(Secret::fingerprint)
            .unwrap_or_default();
        let rejected = request
            .rejected_token
            .as_ref()
            .map_or_else(|| current.clone(), Secret::fingerprint);
        let trigger = Trigger::Rejected {
            current: rejected == current,
        };
        match self.decide(&credentials, trigger) {
            Decision::CannotRefresh(NoRefresh::ApiKey) => {
                answer(FailureAction::ApiKeyRejected, API_KEY_HINT)
            }
            Decision::CannotRefresh(NoRefresh::Poisoned) => {
                let message = credentials.poison.as_ref().map(|p| p.message.as_str());
                answer(
                    FailureAction::NeedsLogin,
                    message.unwrap_or("sign in again"),
                )
            }
            Decision::CannotRefresh(NoRefresh::Blocked) => {
                let reason = self.refresh_blocker(&credentials).unwrap_or_default();
                answer(FailureAction::NeedsLogin, &reason)
            }
            Decision::CannotRefresh(NoRefresh::Dead) => {
                let reason = match self.poison_dead_token(&credentials).await {
                    RefreshOutcome::Failed(failure) => failure.message,
                    RefreshOutcome::CannotRefresh(reason) => reason,
                    _ => "the rejected token cannot be refreshed: sign in again".to_owned(),
                };
                answer(FailureAction::NeedsLogin, &reason)
            }
            Decision::AlreadyRotated => answer(
                FailureAction::AlreadyRotated,
                "the rejected token had already been replaced: retry with authToken",
            ),
            Decision::DidNotHelp => {
                tracing::info!("a report-refreshed token was rejected again; not refreshing");
                answer(FailureAction::RefreshDidNotHelp, DID_NOT_HELP_HINT)
            }
            Decision::BackingOff => answer(
                FailureAction::RetryLater,
                "a recent refresh failed transiently: retry after refreshError.retryAfterSecs",
            ),
            Decision::Answer | Decision::Refresh { .. } => {
                let result = self
                    .refresh(&credentials, Cause::Rejected, Wait::UntilDone)
                    .await;
                let status = self.current_status(true)?;
                let now_current = status.token.as_ref().map(Secret::fingerprint);
                let (action, hint) = match result {
                    _ if now_current.as_ref().is_some_and(|fp| *fp != rejected) => (
                        FailureAction::Refreshed,
                        "a new token was obtained: retry with authToken".to_owned(),
                    ),
                    Some(RefreshOutcome::Failed(failure)) if failure.is_permanent() => {
                        (FailureAction::NeedsLogin, failure.message)
                    }
                    Some(RefreshOutcome::Failed(failure)) => {
                        (FailureAction::RetryLater, failure.message)
                    }
                    Some(RefreshOutcome::BackingOff) => (
                        FailureAction::RetryLater,
                        "a recent refresh failed transiently: retry after refreshError.retryAfterSecs"
                            .to_owned(),
                    ),
                    Some(RefreshOutcome::CannotRefresh(reason)) => {
                        (FailureAction::NeedsLogin, reason)
                    }
                    _ => (
                        FailureAction::NeedsLogin,
                        "the token was rejected and no other token is available: sign in again"
                            .to_owned(),
                    ),
                };
                Ok(FailureOutcome {
                    action,
                    hint: Some(hint),
                    status,
                    required_scopes: Vec::new(),
                })
            }
        }
    }

    // ---- sign-in and sign-out ----

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
        let max = crate::provider_text::MAX_TOKEN_BYTES;
        for (member, token) in [
            ("accessToken", Some(&tokens.access_token)),
            ("refreshToken", tokens.refresh_token.as_ref()),
            ("idToken", tokens.id_token.as_ref()),
        ] {
            if token.is_some_and(|t| t.expose().len() > max) {
                return Err(AuthError::InvalidInput(format!(
                    "\"{member}\" is longer than {max} bytes, longer than any token this server stores"
                )));
            }
        }
        let (issuer, client_id) = match &self.client {
            Some(client) => match client.issuer_identifier().await {
                Ok(issuer) => (Some(issuer), client.config().client_id.clone()),
                Err(reason) => {
                    tracing::warn!(%reason, "issuer unknown; the tokens are stored but will not be refreshed");
                    (None, None)
                }
            },
            None => (None, None),
        };
        let now = time::now_unix();
        let response = TokenResponse {
            access_token: tokens.access_token,
            refresh_token: tokens
                .refresh_token
                .filter(|t| !t.expose().trim().is_empty()),
            id_token: tokens.id_token.filter(|t| !t.expose().trim().is_empty()),
            token_type: None,
            scope: None,
            expires_in: None,
        };
        let mut stored = refresh::stored_tokens(response, now);
        stored.expires_at = tokens.expires_at;
        let mut file = AuthFile::oauth(issuer, client_id, stored);
        file.last_refresh = Some(time::rfc3339(now));
        self.replace_credentials(file).await?;
        tracing::info!("signed in with tokens from the host");
        Ok(())
    }

    /// Starts a browser sign-in; `authUrl` is to be opened by the client. `extra_scopes` are
    /// requested besides the configured ones and those of the current grant (step-up).
    pub async fn start_oauth_login(
        self: &Arc<Self>,
        extra_scopes: &[String],
    ) -> Result<LoginStart, AuthError> {
        let client = self.interactive_client()?;
        // Bad params are refused before anything is registered or written.
        login::check_requested(extra_scopes).map_err(AuthError::InvalidInput)?;
        login::check_pkce(&client).await?;
        let identity = crate::registration::obtain(
            &client,
            &self.store,
            &self.client_name(),
            self.lock_timeout,
        )
        .await?;
        let client_id = identity.client_id().to_owned();
        let scopes = self
            .scopes_to_request(&client, &client_id, extra_scopes)
            .await?;
        let port = identity.redirect_port();
        login::start_browser(self.clone(), client, client_id, port, scopes).await
    }

    /// Starts a device-code sign-in, with `extra_scopes` as for the browser sign-in.
    pub async fn start_device_login(
        self: &Arc<Self>,
        extra_scopes: &[String],
    ) -> Result<LoginStart, AuthError> {
        let client = self.interactive_client()?;
        login::check_requested(extra_scopes).map_err(AuthError::InvalidInput)?;
        // A client obtained without configuration is registered for the browser sign-in only
        // (grant types authorization_code and refresh_token).
        let Some(client_id) = client.config().client_id.clone() else {
            return Err(AuthError::ProviderUnavailable(
                "the device-code sign-in needs a configured client_id: a client obtained without configuration (client ID metadata document or dynamic client registration) may use the browser sign-in only. Sign in with login {\"type\":\"oauth\"}, or register this app with the provider for the device flow and set `client_id` in the [provider] section of config.toml".into(),
            ));
        };
        let scopes = self
            .scopes_to_request(&client, &client_id, extra_scopes)
            .await?;
        login::start_device(self.clone(), client, client_id, scopes).await
    }

    /// The scopes of a new sign-in: the configured ones (or the protected resource's, see
    /// [`ProviderClient::scopes`]; in the MCP flow `offline_access` too when the authorization
    /// server lists it in `scopes_supported`), then those of the current grant (so that a step-up keeps
    /// what the user already consented to), then `extra`, without repeats. The current grant
    /// counts only when it is this provider's (same issuer and client_id).
    async fn scopes_to_request(
        &self,
        client: &ProviderClient,
        client_id: &str,
        extra: &[String],
    ) -> Result<Vec<String>, AuthError> {
        let mut configured = client.scopes().await.map_err(AuthError::from)?;
        // MCP authorization 2026-07-28: a refresh token is the point of this server; an MCP authorization server
        // that offers `offline_access` is asked for it.
        if client.is_mcp_flow()
            && client
                .discovered_metadata()
                .await
                .is_ok_and(|metadata| metadata.offline_access_supported)
        {
            configured.push("offline_access".to_owned());
        }
        let granted = match self.sync().await {
            Ok(View::Present(credentials)) => {
                let file = &credentials.file;
                let same_issuer = match (file.issuer.as_deref(), client.known_issuer()) {
                    (Some(stored), Some(known)) => same_issuer(stored, known),
                    _ => false,
                };
                let same_client = file.client_id.as_deref() == Some(client_id);
                match &file.tokens {
                    Some(tokens) if same_issuer && same_client => tokens.scope.clone(),
                    _ => None,
                }
            }
            // An unreadable file is moved aside by the login that follows; it grants nothing.
            _ => None,
        };
        let granted = granted.unwrap_or_default();
        let granted = login::provider_scopes(granted.split_ascii_whitespace(), "granted scope");
        Ok(login::scope_union(
            [configured.as_slice(), &granted, extra].concat(),
        ))
    }

    /// Cancels the pending login `login_id`; false when there is none with that id.
    pub fn cancel_login(&self, login_id: &str) -> bool {
        self.logins.cancel(login_id)
    }

    fn interactive_client(&self) -> Result<Arc<ProviderClient>, AuthError> {
        match (&self.provider, &self.client) {
            (Provider::Configured(_), Some(client)) => Ok(client.clone()),
            (Provider::Misconfigured(error), _) => {
                Err(AuthError::ProviderMisconfigured(error.clone()))
            }
            _ => Err(AuthError::NoProvider {
                config_path: self.store.home().join("config.toml"),
            }),
        }
    }

    /// `completeLogin`: hands the pending browser login `login_id` the address the browser
    /// ended on, checked like a callback to its listener. A wrong state, an address without a
    /// code, or no such pending browser login is invalid input, and the login keeps waiting;
    /// otherwise the login ends as usual, with `loginCompleted`.
    pub async fn complete_login(
        &self,
        login_id: &str,
        callback_url: &Secret,
    ) -> Result<(), AuthError> {
        let Some(inbox) = self.logins.inbox(login_id) else {
            return Err(AuthError::InvalidInput(
                "no browser sign-in with this loginId is pending (it ended, was canceled, is a device-code sign-in, or never existed): start one with login {\"type\":\"oauth\"}".into(),
            ));
        };
        inbox
            .complete(callback_url)
            .await
            .map_err(AuthError::InvalidInput)
    }

    /// Registers a new interactive login, cancelling the one still pending. A browser login
    /// brings the inbox that `complete_login` feeds.
    pub(crate) fn register_login(&self, inbox: Option<login::Inbox>) -> (String, CancelSignal) {
        self.logins.register(inbox)
    }

    /// Ends login `id`: forgets it and tells clients how it ended.
    pub(crate) fn finish_login(&self, id: &str, result: Result<(), String>) {
        self.logins.remove(id);
        match &result {
            Ok(()) => tracing::info!(login_id = id, "sign-in completed"),
            Err(error) => tracing::info!(login_id = id, %error, "sign-in ended without success"),
        }
        let (success, error) = match result {
            Ok(()) => (true, None),
            Err(error) => (false, Some(error)),
        };
        (self.events)(AuthEvent::LoginCompleted {
            login_id: id.to_owned(),
            success,
            error,
        });
    }

    /// Stores the tokens of a completed interactive sign-in, recorded as issued by the
    /// configured provider. Their expiry counts from when the token request was sent. A token
    /// response without `scope` was granted the `requested` ones (RFC 6749 §5.1), which are
    /// recorded so that a later step-up keeps them.
    pub(crate) async fn store_login(
        &self,
        client: &ProviderClient,
        client_id: &str,
        issued: Issued,
        requested: &[String],
    ) -> Result<(), String> {
        let sent_at = issued.sent_at();
        let mut tokens = issued.tokens;
        if tokens.scope.is_none() && !requested.is_empty() {
            tokens.scope = Some(requested.join(" "));
        }
        let issuer = client
            .issuer_identifier()
            .await
            .map_err(|e| e.to_string())?;
        let mut file = AuthFile::oauth(
            Some(issuer),
            Some(client_id.to_owned()),
            refresh::stored_tokens(tokens, sent_at),
        );
        file.last_refresh = Some(time::rfc3339(sent_at));
        self.replace_credentials(file)
            .await
            .map_err(|e| e.to_string())
    }

    /// Deletes the stored credentials (an unreadable file is moved aside instead), then revokes
    /// the refresh token at its issuer, waiting for that at most a few seconds. The sign-out
    /// itself never depends on the provider: it is done (and announced) before the revocation.
    pub async fn logout(&self) -> Result<LogoutOutcome, AuthError> {
        let revocable = {
            let (_gate, lock, current) = self.take_turn_and_load().await?;
            let store = self.store.clone();
            let unreadable = matches!(current.stored, Stored::Unreadable(_));
            // A deletion and a folder fsync (or keyring calls): off the runtime's thread.
            off_runtime(move || {
                if unreadable {
                    move_aside(&store, &lock)
                } else {
                    store.remove(&lock)
                }
            })
            .await
            .map_err(AuthError::Unwritable)?;
            match current.stored {
                Stored::Present(file) => {
                    let credentials = Credentials::new(*file);
                    credentials.refresh_token().map(|token| {
                        let client = match self.refresh_blocker(&credentials) {
                            Some(blocker) => Err(blocker),
                            None => self
                                .client_for(&credentials)
                                .and_then(|client| {
                                    let id = client
                                        .client_id_for(credentials.file.client_id.as_deref())?;
                                    Some((client, id))
                                })
                                .ok_or_else(|| "no provider".to_owned()),
                        };
                        (token.clone(), client)
                    })
                }
                Stored::Unreadable(_) | Stored::Missing => None,
            }
        };
        self.lock_inner().unrecorded = None;
        self.install(
            Loaded {
                stamp: None,
                stored: Stored::Missing,
            },
            true,
        );
        tracing::info!("signed out");
        let revocation = match revocable {
            None => None,
            Some((_, Err(blocker))) => {
                let why = format!("the refresh token was not revoked: {blocker}");
                tracing::warn!(%why, "the refresh token may stay valid at the provider");
                Some(Revocation::NotRevoked(why))
            }
            Some((token, Ok((client, client_id)))) => {
                let task = tokio::spawn(async move { client.revoke(&token, &client_id).await });
                let abort = task.abort_handle();
                match tokio::time::timeout(REVOCATION_LIMIT, task).await {
                    Ok(Ok(revocation)) => Some(revocation),
                    Ok(Err(_)) => Some(Revocation::NotRevoked("the revocation failed".into())),
                    Err(_) => {
                        abort.abort();
                        let why = format!(
                            "the revocation endpoint did not answer within {} s",
                            REVOCATION_LIMIT.as_secs()
                        );
                        tracing::warn!(%why, "the refresh token may stay valid at the provider");
                        Some(Revocation::NotRevoked(why))
                    }
                }
            }
        };
        Ok(LogoutOutcome { revocation })
    }

    /// For a login or logout: this process's write turn, then the cross-process lock (bounded),
    /// then what the store holds now.
    async fn take_turn_and_load(
        &self,
    ) -> Result<(tokio::sync::MutexGuard<'_, ()>, WriteLock, Loaded), AuthError> {
        let gate = self.write_gate.lock().await;
        let lock = self
            .store
            .lock_within(self.lock_timeout)
            .await
            .map_err(AuthError::Unwritable)?;
        let store = self.store.clone();
        let current = off_runtime(move || store.load())
            .await
            .map_err(AuthError::Unwritable)?;
        Ok((gate, lock, current))
    }

    /// Login: replaces whatever is stored (moving an unreadable file aside first), keeping
    /// other tools' unknown top-level fields.
    async fn replace_credentials(&self, file: AuthFile) -> Result<(), AuthError> {
        let (_gate, lock, current) = self.take_turn_and_load().await?;
        let (previous, unreadable) = match current.stored {
            Stored::Present(previous) => (Some(previous), false),
            Stored::Unreadable(_) => (None, true),
            Stored::Missing => (None, false),
        };
        let file = file.keeping_unknown_fields_of(previous.as_deref());
        let store = self.store.clone();
        let written = file.clone();
        // Two fsyncs (or keyring calls): off the runtime's thread, polls answer meanwhile.
        let stamp = off_runtime(move || {
            if unreadable {
                move_aside(&store, &lock)?;
            }
            store.write(&lock, &written)
        })
        .await
        .map_err(AuthError::Unwritable)?;
        self.lock_inner().unrecorded = None;
        self.install(
            Loaded {
                stamp: Some(stamp),
                stored: Stored::Present(Box::new(file)),
            },
            true,
        );
        Ok(())
    }

    // ---- the view and its announcements ----

    fn unreadable_error(&self, reason: String) -> AuthError {
        AuthError::Unreadable {
            path: self.store.location().into(),
            reason,
            keyring: self.store.kind() == StorageKind::Keyring,
        }
    }

    fn unreadable(&self, error: StoreError) -> AuthError {
        if error.keyring {
            return AuthError::StorageUnavailable(error);
        }
        self.unreadable_error(error.source.to_string())
    }

    /// Brings the view up to date with the file: one `stat`, and a read only when it changed
    /// (on a blocking thread: a slow disk or keyring holds up this request, not the others).
    async fn sync(&self) -> Result<View, AuthError> {
        let stamp = self.store.stamp().map_err(|e| self.unreadable(e))?;
        let seen = {
            let inner = self.lock_inner();
            if inner.stamp == Some(stamp) {
                return Ok(inner.view.clone());
            }
            inner.stamp
        };
        let store = self.store.clone();
        let loaded = off_runtime(move || store.load())
            .await
            .map_err(|e| self.unreadable(e))?;
        tracing::debug!("auth.json changed on disk; reloaded");
        {
            let mut inner = self.lock_inner();
            // Another request installed a view while this one read (a write of this process, or
            // a read of its own): that one is as new, or newer.
            if inner.stamp != seen {
                return Ok(inner.view.clone());
            }
            // Still what the unsaved view was decided from (another process recorded something
            // about those tokens): the unsaved view stays, to be stored over it.
            if let (Some(from), Stored::Present(file)) = (&inner.unsaved, &loaded.stored)
                && refresh::same_tokens(file, from)
            {
                inner.stamp = Some(loaded.stamp);
                return Ok(inner.view.clone());
            }
        }
        Ok(self.install(loaded, false))
    }

    /// Makes `loaded` the current view and announces the (method, state) it leads to: always
    /// when `force` (login, logout), else only when it changed.
    fn install(&self, loaded: Loaded, force: bool) -> View {
        let view = View::from_stored(loaded.stored);
        {
            let mut inner = self.lock_inner();
            inner.stamp = Some(loaded.stamp);
            inner.view = view.clone();
            inner.unsaved = None;
            inner.unsaved_retry_at = None;
        }
        self.announce(&view, force);
        view
    }

    /// The status of the current view (no file check, no refresh), announced if it changed.
    fn current_status(&self, include_token: bool) -> Result<StatusReport, AuthError> {
        let view = self.lock_inner().view.clone();
        let report = self.report(&view, include_token)?;
        self.observe(report.method, report.state);
        Ok(report)
    }

    /// Announces the current view's (method, state) if it changed (e.g. after a transient
    /// failure this process could not record, which changes the state but not the file).
    fn announce_current(&self) {
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
        let mut report = match view {
            View::Missing => StatusReport::signed_out(),
            View::Unreadable(reason) => return Err(self.unreadable_error(reason.clone())),
            View::Present(credentials) => self.describe(credentials, include_token),
        };
        report.storage = Some(self.store.kind());
        Ok(report)
    }

    fn describe(&self, credentials: &Credentials, include_token: bool) -> StatusReport {
        let refreshable = self.refresh_blocker(credentials).is_none();
        let backoff = credentials.backoff_with(self.lock_inner().unrecorded.as_ref());
        describe(
            credentials,
            refreshable,
            backoff.as_ref(),
            time::now_ms(),
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

    fn keep_in_background(&self, task: tokio::task::JoinHandle<()>) {
        let mut background = self.background();
        background.retain(|t| !t.is_finished());
        background.push(task);
    }

    fn background(&self) -> MutexGuard<'_, Vec<tokio::task::JoinHandle<()>>> {
        self.background.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_inner(&self) -> MutexGuard<'_, Inner> {
        // The state stays consistent even if a holder panicked: every update is one assignment.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Moves unreadable credentials aside (the lock is held), and says where to in the log.
fn move_aside(store: &AuthStore, lock: &WriteLock) -> Result<(), StoreError> {
    let target = store.move_aside(lock)?;
    tracing::warn!(to = %target, "unreadable credentials moved aside");
    Ok(())
}

/// The pause after a failed try at storing a refresh's outcome kept in memory.
const UNSAVED_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Marks the end of a task storing the unsaved view, however it ends.
struct StoringUnsaved<'a>(&'a Credential);

impl Drop for StoringUnsaved<'_> {
    fn drop(&mut self) {
        self.0.lock_inner().storing_unsaved = false;
    }
}
