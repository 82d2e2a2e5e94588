//! Pay-outs against the sandbox: created, followed until they settle, the pay-out-succeeded
//! hook run exactly once, refusals kept, bad input refused before anything is sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use diesel_mangopay::db::migrations;
use diesel_mangopay::{
    Db, Error, MangopayPayOut, MangopayTransfer, MangopayWallet, PayOutDestination, PayoutMode,
    TransactionStatus,
};
use diesel_mangopay::{Poll, Polling};
use diesel_mangopay_sandbox::PayoutOutcome;

use crate::both_backends;
use crate::support::Env;
use crate::support::money::{
    counting_hook, created_account, created_user, created_wallet, eur, funded, requests_to,
    sandbox_balance,
};

fn every_second(max_checks: i32) -> Polling {
    Polling {
        every: Some(Duration::from_secs(1)),
        max_checks,
        backoff_up_to: None,
    }
}

both_backends!(
    a_pay_out_is_followed_until_it_succeeds_and_its_hook_runs_once,
    |env: Env| async move {
        let runs = Arc::new(AtomicUsize::new(0));
        let db: Db = env.db.clone().with_hooks(counting_hook(runs.clone(), 1));
        let (user, mut wallet, account) = funded(&env, "payee@example.com", 10_000).await;
        let mut pay_out = MangopayPayOut::new(
            user,
            wallet.id.unwrap(),
            PayOutDestination::BankAccount(account.id.unwrap()),
            eur(6_000),
            eur(100),
        )
        .unwrap()
        .with_bank_wire_ref("invoice 7");
        pay_out.create(&db, &env.client).await.unwrap();
        let id = pay_out.id.unwrap();
        let mangopay_id = pay_out.mangopay_id().unwrap().to_owned();
        assert_eq!(pay_out.status(), Some(&TransactionStatus::Created));
        assert_eq!(sandbox_balance(&env, &wallet), 4_000, "debited at once");
        let remote = env
            .sandbox()
            .payouts()
            .into_iter()
            .find(|p| p["Id"] == mangopay_id.as_str())
            .unwrap();
        assert_eq!(remote["BankAccountId"], account.mangopay_id().unwrap());
        assert_eq!(remote["BankWireRef"], "invoice 7");

        let polling = every_second(5);
        let poll = MangopayPayOut::poll_status(&db, &env.client, id, &polling)
            .await
            .unwrap();
        assert!(matches!(poll, Poll::Again { checks: 1, .. }), "{poll:?}");
        assert_eq!(runs.load(Ordering::SeqCst), 0);

        env.sandbox()
            .settle_payout(&mangopay_id, PayoutOutcome::Succeeded)
            .unwrap();
        // The hook fails once: neither SUCCEEDED, nor the hook's own write, nor its mark is
        // recorded; the error says to poll again.
        let err = MangopayPayOut::poll_status(&db, &env.client, id, &polling)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Hook { .. }) && err.is_retryable(),
            "{err}"
        );
        let stored = MangopayPayOut::get(&db, id).await.unwrap();
        assert_eq!(stored.status(), Some(&TransactionStatus::Created));
        assert!(stored.facts().succeeded_hook_at.is_none());
        let note = stored.sync().last_error.clone().unwrap();
        assert_eq!(note.kind.as_deref(), Some("hook_failed"));
        wallet = MangopayWallet::get(&db, wallet.id.unwrap()).await.unwrap();
        assert_eq!(
            wallet.description, "main wallet",
            "the failed hook's write is undone"
        );

        let poll = MangopayPayOut::poll_status(&db, &env.client, id, &polling)
            .await
            .unwrap();
        assert_eq!(poll, Poll::Settled(TransactionStatus::Succeeded));
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2,
            "one failed run, one that committed"
        );
        let stored = MangopayPayOut::get(&db, id).await.unwrap();
        assert_eq!(stored.status(), Some(&TransactionStatus::Succeeded));
        assert!(stored.facts().succeeded_hook_at.is_some());
        assert!(stored.facts().transaction.execution_date.is_some());
        assert_eq!(stored.facts().transaction.credited_funds, Some(eur(5_900)));
        wallet = MangopayWallet::get(&db, wallet.id.unwrap()).await.unwrap();
        assert_eq!(wallet.description, "paid out 6000");

        // Never again: more polls, refreshes, and a handle without hooks.
        MangopayPayOut::poll_status(&db, &env.client, id, &polling)
            .await
            .unwrap();
        pay_out.refresh(&db, &env.client).await.unwrap();
        pay_out.refresh(&env.db, &env.client).await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }
);

