//! Interop with a real MCP server we did not write: the example server of the MCP TypeScript
//! SDK (`@modelcontextprotocol/sdk`, npm), `simpleStreamableHttp.js --oauth`, with the SDK's
//! own authorization server beside it (dynamic client registration, PKCE, token
//! introspection). Nothing is configured but the server's address (`--protected-resource`), as
//! a person adding an MCP server to a host would: its stock 401 leads to the authorization
//! server, which registers a client, and the browser sign-in (scripted with plain HTTP: the
//! demo approves every request at once) ends with a token the MCP server accepts. Two such
//! servers, two credentials of one host process (contract version 3): each token works only at
//! its own server.
//!
//! Needs node and npm; `npm ci` runs in `tests/interop/` the first time.

use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use auth_app_server_tests::interop::{interop_dir, npm_ci};
use auth_app_server_tests::{ServerProcess, browser_get, query_param};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

const EXAMPLE: &str =
    "node_modules/@modelcontextprotocol/sdk/dist/esm/examples/server/simpleStreamableHttp.js";

/// The SDK's example server and its authorization server; killed on drop.
struct McpServer {
    _child: tokio::process::Child,
    /// The MCP endpoint, `http://localhost:<port>/mcp`.
    url: String,
    /// The authorization server, `http://localhost:<port>`.
    authorization_server: String,
}

/// A port nothing listens on now (the example takes its ports from the environment).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl McpServer {
    async fn start() -> Self {
        npm_ci();
        let (mcp_port, auth_port) = (free_port(), free_port());
        let mut child = tokio::process::Command::new("node")
            .args([EXAMPLE, "--oauth"])
            .current_dir(interop_dir())
            .env("MCP_PORT", mcp_port.to_string())
            .env("MCP_AUTH_PORT", auth_port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start node");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut listening = 0;
        while listening < 2 {
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .expect("the example server starts within 30 s")
                .unwrap()
                .expect("the example server prints that it listens");
            if line.contains("listening on port") {
                listening += 1;
            }
        }
        // Keep reading: the example logs every request, and dies of EPIPE if nobody reads.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            _child: child,
            url: format!("http://localhost:{mcp_port}/mcp"),
            authorization_server: format!("http://localhost:{auth_port}"),
        }
    }

    /// An MCP `initialize` over Streamable HTTP with `token`: (status, body).
    async fn initialize(&self, token: Option<&str>) -> (u16, String) {
        let request = json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "interop", "version": "0"}},
        });
        auth_app_server_tests::install_tls_provider();
        let mut post = reqwest::Client::new()
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .json(&request);
        if let Some(token) = token {
            post = post.bearer_auth(token);
        }
        let response = post.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }
}

/// A person's browser at the authorization URL: the demo approves at once and redirects to the
/// loopback callback, which the browser then opens. Returns the callback page's status.
async fn sign_in_in_browser(auth_url: &str) -> u16 {
    auth_app_server_tests::install_tls_provider();
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(auth_url)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302, "{auth_url}");
    let callback = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        callback.starts_with("http://127.0.0.1:") && query_param(&callback, "code").is_some(),
        "the authorization server approved: {callback}"
    );
    let (status, page) = browser_get(&callback).await.expect("the listener is up");
    assert!(!page.contains("Unregistered"), "{page}");
    status
}

async fn start_host(home: &std::path::Path, mcp: &McpServer) -> ServerProcess {
    let mut server =
        ServerProcess::start_with(home, &["--protected-resource", &mcp.url], &[]).await;
    server.initialize().await;
    server
}

#[tokio::test]
async fn the_sdk_example_server_s_401_leads_to_a_registered_client_and_a_token_it_accepts() {
    let mcp = McpServer::start().await;
    let (status, _) = mcp.initialize(None).await;
    assert_eq!(status, 401, "the example server wants a token");

    let home = tempfile::tempdir().unwrap();
    let mut server = start_host(home.path(), &mcp).await;
    let started = server.call("login", json!({"type": "oauth"})).await;
    let auth_url = started["authUrl"].as_str().unwrap().to_owned();
    assert!(
        auth_url.starts_with(&format!("{}/authorize?", mcp.authorization_server)),
        "{auth_url}"
    );
    let client_id = query_param(&auth_url, "client_id").expect("a registered client_id");
    // MCP authorization 2026-07-28 against a real authorization server: its metadata lists
    // code_challenge_methods_supported ["S256"], so the MCP flow's refusal does not fire and
    // S256 is sent; its scopes_supported is ["mcp:tools"], without offline_access, so nothing
    // is added to the resource's scopes.
    assert_eq!(
        query_param(&auth_url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        query_param(&auth_url, "scope").as_deref(),
        Some("mcp:tools"),
        "the resource's scopes_supported, and no offline_access the server does not offer"
    );
    assert_eq!(sign_in_in_browser(&auth_url).await, 200);
    server.announced("active").await;
    let status = server.status(json!({"includeToken": true})).await;
    assert_eq!(status["state"], "active", "{status}");
    let token = status["authToken"].as_str().unwrap().to_owned();
    let (code, body) = mcp.initialize(Some(&token)).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("serverInfo"), "{body}");

    // Another host process on the same home shares the token, and a sign-in there, as after a
    // restart, uses the same registration.
    let mut second = start_host(home.path(), &mcp).await;
    let status = second.status(json!({"includeToken": true})).await;
    assert_eq!(status["authToken"].as_str(), Some(token.as_str()));
    second.call("logout", json!({})).await;
    drop(server);
    let started = second.call("login", json!({"type": "oauth"})).await;
    let again = started["authUrl"].as_str().unwrap().to_owned();
    assert_eq!(
        query_param(&again, "client_id").as_deref(),
        Some(client_id.as_str()),
        "the registration is reused"
    );
    assert_eq!(sign_in_in_browser(&again).await, 200);
    second.announced("active").await;
    let status = second.status(json!({"includeToken": true})).await;
    let (code, body) = mcp
        .initialize(Some(status["authToken"].as_str().unwrap()))
        .await;
    assert_eq!(code, 200, "{body}");
}

