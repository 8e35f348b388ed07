//! What an authorization server's metadata document (RFC 8414 / OpenID) says, parsed
//! strictly where it matters (the issuer it names, https endpoints) and leniently elsewhere:
//! the [`Endpoints`] of a provider, and the rule for URLs a document names.

use reqwest::Url;
use serde::Deserialize;

use super::text::shown;
use crate::config::{is_loopback, provider_url};

/// The provider's endpoints, from config or discovery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// The issuer identifier exactly as the metadata states it (recorded in `auth.json`).
    pub issuer: Option<String>,
    pub authorization: Option<Url>,
    pub token: Option<Url>,
    pub device_authorization: Option<Url>,
    pub revocation: Option<Url>,
    /// RFC 9207: the metadata promises `iss` in every authorization response
    /// (`authorization_response_iss_parameter_supported: true`).
    pub iss_parameter_supported: bool,
    /// `code_challenge_methods_supported` as the metadata lists it; `None` when it does not
    /// (Entra ID omits it).
    pub code_challenge_methods: Option<Vec<String>>,
    /// RFC 7591 dynamic client registration endpoint (`registration_endpoint`).
    pub registration: Option<Url>,
    /// The metadata says `client_id_metadata_document_supported: true`: a client may use the
    /// URL of its Client ID Metadata Document as its client_id.
    pub client_id_metadata_document_supported: bool,
    /// `offline_access` is in the metadata's `scopes_supported`.
    pub offline_access_supported: bool,
}

impl Endpoints {
    /// Whether the provider's metadata was read for these (it always names its issuer); not
    /// when every endpoint is configured, or discovery failed and the configured ones are used.
    pub fn from_metadata(&self) -> bool {
        self.issuer.is_some()
    }
}

/// Parses an authorization server metadata document (RFC 8414 / OpenID) fetched for
/// `issuer`: it must name exactly that issuer, and every endpoint must pass the https rule.
pub(crate) fn parse_metadata(body: &[u8], issuer: &Url) -> Result<Endpoints, String> {
    #[derive(Deserialize)]
    struct Metadata {
        issuer: Option<String>,
        authorization_endpoint: Option<String>,
        token_endpoint: Option<String>,
        device_authorization_endpoint: Option<String>,
        revocation_endpoint: Option<String>,
        // Read leniently: a member of an unexpected type is taken as not stated.
        #[serde(default)]
        authorization_response_iss_parameter_supported: serde_json::Value,
        #[serde(default)]
        code_challenge_methods_supported: serde_json::Value,
        registration_endpoint: Option<String>,
        #[serde(default)]
        client_id_metadata_document_supported: serde_json::Value,
        #[serde(default)]
        scopes_supported: serde_json::Value,
    }
    let metadata: Metadata =
        serde_json::from_slice(body).map_err(|_| "not a JSON metadata document".to_owned())?;
    // RFC 8414 §3.3: the document must name exactly the issuer it was fetched for.
    let Some(stated) = metadata.issuer else {
        return Err("the document has no `issuer` member".to_owned());
    };
    if !same_identifier(&stated, issuer.as_str()) {
        return Err(format!(
            "the document names another issuer ({})",
            shown(&stated)
        ));
    }
    let endpoint =
        |field, value: Option<String>| value.map(|v| named_url(field, &v, issuer)).transpose();
    Ok(Endpoints {
        issuer: Some(stated),
        authorization: endpoint("authorization_endpoint", metadata.authorization_endpoint)?,
        token: endpoint("token_endpoint", metadata.token_endpoint)?,
        device_authorization: endpoint(
            "device_authorization_endpoint",
            metadata.device_authorization_endpoint,
        )?,
        revocation: endpoint("revocation_endpoint", metadata.revocation_endpoint)?,
        registration: endpoint("registration_endpoint", metadata.registration_endpoint)?,
        client_id_metadata_document_supported: metadata.client_id_metadata_document_supported
            == serde_json::Value::Bool(true),
        offline_access_supported: supported_scopes(&metadata.scopes_supported)
            .any(|scope| scope == "offline_access"),
        iss_parameter_supported: metadata.authorization_response_iss_parameter_supported
            == serde_json::Value::Bool(true),
        code_challenge_methods: metadata.code_challenge_methods_supported.as_array().map(
            |methods| {
                methods
                    .iter()
                    .filter_map(|m| m.as_str().map(str::to_owned))
                    .collect()
            },
        ),
    })
}

/// A URL that a document of `source` names in `field`: a provider URL, and plain http (which
/// [`provider_url`] allows on loopback) only when `source` itself is on loopback: a remote
/// server has no business sending this machine's requests to a local port.
pub(super) fn named_url(field: &'static str, value: &str, source: &Url) -> Result<Url, String> {
    let url = provider_url(field, value).map_err(|e| e.to_string())?;
    if url.scheme() == "http" && !is_loopback(source) {
        return Err(format!(
            "`{field}` is a plain http address on this machine, named by {source}, which is not on this machine; refusing to use it"
        ));
    }
    Ok(url)
}

