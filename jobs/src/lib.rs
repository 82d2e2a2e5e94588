#![deny(missing_docs)]
//! Background jobs for `diesel-mangopay`, run by apalis.
//!
//! Every job is a [`Job`]: the name of a registered operation and a row id (rows are loaded
//! when the job runs, so it always works on the latest data). One queue holds them all, in
//! the storage `DATABASE_URL` selects: SQLite (apalis-sqlite, in the same file as the tables)
//! or PostgreSQL (apalis-postgres, schema `apalis`), so many workers on many machines can share
//! one PostgreSQL.
//!
//! - [`JobQueue`]: what an application calls from its own code to enqueue work.
//! - [`Registry`]: which jobs a worker runs; adding a job type is one line there. Objects
//!   Mangopay settles later (pay-outs, recipients) are followed: their create job plans a
//!   status check, and each check plans the next while they wait, under a
//!   [`Polling`](diesel_mangopay::Polling) policy with a cap
//!   ([`diesel_mangopay::sync::follow`]).
//! - [`run_worker`]: the worker loop (the `diesel-mangopay-worker` binary runs it), with the
//!   [`sweep`] that hands out rows whose create or update is due, whatever happened to their
//!   jobs.
//!
//! A failure that retrying may fix (a timeout, a 5xx, a rate limit, an unknown outcome) is
//! retried as a new delayed task, so the wait holds no concurrency slot; validation errors and
//! other 4xx answers are recorded on the row and not retried. When the retries run out, the
//! row stays `pending` (or `dirty`) and the sweep hands it out again later: an outage longer
//! than the retry budget loses nothing.
//!
//! ```no_run
//! use diesel_mangopay::{Db, DatabaseUrl, MangopayNaturalUser, UserCategory};
//! use diesel_mangopay_jobs::{Job, JobQueue};
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
//! queue.enqueue(Job::create_mangopay_user(user.id.unwrap())).await?;
//! # Ok(()) }
//! ```

mod job;
mod queue;
mod registry;
mod worker;

pub use job::{
    CREATE_MANGOPAY_BANK_ACCOUNT, CREATE_MANGOPAY_CARD_REGISTRATION,
    CREATE_MANGOPAY_DOCUMENT_AND_PAGES_AND_ASK_FOR_VALIDATION, CREATE_MANGOPAY_PAY_IN,
    CREATE_MANGOPAY_PAY_OUT, CREATE_MANGOPAY_RECIPIENT, CREATE_MANGOPAY_REFUND,
    CREATE_MANGOPAY_TRANSFER, CREATE_MANGOPAY_UBO_DECLARATION_AND_UBOS_AND_ASK_FOR_VALIDATION,
    CREATE_MANGOPAY_USER, CREATE_MANGOPAY_WALLET, Job, UPDATE_MANGOPAY_DOCUMENT_STATUS,
    UPDATE_MANGOPAY_PAY_IN, UPDATE_MANGOPAY_PAY_OUT, UPDATE_MANGOPAY_RECIPIENT,
    UPDATE_MANGOPAY_UBO_DECLARATION_STATUS, UPDATE_MANGOPAY_USER, UPDATE_MANGOPAY_WALLET,
};
pub use queue::{JobQueue, JobsError, QUEUE};
pub use registry::{JobContext, Registry};
pub use worker::{
    JobError, KYC_SCHEDULE, RetryPolicy, STAGED_GRACE, UnknownJob, WorkerOptions, kyc_sweep,
    run_worker, sweep,
};
