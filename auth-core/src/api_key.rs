//! Advice on a pasted API key: things that do not block the login but usually mean the user
//! pasted the wrong thing. Messages never quote the key.

use std::fmt;

use crate::jwt;

/// Something about a pasted key that usually means it is not what the user meant to paste.
/// `Display` says it to a client of the protocol; a terminal says [`KeyWarning::LooksLikeJwt`]
/// in its own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyWarning {
    /// Surrounding whitespace or a line break was removed.
    Trimmed,
    /// The key starts with the authorization scheme `Bearer `.
    BearerPrefix,
    /// Whitespace inside the key.
    Whitespace,
    /// An OAuth access or ID token, not an API key.
    LooksLikeJwt,
    /// Non-ASCII or control characters.
    Mangled,
    /// Fewer than 16 characters.
    Short { chars: usize },
}

impl fmt::Display for KeyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Trimmed => f.write_str(
                "the key had surrounding whitespace or a line break; it was removed before storing",
            ),
            Self::BearerPrefix => f.write_str(
                "the key starts with \"Bearer \": paste the key alone, without the authorization scheme",
            ),
            Self::Whitespace => f.write_str(
                "the key contains whitespace; API keys normally do not: check that you pasted one key, whole",
            ),
            Self::LooksLikeJwt => f.write_str(
                "this looks like a JWT (an OAuth access or ID token), not an API key; tokens expire: sign in with login type \"oauth\" or \"deviceCode\", or pass tokens with type \"tokens\"",
            ),
            Self::Mangled => f.write_str(
                "the key contains non-ASCII or control characters; it may have been mangled by copy and paste",
            ),
            Self::Short { chars } => write!(
                f,
                "the key is unusually short ({chars} characters); check that it is complete"
            ),
        }
    }
}

/// What to store (the key without surrounding whitespace) and what looks wrong about it.
pub fn inspect(raw: &str) -> (String, Vec<KeyWarning>) {
    let key = raw.trim();
    let mut warnings = Vec::new();
    if key.len() != raw.len() {
        warnings.push(KeyWarning::Trimmed);
    }
    if key.len() >= 7 && key[..7].eq_ignore_ascii_case("bearer ") {
        warnings.push(KeyWarning::BearerPrefix);
    } else if key.chars().any(char::is_whitespace) {
        warnings.push(KeyWarning::Whitespace);
    }
    if jwt::looks_like_jwt(key) {
        warnings.push(KeyWarning::LooksLikeJwt);
    }
    if key.chars().any(|c| c.is_control() || !c.is_ascii()) {
        warnings.push(KeyWarning::Mangled);
    }
    if key.len() < 16 {
        warnings.push(KeyWarning::Short {
            chars: key.chars().count(),
        });
    }
    (key.to_owned(), warnings)
}

/// [`inspect`], with the warnings as a client of the protocol reads them.
pub fn review(raw: &str) -> (String, Vec<String>) {
    let (key, warnings) = inspect(raw);
    (key, warnings.iter().map(ToString::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_key_has_no_warnings() {
        assert_eq!(
            review("sk-proj-0123456789abcdefABCDEF"),
            ("sk-proj-0123456789abcdefABCDEF".into(), vec![])
        );
    }

    #[test]
    fn each_suspicious_shape_warns_without_quoting_the_key() {
        let jwt = crate::jwt::encode_for_test(serde_json::json!({"sub": "x"}));
        let cases = [
            (" sk-0123456789abcdef\n".to_owned(), "whitespace"),
            ("Bearer sk-0123456789abcdef".to_owned(), "Bearer"),
            ("sk-0123 456789abcdef".to_owned(), "contains whitespace"),
            (jwt, "JWT"),
            ("sk-0123456789abcdé".to_owned(), "non-ASCII"),
            ("sk-1".to_owned(), "unusually short"),
        ];
        for (key, expected) in cases {
            let (stored, warnings) = review(&key);
            assert_eq!(stored, key.trim());
            assert!(
                warnings.iter().any(|w| w.contains(expected)),
                "{key:?}: {warnings:?}"
            );
            assert!(
                warnings.iter().all(|w| !w.contains(stored.as_str())),
                "{warnings:?}"
            );
        }
    }
}
