//! Network settings of provider requests (docs/configuration.md, "Proxies and certificates"):
//! which proxy a request goes through (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`,
//! either case; loopback hosts never), which `SSL_CERT_FILE` adds trust anchors to the
//! platform's (with `[provider] ca_file`; the files are read by [`crate::pem`]), and what a TLS
//! failure means in words a person can act on. The decisions are pure functions with table
//! tests; the provider's HTTP client (`provider/client.rs`) is built from them.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::OnceLock;

use reqwest::Url;

use crate::config::is_loopback;

pub const SSL_CERT_FILE_ENV: &str = "SSL_CERT_FILE";

/// `SSL_CERT_FILE` as the binary found it at start (see [`adopt_ssl_cert_file`]).
static SSL_CERT_FILE: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Records the `SSL_CERT_FILE` the process started with. The binary takes the variable out of
/// its environment first thing (the platform verifier on Linux would otherwise read that file
/// *instead of* the platform's store) and hands it here, so that its certificates are added to
/// the platform's rather than replacing them. Later calls are ignored.
pub fn adopt_ssl_cert_file(path: Option<PathBuf>) {
    let _ = SSL_CERT_FILE.set(path);
}

/// The `SSL_CERT_FILE` whose certificates are added to the platform's trust anchors: the one
/// adopted at start, else the environment's (a library user that adopted nothing).
pub fn ssl_cert_file() -> Option<PathBuf> {
    match SSL_CERT_FILE.get() {
        Some(adopted) => adopted.clone(),
        None => std::env::var_os(SSL_CERT_FILE_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
    }
}

/// The proxy settings of the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    https: Option<Url>,
    http: Option<Url>,
    all: Option<Url>,
    no_proxy: Vec<String>,
}

