//! Many credentials in one home (contract version 3, `--credentials-only`, or part of a full
//! run): what 200 stored credentials cost at start-up, per poll and in memory, and 20
//! credentials refreshing at once at 3 fake issuers, counting each one's token requests.
//!
//! The stored credentials are API-key files `credentials/NAME.json` (the refresh row's are
//! OAuth, expired, each a grant of its own issuer).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use auth_app_server_tests::issuer::CLIENT_ID;
use auth_app_server_tests::{FakeIssuer, TokenMode};
use serde_json::{Value, json};

use super::{
    PipeClient, Running, Target, median, memory_kib, micros, millis, percentile, pin_to_first_cpu,
    unix_now,
};

/// The stored credentials of the "many" rows.
const MANY: usize = 200;
/// The refresh row: this many credentials, spread over [`ISSUERS`] issuers.
const REFRESHING: usize = 20;
const ISSUERS: usize = 3;
/// Polls of each refreshing credential in flight at once.
const POLLS_EACH: usize = 5;
/// How long each fake issuer takes to answer a refresh: refreshes that waited for one another
/// would take [`REFRESHING`] times this.
const ISSUER_DELAY: Duration = Duration::from_millis(100);
/// Spawns of each home for the round-trip rows.
const ROUNDS: usize = 5;

fn name(n: usize) -> String {
    format!("c{n:03}")
}

/// A home with `count` API-key credentials `c000`, `c001`, … (and no `auth.json`).
fn seeded_home(count: usize) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    let folder = home.path().join("credentials");
    std::fs::create_dir(&folder).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700)).unwrap();
    for n in 0..count {
        let file = json!({"version": 1, "auth_mode": "api_key", "api_key": format!("sk-bench-{n:03}-0123456789abcdef")});
        std::fs::write(folder.join(format!("{}.json", name(n))), file.to_string()).unwrap();
    }
    home
}

fn poll(credential: &str) -> Value {
    json!({"credential": credential, "includeToken": true})
}

/// spawn → `initialize` answer (median of `runs`, the homes taking turns) and RSS after it
/// (the highest), for each home.
async fn start_ups(target: &Target, homes: &[&Path], runs: usize) -> Vec<(Duration, u64)> {
    let mut times = vec![Vec::new(); homes.len()];
    let mut rss = vec![0; homes.len()];
    for _ in 0..runs {
        for (n, home) in homes.iter().enumerate() {
            let started = Instant::now();
            let mut server = Running::start(target, home).await;
            server.initialize().await;
            times[n].push(started.elapsed());
            rss[n] = rss[n].max(memory_kib(server.pid(), "VmRSS:"));
            server.stop().await;
        }
    }
    times.into_iter().map(median).zip(rss).collect()
}

/// Polls of `measured` one at a time (p50, p99), on one CPU, after every credential of
/// `load` was polled once (so that each is loaded) and a tenth as many warm-up polls.
async fn round_trips(
    target: &Target,
    home: &Path,
    load: Vec<String>,
    measured: String,
    count: usize,
) -> (Duration, Duration) {
    let mut command = std::process::Command::new(&target.binary);
    command.args(target.command(home).as_std().get_args());
    let client = std::thread::spawn(move || {
        pin_to_first_cpu();
        let mut client = PipeClient::spawn(command);
        client.call(
            "initialize",
            &json!({"clientInfo": {"name": "bench", "version": "1"}}),
        );
        for credential in &load {
            client.call("getAuthStatus", &poll(credential));
        }
        let params = poll(&measured);
        for _ in 0..count / 10 {
            client.call("getAuthStatus", &params);
        }
        let mut times: Vec<Duration> = (0..count)
            .map(|_| client.call("getAuthStatus", &params))
            .collect();
        client.finish();
        times.sort();
        times
    });
    let times = tokio::task::spawn_blocking(move || client.join().unwrap())
        .await
        .unwrap();
    (percentile(&times, 0.50), percentile(&times, 0.99))
}

