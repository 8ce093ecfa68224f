//! Keeping this server's caches right when other servers write: the change feed
//! (PostgreSQL `LISTEN/NOTIFY`), a full resync after any gap, and a periodic resync as a
//! safety net. While the feed is down, status is read from the database per request;
//! if the database cannot answer, validation fails closed (503).

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use tessera_core::ids::{SessionId, TokenId};
use tessera_core::store::{Change, StoreError};
use tessera_store::feed::{Feed, FeedEvent};

use crate::state::AppState;

/// Whether this server hears other servers' changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedState {
    /// One server on SQLite: nobody else writes.
    NotNeeded,
    /// Listening: the caches are current.
    Up,
    /// Not listening (connecting, or lost): status is read from the database.
    Down,
}

impl FeedState {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotNeeded => "not needed",
            Self::Up => "up",
            Self::Down => "down",
        }
    }
}

/// The feed's state, and a way to ask the feed task to start over. Only the feed task
/// says `Up` (after it listens and has resynced); anyone may say `Down`.
#[derive(Debug, Clone)]
pub struct FeedHealth(Arc<AtomicU8>, Arc<tokio::sync::Notify>);

impl FeedHealth {
    pub fn new(initial: FeedState) -> Self {
        Self(Arc::new(AtomicU8::new(initial as u8)), Arc::default())
    }

    /// The caches can no longer be vouched for: status is read from the database, and
    /// the feed task reconnects and resyncs before it says `Up` again.
    fn lost(&self) {
        self.set(FeedState::Down);
        // A permit is kept if the feed task is busy: it starts over when it next waits.
        self.1.notify_one();
    }

    pub fn get(&self) -> FeedState {
        match self.0.load(Ordering::Acquire) {
            0 => FeedState::NotNeeded,
            1 => FeedState::Up,
            _ => FeedState::Down,
        }
    }

    pub fn set(&self, state: FeedState) {
        let before = self.0.swap(state as u8, Ordering::AcqRel);
        if before != state as u8 {
            tracing::info!(feed = state.as_str(), "change feed");
            metrics::gauge!("tessera_change_feed_up")
                .set(f64::from(u8::from(state == FeedState::Up)));
        }
    }

    /// Whether the in-memory status can be trusted without asking the database.
    pub fn caches_current(&self) -> bool {
        self.get() != FeedState::Down
    }
}

// Other servers hear of this server's writes from the store itself (on PostgreSQL,
// triggers notify inside the writing transaction); these keep this server's caches
// right at once.

/// A token changed here.
pub fn token_changed(state: &AppState, token: &tessera_core::model::ApiToken) {
    state.status.put(token);
}

pub fn token_deleted(state: &AppState, id: TokenId) {
    state.status.mark_deleted(id);
}

pub fn session_ended(state: &AppState, id: SessionId, at: time::OffsetDateTime) {
    state.sessions.mark_ended(id, at);
}

/// Roles changed here: those of `principal`, or (`None`) of anyone.
pub fn roles_changed(state: &AppState, principal: Option<uuid::Uuid>) {
    state.roles.invalidate(principal);
}

/// Applies one change from another server: read the row, update the cache.
async fn apply(state: &AppState, change: Change) -> Result<(), StoreError> {
    match change {
        Change::Token { id, .. } => {
            if let Some(t) = state.store.token_by_id(id).await? {
                state.status.put(&t);
            }
        }
        Change::Session { id, .. } => {
            if let Some(s) = state.store.session(id).await? {
                state.sessions.put(&s);
                if let Some(at) = s.ended_at {
                    state.sessions.mark_ended(id, at);
                }
            }
        }
        Change::Roles { id, .. } => state.roles.invalidate(Some(id)),
        Change::Keys => state.reload_keys().await?,
    }
    Ok(())
}

/// The periodic safety net: a full reload. Failing to read the database means the
/// caches can no longer be vouched for: status is read per request (and fails closed)
/// until the feed task has listened and resynced again.
pub async fn periodic_resync(state: &AppState) {
    if let Err(e) = resync(state).await {
        tracing::warn!(error = %e, "periodic resync failed; reading status from the database");
        state.feed.lost();
    }
}

/// Reloads every status, every live session and the keys from the database.
pub async fn resync(state: &AppState) -> Result<(), StoreError> {
    for t in state.store.all_tokens().await? {
        state.status.put(&t);
    }
    let live = state.store.live_sessions(state.clock.now()).await?;
    state.sessions.retain_live(&live);
    state.roles.invalidate(None);
    state.reload_keys().await?;
    metrics::counter!("tessera_resyncs_total").increment(1);
    Ok(())
}

/// Listens for changes until the process ends, reconnecting with back-off after a loss
/// and resyncing before it trusts its caches again.
pub fn spawn(state: &AppState, url: String) -> tokio::task::JoinHandle<()> {
    let state = state.clone();
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            state.feed.set(FeedState::Down);
            let mut feed = match Feed::connect(&url).await {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "change feed: cannot connect");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            };
            // Listening first, then the resync: nothing falls between the two.
            if let Err(e) = resync(&state).await {
                tracing::warn!(error = %e, retry_in = ?backoff, "change feed: resync failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
            backoff = Duration::from_millis(100);
            state.feed.set(FeedState::Up);
            loop {
                let event = tokio::select! {
                    event = feed.next() => event,
                    () = state.feed.1.notified() => {
                        tracing::warn!("change feed: starting over after a failed resync");
                        break;
                    }
                };
                match event {
                    Ok(FeedEvent::Change(change)) => {
                        if let Err(e) = apply(&state, change).await {
                            // The row could not be read: stop trusting the caches.
                            tracing::warn!(error = %e, "change feed: cannot apply a change");
                            break;
                        }
                    }
                    Ok(FeedEvent::Lost) | Err(_) => {
                        tracing::warn!("change feed: connection lost");
                        break;
                    }
                }
            }
        }
    })
}
