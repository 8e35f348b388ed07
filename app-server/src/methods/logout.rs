//! `logout`: forget the stored credentials.

use auth_protocol::method::Logout;
use auth_protocol::{LogoutParams, LogoutResult};

use super::{Handler, MethodResult, ServerContext};
use crate::convert;

impl Handler for Logout {
    async fn handle(context: &ServerContext, _: LogoutParams) -> MethodResult<LogoutResult> {
        let outcome = context.credential.logout().await.map_err(convert::error)?;
        Ok(convert::logout(outcome))
    }
}
