//! The OCSP responder's HTTP binding (RFC 6960 Appendix A): `POST /ocsp` with
//! `application/ocsp-request`, `GET /ocsp/<url-escaped base64 DER>`. Served on the device
//! listener and the plain-HTTP PKI listener. OCSP errors travel inside a 200
//! `application/ocsp-response` (`malformedRequest` for anything that does not decode);
//! HTTP errors are only for bodies over the limit (413 `body_too_large`) and other media
//! types (415 `unsupported_media_type`).

use super::SharedState;
use super::error::error_response;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use ferrocore_pki::OCSP_REQUEST_MAX_BYTES;
use ferrocore_proto::codes;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/ocsp", post(ocsp_post).get(ocsp_get_empty))
        .route("/ocsp/", post(ocsp_post))
        .route("/ocsp/{*request}", get(ocsp_get))
        // The body is read with its own limit (413 with a stable code), not axum's.
        .layer(axum::extract::DefaultBodyLimit::disable())
}

fn ocsp_response(der: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/ocsp-response"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        der,
    )
        .into_response()
}

fn too_large() -> Response {
    error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        codes::BODY_TOO_LARGE,
        format!("OCSP requests are limited to {OCSP_REQUEST_MAX_BYTES} bytes"),
    )
}

#[utoipa::path(
    post, path = "/ocsp", tag = "pki",
    request_body(content = Vec<u8>, description = "An OCSP request (DER)", content_type = "application/ocsp-request"),
    responses((status = 200, description = "An OCSP response (DER)", body = Vec<u8>, content_type = "application/ocsp-response"))
)]
async fn ocsp_post(State(state): State<SharedState>, headers: HeaderMap, body: Body) -> Response {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !(ct.is_empty() || ct.starts_with("application/ocsp-request")) {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type: application/ocsp-request".into(),
        );
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > OCSP_REQUEST_MAX_BYTES) {
        return too_large();
    }
    let bytes = match axum::body::to_bytes(body, OCSP_REQUEST_MAX_BYTES).await {
        Ok(b) => b,
        Err(_) => return too_large(),
    };
    ocsp_response(state.core.ocsp_respond(&bytes).await.der)
}

#[utoipa::path(
    get, path = "/ocsp/{request}", tag = "pki",
    params(("request" = String, Path, description = "The OCSP request, base64 (RFC 6960 A.1)")),
    responses((status = 200, description = "An OCSP response (DER)", body = Vec<u8>, content_type = "application/ocsp-response"))
)]
async fn ocsp_get(State(state): State<SharedState>, Path(request): Path<String>) -> Response {
    if request.len() > OCSP_REQUEST_MAX_BYTES * 2 {
        return too_large();
    }
    // Path<String> is already percent-decoded; some clients leave '+' or '/' unescaped.
    let compact: String = request.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    )
    .decode(compact.as_bytes())
    .unwrap_or_default();
    // Undecodable base64 becomes an empty request: malformedRequest, logged by the core.
    ocsp_response(state.core.ocsp_respond(&der).await.der)
}

#[utoipa::path(
    get, path = "/ocsp", tag = "pki",
    responses((status = 200, description = "malformedRequest (an OCSP GET needs the request in the path)", body = Vec<u8>, content_type = "application/ocsp-response"))
)]
async fn ocsp_get_empty(State(state): State<SharedState>) -> Response {
    ocsp_response(state.core.ocsp_respond(&[]).await.der)
}

/// The OpenAPI description of this module's routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(ocsp_post, ocsp_get, ocsp_get_empty))]
pub struct Api;
