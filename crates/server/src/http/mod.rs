//! HTTP routers of the four listeners and the state they share. Only this module and
//! [`crate::listener`] know about HTTP, ports and headers; handlers turn requests into
//! [`ferrocore_core::Core`] calls.

pub mod admin;
pub mod auth;
pub mod client_identity;
pub mod device;
pub mod directory;
pub mod edge;
pub mod error;
pub mod est;
pub mod json;
pub mod ocsp;
pub mod openapi;
pub mod portal;
pub mod scep;
pub mod storefront;

use crate::tls::{ClientCert, TrustStore};
use axum::Router;
use axum::routing::get;
use ferrocore_core::Core;
use ferrocore_proto::Listener;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Largest body the device API accepts.
pub const DEVICE_BODY_LIMIT: usize = 64 * 1024;
/// Largest body the admin API accepts.
pub const ADMIN_BODY_LIMIT: usize = 1024 * 1024;

/// Which listener a connection arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    Device,
    SyncTls,
    Admin,
    Storefront,
    /// Plain-HTTP PKI publication (OCSP, CRLs, CA certificates).
    Pki,
}

impl ListenerKind {
    pub fn device_listener(self) -> Option<Listener> {
        match self {
            ListenerKind::Device => Some(Listener::Device),
            ListenerKind::SyncTls => Some(Listener::SyncTls),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            ListenerKind::Device => "device",
            ListenerKind::SyncTls => "sync_tls",
            ListenerKind::Admin => "admin",
            ListenerKind::Storefront => "storefront",
            ListenerKind::Pki => "pki",
        }
    }
}

/// Transport facts of one connection, attached to each of its requests.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub kind: ListenerKind,
    pub peer: SocketAddr,
    pub client_cert: ClientCert,
    /// The peer presented the configured front end's certificate (`front_ends.client_cert_sha256`);
    /// that certificate is then not in `client_cert`: it never identifies a device.
    pub front_end_cert: bool,
}

/// Bound ports, as devices are told to use them.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub device: u16,
    pub sync_tls: Option<u16>,
}

pub struct AppState {
    pub core: Arc<Core>,
    pub trust: Arc<TrustStore>,
    pub tls: crate::tls::TlsState,
    pub data_dir: crate::datadir::DataDir,
    pub ports: Ports,
    pub admin_token: String,
    /// Cached "sync-TLS port enabled" switch, read at every accept.
    pub sync_tls_enabled: AtomicBool,
    /// Trusted front ends (`[front_ends]`), read by [`client_identity`] only.
    pub front_ends: crate::front_ends::FrontEnds,
    /// What an uploaded portal certificate is checked against.
    pub portal: portal::PortalState,
    /// The app storefront and AppConnect check-ins.
    pub storefront: Arc<ferrocore_core::storefront::Storefront>,
    /// The SCEP RA (certificate and RSA key), swapped when re-issued.
    pub scep_ra: arc_swap::ArcSwap<ferrocore_pki::scep::RaKey>,
    /// Key algorithm of CAs created from now on (`ca.key_algorithm`).
    pub ca_key_algorithm: ferrocore_pki::CaKeyAlgorithm,
    /// Directory sources (`[directory]`), when configured.
    pub directory: Option<directory::DirectoryAdmin>,
}

pub type SharedState = Arc<AppState>;

pub fn device_router(state: SharedState) -> Router {
    device::routes()
        .merge(storefront::device_routes())
        .merge(est::routes())
        .merge(pki_routes())
        .merge(scep::routes())
        .merge(ocsp::routes())
        .route("/healthz", get(healthz))
        .layer(axum::extract::DefaultBodyLimit::max(DEVICE_BODY_LIMIT))
        .fallback(edge::not_found)
        .method_not_allowed_fallback(edge::method_not_allowed)
        .layer(axum::middleware::from_fn(edge::edge))
        .with_state(state)
}

pub fn admin_router(state: SharedState) -> Router {
    admin::routes(state.clone())
        .merge(pki_routes())
        .route("/healthz", get(healthz))
        .route(ferrocore_proto::paths::OPENAPI, get(openapi::document))
        .layer(axum::extract::DefaultBodyLimit::max(ADMIN_BODY_LIMIT))
        .fallback(edge::not_found)
        .method_not_allowed_fallback(edge::method_not_allowed)
        .layer(axum::middleware::from_fn(edge::edge))
        .with_state(state)
}

/// The plain-HTTP PKI listener (`listeners.pki`): OCSP, CRLs, CA certificates and SCEP,
/// with the device listener's body limit.
pub fn pki_router(state: SharedState) -> Router {
    pki_routes()
        .merge(ocsp::routes())
        // SCEP protects its messages itself (signed and encrypted CMS), so plain HTTP is its
        // usual transport: clients that cannot trust the portal certificate yet enroll here.
        .merge(scep::routes())
        .route("/healthz", get(healthz))
        .layer(axum::extract::DefaultBodyLimit::max(DEVICE_BODY_LIMIT))
        .fallback(edge::not_found)
        .method_not_allowed_fallback(edge::method_not_allowed)
        .layer(axum::middleware::from_fn(edge::edge))
        .with_state(state)
}

pub fn storefront_router(state: SharedState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .merge(storefront::storefront_routes())
        .layer(axum::extract::DefaultBodyLimit::max(DEVICE_BODY_LIMIT))
        .fallback(edge::not_found)
        .method_not_allowed_fallback(edge::method_not_allowed)
        .layer(axum::middleware::from_fn(edge::edge))
        .with_state(state)
}

fn pki_routes() -> Router<SharedState> {
    Router::new()
        .route(ferrocore_proto::paths::CRL_DER, get(device::crl_der))
        .route(ferrocore_proto::paths::CRL_PEM, get(device::crl_pem))
        .route(ferrocore_proto::paths::CA_PEM, get(device::ca_pem))
        .route("/pki/{config}/crl.der", get(device::config_crl_der))
        .route("/pki/{config}/crl.pem", get(device::config_crl_pem))
        .route("/pki/{config}/ca.pem", get(device::config_ca_pem))
}

/// Liveness: `ok` while the server accepts requests.
#[utoipa::path(
    get, path = "/healthz", tag = "health",
    responses((status = 200, description = "ok", body = String, content_type = "text/plain"))
)]
async fn healthz() -> &'static str {
    "ok"
}
