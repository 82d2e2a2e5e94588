//! The sync core at its edges, through the model methods: unknown outcomes that keep their
//! key and are settled by tag, conditional writes that a slow caller cannot undo, the
//! application's saves that an answer does not overwrite, fields cleared at Mangopay or
//! refused, unreadable answers resent with their key, keys older than a day, and the
//! operator's `adopt` and `release_key`.

use std::time::Duration;

use chrono::Utc;
use diesel_mangopay::sync::Resource;
use diesel_mangopay::{
    DatabaseUrl, Error, FieldErrorKind, MangopayClient, MangopayLegalUser, MangopayNaturalUser,
    SyncState, UserCategory,
};
use diesel_mangopay_sandbox::{AnswerLoss, LookupFailure, PutEmptyString, PutNull};

use crate::both_backends;
use crate::support::{Env, RECONCILE_AFTER, legal_owner, natural_owner};

/// The idempotency keys of the POSTs creating users, with their statuses.
fn posts(env: &Env) -> Vec<(String, u16)> {
    env.sandbox()
        .request_log()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.contains("/users/"))
        .map(|r| (r.idempotency_key.unwrap_or_default(), r.status))
        .collect()
}

async fn reload(env: &Env, id: i64) -> MangopayNaturalUser {
    MangopayNaturalUser::get(&env.db, id).await.unwrap()
}

both_backends!(
    a_failed_look_up_after_a_409_keeps_the_key_and_the_tag_settles_it,
    |env: Env| async move {
        env.warm_up().await;
        for (n, lookup) in [
            LookupFailure::Status(404),
            LookupFailure::Status(403),
            LookupFailure::Status(400),
            LookupFailure::Status(503),
        ]
        .into_iter()
        .enumerate()
        {
            // Mangopay creates the user and loses its answer...
            let mut user = natural_owner();
            user.email = format!("lost.answer.{n}@example.com");
            env.sandbox()
                .knobs()
                .drop_next_answers(1, AnswerLoss::Close);
            let error = user.create(&env.db, &env.client).await.unwrap_err();
            assert!(matches!(error, Error::OutcomeUnknown { .. }), "{error}");
            let key = user.sync().create_idempotency_key.clone().unwrap();

            // ...and then fails to read it back after the retry's 409.
            env.sandbox().knobs().fail_response_lookups(1, lookup);
            let error = user.create(&env.db, &env.client).await.unwrap_err();
            assert!(
                matches!(
                    error,
                    Error::OutcomeUnknown {
                        retry_at: Some(_),
                        ..
                    }
                ),
                "{lookup:?}: {error}"
            );
            let row = reload(&env, user.id.unwrap()).await;
            assert_eq!(row.sync().state, SyncState::Pending, "{lookup:?}");
            assert_eq!(
                row.sync().create_idempotency_key.as_deref(),
                Some(key.as_str()),
                "{lookup:?}: the key stays on the row"
            );
            assert!(row.sync().create_key_spent);

            // Once Mangopay has had time, listing users finds the one the key created.
            tokio::time::sleep(error.retry_after().unwrap()).await;
            user.create(&env.db, &env.client).await.unwrap();
            let created: Vec<_> = env
                .sandbox()
                .users()
                .into_iter()
                .filter(|u| u["Email"] == user.email.as_str())
                .collect();
            assert_eq!(created.len(), 1, "{lookup:?}: exactly one user");
            assert_eq!(user.mangopay_id(), created[0]["Id"].as_str());
            assert_eq!(user.sync().state, SyncState::Synced);
            let sent: Vec<_> = posts(&env)
                .into_iter()
                .filter(|(k, _)| *k == key)
                .map(|(_, s)| s)
                .collect();
            assert_eq!(sent, [200, 409], "{lookup:?}: never resent with a new key");
        }
    }
);

