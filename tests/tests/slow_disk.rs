//! A poll never waits on the disk (docs/refresh-policy.md, what a poll waits for): while a
//! write of `auth.json` takes seconds (a slow `fsync`, simulated by the test-only
//! `AUTH_APP_SERVER_TEST_WRITE_DELAY_MS`, which sleeps inside every atomic write between the
//! fsynced temporary file and the rename), polls of the writing process answer at once from
//! its in-memory view.

use std::path::Path;
use std::time::{Duration, Instant};

use auth_app_server_tests::{
    FakeIssuer, ServerProcess, now, read_auth, refresh_poll, seed_oauth_home,
};
use serde_json::json;

/// How long each write takes: the issue's 2 s `fsync`.
const WRITE_DELAY_MS: &str = "2000";
/// Well within the 200 ms a poll may wait for a due refresh.
const POLL_BOUND: Duration = Duration::from_millis(100);
const POLLS: usize = 100;

async fn slow_disk_server(home: &Path) -> ServerProcess {
    let envs = [("AUTH_APP_SERVER_TEST_WRITE_DELAY_MS", WRITE_DELAY_MS)];
    let mut server = ServerProcess::start_with(home, &[], &envs).await;
    server.initialize().await;
    server
}

/// Whether a write of `auth.json` is under way: its temporary file exists.
fn writing(home: &Path) -> bool {
    std::fs::read_dir(home).unwrap().flatten().any(|entry| {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        name.starts_with(".auth.json.") && name.ends_with(".tmp")
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
/// is still under way.
async fn polls_answer_at_once(server: &mut ServerProcess, home: &Path, token: &str) {
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
        writing(home),
        "the write ended before the {POLLS} polls did (slowest {slowest:?}): they did not all run during it"
    );
}

#[tokio::test]
async fn polls_during_a_slow_refresh_write_answer_at_once_with_the_working_token() {
    let issuer = FakeIssuer::start().await;
    let home = tempfile::tempdir().unwrap();
    let tokens = issuer.issue_grant(3600);
    // 60 s left of an unknown lifetime: stale (300 s rule), still working.
    seed_oauth_home(home.path(), &issuer, &tokens, now() + 60);
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

#[tokio::test]
async fn polls_during_a_slow_login_write_answer_at_once_from_memory() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path()).unwrap();
    let file = json!({"version": 1, "auth_mode": "api_key", "api_key": "sk-before-0123456789"});
    std::fs::write(home.path().join("auth.json"), file.to_string()).unwrap();
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
