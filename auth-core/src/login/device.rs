//! The device flow (RFC 8628): get a user code, then poll the token endpoint in the background
//! at the provider's interval (`slow_down` adds 5 s for good) until the user approves, denies,
//! or the code expires. Connection errors and 5xx back off and keep polling until expiry.
//!
//! What the provider says is bounded before it is used: its numbers are clamped
//! (docs/refresh-policy.md, bounds on provider answers), and the addresses shown to the user
//! must be https (http only on loopback).

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Url;
use serde::Deserialize;

use super::{CancelSignal, LoginStart, SignInTarget, exchange_failure};
use crate::error::AuthError;
use crate::provider::ProviderClient;
use crate::secret::Secret;
use crate::time;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 8628 §3.2: the interval when the provider names none.
const DEFAULT_INTERVAL: u64 = 5;
/// The provider's interval is kept within 1 s (more often would hammer it) and 60 s (a
/// sign-in that looks at the approval less than once a minute feels dead; no real provider
/// asks for more).
const INTERVAL_RANGE: (u64, u64) = (1, 60);
/// The provider's `expires_in` is kept within a minute (less leaves no time to type the code;
/// if the code really expires sooner, the provider's `expired_token` ends the flow) and an
/// hour (real providers give 5 to 30 minutes; a pending login is not kept for days).
const LIFETIME_RANGE: (u64, u64) = (60, 3600);
/// The longest wait between polls after repeated connection failures.
const MAX_FAILURE_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
struct DeviceAuthorization {
    device_code: String,
    user_code: String,
    #[serde(alias = "verification_url")]
    verification_uri: String,
    #[serde(default)]
    verification_uri_complete: Option<String>,
    expires_in: Seconds,
    #[serde(default)]
    interval: Option<Seconds>,
}

/// A number of seconds as a provider wrote it: any JSON number (negative, fractional or
/// beyond `u64` included), or a string holding one, as some providers send. Clamped before use.
#[derive(Deserialize)]
#[serde(untagged)]
enum Seconds {
    Number(f64),
    Text(String),
}

impl Seconds {
    fn value(&self) -> Option<f64> {
        match self {
            Self::Number(n) => Some(*n),
            Self::Text(text) => text.trim().parse().ok().filter(|n: &f64| !n.is_nan()),
        }
    }
}

/// `value` rounded up into `min..=max`. Never overflows or panics, whatever the provider wrote.
fn clamp_secs(value: f64, (min, max): (u64, u64)) -> u64 {
    if value.is_nan() {
        return min;
    }
    // `as` saturates; the clamp happens in integers so that no bound is rounded.
    (value.ceil() as u64).clamp(min, max)
}

/// The poll interval in seconds: the provider's, clamped, or RFC 8628's default.
fn poll_interval(interval: Option<&Seconds>) -> u64 {
    clamp_secs(
        interval
            .and_then(Seconds::value)
            .unwrap_or(DEFAULT_INTERVAL as f64),
        INTERVAL_RANGE,
    )
}

/// Refuses an address to show the user that is not https (or http on a loopback host): a
/// provider must not make a client open `javascript:`, `file:` or plain-http pages.
fn check_shown_uri(field: &str, value: &str) -> Result<(), String> {
    let url = Url::parse(value).map_err(|_| format!("the provider's {field} is not a URL"))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if crate::config::is_loopback(&url) => Ok(()),
        _ => Err(format!(
            "the provider's {field} does not use https (only https, or http on a loopback host, is shown to the user)"
        )),
    }
}

/// Starts a device-code sign-in of `client_id` requesting `scopes`.
pub(crate) async fn start(
    target: Arc<impl SignInTarget>,
    client: Arc<ProviderClient>,
    client_id: String,
    scopes: Vec<String>,
) -> Result<LoginStart, AuthError> {
    let endpoints = client.endpoints().await.map_err(AuthError::from)?;
    let (Some(device_endpoint), Some(token_endpoint)) =
        (endpoints.device_authorization, endpoints.token)
    else {
        return Err(AuthError::ProviderUnavailable(
            "the provider has no device authorization endpoint: set device_authorization_endpoint in config.toml, or sign in in a browser instead".into(),
        ));
    };
    let config = client.config();
    let scope = scopes.join(" ");
    let mut form = vec![("client_id", client_id.as_str())];
    if !scope.is_empty() {
        form.push(("scope", scope.as_str()));
    }
    if let Some(resource) = &config.resource {
        form.push(("resource", resource.as_str()));
    }
    let unavailable = |why: String| {
        AuthError::ProviderUnavailable(format!("cannot start the device sign-in: {why}"))
    };
    let (status, _, body) = client
        .post_form(&device_endpoint, &form)
        .await
        .map_err(|f| unavailable(crate::provider::describe_transport(f).to_owned()))?;
    if !(200..300).contains(&status) {
        let code = crate::provider::classify::classify_token_error(status, None, &body).code;
        return Err(unavailable(match code {
            Some(code) => {
                format!("the provider answered {status} ({code}); check client_id and scopes")
            }
            None => format!("the provider answered {status}"),
        }));
    }
    let grant = parse_grant(&body).map_err(unavailable)?;
    // Only a usable answer cancels the login still pending.
    let (login_id, cancel) = target.register(None);
    let poll = Poll {
        client: client.clone(),
        client_id,
        token_endpoint,
        device_code: grant.device_code,
        interval: Duration::from_secs(grant.interval),
        deadline: Instant::now() + Duration::from_secs(grant.lifetime),
        scopes,
    };
    let id = login_id.clone();
    tokio::spawn(async move {
        let result = poll.run(&*target, cancel).await;
        target.finish(&id, result);
    });
    Ok(LoginStart::DeviceCode {
        login_id,
        verification_uri: grant.verification_uri,
        verification_uri_complete: grant.verification_uri_complete,
        user_code: grant.user_code,
        expires_at: time::now_unix() + grant.lifetime as i64,
        interval_secs: grant.interval,
    })
}

