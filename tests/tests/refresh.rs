//! docs/refresh-policy.md end to end: the real binary against the fake issuer, counting every request that
//! reaches the token endpoint.

use std::time::Duration;

use auth_app_server_tests::issuer::CLIENT_ID;
use auth_app_server_tests::{
    FakeIssuer, IssuedTokens, ServerProcess, TokenMode, now, read_auth, refresh_poll,
    seed_oauth_home, seeded_home, two_processes_refresh_once,
};
use serde_json::{Value, json};

const POLL: fn() -> Value = refresh_poll;

/// A stale home (the access token still works for 60 s; its lifetime is unknown, so the
/// 300 s rule applies) and a started server on it.
async fn stale_setup(issuer: &FakeIssuer) -> (tempfile::TempDir, IssuedTokens, ServerProcess) {
    setup_expiring_in(issuer, 60).await
}

/// A home whose access token expired a second ago: polls wait for the refresh itself.
async fn expired_setup(issuer: &FakeIssuer) -> (tempfile::TempDir, IssuedTokens, ServerProcess) {
    setup_expiring_in(issuer, -1).await
}

async fn setup_expiring_in(
    issuer: &FakeIssuer,
    secs: i64,
) -> (tempfile::TempDir, IssuedTokens, ServerProcess) {
    let (home, tokens) = seeded_home(issuer, secs);
    let server = ServerProcess::start_initialized(home.path()).await;
    (home, tokens, server)
}

