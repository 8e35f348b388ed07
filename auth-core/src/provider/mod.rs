//! The OAuth provider over HTTP, behind [`ProviderClient`]: one configured provider's
//! endpoints and the requests made to them. Each part is its own file:
//!
//! - `client`: the HTTP client (built on first use, off the runtime), its timeout and trust
//!   roots, reading an answer (never past [`MAX_BODY_BYTES`]), naming a failed request.
//! - [`network`]: proxies, extra trust anchors and what a TLS failure means.
//! - `discovery`: the issuer (configured, or from the protected resource, RFC 9728) and its
//!   metadata (RFC 8414, then OpenID Connect); `metadata`: parsing that metadata.
//! - `token`: token endpoint requests and the strict parsing of token responses; their
//!   failures come back classified by [`classify`] (transient or permanent).
//! - `revocation`: revoking a refresh token at logout (RFC 7009).
//! - [`text`]: how provider strings are bounded and quoted in logs, errors and files.
//!
//! Other failures come back as a [`ProviderError`]. Tokens never appear in errors or logs.

pub mod classify;
mod client;
mod discovery;
mod metadata;
pub mod network;
mod revocation;
pub mod text;
mod token;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::Url;
use tokio::sync::OnceCell;

use crate::config::ProviderConfig;
use crate::limits::Limits;

pub use client::MAX_BODY_BYTES;
pub(crate) use client::describe_transport;
pub use metadata::Endpoints;
pub(crate) use metadata::{parse_metadata, same_identifier};
pub use revocation::Revocation;
pub use token::{
    Issued, MAX_EXPIRES_IN_SECS, TokenResponse, holds_oversized_token, parse_token_response,
};

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

/// Talks to one configured provider. The HTTP client is built on first use, so a server that
/// never refreshes pays nothing for it at start, and off the runtime's thread, since building
/// it reads files (see `client`).
pub struct ProviderClient {
    config: Arc<ProviderConfig>,
    http: client::HttpClient,
    /// Configured, or found from the protected resource on first need.
    issuer: OnceCell<Url>,
    /// The scopes the protected resource asks for, set when the issuer is found from it.
    resource_scopes: OnceLock<Vec<String>>,
    discovered: OnceCell<Endpoints>,
    /// The WARN about signing in with S256 that no metadata confirms was logged.
    unstated_pkce_warned: AtomicBool,
}

impl ProviderClient {
    /// A client for `config`, with the request timeout of `limits`; nothing is built or
    /// fetched yet.
    pub fn new(config: Arc<ProviderConfig>, limits: &Limits) -> Self {
        Self {
            http: client::HttpClient::new(config.ca_file.clone(), limits),
            issuer: OnceCell::new_with(config.issuer.clone()),
            resource_scopes: OnceLock::new(),
            config,
            discovered: OnceCell::new(),
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
        self.http.timeout()
    }
}
