//! Money in against the sandbox: cards registered through the tokenization server, direct
//! card pay-ins (success, refusal, 3-D Secure), web and bank-wire pay-ins followed until they
//! settle, full and partial refunds; balances checked against the sandbox after each; bad
//! input refused before anything is sent; no card data in the database or `Debug` output.

use std::time::Duration;

use diesel::QueryableByName;
use diesel::RunQueryDsl;
use diesel::sql_types::Text;
use diesel_mangopay::client::PageRequest;
use diesel_mangopay::models::{CardRegistrationStatus, CardValidity};
use diesel_mangopay::sync::Resource;
use diesel_mangopay::{
    CardType, CurrencyCode, Error, MangopayCard, MangopayCardRegistration, MangopayClient,
    MangopayPayIn, MangopayRefund, MangopayWallet, Money, Poll, Polling, SecureMode, SyncState,
    TransactionStatus,
};
use diesel_mangopay_sandbox::{AnswerLoss, PayInOutcome};

use crate::both_backends;
use crate::support::money::{
    CARD_3DS, CARD_OK, CARD_REFUSED, CVC, browser, card_pay_in, created_user, created_wallet, eur,
    registered_card, requests_to, sandbox_balance, tokenize,
};
use crate::support::{Env, RECONCILE_AFTER, client_config};

fn quick() -> Polling {
    Polling::backoff(Duration::from_millis(10), Duration::from_millis(50), 20)
}

/// The wallet's balance as the library reads it back, checked against the sandbox's.
async fn balance(env: &Env, wallet: &mut MangopayWallet) -> i64 {
    let read = wallet.balance(&env.db, &env.client).await.unwrap().amount;
    assert_eq!(
        read,
        sandbox_balance(env, wallet),
        "the library and Mangopay agree"
    );
    read
}

/// A user, a EUR wallet of theirs and a card of theirs, all at Mangopay.
async fn payer(env: &Env, email: &str, number: &str) -> (i64, MangopayWallet, MangopayCard) {
    let user = created_user(env, email).await.id.unwrap();
    let wallet = created_wallet(env, user, "EUR").await;
    let card = registered_card(env, user, number).await;
    (user, wallet, card)
}

#[derive(QueryableByName)]
struct Dump {
    #[diesel(sql_type = Text)]
    text: String,
}

/// Every text the money-in tables hold, concatenated.
async fn stored_text(env: &Env) -> String {
    let queries = [
        "SELECT COALESCE(alias, '') || COALESCE(expiration_date, '') || COALESCE(fingerprint, '') \
         || COALESCE(card_holder_name, '') || COALESCE(api_payload, '') || COALESCE(last_error, '') \
         AS text FROM mangopay_cards",
        "SELECT COALESCE(access_key, '') || COALESCE(preregistration_data, '') \
         || COALESCE(card_registration_url, '') || COALESCE(api_payload, '') \
         || COALESCE(last_error, '') AS text FROM mangopay_card_registrations",
        "SELECT COALESCE(browser_info, '') || COALESCE(api_payload, '') || COALESCE(last_error, '') \
         AS text FROM mangopay_pay_ins",
        "SELECT COALESCE(api_payload, '') || COALESCE(last_error, '') AS text FROM mangopay_refunds",
    ];
    let mut all = String::new();
    for query in queries {
        let rows = env
            .db
            .run(move |conn| {
                diesel::sql_query(query)
                    .load::<Dump>(conn)
                    .map_err(diesel_mangopay::DbError::from)
            })
            .await
            .unwrap();
        for row in rows {
            all.push_str(&row.text);
            all.push('\n');
        }
    }
    all
}

both_backends!(
    a_card_is_registered_through_the_tokenization_server_and_no_card_data_is_kept,
    |env: Env| async move {
        let user = created_user(&env, "card@example.com").await.id.unwrap();
        let mut registration =
            MangopayCardRegistration::new(user, eur(0).currency, CardType::CbVisaMastercard)
                .unwrap()
                .with_tag("checkout 1");
        registration.create(&env.db, &env.client).await.unwrap();
        assert_eq!(
            registration.status(),
            Some(&CardRegistrationStatus::Created)
        );
        let prereg = registration.preregistration_data().unwrap();
        assert!(!prereg.access_key.is_empty() && !prereg.preregistration_data.is_empty());
        assert!(prereg.card_registration_url.starts_with("http://"));
        let shown = format!("{registration:?} {prereg:?}");
        assert!(!shown.contains(&prereg.access_key), "{shown}");
        assert!(!shown.contains(&prereg.preregistration_data), "{shown}");

        let data = tokenize(&prereg, CARD_OK).await;
        assert!(data.starts_with("data="), "{data}");
        let card = registration
            .complete(&env.db, &env.client, &data, Some("Alex Smith"))
            .await
            .unwrap();
        assert_eq!(
            registration.status(),
            Some(&CardRegistrationStatus::Validated)
        );
        assert_eq!(registration.facts().result_code.as_deref(), Some("000000"));
        assert_eq!(registration.facts().card_id, card.id());
        let f = card.facts();
        assert_eq!(
            f.alias.as_deref().map(|a| a.ends_with("1119")),
            Some(true),
            "{f:?}"
        );
        assert_eq!(f.expiration_date.as_deref(), Some("1239"));
        assert_eq!(f.validity, Some(CardValidity::Unchecked));
        assert!(f.card_provider.is_some() && f.country.is_some() && f.fingerprint.is_some());
        assert!(card.active);
        assert_eq!(card.tag.as_deref(), Some("checkout 1"));
        assert_eq!(
            MangopayCard::for_user(&env.db, user).await.unwrap().len(),
            1
        );

        // Completing again returns the same card and sends nothing.
        let puts = requests_to(&env, "PUT", "cardregistrations");
        let again = registration
            .complete(&env.db, &env.client, &data, None)
            .await
            .unwrap();
        assert_eq!(again.id(), card.id());
        assert_eq!(requests_to(&env, "PUT", "cardregistrations"), puts);

        // Neither the number, nor the CVC, nor the registration data is kept or shown; the
        // tokenization credentials are dropped once used.
        let stored = stored_text(&env).await;
        assert!(registration.preregistration_data().is_err());
        assert!(!stored.contains(&prereg.access_key), "{stored}");
        assert!(!stored.contains(&prereg.preregistration_data), "{stored}");
        let token = data.trim_start_matches("data=");
        assert!(!stored.contains(CARD_OK), "{stored}");
        assert!(!stored.contains(token), "{stored}");
        assert!(!stored.to_lowercase().contains("cvx"), "{stored}");
        assert!(!stored.contains(&format!("\"{CVC}\"")), "{stored}");
        let shown = format!("{card:?} {registration:?}");
        assert!(
            !shown.contains(CARD_OK) && !shown.contains(token),
            "{shown}"
        );
    }
);

