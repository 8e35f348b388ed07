//! Zero-configuration sign-in: which client_id a browser sign-in uses when none is
//! configured, and obtaining one. The order is the MCP authorization specification's: the
//! configured client_id; else the Client ID Metadata Document URL (`[provider]
//! client_metadata_url`) when the authorization server says it accepts such documents; else
//! the client registered earlier for this issuer ([`file`]); else a new dynamic client
//! registration (RFC 7591, [`request`]). [`choose`] decides (pure); [`obtain`] carries it out.
//!
//! A registration is made under `auth.json.lock`, so processes signing in at once make one:
//! the others find it when they get the lock. After `invalid_client` on a refresh with a
//! registered client, [`replace_rejected`] registers once more (never in a loop: only when
//! the stored registration is still the rejected one).

pub mod file;
pub(crate) mod request;

use std::time::Duration;

use reqwest::Url;

use crate::error::AuthError;
use crate::provider::text::shown;
use crate::provider::{Endpoints, ProviderClient, describe_transport};
use crate::store::{AuthStore, WriteLock, off_runtime};
use crate::time;

pub use file::{Registration, RegistrationFile, Registrations};

/// The `client_name` registered when the client did not say its name (terminal commands).
pub const DEFAULT_CLIENT_NAME: &str = "auth-app-server";

/// Who this app is at the authorization server, for one sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientIdentity {
    /// `client_id` from the configuration.
    Configured(String),
    /// The URL of the app's Client ID Metadata Document is its client_id.
    MetadataDocument(Url),
    /// Registered by this app (RFC 7591), stored in `registrations.json`.
    Registered(Registration),
}

impl ClientIdentity {
    pub fn client_id(&self) -> &str {
        match self {
            Self::Configured(id) => id,
            Self::MetadataDocument(url) => url.as_str(),
            Self::Registered(registration) => &registration.client_id,
        }
    }

    /// The loopback port a sign-in with this client prefers (see
    /// [`Registration::redirect_port`]).
    pub fn redirect_port(&self) -> Option<u16> {
        match self {
            Self::Registered(registration) => registration.redirect_port(),
            Self::Configured(_) | Self::MetadataDocument(_) => None,
        }
    }
}

/// What the authorization server's metadata offers for obtaining a client_id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offer {
    pub metadata_document_supported: bool,
    pub registration_endpoint: Option<Url>,
}

impl Offer {
    pub fn of(metadata: &Endpoints) -> Self {
        Self {
            metadata_document_supported: metadata.client_id_metadata_document_supported,
            registration_endpoint: metadata.registration.clone(),
        }
    }
}

/// What [`choose`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Use(ClientIdentity),
    /// Register a new client at this endpoint.
    Register(Url),
    /// None of the three ways is available; why, for each.
    NoWay(String),
}

/// The client_id of a browser sign-in: `configured`; else `metadata_url` when the server
/// accepts metadata documents; else `stored` when it fits the redirect and has not expired;
/// else a registration when the server has an endpoint for it.
pub fn choose(
    configured: Option<&str>,
    metadata_url: Option<&Url>,
    offer: &Offer,
    stored: Option<&Registration>,
    redirect_uris: &[String],
    now: i64,
) -> Choice {
    if let Some(id) = configured {
        return Choice::Use(ClientIdentity::Configured(id.to_owned()));
    }
    if let (Some(url), true) = (metadata_url, offer.metadata_document_supported) {
        return Choice::Use(ClientIdentity::MetadataDocument(url.clone()));
    }
    if let Some(registration) = stored.filter(|r| r.fits(redirect_uris, now)) {
        return Choice::Use(ClientIdentity::Registered(registration.clone()));
    }
    match &offer.registration_endpoint {
        Some(endpoint) => Choice::Register(endpoint.clone()),
        None => Choice::NoWay(tried(
            metadata_url,
            offer,
            "the authorization server's metadata has no registration_endpoint",
        )),
    }
}

/// The three ways, and why each gave no client_id, in one sentence part.
fn tried(metadata_url: Option<&Url>, offer: &Offer, registration: &str) -> String {
    let document = match (metadata_url, offer.metadata_document_supported) {
        (None, true) => {
            "the authorization server accepts them, but no `client_metadata_url` is set"
        }
        (None, false) => {
            "no `client_metadata_url` is set, and the authorization server's metadata does not offer them"
        }
        (Some(_), _) => {
            "`client_metadata_url` is set, but the authorization server's metadata does not say client_id_metadata_document_supported: true"
        }
    };
    format!(
        "configured client_id: none is set; client ID metadata document: {document}; dynamic client registration: {registration}"
    )
}

