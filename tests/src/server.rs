//! Drives the real binary over pipes with JSON lines.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

/// How long any single wait may take before the test fails with the server's stderr. A guard
/// against hangs, not a timing assertion.
pub const WAIT_LIMIT: Duration = Duration::from_secs(30);

/// The `auth-app-server` binary under test.
pub fn server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("AUTH_APP_SERVER_BIN") {
        return PathBuf::from(path);
    }
    // Test executables live in target/<profile>/deps; the binary one folder up.
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let binary = profile_dir.join(format!("auth-app-server{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} does not exist: run the tests with `cargo test --workspace` (which builds it) or set AUTH_APP_SERVER_BIN",
        binary.display()
    );
    binary
}

/// The binary on `home` with `args` (flags, or a command for people and its flags) and `envs`,
/// in the environment every test starts from: no `RUST_LOG`, no provider from the environment.
/// Every test that runs the binary itself, not through `script(1)`, starts it from here; the
/// caller sets up the pipes.
pub fn server_command(home: &Path, args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut command = Command::new(server_binary());
    command
        .args(args)
        .arg("--home")
        .arg(home)
        .env_remove("RUST_LOG")
        .env_remove("AUTH_APP_SERVER_ISSUER")
        .env_remove("AUTH_APP_SERVER_CLIENT_ID")
        .envs(envs.iter().copied())
        .kill_on_drop(true);
    command
}

/// [`server_command`] started with its stdin, stdout and stderr piped.
fn spawn_piped(home: &Path, args: &[&str], envs: &[(&str, &str)]) -> Child {
    server_command(home, args, envs)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn auth-app-server")
}

/// Runs a command for people (`status`, `token`, `logout`, ...) on `home` to its end, with
/// `stdin` as its whole input; its exit status, stdout and stderr.
pub async fn run_command(home: &Path, args: &[&str], envs: &[(&str, &str)], stdin: &str) -> Output {
    let mut child = spawn_piped(home, args, envs);
    let mut input = child.stdin.take().expect("stdin");
    // A command that ends before reading (a usage error) closes its stdin: not a failure.
    match input.write_all(stdin.as_bytes()).await {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            panic!("write stdin: {error}")
        }
        _ => {}
    }
    drop(input);
    tokio::time::timeout(WAIT_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("`{}` did not end", args.join(" ")))
        .expect("wait for auth-app-server")
}

/// A running server and the client end of its pipes.
pub struct ServerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    /// Messages read while waiting for something else, in arrival order.
    backlog: VecDeque<Value>,
    stderr: Arc<Mutex<String>>,
    /// Signalled each time more of stderr has been read.
    stderr_grew: Arc<tokio::sync::Notify>,
    next_id: u64,
}

impl ServerProcess {
    /// Starts the server on `home` with no other flags.
    pub async fn start(home: &Path) -> Self {
        Self::start_with(home, &[], &[]).await
    }

    /// Starts the server on `home` with extra flags and environment variables.
    pub async fn start_with(home: &Path, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut child = spawn_piped(home, args, envs);
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut stdout = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = stdout.next_line().await {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let stderr_grew = Arc::new(tokio::sync::Notify::new());
        let grew = stderr_grew.clone();
        let mut pipe = child.stderr.take().expect("stderr");
        tokio::spawn(async move {
            let mut buf = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
                grew.notify_waiters();
            }
        });
        let stdin = child.stdin.take();
        Self {
            child,
            stdin,
            lines,
            backlog: VecDeque::new(),
            stderr,
            stderr_grew,
            next_id: 1000,
        }
    }

    /// Starts the server and completes the handshake.
    pub async fn start_initialized(home: &Path) -> Self {
        let mut server = Self::start(home).await;
        server.initialize().await;
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("server still running")
    }

    /// Sets the running server's (soft) limit on open descriptors, `RLIMIT_NOFILE`.
    pub fn limit_open_files(&self, limit: u64) {
        set_rlimit(self.pid(), libc::RLIMIT_NOFILE, limit);
    }

