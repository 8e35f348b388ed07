//! Interactive sign-in: the browser flow (authorization code + PKCE on a loopback redirect,
//! RFC 8252 / RFC 7636) and the device flow (RFC 8628). At most one runs at a time; starting
//! another cancels it. Every login ends with exactly one `LoginCompleted` event.
//!
//! The flows reach the credential they sign in to through [`SignInTarget`] (register, finish,
//! store the tokens), so they do not depend on the type that owns it.

mod browser;
mod callback;
pub(crate) mod device;
pub mod pkce;

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokio::sync::oneshot;

use crate::provider::classify::RefreshFailure;
use crate::provider::{Issued, ProviderClient};

pub(crate) use browser::{Inbox, check_pkce, start as start_browser};
pub(crate) use device::start as start_device;

/// What the client shows the user to go on with a started login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginStart {
    Oauth {
        login_id: String,
        auth_url: String,
    },
    DeviceCode {
        login_id: String,
        verification_uri: String,
        verification_uri_complete: Option<String>,
        user_code: String,
        expires_at: i64,
        interval_secs: u64,
    },
}

/// What a sign-in flow needs of the credential it signs in to (implemented by
/// `credential::Credential`).
pub(crate) trait SignInTarget: Send + Sync + 'static {
    /// Registers a new login, cancelling the one still pending: its id and what stops it. A
    /// browser login brings the inbox that `completeLogin` feeds.
    fn register(&self, inbox: Option<Inbox>) -> (String, CancelSignal);

    /// Ends login `id`: forgets it and tells clients how it ended.
    fn finish(&self, id: &str, result: Result<(), String>);

    /// How long the browser flow waits for its callback (`Limits::login_timeout`).
    fn login_timeout(&self) -> Duration;

    /// Stores the tokens `client` issued to `client_id` for a sign-in that asked for
    /// `requested`; the error is for `loginCompleted.error`.
    fn store_tokens(
        &self,
        client: &ProviderClient,
        client_id: &str,
        issued: Issued,
        requested: &[String],
    ) -> impl Future<Output = Result<(), String>> + Send;
}

/// The login in progress (at most one) and how to stop it. Owned by the credential.
#[derive(Default)]
pub(crate) struct PendingLogins {
    pending: Mutex<Option<PendingLogin>>,
}

struct PendingLogin {
    id: String,
    cancel: oneshot::Sender<&'static str>,
    /// A browser login's way in for an address pasted by the user (`completeLogin`).
    inbox: Option<Inbox>,
}

/// Resolves when the login must stop, with the reason.
pub(crate) type CancelSignal = oneshot::Receiver<&'static str>;

impl PendingLogins {
    /// Registers a new login, cancelling the one still pending.
    pub(crate) fn register(&self, inbox: Option<Inbox>) -> (String, CancelSignal) {
        let id = format!(
            "login-{}",
            URL_SAFE_NO_PAD.encode(rand::random::<[u8; 12]>())
        );
        let (cancel, signal) = oneshot::channel();
        let previous = self.slot().replace(PendingLogin {
            id: id.clone(),
            cancel,
            inbox,
        });
        if let Some(previous) = previous {
            let _ = previous.cancel.send("canceled: a new sign-in was started");
        }
        (id, signal)
    }

    /// Cancels login `id`; false when it is not the pending one.
    pub(crate) fn cancel(&self, id: &str) -> bool {
        let mut slot = self.slot();
        match slot.take() {
            Some(login) if login.id == id => {
                let _ = login.cancel.send("the sign-in was canceled");
                true
            }
            other => {
                *slot = other;
                false
            }
        }
    }

    /// The inbox of login `id`, when it is the pending one and a browser login.
    pub(crate) fn inbox(&self, id: &str) -> Option<Inbox> {
        self.slot()
            .as_ref()
            .filter(|p| p.id == id)
            .and_then(|p| p.inbox.clone())
    }

    /// Whether login `id` is the pending one.
    pub(crate) fn is_pending(&self, id: &str) -> bool {
        self.slot().as_ref().is_some_and(|p| p.id == id)
    }

    /// Forgets login `id` once it has ended.
    pub(crate) fn remove(&self, id: &str) {
        let mut slot = self.slot();
        if slot.as_ref().is_some_and(|p| p.id == id) {
            *slot = None;
        }
    }

    fn slot(&self) -> MutexGuard<'_, Option<PendingLogin>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Why a code or device-code exchange failed, for `loginCompleted.error`.
pub(crate) fn exchange_failure(failure: &RefreshFailure) -> String {
    match &failure.code {
        Some(code) => {
            format!("the provider refused to issue tokens ({code}): start the sign-in again")
        }
        None => {
            "the provider's token endpoint could not be reached or failed: start the sign-in again"
                .to_owned()
        }
    }
}
