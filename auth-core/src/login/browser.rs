//! The browser flow: authorization code with PKCE, answered on a one-shot loopback listener
//! `http://127.0.0.1:<port>/callback` (RFC 8252 §7.3), the port free or pinned by
//! `[provider] redirect_port`. A callback with a missing or wrong
//! `state` is answered 400 and ignored; one whose `iss` names another issuer (or lacks the
//! `iss` the metadata promises, RFC 9207) ends the login without exchanging its code; the
//! listener closes after success, an `error=` callback, a refused `iss`, cancel or the timeout.
//!
//! When the browser cannot reach this machine's loopback (SSH, containers), the user pastes
//! the address it ended on and `completeLogin` hands it to the same [`Inbox`]: same checks,
//! and the first accepted answer (from either way in) is the login's answer.

use std::convert::Infallible;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use reqwest::Url;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use super::callback::{ResponseCheck, Verdict, query_pairs};
use super::pkce::{self, Pkce, random_state};
use super::{CancelSignal, LoginStart, SignInTarget, exchange_failure};
use crate::error::AuthError;
use crate::provider::ProviderClient;
use crate::secret::Secret;

/// How long one browser connection may stay open.
const CONNECTION_LIMIT: Duration = Duration::from_secs(30);
/// The pause before accepting again when the system lacks resources.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The answer a login got, from the listener or `completeLogin`.
enum Callback {
    Code {
        code: Secret,
        done: oneshot::Sender<Result<(), String>>,
    },
    Refused {
        error: String,
    },
}

/// Where the authorization responses of one pending browser login go, from the listener and
/// from `completeLogin`. Both judge them with the same [`ResponseCheck`]; the first accepted
/// one (a code, `error=`, a refused `iss`) is the login's answer, and later ones are too late.
#[derive(Clone)]
pub(crate) struct Inbox {
    check: Arc<ResponseCheck>,
    callbacks: mpsc::Sender<Callback>,
    answered: Arc<AtomicBool>,
}

impl Inbox {
    fn new(check: ResponseCheck) -> (Self, mpsc::Receiver<Callback>) {
        let (callbacks, received) = mpsc::channel(1);
        let inbox = Self {
            check: Arc::new(check),
            callbacks,
            answered: Arc::new(AtomicBool::new(false)),
        };
        (inbox, received)
    }

    /// Hands the login its answer; false when it already has one (or has ended).
    async fn hand_over(&self, callback: Callback) -> bool {
        if self.answered.swap(true, Ordering::SeqCst) {
            return false;
        }
        self.callbacks.send(callback).await.is_ok()
    }

    /// `completeLogin`: the address the browser ended on, pasted by the user. A wrong state or
    /// an address without a code is refused (the error says why, never quoting the address,
    /// which may hold a code) and the login keeps waiting.
    pub(crate) async fn complete(&self, callback_url: &Secret) -> Result<(), String> {
        let url = Url::parse(callback_url.expose().trim()).map_err(|_| {
            "`callbackUrl` is not an address: pass the whole address the browser ended on (it starts with http://127.0.0.1:); the sign-in keeps waiting".to_owned()
        })?;
        let callback = match self.check.judge(&query_pairs(url.query())) {
            Verdict::WrongState => {
                tracing::warn!("completeLogin with a missing or wrong state refused");
                return Err("`callbackUrl` does not belong to this sign-in (its state is missing or does not match); the sign-in keeps waiting for its own address".to_owned());
            }
            Verdict::NoCode => {
                return Err("`callbackUrl` carries neither an authorization code nor an error; the sign-in keeps waiting: pass the whole address the browser ended on".to_owned());
            }
            Verdict::MixUp(error) => {
                tracing::warn!(%error, "completeLogin address refused");
                Callback::Refused { error }
            }
            Verdict::ProviderError(error) => Callback::Refused { error },
            // Its outcome comes with `loginCompleted`.
            Verdict::Code(code) => Callback::Code {
                code,
                done: oneshot::channel().0,
            },
        };
        if self.hand_over(callback).await {
            Ok(())
        } else {
            Err("this sign-in already has its answer: wait for loginCompleted".to_owned())
        }
    }
}

