//! `login`: API key and host-supplied tokens complete at once; `oauth` and `deviceCode` start
//! an interactive sign-in that ends with `loginCompleted`.

use auth_core::{AuthError, HostTokens, Provider, Secret};
use auth_protocol::{LoginParams, LoginResult};
use jsonrpsee::types::Params;

use super::{MethodResult, ServerContext, parse_params};
use crate::convert;

const EXPECTED: &str = r#"{"type":"apiKey","apiKey":string} | {"type":"oauth"} | {"type":"deviceCode"} | {"type":"tokens","accessToken":string,...}"#;

pub async fn handle(context: &ServerContext, params: Params<'static>) -> MethodResult<LoginResult> {
    let manager = &context.manager;
    match parse_params::<LoginParams>(&params, EXPECTED)? {
        LoginParams::ApiKey { api_key } => {
            let warnings = manager
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
        } => {
            let secret = |s: auth_protocol::SecretString| Secret::new(s.into_inner());
            let tokens = HostTokens {
                access_token: secret(access_token),
                refresh_token: refresh_token.map(secret),
                id_token: id_token.map(secret),
                expires_at,
            };
            manager.login_tokens(tokens).await.map_err(convert::error)?;
            Ok(LoginResult::Tokens)
        }
        LoginParams::Oauth | LoginParams::DeviceCode => {
            Err(convert::error(interactive_unavailable(context)))
        }
    }
}

fn interactive_unavailable(context: &ServerContext) -> AuthError {
    match context.manager.provider() {
        Provider::None => AuthError::NoProvider { config_path: context.manager.store().home().join("config.toml") },
        Provider::Misconfigured(error) => AuthError::ProviderMisconfigured(error.clone()),
        Provider::Configured(_) => AuthError::ProviderUnavailable(
            "interactive sign-in is not available in this build yet: use login type \"tokens\" or \"apiKey\"".into(),
        ),
    }
}
