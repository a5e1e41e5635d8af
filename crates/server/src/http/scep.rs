//! SCEP (RFC 8894) at `/scep` on the device and sync-TLS listeners.
//!
//! - `GET ?operation=GetCACaps` (any `message`, certmonger sends `message=0`): the
//!   capabilities, one per line. `GetNextCACert` is not announced (there is no CA rollover)
//!   and is answered `scep_unknown_operation` like any other unknown operation.
//! - `GET ?operation=GetCACert`: `application/x-x509-ca-ra-cert`, a certs-only SignedData
//!   with the RA certificate, the RA key's encryption-only certificate (for clients that
//!   pick the recipient by keyUsage, like NDES's pair) and the CA certificate of the selected
//!   enrollment configuration (plus the local CA that issued the RA when another
//!   configuration is selected).
//! - `GET ?operation=PKIOperation&message=<url-escaped base64>` and `POST
//!   ?operation=PKIOperation` (body: the DER message): decrypted here, its signer
//!   certificate verified by [`crate::tls::TrustStore::verify`] like a TLS client
//!   certificate, then one domain call, `Core::scep_operation`
//!   (`ferrocore_core::scep_operation`: which message type does what — a PKCSReq whose
//!   signer certificate verifies is the pre-RFC 8894 renewal certmonger sends — and which
//!   failInfo a refusal gets). Answered with a
//!   CertRep (`application/x-pki-message`): SUCCESS
//!   (issued certificate + CA, encrypted to the requester with AES: the request's AES
//!   variant, AES-128 for 3DES requests; to an ECDSA signer certificate by ECDH key
//!   agreement, RSA key transport to an RSA one), or FAILURE with failInfo: badRequest
//!   (challenge unknown, expired or reused; CSR refused; lifecycle refusals, including a
//!   certificate expired within the grace for a client kind that does not renew, and a
//!   renewal before the window), badMessageCheck (signature or envelope does not
//!   verify/open), badAlg (unsupported algorithm), badCertId (unknown transaction; the signer
//!   certificate is unknown, revoked, superseded, or its device retired — which is what a
//!   RenewalReq signed with a certificate expired beyond the 30-day grace gets: the device is
//!   retired on that contact, as on every other path).
//! - RenewalReq signers: RSA (PKCS#1 v1.5) or ECDSA P-256/P-384 (the identities registration
//!   issues). The signer certificate's chain is checked by [`crate::tls::TrustStore::verify`]
//!   (an expired one as of its own notAfter), and the lifecycle decision is
//!   `Core::authenticate_cert`'s, the same rule as `/api/v1/renew` and EST simplereenroll.
//! - Where no CertRep can be built (no operation, undecodable message, no transactionID,
//!   oversize body), the answer is the JSON error body: `scep_unknown_operation`,
//!   `scep_malformed`, `body_too_large`.
//!
//! RSA work (decrypt, sign) runs on the blocking pool.

use super::error::ApiError;
use super::error::error_response;
use super::json::ApiJson;
use super::{ConnInfo, SharedState};
use crate::crypto_pool;
use crate::tls::ClientCert;
use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::Path;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use ferrocore_core::scep_operation::{ScepAnswer, ScepOperation, ScepSigner};
use ferrocore_core::service::LOCAL_CONFIG;
use ferrocore_pki::cms::ContentCipher;
use ferrocore_pki::scep::{self, CertRepBody, MessageType, RaKey, ReplyTo, ScepError};
use ferrocore_proto::{
    NewScepChallenge, ScepChallenge, StaticScepChallenge, codes, paths, percent,
};
use std::sync::Arc;

/// The capabilities this server announces.
pub const CAPABILITIES: &[&str] = &[
    "AES",
    "DES3",
    "POSTPKIOperation",
    "Renewal",
    "SHA-1",
    "SHA-256",
    "SHA-512",
    "SCEPStandard",
];

pub fn routes() -> axum::Router<SharedState> {
    axum::Router::new().route(paths::SCEP, get(scep_get).post(scep_post))
}

