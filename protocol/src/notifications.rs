//! Server → client notifications.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::{AuthMethod, AuthState, CredentialName};

/// Sent whenever (authMethod, state) changes, and after every login and logout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct AuthStatusChangedNotification {
    pub auth_method: Option<AuthMethod>,
    pub state: AuthState,
    /// Which credential changed (contract version 3; `"default"` included).
    #[ts(as = "CredentialName")]
    #[schemars(with = "CredentialName")]
    pub credential: String,
}

/// Sent when an interactive login (`oauth`, `deviceCode`) ends, however it ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct LoginCompletedNotification {
    pub login_id: String,
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    #[schemars(with = "String")]
    pub error: Option<String>,
    /// Which credential the login was for (contract version 3; `"default"` included).
    #[ts(as = "CredentialName")]
    #[schemars(with = "CredentialName")]
    pub credential: String,
}
