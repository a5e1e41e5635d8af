//! EST (RFC 7030) on the device listener, under `/.well-known/est/` (optionally with a label
//! naming the platform: `/.well-known/est/android/simpleenroll`):
//! - `GET cacerts`: the selected enrollment configuration's CA, base64 certs-only PKCS#7;
//! - `GET csrattrs`: base64 DER CsrAttrs (ecdsa-with-SHA256);
//! - `POST simpleenroll`: base64 PKCS#10 (`application/pkcs10`), HTTP Basic with a user's
//!   credentials, or a one-time token (`Authorization: Bearer <token>`, or Basic with an
//!   empty user name and the token as password);
//! - `POST simplereenroll`: mutual TLS with the device's current certificate.
//!
//! Answers are base64 certs-only PKCS#7 (`application/pkcs7-mime; smime-type=certs-only`).
//! Errors use the standard JSON body: 401 (with `WWW-Authenticate`) for missing or wrong
//! credentials, 415 for another media type, 413 for oversized bodies, 400 for bodies that are
//! not base64 (`est_body_not_base64`) or not an acceptable CSR (`invalid_csr`).

use super::client_identity::ClientIdentity;
use super::error::{ApiError, error_response};
use super::{ConnInfo, SharedState};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use ferrocore_core::CoreError;
use ferrocore_core::est::EstCredential;
use ferrocore_core::service::DeviceCredential;
use ferrocore_pki::{EST_BODY_MAX_BYTES, EstBodyError, VerifiedCsr};
use ferrocore_proto::{Platform, codes};
use std::sync::Arc;

pub(crate) const PREFIX: &str = "/.well-known/est";
const WWW_AUTHENTICATE: &str = "Basic realm=\"ferrocore-est\"";

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route(&format!("{PREFIX}/cacerts"), get(cacerts))
        .route(&format!("{PREFIX}/csrattrs"), get(csrattrs))
        .route(&format!("{PREFIX}/simpleenroll"), post(simpleenroll))
        .route(&format!("{PREFIX}/simplereenroll"), post(simplereenroll))
        .route(&format!("{PREFIX}/{{label}}/cacerts"), get(cacerts_label))
        .route(&format!("{PREFIX}/{{label}}/csrattrs"), get(csrattrs_label))
        .route(
            &format!("{PREFIX}/{{label}}/simpleenroll"),
            post(simpleenroll_label),
        )
        .route(
            &format!("{PREFIX}/{{label}}/simplereenroll"),
            post(simplereenroll_label),
        )
        // Bodies are read with EST's own limit (413 with a stable code).
        .layer(axum::extract::DefaultBodyLimit::disable())
}

/// An EST error: the standard JSON body, plus `WWW-Authenticate` on 401.
struct EstError(Box<Response>);

impl IntoResponse for EstError {
    fn into_response(self) -> Response {
        *self.0
    }
}

impl EstError {
    fn new(r: Response) -> Self {
        EstError(Box::new(r))
    }
}

impl From<CoreError> for EstError {
    fn from(e: CoreError) -> Self {
        let mut r = ApiError::from(e).into_response();
        if r.status() == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(WWW_AUTHENTICATE),
            );
        }
        EstError(Box::new(r))
    }
}

impl From<ApiError> for EstError {
    fn from(e: ApiError) -> Self {
        EstError(Box::new(e.into_response()))
    }
}

fn label_platform(label: &str) -> Result<Platform, EstError> {
    label.parse::<Platform>().map_err(|_| {
        EstError::new(error_response(
            StatusCode::NOT_FOUND,
            codes::NOT_FOUND,
            format!("unknown EST label {label:?}: use android, ios, macos or windows"),
        ))
    })
}

fn pkcs7_response(p7: Vec<u8>) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/pkcs7-mime; smime-type=certs-only"),
            ),
            (
                header::HeaderName::from_static("content-transfer-encoding"),
                HeaderValue::from_static("base64"),
            ),
        ],
        ferrocore_pki::est_base64(&p7),
    )
        .into_response()
}

