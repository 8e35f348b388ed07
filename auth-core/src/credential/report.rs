//! Reports of rejected tokens (`reportAuthFailure`): the rejection is classified first
//! (`auth_failure::assess`), then the credential does what the refresh policy says: refresh and
//! wait, record a dead token, or answer why not.

use std::sync::Arc;

use super::Credential;
use super::view::View;
use crate::auth_failure::{
    API_KEY_HINT, DID_NOT_HELP_HINT, FailureAction, FailureOutcome, INSUFFICIENT_SCOPE_HINT,
    RejectedRequest, Rejection, assess, challenge_scopes, step_up_hint,
};
use crate::error::AuthError;
use crate::policy::{Decision, NoRefresh, Trigger, Wait};
use crate::refresh::{Cause, RefreshOutcome};
use crate::secret::Secret;

impl Credential {
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
}
