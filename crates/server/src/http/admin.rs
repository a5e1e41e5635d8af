//! The admin API (`/api/v1/admin/...`, bearer token), served on the admin listener only.
//! The `ferrocore admin` CLI is a client of exactly these routes; `openapi.json` describes them.

use super::SharedState;
use super::error::ApiError;
use super::json::{ApiJson, OptionalJson};
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
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
use serde::{Deserialize, Serialize};
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
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
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

#[derive(Serialize, Deserialize)]
pub struct PageOf<T> {
    pub items: Vec<T>,
    pub total: u64,
}

async fn current_settings(state: &SharedState) -> Result<Settings, ApiError> {
    let ma = state.core.mutual_auth().await?;
    Ok(Settings {
        mutual_auth_enabled: ma.enabled_at.is_some(),
        mutual_auth_enabled_at: ma.enabled_at,
        mutual_auth_carried_over: ma.carried_over,
        mutual_auth_enrollment_config: ma.enrollment_config,
        sync_tls_enabled: state.core.sync_tls_enabled().await?,
        sync_tls_port: state.ports.sync_tls,
        device_port: state.ports.device,
        storefront_auth: state.storefront.auth_setting().await?,
    })
}

async fn settings(State(state): State<SharedState>) -> Result<Json<Settings>, ApiError> {
    Ok(Json(current_settings(&state).await?))
}

async fn enable_mutual_auth(State(state): State<SharedState>) -> Result<Json<Settings>, ApiError> {
    state.core.enable_mutual_auth().await?;
    Ok(Json(current_settings(&state).await?))
}

