//! A string that is a credential on the wire (API key, bearer token): serialized as is, never
//! shown by `Debug`.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// A credential carried in a wire message. `Debug` prints `"<redacted>"` so that logging a
/// params or result value can never leak it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(transparent)]
#[schemars(transparent)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The credential itself. Call this only where the value must leave the process.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_and_serde_is_transparent() {
        let secret = SecretString::new("sk-live-123");
        assert_eq!(format!("{secret:?}"), "\"<redacted>\"");
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"sk-live-123\"");
    }
}
