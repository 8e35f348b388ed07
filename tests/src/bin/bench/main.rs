//! Benchmarks of the release binary over pipes, optionally side by side with a peer server
//! that speaks the same `initialize` / `getAuthStatus` methods (the Codex CLI's app-server), or
//! with another build of this one (`--against`, e.g. the previous version).
//!
//! Run: `cargo run --release -p auth-app-server-tests --bin bench -- [--peer PATH | --against
//! PATH] [--quick] [--core-only] [--keyring | --keyring-only] [--slow-disk-only]
//! [--credentials-only]`
//! (it builds the release server first; `BENCH_SKIP_BUILD=1` measures the one already built). Everything it measures runs on this machine, over
//! pipes, one client process; no network but loopback.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Semaphore;

mod credentials;
mod keyring;
mod slow_disk;
mod storm;

/// How a server is started and where its credentials go.
#[derive(Clone)]
struct Target {
    name: &'static str,
    binary: PathBuf,
    kind: Kind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ours,
    /// `codex app-server`, reading `$CODEX_HOME/auth.json`.
    Codex,
}

/// Which credentials the home holds.
#[derive(Clone, Copy)]
enum Credentials {
    ApiKey,
    /// OAuth tokens that are fresh for an hour.
    FreshOauth,
}

impl Target {
    /// The peer answers about a thousand requests a second: its floods are cut to 100,000
    /// requests so that a full run ends within minutes (the cell names the count).
    fn cap(&self, total: u64) -> u64 {
        match self.kind {
            Kind::Ours => total,
            Kind::Codex => total.min(100_000),
        }
    }

    fn command(&self, home: &Path) -> Command {
        let mut command = Command::new(&self.binary);
        match self.kind {
            Kind::Ours => {
                command
                    .arg("--home")
                    .arg(home)
                    .arg("--log-level")
                    .arg("error");
            }
            Kind::Codex => {
                // Every request the peer makes on its own (update checks, its backend) goes to
                // a closed port on loopback, never out; the fake issuer (loopback) is reached
                // directly.
                command
                    .arg("app-server")
                    .env("CODEX_HOME", home)
                    .env("RUST_LOG", "error")
                    .env("HTTPS_PROXY", CLOSED_PORT)
                    .env("HTTP_PROXY", CLOSED_PORT)
                    .env("ALL_PROXY", CLOSED_PORT)
                    .env("NO_PROXY", "127.0.0.1,localhost")
                    // Its refreshes too, unless a scenario points them at the fake issuer.
                    .env(
                        "CODEX_REFRESH_TOKEN_URL_OVERRIDE",
                        format!("{CLOSED_PORT}/oauth/token"),
                    );
            }
        }
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        command
    }

    fn write_credentials(&self, home: &Path, credentials: Credentials) {
        std::fs::create_dir_all(home).unwrap();
        if self.kind == Kind::Codex {
            write_peer_config(home);
        }
        let now = unix_now();
        let access = jwt(&json!({"exp": now + 3600, "sub": "bench-user"}));
        let id = jwt(
            &json!({"exp": now + 3600, "sub": "bench-user", "email": "bench@example.com",
            "https://api.openai.com/auth": {"chatgpt_account_id": "acct-bench", "chatgpt_plan_type": "plus"}}),
        );
        let file = match (self.kind, credentials) {
            (Kind::Ours, Credentials::ApiKey) => {
                json!({"version": 1, "auth_mode": "api_key", "api_key": "sk-bench-0123456789abcdef"})
            }
            (Kind::Ours, Credentials::FreshOauth) => {
                json!({"version": 1, "auth_mode": "oauth", "issuer": "https://issuer.invalid", "client_id": "bench",
                "tokens": {"access_token": access, "refresh_token": "rt-bench", "id_token": id, "expires_at": now + 3600},
                "last_refresh": humantime_now()})
            }
            (Kind::Codex, Credentials::ApiKey) => {
                json!({"auth_mode": "apikey", "OPENAI_API_KEY": "sk-bench-0123456789abcdef"})
            }
            (Kind::Codex, Credentials::FreshOauth) => {
                json!({"auth_mode": "chatgpt", "OPENAI_API_KEY": null,
                "tokens": {"id_token": id, "access_token": access, "refresh_token": "rt-bench", "account_id": "acct-bench"},
                "last_refresh": humantime_now()})
            }
        };
        std::fs::write(
            home.join("auth.json"),
            serde_json::to_vec_pretty(&file).unwrap(),
        )
        .unwrap();
    }
}

