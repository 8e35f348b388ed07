//! `reportAuthFailure` (docs/protocol.md): was an API's rejection an authentication failure,
//! and what should the client be told? Detection is one pure function; what to do about an
//! auth failure is decided by `policy` (poisoned → API key → already rotated → the report
//! bound → refresh) and carried out by the manager.

use crate::credential::describe::StatusReport;
use crate::login::provider_scopes;
use crate::secret::Secret;

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

/// The scopes an `insufficient_scope` challenge asks for (RFC 6750 §3: `scope="a b"`), in
/// order and without repeats, bounded as [`provider_scopes`] bounds them (a cut is logged);
/// none when it names none.
pub fn challenge_scopes(www_authenticate: &str) -> Vec<String> {
    let scope = challenge_param(www_authenticate, "scope").unwrap_or_default();
    provider_scopes(scope.split_ascii_whitespace(), "WWW-Authenticate scope")
}

/// The first auth-param `name` of a `WWW-Authenticate` value (RFC 9110 §11.6.1: challenges of
/// `scheme param=token, param="quoted \"string\""`, several separated by commas), unquoted.
/// Scheme names and token68 values are skipped. Pure.
fn challenge_param(header: &str, name: &str) -> Option<String> {
    let mut rest = header;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        if rest.is_empty() {
            return None;
        }
        let end = rest
            .find(|c: char| c == '=' || c == ',' || c.is_ascii_whitespace())
            .unwrap_or(rest.len());
        let key = &rest[..end];
        let after = rest[end..].trim_start_matches([' ', '\t']);
        let Some(value) = after.strip_prefix('=') else {
            // A scheme name (or a token68): the next word is a parameter or another scheme.
            rest = &rest[end.max(1).min(rest.len())..];
            continue;
        };
        let value = value.trim_start_matches([' ', '\t']);
        let (parsed, remaining) = match value.strip_prefix('"') {
            Some(quoted) => unquote(quoted),
            None => {
                let end = value
                    .find(|c: char| c == ',' || c.is_ascii_whitespace())
                    .unwrap_or(value.len());
                (value[..end].to_owned(), &value[end..])
            }
        };
        if !key.is_empty() && key.eq_ignore_ascii_case(name) {
            return Some(parsed);
        }
        rest = remaining;
    }
}

/// A quoted-string's content (after its opening quote) and what follows its closing quote.
fn unquote(quoted: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return (value, &quoted[at + 1..]),
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            c => value.push(c),
        }
    }
    (value, "")
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
     does not add scopes: sign in again with the needed scopes in login's \"scopes\" (the scopes already granted are \
     kept), or configure them";

/// The hint of an `insufficientScope` answer whose challenge named the scopes.
pub(crate) fn step_up_hint(scopes: &[String]) -> String {
    format!(
        "the token lacks a scope this API needs (insufficient_scope; it asks for: {}); a refresh does not add \
         scopes: sign in again with login {{\"type\":\"oauth\",\"scopes\":requiredScopes}} (or \"deviceCode\"); the \
         scopes already granted are kept",
        scopes.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use Rejection::*;

    /// (status, body, WWW-Authenticate, expected)
    type Case<'a> = (u16, Option<&'a str>, Option<&'a str>, Rejection);

    #[test]
    fn the_scopes_of_an_insufficient_scope_challenge() {
        let cases: &[(&str, &[&str])] = &[
            (
                r#"Bearer error="insufficient_scope", scope="files.read files.write""#,
                &["files.read", "files.write"],
            ),
            (
                r#"Bearer realm="api",error="insufficient_scope",scope="a""#,
                &["a"],
            ),
            ("Bearer error=insufficient_scope, scope=admin", &["admin"]),
            (
                r#"Bearer scope = "a  b a", error="insufficient_scope""#,
                &["a", "b"],
            ),
            (
                r#"Bearer error="insufficient_scope", error_description="needs scope=x""#,
                &[],
            ),
            (
                r#"Bearer error="insufficient_scope", resource_metadata="https://r/.well-known/x?scope=no""#,
                &[],
            ),
            (
                r#"Bearer error_description="a \"quoted\" word", scope="q""#,
                &["q"],
            ),
            (
                r#"Basic realm="x", Bearer error="insufficient_scope", scope="mcp:tools""#,
                &["mcp:tools"],
            ),
            ("Bearer error=\"insufficient_scope\"", &[]),
            ("", &[]),
            ("Negotiate abc==, Bearer scope=\"z\"", &["z"]),
            ("Bearer scope=\"unterminated", &["unterminated"]),
            ("===,, ,scope", &[]),
        ];
        for (challenge, expected) in cases {
            assert_eq!(challenge_scopes(challenge), *expected, "{challenge}");
        }
    }

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