/// VmRSS before and after polling each of the [`MANY`] credentials of `home` (twice, so that
/// what a first poll allocates once is counted too): (before, after) in KiB.
async fn rss_of_loading(target: &Target, home: &Path) -> (u64, u64) {
    let mut server = Running::start(target, home).await;
    server.initialize().await;
    // Warm: the paths every poll takes, on the default credential and on one named one.
    for _ in 0..100 {
        server.call("getAuthStatus", poll("default")).await;
        server.call("getAuthStatus", poll("nothing-stored")).await;
    }
    let before = memory_kib(server.pid(), "VmRSS:");
    for _ in 0..2 {
        for n in 0..MANY {
            let answer = server.call("getAuthStatus", poll(&name(n))).await;
            assert!(answer["authToken"].is_string(), "{answer}");
        }
    }
    let after = memory_kib(server.pid(), "VmRSS:");
    server.stop().await;
    (before, after)
}

/// [`REFRESHING`] expired OAuth credentials on [`ISSUERS`] issuers (each answering after
/// [`ISSUER_DELAY`]), [`POLLS_EACH`] polls of each written at once: the token requests of each
/// credential (exactly one is right), how many answers lacked a token, and the wall time until
/// the last answer.
async fn refreshing_at_once(target: &Target) -> String {
    use std::os::unix::fs::PermissionsExt;
    let mut issuers = Vec::new();
    for n in 0..ISSUERS {
        let issuer = FakeIssuer::start().await;
        issuer.tag_tokens(&format!("i{n}"));
        issuer.set_mode(TokenMode::Slow(ISSUER_DELAY));
        issuers.push(issuer);
    }
    let home = tempfile::tempdir().unwrap();
    let folder = home.path().join("credentials");
    std::fs::create_dir(&folder).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700)).unwrap();
    // The refresh token each credential was seeded with → its name.
    let mut seeded = HashMap::new();
    let expired = unix_now() - 60;
    for n in 0..REFRESHING {
        let issuer = &issuers[n % ISSUERS];
        let grant = issuer.issue_grant(3600);
        let file = json!({"version": 1, "auth_mode": "oauth", "issuer": issuer.url(), "client_id": CLIENT_ID,
            "tokens": {"access_token": grant.access_token, "refresh_token": grant.refresh_token,
                       "id_token": grant.id_token, "expires_at": expired}});
        std::fs::write(folder.join(format!("{}.json", name(n))), file.to_string()).unwrap();
        seeded.insert(grant.refresh_token, name(n));
    }
    let mut server = Running::start(target, home.path()).await;
    server.initialize().await;

    let mut batch = String::new();
    let first = server.next_id + 1;
    let total = REFRESHING * POLLS_EACH;
    for k in 0..total {
        let params =
            json!({"credential": name(k % REFRESHING), "includeToken": true, "refreshToken": true});
        batch.push_str(
            &json!({"jsonrpc": "2.0", "id": first + k as u64, "method": "getAuthStatus", "params": params})
                .to_string(),
        );
        batch.push('\n');
    }
    server.next_id += total as u64;
    let started = Instant::now();
    {
        use tokio::io::AsyncWriteExt;
        server.stdin.write_all(batch.as_bytes()).await.unwrap();
        server.stdin.flush().await.unwrap();
    }
    let (mut answered, mut without_token) = (0, 0);
    while answered < total {
        let message = server.next_message().await;
        if message["id"].as_u64().is_some_and(|id| id >= first) {
            answered += 1;
            if !message["result"]["authToken"].is_string() {
                without_token += 1;
            }
        }
    }
    let wall = started.elapsed();
    server.stop().await;

    let mut requests: HashMap<String, usize> = HashMap::new();
    let mut unknown = 0;
    for issuer in &issuers {
        for request in issuer.token_requests() {
            match request
                .form
                .get("refresh_token")
                .and_then(|token| seeded.get(token))
            {
                Some(name) => *requests.entry(name.clone()).or_default() += 1,
                None => unknown += 1,
            }
        }
    }
    let exactly_one = (0..REFRESHING)
        .filter(|&n| requests.get(&name(n)) == Some(&1))
        .count();
    let mut cell = format!(
        "{exactly_one} of {REFRESHING} credentials made exactly 1 token request; all {total} polls answered in {} ({} without a token; each issuer answers in {} ms, so one after another would take ≥ {} ms)",
        millis(wall),
        without_token,
        ISSUER_DELAY.as_millis(),
        ISSUER_DELAY.as_millis() * REFRESHING as u128
    );
    let wrong: Vec<String> = (0..REFRESHING)
        .filter_map(|n| {
            let made = requests.get(&name(n)).copied().unwrap_or(0);
            (made != 1).then(|| format!("{} made {made}", name(n)))
        })
        .collect();
    if !wrong.is_empty() || unknown > 0 {
        cell.push_str(&format!(
            "; WRONG: {}; {unknown} requests with another refresh token",
            wrong.join(", ")
        ));
    }
    cell
}

