//! Network settings of provider requests (docs/configuration.md, "Proxies and certificates"),
//! end to end: a fake issuer serving https with a certificate from a private CA made at test
//! time, trusted through `[provider] ca_file` or `SSL_CERT_FILE` (and named in the error when
//! it is not), and a real forward proxy that provider requests go through (`HTTPS_PROXY` and
//! friends) while loopback requests never do. Every connection goes to 127.0.0.1: the proxy
//! maps the issuer's non-loopback name there.

use std::path::Path;
use std::time::{Duration, Instant};

use auth_app_server_tests::issuer::CLIENT_ID;
use auth_app_server_tests::{
    ConnectProxy, FakeIssuer, IssuerOptions, ServerProcess, TestCa, memory_kib, mkfifo, now,
};
use serde_json::{Value, json};

/// The name the TLS issuer goes by in the proxy tests; never resolved (the proxy maps it).
const ISSUER_HOST: &str = "issuer.test";

async fn tls_issuer(ca: &TestCa, host: Option<&str>) -> FakeIssuer {
    FakeIssuer::start_with(IssuerOptions {
        tls: Some(ca.server_config()),
        host: host.map(str::to_owned),
        ..IssuerOptions::default()
    })
    .await
}

fn configure(home: &Path, issuer: &FakeIssuer, ca_file: Option<&Path>) {
    let mut config = format!(
        "[provider]\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\n",
        issuer.url()
    );
    if let Some(ca_file) = ca_file {
        config.push_str(&format!("ca_file = \"{}\"\n", ca_file.display()));
    }
    std::fs::write(home.join("config.toml"), config).unwrap();
}

/// A device login, approved at once; returns `loginCompleted`'s params.
async fn device_login(server: &mut ServerProcess, issuer: &FakeIssuer) -> Value {
    let started = server.call("login", json!({"type": "deviceCode"})).await;
    issuer.decide_device(started["userCode"].as_str().unwrap(), true);
    server.notification("loginCompleted").await
}

#[tokio::test]
async fn a_private_ca_is_refused_naming_the_fix_until_ca_file_trusts_it() {
    let ca = TestCa::generate(&[ISSUER_HOST]);
    let issuer = tls_issuer(&ca, None).await;
    assert!(issuer.url().starts_with("https://127.0.0.1:"));
    let home = tempfile::tempdir().unwrap();

    configure(home.path(), &issuer, None);
    let mut server = ServerProcess::start_initialized(home.path()).await;
    let error = server
        .call_error("login", json!({"type": "deviceCode"}))
        .await;
    assert_eq!(error["code"], -32012, "{error}");
    let message = error["message"].as_str().unwrap();
    for needed in ["unknown issuer", "ca_file", "[provider]", "SSL_CERT_FILE"] {
        assert!(message.contains(needed), "names {needed}: {message}");
    }
    assert_eq!(
        message.matches("TLS failed").count(),
        1,
        "said once, not once per metadata document: {message}"
    );
    drop(server);

    // The same CA, given as `ca_file` relative to the home.
    std::fs::copy(ca.ca_file(), home.path().join("corp-ca.pem")).unwrap();
    configure(home.path(), &issuer, Some(Path::new("corp-ca.pem")));
    let mut server = ServerProcess::start_initialized(home.path()).await;
    let completed = device_login(&mut server, &issuer).await;
    assert_eq!(completed["success"], true, "{completed}");
    assert_eq!(issuer.hits("/device/code"), 1);
}

