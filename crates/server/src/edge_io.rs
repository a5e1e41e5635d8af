//! The connection's byte stream as hyper sees it, with two fixes below HTTP:
//! - hyper answers a request it cannot parse by itself (400 malformed, 414 URI too long, 431
//!   too many or too large headers) with an empty body, before any handler runs; such an
//!   answer is recognised as it is written (those statuses with `content-length: 0`, which no
//!   handler sends: every handler error has a JSON body) and replaced by the standard JSON
//!   error body with a stable code;
//! - closing: after the answer, the rest of what the client still sends (an unread request
//!   body, e.g. after `413 body_too_large`) is read and dropped for a short while ("lingering
//!   close", bounded in time and bytes), so the kernel does not reset the connection and
//!   destroy the answer before the client has read it.

use ferrocore_proto::codes;
use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How long a closing connection keeps reading what the client still sends.
const LINGER_TIME: Duration = Duration::from_secs(2);
/// How many bytes a closing connection reads and drops at most.
const LINGER_BYTES: usize = 4 * 1024 * 1024;

pub struct EdgeIo<IO> {
    inner: IO,
    /// A rewritten automatic answer still to be written.
    pending: Vec<u8>,
    pending_at: usize,
    linger: Linger,
}

enum Linger {
    /// Not closing yet.
    Open,
    /// Write side shut down; reading until EOF, the byte budget or the deadline.
    Draining {
        deadline: Pin<Box<tokio::time::Sleep>>,
        read: usize,
    },
    Done,
}

impl<IO> EdgeIo<IO> {
    pub fn new(inner: IO) -> Self {
        EdgeIo {
            inner,
            pending: Vec::new(),
            pending_at: 0,
            linger: Linger::Open,
        }
    }
}

/// The JSON answer replacing hyper's empty automatic answer in `buf`, if `buf` starts with one.
pub fn rewrite_automatic_answer(buf: &[u8]) -> Option<Vec<u8>> {
    let (status_line, code, message) = if buf.starts_with(b"HTTP/1.1 400 ") {
        (
            "HTTP/1.1 400 Bad Request",
            codes::MALFORMED_REQUEST,
            "the request is not valid HTTP/1.1",
        )
    } else if buf.starts_with(b"HTTP/1.1 431 ") {
        (
            "HTTP/1.1 431 Request Header Fields Too Large",
            codes::HEADERS_TOO_LARGE,
            "too many request headers, or request headers too large",
        )
    } else if buf.starts_with(b"HTTP/1.1 414 ") {
        (
            "HTTP/1.1 414 URI Too Long",
            codes::URI_TOO_LONG,
            "the request target is too long",
        )
    } else {
        return None;
    };
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = buf[..end].to_ascii_lowercase();
    let empty = head.windows(19).any(|w| w == b"content-length: 0\r\n");
    if !empty || head.windows(13).any(|w| w == b"content-type:") || end != buf.len() {
        return None;
    }
    let body = serde_json::json!({"error": {"code": code, "message": message}}).to_string();
    Some(
        format!(
            "{status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl<IO: AsyncWrite + Unpin> EdgeIo<IO> {
    /// Writes what is left of a rewritten answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.pending_at < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.pending_at..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending_at += n;
        }
        self.pending.clear();
        self.pending_at = 0;
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for EdgeIo<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for EdgeIo<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        if let Some(reply) = rewrite_automatic_answer(buf) {
            self.pending = reply;
            self.pending_at = 0;
            // Written by the next write, flush or shutdown.
            let _ = self.poll_pending(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        // hyper's automatic answer is a head alone: one non-empty slice.
        let mut nonempty = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (nonempty.next(), nonempty.next())
            && let Some(reply) = rewrite_automatic_answer(only)
        {
            let n = only.len();
            self.pending = reply;
            self.pending_at = 0;
            let _ = self.poll_pending(cx)?;
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            match &mut self.linger {
                Linger::Open => {
                    ready!(self.poll_pending(cx))?;
                    ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
                    ready!(Pin::new(&mut self.inner).poll_shutdown(cx))?;
                    self.linger = Linger::Draining {
                        deadline: Box::pin(tokio::time::sleep(LINGER_TIME)),
                        read: 0,
                    };
                }
                Linger::Draining { deadline, read } => {
                    if deadline.as_mut().poll(cx).is_ready() || *read >= LINGER_BYTES {
                        self.linger = Linger::Done;
                        continue;
                    }
                    let read_so_far = *read;
                    let mut scratch = [0u8; 16 * 1024];
                    let mut rb = ReadBuf::new(&mut scratch);
                    match ready!(Pin::new(&mut self.inner).poll_read(cx, &mut rb)) {
                        Ok(()) if !rb.filled().is_empty() => {
                            let n = rb.filled().len();
                            if let Linger::Draining { read, .. } = &mut self.linger {
                                *read = read_so_far + n;
                            }
                        }
                        // EOF or an error: the client is gone.
                        _ => self.linger = Linger::Done,
                    }
                }
                Linger::Done => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_automatic_answers_become_json_and_handler_answers_stay() {
        let auto = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Wed, 02 Dec 2026 00:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(rewrite_automatic_answer(auto).unwrap()).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 "), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], codes::HEADERS_TOO_LARGE);
        assert!(head.contains(&format!("content-length: {}", body.len())));

        let bad = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        assert!(rewrite_automatic_answer(bad).is_some());
        // A handler's 400 has a JSON body: left alone.
        let handler =
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 10\r\n\r\n{\"a\":1234}";
        assert!(rewrite_automatic_answer(handler).is_none());
        assert!(
            rewrite_automatic_answer(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none()
        );
    }
}
