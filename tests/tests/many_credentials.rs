//! Contract version 3 (many credentials in one server) end to end: the real binary over pipes,
//! several fake issuers over real HTTP (one slow behind a gate, one failing), several server
//! processes on one home. Every guarantee holds per credential, independently: a refresh
//! contacts only its credential's issuer and rewrites only its file; one credential's poison,
//! slowness, lock, logout or corrupt file never touches another; bad names, `provider` objects
//! and `[credentials.NAME]` tables are refused naming what is wrong and store nothing.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use auth_app_server_tests::issuer::CLIENT_ID;
use auth_app_server_tests::{
    FakeIssuer, Gate, IssuedTokens, RegistrationMode, ServerProcess, TokenMode, browser_sign_in,
    mkfifo, now, query_param, read_auth,
};
use serde_json::{Value, json};

/// The rule every credential name follows, as error messages quote it.
const NAME_RULE: &str = "^[a-z0-9][a-z0-9._-]{0,63}$";
const KEY: &str = "sk-default-0123456789abcdef";

fn credentials_dir(home: &Path) -> PathBuf {
    home.join("credentials")
}

/// `<home>/credentials/NAME.json`.
fn named_path(home: &Path, name: &str) -> PathBuf {
    credentials_dir(home).join(format!("{name}.json"))
}

fn read_named(home: &Path, name: &str) -> Value {
    let path = named_path(home, name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Writes `credentials/NAME.json` as the server writes it: signed in at `issuer` with
/// `tokens`, the access token expiring at `expires_at` (the folder created 0700).
fn seed_named(
    home: &Path,
    name: &str,
    issuer: &FakeIssuer,
    tokens: &IssuedTokens,
    expires_at: i64,
) {
    let folder = credentials_dir(home);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700)).unwrap();
    let file = json!({
        "version": 1, "auth_mode": "oauth", "issuer": issuer.url(), "client_id": CLIENT_ID,
        "tokens": {"access_token": tokens.access_token, "refresh_token": tokens.refresh_token,
                   "id_token": tokens.id_token, "expires_at": expires_at},
    });
    std::fs::write(named_path(home, name), file.to_string()).unwrap();
}

/// An API-key credential `name` written straight into `credentials/`.
fn seed_named_key(home: &Path, name: &str, key: &str) {
    let folder = credentials_dir(home);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700)).unwrap();
    let file = json!({"version": 1, "auth_mode": "api_key", "api_key": key});
    std::fs::write(named_path(home, name), file.to_string()).unwrap();
}

/// The poll a client makes before calling the service of credential `name`.
fn poll(name: &str) -> Value {
    json!({"credential": name, "includeToken": true, "refreshToken": true})
}

/// Signs credential `name` in with host-supplied `tokens` from `issuer` (a `provider` object
/// with the issuer and [`CLIENT_ID`], and `resource` when given).
async fn login_tokens(
    server: &mut ServerProcess,
    name: &str,
    issuer: &FakeIssuer,
    tokens: &IssuedTokens,
    expires_at: i64,
    resource: Option<&str>,
) {
    let mut provider = json!({"issuer": issuer.url(), "clientId": CLIENT_ID});
    if let Some(resource) = resource {
        provider["resource"] = json!(resource);
    }
    let answer = server
        .call(
            "login",
            json!({
                "type": "tokens", "credential": name, "provider": provider,
                "accessToken": tokens.access_token, "refreshToken": tokens.refresh_token,
                "expiresAt": expires_at,
            }),
        )
        .await;
    assert_eq!(answer, json!({"type": "tokens"}), "{answer}");
}

/// A fake issuer whose tokens carry `tag`, so that no other issuer of the test mints the same.
async fn issuer(tag: &str) -> FakeIssuer {
    let issuer = FakeIssuer::start().await;
    issuer.tag_tokens(tag);
    issuer
}

/// Every file under `credentials/`, by name, sorted.
fn credential_files(home: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(credentials_dir(home)) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// (1) A refresh of one credential contacts only its issuer and rewrites only its file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_of_one_credential_asks_only_its_issuer_and_rewrites_only_its_file() {
    let (a, b) = (issuer("a").await, issuer("b").await);
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let mut server = ServerProcess::start_initialized(home).await;
    server
        .call("login", json!({"type": "apiKey", "apiKey": KEY}))
        .await;
    let (grant_a, grant_b) = (a.issue_grant(3600), b.issue_grant(3600));
    let resource = "https://api.a.example/v1";
    login_tokens(&mut server, "a", &a, &grant_a, now() - 10, Some(resource)).await;
    login_tokens(&mut server, "b", &b, &grant_b, now() + 3600, None).await;
    let b_before = std::fs::read(named_path(home, "b")).unwrap();
    let default_before = std::fs::read(home.join("auth.json")).unwrap();
    assert_eq!(a.token_hits(), 0, "a tokens login asks for no token");
    assert_eq!(b.token_hits(), 0);

    let status = server
        .status(json!({"credential": "a", "refreshToken": true, "includeToken": true}))
        .await;
    assert_eq!(status["state"], "active", "{status}");
    assert_eq!(status["authMethod"], "oauth");
    // The token comes with the resource it is for (a host sends it there only).
    assert_eq!(status["resource"], resource, "{status}");
    let new_token = status["authToken"].as_str().unwrap().to_owned();
    assert_ne!(new_token, grant_a.access_token);
    assert_eq!(a.token_hits(), 1, "exactly one token request to a's issuer");
    assert_eq!(b.token_hits(), 0, "none to b's");
    let request = &a.token_requests()[0].form;
    assert_eq!(request["grant_type"], "refresh_token");
    assert_eq!(request["refresh_token"], grant_a.refresh_token);
    assert_eq!(request["client_id"], CLIENT_ID);
    assert_eq!(request["resource"], resource);

    let stored = read_named(home, "a");
    assert_eq!(stored["auth_mode"], "oauth");
    assert_eq!(stored["issuer"], a.url());
    assert_eq!(stored["client_id"], CLIENT_ID);
    assert_eq!(stored["resource"], resource);
    assert_eq!(stored["tokens"]["access_token"], new_token);
    assert_eq!(
        Some(
            stored["tokens"]["refresh_token"]
                .as_str()
                .unwrap()
                .to_owned()
        ),
        a.current_refresh_token(&grant_a.refresh_token),
        "the rotated refresh token is stored"
    );
    assert_ne!(stored["tokens"]["refresh_token"], grant_a.refresh_token);
    assert!(stored["tokens"]["expires_at"].as_i64().unwrap() > now() + 3000);
    assert!(
        read_named(home, "b").get("resource").is_none(),
        "no resource when none was given"
    );
    assert_eq!(std::fs::read(named_path(home, "b")).unwrap(), b_before);
    assert_eq!(
        std::fs::read(home.join("auth.json")).unwrap(),
        default_before
    );

    // The others answer from their own files, and fresh polls touch no network.
    let status_b = server.status(poll("b")).await;
    assert_eq!(status_b["authToken"], grant_b.access_token.as_str());
    assert_eq!(
        server.status(json!({"includeToken": true})).await["authToken"],
        KEY
    );
    for _ in 0..10 {
        assert_eq!(server.status(poll("a")).await["authToken"], new_token);
    }
    assert_eq!((a.token_hits(), b.token_hits()), (1, 0));

    // A restart knows credential a from its file alone (issuer, client_id, resource).
    let (exit, _) = server.finish().await;
    assert!(exit.success());
    let mut server = ServerProcess::start_initialized(home).await;
    assert_eq!(server.status(poll("a")).await["authToken"], new_token);
    assert_eq!((a.token_hits(), b.token_hits()), (1, 0));
}

