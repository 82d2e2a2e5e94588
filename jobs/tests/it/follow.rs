//! Objects the worker follows until Mangopay settles them: pay-outs `CREATED` until their bank
//! wire is done (the pay-out-succeeded hook then runs exactly once, also when it fails first and
//! when two workers follow the same pay-out), recipients `PENDING` until their user's SCA; the
//! polling cap; a follow-up whose job was lost handed out again by the sweep.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use diesel_mangopay::models::RecipientStatus;
use diesel_mangopay::{
    Db, MangopayPayOut, MangopayRecipient, PayOutDestination, PayoutMode, Polling,
    TransactionStatus,
};
use diesel_mangopay_jobs::{
    CREATE_MANGOPAY_PAY_OUT, CREATE_MANGOPAY_RECIPIENT, Job, JobQueue, Registry,
    UPDATE_MANGOPAY_PAY_OUT, WorkerOptions,
};
use diesel_mangopay_sandbox::{PayoutOutcome, RecipientSca};

use crate::both_backends;
use crate::common::{idle, options, start_worker_with};
use crate::support::money::{counting_hook, created_user, eur, funded, gbp_recipient};
use crate::support::{Env, eventually};

/// Workers checking every second, at most `max_checks` times.
fn following(max_checks: i32) -> WorkerOptions {
    let every = Polling::every(Duration::from_secs(1), max_checks);
    WorkerOptions {
        registry: Registry::standard_polling(every.clone(), every.clone(), every),
        ..options()
    }
}

/// A pay-out of 60.00 EUR (fees 1.00) from a funded wallet to a bank account, saved.
async fn saved_pay_out(env: &Env, email: &str) -> MangopayPayOut {
    let (user, wallet, account) = funded(env, email, 10_000).await;
    let mut pay_out = MangopayPayOut::new(
        user,
        wallet.id.unwrap(),
        PayOutDestination::BankAccount(account.id.unwrap()),
        eur(6_000),
        eur(100),
    )
    .unwrap();
    pay_out.save(&env.db).await.unwrap();
    pay_out
}

/// Enqueues the creation of the pay-out `id`.
async fn create_by_the_worker(queue: &JobQueue, id: i64) {
    queue
        .enqueue(Job::new(CREATE_MANGOPAY_PAY_OUT, id))
        .await
        .unwrap();
}

/// The status checks the sandbox answered for the pay-out `mangopay_id`.
fn views_of(env: &Env, mangopay_id: &str) -> usize {
    env.sandbox()
        .request_log()
        .iter()
        .filter(|r| {
            r.method == "GET"
                && r.path
                    .ends_with(&format!("/payouts/bankwire/{mangopay_id}"))
        })
        .count()
}

/// Waits until the pay-out `id` holds `status`.
async fn until_status(db: &Db, id: i64, status: TransactionStatus) -> MangopayPayOut {
    eventually(
        &format!("pay-out {id} {}", status.as_str()),
        Duration::from_secs(60),
        || async { MangopayPayOut::get(db, id).await.unwrap().status() == Some(&status) },
    )
    .await;
    MangopayPayOut::get(db, id).await.unwrap()
}

both_backends!(
    the_worker_follows_a_pay_out_to_succeeded_and_its_failing_hook_runs_once,
    |env: Env| async move {
        let runs = Arc::new(AtomicUsize::new(0));
        let db = env.db.clone().with_hooks(counting_hook(runs.clone(), 1));
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        let worker = start_worker_with(db.clone(), env.client.clone(), &queue, following(30));
        let pay_out = saved_pay_out(&env, "followed@example.com").await;
        let id = pay_out.id.unwrap();
        create_by_the_worker(&queue, id).await;

        // Created, then checked while it stays CREATED, each check planning the next.
        eventually("two status checks", Duration::from_secs(30), || async {
            MangopayPayOut::get(&db, id)
                .await
                .unwrap()
                .facts()
                .status_checks
                >= 2
        })
        .await;
        let waiting = MangopayPayOut::get(&db, id).await.unwrap();
        assert_eq!(waiting.status(), Some(&TransactionStatus::Created));
        assert!(
            waiting.facts().next_check_at.is_some(),
            "a next check is planned"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 0);

        let mangopay_id = waiting.mangopay_id().unwrap().to_owned();
        env.sandbox()
            .settle_payout(&mangopay_id, PayoutOutcome::Succeeded)
            .unwrap();
        // The hook fails the first time: the check that saw SUCCEEDED is undone and retried.
        let done = until_status(&db, id, TransactionStatus::Succeeded).await;
        idle(&queue).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2,
            "one failed run, one committed"
        );
        assert!(done.facts().succeeded_hook_at.is_some());
        assert_eq!(done.facts().next_check_at, None, "no longer followed");
        let views = views_of(&env, &mangopay_id);
        assert_eq!(
            i64::from(done.facts().status_checks),
            i64::try_from(views).unwrap() - 1,
            "every view but the one whose hook failed was counted as a check"
        );
        worker.stop().await;
    }
);

