//! Crash consistency: SIGKILL the server at random moments while it logs in, refreshes
//! (against the fake issuer) and logs out. After every kill `auth.json` is absent or parses
//! and holds one complete credential set, nothing half-written stands in its place, the lock
//! is free, a restarted server serves it, and a logout then leaves no secret in any file
//! under the home.

use std::path::Path;
use std::time::Duration;

use auth_app_server_tests::issuer::CLIENT_ID;
use auth_app_server_tests::{FakeIssuer, ServerProcess, TokenMode, lock_file, now};
use serde_json::{Value, json};

/// A small deterministic generator, so a failing run can be replayed by its seed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What must hold after any kill.
fn check_consistent(home: &Path, seed: u64) {
    match std::fs::read(home.join("auth.json")) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("seed {seed}: cannot read auth.json: {e}"),
        Ok(bytes) => {
            let file: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "seed {seed}: auth.json is not whole JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            });
            assert_eq!(file["version"], 1, "seed {seed}: {file}");
            match file["auth_mode"].as_str() {
                Some("api_key") => assert!(
                    file["api_key"].as_str().is_some_and(|k| !k.is_empty()),
                    "seed {seed}: {file}"
                ),
                Some("oauth") => {
                    assert!(
                        file["tokens"]["access_token"]
                            .as_str()
                            .is_some_and(|t| !t.is_empty()),
                        "seed {seed}: {file}"
                    );
                }
                other => panic!("seed {seed}: auth_mode {other:?}: {file}"),
            }
        }
    }
    let lock = lock_file(home);
    assert!(
        lock.try_lock().is_ok(),
        "seed {seed}: the lock is still held after the kill"
    );
}

fn stale_tokens_file(issuer: &FakeIssuer) -> Value {
    let tokens = issuer.issue_grant(3600);
    json!({"version": 1, "auth_mode": "oauth", "issuer": issuer.url(), "client_id": CLIENT_ID,
        "tokens": {"access_token": tokens.access_token, "refresh_token": tokens.refresh_token, "expires_at": now() + 30}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_never_leaves_a_broken_store() {
    let issuer = FakeIssuer::start().await;
    issuer.set_mode(TokenMode::Slow(Duration::from_millis(2)));
    let home = tempfile::tempdir().unwrap();
    issuer.write_config(home.path());
    let mut random = XorShift(0x9E37_79B9_7F4A_7C15);

    for round in 0..40u64 {
        let seed = random.0;
        // Sometimes start from stale OAuth tokens so that the round refreshes.
        if random.below(2) == 0 {
            std::fs::write(
                home.path().join("auth.json"),
                stale_tokens_file(&issuer).to_string(),
            )
            .unwrap();
        }
        let mut server = ServerProcess::start_initialized(home.path()).await;
        let mut burst = String::new();
        for n in 0..60 {
            let line = match random.below(4) {
                0 => {
                    json!({"id": n, "method": "login", "params": {"type": "apiKey", "apiKey": format!("sk-crash-{round}-{n}-0123456789")}})
                }
                1 => {
                    json!({"id": n, "method": "login", "params": {"type": "tokens", "accessToken": format!("at-crash-{round}-{n}"), "refreshToken": format!("rt-crash-{round}-{n}")}})
                }
                2 => json!({"id": n, "method": "logout"}),
                _ => json!({"id": n, "method": "getAuthStatus", "params": {"refreshToken": true}}),
            };
            burst.push_str(&format!("{line}\n"));
        }
        server.send_bytes(burst.as_bytes()).await;
        // The random moment: somewhere within the burst's work.
        tokio::time::sleep(Duration::from_micros(random.below(20_000))).await;
        server.signal("KILL");
        let (status, _) = server.wait_exit().await;
        assert_eq!(status.code(), None, "killed by a signal");
        check_consistent(home.path(), seed);

        let mut restarted = ServerProcess::start_initialized(home.path()).await;
        let answer = restarted.status(json!({})).await;
        assert!(
            ["signedOut", "active", "needsLogin", "degraded"]
                .contains(&answer["state"].as_str().unwrap()),
            "seed {seed}: {answer}"
        );
        if round % 2 == 0 {
            // A logout after the kill leaves no secret in any file under the home, not even
            // in a temporary file the killed writer left behind (one is planted too, as a
            // kill between write and rename leaves it, so that every round checks this).
            std::fs::write(
                home.path().join(format!(".auth.json.k{round}.tmp")),
                format!(
                    r#"{{"version":1,"auth_mode":"api_key","api_key":"sk-crash-{round}-planted"}}"#
                ),
            )
            .unwrap();
            restarted.call("logout", json!({})).await;
            assert_no_secret_left(home.path(), seed);
            continue;
        }
        // A write by the restarted server clears what a killed writer left behind.
        restarted
            .call(
                "login",
                json!({"type": "apiKey", "apiKey": "sk-crash-after-0123456789"}),
            )
            .await;
        let leftovers: Vec<_> = std::fs::read_dir(home.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "seed {seed}: {leftovers:?}");
        restarted.finish().await;
    }
}

/// No file under `home` holds a key or token of these rounds: `sk-crash-…`, `at-crash-…`,
/// `rt-crash-…`, or one the fake issuer minted (`at-<grant>-<n>`, `rt-<grant>-<n>`).
fn assert_no_secret_left(home: &Path, seed: u64) {
    for entry in std::fs::read_dir(home).unwrap() {
        let path = entry.unwrap().path();
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        let minted = ["at-", "rt-"].iter().any(|prefix| {
            text.match_indices(prefix).any(|(at, _)| {
                text[at + prefix.len()..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_digit())
            })
        });
        assert!(
            !text.contains("-crash-") && !minted,
            "seed {seed}: {} still holds a secret after logout: {text}",
            path.display()
        );
    }
}