/// Admin routes (merged into the token-protected admin router): one-time challenges and
/// the static challenge of an enrollment configuration.
pub fn admin_routes() -> axum::Router<SharedState> {
    axum::Router::new()
        .route(
            "/api/v1/admin/scep/challenges",
            axum::routing::post(create_challenge),
        )
        .route(
            "/api/v1/admin/scep/static-challenges/{config}",
            axum::routing::put(set_static_challenge).delete(clear_static_challenge),
        )
}

#[utoipa::path(
    post, path = "/api/v1/admin/scep/challenges", tag = "admin",
    request_body = NewScepChallenge,
    responses((status = 201, description = "Created", body = ScepChallenge))
)]
async fn create_challenge(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<NewScepChallenge>,
) -> Result<(StatusCode, Json<ScepChallenge>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(state.core.create_scep_challenge(&req).await?),
    ))
}

#[utoipa::path(
    put, path = "/api/v1/admin/scep/static-challenges/{config}", tag = "admin",
    params(("config" = String, Path, description = "The enrollment configuration")),
    request_body = StaticScepChallenge,
    responses((status = 200, description = "OK", body = ScepChallenge))
)]
async fn set_static_challenge(
    State(state): State<SharedState>,
    Path(config): Path<String>,
    ApiJson(req): ApiJson<StaticScepChallenge>,
) -> Result<Json<ScepChallenge>, ApiError> {
    Ok(Json(
        state.core.set_static_scep_challenge(&config, &req).await?,
    ))
}

#[utoipa::path(
    delete, path = "/api/v1/admin/scep/static-challenges/{config}", tag = "admin",
    params(("config" = String, Path, description = "The enrollment configuration")),
    responses((status = 204, description = "Removed"))
)]
async fn clear_static_challenge(
    State(state): State<SharedState>,
    Path(config): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.core.clear_static_scep_challenge(&config).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `key=value` pairs of a query string, percent-decoded. `+` stays `+`: SCEP messages are
/// base64 and some clients do not escape it.
fn query_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent::decode_lossy(k), percent::decode_lossy(v))
        })
        .collect()
}

fn operation(q: &[(String, String)]) -> Option<&str> {
    q.iter()
        .find(|(k, _)| k == "operation")
        .map(|(_, v)| v.as_str())
}

fn unknown_operation(op: Option<&str>) -> Response {
    error_response(
        StatusCode::BAD_REQUEST,
        codes::SCEP_UNKNOWN_OPERATION,
        match op {
            Some(op) => format!(
                "unknown SCEP operation {:?}: use GetCACaps, GetCACert or PKIOperation",
                op.chars().take(64).collect::<String>()
            ),
            None => "missing operation= (GetCACaps, GetCACert or PKIOperation)".into(),
        },
    )
}

fn malformed(message: String) -> Response {
    error_response(StatusCode::BAD_REQUEST, codes::SCEP_MALFORMED, message)
}

#[utoipa::path(
    get, path = paths::SCEP, tag = "scep",
    params(("operation" = String, Query, description = "GetCACaps, GetCACert or PKIOperation"), ("message" = Option<String>, Query, description = "PKIOperation: the base64 CMS message")),
    responses((status = 200, description = "GetCACaps: text; GetCACert: a certificate or degenerate PKCS#7; PKIOperation: a CertRep (application/x-pki-message)", body = Vec<u8>, content_type = "application/octet-stream"))
)]
async fn scep_get(
    State(state): State<SharedState>,
    Extension(info): Extension<Arc<ConnInfo>>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = query_pairs(q.as_deref().unwrap_or(""));
    match operation(&q) {
        Some("GetCACaps") => ([(header::CONTENT_TYPE, "text/plain")], caps_text()).into_response(),
        Some("GetCACert") => ca_certs(&state).await,
        // No CA rollover: GetNextCACert (RFC 8894 4.7, the NEXT CA in a signed SignedData)
        // is not announced and is answered like any operation this server does not serve.
        Some("PKIOperation") => {
            let Some((_, msg)) = q.iter().find(|(k, _)| k == "message") else {
                return malformed("PKIOperation by GET needs message=<base64>".into());
            };
            let cleaned: String = msg
                .chars()
                .filter(|c| !c.is_ascii_whitespace() || *c == ' ')
                .map(|c| if c == ' ' { '+' } else { c })
                .collect();
            if cleaned.len() > scep::SCEP_MAX_BYTES * 4 / 3 + 4 {
                return error_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    codes::BODY_TOO_LARGE,
                    "SCEP message too large".into(),
                );
            }
            match base64::engine::general_purpose::STANDARD.decode(cleaned.as_bytes()) {
                Ok(der) => pki_operation(state, info, der).await,
                Err(_) => malformed("the message parameter is not base64".into()),
            }
        }
        other => unknown_operation(other),
    }
}

