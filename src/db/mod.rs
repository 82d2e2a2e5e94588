//! The database layer: one diesel schema on SQLite or PostgreSQL, chosen from the URL, behind a
//! connection pool whose blocking work runs on tokio's blocking threads.
//!
//! Every write runs in a transaction that takes SQLite's write lock up front (`BEGIN
//! IMMEDIATE`), so concurrent writers queue on `busy_timeout` instead of failing with
//! "database is locked" when a read transaction tries to upgrade.

mod conn;
pub mod migrations;

use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::r2d2::{self, ManageConnection, Pool, PooledConnection};
use diesel::{Connection, ConnectionError, PgConnection, SqliteConnection};

pub use conn::AnyConnection;
#[doc(hidden)]
pub use conn::MultiBackend;

use crate::DatabaseUrl;

/// Which database a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// PostgreSQL (production).
    Postgres,
    /// SQLite (the embedded default).
    Sqlite,
}

/// A database failure.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database could not be opened or reached.
    #[error("cannot connect to {url}: {message}")]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// The driver's message, on one line.
        message: String,
    },
    /// No pooled connection became free in time.
    #[error("no database connection available: {0}")]
    Pool(String),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// Applying or reverting migrations failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// The blocking task running the query panicked or was cancelled.
    #[error("database task failed: {0}")]
    Task(String),
}

impl DbError {
    /// Whether the same query may succeed later: lost connections, pool timeouts, lock and
    /// serialization conflicts.
    pub fn is_retryable(&self) -> bool {
        use diesel::result::{DatabaseErrorKind as K, Error as E};
        matches!(
            self,
            DbError::Connect { .. }
                | DbError::Pool(_)
                | DbError::Query(
                    E::DatabaseError(
                        K::SerializationFailure | K::ClosedConnection | K::Unknown,
                        _
                    ) | E::BrokenTransactionManager
                )
        )
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Opens the pool's connections, dispatching on the URL scheme and setting SQLite's pragmas.
#[derive(Debug)]
pub struct ConnectionManager {
    url: DatabaseUrl,
}

/// Stops OpenSSL from registering its exit-time cleanup, once, before the first PostgreSQL
/// connection (libpq negotiates TLS through the system's OpenSSL).
///
/// r2d2 opens and closes pooled connections on its own threads. When a process exits while
/// one of them is in a TLS handshake, OpenSSL's `atexit` handler frees the tables that thread
/// is reading, and the process dies with SIGSEGV after its work is done. Without the handler
/// the operating system reclaims that memory at exit anyway. This has no effect if OpenSSL was
/// already initialised elsewhere in the process.
fn skip_openssl_exit_cleanup() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // OpenSSL 1.1.1b and later: `OPENSSL_INIT_NO_ATEXIT`.
        const OPENSSL_INIT_NO_ATEXIT: u64 = 0x0008_0000;
        unsafe extern "C" {
            fn OPENSSL_init_crypto(opts: u64, settings: *const std::ffi::c_void)
            -> std::ffi::c_int;
        }
        // SAFETY: OPENSSL_init_crypto may be called from any thread at any time; a null
        // settings pointer means the defaults. libcrypto is linked through libpq (pq-sys).
        let ok = unsafe { OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, std::ptr::null()) };
        if ok != 1 {
            tracing::warn!("OpenSSL refused OPENSSL_INIT_NO_ATEXIT");
        }
    });
}

impl ConnectionManager {
    fn open(&self) -> Result<AnyConnection, ConnectionError> {
        match &self.url {
            DatabaseUrl::Postgres(url) => {
                skip_openssl_exit_cleanup();
                PgConnection::establish(url).map(AnyConnection::Pg)
            }
            DatabaseUrl::Sqlite(path) => {
                let mut c = SqliteConnection::establish(path)?;
                // busy_timeout first: switching to WAL takes a lock that other pooled
                // connections opening at the same time must wait for.
                c.batch_execute(
                    "PRAGMA busy_timeout = 15000; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                )
                .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
                Ok(AnyConnection::Sqlite(c))
            }
        }
    }
}

impl ManageConnection for ConnectionManager {
    type Connection = AnyConnection;
    type Error = ConnectionError;

