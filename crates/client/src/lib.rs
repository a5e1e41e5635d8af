//! The project's one HTTP client: rustls (aws-lc-rs provider) + hyper 1 HTTP/1.1, no pool.
//!
//! * [`TlsClient::request`] opens a new TCP (+ TLS) connection for every call, sends one
//!   request with `Connection: close` and closes the connection after the answer. A client
//!   made with trust anchors speaks `https://` only; [`TlsClient::plain`] speaks `http://`
//!   only (the external SCEP CA transport, the SCEP load generator).
//! * A server that answers before it has read the whole request body (a refused upload) and
//!   closes the connection is still heard: a failed body write does not hide the answer.
//! * [`TlsClient::connect`] returns a keep-alive [`Connection`] for many requests on one
//!   connection.
//! * [`TlsClient::post_json`] and friends encode/decode JSON and map non-2xx answers carrying a
//!   [`ferrocore_proto::ErrorBody`] to [`ClientError::Api`].
//! * [`AdminClient`]: one typed method per admin API route.
//!
//! TLS session resumption can be disabled ([`ClientOptions::session_resumption`]) so that every
//! connection performs a full handshake (used by the load generator).

mod admin;
mod error;
pub mod output;
mod stream;
mod url;

pub use admin::AdminClient;
pub use error::ClientError;
pub use hyper::{HeaderMap, Method, StatusCode, header};
pub use url::{Scheme, Url};

use stream::{Stream, WriteFailure};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1;
use hyper::header::{HeaderName, HeaderValue};
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A TLS client identity: certificate chain (leaf first) and private key, both PEM.
#[derive(Clone)]
pub struct ClientIdentity {
    pub cert_chain_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("cert_chain_pem", &self.cert_chain_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// Client behaviour knobs.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Allow TLS session resumption (tickets / session ids). `false`: every connection
    /// performs a full handshake. Default `true`.
    pub session_resumption: bool,
    /// Limit for the whole request (connect, handshake, answer). Default 30 s; `None`: no limit.
    pub timeout: Option<Duration>,
    /// Connect to this address instead of resolving the URL's host (like curl's `--resolve`);
    /// SNI, certificate verification and `Host` still use the URL's host.
    pub connect_to: Option<SocketAddr>,
    /// Sent as `Authorization: Bearer <token>` on every request.
    pub bearer_token: Option<String>,
    /// Extra headers sent on every request.
    pub default_headers: Vec<(String, String)>,
    /// Largest answer body accepted. Default 16 MiB.
    pub max_body_bytes: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            session_resumption: true,
            timeout: Some(Duration::from_secs(30)),
            connect_to: None,
            bearer_token: None,
            default_headers: Vec::new(),
            max_body_bytes: 16 << 20,
        }
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `Ok(self)` for 2xx; otherwise [`ClientError::Api`] when the body is an `ErrorBody`,
    /// else [`ClientError::Status`].
    pub fn error_for_status(self) -> Result<Self, ClientError> {
        if self.is_success() {
            return Ok(self);
        }
        match serde_json::from_slice::<ferrocore_proto::ErrorBody>(&self.body) {
            Ok(e) => Err(ClientError::Api {
                status: self.status,
                code: e.error.code,
                message: e.error.message,
            }),
            Err(_) => Err(ClientError::Status {
                status: self.status,
                body: String::from_utf8_lossy(&self.body)
                    .chars()
                    .take(512)
                    .collect(),
            }),
        }
    }

