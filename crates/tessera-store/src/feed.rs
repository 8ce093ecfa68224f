//! The change feed between servers sharing a PostgreSQL database: triggers `NOTIFY` the
//! channel [`CHANNEL`] inside each writing transaction (migration 0003), and each
//! server `LISTEN`s here. The payload names what changed; the receiver reads the row.
//!
//! A lost connection is reported as [`FeedEvent::Lost`], never hidden: notifications sent
//! meanwhile are gone, so the server reads status from the database until it has
//! reconnected and reloaded its caches. A connection that goes silent without closing
//! (a network partition drops packets, it sends no reset) counts as lost too: a quiet
//! feed asks the database for an echo on a channel of its own every [`ECHO_EVERY`],
//! and a feed that has heard nothing at all for [`SILENCE_LIMIT`] reports `Lost`.

use std::time::{Duration, Instant};

use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use tessera_core::store::{Change, StoreError};

pub const CHANNEL: &str = "tessera_changes";

/// How long a quiet feed waits before it asks for an echo.
pub const ECHO_EVERY: Duration = Duration::from_secs(1);
/// How long a feed may hear nothing, neither a change nor an echo, before it counts as
/// lost: the longest a server trusts its caches without word from the database.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(3);

#[derive(Debug)]
pub enum FeedEvent {
    Change(Change),
    /// The connection dropped or went silent; changes may have been missed.
    Lost,
}

/// A listening connection, and a second one that asks for echoes.
pub struct Feed {
    listener: PgListener,
    echo: PgPool,
    echo_channel: String,
    heard: Instant,
    asking: Option<tokio::task::JoinHandle<()>>,
}

impl Feed {
    /// Connects and listens. Only PostgreSQL URLs have a feed.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let lost = |e: sqlx::Error| StoreError::Unavailable(format!("change feed: {e}"));
        let mut listener = PgListener::connect(url).await.map_err(lost)?;
        // A lost connection must be reported at once, not retried silently for the
        // pool's timeout while the caches go stale.
        listener.eager_reconnect(false);
        let echo_channel = format!("tessera_echo_{}", uuid::Uuid::now_v7().simple());
        listener
            .listen_all([CHANNEL, echo_channel.as_str()])
            .await
            .map_err(lost)?;
        let echo = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(SILENCE_LIMIT)
            .connect(url)
            .await
            .map_err(lost)?;
        Ok(Self {
            listener,
            echo,
            echo_channel,
            heard: Instant::now(),
            asking: None,
        })
    }

    /// The next event. After `Lost` (or an error) drop this feed and connect anew.
    pub async fn next(&mut self) -> Result<FeedEvent, StoreError> {
        loop {
            if self.heard.elapsed() > SILENCE_LIMIT {
                tracing::warn!(silent_for = ?self.heard.elapsed(), "change feed: no word from the database");
                return Ok(FeedEvent::Lost);
            }
            // `try_recv` is cancel-safe: a timeout loses no notification.
            match tokio::time::timeout(ECHO_EVERY, self.listener.try_recv()).await {
                Err(_quiet) => self.ask_for_echo(),
                Ok(Ok(Some(n))) => {
                    self.heard = Instant::now();
                    if n.channel() == self.echo_channel {
                        continue;
                    }
                    match serde_json::from_str::<Change>(n.payload()) {
                        Ok(change) => return Ok(FeedEvent::Change(change)),
                        Err(_) => {
                            tracing::warn!(payload = %n.payload(), "ignoring an unreadable change notification");
                        }
                    }
                }
                Ok(Ok(None)) => return Ok(FeedEvent::Lost),
                Ok(Err(e)) => return Err(StoreError::Unavailable(format!("change feed: {e}"))),
            }
        }
    }

    /// Asks for an echo, unless the last request is still on its way: a hanging
    /// database gets one request, not one a second.
    fn ask_for_echo(&mut self) {
        if self.asking.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let (pool, channel) = (self.echo.clone(), self.echo_channel.clone());
        self.asking = Some(tokio::spawn(async move {
            let _ = sqlx::query("SELECT pg_notify($1, '')")
                .bind(channel)
                .execute(&pool)
                .await;
        }));
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        if let Some(h) = self.asking.take() {
            h.abort();
        }
    }
}
