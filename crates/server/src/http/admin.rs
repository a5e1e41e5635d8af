//! The admin API (`/api/v1/admin/...`, bearer token), served on the admin listener only.
//! `ferrocore_client::AdminClient` (and the `ferrocore admin` CLI over it) has a method per route;
//! the `#[utoipa::path]` annotations describe them in `/api/v1/openapi.json`.

use super::SharedState;
use super::error::ApiError;
use super::json::{ApiJson, OptionalJson};
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use ferrocore_core::CoreError;
use ferrocore_core::issuance::{KIND_LOCAL_CA, KIND_SCEP};
use ferrocore_core::service::validate_config_name;
use ferrocore_core::store::{CertRecord, CheckinRecord, DeviceQuery, DeviceRecord, UserRecord};
use ferrocore_proto::{
    AssignPolicy, AuthMode, CertStatus, Certificate, Checkin, ClientKind, Device, DeviceDetail,
    DeviceStatus, EnrollmentChange, EnrollmentConfig, MigrationStatus, NewEnrollmentConfig,
    NewUser, Platform, Policy, PolicyChange, PortSettingsRequest, RenewalRisk, RevokeRequest,
    SelectEnrollment, Settings, User, codes,
};
use ferrocore_proto::{
    CertListQuery, DeviceListQuery, GrantListQuery, Page, PageQuery, SweepResult,
};
use ferrocore_proto::{EnrollmentGrant, EstTokenCreated, EstTokenRequest};
use std::sync::atomic::Ordering;

pub fn routes(state: SharedState) -> Router<SharedState> {
    Router::new()
        .route("/api/v1/admin/settings", get(settings))
        .route(
            "/api/v1/admin/settings/mutual-auth/enable",
            post(enable_mutual_auth),
        )
        .route(
            "/api/v1/admin/settings/mutual-auth/disable",
            post(disable_mutual_auth),
        )
        .route("/api/v1/admin/settings/ports", put(set_ports))
        .route("/api/v1/admin/users", get(list_users).post(add_user))
        .route(
            "/api/v1/admin/users/{username}",
            axum::routing::delete(remove_user),
        )
        .route("/api/v1/admin/devices", get(list_devices))
        .route("/api/v1/admin/devices/{id}", get(show_device))
        .route("/api/v1/admin/devices/{id}/retire", post(retire_device))
        .route("/api/v1/admin/devices/{id}/policy", put(assign_policy))
        .route(
            "/api/v1/admin/reports/renewal-at-risk",
            get(renewal_at_risk),
        )
        .route("/api/v1/admin/maintenance/sweep", post(sweep))
        .route("/api/v1/admin/store", get(store_status))
        .route("/api/v1/admin/policies", get(list_policies))
        .route(
            "/api/v1/admin/policies/{name}",
            get(show_policy)
                .post(create_policy)
                .patch(change_policy)
                .delete(delete_policy),
        )
        .route(
            "/api/v1/admin/settings/mutual-auth/enrollment",
            put(select_enrollment),
        )
        .route(
            "/api/v1/admin/enrollment-configs",
            get(list_enrollment_configs),
        )
        .route(
            "/api/v1/admin/enrollment-configs/{name}",
            post(add_enrollment_config),
        )
        .route("/api/v1/admin/est-tokens", post(create_est_token))
        .route("/api/v1/admin/grants", get(list_grants))
        .route("/api/v1/admin/grants/{id}", get(show_grant))
        .route("/api/v1/admin/grants/{id}/revoke", post(revoke_grant))
        .route("/api/v1/admin/certificates", get(list_certificates))
        .route(
            "/api/v1/admin/certificates/{serial}/revoke",
            post(revoke_certificate),
        )
        .merge(super::portal::admin_routes())
        .merge(super::storefront::admin_routes())
        .merge(super::scep::admin_routes())
        .merge(super::directory::admin_routes())
        .route_layer(middleware::from_fn_with_state(state, require_token))
}