/// Refuses, before anything is registered or stored, a provider a browser sign-in cannot be
/// protected with: its metadata lists PKCE methods without S256, or (the MCP flow) lists none.
/// Metadata that cannot be had is left for the steps that follow to report; configured
/// endpoints used without metadata are signed in with S256 and a WARN.
pub(crate) async fn check_pkce(client: &ProviderClient) -> Result<(), AuthError> {
    let Ok(endpoints) = client.endpoints().await else {
        return Ok(());
    };
    let support = pkce::check_methods(
        endpoints.code_challenge_methods.as_deref(),
        endpoints.from_metadata(),
        client.is_mcp_flow(),
    )
    .map_err(AuthError::ProviderUnavailable)?;
    if let Some(warning) = support.warning() {
        client.warn_pkce_once(warning);
    }
    Ok(())
}

/// Starts a browser sign-in of `client_id` requesting `scopes` (checked with [`check_pkce`]
/// first); `authUrl` is to be opened by
/// the client. The redirect listens on `[provider] redirect_port`, else on `preferred_port`
/// when it is free (the port registered with the client), else on any free port.
pub(crate) async fn start(
    target: Arc<impl SignInTarget>,
    client: Arc<ProviderClient>,
    client_id: String,
    preferred_port: Option<u16>,
    scopes: Vec<String>,
) -> Result<LoginStart, AuthError> {
    let endpoints = client.endpoints().await.map_err(AuthError::from)?;
    let (Some(authorization), Some(token)) = (endpoints.authorization, endpoints.token) else {
        return Err(AuthError::ProviderUnavailable(
            "the provider has no authorization or token endpoint: configure them in config.toml, or sign in with a device code instead".into(),
        ));
    };
    // Responses are checked against the issuer as discovery recorded it (RFC 9207).
    let issuer = client.issuer_identifier().await.map_err(AuthError::from)?;
    let listener = bind_redirect_listener(client.config().redirect_port, preferred_port).await?;
    let port = listener
        .local_addr()
        .map_err(|e| AuthError::ProviderUnavailable(e.to_string()))?
        .port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let pkce = Pkce::new();
    let check = ResponseCheck::new(random_state(), issuer, endpoints.iss_parameter_supported);
    let auth_url = authorization_url(
        &authorization,
        &client,
        &client_id,
        &redirect_uri,
        &pkce.challenge,
        check.state().expose(),
        &scopes,
    );

    let (inbox, received) = Inbox::new(check);
    let (login_id, cancel) = target.register(Some(inbox.clone()));
    let flow = Flow {
        client,
        client_id,
        token_endpoint: token,
        redirect_uri,
        verifier: pkce.verifier,
        scopes,
    };
    let id = login_id.clone();
    tokio::spawn(async move {
        let result = run(&*target, flow, listener, (inbox, received), cancel).await;
        target.finish(&id, result);
    });
    Ok(LoginStart::Oauth {
        login_id,
        auth_url: auth_url.to_string(),
    })
}

/// The loopback listener of the redirect: on `[provider] redirect_port` when set (a busy port
/// is an error naming it and the setting), else on `preferred` when it is free, else on a free
/// port.
async fn bind_redirect_listener(
    pinned: Option<u16>,
    preferred: Option<u16>,
) -> Result<TcpListener, AuthError> {
    if let (None, Some(port)) = (pinned, preferred) {
        match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(listener) => return Ok(listener),
            Err(e) => {
                tracing::info!(port, error = %e, "the port registered for the sign-in redirect is busy; listening on another")
            }
        }
    }
    TcpListener::bind(("127.0.0.1", pinned.unwrap_or(0)))
        .await
        .map_err(|e| {
            AuthError::ProviderUnavailable(match pinned {
                Some(port) => format!(
                    "cannot listen on 127.0.0.1:{port} for the sign-in redirect ({e}): port {port} is set by `redirect_port` in config.toml; free that port or change the setting"
                ),
                None => format!("cannot listen on 127.0.0.1 for the sign-in redirect: {e}"),
            })
        })
}

