//! The browser flow: authorization code with PKCE, answered on a one-shot loopback listener
//! `http://127.0.0.1:<port>/callback` (RFC 8252 §7.3). A callback with a missing or wrong
//! `state` is answered 400 and ignored; one whose `iss` names another issuer (or lacks the
//! `iss` the metadata promises, RFC 9207) ends the login without exchanging its code; the
//! listener closes after success, an `error=` callback, a refused `iss`, cancel or the timeout.

use std::convert::Infallible;
use std::io;
use std::sync::Arc;
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
use super::{CancelSignal, LoginStart, exchange_failure, login_timeout};
use crate::error::AuthError;
use crate::manager::AuthManager;
use crate::provider::ProviderClient;
use crate::secret::Secret;

/// How long one browser connection may stay open.
const CONNECTION_LIMIT: Duration = Duration::from_secs(30);
/// The pause before accepting again when the system lacks resources.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What a browser brought to the listener.
enum Callback {
    Code {
        code: Secret,
        done: oneshot::Sender<Result<(), String>>,
    },
    Refused {
        error: String,
    },
}

pub(super) async fn start(
    manager: Arc<AuthManager>,
    client: Arc<ProviderClient>,
    scopes: Vec<String>,
) -> Result<LoginStart, AuthError> {
    let endpoints = client.endpoints().await.map_err(AuthError::from)?;
    let (Some(authorization), Some(token)) = (endpoints.authorization, endpoints.token) else {
        return Err(AuthError::ProviderUnavailable(
            "the provider has no authorization or token endpoint: configure them in config.toml, or use login type \"deviceCode\"".into(),
        ));
    };
    pkce::check_methods(endpoints.code_challenge_methods.as_deref())
        .map_err(AuthError::ProviderUnavailable)?;
    // Responses are checked against the issuer as discovery recorded it (RFC 9207).
    let issuer = client.issuer_identifier().await.map_err(AuthError::from)?;
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.map_err(|e| {
        AuthError::ProviderUnavailable(format!(
            "cannot listen on 127.0.0.1 for the sign-in redirect: {e}"
        ))
    })?;
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
        &redirect_uri,
        &pkce.challenge,
        check.state().expose(),
        &scopes,
    );

    let (login_id, cancel) = manager.register_login();
    let flow = Flow {
        client,
        token_endpoint: token,
        redirect_uri,
        verifier: pkce.verifier,
        scopes,
    };
    let id = login_id.clone();
    tokio::spawn(async move {
        let result = run(&manager, flow, listener, check, cancel).await;
        manager.finish_login(&id, result);
    });
    Ok(LoginStart::Oauth {
        login_id,
        auth_url: auth_url.to_string(),
    })
}

fn authorization_url(
    endpoint: &Url,
    client: &ProviderClient,
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
            .append_pair("client_id", &config.client_id)
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
    token_endpoint: Url,
    redirect_uri: String,
    verifier: Secret,
    /// What the authorization request asked for.
    scopes: Vec<String>,
}

/// Serves callbacks until the login ends one way or another; the listener closes on return.
async fn run(
    manager: &AuthManager,
    flow: Flow,
    listener: TcpListener,
    check: ResponseCheck,
    mut cancel: CancelSignal,
) -> Result<(), String> {
    let (callbacks, mut received) = mpsc::channel(4);
    let serving = accept_loop(listener, Arc::new(check), callbacks);
    let outcome = async {
        match received.recv().await {
            Some(Callback::Code { code, done }) => {
                let result = exchange(manager, &flow, &code).await;
                let _ = done.send(result.clone());
                result
            }
            Some(Callback::Refused { error }) => Err(error),
            None => Err("the sign-in listener stopped".to_owned()),
        }
    };
    let timeout = login_timeout();
    tokio::select! {
        reason = &mut cancel => Err(reason.unwrap_or("the sign-in was canceled").to_owned()),
        () = tokio::time::sleep(timeout) => Err(format!(
            "the sign-in timed out after {} s without an answer from the browser: start it again", timeout.as_secs()
        )),
        result = outcome => result,
        never = serving => match never {},
    }
}

async fn exchange(manager: &AuthManager, flow: &Flow, code: &Secret) -> Result<(), String> {
    let config = flow.client.config();
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.expose()),
        ("redirect_uri", flow.redirect_uri.as_str()),
        ("client_id", config.client_id.as_str()),
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
    manager
        .store_login(&flow.client, tokens, &flow.scopes)
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
async fn accept_loop(
    listener: TcpListener,
    check: Arc<ResponseCheck>,
    callbacks: mpsc::Sender<Callback>,
) -> Infallible {
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
        let (check, callbacks) = (check.clone(), callbacks.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let (check, callbacks) = (check.clone(), callbacks.clone());
                async move { Ok::<_, Infallible>(answer(request, &check, &callbacks).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIMIT, connection).await;
        });
    }
}

async fn answer(
    request: Request<Incoming>,
    check: &ResponseCheck,
    callbacks: &mpsc::Sender<Callback>,
) -> Response<Full<Bytes>> {
    if request.method() != hyper::Method::GET || request.uri().path() != "/callback" {
        return page(
            StatusCode::NOT_FOUND,
            "Not found",
            "This address only receives the sign-in redirect.",
        );
    }
    let code = match check.judge(&query_pairs(request.uri().query())) {
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
            let _ = callbacks.send(Callback::Refused { error }).await;
            return page(StatusCode::BAD_REQUEST, "Sign-in refused", &shown);
        }
        Verdict::ProviderError(error) => {
            let shown = format!("{error}. You can close this window and start again from the app.");
            let _ = callbacks.send(Callback::Refused { error }).await;
            return page(StatusCode::OK, "Sign-in not completed", &shown);
        }
        Verdict::Code(code) => code,
    };
    let (done, result) = oneshot::channel();
    if callbacks.send(Callback::Code { code, done }).await.is_err() {
        return page(
            StatusCode::GONE,
            "Sign-in already finished",
            "You can close this window.",
        );
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