/// Bearer-token check, constant time. Missing or wrong token: 401.
async fn require_token(State(state): State<SharedState>, req: Request, next: Next) -> Response {
    let auth = match super::auth::Authorization::of(req.headers()) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let given = auth.as_ref().and_then(|a| a.bearer()).unwrap_or("");
    let ok = aws_lc_rs::constant_time::verify_slices_are_equal(
        given.as_bytes(),
        state.admin_token.as_bytes(),
    )
    .is_ok();
    if !ok {
        return super::error::error_response(
            StatusCode::UNAUTHORIZED,
            codes::UNAUTHORIZED,
            "missing or wrong admin token (Authorization: Bearer <token>)".into(),
        );
    }
    next.run(req).await
}

async fn current_settings(state: &SharedState) -> Result<Settings, ApiError> {
    let ma = state.core.mutual_auth().await?;
    Ok(Settings {
        mutual_auth_enabled: ma.enabled_at.is_some(),
        mutual_auth_enabled_at: ma.enabled_at,
        mutual_auth_enrollment_config: ma.enrollment_config,
        sync_tls_enabled: state.core.sync_tls_enabled().await?,
        sync_tls_port: state.ports.sync_tls,
        device_port: state.ports.device,
        storefront_auth: state.storefront.auth_setting().await?,
    })
}

#[utoipa::path(
    get, path = "/api/v1/admin/settings", tag = "admin",
    responses((status = 200, description = "OK", body = Settings))
)]
async fn settings(State(state): State<SharedState>) -> Result<Json<Settings>, ApiError> {
    Ok(Json(current_settings(&state).await?))
}

#[utoipa::path(
    post, path = "/api/v1/admin/settings/mutual-auth/enable", tag = "admin",
    responses((status = 200, description = "OK", body = Settings))
)]
async fn enable_mutual_auth(State(state): State<SharedState>) -> Result<Json<Settings>, ApiError> {
    state.core.enable_mutual_auth().await?;
    Ok(Json(current_settings(&state).await?))
}

#[utoipa::path(
    post, path = "/api/v1/admin/settings/mutual-auth/disable", tag = "admin",
    responses((status = 200, description = "OK", body = Settings))
)]
async fn disable_mutual_auth(State(state): State<SharedState>) -> Result<Json<Settings>, ApiError> {
    state.core.disable_mutual_auth().await?;
    Ok(Json(current_settings(&state).await?))
}

#[utoipa::path(
    put, path = "/api/v1/admin/settings/ports", tag = "admin",
    request_body = PortSettingsRequest,
    responses((status = 200, description = "OK", body = Settings))
)]
async fn set_ports(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<PortSettingsRequest>,
) -> Result<Json<Settings>, ApiError> {
    state
        .core
        .set_sync_tls_enabled(req.sync_tls_enabled, req.force)
        .await?;
    state
        .sync_tls_enabled
        .store(req.sync_tls_enabled, Ordering::SeqCst);
    Ok(Json(current_settings(&state).await?))
}

fn user_out(u: UserRecord) -> User {
    User {
        username: u.username,
        email: u.email,
        created_at: u.created_at,
    }
}

#[utoipa::path(
    get, path = "/api/v1/admin/users", tag = "admin",
    responses((status = 200, description = "OK", body = Vec<User>))
)]
async fn list_users(State(state): State<SharedState>) -> Result<Json<Vec<User>>, ApiError> {
    Ok(Json(
        state
            .core
            .users()
            .await?
            .into_iter()
            .map(user_out)
            .collect(),
    ))
}

#[utoipa::path(
    post, path = "/api/v1/admin/users", tag = "admin",
    request_body = NewUser,
    responses((status = 201, description = "Created", body = User))
)]
async fn add_user(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<NewUser>,
) -> Result<impl IntoResponse, ApiError> {
    let u = state
        .core
        .add_user(&req.username, &req.password, req.email)
        .await?;
    Ok((StatusCode::CREATED, Json(user_out(u))))
}

