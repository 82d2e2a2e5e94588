//! The jobs: enqueue helpers, the worker on both backends, retries, validation errors kept
//! and not retried, resumed creates, graceful shutdown of the worker process.

use std::time::Duration;

use diesel_mangopay::{MangopayLegalUser, MangopayNaturalUser, SyncState};
use diesel_mangopay_jobs::{JobContext, JobQueue, WorkerOptions, run_worker};
use tokio::sync::oneshot;

use crate::both_backends;
use crate::support::{Env, WorkerProcess, legal_owner, natural_owner};

/// A worker running in this process until the returned sender is dropped or used.
fn start_worker(env: &Env, queue: &JobQueue) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let ctx = JobContext {
        db: env.db.clone(),
        client: env.client.clone(),
    };
    let options = WorkerOptions {
        poll_interval: Duration::from_millis(50),
        ..WorkerOptions::default()
    };
    let queue = queue.clone();
    let handle = tokio::spawn(async move {
        run_worker(ctx, queue, options, async move {
            let _ = stopped.await;
        })
        .await
        .expect("the worker runs and stops cleanly");
    });
    (stop, handle)
}

async fn idle(queue: &JobQueue) {
    queue
        .wait_until_idle(Duration::from_millis(50), Duration::from_secs(60))
        .await
        .expect("the queue drains");
}

fn posts_to(env: &Env, path_end: &str) -> Vec<u16> {
    env.sandbox()
        .request_log()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with(path_end))
        .map(|r| r.status)
        .collect()
}

both_backends!(
    the_worker_creates_and_updates_users_from_the_queue,
    |env: Env| async move {
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        let mut natural = natural_owner();
        natural.save(&env.db).await.unwrap();
        let mut legal = legal_owner();
        legal.save(&env.db).await.unwrap();
        queue
            .create_mangopay_user(natural.id.unwrap())
            .await
            .unwrap();
        queue.create_mangopay_user(legal.id.unwrap()).await.unwrap();
        assert_eq!(queue.outstanding().await.unwrap(), 2);

        let (stop, worker) = start_worker(&env, &queue);
        idle(&queue).await;
        let natural = MangopayNaturalUser::get(&env.db, natural.id.unwrap())
            .await
            .unwrap();
        let legal = MangopayLegalUser::get(&env.db, legal.id.unwrap())
            .await
            .unwrap();
        assert_eq!(natural.sync().state, SyncState::Synced);
        assert_eq!(legal.sync().state, SyncState::Synced);
        assert!(env.sandbox().user(natural.mangopay_id().unwrap()).is_some());
        assert!(env.sandbox().user(legal.mangopay_id().unwrap()).is_some());

        let mut natural = natural;
        natural.tag = Some("updated through the queue".into());
        natural.save(&env.db).await.unwrap();
        queue
            .update_mangopay_user(natural.id.unwrap())
            .await
            .unwrap();
        idle(&queue).await;
        assert_eq!(
            env.sandbox().user(natural.mangopay_id().unwrap()).unwrap()["Tag"],
            "updated through the queue"
        );
        assert_eq!(env.sandbox().user_count(), 2);
        stop.send(()).unwrap();
        worker.await.unwrap();
    }
);

both_backends!(
    transient_errors_are_retried_with_backoff,
    |env: Env| async move {
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        env.warm_up().await;
        let mut user = natural_owner();
        user.save(&env.db).await.unwrap();
        env.sandbox().knobs().fail_next(2);
        queue.create_mangopay_user(user.id.unwrap()).await.unwrap();
        let started = std::time::Instant::now();
        let (stop, worker) = start_worker(&env, &queue);
        idle(&queue).await;
        let user = MangopayNaturalUser::get(&env.db, user.id.unwrap())
            .await
            .unwrap();
        assert_eq!(user.sync().state, SyncState::Synced);
        assert_eq!(posts_to(&env, "/users/natural"), [500, 500, 200]);
        assert!(
            started.elapsed() >= Duration::from_millis(1400),
            "retries waited: {:?}",
            started.elapsed()
        );
        assert_eq!(env.sandbox().user_count(), 1);
        stop.send(()).unwrap();
        worker.await.unwrap();
    }
);

both_backends!(
    validation_errors_are_kept_on_the_row_and_not_retried,
    |env: Env| async move {
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        env.sandbox().knobs().set_blocked_countries(&["FR"]);
        let mut user = natural_owner();
        user.save(&env.db).await.unwrap();
        queue.create_mangopay_user(user.id.unwrap()).await.unwrap();
        let (stop, worker) = start_worker(&env, &queue);
        idle(&queue).await;
        // Longer than the first retry's backoff: a retry would have happened by now.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            posts_to(&env, "/users/natural"),
            [400],
            "sent once, not retried"
        );
        let user = MangopayNaturalUser::get(&env.db, user.id.unwrap())
            .await
            .unwrap();
        let sync = user.sync();
        assert_eq!(sync.state, SyncState::Failed);
        assert_eq!(sync.attempts, 1);
        assert_eq!(
            sync.last_error.as_ref().unwrap().errors["Nationality"],
            "The Nationality used is blocked"
        );
        stop.send(()).unwrap();
        worker.await.unwrap();
    }
);

both_backends!(
    a_starting_worker_resumes_unconfirmed_creates,
    |env: Env| async move {
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        env.warm_up().await;
        env.sandbox().knobs().fail_next(1);
        let mut user = natural_owner();
        user.create(&env.db, &env.client).await.unwrap_err();
        assert_eq!(user.sync().state, SyncState::Pending);
        let key = user.sync().create_idempotency_key.clone().unwrap();
        assert_eq!(
            queue.outstanding().await.unwrap(),
            0,
            "nothing was enqueued"
        );

        let (stop, worker) = start_worker(&env, &queue);
        let user = env.until_synced(user.id.unwrap()).await;
        assert_eq!(
            user.sync().create_idempotency_key.as_deref(),
            Some(key.as_str())
        );
        assert_eq!(env.sandbox().user_count(), 1);
        stop.send(()).unwrap();
        worker.await.unwrap();
    }
);

both_backends!(
    sigterm_lets_the_in_flight_job_finish,
    |env: Env| async move {
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        let mut user = natural_owner();
        user.save(&env.db).await.unwrap();
        let mut worker = WorkerProcess::spawn(&env, &["--shutdown-timeout", "20"]);
        // Each answer takes 1.5 s: the job is still in flight when the signal arrives.
        env.sandbox()
            .knobs()
            .set_latency(Duration::from_millis(1500));
        queue.create_mangopay_user(user.id.unwrap()).await.unwrap();
        env.until_mangopay_has_users(1).await;
        worker.signal(libc::SIGTERM);
        let status = worker.wait(Duration::from_secs(30)).await;
        assert!(status.success(), "the worker exits cleanly: {status:?}");
        let user = MangopayNaturalUser::get(&env.db, user.id.unwrap())
            .await
            .unwrap();
        assert_eq!(
            user.sync().state,
            SyncState::Synced,
            "the in-flight job finished before exit"
        );
        assert_eq!(user.mangopay_id(), env.sandbox().users()[0]["Id"].as_str());
    }
);
