//! The token endpoint: one request of any grant (the refresh grant here; the code exchange and
//! the device grant build their forms in `login`), retried within the attempt as `policy`
//! says, its failures classified (see [`classify`](super::classify)), and the strict parsing
//! of a token response. Tokens never appear in errors or logs.

use std::time::Instant;

use reqwest::Url;
use serde::Deserialize;

use super::ProviderClient;
use super::classify::{RefreshFailure, classify_token_error, classify_transport_failure};
use super::text::MAX_TOKEN_BYTES;
use crate::policy;
use crate::secret::Secret;

/// Lifetimes a provider states (`expires_in`) are clamped to this: a token said to live for
/// centuries is treated as living a year, and no expiry arithmetic can overflow.
pub const MAX_EXPIRES_IN_SECS: i64 = 366 * 24 * 3600;

/// A successful token response (RFC 6749 §5.1).
#[derive(Clone)]
pub struct TokenResponse {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    pub id_token: Option<Secret>,
    pub token_type: Option<String>,
    pub scope: Option<String>,
    pub expires_in: Option<i64>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("refresh_token", &self.refresh_token.is_some())
            .field("id_token", &self.id_token.is_some())
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// A token response and when the request that obtained it was sent. The provider counts
/// `expires_in` from some moment after that (when it issued the token): counted from the send
/// time, the stored expiry is never later than the provider's, however long the answer took to
/// arrive (docs/refresh-policy.md, the refresh).
#[derive(Debug, Clone)]
pub struct Issued {
    pub tokens: TokenResponse,
    /// Unix milliseconds when the request that was answered was sent.
    pub sent_at_ms: i64,
}

impl Issued {
    /// The send time in whole unix seconds, rounded down (never later than the send).
    pub fn sent_at(&self) -> i64 {
        self.sent_at_ms.div_euclid(1000)
    }
}

impl RawTokenResponse {
    fn oversized(&self) -> bool {
        [
            Some(&self.access_token),
            self.refresh_token.as_ref(),
            self.id_token.as_ref(),
        ]
        .into_iter()
        .flatten()
        .any(|token| token.len() > MAX_TOKEN_BYTES)
    }
}

/// The body is a token response with a token longer than [`MAX_TOKEN_BYTES`] (stored, it
/// could push `auth.json` past what any process reads).
pub fn holds_oversized_token(body: &[u8]) -> bool {
    serde_json::from_slice::<RawTokenResponse>(body).is_ok_and(|raw| raw.oversized())
}

#[derive(Deserialize)]
struct RawTokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Number>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

/// Parses a 2xx body; `None` when it is not a usable token response (a token longer than
/// [`MAX_TOKEN_BYTES`] makes it unusable: see [`holds_oversized_token`]).
pub fn parse_token_response(body: &[u8]) -> Option<TokenResponse> {
    let raw: RawTokenResponse = serde_json::from_slice(body).ok()?;
    if raw.access_token.trim().is_empty() || raw.oversized() {
        return None;
    }
    if raw
        .token_type
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("bearer") && !t.eq_ignore_ascii_case("dpop"))
    {
        return None;
    }
    // Whole seconds, clamped; `as` saturates a huge float, and a u64 beyond i64 clamps too.
    let expires_in = match raw.expires_in {
        None => None,
        Some(n) => Some(
            n.as_i64()
                .or_else(|| n.as_u64().map(|_| i64::MAX))
                .or_else(|| n.as_f64().map(|f| f as i64))
                .filter(|&s| s >= 0)?
                .min(MAX_EXPIRES_IN_SECS),
        ),
    };
    let non_empty = |s: Option<String>| s.filter(|s| !s.trim().is_empty()).map(Secret::new);
    Some(TokenResponse {
        access_token: Secret::new(raw.access_token),
        refresh_token: non_empty(raw.refresh_token),
        id_token: non_empty(raw.id_token),
        token_type: raw.token_type,
        scope: raw.scope,
        expires_in,
    })
}