#[utoipa::path(
    post, path = paths::SCEP, tag = "scep",
    params(("operation" = String, Query, description = "PKIOperation")),
    request_body(content = Vec<u8>, description = "The CMS PKIOperation message (DER)", content_type = "application/x-pki-message"),
    responses((status = 200, description = "A CertRep (application/x-pki-message)", body = Vec<u8>, content_type = "application/x-pki-message"))
)]
async fn scep_post(
    State(state): State<SharedState>,
    Extension(info): Extension<Arc<ConnInfo>>,
    RawQuery(q): RawQuery,
    req: axum::extract::Request,
) -> Response {
    let q = query_pairs(q.as_deref().unwrap_or(""));
    match operation(&q) {
        Some("PKIOperation") => {}
        other => return unknown_operation(other),
    }
    // A declared length over the limit is refused before the body is read.
    let body: Bytes = match super::json::limited_bytes(req).await {
        Ok(b) => b,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                codes::BODY_TOO_LARGE,
                "SCEP message too large".into(),
            );
        }
        Err(r) => return r,
    };
    // Some clients post base64 instead of DER.
    let der = if body.first() == Some(&0x30) {
        body.to_vec()
    } else {
        let text: Vec<u8> = body
            .iter()
            .copied()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        match base64::engine::general_purpose::STANDARD.decode(&text) {
            Ok(d) => d,
            Err(_) => return malformed("the body is neither DER nor base64".into()),
        }
    };
    pki_operation(state, info, der).await
}

fn caps_text() -> String {
    let mut s = CAPABILITIES.join("\n");
    s.push('\n');
    s
}

/// The RA certificate first, then its encryption-only certificate, then the CA certificates
/// (selected configuration, and the local CA that issued the RA when different).
fn ca_chain(state: &SharedState, selected: &str) -> Vec<Vec<u8>> {
    let ra = state.scep_ra.load();
    let mut certs = vec![ra.cert_der.clone()];
    certs.extend(ra.enc_cert_der.clone());
    if let Ok(i) = state.core.issuer(selected) {
        certs.push(i.ca_der());
    }
    if selected != LOCAL_CONFIG {
        certs.push(state.core.local_ca().ca().cert_der().to_vec());
    }
    certs
}

async fn ca_certs(state: &SharedState) -> Response {
    let selected = match state.core.mutual_auth().await {
        Ok(ma) => ma.enrollment_config,
        Err(e) => return internal(e),
    };
    match ferrocore_pki::cms::certs_only(&ca_chain(state, &selected)) {
        Ok(der) => (
            [(header::CONTENT_TYPE, "application/x-x509-ca-ra-cert")],
            der,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "GetCACert: cannot build the certs-only message");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::INTERNAL,
                "internal error".into(),
            )
        }
    }
}

fn pki_message(der: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/x-pki-message")], der).into_response()
}

fn internal(detail: impl std::fmt::Display) -> Response {
    tracing::error!(%detail, "SCEP internal error");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        codes::INTERNAL,
        "internal error".into(),
    )
}

