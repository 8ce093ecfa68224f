//! `POST /oauth/revoke` (RFC 7009): revoking a refresh token, or a session access token,
//! ends its session. The answer is 200 whether or not the token was valid (§2.2).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tessera_core::claims::Identity;
use tessera_core::session::secret_hash;

use super::error::OAuthError;
use super::token::client;
use crate::sessions::{self, REFRESH_PREFIX};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RevocationRequest {
    pub token: String,
    #[serde(default)]
    pub token_type_hint: Option<String>,
    pub client_id: String,
}

/// Revoke a refresh token or an access token: its session ends.
#[utoipa::path(post, path = "/oauth/revoke", tag = "oauth",
    request_body(content = RevocationRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200), (status = 401, description = "invalid_client")))]
pub async fn revoke(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, OAuthError> {
    let req: RevocationRequest = super::token::form(&body)?;
    let client = client(&state, &req.client_id).await?;
    let session = if req.token.starts_with(REFRESH_PREFIX) {
        state
            .store
            .refresh_token_session(&secret_hash(&req.token))
            .await?
    } else {
        match crate::auth::inspect(&state, &req.token).await {
            Ok(v) => match v.identity {
                Identity::Session { session_id, .. } => Some(session_id),
                Identity::ApiToken { .. } => None,
            },
            Err(crate::auth::AuthFailure::Unavailable(m)) => {
                return Err(crate::error::ApiError::Unavailable(m).into());
            }
            Err(crate::auth::AuthFailure::Rejected(_)) => None,
        }
    };
    if let Some(sid) = session {
        // Only the client the session belongs to may end it this way.
        let owned = state
            .sessions
            .get(sid, state.store.as_ref(), state.feed.caches_current())
            .await?
            .is_some_and(|s| s.client_id == client.id);
        if owned {
            sessions::end(&state, sid).await?;
        }
    }
    Ok(StatusCode::OK.into_response())
}
