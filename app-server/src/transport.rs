//! The stdio transport: one reader that splits stdin into bounded lines, and one output
//! ([`output`]) that alone decides who writes stdout, whole lines at a time. Knows nothing of
//! JSON-RPC or auth.
//!
//! stdin is read with blocking reads on a thread of its own (as rust-analyzer's `lsp-server`
//! does), not through the async runtime: a read that blocks is woken by the kernel the moment
//! a line arrives, where an event loop pays an `epoll_wait`, a wake-up and a second system call
//! for it; and it works the same on a pipe, a socket (node spawns its children on socket
//! pairs), a file or a terminal.

use std::io::{self, BufRead, Read};
use std::time::Instant;

mod output;

#[cfg(test)]
pub use output::Receiver;
pub use output::{Outgoing, OutgoingSender, Permits, spawn_writer};

/// stdin, for blocking reads (its own descriptor on Unix, so that std's buffer and lock stay
/// out of the way).
pub fn stdin() -> Box<dyn Read + Send> {
    #[cfg(unix)]
    if let Some(file) = own_descriptor(io::stdin()) {
        return Box::new(Blocking(file));
    }
    Box::new(io::stdin())
}

/// stdout twice: as an async writer for the writer task (the pipe itself when it is one, else
/// tokio's stdout), and, on Unix, as a file for the reader's own writes of answers ready at once
/// ([`OutgoingSender::send_now`]; elsewhere every line goes through the writer task).
pub fn stdout() -> (
    std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    Option<std::fs::File>,
) {
    #[cfg(unix)]
    {
        let pipe = own_descriptor(io::stdout())
            .and_then(|file| tokio::net::unix::pipe::Sender::from_file(file).ok());
        let for_reader = own_descriptor(io::stdout());
        match pipe {
            Some(pipe) => (Box::pin(pipe), for_reader),
            None => (Box::pin(tokio::io::stdout()), for_reader),
        }
    }
    #[cfg(not(unix))]
    {
        (Box::pin(tokio::io::stdout()), None)
    }
}

/// A descriptor of its own on what `stream` reads or writes (`dup`).
#[cfg(unix)]
fn own_descriptor(stream: impl std::os::fd::AsFd) -> Option<std::fs::File> {
    let fd = stream.as_fd().try_clone_to_owned().ok()?;
    Some(std::fs::File::from(fd))
}

/// A descriptor read with blocking reads even when whoever shares it made it non-blocking: a
/// read that would block waits in `poll` for input instead.
#[cfg(unix)]
struct Blocking(std::fs::File);

#[cfg(unix)]
impl Read for Blocking {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        loop {
            match self.0.read(buf) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    let mut readable = libc::pollfd {
                        fd: self.0.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd, for the duration of the call.
                    if unsafe { libc::poll(&mut readable, 1, -1) } < 0 {
                        let error = io::Error::last_os_error();
                        if error.kind() != io::ErrorKind::Interrupted {
                            return Err(error);
                        }
                    }
                }
                read => return read,
            }
        }
    }
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

impl<R: Read> Read for Stamped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        if read > 0 {
            self.last_read = Instant::now();
        }
        Ok(read)
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
pub fn read_line(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<Incoming>> {
    buf.clear();
    let mut too_long = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Result<String, Incoming>> {
        let mut reader = io::BufReader::with_capacity(4, input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let Some(incoming) = read_line(&mut reader, &mut buf, max).unwrap() {
            out.push(match incoming {
                Incoming::Line => Ok(String::from_utf8(buf.clone()).unwrap()),
                other => Err(other),
            });
        }
        out
    }

    #[test]
    fn splits_lines_and_skips_overlong_ones_whole() {
        let got = lines(b"ab\n0123456789\ncd\n\nlast", 5);
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

    #[test]
    fn a_line_of_exactly_the_limit_is_accepted() {
        assert_eq!(
            lines(b"12345\n123456\n", 5),
            vec![Ok("12345".into()), Err(Incoming::TooLong)]
        );
    }
}
