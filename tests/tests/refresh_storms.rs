//! Refresh engine v2 end to end (docs/refresh-policy.md): short-lived tokens, reports of tokens
//! an API always rejects, a fleet of processes behind an outage, a held lock and a slow
//! provider. Each asserts exact hit counts at the fake issuer's token endpoint.

use std::path::Path;
use std::time::Duration;

use auth_app_server_tests::{
    FakeIssuer, IssuedTokens, IssuerOptions, ServerProcess, TokenMode, lock_file, now, read_auth,
    refresh_poll, run_command, seed_oauth_home, seeded_home,
};
use serde_json::json;

/// Seeds `home` with `tokens` that expire at `expires_at`, stored at `issued_at`.
fn seed_with_lifetime(
    home: &Path,
    issuer: &FakeIssuer,
    tokens: &IssuedTokens,
    issued_at: i64,
    expires_at: i64,
) {
    seed_oauth_home(home, issuer, tokens, expires_at);
    let mut file = read_auth(home);
    file["tokens"]["issued_at"] = json!(issued_at);
    std::fs::write(home.join("auth.json"), file.to_string()).unwrap();
}

#[tokio::test]
async fn tokens_of_60_120_and_300_seconds_are_refreshed_once_not_on_every_poll() {
    for lifetime in [60, 120, 300] {
        let issuer = FakeIssuer::start_with(IssuerOptions {
            expires_in: lifetime,
            ..IssuerOptions::default()
        })
        .await;
        let home = tempfile::tempdir().unwrap();
        let tokens = issuer.issue_grant(lifetime);
        // Issued a lifetime ago and just expired: the poll waits for the refresh.
        seed_with_lifetime(
            home.path(),
            &issuer,
            &tokens,
            now() - lifetime - 1,
            now() - 1,
        );
        let mut server = ServerProcess::start_initialized(home.path()).await;
        let status = server.status(refresh_poll()).await;
        assert_eq!(status["state"], "active", "{lifetime} s: {status}");
        let new_token = status["authToken"].clone();
        assert_ne!(new_token, tokens.access_token.as_str());
        assert_eq!(issuer.refresh_hits(), 1, "{lifetime} s");
        let stored = &read_auth(home.path())["tokens"];
        assert_eq!(
            stored["expires_at"].as_i64().unwrap() - stored["issued_at"].as_i64().unwrap(),
            lifetime,
            "{lifetime} s: {stored}"
        );

        // A token that lives 300 s or less is not stale from birth.
        for _ in 0..20 {
            assert_eq!(server.status(refresh_poll()).await["authToken"], new_token);
        }
        assert_eq!(
            issuer.refresh_hits(),
            1,
            "{lifetime} s: no refresh per poll"
        );
    }
}

#[tokio::test]
async fn a_stale_short_lived_token_is_refreshed_while_it_still_works() {
    let issuer = FakeIssuer::start_with(IssuerOptions {
        expires_in: 120,
        ..IssuerOptions::default()
    })
    .await;
    let home = tempfile::tempdir().unwrap();
    let tokens = issuer.issue_grant(120);
    // 120 s token with 50 s left: inside its last 60 s, so stale.
    seed_with_lifetime(home.path(), &issuer, &tokens, now() - 70, now() + 50);
    let mut server = ServerProcess::start_initialized(home.path()).await;
    let first = server.status(refresh_poll()).await;
    assert_eq!(first["state"], "active", "{first}");
    let refreshed = server
        .poll_until(|s| s["authToken"] != tokens.access_token.as_str())
        .await;
    for _ in 0..20 {
        assert_eq!(
            server.status(refresh_poll()).await["authToken"],
            refreshed["authToken"]
        );
    }
    assert_eq!(issuer.refresh_hits(), 1);
}