// (2) invalid_grant poisons only its credential; the poison holds across polls and restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grant_poisons_one_credential_while_another_refreshes() {
    let (a, b) = (issuer("a").await, issuer("b").await);
    b.set_mode(TokenMode::InvalidGrant);
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let (grant_a, grant_b) = (a.issue_grant(3600), b.issue_grant(3600));
    let mut server = ServerProcess::start_initialized(home).await;
    login_tokens(&mut server, "a", &a, &grant_a, now() - 10, None).await;
    login_tokens(&mut server, "b", &b, &grant_b, now() - 10, None).await;

    let status_b = server.status(poll("b")).await;
    assert_eq!(status_b["state"], "needsLogin", "{status_b}");
    assert_eq!(status_b["authMethod"], "oauth");
    assert!(status_b.get("authToken").is_none(), "{status_b}");
    assert_eq!(status_b["refreshError"]["kind"], "permanent");
    assert_eq!(status_b["refreshError"]["code"], "invalid_grant");
    assert_eq!(b.refresh_hits(), 1);

    let status_a = server.status(poll("a")).await;
    assert_eq!(status_a["state"], "active", "{status_a}");
    assert_ne!(status_a["authToken"], grant_a.access_token.as_str());
    assert_eq!(a.refresh_hits(), 1);

    for _ in 0..50 {
        assert_eq!(server.status(poll("b")).await["state"], "needsLogin");
        assert_eq!(server.status(poll("a")).await["state"], "active");
    }
    assert_eq!(
        (a.refresh_hits(), b.refresh_hits()),
        (1, 1),
        "a poisoned credential asks no more"
    );

    // Another process, and a restart, know b is poisoned without asking.
    let mut other = ServerProcess::start_initialized(home).await;
    for _ in 0..5 {
        assert_eq!(other.status(poll("b")).await["state"], "needsLogin");
        assert_eq!(other.status(poll("a")).await["state"], "active");
    }
    assert_eq!((a.refresh_hits(), b.refresh_hits()), (1, 1));

    // Signing b in again (with a grant that works) clears only b's poison.
    b.set_mode(TokenMode::Ok);
    let again = b.issue_grant(3600);
    login_tokens(&mut other, "b", &b, &again, now() + 3600, None).await;
    assert_eq!(
        other.status(poll("b")).await["authToken"],
        again.access_token.as_str()
    );
    assert_eq!(
        server.status(poll("b")).await["authToken"],
        again.access_token.as_str()
    );
}

// (3) A refresh held at a slow issuer blocks nobody else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_held_at_a_slow_issuer_does_not_block_other_credentials() {
    let (slow, a) = (issuer("s").await, issuer("a").await);
    let gate = Gate::new();
    slow.set_mode(TokenMode::Held(gate.clone()));
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let (grant_s, grant_a) = (slow.issue_grant(3600), a.issue_grant(3600));
    let mut server = ServerProcess::start_initialized(home).await;
    server
        .call("login", json!({"type": "apiKey", "apiKey": KEY}))
        .await;
    login_tokens(&mut server, "s", &slow, &grant_s, now() - 10, None).await;
    login_tokens(&mut server, "a", &a, &grant_a, now() - 10, None).await;

    let held = server.send_request("getAuthStatus", Some(poll("s"))).await;
    gate.held(1).await;

    // While s's refresh waits at its issuer: another credential refreshes and answers, the
    // default one answers, a sign-in of a new one completes, and the list answers.
    let status_a = server.status(poll("a")).await;
    assert_eq!(status_a["state"], "active", "{status_a}");
    assert_ne!(status_a["authToken"], grant_a.access_token.as_str());
    assert_eq!(a.refresh_hits(), 1);
    assert_eq!(
        server.status(json!({"includeToken": true})).await["authToken"],
        KEY
    );
    server
        .call(
            "login",
            json!({"type": "apiKey", "apiKey": "sk-new-0123456789abcdef", "credential": "n"}),
        )
        .await;
    assert_eq!(server.status(poll("n")).await["state"], "active");
    let listed = server.call("listCredentials", json!({})).await;
    let names: Vec<&str> = listed["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["credential"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "default", "n", "s"], "{listed}");
    // A second process polls s: it waits for s's lock, not for anything else.
    let mut other = ServerProcess::start_initialized(home).await;
    assert_eq!(other.status(poll("a")).await["state"], "active");
    assert_eq!(slow.refresh_hits(), 1, "s is still held");

    gate.open();
    let answer = server.response(held).await;
    assert_eq!(answer["result"]["state"], "active", "{answer}");
    let token_s = answer["result"]["authToken"].clone();
    assert_ne!(token_s, grant_s.access_token.as_str());
    assert_eq!(other.status(poll("s")).await["authToken"], token_s);
    assert_eq!((slow.refresh_hits(), a.refresh_hits()), (1, 1));
}

// (4) Two processes on one home refresh credential a at once: one request, both get it; a
// third credential of the same home is not held by a's lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_refreshing_one_credential_at_once_make_one_request() {
    let (a, c) = (issuer("a").await, issuer("c").await);
    let gate = Gate::new();
    a.set_mode(TokenMode::Held(gate.clone()));
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let (grant_a, grant_c) = (a.issue_grant(3600), c.issue_grant(3600));
    seed_named(home, "a", &a, &grant_a, now() - 10);
    seed_named(home, "c", &c, &grant_c, now() - 10);
    let mut one = ServerProcess::start_initialized(home).await;
    let mut two = ServerProcess::start_initialized(home).await;

    let id_one = one.send_request("getAuthStatus", Some(poll("a"))).await;
    gate.held(1).await;
    // Process one holds a's lock while its request waits at the issuer; process two asks too.
    let id_two = two.send_request("getAuthStatus", Some(poll("a"))).await;
    // Meanwhile process two refreshes c: a's lock is not c's.
    let status_c = two.status(poll("c")).await;
    assert_eq!(status_c["state"], "active", "{status_c}");
    assert_eq!(c.refresh_hits(), 1);
    gate.open();
    let (answer_one, answer_two) = tokio::join!(one.response(id_one), two.response(id_two));
    assert_eq!(answer_one["result"]["state"], "active", "{answer_one}");
    assert_eq!(answer_two["result"]["state"], "active", "{answer_two}");
    assert_eq!(
        answer_one["result"]["authToken"],
        answer_two["result"]["authToken"]
    );
    assert_ne!(
        answer_one["result"]["authToken"],
        grant_a.access_token.as_str()
    );
    assert_eq!(
        a.refresh_hits(),
        1,
        "the second process adopted the first one's tokens"
    );
    for _ in 0..10 {
        assert_eq!(one.status(poll("a")).await["state"], "active");
        assert_eq!(two.status(poll("a")).await["state"], "active");
        assert_eq!(one.status(poll("c")).await["state"], "active");
    }
    assert_eq!((a.refresh_hits(), c.refresh_hits()), (1, 1));
    assert_eq!(
        read_named(home, "a")["tokens"]["access_token"],
        answer_one["result"]["authToken"]
    );
}

// (5) Logout of one credential removes only its file.
#[tokio::test]
async fn logout_of_one_credential_removes_only_its_file() {
    let (a, b) = (issuer("a").await, issuer("b").await);
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let (grant_a, grant_b) = (a.issue_grant(3600), b.issue_grant(3600));
    let mut server = ServerProcess::start_initialized(home).await;
    server
        .call("login", json!({"type": "apiKey", "apiKey": KEY}))
        .await;
    login_tokens(&mut server, "a", &a, &grant_a, now() + 3600, None).await;
    login_tokens(&mut server, "b", &b, &grant_b, now() + 3600, None).await;
    let b_before = std::fs::read(named_path(home, "b")).unwrap();
    let default_before = std::fs::read(home.join("auth.json")).unwrap();
    server.take_notifications("authStatusChanged");

    let answer = server.call("logout", json!({"credential": "a"})).await;
    assert_eq!(answer["revoked"], true, "{answer}");
    assert_eq!(
        a.revoked_tokens(),
        std::slice::from_ref(&grant_a.refresh_token)
    );
    assert!(b.revoked_tokens().is_empty());
    assert_eq!(
        server.notification("authStatusChanged").await,
        json!({"authMethod": null, "credential": "a", "state": "signedOut"})
    );
    assert!(!named_path(home, "a").exists());
    assert!(!home.join("credentials/a.json.lock").exists());
    assert_eq!(std::fs::read(named_path(home, "b")).unwrap(), b_before);
    assert_eq!(
        std::fs::read(home.join("auth.json")).unwrap(),
        default_before
    );
    assert!(
        !credential_files(home)
            .iter()
            .any(|f| f.starts_with("a.json")),
        "{:?}",
        credential_files(home)
    );

    assert_eq!(
        server.status(json!({"credential": "a"})).await,
        json!({"authMethod": null, "state": "signedOut", "storage": "file"})
    );
    assert_eq!(
        server.status(poll("b")).await["authToken"],
        grant_b.access_token.as_str()
    );
    assert_eq!(
        server.status(json!({"includeToken": true})).await["authToken"],
        KEY
    );
    let listed = server.call("listCredentials", json!({})).await;
    let names: Vec<&str> = listed["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["credential"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b", "default"]);

    // Logout of the default one leaves the named ones.
    server.call("logout", json!({})).await;
    assert!(!home.join("auth.json").exists());
    assert_eq!(std::fs::read(named_path(home, "b")).unwrap(), b_before);
    // A logout of a name nothing is stored under is a no-op that stores nothing.
    server.call("logout", json!({"credential": "never"})).await;
    assert!(!named_path(home, "never").exists());
}

