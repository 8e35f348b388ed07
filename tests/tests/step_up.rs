//! Step-up on `insufficient_scope` (docs/protocol.md): `reportAuthFailure` names the scopes the
//! API asks for (`requiredScopes`), and a `login` with `scopes` requests them together with the
//! configured scopes and those of the current grant, so consent already given is kept.

use std::path::Path;

use auth_app_server_tests::issuer::CLIENT_ID;
use auth_app_server_tests::{FakeIssuer, ServerProcess, browser_get, now, query_param};
use serde_json::{Value, json};

/// A home whose provider is `issuer` with scopes `openid offline_access`, signed in with a
/// grant recorded as issued by `recorded_issuer` with `scope`.
fn signed_in_home(issuer: &FakeIssuer, recorded_issuer: &str, scope: &str) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let config = format!(
        "[provider]\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nscopes = [\"openid\", \"offline_access\"]\n",
        issuer.url()
    );
    std::fs::write(home.path().join("config.toml"), config).unwrap();
    let tokens = issuer.issue_grant(3600);
    let file = json!({
        "version": 1, "auth_mode": "oauth", "issuer": recorded_issuer, "client_id": CLIENT_ID,
        "tokens": {"access_token": tokens.access_token, "refresh_token": tokens.refresh_token,
                   "expires_at": now() + 3600, "scope": scope},
    });
    std::fs::write(home.path().join("auth.json"), file.to_string()).unwrap();
    home
}

fn stored_scope(home: &Path) -> Value {
    let file: Value =
        serde_json::from_slice(&std::fs::read(home.join("auth.json")).unwrap()).unwrap();
    file["tokens"]["scope"].clone()
}

#[tokio::test]
async fn insufficient_scope_answers_the_scopes_the_api_asks_for() {
    let issuer = FakeIssuer::start().await;
    let home = signed_in_home(&issuer, &issuer.url(), "openid offline_access");
    let mut server = ServerProcess::start_initialized(home.path()).await;
    let token = server.status(json!({"includeToken": true})).await["authToken"].clone();

    let answer = server
        .call(
            "reportAuthFailure",
            json!({"status": 403, "rejectedToken": token,
                   "wwwAuthenticate": "Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"files.read files.write\", error_description=\"needs scope=admin\""}),
        )
        .await;
    assert_eq!(answer["action"], "insufficientScope", "{answer}");
    assert_eq!(
        answer["requiredScopes"],
        json!(["files.read", "files.write"])
    );
    assert_eq!(answer["authToken"], token, "the token is not changed");
    let hint = answer["hint"].as_str().unwrap();
    assert!(
        hint.contains("files.read files.write") && hint.contains("\"scopes\""),
        "{hint}"
    );

    // No scope in the challenge: the version-1 answer, without the member.
    let answer = server
        .call(
            "reportAuthFailure",
            json!({"status": 403, "wwwAuthenticate": "Bearer error=\"insufficient_scope\""}),
        )
        .await;
    assert_eq!(answer["action"], "insufficientScope");
    assert!(answer.get("requiredScopes").is_none(), "{answer}");
    // Other actions never carry it.
    let answer = server
        .call(
            "reportAuthFailure",
            json!({"status": 401, "rejectedToken": token}),
        )
        .await;
    assert_eq!(answer["action"], "refreshed", "{answer}");
    assert!(answer.get("requiredScopes").is_none(), "{answer}");
    assert_eq!(
        issuer.refresh_hits(),
        1,
        "insufficient_scope never refreshed"
    );
}

#[tokio::test]
async fn a_step_up_requests_the_union_and_keeps_what_was_granted() {
    let issuer = FakeIssuer::start().await;
    // The provider grants what was asked and says so by leaving `scope` out (RFC 6749 §5.1).
    issuer.omit_token_scope();
    let home = signed_in_home(&issuer, &issuer.url(), "openid profile");
    let mut server = ServerProcess::start_initialized(home.path()).await;

    let started = server
        .call(
            "login",
            json!({"type": "oauth", "scopes": ["files.write", "openid"]}),
        )
        .await;
    let auth_url = started["authUrl"].as_str().unwrap();
    assert_eq!(
        query_param(auth_url, "scope").as_deref(),
        Some("openid offline_access profile files.write"),
        "configured, then granted, then asked for; each once"
    );
    let (status, _) = browser_get(&issuer.approve_authorization(auth_url))
        .await
        .expect("listener is up");
    assert_eq!(status, 200);
    let completed = server.notification("loginCompleted").await;
    assert_eq!(completed["success"], true, "{completed}");
    assert_eq!(
        stored_scope(home.path()),
        "openid offline_access profile files.write",
        "the requested scopes are recorded when the response omits them"
    );

    // A second step-up, by device code, keeps everything granted so far.
    let started = server
        .call("login", json!({"type": "deviceCode", "scopes": ["admin"]}))
        .await;
    let device = issuer.device_requests().pop().unwrap();
    assert_eq!(
        device["scope"],
        "openid offline_access profile files.write admin"
    );
    issuer.decide_device(started["userCode"].as_str().unwrap(), true);
    let completed = server.notification("loginCompleted").await;
    assert_eq!(completed["success"], true, "{completed}");
    assert_eq!(
        stored_scope(home.path()),
        "openid offline_access profile files.write admin"
    );
}

#[tokio::test]
async fn another_providers_grant_adds_nothing_and_malformed_scopes_are_refused() {
    let issuer = FakeIssuer::start().await;
    let home = signed_in_home(&issuer, "https://other.example", "other.secret");
    let mut server = ServerProcess::start_initialized(home.path()).await;
    let started = server
        .call("login", json!({"type": "oauth", "scopes": ["x"]}))
        .await;
    assert_eq!(
        query_param(started["authUrl"].as_str().unwrap(), "scope").as_deref(),
        Some("openid offline_access x")
    );
    // Without `scopes`: exactly the configured ones, as in version 1.
    let started = server.call("login", json!({"type": "deviceCode"})).await;
    assert_eq!(started["type"], "deviceCode");
    assert_eq!(
        issuer.device_requests().pop().unwrap()["scope"],
        "openid offline_access"
    );

    for bad in [
        json!(["a b"]),
        json!([""]),
        json!(["q\"uote"]),
        json!("files.read"),
    ] {
        let error = server
            .call_error("login", json!({"type": "oauth", "scopes": bad}))
            .await;
        assert_eq!(error["code"], -32602, "{bad}: {error}");
        assert!(
            error["message"].as_str().unwrap().contains("scopes"),
            "{bad}: {error}"
        );
    }
}
