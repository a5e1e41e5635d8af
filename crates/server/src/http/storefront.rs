//! The app storefront (Apps@Work) on the storefront listener, its admin API (publish, list,
//! remove apps; the storefront authentication setting) and the AppConnect check-in on the
//! device listeners.
//!
//! Storefront requests authenticate with the device's identity certificate (the storefront
//! listener asks for one while the setting is `certificate`) or with the user's password
//! (HTTP Basic) plus the header `x-ferrocore-device-uuid` naming a registered, active device
//! of that user. Which one a device must use is decided by
//! `ferrocore_core::rules::storefront_credential`, nowhere else.
//!
//! Packages are stored in `DATA_DIR/apps/<id>` with their SHA-256; an upload is streamed to
//! disk and may be at most [`APP_UPLOAD_LIMIT`] bytes.

use super::SharedState;
use super::client_identity::ClientIdentity;
use super::error::{ApiError, error_response};
use super::json::ApiJson;
use crate::tls::ClientCert;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use ferrocore_core::CoreError;
use ferrocore_core::storefront::{AppRecord, StorefrontPresented};
use ferrocore_proto::{
    App, AppConnectCheckin, AppConnectCheckinRequest, AppListQuery, Platform, PublishQuery,
    StorefrontAuth, StorefrontSettings, codes, storefront_paths,
};
use http_body_util::BodyExt as _;
use std::sync::Arc;
use tokio::io::AsyncWriteExt as _;

/// Largest app package the admin API accepts (512 MiB).
pub const APP_UPLOAD_LIMIT: usize = 512 * 1024 * 1024;

/// Routes of the storefront listener.
pub fn storefront_routes() -> Router<SharedState> {
    Router::new()
        .route(storefront_paths::APPS, get(list_apps))
        .route(storefront_paths::PACKAGE, get(download))
}

/// The AppConnect check-in, merged into the device and sync-TLS listeners' router.
pub fn device_routes() -> Router<SharedState> {
    Router::new()
        .route(
            storefront_paths::APPCONNECT_CHECKIN,
            post(appconnect_checkin),
        )
        .route(storefront_paths::IDENTITY, post(storefront_identity))
}

/// Admin routes, merged into the admin router (behind its token check).
pub fn admin_routes() -> Router<SharedState> {
    Router::new()
        .route(
            "/api/v1/admin/settings/storefront-auth",
            get(storefront_settings).put(set_storefront_settings),
        )
        .route(
            "/api/v1/admin/apps",
            get(admin_list_apps)
                .post(publish_app)
                .layer(axum::extract::DefaultBodyLimit::max(APP_UPLOAD_LIMIT)),
        )
        .route("/api/v1/admin/apps/{id}", axum::routing::delete(remove_app))
}

fn app_out(a: AppRecord) -> App {
    App {
        id: a.id,
        platform: a.platform,
        name: a.name,
        version: a.version,
        size: a.size,
        sha256: a.sha256,
        published_at: a.published_at,
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    CoreError::internal(e).into()
}

// ------------------------------------------------------------------ storefront listener

/// Turns the request's client identity (the storefront connection's certificate; forwarded
/// certificates are refused off the device listener by the extractor) or the Basic
/// credentials into what the domain checks.
fn presented(
    identity: &ClientIdentity,
    headers: &HeaderMap,
) -> Result<StorefrontPresented, ApiError> {
    match &identity.cert {
        ClientCert::Rejected(e) => return Err(ApiError(e.clone())),
        ClientCert::Verified(c) => return Ok(StorefrontPresented::Certificate(c.clone())),
        ClientCert::None => {}
    }
    let auth = match super::auth::Authorization::of(headers) {
        Ok(Some(a)) => a,
        Ok(None) => return Ok(StorefrontPresented::None),
        // Two headers never get here (refused by `http::edge` before any handler).
        Err(_) => {
            return Err(
                CoreError::BadRequest("send exactly one Authorization header".into()).into(),
            );
        }
    };
    let bad = || CoreError::BadRequest("Authorization must be Basic <base64 user:password>".into());
    let (username, password) = match auth.basic() {
        Some(Ok(up)) => up,
        _ => return Err(bad().into()),
    };
    let device_uuid = headers
        .get(storefront_paths::DEVICE_UUID_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            CoreError::BadRequest(format!(
                "password authentication names the device in header {}",
                storefront_paths::DEVICE_UUID_HEADER
            ))
        })?;
    Ok(StorefrontPresented::Password {
        username,
        password,
        device_uuid: device_uuid.to_owned(),
    })
}

