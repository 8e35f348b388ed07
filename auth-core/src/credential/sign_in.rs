//! Sign-in and sign-out: an API key, tokens from the host, the browser and device-code flows
//! (started here, run by `login`, which reaches the credential through [`SignInTarget`]),
//! `completeLogin` and cancel, and logout with revocation. Every sign-in replaces what is
//! stored, in turn with the other writers, and is announced.

use std::sync::Arc;
use std::time::Duration;

use super::Credential;
use super::Provider;
use super::view::View;
use crate::api_key;
use crate::error::AuthError;
use crate::login::{self, CancelSignal, Inbox, LoginStart, SignInTarget};
use crate::provider::{Issued, ProviderClient, Revocation, TokenResponse};
use crate::refresh::{self, same_issuer};
use crate::secret::Secret;
use crate::status::Credentials;
use crate::store::format::AuthFile;
use crate::store::{AuthStore, Loaded, StoreError, Stored, WriteLock, off_runtime};
use crate::time;

/// How long a logout's revocation may take before it is abandoned.
const REVOCATION_LIMIT: Duration = Duration::from_secs(5);

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

impl Credential {
    /// The resource a named credential records with its tokens (its provider's), so that it
    /// refreshes for the same resource without the configuration; `auth.json` records none,
    /// as in version 2.
    fn resource_to_record(&self, client: Option<&ProviderClient>) -> Option<String> {
        self.store.credential()?;
        client.and_then(|client| client.config().resource.clone())
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
        let max = crate::provider::text::MAX_TOKEN_BYTES;
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
        file.resource = self.resource_to_record(self.client.as_deref());
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
        crate::scope::check_requested(extra_scopes).map_err(AuthError::InvalidInput)?;
        login::check_pkce(&client).await?;
        let identity = crate::registration::obtain(
            &client,
            &self.store,
            &self.client_name(),
            self.limits.lock_timeout,
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
        crate::scope::check_requested(extra_scopes).map_err(AuthError::InvalidInput)?;
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
        let granted =
            crate::scope::provider_scopes(granted.split_ascii_whitespace(), "granted scope");
        Ok(crate::scope::scope_union(
            [configured.as_slice(), &granted, extra].concat(),
        ))
    }

    /// Whether `login_id` is this credential's pending login.
    pub fn has_pending_login(&self, login_id: &str) -> bool {
        self.logins.is_pending(login_id)
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
            _ => match self.store.credential() {
                Some(name) => Err(AuthError::NoNamedProvider {
                    name: name.to_owned(),
                    config_path: self.store.home().join("config.toml"),
                }),
                None => Err(AuthError::NoProvider {
                    config_path: self.store.home().join("config.toml"),
                }),
            },
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
                            Some(blocker) => Err(blocker.to_string()),
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
        self.flight.forget_unrecorded();
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
            .lock_within(self.limits.lock_timeout)
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
        self.flight.forget_unrecorded();
        self.install(
            Loaded {
                stamp: Some(stamp),
                stored: Stored::Present(Box::new(file)),
            },
            true,
        );
        Ok(())
    }
}

impl SignInTarget for Credential {
    fn login_timeout(&self) -> Duration {
        self.limits.login_timeout
    }

    /// Registers a new interactive login, cancelling the one still pending. A browser login
    /// brings the inbox that `complete_login` feeds.
    fn register(&self, inbox: Option<Inbox>) -> (String, CancelSignal) {
        self.logins.register(inbox)
    }

    /// Ends login `id`: forgets it and tells clients how it ended.
    fn finish(&self, id: &str, result: Result<(), String>) {
        self.logins.remove(id);
        match &result {
            Ok(()) => tracing::info!(login_id = id, "sign-in completed"),
            Err(error) => tracing::info!(login_id = id, %error, "sign-in ended without success"),
        }
        self.announcer.login_completed(id, result);
    }

    /// Stores the tokens of a completed interactive sign-in, recorded as issued by the
    /// configured provider. Their expiry counts from when the token request was sent. A token
    /// response without `scope` was granted the `requested` ones (RFC 6749 §5.1), which are
    /// recorded so that a later step-up keeps them.
    async fn store_tokens(
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
        file.resource = self.resource_to_record(Some(client));
        self.replace_credentials(file)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Moves unreadable credentials aside (the lock is held), and says where to in the log.
fn move_aside(store: &AuthStore, lock: &WriteLock) -> Result<(), StoreError> {
    let target = store.move_aside(lock)?;
    tracing::warn!(to = %target, "unreadable credentials moved aside");
    Ok(())
}
