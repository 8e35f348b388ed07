//! The OAuth provider over HTTP: endpoint discovery (RFC 8414, then OpenID Connect), and the
//! token endpoint's refresh grant with strict response parsing. Token endpoint failures come
//! back classified (see `classify`), the others as a [`ProviderError`]. Tokens never appear in
//! errors or logs; no answer is read past [`MAX_BODY_BYTES`]. Proxies and extra trust anchors
//! are as `network` decides.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use reqwest::Url;
use serde::Deserialize;
use tokio::sync::OnceCell;

pub mod classify;
pub mod network;
pub mod text;

use crate::auth_failure::challenge_scopes;
use crate::config::{ProviderConfig, is_loopback, provider_url};
use crate::login::provider_scopes;
use crate::policy;
use crate::secret::Secret;
use classify::{
    RefreshFailure, TransportFailure, classify_token_error, classify_transport_failure,
};
use network::ProxyEnv;
use text::{MAX_TOKEN_BYTES, shown};

/// Environment knob: the timeout of one HTTP request to the provider, in milliseconds.
pub const HTTP_TIMEOUT_ENV: &str = "AUTH_APP_SERVER_HTTP_TIMEOUT_MS";
const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(15);
/// Environment knob, **for tests only**: building the HTTP client sleeps this many milliseconds
/// before it reads its trust anchors, as a slow device under `ca_file` or `SSL_CERT_FILE` would
/// (a network home). Read when the client is made; never set it in production.
pub const TEST_TRUST_ANCHORS_DELAY_ENV: &str = "AUTH_APP_SERVER_TEST_TRUST_ANCHORS_DELAY_MS";
/// The largest provider answer read; a larger one is a transient failure.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Lifetimes a provider states (`expires_in`) are clamped to this: a token said to live for
/// centuries is treated as living a year, and no expiry arithmetic can overflow.
pub const MAX_EXPIRES_IN_SECS: i64 = 366 * 24 * 3600;

/// Why the provider's issuer or endpoints are not known. Each says which step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("no issuer is configured")]
    NoIssuer,
    #[error("cannot find the authorization server of {resource}: {why}")]
    ProtectedResource { resource: Url, why: String },
    #[error("cannot discover the provider's endpoints from issuer {issuer} ({})", tried.join("; "))]
    Discovery { issuer: Url, tried: Vec<String> },
    #[error("the provider's metadata has no {0}")]
    MissingEndpoint(&'static str),
}

/// The provider's endpoints, from config or discovery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// The issuer identifier exactly as the metadata states it (recorded in `auth.json`).
    pub issuer: Option<String>,
    pub authorization: Option<Url>,
    pub token: Option<Url>,
    pub device_authorization: Option<Url>,
    pub revocation: Option<Url>,
    /// RFC 9207: the metadata promises `iss` in every authorization response
    /// (`authorization_response_iss_parameter_supported: true`).
    pub iss_parameter_supported: bool,
    /// `code_challenge_methods_supported` as the metadata lists it; `None` when it does not
    /// (Entra ID omits it).
    pub code_challenge_methods: Option<Vec<String>>,
    /// RFC 7591 dynamic client registration endpoint (`registration_endpoint`).
    pub registration: Option<Url>,
    /// The metadata says `client_id_metadata_document_supported: true`: a client may use the
    /// URL of its Client ID Metadata Document as its client_id.
    pub client_id_metadata_document_supported: bool,
    /// `offline_access` is in the metadata's `scopes_supported`.
    pub offline_access_supported: bool,
}

impl Endpoints {
    /// Whether the provider's metadata was read for these (it always names its issuer); not
    /// when every endpoint is configured, or discovery failed and the configured ones are used.
    pub fn from_metadata(&self) -> bool {
        self.issuer.is_some()
    }
}

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

/// Talks to one configured provider. The HTTP client is built on first use, so a server that
/// never refreshes pays nothing for it at start, and off the runtime's thread, since building
/// it reads files (see [`build_http`]).
pub struct ProviderClient {
    config: Arc<ProviderConfig>,
    http: OnceCell<reqwest::Client>,
    /// Configured, or found from the protected resource on first need.
    issuer: OnceCell<Url>,
    /// The scopes the protected resource asks for, set when the issuer is found from it.
    resource_scopes: OnceLock<Vec<String>>,
    discovered: OnceCell<Endpoints>,
    timeout: Duration,
    /// Test only ([`TEST_TRUST_ANCHORS_DELAY_ENV`]): a pause before the trust anchors are read.
    test_trust_anchors_delay: Option<Duration>,
    /// The WARN about signing in with S256 that no metadata confirms was logged.
    unstated_pkce_warned: AtomicBool,
}

