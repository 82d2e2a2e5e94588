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

/// The same crash during the creation of money movements: a worker killed (SIGKILL) after
/// Mangopay created a transfer or a pay-out and before the database commit. The restarted
/// worker finishes the create with the same idempotency key: exactly one transfer or pay-out
/// exists for the row, the money moved once, and the balances Mangopay and the database hold
/// agree.
mod money {
    use std::time::Duration;

    use diesel_mangopay::sync::{self, Resource};
    use diesel_mangopay::{
        MangopayPayOut, MangopayTransfer, MangopayWallet, PayOutDestination, SyncState,
        TransactionStatus,
    };
    use diesel_mangopay_jobs::{
        CREATE_MANGOPAY_PAY_OUT, CREATE_MANGOPAY_TRANSFER, CREATE_MANGOPAY_WALLET, Job, JobQueue,
    };
    use diesel_mangopay_sandbox::Sandbox;
    use serde_json::Value;

    use crate::both_backends;
    use crate::process::spawn_worker;
    use crate::support::money::{created_account, created_user, created_wallet, eur};
    use crate::support::{Env, Process, eventually};

    /// Waits until row `id` of `R` is synced (at most `timeout`), and returns it.
    async fn until_synced<R: Resource>(env: &Env, id: i64, timeout: Duration) -> R {
        let db = env.db.clone();
        eventually(&format!("{} {id} to be synced", R::MODEL), timeout, || {
            let db = db.clone();
            async move { sync::get::<R>(&db, id).await.unwrap().sync().state == SyncState::Synced }
        })
        .await;
        sync::get::<R>(&env.db, id).await.unwrap()
    }

    /// A wallet of `owner` created by `worker` (so the worker holds its token before Mangopay
    /// turns slow).
    async fn wallet_created_by_the_worker(
        env: &Env,
        queue: &JobQueue,
        owner: i64,
    ) -> MangopayWallet {
        let mut wallet = MangopayWallet::new(owner, "EUR", "created by the worker").unwrap();
        wallet.save(&env.db).await.unwrap();
        let id = wallet.id.unwrap();
        queue
            .enqueue(Job::new(CREATE_MANGOPAY_WALLET, id))
            .await
            .unwrap();
        until_synced::<MangopayWallet>(env, id, Duration::from_secs(30)).await
    }

    /// Enqueues `job` for row `id` of `R` while Mangopay answers slowly, SIGKILLs `worker` once
    /// `at_mangopay` (the objects of that kind the sandbox holds) says Mangopay created it, and
    /// returns the create idempotency key committed on the row, which is still pending.
    async fn kill_while_creating<R: Resource>(
        env: &Env,
        queue: &JobQueue,
        mut worker: Process,
        job: &str,
        id: i64,
        at_mangopay: fn(&Sandbox) -> usize,
    ) -> String {
        let before = at_mangopay(env.sandbox());
        env.sandbox().knobs().set_latency(Duration::from_secs(120));
        queue.enqueue(Job::new(job, id)).await.unwrap();
        let sandbox = env.sandbox().clone();
        eventually(
            &format!("Mangopay to create the {}", R::MODEL),
            Duration::from_secs(30),
            || {
                let sandbox = sandbox.clone();
                async move { at_mangopay(&sandbox) > before }
            },
        )
        .await;
        worker.signal(libc::SIGKILL);
        let status = worker.wait(Duration::from_secs(10)).await;
        assert!(!status.success(), "killed: {status:?}");

        // The kill landed between the POST and the commit: Mangopay has the object, the row
        // does not.
        let crashed = sync::get::<R>(&env.db, id).await.unwrap();
        assert_eq!(crashed.sync().state, SyncState::Pending);
        assert!(crashed.sync().mangopay_id.is_none());
        crashed
            .sync()
            .create_idempotency_key
            .clone()
            .expect("the key was committed before the POST")
    }

    /// Restarts a worker on a sandbox answering at once, waits until row `id` of `R` is
    /// synced, and checks it kept `key`, which the restart resent (409) and read back.
    async fn restart_until_synced<R: Resource>(env: &Env, id: i64, key: &str) -> (R, Process) {
        env.sandbox().knobs().set_latency(Duration::ZERO);
        // The killed worker's lease on the row ends, or its task is handed to the new worker
        // (same task, same lease token), whichever comes first.
        let restarted = spawn_worker(env, &["--sweep-interval", "5"]);
        let recovered = until_synced::<R>(env, id, Duration::from_secs(90)).await;
        assert_eq!(
            recovered.sync().create_idempotency_key.as_deref(),
            Some(key)
        );
        let log = env.sandbox().request_log();
        let resent: Vec<_> = log
            .iter()
            .filter(|r| r.method == "POST" && r.idempotency_key.as_deref() == Some(key))
            .map(|r| r.status)
            .collect();
        assert!(resent.len() >= 2, "sent, then resent: {resent:?}");
        assert_eq!(
            resent.last(),
            Some(&409),
            "the restart resent the same key: {resent:?}"
        );
        assert!(
            log.iter()
                .any(|r| r.path.ends_with(&format!("/responses/{key}")) && r.status == 200),
            "the restart read the key's first answer back"
        );
        (recovered, restarted)
    }

