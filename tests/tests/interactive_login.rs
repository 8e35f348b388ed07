//! Interactive sign-in end to end (docs/protocol.md, docs/security.md): browser login with PKCE on the loopback
//! listener, device code, cancel, revocation on logout, and discovery from a protected
//! resource, against the fake issuer.

use std::path::Path;
use std::time::Duration;

use auth_app_server_tests::issuer::CLIENT_ID;
use auth_app_server_tests::{FakeIssuer, ServerProcess, browser_get, query_param, read_auth};
use serde_json::json;

fn configure(home: &Path, issuer: &FakeIssuer) {
    let config = format!(
        "[provider]\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nscopes = [\"openid\", \"offline_access\"]\n",
        issuer.url()
    );
    std::fs::write(home.join("config.toml"), config).unwrap();
}

async fn server_for(
    issuer: &FakeIssuer,
    envs: &[(&str, &str)],
) -> (tempfile::TempDir, ServerProcess) {
    let home = tempfile::tempdir().unwrap();
    configure(home.path(), issuer);
    let mut server = ServerProcess::start_with(home.path(), &[], envs).await;
    server.initialize().await;
    (home, server)
}

/// A server configured with only a `client_id` and the fake issuer's protected resource
/// (`<issuer>/mcp`), which names the issuer (RFC 9728).
async fn server_for_resource(issuer: &FakeIssuer) -> (tempfile::TempDir, ServerProcess) {
    let home = tempfile::tempdir().unwrap();
    let config = format!(
        "[provider]\nclient_id = \"{CLIENT_ID}\"\nprotected_resource = \"{}/mcp\"\n",
        issuer.url()
    );
    std::fs::write(home.path().join("config.toml"), config).unwrap();
    let server = ServerProcess::start_initialized(home.path()).await;
    (home, server)
}

