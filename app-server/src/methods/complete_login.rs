//! `completeLogin`: the address a browser ended on, pasted by the user, finishes the pending
//! browser sign-in (for browsers that cannot reach this machine's loopback). It is checked
//! like a callback to the listener; the login then ends with `loginCompleted`.

use auth_core::Secret;
use auth_protocol::method::CompleteLogin;
use auth_protocol::{CompleteLoginParams, CompleteLoginResult};

use super::{Handler, MethodResult, ServerContext};
use crate::convert;

impl Handler for CompleteLogin {
    async fn handle(
        context: &ServerContext,
        params: CompleteLoginParams,
    ) -> MethodResult<CompleteLoginResult> {
        context
            .registry
            .with_login(&params.login_id)
            .complete_login(
                &params.login_id,
                &Secret::new(params.callback_url.into_inner()),
            )
            .await
            .map_err(convert::error)?;
        Ok(CompleteLoginResult {})
    }
}
