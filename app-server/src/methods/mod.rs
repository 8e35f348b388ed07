//! The JSON-RPC methods, one file each, registered on one `RpcModule`. Handlers parse their
//! params into `auth-protocol` types, call `auth-core`, and convert the outcome back.

mod cancel_login;
mod complete_login;
mod get_auth_status;
pub mod initialize;
mod login;
mod logout;
mod param_errors;
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
        .register_async_method(method::COMPLETE_LOGIN, |params, context, _| async move {
            complete_login::handle(&context, params).await
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
            param_errors::describe::<T>(raw, &e)
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
