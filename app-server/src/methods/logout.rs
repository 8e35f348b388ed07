//! `logout`: forget the stored credentials.

use auth_protocol::method::Logout;
use auth_protocol::{LogoutParams, LogoutResult};

use super::{Handler, MethodResult, ServerContext};
use crate::convert;

impl Handler for Logout {
    async fn handle(context: &ServerContext, params: LogoutParams) -> MethodResult<LogoutResult> {
        let credential = context.credential(params.credential.as_deref()).await?;
        let outcome = credential.logout().await.map_err(convert::error)?;
        Ok(convert::logout(outcome))
    }
}
