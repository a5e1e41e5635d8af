//! Admin routes of the directory sources: test a source (service bind, lockout policy, a
//! user's entry and groups, timings), list users with their source and state, the group
//! mappings, and the in-memory failed-attempt state of a user (show, clear).

use super::SharedState;
use super::error::ApiError;
use axum::extract::{Path, Query, State};
use axum::routing::{delete, get};
use axum::{Json, Router};
use ferrocore_core::CoreError;
use ferrocore_core::directory_sources::{AttemptState, ChainDirectory};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;

/// What the admin routes need: the chain and the network sources (for `test`).
pub struct DirectoryAdmin {
    pub chain: Arc<ChainDirectory>,
    pub sources: Vec<Arc<crate::directory_ldap::LdapSource>>,
}

pub fn admin_routes() -> Router<SharedState> {
    Router::new()
        .route("/api/v1/admin/directory/test", get(test))
        .route("/api/v1/admin/directory/users", get(users))
        .route("/api/v1/admin/directory/groups", get(groups))
        .route("/api/v1/admin/directory/attempts", get(attempts))
        .route(
            "/api/v1/admin/directory/attempts/{user}",
            delete(clear_attempts),
        )
}

fn configured(state: &SharedState) -> Result<&DirectoryAdmin, ApiError> {
    state.directory.as_ref().ok_or_else(|| {
        ApiError::from(CoreError::NotFound(
            "directory sources (none configured in [directory])".into(),
        ))
    })
}

#[derive(Debug, Deserialize)]
struct TestQuery {
    source: Option<String>,
    user: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/admin/directory/test", tag = "admin",
    params(
        ("source" = Option<String>, Query, description = "Only this directory source"),
        ("user" = Option<String>, Query, description = "Also look this user up (entry, groups)"),
    ),
    responses((status = 200, description = "Each source: service bind, lockout policy, the user's entry and groups, timings", body = Object))
)]
async fn test(
    State(state): State<SharedState>,
    Query(q): Query<TestQuery>,
) -> Result<Json<Value>, ApiError> {
    let d = configured(&state)?;
    let mut reports = Vec::new();
    for s in &d.sources {
        use ferrocore_core::directory_sources::DirectorySource;
        if q.source.as_deref().is_some_and(|n| n != s.name()) {
            continue;
        }
        reports.push(s.test(q.user.as_deref()).await);
    }
    if reports.is_empty() {
        return Err(CoreError::NotFound(format!("directory source {:?}", q.source)).into());
    }
    Ok(Json(json!({ "sources": reports })))
}

#[utoipa::path(
    get, path = "/api/v1/admin/directory/users", tag = "admin",
    responses((status = 200, description = "Local and directory users with their source and state", body = Object))
)]
async fn users(State(state): State<SharedState>) -> Result<Json<Value>, ApiError> {
    let mut items: Vec<Value> = state
        .core
        .users()
        .await?
        .into_iter()
        .map(|u| {
            json!({"username": u.username, "source": "local", "state": "active",
                   "mail": u.email, "first_seen_at": u.created_at})
        })
        .collect();
    if let Some(d) = &state.directory {
        for r in d.chain.users().directory_users().await? {
            items.push(json!({
                "username": r.username, "source": r.source, "state": r.state,
                "external_id": r.external_id, "login": r.login, "dn": r.dn, "upn": r.upn,
                "mail": r.mail, "display_name": r.display_name, "sid": r.sid,
                "groups": r.groups, "policy": r.policy, "first_seen_at": r.first_seen_at,
                "last_seen_at": r.last_seen_at, "checked_at": r.checked_at,
            }));
        }
    }
    Ok(Json(json!({ "items": items })))
}

#[utoipa::path(
    get, path = "/api/v1/admin/directory/groups", tag = "admin",
    responses((status = 200, description = "Each source's enrolling groups, group policies and lockout policy", body = Object))
)]
async fn groups(State(state): State<SharedState>) -> Result<Json<Value>, ApiError> {
    let d = configured(&state)?;
    let sources: Vec<Value> = d
        .chain
        .sources()
        .map(|(s, settings)| {
            let policy = d.chain.lockout_policy_of(s.name(), settings);
            json!({
                "source": s.name(),
                "enroll_groups": settings.enroll_groups,
                "group_policies": settings.group_policies.iter()
                    .map(|(g, p)| json!({"group": g, "policy": p})).collect::<Vec<_>>(),
                "lockout_threshold": policy.threshold,
                "lockout_window_secs": policy.window_secs,
                "lockout_margin": settings.margin,
            })
        })
        .collect();
    Ok(Json(json!({ "sources": sources })))
}

#[derive(Debug, Deserialize)]
struct AttemptsQuery {
    user: Option<String>,
}

#[derive(Serialize)]
struct Attempts {
    items: Vec<AttemptState>,
}

#[utoipa::path(
    get, path = "/api/v1/admin/directory/attempts", tag = "admin",
    params(("user" = Option<String>, Query, description = "Only this user")),
    responses((status = 200, description = "Failed password attempts per account (in memory)", body = Object))
)]
async fn attempts(
    State(state): State<SharedState>,
    Query(q): Query<AttemptsQuery>,
) -> Result<Json<Attempts>, ApiError> {
    let d = configured(&state)?;
    Ok(Json(Attempts {
        items: d.chain.guard().states(q.user.as_deref())?,
    }))
}

#[utoipa::path(
    delete, path = "/api/v1/admin/directory/attempts/{user}", tag = "admin",
    params(("user" = String, Path, description = "The user")),
    responses((status = 200, description = "How many entries were cleared", body = Object))
)]
async fn clear_attempts(
    State(state): State<SharedState>,
    Path(user): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let d = configured(&state)?;
    let cleared = d.chain.guard().clear(&user)?;
    tracing::warn!(user = %user, cleared, "failed password attempts cleared by the admin");
    Ok(Json(json!({ "user": user, "cleared": cleared })))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(test, users, groups, attempts, clear_attempts))]
pub struct Api;
