//! The stdio transport: one reader that splits stdin into bounded lines, and one writer that
//! alone owns stdout and writes whole lines. Knows nothing of JSON-RPC or auth.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter, ReadBuf,
};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

/// stdin as an async reader. A pipe (the usual case: a parent process spawned us) is read
/// directly on the event loop; anything else goes through tokio's blocking-thread stdin,
/// which costs a thread hop per read.
pub fn stdin() -> Pin<Box<dyn AsyncRead + Send>> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        let pipe = std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .and_then(|fd| {
                tokio::net::unix::pipe::Receiver::from_file(std::fs::File::from(fd)).ok()
            });
        if let Some(pipe) = pipe {
            return Box::pin(pipe);
        }
    }
    Box::pin(tokio::io::stdin())
}

/// stdout as an async writer: the pipe itself when it is one, else tokio's stdout.
pub fn stdout() -> Pin<Box<dyn AsyncWrite + Send>> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        let pipe = std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .and_then(|fd| tokio::net::unix::pipe::Sender::from_file(std::fs::File::from(fd)).ok());
        if let Some(pipe) = pipe {
            return Box::pin(pipe);
        }
    }
    Box::pin(tokio::io::stdout())
}

/// A reader that notes when its last read that brought bytes returned: by then every byte it
/// returned had arrived.
pub struct Stamped<R> {
    inner: R,
    last_read: Instant,
}

impl<R> Stamped<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            last_read: Instant::now(),
        }
    }

    /// When the last read that brought bytes returned.
    pub fn last_read(&self) -> Instant {
        self.last_read
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Stamped<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.last_read = Instant::now();
        }
        polled
    }
}

/// What the reader found on stdin.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A complete line (without its `\n`) is in the caller's buffer.
    Line,
    /// The line was longer than the limit; it was skipped up to its end.
    TooLong,
}

/// Reads `\n`-terminated lines of at most `max` bytes into `buf`. A longer line is discarded
/// as it streams by, so memory stays bounded. `None` at end of input.
pub async fn read_line(
    reader: &mut (impl AsyncBufRead + Unpin),
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<Incoming>> {
    buf.clear();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            // End of input: a last line without `\n` still counts.
            return Ok(match (too_long, buf.is_empty()) {
                (true, _) => Some(Incoming::TooLong),
                (false, true) => None,
                (false, false) => Some(Incoming::Line),
            });
        }
        let (chunk, consumed, complete) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..end], end + 1, true),
            None => (available, available.len(), false),
        };
        if !too_long {
            if buf.len() + chunk.len() > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        reader.consume(consumed);
        if complete {
            return Ok(Some(if too_long {
                Incoming::TooLong
            } else {
                Incoming::Line
            }));
        }
    }
}

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
}

pub type OutgoingSender = mpsc::UnboundedSender<Outgoing>;

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

/// Starts the writer task. Lines are written whole, in the order queued, and flushed whenever
/// the queue runs empty.
pub fn spawn_writer(output: impl AsyncWrite + Send + 'static) -> OutgoingSender {
    let (sender, mut queue) = mpsc::unbounded_channel::<Outgoing>();
    tokio::spawn(async move {
        let mut output = Box::pin(BufWriter::with_capacity(64 * 1024, output));
        let mut broken = false;
        while let Some(first) = queue.recv().await {
            let mut next = Some(first);
            let mut acks = Vec::new();
            while let Some(item) = next {
                match item {
                    Outgoing::Line { text, permits } => {
                        if !broken {
                            broken = output.write_all(text.as_bytes()).await.is_err()
                                || output.write_all(b"\n").await.is_err();
                        }
                        drop(permits);
                    }
                    Outgoing::Flush(ack) => acks.push(ack),
                }
                next = queue.try_recv().ok();
            }
            if !broken {
                broken = output.flush().await.is_err();
                if broken {
                    tracing::warn!("stdout is closed; answers are dropped");
                }
            }
            for ack in acks {
                let _ = ack.send(());
            }
        }
    });
    sender
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<Result<String, Incoming>> {
        let mut reader = tokio::io::BufReader::with_capacity(4, input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let Some(incoming) = read_line(&mut reader, &mut buf, max).await.unwrap() {
            out.push(match incoming {
                Incoming::Line => Ok(String::from_utf8(buf.clone()).unwrap()),
                other => Err(other),
            });
        }
        out
    }

    #[tokio::test]
    async fn splits_lines_and_skips_overlong_ones_whole() {
        let got = lines(b"ab\n0123456789\ncd\n\nlast", 5).await;
        assert_eq!(
            got,
            vec![
                Ok("ab".into()),
                Err(Incoming::TooLong),
                Ok("cd".into()),
                Ok("".into()),
                Ok("last".into())
            ]
        );
    }

    #[tokio::test]
    async fn a_line_of_exactly_the_limit_is_accepted() {
        assert_eq!(
            lines(b"12345\n123456\n", 5).await,
            vec![Ok("12345".into()), Err(Incoming::TooLong)]
        );
    }
}
