//! The commands for people (`status`, `token`, `login`, `logout`), run as real processes:
//! exit codes, stdout/stderr, stdin handling, Ctrl-C, and the fake issuer for `token` and
//! `login --device`.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use auth_app_server_tests::issuer::CLIENT_ID;
use auth_app_server_tests::{
    FakeIssuer, TokenMode, now, run_command, server_binary, server_command,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "sk-cli-0123456789abcdef";

async fn run(home: &Path, args: &[&str], stdin: &str) -> Output {
    run_command(home, args, &[], stdin).await
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
        text(&out.stdout).contains("Not signed in"),
        "the report goes to stdout, for `status | grep`: {}",
        text(&out.stdout)
    );
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));

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
        json!({"authMethod": "apiKey", "state": "active", "storage": "file"}),
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
    // No method flag is a usage error (64), like any other, and says what to choose.
    let out = run(home.path(), &["login"], "").await;
    assert_eq!(out.status.code(), Some(64), "{}", text(&out.stderr));
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
    let shown = text(&out.stdout);
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
    start_device_login_with(home, &["login", "--device"]).await
}

/// Starts `args` (a `login --device`) and returns the child and the user code it showed.
async fn start_device_login_with(
    home: &Path,
    args: &[&str],
) -> (tokio::process::Child, String, tokio::process::ChildStderr) {
    let mut child = server_command(home, args, &[])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
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

/// Runs `args` (a `login --device`) and approves its code at `issuer`; its exit code and what
/// it told after the code.
async fn approved_device_login(
    issuer: &FakeIssuer,
    home: &Path,
    args: &[&str],
) -> (Option<i32>, String) {
    let (child, user_code, mut stderr) = start_device_login_with(home, args).await;
    issuer.decide_device(&user_code, true);
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).await.unwrap();
    (status.status.code(), rest)
}

#[tokio::test]
async fn login_device_waits_for_approval() {
    let issuer = FakeIssuer::start().await;
    let home = tempfile::tempdir().unwrap();
    issuer.write_config(home.path());
    let (code, rest) = approved_device_login(&issuer, home.path(), &["login", "--device"]).await;
    assert_eq!(code, Some(0), "{rest}");
    assert!(rest.contains("Signed in."), "{rest}");
    let out = run(home.path(), &["status"], "").await;
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).contains("user0@example.com"),
        "{}",
        text(&out.stdout)
    );
}

const WORK_KEY: &str = "sk-work-0123456789abcdef";
const MCP_KEY: &str = "sk-mcp-0123456789abcdef";

/// A home the server creates itself (0700, so no permission warning mixes into stderr) with
/// API keys signed in to the default credential, `work` and `mcp.example`.
async fn home_with_three_credentials(dir: &Path) -> std::path::PathBuf {
    let home = dir.join("home");
    for (args, key, said) in [
        (
            &["login", "--with-api-key"][..],
            KEY,
            "Signed in with an API key.\n",
        ),
        (
            &["login", "--with-api-key", "--credential", "work"],
            WORK_KEY,
            "work: Signed in with an API key.\n",
        ),
        (
            &["login", "--credential", "mcp.example", "--with-api-key"],
            MCP_KEY,
            "mcp.example: Signed in with an API key.\n",
        ),
    ] {
        let out = run(&home, args, &format!("{key}\n")).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(text(&out.stderr), said, "{args:?}");
    }
    home
}

