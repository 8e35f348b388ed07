//! MCP authorization 2026-07-28 (docs/configuration.md, finding the issuer from a
//! protected resource): the authorization server a protected resource names must list its PKCE
//! methods; `offline_access` is asked for when it is offered; registrations are bound to the
//! issuer that accepted them, and a refresh token never goes to another issuer. Over pipes
//! against the fake issuer.

use std::path::Path;

use auth_app_server_tests::issuer::CLIENT_ID;
use auth_app_server_tests::{
    FakeIssuer, RegistrationMode, ServerProcess, complete_browser_sign_in, now, query_param,
    read_auth, refresh_poll, start_for_protected_resource,
};
use serde_json::{Value, json};

fn registrations_file(home: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(home.join("registrations.json")).unwrap()).unwrap()
}

#[tokio::test]
async fn an_mcp_authorization_server_without_pkce_methods_is_refused_before_registering() {
    let issuer = FakeIssuer::start().await;
    issuer.set_registration_mode(RegistrationMode::Ok);
    issuer.set_code_challenge_methods(None);
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_for_protected_resource(&issuer, dir.path()).await;
    let error = server.call_error("login", json!({"type": "oauth"})).await;
    assert_eq!(error["code"], -32012, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("no code_challenge_methods_supported")
            && message.contains("MCP authorization specification"),
        "{message}"
    );
    assert_eq!(issuer.hits("/register"), 0);
    assert!(!dir.path().join("registrations.json").exists());
    let (status, _) = server.finish().await;
    assert!(status.success());
}

#[tokio::test]
async fn a_configured_issuer_without_pkce_methods_still_signs_in_with_s256_and_warns_once() {
    let issuer = FakeIssuer::start().await;
    issuer.set_code_challenge_methods(None);
    let home = tempfile::tempdir().unwrap();
    issuer.write_config(home.path());
    let mut server = ServerProcess::start_initialized(home.path()).await;
    for _ in 0..2 {
        let started = server.call("login", json!({"type": "oauth"})).await;
        let auth_url = started["authUrl"].as_str().unwrap();
        assert_eq!(
            query_param(auth_url, "code_challenge_method").as_deref(),
            Some("S256")
        );
    }
    let warned = server
        .stderr()
        .matches("metadata has no code_challenge_methods_supported")
        .count();
    assert_eq!(warned, 1, "{}", server.stderr());
    let (status, _) = server.finish().await;
    assert!(status.success());
}

