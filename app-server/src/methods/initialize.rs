//! `initialize`, all of it: [`Handshake`] decides, in the order lines arrive, which requests
//! may run (before a valid `initialize`, none; `initialize` itself once), and the handler
//! describes the server.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};

use auth_protocol::method::{self, Initialize};
use auth_protocol::{
    InitializeParams, InitializeResult, Method, PROTOCOL_VERSION, ServerInfo, error_code,
};
use jsonrpsee::types::ErrorObjectOwned;

use super::params_shape::ParamsShape;
use super::{Handler, MethodResult, ServerContext, parse_params};

/// What the handshake says of one request or notification.
#[derive(Debug)]
pub enum Gate {
    /// It may run.
    Pass,
    /// A notification that needs nothing.
    Ignore,
    /// A request answered with this error instead.
    Refuse(ErrorObjectOwned),
}

/// Whether `initialize` has succeeded. Read and written only by the reader, in line order.
#[derive(Debug, Default)]
pub struct Handshake {
    done: AtomicBool,
}

impl Handshake {
    /// Decides on one message: `is_request` when it has an id; `params` raw.
    pub fn admit(&self, name: &str, is_request: bool, params: Option<&str>) -> Gate {
        static SHAPE: LazyLock<ParamsShape> = LazyLock::new(ParamsShape::of::<Initialize>);
        let refuse = |code, message: &str| {
            Gate::Refuse(ErrorObjectOwned::owned(
                code,
                message.to_owned(),
                None::<()>,
            ))
        };
        let done = self.done.load(Ordering::Acquire);
        match (name, is_request, done) {
            (Initialize::NAME, false, _) => Gate::Ignore,
            (Initialize::NAME, true, true) => refuse(
                error_code::INVALID_REQUEST,
                "already initialized: send initialize once per process",
            ),
            (Initialize::NAME, true, false) => {
                match parse_params::<InitializeParams>(params, &SHAPE) {
                    Ok(_) => {
                        self.done.store(true, Ordering::Release);
                        Gate::Pass
                    }
                    Err(error) => Gate::Refuse(error),
                }
            }
            (_, true, false) => refuse(
                error_code::NOT_INITIALIZED,
                "not initialized: send initialize with clientInfo first",
            ),
            (_, false, false) => Gate::Ignore,
            (method::INITIALIZED, false, true) => Gate::Ignore,
            (_, _, true) => Gate::Pass,
        }
    }
}

impl Handler for Initialize {
    async fn handle(
        context: &ServerContext,
        params: InitializeParams,
    ) -> MethodResult<InitializeResult> {
        // The name a dynamic client registration gives the provider (zero-configuration sign-in).
        context.registry.set_client_name(&params.client_info.name);
        Ok(InitializeResult {
            server_info: ServerInfo {
                name: "auth-app-server".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            protocol_version: PROTOCOL_VERSION,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(handshake: &Handshake, name: &str, is_request: bool, params: Option<&str>) -> String {
        match handshake.admit(name, is_request, params) {
            Gate::Pass => "pass".into(),
            Gate::Ignore => "ignore".into(),
            Gate::Refuse(error) => error.code().to_string(),
        }
    }

    #[test]
    fn requests_wait_for_one_valid_initialize() {
        let handshake = Handshake::default();
        let hello = Some(r#"{"clientInfo":{"name":"n","version":"1"}}"#);
        let steps: [(&str, bool, Option<&str>, &str); 8] = [
            ("getAuthStatus", true, None, "-32002"),
            ("getAuthStatus", false, None, "ignore"),
            ("initialize", false, hello, "ignore"),
            ("initialize", true, Some("{}"), "-32602"),
            ("initialize", true, hello, "pass"),
            ("initialize", true, hello, "-32600"),
            ("initialized", false, None, "ignore"),
            ("getAuthStatus", true, None, "pass"),
        ];
        for (name, is_request, params, expected) in steps {
            assert_eq!(
                gate(&handshake, name, is_request, params),
                expected,
                "{name}"
            );
        }
    }
}