fn authorization_url(
    endpoint: &Url,
    client: &ProviderClient,
    client_id: &str,
    redirect_uri: &str,
    challenge: &str,
    state: &str,
    scopes: &[String],
) -> Url {
    let config = client.config();
    let mut url = endpoint.clone();
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        if !scopes.is_empty() {
            query.append_pair("scope", &scopes.join(" "));
        }
        if let Some(resource) = &config.resource {
            query.append_pair("resource", resource);
        }
    }
    url
}

struct Flow {
    client: Arc<ProviderClient>,
    /// Configured, or obtained for this sign-in (`registration`).
    client_id: String,
    token_endpoint: Url,
    redirect_uri: String,
    verifier: Secret,
    /// What the authorization request asked for.
    scopes: Vec<String>,
}

/// Serves callbacks until the login ends one way or another; the listener closes on return.
async fn run(
    target: &impl SignInTarget,
    flow: Flow,
    listener: TcpListener,
    (inbox, mut received): (Inbox, mpsc::Receiver<Callback>),
    mut cancel: CancelSignal,
) -> Result<(), String> {
    let serving = accept_loop(listener, inbox);
    let outcome = async {
        match received.recv().await {
            Some(Callback::Code { code, done }) => {
                let result = exchange(target, &flow, &code).await;
                let _ = done.send(result.clone());
                result
            }
            Some(Callback::Refused { error }) => Err(error),
            None => Err("the sign-in listener stopped".to_owned()),
        }
    };
    let timeout = target.login_timeout();
    tokio::select! {
        reason = &mut cancel => Err(reason.unwrap_or("the sign-in was canceled").to_owned()),
        () = tokio::time::sleep(timeout) => Err(format!(
            "the sign-in timed out after {} s without an answer from the browser: start it again", timeout.as_secs()
        )),
        result = outcome => result,
        never = serving => match never {},
    }
}

async fn exchange(target: &impl SignInTarget, flow: &Flow, code: &Secret) -> Result<(), String> {
    let config = flow.client.config();
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.expose()),
        ("redirect_uri", flow.redirect_uri.as_str()),
        ("client_id", flow.client_id.as_str()),
        ("code_verifier", flow.verifier.expose()),
    ];
    if let Some(resource) = &config.resource {
        form.push(("resource", resource.as_str()));
    }
    let tokens = flow
        .client
        .token_request(&flow.token_endpoint, &form)
        .await
        .map_err(|f| exchange_failure(&f))?;
    target
        .store_tokens(&flow.client, &flow.client_id, tokens, &flow.scopes)
        .await
}

/// How long the listener waits before accepting again after a failure. A failure never ends
/// the login (only a callback, cancel or the timeout do): a connection that died in the queue
/// is skipped at once; a lack of resources (EMFILE under a low descriptor limit, ENFILE,
/// ENOBUFS, ENOMEM) waits for some to be freed, since the queued connection is still there
/// and retrying at once would spin.
fn accept_retry_delay(error: &io::Error) -> Duration {
    match error.kind() {
        io::ErrorKind::ConnectionAborted
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::Interrupted => Duration::ZERO,
        _ => ACCEPT_BACKOFF,
    }
}

/// Accepts browser connections until dropped. Each connection answers one request and closes.
async fn accept_loop(listener: TcpListener, inbox: Inbox) -> Infallible {
    let mut failing = false;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(%error, "the sign-in listener cannot accept a connection; retrying");
                }
                tokio::time::sleep(accept_retry_delay(&error)).await;
                continue;
            }
        };
        if std::mem::replace(&mut failing, false) {
            tracing::info!("the sign-in listener accepts connections again");
        }
        let inbox = inbox.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let inbox = inbox.clone();
                async move { Ok::<_, Infallible>(answer(request, &inbox).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIMIT, connection).await;
        });
    }
}

