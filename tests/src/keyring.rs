//! A real Secret Service for the keyring tests: a private session bus (`dbus-daemon` with a
//! configuration of its own: no service activation, so nothing but the daemon started here
//! ever answers) and `gnome-keyring-daemon --unlock`, unlocked with a test password, keeping
//! its keyrings in a temporary folder, which a test can suspend and resume. Also a bus that
//! accepts connections and never answers.
//!
//! Needs `dbus-daemon`, `dbus-send`, `gnome-keyring-daemon` and `secret-tool` (Debian:
//! `dbus-daemon dbus-bin gnome-keyring libsecret-tools`; `.ci/run` installs them). A test that
//! lacks one fails saying so: it never skips.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The test keyring's password.
const PASSWORD: &str = "auth-app-server-test";

/// A session bus with an unlocked Secret Service on it; both are killed on drop.
pub struct SecretService {
    dir: tempfile::TempDir,
    address: String,
    bus: Child,
    keyring: Option<Child>,
}

impl SecretService {
    /// Starts the bus and the keyring daemon and waits until the Secret Service is on the bus.
    pub fn start() -> Self {
        for tool in [
            "dbus-daemon",
            "dbus-send",
            "gnome-keyring-daemon",
            "secret-tool",
        ] {
            require(tool);
        }
        let dir = tempfile::tempdir().expect("temporary folder");
        let socket = dir.path().join("bus");
        let config = dir.path().join("session.conf");
        std::fs::write(&config, bus_config(&socket)).expect("write the bus configuration");
        let mut bus = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        let mut address = String::new();
        BufReader::new(bus.stdout.take().expect("stdout"))
            .read_line(&mut address)
            .expect("read the bus address");
        let address = address.trim().to_owned();
        assert!(!address.is_empty(), "dbus-daemon printed no address");
        let mut service = Self {
            dir,
            address,
            bus,
            keyring: None,
        };
        service.start_keyring();
        service
    }

    fn start_keyring(&mut self) {
        for folder in ["data", "runtime", "config"] {
            std::fs::create_dir_all(self.dir.path().join(folder)).unwrap();
        }
        let mut keyring = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env("HOME", self.dir.path())
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_RUNTIME_DIR", self.dir.path().join("runtime"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gnome-keyring-daemon");
        let mut stdin = keyring.stdin.take().expect("stdin");
        stdin
            .write_all(PASSWORD.as_bytes())
            .expect("hand gnome-keyring-daemon its password");
        drop(stdin);
        self.keyring = Some(keyring);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.has_secret_service() {
            assert!(
                Instant::now() < deadline,
                "gnome-keyring-daemon did not register org.freedesktop.secrets on the test bus"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn has_secret_service(&self) -> bool {
        let output = Command::new("dbus-send")
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                "string:org.freedesktop.secrets",
            ])
            .output()
            .expect("run dbus-send");
        String::from_utf8_lossy(&output.stdout).contains("boolean true")
    }

    /// Suspends the keyring daemon (SIGSTOP): the bus still accepts calls for the Secret
    /// Service, which answers none until [`Self::resume`].
    pub fn suspend(&self) {
        self.signal_keyring(libc::SIGSTOP);
    }

    /// Lets a suspended keyring daemon run again (SIGCONT); it answers the calls queued meanwhile.
    pub fn resume(&self) {
        self.signal_keyring(libc::SIGCONT);
    }

    fn signal_keyring(&self, signal: libc::c_int) {
        let keyring = self.keyring.as_ref().expect("the keyring daemon runs");
        let pid = libc::pid_t::try_from(keyring.id()).expect("a pid");
        // SAFETY: kill(2) with the pid of a child this value owns and has not reaped.
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(sent, 0, "cannot signal gnome-keyring-daemon");
    }

    /// `DBUS_SESSION_BUS_ADDRESS` of the test bus, for the server processes.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The environment a server needs to reach this keyring.
    pub fn env(&self) -> [(&str, &str); 1] {
        [("DBUS_SESSION_BUS_ADDRESS", self.address())]
    }

