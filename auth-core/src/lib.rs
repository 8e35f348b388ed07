//! `auth-core`: everything `auth-app-server` knows about credentials, with no JSON-RPC.
//!
//! - [`store`] and [`auth_file`]: `auth.json` on disk (atomic writes, the lock, the format),
//!   or the document in the OS keyring ([`keyring`]).
//! - [`credential`]: one credential's state in one type, [`Credential`], the one owner of this
//!   process's view of it (status, refresh, reports, sign-in and sign-out, announcements), and
//!   how stored credentials become a client-facing status ([`credential::describe`]).
//! - [`policy`]: the refresh rules (staleness, backoff, what a poll or a report does), pure.
//! - [`refresh`], [`provider`], [`classify`]: carrying out one refresh, the provider's HTTP
//!   endpoints, and whether a failure is transient or permanent.
//! - [`auth_failure`]: what to do when an API rejects a token.
//! - [`config`]: where the home folder is and which provider to use.
//! - [`registration`]: the client_id of a sign-in without one configured (client ID metadata
//!   document, dynamic client registration) and `registrations.json`.
//! - [`storage`]: which backend keeps the credentials, chosen and moved into at start.
//! - [`provider_text`]: how provider strings are bounded and quoted in logs, errors and files.
//! - [`network`]: proxies, extra trust anchors and TLS failures of provider requests.

pub mod api_key;
pub mod auth_failure;
pub mod auth_file;
pub mod classify;
pub mod config;
pub mod credential;
pub mod error;
/// For the fuzz targets and their quick siblings in the test suite.
pub mod fuzzing;
pub mod jwt;
pub mod keyring;
pub mod login;
pub mod network;
pub mod policy;
pub mod provider;
pub mod provider_text;
pub mod refresh;
pub mod registration;
pub mod secret;
pub mod storage;
pub mod store;
pub mod time;

pub use auth_failure::{FailureAction, FailureOutcome, RejectedRequest};
pub use credential::{
    Account, AuthEvent, AuthMethod, AuthState, Credential, EventSink, HostTokens, LogoutOutcome,
    Provider, RefreshErrorInfo, RefreshErrorKind, StatusOptions, StatusReport,
};
pub use error::AuthError;
pub use login::LoginStart;
pub use provider::{ProviderError, Revocation};
pub use secret::Secret;
