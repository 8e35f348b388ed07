//! A fake OAuth 2.0 issuer for end-to-end tests: a real HTTP/1.1 server on 127.0.0.1 with
//! discovery (RFC 8414), a token endpoint with rotating refresh tokens and reuse detection
//! (like `oidc-provider`: a rotated-out refresh token revokes the whole grant), the device
//! flow, the authorization code flow with PKCE, revocation, hit counters, and switchable
//! failure modes for the token endpoint. For zero-configuration sign-in it can also register
//! clients (RFC 7591, [`RegistrationMode`]), accept Client ID Metadata Documents (fetching
//! them as an authorization server does), authorize over HTTP (`GET /authorize`, checking the
//! client and its redirect), and act as a protected resource that accepts its own tokens.
//!
//! ```ignore
//! let issuer = FakeIssuer::start().await;
//! let grant = issuer.issue_grant(3600);           // seed auth.json with these tokens
//! issuer.set_mode(TokenMode::InvalidGrant);       // fault injection
//! assert_eq!(issuer.refresh_hits(), 1);
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

pub const CLIENT_ID: &str = "test-client";

/// How `POST /token` answers (refresh grants; the other grants follow their own state).
#[derive(Debug, Clone, PartialEq)]
pub enum TokenMode {
    /// Normal: rotation and reuse detection.
    Ok,
    InvalidGrant,
    InvalidClient,
    InvalidScope,
    /// 403 with an HTML page, as a WAF or CDN answers.
    WafHtml403,
    /// 429, with `Retry-After: n` when given.
    TooManyRequests {
        retry_after: Option<u64>,
    },
    /// 503 with an HTML page.
    ServiceUnavailable,
    /// 400 `{"error":"temporarily_unavailable"}`.
    TemporarilyUnavailable,
    /// 200 with an HTML body.
    Html200,
    /// 400 with an empty body.
    EmptyBody400,
    /// Answers normally after this delay.
    Slow(Duration),
    /// Reads the request, then closes the connection without answering.
    DropConnection,
    /// One mode per request; the last one repeats.
    Sequence(Vec<TokenMode>),
    /// Answers with this status and body (as `application/json`), whatever was asked: for
    /// hostile answers (absurd numbers, huge bodies, an echoed token).
    Answer {
        status: u16,
        body: String,
    },
    /// Holds each refresh (already counted, its refresh token received) until the gate opens,
    /// then answers normally.
    Held(Gate),
}

/// Holds refresh requests ([`TokenMode::Held`]) so that a test can act while the server waits
/// for the provider: [`Gate::held`] waits until a request is held, [`Gate::open`] lets every
/// held and later request through.
#[derive(Debug, Clone)]
pub struct Gate(Arc<tokio::sync::watch::Sender<GateState>>);

#[derive(Debug, Default)]
pub struct GateState {
    held: usize,
    open: bool,
}

impl Gate {
    pub fn new() -> Self {
        Self(Arc::new(tokio::sync::watch::Sender::new(
            GateState::default(),
        )))
    }

    /// Waits until `n` requests have reached the gate.
    pub async fn held(&self, n: usize) {
        let mut state = self.0.subscribe();
        let _ = state.wait_for(|s| s.held >= n).await;
    }

    pub fn open(&self) {
        self.0.send_modify(|s| s.open = true);
    }

    async fn pass(&self) {
        let mut state = self.0.subscribe();
        self.0.send_modify(|s| s.held += 1);
        let _ = state.wait_for(|s| s.open).await;
    }
}

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for Gate {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// How `POST /register` (RFC 7591 dynamic client registration) answers; `Off`: the metadata
/// names no `registration_endpoint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationMode {
    Off,
    /// Validates the request and issues a fresh client_id (and a `client_secret` a public
    /// client must drop).
    Ok,
    /// 201 with an HTML body.
    Garbage,
    /// 400 `{"error":"invalid_client_metadata"}`.
    Reject,
    /// Never answers.
    Hang,
}

/// A client registered at `POST /register`.
#[derive(Debug, Clone)]
struct RegisteredClient {
    redirect_uris: Vec<String>,
}

/// Tokens of one grant, as a test seeds them into `auth.json`.
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: String,
    pub id_token: String,
    pub expires_in: i64,
}

/// One recorded `POST /token`.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub form: HashMap<String, String>,
    pub at: Instant,
}

#[derive(Default)]
struct Grant {
    current_refresh: String,
    current_access: String,
    revoked: bool,
}

struct Device {
    device_code: String,
    user_code: String,
    decision: Option<bool>,
    expired: bool,
    used: bool,
    polls: Vec<Instant>,
}

struct Authorization {
    /// The client it was issued to, when it came through `GET /authorize`.
    client_id: Option<String>,
    code: String,
    challenge: String,
    redirect_uri: String,
    used: bool,
}

