//! The output: the one owner of stdout. Lines are queued for the writer task, which writes them
//! whole, in order, and flushes whenever the queue runs empty; or, when nothing is queued or
//! being written, the reader writes an answer it has at once itself
//! ([`OutgoingSender::send_now`]), in one `write`, instead of waking the writer task for it (a
//! poll answered from memory then costs the reader's `read`, its `write`, and no hop).
//! Either way one writer at a time, and the lines in the order they were handed over.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{Notify, OwnedSemaphorePermit, oneshot};

/// A line for stdout. Its permits (none, one, or one per bound a batch answer counts against)
/// are released only once the line has been written, so that unwritten answers count against
/// the in-flight bound: a client that stops reading cannot make the server buffer without limit.
pub enum Outgoing {
    Line {
        text: String,
        permits: Permits,
    },
    /// Flush everything queued before it, then acknowledge.
    Flush(oneshot::Sender<()>),
    /// What a write of the reader's left unwritten (stdout was full), with its line's end.
    Rest {
        bytes: Vec<u8>,
        permits: Permits,
    },
}

/// The permits a line holds until it is written: one per semaphore it counts against (at most
/// three: calls, the dispatcher's own lines and their bytes), kept inline so that an answer
/// costs no allocation for them.
#[derive(Default)]
pub struct Permits {
    /// Held until the line is written, then dropped with it; never read.
    _held: [Option<OwnedSemaphorePermit>; 3],
}

impl Permits {
    pub fn new(held: [Option<OwnedSemaphorePermit>; 3]) -> Self {
        Self { _held: held }
    }
}

impl From<Option<OwnedSemaphorePermit>> for Permits {
    fn from(permit: Option<OwnedSemaphorePermit>) -> Self {
        Self::new([permit, None, None])
    }
}

/// Hands lines to the output, from any thread.
#[derive(Clone)]
pub struct OutgoingSender(Arc<Shared>);

struct Shared {
    pending: Mutex<Pending>,
    /// Wakes the writer task when lines are queued and nobody is writing.
    queued: Notify,
    /// stdout, for the reader's own writes; `None` when every line goes through the writer.
    reader_stdout: Option<std::fs::File>,
}

#[derive(Default)]
struct Pending {
    lines: VecDeque<Outgoing>,
    /// Someone is writing (the writer task, or the reader at once): nobody else may start.
    writing: bool,
    /// stdout is closed: lines are dropped (their permits released) instead of written.
    broken: bool,
}

impl OutgoingSender {
    fn new(reader_stdout: Option<std::fs::File>) -> Self {
        Self(Arc::new(Shared {
            pending: Mutex::default(),
            queued: Notify::new(),
            reader_stdout,
        }))
    }

