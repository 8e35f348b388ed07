//! `auth-app-server`: the binary's code. Parses flags, sets up logging and configuration, and
//! either serves JSON-RPC on stdin/stdout or runs a command for people (`status`, `token`,
//! `login`, `logout`) on the same home, lock and rules.
//!
//! A library only so that [`fuzzing`] can drive the real server from the fuzz targets and the
//! randomized tests; [`run`] is the binary's `main`.

mod cli;
mod commands;
mod convert;
mod dispatch;
mod envelope;
pub mod fuzzing;
mod logging;
mod methods;
mod schema_cmd;
mod server;
mod transport;

use std::io::IsTerminal;
use std::process::ExitCode;

use auth_core::Provider;
use auth_core::config::{self, ProviderOverrides};
use clap::Parser;

use crate::cli::{Cli, Command};

// The unwinder (a panic unwinds to the dispatcher's `catch_unwind`), linked into the binary
// from libgcc_eh.a instead of loaded from libgcc_s.so.1 at every start: that library's
// constructor probes the CPU with `cpuid`, which traps to the hypervisor in a virtual machine
// (7 µs each on the VM the benchmarks ran on), 10% of a start's time there
// (docs/performance.md). Named by this crate, the library comes before std's `-lgcc_s` on the
// linker's command line, so `--as-needed` drops libgcc_s (for the tests of this crate too, so
// that they unwind with it).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[link(name = "gcc_eh", kind = "static", modifiers = "-bundle")]
unsafe extern "C" {}

/// The binary's `main`: flags from the command line, then serve or run the command.
pub fn run() -> ExitCode {
    ignore_file_size_signal();
    adopt_ssl_cert_file();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    let (level, default_level) = cli.log_level();
    logging::init(level, default_level);
    if let Some(Command::GenerateJsonSchema { out, .. }) = &cli.command {
        return match schema_cmd::write(out) {
            Ok(written) => {
                println!("{written}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!(
                    "auth-app-server: cannot write the schema to {}: {error}",
                    out.display()
                );
                ExitCode::FAILURE
            }
        };
    }
    let setup = cli.setup();
    let home = match config::resolve_home(setup.home) {
        Ok(home) => home,
        Err(error) => {
            eprintln!("auth-app-server: {error}");
            return ExitCode::from(commands::exit::ERROR);
        }
    };
    let overrides = ProviderOverrides::from_flags_and_env(
        setup.issuer,
        setup.client_id,
        setup.scopes,
        setup.protected_resource,
    );
    let provider = match config::load_provider(&home, &overrides) {
        Ok(Some(provider)) => Provider::Configured(provider.into()),
        Ok(None) => Provider::None,
        // The commands tell the person themselves, in their own words.
        Err(error) if cli.command.is_some() => Provider::Misconfigured(error),
        Err(error) => {
            tracing::error!(%error, "provider configuration is not valid; API-key login still works");
            Provider::Misconfigured(error)
        }
    };
    let backend = match config::load_storage(&home, setup.storage.map(Into::into)) {
        Ok(backend) => backend,
        // Never a silent fallback: an AUTH_APP_SERVER_STORAGE that is not valid stops here.
        Err(error @ config::ConfigError::Storage { .. }) => {
            eprintln!("auth-app-server: {error}; fix it and start again");
            return ExitCode::from(commands::exit::ERROR);
        }
        // config.toml itself is broken: the credentials stay where they are now, which the
        // home says. The error itself was reported once already, with the provider (logged by
        // the server, told in its own words by a command): it is not repeated here.
        Err(_) => {
            let backend = auth_core::store::in_use(&home);
            if cli.command.is_none() {
                tracing::warn!(storage = ?backend, "config.toml cannot be read (above), so neither can its storage backend; using the one that holds the credentials now");
            }
            backend
        }
    };
    // Read once, here; passed down to the store, the credential and its provider client.
    let limits = auth_core::Limits::from_env();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("auth-app-server: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let store = runtime
        .block_on(auth_core::store::open(home, backend, limits.lock_timeout))
        .with_test_write_delay(limits.test_write_delay);
    if let Some(warning) = store.permission_warning() {
        tracing::warn!("{warning}");
    }

    if let Some(command) = cli.command {
        return runtime.block_on(commands::run(command, store, provider, limits));
    }

    tracing::info!(home = %store.home().display(), provider = %provider_summary(&provider), storage = store.kind().as_str(), "auth-app-server starting");
    if std::io::stdin().is_terminal() {
        // A person who ran the bare binary: without this, one log line and silence.
        eprintln!("{SERVING_ON_A_TERMINAL}");
    }
    runtime.block_on(server::serve(store, provider, limits));
    // stdin's blocking read cannot be cancelled; everything is flushed, so leave now.
    std::process::exit(0)
}

/// What the server says when its stdin is a terminal.
const SERVING_ON_A_TERMINAL: &str = "\
auth-app-server: serving JSON-RPC 2.0 on stdin/stdout, one message per line, for the app that
spawns it. Type requests, or press Ctrl-D to stop. For the commands for people (status, token,
login, logout), see `auth-app-server --help`.";

/// `--help` and `--version` go to stdout and exit 0; a usage error goes to stderr with its own
/// exit code (clap's default, 2, would read as "needs login").
fn usage_error(error: &clap::Error) -> ExitCode {
    let _ = error.print();
    if error.use_stderr() {
        ExitCode::from(commands::exit::USAGE)
    } else {
        ExitCode::SUCCESS
    }
}

/// A write past the file size limit (`ulimit -f`) raises SIGXFSZ, whose default action kills
/// the process. Ignored, the write fails with EFBIG instead and is reported like any other
/// failed write (`-32013`), and the server keeps serving.
fn ignore_file_size_signal() {
    #[cfg(unix)]
    // SAFETY: SIG_IGN installs no handler code; this runs first in `main`, before any thread.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// `SSL_CERT_FILE` adds trust anchors to the platform's (docs/configuration.md). The TLS
/// verifier would read that file *instead of* the platform's store on Linux, so the variable is
/// taken out of this process's environment and handed to `auth-core`, which adds its
/// certificates to the platform's. (Programs this process starts, such as a browser, do not
/// see it.)
fn adopt_ssl_cert_file() {
    let name = auth_core::provider::network::SSL_CERT_FILE_ENV;
    let path = std::env::var_os(name).filter(|p| !p.is_empty());
    if std::env::var_os(name).is_some() {
        // SAFETY: this runs first in `main`, before any thread exists.
        unsafe { std::env::remove_var(name) };
    }
    auth_core::provider::network::adopt_ssl_cert_file(path.map(std::path::PathBuf::from));
}

fn provider_summary(provider: &Provider) -> String {
    match provider {
        Provider::None => "none".into(),
        Provider::Misconfigured(_) => "misconfigured".into(),
        Provider::Configured(p) => match (&p.issuer, &p.protected_resource) {
            (Some(issuer), _) => issuer.to_string(),
            (None, Some(resource)) => format!("issuer of {resource}"),
            (None, None) => "none".into(),
        },
    }
}