both_backends!(
    a_slow_caller_cannot_turn_a_synced_row_back,
    |env: Env| async move {
        env.warm_up().await;
        let mut user = natural_owner();
        user.save(&env.db).await.unwrap();
        let id = user.id.unwrap();
        // A: its request is processed slowly.
        env.sandbox()
            .knobs()
            .set_handler_delay(Duration::from_millis(1500));
        let (db, client) = (env.db.clone(), env.client.clone());
        let first = tokio::spawn(async move {
            let mut user = MangopayNaturalUser::get(&db, id).await.unwrap();
            user.create(&db, &client).await
        });
        env.until_a_post_is_in_flight().await;
        // B: A's lease is taken over (as after A's time ran out); B resends the key, gets a
        // 409, and its look-up hangs until B gives up, long after A recorded the user.
        env.expire_lease(id).await;
        env.sandbox().knobs().set_handler_delay(Duration::ZERO);
        env.sandbox()
            .knobs()
            .fail_response_lookups(1, LookupFailure::Hang);
        let slow = env
            .client_with(Duration::from_secs(4), Duration::from_secs(60))
            .await;
        let mut b = reload(&env, id).await;
        let late = b.create(&env.db, &slow).await.unwrap_err();
        assert!(matches!(late, Error::OutcomeUnknown { .. }), "{late}");
        first.await.unwrap().unwrap();

        let row = reload(&env, id).await;
        assert_eq!(
            row.sync().state,
            SyncState::Synced,
            "B's late failure changed nothing"
        );
        assert!(row.sync().last_error.is_none());
        assert!(row.mangopay_id().is_some());
        assert_eq!(env.sandbox().user_count(), 1);
    }
);

both_backends!(
    a_claim_that_finds_the_object_created_repairs_the_state,
    |env: Env| async move {
        let mut user = natural_owner();
        user.create(&env.db, &env.client).await.unwrap();
        let id = user.id.unwrap();
        env.sql(&format!(
            "UPDATE mangopay_users SET sync_state = 'pending' WHERE id = {id}"
        ))
        .await;
        env.sandbox().clear_request_log();
        let mut stale = reload(&env, id).await;
        assert_eq!(stale.sync().state, SyncState::Pending);
        stale.create(&env.db, &env.client).await.unwrap();
        assert_eq!(stale.sync().state, SyncState::Synced);
        assert!(env.sandbox().request_log().is_empty(), "nothing was sent");
    }
);

