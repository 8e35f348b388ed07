//! What a provider's answer or a stored file can make the server do, as one function per fuzz
//! target (fuzz/) shared with their quick siblings in the test suite: any bytes as a token
//! response, a token endpoint error, a device authorization response, a metadata document, a
//! client registration answer or provider text (scopes, challenges, words shown in errors)
//! must never panic, and what comes out stays inside the bounds of docs/refresh-policy.md and
//! docs/security.md (provider text); any bytes as `auth.json` parse or fail without a panic,
//! round trip, and never make the advisory records reach past their bounds (docs/storage.md).

use reqwest::Url;

use crate::login::device::parse_grant;
use crate::provider::classify::classify_token_error;
use crate::provider::text::{
    MAX_CLIENT_ID_BYTES, MAX_MESSAGE_BYTES, MAX_TOKEN_BYTES, SHOWN_CHARS, capped, shown,
};
use crate::provider::{MAX_EXPIRES_IN_SECS, parse_metadata, parse_token_response};
use crate::scope::{
    MAX_SCOPE_BYTES, MAX_SCOPES, challenge_scopes, check_requested, is_scope_token,
    provider_scopes, scope_union,
};
use crate::status::{Credentials, describe};

use crate::refresh::stored_tokens;
use crate::registration::request::parse_registration_response;
use crate::store::format::AuthFile;
use crate::time;

/// `data` as `auth.json`: never a panic; a file accepted is written (`to_bytes`) as bytes that
/// parse back to the same file (less the ill-typed advisory members it ignored, which a write
/// drops), and writing again gives the same bytes; whatever its advisory records say, the
/// backoff they set ends at most 300 s from now (so `retryAfterSecs` is at most 300), and
/// tokens count as stored no later than now. Panics when one of these does not hold.
pub fn auth_file(data: &[u8]) {
    let Ok(file) = AuthFile::parse(data) else {
        return;
    };
    let written = file.to_bytes();
    let again = AuthFile::parse(&written).expect("what to_bytes writes parses");
    assert!(again.ignored.is_empty(), "a write kept {:?}", again.ignored);
    let mut expected = file.clone();
    expected.ignored.clear();
    assert_eq!(again, expected, "the file changed on a round trip");
    assert_eq!(again.to_bytes(), written, "writing is not stable");

    let credentials = Credentials::new(file);
    let now_ms = time::now_ms();
    if let Some(backoff) = &credentials.backoff {
        assert!(
            backoff.retry_at_ms <= now_ms.saturating_add(300_000),
            "a backoff {} ms ahead",
            backoff.retry_at_ms.saturating_sub(now_ms)
        );
    }
    if let Some(at) = credentials.report_refresh_at {
        assert!(at <= now_ms.div_euclid(1000), "stored in the future: {at}");
    }
    let backoff = credentials.backoff_with(None);
    let report = describe(&credentials, true, backoff.as_ref(), now_ms, true);
    if let Some(secs) = report.refresh_error.and_then(|e| e.retry_after_secs) {
        assert!(secs <= 300, "retryAfterSecs {secs}");
    }
    for now_ms in [i64::MIN, 0, i64::MAX] {
        describe(&credentials, true, backoff.as_ref(), now_ms, false);
    }
}

/// Feeds `data` to the parser its first byte selects (250 to 252: a registration answer; 253
/// and above: provider text; else by the byte modulo 4); the next two bytes are an HTTP status
/// where one is needed, the rest is the body. Panics when a bound does not hold.
pub fn provider_answer(data: &[u8]) {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let (status, body) = match rest {
        [a, b, body @ ..] => (u16::from_be_bytes([*a, *b]) % 1000, body),
        _ => (200, rest),
    };
    match kind {
        253.. => provider_text(body),
        250.. => registration_answer(status, body),
        _ => match kind % 4 {
            0 => token_response(body),
            1 => token_error(status, body),
            2 => device_authorization(body),
            _ => metadata(body),
        },
    }
}

/// An RFC 7591 registration answer: a client_id, when accepted, is a non-empty string, and
/// neither what is kept nor the error quotes a secret the answer carried.
fn registration_answer(status: u16, body: &[u8]) {
    #[derive(serde::Deserialize)]
    struct Secrets {
        #[serde(default)]
        client_secret: Option<String>,
        #[serde(default)]
        registration_access_token: Option<String>,
    }
    let secrets: Vec<String> = serde_json::from_slice::<Secrets>(body)
        .map(|s| [s.client_secret, s.registration_access_token])
        .into_iter()
        .flatten()
        .flatten()
        .filter(|secret| secret.len() >= 8)
        .collect();
    let (shown, client_id) = match parse_registration_response(status, body) {
        Ok(registered) => {
            let id = &registered.client_id;
            assert!(!id.trim().is_empty());
            assert!(id.len() <= MAX_CLIENT_ID_BYTES, "{}", id.len());
            assert!(id.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{id:?}");
            (format!("{registered:?}"), registered.client_id)
        }
        Err(message) => {
            assert!(message.len() < 512, "{message}");
            assert!(!message.chars().any(char::is_control), "{message:?}");
            (message, String::new())
        }
    };
    // A server may well make its client_id and its secret alike; the id is public.
    for secret in secrets.iter().filter(|s| !client_id.contains(s.as_str())) {
        assert!(!shown.contains(secret.as_str()), "a secret shown: {shown}");
    }
}

fn token_response(body: &[u8]) {
    let Some(response) = parse_token_response(body) else {
        return;
    };
    for token in [
        Some(&response.access_token),
        response.refresh_token.as_ref(),
        response.id_token.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        assert!(token.expose().len() <= MAX_TOKEN_BYTES);
    }
    if let Some(secs) = response.expires_in {
        assert!((0..=MAX_EXPIRES_IN_SECS).contains(&secs), "{secs}");
    }
    let shown = format!("{response:?}");
    let access = response.access_token.expose();
    assert!(
        access.len() < 4 || !shown.contains(access),
        "Debug shows the token"
    );
    for now in [i64::MIN + 1, -1, 0, 1_800_000_000, i64::MAX - 1] {
        let tokens = stored_tokens(response.clone(), now);
        let file = AuthFile::oauth(Some("https://i".into()), Some("c".into()), tokens);
        let credentials = Credentials::new(file);
        for now_ms in [i64::MIN, 0, 1_800_000_000_000, i64::MAX] {
            describe(&credentials, true, None, now_ms, true);
        }
    }
}

fn token_error(status: u16, body: &[u8]) {
    // The body's first 40 characters double as a `Retry-After` header.
    let retry_after = std::str::from_utf8(body)
        .ok()
        .map(|t| t.char_indices().nth(40).map_or(t, |(at, _)| &t[..at]));
    let failure = classify_token_error(status, retry_after, body);
    // A value that is not a registered code is never quoted.
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: String,
    }
    if let Ok(ErrorBody { error }) = serde_json::from_slice(body)
        && failure.code.as_deref() != Some(error.as_str())
        && error.len() >= 8
    {
        assert!(!failure.message.contains(&error), "{}", failure.message);
    }
}