#[utoipa::path(
    get, path = storefront_paths::APPS, tag = "storefront",
    responses((status = 200, description = "The apps this device may install", body = Vec<App>))
)]
async fn list_apps(
    State(state): State<SharedState>,
    identity: ClientIdentity,
    headers: HeaderMap,
) -> Result<Json<Vec<App>>, ApiError> {
    let device = state
        .storefront
        .authenticate(presented(&identity, &headers)?)
        .await?;
    let apps = state.storefront.apps_for(&device).await?;
    Ok(Json(apps.into_iter().map(app_out).collect()))
}

#[utoipa::path(
    get, path = storefront_paths::PACKAGE, tag = "storefront",
    params(("id" = String, Path, description = "The app id")),
    responses((status = 200, description = "The package (its SHA-256 in x-ferrocore-sha256)", body = Vec<u8>, content_type = "application/octet-stream"))
)]
async fn download(
    State(state): State<SharedState>,
    identity: ClientIdentity,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let device = state
        .storefront
        .authenticate(presented(&identity, &headers)?)
        .await?;
    let app = state.storefront.app_for(&device, &id).await?;
    let path = state.data_dir.root().join("apps").join(&app.id);
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| internal(format!("{}: {e}", path.display())))?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    let disposition = format!(
        "attachment; filename=\"{}-{}.pkg\"",
        sanitize(&app.name),
        sanitize(&app.version)
    );
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, app.size)
        .header(storefront_paths::SHA256_HEADER, &app.sha256)
        .header(header::CONTENT_DISPOSITION, disposition)
        .body(body)
        .map_err(internal)
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

// ------------------------------------------------------------------ AppConnect

#[utoipa::path(
    post, path = storefront_paths::APPCONNECT_CHECKIN, tag = "device",
    request_body = AppConnectCheckinRequest,
    responses((status = 200, description = "OK", body = AppConnectCheckin))
)]
async fn appconnect_checkin(
    State(state): State<SharedState>,
    Extension(info): Extension<Arc<super::ConnInfo>>,
    identity: ClientIdentity,
    headers: HeaderMap,
    ApiJson(req): ApiJson<AppConnectCheckinRequest>,
) -> Result<Json<AppConnectCheckin>, ApiError> {
    let via = info
        .kind
        .device_listener()
        .ok_or_else(|| CoreError::WrongListener("not a device listener".into()))?;
    let cred = super::device::credential(&identity, &headers)?;
    let r = state
        .storefront
        .appconnect_checkin(cred, via, &req.app_id)
        .await?;
    Ok(Json(appconnect_out(r)))
}

/// A storefront certificate for a legacy device, authenticated with its device secret.
#[utoipa::path(
    post, path = "/api/v1/storefront/identity", tag = "device",
    request_body = ferrocore_proto::CsrRequest,
    responses((status = 200, description = "A storefront-only certificate for a legacy device (device secret header)", body = ferrocore_proto::IssuedIdentity))
)]
async fn storefront_identity(
    State(state): State<SharedState>,
    Extension(info): Extension<Arc<super::ConnInfo>>,
    identity: ClientIdentity,
    headers: HeaderMap,
    ApiJson(req): ApiJson<ferrocore_proto::CsrRequest>,
) -> Result<Json<ferrocore_proto::IssuedIdentity>, ApiError> {
    info.kind
        .device_listener()
        .ok_or_else(|| CoreError::WrongListener("not a device listener".into()))?;
    let r = match super::device::credential(&identity, &headers)? {
        ferrocore_core::service::DeviceCredential::Secret {
            device_uuid,
            secret,
        } => {
            state
                .storefront
                .issue_identity(&device_uuid, &secret, &req.csr_pem)
                .await?
        }
        _ => return Err(CoreError::DeviceSecretRequired.into()),
    };
    Ok(Json(ferrocore_proto::IssuedIdentity {
        serial: r.issued.serial_hex.clone(),
        not_after: r.issued.not_after.unix_timestamp(),
        certificate_pem: r.issued.pem,
        ca_pem: r.ca_pem,
        mode: r.device.mode,
        checkin: super::device::endpoint(&state, r.device.listener),
    }))
}

