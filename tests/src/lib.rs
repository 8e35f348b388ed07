//! Test support shared by the end-to-end tests: a client that drives the real
//! `auth-app-server` binary over pipes, and (see [`issuer`]) a fake OAuth issuer.
//!
//! The binary is the one `cargo test` builds for the workspace (`target/<profile>/auth-app-server`);
//! set `AUTH_APP_SERVER_BIN` to test another build.

pub mod issuer;
pub mod server;

pub use issuer::{FakeIssuer, IssuedTokens, IssuerOptions, TokenMode};
pub use server::{ServerProcess, server_binary};
