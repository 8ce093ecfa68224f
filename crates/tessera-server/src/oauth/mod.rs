//! Tessera as an OAuth 2.0 authorization server for its own public clients
//! (`tessera-ui`, `tessera-cli`): authorization code with PKCE, refresh tokens, the
//! device grant; revocation, introspection, userinfo.

pub mod authorize;
pub mod device;
pub mod error;
pub mod grants;
pub mod introspect;
pub mod revoke;
pub mod token;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use tessera_core::claims::Identity;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// OpenID Connect-style user information for a session token.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserInfo {
    pub sub: String,
    pub email: String,
    pub name: String,
    pub org_id: Option<String>,
}

/// The signed-in person of a session access token.
#[utoipa::path(get, path = "/userinfo", tag = "oauth",
    responses((status = 200, body = UserInfo), (status = 401, body = tessera_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn userinfo(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<UserInfo>, ApiError> {
    let Identity::Session {
        user_id,
        organization_id,
        ..
    } = &caller.token.identity
    else {
        return Err(ApiError::InvalidToken(
            "userinfo needs a session token, not an API token".into(),
        ));
    };
    let user = state
        .store
        .user(*user_id)
        .await?
        .ok_or_else(|| ApiError::InvalidToken("the user no longer exists".into()))?;
    Ok(Json(UserInfo {
        sub: user.id.to_string(),
        email: user.email,
        name: user.full_name,
        org_id: organization_id.map(|o| o.to_string()),
    }))
}
