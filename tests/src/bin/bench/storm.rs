//! Refresh storms: the same client behaviour against each server, the fake issuer counting
//! every refresh request that reaches its token endpoint.
//!
//! Both servers start from the same kind of home: a signed-in user whose access token expired a
//! minute ago, with a refresh token the fake issuer knows. The client always polls
//! `getAuthStatus {"includeToken": true, "refreshToken": true}`, as an IDE that wants a usable
//! token before each API call does.

use std::path::Path;
use std::time::{Duration, Instant};

use auth_app_server_tests::issuer::CLIENT_ID;
use auth_app_server_tests::{FakeIssuer, IssuedTokens, IssuerOptions, TokenMode};
use serde_json::{Value, json};

use super::{Kind, Running, Target, jwt, rfc3339, unix_now, write_peer_config};

/// The OAuth client id the peer sends with its refreshes.
const PEER_CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";

/// No scenario waits longer than this for its answers.
const SCENARIO_LIMIT: Duration = Duration::from_secs(120);

fn poll() -> Value {
    json!({"includeToken": true, "refreshToken": true})
}

async fn start_issuer(mode: TokenMode) -> FakeIssuer {
    let issuer = FakeIssuer::start_with(IssuerOptions {
        jwt_access_tokens: true,
        extra_client_ids: vec![PEER_CLIENT_ID.to_owned()],
        ..IssuerOptions::default()
    })
    .await;
    issuer.set_mode(mode);
    issuer
}

/// A home holding `tokens` with an access token that expired a minute ago.
fn seed_stale(target: &Target, home: &Path, issuer: &FakeIssuer, tokens: &IssuedTokens) {
    seed(target, home, issuer, tokens, unix_now() - 60);
}

/// A home holding `tokens` with an access token that expires at `expires_at`, last refreshed
/// long ago (so both servers consider it due for a refresh).
fn seed(target: &Target, home: &Path, issuer: &FakeIssuer, tokens: &IssuedTokens, expires_at: i64) {
    std::fs::create_dir_all(home).unwrap();
    let now = unix_now();
    let access = jwt(&json!({"exp": expires_at, "sub": "user-0", "jti": "seeded"}));
    let file = match target.kind {
        Kind::Ours => {
            issuer.write_config(home);
            json!({"version": 1, "auth_mode": "oauth", "issuer": issuer.url(), "client_id": CLIENT_ID,
                "tokens": {"access_token": access, "refresh_token": tokens.refresh_token,
                           "id_token": tokens.id_token, "expires_at": expires_at},
                "last_refresh": rfc3339(now - 3600)})
        }
        Kind::Codex => {
            write_peer_config(home);
            let id = jwt(
                &json!({"exp": expires_at, "sub": "user-0", "email": "user0@example.com",
                "https://api.openai.com/auth": {"chatgpt_account_id": "acct-bench", "chatgpt_plan_type": "plus"}}),
            );
            json!({"auth_mode": "chatgpt", "OPENAI_API_KEY": null,
                "tokens": {"id_token": id, "access_token": access,
                           "refresh_token": tokens.refresh_token, "account_id": "acct-bench"},
                "last_refresh": rfc3339(now - 30 * 86_400)})
        }
    };
    std::fs::write(home.join("auth.json"), file.to_string()).unwrap();
}

async fn start(target: &Target, home: &Path, issuer: &FakeIssuer) -> Running {
    let env = match target.kind {
        Kind::Ours => vec![],
        Kind::Codex => vec![(
            "CODEX_REFRESH_TOKEN_URL_OVERRIDE",
            format!("{}/token", issuer.url()),
        )],
    };
    let mut server = Running::start_with_env(target, home, &env).await;
    server.initialize().await;
    server
}

/// What the client saw over a run of polls.
#[derive(Default, Clone, Copy)]
struct Seen {
    polls: usize,
    /// Answers with no `authToken` (errors included).
    without_token: usize,
    /// Error answers (e.g. `-32001` past a queue bound).
    errors: usize,
}

impl Seen {
    fn count(&mut self, response: &Value) {
        self.polls += 1;
        if response.get("error").is_some() {
            self.errors += 1;
            self.without_token += 1;
        } else if !response["result"]["authToken"].is_string() {
            self.without_token += 1;
        }
    }

    fn add(self, other: Seen) -> Seen {
        Seen {
            polls: self.polls + other.polls,
            without_token: self.without_token + other.without_token,
            errors: self.errors + other.errors,
        }
    }
}