// (6) listCredentials: sorted, never a token, an unreadable file is that entry's error only.
#[tokio::test]
async fn list_credentials_is_sorted_shows_no_token_and_reports_a_corrupt_file_alone() {
    let a = issuer("a").await;
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let grant = a.issue_grant(3600);
    let expires_at = now() + 3600;
    seed_named(home, "mcp.alpha", &a, &grant, expires_at);
    seed_named_key(home, "zeta", "sk-zeta-0123456789abcdef");
    seed_named_key(home, "0-first", "sk-first-0123456789abcdef");
    std::fs::write(
        home.join("auth.json"),
        json!({"version": 1, "auth_mode": "api_key", "api_key": KEY}).to_string(),
    )
    .unwrap();
    let corrupt = b"{\"version\":1,\"auth_mode\":\"api_key\",\"api_key\":\"sk-half-secret";
    std::fs::write(named_path(home, "x"), corrupt).unwrap();
    // Not credentials: a lock, a temporary file, a name that breaks the rule, another file.
    for other in [
        "zeta.json.lock",
        ".zeta.json.1234.tmp",
        "Upper.json",
        "notes.txt",
    ] {
        std::fs::write(credentials_dir(home).join(other), b"{}").unwrap();
    }
    let mut server = ServerProcess::start_initialized(home).await;

    let response = server.request("listCredentials", json!({})).await;
    let raw = response.to_string();
    for secret in [
        KEY,
        "sk-zeta-0123456789abcdef",
        "sk-first-0123456789abcdef",
        "sk-half-secret",
        &grant.access_token,
        &grant.refresh_token,
        &grant.id_token,
    ] {
        assert!(!raw.contains(secret), "a secret in listCredentials: {raw}");
    }
    let listed = response["result"]["credentials"]
        .as_array()
        .unwrap()
        .clone();
    let names: Vec<&str> = listed
        .iter()
        .map(|c| c["credential"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["0-first", "default", "mcp.alpha", "x", "zeta"],
        "{raw}"
    );
    assert_eq!(
        listed[0],
        json!({"credential": "0-first", "authMethod": "apiKey", "state": "active", "storage": "file"})
    );
    assert_eq!(
        listed[1],
        json!({"credential": "default", "authMethod": "apiKey", "state": "active", "storage": "file"})
    );
    let alpha = &listed[2];
    assert_eq!(alpha["authMethod"], "oauth", "{alpha}");
    assert_eq!(alpha["state"], "active");
    assert_eq!(alpha["expiresAt"], expires_at);
    assert_eq!(alpha["issuer"], a.url());
    assert_eq!(alpha["storage"], "file");
    assert!(alpha.get("resource").is_none(), "{alpha}");
    let x = &listed[3];
    assert_eq!(x["authMethod"], Value::Null, "{x}");
    assert_eq!(x["state"], "needsLogin");
    assert_eq!(x["storage"], "file");
    let error = x["error"].as_str().expect("an error for the corrupt file");
    assert!(
        error.contains(&named_path(home, "x").display().to_string()),
        "{error}"
    );
    assert_eq!(listed[4]["authMethod"], "apiKey");
    assert_eq!(
        a.token_hits() + a.hits("/.well-known/oauth-authorization-server"),
        0,
        "no provider contacted"
    );

    let error = server
        .call_error("getAuthStatus", json!({"credential": "x"}))
        .await;
    assert_eq!(error["code"], -32011, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains(&named_path(home, "x").display().to_string()),
        "{message}"
    );
    assert!(!message.contains("sk-half"), "{message}");
    assert_eq!(
        std::fs::read(named_path(home, "x")).unwrap(),
        corrupt,
        "untouched"
    );
    assert_eq!(
        server.status(poll("zeta")).await["authToken"],
        "sk-zeta-0123456789abcdef"
    );
    assert_eq!(
        server.status(poll("mcp.alpha")).await["authToken"],
        grant.access_token.as_str()
    );
    assert_eq!(
        server.status(json!({"includeToken": true})).await["authToken"],
        KEY
    );

    // A login of x moves the corrupt file aside and signs it in.
    server
        .call(
            "login",
            json!({"type": "apiKey", "apiKey": "sk-x-0123456789abcdef", "credential": "x"}),
        )
        .await;
    assert_eq!(read_named(home, "x")["api_key"], "sk-x-0123456789abcdef");
    let aside: Vec<String> = credential_files(home)
        .into_iter()
        .filter(|f| f.starts_with("x.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{:?}", credential_files(home));
    assert_eq!(
        std::fs::read(credentials_dir(home).join(&aside[0])).unwrap(),
        corrupt,
        "moved aside intact"
    );

    // An empty home lists nothing.
    let empty = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start_initialized(empty.path()).await;
    assert_eq!(
        server.call("listCredentials", json!({})).await,
        json!({"credentials": []})
    );
    assert!(
        !credentials_dir(empty.path()).exists(),
        "listing creates nothing"
    );
}

// (7) Bad input: names.
#[tokio::test]
async fn invalid_names_are_refused_quoting_the_rule_not_the_value_and_store_nothing() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let mut server = ServerProcess::start_initialized(home).await;
    let long = "a".repeat(65);
    for name in [
        "Secret-Token-Value",
        "../escape",
        "a/b",
        "-dash",
        ".dot",
        "sp ace",
        "é",
        &long,
        "",
    ] {
        let calls = [
            ("getAuthStatus", json!({"credential": name})),
            (
                "login",
                json!({"type": "apiKey", "apiKey": KEY, "credential": name}),
            ),
            ("logout", json!({"credential": name})),
            (
                "reportAuthFailure",
                json!({"status": 401, "credential": name}),
            ),
        ];
        for (method, params) in calls {
            let error = server.call_error(method, params).await;
            assert_eq!(error["code"], -32602, "{method} {name:?}: {error}");
            let message = error["message"].as_str().unwrap();
            assert!(message.contains(NAME_RULE), "{method}: {message}");
            if name.len() > 3 {
                assert!(
                    !message.contains(name),
                    "{method} quoted the value: {message}"
                );
            }
        }
    }
    for bad in [json!(7), json!(true), json!(["a"]), json!({"name": "a"})] {
        let error = server
            .call_error("getAuthStatus", json!({"credential": bad}))
            .await;
        assert_eq!(error["code"], -32602, "{bad}: {error}");
    }
    assert!(
        !credentials_dir(home).exists(),
        "{:?}",
        credential_files(home)
    );
    assert!(!home.join("auth.json").exists());
    // `null` is taken as absent (as for every optional member): the default credential.
    assert_eq!(
        server.status(json!({"credential": null})).await,
        json!({"authMethod": null, "state": "signedOut", "storage": "file"})
    );
    // "default" named explicitly is the default credential.
    server
        .call(
            "login",
            json!({"type": "apiKey", "apiKey": KEY, "credential": "default"}),
        )
        .await;
    assert_eq!(read_auth(home)["api_key"], KEY);
    assert_eq!(server.status(poll("default")).await["authToken"], KEY);
    assert!(!credentials_dir(home).exists());
    // The longest valid name is accepted.
    let longest = "a".repeat(64);
    server
        .call(
            "login",
            json!({"type": "apiKey", "apiKey": KEY, "credential": longest}),
        )
        .await;
    assert!(named_path(home, &longest).exists());
}

// (7) Bad input: `provider` objects.
#[tokio::test]
async fn provider_object_mistakes_name_the_member_and_store_nothing() {
    let issuer = FakeIssuer::start().await;
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let mut server = ServerProcess::start_initialized(home).await;
    let tokens = issuer.issue_grant(3600);
    let url = issuer.url();
    let cases = [
        (json!({}), "\"issuer\""),
        (json!({"clientId": CLIENT_ID}), "\"issuer\""),
        (json!({"scopes": ["openid"]}), "\"issuer\""),
        (
            json!({"issuer": "http://auth.example.com"}),
            "\"provider\".\"issuer\"",
        ),
        (json!({"issuer": "not a url"}), "\"provider\".\"issuer\""),
        (
            json!({"issuer": "ftp://auth.example.com"}),
            "\"provider\".\"issuer\"",
        ),
        (
            json!({"protectedResource": "http://mcp.example.com/mcp"}),
            "\"provider\".\"protectedResource\"",
        ),
        (
            json!({"issuer": url, "clientMetadataUrl": "http://apps.example.com/client.json"}),
            "\"provider\".\"clientMetadataUrl\"",
        ),
        (
            json!({"issuer": url, "clientMetadataUrl": "not a url"}),
            "\"provider\".\"clientMetadataUrl\"",
        ),
    ];
    for (provider, member) in &cases {
        let logins = [
            json!({"type": "oauth", "credential": "p", "provider": provider}),
            json!({"type": "deviceCode", "credential": "p", "provider": provider}),
            json!({"type": "tokens", "credential": "p", "provider": provider,
                   "accessToken": tokens.access_token, "refreshToken": tokens.refresh_token}),
        ];
        for login in logins {
            let error = server.call_error("login", login.clone()).await;
            assert_eq!(error["code"], -32602, "{login}: {error}");
            let message = error["message"].as_str().unwrap();
            assert!(
                message.contains(member),
                "{provider} should name {member}: {message}"
            );
            assert!(!message.contains(&tokens.access_token), "{message}");
        }
    }
    // A provider object on the default credential is refused too.
    let error = server
        .call_error(
            "login",
            json!({"type": "oauth", "provider": {"issuer": url}}),
        )
        .await;
    assert_eq!(error["code"], -32602, "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("\"provider\""),
        "{error}"
    );
    assert!(
        !named_path(home, "p").exists(),
        "{:?}",
        credential_files(home)
    );
    assert!(!home.join("auth.json").exists());
    assert!(!home.join("registrations.json").exists());
    assert_eq!(issuer.hits("/token") + issuer.hits("/register"), 0);
    assert_eq!(
        server.status(json!({"credential": "p"})).await,
        json!({"authMethod": null, "state": "signedOut", "storage": "file"})
    );

    // An oauth login for a new name with no provider at all says what to pass.
    let error = server
        .call_error("login", json!({"type": "oauth", "credential": "nothing"}))
        .await;
    assert_eq!(error["code"], -32010, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("provider") && message.contains("[credentials.nothing]"),
        "{message}"
    );
    assert!(!named_path(home, "nothing").exists());
}