#[tokio::test]
async fn ssl_cert_file_adds_the_ca_for_every_request() {
    let ca = TestCa::generate(&[ISSUER_HOST]);
    let issuer = tls_issuer(&ca, None).await;
    let home = tempfile::tempdir().unwrap();
    configure(home.path(), &issuer, None);
    let ca_file = ca.ca_file();
    let envs = [("SSL_CERT_FILE", ca_file.to_str().unwrap())];
    let mut server = ServerProcess::start_with(home.path(), &[], &envs).await;
    server.initialize().await;
    let completed = device_login(&mut server, &issuer).await;
    assert_eq!(completed["success"], true, "{completed}");

    // The token endpoint too: a stale token is refreshed over TLS.
    let mut file: Value =
        serde_json::from_slice(&std::fs::read(home.path().join("auth.json")).unwrap()).unwrap();
    file["tokens"]["expires_at"] = json!(now() - 10);
    std::fs::write(home.path().join("auth.json"), file.to_string()).unwrap();
    let status = server
        .status(json!({"includeToken": true, "refreshToken": true}))
        .await;
    assert_eq!(status["state"], "active", "{status}");
    assert_eq!(issuer.refresh_hits(), 1);
}

/// The trust anchors are read off the runtime's thread: while loading them takes 2 s (a slow
/// device under `SSL_CERT_FILE`, simulated by the test-only
/// `AUTH_APP_SERVER_TEST_TRUST_ANCHORS_DELAY_MS`, a sleep before they are read), polls are
/// answered at once; the sign-in that needed the client then goes on over TLS with them.
#[tokio::test]
async fn polls_are_answered_while_the_trust_anchors_load() {
    const LOAD: Duration = Duration::from_millis(2000);
    const POLL_BOUND: Duration = Duration::from_millis(200);
    let ca = TestCa::generate(&[ISSUER_HOST]);
    let issuer = tls_issuer(&ca, None).await;
    let home = tempfile::tempdir().unwrap();
    configure(home.path(), &issuer, None);
    let ca_file = ca.ca_file();
    let load_ms = LOAD.as_millis().to_string();
    let envs = [
        ("SSL_CERT_FILE", ca_file.to_str().unwrap()),
        (
            "AUTH_APP_SERVER_TEST_TRUST_ANCHORS_DELAY_MS",
            load_ms.as_str(),
        ),
    ];
    let mut server = ServerProcess::start_with(home.path(), &[], &envs).await;
    server.initialize().await;

    let login = server
        .send_request("login", Some(json!({"type": "oauth"})))
        .await;
    // The hook logs as the load starts, just before sleeping.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server
        .stderr()
        .contains("loading the trust anchors is slowed down")
    {
        assert!(Instant::now() < deadline, "the load never started");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let loading = Instant::now();
    for n in 0..20 {
        let started = Instant::now();
        let status = server.status(json!({})).await;
        let took = started.elapsed();
        assert!(
            took < POLL_BOUND,
            "poll {n} waited {took:?} for the trust anchors (bound {POLL_BOUND:?})"
        );
        assert_eq!(status["state"], "signedOut", "poll {n}: {status}");
    }
    assert!(
        loading.elapsed() < LOAD,
        "every poll was answered while the load was still under way"
    );

    let response = server.response(login).await;
    let auth_url = response["result"]["authUrl"].as_str().unwrap_or_default();
    assert!(auth_url.starts_with(&issuer.url()), "{response}");
}

#[tokio::test]
async fn a_refresh_that_fails_on_tls_says_why_in_refresh_error() {
    let ca = TestCa::generate(&[ISSUER_HOST]);
    let issuer = tls_issuer(&ca, None).await;
    let home = tempfile::tempdir().unwrap();
    configure(home.path(), &issuer, None);
    // Tokens of this issuer (as if obtained while its CA was trusted), now stale, with the
    // token endpoint configured so that no discovery stands in the way.
    let tokens = issuer.issue_grant(3600);
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[provider]\nissuer = \"{0}\"\nclient_id = \"{CLIENT_ID}\"\ntoken_endpoint = \"{0}/token\"\n",
            issuer.url()
        ),
    )
    .unwrap();
    let file = json!({"version": 1, "auth_mode": "oauth", "issuer": issuer.url(), "client_id": CLIENT_ID,
        "tokens": {"access_token": tokens.access_token, "refresh_token": tokens.refresh_token, "expires_at": now() - 10}});
    std::fs::write(home.path().join("auth.json"), file.to_string()).unwrap();
    let mut server = ServerProcess::start_initialized(home.path()).await;
    let status = server.status(json!({"refreshToken": true})).await;
    assert_eq!(status["refreshError"]["kind"], "transient", "{status}");
    let message = status["refreshError"]["message"].as_str().unwrap();
    assert!(
        message.contains("unknown issuer") && message.contains("ca_file"),
        "{message}"
    );
    assert_eq!(
        issuer.refresh_hits(),
        0,
        "the handshake failed before any request"
    );
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused_naming_the_problem() {
    // The certificate names issuer.test and 127.0.0.1, not localhost.
    let ca = TestCa::generate(&[ISSUER_HOST]);
    let issuer = tls_issuer(&ca, Some("localhost")).await;
    let home = tempfile::tempdir().unwrap();
    configure(home.path(), &issuer, Some(&ca.ca_file()));
    let mut server = ServerProcess::start_initialized(home.path()).await;
    let error = server
        .call_error("login", json!({"type": "deviceCode"}))
        .await;
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("not valid for the host name"), "{message}");
}

