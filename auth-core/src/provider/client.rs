//! The HTTP client of provider requests, and the requests themselves at the lowest level: the
//! client is built once, on first use and off the runtime's thread (it reads files), bounded
//! in time, with no redirects, proxies as [`network`](super::network) decides and the
//! platform's trust anchors plus `ca_file` and `SSL_CERT_FILE`. Here too: reading an answer
//! (never past [`MAX_BODY_BYTES`]) and naming a failed request ([`TransportFailure`]). Its
//! environment knobs (the timeout, the test-only trust anchors delay) are read here only.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;
use tokio::sync::OnceCell;

use super::ProviderClient;
use super::classify::TransportFailure;
use super::network::{self, ProxyEnv};
use crate::limits::{Limits, TEST_TRUST_ANCHORS_DELAY_ENV};

/// The largest provider answer read; a larger one is a transient failure.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The provider's HTTP client, made on first use, and what it is made with.
pub(super) struct HttpClient {
    client: OnceCell<reqwest::Client>,
    /// `[provider] ca_file`: extra trust anchors.
    ca_file: Option<PathBuf>,
    timeout: Duration,
    /// Test only ([`crate::limits::TEST_TRUST_ANCHORS_DELAY_ENV`]): a pause before the trust
    /// anchors are read.
    test_trust_anchors_delay: Option<Duration>,
}

impl HttpClient {
    /// What the client will be made with (the request timeout of `limits`); nothing is built
    /// yet.
    pub(super) fn new(ca_file: Option<PathBuf>, limits: &Limits) -> Self {
        Self {
            client: OnceCell::new(),
            ca_file,
            timeout: limits.http_timeout,
            test_trust_anchors_delay: limits.test_trust_anchors_delay,
        }
    }

    /// The timeout of one request.
    pub(super) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The client, built on the blocking pool at the first request: reading the trust
    /// anchors (and the platform's store) may wait on a slow device, and the runtime's one
    /// thread answers every poll meanwhile. Concurrent first requests wait for the one build.
    async fn client(&self) -> &reqwest::Client {
        self.client
            .get_or_init(|| {
                let ca_file = self.ca_file.clone();
                let timeout = self.timeout;
                let delay = self.test_trust_anchors_delay;
                crate::store::off_runtime(move || shared_http(ca_file, timeout, delay))
            })
            .await
    }
}

/// The clients built so far, by what they were made with. A client is a handle on shared
/// state (trust anchors, connection pools): the credentials of one process with the same
/// trust settings share one, so that many credentials (contract version 3) do not each read
/// the platform's trust store and keep their own copy of it.
static BUILT: std::sync::Mutex<Vec<(MadeWith, reqwest::Client)>> =
    std::sync::Mutex::new(Vec::new());

/// What a client is made with: `ca_file` and the request timeout.
type MadeWith = (Option<PathBuf>, Duration);

/// The client for `ca_file` and `timeout`: the one built already, or a new one.
fn shared_http(
    ca_file: Option<PathBuf>,
    timeout: Duration,
    delay: Option<Duration>,
) -> reqwest::Client {
    let key = (ca_file, timeout);
    let built = |key: &MadeWith| {
        BUILT
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(made_with, _)| made_with == key)
            .map(|(_, client)| client.clone())
    };
    if let Some(client) = built(&key) {
        return client;
    }
    let client = build_http(key.0.clone(), timeout, delay);
    let mut all = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    match all.iter().find(|(made_with, _)| *made_with == key) {
        Some((_, first)) => first.clone(),
        None => {
            all.push((key, client.clone()));
            client
        }
    }
}

impl ProviderClient {
    /// The HTTP client (see [`HttpClient::client`]).
    pub(super) async fn http(&self) -> &reqwest::Client {
        self.http.client().await
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
    // TLS with ring's cryptography (the workspace's Cargo.toml says why not aws-lc): made the
    // process's provider before the first client is built; a later call finds it there.
    let _ = rustls::crypto::ring::default_provider().install_default();
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
        match crate::pem::load_pem_bundle(&path) {
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

/// The body of `response`, read in chunks and abandoned past [`MAX_BODY_BYTES`] (a hostile or
/// broken provider must not make the server buffer gigabytes).
pub(super) async fn read_body(
    mut response: reqwest::Response,
) -> Result<Vec<u8>, TransportFailure> {
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

pub(super) fn transport_failure(error: reqwest::Error) -> TransportFailure {
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
pub(super) fn describe_reqwest(error: reqwest::Error) -> String {
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
