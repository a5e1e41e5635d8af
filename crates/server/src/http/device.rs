//! The device API: registration, check-ins, and the CA's public material (CA certificate,
//! CRL). Served on the device listener and the sync-TLS listener. The client certificate comes
//! from [`ClientIdentity`] (direct or forwarded by a trusted front end), never from headers.

use super::client_identity::ClientIdentity;
use super::error::ApiError;
use super::json::{ApiJson, OptionalJson};
use super::{ConnInfo, SharedState};
use crate::tls::ClientCert;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Extension, Json, Router};
use ferrocore_core::CoreError;
use ferrocore_core::service::DeviceCredential;
use ferrocore_proto::{
    AuthMode, CheckinEndpoint, CheckinRequest, CheckinResponse, CsrAttributes,
    CsrAttributesRequest, CsrRequest, IssuedIdentity, Listener, PolicyInfo, RegisterRequest,
    RegisterResponse, paths,
};
use std::sync::Arc;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route(paths::REGISTER, post(register))
        .route(paths::CHECKIN, post(checkin))
        .route(paths::RENEW, post(renew))
        .route(paths::MIGRATE, post(migrate))
        .route(paths::CSR_ATTRIBUTES, post(csr_attributes))
}

/// What the agent's CSR must carry; answered only to a user whose credentials check out
/// (registration: the selected configuration) or to a registered device authenticated as for
/// a check-in (renewal: its configuration; migration: the selected one). It can hold an
/// external CA's challenge.
#[utoipa::path(
    post, path = paths::CSR_ATTRIBUTES, tag = "device",
    request_body(content = Option<CsrAttributesRequest>, description = "The user's credentials; empty for a registered device"),
    responses((status = 200, description = "OK", body = CsrAttributes))
)]
async fn csr_attributes(
    State(state): State<SharedState>,
    identity: ClientIdentity,
    headers: HeaderMap,
    OptionalJson(req): OptionalJson<CsrAttributesRequest>,
) -> Result<Json<CsrAttributes>, ApiError> {
    let r = match (req.username, req.password) {
        (Some(u), Some(p)) => state.core.csr_attributes(&u, &p).await?,
        (None, None) => {
            let cred = credential(&identity, &headers)?;
            state.core.csr_attributes_of_device(cred).await?
        }
        _ => {
            return Err(CoreError::BadRequest("give username and password together".into()).into());
        }
    };
    Ok(Json(CsrAttributes {
        key: r.rsa_min_bits.map(|b| format!("rsa-{b}")),
        challenge_password: r.challenge_password,
    }))
}

pub(super) fn endpoint(state: &SharedState, listener: Listener) -> CheckinEndpoint {
    let port = match listener {
        Listener::Device => state.ports.device,
        Listener::SyncTls => state.ports.sync_tls.unwrap_or(0),
    };
    CheckinEndpoint { listener, port }
}

fn policy_info(p: &ferrocore_core::store::PolicyRecord) -> PolicyInfo {
    PolicyInfo {
        name: p.name.clone(),
        checkin_interval_secs: p.checkin_interval_secs,
    }
}

fn listener_of(info: &ConnInfo) -> Result<Listener, ApiError> {
    info.kind
        .device_listener()
        .ok_or_else(|| CoreError::WrongListener("not a device listener".into()).into())
}