/// `scopes_supported` of a metadata document: the strings of an array, in order; nothing when
/// it is absent or not an array.
pub(super) fn supported_scopes(value: &serde_json::Value) -> impl Iterator<Item = &str> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_str)
}

/// Issuer identifiers compare equal when they differ at most by one trailing slash.
pub(crate) fn same_identifier(a: &str, b: &str) -> bool {
    let trim = |s: &str| s.strip_suffix('/').unwrap_or(s).to_owned();
    trim(a) == trim(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_match_ignoring_one_trailing_slash() {
        assert!(same_identifier("https://i.example", "https://i.example/"));
        assert!(same_identifier(
            "https://i.example/o/",
            "https://i.example/o"
        ));
        assert!(!same_identifier("https://i.example//", "https://i.example"));
        assert!(!same_identifier(
            "https://evil.example",
            "https://i.example"
        ));
    }

    #[test]
    fn metadata_states_iss_support_and_pkce_methods_leniently() {
        let issuer = Url::parse("https://id.example.com").unwrap();
        let parse = |extra: &str| {
            let body = format!(r#"{{"issuer":"https://id.example.com"{extra}}}"#);
            parse_metadata(body.as_bytes(), &issuer).unwrap()
        };
        let plain = parse("");
        assert!(!plain.iss_parameter_supported);
        assert_eq!(plain.code_challenge_methods, None);
        let stated = parse(
            r#","authorization_response_iss_parameter_supported":true,"code_challenge_methods_supported":["plain","S256",7]"#,
        );
        assert!(stated.iss_parameter_supported);
        assert_eq!(
            stated.code_challenge_methods,
            Some(vec!["plain".to_owned(), "S256".to_owned()])
        );
        let odd = parse(
            r#","authorization_response_iss_parameter_supported":"true","code_challenge_methods_supported":"S256""#,
        );
        assert!(!odd.iss_parameter_supported, "only JSON true promises iss");
        assert_eq!(odd.code_challenge_methods, None);
    }

    #[test]
    fn loopback_http_endpoints_only_from_a_loopback_issuer() {
        let body = |issuer: &str| {
            format!(r#"{{"issuer":"{issuer}","token_endpoint":"http://127.0.0.1:9/token"}}"#)
        };
        let remote = Url::parse("https://id.example.com").unwrap();
        let why = parse_metadata(body("https://id.example.com").as_bytes(), &remote).unwrap_err();
        assert!(
            why.contains("token_endpoint") && why.contains("plain http"),
            "{why}"
        );
        let local = Url::parse("http://127.0.0.1:8").unwrap();
        let ok = parse_metadata(body("http://127.0.0.1:8").as_bytes(), &local).unwrap();
        assert_eq!(ok.token.unwrap().as_str(), "http://127.0.0.1:9/token");
        let https_local = Url::parse("https://localhost:8").unwrap();
        assert!(parse_metadata(body("https://localhost:8").as_bytes(), &https_local).is_ok());
    }

    #[test]
    fn provider_strings_in_metadata_errors_are_bounded_and_quoted() {
        let issuer = Url::parse("https://id.example.com").unwrap();
        let stated = format!(r"https://evil.example/\n\u001b[2J{}", "x".repeat(1_000_000));
        let body = format!(r#"{{"issuer":"{stated}"}}"#);
        let why = parse_metadata(body.as_bytes(), &issuer).unwrap_err();
        assert!(why.len() < 400, "{}", why.len());
        assert!(!why.contains('\n') && !why.contains('\u{1b}'), "{why}");
        assert!(
            why.contains("\"https://evil.example/\\n\\u{1b}[2J"),
            "{why}"
        );
        let long_endpoint = format!(
            r#"{{"issuer":"https://id.example.com","token_endpoint":"https://id.example.com/{}"}}"#,
            "t".repeat(5000)
        );
        let why = parse_metadata(long_endpoint.as_bytes(), &issuer).unwrap_err();
        assert!(
            why.contains("longer than 2048 bytes") && why.len() < 200,
            "{why}"
        );
    }

    #[test]
    fn metadata_states_how_to_obtain_a_client_id() {
        let issuer = Url::parse("https://id.example.com").unwrap();
        let parse = |extra: &str| {
            let body = format!(r#"{{"issuer":"https://id.example.com"{extra}}}"#);
            parse_metadata(body.as_bytes(), &issuer)
        };
        let plain = parse("").unwrap();
        assert_eq!(plain.registration, None);
        assert!(!plain.client_id_metadata_document_supported);
        let both = parse(
            r#","registration_endpoint":"https://id.example.com/register","client_id_metadata_document_supported":true"#,
        )
        .unwrap();
        assert_eq!(
            both.registration.unwrap().as_str(),
            "https://id.example.com/register"
        );
        assert!(both.client_id_metadata_document_supported);
        let odd = parse(r#","client_id_metadata_document_supported":"true""#).unwrap();
        assert!(!odd.client_id_metadata_document_supported);
        assert!(parse(r#","registration_endpoint":"http://id.example.com/register""#).is_err());
    }
}
