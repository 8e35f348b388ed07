//! Reports of rejected tokens (`reportAuthFailure`): the rejection is classified first
//! (`refresh::report::assess`), then the credential does what the refresh policy says: refresh and
//! wait, record a dead token, or answer why not.

use std::sync::Arc;

use super::Credential;
use super::view::View;
use crate::error::AuthError;
use crate::policy::{self, ReportDecision, Wait};
use crate::refresh::Cause;
use crate::refresh::report::{self, Answer, FailureOutcome, Plan, RejectedRequest, assess};
use crate::secret::Secret;

impl Credential {
    /// `reportAuthFailure`: classifies the rejection, then does what the refresh policy says
    /// (refresh and wait, or answer why not); the answer is chosen by `report`.
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
        let answer = |chosen: Answer| -> Result<FailureOutcome, AuthError> {
            Ok(chosen.with_status(self.current_status(true)?))
        };
        let www_authenticate = request.www_authenticate.as_deref();
        if let Some(chosen) = report::answer_rejection(rejection, request.status, www_authenticate)
        {
            return answer(chosen);
        }
        let credentials = match view {
            View::Missing => return answer(Answer::no_credentials()),
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
        let is_current = rejected == current;
        let decision = self.decide(&credentials, |facts| {
            policy::decide_report(facts, is_current)
        });
        if decision == ReportDecision::DidNotHelp {
            tracing::info!("a report-refreshed token was rejected again; not refreshing");
        }
        let poison = credentials.poison.as_ref().map(|p| p.message.as_str());
        match report::plan(decision, poison) {
            Plan::Answer(chosen) => answer(chosen),
            Plan::PoisonDeadToken => answer(report::answer_dead(
                self.poison_dead_token(&credentials).await,
            )),
            Plan::Refresh => {
                let result = self
                    .refresh(&credentials, Cause::Rejected, Wait::UntilDone)
                    .await;
                let status = self.current_status(true)?;
                let now_current = status.token.as_ref().map(Secret::fingerprint);
                let new_token = now_current.is_some_and(|fp| fp != rejected);
                Ok(report::answer_refreshed(result, new_token).with_status(status))
            }
        }
    }
}
