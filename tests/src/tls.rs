//! A private certificate authority made at test time, and the TLS identity of a fake issuer
//! signed by it: what a company's internal CA, or a proxy that inspects TLS, looks like to the
//! server. Made with the `openssl` command (installed wherever `ca-certificates` is), in
//! milliseconds.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A throwaway CA and one server certificate it issued.
pub struct TestCa {
    dir: tempfile::TempDir,
}

impl TestCa {
    /// A CA, and a server certificate for the DNS names `names` and the IP address 127.0.0.1.
    pub fn generate(names: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = |name: &str| dir.path().join(name);
        openssl(
            dir.path(),
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=auth-app-server test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        );
        openssl(
            dir.path(),
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-subj",
                "/CN=fake issuer",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ],
        );
        let alt_names: Vec<String> = names
            .iter()
            .map(|n| format!("DNS:{n}"))
            .chain(["IP:127.0.0.1".to_owned()])
            .collect();
        let extensions = format!(
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName={}\n",
            alt_names.join(",")
        );
        std::fs::write(path("server.ext"), extensions).unwrap();
        openssl(
            dir.path(),
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "server.pem",
            ],
        );
        Self { dir }
    }

    /// The CA's certificate (PEM): what `ca_file` or `SSL_CERT_FILE` points at.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server side: the certificate (with the CA's) and its key.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let read = |name: &str| std::fs::read(self.dir.path().join(name)).unwrap();
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(&read("server.pem"))
                .chain(CertificateDer::pem_slice_iter(&read("ca.pem")))
                .collect::<Result<_, _>>()
                .expect("PEM certificates");
        let key = PrivateKeyDer::from_pem_slice(&read("server.key")).expect("PEM key");
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("a usable server certificate");
        Arc::new(config)
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command (package openssl) makes the test CA");
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