#[utoipa::path(
    post, path = paths::REGISTER, tag = "device",
    request_body = RegisterRequest,
    responses((status = 200, description = "OK", body = RegisterResponse))
)]
async fn register(
    State(state): State<SharedState>,
    Extension(info): Extension<Arc<ConnInfo>>,
    // Refuses forged or ambiguous certificate headers here too; the identity is unused.
    _identity: ClientIdentity,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<Json<RegisterResponse>, ApiError> {
    let via = listener_of(&info)?;
    // Registration never uses mutual authentication (the device has no identity yet); a
    // certificate that was presented anyway is ignored here.
    let r = state.core.register(req, via).await?;
    Ok(Json(RegisterResponse {
        device_id: r.device.id.clone(),
        mode: r.device.mode,
        checkin: endpoint(&state, r.device.listener),
        certificate_pem: r.certificate_pem,
        ca_pem: r.ca_pem,
        device_secret: r.device_secret,
        policy: policy_info(&r.policy),
    }))
}

/// Turns the request's client certificate or the secret header into one credential.
pub(super) fn credential(
    identity: &ClientIdentity,
    headers: &HeaderMap,
) -> Result<DeviceCredential, ApiError> {
    let secret = headers.get(paths::DEVICE_SECRET_HEADER);
    match (&identity.cert, secret) {
        (ClientCert::Rejected(e), _) => Err(ApiError(e.clone())),
        (ClientCert::Verified(_), Some(_)) => Err(CoreError::BadRequest(
            "send either a client certificate or a device secret, not both".into(),
        )
        .into()),
        (ClientCert::Verified(c), None) => Ok(DeviceCredential::Certificate(c.clone())),
        (ClientCert::None, Some(v)) => {
            let v = v.to_str().unwrap_or_default();
            let (uuid, secret) = v.split_once(':').ok_or_else(|| {
                CoreError::BadRequest(format!(
                    "{} must be <device-uuid>:<secret>",
                    paths::DEVICE_SECRET_HEADER
                ))
            })?;
            Ok(DeviceCredential::Secret {
                device_uuid: uuid.to_owned(),
                secret: secret.to_owned(),
            })
        }
        (ClientCert::None, None) => Ok(DeviceCredential::None),
    }
}

#[utoipa::path(
    post, path = paths::CHECKIN, tag = "device",
    request_body(content = Option<CheckinRequest>),
    responses((status = 200, description = "OK", body = CheckinResponse))
)]
async fn checkin(
    State(state): State<SharedState>,
    Extension(info): Extension<Arc<ConnInfo>>,
    identity: ClientIdentity,
    headers: HeaderMap,
    OptionalJson(req): OptionalJson<CheckinRequest>,
) -> Result<Json<CheckinResponse>, ApiError> {
    let via = listener_of(&info)?;
    let cred = credential(&identity, &headers)?;
    let c = state.core.checkin(cred, via, req).await?;
    Ok(Json(CheckinResponse {
        device_id: c.device.id.clone(),
        mode: c.device.mode,
        checkin: endpoint(&state, c.device.listener),
        policy: policy_info(&c.policy),
        actions: c.actions,
        server_time: c.at,
        certificate: c.lifecycle,
    }))
}

fn issued_out(state: &SharedState, r: ferrocore_core::service::Reissued) -> IssuedIdentity {
    IssuedIdentity {
        serial: r.issued.serial_hex.clone(),
        not_after: r.issued.not_after.unix_timestamp(),
        certificate_pem: r.issued.pem,
        ca_pem: r.ca_pem,
        mode: AuthMode::Mutual,
        checkin: endpoint(state, Listener::Device),
    }
}

/// Renewal: mutual TLS with the current certificate (or one expired within the grace).
#[utoipa::path(
    post, path = paths::RENEW, tag = "device",
    request_body = CsrRequest,
    responses((status = 200, description = "OK", body = IssuedIdentity))
)]
async fn renew(
    State(state): State<SharedState>,
    Extension(info): Extension<Arc<ConnInfo>>,
    identity: ClientIdentity,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CsrRequest>,
) -> Result<Json<IssuedIdentity>, ApiError> {
    listener_of(&info)?;
    let r = match credential(&identity, &headers)? {
        DeviceCredential::Certificate(cert) => state.core.renew(&cert, &req.csr_pem).await?,
        _ => return Err(CoreError::ClientCertRequired.into()),
    };
    Ok(Json(issued_out(&state, r)))
}

/// Migration of a legacy device: authenticated with its device secret.
#[utoipa::path(
    post, path = paths::MIGRATE, tag = "device",
    request_body = CsrRequest,
    responses((status = 200, description = "OK", body = IssuedIdentity))
)]
async fn migrate(
    State(state): State<SharedState>,
    Extension(info): Extension<Arc<ConnInfo>>,
    identity: ClientIdentity,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CsrRequest>,
) -> Result<Json<IssuedIdentity>, ApiError> {
    listener_of(&info)?;
    let r = match credential(&identity, &headers)? {
        DeviceCredential::Secret {
            device_uuid,
            secret,
        } => {
            state
                .core
                .migrate(&device_uuid, &secret, &req.csr_pem)
                .await?
        }
        _ => return Err(CoreError::DeviceSecretRequired.into()),
    };
    Ok(Json(issued_out(&state, r)))
}