struct State {
    mode: TokenMode,
    sequence_at: usize,
    hits: HashMap<String, usize>,
    token_requests: Vec<TokenRequest>,
    grants: Vec<Grant>,
    /// refresh token → (grant, still current)
    refresh_tokens: HashMap<String, (usize, bool)>,
    expires_in: i64,
    rotation: bool,
    devices: Vec<Device>,
    device_interval: Option<u64>,
    /// Members laid over every device authorization response (`null` removes one).
    device_override: Option<serde_json::Map<String, Value>>,
    slow_downs_left: usize,
    authorizations: Vec<Authorization>,
    revoked_tokens: Vec<String>,
    /// The metadata documents served, each with or without `revocation_endpoint`.
    metadata: Vec<(MetadataForm, bool)>,
    /// What the metadata says `issuer` is: `None` the truth, `Some(None)` no member at all.
    stated_issuer: Option<Option<String>>,
    /// The path the issuer is mounted under ("" or e.g. "/o").
    mount: String,
    /// What `/.well-known/oauth-protected-resource/mcp` says its resource is (`None`:
    /// `<issuer>/mcp`, the truth).
    claimed_resource: Option<String>,
    /// `scopes_supported` of `/.well-known/oauth-protected-resource/mcp` (`None`: not stated).
    resource_scopes: Option<Vec<String>>,
    /// The authorization server `/.well-known/oauth-protected-resource/mcp` names (`None`:
    /// this issuer).
    resource_authorization_server: Option<String>,
    /// `scopes_supported` of the authorization server metadata (`None`: not stated).
    metadata_scopes: Option<Vec<String>>,
    /// Members laid over every authorization server metadata document.
    metadata_override: Option<serde_json::Map<String, Value>>,
    /// The `scope=` of the challenge `/mcp` answers with (`None`: no `scope`).
    challenge_scope: Option<String>,
    jwt_access_tokens: bool,
    client_ids: Vec<String>,
    counter: usize,
    /// RFC 9207: the metadata says `authorization_response_iss_parameter_supported: true` and
    /// redirects carry `iss` (off by default, as most providers still are).
    iss_parameter: bool,
    /// What redirects say `iss` is, whatever the metadata says: `Some(None)` no `iss` at all.
    redirect_iss: Option<Option<String>>,
    /// `code_challenge_methods_supported` of the metadata (`None`: not stated).
    code_challenge_methods: Option<Vec<String>>,
    /// Every `POST /device/code` form, in order.
    device_requests: Vec<HashMap<String, String>>,
    /// Token responses leave `scope` out (RFC 6749 §5.1: the requested scope was granted).
    omit_scope: bool,
    /// How long code exchanges and device grant polls take to answer (zero: at once).
    sign_in_delay: Duration,
    registration_mode: RegistrationMode,
    /// The client_id the next registrations issue (`None`: `dyn-client-<n>`), for hostile
    /// answers.
    issued_client_id: Option<String>,
    /// client_id → what it registered (forgotten by `forget_registered_clients`).
    registered: HashMap<String, RegisteredClient>,
    /// Successful registrations ever made.
    registrations_made: usize,
    /// Every `POST /register` body, in order.
    registration_requests: Vec<Value>,
    /// The metadata says `client_id_metadata_document_supported: true`.
    metadata_documents: bool,
    /// Client ID Metadata Document URLs fetched and found valid: accepted as client_ids.
    document_clients: Vec<String>,
    /// How many times a Client ID Metadata Document was fetched.
    document_fetches: usize,
    /// The document served at `/client.json` (`None`: 404).
    client_document: Option<Value>,
    /// Put in every token this issuer mints (`at-<tag>-…`, `rt-<tag>-…`; empty: none), so that
    /// several issuers in one test never mint the same strings.
    token_tag: String,
}

/// Where a metadata document is, for an issuer mounted under a path `/o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataForm {
    /// RFC 8414: `/.well-known/oauth-authorization-server/o`.
    Rfc8414Inserted,
    /// The form many servers also use: `/o/.well-known/oauth-authorization-server`.
    Rfc8414Appended,
    /// OpenID Connect: `/o/.well-known/openid-configuration`.
    OpenId,
}

/// Options fixed at start.
#[derive(Debug, Clone)]
pub struct IssuerOptions {
    /// The issuer's path ("" for the bare origin, e.g. "/o"); endpoints live under it.
    pub mount: String,
    /// Which metadata documents exist and whether each names the revocation endpoint
    /// (`None`: from `rfc8414` and `revocation`).
    pub metadata: Option<Vec<(MetadataForm, bool)>>,
    /// Serve `/.well-known/oauth-authorization-server` (else only the OpenID path).
    pub rfc8414: bool,
    pub revocation: bool,
    pub rotation: bool,
    pub expires_in: i64,
    /// `interval` of device authorization responses (`None`: not sent).
    pub device_interval: Option<u64>,
    /// Access tokens are JWTs (`alg: none`) carrying `exp`, for clients that read them.
    pub jwt_access_tokens: bool,
    /// Client ids accepted besides [`CLIENT_ID`] (a peer that brings its own).
    pub extra_client_ids: Vec<String>,
    /// The host name in the issuer's URL (`None`: 127.0.0.1). It always listens on 127.0.0.1
    /// only: another name is reached through a proxy that maps it there
    /// ([`ConnectProxy`](crate::proxy::ConnectProxy)), or is `localhost`.
    pub host: Option<String>,
    /// Serve https with this identity (e.g. from [`TestCa`](crate::tls::TestCa)).
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
}

impl Default for IssuerOptions {
    fn default() -> Self {
        Self {
            mount: String::new(),
            metadata: None,
            rfc8414: true,
            revocation: true,
            rotation: true,
            expires_in: 3600,
            device_interval: Some(1),
            jwt_access_tokens: false,
            extra_client_ids: Vec::new(),
            host: None,
            tls: None,
        }
    }
}