both_backends!(
    two_workers_follow_one_pay_out_and_its_hook_runs_once,
    |env: Env| async move {
        let runs = Arc::new(AtomicUsize::new(0));
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        let mut pay_out = saved_pay_out(&env, "shared@example.com").await;
        let id = pay_out.id.unwrap();
        // Created by the application itself: its first check is owed at once, and only the
        // sweep knows.
        let db = env.db.clone().with_hooks(counting_hook(runs.clone(), 0));
        pay_out.create(&db, &env.client).await.unwrap();
        assert!(pay_out.facts().next_check_at.is_some());
        let mangopay_id = pay_out.mangopay_id().unwrap().to_owned();
        env.sandbox()
            .knobs()
            .set_payout_settle_after(Some(Duration::from_secs(4)));

        let sweeping = WorkerOptions {
            sweep_interval: Some(Duration::from_secs(1)),
            concurrency: 4,
            ..following(30)
        };
        let other_db = Db::connect(&env.database.url)
            .await
            .unwrap()
            .with_hooks(counting_hook(runs.clone(), 0));
        let first = start_worker_with(db.clone(), env.client.clone(), &queue, sweeping.clone());
        let second = start_worker_with(other_db, env.client.clone(), &queue, sweeping);
        // Extra follow jobs racing the chain: at most one of them makes each owed check.
        for _ in 0..3 {
            queue
                .enqueue(Job::new(UPDATE_MANGOPAY_PAY_OUT, id))
                .await
                .unwrap();
        }

        let done = until_status(&db, id, TransactionStatus::Succeeded).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1, "the hook ran once");
        assert_eq!(done.facts().next_check_at, None);
        let checks = done.facts().status_checks;
        assert!(
            (1..=8).contains(&checks),
            "one check per planned time, not one per job: {checks}"
        );
        idle(&queue).await;
        let views = views_of(&env, &mangopay_id);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            views_of(&env, &mangopay_id),
            views,
            "no check after it settled"
        );
        first.stop().await;
        second.stop().await;
    }
);

both_backends!(
    a_pay_out_still_created_at_the_cap_is_reported_and_no_longer_followed,
    |env: Env| async move {
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        let worker = start_worker_with(env.db.clone(), env.client.clone(), &queue, following(2));
        let pay_out = saved_pay_out(&env, "stuck@example.com").await;
        let id = pay_out.id.unwrap();
        create_by_the_worker(&queue, id).await;
        eventually("the cap reported", Duration::from_secs(30), || async {
            MangopayPayOut::get(&env.db, id)
                .await
                .unwrap()
                .sync()
                .last_error
                .is_some()
        })
        .await;
        idle(&queue).await;
        let stuck = MangopayPayOut::get(&env.db, id).await.unwrap();
        let note = stuck.sync().last_error.clone().unwrap();
        assert_eq!(note.kind.as_deref(), Some("still_pending"), "{note:?}");
        assert_eq!(stuck.status(), Some(&TransactionStatus::Created));
        assert_eq!(stuck.facts().status_checks, 2);
        assert_eq!(stuck.facts().next_check_at, None);
        assert_eq!(views_of(&env, stuck.mangopay_id().unwrap()), 2);
        worker.stop().await;
    }
);

