//! What a browser sign-in accepts from the provider (docs/security.md): the RFC 9207 mix-up
//! defence on the authorization response (`iss`), the PKCE methods the metadata lists, and
//! `completeLogin` (the address the browser ended on, checked like a callback to the
//! listener), end to end against the fake issuer.

use std::path::Path;

use auth_app_server_tests::issuer::CLIENT_ID;
use auth_app_server_tests::{FakeIssuer, ServerProcess, browser_get};
use serde_json::{Value, json};

async fn server_for(issuer: &FakeIssuer) -> (tempfile::TempDir, ServerProcess) {
    let home = tempfile::tempdir().unwrap();
    issuer.write_config(home.path());
    let server = ServerProcess::start_initialized(home.path()).await;
    (home, server)
}

/// `/token` requests that exchanged an authorization code.
fn code_exchanges(issuer: &FakeIssuer) -> usize {
    issuer
        .token_requests()
        .iter()
        .filter(|r| r.form.get("grant_type").map(String::as_str) == Some("authorization_code"))
        .count()
}

fn read_auth(home: &Path) -> Option<Value> {
    let bytes = std::fs::read(home.join("auth.json")).ok()?;
    Some(serde_json::from_slice(&bytes).unwrap())
}

/// Waits for a login to end without success; its error.
async fn failed_login(server: &mut ServerProcess) -> String {
    let completed = server.notification("loginCompleted").await;
    assert_eq!(completed["success"], false, "{completed}");
    completed["error"].as_str().unwrap().to_owned()
}

/// Starts a browser login; (loginId, authUrl).
async fn start_login(server: &mut ServerProcess) -> (Value, String) {
    let started = server.call("login", json!({"type": "oauth"})).await;
    let auth_url = started["authUrl"].as_str().unwrap().to_owned();
    (started["loginId"].clone(), auth_url)
}

#[tokio::test]
async fn a_response_from_another_issuer_is_refused_and_its_code_never_exchanged() {
    let issuer = FakeIssuer::start().await;
    let (home, mut server) = server_for(&issuer).await;
    let (login_id, auth_url) = start_login(&mut server).await;
    issuer.set_redirect_iss(Some("https://evil.example"));
    let redirect = issuer.approve_authorization(&auth_url);
    assert!(
        redirect.contains("iss=https%3A%2F%2Fevil.example"),
        "{redirect}"
    );
    let (status, page) = browser_get(&redirect).await.expect("listener is up");
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("issuer mismatch"), "{page}");

    let completed = server.notification("loginCompleted").await;
    assert_eq!(completed["loginId"], login_id);
    assert_eq!(completed["success"], false, "{completed}");
    let error = completed["error"].as_str().unwrap();
    assert!(
        error.contains("issuer mismatch")
            && error.contains("evil.example")
            && error.contains(&issuer.url()),
        "{error}"
    );
    assert!(error.contains("no code was exchanged"), "{error}");
    assert_eq!(code_exchanges(&issuer), 0, "the code never reached /token");
    assert_eq!(issuer.token_hits(), 0);
    assert!(read_auth(home.path()).is_none());
    assert_eq!(server.status(json!({})).await["state"], "signedOut");
    assert!(
        browser_get(&redirect).await.is_none(),
        "the listener closed with the login"
    );
}

#[tokio::test]
async fn a_response_without_the_promised_iss_is_refused() {
    let issuer = FakeIssuer::start().await;
    issuer.advertise_iss_parameter();
    let (_home, mut server) = server_for(&issuer).await;
    let (login_id, auth_url) = start_login(&mut server).await;
    issuer.set_redirect_iss(None);
    let redirect = issuer.approve_authorization(&auth_url);
    assert!(!redirect.contains("iss="), "{redirect}");
    let (status, _) = browser_get(&redirect).await.expect("listener is up");
    assert_eq!(status, 400);
    let completed = server.notification("loginCompleted").await;
    assert_eq!(
        (completed["loginId"].clone(), completed["success"].clone()),
        (login_id, json!(false))
    );
    let error = completed["error"].as_str().unwrap();
    assert!(
        error.contains("issuer mismatch")
            && error.contains("authorization_response_iss_parameter_supported"),
        "{error}"
    );
    assert_eq!(code_exchanges(&issuer), 0);
}