/// Waits for the `authStatusChanged` notification that announces `state` for OAuth.
async fn announced(server: &mut ServerProcess, state: &str) {
    let params = server.announced(state).await;
    assert_eq!(params["authMethod"], "oauth", "{params}");
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_and_stored_with_unknown_fields_kept() {
    let issuer = FakeIssuer::start().await;
    let (home, tokens, mut server) = expired_setup(&issuer).await;
    let status = server.status(POLL()).await;
    assert_eq!(status["state"], "active");
    let new_token = status["authToken"].as_str().unwrap().to_owned();
    assert_ne!(new_token, tokens.access_token);
    assert_eq!(issuer.refresh_hits(), 1);
    let request = &issuer.token_requests()[0].form;
    assert_eq!(request["client_id"], CLIENT_ID);
    assert_eq!(request["refresh_token"], tokens.refresh_token);
    assert!(
        request.get("resource").is_none(),
        "resource is sent only when configured"
    );

    let stored = read_auth(home.path());
    assert_eq!(stored["tokens"]["access_token"], new_token);
    assert_ne!(
        stored["tokens"]["refresh_token"], tokens.refresh_token,
        "rotated"
    );
    assert_eq!(stored["tokens"]["x_token_note"], "kept");
    assert_eq!(stored["x_other_tool"], json!({"keep": true}));
    assert!(stored["last_refresh"].is_string());
    assert!(stored["tokens"]["expires_at"].as_i64().unwrap() > now() + 3000);
    assert_eq!(
        stored["tokens"]["expires_at"].as_i64().unwrap()
            - stored["tokens"]["issued_at"].as_i64().unwrap(),
        3600,
        "issued_at is recorded with the tokens"
    );

    // Fresh now: more polls never touch the network.
    for _ in 0..20 {
        assert_eq!(server.status(POLL()).await["authToken"], new_token);
    }
    assert_eq!(issuer.refresh_hits(), 1);
}

#[tokio::test]
async fn fresh_tokens_and_plain_polls_never_touch_the_network() {
    let issuer = FakeIssuer::start().await;
    let (home, tokens) = seeded_home(&issuer, 3600);
    let mut server = ServerProcess::start_initialized(home.path()).await;
    for _ in 0..50 {
        assert_eq!(
            server.status(POLL()).await["authToken"],
            tokens.access_token
        );
    }
    // Stale, but refreshToken is false: answered from the stored snapshot.
    seed_oauth_home(home.path(), &issuer, &tokens, now() + 10);
    for _ in 0..50 {
        assert_eq!(
            server.status(json!({"includeToken": true})).await["authToken"],
            tokens.access_token
        );
    }
    assert_eq!(issuer.token_hits(), 0);
    assert_eq!(issuer.hits("/.well-known/oauth-authorization-server"), 0);
}

#[tokio::test]
async fn two_hundred_polls_after_invalid_grant_make_one_request_and_a_restart_makes_none() {
    let issuer = FakeIssuer::start().await;
    issuer.set_mode(TokenMode::InvalidGrant);
    let (home, tokens, mut server) = expired_setup(&issuer).await;
    for _ in 0..200 {
        let status = server.status(POLL()).await;
        assert_eq!(status["state"], "needsLogin");
        assert_eq!(status["authMethod"], "oauth");
        assert!(status.get("authToken").is_none());
        assert_eq!(status["refreshError"]["kind"], "permanent");
        assert_eq!(status["refreshError"]["code"], "invalid_grant");
        assert!(
            status["refreshError"]["message"]
                .as_str()
                .unwrap()
                .contains("sign in again")
        );
    }
    assert_eq!(issuer.refresh_hits(), 1);
    assert_eq!(
        server.notification("authStatusChanged").await,
        json!({"authMethod": "oauth", "state": "needsLogin", "credential": "default"})
    );

    let failure = &read_auth(home.path())["refresh_failure"];
    assert_eq!(failure["reason"], "invalid_grant");
    assert_eq!(
        failure["refresh_token_sha256"],
        fingerprint(&tokens.refresh_token)
    );
    server.finish().await;

    let mut restarted = ServerProcess::start_initialized(home.path()).await;
    for _ in 0..200 {
        assert_eq!(restarted.status(POLL()).await["state"], "needsLogin");
    }
    assert_eq!(issuer.refresh_hits(), 1, "the poison survives a restart");

    // New credentials clear the poison.
    restarted
        .call(
            "login",
            json!({"type": "apiKey", "apiKey": "sk-e2e-0123456789abcdef"}),
        )
        .await;
    assert_eq!(restarted.status(json!({})).await["state"], "active");
    assert!(read_auth(home.path()).get("refresh_failure").is_none());
}

#[tokio::test]
async fn fifty_concurrent_polls_on_an_expired_token_make_one_request() {
    let issuer = FakeIssuer::start().await;
    issuer.set_mode(TokenMode::Slow(Duration::from_millis(200)));
    let (_home, _tokens, mut server) = expired_setup(&issuer).await;
    let mut burst = String::new();
    for id in 1..=50 {
        burst.push_str(&format!("{{\"id\":{id},\"method\":\"getAuthStatus\",\"params\":{{\"includeToken\":true,\"refreshToken\":true}}}}\n"));
    }
    server.send_bytes(burst.as_bytes()).await;
    let mut tokens = std::collections::HashSet::new();
    for id in 1..=50 {
        let answer = server.response(id).await;
        assert_eq!(answer["result"]["state"], "active", "{answer}");
        tokens.insert(answer["result"]["authToken"].as_str().unwrap().to_owned());
    }
    assert_eq!(issuer.refresh_hits(), 1);
    assert_eq!(
        tokens.len(),
        1,
        "every caller got the one new token: {tokens:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_sharing_a_home_rotate_once_and_agree() {
    let issuer = FakeIssuer::start().await;
    // Slow enough that the second process asks while the first holds the lock.
    issuer.set_mode(TokenMode::Slow(Duration::from_millis(300)));
    let (home, _tokens) = seeded_home(&issuer, -1);
    let mut a = ServerProcess::start_initialized(home.path()).await;
    let mut b = ServerProcess::start_initialized(home.path()).await;
    two_processes_refresh_once(&mut a, &mut b, &issuer).await;
    assert!(read_auth(home.path()).get("refresh_failure").is_none());
}

#[tokio::test]
async fn transient_failures_degrade_back_off_and_recover() {
    let modes = [
        TokenMode::WafHtml403,
        TokenMode::ServiceUnavailable,
        TokenMode::TooManyRequests { retry_after: None },
        TokenMode::TemporarilyUnavailable,
        TokenMode::Html200,
        TokenMode::EmptyBody400,
        TokenMode::DropConnection,
    ];
    for mode in modes {
        let issuer = FakeIssuer::start().await;
        issuer.set_mode(mode.clone());
        let (home, tokens, mut server) = stale_setup(&issuer).await;
        // The token still works: the poll answers with it, refresh done or not.
        let first = server.status(POLL()).await;
        assert_eq!(first["authToken"], tokens.access_token, "{mode:?}: {first}");
        announced(&mut server, "degraded").await;
        let status = server.status(POLL()).await;
        assert_eq!(status["state"], "degraded", "{mode:?}: {status}");
        assert_eq!(status["refreshError"]["kind"], "transient", "{mode:?}");
        assert!(
            status["refreshError"]["retryAfterSecs"].is_u64(),
            "{mode:?}: {status}"
        );
        assert_eq!(
            status["authToken"], tokens.access_token,
            "{mode:?}: the unexpired token is still handed out"
        );
        let first_attempt = issuer.refresh_hits();
        assert!(
            (1..=3).contains(&first_attempt),
            "{mode:?}: {first_attempt} requests in one attempt"
        );
        // The backoff is recorded for every process on the home.
        let backoff = &read_auth(home.path())["refresh_backoff"];
        assert_eq!(backoff["failures"], 1, "{mode:?}: {backoff}");
        assert!(backoff["retry_at"].as_i64().unwrap() >= now(), "{mode:?}");
        // Inside the backoff window: no network at all.
        for _ in 0..100 {
            assert_eq!(server.status(POLL()).await["state"], "degraded");
        }
        assert_eq!(issuer.refresh_hits(), first_attempt, "{mode:?}");

        issuer.set_mode(TokenMode::Ok);
        let recovered = server.poll_until(|s| s["state"] == "active").await;
        assert!(recovered.get("refreshError").is_none(), "{mode:?}");
        announced(&mut server, "active").await;
        let recovered = server
            .poll_until(|s| s["authToken"] != tokens.access_token.as_str())
            .await;
        assert_eq!(recovered["state"], "active");
        assert!(
            read_auth(home.path()).get("refresh_backoff").is_none(),
            "{mode:?}: a success clears the backoff"
        );
    }
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let issuer = FakeIssuer::start().await;
    issuer.set_mode(TokenMode::TooManyRequests {
        retry_after: Some(2),
    });
    let (_home, _tokens, mut server) = stale_setup(&issuer).await;
    server.status(POLL()).await;
    announced(&mut server, "degraded").await;
    let status = server.status(POLL()).await;
    assert_eq!(status["state"], "degraded");
    let wait = status["refreshError"]["retryAfterSecs"].as_u64().unwrap();
    assert!(
        (2..=3).contains(&wait),
        "2 s, rounded up to the file's whole seconds: {status}"
    );
    assert_eq!(
        issuer.refresh_hits(),
        1,
        "a 429 is not retried inside the attempt"
    );
    issuer.set_mode(TokenMode::Ok);
    for _ in 0..50 {
        server.status(POLL()).await;
    }
    assert_eq!(
        issuer.refresh_hits(),
        1,
        "nothing before Retry-After has passed"
    );
}

#[tokio::test]
async fn a_slow_provider_times_out_transiently() {
    let issuer = FakeIssuer::start().await;
    issuer.set_mode(TokenMode::Slow(Duration::from_secs(5)));
    let (home, _tokens) = seeded_home(&issuer, -1);
    let mut server = ServerProcess::start_with(
        home.path(),
        &[],
        &[("AUTH_APP_SERVER_HTTP_TIMEOUT_MS", "300")],
    )
    .await;
    server.initialize().await;
    let status = server.status(POLL()).await;
    assert_eq!(status["state"], "degraded", "{status}");
    assert!(status.get("authToken").is_none(), "expired: {status}");
    assert!(
        status["refreshError"]["message"]
            .as_str()
            .unwrap()
            .contains("in time"),
        "{status}"
    );
}

#[tokio::test]
async fn permanent_codes_say_what_to_do() {
    for (mode, code, advice) in [
        (TokenMode::InvalidClient, "invalid_client", "will not help"),
        (TokenMode::InvalidScope, "invalid_scope", "scopes"),
    ] {
        let issuer = FakeIssuer::start().await;
        issuer.set_mode(mode);
        let (_home, _tokens, mut server) = expired_setup(&issuer).await;
        let status = server.status(POLL()).await;
        assert_eq!(status["state"], "needsLogin");
        assert_eq!(status["refreshError"]["code"], code);
        assert!(
            status["refreshError"]["message"]
                .as_str()
                .unwrap()
                .contains(advice),
            "{status}"
        );
    }
}

#[tokio::test]
async fn report_auth_failure_follows_the_spec_order() {
    let issuer = FakeIssuer::start().await;
    let (home, tokens) = seeded_home(&issuer, 3600);
    let mut server = ServerProcess::start_initialized(home.path()).await;
    let report = |params: Value| params;

    let answer = server
        .call("reportAuthFailure", report(json!({"status": 200})))
        .await;
    assert_eq!(answer["action"], "notAuthFailure");
    let answer = server
        .call(
            "reportAuthFailure",
            report(json!({"status": 403, "body": "<html>Access denied</html>"})),
        )
        .await;
    assert_eq!(answer["action"], "notAuthFailure");
    let answer = server
        .call(
            "reportAuthFailure",
            report(
                json!({"status": 403, "wwwAuthenticate": "Bearer error=\"insufficient_scope\""}),
            ),
        )
        .await;
    assert_eq!(answer["action"], "insufficientScope");
    let answer = server
        .call(
            "reportAuthFailure",
            report(json!({"status": 401, "rejectedToken": "at-older"})),
        )
        .await;
    assert_eq!(answer["action"], "alreadyRotated");
    assert_eq!(answer["authToken"], tokens.access_token);
    assert_eq!(issuer.token_hits(), 0);

    // The current token rejected: refreshed, fresh or not.
    let answer = server
        .call(
            "reportAuthFailure",
            report(json!({"status": 401, "rejectedToken": tokens.access_token})),
        )
        .await;
    assert_eq!(answer["action"], "refreshed");
    assert_ne!(answer["authToken"], tokens.access_token);
    let rotated = answer["authToken"].clone();
    // The same stale report again (another client): already rotated, no new request.
    let answer = server
        .call("reportAuthFailure", report(json!({"status": 403, "body": "{\"type\":\"authentication_error\"}", "rejectedToken": tokens.access_token})))
        .await;
    assert_eq!(answer["action"], "alreadyRotated");
    assert_eq!(answer["authToken"], rotated);
    assert_eq!(issuer.refresh_hits(), 1);

    let flaky = FakeIssuer::start().await;
    flaky.set_mode(TokenMode::ServiceUnavailable);
    let (_home3, _tokens3, mut third) = stale_setup(&flaky).await;
    let answer = third
        .call(
            "reportAuthFailure",
            report(json!({"status": 401, "wwwAuthenticate": "Bearer error=\"invalid_token\""})),
        )
        .await;
    assert_eq!(answer["action"], "retryLater");
    assert_eq!(answer["refreshError"]["kind"], "transient");

    let permanent = FakeIssuer::start().await;
    permanent.set_mode(TokenMode::InvalidGrant);
    let (_home2, tokens2, mut other) = expired_setup(&permanent).await;
    let answer = other
        .call(
            "reportAuthFailure",
            json!({"status": 401, "rejectedToken": tokens2.access_token}),
        )
        .await;
    assert_eq!(answer["action"], "needsLogin");
    assert_eq!(answer["state"], "needsLogin");
    let answer = other
        .call("reportAuthFailure", json!({"status": 401}))
        .await;
    assert_eq!(answer["action"], "needsLogin", "poisoned: no new request");
    assert_eq!(permanent.refresh_hits(), 1);

    other
        .call(
            "login",
            json!({"type": "apiKey", "apiKey": "sk-e2e-0123456789abcdef"}),
        )
        .await;
    let answer = other
        .call("reportAuthFailure", json!({"status": 401}))
        .await;
    assert_eq!(answer["action"], "apiKeyRejected");
    assert!(answer["hint"].as_str().unwrap().contains("revoked"));
    other.call("logout", json!({})).await;
    assert_eq!(
        other
            .call("reportAuthFailure", json!({"status": 401}))
            .await["action"],
        "needsLogin"
    );
}

#[tokio::test]
async fn trace_logs_of_refreshes_carry_no_token() {
    let issuer = FakeIssuer::start().await;
    issuer.set_mode(TokenMode::Sequence(vec![
        TokenMode::ServiceUnavailable,
        TokenMode::Ok,
    ]));
    let (home, tokens) = seeded_home(&issuer, -1);
    let mut server = ServerProcess::start_with(home.path(), &[], &[("RUST_LOG", "trace")]).await;
    server.initialize().await;
    let fresh = server
        .poll_until(|s| s["state"] == "active" && s["authToken"] != tokens.access_token.as_str())
        .await;
    server
        .call(
            "reportAuthFailure",
            json!({"status": 401, "rejectedToken": fresh["authToken"]}),
        )
        .await;
    server.call("logout", json!({})).await;
    let stderr = server.stderr();
    server.finish().await;
    assert!(
        stderr.contains("TRACE") || stderr.contains("DEBUG"),
        "trace logging is on"
    );
    for secret in [
        &tokens.access_token,
        &tokens.refresh_token,
        &tokens.id_token,
    ] {
        assert!(!stderr.contains(secret.as_str()), "leaked {secret}");
    }
    // No token the issuer ever minted appears (they all start with at-/rt-).
    assert!(
        !stderr.contains("at-0-") && !stderr.contains("rt-0-"),
        "{stderr}"
    );
}

#[tokio::test]
async fn openid_discovery_is_the_fallback_and_resource_is_sent_when_configured() {
    let issuer = FakeIssuer::start_with(auth_app_server_tests::IssuerOptions {
        rfc8414: false,
        ..Default::default()
    })
    .await;
    let (home, _tokens) = seeded_home(&issuer, -1);
    let config = format!(
        "[provider]\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nresource = \"https://api.example.com\"\n",
        issuer.url()
    );
    std::fs::write(home.path().join("config.toml"), config).unwrap();
    let mut server = ServerProcess::start_initialized(home.path()).await;
    assert_eq!(server.status(POLL()).await["state"], "active");
    assert_eq!(issuer.hits("/.well-known/oauth-authorization-server"), 1);
    assert_eq!(issuer.hits("/.well-known/openid-configuration"), 1);
    assert_eq!(
        issuer.token_requests()[0].form["resource"],
        "https://api.example.com"
    );
}

#[tokio::test]
async fn without_a_configuration_credentials_refresh_and_revoke_at_their_recorded_issuer() {
    let issuer = FakeIssuer::start().await;
    let (home, tokens) = seeded_home(&issuer, -1);
    std::fs::remove_file(home.path().join("config.toml")).unwrap();
    let mut server = ServerProcess::start_initialized(home.path()).await;
    let status = server.status(POLL()).await;
    assert_eq!(status["state"], "active", "{status}");
    assert_ne!(status["authToken"], tokens.access_token.as_str());
    assert_eq!(issuer.refresh_hits(), 1);
    assert_eq!(issuer.token_requests()[0].form["client_id"], CLIENT_ID);
    let rotated = read_auth(home.path())["tokens"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let result = server.call("logout", json!({})).await;
    assert_eq!(result, json!({"revoked": true}), "{}", server.stderr());
    assert_eq!(issuer.revoked_tokens(), vec![rotated]);
}

#[tokio::test]
async fn a_configured_provider_that_differs_never_receives_the_refresh_token() {
    let theirs = FakeIssuer::start().await;
    let configured = FakeIssuer::start().await;
    let (home, _tokens) = seeded_home(&theirs, -1);
    configured.write_config(home.path());
    let mut server = ServerProcess::start_initialized(home.path()).await;
    let status = server.status(POLL()).await;
    assert_eq!(status["state"], "needsLogin", "{status}");
    assert!(status.get("authToken").is_none());
    let result = server.call("logout", json!({})).await;
    assert_eq!(result["revoked"], false, "{result}");
    assert!(
        result["reason"]
            .as_str()
            .unwrap()
            .contains("another provider"),
        "{result}"
    );
    for issuer in [&theirs, &configured] {
        assert_eq!(issuer.token_hits(), 0);
        assert!(issuer.revoked_tokens().is_empty());
    }
}

#[tokio::test]
async fn terminal_commands_without_flags_use_the_recorded_issuer() {
    // As after `login --device --issuer … --client-id …` with no config.toml.
    let issuer = FakeIssuer::start().await;
    let (home, tokens) = seeded_home(&issuer, -1);
    std::fs::remove_file(home.path().join("config.toml")).unwrap();
    let run = |args| auth_app_server_tests::run_command(home.path(), args, &[], "");
    let token = run(&["token"]).await;
    assert_eq!(token.status.code(), Some(0), "{token:?}");
    let printed = String::from_utf8(token.stdout).unwrap();
    assert_eq!(
        printed.trim(),
        read_auth(home.path())["tokens"]["access_token"]
    );
    assert_ne!(printed.trim(), tokens.access_token);
    let logout = run(&["logout"]).await;
    assert_eq!(logout.status.code(), Some(0), "{logout:?}");
    assert!(
        String::from_utf8_lossy(&logout.stderr).contains("revoked at the provider"),
        "{logout:?}"
    );
    assert_eq!(issuer.revoked_tokens().len(), 1);
}

/// SHA-256 of `token`, in hex, as `auth.json` records fingerprints.
fn fingerprint(token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn a_rejected_token_without_a_refresh_token_is_dead_for_every_poll_and_process() {
    let issuer = FakeIssuer::start().await;
    let (home, tokens) = seeded_home(&issuer, 3600);
    let mut file = read_auth(home.path());
    file["tokens"]
        .as_object_mut()
        .unwrap()
        .remove("refresh_token");
    std::fs::write(home.path().join("auth.json"), file.to_string()).unwrap();
    let mut server = ServerProcess::start_initialized(home.path()).await;
    let mut other = ServerProcess::start_initialized(home.path()).await;
    let status = server.status(POLL()).await;
    assert_eq!(status["state"], "active");
    assert_eq!(status["authToken"], tokens.access_token);

    // Not the current token: nothing dies.
    let answer = server
        .call(
            "reportAuthFailure",
            json!({"status": 401, "rejectedToken": "at-older"}),
        )
        .await;
    assert_eq!(answer["action"], "alreadyRotated");
    assert_eq!(answer["state"], "active");

    let answer = server
        .call(
            "reportAuthFailure",
            json!({"status": 401, "rejectedToken": tokens.access_token}),
        )
        .await;
    assert_eq!(answer["action"], "needsLogin", "{answer}");
    assert_eq!(answer["state"], "needsLogin", "{answer}");
    assert!(answer.get("authToken").is_none(), "{answer}");
    assert_eq!(answer["refreshError"]["kind"], "permanent");
    assert_eq!(
        server.notification("authStatusChanged").await,
        json!({"authMethod": "oauth", "state": "needsLogin", "credential": "default"})
    );
    for _ in 0..20 {
        let status = server.status(POLL()).await;
        assert_eq!(status["state"], "needsLogin");
        assert!(status.get("authToken").is_none(), "{status}");
    }
    let failure = &read_auth(home.path())["refresh_failure"];
    assert_eq!(
        failure["refresh_token_sha256"],
        fingerprint(&tokens.access_token)
    );

    let status = other.status(POLL()).await;
    assert_eq!(status["state"], "needsLogin", "another process agrees");
    assert!(status.get("authToken").is_none(), "{status}");
    server.finish().await;
    other.finish().await;
    let mut restarted = ServerProcess::start_initialized(home.path()).await;
    let status = restarted.status(POLL()).await;
    assert_eq!(status["state"], "needsLogin", "a restart agrees");
    assert!(status.get("authToken").is_none(), "{status}");
    assert_eq!(
        restarted
            .call("reportAuthFailure", json!({"status": 401}))
            .await["action"],
        "needsLogin"
    );
    assert_eq!(issuer.token_hits(), 0, "nothing to refresh, nothing sent");
}

/// A refresh whose write fails (here the file size limit, as a full disk would) has already
/// rotated the refresh token at the provider: the new tokens are used from memory, nothing is
/// refreshed again, the file keeps the previous credentials whole, and once writes work the
/// next request stores the new tokens (the rotated-out refresh token never stays on disk).
#[tokio::test]
async fn rotated_tokens_whose_write_failed_are_stored_once_writes_work_again() {
    let issuer = FakeIssuer::start().await;
    let (home, tokens, mut server) = expired_setup(&issuer).await;
    server.limit_file_size(16);
    let status = server.status(POLL()).await;
    assert_eq!(status["state"], "active", "{status}");
    let new_access = status["authToken"].as_str().expect("a token").to_owned();
    assert_ne!(new_access, tokens.access_token);
    let stored = read_auth(home.path());
    assert_eq!(stored["tokens"]["refresh_token"], tokens.refresh_token);
    assert_eq!(stored["tokens"]["access_token"], tokens.access_token);
    for _ in 0..50 {
        assert_eq!(
            server.status(POLL()).await["authToken"],
            new_access.as_str()
        );
    }
    assert_eq!(issuer.refresh_hits(), 1);
    assert!(server.stderr().contains("cannot store the refresh outcome"));
    // A failed try at storing them pauses the tries (1 s), instead of one (and the
    // cross-process lock) per request: 50 polls make a few tries, not 50.
    let tries = server.stderr().matches("is still not stored").count();
    assert!(tries < 10, "{tries} tries for 50 polls");

    server.limit_file_size(1024 * 1024);
    let new_refresh = issuer.current_refresh_token(&tokens.refresh_token).unwrap();
    server
        .poll_until(|_| read_auth(home.path())["tokens"]["refresh_token"] == new_refresh.as_str())
        .await;
    let stored = read_auth(home.path());
    assert_eq!(stored["tokens"]["access_token"], new_access.as_str());
    assert_eq!(stored["x_other_tool"], json!({"keep": true}));
    assert_eq!(issuer.refresh_hits(), 1);
}

/// Unix milliseconds now.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn a_token_whose_answer_took_seconds_is_never_handed_out_past_its_real_expiry() {
    // 4 s tokens, the refresh's answer taking 3 s: counted from its arrival, the token would
    // seem to live until about 7 s after the request, 3 s past the provider's expiry.
    let issuer = FakeIssuer::start_with(auth_app_server_tests::IssuerOptions {
        expires_in: 4,
        ..Default::default()
    })
    .await;
    issuer.set_mode(TokenMode::Sequence(vec![
        TokenMode::Slow(Duration::from_secs(3)),
        TokenMode::Ok,
    ]));
    let (home, tokens, mut server) = stale_setup(&issuer).await;

    // Starts the refresh; the old token still works and is handed out meanwhile.
    let status = server.status(POLL()).await;
    assert_eq!(status["authToken"], tokens.access_token, "{status}");
    let stored_token = || read_auth(home.path())["tokens"]["access_token"].clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while stored_token() == tokens.access_token {
        assert!(std::time::Instant::now() < deadline, "never stored");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let slow_token = stored_token();
    // The provider's expiry: 4 s from when it received the request (the latest its clock
    // can have started).
    let received = &issuer.token_requests()[0];
    let real_expiry_ms = now_ms() - received.at.elapsed().as_millis() as i64 + 4_000;
    let expires_at = read_auth(home.path())["tokens"]["expires_at"]
        .as_i64()
        .unwrap();

    // Just before the real expiry, at or past the stored one: no token, never the one the
    // provider is about to refuse.
    let poll_at_ms = (expires_at * 1000)
        .max(real_expiry_ms - 100)
        .min(real_expiry_ms);
    tokio::time::sleep(Duration::from_millis((poll_at_ms - now_ms()).max(0) as u64)).await;
    let plain = server.status(json!({"includeToken": true})).await;
    assert_ne!(
        plain["authToken"], slow_token,
        "the expired token was handed out: {plain}"
    );
    assert!(plain.get("authToken").is_none(), "{plain}");
    assert!(
        expires_at * 1000 <= real_expiry_ms,
        "stored expiry {expires_at} is after the provider's ({real_expiry_ms} ms): counted from the answer, not the request"
    );
    assert_eq!(
        expires_at
            - read_auth(home.path())["tokens"]["issued_at"]
                .as_i64()
                .unwrap(),
        4,
        "issued_at is the send time too"
    );

    // A refreshing poll waits for a new token (answered at once now).
    let status = server.status(POLL()).await;
    assert_eq!(status["state"], "active", "{status}");
    assert_ne!(status["authToken"], slow_token, "{status}");
    assert_ne!(status["authToken"], tokens.access_token, "{status}");
    assert_eq!(status["authToken"], stored_token());
    assert_eq!(issuer.refresh_hits(), 2);
}

/// A home whose `auth.json` holds the given advisory members (the tokens' expiry `secs` away).
fn seed_with_advisory(
    home: &std::path::Path,
    issuer: &FakeIssuer,
    tokens: &IssuedTokens,
    secs: i64,
    members: Value,
    token_members: Value,
) {
    seed_oauth_home(home, issuer, tokens, now() + secs);
    let path = home.join("auth.json");
    let mut file: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for (name, value) in members.as_object().unwrap() {
        file[name] = value.clone();
    }
    for (name, value) in token_members.as_object().unwrap() {
        file["tokens"][name] = value.clone();
    }
    std::fs::write(&path, file.to_string()).unwrap();
}

#[tokio::test]
async fn a_recorded_backoff_far_ahead_waits_at_most_300_s() {
    let issuer = FakeIssuer::start().await;
    let home = tempfile::tempdir().unwrap();
    let tokens = issuer.issue_grant(3600);
    let backoff = json!({"refresh_token_sha256": fingerprint(&tokens.refresh_token),
        "retry_at": i64::MAX, "failures": 3, "message": "the provider failed (503); will retry"});
    seed_with_advisory(
        home.path(),
        &issuer,
        &tokens,
        60,
        json!({ "refresh_backoff": backoff }),
        json!({}),
    );
    let mut server = ServerProcess::start_initialized(home.path()).await;
    let status = server.status(POLL()).await;
    assert_eq!(status["state"], "degraded", "{status}");
    assert_eq!(status["authToken"], tokens.access_token.as_str());
    let wait = status["refreshError"]["retryAfterSecs"].as_u64().unwrap();
    assert!((299..=300).contains(&wait), "{status}");
    assert_eq!(issuer.refresh_hits(), 0, "inside the (clamped) window");
}

#[tokio::test]
async fn ill_typed_advisory_members_are_ignored_with_a_warning_not_fatal() {
    let issuer = FakeIssuer::start().await;
    let home = tempfile::tempdir().unwrap();
    let tokens = issuer.issue_grant(3600);
    seed_with_advisory(
        home.path(),
        &issuer,
        &tokens,
        -1,
        json!({ "refresh_backoff": "soon" }),
        json!({ "issued_at": "yesterday", "refresh_cause": 7 }),
    );
    let mut server = ServerProcess::start_initialized(home.path()).await;
    let status = server.status(json!({"includeToken": true})).await;
    assert_eq!(status["state"], "active", "{status}");
    assert!(status.get("refreshError").is_none(), "{status}");

    // The expired token is refreshed as if the members were absent, and the rewrite records
    // this server's own advisory members; other tools' members stay.
    let status = server.status(POLL()).await;
    assert_eq!(status["state"], "active", "{status}");
    assert_eq!(issuer.refresh_hits(), 1);
    let stored = read_auth(home.path());
    assert!(stored["tokens"]["issued_at"].is_i64(), "{stored}");
    assert!(stored["tokens"].get("refresh_cause").is_none(), "{stored}");
    assert!(stored.get("refresh_backoff").is_none(), "{stored}");
    assert_eq!(stored["x_other_tool"], json!({"keep": true}));
    assert_eq!(stored["tokens"]["x_token_note"], "kept");

    let log = server.stderr();
    assert!(
        log.contains("WARN")
            && log.contains(
                "ill-typed advisory members (refresh_backoff, tokens.issued_at, tokens.refresh_cause): ignored"
            ),
        "{log}"
    );
    assert!(!log.contains(&tokens.access_token), "{log}");
}
