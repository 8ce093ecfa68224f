//! `grant_type=authorization_code` with PKCE S256 (RFC 6749 §4.1.3, RFC 7636 §4.6).

use tessera_core::ids::SessionId;
use tessera_core::session::{
    AuthorizationCode, OAuthClient, Redemption, Session, pkce_matches, secret_hash,
    valid_code_verifier,
};
use tessera_core::store::StoreError;

use crate::error::ApiError;
use crate::oauth::error::OAuthError;
use crate::sessions::{self, NewSession, Origin, TokenResponse};
use crate::state::AppState;

pub async fn exchange(
    state: &AppState,
    client: &OAuthClient,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
    origin: Origin,
) -> Result<TokenResponse, OAuthError> {
    let now = crate::api::now_seconds(state);
    let hash = secret_hash(code);
    // The session this code will start is named in the same statement that spends the
    // code, so a replay at any moment knows which session to end.
    let planned = SessionId::new();
    let stored = match state.store.redeem_code(&hash, now, planned).await? {
        Redemption::Fresh(c) => c,
        Redemption::Reused(c) => {
            // RFC 6749 §4.1.2, RFC 9700 §4.14: a code presented twice leaked, and whoever
            // holds it may hold the tokens too: the session it started ends.
            if let Some(sid) = c.session_id {
                end_replayed(state, &c, sid).await?;
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
    // A code approved in a browser sign-in that has ended since starts nothing.
    if let Some(browser) = stored.browser_session_id {
        let live = state
            .sessions
            .get(browser, state.store.as_ref(), state.feed.caches_current())
            .await?
            .is_some_and(|s| s.check(now).is_ok());
        if !live {
            return Err(OAuthError::invalid_grant(
                "the sign-in that approved this code has ended; sign in again",
            ));
        }
    }
    let started = sessions::start(
        state,
        NewSession {
            id: Some(planned),
            user: stored.user_id,
            organization: stored.organization_id,
            client_id: &client.id,
            signed_in_at: stored.signed_in_at,
            origin,
            cookie_hash: None,
            browser_session: stored.browser_session_id,
        },
    )
    .await;
    let session = match started {
        Ok(s) => s,
        // A replay got here first and stored this session already ended.
        Err(ApiError::Conflict(_)) => {
            return Err(OAuthError::invalid_grant(
                "the authorization code was already used; its session has been ended",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(client_id = %client.id, session_id = %session.id, "session started (authorization code)");
    Ok(sessions::first_tokens(state, &session).await?)
}

/// Ends the session that a replayed code started. The first redemption may still be
/// on its way (the code spent, its session not stored yet): then the session is stored
/// here first, already ended, so that the first redemption's insert fails and it hands
/// out nothing.
async fn end_replayed(
    state: &AppState,
    code: &AuthorizationCode,
    sid: SessionId,
) -> Result<(), OAuthError> {
    if sessions::end(state, sid).await? {
        return Ok(());
    }
    let now = crate::api::now_seconds(state);
    let ended = Session {
        id: sid,
        user_id: code.user_id,
        organization_id: code.organization_id,
        client_id: code.client_id.clone(),
        signed_in_at: code.signed_in_at,
        absolute_expiry: code.signed_in_at + state.lifetimes.absolute,
        created_at: now,
        last_refreshed_at: None,
        ended_at: Some(now),
        ip: None,
        user_agent: None,
        browser_session_id: code.browser_session_id,
    };
    match state.store.create_session(&ended, None).await {
        Ok(()) => Ok(()),
        // It exists: stored by the first redemption (meanwhile, or ended already). End
        // it; ending an ended session changes nothing.
        Err(StoreError::Conflict(_)) => {
            sessions::end(state, sid).await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
