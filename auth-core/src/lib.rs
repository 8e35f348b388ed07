//! `auth-core`: everything `auth-app-server` knows about credentials, with no JSON-RPC.
//!
//! - [`store`] and [`auth_file`]: `auth.json` on disk (atomic writes, the lock, the format),
//!   or the document in the OS keyring ([`keyring`]).
//! - [`manager`]: the one owner of this process's view of the credentials.
//! - [`status`]: how stored credentials become a client-facing status.
//! - [`policy`]: the refresh rules (staleness, backoff, what a poll or a report does), pure.
//! - [`refresh`]: carrying out one refresh.
//! - [`provider`]: the provider over HTTP: the client and its trust roots, discovery, token
//!   grants, revocation, metadata parsing; with [`provider::network`] (proxies, extra trust
//!   anchors, TLS failures), [`provider::classify`] (whether a failure is transient or
//!   permanent) and [`provider::text`] (how provider strings are bounded and quoted in logs,
//!   errors and files).
//! - [`pem`]: reading a PEM bundle of trust anchors (`ca_file`, `SSL_CERT_FILE`).
//! - [`auth_failure`]: what to do when an API rejects a token.
//! - [`config`]: where the home folder is and which provider to use.
//! - [`registration`]: the client_id of a sign-in without one configured (client ID metadata
//!   document, dynamic client registration) and `registrations.json`.
//! - [`storage`]: which backend keeps the credentials, chosen and moved into at start.

pub mod api_key;
pub mod auth_failure;
pub mod auth_file;
pub mod config;
pub mod error;
/// For the fuzz targets and their quick siblings in the test suite.
pub mod fuzzing;
pub mod jwt;
pub mod keyring;
pub mod login;
pub mod manager;
pub mod pem;
pub mod policy;
pub mod provider;
pub mod refresh;
pub mod registration;
pub mod secret;
pub mod status;
pub mod storage;
pub mod store;
pub mod time;

pub use auth_failure::{FailureAction, FailureOutcome, RejectedRequest};
pub use error::AuthError;
pub use login::LoginStart;
pub use manager::{
    AuthEvent, AuthManager, EventSink, HostTokens, LogoutOutcome, Provider, StatusOptions,
};
pub use provider::{ProviderError, Revocation};
pub use secret::Secret;
pub use status::{
    Account, AuthMethod, AuthState, RefreshErrorInfo, RefreshErrorKind, StatusReport,
};
