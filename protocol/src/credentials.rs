//! Contract version 3: many credentials in one home. Their names, the provider a `login` may
//! name for a new credential, and `listCredentials`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::{Account, AuthMethod, AuthState, StorageBackend};

/// The name of one of the credentials a home holds (contract version 3): it matches
/// [`CredentialName::PATTERN`]. `"default"` is the credential of `auth.json`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(transparent)]
pub struct CredentialName(String);

impl CredentialName {
    /// The rule every name follows.
    pub const PATTERN: &'static str = "^[a-z0-9][a-z0-9._-]{0,63}$";
    /// The name meant when none is given.
    pub const DEFAULT: &'static str = "default";
}

impl JsonSchema for CredentialName {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CredentialName".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "The name of one of the credentials a home holds (contract version 3); absent or `\"default\"`: the credential of `auth.json`.",
            "type": "string",
            "pattern": Self::PATTERN,
        })
    }
}

/// The provider of a named credential, given by the `login` that creates it (contract version
/// 3), for when `config.toml` has no `[credentials.NAME]` table: the keys of `[provider]` that
/// a host knows. At least one of `issuer` and `protectedResource`; URLs are https, or http on a
/// loopback host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct LoginProvider {
    /// The authorization server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "String")]
    pub issuer: Option<String>,
    /// A protected resource (an MCP server's URL) whose metadata names the authorization
    /// server (RFC 9728); also the default `resource`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "String")]
    pub protected_resource: Option<String>,
    /// Absent: one is obtained at sign-in (zero-configuration sign-in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "String")]
    pub client_id: Option<String>,
    /// The app's Client ID Metadata Document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "String")]
    pub client_metadata_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "Vec<String>")]
    pub scopes: Option<Vec<String>>,
    /// The RFC 8707 resource indicator; defaults to `protectedResource`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "String")]
    pub resource: Option<String>,
}

/// `listCredentials` takes no params (or `{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
pub struct ListCredentialsParams {}

/// `listCredentials`' answer: every stored credential, sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
pub struct ListCredentialsResult {
    pub credentials: Vec<CredentialSummary>,
}

/// One stored credential, as `listCredentials` lists it: never a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct CredentialSummary {
    #[ts(as = "CredentialName")]
    #[schemars(with = "CredentialName")]
    pub credential: String,
    /// How the user signed in; `null` when the stored document cannot be read (`error`).
    pub auth_method: Option<AuthMethod>,
    pub state: AuthState,
    /// Expiry of the access token, unix seconds, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "i64")]
    pub expires_at: Option<i64>,
    /// The authorization server the tokens are from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "String")]
    pub issuer: Option<String>,
    /// The resource (RFC 8707) the tokens are for, when the credential has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "String")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "Account")]
    pub account: Option<Account>,
    pub storage: StorageBackend,
    /// Addition: why the stored document cannot be read (the same message `getAuthStatus`
    /// answers with `-32011` for this credential); the state is then `needsLogin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "String")]
    pub error: Option<String>,
}
