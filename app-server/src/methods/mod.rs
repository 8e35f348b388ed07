//! The JSON-RPC methods, one file each, registered on one `RpcModule` from the protocol's
//! method list ([`auth_protocol::for_each_method!`]): every entry of the list must have a
//! [`Handler`] here, or the server does not compile. Params are parsed into the entry's params
//! type before the handler runs (by name only; members this server does not know are accepted
//! and logged); handlers call `auth-core` and convert the outcome back.

mod cancel_login;
mod complete_login;
mod get_auth_status;
pub mod initialize;
mod list_credentials;
mod login;
mod logout;
mod param_errors;
mod params_shape;
mod report_auth_failure;
mod unknown_members;

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use auth_core::registry::{Registry, Which};
use auth_core::{AuthError, Credential};
use auth_protocol::{Method, error_code};
use jsonrpsee::RpcModule;
use jsonrpsee::types::ErrorObjectOwned;
use serde::de::DeserializeOwned;

use self::params_shape::ParamsShape;
use crate::convert;

/// What every handler can reach.
pub struct ServerContext {
    pub registry: Arc<Registry>,
}

impl ServerContext {
    /// The credential a request names (`credential`; absent: the default one), read when
    /// first used.
    pub async fn credential(&self, name: Option<&str>) -> MethodResult<Arc<Credential>> {
        let which = which(name)?;
        self.registry.get(&which).await.map_err(convert::error)
    }
}

/// The checked `credential` member of a request.
pub fn which(name: Option<&str>) -> MethodResult<Which> {
    Which::parse(name).map_err(|error| match error {
        AuthError::InvalidInput(message) => invalid_params(&message),
        other => convert::error(other),
    })
}

pub type MethodResult<T> = Result<T, ErrorObjectOwned>;

/// What a method does with its (parsed) params: one implementation per entry of the method
/// list, in the method's own file.
pub trait Handler: Method {
    fn handle(
        context: &ServerContext,
        params: Self::Params,
    ) -> impl Future<Output = MethodResult<Self::Result>> + Send;

    /// [`Handler::handle`] for a request whose line had arrived by `received` (when the
    /// dispatcher knows it). Only a method that can use it overrides this.
    fn handle_received(
        context: &ServerContext,
        params: Self::Params,
        received: Option<Instant>,
    ) -> impl Future<Output = MethodResult<Self::Result>> + Send {
        let _ = received;
        Self::handle(context, params)
    }
}

/// Defines [`module`] with a registration per entry of the method list.
macro_rules! register_methods {
    ($($(#[doc = $doc:literal])* $name:ident = $wire:literal { $($types:tt)* }),* $(,)?) => {
        /// Every method of the list, on one `RpcModule`.
        pub fn module(context: ServerContext) -> RpcModule<ServerContext> {
            let mut module = RpcModule::new(context);
            $(register::<auth_protocol::method::$name>(&mut module);)*
            module
        }
    };
}

auth_protocol::for_each_method!(register_methods);

fn register<M: Handler>(module: &mut RpcModule<ServerContext>) {
    // Read from the params' schema when the method is first called.
    let shape = Arc::new(LazyLock::new(ParamsShape::of::<M> as fn() -> ParamsShape));
    module
        .register_async_method(M::NAME, move |params, context, _| {
            let shape = shape.clone();
            let received = crate::dispatch::received();
            async move {
                let params = parse_params::<M::Params>(params.as_str(), &shape)?;
                M::handle_received(&context, params, received).await
            }
        })
        .expect("method names are unique");
}

/// Parses params: an object (params by position are refused). Params may be left out when
/// `{}` would do. The message names what was wrong without quoting values (a misplaced secret
/// must not come back in an error). Members this server does not know are accepted and logged
/// (see [`unknown_members`]).
fn parse_params<T: DeserializeOwned>(raw: Option<&str>, shape: &ParamsShape) -> MethodResult<T> {
    let expected = shape.expected();
    let Some(raw) = raw else {
        return serde_json::from_str("{}")
            .map_err(|_| invalid_params(&format!("params are missing; expected {expected}")));
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
    unknown_members::warn(shape.method(), shape.members(), raw);
    Ok(parsed)
}

fn invalid_params(message: &str) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        error_code::INVALID_PARAMS,
        format!("invalid params: {message}"),
        None::<()>,
    )
}
