//! Is a failed refresh worth retrying? One pure function from what the token endpoint
//! answered (or how the request failed) to `transient` / `permanent`, exactly as docs/refresh-policy.md's
//! table says. A WAF's HTML 403 or a 429 must never sign the user out; an RFC 6749 error code
//! on a 4xx always does.

use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::network::TlsProblem;
use crate::status::RefreshErrorKind;

/// The `error` codes registered for OAuth 2.0 (RFC 6749, 6750, 7591, 8628, 8693, 8707, 9126,
/// 9396, 9449, OpenID Connect). Any other value is never stored or shown verbatim: a provider
/// (or a proxy) may echo a token there.
const REGISTERED_ERROR_CODES: &[&str] = &[
    "access_denied",
    "account_selection_required",
    "authorization_pending",
    "consent_required",
    "expired_token",
    "insufficient_scope",
    "interaction_required",
    "invalid_authorization_details",
    "invalid_client",
    "invalid_client_metadata",
    "invalid_dpop_proof",
    "invalid_grant",
    "invalid_redirect_uri",
    "invalid_request",
    "invalid_request_object",
    "invalid_request_uri",
    "invalid_scope",
    "invalid_software_statement",
    "invalid_target",
    "invalid_token",
    "login_required",
    "registration_not_supported",
    "request_not_supported",
    "request_uri_not_supported",
    "server_error",
    "slow_down",
    "temporarily_unavailable",
    "unapproved_software_statement",
    "unauthorized_client",
    "unsupported_grant_type",
    "unsupported_response_type",
    "unsupported_token_type",
    "use_dpop_nonce",
];

/// Why a refresh failed, ready for `refreshError` and the backoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshFailure {
    pub kind: RefreshErrorKind,
    /// The RFC 6749 `error` code, when the provider sent one.
    pub code: Option<String>,
    /// One line a person can act on. Never contains a token.
    pub message: String,
    /// The provider's `Retry-After` (the backoff policy caps it).
    pub retry_after: Option<Duration>,
}

impl RefreshFailure {
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            kind: RefreshErrorKind::Transient,
            code: None,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn is_permanent(&self) -> bool {
        self.kind == RefreshErrorKind::Permanent
    }
}

/// How the request to the token endpoint failed before any answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportFailure {
    Connect,
    Timeout,
    /// The connection broke mid-answer, or another I/O failure.
    Other,
    /// The answer was larger than the server reads.
    TooLarge,
    /// The TLS handshake failed (an unknown CA, an expired certificate, ...).
    Tls(TlsProblem),
}

pub fn classify_transport_failure(failure: TransportFailure) -> RefreshFailure {
    RefreshFailure::transient(match failure {
        TransportFailure::Connect => {
            "cannot reach the provider's token endpoint (connection failed); will retry"
        }
        TransportFailure::Timeout => {
            "the provider's token endpoint did not answer in time; will retry"
        }
        TransportFailure::Other => {
            "the connection to the provider's token endpoint broke; will retry"
        }
        TransportFailure::TooLarge => {
            "the provider's token endpoint answered with more than 1 MiB; will retry"
        }
        TransportFailure::Tls(problem) => {
            return RefreshFailure::transient(format!(
                "cannot reach the provider's token endpoint. {}; will retry",
                problem.message()
            ));
        }
    })
}

