//! Between `auth-core`'s domain types and the wire types; and the one mapping of core errors
//! to JSON-RPC error codes.

use auth_core::{
    AuthError, AuthEvent, FailureAction, FailureOutcome, LoginStart, LogoutOutcome, Revocation,
    StatusReport,
};
use auth_protocol::{self as wire, Notification as _};
use jsonrpsee::types::ErrorObjectOwned;

pub fn method(method: auth_core::AuthMethod) -> wire::AuthMethod {
    match method {
        auth_core::AuthMethod::ApiKey => wire::AuthMethod::ApiKey,
        auth_core::AuthMethod::Oauth => wire::AuthMethod::Oauth,
    }
}

pub fn state(state: auth_core::AuthState) -> wire::AuthState {
    match state {
        auth_core::AuthState::SignedOut => wire::AuthState::SignedOut,
        auth_core::AuthState::Active => wire::AuthState::Active,
        auth_core::AuthState::Degraded => wire::AuthState::Degraded,
        auth_core::AuthState::NeedsLogin => wire::AuthState::NeedsLogin,
    }
}

pub fn status(report: StatusReport) -> wire::AuthStatus {
    wire::AuthStatus {
        auth_method: report.method.map(method),
        state: state(report.state),
        auth_token: report.token.map(|t| wire::SecretString::new(t.expose())),
        expires_at: report.expires_at,
        account: report.account.map(|a| wire::Account {
            subject: a.subject,
            email: a.email,
            name: a.name,
        }),
        refresh_error: report.refresh_error.map(|e| wire::RefreshError {
            kind: match e.kind {
                auth_core::RefreshErrorKind::Permanent => wire::RefreshErrorKind::Permanent,
                auth_core::RefreshErrorKind::Transient => wire::RefreshErrorKind::Transient,
            },
            code: e.code,
            message: e.message,
            retry_after_secs: e.retry_after_secs,
        }),
        storage: report.storage.map(storage),
        resource: report.resource,
    }
}

pub fn storage(kind: auth_core::store::StorageKind) -> wire::StorageBackend {
    match kind {
        auth_core::store::StorageKind::File => wire::StorageBackend::File,
        auth_core::store::StorageKind::Keyring => wire::StorageBackend::Keyring,
    }
}

/// A stored credential as `listCredentials` shows it (never a token).
pub fn listed(listed: auth_core::registry::Listed) -> wire::CredentialSummary {
    let (auth_method, state, expires_at, account, error) = match listed.status {
        Ok(report) => {
            let status = status(report);
            (
                status.auth_method,
                status.state,
                status.expires_at,
                status.account,
                None,
            )
        }
        Err(message) => (None, wire::AuthState::NeedsLogin, None, None, Some(message)),
    };
    wire::CredentialSummary {
        credential: listed.name,
        auth_method,
        state,
        expires_at,
        issuer: listed.issuer,
        resource: listed.resource,
        account,
        storage: storage(listed.storage),
        error,
    }
}

pub fn failure_outcome(outcome: FailureOutcome) -> wire::ReportAuthFailureResult {
    let action = match outcome.action {
        FailureAction::Refreshed => wire::AuthFailureAction::Refreshed,
        FailureAction::AlreadyRotated => wire::AuthFailureAction::AlreadyRotated,
        FailureAction::NotAuthFailure => wire::AuthFailureAction::NotAuthFailure,
        FailureAction::NeedsLogin => wire::AuthFailureAction::NeedsLogin,
        FailureAction::RetryLater => wire::AuthFailureAction::RetryLater,
        FailureAction::InsufficientScope => wire::AuthFailureAction::InsufficientScope,
        FailureAction::ApiKeyRejected => wire::AuthFailureAction::ApiKeyRejected,
        FailureAction::RefreshDidNotHelp => wire::AuthFailureAction::RefreshDidNotHelp,
    };
    wire::ReportAuthFailureResult {
        status: status(outcome.status),
        action,
        hint: outcome.hint,
        required_scopes: (!outcome.required_scopes.is_empty()).then_some(outcome.required_scopes),
    }
}

pub fn logout(outcome: LogoutOutcome) -> wire::LogoutResult {
    match outcome.revocation {
        None => wire::LogoutResult::default(),
        Some(Revocation::Revoked) => wire::LogoutResult {
            revoked: Some(true),
            reason: None,
        },
        Some(Revocation::NotRevoked(reason)) => wire::LogoutResult {
            revoked: Some(false),
            reason: Some(reason),
        },
    }
}

pub fn login_start(started: LoginStart) -> wire::LoginResult {
    match started {
        LoginStart::Oauth { login_id, auth_url } => wire::LoginResult::Oauth { login_id, auth_url },
        LoginStart::DeviceCode {
            login_id,
            verification_uri,
            verification_uri_complete,
            user_code,
            expires_at,
            interval_secs,
        } => wire::LoginResult::DeviceCode {
            login_id,
            verification_uri,
            verification_uri_complete,
            user_code,
            expires_at,
            interval_secs,
        },
    }
}

/// An event of the credential `credential` as a notification: (method name, params).
pub fn notification(credential: &str, event: AuthEvent) -> (&'static str, serde_json::Value) {
    let params = match event {
        AuthEvent::StatusChanged {
            method: m,
            state: s,
        } => {
            let body = wire::AuthStatusChangedNotification {
                auth_method: m.map(method),
                state: state(s),
                credential: credential.to_owned(),
            };
            return (
                wire::notification::AuthStatusChanged::NAME,
                serde_json::to_value(body).expect("serializes"),
            );
        }
        AuthEvent::LoginCompleted {
            login_id,
            success,
            error,
        } => wire::LoginCompletedNotification {
            login_id,
            success,
            error,
            credential: credential.to_owned(),
        },
    };
    (
        wire::notification::LoginCompleted::NAME,
        serde_json::to_value(params).expect("serializes"),
    )
}

/// The one place where core errors get their JSON-RPC codes.
pub fn error(error: AuthError) -> ErrorObjectOwned {
    use wire::error_code::*;
    let code = match &error {
        AuthError::Unreadable { .. } | AuthError::StorageUnavailable(_) => CREDENTIALS_UNREADABLE,
        AuthError::Unwritable(_) => CREDENTIALS_UNWRITABLE,
        AuthError::InvalidInput(_) => INVALID_PARAMS,
        AuthError::NoProvider { .. } | AuthError::NoNamedProvider { .. } => NO_PROVIDER,
        AuthError::TooManyCredentials { .. } => CREDENTIALS_UNWRITABLE,
        AuthError::ProviderMisconfigured(_) | AuthError::ProviderUnavailable(_) => {
            PROVIDER_UNAVAILABLE
        }
    };
    let message = match &error {
        AuthError::InvalidInput(message) => format!("invalid params: {message}"),
        other => other.to_string(),
    };
    if code != INVALID_PARAMS {
        tracing::warn!(code, %message, "request failed");
    }
    ErrorObjectOwned::owned(code, message, None::<()>)
}
