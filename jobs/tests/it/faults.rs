//! Mangopay failing every way the fault model knows, with the real worker: each test ends with
//! exactly one Mangopay object per row, the row synced, nothing lost.

use std::time::Duration;

use diesel_mangopay::sync::SweepOptions;
use diesel_mangopay::{Db, MangopayNaturalUser, SyncState};
use diesel_mangopay_jobs::{JobContext, JobQueue, Registry, RetryPolicy, WorkerOptions, sweep};
use diesel_mangopay_sandbox::AnswerLoss;

use crate::both_backends;
use crate::common::{idle, keys_sent, options, saved_user, start_worker_with, users_with_email};
use crate::support::{Env, eventually};

/// The statuses of the POSTs sent with `key`.
fn sent_with(env: &Env, key: &str) -> Vec<u16> {
    env.sandbox()
        .request_log()
        .iter()
        .filter(|r| r.method == "POST" && r.idempotency_key.as_deref() == Some(key))
        .map(|r| r.status)
        .collect()
}

both_backends!(
    an_answer_lost_after_the_work_is_read_back_with_its_key,
    |env: Env| async move {
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        let client = env
            .client_with(Duration::from_secs(1), crate::support::RECONCILE_AFTER)
            .await;
        let worker = start_worker_with(env.db.clone(), client, &queue, options());
        for (loss, email) in [
            (AnswerLoss::Close, "closed@example.com"),
            (AnswerLoss::Hang, "withheld@example.com"),
            (AnswerLoss::Garble, "garbled@example.com"),
        ] {
            let user = saved_user(&env, email).await;
            env.sandbox().knobs().drop_next_answers(1, loss);
            queue.create_mangopay_user(user.id.unwrap()).await.unwrap();
            let user = env
                .until_synced(user.id.unwrap(), Duration::from_secs(30))
                .await;
            assert_eq!(users_with_email(&env, email), 1, "{loss:?}");
            let key = user.sync().create_idempotency_key.clone().unwrap();
            let sent = sent_with(&env, &key);
            assert_eq!(
                sent.len(),
                2,
                "{loss:?}: sent again once, same key: {sent:?}"
            );
            assert_eq!(sent[1], 409, "{loss:?}");
            assert!(
                env.sandbox()
                    .request_log()
                    .iter()
                    .any(|r| r.path.ends_with(&format!("/responses/{key}")) && r.status == 200),
                "{loss:?}: the first answer was read back"
            );
        }
        worker.stop().await;
    }
);

both_backends!(
    a_stored_500_before_or_after_the_work_ends_with_one_user,
    |env: Env| async move {
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        let client = env
            .client_with(Duration::from_secs(10), crate::support::RECONCILE_AFTER)
            .await;
        let worker = start_worker_with(env.db.clone(), client, &queue, options());

        // Before the work: nothing is created, the key is spent on the 500; listing proves
        // it, the key is released, and a new key creates the user.
        let before = saved_user(&env, "before@example.com").await;
        env.sandbox().knobs().fail_next(1);
        queue
            .create_mangopay_user(before.id.unwrap())
            .await
            .unwrap();
        let before = env
            .until_synced(before.id.unwrap(), Duration::from_secs(90))
            .await;
        assert_eq!(users_with_email(&env, "before@example.com"), 1);
        let keys = keys_sent(&env);
        let last = before.sync().create_idempotency_key.clone().unwrap();
        assert_eq!(keys.last(), Some(&last));
        assert_eq!(
            keys.iter().filter(|k| **k != last).count(),
            2,
            "the spent key was sent twice (500, then 409), never again: {keys:?}"
        );

        // After the work: the user exists, the 500 is what Mangopay stored; listing finds
        // the user by its tag and the row adopts it, with the same key.
        let after = saved_user(&env, "after@example.com").await;
        env.sandbox().knobs().fail_next_after_work(1);
        queue.create_mangopay_user(after.id.unwrap()).await.unwrap();
        let after = env
            .until_synced(after.id.unwrap(), Duration::from_secs(90))
            .await;
        assert_eq!(users_with_email(&env, "after@example.com"), 1);
        let made = env
            .sandbox()
            .users()
            .into_iter()
            .find(|u| u["Email"] == "after@example.com")
            .unwrap();
        assert_eq!(after.mangopay_id(), made["Id"].as_str());
        let key = after.sync().create_idempotency_key.clone().unwrap();
        assert_eq!(sent_with(&env, &key), [500, 409], "one key, never replaced");
        worker.stop().await;
    }
);

