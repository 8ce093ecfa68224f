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
}

#[derive(Debug, Clone)]
pub struct KeyRing(Arc<RwLock<Arc<Keys>>>);

impl KeyRing {
    /// Loads the keys from the store. With no key yet, or none of `algorithm`, makes one
    /// and makes it active. The active key's private half is opened with `master`: a
    /// wrong master key is an error here, never a silent new key.
    /// With `keep`, any active key is kept, whatever its algorithm.
    pub async fn load(
        store: &dyn Store,
        master: &MasterKey,
        algorithm: KeyAlgorithm,
        keep: bool,
        now: OffsetDateTime,
    ) -> Result<Self, KeyRingError> {
        let mut stored = store.signing_keys().await?;
        let active_fits = stored
            .iter()
            .any(|k| k.active && k.retired_at.is_none() && (keep || k.algorithm == algorithm));
        if !active_fits {
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
            store.insert_signing_key(&key).await?;
            tracing::info!(kid = %key.kid, %algorithm, "created a new signing key");
            stored = store.signing_keys().await?;
        }
        let keys = build(&stored, master)?;
        Ok(Self(Arc::new(RwLock::new(Arc::new(keys)))))
    }

    /// Reads the keys again (another server or an operator changed them). Never makes a
    /// key: only start-up does.
    pub async fn reload(&self, store: &dyn Store, master: &MasterKey) -> Result<(), KeyRingError> {
        let stored = store.signing_keys().await?;
        let keys = build(&stored, master)?;
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        Ok(())
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
    })
}
