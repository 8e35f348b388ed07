//! Reading (not verifying) the claims of a JWT: expiry of an access token, identity from an
//! id token. The server never trusts these for authorization; it only shows them and uses
//! `exp` to decide when to refresh.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// The claims this server looks at.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
pub struct Claims {
    pub exp: Option<i64>,
    /// Issued at: with `exp`, the token's lifetime.
    pub iat: Option<i64>,
    pub sub: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
}

/// The claims of `token` if it is a JWT (three dot-separated base64url parts with a JSON
/// payload); `None` for anything else.
pub fn claims(token: &str) -> Option<Claims> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Whether `token` has the shape of a JWT, claims or not.
pub fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.split('.').count() == 3
}

#[cfg(test)]
pub(crate) fn encode_for_test(claims: serde_json::Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.sig")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_claims_of_a_jwt() {
        let token = encode_for_test(serde_json::json!({"exp": 42, "sub": "u1", "email": "a@b.c"}));
        let claims = claims(&token).unwrap();
        assert_eq!(claims.exp, Some(42));
        assert_eq!(claims.sub.as_deref(), Some("u1"));
        assert_eq!(claims.name, None);
        assert!(looks_like_jwt(&token));
    }

    #[test]
    fn anything_else_has_no_claims() {
        for token in ["opaque", "a.b", "a.b.c.d", "eyJ.!!!.c", ""] {
            assert_eq!(claims(token), None, "{token}");
        }
    }
}