both_backends!(
    bad_card_input_is_refused_before_anything_is_sent,
    |env: Env| async move {
        let user = created_user(&env, "bad-card@example.com").await.id.unwrap();
        let jpy: CurrencyCode = "XAF".parse().unwrap();
        let e = MangopayCardRegistration::new(user, jpy, CardType::CbVisaMastercard).unwrap_err();
        assert!(e.has("currency"), "{e}");
        let e = MangopayCardRegistration::new(user, eur(0).currency, CardType::from_api("DINERS"))
            .unwrap_err();
        assert!(e.has("card_type"), "{e}");

        let mut registration =
            MangopayCardRegistration::new(user, eur(0).currency, CardType::Maestro).unwrap();
        registration.create(&env.db, &env.client).await.unwrap();
        for bad in ["garbage", "data=", "errorCode=105202", "data=a b"] {
            let err = registration
                .complete(&env.db, &env.client, bad, None)
                .await
                .unwrap_err();
            assert!(
                matches!(&err, Error::Validation(e) if e.has("registration_data")),
                "{bad}: {err}"
            );
        }
        assert_eq!(requests_to(&env, "PUT", "cardregistrations"), 0);

        // Well-formed data the tokenization server never issued: Mangopay refuses it, and the
        // registration keeps its result code.
        let err = registration
            .complete(&env.db, &env.client, "data=not-a-token", None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::WrongState { .. }), "{err}");
        let stored = MangopayCardRegistration::get(&env.db, registration.id().unwrap())
            .await
            .unwrap();
        assert_eq!(stored.status(), Some(&CardRegistrationStatus::Error));
        assert!(stored.facts().result_code.is_some());
        assert!(stored.facts().card_id.is_none());

        // Pay-ins: amounts, fees, addresses, descriptors.
        let wallet = created_wallet(&env, user, "EUR").await;
        let direct = |debited: Money, fees: Money, ip: &str| {
            MangopayPayIn::card_direct(
                user,
                wallet.id.unwrap(),
                1,
                debited,
                fees,
                "https://shop.example.com/return",
                browser(),
                ip,
            )
        };
        let e = direct(eur(0), eur(0), "203.0.113.7").unwrap_err();
        assert!(e.has("debited_funds.amount"), "{e}");
        let e = direct(eur(-5), eur(0), "203.0.113.7").unwrap_err();
        assert!(e.has("debited_funds.amount"), "{e}");
        let e = direct(eur(100), eur(101), "203.0.113.7").unwrap_err();
        assert!(e.has("fees.amount"), "{e}");
        let e = direct(eur(100), eur(1), "not an address").unwrap_err();
        assert!(e.has("ip_address"), "{e}");
        let mut info = browser();
        info.color_depth = 7;
        let e = MangopayPayIn::card_direct(
            user,
            wallet.id.unwrap(),
            1,
            eur(100),
            eur(0),
            "ftp://nowhere",
            info,
            "::1",
        )
        .unwrap_err();
        assert!(
            e.has("browser_info.color_depth") && e.has("secure_mode_return_url"),
            "{e}"
        );
        let mut long = direct(eur(100), eur(1), "::1")
            .unwrap()
            .with_statement_descriptor("far too long here");
        let e = long.save(&env.db).await.unwrap_err();
        assert!(
            matches!(&e, Error::Validation(v) if v.has("statement_descriptor")),
            "{e}"
        );
        let e = MangopayPayIn::card_web(
            user,
            wallet.id.unwrap(),
            eur(100),
            eur(0),
            "https://x.example",
            "French",
        )
        .unwrap_err();
        assert!(e.has("culture"), "{e}");

        // A card pay-in without an existing card, or to a wallet not created.
        let mut no_card = direct(eur(100), eur(1), "::1").unwrap();
        no_card.credited_wallet_id = wallet.id.unwrap();
        let err = no_card.save(&env.db).await.unwrap_err();
        assert!(
            matches!(&err, Error::Validation(e) if e.has("card_id")),
            "{err}"
        );
        let card = registered_card(&env, user, CARD_OK).await;
        let mut uncreated = MangopayWallet::new(user, "EUR", "later").unwrap();
        uncreated.save(&env.db).await.unwrap();
        let mut pay_in = card_pay_in(user, &uncreated, &card, 1000);
        let err = pay_in.create(&env.db, &env.client).await.unwrap_err();
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
        assert_eq!(requests_to(&env, "POST", "payins"), 0);
    }
);

