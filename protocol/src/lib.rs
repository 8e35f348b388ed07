//! Wire types of `auth-app-server`: the params, results, notifications and error codes that
//! travel as JSON-RPC 2.0 messages over stdin/stdout.
//!
//! This crate does no I/O. Naming conventions live in serde attributes (camelCase fields,
//! `type`-tagged unions) so that every type serializes exactly as docs/protocol.md shows, and the JSON
//! Schema in `schema/` is generated from these same types (see [`schema`]).

mod errors;
mod initialize;
mod login;
mod notifications;
mod report;
pub mod schema;
mod secret;
mod status;
pub mod typescript;

pub use errors::error_code;
pub use initialize::{
    ClientInfo, InitializeParams, InitializeResult, PROTOCOL_VERSION, ServerInfo,
};
pub use login::{
    CancelLoginParams, CancelLoginResult, CancelLoginStatus, CompleteLoginParams,
    CompleteLoginResult, LoginParams, LoginResult, LogoutParams, LogoutResult,
};
pub use notifications::{AuthStatusChangedNotification, LoginCompletedNotification};
pub use report::{AuthFailureAction, ReportAuthFailureParams, ReportAuthFailureResult};
pub use secret::SecretString;
pub use status::{
    Account, AuthMethod, AuthState, AuthStatus, GetAuthStatusParams, RefreshError, RefreshErrorKind,
};

/// Method names, as they appear in the `method` member of requests and notifications.
pub mod method {
    pub const INITIALIZE: &str = "initialize";
    pub const INITIALIZED: &str = "initialized";
    pub const GET_AUTH_STATUS: &str = "getAuthStatus";
    pub const LOGIN: &str = "login";
    pub const CANCEL_LOGIN: &str = "cancelLogin";
    /// Contract version 2.
    pub const COMPLETE_LOGIN: &str = "completeLogin";
    pub const LOGOUT: &str = "logout";
    pub const REPORT_AUTH_FAILURE: &str = "reportAuthFailure";
    /// Server → client notification.
    pub const AUTH_STATUS_CHANGED: &str = "authStatusChanged";
    /// Server → client notification.
    pub const LOGIN_COMPLETED: &str = "loginCompleted";
}
