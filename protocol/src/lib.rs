//! Wire types of `auth-app-server`: the params, results, notifications and error codes that
//! travel as JSON-RPC 2.0 messages over stdin/stdout.
//!
//! This crate does no I/O. Naming conventions live in serde attributes (camelCase fields,
//! `type`-tagged unions) so that every type serializes exactly as docs/protocol.md shows, and the JSON
//! Schema in `schema/` is generated from these same types (see [`schema`]).
//!
//! The methods and notifications are one list ([`for_each_method!`], in `methods.rs`): each
//! entry gives a method's name, params and result, and everything else follows from it.

mod credentials;
mod errors;
mod initialize;
mod login;
mod methods;
mod notifications;
mod report;
pub mod schema;
mod secret;
mod status;
pub mod typescript;

pub use credentials::{
    CredentialName, CredentialSummary, ListCredentialsParams, ListCredentialsResult, LoginProvider,
};
pub use errors::{ErrorCodeInfo, error_code};
pub use initialize::{
    ClientInfo, InitializeParams, InitializeResult, PROTOCOL_VERSION, ServerInfo,
};
pub use login::{
    CancelLoginParams, CancelLoginResult, CancelLoginStatus, CompleteLoginParams,
    CompleteLoginResult, LoginParams, LoginResult, LogoutParams, LogoutResult,
};
pub use methods::{Method, MethodVisitor, Notification, NotificationVisitor, method, notification};
pub use notifications::{AuthStatusChangedNotification, LoginCompletedNotification};
pub use report::{AuthFailureAction, ReportAuthFailureParams, ReportAuthFailureResult};
pub use secret::SecretString;
pub use status::{
    Account, AuthMethod, AuthState, AuthStatus, GetAuthStatusParams, RefreshError,
    RefreshErrorKind, StorageBackend,
};