// (7) Bad input: `[credentials.NAME]` tables.
#[tokio::test]
async fn a_bad_credentials_table_fails_its_credential_only() {
    let issuer = FakeIssuer::start().await;
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let url = issuer.url();
    std::fs::write(
        home.join("config.toml"),
        format!(
            "[provider]\nissuer = \"{url}\"\nclient_id = \"{CLIENT_ID}\"\n\n\
             [credentials.unknown]\nissuer = \"{url}\"\nclient_id = \"{CLIENT_ID}\"\ncolour = \"blue\"\n\n\
             [credentials.badurl]\nissuer = \"http://auth.example.com\"\nclient_id = \"{CLIENT_ID}\"\n\n\
             [credentials.default]\nissuer = \"{url}\"\nclient_id = \"{CLIENT_ID}\"\n\n\
             [credentials.good]\nissuer = \"{url}\"\nclient_id = \"{CLIENT_ID}\"\n"
        ),
    )
    .unwrap();
    let mut server = ServerProcess::start_initialized(home).await;
    for (name, table, detail) in [
        ("unknown", "[credentials.unknown]", "colour"),
        ("badurl", "[credentials.badurl]", "issuer"),
    ] {
        for login in [
            json!({"type": "oauth", "credential": name}),
            // The table wins over the login's provider object, so its error stands.
            json!({"type": "oauth", "credential": name, "provider": {"issuer": url, "clientId": CLIENT_ID}}),
        ] {
            let error = server.call_error("login", login.clone()).await;
            assert_eq!(error["code"], -32012, "{login}: {error}");
            let message = error["message"].as_str().unwrap();
            assert!(
                message.contains(table)
                    && message.contains("config.toml")
                    && message.contains(detail),
                "{login}: {error}"
            );
        }
        assert!(!named_path(home, name).exists());
    }

    // The good table and the default credential work.
    let started = server
        .call("login", json!({"type": "oauth", "credential": "good"}))
        .await;
    let auth_url = started["authUrl"].as_str().unwrap();
    assert!(
        auth_url.starts_with(&format!("{url}/authorize")),
        "{auth_url}"
    );
    assert_eq!(query_param(auth_url, "client_id").unwrap(), CLIENT_ID);
    let started = server.call("login", json!({"type": "oauth"})).await;
    assert!(started["authUrl"].as_str().unwrap().starts_with(&url));
    server
        .call(
            "login",
            json!({"type": "apiKey", "apiKey": KEY, "credential": "plain"}),
        )
        .await;
    assert_eq!(server.status(poll("plain")).await["authToken"], KEY);
    let (exit, _) = server.finish().await;
    assert!(exit.success());
}

/// §13: "a `[credentials.default]` table is a configuration error (that is `[provider]`)". A
/// person who put the default credential's provider there, using no named credential, is told
/// so: by the default credential's login, or in the log (at start or at that login). Both a
/// home with `[provider]` beside it and one with only the table.
#[tokio::test]
async fn a_credentials_default_table_is_reported_when_only_the_default_credential_is_used() {
    let issuer = FakeIssuer::start().await;
    let url = issuer.url();
    let table = format!("[credentials.default]\nissuer = \"{url}\"\nclient_id = \"{CLIENT_ID}\"\n");
    for config in [
        format!("[provider]\nissuer = \"{url}\"\nclient_id = \"{CLIENT_ID}\"\n\n{table}"),
        table.clone(),
    ] {
        let home = tempfile::tempdir().unwrap();
        let home = home.path();
        std::fs::write(home.join("config.toml"), &config).unwrap();
        let mut server = ServerProcess::start_initialized(home).await;
        let answer = server
            .request("login", json!({"type": "oauth", "credential": "default"}))
            .await;
        let answer_names_it = answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("[credentials.default]"));
        if !answer_names_it {
            // A log line written before the answer may still be on its way through the pipe.
            // (It panics with the log when the line never comes.)
            server.wait_for_stderr("[credentials.default]").await;
        }
    }
}

/// The hint of an unreadable named file names where a login moves it (`NAME.json.corrupt-…`,
/// next to it), not `auth.json`'s.
#[tokio::test]
async fn an_unreadable_named_file_is_reported_with_its_own_name() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    seed_named_key(home, "x", "sk-x-0123456789abcdef");
    std::fs::write(named_path(home, "x"), b"{\"version\":1,").unwrap();
    let mut server = ServerProcess::start_initialized(home).await;
    let error = server
        .call_error("getAuthStatus", json!({"credential": "x"}))
        .await;
    assert_eq!(error["code"], -32011, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("x.json.corrupt-") && !message.contains("auth.json"),
        "{message}"
    );
}

