//! The commands for people (`status`, `token`, `login`, `logout`), run as real processes:
//! exit codes, stdout/stderr, stdin handling, Ctrl-C, and the fake issuer for `token` and
//! `login --device`.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use auth_app_server_tests::issuer::CLIENT_ID;
use auth_app_server_tests::{FakeIssuer, TokenMode, now, server_binary};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "sk-cli-0123456789abcdef";

async fn run(home: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = tokio::process::Command::new(server_binary())
        .args(args)
        .arg("--home")
        .arg(home)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the command ends")
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn api_key_login_status_token_and_logout() {
    // A home the server creates itself (0700), so no permission warning mixes into stderr.
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let home = &home;
    let out = run(home, &["status"], "").await;
    assert_eq!(out.status.code(), Some(1), "signed out");
    assert!(
        text(&out.stderr).contains("Not signed in"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());

    // The key comes from stdin; the trailing newline of piped input is not a warning.
    let out = run(home, &["login", "--with-api-key"], &format!("{KEY}\n")).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "Signed in with an API key.\n");

    // Flags after or before the command name.
    let out = run(home, &["status", "--json"], "").await;
    assert_eq!(out.status.code(), Some(0));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        status,
        json!({"authMethod": "apiKey", "state": "active"}),
        "never the token"
    );
    let out = run(home, &["token"], "").await;
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), format!("{KEY}\n"))
    );
    let before = std::process::Command::new(server_binary())
        .arg("--home")
        .arg(home)
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        before.status.code(),
        Some(0),
        "flags before the command name work too"
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&before.stdout).unwrap()["state"],
        "active"
    );

    let out = run(home, &["logout"], "").await;
    assert_eq!(out.status.code(), Some(0));
    assert!(!home.join("auth.json").exists());
    let out = run(home, &["token"], "").await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not signed in"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn the_key_is_never_taken_from_the_command_line_and_failures_are_clear() {
    let home = tempfile::tempdir().unwrap();
    let out = run(home.path(), &["login"], "").await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--with-api-key"),
        "{}",
        text(&out.stderr)
    );
    let out = run(home.path(), &["login", "--with-api-key", KEY], "").await;
    assert_ne!(
        out.status.code(),
        Some(0),
        "a key on the command line is refused"
    );
    let out = run(home.path(), &["login", "--with-api-key"], "\n").await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("empty"), "{}", text(&out.stderr));
    let out = run(home.path(), &["login", "--device"], "").await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("config.toml"),
        "{}",
        text(&out.stderr)
    );

    std::fs::write(home.path().join("auth.json"), "{oops").unwrap();
    let out = run(home.path(), &["status"], "").await;
    assert_eq!(out.status.code(), Some(4));
    let message = text(&out.stderr);
    assert!(
        message.contains(&home.path().join("auth.json").display().to_string()),
        "{message}"
    );
    assert!(
        message.contains("auth.json.corrupt-"),
        "says what will happen to it: {message}"
    );
}

