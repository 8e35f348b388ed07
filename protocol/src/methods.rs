//! The one list of the protocol's methods and notifications.
//!
//! Each entry of [`for_each_method!`] names a request on the wire and its params and result
//! types. From that list come the marker types in [`method`] (each a [`Method`] with its name),
//! the JSON Schema files ([`crate::schema`]), the TypeScript bindings with their `Methods` map
//! ([`crate::typescript`]), and the server's registration (`app-server` passes its own
//! macro to [`for_each_method!`]). Adding a method is one entry here plus its handler.

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use ts_rs::TS;

/// A request a client sends and the answer it gets.
pub trait Method {
    /// The `method` member on the wire.
    const NAME: &'static str;
    /// What the method is for (the entry's doc comment), for the generated bindings.
    const DOC: &'static str;
    type Params: Serialize + DeserializeOwned + JsonSchema + TS + Send + 'static;
    type Result: Serialize + DeserializeOwned + JsonSchema + TS + Clone + Send + 'static;
}

/// A notification the server sends.
pub trait Notification {
    const NAME: &'static str;
    const DOC: &'static str;
    type Params: Serialize + DeserializeOwned + JsonSchema + TS + Send + 'static;
}

/// Something done once per method, in list order (see [`method::visit`]).
pub trait MethodVisitor {
    fn visit<M: Method>(&mut self);
}

/// Something done once per notification, in list order (see [`notification::visit`]).
pub trait NotificationVisitor {
    fn visit<N: Notification>(&mut self);
}

/// The list of methods. Calls `$callback!` with one entry per method:
///
/// ```text
/// /// What it does (becomes the doc of the marker type and of the TypeScript map member).
/// MarkerType = "wireName" {
///     params: ParamsType,
///     result: ResultType,
/// },
/// ```
///
/// The types are `auth_protocol` types, named as this crate's root exports them.
#[macro_export]
macro_rules! for_each_method {
    ($callback:ident) => {
        $callback! {
            /// The handshake: the first request, once per process. Its params are checked in
            /// the order requests arrive; every other request waits for it.
            Initialize = "initialize" {
                params: InitializeParams,
                result: InitializeResult,
            },
            /// The stored credentials' status; with `includeToken`, the bearer token; with
            /// `refreshToken`, a stale OAuth token is refreshed first.
            GetAuthStatus = "getAuthStatus" {
                params: GetAuthStatusParams,
                result: AuthStatus,
            },
            /// Sign in: `apiKey` and `tokens` complete at once; `oauth` and `deviceCode` start
            /// an interactive sign-in that ends with `loginCompleted`.
            Login = "login" {
                params: LoginParams,
                result: LoginResult,
            },
            /// Stop a pending interactive sign-in (it then ends with `loginCompleted`
            /// `success: false`).
            CancelLogin = "cancelLogin" {
                params: CancelLoginParams,
                result: CancelLoginResult,
            },
            /// Finish a pending browser sign-in with the address the browser ended on, pasted
            /// by the user (contract version 2).
            CompleteLogin = "completeLogin" {
                params: CompleteLoginParams,
                result: CompleteLoginResult,
            },
            /// Forget the stored credentials, revoking the refresh token at the provider.
            Logout = "logout" {
                params: LogoutParams,
                result: LogoutResult,
            },
            /// An API rejected the token it was given: what to do, refreshing (once, for
            /// every client) when that is the fix.
            ReportAuthFailure = "reportAuthFailure" {
                params: ReportAuthFailureParams,
                result: ReportAuthFailureResult,
            },
            /// Every stored credential of the home, sorted by name, never a token; contacts no
            /// provider (contract version 3).
            ListCredentials = "listCredentials" {
                params: ListCredentialsParams,
                result: ListCredentialsResult,
            },
        }
    };
}

/// Defines a marker type per entry of [`for_each_method!`] and [`method::visit`].
macro_rules! define_methods {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident = $wire:literal {
            params: $params:ty,
            result: $result:ty $(,)?
        }
    ),* $(,)?) => {
        $(
            $(#[doc = $doc])*
            #[derive(Debug, Clone, Copy)]
            pub struct $name;

            impl $crate::Method for $name {
                const NAME: &'static str = $wire;
                const DOC: &'static str = concat!($($doc, "\n"),*);
                type Params = $params;
                type Result = $result;
            }
        )*

        /// Calls `visitor` for every method, in list order.
        pub fn visit(visitor: &mut impl $crate::MethodVisitor) {
            $(visitor.visit::<$name>();)*
        }
    };
}

/// Defines a marker type per notification and [`notification::visit`].
macro_rules! define_notifications {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident = $wire:literal {
            params: $params:ty $(,)?
        }
    ),* $(,)?) => {
        $(
            $(#[doc = $doc])*
            #[derive(Debug, Clone, Copy)]
            pub struct $name;

            impl $crate::Notification for $name {
                const NAME: &'static str = $wire;
                const DOC: &'static str = concat!($($doc, "\n"),*);
                type Params = $params;
            }
        )*

        /// Calls `visitor` for every notification, in list order.
        pub fn visit(visitor: &mut impl $crate::NotificationVisitor) {
            $(visitor.visit::<$name>();)*
        }
    };
}

/// The methods a client calls, one marker type each: `method::GetAuthStatus::NAME` is
/// `"getAuthStatus"`.
pub mod method {
    use crate::*;

    for_each_method!(define_methods);

    /// The notification a client sends after `initialize`'s answer. It carries nothing and the
    /// server needs nothing from it; it is accepted (and ignored) for clients that send it.
    pub const INITIALIZED: &str = "initialized";
}

/// The notifications the server sends, one marker type each.
pub mod notification {
    use crate::*;

    define_notifications! {
        /// Sent whenever (authMethod, state) changes, and after every login and logout.
        AuthStatusChanged = "authStatusChanged" {
            params: AuthStatusChangedNotification,
        },
        /// Sent when an interactive login (`oauth`, `deviceCode`) ends, however it ends.
        LoginCompleted = "loginCompleted" {
            params: LoginCompletedNotification,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Names(Vec<&'static str>);

    impl MethodVisitor for Names {
        fn visit<M: Method>(&mut self) {
            self.0.push(M::NAME);
        }
    }

    #[test]
    fn the_list_names_each_method_once_with_its_doc() {
        let mut names = Names(Vec::new());
        method::visit(&mut names);
        assert_eq!(
            names.0,
            [
                "initialize",
                "getAuthStatus",
                "login",
                "cancelLogin",
                "completeLogin",
                "logout",
                "reportAuthFailure",
                "listCredentials"
            ]
        );
        assert!(method::Login::DOC.contains("loginCompleted"));
    }
}
