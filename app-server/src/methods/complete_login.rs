//! `completeLogin`: the address a browser ended on, pasted by the user, finishes the pending
//! browser sign-in (for browsers that cannot reach this machine's loopback). It is checked
//! like a callback to the listener; the login then ends with `loginCompleted`.

use auth_core::Secret;
use auth_protocol::{CompleteLoginParams, CompleteLoginResult, method};
use jsonrpsee::types::Params;

use super::{MethodResult, ParamsShape, ServerContext, parse_params};
use crate::convert;

static PARAMS: ParamsShape<CompleteLoginParams> = ParamsShape::new(
    method::COMPLETE_LOGIN,
    r#"{"loginId":string,"callbackUrl":string}"#,
);

pub async fn handle(
    context: &ServerContext,
    params: Params<'static>,
) -> MethodResult<CompleteLoginResult> {
    let params: CompleteLoginParams = parse_params(&params, &PARAMS)?;
    context
        .manager
        .complete_login(
            &params.login_id,
            &Secret::new(params.callback_url.into_inner()),
        )
        .await
        .map_err(convert::error)?;
    Ok(CompleteLoginResult {})
}