/// (metric, cell) rows; `runs` start-ups each, `count` round trips each.
pub async fn run(ours: &Target, runs: usize, count: usize) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let empty = tempfile::tempdir().unwrap();
    let many = seeded_home(MANY);
    let starts = start_ups(ours, &[empty.path(), many.path()], runs).await;
    for ((time, rss), stored) in starts.iter().zip([0, MANY]) {
        rows.push((
            format!(
                "cold start with {stored} stored credentials: spawn → initialize answer (median), VmRSS after"
            ),
            format!("{} / {:.1} MB", millis(*time), *rss as f64 / 1024.0),
        ));
    }

    // The two homes take turns, [`ROUNDS`] spawns each, so that a change in the machine's load
    // falls on both alike; the median of each side's p50s and p99s.
    let one = seeded_home(1);
    let all: Vec<String> = (0..MANY).map(name).collect();
    let (mut with_one, mut with_many) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
    for _ in 0..ROUNDS {
        let (p50, p99) = round_trips(ours, one.path(), vec![], name(0), count).await;
        with_one.0.push(p50);
        with_one.1.push(p99);
        let (p50, p99) = round_trips(ours, many.path(), all.clone(), name(MANY / 2), count).await;
        with_many.0.push(p50);
        with_many.1.push(p99);
    }
    let (p50_one, p99_one) = (median(with_one.0), median(with_one.1));
    let (p50_many, p99_many) = (median(with_many.0), median(with_many.1));
    rows.push((
        "getAuthStatus round trip of a named credential, 1 stored, one CPU: p50 / p99 (median of 5 spawns)".into(),
        format!("{} / {}", micros(p50_one), micros(p99_one)),
    ));
    rows.push((
        format!(
            "getAuthStatus round trip of one of {MANY} loaded named credentials, one CPU: p50 / p99 (median of 5 spawns)"
        ),
        format!(
            "{} / {} ({:.2}× the p50 with 1)",
            micros(p50_many),
            micros(p99_many),
            p50_many.as_secs_f64() / p50_one.as_secs_f64()
        ),
    ));

    let (before, after) = rss_of_loading(ours, many.path()).await;
    rows.push((
        format!(
            "resident memory per loaded credential ((VmRSS after polling {MANY} − before) / {MANY})"
        ),
        format!(
            "{:.1} KiB ({:.1} MB → {:.1} MB)",
            after.saturating_sub(before) as f64 / MANY as f64,
            before as f64 / 1024.0,
            after as f64 / 1024.0
        ),
    ));

    rows.push((
        format!(
            "refresh requests: {REFRESHING} expired credentials on {ISSUERS} issuers, {POLLS_EACH} polls of each at once"
        ),
        refreshing_at_once(ours).await,
    ));
    rows
}
