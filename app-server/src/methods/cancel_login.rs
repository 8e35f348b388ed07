//! `cancelLogin`: stop a pending interactive sign-in (it then ends with `loginCompleted`
//! `success: false`).

use auth_protocol::{CancelLoginParams, CancelLoginResult, CancelLoginStatus, method};
use jsonrpsee::types::Params;

use super::{MethodResult, ParamsShape, ServerContext, parse_params};

static PARAMS: ParamsShape<CancelLoginParams> =
    ParamsShape::new(method::CANCEL_LOGIN, r#"{"loginId":string}"#);

pub async fn handle(
    context: &ServerContext,
    params: Params<'static>,
) -> MethodResult<CancelLoginResult> {
    let params: CancelLoginParams = parse_params(&params, &PARAMS)?;
    let status = if context.manager.cancel_login(&params.login_id) {
        CancelLoginStatus::Canceled
    } else {
        CancelLoginStatus::NotFound
    };
    Ok(CancelLoginResult { status })
}