pub fn appconnect_out(r: ferrocore_core::storefront::AppConnectRecord) -> AppConnectCheckin {
    AppConnectCheckin {
        app_id: r.app_id,
        first_checkin_at: r.first_checkin_at,
        last_checkin_at: r.last_checkin_at,
        count: r.count,
    }
}

// ------------------------------------------------------------------ admin

#[utoipa::path(
    get, path = "/api/v1/admin/settings/storefront-auth", tag = "admin",
    responses((status = 200, description = "OK", body = StorefrontSettings))
)]
async fn storefront_settings(
    State(state): State<SharedState>,
) -> Result<Json<StorefrontSettings>, ApiError> {
    Ok(Json(StorefrontSettings {
        storefront_auth: state.storefront.auth_setting().await?,
    }))
}

/// Changes the setting and swaps the storefront listener's TLS configuration (it asks for
/// client certificates exactly while the setting is `certificate`).
#[utoipa::path(
    put, path = "/api/v1/admin/settings/storefront-auth", tag = "admin",
    request_body = StorefrontSettings,
    responses((status = 200, description = "OK", body = StorefrontSettings))
)]
async fn set_storefront_settings(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<StorefrontSettings>,
) -> Result<Json<StorefrontSettings>, ApiError> {
    state
        .storefront
        .set_auth_setting(req.storefront_auth)
        .await?;
    state
        .tls
        .set_storefront_client_auth(
            req.storefront_auth == StorefrontAuth::Certificate,
            &state.trust,
        )
        .map_err(|e| internal(format!("{e:#}")))?;
    Ok(Json(StorefrontSettings {
        storefront_auth: state.storefront.auth_setting().await?,
    }))
}

#[utoipa::path(
    get, path = "/api/v1/admin/apps", tag = "admin",
    params(AppListQuery),
    responses((status = 200, description = "OK", body = Vec<App>))
)]
async fn admin_list_apps(
    State(state): State<SharedState>,
    q: Result<Query<AppListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<App>>, ApiError> {
    let Query(q) = q.map_err(|e| CoreError::BadRequest(super::json::query_message(&e)))?;
    let platform = match q.platform.filter(|p| !p.is_empty()) {
        Some(p) => Some(p.parse::<Platform>().map_err(CoreError::BadRequest)?),
        None => None,
    };
    let apps = state.storefront.store().apps(platform).await?;
    Ok(Json(apps.into_iter().map(app_out).collect()))
}

fn check_label(what: &str, v: &str, max: usize) -> Result<(), ApiError> {
    let ok = !v.trim().is_empty()
        && v.len() <= max
        && v.chars().all(|c| !c.is_control())
        && v.trim() == v;
    if ok {
        Ok(())
    } else {
        Err(CoreError::BadRequest(format!(
            "{what} must be 1 to {max} printable characters without surrounding spaces"
        ))
        .into())
    }
}

/// `POST /api/v1/admin/apps?platform=P&name=N&version=V` with the package as the body
/// (application/octet-stream), streamed to disk while hashing.
#[utoipa::path(
    post, path = "/api/v1/admin/apps", tag = "admin",
    params(PublishQuery),
    request_body(content = Vec<u8>, description = "The package", content_type = "application/octet-stream"),
    responses((status = 201, description = "Published", body = App))
)]
async fn publish_app(
    State(state): State<SharedState>,
    q: Result<Query<PublishQuery>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| CoreError::BadRequest(super::json::query_message(&e)))?;
    let platform = q
        .platform
        .parse::<Platform>()
        .map_err(CoreError::BadRequest)?;
    if !matches!(platform, Platform::Android | Platform::Ios) {
        return Err(
            CoreError::BadRequest("the storefront serves android and ios apps".into()).into(),
        );
    }
    check_label("name", &q.name, 128)?;
    check_label("version", &q.version, 64)?;
    // A declared length over the limit is refused before anything is read.
    if hyper::body::Body::size_hint(&body).lower() > APP_UPLOAD_LIMIT as u64 {
        return Ok(error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::BODY_TOO_LARGE,
            format!("an app package may be at most {APP_UPLOAD_LIMIT} bytes"),
        ));
    }

    let dir = state.data_dir.root().join("apps");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| internal(format!("{}: {e}", dir.display())))?;
    let id = uuid::Uuid::new_v4().to_string();
    let tmp = dir.join(format!(".upload-{id}"));
    let result = receive(body, &tmp).await;
    let (size, sha256) = match result {
        Ok(v) => v,
        Err(r) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Ok(r);
        }
    };
    if size == 0 {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(CoreError::BadRequest("the package is empty".into()).into());
    }
    let app = AppRecord {
        id: id.clone(),
        platform,
        name: q.name,
        version: q.version,
        size,
        sha256,
        published_at: state.core.clock().now().unix_timestamp(),
    };
    let final_path = dir.join(&id);
    if let Err(e) = tokio::fs::rename(&tmp, &final_path).await {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(internal(format!("{}: {e}", final_path.display())));
    }
    if let Err(e) = state.storefront.store().add_app(&app).await {
        let _ = tokio::fs::remove_file(&final_path).await;
        return Err(e.into());
    }
    tracing::info!(app = %app.id, platform = %app.platform, name = %app.name, version = %app.version, size, "app published");
    Ok((StatusCode::CREATED, Json(app_out(app))).into_response())
}

