//! The servers we did not write, for the interop tests: their npm packages live in
//! `tests/interop/` (`package.json`, `package-lock.json`), installed by [`npm_ci`] the first time.

use std::path::{Path, PathBuf};

/// `tests/interop/`: the packages and the scripts that start their servers.
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop")
}

/// The packages `package.json` names, each one's `package.json` path under `node_modules`.
const PACKAGES: [&str; 2] = ["oidc-provider", "@modelcontextprotocol/sdk"];

/// Installs the interop packages from the lock file unless each is there already. Needs node
/// and npm; panics with what failed otherwise.
pub fn npm_ci() {
    let dir = interop_dir();
    let installed = |name: &str| {
        dir.join("node_modules")
            .join(name)
            .join("package.json")
            .exists()
    };
    if PACKAGES.iter().all(|name| installed(name)) {
        return;
    }
    let status = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()
        .expect("run npm (node and npm are needed for the interop tests)");
    assert!(status.success(), "npm ci in {} failed", dir.display());
}
