//! The job queue: job types, their queue names, and the storage on SQLite or PostgreSQL.

use std::str::FromStr;
use std::time::Duration;

use apalis::prelude::{Metrics, TaskBuilder, TaskSink};
use apalis_postgres::{PgConnectOptions, PgPool, PostgresStorage};
use apalis_sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteStorage};
use diesel_mangopay::DatabaseUrl;
use serde::{Deserialize, Serialize};

/// The queue of [`CreateMangopayUser`] jobs.
pub const CREATE_USER_QUEUE: &str = "mangopay.create_user";
/// The queue of [`UpdateMangopayUser`] jobs.
pub const UPDATE_USER_QUEUE: &str = "mangopay.update_user";
/// How many times a job runs at most: the first run and five retries with backoff.
pub const MAX_ATTEMPTS: usize = 6;

/// Create the user with this local id at Mangopay (natural or legal, whichever it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateMangopayUser {
    /// The local id (`mangopay_users.id`).
    pub id: i64,
}

/// Send the user's current fields to Mangopay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateMangopayUser {
    /// The local id (`mangopay_users.id`).
    pub id: i64,
}

/// A failure of the job machinery itself (not of a job).
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    /// The job storage could not be opened or set up.
    #[error("job storage at {url}: {message}")]
    Storage {
        /// The database URL, password hidden.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// A job could not be enqueued.
    #[error("could not enqueue {job}: {message}")]
    Enqueue {
        /// The job's queue.
        job: &'static str,
        /// What went wrong.
        message: String,
    },
    /// Queue statistics could not be read.
    #[error("could not read queue statistics: {0}")]
    Metrics(String),
    /// The worker failed.
    #[error("worker failed: {0}")]
    Worker(String),
    /// A model operation failed outside a job (resuming pending creates).
    #[error(transparent)]
    Model(#[from] diesel_mangopay::Error),
}

/// Runs `$body` with `$s` bound to the named storage field, whatever the backend: the two
/// storage types share the apalis traits but not a type.
macro_rules! with_storage {
    ($storages:expr, $field:ident, |$s:ident| $body:expr) => {
        match $storages {
            $crate::queue::Storages::Sqlite { $field: $s, .. } => $body,
            $crate::queue::Storages::Postgres { $field: $s, .. } => $body,
        }
    };
    ($storages:expr, |$create:ident, $update:ident| $body:expr) => {
        match $storages {
            $crate::queue::Storages::Sqlite {
                create_user: $create,
                update_user: $update,
            } => $body,
            $crate::queue::Storages::Postgres {
                create_user: $create,
                update_user: $update,
            } => $body,
        }
    };
}
pub(crate) use with_storage;

#[derive(Clone)]
pub(crate) enum Storages {
    Sqlite {
        create_user: SqliteStorage<CreateMangopayUser>,
        update_user: SqliteStorage<UpdateMangopayUser>,
    },
    Postgres {
        create_user: PostgresStorage<CreateMangopayUser>,
        update_user: PostgresStorage<UpdateMangopayUser>,
    },
}

/// Where jobs are stored, and the enqueue helpers. Cheap to clone.
#[derive(Clone)]
pub struct JobQueue {
    pub(crate) storages: Storages,
    pub(crate) heartbeat: Duration,
}

impl std::fmt::Debug for JobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match self.storages {
            Storages::Sqlite { .. } => "sqlite",
            Storages::Postgres { .. } => "postgres",
        };
        f.debug_struct("JobQueue")
            .field("backend", &backend)
            .finish_non_exhaustive()
    }
}

/// How often a worker proves it is alive; a worker silent for two intervals is dead, and the
/// jobs it held are handed to another worker of the same queue.
const HEARTBEAT: Duration = Duration::from_secs(10);

