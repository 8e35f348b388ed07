//! A client that stops reading stdout while it keeps writing (issue 5, "overload and slow
//! clients"): the server stops taking input instead of buffering answers without bound, its
//! refresh work still finishes (auth.json written, lock released) so other processes on the
//! same home are served, and once the client reads again every request gets exactly one answer.
//! The same holds for batches: at most 1024 elements each (a larger one gets one error), counted
//! toward the bounds element by element, and the error lines the server writes itself count by
//! their bytes too.

use std::collections::HashSet;
use std::fs::File;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use auth_app_server_tests::{
    FakeIssuer, ServerProcess, TokenMode, memory_kib, seeded_home, server_command,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

/// Requests the client tries to write without reading a single answer: about 12 MB.
const TOTAL: usize = 20_000;

/// Far more than the server may take in while its answers are not read: 1024 in flight, 1024
/// queued error lines, its 64 KiB read buffer and the two 64 KiB pipes hold about 2,300 of
/// these 600-byte requests.
const MAX_TAKEN: usize = 5_000;

/// The server on `home` with raw pipes (stderr dropped), past the handshake.
async fn start_initialized(home: &Path) -> (Child, ChildStdin, BufReader<ChildStdout>) {
    let mut child = server_command(home, &[], &[])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
    memory_kib(pid, "VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_beyond_1024_in_flight_is_refused_with_overloaded_and_the_server_recovers() {
    let home = tempfile::tempdir().unwrap();
    let (child, mut stdin, stdout) = start_initialized(home.path()).await;
    let mut stdout = stdout.lines();
    // Long ids make long answers, so the stdout pipe (64 KiB on Linux) plus the server's write
    // buffer hold only a few hundred of them while this client writes and does not read. 2000
    // requests stay below what the server takes in before it stops reading stdin (1024 in
    // flight, 1024 queued error lines, the pipe and the buffer), so this write cannot deadlock.
    let pad = "p".repeat(400);
    let mut flood = String::new();
    for n in 0..2000 {
        flood.push_str(&format!(
            "{{\"id\":\"{n}-{pad}\",\"method\":\"getAuthStatus\"}}\n"
        ));
    }
    stdin.write_all(flood.as_bytes()).await.unwrap();

    let mut answered = HashSet::new();
    let mut overloaded = 0;
    for _ in 0..2000 {
        let line = stdout.next_line().await.unwrap().expect("stdout open");
        let answer: Value = serde_json::from_str(&line).unwrap();
        let id = answer["id"].as_str().unwrap().to_owned();
        match answer.get("error") {
            Some(error) => {
                assert_eq!(error["code"], -32001, "{error}");
                assert_eq!(error["message"], "server overloaded; retry later");
                overloaded += 1;
            }
            None => assert_eq!(answer["result"]["state"], "signedOut", "{line}"),
        }
        assert!(answered.insert(id), "a request was answered twice");
    }
    assert!(
        overloaded > 0,
        "a client that does not read while flooding must hit the bound"
    );
    still_serving(child, stdin, stdout.into_inner()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_cannot_grow_the_server_or_stall_refreshes() {
    let issuer = FakeIssuer::start().await;
    // The first poll's refresh is still at the issuer while stdout fills up.
    issuer.set_mode(TokenMode::Slow(Duration::from_millis(300)));
    let (home, tokens) = seeded_home(&issuer, 60);

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

/// The most the server may hold while nobody reads its answers to batches: its own error lines
/// wait unwritten up to 4 MiB, plus one line being read (1 MiB) and one being built.
const BATCH_RSS_LIMIT_KIB: u64 = 40 * 1024;

/// Writes `line` `lines` times without reading; watches until the server stops taking input
/// (neither the client's writes nor the server's CPU time move for half a second) or takes
/// everything, asserting the memory bound at every look and on the peak. Returns the writer
/// (it gives back stdin once the client reads again) and how many lines the server took.
async fn write_without_reading(
    pid: u32,
    mut stdin: ChildStdin,
    line: String,
    lines: usize,
) -> (tokio::task::JoinHandle<ChildStdin>, usize) {
    let written = Arc::new(AtomicUsize::new(0));
    let counter = written.clone();
    let writer = tokio::spawn(async move {
        for _ in 0..lines {
            stdin.write_all(line.as_bytes()).await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
        }
        stdin
    });
    let (mut last, mut idle) = (None, 0);
    while idle < 5 {
        let rss = resident_kib(pid);
        assert!(
            rss < BATCH_RSS_LIMIT_KIB,
            "the server holds {rss} KiB after taking {} batch lines while nobody reads its answers",
            written.load(Ordering::SeqCst)
        );
        let now = Some((written.load(Ordering::SeqCst), cpu_ticks(pid)));
        idle = if now == last { idle + 1 } else { 0 };
        last = now;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let peak = memory_kib(pid, "VmHWM");
    assert!(
        peak < BATCH_RSS_LIMIT_KIB,
        "the server's peak was {peak} KiB while nobody read its answers"
    );
    (writer, written.load(Ordering::SeqCst))
}

/// After the client read everything: one more request is answered, and EOF ends the server.
async fn still_serving(
    mut child: Child,
    mut stdin: ChildStdin,
    mut stdout: BufReader<ChildStdout>,
) {
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

/// `[1,1,…]` lines of 1 MiB (524,287 elements): before the limit, each was answered by a
/// 40 MB line of `-32600` errors, and two such lines took the server past 300 MB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_over_1024_elements_gets_one_error_and_costs_nothing() {
    const ELEMENTS: usize = 524_287;
    const LINES: usize = 16;
    let home = tempfile::tempdir().unwrap();
    let (child, stdin, mut stdout) = start_initialized(home.path()).await;
    let pid = child.id().unwrap();
    let line = format!("[{}1]\n", "1,".repeat(ELEMENTS - 1));
    assert_eq!(line.len(), 1024 * 1024, "the longest line the server reads");
    let (writer, _) = write_without_reading(pid, stdin, line, LINES).await;

    let expected = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message":
        "invalid request: the batch has 524287 elements, more than the limit of 1024; send it in smaller batches"}});
    for _ in 0..LINES {
        let mut answer = String::new();
        stdout.read_line(&mut answer).await.unwrap();
        assert_eq!(serde_json::from_str::<Value>(&answer).unwrap(), expected);
    }
    let stdin = writer.await.unwrap();
    still_serving(child, stdin, stdout).await;
}

/// Batches of one invalid element whose id is almost 1 MiB: each is answered with an error
/// echoing that id. Counted by lines only, 1024 such answers (1 GiB) could wait unwritten;
/// counted by bytes too, 4 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_of_invalid_elements_from_a_client_that_stops_reading_cannot_grow_the_server() {
    const LINES: usize = 48;
    let home = tempfile::tempdir().unwrap();
    let (child, stdin, mut stdout) = start_initialized(home.path()).await;
    let pid = child.id().unwrap();
    let id = "i".repeat(1024 * 1024 - 100);
    let line = format!("[{{\"jsonrpc\":\"1.0\",\"id\":\"{id}\",\"method\":\"getAuthStatus\"}}]\n");
    let (writer, taken) = write_without_reading(pid, stdin, line, LINES).await;
    assert!(
        taken < LINES,
        "the server took all {LINES} lines ({LINES} MiB of answers) while nobody read them"
    );

    // The client reads again: every line is answered, in order, with its id.
    for n in 0..LINES {
        let mut answer = String::new();
        stdout.read_line(&mut answer).await.unwrap();
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer[0]["id"], id.as_str(), "line {n}");
        assert_eq!(answer[0]["error"]["code"], -32600, "line {n}");
        assert_eq!(answer.as_array().unwrap().len(), 1);
    }
    let stdin = writer.await.unwrap();
    still_serving(child, stdin, stdout).await;
}

/// Batches of 1024 invalid elements, the most a batch may have: each line's answer holds 1024
/// errors, and the server holds a few of them at most while nobody reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_batches_of_invalid_elements_are_each_answered_in_full() {
    const LINES: usize = 64;
    let home = tempfile::tempdir().unwrap();
    let (child, stdin, mut stdout) = start_initialized(home.path()).await;
    let pid = child.id().unwrap();
    let element = format!("{{\"jsonrpc\":\"1.0\",\"id\":\"{}\"}}", "j".repeat(900));
    let line = format!("[{}]\n", vec![element; 1024].join(","));
    let (writer, taken) = write_without_reading(pid, stdin, line, LINES).await;
    assert!(taken < LINES, "the server took all {LINES} lines");
    for n in 0..LINES {
        let mut answer = Vec::new();
        stdout.read_until(b'\n', &mut answer).await.unwrap();
        let text = std::str::from_utf8(&answer).unwrap();
        assert!(text.starts_with('['), "line {n} is not a batch answer");
        assert_eq!(text.matches("\"code\":-32600").count(), 1024, "line {n}");
    }
    let stdin = writer.await.unwrap();
    still_serving(child, stdin, stdout).await;
}
