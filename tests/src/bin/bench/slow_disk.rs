//! Polls while the disk is slow (`--slow-disk-only`, or part of a full run): a write of
//! `auth.json` made to take 500 ms (the test-only `AUTH_APP_SERVER_TEST_WRITE_DELAY_MS`, a
//! sleep between the fsynced temporary file and the rename, as a slow `fsync`), by an API-key
//! `login` of the same process, while one client polls `getAuthStatus` one request at a time
//! until the login is answered. What it shows: polls never wait for the write
//! (docs/refresh-policy.md, what a poll waits for).

use std::time::Instant;

use serde_json::json;

use super::{Running, Target, millis, percentile};

/// How long each write takes.
const WRITE_DELAY_MS: u64 = 500;

/// (metric, cell) rows, over `writes` logins.
pub async fn run(ours: &Target, writes: usize) -> Vec<(String, String)> {
    let home = tempfile::tempdir().unwrap();
    let env = [
        ("AUTH_APP_SERVER_STORAGE", "file".to_owned()),
        (
            "AUTH_APP_SERVER_TEST_WRITE_DELAY_MS",
            WRITE_DELAY_MS.to_string(),
        ),
    ];
    let mut server = Running::start_with_env(ours, home.path(), &env).await;
    server.initialize().await;
    server
        .call(
            "login",
            json!({"type": "apiKey", "apiKey": "sk-bench-slow-0"}),
        )
        .await;

    let poll = json!({"includeToken": true, "refreshToken": true});
    let (mut polls, mut logins) = (Vec::new(), Vec::new());
    for n in 1..=writes {
        let key = format!("sk-bench-slow-{n}");
        let started = Instant::now();
        let login = server
            .send("login", &json!({"type": "apiKey", "apiKey": key}))
            .await;
        let mut login_done = false;
        while !login_done {
            let id = server.send("getAuthStatus", &poll).await;
            let asked = Instant::now();
            loop {
                let message = server.next_message().await;
                if message["id"] == json!(login) {
                    assert!(message.get("error").is_none(), "login failed: {message}");
                    logins.push(started.elapsed());
                    login_done = true;
                } else if message["id"] == json!(id) {
                    polls.push(asked.elapsed());
                    let token = &message["result"]["authToken"];
                    assert!(token.is_string(), "a poll without a token: {message}");
                    break;
                }
            }
        }
    }
    server.stop().await;

    polls.sort();
    logins.sort();
    let max = *polls.last().unwrap();
    vec![(
        format!(
            "poll latency p50 / p99 / max while another request's write takes {WRITE_DELAY_MS} ms (slow fsync, {writes} API-key logins)"
        ),
        format!(
            "{} / {} / {} ({} polls during the writes; login median {})",
            millis(percentile(&polls, 0.5)),
            millis(percentile(&polls, 0.99)),
            millis(max),
            polls.len(),
            millis(percentile(&logins, 0.5)),
        ),
    )]
}
