//! Wallets and transfers against the sandbox: create, update, refresh, balances, Mangopay's
//! refusals kept on the row, and bad input refused before anything is sent.

use diesel_mangopay::{
    Error, MangopayTransfer, MangopayWallet, Money, SyncState, TransactionStatus,
};

use crate::both_backends;
use crate::support::money::{created_user, created_wallet, eur, requests_to, sandbox_balance};
use crate::support::{Env, natural_owner};

both_backends!(
    wallets_are_created_updated_and_their_balance_recorded,
    |env: Env| async move {
        let user = created_user(&env, "wallet.owner@example.com").await;
        let owner = user.id.unwrap();
        let mut wallet = MangopayWallet::new(owner, "eur", "savings")
            .unwrap()
            .with_tag("app note");
        wallet.save(&env.db).await.unwrap();
        assert_eq!(wallet.sync().state, SyncState::New);
        assert_eq!(requests_to(&env, "POST", "/wallets"), 0, "save is local");

        wallet.create(&env.db, &env.client).await.unwrap();
        let mangopay_id = wallet.mangopay_id().unwrap().to_owned();
        let remote = env.sandbox().wallet(&mangopay_id).unwrap();
        assert_eq!(remote["Owners"][0], user.mangopay_id().unwrap());
        assert_eq!(remote["Currency"], "EUR");
        assert_eq!(remote["Description"], "savings");
        assert!(remote["Tag"].as_str().unwrap().starts_with("app note dm:"));
        assert_eq!(wallet.sync().state, SyncState::Synced);
        assert_eq!(
            wallet.tag.as_deref(),
            Some("app note"),
            "the marker is not kept"
        );
        assert_eq!(wallet.facts().balance, Some(eur(0)));
        assert_eq!(wallet.owner_mangopay_id(), user.mangopay_id());

        wallet.description = "holiday savings".into();
        wallet.tag = None;
        wallet.update(&env.db, &env.client).await.unwrap();
        let remote = env.sandbox().wallet(&mangopay_id).unwrap();
        assert_eq!(remote["Description"], "holiday savings");
        let tag = remote["Tag"].as_str().unwrap();
        assert!(
            tag.starts_with("dm:"),
            "the app's tag is cleared, the marker stays: {tag}"
        );

        env.sandbox().credit_wallet(&mangopay_id, 12_345).unwrap();
        let before = chrono::Utc::now();
        let balance = wallet.balance(&env.db, &env.client).await.unwrap();
        assert_eq!(balance, eur(12_345));
        assert_eq!(balance.to_string(), "EUR 123.45");
        let stored = MangopayWallet::get(&env.db, wallet.id.unwrap())
            .await
            .unwrap();
        assert_eq!(stored.facts().balance, Some(eur(12_345)));
        let read_at = stored.facts().balance_read_at.unwrap();
        assert!(read_at >= before - chrono::Duration::seconds(1));

        let mine = MangopayWallet::for_owner(&env.db, owner).await.unwrap();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].mangopay_id(), Some(mangopay_id.as_str()));
    }
);

