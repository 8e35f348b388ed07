//! Advice on a pasted API key: things that do not block the login but usually mean the user
//! pasted the wrong thing. Messages never quote the key.

use crate::jwt;

/// What to store (the key without surrounding whitespace) and the warnings to show.
pub fn review(raw: &str) -> (String, Vec<String>) {
    let key = raw.trim();
    let mut warnings = Vec::new();
    if key.len() != raw.len() {
        warnings.push(
            "the key had surrounding whitespace or a line break; it was removed before storing"
                .to_owned(),
        );
    }
    if key.len() >= 7 && key[..7].eq_ignore_ascii_case("bearer ") {
        warnings.push("the key starts with \"Bearer \": paste the key alone, without the authorization scheme".to_owned());
    } else if key.chars().any(char::is_whitespace) {
        warnings.push("the key contains whitespace; API keys normally do not: check that you pasted one key, whole".to_owned());
    }
    if jwt::looks_like_jwt(key) {
        warnings.push(
            "this looks like a JWT (an OAuth access or ID token), not an API key; tokens expire: sign in with login type \"oauth\" or \"deviceCode\", or pass tokens with type \"tokens\"".to_owned(),
        );
    }
    if key.chars().any(|c| c.is_control() || !c.is_ascii()) {
        warnings.push("the key contains non-ASCII or control characters; it may have been mangled by copy and paste".to_owned());
    }
    if key.len() < 16 {
        warnings.push(format!(
            "the key is unusually short ({} characters); check that it is complete",
            key.chars().count()
        ));
    }
    (key.to_owned(), warnings)
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