#[tokio::test]
async fn provider_requests_go_through_the_proxy_from_the_environment() {
    let ca = TestCa::generate(&[ISSUER_HOST]);
    let issuer = tls_issuer(&ca, Some(ISSUER_HOST)).await;
    let target = format!("{ISSUER_HOST}:{}", issuer.port());
    for variable in ["HTTPS_PROXY", "https_proxy", "ALL_PROXY"] {
        let proxy = ConnectProxy::start(issuer.port()).await;
        let home = tempfile::tempdir().unwrap();
        configure(home.path(), &issuer, Some(&ca.ca_file()));
        let url = proxy.url();
        // NO_PROXY names other hosts only; the loopback redirect listener is never proxied.
        let envs = [(variable, url.as_str()), ("NO_PROXY", "internal.example")];
        let mut server = ServerProcess::start_with(home.path(), &[], &envs).await;
        server.initialize().await;
        let completed = device_login(&mut server, &issuer).await;
        assert_eq!(completed["success"], true, "{variable}: {completed}");
        let requests = proxy.requests();
        assert!(
            !requests.is_empty(),
            "{variable}: nothing went through the proxy"
        );
        for request in &requests {
            assert_eq!(
                request,
                &format!("CONNECT {target} HTTP/1.1"),
                "{variable}: {requests:?}"
            );
        }
        let started = server.call("login", json!({"type": "oauth"})).await;
        assert!(
            started["authUrl"]
                .as_str()
                .unwrap()
                .starts_with(&format!("https://{target}/authorize?")),
            "{started}"
        );
    }
}

#[tokio::test]
async fn loopback_is_never_proxied() {
    let proxy = ConnectProxy::start(1).await;
    for host in [None, Some("localhost")] {
        let issuer = FakeIssuer::start_with(IssuerOptions {
            host: host.map(str::to_owned),
            ..IssuerOptions::default()
        })
        .await;
        let home = tempfile::tempdir().unwrap();
        configure(home.path(), &issuer, None);
        let url = proxy.url();
        let envs = [
            ("HTTPS_PROXY", url.as_str()),
            ("HTTP_PROXY", url.as_str()),
            ("http_proxy", url.as_str()),
            ("ALL_PROXY", url.as_str()),
        ];
        let mut server = ServerProcess::start_with(home.path(), &[], &envs).await;
        server.initialize().await;
        let completed = device_login(&mut server, &issuer).await;
        assert_eq!(completed["success"], true, "{host:?}: {completed}");
        assert_eq!(
            server.call("logout", json!({})).await,
            json!({"revoked": true})
        );
    }
    assert_eq!(proxy.requests(), Vec::<String>::new());
}

