//! Where credentials live and which provider issues them: `--home`/env/default resolution and
//! the `[provider]` section of `<home>/config.toml`, overridden by flags and environment, and
//! the `[credentials.NAME]` tables of named credentials ([`credentials`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use reqwest::Url;
use serde::Deserialize;

pub const HOME_ENV: &str = "AUTH_APP_SERVER_HOME";
pub const ISSUER_ENV: &str = "AUTH_APP_SERVER_ISSUER";
pub const CLIENT_ID_ENV: &str = "AUTH_APP_SERVER_CLIENT_ID";
pub const PROTECTED_RESOURCE_ENV: &str = "AUTH_APP_SERVER_PROTECTED_RESOURCE";
pub const STORAGE_ENV: &str = "AUTH_APP_SERVER_STORAGE";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("no home folder: pass --home DIR or set {HOME_ENV}")]
    NoHome,
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{path} is not valid: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("provider setting `{field}` is not valid: {reason}")]
    Field { field: &'static str, reason: String },
    #[error("the storage backend {value:?} ({from}) is not valid: use file, keyring or auto")]
    Storage { from: String, value: String },
    /// A `[credentials.NAME]` table of `config.toml` (contract version 3).
    #[error("{table} in config.toml is not valid: {reason}")]
    Credential { table: String, reason: String },
}

pub use crate::store::StorageBackend;

mod credentials;
pub use credentials::{ProviderObject, load_credential_tables};

/// The storage backend: `flag` (`--storage`), else `AUTH_APP_SERVER_STORAGE`, else
/// `[storage] backend` in `<home>/config.toml`, else `file`.
pub fn load_storage(
    home: &Path,
    flag: Option<StorageBackend>,
) -> Result<StorageBackend, ConfigError> {
    if let Some(backend) = flag {
        return Ok(backend);
    }
    if let Some(value) = std::env::var(STORAGE_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        return value.parse().map_err(|()| ConfigError::Storage {
            from: STORAGE_ENV.to_owned(),
            value,
        });
    }
    Ok(read_config_file(home)?
        .storage
        .and_then(|s| s.backend)
        .unwrap_or_default())
}

/// The most `config.toml` may hold; settings take a few hundred bytes.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// `<home>/config.toml`, parsed; empty when there is none. Read as `auth.json` is: a FIFO or
/// a device is refused without waiting on it, and so is a file over [`MAX_CONFIG_BYTES`].
fn read_config_file(home: &Path) -> Result<ConfigFile, ConfigError> {
    let path = home.join("config.toml");
    let unreadable = |reason: String| ConfigError::Unreadable {
        path: path.clone(),
        reason: format!("{reason}; make it a regular TOML file (or delete it)"),
    };
    let bytes = match crate::store::safe_file::read_bounded(&path, MAX_CONFIG_BYTES) {
        Ok(bytes) => bytes,
        Err(e) if crate::store::safe_file::is_absent(&e) => return Ok(ConfigFile::default()),
        Err(e) => return Err(unreadable(e.to_string())),
    };
    let text = String::from_utf8(bytes).map_err(|_| unreadable("it is not UTF-8 text".into()))?;
    toml::from_str::<ConfigFile>(&text).map_err(|e| ConfigError::Invalid {
        path: path.clone(),
        reason: toml_reason(&text, &e),
    })
}

/// The OAuth provider this server signs in with. All URLs are checked: https, or http on a
/// loopback host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    /// `None` when the issuer is to be found from `protected_resource` (RFC 9728).
    pub issuer: Option<Url>,
    /// A protected resource (e.g. an MCP server URL) whose metadata names the issuer.
    pub protected_resource: Option<Url>,
    /// `None`: zero-configuration sign-in, the client_id is obtained at sign-in (a client ID
    /// metadata document or dynamic client registration, see `registration`).
    pub client_id: Option<String>,
    /// The Client ID Metadata Document this app's vendor publishes: its URL is the client_id
    /// at authorization servers that accept such documents.
    pub client_metadata_url: Option<Url>,
    pub scopes: Vec<String>,
    pub authorization_endpoint: Option<Url>,
    pub token_endpoint: Option<Url>,
    pub device_authorization_endpoint: Option<Url>,
    pub revocation_endpoint: Option<Url>,
    /// RFC 8707 resource indicator; defaults to `protected_resource` when that is set.
    pub resource: Option<String>,
    /// A PEM file of certificate authorities trusted besides the platform's (checked when the
    /// configuration is loaded: readable, at least one certificate).
    pub ca_file: Option<PathBuf>,
    /// The loopback port of the browser sign-in's redirect, for authorization servers that
    /// match redirect URIs exactly; `None`: a free port chosen per sign-in.
    pub redirect_port: Option<u16>,
}