// (7) The credentials folder: a symlink is refused; one others can enter is made private.
#[tokio::test]
async fn a_credentials_folder_that_is_a_symlink_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::set_permissions(elsewhere.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), credentials_dir(home)).unwrap();
    let planted = json!({"version": 1, "auth_mode": "api_key", "api_key": "sk-planted-0123456789"});
    std::fs::write(elsewhere.path().join("w.json"), planted.to_string()).unwrap();
    let mut server = ServerProcess::start_initialized(home).await;

    let error = server.call_error("getAuthStatus", poll("w")).await;
    assert_eq!(error["code"], -32011, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("symlink") || message.contains("symbolic link"),
        "{message}"
    );
    assert!(!message.contains("sk-planted"), "{message}");
    let error = server
        .call_error(
            "login",
            json!({"type": "apiKey", "apiKey": KEY, "credential": "n"}),
        )
        .await;
    assert!(
        error["message"].as_str().unwrap().contains("symlink")
            || error["message"].as_str().unwrap().contains("symbolic link"),
        "{error}"
    );
    let entries: Vec<_> = std::fs::read_dir(elsewhere.path()).unwrap().collect();
    assert_eq!(entries.len(), 1, "nothing written through the link");
    // The default credential still works.
    server
        .call("login", json!({"type": "apiKey", "apiKey": KEY}))
        .await;
    assert_eq!(
        server.status(json!({"includeToken": true})).await["authToken"],
        KEY
    );
    let (exit, _) = server.finish().await;
    assert!(exit.success());
}

#[tokio::test]
async fn a_credentials_folder_others_can_enter_is_made_private() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    seed_named_key(home, "k", "sk-k-0123456789abcdef");
    std::fs::set_permissions(
        credentials_dir(home),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let mut server = ServerProcess::start_initialized(home).await;
    assert_eq!(
        server.status(poll("k")).await["authToken"],
        "sk-k-0123456789abcdef"
    );
    assert_eq!(mode(&credentials_dir(home)), 0o700);

    // A new folder is created 0700, its files 0600.
    let fresh = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start_initialized(fresh.path()).await;
    server
        .call(
            "login",
            json!({"type": "apiKey", "apiKey": KEY, "credential": "n"}),
        )
        .await;
    assert_eq!(mode(&credentials_dir(fresh.path())), 0o700);
    assert_eq!(mode(&named_path(fresh.path(), "n")), 0o600);
}

// (7) A FIFO or an oversized credential file errors alone; the server keeps serving.
#[tokio::test]
async fn a_fifo_or_oversized_credential_file_fails_alone_and_never_hangs() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    seed_named_key(home, "k", "sk-k-0123456789abcdef");
    mkfifo(&named_path(home, "f"));
    let mut big = json!({"version": 1, "auth_mode": "api_key", "api_key": "sk-big-0123456789"});
    big["x_padding"] = json!("x".repeat(1024 * 1024 + 10));
    std::fs::write(named_path(home, "big"), big.to_string()).unwrap();
    std::fs::write(
        named_path(home, "newer"),
        r#"{"version":2,"auth_mode":"api_key","api_key":"sk-newer-0123456789"}"#,
    )
    .unwrap();
    let mut server = ServerProcess::start_initialized(home).await;

    for params in [json!({"credential": "f"}), poll("f")] {
        let error = server.call_error("getAuthStatus", params).await;
        assert_eq!(error["code"], -32011, "{error}");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains("a FIFO") && message.contains("not a regular file"),
            "{message}"
        );
    }
    let error = server.call_error("getAuthStatus", poll("big")).await;
    assert_eq!(error["code"], -32011, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("more than 1048576 bytes") && message.contains("big.json"),
        "{message}"
    );
    // A file of another version of this server is that credential's problem only.
    let error = server.call_error("getAuthStatus", poll("newer")).await;
    assert_eq!(error["code"], -32011, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("unsupported version 2") && message.contains("newer.json"),
        "{message}"
    );
    assert!(!message.contains("sk-newer"), "{message}");
    assert_eq!(
        server.status(poll("k")).await["authToken"],
        "sk-k-0123456789abcdef"
    );

    let listed = server.call("listCredentials", json!({})).await;
    let entries = listed["credentials"].as_array().unwrap();
    let names: Vec<&str> = entries
        .iter()
        .map(|c| c["credential"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["big", "f", "k", "newer"], "{listed}");
    assert!(
        entries[0]["error"].is_string()
            && entries[1]["error"].is_string()
            && entries[3]["error"].is_string(),
        "{listed}"
    );
    assert!(entries[2].get("error").is_none(), "{listed}");

    // A login replaces the FIFO; the server exits on stdin EOF.
    server
        .call(
            "login",
            json!({"type": "apiKey", "apiKey": KEY, "credential": "f"}),
        )
        .await;
    assert_eq!(server.status(poll("f")).await["authToken"], KEY);
    let (exit, _) = server.finish().await;
    assert!(exit.success());
}

// (8) Notifications carry `credential`.
#[tokio::test]
async fn notifications_name_their_credential() {
    let issuer = FakeIssuer::start().await;
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let mut server = ServerProcess::start_initialized(home).await;
    server
        .call(
            "login",
            json!({"type": "apiKey", "apiKey": KEY, "credential": "work"}),
        )
        .await;
    assert_eq!(
        server.notification("authStatusChanged").await,
        json!({"authMethod": "apiKey", "credential": "work", "state": "active"})
    );
    server
        .call("login", json!({"type": "apiKey", "apiKey": KEY}))
        .await;
    assert_eq!(
        server.notification("authStatusChanged").await,
        json!({"authMethod": "apiKey", "credential": "default", "state": "active"})
    );

    // A browser sign-in of a named credential: loginCompleted and authStatusChanged name it.
    let started = server
        .call(
            "login",
            json!({"type": "oauth", "credential": "web",
                   "provider": {"issuer": issuer.url(), "clientId": CLIENT_ID}}),
        )
        .await;
    let login_id = started["loginId"].as_str().unwrap().to_owned();
    let (status, page) = browser_sign_in(started["authUrl"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        server.notification("loginCompleted").await,
        json!({"credential": "web", "loginId": login_id, "success": true})
    );
    assert_eq!(
        server.notification("authStatusChanged").await,
        json!({"authMethod": "oauth", "credential": "web", "state": "active"})
    );
    assert_eq!(read_named(home, "web")["issuer"], issuer.url());

    // A cancelled sign-in of another name.
    let started = server
        .call(
            "login",
            json!({"type": "oauth", "credential": "gone",
                   "provider": {"issuer": issuer.url(), "clientId": CLIENT_ID}}),
        )
        .await;
    let login_id = started["loginId"].as_str().unwrap().to_owned();
    server
        .call("cancelLogin", json!({"loginId": login_id}))
        .await;
    let completed = server.notification("loginCompleted").await;
    assert_eq!(completed["credential"], "gone", "{completed}");
    assert_eq!(completed["loginId"], login_id.as_str());
    assert_eq!(completed["success"], false);
    assert!(!named_path(home, "gone").exists());

    server.call("logout", json!({"credential": "work"})).await;
    assert_eq!(
        server.notification("authStatusChanged").await,
        json!({"authMethod": null, "credential": "work", "state": "signedOut"})
    );
}

// (9) Zero-configuration sign-in per credential.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_configuration_sign_in_per_credential_at_two_issuers() {
    let (one, two) = (issuer("one").await, issuer("two").await);
    for issuer in [&one, &two] {
        issuer.set_registration_mode(RegistrationMode::Ok);
    }
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let mut server = ServerProcess::start_initialized(home).await;

    let mut tokens = Vec::new();
    for (name, issuer) in [("one", &one), ("two", &two)] {
        let resource = format!("{}/mcp", issuer.url());
        let started = server
            .call(
                "login",
                json!({"type": "oauth", "credential": name, "provider": {"protectedResource": resource}}),
            )
            .await;
        let auth_url = started["authUrl"].as_str().unwrap().to_owned();
        assert!(
            auth_url.starts_with(&format!("{}/authorize", issuer.url())),
            "{auth_url}"
        );
        assert_eq!(
            query_param(&auth_url, "resource").as_deref(),
            Some(resource.as_str())
        );
        let (status, page) = browser_sign_in(&auth_url).await;
        assert_eq!(status, 200, "{page}");
        let completed = server.notification("loginCompleted").await;
        assert_eq!(completed["credential"], name, "{completed}");
        assert_eq!(completed["success"], true, "{completed}");
        let stored = read_named(home, name);
        assert_eq!(stored["issuer"], issuer.url());
        assert_eq!(stored["resource"], resource);
        assert_eq!(
            stored["client_id"].as_str(),
            query_param(&auth_url, "client_id").as_deref()
        );
        let status = server.status(poll(name)).await;
        assert_eq!(status["state"], "active", "{status}");
        tokens.push(status["authToken"].as_str().unwrap().to_owned());
    }
    assert_eq!((one.registrations(), two.registrations()), (1, 1));
    // Each token is accepted by its own resource and refused by the other.
    auth_app_server_tests::install_tls_provider();
    let client = reqwest::Client::new();
    let resource_status = |issuer: &FakeIssuer, token: &str| {
        client
            .get(format!("{}/mcp", issuer.url()))
            .bearer_auth(token.to_owned())
            .send()
    };
    assert_eq!(
        resource_status(&one, &tokens[0]).await.unwrap().status(),
        200
    );
    assert_eq!(
        resource_status(&two, &tokens[1]).await.unwrap().status(),
        200
    );
    assert_eq!(
        resource_status(&one, &tokens[1]).await.unwrap().status(),
        401
    );
    assert_eq!(
        resource_status(&two, &tokens[0]).await.unwrap().status(),
        401
    );

    let registrations: Value =
        serde_json::from_slice(&std::fs::read(home.join("registrations.json")).unwrap()).unwrap();
    let entries = registrations["registrations"].as_object().unwrap();
    let mut issuers: Vec<&String> = entries.keys().collect();
    issuers.sort();
    let mut expected = [one.url(), two.url()];
    expected.sort();
    assert_eq!(
        issuers,
        expected.iter().collect::<Vec<_>>(),
        "{registrations}"
    );
    assert_eq!(
        entries[&one.url()]["client_id"],
        read_named(home, "one")["client_id"]
    );
    assert_eq!(
        entries[&two.url()]["client_id"],
        read_named(home, "two")["client_id"]
    );

    // A third credential at the first issuer reuses its registration.
    let started = server
        .call(
            "login",
            json!({"type": "oauth", "credential": "three",
                   "provider": {"protectedResource": format!("{}/mcp", one.url())}}),
        )
        .await;
    let auth_url = started["authUrl"].as_str().unwrap().to_owned();
    assert_eq!(
        query_param(&auth_url, "client_id").as_deref(),
        read_named(home, "one")["client_id"].as_str()
    );
    let (status, page) = browser_sign_in(&auth_url).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        server.notification("loginCompleted").await["credential"],
        "three"
    );
    assert_eq!((one.registrations(), two.registrations()), (1, 1));
    assert!(
        !home.join("auth.json").exists(),
        "the default credential is untouched"
    );

    // A restarted process refreshes each at its own issuer, from its file alone.
    let (exit, _) = server.finish().await;
    assert!(exit.success());
    for name in ["one", "two"] {
        let path = named_path(home, name);
        let mut file = read_named(home, name);
        file["tokens"]["expires_at"] = json!(now() - 10);
        std::fs::write(&path, file.to_string()).unwrap();
    }
    let mut server = ServerProcess::start_initialized(home).await;
    for name in ["one", "two"] {
        assert_eq!(server.status(poll(name)).await["state"], "active");
    }
    assert_eq!((one.refresh_hits(), two.refresh_hits()), (1, 1));
    let requests = one.token_requests();
    let form = &requests.last().unwrap().form;
    assert_eq!(form["resource"], format!("{}/mcp", one.url()));
}

