//! `auth-app-server logout`: delete the stored credentials; the refresh token is revoked at
//! the provider (best effort).

use auth_core::AuthManager;

use super::{error_code, exit, fail};

pub async fn run(manager: &AuthManager) -> u8 {
    match manager.logout().await {
        Ok(()) => {
            eprintln!("Signed out.");
            exit::OK
        }
        Err(error) => fail(&error, error_code(&error)),
    }
}
