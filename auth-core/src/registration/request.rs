//! The RFC 7591 registration request of a public native client, and reading the answer:
//! 201 (or 200) with a JSON object whose `client_id` is a non-empty string; unknown members
//! are ignored. A `client_secret` or `registration_access_token` the server sends anyway is
//! dropped here, so it can reach neither a file nor a log.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::provider::classify::registered_error_code;
use crate::provider::text::MAX_CLIENT_ID_BYTES;

/// The request body: a public client (no secret, PKCE) of a native app on a loopback redirect,
/// allowed the authorization code and refresh grants.
pub(crate) fn registration_request(client_name: &str, redirect_uris: &[String]) -> Value {
    json!({
        "client_name": client_name,
        "redirect_uris": redirect_uris,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": "native",
    })
}

/// What a successful registration answer holds that is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Registered {
    pub client_id: String,
    pub client_id_issued_at: Option<i64>,
    /// RFC 7591: 0 means it does not expire.
    pub client_id_expires_at: Option<i64>,
    /// The server sent a secret although none was asked for (it is dropped).
    pub secret_dropped: bool,
}

/// Reads the registration endpoint's answer; the error says why it is not a registration,
/// without quoting the body (it may hold a secret).
pub(crate) fn parse_registration_response(status: u16, body: &[u8]) -> Result<Registered, String> {
    #[derive(Deserialize)]
    struct Answer {
        client_id: Value,
        #[serde(default)]
        client_secret: Value,
        #[serde(default)]
        registration_access_token: Value,
        #[serde(default)]
        client_id_issued_at: Value,
        #[serde(default)]
        client_id_expires_at: Value,
    }
    if !(200..300).contains(&status) {
        return Err(match registered_error_code(body) {
            Some(code) => format!("it answered HTTP {status} with error `{code}`"),
            None if serde_json::from_slice::<Value>(body)
                .is_ok_and(|v| v.get("error").is_some()) =>
            {
                format!("it answered HTTP {status} with an unregistered error code")
            }
            None => format!("it answered HTTP {status}"),
        });
    }
    let answer: Answer = serde_json::from_slice(body).map_err(|_| {
        format!(
            "its HTTP {status} answer is not a client registration (a JSON object with a client_id)"
        )
    })?;
    let Some(client_id) = answer.client_id.as_str().filter(|id| !id.trim().is_empty()) else {
        return Err(format!(
            "its HTTP {status} answer has no usable client_id (a non-empty string)"
        ));
    };
    // RFC 6749 Appendix A.1: `client-id = *VSCHAR`; a longer one than any provider issues
    // would bloat every file and request that carries it.
    if client_id.len() > MAX_CLIENT_ID_BYTES {
        return Err(format!(
            "its HTTP {status} answer has a client_id longer than {MAX_CLIENT_ID_BYTES} bytes"
        ));
    }
    if !client_id.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(format!(
            "its HTTP {status} answer has a client_id with characters other than printable ASCII (RFC 6749 Appendix A.1)"
        ));
    }
    Ok(Registered {
        client_id: client_id.to_owned(),
        client_id_issued_at: answer.client_id_issued_at.as_i64(),
        client_id_expires_at: answer.client_id_expires_at.as_i64(),
        secret_dropped: !answer.client_secret.is_null()
            || !answer.registration_access_token.is_null(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_a_public_native_client() {
        let request = registration_request("Editor", &["http://127.0.0.1/callback".to_owned()]);
        assert_eq!(
            request,
            json!({
                "client_name": "Editor",
                "redirect_uris": ["http://127.0.0.1/callback"],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
                "application_type": "native",
            })
        );
    }

    #[test]
    fn answers_are_read_strictly_and_secrets_dropped() {
        let ok = parse_registration_response(
            201,
            br#"{"client_id":"c-1","client_secret":"s3cret","client_id_issued_at":5,"x":{}}"#,
        )
        .unwrap();
        assert_eq!(
            ok,
            Registered {
                client_id: "c-1".into(),
                client_id_issued_at: Some(5),
                client_id_expires_at: None,
                secret_dropped: true,
            }
        );
        assert!(parse_registration_response(200, br#"{"client_id":"c"}"#).is_ok());
        let long = format!(
            r#"{{"client_id":"{}"}}"#,
            "c".repeat(MAX_CLIENT_ID_BYTES + 1)
        );
        let longest = format!(r#"{{"client_id":"{}"}}"#, "c".repeat(MAX_CLIENT_ID_BYTES));
        assert!(parse_registration_response(201, longest.as_bytes()).is_ok());
        let cases: [(u16, &[u8], &str); 10] = [
            (201, long.as_bytes(), "client_id longer than 1024 bytes"),
            (
                201,
                br#"{"client_id":"c\n2026 INFO forged"}"#,
                "printable ASCII",
            ),
            (201, br#"{"client_id":"c\u001b[2J"}"#, "printable ASCII"),
            (201, b"<html>", "not a client registration"),
            (201, b"", "not a client registration"),
            (201, br#"{"client_id":""}"#, "no usable client_id"),
            (201, br#"{"client_id":7}"#, "no usable client_id"),
            (
                400,
                br#"{"error":"invalid_client_metadata","error_description":"no"}"#,
                "HTTP 400 with error `invalid_client_metadata`",
            ),
            (
                400,
                br#"{"error":"sk-live-123"}"#,
                "unregistered error code",
            ),
            (503, b"<html>down</html>", "HTTP 503"),
        ];
        for (status, body, wanted) in cases {
            let error = parse_registration_response(status, body).unwrap_err();
            assert!(error.contains(wanted), "{status}: {error}");
            assert!(!error.contains("sk-live"), "{error}");
        }
    }
}
