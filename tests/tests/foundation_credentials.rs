//! docs/protocol.md and docs/storage.md over real pipes: API-key and host-token logins, logout, the file on disk,
//! a corrupt or unwritable store, two processes on one home, and secrets kept out of logs.

use std::path::Path;

use auth_app_server_tests::{ServerProcess, read_auth};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

const KEY: &str = "sk-e2e-0123456789abcdef";

fn jwt(claims: Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
    format!(
        "{header}.{}.sig",
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn api_key_login_stores_a_private_file_and_announces_before_answering() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let mut server = ServerProcess::start_initialized(&home).await;

    let id = server
        .send_request("login", Some(json!({"type": "apiKey", "apiKey": KEY})))
        .await;
    let first = server.next_message().await;
    assert_eq!(
        first,
        json!({"jsonrpc": "2.0", "method": "authStatusChanged", "params": {"authMethod": "apiKey", "state": "active", "credential": "default"}})
    );
    let answer = server.response(id).await;
    assert_eq!(answer["result"], json!({"type": "apiKey", "warnings": []}));

    assert_eq!(
        read_auth(&home),
        json!({"version": 1, "auth_mode": "api_key", "api_key": KEY})
    );
    #[cfg(unix)]
    {
        assert_eq!(mode(&home), 0o700);
        assert_eq!(mode(&home.join("auth.json")), 0o600);
    }
    assert_eq!(
        server.status(json!({})).await,
        json!({"authMethod": "apiKey", "state": "active", "storage": "file"})
    );
    assert_eq!(
        server.status(json!({"includeToken": true})).await,
        json!({"authMethod": "apiKey", "state": "active", "authToken": KEY, "storage": "file"})
    );
}

#[tokio::test]
async fn empty_keys_are_refused_and_suspicious_ones_warned_about() {
    let home = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start_initialized(home.path()).await;
    for key in ["", "   \n\t"] {
        let error = server
            .call_error("login", json!({"type": "apiKey", "apiKey": key}))
            .await;
        assert_eq!(error["code"], -32602, "{key:?}");
    }
    assert!(!home.path().join("auth.json").exists());

    let token_as_key = jwt(json!({"sub": "u", "exp": 4_000_000_000u64}));
    let result = server
        .call(
            "login",
            json!({"type": "apiKey", "apiKey": format!(" {token_as_key}\n")}),
        )
        .await;
    let warnings: Vec<&str> = result["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(warnings.iter().any(|w| w.contains("JWT")), "{warnings:?}");
    assert!(
        warnings.iter().any(|w| w.contains("whitespace")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().all(|w| !w.contains(&token_as_key)),
        "warnings never quote the key"
    );
    assert_eq!(
        read_auth(home.path())["api_key"],
        token_as_key,
        "stored trimmed"
    );
}

#[tokio::test]
async fn host_tokens_are_stored_and_described() {
    let home = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start_initialized(home.path()).await;
    let id_token = jwt(json!({"sub": "user-1", "email": "ada@example.com", "name": "Ada"}));
    let result = server
        .call("login", json!({"type": "tokens", "accessToken": "at-host", "refreshToken": "rt-host", "idToken": id_token, "expiresAt": 4_000_000_000u64}))
        .await;
    assert_eq!(result, json!({"type": "tokens"}));
    let status = server.status(json!({"includeToken": true})).await;
    assert_eq!(
        status,
        json!({"authMethod": "oauth", "state": "active", "authToken": "at-host", "expiresAt": 4_000_000_000u64,
               "account": {"subject": "user-1", "email": "ada@example.com", "name": "Ada"}, "storage": "file"})
    );
    let stored = read_auth(home.path());
    assert_eq!(stored["auth_mode"], "oauth");
    assert_eq!(stored["tokens"]["refresh_token"], "rt-host");
    assert!(
        stored.get("issuer").is_none(),
        "no provider configured: stored without issuer"
    );
}

#[tokio::test]
async fn interactive_logins_without_a_provider_say_how_to_configure_one() {
    let home = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start_initialized(home.path()).await;
    for kind in ["oauth", "deviceCode"] {
        let error = server.call_error("login", json!({"type": kind})).await;
        assert_eq!(error["code"], -32010, "{kind}");
        assert!(
            error["message"].as_str().unwrap().contains("config.toml"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn logout_deletes_the_file_and_works_when_signed_out() {
    let home = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start_initialized(home.path()).await;
    assert_eq!(server.call("logout", Value::Null).await, json!({}));
    assert_eq!(
        server.notification("authStatusChanged").await,
        json!({"authMethod": null, "state": "signedOut", "credential": "default"})
    );

    server
        .call("login", json!({"type": "apiKey", "apiKey": KEY}))
        .await;
    assert_eq!(server.call("logout", json!({})).await, json!({}));
    assert!(!home.path().join("auth.json").exists());
    let changes = server.take_notifications("authStatusChanged");
    assert_eq!(
        changes.last().unwrap(),
        &json!({"authMethod": null, "state": "signedOut", "credential": "default"}),
        "{changes:?}"
    );
    assert_eq!(
        server.status(json!({})).await,
        json!({"authMethod": null, "state": "signedOut", "storage": "file"})
    );
}

#[tokio::test]
async fn a_corrupt_file_is_reported_never_lost_and_moved_aside_by_login() {
    let home = tempfile::tempdir().unwrap();
    let corrupt = b"{\"version\":1,\"auth_mode\":\"api_key\",\"api_key\":\"sk-half".to_vec();
    std::fs::write(home.path().join("auth.json"), &corrupt).unwrap();
    let mut server = ServerProcess::start_initialized(home.path()).await;

    let error = server.call_error("getAuthStatus", json!({})).await;
    assert_eq!(error["code"], -32011);
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains(&home.path().join("auth.json").display().to_string()),
        "{message}"
    );
    assert!(!message.contains("sk-half"), "{message}");
    assert_eq!(
        std::fs::read(home.path().join("auth.json")).unwrap(),
        corrupt,
        "untouched"
    );

    server
        .call("login", json!({"type": "apiKey", "apiKey": KEY}))
        .await;
    let aside: Vec<_> = std::fs::read_dir(home.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("auth.json.corrupt-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        std::fs::read(&aside[0]).unwrap(),
        corrupt,
        "moved aside intact"
    );
    assert_eq!(read_auth(home.path())["api_key"], KEY);

    // logout on a corrupt file moves it aside too.
    std::fs::write(home.path().join("auth.json"), b"not json").unwrap();
    server.call("logout", json!({})).await;
    assert!(!home.path().join("auth.json").exists());
    let moved = std::fs::read_dir(home.path()).unwrap().filter(|e| {
        let name = e.as_ref().unwrap().file_name();
        name.to_string_lossy().starts_with("auth.json.corrupt-")
    });
    assert_eq!(moved.count(), 2);
}

/// `auth.json` that is not a regular file (docs/storage.md, bounds), made by `make`: `-32011` at
/// once, never a hang or an unbounded read; a login moves it aside, and the server exits on
/// stdin EOF.
#[cfg(unix)]
async fn assert_unreadable_and_serving(kind: &str, make: impl FnOnce(&Path)) {
    let home = tempfile::tempdir().unwrap();
    make(&home.path().join("auth.json"));
    let mut server = ServerProcess::start_initialized(home.path()).await;

    for params in [json!({}), json!({"includeToken": true})] {
        let error = server.call_error("getAuthStatus", params).await;
        assert_eq!(error["code"], -32011, "{error}");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains(kind) && message.contains("not a regular file"),
            "{message}"
        );
    }

    server
        .call("login", json!({"type": "apiKey", "apiKey": KEY}))
        .await;
    assert_eq!(read_auth(home.path())["api_key"], KEY);
    assert_eq!(server.status(json!({})).await["state"], "active");
    let (exit, _) = server.finish().await;
    assert!(exit.success());
}

/// A FIFO nobody writes to: opening it for reading used to hang the whole server.
#[cfg(unix)]
#[tokio::test]
async fn an_auth_file_that_is_a_fifo_is_unreadable_and_never_hangs() {
    assert_unreadable_and_serving("a FIFO", auth_app_server_tests::mkfifo).await;
}

/// A symlink to /dev/zero: reading it used to go on without limit.
#[cfg(unix)]
#[tokio::test]
async fn an_auth_file_linked_to_a_device_is_unreadable_and_never_read() {
    assert_unreadable_and_serving("a device", |path| {
        std::os::unix::fs::symlink("/dev/zero", path).unwrap();
    })
    .await;
}

#[tokio::test]
async fn unknown_fields_survive_a_login() {
    let home = tempfile::tempdir().unwrap();
    let file = json!({"version": 1, "auth_mode": "api_key", "api_key": "sk-old-0123456789abcd", "x_other_tool": {"theme": "dark"}});
    std::fs::write(home.path().join("auth.json"), file.to_string()).unwrap();
    let mut server = ServerProcess::start_initialized(home.path()).await;
    server
        .call("login", json!({"type": "apiKey", "apiKey": KEY}))
        .await;
    let stored = read_auth(home.path());
    assert_eq!(stored["x_other_tool"], json!({"theme": "dark"}));
    assert_eq!(stored["api_key"], KEY);
}

#[tokio::test]
async fn an_unwritable_home_gives_a_clear_error_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    // A home below a regular file cannot be created, even by root.
    std::fs::write(dir.path().join("file"), b"").unwrap();
    let home = dir.path().join("file").join("home");
    let mut server = ServerProcess::start_initialized(&home).await;
    let error = server
        .call_error("login", json!({"type": "apiKey", "apiKey": KEY}))
        .await;
    assert_eq!(error["code"], -32013);
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("Nothing was changed") && message.contains(&home.display().to_string()),
        "{message}"
    );
    assert!(!message.contains(KEY));
    assert_eq!(server.status(json!({})).await["state"], "signedOut");
}

/// Under `ulimit -f`, a write past the limit used to kill the server with SIGXFSZ; it is a
/// failed write like any other (docs/storage.md, bounds).
#[tokio::test]
async fn a_file_size_limit_fails_the_write_without_killing_the_server() {
    let home = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start_initialized(home.path()).await;
    server.limit_file_size(16);
    let error = server
        .call_error("login", json!({"type": "apiKey", "apiKey": KEY}))
        .await;
    assert_eq!(error["code"], -32013, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("Nothing was changed"), "{message}");
    assert!(!message.contains(KEY), "{message}");
    assert!(!home.path().join("auth.json").exists());
    assert_eq!(server.status(json!({})).await["state"], "signedOut");

    // Within the limit again, the same login works.
    server.limit_file_size(1024 * 1024);
    server
        .call("login", json!({"type": "apiKey", "apiKey": KEY}))
        .await;
    assert_eq!(read_auth(home.path())["api_key"], KEY);
    let (exit, _) = server.finish().await;
    assert!(exit.success());
}

#[tokio::test]
async fn two_servers_on_one_home_see_each_others_changes() {
    let home = tempfile::tempdir().unwrap();
    let mut a = ServerProcess::start_initialized(home.path()).await;
    let mut b = ServerProcess::start_initialized(home.path()).await;
    assert_eq!(b.status(json!({})).await["state"], "signedOut");

    a.call("login", json!({"type": "apiKey", "apiKey": KEY}))
        .await;
    assert_eq!(
        b.status(json!({"includeToken": true})).await["authToken"],
        KEY
    );
    assert_eq!(
        b.notification("authStatusChanged").await,
        json!({"authMethod": "apiKey", "state": "active", "credential": "default"})
    );

    b.call("logout", json!({})).await;
    assert_eq!(a.status(json!({})).await["state"], "signedOut");
    let changes = a.take_notifications("authStatusChanged");
    assert_eq!(
        changes.last().unwrap(),
        &json!({"authMethod": null, "state": "signedOut", "credential": "default"}),
        "{changes:?}"
    );
}

#[tokio::test]
async fn trace_logs_carry_no_secret_and_stdout_only_protocol_lines() {
    let home = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start_with(home.path(), &["--log-level", "trace"], &[]).await;
    server.initialize().await;
    server
        .call("login", json!({"type": "apiKey", "apiKey": KEY}))
        .await;
    server.status(json!({"includeToken": true})).await;
    server.call("login", json!({"type": "tokens", "accessToken": "at-secret-value", "refreshToken": "rt-secret-value"})).await;
    server
        .call_error("login", json!({"type": "apiKey", "apiKey": ""}))
        .await;
    server.call("logout", json!({})).await;
    let stderr = server.stderr();
    let (status, _) = server.finish().await;
    assert!(status.success());
    assert!(
        stderr.contains("TRACE") || stderr.contains("DEBUG"),
        "trace level is on: {stderr}"
    );
    for secret in [KEY, "at-secret-value", "rt-secret-value"] {
        assert!(
            !stderr.contains(secret),
            "{secret} leaked to stderr:\n{stderr}"
        );
    }
}

#[tokio::test]
async fn an_insecure_provider_is_refused_clearly_while_api_keys_still_work() {
    let home = tempfile::tempdir().unwrap();
    let config = "[provider]\nissuer = \"http://login.example.com\"\nclient_id = \"app\"\n";
    std::fs::write(home.path().join("config.toml"), config).unwrap();
    let mut server = ServerProcess::start_initialized(home.path()).await;
    let error = server
        .call_error("login", json!({"type": "deviceCode"}))
        .await;
    assert_eq!(error["code"], -32012);
    assert!(
        error["message"].as_str().unwrap().contains("https"),
        "{error}"
    );
    server
        .call("login", json!({"type": "apiKey", "apiKey": KEY}))
        .await;

    // A flag overrides the file: a loopback issuer is accepted (discovery then fails: -32012
    // again, but about reaching it, not about its scheme).
    let mut flagged =
        ServerProcess::start_with(home.path(), &["--issuer", "http://127.0.0.1:9"], &[]).await;
    flagged.initialize().await;
    let error = flagged
        .call_error("login", json!({"type": "deviceCode"}))
        .await;
    assert_eq!(error["code"], -32012);
    assert!(
        error["message"].as_str().unwrap().contains("discover"),
        "{error}"
    );
}