#[utoipa::path(
    delete, path = "/api/v1/admin/users/{username}", tag = "admin",
    params(("username" = String, Path, description = "The user name")),
    responses((status = 204, description = "Removed"))
)]
async fn remove_user(
    State(state): State<SharedState>,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.core.remove_user(&username).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn device_out(d: DeviceRecord) -> Device {
    Device {
        device_id: d.id,
        device_uuid: d.device_uuid,
        username: d.username,
        platform: d.platform,
        client_kind: d.client_kind,
        client_version: d.client_version,
        mode: d.mode,
        listener: d.listener,
        status: d.status,
        registered_with_mutual_auth_enabled: d.registered_with_ma,
        registered_at: d.registered_at,
        last_checkin_at: d.last_checkin_at,
        retired_at: d.retired_at,
        current_cert_serial: d.current_cert_serial,
        cert_not_after: d.cert_not_after,
        policy: d.policy,
        migration_status: d.migration_status,
        renewal_count: d.renewal_count,
        enrollment_config: d.enrollment_config,
        reregister_required: d.reregister_required,
    }
}

fn cert_out(c: CertRecord) -> Certificate {
    Certificate {
        serial: c.serial,
        device_id: c.device_id,
        subject: c.subject,
        not_before: c.not_before,
        not_after: c.not_after,
        status: c.status,
        revoked_at: c.revoked_at,
        revocation_reason: c.revocation_reason,
        issued_at: c.issued_at,
        issue_reason: c.issue_reason,
        replaces_serial: c.replaces_serial,
        enrollment_config: c.enrollment_config,
    }
}

fn checkin_out(c: CheckinRecord) -> Checkin {
    Checkin {
        at: c.at,
        listener: c.listener,
        mode: c.mode,
    }
}

fn parse_opt<T: std::str::FromStr<Err = String>>(v: Option<String>) -> Result<Option<T>, ApiError> {
    v.filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<T>()
                .map_err(|e| ApiError::from(CoreError::BadRequest(e)))
        })
        .transpose()
}

fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit.unwrap_or(100) {
        0 => Err(CoreError::BadRequest("limit must be 1 to 1000".into()).into()),
        n if n > 1000 => Err(CoreError::BadRequest("limit must be 1 to 1000".into()).into()),
        n => Ok(n),
    }
}

#[utoipa::path(
    get, path = "/api/v1/admin/devices", tag = "admin",
    params(DeviceListQuery),
    responses((status = 200, description = "OK", body = Page<Device>))
)]
async fn list_devices(
    State(state): State<SharedState>,
    q: Result<Query<DeviceListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Page<Device>>, ApiError> {
    let Query(q) = q.map_err(|e| CoreError::BadRequest(super::json::query_message(&e)))?;
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some("active") => Some(DeviceStatus::Active),
        Some("retired") => Some(DeviceStatus::Retired),
        Some(other) => {
            return Err(CoreError::BadRequest(format!("unknown status {other:?}")).into());
        }
    };
    let query = DeviceQuery {
        username: q.username.filter(|s| !s.is_empty()),
        platform: parse_opt::<Platform>(q.platform)?,
        client_kind: parse_opt::<ClientKind>(q.client_kind)?,
        client_version: q.client_version.filter(|s| !s.is_empty()),
        mode: parse_opt::<AuthMode>(q.mode)?,
        migration_status: parse_opt::<MigrationStatus>(q.migration_status)?,
        status,
        cert_expires_after: q.cert_expires_after,
        cert_expires_before: q.cert_expires_before,
        in_renewal_window_at: q
            .in_renewal_window
            .filter(|b| *b)
            .map(|_| state.core.clock().now().unix_timestamp()),
        last_checkin_after: q.last_checkin_after,
        last_checkin_before: q.last_checkin_before,
        limit: page_limit(q.limit)?,
        offset: q.offset.unwrap_or(0),
    };
    let page = state.core.devices(&query).await?;
    Ok(Json(Page {
        items: page.items.into_iter().map(device_out).collect(),
        total: page.total,
    }))
}

