//! Zero-configuration sign-in (docs/configuration.md, zero-configuration sign-in): with a
//! protected resource (or an issuer) and no `client_id`, a browser sign-in obtains one itself:
//! the Client ID Metadata Document URL when the authorization server accepts those, else a
//! dynamic client registration (RFC 7591) stored in `registrations.json` and reused by every
//! process and restart, replaced once when the provider answers `invalid_client`.

use std::path::Path;

use auth_app_server_tests::{
    FakeIssuer, RegistrationMode, ServerProcess, browser_get, browser_sign_in,
    complete_browser_sign_in, query_param, read_auth, start_for_protected_resource,
};
use serde_json::{Value, json};

fn registrations_file(home: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(home.join("registrations.json")).unwrap()).unwrap()
}

/// What the protected resource says to this token: its HTTP status.
async fn resource_status(issuer: &FakeIssuer, token: &str) -> u16 {
    auth_app_server_tests::install_tls_provider();
    reqwest::Client::new()
        .get(format!("{}/mcp", issuer.url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_protected_resource_alone_signs_in_and_every_process_reuses_the_registration() {
    let issuer = FakeIssuer::start().await;
    issuer.set_registration_mode(RegistrationMode::Ok);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let mut first = start_for_protected_resource(&issuer, home).await;

    let auth_url = complete_browser_sign_in(&mut first).await;
    assert_eq!(issuer.registrations(), 1);
    // The port-less loopback redirect (RFC 8252 §7.3: any port), and the same with the port
    // this sign-in listens on, for servers that match redirect URIs exactly.
    let redirect = query_param(&auth_url, "redirect_uri").unwrap();
    assert!(
        redirect.starts_with("http://127.0.0.1:") && redirect.ends_with("/callback"),
        "{redirect}"
    );
    let registered_uris = json!(["http://127.0.0.1/callback", redirect]);
    assert_eq!(
        issuer.registration_requests(),
        [json!({
            "client_name": "e2e",
            "redirect_uris": registered_uris,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
        })]
    );
    let client_id = query_param(&auth_url, "client_id").unwrap();
    assert!(client_id.starts_with("dyn-client-"), "{auth_url}");

    let stored = read_auth(home);
    assert_eq!(stored["issuer"], issuer.url());
    assert_eq!(stored["client_id"], client_id);
    let registrations = registrations_file(home);
    let entry = &registrations["registrations"][issuer.url()];
    assert_eq!(registrations["version"], 1);
    assert_eq!(entry["client_id"], client_id);
    assert_eq!(entry["client_name"], "e2e");
    assert_eq!(entry["redirect_uris"], registered_uris);
    assert_eq!(
        entry["registration_endpoint"],
        format!("{}/register", issuer.url())
    );
    let text = std::fs::read_to_string(home.join("registrations.json")).unwrap();
    assert!(
        !text.contains("dcr-secret"),
        "the client_secret is dropped: {text}"
    );
    assert!(!first.stderr().contains("dcr-secret"), "{}", first.stderr());

    let status = first.status(json!({"includeToken": true})).await;
    assert_eq!(status["state"], "active");
    let token = status["authToken"].as_str().unwrap();
    assert_eq!(resource_status(&issuer, token).await, 200);
    assert_eq!(resource_status(&issuer, "at-forged").await, 401);

    // A second process on the same home signs in with the same client.
    let mut second = start_for_protected_resource(&issuer, home).await;
    let again = complete_browser_sign_in(&mut second).await;
    assert_eq!(query_param(&again, "client_id").unwrap(), client_id);
    assert_eq!(
        query_param(&again, "redirect_uri").unwrap(),
        redirect,
        "the registered port, free again"
    );
    drop(second);

    // So does a restarted server.
    let (exit, _) = first.finish().await;
    assert!(exit.success());
    let mut restarted = start_for_protected_resource(&issuer, home).await;
    let again = complete_browser_sign_in(&mut restarted).await;
    assert_eq!(query_param(&again, "client_id").unwrap(), client_id);
    assert_eq!(query_param(&again, "redirect_uri").unwrap(), redirect);

    // With the registered port busy, the sign-in listens on another one: servers that follow
    // RFC 8252 accept it through the port-less registration.
    let port: u16 = redirect
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches("/callback")
        .parse()
        .unwrap();
    let busy = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let again = complete_browser_sign_in(&mut restarted).await;
    assert_eq!(query_param(&again, "client_id").unwrap(), client_id);
    assert_ne!(query_param(&again, "redirect_uri").unwrap(), redirect);
    drop(busy);
    assert_eq!(issuer.registrations(), 1);
    let stats: Value = reqwest::get(format!("{}/stats", issuer.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["registrations"], 1, "{stats}");
    assert_eq!(issuer.hits("/register"), 1);
}

#[tokio::test]
async fn two_processes_signing_in_at_once_register_one_client() {
    let issuer = FakeIssuer::start().await;
    issuer.set_registration_mode(RegistrationMode::Ok);
    let dir = tempfile::tempdir().unwrap();
    let mut a = start_for_protected_resource(&issuer, dir.path()).await;
    let mut b = start_for_protected_resource(&issuer, dir.path()).await;
    let id_a = a
        .send_request("login", Some(json!({"type": "oauth"})))
        .await;
    let id_b = b
        .send_request("login", Some(json!({"type": "oauth"})))
        .await;
    let (answer_a, answer_b) = tokio::join!(a.response(id_a), b.response(id_b));
    let url_a = answer_a["result"]["authUrl"].as_str().expect("a started");
    let url_b = answer_b["result"]["authUrl"].as_str().expect("b started");
    assert_eq!(issuer.registrations(), 1);
    assert_eq!(issuer.hits("/register"), 1);
    assert_eq!(
        query_param(url_a, "client_id"),
        query_param(url_b, "client_id")
    );
    let (status, page) = browser_sign_in(url_b).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(b.notification("loginCompleted").await["success"], true);
}

#[tokio::test]
async fn invalid_client_replaces_the_registration_once_then_asks_for_a_sign_in() {
    let issuer = FakeIssuer::start().await;
    issuer.set_registration_mode(RegistrationMode::Ok);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let mut server = start_for_protected_resource(&issuer, home).await;
    let auth_url = complete_browser_sign_in(&mut server).await;
    let old_client = query_param(&auth_url, "client_id").unwrap();
    let token = server.status(json!({"includeToken": true})).await["authToken"].clone();

    // The provider deletes the registration: the next refresh is answered invalid_client.
    issuer.forget_registered_clients();
    let answer = server
        .call(
            "reportAuthFailure",
            json!({"status": 401, "rejectedToken": token}),
        )
        .await;
    assert_eq!(answer["action"], "needsLogin", "{answer}");
    let hint = answer["hint"].as_str().unwrap();
    assert!(
        hint.contains("invalid_client")
            && hint.contains("the client registration was replaced by a new one")
            && hint.ends_with("sign in again"),
        "{hint}"
    );
    assert_eq!(answer["state"], "needsLogin");
    assert!(answer.get("authToken").is_none(), "{answer}");
    assert_eq!(answer["refreshError"]["code"], "invalid_client");
    assert_eq!(answer["refreshError"]["kind"], "permanent");
    assert_eq!(server.announced("needsLogin").await["state"], "needsLogin");
    assert_eq!(issuer.refresh_hits(), 1);
    assert_eq!(issuer.registrations(), 2, "exactly one re-registration");
    let new_client = registrations_file(home)["registrations"][issuer.url()]["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_client, old_client);
    assert_eq!(
        read_auth(home)["client_id"],
        old_client,
        "the tokens stay as issued"
    );

    // Poisoned: neither polls nor reports hit the provider or register again.
    let answer = server
        .call("reportAuthFailure", json!({"status": 401}))
        .await;
    assert_eq!(answer["action"], "needsLogin", "{answer}");
    let status = server
        .status(json!({"includeToken": true, "refreshToken": true}))
        .await;
    assert_eq!(status["state"], "needsLogin", "{status}");
    assert_eq!(issuer.refresh_hits(), 1);
    assert_eq!(issuer.registrations(), 2);

    // The next sign-in uses the new registration.
    let auth_url = complete_browser_sign_in(&mut server).await;
    assert_eq!(query_param(&auth_url, "client_id").unwrap(), new_client);
    assert_eq!(read_auth(home)["client_id"], new_client);
    let status = server.status(json!({"includeToken": true})).await;
    assert_eq!(status["state"], "active", "{status}");
    assert_eq!(issuer.registrations(), 2);
}

#[tokio::test]
async fn a_client_metadata_document_is_preferred_over_registration() {
    let issuer = FakeIssuer::start().await;
    issuer.set_registration_mode(RegistrationMode::Ok);
    issuer.accept_client_metadata_documents();
    let document_url = issuer.client_document_url();
    let document = json!({
        "client_id": document_url,
        "client_name": "Editor",
        "redirect_uris": ["http://127.0.0.1/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
    });
    // First a document that names another client_id: the authorization server refuses it.
    let mut impostor = document.clone();
    impostor["client_id"] = json!("https://evil.example/client.json");
    issuer.serve_client_document(impostor);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    std::fs::write(
        home.join("config.toml"),
        format!(
            "[provider]\nprotected_resource = \"{}/mcp\"\nclient_metadata_url = \"{document_url}\"\n",
            issuer.url()
        ),
    )
    .unwrap();
    let mut server = ServerProcess::start_initialized(home).await;
    let started = server.call("login", json!({"type": "oauth"})).await;
    let auth_url = started["authUrl"].as_str().unwrap();
    assert_eq!(query_param(auth_url, "client_id").unwrap(), document_url);
    let (status, _) = browser_get(auth_url).await.unwrap();
    assert_eq!(status, 400, "a document about another client is refused");
    assert_eq!(issuer.client_document_fetches(), 1);

    issuer.serve_client_document(document);
    let (status, page) = browser_sign_in(auth_url).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(server.notification("loginCompleted").await["success"], true);
    assert_eq!(issuer.registrations(), 0);
    assert_eq!(issuer.hits("/register"), 0);
    assert_eq!(issuer.client_document_fetches(), 2);
    assert_eq!(read_auth(home)["client_id"], document_url);
    assert!(!home.join("registrations.json").exists());

    // Refreshes go out with the same client_id.
    let token = server.status(json!({"includeToken": true})).await["authToken"].clone();
    let answer = server
        .call(
            "reportAuthFailure",
            json!({"status": 401, "rejectedToken": token}),
        )
        .await;
    assert_eq!(answer["action"], "refreshed", "{answer}");
    let refresh = issuer.token_requests().pop().unwrap();
    assert_eq!(refresh.form["client_id"], document_url);
}

#[tokio::test]
async fn a_failed_registration_names_the_step_and_stores_nothing() {
    let cases = [
        (
            RegistrationMode::Garbage,
            "its HTTP 201 answer is not a client registration",
        ),
        (
            RegistrationMode::Reject,
            "it answered HTTP 400 with error `invalid_client_metadata`",
        ),
        (RegistrationMode::Hang, "the request timed out"),
    ];
    for (mode, why) in cases {
        let issuer = FakeIssuer::start().await;
        issuer.set_registration_mode(mode);
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        let mut server = ServerProcess::start_with(
            home,
            &["--issuer", &issuer.url()],
            &[("AUTH_APP_SERVER_HTTP_TIMEOUT_MS", "500")],
        )
        .await;
        server.initialize().await;
        let error = server.call_error("login", json!({"type": "oauth"})).await;
        assert_eq!(error["code"], -32012, "{mode:?}: {error}");
        let message = error["message"].as_str().unwrap();
        let step = format!(
            "dynamic client registration at {}/register failed: {why}",
            issuer.url()
        );
        assert!(message.contains(&step), "{mode:?}: {message}");
        assert!(message.contains("Nothing was stored"), "{message}");
        assert!(
            message.contains("configured client_id: none is set")
                && message.contains("client ID metadata document: "),
            "the three ways: {message}"
        );
        assert_eq!(issuer.hits("/register"), 1, "{mode:?}");
        assert!(!home.join("registrations.json").exists(), "{mode:?}");
        assert!(!home.join("auth.json").exists(), "{mode:?}");
        let status = server.status(json!({})).await;
        assert_eq!(status["state"], "signedOut");

        // Nothing half-stored blocks the next try.
        if mode == RegistrationMode::Reject {
            issuer.set_registration_mode(RegistrationMode::Ok);
            complete_browser_sign_in(&mut server).await;
            assert_eq!(issuer.registrations(), 1);
        }
    }
}

#[tokio::test]
async fn with_no_way_to_obtain_a_client_id_the_error_names_all_three() {
    let issuer = FakeIssuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_for_protected_resource(&issuer, dir.path()).await;
    let error = server.call_error("login", json!({"type": "oauth"})).await;
    assert_eq!(error["code"], -32012, "{error}");
    let message = error["message"].as_str().unwrap();
    for part in [
        &format!("no client_id to sign in to {} with", issuer.url()),
        "configured client_id: none is set",
        "client ID metadata document: no `client_metadata_url` is set, and the authorization server's metadata does not offer them",
        "dynamic client registration: the authorization server's metadata has no registration_endpoint",
        "set `client_id` in the [provider] section of config.toml",
    ] {
        assert!(message.contains(part), "{part:?} in {message}");
    }

    // The device flow needs a client registered for it.
    issuer.set_registration_mode(RegistrationMode::Ok);
    let error = server
        .call_error("login", json!({"type": "deviceCode"}))
        .await;
    assert_eq!(error["code"], -32012, "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("the device-code sign-in needs a configured client_id"),
        "{error}"
    );
    assert_eq!(issuer.hits("/device/code"), 0);
    assert_eq!(issuer.registrations(), 0);
    assert!(!dir.path().join("auth.json").exists());
}

#[tokio::test]
async fn with_a_pinned_redirect_port_the_registration_names_that_port() {
    let issuer = FakeIssuer::start().await;
    issuer.set_registration_mode(RegistrationMode::Ok);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    std::fs::write(
        home.join("config.toml"),
        format!(
            "[provider]\nissuer = \"{}\"\nredirect_port = {port}\n",
            issuer.url()
        ),
    )
    .unwrap();
    let mut server = ServerProcess::start_initialized(home).await;
    let auth_url = complete_browser_sign_in(&mut server).await;
    let exact = format!("http://127.0.0.1:{port}/callback");
    assert_eq!(query_param(&auth_url, "redirect_uri").unwrap(), exact);
    assert_eq!(
        issuer.registration_requests()[0]["redirect_uris"],
        json!([exact])
    );
    assert_eq!(
        registrations_file(home)["registrations"][issuer.url()]["redirect_uris"],
        json!([exact])
    );
    assert_eq!(issuer.registrations(), 1);
}
