//! docs/protocol.md (transport, lifecycle) over real pipes: framing, bad input that must not stop the server, batches,
//! ids, concurrency, and the handshake's line order.

use auth_app_server_tests::ServerProcess;
use serde_json::{Value, json};

async fn started() -> (tempfile::TempDir, ServerProcess) {
    let home = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_initialized(home.path()).await;
    (home, server)
}

/// The server still answers a normal request.
async fn assert_serving(server: &mut ServerProcess) {
    let status = server.status(json!({})).await;
    assert_eq!(status["state"], "signedOut");
}

#[tokio::test]
async fn malformed_json_and_invalid_utf8_get_parse_errors_and_the_server_keeps_serving() {
    let (_home, mut server) = started().await;
    server.send_line("{\"id\":1,\"method\":").await;
    let error = server.next_message().await;
    assert_eq!(error["id"], Value::Null);
    assert_eq!(error["error"]["code"], -32700);

    server
        .send_bytes(b"{\"id\":2,\"method\":\"getAuthStatus\xff\"}\n")
        .await;
    let error = server.next_message().await;
    assert_eq!(
        (error["id"].clone(), error["error"]["code"].clone()),
        (Value::Null, json!(-32700))
    );
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("UTF-8")
    );
    assert_serving(&mut server).await;
}

#[tokio::test]
async fn a_line_over_one_mebibyte_is_refused_and_the_next_line_is_served() {
    let (_home, mut server) = started().await;
    let huge = format!(
        "{{\"id\":1,\"method\":\"getAuthStatus\",\"params\":{{\"pad\":\"{}\"}}}}\n",
        "x".repeat(2 << 20)
    );
    server.send_bytes(huge.as_bytes()).await;
    let error = server.next_message().await;
    assert_eq!(error["id"], Value::Null);
    assert_eq!(error["error"]["code"], -32600);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("longer than")
    );
    assert_serving(&mut server).await;
}

