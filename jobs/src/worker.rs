//! The worker: one apalis worker on the queue, dispatching each job to its registered
//! handler; retries as new delayed tasks (a job waiting for its retry, a rate-limit reset or a
//! reconciliation holds no concurrency slot); and the sweep that hands out the rows whose work
//! is due.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::{
    AbortError, BackendExt, BoxDynError, Data, Monitor, ParallelizeExt, TaskId, WorkerBuilder,
    WorkerBuilderExt,
};
use apalis_cron::{CronScheduler, Tick};
use chrono::{DateTime, Utc};
use diesel_mangopay::sync::{self, Lease, SweepOptions};
use diesel_mangopay::{
    ApiError, Error, MangopayDocument, MangopayPage, MangopayPayOut, MangopayUboDeclaration,
};

use crate::job::Job;
use crate::queue::{JobQueue, JobsError, with_storage};
use crate::registry::{Entry, JobContext, Registry};

/// How failed jobs are retried: a failure that retrying may fix is retried as a new task,
/// after a backoff (or when Mangopay said: a rate-limit reset, the time an unknown outcome can
/// be reconciled), until `max_attempts` runs; then the row is left to the sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Runs of one job in all, the first included.
    pub max_attempts: u32,
    /// The first backoff; it doubles with each attempt.
    pub base: Duration,
    /// The longest backoff.
    pub max: Duration,
}

impl Default for RetryPolicy {
    /// Six runs, waiting 1, 2, 4, 8 and 16 seconds in between (60 seconds at most).
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait after attempt `attempt` (from 0) failed.
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.base
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(self.max)
    }
}

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Jobs run at once.
    pub concurrency: usize,
    /// How long in-flight jobs may take to finish after a shutdown signal.
    pub shutdown_timeout: Duration,
    /// How often an idle worker looks for new jobs.
    pub poll_interval: Duration,
    /// How failed jobs are retried.
    pub retry: RetryPolicy,
    /// How often to sweep (once at start, then at this interval); `None` never sweeps.
    pub sweep_interval: Option<Duration>,
    /// What the sweep looks for.
    pub sweep: SweepOptions,
    /// The job types this worker runs.
    pub registry: Registry,
    /// When the KYC sweep ([`kyc_sweep`]) queues the status update of every document awaiting
    /// validation, as a cron expression with seconds (UTC); `None` never. Default
    /// [`KYC_SCHEDULE`].
    pub kyc_schedule: Option<cron::Schedule>,
}

/// The KYC sweep's default schedule, django-mangopay's: every hour on the hour from 08:00 to
/// 17:00, Monday to Friday (UTC).
pub const KYC_SCHEDULE: &str = "0 0 8-17 * * Mon-Fri";

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            concurrency: 4,
            shutdown_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_millis(500),
            retry: RetryPolicy::default(),
            sweep_interval: Some(Duration::from_secs(60)),
            sweep: SweepOptions::default(),
            registry: Registry::standard(),
            kyc_schedule: Some(KYC_SCHEDULE.parse().expect("a valid cron expression")),
        }
    }
}

/// Why a job failed for good.
#[derive(Debug, thiserror::Error)]
#[error("{job}({id}) failed{}: {source}", if *.gave_up { " and gave up after its retries" } else { "" })]
pub struct JobError {
    /// The job's name.
    pub job: String,
    /// The row id it was given.
    pub id: i64,
    /// Whether it failed with an error that retrying may fix, after using up its retries (the
    /// sweep picks the row up later).
    pub gave_up: bool,
    /// The model error.
    #[source]
    pub source: Error,
}

/// A job name no handler is registered for.
#[derive(Debug, thiserror::Error)]
#[error("no handler is registered for job `{0}`")]
pub struct UnknownJob(pub String);

/// What every dispatch needs.
struct Shared {
    ctx: JobContext,
    queue: JobQueue,
    options: WorkerOptions,
}

/// Whether the error asks only to wait (Mangopay's rate limit, an unknown outcome to settle
/// by tag once Mangopay has had time): such waits do not count as attempts.
fn just_wait(e: &Error) -> bool {
    matches!(
        e,
        Error::OutcomeUnknown {
            retry_at: Some(_),
            ..
        }
    ) || e.api().is_some_and(rate_limited)
}

/// A rate-limit refusal, also when it refused the token request.
fn rate_limited(e: &ApiError) -> bool {
    match e {
        ApiError::RateLimited { .. } | ApiError::Mangopay { status: 429, .. } => true,
        ApiError::TokenUnavailable { source } => rate_limited(source),
        _ => false,
    }
}

/// The storage keeps a task's start time in whole seconds: rounded up, plus one second, so a
/// retry never runs before its time.
fn storage_delay(wait: Duration) -> Duration {
    let whole = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Duration::from_secs(whole + 1)
}