both_backends!(
    a_direct_card_pay_in_credits_the_wallet_and_a_refused_one_is_kept_with_its_code,
    |env: Env| async move {
        let (user, mut wallet, card) = payer(&env, "payer@example.com", CARD_OK).await;
        let mut pay_in = card_pay_in(user, &wallet, &card, 10_000)
            .with_statement_descriptor("SHOP 42")
            .with_tag("order 42");
        pay_in.create(&env.db, &env.client).await.unwrap();
        assert_eq!(pay_in.status(), Some(&TransactionStatus::Succeeded));
        let t = &pay_in.facts().transaction;
        assert_eq!(t.result_code.as_deref(), Some("000000"));
        assert!(t.execution_date.is_some());
        assert_eq!(t.credited_funds, Some(eur(9_900)));
        assert_eq!(pay_in.facts().secure_mode_needed, Some(false));
        assert_eq!(balance(&env, &mut wallet).await, 9_900);
        let mut card = MangopayCard::get(&env.db, card.id().unwrap())
            .await
            .unwrap();
        card.request_card_info(&env.db, &env.client).await.unwrap();
        assert_eq!(card.facts().validity, Some(CardValidity::Valid));
        let remote = env.sandbox().payin(pay_in.mangopay_id().unwrap()).unwrap();
        assert_eq!(remote["StatementDescriptor"], "SHOP 42");
        assert_eq!(remote["IpAddress"], "203.0.113.7");
        assert_eq!(remote["BrowserInfo"]["ColorDepth"], 24);

        let refused_card = registered_card(&env, user, CARD_REFUSED).await;
        let mut refused = card_pay_in(user, &wallet, &refused_card, 5_000);
        refused.create(&env.db, &env.client).await.unwrap();
        let stored = MangopayPayIn::get(&env.db, refused.id().unwrap())
            .await
            .unwrap();
        assert_eq!(stored.status(), Some(&TransactionStatus::Failed));
        assert_eq!(
            stored.facts().transaction.result_code.as_deref(),
            Some("101101")
        );
        assert!(stored.facts().transaction.result_message.is_some());
        assert_eq!(balance(&env, &mut wallet).await, 9_900, "nothing credited");
    }
);

both_backends!(
    a_pay_in_needing_3ds_waits_until_the_cardholder_completes_it,
    |env: Env| async move {
        let (user, mut wallet, card) = payer(&env, "3ds@example.com", CARD_3DS).await;
        let mut pay_in =
            card_pay_in(user, &wallet, &card, 4_000).with_secure_mode(SecureMode::Force);
        pay_in.create(&env.db, &env.client).await.unwrap();
        assert_eq!(pay_in.status(), Some(&TransactionStatus::Created));
        assert_eq!(pay_in.facts().secure_mode_needed, Some(true));
        assert!(pay_in.facts().secure_mode_redirect_url.is_some());
        assert!(pay_in.facts().next_check_at.is_some(), "followed");
        let id = pay_in.id().unwrap();
        let poll = MangopayPayIn::poll_status(&env.db, &env.client, id, &quick())
            .await
            .unwrap();
        assert!(matches!(poll, Poll::Again { checks: 1, .. }), "{poll:?}");
        assert_eq!(balance(&env, &mut wallet).await, 0);

        env.sandbox()
            .settle_payin(pay_in.mangopay_id().unwrap(), PayInOutcome::Succeeded)
            .unwrap();
        let poll = MangopayPayIn::poll_status(&env.db, &env.client, id, &quick())
            .await
            .unwrap();
        assert_eq!(poll, Poll::Settled(TransactionStatus::Succeeded));
        let stored = MangopayPayIn::get(&env.db, id).await.unwrap();
        assert!(stored.facts().next_check_at.is_none(), "no longer followed");
        assert_eq!(balance(&env, &mut wallet).await, 3_960);

        // A second one the cardholder fails.
        let mut failed = card_pay_in(user, &wallet, &card, 1_000);
        failed.create(&env.db, &env.client).await.unwrap();
        env.sandbox()
            .settle_payin(
                failed.mangopay_id().unwrap(),
                PayInOutcome::Failed {
                    result_code: "101301".into(),
                    result_message: "Secure mode: 3DSecure authentication has failed".into(),
                },
            )
            .unwrap();
        failed.refresh(&env.db, &env.client).await.unwrap();
        assert_eq!(failed.status(), Some(&TransactionStatus::Failed));
        assert_eq!(
            failed.facts().transaction.result_code.as_deref(),
            Some("101301")
        );
        assert_eq!(balance(&env, &mut wallet).await, 3_960);
    }
);

both_backends!(
    web_and_bank_wire_pay_ins_settle_when_the_money_arrives,
    |env: Env| async move {
        let user = created_user(&env, "wire@example.com").await.id.unwrap();
        let mut wallet = created_wallet(&env, user, "EUR").await;
        let mut web = MangopayPayIn::card_web(
            user,
            wallet.id.unwrap(),
            eur(2_000),
            eur(0),
            "https://shop.example.com/back",
            "FR",
        )
        .unwrap();
        web.create(&env.db, &env.client).await.unwrap();
        assert_eq!(web.status(), Some(&TransactionStatus::Created));
        assert!(
            web.facts()
                .redirect_url
                .as_deref()
                .is_some_and(|u| u.starts_with("http"))
        );
        env.sandbox()
            .settle_payin(web.mangopay_id().unwrap(), PayInOutcome::Succeeded)
            .unwrap();
        let poll = MangopayPayIn::poll_status(&env.db, &env.client, web.id().unwrap(), &quick())
            .await
            .unwrap();
        assert_eq!(poll, Poll::Settled(TransactionStatus::Succeeded));
        assert_eq!(balance(&env, &mut wallet).await, 2_000);

        let mut wire =
            MangopayPayIn::bank_wire(user, wallet.id.unwrap(), eur(50_000), eur(500)).unwrap();
        wire.create(&env.db, &env.client).await.unwrap();
        let stored = MangopayPayIn::get(&env.db, wire.id().unwrap())
            .await
            .unwrap();
        assert_eq!(stored.status(), Some(&TransactionStatus::Created));
        assert!(stored.facts().wire_reference.is_some());
        let account = stored.facts().bank_account.clone().expect("where to wire");
        assert!(account["IBAN"].is_string(), "{account}");
        assert_eq!(
            balance(&env, &mut wallet).await,
            2_000,
            "nothing until the wire arrives"
        );
        env.sandbox()
            .settle_payin(wire.mangopay_id().unwrap(), PayInOutcome::Succeeded)
            .unwrap();
        let poll = MangopayPayIn::poll_status(&env.db, &env.client, wire.id().unwrap(), &quick())
            .await
            .unwrap();
        assert_eq!(poll, Poll::Settled(TransactionStatus::Succeeded));
        assert_eq!(balance(&env, &mut wallet).await, 2_000 + 49_500);
    }
);

