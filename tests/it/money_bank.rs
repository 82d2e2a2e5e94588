//! Where money goes: legacy bank accounts of the five types and recipients, created against the
//! sandbox, checked before anything is sent, deactivated for good, and recipients followed
//! from `PENDING` to `ACTIVE` or `CANCELED`.

use diesel_mangopay::models::{
    BankAccountDetails, DepositAccountType, PayoutMethodType, RecipientHolder, RecipientScope,
    RecipientStatus, RecipientType,
};
use diesel_mangopay::{
    Address, ApiError, CurrencyCode, Error, MangopayBankAccount, MangopayNaturalUser,
    MangopayRecipient, Poll, Polling, SyncState, UserCategory,
};
use diesel_mangopay_sandbox::RecipientStatus as ScaOutcome;
use diesel_mangopay_sandbox::{AnswerLoss, LookupFailure};
use serde_json::{Value, json};

use crate::both_backends;
use crate::support::money::{alex_holder, gbp_details, gbp_recipient, london};
use crate::support::{Env, natural_owner};

/// An OWNER created at Mangopay; returns its local id.
async fn created_owner(env: &Env) -> i64 {
    let mut user = natural_owner();
    user.create(&env.db, &env.client).await.unwrap();
    user.id.unwrap()
}

/// A PAYER created at Mangopay; returns its local id.
async fn created_payer(env: &Env) -> i64 {
    let mut user = MangopayNaturalUser::builder()
        .user_category(UserCategory::Payer)
        .first_name("Sam")
        .last_name("Payer")
        .email("sam.payer@example.com")
        .build()
        .unwrap();
    user.create(&env.db, &env.client).await.unwrap();
    user.id.unwrap()
}

fn paris() -> Address {
    Address::new("3 rue de la Cité", "Paris", "75004", "FR")
        .unwrap()
        .with_line2("Appartement 7")
}

fn iban_details() -> BankAccountDetails {
    BankAccountDetails::Iban {
        iban: "fr76 3000 4000 0312 3456 7890 143".into(),
        bic: Some("bnpafrpp".into()),
    }
}

fn iban_account(user_id: i64) -> MangopayBankAccount {
    MangopayBankAccount::new(user_id, iban_details(), "Alex Smith", paris()).unwrap()
}

/// The five kinds, each with what the sandbox must hold for it.
fn every_type() -> Vec<(BankAccountDetails, &'static str, Value)> {
    vec![
        (
            iban_details(),
            "IBAN",
            json!({"IBAN": "FR7630004000031234567890143", "BIC": "BNPAFRPP"}),
        ),
        (
            BankAccountDetails::Gb {
                sort_code: "200000".into(),
                account_number: "55779911".into(),
            },
            "GB",
            json!({"SortCode": "200000", "AccountNumber": "55779911"}),
        ),
        (
            BankAccountDetails::Us {
                account_number: "11696419".into(),
                aba: "071000288".into(),
                deposit_account_type: DepositAccountType::Savings,
            },
            "US",
            json!({"AccountNumber": "11696419", "ABA": "071000288", "DepositAccountType": "SAVINGS"}),
        ),
        (
            BankAccountDetails::Ca {
                branch_code: "00152".into(),
                institution_number: "614".into(),
                account_number: "11696419".into(),
                bank_name: "The Bank".into(),
            },
            "CA",
            json!({"BranchCode": "00152", "InstitutionNumber": "614",
                   "AccountNumber": "11696419", "BankName": "The Bank"}),
        ),
        (
            BankAccountDetails::Other {
                country: "au".into(),
                bic: "ANZBAU3M".into(),
                account_number: "11696419".into(),
            },
            "OTHER",
            json!({"Country": "AU", "BIC": "ANZBAU3M", "AccountNumber": "11696419"}),
        ),
    ]
}