both_backends!(
    a_resend_while_the_first_request_still_runs_ends_with_one_user,
    |env: Env| async move {
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        // The client gives up after a second; Mangopay takes three to do the work.
        let client = env
            .client_with(Duration::from_secs(1), crate::support::RECONCILE_AFTER)
            .await;
        let worker = start_worker_with(env.db.clone(), client, &queue, options());
        env.sandbox()
            .knobs()
            .set_handler_delay(Duration::from_secs(3));
        let user = saved_user(&env, "in.flight@example.com").await;
        queue.create_mangopay_user(user.id.unwrap()).await.unwrap();
        let user = env
            .until_synced(user.id.unwrap(), Duration::from_secs(40))
            .await;
        env.sandbox().knobs().set_handler_delay(Duration::ZERO);
        assert_eq!(users_with_email(&env, "in.flight@example.com"), 1);
        let key = user.sync().create_idempotency_key.clone().unwrap();
        let sent = sent_with(&env, &key);
        assert!(sent.contains(&409), "resent while in flight: {sent:?}");
        assert!(
            keys_sent(&env).iter().all(|k| *k == key),
            "never another key"
        );
        worker.stop().await;
    }
);

both_backends!(
    two_workers_racing_on_one_row_send_it_once,
    |env: Env| async move {
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        let other_db = Db::connect(&env.database.url).await.unwrap();
        let first = start_worker_with(
            env.db.clone(),
            env.client_with(Duration::from_secs(10), crate::support::RECONCILE_AFTER)
                .await,
            &queue,
            options(),
        );
        let second = start_worker_with(
            other_db,
            env.client_with(Duration::from_secs(10), crate::support::RECONCILE_AFTER)
                .await,
            &queue,
            options(),
        );
        env.sandbox()
            .knobs()
            .set_handler_delay(Duration::from_millis(700));
        let user = saved_user(&env, "raced@example.com").await;
        for _ in 0..4 {
            queue.create_mangopay_user(user.id.unwrap()).await.unwrap();
        }
        idle(&queue).await;
        let user = env
            .until_synced(user.id.unwrap(), Duration::from_secs(10))
            .await;
        env.sandbox().knobs().set_handler_delay(Duration::ZERO);
        assert_eq!(users_with_email(&env, "raced@example.com"), 1);
        let key = user.sync().create_idempotency_key.clone().unwrap();
        assert_eq!(
            sent_with(&env, &key),
            [200],
            "one holder at a time: the others stood back"
        );
        first.stop().await;
        second.stop().await;
    }
);

both_backends!(
    a_sweep_while_a_worker_holds_the_row_hands_nothing_out,
    |env: Env| async move {
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        let client = env
            .client_with(Duration::from_secs(10), crate::support::RECONCILE_AFTER)
            .await;
        let worker = start_worker_with(env.db.clone(), client.clone(), &queue, options());
        env.sandbox()
            .knobs()
            .set_handler_delay(Duration::from_secs(2));
        let user = saved_user(&env, "held@example.com").await;
        queue.create_mangopay_user(user.id.unwrap()).await.unwrap();
        env.until_a_post_is_in_flight().await;
        let ctx = JobContext {
            db: env.db.clone(),
            client,
        };
        let everything_due = SweepOptions {
            new_rows_after: Some(Duration::ZERO),
            ..SweepOptions::default()
        };
        let handed_out = sweep(&ctx, &queue, &Registry::standard(), &everything_due)
            .await
            .unwrap();
        assert_eq!(handed_out, 0, "the row is held by the live worker");
        let user = env
            .until_synced(user.id.unwrap(), Duration::from_secs(20))
            .await;
        idle(&queue).await;
        env.sandbox().knobs().set_handler_delay(Duration::ZERO);
        assert_eq!(users_with_email(&env, "held@example.com"), 1);
        let key = user.sync().create_idempotency_key.clone().unwrap();
        assert_eq!(sent_with(&env, &key), [200]);
        worker.stop().await;
    }
);

