//! `listCredentials` (contract version 3): every stored credential of the home, never a token;
//! contacts no provider.

use auth_protocol::method::ListCredentials;
use auth_protocol::{ListCredentialsParams, ListCredentialsResult};

use super::{Handler, MethodResult, ServerContext};
use crate::convert;

impl Handler for ListCredentials {
    async fn handle(
        context: &ServerContext,
        _: ListCredentialsParams,
    ) -> MethodResult<ListCredentialsResult> {
        let listed = context.registry.list().await;
        Ok(ListCredentialsResult {
            credentials: listed.into_iter().map(convert::listed).collect(),
        })
    }
}