both_backends!(
    two_workers_polling_one_pay_out_run_its_hook_once,
    |env: Env| async move {
        let runs = Arc::new(AtomicUsize::new(0));
        let db = env.db.clone().with_hooks(counting_hook(runs.clone(), 0));
        let (user, wallet, account) = funded(&env, "payee@example.com", 10_000).await;
        let mut pay_out = MangopayPayOut::new(
            user,
            wallet.id.unwrap(),
            PayOutDestination::BankAccount(account.id.unwrap()),
            eur(1_000),
            eur(0),
        )
        .unwrap();
        pay_out.create(&db, &env.client).await.unwrap();
        env.sandbox()
            .settle_payout(pay_out.mangopay_id().unwrap(), PayoutOutcome::Succeeded)
            .unwrap();
        let id = pay_out.id.unwrap();
        let polling = every_second(5);
        let (a, b, c) = tokio::join!(
            MangopayPayOut::poll_status(&db, &env.client, id, &polling),
            MangopayPayOut::poll_status(&db, &env.client, id, &polling),
            MangopayPayOut::poll_status(&db, &env.client, id, &polling),
        );
        for poll in [a, b, c] {
            assert_eq!(poll.unwrap(), Poll::Settled(TransactionStatus::Succeeded));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
);

both_backends!(
    a_failed_pay_out_returns_the_funds_and_balances_agree,
    |env: Env| async move {
        let (alice, mut alice_wallet, account) = funded(&env, "alice@example.com", 10_000).await;
        let bob = created_user(&env, "bob@example.com").await;
        let mut bob_wallet = created_wallet(&env, bob.id.unwrap(), "EUR").await;

        // A scripted series: a transfer, a FAILED transfer, a pay-out that succeeds, one that
        // fails, one the wallet cannot cover.
        let mut transfer = MangopayTransfer::new(
            alice,
            alice_wallet.id.unwrap(),
            bob_wallet.id.unwrap(),
            eur(2_500),
            eur(50),
        )
        .unwrap();
        transfer.create(&env.db, &env.client).await.unwrap();
        let mut refused = MangopayTransfer::new(
            alice,
            alice_wallet.id.unwrap(),
            bob_wallet.id.unwrap(),
            eur(1_000_000),
            eur(0),
        )
        .unwrap();
        refused.create(&env.db, &env.client).await.unwrap();
        assert_eq!(refused.facts().status, Some(TransactionStatus::Failed));

        let pay = |amount: i64| {
            MangopayPayOut::new(
                alice,
                alice_wallet.id.unwrap(),
                PayOutDestination::BankAccount(account.id.unwrap()),
                eur(amount),
                eur(10),
            )
            .unwrap()
        };
        let polling = every_second(5);
        let mut ok = pay(1_000);
        ok.create(&env.db, &env.client).await.unwrap();
        let mut ko = pay(2_000);
        ko.create(&env.db, &env.client).await.unwrap();
        assert_eq!(
            sandbox_balance(&env, &alice_wallet),
            10_000 - 2_500 - 1_000 - 2_000
        );
        env.sandbox()
            .settle_payout(ok.mangopay_id().unwrap(), PayoutOutcome::Succeeded)
            .unwrap();
        env.sandbox()
            .settle_payout(ko.mangopay_id().unwrap(), PayoutOutcome::generic_failure())
            .unwrap();
        for p in [&ok, &ko] {
            MangopayPayOut::poll_status(&env.db, &env.client, p.id.unwrap(), &polling)
                .await
                .unwrap();
        }
        let ko = MangopayPayOut::get(&env.db, ko.id.unwrap()).await.unwrap();
        assert_eq!(ko.status(), Some(&TransactionStatus::Failed));
        assert_eq!(
            ko.facts().transaction.result_code.as_deref(),
            Some("121999")
        );
        assert!(ko.facts().transaction.result_message.is_some());

        let mut too_big = pay(50_000);
        too_big.create(&env.db, &env.client).await.unwrap();
        assert_eq!(too_big.status(), Some(&TransactionStatus::Failed));
        assert!(too_big.facts().transaction.result_code.is_some());

        for wallet in [&mut alice_wallet, &mut bob_wallet] {
            let balance = wallet.balance(&env.db, &env.client).await.unwrap();
            assert_eq!(balance.amount, sandbox_balance(&env, wallet));
        }
        assert_eq!(
            alice_wallet.facts().balance,
            Some(eur(10_000 - 2_500 - 1_000))
        );
        assert_eq!(bob_wallet.facts().balance, Some(eur(2_450)));
        let listed: Vec<_> = MangopayPayOut::for_wallet(&env.db, alice_wallet.id.unwrap())
            .await
            .unwrap()
            .iter()
            .map(|p| p.id.unwrap())
            .collect();
        assert_eq!(
            listed,
            [ok.id.unwrap(), ko.id.unwrap(), too_big.id.unwrap()]
        );
    }
);

both_backends!(
    a_pay_out_still_created_after_the_last_check_is_reported,
    |env: Env| async move {
        let (user, wallet, account) = funded(&env, "payee@example.com", 10_000).await;
        let mut pay_out = MangopayPayOut::new(
            user,
            wallet.id.unwrap(),
            PayOutDestination::BankAccount(account.id.unwrap()),
            eur(500),
            eur(0),
        )
        .unwrap();
        pay_out.create(&env.db, &env.client).await.unwrap();
        let id = pay_out.id.unwrap();
        let polling = every_second(2);
        let first = MangopayPayOut::poll_status(&env.db, &env.client, id, &polling)
            .await
            .unwrap();
        assert!(matches!(first, Poll::Again { checks: 1, .. }));
        let last = MangopayPayOut::poll_status(&env.db, &env.client, id, &polling)
            .await
            .unwrap();
        assert_eq!(last, Poll::GaveUp { checks: 2 });
        let stored = MangopayPayOut::get(&env.db, id).await.unwrap();
        assert_eq!(stored.facts().status_checks, 2);
        let note = stored.sync().last_error.clone().unwrap();
        assert_eq!(note.kind.as_deref(), Some("still_pending"));
    }
);

both_backends!(
    an_instant_pay_out_that_succeeds_at_once_runs_the_hook_when_created,
    |env: Env| async move {
        let runs = Arc::new(AtomicUsize::new(0));
        let db = env.db.clone().with_hooks(counting_hook(runs.clone(), 0));
        let (user, wallet, account) = funded(&env, "payee@example.com", 10_000).await;
        let mut pay_out = MangopayPayOut::new(
            user,
            wallet.id.unwrap(),
            PayOutDestination::BankAccount(account.id.unwrap()),
            eur(700),
            eur(0),
        )
        .unwrap()
        .with_mode(PayoutMode::InstantPayment);
        let eligibility = pay_out.instant_eligibility(&db, &env.client).await.unwrap();
        assert!(eligibility.is_object(), "{eligibility}");
        pay_out.create(&db, &env.client).await.unwrap();
        assert_eq!(pay_out.status(), Some(&TransactionStatus::Succeeded));
        assert_eq!(
            pay_out.facts().mode_applied,
            Some(PayoutMode::InstantPayment)
        );
        assert_eq!(pay_out.mode_requested, PayoutMode::InstantPayment);
        assert!(pay_out.facts().succeeded_hook_at.is_some());
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
);

both_backends!(
    bad_pay_outs_are_refused_before_anything_is_sent,
    |env: Env| async move {
        let (alice, wallet, mut account) = funded(&env, "alice@example.com", 10_000).await;
        let (_bob, _bob_wallet, bobs_account) = funded(&env, "bob@example.com", 0).await;
        let pay_to = |destination| {
            MangopayPayOut::new(alice, wallet.id.unwrap(), destination, eur(100), eur(0)).unwrap()
        };

        let e = MangopayPayOut::new(
            alice,
            wallet.id.unwrap(),
            PayOutDestination::BankAccount(account.id.unwrap()),
            eur(100),
            eur(100),
        )
        .unwrap_err();
        assert!(e.has("fees.amount"), "{e}");
        let mut pending_mode = pay_to(PayOutDestination::BankAccount(account.id.unwrap()));
        pending_mode.mode_requested = PayoutMode::PendingResponse;
        assert!(pending_mode.validate().unwrap_err().has("mode_requested"));

        // Someone else's account.
        let mut foreign = pay_to(PayOutDestination::BankAccount(bobs_account.id.unwrap()));
        let err = foreign.create(&env.db, &env.client).await.unwrap_err();
        assert!(
            err.validation().is_some_and(|v| v.has("author_id")),
            "{err}"
        );
        assert!(foreign.id.is_none());

        // A deactivated account.
        account.deactivate(&env.db, &env.client).await.unwrap();
        let mut closed = pay_to(PayOutDestination::BankAccount(account.id.unwrap()));
        let err = closed.create(&env.db, &env.client).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::ParentNotUsable {
                    field: "bank_account_id",
                    ..
                }
            ),
            "{err}"
        );
        assert!(!err.is_retryable());
        assert!(closed.id.is_none());

        // A wallet in another currency.
        let pounds = created_wallet(&env, alice, "GBP").await;
        let fresh = created_account(&env, alice).await;
        let mut mismatched = MangopayPayOut::new(
            alice,
            pounds.id.unwrap(),
            PayOutDestination::BankAccount(fresh.id.unwrap()),
            eur(100),
            eur(0),
        )
        .unwrap();
        let err = mismatched.create(&env.db, &env.client).await.unwrap_err();
        assert!(
            err.validation().is_some_and(|v| v.has("debited_wallet_id")),
            "{err}"
        );
        assert_eq!(requests_to(&env, "POST", "/payouts"), 0, "nothing was sent");
    }
);

/// A pay-out of 10.00 EUR from a funded wallet to a bank account, created at Mangopay.
async fn created_pay_out(env: &Env, email: &str) -> MangopayPayOut {
    let (user, wallet, account) = funded(env, email, 10_000).await;
    let mut pay_out = MangopayPayOut::new(
        user,
        wallet.id.unwrap(),
        PayOutDestination::BankAccount(account.id.unwrap()),
        eur(1_000),
        eur(0),
    )
    .unwrap();
    pay_out.create(&env.db, &env.client).await.unwrap();
    pay_out
}

both_backends!(
    an_older_answer_never_takes_a_settled_pay_out_back_to_created,
    |env: Env| async move {
        let pay_out = created_pay_out(&env, "stale@example.com").await;
        let id = pay_out.id.unwrap();
        let polling = every_second(10);
        MangopayPayOut::poll_status(&env.db, &env.client, id, &polling)
            .await
            .unwrap();

        // A refresh reads CREATED, and its answer is slow to come back; meanwhile the pay-out
        // settles and a poll records SUCCEEDED.
        env.sandbox()
            .knobs()
            .set_latency(Duration::from_millis(1_500));
        let (db, client) = (env.db.clone(), env.client.clone());
        let mut stale = pay_out.clone();
        let slow = tokio::spawn(async move { stale.refresh(&db, &client).await });
        tokio::time::sleep(Duration::from_millis(500)).await;
        env.sandbox().knobs().set_latency(Duration::ZERO);
        env.sandbox()
            .settle_payout(pay_out.mangopay_id().unwrap(), PayoutOutcome::Succeeded)
            .unwrap();
        let poll = MangopayPayOut::poll_status(&env.db, &env.client, id, &polling)
            .await
            .unwrap();
        assert_eq!(poll, Poll::Settled(TransactionStatus::Succeeded));
        slow.await.unwrap().unwrap();

        let stored = MangopayPayOut::get(&env.db, id).await.unwrap();
        assert_eq!(stored.status(), Some(&TransactionStatus::Succeeded));
        assert!(stored.facts().transaction.execution_date.is_some());
        assert_eq!(stored.facts().next_check_at, None);
    }
);

both_backends!(
    pay_outs_waiting_before_the_follow_migration_owe_a_check_after_it,
    |env: Env| async move {
        let pay_out = created_pay_out(&env, "older@example.com").await;
        let id = pay_out.id.unwrap();
        MangopayPayOut::poll_status(&env.db, &env.client, id, &every_second(10))
            .await
            .unwrap();
        // The row as an earlier version of the library left it: no follow column.
        let mut conn = env.db.get().unwrap();
        assert_eq!(
            migrations::revert_last(&mut conn).unwrap(),
            "20261122000008",
            "the rate-budget migration"
        );
        assert_eq!(
            migrations::revert_last(&mut conn).unwrap(),
            "20261121000007",
            "the money-in migration"
        );
        assert_eq!(
            migrations::revert_last(&mut conn).unwrap(),
            "20261121000006",
            "the UBO migration"
        );
        assert_eq!(
            migrations::revert_last(&mut conn).unwrap(),
            "20261121000005",
            "the KYC migration"
        );
        let reverted = migrations::revert_last(&mut conn).unwrap();
        assert_eq!(reverted, "20261121000004", "the follow migration");
        migrations::run_pending(&mut conn).unwrap();
        drop(conn);
        let migrated = MangopayPayOut::get(&env.db, id).await.unwrap();
        let due = migrated.facts().next_check_at.expect("a check is owed");
        let late = chrono::Utc::now() - due;
        assert!(
            late >= chrono::Duration::zero() && late < chrono::Duration::minutes(5),
            "owed now, in UTC: {due}"
        );
    }
);