#[utoipa::path(
    get, path = "/api/v1/admin/devices/{id}", tag = "admin",
    params(("id" = String, Path, description = "The device id")),
    responses((status = 200, description = "OK", body = DeviceDetail))
)]
async fn show_device(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Json<DeviceDetail>, ApiError> {
    let d = state.core.device(&id).await?;
    let certs = state.core.certificates(Some(&id), 1000, 0).await?;
    let checkins = state.core.device_checkins(&id, 20).await?;
    Ok(Json(DeviceDetail {
        device: device_out(d),
        certificates: certs.items.into_iter().map(cert_out).collect(),
        recent_checkins: checkins.into_iter().map(checkin_out).collect(),
        appconnect: state
            .storefront
            .appconnect_checkins(&id)
            .await?
            .into_iter()
            .map(super::storefront::appconnect_out)
            .collect(),
    }))
}

#[utoipa::path(
    post, path = "/api/v1/admin/devices/{id}/retire", tag = "admin",
    params(("id" = String, Path, description = "The device id")),
    responses((status = 200, description = "OK", body = Device))
)]
async fn retire_device(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Json<Device>, ApiError> {
    Ok(Json(device_out(state.core.retire_device(&id).await?)))
}

#[utoipa::path(
    get, path = "/api/v1/admin/certificates", tag = "admin",
    params(CertListQuery),
    responses((status = 200, description = "OK", body = Page<Certificate>))
)]
async fn list_certificates(
    State(state): State<SharedState>,
    q: Result<Query<CertListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Page<Certificate>>, ApiError> {
    let Query(q) = q.map_err(|e| CoreError::BadRequest(super::json::query_message(&e)))?;
    let page = state
        .core
        .certificates(
            q.device_id.as_deref().filter(|s| !s.is_empty()),
            page_limit(q.limit)?,
            q.offset.unwrap_or(0),
        )
        .await?;
    Ok(Json(Page {
        items: page.items.into_iter().map(cert_out).collect(),
        total: page.total,
    }))
}

#[utoipa::path(
    post, path = "/api/v1/admin/certificates/{serial}/revoke", tag = "admin",
    params(("serial" = String, Path, description = "The serial number, hex")),
    request_body(content = Option<RevokeRequest>, description = "Optional: the reason"),
    responses((status = 200, description = "OK", body = Certificate))
)]
async fn revoke_certificate(
    State(state): State<SharedState>,
    Path(serial): Path<String>,
    OptionalJson(req): OptionalJson<RevokeRequest>,
) -> Result<Json<Certificate>, ApiError> {
    let c = state
        .core
        .revoke_certificate(&serial, req.reason.as_deref())
        .await?;
    debug_assert_eq!(c.status, CertStatus::Revoked);
    Ok(Json(cert_out(c)))
}

fn policy_out(p: ferrocore_core::store::PolicyRecord) -> Policy {
    Policy {
        effective_renewal_window_days: ferrocore_core::service::renewal_window_days(&p),
        name: p.name,
        checkin_interval_secs: p.checkin_interval_secs,
        cert_lifetime_days: p.cert_lifetime_days,
        renewal_window_days: p.renewal_window_days,
        migrate_client: p.migrate_client,
    }
}

#[utoipa::path(
    get, path = "/api/v1/admin/policies", tag = "admin",
    responses((status = 200, description = "OK", body = Vec<Policy>))
)]
async fn list_policies(State(state): State<SharedState>) -> Result<Json<Vec<Policy>>, ApiError> {
    Ok(Json(
        state
            .core
            .policies()
            .await?
            .into_iter()
            .map(policy_out)
            .collect(),
    ))
}

