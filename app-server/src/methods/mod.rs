//! The JSON-RPC methods, one file each, registered on one `RpcModule`. Handlers parse their
//! params into `auth-protocol` types (by name only; members this server does not know are
//! accepted and logged), call `auth-core`, and convert the outcome back.

mod cancel_login;
mod complete_login;
mod get_auth_status;
pub mod initialize;
mod login;
mod logout;
mod param_errors;
mod report_auth_failure;
mod unknown_members;

use std::marker::PhantomData;
use std::sync::{Arc, LazyLock};

use auth_core::AuthManager;
use auth_protocol::schema::params_schema;
use auth_protocol::{error_code, method};
use jsonrpsee::RpcModule;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use self::unknown_members::Members;

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

/// What a method's params look like: said in JSON terms in error messages, and read from the
/// params type's JSON Schema to tell the members this server knows from those it does not.
pub struct ParamsShape<T> {
    method: &'static str,
    /// The params in JSON terms, for error messages (`{"loginId":string}`).
    expected: &'static str,
    members: LazyLock<Members, fn() -> Members>,
    params: PhantomData<fn() -> T>,
}

impl<T: JsonSchema> ParamsShape<T> {
    pub const fn new(method: &'static str, expected: &'static str) -> Self {
        Self {
            method,
            expected,
            members: LazyLock::new(|| Members::from_schema(&params_schema::<T>())),
            params: PhantomData,
        }
    }
}

/// Parses required params: an object (params by position are refused). The message names what
/// was wrong without quoting values (a misplaced secret must not come back in an error).
/// Members this server does not know are accepted and logged (see [`unknown_members`]).
pub fn parse_params<T: DeserializeOwned + JsonSchema>(
    params: &Params,
    shape: &ParamsShape<T>,
) -> MethodResult<T> {
    let expected = shape.expected;
    let Some(raw) = params.as_str() else {
        return Err(invalid_params(&format!(
            "params are missing; expected {expected}"
        )));
    };
    if raw.starts_with('[') {
        return Err(invalid_params(&format!(
            "params must be an object of named members, not an array (params by position are not accepted); expected {expected}"
        )));
    }
    let parsed = serde_json::from_str(raw).map_err(|e| {
        invalid_params(&format!(
            "{}; expected {expected}",
            param_errors::describe::<T>(raw, &e)
        ))
    })?;
    unknown_members::warn(shape.method, &shape.members, raw);
    Ok(parsed)
}

/// Parses params that may be omitted entirely.
pub fn parse_optional_params<T: DeserializeOwned + JsonSchema + Default>(
    params: &Params,
    shape: &ParamsShape<T>,
) -> MethodResult<T> {
    match params.as_str() {
        None => Ok(T::default()),
        Some(_) => parse_params(params, shape),
    }
}

pub fn invalid_params(message: &str) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        error_code::INVALID_PARAMS,
        format!("invalid params: {message}"),
        None::<()>,
    )
}
