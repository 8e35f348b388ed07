//! The JSON-RPC 2.0 envelopes the server writes: answers, error answers, batch answers and
//! notifications, each one line of JSON. Every line that goes to stdout is built here, the
//! same way: the client's id put back verbatim (whatever number or string it was), then
//! `result` or `error`.
//!
//! Methods run on jsonrpsee's `RpcModule`, which answers in its own envelope with its own id
//! type (a `u64` or a string, so not every id a client may send). The dispatcher calls them
//! with id `null`, and [`answer`] puts the client's id in place of that `null` in the text
//! jsonrpsee wrote: each answer is serialized once, by jsonrpsee, and never parsed back.

use jsonrpsee::MethodResponse;
use serde::Serialize;
use serde_json::value::RawValue;

use auth_protocol::error_code;

const VERSION: &str = "2.0";

#[derive(Serialize)]
struct Failure<'a> {
    jsonrpc: &'static str,
    /// `None` is written `null`: the request's id could not be read.
    id: Option<&'a RawValue>,
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: i32,
    message: &'a str,
}

#[derive(Serialize)]
struct Notification<'a, P> {
    jsonrpc: &'static str,
    method: &'a str,
    params: P,
}

/// An error answer; `id` verbatim, or `null` when there is none to give.
pub fn error(id: Option<&RawValue>, code: i32, message: &str) -> String {
    let line = Failure {
        jsonrpc: VERSION,
        id,
        error: ErrorBody { code, message },
    };
    serde_json::to_string(&line).expect("raw JSON serializes")
}

/// How jsonrpsee's answer to a call made with id `null` begins; its `result` or `error`
/// member follows.
const NULL_ID_HEAD: &str = r#"{"jsonrpc":"2.0","id":null,"#;

/// The answer to request `id` from what an `RpcModule` method returned (it was called with id
/// `null`; that `null` is replaced by `id`, verbatim, and the rest is kept as jsonrpsee wrote
/// it).
pub fn answer(id: &RawValue, response: &MethodResponse) -> String {
    let written = response.as_json().get();
    let Some(payload) = written.strip_prefix(NULL_ID_HEAD) else {
        tracing::error!("a method's response does not have the expected envelope");
        return error(
            Some(id),
            error_code::INTERNAL_ERROR,
            "internal error: the answer could not be written; retry the request",
        );
    };
    let head = r#"{"jsonrpc":"2.0","id":"#;
    // One more byte: the reader ends the line with its `\n` where it is (no reallocation).
    let mut line = String::with_capacity(head.len() + id.get().len() + 1 + payload.len() + 1);
    line.push_str(head);
    line.push_str(id.get());
    line.push(',');
    line.push_str(payload);
    line
}

/// The answers to one batch, in one array.
pub fn batch(answers: &[String]) -> String {
    format!("[{}]", answers.join(","))
}

/// A notification from the server.
pub fn notification(method: &str, params: impl Serialize) -> String {
    let line = Notification {
        jsonrpc: VERSION,
        method,
        params,
    };
    serde_json::to_string(&line).expect("wire types serialize")
}

#[cfg(test)]
mod tests {
    use jsonrpsee::types::{ErrorObjectOwned, Id};
    use serde_json::{Value, json};

    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn ids_are_put_back_verbatim() {
        let response = MethodResponse::response(
            Id::Null,
            jsonrpsee::ResponsePayload::success(json!({"a": [1, "x"]})),
            usize::MAX,
        );
        for id in [
            "7",
            "-3",
            "1.5",
            "\"a\\\"b\"",
            "null",
            "18446744073709551616",
        ] {
            let line = answer(&raw(id), &response);
            assert_eq!(
                line,
                format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"a":[1,"x"]}}}}"#)
            );
            serde_json::from_str::<Value>(&line).unwrap();
        }
    }

    #[test]
    fn a_method_error_keeps_its_code_message_and_data() {
        let failure = ErrorObjectOwned::owned(-32010, "no \"provider\"", Some(json!({"k": 1})));
        let response = MethodResponse::error(Id::Null, failure);
        let text = answer(&raw("\"r\""), &response);
        assert_eq!(
            text,
            r#"{"jsonrpc":"2.0","id":"r","error":{"code":-32010,"message":"no \"provider\"","data":{"k":1}}}"#
        );
        let line: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            line,
            json!({"jsonrpc":"2.0","id":"r","error":{"code":-32010,"message":"no \"provider\"","data":{"k":1}}})
        );
    }

    #[test]
    fn an_answer_not_made_for_id_null_is_an_internal_error() {
        let response = MethodResponse::response(
            Id::Number(1),
            jsonrpsee::ResponsePayload::success(json!(1)),
            usize::MAX,
        );
        let line: Value = serde_json::from_str(&answer(&raw("5"), &response)).unwrap();
        assert_eq!(line["id"], 5);
        assert_eq!(line["error"]["code"], -32603);
    }

    #[test]
    fn error_lines_are_valid_json_rpc() {
        let line: Value =
            serde_json::from_str(&error(Some(&raw("\"x\"")), -32600, "bad \"thing\"")).unwrap();
        assert_eq!(
            line,
            json!({"jsonrpc":"2.0","id":"x","error":{"code":-32600,"message":"bad \"thing\""}})
        );
        let line: Value = serde_json::from_str(&error(None, -32700, "parse error")).unwrap();
        assert_eq!(line["id"], Value::Null);
    }

    #[test]
    fn notifications_and_batches() {
        assert_eq!(
            notification("loginCompleted", json!({"loginId": "l"})),
            r#"{"jsonrpc":"2.0","method":"loginCompleted","params":{"loginId":"l"}}"#
        );
        assert_eq!(batch(&["1".into(), "2".into()]), "[1,2]");
    }
}
