//! `reportAuthFailure`: a client says an API rejected its token; answer what to do, refreshing
//! (single-flight) when that is the fix.

use auth_core::{RejectedRequest, Secret};
use auth_protocol::method::ReportAuthFailure;
use auth_protocol::{ReportAuthFailureParams, ReportAuthFailureResult};

use super::{Handler, MethodResult, ServerContext};
use crate::convert;

impl Handler for ReportAuthFailure {
    async fn handle(
        context: &ServerContext,
        params: ReportAuthFailureParams,
    ) -> MethodResult<ReportAuthFailureResult> {
        let credential = context.credential(params.credential.as_deref()).await?;
        let request = RejectedRequest {
            status: params.status,
            body: params.body,
            www_authenticate: params.www_authenticate,
            rejected_token: params.rejected_token.map(|t| Secret::new(t.into_inner())),
        };
        let outcome = credential
            .report_auth_failure(request)
            .await
            .map_err(convert::error)?;
        Ok(convert::failure_outcome(outcome))
    }
}
