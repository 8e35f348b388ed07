//! `reportAuthFailure` (docs/protocol.md): was an API's rejection an authentication failure,
//! and what should the client be told? Detection is one pure function; what to do about an
//! auth failure is decided by `policy` (poisoned → API key → already rotated → the report
//! bound → refresh) and carried out by the manager.

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

pub(crate) const API_KEY_HINT: &str = "the API rejected the stored API key. Likely causes: the key was revoked or expired; it is \
     another kind of key or token than this API accepts; it belongs to another account, organization, project or \
     region. Sign in with a valid key";

pub(crate) const DID_NOT_HELP_HINT: &str = "the API rejected a token that a refresh obtained less than a minute ago \
     because of an earlier report, so another refresh would not help and none was made. Likely causes: the token is \
     for another audience (the API expects another `resource` or audience), a scope the API needs is missing, the \
     account has no access to this API, or the clocks of this machine and the API disagree. Fix the cause, or sign in \
     again with the right scopes";

pub(crate) const INSUFFICIENT_SCOPE_HINT: &str = "the token lacks a scope this API needs (insufficient_scope); a refresh \
     does not add scopes: configure the needed scopes and sign in again";

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
