//! `logout`: forget the stored credentials.

use auth_protocol::{LogoutParams, LogoutResult};
use jsonrpsee::types::Params;

use super::{MethodResult, ServerContext, parse_optional_params};
use crate::convert;

pub async fn handle(
    context: &ServerContext,
    params: Params<'static>,
) -> MethodResult<LogoutResult> {
    let _: LogoutParams = parse_optional_params(&params, "no params, or {}")?;
    let outcome = context.manager.logout().await.map_err(convert::error)?;
    Ok(convert::logout(outcome))
}
