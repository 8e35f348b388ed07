//! `auth-app-server logout`: delete the stored credentials; the refresh token is revoked at
//! the provider (best effort).

use auth_core::{Credential, Revocation};

use super::{exit, fail_with};

pub async fn run(credential: &Credential) -> u8 {
    match credential.logout().await {
        Ok(outcome) => {
            match outcome.revocation {
                Some(Revocation::NotRevoked(why)) => {
                    eprintln!("Signed out. The sign-in was not revoked at the provider: {why}.")
                }
                Some(Revocation::Revoked) => {
                    eprintln!("Signed out; the sign-in was revoked at the provider.")
                }
                None => eprintln!("Signed out."),
            }
            exit::OK
        }
        Err(error) => fail_with(&error),
    }
}
