//! Errors of `auth-core`. Each message says what was wrong and what to do; none carries a
//! secret. The binary maps each variant to a JSON-RPC code in one place.

use std::path::PathBuf;

use crate::config::ConfigError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// `auth.json` exists but cannot be parsed or read.
    #[error(
        "the stored credentials in {} cannot be read: {reason}. Fix or delete the file, or sign in again \
         (login moves it aside to auth.json.corrupt-<unix time>)",
        path.display()
    )]
    Unreadable { path: PathBuf, reason: String },
    /// Writing, locking or deleting in the credentials folder failed; nothing was changed.
    #[error(
        "{0}. Nothing was changed: check that the folder exists, is writable by this user and the disk is not full"
    )]
    Unwritable(StoreError),
    #[error("{0}")]
    InvalidInput(String),
    #[error(
        "no OAuth provider is configured: set issuer and client_id in the [provider] section of {}, \
         or pass --issuer and --client-id (API-key login works without one)",
        config_path.display()
    )]
    NoProvider { config_path: PathBuf },
    #[error("the OAuth provider configuration is not valid: {0}. Fix it and restart the server")]
    ProviderMisconfigured(ConfigError),
    #[error("{0}")]
    ProviderUnavailable(String),
}

impl From<crate::provider::ProviderError> for AuthError {
    fn from(error: crate::provider::ProviderError) -> Self {
        Self::ProviderUnavailable(error.to_string())
    }
}
