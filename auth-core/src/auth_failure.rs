//! `reportAuthFailure` (SPEC §4): was an API's rejection an authentication failure, and what
//! should the client do about it? Detection is one pure function; the decision order follows
//! the spec: not an auth failure → signed out or poisoned → API key → already rotated → refresh.

use crate::error::AuthError;
use crate::manager::{AuthManager, View};
use crate::refresh::{RefreshOutcome, Trigger};
use crate::secret::Secret;
use crate::status::{AuthMethod, StatusReport};

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
}

#[derive(Debug, Clone)]
pub struct FailureOutcome {
    pub action: FailureAction,
    pub hint: Option<String>,
    /// The status afterwards, token included when usable.
    pub status: StatusReport,
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

impl AuthManager {
    pub async fn report_auth_failure(
        &self,
        request: RejectedRequest,
    ) -> Result<FailureOutcome, AuthError> {
        let rejection = assess(
            request.status,
            request.body.as_deref(),
            request.www_authenticate.as_deref(),
        );
        let view = self.sync()?;
        let outcome = |action, hint: &str, manager: &Self| -> Result<FailureOutcome, AuthError> {
            Ok(FailureOutcome {
                action,
                hint: Some(hint.to_owned()),
                status: manager.current_status(true)?,
            })
        };
        match rejection {
            Rejection::NotAuthFailure => {
                let hint = format!(
                    "status {} is not an authentication failure; nothing was refreshed: handle the error as it is",
                    request.status
                );
                return outcome(FailureAction::NotAuthFailure, &hint, self);
            }
            Rejection::InsufficientScope => {
                let hint = "the token lacks a scope this API needs (insufficient_scope); a refresh does not add scopes: configure the needed scopes and sign in again";
                return outcome(FailureAction::InsufficientScope, hint, self);
            }
            Rejection::AuthFailure => {}
        }
        let credentials = match view {
            View::Missing => {
                return outcome(
                    FailureAction::NeedsLogin,
                    "no credentials are stored: sign in",
                    self,
                );
            }
            View::Unreadable(reason) => {
                return Err(AuthError::Unreadable {
                    path: self.store.path().to_path_buf(),
                    reason,
                });
            }
            View::Present(credentials) => credentials,
        };
        if let Some(poison) = &credentials.poison {
            return outcome(FailureAction::NeedsLogin, &poison.message, self);
        }
        if credentials.method == AuthMethod::ApiKey {
            return outcome(FailureAction::ApiKeyRejected, API_KEY_HINT, self);
        }
        let current = credentials
            .bearer()
            .map(Secret::fingerprint)
            .unwrap_or_default();
        let rejected = request
            .rejected_token
            .as_ref()
            .map_or_else(|| current.clone(), Secret::fingerprint);
        if rejected != current {
            return outcome(
                FailureAction::AlreadyRotated,
                "the rejected token had already been replaced: retry with authToken",
                self,
            );
        }
        let result = self
            .refresh(Trigger::Rejected {
                access_fingerprint: rejected.clone(),
            })
            .await?;
        let status = self.current_status(true)?;
        let now_current = status.token.as_ref().map(Secret::fingerprint);
        let (action, hint) = match result {
            _ if now_current.as_ref().is_some_and(|fp| *fp != rejected) => (
                FailureAction::Refreshed,
                "a new token was obtained: retry with authToken".to_owned(),
            ),
            RefreshOutcome::Failed(failure) if failure.is_permanent() => {
                (FailureAction::NeedsLogin, failure.message)
            }
            RefreshOutcome::Failed(failure) => (FailureAction::RetryLater, failure.message),
            RefreshOutcome::BackingOff => (
                FailureAction::RetryLater,
                "a recent refresh failed transiently: retry after refreshError.retryAfterSecs"
                    .to_owned(),
            ),
            RefreshOutcome::CannotRefresh(reason) => (FailureAction::NeedsLogin, reason),
            RefreshOutcome::NotNeeded | RefreshOutcome::Adopted | RefreshOutcome::Refreshed => (
                FailureAction::NeedsLogin,
                "the token was rejected and no other token is available: sign in again".to_owned(),
            ),
        };
        Ok(FailureOutcome {
            action,
            hint: Some(hint),
            status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Rejection::*;

    /// (status, body, WWW-Authenticate, expected)
    type Case<'a> = (u16, Option<&'a str>, Option<&'a str>, Rejection);

    #[test]
    fn what_counts_as_an_auth_failure() {
        let cases: &[Case] = &[
            (
                200,
                None,
                Some("Bearer error=\"invalid_token\""),
                NotAuthFailure,
            ),
            (204, Some("invalid api key"), None, NotAuthFailure),
            (401, None, None, AuthFailure),
            (
                401,
                Some("<html>"),
                Some("Bearer realm=\"api\""),
                AuthFailure,
            ),
            (
                403,
                Some(r#"{"type":"error","error":{"type":"authentication_error","message":"bad"}}"#),
                None,
                AuthFailure,
            ),
            (
                403,
                Some(r#"{"code":"authentication_failed"}"#),
                None,
                AuthFailure,
            ),
            (403, Some("Invalid API key provided"), None, AuthFailure),
            (403, Some("Authentication failed"), None, AuthFailure),
            (
                403,
                Some("<html><h1>Access denied</h1> by the firewall</html>"),
                None,
                NotAuthFailure,
            ),
            (403, None, None, NotAuthFailure),
            (
                400,
                None,
                Some("Bearer error=\"invalid_token\", error_description=\"expired\""),
                AuthFailure,
            ),
            (
                403,
                None,
                Some("Bearer error=\"insufficient_scope\", scope=\"admin\""),
                InsufficientScope,
            ),
            (
                401,
                None,
                Some("Bearer error=\"insufficient_scope\""),
                InsufficientScope,
            ),
            (
                403,
                Some(r#"{"error":"insufficient_scope"}"#),
                None,
                InsufficientScope,
            ),
            (429, Some("rate limited"), None, NotAuthFailure),
            (500, Some("authentication_error"), None, NotAuthFailure),
            (404, None, None, NotAuthFailure),
        ];
        for &(status, body, challenge, expected) in cases {
            assert_eq!(
                assess(status, body, challenge),
                expected,
                "{status} {body:?} {challenge:?}"
            );
        }
    }
}
