//! The scopes a sign-in requests (step-up): the configured ones, those of the current grant
//! and those a client asks for, as one list without repeats, so that consent already given is
//! kept when an API asks for more (`insufficient_scope`).

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`, one word of printable ASCII
/// without `"` or `\`.
pub(crate) fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// `scopes` in their first-seen order, each once. Pure.
pub(crate) fn scope_union(scopes: Vec<String>) -> Vec<String> {
    let mut union: Vec<String> = Vec::with_capacity(scopes.len());
    for scope in scopes {
        if !union.contains(&scope) {
            union.push(scope);
        }
    }
    union
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_union_keeps_the_first_order_and_drops_repeats() {
        let cases: [(&[&str], &[&str]); 4] = [
            (&[], &[]),
            (&["openid", "offline_access"], &["openid", "offline_access"]),
            (
                &[
                    "openid",
                    "offline_access",
                    "openid",
                    "files.read",
                    "files.write",
                    "files.read",
                ],
                &["openid", "offline_access", "files.read", "files.write"],
            ),
            (&["b", "a", "b", "A"], &["b", "a", "A"]),
        ];
        for (input, expected) in cases {
            assert_eq!(scope_union(strings(input)), strings(expected), "{input:?}");
        }
    }

    #[test]
    fn scope_tokens_are_one_printable_word() {
        for ok in [
            "openid",
            "files.read",
            "mcp:tools",
            "https://api.example/.default",
            "a!#[]~",
        ] {
            assert!(is_scope_token(ok), "{ok}");
        }
        for bad in ["", "a b", "a\"b", "a\\b", "tab\t", "é", "line\n"] {
            assert!(!is_scope_token(bad), "{bad:?}");
        }
    }
}
