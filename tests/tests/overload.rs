//! A client that stops reading stdout while it keeps writing (issue 5, "overload and slow
//! clients"): the server stops taking input instead of buffering answers without bound, its
//! refresh work still finishes (auth.json written, lock released) so other processes on the
//! same home are served, and once the client reads again every request gets exactly one answer.
//! The same holds for large batches, which count toward the bounds element by element.
//! The flood past 1024 in flight with a reading client is in foundation_transport.rs.

use std::collections::HashSet;
use std::fs::File;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use auth_app_server_tests::{
    FakeIssuer, ServerProcess, TokenMode, now, seed_oauth_home, server_binary,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Requests the client tries to write without reading a single answer: about 12 MB.
const TOTAL: usize = 20_000;

/// Far more than the server may take in while its answers are not read: 1024 in flight, 1024
/// queued error lines, its 64 KiB read buffer and the two 64 KiB pipes hold about 2,300 of
/// these 600-byte requests.
const MAX_TAKEN: usize = 5_000;

/// The server on `home` with raw pipes (stderr dropped), past the handshake.
async fn start_initialized(home: &Path) -> (Child, ChildStdin, BufReader<ChildStdout>) {
    let mut child = Command::new(server_binary())
        .arg("--home")
        .arg(home)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":\"init\",\"method\":\"initialize\",\"params\":{\"clientInfo\":{\"name\":\"overload\",\"version\":\"1\"}}}\n")
        .await
        .unwrap();
    let mut init = String::new();
    stdout.read_line(&mut init).await.unwrap();
    let init: Value = serde_json::from_str(&init).unwrap();
    assert_eq!(init["id"], "init", "{init}");
    (child, stdin, stdout)
}

fn stored_refresh_token(home: &Path) -> Option<String> {
    let file: Value = serde_json::from_slice(&std::fs::read(home.join("auth.json")).ok()?).ok()?;
    file["tokens"]["refresh_token"].as_str().map(str::to_owned)
}