/// Runs one job: its handler, then what its result asks for. Every outcome is final for this
/// task: success, a retry scheduled as a new task, or a failure recorded (`AbortError`, so
/// apalis does not run it again on its own).
async fn dispatch(job: Job, task: TaskId, shared: Data<Arc<Shared>>) -> Result<(), BoxDynError> {
    let Some(entry) = shared.options.registry.entry(&job.name).cloned() else {
        tracing::error!(job = %job.name, id = job.id, "unknown job");
        return Err(Box::new(AbortError::new(UnknownJob(job.name))));
    };
    // The task's own token: a task apalis hands out again after its worker died takes the row
    // back at once.
    let lease = Lease::new(format!("task-{task}"));
    let result = (entry.handler)(shared.ctx.clone(), job.id, lease.clone()).await;
    let error = match result {
        Ok(None) => {
            tracing::info!(job = %job.name, id = job.id, "job done");
            return Ok(());
        }
        Ok(Some(at)) => return follow_up(&shared, &entry, &job, &lease, at).await,
        Err(Error::Busy { until, .. }) => {
            // Another worker holds the row; if it dies, its lease ends and the sweep hands the
            // row out again.
            tracing::info!(job = %job.name, id = job.id, %until, "row held by another worker");
            return Ok(());
        }
        Err(e) => e,
    };
    if !error.is_retryable() {
        tracing::error!(job = %job.name, id = job.id, error = %error, "job failed, not retrying");
        return Err(Box::new(AbortError::new(JobError {
            job: job.name,
            id: job.id,
            gave_up: false,
            source: error,
        })));
    }
    let policy = shared.options.retry;
    let next = if just_wait(&error) {
        job.attempt
    } else {
        job.attempt + 1
    };
    if next >= policy.max_attempts {
        if let Some(table) = entry.table {
            sync::release(&shared.ctx.db, table, job.id, &lease).await?;
        }
        tracing::warn!(job = %job.name, id = job.id, error = %error,
            "job failed and used up its retries; the sweep will pick the row up");
        return Err(Box::new(AbortError::new(JobError {
            job: job.name,
            id: job.id,
            gave_up: true,
            source: error,
        })));
    }
    let delay = storage_delay(
        error
            .retry_after()
            .unwrap_or_else(|| policy.backoff(job.attempt)),
    );
    // Reserve the row for the retry: the sweep leaves it alone, and the retry (or whoever
    // gets there first) takes it over.
    let reservation = Lease::reservation("retry");
    if let Some(table) = entry.table {
        let (db, until) = (&shared.ctx.db, delay + RESERVATION_MARGIN);
        let held = sync::hand_over(db, table, job.id, &lease, &reservation, until).await?;
        if !held {
            tracing::info!(job = %job.name, id = job.id, "row taken by another worker; not retrying");
            return Ok(());
        }
    }
    tracing::warn!(job = %job.name, id = job.id, attempt = job.attempt, ?delay, error = %error,
        "job failed, will retry");
    let retry = Job {
        attempt: next,
        ..job
    };
    if let Err(e) = shared.queue.enqueue_after(retry, delay).await {
        if let Some(table) = entry.table {
            sync::release(&shared.ctx.db, table, job.id, &reservation).await?;
        }
        return Err(Box::new(e));
    }
    Ok(())
}

/// How long past its start time a job waiting in the queue keeps its row reserved; a job that
/// has not started by then is presumed lost, and the sweep hands the row out again.
const RESERVATION_MARGIN: Duration = Duration::from_secs(30);

/// A job asked for the next status check of its row's object at `at`: the row is handed from
/// the job's lease to a reservation for the follow job, and the follow job is enqueued for
/// then. When another worker holds the row, that worker follows it; when the enqueue fails,
/// the check stays due on the row and the sweep hands it out.
async fn follow_up(
    shared: &Shared,
    entry: &Entry,
    job: &Job,
    lease: &Lease,
    at: DateTime<Utc>,
) -> Result<(), BoxDynError> {
    let (Some(table), Some(follow)) = (entry.table, entry.follow.clone()) else {
        tracing::error!(job = %job.name, id = job.id, "a check was asked for a row no job follows");
        return Ok(());
    };
    let delay = storage_delay((at - Utc::now()).to_std().unwrap_or_default());
    let reservation = Lease::reservation("follow");
    let db = &shared.ctx.db;
    let until = delay + RESERVATION_MARGIN;
    if !sync::hand_over(db, table, job.id, lease, &reservation, until).await? {
        tracing::info!(job = %job.name, id = job.id, "row held by another worker, which follows it");
        return Ok(());
    }
    if let Err(e) = shared
        .queue
        .enqueue_after(Job::new(follow.clone(), job.id), delay)
        .await
    {
        sync::release(db, table, job.id, &reservation).await?;
        return Err(Box::new(e));
    }
    tracing::info!(job = %job.name, id = job.id, next = %follow, %at, "job done; next check planned");
    Ok(())
}

