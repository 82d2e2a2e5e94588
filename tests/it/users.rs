//! Natural and legal users: save, create, update, refresh, validation, Mangopay's errors kept
//! on the row, and the write-ahead create protocol.

use std::time::Duration;

use diesel_mangopay::models::MangopayUser;
use diesel_mangopay::{
    ApiError, Error, FieldErrorKind, KycLevel, MangopayLegalUser, MangopayNaturalUser, SyncState,
    UserCategory, UserStatus,
};

use crate::both_backends;
use crate::support::{Env, legal_owner, natural_owner};

fn keyed_posts(env: &Env) -> Vec<String> {
    env.sandbox()
        .request_log()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.contains("/users/"))
        .filter_map(|r| r.idempotency_key)
        .collect()
}

both_backends!(
    natural_and_legal_users_are_created_and_persisted,
    |env: Env| async move {
        let mut natural = natural_owner();
        natural.save(&env.db).await.unwrap();
        assert!(natural.id.is_some());
        assert_eq!(natural.sync().state, SyncState::New);
        assert_eq!(env.sandbox().user_count(), 0, "save is local only");

        natural.create(&env.db, &env.client).await.unwrap();
        let id = natural.mangopay_id().expect("a Mangopay id").to_owned();
        let remote = env
            .sandbox()
            .user(&id)
            .expect("the user exists at Mangopay");
        assert_eq!(remote["FirstName"], "Alex");
        assert_eq!(remote["PersonType"], "NATURAL");
        assert_eq!(remote["Address"]["City"], "Paris");
        assert_eq!(
            remote["Birthday"], 651_974_400,
            "midnight UTC of the birthday"
        );

        let sync = natural.sync();
        assert_eq!(sync.state, SyncState::Synced);
        let facts = natural.facts();
        assert_eq!(facts.kyc_level, Some(KycLevel::Light));
        assert_eq!(facts.user_status, Some(UserStatus::Active));
        assert!(
            facts.mangopay_created_at.is_some() && facts.terms_and_conditions_accepted_at.is_some()
        );
        assert!(!sync.dirty && sync.lease_until.is_none());
        let tag = remote["Tag"].as_str().unwrap();
        assert!(
            tag.starts_with("created by the tests dm:"),
            "the Tag carries the row's marker: {tag}"
        );
        assert_eq!(natural.tag.as_deref(), Some("created by the tests"));
        assert_eq!(sync.api_payload.as_ref().unwrap()["Id"], id.as_str());
        assert_eq!(sync.attempts, 0);
        assert!(sync.last_error.is_none());
        assert_eq!(
            keyed_posts(&env),
            vec![sync.create_idempotency_key.clone().unwrap()]
        );

        let reloaded = MangopayNaturalUser::get(&env.db, natural.id.unwrap())
            .await
            .unwrap();
        assert_eq!(reloaded, natural);
        let found = MangopayNaturalUser::find_by_mangopay_id(&env.db, &id)
            .await
            .unwrap();
        assert_eq!(found.as_ref(), Some(&natural));
        assert!(
            MangopayLegalUser::find_by_mangopay_id(&env.db, &id)
                .await
                .unwrap()
                .is_none()
        );

        let mut legal = legal_owner();
        legal.create(&env.db, &env.client).await.unwrap();
        let legal_id = legal.mangopay_id().unwrap().to_owned();
        let remote = env.sandbox().user(&legal_id).unwrap();
        assert_eq!(remote["PersonType"], "LEGAL");
        assert_eq!(remote["LegalPersonType"], "BUSINESS");
        assert_eq!(
            remote["HeadquartersAddress"]["AddressLine1"],
            "34 rue des Entreprises"
        );
        assert_eq!(remote["CompanyNumber"], "123456789");
        assert_eq!(
            MangopayLegalUser::get(&env.db, legal.id.unwrap())
                .await
                .unwrap(),
            legal
        );
        match MangopayUser::get(&env.db, legal.id.unwrap()).await.unwrap() {
            MangopayUser::Legal(u) => assert_eq!(u, legal),
            other => panic!("expected a legal user, got {other:?}"),
        }
        assert_eq!(env.sandbox().user_count(), 2);
    }
);

both_backends!(
    create_on_a_created_row_sends_nothing,
    |env: Env| async move {
        let mut user = natural_owner();
        user.create(&env.db, &env.client).await.unwrap();
        env.sandbox().clear_request_log();
        user.create(&env.db, &env.client).await.unwrap();
        let mut copy = MangopayNaturalUser::get(&env.db, user.id.unwrap())
            .await
            .unwrap();
        copy.create(&env.db, &env.client).await.unwrap();
        assert!(
            env.sandbox().request_log().is_empty(),
            "{:?}",
            env.sandbox().request_log()
        );
        assert_eq!(env.sandbox().user_count(), 1);
    }
);

