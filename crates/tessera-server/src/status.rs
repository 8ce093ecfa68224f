//! The live status of every API token, in memory: the validation path reads it with no
//! database round trip. Local writes update it before they answer; a token missing here
//! (created elsewhere, or evicted) is read from the database, and a database error then
//! fails the request closed.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tessera_core::ids::TokenId;
use tessera_core::model::ApiToken;
use tessera_core::status::TokenStatus;
use tessera_core::store::{Store, StoreResult};

#[derive(Debug, Clone, Default)]
pub struct StatusCache(Arc<RwLock<HashMap<TokenId, TokenStatus>>>);

impl StatusCache {
    /// Loads every token, deleted ones included.
    pub async fn load(store: &dyn Store) -> StoreResult<Self> {
        let cache = Self::default();
        let tokens = store.all_tokens().await?;
        let mut map = cache.0.write().unwrap_or_else(|e| e.into_inner());
        for t in &tokens {
            map.insert(t.id, TokenStatus::from(t));
        }
        drop(map);
        Ok(cache)
    }

    pub fn put(&self, token: &ApiToken) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.id, TokenStatus::from(token));
    }

    pub fn mark_deleted(&self, id: TokenId) {
        if let Some(s) = self
            .0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&id)
        {
            s.deleted = true;
        }
    }

    /// The status of `id`: from memory, else from the store (and then remembered).
    pub async fn get(&self, id: TokenId, store: &dyn Store) -> StoreResult<Option<TokenStatus>> {
        if let Some(s) = self.0.read().unwrap_or_else(|e| e.into_inner()).get(&id) {
            return Ok(Some(s.clone()));
        }
        let token = store.token_by_id(id).await?;
        Ok(token.map(|t| {
            self.put(&t);
            TokenStatus::from(&t)
        }))
    }

    pub fn len(&self) -> usize {
        self.0.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