both_backends!(
    an_outage_longer_than_the_retry_budget_loses_nothing,
    |env: Env| async move {
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        let client = env
            .client_with(Duration::from_secs(10), crate::support::RECONCILE_AFTER)
            .await;
        // A user already created, whose update will be owed through the outage.
        let mut updated = crate::support::natural_owner();
        updated.email = "updated@example.com".into();
        updated.create(&env.db, &client).await.unwrap();

        // Mangopay is unreachable for two minutes; the retry budget is a few seconds.
        env.sandbox()
            .knobs()
            .unavailable_for(Duration::from_secs(120));
        let created = saved_user(&env, "created@example.com").await;
        queue
            .create_mangopay_user(created.id.unwrap())
            .await
            .unwrap();
        updated.occupation = Some("Astronaut".into());
        updated.save(&env.db).await.unwrap();
        queue
            .update_mangopay_user(updated.id.unwrap())
            .await
            .unwrap();
        let worker = start_worker_with(
            env.db.clone(),
            client,
            &queue,
            WorkerOptions {
                retry: RetryPolicy {
                    max_attempts: 3,
                    base: Duration::from_secs(1),
                    max: Duration::from_secs(2),
                },
                sweep_interval: Some(Duration::from_secs(5)),
                sweep: SweepOptions {
                    new_rows_after: None,
                    ..SweepOptions::default()
                },
                ..options()
            },
        );
        // The jobs use up their retries; the rows wait, still owed, for the sweep.
        let db = env.db.clone();
        let (created_id, updated_id) = (created.id.unwrap(), updated.id.unwrap());
        eventually("the first budget used up", Duration::from_secs(60), || {
            let db = db.clone();
            async move {
                let c = MangopayNaturalUser::get(&db, created_id).await.unwrap();
                let u = MangopayNaturalUser::get(&db, updated_id).await.unwrap();
                c.sync().state == SyncState::Pending
                    && c.sync().lease_until.is_none()
                    && u.sync().dirty
                    && u.sync().lease_until.is_none()
            }
        })
        .await;
        assert!(
            env.sandbox().knobs().is_unavailable(),
            "still in the outage"
        );

        let created = env.until_synced(created_id, Duration::from_secs(200)).await;
        eventually("the update sent", Duration::from_secs(60), || {
            let db = db.clone();
            async move {
                !MangopayNaturalUser::get(&db, updated_id)
                    .await
                    .unwrap()
                    .sync()
                    .dirty
            }
        })
        .await;
        worker.stop().await;
        assert_eq!(users_with_email(&env, "created@example.com"), 1);
        let key = created.sync().create_idempotency_key.clone().unwrap();
        let sent = sent_with(&env, &key);
        assert!(sent.len() > 3, "resent after the budget ran out: {sent:?}");
        assert_eq!(sent.last(), Some(&200));
        assert!(
            keys_sent(&env).iter().filter(|k| k.as_str() != key).count() <= 1,
            "one key for the created user (the other belongs to the first user)"
        );
        let updated = MangopayNaturalUser::get(&env.db, updated_id).await.unwrap();
        assert_eq!(
            env.sandbox().user(updated.mangopay_id().unwrap()).unwrap()["Occupation"],
            "Astronaut"
        );
    }
);

both_backends!(
    waiting_to_settle_an_unknown_outcome_uses_no_attempt,
    |env: Env| async move {
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        let client = env
            .client_with(Duration::from_secs(10), crate::support::RECONCILE_AFTER)
            .await;
        // Two runs in all: the 500 and the resend's 409 use them up; the wait for the search
        // by tag must not count, or the row would be left to the sweep (off here).
        let worker = start_worker_with(
            env.db.clone(),
            client,
            &queue,
            WorkerOptions {
                retry: RetryPolicy {
                    max_attempts: 2,
                    ..RetryPolicy::default()
                },
                ..options()
            },
        );
        let user = saved_user(&env, "patient@example.com").await;
        env.sandbox().knobs().fail_next(1);
        queue.create_mangopay_user(user.id.unwrap()).await.unwrap();
        env.until_synced(user.id.unwrap(), Duration::from_secs(30))
            .await;
        assert_eq!(users_with_email(&env, "patient@example.com"), 1);
        worker.stop().await;
    }
);
