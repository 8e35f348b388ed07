//! The `auth.json` format (version 1): what is stored, how it is parsed and checked, and how
//! unknown fields survive a rewrite. No I/O here: the store's backends (`file`, `keyring`)
//! read and write it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::secret::Secret;

pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    ApiKey,
    Oauth,
}

/// The whole file. Fields this version does not know are kept in `extra` and written back.
/// Read it with [`AuthFile::parse`] (deserializing it directly would drop `extra`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthFile {
    pub version: u32,
    pub auth_mode: AuthMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The RFC 8707 resource the tokens are for: recorded by a named credential (contract
    /// version 3) whose provider has one, so that it refreshes without its configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<StoredTokens>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_refresh: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_failure: Option<RefreshFailureRecord>,
    /// Advisory: an ill-typed record is ignored (see [`AuthFile::ignored`]), never a reason to
    /// refuse the credentials.
    #[serde(
        default,
        deserialize_with = "advisory",
        skip_serializing_if = "Option::is_none"
    )]
    pub refresh_backoff: Option<RefreshBackoffRecord>,
    #[serde(flatten, skip_deserializing)]
    pub extra: Unknown,
    /// The advisory members (`refresh_backoff`, `tokens.issued_at`, `tokens.refresh_cause`)
    /// that were in the file but ill-typed, so ignored: the reader logs them. They are the
    /// server's own records, so a rewrite states its current ones instead.
    #[serde(skip)]
    pub ignored: Vec<&'static str>,
}

const FILE_MEMBERS: [&str; 10] = [
    "version",
    "auth_mode",
    "api_key",
    "issuer",
    "client_id",
    "resource",
    "tokens",
    "last_refresh",
    "refresh_failure",
    "refresh_backoff",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTokens {
    pub access_token: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// Unix seconds when these tokens were stored: with `expires_at`, their lifetime.
    /// Advisory: ignored when ill-typed; a reader never trusts it past the present.
    #[serde(
        default,
        deserialize_with = "advisory",
        skip_serializing_if = "Option::is_none"
    )]
    pub issued_at: Option<i64>,
    /// `"rejected"` when these tokens came from a refresh that a `reportAuthFailure` caused
    /// (bounds such refreshes to one a minute). An addition of this project. Advisory: ignored
    /// when ill-typed.
    #[serde(
        default,
        deserialize_with = "advisory",
        skip_serializing_if = "Option::is_none"
    )]
    pub refresh_cause: Option<String>,
    #[serde(flatten, skip_deserializing)]
    pub extra: Unknown,
}

/// [`StoredTokens::refresh_cause`] of tokens obtained because a client reported a rejection.
pub const REFRESH_CAUSE_REJECTED: &str = "rejected";

const TOKEN_MEMBERS: [&str; 8] = [
    "access_token",
    "refresh_token",
    "id_token",
    "token_type",
    "scope",
    "expires_at",
    "issued_at",
    "refresh_cause",
];

/// An object's members that this version does not know (another tool's, or a newer version's),
/// kept as their JSON text so that a rewrite gives them back byte for byte: parsed into
/// `serde_json::Value`, a number such as `1e400` or a 30-digit integer would come back changed.
/// `Debug` shows the names only; the values may be secrets.
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
pub struct Unknown(BTreeMap<String, RawJson>);

#[derive(Clone, Serialize)]
#[serde(transparent)]
struct RawJson(Box<RawValue>);

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Eq for RawJson {}

impl Unknown {
    /// The `members` that are not `known`.
    fn of(members: BTreeMap<String, &RawValue>, known: &[&str]) -> Self {
        Self(
            members
                .into_iter()
                .filter(|(name, _)| !known.contains(&name.as_str()))
                .map(|(name, value)| (name, RawJson(value.to_owned())))
                .collect(),
        )
    }

    /// A member's JSON text, verbatim.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|value| value.0.get())
    }

    pub fn insert(&mut self, name: impl Into<String>, value: &Value) {
        let text = RawValue::from_string(value.to_string()).expect("a Value is valid JSON");
        self.0.insert(name.into(), RawJson(text));
    }
}

impl fmt::Debug for Unknown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// A permanent refresh failure, or a rejected token that could not be refreshed, recorded so
/// that a restarted server does not try again. It applies only while the stored refresh token
/// (or, when there is none, the access token) has this fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshFailureRecord {
    /// The RFC 6749 error code; empty when the provider sent none or nothing was refreshed.
    pub reason: String,
    pub message: String,
    /// RFC 3339.
    pub at: String,
    pub refresh_token_sha256: String,
}

/// A transient refresh failure, recorded so that every process on the home waits out the same
/// backoff. It applies only while the stored refresh token has this fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshBackoffRecord {
    pub refresh_token_sha256: String,
    /// Unix seconds: no refresh request before this.
    pub retry_at: i64,
    /// Consecutive transient failures of this refresh token.
    pub failures: u32,
    pub message: String,
    /// The RFC 6749 error code, when the provider sent one. An addition of this project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// Why a file could not be used. The text never quotes the file's content (it may hold
/// secrets): only positions and field names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FormatError(String);

