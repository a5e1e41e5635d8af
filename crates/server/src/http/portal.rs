//! Admin API of the portal HTTPS certificate (`/api/v1/admin/portal-cert`): show, upload
//! (PEM chain + key or PKCS#12 + password), rollback. An accepted certificate is swapped on
//! every listener at once ([`crate::tls::TlsState::set_identity`]: new connections get it,
//! established ones keep theirs) and stored in the data directory, the previous one kept for
//! rollback. Routes are merged into the admin router (behind its token check).

use super::SharedState;
use super::error::ApiError;
use super::json::ApiJson;
use crate::portal_cert::{self, Checks};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use ferrocore_core::CoreError;
use ferrocore_proto::{PortalCert, PortalCertUpload, codes};

/// Uploads and rollbacks run one at a time (they read, swap and write the same files).
static CHANGE_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Configuration the portal certificate is checked against.
#[derive(Debug, Clone, Default)]
pub struct PortalState {
    /// `server.hostnames`: an uploaded certificate must cover each.
    pub hostnames: Vec<String>,
}

pub fn admin_routes() -> Router<SharedState> {
    Router::new()
        .route(
            "/api/v1/admin/portal-cert",
            get(show_portal_cert).put(upload_portal_cert),
        )
        .route(
            "/api/v1/admin/portal-cert/rollback",
            post(rollback_portal_cert),
        )
}

fn internal(e: anyhow::Error) -> ApiError {
    CoreError::internal(format!("{e:#}")).into()
}

async fn current(state: &SharedState) -> Result<PortalCert, ApiError> {
    let (id, auto) = state.data_dir.server_identity().map_err(internal)?;
    let previous = state
        .data_dir
        .previous_server_identity()
        .map_err(internal)?
        .is_some();
    Ok(portal_cert::describe(
        &id.chain_pem,
        auto,
        &portal_cert::public_roots(),
        previous,
        state.core.clock().now(),
    )?)
}

#[utoipa::path(
    get, path = "/api/v1/admin/portal-cert", tag = "admin",
    responses((status = 200, description = "OK", body = PortalCert))
)]
async fn show_portal_cert(State(state): State<SharedState>) -> Result<Json<PortalCert>, ApiError> {
    Ok(Json(current(&state).await?))
}

#[utoipa::path(
    put, path = "/api/v1/admin/portal-cert", tag = "admin",
    request_body = PortalCertUpload,
    responses((status = 200, description = "OK", body = PortalCert))
)]
async fn upload_portal_cert(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<PortalCertUpload>,
) -> Result<Json<PortalCert>, ApiError> {
    let (chain, key) = match (req.chain_pem, req.key_pem, req.pkcs12_base64) {
        (Some(chain), Some(key), None) => portal_cert::parse_pem(&chain, &key)?,
        (None, None, Some(p12)) => {
            let der = base64::engine::general_purpose::STANDARD
                .decode(p12.trim())
                .map_err(|_| CoreError::PortalCert {
                    code: codes::PORTAL_CERT_MALFORMED,
                    message: "pkcs12_base64 is not base64".into(),
                })?;
            portal_cert::parse_pkcs12(&der, req.password.as_deref().unwrap_or(""))?
        }
        _ => {
            return Err(CoreError::BadRequest(
                "give chain_pem and key_pem, or pkcs12_base64 (with password)".into(),
            )
            .into());
        }
    };
    let _guard = CHANGE_LOCK.lock().await;
    let private_roots: Vec<_> = state
        .core
        .trusted_ca_ders()
        .iter()
        .filter_map(|d| {
            webpki::anchor_from_trusted_cert(&rustls_pki_types::CertificateDer::from(d.as_slice()))
                .ok()
                .map(|a| a.to_owned())
        })
        .collect();
    let public_roots = portal_cert::public_roots();
    let mutual_auth_enabled = state.core.mutual_auth().await?.enabled_at.is_some();
    let valid = portal_cert::validate(
        chain,
        key,
        &Checks {
            hostnames: &state.portal.hostnames,
            public_roots: &public_roots,
            private_roots: &private_roots,
            mutual_auth_enabled,
            now: state.core.clock().now(),
        },
    )?;
    // Swap in memory first (nothing changes if that fails), then persist; if persisting
    // fails, put the old certificate back.
    let (old, _) = state.data_dir.server_identity().map_err(internal)?;
    state
        .tls
        .set_identity(valid.chain.clone(), valid.key.clone_key(), &state.trust)
        .map_err(internal)?;
    let new = crate::datadir::ServerIdentity {
        chain_pem: valid.chain_pem.clone(),
        key_pem: valid.key_pem.clone(),
    };
    if let Err(e) = state.data_dir.install_server_identity(&new) {
        if let Ok((c, k)) = crate::tls::parse_identity(&old.chain_pem, &old.key_pem) {
            let _ = state.tls.set_identity(c, k, &state.trust);
        }
        return Err(internal(e));
    }
    tracing::info!(
        publicly_trusted = valid.publicly_trusted,
        "portal HTTPS certificate replaced"
    );
    for w in &valid.warnings {
        tracing::warn!(warning = %w, "portal HTTPS certificate");
    }
    let mut out = current(&state).await?;
    out.warnings = valid.warnings;
    Ok(Json(out))
}

#[utoipa::path(
    post, path = "/api/v1/admin/portal-cert/rollback", tag = "admin",
    responses((status = 200, description = "OK", body = PortalCert))
)]
async fn rollback_portal_cert(
    State(state): State<SharedState>,
) -> Result<Json<PortalCert>, ApiError> {
    let _guard = CHANGE_LOCK.lock().await;
    let Some((previous, _)) = state
        .data_dir
        .previous_server_identity()
        .map_err(internal)?
    else {
        return Err(CoreError::PortalCert {
            code: codes::PORTAL_CERT_NO_PREVIOUS,
            message: "there is no previous portal certificate to roll back to".into(),
        }
        .into());
    };
    let (chain, key) = portal_cert::parse_pem(&previous.chain_pem, &previous.key_pem)?;
    state
        .tls
        .set_identity(chain, key, &state.trust)
        .map_err(internal)?;
    state
        .data_dir
        .rollback_server_identity()
        .map_err(internal)?;
    tracing::info!("portal HTTPS certificate rolled back");
    Ok(Json(current(&state).await?))
}

/// The OpenAPI description of this module's routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(show_portal_cert, upload_portal_cert, rollback_portal_cert))]
pub struct Api;
