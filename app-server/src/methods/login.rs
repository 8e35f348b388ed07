//! `login`: API key and host-supplied tokens complete at once; `oauth` and `deviceCode` start
//! an interactive sign-in that ends with `loginCompleted`.

use auth_core::config::ProviderObject;
use auth_core::{HostTokens, Secret};
use auth_protocol::method::Login;
use auth_protocol::{LoginParams, LoginProvider, LoginResult};

use super::{Handler, MethodResult, ServerContext};
use crate::convert;

impl Handler for Login {
    async fn handle(context: &ServerContext, params: LoginParams) -> MethodResult<LoginResult> {
        let which = super::which(params.credential())?;
        let provider = params.provider().map(provider_object);
        let credential = &context
            .registry
            .for_login(&which, provider)
            .await
            .map_err(convert::error)?;
        match params {
            LoginParams::ApiKey { api_key, .. } => {
                let warnings = credential
                    .login_api_key(&Secret::new(api_key.into_inner()))
                    .await
                    .map_err(convert::error)?;
                Ok(LoginResult::ApiKey { warnings })
            }
            LoginParams::Tokens {
                access_token,
                refresh_token,
                id_token,
                expires_at,
                ..
            } => {
                let secret = |s: auth_protocol::SecretString| Secret::new(s.into_inner());
                let tokens = HostTokens {
                    access_token: secret(access_token),
                    refresh_token: refresh_token.map(secret),
                    id_token: id_token.map(secret),
                    expires_at,
                };
                credential
                    .login_tokens(tokens)
                    .await
                    .map_err(convert::error)?;
                Ok(LoginResult::Tokens)
            }
            LoginParams::Oauth { scopes, .. } => {
                let started = credential
                    .start_oauth_login(&scopes.unwrap_or_default())
                    .await
                    .map_err(convert::error)?;
                Ok(convert::login_start(started))
            }
            LoginParams::DeviceCode { scopes, .. } => {
                let started = credential
                    .start_device_login(&scopes.unwrap_or_default())
                    .await
                    .map_err(convert::error)?;
                Ok(convert::login_start(started))
            }
        }
    }
}

/// The login's `provider` object, for `auth-core` to check.
fn provider_object(provider: &LoginProvider) -> ProviderObject {
    ProviderObject {
        issuer: provider.issuer.clone(),
        protected_resource: provider.protected_resource.clone(),
        client_id: provider.client_id.clone(),
        client_metadata_url: provider.client_metadata_url.clone(),
        scopes: provider.scopes.clone().unwrap_or_default(),
        resource: provider.resource.clone(),
    }
}