/// A loopback port nothing listens on.
const CLOSED_PORT: &str = "http://127.0.0.1:9";

/// The peer's `config.toml`: its backend on the closed port, no update check.
fn write_peer_config(home: &Path) {
    std::fs::write(
        home.join("config.toml"),
        format!("chatgpt_base_url = \"{CLOSED_PORT}/backend-api/\"\ncheck_for_update_on_startup = false\n"),
    )
    .unwrap();
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An unsigned JWT with these claims.
fn jwt(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    format!(
        "{header}.{}.sig",
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

fn humantime_now() -> String {
    rfc3339(unix_now())
}

/// RFC 3339 (UTC, seconds) without a date crate: the server accepts it, the peer too.
fn rfc3339(secs: i64) -> String {
    let secs = secs as u64;
    let days = secs / 86_400;
    let (h, m, s) = ((secs % 86_400) / 3600, (secs % 3600) / 60, secs % 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}

/// A started server and the client ends of its pipes.
struct Running {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    next_id: u64,
}

impl Running {
    async fn start(target: &Target, home: &Path) -> Self {
        Self::start_with_env(target, home, &[]).await
    }

    async fn start_with_env(target: &Target, home: &Path, env: &[(&str, String)]) -> Self {
        let mut command = target.command(home);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", target.binary.display()));
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::with_capacity(1 << 16, child.stdout.take().unwrap()).lines();
        Self {
            child,
            stdin,
            lines,
            next_id: 0,
        }
    }

    async fn send(&mut self, method: &str, params: &Value) -> u64 {
        self.next_id += 1;
        let line = format!(
            "{}\n",
            json!({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        );
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.next_id
    }

    /// Reads until the response to `id`; notifications are skipped.
    async fn response(&mut self, id: u64) -> Value {
        loop {
            let message = self.next_message().await;
            if message["id"] == json!(id) {
                return message;
            }
        }
    }

    /// The next line the server writes, parsed.
    async fn next_message(&mut self) -> Value {
        let line = self.lines.next_line().await.unwrap();
        serde_json::from_str(&line.expect("server closed stdout")).unwrap()
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(method, &params).await;
        self.stdin.flush().await.unwrap();
        let response = self.response(id).await;
        assert!(
            response.get("error").is_none(),
            "{method} failed: {response}"
        );
        response["result"].clone()
    }

    async fn initialize(&mut self) {
        self.call(
            "initialize",
            json!({"clientInfo": {"name": "bench", "version": "1"}}),
        )
        .await;
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    async fn stop(mut self) {
        drop(self.stdin);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

/// `VmHWM` / `VmRSS` of a process, in KiB.
fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The fewest spawns a cold-start median (and its floor's) is taken over, in a quick run too:
/// a start costs about a millisecond, and five were too few to tell 10% apart on this VM.
const MIN_COLD_STARTS: usize = 30;

/// spawn → `initialize` answer for each target, and spawn → exit of `/bin/true` with the same
/// pipes (the floor, last): medians of `runs` (at least [`MIN_COLD_STARTS`]). All of them take
/// turns, run by run, so that a change in the machine's load falls on all alike. Each is timed
/// by plain blocking calls on a thread of its own, as the round trips are: what is measured is
/// the process's start, not how soon the benchmark's runtime notices an answer or an exit.
async fn cold_starts(targets: &[&Target], runs: usize) -> (Vec<Duration>, Duration) {
    let homes: Vec<_> = targets
        .iter()
        .map(|target| {
            let home = tempfile::tempdir().unwrap();
            target.write_credentials(home.path(), Credentials::ApiKey);
            home
        })
        .collect();
    let commands: Vec<_> = targets
        .iter()
        .zip(&homes)
        .map(|(target, home)| std_command(target, home.path()))
        .collect();
    let runs = runs.max(MIN_COLD_STARTS);
    let mut times = tokio::task::spawn_blocking(move || {
        let hello = json!({"clientInfo": {"name": "bench", "version": "1"}});
        let mut times = vec![Vec::new(); commands.len() + 1];
        for _ in 0..runs {
            for (n, command) in commands.iter().enumerate() {
                let started = Instant::now();
                let mut client = PipeClient::spawn(command());
                client.call("initialize", &hello);
                times[n].push(started.elapsed());
                client.finish();
            }
            let started = Instant::now();
            let mut floor = std::process::Command::new("/bin/true")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn /bin/true");
            floor.wait().unwrap();
            times[commands.len()].push(started.elapsed());
        }
        times
    })
    .await
    .unwrap();
    drop(homes);
    let floor = median(times.pop().unwrap());
    (times.into_iter().map(median).collect(), floor)
}

/// `target` started on `home` as a blocking `std::process::Command`, with the same flags and
/// environment as [`Target::command`] gives the async client.
fn std_command(
    target: &Target,
    home: &Path,
) -> impl Fn() -> std::process::Command + Send + 'static {
    let template = target.command(home);
    let template = template.as_std();
    let binary = target.binary.clone();
    let args: Vec<_> = template.get_args().map(ToOwned::to_owned).collect();
    let envs: Vec<_> = template
        .get_envs()
        .map(|(k, v)| (k.to_owned(), v.map(ToOwned::to_owned)))
        .collect();
    move || {
        let mut command = std::process::Command::new(&binary);
        command.args(&args);
        for (key, value) in &envs {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        command
    }
}

/// Where the client and the server it talks to run during a round-trip measurement.
#[derive(Clone, Copy)]
enum Placement {
    /// Both pinned to the first CPU: what is left is the server's own work and the pipes.
    OneCpu,
    /// Wherever the scheduler puts them, over 10 spawns pooled. On this VM, waking a process
    /// on the other, idle vCPU costs about 30 µs, so a spawn is either ~6 µs or ~70 µs a
    /// round trip depending on where it lands; the floor row shows the same for `cat`.
    Scheduler,
}

const SPAWNS_UNPINNED: usize = 10;

/// Floods per target for the throughput and peak memory rows (the peer's: one, it is slow).
const FLOOD_ROUNDS: usize = 5;

/// One `getAuthStatus` at a time: (p50, p99). The client is plain blocking I/O on its own
/// thread, so that what is measured is the server, not the client's scheduler.
async fn round_trip(
    target: &Target,
    credentials: Credentials,
    params: Value,
    count: usize,
    placement: Placement,
) -> (Duration, Duration) {
    let home = tempfile::tempdir().unwrap();
    target.write_credentials(home.path(), credentials);
    let command = std_command(target, home.path());
    measure_round_trips(command, params, count, placement).await
}

/// The round trips of [`ping_pong`] placed as asked: (p50, p99).
async fn measure_round_trips(
    command: impl Fn() -> std::process::Command + Send + 'static,
    params: Value,
    count: usize,
    placement: Placement,
) -> (Duration, Duration) {
    // A thread of its own: its CPU affinity, which the server inherits, dies with it.
    let client = std::thread::spawn(move || {
        let mut times = match placement {
            Placement::OneCpu => {
                pin_to_first_cpu();
                ping_pong(command(), &params, count)
            }
            Placement::Scheduler => (0..SPAWNS_UNPINNED)
                .flat_map(|_| ping_pong(command(), &params, count / SPAWNS_UNPINNED))
                .collect(),
        };
        times.sort();
        times
    });
    let times = tokio::task::spawn_blocking(move || client.join().unwrap())
        .await
        .unwrap();
    (percentile(&times, 0.50), percentile(&times, 0.99))
}

/// Spawns `command` and times `count` `getAuthStatus` calls, one at a time, after an
/// `initialize` and a tenth as many for warm-up. `cat` works too: it echoes each request,
/// which carries the id the client waits for.
fn ping_pong(command: std::process::Command, params: &Value, count: usize) -> Vec<Duration> {
    let mut client = PipeClient::spawn(command);
    client.call(
        "initialize",
        &json!({"clientInfo": {"name": "bench", "version": "1"}}),
    );
    for _ in 0..count / 10 {
        client.call("getAuthStatus", params);
    }
    let times = (0..count)
        .map(|_| client.call("getAuthStatus", params))
        .collect();
    client.finish();
    times
}

/// A client that sends one request at a time over the pipes of a process it spawned and
/// waits, blocking, for the line that carries its id (the round-trip rows).
pub(crate) struct PipeClient {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    line: String,
    next_id: usize,
}

impl PipeClient {
    pub(crate) fn spawn(mut command: std::process::Command) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self {
            stdin: child.stdin.take(),
            stdout: std::io::BufReader::new(child.stdout.take().unwrap()),
            child,
            line: String::new(),
            next_id: 0,
        }
    }

    /// Sends `method` and waits for its answer; how long that took. Panics on an error answer.
    pub(crate) fn call(&mut self, method: &str, params: &Value) -> Duration {
        use std::io::{BufRead, Write};
        self.next_id += 1;
        let id = self.next_id;
        let request = format!(
            "{}\n",
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
        );
        let started = Instant::now();
        let stdin = self.stdin.as_mut().expect("not finished");
        stdin.write_all(request.as_bytes()).unwrap();
        let marker = format!("\"id\":{id},");
        loop {
            self.line.clear();
            self.stdout.read_line(&mut self.line).unwrap();
            if self.line.contains(&marker) {
                break;
            }
        }
        assert!(
            !self.line.contains("\"error\""),
            "{method} failed: {}",
            self.line
        );
        started.elapsed()
    }

    /// Closes stdin and waits for the process to exit.
    pub(crate) fn finish(mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// Pins the calling thread, and so the processes it spawns, to CPU 0.
fn pin_to_first_cpu() {
    // SAFETY: an all-zero cpu_set_t is a valid empty set; CPU_SET writes inside it, and
    // sched_setaffinity reads size_of::<cpu_set_t>() bytes of it.
    let status = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    assert_eq!(
        status,
        0,
        "sched_setaffinity: {}",
        std::io::Error::last_os_error()
    );
}

/// `total` requests with `window` in flight: (requests per second, peak RSS KiB, RSS KiB at
/// the end, RSS KiB after the first 10,000).
async fn flood(target: &Target, total: u64, window: usize) -> (f64, u64, u64, u64) {
    let home = tempfile::tempdir().unwrap();
    target.write_credentials(home.path(), Credentials::ApiKey);
    let mut server = Running::start(target, home.path()).await;
    server.initialize().await;
    let pid = server.pid();
    let Running {
        child,
        mut stdin,
        mut lines,
        ..
    } = server;
    let window_permits = Arc::new(Semaphore::new(window));
    let writer_permits = window_permits.clone();
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        let mut batch = Vec::with_capacity(64 * 1024);
        for id in 1..=total {
            let permit = writer_permits.acquire().await.unwrap();
            permit.forget();
            batch.extend_from_slice(
                format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"getAuthStatus\",\"params\":{{}}}}\n")
                    .as_bytes(),
            );
            if writer_permits.available_permits() == 0 || id == total {
                stdin.write_all(&batch).await.unwrap();
                stdin.flush().await.unwrap();
                batch.clear();
            }
        }
        stdin
    });
    let mut answered = 0u64;
    let mut early_rss = 0;
    while answered < total {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("server closed stdout");
        if line.contains("\"id\"") {
            assert!(
                !line.contains("\"error\""),
                "request failed under load: {line}"
            );
            answered += 1;
            window_permits.add_permits(1);
            if answered == 10_000 {
                early_rss = memory_kib(pid, "VmRSS:");
            }
        }
    }
    let elapsed = started.elapsed();
    let (peak, end_rss) = (memory_kib(pid, "VmHWM:"), memory_kib(pid, "VmRSS:"));
    let stdin = writer.await.unwrap();
    let server = Running {
        child,
        stdin,
        lines,
        next_id: total,
    };
    server.stop().await;
    (
        total as f64 / elapsed.as_secs_f64(),
        peak,
        end_rss,
        early_rss,
    )
}

struct Row {
    metric: String,
    ours: String,
    peer: Option<String>,
    ratio: Option<String>,
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Each of `times` as a multiple of `floor` (issue 20's targets are stated so).
fn against_floor(times: &[Duration], floor: Duration) -> Vec<String> {
    times
        .iter()
        .map(|time| format!("{:.2}×", time.as_secs_f64() / floor.as_secs_f64()))
        .collect()
}

/// Builds the release server unless told not to.
fn build_release() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().to_path_buf();
    if std::env::var_os("BENCH_SKIP_BUILD").is_none() {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let status =
            std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args([
                    "build",
                    "--release",
                    "-q",
                    "-p",
                    "auth-app-server",
                    "--manifest-path",
                ])
                .arg(manifest)
                .status()
                .expect("run cargo build");
        assert!(status.success(), "building the release server failed");
    }
    dir.join("auth-app-server")
}

/// Adds a row; with two values, their ratio (peer over ours, or ours over peer when higher
/// is better).
fn record(rows: &mut Vec<Row>, metric: &str, values: Vec<(String, f64)>, lower_is_better: bool) {
    let ratio = (values.len() == 2 && values[0].1 > 0.0).then(|| {
        let r = values[1].1 / values[0].1;
        if lower_is_better {
            format!("peer/ours {r:.1}×")
        } else {
            format!("ours/peer {:.1}×", 1.0 / r)
        }
    });
    let mut values = values.into_iter().map(|(text, _)| text);
    rows.push(Row {
        metric: metric.to_owned(),
        ours: values.next().unwrap(),
        peer: values.next(),
        ratio,
    });
}

/// Poll latency and refresh requests of 8 processes on one home, on a token that still works,
/// while the provider answers 503 or takes 2 s; and one process alone behind the same 503.
async fn fleet_rows(targets: &[&Target], rows: &mut Vec<Row>) {
    use auth_app_server_tests::TokenMode;
    const OUTAGE: Duration = Duration::from_secs(8);
    let mut alone = Vec::new();
    for target in targets {
        let fleet = storm::fleet(target, 1, TokenMode::ServiceUnavailable, OUTAGE).await;
        alone.push((format!("{}", fleet.hits), fleet.hits as f64));
    }
    record(
        rows,
        "refresh requests: 1 process, 8 s behind a 503, token valid for 2 more minutes",
        alone,
        true,
    );
    for (what, mode) in [
        ("answering 503", TokenMode::ServiceUnavailable),
        ("slow (2 s)", TokenMode::Slow(Duration::from_secs(2))),
    ] {
        let (mut latency, mut hits) = (Vec::new(), Vec::new());
        for target in targets {
            let fleet = storm::fleet(target, 8, mode.clone(), OUTAGE).await;
            let at = |p| percentile(&fleet.latencies, p);
            let max = *fleet.latencies.last().unwrap();
            latency.push((
                format!(
                    "{} / {} / {} ({} polls, {} without a token)",
                    millis(at(0.5)),
                    millis(at(0.99)),
                    millis(max),
                    fleet.polls,
                    fleet.without_token
                ),
                at(0.99).as_secs_f64(),
            ));
            hits.push((format!("{}", fleet.hits), fleet.hits as f64));
        }
        record(
            rows,
            &format!(
                "poll latency p50 / p99 / max: 8 processes, 8 s, provider {what}, token valid for 2 more minutes"
            ),
            latency,
            true,
        );
        record(
            rows,
            &format!("refresh requests: the same 8 processes, provider {what}"),
            hits,
            true,
        );
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let peer = args
        .iter()
        .position(|a| a == "--peer")
        .map(|i| PathBuf::from(&args[i + 1]));
    let quick = args.iter().any(|a| a == "--quick");
    // Only the refresh-storm scenarios (they do not depend on --quick).
    let storms_only = args.iter().any(|a| a == "--storms-only");
    // Only the fleet scenarios (8 processes behind an outage or a slow provider).
    let fleet_only = args.iter().any(|a| a == "--fleet-only");
    // Only the keyring rows (file against keyring storage, needs gnome-keyring and dbus);
    // `--keyring` adds them to a full run.
    let keyring_only = args.iter().any(|a| a == "--keyring-only");
    let with_keyring = keyring_only || args.iter().any(|a| a == "--keyring");
    // Only the slow-disk row (polls while a write takes 500 ms).
    let slow_disk_only = args.iter().any(|a| a == "--slow-disk-only");
    // Only the many-credentials rows (200 stored, 20 refreshing at once on 3 issuers).
    let credentials_only = args.iter().any(|a| a == "--credentials-only");
    let (runs, count, flood_total, long_total) = if quick {
        (5, 2_000, 20_000, 100_000)
    } else {
        (30, 20_000, 200_000, 1_000_000)
    };

    let ours = Target {
        name: "auth-app-server",
        binary: build_release(),
        kind: Kind::Ours,
    };
    // `--against PATH`: another build of this server (the previous version) in the peer's
    // column, started the same way as ours.
    let against = args
        .iter()
        .position(|a| a == "--against")
        .map(|i| PathBuf::from(&args[i + 1]));
    // Only the rows of one server process (start, round trips, throughput, memory).
    let core_only = args.iter().any(|a| a == "--core-only");
    let peer = match (peer, against) {
        (Some(binary), _) => Some(Target {
            name: "codex app-server",
            binary,
            kind: Kind::Codex,
        }),
        (None, Some(binary)) => Some(Target {
            name: "previous build",
            binary,
            kind: Kind::Ours,
        }),
        (None, None) => None,
    };
    let targets: Vec<&Target> = std::iter::once(&ours).chain(peer.as_ref()).collect();
    eprintln!(
        "benchmarking {} (runs: {runs}, round trips: {count}, flood: {flood_total}, long run: {long_total})",
        targets
            .iter()
            .map(|t| t.name)
            .collect::<Vec<_>>()
            .join(" vs ")
    );

    let mut rows: Vec<Row> = Vec::new();

    if keyring_only {
        for (metric, cell) in keyring::run(&ours, count, runs).await {
            println!("| {metric} | {cell} |");
        }
        return;
    }
    let slow_writes = if quick { 4 } else { 20 };
    if slow_disk_only {
        for (metric, cell) in slow_disk::run(&ours, slow_writes).await {
            println!("| {metric} | {cell} |");
        }
        return;
    }
    if credentials_only {
        for (metric, ours_cell) in credentials::run(&ours, runs, count).await {
            rows.push(Row {
                metric,
                ours: ours_cell,
                peer: None,
                ratio: None,
            });
        }
        print_rows(&ours, None, rows);
        return;
    }
    if !storms_only && !fleet_only {
        let (starts, floor) = cold_starts(&targets, runs).await;
        let start_ratios = against_floor(&starts, floor);
        let values = starts
            .into_iter()
            .map(|d| (millis(d), d.as_secs_f64()))
            .collect();
        record(
            &mut rows,
            "cold start: spawn → initialize answer (median)",
            values,
            true,
        );
        rows.push(Row {
            metric: "floor: spawn → exit of `/bin/true` with the same pipes (median)".into(),
            ours: millis(floor),
            peer: peer.is_some().then(|| "(same spawn)".to_owned()),
            ratio: None,
        });
        rows.push(Row {
            metric: "cold start against its floor (`/bin/true`)".into(),
            ours: start_ratios[0].clone(),
            peer: start_ratios.get(1).cloned(),
            ratio: None,
        });

        for (placement, where_) in [
            (Placement::OneCpu, "client and server on one CPU"),
            (Placement::Scheduler, "placed by the scheduler"),
        ] {
            let mut api_key_p50s = Vec::new();
            for (label, credentials, params) in [
                ("API key", Credentials::ApiKey, json!({})),
                (
                    "OAuth fresh token, refreshToken: true",
                    Credentials::FreshOauth,
                    json!({"includeToken": true, "refreshToken": true}),
                ),
            ] {
                let (mut p50s, mut p99s) = (Vec::new(), Vec::new());
                for target in &targets {
                    let (p50, p99) =
                        round_trip(target, credentials, params.clone(), count, placement).await;
                    if matches!(credentials, Credentials::ApiKey) {
                        api_key_p50s.push(p50);
                    }
                    p50s.push((micros(p50), p50.as_secs_f64()));
                    p99s.push((micros(p99), p99.as_secs_f64()));
                }
                let metric = format!("getAuthStatus round trip, {label}, {where_}");
                record(&mut rows, &format!("{metric}: p50"), p50s, true);
                record(&mut rows, &format!("{metric}: p99"), p99s, true);
            }
            // The floor: the same client and pipes, with `cat` echoing each request.
            let cat = || std::process::Command::new("cat");
            let (p50, p99) = measure_round_trips(cat, json!({}), count, placement).await;
            rows.push(Row {
                metric: format!("floor: the same round trip through `cat`, {where_}: p50 / p99"),
                ours: format!("{} / {}", micros(p50), micros(p99)),
                peer: peer.is_some().then(|| "(same pipes)".to_owned()),
                ratio: None,
            });
            let ratios = against_floor(&api_key_p50s, p50);
            rows.push(Row {
                metric: format!(
                    "getAuthStatus round trip, API key, {where_}: p50 against the `cat` floor"
                ),
                ours: ratios[0].clone(),
                peer: ratios.get(1).cloned(),
                ratio: None,
            });
        }

        // Several floods, the targets taking turns: the median rate, the highest peak.
        let mut floods = vec![Vec::new(); targets.len()];
        for round in 0..FLOOD_ROUNDS {
            for (n, target) in targets.iter().enumerate() {
                if round == 0 || target.kind == Kind::Ours {
                    floods[n].push(flood(target, target.cap(flood_total), 64).await);
                }
            }
        }
        let (mut rates, mut peaks) = (Vec::new(), Vec::new());
        for mut runs in floods {
            runs.sort_by(|a, b| a.0.total_cmp(&b.0));
            let rate = runs[runs.len() / 2].0;
            let peak = runs.iter().map(|run| run.1).max().unwrap();
            rates.push((format!("{rate:.0} req/s"), rate));
            peaks.push((format!("{:.1} MB", peak as f64 / 1024.0), peak as f64));
        }
        record(
            &mut rows,
            "throughput, 64 requests in flight (median of 5 floods)",
            rates,
            false,
        );
        record(&mut rows, "peak resident memory (VmHWM)", peaks, true);

        let mut growth = Vec::new();
        for target in &targets {
            let long_total = target.cap(long_total);
            let (_, _, end, early) = flood(target, long_total, 64).await;
            growth.push((
                format!(
                    "{:.1} MB after 10k → {:.1} MB after {}",
                    early as f64 / 1024.0,
                    end as f64 / 1024.0,
                    long_total
                ),
                end as f64,
            ));
        }
        record(
            &mut rows,
            "resident memory, long polling run (VmRSS)",
            growth,
            true,
        );
    }
    if core_only {
        print_rows(&ours, peer.as_ref(), rows);
        return;
    }
    if !fleet_only {
        for (metric, cells) in storm::run(&targets).await {
            let mut cells = cells.into_iter();
            rows.push(Row {
                metric,
                ours: cells.next().unwrap(),
                peer: cells.next(),
                ratio: None,
            });
        }
    }
    fleet_rows(&targets, &mut rows).await;
    if !fleet_only && !storms_only {
        for (metric, ours) in slow_disk::run(&ours, slow_writes).await {
            rows.push(Row {
                metric,
                ours,
                peer: peer.is_some().then(String::new),
                ratio: None,
            });
        }
    }
    if !fleet_only && !storms_only {
        for (metric, ours) in credentials::run(&ours, runs, count).await {
            rows.push(Row {
                metric,
                ours,
                peer: peer.is_some().then(String::new),
                ratio: None,
            });
        }
    }
    if with_keyring {
        for (metric, ours) in keyring::run(&ours, count, runs).await {
            rows.push(Row {
                metric,
                ours,
                peer: peer.is_some().then(String::new),
                ratio: None,
            });
        }
    }

    print_rows(&ours, peer.as_ref(), rows);
}

/// The table, in Markdown.
fn print_rows(ours: &Target, peer: Option<&Target>, rows: Vec<Row>) {
    println!(
        "\n| metric | {} |{}",
        ours.name,
        peer.map(|p| format!(" {} | ratio |", p.name))
            .unwrap_or_default()
    );
    println!("|---|---|{}", if peer.is_some() { "---|---|" } else { "" });
    for row in rows {
        match (&row.peer, &row.ratio) {
            (Some(peer), ratio) => println!(
                "| {} | {} | {} | {} |",
                row.metric,
                row.ours,
                peer,
                ratio.clone().unwrap_or_default()
            ),
            (None, _) => println!("| {} | {} |", row.metric, row.ours),
        }
    }
}
