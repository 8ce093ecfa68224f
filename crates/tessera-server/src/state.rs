//! What every handler shares.

use std::ops::Deref;
use std::sync::{Arc, Mutex, OnceLock};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tessera_core::Clock;
use tessera_core::keys::MasterKey;
use tessera_core::secret::{Password, random_string};
use tessera_core::session::SessionLifetimes;
use tessera_core::store::{Store, StoreError};
use tessera_core::throttle::Throttle;
use tessera_core::verify::{VerifiedToken, VerifyConfig};
use time::Duration;
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::feed::{FeedHealth, FeedState};
use crate::keyring::{KeyRing, KeyRingError};
use crate::sessions::SessionCache;
use crate::status::StatusCache;
use crate::usage::UsageRecorder;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("signing keys: {0}")]
    Keys(#[from] KeyRingError),
    #[error("{0}")]
    MasterKey(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

pub struct Inner {
    pub config: Config,
    pub issuer: String,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub keys: KeyRing,
    pub status: StatusCache,
    pub usage: UsageRecorder,
    /// Keyed by the SHA-256 of the whole token: a hit skips the signature check.
    pub verified: moka::sync::Cache<[u8; 32], Arc<VerifiedToken>>,
    pub verify_config: VerifyConfig,
    pub metrics: PrometheusHandle,
    pub sessions: SessionCache,
    /// Each principal's roles, for authorization without a database round trip.
    pub roles: crate::roles::RoleCache,
    pub lifetimes: SessionLifetimes,
    /// Failed sign-ins per account and per client address, and wrong user codes per
    /// sign-in at `/device`.
    pub throttle: Mutex<Throttle>,
    /// Device sign-ins started, per client address and in all (each writes a row,
    /// unauthenticated).
    pub device_starts: Mutex<crate::oauth::device::DeviceStarts>,
    /// Bounds concurrent argon2 work to the number of cores.
    pub hashing: Semaphore,
    /// A hash to verify against when an email is unknown, so both cases cost the same.
    pub decoy_hash: String,
    /// Whether changes by other servers reach the caches.
    pub feed: FeedHealth,
    /// The web UI's refreshes of the last seconds, by refresh-token hash: parallel page
    /// loads with one expired access token share one refresh instead of tripping
    /// reuse detection.
    pub ui_refreshes: crate::ui::RecentRefreshes,
    /// Web UI create forms already sent (their `once` field), for a day.
    pub ui_forms: moka::sync::Cache<String, ()>,
    /// Opens the active signing key when the keys are reloaded.
    master: MasterKey,
}

/// Cheap to clone; handed to every handler.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (an embedding application's);
            // then ours renders nothing, which is harmless.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

impl AppState {
    /// The master key, for operator commands that seal new signing keys.
    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    /// Reloads the signing keys from the store.
    pub async fn reload_keys(&self) -> Result<(), StoreError> {
        let changed = self
            .keys
            .reload(self.store.as_ref(), &self.master)
            .await
            .map_err(|e| match e {
                KeyRingError::Store(s) => s,
                other => StoreError::Corrupt(other.to_string()),
            })?;
        if changed {
            tracing::info!(kid = %self.keys.current().signer.kid(), "signing keys reloaded");
        }
        Ok(())
    }

    /// Builds the state: loads (or creates) signing keys and the status cache.
    pub async fn new(
        config: Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        master: MasterKey,
    ) -> Result<Self, StartupError> {
        config.validate()?;
        let now = clock.now();
        let keys = KeyRing::load(store.as_ref(), &master, config.signing_algorithm, now).await?;
        let status = StatusCache::load(store.as_ref()).await?;
        let sessions = SessionCache::load(store.as_ref(), now).await?;
        crate::login::register_clients(store.as_ref(), &config.issuer(), now).await?;
        let cost = config.password_cost;
        let decoy_hash = tokio::task::spawn_blocking(move || {
            tessera_core::password::hash(&Password::new(random_string(16)), cost)
        })
        .await
        .map_err(|e| StartupError::MasterKey(format!("hashing task failed: {e}")))?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // With PostgreSQL other servers may write: trust the caches only once the feed
        // listens (see `feed::spawn`).
        let feed = if store.backend() == "postgres" {
            FeedState::Down
        } else {
            FeedState::NotNeeded
        };
        let issuer = config.issuer();
        let config_lifetimes = config.session_lifetimes();
        let verify_config = VerifyConfig {
            issuer: issuer.clone(),
            audience: config.audience.clone(),
            nbf_leeway: Duration::seconds(i64::from(config.leeway_seconds)),
            exp_leeway: Duration::ZERO,
        };
        let verified = moka::sync::Cache::builder()
            .max_capacity(config.verified_cache_capacity)
            .time_to_live(std::time::Duration::from_secs(600))
            .build();
        Ok(Self(Arc::new(Inner {
            config,
            issuer,
            store,
            clock,
            keys,
            status,
            usage: UsageRecorder::default(),
            verified,
            verify_config,
            metrics: metrics_handle(),
            sessions,
            roles: crate::roles::RoleCache::default(),
            lifetimes: config_lifetimes,
            throttle: Mutex::new(Throttle::default()),
            device_starts: Mutex::default(),
            hashing: Semaphore::new(cores),
            decoy_hash,
            feed: FeedHealth::new(feed),
            ui_refreshes: crate::ui::RecentRefreshes::default(),
            ui_forms: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(std::time::Duration::from_secs(24 * 3600))
                .build(),
            master,
        })))
    }
}
