//! A poll never waits on the disk (docs/refresh-policy.md, what a poll waits for): while a
//! write of `auth.json` takes seconds (a slow `fsync`, simulated by the test-only
//! `AUTH_APP_SERVER_TEST_WRITE_DELAY_MS`, which sleeps inside every atomic write between the
//! fsynced temporary file and the rename), polls of the writing process answer at once from
//! its in-memory view.

use std::path::Path;
use std::time::{Duration, Instant};

use auth_app_server_tests::{
    FakeIssuer, RegistrationMode, ServerProcess, read_auth, refresh_poll, seeded_home,
};
use serde_json::json;

/// How long each write takes: the 2 s `fsync`.
const WRITE_DELAY_MS: &str = "2000";
/// Well within the 200 ms a poll may wait for a due refresh.
const POLL_BOUND: Duration = Duration::from_millis(100);
const POLLS: usize = 100;

async fn slow_disk_server(home: &Path) -> ServerProcess {
    slow_disk_server_with(home, &[]).await
}

async fn slow_disk_server_with(home: &Path, args: &[&str]) -> ServerProcess {
    let envs = [("AUTH_APP_SERVER_TEST_WRITE_DELAY_MS", WRITE_DELAY_MS)];
    let mut server = ServerProcess::start_with(home, args, &envs).await;
    server.initialize().await;
    server
}

/// Whether a write of `auth.json` is under way: its temporary file exists.
fn writing(home: &Path) -> bool {
    writing_file(home, "auth.json")
}

/// Whether a write of `<home>/<name>` is under way: its temporary file exists.
fn writing_file(home: &Path, name: &str) -> bool {
    let prefix = format!(".{name}.");
    std::fs::read_dir(home).unwrap().flatten().any(|entry| {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        file.starts_with(&prefix) && file.ends_with(".tmp")
    })
}

/// Waits (in small steps, with a deadline) until `done` holds.
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// `POLLS` polls in a row, each answered within `POLL_BOUND` with `token`, all while the write
/// of `auth.json` is still under way.
async fn polls_answer_at_once(server: &mut ServerProcess, home: &Path, token: &str) {
    polls_answer_at_once_during(server, home, "auth.json", token).await;
}

/// `POLLS` polls in a row, each answered within `POLL_BOUND` with `token`, all while the write
/// of `<home>/<file>` is still under way.
async fn polls_answer_at_once_during(
    server: &mut ServerProcess,
    home: &Path,
    file: &str,
    token: &str,
) {
    let mut slowest = Duration::ZERO;
    for n in 0..POLLS {
        let started = Instant::now();
        let status = server.status(refresh_poll()).await;
        let took = started.elapsed();
        slowest = slowest.max(took);
        assert!(
            took < POLL_BOUND,
            "poll {n} waited {took:?} for the write (bound {POLL_BOUND:?})"
        );
        assert_eq!(status["state"], "active", "poll {n}: {status}");
        assert_eq!(status["authToken"], token, "poll {n}: {status}");
    }
    assert!(
        writing_file(home, file),
        "the write ended before the {POLLS} polls did (slowest {slowest:?}): they did not all run during it"
    );
}

#[tokio::test]
async fn polls_during_a_slow_refresh_write_answer_at_once_with_the_working_token() {
    let issuer = FakeIssuer::start().await;
    // 60 s left of an unknown lifetime: stale (300 s rule), still working.
    let (home, tokens) = seeded_home(&issuer, 60);
    let mut server = slow_disk_server(home.path()).await;

    // This poll starts the refresh; the issuer answers at once, and the write begins.
    let first = server
        .send_request("getAuthStatus", Some(refresh_poll()))
        .await;
    until("the refresh's write starts", || writing(home.path())).await;
    assert_eq!(issuer.refresh_hits(), 1);

    polls_answer_at_once(&mut server, home.path(), &tokens.access_token).await;
    let first = server.response(first).await;
    assert_eq!(first["result"]["state"], "active", "{first}");
    assert_eq!(first["result"]["authToken"], tokens.access_token, "{first}");

    // The write lands; the refreshed token is stored and handed out, with no second request.
    until("the refresh's write ends", || !writing(home.path())).await;
    let stored = server
        .poll_until(|s| s["authToken"] != tokens.access_token)
        .await;
    assert_eq!(stored["state"], "active", "{stored}");
    assert_eq!(
        read_auth(home.path())["tokens"]["access_token"],
        stored["authToken"]
    );
    assert_eq!(issuer.refresh_hits(), 1);
}

/// A home holding the API key `sk-before-0123456789`.
fn api_key_home() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let file = json!({"version": 1, "auth_mode": "api_key", "api_key": "sk-before-0123456789"});
    std::fs::write(home.path().join("auth.json"), file.to_string()).unwrap();
    home
}

#[tokio::test]
async fn polls_during_a_slow_login_write_answer_at_once_from_memory() {
    let home = api_key_home();
    let mut server = slow_disk_server(home.path()).await;

    let login = server
        .send_request(
            "login",
            Some(json!({"type": "apiKey", "apiKey": "sk-after-0123456789"})),
        )
        .await;
    until("the login's write starts", || writing(home.path())).await;
    polls_answer_at_once(&mut server, home.path(), "sk-before-0123456789").await;

    let answer = server.response(login).await;
    assert_eq!(answer["result"]["type"], "apiKey", "{answer}");
    assert!(!writing(home.path()));
    assert_eq!(
        server.status(refresh_poll()).await["authToken"],
        "sk-after-0123456789"
    );
    assert_eq!(read_auth(home.path())["api_key"], "sk-after-0123456789");
}

#[tokio::test]
async fn polls_during_a_slow_write_of_registrations_json_answer_at_once() {
    let issuer = FakeIssuer::start().await;
    issuer.set_registration_mode(RegistrationMode::Ok);
    let home = api_key_home();
    let resource = format!("{}/mcp", issuer.url());
    let mut server = slow_disk_server_with(home.path(), &["--protected-resource", &resource]).await;

    // A browser sign-in without a client_id registers one and stores it (2 s) before it
    // answers with the authorization URL.
    let login = server
        .send_request("login", Some(json!({"type": "oauth"})))
        .await;
    until("the registration's write starts", || {
        writing_file(home.path(), "registrations.json")
    })
    .await;
    polls_answer_at_once_during(
        &mut server,
        home.path(),
        "registrations.json",
        "sk-before-0123456789",
    )
    .await;

    let started = server.response(login).await;
    assert!(
        started["result"]["authUrl"].is_string(),
        "the sign-in started: {started}"
    );
    assert_eq!(issuer.registrations(), 1);
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.path().join("registrations.json")).unwrap())
            .unwrap();
    assert_eq!(
        stored["registrations"].as_object().unwrap().len(),
        1,
        "{stored}"
    );
}
