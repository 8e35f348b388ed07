//! `auth-core`: everything `auth-app-server` knows about credentials, with no JSON-RPC.
//!
//! Credentials and storage:
//! - [`credential`]: one credential's state in one type, [`Credential`], the one owner of this
//!   process's view of it (status, refresh, reports, sign-in and sign-out, announcements).
//! - [`registry`]: the many credentials of one home (contract version 3), by name, each a
//!   [`Credential`] created when first used.
//! - [`status`]: how stored credentials become a client-facing status, pure.
//! - [`store`]: where the credential document is kept, `auth.json` or the OS keyring
//!   (`store::file`, [`store::keyring`]), behind one façade: atomic writes, the lock, the
//!   format ([`store::format`]), the backend chosen and moved into at start
//!   ([`store::open`]), and the safe-file helpers other files reuse.
//!
//! Refresh policy:
//! - [`policy`]: the refresh rules (staleness, backoff, which credentials may be refreshed,
//!   what a poll or a report does), pure.
//! - [`refresh`]: carrying out one refresh, and what to do when an API rejects a token
//!   ([`refresh::report`]).
//!
//! Provider and network:
//! - [`provider`]: the provider over HTTP: the client and its trust roots, discovery, token
//!   grants, revocation, metadata parsing; with [`provider::network`] (proxies, extra trust
//!   anchors, TLS failures), [`provider::classify`] (whether a failure is transient or
//!   permanent) and [`provider::text`] (how provider strings are bounded and quoted in logs,
//!   errors and files).
//! - [`pem`]: reading a PEM bundle of trust anchors (`ca_file`, `SSL_CERT_FILE`).
//!
//! Sign-in:
//! - [`login`]: the browser (PKCE) and device sign-in flows.
//! - [`registration`]: the client_id of a sign-in without one configured (client ID metadata
//!   document, dynamic client registration) and `registrations.json`.
//! - [`scope`]: OAuth scope lists: bounded, without repeats, and read from challenges.
//!
//! Settings and small parts:
//! - [`config`]: where the home folder is and which provider to use.
//! - [`limits`]: the limits and test knobs read from the environment once, at start.
//! - [`secret`], [`jwt`], [`api_key`], [`time`], [`error`].

pub mod api_key;
pub mod config;
pub mod credential;
pub mod error;
/// For the fuzz targets and their quick siblings in the test suite.
pub mod fuzzing;
pub mod jwt;
pub mod limits;
pub mod login;
pub mod pem;
pub mod policy;
pub mod provider;
pub mod refresh;
pub mod registration;
pub mod registry;
pub mod scope;
pub mod secret;
pub mod status;
pub mod store;
pub mod time;

pub use credential::{
    Account, AuthEvent, AuthMethod, AuthState, Credential, EventSink, HostTokens, LogoutOutcome,
    Provider, RefreshErrorInfo, RefreshErrorKind, StatusOptions, StatusReport,
};
pub use error::AuthError;
pub use limits::Limits;
pub use login::LoginStart;
pub use provider::{ProviderError, Revocation};
pub use refresh::report::{FailureAction, FailureOutcome, RejectedRequest};
pub use secret::Secret;