#[tokio::test]
async fn token_refreshes_a_stale_token_and_status_reports_poisoning() {
    let issuer = FakeIssuer::start().await;
    let home = tempfile::tempdir().unwrap();
    issuer.write_config(home.path());
    let tokens = issuer.issue_grant(3600);
    let file = json!({"version": 1, "auth_mode": "oauth", "issuer": issuer.url(), "client_id": CLIENT_ID,
        "tokens": {"access_token": tokens.access_token, "refresh_token": tokens.refresh_token, "expires_at": now() + 30}});
    std::fs::write(home.path().join("auth.json"), file.to_string()).unwrap();

    let out = run(home.path(), &["token"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(
        printed.starts_with("at-") && printed.trim() != tokens.access_token,
        "a refreshed token: {printed}"
    );
    assert_eq!(issuer.refresh_hits(), 1);

    issuer.set_mode(TokenMode::InvalidGrant);
    let stored: Value =
        serde_json::from_slice(&std::fs::read(home.path().join("auth.json")).unwrap()).unwrap();
    let mut stale = stored.clone();
    stale["tokens"]["expires_at"] = json!(now() - 10);
    std::fs::write(home.path().join("auth.json"), stale.to_string()).unwrap();
    let out = run(home.path(), &["token"], "").await;
    assert_eq!(out.status.code(), Some(2), "needs login");
    assert!(
        text(&out.stderr).contains("sign in again"),
        "{}",
        text(&out.stderr)
    );
    let out = run(home.path(), &["status"], "").await;
    assert_eq!(out.status.code(), Some(2));
    let shown = text(&out.stderr);
    assert!(
        shown.contains("invalid_grant") && shown.contains("login --device"),
        "{shown}"
    );
    assert!(
        !shown.contains("at-"),
        "status never prints a token: {shown}"
    );
    assert_eq!(
        issuer.refresh_hits(),
        2,
        "one request for the dead token, none for status"
    );
}

/// Starts `login --device` and returns the child and the user code it showed.
async fn start_device_login(
    home: &Path,
) -> (tokio::process::Child, String, tokio::process::ChildStderr) {
    let mut child = tokio::process::Command::new(server_binary())
        .args(["login", "--device", "--home"])
        .arg(home)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut shown = String::new();
    let mut buf = [0u8; 1024];
    let user_code = loop {
        let n = tokio::time::timeout(Duration::from_secs(30), stderr.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "the command ended before showing a code: {shown}");
        shown.push_str(&text(&buf[..n]));
        if let Some(code) = shown.split_whitespace().find(|w| w.starts_with("WDJB-")) {
            break code.to_owned();
        }
    };
    assert!(shown.contains("/device"), "shows the URL: {shown}");
    (child, user_code, stderr)
}

#[tokio::test]
async fn login_device_waits_for_approval() {
    let issuer = FakeIssuer::start().await;
    let home = tempfile::tempdir().unwrap();
    issuer.write_config(home.path());
    let (child, user_code, mut stderr) = start_device_login(home.path()).await;
    issuer.decide_device(&user_code, true);
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).await.unwrap();
    assert_eq!(status.status.code(), Some(0), "{rest}");
    assert!(rest.contains("Signed in."), "{rest}");
    let out = run(home.path(), &["status"], "").await;
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("user0@example.com"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn ctrl_c_cancels_a_device_login() {
    let issuer = FakeIssuer::start().await;
    let home = tempfile::tempdir().unwrap();
    issuer.write_config(home.path());
    let (child, _user_code, mut stderr) = start_device_login(home.path()).await;
    let pid = child.id().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).await.unwrap();
    assert_eq!(out.status.code(), Some(130), "{rest}");
    assert!(rest.contains("canceled"), "{rest}");
    assert!(!home.path().join("auth.json").exists());
}

#[tokio::test]
async fn commands_work_on_a_real_terminal() {
    // `script` gives the command a pseudo-terminal, as a person's shell would: the spinner and
    // terminal detection paths run (an earlier build panicked in its logger here).
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let command = format!(
        "{} status --home {}",
        server_binary().display(),
        home.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("run script(1)");
    let shown = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("Not signed in"), "{shown}");
    assert!(!shown.contains("panicked"), "{shown}");
}

/// Starts `login --browser` where no browser can be opened (no display, no `BROWSER`), with
/// stdin piped for pastes; returns the child, its stdin, its stderr and the address it showed.
async fn start_browser_login(
    home: &Path,
) -> (
    tokio::process::Child,
    tokio::process::ChildStdin,
    tokio::process::ChildStderr,
    String,
) {
    let mut child = tokio::process::Command::new(server_binary())
        .args(["login", "--browser", "--home"])
        .arg(home)
        .env_remove("RUST_LOG")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("BROWSER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let shown = read_until(&mut stderr, "Ctrl-C").await;
    assert!(shown.contains("Open this address"), "{shown}");
    assert!(shown.contains("paste it here"), "offers the paste: {shown}");
    (child, stdin, stderr, shown_auth_url(&shown))
}

/// The authorization address a `login --browser` showed.
fn shown_auth_url(shown: &str) -> String {
    shown
        .split_whitespace()
        .find(|w| w.contains("/authorize?"))
        .unwrap_or_else(|| panic!("no address shown: {shown}"))
        .to_owned()
}

/// Waits for `child` to exit; its exit code and the rest of what `output` showed.
async fn exit_and_rest(
    child: &mut tokio::process::Child,
    output: &mut (impl tokio::io::AsyncRead + Unpin),
) -> (Option<i32>, String) {
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the command ends")
        .unwrap();
    let mut rest = String::new();
    output.read_to_string(&mut rest).await.unwrap();
    (status.code(), rest)
}

/// Reads `output` until it has shown `marker`; returns all it showed.
async fn read_until(output: &mut (impl tokio::io::AsyncRead + Unpin), marker: &str) -> String {
    let mut shown = String::new();
    let mut buf = [0u8; 1024];
    while !shown.contains(marker) {
        let n = tokio::time::timeout(Duration::from_secs(30), output.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("waiting for {marker:?}; shown so far: {shown}"))
            .unwrap();
        assert!(n > 0, "the output ended before {marker:?}: {shown}");
        shown.push_str(&text(&buf[..n]));
    }
    shown
}

#[tokio::test]
async fn login_browser_without_a_display_accepts_a_pasted_address_not_a_forged_one() {
    let issuer = FakeIssuer::start().await;
    let home = tempfile::tempdir().unwrap();
    issuer.write_config(home.path());
    let (mut child, mut stdin, mut stderr, auth_url) = start_browser_login(home.path()).await;
    let redirect = issuer.approve_authorization(&auth_url);
    let state = auth_app_server_tests::query_param(&redirect, "state").unwrap();

    let forged = redirect.replace(&format!("state={state}"), "state=forged");
    stdin
        .write_all(format!("{forged}\n").as_bytes())
        .await
        .unwrap();
    let refused = read_until(&mut stderr, "keeps waiting").await;
    assert!(refused.contains("does not match"), "{refused}");
    assert!(
        !refused.contains("code-"),
        "the code is never shown: {refused}"
    );
    assert!(child.try_wait().unwrap().is_none(), "still waiting");
    assert_eq!(issuer.token_hits(), 0);

    stdin
        .write_all(format!("  {redirect}  \n").as_bytes())
        .await
        .unwrap();
    let (code, rest) = exit_and_rest(&mut child, &mut stderr).await;
    assert_eq!(code, Some(0), "{rest}");
    assert!(rest.contains("Signed in."), "{rest}");
    assert_eq!(issuer.token_hits(), 1);
    let out = run(home.path(), &["status"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[tokio::test]
async fn login_browser_offering_a_paste_still_listens() {
    let issuer = FakeIssuer::start().await;
    let home = tempfile::tempdir().unwrap();
    issuer.write_config(home.path());
    let (child, stdin, mut stderr, auth_url) = start_browser_login(home.path()).await;
    // Nothing is pasted (stdin even ends); the browser reaches the loopback listener.
    drop(stdin);
    let redirect = issuer.approve_authorization(&auth_url);
    let (status, page) = auth_app_server_tests::browser_get(&redirect)
        .await
        .expect("the listener is up");
    assert_eq!(status, 200, "{page}");
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{rest}");
    assert!(rest.contains("Signed in."), "{rest}");
}

#[tokio::test]
async fn login_browser_on_a_terminal_offers_the_paste_even_when_a_browser_opened() {
    // `script` gives the command a pseudo-terminal as stdin; `BROWSER=true` "opens" a browser
    // that never reaches the listener (as on a machine reached over SSH with a forwarded
    // display). What is written to `script`'s stdin is typed on that terminal.
    let issuer = FakeIssuer::start().await;
    let home = tempfile::tempdir().unwrap();
    issuer.write_config(home.path());
    let command = format!(
        "{} login --browser --home {}",
        server_binary().display(),
        home.path().display()
    );
    let mut child = tokio::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("BROWSER", "true")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run script(1)");
    let mut stdin = child.stdin.take().unwrap();
    let mut terminal = child.stdout.take().unwrap();
    let shown = read_until(&mut terminal, "Ctrl-C").await;
    assert!(shown.contains("Opened your browser"), "{shown}");
    assert!(shown.contains("paste it here"), "{shown}");
    let redirect = issuer.approve_authorization(&shown_auth_url(&shown));
    stdin
        .write_all(format!("{redirect}\r").as_bytes())
        .await
        .unwrap();
    let (code, rest) = exit_and_rest(&mut child, &mut terminal).await;
    assert!(rest.contains("Signed in."), "{rest}");
    assert_eq!(code, Some(0), "{rest}");
    assert_eq!(issuer.token_hits(), 1);
}
