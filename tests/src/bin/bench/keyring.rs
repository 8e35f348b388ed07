//! What keeping the credentials in the OS keyring costs (`--keyring-only`, or part of a full
//! run when `--keyring` is given): the same measurements with `--storage file` and
//! `--storage keyring`, against a real Secret Service (gnome-keyring-daemon on a private bus,
//! as the end-to-end tests start it).
//!
//! - `getAuthStatus` round trip with nothing changed: one `stat` of the marker, no keyring read.
//! - `getAuthStatus` right after another process signed in: the change is seen, the document
//!   re-read (from `auth.json`, or from the keyring).
//! - the `token` command, spawn to exit: start, one read, print.
//! - an API-key `login`: one confirmed write (the keyring write reads the item back).

use std::path::Path;
use std::time::{Duration, Instant};

use auth_app_server_tests::keyring::SecretService;
use serde_json::json;

use super::{Running, Target, median, micros, millis, percentile};

/// (metric, "file … / keyring …") rows.
pub async fn run(ours: &Target, count: usize, runs: usize) -> Vec<(String, String)> {
    let keyring = SecretService::start();
    let bus = keyring.address().to_owned();
    let mut rows = Vec::new();
    let mut cells = |metric: &str, file: String, keyring: String| {
        rows.push((
            metric.to_owned(),
            format!("file {file} / keyring {keyring}"),
        ));
    };

    let (mut steady, mut changed, mut logins, mut tokens) = (vec![], vec![], vec![], vec![]);
    for backend in ["file", "keyring"] {
        let env = [
            ("AUTH_APP_SERVER_STORAGE", backend.to_owned()),
            ("DBUS_SESSION_BUS_ADDRESS", bus.clone()),
        ];
        let home = tempfile::tempdir().unwrap();
        let mut reader = Running::start_with_env(ours, home.path(), &env).await;
        reader.initialize().await;
        let mut writer = Running::start_with_env(ours, home.path(), &env).await;
        writer.initialize().await;
        writer
            .call(
                "login",
                json!({"type": "apiKey", "apiKey": "sk-bench-keyring-0"}),
            )
            .await;
        let status = reader.call("getAuthStatus", json!({})).await;
        assert_eq!(status["storage"], backend, "{status}");

        // Nothing changed: the marker's (or the file's) stat only.
        let mut times = Vec::with_capacity(count);
        for _ in 0..count {
            let started = Instant::now();
            reader
                .call("getAuthStatus", json!({"includeToken": true}))
                .await;
            times.push(started.elapsed());
        }
        times.sort();
        steady.push((percentile(&times, 0.5), percentile(&times, 0.99)));

        // Another process signed in: the next poll reads the document again.
        let mut times = Vec::new();
        let mut login_times = Vec::new();
        for n in 1..=runs * 4 {
            let started = Instant::now();
            writer
                .call(
                    "login",
                    json!({"type": "apiKey", "apiKey": format!("sk-bench-keyring-{n}")}),
                )
                .await;
            login_times.push(started.elapsed());
            let started = Instant::now();
            let status = reader
                .call("getAuthStatus", json!({"includeToken": true}))
                .await;
            times.push(started.elapsed());
            assert_eq!(status["authToken"], format!("sk-bench-keyring-{n}"));
        }
        changed.push(median(times));
        logins.push(median(login_times));
        reader.stop().await;
        writer.stop().await;

        tokens.push(token_command(ours, home.path(), &env, runs * 4).await);
    }

    cells(
        "keyring: getAuthStatus round trip, nothing changed (no keyring read): p50 / p99",
        format!("{} / {}", micros(steady[0].0), micros(steady[0].1)),
        format!("{} / {}", micros(steady[1].0), micros(steady[1].1)),
    );
    cells(
        "keyring: getAuthStatus right after another process signed in (document re-read), median",
        micros(changed[0]),
        micros(changed[1]),
    );
    cells(
        "keyring: `token` command, spawn to exit (start, one read), median",
        millis(tokens[0]),
        millis(tokens[1]),
    );
    cells(
        "keyring: API-key login (one confirmed write), median",
        millis(logins[0]),
        millis(logins[1]),
    );
    rows
}

/// `auth-app-server token`, spawn to exit, median of `runs`.
async fn token_command(
    ours: &Target,
    home: &Path,
    env: &[(&str, String); 2],
    runs: usize,
) -> Duration {
    let mut times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let output = tokio::process::Command::new(&ours.binary)
            .args(["token", "--log-level", "error", "--home"])
            .arg(home)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .unwrap();
        times.push(started.elapsed());
        assert!(output.status.success(), "token failed: {output:?}");
    }
    median(times)
}