impl AuthFile {
    pub fn api_key(key: Secret) -> Self {
        Self {
            version: FORMAT_VERSION,
            auth_mode: AuthMode::ApiKey,
            api_key: Some(key),
            issuer: None,
            client_id: None,
            resource: None,
            tokens: None,
            last_refresh: None,
            refresh_failure: None,
            refresh_backoff: None,
            extra: Unknown::default(),
            ignored: Vec::new(),
        }
    }

    pub fn oauth(issuer: Option<String>, client_id: Option<String>, tokens: StoredTokens) -> Self {
        Self {
            auth_mode: AuthMode::Oauth,
            api_key: None,
            issuer,
            client_id,
            tokens: Some(tokens),
            ..Self::api_key(Secret::new(""))
        }
    }

    /// Parses and checks a file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        let mut file: AuthFile = serde_json::from_slice(bytes).map_err(describe_json_error)?;
        // The same bytes again, now for the members `file` does not know.
        let text = std::str::from_utf8(bytes)
            .map_err(|_| FormatError("the file is not UTF-8 text".into()))?;
        let top = members(text)?;
        if let (Some(tokens), Some(raw)) = (&mut file.tokens, top.get("tokens")) {
            tokens.extra = Unknown::of(members(raw.get())?, &TOKEN_MEMBERS);
        }
        file.ignored = ill_typed_advisory_members(&file, &top)?;
        file.extra = Unknown::of(top, &FILE_MEMBERS);
        file.check()?;
        Ok(file)
    }

    /// The bytes to write: pretty JSON with a trailing newline, for people who open the file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("auth file serializes");
        bytes.push(b'\n');
        bytes
    }

    /// Keeps the unknown top-level fields of `previous` (other tools' data); the credentials
    /// themselves are this file's.
    pub fn keeping_unknown_fields_of(mut self, previous: Option<&AuthFile>) -> Self {
        if let Some(previous) = previous {
            for (key, value) in &previous.extra.0 {
                self.extra
                    .0
                    .entry(key.clone())
                    .or_insert_with(|| value.clone());
            }
        }
        self
    }

    fn check(&self) -> Result<(), FormatError> {
        if self.version != FORMAT_VERSION {
            return Err(FormatError(format!(
                "unsupported version {} (this server reads version {FORMAT_VERSION}); it was written by another version of auth-app-server",
                self.version
            )));
        }
        match self.auth_mode {
            AuthMode::ApiKey
                if self
                    .api_key
                    .as_ref()
                    .is_none_or(|k| k.expose().trim().is_empty()) =>
            {
                Err(FormatError(
                    "auth_mode is \"api_key\" but \"api_key\" is missing or empty".into(),
                ))
            }
            AuthMode::Oauth
                if self
                    .tokens
                    .as_ref()
                    .is_none_or(|t| t.access_token.expose().is_empty()) =>
            {
                Err(FormatError(
                    "auth_mode is \"oauth\" but \"tokens.access_token\" is missing or empty".into(),
                ))
            }
            _ => Ok(()),
        }
    }
}

/// A member that only advises (a shared backoff, when tokens were stored, why): one of the
/// wrong type is read as absent instead of making the whole file unreadable, since the
/// credentials beside it are still good.
fn advisory<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    // As its text: any JSON (even a number too large for a float) is then read or ignored.
    let raw = Box::<RawValue>::deserialize(deserializer)?;
    Ok(serde_json::from_str(raw.get()).ok())
}

/// The advisory members present in the file (not `null`) that [`advisory`] read as absent.
fn ill_typed_advisory_members(
    file: &AuthFile,
    top: &BTreeMap<String, &RawValue>,
) -> Result<Vec<&'static str>, FormatError> {
    let present = |members: &BTreeMap<String, &RawValue>, name: &str| {
        members.get(name).is_some_and(|raw| raw.get() != "null")
    };
    let mut ignored = Vec::new();
    if file.refresh_backoff.is_none() && present(top, "refresh_backoff") {
        ignored.push("refresh_backoff");
    }
    if let (Some(tokens), Some(raw)) = (&file.tokens, top.get("tokens")) {
        let members = members(raw.get())?;
        if tokens.issued_at.is_none() && present(&members, "issued_at") {
            ignored.push("tokens.issued_at");
        }
        if tokens.refresh_cause.is_none() && present(&members, "refresh_cause") {
            ignored.push("tokens.refresh_cause");
        }
    }
    Ok(ignored)
}

/// An object's members by name, each as its JSON text.
fn members(object: &str) -> Result<BTreeMap<String, &RawValue>, FormatError> {
    serde_json::from_str(object).map_err(describe_json_error)
}