const WHAT_TO_DO: &str = "register this app with the provider and set `client_id` in the [provider] section of config.toml (or pass --client-id)";

/// The redirect a sign-in needs registered: loopback without a port (RFC 8252 §7.3: any port
/// is accepted), or with `[provider] redirect_port` for servers that match them exactly.
pub fn redirect_uris(redirect_port: Option<u16>) -> Vec<String> {
    vec![match redirect_port {
        Some(port) => format!("http://127.0.0.1:{port}/callback"),
        None => "http://127.0.0.1/callback".to_owned(),
    }]
}

/// The redirect URIs a new registration asks for: those of [`redirect_uris`] and, when no port
/// is pinned, the same with `sticky_port` too. Authorization servers that follow RFC 8252
/// accept the port-less one with any port; those that match exactly (the MCP TypeScript
/// SDK's example server does) accept sign-ins that listen on `sticky_port`, which every
/// sign-in with this registration tries first.
pub fn registered_redirect_uris(redirect_port: Option<u16>, sticky_port: u16) -> Vec<String> {
    let mut uris = redirect_uris(redirect_port);
    if redirect_port.is_none() {
        uris.push(format!("http://127.0.0.1:{sticky_port}/callback"));
    }
    uris
}

/// A loopback port free now, for [`registered_redirect_uris`].
fn free_loopback_port() -> Result<u16, AuthError> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|e| {
            AuthError::ProviderUnavailable(format!(
                "cannot listen on 127.0.0.1 for the sign-in redirect: {e}"
            ))
        })
}

/// The client_id of a browser sign-in with `client`, obtained as [`choose`] says. A new
/// registration is stored only once it succeeded; a failure stores nothing and says which
/// step failed.
pub(crate) async fn obtain(
    client: &ProviderClient,
    store: &AuthStore,
    client_name: &str,
    lock_timeout: Duration,
) -> Result<ClientIdentity, AuthError> {
    let config = client.config();
    if let Some(id) = &config.client_id {
        return Ok(ClientIdentity::Configured(id.clone()));
    }
    let metadata = client.discovered_metadata().await.map_err(|error| {
        AuthError::ProviderUnavailable(format!(
            "no client_id is configured, and none can be obtained: {error}"
        ))
    })?;
    let issuer = client.issuer_identifier().await?;
    let offer = Offer::of(&metadata);
    let redirect_uris = redirect_uris(config.redirect_port);
    let file = RegistrationFile::of(store);
    let reading = file.clone();
    let stored = match off_runtime(move || reading.load()).await {
        Ok(mut all) => all.registrations.remove(&issuer),
        Err(why) => {
            tracing::warn!(%why, "the registrations file cannot be read");
            None
        }
    };
    let now = time::now_unix();
    let choice = choose(
        None,
        config.client_metadata_url.as_ref(),
        &offer,
        stored.as_ref(),
        &redirect_uris,
        now,
    );
    let endpoint = match choice {
        Choice::Use(identity) => {
            tracing::info!(%issuer, client_id = %shown(identity.client_id()), way = way(&identity), "client_id obtained without configuration");
            return Ok(identity);
        }
        Choice::NoWay(tried) => {
            return Err(AuthError::ProviderUnavailable(format!(
                "no client_id to sign in to {issuer} with, and none could be obtained ({tried}): {WHAT_TO_DO}"
            )));
        }
        Choice::Register(endpoint) => endpoint,
    };
    // A registration may take a whole HTTP timeout in the process holding the lock.
    let lock = store
        .lock_within(lock_timeout + client.timeout())
        .await
        .map_err(AuthError::Unwritable)?;
    let mut all = load_for_update(&file, &lock).await;
    if let Some(fresh) = all
        .registrations
        .get(&issuer)
        .filter(|r| r.fits(&redirect_uris, now))
    {
        tracing::info!(%issuer, client_id = %shown(&fresh.client_id), "another process registered a client meanwhile; using it");
        return Ok(ClientIdentity::Registered(fresh.clone()));
    }
    let registered_uris = registered_redirect_uris(config.redirect_port, free_loopback_port()?);
    let registration = register(client, &endpoint, client_name, &registered_uris)
        .await
        .map_err(|why| {
            let tried = tried(config.client_metadata_url.as_ref(), &offer, "failed");
            AuthError::ProviderUnavailable(format!(
                "cannot sign in to {issuer} without a configured client_id: dynamic client registration at {endpoint} failed: {why}. Nothing was stored. Tried: {tried}. Try again, or {WHAT_TO_DO}"
            ))
        })?;
    all.registrations
        .insert(issuer.clone(), registration.clone());
    write(&file, &lock, all).await.map_err(|source| {
        AuthError::Unwritable(crate::store::StoreError {
            action: "write",
            path: file.path().to_path_buf(),
            source,
            keyring: false,
        })
    })?;
    tracing::info!(%issuer, client_id = %shown(&registration.client_id), "client registered (RFC 7591) and stored");
    Ok(ClientIdentity::Registered(registration))
}