pub struct FakeIssuer {
    url: String,
    port: u16,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeIssuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeIssuer {
    pub async fn start() -> Self {
        Self::start_with(IssuerOptions::default()).await
    }

    pub async fn start_with(options: IssuerOptions) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        let scheme = if options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let host = options.host.as_deref().unwrap_or("127.0.0.1");
        let url = format!("{scheme}://{host}:{port}{}", options.mount);
        let tls = options.tls.map(tokio_rustls::TlsAcceptor::from);
        let state = Arc::new(Mutex::new(State {
            mode: TokenMode::Ok,
            sequence_at: 0,
            hits: HashMap::new(),
            token_requests: Vec::new(),
            grants: Vec::new(),
            refresh_tokens: HashMap::new(),
            expires_in: options.expires_in,
            rotation: options.rotation,
            devices: Vec::new(),
            device_interval: options.device_interval,
            device_override: None,
            slow_downs_left: 0,
            authorizations: Vec::new(),
            revoked_tokens: Vec::new(),
            metadata: options.metadata.clone().unwrap_or_else(|| {
                let mut forms = vec![(MetadataForm::OpenId, options.revocation)];
                if options.rfc8414 {
                    forms.insert(0, (MetadataForm::Rfc8414Inserted, options.revocation));
                }
                forms
            }),
            stated_issuer: None,
            mount: options.mount.clone(),
            claimed_resource: None,
            resource_scopes: None,
            resource_authorization_server: None,
            metadata_scopes: None,
            metadata_override: None,
            challenge_scope: None,
            jwt_access_tokens: options.jwt_access_tokens,
            client_ids: std::iter::once(CLIENT_ID.to_owned())
                .chain(options.extra_client_ids)
                .collect(),
            counter: 0,
            iss_parameter: false,
            redirect_iss: None,
            code_challenge_methods: Some(vec!["S256".to_owned()]),
            device_requests: Vec::new(),
            omit_scope: false,
            sign_in_delay: Duration::ZERO,
            registration_mode: RegistrationMode::Off,
            issued_client_id: None,
            registered: HashMap::new(),
            registrations_made: 0,
            registration_requests: Vec::new(),
            metadata_documents: false,
            document_clients: Vec::new(),
            document_fetches: 0,
            client_document: None,
            token_tag: String::new(),
        }));
        let shared = state.clone();
        let base = url.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (state, base, tls) = (shared.clone(), base.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        // A client that refuses the certificate ends the handshake: nothing to serve.
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                serve(stream, state, base).await;
                            }
                        }
                        None => serve(stream, state, base).await,
                    }
                });
            }
        });
        Self {
            url,
            port,
            state,
            server,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The issuer identifier, e.g. `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Writes `home/config.toml` naming this issuer and [`CLIENT_ID`] as the provider.
    pub fn write_config(&self, home: &std::path::Path) {
        let config = format!(
            "[provider]\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\n",
            self.url
        );
        std::fs::write(home.join("config.toml"), config).unwrap();
    }

    pub fn set_mode(&self, mode: TokenMode) {
        let mut state = self.state();
        state.mode = mode;
        state.sequence_at = 0;
    }

    /// Requests that reached `path` (any method).
    pub fn hits(&self, path: &str) -> usize {
        self.state().hits.get(path).copied().unwrap_or(0)
    }

    /// Every request that reached `/token`.
    pub fn token_hits(&self) -> usize {
        self.hits("/token")
    }

    /// `/token` requests with `grant_type=refresh_token`.
    pub fn refresh_hits(&self) -> usize {
        refreshes(&self.state())
    }

    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.state().token_requests.clone()
    }

    /// Mints a new grant (as if the user had signed in) and returns its tokens.
    pub fn issue_grant(&self, expires_in: i64) -> IssuedTokens {
        let mut state = self.state();
        let grant = state.grants.len();
        state.grants.push(Grant::default());
        let tokens = mint(&mut state, grant, expires_in);
        IssuedTokens {
            expires_in,
            ..tokens
        }
    }

    /// The grant's current refresh token.
    pub fn current_refresh_token(&self, grant_refresh_token: &str) -> Option<String> {
        let state = self.state();
        let (grant, _) = state.refresh_tokens.get(grant_refresh_token)?;
        Some(state.grants[*grant].current_refresh.clone())
    }

    /// Revokes the grant that `refresh_token` belongs to, as the provider would.
    pub fn revoke_grant(&self, refresh_token: &str) {
        let mut state = self.state();
        if let Some((grant, _)) = state.refresh_tokens.get(refresh_token).copied() {
            state.grants[grant].revoked = true;
        }
    }

    /// Tokens minted from now on carry `tag` (`at-<tag>-<grant>-<n>`, `rt-<tag>-<grant>-<n>`):
    /// two issuers of one test then never mint the same token, so a token sent to the wrong
    /// issuer is refused there.
    pub fn tag_tokens(&self, tag: &str) {
        self.state().token_tag = format!("{tag}-");
    }

    pub fn revoked_tokens(&self) -> Vec<String> {
        self.state().revoked_tokens.clone()
    }

    /// What the metadata documents say the issuer is: `None` omits the member.
    pub fn state_issuer(&self, issuer: Option<&str>) {
        self.state().stated_issuer = Some(issuer.map(str::to_owned));
    }

    /// The metadata documents say the truth about `issuer` again (undoes [`Self::state_issuer`]).
    pub fn state_true_issuer(&self) {
        self.state().stated_issuer = None;
    }

    /// Behaves as an RFC 9207 server: the metadata says
    /// `authorization_response_iss_parameter_supported: true` and every redirect of
    /// [`approve_authorization`](Self::approve_authorization) / [`deny_authorization`](Self::deny_authorization)
    /// carries `iss`.
    pub fn advertise_iss_parameter(&self) {
        self.state().iss_parameter = true;
    }

    /// Makes later redirects carry `iss=<iss>` (`None`: no `iss`), whatever the metadata says:
    /// a response forged by, or mixed up with, another issuer.
    pub fn set_redirect_iss(&self, iss: Option<&str>) {
        self.state().redirect_iss = Some(iss.map(str::to_owned));
    }

    /// What the metadata lists as `code_challenge_methods_supported` (`None`: the member is
    /// left out, as Entra ID does). `["S256"]` unless changed.
    pub fn set_code_challenge_methods(&self, methods: Option<&[&str]>) {
        self.state().code_challenge_methods =
            methods.map(|m| m.iter().map(|s| s.to_string()).collect());
    }

    /// Token responses leave `scope` out, as RFC 6749 §5.1 allows when the requested scope was
    /// granted (by default they say `openid offline_access`).
    pub fn omit_token_scope(&self) {
        self.state().omit_scope = true;
    }

    /// Code exchanges and device grant polls answer after `delay` (as a slow provider or
    /// network does); the request is recorded when it arrives ([`TokenRequest::at`]).
    pub fn delay_sign_in_answers(&self, delay: Duration) {
        self.state().sign_in_delay = delay;
    }

    /// The forms of every device authorization request (`POST /device/code`), in order.
    pub fn device_requests(&self) -> Vec<HashMap<String, String>> {
        self.state().device_requests.clone()
    }

    /// How `POST /register` answers; anything but `Off` puts `registration_endpoint` in the
    /// metadata.
    pub fn set_registration_mode(&self, mode: RegistrationMode) {
        self.state().registration_mode = mode;
    }

    /// The client_id registrations issue from now on (`None`: a fresh `dyn-client-<n>`).
    pub fn set_issued_client_id(&self, client_id: Option<&str>) {
        self.state().issued_client_id = client_id.map(str::to_owned);
    }

    /// Clients registered successfully so far (forgotten ones included).
    pub fn registrations(&self) -> usize {
        self.state().registrations_made
    }

    /// Every `POST /register` body, in order (valid or not).
    pub fn registration_requests(&self) -> Vec<Value> {
        self.state().registration_requests.clone()
    }

    /// Forgets every registered client, as a provider that deleted them: their requests are
    /// then answered `invalid_client`.
    pub fn forget_registered_clients(&self) {
        self.state().registered.clear();
    }

    /// The metadata says `client_id_metadata_document_supported: true`; a client_id that is
    /// an URL is then fetched and checked at `GET /authorize`.
    pub fn accept_client_metadata_documents(&self) {
        self.state().metadata_documents = true;
    }

    /// How many times a Client ID Metadata Document was fetched.
    pub fn client_document_fetches(&self) -> usize {
        self.state().document_fetches
    }

    /// Where this issuer serves a Client ID Metadata Document (see
    /// [`serve_client_document`](Self::serve_client_document)), as a vendor would publish it.
    pub fn client_document_url(&self) -> String {
        format!("{}/client.json", self.url)
    }

    /// Serves `document` at [`client_document_url`](Self::client_document_url).
    pub fn serve_client_document(&self, document: Value) {
        self.state().client_document = Some(document);
    }

    /// `&iss=...` for a redirect, as the switches say.
    fn iss_suffix(&self) -> String {
        let state = self.state();
        let iss = match &state.redirect_iss {
            Some(iss) => iss.clone(),
            None => state.iss_parameter.then(|| self.url.clone()),
        };
        iss.map(|iss| format!("&iss={}", encode(&iss)))
            .unwrap_or_default()
    }

    /// Makes the protected resource metadata claim another resource (an impersonation).
    pub fn claim_resource(&self, resource: &str) {
        self.state().claimed_resource = Some(resource.to_owned());
    }

    /// The authorization server the protected resource metadata names (`None`: this issuer),
    /// as a resource that moved to another one.
    pub fn set_resource_authorization_server(&self, issuer: Option<&str>) {
        self.state().resource_authorization_server = issuer.map(str::to_owned);
    }

    /// Members laid over every authorization server metadata document (hostile endpoints).
    pub fn set_metadata_override(&self, members: Value) {
        self.state().metadata_override = members.as_object().cloned();
    }

    /// What the authorization server metadata states as `scopes_supported` (`None`: nothing).
    pub fn set_metadata_scopes(&self, scopes: Option<&[&str]>) {
        self.state().metadata_scopes = scopes.map(|s| s.iter().map(|s| s.to_string()).collect());
    }

    /// What the protected resource metadata states as `scopes_supported` (`None`: nothing).
    pub fn set_resource_scopes(&self, scopes: Option<&[&str]>) {
        self.state().resource_scopes =
            scopes.map(|scopes| scopes.iter().map(|s| s.to_string()).collect());
    }

    /// What the protected resource's 401 challenge asks for with `scope=` (`None`: nothing).
    pub fn set_challenge_scope(&self, scope: Option<&str>) {
        self.state().challenge_scope = scope.map(str::to_owned);
    }

    /// Makes later device authorization responses carry these members instead of the normal
    /// ones (a `null` member is left out): hostile or odd numbers and addresses, e.g.
    /// `{"interval": 18446744073709551615, "verification_uri": "javascript:alert(1)"}`.
    /// The device and user codes stay the issuer's own unless overridden.
    pub fn set_device_response_override(&self, members: Value) {
        let Value::Object(members) = members else {
            panic!("the override is a JSON object: {members}");
        };
        self.state().device_override = Some(members);
    }

    /// Answer `slow_down` to the next `n` device polls.
    pub fn slow_down_next(&self, n: usize) {
        self.state().slow_downs_left = n;
    }

    /// The user approves (`true`) or denies the device login with `user_code`.
    pub fn decide_device(&self, user_code: &str, approve: bool) {
        let mut state = self.state();
        let device = state
            .devices
            .iter_mut()
            .find(|d| d.user_code == user_code)
            .expect("known user code");
        device.decision = Some(approve);
    }

    /// The device code with `user_code` expires now.
    pub fn expire_device(&self, user_code: &str) {
        let mut state = self.state();
        state
            .devices
            .iter_mut()
            .find(|d| d.user_code == user_code)
            .expect("known user code")
            .expired = true;
    }

    /// User codes of device logins nobody has decided on yet.
    pub fn pending_user_codes(&self) -> Vec<String> {
        let state = self.state();
        state
            .devices
            .iter()
            .filter(|d| d.decision.is_none() && !d.expired)
            .map(|d| d.user_code.clone())
            .collect()
    }

    /// When each poll of the device login with `user_code` arrived.
    pub fn device_polls(&self, user_code: &str) -> Vec<Instant> {
        let state = self.state();
        state
            .devices
            .iter()
            .find(|d| d.user_code == user_code)
            .map(|d| d.polls.clone())
            .unwrap_or_default()
    }

    /// Acts as the user approving an authorization URL the server under test produced:
    /// records the PKCE challenge and returns the redirect (`redirect_uri?code=...&state=...`).
    pub fn approve_authorization(&self, auth_url: &str) -> String {
        let query = query_of(auth_url);
        assert_eq!(
            query.get("response_type").map(String::as_str),
            Some("code"),
            "{auth_url}"
        );
        assert_eq!(
            query.get("code_challenge_method").map(String::as_str),
            Some("S256"),
            "{auth_url}"
        );
        let mut state = self.state();
        state.counter += 1;
        let code = format!("code-{}", state.counter);
        let redirect_uri = query["redirect_uri"].clone();
        state.authorizations.push(Authorization {
            client_id: None,
            code: code.clone(),
            challenge: query["code_challenge"].clone(),
            redirect_uri: redirect_uri.clone(),
            used: false,
        });
        drop(state);
        format!(
            "{redirect_uri}?code={code}&state={}{}",
            encode(&query["state"]),
            self.iss_suffix()
        )
    }

    /// Acts as the user denying: the redirect with `error=access_denied`.
    pub fn deny_authorization(&self, auth_url: &str) -> String {
        let query = query_of(auth_url);
        format!(
            "{}?error=access_denied&state={}{}",
            query["redirect_uri"],
            encode(&query["state"]),
            self.iss_suffix()
        )
    }
}

/// Serves HTTP/1.1 requests on one connection.
async fn serve<I>(stream: I, state: Arc<Mutex<State>>, base: String)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| {
        let (state, base) = (state.clone(), base.clone());
        async move {
            let response = handle(request, &state, &base).await;
            // A service error makes hyper close the connection unanswered.
            if response.status().as_u16() == DROP {
                return Err(std::io::Error::other("dropped on purpose"));
            }
            Ok(response)
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// New access, refresh and id tokens for `grant`, registered as its current ones.
fn mint(state: &mut State, grant: usize, expires_in: i64) -> IssuedTokens {
    state.counter += 1;
    let n = state.counter;
    let access_token = access_token(state, grant, n, expires_in);
    let refresh_token = format!("rt-{}{grant}-{n}", state.token_tag);
    let claims = json!({"sub": format!("user-{grant}"), "email": format!("user{grant}@example.com"), "name": "Test User"});
    let id_token = unsigned_jwt(&claims);
    let old = std::mem::take(&mut state.grants[grant].current_refresh);
    if let Some(entry) = state.refresh_tokens.get_mut(&old) {
        entry.1 = false;
    }
    state.grants[grant].current_refresh = refresh_token.clone();
    state.grants[grant].current_access = access_token.clone();
    state
        .refresh_tokens
        .insert(refresh_token.clone(), (grant, true));
    IssuedTokens {
        access_token,
        refresh_token,
        id_token,
        expires_in,
    }
}

/// `at-<grant>-<n>` (`at-<tag>-<grant>-<n>` when tagged), or a JWT carrying that as `jti` when the options ask for JWTs.
fn access_token(state: &State, grant: usize, n: usize, expires_in: i64) -> String {
    let id = format!("at-{}{grant}-{n}", state.token_tag);
    if !state.jwt_access_tokens {
        return id;
    }
    let exp = crate::now() + expires_in;
    unsigned_jwt(&json!({"jti": id, "sub": format!("user-{grant}"), "exp": exp}))
}

fn unsigned_jwt(claims: &Value) -> String {
    format!(
        "{}.{}.sig",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

fn query_of(url: &str) -> HashMap<String, String> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    form_decode(query.as_bytes())
}

/// A form body, or a JSON object's string fields (some clients post JSON to `/token`).
fn body_fields(body: &[u8]) -> HashMap<String, String> {
    match serde_json::from_slice::<serde_json::Map<String, Value>>(body) {
        Ok(object) => object
            .into_iter()
            .filter_map(|(key, value)| Some((key, value.as_str()?.to_owned())))
            .collect(),
        Err(_) => form_decode(body),
    }
}

fn form_decode(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn json_response(status: u16, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    response
}

fn raw_response(status: u16, content_type: &str, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    // DROP is outside the range hyper accepts for a real answer; keep it as a marker.
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status == DROP {
        *response.status_mut() =
            StatusCode::from_u16(599).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    }
    if !content_type.is_empty() {
        response
            .headers_mut()
            .insert("content-type", content_type.parse().unwrap());
    }
    response
}

fn oauth_error(status: u16, code: &str) -> Response<Full<Bytes>> {
    json_response(
        status,
        json!({"error": code, "error_description": format!("fake issuer says {code}")}),
    )
}

/// `/token` requests with `grant_type=refresh_token`.
fn refreshes(state: &State) -> usize {
    state
        .token_requests
        .iter()
        .filter(|r| r.form.get("grant_type").map(String::as_str) == Some("refresh_token"))
        .count()
}

/// A sentinel the connection task understands as "drop without answering".
const DROP: u16 = 599;

async fn handle(
    request: Request<Incoming>,
    state: &Mutex<State>,
    base: &str,
) -> Response<Full<Bytes>> {
    let (mount, forms, stated, iss_parameter, methods) = {
        let state = state.lock().unwrap();
        (
            state.mount.clone(),
            state.metadata.clone(),
            state.stated_issuer.clone(),
            state.iss_parameter,
            state.code_challenge_methods.clone(),
        )
    };
    let full = request.uri().path().to_owned();
    let metadata_form = if full == format!("/.well-known/oauth-authorization-server{mount}") {
        Some(MetadataForm::Rfc8414Inserted)
    } else if full == format!("{mount}/.well-known/oauth-authorization-server") {
        Some(MetadataForm::Rfc8414Appended)
    } else if full == format!("{mount}/.well-known/openid-configuration") {
        Some(MetadataForm::OpenId)
    } else {
        None
    };
    // Endpoints are counted by their path under the issuer; documents by their full path.
    let path = match metadata_form {
        Some(_) => full.clone(),
        None => full.strip_prefix(&mount).unwrap_or(&full).to_owned(),
    };
    *state.lock().unwrap().hits.entry(path.clone()).or_default() += 1;
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (authorization, content_type) = (header("authorization"), header("content-type"));
    let query = request.uri().query().unwrap_or("").to_owned();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let form = body_fields(&body);
    if let Some(asked) = metadata_form {
        let Some(&(_, revocation)) = forms.iter().find(|(form, _)| *form == asked) else {
            return raw_response(404, "", "");
        };
        let mut metadata = json!({
            "issuer": base,
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/token"),
            "device_authorization_endpoint": format!("{base}/device/code"),
            "grant_types_supported": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
        });
        if let Some(methods) = methods {
            metadata["code_challenge_methods_supported"] = json!(methods);
        }
        if iss_parameter {
            metadata["authorization_response_iss_parameter_supported"] = json!(true);
        }
        match stated {
            None => {}
            Some(None) => {
                metadata.as_object_mut().unwrap().remove("issuer");
            }
            Some(Some(other)) => metadata["issuer"] = json!(other),
        }
        if revocation {
            metadata["revocation_endpoint"] = json!(format!("{base}/revoke"));
        }
        let state = state.lock().unwrap();
        if state.registration_mode != RegistrationMode::Off {
            metadata["registration_endpoint"] = json!(format!("{base}/register"));
        }
        if state.metadata_documents {
            metadata["client_id_metadata_document_supported"] = json!(true);
        }
        if let Some(scopes) = &state.metadata_scopes {
            metadata["scopes_supported"] = json!(scopes);
        }
        for (name, value) in state.metadata_override.iter().flatten() {
            metadata[name] = value.clone();
        }
        return json_response(200, metadata);
    }
    match path.as_str() {
        "/token" => token(form, state).await,
        // A protected resource (RFC 9728) whose authorization server is this issuer: a current
        // access token of a live grant is accepted.
        "/mcp" => {
            let accepted = authorization.strip_prefix("Bearer ").is_some_and(|token| {
                let state = state.lock().unwrap();
                state.grants.iter().any(|g| {
                    !g.revoked && !g.current_access.is_empty() && g.current_access == token
                })
            });
            if accepted {
                return json_response(200, json!({"ok": true}));
            }
            let mut response = raw_response(401, "text/plain", "unauthorized");
            let scope = state.lock().unwrap().challenge_scope.clone();
            let challenge = format!(
                "Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\"{}",
                scope
                    .map(|s| format!(", scope=\"{s}\""))
                    .unwrap_or_default()
            );
            response
                .headers_mut()
                .insert("www-authenticate", challenge.parse().unwrap());
            response
        }
        "/.well-known/oauth-protected-resource/mcp" => {
            let state = state.lock().unwrap();
            let claimed = state
                .claimed_resource
                .clone()
                .unwrap_or_else(|| format!("{base}/mcp"));
            let server = state
                .resource_authorization_server
                .clone()
                .unwrap_or_else(|| base.to_owned());
            let mut metadata = json!({"resource": claimed, "authorization_servers": [server]});
            if let Some(scopes) = &state.resource_scopes {
                metadata["scopes_supported"] = json!(scopes);
            }
            json_response(200, metadata)
        }
        "/device/code" => device_authorization(&form, state, base),
        // The counters, for tests in other languages (the TypeScript client's), which cannot
        // call `refresh_hits`.
        "/stats" => {
            let state = state.lock().unwrap();
            json_response(
                200,
                json!({
                    "refreshes": refreshes(&state),
                    "registrations": state.registrations_made,
                    "clientDocumentFetches": state.document_fetches,
                }),
            )
        }
        "/register" => register(&body, &content_type, state).await,
        "/authorize" => authorize(&query, state).await,
        "/client.json" => match state.lock().unwrap().client_document.clone() {
            Some(document) => json_response(200, document),
            None => raw_response(404, "text/plain", "not found"),
        },
        "/revoke" => {
            let mut state = state.lock().unwrap();
            let token = form.get("token").cloned().unwrap_or_default();
            if let Some((grant, _)) = state.refresh_tokens.get(&token).copied() {
                state.grants[grant].revoked = true;
            }
            state.revoked_tokens.push(token);
            raw_response(200, "", "")
        }
        _ => raw_response(404, "text/plain", "not found"),
    }
}

async fn token(form: HashMap<String, String>, state: &Mutex<State>) -> Response<Full<Bytes>> {
    let mode = {
        let mut state = state.lock().unwrap();
        state.token_requests.push(TokenRequest {
            form: form.clone(),
            at: Instant::now(),
        });
        match state.mode.clone() {
            TokenMode::Sequence(modes) => {
                let at = state.sequence_at.min(modes.len().saturating_sub(1));
                state.sequence_at += 1;
                modes.get(at).cloned().unwrap_or(TokenMode::Ok)
            }
            mode => mode,
        }
    };
    let client_known = form.get("client_id").is_some_and(|id| {
        let state = state.lock().unwrap();
        state.client_ids.contains(id)
            || state.registered.contains_key(id)
            || state.document_clients.contains(id)
    });
    if !client_known {
        return oauth_error(401, "invalid_client");
    }
    let grant_type = form.get("grant_type").cloned().unwrap_or_default();
    if grant_type == "refresh_token" {
        match mode {
            TokenMode::Ok => {}
            TokenMode::Slow(delay) => tokio::time::sleep(delay).await,
            TokenMode::Held(gate) => gate.pass().await,
            TokenMode::InvalidGrant => return oauth_error(400, "invalid_grant"),
            TokenMode::InvalidClient => return oauth_error(401, "invalid_client"),
            TokenMode::InvalidScope => return oauth_error(400, "invalid_scope"),
            TokenMode::WafHtml403 => {
                return raw_response(
                    403,
                    "text/html",
                    "<html><body><h1>Access denied</h1>Request blocked by the firewall.</body></html>",
                );
            }
            TokenMode::TooManyRequests { retry_after } => {
                let mut response = raw_response(429, "text/plain", "slow down");
                if let Some(secs) = retry_after {
                    response
                        .headers_mut()
                        .insert("retry-after", secs.to_string().parse().unwrap());
                }
                return response;
            }
            TokenMode::ServiceUnavailable => {
                return raw_response(503, "text/html", "<html>Service Unavailable</html>");
            }
            TokenMode::TemporarilyUnavailable => {
                return oauth_error(400, "temporarily_unavailable");
            }
            TokenMode::Html200 => {
                return raw_response(
                    200,
                    "text/html",
                    "<html>Welcome to the captive portal</html>",
                );
            }
            TokenMode::EmptyBody400 => return raw_response(400, "", ""),
            TokenMode::DropConnection => return raw_response(DROP, "", ""),
            TokenMode::Answer { status, body } => {
                return raw_response(status, "application/json", &body);
            }
            TokenMode::Sequence(_) => unreachable!("resolved above"),
        }
        return refresh(&form, state);
    }
    let delay = state.lock().unwrap().sign_in_delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match grant_type.as_str() {
        "urn:ietf:params:oauth:grant-type:device_code" => device_poll(&form, state),
        "authorization_code" => code_exchange(&form, state),
        _ => oauth_error(400, "unsupported_grant_type"),
    }
}

fn token_response(state: &mut State, grant: usize) -> Response<Full<Bytes>> {
    let expires_in = state.expires_in;
    let tokens = mint(state, grant, expires_in);
    let mut body = json!({
        "access_token": tokens.access_token, "token_type": "Bearer", "expires_in": expires_in,
        "refresh_token": tokens.refresh_token, "id_token": tokens.id_token, "scope": "openid offline_access",
    });
    if state.omit_scope {
        body.as_object_mut().unwrap().remove("scope");
    }
    json_response(200, body)
}

fn refresh(form: &HashMap<String, String>, state: &Mutex<State>) -> Response<Full<Bytes>> {
    let mut state = state.lock().unwrap();
    let presented = form.get("refresh_token").cloned().unwrap_or_default();
    let Some((grant, current)) = state.refresh_tokens.get(&presented).copied() else {
        return oauth_error(400, "invalid_grant");
    };
    if state.grants[grant].revoked {
        return oauth_error(400, "invalid_grant");
    }
    if !current {
        // Reuse of a rotated-out refresh token: the whole grant is revoked.
        state.grants[grant].revoked = true;
        return oauth_error(400, "invalid_grant");
    }
    if state.rotation {
        return token_response(&mut state, grant);
    }
    state.counter += 1;
    let expires_in = state.expires_in;
    let access = access_token(&state, grant, state.counter, expires_in);
    state.grants[grant].current_access = access.clone();
    json_response(
        200,
        json!({"access_token": access, "token_type": "Bearer", "expires_in": expires_in}),
    )
}

fn device_authorization(
    form: &HashMap<String, String>,
    state: &Mutex<State>,
    base: &str,
) -> Response<Full<Bytes>> {
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return oauth_error(401, "invalid_client");
    }
    let mut state = state.lock().unwrap();
    state.device_requests.push(form.clone());
    state.counter += 1;
    let n = state.counter;
    let user_code = format!("WDJB-{n:04}");
    state.devices.push(Device {
        device_code: format!("dc-{n}"),
        user_code: user_code.clone(),
        decision: None,
        expired: false,
        used: false,
        polls: Vec::new(),
    });
    let mut body = json!({
        "device_code": format!("dc-{n}"), "user_code": user_code,
        "verification_uri": format!("{base}/device"),
        "verification_uri_complete": format!("{base}/device?user_code={user_code}"),
        "expires_in": 600,
    });
    if let Some(interval) = state.device_interval {
        body["interval"] = json!(interval);
    }
    if let (Some(members), Value::Object(body)) = (&state.device_override, &mut body) {
        for (name, value) in members {
            match value {
                Value::Null => body.remove(name),
                value => body.insert(name.clone(), value.clone()),
            };
        }
    }
    json_response(200, body)
}

fn device_poll(form: &HashMap<String, String>, state: &Mutex<State>) -> Response<Full<Bytes>> {
    let mut state = state.lock().unwrap();
    let code = form.get("device_code").cloned().unwrap_or_default();
    let Some(at) = state.devices.iter().position(|d| d.device_code == code) else {
        return oauth_error(400, "invalid_grant");
    };
    state.devices[at].polls.push(Instant::now());
    if state.slow_downs_left > 0 {
        state.slow_downs_left -= 1;
        return oauth_error(400, "slow_down");
    }
    let device = &state.devices[at];
    if device.used {
        return oauth_error(400, "invalid_grant");
    }
    if device.expired {
        return oauth_error(400, "expired_token");
    }
    match device.decision {
        None => oauth_error(400, "authorization_pending"),
        Some(false) => oauth_error(400, "access_denied"),
        Some(true) => {
            state.devices[at].used = true;
            let grant = state.grants.len();
            state.grants.push(Grant::default());
            token_response(&mut state, grant)
        }
    }
}

fn code_exchange(form: &HashMap<String, String>, state: &Mutex<State>) -> Response<Full<Bytes>> {
    let mut state = state.lock().unwrap();
    let code = form.get("code").cloned().unwrap_or_default();
    let Some(at) = state.authorizations.iter().position(|a| a.code == code) else {
        return oauth_error(400, "invalid_grant");
    };
    let authorization = &state.authorizations[at];
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let other_client = authorization
        .client_id
        .as_ref()
        .is_some_and(|id| form.get("client_id") != Some(id));
    if authorization.used
        || other_client
        || challenge != authorization.challenge
        || form.get("redirect_uri") != Some(&authorization.redirect_uri)
    {
        return oauth_error(400, "invalid_grant");
    }
    state.authorizations[at].used = true;
    let grant = state.grants.len();
    state.grants.push(Grant::default());
    token_response(&mut state, grant)
}

/// RFC 7591: a public native client on a loopback redirect, as `auth-app-server` registers
/// one; anything else is refused with `invalid_client_metadata` / `invalid_redirect_uri`.
async fn register(body: &[u8], content_type: &str, state: &Mutex<State>) -> Response<Full<Bytes>> {
    let mode = {
        let mut state = state.lock().unwrap();
        state
            .registration_requests
            .push(serde_json::from_slice(body).unwrap_or(Value::Null));
        state.registration_mode
    };
    match mode {
        RegistrationMode::Off => return raw_response(404, "text/plain", "not found"),
        RegistrationMode::Garbage => {
            return raw_response(201, "text/html", "<html>Registered! Welcome.</html>");
        }
        RegistrationMode::Reject => return oauth_error(400, "invalid_client_metadata"),
        RegistrationMode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return raw_response(DROP, "", "");
        }
        RegistrationMode::Ok => {}
    }
    if !content_type.starts_with("application/json") {
        return oauth_error(400, "invalid_client_metadata");
    }
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return oauth_error(400, "invalid_client_metadata");
    };
    let strings = |name: &str| -> Option<Vec<String>> {
        request[name]
            .as_array()?
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let Some(redirect_uris) = strings("redirect_uris").filter(|uris| !uris.is_empty()) else {
        return oauth_error(400, "invalid_redirect_uri");
    };
    if !redirect_uris.iter().all(|uri| is_loopback_redirect(uri)) {
        return oauth_error(400, "invalid_redirect_uri");
    }
    let grants = strings("grant_types").unwrap_or_default();
    let valid = request["token_endpoint_auth_method"] == "none"
        && request["application_type"] == "native"
        && request["client_name"]
            .as_str()
            .is_some_and(|name| !name.trim().is_empty())
        && grants.iter().any(|g| g == "authorization_code")
        && grants
            .iter()
            .all(|g| g == "authorization_code" || g == "refresh_token");
    if !valid {
        return oauth_error(400, "invalid_client_metadata");
    }
    let mut state = state.lock().unwrap();
    state.counter += 1;
    state.registrations_made += 1;
    let client_id = state
        .issued_client_id
        .clone()
        .unwrap_or_else(|| format!("dyn-client-{}", state.counter));
    state.registered.insert(
        client_id.clone(),
        RegisteredClient {
            redirect_uris: redirect_uris.clone(),
        },
    );
    let mut answer = request.clone();
    answer["client_id"] = json!(client_id);
    answer["client_id_issued_at"] = json!(crate::now());
    // Issued although no secret was asked for: the server under test must drop it.
    answer["client_secret"] = json!(format!("dcr-secret-{}", state.counter));
    answer["x_vendor_extension"] = json!({"ignored": true});
    json_response(201, answer)
}

/// `http://127.0.0.1[:port]/path` (or `localhost`, `[::1]`).
fn is_loopback_redirect(uri: &str) -> bool {
    let Ok(url) = url::Url::parse(uri) else {
        return false;
    };
    url.scheme() == "http"
        && matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
        && url.path() != "/"
}

/// RFC 8252 §7.3: a loopback redirect registered without a port matches any port.
fn redirect_matches(registered: &[String], asked: &str) -> bool {
    let without_port = |uri: &str| {
        url::Url::parse(uri).ok().map(|mut url| {
            let _ = url.set_port(None);
            url.to_string()
        })
    };
    registered.iter().any(|uri| {
        uri == asked
            || (url::Url::parse(uri).is_ok_and(|u| u.port().is_none())
                && without_port(uri) == without_port(asked))
    })
}

/// `GET /authorize`: the user approves at once. The client must be known: a static one, a
/// registered one (its redirect checked), or, when metadata documents are accepted, an URL
/// whose document (fetched now, as an authorization server does) names that very URL as
/// `client_id` and lists the redirect. Answers 302 to the redirect with a code, or 400.
async fn authorize(query: &str, state: &Mutex<State>) -> Response<Full<Bytes>> {
    let params = form_decode(query.as_bytes());
    let (Some(client_id), Some(redirect_uri), Some(challenge), Some(oauth_state)) = (
        params.get("client_id"),
        params.get("redirect_uri"),
        params.get("code_challenge"),
        params.get("state"),
    ) else {
        return raw_response(400, "text/plain", "invalid_request");
    };
    let (known, registered, documents) = {
        let state = state.lock().unwrap();
        (
            state.client_ids.contains(client_id),
            state.registered.get(client_id).cloned(),
            state.metadata_documents,
        )
    };
    let allowed = if known {
        true
    } else if let Some(client) = registered {
        redirect_matches(&client.redirect_uris, redirect_uri)
    } else if documents && client_id.starts_with("http") {
        state.lock().unwrap().document_fetches += 1;
        let document = crate::browser_get(client_id)
            .await
            .and_then(|(status, response)| {
                let body = response.split_once("\r\n\r\n")?.1.to_owned();
                (status == 200).then(|| serde_json::from_str::<Value>(&body).ok())?
            });
        let valid = document.is_some_and(|document| {
            let uris: Vec<String> = document["redirect_uris"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            document["client_id"] == json!(client_id) && redirect_matches(&uris, redirect_uri)
        });
        if valid {
            state
                .lock()
                .unwrap()
                .document_clients
                .push(client_id.clone());
        }
        valid
    } else {
        false
    };
    if !allowed {
        return raw_response(
            400,
            "text/plain",
            "invalid_client or redirect_uri not registered",
        );
    }
    let mut state = state.lock().unwrap();
    state.counter += 1;
    let code = format!("code-{}", state.counter);
    state.authorizations.push(Authorization {
        client_id: Some(client_id.clone()),
        code: code.clone(),
        challenge: challenge.clone(),
        redirect_uri: redirect_uri.clone(),
        used: false,
    });
    let location = format!("{redirect_uri}?code={code}&state={}", encode(oauth_state));
    let mut response = raw_response(302, "text/plain", "");
    response
        .headers_mut()
        .insert("location", location.parse().unwrap());
    response
}
