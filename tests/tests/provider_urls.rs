//! Which addresses a provider's documents may send this machine's requests to
//! (docs/security.md, provider URLs): a remote https issuer whose metadata names a plain-http
//! endpoint on this machine's loopback is refused, and nothing is sent there. The issuer is
//! remote by name (`issuer.test`, reached through a forward proxy that maps it to 127.0.0.1).

use auth_app_server_tests::issuer::CLIENT_ID;
use auth_app_server_tests::{ConnectProxy, FakeIssuer, IssuerOptions, ServerProcess, TestCa};
use serde_json::json;

const ISSUER_HOST: &str = "issuer.test";

#[tokio::test]
async fn a_remote_issuer_cannot_point_requests_at_a_loopback_http_port() {
    let ca = TestCa::generate(&[ISSUER_HOST]);
    let remote = FakeIssuer::start_with(IssuerOptions {
        tls: Some(ca.server_config()),
        host: Some(ISSUER_HOST.to_owned()),
        ..IssuerOptions::default()
    })
    .await;
    // A local service the remote metadata tries to reach.
    let local = FakeIssuer::start().await;
    remote.set_metadata_override(json!({
        "token_endpoint": format!("{}/token", local.url()),
        "device_authorization_endpoint": format!("{}/device/code", local.url()),
    }));
    let proxy = ConnectProxy::start(remote.port()).await;
    let home = tempfile::tempdir().unwrap();
    let config = format!(
        "[provider]\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nca_file = \"{}\"\n",
        remote.url(),
        ca.ca_file().display()
    );
    std::fs::write(home.path().join("config.toml"), config).unwrap();
    let url = proxy.url();
    let mut server =
        ServerProcess::start_with(home.path(), &[], &[("HTTPS_PROXY", url.as_str())]).await;
    server.initialize().await;

    let error = server
        .call_error("login", json!({"type": "deviceCode"}))
        .await;
    assert_eq!(error["code"], -32012, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("is a plain http address on this machine"),
        "{message}"
    );
    assert!(
        remote.hits("/.well-known/oauth-authorization-server") >= 1,
        "the metadata was read"
    );
    assert_eq!(local.hits("/device/code"), 0);
    assert_eq!(local.token_hits(), 0);
    let (status, _) = server.finish().await;
    assert!(status.success());
}
