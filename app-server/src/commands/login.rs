//! `auth-app-server login --with-api-key | --device | --browser [--credential NAME]`.
//!
//! The API key is read from stdin, never from the command line (it would land in shell history
//! and process listings); typed at a terminal, it is not echoed. Interactive logins wait for their end with a spinner on a terminal
//! and cancel cleanly on Ctrl-C.
//!
//! `--browser` on a machine whose loopback the browser may not reach (no display to open a
//! browser on, e.g. over SSH; or stdin is a terminal) also accepts the address the browser
//! ended on, pasted on stdin, while its listener keeps listening: the paste goes through the
//! same checks as `completeLogin`.

use std::io::{IsTerminal, Read, Write};
use std::time::{Duration, Instant};

use auth_core::api_key::KeyWarning;
use auth_core::registry::{Registry, Which};
use auth_core::{AuthError, AuthEvent, Credential, LoginStart, Secret};
use tokio::sync::mpsc;

use super::{about, command_line, exit, fail, fail_with};

pub enum How {
    ApiKey,
    Device,
    Browser,
}

impl How {
    /// How the flags say to sign in; `None` when they do not say.
    pub fn from_flags(with_api_key: bool, device: bool, browser: bool) -> Option<Self> {
        match (with_api_key, device, browser) {
            (true, _, _) => Some(Self::ApiKey),
            (_, true, _) => Some(Self::Device),
            (_, _, true) => Some(Self::Browser),
            _ => None,
        }
    }
}

pub async fn run(
    registry: &Registry,
    which: &Which,
    how: How,
    events: mpsc::UnboundedReceiver<AuthEvent>,
) -> u8 {
    // Before the key is asked for: a home that holds the most credentials it keeps refuses a
    // new one.
    let credential = match registry.for_login(which, None).await {
        Ok(credential) => credential,
        Err(error) => return fail_with(&error),
    };
    match how {
        How::ApiKey => api_key(&credential, which).await,
        How::Device | How::Browser => {
            // Listen for Ctrl-C before anything is shown, so an early one is not lost.
            let interrupt = Interrupt::listen();
            let started = match how {
                How::Device => credential.start_device_login(&[]).await,
                _ => credential.start_oauth_login(&[]).await,
            };
            match started {
                Ok(started) => {
                    let pastes = show(&started).then(read_pastes);
                    wait(&credential, which, &started, events, interrupt, pastes).await
                }
                Err(error) => fail_with(&error),
            }
        }
    }
}

async fn api_key(credential: &Credential, which: &Which) -> u8 {
    let key = match read_key().await {
        Ok(key) => key,
        Err(code) => return code,
    };
    // The line break that ends piped or typed input is not part of the key.
    let key = key.trim_end_matches(['\n', '\r']);
    let (_, warnings) = auth_core::api_key::inspect(key);
    match credential.login_api_key(&Secret::new(key)).await {
        Ok(_) => {
            for warning in warnings {
                eprintln!("warning: {}", key_warning(warning, which));
            }
            eprintln!("{}", about(which, "Signed in with an API key."));
            exit::OK
        }
        // The one input the credential refuses from here: an empty key.
        Err(AuthError::InvalidInput(_)) => fail(
            format!(
                "the API key is empty: paste it at the prompt, or pipe it in (`{} --with-api-key < key.txt`)",
                command_line("login", which)
            ),
            exit::SIGNED_OUT_OR_FAILED,
        ),
        Err(error) => fail_with(&error),
    }
}

/// A warning about the key in terminal words.
fn key_warning(warning: KeyWarning, which: &Which) -> String {
    match warning {
        KeyWarning::LooksLikeJwt => format!(
            "this looks like a JWT (an OAuth access or ID token), not an API key; tokens expire: sign in with `{} --device` (or `--browser`) instead",
            command_line("login", which)
        ),
        other => other.to_string(),
    }
}

