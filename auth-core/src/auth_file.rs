//! The `auth.json` format (version 1): what is stored, how it is parsed and checked, and how
//! unknown fields survive a rewrite. No I/O here; see `store` for that.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::secret::Secret;

pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    ApiKey,
    Oauth,
}

/// The whole file. Fields this version does not know are kept in `extra` and written back.
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<StoredTokens>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_refresh: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_failure: Option<RefreshFailureRecord>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

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
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A permanent refresh failure, recorded so that a restarted server does not try again.
/// It applies only while the stored refresh token has this fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshFailureRecord {
    /// The RFC 6749 error code.
    pub reason: String,
    pub message: String,
    /// RFC 3339.
    pub at: String,
    pub refresh_token_sha256: String,
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
            tokens: None,
            last_refresh: None,
            refresh_failure: None,
            extra: Map::new(),
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
        let file: AuthFile = serde_json::from_slice(bytes).map_err(describe_json_error)?;
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
            for (key, value) in &previous.extra {
                self.extra
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
        assert_eq!(new.extra["x_app"], "keep");
        assert_eq!(new.api_key.unwrap().expose(), "k2");
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
