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

/// The SQLite database file in `data_dir`.
pub fn sqlite_file(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("tessera.db")
}

/// The SQLite URL for the database file in `data_dir`.
pub fn sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", sqlite_file(data_dir).display())
}

/// Creates `data_dir` (mode 0700) and an empty database file in it (mode 0600) unless
/// they exist: the database holds password hashes and sealed signing keys, and SQLite
/// gives its `-wal` and `-shm` files the database file's mode. Existing ones are left
/// as the operator made them.
pub fn prepare_sqlite_dir(data_dir: &Path) -> std::io::Result<()> {
    let mut dir = std::fs::DirBuilder::new();
    dir.recursive(true);
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
        dir.mode(0o700);
        file.mode(0o600);
    }
    dir.create(data_dir)?;
    file.open(sqlite_file(data_dir))?;
    Ok(())
}

/// Connects, applies pending migrations, and returns the store.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(SqlStore::connect(url).await?))
}