impl JobQueue {
    /// Opens the job storage that `url` selects and creates its tables if needed (apalis's own
    /// migrations: tables `Jobs` and `Workers` on SQLite, schema `apalis` on PostgreSQL, which
    /// needs the `hstore` extension).
    pub async fn connect(url: &DatabaseUrl) -> Result<JobQueue, JobsError> {
        let fail = |e: &dyn std::fmt::Display| JobsError::Storage {
            url: url.redacted(),
            message: e.to_string(),
        };
        let heartbeat = HEARTBEAT;
        let storages = match url {
            DatabaseUrl::Sqlite(path) => {
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .busy_timeout(Duration::from_secs(15));
                let pool: SqlitePool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(options)
                    .await
                    .map_err(|e| fail(&e))?;
                SqliteStorage::setup(&pool).await.map_err(|e| fail(&e))?;
                let config = |queue: &str| {
                    apalis_sqlite::Config::default()
                        .queue(queue)
                        .heartbeat_interval(heartbeat)
                };
                Storages::Sqlite {
                    create_user: SqliteStorage::new(&pool).with_config(config(CREATE_USER_QUEUE)),
                    update_user: SqliteStorage::new(&pool).with_config(config(UPDATE_USER_QUEUE)),
                }
            }
            DatabaseUrl::Postgres(raw) => {
                let options = PgConnectOptions::from_str(raw).map_err(|e| fail(&e))?;
                let pool = PgPool::connect_with(options).await.map_err(|e| fail(&e))?;
                PostgresStorage::setup(&pool).await.map_err(|e| fail(&e))?;
                let config = |queue: &str| {
                    apalis_postgres::Config::default()
                        .queue(queue)
                        .heartbeat_interval(heartbeat)
                };
                Storages::Postgres {
                    create_user: PostgresStorage::new(&pool).with_config(config(CREATE_USER_QUEUE)),
                    update_user: PostgresStorage::new(&pool).with_config(config(UPDATE_USER_QUEUE)),
                }
            }
        };
        Ok(JobQueue {
            storages,
            heartbeat,
        })
    }

    /// Enqueues `create_mangopay_user(id)`.
    pub async fn create_mangopay_user(&self, id: i64) -> Result<(), JobsError> {
        let task = TaskBuilder::new(CreateMangopayUser { id })
            .max_attempts(MAX_ATTEMPTS)
            .build();
        with_storage!(&self.storages, create_user, |s| s
            .clone()
            .push_task(task)
            .await
            .map_err(|e| e.to_string()))
        .map_err(|message| JobsError::Enqueue {
            job: CREATE_USER_QUEUE,
            message,
        })
    }

    /// Enqueues `update_mangopay_user(id)`.
    pub async fn update_mangopay_user(&self, id: i64) -> Result<(), JobsError> {
        let task = TaskBuilder::new(UpdateMangopayUser { id })
            .max_attempts(MAX_ATTEMPTS)
            .build();
        with_storage!(&self.storages, update_user, |s| s
            .clone()
            .push_task(task)
            .await
            .map_err(|e| e.to_string()))
        .map_err(|message| JobsError::Enqueue {
            job: UPDATE_USER_QUEUE,
            message,
        })
    }

    /// How many jobs of this crate's queues are waiting, queued or running.
    pub async fn outstanding(&self) -> Result<u64, JobsError> {
        let mut stats = with_storage!(&self.storages, create_user, |s| s
            .fetch_by_queue()
            .await
            .map_err(|e| JobsError::Metrics(e.to_string())))?;
        stats.extend(with_storage!(&self.storages, update_user, |s| s
            .fetch_by_queue()
            .await
            .map_err(|e| JobsError::Metrics(e.to_string())))?);
        Ok(stats
            .iter()
            .filter(|s| s.title == "ACTIVE_JOBS")
            .map(|s| s.value.parse::<f64>().unwrap_or(0.0) as u64)
            .sum())
    }

    /// Waits until no job of this crate's queues is waiting or running, checking every
    /// `interval`; gives up after `timeout` with the number still outstanding.
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
                return Err(JobsError::Worker(format!(
                    "{left} job(s) still outstanding after {timeout:?}"
                )));
            }
            tokio::time::sleep(interval).await;
        }
    }
}
