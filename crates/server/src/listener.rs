//! The accept loop shared by all listeners: TCP accept, TLS handshake with the listener's
//! current `ServerConfig` (swappable without restart), client-certificate verification on the
//! device listener, then HTTP/1.1 with [`ConnInfo`] attached to every request. A peer
//! presenting the configured front end's certificate (`front_ends.client_cert_sha256`) is
//! marked as such and its certificate is never verified as a device identity.

use crate::http::{ConnInfo, ListenerKind, SharedState};
use crate::tls::ClientCert;
use arc_swap::ArcSwap;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::server::ServerConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Listener {
    pub kind: ListenerKind,
    pub tcp: TcpListener,
    /// `None`: plain HTTP (the PKI publication listener).
    pub tls: Option<Arc<ArcSwap<ServerConfig>>>,
    pub router: Router,
}

/// Accepts until `shutdown` turns true.
pub async fn serve(l: Listener, state: SharedState, mut shutdown: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            a = l.tcp.accept() => a,
            _ = shutdown.changed() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(listener = l.kind.name(), error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
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
            tokio::spawn(serve_http(TokioIo::new(tcp), info, router, peer));
            continue;
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.load_full());
        let state = state.clone();
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
            serve_http(TokioIo::new(stream), info, router, peer).await;
        });
    }
}

/// HTTP/1.1 on an accepted (TLS or plain) connection, [`ConnInfo`] attached to each request.
async fn serve_http<IO>(io: TokioIo<IO>, info: Arc<ConnInfo>, router: Router, peer: SocketAddr)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let kind = info.kind;
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(info.clone());
        router.clone().oneshot(req.map(axum::body::Body::new))
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(true)
        .serve_connection(io, svc);
    if let Err(e) = conn.await {
        tracing::debug!(listener = kind.name(), %peer, error = %e, "connection ended with error");
    }
}