/// [`RegistrationFile::load_for_update`] on a blocking thread (`lock` stays held until it ends).
async fn load_for_update(file: &RegistrationFile, lock: &WriteLock) -> Registrations {
    let (file, lock) = (file.clone(), lock.share());
    off_runtime(move || file.load_for_update(&lock)).await
}

/// [`RegistrationFile::write`] on a blocking thread (`lock` stays held until it ends).
async fn write(
    file: &RegistrationFile,
    lock: &WriteLock,
    all: Registrations,
) -> std::io::Result<()> {
    let (file, lock) = (file.clone(), lock.share());
    off_runtime(move || file.write(&lock, &all)).await
}

fn way(identity: &ClientIdentity) -> &'static str {
    match identity {
        ClientIdentity::Configured(_) => "configured",
        ClientIdentity::MetadataDocument(_) => "client ID metadata document",
        ClientIdentity::Registered(_) => "stored registration",
    }
}

/// One RFC 7591 registration at `endpoint`; the error says why it failed.
async fn register(
    client: &ProviderClient,
    endpoint: &Url,
    client_name: &str,
    redirect_uris: &[String],
) -> Result<Registration, String> {
    let body = request::registration_request(client_name, redirect_uris);
    let (status, answer) = client
        .post_json(endpoint, &body)
        .await
        .map_err(|failure| format!("the request {}", transport_words(failure)))?;
    let registered = request::parse_registration_response(status, &answer)?;
    if registered.secret_dropped {
        tracing::info!(
            "the registration answer carried a secret although a public client was asked for; it was dropped"
        );
    }
    Ok(Registration {
        client_id: registered.client_id,
        registered_at: time::now_rfc3339(),
        registration_endpoint: endpoint.to_string(),
        redirect_uris: redirect_uris.to_vec(),
        client_name: client_name.to_owned(),
        client_id_issued_at: registered.client_id_issued_at,
        client_id_expires_at: registered.client_id_expires_at,
    })
}

fn transport_words(failure: crate::provider::classify::TransportFailure) -> String {
    match describe_transport(failure) {
        "timed out" => "timed out (no answer within the HTTP timeout)".to_owned(),
        other => other.to_owned(),
    }
}

/// What [`replace_rejected`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Replacement {
    /// The rejected client_id is not a stored registration: nothing to replace.
    NotRegistered,
    /// Another process replaced it already.
    AlreadyReplaced,
    Replaced(String),
    /// The registration was dropped; registering anew failed (the next sign-in tries again).
    Failed(String),
}

