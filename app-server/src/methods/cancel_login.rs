//! `cancelLogin`: stop a pending interactive sign-in (it then ends with `loginCompleted`
//! `success: false`).

use auth_protocol::method::CancelLogin;
use auth_protocol::{CancelLoginParams, CancelLoginResult, CancelLoginStatus};

use super::{Handler, MethodResult, ServerContext};

impl Handler for CancelLogin {
    async fn handle(
        context: &ServerContext,
        params: CancelLoginParams,
    ) -> MethodResult<CancelLoginResult> {
        let status = if context
            .registry
            .with_login(&params.login_id)
            .cancel_login(&params.login_id)
        {
            CancelLoginStatus::Canceled
        } else {
            CancelLoginStatus::NotFound
        };
        Ok(CancelLoginResult { status })
    }
}