fn describe_json_error(error: serde_json::Error) -> FormatError {
    use serde_json::error::Category;
    let at = format!("line {} column {}", error.line(), error.column());
    FormatError(match error.classify() {
        Category::Eof => format!("the JSON ends too early ({at}); the file is truncated"),
        Category::Syntax => format!("invalid JSON at {at}"),
        // serde's data errors can quote values (secrets); name only the place.
        Category::Data => {
            format!("valid JSON but not the auth.json format (version {FORMAT_VERSION}) at {at}")
        }
        Category::Io => format!("read error at {at}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let text = r#"{"version":1,"auth_mode":"oauth","issuer":"https://i","client_id":"c",
            "tokens":{"access_token":"at","refresh_token":"rt","expires_at":5,"x_token_extra":[1]},
            "x_top":{"nested":true},"last_refresh":"2026-01-01T00:00:00Z"}"#;
        let file = AuthFile::parse(text.as_bytes()).unwrap();
        let again: Value = serde_json::from_slice(&file.to_bytes()).unwrap();
        let original: Value = serde_json::from_str(text).unwrap();
        assert_eq!(again, original);
    }

    #[test]
    fn login_replacement_keeps_other_tools_fields_but_not_old_credentials() {
        let old = AuthFile::parse(
            br#"{"version":1,"auth_mode":"api_key","api_key":"k1","x_app":"keep"}"#,
        )
        .unwrap();
        let new = AuthFile::api_key(Secret::new("k2")).keeping_unknown_fields_of(Some(&old));
        assert_eq!(new.extra.get("x_app"), Some(r#""keep""#));
        assert_eq!(new.api_key.unwrap().expose(), "k2");
    }

    #[test]
    fn an_ill_typed_advisory_member_is_ignored_not_fatal() {
        let text = r#"{"version":1,"auth_mode":"oauth","refresh_backoff":"soon",
            "tokens":{"access_token":"at","issued_at":"yesterday","refresh_cause":7}}"#;
        let file = AuthFile::parse(text.as_bytes()).unwrap();
        assert_eq!(
            file.ignored,
            [
                "refresh_backoff",
                "tokens.issued_at",
                "tokens.refresh_cause"
            ]
        );
        let tokens = file.tokens.as_ref().unwrap();
        assert_eq!(
            (tokens.issued_at, tokens.refresh_cause.as_deref()),
            (None, None)
        );
        assert_eq!(file.refresh_backoff, None);
        // The server's own records: a rewrite states its current ones (none here).
        let again: Value = serde_json::from_slice(&file.to_bytes()).unwrap();
        assert_eq!(again["refresh_backoff"], Value::Null);
        assert_eq!(again["tokens"]["issued_at"], Value::Null);

        // A backoff record missing a member, a number out of range, null: the same.
        for backoff in [
            r#"{"refresh_token_sha256":"x","retry_at":1}"#,
            r#"{"refresh_token_sha256":"x","retry_at":1e300,"failures":1,"message":""}"#,
            r#"{"refresh_token_sha256":"x","retry_at":1e400,"failures":1,"message":""}"#,
            "1e400",
        ] {
            let text = format!(
                r#"{{"version":1,"auth_mode":"api_key","api_key":"k","refresh_backoff":{backoff}}}"#
            );
            let file = AuthFile::parse(text.as_bytes()).unwrap();
            assert_eq!(file.ignored, ["refresh_backoff"], "{backoff}");
        }
        let file = AuthFile::parse(
            br#"{"version":1,"auth_mode":"oauth","refresh_backoff":null,"tokens":{"access_token":"a","issued_at":99999999999999999999}}"#,
        )
        .unwrap();
        assert_eq!(file.ignored, ["tokens.issued_at"]);
        let file = AuthFile::parse(
            br#"{"auth_mode":"oauth","client_id":"c","issuer":"http://127.0.0.1:35801/","refresh_backoff":"soon","tokens":{"access_token":"a","expires_at":5,"id_token":"x","issued_at":"yesterday","refresh_cause":7,"refresh_token":"r","x_token_note":"kept"},"version":1,"x_other_tool":{"keep":true}}"#,
        )
        .unwrap();
        assert_eq!(file.ignored.len(), 3);
        assert!(
            AuthFile::parse(br#"{"version":1,"auth_mode":"api_key","api_key":"k","x":1e400}"#)
                .is_ok()
        );
        // A well-typed record is read.
        let file = AuthFile::parse(
            br#"{"version":1,"auth_mode":"oauth","tokens":{"access_token":"a","issued_at":5,"refresh_cause":"rejected"}}"#,
        )
        .unwrap();
        assert!(file.ignored.is_empty());
        assert_eq!(file.tokens.unwrap().issued_at, Some(5));
    }

    #[test]
    fn errors_name_the_place_never_the_content() {
        let cases: [(&[u8], &str); 5] = [
            (b"{\"version\":1,", "ends too early"),
            (b"not json", "invalid JSON at line 1 column 2"),
            (
                br#"{"version":1,"auth_mode":"sk-secret-value"}"#,
                "not the auth.json format",
            ),
            (
                br#"{"version":1,"auth_mode":"api_key"}"#,
                "\"api_key\" is missing",
            ),
            (
                br#"{"version":7,"auth_mode":"api_key","api_key":"k"}"#,
                "unsupported version 7",
            ),
        ];
        for (bytes, expected) in cases {
            let message = AuthFile::parse(bytes).unwrap_err().to_string();
            assert!(message.contains(expected), "{message}");
            assert!(!message.contains("sk-secret"), "{message}");
        }
    }
}
