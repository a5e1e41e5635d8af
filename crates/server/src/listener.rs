//! The accept loop shared by all listeners: TCP accept, TLS handshake with the listener's
//! current `ServerConfig` (swappable without restart), client-certificate verification on the
//! device listener, then HTTP/1.1 with [`ConnInfo`] attached to every request. A peer
//! presenting the configured front end's certificate (`front_ends.client_cert_sha256`) is
//! marked as such and its certificate is never verified as a device identity.
//!
//! File descriptors: [`raise_nofile_limit`] lifts the soft limit to the hard one at start;
//! when accept still fails for lack of descriptors, the loop backs off (5 ms doubling to 1 s,
//! one log line per episode and then at most one a minute) and asks the idle keep-alive
//! connections ([`Connections`]) to close, so they are the first to go. Every connection's
//! bytes pass through [`crate::edge_io::EdgeIo`] (JSON for hyper's own error answers,
//! lingering close).

use crate::edge_io::EdgeIo;
use crate::http::{ConnInfo, ListenerKind, SharedState};
use crate::tls::ClientCert;
use arc_swap::ArcSwap;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::server::ServerConfig;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tower::ServiceExt;

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Most request headers hyper reads; more get `431 headers_too_large`.
pub const MAX_HEADERS: usize = 100;
/// First and longest pause after a failed accept.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// While accept keeps failing, at most one log line per this interval.
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(60);

/// Raises the soft `RLIMIT_NOFILE` to the hard limit. Returns (before, now) soft limits
/// (`None` = unlimited).
pub fn raise_nofile_limit() -> std::io::Result<(Option<u64>, Option<u64>)> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let before = getrlimit(Resource::Nofile);
    if before.current == before.maximum {
        return Ok((before.current, before.current));
    }
    // An unlimited hard limit: Linux refuses an unlimited soft one, so ask for fs.nr_open.
    let target = match before.maximum {
        Some(m) => Some(m),
        None => std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .or(Some(1 << 20)),
    };
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: target,
            maximum: before.maximum,
        },
    )
    .map_err(std::io::Error::from)?;
    Ok((before.current, getrlimit(Resource::Nofile).current))
}

/// The open HTTP connections of the process, so idle ones can be closed first when file
/// descriptors run out.
#[derive(Default)]
pub struct Connections {
    slots: Mutex<HashMap<u64, Arc<Slot>>>,
    next: AtomicU64,
}

#[derive(Default)]
struct Slot {
    /// Requests being handled (0: idle between requests).
    busy: AtomicUsize,
    /// Asks the connection to close (hyper's graceful shutdown: at once when idle).
    shed: Notify,
}

impl Connections {
    fn register(self: &Arc<Self>) -> SlotGuard {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot::default());
        if let Ok(mut m) = self.slots.lock() {
            m.insert(id, slot.clone());
        }
        SlotGuard {
            conns: self.clone(),
            id,
            slot,
        }
    }

    /// Asks every idle connection to close; returns how many were asked.
    pub fn shed_idle(&self) -> usize {
        let Ok(m) = self.slots.lock() else { return 0 };
        let mut n = 0;
        for slot in m.values() {
            if slot.busy.load(Ordering::Acquire) == 0 {
                slot.shed.notify_one();
                n += 1;
            }
        }
        n
    }

    pub fn open(&self) -> usize {
        self.slots.lock().map(|m| m.len()).unwrap_or(0)
    }
}

/// Removes its connection from [`Connections`] when the connection ends.
struct SlotGuard {
    conns: Arc<Connections>,
    id: u64,
    slot: Arc<Slot>,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if let Ok(mut m) = self.conns.slots.lock() {
            m.remove(&self.id);
        }
    }
}

/// Marks its connection busy while a request is being handled.
struct Busy(Arc<Slot>);

