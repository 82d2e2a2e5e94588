//! The worker: one apalis worker per queue under one monitor, graceful shutdown, and the
//! resumption of creates that a crash left unconfirmed.

use std::future::Future;
use std::time::Duration;

use apalis::layers::retry::{
    HasherRng, RetryPolicy, backoff::ExponentialBackoffMaker, backoff::MakeBackoff,
};
use apalis::prelude::{
    AbortError, BackendExt, BoxDynError, Monitor, ParallelizeExt, WorkerBuilder, WorkerBuilderExt,
};
use diesel_mangopay::models::MangopayUser;

use crate::handlers::{JobContext, create_mangopay_user, update_mangopay_user};
use crate::queue::{JobQueue, JobsError, MAX_ATTEMPTS, with_storage};

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Jobs run at once, per queue.
    pub concurrency: usize,
    /// How long in-flight jobs may take to finish after a shutdown signal.
    pub shutdown_timeout: Duration,
    /// How often an idle worker looks for new jobs.
    pub poll_interval: Duration,
    /// How often to re-enqueue creates left pending (unconfirmed) for longer than this
    /// interval; also done once at start.
    pub resume_interval: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            concurrency: 4,
            shutdown_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_millis(500),
            resume_interval: Duration::from_secs(600),
        }
    }
}

/// Enqueues a create for every user whose create was started and never confirmed (the worker
/// running it crashed, or its retries ran out) and that has not been touched for `idle_for`.
/// The create resends the same idempotency key, so this can never duplicate a user. Returns
/// how many were enqueued.
pub async fn resume_pending_creates(
    ctx: &JobContext,
    queue: &JobQueue,
    idle_for: Duration,
) -> Result<usize, JobsError> {
    let ids = MangopayUser::pending_creates(&ctx.db, idle_for).await?;
    for id in &ids {
        queue.create_mangopay_user(*id).await?;
    }
    if !ids.is_empty() {
        tracing::info!(count = ids.len(), ?ids, "resumed unconfirmed creates");
    }
    Ok(ids.len())
}

/// A name unique to this process, so that workers on several machines never share one: the
/// job storage re-assigns the jobs of a worker that stopped sending heartbeats by its name.
fn worker_name(queue: &str) -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".to_owned());
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    format!("{queue}@{host}:{}:{started}", std::process::id())
}

fn is_transient(error: &BoxDynError) -> bool {
    error.downcast_ref::<AbortError>().is_none()
}

/// Builds one worker for `$storage` running `$handler`, with the layers in the order that
/// keeps one in-flight run per job: parallelize, concurrency, then retry with backoff.
macro_rules! worker {
    ($name:expr, $storage:expr, $ctx:expr, $options:expr, $handler:expr) => {{
        let (name, storage, ctx, options) = ($name, $storage, $ctx, $options);
        move |_restarts: usize| {
            let backoff = ExponentialBackoffMaker::new(
                Duration::from_secs(1),
                Duration::from_secs(60),
                0.5,
                HasherRng::default(),
            )
            .expect("valid backoff bounds")
            .make_backoff();
            WorkerBuilder::new(name.clone())
                .backend(storage.clone().poll_with_interval(options.poll_interval))
                .data(ctx.clone())
                .parallelize(tokio::spawn)
                .concurrency(options.concurrency)
                .retry(
                    RetryPolicy::retries(MAX_ATTEMPTS - 1)
                        .with_backoff(backoff)
                        .retry_if(is_transient),
                )
                .build($handler)
        }
    }};
}

/// Runs the workers of every queue until `shutdown` resolves, then lets in-flight jobs finish
/// (up to `options.shutdown_timeout`). Resumes unconfirmed creates at start and every
/// `options.resume_interval`.
pub async fn run_worker<S>(
    ctx: JobContext,
    queue: JobQueue,
    options: WorkerOptions,
    shutdown: S,
) -> Result<(), JobsError>
where
    S: Future<Output = ()> + Send + 'static,
{
    resume_pending_creates(&ctx, &queue, Duration::ZERO).await?;
    let resumer = {
        let (ctx, queue, every) = (ctx.clone(), queue.clone(), options.resume_interval);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = resume_pending_creates(&ctx, &queue, every).await {
                    tracing::warn!(error = %e, "could not resume pending creates");
                }
            }
        })
    };
    let create_name = worker_name(crate::CREATE_USER_QUEUE);
    let update_name = worker_name(crate::UPDATE_USER_QUEUE);
    tracing::info!(concurrency = options.concurrency, heartbeat = ?queue.heartbeat, "worker starting");
    let monitor = Monitor::new().shutdown_timeout(options.shutdown_timeout);
    let monitor = with_storage!(&queue.storages, |create_user, update_user| monitor
        .register(worker!(
            create_name,
            create_user.clone(),
            ctx.clone(),
            options.clone(),
            create_mangopay_user
        ))
        .register(worker!(
            update_name,
            update_user.clone(),
            ctx.clone(),
            options.clone(),
            update_mangopay_user
        )));
    let result = monitor
        .run_with_signal(async move {
            shutdown.await;
            tracing::info!("shutdown requested; letting in-flight jobs finish");
            Ok(())
        })
        .await;
    resumer.abort();
    tracing::info!("worker stopped");
    result.map_err(|e| JobsError::Worker(e.to_string()))
}
