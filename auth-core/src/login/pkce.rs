//! PKCE (RFC 7636, S256) and the `state` value of an authorization request.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::provider_text::shown;
use crate::secret::Secret;

/// How many of a provider's listed PKCE methods an error names.
const SHOWN_METHODS: usize = 8;

/// A code verifier (32 random bytes, base64url) and its S256 challenge.
pub struct Pkce {
    pub verifier: Secret,
    pub challenge: String,
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

impl Pkce {
    pub fn new() -> Self {
        let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let challenge = challenge_of(&verifier);
        Self {
            verifier: Secret::new(verifier),
            challenge,
        }
    }
}

/// `BASE64URL(SHA256(verifier))`.
pub fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether a provider whose metadata lists `methods` as its `code_challenge_methods_supported`
/// can be signed in with: this server only uses S256, so a list without it (`plain` only, or
/// nothing) cannot work. No list at all says nothing (Entra ID omits it): proceed. The error is
/// the reason, for the person who configures the provider.
pub fn check_methods(methods: Option<&[String]>) -> Result<(), String> {
    match methods {
        None => Ok(()),
        Some(methods) if methods.iter().any(|m| m == "S256") => Ok(()),
        Some(methods) => Err(format!(
            "the provider's metadata lists code_challenge_methods_supported [{}{}] without S256; \
             this server signs in only with PKCE S256 (RFC 7636), which the provider says it does \
             not support, so a browser sign-in could not be protected: enable S256 for this \
             client at the provider, or use login type \"deviceCode\"",
            methods
                .iter()
                .take(SHOWN_METHODS)
                .map(|m| shown(m))
                .collect::<Vec<_>>()
                .join(", "),
            if methods.len() > SHOWN_METHODS {
                ", …"
            } else {
                ""
            }
        )),
    }
}

/// A random value that ties the redirect to this login (CSRF protection).
pub fn random_state() -> Secret {
    Secret::new(URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_example() {
        assert_eq!(
            challenge_of("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn only_a_list_without_s256_is_refused() {
        let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases: [(Option<Vec<String>>, bool); 5] = [
            (None, true),
            (Some(list(&["S256"])), true),
            (Some(list(&["plain", "S256"])), true),
            (Some(list(&["plain"])), false),
            (Some(list(&[])), false),
        ];
        for (methods, ok) in cases {
            let result = check_methods(methods.as_deref());
            assert_eq!(result.is_ok(), ok, "{methods:?}");
            if let Err(why) = result {
                assert!(why.contains("S256") && why.contains("deviceCode"), "{why}");
            }
        }
        // The provider's words are quoted and bounded: no forged log line, no huge error.
        let hostile: Vec<String> = (0..10_000)
            .map(|i| format!("m{i}\n\u{1b}[2J{}", "x".repeat(1000)))
            .collect();
        let why = check_methods(Some(&hostile)).unwrap_err();
        assert!(why.len() < 3000, "{}", why.len());
        assert!(!why.contains('\n') && !why.contains('\u{1b}'), "{why}");
        assert!(why.contains("[\"m0\\n\\u{1b}[2J"), "{why}");
    }

    #[test]
    fn verifiers_are_43_chars_and_unique() {
        let (a, b) = (Pkce::new(), Pkce::new());
        assert_eq!(a.verifier.expose().len(), 43);
        assert_ne!(a.verifier, b.verifier);
        assert_ne!(random_state(), random_state());
    }
}
