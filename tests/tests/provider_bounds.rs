//! Bounds on what a provider can make the server do (SPEC §12 "Bounds"), over pipes against
//! the fake issuer answering with hostile values: device authorization numbers far outside
//! any sane range are clamped (never a panic or an overflow), and addresses to show the user
//! that are not https are refused.

use auth_app_server_tests::{FakeIssuer, ServerProcess, now};
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
        json!({"loginId": started["loginId"], "success": true})
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