#[tokio::test]
async fn twenty_reports_of_a_token_the_api_always_rejects_cost_one_refresh() {
    let issuer = FakeIssuer::start().await;
    let (home, tokens) = seeded_home(&issuer, 3600);
    let mut server = ServerProcess::start_initialized(home.path()).await;
    let mut current = json!(tokens.access_token);
    for n in 1..=20 {
        let answer = server
            .call(
                "reportAuthFailure",
                json!({"status": 401, "rejectedToken": current}),
            )
            .await;
        if n == 1 {
            assert_eq!(answer["action"], "refreshed", "{answer}");
            assert_ne!(answer["authToken"], current);
            current = answer["authToken"].clone();
            continue;
        }
        assert_eq!(
            answer["action"], "refreshDidNotHelp",
            "report {n}: {answer}"
        );
        assert_eq!(answer["state"], "active");
        assert_eq!(answer["authToken"], current, "the current token, unchanged");
        let hint = answer["hint"].as_str().unwrap();
        for cause in ["audience", "resource", "scope", "access", "clock"] {
            assert!(hint.contains(cause), "the hint names {cause}: {hint}");
        }
    }
    assert_eq!(issuer.refresh_hits(), 1);
    assert_eq!(
        read_auth(home.path())["tokens"]["refresh_cause"],
        "rejected"
    );
    server.finish().await;

    // The bound is in auth.json: another process (or a restart) honours it too.
    let mut restarted = ServerProcess::start_initialized(home.path()).await;
    let answer = restarted
        .call(
            "reportAuthFailure",
            json!({"status": 401, "rejectedToken": current}),
        )
        .await;
    assert_eq!(answer["action"], "refreshDidNotHelp", "{answer}");
    assert_eq!(issuer.refresh_hits(), 1);
}

/// The most refresh requests one process can make in `secs` seconds behind a provider that
/// always answers 503: attempts are at least 1, 2, 4, ... s apart (the window starts when an
/// attempt ends), and each attempt is one request plus at most two retries.
fn one_process_maximum(secs: u64) -> usize {
    let (mut at, mut attempts, mut wait) = (0, 0, 1);
    while at < secs {
        attempts += 1;
        at += wait;
        wait *= 2;
    }
    attempts * 3
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_processes_behind_an_outage_make_as_many_requests_as_one() {
    const OUTAGE: Duration = Duration::from_secs(8);
    let issuer = FakeIssuer::start().await;
    issuer.set_mode(TokenMode::ServiceUnavailable);
    let (home, _tokens) = seeded_home(&issuer, 120);
    let mut fleet = Vec::new();
    for _ in 0..6 {
        fleet.push(ServerProcess::start_initialized(home.path()).await);
    }
    // Every process polls before each "API call" for the whole outage.
    let deadline = tokio::time::Instant::now() + OUTAGE;
    let pollers: Vec<_> = fleet
        .into_iter()
        .map(|mut server| {
            tokio::spawn(async move {
                let mut answers = 0;
                while tokio::time::Instant::now() < deadline {
                    let status = server.status(refresh_poll()).await;
                    assert!(
                        status["authToken"].is_string(),
                        "the token still works, so it is handed out: {status}"
                    );
                    answers += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                (server, answers)
            })
        })
        .collect();
    let mut fleet = Vec::new();
    for poller in pollers {
        let (server, answers) = poller.await.unwrap();
        assert!(answers > 0);
        fleet.push(server);
    }
    let hits = issuer.refresh_hits();
    let bound = one_process_maximum(OUTAGE.as_secs()) + 1;
    assert!(
        (1..=bound).contains(&hits),
        "6 processes made {hits} refresh requests; one process alone can make at most {}",
        bound - 1
    );

    // All of them report the same degraded state and the same wait (read from auth.json).
    let mut waits = Vec::new();
    for server in &mut fleet {
        let status = server.status(json!({"includeToken": true})).await;
        assert_eq!(status["state"], "degraded", "{status}");
        assert_eq!(status["refreshError"]["kind"], "transient");
        waits.push(status["refreshError"]["retryAfterSecs"].as_u64().unwrap());
        server.announced("degraded").await;
    }
    let (min, max) = (waits.iter().min().unwrap(), waits.iter().max().unwrap());
    assert!(max - min <= 1, "one shared window: {waits:?}");
    let backoff = &read_auth(home.path())["refresh_backoff"];
    assert!(backoff["failures"].as_u64().unwrap() >= 1, "{backoff}");
}

/// Holds `auth.json.lock` in this test process, as a suspended `token` command would.
fn hold_lock(home: &Path) -> std::fs::File {
    let lock = lock_file(home);
    lock.lock().unwrap();
    lock
}

const SHORT_LOCK_TIMEOUT: (&str, &str) = ("AUTH_APP_SERVER_LOCK_TIMEOUT_MS", "300");

#[tokio::test]
async fn a_held_lock_bounds_every_answer_and_never_hands_out_an_expired_token() {
    let issuer = FakeIssuer::start().await;
    let (home, _tokens) = seeded_home(&issuer, -1);
    let held = hold_lock(home.path());

    let mut server = ServerProcess::start_with(home.path(), &[], &[SHORT_LOCK_TIMEOUT]).await;
    server.initialize().await;
    let status = server.status(refresh_poll()).await;
    assert_eq!(status["state"], "degraded", "{status}");
    assert!(status.get("authToken").is_none(), "expired: {status}");
    let error = &status["refreshError"];
    assert_eq!(error["kind"], "transient");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("auth.json.lock"),
        "{error}"
    );
    assert!(error["retryAfterSecs"].is_u64());
    let plain = server.status(json!({"includeToken": true})).await;
    assert_eq!(plain["state"], "degraded");
    assert!(plain.get("authToken").is_none(), "{plain}");

    // The terminal command gives up as promptly, with the exit code for "retry later".
    let output = run_command(home.path(), &["token"], &[SHORT_LOCK_TIMEOUT], "");
    let output = tokio::time::timeout(Duration::from_secs(30), output)
        .await
        .expect("`token` exits while the lock is still held");
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    assert!(output.stdout.is_empty(), "no expired token printed");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("auth.json.lock"),
        "{output:?}"
    );
    assert_eq!(issuer.token_hits(), 0);

    // Released: the next attempt after the backoff refreshes.
    drop(held);
    let recovered = server.poll_until(|s| s["state"] == "active").await;
    assert!(recovered["authToken"].is_string());
    assert_eq!(issuer.refresh_hits(), 1);
}

