//! `getAuthStatus`: the stored credentials' status, optionally with the token, optionally
//! refreshing a stale one first.

use std::time::Instant;

use auth_core::{StatusOptions, StatusReport};
use auth_protocol::method::GetAuthStatus;
use auth_protocol::{AuthStatus, GetAuthStatusParams};

use super::{Handler, MethodResult, ServerContext};
use crate::convert;

impl Handler for GetAuthStatus {
    async fn handle(
        context: &ServerContext,
        params: GetAuthStatusParams,
    ) -> MethodResult<AuthStatus> {
        Self::handle_received(context, params, None).await
    }

    /// A poll whose line had arrived by `received` is answered from the credential's view
    /// without a `stat` when a `stat` made after `received` already confirmed it (polls read
    /// together from stdin share one).
    async fn handle_received(
        context: &ServerContext,
        params: GetAuthStatusParams,
        received: Option<Instant>,
    ) -> MethodResult<AuthStatus> {
        let which = super::which(params.credential.as_deref())?;
        let Some(credential) = context
            .registry
            .existing(&which)
            .await
            .map_err(convert::error)?
        else {
            // Nothing stored under this name: signed out, and nothing kept for it.
            let mut report = StatusReport::signed_out();
            report.storage = Some(context.registry.default_credential().store().kind());
            return Ok(convert::status(report));
        };
        let options = StatusOptions {
            include_token: params.include_token,
            refresh: params.refresh_token,
            wait_for_refresh: false,
            received,
        };
        let report = credential.status(options).await.map_err(convert::error)?;
        Ok(convert::status(report))
    }
}
