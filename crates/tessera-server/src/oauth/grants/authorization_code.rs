//! `grant_type=authorization_code` with PKCE S256 (RFC 6749 §4.1.3, RFC 7636 §4.6).

use tessera_core::session::{
    OAuthClient, Redemption, pkce_matches, secret_hash, valid_code_verifier,
};

use crate::oauth::error::OAuthError;
use crate::sessions::{self, NewSession, Origin, TokenResponse};
use tessera_core::ids::SessionId;

/// How long after a code's expiry a replay still ends the session it created.
const REPLAY_WINDOW: time::Duration = time::Duration::minutes(10);
use crate::state::AppState;

pub async fn exchange(
    state: &AppState,
    client: &OAuthClient,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Result<TokenResponse, OAuthError> {
    let now = crate::api::now_seconds(state);
    let hash = secret_hash(code);
    // The session this code will start is named in the same statement that spends the
    // code, so a replay at any moment knows which session to end.
    let planned = SessionId::new();
    let stored = match state.store.redeem_code(&hash, now, planned).await? {
        Redemption::Fresh(c) => c,
        Redemption::Reused(c) => {
            // A replay soon after issue means the code leaked while it was live: whoever
            // holds it may hold the tokens too. Much later, it is only an old code (from a
            // browser history, say) and ends nothing.
            if now < c.expires_at + REPLAY_WINDOW
                && let Some(sid) = c.session_id
            {
                sessions::end(state, sid).await?;
            }
            tracing::warn!(client_id = %client.id, "authorization code reused; its session was ended");
            return Err(OAuthError::invalid_grant(
                "the authorization code was already used; its session has been ended",
            ));
        }
        Redemption::Unknown => return Err(OAuthError::invalid_grant("unknown authorization code")),
    };
    // The code is spent whatever follows: a failed redemption cannot be retried.
    if stored.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if stored.redirect_uri != redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    if now >= stored.expires_at {
        return Err(OAuthError::invalid_grant(
            "the authorization code has expired",
        ));
    }
    if !valid_code_verifier(verifier) || !pkce_matches(verifier, &stored.code_challenge) {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    if now >= stored.signed_in_at + state.lifetimes.absolute {
        return Err(OAuthError::invalid_grant(
            "the sign-in is too old; sign in again",
        ));
    }
    let session = sessions::start(
        state,
        NewSession {
            id: Some(planned),
            user: stored.user_id,
            organization: stored.organization_id,
            client_id: &client.id,
            signed_in_at: stored.signed_in_at,
            origin: Origin::default(),
            cookie_hash: None,
            browser_session: stored.browser_session_id,
        },
    )
    .await?;
    tracing::info!(client_id = %client.id, session_id = %session.id, "session started (authorization code)");
    Ok(sessions::first_tokens(state, &session).await?)
}
