//! `[storage] backend = "keyring" | "auto"` end to end, against a real Secret Service
//! (gnome-keyring-daemon on a private session bus, see `auth_app_server_tests::keyring`): no
//! secret in any file under the home, two processes rotating once, poison across a restart,
//! logout deleting the item, the move between the file and the keyring, `auto` without a bus,
//! a bus that never answers, and a keyring that stops answering in the middle of a refresh.

use std::path::Path;
use std::time::Duration;

use auth_app_server_tests::keyring::{NoBus, SecretService, SilentBus, files_containing};
use auth_app_server_tests::{
    FakeIssuer, Gate, IssuedTokens, ServerProcess, TokenMode, browser_sign_in, now, refresh_poll,
    run_command, seeded_home, two_processes_refresh_once,
};
use serde_json::{Value, json};

const KEYRING: [&str; 2] = ["--storage", "keyring"];

async fn start(home: &Path, keyring: &SecretService, args: &[&str]) -> ServerProcess {
    let mut server = ServerProcess::start_with(home, args, &keyring.env()).await;
    server.initialize().await;
    server
}

/// `login` with tokens the host obtained, whose access token has expired: the next refresh
/// poll refreshes.
async fn sign_in_with_expired_tokens(server: &mut ServerProcess, tokens: &IssuedTokens) {
    server
        .call(
            "login",
            json!({"type": "tokens", "accessToken": tokens.access_token,
                   "refreshToken": tokens.refresh_token, "idToken": tokens.id_token,
                   "expiresAt": now() - 5}),
        )
        .await;
}