/// Classifies a token endpoint answer that was not a usable token response.
/// `retry_after` is the raw `Retry-After` header; `body` the raw body.
pub fn classify_token_error(status: u16, retry_after: Option<&str>, body: &[u8]) -> RefreshFailure {
    let (code, unregistered) = match oauth_error(body) {
        OauthError::Registered(code) => (Some(code), None),
        OauthError::Unregistered(fingerprint) => (None, Some(fingerprint)),
        OauthError::None => (None, None),
    };
    let retry_after = retry_after.and_then(parse_retry_after);
    let transient = |message: String| RefreshFailure {
        kind: RefreshErrorKind::Transient,
        code: code.clone(),
        message,
        retry_after,
    };
    match status {
        200..=299 => transient(format!(
            "the provider answered {status} but not with a valid token response (maybe a proxy or captive portal); will retry"
        )),
        429 => transient(
            "the provider is rate limiting refreshes (429); will retry after the wait it asked for"
                .into(),
        ),
        500..=599 => transient(format!(
            "the provider's token endpoint failed ({status}); will retry"
        )),
        400..=499 => match code.as_deref() {
            Some("temporarily_unavailable" | "server_error") => transient(format!(
                "the provider is temporarily unable to refresh ({status}); will retry"
            )),
            Some(code) => RefreshFailure {
                kind: RefreshErrorKind::Permanent,
                code: Some(code.to_owned()),
                message: permanent_message(code),
                retry_after: None,
            },
            None => match &unregistered {
                Some(fingerprint) => transient(format!(
                    "the token endpoint answered {status} with an unregistered error (sha256 {fingerprint}); will retry"
                )),
                None => transient(format!(
                    "the token endpoint answered {status} without an OAuth error (likely a firewall, CDN or proxy page); will retry"
                )),
            },
        },
        _ => transient(format!(
            "the token endpoint answered an unexpected status {status}; will retry"
        )),
    }
}

/// What the user (or administrator) must do after a permanent failure with `code`.
pub fn permanent_message(code: &str) -> String {
    match code {
        "invalid_grant" => "the sign-in has expired or was revoked (invalid_grant): sign in again".into(),
        "invalid_client" | "unauthorized_client" => format!(
            "the provider rejected this app's client registration ({code}): signing in again will not help; check client_id and the app's registration with the provider"
        ),
        "invalid_scope" => {
            "the configured scopes are not allowed (invalid_scope): fix `scopes` in config.toml (or --scope), then sign in again".into()
        }
        other => format!("the provider refused to refresh the sign-in ({other}): sign in again"),
    }
}

/// What a JSON body's `error` member says.
#[derive(Debug, PartialEq, Eq)]
enum OauthError {
    /// A registered code.
    Registered(String),
    /// Another string, known only by the first 12 hex digits of its SHA-256.
    Unregistered(String),
    /// No body, not JSON, or no string `error`.
    None,
}

fn oauth_error(body: &[u8]) -> OauthError {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: String,
    }
    let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) else {
        return OauthError::None;
    };
    if REGISTERED_ERROR_CODES.contains(&parsed.error.as_str()) {
        return OauthError::Registered(parsed.error);
    }
    let digest = Sha256::digest(parsed.error.as_bytes());
    OauthError::Unregistered(digest[..6].iter().map(|b| format!("{b:02x}")).collect())
}

/// The registered OAuth `error` code of a JSON body, if any (device and code flows).
pub fn registered_error_code(body: &[u8]) -> Option<String> {
    match oauth_error(body) {
        OauthError::Registered(code) => Some(code),
        _ => None,
    }
}