    /// The document stored for `home` (read with `secret-tool`), `None` when there is no item.
    pub fn lookup(&self, home: &Path) -> Option<String> {
        let home = canonical(home);
        let output = Command::new("secret-tool")
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .args(["lookup", "service", "auth-app-server", "home"])
            .arg(&home)
            .output()
            .expect("run secret-tool");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        (output.status.success() && !text.is_empty()).then_some(text)
    }

    /// The document stored for the named credential `name` of `home` (contract version 3),
    /// `None` when there is no item.
    pub fn lookup_credential(&self, home: &Path, name: &str) -> Option<String> {
        let home = canonical(home);
        let output = Command::new("secret-tool")
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .args(["lookup", "service", "auth-app-server", "home"])
            .arg(&home)
            .args(["credential", name])
            .output()
            .expect("run secret-tool");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        (output.status.success() && !text.is_empty()).then_some(text)
    }

    /// The document stored for `home`, parsed; fails when there is none.
    pub fn document(&self, home: &Path) -> serde_json::Value {
        let text = self
            .lookup(home)
            .unwrap_or_else(|| panic!("no keyring item for {}", home.display()));
        serde_json::from_str(&text).expect("the item holds JSON")
    }

    /// Stores `text` as the item of `home` (as another process would have).
    pub fn store(&self, home: &Path, text: &str) {
        let mut child = Command::new("secret-tool")
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .args([
                "store",
                "--label=test",
                "service",
                "auth-app-server",
                "home",
            ])
            .arg(canonical(home))
            .stdin(Stdio::piped())
            .spawn()
            .expect("run secret-tool");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "secret-tool store failed");
    }
}

impl Drop for SecretService {
    fn drop(&mut self) {
        if let Some(keyring) = &mut self.keyring {
            let _ = keyring.kill();
            let _ = keyring.wait();
        }
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}

/// A Unix socket that accepts connections and never writes a byte: a session bus that
/// "hangs". Connections are kept open until the value is dropped.
pub struct SilentBus {
    _dir: tempfile::TempDir,
    address: String,
}

impl SilentBus {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("silent-bus");
        let listener = UnixListener::bind(&path).expect("bind the silent bus");
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                held.push(stream);
            }
        });
        Self {
            address: format!("unix:path={}", path.display()),
            _dir: dir,
        }
    }

    pub fn address(&self) -> &str {
        &self.address
    }
}

/// No session bus at all: a bus address where nothing listens, and a runtime folder without
/// a `bus` socket (where a client would look next). Removed on drop.
pub struct NoBus {
    _dir: tempfile::TempDir,
    address: String,
    runtime_dir: String,
}

impl NoBus {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        Self {
            address: format!("unix:path={}", dir.path().join("no-bus-here").display()),
            runtime_dir: dir.path().display().to_string(),
            _dir: dir,
        }
    }

    /// The environment a server needs to find no keyring.
    pub fn env(&self) -> [(&str, &str); 2] {
        [
            ("DBUS_SESSION_BUS_ADDRESS", self.address.as_str()),
            ("XDG_RUNTIME_DIR", self.runtime_dir.as_str()),
        ]
    }
}

impl Default for NoBus {
    fn default() -> Self {
        Self::new()
    }
}

/// Every file under `dir` whose bytes contain one of `secrets`: (file, secret).
pub fn files_containing(dir: &Path, secrets: &[&str]) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder)
            .expect("read the folder")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            for secret in secrets.iter().filter(|s| !s.is_empty()) {
                if text.contains(secret) {
                    found.push((path.clone(), (*secret).to_owned()));
                }
            }
        }
    }
    found
}

fn canonical(home: &Path) -> PathBuf {
    std::fs::canonicalize(home).unwrap_or_else(|_| home.to_path_buf())
}

fn require(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{tool} is not installed: the keyring tests need a real Secret Service. Install \
         dbus-daemon dbus-bin gnome-keyring libsecret-tools (apt-get install -y ...; .ci/run does)"
    );
}

/// A session bus configuration: one private socket, everything allowed, no activation.
fn bus_config(socket: &Path) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
        socket.display()
    )
}
