//! Bounds on what a provider can make the server do (docs/refresh-policy.md, bounds), over pipes against
//! the fake issuer answering with hostile values: device authorization numbers far outside
//! any sane range are clamped (never a panic or an overflow), and addresses to show the user
//! that are not https are refused.

use auth_app_server_tests::{
    FakeIssuer, IssuedTokens, ServerProcess, TokenMode, now, run_command, seed_oauth_home,
    seeded_home,
};
use serde_json::{Value, json};

async fn server_for(issuer: &FakeIssuer) -> (tempfile::TempDir, ServerProcess) {
    let home = tempfile::tempdir().unwrap();
    issuer.write_config(home.path());
    let server = ServerProcess::start_initialized(home.path()).await;
    (home, server)
}

/// Cancels `login` and waits for its `loginCompleted`: proof that its poll task is alive.
async fn cancel(server: &mut ServerProcess, login: &Value) {
    let canceled = server
        .call("cancelLogin", json!({"loginId": login["loginId"]}))
        .await;
    assert_eq!(canceled, json!({"status": "canceled"}));
    let ended = server.notification("loginCompleted").await;
    assert_eq!(ended["loginId"], login["loginId"], "{ended}");
    assert_eq!(ended["success"], false, "{ended}");
}

#[tokio::test]
async fn device_numbers_out_of_range_are_clamped_and_never_panic() {
    let issuer = FakeIssuer::start().await;
    let (_home, mut server) = server_for(&issuer).await;

    issuer.set_device_response_override(json!({"interval": u64::MAX, "expires_in": u64::MAX}));
    let started = server.call("login", json!({"type": "deviceCode"})).await;
    assert_eq!(started["intervalSecs"], 60, "{started}");
    let expires_at = started["expiresAt"].as_i64().unwrap();
    assert!(
        (now()..=now() + 3600).contains(&expires_at),
        "expiresAt is at most an hour away: {started}"
    );
    cancel(&mut server, &started).await;

    // Negative, fractional, beyond u64, quoted: each clamped into range.
    for (interval, expires_in, want_interval) in [
        (json!(-5), json!(1.5e300), 1),
        (json!(0.2), json!(-100), 1),
        (json!(18446744073709551616.0), json!("600"), 60),
        (json!("7"), json!(-9223372036854775808i64), 7),
    ] {
        issuer
            .set_device_response_override(json!({"interval": interval, "expires_in": expires_in}));
        let started = server.call("login", json!({"type": "deviceCode"})).await;
        assert_eq!(started["intervalSecs"], want_interval, "{started}");
        let expires_at = started["expiresAt"].as_i64().unwrap();
        assert!(
            (now() + 55..=now() + 3600).contains(&expires_at),
            "expiresAt is a minute to an hour away: {started}"
        );
        cancel(&mut server, &started).await;
    }

    // A clamped interval still polls, and the sign-in completes.
    issuer.set_device_response_override(json!({"interval": -1, "expires_in": u64::MAX}));
    let started = server.call("login", json!({"type": "deviceCode"})).await;
    issuer.decide_device(started["userCode"].as_str().unwrap(), true);
    let completed = server.notification("loginCompleted").await;
    assert_eq!(
        completed,
        json!({"loginId": started["loginId"], "success": true, "credential": "default"})
    );
    assert_eq!(server.status(json!({})).await["state"], "active");
    let (status, _) = server.finish().await;
    assert!(status.success());
}

#[tokio::test]
async fn verification_addresses_that_are_not_https_are_refused() {
    let issuer = FakeIssuer::start().await;
    let (_home, mut server) = server_for(&issuer).await;
    // The issuer's own addresses are http on 127.0.0.1: allowed.
    let pending = server.call("login", json!({"type": "deviceCode"})).await;

    for (members, field) in [
        (
            json!({"verification_uri": "javascript:alert(1)"}),
            "verification_uri",
        ),
        (
            json!({"verification_uri": "http://example.com/device"}),
            "verification_uri",
        ),
        (
            json!({"verification_uri": "file:///etc/passwd"}),
            "verification_uri",
        ),
        (
            json!({"verification_uri_complete": "data:text/html,<h1>sign in</h1>"}),
            "verification_uri_complete",
        ),
        (
            json!({"verification_uri_complete": "http://evil.example/device?user_code=X"}),
            "verification_uri_complete",
        ),
    ] {
        issuer.set_device_response_override(members.clone());
        let error = server
            .call_error("login", json!({"type": "deviceCode"}))
            .await;
        assert_eq!(error["code"], -32012, "{members}: {error}");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains(field) && message.contains("https"),
            "{members}: {message}"
        );
        assert!(!message.contains("evil") && !message.contains("javascript"));
    }

    // A refused answer did not cancel the login already pending.
    cancel(&mut server, &pending).await;
    let (status, _) = server.finish().await;
    assert!(status.success());
}

