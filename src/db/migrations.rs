//! The migrations of each backend, embedded in the binary, and the operations the
//! `diesel-mangopay migrate` command offers.

use diesel::migration::{Migration, MigrationSource};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::{AnyConnection, DbError, MultiBackend};

/// PostgreSQL's migrations (`migrations/postgres`).
pub const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");
/// SQLite's migrations (`migrations/sqlite`).
pub const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// One migration and whether it is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// The migration's version and name, as its folder is called.
    pub name: String,
    /// Whether it has been applied to this database.
    pub applied: bool,
}

fn set(conn: &AnyConnection) -> EmbeddedMigrations {
    match conn {
        AnyConnection::Pg(_) => POSTGRES,
        AnyConnection::Sqlite(_) => SQLITE,
    }
}

fn err(e: Box<dyn std::error::Error + Send + Sync>) -> DbError {
    DbError::Migration(e)
}

/// Applies every pending migration; returns the versions applied, oldest first.
pub fn run_pending(conn: &mut AnyConnection) -> Result<Vec<String>, DbError> {
    let set = set(conn);
    let applied = conn.run_pending_migrations(set).map_err(err)?;
    Ok(applied.iter().map(ToString::to_string).collect())
}

/// Reverts the most recent migration; returns its version.
pub fn revert_last(conn: &mut AnyConnection) -> Result<String, DbError> {
    let set = set(conn);
    conn.revert_last_migration(set)
        .map(|v| v.to_string())
        .map_err(err)
}

/// Every migration of this backend, oldest first, with whether it is applied.
pub fn list(conn: &mut AnyConnection) -> Result<Vec<MigrationStatus>, DbError> {
    let set = set(conn);
    let applied = conn.applied_migrations().map_err(err)?;
    let mut all = MigrationSource::<MultiBackend>::migrations(&set).map_err(err)?;
    all.sort_by_key(|m| m.name().version().as_owned());
    Ok(all
        .iter()
        .map(|m| MigrationStatus {
            name: m.name().to_string(),
            applied: applied.contains(&m.name().version()),
        })
        .collect())
}