/// Contract version 3 against two real MCP servers, each with its own authorization server:
/// one host process signs in to both with nothing but each server's address (a `provider`
/// object naming its `protectedResource`), as credentials "one" and "two". Each sign-in
/// registers a client at its own authorization server; each token is accepted by its own MCP
/// server and refused by the other.
#[tokio::test]
async fn two_sdk_example_servers_two_credentials_each_token_only_where_it_belongs() {
    let servers = [McpServer::start().await, McpServer::start().await];
    assert_ne!(
        servers[0].authorization_server, servers[1].authorization_server,
        "two authorization servers"
    );
    let home = tempfile::tempdir().unwrap();
    let mut host = ServerProcess::start_initialized(home.path()).await;

    let mut tokens = Vec::new();
    for (name, mcp) in ["one", "two"].into_iter().zip(&servers) {
        let started = host
            .call(
                "login",
                json!({"type": "oauth", "credential": name,
                       "provider": {"protectedResource": mcp.url}}),
            )
            .await;
        let auth_url = started["authUrl"].as_str().unwrap().to_owned();
        assert!(
            auth_url.starts_with(&format!("{}/authorize?", mcp.authorization_server)),
            "{name}: {auth_url}"
        );
        assert_eq!(
            query_param(&auth_url, "resource").as_deref(),
            Some(mcp.url.as_str())
        );
        assert_eq!(sign_in_in_browser(&auth_url).await, 200);
        let completed = host.notification("loginCompleted").await;
        assert_eq!(completed["credential"], name, "{completed}");
        assert_eq!(completed["success"], true, "{completed}");
        let status = host
            .status(json!({"credential": name, "includeToken": true}))
            .await;
        assert_eq!(status["state"], "active", "{status}");
        tokens.push(status["authToken"].as_str().unwrap().to_owned());

        let stored: serde_json::Value = serde_json::from_slice(
            &std::fs::read(home.path().join(format!("credentials/{name}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(stored["resource"], mcp.url.as_str(), "{name}");
        assert_eq!(
            stored["client_id"].as_str(),
            query_param(&auth_url, "client_id").as_deref()
        );
    }
    assert_ne!(tokens[0], tokens[1]);
    for (i, mcp) in servers.iter().enumerate() {
        let (code, body) = mcp.initialize(Some(&tokens[i])).await;
        assert_eq!(
            code, 200,
            "server {i} accepts its own credential's token: {body}"
        );
        assert!(body.contains("serverInfo"), "{body}");
        // The demo answers a token its authorization server does not know with 500 (its
        // verifier throws a plain Error, which the SDK's bearer middleware maps to
        // server_error), not 401: the other's token is refused exactly as a forged one is.
        let (forged, _) = mcp.initialize(Some("a-token-nobody-issued")).await;
        assert!(forged == 401 || forged == 500, "{forged}");
        let (code, body) = mcp.initialize(Some(&tokens[1 - i])).await;
        assert_eq!(code, forged, "server {i} refuses the other's token: {body}");
        assert!(!body.contains("serverInfo"), "{body}");
    }

    // One registration per authorization server, shared by the home.
    let registrations: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.path().join("registrations.json")).unwrap())
            .unwrap();
    assert_eq!(
        registrations["registrations"].as_object().unwrap().len(),
        2,
        "{registrations}"
    );
    // The default credential was never touched.
    assert!(!home.path().join("auth.json").exists());
    let listed = host.call("listCredentials", json!({})).await;
    let names: Vec<&str> = listed["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["credential"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["one", "two"], "{listed}");
}
