//! What a hostile provider's strings can do (docs/security.md, provider text): nothing it
//! sends can make `auth.json` or `registrations.json` larger than a reader accepts, forge a log
//! line, or fill an error. Over pipes against the fake issuer.

use auth_app_server_tests::{
    FakeIssuer, RegistrationMode, ServerProcess, TokenMode, refresh_poll, seeded_home,
    start_for_protected_resource,
};
use serde_json::json;

#[tokio::test]
async fn a_registered_client_id_that_would_forge_a_log_line_or_bloat_files_is_refused() {
    let issuer = FakeIssuer::start().await;
    issuer.set_registration_mode(RegistrationMode::Ok);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let mut server = start_for_protected_resource(&issuer, home).await;

    let forged = "dyn-1\n2026-12-02T00:00:00.000000Z  INFO auth_core: signed in\u{1b}[2J";
    let huge = "c".repeat(1_000_000);
    for (client_id, why) in [
        (forged, "characters other than printable ASCII"),
        (huge.as_str(), "client_id longer than 1024 bytes"),
    ] {
        issuer.set_issued_client_id(Some(client_id));
        let error = server.call_error("login", json!({"type": "oauth"})).await;
        assert_eq!(error["code"], -32012, "{error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(why), "{message}");
        assert!(message.contains("Nothing was stored"), "{message}");
        assert!(message.len() < 2048, "{}", message.len());
        assert!(!home.join("registrations.json").exists());
    }
    assert_eq!(issuer.hits("/register"), 2);

    let log = server.stderr();
    assert!(!log.contains('\u{1b}'), "{log}");
    assert!(!log.contains("\n2026-12-02T00:00:00.000000Z"), "{log}");

    // A sane one afterwards is registered and stored.
    issuer.set_issued_client_id(Some("dyn-sane"));
    let started = server.call("login", json!({"type": "oauth"})).await;
    assert!(
        started["authUrl"]
            .as_str()
            .unwrap()
            .contains("client_id=dyn-sane")
    );
    let (status, _) = server.finish().await;
    assert!(status.success());
    let registrations = std::fs::read_to_string(home.join("registrations.json")).unwrap();
    assert!(registrations.contains("dyn-sane"));
}

#[tokio::test]
async fn a_resource_naming_a_huge_other_resource_is_refused_with_a_short_quoted_error() {
    let issuer = FakeIssuer::start().await;
    issuer.set_registration_mode(RegistrationMode::Ok);
    let claimed = format!("https://evil.example/\n\u{1b}[2J{}", "r".repeat(500_000));
    issuer.claim_resource(&claimed);
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_for_protected_resource(&issuer, dir.path()).await;
    let error = server.call_error("login", json!({"type": "oauth"})).await;
    assert_eq!(error["code"], -32012, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("another resource"), "{message}");
    assert!(
        message.contains(r#"("https://evil.example/\n\u{1b}[2Jrrr"#),
        "quoted with its control characters escaped: {message}"
    );
    assert!(message.len() < 1024, "{}", message.len());
    let (status, _) = server.finish().await;
    assert!(status.success());
}

#[tokio::test]
async fn a_refresh_answer_with_a_huge_token_is_refused_and_auth_json_stays_readable() {
    let issuer = FakeIssuer::start().await;
    let (dir, tokens) = seeded_home(&issuer, -1);
    let home = dir.path();
    // Just under the 1 MiB answer limit, and with the rest of auth.json just over the 1 MiB
    // that every reader accepts.
    let access_token = "a".repeat(1024 * 1024 - 200);
    issuer.set_mode(TokenMode::Answer {
        status: 200,
        body: json!({"access_token": access_token, "token_type": "Bearer", "expires_in": 3600})
            .to_string(),
    });
    let mut server = ServerProcess::start_initialized(home).await;
    let status = server.status(refresh_poll()).await;
    assert_eq!(status["state"], "degraded", "{status}");
    assert_eq!(status["refreshError"]["kind"], "transient", "{status}");
    let message = status["refreshError"]["message"].as_str().unwrap();
    assert!(message.contains("longer than 64 KiB"), "{message}");
    assert_eq!(issuer.refresh_hits(), 1);

    // The file holds the old tokens and the backoff, and another process reads it.
    let stored = std::fs::read(home.join("auth.json")).unwrap();
    assert!(stored.len() < 64 * 1024, "{}", stored.len());
    let stored: serde_json::Value = serde_json::from_slice(&stored).unwrap();
    assert_eq!(stored["tokens"]["access_token"], tokens.access_token);
    assert!(
        stored["refresh_backoff"]["message"]
            .as_str()
            .unwrap()
            .contains("longer than 64 KiB")
    );
    let mut other = ServerProcess::start_initialized(home).await;
    let seen = other.status(json!({})).await;
    assert_eq!(seen["authMethod"], "oauth", "{seen}");
    let (status, _) = other.finish().await;
    assert!(status.success());
    let (status, _) = server.finish().await;
    assert!(status.success());
}

#[tokio::test]
async fn tokens_from_the_host_longer_than_64_kib_are_refused_and_nothing_is_written() {
    let home = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start_initialized(home.path()).await;
    let long = "t".repeat(64 * 1024 + 1);
    for (member, params) in [
        (
            "accessToken",
            json!({"type": "tokens", "accessToken": long}),
        ),
        (
            "refreshToken",
            json!({"type": "tokens", "accessToken": "at-1", "refreshToken": long}),
        ),
        (
            "idToken",
            json!({"type": "tokens", "accessToken": "at-1", "idToken": long}),
        ),
    ] {
        let error = server.call_error("login", params).await;
        assert_eq!(error["code"], -32602, "{error}");
        assert_eq!(
            error["message"],
            format!(
                "invalid params: \"{member}\" is longer than 65536 bytes, longer than any token this server stores"
            )
        );
        assert!(!home.path().join("auth.json").exists());
    }
    // One that fits is stored.
    let fits = "t".repeat(64 * 1024);
    server
        .call("login", json!({"type": "tokens", "accessToken": fits}))
        .await;
    assert_eq!(server.status(json!({})).await["state"], "active");
    let (status, _) = server.finish().await;
    assert!(status.success());
}