/// Hands out the rows whose work is due (see [`diesel_mangopay::sync::sweep`]): a create job
/// for rows not yet created, an update job for created rows still dirty, a follow job for
/// followed rows whose status check is due and whose job was lost; and, when `ctx`'s handle
/// has a pay-out-succeeded hook, the hooks owed by pay-outs recorded `SUCCEEDED` without it. Each row is leased to
/// the job it is handed to, so nothing a live worker holds, and nothing handed out by another
/// sweep, is enqueued again. Returns how many jobs it enqueued.
pub async fn sweep(
    ctx: &JobContext,
    queue: &JobQueue,
    registry: &Registry,
    options: &SweepOptions,
) -> Result<usize, JobsError> {
    let lease = Lease::reservation("sweep");
    let mut enqueued = 0;
    for target in &registry.sweeps {
        let Some(due) = sync::sweep::claim_due(&ctx.db, target.table, options, &lease).await?
        else {
            tracing::debug!(table = target.table.name(), "another worker is sweeping");
            continue;
        };
        for row in due {
            let name = match (&target.update, row.update) {
                (Some(update), true) => update,
                (None, true) => {
                    // Only a row saved while its create was in flight gets here: its resource
                    // has no update, so nothing is owed to Mangopay.
                    tracing::warn!(
                        table = target.table.name(),
                        id = row.id,
                        "a row of a resource Mangopay does not update is marked dirty; ignored"
                    );
                    continue;
                }
                (_, false) => &target.create,
            };
            queue.enqueue(Job::new(name.clone(), row.id)).await?;
            enqueued += 1;
        }
        if let Some(follow) = &target.follow {
            let due = diesel_mangopay::sync::follow::claim_due(
                &ctx.db,
                target.table,
                &lease,
                options.lease,
                options.batch,
            )
            .await?;
            for id in due {
                queue.enqueue(Job::new(follow.clone(), id)).await?;
                enqueued += 1;
            }
        }
    }
    if enqueued > 0 {
        tracing::info!(enqueued, "sweep handed out due rows");
    }
    // Pay-outs recorded SUCCEEDED through a handle without this worker's hook.
    let hooks_run = MangopayPayOut::run_owed_hooks(&ctx.db, options.batch).await?;
    if hooks_run > 0 {
        tracing::info!(hooks_run, "sweep ran owed pay-out-succeeded hooks");
    }
    Ok(enqueued)
}

/// What the worker runs on its KYC schedule ([`WorkerOptions::kyc_schedule`]):
/// - queues `update_mangopay_document_status` for every KYC document awaiting validation,
///   and `update_mangopay_ubo_declaration_status` for every UBO declaration awaiting it; a
///   status update of one that no longer awaits validation sends nothing, so one queued
///   twice (two workers on the same schedule) costs one more read at most;
/// - queues `create_mangopay_document_and_pages_and_ask_for_validation` again for every
///   document submission that stopped half-way ([`MangopayDocument::submissions_to_resume`]),
///   and the UBO declaration job for every declaration submission that did
///   ([`MangopayUboDeclaration::submissions_to_resume`]); the jobs resume where they stopped
///   and never send a page or a UBO twice;
/// - removes staged page copies no page needs any more
///   ([`MangopayPage::remove_orphaned_staged_files`], those older than [`STAGED_GRACE`]).
///
/// Returns how many jobs it queued.
pub async fn kyc_sweep(ctx: &JobContext, queue: &JobQueue) -> Result<usize, JobsError> {
    let awaiting = MangopayDocument::awaiting_validation(&ctx.db).await?;
    for &id in &awaiting {
        queue
            .enqueue(Job::new(crate::job::UPDATE_MANGOPAY_DOCUMENT_STATUS, id))
            .await?;
    }
    let resumed = MangopayDocument::submissions_to_resume(&ctx.db).await?;
    for &id in &resumed {
        queue
            .enqueue(Job::new(
                crate::job::CREATE_MANGOPAY_DOCUMENT_AND_PAGES_AND_ASK_FOR_VALIDATION,
                id,
            ))
            .await?;
    }
    let declarations = MangopayUboDeclaration::awaiting_validation(&ctx.db).await?;
    for &id in &declarations {
        queue
            .enqueue(Job::new(
                crate::job::UPDATE_MANGOPAY_UBO_DECLARATION_STATUS,
                id,
            ))
            .await?;
    }
    let declarations_resumed = MangopayUboDeclaration::submissions_to_resume(&ctx.db).await?;
    for &id in &declarations_resumed {
        queue
            .enqueue(Job::new(
                crate::job::CREATE_MANGOPAY_UBO_DECLARATION_AND_UBOS_AND_ASK_FOR_VALIDATION,
                id,
            ))
            .await?;
    }
    let removed = MangopayPage::remove_orphaned_staged_files(&ctx.db, STAGED_GRACE).await?;
    tracing::info!(
        status_updates = awaiting.len() + declarations.len(),
        submissions_resumed = resumed.len() + declarations_resumed.len(),
        staged_removed = removed,
        "KYC sweep done"
    );
    Ok(awaiting.len() + resumed.len() + declarations.len() + declarations_resumed.len())
}