/// A home whose access token expired (polls wait for the refresh), and a started server.
async fn expired_home(issuer: &FakeIssuer) -> (tempfile::TempDir, IssuedTokens, ServerProcess) {
    let (home, tokens) = seeded_home(issuer, -1);
    let server = ServerProcess::start_initialized(home.path()).await;
    (home, tokens, server)
}

fn refresh_poll() -> Value {
    json!({"includeToken": true, "refreshToken": true})
}

#[tokio::test]
async fn absurd_token_lifetimes_are_clamped_and_never_panic() {
    const YEAR_AND_A_DAY: i64 = 366 * 24 * 3600;
    for expires_in in [
        "18446744073709551615",
        "9300000000000000000",
        "1e300",
        "250000000000",
        "-1e300",
    ] {
        let issuer = FakeIssuer::start().await;
        issuer.set_mode(TokenMode::Answer {
            status: 200,
            body: format!(
                r#"{{"access_token":"at-clamped","token_type":"Bearer","expires_in":{expires_in}}}"#
            ),
        });
        let (home, _tokens, mut server) = expired_home(&issuer).await;
        let status = server.status(refresh_poll()).await;
        if expires_in.starts_with('-') {
            // Not a valid token response: a transient failure, not a token that never expires.
            assert_eq!(status["state"], "degraded", "{expires_in}: {status}");
            continue;
        }
        assert_eq!(status["state"], "active", "{expires_in}: {status}");
        assert_eq!(status["authToken"], "at-clamped");
        let expires_at = status["expiresAt"].as_i64().unwrap();
        assert!(
            expires_at > now() && expires_at <= now() + YEAR_AND_A_DAY,
            "{expires_in}: expiresAt {expires_at} is within a year and a day"
        );
        // The terminal command shows it without panicking.
        let output = run_command(home.path(), &["status"], &[], "").await;
        assert_eq!(output.status.code(), Some(0), "{expires_in}: {output:?}");
    }
}

#[tokio::test]
async fn a_token_response_over_one_mebibyte_is_a_transient_failure() {
    let issuer = FakeIssuer::start().await;
    let padding = "x".repeat(2 * 1024 * 1024);
    issuer.set_mode(TokenMode::Answer {
        status: 200,
        body: format!(r#"{{"access_token":"at-big","token_type":"Bearer","padding":"{padding}"}}"#),
    });
    let (_home, _tokens, mut server) = expired_home(&issuer).await;
    let status = server.status(refresh_poll()).await;
    assert_eq!(status["state"], "degraded", "{status}");
    assert_eq!(status["refreshError"]["kind"], "transient");
    let message = status["refreshError"]["message"].as_str().unwrap();
    assert!(message.contains("1 MiB"), "{message}");
    assert!(status.get("authToken").is_none());
}

#[tokio::test]
async fn an_error_value_that_echoes_the_refresh_token_is_never_stored_or_shown() {
    let issuer = FakeIssuer::start().await;
    let home = tempfile::tempdir().unwrap();
    let tokens = issuer.issue_grant(3600);
    issuer.set_mode(TokenMode::Answer {
        status: 400,
        body: json!({"error": tokens.refresh_token}).to_string(),
    });
    seed_oauth_home(home.path(), &issuer, &tokens, now() - 1);
    let mut server = ServerProcess::start_with(home.path(), &[], &[("RUST_LOG", "debug")]).await;
    server.initialize().await;
    let status = server.status(refresh_poll()).await;
    assert_eq!(status["state"], "degraded", "not poisoned: {status}");
    let error = &status["refreshError"];
    assert!(error.get("code").is_none(), "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("unregistered error (sha256 "), "{message}");
    let stored = std::fs::read_to_string(home.path().join("auth.json")).unwrap();
    assert_eq!(
        stored.matches(tokens.refresh_token.as_str()).count(),
        1,
        "only in tokens.refresh_token: {stored}"
    );
    server.call("logout", json!({})).await;
    let stderr = server.stderr();
    assert!(!stderr.contains(&tokens.refresh_token), "{stderr}");
    assert!(!status.to_string().contains(&tokens.refresh_token));
}
