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

    /// Records a token's status. Monotonic, so a stale read written late can never undo
    /// a newer change: a deletion is final, and otherwise a higher version wins.
    pub fn put(&self, token: &ApiToken) {
        let incoming = TokenStatus::from(token);
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        match map.get(&token.id) {
            Some(current) if current.deleted => {}
            Some(current) if !incoming.deleted && incoming.version <= current.version => {}
            _ => {
                map.insert(token.id, incoming);
            }
        }
    }

    /// Marks a token deleted (final). Unknown ids are left to be read from the store.
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
    /// The status of `id`: from memory when `current` (the caches hear every change),
    /// else from the store; what the store says is remembered (monotonically).
    pub async fn get(
        &self,
        id: TokenId,
        store: &dyn Store,
        current: bool,
    ) -> StoreResult<Option<TokenStatus>> {
        if current && let Some(s) = self.0.read().unwrap_or_else(|e| e.into_inner()).get(&id) {
            return Ok(Some(s.clone()));
        }
        let Some(token) = store.token_by_id(id).await? else {
            return Ok(None);
        };
        self.put(&token);
        Ok(self
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned())
    }

    pub fn len(&self) -> usize {
        self.0.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::ids::{Jti, OrganizationId, UserId};
    use tessera_core::model::{Actor, TokenScope};

    fn token(version: i64, deleted: bool) -> ApiToken {
        let now = time::OffsetDateTime::UNIX_EPOCH;
        let by = Actor::User(UserId::from_uuid(uuid::Uuid::nil()));
        ApiToken {
            id: TokenId::from_uuid(uuid::Uuid::nil()),
            organization_id: OrganizationId::from_uuid(uuid::Uuid::nil()),
            name: String::new(),
            description: String::new(),
            scope: TokenScope::Organization,
            short_token: String::new(),
            current_jti: Jti::new(),
            previous_jti: None,
            previous_valid_until: None,
            start_at: now,
            end_at: None,
            expiry_period_in_days: None,
            version,
            last_used_at: None,
            last_rotated_at: None,
            created_at: now,
            updated_at: now,
            created_by: by,
            updated_by: by,
            deleted_at: deleted.then_some(now),
        }
    }

    #[tokio::test]
    async fn stale_writes_never_undo_a_rotation_or_a_deletion() {
        let cache = StatusCache::default();
        let v2 = token(2, false);
        cache.put(&v2);
        cache.put(&token(1, false));
        let map = cache.0.read().unwrap();
        assert_eq!(
            map.get(&v2.id).unwrap().current_jti,
            v2.current_jti,
            "older version ignored"
        );
        drop(map);
        cache.put(&token(2, true));
        cache.put(&token(3, false));
        assert!(
            cache.0.read().unwrap().get(&v2.id).unwrap().deleted,
            "deletion is final"
        );
    }
}
