//! `auth-app-server`: the binary; all of it is in the library (see `lib.rs`).

use std::process::ExitCode;

fn main() -> ExitCode {
    auth_app_server::run()
}
