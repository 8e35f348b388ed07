//! Interop with a real OAuth server we did not write: `oidc-provider` (npm, a certified
//! OpenID Connect provider), started on 127.0.0.1 from `tests/interop/`. A device-code login
//! approved through the provider's own pages (scripted with plain HTTP, cookies carried by
//! hand), a refresh with rotation, poisoning after the grant's refresh token was revoked, and a
//! logout that revokes.
//!
//! Needs node and npm; `npm ci` runs here the first time.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use auth_app_server_tests::interop::{interop_dir, npm_ci};
use auth_app_server_tests::{ServerProcess, read_auth};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

const CLIENT_ID: &str = "interop-client";

/// The provider process; killed on drop.
struct Provider {
    _child: tokio::process::Child,
    issuer: String,
    http: reqwest::Client,
}

impl Provider {
    async fn start() -> Self {
        npm_ci();
        let mut child = tokio::process::Command::new("node")
            .arg("oidc-server.mjs")
            .current_dir(interop_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start node");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the provider starts within 30 s")
            .unwrap()
            .expect("the provider prints its issuer");
        let issuer = serde_json::from_str::<Value>(&line).unwrap()["issuer"]
            .as_str()
            .unwrap()
            .to_owned();
        // Keep reading: the provider writes to stdout later, and dies of EPIPE if nobody does.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        auth_app_server_tests::install_tls_provider();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            _child: child,
            issuer,
            http,
        }
    }

    async fn stats(&self) -> Value {
        self.http
            .get(format!("{}/__stats", self.issuer))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Revokes a refresh token directly, as an administrator or another device would.
    async fn revoke(&self, token: &str) {
        let form = [
            ("token", token),
            ("token_type_hint", "refresh_token"),
            ("client_id", CLIENT_ID),
        ];
        let response = self
            .http
            .post(format!("{}/token/revocation", self.issuer))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }
}

/// A person with a browser: follows redirects, carries cookies, fills in the forms.
struct Browser {
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

impl Browser {
    fn new() -> Self {
        auth_app_server_tests::install_tls_provider();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            http,
            cookies: BTreeMap::new(),
        }
    }

    async fn send(
        &mut self,
        request: reqwest::RequestBuilder,
    ) -> (reqwest::StatusCode, Option<String>, String) {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let response = request.header("cookie", cookie).send().await.unwrap();
        for set in response.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        let status = response.status();
        (status, location, response.text().await.unwrap())
    }

    /// Opens `url` and goes through every page as a person would: submits the code
    /// confirmation, signs in as `login`, consents; returns the last page.
    async fn approve(&mut self, url: &str, login: &str) -> String {
        let base = reqwest::Url::parse(url).unwrap();
        let mut request = self.http.get(url);
        for _ in 0..20 {
            let (status, location, page) = self.send(request).await;
            if let Some(location) = location {
                request = self.http.get(base.join(&location).unwrap());
                continue;
            }
            assert!(status.is_success(), "{status}: {page}");
            let Some((action, mut fields)) = first_form(&page) else {
                return page;
            };
            if page.contains("name=\"login\"") {
                fields.push(("login".into(), login.into()));
                fields.push(("password".into(), "any password".into()));
            }
            request = self.http.post(base.join(&action).unwrap()).form(&fields);
        }
        panic!("the approval did not finish within 20 pages");
    }
}

/// The first form of a page: its action and hidden inputs.
fn first_form(page: &str) -> Option<(String, Vec<(String, String)>)> {
    let form = &page[page.find("<form")?..];
    let form = &form[..form.find("</form>")?];
    let action = html_decode(attribute(form, "action")?);
    let mut fields = Vec::new();
    for input in form.split("<input").skip(1) {
        let tag = &input[..input.find('>').unwrap_or(input.len())];
        if attribute(tag, "type") == Some("hidden") {
            fields.push((
                attribute(tag, "name")?.to_owned(),
                html_decode(attribute(tag, "value").unwrap_or("")),
            ));
        }
    }
    Some((action, fields))
}

fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    Some(&tag[start..start + tag[start..].find('"')?])
}

