//! The database layer: one diesel schema on SQLite or PostgreSQL, chosen from the URL, behind a
//! connection pool whose blocking work runs on tokio's blocking threads.
//!
//! Every write runs in a transaction that takes SQLite's write lock up front (`BEGIN
//! IMMEDIATE`), so concurrent writers queue on `busy_timeout` instead of failing with
//! "database is locked" when a read transaction tries to upgrade.

mod conn;
pub mod migrations;
pub(crate) mod rate_budget;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diesel::connection::{
    AnsiTransactionManager, Instrumentation, InstrumentationEvent, SimpleConnection,
    TransactionManager,
};
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
#[non_exhaustive]
pub enum DbError {
    /// The database could not be opened or reached.
    #[error("cannot connect to {url}: {}", one_line(&source.to_string()))]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// The driver's error.
        #[source]
        source: ConnectionError,
    },
    /// No pooled connection became free in time, or none could be opened.
    #[error("no database connection available: {}", one_line(&.0.to_string()))]
    Pool(#[source] r2d2::PoolError),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// Applying or reverting migrations failed.
    #[error("migration failed: {0}")]
    Migration(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The blocking task running the query panicked or was cancelled.
    #[error("database task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
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

    /// Whether a unique constraint refused the write.
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            DbError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// How many statements and transactions a [`Db`]'s connections have run: diesel's
/// instrumentation, counted on every pooled connection.
#[derive(Debug, Default)]
struct Counts {
    queries: AtomicU64,
    /// Transactions begun (savepoints included).
    begins: AtomicU64,
    /// Top-level transactions begun.
    transactions: AtomicU64,
    /// Commits and rollbacks (of savepoints too).
    ends: AtomicU64,
}

/// The statements and transactions run through a [`Db`] so far (see [`Db::statements`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatementCount {
    /// Statements, not counting transaction control (`BEGIN`, `COMMIT`, `ROLLBACK` and
    /// savepoints).
    pub statements: u64,
    /// Transactions begun (savepoints inside them not counted).
    pub transactions: u64,
}

impl std::ops::Sub for StatementCount {
    type Output = StatementCount;
    fn sub(self, earlier: StatementCount) -> StatementCount {
        StatementCount {
            statements: self.statements.saturating_sub(earlier.statements),
            transactions: self.transactions.saturating_sub(earlier.transactions),
        }
    }
}

struct Counter(Arc<Counts>);

impl Instrumentation for Counter {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        let counter = match event {
            InstrumentationEvent::StartQuery { .. } => &self.0.queries,
            InstrumentationEvent::BeginTransaction { depth, .. } => {
                if depth.get() == 1 {
                    self.0.transactions.fetch_add(1, Ordering::Relaxed);
                }
                &self.0.begins
            }
            InstrumentationEvent::CommitTransaction { .. }
            | InstrumentationEvent::RollbackTransaction { .. } => &self.0.ends,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Opens the pool's connections, dispatching on the URL scheme and setting SQLite's pragmas.
#[derive(Debug)]
pub struct ConnectionManager {
    url: DatabaseUrl,
    counts: Arc<Counts>,
}

impl ConnectionManager {
    fn open(&self) -> Result<AnyConnection, ConnectionError> {
        match &self.url {
            DatabaseUrl::Postgres(url) => {
                // libpq negotiates TLS through the system's OpenSSL. r2d2 opens and closes
                // pooled connections on its own threads; if a process exits while one of them
                // is in a TLS handshake, OpenSSL's exit-time cleanup frees tables that thread
                // is reading and the process dies with SIGSEGV after its work is done.
                // openssl-sys initialises OpenSSL once with OPENSSL_INIT_NO_ATEXIT.
                openssl_sys::init();
                PgConnection::establish(url).map(AnyConnection::Pg)
            }
            DatabaseUrl::Sqlite(path) => {
                let mut c = SqliteConnection::establish(path)?;
                // busy_timeout first: switching to WAL takes a lock that other pooled
                // connections opening at the same time must wait for. synchronous = FULL: the
                // create protocol relies on a committed idempotency key surviving a power
                // loss (in WAL mode, NORMAL may lose the last commits).
                c.batch_execute(
                    "PRAGMA busy_timeout = 15000; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
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
        let mut conn = self.open()?;
        conn.set_instrumentation(Counter(self.counts.clone()));
        Ok(conn)
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
    ConnectionManager {
        url: url.clone(),
        counts: Arc::default(),
    }
    .open()
    .map_err(|source| DbError::Connect {
        url: url.redacted(),
        source,
    })
}

/// A pool of connections to the application's database; cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Pool<ConnectionManager>,
    backend: Backend,
    url: DatabaseUrl,
    counts: Arc<Counts>,
    hooks: crate::hooks::Hooks,
    kyc: crate::models::kyc_file::KycSettings,
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
            .map_err(DbError::Task)?
    }

    /// [`Db::connect`] for code that is not async (the migration CLI).
    pub fn connect_blocking(url: &DatabaseUrl) -> Result<Db, DbError> {
        let counts = Arc::<Counts>::default();
        let manager = ConnectionManager {
            url: url.clone(),
            counts: counts.clone(),
        };
        let first = establish(url)?;
        let (backend, size) = match url {
            DatabaseUrl::Postgres(_) => (Backend::Postgres, 10),
            DatabaseUrl::Sqlite(_) => (Backend::Sqlite, 4),
        };
        let pool = Pool::builder()
            .max_size(size)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            // A broken connection is dropped when it is returned (diesel checks it); testing
            // every checkout would add a statement to every database hop.
            .test_on_check_out(false)
            .build_unchecked(manager);
        drop(first);
        Ok(Db {
            pool,
            backend,
            url: url.clone(),
            counts,
            hooks: crate::hooks::Hooks::default(),
            kyc: crate::models::kyc_file::KycSettings::default(),
        })
    }

    /// This handle with `hooks` registered (see [`crate::hooks`]): every model method and job
    /// run with it runs them. Clones made afterwards share them.
    pub fn with_hooks(mut self, hooks: crate::hooks::Hooks) -> Db {
        self.hooks = hooks;
        self
    }

    /// This handle with `settings` for KYC page files (their checks, where staged copies
    /// live); clones made afterwards share them.
    pub fn with_kyc(mut self, settings: crate::models::kyc_file::KycSettings) -> Db {
        self.kyc = settings;
        self
    }

    /// The KYC page-file settings of this handle.
    pub fn kyc(&self) -> &crate::models::kyc_file::KycSettings {
        &self.kyc
    }

    /// The hooks registered on this handle.
    pub fn hooks(&self) -> &crate::hooks::Hooks {
        &self.hooks
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
        self.pool.get().map_err(DbError::Pool)
    }

    /// The statements and transactions this pool's connections have run so far (diesel's
    /// instrumentation). Subtract two readings to count what happened in between.
    pub fn statements(&self) -> StatementCount {
        let queries = self.counts.queries.load(Ordering::Relaxed);
        let begins = self.counts.begins.load(Ordering::Relaxed);
        let ends = self.counts.ends.load(Ordering::Relaxed);
        StatementCount {
            // BEGIN, COMMIT, ROLLBACK and savepoints are statements too: transaction control,
            // not counted as work.
            statements: queries.saturating_sub(begins + ends),
            transactions: self.counts.transactions.load(Ordering::Relaxed),
        }
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
        .map_err(|e| E::from(DbError::Task(e)))?
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