fn assert_no_secret_in_files(home: &Path, secrets: &[&str]) {
    let found = files_containing(home, secrets);
    assert!(
        found.is_empty(),
        "secrets in files under the home: {:?}",
        found.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn api_key_and_oauth_logins_keep_no_secret_in_any_file_under_the_home() {
    let keyring = SecretService::start();
    let issuer = FakeIssuer::start().await;
    let home = tempfile::tempdir().unwrap();
    issuer.write_config(home.path());
    let mut server = start(home.path(), &keyring, &KEYRING).await;
    assert_eq!(
        server.status(json!({})).await,
        json!({"authMethod": null, "state": "signedOut", "storage": "keyring"})
    );

    let key = "sk-keyring-test-0123456789abcdef";
    server
        .call("login", json!({"type": "apiKey", "apiKey": key}))
        .await;
    let status = server.status(json!({"includeToken": true})).await;
    assert_eq!(status["authToken"], key);
    assert_eq!(status["storage"], "keyring");
    assert_eq!(keyring.document(home.path())["api_key"], key);
    assert!(!home.path().join("auth.json").exists());
    assert_no_secret_in_files(home.path(), &[key]);

    // OAuth: tokens stored by a sign-in, then rotated by a refresh.
    let tokens = issuer.issue_grant(3600);
    sign_in_with_expired_tokens(&mut server, &tokens).await;
    let status = server.status(refresh_poll()).await;
    assert_eq!(status["state"], "active", "{status}");
    let rotated = keyring.document(home.path());
    let new_access = rotated["tokens"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let new_refresh = rotated["tokens"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(status["authToken"], new_access.as_str());
    assert_ne!(new_refresh, tokens.refresh_token);
    assert_eq!(issuer.refresh_hits(), 1);
    assert_no_secret_in_files(
        home.path(),
        &[
            key,
            &tokens.access_token,
            &tokens.refresh_token,
            &tokens.id_token,
            &new_access,
            &new_refresh,
        ],
    );
    // Nor in the log.
    let stderr = server.stderr();
    for secret in [key, new_access.as_str(), new_refresh.as_str()] {
        assert!(!stderr.contains(secret), "a secret in the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_home_rotate_once_and_never_reuse_a_refresh_token() {
    let keyring = SecretService::start();
    let issuer = FakeIssuer::start().await;
    // Slow enough that the second process asks while the first holds the lock.
    issuer.set_mode(TokenMode::Slow(Duration::from_millis(300)));
    let (home, tokens) = seeded_home(&issuer, -1);
    // The first start moves auth.json into the keyring.
    let mut a = start(home.path(), &keyring, &KEYRING).await;
    let mut b = start(home.path(), &keyring, &KEYRING).await;
    assert!(!home.path().join("auth.json").exists());
    two_processes_refresh_once(&mut a, &mut b, &issuer).await;
    let stored = keyring.document(home.path());
    assert_eq!(
        stored["tokens"]["refresh_token"].as_str(),
        issuer
            .current_refresh_token(&tokens.refresh_token)
            .as_deref(),
        "the keyring holds the grant's current refresh token"
    );
    assert!(stored.get("refresh_failure").is_none(), "{stored}");
    let refreshes: Vec<_> = issuer
        .token_requests()
        .into_iter()
        .filter_map(|r| r.form.get("refresh_token").cloned())
        .collect();
    assert_eq!(
        refreshes,
        std::slice::from_ref(&tokens.refresh_token),
        "no reuse"
    );
}

#[tokio::test]
async fn poison_survives_a_restart_and_a_failed_refresh_keeps_the_credentials() {
    let keyring = SecretService::start();
    let issuer = FakeIssuer::start().await;
    issuer.set_mode(TokenMode::InvalidGrant);
    let (home, tokens) = seeded_home(&issuer, -1);
    let mut server = start(home.path(), &keyring, &KEYRING).await;
    for _ in 0..50 {
        assert_eq!(server.status(refresh_poll()).await["state"], "needsLogin");
    }
    assert_eq!(issuer.refresh_hits(), 1);
    // Never blanked: the item keeps the tokens, with the failure recorded beside them.
    let stored = keyring.document(home.path());
    assert_eq!(stored["tokens"]["refresh_token"], tokens.refresh_token);
    assert_eq!(stored["refresh_failure"]["reason"], "invalid_grant");
    server.finish().await;

    let mut restarted = start(home.path(), &keyring, &KEYRING).await;
    for _ in 0..20 {
        let status = restarted.status(refresh_poll()).await;
        assert_eq!(status["state"], "needsLogin", "{status}");
        assert_eq!(status["storage"], "keyring");
    }
    assert_eq!(issuer.refresh_hits(), 1, "the poison survives a restart");
}

#[tokio::test]
async fn logout_removes_the_item_and_the_marker() {
    let keyring = SecretService::start();
    let home = tempfile::tempdir().unwrap();
    let mut server = start(home.path(), &keyring, &KEYRING).await;
    server
        .call(
            "login",
            json!({"type": "apiKey", "apiKey": "sk-to-be-removed-42"}),
        )
        .await;
    assert!(keyring.lookup(home.path()).is_some());
    assert!(home.path().join("auth.storage").exists());
    server.call("logout", json!({})).await;
    assert_eq!(keyring.lookup(home.path()), None, "the item is deleted");
    assert!(!home.path().join("auth.storage").exists());
    assert_eq!(server.status(json!({})).await["state"], "signedOut");
}

#[tokio::test]
async fn another_process_s_login_is_picked_up_through_the_marker() {
    let keyring = SecretService::start();
    let home = tempfile::tempdir().unwrap();
    let mut watcher = start(home.path(), &keyring, &KEYRING).await;
    assert_eq!(watcher.status(json!({})).await["state"], "signedOut");
    let mut other = start(home.path(), &keyring, &KEYRING).await;
    other
        .call(
            "login",
            json!({"type": "apiKey", "apiKey": "sk-from-the-other-one"}),
        )
        .await;
    let status = watcher.status(json!({"includeToken": true})).await;
    assert_eq!(status["authToken"], "sk-from-the-other-one", "{status}");
    watcher.announced("active").await;
}

#[tokio::test]
async fn switching_from_the_file_to_the_keyring_and_back_moves_the_credentials() {
    let keyring = SecretService::start();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("auth.json"),
        json!({"version": 1, "auth_mode": "api_key", "api_key": "sk-moving-key", "x_other": 1})
            .to_string(),
    )
    .unwrap();

    let mut server = start(home.path(), &keyring, &KEYRING).await;
    let status = server.status(json!({"includeToken": true})).await;
    assert_eq!(status["authToken"], "sk-moving-key");
    assert_eq!(status["storage"], "keyring");
    assert!(!home.path().join("auth.json").exists(), "moved, not copied");
    let moved = keyring.document(home.path());
    assert_eq!(moved["x_other"], 1, "the whole document moved: {moved}");
    assert!(server.stderr().contains("moved the credentials"));
    server.finish().await;

    let mut server = start(home.path(), &keyring, &["--storage", "file"]).await;
    let status = server.status(json!({"includeToken": true})).await;
    assert_eq!(status["authToken"], "sk-moving-key");
    assert_eq!(status["storage"], "file");
    let back: Value =
        serde_json::from_slice(&std::fs::read(home.path().join("auth.json")).unwrap()).unwrap();
    assert_eq!(back["api_key"], "sk-moving-key");
    assert_eq!(back["x_other"], 1);
    assert_eq!(keyring.lookup(home.path()), None, "the item is deleted");
    assert!(!home.path().join("auth.storage").exists());
}

/// A home whose keyring item holds key A (signed in with the keyring backend), then signed
/// in with key B and out again with the file backend while no session bus answered (so the
/// item could not be moved into the file at start, nor deleted).
async fn signed_out_with_the_file_while_the_keyring_was_away(keyring: &SecretService, home: &Path) {
    let mut server = start(home, keyring, &KEYRING).await;
    server
        .call(
            "login",
            json!({"type": "apiKey", "apiKey": "sk-key-a-in-the-item"}),
        )
        .await;
    server.finish().await;

    let no_bus = NoBus::new();
    let env = no_bus.env();
    let mut server = ServerProcess::start_with(home, &["--storage", "file"], &env).await;
    server.initialize().await;
    server
        .call(
            "login",
            json!({"type": "apiKey", "apiKey": "sk-key-b-in-the-file"}),
        )
        .await;
    server.call("logout", json!({})).await;
    assert_eq!(server.status(json!({})).await["state"], "signedOut");
    server.finish().await;

    assert!(!home.join("auth.json").exists());
    assert!(
        keyring
            .lookup(home)
            .unwrap()
            .contains("sk-key-a-in-the-item"),
        "the item could not be deleted while the keyring was away"
    );
    assert_no_secret_in_files(home, &["sk-key-a-in-the-item", "sk-key-b-in-the-file"]);
}

#[tokio::test]
async fn a_logout_with_the_file_backend_sticks_after_a_switch_from_the_keyring() {
    let keyring = SecretService::start();

    // The next start with the file backend, the keyring answering again: signed out, and the
    // stale item deleted (before, it was moved back into auth.json: key A active again).
    let home = tempfile::tempdir().unwrap();
    signed_out_with_the_file_while_the_keyring_was_away(&keyring, home.path()).await;
    let mut server = start(home.path(), &keyring, &["--storage", "file"]).await;
    let status = server.status(json!({"includeToken": true})).await;
    assert_eq!(status["state"], "signedOut", "{status}");
    assert!(!home.path().join("auth.json").exists());
    assert_eq!(
        keyring.lookup(home.path()),
        None,
        "the stale item is deleted"
    );
    assert!(!home.path().join("auth.storage").exists());
    assert!(
        server
            .stderr()
            .contains("deleted the OS keyring item of this folder")
    );
    server.finish().await;

    // The next start with the keyring backend instead: signed out too (the item is never
    // read as credentials), and the stale item deleted. A login then works as usual.
    let home = tempfile::tempdir().unwrap();
    signed_out_with_the_file_while_the_keyring_was_away(&keyring, home.path()).await;
    let mut server = start(home.path(), &keyring, &KEYRING).await;
    let status = server.status(json!({"includeToken": true})).await;
    assert_eq!(status["state"], "signedOut", "{status}");
    assert_eq!(
        keyring.lookup(home.path()),
        None,
        "the stale item is deleted"
    );
    assert!(!home.path().join("auth.storage").exists());
    server
        .call("login", json!({"type": "apiKey", "apiKey": "sk-key-c"}))
        .await;
    assert_eq!(keyring.document(home.path())["api_key"], "sk-key-c");
    server.finish().await;
    let mut server = start(home.path(), &keyring, &KEYRING).await;
    let status = server.status(json!({"includeToken": true})).await;
    assert_eq!(status["authToken"], "sk-key-c", "{status}");
}

#[tokio::test]
async fn a_keyring_backend_never_uses_an_item_the_file_backend_superseded() {
    // The keyring does not answer at the next start (its daemon suspended): the stale item
    // cannot be deleted; signed out all the same, and still once the keyring answers again.
    let keyring = SecretService::start();
    let home = tempfile::tempdir().unwrap();
    signed_out_with_the_file_while_the_keyring_was_away(&keyring, home.path()).await;
    keyring.suspend();
    let mut server = start(home.path(), &keyring, &KEYRING).await;
    let status = server.status(json!({"includeToken": true})).await;
    assert_eq!(status["state"], "signedOut", "{status}");
    let log = server.stderr();
    assert!(log.contains("could not be deleted now"), "{log}");
    keyring.resume();
    let status = server.status(json!({"includeToken": true})).await;
    assert_eq!(status["state"], "signedOut", "{status}");
    assert!(
        keyring.lookup(home.path()).is_some(),
        "left while unreachable"
    );
    server.finish().await;
}

#[tokio::test]
async fn auto_uses_the_keyring_when_one_answers_and_says_so() {
    let keyring = SecretService::start();
    let home = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start_with(
        home.path(),
        &[],
        &[
            ("DBUS_SESSION_BUS_ADDRESS", keyring.address()),
            ("AUTH_APP_SERVER_STORAGE", "auto"),
        ],
    )
    .await;
    server.initialize().await;
    assert_eq!(server.status(json!({})).await["storage"], "keyring");
    let stderr = server.stderr();
    assert!(
        stderr.contains("WARN") && stderr.contains("the OS keyring answered"),
        "{stderr}"
    );
}

#[tokio::test]
async fn auto_without_a_session_bus_falls_back_to_the_file_and_says_so() {
    let home = tempfile::tempdir().unwrap();
    let no_bus = NoBus::new();
    let env = no_bus.env();
    let mut server = ServerProcess::start_with(home.path(), &["--storage", "auto"], &env).await;
    server.initialize().await;
    server
        .call(
            "login",
            json!({"type": "apiKey", "apiKey": "sk-in-the-file"}),
        )
        .await;
    let status = server.status(json!({})).await;
    assert_eq!(status["storage"], "file", "{status}");
    let stored: Value =
        serde_json::from_slice(&std::fs::read(home.path().join("auth.json")).unwrap()).unwrap();
    assert_eq!(stored["api_key"], "sk-in-the-file");
    let stderr = server.stderr();
    assert!(
        stderr.contains("WARN") && stderr.contains("no OS keyring answered"),
        "{stderr}"
    );

    // The command for people says it too.
    let output = run_command(
        home.path(),
        &["status", "--json", "--storage", "auto"],
        &env,
        "",
    )
    .await;
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["storage"], "file", "{json}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("no OS keyring answered"));
}

#[tokio::test]
async fn a_bus_that_never_answers_is_an_error_within_5_s_not_a_hang() {
    let bus = SilentBus::start();
    let home = tempfile::tempdir().unwrap();
    let env = [("DBUS_SESSION_BUS_ADDRESS", bus.address())];
    let mut server = ServerProcess::start_with(home.path(), &KEYRING, &env).await;
    server.initialize().await;

    let id = server.send_request("getAuthStatus", None).await;
    let answer = tokio::time::timeout(Duration::from_secs(5), server.response(id))
        .await
        .expect("getAuthStatus hung on a keyring that never answers");
    assert_eq!(answer["error"]["code"], -32011, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("did not answer within 2 s") && message.contains("--storage file"),
        "{message}"
    );

    let id = server
        .send_request(
            "login",
            Some(json!({"type": "apiKey", "apiKey": "sk-never-stored"})),
        )
        .await;
    let answer = tokio::time::timeout(Duration::from_secs(5), server.response(id))
        .await
        .expect("login hung on a keyring that never answers");
    assert!(answer.get("error").is_some(), "{answer}");
    assert_no_secret_in_files(home.path(), &["sk-never-stored"]);

    // The command for people ends too, with the exit code of unusable storage.
    let run = run_command(home.path(), &["token", "--storage", "keyring"], &env, "");
    let output = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the token command hung");
    assert_eq!(output.status.code(), Some(4), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("--storage file"));
}

/// The answer (result or error) to a refresh poll, which must come within `limit`.
async fn poll_within(server: &mut ServerProcess, limit: Duration) -> Value {
    let id = server
        .send_request("getAuthStatus", Some(refresh_poll()))
        .await;
    answer_within(server, id, limit).await
}

/// The answer to request `id`, which must come within `limit`.
async fn answer_within(server: &mut ServerProcess, id: u64, limit: Duration) -> Value {
    match tokio::time::timeout(limit, server.response(id)).await {
        Ok(answer) => answer,
        Err(_) => panic!(
            "no answer within {} s\nstderr:\n{}",
            limit.as_secs_f32(),
            server.stderr()
        ),
    }
}

/// (access token, refresh token) of a stored document, which must be complete: OAuth
/// credentials with their issuer, client and both tokens (never blanked, never deleted).
fn complete_tokens(document: &Value) -> (String, String) {
    assert_eq!(document["auth_mode"], "oauth", "{document}");
    assert!(document["issuer"].is_string() && document["client_id"].is_string());
    let token = |name: &str| {
        let token = document["tokens"][name].as_str().unwrap_or_default();
        assert!(!token.is_empty(), "no tokens.{name} in the item");
        token.to_owned()
    };
    (token("access_token"), token("refresh_token"))
}

/// The keyring stops answering (its daemon suspended) after the refresh token went to the
/// provider, which rotates it: the write of the new tokens times out. The poll still gets the
/// new token, within a bound; the item keeps the previous credentials whole; nothing refreshes
/// again while the keyring is away; once it answers, the next request stores the new tokens
/// (the old refresh token is dead, so losing them would lose the session), and a restarted
/// server goes on with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyring_that_stops_answering_mid_refresh_loses_neither_the_stored_nor_the_new_tokens() {
    let keyring = SecretService::start();
    let issuer = FakeIssuer::start().await;
    let home = tempfile::tempdir().unwrap();
    issuer.write_config(home.path());
    let mut server = start(home.path(), &keyring, &KEYRING).await;
    let tokens = issuer.issue_grant(3600);
    sign_in_with_expired_tokens(&mut server, &tokens).await;
    let signed_in = keyring.document(home.path());
    let old = (tokens.access_token.clone(), tokens.refresh_token.clone());
    assert_eq!(complete_tokens(&signed_in), old);

    // The refresh reads the item under the lock and sends the refresh token; while the
    // provider holds its answer, the keyring stops answering.
    let gate = Gate::new();
    issuer.set_mode(TokenMode::Held(gate.clone()));
    let id = server
        .send_request("getAuthStatus", Some(refresh_poll()))
        .await;
    tokio::time::timeout(Duration::from_secs(10), gate.held(1))
        .await
        .expect("the refresh never reached the provider");
    keyring.suspend();
    gate.open();
    let answer = answer_within(&mut server, id, Duration::from_secs(10)).await;
    let status = &answer["result"];
    let new_refresh = issuer.current_refresh_token(&tokens.refresh_token).unwrap();
    assert_ne!(new_refresh, tokens.refresh_token, "the provider rotated it");
    // The refresh succeeded: this process uses the new token, though it is not stored yet.
    assert_eq!(status["state"], "active", "{answer}");
    assert!(status.get("refreshError").is_none(), "{answer}");
    let new_access = status["authToken"].as_str().expect("a token").to_owned();
    assert_ne!(new_access, tokens.access_token);
    let stderr = server.stderr();
    assert!(
        stderr.contains("cannot store the refresh outcome")
            && stderr.contains("did not answer within 2 s")
            && stderr.contains("unlock the keyring")
            && stderr.contains("--storage file"),
        "the log says the write failed and what to do:\n{stderr}"
    );

    // While the keyring is away, polls answer at once (never waiting for it) with the new
    // token, and nothing reaches the provider again.
    for _ in 0..20 {
        let answer = poll_within(&mut server, Duration::from_millis(1500)).await;
        assert_eq!(answer["result"]["state"], "active", "{answer}");
        assert_eq!(answer["result"]["authToken"], new_access.as_str());
    }
    // Trying to store them while the keyring is still away fails, within the bound, and
    // is tried again later.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !server.stderr().contains("is still not stored") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no try at storing the new tokens failed\nstderr:\n{}",
            server.stderr()
        );
        let answer = poll_within(&mut server, Duration::from_millis(1500)).await;
        assert_eq!(answer["result"]["authToken"], new_access.as_str());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(issuer.refresh_hits(), 1, "no refresh storm");

    keyring.resume();
    // Never blanked, never deleted: the item holds whole credentials, the previous ones (or
    // the new ones, if a retry already stored them).
    let stored = complete_tokens(&keyring.document(home.path()));
    assert!(
        stored == old || stored == (new_access.clone(), new_refresh.clone()),
        "the item holds a mix of old and new tokens"
    );

    // The next requests store the new tokens.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let answer = poll_within(&mut server, Duration::from_secs(5)).await;
        assert_eq!(answer["result"]["authToken"], new_access.as_str());
        let document = keyring.document(home.path());
        if complete_tokens(&document) == (new_access.clone(), new_refresh.clone()) {
            assert!(document.get("refresh_failure").is_none(), "{document}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new tokens were never stored once the keyring answered again\nstderr:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(issuer.refresh_hits(), 1);
    server.finish().await;

    // A restarted server has only the item: it hands out the new token, and the stored
    // refresh token is the grant's live one (a rejected token is refreshed with it; the
    // rotated-out one is never sent again, which would revoke the grant).
    let mut restarted = start(home.path(), &keyring, &KEYRING).await;
    let status = restarted.status(refresh_poll()).await;
    assert_eq!(status["state"], "active", "{status}");
    assert_eq!(status["authToken"], new_access.as_str());
    let report = restarted
        .call("reportAuthFailure", json!({"status": 401}))
        .await;
    assert_eq!(report["action"], "refreshed", "{report}");
    assert_eq!(report["state"], "active", "{report}");
    let sent: Vec<_> = issuer
        .token_requests()
        .into_iter()
        .filter_map(|r| r.form.get("refresh_token").cloned())
        .collect();
    assert_eq!(sent, [tokens.refresh_token.clone(), new_refresh.clone()]);
    let latest = issuer.current_refresh_token(&tokens.refresh_token).unwrap();
    assert_eq!(
        complete_tokens(&keyring.document(home.path())).1,
        latest,
        "the keyring holds the grant's current refresh token"
    );
}

/// A refresh whose keyring calls hang (the daemon suspended) runs off the server's one
/// runtime thread: polls keep being answered at once with the token that still works, never
/// held for the keyring's 2 s bound. Once the keyring answers again, the next refresh stores.
#[tokio::test]
async fn polls_are_answered_while_a_refresh_waits_for_a_keyring_that_does_not_answer() {
    let keyring = SecretService::start();
    let issuer = FakeIssuer::start().await;
    // Still valid for two minutes: stale, so a refresh poll starts a refresh but gets the
    // current token without waiting for it.
    let (home, tokens) = seeded_home(&issuer, 120);
    let mut server = start(home.path(), &keyring, &KEYRING).await;
    let status = server.status(json!({"includeToken": true})).await;
    assert_eq!(status["authToken"], tokens.access_token, "{status}");
    assert!(
        !home.path().join("auth.json").exists(),
        "moved to the keyring"
    );
    assert_eq!(issuer.refresh_hits(), 0);

    keyring.suspend();
    // The refresh this poll starts blocks in the keyring (its re-read under the lock) for up
    // to 2 s; the poll itself (which waits at most 200 ms for a refresh of a token that still
    // works), and the ones after it, do not wait for that.
    for _ in 0..5 {
        let answer = poll_within(&mut server, Duration::from_millis(1500)).await;
        assert_eq!(answer["result"]["state"], "active", "{answer}");
        assert_eq!(
            answer["result"]["authToken"], tokens.access_token,
            "the token that still works"
        );
    }
    keyring.resume();
    let status = server
        .poll_until(|s| s["authToken"] != tokens.access_token.as_str())
        .await;
    assert_eq!(status["state"], "active", "{status}");
    assert_eq!(
        keyring.document(home.path())["tokens"]["access_token"],
        status["authToken"],
        "the refreshed tokens are in the keyring"
    );
    assert!(issuer.refresh_hits() >= 1);
}

/// A browser sign-in (PKCE, the loopback redirect, the code exchanged at the fake issuer)
/// with the keyring backend: its tokens are in the item and in no file under the home, and
/// another process on the home hands out the same token.
#[tokio::test]
async fn a_browser_sign_in_keeps_its_tokens_only_in_the_keyring() {
    let keyring = SecretService::start();
    let issuer = FakeIssuer::start().await;
    let home = tempfile::tempdir().unwrap();
    issuer.write_config(home.path());
    let mut server = start(home.path(), &keyring, &KEYRING).await;
    let started = server.call("login", json!({"type": "oauth"})).await;
    let (status, page) = browser_sign_in(started["authUrl"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{page}");
    let completed = server.notification("loginCompleted").await;
    assert_eq!(completed["success"], true, "{completed}");

    let status = server.status(json!({"includeToken": true})).await;
    assert_eq!(status["state"], "active", "{status}");
    assert_eq!(status["storage"], "keyring");
    let document = keyring.document(home.path());
    let (access, refresh) = complete_tokens(&document);
    assert_eq!(status["authToken"], access.as_str());
    assert_eq!(document["issuer"], issuer.url());
    assert!(!home.path().join("auth.json").exists());
    assert_no_secret_in_files(home.path(), &[&access, &refresh]);
    assert!(
        !server.stderr().contains(&access) && !server.stderr().contains(&refresh),
        "a token in the log"
    );

    let mut other = start(home.path(), &keyring, &KEYRING).await;
    let status = other.status(json!({"includeToken": true})).await;
    assert_eq!(status["authToken"], access.as_str(), "{status}");
}

/// The transient backoff is shared through the keyring item as through `auth.json`: after one
/// process's refresh meets a 503, another process on the home polls without a request, and
/// both report the same wait.
#[tokio::test]
async fn the_backoff_is_shared_through_the_keyring_item() {
    let keyring = SecretService::start();
    let issuer = FakeIssuer::start().await;
    issuer.set_mode(TokenMode::ServiceUnavailable);
    let (home, _tokens) = seeded_home(&issuer, -1);
    let mut a = start(home.path(), &keyring, &KEYRING).await;
    let status = a.status(refresh_poll()).await;
    assert_eq!(status["state"], "degraded", "{status}");
    assert!(
        status.get("authToken").is_none(),
        "expired, not refreshed: {status}"
    );
    assert_eq!(status["refreshError"]["kind"], "transient", "{status}");
    let hits = issuer.refresh_hits();
    assert!(hits >= 1);
    let backoff = &keyring.document(home.path())["refresh_backoff"];
    assert_eq!(backoff["failures"], 1, "{backoff}");

    let mut b = start(home.path(), &keyring, &KEYRING).await;
    for _ in 0..20 {
        let status = b.status(refresh_poll()).await;
        assert_eq!(status["refreshError"]["kind"], "transient", "{status}");
    }
    assert_eq!(
        issuer.refresh_hits(),
        hits,
        "the second process honours the backoff"
    );
    let wait_a = a.status(json!({})).await["refreshError"]["retryAfterSecs"].clone();
    let wait_b = b.status(json!({})).await["refreshError"]["retryAfterSecs"].clone();
    let (wa, wb) = (wait_a.as_u64().unwrap(), wait_b.as_u64().unwrap());
    assert!(wa.abs_diff(wb) <= 1, "one shared window: {wa} and {wb}");
}

/// A login and a logout whose keyring calls hang (the daemon suspended: each call gives up at
/// its 2 s bound) hold up no poll: 100 polls during each answer at once from memory with the
/// key that is stored, and the stuck request fails on its own.
#[tokio::test]
async fn polls_during_a_login_or_logout_stuck_in_the_keyring_answer_at_once() {
    let keyring = SecretService::start();
    let home = tempfile::tempdir().unwrap();
    let mut server = start(home.path(), &keyring, &KEYRING).await;
    let key = "sk-keyring-before-0123456789";
    server
        .call("login", json!({"type": "apiKey", "apiKey": key}))
        .await;

    keyring.suspend();
    for (method, params) in [
        (
            "login",
            json!({"type": "apiKey", "apiKey": "sk-keyring-after-0123456789"}),
        ),
        ("logout", json!({})),
    ] {
        let sent = std::time::Instant::now();
        let id = server.send_request(method, Some(params)).await;
        for n in 0..100 {
            let asked = std::time::Instant::now();
            let status = server.status(refresh_poll()).await;
            let took = asked.elapsed();
            assert!(
                took < Duration::from_millis(100),
                "{method}: poll {n} waited {took:?} for the keyring"
            );
            assert_eq!(status["authToken"], key, "{method}: poll {n}: {status}");
        }
        let polls_took = sent.elapsed();
        let answer = server.response(id).await;
        let answered_after = sent.elapsed();
        assert_eq!(answer["error"]["code"], -32013, "{method}: {answer}");
        assert!(
            polls_took < answered_after && answered_after >= Duration::from_millis(1900),
            "{method}: the polls ({polls_took:?}) ran while it was stuck ({answered_after:?})"
        );
    }
    keyring.resume();
    assert_eq!(keyring.document(home.path())["api_key"], key);
    assert_eq!(
        server.status(json!({"includeToken": true})).await["authToken"],
        key
    );
}

/// Contract version 3: with the keyring backend, each named credential is an item of its own
/// (attributes `service`, `home`, `credential`) beside the default one, with no secret in any
/// file; writing or deleting one never touches the others.
#[tokio::test]
async fn each_named_credential_is_an_item_of_its_own_and_a_logout_deletes_only_its_own() {
    let keyring = SecretService::start();
    let home = tempfile::tempdir().unwrap();
    let mut server = start(home.path(), &keyring, &KEYRING).await;
    let keys = [
        ("default", "sk-default-0123456789abcdef"),
        ("work", "sk-work-0123456789abcdef"),
        ("home.personal", "sk-personal-0123456789abcdef"),
    ];
    for (name, key) in keys {
        let answer = server
            .call(
                "login",
                json!({"type": "apiKey", "apiKey": key, "credential": name}),
            )
            .await;
        assert_eq!(answer, json!({"type": "apiKey", "warnings": []}));
    }
    // The default item was written first: the named ones did not replace it, nor each other
    // (`secret-tool lookup` by the default's attributes could find any of them: the server
    // tells the default one apart).
    let default = server.status(json!({"includeToken": true})).await;
    assert_eq!(default["authToken"], keys[0].1, "{default}");
    for (name, key) in &keys[1..] {
        let item = keyring.lookup_credential(home.path(), name).unwrap();
        let item: Value = serde_json::from_str(&item).unwrap();
        assert_eq!(item["api_key"], *key, "{name}");
        assert!(
            home.path()
                .join(format!("credentials/{name}.storage"))
                .is_file()
        );
        assert!(
            !home
                .path()
                .join(format!("credentials/{name}.json"))
                .exists()
        );
    }
    assert_no_secret_in_files(home.path(), &keys.map(|(_, key)| key));

    // Rewriting the default item keeps the named ones.
    server
        .call(
            "login",
            json!({"type": "apiKey", "apiKey": "sk-default-second-0123456789"}),
        )
        .await;
    for (name, key) in &keys[1..] {
        let status = server
            .status(json!({"credential": name, "includeToken": true}))
            .await;
        assert_eq!(status["authToken"], *key, "{name}: {status}");
        assert_eq!(status["storage"], "keyring");
    }

    // A logout of one named credential deletes its item and marker only.
    assert_eq!(
        server.call("logout", json!({"credential": "work"})).await,
        json!({})
    );
    assert_eq!(keyring.lookup_credential(home.path(), "work"), None);
    assert!(!home.path().join("credentials/work.storage").exists());
    assert!(!home.path().join("credentials/work.json.lock").exists());
    assert!(
        keyring
            .lookup_credential(home.path(), "home.personal")
            .is_some()
    );
    let default = server.status(json!({"includeToken": true})).await;
    assert_eq!(default["authToken"], "sk-default-second-0123456789");

    // A logout of the default one deletes its item only: the search by its attributes finds
    // the named items too, which stay.
    assert_eq!(server.call("logout", json!({})).await, json!({}));
    assert_eq!(
        server.status(json!({})).await,
        json!({"authMethod": null, "state": "signedOut", "storage": "keyring"})
    );
    let personal = server
        .status(json!({"credential": "home.personal", "includeToken": true}))
        .await;
    assert_eq!(personal["authToken"], keys[2].1, "{personal}");
    assert!(
        keyring
            .lookup_credential(home.path(), "home.personal")
            .is_some()
    );

    // Another process sees the named credential through its marker.
    let mut other = start(home.path(), &keyring, &KEYRING).await;
    let listed = other.call("listCredentials", json!({})).await;
    assert_eq!(
        listed,
        json!({"credentials": [
            {"credential": "home.personal", "authMethod": "apiKey", "state": "active", "storage": "keyring"}
        ]})
    );
}
