//! Operator commands on the signing keys (`tessera keys ...`). They act on the database
//! with the master key and tell every server through the change feed.

use serde::Serialize;
use tessera_core::keys::{KeyAlgorithm, KeyPair};
use tessera_core::model::StoredKey;
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    pub kid: String,
    pub algorithm: String,
    pub active: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub retired_at: Option<OffsetDateTime>,
}

pub async fn list(state: &AppState) -> Result<Vec<KeyInfo>, ApiError> {
    Ok(state
        .store
        .signing_keys()
        .await?
        .into_iter()
        .map(|k| KeyInfo {
            kid: k.kid,
            algorithm: k.algorithm.as_str().to_owned(),
            active: k.active,
            created_at: k.created_at,
            retired_at: k.retired_at,
        })
        .collect())
}

/// Makes `pair` the active signing key on every server. Older keys stay published and
/// keep verifying what they signed.
async fn activate(state: &AppState, pair: &KeyPair) -> Result<String, ApiError> {
    if state
        .store
        .signing_keys()
        .await?
        .iter()
        .any(|k| k.kid == pair.kid())
    {
        return Err(ApiError::Conflict(format!(
            "key {} is already stored",
            pair.kid()
        )));
    }
    let sealed = state
        .master()
        .seal(pair.kid(), pair.pkcs8())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let key = StoredKey {
        kid: pair.kid().to_owned(),
        algorithm: pair.algorithm(),
        sealed_private_key: sealed,
        public_jwk: serde_json::to_string(&pair.public_jwk())
            .map_err(|e| ApiError::Internal(e.to_string()))?,
        active: true,
        created_at: crate::api::now_seconds(state),
        retired_at: None,
    };
    state.store.insert_signing_key(&key).await?;
    state.reload_keys().await?;
    tracing::info!(kid = %key.kid, algorithm = %key.algorithm, "signing key activated");
    Ok(key.kid)
}

pub async fn rotate(state: &AppState, algorithm: KeyAlgorithm) -> Result<String, ApiError> {
    let pair = KeyPair::generate(algorithm).map_err(|e| ApiError::Internal(e.to_string()))?;
    activate(state, &pair).await
}

/// Imports an operator's PKCS#8 private key (Ed25519, P-256, or RSA of 2048 bits or
/// more) as the active signing key.
pub async fn import(state: &AppState, pem: &str) -> Result<String, ApiError> {
    let pair = KeyPair::from_pem(pem).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    activate(state, &pair).await
}

/// Retires a key (one thought compromised): it leaves the JWKS, and every token it
/// signed is rejected by every server. The active key cannot be retired: rotate first.
pub async fn retire(state: &AppState, kid: &str) -> Result<(), ApiError> {
    let keys = state.store.signing_keys().await?;
    let Some(key) = keys.iter().find(|k| k.kid == kid) else {
        return Err(ApiError::NotFound(format!("no signing key {kid}")));
    };
    if key.active {
        return Err(ApiError::Conflict(format!(
            "{kid} is the active signing key: run `tessera keys rotate` first, then retire it"
        )));
    }
    if !state
        .store
        .retire_signing_key(kid, crate::api::now_seconds(state))
        .await?
    {
        return Err(ApiError::Conflict(format!("{kid} is already retired")));
    }
    state.reload_keys().await?;
    tracing::warn!(%kid, "signing key retired; every token it signed is now rejected");
    Ok(())
}
