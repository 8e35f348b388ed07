//! How params are read, over real pipes: by name only (an array of params by position is
//! `-32602`), members the server does not know accepted but logged at WARN once per method and
//! name (never with their value), and error messages in JSON terms, never Rust types.

use std::time::Duration;

use auth_app_server_tests::ServerProcess;
use auth_app_server_tests::server::WAIT_LIMIT;
use serde_json::{Value, json};

async fn started() -> (tempfile::TempDir, ServerProcess) {
    let home = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_initialized(home.path()).await;
    (home, server)
}

/// Waits until the server's stderr contains `needle` (its stderr is read as it comes).
async fn wait_for_stderr(server: &ServerProcess, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    loop {
        let stderr = server.stderr();
        if stderr.contains(needle) {
            return stderr;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{needle:?} never logged; stderr:\n{stderr}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn params_by_position_are_refused_with_32602() {
    let (home, mut server) = started().await;
    let cases = [
        ("getAuthStatus", json!([true, true])),
        ("getAuthStatus", json!([])),
        ("login", json!(["apiKey", "sk-by-position-0123"])),
        ("logout", json!([])),
        ("cancelLogin", json!(["login-1"])),
        ("reportAuthFailure", json!([401])),
    ];
    for (method, params) in cases {
        let error = server.call_error(method, params.clone()).await;
        assert_eq!(error["code"], -32602, "{method} {params}: {error}");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains("must be an object") && message.contains("by position"),
            "{method}: {message}"
        );
        assert!(!message.contains("sk-by-position"), "{message}");
    }
    // Nothing was done: the positional login did not sign in.
    let status = server.status(json!({})).await;
    assert_eq!(status["state"], "signedOut");
    drop(server);

    // The handshake too: refused, and the server is still not initialized.
    let mut server = ServerProcess::start(home.path()).await;
    let error = server
        .call_error("initialize", json!([{"name": "e2e", "version": "0"}]))
        .await;
    assert_eq!(error["code"], -32602, "{error}");
    let error = server.call_error("getAuthStatus", json!({})).await;
    assert_eq!(error["code"], -32002, "{error}");
    server.initialize().await;
}

#[tokio::test]
async fn unknown_members_are_accepted_and_logged_once_per_method_and_name_never_their_value() {
    let home = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(home.path()).await;
    server
        .call(
            "initialize",
            json!({"clientInfo": {"name": "e2e", "version": "0", "title": "sk-value-title"}}),
        )
        .await;
    let login =
        json!({"type": "apiKey", "apiKey": "sk-key-0123456789abcdef", "label": "sk-value-label"});
    assert_eq!(server.call("login", login).await["type"], "apiKey");

    // The typo of the issue: accepted (a later version may read it) but no longer silent.
    for _ in 0..3 {
        let status = server
            .status(json!({"includeTokens": "sk-value-typo", "refreshToken": true}))
            .await;
        assert_eq!(status["state"], "active");
        assert!(status.get("authToken").is_none());
    }
    // Another name, after the others were answered: once it is logged, every earlier line is in.
    server.status(json!({"includeTokenz": true})).await;
    let stderr = wait_for_stderr(&server, "`includeTokenz`").await;

    let lines = |member: &str| {
        stderr
            .lines()
            .filter(|line| line.contains("WARN") && line.contains(member))
            .collect::<Vec<_>>()
    };
    let typo = lines("`includeTokens`");
    assert_eq!(typo.len(), 1, "once per method and name:\n{stderr}");
    assert!(typo[0].contains("getAuthStatus"), "{}", typo[0]);
    assert_eq!(lines("`clientInfo.title`").len(), 1, "{stderr}");
    assert!(lines("`clientInfo.title`")[0].contains("initialize"));
    assert_eq!(lines("`label`").len(), 1, "{stderr}");
    assert!(lines("`label`")[0].contains("login"));
    assert!(
        !stderr.contains("sk-value") && !stderr.contains("sk-key"),
        "a value was logged:\n{stderr}"
    );
    // Known members are not reported.
    assert!(lines("`refreshToken`").is_empty(), "{stderr}");
    assert!(lines("`apiKey`").is_empty(), "{stderr}");
}

#[tokio::test]
async fn invalid_params_messages_use_json_terms_never_rust_types() {
    let (_home, mut server) = started().await;
    let cases = [
        ("getAuthStatus", json!({"includeToken": 5})),
        ("getAuthStatus", json!({"refreshToken": "yes"})),
        ("login", json!({"type": "tokens", "accessToken": 7})),
        (
            "login",
            json!({"type": "tokens", "accessToken": "a", "expiresAt": 1.5}),
        ),
        ("login", json!(7)),
        ("reportAuthFailure", json!({"status": -1})),
        (
            "reportAuthFailure",
            json!({"status": 401, "body": {"a": 1}}),
        ),
        ("cancelLogin", json!({})),
        ("cancelLogin", json!({"loginId": ["x"]})),
        ("logout", json!({"x": 1, "y": 2, "z": "text"})),
    ];
    let rust_words = [
        "bool",
        "u8",
        "u16",
        "u32",
        "u64",
        "i32",
        "i64",
        "usize",
        "f64",
        "str",
        "String",
        "Option",
        "Vec",
        "struct",
        "enum",
        "Params",
        "SecretString",
        "unit",
    ];
    for (method, params) in cases {
        let response = server.request(method, params.clone()).await;
        let Some(error) = response.get("error") else {
            // `logout` with unknown members is served.
            assert_eq!(method, "logout", "{params}: {response}");
            continue;
        };
        let message = error["message"].as_str().unwrap();
        let words: Vec<&str> = message
            .split(|c: char| !c.is_ascii_alphanumeric())
            .collect();
        for rust in rust_words {
            assert!(!words.contains(&rust), "{method} {params}: {message}");
        }
    }
    let status: Value = server.status(json!({})).await;
    assert_eq!(status["state"], "signedOut");
}

#[tokio::test]
async fn a_duplicated_member_is_named_once() {
    let (_home, mut server) = started().await;
    // serde_json::json! cannot repeat a member: the line is written by hand.
    server
        .send_line(r#"{"jsonrpc":"2.0","id":1,"method":"getAuthStatus","params":{"includeToken":true,"includeToken":false}}"#)
        .await;
    let response = server.response(1).await;
    assert_eq!(response["error"]["code"], -32602, "{response}");
    let message = response["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("invalid params: `includeToken` appears more than once;"),
        "{message}"
    );
    server
        .send_line(r#"{"jsonrpc":"2.0","id":2,"method":"login","params":{"type":"apiKey","apiKey":"sk-one-0123456789","apiKey":"sk-two-0123456789"}}"#)
        .await;
    let response = server.response(2).await;
    let message = response["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("invalid params: `apiKey` appears more than once"),
        "{message}"
    );
    assert!(!message.contains("sk-"), "{message}");
}