/// The provider answered `invalid_client` to `rejected` (issued by `issuer`): when that is
/// still the stored registration, drop it and register once more with the same name and
/// redirect. Runs under `auth.json.lock` (held by the refresh).
pub(crate) async fn replace_rejected(
    client: &ProviderClient,
    store: &AuthStore,
    lock: &WriteLock,
    issuer: &str,
    rejected: &str,
) -> Replacement {
    let file = RegistrationFile::of(store);
    let mut all = load_for_update(&file, lock).await;
    let Some(old) = all.registrations.get(issuer).cloned() else {
        return Replacement::NotRegistered;
    };
    if old.client_id != rejected {
        return Replacement::AlreadyReplaced;
    }
    tracing::warn!(%issuer, client_id = %shown(&old.client_id), "the provider no longer accepts the registered client; registering a new one");
    all.registrations.remove(issuer);
    let outcome = match Url::parse(&old.registration_endpoint) {
        Ok(endpoint) => register(client, &endpoint, &old.client_name, &old.redirect_uris).await,
        Err(_) => Err("the stored registration endpoint is not a URL".to_owned()),
    };
    let replacement = match outcome {
        Ok(new) => {
            let id = new.client_id.clone();
            all.registrations.insert(issuer.to_owned(), new);
            Replacement::Replaced(id)
        }
        Err(why) => Replacement::Failed(why),
    };
    if let Err(error) = write(&file, lock, all).await {
        tracing::error!(%error, "cannot store the replaced client registration");
    }
    replacement
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(redirect: &str) -> Registration {
        Registration {
            client_id: "reg-1".into(),
            registered_at: "2026-01-01T00:00:00Z".into(),
            registration_endpoint: "https://as.example/register".into(),
            redirect_uris: vec![redirect.into()],
            client_name: "Editor".into(),
            client_id_issued_at: None,
            client_id_expires_at: None,
        }
    }

    #[test]
    fn the_order_is_configured_document_stored_registration() {
        let doc = Url::parse("https://app.example/client.json").unwrap();
        let endpoint = Url::parse("https://as.example/register").unwrap();
        let both = Offer {
            metadata_document_supported: true,
            registration_endpoint: Some(endpoint.clone()),
        };
        let registration_only = Offer {
            metadata_document_supported: false,
            registration_endpoint: Some(endpoint.clone()),
        };
        let nothing = Offer::default();
        let here = redirect_uris(None);
        let fits = stored("http://127.0.0.1/callback");
        let other_port = stored("http://127.0.0.1:8976/callback");
        let configured = ClientIdentity::Configured("c".into());
        let document = ClientIdentity::MetadataDocument(doc.clone());
        let registered = ClientIdentity::Registered(fits.clone());
        let cases = [
            (
                Some("c"),
                Some(&doc),
                &both,
                Some(&fits),
                Choice::Use(configured),
            ),
            (None, Some(&doc), &both, Some(&fits), Choice::Use(document)),
            (
                None,
                None,
                &both,
                Some(&fits),
                Choice::Use(registered.clone()),
            ),
            (
                None,
                Some(&doc),
                &registration_only,
                Some(&fits),
                Choice::Use(registered),
            ),
            (
                None,
                Some(&doc),
                &registration_only,
                None,
                Choice::Register(endpoint.clone()),
            ),
            (
                None,
                None,
                &both,
                Some(&other_port),
                Choice::Register(endpoint.clone()),
            ),
        ];
        for (configured, url, offer, stored, expected) in cases {
            assert_eq!(
                choose(configured, url, offer, stored, &here, 0),
                expected,
                "{configured:?} {url:?} {offer:?} {stored:?}"
            );
        }
        let Choice::NoWay(why) = choose(None, None, &nothing, None, &here, 0) else {
            panic!("no way")
        };
        for part in [
            "configured client_id: none is set",
            "client ID metadata document: no `client_metadata_url` is set",
            "dynamic client registration: the authorization server's metadata has no registration_endpoint",
        ] {
            assert!(why.contains(part), "{why}");
        }
        let Choice::NoWay(why) = choose(None, Some(&doc), &nothing, None, &here, 0) else {
            panic!("no way")
        };
        assert!(
            why.contains("does not say client_id_metadata_document_supported: true"),
            "{why}"
        );
    }

    #[test]
    fn the_redirect_has_a_port_only_when_one_is_pinned() {
        assert_eq!(redirect_uris(None), ["http://127.0.0.1/callback"]);
        assert_eq!(
            redirect_uris(Some(8976)),
            ["http://127.0.0.1:8976/callback"]
        );
    }

    #[test]
    fn a_registration_also_names_a_sticky_port_unless_one_is_pinned() {
        let uris = registered_redirect_uris(None, 40123);
        assert_eq!(
            uris,
            [
                "http://127.0.0.1/callback",
                "http://127.0.0.1:40123/callback"
            ]
        );
        assert_eq!(
            registered_redirect_uris(Some(8976), 40123),
            ["http://127.0.0.1:8976/callback"]
        );
        let mut registration = stored("http://127.0.0.1/callback");
        assert_eq!(registration.redirect_port(), None);
        registration.redirect_uris = uris;
        assert_eq!(registration.redirect_port(), Some(40123));
        assert!(registration.fits(&redirect_uris(None), 0));
        assert!(!registration.fits(&redirect_uris(Some(40123)), 0));
        let pinned = stored("http://127.0.0.1:8976/callback");
        assert_eq!(pinned.redirect_port(), Some(8976));
        assert!(pinned.fits(&redirect_uris(Some(8976)), 0));
        assert!(!pinned.fits(&redirect_uris(None), 0));
    }
}
