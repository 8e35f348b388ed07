//! The server's life: set up the credential and methods, read stdin until it ends (or a signal
//! comes), then let in-flight requests finish, flush and exit.

use std::sync::Arc;
use std::time::Duration;

use auth_core::registry::{NamedEventSink, Registry};
use auth_core::store::AuthStore;
use auth_core::{Limits, Provider};
use tokio::io::{AsyncRead, AsyncWrite, BufReader};

use crate::convert;
use crate::dispatch::Dispatcher;
use crate::envelope;
use crate::methods::{self, ServerContext};
use crate::transport::{self, Incoming, Outgoing, Permits};

/// Lines longer than this are answered `-32600` and skipped.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

pub async fn serve(store: AuthStore, provider: Provider, limits: Limits) {
    let (input, output) = (transport::stdin(), transport::stdout());
    // The signals are awaited in a task of their own, so that waking the reader for each line
    // does not poll them too (a poll of the two signal streams cost 6% of a request's
    // instructions); the reader's wait polls a oneshot instead.
    let (signalled, signal) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = signalled.send(shutdown_signal().await);
    });
    let shutdown = async move {
        match signal.await {
            Ok(signal) => signal,
            Err(_) => std::future::pending().await,
        }
    };
    serve_io(store, provider, limits, input, output, shutdown).await;
}

/// [`serve`] on any input and output, until the input ends or `shutdown` completes (`fuzzing`
/// runs the real server this way on bytes in memory).
pub async fn serve_io(
    store: AuthStore,
    provider: Provider,
    limits: Limits,
    input: impl AsyncRead + Unpin,
    output: impl AsyncWrite + Send + 'static,
    shutdown: impl Future<Output = &'static str>,
) {
    let out = transport::spawn_writer(output);
    let notify_out = out.clone();
    let events: NamedEventSink = Arc::new(move |credential, event| {
        let (method, params) = convert::notification(credential, event);
        let text = envelope::notification(method, params);
        let _ = notify_out.send(Outgoing::Line {
            text,
            permits: Permits::default(),
        });
    });
    let registry = Arc::new(Registry::new(store, provider, events, limits));
    let context = ServerContext {
        registry: registry.clone(),
    };
    let dispatcher = Dispatcher::new(methods::module(context).into(), out);

    tokio::select! {
        result = read_lines(&dispatcher, input) => {
            if let Err(error) = result {
                tracing::error!(%error, "cannot read stdin; shutting down");
            }
        }
        signal = shutdown => tracing::info!(signal, "shutting down"),
    }
    dispatcher.drain().await;
    // A logout's revocation may still be on its way; it gets a short, bounded wait.
    registry.wait_background(Duration::from_secs(5)).await;
}

async fn read_lines(
    dispatcher: &Arc<Dispatcher>,
    input: impl AsyncRead + Unpin,
) -> std::io::Result<()> {
    let mut input = BufReader::with_capacity(64 * 1024, transport::Stamped::new(input));
    let mut line = Vec::with_capacity(4096);
    while let Some(incoming) = transport::read_line(&mut input, &mut line, MAX_LINE_BYTES).await? {
        match incoming {
            // The last read ended the line: all of it had arrived when that read returned.
            Incoming::Line => {
                let received = input.get_ref().last_read();
                dispatcher.handle_line(&line, received).await
            }
            Incoming::TooLong => dispatcher.line_too_long(MAX_LINE_BYTES).await,
        }
        if line.capacity() > 64 * 1024 {
            line = Vec::with_capacity(4096);
        }
    }
    tracing::debug!("stdin closed");
    Ok(())
}

async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "ctrl-c"
    }
}
