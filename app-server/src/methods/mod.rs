//! The JSON-RPC methods, one file each, registered on one `RpcModule`. Handlers parse their
//! params into `auth-protocol` types, call `auth-core`, and convert the outcome back.

mod cancel_login;
mod get_auth_status;
pub mod initialize;
mod login;
mod logout;
mod report_auth_failure;

use std::sync::Arc;

use auth_core::AuthManager;
use auth_protocol::{error_code, method};
use jsonrpsee::RpcModule;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde::de::DeserializeOwned;

/// What every handler can reach.
pub struct ServerContext {
    pub manager: Arc<AuthManager>,
}

pub type MethodResult<T> = Result<T, ErrorObjectOwned>;

pub fn module(context: ServerContext) -> RpcModule<ServerContext> {
    let mut module = RpcModule::new(context);
    module
        .register_async_method(method::INITIALIZE, |_, _, _| async { initialize::handle() })
        .expect("method names are unique");
    module
        .register_async_method(method::GET_AUTH_STATUS, |params, context, _| async move {
            get_auth_status::handle(&context, params).await
        })
        .expect("method names are unique");
    module
        .register_async_method(method::LOGIN, |params, context, _| async move {
            login::handle(&context, params).await
        })
        .expect("method names are unique");
    module
        .register_async_method(method::CANCEL_LOGIN, |params, context, _| async move {
            cancel_login::handle(&context, params).await
        })
        .expect("method names are unique");
    module
        .register_async_method(method::LOGOUT, |params, context, _| async move {
            logout::handle(&context, params).await
        })
        .expect("method names are unique");
    module
        .register_async_method(
            method::REPORT_AUTH_FAILURE,
            |params, context, _| async move { report_auth_failure::handle(&context, params).await },
        )
        .expect("method names are unique");
    module
}

/// Parses required params. The message names what was wrong without quoting values (a
/// misplaced secret must not come back in an error).
pub fn parse_params<T: DeserializeOwned>(params: &Params, expected: &str) -> MethodResult<T> {
    let Some(raw) = params.as_str() else {
        return Err(invalid_params(&format!(
            "params are missing; expected {expected}"
        )));
    };
    serde_json::from_str(raw).map_err(|e| {
        invalid_params(&format!(
            "{}; expected {expected}",
            redact_values(&e.to_string())
        ))
    })
}

/// Parses params that may be omitted entirely.
pub fn parse_optional_params<T: DeserializeOwned + Default>(
    params: &Params,
    expected: &str,
) -> MethodResult<T> {
    match params.as_str() {
        None => Ok(T::default()),
        Some(_) => parse_params(params, expected),
    }
}

pub fn invalid_params(message: &str) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        error_code::INVALID_PARAMS,
        format!("invalid params: {message}"),
        None::<()>,
    )
}

/// serde's messages quote the offending value (`string "…"`, ``unknown variant `…` ``); keep
/// the shape of the message and drop the values.
fn redact_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find('"') {
        out.push_str(&rest[..start]);
        out.push_str("\"…\"");
        rest = match rest[start + 1..].find('"') {
            Some(end) => &rest[start + 1 + end + 1..],
            None => "",
        };
    }
    out.push_str(rest);
    match out.find("unknown variant `") {
        Some(at) => {
            let value_start = at + "unknown variant `".len();
            match out[value_start..].find('`') {
                Some(len) => format!("{}…{}", &out[..value_start], &out[value_start + len..]),
                None => out,
            }
        }
        None => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_never_come_back_in_param_errors() {
        let cases = [
            (
                "invalid type: string \"sk-secret\", expected a boolean at line 1 column 9",
                "invalid type: string \"…\", expected a boolean at line 1 column 9",
            ),
            (
                "unknown variant `sk-secret`, expected one of `apiKey`, `oauth`",
                "unknown variant `…`, expected one of `apiKey`, `oauth`",
            ),
            ("missing field `apiKey`", "missing field `apiKey`"),
        ];
        for (message, expected) in cases {
            assert_eq!(redact_values(message), expected);
        }
    }
}