/// The named documents in `<home>/credentials`, sorted.
fn named_documents(home: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(home.join("credentials"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn status_lists_every_credential_and_each_command_takes_one_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let home = &home_with_three_credentials(dir.path()).await;
    assert!(home.join("auth.json").is_file());
    assert_eq!(named_documents(home), ["mcp.example.json", "work.json"]);

    // Without --credential: one line per stored credential, sorted by name.
    let out = run(home, &["status"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "default: Signed in with an API key: active.\n\
         mcp.example: Signed in with an API key: active.\n\
         work: Signed in with an API key: active.\n"
    );
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));

    // --json: the very array listCredentials answers, never a token.
    let out = run(home, &["status", "--json"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let entry = |name: &str| json!({"credential": name, "authMethod": "apiKey", "state": "active", "storage": "file"});
    assert_eq!(
        listed,
        json!([entry("default"), entry("mcp.example"), entry("work")])
    );
    let mut server = auth_app_server_tests::ServerProcess::start(home).await;
    server.initialize().await;
    let answer = server.call("listCredentials", json!({})).await;
    assert_eq!(
        answer["credentials"], listed,
        "the same objects as the server's"
    );
    server.finish().await;

    // --credential: that credential's report, as the default one's is shown.
    let out = run(home, &["status", "--credential", "work", "--json"], "").await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        json!({"authMethod": "apiKey", "state": "active", "storage": "file"})
    );
    let out = run(home, &["status", "--credential", "work"], "").await;
    assert_eq!(
        text(&out.stdout),
        "Signed in with an API key: active.\nThe credentials are usable.\n\
         Credentials are kept in credentials/work.json.\n"
    );
    let out = run(home, &["status", "--credential", "default"], "").await;
    assert_eq!(
        text(&out.stdout),
        "Signed in with an API key: active.\nThe credentials are usable.\n\
         Credentials are kept in auth.json.\n",
        "`default` named is the default credential"
    );

    for (args, key) in [
        (&["token"][..], KEY),
        (&["token", "--credential", "work"], WORK_KEY),
        (&["token", "--credential", "mcp.example"], MCP_KEY),
        (&["token", "--credential", "default"], KEY),
    ] {
        let out = run(home, args, "").await;
        assert_eq!(
            (out.status.code(), text(&out.stdout)),
            (Some(0), format!("{key}\n")),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }

    // A name nothing is stored under: signed out, and nothing is created for it.
    let out = run(home, &["token", "--credential", "other"], "").await;
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("`auth-app-server login --credential other --device`"),
        "{}",
        text(&out.stderr)
    );
    let out = run(home, &["status", "--credential", "other"], "").await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).starts_with("Not signed in.\n"),
        "{}",
        text(&out.stdout)
    );
    let out = run(home, &["logout", "--credential", "other"], "").await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stderr),
        "other: Not signed in; nothing to sign out of.\n"
    );
    assert!(
        !std::fs::read_dir(home.join("credentials"))
            .unwrap()
            .any(|entry| entry
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("other")),
        "nothing stored for a name only asked about"
    );

    // logout --credential: that credential only.
    let out = run(home, &["logout", "--credential", "work"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "work: Signed out.\n");
    assert_eq!(named_documents(home), ["mcp.example.json"]);
    assert!(home.join("auth.json").is_file());
    let out = run(home, &["token", "--credential", "work"], "").await;
    assert_eq!(out.status.code(), Some(1));
    let out = run(home, &["token", "--credential", "mcp.example"], "").await;
    assert_eq!(text(&out.stdout), format!("{MCP_KEY}\n"));
    let out = run(home, &["status"], "").await;
    assert_eq!(
        text(&out.stdout),
        "default: Signed in with an API key: active.\n\
         mcp.example: Signed in with an API key: active.\n"
    );

    // logout --all: every stored credential, the default one included, one line each.
    let out = run(home, &["logout", "--all"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "default: Signed out.\nmcp.example: Signed out.\n"
    );
    assert!(out.stdout.is_empty());
    assert!(!home.join("auth.json").exists());
    assert_eq!(named_documents(home), Vec::<String>::new());

    // Nothing stored: `status` is the version-2 report again, and so is its exit code.
    let out = run(home, &["status"], "").await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        "Not signed in.\nSign in with `auth-app-server login --device`, `--browser`, or \
         `--with-api-key`.\nCredentials are kept in auth.json.\n"
    );
    let out = run(home, &["status", "--json"], "").await;
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        json!({"authMethod": null, "state": "signedOut", "storage": "file"})
    );
    let out = run(home, &["logout", "--all"], "").await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stderr),
        "No credential is stored; nothing to sign out of.\n"
    );
}

#[tokio::test]
async fn a_home_with_only_the_default_credential_shows_status_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let out = run(&home, &["login", "--with-api-key"], KEY).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = run(&home, &["status"], "").await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        "Signed in with an API key: active.\nThe credentials are usable.\n\
         Credentials are kept in auth.json.\n"
    );
    let out = run(&home, &["status", "--json"], "").await;
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        json!({"authMethod": "apiKey", "state": "active", "storage": "file"}),
        "the getAuthStatus object, not a list"
    );
    // logout --all with only the default credential names it.
    let out = run(&home, &["logout", "--all"], "").await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stderr), "default: Signed out.\n");
    assert!(!home.join("auth.json").exists());
}