    /// The one object in `objects` made for row `id` by the create with `key` (the marker in
    /// its `Tag`), among those debiting `wallet` (a Mangopay id): there must be exactly one
    /// debit of the wallet, and it must be that object.
    fn the_one_debiting(objects: Vec<Value>, wallet: &str, id: i64, key: &str) -> Value {
        let debits: Vec<_> = objects
            .into_iter()
            .filter(|o| o["DebitedWalletId"] == wallet)
            .collect();
        assert_eq!(debits.len(), 1, "exactly one at Mangopay: {debits:#?}");
        let object = debits.into_iter().next().unwrap();
        assert_eq!(
            object["Tag"].as_str(),
            Some(format!("dm:{id}:{key}").as_str()),
            "made by the row's create"
        );
        object
    }

    /// Checks that Mangopay holds `amount` in `wallet` and that the wallet's balance, read and
    /// recorded through the library, says the same.
    async fn assert_balance(env: &Env, wallet: &MangopayWallet, amount: i64) {
        let mangopay_id = wallet.mangopay_id().unwrap();
        let remote = env.sandbox().wallet(mangopay_id).unwrap();
        assert_eq!(remote["Balance"]["Amount"], amount, "{remote}");
        let mut stored = MangopayWallet::get(&env.db, wallet.id.unwrap())
            .await
            .unwrap();
        assert_eq!(
            stored.balance(&env.db, &env.client).await.unwrap(),
            eur(amount)
        );
        let stored = MangopayWallet::get(&env.db, wallet.id.unwrap())
            .await
            .unwrap();
        assert_eq!(stored.facts().balance, Some(eur(amount)));
    }

    both_backends!(
        sigkill_between_the_post_and_the_commit_creates_exactly_one_transfer,
        |env: Env| async move {
            let queue = JobQueue::connect(&env.database.url).await.unwrap();
            let worker = spawn_worker(&env, &[]);
            let alice = created_user(&env, "alice@example.com").await.id.unwrap();
            let bob = created_user(&env, "bob@example.com").await.id.unwrap();
            let from = created_wallet(&env, alice, "EUR").await;
            env.sandbox()
                .credit_wallet(from.mangopay_id().unwrap(), 10_000)
                .unwrap();
            let to = wallet_created_by_the_worker(&env, &queue, bob).await;

            let mut transfer = MangopayTransfer::new(
                alice,
                from.id.unwrap(),
                to.id.unwrap(),
                eur(3_000),
                eur(100),
            )
            .unwrap();
            transfer.save(&env.db).await.unwrap();
            let id = transfer.id.unwrap();
            let key = kill_while_creating::<MangopayTransfer>(
                &env,
                &queue,
                worker,
                CREATE_MANGOPAY_TRANSFER,
                id,
                |sandbox| sandbox.transfers().len(),
            )
            .await;
            // Mangopay moved the money already.
            assert_eq!(
                env.sandbox().wallet(from.mangopay_id().unwrap()).unwrap()["Balance"]["Amount"],
                7_000
            );

            let (recovered, _restarted) =
                restart_until_synced::<MangopayTransfer>(&env, id, &key).await;
            let remote = the_one_debiting(
                env.sandbox().transfers(),
                from.mangopay_id().unwrap(),
                id,
                &key,
            );
            assert_eq!(env.sandbox().transfers().len(), 1);
            assert_eq!(recovered.mangopay_id(), remote["Id"].as_str());
            assert_eq!(remote["CreditedWalletId"], to.mangopay_id().unwrap());
            assert_eq!(remote["DebitedFunds"]["Amount"], 3_000);
            assert_eq!(recovered.facts().status, Some(TransactionStatus::Succeeded));
            assert_eq!(recovered.facts().credited_funds, Some(eur(2_900)));

            assert_balance(&env, &from, 10_000 - 3_000).await;
            assert_balance(&env, &to, 3_000 - 100).await;
        }
    );