impl ProviderConfig {
    /// The provider of credentials that recorded their `issuer` and `client_id`, for when none
    /// is configured: endpoints from discovery, no scopes, no resource.
    pub fn recorded(issuer: Url, client_id: String) -> Self {
        Self {
            issuer: Some(issuer),
            protected_resource: None,
            client_id: Some(client_id),
            client_metadata_url: None,
            scopes: Vec::new(),
            authorization_endpoint: None,
            token_endpoint: None,
            device_authorization_endpoint: None,
            revocation_endpoint: None,
            resource: None,
            ca_file: None,
            redirect_port: None,
        }
    }
}

/// Provider settings from flags or the environment; each one given replaces the file's.
#[derive(Debug, Clone, Default)]
pub struct ProviderOverrides {
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
    pub protected_resource: Option<String>,
}

impl ProviderOverrides {
    /// Flags first, then `AUTH_APP_SERVER_ISSUER` / `AUTH_APP_SERVER_CLIENT_ID`.
    pub fn from_flags_and_env(
        issuer: Option<String>,
        client_id: Option<String>,
        scopes: Vec<String>,
        protected_resource: Option<String>,
    ) -> Self {
        let env = |name| {
            std::env::var(name)
                .ok()
                .filter(|v: &String| !v.trim().is_empty())
        };
        Self {
            issuer: issuer.or_else(|| env(ISSUER_ENV)),
            client_id: client_id.or_else(|| env(CLIENT_ID_ENV)),
            scopes,
            protected_resource: protected_resource.or_else(|| env(PROTECTED_RESOURCE_ENV)),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    provider: Option<ProviderSection>,
    storage: Option<StorageSection>,
    /// `[credentials.NAME]`: the providers of named credentials (contract version 3).
    #[serde(default)]
    credentials: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StorageSection {
    backend: Option<StorageBackend>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderSection {
    issuer: Option<String>,
    client_id: Option<String>,
    client_metadata_url: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    device_authorization_endpoint: Option<String>,
    revocation_endpoint: Option<String>,
    resource: Option<String>,
    protected_resource: Option<String>,
    ca_file: Option<PathBuf>,
    redirect_port: Option<u16>,
}

/// The credentials folder: `--home`, else `AUTH_APP_SERVER_HOME`, else the platform config
/// folder (Linux: `~/.config/auth-app-server`).
pub fn resolve_home(flag: Option<PathBuf>) -> Result<PathBuf, ConfigError> {
    if let Some(home) = flag {
        return Ok(home);
    }
    if let Some(home) = std::env::var_os(HOME_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(home));
    }
    directories::ProjectDirs::from("", "", "auth-app-server")
        .map(|dirs| dirs.config_dir().to_path_buf())
        .ok_or(ConfigError::NoHome)
}

/// The provider from `<home>/config.toml` and the overrides; `Ok(None)` when none is configured
/// at all (API keys still work).
pub fn load_provider(
    home: &Path,
    overrides: &ProviderOverrides,
) -> Result<Option<ProviderConfig>, ConfigError> {
    let file = read_config_file(home)?;
    // Never used: said here, where the default credential's provider is read (at start).
    if file.credentials.contains_key(credentials::DEFAULT) {
        tracing::error!(error = %credentials::default_table_error(), "a [credentials.*] table of config.toml is ignored");
    }
    provider_from(home, file.provider.unwrap_or_default(), overrides)
}

/// `section` with the overrides applied, checked; `Ok(None)` when it names no provider.
fn provider_from(
    home: &Path,
    section: ProviderSection,
    overrides: &ProviderOverrides,
) -> Result<Option<ProviderConfig>, ConfigError> {
    let issuer = overrides.issuer.clone().or(section.issuer);
    let protected_resource = overrides
        .protected_resource
        .clone()
        .or(section.protected_resource);
    let client_id = overrides.client_id.clone().or(section.client_id);
    let named_issuer = issuer.is_some() || protected_resource.is_some();
    // Without a client_id, one is obtained at sign-in (zero-configuration sign-in).
    match (named_issuer, &client_id, &section.client_metadata_url) {
        (false, None, None) => return Ok(None),
        (false, Some(_), _) => {
            return Err(field_error(
                "issuer",
                "missing: set `issuer` (or `protected_resource`) next to `client_id`",
            ));
        }
        (false, None, Some(_)) => {
            return Err(field_error(
                "issuer",
                "missing: set `issuer` (or `protected_resource`) next to `client_metadata_url`",
            ));
        }
        (true, _, _) => {}
    }
    if client_id.as_ref().is_some_and(|id| id.trim().is_empty()) {
        return Err(field_error(
            "client_id",
            "empty: set it, or leave it out to have one obtained at sign-in",
        ));
    }
    let client_metadata_url = section
        .client_metadata_url
        .map(|url| client_metadata_url(&url))
        .transpose()?;
    let scopes = if overrides.scopes.is_empty() {
        section.scopes
    } else {
        overrides.scopes.clone()
    };
    let optional =
        |field, value: Option<String>| value.map(|v| provider_url(field, &v)).transpose();
    let protected_resource = optional("protected_resource", protected_resource)?;
    let resource = section
        .resource
        .or_else(|| protected_resource.as_ref().map(Url::to_string));
    // Relative to the home folder, where config.toml is.
    let ca_file = section.ca_file.map(|path| home.join(path));
    if let Some(path) = &ca_file {
        crate::pem::load_pem_bundle(path).map_err(|reason| field_error("ca_file", &reason))?;
    }
    if section.redirect_port == Some(0) {
        return Err(field_error(
            "redirect_port",
            "0 is not a port: set 1 to 65535, or leave it out for a free port per sign-in",
        ));
    }
    Ok(Some(ProviderConfig {
        issuer: optional("issuer", issuer)?,
        protected_resource,
        client_id,
        client_metadata_url,
        scopes,
        authorization_endpoint: optional("authorization_endpoint", section.authorization_endpoint)?,
        token_endpoint: optional("token_endpoint", section.token_endpoint)?,
        device_authorization_endpoint: optional(
            "device_authorization_endpoint",
            section.device_authorization_endpoint,
        )?,
        revocation_endpoint: optional("revocation_endpoint", section.revocation_endpoint)?,
        resource,
        ca_file,
        redirect_port: section.redirect_port,
    }))
}

/// The parser's message with the line and column (both from 1) where it stopped, so that a
/// person can find the mistake; never the text there.
fn toml_reason(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim_end();
    match error.span() {
        Some(span) => {
            let (line, column) = line_and_column(text, span.start);
            format!("line {line}, column {column}: {message}")
        }
        None => message.to_owned(),
    }
}

/// 1-based line and column (in characters) of byte `offset` of `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn field_error(field: &'static str, reason: &str) -> ConfigError {
    ConfigError::Field {
        field,
        reason: reason.to_owned(),
    }
}

/// The longest provider URL accepted (configured, or named by a provider's metadata).
pub const MAX_URL_BYTES: usize = 2048;

/// Parses a provider URL of at most [`MAX_URL_BYTES`] and requires https, except on loopback
/// hosts.
pub fn provider_url(field: &'static str, value: &str) -> Result<Url, ConfigError> {
    if value.trim().len() > MAX_URL_BYTES {
        return Err(field_error(
            field,
            &format!("is longer than {MAX_URL_BYTES} bytes"),
        ));
    }
    let url =
        Url::parse(value.trim()).map_err(|e| field_error(field, &format!("not a URL ({e})")))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(field_error(
            field,
            "must use https (plain http is allowed only for 127.0.0.1, ::1 and localhost)",
        )),
        other => Err(field_error(
            field,
            &format!("unsupported scheme `{other}`; use https"),
        )),
    }
}

/// A Client ID Metadata Document URL: a provider URL (https, or http on a loopback host) with
/// a path (the document is a file the vendor publishes, and its URL is the client_id) and no
/// fragment.
fn client_metadata_url(value: &str) -> Result<Url, ConfigError> {
    let url = provider_url("client_metadata_url", value)?;
    if url.path() == "/" || url.fragment().is_some() {
        return Err(field_error(
            "client_metadata_url",
            "must name the document itself: an https URL with a path (e.g. https://app.example.com/oauth/client.json) and no #fragment",
        ));
    }
    Ok(url)
}

/// 127.0.0.0/8, ::1 and localhost.
pub fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home_with(config: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        dir
    }