/// `logout` of a named credential removes its lock too (§13 "removes its file (or item) and
/// lock"); the others' locks stay.
#[tokio::test]
async fn logout_of_a_named_credential_removes_its_lock_and_only_its_lock() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let mut server = ServerProcess::start_initialized(home).await;
    for name in ["a", "b"] {
        server
            .call(
                "login",
                json!({"type": "apiKey", "apiKey": KEY, "credential": name}),
            )
            .await;
    }
    assert_eq!(
        credential_files(home),
        ["a.json", "a.json.lock", "b.json", "b.json.lock"]
    );
    server.call("logout", json!({"credential": "a"})).await;
    assert_eq!(credential_files(home), ["b.json", "b.json.lock"]);
    assert_eq!(server.status(poll("b")).await["authToken"], KEY);
}

/// A 401 reported for one credential refreshes that one at its issuer, and nothing else.
#[tokio::test]
async fn report_auth_failure_of_one_credential_refreshes_only_it() {
    let (a, b) = (issuer("a").await, issuer("b").await);
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let (grant_a, grant_b) = (a.issue_grant(3600), b.issue_grant(3600));
    let mut server = ServerProcess::start_initialized(home).await;
    login_tokens(&mut server, "a", &a, &grant_a, now() + 3600, None).await;
    login_tokens(&mut server, "b", &b, &grant_b, now() + 3600, None).await;
    let b_before = std::fs::read(named_path(home, "b")).unwrap();

    let answer = server
        .call(
            "reportAuthFailure",
            json!({"credential": "a", "status": 401, "rejectedToken": grant_a.access_token}),
        )
        .await;
    assert_eq!(answer["action"], "refreshed", "{answer}");
    assert_eq!(answer["state"], "active");
    let new_token = answer["authToken"].as_str().unwrap().to_owned();
    assert_ne!(new_token, grant_a.access_token);
    assert_eq!((a.refresh_hits(), b.token_hits()), (1, 0));
    assert_eq!(read_named(home, "a")["tokens"]["access_token"], new_token);
    assert_eq!(std::fs::read(named_path(home, "b")).unwrap(), b_before);
    // The same rejected token reported again: already rotated, no second request.
    let again = server
        .call(
            "reportAuthFailure",
            json!({"credential": "a", "status": 401, "rejectedToken": grant_a.access_token}),
        )
        .await;
    assert_eq!(again["action"], "alreadyRotated", "{again}");
    assert_eq!(again["authToken"], new_token.as_str());
    assert_eq!((a.refresh_hits(), b.token_hits()), (1, 0));
    assert_eq!(
        server.status(poll("b")).await["authToken"],
        grant_b.access_token.as_str()
    );
}

/// At most 256 credentials per home, the default one included: the 257th sign-in is refused
/// naming the limit and `logout`, and stores nothing; after a logout it goes through.
#[tokio::test]
async fn the_257th_credential_is_refused_naming_the_limit_and_logout() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    for n in 0..255 {
        seed_named_key(home, &format!("c{n:03}"), "sk-seeded-0123456789abcdef");
    }
    std::fs::write(
        home.join("auth.json"),
        json!({"version": 1, "auth_mode": "api_key", "api_key": KEY}).to_string(),
    )
    .unwrap();
    let mut server = ServerProcess::start_initialized(home).await;
    // Re-signing in to a stored one is no new credential.
    server
        .call(
            "login",
            json!({"type": "apiKey", "apiKey": KEY, "credential": "c000"}),
        )
        .await;
    let error = server
        .call_error(
            "login",
            json!({"type": "apiKey", "apiKey": KEY, "credential": "one-too-many"}),
        )
        .await;
    assert_eq!(error["code"], -32013, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("256") && message.contains("logout"),
        "{message}"
    );
    assert!(!named_path(home, "one-too-many").exists());
    let listed = server.call("listCredentials", json!({})).await;
    assert_eq!(listed["credentials"].as_array().unwrap().len(), 256);

    server.call("logout", json!({"credential": "c254"})).await;
    server
        .call(
            "login",
            json!({"type": "apiKey", "apiKey": KEY, "credential": "one-too-many"}),
        )
        .await;
    assert_eq!(server.status(poll("one-too-many")).await["authToken"], KEY);
}

