//! `logout`: forget the stored credentials.

use auth_protocol::method::Logout;
use auth_protocol::{LogoutParams, LogoutResult};

use super::{Handler, MethodResult, ServerContext};
use crate::convert;

impl Handler for Logout {
    async fn handle(context: &ServerContext, params: LogoutParams) -> MethodResult<LogoutResult> {
        let which = super::which(params.credential.as_deref())?;
        let existing = context
            .registry
            .existing(&which)
            .await
            .map_err(convert::error)?;
        let Some(credential) = existing else {
            // Nothing stored under this name: nothing to do, and nothing created for it; the
            // notification every logout sends is sent all the same.
            context.registry.announce_signed_out(&which);
            return Ok(LogoutResult::default());
        };
        let outcome = credential.logout().await.map_err(convert::error)?;
        Ok(convert::logout(outcome))
    }
}