both_backends!(
    a_lost_follow_job_is_handed_out_again_by_the_sweep,
    |env: Env| async move {
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        let mut pay_out = saved_pay_out(&env, "lost@example.com").await;
        let id = pay_out.id.unwrap();
        pay_out.create(&env.db, &env.client).await.unwrap();
        env.sandbox()
            .settle_payout(
                pay_out.mangopay_id().unwrap(),
                PayoutOutcome::generic_failure(),
            )
            .unwrap();
        // No job was ever enqueued for it; without a sweep, nothing follows it.
        let idle_worker =
            start_worker_with(env.db.clone(), env.client.clone(), &queue, following(5));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            MangopayPayOut::get(&env.db, id)
                .await
                .unwrap()
                .facts()
                .status_checks,
            0
        );
        idle_worker.stop().await;
        let sweeping = WorkerOptions {
            sweep_interval: Some(Duration::from_secs(1)),
            ..following(5)
        };
        let worker = start_worker_with(env.db.clone(), env.client.clone(), &queue, sweeping);
        let failed = until_status(&env.db, id, TransactionStatus::Failed).await;
        assert_eq!(failed.facts().status_checks, 1);
        assert_eq!(failed.facts().next_check_at, None);
        assert!(failed.facts().transaction.result_code.is_some());
        idle(&queue).await;
        worker.stop().await;
    }
);

both_backends!(
    a_recipient_pending_sca_is_followed_until_active,
    |env: Env| async move {
        env.sandbox()
            .knobs()
            .set_recipient_sca(RecipientSca::ActivateAfter(Duration::from_secs(3)));
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        let worker = start_worker_with(env.db.clone(), env.client.clone(), &queue, following(30));
        let owner = created_user(&env, "recipient.owner@example.com").await;
        let mut recipient = gbp_recipient(owner.id.unwrap());
        recipient.save(&env.db).await.unwrap();
        let id = recipient.id.unwrap();
        queue
            .enqueue(Job::new(CREATE_MANGOPAY_RECIPIENT, id))
            .await
            .unwrap();
        eventually("the recipient ACTIVE", Duration::from_secs(30), || async {
            MangopayRecipient::get(&env.db, id).await.unwrap().status()
                == Some(&RecipientStatus::Active)
        })
        .await;
        idle(&queue).await;
        let active = MangopayRecipient::get(&env.db, id).await.unwrap();
        assert!(active.facts().status_checks >= 1);
        assert_eq!(active.facts().next_check_at, None);
        assert_eq!(
            active.redirect_url(),
            None,
            "the SCA link is of no use any more"
        );
        worker.stop().await;
    }
);

both_backends!(
    follow_jobs_beyond_the_owed_check_make_no_check,
    |env: Env| async move {
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        let mut pay_out = saved_pay_out(&env, "once@example.com").await;
        let id = pay_out.id.unwrap();
        pay_out.create(&env.db, &env.client).await.unwrap();
        let mangopay_id = pay_out.mangopay_id().unwrap().to_owned();
        // One check is owed now; three jobs come for it, one after the other.
        for _ in 0..3 {
            queue
                .enqueue(Job::new(UPDATE_MANGOPAY_PAY_OUT, id))
                .await
                .unwrap();
        }
        let hourly = Polling::every(Duration::from_secs(3600), 5);
        let worker = start_worker_with(
            env.db.clone(),
            env.client.clone(),
            &queue,
            WorkerOptions {
                concurrency: 1,
                registry: Registry::standard_polling(hourly.clone(), hourly.clone(), hourly),
                ..options()
            },
        );
        // Left in the queue: the one check planned an hour from now.
        eventually("the three jobs run", Duration::from_secs(30), || async {
            queue.outstanding().await.unwrap() == 1
        })
        .await;
        let checked = MangopayPayOut::get(&env.db, id).await.unwrap();
        assert_eq!(checked.facts().status_checks, 1);
        assert_eq!(views_of(&env, &mangopay_id), 1);
        let next = checked.facts().next_check_at.unwrap();
        let ahead = next - chrono::Utc::now();
        assert!(
            ahead > chrono::Duration::minutes(59),
            "the next check is an hour away: {ahead}"
        );
        worker.stop().await;
    }
);

