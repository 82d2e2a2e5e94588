//! The job handlers: plain async functions taking a row id and the shared context.

use std::time::Duration;

use apalis::prelude::{AbortError, BoxDynError, Data};
use diesel_mangopay::models::MangopayUser;
use diesel_mangopay::{Db, Error, MangopayClient};

use crate::queue::{CreateMangopayUser, UpdateMangopayUser};

/// What every job needs: the database and the Mangopay client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct JobContext {
    /// The application's database.
    pub db: Db,
    /// The Mangopay client (its token is shared by every job).
    pub client: MangopayClient,
}

/// Why a job failed; `retryable` says whether the worker tries again.
#[derive(Debug, thiserror::Error)]
#[error("{job}({id}) failed{}: {source}", if *.retryable { " (will retry)" } else { "" })]
pub struct JobError {
    /// The job's name.
    pub job: &'static str,
    /// The row id it was given.
    pub id: i64,
    /// Whether trying again later can help.
    pub retryable: bool,
    /// The model error.
    #[source]
    pub source: Error,
}

/// The longest a job waits for Mangopay's rate limit to reset before failing the attempt.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(30);

/// Turns a model result into what apalis expects: transient errors come back as plain errors
/// (retried with backoff), permanent ones wrapped in `AbortError` (never retried). The row
/// already holds the error, written by the model.
async fn outcome(job: &'static str, id: i64, result: Result<(), Error>) -> Result<(), BoxDynError> {
    let Err(source) = result else {
        tracing::info!(job, id, "job done");
        return Ok(());
    };
    let retryable = source.is_retryable();
    if retryable && let Some(wait) = source.api().and_then(|e| e.retry_after()) {
        // Mangopay said when its rate limit resets; waiting here keeps the retry from being
        // spent before then.
        tokio::time::sleep(wait.min(MAX_RATE_LIMIT_WAIT)).await;
    }
    let error = JobError {
        job,
        id,
        retryable,
        source,
    };
    if retryable {
        tracing::warn!(job, id, error = %error, "job failed, will retry");
        Err(Box::new(error))
    } else {
        tracing::error!(job, id, error = %error, "job failed, not retrying");
        Err(Box::new(AbortError::new(error)))
    }
}

/// `create_mangopay_user(id)`: creates the user at Mangopay. A row that already has a
/// Mangopay id sends nothing; a crashed earlier attempt is finished with its own idempotency
/// key, never duplicated.
pub async fn create_mangopay_user(
    job: CreateMangopayUser,
    ctx: Data<JobContext>,
) -> Result<(), BoxDynError> {
    let result = async {
        let mut user = MangopayUser::get(&ctx.db, job.id).await?;
        user.create(&ctx.db, &ctx.client).await
    }
    .await;
    outcome("create_mangopay_user", job.id, result).await
}

/// `update_mangopay_user(id)`: sends the row's fields to Mangopay (`PUT`).
pub async fn update_mangopay_user(
    job: UpdateMangopayUser,
    ctx: Data<JobContext>,
) -> Result<(), BoxDynError> {
    let result = async {
        let mut user = MangopayUser::get(&ctx.db, job.id).await?;
        user.update(&ctx.db, &ctx.client).await
    }
    .await;
    outcome("update_mangopay_user", job.id, result).await
}
