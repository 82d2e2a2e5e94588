//! The job queue: one apalis storage of [`Job`]s, on SQLite or PostgreSQL, whatever the job
//! type. Adding a job type never adds a storage or a match arm here.

use std::error::Error as StdError;
use std::str::FromStr;
use std::time::Duration;

use apalis::prelude::{Metrics, TaskBuilder, TaskSink};
use apalis_postgres::{PgConnectOptions, PgPool, PostgresStorage};
use apalis_sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteStorage};
use diesel_mangopay::DatabaseUrl;

use crate::job::Job;

/// The queue every job goes to.
pub const QUEUE: &str = "mangopay";

/// How many times apalis may hand one task out: the first run, and the re-runs of a task whose
/// worker died while running it. Retries after failures are new tasks (see `run_worker`).
const TASK_RUNS: usize = 3;

/// A failure of the job machinery itself (not of a job).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobsError {
    /// The job storage could not be opened or set up.
    #[error("job storage at {url}: {source}")]
    Storage {
        /// The database URL, password hidden.
        url: String,
        /// What went wrong.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// A job could not be enqueued.
    #[error("could not enqueue {job}: {source}")]
    Enqueue {
        /// The job's name.
        job: String,
        /// What went wrong.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// Queue statistics could not be read.
    #[error("could not read queue statistics: {0}")]
    Metrics(#[source] Box<dyn StdError + Send + Sync>),
    /// The worker failed.
    #[error("worker failed: {0}")]
    Worker(#[source] Box<dyn StdError + Send + Sync>),
    /// The queue did not drain in time.
    #[error("{left} job(s) still outstanding after {waited:?}")]
    NotIdle {
        /// Jobs still waiting or running.
        left: u64,
        /// How long it waited.
        waited: Duration,
    },
    /// A model operation failed outside a job (the sweep).
    #[error(transparent)]
    Model(#[from] diesel_mangopay::Error),
}

/// The storage behind a queue: the two backends share apalis's traits but not a type.
#[derive(Clone)]
pub(crate) enum Storage {
    Sqlite(SqliteStorage<Job>),
    Postgres(PostgresStorage<Job>),
}

/// Runs `$body` with `$s` bound to the storage, whatever the backend.
macro_rules! with_storage {
    ($storage:expr, |$s:ident| $body:expr) => {
        match $storage {
            $crate::queue::Storage::Sqlite($s) => $body,
            $crate::queue::Storage::Postgres($s) => $body,
        }
    };
}
pub(crate) use with_storage;

/// Where jobs are stored, and how to enqueue them. Cheap to clone.
#[derive(Clone)]
pub struct JobQueue {
    pub(crate) storage: Storage,
    pub(crate) heartbeat: Duration,
}

impl std::fmt::Debug for JobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match self.storage {
            Storage::Sqlite(_) => "sqlite",
            Storage::Postgres(_) => "postgres",
        };
        f.debug_struct("JobQueue")
            .field("backend", &backend)
            .field("queue", &QUEUE)
            .finish_non_exhaustive()
    }
}

/// How often a worker proves it is alive; a worker silent for two intervals is dead, and the
/// tasks it held are handed to another worker.
const HEARTBEAT: Duration = Duration::from_secs(10);

fn boxed(e: impl StdError + Send + Sync + 'static) -> Box<dyn StdError + Send + Sync> {
    Box::new(e)
}

impl JobQueue {
    /// Opens the job storage that `url` selects and creates its tables if needed (apalis's own
    /// migrations: tables `Jobs` and `Workers` on SQLite, schema `apalis` on PostgreSQL, which
    /// needs the `hstore` extension).
    pub async fn connect(url: &DatabaseUrl) -> Result<JobQueue, JobsError> {
        let fail = |source: Box<dyn StdError + Send + Sync>| JobsError::Storage {
            url: url.redacted(),
            source,
        };
        let storage = match url {
            DatabaseUrl::Sqlite(path) => {
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .busy_timeout(Duration::from_secs(15));
                let pool: SqlitePool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(options)
                    .await
                    .map_err(|e| fail(boxed(e)))?;
                SqliteStorage::setup(&pool)
                    .await
                    .map_err(|e| fail(boxed(e)))?;
                let config = apalis_sqlite::Config::default()
                    .queue(QUEUE)
                    .heartbeat_interval(HEARTBEAT);
                Storage::Sqlite(SqliteStorage::new(&pool).with_config(config))
            }
            DatabaseUrl::Postgres(raw) => {
                let options = PgConnectOptions::from_str(raw).map_err(|e| fail(boxed(e)))?;
                let pool = PgPool::connect_with(options)
                    .await
                    .map_err(|e| fail(boxed(e)))?;
                PostgresStorage::setup(&pool)
                    .await
                    .map_err(|e| fail(boxed(e)))?;
                let config = apalis_postgres::Config::default()
                    .queue(QUEUE)
                    .heartbeat_interval(HEARTBEAT);
                Storage::Postgres(PostgresStorage::new(&pool).with_config(config))
            }
        };
        Ok(JobQueue {
            storage,
            heartbeat: HEARTBEAT,
        })
    }

    /// Enqueues `job` to run as soon as a worker is free.
    pub async fn enqueue(&self, job: Job) -> Result<(), JobsError> {
        self.enqueue_after(job, Duration::ZERO).await
    }

    /// Enqueues `job` to run after `delay` (whole seconds: the storage keeps seconds).
    pub async fn enqueue_after(&self, job: Job, delay: Duration) -> Result<(), JobsError> {
        let name = job.name.clone();
        let mut task = TaskBuilder::new(job).max_attempts(TASK_RUNS);
        if !delay.is_zero() {
            task = task.run_after(delay);
        }
        let task = task.build();
        with_storage!(&self.storage, |s| s
            .clone()
            .push_task(task)
            .await
            .map_err(boxed))
        .map_err(|source| JobsError::Enqueue { job: name, source })
    }

    /// Enqueues `create_mangopay_user(id)`.
    pub async fn create_mangopay_user(&self, id: i64) -> Result<(), JobsError> {
        self.enqueue(Job::create_mangopay_user(id)).await
    }

    /// Enqueues `update_mangopay_user(id)`.
    pub async fn update_mangopay_user(&self, id: i64) -> Result<(), JobsError> {
        self.enqueue(Job::update_mangopay_user(id)).await
    }

    /// How many jobs are waiting (due or scheduled) or running.
    pub async fn outstanding(&self) -> Result<u64, JobsError> {
        let stats = with_storage!(&self.storage, |s| s.fetch_by_queue().await.map_err(boxed))
            .map_err(JobsError::Metrics)?;
        Ok(stats
            .iter()
            .filter(|s| s.title == "ACTIVE_JOBS")
            .map(|s| s.value.parse::<f64>().unwrap_or(0.0) as u64)
            .sum())
    }

    /// Waits until no job is waiting or running, checking every `interval`; gives up after
    /// `timeout` with the number still outstanding.
    pub async fn wait_until_idle(
        &self,
        interval: Duration,
        timeout: Duration,
    ) -> Result<(), JobsError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = self.outstanding().await?;
            if left == 0 {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(JobsError::NotIdle {
                    left,
                    waited: timeout,
                });
            }
            tokio::time::sleep(interval).await;
        }
    }
}