    #[test]
    fn https_is_required_except_on_loopback() {
        for ok in [
            "https://id.example.com",
            "http://127.0.0.1:8080",
            "http://127.5.0.1",
            "http://[::1]:9",
            "http://localhost:1",
        ] {
            assert!(provider_url("issuer", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://id.example.com",
            "http://10.0.0.1",
            "ftp://127.0.0.1",
            "not a url",
        ] {
            assert!(provider_url("issuer", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_override_the_file_field_by_field() {
        let home = home_with(
            "[provider]\nissuer = \"https://file.example\"\nclient_id = \"file-client\"\nscopes = [\"a\"]\nresource = \"https://api\"\n",
        );
        let overrides = ProviderOverrides {
            client_id: Some("flag-client".into()),
            ..Default::default()
        };
        let provider = load_provider(home.path(), &overrides).unwrap().unwrap();
        assert_eq!(provider.issuer.unwrap().as_str(), "https://file.example/");
        assert_eq!(provider.client_id.as_deref(), Some("flag-client"));
        assert_eq!(provider.scopes, ["a"]);
        assert_eq!(provider.resource.as_deref(), Some("https://api"));
    }

    #[test]
    fn no_provider_is_not_an_error_but_half_a_provider_is() {
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(
            load_provider(empty.path(), &ProviderOverrides::default()).unwrap(),
            None
        );
        let half = ProviderOverrides {
            client_id: Some("c".into()),
            ..Default::default()
        };
        assert!(matches!(
            load_provider(empty.path(), &half),
            Err(ConfigError::Field {
                field: "issuer",
                ..
            })
        ));
        let half = home_with("[provider]\nclient_metadata_url = \"https://app.example/c.json\"\n");
        let error = load_provider(half.path(), &ProviderOverrides::default()).unwrap_err();
        assert!(
            error.to_string().contains("next to `client_metadata_url`"),
            "{error}"
        );
    }

    #[test]
    fn without_a_client_id_one_is_obtained_at_sign_in() {
        for given in [
            "issuer = \"https://i.example\"",
            "protected_resource = \"https://api.example.com/mcp\"",
        ] {
            let home = home_with(&format!("[provider]\n{given}\n"));
            let provider = load_provider(home.path(), &ProviderOverrides::default())
                .unwrap()
                .unwrap();
            assert_eq!(provider.client_id, None, "{given}");
            assert_eq!(provider.client_metadata_url, None, "{given}");
        }
        let home = home_with("[provider]\nissuer = \"https://i.example\"\nclient_id = \" \"\n");
        let error = load_provider(home.path(), &ProviderOverrides::default()).unwrap_err();
        assert!(error.to_string().contains("empty"), "{error}");
    }

    #[test]
    fn client_metadata_url_is_an_https_document_address() {
        let cases = [
            ("https://app.example.com/oauth/client.json", true),
            ("http://127.0.0.1:8080/client.json", true),
            ("http://app.example.com/oauth/client.json", false),
            ("https://app.example.com/", false),
            ("https://app.example.com", false),
            ("https://app.example.com/c.json#x", false),
            ("not a url", false),
        ];
        for (url, ok) in cases {
            let home = home_with(&format!(
                "[provider]\nissuer = \"https://i.example\"\nclient_metadata_url = \"{url}\"\n"
            ));
            let loaded = load_provider(home.path(), &ProviderOverrides::default());
            match loaded {
                Ok(provider) if ok => {
                    assert_eq!(provider.unwrap().client_metadata_url.unwrap().as_str(), url)
                }
                Err(ConfigError::Field {
                    field: "client_metadata_url",
                    ..
                }) if !ok => {}
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_protected_resource_can_stand_for_the_issuer_and_is_the_default_resource() {
        let home = home_with(
            "[provider]\nclient_id = \"c\"\nprotected_resource = \"https://api.example.com/mcp\"\n",
        );
        let provider = load_provider(home.path(), &ProviderOverrides::default())
            .unwrap()
            .unwrap();
        assert_eq!(provider.issuer, None);
        assert_eq!(
            provider.resource.as_deref(),
            Some("https://api.example.com/mcp")
        );
    }

    #[test]
    fn redirect_port_is_a_port() {
        let cases = [
            ("8976", Some(8976)),
            ("0", None),
            ("70000", None),
            ("\"8976\"", None),
        ];
        for (value, expected) in cases {
            let home = home_with(&format!(
                "[provider]\nissuer = \"https://i.example\"\nclient_id = \"c\"\nredirect_port = {value}\n"
            ));
            let loaded = load_provider(home.path(), &ProviderOverrides::default());
            match expected {
                Some(port) => assert_eq!(loaded.unwrap().unwrap().redirect_port, Some(port)),
                None => assert!(loaded.is_err(), "{value}"),
            }
        }
    }

    #[test]
    fn ca_file_is_relative_to_the_home_and_must_hold_a_certificate() {
        let home = home_with(
            "[provider]\nissuer = \"https://i.example\"\nclient_id = \"c\"\nca_file = \"corp-ca.pem\"\n",
        );
        let error = load_provider(home.path(), &ProviderOverrides::default()).unwrap_err();
        assert!(
            matches!(&error, ConfigError::Field { field: "ca_file", reason } if reason.contains("cannot read")),
            "{error}"
        );
        std::fs::write(home.path().join("corp-ca.pem"), "not a certificate").unwrap();
        let error = load_provider(home.path(), &ProviderOverrides::default()).unwrap_err();
        assert!(error.to_string().contains("no PEM certificate"), "{error}");
    }

    #[test]
    fn typos_and_insecure_endpoints_in_the_file_are_reported() {
        let typo = home_with("[provider]\nissuer = \"https://i\"\nclient-id = \"c\"\n");
        let error = load_provider(typo.path(), &ProviderOverrides::default()).unwrap_err();
        assert!(error.to_string().contains("client-id"), "{error}");
        let insecure = home_with(
            "[provider]\nissuer = \"https://i\"\nclient_id = \"c\"\ntoken_endpoint = \"http://i/token\"\n",
        );
        let error = load_provider(insecure.path(), &ProviderOverrides::default()).unwrap_err();
        assert!(
            matches!(
                error,
                ConfigError::Field {
                    field: "token_endpoint",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn syntax_errors_and_unknown_keys_say_where_they_are() {
        let cases = [
            (
                "[provider]\nissuer = \"https://i\"\nclient-id = \"c\"\n",
                "line 3, column 1: ",
            ),
            (
                "# é\n[provider]\nissuer = https://i\n",
                "line 3, column 10: ",
            ),
            ("[provider\n", "line 1, column 10: "),
        ];
        for (config, place) in cases {
            let home = home_with(config);
            let error = load_provider(home.path(), &ProviderOverrides::default()).unwrap_err();
            assert!(
                matches!(&error, ConfigError::Invalid { reason, .. } if reason.starts_with(place)),
                "{config:?}: {error}"
            );
        }
        assert_eq!(line_and_column("ab\ncé\nx", 6), (2, 3));
        assert_eq!(line_and_column("ab\ncé\nx", 7), (3, 1));
        assert_eq!(line_and_column("", 5), (1, 1));
    }

    #[test]
    fn the_storage_backend_comes_from_the_flag_then_the_file_and_is_file_by_default() {
        // (AUTH_APP_SERVER_STORAGE is not set by the test runner.)
        let home = home_with("[storage]\nbackend = \"keyring\"\n");
        assert_eq!(
            load_storage(home.path(), None).unwrap(),
            StorageBackend::Keyring
        );
        assert_eq!(
            load_storage(home.path(), Some(StorageBackend::Auto)).unwrap(),
            StorageBackend::Auto
        );
        let plain = home_with("[provider]\n");
        assert_eq!(
            load_storage(plain.path(), None).unwrap(),
            StorageBackend::File
        );
        let bad = home_with("[storage]\nbackend = \"vault\"\n");
        let error = load_storage(bad.path(), None).unwrap_err();
        assert!(error.to_string().contains("line 2"), "{error}");
        // The provider section still loads next to a storage section.
        assert!(load_provider(home.path(), &ProviderOverrides::default()).is_ok());
        assert_eq!("auto".parse(), Ok(StorageBackend::Auto));
        assert_eq!("vault".parse::<StorageBackend>(), Err(()));
    }
}
