//! The one place transport facts become a client identity: the certificate of the TLS
//! connection, or, from a trusted front end only, a certificate forwarded in a header
//! ([`crate::front_ends`] forms). Handlers take a [`ClientIdentity`] and never read
//! certificate headers themselves; this is the only code that reads forwarded certificates.
//!
//! Rules (defaults deny):
//! - no forwarded header (or only empty ones): the connection's own certificate, as verified
//!   after the handshake (`ConnInfo::client_cert`);
//! - a forwarded header on a connection that is not a trusted front end (address not in
//!   `front_ends.trusted`, front-end certificate missing when configured, or not the device
//!   listener), or in a form `front_ends.headers` does not accept: refused
//!   (`untrusted_forwarded_certificate`), never ignored;
//! - a forwarded header together with a device's TLS client certificate, or two forwarded
//!   headers: refused (`ambiguous_client_certificate`);
//! - an unparsable value: refused (`malformed_forwarded_certificate`);
//! - otherwise the forwarded chain is verified by [`crate::tls::TrustStore::verify`] exactly
//!   like a handshake certificate (the proxy's verdict headers are never read); revocation is
//!   then enforced by the domain on every request.

use super::{ConnInfo, ListenerKind, SharedState};
use crate::front_ends::{self, FrontEnds, HeaderForm};
use crate::tls::{ClientCert, TrustStore};
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ferrocore_proto::codes;
use rustls_pki_types::CertificateDer;
use std::sync::Arc;

/// How the client certificate of a request arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertPath {
    /// No certificate at all.
    None,
    /// Presented in the TLS handshake of this connection.
    Direct,
    /// Forwarded by a trusted front end in this header form.
    Forwarded(HeaderForm),
}

impl CertPath {
    pub fn name(self) -> &'static str {
        match self {
            CertPath::None => "none",
            CertPath::Direct => "direct",
            CertPath::Forwarded(_) => "forwarded",
        }
    }
}

/// The client identity of one request, whichever way its certificate arrived.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    pub cert: ClientCert,
    pub path: CertPath,
}

/// Why a request's client identity was refused. Mapped to HTTP in [`super::error`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientIdentityError {
    #[error("{header}: {reason}")]
    Untrusted {
        header: &'static str,
        reason: String,
    },
    #[error("{0}")]
    Ambiguous(String),
    #[error("{header}: {reason}")]
    Malformed {
        header: &'static str,
        reason: String,
    },
    /// The request did not come through a listener (a wiring bug).
    #[error("internal error")]
    NoConnection,
}

impl ClientIdentityError {
    pub fn code(&self) -> &'static str {
        match self {
            ClientIdentityError::Untrusted { .. } => codes::UNTRUSTED_FORWARDED_CERT,
            ClientIdentityError::Ambiguous(_) => codes::AMBIGUOUS_CLIENT_CERT,
            ClientIdentityError::Malformed { .. } => codes::MALFORMED_FORWARDED_CERT,
            ClientIdentityError::NoConnection => codes::INTERNAL,
        }
    }
}

impl FromRequestParts<SharedState> for ClientIdentity {
    type Rejection = ClientIdentityError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let info = parts
            .extensions
            .get::<Arc<ConnInfo>>()
            .ok_or(ClientIdentityError::NoConnection)?;
        let identity = identify(
            &state.front_ends,
            &state.trust,
            state.core.clock().now(),
            info,
            &parts.headers,
        )?;
        tracing::debug!(
            path = identity.path.name(),
            header = match identity.path {
                CertPath::Forwarded(f) => f.header_name(),
                _ => "",
            },
            peer = %info.peer,
            verified = matches!(identity.cert, ClientCert::Verified(_)),
            "client identity"
        );
        Ok(identity)
    }
}

/// Decides the client identity of a request (see the module rules).
pub fn identify(
    front_ends: &FrontEnds,
    trust: &TrustStore,
    now: time::OffsetDateTime,
    info: &ConnInfo,
    headers: &HeaderMap,
) -> Result<ClientIdentity, ClientIdentityError> {
    let mut forwarded: Vec<(HeaderForm, &str)> = Vec::new();
    for form in HeaderForm::ALL {
        let header = form.header_name();
        let mut values = Vec::new();
        for v in headers.get_all(header) {
            let v = v.to_str().map_err(|_| ClientIdentityError::Malformed {
                header,
                reason: "not visible ASCII".into(),
            })?;
            let v = v.trim();
            // nginx sends an empty value when the client presented no certificate.
            if !v.is_empty() {
                values.push(v);
            }
        }
        match values.as_slice() {
            [] => {}
            [v] => forwarded.push((form, v)),
            _ => {
                return Err(ClientIdentityError::Malformed {
                    header,
                    reason: "sent more than once".into(),
                });
            }
        }
    }
    let Some(&(form, value)) = forwarded.first() else {
        let path = match info.client_cert {
            ClientCert::None => CertPath::None,
            _ => CertPath::Direct,
        };
        return Ok(ClientIdentity {
            cert: info.client_cert.clone(),
            path,
        });
    };
    let header = form.header_name();
    if info.kind != ListenerKind::Device {
        return Err(ClientIdentityError::Untrusted {
            header,
            reason: "forwarded client certificates are accepted on the device listener only".into(),
        });
    }
    if !front_ends.trusts(info.peer.ip(), info.front_end_cert) {
        return Err(ClientIdentityError::Untrusted {
            header,
            reason: format!(
                "forwarded client certificate from {}, which is not a trusted front end",
                info.peer.ip()
            ),
        });
    }
    if let Some((f, _)) = forwarded.iter().find(|(f, _)| !front_ends.accepts(*f)) {
        return Err(ClientIdentityError::Untrusted {
            header: f.header_name(),
            reason: "this header form is not accepted (front_ends.headers)".into(),
        });
    }
    if forwarded.len() > 1 {
        let names: Vec<&str> = forwarded.iter().map(|(f, _)| f.header_name()).collect();
        return Err(ClientIdentityError::Ambiguous(format!(
            "more than one forwarded client certificate ({})",
            names.join(", ")
        )));
    }
    if !matches!(info.client_cert, ClientCert::None) {
        return Err(ClientIdentityError::Ambiguous(format!(
            "both a TLS client certificate and a forwarded one ({header})"
        )));
    }
    let chain = front_ends::parse(form, value)
        .map_err(|reason| ClientIdentityError::Malformed { header, reason })?;
    let chain: Vec<CertificateDer<'static>> = chain.into_iter().map(CertificateDer::from).collect();
    Ok(ClientIdentity {
        cert: trust.verify(&chain, now),
        path: CertPath::Forwarded(form),
    })
}