#[tokio::test]
async fn browser_login_with_pkce_ignores_a_wrong_state_and_completes() {
    let issuer = FakeIssuer::start().await;
    let (home, mut server) = server_for(&issuer, &[]).await;
    let started = server.call("login", json!({"type": "oauth"})).await;
    assert_eq!(started["type"], "oauth");
    let login_id = started["loginId"].as_str().unwrap().to_owned();
    let auth_url = started["authUrl"].as_str().unwrap().to_owned();
    assert!(
        auth_url.starts_with(&format!("{}/authorize?", issuer.url())),
        "{auth_url}"
    );
    assert_eq!(
        query_param(&auth_url, "client_id").as_deref(),
        Some(CLIENT_ID)
    );
    assert_eq!(
        query_param(&auth_url, "scope").as_deref(),
        Some("openid offline_access")
    );
    assert_eq!(
        query_param(&auth_url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(query_param(&auth_url, "code_challenge").unwrap().len(), 43);
    let redirect_uri = query_param(&auth_url, "redirect_uri").unwrap();
    assert!(
        redirect_uri.starts_with("http://127.0.0.1:") && redirect_uri.ends_with("/callback"),
        "{redirect_uri}"
    );

    let redirect = issuer.approve_authorization(&auth_url);
    let state = query_param(&redirect, "state").unwrap();
    let forged = redirect.replace(&format!("state={state}"), "state=forged");
    let (status, page) = browser_get(&forged).await.expect("listener is up");
    assert_eq!(status, 400, "{page}");
    let (status, _) = browser_get(&format!("{redirect_uri}?code=x"))
        .await
        .expect("still listening after a bad state");
    assert_eq!(status, 400, "a missing state is refused too");

    let (status, page) = browser_get(&redirect).await.expect("listener is up");
    assert_eq!(status, 200);
    assert!(page.contains("You are signed in"), "{page}");
    let completed = server.notification("loginCompleted").await;
    assert_eq!(
        completed,
        json!({"loginId": login_id, "success": true, "credential": "default"})
    );
    let status = server.status(json!({"includeToken": true})).await;
    assert_eq!(
        (status["state"].clone(), status["authMethod"].clone()),
        (json!("active"), json!("oauth"))
    );
    assert_eq!(status["account"]["email"], "user0@example.com");

    let exchange = issuer
        .token_requests()
        .into_iter()
        .find(|r| r.form["grant_type"] == "authorization_code")
        .unwrap();
    assert_eq!(exchange.form["redirect_uri"], redirect_uri);
    assert_eq!(exchange.form["client_id"], CLIENT_ID);
    let stored = read_auth(home.path());
    assert_eq!(
        stored["issuer"].as_str().unwrap().trim_end_matches('/'),
        issuer.url()
    );
    assert_eq!(stored["client_id"], CLIENT_ID);
    assert!(
        stored["tokens"]["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("rt-")
    );

    assert!(
        browser_get(&redirect).await.is_none(),
        "the listener closed after success"
    );
}

#[tokio::test]
async fn the_listener_survives_running_out_of_descriptors() {
    let issuer = FakeIssuer::start().await;
    let (_home, mut server) = server_for(&issuer, &[]).await;
    let started = server.call("login", json!({"type": "oauth"})).await;
    let auth_url = started["authUrl"].as_str().unwrap().to_owned();
    let redirect_uri = query_param(&auth_url, "redirect_uri").unwrap();
    let authority = redirect_uri
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();

    // A few descriptors to spare, then more connections than that: the listener's accept
    // fails with EMFILE while they are held.
    server.limit_open_files(server.open_files() + 8);
    let mut held = Vec::new();
    for _ in 0..64 {
        let connected = tokio::net::TcpStream::connect(&authority).await;
        held.push(connected.unwrap_or_else(|error| {
            panic!("the listener closed when it ran out of descriptors: {error}")
        }));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !server.stderr().contains("cannot accept a connection") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the listener never ran out of descriptors; stderr:\n{}",
            server.stderr()
        );
        // A request lets notifications that arrived meanwhile into the backlog.
        let _ = server.request("getAuthStatus", json!({})).await;
        let ended = server.take_notifications("loginCompleted");
        assert!(
            ended.is_empty(),
            "the login ended when the listener ran out of descriptors: {ended:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        server.stderr().contains("os error 24"),
        "{}",
        server.stderr()
    );

    // Once the connections are gone, the listener accepts again and the login completes.
    drop(held);
    let redirect = issuer.approve_authorization(&auth_url);
    let (status, page) = browser_get(&redirect).await.expect("listener is up");
    assert_eq!(status, 200, "{page}");
    let completed = server.notification("loginCompleted").await;
    assert_eq!(
        completed,
        json!({"loginId": started["loginId"], "success": true, "credential": "default"})
    );
    assert_eq!(server.status(json!({})).await["state"], "active");
}

#[tokio::test]
async fn a_denied_browser_login_ends_unsuccessfully_and_closes_the_listener() {
    let issuer = FakeIssuer::start().await;
    let (_home, mut server) = server_for(&issuer, &[]).await;
    let started = server.call("login", json!({"type": "oauth"})).await;
    let redirect = issuer.deny_authorization(started["authUrl"].as_str().unwrap());
    let (status, page) = browser_get(&redirect).await.unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("access_denied"), "{page}");
    let completed = server.notification("loginCompleted").await;
    assert_eq!(completed["success"], false);
    assert!(
        completed["error"]
            .as_str()
            .unwrap()
            .contains("access_denied"),
        "{completed}"
    );
    assert_eq!(server.status(json!({})).await["state"], "signedOut");
    assert!(browser_get(&redirect).await.is_none());
}

#[tokio::test]
async fn a_browser_login_times_out() {
    let issuer = FakeIssuer::start().await;
    let (_home, mut server) =
        server_for(&issuer, &[("AUTH_APP_SERVER_LOGIN_TIMEOUT_SECS", "1")]).await;
    let started = server.call("login", json!({"type": "oauth"})).await;
    let completed = server.notification("loginCompleted").await;
    assert_eq!(completed["loginId"], started["loginId"]);
    assert_eq!(completed["success"], false);
    assert!(
        completed["error"].as_str().unwrap().contains("timed out"),
        "{completed}"
    );
    let redirect = issuer.approve_authorization(started["authUrl"].as_str().unwrap());
    assert!(
        browser_get(&redirect).await.is_none(),
        "the listener closed at the timeout"
    );
}

#[tokio::test]
async fn device_login_completes_after_approval_and_logout_revokes() {
    let issuer = FakeIssuer::start().await;
    let (home, mut server) = server_for(&issuer, &[]).await;
    let started = server.call("login", json!({"type": "deviceCode"})).await;
    assert_eq!(started["type"], "deviceCode");
    assert_eq!(
        started["verificationUri"],
        format!("{}/device", issuer.url())
    );
    assert_eq!(started["intervalSecs"], 1);
    let user_code = started["userCode"].as_str().unwrap().to_owned();
    assert!(
        started["verificationUriComplete"]
            .as_str()
            .unwrap()
            .contains(&user_code)
    );
    assert!(started["expiresAt"].as_i64().unwrap() > 0);

    issuer.decide_device(&user_code, true);
    let completed = server.notification("loginCompleted").await;
    assert_eq!(
        completed,
        json!({"loginId": started["loginId"], "success": true, "credential": "default"})
    );
    assert_eq!(server.status(json!({})).await["state"], "active");
    let refresh_token = read_auth(home.path())["tokens"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();

    assert_eq!(
        read_auth(home.path())["issuer"],
        issuer.url(),
        "recorded exactly as the metadata states it"
    );

    // The logout answers once the revocation is done (bounded), and says how it went.
    let result = server.call("logout", json!({})).await;
    assert_eq!(result, json!({"revoked": true}));
    assert!(!home.path().join("auth.json").exists());
    assert!(issuer.revoked_tokens().contains(&refresh_token));
    assert_eq!(issuer.hits("/revoke"), 1);
}

#[tokio::test]
async fn device_login_denied_expired_and_slow_down() {
    let issuer = FakeIssuer::start().await;
    let (_home, mut server) = server_for(&issuer, &[]).await;

    let started = server.call("login", json!({"type": "deviceCode"})).await;
    issuer.decide_device(started["userCode"].as_str().unwrap(), false);
    let completed = server.notification("loginCompleted").await;
    assert_eq!(completed["success"], false);
    assert!(
        completed["error"].as_str().unwrap().contains("denied"),
        "{completed}"
    );

    let started = server.call("login", json!({"type": "deviceCode"})).await;
    issuer.expire_device(started["userCode"].as_str().unwrap());
    let completed = server.notification("loginCompleted").await;
    assert_eq!(completed["success"], false);
    assert!(
        completed["error"].as_str().unwrap().contains("expired"),
        "{completed}"
    );

    issuer.slow_down_next(1);
    let started = server.call("login", json!({"type": "deviceCode"})).await;
    let user_code = started["userCode"].as_str().unwrap().to_owned();
    // Approve once the slowed-down poll has happened, then check the gap that followed it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while issuer.device_polls(&user_code).is_empty() {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    issuer.decide_device(&user_code, true);
    let completed = server.notification("loginCompleted").await;
    assert_eq!(completed["success"], true, "{completed}");
    let polls = issuer.device_polls(&user_code);
    assert_eq!(polls.len(), 2, "one slow_down, then the approved poll");
    assert!(
        polls[1] - polls[0] >= Duration::from_secs(6),
        "slow_down adds 5 s to the 1 s interval"
    );
    assert_eq!(server.status(json!({})).await["state"], "active");
}

#[tokio::test]
async fn cancel_and_a_new_login_end_the_pending_one() {
    let issuer = FakeIssuer::start().await;
    let (_home, mut server) = server_for(&issuer, &[]).await;
    let first = server.call("login", json!({"type": "deviceCode"})).await;
    let second = server.call("login", json!({"type": "oauth"})).await;
    let ended = server.notification("loginCompleted").await;
    assert_eq!(
        (ended["loginId"].clone(), ended["success"].clone()),
        (first["loginId"].clone(), json!(false))
    );
    assert!(
        ended["error"].as_str().unwrap().contains("new sign-in"),
        "{ended}"
    );

    let canceled = server
        .call("cancelLogin", json!({"loginId": second["loginId"]}))
        .await;
    assert_eq!(canceled, json!({"status": "canceled"}));
    let ended = server.notification("loginCompleted").await;
    assert_eq!(
        (ended["loginId"].clone(), ended["success"].clone()),
        (second["loginId"].clone(), json!(false))
    );
    assert_eq!(
        server
            .call("cancelLogin", json!({"loginId": second["loginId"]}))
            .await,
        json!({"status": "notFound"})
    );
    let redirect = issuer.approve_authorization(second["authUrl"].as_str().unwrap());
    assert!(
        browser_get(&redirect).await.is_none(),
        "the listener closed on cancel"
    );
}

#[tokio::test]
async fn the_issuer_is_found_from_a_protected_resource_and_an_impersonation_is_refused() {
    let issuer = FakeIssuer::start().await;
    let (home, mut server) = server_for_resource(&issuer).await;
    let started = server.call("login", json!({"type": "deviceCode"})).await;
    assert_eq!(issuer.hits("/mcp"), 1);
    assert_eq!(issuer.hits("/.well-known/oauth-protected-resource/mcp"), 1);
    issuer.decide_device(started["userCode"].as_str().unwrap(), true);
    assert_eq!(server.notification("loginCompleted").await["success"], true);
    let stored = read_auth(home.path());
    assert_eq!(
        stored["issuer"].as_str().unwrap().trim_end_matches('/'),
        issuer.url()
    );
    let device_request = issuer.token_requests().into_iter().next().unwrap();
    assert_eq!(device_request.form["client_id"], CLIENT_ID);

    let liar = FakeIssuer::start().await;
    liar.claim_resource("https://elsewhere.example/mcp");
    let (_home, mut server) = server_for_resource(&liar).await;
    let error = server
        .call_error("login", json!({"type": "deviceCode"}))
        .await;
    assert_eq!(error["code"], -32012);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("another resource"),
        "{error}"
    );
    assert_eq!(liar.hits("/device/code"), 0);
}

#[tokio::test]
async fn redirect_port_pins_the_loopback_redirect_and_a_busy_port_is_a_clear_error() {
    let issuer = FakeIssuer::start().await;
    let home = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        "[provider]\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nredirect_port = {port}\n",
        issuer.url()
    );
    std::fs::write(home.path().join("config.toml"), config).unwrap();
    let mut server = ServerProcess::start_initialized(home.path()).await;
    let started = server.call("login", json!({"type": "oauth"})).await;
    let auth_url = started["authUrl"].as_str().unwrap();
    assert_eq!(
        query_param(auth_url, "redirect_uri"),
        Some(format!("http://127.0.0.1:{port}/callback"))
    );
    let redirect = issuer.approve_authorization(auth_url);
    let (status, page) = browser_get(&redirect).await.expect("listener is up");
    assert_eq!(status, 200, "{page}");
    assert_eq!(server.notification("loginCompleted").await["success"], true);

    // Someone else holds the port now.
    let _busy = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let error = server.call_error("login", json!({"type": "oauth"})).await;
    assert_eq!(error["code"], -32012, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("127.0.0.1:{port}")) && message.contains("redirect_port"),
        "{message}"
    );
}

