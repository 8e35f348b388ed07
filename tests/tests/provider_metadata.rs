//! Provider metadata as real providers lay it out (docs/configuration.md, endpoint
//! discovery): an issuer mounted under a path whose documents disagree, metadata without or
//! with another `issuer`, and what a logout says when it cannot revoke.

use auth_app_server_tests::{
    FakeIssuer, IssuerOptions, MetadataForm, ServerProcess, read_auth, seeded_home,
};
use serde_json::json;

/// A signed-in home for `issuer` and a started server.
async fn signed_in(issuer: &FakeIssuer) -> (tempfile::TempDir, String, ServerProcess) {
    let (home, tokens) = seeded_home(issuer, 3600);
    let server = ServerProcess::start_initialized(home.path()).await;
    (home, tokens.refresh_token, server)
}

#[tokio::test]
async fn logout_finds_the_revocation_endpoint_in_whichever_document_names_it() {
    // An issuer at `/o`: its RFC 8414 document (path inserted) and its OpenID document name no
    // revocation endpoint; the RFC 8414 document appended to the issuer's path does.
    let issuer = FakeIssuer::start_with(IssuerOptions {
        mount: "/o".into(),
        metadata: Some(vec![
            (MetadataForm::Rfc8414Inserted, false),
            (MetadataForm::OpenId, false),
            (MetadataForm::Rfc8414Appended, true),
        ]),
        ..IssuerOptions::default()
    })
    .await;
    assert!(issuer.url().ends_with("/o"));
    let (home, refresh_token, mut server) = signed_in(&issuer).await;
    let result = server.call("logout", json!({})).await;
    assert_eq!(result, json!({"revoked": true}), "{}", server.stderr());
    assert!(!home.path().join("auth.json").exists());
    assert_eq!(issuer.revoked_tokens(), vec![refresh_token]);
    assert_eq!(
        issuer.hits("/.well-known/oauth-authorization-server/o"),
        1,
        "the first document was read"
    );
    assert_eq!(issuer.hits("/o/.well-known/oauth-authorization-server"), 1);
}

#[tokio::test]
async fn a_logout_that_cannot_revoke_says_so_and_warns() {
    let issuer = FakeIssuer::start_with(IssuerOptions {
        revocation: false,
        ..IssuerOptions::default()
    })
    .await;
    let (_home, _refresh_token, mut server) = signed_in(&issuer).await;
    let result = server.call("logout", json!({})).await;
    assert_eq!(result["revoked"], false, "{result}");
    let reason = result["reason"].as_str().unwrap();
    assert!(reason.contains("revocation_endpoint"), "{reason}");
    assert_eq!(issuer.hits("/revoke"), 0);
    assert_eq!(server.status(json!({})).await["state"], "signedOut");
    let stderr = server.stderr();
    assert!(
        stderr.contains("WARN") && stderr.contains("not revoked"),
        "{stderr}"
    );

    // Nothing to revoke: an API key, or nobody signed in.
    server
        .call(
            "login",
            json!({"type": "apiKey", "apiKey": "sk-meta-0123456789abcdef"}),
        )
        .await;
    assert_eq!(server.call("logout", json!({})).await, json!({}));
    assert_eq!(server.call("logout", json!({})).await, json!({}));
}

#[tokio::test]
async fn metadata_without_the_issuer_or_naming_another_one_is_refused() {
    let issuer = FakeIssuer::start().await;
    let home = tempfile::tempdir().unwrap();
    issuer.write_config(home.path());
    let mut server = ServerProcess::start_initialized(home.path()).await;

    issuer.state_issuer(None);
    let error = server
        .call_error("login", json!({"type": "deviceCode"}))
        .await;
    assert_eq!(error["code"], -32012, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("no `issuer` member"), "{message}");

    let mut other = ServerProcess::start_initialized(home.path()).await;
    issuer.state_issuer(Some("https://evil.example"));
    let error = other
        .call_error("login", json!({"type": "deviceCode"}))
        .await;
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("another issuer"), "{message}");
    assert_eq!(issuer.hits("/device/code"), 0, "nothing was sent to it");
}

#[tokio::test]
async fn the_issuer_is_recorded_exactly_as_the_metadata_states_it() {
    let issuer = FakeIssuer::start().await;
    // One trailing slash more than configured: the same issuer, recorded as stated.
    let stated = format!("{}/", issuer.url());
    issuer.state_issuer(Some(&stated));
    let home = tempfile::tempdir().unwrap();
    issuer.write_config(home.path());
    let mut server = ServerProcess::start_initialized(home.path()).await;
    let started = server.call("login", json!({"type": "deviceCode"})).await;
    issuer.decide_device(started["userCode"].as_str().unwrap(), true);
    let completed = server.notification("loginCompleted").await;
    assert_eq!(completed["success"], true, "{completed}");
    assert_eq!(read_auth(home.path())["issuer"], stated);
}
