//! Is a failed refresh worth retrying? One pure function from what the token endpoint
//! answered (or how the request failed) to `transient` / `permanent`, exactly as SPEC §6's
//! table says. A WAF's HTML 403 or a 429 must never sign the user out; an RFC 6749 error code
//! on a 4xx always does.

use std::time::{Duration, SystemTime};

use crate::status::RefreshErrorKind;

/// The longest wait any failure imposes, `Retry-After` included.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Why a refresh failed, ready for `refreshError` and the backoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshFailure {
    pub kind: RefreshErrorKind,
    /// The RFC 6749 `error` code, when the provider sent one.
    pub code: Option<String>,
    /// One line a person can act on. Never contains a token.
    pub message: String,
    /// The provider's `Retry-After`, capped at [`MAX_BACKOFF`].
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
    })
}

/// Classifies a token endpoint answer that was not a usable token response.
/// `retry_after` is the raw `Retry-After` header; `body` the raw body.
pub fn classify_token_error(status: u16, retry_after: Option<&str>, body: &[u8]) -> RefreshFailure {
    let code = oauth_error_code(body);
    let retry_after = retry_after
        .and_then(parse_retry_after)
        .map(|d| d.min(MAX_BACKOFF));
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
            None => transient(format!(
                "the token endpoint answered {status} without an OAuth error (likely a firewall, CDN or proxy page); will retry"
            )),
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

/// The RFC 6749 `error` member of a JSON body, if the body is a JSON object with a plausible
/// code (`[a-z_]+`, as RFC 6749 §5.2 allows only printable ASCII).
fn oauth_error_code(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: String,
    }
    let parsed: ErrorBody = serde_json::from_slice(body).ok()?;
    let plausible = !parsed.error.is_empty()
        && parsed.error.len() <= 64
        && parsed
            .error
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    plausible.then_some(parsed.error)
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
        ] {
            assert_eq!(classify_transport_failure(failure).kind, Transient);
        }
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        assert_eq!(
            classify_token_error(429, Some("12"), b"").retry_after,
            Some(Duration::from_secs(12))
        );
        assert_eq!(
            classify_token_error(429, Some("100000"), b"").retry_after,
            Some(MAX_BACKOFF)
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
