//! `grant_type=refresh_token` (RFC 6749 §6): single use, rotated on every refresh; a
//! reused one ends the whole session (RFC 9700 §4.14.2).

use tessera_core::session::{OAuthClient, Redemption, new_secret, secret_hash};

use crate::oauth::error::OAuthError;
use crate::sessions::{self, REFRESH_PREFIX, TokenResponse};
use crate::state::AppState;

pub async fn exchange(
    state: &AppState,
    client: &OAuthClient,
    presented: &str,
) -> Result<TokenResponse, OAuthError> {
    let now = crate::api::now_seconds(state);
    let next = new_secret(REFRESH_PREFIX);
    let sid = match state
        .store
        .rotate_refresh_token(&secret_hash(presented), &secret_hash(&next), now)
        .await?
    {
        Redemption::Fresh(sid) => sid,
        Redemption::Reused(sid) => {
            sessions::end(state, sid).await?;
            tracing::warn!(session_id = %sid, "refresh token reused; the session was ended");
            return Err(OAuthError::invalid_grant(
                "the refresh token was already used; the session has been ended: sign in again",
            ));
        }
        Redemption::Unknown => return Err(OAuthError::invalid_grant("unknown refresh token")),
    };
    let session = state
        .sessions
        .get(sid, state.store.as_ref(), state.feed.caches_current())
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the session no longer exists"))?;
    if session.client_id != client.id {
        // Presented by the wrong client: treat it as stolen.
        sessions::end(state, sid).await?;
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if session.ended_at.is_some() {
        return Err(OAuthError::invalid_grant(
            "the session has ended (signed out): sign in again",
        ));
    }
    if now >= session.absolute_expiry {
        return Err(OAuthError::invalid_grant(format!(
            "the session reached its limit of {} days after sign-in: sign in again",
            state.lifetimes.absolute.whole_days()
        )));
    }
    let (access_token, expires_in) = sessions::access_token(state, &session)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in,
        refresh_token: next,
    })
}