#[utoipa::path(
    get, path = "/api/v1/admin/policies/{name}", tag = "admin",
    params(("name" = String, Path, description = "The policy name")),
    responses((status = 200, description = "OK", body = Policy))
)]
async fn show_policy(
    State(state): State<SharedState>,
    Path(name): Path<String>,
) -> Result<Json<Policy>, ApiError> {
    Ok(Json(policy_out(state.core.policy(&name).await?)))
}

#[utoipa::path(
    post, path = "/api/v1/admin/policies/{name}", tag = "admin",
    params(("name" = String, Path, description = "The policy name")),
    request_body(content = Option<PolicyChange>, description = "Optional: values other than the defaults"),
    responses((status = 201, description = "Created", body = Policy))
)]
async fn create_policy(
    State(state): State<SharedState>,
    Path(name): Path<String>,
    OptionalJson(change): OptionalJson<PolicyChange>,
) -> Result<impl IntoResponse, ApiError> {
    let p = state.core.create_policy(&name, &change).await?;
    Ok((StatusCode::CREATED, Json(policy_out(p))))
}

#[utoipa::path(
    patch, path = "/api/v1/admin/policies/{name}", tag = "admin",
    params(("name" = String, Path, description = "The policy name")),
    request_body = PolicyChange,
    responses((status = 200, description = "OK", body = Policy))
)]
async fn change_policy(
    State(state): State<SharedState>,
    Path(name): Path<String>,
    ApiJson(change): ApiJson<PolicyChange>,
) -> Result<Json<Policy>, ApiError> {
    Ok(Json(policy_out(
        state.core.change_policy(&name, &change).await?,
    )))
}

#[utoipa::path(
    delete, path = "/api/v1/admin/policies/{name}", tag = "admin",
    params(("name" = String, Path, description = "The policy name")),
    responses((status = 204, description = "Removed"))
)]
async fn delete_policy(
    State(state): State<SharedState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.core.delete_policy(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    put, path = "/api/v1/admin/devices/{id}/policy", tag = "admin",
    params(("id" = String, Path, description = "The device id")),
    request_body = AssignPolicy,
    responses((status = 200, description = "OK", body = Device))
)]
async fn assign_policy(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AssignPolicy>,
) -> Result<Json<Device>, ApiError> {
    Ok(Json(device_out(
        state.core.assign_policy(&id, &req.policy).await?,
    )))
}

#[utoipa::path(
    get, path = "/api/v1/admin/reports/renewal-at-risk", tag = "admin",
    params(PageQuery),
    responses((status = 200, description = "OK", body = Page<RenewalRisk>))
)]
async fn renewal_at_risk(
    State(state): State<SharedState>,
    q: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Page<RenewalRisk>>, ApiError> {
    let Query(q) = q.map_err(|e| CoreError::BadRequest(super::json::query_message(&e)))?;
    let now = state.core.clock().now().unix_timestamp();
    let page = state
        .core
        .renewal_at_risk(page_limit(q.limit)?, q.offset.unwrap_or(0))
        .await?;
    let grace = ferrocore_core::service::GRACE.whole_seconds();
    Ok(Json(Page {
        total: page.total,
        items: page
            .items
            .into_iter()
            .map(|r| {
                let not_after = r.device.cert_not_after.unwrap_or(0);
                let supports = ferrocore_core::service::supports_renewal(&r.device);
                let phase = risk_phase(now, not_after, grace, supports);
                RenewalRisk {
                    phase: phase.to_owned(),
                    refused_from: if supports {
                        not_after + grace
                    } else {
                        not_after
                    },
                    retire_at: not_after + grace,
                    supports_renewal: supports,
                    must_register_again: matches!(phase, "refused" | "awaiting_retirement"),
                    device: device_out(r.device),
                }
            })
            .collect(),
    }))
}

/// Where a listed device stands (see `RenewalRisk::phase`).
fn risk_phase(now: i64, not_after: i64, grace: i64, supports_renewal: bool) -> &'static str {
    if now <= not_after {
        "in_window"
    } else if now > not_after + grace {
        "awaiting_retirement"
    } else if supports_renewal {
        "in_grace"
    } else {
        "refused"
    }
}

