//! Randomized `auth.json` contents (the quick sibling of `fuzz/`'s `auth_file` target): any
//! bytes parse or fail without a panic; every file we could write reads back as itself; a file
//! cut short is refused with a message that never quotes a secret.

use auth_core::secret::Secret;
use auth_core::store::format::{
    AuthFile, AuthMode, RefreshBackoffRecord, RefreshFailureRecord, StoredTokens, Unknown,
};
use proptest::prelude::*;
use serde_json::Value;

/// Long enough that an error message cannot contain one by chance.
fn secret() -> impl Strategy<Value = String> {
    "sk-[A-Za-z0-9_\\-\\.~+/]{12,40}"
}

fn text() -> impl Strategy<Value = String> {
    // Any Unicode, including quotes, backslashes and control characters.
    any::<String>()
}

fn extra() -> impl Strategy<Value = Unknown> {
    let value = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        text().prop_map(Value::from),
        prop::collection::vec(any::<u32>().prop_map(Value::from), 0..3).prop_map(Value::from),
    ];
    prop::collection::btree_map("x_[a-z_]{1,12}", value, 0..3).prop_map(|map| {
        let mut extra = Unknown::default();
        for (name, value) in map {
            extra.insert(name, &value);
        }
        extra
    })
}

/// JSON numbers of any size and precision, as text.
fn number() -> impl Strategy<Value = String> {
    "-?(0|[1-9][0-9]{0,40})(\\.[0-9]{1,25})?([eE][+-]?[0-9]{1,4})?"
}

fn tokens() -> impl Strategy<Value = StoredTokens> {
    (
        secret(),
        prop::option::of(secret()),
        prop::option::of(secret()),
        prop::option::of(text()),
        prop::option::of(text()),
        prop::option::of(any::<i64>()),
        extra(),
    )
        .prop_map(
            |(access, refresh, id, token_type, scope, expires_at, extra)| StoredTokens {
                access_token: Secret::new(access),
                refresh_token: refresh.map(Secret::new),
                id_token: id.map(Secret::new),
                token_type,
                scope,
                expires_at,
                issued_at: expires_at.map(|at| at.saturating_sub(3600)),
                refresh_cause: refresh_cause_of(expires_at),
                extra,
            },
        )
}

/// Some token sets say they came from a report-triggered refresh.
fn refresh_cause_of(expires_at: Option<i64>) -> Option<String> {
    expires_at
        .filter(|at| at % 2 == 0)
        .map(|_| auth_core::store::format::REFRESH_CAUSE_REJECTED.to_owned())
}

fn backoff() -> impl Strategy<Value = RefreshBackoffRecord> {
    (
        "[0-9a-f]{64}",
        any::<i64>(),
        any::<u32>(),
        text(),
        prop::option::of(text()),
    )
        .prop_map(
            |(sha, retry_at, failures, message, code)| RefreshBackoffRecord {
                refresh_token_sha256: sha,
                retry_at,
                failures,
                message,
                code,
            },
        )
}

fn failure() -> impl Strategy<Value = RefreshFailureRecord> {
    (text(), text(), text(), "[0-9a-f]{64}").prop_map(|(reason, message, at, sha)| {
        RefreshFailureRecord {
            reason,
            message,
            at,
            refresh_token_sha256: sha,
        }
    })
}

/// Files the server could write: an API key, or OAuth tokens with any optional parts.
fn auth_file() -> impl Strategy<Value = AuthFile> {
    let api_key = (secret(), extra()).prop_map(|(key, extra)| AuthFile {
        extra,
        ..AuthFile::api_key(Secret::new(key))
    });
    let oauth = (
        prop::option::of(text()),
        prop::option::of(text()),
        tokens(),
        prop::option::of(text()),
        prop::option::of(failure()),
        prop::option::of(backoff()),
        extra(),
    )
        .prop_map(
            |(issuer, client_id, tokens, last_refresh, failure, backoff, extra)| AuthFile {
                last_refresh,
                refresh_failure: failure,
                refresh_backoff: backoff,
                extra,
                ..AuthFile::oauth(issuer, client_id, tokens)
            },
        );
    prop_oneof![api_key, oauth]
}