/// `count` polls, each sent after the previous answer; stops early at `deadline`.
async fn poll_sequentially(server: &mut Running, count: usize, deadline: Instant) -> Seen {
    let mut seen = Seen::default();
    for _ in 0..count {
        if Instant::now() >= deadline {
            break;
        }
        let id = server.send("getAuthStatus", &poll()).await;
        let response = server.response(id).await;
        seen.count(&response);
    }
    seen
}

/// `count` polls written at once, then every answer read.
async fn poll_concurrently(server: &mut Running, count: usize) -> Seen {
    use tokio::io::AsyncWriteExt;
    let first = server.next_id + 1;
    let mut batch = String::new();
    for n in 0..count as u64 {
        batch.push_str(
            &json!({"jsonrpc": "2.0", "id": first + n, "method": "getAuthStatus", "params": poll()})
                .to_string(),
        );
        batch.push('\n');
    }
    server.next_id += count as u64;
    server.stdin.write_all(batch.as_bytes()).await.unwrap();
    let mut seen = Seen::default();
    while seen.polls < count {
        let message = server.next_message().await;
        if message["id"].as_u64().is_some_and(|id| id >= first) {
            seen.count(&message);
        }
    }
    seen
}

/// One scenario's result for one server, as the table shows it.
async fn bounded(scenario: impl Future<Output = String>) -> String {
    tokio::time::timeout(SCENARIO_LIMIT, scenario)
        .await
        .unwrap_or_else(|_| format!("unfinished after {} s", SCENARIO_LIMIT.as_secs()))
}

/// `polls` sequential polls after the issuer starts answering `invalid_grant`, then as many
/// again after a restart on the same home.
async fn after_invalid_grant(target: &Target, polls: usize, restart: bool) -> String {
    let issuer = start_issuer(TokenMode::InvalidGrant).await;
    let home = tempfile::tempdir().unwrap();
    let tokens = issuer.issue_grant(3600);
    seed_stale(target, home.path(), &issuer, &tokens);
    let far = Instant::now() + SCENARIO_LIMIT;
    let mut server = start(target, home.path(), &issuer).await;
    let seen = poll_sequentially(&mut server, polls, far).await;
    server.stop().await;
    let first = issuer.refresh_hits();
    if !restart {
        return format!("{first} ({} polls)", seen.polls);
    }
    let mut server = start(target, home.path(), &issuer).await;
    poll_sequentially(&mut server, polls, far).await;
    server.stop().await;
    format!(
        "{first}, then {} after a restart",
        issuer.refresh_hits() - first
    )
}

/// Sequential polls for two seconds while the issuer answers with `mode`.
async fn behind(target: &Target, mode: TokenMode) -> String {
    let issuer = start_issuer(mode).await;
    let home = tempfile::tempdir().unwrap();
    let tokens = issuer.issue_grant(3600);
    seed_stale(target, home.path(), &issuer, &tokens);
    let mut server = start(target, home.path(), &issuer).await;
    let seen = poll_sequentially(
        &mut server,
        usize::MAX,
        Instant::now() + Duration::from_secs(2),
    )
    .await;
    server.stop().await;
    format!("{} ({} polls)", issuer.refresh_hits(), seen.polls)
}

/// `count` polls in flight at once on a stale token, the issuer answering normally.
async fn concurrent(target: &Target, count: usize) -> String {
    let issuer = start_issuer(TokenMode::Ok).await;
    let home = tempfile::tempdir().unwrap();
    let tokens = issuer.issue_grant(3600);
    seed_stale(target, home.path(), &issuer, &tokens);
    let mut server = start(target, home.path(), &issuer).await;
    let seen = poll_concurrently(&mut server, count).await;
    server.stop().await;
    let mut text = format!("{}", issuer.refresh_hits());
    if seen.without_token > 0 {
        text.push_str(&format!(
            "; {} of {} answers without a token",
            seen.without_token, seen.polls
        ));
    }
    if seen.errors > 0 {
        text.push_str(&format!(" ({} errors)", seen.errors));
    }
    text
}

/// Two servers on one home, rotating refresh tokens (reuse revokes the grant), each polling
/// 20 times at the same time.
async fn two_processes(target: &Target) -> String {
    let issuer = start_issuer(TokenMode::Ok).await;
    let home = tempfile::tempdir().unwrap();
    let tokens = issuer.issue_grant(3600);
    seed_stale(target, home.path(), &issuer, &tokens);
    let mut a = start(target, home.path(), &issuer).await;
    let mut b = start(target, home.path(), &issuer).await;
    let far = Instant::now() + SCENARIO_LIMIT;
    let (seen_a, seen_b) = tokio::join!(
        poll_sequentially(&mut a, 20, far),
        poll_sequentially(&mut b, 20, far)
    );
    a.stop().await;
    b.stop().await;
    let seen = seen_a.add(seen_b);
    format!(
        "{}; {} of {} answers without a token",
        issuer.refresh_hits(),
        seen.without_token,
        seen.polls
    )
}