    /// Sets the running server's (soft) file size limit, `RLIMIT_FSIZE` (`ulimit -f`).
    pub fn limit_file_size(&self, bytes: u64) {
        set_rlimit(self.pid(), libc::RLIMIT_FSIZE, bytes);
    }

    /// Descriptors the server has open now.
    pub fn open_files(&self) -> u64 {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("/proc/PID/fd")
            .count() as u64
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Everything the server wrote to stderr once it holds `needle` (a log line on its way
    /// through the pipe); panics with what it holds after [`WAIT_LIMIT`].
    pub async fn wait_for_stderr(&self, needle: &str) -> String {
        let wait = async {
            loop {
                let grew = self.stderr_grew.notified();
                let said = self.stderr();
                if said.contains(needle) {
                    return said;
                }
                grew.await;
            }
        };
        tokio::time::timeout(WAIT_LIMIT, wait)
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} on stderr:\n{}", self.stderr()))
    }

    /// Writes raw bytes to stdin (add the `\n` yourself).
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(bytes).await.expect("write to server stdin");
        stdin.flush().await.expect("flush server stdin");
    }

    /// Writes one line.
    pub async fn send_line(&mut self, line: &str) {
        self.send_bytes(format!("{line}\n").as_bytes()).await;
    }

    pub async fn send(&mut self, message: &Value) {
        self.send_line(&message.to_string()).await;
    }

