//! Tessera's storage: one implementation of the core store traits over sqlx's `Any`
//! driver, so SQLite (the embedded default) and PostgreSQL run the same queries. The
//! backend is chosen once, from the database URL, in [`connect`].
//!
//! Portability rules that keep one query set honest: `$n` placeholders (SQLite reads
//! them as positional), ids as UUID text, times as Unix seconds in 64-bit integers,
//! flags as integers, and every multi-statement write starts with a write so SQLite
//! never has to upgrade a read transaction.

pub mod feed;
mod migrations;
mod sessions;
mod sql;

use std::path::Path;
use std::sync::Arc;

use tessera_core::store::{Store, StoreError};

pub use migrations::{POSTGRES, SQLITE, migration_list};
pub use sql::SqlStore;

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(StoreError::Unavailable(
                "unsupported database URL: expected sqlite:... or postgres://...".into(),
            ))
        }
    }
}

/// The SQLite URL for the database file in `data_dir`.
pub fn sqlite_url(data_dir: &Path) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("tessera.db").display()
    )
}

/// Connects, applies pending migrations, and returns the store.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(SqlStore::connect(url).await?))
}