async fn disable_mutual_auth(State(state): State<SharedState>) -> Result<Json<Settings>, ApiError> {
    state.core.disable_mutual_auth().await?;
    Ok(Json(current_settings(&state).await?))
}

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceListQuery {
    username: Option<String>,
    platform: Option<String>,
    client_kind: Option<String>,
    client_version: Option<String>,
    mode: Option<String>,
    migration_status: Option<String>,
    status: Option<String>,
    cert_expires_after: Option<i64>,
    cert_expires_before: Option<i64>,
    /// `true`: only devices inside their renewal window now.
    in_renewal_window: Option<bool>,
    last_checkin_after: Option<i64>,
    last_checkin_before: Option<i64>,
    limit: Option<u32>,
    offset: Option<u64>,
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

async fn list_devices(
    State(state): State<SharedState>,
    q: Result<Query<DeviceListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<PageOf<Device>>, ApiError> {
    let Query(q) = q.map_err(|e| CoreError::BadRequest(e.body_text()))?;
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
    Ok(Json(PageOf {
        items: page.items.into_iter().map(device_out).collect(),
        total: page.total,
    }))
}

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

async fn retire_device(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Json<Device>, ApiError> {
    Ok(Json(device_out(state.core.retire_device(&id).await?)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CertListQuery {
    device_id: Option<String>,
    limit: Option<u32>,
    offset: Option<u64>,
}

async fn list_certificates(
    State(state): State<SharedState>,
    q: Result<Query<CertListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<PageOf<Certificate>>, ApiError> {
    let Query(q) = q.map_err(|e| CoreError::BadRequest(e.body_text()))?;
    let page = state
        .core
        .certificates(
            q.device_id.as_deref().filter(|s| !s.is_empty()),
            page_limit(q.limit)?,
            q.offset.unwrap_or(0),
        )
        .await?;
    Ok(Json(PageOf {
        items: page.items.into_iter().map(cert_out).collect(),
        total: page.total,
    }))
}

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

async fn show_policy(
    State(state): State<SharedState>,
    Path(name): Path<String>,
) -> Result<Json<Policy>, ApiError> {
    Ok(Json(policy_out(state.core.policy(&name).await?)))
}

async fn create_policy(
    State(state): State<SharedState>,
    Path(name): Path<String>,
    OptionalJson(change): OptionalJson<PolicyChange>,
) -> Result<impl IntoResponse, ApiError> {
    let p = state.core.put_policy(&name, &change, true).await?;
    Ok((StatusCode::CREATED, Json(policy_out(p))))
}

async fn change_policy(
    State(state): State<SharedState>,
    Path(name): Path<String>,
    ApiJson(change): ApiJson<PolicyChange>,
) -> Result<Json<Policy>, ApiError> {
    Ok(Json(policy_out(
        state.core.put_policy(&name, &change, false).await?,
    )))
}

async fn delete_policy(
    State(state): State<SharedState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.core.delete_policy(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn assign_policy(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AssignPolicy>,
) -> Result<Json<Device>, ApiError> {
    Ok(Json(device_out(
        state.core.assign_policy(&id, &req.policy).await?,
    )))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    limit: Option<u32>,
    offset: Option<u64>,
}

async fn renewal_at_risk(
    State(state): State<SharedState>,
    q: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<PageOf<RenewalRisk>>, ApiError> {
    let Query(q) = q.map_err(|e| CoreError::BadRequest(e.body_text()))?;
    let now = state.core.clock().now().unix_timestamp();
    let page = state
        .core
        .renewal_at_risk(page_limit(q.limit)?, q.offset.unwrap_or(0))
        .await?;
    let grace = ferrocore_core::service::GRACE.whole_seconds();
    Ok(Json(PageOf {
        total: page.total,
        items: page
            .items
            .into_iter()
            .map(|r| {
                let not_after = r.device.cert_not_after.unwrap_or(0);
                let supports = ferrocore_core::service::supports_renewal(&r.device);
                RenewalRisk {
                    phase: if now <= not_after {
                        "in_window"
                    } else {
                        "in_grace"
                    }
                    .to_owned(),
                    retire_at: not_after + grace,
                    supports_renewal: supports,
                    device: device_out(r.device),
                }
            })
            .collect(),
    }))
}

#[derive(Serialize, Deserialize)]
pub struct SweepResult {
    pub retired: u64,
}

async fn sweep(State(state): State<SharedState>) -> Result<Json<SweepResult>, ApiError> {
    Ok(Json(SweepResult {
        retired: state.core.sweep_expired().await?,
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

async fn list_enrollment_configs(
    State(state): State<SharedState>,
) -> Result<Json<Vec<EnrollmentConfig>>, ApiError> {
    Ok(Json(enrollment_configs_out(&state).await?))
}

/// Creates an enrollment configuration, trusted for mutual TLS at once (the device
/// listener's TLS configuration is swapped): `local_ca` makes a new CA in `DIR/ca/NAME/`;
/// `scep` checks the external CA (GetCACaps, GetCACert, the CA certificate's fingerprint)
/// before anything is written, then stores Ferrocore's RA key and the challenge (0600).
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantListQuery {
    state: Option<String>,
    username: Option<String>,
    protocol: Option<String>,
    limit: Option<u32>,
    offset: Option<u64>,
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
async fn list_grants(
    State(state): State<SharedState>,
    q: Result<Query<GrantListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<PageOf<ferrocore_proto::EnrollmentGrant>>, ApiError> {
    let Query(q) = q.map_err(|e| CoreError::BadRequest(e.body_text()))?;
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
    Ok(Json(PageOf {
        items: page.items,
        total: page.total,
    }))
}

async fn show_grant(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Json<ferrocore_proto::EnrollmentGrant>, ApiError> {
    Ok(Json(state.core.grant(&id).await?))
}

/// Revokes an unused grant (`grant_consumed`, 409, once it paid for a certificate).
async fn revoke_grant(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Json<ferrocore_proto::EnrollmentGrant>, ApiError> {
    Ok(Json(state.core.revoke_grant(&id).await?))
}

async fn select_enrollment(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<SelectEnrollment>,
) -> Result<Json<EnrollmentChange>, ApiError> {
    let c = state
        .core
        .select_enrollment_config(&req.config, req.confirm)
        .await?;
    Ok(Json(EnrollmentChange {
        applied: c.applied,
        current: c.current,
        proposed: c.proposed,
        devices_to_reregister: c.affected.into_iter().map(device_out).collect(),
        devices_to_reregister_total: c.affected_total,
    }))
}