/// Builds and signs the CertRep on the crypto pool.
async fn reply(ra: Arc<RaKey>, to: ReplyTo, body: CertRepBody, cipher: ContentCipher) -> Response {
    match crypto_pool::run(move || scep::build_cert_rep(&ra, &to, &body, cipher)).await {
        Ok(Ok(der)) => pki_message(der),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

/// The request's signer certificate, verified like a TLS client certificate.
fn verify_signer(state: &SharedState, msg: &scep::PkiMessage) -> ClientCert {
    let chain = [rustls_pki_types::CertificateDer::from(
        msg.reply_to.signer_cert_der.clone(),
    )];
    state.trust.verify(&chain, state.core.clock().now())
}

async fn pki_operation(state: SharedState, info: Arc<ConnInfo>, der: Vec<u8>) -> Response {
    if der.len() > scep::SCEP_MAX_BYTES {
        return error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::BODY_TOO_LARGE,
            "SCEP message too large".into(),
        );
    }
    let ra = state.scep_ra.load_full();
    let ra2 = ra.clone();
    let parsed = match crypto_pool::run(move || scep::parse_request(&der, &ra2)).await {
        Ok(p) => p,
        Err(e) => return internal(e),
    };
    let msg = match parsed {
        Ok(m) => m,
        Err(ScepError::Malformed(e)) => {
            tracing::info!(peer = %info.peer, error = %e, "SCEP message refused (malformed)");
            return malformed("not a SCEP PKIOperation message (signed and enveloped CMS)".into());
        }
        Err(ScepError::Refused {
            fail_info,
            reason,
            reply_to,
        }) => {
            tracing::warn!(peer = %info.peer, transaction = %reply_to.transaction_id,
                fail_info = fail_info.name(), %reason, "SCEP request refused");
            return reply(
                ra,
                *reply_to,
                CertRepBody::Failure(fail_info),
                ContentCipher::Aes128Cbc,
            )
            .await;
        }
    };
    let cipher = match msg.cipher {
        ContentCipher::DesEde3Cbc | ContentCipher::DesCbc => ContentCipher::Aes128Cbc,
        aes => aes,
    };
    // The signer is judged here (the trust store is the edge's); what each message type
    // does and which failInfo a refusal gets is the domain's (`scep_operation`).
    let signer = match msg.message_type {
        MessageType::PkcsReq | MessageType::RenewalReq => match verify_signer(&state, &msg) {
            ClientCert::Verified(presented) => ScepSigner::Trusted(presented),
            ClientCert::Rejected(e) => ScepSigner::Untrusted(e.to_string()),
            ClientCert::None => ScepSigner::SelfSigned,
        },
        _ => ScepSigner::SelfSigned,
    };
    let op = ScepOperation {
        message_type: msg.message_type,
        transaction_id: msg.transaction_id().to_owned(),
        challenge: (msg.message_type == MessageType::PkcsReq)
            .then(|| scep::csr_challenge_password(&msg.content))
            .flatten(),
        content: msg.content.clone(),
        signer_cert_der: msg.reply_to.signer_cert_der.clone(),
    };
    let tx = op.transaction_id.as_str();
    let body = match state.core.scep_operation(&op, signer).await {
        Ok(ScepAnswer::Certificates {
            certs,
            device_id: Some(device),
        }) => {
            tracing::info!(transaction = %tx, %device, kind = ?msg.message_type,
                cipher = msg.cipher.name(), "SCEP certificate issued");
            CertRepBody::Success(certs)
        }
        Ok(ScepAnswer::Certificates {
            certs,
            device_id: None,
        }) => {
            tracing::info!(peer = %info.peer, transaction = %tx, kind = ?msg.message_type,
                "SCEP access answered");
            CertRepBody::Success(certs)
        }
        Ok(ScepAnswer::Crl(crl)) => {
            tracing::info!(peer = %info.peer, transaction = %tx, kind = ?msg.message_type,
                "SCEP access answered");
            CertRepBody::Crl(crl)
        }
        Ok(ScepAnswer::Failure {
            fail_info,
            code,
            error,
        }) => {
            tracing::warn!(peer = %info.peer, transaction = %tx, kind = ?msg.message_type,
                fail_info = fail_info.name(), code, %error, "SCEP request refused");
            CertRepBody::Failure(fail_info)
        }
        Err(e) => return internal(e),
    };
    reply(ra, msg.reply_to, body, cipher).await
}

/// The OpenAPI description of this module's routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    create_challenge,
    set_static_challenge,
    clear_static_challenge,
    scep_get,
    scep_post
))]
pub struct Api;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_keeps_plus_and_decodes_escapes() {
        let q = query_pairs("operation=PKIOperation&message=ab%2Bc+d%3D%3D&x");
        assert_eq!(operation(&q), Some("PKIOperation"));
        assert_eq!(q[1].1, "ab+c+d==");
        assert_eq!(q[2], ("x".to_owned(), String::new()));
    }
}