#[utoipa::path(
    get, path = "/.well-known/est/cacerts", tag = "est",
    responses((status = 200, description = "The CA certificate, base64 PKCS#7 certs-only", body = String, content_type = "application/pkcs7-mime"))
)]
async fn cacerts(State(state): State<SharedState>) -> Result<Response, EstError> {
    let selected = state.core.mutual_auth().await?.enrollment_config;
    let issuer = state.core.issuer(&selected)?;
    let p7 = ferrocore_pki::cms::certs_only(&[issuer.ca_der()]).map_err(CoreError::from)?;
    Ok(pkcs7_response(p7))
}

#[utoipa::path(
    get, path = "/.well-known/est/{label}/cacerts", tag = "est",
    params(("label" = String, Path, description = "The platform label: android, ios, macos or windows")),
    responses((status = 200, description = "The CA certificate, base64 PKCS#7 certs-only", body = String, content_type = "application/pkcs7-mime"))
)]
async fn cacerts_label(
    state: State<SharedState>,
    Path(label): Path<String>,
) -> Result<Response, EstError> {
    label_platform(&label)?;
    cacerts(state).await
}

#[utoipa::path(
    get, path = "/.well-known/est/csrattrs", tag = "est",
    responses((status = 200, description = "CSR attributes, base64 DER", body = String, content_type = "application/csrattrs"))
)]
async fn csrattrs() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/csrattrs"),
            ),
            (
                header::HeaderName::from_static("content-transfer-encoding"),
                HeaderValue::from_static("base64"),
            ),
        ],
        ferrocore_pki::est_base64(&ferrocore_pki::csr_attrs_der()),
    )
        .into_response()
}

#[utoipa::path(
    get, path = "/.well-known/est/{label}/csrattrs", tag = "est",
    params(("label" = String, Path, description = "The platform label: android, ios, macos or windows")),
    responses((status = 200, description = "CSR attributes, base64 DER", body = String, content_type = "application/csrattrs"))
)]
async fn csrattrs_label(Path(label): Path<String>) -> Result<Response, EstError> {
    label_platform(&label)?;
    Ok(csrattrs().await)
}

/// Content type, size and base64 PKCS#10 checks shared by both enrollment routes.
async fn read_csr(headers: &HeaderMap, body: Body) -> Result<VerifiedCsr, EstError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !ct.starts_with("application/pkcs10") {
        return Err(EstError::new(error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type: application/pkcs10 (base64 DER PKCS#10)".into(),
        )));
    }
    let too_large = || {
        EstError::new(error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::BODY_TOO_LARGE,
            format!("EST requests are limited to {EST_BODY_MAX_BYTES} bytes"),
        ))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > EST_BODY_MAX_BYTES) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, EST_BODY_MAX_BYTES)
        .await
        .map_err(|_| too_large())?;
    ferrocore_pki::parse_est_body(&bytes).map_err(|e| match e {
        EstBodyError::NotBase64(why) => EstError::new(error_response(
            StatusCode::BAD_REQUEST,
            codes::EST_BODY_NOT_BASE64,
            format!("the body is not base64 PKCS#10: {why}"),
        )),
        EstBodyError::Csr(e) => CoreError::from(e).into(),
    })
}

/// The credential of a `simpleenroll`: Basic (user, or empty user + token) or Bearer token.
fn est_credential(headers: &HeaderMap) -> Result<EstCredential, EstError> {
    let unauthorized = |message: &str| {
        let mut r = error_response(
            StatusCode::UNAUTHORIZED,
            codes::UNAUTHORIZED,
            message.to_owned(),
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(WWW_AUTHENTICATE),
        );
        EstError(Box::new(r))
    };
    let auth = match super::auth::Authorization::of(headers) {
        Ok(Some(a)) => a,
        Ok(None) => {
            return Err(unauthorized(
                "credentials required: HTTP Basic (user or token) or Bearer token",
            ));
        }
        Err(e) => return Err(EstError::new(e.into_response())),
    };
    if let Some(token) = auth.bearer() {
        return Ok(EstCredential::Token(token.to_owned()));
    }
    match auth.basic() {
        Some(Ok((user, password))) if user.is_empty() => Ok(EstCredential::Token(password)),
        Some(Ok((username, password))) => Ok(EstCredential::Password { username, password }),
        Some(Err(())) => Err(unauthorized("malformed Basic credentials")),
        None => Err(unauthorized("unsupported authorization scheme")),
    }
}