#[tokio::test]
async fn a_response_with_the_right_iss_signs_in() {
    // Promised and present; then present though not promised (it is still checked, and passes).
    for advertise in [true, false] {
        let issuer = FakeIssuer::start().await;
        if advertise {
            issuer.advertise_iss_parameter();
        } else {
            // One trailing slash more than the issuer: the same identifier.
            issuer.set_redirect_iss(Some(&format!("{}/", issuer.url())));
        }
        let (home, mut server) = server_for(&issuer).await;
        let (login_id, auth_url) = start_login(&mut server).await;
        let redirect = issuer.approve_authorization(&auth_url);
        assert!(redirect.contains("&iss="), "{redirect}");
        let (status, page) = browser_get(&redirect).await.expect("listener is up");
        assert_eq!(status, 200, "{page}");
        let completed = server.notification("loginCompleted").await;
        assert_eq!(
            completed,
            json!({"loginId": login_id, "success": true, "credential": "default"})
        );
        assert_eq!(code_exchanges(&issuer), 1);
        let stored = read_auth(home.path()).unwrap();
        assert_eq!(stored["client_id"], CLIENT_ID);
    }
}

#[tokio::test]
async fn an_error_response_from_another_issuer_names_the_mismatch() {
    let issuer = FakeIssuer::start().await;
    let (_home, mut server) = server_for(&issuer).await;
    let (_login_id, auth_url) = start_login(&mut server).await;
    issuer.set_redirect_iss(Some("https://evil.example"));
    let redirect = issuer.deny_authorization(&auth_url);
    let (status, _) = browser_get(&redirect).await.expect("listener is up");
    assert_eq!(status, 400);
    let error = failed_login(&mut server).await;
    assert!(error.contains("issuer mismatch"), "{error}");
}

#[tokio::test]
async fn metadata_without_s256_fails_a_browser_login_saying_why() {
    let issuer = FakeIssuer::start().await;
    issuer.set_code_challenge_methods(Some(&["plain"]));
    let (_home, mut server) = server_for(&issuer).await;
    let error = server.call_error("login", json!({"type": "oauth"})).await;
    assert_eq!(error["code"], -32012, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("code_challenge_methods_supported [\"plain\"] without S256"),
        "{message}"
    );
    assert!(message.contains("deviceCode"), "says what to do: {message}");
    assert!(
        server.take_notifications("loginCompleted").is_empty(),
        "no login was started"
    );
    // The device flow has no PKCE and still works with this provider.
    let started = server.call("login", json!({"type": "deviceCode"})).await;
    assert_eq!(started["type"], "deviceCode");
}

#[tokio::test]
async fn metadata_that_does_not_list_pkce_methods_proceeds() {
    // Entra ID publishes no code_challenge_methods_supported, yet supports S256.
    let issuer = FakeIssuer::start().await;
    issuer.set_code_challenge_methods(None);
    let (_home, mut server) = server_for(&issuer).await;
    let (login_id, auth_url) = start_login(&mut server).await;
    let (status, _) = browser_get(&issuer.approve_authorization(&auth_url))
        .await
        .expect("listener is up");
    assert_eq!(status, 200);
    let completed = server.notification("loginCompleted").await;
    assert_eq!(
        completed,
        json!({"loginId": login_id, "success": true, "credential": "default"})
    );
}

