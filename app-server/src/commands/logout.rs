//! `auth-app-server logout [--credential NAME | --all]`: delete the stored credentials; the
//! refresh token is revoked at the provider (best effort). `--all` does so for every stored
//! credential, the default one included, one line each.

use auth_core::registry::{Registry, Which};
use auth_core::{AuthError, LogoutOutcome, Revocation};

use super::{about, error_code, exit, explain, fail, fail_with};

pub async fn run(registry: &Registry, which: &Which) -> u8 {
    let credential = match registry.existing(which).await {
        Ok(credential) => credential,
        Err(error) => return fail_with(&error),
    };
    let Some(credential) = credential else {
        // Nothing stored under this name: nothing to delete, and nothing is created for it.
        eprintln!("{}", about(which, "Not signed in; nothing to sign out of."));
        return exit::OK;
    };
    match credential.logout().await {
        Ok(outcome) => {
            eprintln!("{}", about(which, &signed_out(&outcome)));
            exit::OK
        }
        Err(error) => fail_with(&error),
    }
}

/// Signs out of every stored credential, in the order `status` lists them; exits 0 unless one
/// failed, else with the highest code of those that failed.
pub async fn run_all(registry: &Registry) -> u8 {
    let mut stored: Vec<Which> = registry
        .stored_names()
        .await
        .into_iter()
        .map(|name| Which::Named(name.into()))
        .collect();
    // A document that cannot even be looked at is signed out of too (which says why it fails).
    if !matches!(registry.default_credential().store().stamp(), Ok(None)) {
        stored.push(Which::Default);
    }
    stored.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    if stored.is_empty() {
        eprintln!("No credential is stored; nothing to sign out of.");
        return exit::OK;
    }
    let mut code = exit::OK;
    for which in &stored {
        let name = which.as_str();
        match sign_out_of(registry, which).await {
            Ok(Some(outcome)) => eprintln!("{name}: {}", signed_out(&outcome)),
            // Signed out of meanwhile, by another process.
            Ok(None) => eprintln!("{name}: Signed out."),
            Err(error) => {
                code = code.max(fail(
                    format!("{name}: {}", explain(&error)),
                    error_code(&error),
                ))
            }
        }
    }
    code
}

/// Signs out of `which` when something is stored under it.
async fn sign_out_of(
    registry: &Registry,
    which: &Which,
) -> Result<Option<LogoutOutcome>, AuthError> {
    match registry.existing(which).await? {
        Some(credential) => credential.logout().await.map(Some),
        None => Ok(None),
    }
}

/// What a sign-out did, for people.
fn signed_out(outcome: &LogoutOutcome) -> String {
    match &outcome.revocation {
        Some(Revocation::NotRevoked(why)) => {
            format!("Signed out. The sign-in was not revoked at the provider: {why}.")
        }
        Some(Revocation::Revoked) => "Signed out; the sign-in was revoked at the provider.".into(),
        None => "Signed out.".into(),
    }
}