both_backends!(
    update_sends_fields_and_refresh_reads_mangopay,
    |env: Env| async move {
        let mut user = natural_owner();
        user.create(&env.db, &env.client).await.unwrap();
        let id = user.mangopay_id().unwrap().to_owned();

        user.occupation = Some("Architect".into());
        user.address =
            Some(diesel_mangopay::Address::new("1 Quai", "Lyon", "69001", "FR").unwrap());
        user.update(&env.db, &env.client).await.unwrap();
        let remote = env.sandbox().user(&id).unwrap();
        assert_eq!(remote["Occupation"], "Architect");
        assert_eq!(remote["Address"]["City"], "Lyon");
        assert_eq!(user.occupation.as_deref(), Some("Architect"));

        // Someone changes the user at Mangopay (another system, the dashboard...).
        env.client
            .put(
                &format!("users/natural/{id}"),
                &serde_json::json!({"Email": "new.address@example.com"}),
            )
            .await
            .unwrap();
        assert_eq!(user.email, "alex.smith@example.com");
        user.refresh(&env.db, &env.client).await.unwrap();
        assert_eq!(user.email, "new.address@example.com");
        assert_eq!(
            user.sync().api_payload.as_ref().unwrap()["Email"],
            "new.address@example.com"
        );
        let stored = MangopayNaturalUser::get(&env.db, user.id.unwrap())
            .await
            .unwrap();
        assert_eq!(stored.email, "new.address@example.com");

        let mut legal = legal_owner();
        legal.create(&env.db, &env.client).await.unwrap();
        legal.name = "Best Business SAS".into();
        legal.update(&env.db, &env.client).await.unwrap();
        assert_eq!(
            env.sandbox().user(legal.mangopay_id().unwrap()).unwrap()["Name"],
            "Best Business SAS"
        );
        legal.refresh(&env.db, &env.client).await.unwrap();
        assert_eq!(legal.name, "Best Business SAS");
    }
);

both_backends!(
    bad_input_is_refused_by_field_before_anything_is_written_or_sent,
    |env: Env| async move {
        let errors = MangopayNaturalUser::builder()
            .user_category(UserCategory::Owner)
            .first_name("")
            .last_name("Smith")
            .email("not-an-email")
            .nationality("ZZ")
            .birthday(chrono::Utc::now().date_naive() + chrono::Duration::days(3))
            .income_range(9)
            .build()
            .unwrap_err();
        for field in [
            "first_name",
            "email",
            "nationality",
            "birthday",
            "income_range",
            "terms_and_conditions_accepted",
            "country_of_residence",
        ] {
            assert!(errors.has(field), "{field} not reported in: {errors}");
        }
        assert_eq!(
            errors.get("birthday").unwrap().kind(),
            &FieldErrorKind::InFuture
        );
        assert_eq!(
            errors.get("nationality").unwrap().kind(),
            &FieldErrorKind::InvalidCountryCode("ZZ".into())
        );
        let legal = MangopayLegalUser::builder()
            .user_category(UserCategory::Owner)
            .terms_and_conditions_accepted(true)
            .legal_person_type(diesel_mangopay::LegalPersonType::Business)
            .name("X")
            .email("x@example.com")
            .legal_representative_first_name("A")
            .legal_representative_last_name("B")
            .build()
            .unwrap_err();
        for field in [
            "headquarters_address",
            "company_number",
            "legal_representative_birthday",
        ] {
            assert!(legal.has(field), "{field} not reported in: {legal}");
        }

        let mut user = natural_owner();
        user.create(&env.db, &env.client).await.unwrap();
        let before = MangopayNaturalUser::get(&env.db, user.id.unwrap())
            .await
            .unwrap();
        env.sandbox().clear_request_log();

        user.email = "broken".into();
        user.address.as_mut().unwrap().postal_code = Some("75#04".into());
        for result in [
            user.save(&env.db).await,
            user.update(&env.db, &env.client).await,
            user.create(&env.db, &env.client).await,
        ] {
            let Err(Error::Validation(errors)) = result else {
                panic!("expected a validation error, got {result:?}")
            };
            assert!(
                errors.has("email") && errors.has("address.postal_code"),
                "{errors}"
            );
        }
        let after = MangopayNaturalUser::get(&env.db, user.id.unwrap())
            .await
            .unwrap();
        assert_eq!(after, before, "the row is unchanged");
        assert!(env.sandbox().request_log().is_empty(), "nothing was sent");

        let mut unsaved = natural_owner();
        assert!(matches!(
            unsaved.refresh(&env.db, &env.client).await,
            Err(Error::NotSaved { .. })
        ));
        unsaved.save(&env.db).await.unwrap();
        assert!(matches!(
            unsaved.update(&env.db, &env.client).await,
            Err(Error::NotCreated { .. })
        ));
        assert!(matches!(
            MangopayNaturalUser::get(&env.db, 999_999).await,
            Err(Error::NotFound { id: 999_999, .. })
        ));
        // A legal id is not a natural user.
        let mut legal = legal_owner();
        legal.save(&env.db).await.unwrap();
        assert!(matches!(
            MangopayNaturalUser::get(&env.db, legal.id.unwrap()).await,
            Err(Error::NotFound { .. })
        ));
    }
);