#[tokio::test]
async fn complete_login_finishes_a_browser_login_with_the_listeners_checks() {
    let issuer = FakeIssuer::start().await;
    let (home, mut server) = server_for(&issuer).await;
    let (login_id, auth_url) = start_login(&mut server).await;
    let redirect = issuer.approve_authorization(&auth_url);
    let state = auth_app_server_tests::query_param(&redirect, "state").unwrap();

    // Refused, and the login keeps waiting: a forged state, a missing one, no code, not an
    // address, an unknown login. No error quotes the address (it holds the code).
    let forged = redirect.replace(&format!("state={state}"), "state=forged");
    let without_state = redirect.replace(&format!("&state={state}"), "");
    let without_code = redirect.replace("code=", "nocode=");
    let cases = [
        (login_id.clone(), forged.clone(), "state"),
        (login_id.clone(), without_state, "state"),
        (login_id.clone(), without_code, "code"),
        (
            login_id.clone(),
            "code-1 pasted alone".to_owned(),
            "not an address",
        ),
        (
            json!("login-unknown"),
            redirect.clone(),
            "no browser sign-in",
        ),
    ];
    for (id, url, says) in cases {
        let error = server
            .call_error("completeLogin", json!({"loginId": id, "callbackUrl": url}))
            .await;
        assert_eq!(error["code"], -32602, "{url}: {error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(says), "{url}: {message}");
        assert!(!message.contains("code-1"), "never quoted: {message}");
    }
    assert!(server.take_notifications("loginCompleted").is_empty());
    assert_eq!(issuer.token_hits(), 0);

    let result = server
        .call(
            "completeLogin",
            json!({"loginId": login_id, "callbackUrl": redirect}),
        )
        .await;
    assert_eq!(result, json!({}));
    let completed = server.notification("loginCompleted").await;
    assert_eq!(
        completed,
        json!({"loginId": login_id, "success": true, "credential": "default"})
    );
    assert_eq!(code_exchanges(&issuer), 1);
    let stored = read_auth(home.path()).unwrap();
    assert!(stored["tokens"]["access_token"].is_string());
    assert!(
        browser_get(&redirect).await.is_none(),
        "the listener closed with the login"
    );
    let error = server
        .call_error(
            "completeLogin",
            json!({"loginId": login_id, "callbackUrl": redirect}),
        )
        .await;
    assert_eq!(error["code"], -32602, "the login has ended: {error}");
    assert!(!server.stderr().contains("code-1"), "{}", server.stderr());
}

#[tokio::test]
async fn complete_login_ends_the_login_on_an_error_or_a_mixed_up_issuer() {
    let issuer = FakeIssuer::start().await;
    let (_home, mut server) = server_for(&issuer).await;

    let (login_id, auth_url) = start_login(&mut server).await;
    let denied = issuer.deny_authorization(&auth_url);
    let result = server
        .call(
            "completeLogin",
            json!({"loginId": login_id, "callbackUrl": denied}),
        )
        .await;
    assert_eq!(result, json!({}));
    let error = failed_login(&mut server).await;
    assert!(error.contains("access_denied"), "{error}");

    let (login_id, auth_url) = start_login(&mut server).await;
    issuer.set_redirect_iss(Some("https://evil.example"));
    let mixed_up = issuer.approve_authorization(&auth_url);
    server
        .call(
            "completeLogin",
            json!({"loginId": login_id, "callbackUrl": mixed_up}),
        )
        .await;
    let error = failed_login(&mut server).await;
    assert!(error.contains("issuer mismatch"), "{error}");
    assert_eq!(code_exchanges(&issuer), 0, "no code was exchanged");
}

#[tokio::test]
async fn the_first_answer_wins_and_a_device_login_takes_no_address() {
    let issuer = FakeIssuer::start().await;
    let (_home, mut server) = server_for(&issuer).await;
    let (login_id, auth_url) = start_login(&mut server).await;
    let redirect = issuer.approve_authorization(&auth_url);
    // The browser reached the listener after all: the pasted address comes too late.
    let (status, _) = browser_get(&redirect).await.expect("listener is up");
    assert_eq!(status, 200);
    let error = server
        .call_error(
            "completeLogin",
            json!({"loginId": login_id, "callbackUrl": redirect}),
        )
        .await;
    assert_eq!(error["code"], -32602, "{error}");
    assert_eq!(server.notification("loginCompleted").await["success"], true);
    assert_eq!(code_exchanges(&issuer), 1);

    let device = server.call("login", json!({"type": "deviceCode"})).await;
    let error = server
        .call_error(
            "completeLogin",
            json!({"loginId": device["loginId"], "callbackUrl": redirect}),
        )
        .await;
    assert_eq!(error["code"], -32602);
    assert!(
        error["message"].as_str().unwrap().contains("device-code"),
        "{error}"
    );
}

#[tokio::test]
async fn a_truncated_paste_keeps_the_login_waiting_when_the_provider_promises_iss() {
    let issuer = FakeIssuer::start().await;
    issuer.advertise_iss_parameter();
    let (home, mut server) = server_for(&issuer).await;
    let (login_id, auth_url) = start_login(&mut server).await;
    let redirect = issuer.approve_authorization(&auth_url);
    assert!(redirect.contains("iss="), "{redirect}");
    let state = auth_app_server_tests::query_param(&redirect, "state").unwrap();
    let base = redirect.split('?').next().unwrap();
    // The paste lost everything but the state: no code, no error, no iss.
    let truncated = format!("{base}?state={state}");
    let error = server
        .call_error(
            "completeLogin",
            json!({"loginId": login_id, "callbackUrl": truncated}),
        )
        .await;
    assert_eq!(error["code"], -32602, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("neither an authorization code nor an error")
            && message.contains("keeps waiting"),
        "{message}"
    );
    assert!(server.take_notifications("loginCompleted").is_empty());

    // The whole address then completes the same login.
    let result = server
        .call(
            "completeLogin",
            json!({"loginId": login_id, "callbackUrl": redirect}),
        )
        .await;
    assert_eq!(result, json!({}));
    let completed = server.notification("loginCompleted").await;
    assert_eq!(
        completed,
        json!({"loginId": login_id, "success": true, "credential": "default"})
    );
    assert_eq!(code_exchanges(&issuer), 1);
    assert!(read_auth(home.path()).is_some());
}