#[utoipa::path(
    post, path = "/api/v1/admin/maintenance/sweep", tag = "admin",
    responses((status = 200, description = "OK", body = SweepResult))
)]
async fn sweep(State(state): State<SharedState>) -> Result<Json<SweepResult>, ApiError> {
    Ok(Json(SweepResult {
        retired: state.core.sweep_expired().await?,
    }))
}

#[utoipa::path(
    get, path = "/api/v1/admin/store", tag = "admin",
    responses((status = 200, description = "Database and write-ahead-log sizes, the WAL limit, truncations", body = ferrocore_proto::StoreStatus))
)]
async fn store_status(
    State(state): State<SharedState>,
) -> Result<Json<ferrocore_proto::StoreStatus>, ApiError> {
    let s = state.core.store().storage_status().await?;
    Ok(Json(ferrocore_proto::StoreStatus {
        database_bytes: s.database_bytes,
        wal_bytes: s.wal_bytes,
        wal_limit_bytes: s.wal_limit_bytes,
        max_wal_bytes: s.max_wal_bytes,
        wal_truncations: s.wal_truncations,
        wal_truncations_busy: s.wal_truncations_busy,
    }))
}

async fn enrollment_configs_out(state: &SharedState) -> Result<Vec<EnrollmentConfig>, ApiError> {
    let selected = state.core.mutual_auth().await?.enrollment_config;
    Ok(state
        .core
        .enrollment_configs()
        .await?
        .into_iter()
        .map(|c| EnrollmentConfig {
            selected: c.name == selected,
            name: c.name,
            kind: c.kind,
            ca_key_algorithm: ferrocore_pki::pem_to_der_certs(&c.ca_cert_pem)
                .ok()
                .and_then(|d| d.into_iter().next())
                .and_then(|d| ferrocore_pki::cert_key_algorithm(&d).ok())
                .unwrap_or_else(|| "unknown".into()),
            ca_pem: c.ca_cert_pem,
            created_at: c.created_at,
            url: c.scep.as_ref().map(|p| p.url.clone()),
            ca_sha256: c.scep.as_ref().map(|p| p.ca_sha256.clone()),
            caps: c
                .scep
                .as_ref()
                .map(|p| p.caps.lines().map(str::to_owned).collect()),
        })
        .collect())
}

#[utoipa::path(
    get, path = "/api/v1/admin/enrollment-configs", tag = "admin",
    responses((status = 200, description = "OK", body = Vec<EnrollmentConfig>))
)]
async fn list_enrollment_configs(
    State(state): State<SharedState>,
) -> Result<Json<Vec<EnrollmentConfig>>, ApiError> {
    Ok(Json(enrollment_configs_out(&state).await?))
}