fn secrets_of(file: &AuthFile) -> Vec<String> {
    let mut secrets: Vec<String> = file.api_key.iter().map(|s| s.expose().into()).collect();
    if let Some(tokens) = &file.tokens {
        secrets.push(tokens.access_token.expose().into());
        secrets.extend(tokens.refresh_token.iter().map(|s| s.expose().into()));
        secrets.extend(tokens.id_token.iter().map(|s| s.expose().into()));
    }
    secrets
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_parse_or_fail_and_what_parses_round_trips(
        bytes in prop::collection::vec(any::<u8>(), 0..256)
    ) {
        auth_core::fuzzing::auth_file(&bytes);
    }

    #[test]
    fn any_advisory_records_stay_within_their_bounds(
        retry_at in prop_oneof![any::<i64>(), Just(i64::MAX), Just(i64::MIN)],
        issued_at in prop_oneof![any::<i64>(), Just(i64::MAX)],
        ill_typed in prop::sample::select(vec!["\"x\"", "1.5", "[]", "{}", "true", "1e400", "99999999999999999999"]),
        which in 0..4usize,
    ) {
        let fingerprint = Secret::new("rt").fingerprint();
        let mut backoff = format!(
            r#"{{"refresh_token_sha256":"{fingerprint}","retry_at":{retry_at},"failures":1,"message":"m"}}"#
        );
        let mut issued = issued_at.to_string();
        let mut cause = r#""rejected""#.to_owned();
        match which {
            0 => backoff = ill_typed.to_owned(),
            1 => issued = ill_typed.to_owned(),
            2 => cause = ill_typed.to_owned(),
            _ => {}
        }
        let text = format!(
            r#"{{"version":1,"auth_mode":"oauth","refresh_backoff":{backoff},"tokens":{{"access_token":"at","refresh_token":"rt","expires_at":{issued_at},"issued_at":{issued},"refresh_cause":{cause}}}}}"#
        );
        let file = AuthFile::parse(text.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        // A string is a well-typed refresh_cause (one this version does not act on).
        let ill = which < 2 || (which == 2 && ill_typed != "\"x\"");
        prop_assert_eq!(file.ignored.len(), usize::from(ill));
        auth_core::fuzzing::auth_file(text.as_bytes());
    }

    #[test]
    fn every_file_we_write_reads_back_as_itself(file in auth_file()) {
        let written = file.to_bytes();
        let again = AuthFile::parse(&written).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&again, &file);
        prop_assert_eq!(again.to_bytes(), written);
        let mode = if file.api_key.is_some() { AuthMode::ApiKey } else { AuthMode::Oauth };
        prop_assert_eq!(again.auth_mode, mode);
    }

    #[test]
    fn another_tools_members_come_back_verbatim(
        key in secret(),
        top in number(),
        nested in number(),
        in_tokens in number(),
    ) {
        let other = format!(r#"{{"list": [{nested}, "a"], "n": {top}}}"#);
        let text = format!(
            r#"{{"version":1,"auth_mode":"oauth","x_other":{other},"tokens":{{"access_token":"{key}","x_n":{in_tokens}}}}}"#
        );
        let file = AuthFile::parse(text.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(file.extra.get("x_other"), Some(other.as_str()));
        let written = String::from_utf8(file.to_bytes()).unwrap();
        prop_assert!(written.contains(&format!(r#""x_other": {other}"#)), "{}", written);
        prop_assert!(written.contains(&format!(r#""x_n": {in_tokens}"#)), "{}", written);
        prop_assert_eq!(AuthFile::parse(written.as_bytes()).ok(), Some(file));
    }

    #[test]
    fn a_file_cut_short_is_refused_without_quoting_a_secret(
        file in auth_file(),
        cut in any::<prop::sample::Index>(),
    ) {
        let written = file.to_bytes();
        // Everything but the closing brace and newline: never a whole JSON object.
        let kept = &written[..cut.index(written.len() - 2)];
        let message = match AuthFile::parse(kept) {
            Ok(_) => return Err(TestCaseError::fail("a cut file parsed")),
            Err(error) => error.to_string(),
        };
        for secret in secrets_of(&file) {
            prop_assert!(!message.contains(&secret), "{} quotes a secret", message);
        }
    }
}
