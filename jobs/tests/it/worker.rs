//! The jobs: enqueue helpers, the worker on both backends, retries as delayed tasks,
//! validation errors kept and not retried, the sweep resuming creates, graceful shutdown of the
//! worker process.

use std::time::Duration;

use diesel_mangopay::{MangopayLegalUser, MangopayNaturalUser, SyncState};
use diesel_mangopay_jobs::{Job, JobQueue};

use crate::both_backends;
use crate::common::{idle, options, posts_to, start_worker, start_worker_with};
use crate::process::spawn_worker;
use crate::support::{Env, legal_owner, natural_owner};

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

        let worker = start_worker(&env, &queue);
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
        let tag = env.sandbox().user(natural.mangopay_id().unwrap()).unwrap()["Tag"].clone();
        assert!(
            tag.as_str()
                .unwrap()
                .starts_with("updated through the queue dm:"),
            "{tag}"
        );
        let natural = MangopayNaturalUser::get(&env.db, natural.id.unwrap())
            .await
            .unwrap();
        assert_eq!(natural.tag.as_deref(), Some("updated through the queue"));
        assert!(!natural.sync().dirty);
        assert_eq!(env.sandbox().user_count(), 2);
        worker.stop().await;
    }
);

both_backends!(
    transient_errors_are_retried_with_backoff_as_new_tasks,
    |env: Env| async move {
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        env.warm_up().await;
        let mut user = natural_owner();
        user.save(&env.db).await.unwrap();
        env.sandbox().knobs().set_unavailable(true);
        queue.create_mangopay_user(user.id.unwrap()).await.unwrap();
        let worker = start_worker(&env, &queue);
        crate::support::eventually("two failed attempts", Duration::from_secs(30), || {
            let env = &env;
            async move { posts_to(env, "/users/natural").len() >= 2 }
        })
        .await;
        // While the job waits for its next attempt, the row stays held for it (the failed
        // attempt frees its own lease just before the retry's reservation is taken).
        let id = user.id.unwrap();
        crate::support::eventually(
            "the row held for the retry",
            Duration::from_secs(10),
            || {
                let env = &env;
                async move {
                    let waiting = MangopayNaturalUser::get(&env.db, id).await.unwrap();
                    waiting.sync().state == SyncState::Pending
                        && waiting.sync().lease_until.is_some()
                }
            },
        )
        .await;
        env.sandbox().knobs().set_unavailable(false);
        idle(&queue).await;
        let user = MangopayNaturalUser::get(&env.db, user.id.unwrap())
            .await
            .unwrap();
        assert_eq!(user.sync().state, SyncState::Synced);
        let statuses = posts_to(&env, "/users/natural");
        assert_eq!(statuses.last(), Some(&200), "{statuses:?}");
        assert!(statuses[..statuses.len() - 1].iter().all(|s| *s == 503));
        let keys = crate::common::keys_sent(&env);
        assert!(keys.windows(2).all(|k| k[0] == k[1]), "one key: {keys:?}");
        assert_eq!(env.sandbox().user_count(), 1);
        worker.stop().await;
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
        let worker = start_worker(&env, &queue);
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
        assert!(sync.create_idempotency_key.is_none(), "nothing was created");
        worker.stop().await;
    }
);

both_backends!(
    a_starting_worker_sweeps_up_unconfirmed_creates,
    |env: Env| async move {
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        env.warm_up().await;
        env.sandbox().knobs().set_unavailable(true);
        let mut user = natural_owner();
        user.create(&env.db, &env.client).await.unwrap_err();
        assert_eq!(user.sync().state, SyncState::Pending);
        let key = user.sync().create_idempotency_key.clone().unwrap();
        assert_eq!(
            queue.outstanding().await.unwrap(),
            0,
            "nothing was enqueued"
        );
        env.sandbox().knobs().set_unavailable(false);

        let worker = start_worker_with(
            env.db.clone(),
            env.client.clone(),
            &queue,
            diesel_mangopay_jobs::WorkerOptions {
                sweep_interval: Some(Duration::from_secs(60)),
                ..options()
            },
        );
        let user = env
            .until_synced(user.id.unwrap(), Duration::from_secs(30))
            .await;
        assert_eq!(
            user.sync().create_idempotency_key.as_deref(),
            Some(key.as_str())
        );
        assert_eq!(env.sandbox().user_count(), 1);
        worker.stop().await;
    }
);

both_backends!(
    an_unknown_job_fails_without_touching_anything,
    |env: Env| async move {
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        queue.enqueue(Job::new("no_such_job", 1)).await.unwrap();
        queue
            .enqueue(Job::create_mangopay_user(999_999))
            .await
            .unwrap();
        let worker = start_worker(&env, &queue);
        idle(&queue).await;
        assert!(
            env.sandbox()
                .request_log()
                .iter()
                .all(|r| r.method != "POST" || r.path.ends_with("/oauth/token")),
            "nothing was sent for a missing row"
        );
        worker.stop().await;
    }
);

