//! The device flow (RFC 8628): get a user code, then poll the token endpoint in the background
//! at the provider's interval (`slow_down` adds 5 s for good) until the user approves, denies,
//! or the code expires. Connection errors and 5xx back off and keep polling until expiry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Url;
use serde::Deserialize;

use super::{CancelSignal, LoginStart, exchange_failure};
use crate::error::AuthError;
use crate::manager::AuthManager;
use crate::provider::ProviderClient;
use crate::secret::Secret;
use crate::time;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 8628 §3.2: the interval when the provider names none.
const DEFAULT_INTERVAL: u64 = 5;
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
    expires_in: u64,
    #[serde(default)]
    interval: Option<u64>,
}

pub(super) async fn start(
    manager: Arc<AuthManager>,
    client: Arc<ProviderClient>,
) -> Result<LoginStart, AuthError> {
    let endpoints = client.endpoints().await.map_err(AuthError::from)?;
    let (Some(device_endpoint), Some(token_endpoint)) =
        (endpoints.device_authorization, endpoints.token)
    else {
        return Err(AuthError::ProviderUnavailable(
            "the provider has no device authorization endpoint: set device_authorization_endpoint in config.toml, or use login type \"oauth\"".into(),
        ));
    };
    let config = client.config();
    let scope = config.scopes.join(" ");
    let mut form = vec![("client_id", config.client_id.as_str())];
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
        let code = crate::classify::classify_token_error(status, None, &body).code;
        return Err(unavailable(match code {
            Some(code) => {
                format!("the provider answered {status} ({code}); check client_id and scopes")
            }
            None => format!("the provider answered {status}"),
        }));
    }
    let grant: DeviceAuthorization = serde_json::from_slice(&body).map_err(|_| {
        unavailable("the provider's answer is not a device authorization response".into())
    })?;
    let interval = grant.interval.unwrap_or(DEFAULT_INTERVAL).max(1);
    let (login_id, cancel) = manager.register_login();
    let poll = Poll {
        client: client.clone(),
        token_endpoint,
        device_code: Secret::new(grant.device_code),
        interval: Duration::from_secs(interval),
        deadline: Instant::now() + Duration::from_secs(grant.expires_in),
    };
    let id = login_id.clone();
    tokio::spawn(async move {
        let result = poll.run(&manager, cancel).await;
        manager.finish_login(&id, result);
    });
    Ok(LoginStart::DeviceCode {
        login_id,
        verification_uri: grant.verification_uri,
        verification_uri_complete: grant.verification_uri_complete,
        user_code: grant.user_code,
        expires_at: time::now_unix() + grant.expires_in as i64,
        interval_secs: interval,
    })
}

struct Poll {
    client: Arc<ProviderClient>,
    token_endpoint: Url,
    device_code: Secret,
    interval: Duration,
    deadline: Instant,
}

impl Poll {
    async fn run(mut self, manager: &AuthManager, mut cancel: CancelSignal) -> Result<(), String> {
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
                ("client_id", self.client.config().client_id.as_str()),
            ];
            let answer = tokio::select! {
                reason = &mut cancel => return Err(reason.unwrap_or("the sign-in was canceled").to_owned()),
                answer = self.client.token_request(&self.token_endpoint, &form) => answer,
            };
            let failure = match answer {
                Ok(tokens) => return manager.store_login(&self.client, tokens).await,
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