/// Three interactive sign-ins of three credentials pending at once, at two issuers: a browser
/// sign-in finished by `completeLogin` (the pasted address), a device code, and one cancelled;
/// each ends with its own `loginCompleted`, stores only its own file, and the tokens are each
/// from its own issuer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_sign_ins_of_several_credentials_pending_at_once_end_independently() {
    let (a, b) = (issuer("a").await, issuer("b").await);
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let mut server = ServerProcess::start_initialized(home).await;
    let provider = |issuer: &FakeIssuer| json!({"issuer": issuer.url(), "clientId": CLIENT_ID});

    let browser = server
        .call(
            "login",
            json!({"type": "oauth", "credential": "web", "provider": provider(&a)}),
        )
        .await;
    let device = server
        .call(
            "login",
            json!({"type": "deviceCode", "credential": "tv", "provider": provider(&b)}),
        )
        .await;
    let cancelled = server
        .call(
            "login",
            json!({"type": "oauth", "credential": "gone", "provider": provider(&b)}),
        )
        .await;
    let ids: Vec<String> = [&browser, &device, &cancelled]
        .iter()
        .map(|started| started["loginId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids.iter().collect::<std::collections::BTreeSet<_>>().len(),
        3,
        "{ids:?}"
    );
    assert!(
        device["verificationUri"]
            .as_str()
            .unwrap()
            .starts_with(&b.url()),
        "{device}"
    );

    // The device code first, while the browser sign-in still waits.
    b.decide_device(device["userCode"].as_str().unwrap(), true);
    let completed = server.notification("loginCompleted").await;
    assert_eq!(
        completed,
        json!({"credential": "tv", "loginId": ids[1], "success": true})
    );
    // Then the cancelled one.
    server.call("cancelLogin", json!({"loginId": ids[2]})).await;
    let completed = server.notification("loginCompleted").await;
    assert_eq!(completed["credential"], "gone", "{completed}");
    assert_eq!(completed["success"], false, "{completed}");
    // Then the browser one, by the address the browser ended on.
    let callback = a.approve_authorization(browser["authUrl"].as_str().unwrap());
    server
        .call(
            "completeLogin",
            json!({"loginId": ids[0], "callbackUrl": callback}),
        )
        .await;
    let completed = server.notification("loginCompleted").await;
    assert_eq!(
        completed,
        json!({"credential": "web", "loginId": ids[0], "success": true})
    );

    assert_eq!(
        credential_files(home)
            .iter()
            .filter(|f| f.ends_with(".json"))
            .collect::<Vec<_>>(),
        ["tv.json", "web.json"]
    );
    assert!(!home.join("auth.json").exists());
    let (web, tv) = (read_named(home, "web"), read_named(home, "tv"));
    assert_eq!(web["issuer"], a.url());
    assert_eq!(tv["issuer"], b.url());
    let token_web = server.status(poll("web")).await["authToken"].clone();
    let token_tv = server.status(poll("tv")).await["authToken"].clone();
    assert!(
        token_web.as_str().unwrap().starts_with("at-a-"),
        "{token_web}"
    );
    assert!(
        token_tv.as_str().unwrap().starts_with("at-b-"),
        "{token_tv}"
    );
    assert_eq!(web["tokens"]["access_token"], token_web);
    assert_eq!(tv["tokens"]["access_token"], token_tv);
}

/// What one process does to a credential, another process on the same home sees at its next
/// poll: a sign-in of a name it had answered `signedOut` for, a logout, a new sign-in at
/// another issuer (whose refresh then goes there only). A poll of a name nothing is stored
/// under creates nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_sees_each_credential_change_at_its_next_poll() {
    let (a, b) = (issuer("a").await, issuer("b").await);
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let mut one = ServerProcess::start_initialized(home).await;
    let mut two = ServerProcess::start_initialized(home).await;

    let signed_out = json!({"authMethod": null, "state": "signedOut", "storage": "file"});
    for _ in 0..3 {
        assert_eq!(two.status(json!({"credential": "n"})).await, signed_out);
    }
    assert!(!credentials_dir(home).exists(), "a poll creates nothing");

    let grant = a.issue_grant(3600);
    login_tokens(&mut one, "n", &a, &grant, now() + 3600, None).await;
    login_tokens(
        &mut one,
        "other",
        &b,
        &b.issue_grant(3600),
        now() + 3600,
        None,
    )
    .await;
    assert_eq!(
        two.status(poll("n")).await["authToken"],
        grant.access_token.as_str()
    );
    assert_eq!(two.status(poll("other")).await["state"], "active");

    one.call("logout", json!({"credential": "n"})).await;
    assert_eq!(two.status(json!({"credential": "n"})).await, signed_out);
    assert_eq!(two.status(poll("other")).await["state"], "active");

    // Signed in again at issuer b, expired: process two refreshes it at b, never at a.
    let at_b = b.issue_grant(3600);
    login_tokens(&mut one, "n", &b, &at_b, now() - 10, None).await;
    let status = two.status(poll("n")).await;
    assert_eq!(status["state"], "active", "{status}");
    assert!(
        status["authToken"].as_str().unwrap().starts_with("at-b-"),
        "{status}"
    );
    assert_eq!((a.token_hits(), b.refresh_hits()), (0, 1));
    assert_eq!(read_named(home, "n")["issuer"], b.url());
    assert_eq!(
        one.status(poll("n")).await["authToken"],
        status["authToken"]
    );
    assert_eq!(b.refresh_hits(), 1);
}

/// The keyring backend (§13 Storage): one item per credential, with the attributes service,
/// home and credential; writing the default credential's item, or another named one's, never
/// replaces a named item; a logout deletes only its own item; no secret in any file.
#[tokio::test]
async fn on_the_keyring_each_credential_has_its_own_item_and_writes_never_replace_another() {
    use auth_app_server_tests::keyring::{SecretService, files_containing};
    let keyring = SecretService::start();
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let start = || async {
        let mut server =
            ServerProcess::start_with(home, &["--storage", "keyring"], &keyring.env()).await;
        server.initialize().await;
        server
    };
    let mut server = start().await;
    let keys = [
        ("a", "sk-keyring-a-0123456789abcdef"),
        ("b", "sk-keyring-b-0123456789abcdef"),
    ];
    for (name, key) in keys {
        server
            .call(
                "login",
                json!({"type": "apiKey", "apiKey": key, "credential": name}),
            )
            .await;
    }
    // The default credential written twice (the second write replaces its own item), and a
    // named one rewritten: each named item stays.
    for key in ["sk-keyring-d1-0123456789abcdef", KEY] {
        server
            .call("login", json!({"type": "apiKey", "apiKey": key}))
            .await;
    }
    server
        .call(
            "login",
            json!({"type": "apiKey", "apiKey": keys[0].1, "credential": "a"}),
        )
        .await;
    let item = |name: &str| {
        keyring
            .lookup_credential(home, name)
            .map(|text| serde_json::from_str::<Value>(&text).unwrap()["api_key"].clone())
    };
    assert_eq!(item("a"), Some(json!(keys[0].1)));
    assert_eq!(item("b"), Some(json!(keys[1].1)));
    // A fresh process reads each from its own item.
    let mut other = start().await;
    for (name, key) in keys {
        let status = other.status(poll(name)).await;
        assert_eq!(status["authToken"], key, "{name}: {status}");
        assert_eq!(status["storage"], "keyring");
    }
    assert_eq!(other.status(poll("default")).await["authToken"], KEY);
    let found = files_containing(home, &[keys[0].1, keys[1].1, KEY]);
    assert!(found.is_empty(), "secrets in files: {found:?}");

    server.call("logout", json!({"credential": "a"})).await;
    assert_eq!(item("a"), None);
    assert_eq!(item("b"), Some(json!(keys[1].1)));
    assert_eq!(other.status(poll("b")).await["authToken"], keys[1].1);
    assert_eq!(other.status(poll("default")).await["authToken"], KEY);
    assert_eq!(
        other.status(json!({"credential": "a"})).await["state"],
        "signedOut"
    );
    let listed = other.call("listCredentials", json!({})).await;
    assert_eq!(
        listed["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (
                c["credential"].as_str().unwrap(),
                c["storage"].as_str().unwrap()
            ))
            .collect::<Vec<_>>(),
        [("b", "keyring"), ("default", "keyring")],
        "{listed}"
    );
}

