//! The migrations of each backend, embedded in the binary. Both trees carry the same
//! version numbers and descriptions (a test holds them to it); a published migration is
//! never edited, only followed by a new one.

use std::borrow::Cow;

use sqlx::SqlSafeStr as _;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// `(version, description, sql)`, in order.
pub type MigrationList = &'static [(i64, &'static str, &'static str)];

pub const SQLITE: MigrationList = &[
    (
        1,
        "initial",
        include_str!("../migrations/sqlite/0001_initial.sql"),
    ),
    (
        2,
        "sessions",
        include_str!("../migrations/sqlite/0002_sessions.sql"),
    ),
    (
        3,
        "change feed",
        include_str!("../migrations/sqlite/0003_change_feed.sql"),
    ),
    (
        4,
        "one active key",
        include_str!("../migrations/sqlite/0004_one_active_key.sql"),
    ),
    (
        5,
        "role feed",
        include_str!("../migrations/sqlite/0005_role_feed.sql"),
    ),
];

pub const POSTGRES: MigrationList = &[
    (
        1,
        "initial",
        include_str!("../migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "sessions",
        include_str!("../migrations/postgres/0002_sessions.sql"),
    ),
    (
        3,
        "change feed",
        include_str!("../migrations/postgres/0003_change_feed.sql"),
    ),
    (
        4,
        "one active key",
        include_str!("../migrations/postgres/0004_one_active_key.sql"),
    ),
    (
        5,
        "role feed",
        include_str!("../migrations/postgres/0005_role_feed.sql"),
    ),
];

pub fn migration_list(backend: crate::Backend) -> MigrationList {
    match backend {
        crate::Backend::Sqlite => SQLITE,
        crate::Backend::Postgres => POSTGRES,
    }
}

pub(crate) fn migrator(list: MigrationList) -> Migrator {
    Migrator::with_migrations(
        list.iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &str) -> Vec<String> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dir);
        let mut names: Vec<String> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn names(list: MigrationList) -> Vec<String> {
        list.iter()
            .map(|(v, d, _)| format!("{v:04}_{}.sql", d.replace(' ', "_")))
            .collect()
    }

    #[test]
    fn both_backends_have_the_same_migrations_and_embed_every_file() {
        assert_eq!(names(SQLITE), names(POSTGRES));
        assert_eq!(files("sqlite"), names(SQLITE));
        assert_eq!(files("postgres"), names(POSTGRES));
    }
}