both_backends!(
    refunds_partial_then_full_never_above_the_pay_in,
    |env: Env| async move {
        let (user, mut wallet, card) = payer(&env, "refund@example.com", CARD_OK).await;
        let mut pay_in = card_pay_in(user, &wallet, &card, 10_000);
        pay_in.create(&env.db, &env.client).await.unwrap();
        assert_eq!(balance(&env, &mut wallet).await, 9_900);
        let pay_in_id = pay_in.id().unwrap();

        let mut partial = MangopayRefund::partial(pay_in_id, user, eur(3_000), eur(-30)).unwrap();
        partial.create(&env.db, &env.client).await.unwrap();
        assert_eq!(partial.status(), Some(&TransactionStatus::Succeeded));
        assert!(partial.facts().transaction.execution_date.is_some());
        let after_partial = balance(&env, &mut wallet).await;
        assert!(after_partial < 9_900, "the wallet was debited");

        // Above what is left: refused before anything is sent, nothing written.
        let posts = requests_to(&env, "POST", "refunds");
        let mut above = MangopayRefund::partial(pay_in_id, user, eur(7_001), eur(0)).unwrap();
        let err = above.create(&env.db, &env.client).await.unwrap_err();
        assert!(
            matches!(&err, Error::Validation(e) if e.has("debited_funds.amount")),
            "{err}"
        );
        assert!(above.id().is_none(), "nothing written");
        let err = MangopayRefund::partial(pay_in_id, user, eur(10), eur(-71))
            .unwrap()
            .create(&env.db, &env.client)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Validation(e) if e.has("fees.amount")),
            "{err}"
        );
        assert_eq!(requests_to(&env, "POST", "refunds"), posts);
        let e = MangopayRefund::partial(pay_in_id, user, eur(0), eur(0)).unwrap_err();
        assert!(e.has("debited_funds.amount"), "{e}");

        // The rest, fully, as django-mangopay's create_simple did.
        let (succeeded, full) =
            MangopayRefund::create_simple(&env.db, &env.client, pay_in_id, user)
                .await
                .unwrap();
        assert!(succeeded, "{:?}", full.facts());
        assert!(
            full.facts().debited_funds.is_some(),
            "the amount Mangopay refunded is kept"
        );
        balance(&env, &mut wallet).await;
        assert_eq!(
            MangopayRefund::for_pay_in(&env.db, pay_in_id)
                .await
                .unwrap()
                .len(),
            2
        );
        let err = MangopayRefund::full(pay_in_id, user)
            .create(&env.db, &env.client)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Validation(_)), "{err}");

        // A pay-in that failed is not refunded.
        let refused_card = registered_card(&env, user, CARD_REFUSED).await;
        let mut refused = card_pay_in(user, &wallet, &refused_card, 1_000);
        refused.create(&env.db, &env.client).await.unwrap();
        let err = MangopayRefund::full(refused.id().unwrap(), user)
            .create(&env.db, &env.client)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::ParentNotUsable {
                    field: "pay_in_id",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(requests_to(&env, "POST", "refunds"), posts + 1);
    }
);

both_backends!(a_deactivated_card_is_not_charged, |env: Env| async move {
    let (user, wallet, mut card) = payer(&env, "deactivate@example.com", CARD_OK).await;
    card.deactivate(&env.db, &env.client).await.unwrap();
    assert!(!card.active);
    let remote = env
        .sandbox()
        .cards()
        .into_iter()
        .find(|c| c["Id"] == card.mangopay_id().unwrap())
        .unwrap();
    assert_eq!(remote["Active"], false);
    let mut pay_in = card_pay_in(user, &wallet, &card, 1_000);
    let err = pay_in.create(&env.db, &env.client).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::ParentNotUsable {
                field: "card_id",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(requests_to(&env, "POST", "payins"), 0);
});

both_backends!(
    a_refund_waiting_for_an_operator_still_counts_against_the_pay_in,
    |env: Env| async move {
        let (user, wallet, card) = payer(&env, "operator@example.com", CARD_OK).await;
        let mut pay_in = card_pay_in(user, &wallet, &card, 10_000);
        pay_in.create(&env.db, &env.client).await.unwrap();
        let mut first =
            MangopayRefund::partial(pay_in.id().unwrap(), user, eur(6_000), eur(0)).unwrap();
        first.save(&env.db).await.unwrap();
        // Its outcome could not be settled: failed, its key kept for an operator. Mangopay
        // may have made it.
        env.sql(&format!(
            "UPDATE mangopay_refunds SET sync_state = 'failed', \
             create_idempotency_key = '00000000-0000-4000-8000-000000000001' WHERE id = {}",
            first.id().unwrap()
        ))
        .await;
        let err = MangopayRefund::partial(pay_in.id().unwrap(), user, eur(6_000), eur(0))
            .unwrap()
            .create(&env.db, &env.client)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Validation(e) if e.has("debited_funds.amount")),
            "{err}"
        );
        assert_eq!(requests_to(&env, "POST", "refunds"), 0);
    }
);