async fn enroll(
    state: SharedState,
    label: Option<Platform>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, EstError> {
    let csr = read_csr(&headers, body).await?;
    let credential = est_credential(&headers)?;
    let e = state.core.est_enroll(credential, label, &csr).await?;
    let p7 = ferrocore_pki::cms::certs_only(&[e.issued.der]).map_err(CoreError::from)?;
    Ok(pkcs7_response(p7))
}

#[utoipa::path(
    post, path = "/.well-known/est/simpleenroll", tag = "est",
    request_body(content = String, description = "A PKCS#10 request, base64 DER", content_type = "application/pkcs10"),
    responses((status = 200, description = "The certificate, base64 PKCS#7 certs-only", body = String, content_type = "application/pkcs7-mime"), (status = 401, description = "Credentials needed (Basic or Bearer)"))
)]
async fn simpleenroll(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, EstError> {
    enroll(state, None, headers, body).await
}

#[utoipa::path(
    post, path = "/.well-known/est/{label}/simpleenroll", tag = "est",
    params(("label" = String, Path, description = "The platform label: android, ios, macos or windows")),
    request_body(content = String, description = "A PKCS#10 request, base64 DER", content_type = "application/pkcs10"),
    responses((status = 200, description = "The certificate, base64 PKCS#7 certs-only", body = String, content_type = "application/pkcs7-mime"), (status = 401, description = "Credentials needed (Basic or Bearer)"))
)]
async fn simpleenroll_label(
    State(state): State<SharedState>,
    Path(label): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, EstError> {
    let platform = label_platform(&label)?;
    enroll(state, Some(platform), headers, body).await
}

async fn reenroll(
    state: SharedState,
    info: Arc<ConnInfo>,
    identity: ClientIdentity,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, EstError> {
    if info.kind.device_listener().is_none() {
        return Err(CoreError::WrongListener("not a device listener".into()).into());
    }
    let csr = read_csr(&headers, body).await?;
    let cert = match super::device::credential(&identity, &headers)? {
        DeviceCredential::Certificate(cert) => cert,
        _ => return Err(CoreError::ClientCertRequired.into()),
    };
    let r = state.core.est_reenroll(&cert, &csr).await?;
    let p7 = ferrocore_pki::cms::certs_only(&[r.issued.der]).map_err(CoreError::from)?;
    Ok(pkcs7_response(p7))
}

#[utoipa::path(
    post, path = "/.well-known/est/simplereenroll", tag = "est",
    request_body(content = String, description = "A PKCS#10 request, base64 DER (mutual TLS with the current certificate)", content_type = "application/pkcs10"),
    responses((status = 200, description = "The certificate, base64 PKCS#7 certs-only", body = String, content_type = "application/pkcs7-mime"))
)]
async fn simplereenroll(
    State(state): State<SharedState>,
    Extension(info): Extension<Arc<ConnInfo>>,
    identity: ClientIdentity,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, EstError> {
    reenroll(state, info, identity, headers, body).await
}

#[utoipa::path(
    post, path = "/.well-known/est/{label}/simplereenroll", tag = "est",
    params(("label" = String, Path, description = "The platform label: android, ios, macos or windows")),
    request_body(content = String, description = "A PKCS#10 request, base64 DER (mutual TLS with the current certificate)", content_type = "application/pkcs10"),
    responses((status = 200, description = "The certificate, base64 PKCS#7 certs-only", body = String, content_type = "application/pkcs7-mime"))
)]
async fn simplereenroll_label(
    State(state): State<SharedState>,
    Extension(info): Extension<Arc<ConnInfo>>,
    Path(label): Path<String>,
    identity: ClientIdentity,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, EstError> {
    label_platform(&label)?;
    reenroll(state, info, identity, headers, body).await
}

/// The OpenAPI description of this module's routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    cacerts,
    cacerts_label,
    csrattrs,
    csrattrs_label,
    simpleenroll,
    simpleenroll_label,
    simplereenroll,
    simplereenroll_label
))]
pub struct Api;
