//! The `provider_answer` fuzz target's quick siblings: every input in
//! `fuzz/regressions/provider_answer/` (the seeds, and whatever the fuzzer once found), and
//! random bytes of each kind, through the target's own checks.

use std::path::Path;

use auth_core::fuzzing::provider_answer;
use proptest::prelude::*;

#[test]
fn the_provider_answer_regressions_stay_fixed() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/provider_answer");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&folder).expect("the regressions folder") {
        provider_answer(&std::fs::read(entry.unwrap().path()).unwrap());
        replayed += 1;
    }
    assert!(replayed >= 10, "only {replayed} in {}", folder.display());
}

/// JSON-ish bodies with the members providers send, holding values of any type and size.
fn member_soup() -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![
        Just("access_token"),
        Just("expires_in"),
        Just("error"),
        Just("interval"),
        Just("device_code"),
        Just("user_code"),
        Just("verification_uri"),
        Just("issuer"),
        Just("token_endpoint"),
        Just("token_type"),
        Just("client_id"),
        Just("client_secret"),
        Just("registration_access_token"),
        Just("client_id_expires_at"),
    ];
    let value = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:e}")),
        "[a-zA-Z0-9:/._ -]{0,40}".prop_map(|s| format!("{s:?}")),
        Just("null".to_owned()),
        Just("\"https://id.example.com/o\"".to_owned()),
    ];
    (
        any::<u8>(),
        any::<u16>(),
        prop::collection::vec((key, value), 0..8),
    )
        .prop_map(|(kind, status, members)| {
            let body: Vec<String> = members
                .into_iter()
                .map(|(k, v)| format!("{k:?}:{v}"))
                .collect();
            let mut data = vec![kind];
            data.extend(status.to_be_bytes());
            data.extend(format!("{{{}}}", body.join(",")).into_bytes());
            data
        })
}

/// Provider text (kind bytes 253 and up): scope lists and challenges of any length, with
/// repeats, quotes, backslashes, control characters and long words.
fn text_soup() -> impl Strategy<Value = Vec<u8>> {
    let word = prop_oneof![
        "[a-z:._/]{1,12}",
        Just("openid".to_owned()),
        Just("offline_access".to_owned()),
        Just("scope=\"".to_owned()),
        Just("\\\"".to_owned()),
        Just("\n\u{1b}[2J".to_owned()),
        "[a-z]{250,260}",
        ".{0,8}",
    ];
    (
        253u8..=255,
        prop::collection::vec(word, 0..120),
        prop::sample::select(vec![" ", ",", "  ", "\t"]),
    )
        .prop_map(|(kind, words, separator)| {
            let mut data = vec![kind, 0, 200];
            data.extend(words.join(separator).into_bytes());
            data
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_are_a_bounded_answer(data in prop::collection::vec(any::<u8>(), 0..200)) {
        provider_answer(&data);
    }

    #[test]
    fn any_members_are_a_bounded_answer(data in member_soup()) {
        provider_answer(&data);
    }

    #[test]
    fn any_provider_text_is_bounded(data in text_soup()) {
        provider_answer(&data);
    }
}