both_backends!(
    completing_a_registration_whose_card_was_not_recorded_records_it,
    |env: Env| async move {
        let user = created_user(&env, "crashed@example.com").await.id.unwrap();
        let mut registration =
            MangopayCardRegistration::new(user, eur(0).currency, CardType::CbVisaMastercard)
                .unwrap();
        registration.create(&env.db, &env.client).await.unwrap();
        let data = tokenize(&registration.preregistration_data().unwrap(), CARD_OK).await;
        let card = registration
            .complete(&env.db, &env.client, &data, None)
            .await
            .unwrap();
        // As if the process stopped after Mangopay's answer was recorded, before the card was.
        env.sql(&format!(
            "UPDATE mangopay_card_registrations SET card_id = NULL WHERE id = {}",
            registration.id().unwrap()
        ))
        .await;
        env.sql(&format!(
            "DELETE FROM mangopay_cards WHERE id = {}",
            card.id().unwrap()
        ))
        .await;
        let again = registration
            .complete(&env.db, &env.client, &data, None)
            .await
            .unwrap();
        assert_eq!(again.mangopay_id(), card.mangopay_id());
        assert!(again.facts().alias.is_some());
        assert_eq!(requests_to(&env, "PUT", "cardregistrations"), 1);

        // As if the process stopped after the card's row was made, before its details.
        env.sql(&format!(
            "UPDATE mangopay_cards SET api_payload = NULL, alias = NULL WHERE id = {}",
            again.id().unwrap()
        ))
        .await;
        let detailed = registration
            .complete(&env.db, &env.client, &data, None)
            .await
            .unwrap();
        assert_eq!(detailed.id(), again.id());
        assert!(detailed.facts().alias.is_some(), "the details are read");
        assert!(detailed.sync().api_payload.is_some());
    }
);

both_backends!(
    a_card_pay_in_is_never_sent_after_its_window,
    |env: Env| async move {
        let (user, mut wallet, card) = payer(&env, "late@example.com", CARD_OK).await;
        let window = Duration::from_secs(3);
        let client = MangopayClient::new(
            client_config(&env.sandbox)
                .card_payment_window(window)
                .build()
                .unwrap(),
        )
        .unwrap();
        client
            .list("users", PageRequest::default())
            .await
            .expect("the token is fetched first");
        let posts = || requests_to(&env, "POST", "payins/card/direct");

        // The first send is lost before Mangopay works on it: within the window the same key
        // would be resent; past it the key is only read back and settled by tag, and the row
        // fails with nothing charged, instead of the card being charged late.
        env.sandbox().knobs().fail_next(1);
        let mut pay_in = card_pay_in(user, &wallet, &card, 3_000);
        let first = pay_in.create(&env.db, &client).await.unwrap_err();
        assert!(matches!(first, Error::OutcomeUnknown { .. }), "{first}");
        assert_eq!(posts(), 1);
        tokio::time::sleep(window).await;
        let mut outcome = pay_in.create(&env.db, &client).await.unwrap_err();
        for _ in 0..5 {
            if !matches!(outcome, Error::OutcomeUnknown { .. }) {
                break;
            }
            tokio::time::sleep(RECONCILE_AFTER).await;
            outcome = pay_in.create(&env.db, &client).await.unwrap_err();
        }
        assert!(
            matches!(outcome, Error::SendWindowPassed { window_secs: 3, .. }),
            "{outcome}"
        );
        assert!(!outcome.is_retryable());
        assert_eq!(posts(), 1, "the key was never resent past the window");
        let stored = MangopayPayIn::get(&env.db, pay_in.id().unwrap())
            .await
            .unwrap();
        let sync = stored.sync();
        assert_eq!(sync.state, SyncState::Failed);
        assert!(sync.mangopay_id.is_none());
        assert!(sync.create_idempotency_key.is_none(), "no key to resend");
        let note = sync.last_error.as_ref().unwrap();
        assert_eq!(note.kind.as_deref(), Some("send_window_passed"));
        // Calling create again sends nothing either, and the sweep does not pick the row up.
        let again = pay_in.create(&env.db, &client).await.unwrap_err();
        assert!(matches!(again, Error::SendWindowPassed { .. }), "{again}");
        assert_eq!(posts(), 1);
        let due = diesel_mangopay::sync::sweep::claim_due(
            &env.db,
            diesel_mangopay::models::PAY_INS,
            &diesel_mangopay::sync::SweepOptions::default(),
            &diesel_mangopay::sync::Lease::random(),
        )
        .await
        .unwrap()
        .unwrap_or_default();
        assert!(due.is_empty(), "{due:?}");

        // A pay-in saved and left (its job lost, a backlog) is not sent once the window passed.
        let mut left = card_pay_in(user, &wallet, &card, 2_000);
        left.save(&env.db).await.unwrap();
        tokio::time::sleep(window).await;
        let late = left.create(&env.db, &client).await.unwrap_err();
        assert!(matches!(late, Error::SendWindowPassed { .. }), "{late}");
        assert_eq!(posts(), 1, "nothing sent");
        assert!(env.sandbox().payins().is_empty());
        assert_eq!(balance(&env, &mut wallet).await, 0);

        // Within the window a card pay-in goes through as ever.
        let mut on_time = card_pay_in(user, &wallet, &card, 1_000);
        on_time.create(&env.db, &client).await.unwrap();
        assert_eq!(on_time.status(), Some(&TransactionStatus::Succeeded));
        assert_eq!(balance(&env, &mut wallet).await, 990);

        // Mangopay charges the card and its answer is lost: past the window the charge is
        // still found (read back, or by its tag) and recorded, never sent again.
        env.sandbox().knobs().fail_next_after_work(1);
        let mut charged = card_pay_in(user, &wallet, &card, 1_500);
        charged.create(&env.db, &client).await.unwrap_err();
        let sent = posts();
        tokio::time::sleep(window).await;
        let mut result = charged.create(&env.db, &client).await;
        for _ in 0..5 {
            if !matches!(result, Err(Error::OutcomeUnknown { .. })) {
                break;
            }
            tokio::time::sleep(RECONCILE_AFTER).await;
            result = charged.create(&env.db, &client).await;
        }
        result.unwrap();
        assert_eq!(charged.status(), Some(&TransactionStatus::Succeeded));
        assert_eq!(posts(), sent, "found, not sent again");
        assert_eq!(balance(&env, &mut wallet).await, 990 + 1_485);
    }
);