fn posts_to(env: &Env, fragment: &str) -> Vec<String> {
    env.sandbox()
        .request_log()
        .into_iter()
        .filter(|r| r.path.contains(fragment))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

/// The validation error of `result`, or a panic saying what came instead.
fn validation(result: Result<(), Error>) -> diesel_mangopay::ValidationErrors {
    match result {
        Err(Error::Validation(errors)) => errors,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

both_backends!(
    every_bank_account_type_is_created_and_recorded,
    |env: Env| async move {
        let user_id = created_owner(&env).await;
        let user_mangopay_id = diesel_mangopay::MangopayUser::get(&env.db, user_id)
            .await
            .unwrap()
            .mangopay_id()
            .unwrap()
            .to_owned();
        for (details, kind, remote_details) in every_type() {
            env.sandbox().clear_request_log();
            let mut account = MangopayBankAccount::new(user_id, details, "Alex Smith", paris())
                .unwrap()
                .with_tag("payouts");
            account.create(&env.db, &env.client).await.unwrap();

            let mangopay_id = account.mangopay_id().expect("a Mangopay id").to_owned();
            assert_eq!(account.sync().state, SyncState::Synced, "{kind}");
            assert!(account.active, "{kind}");
            assert_eq!(account.details.account_type(), kind);
            assert_eq!(account.user_mangopay_id(), Some(user_mangopay_id.as_str()));
            assert!(account.facts().mangopay_created_at.is_some());
            let posted = posts_to(&env, "/bankaccounts");
            assert_eq!(
                posted,
                [format!(
                    "POST /v2.01/sandbox-client/users/{user_mangopay_id}/bankaccounts/{}",
                    kind.to_ascii_lowercase()
                )],
                "{kind}"
            );

            let remote = env.sandbox().bank_account(&mangopay_id).unwrap();
            assert_eq!(remote["Type"], kind);
            assert_eq!(remote["UserId"], user_mangopay_id.as_str());
            assert_eq!(remote["OwnerName"], "Alex Smith");
            assert_eq!(remote["OwnerAddress"]["City"], "Paris");
            assert_eq!(remote["OwnerAddress"]["AddressLine2"], "Appartement 7");
            assert_eq!(remote["Active"], true);
            for (key, value) in remote_details.as_object().unwrap() {
                assert_eq!(&remote[key], value, "{kind}.{key}");
            }
            let tag = remote["Tag"].as_str().unwrap();
            assert!(tag.starts_with("payouts dm:"), "{tag}");
            assert_eq!(account.tag.as_deref(), Some("payouts"));

            let stored = MangopayBankAccount::get(&env.db, account.id.unwrap())
                .await
                .unwrap();
            assert_eq!(stored, account, "{kind}");
            assert_eq!(
                MangopayBankAccount::find_by_mangopay_id(&env.db, &mangopay_id)
                    .await
                    .unwrap()
                    .as_ref(),
                Some(&account)
            );
        }
        // The IBAN and BIC are stored as sent: electronic form, upper case.
        let all = MangopayBankAccount::for_user(&env.db, user_id)
            .await
            .unwrap();
        assert_eq!(all.len(), 5);
        assert_eq!(
            all[0].details,
            BankAccountDetails::Iban {
                iban: "FR7630004000031234567890143".into(),
                bic: Some("BNPAFRPP".into()),
            }
        );
        assert!(matches!(
            &all[4].details,
            BankAccountDetails::Other { country, .. } if country == "AU"
        ));
        assert_eq!(env.sandbox().bank_accounts().len(), 5);
        let shown = format!("{:?}", all[0]);
        assert!(
            shown.contains("…0143") && !shown.contains("\"FR7630004000031234567890143\""),
            "{shown}"
        );
    }
);

both_backends!(
    bad_bank_details_are_refused_by_field_before_anything_is_sent,
    |env: Env| async move {
        let user_id = created_owner(&env).await;
        env.sandbox().clear_request_log();

        type Breaker = fn(&mut MangopayBankAccount);
        let cases: [(&str, Breaker); 6] = [
            ("details.iban", |a| {
                a.details = BankAccountDetails::Iban {
                    iban: "FR7630004000031234567890144".into(),
                    bic: None,
                }
            }),
            ("details.bic", |a| {
                a.details = BankAccountDetails::Iban {
                    iban: "FR7630004000031234567890143".into(),
                    bic: Some("BNPA-FR".into()),
                }
            }),
            ("details.sort_code", |a| {
                a.details = BankAccountDetails::Gb {
                    sort_code: "20-00-00".into(),
                    account_number: "55779911".into(),
                }
            }),
            ("details.aba", |a| {
                a.details = BankAccountDetails::Us {
                    account_number: "11696419".into(),
                    aba: "07100028".into(),
                    deposit_account_type: DepositAccountType::Checking,
                }
            }),
            ("details.country", |a| {
                a.details = BankAccountDetails::Other {
                    country: "XX".into(),
                    bic: "ANZBAU3M".into(),
                    account_number: "11696419".into(),
                }
            }),
            ("owner_address", |a| a.owner_address = Address::default()),
        ];
        for (field, breaks) in cases {
            let mut account = iban_account(user_id);
            breaks(&mut account);
            let errors = validation(account.create(&env.db, &env.client).await);
            assert!(errors.has(field), "{field} not named in: {errors}");
            assert_eq!(errors.errors().len(), 1, "{errors}");
            let errors = validation(account.save(&env.db).await);
            assert!(errors.has(field), "{errors}");
            assert!(account.id.is_none(), "{field}: nothing was inserted");
        }
        assert!(
            MangopayBankAccount::for_user(&env.db, user_id)
                .await
                .unwrap()
                .is_empty(),
            "no row was inserted"
        );

        // A saved row keeps its values when a change is refused.
        let mut account = iban_account(user_id);
        account.save(&env.db).await.unwrap();
        let before = MangopayBankAccount::get(&env.db, account.id.unwrap())
            .await
            .unwrap();
        account.owner_name = String::new();
        let errors = validation(account.create(&env.db, &env.client).await);
        assert!(errors.has("owner_name"), "{errors}");
        let after = MangopayBankAccount::get(&env.db, account.id.unwrap())
            .await
            .unwrap();
        assert_eq!(after, before, "the row is unchanged");
        assert_eq!(after.sync().state, SyncState::New);

        assert!(
            env.sandbox().request_log().is_empty(),
            "nothing was sent: {:?}",
            env.sandbox().request_log()
        );
        assert!(env.sandbox().bank_accounts().is_empty());
    }
);

both_backends!(
    an_owner_not_created_at_mangopay_is_named,
    |env: Env| async move {
        let mut user = natural_owner();
        user.save(&env.db).await.unwrap();
        let user_id = user.id.unwrap();
        env.sandbox().clear_request_log();

        let mut account = iban_account(user_id);
        match account.create(&env.db, &env.client).await {
            Err(Error::ParentNotCreated {
                field: "user_id",
                parent: "MangopayUser",
                parent_id,
                ..
            }) => assert_eq!(parent_id, user_id),
            other => panic!("expected ParentNotCreated on user_id, got {other:?}"),
        }
        assert!(account.id.is_none(), "the claim was rolled back");

        let mut recipient = gbp_recipient(user_id);
        match recipient.create(&env.db, &env.client).await {
            Err(Error::ParentNotCreated {
                field: "user_id",
                parent_id,
                ..
            }) => assert_eq!(parent_id, user_id),
            other => panic!("expected ParentNotCreated on user_id, got {other:?}"),
        }
        assert!(
            MangopayBankAccount::for_user(&env.db, user_id)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            MangopayRecipient::for_user(&env.db, user_id)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            env.sandbox().request_log().is_empty(),
            "nothing was sent: {:?}",
            env.sandbox().request_log()
        );

        // A user id that names no row is a validation error on the field.
        let mut orphan = iban_account(user_id + 1000);
        let errors = validation(orphan.save(&env.db).await);
        assert!(errors.has("user_id"), "{errors}");
    }
);

both_backends!(
    a_deactivated_bank_account_stays_deactivated,
    |env: Env| async move {
        let user_id = created_owner(&env).await;
        let mut account = iban_account(user_id);
        account.create(&env.db, &env.client).await.unwrap();
        let mangopay_id = account.mangopay_id().unwrap().to_owned();
        let id = account.id.unwrap();
        env.sandbox().clear_request_log();

        account.deactivate(&env.db, &env.client).await.unwrap();
        assert!(!account.active);
        assert_eq!(
            env.sandbox().bank_account(&mangopay_id).unwrap()["Active"],
            false
        );
        let log = env.sandbox().request_log();
        assert_eq!(log.len(), 1, "{log:?}");
        assert_eq!(log[0].method, "PUT");
        assert!(
            log[0]
                .path
                .ends_with(&format!("/bankaccounts/{mangopay_id}"))
        );
        assert_eq!(log[0].status, 200);
        let stored = MangopayBankAccount::get(&env.db, id).await.unwrap();
        assert!(!stored.active);
        assert_eq!(stored.sync().api_payload.as_ref().unwrap()["Active"], false);
        assert!(
            stored.sync().lease_owner.is_none(),
            "the lease was released"
        );

        // Again: nothing to send.
        env.sandbox().clear_request_log();
        account.deactivate(&env.db, &env.client).await.unwrap();
        assert!(env.sandbox().request_log().is_empty());

        // Re-activation is refused; the row and Mangopay keep the account deactivated.
        account.active = true;
        match account.save(&env.db).await {
            Err(Error::WrongState { id: refused, .. }) => assert_eq!(refused, id),
            other => panic!("expected WrongState, got {other:?}"),
        }
        assert!(!MangopayBankAccount::get(&env.db, id).await.unwrap().active);
        account.create(&env.db, &env.client).await.unwrap();
        assert!(
            !account.active,
            "create reloads the stored row and sends nothing"
        );
        assert!(env.sandbox().request_log().is_empty());

        // Mangopay deactivating an account by itself is read by a refresh.
        let mut other = iban_account(user_id);
        other.create(&env.db, &env.client).await.unwrap();
        let user_mangopay_id = other.user_mangopay_id().unwrap().to_owned();
        env.client
            .put(
                &format!(
                    "users/{user_mangopay_id}/bankaccounts/{}",
                    other.mangopay_id().unwrap()
                ),
                &json!({"Active": false}),
            )
            .await
            .unwrap();
        assert!(other.active);
        other.refresh(&env.db, &env.client).await.unwrap();
        assert!(!other.active);

        // Nothing is deactivated before it exists at Mangopay.
        let mut unsent = iban_account(user_id);
        unsent.save(&env.db).await.unwrap();
        assert!(matches!(
            unsent.deactivate(&env.db, &env.client).await,
            Err(Error::NotCreated { .. })
        ));
    }
);

both_backends!(
    bank_accounts_and_recipients_are_listed_per_user,
    |env: Env| async move {
        let alex = created_owner(&env).await;
        let sam = created_payer(&env).await;
        let mut first = iban_account(alex);
        first.save(&env.db).await.unwrap();
        let mut theirs = iban_account(sam);
        theirs.save(&env.db).await.unwrap();
        let mut second = MangopayBankAccount::new(
            alex,
            BankAccountDetails::Gb {
                sort_code: "200000".into(),
                account_number: "55779911".into(),
            },
            "Alex Smith",
            london(),
        )
        .unwrap();
        second.create(&env.db, &env.client).await.unwrap();
        let listed = MangopayBankAccount::for_user(&env.db, alex).await.unwrap();
        assert_eq!(listed, vec![first.clone(), second.clone()]);
        assert_eq!(
            MangopayBankAccount::for_user(&env.db, sam).await.unwrap(),
            vec![theirs]
        );

        let mut recipient = gbp_recipient(alex);
        recipient.save(&env.db).await.unwrap();
        let mut payin = gbp_recipient(sam).with_scope(RecipientScope::Payin);
        payin.save(&env.db).await.unwrap();
        assert_eq!(
            MangopayRecipient::for_user(&env.db, alex).await.unwrap(),
            vec![recipient]
        );
        assert_eq!(
            MangopayRecipient::for_user(&env.db, sam).await.unwrap(),
            vec![payin]
        );
    }
);

fn eur_business_recipient(user_id: i64) -> MangopayRecipient {
    MangopayRecipient::new(
        user_id,
        "Alex Smith EUR international",
        RecipientHolder::Business {
            business_name: "Alex Smith Consulting".into(),
            address: paris(),
        },
        "EUR",
        PayoutMethodType::InternationalBankTransfer,
        json!({"AccountNumber": "FR7630004000031234567890143"}),
    )
    .unwrap()
    .with_country("FR".parse().unwrap())
}

both_backends!(
    recipients_are_created_pending_and_followed,
    |env: Env| async move {
        let user_id = created_owner(&env).await;
        env.sandbox().clear_request_log();
        let mut recipient = gbp_recipient(user_id).with_tag("main");
        recipient.create(&env.db, &env.client).await.unwrap();
        let mangopay_id = recipient.mangopay_id().unwrap().to_owned();
        assert_eq!(recipient.status(), Some(&RecipientStatus::Pending));
        let url = recipient.redirect_url().expect("an SCA link").to_owned();
        assert!(url.starts_with("https://"), "{url}");
        assert_eq!(recipient.sync().state, SyncState::Synced);
        assert!(recipient.facts().mangopay_created_at.is_some());
        assert_eq!(
            posts_to(&env, "/recipients"),
            [format!(
                "POST /v2.01/sandbox-client/users/{}/recipients",
                recipient.user_mangopay_id().unwrap()
            )]
        );
        let remote = env.sandbox().recipient(&mangopay_id).unwrap();
        assert_eq!(remote["Status"], "PENDING");
        assert_eq!(remote["RecipientScope"], "PAYOUT");
        assert_eq!(remote["RecipientType"], "Individual");
        assert_eq!(remote["IndividualRecipient"]["LastName"], "Smith");
        assert_eq!(remote["IndividualRecipient"]["Address"]["City"], "London");
        assert_eq!(remote["LocalBankTransfer"], gbp_details());
        assert!(remote["Tag"].as_str().unwrap().starts_with("main dm:"));
        let stored = MangopayRecipient::get(&env.db, recipient.id.unwrap())
            .await
            .unwrap();
        assert_eq!(stored, recipient);
        assert_eq!(stored.redirect_url(), Some(url.as_str()));
        assert_eq!(stored.account_details, gbp_details());
        assert_eq!(stored.country.map(|c| c.to_string()).as_deref(), Some("GB"));

        // Still pending: a refresh keeps the link.
        recipient.refresh(&env.db, &env.client).await.unwrap();
        assert_eq!(recipient.status(), Some(&RecipientStatus::Pending));
        assert_eq!(recipient.redirect_url(), Some(url.as_str()));

        // The user completes the SCA session.
        env.sandbox()
            .set_recipient_status(&mangopay_id, ScaOutcome::Active)
            .unwrap();
        recipient.refresh(&env.db, &env.client).await.unwrap();
        assert_eq!(recipient.status(), Some(&RecipientStatus::Active));
        assert_eq!(
            recipient.redirect_url(),
            None,
            "the link is dropped once settled"
        );

        env.sandbox().clear_request_log();
        recipient.deactivate(&env.db, &env.client).await.unwrap();
        assert_eq!(recipient.status(), Some(&RecipientStatus::Deactivated));
        assert_eq!(
            env.sandbox().recipient(&mangopay_id).unwrap()["Status"],
            "DEACTIVATED"
        );
        let log = env.sandbox().request_log();
        assert_eq!(log.len(), 1, "{log:?}");
        assert_eq!(
            (log[0].method.as_str(), log[0].path.as_str()),
            (
                "PUT",
                format!("/v2.01/sandbox-client/recipients/{mangopay_id}").as_str()
            )
        );
        env.sandbox().clear_request_log();
        recipient.deactivate(&env.db, &env.client).await.unwrap();
        assert!(
            env.sandbox().request_log().is_empty(),
            "already deactivated"
        );

        // Another one is abandoned: polled to CANCELED, and cannot be deactivated.
        let mut abandoned = eur_business_recipient(user_id);
        abandoned.create(&env.db, &env.client).await.unwrap();
        let abandoned_id = abandoned.id.unwrap();
        assert_eq!(abandoned.recipient_type(), RecipientType::Business);
        env.sandbox()
            .set_recipient_status(abandoned.mangopay_id().unwrap(), ScaOutcome::Canceled)
            .unwrap();
        let status = MangopayRecipient::poll_status(
            &env.db,
            &env.client,
            abandoned_id,
            &Polling::recipients(),
        )
        .await
        .unwrap();
        assert_eq!(status, Poll::Settled(RecipientStatus::Canceled));
        let mut abandoned = MangopayRecipient::get(&env.db, abandoned_id).await.unwrap();
        assert_eq!(abandoned.facts().status_checks, 1);
        assert!(abandoned.facts().status_checked_at.is_some());
        assert_eq!(abandoned.redirect_url(), None);
        env.sandbox().clear_request_log();
        assert!(matches!(
            abandoned.deactivate(&env.db, &env.client).await,
            Err(Error::WrongState { .. })
        ));
        assert!(env.sandbox().request_log().is_empty());

        // A PAYIN recipient needs no SCA link, and any user.
        let payer = created_payer(&env).await;
        let mut payin = gbp_recipient(payer).with_scope(RecipientScope::Payin);
        payin.create(&env.db, &env.client).await.unwrap();
        assert_eq!(payin.status(), Some(&RecipientStatus::Pending));
        assert_eq!(payin.redirect_url(), None);
        env.sandbox()
            .set_recipient_status(payin.mangopay_id().unwrap(), ScaOutcome::Active)
            .unwrap();
        payin.refresh(&env.db, &env.client).await.unwrap();
        assert_eq!(payin.status(), Some(&RecipientStatus::Active));
        assert_eq!(
            env.sandbox()
                .recipient(payin.mangopay_id().unwrap())
                .unwrap()["RecipientScope"],
            "PAYIN"
        );
    }
);

both_backends!(
    recipient_schema_and_validation_at_mangopay,
    |env: Env| async move {
        let schema = MangopayRecipient::schema(
            &env.client,
            PayoutMethodType::LocalBankTransfer,
            RecipientType::Individual,
            "GBP".parse::<CurrencyCode>().unwrap(),
            Some("GB".parse().unwrap()),
        )
        .await
        .unwrap();
        let sort_code = &schema["LocalBankTransfer"]["GBP"]["SortCode"];
        assert_eq!(sort_code["Required"], true);
        assert_eq!(sort_code["Pattern"], r"^\d{6}$");
        assert_eq!(schema["IndividualRecipient"]["FirstName"]["Required"], true);

        let refused = MangopayRecipient::schema(
            &env.client,
            PayoutMethodType::LocalBankTransfer,
            RecipientType::Business,
            "GBP".parse::<CurrencyCode>().unwrap(),
            Some("FR".parse().unwrap()),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(refused, Error::Api(ApiError::Mangopay { status: 400, .. })),
            "{refused:?}"
        );

        let user_id = created_owner(&env).await;
        env.sandbox().clear_request_log();
        gbp_recipient(user_id)
            .validate_at_mangopay(&env.db, &env.client)
            .await
            .unwrap();
        eur_business_recipient(user_id)
            .validate_at_mangopay(&env.db, &env.client)
            .await
            .unwrap();
        assert_eq!(
            posts_to(&env, "/recipients/validate").len(),
            2,
            "{:?}",
            env.sandbox().request_log()
        );
        assert!(env.sandbox().recipients().is_empty(), "nothing is created");

        // What only Mangopay knows: a destination country it cannot derive.
        let no_country = MangopayRecipient::new(
            user_id,
            "Alex USD international",
            alex_holder(),
            "USD",
            PayoutMethodType::InternationalBankTransfer,
            json!({"AccountNumber": "123456789", "BIC": "CHASUS33"}),
        )
        .unwrap();
        match no_country
            .validate_at_mangopay(&env.db, &env.client)
            .await
            .unwrap_err()
        {
            Error::Api(error @ ApiError::Mangopay { status: 400, .. }) => {
                let body = error.body().unwrap();
                assert!(body.errors.contains_key("Country"), "{:?}", body.errors);
            }
            other => panic!("expected Mangopay's refusal, got {other:?}"),
        }
        assert!(
            MangopayRecipient::for_user(&env.db, user_id)
                .await
                .unwrap()
                .is_empty(),
            "a validation writes nothing"
        );
    }
);

both_backends!(
    bad_recipients_are_refused_before_anything_is_sent,
    |env: Env| async move {
        let owner = created_owner(&env).await;
        let payer = created_payer(&env).await;
        env.sandbox().clear_request_log();

        type Breaker = fn(&mut MangopayRecipient);
        let cases: [(&str, Breaker); 5] = [
            ("display_name", |r| r.display_name = "Alex & Sons".into()),
            (
                "account_details.GBP.SortCode",
                |r| {
                    r.account_details =
                        json!({"GBP": {"SortCode": "20000", "AccountNumber": "55779911"}})
                },
            ),
            ("account_details.EUR.IBAN", |r| {
                r.currency = "EUR".parse().unwrap();
                r.account_details = json!({"EUR": {"IBAN": "FR7630004000031234567890144"}});
            }),
            ("holder.address.city", |r| {
                if let RecipientHolder::Individual { address, .. } = &mut r.holder {
                    address.city = Some("St. Albans".into());
                }
            }),
            ("holder.last_name", |r| {
                if let RecipientHolder::Individual { last_name, .. } = &mut r.holder {
                    *last_name = "Smith/Jones".into();
                }
            }),
        ];
        for (field, breaks) in cases {
            let mut recipient = gbp_recipient(owner);
            breaks(&mut recipient);
            let errors = validation(recipient.create(&env.db, &env.client).await);
            assert!(errors.has(field), "{field} not named in: {errors}");
            assert_eq!(errors.errors().len(), 1, "{errors}");
            let errors = validation(recipient.validate_at_mangopay(&env.db, &env.client).await);
            assert!(errors.has(field), "{errors}");
            assert!(recipient.id.is_none());
        }

        // A PAYOUT recipient needs an OWNER: refused for a PAYER before anything is sent.
        let mut recipient = gbp_recipient(payer);
        match recipient.create(&env.db, &env.client).await {
            Err(Error::ParentNotUsable {
                field: "user_id",
                parent_id,
                reason,
                ..
            }) => {
                assert_eq!(parent_id, payer);
                assert!(
                    reason.contains("OWNER") && reason.contains("PAYER"),
                    "{reason}"
                );
            }
            other => panic!("expected ParentNotUsable on user_id, got {other:?}"),
        }
        assert!(recipient.id.is_none(), "nothing was inserted");
        assert!(matches!(
            recipient.validate_at_mangopay(&env.db, &env.client).await,
            Err(Error::ParentNotUsable {
                field: "user_id",
                ..
            })
        ));
        assert!(
            MangopayRecipient::for_user(&env.db, owner)
                .await
                .unwrap()
                .is_empty()
                && MangopayRecipient::for_user(&env.db, payer)
                    .await
                    .unwrap()
                    .is_empty()
        );
        assert!(
            env.sandbox().request_log().is_empty(),
            "nothing was sent: {:?}",
            env.sandbox().request_log()
        );
        assert!(env.sandbox().recipients().is_empty());
    }
);

both_backends!(
    operators_adopt_objects_of_the_right_kind_and_owner,
    |env: Env| async move {
        let user_id = created_owner(&env).await;
        let mut account = iban_account(user_id);
        account.save(&env.db).await.unwrap();
        let user = diesel_mangopay::MangopayUser::get(&env.db, user_id)
            .await
            .unwrap()
            .mangopay_id()
            .unwrap()
            .to_owned();
        let post = |path: String, body: Value| {
            let client = env.client.clone();
            async move {
                let key = diesel_mangopay::IdempotencyKey::generate();
                let created = client.post(&path, &body, &key).await.unwrap();
                created["Id"].as_str().unwrap().to_owned()
            }
        };
        let owner_address = json!({"AddressLine1": "3 rue de la Cité", "City": "Paris",
                                   "PostalCode": "75004", "Country": "FR"});
        let gb = post(
            format!("users/{user}/bankaccounts/gb"),
            json!({"OwnerName": "Alex Smith", "OwnerAddress": owner_address,
                   "SortCode": "200000", "AccountNumber": "55779911"}),
        )
        .await;
        match account.adopt(&env.db, &env.client, &gb).await {
            Err(Error::AdoptRefused { reason, .. }) => {
                assert!(reason.contains("GB"), "{reason}")
            }
            other => panic!("expected AdoptRefused, got {other:?}"),
        }
        let iban = post(
            format!("users/{user}/bankaccounts/iban"),
            json!({"OwnerName": "Alex Smith", "OwnerAddress": owner_address,
                   "IBAN": "FR7630004000031234567890143", "Tag": "found"}),
        )
        .await;
        account.adopt(&env.db, &env.client, &iban).await.unwrap();
        assert_eq!(account.mangopay_id(), Some(iban.as_str()));
        assert_eq!(account.sync().state, SyncState::Synced);
        assert_eq!(account.tag.as_deref(), Some("found"));
        assert_eq!(
            account.details,
            BankAccountDetails::Iban {
                iban: "FR7630004000031234567890143".into(),
                bic: None,
            }
        );

        let mut recipient = gbp_recipient(user_id);
        recipient.save(&env.db).await.unwrap();
        let eur = post(
            format!("users/{user}/recipients"),
            json!({"DisplayName": "Elsewhere", "PayoutMethodType": "InternationalBankTransfer",
                   "RecipientType": "Individual", "Currency": "EUR", "Country": "FR",
                   "IndividualRecipient": {"FirstName": "Alex", "LastName": "Smith",
                       "Address": {"AddressLine1": "10 Kingsway", "City": "London",
                                   "PostalCode": "WC2B 6LH", "Country": "GB"}},
                   "InternationalBankTransfer": {"AccountNumber": "FR7630004000031234567890143"}}),
        )
        .await;
        match recipient.adopt(&env.db, &env.client, &eur).await {
            Err(Error::AdoptRefused { reason, .. }) => {
                assert!(reason.contains("EUR"), "{reason}")
            }
            other => panic!("expected AdoptRefused, got {other:?}"),
        }
        let gbp = post(
            format!("users/{user}/recipients"),
            json!({"DisplayName": "Alex Smith GBP account", "PayoutMethodType": "LocalBankTransfer",
                   "RecipientType": "Individual", "Currency": "GBP",
                   "IndividualRecipient": {"FirstName": "Alex", "LastName": "Smith",
                       "Address": {"AddressLine1": "10 Kingsway", "City": "London",
                                   "PostalCode": "WC2B 6LH", "Country": "GB"}},
                   "LocalBankTransfer": gbp_details()}),
        )
        .await;
        recipient.adopt(&env.db, &env.client, &gbp).await.unwrap();
        assert_eq!(recipient.mangopay_id(), Some(gbp.as_str()));
        assert_eq!(recipient.status(), Some(&RecipientStatus::Pending));
        assert!(recipient.redirect_url().is_some());
    }
);

both_backends!(
    a_bank_account_whose_answer_was_lost_is_found_by_its_tag,
    |env: Env| async move {
        let user_id = created_owner(&env).await;
        let mut account = iban_account(user_id);
        // Mangopay creates the account and its answer is lost...
        env.sandbox()
            .knobs()
            .drop_next_answers(1, AnswerLoss::Close);
        let error = account.create(&env.db, &env.client).await.unwrap_err();
        assert!(matches!(error, Error::OutcomeUnknown { .. }), "{error}");
        // ...and cannot be read back after the resend's 409.
        env.sandbox()
            .knobs()
            .fail_response_lookups(1, LookupFailure::Status(404));
        let error = account.create(&env.db, &env.client).await.unwrap_err();
        assert!(
            matches!(
                error,
                Error::OutcomeUnknown {
                    retry_at: Some(_),
                    ..
                }
            ),
            "{error}"
        );
        assert!(account.sync().create_key_spent);
        assert_eq!(account.sync().state, SyncState::Pending);

        // Listing the user's bank accounts finds it by its tag: one account, recorded.
        tokio::time::sleep(error.retry_after().unwrap()).await;
        account.create(&env.db, &env.client).await.unwrap();
        let remote = env.sandbox().bank_accounts();
        assert_eq!(remote.len(), 1, "exactly one bank account");
        assert_eq!(account.mangopay_id(), remote[0]["Id"].as_str());
        assert_eq!(account.sync().state, SyncState::Synced);
        assert!(account.active);
    }
);

both_backends!(
    a_recipient_whose_answer_was_lost_is_found_by_reading_the_listed_ones,
    |env: Env| async move {
        let user_id = created_owner(&env).await;
        let mut recipient = gbp_recipient(user_id);
        env.sandbox()
            .knobs()
            .drop_next_answers(1, AnswerLoss::Close);
        let error = recipient.create(&env.db, &env.client).await.unwrap_err();
        assert!(matches!(error, Error::OutcomeUnknown { .. }), "{error}");
        env.sandbox()
            .knobs()
            .fail_response_lookups(1, LookupFailure::Status(404));
        let error = recipient.create(&env.db, &env.client).await.unwrap_err();
        assert!(recipient.sync().create_key_spent, "{error}");

        // The list holds summaries without tags: each recent one is read to find the marker.
        tokio::time::sleep(error.retry_after().unwrap()).await;
        recipient.create(&env.db, &env.client).await.unwrap();
        let remote = env.sandbox().recipients();
        assert_eq!(remote.len(), 1, "exactly one recipient");
        assert_eq!(recipient.mangopay_id(), remote[0]["Id"].as_str());
        assert_eq!(recipient.sync().state, SyncState::Synced);
    }
);