fn device_authorization(body: &[u8]) {
    if let Ok(grant) = parse_grant(body) {
        assert!((1..=60).contains(&grant.interval), "{}", grant.interval);
        assert!((60..=3600).contains(&grant.lifetime), "{}", grant.lifetime);
        for uri in std::iter::once(&grant.verification_uri).chain(&grant.verification_uri_complete)
        {
            let url = Url::parse(uri).expect("checked");
            assert!(matches!(url.scheme(), "https" | "http"), "{uri}");
        }
    }
}

fn metadata(body: &[u8]) {
    let issuer = Url::parse("https://id.example.com/o").expect("valid");
    let parsed = parse_metadata(body, &issuer);
    if let Err(why) = &parsed {
        // Provider words come quoted and cut: no forged log line, no huge error.
        assert!(why.len() < 2048, "{}", why.len());
        assert!(!why.chars().any(char::is_control), "{why:?}");
    }
    if let Ok(endpoints) = parsed {
        let stated = endpoints
            .issuer
            .expect("an accepted document names its issuer");
        assert!(stated.trim_end_matches('/').ends_with("/o"), "{stated}");
        for url in [
            endpoints.authorization,
            endpoints.token,
            endpoints.device_authorization,
            endpoints.revocation,
        ]
        .into_iter()
        .flatten()
        {
            // The issuer is remote: not even a loopback http endpoint.
            assert_eq!(url.scheme(), "https", "{url}");
            assert!(
                url.as_str().len() <= crate::config::MAX_URL_BYTES + 16,
                "{url}"
            );
        }
    }
}

/// Provider text: the body as a `WWW-Authenticate` challenge, as a list of scopes (from
/// metadata, a grant or a client's `scopes`), and as words shown in an error. Scopes come out
/// as at most [`MAX_SCOPES`] distinct scope tokens of at most [`MAX_SCOPE_BYTES`]; a client's
/// list is refused without quoting it; shown words are quoted, cut and free of control
/// characters; capped messages fit [`MAX_MESSAGE_BYTES`].
fn provider_text(body: &[u8]) {
    let text = String::from_utf8_lossy(body);
    let bounded = |scopes: &[String]| {
        assert!(scopes.len() <= MAX_SCOPES, "{}", scopes.len());
        let mut seen = std::collections::HashSet::new();
        for scope in scopes {
            assert!(
                scope.len() <= MAX_SCOPE_BYTES && is_scope_token(scope),
                "{scope:?}"
            );
            assert!(seen.insert(scope), "{scope} twice");
        }
    };
    bounded(&challenge_scopes(&text));
    let words: Vec<String> = text.split_ascii_whitespace().map(str::to_owned).collect();
    bounded(&provider_scopes(words.iter().map(String::as_str), "fuzz"));
    let union = scope_union(words.clone());
    assert!(union.len() <= MAX_SCOPES && union.len() <= words.len());
    match check_requested(&words) {
        Ok(()) => bounded(&scope_union(words)),
        // Never the value: the message is one of the fixed ones, but for its numbers (a word
        // may well be one the message uses, such as "printable").
        Err(why) => {
            let digitless = |m: String| m.replace(|c: char| c.is_ascii_digit(), "");
            let templates = [
                vec!["a".to_owned(); MAX_SCOPES + 1],
                vec!["a".repeat(MAX_SCOPE_BYTES + 1)],
                vec!["a b".to_owned()],
            ]
            .map(|scopes| digitless(check_requested(&scopes).expect_err("refused")));
            assert!(templates.contains(&digitless(why.clone())), "{why}");
        }
    }
    let quoted = shown(&text);
    assert!(!quoted.chars().any(char::is_control), "{quoted:?}");
    // Each character shows as at most 10 (`\u{10ffff}`), plus the quotes and the `…`.
    assert!(
        quoted.chars().count() <= SHOWN_CHARS * 10 + 3,
        "{}",
        quoted.len()
    );
    let cut = capped(&text);
    assert!(cut.len() <= MAX_MESSAGE_BYTES, "{}", cut.len());
    let kept = cut.strip_suffix('…').unwrap_or(&cut);
    assert!(text.starts_with(kept));
}
