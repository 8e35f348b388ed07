//! `reportAuthFailure` (docs/protocol.md): was an API's rejection an authentication failure,
//! and what should the client be told? Detection is one pure function ([`assess`]); what to do
//! about an auth failure is decided by `policy` (poisoned → API key → already rotated → dead →
//! the report bound → refresh); the answer (action and hint) for each case is chosen here, by
//! pure functions ([`answer_rejection`], [`plan`], [`answer_dead`], [`answer_refreshed`]); the
//! credential only carries out the refresh or the poisoning a plan asks for.

use super::RefreshOutcome;
use crate::policy::ReportDecision;
use crate::scope::challenge_scopes;
use crate::secret::Secret;
use crate::status::StatusReport;

/// What the client saw.
#[derive(Debug, Clone)]
pub struct RejectedRequest {
    pub status: u16,
    pub body: Option<String>,
    pub www_authenticate: Option<String>,
    pub rejected_token: Option<Secret>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureAction {
    Refreshed,
    AlreadyRotated,
    NotAuthFailure,
    NeedsLogin,
    RetryLater,
    InsufficientScope,
    ApiKeyRejected,
    /// A report-triggered refresh less than a minute ago did not help; none was made.
    RefreshDidNotHelp,
}

#[derive(Debug, Clone)]
pub struct FailureOutcome {
    pub action: FailureAction,
    pub hint: Option<String>,
    /// The status afterwards, token included when usable.
    pub status: StatusReport,
    /// `InsufficientScope` only: the scopes the challenge asks for (`scope="..."`), if any.
    pub required_scopes: Vec<String>,
}

/// A [`FailureOutcome`] but for the status afterwards, which the credential adds
/// ([`Answer::with_status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub action: FailureAction,
    pub hint: String,
    /// `InsufficientScope` only: the scopes the challenge asks for, if any.
    pub required_scopes: Vec<String>,
}

impl Answer {
    fn new(action: FailureAction, hint: impl Into<String>) -> Self {
        Self {
            action,
            hint: hint.into(),
            required_scopes: Vec::new(),
        }
    }

    /// The answer when no credentials are stored.
    pub fn no_credentials() -> Self {
        Self::new(FailureAction::NeedsLogin, NO_CREDENTIALS_HINT)
    }

    /// The whole outcome, with `status`: the status once the report is handled.
    pub fn with_status(self, status: StatusReport) -> FailureOutcome {
        FailureOutcome {
            action: self.action,
            hint: Some(self.hint),
            status,
            required_scopes: self.required_scopes,
        }
    }
}

/// What a report of an auth failure comes to, given the policy's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Answer at once; nothing is refreshed or recorded.
    Answer(Answer),
    /// Record the rejected token as dead (`refresh::poison_dead_token`), then answer with
    /// [`answer_dead`].
    PoisonDeadToken,
    /// Refresh (or join the refresh in flight) and wait for it, then answer with
    /// [`answer_refreshed`].
    Refresh,
}

/// The answer to a rejection that is not an authentication failure (nothing is refreshed);
/// `None` for an authentication failure, which the stored credentials answer ([`plan`]). Pure.
pub fn answer_rejection(
    rejection: Rejection,
    status: u16,
    www_authenticate: Option<&str>,
) -> Option<Answer> {
    match rejection {
        Rejection::NotAuthFailure => Some(Answer::new(
            FailureAction::NotAuthFailure,
            format!(
                "status {status} is not an authentication failure; nothing was refreshed: handle the error as it is"
            ),
        )),
        Rejection::InsufficientScope => {
            let scopes = challenge_scopes(www_authenticate.unwrap_or(""));
            if scopes.is_empty() {
                return Some(Answer::new(
                    FailureAction::InsufficientScope,
                    INSUFFICIENT_SCOPE_HINT,
                ));
            }
            Some(Answer {
                action: FailureAction::InsufficientScope,
                hint: step_up_hint(&scopes),
                required_scopes: scopes,
            })
        }
        Rejection::AuthFailure => None,
    }
}

/// What to do about an auth failure the policy decided on; `poison_message` is the message
/// of the permanent failure recorded for the credentials, if any. Pure.
pub fn plan(decision: ReportDecision, poison_message: Option<&str>) -> Plan {
    let answer = |action, hint: &str| Plan::Answer(Answer::new(action, hint));
    match decision {
        ReportDecision::ApiKey => answer(FailureAction::ApiKeyRejected, API_KEY_HINT),
        ReportDecision::Poisoned => answer(
            FailureAction::NeedsLogin,
            poison_message.unwrap_or("sign in again"),
        ),
        ReportDecision::Blocked(blocker) => answer(FailureAction::NeedsLogin, blocker.message()),
        ReportDecision::AlreadyRotated => answer(
            FailureAction::AlreadyRotated,
            "the rejected token had already been replaced: retry with authToken",
        ),
        ReportDecision::DidNotHelp => answer(FailureAction::RefreshDidNotHelp, DID_NOT_HELP_HINT),
        ReportDecision::BackingOff => answer(FailureAction::RetryLater, BACKING_OFF_HINT),
        ReportDecision::Dead => Plan::PoisonDeadToken,
        ReportDecision::Refresh => Plan::Refresh,
    }
}