/// `SSL_CERT_FILE` at a FIFO nobody writes to: it was read on the runtime's only thread at the
/// first provider request, which then waited for ever (nothing more answered, EOF ignored).
#[tokio::test]
async fn an_ssl_cert_file_that_is_a_fifo_is_refused_never_waited_on() {
    let issuer = FakeIssuer::start().await;
    let home = tempfile::tempdir().unwrap();
    configure(home.path(), &issuer, None);
    let fifo = home.path().join("certs.pipe");
    mkfifo(&fifo);
    let envs = [("SSL_CERT_FILE", fifo.to_str().unwrap())];
    let mut server = ServerProcess::start_with(home.path(), &[], &envs).await;
    server.initialize().await;
    let started = server.call("login", json!({"type": "oauth"})).await;
    assert!(
        started["authUrl"]
            .as_str()
            .unwrap()
            .starts_with(&issuer.url())
    );
    assert_eq!(server.status(json!({})).await["state"], "signedOut");
    let log = server.stderr();
    assert!(
        log.contains("extra certificate authorities not loaded")
            && log.contains(&format!(
                "cannot read {}: it is a FIFO (named pipe), not a regular file; point it at a PEM file",
                fifo.display()
            )),
        "{log}"
    );
    let (status, _) = server.finish().await;
    assert!(status.success(), "EOF stops the server: {status}");
}

/// `config.toml`, or the `ca_file` it names, as a FIFO: both were read with a blocking read
/// before the server answered anything. Now each is a configuration error naming the file,
/// the server answers at once, and API keys still work.
#[tokio::test]
async fn a_config_toml_or_ca_file_that_is_a_fifo_is_a_configuration_error_not_a_hang() {
    let issuer = FakeIssuer::start().await;

    let home = tempfile::tempdir().unwrap();
    mkfifo(&home.path().join("ca.pipe"));
    configure(home.path(), &issuer, Some(Path::new("ca.pipe")));
    let mut server = ServerProcess::start_initialized(home.path()).await;
    let error = server.call_error("login", json!({"type": "oauth"})).await;
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("ca_file")
            && message.contains("ca.pipe: it is a FIFO (named pipe), not a regular file"),
        "{error}"
    );
    server
        .call(
            "login",
            json!({"type": "apiKey", "apiKey": "sk-still-works"}),
        )
        .await;
    let (status, _) = server.finish().await;
    assert!(status.success());

    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config.toml");
    mkfifo(&config);
    let mut server = ServerProcess::start_initialized(home.path()).await;
    let error = server.call_error("login", json!({"type": "oauth"})).await;
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "cannot read {}: it is a FIFO (named pipe), not a regular file; make it a regular TOML file",
            config.display()
        )),
        "{error}"
    );
    let log = server.stderr();
    assert!(log.contains("config.toml"), "{log}");
    let (status, _) = server.finish().await;
    assert!(status.success());
}

/// A `ca_file` far larger than any bundle of certificates (before, `/dev/zero` took the server
/// past 900 MB): refused by its size, without reading it. (A device such as `/dev/zero` is
/// refused as not a regular file; the store's unit tests read it.)
#[tokio::test]
async fn a_huge_ca_file_is_refused_by_its_size_without_being_read() {
    let issuer = FakeIssuer::start().await;
    let home = tempfile::tempdir().unwrap();
    let huge = home.path().join("huge.pem");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(128 * 1024 * 1024)
        .unwrap();
    configure(home.path(), &issuer, Some(&huge));
    let mut server = ServerProcess::start_initialized(home.path()).await;
    let error = server.call_error("login", json!({"type": "oauth"})).await;
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("ca_file")
            && message.contains("it holds 134217728 bytes, more than the 4194304"),
        "{error}"
    );
    let peak = memory_kib(server.pid(), "VmHWM");
    assert!(peak < 64 * 1024, "peak {peak} KiB");
}
