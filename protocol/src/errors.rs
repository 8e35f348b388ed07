//! JSON-RPC error codes. The server maps its internal errors to these in one place.

/// Error codes of the contract (docs/protocol.md, errors), plus the server's own additions (documented in
/// `protocol/README.md`).
pub mod error_code {
    pub const PARSE_ERROR: i32 = -32700;
    pub const INVALID_REQUEST: i32 = -32600;
    pub const METHOD_NOT_FOUND: i32 = -32601;
    pub const INVALID_PARAMS: i32 = -32602;
    pub const INTERNAL_ERROR: i32 = -32603;
    /// Too many requests in flight; retry later.
    pub const OVERLOADED: i32 = -32001;
    /// A request other than `initialize` arrived before `initialize`.
    pub const NOT_INITIALIZED: i32 = -32002;
    /// `oauth` / `deviceCode` login without a configured provider.
    pub const NO_PROVIDER: i32 = -32010;
    /// `auth.json` exists but cannot be read or parsed.
    pub const CREDENTIALS_UNREADABLE: i32 = -32011;
    /// The provider is unreachable or misconfigured (login, discovery).
    pub const PROVIDER_UNAVAILABLE: i32 = -32012;
    /// Addition: the credentials could not be written (folder not writable, disk full, lock
    /// unavailable). Nothing was changed.
    pub const CREDENTIALS_UNWRITABLE: i32 = -32013;
}
