//! `getAuthStatus`: what the client may do with the stored credentials right now.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::{CredentialName, SecretString};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct GetAuthStatusParams {
    /// Put the bearer token in the answer (only when it is usable).
    #[serde(default)]
    #[ts(as = "Option<bool>", optional)]
    pub include_token: bool,
    /// Refresh a stale OAuth access token before answering.
    #[serde(default)]
    #[ts(as = "Option<bool>", optional)]
    pub refresh_token: bool,
    /// Which credential (contract version 3); absent: `"default"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(as = "Option<CredentialName>", optional)]
    #[schemars(with = "CredentialName")]
    pub credential: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub enum AuthMethod {
    ApiKey,
    Oauth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub enum AuthState {
    /// No credentials are stored.
    SignedOut,
    /// The credentials are usable.
    Active,
    /// The last refresh failed transiently; the server will try again.
    Degraded,
    /// A refresh failed permanently: the user must sign in again.
    NeedsLogin,
}

/// The answer of `getAuthStatus` (and the base of `reportAuthFailure`'s answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct AuthStatus {
    /// How the user signed in; `null` when signed out.
    pub auth_method: Option<AuthMethod>,
    pub state: AuthState,
    /// The bearer token: only with `includeToken` and a usable token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "SecretString")]
    pub auth_token: Option<SecretString>,
    /// Expiry of the access token, unix seconds, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "i64")]
    pub expires_at: Option<i64>,
    /// Who is signed in, from the id token's claims, when there are any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "Account")]
    pub account: Option<Account>,
    /// Why the last refresh of these credentials failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "RefreshError")]
    pub refresh_error: Option<RefreshError>,
    /// Where the credentials are kept: `auth.json` in the home, or the OS keyring (with
    /// `[storage] backend = "auto"`, whichever answered at start). An addition of contract
    /// version 2: always sent by this server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "StorageBackend")]
    pub storage: Option<StorageBackend>,
    /// The RFC 8707 resource the tokens are for, as recorded with a named credential (contract
    /// version 3, a project addition): a host sends the token to that resource's origin only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "String")]
    pub resource: Option<String>,
}

/// Where the credential document is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub enum StorageBackend {
    /// `auth.json` in the home folder.
    File,
    /// The OS keyring (Secret Service, Keychain, Credential Manager); no secret in any file.
    Keyring,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
pub struct Account {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "String")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "String")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "String")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub enum RefreshErrorKind {
    /// Retrying will not help: the user (or the administrator) must act.
    Permanent,
    /// The server retries after `retryAfterSecs`.
    Transient,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct RefreshError {
    pub kind: RefreshErrorKind,
    /// The RFC 6749 error code the provider sent (e.g. `invalid_grant`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "String")]
    pub code: Option<String>,
    /// One line a person can act on.
    pub message: String,
    /// Transient only: seconds from now, rounded up, until the next attempt may hit the network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "u64")]
    pub retry_after_secs: Option<u64>,
}