impl ProxyEnv {
    /// From `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`; the lower-case form of
    /// each wins when both are set (as with curl). An unusable proxy address is reported in the
    /// log and ignored.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let value = |name: &str| {
            get(&name.to_ascii_lowercase())
                .or_else(|| get(name))
                .filter(|v| !v.trim().is_empty())
        };
        let proxy = |name: &str| {
            let value = value(name)?;
            match parse_proxy(&value) {
                Ok(url) => Some(url),
                Err(why) => {
                    tracing::warn!(variable = name, %why, "proxy setting ignored");
                    None
                }
            }
        };
        Self {
            https: proxy("HTTPS_PROXY"),
            http: proxy("HTTP_PROXY"),
            all: proxy("ALL_PROXY"),
            no_proxy: value("NO_PROXY")
                .map(|list| {
                    list.split([',', ' ', '\t'])
                        .map(|entry| entry.trim().to_ascii_lowercase())
                        .filter(|entry| !entry.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// Whether any proxy is set at all.
    pub fn is_set(&self) -> bool {
        self.https.is_some() || self.http.is_some() || self.all.is_some()
    }

    /// The proxy a request to `url` goes through; `None` for a direct connection. Loopback
    /// hosts are never proxied, whatever the environment says. Pure.
    pub fn proxy_for(&self, url: &Url) -> Option<Url> {
        if is_loopback(url) || self.excluded(url) {
            return None;
        }
        let by_scheme = match url.scheme() {
            "https" => self.https.as_ref(),
            "http" => self.http.as_ref(),
            _ => None,
        };
        by_scheme.or(self.all.as_ref()).cloned()
    }

    /// `NO_PROXY`: `*`; a host name, matching itself and its subdomains (a leading `.` or `*.`
    /// is allowed); an IP address or a CIDR range; any of them with `:port`.
    fn excluded(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        let port = url.port_or_known_default();
        self.no_proxy
            .iter()
            .any(|entry| no_proxy_matches(entry, &host, ip, port))
    }
}

fn no_proxy_matches(entry: &str, host: &str, ip: Option<IpAddr>, port: Option<u16>) -> bool {
    if entry == "*" {
        return true;
    }
    // `host:port` / `[v6]:port` / `v4:port`; a bare IPv6 address has colons of its own.
    let (pattern, entry_port) = match entry.rsplit_once(':') {
        Some((pattern, p))
            if !pattern.is_empty()
                && p.parse::<u16>().is_ok()
                && (pattern.ends_with(']') || !pattern.contains(':')) =>
        {
            (pattern, p.parse::<u16>().ok())
        }
        _ => (entry, None),
    };
    if entry_port.is_some_and(|p| Some(p) != port) {
        return false;
    }
    let pattern = pattern.trim_start_matches('[').trim_end_matches(']');
    if let Some((network, bits)) = pattern.split_once('/') {
        return match (ip, network.parse::<IpAddr>(), bits.parse::<u8>()) {
            (Some(ip), Ok(network), Ok(bits)) => in_cidr(ip, network, bits),
            _ => false,
        };
    }
    if let Ok(address) = pattern.parse::<IpAddr>() {
        return ip == Some(address);
    }
    // A host name pattern matches host names only: "0.1" must not match 10.0.0.1 by suffix.
    if ip.is_some() {
        return false;
    }
    let domain = pattern.trim_start_matches("*.").trim_start_matches('.');
    !domain.is_empty() && (host == domain || host.ends_with(&format!(".{domain}")))
}

fn in_cidr(ip: IpAddr, network: IpAddr, bits: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(network)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(network)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

/// A proxy address as people write it: `http://host:port`, or `host:port` (http assumed).
fn parse_proxy(value: &str) -> Result<Url, String> {
    let value = value.trim();
    let with_scheme = if value.contains("://") {
        value.to_owned()
    } else {
        format!("http://{value}")
    };
    let url = Url::parse(&with_scheme).map_err(|_| "not an address".to_owned())?;
    match url.scheme() {
        "http" | "https" if url.host_str().is_some() => Ok(url),
        "http" | "https" => Err("no host".to_owned()),
        other => Err(format!(
            "the {other}:// scheme is not supported (use an http:// or https:// proxy)"
        )),
    }
}

/// What went wrong in a TLS handshake with the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsProblem {
    /// The certificate chains to no trusted authority (a private or corporate CA).
    UnknownIssuer,
    /// The certificate has expired or is not valid yet.
    Expired,
    /// The certificate is for another host name.
    WrongName,
    /// Any other handshake failure.
    Handshake,
}

impl TlsProblem {
    /// What it means and the setting that fixes it.
    pub fn message(self) -> &'static str {
        match self {
            Self::UnknownIssuer => {
                "TLS failed: the provider's certificate is issued by a certificate authority this machine does not trust \
                 (unknown issuer). If it is a private or corporate CA (or a proxy that inspects TLS), add its certificate \
                 (PEM) with `ca_file` in the [provider] section of config.toml, or with the SSL_CERT_FILE environment variable"
            }
            Self::Expired => {
                "TLS failed: the provider's certificate has expired or is not valid yet. Check this machine's clock; \
                 otherwise the provider must renew its certificate"
            }
            Self::WrongName => {
                "TLS failed: the provider's certificate is not valid for the host name in the URL. Check the issuer and \
                 endpoint URLs in config.toml (a proxy that inspects TLS needs its CA in `ca_file` or SSL_CERT_FILE)"
            }
            Self::Handshake => {
                "TLS failed: the handshake with the provider did not succeed. If a proxy or firewall is in the way, set \
                 HTTPS_PROXY (and NO_PROXY), and add the CA of a proxy that inspects TLS with `ca_file` in the [provider] \
                 section of config.toml or with SSL_CERT_FILE"
            }
        }
    }
}

/// The TLS problem described by the messages of an error and its sources (outermost first),
/// if it is one. Pure; the words matched are those of rustls and its platform verifier.
pub fn tls_problem(chain: &[String]) -> Option<TlsProblem> {
    let text = chain.join(" | ").to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| text.contains(w));
    if has(&["unknownissuer", "unknown issuer", "unknownca"]) {
        Some(TlsProblem::UnknownIssuer)
    } else if has(&["expired", "notvalidyet", "not valid yet"]) {
        Some(TlsProblem::Expired)
    } else if has(&["notvalidforname", "not valid for name", "not valid for "]) {
        Some(TlsProblem::WrongName)
    } else if has(&[
        "invalid peer certificate",
        "peer is incompatible",
        "received fatal alert",
        "tls handshake",
        "invalidcertificate",
        "corrupt message",
    ]) {
        Some(TlsProblem::Handshake)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> ProxyEnv {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ProxyEnv::from_lookup(move |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    fn proxy(env: &ProxyEnv, url: &str) -> Option<String> {
        env.proxy_for(&Url::parse(url).unwrap())
            .map(|u| u.as_str().trim_end_matches('/').to_owned())
    }

    #[test]
    fn which_proxy_a_request_goes_through() {
        let all = env(&[
            ("HTTPS_PROXY", "http://secure:3128"),
            ("http_proxy", "plain:8080"),
            ("ALL_PROXY", "http://fallback:1"),
            (
                "NO_PROXY",
                "internal.example, .corp.example,10.0.0.0/8 ,192.168.1.7,[fd00::1],api.example:8443",
            ),
        ]);
        let https_only = env(&[
            ("https_proxy", "http://lower:1"),
            ("HTTPS_PROXY", "http://upper:2"),
        ]);
        let fallback = env(&[("all_proxy", "http://fallback:1")]);
        let everything_direct = env(&[("HTTPS_PROXY", "http://p:1"), ("no_proxy", "*")]);
        let cases: &[(&ProxyEnv, &str, Option<&str>)] = &[
            (
                &all,
                "https://login.example.com/token",
                Some("http://secure:3128"),
            ),
            (
                &all,
                "http://login.example.com/token",
                Some("http://plain:8080"),
            ),
            // Loopback: never, whatever NO_PROXY says.
            (&all, "https://127.0.0.1:8443/token", None),
            (&all, "http://127.5.0.1/token", None),
            (&all, "https://[::1]/token", None),
            (&all, "https://localhost:9/token", None),
            (&all, "https://LOCALHOST/token", None),
            (&everything_direct, "https://localhost/", None),
            // NO_PROXY: names and their subdomains, IPs, CIDR, ports.
            (&all, "https://internal.example/", None),
            (&all, "https://id.internal.example/", None),
            (
                &all,
                "https://notinternal.example/",
                Some("http://secure:3128"),
            ),
            (&all, "https://x.corp.example/", None),
            (&all, "https://corp.example/", None),
            (&all, "https://10.1.2.3/", None),
            (&all, "https://11.1.2.3/", Some("http://secure:3128")),
            (&all, "https://192.168.1.7/", None),
            (&all, "https://192.168.1.8/", Some("http://secure:3128")),
            (&all, "https://[fd00::1]/", None),
            (&all, "https://api.example:8443/", None),
            (&all, "https://api.example/", Some("http://secure:3128")),
            (&everything_direct, "https://login.example.com/", None),
            // Lower case wins; ALL_PROXY when the scheme has none.
            (
                &https_only,
                "https://login.example.com/",
                Some("http://lower:1"),
            ),
            (&https_only, "http://login.example.com/", None),
            (
                &fallback,
                "https://login.example.com/",
                Some("http://fallback:1"),
            ),
            (
                &fallback,
                "http://login.example.com/",
                Some("http://fallback:1"),
            ),
        ];
        for (env, url, expected) in cases {
            assert_eq!(proxy(env, url).as_deref(), *expected, "{url} with {env:?}");
        }
        assert!(!env(&[]).is_set());
        assert!(!env(&[("NO_PROXY", "*")]).is_set());
    }

    #[test]
    fn unusable_proxy_addresses_are_ignored() {
        let odd = env(&[
            ("HTTPS_PROXY", "socks5://p:1080"),
            ("HTTP_PROXY", "http://"),
            ("ALL_PROXY", "   "),
        ]);
        assert!(!odd.is_set(), "{odd:?}");
        let creds = env(&[("HTTPS_PROXY", "http://user:pass@proxy.corp:3128")]);
        assert_eq!(
            proxy(&creds, "https://id.example/").as_deref(),
            Some("http://user:pass@proxy.corp:3128")
        );
    }

    #[test]
    fn a_domain_entry_never_matches_an_ip_address_by_suffix() {
        let env = env(&[
            ("HTTPS_PROXY", "http://p:1"),
            ("NO_PROXY", "0.1,.0.1,*.0.1,example,1.example"),
        ]);
        for url in [
            "https://10.0.0.1/",
            "https://192.168.0.1/",
            "https://[fd00::0.0.0.1]/",
        ] {
            assert_eq!(proxy(&env, url).as_deref(), Some("http://p:1"), "{url}");
        }
        for url in ["https://a.example/", "https://x.1.example/"] {
            assert_eq!(proxy(&env, url), None, "{url}");
        }
    }

    #[test]
    fn cidr_ranges() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let cases = [
            ("10.0.0.0", 8, "10.255.0.1", true),
            ("10.0.0.0", 8, "11.0.0.1", false),
            ("0.0.0.0", 0, "1.2.3.4", true),
            ("1.2.3.4", 32, "1.2.3.4", true),
            ("1.2.3.4", 33, "1.2.3.4", false),
            ("fd00::", 8, "fdff::1", true),
            ("fd00::", 8, "fe00::1", false),
            ("10.0.0.0", 8, "fd00::1", false),
        ];
        for (network, bits, address, expected) in cases {
            assert_eq!(
                in_cidr(ip(address), ip(network), bits),
                expected,
                "{address} in {network}/{bits}"
            );
        }
    }

    #[test]
    fn tls_failures_are_named_from_the_error_chain() {
        let chain = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases: &[(&[&str], Option<TlsProblem>)] = &[
            (
                &[
                    "error sending request",
                    "client error (Connect)",
                    "invalid peer certificate: UnknownIssuer",
                ],
                Some(TlsProblem::UnknownIssuer),
            ),
            (
                &[
                    "error sending request",
                    "invalid peer certificate: certificate expired: verification time 1795000000 (UNIX), but certificate is not valid after 1700000000 (-95000000 seconds ago)",
                ],
                Some(TlsProblem::Expired),
            ),
            (
                &[
                    "invalid peer certificate: certificate not valid for name \"localhost\"; certificate is only valid for DnsName(\"issuer.test\")",
                ],
                Some(TlsProblem::WrongName),
            ),
            (
                &["invalid peer certificate: NotValidForName"],
                Some(TlsProblem::WrongName),
            ),
            (
                &["received fatal alert: HandshakeFailure"],
                Some(TlsProblem::Handshake),
            ),
            (
                &[
                    "error sending request",
                    "tcp connect error",
                    "Connection refused (os error 111)",
                ],
                None,
            ),
            (&["operation timed out"], None),
            (&[], None),
        ];
        for (items, expected) in cases {
            assert_eq!(tls_problem(&chain(items)), *expected, "{items:?}");
        }
        for problem in [
            TlsProblem::UnknownIssuer,
            TlsProblem::Expired,
            TlsProblem::WrongName,
            TlsProblem::Handshake,
        ] {
            assert!(problem.message().starts_with("TLS failed: "), "{problem:?}");
        }
        assert!(TlsProblem::UnknownIssuer.message().contains("ca_file"));
        assert!(
            TlsProblem::UnknownIssuer
                .message()
                .contains("SSL_CERT_FILE")
        );
    }
}
