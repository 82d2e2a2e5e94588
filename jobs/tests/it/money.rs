//! Money out through the worker alone: a user, two wallets, a bank account, a transfer and a
//! pay-out saved and enqueued at once, in no particular order. Jobs whose parents are not
//! created yet wait for them (a retry, never a request carrying a missing id), and every
//! object is created once.

use std::time::Duration;

use diesel_mangopay::Polling;
use diesel_mangopay::{
    MangopayBankAccount, MangopayPayOut, MangopayTransfer, MangopayWallet, PayOutDestination,
    SyncState, TransactionStatus,
};
use diesel_mangopay_jobs::{
    CREATE_MANGOPAY_BANK_ACCOUNT, CREATE_MANGOPAY_PAY_OUT, CREATE_MANGOPAY_TRANSFER,
    CREATE_MANGOPAY_USER, CREATE_MANGOPAY_WALLET, Job, JobQueue, Registry, WorkerOptions,
};
use diesel_mangopay_sandbox::PayoutOutcome;

use crate::both_backends;
use crate::common::{idle, options, saved_user, start_worker_with};
use crate::support::Env;
use crate::support::money::{eur, london};

both_backends!(
    jobs_enqueued_before_their_parents_exist_wait_for_them,
    |env: Env| async move {
        let alice = saved_user(&env, "alice@example.com").await.id.unwrap();
        let bob = saved_user(&env, "bob@example.com").await.id.unwrap();
        let mut from = MangopayWallet::new(alice, "EUR", "alice").unwrap();
        from.save(&env.db).await.unwrap();
        let mut to = MangopayWallet::new(bob, "EUR", "bob").unwrap();
        to.save(&env.db).await.unwrap();
        let mut account = MangopayBankAccount::new(
            alice,
            diesel_mangopay::models::BankAccountDetails::Gb {
                sort_code: "200000".into(),
                account_number: "55779911".into(),
            },
            "Alice Smith",
            london(),
        )
        .unwrap();
        account.save(&env.db).await.unwrap();
        let (from_id, to_id) = (from.id.unwrap(), to.id.unwrap());
        let mut transfer =
            MangopayTransfer::new(alice, from_id, to_id, eur(2_000), eur(100)).unwrap();
        transfer.save(&env.db).await.unwrap();
        let mut pay_out = MangopayPayOut::new(
            alice,
            from_id,
            PayOutDestination::BankAccount(account.id.unwrap()),
            eur(5_000),
            eur(0),
        )
        .unwrap();
        pay_out.save(&env.db).await.unwrap();

        // Children first: they can only wait.
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        // The bank account's job comes once the wallet is funded: the pay-out, waiting for
        // it, is never created against an empty wallet (Mangopay would fail it at once).
        let jobs = [
            (CREATE_MANGOPAY_PAY_OUT, pay_out.id.unwrap()),
            (CREATE_MANGOPAY_WALLET, from_id),
            (CREATE_MANGOPAY_WALLET, to_id),
            (CREATE_MANGOPAY_USER, alice),
            (CREATE_MANGOPAY_USER, bob),
        ];
        for (name, id) in jobs {
            queue.enqueue(Job::new(name, id)).await.unwrap();
        }
        let every = Polling::every(Duration::from_secs(1), 30);
        let worker = start_worker_with(
            env.db.clone(),
            env.client.clone(),
            &queue,
            WorkerOptions {
                registry: Registry::standard_polling(every.clone(), every.clone(), every),
                ..options()
            },
        );
        // The wallet is funded once it exists; the transfer goes after the pay-out's create.
        crate::support::eventually(
            "Alice's wallet created",
            Duration::from_secs(60),
            || async {
                MangopayWallet::get(&env.db, from_id)
                    .await
                    .unwrap()
                    .mangopay_id()
                    .is_some()
            },
        )
        .await;
        let from = MangopayWallet::get(&env.db, from_id).await.unwrap();
        env.sandbox()
            .credit_wallet(from.mangopay_id().unwrap(), 10_000)
            .unwrap();
        queue
            .enqueue(Job::new(CREATE_MANGOPAY_BANK_ACCOUNT, account.id.unwrap()))
            .await
            .unwrap();
        queue
            .enqueue(Job::new(CREATE_MANGOPAY_TRANSFER, transfer.id.unwrap()))
            .await
            .unwrap();
        crate::support::eventually("the pay-out created", Duration::from_secs(60), || async {
            MangopayPayOut::get(&env.db, pay_out.id.unwrap())
                .await
                .unwrap()
                .mangopay_id()
                .is_some()
        })
        .await;
        let created = MangopayPayOut::get(&env.db, pay_out.id.unwrap())
            .await
            .unwrap();
        env.sandbox()
            .settle_payout(created.mangopay_id().unwrap(), PayoutOutcome::Succeeded)
            .unwrap();
        idle(&queue).await;
        worker.stop().await;

        let transfer = MangopayTransfer::get(&env.db, transfer.id.unwrap())
            .await
            .unwrap();
        assert_eq!(transfer.facts().status, Some(TransactionStatus::Succeeded));
        let pay_out = MangopayPayOut::get(&env.db, pay_out.id.unwrap())
            .await
            .unwrap();
        assert_eq!(pay_out.status(), Some(&TransactionStatus::Succeeded));
        let account = MangopayBankAccount::get(&env.db, account.id.unwrap())
            .await
            .unwrap();
        assert_eq!(account.sync().state, SyncState::Synced);
        assert_eq!(env.sandbox().transfers().len(), 1);
        assert_eq!(env.sandbox().payouts().len(), 1);
        assert_eq!(crate::common::posts_to(&env, "/bankaccounts/gb"), [200]);
        assert_eq!(env.sandbox().wallets().len(), 2);
        // Nothing was sent before its parents existed.
        let refused_locally = env
            .sandbox()
            .request_log()
            .iter()
            .filter(|r| r.method == "POST" && r.status >= 400)
            .count();
        assert_eq!(refused_locally, 0, "no request carried a missing id");
        for (wallet, balance) in [(from_id, 10_000 - 2_000 - 5_000), (to_id, 2_000 - 100)] {
            let mut wallet = MangopayWallet::get(&env.db, wallet).await.unwrap();
            assert_eq!(
                wallet.balance(&env.db, &env.client).await.unwrap(),
                eur(balance)
            );
        }
    }
);