fn config_crl(
    state: &SharedState,
    config: &str,
) -> Result<Arc<ferrocore_core::issuance::PublishedCrl>, ApiError> {
    state
        .core
        .crl_of(config)
        .ok_or_else(|| CoreError::NotFound(format!("enrollment configuration {config:?}")).into())
}

/// The CRL of an enrollment configuration, DER or PEM.
fn crl_response(
    crl: &ferrocore_core::issuance::PublishedCrl,
    pem: bool,
) -> axum::response::Response {
    if pem {
        (
            [(header::CONTENT_TYPE, "application/x-pem-file")],
            crl.pem.clone(),
        )
            .into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "application/pkix-crl")],
            crl.der.clone(),
        )
            .into_response()
    }
}

#[utoipa::path(
    get, path = "/pki/{config}/crl.der", tag = "pki",
    params(("config" = String, Path, description = "The enrollment configuration")),
    responses((status = 200, description = "The CRL, DER", body = Vec<u8>, content_type = "application/pkix-crl"))
)]
pub async fn config_crl_der(
    State(state): State<SharedState>,
    axum::extract::Path(config): axum::extract::Path<String>,
) -> Result<axum::response::Response, ApiError> {
    let crl = config_crl(&state, &config)?;
    Ok(crl_response(&crl, false))
}

#[utoipa::path(
    get, path = "/pki/{config}/crl.pem", tag = "pki",
    params(("config" = String, Path, description = "The enrollment configuration")),
    responses((status = 200, description = "The CRL, PEM", body = String, content_type = "application/x-pem-file"))
)]
pub async fn config_crl_pem(
    State(state): State<SharedState>,
    axum::extract::Path(config): axum::extract::Path<String>,
) -> Result<axum::response::Response, ApiError> {
    let crl = config_crl(&state, &config)?;
    Ok(crl_response(&crl, true))
}

#[utoipa::path(
    get, path = "/pki/{config}/ca.pem", tag = "pki",
    params(("config" = String, Path, description = "The enrollment configuration")),
    responses((status = 200, description = "The CA certificate, PEM", body = String, content_type = "application/x-pem-file"))
)]
pub async fn config_ca_pem(
    State(state): State<SharedState>,
    axum::extract::Path(config): axum::extract::Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok((
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        ferrocore_core::issuance::Issuer::ca_pem(state.core.issuer(&config)?.as_ref()),
    ))
}

#[utoipa::path(
    get, path = paths::CRL_DER, tag = "pki",
    responses((status = 200, description = "The local CA's CRL, DER", body = Vec<u8>, content_type = "application/pkix-crl"))
)]
pub async fn crl_der(State(state): State<SharedState>) -> axum::response::Response {
    crl_response(&state.core.crl(), false)
}

#[utoipa::path(
    get, path = paths::CRL_PEM, tag = "pki",
    responses((status = 200, description = "The local CA's CRL, PEM", body = String, content_type = "application/x-pem-file"))
)]
pub async fn crl_pem(State(state): State<SharedState>) -> axum::response::Response {
    crl_response(&state.core.crl(), true)
}

#[utoipa::path(
    get, path = paths::CA_PEM, tag = "pki",
    responses((status = 200, description = "The local CA certificate, PEM", body = String, content_type = "application/x-pem-file"))
)]
pub async fn ca_pem(State(state): State<SharedState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        state.core.local_ca().ca().cert_pem(),
    )
}

/// The OpenAPI description of this module's routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    csr_attributes,
    register,
    checkin,
    renew,
    migrate,
    config_crl_der,
    config_crl_pem,
    config_ca_pem,
    crl_der,
    crl_pem,
    ca_pem
))]
pub struct Api;
