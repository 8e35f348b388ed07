//! Bounds on scopes (docs/protocol.md, `login`; docs/refresh-policy.md, bounds): a client's
//! `scopes` are checked before anything else happens and never quoted back; scopes a provider
//! names (protected resource metadata, a `WWW-Authenticate` challenge) are cut to 100, and no
//! list, however long, stalls the server. Over pipes against the fake issuer.

use std::time::{Duration, Instant};

use auth_app_server_tests::{
    FakeIssuer, RegistrationMode, ServerProcess, query_param, start_for_protected_resource,
};
use serde_json::json;

#[tokio::test]
async fn bad_login_scopes_are_refused_before_any_registration_and_never_quoted() {
    let issuer = FakeIssuer::start().await;
    issuer.set_registration_mode(RegistrationMode::Ok);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let mut server = start_for_protected_resource(&issuer, home).await;

    let pasted = "sk-live-0123456789 secret";
    let error = server
        .call_error(
            "login",
            json!({"type": "oauth", "scopes": ["openid", pasted]}),
        )
        .await;
    assert_eq!(error["code"], -32602, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("\"scopes\"[1] is not a scope"),
        "{message}"
    );
    assert!(!message.contains("sk-live"), "{message}");

    let long = "l".repeat(257);
    let error = server
        .call_error("login", json!({"type": "oauth", "scopes": [long]}))
        .await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("\"scopes\"[0] is longer than 256 bytes"),
        "{error}"
    );

    // 100k scopes: one clear error at once, and the server keeps answering.
    let many: Vec<String> = (0..100_000).map(|i| format!("s{i}")).collect();
    let started = Instant::now();
    let error = server
        .call_error("login", json!({"type": "oauth", "scopes": many}))
        .await;
    assert_eq!(
        error["message"],
        "invalid params: \"scopes\" holds 100000 scopes; at most 100 may be requested"
    );
    assert_eq!(server.status(json!({})).await["state"], "signedOut");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // Nothing was registered or written for any of them.
    assert_eq!(issuer.hits("/register"), 0);
    assert!(!home.join("registrations.json").exists());
    assert!(!server.stderr().contains("sk-live"));
    let (status, _) = server.finish().await;
    assert!(status.success());
}

#[tokio::test]
async fn a_protected_resource_naming_ninety_thousand_scopes_is_cut_to_a_hundred() {
    let issuer = FakeIssuer::start().await;
    issuer.set_registration_mode(RegistrationMode::Ok);
    let listed: Vec<String> = (0..90_000).map(|i| format!("s{i}")).collect();
    let listed: Vec<&str> = listed.iter().map(String::as_str).collect();
    issuer.set_resource_scopes(Some(&listed));
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_for_protected_resource(&issuer, dir.path()).await;

    let started = Instant::now();
    let login = server.call("login", json!({"type": "oauth"})).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let auth_url = login["authUrl"].as_str().unwrap();
    let scope = query_param(auth_url, "scope").unwrap();
    let scopes: Vec<&str> = scope.split(' ').collect();
    assert_eq!(scopes.len(), 100, "{scope}");
    assert_eq!(scopes[0], "s0");
    assert_eq!(scopes[99], "s99");
    assert!(auth_url.len() < 4096, "{}", auth_url.len());
    assert!(
        server
            .stderr()
            .contains("scopes named by the provider left out")
    );
    let (status, _) = server.finish().await;
    assert!(status.success());
}

#[tokio::test]
async fn a_huge_insufficient_scope_challenge_is_cut_and_never_stalls() {
    let issuer = FakeIssuer::start().await;
    let home = tempfile::tempdir().unwrap();
    issuer.write_config(home.path());
    let mut server = ServerProcess::start_initialized(home.path()).await;
    server
        .call(
            "login",
            json!({"type": "apiKey", "apiKey": "sk-test-0123456789abcdef"}),
        )
        .await;
    let scopes: Vec<String> = (0..90_000).map(|i| format!("api.{i}")).collect();
    let challenge = format!(
        "Bearer error=\"insufficient_scope\", scope=\"{}\"",
        scopes.join(" ")
    );
    assert!(challenge.len() > 700_000);
    let started = Instant::now();
    let answer = server
        .call(
            "reportAuthFailure",
            json!({"status": 403, "wwwAuthenticate": challenge}),
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(answer["action"], "insufficientScope", "{answer}");
    let required = answer["requiredScopes"].as_array().unwrap();
    assert_eq!(required.len(), 100);
    assert_eq!(required[0], "api.0");
    assert_eq!(required[99], "api.99");
    let (status, _) = server.finish().await;
    assert!(status.success());
}
