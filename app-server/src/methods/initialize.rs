//! `initialize`: the handshake. The dispatcher checks its params in line order (see
//! `dispatch`); the handler only describes the server.

use auth_protocol::{InitializeParams, InitializeResult, PROTOCOL_VERSION, ServerInfo, method};
use jsonrpsee::types::{ErrorObjectOwned, Params};

use super::{MethodResult, ParamsShape, parse_params};

static PARAMS: ParamsShape<InitializeParams> = ParamsShape::new(
    method::INITIALIZE,
    r#"{"clientInfo":{"name":string,"version":string}}"#,
);

/// Whether `params` make a valid handshake.
pub fn check_params(params: Option<&str>) -> Result<(), ErrorObjectOwned> {
    parse_params(&Params::new(params), &PARAMS).map(drop)
}

pub fn handle() -> MethodResult<InitializeResult> {
    Ok(InitializeResult {
        server_info: ServerInfo {
            name: "auth-app-server".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        protocol_version: PROTOCOL_VERSION,
    })
}
