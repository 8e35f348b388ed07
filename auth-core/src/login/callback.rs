//! The authorization response of a browser sign-in (RFC 6749 §4.1.2) and what it must say to
//! be accepted: the `state` of this login (CSRF, RFC 6749 §10.12), then the issuer's `iss` (the
//! mix-up defence of RFC 9207), then `error=` or a `code`. One pure function decides; the
//! loopback listener and `completeLogin` both carry out its verdict.

use crate::provider::same_identifier;
use crate::provider::text::shown;
use crate::secret::Secret;

/// What an authorization response is checked against.
pub(crate) struct ResponseCheck {
    state: Secret,
    /// The issuer identifier the login was started with (as discovery recorded it).
    issuer: String,
    /// The metadata promises `iss` in every response
    /// (`authorization_response_iss_parameter_supported: true`).
    iss_required: bool,
}

/// The verdict on one authorization response.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Missing or wrong `state`: not this login's response. Refused; the login keeps waiting.
    WrongState,
    /// Neither a code nor an error: refused; the login keeps waiting.
    NoCode,
    /// `iss` names another issuer, or is missing although promised: the login ends, and its
    /// code (if any) is never exchanged. The reason names the mismatch.
    MixUp(String),
    /// The provider refused (`error=`): the login ends.
    ProviderError(String),
    /// A code to exchange.
    Code(Secret),
}

impl ResponseCheck {
    pub(crate) fn new(state: Secret, issuer: String, iss_required: bool) -> Self {
        Self {
            state,
            issuer,
            iss_required,
        }
    }

    pub(crate) fn state(&self) -> &Secret {
        &self.state
    }

    /// Judges the query parameters of a redirect. Pure.
    pub(crate) fn judge(&self, query: &[(String, String)]) -> Verdict {
        let param = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        if param("state") != Some(self.state.expose()) {
            return Verdict::WrongState;
        }
        // RFC 9207 §2.4: checked before anything else of the response is used, `error=` too.
        match param("iss") {
            Some(iss) if !same_identifier(iss, &self.issuer) => {
                return Verdict::MixUp(format!(
                    "issuer mismatch: the authorization response says it comes from {} but the \
                     sign-in was started with {}; refused as a possible mix-up attack (RFC 9207) \
                     and no code was exchanged: start the sign-in again",
                    shown(iss),
                    self.issuer
                ));
            }
            // Neither a code nor an error (a truncated paste): nothing to refuse, and the
            // login keeps waiting for the whole address.
            None if self.iss_required
                && (param("error").is_some() || param("code").is_some_and(|c| !c.is_empty())) =>
            {
                return Verdict::MixUp(format!(
                    "issuer mismatch: the authorization response carries no `iss` although the \
                     metadata of {} promises it (authorization_response_iss_parameter_supported); \
                     refused as a possible mix-up attack (RFC 9207) and no code was exchanged: \
                     start the sign-in again",
                    self.issuer
                ));
            }
            _ => {}
        }
        if let Some(error) = param("error") {
            let description = param("error_description").map(|d| format!(": {}", shown(d)));
            return Verdict::ProviderError(format!(
                "the provider did not complete the sign-in ({}{})",
                shown(error),
                description.unwrap_or_default()
            ));
        }
        match param("code") {
            Some(code) if !code.is_empty() => Verdict::Code(Secret::new(code)),
            _ => Verdict::NoCode,
        }
    }
}

/// The query parameters of an address (none when it has no query).
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// (iss required, query, expected verdict)
    type Case = (bool, &'static [(&'static str, &'static str)], &'static str);

    #[test]
    fn state_then_iss_then_error_then_code() {
        const ISSUER: &str = "https://id.example.com";
        let check =
            |iss_required| ResponseCheck::new(Secret::new("s1"), ISSUER.into(), iss_required);
        let code = || Verdict::Code(Secret::new("c"));
        let cases: &[Case] = &[
            (false, &[("code", "c"), ("state", "s1")], "code"),
            (false, &[("code", "c")], "state"),
            (false, &[("code", "c"), ("state", "s2")], "state"),
            (false, &[("state", "s1")], "nocode"),
            (false, &[("state", "s1"), ("code", "")], "nocode"),
            (
                false,
                &[("state", "s1"), ("code", "c"), ("iss", ISSUER)],
                "code",
            ),
            (
                false,
                &[
                    ("state", "s1"),
                    ("code", "c"),
                    ("iss", "https://id.example.com/"),
                ],
                "code",
            ),
            (
                false,
                &[
                    ("state", "s1"),
                    ("code", "c"),
                    ("iss", "https://evil.example"),
                ],
                "mixup",
            ),
            (
                false,
                &[
                    ("state", "s1"),
                    ("code", "c"),
                    ("iss", "https://id.example.com//"),
                ],
                "mixup",
            ),
            (true, &[("state", "s1"), ("code", "c")], "mixup"),
            // A truncated paste: no code, no error, no iss.
            (true, &[("state", "s1")], "nocode"),
            (true, &[("state", "s1"), ("code", "")], "nocode"),
            (
                true,
                &[("state", "s1"), ("code", "c"), ("iss", ISSUER)],
                "code",
            ),
            (
                true,
                &[("state", "s1"), ("error", "access_denied")],
                "mixup",
            ),
            (
                false,
                &[("state", "s1"), ("error", "access_denied")],
                "error",
            ),
            (
                false,
                &[
                    ("state", "s1"),
                    ("error", "x"),
                    ("iss", "https://evil.example"),
                ],
                "mixup",
            ),
            (
                true,
                &[("code", "c"), ("iss", "https://evil.example")],
                "state",
            ),
        ];
        for &(required, pairs, expected) in cases {
            let query = query(pairs);
            let verdict = check(required).judge(&query);
            let kind = match &verdict {
                Verdict::WrongState => "state",
                Verdict::NoCode => "nocode",
                Verdict::MixUp(why) => {
                    assert!(why.contains("issuer mismatch"), "{why}");
                    "mixup"
                }
                Verdict::ProviderError(_) => "error",
                Verdict::Code(_) => {
                    assert_eq!(verdict, code());
                    "code"
                }
            };
            assert_eq!(kind, expected, "{query:?} (iss required: {required})");
        }
    }

    #[test]
    fn provider_words_are_cut_short_and_quoted() {
        let check = ResponseCheck::new(Secret::new("s"), "https://i".into(), false);
        let long = "x".repeat(500);
        let verdict = check.judge(&query(&[("state", "s"), ("iss", &long)]));
        let Verdict::MixUp(why) = verdict else {
            panic!("{verdict:?}")
        };
        assert!(why.len() < 600, "{why}");
        assert!(why.contains("https://i"), "{why}");
    }
}
