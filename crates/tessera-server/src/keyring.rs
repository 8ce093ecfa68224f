//! The signing keys in memory: the active private key, and every published public key.

use std::sync::{Arc, RwLock};

use tessera_core::keys::{
    JwkSet, KeyAlgorithm, KeyError, KeyPair, KeySet, MasterKey, PublicJwk as Jwk, Signer,
    VerifyingKey,
};
use tessera_core::model::StoredKey;
use tessera_core::store::{Store, StoreError};
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored public key {kid} is unreadable: {message}")]
    BadPublicKey { kid: String, message: String },
}

/// One consistent view: what we sign with and what we accept.
#[derive(Debug)]
pub struct Keys {
    pub signer: Signer,
    pub verifying: KeySet,
    pub jwks: JwkSet,
    /// What these were built from: each stored key's id and state.
    stored: Vec<(String, bool, Option<OffsetDateTime>)>,
}

fn fingerprint(stored: &[StoredKey]) -> Vec<(String, bool, Option<OffsetDateTime>)> {
    stored
        .iter()
        .map(|k| (k.kid.clone(), k.active, k.retired_at))
        .collect()
}

#[derive(Debug, Clone)]
pub struct KeyRing(Arc<RwLock<Arc<Keys>>>);

impl KeyRing {
    /// Loads the keys from the store. The newest stored private key is opened with
    /// `master` before anything else: a wrong master key is an error here, never a
    /// silent new key. A key is made (and made active) only when there is no active key,
    /// or when `wanted` names an algorithm other than the active key's; with `wanted`
    /// unset, the active key stays whatever its algorithm (an imported key included).
    pub async fn load(
        store: &dyn Store,
        master: &MasterKey,
        wanted: Option<KeyAlgorithm>,
        now: OffsetDateTime,
    ) -> Result<Self, KeyRingError> {
        let mut stored = store.signing_keys().await?;
        if let Some(newest) = stored.iter().max_by_key(|k| k.created_at) {
            master.open(&newest.kid, &newest.sealed_private_key)?;
        }
        let active = stored.iter().rfind(|k| k.active && k.retired_at.is_none());
        let make = match (active, wanted) {
            (None, wanted) => Some(wanted.unwrap_or_default()),
            (Some(k), Some(wanted)) if k.algorithm != wanted => Some(wanted),
            (Some(_), _) => None,
        };
        if let Some(algorithm) = make {
            let pair = KeyPair::generate(algorithm)?;
            let key = StoredKey {
                kid: pair.kid().to_owned(),
                algorithm,
                sealed_private_key: master.seal(pair.kid(), pair.pkcs8())?,
                public_jwk: serde_json::to_string(&pair.public_jwk())
                    .map_err(|_| KeyError::Crypto("encode JWK"))?,
                active: true,
                created_at: now,
                retired_at: None,
            };
            match store.insert_signing_key(&key).await {
                Ok(()) => tracing::info!(kid = %key.kid, %algorithm, "created a new signing key"),
                // Another server made one at the same moment: that one is the key.
                Err(StoreError::Conflict(_)) => {
                    tracing::info!("another server made a signing key at the same moment");
                }
                Err(e) => return Err(e.into()),
            }
            stored = store.signing_keys().await?;
        }
        let keys = build(&stored, master)?;
        Ok(Self(Arc::new(RwLock::new(Arc::new(keys)))))
    }

    /// Reads the keys again (another server or an operator changed them) and rebuilds
    /// the ring when they differ from what it holds. Never makes a key: only start-up
    /// does. Answers whether anything changed.
    pub async fn reload(
        &self,
        store: &dyn Store,
        master: &MasterKey,
    ) -> Result<bool, KeyRingError> {
        let stored = store.signing_keys().await?;
        if self.current().stored == fingerprint(&stored) {
            return Ok(false);
        }
        let keys = build(&stored, master)?;
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        Ok(true)
    }

    pub fn current(&self) -> Arc<Keys> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn build(stored: &[StoredKey], master: &MasterKey) -> Result<Keys, KeyRingError> {
    let active = stored
        .iter()
        .rfind(|k| k.active && k.retired_at.is_none())
        .ok_or(KeyError::Crypto("no active signing key"))?;
    let pkcs8 = master.open(&active.kid, &active.sealed_private_key)?;
    let pair = KeyPair::from_pkcs8(&pkcs8)?;
    if pair.kid() != active.kid {
        return Err(KeyError::WrongMasterKey.into());
    }
    let mut jwks = Vec::new();
    let mut verifying = Vec::new();
    for k in stored.iter().filter(|k| k.retired_at.is_none()) {
        let jwk: Jwk =
            serde_json::from_str(&k.public_jwk).map_err(|e| KeyRingError::BadPublicKey {
                kid: k.kid.clone(),
                message: e.to_string(),
            })?;
        verifying.push(VerifyingKey::from_jwk(&jwk)?);
        jwks.push(jwk);
    }
    Ok(Keys {
        signer: pair.signer()?,
        verifying: KeySet::new(verifying),
        jwks: JwkSet { keys: jwks },
        stored: fingerprint(stored),
    })
}
