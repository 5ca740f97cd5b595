//! Go's `ReadHeaderTimeout` semantics for hyper's HTTP/1 connections: a request's headers
//! must arrive within `limits.http_read_header_timeout` of its first byte (of the accept, for
//! the first request), while a keep-alive connection waiting for its next request is only
//! bounded by [`IDLE_TIMEOUT`]. hyper's own `header_read_timeout` also counts the idle time
//! between requests, which closes pooled client connections after a few seconds and makes
//! clients that reuse them at that moment fail.
//!
//! ```text
//!  Head (deadline: first byte + limit) ──"\r\n\r\n" read──► Body (no deadline)
//!    ▲                                                        │ final response head written
//!    └──────────── a byte of the next request ◄── Idle (deadline: IDLE_TIMEOUT)
//! ```
//! The wrapper only watches bytes; hyper still parses them. Past a deadline the next read
//! fails (`TimedOut`) and hyper closes the connection.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How long a keep-alive connection may wait for its next request (longer than the 90 s idle
/// pools of hyper's and Go's clients, so they drop their connections first).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a request head.
    Head,
    /// The head is in; the body and the answer are the handler's business.
    Body,
    /// The answer is out; waiting for the next request.
    Idle,
}

/// An HTTP/1 server connection with header and idle deadlines.
pub(crate) struct HeaderDeadline<I> {
    io: I,
    limit: Option<Duration>,
    state: State,
    /// The last bytes of the head read so far, to find its end across reads.
    window: u32,
    sleep: Pin<Box<Sleep>>,
    armed: bool,
}

impl<I> HeaderDeadline<I> {
    /// Wraps a just-accepted connection: its first head is due within `limit` (`None`: no
    /// header deadline).
    pub(crate) fn new(io: I, limit: Option<Duration>) -> HeaderDeadline<I> {
        let mut d = HeaderDeadline {
            io,
            limit,
            state: State::Head,
            window: 0,
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed: false,
        };
        d.arm(limit);
        d
    }

    fn arm(&mut self, d: Option<Duration>) {
        self.armed = d.is_some();
        if let Some(d) = d {
            self.sleep.as_mut().reset(Instant::now() + d);
        }
    }

    /// Follows the state through bytes just read.
    fn saw_read(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.state == State::Idle {
            self.state = State::Head;
            self.window = 0;
            self.arm(self.limit);
        }
        if self.state != State::Head {
            return;
        }
        for &b in bytes {
            self.window = (self.window << 8) | u32::from(b);
            if self.window == u32::from_be_bytes(*b"\r\n\r\n") || self.window & 0xffff == 0x0a0a {
                self.state = State::Body;
                self.armed = false;
                return;
            }
        }
    }

    /// Follows the state through bytes about to be written: a final response head (not a
    /// `100 Continue`) ends the request.
    fn saw_write(&mut self, bytes: &[u8]) {
        let is_final_head = bytes.starts_with(b"HTTP/1.") && bytes.get(9).is_some_and(|&c| c != b'1');
        if self.state == State::Body && is_final_head {
            self.state = State::Idle;
            self.arm(Some(IDLE_TIMEOUT));
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for HeaderDeadline<I> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.saw_read(&buf.filled()[before..]);
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.armed && this.sleep.as_mut().poll(cx).is_ready() => {
                let what = if this.state == State::Idle { "idle" } else { "request headers" };
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, format!("{what} timeout"))))
            }
            other => other,
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for HeaderDeadline<I> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.saw_write(buf);
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            this.saw_write(first);
        }
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    const LIMIT: Duration = Duration::from_secs(10);

    #[test]
    fn the_state_follows_heads_and_final_answers() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("rt");
        let _guard = rt.enter();
        let mut d = HeaderDeadline::new((), Some(LIMIT));
        assert_eq!((d.state, d.armed), (State::Head, true));
        d.saw_read(b"GET / HTTP/1.1\r\nHost: a\r");
        assert_eq!(d.state, State::Head, "a head split across reads is not over yet");
        d.saw_read(b"\n\r\nbody bytes \r\n\r\n");
        assert_eq!((d.state, d.armed), (State::Body, false));
        d.saw_write(b"HTTP/1.1 100 Continue\r\n\r\n");
        assert_eq!(d.state, State::Body, "an interim answer does not end the request");
        d.saw_write(b"HTTP/1.1 200 OK\r\n");
        assert_eq!((d.state, d.armed), (State::Idle, true));
        d.saw_read(b"G");
        assert_eq!((d.state, d.armed), (State::Head, true), "the next request's first byte starts the clock");
        d.saw_read(b"ET / HTTP/1.1\n\n");
        assert_eq!(d.state, State::Body, "bare LF line ends count too");
    }

    /// Short enough for a real-time test, long enough for a loaded machine to tell apart.
    const SHORT: Duration = Duration::from_millis(200);

    #[tokio::test]
    async fn a_trickled_head_times_out_but_an_idle_keep_alive_connection_does_not() {
        let (client, server) = tokio::io::duplex(1024);
        let mut server = HeaderDeadline::new(server, Some(SHORT));
        let (mut c_rd, mut c_wr) = tokio::io::split(client);
        c_wr.write_all(b"GET / HTTP/1.1\r\n\r\n").await.expect("write");
        let mut buf = [0u8; 64];
        let _ = server.read(&mut buf).await.expect("the head");
        server.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await.expect("answer");
        let _ = c_rd.read(&mut buf).await.expect("the answer");

        // Idle well past the header limit: still open.
        let idle = tokio::time::timeout(SHORT * 3, server.read(&mut buf)).await;
        assert!(idle.is_err(), "an idle connection is kept past the header limit");

        // The next request trickles: it is cut about SHORT after its first byte.
        c_wr.write_all(b"G").await.expect("write");
        let start = Instant::now();
        let _ = server.read(&mut buf).await.expect("first byte");
        let e = server.read(&mut buf).await.expect_err("the header deadline");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
    }

    #[tokio::test]
    async fn a_silent_new_connection_is_closed_and_none_disables_the_header_deadline() {
        let (_client, server) = tokio::io::duplex(64);
        let mut server = HeaderDeadline::new(server, Some(SHORT));
        let mut buf = [0u8; 8];
        let e = server.read(&mut buf).await.expect_err("silent");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);

        let (_client, server) = tokio::io::duplex(64);
        let mut server = HeaderDeadline::new(server, None);
        let silent = tokio::time::timeout(SHORT * 2, server.read(&mut buf)).await;
        assert!(silent.is_err(), "no header deadline: the read just waits");
    }
}
