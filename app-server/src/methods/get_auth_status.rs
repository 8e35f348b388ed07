//! `getAuthStatus`: the stored credentials' status, optionally with the token, optionally
//! refreshing a stale one first.

use auth_core::StatusOptions;
use auth_protocol::{AuthStatus, GetAuthStatusParams, method};
use jsonrpsee::types::Params;

use super::{MethodResult, ParamsShape, ServerContext, parse_optional_params};
use crate::convert;

static PARAMS: ParamsShape<GetAuthStatusParams> = ParamsShape::new(
    method::GET_AUTH_STATUS,
    r#"{"includeToken"?:boolean,"refreshToken"?:boolean}"#,
);

pub async fn handle(context: &ServerContext, params: Params<'static>) -> MethodResult<AuthStatus> {
    let params: GetAuthStatusParams = parse_optional_params(&params, &PARAMS)?;
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
