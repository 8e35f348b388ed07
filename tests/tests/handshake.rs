//! docs/protocol.md (lifecycle): the `initialize` handshake, over pipes.

use auth_app_server_tests::ServerProcess;
use serde_json::json;

#[tokio::test]
async fn requests_before_initialize_are_refused_and_the_handshake_answers_exactly() {
    let home = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(home.path()).await;

    let error = server.call_error("getAuthStatus", json!({})).await;
    assert_eq!(error["code"], -32002);

    let result = server.initialize().await;
    assert_eq!(
        result,
        json!({"serverInfo": {"name": "auth-app-server", "version": env!("CARGO_PKG_VERSION")}, "protocolVersion": 1})
    );

    let again = server
        .call_error(
            "initialize",
            json!({"clientInfo": {"name": "x", "version": "1"}}),
        )
        .await;
    assert_eq!(again["code"], -32600);
    assert!(
        again["message"]
            .as_str()
            .unwrap()
            .contains("already initialized")
    );

    let (status, rest) = server.finish().await;
    assert!(status.success());
    assert!(rest.is_empty(), "{rest:?}");
}
