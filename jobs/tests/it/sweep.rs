//! The sweep: rows whose work is due are handed out once, whoever sweeps and however many
//! sweep at once; rows a live holder has are left alone.

use std::time::Duration;

use diesel_mangopay::Db;
use diesel_mangopay::sync::SweepOptions;
use diesel_mangopay_jobs::{JobContext, JobQueue, Registry, sweep};

use crate::both_backends;
use crate::common::{idle, saved_user, start_worker};
use crate::support::{Env, client_for};

fn everything_due() -> SweepOptions {
    SweepOptions {
        new_rows_after: Some(Duration::ZERO),
        ..SweepOptions::default()
    }
}

fn context(env: &Env, db: Db) -> JobContext {
    JobContext {
        db,
        client: env.client.clone(),
    }
}

both_backends!(
    a_row_saved_whose_enqueue_was_lost_is_created_by_the_sweep,
    |env: Env| async move {
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        let user = saved_user(&env, "lost.enqueue@example.com").await;
        let ctx = context(&env, env.db.clone());
        let registry = Registry::standard();
        // Just saved: its enqueue may still be on its way, so the default sweep waits.
        assert_eq!(
            sweep(&ctx, &queue, &registry, &SweepOptions::default())
                .await
                .unwrap(),
            0
        );
        // Old enough: handed out, once.
        assert_eq!(
            sweep(&ctx, &queue, &registry, &everything_due())
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            sweep(&ctx, &queue, &registry, &everything_due())
                .await
                .unwrap(),
            0
        );
        assert_eq!(queue.outstanding().await.unwrap(), 1);
        let worker = start_worker(&env, &queue);
        env.until_synced(user.id.unwrap(), Duration::from_secs(30))
            .await;
        idle(&queue).await;
        worker.stop().await;
    }
);

both_backends!(
    concurrent_sweeps_hand_each_row_out_once,
    |env: Env| async move {
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        for n in 0..20 {
            saved_user(&env, &format!("swept.{n}@example.com")).await;
        }
        let registry = Registry::standard();
        let (a, b) = (
            context(&env, Db::connect(&env.database.url).await.unwrap()),
            context(&env, Db::connect(&env.database.url).await.unwrap()),
        );
        let options = everything_due();
        let (first, second) = tokio::join!(
            sweep(&a, &queue, &registry, &options),
            sweep(&b, &queue, &registry, &options)
        );
        let (first, second) = (first.unwrap(), second.unwrap());
        assert_eq!(first + second, 20, "{first} + {second}");
        assert_eq!(queue.outstanding().await.unwrap(), 20);
    }
);

both_backends!(
    a_held_row_is_left_alone_until_its_lease_ends,
    |env: Env| async move {
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        let user = saved_user(&env, "leased@example.com").await;
        let id = user.id.unwrap();
        env.sql(&format!(
            "UPDATE mangopay_users SET sync_state = 'pending', lease_owner = 'someone', \
             lease_until = '2999-01-01 00:00:00' WHERE id = {id}"
        ))
        .await;
        let ctx = context(&env, env.db.clone());
        let registry = Registry::standard();
        assert_eq!(
            sweep(&ctx, &queue, &registry, &everything_due())
                .await
                .unwrap(),
            0
        );
        env.expire_lease(id).await;
        assert_eq!(
            sweep(&ctx, &queue, &registry, &everything_due())
                .await
                .unwrap(),
            1
        );
        // A created row with an update owed is handed out for an update.
        let mut created = crate::support::natural_owner();
        created.email = "dirty@example.com".into();
        created
            .create(&env.db, &client_for(&env.sandbox))
            .await
            .unwrap();
        env.sql(&format!(
            "UPDATE mangopay_users SET dirty = TRUE WHERE id = {}",
            created.id.unwrap()
        ))
        .await;
        assert_eq!(
            sweep(&ctx, &queue, &registry, &everything_due())
                .await
                .unwrap(),
            1
        );
    }
);

both_backends!(
    a_sweep_never_overwrites_a_claim_committed_while_it_waits,
    |env: Env| async move {
        use diesel::{Connection, RunQueryDsl};
        use diesel_mangopay::DatabaseUrl;
        use diesel_mangopay::sync::{self, Lease, Resource};

        // SQLite runs one writer at a time: the race needs PostgreSQL's concurrent writers.
        if !matches!(env.database.url, DatabaseUrl::Postgres(_)) {
            return;
        }
        let user = saved_user(&env, "raced.by.a.sweep@example.com").await;
        let id = user.id.unwrap();
        env.sql(&format!(
            "UPDATE mangopay_users SET sync_state = 'pending', \
             lease_until = '2000-01-01 00:00:00' WHERE id = {id}"
        ))
        .await;
        // A worker claims the row in a transaction that stays open while the sweep runs.
        let url = env.database.url.clone();
        let (locked, is_locked) = std::sync::mpsc::channel::<()>();
        let (finish, may_finish) = std::sync::mpsc::channel::<()>();
        let worker = std::thread::spawn(move || {
            let mut conn = diesel_mangopay::db::establish(&url).unwrap();
            conn.transaction(|c| {
                diesel::sql_query(format!(
                    "UPDATE mangopay_users SET lease_owner = 'task-A', \
                     lease_until = '2999-01-01 00:00:00' WHERE id = {id}"
                ))
                .execute(c)?;
                locked.send(()).unwrap();
                may_finish.recv().unwrap();
                Ok::<_, diesel::result::Error>(())
            })
            .unwrap();
        });
        is_locked.recv().unwrap();
        let db = env.db.clone();
        let sweep = tokio::spawn(async move {
            sync::sweep::claim_due(
                &db,
                <diesel_mangopay::MangopayUser as Resource>::TABLE,
                &everything_due(),
                &Lease::reservation("sweep"),
            )
            .await
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        finish.send(()).unwrap();
        worker.join().unwrap();
        let handed = sweep.await.unwrap().unwrap().unwrap();
        assert!(
            handed.is_empty(),
            "the row held by the worker was handed out: {handed:?}"
        );
        let row = diesel_mangopay::MangopayNaturalUser::get(&env.db, id)
            .await
            .unwrap();
        assert_eq!(row.sync().lease_owner.as_deref(), Some("task-A"));
    }
);
