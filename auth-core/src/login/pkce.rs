//! PKCE (RFC 7636, S256) and the `state` value of an authorization request.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::provider::text::shown;
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

/// What a provider's metadata says about PKCE, when it can be signed in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkceSupport {
    /// The metadata lists S256.
    Listed,
    /// The metadata lists nothing (many general providers, Entra ID among them, omit the
    /// member): S256 is sent anyway.
    Unstated,
    /// No metadata was read: the configured endpoints are used without it (all four are
    /// configured, or discovery failed). Nothing lacks the member, so S256 is sent anyway, in
    /// the MCP flow too.
    NoMetadata,
}

impl PkceSupport {
    /// What to log (once per provider) when S256 is sent without the metadata confirming it.
    pub fn warning(self) -> Option<&'static str> {
        match self {
            Self::Listed => None,
            Self::Unstated => Some(
                "the provider's metadata has no code_challenge_methods_supported; signing in with PKCE S256 anyway (a protected resource's authorization server would be refused)",
            ),
            Self::NoMetadata => Some(
                "the configured endpoints are used without authorization server metadata, so code_challenge_methods_supported is unknown; signing in with PKCE S256 anyway",
            ),
        }
    }
}

/// Whether a provider whose metadata lists `methods` as its `code_challenge_methods_supported`
/// can be signed in with: this server only uses S256, so a list without it (`plain` only, or
/// nothing) cannot work. No list at all says nothing: proceed, except in the MCP flow
/// (`mcp_flow`: the authorization server a protected resource names), whose specification
/// requires the member (MCP authorization 2026-07-28). Without metadata (`metadata_read`
/// false: the endpoints are configured) nothing lacks the member: proceed. The error is the
/// reason, for the person who configures the provider. Pure.
pub fn check_methods(
    methods: Option<&[String]>,
    metadata_read: bool,
    mcp_flow: bool,
) -> Result<PkceSupport, String> {
    match methods {
        None if !metadata_read => Ok(PkceSupport::NoMetadata),
        None if mcp_flow => Err(
            "the authorization server named by the protected resource has no code_challenge_methods_supported in its metadata; the MCP authorization specification requires it (PKCE S256 must be confirmed), so it is refused: ask its operator to publish it, or configure `issuer` in the [provider] section of config.toml to use it as a general provider".to_owned(),
        ),
        None => Ok(PkceSupport::Unstated),
        Some(methods) if methods.iter().any(|m| m == "S256") => Ok(PkceSupport::Listed),
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
            if methods.len() > SHOWN_METHODS { ", …" } else { "" }
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
        assert_eq!(check_methods(None, true, false), Ok(PkceSupport::Unstated));
        let why = check_methods(None, true, true).unwrap_err();
        assert!(why.contains("MCP authorization specification"), "{why}");
        assert_eq!(
            check_methods(Some(&list(&["S256"])), true, true),
            Ok(PkceSupport::Listed)
        );
        // No metadata read (configured endpoints): nothing lacks the member, MCP flow or not.
        for mcp_flow in [false, true] {
            assert_eq!(
                check_methods(None, false, mcp_flow),
                Ok(PkceSupport::NoMetadata)
            );
        }
        for (methods, ok) in cases {
            let result = check_methods(methods.as_deref(), true, false);
            assert_eq!(result.is_ok(), ok, "{methods:?}");
            if let Err(why) = result {
                assert!(why.contains("S256") && why.contains("deviceCode"), "{why}");
            }
        }
        // The provider's words are quoted and bounded: no forged log line, no huge error.
        let hostile: Vec<String> = (0..10_000)
            .map(|i| format!("m{i}\n\u{1b}[2J{}", "x".repeat(1000)))
            .collect();
        let why = check_methods(Some(&hostile), true, false).unwrap_err();
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