both_backends!(
    two_calls_completing_one_registration_make_one_card,
    |env: Env| async move {
        let user = created_user(&env, "double@example.com").await.id.unwrap();
        let mut registration =
            MangopayCardRegistration::new(user, eur(0).currency, CardType::CbVisaMastercard)
                .unwrap();
        registration.create(&env.db, &env.client).await.unwrap();
        let data = tokenize(&registration.preregistration_data().unwrap(), CARD_OK).await;
        // A double submit: both calls start before either has Mangopay's answer.
        env.sandbox()
            .knobs()
            .set_latency(Duration::from_millis(800));
        let (mut a, mut b) = (registration.clone(), registration.clone());
        let (first, second) = tokio::join!(
            a.complete(&env.db, &env.client, &data, None),
            b.complete(&env.db, &env.client, &data, None)
        );
        env.sandbox().knobs().set_latency(Duration::ZERO);
        let (card, busy) = match (first, second) {
            (Ok(card), Err(busy)) | (Err(busy), Ok(card)) => (card, busy),
            other => panic!("one call completes, the other is turned away: {other:?}"),
        };
        assert!(matches!(busy, Error::Busy { .. }), "{busy}");
        assert!(busy.is_retryable());
        assert_eq!(requests_to(&env, "PUT", "cardregistrations"), 1);
        assert_eq!(
            MangopayCard::for_user(&env.db, user).await.unwrap().len(),
            1
        );
        // Trying again once the first call is done returns its card.
        let again = registration
            .complete(&env.db, &env.client, &data, None)
            .await
            .unwrap();
        assert_eq!(again.id(), card.id());
        assert_eq!(requests_to(&env, "PUT", "cardregistrations"), 1);
    }
);

both_backends!(
    save_card_id_records_only_the_users_own_card_and_never_overwrites,
    |env: Env| async move {
        let user = created_user(&env, "owner@example.com").await.id.unwrap();
        let stranger = created_user(&env, "stranger@example.com").await.id.unwrap();
        let strangers_card = registered_card(&env, stranger, CARD_OK).await;

        let mut registration =
            MangopayCardRegistration::new(user, eur(0).currency, CardType::CbVisaMastercard)
                .unwrap();
        registration.create(&env.db, &env.client).await.unwrap();
        let err = registration
            .save_card_id(
                &env.db,
                &env.client,
                strangers_card.mangopay_id().unwrap(),
                None,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::WrongState { reason, .. } if reason.contains("belongs to")),
            "{err}"
        );
        let missing = registration
            .save_card_id(&env.db, &env.client, "card_m_01NOSUCHCARD", None)
            .await
            .unwrap_err();
        assert_eq!(
            missing.api().and_then(|e| e.status()),
            Some(404),
            "{missing}"
        );
        let empty = registration
            .save_card_id(&env.db, &env.client, "", None)
            .await
            .unwrap_err();
        assert!(
            matches!(&empty, Error::Validation(e) if e.has("card_mangopay_id")),
            "{empty}"
        );
        assert!(
            MangopayCard::for_user(&env.db, user)
                .await
                .unwrap()
                .is_empty()
        );
        let stored = MangopayCardRegistration::get(&env.db, registration.id().unwrap())
            .await
            .unwrap();
        assert_eq!(stored.facts().card_id, None);
        assert_eq!(stored.facts().mangopay_card_id, None);

        // The registration makes its card; another card of the same user is not recorded
        // over it, and its own is (parity with django-mangopay) the same row.
        let data = tokenize(&registration.preregistration_data().unwrap(), CARD_OK).await;
        let own = registration
            .complete(&env.db, &env.client, &data, None)
            .await
            .unwrap();
        let other = registered_card(&env, user, CARD_3DS).await;
        let err = registration
            .save_card_id(&env.db, &env.client, other.mangopay_id().unwrap(), None)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::WrongState { reason, .. } if reason.contains("made card")),
            "{err}"
        );
        assert_eq!(registration.facts().card_id, own.id());
        let same = registration
            .save_card_id(&env.db, &env.client, own.mangopay_id().unwrap(), None)
            .await
            .unwrap();
        assert_eq!(same.id(), own.id());
        let stored = MangopayCardRegistration::get(&env.db, registration.id().unwrap())
            .await
            .unwrap();
        assert_eq!(stored.facts().card_id, own.id());
        assert_eq!(
            stored.facts().mangopay_card_id.as_deref(),
            own.mangopay_id()
        );
    }
);