impl ProviderClient {
    /// One refresh attempt: a form POST of the refresh grant, retrying connection errors and
    /// 5xx at most twice within 2 s.
    pub async fn refresh(
        &self,
        refresh_token: &Secret,
        client_id: &str,
    ) -> Result<Issued, RefreshFailure> {
        let endpoint = self
            .token_endpoint()
            .await
            .map_err(|error| RefreshFailure::transient(format!("{error}; will retry")))?;
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
            ("client_id", client_id),
        ];
        if let Some(resource) = &self.config.resource {
            form.push(("resource", resource.as_str()));
        }
        self.token_request(&endpoint, &form).await
    }

    /// POSTs `form` to the token endpoint and classifies the outcome. Tokens come with the
    /// time their request was sent (of the try that was answered), from which their expiry
    /// counts.
    pub async fn token_request(
        &self,
        endpoint: &Url,
        form: &[(&str, &str)],
    ) -> Result<Issued, RefreshFailure> {
        let started = Instant::now();
        let mut retries = 0;
        loop {
            let sent_at_ms = crate::time::now_ms();
            // Only 5xx and transport failures are worth another try within the attempt.
            let (failure, retryable) = match self.post_form(endpoint, form).await {
                Ok((status, retry_after, body)) if (200..300).contains(&status) => {
                    match parse_token_response(&body) {
                        Some(tokens) => return Ok(Issued { tokens, sent_at_ms }),
                        None if holds_oversized_token(&body) => (
                            RefreshFailure::transient(format!(
                                "the provider's token endpoint answered with a token longer than {} KiB, more than this server stores; will retry",
                                MAX_TOKEN_BYTES / 1024
                            )),
                            false,
                        ),
                        None => (
                            classify_token_error(status, retry_after.as_deref(), &body),
                            false,
                        ),
                    }
                }
                Ok((status, retry_after, body)) => (
                    classify_token_error(status, retry_after.as_deref(), &body),
                    status >= 500,
                ),
                Err(transport) => (classify_transport_failure(transport), true),
            };
            let retryable = retryable && failure.retry_after.is_none();
            let Some(delay) = policy::retry_within_attempt(retryable, retries, started.elapsed())
            else {
                return Err(failure);
            };
            retries += 1;
            tracing::debug!(
                retries,
                "token endpoint failed; retrying within the attempt"
            );
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_send_time_rounds_down_to_whole_seconds() {
        let issued = |sent_at_ms| Issued {
            tokens: parse_token_response(br#"{"access_token":"a"}"#).unwrap(),
            sent_at_ms,
        };
        for (ms, secs) in [
            (1_999, 1),
            (2_000, 2),
            (0, 0),
            (-1, -1),
            (i64::MAX, i64::MAX / 1000),
        ] {
            assert_eq!(issued(ms).sent_at(), secs, "{ms} ms");
        }
    }

    #[test]
    fn oversized_tokens_are_refused() {
        let at = "a".repeat(MAX_TOKEN_BYTES + 1);
        let body = format!(r#"{{"access_token":"{at}"}}"#);
        assert!(parse_token_response(body.as_bytes()).is_none());
        assert!(holds_oversized_token(body.as_bytes()));
        let rt = format!(r#"{{"access_token":"at","refresh_token":"{at}"}}"#);
        assert!(parse_token_response(rt.as_bytes()).is_none());
        let fits = format!(r#"{{"access_token":"{}"}}"#, &at[1..]);
        assert!(parse_token_response(fits.as_bytes()).is_some());
        assert!(!holds_oversized_token(fits.as_bytes()));
    }

    #[test]
    fn token_responses_are_parsed_strictly() {
        let ok = parse_token_response(br#"{"access_token":"at","token_type":"bearer","expires_in":3600,"refresh_token":"rt","scope":"a b"}"#).unwrap();
        assert_eq!(
            (ok.access_token.expose(), ok.expires_in, ok.scope.as_deref()),
            ("at", Some(3600), Some("a b"))
        );
        assert_eq!(
            parse_token_response(br#"{"access_token":"at","expires_in":59.9}"#)
                .unwrap()
                .expires_in,
            Some(59)
        );
        for bad in [
            &b"<html>"[..],
            br#"{"token_type":"Bearer"}"#,
            br#"{"access_token":""}"#,
            br#"{"access_token":5}"#,
            br#"{"access_token":"at","token_type":"mac"}"#,
            br#"{"access_token":"at","expires_in":-1}"#,
            br#"{"access_token":"at","expires_in":"soon"}"#,
        ] {
            assert!(
                parse_token_response(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn debug_hides_tokens() {
        let tokens =
            parse_token_response(br#"{"access_token":"at-secret","refresh_token":"rt-secret"}"#)
                .unwrap();
        let shown = format!("{tokens:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