#[tokio::test]
async fn a_credential_name_that_breaks_the_rule_is_a_usage_error_quoting_the_rule_only() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let out = run(&home, &["login", "--with-api-key"], KEY).await;
    assert_eq!(out.status.code(), Some(0));
    // A token pasted where the name goes is never echoed back.
    for bad in [
        "Sk-Live-Secret-Value",
        "../escape",
        "-leading-hyphen",
        &"a".repeat(65),
        "",
    ] {
        let flag = format!("--credential={bad}");
        for (args, stdin) in [
            (&["status", &flag][..], ""),
            (&["token", &flag], ""),
            (&["login", "--with-api-key", &flag], KEY),
            (&["login", "--device", &flag], ""),
            (&["logout", &flag], ""),
        ] {
            let out = run(&home, args, stdin).await;
            let said = text(&out.stderr);
            assert_eq!(out.status.code(), Some(64), "{args:?}: {said}");
            assert!(
                said.contains("--credential must match ^[a-z0-9][a-z0-9._-]{0,63}$"),
                "{args:?}: {said}"
            );
            assert!(
                bad.is_empty() || !said.contains(bad),
                "{args:?} quotes the value: {said}"
            );
            assert!(out.stdout.is_empty(), "{args:?}");
        }
    }
    assert!(
        !home.join("credentials").exists(),
        "nothing was made for a bad name"
    );
    let out = run(&home, &["token"], "").await;
    assert_eq!(text(&out.stdout), format!("{KEY}\n"), "nothing was changed");

    // --all names every credential: with a name, the command line contradicts itself.
    let out = run(&home, &["logout", "--all", "--credential", "work"], "").await;
    assert_eq!(out.status.code(), Some(64));
    assert!(
        text(&out.stderr).contains("Usage:"),
        "{}",
        text(&out.stderr)
    );
    assert!(home.join("auth.json").is_file());
}

