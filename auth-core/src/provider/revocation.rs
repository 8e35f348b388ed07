//! Revoking a refresh token at logout (RFC 7009): best effort, at the configured or discovered
//! revocation endpoint, never retried; what came of it as a [`Revocation`].

use super::client::describe_transport;
use super::{Endpoints, ProviderClient};
use crate::secret::Secret;

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
