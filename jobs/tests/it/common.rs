//! Helpers of the jobs' tests: an in-process worker, waiting for the queue, reading what the
//! sandbox received.

use std::time::Duration;

use diesel_mangopay::{Db, MangopayClient, MangopayNaturalUser};
use diesel_mangopay_jobs::{JobContext, JobQueue, WorkerOptions, run_worker};
use tokio::sync::oneshot;

use crate::support::Env;

/// The options of the tests' workers: quick polling, the standard retry policy, no periodic
/// sweep unless a test asks for one.
pub fn options() -> WorkerOptions {
    WorkerOptions {
        poll_interval: Duration::from_millis(50),
        sweep_interval: None,
        ..WorkerOptions::default()
    }
}

/// A worker running in this process until [`Worker::stop`].
pub struct Worker {
    stop: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<()>,
}

impl Worker {
    /// Stops taking jobs, lets those in flight finish and waits for the worker to stop.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.handle).await.expect("the worker stops cleanly");
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// A worker on `env`'s database and client with [`options`].
pub fn start_worker(env: &Env, queue: &JobQueue) -> Worker {
    start_worker_with(env.db.clone(), env.client.clone(), queue, options())
}

/// A worker with its own database pool and client, as another process would have.
pub fn start_worker_with(
    db: Db,
    client: MangopayClient,
    queue: &JobQueue,
    options: WorkerOptions,
) -> Worker {
    let (stop, stopped) = oneshot::channel::<()>();
    let queue = queue.clone();
    let handle = tokio::spawn(async move {
        run_worker(JobContext { db, client }, queue, options, async move {
            let _ = stopped.await;
        })
        .await
        .expect("the worker runs and stops cleanly");
    });
    Worker {
        stop: Some(stop),
        handle,
    }
}

/// Waits until no job is waiting or running (at most a minute).
pub async fn idle(queue: &JobQueue) {
    queue
        .wait_until_idle(Duration::from_millis(50), Duration::from_secs(60))
        .await
        .expect("the queue drains");
}

/// The statuses of the POSTs the sandbox received on paths ending with `path_end`.
pub fn posts_to(env: &Env, path_end: &str) -> Vec<u16> {
    env.sandbox()
        .request_log()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with(path_end))
        .map(|r| r.status)
        .collect()
}

/// The idempotency keys of the POSTs creating users, in order.
pub fn keys_sent(env: &Env) -> Vec<String> {
    env.sandbox()
        .request_log()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.contains("/users/"))
        .filter_map(|r| r.idempotency_key)
        .collect()
}

/// The users at Mangopay whose e-mail is `email`.
pub fn users_with_email(env: &Env, email: &str) -> usize {
    env.sandbox()
        .users()
        .iter()
        .filter(|u| u["Email"] == email)
        .count()
}

/// A natural owner with its own e-mail, saved.
pub async fn saved_user(env: &Env, email: &str) -> MangopayNaturalUser {
    let mut user = crate::support::natural_owner();
    user.email = email.to_owned();
    user.save(&env.db).await.unwrap();
    user
}