#[tokio::test]
async fn a_listed_credential_that_cannot_be_read_is_shown_and_sets_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let home = &home_with_three_credentials(dir.path()).await;
    let broken = home.join("credentials/broken.json");
    std::fs::write(&broken, "{oops").unwrap();

    let out = run(home, &["status"], "").await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 4, "{shown}");
    assert!(
        lines[0].starts_with("broken: the stored credentials in ")
            && lines[0].contains(&broken.display().to_string()),
        "{shown}"
    );
    assert_eq!(
        &lines[1..],
        [
            "default: Signed in with an API key: active.",
            "mcp.example: Signed in with an API key: active.",
            "work: Signed in with an API key: active.",
        ]
    );
    let out = run(home, &["status", "--json"], "").await;
    assert_eq!(out.status.code(), Some(4));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["credential"], "broken");
    assert_eq!(listed[0]["authMethod"], Value::Null);
    assert_eq!(listed[0]["state"], "needsLogin");
    assert!(listed[0]["error"].is_string(), "{listed}");
    assert_eq!(listed.as_array().unwrap().len(), 4);

    // --credential on it: the error, as for auth.json.
    let out = run(home, &["status", "--credential", "broken"], "").await;
    assert_eq!(out.status.code(), Some(4));
    assert!(
        text(&out.stderr).contains(&broken.display().to_string()),
        "{}",
        text(&out.stderr)
    );

    // logout --all signs out of it too (its document is moved aside).
    let out = run(home, &["logout", "--all"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    let told: Vec<&str> = said
        .lines()
        .filter(|line| !line.contains(" WARN "))
        .collect();
    assert_eq!(
        told,
        [
            "broken: Signed out.",
            "default: Signed out.",
            "mcp.example: Signed out.",
            "work: Signed out.",
        ],
        "{said}"
    );
    assert!(!broken.exists());
    assert!(!home.join("auth.json").exists());
    assert_eq!(named_documents(home), Vec::<String>::new());
}

#[tokio::test]
async fn a_named_credential_signs_in_with_the_provider_of_its_table() {
    let issuer = FakeIssuer::start().await;
    let home = tempfile::tempdir().unwrap();

    // No provider anywhere for it: what to add, in terminal words.
    let out = run(
        home.path(),
        &["login", "--device", "--credential", "work"],
        "",
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let said = text(&out.stderr);
    assert!(
        said.contains("[credentials.work]") && said.contains("config.toml"),
        "{said}"
    );
    assert!(!said.contains("\"provider\""), "no protocol words: {said}");

    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[credentials.work]\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\n",
            issuer.url()
        ),
    )
    .unwrap();
    let args = ["login", "--device", "--credential", "work"];
    let (code, rest) = approved_device_login(&issuer, home.path(), &args).await;
    assert_eq!(code, Some(0), "{rest}");
    assert!(rest.contains("work: Signed in.\n"), "{rest}");
    assert!(home.path().join("credentials/work.json").is_file());
    assert!(
        !home.path().join("auth.json").exists(),
        "the default credential is untouched"
    );

    let out = run(home.path(), &["status"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "work: Signed in with OAuth as user0@example.com: active.\n"
    );
    let out = run(home.path(), &["token", "--credential", "work"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("at-"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(issuer.refresh_hits(), 0, "a fresh token is not renewed");
    let out = run(home.path(), &["token"], "").await;
    assert_eq!(out.status.code(), Some(1), "the default one is signed out");
}

#[tokio::test]
async fn a_full_home_refuses_a_new_credential_in_terminal_words() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let out = run(
        &home,
        &["login", "--with-api-key", "--credential", "c0"],
        KEY,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Only names are counted: empty documents fill the home as well as real ones.
    for i in 1..256 {
        std::fs::write(home.join(format!("credentials/c{i}.json")), "{}").unwrap();
    }
    let out = run(
        &home,
        &["login", "--with-api-key", "--credential", "one-more"],
        KEY,
    )
    .await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    assert!(
        said.contains("256") && said.contains("`auth-app-server logout --credential NAME`"),
        "{said}"
    );
    assert!(
        !said.contains("\"credential\""),
        "no protocol words: {said}"
    );
    assert!(!home.join("credentials/one-more.json").exists());
    // A credential already stored signs in again.
    let out = run(
        &home,
        &["login", "--with-api-key", "--credential", "c0"],
        KEY,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[tokio::test]
async fn the_help_tells_the_credential_flags_and_the_list_exit_code() {
    let home = tempfile::tempdir().unwrap();
    for command in ["status", "token", "login", "logout"] {
        let out = run(home.path(), &[command, "--help"], "").await;
        let help = text(&out.stdout);
        assert!(
            help.contains("--credential <NAME>") && help.contains("^[a-z0-9][a-z0-9._-]{0,63}$"),
            "{command}: {help}"
        );
    }
    let out = run(home.path(), &["logout", "--help"], "").await;
    assert!(text(&out.stdout).contains("--all"), "{}", text(&out.stdout));
    let out = run(home.path(), &["status", "--help"], "").await;
    assert!(
        text(&out.stdout).contains("highest code"),
        "{}",
        text(&out.stdout)
    );
    let out = run(home.path(), &["--help"], "").await;
    let help = text(&out.stdout);
    assert!(
        !help.contains("--credential <NAME>"),
        "the server takes no --credential: {help}"
    );
    assert!(help.contains("logout --all"), "{help}");
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
    let command = format!("{{bin}} status --home {}", home.display());
    let (code, shown) = Terminal::start(&command, &[]).finish().await;
    assert_eq!(code, Some(1), "{shown}");
    assert!(shown.contains("Not signed in"), "{shown}");
    assert!(!shown.contains("panicked"), "{shown}");
}

/// The binary run by `script(1)` on a pseudo-terminal, as from a person's shell, through `sh -c
/// shell_command` (`{bin}` stands for the binary). What is typed is written to `script`'s
/// stdin; what the terminal shows (the program's output and any echo) is read from its stdout.
///
/// A Ctrl-C typed there reaches the whole foreground process group, the shell included. A
/// person's interactive shell puts the program in a group of its own and lives on; this
/// non-interactive `sh` would die with it (dash does, bash does not), so it traps SIGINT. A
/// trapped signal is back to its default in the program it starts, which gets the Ctrl-C as
/// it would from a person's shell. `SHELL` is pinned to `/bin/sh` so that the outcome does not
/// depend on whose shell runs the tests.
struct Terminal {
    script: tokio::process::Child,
    keyboard: tokio::process::ChildStdin,
    screen: tokio::process::ChildStdout,
}

impl Terminal {
    /// Starts `shell_command` with `env` added to the environment.
    fn start(shell_command: &str, env: &[(&str, &str)]) -> Self {
        let command = format!(
            "trap : INT; {}",
            shell_command.replace("{bin}", &server_binary().display().to_string())
        );
        let mut script = tokio::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .envs(env.iter().copied())
            .env("SHELL", "/bin/sh")
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("run script(1)");
        let keyboard = script.stdin.take().unwrap();
        let screen = script.stdout.take().unwrap();
        Self {
            script,
            keyboard,
            screen,
        }
    }

    /// Reads the screen until it shows `marker`; returns all it showed.
    async fn read_until(&mut self, marker: &str) -> String {
        read_until(&mut self.screen, marker).await
    }

    async fn type_text(&mut self, typed: &str) {
        self.keyboard.write_all(typed.as_bytes()).await.unwrap();
        self.keyboard.flush().await.unwrap();
    }

    /// Waits for the command to end; its exit code and the rest of what the screen showed.
    async fn finish(mut self) -> (Option<i32>, String) {
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), self.screen.read_to_end(&mut rest))
            .await
            .unwrap_or_else(|_| panic!("the command did not end; the screen:\n{}", text(&rest)))
            .unwrap();
        drop(self.keyboard);
        let status = tokio::time::timeout(Duration::from_secs(30), self.script.wait())
            .await
            .expect("the command ends")
            .unwrap();
        (status.code(), text(&rest))
    }
}

/// Runs `shell_command` on a [`Terminal`]; once the screen shows `wait_for`, `typed` is typed.
/// Returns everything the terminal showed.
async fn on_terminal(shell_command: &str, wait_for: &str, typed: &str) -> String {
    let mut terminal = Terminal::start(shell_command, &[]);
    let mut screen = terminal.read_until(wait_for).await;
    terminal.type_text(typed).await;
    screen.push_str(&terminal.finish().await.1);
    screen
}

#[tokio::test]
async fn a_typed_api_key_is_not_echoed_and_the_terminal_is_restored() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let command = format!(
        "{{bin}} login --with-api-key --home {}; echo \"exit=$?\"; stty -a",
        home.display()
    );
    let screen = on_terminal(&command, "press Enter", &format!("{KEY}\n")).await;
    assert!(screen.contains("exit=0"), "{screen}");
    assert!(screen.contains("(it is not shown)"), "{screen}");
    assert!(!screen.contains(KEY), "the key was echoed:\n{screen}");
    assert!(screen.contains("Signed in with an API key."), "{screen}");
    assert!(
        screen.contains(" echo ") && screen.contains("-echonl"),
        "echo is back on, as it was, after the prompt:\n{screen}"
    );
    let out = run(&home, &["token"], "").await;
    assert_eq!(
        text(&out.stdout),
        format!("{KEY}\n"),
        "the typed key was stored"
    );
}

#[tokio::test]
async fn ctrl_c_at_the_api_key_prompt_cancels_and_restores_echo() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let command = format!(
        "{{bin}} login --with-api-key --home {}; echo \"exit=$?\"; stty -a",
        home.display()
    );
    let screen = on_terminal(&command, "press Enter", "\x03").await;
    assert!(screen.contains("exit=130"), "{screen}");
    assert!(screen.contains("canceled"), "{screen}");
    assert!(screen.contains(" echo "), "echo is back on:\n{screen}");
    assert!(!home.join("auth.json").exists());
}

#[tokio::test]
async fn the_bare_binary_on_a_terminal_says_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    // Ctrl-D at the start of a line ends the input, and with it the server.
    let command = format!("{{bin}} --home {}; echo \"exit=$?\"", home.display());
    let screen = on_terminal(&command, "--help", "\x04").await;
    assert!(
        screen.contains("serving JSON-RPC 2.0 on stdin/stdout") && screen.contains("Ctrl-D"),
        "{screen}"
    );
    assert!(screen.contains("exit=0"), "{screen}");

    // Spawned by an app (pipes), it says nothing of the kind.
    let out = run(&home, &[], "").await;
    assert_eq!(out.status.code(), Some(0));
    assert!(
        !text(&out.stderr).contains("--help"),
        "{}",
        text(&out.stderr)
    );

    let out = run(&home, &["--help"], "").await;
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    assert!(
        help.contains("With no command, the server speaks JSON-RPC 2.0 on stdin/stdout"),
        "{help}"
    );
}

#[tokio::test]
async fn usage_errors_have_their_own_exit_code() {
    let home = tempfile::tempdir().unwrap();
    for args in [
        &["status", "--jsno"][..],
        &["stauts"],
        &["login", "--device", "--browser"],
        &["generate-json-schema"],
        &[
            "generate-json-schema",
            "--out",
            "x",
            "--issuer",
            "https://i",
        ],
    ] {
        let out = run(home.path(), args, "").await;
        assert_eq!(
            out.status.code(),
            Some(64),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stderr).contains("Usage:"), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let out = run(home.path(), &["--help"], "").await;
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).contains("64 usage error"),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test]
async fn each_help_shows_the_log_level_default_that_applies() {
    let home = tempfile::tempdir().unwrap();
    let out = run(home.path(), &["--help"], "").await;
    assert!(text(&out.stdout).contains("[default: info]"));
    for command in ["status", "token", "login", "logout", "generate-json-schema"] {
        let out = run(home.path(), &[command, "--help"], "").await;
        let help = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{command}");
        assert!(
            help.contains("[default: warn]") && !help.contains("[default: info]"),
            "{command}: {help}"
        );
    }
}

#[tokio::test]
async fn generate_json_schema_says_what_it_writes_and_what_it_wrote() {
    let home = tempfile::tempdir().unwrap();
    let out = run(home.path(), &["generate-json-schema", "--help"], "").await;
    let help = text(&out.stdout);
    assert!(help.contains("TypeScript"), "{help}");
    for flag in [
        "--issuer",
        "--client-id",
        "--scope",
        "--protected-resource",
        "--home",
    ] {
        assert!(!help.contains(flag), "{flag} does not apply: {help}");
    }
    let dir = home.path().join("schema");
    let out = std::process::Command::new(server_binary())
        .args(["generate-json-schema", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("JSON Schema files")
            && said.contains("TypeScript files")
            && said.contains(&dir.join("typescript").display().to_string()),
        "{said}"
    );
    assert!(dir.join("LoginParams.json").is_file());
    assert!(dir.join("typescript/LoginParams.ts").is_file());
}

#[tokio::test]
async fn a_broken_config_toml_exits_4_and_says_where() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        "[provider]\nissuer = https://login.example.com\n",
    )
    .unwrap();
    for command in ["status", "token"] {
        let out = run(home.path(), &[command], "").await;
        assert_eq!(
            out.status.code(),
            Some(4),
            "{command}: {}",
            text(&out.stderr)
        );
        let error = text(&out.stderr);
        assert!(
            error.contains("config.toml") && error.contains("line 2, column 10"),
            "{command}: {error}"
        );
        assert!(!error.contains("restart the server"), "{command}: {error}");
        assert!(!error.contains("ERROR"), "not a log line: {error}");
    }
    let out = run(home.path(), &["status", "--json"], "").await;
    assert_eq!(out.status.code(), Some(4));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        status["state"], "signedOut",
        "what is stored is shown all the same"
    );

    // API keys do not need the provider: the login works, with a warning.
    let out = run(home.path(), &["login", "--with-api-key"], KEY).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("warning: "),
        "{}",
        text(&out.stderr)
    );
    let out = run(home.path(), &["login", "--device"], "").await;
    assert_eq!(out.status.code(), Some(4));
    assert!(
        !text(&out.stderr).contains("restart"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn a_broken_config_toml_is_told_once() {
    // A private home (as `mkdir -m 700` makes it), so no permission warning mixes in.
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(&home)
        .unwrap();
    std::fs::write(
        home.join("config.toml"),
        "[provider]\nissuer = https://login.example.com\n",
    )
    .unwrap();
    let where_ = "line 2, column 10";
    for (args, stdin) in [
        (&["status"][..], ""),
        (&["token"], ""),
        (&["login", "--device"], ""),
        (&["login", "--with-api-key"], KEY),
        (&["logout"], ""),
    ] {
        let out = run(&home, args, stdin).await;
        let said = text(&out.stderr);
        assert_eq!(said.matches(where_).count(), 1, "{args:?}: {said}");
        assert!(!said.contains("WARN"), "no log line beside it: {said}");
    }
    // The server logs it once too (as an error), and serves API keys all the same.
    let mut server = auth_app_server_tests::ServerProcess::start(&home).await;
    server.initialize().await;
    let said = server.wait_for_stderr("auth-app-server starting").await;
    assert_eq!(said.matches(where_).count(), 1, "{said}");
}

#[tokio::test]
async fn the_version_is_the_package_version_everywhere() {
    let version = env!("CARGO_PKG_VERSION");
    let home = tempfile::tempdir().unwrap();
    let out = run(home.path(), &["--version"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("auth-app-server {version}\n"));

    let mut server = auth_app_server_tests::ServerProcess::start(home.path()).await;
    let answer = server.initialize().await;
    assert_eq!(answer["serverInfo"]["version"], version, "{answer}");

    // The npm client carries the same version; scripts/package-npm.mjs stamps it on the
    // platform packages and the client's optionalDependencies, and refuses a mismatch.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients/typescript/package.json");
    let client: Value = serde_json::from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap();
    assert_eq!(
        client["version"], version,
        "clients/typescript/package.json"
    );
}

#[tokio::test]
async fn terminal_errors_are_in_terminal_words() {
    let home = tempfile::tempdir().unwrap();
    let protocol_words = ["\"apiKey\"", "login type", "type \"", "restart the server"];
    let jwt = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln";
    let cases: [(&[&str], &str, &str); 3] = [
        (
            &["login", "--with-api-key"],
            "\n",
            "--with-api-key < key.txt",
        ),
        (&["login", "--device"], "", "--issuer"),
        (&["login", "--with-api-key"], jwt, "login --device"),
    ];
    for (args, stdin, expected) in cases {
        let out = run(home.path(), args, stdin).await;
        let said = text(&out.stderr);
        assert!(said.contains(expected), "{args:?}: {said}");
        for words in protocol_words {
            assert!(!said.contains(words), "{args:?} says {words}: {said}");
        }
    }
}

#[tokio::test]
async fn status_and_token_agree_that_an_expired_token_is_not_usable() {
    let issuer = FakeIssuer::start().await;
    let (home, _tokens) = auth_app_server_tests::seeded_home(&issuer, -10);
    issuer.set_mode(TokenMode::ServiceUnavailable);

    // Nothing has tried to renew it yet.
    let out = run(home.path(), &["status"], "").await;
    let shown = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{shown}");
    assert!(
        shown.contains("not usable") && !shown.contains("are usable"),
        "{shown}"
    );
    assert_eq!(issuer.refresh_hits(), 0, "status makes no request");

    // A refresh failed transiently.
    let out = run(home.path(), &["token"], "").await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    assert!(issuer.refresh_hits() >= 1);
    let out = run(home.path(), &["status"], "").await;
    let shown = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{shown}");
    assert!(
        shown.contains("degraded") && shown.contains("not usable") && !shown.contains("are usable"),
        "{shown}"
    );
    let out = run(home.path(), &["status", "--json"], "").await;
    assert_eq!(out.status.code(), Some(3));
}

#[tokio::test]
async fn the_example_config_file_is_one_the_loader_accepts() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/config.example.toml");
    let example = std::fs::read_to_string(&path).unwrap();
    // `# key = value` lines are the optional keys: each must be one the loader knows too.
    let is_key = |line: &str| {
        line.split_once(" = ").is_some_and(|(key, _)| {
            !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        })
    };
    let uncommented: Vec<&str> = example
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(key) if is_key(key) => key,
            _ => line,
        })
        .collect();
    let keys = |lines: &[&str]| lines.iter().filter(|line| is_key(line)).count();
    let as_written: Vec<&str> = example.lines().collect();
    assert!(
        keys(&uncommented) > keys(&as_written) && keys(&as_written) >= 3,
        "the example shows required and optional keys"
    );
    for config in [as_written, uncommented] {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("config.toml"), config.join("\n")).unwrap();
        let out = run(home.path(), &["status", "--json"], "").await;
        assert_eq!(
            out.status.code(),
            Some(1),
            "signed out, and the configuration is valid: {}",
            text(&out.stderr)
        );
        assert!(
            !text(&out.stderr).contains("config.toml"),
            "{}",
            text(&out.stderr)
        );
    }
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
    let mut child = server_command(home, &["login", "--browser"], &[])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("BROWSER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
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
    let command = format!("{{bin}} login --browser --home {}", home.path().display());
    let mut terminal = Terminal::start(&command, &[("BROWSER", "true")]);
    let shown = terminal.read_until("Ctrl-C").await;
    assert!(shown.contains("Opened your browser"), "{shown}");
    assert!(shown.contains("paste it here"), "{shown}");
    let redirect = issuer.approve_authorization(&shown_auth_url(&shown));
    terminal.type_text(&format!("{redirect}\r")).await;
    let (code, rest) = terminal.finish().await;
    assert!(rest.contains("Signed in."), "{rest}");
    assert_eq!(code, Some(0), "{rest}");
    assert_eq!(issuer.token_hits(), 1);
}