/// Creates an enrollment configuration, trusted for mutual TLS at once (the device
/// listener's TLS configuration is swapped): `local_ca` makes a new CA in `DIR/ca/NAME/`;
/// `scep` checks the external CA (GetCACaps, GetCACert, the CA certificate's fingerprint)
/// before anything is written, then stores Ferrocore's RA key and the challenge (0600).
#[utoipa::path(
    post, path = "/api/v1/admin/enrollment-configs/{name}", tag = "admin",
    params(("name" = String, Path, description = "The configuration name")),
    request_body = NewEnrollmentConfig,
    responses((status = 201, description = "Created", body = EnrollmentConfig))
)]
async fn add_enrollment_config(
    State(state): State<SharedState>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<NewEnrollmentConfig>,
) -> Result<impl IntoResponse, ApiError> {
    if req.kind != KIND_LOCAL_CA && req.kind != KIND_SCEP {
        return Err(CoreError::BadRequest(format!(
            "unknown enrollment configuration kind {:?} (supported: local_ca, scep)",
            req.kind
        ))
        .into());
    }
    if state.core.issuer(&name).is_ok() {
        return Err(CoreError::Conflict(format!(
            "enrollment configuration {name:?} already exists"
        ))
        .into());
    }
    // Validate the name before touching the disk.
    validate_config_name(&name)?;
    let now = state.core.clock().now();
    if req.kind == KIND_SCEP {
        let field = |v: &Option<String>, key: &str| {
            v.clone()
                .ok_or_else(|| CoreError::BadRequest(format!("a scep configuration needs {key:?}")))
        };
        let url = field(&req.url, "url")?;
        let challenge = field(&req.challenge, "challenge")?;
        let fingerprint = field(&req.ca_fingerprint, "ca_fingerprint")?;
        let options =
            crate::scep_ca::ScepOptions::new(req.poll_interval_secs, req.poll_max_wait_secs)?;
        let root = state.data_dir.root().to_path_buf();
        let ca = crate::scep_ca::ScepCa::create(
            &root,
            &name,
            &url,
            &challenge,
            &fingerprint,
            req.tls_ca_pem.as_deref(),
            options,
            now,
        )
        .await?;
        let ca_pem = ferrocore_core::issuance::Issuer::ca_pem(&ca);
        let params = ca.params();
        if let Err(e) = state
            .core
            .add_config(
                &name,
                KIND_SCEP,
                ca_pem,
                Some(params),
                std::sync::Arc::new(ca),
            )
            .await
        {
            crate::scep_ca::ScepCa::remove_files(&root, &name);
            return Err(e.into());
        }
        tracing::info!(config = %name, url = %url, "external SCEP CA configuration created");
    } else {
        if req.url.is_some()
            || req.challenge.is_some()
            || req.ca_fingerprint.is_some()
            || req.tls_ca_pem.is_some()
            || req.poll_interval_secs.is_some()
            || req.poll_max_wait_secs.is_some()
        {
            return Err(CoreError::BadRequest(
                "url, challenge, ca_fingerprint, tls_ca_pem and poll_* belong to scep configurations"
                    .into(),
            )
            .into());
        }
        let ca = state
            .data_dir
            .create_config_ca(&name, state.ca_key_algorithm, now)
            .map_err(|e| CoreError::internal(format!("{e:#}")))?;
        let issuer = std::sync::Arc::new(ferrocore_core::issuance::LocalIssuer::new(ca));
        state.core.add_local_ca_config(&name, issuer).await?;
    }
    // Local configurations get their delegated OCSP signer (external CAs answer for themselves).
    crate::refresh_ocsp_responders(&state.core, &state.data_dir)
        .map_err(|e| CoreError::internal(format!("{e:#}")))?;
    state
        .trust
        .set(&state.core.trusted_ca_ders())
        .and_then(|()| state.tls.rebuild(&state.trust))
        .map_err(|e| CoreError::internal(format!("{e:#}")))?;
    let out = enrollment_configs_out(&state)
        .await?
        .into_iter()
        .find(|c| c.name == name);
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(
    post, path = "/api/v1/admin/est-tokens", tag = "admin",
    request_body = EstTokenRequest,
    responses((status = 201, description = "Created", body = EstTokenCreated))
)]
async fn create_est_token(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<ferrocore_proto::EstTokenRequest>,
) -> Result<(StatusCode, Json<ferrocore_proto::EstTokenCreated>), ApiError> {
    let t = state
        .core
        .create_est_token(
            &req.username,
            req.platform,
            req.device_uuid.as_deref(),
            req.ttl_secs,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(ferrocore_proto::EstTokenCreated {
            id: t.record.id,
            token: t.secret,
            username: t.record.username,
            platform: t.record.platform,
            device_uuid: t.record.device_uuid,
            created_at: t.record.created_at,
            expires_at: t.record.expires_at,
        }),
    ))
}