#[tokio::test]
async fn a_discovered_resource_without_configured_scopes_gets_the_scopes_it_asks_for() {
    async fn signed_in_scopes(issuer: &FakeIssuer) -> (Option<String>, Option<String>) {
        let (_home, mut server) = server_for_resource(issuer).await;
        let started = server.call("login", json!({"type": "oauth"})).await;
        let browser = query_param(started["authUrl"].as_str().unwrap(), "scope");
        server.call("login", json!({"type": "deviceCode"})).await;
        let device = issuer
            .device_requests()
            .last()
            .unwrap()
            .get("scope")
            .cloned();
        (browser, device)
    }

    let issuer = FakeIssuer::start().await;
    issuer.set_resource_scopes(Some(&["mcp:tools", "mcp:resources"]));
    let wanted = Some("mcp:tools mcp:resources".to_owned());
    assert_eq!(
        signed_in_scopes(&issuer).await,
        (wanted.clone(), wanted),
        "scopes_supported of the resource's metadata"
    );

    // The challenge's `scope=` is what the resource asks for; it comes first.
    issuer.set_challenge_scope(Some("mcp:tools"));
    let wanted = Some("mcp:tools".to_owned());
    assert_eq!(
        signed_in_scopes(&issuer).await,
        (wanted.clone(), wanted),
        "scope= of the 401 challenge"
    );

    issuer.set_challenge_scope(None);
    issuer.set_resource_scopes(None);
    assert_eq!(
        signed_in_scopes(&issuer).await,
        (None, None),
        "nothing asked for, nothing requested"
    );
}

