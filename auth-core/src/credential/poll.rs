//! The credential's status and its refresh: `status` answers a poll from the view (refreshing
//! a stale token first when asked), `decide` gathers what the refresh policy needs and asks it,
//! `refresh` starts or joins the single-flight refresh and waits as decided, and `client_for`
//! and `refresh_blocker` say which provider client refreshes these credentials, if any.

use std::sync::Arc;
use std::time::Instant;

use super::Credential;
use super::Provider;
use super::view::View;
use crate::config::ProviderConfig;
use crate::error::AuthError;
use crate::policy::{self, Blocker, Eligibility, Facts, PollDecision, RefreshClient, Wait};
use crate::provider::ProviderClient;
use crate::refresh::{Cause, RefreshOutcome, same_issuer};
use crate::status::{AuthMethod, Credentials, StatusReport, describe};
use crate::time;

#[derive(Debug, Clone, Copy, Default)]
pub struct StatusOptions {
    pub include_token: bool,
    /// Refresh a stale OAuth access token first (a poll waits for it at most 200 ms while the
    /// token still works).
    pub refresh: bool,
    /// Wait for a due refresh to end even while the token still works (one-shot commands,
    /// whose process would otherwise end in the middle of it).
    pub wait_for_refresh: bool,
    /// When the request had arrived (the read that brought it returned), if known: a view a
    /// `stat` confirmed after that is current enough for it, and no new `stat` is made (polls
    /// read together share one; a change is still seen by every request that arrives after
    /// it).
    pub received: Option<Instant>,
}

impl Credential {
    /// The current status. With `refresh`, a stale OAuth access token is renewed first (never
    /// a fresh one, an API key or poisoned credentials), waiting as the refresh policy says.
    pub async fn status(
        self: &Arc<Self>,
        options: StatusOptions,
    ) -> Result<StatusReport, AuthError> {
        let view = self.sync_received(options.received).await?;
        self.store_unsaved_in_background();
        if options.refresh
            && let View::Present(credentials) = &view
            && let PollDecision::Refresh(wait) = self.decide(credentials, policy::decide_poll)
        {
            let wait = if options.wait_for_refresh {
                Wait::UntilDone
            } else {
                wait
            };
            // Boxed: a poll that refreshes is rare, and its future is large; unboxed, it would
            // make every poll's future as large (an allocation and a copy of it per request).
            Box::pin(self.refresh(credentials, Cause::Stale, wait)).await;
        }
        self.current_status(options.include_token)
    }

    /// What the policy's `rule` (a poll's or a report's) says about `credentials` now.
    pub(super) fn decide<D>(&self, credentials: &Credentials, rule: impl FnOnce(&Facts) -> D) -> D {
        let blocker = self.refresh_blocker(credentials);
        let unrecorded = self.flight.unrecorded();
        let backoff = credentials.backoff_with(unrecorded.as_ref());
        let facts = Facts {
            oauth: credentials.method == AuthMethod::Oauth,
            times: credentials.times,
            poisoned: credentials.poison.is_some(),
            refresh_token: credentials.refresh_token().is_some(),
            blocker,
            backoff: backoff.as_ref(),
            report_refresh_at: credentials.report_refresh_at,
            in_flight: self.flight.is_running(),
            now_ms: time::now_ms(),
        };
        rule(&facts)
    }

    /// Starts a refresh of `credentials` (or joins the one in flight) and waits as `wait`
    /// says. `None` when the wait ended first; the refresh goes on in the background.
    pub(super) async fn refresh(
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

    /// The client that refreshes and revokes `credentials`: the configured provider's; with
    /// none configured, one for the issuer and `client_id` recorded with them (discovery from
    /// that issuer), so credentials stay usable without the configuration that obtained them.
    /// A configured provider always wins (and `refresh_blocker` keeps a refresh token from
    /// ever being sent to another issuer than its own).
    pub(super) fn client_for(&self, credentials: &Credentials) -> Option<Arc<ProviderClient>> {
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
        let mut config = ProviderConfig::recorded(issuer, client_id.to_owned());
        config.resource = credentials.file.resource.clone();
        let client = Arc::new(ProviderClient::new(Arc::new(config), &self.limits));
        *recorded = Some(client.clone());
        Some(client)
    }

    /// Why these credentials cannot be refreshed by this server, if they cannot
    /// ([`policy::blocker`]).
    pub(super) fn refresh_blocker(&self, credentials: &Credentials) -> Option<Blocker> {
        let oauth = credentials.method == AuthMethod::Oauth;
        let refresh_token = credentials.refresh_token().is_some();
        // Only credentials it could refresh get a client (built, without a provider configured).
        let client = if oauth && refresh_token {
            self.client_for(credentials)
        } else {
            None
        };
        policy::blocker(&Eligibility {
            oauth,
            refresh_token,
            stored_issuer: credentials.file.issuer.as_deref(),
            stored_client_id: credentials.file.client_id.as_deref(),
            client: client.as_deref().map(|client| RefreshClient {
                known_issuer: client.known_issuer(),
                client_id: client.config().client_id.as_deref(),
            }),
        })
    }

    /// The status of the current view (no file check, no refresh), announced if it changed.
    pub(super) fn current_status(&self, include_token: bool) -> Result<StatusReport, AuthError> {
        let view = self.view.current();
        let report = self.report(&view, include_token)?;
        self.announcer.announce(report.method, report.state, false);
        Ok(report)
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

    pub(super) fn describe(&self, credentials: &Credentials, include_token: bool) -> StatusReport {
        let refreshable = self.refresh_blocker(credentials).is_none();
        let backoff = credentials.backoff_with(self.flight.unrecorded().as_ref());
        describe(
            credentials,
            refreshable,
            backoff.as_ref(),
            time::now_ms(),
            include_token,
        )
    }
}
