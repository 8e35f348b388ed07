//! JSON-RPC error codes. The server maps its internal errors to these in one place; the JSON
//! Schema's `JsonRpcError` and the TypeScript `ErrorCode` are generated from [`error_code::ALL`].

/// One error code: its constant's name, its number, and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCodeInfo {
    /// The Rust constant's name (`NOT_INITIALIZED`).
    pub name: &'static str,
    pub code: i32,
    pub doc: &'static str,
}

macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $name:ident = $code:literal,)*) => {
        $(
            $(#[doc = $doc])*
            pub const $name: i32 = $code;
        )*

        /// Every code above, in order.
        pub const ALL: &[$crate::ErrorCodeInfo] = &[$(
            $crate::ErrorCodeInfo {
                name: stringify!($name),
                code: $code,
                doc: concat!($($doc, "\n"),*),
            },
        )*];
    };
}

/// Error codes of the contract (docs/protocol.md, errors), plus the server's own additions (documented in
/// `protocol/README.md`).
pub mod error_code {
    error_codes! {
        /// The line is not valid JSON.
        PARSE_ERROR = -32700,
        /// The JSON is not a request.
        INVALID_REQUEST = -32600,
        /// No method of that name.
        METHOD_NOT_FOUND = -32601,
        /// The params do not match the method's.
        INVALID_PARAMS = -32602,
        /// The request failed unexpectedly; the server keeps serving.
        INTERNAL_ERROR = -32603,
        /// Too many requests in flight; retry later.
        OVERLOADED = -32001,
        /// A request other than `initialize` arrived before `initialize`.
        NOT_INITIALIZED = -32002,
        /// `oauth` / `deviceCode` login without a configured provider.
        NO_PROVIDER = -32010,
        /// `auth.json` exists but cannot be read or parsed.
        CREDENTIALS_UNREADABLE = -32011,
        /// The provider is unreachable or misconfigured (login, discovery).
        PROVIDER_UNAVAILABLE = -32012,
        /// Addition: the credentials could not be written (folder not writable, disk full, lock
        /// unavailable). Nothing was changed.
        CREDENTIALS_UNWRITABLE = -32013,
    }
}