    /// Sends a request with a fresh numeric id; returns the id.
    pub async fn send_request(&mut self, method: &str, params: Option<Value>) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if let Some(params) = params {
            message["params"] = params;
        }
        self.send(&message).await;
        id
    }

    /// The next message, from the backlog first.
    pub async fn next_message(&mut self) -> Value {
        if let Some(message) = self.backlog.pop_front() {
            return message;
        }
        self.read_message().await
    }

    async fn read_message(&mut self) -> Value {
        match tokio::time::timeout(WAIT_LIMIT, self.lines.recv()).await {
            Ok(Some(line)) => {
                let message: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
                let messages = match &message {
                    Value::Array(items) => items.clone(),
                    single => vec![single.clone()],
                };
                for item in &messages {
                    assert_eq!(
                        item["jsonrpc"], "2.0",
                        "every message carries jsonrpc 2.0: {line}"
                    );
                }
                message
            }
            Ok(None) => panic!("server closed stdout; stderr:\n{}", self.stderr()),
            Err(_) => panic!(
                "no message from the server within {WAIT_LIMIT:?}; stderr:\n{}",
                self.stderr()
            ),
        }
    }

    /// Waits for the first message matching `predicate`; others stay in the backlog.
    pub async fn wait_for(&mut self, predicate: impl Fn(&Value) -> bool) -> Value {
        if let Some(at) = self.backlog.iter().position(&predicate) {
            return self.backlog.remove(at).expect("position is valid");
        }
        loop {
            let message = self.read_message().await;
            if predicate(&message) {
                return message;
            }
            self.backlog.push_back(message);
        }
    }

    /// The response to request `id` (result or error).
    pub async fn response(&mut self, id: u64) -> Value {
        self.wait_for(|m| {
            m["id"] == json!(id) && (m.get("result").is_some() || m.get("error").is_some())
        })
        .await
    }

    /// Sends a request and returns its whole response message.
    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        let params = if params.is_null() { None } else { Some(params) };
        let id = self.send_request(method, params).await;
        self.response(id).await
    }

    /// Sends a request and returns its result; fails the test on an error answer.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let response = self.request(method, params).await;
        match response.get("result") {
            Some(result) => result.clone(),
            None => panic!("{method} failed: {response}\nstderr:\n{}", self.stderr()),
        }
    }

    /// Sends a request and returns its error object; fails the test on a success.
    pub async fn call_error(&mut self, method: &str, params: Value) -> Value {
        let response = self.request(method, params).await;
        match response.get("error") {
            Some(error) => error.clone(),
            None => panic!("{method} was expected to fail: {response}"),
        }
    }

    /// Waits for a notification and returns its params.
    pub async fn notification(&mut self, method: &str) -> Value {
        let message = self
            .wait_for(|m| m.get("id").is_none() && m["method"] == method)
            .await;
        message["params"].clone()
    }

    /// Notifications with `method` received so far (without waiting), removed from the backlog.
    pub fn take_notifications(&mut self, method: &str) -> Vec<Value> {
        let (taken, kept) = self
            .backlog
            .drain(..)
            .partition(|m| m.get("id").is_none() && m["method"] == method);
        self.backlog = kept;
        taken
            .into_iter()
            .map(|m: Value| m["params"].clone())
            .collect()
    }

    pub async fn initialize(&mut self) -> Value {
        self.call(
            "initialize",
            json!({"clientInfo": {"name": "e2e", "version": "0"}}),
        )
        .await
    }

    /// `getAuthStatus` with the given params.
    pub async fn status(&mut self, params: Value) -> Value {
        self.call("getAuthStatus", params).await
    }

    /// Waits for the `authStatusChanged` notification that announces `state`; its params.
    pub async fn announced(&mut self, state: &str) -> Value {
        let message = self
            .wait_for(|m| {
                m.get("id").is_none()
                    && m["method"] == "authStatusChanged"
                    && m["params"]["state"] == state
            })
            .await;
        message["params"].clone()
    }

    /// Polls with `refreshToken: true` until `done` holds for the answer. A refresh in the
    /// background and a backoff window end on their own time, so this waits for the condition
    /// in small steps, with a deadline.
    pub async fn poll_until(&mut self, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let status = self.status(crate::refresh_poll()).await;
            if done(&status) {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "condition not reached: {status}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Closes stdin and waits for the process to exit; returns its status and any messages it
    /// wrote that were not read yet.
    pub async fn finish(mut self) -> (ExitStatus, Vec<Value>) {
        drop(self.stdin.take());
        let status = tokio::time::timeout(WAIT_LIMIT, self.child.wait())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "server did not exit after stdin closed; stderr:\n{}",
                    self.stderr()
                )
            })
            .expect("wait for server");
        let mut rest: Vec<Value> = self.backlog.drain(..).collect();
        while let Some(line) = self.lines.recv().await {
            rest.push(
                serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}")),
            );
        }
        (status, rest)
    }

    /// Sends a signal (e.g. "TERM", "KILL") to the process.
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit (after a signal) and returns the messages not read yet.
    pub async fn wait_exit(mut self) -> (ExitStatus, Vec<Value>) {
        let status = tokio::time::timeout(WAIT_LIMIT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("server did not exit; stderr:\n{}", self.stderr()))
            .expect("wait for server");
        let mut rest: Vec<Value> = self.backlog.drain(..).collect();
        while let Some(line) = self.lines.recv().await {
            rest.push(
                serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}")),
            );
        }
        (status, rest)
    }
}

/// Sets the soft `resource` limit of process `pid` (prlimit(2)), keeping the hard limit so
/// that it can be raised again.
fn set_rlimit(pid: u32, resource: libc::__rlimit_resource_t, limit: u64) {
    let pid = pid as libc::pid_t;
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: with a null new limit, prlimit only writes the current one into `current`.
    let result = unsafe { libc::prlimit(pid, resource, std::ptr::null(), &mut current) };
    assert_eq!(result, 0, "prlimit: {}", std::io::Error::last_os_error());
    let wanted = libc::rlimit {
        rlim_cur: limit,
        rlim_max: current.rlim_max,
    };
    // SAFETY: prlimit reads `wanted` and writes nothing (the old-limit pointer is null).
    let result = unsafe { libc::prlimit(pid, resource, &wanted, std::ptr::null_mut()) };
    assert_eq!(result, 0, "prlimit: {}", std::io::Error::last_os_error());
}
