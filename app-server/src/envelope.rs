//! The JSON-RPC 2.0 envelopes the server writes: answers, error answers, batch answers and
//! notifications, each one line of JSON. Every line that goes to stdout is built here, the
//! same way: the client's id put back verbatim (whatever number or string it was), then
//! `result` or `error`.
//!
//! Methods run on jsonrpsee's `RpcModule`, which answers in its own envelope with its own id
//! type (a `u64` or a string, so not every id a client may send). [`answer`] reads that
//! envelope as data, with jsonrpsee's own `Response` type, and keeps only its payload.

use jsonrpsee::MethodResponse;
use jsonrpsee::types::{Response, ResponsePayload};
use serde::Serialize;
use serde_json::value::RawValue;

use auth_protocol::error_code;

const VERSION: &str = "2.0";

#[derive(Serialize)]
struct Success<'a> {
    jsonrpc: &'static str,
    id: &'a RawValue,
    result: &'a RawValue,
}

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
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct Notification<'a, P> {
    jsonrpc: &'static str,
    method: &'a str,
    params: P,
}

/// A successful answer to the request whose id is `id`.
pub fn success(id: &RawValue, result: &RawValue) -> String {
    let line = Success {
        jsonrpc: VERSION,
        id,
        result,
    };
    serde_json::to_string(&line).expect("raw JSON serializes")
}

/// An error answer; `id` verbatim, or `null` when there is none to give.
pub fn error(id: Option<&RawValue>, code: i32, message: &str) -> String {
    error_with_data(id, code, message, None)
}

fn error_with_data(
    id: Option<&RawValue>,
    code: i32,
    message: &str,
    data: Option<&RawValue>,
) -> String {
    let line = Failure {
        jsonrpc: VERSION,
        id,
        error: ErrorBody {
            code,
            message,
            data,
        },
    };
    serde_json::to_string(&line).expect("raw JSON serializes")
}

/// The answer to request `id` from what an `RpcModule` method returned (it was called with id
/// `null`; only its result or error is kept).
pub fn answer(id: &RawValue, response: &MethodResponse) -> String {
    match serde_json::from_str::<Response<&RawValue>>(response.as_json().get()) {
        Ok(Response {
            payload: ResponsePayload::Success(result),
            ..
        }) => success(id, *result),
        Ok(Response {
            payload: ResponsePayload::Error(failure),
            ..
        }) => error_with_data(Some(id), failure.code(), failure.message(), failure.data()),
        Err(problem) => {
            tracing::error!(%problem, "a method's response could not be read");
            error(
                Some(id),
                error_code::INTERNAL_ERROR,
                "internal error: the answer could not be written; retry the request",
            )
        }
    }
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
        let line: Value = serde_json::from_str(&answer(&raw("\"r\""), &response)).unwrap();
        assert_eq!(
            line,
            json!({"jsonrpc":"2.0","id":"r","error":{"code":-32010,"message":"no \"provider\"","data":{"k":1}}})
        );
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