#[tokio::test]
async fn wrong_shapes_get_the_right_codes() {
    let (_home, mut server) = started().await;
    let cases = [
        (r#"{"id":1,"method":"noSuchMethod"}"#, json!(1), -32601),
        (
            r#"{"id":2,"method":"getAuthStatus","params":{"includeToken":"yes"}}"#,
            json!(2),
            -32602,
        ),
        (
            r#"{"id":3,"method":"getAuthStatus","params":"text"}"#,
            json!(3),
            -32600,
        ),
        (r#"{"id":4,"method":5}"#, json!(4), -32600),
        (
            r#"{"id":5,"jsonrpc":"1.0","method":"getAuthStatus"}"#,
            json!(5),
            -32600,
        ),
        (
            r#"{"id":{"x":1},"method":"getAuthStatus"}"#,
            Value::Null,
            -32600,
        ),
        (
            r#"{"id":6,"method":"login","params":{"type":"apiKey"}}"#,
            json!(6),
            -32602,
        ),
        (
            r#"{"id":7,"method":"login","params":{"type":"password"}}"#,
            json!(7),
            -32602,
        ),
        ("[1,2]", Value::Null, -32600),
        ("42", Value::Null, -32600),
    ];
    for (line, id, code) in cases {
        server.send_line(line).await;
        let answer = server.next_message().await;
        let answer = if answer.is_array() {
            answer[0].clone()
        } else {
            answer
        };
        assert_eq!(
            (answer["id"].clone(), answer["error"]["code"].clone()),
            (id, json!(code)),
            "{line} → {answer}"
        );
    }
    assert_serving(&mut server).await;
}

/// `-32602` names the member at fault and the JSON type it must have, never the value sent
/// (it may be a misplaced secret) nor a Rust type.
#[tokio::test]
async fn invalid_params_name_the_member_never_the_value() {
    let (_home, mut server) = started().await;
    let cases = [
        (
            "login",
            json!({"type": "apiKey", "apiKey": 123456789012u64}),
            "`apiKey` must be a string",
            "123456789012",
        ),
        (
            "login",
            json!({"type": "tokens", "accessToken": "sk-a", "expiresAt": "sk-live-b"}),
            "`expiresAt` must be an integer",
            "sk-live-b",
        ),
        (
            "login",
            json!({"type": "sk-live-0123456789"}),
            "`type` must be one of",
            "sk-live",
        ),
        (
            "reportAuthFailure",
            json!({"status": 70000}),
            "`status` must be an integer from 0 to 65535",
            "70000",
        ),
        (
            "getAuthStatus",
            json!({"includeToken": "sk-live-c"}),
            "`includeToken` must be true or false",
            "sk-live-c",
        ),
        (
            "cancelLogin",
            json!({"loginId": 987654321}),
            "`loginId` must be a string",
            "987654321",
        ),
    ];
    for (method, params, says, value) in cases {
        let error = server.call_error(method, params.clone()).await;
        assert_eq!(error["code"], -32602, "{params}: {error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(says), "{params}: {message}");
        assert!(!message.contains(value), "{params}: {message}");
        for rust in ["u16", "i64", "struct ", "enum "] {
            assert!(!message.contains(rust), "{params}: {message}");
        }
    }
    assert_serving(&mut server).await;
}

#[tokio::test]
async fn requests_without_jsonrpc_are_served_and_ids_come_back_verbatim() {
    let (_home, mut server) = started().await;
    for id in ["\"abc\"", "-3", "1.5", "null", "18446744073709551616"] {
        server
            .send_line(&format!(r#"{{"id":{id},"method":"getAuthStatus"}}"#))
            .await;
        let answer = server.next_message().await;
        assert_eq!(answer["jsonrpc"], "2.0");
        assert_eq!(answer["id"], serde_json::from_str::<Value>(id).unwrap());
        assert_eq!(answer["result"]["state"], "signedOut");
    }
}

#[tokio::test]
async fn batches_follow_json_rpc() {
    let (_home, mut server) = started().await;
    server.send_line("[]").await;
    let empty = server.next_message().await;
    assert_eq!(
        (empty["id"].clone(), empty["error"]["code"].clone()),
        (Value::Null, json!(-32600))
    );

    server
        .send_line(r#"[{"id":"a","method":"getAuthStatus"},{"method":"initialized"},{"id":"b","method":"nope"},7]"#)
        .await;
    let batch = server.next_message().await;
    let mut answers = batch
        .as_array()
        .expect("a batch is answered with an array")
        .clone();
    answers.sort_by_key(|a| a["id"].to_string());
    assert_eq!(answers.len(), 3, "{batch}");
    assert_eq!(answers[0]["id"], "a");
    assert_eq!(answers[0]["result"]["state"], "signedOut");
    assert_eq!(
        (
            answers[1]["id"].clone(),
            answers[1]["error"]["code"].clone()
        ),
        (json!("b"), json!(-32601))
    );
    assert_eq!(
        (
            answers[2]["id"].clone(),
            answers[2]["error"]["code"].clone()
        ),
        (Value::Null, json!(-32600))
    );

    // A batch of notifications only is not answered: the next line is the next request's.
    server
        .send_line(r#"[{"method":"initialized"},{"method":"getAuthStatus"}]"#)
        .await;
    let id = server.send_request("getAuthStatus", None).await;
    assert_eq!(server.next_message().await["id"], json!(id));
}

#[tokio::test]
async fn concurrent_requests_are_all_answered_on_whole_lines() {
    let (_home, mut server) = started().await;
    let mut burst = String::new();
    for id in 0..200 {
        burst.push_str(&format!(
            "{{\"id\":{id},\"method\":\"getAuthStatus\",\"params\":{{\"includeToken\":true}}}}\n"
        ));
    }
    server.send_bytes(burst.as_bytes()).await;
    let mut seen = [false; 200];
    for _ in 0..200 {
        // next_message parses each stdout line as one JSON value: interleaving would fail it.
        let answer = server.next_message().await;
        let id = answer["id"].as_u64().unwrap() as usize;
        assert!(!seen[id], "answered twice: {id}");
        seen[id] = true;
    }
}

#[tokio::test]
async fn the_handshake_is_decided_in_line_order() {
    let home = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(home.path()).await;
    // Bad initialize params: refused, and the server stays uninitialized.
    let bad = server
        .call_error("initialize", json!({"clientInfo": {"name": 1}}))
        .await;
    assert_eq!(bad["code"], -32602);
    let early = server.call_error("getAuthStatus", json!({})).await;
    assert_eq!(early["code"], -32002);
    // initialize followed, in the same write, by requests that must never see -32002.
    let mut write = String::from(
        "{\"id\":0,\"method\":\"initialize\",\"params\":{\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}\n{\"method\":\"initialized\"}\n",
    );
    for id in 1..=100 {
        write.push_str(&format!("{{\"id\":{id},\"method\":\"getAuthStatus\"}}\n"));
    }
    server.send_bytes(write.as_bytes()).await;
    for _ in 0..=100 {
        let answer = server.next_message().await;
        assert!(answer.get("result").is_some(), "{answer}");
    }
}

#[tokio::test]
async fn stdin_eof_answers_what_is_in_flight_then_exits_zero() {
    let (_home, mut server) = started().await;
    let mut write = String::new();
    for id in 1..=50 {
        write.push_str(&format!("{{\"id\":{id},\"method\":\"getAuthStatus\"}}\n"));
    }
    server.send_bytes(write.as_bytes()).await;
    let (status, rest) = server.finish().await;
    assert_eq!(status.code(), Some(0));
    assert_eq!(rest.len(), 50, "every request answered before exit");
}

#[tokio::test]
async fn sigterm_and_sigint_exit_zero() {
    for signal in ["TERM", "INT"] {
        let (_home, mut server) = started().await;
        assert_serving(&mut server).await;
        server.signal(signal);
        let (status, _) = server.wait_exit().await;
        assert_eq!(status.code(), Some(0), "SIG{signal}");
    }
}

/// A parent may hand over a stdin it made non-blocking (the description is shared): the
/// server waits for input instead of taking "would block" for an error.
#[tokio::test]
async fn a_stdin_made_non_blocking_by_the_parent_is_still_read() {
    use std::io::Write;
    use std::os::fd::{AsRawFd, OwnedFd};
    use tokio::io::AsyncBufReadExt;

    let home = tempfile::tempdir().unwrap();
    let (read_end, mut write_end) = std::io::pipe().unwrap();
    // SAFETY: fcntl on a descriptor this test owns.
    unsafe {
        let fd = read_end.as_raw_fd();
        let flags = libc::fcntl(fd, libc::F_GETFL);
        assert_eq!(libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK), 0);
    }
    let mut child = auth_app_server_tests::server_command(home.path(), &[], &[])
        .stdin(std::process::Stdio::from(OwnedFd::from(read_end)))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // Each request is written only once the previous one is answered: the server's read in
    // between finds the pipe empty.
    let requests = [
        r#"{"id":1,"method":"initialize","params":{"clientInfo":{"name":"t","version":"1"}}}"#,
        r#"{"id":2,"method":"getAuthStatus"}"#,
        r#"{"id":3,"method":"getAuthStatus"}"#,
    ];
    for (n, request) in requests.iter().enumerate() {
        writeln!(write_end, "{request}").unwrap();
        let answer: Value =
            serde_json::from_str(&stdout.next_line().await.unwrap().expect("an answer")).unwrap();
        assert_eq!(answer["id"], n + 1, "{answer}");
        assert!(answer.get("result").is_some(), "{answer}");
    }
    drop(write_end);
    assert!(child.wait().await.unwrap().success());
}
