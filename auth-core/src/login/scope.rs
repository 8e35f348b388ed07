//! The scopes a sign-in requests (step-up): the configured ones, those of the current grant
//! and those a client asks for, as one list without repeats, so that consent already given is
//! kept when an API asks for more (`insufficient_scope`).
//!
//! Every list is bounded: at most [`MAX_SCOPES`] scopes of at most [`MAX_SCOPE_BYTES`] each. A
//! client's `scopes` beyond that is refused with an error naming the bound (never the value);
//! scopes a provider names (protected resource metadata, challenges, a grant) beyond it are cut
//! with a WARN. Repeats are found with a set, so no list costs more than linear time.

use std::collections::HashSet;

/// The most scopes a sign-in requests (or a challenge is read for).
pub const MAX_SCOPES: usize = 100;
/// The longest scope accepted.
pub const MAX_SCOPE_BYTES: usize = 256;

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`, one word of printable ASCII
/// without `"` or `\`.
pub(crate) fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// `scopes` in their first-seen order, each once, at most [`MAX_SCOPES`] of them (the rest
/// cut, with a WARN). Pure but for the log line.
pub(crate) fn scope_union(scopes: Vec<String>) -> Vec<String> {
    let mut seen: HashSet<&str> = HashSet::with_capacity(scopes.len().min(MAX_SCOPES));
    let mut union: Vec<&String> = Vec::new();
    let mut cut = 0usize;
    for scope in &scopes {
        if !seen.insert(scope) {
            continue;
        }
        if union.len() < MAX_SCOPES {
            union.push(scope);
        } else {
            cut += 1;
        }
    }
    if cut > 0 {
        tracing::warn!(
            cut,
            kept = MAX_SCOPES,
            "more scopes than a sign-in requests; the later ones were left out"
        );
    }
    union.into_iter().cloned().collect()
}

/// Checks the scopes a client asks for (`login` `scopes`): at most [`MAX_SCOPES`], each a scope
/// token of at most [`MAX_SCOPE_BYTES`]. The error names the position and the rule, never the
/// value (a secret pasted there must not be echoed). Pure.
pub(crate) fn check_requested(scopes: &[String]) -> Result<(), String> {
    if scopes.len() > MAX_SCOPES {
        return Err(format!(
            "\"scopes\" holds {} scopes; at most {MAX_SCOPES} may be requested",
            scopes.len()
        ));
    }
    if let Some(at) = scopes.iter().position(|s| s.len() > MAX_SCOPE_BYTES) {
        return Err(format!(
            "\"scopes\"[{at}] is longer than {MAX_SCOPE_BYTES} bytes, longer than any scope"
        ));
    }
    if let Some(at) = scopes.iter().position(|s| !is_scope_token(s)) {
        return Err(format!(
            "\"scopes\"[{at}] is not a scope: each scope is one word of printable ASCII without spaces, quotes or backslashes (RFC 6749 §3.3)"
        ));
    }
    Ok(())
}

/// Scopes a provider names (`source` says where, for the log): scope tokens of at most
/// [`MAX_SCOPE_BYTES`], each once, at most [`MAX_SCOPES`]; the rest is cut with a WARN.
pub(crate) fn provider_scopes<'a>(
    scopes: impl IntoIterator<Item = &'a str>,
    source: &'static str,
) -> Vec<String> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut kept = Vec::new();
    let mut cut = 0usize;
    for scope in scopes {
        if scope.len() > MAX_SCOPE_BYTES || !is_scope_token(scope) {
            cut += 1;
        } else if seen.insert(scope) {
            if kept.len() < MAX_SCOPES {
                kept.push(scope.to_owned());
            } else {
                cut += 1;
            }
        }
    }
    if cut > 0 {
        tracing::warn!(
            source,
            cut,
            kept = kept.len(),
            "scopes named by the provider left out (not scopes, longer than {MAX_SCOPE_BYTES} bytes, or beyond {MAX_SCOPES})"
        );
    }
    kept
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
    fn lists_are_bounded_in_linear_time() {
        let many: Vec<String> = (0..200_000).map(|i| format!("s{i}")).collect();
        let started = std::time::Instant::now();
        let union = scope_union(many.clone());
        assert_eq!(union.len(), MAX_SCOPES);
        assert_eq!(union[0], "s0");
        let kept = provider_scopes(many.iter().map(String::as_str), "test");
        assert_eq!(kept, union);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));

        let long = "l".repeat(MAX_SCOPE_BYTES + 1);
        let fits = "f".repeat(MAX_SCOPE_BYTES);
        assert_eq!(
            provider_scopes([long.as_str(), "a b", "x", "x", fits.as_str()], "test"),
            ["x".to_owned(), fits.clone()]
        );
    }

    #[test]
    fn requested_scopes_are_checked_without_quoting_them() {
        assert!(check_requested(&strings(&["openid", "files.read"])).is_ok());
        let too_many: Vec<String> = (0..=MAX_SCOPES).map(|i| format!("s{i}")).collect();
        assert_eq!(
            check_requested(&too_many).unwrap_err(),
            "\"scopes\" holds 101 scopes; at most 100 may be requested"
        );
        let secret = "sk-live-secret value";
        let why = check_requested(&strings(&["openid", secret])).unwrap_err();
        assert!(why.starts_with("\"scopes\"[1] is not a scope"), "{why}");
        assert!(!why.contains("sk-live"), "{why}");
        let long = "k".repeat(MAX_SCOPE_BYTES + 1);
        let why = check_requested(&[long]).unwrap_err();
        assert!(
            why.contains("[0] is longer than 256 bytes") && !why.contains("kkk"),
            "{why}"
        );
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