#[tokio::test]
async fn a_held_lock_never_stalls_a_poll_on_a_working_token() {
    let issuer = FakeIssuer::start().await;
    let (home, tokens) = seeded_home(&issuer, 60);
    let _held = hold_lock(home.path());
    let mut server = ServerProcess::start_with(home.path(), &[], &[SHORT_LOCK_TIMEOUT]).await;
    server.initialize().await;
    for _ in 0..5 {
        let status = server.status(refresh_poll()).await;
        assert_eq!(status["authToken"], tokens.access_token, "{status}");
    }
    server.announced("degraded").await;
    let status = server.status(refresh_poll()).await;
    assert_eq!(status["state"], "degraded");
    assert_eq!(status["authToken"], tokens.access_token);
    assert_eq!(issuer.token_hits(), 0);
}

#[tokio::test]
async fn polls_do_not_wait_for_a_slow_provider_while_the_token_works() {
    let issuer = FakeIssuer::start().await;
    issuer.set_mode(TokenMode::Slow(Duration::from_secs(2)));
    let (home, tokens) = seeded_home(&issuer, 60);
    let mut server = ServerProcess::start_initialized(home.path()).await;
    // A burst of polls while the provider takes 2 s: each answered with the working token
    // before the refresh has been stored.
    for _ in 0..20 {
        let status = server.status(refresh_poll()).await;
        assert_eq!(status["state"], "active");
        assert_eq!(status["authToken"], tokens.access_token, "{status}");
    }
    assert_eq!(
        read_auth(home.path())["tokens"]["access_token"],
        tokens.access_token,
        "the answers came before the refresh ended"
    );
    // The refresh went on in the background: stored, then handed out.
    let refreshed = server
        .poll_until(|s| s["authToken"] != tokens.access_token.as_str())
        .await;
    assert_eq!(
        read_auth(home.path())["tokens"]["access_token"],
        refreshed["authToken"]
    );
    assert_eq!(issuer.refresh_hits(), 1, "one refresh for all those polls");
}
