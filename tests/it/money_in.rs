//! Money in against the sandbox: cards registered through the tokenization server, direct
//! card pay-ins (success, refusal, 3-D Secure), web and bank-wire pay-ins followed until they
//! settle, full and partial refunds; balances checked against the sandbox after each; bad
//! input refused before anything is sent; no card data in the database or `Debug` output.

use std::time::Duration;

use diesel::QueryableByName;
use diesel::RunQueryDsl;
use diesel::sql_types::Text;
use diesel_mangopay::models::{CardRegistrationStatus, CardValidity};
use diesel_mangopay::{
    CardType, CurrencyCode, Error, MangopayCard, MangopayCardRegistration, MangopayPayIn,
    MangopayRefund, MangopayWallet, Money, Poll, Polling, SecureMode, TransactionStatus,
};
use diesel_mangopay_sandbox::PayInOutcome;

use crate::both_backends;
use crate::support::Env;
use crate::support::money::{
    CARD_3DS, CARD_OK, CARD_REFUSED, CVC, browser, card_pay_in, created_user, created_wallet, eur,
    registered_card, requests_to, sandbox_balance, tokenize,
};

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

        // Neither the number, nor the CVC, nor the registration data is kept or shown.
        let stored = stored_text(&env).await;
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
    }
);