    /// Decode a 2xx JSON body (see [`Response::error_for_status`] for the error mapping).
    pub fn json<T: DeserializeOwned>(self) -> Result<T, ClientError> {
        let ok = self.error_for_status()?;
        serde_json::from_slice(&ok.body).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// Like [`Response::json`] for answers without a body of interest (e.g. `204`).
    pub fn empty(self) -> Result<(), ClientError> {
        self.error_for_status().map(|_| ())
    }
}

/// Parse every certificate of a PEM bundle into a root store (at least one required).
pub fn root_store_from_pem(ca_pem: &str) -> Result<RootCertStore, ClientError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| ClientError::Config(format!("CA PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| ClientError::Config(format!("CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(ClientError::Config(
            "no certificate in the CA PEM".to_string(),
        ));
    }
    Ok(roots)
}

/// Build a rustls client config (aws-lc-rs provider, TLS 1.2 + 1.3, ALPN `http/1.1`).
pub fn client_config(
    roots: Arc<RootCertStore>,
    identity: Option<&ClientIdentity>,
    session_resumption: bool,
) -> Result<rustls::ClientConfig, ClientError> {
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| ClientError::Config(e.to_string()))?
    .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(id) => {
            let chain = CertificateDer::pem_slice_iter(id.cert_chain_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ClientError::Config(format!("client certificate PEM: {e}")))?;
            if chain.is_empty() {
                return Err(ClientError::Config(
                    "no certificate in the client certificate PEM".to_string(),
                ));
            }
            let key = PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes())
                .map_err(|e| ClientError::Config(format!("client key PEM: {e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| ClientError::Config(format!("client identity: {e}")))?
        }
    };
    if !session_resumption {
        config.resumption = rustls::client::Resumption::disabled();
    }
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// An HTTP client: trust anchors (HTTPS) or none ([`TlsClient::plain`], HTTP), an optional
/// client identity and options. Cheap to clone.
#[derive(Clone)]
pub struct TlsClient {
    /// `None`: a plain-HTTP client.
    connector: Option<TlsConnector>,
    opts: Arc<ClientOptions>,
    default_headers: Arc<Vec<(HeaderName, HeaderValue)>>,
    /// Whether the last TLS handshake of this client resumed a session.
    resumed: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// A client trusting the certificates of `ca_pem`, presenting `identity` when given.
    pub fn new(
        ca_pem: &str,
        identity: Option<ClientIdentity>,
        opts: ClientOptions,
    ) -> Result<Self, ClientError> {
        let roots = Arc::new(root_store_from_pem(ca_pem)?);
        Self::with_roots(roots, identity.as_ref(), opts)
    }

    /// Like [`TlsClient::new`] with a pre-parsed (shareable) root store.
    pub fn with_roots(
        roots: Arc<RootCertStore>,
        identity: Option<&ClientIdentity>,
        opts: ClientOptions,
    ) -> Result<Self, ClientError> {
        let config = client_config(roots, identity, opts.session_resumption)?;
        Self::from_config(Arc::new(config), opts)
    }

    /// A client over a ready rustls config (`opts.session_resumption` is not applied here).
    pub fn from_config(
        config: Arc<rustls::ClientConfig>,
        opts: ClientOptions,
    ) -> Result<Self, ClientError> {
        Self::build(Some(TlsConnector::from(config)), opts)
    }

    /// A plain-HTTP client: `http://` URLs only (SCEP protects its messages itself).
    pub fn plain(opts: ClientOptions) -> Result<Self, ClientError> {
        Self::build(None, opts)
    }

    fn build(connector: Option<TlsConnector>, opts: ClientOptions) -> Result<Self, ClientError> {
        let mut headers = Vec::new();
        if let Some(token) = &opts.bearer_token {
            headers.push((
                header::AUTHORIZATION,
                header_value(&format!("Bearer {token}"))?,
            ));
        }
        for (name, value) in &opts.default_headers {
            headers.push((header_name(name)?, header_value(value)?));
        }
        Ok(TlsClient {
            connector,
            opts: Arc::new(opts),
            default_headers: Arc::new(headers),
            resumed: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        })
    }

    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// Whether this client's most recent TLS handshake resumed a session (no full handshake).
    pub fn last_handshake_resumed(&self) -> bool {
        self.resumed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// One request on a new TCP + TLS connection, closed afterwards.
    pub async fn request(
        &self,
        url: &str,
        method: Method,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Response, ClientError> {
        let url = Url::parse(url)?;
        self.request_url(&url, method, headers, body).await
    }

    /// [`TlsClient::request`] with a pre-parsed URL.
    pub async fn request_url(
        &self,
        url: &Url,
        method: Method,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Response, ClientError> {
        let req = self.build_request(url, &url.path, method, headers, body, true)?;
        with_timeout(self.opts.timeout, async {
            let (stream, write_failure) = self.open(url).await?;
            let (mut sender, conn) = http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                .await
                .map_err(ClientError::from_hyper)?;
            let max = self.opts.max_body_bytes;
            let exchange = async move {
                let result = send(&mut sender, req, max).await;
                drop(sender);
                result
            };
            let (result, conn_result) = tokio::join!(exchange, conn);
            match (result, conn_result) {
                (Ok(resp), _) => Ok(resp),
                // The peer went away while the request was written and left no answer.
                (Err(_), _) if write_failure.get().is_some() => Err(write_failure.error()),
                // Prefer the connection's (often more specific, e.g. TLS alert) error.
                (Err(ClientError::Http(_)), Err(ce)) => Err(ClientError::from_hyper(ce)),
                (Err(e), _) => Err(e),
            }
        })
        .await
    }

    /// Open a keep-alive connection to the origin of `url` (its path is ignored).
    pub async fn connect(&self, url: &str) -> Result<Connection, ClientError> {
        let url = Url::parse(url)?;
        let (stream, _) = with_timeout(self.opts.timeout, self.open(&url)).await?;
        let (sender, conn) = http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
            .await
            .map_err(ClientError::from_hyper)?;
        tokio::spawn(async move {
            // Ends when the `Connection` (and its sender) is dropped or the peer closes.
            let _ = conn.await;
        });
        Ok(Connection {
            client: self.clone(),
            url,
            sender,
        })
    }

    /// `POST` a JSON body and decode a JSON answer.
    pub async fn post_json<Req: Serialize + ?Sized, Resp: DeserializeOwned>(
        &self,
        url: &str,
        body: &Req,
    ) -> Result<Resp, ClientError> {
        self.json_request(url, Method::POST, Some(body))
            .await?
            .json()
    }

    /// `PUT` a JSON body and decode a JSON answer.
    pub async fn put_json<Req: Serialize + ?Sized, Resp: DeserializeOwned>(
        &self,
        url: &str,
        body: &Req,
    ) -> Result<Resp, ClientError> {
        self.json_request(url, Method::PUT, Some(body))
            .await?
            .json()
    }

    /// `GET` and decode a JSON answer.
    pub async fn get_json<Resp: DeserializeOwned>(&self, url: &str) -> Result<Resp, ClientError> {
        self.json_request::<()>(url, Method::GET, None)
            .await?
            .json()
    }

    /// `DELETE`; the answer body (if any) is returned raw after the status check.
    pub async fn delete(&self, url: &str) -> Result<Response, ClientError> {
        self.json_request::<()>(url, Method::DELETE, None)
            .await?
            .error_for_status()
    }

    /// `DELETE` and decode a JSON answer.
    pub async fn delete_json<Resp: DeserializeOwned>(
        &self,
        url: &str,
    ) -> Result<Resp, ClientError> {
        self.json_request::<()>(url, Method::DELETE, None)
            .await?
            .json()
    }

    async fn json_request<Req: Serialize + ?Sized>(
        &self,
        url: &str,
        method: Method,
        body: Option<&Req>,
    ) -> Result<Response, ClientError> {
        let accept = ("accept", "application/json");
        match body {
            Some(b) => {
                let bytes =
                    serde_json::to_vec(b).map_err(|e| ClientError::Decode(e.to_string()))?;
                self.request(
                    url,
                    method,
                    &[accept, ("content-type", "application/json")],
                    bytes,
                )
                .await
            }
            None => self.request(url, method, &[accept], Vec::new()).await,
        }
    }

    /// A connection to the URL's origin: TCP, then TLS for `https://`.
    async fn open(&self, url: &Url) -> Result<(Stream, WriteFailure), ClientError> {
        let server_name = match (url.scheme, &self.connector) {
            (Scheme::Https, Some(_)) => Some(url.server_name()?),
            (Scheme::Http, None) => None,
            (Scheme::Https, None) => {
                return Err(ClientError::Url(format!(
                    "{}: this client speaks plain http:// only",
                    url.origin()
                )));
            }
            (Scheme::Http, Some(_)) => {
                return Err(ClientError::Url(format!(
                    "{}: only https:// URLs are supported",
                    url.origin()
                )));
            }
        };
        let tcp = match self.opts.connect_to {
            Some(addr) => TcpStream::connect(addr).await,
            None => TcpStream::connect((url.host.as_str(), url.port)).await,
        }
        .map_err(ClientError::Io)?;
        tcp.set_nodelay(true).map_err(ClientError::Io)?;
        let (tcp, write_failure) = stream::Tcp::new(tcp);
        let stream = match (&self.connector, server_name) {
            (Some(connector), Some(name)) => {
                let tls = connector
                    .connect(name, tcp)
                    .await
                    .map_err(ClientError::from_io)?;
                let resumed =
                    tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
                self.resumed
                    .store(resumed, std::sync::atomic::Ordering::Relaxed);
                Stream::Tls(Box::new(tls))
            }
            _ => Stream::Plain(tcp),
        };
        Ok((stream, write_failure))
    }

    fn build_request(
        &self,
        url: &Url,
        path: &str,
        method: Method,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        close: bool,
    ) -> Result<hyper::Request<Full<Bytes>>, ClientError> {
        let mut req = hyper::Request::builder()
            .method(method.clone())
            .uri(path)
            .body(Full::new(Bytes::new()))
            .map_err(|e| ClientError::Url(format!("{path:?}: {e}")))?;
        let h = req.headers_mut();
        h.insert(header::HOST, header_value(&url.host_header())?);
        for (name, value) in self.default_headers.iter() {
            h.insert(name.clone(), value.clone());
        }
        for (name, value) in headers {
            h.insert(header_name(name)?, header_value(value)?);
        }
        if !body.is_empty() || !matches!(method, Method::GET | Method::HEAD | Method::DELETE) {
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        if close {
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        *req.body_mut() = Full::new(Bytes::from(body));
        Ok(req)
    }
}

/// A keep-alive HTTP/1.1 connection (one request at a time).
pub struct Connection {
    client: TlsClient,
    url: Url,
    sender: http1::SendRequest<Full<Bytes>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("origin", &self.url.origin())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Send one request on this connection. `path` is an absolute path (`/api/...`).
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Response, ClientError> {
        let req = self
            .client
            .build_request(&self.url, path, method, headers, body, false)?;
        let max = self.client.opts.max_body_bytes;
        with_timeout(self.client.opts.timeout, async {
            self.sender.ready().await.map_err(ClientError::from_hyper)?;
            send(&mut self.sender, req, max).await
        })
        .await
    }

    /// Whether the connection can still carry requests.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// The origin (`https://host:port`) this connection goes to.
    pub fn origin(&self) -> String {
        self.url.origin()
    }
}

async fn send(
    sender: &mut http1::SendRequest<Full<Bytes>>,
    req: hyper::Request<Full<Bytes>>,
    max_body: usize,
) -> Result<Response, ClientError> {
    let resp = sender
        .send_request(req)
        .await
        .map_err(ClientError::from_hyper)?;
    let (parts, body) = resp.into_parts();
    let body = Limited::new(body, max_body)
        .collect()
        .await
        .map_err(|e| match e.downcast::<hyper::Error>() {
            Ok(h) => ClientError::from_hyper(*h),
            Err(other) => ClientError::Http(other.to_string()),
        })?
        .to_bytes();
    Ok(Response {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: body.to_vec(),
    })
}

async fn with_timeout<T>(
    limit: Option<Duration>,
    fut: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    match limit {
        None => fut.await,
        Some(d) => tokio::time::timeout(d, fut)
            .await
            .map_err(|_| ClientError::Timeout)?,
    }
}

fn header_name(name: &str) -> Result<HeaderName, ClientError> {
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|e| ClientError::Config(format!("header name {name:?}: {e}")))
}

fn header_value(value: &str) -> Result<HeaderValue, ClientError> {
    HeaderValue::from_str(value).map_err(|e| ClientError::Config(format!("header value: {e}")))
}