/// How old a staged page copy no page refers to must be before the KYC sweep removes it: a
/// page being added has its copy written just before its row.
pub const STAGED_GRACE: Duration = Duration::from_secs(3600);

async fn kyc_tick(_tick: Tick, shared: Data<Arc<Shared>>) -> Result<(), BoxDynError> {
    kyc_sweep(&shared.ctx, &shared.queue).await?;
    Ok(())
}

/// A name unique to this process, so that workers on several machines never share one: the
/// job storage hands the tasks of a worker that stopped sending heartbeats to another by name.
fn worker_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".to_owned());
    let token = Lease::random_for(&std::process::id().to_string());
    format!("{}@{host}:{}", crate::QUEUE, token.owner())
}

/// Runs the worker until `shutdown` resolves, then lets in-flight jobs finish (up to
/// `options.shutdown_timeout`). Sweeps at start and every `options.sweep_interval`.
///
/// To share one rate budget between several workers on one database, call
/// [`MangopayClient::share_budget`](diesel_mangopay::MangopayClient::share_budget) on the
/// context's client first.
pub async fn run_worker<S>(
    ctx: JobContext,
    queue: JobQueue,
    options: WorkerOptions,
    shutdown: S,
) -> Result<(), JobsError>
where
    S: Future<Output = ()> + Send + 'static,
{
    let sweeper = options.sweep_interval.map(|every| {
        let (ctx, queue, registry, sweep_options) = (
            ctx.clone(),
            queue.clone(),
            options.registry.clone(),
            options.sweep.clone(),
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(e) = sweep(&ctx, &queue, &registry, &sweep_options).await {
                    tracing::warn!(error = %e, "sweep failed");
                }
            }
        })
    });
    let name = worker_name();
    let kyc_name = format!("{name}-kyc");
    tracing::info!(concurrency = options.concurrency, heartbeat = ?queue.heartbeat,
        jobs = ?options.registry, "worker starting");
    let shared = Arc::new(Shared {
        ctx,
        queue: queue.clone(),
        options: options.clone(),
    });
    let monitor = Monitor::new().shutdown_timeout(options.shutdown_timeout);
    let monitor = with_storage!(&queue.storage, |storage| {
        let storage = storage.clone();
        let (shared, options) = (shared.clone(), options.clone());
        monitor.register(move |_restarts: usize| {
            WorkerBuilder::new(name.clone())
                .backend(storage.clone().poll_with_interval(options.poll_interval))
                .data(shared.clone())
                .parallelize(tokio::spawn)
                .concurrency(options.concurrency)
                .build(dispatch)
        })
    });
    let kyc = options.kyc_schedule.clone().filter(|_| {
        options
            .registry
            .knows(crate::job::UPDATE_MANGOPAY_DOCUMENT_STATUS)
    });
    let monitor = match kyc {
        Some(schedule) => monitor.register(move |_restarts: usize| {
            WorkerBuilder::new(kyc_name.clone())
                .backend(CronScheduler::new(schedule.clone()))
                .data(shared.clone())
                .build(kyc_tick)
        }),
        None => monitor,
    };
    let result = monitor
        .run_with_signal(async move {
            shutdown.await;
            tracing::info!("shutdown requested; letting in-flight jobs finish");
            Ok(())
        })
        .await;
    if let Some(sweeper) = sweeper {
        sweeper.abort();
    }
    tracing::info!("worker stopped");
    result.map_err(|e| JobsError::Worker(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_in_whole_seconds_never_run_early() {
        assert_eq!(storage_delay(Duration::ZERO), Duration::from_secs(1));
        assert_eq!(
            storage_delay(Duration::from_millis(300)),
            Duration::from_secs(2)
        );
        assert_eq!(
            storage_delay(Duration::from_secs(2)),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let p = RetryPolicy::default();
        let waits: Vec<u64> = (0..8).map(|a| p.backoff(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(p.backoff(200), Duration::from_secs(60));
    }
}