impl Busy {
    fn new(slot: &Arc<Slot>) -> Busy {
        slot.busy.fetch_add(1, Ordering::AcqRel);
        Busy(slot.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whether an accept error means the process (or system) ran out of file descriptors.
fn out_of_descriptors(e: &std::io::Error) -> bool {
    use rustix::io::Errno;
    let n = e.raw_os_error();
    n == Some(Errno::MFILE.raw_os_error()) || n == Some(Errno::NFILE.raw_os_error())
}

/// Accept failures of one listener: backoff and rate-limited logging.
struct AcceptFailures {
    delay: Duration,
    failures: u64,
    logged_at: Option<Instant>,
}

impl AcceptFailures {
    fn new() -> Self {
        AcceptFailures {
            delay: ACCEPT_BACKOFF_MIN,
            failures: 0,
            logged_at: None,
        }
    }

    fn succeeded(&mut self) {
        if self.failures > 0 {
            self.delay = ACCEPT_BACKOFF_MIN;
            self.failures = 0;
            self.logged_at = None;
        }
    }

    /// Records a failure; returns how long to pause.
    fn failed(
        &mut self,
        listener: &'static str,
        e: &std::io::Error,
        conns: &Connections,
    ) -> Duration {
        self.failures += 1;
        let fds = out_of_descriptors(e);
        let shed = if fds { conns.shed_idle() } else { 0 };
        let due = self
            .logged_at
            .is_none_or(|t| t.elapsed() >= ACCEPT_LOG_EVERY);
        if due {
            self.logged_at = Some(Instant::now());
            if fds {
                tracing::warn!(
                    listener,
                    error = %e,
                    failures = self.failures,
                    open_connections = conns.open(),
                    idle_closed = shed,
                    "accept failed: out of file descriptors; backing off and closing idle connections \
                     (raise the hard RLIMIT_NOFILE, e.g. LimitNOFILE= in the systemd unit)"
                );
            } else {
                tracing::warn!(listener, error = %e, failures = self.failures, "accept failed; backing off");
            }
        }
        let d = self.delay;
        self.delay = (self.delay * 2).min(ACCEPT_BACKOFF_MAX);
        d
    }
}

pub struct Listener {
    pub kind: ListenerKind,
    pub tcp: TcpListener,
    /// `None`: plain HTTP (the PKI publication listener).
    pub tls: Option<Arc<ArcSwap<ServerConfig>>>,
    pub router: Router,
    pub conns: Arc<Connections>,
}

/// Accepts until `shutdown` turns true.
pub async fn serve(l: Listener, state: SharedState, mut shutdown: watch::Receiver<bool>) {
    let mut failures = AcceptFailures::new();
    loop {
        let accepted = tokio::select! {
            a = l.tcp.accept() => a,
            _ = shutdown.changed() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => {
                failures.succeeded();
                a
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                // That one connection is gone; the listener is fine.
                continue;
            }
            Err(e) => {
                let pause = failures.failed(l.kind.name(), &e, &l.conns);
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {},
                    _ = shutdown.changed() => break,
                }
                continue;
            }
        };
        if l.kind == ListenerKind::SyncTls && !state.sync_tls_enabled.load(Ordering::Relaxed) {
            // The sync-TLS port is switched off: connections are closed at once.
            drop(tcp);
            continue;
        }
        let _ = tcp.set_nodelay(true);
        let router = l.router.clone();
        let kind = l.kind;
        let Some(tls) = &l.tls else {
            let info = Arc::new(ConnInfo {
                kind,
                peer,
                client_cert: ClientCert::None,
                front_end_cert: false,
            });
            tokio::spawn(serve_http(tcp, info, router, l.conns.register()));
            continue;
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.load_full());
        let state = state.clone();
        let conns = l.conns.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(listener = kind.name(), %peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let peer_chain = stream.get_ref().1.peer_certificates();
            let front_end_cert = kind == ListenerKind::Device
                && peer_chain
                    .and_then(|c| c.first())
                    .is_some_and(|ee| state.front_ends.is_front_end_cert(ee.as_ref()));
            let client_cert = match (kind, peer_chain) {
                // The front end's own certificate authenticates the proxy, never a device.
                _ if front_end_cert => ClientCert::None,
                (ListenerKind::Device | ListenerKind::Storefront, Some(chain)) => {
                    state.trust.verify(chain, state.core.clock().now())
                }
                _ => ClientCert::None,
            };
            let info = Arc::new(ConnInfo {
                kind,
                peer,
                client_cert,
                front_end_cert,
            });
            serve_http(stream, info, router, conns.register()).await;
        });
    }
}

/// HTTP/1.1 on an accepted (TLS or plain) connection, [`ConnInfo`] attached to each request.
async fn serve_http<IO>(io: IO, info: Arc<ConnInfo>, router: Router, slot: SlotGuard)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let kind = info.kind;
    let peer = info.peer;
    let busy_slot = slot.slot.clone();
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let busy = Busy::new(&busy_slot);
        req.extensions_mut().insert(info.clone());
        let call = router.clone().oneshot(req.map(axum::body::Body::new));
        async move {
            let r = call.await;
            drop(busy);
            r
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_headers(MAX_HEADERS)
        .keep_alive(true)
        .serve_connection(TokioIo::new(EdgeIo::new(io)), svc);
    tokio::pin!(conn);
    let shed = slot.slot.shed.notified();
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = shed => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(listener = kind.name(), %peer, error = %e, "connection ended with error");
    }
    drop(slot);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn accept_failures_back_off_to_a_ceiling_and_log_once_per_interval() {
        let conns = Connections::default();
        let emfile = std::io::Error::from_raw_os_error(rustix::io::Errno::MFILE.raw_os_error());
        assert!(out_of_descriptors(&emfile));
        let mut f = AcceptFailures::new();
        let pauses: Vec<Duration> = (0..12)
            .map(|_| f.failed("device", &emfile, &conns))
            .collect();
        assert_eq!(pauses[0], ACCEPT_BACKOFF_MIN);
        assert_eq!(pauses[1], ACCEPT_BACKOFF_MIN * 2);
        assert_eq!(*pauses.last().unwrap(), ACCEPT_BACKOFF_MAX);
        // Logged at the first failure only (the next line is due a minute later).
        let logged = f.logged_at.unwrap();
        f.failed("device", &emfile, &conns);
        assert_eq!(f.logged_at, Some(logged));
        f.succeeded();
        assert_eq!(
            (f.failures, f.delay, f.logged_at),
            (0, ACCEPT_BACKOFF_MIN, None)
        );
    }

    #[tokio::test]
    async fn only_idle_connections_are_asked_to_close() {
        let conns = Arc::new(Connections::default());
        let idle = conns.register();
        let busy = conns.register();
        let _request = Busy::new(&busy.slot);
        assert_eq!(conns.open(), 2);
        assert_eq!(conns.shed_idle(), 1);
        // The idle one got the permit; the busy one did not.
        tokio::time::timeout(Duration::from_secs(1), idle.slot.shed.notified())
            .await
            .unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(50), busy.slot.shed.notified())
                .await
                .is_err()
        );
        drop(idle);
        assert_eq!(conns.open(), 1);
    }
}