both_backends!(
    sigterm_lets_the_in_flight_job_finish,
    |env: Env| async move {
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        let mut user = natural_owner();
        user.save(&env.db).await.unwrap();
        let mut worker = spawn_worker(&env, &["--shutdown-timeout", "20"]);
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

both_backends!(
    a_job_waiting_for_the_rate_limit_holds_no_slot,
    |env: Env| async move {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};

        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        let client = crate::support::client_for(&env.sandbox);
        client
            .list("users", diesel_mangopay::client::PageRequest::default())
            .await
            .unwrap();
        // Mangopay's 15-minute budget is used up: the next call is answered 429.
        env.sandbox().knobs().set_rate_limit(Some(1));
        let ran = Arc::new(AtomicUsize::new(0));
        let counter = ran.clone();
        let registry = diesel_mangopay_jobs::Registry::standard().job("note", move |_ctx, _id| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        });
        let worker = start_worker_with(
            env.db.clone(),
            client,
            &queue,
            diesel_mangopay_jobs::WorkerOptions {
                concurrency: 1,
                registry,
                ..options()
            },
        );
        let mut user = natural_owner();
        user.save(&env.db).await.unwrap();
        queue.create_mangopay_user(user.id.unwrap()).await.unwrap();
        crate::support::eventually("the 429", Duration::from_secs(10), || {
            let env = &env;
            async move { posts_to(env, "/users/natural") == [429] }
        })
        .await;
        // One slot, and the create waits about 15 minutes for the budget: another job runs
        // at once.
        queue.enqueue(Job::new("note", 0)).await.unwrap();
        crate::support::eventually("the other job", Duration::from_secs(5), || {
            let ran = ran.clone();
            async move { ran.load(Ordering::SeqCst) == 1 }
        })
        .await;
        let waiting = MangopayNaturalUser::get(&env.db, user.id.unwrap())
            .await
            .unwrap();
        assert_eq!(waiting.sync().state, SyncState::Pending);
        let held_for = waiting.sync().lease_until.unwrap() - chrono::Utc::now();
        assert!(
            held_for > chrono::Duration::minutes(10),
            "held until the budget's reset: {held_for}"
        );
        // The other job is acknowledged just after its handler returns; what stays queued
        // is the create's scheduled retry.
        crate::support::eventually("only the retry left", Duration::from_secs(5), || {
            let queue = &queue;
            async move { queue.outstanding().await.unwrap() == 1 }
        })
        .await;
        worker.stop().await;
    }
);

both_backends!(
    a_backlog_is_drained_within_the_budget_without_a_429,
    |env: Env| async move {
        use diesel_mangopay::client::RateBudget;

        // Mangopay's windows scaled down in time, enforced by the sandbox and known to the
        // client.
        let windows = [
            (Duration::from_secs(1), 8),
            (Duration::from_secs(2), 12),
            (Duration::from_secs(4), 20),
            (Duration::from_secs(60), 1_000),
        ];
        env.sandbox().knobs().set_rate_windows(Some(windows));
        let budget = RateBudget::new(windows)
            .unwrap()
            .with_margin(Duration::from_millis(100));
        let client = diesel_mangopay::MangopayClient::new(
            crate::support::client_config(&env.sandbox)
                .rate_budget(budget.clone())
                .build()
                .unwrap(),
        )
        .unwrap();
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        let mut ids = Vec::new();
        for i in 0..24 {
            let user = crate::common::saved_user(&env, &format!("budget{i}@example.com")).await;
            ids.push(user.id.unwrap());
        }
        for id in &ids {
            queue.create_mangopay_user(*id).await.unwrap();
        }
        let started = std::time::Instant::now();
        let worker = start_worker_with(
            env.db.clone(),
            client,
            &queue,
            diesel_mangopay_jobs::WorkerOptions {
                concurrency: 16,
                ..options()
            },
        );
        for id in &ids {
            env.until_synced(*id, Duration::from_secs(60)).await;
        }
        let took = started.elapsed();
        worker.stop().await;
        let refused = env
            .sandbox()
            .request_log()
            .iter()
            .filter(|r| r.status == 429)
            .count();
        assert_eq!(refused, 0, "no call met a 429");
        assert_eq!(posts_to(&env, "/users/natural").len(), ids.len());
        // 24 creates and the token call: 8 at 0 s, 4 at 1 s, 8 at 2 s, 0 at 3 s, 5 at 4 s.
        let minimum = budget.minimum_time(ids.len() as u64 + 1);
        assert_eq!(minimum, Duration::from_secs(4));
        assert!(took >= minimum, "{took:?}: the budget was overspent");
    }
);
