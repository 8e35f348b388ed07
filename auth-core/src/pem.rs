//! Reading a PEM bundle of trust anchors (`[provider] ca_file`, `SSL_CERT_FILE`): bounded, a
//! FIFO or a device refused, at least one certificate. Outside `provider/` because `config`
//! checks `ca_file` with it at load and `provider` depends on `config`, never the reverse.

use std::path::Path;

/// The most a PEM bundle of trust anchors may hold: a platform's whole bundle takes a few
/// hundred KiB.
pub const MAX_PEM_BYTES: u64 = 4 * 1024 * 1024;

/// The certificates of a PEM file, or why it cannot be used (it must hold at least one). Read
/// as `auth.json` is: a FIFO or a device is refused without waiting on it or reading it, and a
/// file over [`MAX_PEM_BYTES`] is refused.
pub fn load_pem_bundle(path: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = crate::store::safe_file::read_bounded(path, MAX_PEM_BYTES).map_err(|e| {
        format!(
            "cannot read {}: {e}; point it at a PEM file of certificates (-----BEGIN CERTIFICATE-----)",
            path.display()
        )
    })?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|_| format!("{} is not a PEM certificate bundle", path.display()))?;
    if certificates.is_empty() {
        return Err(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certificates)
}
