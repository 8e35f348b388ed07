//! The server's life: set up the credential and methods, read stdin until it ends (or a signal
//! comes), then let in-flight requests finish, flush and exit.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use auth_core::registry::{NamedEventSink, Registry};
use auth_core::store::AuthStore;
use auth_core::{Limits, Provider};
use tokio::io::AsyncWrite;
use tokio::runtime::Handle;

use crate::convert;
use crate::dispatch::Dispatcher;
use crate::envelope;
use crate::methods::{self, ServerContext};
use crate::transport::{self, Incoming, Outgoing, Permits};

/// Lines longer than this are answered `-32600` and skipped.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

pub async fn serve(store: AuthStore, provider: Provider, limits: Limits) {
    let (input, output) = (transport::stdin(), transport::stdout());
    serve_io(store, provider, limits, input, output, shutdown_signal()).await;
}

/// [`serve`] on any input and output, until the input ends or `shutdown` completes (`fuzzing`
/// runs the real server this way on bytes in memory). `output` is stdout for the writer task,
/// and the same stdout for the reader's own writes, if it may make them.
pub async fn serve_io(
    store: AuthStore,
    provider: Provider,
    limits: Limits,
    input: impl Read + Send + 'static,
    output: (impl AsyncWrite + Send + 'static, Option<std::fs::File>),
    shutdown: impl Future<Output = &'static str>,
) {
    let out = transport::spawn_writer(output.0, output.1);
    let notify_out = out.clone();
    let events: NamedEventSink = Arc::new(move |credential, event| {
        let (method, params) = convert::notification(credential, event);
        let text = envelope::notification(method, params);
        notify_out.send(Outgoing::Line {
            text,
            permits: Permits::default(),
        });
    });
    let registry = Arc::new(Registry::new(store, provider, events, limits));
    let context = ServerContext {
        registry: registry.clone(),
    };
    let dispatcher = Dispatcher::new(methods::module(context).into(), out);

    let stop = Arc::new(AtomicBool::new(false));
    let (read, mut ended) = tokio::sync::oneshot::channel();
    let reader = {
        let (dispatcher, stop, runtime) = (dispatcher.clone(), stop.clone(), Handle::current());
        std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || {
                let _ = read.send(read_lines(&dispatcher, input, &runtime, &stop));
            })
    };
    if let Err(error) = reader {
        tracing::error!(%error, "cannot start the thread that reads stdin; shutting down");
    } else {
        tokio::select! {
            read = &mut ended => match read {
                Ok(Err(error)) => tracing::error!(%error, "cannot read stdin; shutting down"),
                Ok(Ok(())) => tracing::debug!("stdin closed"),
                Err(_) => tracing::error!("the stdin reader stopped unexpectedly; shutting down"),
            },
            signal = shutdown => {
                tracing::info!(signal, "shutting down");
                // The reader may be blocked in a read: it handles no line from now on.
                stop.store(true, Ordering::Release);
            }
        }
    }
    dispatcher.drain().await;
    // A logout's revocation may still be on its way; it gets a short, bounded wait.
    registry.wait_background(Duration::from_secs(5)).await;
}

/// Reads stdin's lines until it ends (or `stop` is set), on the reader's own thread, each
/// handed to the dispatcher there: its order-sensitive decisions are made before the next line
/// is read, and an answer ready at once is written from here.
fn read_lines(
    dispatcher: &Arc<Dispatcher>,
    input: impl Read,
    runtime: &Handle,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let mut input = std::io::BufReader::with_capacity(64 * 1024, transport::Stamped::new(input));
    let mut line = Vec::with_capacity(4096);
    while let Some(incoming) = transport::read_line(&mut input, &mut line, MAX_LINE_BYTES)? {
        if stop.load(Ordering::Acquire) {
            break;
        }
        match incoming {
            // The last read ended the line: all of it had arrived when that read returned.
            Incoming::Line => {
                let received = input.get_ref().last_read();
                runtime.block_on(dispatcher.handle_line(&line, received));
            }
            Incoming::TooLong => runtime.block_on(dispatcher.line_too_long(MAX_LINE_BYTES)),
        }
        if line.capacity() > 64 * 1024 {
            line = Vec::with_capacity(4096);
        }
    }
    Ok(())
}

/// Listens for SIGTERM and SIGINT (Ctrl-C elsewhere) from now on: the listeners are made
/// before the reader starts, so a signal sent once any answer came is handled, not fatal. The
/// future completes with the first.
fn shutdown_signal() -> impl Future<Output = &'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let listeners = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        );
        async move {
            let (Ok(mut term), Ok(mut int)) = listeners else {
                return std::future::pending().await;
            };
            tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
            "ctrl-c"
        }
    }
}
