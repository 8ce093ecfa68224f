//! The roles of each principal, in memory: authorization on the validation path needs
//! no database round trip. Like the status caches, it is trusted only while it hears
//! every change (local writes invalidate it, other servers' writes arrive through the
//! change feed); otherwise roles are read from the database for each request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tessera_core::ids::OrganizationId;
use tessera_core::model::RoleBinding;
use tessera_core::store::{Store, StoreResult};
use uuid::Uuid;

/// Principals remembered at most; past it the cache starts afresh.
const MAX_ENTRIES: usize = 100_000;

type Key = (OrganizationId, Uuid);

#[derive(Debug, Default)]
struct Inner {
    /// Moves on every invalidation: a read that began before one is not remembered
    /// (it may have seen the roles from before the change).
    epoch: u64,
    map: HashMap<Key, Arc<[RoleBinding]>>,
}

#[derive(Debug, Clone, Default)]
pub struct RoleCache(Arc<RwLock<Inner>>);

impl RoleCache {
    /// The roles `principal` holds in `org`: from memory when `current`, else (and on a
    /// miss) from the store.
    pub async fn get(
        &self,
        store: &dyn Store,
        org: OrganizationId,
        principal: Uuid,
        current: bool,
    ) -> StoreResult<Arc<[RoleBinding]>> {
        let epoch = {
            let inner = self.0.read().unwrap_or_else(|e| e.into_inner());
            if current && let Some(roles) = inner.map.get(&(org, principal)) {
                return Ok(roles.clone());
            }
            inner.epoch
        };
        let roles: Arc<[RoleBinding]> = store.roles(org, principal).await?.into();
        if current {
            let mut inner = self.0.write().unwrap_or_else(|e| e.into_inner());
            if inner.epoch == epoch {
                if inner.map.len() >= MAX_ENTRIES {
                    inner.map.clear();
                }
                inner.map.insert((org, principal), roles.clone());
            }
        }
        Ok(roles)
    }

    /// Forgets the roles of `principal` (in every organization), or of everyone.
    pub fn invalidate(&self, principal: Option<Uuid>) {
        let mut inner = self.0.write().unwrap_or_else(|e| e.into_inner());
        inner.epoch += 1;
        match principal {
            Some(p) => inner.map.retain(|(_, holder), _| *holder != p),
            None => inner.map.clear(),
        }
    }
}
