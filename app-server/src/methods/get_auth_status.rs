//! `getAuthStatus`: the stored credentials' status, optionally with the token, optionally
//! refreshing a stale one first.

use auth_core::StatusOptions;
use auth_protocol::method::GetAuthStatus;
use auth_protocol::{AuthStatus, GetAuthStatusParams};

use super::{Handler, MethodResult, ServerContext};
use crate::convert;

impl Handler for GetAuthStatus {
    async fn handle(
        context: &ServerContext,
        params: GetAuthStatusParams,
    ) -> MethodResult<AuthStatus> {
        let options = StatusOptions {
            include_token: params.include_token,
            refresh: params.refresh_token,
            wait_for_refresh: false,
        };
        let report = context
            .credential
            .status(options)
            .await
            .map_err(convert::error)?;
        Ok(convert::status(report))
    }
}