/// `Retry-After`: delay-seconds or an HTTP-date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use RefreshErrorKind::{Permanent, Transient};

    /// (status, Retry-After, body, expected kind, expected code)
    type Case<'a> = (
        u16,
        Option<&'a str>,
        &'a [u8],
        RefreshErrorKind,
        Option<&'a str>,
    );

    #[test]
    fn the_spec_table() {
        let html = b"<html><body>Access denied</body></html>".as_slice();
        let cases: &[Case] = &[
            (500, None, b"", Transient, None),
            (502, None, html, Transient, None),
            (
                503,
                None,
                br#"{"error":"temporarily_unavailable"}"#,
                Transient,
                Some("temporarily_unavailable"),
            ),
            (429, None, b"", Transient, None),
            (
                429,
                Some("7"),
                br#"{"error":"slow_down"}"#,
                Transient,
                Some("slow_down"),
            ),
            (
                400,
                None,
                br#"{"error":"invalid_grant","error_description":"gone"}"#,
                Permanent,
                Some("invalid_grant"),
            ),
            (
                401,
                None,
                br#"{"error":"invalid_client"}"#,
                Permanent,
                Some("invalid_client"),
            ),
            (
                400,
                None,
                br#"{"error":"unauthorized_client"}"#,
                Permanent,
                Some("unauthorized_client"),
            ),
            (
                400,
                None,
                br#"{"error":"unsupported_grant_type"}"#,
                Permanent,
                Some("unsupported_grant_type"),
            ),
            (
                400,
                None,
                br#"{"error":"invalid_scope"}"#,
                Permanent,
                Some("invalid_scope"),
            ),
            (
                400,
                None,
                br#"{"error":"invalid_request"}"#,
                Permanent,
                Some("invalid_request"),
            ),
            (
                400,
                None,
                br#"{"error":"temporarily_unavailable"}"#,
                Transient,
                Some("temporarily_unavailable"),
            ),
            (
                400,
                None,
                br#"{"error":"server_error"}"#,
                Transient,
                Some("server_error"),
            ),
            (403, None, html, Transient, None),
            (403, None, b"", Transient, None),
            (400, None, br#"{"message":"bad request"}"#, Transient, None),
            (
                400,
                None,
                br#"{"error":"rt-echoed-secret"}"#,
                Transient,
                None,
            ),
            (403, None, br#"{"error":"Forbidden"}"#, Transient, None),
            (
                400,
                None,
                br#"{"error":{"nested":"object"}}"#,
                Transient,
                None,
            ),
            (404, None, b"not found", Transient, None),
            (200, None, html, Transient, None),
            (200, None, br#"{"token_type":"Bearer"}"#, Transient, None),
        ];
        for &(status, retry_after, body, kind, code) in cases {
            let failure = classify_token_error(status, retry_after, body);
            assert_eq!(
                failure.kind,
                kind,
                "{status} {}",
                String::from_utf8_lossy(body)
            );
            assert_eq!(
                failure.code.as_deref(),
                code,
                "{status} {}",
                String::from_utf8_lossy(body)
            );
            assert!(!failure.message.is_empty());
        }
    }

    #[test]
    fn transport_failures_are_transient() {
        for failure in [
            TransportFailure::Connect,
            TransportFailure::Timeout,
            TransportFailure::Other,
            TransportFailure::TooLarge,
            TransportFailure::Tls(TlsProblem::UnknownIssuer),
        ] {
            assert_eq!(classify_transport_failure(failure).kind, Transient);
        }
        let tls = classify_transport_failure(TransportFailure::Tls(TlsProblem::UnknownIssuer));
        assert!(tls.message.contains("ca_file"), "{}", tls.message);
    }

    #[test]
    fn an_unregistered_error_is_shown_by_fingerprint_only() {
        let failure = classify_token_error(400, None, br#"{"error":"rt-echoed-secret"}"#);
        assert!(!failure.message.contains("echoed"), "{}", failure.message);
        assert!(failure.message.contains("unregistered error (sha256 "));
        assert_eq!(failure.code, None);
    }

    #[test]
    fn retry_after_is_parsed() {
        assert_eq!(
            classify_token_error(429, Some("12"), b"").retry_after,
            Some(Duration::from_secs(12))
        );
        assert_eq!(
            classify_token_error(429, Some("100000"), b"").retry_after,
            Some(Duration::from_secs(100_000))
        );
        assert_eq!(
            classify_token_error(429, Some("soon"), b"").retry_after,
            None
        );
        let in_a_minute = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(61));
        let parsed = classify_token_error(503, Some(&in_a_minute), b"")
            .retry_after
            .unwrap();
        assert!(
            parsed <= Duration::from_secs(61) && parsed >= Duration::from_secs(55),
            "{parsed:?}"
        );
    }

    #[test]
    fn messages_say_what_to_do() {
        assert!(permanent_message("invalid_grant").contains("sign in again"));
        assert!(permanent_message("invalid_client").contains("will not help"));
        assert!(permanent_message("unauthorized_client").contains("will not help"));
        assert!(permanent_message("invalid_scope").contains("scopes"));
    }
}
