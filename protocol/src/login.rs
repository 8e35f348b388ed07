//! `login`, `cancelLogin`, `completeLogin` and `logout`.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::{CredentialName, LoginProvider, SecretString};

/// How to sign in; tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum LoginParams {
    /// Store an API key.
    ApiKey {
        api_key: SecretString,
        /// Which credential (contract version 3); absent: `"default"`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(as = "Option<CredentialName>", optional)]
        #[schemars(with = "CredentialName")]
        credential: Option<String>,
    },
    /// Browser sign-in: authorization code with PKCE and a loopback redirect.
    Oauth {
        /// Scopes to request besides the configured ones and those already granted (step-up,
        /// e.g. `requiredScopes` of an `insufficientScope` answer). Contract version 2.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        #[schemars(with = "Vec<String>")]
        scopes: Option<Vec<String>>,
        /// Which credential (contract version 3); absent: `"default"`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(as = "Option<CredentialName>", optional)]
        #[schemars(with = "CredentialName")]
        credential: Option<String>,
        /// The provider of a new named credential (contract version 3), when `config.toml` has no
        /// `[credentials.NAME]` table for it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        #[schemars(with = "LoginProvider")]
        provider: Option<LoginProvider>,
    },
    /// Device authorization grant (RFC 8628).
    DeviceCode {
        /// As for `oauth`. Contract version 2.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        #[schemars(with = "Vec<String>")]
        scopes: Option<Vec<String>>,
        /// Which credential (contract version 3); absent: `"default"`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(as = "Option<CredentialName>", optional)]
        #[schemars(with = "CredentialName")]
        credential: Option<String>,
        /// The provider of a new named credential (contract version 3), when `config.toml` has no
        /// `[credentials.NAME]` table for it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        #[schemars(with = "LoginProvider")]
        provider: Option<LoginProvider>,
    },
    /// Tokens the host app obtained itself.
    Tokens {
        access_token: SecretString,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        #[schemars(with = "SecretString")]
        refresh_token: Option<SecretString>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        #[schemars(with = "SecretString")]
        id_token: Option<SecretString>,
        /// Unix seconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        #[schemars(with = "i64")]
        expires_at: Option<i64>,
        /// Which credential (contract version 3); absent: `"default"`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(as = "Option<CredentialName>", optional)]
        #[schemars(with = "CredentialName")]
        credential: Option<String>,
        /// The provider of a new named credential (contract version 3), when `config.toml` has no
        /// `[credentials.NAME]` table for it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        #[schemars(with = "LoginProvider")]
        provider: Option<LoginProvider>,
    },
}

impl LoginParams {
    /// The credential named, if any.
    pub fn credential(&self) -> Option<&str> {
        match self {
            Self::ApiKey { credential, .. }
            | Self::Oauth { credential, .. }
            | Self::DeviceCode { credential, .. }
            | Self::Tokens { credential, .. } => credential.as_deref(),
        }
    }

    /// The provider object, if any (`apiKey` has none).
    pub fn provider(&self) -> Option<&LoginProvider> {
        match self {
            Self::ApiKey { .. } => None,
            Self::Oauth { provider, .. }
            | Self::DeviceCode { provider, .. }
            | Self::Tokens { provider, .. } => provider.as_ref(),
        }
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum LoginResult {
    /// Stored at once; `warnings` is advice that did not block the login.
    ApiKey { warnings: Vec<String> },
    /// Open `authUrl` in a browser; `loginCompleted` tells how it ended.
    Oauth { login_id: String, auth_url: String },
    /// Show `userCode` and `verificationUri`; `loginCompleted` tells how it ended.
    DeviceCode {
        login_id: String,
        verification_uri: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        #[schemars(with = "String")]
        verification_uri_complete: Option<String>,
        user_code: String,
        /// Unix seconds.
        expires_at: i64,
        interval_secs: u64,
    },
    /// Stored at once.
    Tokens,
}

// The device flow's user code and complete URI are shown to the user by design, but they
// still grant a sign-in while pending, so `Debug` leaves them out.
impl fmt::Debug for LoginResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ApiKey { warnings } => f
                .debug_struct("ApiKey")
                .field("warnings", warnings)
                .finish(),
            Self::Oauth { login_id, .. } => f
                .debug_struct("Oauth")
                .field("login_id", login_id)
                .finish_non_exhaustive(),
            Self::DeviceCode {
                login_id,
                expires_at,
                interval_secs,
                ..
            } => f
                .debug_struct("DeviceCode")
                .field("login_id", login_id)
                .field("expires_at", expires_at)
                .field("interval_secs", interval_secs)
                .finish_non_exhaustive(),
            Self::Tokens => f.write_str("Tokens"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct CancelLoginParams {
    pub login_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
pub struct CancelLoginResult {
    pub status: CancelLoginStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub enum CancelLoginStatus {
    Canceled,
    NotFound,
}

/// `completeLogin` (contract version 2): the address the browser ended on after a browser
/// sign-in, for when the browser cannot reach this machine's loopback (SSH, containers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct CompleteLoginParams {
    /// The `loginId` of the pending `oauth` login.
    pub login_id: String,
    /// The whole address from the browser's address bar
    /// (`http://127.0.0.1:<port>/callback?code=...&state=...`). It carries the authorization
    /// code: treat it as a secret.
    pub callback_url: SecretString,
}

/// `completeLogin`'s answer: the address was accepted; `loginCompleted` tells how the login
/// ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
pub struct CompleteLoginResult {}

/// `logout` takes no params (or `{}`), or the credential to sign out of.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
pub struct LogoutParams {
    /// Which credential (contract version 3); absent: `"default"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(as = "Option<CredentialName>", optional)]
    #[schemars(with = "CredentialName")]
    pub credential: Option<String>,
}

/// `logout`'s answer. Both members are absent when there was no refresh token to revoke (an
/// API key, signed out). Contract version 2 addition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct LogoutResult {
    /// Whether the refresh token was revoked at the provider (RFC 7009).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "bool")]
    pub revoked: Option<bool>,
    /// Why it was not revoked (no revocation endpoint, the provider refused or did not
    /// answer): the refresh token may stay valid at the provider until it expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "String")]
    pub reason: Option<String>,
}
