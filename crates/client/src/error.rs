//! The client's error type and the mapping of lower-level errors (IO, rustls, hyper) onto it.

use std::borrow::Cow;
use std::error::Error as StdError;

/// Everything that can go wrong with a request.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not an `https://host[:port][/path]` URL.
    #[error("invalid URL: {0}")]
    Url(String),
    /// Bad trust anchors, client identity or header (detected before any network IO).
    #[error("client configuration: {0}")]
    Config(String),
    /// TCP-level failure (connection refused, reset, DNS).
    #[error("io: {0}")]
    Io(std::io::Error),
    /// The TLS handshake or session failed (unknown issuer, alert from the peer, ...).
    #[error("tls: {0}")]
    Tls(rustls::Error),
    /// HTTP protocol failure (malformed answer, connection closed mid-message, ...).
    #[error("http: {0}")]
    Http(String),
    /// The request did not complete within the configured timeout.
    #[error("request timed out")]
    Timeout,
    /// A non-2xx answer whose body is a Ferrocore [`ferrocore_proto::ErrorBody`].
    #[error("{code}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// A non-2xx answer whose body is not an `ErrorBody` (e.g. from a proxy).
    #[error("HTTP status {status}: {body}")]
    Status { status: u16, body: String },
    /// A 2xx answer whose body does not decode into the expected type.
    #[error("decode: {0}")]
    Decode(String),
}

impl ClientError {
    /// A short, stable label for counting errors: the API error code for [`ClientError::Api`],
    /// `http_<status>` for [`ClientError::Status`], otherwise the variant name in lowercase.
    pub fn label(&self) -> Cow<'_, str> {
        match self {
            ClientError::Url(_) => "url".into(),
            ClientError::Config(_) => "config".into(),
            ClientError::Io(_) => "io".into(),
            ClientError::Tls(_) => "tls".into(),
            ClientError::Http(_) => "http".into(),
            ClientError::Timeout => "timeout".into(),
            ClientError::Api { code, .. } => Cow::Borrowed(code.as_str()),
            ClientError::Status { status, .. } => format!("http_{status}").into(),
            ClientError::Decode(_) => "decode".into(),
        }
    }

    /// Map an IO error (which may carry a rustls error) onto `Tls` or `Io`.
    pub(crate) fn from_io(e: std::io::Error) -> Self {
        match find_rustls(&e) {
            Some(t) => ClientError::Tls(t),
            None => ClientError::Io(e),
        }
    }

    /// Map a hyper error, looking through its sources for a TLS or IO cause.
    pub(crate) fn from_hyper(e: hyper::Error) -> Self {
        if let Some(t) = find_rustls(&e) {
            return ClientError::Tls(t);
        }
        let mut cur: Option<&(dyn StdError + 'static)> = e.source();
        while let Some(s) = cur {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                return ClientError::Io(std::io::Error::new(io.kind(), format!("{e}: {io}")));
            }
            cur = s.source();
        }
        ClientError::Http(e.to_string())
    }
}

/// Find a `rustls::Error` anywhere in an error's source chain (also inside `io::Error`s,
/// whose `source()` skips the wrapped error).
pub(crate) fn find_rustls(err: &(dyn StdError + 'static)) -> Option<rustls::Error> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<rustls::Error>() {
            return Some(t.clone());
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
        {
            if let Some(t) = inner.downcast_ref::<rustls::Error>() {
                return Some(t.clone());
            }
            if let Some(t) = find_rustls(inner) {
                return Some(t);
            }
        }
        cur = e.source();
    }
    None
}
