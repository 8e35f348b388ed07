//! `reportAuthFailure`: a client says an API rejected the token it was given.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::{AuthStatus, CredentialName, SecretString};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct ReportAuthFailureParams {
    /// The HTTP status the API answered.
    pub status: u16,
    /// The response body (or its start), used to tell an auth failure from a WAF page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "String")]
    pub body: Option<String>,
    /// The `WWW-Authenticate` response header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "String")]
    pub www_authenticate: Option<String>,
    /// The token the API rejected; lets the server see that it was already rotated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "SecretString")]
    pub rejected_token: Option<SecretString>,
    /// Which credential (contract version 3); absent: `"default"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(as = "Option<CredentialName>", optional)]
    #[schemars(with = "CredentialName")]
    pub credential: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub enum AuthFailureAction {
    /// The token was refreshed; retry with `authToken`.
    Refreshed,
    /// The rejected token had already been replaced; retry with `authToken`.
    AlreadyRotated,
    /// The response was not an authentication failure; nothing was done.
    NotAuthFailure,
    /// The user must sign in again.
    NeedsLogin,
    /// The refresh failed transiently; retry after `refreshError.retryAfterSecs`.
    RetryLater,
    /// The token lacks a scope; a refresh does not fix that.
    InsufficientScope,
    /// The API rejected the stored API key; see `hint`.
    ApiKeyRejected,
    /// The rejected token came from a refresh that an earlier report caused less than a
    /// minute ago, so no refresh was made: see `hint` for the likely causes (audience or
    /// `resource`, missing scope, an account without access, clock skew). Contract version 2.
    RefreshDidNotHelp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct ReportAuthFailureResult {
    #[serde(flatten)]
    pub status: AuthStatus,
    pub action: AuthFailureAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "String")]
    pub hint: Option<String>,
    /// `insufficientScope` only, when the challenge named them (`scope="..."`): the scopes the
    /// API asks for; pass them as `scopes` of a new `login`. Contract version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "Vec<String>")]
    pub required_scopes: Option<Vec<String>>,
}
