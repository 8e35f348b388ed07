//! The real server on bytes in memory, for the fuzz targets in `fuzz/` and the randomized tests:
//! [`serve_bytes`] runs it, [`check_output`] checks what every line it writes must be. Not an
//! interface for anything else.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use auth_core::Provider;
use auth_core::store::AuthStore;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use tokio::io::AsyncWrite;

use crate::server;

/// Serves `input` as if it were all of stdin, and returns what went to stdout, line by line.
///
/// The server is the binary's: a current-thread runtime, the stdin reader's line splitting and
/// limit, the dispatcher, the methods, and a credential with no provider over an empty
/// temporary home. As at EOF, it returns once every admitted request has been answered.
///
/// # Panics
///
/// When no temporary folder or runtime can be had, and when the server panics.
pub fn serve_bytes(input: &[u8]) -> Vec<String> {
    let home = tempfile::tempdir().expect("a temporary home folder");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let stdout = MemoryOutput::default();
    runtime.block_on(server::serve_io(
        AuthStore::new(home.path()),
        Provider::None,
        auth_core::Limits::default(),
        io::Cursor::new(input.to_vec()),
        (stdout.clone(), None),
        std::future::pending(),
    ));
    let bytes = std::mem::take(&mut *stdout.0.lock().unwrap_or_else(PoisonError::into_inner));
    String::from_utf8(bytes)
        .expect("the server writes only UTF-8")
        .split_terminator('\n')
        .map(str::to_owned)
        .collect()
}

/// A message the server wrote, as [`check_output`] read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// `id` verbatim; the result as JSON text, or the error's code.
    Response {
        id: String,
        outcome: Result<String, i64>,
    },
    Notification {
        method: String,
    },
}

/// One line the server wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Single(Message),
    /// A batch's answers, in one array.
    Batch(Vec<Message>),
}

/// Checks what must hold of every line, whatever the input: it is one JSON value; a message is
/// a JSON-RPC 2.0 object with `"jsonrpc":"2.0"`; a response has an id (string, number or
/// `null`) and exactly one of `result` and `error` (with an integer code and a message); an
/// id that is not `null` is one of the input's, verbatim; a batch answer is a non-empty array
/// of responses. Returns the messages, or what was wrong.
pub fn check_output(input: &[u8], lines: &[String]) -> Result<Vec<Line>, String> {
    lines
        .iter()
        .map(|line| check_line(input, line).map_err(|problem| format!("{problem}: {line}")))
        .collect()
}

fn check_line(input: &[u8], line: &str) -> Result<Line, String> {
    let value: &RawValue =
        serde_json::from_str(line).map_err(|e| format!("not one JSON value ({e})"))?;
    if !value.get().starts_with('[') {
        return check_message(input, value).map(Line::Single);
    }
    let items: Vec<&RawValue> =
        serde_json::from_str(value.get()).map_err(|e| format!("not an array ({e})"))?;
    if items.is_empty() {
        return Err("an empty batch answer".into());
    }
    let messages = items
        .into_iter()
        .map(|item| check_message(input, item))
        .collect::<Result<Vec<_>, _>>()?;
    if messages
        .iter()
        .any(|m| matches!(m, Message::Notification { .. }))
    {
        return Err("a notification inside a batch answer".into());
    }
    Ok(Line::Batch(messages))
}

/// Every member a message may have; any other is an error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireMessage<'a> {
    jsonrpc: String,
    #[serde(default, borrow, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<WireError<'a>>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireError<'a> {
    code: i64,
    #[allow(dead_code, reason = "only its presence and type are checked")]
    message: String,
    #[serde(default, borrow)]
    #[allow(dead_code, reason = "only its presence is allowed")]
    data: Option<&'a RawValue>,
}

/// `Some` whenever the member is present, even as `null`.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

fn check_message(input: &[u8], raw: &RawValue) -> Result<Message, String> {
    let message: WireMessage = serde_json::from_str(raw.get())
        .map_err(|e| format!("not a JSON-RPC message object ({e})"))?;
    if message.jsonrpc != "2.0" {
        return Err("\"jsonrpc\" is not \"2.0\"".into());
    }
    match (message.id, message.method) {
        (Some(id), None) => {
            let id = id.get();
            let valid = id == "null"
                || id.starts_with(|c: char| c == '"' || c == '-' || c.is_ascii_digit());
            if !valid {
                return Err("a response id that is not a string, a number or null".into());
            }
            if id != "null" && !contains(input, id.as_bytes()) {
                return Err(format!("the id {id} is not one of the input's, verbatim"));
            }
            if message.params.is_some() {
                return Err("a response with params".into());
            }
            let outcome = match (message.result, message.error) {
                (Some(result), None) => Ok(result.get().to_owned()),
                (None, Some(error)) => Err(error.code),
                _ => return Err("a response without exactly one of result and error".into()),
            };
            Ok(Message::Response {
                id: id.to_owned(),
                outcome,
            })
        }
        (None, Some(method)) => {
            if message.result.is_some() || message.error.is_some() {
                return Err("a notification with a result or an error".into());
            }
            if !message.params.is_some_and(|p| p.get().starts_with('{')) {
                return Err("a notification without object params".into());
            }
            Ok(Message::Notification { method })
        }
        _ => Err("neither a response (id) nor a notification (method)".into()),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// stdout in memory: every write is kept.
#[derive(Clone, Default)]
struct MemoryOutput(Arc<Mutex<Vec<u8>>>);

impl AsyncWrite for MemoryOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        bytes.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_a_session_and_the_checks_accept_it() {
        let input = concat!(
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"clientInfo":{"name":"t","version":"1"}}}"#,
            "\n",
            r#"{"jsonrpc":"2.0","id":"k","method":"login","params":{"type":"apiKey","apiKey":"sk-1"}}"#,
            "\n",
            r#"[{"id":2,"method":"getAuthStatus"},{"id":3,"method":"nope"}]"#,
            "\n",
            "not json\n",
        );
        let lines = serve_bytes(input.as_bytes());
        let checked = check_output(input.as_bytes(), &lines).unwrap();
        assert_eq!(checked.len(), 5, "{lines:#?}");
        assert!(checked.contains(&Line::Single(Message::Response {
            id: "null".into(),
            outcome: Err(-32700)
        })));
        assert!(checked.iter().any(|line| matches!(line,
            Line::Single(Message::Notification { method }) if method == "authStatusChanged")));
    }

    #[test]
    fn the_checks_reject_what_must_not_be_written() {
        let input = br#"{"id":7}"#;
        for bad in [
            r#"{"jsonrpc":"2.0","id":7}"#,
            r#"{"jsonrpc":"2.0","id":7,"result":{},"error":{"code":1,"message":"m"}}"#,
            r#"{"jsonrpc":"2.0","id":8,"result":{}}"#,
            r#"{"jsonrpc":"1.0","id":7,"result":{}}"#,
            r#"{"id":7,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":true,"error":{"code":1,"message":"m"}}"#,
            r#"{"jsonrpc":"2.0","id":7,"error":{"code":"x","message":"m"}}"#,
            r#"[]"#,
            r#"[{"jsonrpc":"2.0","method":"m","params":{}}]"#,
            r#"{"jsonrpc":"2.0","id":7,"result":{}"#,
        ] {
            assert!(check_output(input, &[bad.into()]).is_err(), "{bad}");
        }
    }
}
