//! A worker killed (SIGKILL) after Mangopay created a user and before the database commit: the
//! restarted worker finishes the create with the same idempotency key, and exactly one
//! Mangopay user exists for the row.

use std::time::Duration;

use diesel_mangopay::{MangopayNaturalUser, SyncState};
use diesel_mangopay_jobs::JobQueue;

use crate::both_backends;
use crate::process::spawn_worker;
use crate::support::{Env, natural_owner};

both_backends!(
    sigkill_between_the_post_and_the_commit_creates_exactly_one_user,
    |env: Env| async move {
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        let mut worker = spawn_worker(&env, &[]);

        // A first user goes through normally, so the worker holds a token before the slow part.
        let mut warm = natural_owner();
        warm.email = "first.user@example.com".into();
        warm.save(&env.db).await.unwrap();
        queue.create_mangopay_user(warm.id.unwrap()).await.unwrap();
        env.until_synced(warm.id.unwrap(), Duration::from_secs(30))
            .await;

        // Mangopay now answers slowly: it has created the user while the worker still waits.
        env.sandbox().knobs().set_latency(Duration::from_secs(120));
        let mut user = natural_owner();
        user.email = "the.crash.victim@example.com".into();
        user.save(&env.db).await.unwrap();
        let id = user.id.unwrap();
        queue.create_mangopay_user(id).await.unwrap();
        env.until_mangopay_has_users(2).await;
        worker.signal(libc::SIGKILL);
        let status = worker.wait(Duration::from_secs(10)).await;
        assert!(!status.success(), "killed: {status:?}");

        // The kill landed between the POST and the commit: Mangopay has the user, the row does not.
        let crashed = MangopayNaturalUser::get(&env.db, id).await.unwrap();
        assert_eq!(crashed.sync().state, SyncState::Pending);
        assert!(crashed.mangopay_id().is_none());
        let key = crashed
            .sync()
            .create_idempotency_key
            .clone()
            .expect("the key was committed before the POST");

        env.sandbox().knobs().set_latency(Duration::ZERO);
        // The killed worker's lease on the row ends, or its task is handed to the new worker
        // (same task, same lease token), whichever comes first.
        let _restarted = spawn_worker(&env, &["--sweep-interval", "5"]);
        let recovered = env.until_synced(id, Duration::from_secs(90)).await;

        let victims: Vec<_> = env
            .sandbox()
            .users()
            .into_iter()
            .filter(|u| u["Email"] == "the.crash.victim@example.com")
            .collect();
        assert_eq!(victims.len(), 1, "exactly one Mangopay user for the row");
        assert_eq!(recovered.mangopay_id(), victims[0]["Id"].as_str());
        assert_eq!(
            recovered.sync().create_idempotency_key.as_deref(),
            Some(key.as_str())
        );
        assert_eq!(env.sandbox().user_count(), 2);
        let log = env.sandbox().request_log();
        let resent: Vec<_> = log
            .iter()
            .filter(|r| r.method == "POST" && r.idempotency_key.as_deref() == Some(key.as_str()))
            .map(|r| r.status)
            .collect();
        assert_eq!(
            resent.last(),
            Some(&409),
            "the restart resent the same key: {resent:?}"
        );
        assert!(
            log.iter()
                .any(|r| r.path.ends_with(&format!("/responses/{key}")) && r.status == 200)
        );
    }
);
