//! The connection type that speaks to PostgreSQL or SQLite, picked at run time.
//!
//! It lives in a module of its own because diesel's `MultiConnection` derive emits a
//! `multi_connection_impl` module and re-exports `MultiBackend` and friends next to the enum.
// The derive generates public items (the backend type, `establish`, ...) without doc comments.
#![allow(missing_docs)]

/// A connection to either backend. Every query in this crate is written once against it.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    /// PostgreSQL through libpq (bundled, no system library needed).
    Pg(diesel::PgConnection),
    /// SQLite (bundled).
    Sqlite(diesel::SqliteConnection),
}
