//! The connection under hyper: TCP or TLS over TCP, and the rule that a failed write does
//! not end the exchange.
//!
//! A server may answer before it has read the whole request body (an upload refused for its
//! query or its token) and then close the connection; writing the rest of the body then fails
//! (`EPIPE`, `ECONNRESET`) while the answer already waits in the receive buffer. [`Tcp`]
//! records the first such failure and reports later writes as done, so hyper goes on to read
//! the answer; when there is none, the caller reports the recorded failure.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::ClientError;

/// The first write failure of a connection, shared with the caller.
#[derive(Debug, Clone, Default)]
pub(crate) struct WriteFailure(Arc<OnceLock<(io::ErrorKind, String)>>);

impl WriteFailure {
    pub(crate) fn get(&self) -> Option<&(io::ErrorKind, String)> {
        self.0.get()
    }

    /// The recorded failure as a [`ClientError::Io`].
    pub(crate) fn error(&self) -> ClientError {
        let (kind, text) = self
            .0
            .get()
            .cloned()
            .unwrap_or((io::ErrorKind::Other, "write failed".into()));
        ClientError::Io(io::Error::new(kind, text))
    }
}

/// A TCP stream whose writes after the peer closed are swallowed (see the module header).
pub(crate) struct Tcp {
    inner: TcpStream,
    failure: WriteFailure,
}

impl Tcp {
    pub(crate) fn new(inner: TcpStream) -> (Tcp, WriteFailure) {
        let failure = WriteFailure::default();
        (
            Tcp {
                inner,
                failure: failure.clone(),
            },
            failure,
        )
    }

    fn failed(&self) -> bool {
        self.failure.get().is_some()
    }

    /// `Ok` for a write the peer's close made fail (recorded), else `r` unchanged.
    fn absorb<T>(&self, r: io::Result<T>, done: T) -> io::Result<T> {
        match r {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::BrokenPipe
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionAborted
                ) =>
            {
                let _ = self.failure.0.set((e.kind(), e.to_string()));
                Ok(done)
            }
            other => other,
        }
    }
}

impl AsyncRead for Tcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.failed() {
            return Poll::Ready(Ok(buf.len()));
        }
        let r = std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, buf));
        Poll::Ready(self.absorb(r, buf.len()))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let len = bufs.iter().map(|b| b.len()).sum();
        if self.failed() {
            return Poll::Ready(Ok(len));
        }
        let r = std::task::ready!(Pin::new(&mut self.inner).poll_write_vectored(cx, bufs));
        Poll::Ready(self.absorb(r, len))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.failed() {
            return Poll::Ready(Ok(()));
        }
        let r = std::task::ready!(Pin::new(&mut self.inner).poll_flush(cx));
        Poll::Ready(self.absorb(r, ()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.failed() {
            return Poll::Ready(Ok(()));
        }
        let r = std::task::ready!(Pin::new(&mut self.inner).poll_shutdown(cx));
        Poll::Ready(self.absorb(r, ()))
    }
}

/// A plain or TLS connection.
pub(crate) enum Stream {
    Plain(Tcp),
    Tls(Box<TlsStream<Tcp>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
