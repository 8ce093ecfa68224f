//! `lastUsedAt` without a database write per request: uses are kept in memory and
//! written in one batch every few seconds (and at shutdown).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tessera_core::ids::TokenId;
use tessera_core::store::{Store, StoreResult};
use time::OffsetDateTime;

#[derive(Debug, Clone, Default)]
pub struct UsageRecorder(Arc<Mutex<HashMap<TokenId, OffsetDateTime>>>);

impl UsageRecorder {
    pub fn touch(&self, id: TokenId, at: OffsetDateTime) {
        let mut pending = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let slot = pending.entry(id).or_insert(at);
        *slot = (*slot).max(at);
    }

    /// A use not yet written, to show in answers before the next flush.
    pub fn pending(&self, id: TokenId) -> Option<OffsetDateTime> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .copied()
    }

    /// Writes every pending use. On failure they are kept for the next try.
    pub async fn flush(&self, store: &dyn Store) -> StoreResult<usize> {
        let batch: Vec<(TokenId, OffsetDateTime)> = {
            let mut pending = self.0.lock().unwrap_or_else(|e| e.into_inner());
            pending.drain().collect()
        };
        if batch.is_empty() {
            return Ok(0);
        }
        if let Err(e) = store.record_last_used(&batch).await {
            for (id, at) in batch {
                self.touch(id, at);
            }
            return Err(e);
        }
        Ok(batch.len())
    }
}