/// Streams `body` into `path`, returning its size and SHA-256, or the error answer.
async fn receive(body: Body, path: &std::path::Path) -> Result<(u64, String), Response> {
    let fail = |e: String| {
        tracing::error!(error = %e, "app upload");
        error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            "internal error".into(),
        )
    };
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| fail(format!("{}: {e}", path.display())))?;
    let mut hasher = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut size: u64 = 0;
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                || e.to_string().contains("length limit");
            if too_large {
                error_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    codes::BODY_TOO_LARGE,
                    format!("an app package may be at most {APP_UPLOAD_LIMIT} bytes"),
                )
            } else {
                tracing::info!(error = %e, "app upload interrupted");
                error_response(
                    StatusCode::BAD_REQUEST,
                    codes::BAD_REQUEST,
                    "the upload was interrupted before the whole body arrived".into(),
                )
            }
        })?;
        if let Some(data) = frame.data_ref() {
            size += data.len() as u64;
            if size > APP_UPLOAD_LIMIT as u64 {
                return Err(error_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    codes::BODY_TOO_LARGE,
                    format!("an app package may be at most {APP_UPLOAD_LIMIT} bytes"),
                ));
            }
            hasher.update(data);
            file.write_all(data)
                .await
                .map_err(|e| fail(format!("{}: {e}", path.display())))?;
        }
    }
    file.sync_all()
        .await
        .map_err(|e| fail(format!("{}: {e}", path.display())))?;
    Ok((size, hex::encode(hasher.finish().as_ref())))
}

#[utoipa::path(
    delete, path = "/api/v1/admin/apps/{id}", tag = "admin",
    params(("id" = String, Path, description = "The app id")),
    responses((status = 204, description = "Removed"))
)]
async fn remove_app(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.storefront.store().remove_app(&id).await? {
        return Err(CoreError::NotFound(format!("app {id}")).into());
    }
    // Remove the file after the row: a download in flight keeps its open file.
    if uuid::Uuid::parse_str(&id).is_ok() {
        let path = state.data_dir.root().join("apps").join(&id);
        if let Err(e) = tokio::fs::remove_file(&path).await {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove app package");
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The OpenAPI description of this module's routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_apps,
    download,
    appconnect_checkin,
    storefront_settings,
    set_storefront_settings,
    admin_list_apps,
    publish_app,
    remove_app,
    storefront_identity
))]
pub struct Api;
