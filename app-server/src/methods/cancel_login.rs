//! `cancelLogin`: stop a pending interactive sign-in.

use auth_protocol::{CancelLoginParams, CancelLoginResult, CancelLoginStatus};
use jsonrpsee::types::Params;

use super::{MethodResult, ServerContext, parse_params};

pub async fn handle(
    _context: &ServerContext,
    params: Params<'static>,
) -> MethodResult<CancelLoginResult> {
    let _params: CancelLoginParams = parse_params(&params, r#"{"loginId":string}"#)?;
    // No interactive login can be pending until those flows exist.
    Ok(CancelLoginResult {
        status: CancelLoginStatus::NotFound,
    })
}
