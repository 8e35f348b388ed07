//! Interactive sign-in: the browser flow (authorization code + PKCE on a loopback redirect,
//! RFC 8252 / RFC 7636) and the device flow (RFC 8628). At most one runs at a time; starting
//! another cancels it. Every login ends with exactly one `LoginCompleted` event.

mod browser;
mod device;
pub mod pkce;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokio::sync::oneshot;

use crate::auth_file::{AuthFile, StoredTokens};
use crate::classify::RefreshFailure;
use crate::error::AuthError;
use crate::manager::{AuthEvent, AuthManager, Provider};
use crate::provider::{ProviderClient, TokenResponse};
use crate::time;

/// Environment knob: how long the browser flow waits for its callback (default 600 s).
pub const LOGIN_TIMEOUT_ENV: &str = "AUTH_APP_SERVER_LOGIN_TIMEOUT_SECS";
const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(600);

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

/// The login in progress and how to stop it.
pub(crate) struct PendingLogin {
    id: String,
    cancel: oneshot::Sender<&'static str>,
}

/// Resolves when the login must stop, with the reason.
pub(crate) type CancelSignal = oneshot::Receiver<&'static str>;

impl AuthManager {
    /// Starts a browser sign-in; `authUrl` is to be opened by the client.
    pub async fn start_oauth_login(self: &Arc<Self>) -> Result<LoginStart, AuthError> {
        let client = self.interactive_client()?;
        browser::start(self.clone(), client).await
    }

    /// Starts a device-code sign-in.
    pub async fn start_device_login(self: &Arc<Self>) -> Result<LoginStart, AuthError> {
        let client = self.interactive_client()?;
        device::start(self.clone(), client).await
    }

    /// Cancels the pending login `login_id`; false when there is none with that id.
    pub fn cancel_login(&self, login_id: &str) -> bool {
        let mut pending = self.pending_login();
        match pending.take() {
            Some(login) if login.id == login_id => {
                let _ = login.cancel.send("the sign-in was canceled");
                true
            }
            other => {
                *pending = other;
                false
            }
        }
    }

    fn interactive_client(&self) -> Result<Arc<ProviderClient>, AuthError> {
        match self.provider() {
            Provider::Configured(_) => Ok(self
                .shared_client()
                .expect("a configured provider has a client")),
            Provider::Misconfigured(error) => Err(AuthError::ProviderMisconfigured(error.clone())),
            Provider::None => Err(AuthError::NoProvider {
                config_path: self.store().home().join("config.toml"),
            }),
        }
    }

    /// Registers a new login, cancelling the one still pending.
    pub(crate) fn register_login(&self) -> (String, CancelSignal) {
        let id = format!(
            "login-{}",
            URL_SAFE_NO_PAD.encode(rand::random::<[u8; 12]>())
        );
        let (cancel, signal) = oneshot::channel();
        let previous = self.pending_login().replace(PendingLogin {
            id: id.clone(),
            cancel,
        });
        if let Some(previous) = previous {
            let _ = previous.cancel.send("canceled: a new sign-in was started");
        }
        (id, signal)
    }

    /// Ends login `id`: forgets it and tells clients how it ended.
    pub(crate) fn finish_login(&self, id: &str, result: Result<(), String>) {
        {
            let mut pending = self.pending_login();
            if pending.as_ref().is_some_and(|p| p.id == id) {
                *pending = None;
            }
        }
        match &result {
            Ok(()) => tracing::info!(login_id = id, "sign-in completed"),
            Err(error) => tracing::info!(login_id = id, %error, "sign-in ended without success"),
        }
        let (success, error) = match result {
            Ok(()) => (true, None),
            Err(error) => (false, Some(error)),
        };
        self.emit(AuthEvent::LoginCompleted {
            login_id: id.to_owned(),
            success,
            error,
        });
    }

    /// Stores the tokens of a completed sign-in, recorded as issued by the configured provider.
    pub(crate) async fn store_login(
        &self,
        client: &ProviderClient,
        tokens: TokenResponse,
    ) -> Result<(), String> {
        let config = client.config();
        let issuer = client.issuer().await?;
        let stored = StoredTokens {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            id_token: tokens.id_token,
            token_type: tokens.token_type,
            scope: tokens.scope,
            expires_at: tokens.expires_in.map(|secs| time::now_unix() + secs),
            extra: Default::default(),
        };
        let mut file = AuthFile::oauth(
            Some(issuer.to_string()),
            Some(config.client_id.clone()),
            stored,
        );
        file.last_refresh = Some(time::now_rfc3339());
        self.replace_credentials(file)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Why a code or device-code exchange failed, for `loginCompleted.error`.
fn exchange_failure(failure: &RefreshFailure) -> String {
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

fn login_timeout() -> Duration {
    std::env::var(LOGIN_TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(DEFAULT_LOGIN_TIMEOUT, Duration::from_secs)
}