/// The stored `(expires_at, issued_at)` against the moment the issuer received the token
/// request of `grant_type`: the lifetime counts from no later than that (the send), never from
/// the answer's arrival, which the issuer delayed by 2 s.
fn lifetime_counts_from_the_request(home: &Path, issuer: &FakeIssuer, grant_type: &str) {
    let request = issuer
        .token_requests()
        .into_iter()
        .find(|r| r.form["grant_type"] == grant_type)
        .unwrap();
    let received = auth_app_server_tests::unix_ms_at(request.at).div_euclid(1000);
    let tokens = &read_auth(home)["tokens"];
    let (expires_at, issued_at) = (
        tokens["expires_at"].as_i64().unwrap(),
        tokens["issued_at"].as_i64().unwrap(),
    );
    assert_eq!(expires_at - issued_at, 3600, "{grant_type}: {tokens}");
    assert!(
        issued_at <= received && expires_at <= received + 3600,
        "{grant_type}: expires_at {expires_at} counts from after the request reached the issuer at {received}: from the answer's arrival"
    );
    // And not from long before it either (the server sent it just before).
    assert!(issued_at >= received - 1, "{grant_type}: {tokens}");
}

#[tokio::test]
async fn sign_in_token_lifetimes_count_from_the_request_not_the_slow_answer() {
    let issuer = FakeIssuer::start().await;
    issuer.delay_sign_in_answers(Duration::from_secs(2));

    // Browser sign-in: the code exchange answers after 2 s.
    let (home, mut server) = server_for(&issuer, &[]).await;
    let started = server.call("login", json!({"type": "oauth"})).await;
    let redirect = issuer.approve_authorization(started["authUrl"].as_str().unwrap());
    let (status, page) = browser_get(&redirect).await.expect("listener is up");
    assert_eq!(status, 200, "{page}");
    let completed = server.notification("loginCompleted").await;
    assert_eq!(completed["success"], true, "{completed}");
    lifetime_counts_from_the_request(home.path(), &issuer, "authorization_code");

    // Device sign-in: the approved grant's token poll answers after 2 s.
    let (home, mut server) = server_for(&issuer, &[]).await;
    let started = server.call("login", json!({"type": "deviceCode"})).await;
    issuer.decide_device(started["userCode"].as_str().unwrap(), true);
    let completed = server.notification("loginCompleted").await;
    assert_eq!(completed["success"], true, "{completed}");
    lifetime_counts_from_the_request(
        home.path(),
        &issuer,
        "urn:ietf:params:oauth:grant-type:device_code",
    );
}
