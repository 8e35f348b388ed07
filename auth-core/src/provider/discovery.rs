//! Finding the provider's endpoints: the issuer (configured, or named by the protected
//! resource's metadata, RFC 9728, with the scopes the resource asks for), then its metadata
//! (RFC 8414, then OpenID Connect), completing what is configured, once per process.

use reqwest::Url;
use serde::Deserialize;

use super::classify::TransportFailure;
use super::client::{describe_reqwest, describe_transport, read_body, transport_failure};
use super::metadata::{named_url, parse_metadata, supported_scopes};
use super::network;
use super::text::shown;
use super::{Endpoints, ProviderClient, ProviderError};
use crate::scope::challenge_scopes;
use crate::scope::provider_scopes;

/// Why one metadata document could not be used.
enum MetadataFailure {
    Tls(network::TlsProblem),
    Other(String),
}

impl ProviderClient {
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
}

/// RFC 9728 §3.1: the well-known segment goes between the host and the resource's path.
fn protected_resource_metadata_url(resource: &Url) -> Url {
    let mut url = resource.clone();
    let path = resource.path().trim_end_matches('/');
    url.set_path(&format!("/.well-known/oauth-protected-resource{path}"));
    url.set_query(None);
    url
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