/// A `[credentials.NAME]` table with only `protected_resource` signs its credential in with
/// zero configuration; the table wins over a `provider` object naming another issuer.
#[tokio::test]
async fn a_credentials_table_with_a_protected_resource_signs_in_and_wins_over_the_provider_object()
{
    let (table_issuer, other) = (issuer("t").await, issuer("o").await);
    table_issuer.set_registration_mode(RegistrationMode::Ok);
    other.set_registration_mode(RegistrationMode::Ok);
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let resource = format!("{}/mcp", table_issuer.url());
    std::fs::write(
        home.join("config.toml"),
        format!("[credentials.t]\nprotected_resource = \"{resource}\"\n"),
    )
    .unwrap();
    let mut server = ServerProcess::start_initialized(home).await;
    let started = server
        .call(
            "login",
            json!({"type": "oauth", "credential": "t",
                   "provider": {"protectedResource": format!("{}/mcp", other.url())}}),
        )
        .await;
    let auth_url = started["authUrl"].as_str().unwrap().to_owned();
    assert!(
        auth_url.starts_with(&format!("{}/authorize", table_issuer.url())),
        "{auth_url}"
    );
    let (status, page) = browser_sign_in(&auth_url).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        server.notification("loginCompleted").await["credential"],
        "t"
    );
    let stored = read_named(home, "t");
    assert_eq!(stored["issuer"], table_issuer.url());
    assert_eq!(stored["resource"], resource);
    assert_eq!(
        (table_issuer.registrations(), other.registrations()),
        (1, 0)
    );
    assert_eq!(other.hits("/.well-known/oauth-protected-resource/mcp"), 0);
    let token = server.status(poll("t")).await["authToken"].clone();
    assert!(token.as_str().unwrap().starts_with("at-t-"), "{token}");
}

/// (4) on the keyring backend: two processes refreshing one named credential at once make
/// one token request; both get the new token; the other credential's item is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_keyring_two_processes_refreshing_one_credential_make_one_request() {
    use auth_app_server_tests::keyring::SecretService;
    let keyring = SecretService::start();
    let (a, b) = (issuer("a").await, issuer("b").await);
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let start = || async {
        let mut server =
            ServerProcess::start_with(home, &["--storage", "keyring"], &keyring.env()).await;
        server.initialize().await;
        server
    };
    let mut one = start().await;
    let (grant_a, grant_b) = (a.issue_grant(3600), b.issue_grant(3600));
    login_tokens(&mut one, "a", &a, &grant_a, now() - 10, None).await;
    login_tokens(&mut one, "b", &b, &grant_b, now() + 3600, None).await;
    let b_item = keyring.lookup_credential(home, "b").expect("b's item");
    let mut two = start().await;

    let gate = Gate::new();
    a.set_mode(TokenMode::Held(gate.clone()));
    let id_one = one.send_request("getAuthStatus", Some(poll("a"))).await;
    gate.held(1).await;
    let id_two = two.send_request("getAuthStatus", Some(poll("a"))).await;
    assert_eq!(
        two.status(poll("b")).await["authToken"],
        grant_b.access_token.as_str()
    );
    gate.open();
    let (answer_one, answer_two) = tokio::join!(one.response(id_one), two.response(id_two));
    assert_eq!(answer_one["result"]["state"], "active", "{answer_one}");
    assert_eq!(
        answer_one["result"]["authToken"],
        answer_two["result"]["authToken"]
    );
    assert_eq!(a.refresh_hits(), 1);
    assert_eq!(b.token_hits(), 0);
    let stored: Value =
        serde_json::from_str(&keyring.lookup_credential(home, "a").unwrap()).unwrap();
    assert_eq!(
        stored["tokens"]["access_token"],
        answer_one["result"]["authToken"]
    );
    assert_eq!(keyring.lookup_credential(home, "b").unwrap(), b_item);
    assert!(
        !named_path(home, "a").exists(),
        "no file for a keyring credential"
    );
}

/// A tokens login records the issuer its `provider` object names (the object is known nowhere
/// else), whatever the issuer's metadata says at that moment (here: another issuer): a
/// restarted process refreshes the credential at that issuer from its file alone.
#[tokio::test]
async fn a_tokens_login_records_the_provider_object_s_issuer_for_later_processes() {
    let a = issuer("a").await;
    a.state_issuer(Some("https://wrong.example"));
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let grant = a.issue_grant(3600);
    let mut server = ServerProcess::start_initialized(home).await;
    login_tokens(&mut server, "a", &a, &grant, now() - 10, None).await;
    let recorded = read_named(home, "a");
    let (exit, _) = server.finish().await;
    assert!(exit.success());

    a.state_true_issuer();
    let mut server = ServerProcess::start_initialized(home).await;
    let status = server.status(poll("a")).await;
    assert_eq!(
        status["state"], "active",
        "file: {recorded}\nstatus: {status}"
    );
    assert_eq!(a.refresh_hits(), 1);
    assert_eq!(read_named(home, "a")["issuer"], a.url());
}

/// A transient failure puts only its own credential in backoff: a provider answering 429 with
/// `Retry-After: 60` gets no more requests from polls of its credential during the backoff, a
/// provider answering 503 gets its one attempt (three requests, docs/refresh-policy.md), while
/// another credential, expired too, refreshes at its own issuer and the default one answers.
#[tokio::test]
async fn a_transient_failure_backs_off_only_its_own_credential() {
    let (a, b, c) = (issuer("a").await, issuer("b").await, issuer("c").await);
    b.set_mode(TokenMode::TooManyRequests {
        retry_after: Some(60),
    });
    c.set_mode(TokenMode::ServiceUnavailable);
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let (grant_a, grant_b, grant_c) = (
        a.issue_grant(3600),
        b.issue_grant(3600),
        c.issue_grant(3600),
    );
    let mut server = ServerProcess::start_initialized(home).await;
    server
        .call("login", json!({"type": "apiKey", "apiKey": KEY}))
        .await;
    login_tokens(&mut server, "a", &a, &grant_a, now() - 10, None).await;
    login_tokens(&mut server, "b", &b, &grant_b, now() - 10, None).await;
    login_tokens(&mut server, "c", &c, &grant_c, now() - 10, None).await;

    let status_b = server.status(poll("b")).await;
    assert_eq!(status_b["refreshError"]["kind"], "transient", "{status_b}");
    assert!(status_b.get("authToken").is_none(), "expired: {status_b}");
    let retry = status_b["refreshError"]["retryAfterSecs"].as_u64().unwrap();
    assert!(
        (1..=61).contains(&retry),
        "60 s, rounded up to the file's whole seconds: {status_b}"
    );
    assert_eq!(b.refresh_hits(), 1);
    for _ in 0..30 {
        let again = server.status(poll("b")).await;
        assert_eq!(again["refreshError"]["kind"], "transient", "{again}");
    }
    assert_eq!(b.refresh_hits(), 1, "in backoff: no more requests");

    let status_c = server.status(poll("c")).await;
    assert_eq!(status_c["refreshError"]["kind"], "transient", "{status_c}");
    assert_eq!(
        c.refresh_hits(),
        3,
        "one attempt: the request and two retries"
    );

    let status_a = server.status(poll("a")).await;
    assert_eq!(status_a["state"], "active", "{status_a}");
    assert!(status_a.get("refreshError").is_none(), "{status_a}");
    assert_eq!(a.refresh_hits(), 1);
    assert_eq!(
        server.status(json!({"includeToken": true})).await["authToken"],
        KEY
    );
    assert_eq!(b.refresh_hits(), 1);
    // b's backoff is recorded in b's file only, keyed to its refresh token.
    let stored_b = read_named(home, "b");
    assert_eq!(
        stored_b["tokens"]["refresh_token"],
        grant_b.refresh_token.as_str()
    );
    assert!(stored_b["refresh_backoff"].is_object(), "{stored_b}");
    assert!(read_named(home, "a").get("refresh_backoff").is_none());
    assert!(read_auth(home).get("refresh_backoff").is_none());
}

/// A `logout` of a name nothing is stored under answers `{}`, sends the `signedOut`
/// notification every logout sends, and creates nothing: no folder, no lock file.
#[tokio::test]
async fn logout_of_a_name_nothing_is_stored_under_creates_nothing() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let mut server = ServerProcess::start_initialized(home).await;
    assert_eq!(
        server.call("logout", json!({"credential": "never"})).await,
        json!({})
    );
    assert_eq!(
        server.notification("authStatusChanged").await,
        json!({"authMethod": null, "credential": "never", "state": "signedOut"})
    );
    assert!(!credentials_dir(home).exists());
    assert_eq!(
        server.status(json!({"credential": "never"})).await,
        json!({"authMethod": null, "state": "signedOut", "storage": "file"})
    );
    assert!(!credentials_dir(home).exists());
}