    fn connect(&self) -> Result<AnyConnection, ConnectionError> {
        self.open()
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), ConnectionError> {
        conn.batch_execute("SELECT 1")
            .map_err(|e| ConnectionError::BadConnection(e.to_string()))
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        r2d2::R2D2Connection::is_broken(conn)
    }
}

/// One connection, outside any pool, opened the way the pool opens them (URL dispatch, SQLite
/// pragmas). For short-lived tools such as the migration command.
pub fn establish(url: &DatabaseUrl) -> Result<AnyConnection, DbError> {
    ConnectionManager { url: url.clone() }
        .open()
        .map_err(|e| DbError::Connect {
            url: url.redacted(),
            message: one_line(&e.to_string()),
        })
}

/// A pool of connections to the application's database; cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Pool<ConnectionManager>,
    backend: Backend,
    url: DatabaseUrl,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .field("url", &self.url)
            .finish()
    }
}

impl Db {
    /// Opens a pool (4 connections on SQLite, whose writers are serialised anyway; 10 on
    /// PostgreSQL). The first connection is opened at once, so an unreachable database or a
    /// bad URL fails here with the driver's message.
    pub async fn connect(url: &DatabaseUrl) -> Result<Db, DbError> {
        let url = url.clone();
        tokio::task::spawn_blocking(move || Db::connect_blocking(&url))
            .await
            .map_err(|e| DbError::Task(e.to_string()))?
    }

    /// [`Db::connect`] for code that is not async (the migration CLI).
    pub fn connect_blocking(url: &DatabaseUrl) -> Result<Db, DbError> {
        let manager = ConnectionManager { url: url.clone() };
        let first = establish(url)?;
        let (backend, size) = match url {
            DatabaseUrl::Postgres(_) => (Backend::Postgres, 10),
            DatabaseUrl::Sqlite(_) => (Backend::Sqlite, 4),
        };
        let pool = Pool::builder()
            .max_size(size)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .build_unchecked(manager);
        drop(first);
        Ok(Db {
            pool,
            backend,
            url: url.clone(),
        })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL it was opened with.
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// A pooled connection, blocking until one is free, for the application's own diesel
    /// queries in sync code (on tokio, use [`Db::run`]).
    pub fn get(&self) -> Result<PooledConnection<ConnectionManager>, DbError> {
        self.pool
            .get()
            .map_err(|e| DbError::Pool(one_line(&e.to_string())))
    }

    /// Runs `f` on a pooled connection on tokio's blocking threads, never on a worker thread.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = db.get()?;
            f(&mut conn)
        })
        .await
        .map_err(|e| E::from(DbError::Task(e.to_string())))?
    }

    /// [`Db::run`] inside a write transaction (see [`write_transaction`]).
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + From<diesel::result::Error> + Send + 'static,
    {
        self.run(move |conn| write_transaction(conn, f)).await
    }

    /// Applies every pending migration of this backend; returns the versions applied.
    pub async fn run_pending_migrations(&self) -> Result<Vec<String>, DbError> {
        self.run(migrations::run_pending).await
    }
}

/// Runs `f` in a transaction that is committed when it returns `Ok` and rolled back otherwise.
///
/// On SQLite the transaction starts with `BEGIN IMMEDIATE`, taking the write lock before the
/// first read: a deferred transaction that reads and then writes fails with "database is
/// locked" when another writer got there first, and `busy_timeout` cannot help with that.
pub fn write_transaction<T, E, F>(conn: &mut AnyConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    match conn {
        AnyConnection::Pg(_) => conn.transaction(f),
        AnyConnection::Sqlite(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?;
            match f(conn) {
                Ok(value) => {
                    <AnyConnection as Connection>::TransactionManager::commit_transaction(conn)?;
                    Ok(value)
                }
                Err(e) => {
                    <AnyConnection as Connection>::TransactionManager::rollback_transaction(conn)?;
                    Err(e)
                }
            }
        }
    }
}
