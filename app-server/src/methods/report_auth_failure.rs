//! `reportAuthFailure`: a client says an API rejected its token; answer what to do, refreshing
//! (single-flight) when that is the fix.

use auth_core::{RejectedRequest, Secret};
use auth_protocol::{ReportAuthFailureParams, ReportAuthFailureResult, method};
use jsonrpsee::types::Params;

use super::{MethodResult, ParamsShape, ServerContext, parse_params};
use crate::convert;

static PARAMS: ParamsShape<ReportAuthFailureParams> = ParamsShape::new(
    method::REPORT_AUTH_FAILURE,
    r#"{"status":integer,"body"?:string,"wwwAuthenticate"?:string,"rejectedToken"?:string}"#,
);

pub async fn handle(
    context: &ServerContext,
    params: Params<'static>,
) -> MethodResult<ReportAuthFailureResult> {
    let params: ReportAuthFailureParams = parse_params(&params, &PARAMS)?;
    let request = RejectedRequest {
        status: params.status,
        body: params.body,
        www_authenticate: params.www_authenticate,
        rejected_token: params.rejected_token.map(|t| Secret::new(t.into_inner())),
    };
    let outcome = context
        .manager
        .report_auth_failure(request)
        .await
        .map_err(convert::error)?;
    Ok(convert::failure_outcome(outcome))
}
