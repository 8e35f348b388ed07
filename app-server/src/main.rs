//! `auth-app-server`: the binary; all of it is in the library (see `lib.rs`).

use std::process::ExitCode;

fn main() -> ExitCode {
    auth_app_server::run()
}

/// C's `pow`, for the one caller in the binary (the statistics of tokio's multi-threaded
/// scheduler, linked in but never run: the server runs on one thread). Defined here, in Rust
/// (the `libm` crate, a port of musl's), the binary needs nothing from the system's libm, which
/// is then not loaded at every start: 0.3 MB less resident memory and one library less to map
/// and bind (docs/performance.md).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[unsafe(no_mangle)]
pub extern "C" fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}