both_backends!(
    a_deactivation_survives_a_lost_answer_and_a_late_read,
    |env: Env| async move {
        let user = created_user(&env, "lost@example.com").await.id.unwrap();
        let mut card = registered_card(&env, user, CARD_OK).await;
        // Mangopay deactivates the card, and its answer is lost: the card is read back.
        env.sandbox()
            .knobs()
            .drop_next_answers(1, AnswerLoss::Close);
        card.deactivate(&env.db, &env.client).await.unwrap();
        assert!(!card.active);
        let remote = env
            .sandbox()
            .cards()
            .into_iter()
            .find(|c| c["Id"] == card.mangopay_id().unwrap())
            .unwrap();
        assert_eq!(remote["Active"], false);

        // A read that left before a deactivation and answers after it does not make the
        // card active again.
        let mut other = registered_card(&env, user, CARD_OK).await;
        let mut reader = other.clone();
        env.sandbox()
            .knobs()
            .set_latency(Duration::from_millis(800));
        let slow_read = reader.request_card_info(&env.db, &env.client);
        let deactivation = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            env.sandbox().knobs().set_latency(Duration::ZERO);
            other.deactivate(&env.db, &env.client).await
        };
        let (read, deactivated) = tokio::join!(slow_read, deactivation);
        read.unwrap();
        deactivated.unwrap();
        let stored = MangopayCard::get(&env.db, other.id().unwrap())
            .await
            .unwrap();
        assert!(!stored.active, "a late answer never reactivates a card");
        let payload = stored.sync().api_payload.clone().unwrap();
        assert_eq!(payload["Id"], other.mangopay_id().unwrap());
    }
);

both_backends!(
    a_refund_refused_at_its_first_send_is_failed_not_retried_forever,
    |env: Env| async move {
        let (user, wallet, card) = payer(&env, "refused@example.com", CARD_OK).await;
        let mut pay_in = card_pay_in(user, &wallet, &card, 10_000);
        pay_in.create(&env.db, &env.client).await.unwrap();
        let pay_in_id = pay_in.id().unwrap();

        // A saved refund not sent yet is checked against the pay-in at every save.
        let mut refund = MangopayRefund::partial(pay_in_id, user, eur(6_000), eur(0)).unwrap();
        refund.save(&env.db).await.unwrap();
        let mut edited = refund.clone();
        edited.partial = Some((eur(12_000), eur(0)));
        let err = edited.save(&env.db).await.unwrap_err();
        assert!(
            matches!(&err, Error::Validation(e) if e.has("debited_funds.amount")),
            "{err}"
        );
        let stored = MangopayRefund::get(&env.db, refund.id().unwrap())
            .await
            .unwrap();
        assert_eq!(stored.partial, Some((eur(6_000), eur(0))), "unchanged");

        // The pay-in's author is checked when the refund is first sent: a job finds this
        // refund's author is not the pay-in's.
        let stranger = created_user(&env, "not-the-author@example.com")
            .await
            .id
            .unwrap();
        let mut wrong = MangopayRefund::partial(pay_in_id, stranger, eur(1_000), eur(0)).unwrap();
        wrong.save(&env.db).await.unwrap();
        let id = wrong.id().unwrap();
        let err = diesel_mangopay::sync::create_by_id::<MangopayRefund>(
            &env.db,
            &env.client,
            id,
            &diesel_mangopay::Lease::random(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, Error::Validation(e) if e.has("author_id")),
            "{err}"
        );
        assert_eq!(requests_to(&env, "POST", "refunds"), 0);
        let stored = MangopayRefund::get(&env.db, id).await.unwrap();
        let sync = stored.sync();
        assert_eq!(sync.state, SyncState::Failed);
        assert!(sync.create_idempotency_key.is_none());
        assert!(sync.lease_owner.is_none());
        let note = sync.last_error.as_ref().expect("the reason is kept");
        assert_eq!(note.kind.as_deref(), Some("refused_before_sending"));
        assert!(
            note.message.as_deref().unwrap().contains("author_id"),
            "{note:?}"
        );
        // Not handed out again by the sweep.
        let eager = diesel_mangopay::sync::SweepOptions {
            new_rows_after: Some(Duration::ZERO),
            ..Default::default()
        };
        let due = diesel_mangopay::sync::sweep::claim_due(
            &env.db,
            diesel_mangopay::models::REFUNDS,
            &eager,
            &diesel_mangopay::Lease::random(),
        )
        .await
        .unwrap()
        .unwrap_or_default();
        let ids: Vec<i64> = due.iter().map(|d| d.id).collect();
        assert!(!ids.contains(&id), "{ids:?}");
        // The application's own call gets the error with nothing written.
        let again = wrong.create(&env.db, &env.client).await.unwrap_err();
        assert!(matches!(&again, Error::Validation(_)), "{again}");
        assert_eq!(
            MangopayRefund::get(&env.db, id).await.unwrap().sync().state,
            SyncState::Failed
        );
        assert_eq!(requests_to(&env, "POST", "refunds"), 0);
    }
);

/// Another connection holding a write lock until the returned sender is dropped or sent to:
/// the pay-in's row on PostgreSQL, the whole database on SQLite.
fn lock_from_elsewhere(
    url: diesel_mangopay::DatabaseUrl,
    pay_in_id: i64,
) -> std::sync::mpsc::Sender<()> {
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (locked, is_locked) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut conn = diesel_mangopay::db::establish(&url).unwrap();
        let statements = match url {
            diesel_mangopay::DatabaseUrl::Postgres(_) => vec![
                "BEGIN".to_owned(),
                format!(
                    "UPDATE mangopay_pay_ins SET updated_at = updated_at WHERE id = {pay_in_id}"
                ),
            ],
            diesel_mangopay::DatabaseUrl::Sqlite(_) => vec!["BEGIN IMMEDIATE".to_owned()],
        };
        for statement in statements {
            diesel::sql_query(statement).execute(&mut conn).unwrap();
        }
        locked.send(()).unwrap();
        let _ = released.recv();
        diesel::sql_query("COMMIT").execute(&mut conn).unwrap();
    });
    is_locked.recv().unwrap();
    release
}