fn html_decode(value: &str) -> String {
    value
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

/// Device-code login, approved in the provider's pages as `person`.
async fn device_login(server: &mut ServerProcess, person: &str) {
    let started = server.call("login", json!({"type": "deviceCode"})).await;
    assert_eq!(started["type"], "deviceCode");
    let complete = started["verificationUriComplete"]
        .as_str()
        .expect("oidc-provider sends verification_uri_complete");
    let last_page = Browser::new().approve(complete, person).await;
    assert!(last_page.contains("Sign-in Success"), "{last_page}");
    let completed = server.notification("loginCompleted").await;
    assert_eq!(
        completed,
        json!({"loginId": started["loginId"], "success": true, "credential": "default"}),
        "{}",
        server.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_login_refresh_rotation_poisoning_and_revoking_logout_against_oidc_provider() {
    let provider = Provider::start().await;
    let home = tempfile::tempdir().unwrap();
    let args = [
        "--issuer",
        &provider.issuer,
        "--client-id",
        CLIENT_ID,
        "--scope",
        "openid",
        "--scope",
        "offline_access",
    ];
    let mut server = ServerProcess::start_with(home.path(), &args, &[]).await;
    server.initialize().await;

    // 1. Sign in with a device code, approved through the provider's pages.
    device_login(&mut server, "alice").await;
    let status = server.status(json!({"includeToken": true})).await;
    assert_eq!(status["state"], "active");
    assert_eq!(status["authMethod"], "oauth");
    assert_eq!(status["account"]["subject"], "alice");
    let stored = read_auth(home.path());
    assert_eq!(
        stored["issuer"].as_str().unwrap().trim_end_matches('/'),
        provider.issuer
    );
    assert_eq!(stored["client_id"], CLIENT_ID);
    let first_refresh = stored["tokens"]["refresh_token"]
        .as_str()
        .expect("offline_access gives a refresh token")
        .to_owned();
    assert!(stored["tokens"]["id_token"].is_string());
    let first_access = status["authToken"].as_str().unwrap().to_owned();

    // 2. The access token lives 120 s: fresh for its first 60 s, so polls do not refresh it
    //    (Keycloak-style short lifetimes must not cause a refresh per poll).
    let before = provider.stats().await["token"].as_u64().unwrap();
    for _ in 0..10 {
        let status = server
            .status(json!({"includeToken": true, "refreshToken": true}))
            .await;
        assert_eq!(status["authToken"].as_str().unwrap(), first_access);
    }
    assert_eq!(provider.stats().await["token"].as_u64().unwrap(), before);
    let stored = read_auth(home.path());
    assert_eq!(
        stored["tokens"]["expires_at"].as_i64().unwrap()
            - stored["tokens"]["issued_at"].as_i64().unwrap(),
        120
    );
    // An API rejects it: a refresh, with rotation.
    let answer = server
        .call(
            "reportAuthFailure",
            json!({"status": 401, "rejectedToken": first_access}),
        )
        .await;
    assert_eq!(
        answer["action"],
        "refreshed",
        "{answer}\n{}",
        server.stderr()
    );
    assert_ne!(answer["authToken"].as_str().unwrap(), first_access);
    let rotated = read_auth(home.path())["tokens"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(
        rotated, first_refresh,
        "the provider rotated the refresh token"
    );
    assert_eq!(
        provider.stats().await["token"].as_u64().unwrap(),
        before + 1
    );

    // 3. The provider revokes the current refresh token, and the access token runs out (the
    //    file is rewritten as if its 120 s had passed): the next refresh is refused for good
    //    and the credentials are poisoned; further polls never reach the provider.
    provider.revoke(&rotated).await;
    let mut expired = read_auth(home.path());
    expired["tokens"]["expires_at"] = json!(auth_app_server_tests::now() - 1);
    std::fs::write(home.path().join("auth.json"), expired.to_string()).unwrap();
    let before = provider.stats().await["token"].as_u64().unwrap();
    let status = server
        .status(json!({"includeToken": true, "refreshToken": true}))
        .await;
    assert_eq!(status["state"], "needsLogin", "{status}");
    assert_eq!(status["authMethod"], "oauth");
    assert!(status.get("authToken").is_none());
    assert_eq!(status["refreshError"]["kind"], "permanent");
    assert_eq!(status["refreshError"]["code"], "invalid_grant");
    assert!(read_auth(home.path())["refresh_failure"]["refresh_token_sha256"].is_string());
    for _ in 0..20 {
        assert_eq!(
            server.status(json!({"refreshToken": true})).await["state"],
            "needsLogin"
        );
    }
    assert_eq!(
        provider.stats().await["token"].as_u64().unwrap(),
        before + 1,
        "one request, then none"
    );

    // 4. Sign in again, then log out: the refresh token is revoked at the provider.
    device_login(&mut server, "alice").await;
    assert_eq!(server.status(json!({})).await["state"], "active");
    let last_refresh = read_auth(home.path())["tokens"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let revocations = provider.stats().await["revocation"].as_u64().unwrap();
    server.call("logout", json!({})).await;
    assert!(!home.path().join("auth.json").exists());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while provider.stats().await["revocation"].as_u64().unwrap() == revocations {
        assert!(
            tokio::time::Instant::now() < deadline,
            "logout never revoked the refresh token"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The revoked token is dead at the provider.
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", last_refresh.as_str()),
        ("client_id", CLIENT_ID),
    ];
    let answer: Value = provider
        .http
        .post(format!("{}/token", provider.issuer))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["error"], "invalid_grant", "{answer}");

    let (status, _) = server.finish().await;
    assert!(status.success());
}
