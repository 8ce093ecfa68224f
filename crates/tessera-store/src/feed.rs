//! The change feed between servers sharing a PostgreSQL database: `NOTIFY` on the
//! channel [`CHANNEL`] after each write that changes a status (see `Store::publish`),
//! `LISTEN` here. The payload names what changed; the receiver reads the row.
//!
//! A lost connection is reported as [`FeedEvent::Lost`], never hidden: notifications sent
//! meanwhile are gone, so the server reads status from the database until it has
//! reconnected and reloaded its caches.

use sqlx::postgres::PgListener;
use tessera_core::store::{Change, StoreError};

pub const CHANNEL: &str = "tessera_changes";

#[derive(Debug)]
pub enum FeedEvent {
    Change(Change),
    /// The connection dropped; changes may have been missed.
    Lost,
}

/// A listening connection.
pub struct Feed {
    listener: PgListener,
}

impl Feed {
    /// Connects and listens. Only PostgreSQL URLs have a feed.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let mut listener = PgListener::connect(url)
            .await
            .map_err(|e| StoreError::Unavailable(format!("change feed: {e}")))?;
        // A lost connection must be reported at once, not retried silently for the
        // pool's timeout while the caches go stale.
        listener.eager_reconnect(false);
        listener
            .listen(CHANNEL)
            .await
            .map_err(|e| StoreError::Unavailable(format!("change feed: {e}")))?;
        Ok(Self { listener })
    }

    /// The next event. After `Lost` (or an error) drop this feed and connect anew.
    pub async fn next(&mut self) -> Result<FeedEvent, StoreError> {
        loop {
            match self.listener.try_recv().await {
                Ok(Some(n)) => match serde_json::from_str::<Change>(n.payload()) {
                    Ok(change) => return Ok(FeedEvent::Change(change)),
                    Err(_) => {
                        tracing::warn!(payload = %n.payload(), "ignoring an unreadable change notification");
                    }
                },
                Ok(None) => return Ok(FeedEvent::Lost),
                Err(e) => return Err(StoreError::Unavailable(format!("change feed: {e}"))),
            }
        }
    }
}