/// CPU time the process has used so far, in clock ticks (`utime + stime` of /proc/PID/stat).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name may hold spaces; the fields after it are plain numbers.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn resident_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_cannot_grow_the_server_or_stall_refreshes() {
    let issuer = FakeIssuer::start().await;
    // The first poll's refresh is still at the issuer while stdout fills up.
    issuer.set_mode(TokenMode::Slow(Duration::from_millis(300)));
    let home = tempfile::tempdir().unwrap();
    let tokens = issuer.issue_grant(3600);
    seed_oauth_home(home.path(), &issuer, &tokens, now() + 60);

    let (mut child, mut stdin, stdout) = start_initialized(home.path()).await;
    let pid = child.id().unwrap();
    let mut stdout = stdout.lines();

    // From here on the client writes and does not read.
    let written = Arc::new(AtomicUsize::new(0));
    let counter = written.clone();
    let pad = "p".repeat(480);
    let writer = tokio::spawn(async move {
        for n in 0..TOTAL {
            let line = format!(
                "{{\"jsonrpc\":\"2.0\",\"id\":\"{n}-{pad}\",\"method\":\"getAuthStatus\",\"params\":{{\"includeToken\":true,\"refreshToken\":true}}}}\n"
            );
            stdin.write_all(line.as_bytes()).await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
        }
        stdin
    });

    // Wait until the server stops taking input: no progress for half a second. (Only when to
    // look depends on time; what is asserted below holds however slow the machine is.)
    let mut last = usize::MAX;
    loop {
        let now = written.load(Ordering::SeqCst);
        assert!(
            !writer.is_finished(),
            "the server took all {TOTAL} requests while nobody read its answers"
        );
        if now == last {
            break;
        }
        last = now;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let taken = written.load(Ordering::SeqCst);
    assert!(
        taken < MAX_TAKEN,
        "the server took {taken} requests while nobody read its answers"
    );
    let rss = resident_kib(pid);
    assert!(
        rss < 64 * 1024,
        "the server holds {rss} KiB while nobody reads its answers"
    );

    // The refresh that the first poll started finishes, is stored, and releases the lock,
    // although every answer about it is stuck behind the full pipe.
    let deadline = Instant::now() + Duration::from_secs(30);
    while stored_refresh_token(home.path()).as_deref() == Some(tokens.refresh_token.as_str()) {
        assert!(
            Instant::now() < deadline,
            "the refresh was not stored while stdout was full"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let lock = File::open(home.path().join("auth.json.lock")).unwrap();
    lock.try_lock()
        .expect("auth.json.lock is free while the server waits for its reader");
    drop(lock);
    assert_eq!(issuer.refresh_hits(), 1);

    // Another process on the same home is served at once, with the stored tokens.
    let mut other = ServerProcess::start_initialized(home.path()).await;
    let status = other
        .status(json!({"includeToken": true, "refreshToken": true}))
        .await;
    assert_eq!(status["state"], "active", "{status}");
    let stored: Value =
        serde_json::from_slice(&std::fs::read(home.path().join("auth.json")).unwrap()).unwrap();
    assert_eq!(status["authToken"], stored["tokens"]["access_token"]);
    assert_eq!(issuer.refresh_hits(), 1, "nobody refreshed twice");
    drop(other);

    // The client reads again: every request gets exactly one answer, served or refused with
    // -32001, and the server goes on serving.
    let reader = tokio::spawn(async move {
        let mut answered = HashSet::new();
        let mut overloaded = 0;
        while answered.len() < TOTAL {
            let line = stdout.next_line().await.unwrap().expect("stdout open");
            let message: Value = serde_json::from_str(&line).unwrap();
            let Some(id) = message["id"].as_str() else {
                assert_eq!(message["method"], "authStatusChanged", "{line}");
                continue;
            };
            match message.get("error") {
                Some(error) => {
                    assert_eq!(error["code"], -32001, "{error}");
                    overloaded += 1;
                }
                None => assert_eq!(message["result"]["state"], "active", "{line}"),
            }
            assert!(answered.insert(id.to_owned()), "answered twice: {id}");
        }
        (stdout, overloaded)
    });
    let mut stdin = writer.await.unwrap();
    let (mut stdout, overloaded) = reader.await.unwrap();
    assert!(
        overloaded < TOTAL,
        "some requests were served after the client read again"
    );
    stdin
        .write_all(
            b"{\"jsonrpc\":\"2.0\",\"id\":\"last\",\"method\":\"getAuthStatus\",\"params\":{}}\n",
        )
        .await
        .unwrap();
    let last: Value = loop {
        let message: Value =
            serde_json::from_str(&stdout.next_line().await.unwrap().unwrap()).unwrap();
        if message["id"] == "last" {
            break message;
        }
    };
    assert_eq!(last["result"]["state"], "active", "{last}");
    drop(stdin);
    assert!(child.wait().await.unwrap().success());
    assert_eq!(issuer.refresh_hits(), 1);
}

/// Elements of each batch line (`[1,1,…]`, 256 KiB): each is answered `-32600`, about 160
/// bytes, so one line's answer is about 20 MB.
const BATCH_ELEMENTS: usize = 131_071;
/// Batch lines the client writes without reading: about 170 MB of answers if each line
/// counted once, as before.
const BATCH_LINES: usize = 8;
/// Generous: the server may hold one batch answer being written and another being built.
const BATCH_RSS_LIMIT_KIB: u64 = 96 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_batches_from_a_client_that_stops_reading_cannot_grow_the_server() {
    let home = tempfile::tempdir().unwrap();
    let (mut child, mut stdin, mut stdout) = start_initialized(home.path()).await;
    let pid = child.id().unwrap();

    // From here on the client writes and does not read.
    let written = Arc::new(AtomicUsize::new(0));
    let counter = written.clone();
    let writer = tokio::spawn(async move {
        let line = format!("[{}1]\n", "1,".repeat(BATCH_ELEMENTS - 1));
        for _ in 0..BATCH_LINES {
            stdin.write_all(line.as_bytes()).await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
        }
        stdin
    });

    // Watch until the server stops taking input: neither the client's writes nor the server's
    // CPU time move for half a second. The bound is asserted at every look.
    let (mut last, mut idle) = (None, 0);
    while idle < 5 {
        let rss = resident_kib(pid);
        assert!(
            rss < BATCH_RSS_LIMIT_KIB,
            "the server holds {rss} KiB after taking {} batch lines while nobody reads its answers",
            written.load(Ordering::SeqCst)
        );
        assert!(
            !writer.is_finished(),
            "the server took all {BATCH_LINES} batch lines while nobody read its answers ({rss} KiB)"
        );
        let now = Some((written.load(Ordering::SeqCst), cpu_ticks(pid)));
        idle = if now == last { idle + 1 } else { 0 };
        last = now;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The client reads again: every element of every line is answered, and the server goes on
    // serving.
    let reader = tokio::spawn(async move {
        let mut line = Vec::new();
        for n in 0..BATCH_LINES {
            line.clear();
            stdout.read_until(b'\n', &mut line).await.unwrap();
            let text = std::str::from_utf8(&line).unwrap();
            assert!(text.starts_with('['), "line {n} is not a batch answer");
            assert_eq!(text.matches("\"code\":-32600").count(), BATCH_ELEMENTS);
        }
        stdout
    });
    let mut stdin = writer.await.unwrap();
    let mut stdout = reader.await.unwrap();
    stdin
        .write_all(
            b"{\"jsonrpc\":\"2.0\",\"id\":\"last\",\"method\":\"getAuthStatus\",\"params\":{}}\n",
        )
        .await
        .unwrap();
    let mut last = String::new();
    stdout.read_line(&mut last).await.unwrap();
    let last: Value = serde_json::from_str(&last).unwrap();
    assert_eq!(last["id"], "last", "{last}");
    assert_eq!(last["result"]["state"], "signedOut", "{last}");
    drop(stdin);
    assert!(child.wait().await.unwrap().success());
}
