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

/// Sessions by id, live or ended. Ending a session here happens before the call that
/// ended it answers; a session missing here is read from the store.
#[derive(Debug, Clone, Default)]
pub struct SessionCache(Arc<RwLock<Inner>>);

#[derive(Debug, Default)]
struct Inner {
    /// Moves at every resync: a store read begun before one may predate an end that no
    /// notification will repeat, so what it saw is not kept.
    generation: u64,
    sessions: HashMap<SessionId, Session>,
    /// Sessions ended while not held here, by when: a session being started at that very
    /// moment (stored, not yet put here) must arrive ended, not live.
    ended: HashMap<SessionId, OffsetDateTime>,
}

/// How long an end is remembered for a session not held here: far longer than the
/// moment between storing a session and putting it here.
const ENDED_MEMORY: time::Duration = time::Duration::hours(1);

impl SessionCache {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }

    pub async fn load(store: &dyn Store, now: OffsetDateTime) -> StoreResult<Self> {
        let live = store.live_sessions(now).await?;
        let cache = Self::default();
        cache.write().sessions = live.into_iter().map(|s| (s.id, s)).collect();
        Ok(cache)
    }

    /// Records a session. An ended session stays ended.
    pub fn put(&self, session: &Session) {
        Self::put_in(&mut self.write(), session);
    }

    fn put_in(inner: &mut Inner, session: &Session) {
        let mut session = session.clone();
        if let Some(at) = inner.ended.remove(&session.id) {
            session.ended_at.get_or_insert(at);
        }
        match inner.sessions.get(&session.id) {
            Some(current) if current.ended_at.is_some() => {}
            _ => {
                inner.sessions.insert(session.id, session);
            }
        }
    }

    pub fn mark_ended(&self, id: SessionId, at: OffsetDateTime) {
        let mut inner = self.write();
        match inner.sessions.get_mut(&id) {
            Some(s) => {
                s.ended_at.get_or_insert(at);
            }
            None => {
                inner.ended.insert(id, at);
            }
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
        self.get_with(id, current, store.session(id)).await
    }

    /// [`get`](Self::get), reading the store with `read` (lazy: run only on a miss).
    async fn get_with(
        &self,
        id: SessionId,
        current: bool,
        read: impl std::future::Future<Output = StoreResult<Option<Session>>>,
    ) -> StoreResult<Option<Session>> {
        let generation = {
            let inner = self.0.read().unwrap_or_else(|e| e.into_inner());
            if current && let Some(s) = inner.sessions.get(&id) {
                return Ok(Some(s.clone()));
            }
            inner.generation
        };
        let session = read.await?;
        if let Some(s) = &session {
            let mut inner = self.write();
            if inner.generation == generation || s.ended_at.is_some() {
                Self::put_in(&mut inner, s);
            }
        }
        Ok(session)
    }

    /// After a resync: `live` are the sessions the store said were live when asked.
    /// A cached live session missing from it ended (or expired) meanwhile, or started
    /// after the question: either way it is forgotten here, and the next use reads the
    /// store. Ended ones stay (an end is final), and nothing is added from `live`: a
    /// session ended while the answer was on its way must not come back to life.
    pub fn retain_live(&self, live: &[Session]) {
        let ids: std::collections::HashSet<SessionId> = live.iter().map(|s| s.id).collect();
        let mut inner = self.write();
        inner.generation += 1;
        inner
            .sessions
            .retain(|id, s| s.ended_at.is_some() || ids.contains(id));
    }

    /// Bounds memory: sessions past their absolute expiry (refused by time anyway, and
    /// by the store once purged) and old ends of sessions never held here are dropped.
    pub fn prune(&self, now: OffsetDateTime) {
        let mut inner = self.write();
        inner.sessions.retain(|_, s| now < s.absolute_expiry);
        inner.ended.retain(|_, at| now - *at < ENDED_MEMORY);
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

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn session() -> Session {
        let t0 = datetime!(2026-05-01 10:00 UTC);
        Session {
            id: SessionId::new(),
            user_id: UserId::new(),
            organization_id: None,
            client_id: "tessera-cli".into(),
            signed_in_at: t0,
            absolute_expiry: t0 + time::Duration::days(30),
            created_at: t0,
            last_refreshed_at: None,
            ended_at: None,
            ip: None,
            user_agent: None,
            browser_session_id: None,
        }
    }

    fn held(cache: &SessionCache, id: SessionId) -> Option<Session> {
        cache.0.read().unwrap().sessions.get(&id).cloned()
    }

    #[test]
    fn an_end_heard_before_its_session_arrives_still_ends_it() {
        let cache = SessionCache::default();
        let s = session();
        let at = s.created_at + time::Duration::minutes(1);
        // Ended (by a replayed code, say) between being stored and being put here.
        cache.mark_ended(s.id, at);
        cache.put(&s);
        assert_eq!(held(&cache, s.id).unwrap().ended_at, Some(at));
        // Later puts of the live row read before the end change nothing.
        cache.put(&s);
        assert_eq!(held(&cache, s.id).unwrap().ended_at, Some(at));
    }

    #[tokio::test]
    async fn a_read_begun_before_a_resync_is_not_kept() {
        let s = session();
        let cache = SessionCache::default();
        let gate = Arc::new(tokio::sync::Notify::new());
        // A store read of the session while it was live, held up until released.
        let read = {
            let (cache, row, gate) = (cache.clone(), s.clone(), gate.clone());
            tokio::spawn(async move {
                let slow = async move {
                    gate.notified().await;
                    Ok(Some(row))
                };
                cache.get_with(s.id, false, slow).await.unwrap()
            })
        };
        tokio::task::yield_now().await;
        // Meanwhile the session ends elsewhere, unheard (the feed is down), and the
        // resync after reconnecting finds it no longer live.
        cache.retain_live(&[]);
        gate.notify_one();
        assert!(
            read.await.unwrap().is_some(),
            "the caller gets what it read"
        );
        assert!(held(&cache, s.id).is_none(), "but it is not kept as live");
        // Without a resync in between, a read is kept.
        cache
            .get_with(s.id, false, async { Ok(Some(s.clone())) })
            .await
            .unwrap();
        assert!(held(&cache, s.id).is_some());
    }

    #[test]
    fn resync_keeps_ends_and_pruning_bounds_memory() {
        let cache = SessionCache::default();
        let (live, ended, gone) = (session(), session(), session());
        for s in [&live, &ended, &gone] {
            cache.put(s);
        }
        cache.mark_ended(ended.id, ended.created_at);
        // The store says only `live` is live: `gone` is forgotten (read again on next
        // use), `ended` stays ended.
        cache.retain_live(std::slice::from_ref(&live));
        assert!(held(&cache, live.id).is_some());
        assert!(held(&cache, ended.id).unwrap().ended_at.is_some());
        assert!(held(&cache, gone.id).is_none());
        // Past the absolute expiry, nothing is kept; an old end of a session never held
        // here goes too.
        cache.mark_ended(SessionId::new(), live.created_at);
        cache.prune(live.absolute_expiry + time::Duration::seconds(1));
        let inner = cache.0.read().unwrap();
        assert!(inner.sessions.is_empty() && inner.ended.is_empty());
    }
}
