#![deny(missing_docs)]
//! Background jobs for `diesel-mangopay`, run by apalis.
//!
//! Job arguments are row ids, never models: a job loads the row when it runs, so it always
//! works on the latest data. The job storage follows `DATABASE_URL`: SQLite (apalis-sqlite,
//! in the same file as the tables) or PostgreSQL (apalis-postgres, schema `apalis`), so many
//! workers on many machines can share one PostgreSQL.
//!
//! - [`JobQueue`]: what an application calls from its own code to enqueue work.
//! - [`run_worker`]: the worker loop (the `diesel-mangopay-worker` binary runs it).
//!
//! Transient failures (timeouts, 5xx, rate limits) are retried with exponential backoff;
//! validation errors and other 4xx answers are recorded on the row and not retried.
//!
//! ```no_run
//! use diesel_mangopay::{Db, DatabaseUrl, MangopayNaturalUser, UserCategory};
//! use diesel_mangopay_jobs::JobQueue;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let url = DatabaseUrl::from_env()?;
//! let db = Db::connect(&url).await?;
//! let queue = JobQueue::connect(&url).await?;
//! let mut user = MangopayNaturalUser::builder()
//!     .first_name("Alex").last_name("Smith").email("alex@example.com")
//!     .user_category(UserCategory::Payer)
//!     .build()?;
//! user.save(&db).await?;
//! queue.create_mangopay_user(user.id.unwrap()).await?;
//! # Ok(()) }
//! ```

mod handlers;
mod queue;
mod worker;

pub use handlers::{JobContext, JobError, create_mangopay_user, update_mangopay_user};
pub use queue::{
    CREATE_USER_QUEUE, CreateMangopayUser, JobQueue, JobsError, MAX_ATTEMPTS, UPDATE_USER_QUEUE,
    UpdateMangopayUser,
};
pub use worker::{WorkerOptions, resume_pending_creates, run_worker};