/// What a fleet of processes on one home saw while the provider misbehaved.
pub struct Fleet {
    /// Refresh requests that reached the token endpoint.
    pub hits: usize,
    pub polls: usize,
    /// Poll round trips, sorted.
    pub latencies: Vec<Duration>,
    /// Answers without a token.
    pub without_token: usize,
}

/// `processes` servers on one home whose access token still works for two minutes, each
/// polling `{"includeToken": true, "refreshToken": true}` every 5 ms (as a client that asks
/// before each API call) for `duration`, while the issuer answers refreshes with `mode`.
pub async fn fleet(
    target: &Target,
    processes: usize,
    mode: TokenMode,
    duration: Duration,
) -> Fleet {
    let issuer = start_issuer(mode).await;
    let home = tempfile::tempdir().unwrap();
    let tokens = issuer.issue_grant(3600);
    seed(target, home.path(), &issuer, &tokens, unix_now() + 120);
    let mut servers = Vec::new();
    for _ in 0..processes {
        servers.push(start(target, home.path(), &issuer).await);
    }
    let deadline = Instant::now() + duration;
    let pollers: Vec<_> = servers
        .into_iter()
        .map(|mut server| {
            tokio::spawn(async move {
                let (mut latencies, mut without_token) = (Vec::new(), 0);
                while Instant::now() < deadline {
                    let started = Instant::now();
                    let id = server.send("getAuthStatus", &poll()).await;
                    let response = server.response(id).await;
                    latencies.push(started.elapsed());
                    if !response["result"]["authToken"].is_string() {
                        without_token += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                server.stop().await;
                (latencies, without_token)
            })
        })
        .collect();
    let mut fleet = Fleet {
        hits: 0,
        polls: 0,
        latencies: Vec::new(),
        without_token: 0,
    };
    for poller in pollers {
        let (latencies, without_token) = poller.await.unwrap();
        fleet.polls += latencies.len();
        fleet.latencies.extend(latencies);
        fleet.without_token += without_token;
    }
    fleet.latencies.sort();
    fleet.hits = issuer.refresh_hits();
    fleet
}

/// What [`run`] measures, one row each.
enum Scenario {
    AfterInvalidGrant { polls: usize, restart: bool },
    Concurrent(usize),
    Behind(TokenMode),
    TwoProcesses,
}

impl Scenario {
    async fn on(&self, target: &Target) -> String {
        match self {
            Scenario::AfterInvalidGrant { polls, restart } => {
                after_invalid_grant(target, *polls, *restart).await
            }
            Scenario::Concurrent(count) => concurrent(target, *count).await,
            Scenario::Behind(mode) => behind(target, mode.clone()).await,
            Scenario::TwoProcesses => two_processes(target).await,
        }
    }
}

/// Every scenario on every target: (metric, one cell per target).
pub async fn run(targets: &[&Target]) -> Vec<(String, Vec<String>)> {
    let scenarios = [
        (
            "refresh requests: 10,000-poll storm on poisoned credentials (invalid_grant)",
            Scenario::AfterInvalidGrant {
                polls: 10_000,
                restart: false,
            },
        ),
        (
            "refresh requests: 1,000 concurrent polls on a stale token",
            Scenario::Concurrent(1_000),
        ),
        (
            "refresh requests: 200 polls after invalid_grant",
            Scenario::AfterInvalidGrant {
                polls: 200,
                restart: true,
            },
        ),
        (
            "refresh requests: 2 s of polling behind a 503",
            Scenario::Behind(TokenMode::ServiceUnavailable),
        ),
        (
            "refresh requests: 2 s of polling behind a WAF's HTML 403",
            Scenario::Behind(TokenMode::WafHtml403),
        ),
        (
            "refresh requests: 50 concurrent polls on a stale token",
            Scenario::Concurrent(50),
        ),
        (
            "refresh requests: 2 processes on one home, rotating refresh tokens",
            Scenario::TwoProcesses,
        ),
    ];
    let mut rows = Vec::new();
    for (metric, scenario) in scenarios {
        let mut cells = Vec::new();
        for target in targets {
            cells.push(bounded(scenario.on(target)).await);
        }
        rows.push((metric.to_owned(), cells));
    }
    rows
}