    both_backends!(
        sigkill_between_the_post_and_the_commit_creates_exactly_one_pay_out,
        |env: Env| async move {
            let queue = JobQueue::connect(&env.database.url).await.unwrap();
            let worker = spawn_worker(&env, &[]);
            let payee = created_user(&env, "payee@example.com").await.id.unwrap();
            let account = created_account(&env, payee).await;
            let wallet = wallet_created_by_the_worker(&env, &queue, payee).await;
            env.sandbox()
                .credit_wallet(wallet.mangopay_id().unwrap(), 10_000)
                .unwrap();

            let mut pay_out = MangopayPayOut::new(
                payee,
                wallet.id.unwrap(),
                PayOutDestination::BankAccount(account.id.unwrap()),
                eur(6_000),
                eur(100),
            )
            .unwrap();
            pay_out.save(&env.db).await.unwrap();
            let id = pay_out.id.unwrap();
            let key = kill_while_creating::<MangopayPayOut>(
                &env,
                &queue,
                worker,
                CREATE_MANGOPAY_PAY_OUT,
                id,
                |sandbox| sandbox.payouts().len(),
            )
            .await;
            // Mangopay debited the wallet already.
            assert_eq!(
                env.sandbox().wallet(wallet.mangopay_id().unwrap()).unwrap()["Balance"]["Amount"],
                4_000
            );

            let (recovered, _restarted) =
                restart_until_synced::<MangopayPayOut>(&env, id, &key).await;
            let remote = the_one_debiting(
                env.sandbox().payouts(),
                wallet.mangopay_id().unwrap(),
                id,
                &key,
            );
            assert_eq!(env.sandbox().payouts().len(), 1);
            assert_eq!(recovered.mangopay_id(), remote["Id"].as_str());
            assert_eq!(remote["BankAccountId"], account.mangopay_id().unwrap());
            assert_eq!(remote["DebitedFunds"]["Amount"], 6_000);
            assert!(
                matches!(remote["Status"].as_str(), Some("CREATED" | "SUCCEEDED")),
                "{remote}"
            );
            assert!(
                matches!(
                    recovered.status(),
                    Some(TransactionStatus::Created | TransactionStatus::Succeeded)
                ),
                "{:?}",
                recovered.status()
            );

            assert_balance(&env, &wallet, 10_000 - 6_000).await;
        }
    );

    both_backends!(
        sigkill_during_pay_in_and_refund_creation_moves_money_exactly_once,
        |env: Env| async move {
            use diesel_mangopay::{MangopayPayIn, MangopayRefund};
            use diesel_mangopay_jobs::{CREATE_MANGOPAY_PAY_IN, CREATE_MANGOPAY_REFUND};

            use crate::support::money::{CARD_OK, card_pay_in, registered_card};

            let queue = JobQueue::connect(&env.database.url).await.unwrap();
            let worker = spawn_worker(&env, &[]);
            let payer = created_user(&env, "card.payer@example.com")
                .await
                .id
                .unwrap();
            let wallet = wallet_created_by_the_worker(&env, &queue, payer).await;
            let card = registered_card(&env, payer, CARD_OK).await;

            let mut pay_in = card_pay_in(payer, &wallet, &card, 10_000);
            pay_in.save(&env.db).await.unwrap();
            let id = pay_in.id().unwrap();
            let key = kill_while_creating::<MangopayPayIn>(
                &env,
                &queue,
                worker,
                CREATE_MANGOPAY_PAY_IN,
                id,
                |sandbox| sandbox.payins().len(),
            )
            .await;
            // Mangopay charged the card already.
            assert_eq!(
                env.sandbox().wallet(wallet.mangopay_id().unwrap()).unwrap()["Balance"]["Amount"],
                9_900
            );
            let (recovered, restarted) =
                restart_until_synced::<MangopayPayIn>(&env, id, &key).await;
            let pay_ins = env.sandbox().payins();
            assert_eq!(pay_ins.len(), 1, "exactly one pay-in: {pay_ins:#?}");
            assert_eq!(recovered.mangopay_id(), pay_ins[0]["Id"].as_str());
            assert_eq!(
                pay_ins[0]["Tag"].as_str(),
                Some(format!("dm:{id}:{key}").as_str())
            );
            assert_eq!(recovered.status(), Some(&TransactionStatus::Succeeded));
            assert_balance(&env, &wallet, 9_900).await;

            let mut refund = MangopayRefund::partial(id, payer, eur(4_000), eur(-40)).unwrap();
            refund.save(&env.db).await.unwrap();
            let refund_id = refund.id().unwrap();
            let key = kill_while_creating::<MangopayRefund>(
                &env,
                &queue,
                restarted,
                CREATE_MANGOPAY_REFUND,
                refund_id,
                |sandbox| sandbox.refunds().len(),
            )
            .await;
            let debited =
                env.sandbox().wallet(wallet.mangopay_id().unwrap()).unwrap()["Balance"]["Amount"]
                    .as_i64()
                    .unwrap();
            assert!(debited < 9_900, "Mangopay refunded already");
            let (recovered, _restarted) =
                restart_until_synced::<MangopayRefund>(&env, refund_id, &key).await;
            let refunds = env.sandbox().refunds();
            assert_eq!(refunds.len(), 1, "exactly one refund: {refunds:#?}");
            assert_eq!(recovered.mangopay_id(), refunds[0]["Id"].as_str());
            assert_eq!(recovered.status(), Some(&TransactionStatus::Succeeded));
            assert_balance(&env, &wallet, debited).await;
        }
    );
}