/// The MCP flow with every endpoint configured (and a client_id): when the authorization
/// server's metadata cannot be used, nothing lacks `code_challenge_methods_supported`, so it
/// signs in with S256 and warns once, as with a configured issuer (it was refused). Metadata
/// that is read and lacks the member is still refused.
#[tokio::test]
async fn an_mcp_flow_with_every_endpoint_configured_and_no_metadata_signs_in_with_s256() {
    let issuer = FakeIssuer::start().await;
    // Metadata without its `issuer` member is refused: no metadata is read.
    issuer.state_issuer(None);
    let base = issuer.url();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[provider]\nprotected_resource = \"{base}/mcp\"\nclient_id = \"{CLIENT_ID}\"\n\
             authorization_endpoint = \"{base}/authorize\"\ntoken_endpoint = \"{base}/token\"\n\
             device_authorization_endpoint = \"{base}/device/code\"\n\
             revocation_endpoint = \"{base}/revoke\"\n"
        ),
    )
    .unwrap();
    let mut server = ServerProcess::start_initialized(home.path()).await;
    let auth_url = complete_browser_sign_in(&mut server).await;
    assert_eq!(
        query_param(&auth_url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    let started = server.call("login", json!({"type": "oauth"})).await;
    assert_eq!(
        query_param(
            started["authUrl"].as_str().unwrap(),
            "code_challenge_method"
        )
        .as_deref(),
        Some("S256")
    );
    let log = server.stderr();
    let warned = log
        .matches("used without authorization server metadata, so code_challenge_methods_supported is unknown")
        .count();
    assert_eq!(warned, 1, "{log}");
    assert_eq!(read_auth(home.path())["issuer"], base);
    let (status, _) = server.finish().await;
    assert!(status.success());

    // Metadata that is read and lacks the member: refused, configured endpoints or not.
    issuer.state_issuer(Some(&base));
    issuer.set_code_challenge_methods(None);
    let mut server = ServerProcess::start_initialized(home.path()).await;
    let error = server.call_error("login", json!({"type": "oauth"})).await;
    assert_eq!(error["code"], -32012, "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("no code_challenge_methods_supported"),
        "{error}"
    );
    let (status, _) = server.finish().await;
    assert!(status.success());
}

#[tokio::test]
async fn offline_access_is_asked_for_when_the_mcp_authorization_server_offers_it() {
    let issuer = FakeIssuer::start().await;
    issuer.set_registration_mode(RegistrationMode::Ok);
    issuer.set_resource_scopes(Some(&["mcp:tools"]));
    let dir = tempfile::tempdir().unwrap();

    // Not offered: not asked for.
    issuer.set_metadata_scopes(Some(&["openid", "mcp:tools"]));
    let mut server = start_for_protected_resource(&issuer, dir.path()).await;
    let started = server.call("login", json!({"type": "oauth"})).await;
    let scope = query_param(started["authUrl"].as_str().unwrap(), "scope");
    assert_eq!(scope.as_deref(), Some("mcp:tools"));
    let (status, _) = server.finish().await;
    assert!(status.success());

    // Offered: asked for after the resource's scopes, and granted with a refresh token.
    issuer.set_metadata_scopes(Some(&["openid", "offline_access", "mcp:tools"]));
    let mut server = start_for_protected_resource(&issuer, dir.path()).await;
    let auth_url = complete_browser_sign_in(&mut server).await;
    assert_eq!(
        query_param(&auth_url, "scope").as_deref(),
        Some("mcp:tools offline_access")
    );
    let stored = read_auth(dir.path());
    assert!(stored["tokens"]["refresh_token"].is_string(), "{stored}");
    let (status, _) = server.finish().await;
    assert!(status.success());

    // A configured issuer is not the MCP flow: nothing is added.
    let home = tempfile::tempdir().unwrap();
    issuer.write_config(home.path());
    let mut server = ServerProcess::start_initialized(home.path()).await;
    let started = server.call("login", json!({"type": "oauth"})).await;
    assert_eq!(
        query_param(started["authUrl"].as_str().unwrap(), "scope"),
        None
    );
    let (status, _) = server.finish().await;
    assert!(status.success());
}

#[tokio::test]
async fn a_resource_that_moved_to_another_issuer_signs_in_there_with_its_own_registration() {
    let old = FakeIssuer::start().await;
    let new = FakeIssuer::start().await;
    old.set_registration_mode(RegistrationMode::Ok);
    new.set_registration_mode(RegistrationMode::Ok);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();

    let mut server = start_for_protected_resource(&old, home).await;
    complete_browser_sign_in(&mut server).await;
    let (status, _) = server.finish().await;
    assert!(status.success());
    let stored = read_auth(home);
    assert_eq!(stored["issuer"], old.url());
    let old_client = stored["client_id"].as_str().unwrap().to_owned();
    let old_refresh = stored["tokens"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // The resource now names another authorization server, and the token has expired.
    old.set_resource_authorization_server(Some(&new.url()));
    let mut expired = stored.clone();
    expired["tokens"]["expires_at"] = json!(now() - 1);
    std::fs::write(home.join("auth.json"), expired.to_string()).unwrap();

    let mut server = start_for_protected_resource(&old, home).await;
    let status = server.status(refresh_poll()).await;
    assert_eq!(status["state"], "needsLogin", "{status}");
    assert!(status.get("authToken").is_none(), "{status}");
    // The old refresh token went nowhere: not to the new issuer, not to the old one.
    assert_eq!(new.token_hits(), 0);
    assert_eq!(old.refresh_hits(), 0);

    // A sign-in registers at the new issuer and keeps the old registration for the old one.
    let auth_url = complete_browser_sign_in(&mut server).await;
    assert!(auth_url.starts_with(&new.url()), "{auth_url}");
    assert_eq!(new.registrations(), 1);
    assert_eq!(old.registrations(), 1);
    let registrations = registrations_file(home);
    let new_client = registrations["registrations"][new.url()]["client_id"]
        .as_str()
        .unwrap();
    assert_eq!(
        registrations["registrations"][old.url()]["client_id"],
        old_client
    );
    assert_eq!(
        query_param(&auth_url, "client_id").as_deref(),
        Some(new_client)
    );
    let stored = read_auth(home);
    assert_eq!(stored["issuer"], new.url());
    assert_eq!(stored["client_id"], new_client);
    for request in new.token_requests() {
        assert_ne!(
            request.form.get("refresh_token").map(String::as_str),
            Some(old_refresh.as_str())
        );
    }
    let (status, _) = server.finish().await;
    assert!(status.success());
}
