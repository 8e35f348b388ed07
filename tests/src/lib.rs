//! Test support shared by the end-to-end tests: a client that drives the real
//! `auth-app-server` binary over pipes, (see [`issuer`]) a fake OAuth issuer, served over TLS
//! with a certificate from a private CA ([`tls`]) when asked, and a forward proxy ([`proxy`]).
//!
//! The binary is the one `cargo test` builds for the workspace (`target/<profile>/auth-app-server`);
//! set `AUTH_APP_SERVER_BIN` to test another build.

pub mod interop;
pub mod issuer;
pub mod keyring;
pub mod proxy;
pub mod server;
pub mod tls;

pub use issuer::{
    FakeIssuer, Gate, IssuedTokens, IssuerOptions, MetadataForm, RegistrationMode, TokenMode,
};
pub use proxy::ConnectProxy;
pub use server::{ServerProcess, run_command, server_binary, server_command};
pub use tls::TestCa;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

/// Makes ring the TLS provider of this test process, as the server makes it its own: reqwest,
/// built without a provider of its own (the workspace's Cargo.toml says why), needs one before
/// a test builds an HTTP client. Call it before `reqwest::Client::new()`.
pub fn install_tls_provider() {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
}

/// A memory figure of process `pid` from `/proc/PID/status`, in KiB: `"VmRSS"` (resident
/// now) or `"VmHWM"` (the peak so far).
pub fn memory_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("read /proc/PID/status")
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Unix seconds now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs() as i64
}

/// Unix milliseconds at `at` (a moment of this process's monotonic clock, e.g. when the fake
/// issuer received a request).
pub fn unix_ms_at(at: std::time::Instant) -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis() as i64;
    now - at.elapsed().as_millis() as i64
}

/// `auth.json` of `home`, parsed.
pub fn read_auth(home: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(home.join("auth.json")).unwrap()).unwrap()
}

/// `auth.json.lock` of `home`, opened (created if need be) as the server opens it, not locked.
pub fn lock_file(home: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(home.join("auth.json.lock"))
        .unwrap()
}

/// The poll a client makes before each API call.
pub fn refresh_poll() -> serde_json::Value {
    json!({"includeToken": true, "refreshToken": true})
}

/// Two processes on one home poll an expired token at the same moment (the issuer answering
/// slowly enough that the second asks while the first holds the lock): both answer `active`
/// with the same token, and `issuer` saw one refresh; then 20 more polls each, still one.
pub async fn two_processes_refresh_once(
    a: &mut ServerProcess,
    b: &mut ServerProcess,
    issuer: &FakeIssuer,
) {
    let (ida, idb) = (
        a.send_request("getAuthStatus", Some(refresh_poll())).await,
        b.send_request("getAuthStatus", Some(refresh_poll())).await,
    );
    let (ra, rb) = tokio::join!(a.response(ida), b.response(idb));
    assert_eq!(ra["result"]["state"], "active", "{ra}");
    assert_eq!(rb["result"]["state"], "active", "{rb}");
    assert_eq!(ra["result"]["authToken"], rb["result"]["authToken"]);
    assert_eq!(
        issuer.refresh_hits(),
        1,
        "the second process adopted the first one's tokens"
    );
    // Both keep polling; neither is poisoned, and still one refresh in all.
    for _ in 0..20 {
        assert_eq!(a.status(refresh_poll()).await["state"], "active");
        assert_eq!(b.status(refresh_poll()).await["state"], "active");
    }
    assert_eq!(issuer.refresh_hits(), 1);
}

/// A home configured for `issuer`, holding `tokens` that expire at `expires_at`, with a
/// member of another tool at the top and in `tokens` (`x_other_tool`, `x_token_note`).
pub fn seed_oauth_home(home: &Path, issuer: &FakeIssuer, tokens: &IssuedTokens, expires_at: i64) {
    std::fs::create_dir_all(home).unwrap();
    issuer.write_config(home);
    let file = json!({
        "version": 1, "auth_mode": "oauth", "issuer": issuer.url(), "client_id": issuer::CLIENT_ID,
        "tokens": {"access_token": tokens.access_token, "refresh_token": tokens.refresh_token,
                   "id_token": tokens.id_token, "expires_at": expires_at, "x_token_note": "kept"},
        "x_other_tool": {"keep": true},
    });
    std::fs::write(home.join("auth.json"), file.to_string()).unwrap();
}

/// A new home signed in at `issuer` with a grant it just issued (as [`seed_oauth_home`]), the
/// access token expiring `expires_in` seconds from now (negative: expired that long ago).
/// Returns the home and the tokens in it.
pub fn seeded_home(issuer: &FakeIssuer, expires_in: i64) -> (tempfile::TempDir, IssuedTokens) {
    let home = tempfile::tempdir().unwrap();
    let tokens = issuer.issue_grant(3600);
    seed_oauth_home(home.path(), issuer, &tokens, now() + expires_in);
    (home, tokens)
}

/// A browser's GET of a loopback `http://` address: (status, whole response). `None` when
/// nothing listens there any more.
pub async fn browser_get(url: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("loopback http URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = tokio::net::TcpStream::connect(authority).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, response))
}

/// A browser completing a sign-in: GETs the authorization URL (the fake issuer's
/// `GET /authorize`, which approves at once), follows its redirect to the loopback callback,
/// and returns that page's (status, whole response). Panics when the issuer refuses.
pub async fn browser_sign_in(auth_url: &str) -> (u16, String) {
    let (status, response) = browser_get(auth_url).await.expect("the issuer answers");
    assert_eq!(
        status, 302,
        "the authorization request was refused: {response}"
    );
    let location = response
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("location")
                .then(|| value.trim().to_owned())
        })
        .expect("a Location header");
    browser_get(&location)
        .await
        .expect("the sign-in listener is up")
}

/// A server on `home` configured by `--protected-resource <issuer>/mcp` alone (the
/// zero-configuration MCP flow), initialized.
pub async fn start_for_protected_resource(issuer: &FakeIssuer, home: &Path) -> ServerProcess {
    let resource = format!("{}/mcp", issuer.url());
    let mut server =
        ServerProcess::start_with(home, &["--protected-resource", &resource], &[]).await;
    server.initialize().await;
    server
}

/// Starts a browser sign-in on `server` and completes it as the user would (the fake issuer
/// approves at once); asserts `loginCompleted` with success and returns the authUrl.
pub async fn complete_browser_sign_in(server: &mut ServerProcess) -> String {
    let started = server
        .call("login", serde_json::json!({"type": "oauth"}))
        .await;
    let auth_url = started["authUrl"].as_str().unwrap().to_owned();
    let (status, page) = browser_sign_in(&auth_url).await;
    assert_eq!(status, 200, "{page}");
    let completed = server.notification("loginCompleted").await;
    assert_eq!(completed["success"], true, "{completed}");
    auth_url
}

/// Makes a FIFO at `path` (nobody writes to it, so a blocking open would hang).
pub fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo {}", path.display());
}

/// The query parameter `name` of `url`, decoded.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