both_backends!(
    an_instant_pay_out_whose_hook_fails_at_create_is_checked_again_until_it_runs,
    |env: Env| async move {
        let runs = Arc::new(AtomicUsize::new(0));
        let db = env.db.clone().with_hooks(counting_hook(runs.clone(), 1));
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        let worker = start_worker_with(db.clone(), env.client.clone(), &queue, following(30));
        let (user, wallet, account) = funded(&env, "instant@example.com", 10_000).await;
        let mut pay_out = MangopayPayOut::new(
            user,
            wallet.id.unwrap(),
            PayOutDestination::BankAccount(account.id.unwrap()),
            eur(2_000),
            eur(0),
        )
        .unwrap()
        .with_mode(PayoutMode::InstantPayment);
        pay_out.save(&db).await.unwrap();
        let id = pay_out.id.unwrap();
        // Mangopay answers SUCCEEDED at once; the hook fails on that answer, which undoes it.
        create_by_the_worker(&queue, id).await;
        let done = until_status(&db, id, TransactionStatus::Succeeded).await;
        idle(&queue).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2,
            "one failed run, one committed"
        );
        assert!(done.facts().succeeded_hook_at.is_some());
        assert_eq!(done.facts().next_check_at, None);
        worker.stop().await;
    }
);

both_backends!(
    a_pay_out_recorded_succeeded_without_the_hook_has_it_run_by_a_hooked_worker,
    |env: Env| async move {
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        // A worker without the application's hook (as the stock binary is) follows it.
        let hookless = start_worker_with(env.db.clone(), env.client.clone(), &queue, following(30));
        let pay_out = saved_pay_out(&env, "hookless@example.com").await;
        let id = pay_out.id.unwrap();
        create_by_the_worker(&queue, id).await;
        eventually("the pay-out created", Duration::from_secs(30), || async {
            MangopayPayOut::get(&env.db, id)
                .await
                .unwrap()
                .mangopay_id()
                .is_some()
        })
        .await;
        let mangopay_id = MangopayPayOut::get(&env.db, id)
            .await
            .unwrap()
            .mangopay_id()
            .unwrap()
            .to_owned();
        env.sandbox()
            .settle_payout(&mangopay_id, PayoutOutcome::Succeeded)
            .unwrap();
        until_status(&env.db, id, TransactionStatus::Succeeded).await;
        hookless.stop().await;
        let unmarked = MangopayPayOut::get(&env.db, id).await.unwrap();
        assert!(unmarked.facts().succeeded_hook_at.is_none(), "no hook ran");

        // The application's own worker, with the hook: its sweep runs the hook owed, once.
        let runs = Arc::new(AtomicUsize::new(0));
        let db = env.db.clone().with_hooks(counting_hook(runs.clone(), 0));
        let hooked = start_worker_with(
            db.clone(),
            env.client.clone(),
            &queue,
            WorkerOptions {
                sweep_interval: Some(Duration::from_secs(1)),
                ..following(30)
            },
        );
        eventually("the owed hook run", Duration::from_secs(30), || async {
            runs.load(Ordering::SeqCst) == 1
        })
        .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "and only once, across sweeps"
        );
        let marked = MangopayPayOut::get(&db, id).await.unwrap();
        assert!(marked.facts().succeeded_hook_at.is_some());
        hooked.stop().await;
    }
);

both_backends!(
    a_status_check_no_retry_fixes_stops_following_with_a_note,
    |env: Env| async move {
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        let mut pay_out = saved_pay_out(&env, "vanished@example.com").await;
        let id = pay_out.id.unwrap();
        pay_out.create(&env.db, &env.client).await.unwrap();
        // The row now names an object Mangopay does not know: every view is a 404.
        env.sql(&format!(
            "UPDATE mangopay_pay_outs SET mangopay_id = 'payout_unknown' WHERE id = {id}"
        ))
        .await;
        let worker = start_worker_with(
            env.db.clone(),
            env.client.clone(),
            &queue,
            WorkerOptions {
                sweep_interval: Some(Duration::from_secs(1)),
                ..following(30)
            },
        );
        eventually("following stopped", Duration::from_secs(30), || async {
            let row = MangopayPayOut::get(&env.db, id).await.unwrap();
            row.facts().next_check_at.is_none()
                && row.sync().last_error.as_ref().and_then(|e| e.kind.clone())
                    == Some("not_followed".to_owned())
        })
        .await;
        let views = views_of(&env, "payout_unknown");
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(
            views_of(&env, "payout_unknown"),
            views,
            "no check in a loop"
        );
        worker.stop().await;
    }
);