/// A device authorization response, checked and with its numbers clamped.
pub(crate) struct Grant {
    pub device_code: Secret,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    /// Seconds, within [`LIFETIME_RANGE`].
    pub lifetime: u64,
    /// Seconds, within [`INTERVAL_RANGE`].
    pub interval: u64,
}

/// Parses a 2xx device authorization body; the error says what is wrong with it.
pub(crate) fn parse_grant(body: &[u8]) -> Result<Grant, String> {
    let grant: DeviceAuthorization = serde_json::from_slice(body)
        .map_err(|_| "the provider's answer is not a device authorization response".to_owned())?;
    let Some(lifetime) = grant.expires_in.value() else {
        return Err(
            "the provider's device authorization response has no numeric expires_in".to_owned(),
        );
    };
    check_shown_uri("verification_uri", &grant.verification_uri)?;
    if let Some(complete) = &grant.verification_uri_complete {
        check_shown_uri("verification_uri_complete", complete)?;
    }
    Ok(Grant {
        interval: poll_interval(grant.interval.as_ref()),
        lifetime: clamp_secs(lifetime, LIFETIME_RANGE),
        device_code: Secret::new(grant.device_code),
        user_code: grant.user_code,
        verification_uri: grant.verification_uri,
        verification_uri_complete: grant.verification_uri_complete,
    })
}

struct Poll {
    client: Arc<ProviderClient>,
    client_id: String,
    token_endpoint: Url,
    device_code: Secret,
    interval: Duration,
    deadline: Instant,
    /// What the device authorization request asked for.
    scopes: Vec<String>,
}

impl Poll {
    async fn run(
        mut self,
        target: &impl SignInTarget,
        mut cancel: CancelSignal,
    ) -> Result<(), String> {
        let expired =
            || Err("the code expired before the sign-in was approved: start it again".to_owned());
        let mut wait = self.interval;
        loop {
            tokio::select! {
                reason = &mut cancel => return Err(reason.unwrap_or("the sign-in was canceled").to_owned()),
                () = tokio::time::sleep_until((Instant::now() + wait).min(self.deadline).into()) => {}
            }
            if Instant::now() >= self.deadline {
                return expired();
            }
            let form = [
                ("grant_type", DEVICE_GRANT),
                ("device_code", self.device_code.expose()),
                ("client_id", self.client_id.as_str()),
            ];
            let answer = tokio::select! {
                reason = &mut cancel => return Err(reason.unwrap_or("the sign-in was canceled").to_owned()),
                answer = self.client.token_request(&self.token_endpoint, &form) => answer,
            };
            let failure = match answer {
                Ok(tokens) => {
                    return target
                        .store_tokens(&self.client, &self.client_id, tokens, &self.scopes)
                        .await;
                }
                Err(failure) => failure,
            };
            wait = match failure.code.as_deref() {
                Some("authorization_pending") => self.interval,
                Some("slow_down") => {
                    self.interval += Duration::from_secs(5);
                    self.interval
                }
                Some("access_denied") => return Err("the sign-in was denied".to_owned()),
                Some("expired_token") => return expired(),
                _ if !failure.is_permanent() => {
                    tracing::debug!(message = %failure.message, "device poll failed; backing off");
                    (wait * 2).clamp(self.interval, MAX_FAILURE_INTERVAL.max(self.interval))
                }
                _ => return Err(exchange_failure(&failure)),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seconds(json: &str) -> Seconds {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn provider_numbers_are_clamped_never_overflow() {
        let interval = |json: &str| poll_interval(Some(&seconds(json)));
        let lifetime = |json: &str| clamp_secs(seconds(json).value().unwrap(), LIFETIME_RANGE);
        let cases: [(&str, u64, u64); 12] = [
            ("5", 5, 60),
            ("1800", 60, 1800),
            ("18446744073709551615", 60, 3600),
            ("18446744073709551616", 60, 3600),
            ("1e300", 60, 3600),
            ("0", 1, 60),
            ("-1", 1, 60),
            ("-9223372036854775808", 1, 60),
            ("1.2", 2, 60),
            ("0.001", 1, 60),
            ("\"10\"", 10, 60),
            ("\"1e999\"", 60, 3600),
        ];
        for (json, want_interval, want_lifetime) in cases {
            assert_eq!(interval(json), want_interval, "interval {json}");
            assert_eq!(lifetime(json), want_lifetime, "expires_in {json}");
        }
        assert_eq!(poll_interval(None), DEFAULT_INTERVAL);
        assert_eq!(interval("\"soon\""), DEFAULT_INTERVAL);
        assert_eq!(interval("\"NaN\""), DEFAULT_INTERVAL);
    }

    #[test]
    fn only_https_or_loopback_http_addresses_are_shown() {
        for ok in [
            "https://example.com/device",
            "http://127.0.0.1:8080/device",
            "http://[::1]/device",
            "http://localhost/device?user_code=A",
        ] {
            assert_eq!(check_shown_uri("verification_uri", ok), Ok(()), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "http://example.com/device",
            "file:///etc/passwd",
            "data:text/html,hi",
            "ftp://example.com/",
            "/device",
            "",
        ] {
            let error = check_shown_uri("verification_uri", bad).unwrap_err();
            assert!(error.contains("verification_uri"), "{bad}: {error}");
        }
    }
}