/// The answer once a dead token was recorded as such ([`Plan::PoisonDeadToken`]). Pure.
pub fn answer_dead(outcome: RefreshOutcome) -> Answer {
    let hint = match outcome {
        RefreshOutcome::Failed(failure) => failure.message,
        RefreshOutcome::CannotRefresh(reason) => reason,
        _ => "the rejected token cannot be refreshed: sign in again".to_owned(),
    };
    Answer::new(FailureAction::NeedsLogin, hint)
}

/// The answer once the refresh of [`Plan::Refresh`] ended (`None`: without an outcome);
/// `new_token` when the stored token is now another than the rejected one. Pure.
pub fn answer_refreshed(outcome: Option<RefreshOutcome>, new_token: bool) -> Answer {
    let (action, hint) = match outcome {
        _ if new_token => (
            FailureAction::Refreshed,
            "a new token was obtained: retry with authToken".to_owned(),
        ),
        Some(RefreshOutcome::Failed(failure)) if failure.is_permanent() => {
            (FailureAction::NeedsLogin, failure.message)
        }
        Some(RefreshOutcome::Failed(failure)) => (FailureAction::RetryLater, failure.message),
        Some(RefreshOutcome::BackingOff) => {
            (FailureAction::RetryLater, BACKING_OFF_HINT.to_owned())
        }
        Some(RefreshOutcome::CannotRefresh(reason)) => (FailureAction::NeedsLogin, reason),
        _ => (
            FailureAction::NeedsLogin,
            "the token was rejected and no other token is available: sign in again".to_owned(),
        ),
    };
    Answer::new(action, hint)
}

/// What kind of rejection a response is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    NotAuthFailure,
    InsufficientScope,
    AuthFailure,
}

/// Body fragments (lowercase) that mark a 403 as an authentication failure rather than a
/// permission or firewall refusal.
const AUTH_ERROR_MARKERS: &[&str] = &[
    "authentication_error",
    "authentication_failed",
    "authentication failed",
    "invalid api key",
    "invalid_api_key",
    "incorrect api key",
    "invalid_token",
    "token expired",
    "token has expired",
    "invalid authentication",
    "unauthenticated",
];

/// Classifies an API's answer. Pure.
pub fn assess(status: u16, body: Option<&str>, www_authenticate: Option<&str>) -> Rejection {
    if (200..300).contains(&status) {
        return Rejection::NotAuthFailure;
    }
    let challenge = www_authenticate.unwrap_or("").to_ascii_lowercase();
    // Only the start of a body matters; a huge page is not read whole.
    let body = body
        .map(|b| b.chars().take(4096).collect::<String>().to_lowercase())
        .unwrap_or_default();
    if challenge.contains("insufficient_scope")
        || (status == 403 && body.contains("insufficient_scope"))
    {
        return Rejection::InsufficientScope;
    }
    let invalid_token_challenge =
        challenge.contains("error=\"invalid_token\"") || challenge.contains("error=invalid_token");
    if status == 401
        || invalid_token_challenge
        || (status == 403 && AUTH_ERROR_MARKERS.iter().any(|m| body.contains(m)))
    {
        return Rejection::AuthFailure;
    }
    Rejection::NotAuthFailure
}

const API_KEY_HINT: &str = "the API rejected the stored API key. Likely causes: the key was revoked or expired; it is \
     another kind of key or token than this API accepts; it belongs to another account, organization, project or \
     region. Sign in with a valid key";

const DID_NOT_HELP_HINT: &str = "the API rejected a token that a refresh obtained less than a minute ago \
     because of an earlier report, so another refresh would not help and none was made. Likely causes: the token is \
     for another audience (the API expects another `resource` or audience), a scope the API needs is missing, the \
     account has no access to this API, or the clocks of this machine and the API disagree. Fix the cause, or sign in \
     again with the right scopes";

const INSUFFICIENT_SCOPE_HINT: &str = "the token lacks a scope this API needs (insufficient_scope); a refresh \
     does not add scopes: sign in again with the needed scopes in login's \"scopes\" (the scopes already granted are \
     kept), or configure them";

const NO_CREDENTIALS_HINT: &str = "no credentials are stored: sign in";

const BACKING_OFF_HINT: &str =
    "a recent refresh failed transiently: retry after refreshError.retryAfterSecs";

/// The hint of an `insufficientScope` answer whose challenge named the scopes.
fn step_up_hint(scopes: &[String]) -> String {
    format!(
        "the token lacks a scope this API needs (insufficient_scope; it asks for: {}); a refresh does not add \
         scopes: sign in again with login {{\"type\":\"oauth\",\"scopes\":requiredScopes}} (or \"deviceCode\"); the \
         scopes already granted are kept",
        scopes.join(" ")
    )
}

#[cfg(test)]
mod tests;