both_backends!(
    bad_wallets_are_refused_before_anything_is_sent,
    |env: Env| async move {
        let e = MangopayWallet::new(1, "EURO", "x").unwrap_err();
        assert!(e.has("currency"), "{e}");
        let e = MangopayWallet::new(1, "EUR", "").unwrap_err();
        assert!(e.has("description"), "{e}");
        let e = MangopayWallet::new(1, "EUR", "x".repeat(256)).unwrap_err();
        assert!(e.has("description"), "{e}");

        // No such user.
        let mut orphan = MangopayWallet::new(9_999, "EUR", "nobody's").unwrap();
        let err = orphan.save(&env.db).await.unwrap_err();
        assert!(err.validation().is_some_and(|v| v.has("owner_id")), "{err}");
        assert!(orphan.id.is_none());
        let err = orphan.create(&env.db, &env.client).await.unwrap_err();
        assert!(err.validation().is_some_and(|v| v.has("owner_id")), "{err}");
        assert!(orphan.id.is_none());

        // A user not created at Mangopay yet: typed error, nothing written, nothing sent.
        let mut user = natural_owner();
        user.save(&env.db).await.unwrap();
        let mut wallet = MangopayWallet::new(user.id.unwrap(), "EUR", "early").unwrap();
        let err = wallet.create(&env.db, &env.client).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::ParentNotCreated {
                    field: "owner_id",
                    parent: "MangopayUser",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.is_retryable(), "the owner's create may be under way");
        assert!(wallet.id.is_none(), "the insert was rolled back");
        assert!(
            MangopayWallet::for_owner(&env.db, user.id.unwrap())
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(requests_to(&env, "POST", "/wallets"), 0);

        // Saved first, then created too early: the row stays as it was.
        wallet.save(&env.db).await.unwrap();
        let version = wallet.sync().version;
        wallet.create(&env.db, &env.client).await.unwrap_err();
        let stored = MangopayWallet::get(&env.db, wallet.id.unwrap())
            .await
            .unwrap();
        assert_eq!(stored.sync().state, SyncState::New);
        assert_eq!(stored.sync().version, version);
        assert!(stored.sync().create_idempotency_key.is_none());

        // Once the owner exists, the same row is created.
        user.create(&env.db, &env.client).await.unwrap();
        wallet.create(&env.db, &env.client).await.unwrap();
        assert!(wallet.mangopay_id().is_some());
        assert_eq!(requests_to(&env, "POST", "/wallets"), 1);
    }
);

both_backends!(
    transfers_move_money_and_refusals_are_kept,
    |env: Env| async move {
        let alice = created_user(&env, "alice@example.com").await;
        let bob = created_user(&env, "bob@example.com").await;
        let mut from = created_wallet(&env, alice.id.unwrap(), "EUR").await;
        let mut to = created_wallet(&env, bob.id.unwrap(), "EUR").await;
        env.sandbox()
            .credit_wallet(from.mangopay_id().unwrap(), 10_000)
            .unwrap();

        let mut transfer = MangopayTransfer::new(
            alice.id.unwrap(),
            from.id.unwrap(),
            to.id.unwrap(),
            eur(3_000),
            eur(100),
        )
        .unwrap()
        .with_credited_user(bob.id.unwrap())
        .with_tag("order 42");
        transfer.create(&env.db, &env.client).await.unwrap();
        let facts = transfer.facts();
        assert_eq!(facts.status, Some(TransactionStatus::Succeeded));
        assert_eq!(facts.result_code.as_deref(), Some("000000"));
        assert_eq!(facts.credited_funds, Some(eur(2_900)));
        assert!(facts.execution_date.is_some());
        assert_eq!(transfer.fees, eur(100), "fees are persisted");
        let stored = MangopayTransfer::get(&env.db, transfer.id.unwrap())
            .await
            .unwrap();
        assert_eq!(stored.fees, eur(100));
        assert_eq!(stored.facts(), transfer.facts());

        // A transfer the wallet cannot cover is created FAILED, as Mangopay answers it.
        let mut too_much = MangopayTransfer::new(
            alice.id.unwrap(),
            from.id.unwrap(),
            to.id.unwrap(),
            eur(50_000),
            eur(0),
        )
        .unwrap();
        too_much.create(&env.db, &env.client).await.unwrap();
        assert!(too_much.mangopay_id().is_some());
        assert_eq!(too_much.facts().status, Some(TransactionStatus::Failed));
        assert_eq!(too_much.facts().result_code.as_deref(), Some("001001"));
        assert!(too_much.facts().result_message.is_some());

        assert_eq!(
            from.balance(&env.db, &env.client).await.unwrap(),
            eur(7_000)
        );
        assert_eq!(to.balance(&env.db, &env.client).await.unwrap(), eur(2_900));
        assert_eq!(sandbox_balance(&env, &from), 7_000);
        assert_eq!(sandbox_balance(&env, &to), 2_900);

        // Refresh reads the same object back; a transfer cannot be changed once sent.
        transfer.refresh(&env.db, &env.client).await.unwrap();
        assert_eq!(transfer.facts().status, Some(TransactionStatus::Succeeded));
        transfer.debited_funds = eur(2_000);
        let err = transfer.save(&env.db).await.unwrap_err();
        assert!(matches!(err, Error::WrongState { .. }), "{err}");
        let listed = MangopayTransfer::for_wallet(&env.db, to.id.unwrap())
            .await
            .unwrap();
        assert_eq!(listed.len(), 2);
    }
);

both_backends!(
    bad_transfers_are_refused_before_anything_is_sent,
    |env: Env| async move {
        let e = MangopayTransfer::new(1, 1, 2, eur(0), eur(0)).unwrap_err();
        assert!(e.has("debited_funds.amount"), "{e}");
        let e = MangopayTransfer::new(1, 1, 2, eur(-5), eur(0)).unwrap_err();
        assert!(e.has("debited_funds.amount"), "{e}");
        let e = MangopayTransfer::new(1, 1, 2, eur(100), eur(101)).unwrap_err();
        assert!(e.has("fees.amount"), "{e}");
        let e = MangopayTransfer::new(1, 1, 2, eur(100), eur(-1)).unwrap_err();
        assert!(e.has("fees.amount"), "{e}");
        let gbp = Money::new(1, "GBP".parse().unwrap());
        let e = MangopayTransfer::new(1, 1, 2, eur(100), gbp).unwrap_err();
        assert!(e.has("fees.currency"), "{e}");
        let e = MangopayTransfer::new(1, 3, 3, eur(100), eur(0)).unwrap_err();
        assert!(e.has("credited_wallet_id"), "{e}");

        let alice = created_user(&env, "alice@example.com").await;
        let from = created_wallet(&env, alice.id.unwrap(), "EUR").await;
        let pounds = created_wallet(&env, alice.id.unwrap(), "GBP").await;
        let mut mismatched = MangopayTransfer::new(
            alice.id.unwrap(),
            from.id.unwrap(),
            pounds.id.unwrap(),
            eur(100),
            eur(0),
        )
        .unwrap();
        let err = mismatched.create(&env.db, &env.client).await.unwrap_err();
        let fields = err.validation().expect("a validation error");
        assert!(fields.has("credited_wallet_id"), "{err}");
        assert!(mismatched.id.is_none(), "nothing was written");

        let mut uncreated = MangopayWallet::new(alice.id.unwrap(), "EUR", "later").unwrap();
        uncreated.save(&env.db).await.unwrap();
        let mut early = MangopayTransfer::new(
            alice.id.unwrap(),
            from.id.unwrap(),
            uncreated.id.unwrap(),
            eur(100),
            eur(0),
        )
        .unwrap();
        let err = early.create(&env.db, &env.client).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::ParentNotCreated {
                    field: "credited_wallet_id",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            requests_to(&env, "POST", "/transfers"),
            0,
            "nothing was sent"
        );
    }
);