both_backends!(
    reading_a_refund_locks_nothing_and_a_claim_locks_the_pay_in_first,
    |env: Env| async move {
        let (user, wallet, card) = payer(&env, "locks@example.com", CARD_OK).await;
        let mut pay_in = card_pay_in(user, &wallet, &card, 10_000);
        pay_in.create(&env.db, &env.client).await.unwrap();
        let pay_in_id = pay_in.id().unwrap();
        let mut refund = MangopayRefund::partial(pay_in_id, user, eur(2_000), eur(0)).unwrap();
        refund.save(&env.db).await.unwrap();
        let id = refund.id().unwrap();

        let release = lock_from_elsewhere(env.database.url.clone(), pay_in_id);
        // Reads go through while another writer holds the lock.
        let read = tokio::time::timeout(Duration::from_secs(3), async {
            let one = MangopayRefund::get(&env.db, id).await.unwrap();
            let all = MangopayRefund::for_pay_in(&env.db, pay_in_id)
                .await
                .unwrap();
            (one, all)
        })
        .await
        .expect("a read does not wait for a writer's lock");
        assert_eq!(read.1.len(), 1);
        assert_eq!(read.0.id(), Some(id));

        // A job's claim waits for the pay-in before it locks the refund (the order a save
        // takes them in): the refund's row is free meanwhile.
        let (db, client) = (env.db.clone(), env.client.clone());
        let job = tokio::spawn(async move {
            diesel_mangopay::sync::create_by_id::<MangopayRefund>(
                &db,
                &client,
                id,
                &diesel_mangopay::Lease::random(),
            )
            .await
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let diesel_mangopay::DatabaseUrl::Postgres(_) = &env.database.url {
            let url = env.database.url.clone();
            let free = tokio::task::spawn_blocking(move || {
                let mut conn = diesel_mangopay::db::establish(&url).unwrap();
                diesel::sql_query("BEGIN").execute(&mut conn).unwrap();
                let locked = diesel::sql_query(format!(
                    "SELECT id FROM mangopay_refunds WHERE id = {id} FOR UPDATE NOWAIT"
                ))
                .execute(&mut conn);
                diesel::sql_query("ROLLBACK").execute(&mut conn).unwrap();
                locked.is_ok()
            })
            .await
            .unwrap();
            assert!(free, "the claim locked the refund before the pay-in");
        }
        assert!(!job.is_finished(), "the claim waits for the pay-in's lock");
        release.send(()).unwrap();
        job.await.unwrap().unwrap();
        let refund = MangopayRefund::get(&env.db, id).await.unwrap();
        assert_eq!(refund.status(), Some(&TransactionStatus::Succeeded));
    }
);

both_backends!(
    a_wire_received_short_is_refunded_only_up_to_what_arrived,
    |env: Env| async move {
        let user = created_user(&env, "short@example.com").await.id.unwrap();
        let mut wallet = created_wallet(&env, user, "EUR").await;
        let mut wire =
            MangopayPayIn::bank_wire(user, wallet.id.unwrap(), eur(50_000), eur(500)).unwrap();
        wire.create(&env.db, &env.client).await.unwrap();
        // Until the money arrives Mangopay shows placeholder funds: not a credit of zero.
        let remote = env.sandbox().payin(wire.mangopay_id().unwrap()).unwrap();
        assert_eq!(remote["CreditedFunds"]["Currency"], "XXX");
        assert_eq!(wire.facts().transaction.credited_funds, None);

        // 30,000 arrive instead of the 50,000 declared.
        env.sandbox()
            .settle_payin(
                wire.mangopay_id().unwrap(),
                PayInOutcome::Received { amount: 30_000 },
            )
            .unwrap();
        let poll = MangopayPayIn::poll_status(&env.db, &env.client, wire.id().unwrap(), &quick())
            .await
            .unwrap();
        assert_eq!(poll, Poll::Settled(TransactionStatus::Succeeded));
        let wire = MangopayPayIn::get(&env.db, wire.id().unwrap())
            .await
            .unwrap();
        assert_eq!(wire.facts().transaction.credited_funds, Some(eur(29_500)));
        assert_eq!(balance(&env, &mut wallet).await, 29_500);

        // A refund is checked against what arrived, before anything is sent.
        let err = MangopayRefund::partial(wire.id().unwrap(), user, eur(30_001), eur(0))
            .unwrap()
            .create(&env.db, &env.client)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Validation(e) if e.has("debited_funds.amount")),
            "{err}"
        );
        assert_eq!(requests_to(&env, "POST", "refunds"), 0);
        let mut refund =
            MangopayRefund::partial(wire.id().unwrap(), user, eur(20_000), eur(0)).unwrap();
        refund.create(&env.db, &env.client).await.unwrap();
        assert_eq!(refund.status(), Some(&TransactionStatus::Succeeded));
        assert_eq!(balance(&env, &mut wallet).await, 9_500);
        // The refund found by its tag is checked against the wallet the wire credited.
        let found = env.sandbox().refunds()[0].clone();
        assert_eq!(found["DebitedWalletId"], wallet.mangopay_id().unwrap());
        assert!(refund.check_found(&found).is_ok(), "{found}");
        let mut elsewhere = found.clone();
        elsewhere["DebitedWalletId"] = "wlt_m_elsewhere".into();
        assert!(refund.check_found(&elsewhere).is_err());
    }
);
