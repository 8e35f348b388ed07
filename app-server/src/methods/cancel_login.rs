//! `cancelLogin`: stop a pending interactive sign-in (it then ends with `loginCompleted`
//! `success: false`).

use auth_protocol::{CancelLoginParams, CancelLoginResult, CancelLoginStatus};
use jsonrpsee::types::Params;

use super::{MethodResult, ServerContext, parse_params};

pub async fn handle(
    context: &ServerContext,
    params: Params<'static>,
) -> MethodResult<CancelLoginResult> {
    let params: CancelLoginParams = parse_params(&params, r#"{"loginId":string}"#)?;
    let status = if context.manager.cancel_login(&params.login_id) {
        CancelLoginStatus::Canceled
    } else {
        CancelLoginStatus::NotFound
    };
    Ok(CancelLoginResult { status })
}
