//! `logout`: forget the stored credentials.

use auth_protocol::{LogoutParams, LogoutResult, method};
use jsonrpsee::types::Params;

use super::{MethodResult, ParamsShape, ServerContext, parse_optional_params};
use crate::convert;

static PARAMS: ParamsShape<LogoutParams> = ParamsShape::new(method::LOGOUT, "no params, or {}");

pub async fn handle(
    context: &ServerContext,
    params: Params<'static>,
) -> MethodResult<LogoutResult> {
    let _: LogoutParams = parse_optional_params(&params, &PARAMS)?;
    let outcome = context.manager.logout().await.map_err(convert::error)?;
    Ok(convert::logout(outcome))
}