both_backends!(
    mangopays_400_is_kept_on_the_row_and_a_fixed_row_gets_a_new_key,
    |env: Env| async move {
        // Which countries a platform may serve is set by its contract: only Mangopay knows.
        env.sandbox().knobs().set_blocked_countries(&["FR"]);
        let mut user = natural_owner();
        let error = user.create(&env.db, &env.client).await.unwrap_err();
        let api = error.api().expect("an API error");
        assert_eq!(api.status(), Some(400));
        assert!(!error.is_retryable());
        assert_eq!(env.sandbox().user_count(), 0);

        let stored = MangopayNaturalUser::get(&env.db, user.id.unwrap())
            .await
            .unwrap();
        let sync = stored.sync();
        assert_eq!(sync.state, SyncState::Failed);
        assert_eq!(sync.attempts, 1);
        assert!(sync.mangopay_id.is_none());
        assert!(
            sync.create_idempotency_key.is_none(),
            "nothing was created, so the key is released"
        );
        let last = sync.last_error.as_ref().expect("the error is kept");
        assert_eq!(last.kind.as_deref(), Some("param_error"));
        assert!(
            last.message
                .as_deref()
                .unwrap()
                .contains("missing or incorrect")
        );
        assert!(last.id.is_some() && last.date.is_some());
        assert_eq!(
            last.errors["Nationality"],
            "The Nationality used is blocked"
        );
        assert_eq!(
            last.errors["Address.Country"],
            "The Address.Country used is blocked"
        );
        assert!(sync.last_error_at.is_some());

        // The application fixes the row (here: the platform's contract changes) and tries again.
        env.sandbox().knobs().set_blocked_countries(&[]);
        user.create(&env.db, &env.client).await.unwrap();
        let sync = user.sync();
        assert_eq!(sync.state, SyncState::Synced);
        assert!(sync.last_error.is_none() && sync.last_error_at.is_none());
        assert_eq!(sync.attempts, 0);
        let keys = keyed_posts(&env);
        assert_eq!(keys.len(), 2);
        assert_ne!(keys[0], keys[1], "a rejected create's key is not reused");

        // A 400 on update is kept too, and leaves the row synced.
        user.user_category = UserCategory::Payer;
        user.update(&env.db, &env.client).await.unwrap_err();
        let stored = MangopayNaturalUser::get(&env.db, user.id.unwrap())
            .await
            .unwrap();
        assert_eq!(stored.sync().state, SyncState::Synced);
        assert!(
            stored
                .sync()
                .last_error
                .as_ref()
                .unwrap()
                .errors
                .contains_key("UserCategory")
        );
    }
);

both_backends!(
    a_gateway_failure_keeps_the_key_and_the_resent_key_creates,
    |env: Env| async move {
        env.warm_up().await;
        // A gateway outage: Mangopay's API never sees the request, so its key stays free.
        env.sandbox().knobs().set_unavailable(true);
        let mut user = natural_owner();
        let error = user.create(&env.db, &env.client).await.unwrap_err();
        assert!(matches!(error, Error::OutcomeUnknown { .. }), "{error}");
        assert_eq!(error.api().and_then(ApiError::status), Some(503));
        assert!(error.is_retryable());
        let sync = user.sync().clone();
        assert_eq!(sync.state, SyncState::Pending);
        assert_eq!(sync.attempts, 1);
        assert!(!sync.create_key_spent);
        let key = sync
            .create_idempotency_key
            .clone()
            .expect("the key stays for the retry");

        env.sandbox().knobs().set_unavailable(false);
        user.create(&env.db, &env.client).await.unwrap();
        assert_eq!(
            user.sync().create_idempotency_key.as_deref(),
            Some(key.as_str())
        );
        assert_eq!(keyed_posts(&env), vec![key.clone(), key]);
        assert_eq!(env.sandbox().user_count(), 1);
        assert_eq!(user.sync().state, SyncState::Synced);
    }
);