both_backends!(
    a_save_while_the_create_is_in_flight_is_not_undone,
    |env: Env| async move {
        env.warm_up().await;
        let mut user = natural_owner();
        user.save(&env.db).await.unwrap();
        let id = user.id.unwrap();
        env.sandbox()
            .knobs()
            .set_handler_delay(Duration::from_millis(800));
        let (db, client) = (env.db.clone(), env.client.clone());
        let create = tokio::spawn(async move {
            let mut user = MangopayNaturalUser::get(&db, id).await.unwrap();
            user.create(&db, &client).await.map(|()| user)
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        // The application changes the user while Mangopay creates it from the old values.
        let mut edited = reload(&env, id).await;
        edited.occupation = Some("Pilot".into());
        edited.save(&env.db).await.unwrap();
        create.await.unwrap().unwrap();
        env.sandbox().knobs().set_handler_delay(Duration::ZERO);

        let row = reload(&env, id).await;
        assert_eq!(row.sync().state, SyncState::Synced);
        assert_eq!(row.occupation.as_deref(), Some("Pilot"), "the save is kept");
        assert!(row.sync().dirty, "an update is owed to Mangopay");
        let remote = env.sandbox().user(row.mangopay_id().unwrap()).unwrap();
        assert_eq!(remote["Occupation"], "Engineer");

        let mut row = row;
        row.update(&env.db, &env.client).await.unwrap();
        assert!(!row.sync().dirty);
        let remote = env.sandbox().user(row.mangopay_id().unwrap()).unwrap();
        assert_eq!(remote["Occupation"], "Pilot");
    }
);

both_backends!(
    a_save_while_an_update_is_in_flight_is_not_undone,
    |env: Env| async move {
        let mut user = natural_owner();
        user.create(&env.db, &env.client).await.unwrap();
        let id = user.id.unwrap();
        env.sandbox()
            .knobs()
            .set_handler_delay(Duration::from_millis(800));
        user.occupation = Some("Architect".into());
        let (db, client) = (env.db.clone(), env.client.clone());
        let update = tokio::spawn(async move { user.update(&db, &client).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut edited = reload(&env, id).await;
        edited.last_name = "Smith-Jones".into();
        edited.save(&env.db).await.unwrap();
        update.await.unwrap().unwrap();
        env.sandbox().knobs().set_handler_delay(Duration::ZERO);

        let row = reload(&env, id).await;
        assert_eq!(row.last_name, "Smith-Jones", "the save is kept");
        assert_eq!(row.occupation.as_deref(), Some("Architect"));
        assert!(row.sync().dirty, "the newer save is still owed to Mangopay");
        assert_eq!(
            env.sandbox().user(row.mangopay_id().unwrap()).unwrap()["LastName"],
            "Smith"
        );
    }
);

both_backends!(
    cleared_fields_are_cleared_at_mangopay_or_reported,
    |env: Env| async move {
        let mut user = natural_owner();
        user.create(&env.db, &env.client).await.unwrap();
        let id = user.mangopay_id().unwrap().to_owned();

        // Text is cleared with "".
        user.occupation = None;
        user.address.as_mut().unwrap().line2 = None;
        user.update(&env.db, &env.client).await.unwrap();
        let remote = env.sandbox().user(&id).unwrap();
        assert!(remote["Occupation"].is_null(), "{remote}");
        assert!(remote["Address"]["AddressLine2"].is_null(), "{remote}");
        assert_eq!(user.occupation, None, "not restored by the answer");
        assert_eq!(user.address.as_ref().unwrap().line2, None);
        assert!(!user.sync().dirty);

        // IncomeRange is cleared with null, which the reference lists among its values. A
        // Mangopay that keeps a field sent as null: the update says so, nothing is restored.
        user.income_range = None;
        let error = user.update(&env.db, &env.client).await.unwrap_err();
        assert!(
            matches!(&error, Error::NotCleared { fields, .. } if fields == &["income_range"]),
            "{error}"
        );
        assert_eq!(user.income_range, None);
        assert_eq!(env.sandbox().user(&id).unwrap()["IncomeRange"], 3);
        // A Mangopay that clears it: done.
        env.sandbox().knobs().set_put_null(PutNull::Clear);
        user.update(&env.db, &env.client).await.unwrap();
        assert!(env.sandbox().user(&id).unwrap()["IncomeRange"].is_null());
        assert_eq!(user.income_range, None);
        env.sandbox().knobs().set_put_null(PutNull::Keep);

        // A Mangopay that ignores "": the update says so and the row keeps its values.
        user.address = None;
        env.sandbox()
            .knobs()
            .set_put_empty_string(PutEmptyString::Keep);
        let error = user.update(&env.db, &env.client).await.unwrap_err();
        let Error::NotCleared { fields, .. } = &error else {
            panic!("{error}")
        };
        assert_eq!(fields, &["address"]);
        assert!(user.address.is_none(), "the answer did not restore it");
        assert_eq!(
            user.sync().last_error.as_ref().unwrap().kind.as_deref(),
            Some("field_not_cleared")
        );

        // A Mangopay that refuses "": its 400 is kept on the row.
        env.sandbox()
            .knobs()
            .set_put_empty_string(PutEmptyString::Reject);
        let error = user.update(&env.db, &env.client).await.unwrap_err();
        assert_eq!(error.api().and_then(|e| e.status()), Some(400), "{error}");
        assert!(user.address.is_none());
        assert!(!user.sync().dirty, "a refusal is not retried by the sweep");

        // A field Mangopay cannot clear is refused before anything is sent.
        env.sandbox()
            .knobs()
            .set_put_empty_string(PutEmptyString::Clear);
        let mut legal = legal_owner();
        legal.create(&env.db, &env.client).await.unwrap();
        env.sandbox().clear_request_log();
        legal.user_category = UserCategory::Payer;
        legal.legal_representative_birthday = None;
        let before = MangopayLegalUser::get(&env.db, legal.id.unwrap())
            .await
            .unwrap();
        let error = legal.update(&env.db, &env.client).await.unwrap_err();
        let errors = error.validation().expect("a validation error");
        assert!(matches!(
            errors.get("legal_representative_birthday").unwrap().kind(),
            FieldErrorKind::CannotClear(_)
        ));
        assert!(env.sandbox().request_log().is_empty(), "nothing was sent");
        let after = MangopayLegalUser::get(&env.db, legal.id.unwrap())
            .await
            .unwrap();
        assert_eq!(after, before, "the row is unchanged");
    }
);

both_backends!(
    an_unreadable_2xx_is_resent_with_its_key_not_failed,
    |env: Env| async move {
        env.warm_up().await;
        env.sandbox()
            .knobs()
            .drop_next_answers(1, AnswerLoss::Garble);
        let mut user = natural_owner();
        let error = user.create(&env.db, &env.client).await.unwrap_err();
        assert!(
            matches!(error, Error::OutcomeUnknown { retry_at: None, .. }),
            "{error}"
        );
        assert!(error.is_retryable());
        assert_eq!(user.sync().state, SyncState::Pending, "not failed");
        let key = user.sync().create_idempotency_key.clone().unwrap();
        user.create(&env.db, &env.client).await.unwrap();
        assert_eq!(user.sync().state, SyncState::Synced);
        assert_eq!(
            posts(&env),
            [(key.clone(), 200), (key, 409)],
            "resent with the same key"
        );
        assert_eq!(env.sandbox().user_count(), 1);
    }
);

both_backends!(
    a_key_older_than_a_day_is_settled_by_tag_never_resent,
    |env: Env| async move {
        env.warm_up().await;
        let day_ago = (Utc::now() - chrono::Duration::hours(25)).naive_utc();
        // Created at Mangopay, its answer replaced by a 500; and created nowhere.
        env.sandbox().knobs().fail_next_after_work(1);
        let mut made = natural_owner();
        made.email = "made@example.com".into();
        made.create(&env.db, &env.client).await.unwrap_err();
        env.sandbox().knobs().fail_next(1);
        let mut lost = natural_owner();
        lost.email = "lost@example.com".into();
        lost.create(&env.db, &env.client).await.unwrap_err();
        let made_key = made.sync().create_idempotency_key.clone().unwrap();
        let lost_key = lost.sync().create_idempotency_key.clone().unwrap();
        env.sql(&format!(
            "UPDATE mangopay_users SET create_idempotency_key_at = '{day_ago}', \
             create_sent_at = '{day_ago}'"
        ))
        .await;
        // Mangopay forgets keys after 24 hours; its objects keep their creation date.
        env.sandbox()
            .clock()
            .advance(Duration::from_secs(25 * 3600));
        env.sandbox().clear_request_log();

        made.create(&env.db, &env.client).await.unwrap();
        assert_eq!(made.sync().state, SyncState::Synced);
        assert_eq!(
            made.mangopay_id(),
            env.sandbox()
                .users()
                .iter()
                .find(|u| u["Email"] == "made@example.com")
                .and_then(|u| u["Id"].as_str())
        );
        lost.create(&env.db, &env.client).await.unwrap();
        let new_key = lost.sync().create_idempotency_key.clone().unwrap();
        assert_ne!(new_key, lost_key);
        let sent: Vec<String> = posts(&env).into_iter().map(|(k, _)| k).collect();
        assert_eq!(sent, [new_key], "the old keys were never resent");
        assert!(!sent.contains(&made_key));
        assert_eq!(env.sandbox().user_count(), 2);
    }
);

both_backends!(
    adopt_and_release_key_refuse_what_mangopay_contradicts,
    |env: Env| async move {
        env.warm_up().await;
        // A row whose create's outcome is unknown (its object was made, the answer lost).
        env.sandbox().knobs().fail_next_after_work(1);
        let mut user = natural_owner();
        user.create(&env.db, &env.client).await.unwrap_err();
        let made = env.sandbox().users()[0]["Id"].as_str().unwrap().to_owned();
        assert_eq!(env.sandbox().users()[0]["Email"], user.email.as_str());
        // A legal user made at Mangopay outside this database.
        let request = legal_owner().create_request(None).unwrap();
        let legal = env
            .client
            .post(
                &request.path,
                &request.body,
                &diesel_mangopay::IdempotencyKey::generate(),
            )
            .await
            .unwrap();
        let legal_id = legal["Id"].as_str().unwrap().to_owned();
        let mut neighbour = natural_owner();
        neighbour.email = "neighbour@example.com".into();
        neighbour.create(&env.db, &env.client).await.unwrap();
        let neighbours = neighbour.mangopay_id().unwrap().to_owned();

        // Too early to release: Mangopay may still be showing the object.
        let early = user.release_key(&env.db, &env.client).await.unwrap_err();
        assert!(matches!(early, Error::ReleaseRefused { .. }), "{early}");
        tokio::time::sleep(RECONCILE_AFTER).await;
        // The object carrying the key's tag exists: releasing would let a duplicate through.
        let refused = user.release_key(&env.db, &env.client).await.unwrap_err();
        assert!(
            matches!(&refused, Error::ReleaseRefused { reason, .. } if reason.contains(&made)),
            "{refused}"
        );
        for (wrong, why) in [
            (legal_id.as_str(), "of this kind"),
            (neighbours.as_str(), "already has it"),
            ("user_m_01JXXXXXXXXXXXXXXXXXXXXXXX", "no such object"),
        ] {
            let error = user.adopt(&env.db, &env.client, wrong).await.unwrap_err();
            assert!(
                matches!(&error, Error::AdoptRefused { reason, .. } if reason.contains(why)),
                "{wrong}: {error}"
            );
        }
        let row = reload(&env, user.id.unwrap()).await;
        assert!(row.mangopay_id().is_none(), "refusals change nothing");
        assert_eq!(row.sync().state, SyncState::Pending);

        user.adopt(&env.db, &env.client, &made).await.unwrap();
        assert_eq!(user.mangopay_id(), Some(made.as_str()));
        assert_eq!(user.sync().state, SyncState::Synced);
        assert!(user.release_key(&env.db, &env.client).await.is_err());

        // A key that created nothing is released, and the next create sends a new one.
        env.sandbox().knobs().fail_next(1);
        let mut stuck = natural_owner();
        stuck.email = "stuck@example.com".into();
        stuck.create(&env.db, &env.client).await.unwrap_err();
        let old = stuck.sync().create_idempotency_key.clone().unwrap();
        tokio::time::sleep(RECONCILE_AFTER).await;
        stuck.release_key(&env.db, &env.client).await.unwrap();
        assert!(stuck.sync().create_idempotency_key.is_none());
        assert_eq!(
            stuck.sync().state,
            SyncState::Pending,
            "still owed, with no key"
        );
        stuck.create(&env.db, &env.client).await.unwrap();
        assert_ne!(
            stuck.sync().create_idempotency_key.as_deref(),
            Some(old.as_str())
        );
    }
);

both_backends!(
    a_stored_value_this_version_cannot_read_is_an_error,
    |env: Env| async move {
        let mut user = natural_owner();
        user.save(&env.db).await.unwrap();
        let id = user.id.unwrap();
        env.sql(&format!(
            "UPDATE mangopay_users SET last_error = 'not json' WHERE id = {id}"
        ))
        .await;
        let error = MangopayNaturalUser::get(&env.db, id).await.unwrap_err();
        assert!(
            matches!(
                &error,
                Error::StoredValue {
                    column: "last_error",
                    ..
                }
            ),
            "{error}"
        );
    }
);

both_backends!(sqlite_commits_survive_power_loss, |env: Env| async move {
    if !matches!(env.database.url, DatabaseUrl::Sqlite(_)) {
        return;
    }
    #[derive(diesel::QueryableByName)]
    struct Synchronous {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        synchronous: i32,
    }
    let level = env
        .db
        .run(|conn| {
            use diesel::RunQueryDsl;
            diesel::sql_query("PRAGMA synchronous")
                .get_result::<Synchronous>(conn)
                .map_err(diesel_mangopay::DbError::from)
        })
        .await
        .unwrap();
    assert_eq!(level.synchronous, 2, "FULL");
});

both_backends!(
    a_refused_resend_keeps_a_key_that_may_have_created_the_object,
    |env: Env| async move {
        env.warm_up().await;
        // The first send is processed and its answer lost; the resend meets a proxy's 307.
        let mut user = natural_owner();
        user.email = "redirected@example.com".into();
        env.sandbox()
            .knobs()
            .drop_next_answers(1, AnswerLoss::Close);
        user.create(&env.db, &env.client).await.unwrap_err();
        let key = user.sync().create_idempotency_key.clone().unwrap();
        env.sandbox()
            .knobs()
            .redirect_next(1, "https://proxy.invalid/");
        let error = user.create(&env.db, &env.client).await.unwrap_err();
        assert!(matches!(error, Error::OutcomeUnknown { .. }), "{error}");
        assert_eq!(user.sync().state, SyncState::Pending);
        assert_eq!(
            user.sync().create_idempotency_key.as_deref(),
            Some(key.as_str())
        );
        assert!(
            user.sync().create_key_spent,
            "looked up and reconciled, never resent"
        );

        // A resend that cannot even get a token (credentials rotated away): nothing sent,
        // the key's fate untouched.
        let mut other = natural_owner();
        other.email = "bad.credentials@example.com".into();
        env.sandbox()
            .knobs()
            .drop_next_answers(1, AnswerLoss::Close);
        other.create(&env.db, &env.client).await.unwrap_err();
        let other_key = other.sync().create_idempotency_key.clone().unwrap();
        let c = env.sandbox().config();
        let stale = MangopayClient::new(
            diesel_mangopay::ClientConfig::builder(c.client_id.clone(), "rotated-away")
                .base_url(env.sandbox.base_url())
                .reconcile_after(RECONCILE_AFTER)
                .build()
                .unwrap(),
        )
        .unwrap();
        let error = other.create(&env.db, &stale).await.unwrap_err();
        assert!(!error.is_retryable(), "{error}");
        assert_eq!(other.sync().state, SyncState::Pending);
        assert_eq!(
            other.sync().create_idempotency_key.as_deref(),
            Some(other_key.as_str())
        );

        // Both settle on the user the first send made: one user each.
        tokio::time::sleep(RECONCILE_AFTER).await;
        user.create(&env.db, &env.client).await.unwrap();
        other.create(&env.db, &env.client).await.unwrap();
        for email in ["redirected@example.com", "bad.credentials@example.com"] {
            let n = env
                .sandbox()
                .users()
                .iter()
                .filter(|u| u["Email"] == email)
                .count();
            assert_eq!(n, 1, "{email}");
        }
    }
);

both_backends!(
    an_old_key_waits_for_its_last_send_to_settle_before_a_search,
    |env: Env| async move {
        let client = env
            .client_with(Duration::from_secs(10), Duration::from_secs(300))
            .await;
        let mut user = natural_owner();
        user.email = "late.retry@example.com".into();
        env.sandbox()
            .knobs()
            .drop_next_answers(1, AnswerLoss::Close);
        user.create(&env.db, &client).await.unwrap_err();
        // The key is nearly a day old, and was sent just now; the list lags behind.
        let old = (Utc::now() - chrono::Duration::minutes(23 * 60 + 1)).naive_utc();
        env.sql(&format!(
            "UPDATE mangopay_users SET create_idempotency_key_at = '{old}' WHERE id = {}",
            user.id.unwrap()
        ))
        .await;
        env.sandbox().knobs().set_list_lag(Duration::from_secs(60));
        // Not resent, not searched yet: the key's first answer is read back.
        user.create(&env.db, &client).await.unwrap();
        assert_eq!(user.sync().state, SyncState::Synced);
        let n = env
            .sandbox()
            .users()
            .iter()
            .filter(|u| u["Email"] == "late.retry@example.com")
            .count();
        assert_eq!(n, 1);

        // The same, with the key's answer lost too: the create waits instead of searching.
        let mut lost = natural_owner();
        lost.email = "late.and.lost@example.com".into();
        env.sandbox()
            .knobs()
            .drop_next_answers(1, AnswerLoss::Close);
        lost.create(&env.db, &client).await.unwrap_err();
        env.sql(&format!(
            "UPDATE mangopay_users SET create_idempotency_key_at = '{old}' WHERE id = {}",
            lost.id.unwrap()
        ))
        .await;
        env.sandbox()
            .knobs()
            .fail_response_lookups(1, LookupFailure::Status(404));
        let error = lost.create(&env.db, &client).await.unwrap_err();
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
        assert_eq!(lost.sync().state, SyncState::Pending);
        let n = env
            .sandbox()
            .users()
            .iter()
            .filter(|u| u["Email"] == "late.and.lost@example.com")
            .count();
        assert_eq!(n, 1, "no second user");
        env.sandbox().knobs().set_list_lag(Duration::ZERO);
    }
);

both_backends!(
    a_replayed_answer_does_not_overwrite_a_newer_edit,
    |env: Env| async move {
        env.warm_up().await;
        let mut user = natural_owner();
        env.sandbox()
            .knobs()
            .drop_next_answers(1, AnswerLoss::Close);
        user.create(&env.db, &env.client).await.unwrap_err();
        user.occupation = Some("Pilot".into());
        // Resent with the same key: Mangopay replays the object built from the first body.
        user.create(&env.db, &env.client).await.unwrap();
        let row = reload(&env, user.id.unwrap()).await;
        assert_eq!(row.occupation.as_deref(), Some("Pilot"), "the edit is kept");
        assert!(row.sync().dirty, "and owed to Mangopay");
        let mut row = row;
        row.update(&env.db, &env.client).await.unwrap();
        assert_eq!(
            env.sandbox().user(row.mangopay_id().unwrap()).unwrap()["Occupation"],
            "Pilot"
        );
    }
);

both_backends!(
    a_saved_edit_of_a_created_row_is_owed_and_not_refreshed_away,
    |env: Env| async move {
        let mut user = natural_owner();
        user.create(&env.db, &env.client).await.unwrap();
        user.occupation = Some("Pilot".into());
        user.save(&env.db).await.unwrap();
        assert!(user.sync().dirty, "the saved edit is owed to Mangopay");
        user.refresh(&env.db, &env.client).await.unwrap();
        assert_eq!(user.occupation.as_deref(), Some("Pilot"), "kept by refresh");
        let table = <MangopayNaturalUser as Resource>::TABLE;
        let due = diesel_mangopay::sync::sweep::claim_due(
            &env.db,
            table,
            &diesel_mangopay::sync::SweepOptions::default(),
            &diesel_mangopay::Lease::reservation("sweep"),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(due.len(), 1, "the sweep hands it out for an update");
        assert!(due[0].update);
    }
);

both_backends!(
    a_refused_update_keeps_a_newer_save_owed,
    |env: Env| async move {
        let mut user = natural_owner();
        user.create(&env.db, &env.client).await.unwrap();
        let id = user.id.unwrap();
        env.sandbox()
            .knobs()
            .set_put_empty_string(PutEmptyString::Reject);
        env.sandbox()
            .knobs()
            .set_handler_delay(Duration::from_millis(800));
        user.occupation = None; // sent as "", refused
        let (db, client) = (env.db.clone(), env.client.clone());
        let update = tokio::spawn(async move { user.update(&db, &client).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut edited = reload(&env, id).await;
        edited.last_name = "Smith-Jones".into();
        edited.save(&env.db).await.unwrap();
        assert!(update.await.unwrap().is_err());
        env.sandbox().knobs().set_handler_delay(Duration::ZERO);
        let row = reload(&env, id).await;
        assert_eq!(row.last_name, "Smith-Jones");
        assert!(row.sync().dirty, "the newer save is still owed");
    }
);

both_backends!(
    a_late_writer_frees_only_its_own_lease,
    |env: Env| async move {
        use diesel_mangopay::sync::{self, Lease};
        env.warm_up().await;
        let quick = env
            .client_with(Duration::from_millis(1200), Duration::from_secs(300))
            .await;
        let slow = env
            .client_with(Duration::from_secs(5), Duration::from_secs(300))
            .await;
        let mut user = natural_owner();
        user.save(&env.db).await.unwrap();
        let id = user.id.unwrap();
        env.sandbox()
            .knobs()
            .set_handler_delay(Duration::from_secs(3));
        let db = env.db.clone();
        let a = tokio::spawn(async move {
            sync::create_by_id::<MangopayNaturalUser>(&db, &quick, id, &Lease::new("A")).await
        });
        tokio::time::sleep(Duration::from_millis(400)).await;
        env.expire_lease(id).await;
        env.sandbox()
            .knobs()
            .fail_response_lookups(1, LookupFailure::Hang);
        let db = env.db.clone();
        let b = tokio::spawn(async move {
            sync::create_by_id::<MangopayNaturalUser>(&db, &slow, id, &Lease::new("B")).await
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            reload(&env, id).await.sync().lease_owner.as_deref(),
            Some("B")
        );
        assert!(a.await.unwrap().is_err(), "A timed out and recorded it");
        assert!(!b.is_finished());
        assert_eq!(
            reload(&env, id).await.sync().lease_owner.as_deref(),
            Some("B"),
            "A's late record left B's lease alone"
        );
        let _ = b.await;
        env.sandbox().knobs().set_handler_delay(Duration::ZERO);
    }
);

both_backends!(
    a_job_that_waited_past_its_reservation_still_takes_the_row,
    |env: Env| async move {
        use diesel_mangopay::sync::{self, Lease, SweepOptions};
        let mut user = natural_owner();
        user.save(&env.db).await.unwrap();
        let id = user.id.unwrap();
        let table = <MangopayNaturalUser as Resource>::TABLE;
        let short = SweepOptions {
            new_rows_after: Some(Duration::ZERO),
            lease: Duration::from_secs(1),
            batch: 10,
        };
        let first = Lease::reservation("sweep");
        let handed = sync::sweep::claim_due(&env.db, table, &short, &first).await;
        assert_eq!(handed.unwrap().unwrap().len(), 1);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let second = Lease::reservation("sweep");
        let handed = sync::sweep::claim_due(&env.db, table, &short, &second).await;
        assert_eq!(
            handed.unwrap().unwrap().len(),
            1,
            "the row is reserved again"
        );
        // The first sweep's job finally runs: the reservation is anyone's to take.
        sync::create_by_id::<MangopayNaturalUser>(&env.db, &env.client, id, &Lease::new("task-1"))
            .await
            .unwrap();
        assert_eq!(reload(&env, id).await.sync().state, SyncState::Synced);
    }
);

both_backends!(
    an_orphaned_object_is_kept_in_the_ledger_for_good,
    |env: Env| async move {
        env.warm_up().await;
        let mut user = natural_owner();
        user.save(&env.db).await.unwrap();
        let id = user.id.unwrap();
        env.sandbox()
            .knobs()
            .set_handler_delay(Duration::from_secs(2));
        let (db, client) = (env.db.clone(), env.client.clone());
        let slow = tokio::spawn(async move {
            let mut user = MangopayNaturalUser::get(&db, id).await.unwrap();
            user.create(&db, &client).await
        });
        env.until_a_post_is_in_flight().await;
        // The row's key is replaced meanwhile (as after a release by another party).
        env.sql(&format!(
            "UPDATE mangopay_users SET create_idempotency_key = 'aaaaaaaaaaaaaaaaaaaa', \
             lease_until = '2000-01-01 00:00:00' WHERE id = {id}"
        ))
        .await;
        slow.await.unwrap().unwrap();
        env.sandbox().knobs().set_handler_delay(Duration::ZERO);
        let orphans = diesel_mangopay::sync::orphans(&env.db).await.unwrap();
        assert_eq!(orphans.len(), 1);
        assert_eq!(orphans[0].row_id, id);
        assert_eq!(
            Some(orphans[0].mangopay_id.as_str()),
            env.sandbox().users()[0]["Id"].as_str()
        );
    }
);

both_backends!(
    an_answer_a_column_cannot_hold_is_noted_not_lost,
    |env: Env| async move {
        if !matches!(env.database.url, DatabaseUrl::Postgres(_)) {
            // SQLite does not enforce the lengths of VARCHAR columns.
            return;
        }
        let mut user = natural_owner();
        user.create(&env.db, &env.client).await.unwrap();
        let id = user.mangopay_id().unwrap().to_owned();
        // Mangopay holds an e-mail longer than the column (254 characters).
        let long = format!("{}@example.com", "a".repeat(243));
        env.client
            .put(
                &format!("users/natural/{id}"),
                &serde_json::json!({"Email": long}),
            )
            .await
            .unwrap();
        user.refresh(&env.db, &env.client).await.unwrap();
        let sync = user.sync();
        assert_eq!(sync.api_payload.as_ref().unwrap()["Email"], long.as_str());
        assert_eq!(
            sync.last_error.as_ref().unwrap().kind.as_deref(),
            Some("answer_not_applied")
        );
        assert_eq!(
            user.email, "alex.smith@example.com",
            "the row keeps what it could"
        );
    }
);

both_backends!(operators_wait_for_a_live_worker, |env: Env| async move {
    env.warm_up().await;
    env.sandbox().knobs().fail_next_after_work(1);
    let mut user = natural_owner();
    user.create(&env.db, &env.client).await.unwrap_err();
    let made = env.sandbox().users()[0]["Id"].as_str().unwrap().to_owned();
    tokio::time::sleep(RECONCILE_AFTER).await;
    // A worker holds the row (its create is in flight).
    let id = user.id.unwrap();
    env.sql(&format!(
        "UPDATE mangopay_users SET lease_owner = 'task-7', \
             lease_until = '2999-01-01 00:00:00' WHERE id = {id}"
    ))
    .await;
    let release = user.release_key(&env.db, &env.client).await.unwrap_err();
    assert!(matches!(release, Error::Busy { .. }), "{release}");
    let adopt = user.adopt(&env.db, &env.client, &made).await.unwrap_err();
    assert!(matches!(adopt, Error::Busy { .. }), "{adopt}");
    let row = reload(&env, id).await;
    assert!(row.mangopay_id().is_none() && row.sync().create_idempotency_key.is_some());
    assert_eq!(row.sync().lease_owner.as_deref(), Some("task-7"));
    // Once the worker's lease is over, the operator may act.
    env.expire_lease(id).await;
    user.adopt(&env.db, &env.client, &made).await.unwrap();
    assert_eq!(user.mangopay_id(), Some(made.as_str()));
});