async fn answer(request: Request<Incoming>, inbox: &Inbox) -> Response<Full<Bytes>> {
    if request.method() != hyper::Method::GET || request.uri().path() != "/callback" {
        return page(
            StatusCode::NOT_FOUND,
            "Not found",
            "This address only receives the sign-in redirect.",
        );
    }
    let too_late = || {
        page(
            StatusCode::GONE,
            "Sign-in already finished",
            "You can close this window.",
        )
    };
    let code = match inbox.check.judge(&query_pairs(request.uri().query())) {
        Verdict::WrongState => {
            tracing::warn!("sign-in callback with a missing or wrong state ignored");
            return page(
                StatusCode::BAD_REQUEST,
                "Sign-in not accepted",
                "This answer does not belong to the sign-in in progress (the state does not match). Return to the app and start the sign-in again if needed.",
            );
        }
        Verdict::NoCode => {
            return page(
                StatusCode::BAD_REQUEST,
                "Sign-in not accepted",
                "The redirect carries no authorization code.",
            );
        }
        Verdict::MixUp(error) => {
            tracing::warn!(%error, "sign-in callback refused");
            let shown = format!("{error}.");
            if !inbox.hand_over(Callback::Refused { error }).await {
                return too_late();
            }
            return page(StatusCode::BAD_REQUEST, "Sign-in refused", &shown);
        }
        Verdict::ProviderError(error) => {
            let shown = format!("{error}. You can close this window and start again from the app.");
            if !inbox.hand_over(Callback::Refused { error }).await {
                return too_late();
            }
            return page(StatusCode::OK, "Sign-in not completed", &shown);
        }
        Verdict::Code(code) => code,
    };
    let (done, result) = oneshot::channel();
    if !inbox.hand_over(Callback::Code { code, done }).await {
        return too_late();
    }
    match result.await {
        Ok(Ok(())) => page(
            StatusCode::OK,
            "Signed in",
            "You are signed in. You can close this window and return to the app.",
        ),
        Ok(Err(error)) => page(StatusCode::OK, "Sign-in failed", &format!("{error}.")),
        Err(_) => page(
            StatusCode::OK,
            "Sign-in ended",
            "The sign-in was ended by the app. You can close this window.",
        ),
    }
}

/// A short plain HTML page; the text is escaped (it may carry provider-supplied words).
fn page(status: StatusCode, title: &str, text: &str) -> Response<Full<Bytes>> {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head><body style=\"font-family:sans-serif;margin:3em\"><h1>{t}</h1><p>{x}</p></body></html>",
        t = escape(title),
        x = escape(text)
    );
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response.headers_mut().insert(
        "cache-control",
        hyper::header::HeaderValue::from_static("no-store"),
    );
    response
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_failures_are_retried_at_once_or_after_a_pause() {
        let emfile = io::Error::from_raw_os_error(24);
        let cases = [
            (
                io::Error::from(io::ErrorKind::ConnectionAborted),
                Duration::ZERO,
            ),
            (
                io::Error::from(io::ErrorKind::ConnectionReset),
                Duration::ZERO,
            ),
            (io::Error::from(io::ErrorKind::Interrupted), Duration::ZERO),
            (emfile, ACCEPT_BACKOFF),
            (io::Error::from(io::ErrorKind::OutOfMemory), ACCEPT_BACKOFF),
            (io::Error::other("anything else"), ACCEPT_BACKOFF),
        ];
        for (error, delay) in cases {
            assert_eq!(accept_retry_delay(&error), delay, "{error}");
        }
    }

    #[test]
    fn pages_escape_provider_text() {
        assert_eq!(
            escape("<script>\"x\" & 'y'"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;"
        );
    }
}
