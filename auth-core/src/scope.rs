//! OAuth scope lists, shared by sign-in, discovery and reports: the scopes a sign-in requests
//! (step-up: the configured ones, those of the current grant and those a client asks for, as
//! one list without repeats, so that consent already given is kept when an API asks for more),
//! and the scopes a `WWW-Authenticate` challenge names (`insufficient_scope`).
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

/// The scopes an `insufficient_scope` challenge asks for (RFC 6750 §3: `scope="a b"`), in
/// order and without repeats, bounded as [`provider_scopes`] bounds them (a cut is logged);
/// none when it names none.
pub fn challenge_scopes(www_authenticate: &str) -> Vec<String> {
    let scope = challenge_param(www_authenticate, "scope").unwrap_or_default();
    provider_scopes(scope.split_ascii_whitespace(), "WWW-Authenticate scope")
}

/// The first auth-param `name` of a `WWW-Authenticate` value (RFC 9110 §11.6.1: challenges of
/// `scheme param=token, param="quoted \"string\""`, several separated by commas), unquoted.
/// Scheme names and token68 values are skipped. Pure.
fn challenge_param(header: &str, name: &str) -> Option<String> {
    let mut rest = header;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        if rest.is_empty() {
            return None;
        }
        let end = rest
            .find(|c: char| c == '=' || c == ',' || c.is_ascii_whitespace())
            .unwrap_or(rest.len());
        let key = &rest[..end];
        let after = rest[end..].trim_start_matches([' ', '\t']);
        let Some(value) = after.strip_prefix('=') else {
            // A scheme name (or a token68): the next word is a parameter or another scheme.
            rest = &rest[end.max(1).min(rest.len())..];
            continue;
        };
        let value = value.trim_start_matches([' ', '\t']);
        let (parsed, remaining) = match value.strip_prefix('"') {
            Some(quoted) => unquote(quoted),
            None => {
                let end = value
                    .find(|c: char| c == ',' || c.is_ascii_whitespace())
                    .unwrap_or(value.len());
                (value[..end].to_owned(), &value[end..])
            }
        };
        if !key.is_empty() && key.eq_ignore_ascii_case(name) {
            return Some(parsed);
        }
        rest = remaining;
    }
}

/// A quoted-string's content (after its opening quote) and what follows its closing quote.
fn unquote(quoted: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return (value, &quoted[at + 1..]),
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            c => value.push(c),
        }
    }
    (value, "")
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
        // 200,000 scopes: a union that compared every pair would not end within the test run.
        let union = scope_union(many.clone());
        assert_eq!(union.len(), MAX_SCOPES);
        assert_eq!(union[0], "s0");
        let kept = provider_scopes(many.iter().map(String::as_str), "test");
        assert_eq!(kept, union);

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

    #[test]
    fn the_scopes_of_an_insufficient_scope_challenge() {
        let cases: &[(&str, &[&str])] = &[
            (
                r#"Bearer error="insufficient_scope", scope="files.read files.write""#,
                &["files.read", "files.write"],
            ),
            (
                r#"Bearer realm="api",error="insufficient_scope",scope="a""#,
                &["a"],
            ),
            ("Bearer error=insufficient_scope, scope=admin", &["admin"]),
            (
                r#"Bearer scope = "a  b a", error="insufficient_scope""#,
                &["a", "b"],
            ),
            (
                r#"Bearer error="insufficient_scope", error_description="needs scope=x""#,
                &[],
            ),
            (
                r#"Bearer error="insufficient_scope", resource_metadata="https://r/.well-known/x?scope=no""#,
                &[],
            ),
            (
                r#"Bearer error_description="a \"quoted\" word", scope="q""#,
                &["q"],
            ),
            (
                r#"Basic realm="x", Bearer error="insufficient_scope", scope="mcp:tools""#,
                &["mcp:tools"],
            ),
            ("Bearer error=\"insufficient_scope\"", &[]),
            ("", &[]),
            ("Negotiate abc==, Bearer scope=\"z\"", &["z"]),
            ("Bearer scope=\"unterminated", &["unterminated"]),
            ("===,, ,scope", &[]),
        ];
        for (challenge, expected) in cases {
            assert_eq!(challenge_scopes(challenge), *expected, "{challenge}");
        }
    }
}
