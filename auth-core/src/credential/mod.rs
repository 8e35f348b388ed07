//! One credential: [`Credential`] is the one owner of this process's view of one stored
//! document (`auth.json`, or its keyring item) and the only type that changes it. Its public
//! methods are the whole API of `auth-core` for the binary: status, logins, logout, reports of
//! rejected tokens.
//!
//! Every request first checks the store's stamp (one `stat`); when another process changed the
//! document the credential reloads it and announces the new (method, state). What to do about a
//! due refresh is decided by `policy`; a refresh runs as one background task per credential
//! (single-flight) that callers join and wait for as long as the decision says, and `refresh`
//! carries it out. Writers (login, logout, refresh) are serialized in-process by an async gate
//! and across processes by the store's lock, whose wait is bounded.
//!
//! Nothing here is global: another credential is another [`Credential::new`] with another
//! store and provider. Its state is kept in narrow pieces, each in its own file and used only
//! through its methods: the view of the store ([`view`]), the single-flight refresh and what a
//! failed write left ([`flight`]), the announcements ([`announce`]) and the pending sign-in
//! (`login::PendingLogins`). The jobs are one file each: [`poll`] (status and refresh),
//! [`report`] (reports of rejected tokens), [`sign_in`] (sign-in and sign-out); what stored
//! credentials mean for a client is [`crate::status`].

mod announce;
mod flight;
mod poll;
mod report;
mod sign_in;
mod view;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::config::{ConfigError, ProviderConfig};
use crate::limits::Limits;
use crate::login::PendingLogins;
use crate::provider::ProviderClient;
use crate::store::AuthStore;

use announce::Announcer;
use flight::Flight;
use view::ViewState;

pub use crate::status::{
    Account, AuthMethod, AuthState, Credentials, RefreshErrorInfo, RefreshErrorKind, StatusReport,
};
pub use announce::{AuthEvent, EventSink};
pub use poll::StatusOptions;
pub use sign_in::{HostTokens, LogoutOutcome};

/// The configured provider, if any.
#[derive(Debug, Clone)]
pub enum Provider {
    None,
    /// Configured but invalid: interactive logins report why.
    Misconfigured(ConfigError),
    Configured(Arc<ProviderConfig>),
}

pub struct Credential {
    store: AuthStore,
    provider: Provider,
    client: Option<Arc<ProviderClient>>,
    /// With no provider configured: a client for the issuer and `client_id` recorded with the
    /// stored tokens, so that they stay refreshable and revocable (built on first need).
    recorded: Mutex<Option<Arc<ProviderClient>>>,
    /// The store as this process last saw it.
    view: ViewState,
    /// The refresh in flight and what failed writes left.
    flight: Flight,
    /// What clients were last told, and the sink that tells them.
    announcer: Announcer,
    logins: PendingLogins,
    /// Work that outlives its request (refreshes, revocations); awaited, bounded, at shutdown.
    background: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Serializes this process's writers (login, logout, refresh).
    write_gate: tokio::sync::Mutex<()>,
    /// The lock, sign-in and request limits this process runs with.
    limits: Limits,
    /// `clientInfo.name` of `initialize`: the `client_name` of a dynamic client registration.
    client_name: Mutex<Option<String>>,
}

impl Credential {
    /// Reads `auth.json` once; the state found is the baseline for `authStatusChanged`.
    pub fn new(store: AuthStore, provider: Provider, events: EventSink, limits: Limits) -> Self {
        let client = match &provider {
            Provider::Configured(config) => {
                Some(Arc::new(ProviderClient::new(config.clone(), &limits)))
            }
            _ => None,
        };
        let credential = Self {
            store,
            provider,
            client,
            recorded: Mutex::new(None),
            view: ViewState::default(),
            flight: Flight::default(),
            announcer: Announcer::new(events),
            logins: PendingLogins::default(),
            background: Mutex::new(Vec::new()),
            write_gate: tokio::sync::Mutex::new(()),
            limits,
            client_name: Mutex::new(None),
        };
        match credential.store.load() {
            Ok(loaded) => {
                credential.view.install(loaded);
            }
            Err(error) => tracing::warn!(%error, "credentials not readable at start"),
        }
        let summary = credential.summary(&credential.view.current());
        credential.announcer.start_from(summary);
        credential
    }

    pub fn store(&self) -> &AuthStore {
        &self.store
    }

    /// The provider the stored credentials record (issuer, client_id, resource), for a new
    /// sign-in of a named credential whose provider nobody configured.
    pub fn recorded_provider(&self) -> Option<ProviderConfig> {
        let view::View::Present(credentials) = self.view.current() else {
            return None;
        };
        let file = &credentials.file;
        let issuer = crate::config::provider_url("issuer", file.issuer.as_deref()?).ok()?;
        let mut config = ProviderConfig::recorded(issuer, file.client_id.clone()?);
        config.resource = file.resource.clone();
        Some(config)
    }

    /// The issuer and resource recorded with the stored credentials (`listCredentials`).
    pub fn recorded_issuer_and_resource(&self) -> (Option<String>, Option<String>) {
        match self.view.current() {
            view::View::Present(credentials) => (
                credentials.file.issuer.clone(),
                credentials.file.resource.clone(),
            ),
            _ => (None, None),
        }
    }

    pub fn provider(&self) -> &Provider {
        &self.provider
    }

    /// Waits, at most `limit`, for work that outlives its request: a refresh in flight (so
    /// that rotated tokens are stored before the process ends), a last try at storing an
    /// outcome whose write failed, and revocations.
    pub async fn wait_background(self: &Arc<Self>, limit: Duration) {
        // The last try is made even within the pause after a failed one.
        self.flight.end_unsaved_pause();
        self.store_unsaved_in_background();
        let tasks: Vec<_> = std::mem::take(&mut *self.background());
        let all = async {
            for task in tasks {
                let _ = task.await;
            }
        };
        let _ = tokio::time::timeout(limit, all).await;
    }

    fn keep_in_background(&self, task: tokio::task::JoinHandle<()>) {
        let mut background = self.background();
        background.retain(|t| !t.is_finished());
        background.push(task);
    }

    fn background(&self) -> MutexGuard<'_, Vec<tokio::task::JoinHandle<()>>> {
        self.background.lock().unwrap_or_else(|p| p.into_inner())
    }
}
