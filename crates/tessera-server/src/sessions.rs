//! Sessions in the server: their live status in memory (like API tokens'), starting and
//! ending them, and issuing their tokens.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;
use tessera_core::claims::{Claims, SessionGrant};
use tessera_core::ids::{OrganizationId, SessionId, UserId};
use tessera_core::session::{Session, new_secret, secret_hash};
use tessera_core::store::{Store, StoreResult};
use time::OffsetDateTime;

pub use crate::client::Origin;
use crate::error::ApiError;
use crate::state::AppState;

/// Prefix of refresh tokens: says what a leaked string is.
pub const REFRESH_PREFIX: &str = "tsr_";

/// Live sessions by id. Ending a session here happens before the call that ended it
/// answers; a session missing here is read from the store.
#[derive(Debug, Clone, Default)]
pub struct SessionCache(Arc<RwLock<HashMap<SessionId, Session>>>);

impl SessionCache {
    pub async fn load(store: &dyn Store, now: OffsetDateTime) -> StoreResult<Self> {
        let live = store.live_sessions(now).await?;
        let map = live.into_iter().map(|s| (s.id, s)).collect();
        Ok(Self(Arc::new(RwLock::new(map))))
    }

    /// Records a session. An ended session stays ended.
    pub fn put(&self, session: &Session) {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        match map.get(&session.id) {
            Some(current) if current.ended_at.is_some() => {}
            _ => {
                map.insert(session.id, session.clone());
            }
        }
    }

    pub fn mark_ended(&self, id: SessionId, at: OffsetDateTime) {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = map.get_mut(&id) {
            s.ended_at.get_or_insert(at);
        }
    }

    /// The session: from memory when `current` (the caches hear every change), else
    /// from the store (and then remembered).
    pub async fn get(
        &self,
        id: SessionId,
        store: &dyn Store,
        current: bool,
    ) -> StoreResult<Option<Session>> {
        if current && let Some(s) = self.0.read().unwrap_or_else(|e| e.into_inner()).get(&id) {
            return Ok(Some(s.clone()));
        }
        let session = store.session(id).await?;
        if let Some(s) = &session {
            self.put(s);
            if let Some(at) = s.ended_at {
                self.mark_ended(s.id, at);
            }
        }
        Ok(session)
    }

    /// After a resync: `live` are the sessions the store said were live when asked.
    /// A cached session missing from it ended (or expired) meanwhile, or started after
    /// the question: either way it is forgotten here, and the next use reads the store.
    /// Nothing is added from `live`: a session ended while the answer was on its way
    /// must not come back to life from it.
    pub fn retain_live(&self, live: &[Session]) {
        let ids: std::collections::HashSet<SessionId> = live.iter().map(|s| s.id).collect();
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|id, _| ids.contains(id));
    }
}

/// RFC 6749 §5.1.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub refresh_token: String,
}

/// The organization a session acts in: the first one where the user holds an
/// organization role.
pub async fn home_organization(
    state: &AppState,
    user: UserId,
) -> Result<Option<OrganizationId>, ApiError> {
    for org in state.store.list_organizations().await? {
        let roles = state.store.roles(org.id, *user.as_uuid()).await?;
        if roles
            .iter()
            .any(|b| b.entity_type() == tessera_core::role::EntityType::Organization)
        {
            return Ok(Some(org.id));
        }
    }
    Ok(None)
}

/// A session to start.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    /// Chosen ahead when something must name the session before it exists.
    pub id: Option<SessionId>,
    pub user: UserId,
    pub organization: Option<OrganizationId>,
    pub client_id: &'a str,
    /// The session ends `session lifetime` after this, whatever refreshes happen.
    pub signed_in_at: OffsetDateTime,
    pub origin: Origin,
    /// For the browser's own sign-in: the hash of its cookie.
    pub cookie_hash: Option<&'a str>,
    /// For a client session: the browser sign-in it came from.
    pub browser_session: Option<SessionId>,
}

/// Starts a session.
pub async fn start(state: &AppState, new: NewSession<'_>) -> Result<Session, ApiError> {
    let now = crate::api::now_seconds(state);
    let session = Session {
        id: new.id.unwrap_or_default(),
        user_id: new.user,
        organization_id: new.organization,
        client_id: new.client_id.to_owned(),
        signed_in_at: new.signed_in_at,
        absolute_expiry: new.signed_in_at + state.lifetimes.absolute,
        created_at: now,
        last_refreshed_at: None,
        ended_at: None,
        ip: new.origin.ip.map(|ip| ip.to_string()),
        user_agent: new.origin.user_agent,
        browser_session_id: new.browser_session,
    };
    state
        .store
        .create_session(&session, new.cookie_hash)
        .await?;
    state.sessions.put(&session);
    Ok(session)
}

/// Ends a session everywhere in this process and in the store.
pub async fn end(state: &AppState, id: SessionId) -> Result<bool, ApiError> {
    let now = crate::api::now_seconds(state);
    let ended = crate::api::to_completion({
        let state = state.clone();
        async move {
            let ended = state.store.end_session(id, now).await?;
            crate::feed::session_ended(&state, id, now);
            Ok::<_, tessera_core::store::StoreError>(ended)
        }
    })
    .await??;
    if ended {
        tracing::info!(session_id = %id, "session ended");
    }
    Ok(ended)
}

/// Ends every session of a user (in one organization, when given).
pub async fn end_all(
    state: &AppState,
    user: UserId,
    org: Option<OrganizationId>,
) -> Result<usize, ApiError> {
    let now = crate::api::now_seconds(state);
    let ended = crate::api::to_completion({
        let state = state.clone();
        async move {
            let ended = state.store.end_user_sessions(user, org, now).await?;
            for id in &ended {
                crate::feed::session_ended(&state, *id, now);
            }
            Ok::<_, tessera_core::store::StoreError>(ended)
        }
    })
    .await??;
    tracing::info!(user_id = %user, count = ended.len(), "sessions ended");
    Ok(ended.len())
}

/// An access token for `session`: `exp = min(now + 8 h, absolute expiry)`.
pub fn access_token(state: &AppState, session: &Session) -> Result<(String, i64), ApiError> {
    let now = crate::api::now_seconds(state);
    let exp = state.lifetimes.access_expiry(now, session.absolute_expiry);
    let claims = Claims::session_access(&SessionGrant {
        issuer: &state.issuer,
        audience: &state.config.audience,
        user_id: session.user_id,
        session_id: session.id,
        client_id: &session.client_id,
        organization_id: session.organization_id,
        issued_at: now.unix_timestamp(),
        expires_at: exp.unix_timestamp(),
    });
    let value = state
        .keys
        .current()
        .signer
        .sign(&claims)
        .map_err(|e| ApiError::Internal(format!("signing failed: {e}")))?;
    Ok((value.expose().to_owned(), (exp - now).whole_seconds()))
}

/// Access token plus a first refresh token for a new session.
pub async fn first_tokens(state: &AppState, session: &Session) -> Result<TokenResponse, ApiError> {
    let refresh = new_secret(REFRESH_PREFIX);
    state
        .store
        .insert_refresh_token(
            &secret_hash(&refresh),
            session.id,
            crate::api::now_seconds(state),
        )
        .await?;
    let (access_token, expires_in) = access_token(state, session)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in,
        refresh_token: refresh,
    })
}