/// The key: one line typed at a terminal, not echoed; else all of stdin. `Err` is the exit
/// code, the failure already told.
async fn read_key() -> Result<String, u8> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut key = String::new();
        return match stdin.lock().read_to_string(&mut key) {
            Ok(_) => Ok(key),
            Err(error) => Err(cannot_read(&error)),
        };
    }
    // Ctrl-C is caught from here on, so that the terminal gets its echo back.
    let mut interrupt = Interrupt::listen();
    let echo = EchoOff::turn_off();
    if echo.is_off() {
        eprint!("Paste the API key and press Enter (it is not shown): ");
    } else {
        eprint!(
            "Paste the API key and press Enter (it is shown as you type; pipe it in to hide it): "
        );
    }
    let _ = std::io::stderr().flush();
    // A thread of its own: a blocking read cannot be cancelled, and a runtime's blocking
    // task would keep the process alive after Ctrl-C.
    let (sender, line) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut key = String::new();
        let read = std::io::stdin().read_line(&mut key).map(|_| key);
        let _ = sender.send(read);
    });
    let read = tokio::select! {
        read = line => read.unwrap_or_else(|_| Err(std::io::Error::other("the reading thread ended"))),
        () = interrupt.recv() => {
            drop(echo);
            eprintln!();
            return Err(fail("sign-in canceled", exit::INTERRUPTED));
        }
    };
    drop(echo);
    read.map_err(|error| cannot_read(&error))
}

fn cannot_read(error: &std::io::Error) -> u8 {
    fail(
        format!("cannot read the API key from stdin: {error}"),
        exit::SIGNED_OUT_OR_FAILED,
    )
}

/// The terminal on stdin with echo off until this is dropped (the line break that ends the
/// line is still echoed). Where that cannot be done, nothing changes and [`Self::is_off`] says so.
struct EchoOff {
    #[cfg(unix)]
    saved: Option<libc::termios>,
}

impl EchoOff {
    #[cfg(unix)]
    fn turn_off() -> Self {
        let fd = libc::STDIN_FILENO;
        let mut saved = std::mem::MaybeUninit::<libc::termios>::uninit();
        // SAFETY: tcgetattr fills the termios it points to when it returns 0.
        if unsafe { libc::tcgetattr(fd, saved.as_mut_ptr()) } != 0 {
            return Self { saved: None };
        }
        // SAFETY: initialized by the successful tcgetattr above.
        let saved = unsafe { saved.assume_init() };
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        quiet.c_lflag |= libc::ECHONL;
        // SAFETY: `quiet` is a valid termios read from this terminal and changed in two flags.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) } != 0 {
            return Self { saved: None };
        }
        Self { saved: Some(saved) }
    }

    #[cfg(not(unix))]
    fn turn_off() -> Self {
        Self {}
    }

    fn is_off(&self) -> bool {
        #[cfg(unix)]
        {
            self.saved.is_some()
        }
        #[cfg(not(unix))]
        {
            false
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(saved) = &self.saved {
            // SAFETY: restores the settings tcgetattr read from this same terminal.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, saved);
            }
        }
    }
}

/// Tells the person what to do to go on; true when a pasted address is to be read from stdin
/// (a browser login that could not open a browser, or whose stdin is a terminal).
fn show(started: &LoginStart) -> bool {
    match started {
        LoginStart::DeviceCode {
            verification_uri,
            verification_uri_complete,
            user_code,
            expires_at,
            ..
        } => {
            eprintln!(
                "To sign in, open {verification_uri} and enter the code:\n\n    {user_code}\n"
            );
            if let Some(complete) = verification_uri_complete {
                eprintln!("(or open {complete})");
            }
            let minutes = (expires_at - auth_core::time::now_unix()).max(0) / 60;
            eprintln!("The code expires in about {minutes} min. Press Ctrl-C to cancel.");
            false
        }
        LoginStart::Oauth { auth_url, .. } => {
            let opened = open_browser(auth_url);
            if opened {
                eprintln!(
                    "Opened your browser to sign in. If it did not open, visit:\n\n    {auth_url}\n"
                );
            } else {
                eprintln!("Open this address in a browser to sign in:\n\n    {auth_url}\n");
            }
            let paste = !opened || std::io::stdin().is_terminal();
            if paste {
                eprintln!(
                    "If that browser runs on another machine (SSH, a container) and ends on an address that does not \
                     load (http://127.0.0.1:…/callback?…), copy that whole address from its address bar, paste it \
                     here and press Enter."
                );
            }
            eprintln!("Press Ctrl-C to cancel.");
            paste
        }
    }
}