impl ProviderClient {
    pub fn new(config: Arc<ProviderConfig>) -> Self {
        let timeout = std::env::var(HTTP_TIMEOUT_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(DEFAULT_HTTP_TIMEOUT, Duration::from_millis);
        Self {
            issuer: OnceCell::new_with(config.issuer.clone()),
            resource_scopes: OnceLock::new(),
            config,
            http: OnceCell::new(),
            discovered: OnceCell::new(),
            timeout,
            test_trust_anchors_delay: crate::store::test_delay_from_env(
                TEST_TRUST_ANCHORS_DELAY_ENV,
            ),
            unstated_pkce_warned: AtomicBool::new(false),
        }
    }

    /// A sign-in of the MCP flow: the authorization server is the one the protected resource
    /// names (RFC 9728), not a configured issuer.
    pub fn is_mcp_flow(&self) -> bool {
        self.config.issuer.is_none() && self.config.protected_resource.is_some()
    }

    /// Logs `warning` (why S256 is sent though no metadata lists it) once per provider.
    pub(crate) fn warn_pkce_once(&self, warning: &str) {
        if !self.unstated_pkce_warned.swap(true, Ordering::Relaxed) {
            tracing::warn!("{warning}");
        }
    }

    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// The HTTP client, built on the blocking pool at the first request: reading the trust
    /// anchors (and the platform's store) may wait on a slow device, and the runtime's one
    /// thread answers every poll meanwhile. Concurrent first requests wait for the one build.
    async fn http(&self) -> &reqwest::Client {
        self.http
            .get_or_init(|| {
                let ca_file = self.config.ca_file.clone();
                let timeout = self.timeout;
                let delay = self.test_trust_anchors_delay;
                crate::store::off_runtime(move || build_http(ca_file, timeout, delay))
            })
            .await
    }

    /// The token endpoint: configured, else discovered.
    pub async fn token_endpoint(&self) -> Result<Url, ProviderError> {
        if let Some(url) = &self.config.token_endpoint {
            return Ok(url.clone());
        }
        self.endpoints()
            .await?
            .token
            .ok_or(ProviderError::MissingEndpoint("token_endpoint"))
    }

    /// The issuer, if known without network I/O.
    pub fn known_issuer(&self) -> Option<&Url> {
        self.issuer.get()
    }

    /// The issuer: configured, else found from the protected resource's metadata (RFC 9728),
    /// once per process.
    pub async fn issuer(&self) -> Result<Url, ProviderError> {
        self.issuer
            .get_or_try_init(|| self.issuer_from_resource())
            .await
            .cloned()
    }

    /// The scopes a sign-in requests before those of the grant and the client: the configured
    /// ones; with none configured and the issuer found from the protected resource, the ones
    /// the resource asks for (the `scope=` of its 401 challenge, else the `scopes_supported`
    /// of its metadata), which needs that discovery first.
    pub async fn scopes(&self) -> Result<Vec<String>, ProviderError> {
        if !self.config.scopes.is_empty() || self.config.issuer.is_some() {
            return Ok(self.config.scopes.clone());
        }
        self.issuer().await?;
        Ok(self.resource_scopes.get().cloned().unwrap_or_default())
    }

    /// Configured endpoints, completed by discovery (once per process; a failure is retried
    /// on the next call). With every endpoint configured there is no discovery, except in the
    /// MCP flow: its sign-in must see what the authorization server's metadata says about PKCE
    /// (and `offline_access`), and falls back to the configured endpoints without it.
    pub async fn endpoints(&self) -> Result<Endpoints, ProviderError> {
        let configured = Endpoints {
            issuer: None,
            authorization: self.config.authorization_endpoint.clone(),
            token: self.config.token_endpoint.clone(),
            device_authorization: self.config.device_authorization_endpoint.clone(),
            revocation: self.config.revocation_endpoint.clone(),
            ..Endpoints::default()
        };
        let complete = configured.authorization.is_some()
            && configured.token.is_some()
            && configured.device_authorization.is_some()
            && configured.revocation.is_some();
        if complete && !self.is_mcp_flow() {
            return Ok(configured);
        }
        let discovered = match self.discovered.get_or_try_init(|| self.discover()).await {
            Ok(discovered) => discovered,
            // Explicit endpoints still work when the metadata does not.
            Err(reason) if configured.token.is_some() => {
                tracing::debug!(%reason, "discovery failed; using the configured endpoints");
                return Ok(configured);
            }
            Err(reason) => return Err(reason),
        };
        Ok(Endpoints {
            issuer: discovered.issuer.clone(),
            authorization: configured
                .authorization
                .or_else(|| discovered.authorization.clone()),
            token: configured.token.or_else(|| discovered.token.clone()),
            device_authorization: configured
                .device_authorization
                .or_else(|| discovered.device_authorization.clone()),
            revocation: configured
                .revocation
                .or_else(|| discovered.revocation.clone()),
            iss_parameter_supported: discovered.iss_parameter_supported,
            code_challenge_methods: discovered.code_challenge_methods.clone(),
            registration: discovered.registration.clone(),
            client_id_metadata_document_supported: discovered.client_id_metadata_document_supported,
            offline_access_supported: discovered.offline_access_supported,
        })
    }

    /// What the authorization server's metadata says about obtaining a client_id (always from
    /// discovery, even when every endpoint is configured).
    pub async fn discovered_metadata(&self) -> Result<Endpoints, ProviderError> {
        self.discovered
            .get_or_try_init(|| self.discover())
            .await
            .cloned()
    }

    /// The client_id of requests about credentials recorded with `recorded`: the configured
    /// one, else the recorded one (obtained at sign-in without configuration).
    pub fn client_id_for(&self, recorded: Option<&str>) -> Option<String> {
        self.config
            .client_id
            .clone()
            .or_else(|| recorded.map(str::to_owned))
    }

    /// The timeout of one HTTP request to the provider.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The issuer identifier to record with tokens: exactly as the provider's metadata states
    /// it when discovery ran, else the configured issuer (without the `/` that URL parsing adds
    /// to a bare host).
    pub async fn issuer_identifier(&self) -> Result<String, ProviderError> {
        let issuer = self.issuer().await?;
        if let Some(Some(stated)) = self.discovered.get().map(|e| e.issuer.clone()) {
            return Ok(stated);
        }
        let text = issuer.as_str();
        Ok(match issuer.path() {
            "/" => text.strip_suffix('/').unwrap_or(text).to_owned(),
            _ => text.to_owned(),
        })
    }

    /// The metadata documents, in order: RFC 8414 (the well-known segment inserted before the
    /// issuer's path, then appended to it), then OpenID. The first readable one wins; when it
    /// lacks a token or revocation endpoint, the others fill in what they have (providers
    /// mounted under a path often publish the revocation endpoint in only one of them).
    async fn discover(&self) -> Result<Endpoints, ProviderError> {
        let issuer = self.issuer().await?;
        let mut tried = Vec::new();
        let mut found: Option<Endpoints> = None;
        for url in metadata_urls(&issuer) {
            if found
                .as_ref()
                .is_some_and(|e| e.token.is_some() && e.revocation.is_some())
            {
                break;
            }
            match self.fetch_metadata(&url, &issuer).await {
                // The other documents are on the same host, behind the same certificate.
                Err(MetadataFailure::Tls(problem)) => {
                    tried.push(format!("{url}: {}", problem.message()));
                    break;
                }
                Ok(endpoints) => {
                    tracing::debug!(%url, "provider metadata discovered");
                    found = Some(match found {
                        None => endpoints,
                        Some(first) => Endpoints {
                            issuer: first.issuer,
                            authorization: first.authorization.or(endpoints.authorization),
                            token: first.token.or(endpoints.token),
                            device_authorization: first
                                .device_authorization
                                .or(endpoints.device_authorization),
                            revocation: first.revocation.or(endpoints.revocation),
                            // A promise of `iss` in any document binds the provider.
                            iss_parameter_supported: first.iss_parameter_supported
                                || endpoints.iss_parameter_supported,
                            code_challenge_methods: first
                                .code_challenge_methods
                                .or(endpoints.code_challenge_methods),
                            registration: first.registration.or(endpoints.registration),
                            client_id_metadata_document_supported: first
                                .client_id_metadata_document_supported
                                || endpoints.client_id_metadata_document_supported,
                            offline_access_supported: first.offline_access_supported
                                || endpoints.offline_access_supported,
                        },
                    });
                }
                Err(MetadataFailure::Other(reason)) => tried.push(format!("{url}: {reason}")),
            }
        }
        found.ok_or(ProviderError::Discovery { issuer, tried })
    }

    async fn fetch_metadata(&self, url: &Url, issuer: &Url) -> Result<Endpoints, MetadataFailure> {
        let failed = |failure: TransportFailure| match failure {
            TransportFailure::Tls(problem) => MetadataFailure::Tls(problem),
            other => MetadataFailure::Other(describe_transport(other).to_owned()),
        };
        let response = self
            .http()
            .await
            .get(url.clone())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| failed(transport_failure(e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(MetadataFailure::Other(format!("HTTP {}", status.as_u16())));
        }
        let body = read_body(response).await.map_err(failed)?;
        parse_metadata(&body, issuer).map_err(MetadataFailure::Other)
    }

    /// RFC 9728: the protected resource names its authorization server. The resource's 401
    /// may point at its metadata (`WWW-Authenticate: Bearer resource_metadata="..."`); else the
    /// metadata is at `/.well-known/oauth-protected-resource` + the resource's path. The
    /// document must be about exactly the configured resource.
    async fn issuer_from_resource(&self) -> Result<Url, ProviderError> {
        #[derive(Deserialize)]
        struct ResourceMetadata {
            resource: String,
            #[serde(default)]
            authorization_servers: Vec<String>,
            #[serde(default)]
            scopes_supported: serde_json::Value,
        }
        let Some(resource) = &self.config.protected_resource else {
            return Err(ProviderError::NoIssuer);
        };
        let fail = |why: String| ProviderError::ProtectedResource {
            resource: resource.clone(),
            why,
        };
        let challenges: Vec<String> = match self.http().await.get(resource.clone()).send().await {
            Ok(response) if response.status().as_u16() == 401 => response
                .headers()
                .get_all("www-authenticate")
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        let metadata_location = challenges
            .iter()
            .find_map(|challenge| resource_metadata_param(challenge));
        let challenge_scopes = challenges
            .iter()
            .map(|challenge| challenge_scopes(challenge))
            .find(|scopes| !scopes.is_empty());
        let metadata_url = match metadata_location {
            Some(url) => named_url("resource_metadata", &url, resource).map_err(fail)?,
            None => protected_resource_metadata_url(resource),
        };
        let response = self
            .http()
            .await
            .get(metadata_url.clone())
            .send()
            .await
            .map_err(|e| fail(describe_reqwest(e)))?;
        if !response.status().is_success() {
            return Err(fail(format!(
                "{metadata_url} answered HTTP {}",
                response.status().as_u16()
            )));
        }
        let body = read_body(response)
            .await
            .map_err(|f| fail(describe_transport(f).to_owned()))?;
        let metadata: ResourceMetadata = serde_json::from_slice(&body).map_err(|_| {
            fail(format!(
                "{metadata_url} is not a protected resource metadata document"
            ))
        })?;
        if Url::parse(&metadata.resource).ok().as_ref() != Some(resource) {
            return Err(fail(format!(
                "its metadata is about another resource ({}); refusing to use it",
                shown(&metadata.resource)
            )));
        }
        let server = metadata
            .authorization_servers
            .first()
            .ok_or_else(|| fail("its metadata names no authorization server".into()))?;
        let issuer = named_url("authorization_servers", server, resource).map_err(fail)?;
        tracing::info!(%issuer, "authorization server found from the protected resource");
        // What the resource asked for in the challenge is what it wants; its list of all the
        // scopes it knows comes second (the MCP authorization specification's order).
        let scopes = match challenge_scopes {
            Some(scopes) => scopes,
            None => provider_scopes(
                supported_scopes(&metadata.scopes_supported),
                "protected resource scopes_supported",
            ),
        };
        let _ = self.resource_scopes.set(scopes);
        Ok(issuer)
    }

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

    /// POSTs a form; (status, Retry-After, body), or how the request failed.
    pub(crate) async fn post_form(
        &self,
        endpoint: &Url,
        form: &[(&str, &str)],
    ) -> Result<(u16, Option<String>, Vec<u8>), TransportFailure> {
        self.post(endpoint, |request| request.form(form)).await
    }

    /// POSTs a JSON document (RFC 7591 registration); (status, body), or how it failed.
    pub(crate) async fn post_json(
        &self,
        endpoint: &Url,
        document: &serde_json::Value,
    ) -> Result<(u16, Vec<u8>), TransportFailure> {
        let (status, _, body) = self
            .post(endpoint, |request| request.json(document))
            .await?;
        Ok((status, body))
    }

    /// POSTs the body `with_body` sets, asking for JSON; (status, Retry-After, body).
    async fn post(
        &self,
        endpoint: &Url,
        with_body: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<(u16, Option<String>, Vec<u8>), TransportFailure> {
        let request = self
            .http()
            .await
            .post(endpoint.clone())
            .header("accept", "application/json");
        let response = with_body(request).send().await.map_err(transport_failure)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_body(response).await?;
        Ok((status, retry_after, body))
    }
}

/// The HTTP client of provider requests, with the platform's trust anchors plus those of
/// `ca_file` and `SSL_CERT_FILE`; when the extra ones make no usable client, it is reported and
/// only the platform's are trusted. Blocking: it reads files (run it off the runtime).
fn build_http(
    ca_file: Option<PathBuf>,
    timeout: Duration,
    test_delay: Option<Duration>,
) -> reqwest::Client {
    if let Some(delay) = test_delay {
        tracing::warn!(
            delay_ms = delay.as_millis() as u64,
            "{TEST_TRUST_ANCHORS_DELAY_ENV} is set: loading the trust anchors is slowed down (for tests only)"
        );
        std::thread::sleep(delay);
    }
    let roots = extra_roots(ca_file);
    match http_client(timeout, roots.clone()) {
        Ok(client) => client,
        Err(error) if !roots.is_empty() => {
            tracing::error!(%error, "the extra certificate authorities (ca_file, SSL_CERT_FILE) cannot be used; only the platform's are trusted");
            http_client(timeout, Vec::new()).expect("HTTP client configuration is valid")
        }
        Err(error) => panic!("HTTP client configuration is not valid: {error}"),
    }
}

/// The HTTP client: bounded in time, no redirects, proxies from the environment (never for
/// loopback), and the platform's trust anchors plus `roots`.
fn http_client(
    timeout: Duration,
    roots: Vec<reqwest::Certificate>,
) -> reqwest::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        // A token endpoint that redirects is misconfigured; never re-send a grant elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("auth-app-server/", env!("CARGO_PKG_VERSION")))
        // reqwest's own proxy handling would send loopback requests through a proxy too.
        .no_proxy()
        .tls_certs_merge(roots);
    let proxies = ProxyEnv::from_env();
    if proxies.is_set() {
        builder = builder.proxy(reqwest::Proxy::custom(move |url| {
            let proxy = proxies.proxy_for(url);
            if let Some(proxy) = &proxy {
                tracing::debug!(
                    host = url.host_str(),
                    proxy = proxy.host_str(),
                    "through a proxy"
                );
            }
            proxy
        }));
    }
    builder.build()
}

/// Trust anchors added to the platform's: `[provider] ca_file`, then `SSL_CERT_FILE`. One
/// that cannot be read is reported and left out.
fn extra_roots(ca_file: Option<PathBuf>) -> Vec<reqwest::Certificate> {
    let files = [
        ("ca_file", ca_file),
        (network::SSL_CERT_FILE_ENV, network::ssl_cert_file()),
    ];
    let mut roots = Vec::new();
    for (setting, path) in files {
        let Some(path) = path else { continue };
        match network::load_pem_bundle(&path) {
            Ok(certificates) => {
                tracing::debug!(
                    setting,
                    count = certificates.len(),
                    "extra certificate authorities trusted"
                );
                roots.extend(certificates);
            }
            Err(why) => {
                tracing::warn!(setting, %why, "extra certificate authorities not loaded")
            }
        }
    }
    roots
}

/// Why one metadata document could not be used.
enum MetadataFailure {
    Tls(network::TlsProblem),
    Other(String),
}

/// What a logout's revocation came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    Revoked,
    /// Not revoked; why, in words a person can act on.
    NotRevoked(String),
}

impl ProviderClient {
    /// Revokes `refresh_token` (RFC 7009) at the provider's revocation endpoint, configured or
    /// discovered. Best effort: a failure is logged at WARN and returned, never retried.
    pub async fn revoke(&self, refresh_token: &Secret, client_id: &str) -> Revocation {
        let not_revoked = |why: String| {
            tracing::warn!(%why, "the refresh token was not revoked; it may stay valid at the provider");
            Revocation::NotRevoked(why)
        };
        let endpoint = match &self.config.revocation_endpoint {
            Some(endpoint) => endpoint.clone(),
            None => match self.endpoints().await {
                Ok(Endpoints {
                    revocation: Some(endpoint),
                    ..
                }) => endpoint,
                Ok(_) => {
                    return not_revoked(
                        "the provider's metadata names no revocation_endpoint (set one in config.toml if it has one)".into(),
                    );
                }
                Err(error) => return not_revoked(error.to_string()),
            },
        };
        let form = [
            ("token", refresh_token.expose()),
            ("token_type_hint", "refresh_token"),
            ("client_id", client_id),
        ];
        match self.post_form(&endpoint, &form).await {
            Ok((status, _, _)) if (200..300).contains(&status) => {
                tracing::info!("refresh token revoked");
                Revocation::Revoked
            }
            Ok((status, _, _)) => {
                not_revoked(format!("the revocation endpoint answered HTTP {status}"))
            }
            Err(failure) => not_revoked(format!(
                "the revocation endpoint could not be reached ({})",
                describe_transport(failure)
            )),
        }
    }
}

/// Parses an authorization server metadata document (RFC 8414 / OpenID) fetched for
/// `issuer`: it must name exactly that issuer, and every endpoint must pass the https rule.
pub(crate) fn parse_metadata(body: &[u8], issuer: &Url) -> Result<Endpoints, String> {
    #[derive(Deserialize)]
    struct Metadata {
        issuer: Option<String>,
        authorization_endpoint: Option<String>,
        token_endpoint: Option<String>,
        device_authorization_endpoint: Option<String>,
        revocation_endpoint: Option<String>,
        // Read leniently: a member of an unexpected type is taken as not stated.
        #[serde(default)]
        authorization_response_iss_parameter_supported: serde_json::Value,
        #[serde(default)]
        code_challenge_methods_supported: serde_json::Value,
        registration_endpoint: Option<String>,
        #[serde(default)]
        client_id_metadata_document_supported: serde_json::Value,
        #[serde(default)]
        scopes_supported: serde_json::Value,
    }
    let metadata: Metadata =
        serde_json::from_slice(body).map_err(|_| "not a JSON metadata document".to_owned())?;
    // RFC 8414 §3.3: the document must name exactly the issuer it was fetched for.
    let Some(stated) = metadata.issuer else {
        return Err("the document has no `issuer` member".to_owned());
    };
    if !same_identifier(&stated, issuer.as_str()) {
        return Err(format!(
            "the document names another issuer ({})",
            shown(&stated)
        ));
    }
    let endpoint =
        |field, value: Option<String>| value.map(|v| named_url(field, &v, issuer)).transpose();
    Ok(Endpoints {
        issuer: Some(stated),
        authorization: endpoint("authorization_endpoint", metadata.authorization_endpoint)?,
        token: endpoint("token_endpoint", metadata.token_endpoint)?,
        device_authorization: endpoint(
            "device_authorization_endpoint",
            metadata.device_authorization_endpoint,
        )?,
        revocation: endpoint("revocation_endpoint", metadata.revocation_endpoint)?,
        registration: endpoint("registration_endpoint", metadata.registration_endpoint)?,
        client_id_metadata_document_supported: metadata.client_id_metadata_document_supported
            == serde_json::Value::Bool(true),
        offline_access_supported: supported_scopes(&metadata.scopes_supported)
            .any(|scope| scope == "offline_access"),
        iss_parameter_supported: metadata.authorization_response_iss_parameter_supported
            == serde_json::Value::Bool(true),
        code_challenge_methods: metadata.code_challenge_methods_supported.as_array().map(
            |methods| {
                methods
                    .iter()
                    .filter_map(|m| m.as_str().map(str::to_owned))
                    .collect()
            },
        ),
    })
}

/// A URL that a document of `source` names in `field`: a provider URL, and plain http (which
/// [`provider_url`] allows on loopback) only when `source` itself is on loopback: a remote
/// server has no business sending this machine's requests to a local port.
fn named_url(field: &'static str, value: &str, source: &Url) -> Result<Url, String> {
    let url = provider_url(field, value).map_err(|e| e.to_string())?;
    if url.scheme() == "http" && !is_loopback(source) {
        return Err(format!(
            "`{field}` is a plain http address on this machine, named by {source}, which is not on this machine; refusing to use it"
        ));
    }
    Ok(url)
}

/// The body of `response`, read in chunks and abandoned past [`MAX_BODY_BYTES`] (a hostile or
/// broken provider must not make the server buffer gigabytes).
async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, TransportFailure> {
    if response
        .content_length()
        .is_some_and(|len| len > MAX_BODY_BYTES as u64)
    {
        return Err(TransportFailure::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_failure)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(TransportFailure::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// RFC 9728 §3.1: the well-known segment goes between the host and the resource's path.
fn protected_resource_metadata_url(resource: &Url) -> Url {
    let mut url = resource.clone();
    let path = resource.path().trim_end_matches('/');
    url.set_path(&format!("/.well-known/oauth-protected-resource{path}"));
    url.set_query(None);
    url
}

/// `scopes_supported` of a metadata document: the strings of an array, in order; nothing when
/// it is absent or not an array.
fn supported_scopes(value: &serde_json::Value) -> impl Iterator<Item = &str> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_str)
}

/// The `resource_metadata` parameter of a `WWW-Authenticate: Bearer ...` challenge.
fn resource_metadata_param(challenge: &str) -> Option<String> {
    let at =
        challenge.to_ascii_lowercase().find("resource_metadata=")? + "resource_metadata=".len();
    let rest = &challenge[at..];
    let value = match rest.strip_prefix('"') {
        Some(quoted) => &quoted[..quoted.find('"')?],
        None => rest.split([',', ' ']).next()?,
    };
    (!value.is_empty()).then(|| value.to_owned())
}

/// Where the metadata of `issuer` may be: RFC 8414 inserts the well-known segment before the
/// issuer's path (and many servers also answer with it appended); OpenID Connect appends it.
fn metadata_urls(issuer: &Url) -> Vec<Url> {
    let path = issuer.path().trim_end_matches('/');
    let at = |path: String| {
        let mut url = issuer.clone();
        url.set_path(&path);
        url
    };
    let mut urls = vec![
        at(format!("/.well-known/oauth-authorization-server{path}")),
        at(format!("{path}/.well-known/oauth-authorization-server")),
        at(format!("{path}/.well-known/openid-configuration")),
    ];
    urls.dedup();
    urls
}

/// Issuer identifiers compare equal when they differ at most by one trailing slash.
pub(crate) fn same_identifier(a: &str, b: &str) -> bool {
    let trim = |s: &str| s.strip_suffix('/').unwrap_or(s).to_owned();
    trim(a) == trim(b)
}

fn transport_failure(error: reqwest::Error) -> TransportFailure {
    // reqwest says only "error sending request"; what TLS said is further down the chain.
    let chain: Vec<String> =
        std::iter::successors(Some(&error as &dyn std::error::Error), |e| e.source())
            .map(ToString::to_string)
            .collect();
    if let Some(problem) = network::tls_problem(&chain) {
        return TransportFailure::Tls(problem);
    }
    if error.is_timeout() {
        TransportFailure::Timeout
    } else if error.is_connect() {
        TransportFailure::Connect
    } else {
        TransportFailure::Other
    }
}

/// A reqwest error without its URL (URLs may carry query secrets in other flows).
fn describe_reqwest(error: reqwest::Error) -> String {
    describe_transport(transport_failure(error)).to_owned()
}

pub(crate) fn describe_transport(failure: TransportFailure) -> &'static str {
    match failure {
        TransportFailure::Connect => "connection failed",
        TransportFailure::Timeout => "timed out",
        TransportFailure::Other => "the request failed",
        TransportFailure::TooLarge => "the answer was larger than 1 MiB",
        TransportFailure::Tls(problem) => problem.message(),
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
    fn metadata_urls_follow_rfc8414_then_openid() {
        let urls = metadata_urls(&Url::parse("https://id.example.com").unwrap());
        let urls: Vec<_> = urls.iter().map(Url::as_str).collect();
        assert_eq!(
            urls,
            [
                "https://id.example.com/.well-known/oauth-authorization-server",
                "https://id.example.com/.well-known/openid-configuration"
            ]
        );
        let urls = metadata_urls(&Url::parse("https://id.example.com/tenant/a/").unwrap());
        let urls: Vec<_> = urls.iter().map(Url::as_str).collect();
        assert_eq!(
            urls,
            [
                "https://id.example.com/.well-known/oauth-authorization-server/tenant/a",
                "https://id.example.com/tenant/a/.well-known/oauth-authorization-server",
                "https://id.example.com/tenant/a/.well-known/openid-configuration"
            ]
        );
    }

    #[test]
    fn issuers_match_ignoring_one_trailing_slash() {
        assert!(same_identifier("https://i.example", "https://i.example/"));
        assert!(same_identifier(
            "https://i.example/o/",
            "https://i.example/o"
        ));
        assert!(!same_identifier("https://i.example//", "https://i.example"));
        assert!(!same_identifier(
            "https://evil.example",
            "https://i.example"
        ));
    }

    #[test]
    fn metadata_states_iss_support_and_pkce_methods_leniently() {
        let issuer = Url::parse("https://id.example.com").unwrap();
        let parse = |extra: &str| {
            let body = format!(r#"{{"issuer":"https://id.example.com"{extra}}}"#);
            parse_metadata(body.as_bytes(), &issuer).unwrap()
        };
        let plain = parse("");
        assert!(!plain.iss_parameter_supported);
        assert_eq!(plain.code_challenge_methods, None);
        let stated = parse(
            r#","authorization_response_iss_parameter_supported":true,"code_challenge_methods_supported":["plain","S256",7]"#,
        );
        assert!(stated.iss_parameter_supported);
        assert_eq!(
            stated.code_challenge_methods,
            Some(vec!["plain".to_owned(), "S256".to_owned()])
        );
        let odd = parse(
            r#","authorization_response_iss_parameter_supported":"true","code_challenge_methods_supported":"S256""#,
        );
        assert!(!odd.iss_parameter_supported, "only JSON true promises iss");
        assert_eq!(odd.code_challenge_methods, None);
    }

    #[test]
    fn loopback_http_endpoints_only_from_a_loopback_issuer() {
        let body = |issuer: &str| {
            format!(r#"{{"issuer":"{issuer}","token_endpoint":"http://127.0.0.1:9/token"}}"#)
        };
        let remote = Url::parse("https://id.example.com").unwrap();
        let why = parse_metadata(body("https://id.example.com").as_bytes(), &remote).unwrap_err();
        assert!(
            why.contains("token_endpoint") && why.contains("plain http"),
            "{why}"
        );
        let local = Url::parse("http://127.0.0.1:8").unwrap();
        let ok = parse_metadata(body("http://127.0.0.1:8").as_bytes(), &local).unwrap();
        assert_eq!(ok.token.unwrap().as_str(), "http://127.0.0.1:9/token");
        let https_local = Url::parse("https://localhost:8").unwrap();
        assert!(parse_metadata(body("https://localhost:8").as_bytes(), &https_local).is_ok());
    }

    #[test]
    fn provider_strings_in_metadata_errors_are_bounded_and_quoted() {
        let issuer = Url::parse("https://id.example.com").unwrap();
        let stated = format!(r"https://evil.example/\n\u001b[2J{}", "x".repeat(1_000_000));
        let body = format!(r#"{{"issuer":"{stated}"}}"#);
        let why = parse_metadata(body.as_bytes(), &issuer).unwrap_err();
        assert!(why.len() < 400, "{}", why.len());
        assert!(!why.contains('\n') && !why.contains('\u{1b}'), "{why}");
        assert!(
            why.contains("\"https://evil.example/\\n\\u{1b}[2J"),
            "{why}"
        );
        let long_endpoint = format!(
            r#"{{"issuer":"https://id.example.com","token_endpoint":"https://id.example.com/{}"}}"#,
            "t".repeat(5000)
        );
        let why = parse_metadata(long_endpoint.as_bytes(), &issuer).unwrap_err();
        assert!(
            why.contains("longer than 2048 bytes") && why.len() < 200,
            "{why}"
        );
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
    fn metadata_states_how_to_obtain_a_client_id() {
        let issuer = Url::parse("https://id.example.com").unwrap();
        let parse = |extra: &str| {
            let body = format!(r#"{{"issuer":"https://id.example.com"{extra}}}"#);
            parse_metadata(body.as_bytes(), &issuer)
        };
        let plain = parse("").unwrap();
        assert_eq!(plain.registration, None);
        assert!(!plain.client_id_metadata_document_supported);
        let both = parse(
            r#","registration_endpoint":"https://id.example.com/register","client_id_metadata_document_supported":true"#,
        )
        .unwrap();
        assert_eq!(
            both.registration.unwrap().as_str(),
            "https://id.example.com/register"
        );
        assert!(both.client_id_metadata_document_supported);
        let odd = parse(r#","client_id_metadata_document_supported":"true""#).unwrap();
        assert!(!odd.client_id_metadata_document_supported);
        assert!(parse(r#","registration_endpoint":"http://id.example.com/register""#).is_err());
    }

    #[test]
    fn protected_resource_metadata_location() {
        let url = protected_resource_metadata_url(
            &Url::parse("https://api.example.com/mcp?x=1").unwrap(),
        );
        assert_eq!(
            url.as_str(),
            "https://api.example.com/.well-known/oauth-protected-resource/mcp"
        );
        let challenge = r#"Bearer error="invalid_token", resource_metadata="https://api.example.com/.well-known/oauth-protected-resource/mcp""#;
        assert_eq!(
            resource_metadata_param(challenge).as_deref(),
            Some("https://api.example.com/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(
            resource_metadata_param("Bearer resource_metadata=https://x/m, realm=a").as_deref(),
            Some("https://x/m")
        );
        assert_eq!(resource_metadata_param("Bearer realm=\"a\""), None);
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
