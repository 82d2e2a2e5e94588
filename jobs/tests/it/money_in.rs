//! Money in through the worker: a pay-in waiting for 3-D Secure followed by
//! `update_mangopay_pay_in` on its backoff until it settles, a bank wire until the money
//! arrives, and a refund made by `create_mangopay_refund`; balances checked against the
//! sandbox.

use std::time::Duration;

use diesel_mangopay::{MangopayPayIn, MangopayRefund, Polling, TransactionStatus};
use diesel_mangopay_jobs::{
    CREATE_MANGOPAY_PAY_IN, CREATE_MANGOPAY_REFUND, Job, JobQueue, Registry, WorkerOptions,
};
use diesel_mangopay_sandbox::PayInOutcome;

use crate::both_backends;
use crate::common::{options, start_worker_with};
use crate::support::money::{
    CARD_3DS, card_pay_in, created_user, created_wallet, eur, registered_card, sandbox_balance,
};
use crate::support::{Env, eventually};

/// Workers following pay-ins from 200 ms, doubling up to a second.
fn following_pay_ins() -> WorkerOptions {
    let every = Polling::every(Duration::from_secs(1), 5);
    let pay_ins = Polling::backoff(Duration::from_millis(200), Duration::from_secs(1), 100);
    WorkerOptions {
        registry: Registry::standard_polling(every.clone(), every, pay_ins),
        ..options()
    }
}

async fn until_status(env: &Env, id: i64, status: TransactionStatus) -> MangopayPayIn {
    let db = env.db.clone();
    let wanted = status.clone();
    eventually(
        &format!("pay-in {id} to be {status}"),
        Duration::from_secs(60),
        || {
            let db = db.clone();
            let wanted = wanted.clone();
            async move { MangopayPayIn::get(&db, id).await.unwrap().status() == Some(&wanted) }
        },
    )
    .await;
    MangopayPayIn::get(&env.db, id).await.unwrap()
}

both_backends!(
    pay_ins_are_followed_until_they_settle_and_refunds_are_made_by_the_worker,
    |env: Env| async move {
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        let worker = start_worker_with(
            env.db.clone(),
            env.client.clone(),
            &queue,
            following_pay_ins(),
        );
        let user = created_user(&env, "worker-payer@example.com")
            .await
            .id
            .unwrap();
        let mut wallet = created_wallet(&env, user, "EUR").await;
        let card = registered_card(&env, user, CARD_3DS).await;

        let mut pay_in = card_pay_in(user, &wallet, &card, 8_000);
        pay_in.save(&env.db).await.unwrap();
        let id = pay_in.id().unwrap();
        queue
            .enqueue(Job::new(CREATE_MANGOPAY_PAY_IN, id))
            .await
            .unwrap();
        let waiting = until_status(&env, id, TransactionStatus::Created).await;
        assert_eq!(waiting.facts().secure_mode_needed, Some(true));
        // Followed: checked again while the cardholder has not completed 3-D Secure.
        let db = env.db.clone();
        eventually("two status checks", Duration::from_secs(30), || {
            let db = db.clone();
            async move {
                MangopayPayIn::get(&db, id)
                    .await
                    .unwrap()
                    .facts()
                    .status_checks
                    >= 2
            }
        })
        .await;
        env.sandbox()
            .settle_payin(waiting.mangopay_id().unwrap(), PayInOutcome::Succeeded)
            .unwrap();
        let settled = until_status(&env, id, TransactionStatus::Succeeded).await;
        assert!(
            settled.facts().next_check_at.is_none(),
            "no longer followed"
        );
        assert_eq!(sandbox_balance(&env, &wallet), 7_920);

        let mut wire =
            MangopayPayIn::bank_wire(user, wallet.id.unwrap(), eur(1_000), eur(0)).unwrap();
        wire.save(&env.db).await.unwrap();
        let wire_id = wire.id().unwrap();
        queue
            .enqueue(Job::new(CREATE_MANGOPAY_PAY_IN, wire_id))
            .await
            .unwrap();
        let wire = until_status(&env, wire_id, TransactionStatus::Created).await;
        assert!(wire.facts().wire_reference.is_some());
        env.sandbox()
            .settle_payin(wire.mangopay_id().unwrap(), PayInOutcome::Succeeded)
            .unwrap();
        until_status(&env, wire_id, TransactionStatus::Succeeded).await;
        assert_eq!(sandbox_balance(&env, &wallet), 8_920);

        let mut refund = MangopayRefund::partial(id, user, eur(2_000), eur(-20)).unwrap();
        refund.save(&env.db).await.unwrap();
        let refund_id = refund.id().unwrap();
        queue
            .enqueue(Job::new(CREATE_MANGOPAY_REFUND, refund_id))
            .await
            .unwrap();
        let db = env.db.clone();
        eventually("the refund to succeed", Duration::from_secs(60), || {
            let db = db.clone();
            async move {
                MangopayRefund::get(&db, refund_id).await.unwrap().status()
                    == Some(&TransactionStatus::Succeeded)
            }
        })
        .await;
        assert_eq!(env.sandbox().refunds().len(), 1);
        let read = wallet.balance(&env.db, &env.client).await.unwrap().amount;
        assert_eq!(read, sandbox_balance(&env, &wallet));
        assert!(read < 8_920, "the refund debited the wallet");
        worker.stop().await;
    }
);