    /// A sender whose lines nothing writes, and what receives them (unit tests of the
    /// dispatcher).
    #[cfg(test)]
    pub fn for_tests() -> (Self, Receiver) {
        let sender = Self::new(None);
        (sender.clone(), Receiver(sender))
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.0
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `item` for the writer task.
    pub fn send(&self, item: Outgoing) {
        let mut pending = self.pending();
        pending.lines.push_back(item);
        if !pending.writing {
            self.0.queued.notify_one();
        }
    }

    /// Writes the line on this thread, at once, when nothing is queued or being written and
    /// there is a stdout for it; else queues it. For the reader only: the `write` may block
    /// while stdout is full (a descriptor tokio did not make non-blocking), and the reader
    /// then waits, as it should, where the runtime must not.
    pub fn send_now(&self, text: String, permits: Permits) {
        let Some(stdout) = &self.0.reader_stdout else {
            return self.send(Outgoing::Line { text, permits });
        };
        {
            let mut pending = self.pending();
            if pending.writing || pending.broken || !pending.lines.is_empty() {
                drop(pending);
                return self.send(Outgoing::Line { text, permits });
            }
            pending.writing = true;
        }
        let mut line = text.into_bytes();
        line.push(b'\n');
        let written = write_some(stdout, &line);
        let mut pending = self.pending();
        pending.writing = false;
        match written {
            Ok(n) if n == line.len() => drop(permits),
            Ok(n) => {
                // stdout is full (tokio made it non-blocking): the writer task waits for it.
                line.drain(..n);
                pending.lines.push_front(Outgoing::Rest {
                    bytes: line,
                    permits,
                });
            }
            Err(error) => {
                tracing::debug!(%error, "write to stdout");
                pending.set_broken();
            }
        }
        if !pending.lines.is_empty() {
            self.0.queued.notify_one();
        }
    }

    /// Takes everything queued, when nobody is writing; the caller is then the one writing
    /// until [`Self::written`].
    fn take(&self) -> Option<(VecDeque<Outgoing>, bool)> {
        let mut pending = self.pending();
        if pending.writing || pending.lines.is_empty() {
            return None;
        }
        pending.writing = true;
        Some((std::mem::take(&mut pending.lines), pending.broken))
    }

    /// Ends a [`Self::take`]'s writing.
    fn written(&self, broken: bool) {
        let mut pending = self.pending();
        pending.writing = false;
        if broken {
            pending.set_broken();
        }
    }
}

impl Pending {
    /// stdout cannot be written any more: said once, and every line from now on is dropped.
    fn set_broken(&mut self) {
        if !self.broken {
            tracing::warn!("stdout is closed; answers are dropped");
        }
        self.broken = true;
    }
}

/// Writes as much of `bytes` as stdout takes now: all of it, or less when a write would block.
fn write_some(mut stdout: &std::fs::File, bytes: &[u8]) -> io::Result<usize> {
    let mut written = 0;
    while written < bytes.len() {
        match stdout.write(&bytes[written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
            Err(error) => return Err(error),
        }
    }
    Ok(written)
}

/// Starts the writer task on `output`, stdout as an async writer; `reader_stdout` is the same
/// stdout for [`OutgoingSender::send_now`].
pub fn spawn_writer(
    output: impl AsyncWrite + Send + 'static,
    reader_stdout: Option<std::fs::File>,
) -> OutgoingSender {
    let sender = OutgoingSender::new(reader_stdout);
    let lines = sender.clone();
    tokio::spawn(async move {
        let mut output = Box::pin(BufWriter::with_capacity(64 * 1024, output));
        loop {
            lines.0.queued.notified().await;
            while let Some((taken, mut broken)) = lines.take() {
                let mut acks = Vec::new();
                for item in taken {
                    let (bytes, end, permits) = match item {
                        Outgoing::Line { text, permits } => (text.into_bytes(), true, permits),
                        Outgoing::Rest { bytes, permits } => (bytes, false, permits),
                        Outgoing::Flush(ack) => {
                            acks.push(ack);
                            continue;
                        }
                    };
                    if !broken {
                        broken = output.write_all(&bytes).await.is_err()
                            || (end && output.write_all(b"\n").await.is_err());
                    }
                    drop(permits);
                }
                if !broken {
                    broken = output.flush().await.is_err();
                }
                lines.written(broken);
                for ack in acks {
                    let _ = ack.send(());
                }
            }
        }
    });
    sender
}

/// What a [`OutgoingSender::for_tests`] sender was given, in order.
#[cfg(test)]
pub struct Receiver(OutgoingSender);

#[cfg(test)]
impl Receiver {
    pub async fn recv(&mut self) -> Option<Outgoing> {
        loop {
            if let Some(item) = self.0.pending().lines.pop_front() {
                return Some(item);
            }
            self.0.0.queued.notified().await;
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::io::Read;
    use std::os::fd::OwnedFd;

    use tokio::sync::Semaphore;

    use super::*;

    #[tokio::test]
    async fn a_line_a_full_pipe_cut_short_is_finished_by_the_writer_before_later_lines() {
        let (mut read_end, write_end) = io::pipe().unwrap();
        let for_reader = std::fs::File::from(OwnedFd::from(write_end.try_clone().unwrap()));
        // tokio makes the pipe non-blocking, for the reader's writes too (one description).
        let pipe = tokio::net::unix::pipe::Sender::from_file(std::fs::File::from(OwnedFd::from(
            write_end,
        )))
        .unwrap();
        let out = spawn_writer(pipe, Some(for_reader));
        let permits = Arc::new(Semaphore::new(1));

        // Longer than a pipe holds (64 KiB on Linux), with nobody reading yet.
        let long = "a".repeat(256 * 1024);
        let permit = permits.clone().try_acquire_owned().unwrap();
        out.send_now(long.clone(), Permits::from(Some(permit)));
        assert_eq!(
            permits.available_permits(),
            0,
            "the line is not all written yet, so its permit is held"
        );
        out.send_now("next".into(), Permits::default());
        out.send(Outgoing::Line {
            text: "queued".into(),
            permits: Permits::default(),
        });

        let expected = format!("{long}\nnext\nqueued\n");
        let length = expected.len();
        let read = tokio::task::spawn_blocking(move || {
            let mut text = vec![0; length];
            read_end.read_exact(&mut text).map(|()| text)
        });
        assert_eq!(
            String::from_utf8(read.await.unwrap().unwrap()).unwrap(),
            expected
        );
        // Released once written.
        drop(permits.acquire().await.unwrap());
    }
}