/// Lines from stdin, read on a thread of their own (a blocking read of stdin cannot be
/// cancelled; the thread ends with the process).
fn read_pastes() -> mpsc::UnboundedReceiver<String> {
    let (sender, pastes) = mpsc::unbounded_channel();
    let spawned = std::thread::Builder::new()
        .name("paste".into())
        .spawn(move || {
            for line in std::io::stdin().lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
    if let Err(error) = spawned {
        eprintln!(
            "auth-app-server: cannot read a pasted address ({error}); waiting for the browser"
        );
    }
    pastes
}

/// Ctrl-C, registered from the moment it is created.
struct Interrupt {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Interrupt {
    fn listen() -> Self {
        #[cfg(unix)]
        {
            Self {
                signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                    .ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        match &mut self.signal {
            Some(signal) => {
                signal.recv().await;
            }
            None => std::future::pending().await,
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Waits for the login's end, with a spinner on a terminal; Ctrl-C cancels it. Each pasted
/// line is handed to the login (`completeLogin`); a refused one is reported and the login
/// keeps waiting.
async fn wait(
    credential: &Credential,
    which: &Which,
    started: &LoginStart,
    mut events: mpsc::UnboundedReceiver<AuthEvent>,
    mut interrupt: Interrupt,
    mut pastes: Option<mpsc::UnboundedReceiver<String>>,
) -> u8 {
    let login_id = match started {
        LoginStart::Oauth { login_id, .. } | LoginStart::DeviceCode { login_id, .. } => {
            login_id.clone()
        }
    };
    // The spinner would overwrite what the user pastes on the same terminal.
    let spinner = std::io::stderr().is_terminal() && pastes.is_none();
    let started_at = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(120));
    let mut interrupted = false;
    let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    let mut frame = 0;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(AuthEvent::LoginCompleted { login_id: id, success, error }) if id == login_id => {
                    if spinner {
                        eprint!("\r\x1b[2K");
                    }
                    return match (success, interrupted) {
                        (true, _) => {
                            eprintln!("{}", about(which, "Signed in."));
                            exit::OK
                        }
                        (false, true) => fail("sign-in canceled", exit::INTERRUPTED),
                        (false, false) => fail(
                            format!("sign-in failed: {}", error.unwrap_or_else(|| "unknown reason".into())),
                            exit::SIGNED_OUT_OR_FAILED,
                        ),
                    };
                }
                Some(_) => {}
                None => return fail("the sign-in ended unexpectedly", exit::SIGNED_OUT_OR_FAILED),
            },
            line = next_paste(&mut pastes) => match line {
                None => pastes = None,
                Some(line) if line.trim().is_empty() => {}
                Some(line) => match credential.complete_login(&login_id, &Secret::new(line.trim())).await {
                    Ok(()) => eprintln!("Address accepted; finishing the sign-in…"),
                    Err(error) => eprintln!("auth-app-server: {error}"),
                },
            },
            () = interrupt.recv(), if !interrupted => {
                interrupted = true;
                if !credential.cancel_login(&login_id) {
                    return fail("sign-in canceled", exit::INTERRUPTED);
                }
            }
            _ = tick.tick(), if spinner => {
                frame = (frame + 1) % frames.len();
                eprint!("\r{} Waiting for the sign-in to be approved… {} s", frames[frame], started_at.elapsed().as_secs());
                let _ = std::io::stderr().flush();
            }
        }
    }
}

/// The next pasted line; `None` once stdin has ended; pending forever when nothing is read.
async fn next_paste(pastes: &mut Option<mpsc::UnboundedReceiver<String>>) -> Option<String> {
    match pastes {
        Some(pastes) => pastes.recv().await,
        None => std::future::pending().await,
    }
}

/// Opens `url` in the system browser when there is one to open.
fn open_browser(url: &str) -> bool {
    let mut command = if let Some(browser) = std::env::var_os("BROWSER").filter(|b| !b.is_empty()) {
        std::process::Command::new(browser)
    } else if cfg!(target_os = "macos") {
        std::process::Command::new("open")
    } else if cfg!(windows) {
        let mut command = std::process::Command::new("cmd");
        command.args(["/C", "start", ""]);
        command
    } else if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
    {
        std::process::Command::new("xdg-open")
    } else {
        return false;
    };
    command
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_ok()
}