both_backends!(
    a_stored_500_is_settled_by_tag_then_sent_with_a_new_key,
    |env: Env| async move {
        env.warm_up().await;
        // Mangopay answers 500 before doing the work and stores that answer against the key:
        // the key can never succeed, and only listing by tag proves nothing was created.
        env.sandbox().knobs().fail_next(1);
        let mut user = natural_owner();
        let error = user.create(&env.db, &env.client).await.unwrap_err();
        assert!(matches!(error, Error::OutcomeUnknown { .. }), "{error}");
        let first = user.sync().create_idempotency_key.clone().unwrap();

        // Resent at once: 409, and the stored 500 read back. Unknown still, and the key is
        // spent; the create waits for Mangopay to have settled before searching by tag.
        let error = user.create(&env.db, &env.client).await.unwrap_err();
        let Error::OutcomeUnknown { retry_at, .. } = &error else {
            panic!("{error}")
        };
        assert!(retry_at.is_some(), "a spent key is reconciled, not resent");
        assert!(user.sync().create_key_spent);
        assert_eq!(user.sync().state, SyncState::Pending);
        assert_eq!(env.sandbox().user_count(), 0);
        let wait = error.retry_after().unwrap();
        assert!(wait <= crate::support::RECONCILE_AFTER, "{wait:?}");

        tokio::time::sleep(wait).await;
        user.create(&env.db, &env.client).await.unwrap();
        let second = user.sync().create_idempotency_key.clone().unwrap();
        assert_ne!(first, second, "the released key was replaced");
        assert_eq!(keyed_posts(&env), vec![first.clone(), first, second]);
        assert_eq!(env.sandbox().user_count(), 1, "exactly one user");
        assert_eq!(user.sync().state, SyncState::Synced);
        assert!(user.sync().last_error.is_none());
        let listed = env
            .sandbox()
            .request_log()
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with("/users"))
            .count();
        assert!(listed >= 1, "the outcome was settled by listing users");
    }
);

both_backends!(
    an_interrupted_create_is_finished_by_replay_not_duplicated,
    |env: Env| async move {
        let mut user = natural_owner();
        user.save(&env.db).await.unwrap();
        let id = user.id.unwrap();
        // Mangopay creates the user but its answer is slow; the caller gives up (a crash, a
        // timeout, a cancelled task) before writing anything back.
        env.warm_up().await;
        env.sandbox().knobs().set_latency(Duration::from_secs(30));
        let (db, client) = (env.db.clone(), env.client.clone());
        let attempt = tokio::spawn(async move {
            let mut user = MangopayNaturalUser::get(&db, id).await.unwrap();
            user.create(&db, &client).await
        });
        env.until_mangopay_has_users(1).await;
        attempt.abort();
        let _ = attempt.await;
        let pending = MangopayNaturalUser::get(&env.db, id).await.unwrap();
        assert_eq!(pending.sync().state, SyncState::Pending);
        assert!(pending.mangopay_id().is_none());

        env.sandbox().knobs().set_latency(Duration::ZERO);
        // The interrupted call's lease still holds the row: a retry now is told to wait.
        let mut retried = MangopayNaturalUser::get(&env.db, id).await.unwrap();
        let busy = retried.create(&env.db, &env.client).await.unwrap_err();
        assert!(matches!(busy, Error::Busy { .. }), "{busy}");
        assert!(busy.is_retryable() && busy.retry_after().unwrap() <= Duration::from_secs(70));
        env.expire_lease(id).await;
        retried.create(&env.db, &env.client).await.unwrap();
        let created = &env.sandbox().users()[0];
        assert_eq!(retried.mangopay_id(), created["Id"].as_str());
        assert_eq!(env.sandbox().user_count(), 1, "exactly one Mangopay user");
        let log = env.sandbox().request_log();
        assert!(
            log.iter().any(|r| r.status == 409),
            "the retry was answered 409: {log:?}"
        );
        assert!(
            log.iter().any(|r| r.path.contains("/responses/")),
            "and read back: {log:?}"
        );
    }
);

both_backends!(
    concurrent_creates_of_one_row_make_one_user,
    |env: Env| async move {
        let mut user = natural_owner();
        user.save(&env.db).await.unwrap();
        let id = user.id.unwrap();
        env.warm_up().await;
        env.sandbox()
            .knobs()
            .set_latency(Duration::from_millis(100));
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let (db, client) = (env.db.clone(), env.client.clone());
                tokio::spawn(async move {
                    // Retry as a job would: a 409 whose first answer is not stored yet is transient.
                    loop {
                        let mut user = MangopayNaturalUser::get(&db, id).await.unwrap();
                        match user.create(&db, &client).await {
                            Ok(()) => return user.mangopay_id().unwrap().to_owned(),
                            Err(e) if e.is_retryable() => {
                                tokio::time::sleep(Duration::from_millis(50)).await
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                })
            })
            .collect();
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await.unwrap());
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "every caller sees the same user: {ids:?}");
        assert_eq!(env.sandbox().user_count(), 1);
    }
);