/// Parses an optional filter value; empty means no filter.
fn filter_of<T: std::str::FromStr<Err = String>>(
    name: &str,
    v: Option<&str>,
) -> Result<Option<T>, ApiError> {
    match v.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|e: String| CoreError::BadRequest(format!("{name}: {e}")).into()),
    }
}

/// `GET /api/v1/admin/grants`: one-time enrollment grants (SCEP challenges, EST tokens),
/// newest first; filters `state`, `username`, `protocol`; paged by `limit` / `offset`.
#[utoipa::path(
    get, path = "/api/v1/admin/grants", tag = "admin",
    params(GrantListQuery),
    responses((status = 200, description = "OK", body = Page<EnrollmentGrant>))
)]
async fn list_grants(
    State(state): State<SharedState>,
    q: Result<Query<GrantListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Page<ferrocore_proto::EnrollmentGrant>>, ApiError> {
    let Query(q) = q.map_err(|e| CoreError::BadRequest(super::json::query_message(&e)))?;
    let page = state
        .core
        .grants(ferrocore_core::store::GrantQuery {
            state: filter_of("state", q.state.as_deref())?,
            protocol: filter_of("protocol", q.protocol.as_deref())?,
            username: q.username.filter(|u| !u.is_empty()),
            // Set by `Core::grants` from its clock.
            now: 0,
            limit: page_limit(q.limit)?,
            offset: q.offset.unwrap_or(0),
        })
        .await?;
    Ok(Json(Page {
        items: page.items,
        total: page.total,
    }))
}

#[utoipa::path(
    get, path = "/api/v1/admin/grants/{id}", tag = "admin",
    params(("id" = String, Path, description = "The grant id")),
    responses((status = 200, description = "OK", body = EnrollmentGrant))
)]
async fn show_grant(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Json<ferrocore_proto::EnrollmentGrant>, ApiError> {
    Ok(Json(state.core.grant(&id).await?))
}

/// Revokes an unused grant (`grant_consumed`, 409, once it paid for a certificate).
#[utoipa::path(
    post, path = "/api/v1/admin/grants/{id}/revoke", tag = "admin",
    params(("id" = String, Path, description = "The grant id")),
    responses((status = 200, description = "OK", body = EnrollmentGrant))
)]
async fn revoke_grant(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Json<ferrocore_proto::EnrollmentGrant>, ApiError> {
    Ok(Json(state.core.revoke_grant(&id).await?))
}

#[utoipa::path(
    put, path = "/api/v1/admin/settings/mutual-auth/enrollment", tag = "admin",
    request_body = SelectEnrollment,
    responses((status = 200, description = "OK", body = EnrollmentChange))
)]
async fn select_enrollment(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<SelectEnrollment>,
) -> Result<Json<EnrollmentChange>, ApiError> {
    let c = state
        .core
        .select_enrollment_config(
            &req.config,
            if req.confirm {
                ferrocore_core::service::SelectionMode::Apply
            } else {
                ferrocore_core::service::SelectionMode::DryRun
            },
        )
        .await?;
    Ok(Json(EnrollmentChange {
        applied: c.applied,
        current: c.current,
        proposed: c.proposed,
        devices_to_reregister: c.affected.into_iter().map(device_out).collect(),
        devices_to_reregister_total: c.affected_total,
    }))
}

/// The OpenAPI description of this module's routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    settings,
    enable_mutual_auth,
    disable_mutual_auth,
    set_ports,
    list_users,
    add_user,
    remove_user,
    list_devices,
    show_device,
    retire_device,
    list_certificates,
    revoke_certificate,
    list_policies,
    show_policy,
    create_policy,
    change_policy,
    delete_policy,
    assign_policy,
    renewal_at_risk,
    sweep,
    list_enrollment_configs,
    add_enrollment_config,
    create_est_token,
    list_grants,
    show_grant,
    revoke_grant,
    select_enrollment,
    store_status
))]
pub struct Api;
