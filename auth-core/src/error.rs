//! Errors of `auth-core`. Each message says what was wrong and what to do; none carries a
//! secret. The binary maps each variant to a JSON-RPC code in one place.

use std::path::PathBuf;

use crate::config::ConfigError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// `auth.json` (or the keyring item) exists but cannot be parsed or read.
    #[error(
        "the stored credentials in {} cannot be read: {reason}. {}",
        path.display(),
        if *keyring {
            "Sign in again (login keeps the unreadable item aside in the keyring, tagged moved_aside)".to_owned()
        } else {
            format!(
                "Fix or delete the file, or sign in again (login moves it aside to {}.corrupt-<unix time>)",
                path.file_name().map_or("auth.json".into(), |name| name.to_string_lossy())
            )
        }
    )]
    Unreadable {
        path: PathBuf,
        reason: String,
        /// The document is a keyring item; `path` describes it.
        keyring: bool,
    },
    /// Writing, locking or deleting in the credentials folder (or the OS keyring) failed;
    /// nothing was changed.
    #[error("{}. Nothing was changed{}", .0, unwritable_advice(.0))]
    Unwritable(StoreError),
    /// The OS keyring holding the credentials cannot be read (not answering, locked, absent);
    /// the message says what to do.
    #[error("{0}")]
    StorageUnavailable(StoreError),
    #[error("{0}")]
    InvalidInput(String),
    #[error(
        "no OAuth provider is configured: set issuer and client_id in the [provider] section of {}, \
         or pass --issuer and --client-id (API-key login works without one)",
        config_path.display()
    )]
    NoProvider { config_path: PathBuf },
    /// A named credential without a provider to sign in with (contract version 3).
    #[error(
        "the credential \"{name}\" has no OAuth provider: pass a \"provider\" object with this login ({{\"issuer\": ...}} or {{\"protectedResource\": ...}}), or add a [credentials.{name}] table to {} (API-key login works without one)",
        config_path.display()
    )]
    NoNamedProvider { name: String, config_path: PathBuf },
    /// A sign-in to a new credential when the home holds the most it keeps.
    #[error(
        "this home already holds {count} credentials, the most it keeps ({max}): sign out of one that is no longer needed (logout with its \"credential\", or `auth-app-server logout --credential NAME`), then sign in again. Nothing was changed",
        max = crate::registry::MAX_CREDENTIALS
    )]
    TooManyCredentials { count: usize },
    #[error("the OAuth provider configuration is not valid: {0}. Fix it and restart the server")]
    ProviderMisconfigured(ConfigError),
    #[error("{0}")]
    ProviderUnavailable(String),
}

fn unwritable_advice(error: &StoreError) -> &'static str {
    if error.keyring {
        // The keyring's own message already says what to do.
        ""
    } else {
        ": check that the folder exists, is writable by this user and the disk is not full"
    }
}

impl From<crate::provider::ProviderError> for AuthError {
    fn from(error: crate::provider::ProviderError) -> Self {
        Self::ProviderUnavailable(error.to_string())
    }
}
