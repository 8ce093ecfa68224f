//! The signed-in person: `/v1/users/me`, their sessions, and ending members' sessions.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use tessera_api as wire;
use tessera_core::claims::Identity;
use tessera_core::ids::{SessionId, UserId};
use tessera_core::policy::{Action, Resource, authorize};

use super::{caller_org, path_id, require};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::sessions;
use crate::state::AppState;

/// The user and session of a session token; API tokens are not people.
fn person(caller: &Caller) -> Result<(UserId, SessionId), ApiError> {
    match &caller.token.identity {
        Identity::Session {
            user_id,
            session_id,
            ..
        } => Ok((*user_id, *session_id)),
        Identity::ApiToken { .. } => Err(ApiError::Forbidden(
            "this endpoint is for signed-in people; an API token has no user or sessions".into(),
        )),
    }
}

/// The signed-in user, with their roles in the session's organization.
#[utoipa::path(get, path = "/v1/users/me", tag = "users",
    responses((status = 200, body = wire::User), (status = 403, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn me(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<wire::User>, ApiError> {
    let (user_id, _) = person(&caller)?;
    let user = state
        .store
        .user(user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let roles = state
        .store
        .roles(caller.organization_id(), *user_id.as_uuid())
        .await?;
    Ok(Json(super::users::user_wire(&user, &roles, None)))
}

/// The signed-in user's sessions that have not ended.
#[utoipa::path(get, path = "/v1/users/me/sessions", tag = "users",
    responses((status = 200, body = wire::ListOf<wire::SessionInfo>), (status = 403, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn my_sessions(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<wire::ListOf<wire::SessionInfo>>, ApiError> {
    let (user_id, current) = person(&caller)?;
    let now = state.clock.now();
    let items: Vec<_> = state
        .store
        .user_sessions(user_id)
        .await?
        .into_iter()
        .filter(|s| s.check(now).is_ok())
        .map(|s| wire::SessionInfo {
            id: s.id.to_string(),
            client_id: s.client_id.clone(),
            ip: s.ip.clone(),
            user_agent: s.user_agent.clone(),
            signed_in_at: s.signed_in_at,
            created_at: s.created_at,
            last_refreshed_at: s.last_refreshed_at,
            expires_at: s.absolute_expiry,
            current: s.id == current,
        })
        .collect();
    Ok(Json(wire::ListOf {
        total_count: items.len(),
        items,
    }))
}

/// End one of the signed-in user's sessions: its tokens stop working at once.
#[utoipa::path(delete, path = "/v1/users/me/sessions/{sessionId}", tag = "users",
    params(("sessionId" = String, Path)),
    responses((status = 204), (status = 404, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn end_my_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let (user_id, _) = person(&caller)?;
    let id: SessionId = path_id(&id, "session")?;
    let owned = state
        .store
        .session(id)
        .await?
        .filter(|s| s.user_id == user_id && s.ended_at.is_none());
    if owned.is_none() {
        return Err(ApiError::not_found("session"));
    }
    sessions::end(&state, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sign out everywhere: every session of the signed-in user ends, this one included.
#[utoipa::path(post, path = "/v1/users/me/sessions/revoke-all", tag = "users",
    responses((status = 200, body = wire::SessionsEnded)),
    security(("bearer" = [])))]
pub async fn end_all_my_sessions(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<wire::SessionsEnded>, ApiError> {
    let (user_id, _) = person(&caller)?;
    let ended = sessions::end_all(&state, user_id, None).await?;
    Ok(Json(wire::SessionsEnded { ended }))
}

/// End every session of a member (Organization Owner).
#[utoipa::path(post, path = "/v1/organizations/{organizationId}/users/{userId}/sessions/revoke-all", tag = "users",
    params(("organizationId" = String, Path), ("userId" = String, Path)),
    responses((status = 200, body = wire::SessionsEnded), (status = 403, body = wire::ErrorBody), (status = 404, body = wire::ErrorBody)),
    security(("bearer" = [])))]
pub async fn end_member_sessions(
    State(state): State<AppState>,
    caller: Caller,
    Path((org, user)): Path<(String, String)>,
) -> Result<Json<wire::SessionsEnded>, ApiError> {
    let org = caller_org(&caller, &org)?;
    require(
        authorize(
            &caller.principal,
            Action::ManageUsers,
            &Resource::Organization(org),
        ),
        "end members' sessions",
    )?;
    let user: UserId = path_id(&user, "user")?;
    if state.store.roles(org, *user.as_uuid()).await?.is_empty() {
        return Err(ApiError::not_found("user"));
    }
    let ended = sessions::end_all(&state, user, Some(org)).await?;
    Ok(Json(wire::SessionsEnded { ended }))
}
