//! `getAuthStatus`: the stored credentials' status, optionally with the token, optionally
//! refreshing a stale one first.

use auth_core::StatusOptions;
use auth_protocol::{AuthStatus, GetAuthStatusParams};
use jsonrpsee::types::Params;

use super::{MethodResult, ServerContext, parse_optional_params};
use crate::convert;

const EXPECTED: &str = r#"{"includeToken"?:bool,"refreshToken"?:bool}"#;

pub async fn handle(context: &ServerContext, params: Params<'static>) -> MethodResult<AuthStatus> {
    let params: GetAuthStatusParams = parse_optional_params(&params, EXPECTED)?;
    let options = StatusOptions {
        include_token: params.include_token,
        refresh: params.refresh_token,
        wait_for_refresh: false,
    };
    let report = context
        .manager
        .status(options)
        .await
        .map_err(convert::error)?;
    Ok(convert::status(report))
}
