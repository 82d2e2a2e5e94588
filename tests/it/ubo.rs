//! UBO declarations and their UBOs against the sandbox: created, UBOs created once each
//! (resuming after failures, adopted from the declaration when the key cannot tell), submitted,
//! their outcome read; bad input refused before anything is written or sent.

use std::time::Duration;

use chrono::NaiveDate;
use diesel_mangopay::{
    Address, Error, LegalPersonType, MangopayLegalUser, MangopayUbo, MangopayUboDeclaration,
    SyncState, UboCreateState, UboDeclarationStatus, UboFields, UserCategory,
};
use diesel_mangopay_sandbox::{AnswerLoss, UboOutcome, UboReason};
use serde_json::Value;

use crate::both_backends;
use crate::support::money::requests_to;
use crate::support::{Env, RECONCILE_AFTER, legal_owner, natural_owner};

/// A beneficial owner's details.
fn owner(first: &str, last: &str) -> UboFields {
    UboFields {
        first_name: first.into(),
        last_name: last.into(),
        address: Address::new("6 Parvis Notre-Dame", "Paris", "75004", "FR").unwrap(),
        nationality: "FR".into(),
        birthday: NaiveDate::from_ymd_opt(1985, 3, 12).unwrap(),
        birthplace_city: "Lyon".into(),
        birthplace_country: "FR".into(),
    }
}

/// A legal OWNER of type `kind`, created at Mangopay.
async fn company(env: &Env, email: &str, kind: LegalPersonType) -> MangopayLegalUser {
    let mut user = legal_owner();
    user.email = email.to_owned();
    user.legal_person_type = kind;
    user.create(&env.db, &env.client).await.unwrap();
    user
}

/// A declaration of a new business, created at Mangopay, with UBOs added for `names` (not
/// created).
async fn declaration(env: &Env, email: &str, names: &[&str]) -> (MangopayUboDeclaration, Vec<i64>) {
    let user = company(env, email, LegalPersonType::Business).await;
    let mut declaration = MangopayUboDeclaration::new(user.id.unwrap());
    declaration.create(&env.db, &env.client).await.unwrap();
    let mut ubos = Vec::new();
    for name in names {
        let ubo = MangopayUbo::add(&env.db, declaration.id.unwrap(), owner(name, "Owner"))
            .await
            .unwrap();
        ubos.push(ubo.id());
    }
    (declaration, ubos)
}

/// The declaration as the sandbox holds it.
fn remote(env: &Env, declaration: &MangopayUboDeclaration) -> Value {
    env.sandbox()
        .ubo_declaration(declaration.mangopay_id().unwrap())
        .unwrap()
}

/// The UBOs the sandbox holds for the declaration.
fn remote_ubos(env: &Env, declaration: &MangopayUboDeclaration) -> Vec<Value> {
    remote(env, declaration)["Ubos"].as_array().unwrap().clone()
}

fn field_errors(e: Error) -> diesel_mangopay::ValidationErrors {
    match e {
        Error::Validation(v) => v,
        other => panic!("expected a validation error, got {other}"),
    }
}

both_backends!(
    a_declaration_is_created_its_ubos_submitted_and_validated,
    |env: Env| async move {
        let db = &env.db;
        let (mut declaration, ubos) = declaration(&env, "ubo@example.com", &["Ada", "Grace"]).await;
        let id = declaration.id.unwrap();
        assert_eq!(declaration.status(), Some(&UboDeclarationStatus::Created));
        assert!(declaration.facts().mangopay_created_at.is_some());
        assert_eq!(remote(&env, &declaration)["Status"], "CREATED");
        assert_eq!(
            requests_to(&env, "POST", "/ubos"),
            0,
            "adding sends nothing"
        );

        MangopayUboDeclaration::create_ubos_and_ask_for_validation(db, &env.client, id)
            .await
            .unwrap();
        let declaration_now = MangopayUboDeclaration::get(db, id).await.unwrap();
        assert_eq!(
            declaration_now.status(),
            Some(&UboDeclarationStatus::ValidationAsked)
        );
        assert!(declaration_now.facts().validation_asked_at.is_some());
        assert!(declaration_now.facts().submission_requested_at.is_some());
        let held = remote_ubos(&env, &declaration);
        assert_eq!(held.len(), 2);
        for (ubo, remote) in ubos.iter().zip(&held) {
            let ubo = MangopayUbo::get(db, *ubo).await.unwrap();
            assert_eq!(ubo.create_state(), UboCreateState::Created);
            assert_eq!(ubo.mangopay_id(), remote["Id"].as_str());
            assert_eq!(ubo.create_attempts(), 1);
            assert!(ubo.mangopay_created_at().is_some());
            assert_eq!(remote["FirstName"], ubo.fields().first_name.as_str());
            assert_eq!(remote["Birthday"], 479_433_600);
            assert_eq!(remote["Birthplace"]["City"], "Lyon");
        }
        assert_eq!(requests_to(&env, "POST", "/ubos"), 2);
        assert_eq!(
            MangopayUboDeclaration::awaiting_validation(db)
                .await
                .unwrap(),
            [id]
        );
        // Running it again sends nothing.
        MangopayUboDeclaration::create_ubos_and_ask_for_validation(db, &env.client, id)
            .await
            .unwrap();
        assert_eq!(requests_to(&env, "POST", "/ubos"), 2);
        assert_eq!(requests_to(&env, "PUT", "/ubodeclarations"), 1);

        env.sandbox()
            .set_ubo_outcome(declaration.mangopay_id().unwrap(), UboOutcome::Validated)
            .unwrap();
        let status = MangopayUboDeclaration::update_status(db, &env.client, id)
            .await
            .unwrap();
        assert_eq!(status, Some(UboDeclarationStatus::Validated));
        declaration.refresh(db, &env.client).await.unwrap();
        assert_eq!(declaration.status(), Some(&UboDeclarationStatus::Validated));
        assert!(declaration.processed_at().is_some());
        assert_eq!(declaration.facts().status_checks, 1);
        assert!(
            MangopayUboDeclaration::awaiting_validation(db)
                .await
                .unwrap()
                .is_empty()
        );
        // A validated declaration is not checked again: nothing is sent.
        let gets = requests_to(&env, "GET", "/ubodeclarations");
        MangopayUboDeclaration::update_status(db, &env.client, id)
            .await
            .unwrap();
        assert_eq!(requests_to(&env, "GET", "/ubodeclarations"), gets);

        let user_id = declaration.user_id;
        assert_eq!(
            MangopayUboDeclaration::for_user(db, user_id)
                .await
                .unwrap()
                .len(),
            1
        );
        let latest = MangopayUboDeclaration::latest_for_user(db, user_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(latest.id, Some(id));
        assert_eq!(declaration.ubos(db).await.unwrap().len(), 2);
    }
);

both_backends!(
    a_refused_declaration_keeps_its_reason_and_another_can_be_sent,
    |env: Env| async move {
        let db = &env.db;
        let (declaration, _) = declaration(&env, "refused@example.com", &["Ada"]).await;
        let id = declaration.id.unwrap();
        let user_id = declaration.user_id;
        // While it is in progress, no second declaration is taken.
        let mut second = MangopayUboDeclaration::new(user_id);
        assert!(field_errors(second.save(db).await.unwrap_err()).has("user_id"));

        MangopayUboDeclaration::create_ubos_and_ask_for_validation(db, &env.client, id)
            .await
            .unwrap();
        env.sandbox()
            .set_ubo_outcome(
                declaration.mangopay_id().unwrap(),
                UboOutcome::Refused {
                    reason: UboReason::WrongUboInformation,
                    message: Some("The birthday does not match the ID".into()),
                },
            )
            .unwrap();
        let status = MangopayUboDeclaration::update_status(db, &env.client, id)
            .await
            .unwrap();
        assert_eq!(status, Some(UboDeclarationStatus::Refused));
        let refused = MangopayUboDeclaration::get(db, id).await.unwrap();
        assert_eq!(refused.reason(), Some("WRONG_UBO_INFORMATION"));
        assert_eq!(
            refused.message(),
            Some("The birthday does not match the ID")
        );
        // Nothing more can be done with it; a new declaration replaces it.
        let puts = requests_to(&env, "PUT", "/ubodeclarations");
        let e = refused
            .clone()
            .ask_for_validation(db, &env.client)
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::WrongState { .. }) && e.to_string().contains("REFUSED"),
            "{e}"
        );
        assert_eq!(requests_to(&env, "PUT", "/ubodeclarations"), puts);
        let e = MangopayUbo::add(db, id, owner("Late", "Owner"))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::WrongState { .. }), "{e}");
        second.create(db, &env.client).await.unwrap();
        assert_eq!(second.status(), Some(&UboDeclarationStatus::Created));
        let latest = MangopayUboDeclaration::latest_for_user(db, user_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(latest.id, second.id);
    }
);

both_backends!(
    an_incomplete_declaration_is_fixed_and_submitted_again,
    |env: Env| async move {
        let db = &env.db;
        let (declaration, ubos) = declaration(&env, "incomplete@example.com", &["Ada"]).await;
        let id = declaration.id.unwrap();
        let mangopay_id = declaration.mangopay_id().unwrap().to_owned();
        MangopayUboDeclaration::create_ubos_and_ask_for_validation(db, &env.client, id)
            .await
            .unwrap();
        // Nothing changes while it is reviewed.
        let e = MangopayUbo::update(db, ubos[0], owner("Ada", "Lovelace"))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::WrongState { .. }), "{e}");
        env.sandbox()
            .set_ubo_outcome(
                &mangopay_id,
                UboOutcome::Incomplete {
                    reason: UboReason::MissingUbo,
                    message: Some("A 30% shareholder is missing".into()),
                },
            )
            .unwrap();
        let status = MangopayUboDeclaration::update_status(db, &env.client, id)
            .await
            .unwrap();
        assert_eq!(status, Some(UboDeclarationStatus::Incomplete));
        let incomplete = MangopayUboDeclaration::get(db, id).await.unwrap();
        assert_eq!(incomplete.reason(), Some("MISSING_UBO"));
        assert_eq!(incomplete.message(), Some("A 30% shareholder is missing"));
        assert_eq!(incomplete.facts().validation_asked_at, None, "open again");
        assert_eq!(incomplete.facts().submission_requested_at, None);

        // The platform fixes a UBO and adds the missing one, then submits again.
        let fixed = MangopayUbo::update(db, ubos[0], owner("Ada", "Lovelace"))
            .await
            .unwrap();
        assert!(fixed.update_due());
        MangopayUbo::add(db, id, owner("Grace", "Hopper"))
            .await
            .unwrap();
        MangopayUboDeclaration::create_ubos_and_ask_for_validation(db, &env.client, id)
            .await
            .unwrap();
        assert_eq!(requests_to(&env, "PUT", "/ubos/"), 1, "the update was sent");
        assert!(!MangopayUbo::get(db, ubos[0]).await.unwrap().update_due());
        let resubmitted = MangopayUboDeclaration::get(db, id).await.unwrap();
        assert_eq!(
            resubmitted.status(),
            Some(&UboDeclarationStatus::ValidationAsked)
        );
        assert_eq!(resubmitted.reason(), None);
        let held = remote_ubos(&env, &declaration);
        assert_eq!(held.len(), 2);
        assert_eq!(held[0]["LastName"], "Lovelace");
        assert_eq!(held[1]["FirstName"], "Grace");

        env.sandbox()
            .set_ubo_outcome(&mangopay_id, UboOutcome::Validated)
            .unwrap();
        let status = MangopayUboDeclaration::update_status(db, &env.client, id)
            .await
            .unwrap();
        assert_eq!(status, Some(UboDeclarationStatus::Validated));
        let validated = MangopayUboDeclaration::get(db, id).await.unwrap();
        assert_eq!(validated.facts().status_checks, 2);
    }
);

both_backends!(
    bad_input_is_refused_before_anything_is_written_or_sent,
    |env: Env| async move {
        let db = &env.db;
        let count = |user: i64| {
            let db = db.clone();
            async move {
                MangopayUboDeclaration::for_user(&db, user)
                    .await
                    .unwrap()
                    .len()
            }
        };
        // A natural user, an organisation, a payer: no declaration is saved.
        let mut natural = natural_owner();
        natural.email = "natural@example.com".into();
        natural.create(db, &env.client).await.unwrap();
        let mut d = MangopayUboDeclaration::new(natural.id.unwrap());
        let e = field_errors(d.save(db).await.unwrap_err());
        assert!(e.has("user_id") && e.to_string().contains("natural"), "{e}");
        let organisation = company(&env, "org@example.com", LegalPersonType::Organization).await;
        let mut d = MangopayUboDeclaration::new(organisation.id.unwrap());
        let e = field_errors(d.create(db, &env.client).await.unwrap_err());
        assert!(
            e.has("user_id") && e.to_string().contains("ORGANIZATION"),
            "{e}"
        );
        let mut payer = legal_owner();
        payer.email = "payer@example.com".into();
        payer.user_category = UserCategory::Payer;
        payer.terms_and_conditions_accepted = false;
        payer.create(db, &env.client).await.unwrap();
        let mut d = MangopayUboDeclaration::new(payer.id.unwrap());
        let e = d.save(db).await.unwrap_err();
        assert!(
            matches!(
                e,
                Error::ParentNotUsable {
                    field: "user_id",
                    ..
                }
            ),
            "{e}"
        );
        // A business not created at Mangopay: nothing is written or sent.
        let mut pending = legal_owner();
        pending.email = "not-created@example.com".into();
        pending.save(db).await.unwrap();
        let mut d = MangopayUboDeclaration::new(pending.id.unwrap());
        let e = d.create(db, &env.client).await.unwrap_err();
        assert!(
            matches!(
                e,
                Error::ParentNotCreated {
                    field: "user_id",
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(d.id, None);
        for user in [natural.id, organisation.id, payer.id, pending.id] {
            assert_eq!(count(user.unwrap()).await, 0);
        }
        assert_eq!(requests_to(&env, "POST", "/ubodeclarations"), 0);

        // UBO details: every bad field is named, and nothing is added.
        let (mut declaration, ubos) = declaration(&env, "bad-ubo@example.com", &[]).await;
        let id = declaration.id.unwrap();
        assert!(ubos.is_empty());
        let bad = UboFields {
            first_name: String::new(),
            last_name: "x".repeat(101),
            address: Address {
                line1: Some("1 Main St".into()),
                city: Some("Austin".into()),
                postal_code: Some("73301".into()),
                country: Some("US".parse().unwrap()),
                ..Address::default()
            },
            nationality: "XX".into(),
            birthday: chrono::Utc::now().date_naive() + chrono::Duration::days(1),
            birthplace_city: String::new(),
            birthplace_country: "France".into(),
        };
        let e = field_errors(MangopayUbo::add(db, id, bad).await.unwrap_err());
        for field in [
            "first_name",
            "last_name",
            "address.region",
            "nationality",
            "birthday",
            "birthplace_city",
            "birthplace_country",
        ] {
            assert!(e.has(field), "{field}: {e}");
        }
        let ancient = UboFields {
            birthday: NaiveDate::from_ymd_opt(1890, 1, 1).unwrap(),
            ..owner("Old", "Owner")
        };
        assert!(field_errors(MangopayUbo::add(db, id, ancient).await.unwrap_err()).has("birthday"));
        assert!(
            MangopayUbo::for_declaration(db, id)
                .await
                .unwrap()
                .is_empty()
        );

        // Validation of a declaration without UBOs, or with one not created: nothing is sent.
        let e = declaration
            .ask_for_validation(db, &env.client)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("no UBO created"), "{e}");
        let first = MangopayUbo::add(db, id, owner("First", "Owner"))
            .await
            .unwrap();
        let e = declaration
            .ask_for_validation(db, &env.client)
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::WrongState { .. })
                && e.to_string()
                    .contains(&format!("UBO {} is pending", first.id())),
            "{e}"
        );
        assert_eq!(requests_to(&env, "PUT", "/ubodeclarations"), 0);
        let after = MangopayUboDeclaration::get(db, id).await.unwrap();
        assert_eq!(after.facts().validation_asked_at, None);

        // Fifteen UBOs, not sixteen.
        for i in 1..15 {
            MangopayUbo::add(db, id, owner(&format!("Owner{i}"), "Owner"))
                .await
                .unwrap();
        }
        let e = field_errors(
            MangopayUbo::add(db, id, owner("Sixteenth", "Owner"))
                .await
                .unwrap_err(),
        );
        assert!(
            e.has("declaration_id") && e.to_string().contains("15"),
            "{e}"
        );
        assert_eq!(
            MangopayUbo::for_declaration(db, id).await.unwrap().len(),
            15
        );

        // Submitted: no UBO is added or changed, and validation is not asked twice.
        MangopayUboDeclaration::create_ubos_and_ask_for_validation(db, &env.client, id)
            .await
            .unwrap();
        assert_eq!(remote_ubos(&env, &declaration).len(), 15);
        let e = MangopayUbo::add(db, id, owner("Late", "Owner"))
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::WrongState { .. }) && e.to_string().contains("VALIDATION_ASKED"),
            "{e}"
        );
        let e = MangopayUbo::deactivate(db, &env.client, first.id())
            .await
            .unwrap_err();
        assert!(matches!(e, Error::WrongState { .. }), "{e}");
        let puts = requests_to(&env, "PUT", "/ubodeclarations");
        let e = declaration
            .ask_for_validation(db, &env.client)
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::WrongState { .. }) && e.to_string().contains("VALIDATION_ASKED"),
            "{e}"
        );
        env.sandbox()
            .set_ubo_outcome(declaration.mangopay_id().unwrap(), UboOutcome::Validated)
            .unwrap();
        MangopayUboDeclaration::update_status(db, &env.client, id)
            .await
            .unwrap();
        declaration = MangopayUboDeclaration::get(db, id).await.unwrap();
        let e = declaration
            .ask_for_validation(db, &env.client)
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::WrongState { .. }) && e.to_string().contains("VALIDATED"),
            "{e}"
        );
        assert_eq!(requests_to(&env, "PUT", "/ubodeclarations"), puts);
        assert_eq!(
            MangopayUbo::for_declaration(db, id).await.unwrap().len(),
            15
        );
    }
);

both_backends!(
    a_ubo_whose_create_failed_is_sent_again_and_only_it,
    |env: Env| async move {
        let db = &env.db;
        let (declaration, ubos) = declaration(&env, "resume@example.com", &["Ada", "Grace"]).await;
        let id = declaration.id.unwrap();
        MangopayUbo::create(db, &env.client, ubos[0]).await.unwrap();

        // The second UBO's create fails at the gateway: Mangopay never sees it.
        env.sandbox().knobs().set_unavailable(true);
        let e = MangopayUboDeclaration::create_ubos_and_ask_for_validation(db, &env.client, id)
            .await
            .unwrap_err();
        assert!(e.is_retryable(), "{e}");
        env.sandbox().knobs().set_unavailable(false);
        let second = MangopayUbo::get(db, ubos[1]).await.unwrap();
        assert_eq!(second.create_state(), UboCreateState::Sending);
        assert!(second.last_error().is_some());
        assert_eq!(remote_ubos(&env, &declaration).len(), 1);
        assert_eq!(
            MangopayUboDeclaration::get(db, id).await.unwrap().status(),
            Some(&UboDeclarationStatus::Created)
        );
        assert_eq!(
            MangopayUboDeclaration::submissions_to_resume(db)
                .await
                .unwrap(),
            [id],
            "a sweep resumes it"
        );

        // The re-run creates only what was missing, with the same key, and submits.
        let posts = requests_to(&env, "POST", "/ubos");
        MangopayUboDeclaration::create_ubos_and_ask_for_validation(db, &env.client, id)
            .await
            .unwrap();
        assert_eq!(requests_to(&env, "POST", "/ubos"), posts + 1, "UBO 2 only");
        let log = env.sandbox().request_log();
        let keys: Vec<_> = log
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/ubos"))
            .map(|r| r.idempotency_key.clone())
            .collect();
        assert_eq!(keys[keys.len() - 1], keys[keys.len() - 2], "the same key");
        assert_eq!(remote_ubos(&env, &declaration).len(), 2);
        assert_eq!(
            MangopayUboDeclaration::get(db, id).await.unwrap().status(),
            Some(&UboDeclarationStatus::ValidationAsked)
        );
        assert!(
            MangopayUboDeclaration::submissions_to_resume(db)
                .await
                .unwrap()
                .is_empty()
        );
    }
);

both_backends!(
    a_ubo_whose_answer_was_lost_after_mangopay_created_it_is_never_created_twice,
    |env: Env| async move {
        let db = &env.db;
        let (declaration, ubos) = declaration(&env, "lost@example.com", &["Ada", "Grace"]).await;
        let id = declaration.id.unwrap();
        MangopayUbo::create(db, &env.client, ubos[0]).await.unwrap();

        env.sandbox()
            .knobs()
            .drop_next_answers(1, AnswerLoss::Close);
        let e = MangopayUbo::create(db, &env.client, ubos[1])
            .await
            .unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert_eq!(remote_ubos(&env, &declaration).len(), 2, "Mangopay has it");

        MangopayUboDeclaration::create_ubos_and_ask_for_validation(db, &env.client, id)
            .await
            .unwrap();
        let held = remote_ubos(&env, &declaration);
        assert_eq!(held.len(), 2, "not created twice");
        let log = env.sandbox().request_log();
        let posts: Vec<_> = log
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/ubos"))
            .collect();
        assert_eq!(posts.len(), 3);
        assert_eq!(posts[2].status, 409, "the resend used the same key");
        let second = MangopayUbo::get(db, ubos[1]).await.unwrap();
        assert_eq!(second.create_state(), UboCreateState::Created);
        assert_eq!(second.mangopay_id(), held[1]["Id"].as_str());
        assert_eq!(
            MangopayUboDeclaration::get(db, id).await.unwrap().status(),
            Some(&UboDeclarationStatus::ValidationAsked)
        );
    }
);

both_backends!(
    a_ubo_whose_first_answer_was_a_server_error_is_found_in_its_declaration,
    |env: Env| async move {
        let db = &env.db;
        let (declaration, ubos) = declaration(&env, "after-work@example.com", &["Ada"]).await;
        env.warm_up().await;
        // Mangopay creates the UBO, then answers (and stores against the key) a 500.
        env.sandbox().knobs().fail_next_after_work(1);
        let e = MangopayUbo::create(db, &env.client, ubos[0])
            .await
            .unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert_eq!(remote_ubos(&env, &declaration).len(), 1);
        assert_eq!(
            MangopayUbo::get(db, ubos[0]).await.unwrap().create_state(),
            UboCreateState::Sending
        );

        // The resend reads the stored 500 back: the declaration shows the UBO, adopted.
        let state = MangopayUbo::create(db, &env.client, ubos[0]).await.unwrap();
        assert_eq!(state, UboCreateState::Created);
        let held = remote_ubos(&env, &declaration);
        assert_eq!(held.len(), 1, "not created twice");
        let ubo = MangopayUbo::get(db, ubos[0]).await.unwrap();
        assert_eq!(ubo.mangopay_id(), held[0]["Id"].as_str());
        assert_eq!(requests_to(&env, "POST", "/ubos"), 2);
    }
);

both_backends!(
    a_ubo_whose_first_request_failed_before_the_work_is_created_with_a_new_key,
    |env: Env| async move {
        let db = &env.db;
        let (declaration, ubos) = declaration(&env, "before-work@example.com", &["Ada"]).await;
        env.warm_up().await;
        // Mangopay answers (and stores against the key) a 500 without creating anything.
        env.sandbox().knobs().fail_next(1);
        let e = MangopayUbo::create(db, &env.client, ubos[0])
            .await
            .unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert!(remote_ubos(&env, &declaration).is_empty());

        // The resend reads the stored 500 back; the declaration holds nothing: a new key.
        let state = MangopayUbo::create(db, &env.client, ubos[0]).await.unwrap();
        assert_eq!(state, UboCreateState::Created);
        let held = remote_ubos(&env, &declaration);
        assert_eq!(held.len(), 1, "created once");
        let ubo = MangopayUbo::get(db, ubos[0]).await.unwrap();
        assert_eq!(ubo.mangopay_id(), held[0]["Id"].as_str());
        let log = env.sandbox().request_log();
        let keys: Vec<_> = log
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/ubos"))
            .map(|r| r.idempotency_key.clone().unwrap())
            .collect();
        assert_eq!(keys.len(), 3);
        assert_eq!(keys[0], keys[1], "resent with the same key");
        assert_ne!(keys[2], keys[0], "then sent with a new one");
    }
);

both_backends!(
    several_ubos_that_could_be_the_one_wait_for_an_operator,
    |env: Env| async move {
        let db = &env.db;
        let (declaration, ubos) = declaration(&env, "twins@example.com", &["Ada"]).await;
        env.warm_up().await;
        // The same person twice: both creates fail after Mangopay did the work.
        let twin = MangopayUbo::add(db, declaration.id.unwrap(), owner("Ada", "Owner"))
            .await
            .unwrap();
        for ubo in [ubos[0], twin.id()] {
            env.sandbox().knobs().fail_next_after_work(1);
            assert!(MangopayUbo::create(db, &env.client, ubo).await.is_err());
        }
        assert_eq!(remote_ubos(&env, &declaration).len(), 2);
        let e = MangopayUbo::create(db, &env.client, ubos[0])
            .await
            .unwrap_err();
        let Error::NeedsOperator { candidates, .. } = e else {
            panic!("expected NeedsOperator, got {e}");
        };
        assert_eq!(candidates.len(), 2);
        assert_eq!(
            MangopayUbo::get(db, ubos[0]).await.unwrap().create_state(),
            UboCreateState::Unknown
        );
        // Nothing more is sent for it; the operator settles it.
        let posts = requests_to(&env, "POST", "/ubos");
        assert!(MangopayUbo::create(db, &env.client, ubos[0]).await.is_err());
        assert_eq!(requests_to(&env, "POST", "/ubos"), posts);
        let ubo = MangopayUbo::resolve_unknown(db, ubos[0], Some(&candidates[0]))
            .await
            .unwrap();
        assert_eq!(ubo.create_state(), UboCreateState::Created);
        // The twin now finds the other one.
        let state = MangopayUbo::create(db, &env.client, twin.id())
            .await
            .unwrap();
        assert_eq!(state, UboCreateState::Created);
        assert_eq!(
            MangopayUbo::get(db, twin.id()).await.unwrap().mangopay_id(),
            Some(candidates[1].as_str())
        );
        assert_eq!(remote_ubos(&env, &declaration).len(), 2);
    }
);

both_backends!(
    a_declaration_whose_create_answer_was_lost_is_adopted,
    |env: Env| async move {
        let db = &env.db;
        let user = company(
            &env,
            "lost-declaration@example.com",
            LegalPersonType::Partnership,
        )
        .await;
        env.sandbox()
            .knobs()
            .drop_next_answers(1, AnswerLoss::Close);
        let mut declaration = MangopayUboDeclaration::new(user.id.unwrap());
        let e = declaration.create(db, &env.client).await.unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert_eq!(env.sandbox().ubo_declarations().len(), 1);
        assert_eq!(declaration.mangopay_id(), None);

        declaration.create(db, &env.client).await.unwrap();
        let all = env.sandbox().ubo_declarations();
        assert_eq!(all.len(), 1, "created once");
        assert_eq!(declaration.mangopay_id(), all[0]["Id"].as_str());
        assert_eq!(declaration.status(), Some(&UboDeclarationStatus::Created));
        assert_eq!(declaration.sync().state, SyncState::Synced);
    }
);

both_backends!(
    a_declaration_whose_create_outcome_is_lost_is_found_in_the_user_s_list,
    |env: Env| async move {
        let db = &env.db;
        let user = company(&env, "listed@example.com", LegalPersonType::Business).await;
        env.warm_up().await;
        // Mangopay creates the declaration, then answers (and stores against the key) a 500:
        // neither the answer nor the key tell, and declarations carry no tag.
        env.sandbox().knobs().fail_next_after_work(1);
        let mut declaration = MangopayUboDeclaration::new(user.id.unwrap());
        assert!(declaration.create(db, &env.client).await.is_err());
        let e = declaration.create(db, &env.client).await.unwrap_err();
        assert!(matches!(e, Error::OutcomeUnknown { .. }), "{e}");
        tokio::time::sleep(RECONCILE_AFTER + Duration::from_millis(300)).await;
        declaration.create(db, &env.client).await.unwrap();
        let all = env.sandbox().ubo_declarations();
        assert_eq!(all.len(), 1, "created once");
        assert_eq!(declaration.mangopay_id(), all[0]["Id"].as_str());
        assert_eq!(declaration.status(), Some(&UboDeclarationStatus::Created));
    }
);

both_backends!(
    two_creates_of_one_ubo_at_once_send_it_once,
    |env: Env| async move {
        let db = &env.db;
        let (declaration, ubos) = declaration(&env, "race@example.com", &["Ada"]).await;
        env.warm_up().await;
        env.sandbox()
            .knobs()
            .set_latency(Duration::from_millis(300));
        let (a, b) = tokio::join!(
            MangopayUbo::create(db, &env.client, ubos[0]),
            MangopayUbo::create(db, &env.client, ubos[0])
        );
        env.sandbox().knobs().set_latency(Duration::ZERO);
        let results = [a, b];
        let created = results
            .iter()
            .filter(|r| matches!(r, Ok(UboCreateState::Created)))
            .count();
        let busy = results
            .iter()
            .filter(|r| matches!(r, Err(Error::Busy { .. })))
            .count();
        assert_eq!((created, busy), (1, 1), "{results:?}");
        let log = env.sandbox().request_log();
        let posts: Vec<_> = log
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/ubos"))
            .collect();
        assert_eq!(posts.len(), 1, "one request reached Mangopay");
        assert_eq!(posts[0].status, 200, "with a key never used before");
        assert_eq!(remote_ubos(&env, &declaration).len(), 1);
        let ubo = MangopayUbo::get(db, ubos[0]).await.unwrap();
        assert_eq!(ubo.create_state(), UboCreateState::Created);
        assert_eq!(ubo.create_attempts(), 1);
    }
);

both_backends!(a_ubo_is_deactivated_for_good, |env: Env| async move {
    let db = &env.db;
    let (declaration, ubos) =
        declaration(&env, "deactivate@example.com", &["Ada", "Grace", "Kept"]).await;
    let id = declaration.id.unwrap();
    MangopayUbo::create(db, &env.client, ubos[0]).await.unwrap();
    // Created: disregarded at Mangopay. Never sent: disregarded here only.
    let ada = MangopayUbo::deactivate(db, &env.client, ubos[0])
        .await
        .unwrap();
    assert!(!ada.is_active());
    let grace = MangopayUbo::deactivate(db, &env.client, ubos[1])
        .await
        .unwrap();
    assert!(!grace.is_active());
    assert_eq!(grace.create_state(), UboCreateState::Pending);
    assert_eq!(requests_to(&env, "PUT", "/ubos/"), 1);
    let e = MangopayUbo::deactivate(db, &env.client, ubos[0])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::WrongState { .. }), "{e}");
    let e = MangopayUbo::update(db, ubos[0], owner("Ada", "Again"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::WrongState { .. }), "{e}");
    MangopayUboDeclaration::create_ubos_and_ask_for_validation(db, &env.client, id)
        .await
        .unwrap();
    let held = remote_ubos(&env, &declaration);
    assert_eq!(held.len(), 2, "the UBO never sent stays unsent");
    assert_eq!(held[0]["IsActive"], false);
    assert_eq!(held[1]["IsActive"], true);
});

both_backends!(
    a_declaration_is_not_submitted_while_a_ubo_change_is_in_flight,
    |env: Env| async move {
        let db = &env.db;
        let (mut declaration, ubos) =
            declaration(&env, "inflight-ubo@example.com", &["Ada", "Grace"]).await;
        for &ubo in &ubos {
            MangopayUbo::create(db, &env.client, ubo).await.unwrap();
        }
        // Grace is disregarded; Mangopay takes its time to answer.
        env.sandbox()
            .knobs()
            .set_latency(Duration::from_millis(800));
        let deactivating = {
            let (db, client, id) = (db.clone(), env.client.clone(), ubos[1]);
            tokio::spawn(async move { MangopayUbo::deactivate(&db, &client, id).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let puts = requests_to(&env, "PUT", "/ubodeclarations/");
        let e = declaration
            .ask_for_validation(db, &env.client)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::WrongState { .. }), "{e}");
        deactivating.await.unwrap().unwrap();
        env.sandbox().knobs().set_latency(Duration::ZERO);
        assert_eq!(puts, 1, "the deactivation");
        assert_eq!(
            requests_to(&env, "PUT", "/ubodeclarations/"),
            1,
            "only the deactivation was sent"
        );
        declaration
            .ask_for_validation(db, &env.client)
            .await
            .unwrap();
        assert_eq!(
            declaration.status(),
            Some(&UboDeclarationStatus::ValidationAsked)
        );
        let active: Vec<_> = remote_ubos(&env, &declaration)
            .iter()
            .map(|u| u["IsActive"].as_bool())
            .collect();
        assert_eq!(active, [Some(true), Some(false)]);
    }
);

/// Holds the declaration `declaration` row's write lock in a transaction of its own (as a
/// concurrent writer would) until `release` says so, then runs `then` (SQL) in it and
/// commits. On SQLite the whole database is held (`BEGIN IMMEDIATE`).
fn hold_declaration(
    env: &Env,
    declaration: i64,
    then: String,
) -> (
    std::sync::mpsc::Sender<()>,
    tokio::task::JoinHandle<()>,
    tokio::sync::oneshot::Receiver<()>,
) {
    use diesel::RunQueryDsl;
    let mut conn = env.db.get().unwrap();
    let sqlite = env.db.backend() == diesel_mangopay::Backend::Sqlite;
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let (held_tx, held) = tokio::sync::oneshot::channel();
    let task = tokio::task::spawn_blocking(move || {
        let begin = if sqlite { "BEGIN IMMEDIATE" } else { "BEGIN" };
        diesel::sql_query(begin).execute(&mut *conn).unwrap();
        diesel::sql_query(format!(
            "UPDATE mangopay_ubo_declarations SET updated_at = updated_at WHERE id = {declaration}"
        ))
        .execute(&mut *conn)
        .unwrap();
        held_tx.send(()).unwrap();
        wait.recv().unwrap();
        diesel::sql_query(then).execute(&mut *conn).unwrap();
        diesel::sql_query("COMMIT").execute(&mut *conn).unwrap();
    });
    (release, task, held)
}

both_backends!(
    a_ubo_update_committed_while_another_is_being_claimed_is_never_lost,
    |env: Env| async move {
        let db = &env.db;
        let (declaration, ubos) = declaration(&env, "stale-update@example.com", &["Ada"]).await;
        MangopayUbo::create(db, &env.client, ubos[0]).await.unwrap();
        MangopayUbo::update(db, ubos[0], owner("Adah", "Owner"))
            .await
            .unwrap();
        // The push loads the row (Adah) and waits for the declaration; meanwhile another
        // update (Ada Byron) commits.
        let (release, holder, held) = hold_declaration(
            &env,
            declaration.id.unwrap(),
            format!(
                "UPDATE mangopay_ubos SET first_name = 'Byron', dirty = TRUE, \
                 updated_at = '2030-01-01 00:00:00' WHERE id = {}",
                ubos[0]
            ),
        );
        held.await.unwrap();
        let pushing = {
            let (db, client, id) = (db.clone(), env.client.clone(), ubos[0]);
            tokio::spawn(async move { MangopayUbo::push_update(&db, &client, id).await })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        release.send(()).unwrap();
        holder.await.unwrap();
        let pushed = pushing.await.unwrap();
        let row = MangopayUbo::get(db, ubos[0]).await.unwrap();
        let remote = remote_ubos(&env, &declaration)[0]["FirstName"].clone();
        match pushed {
            // SQLite: the push waited for the other update and sent it.
            Ok(()) => assert!(
                remote == "Byron" || row.update_due(),
                "Mangopay has {remote}, the row is not due: the update was lost"
            ),
            // PostgreSQL: the push was told the row changed under it.
            Err(e) => {
                assert!(matches!(e, Error::Busy { .. }), "{e}");
                assert!(row.update_due(), "the newer update is still due");
            }
        }
        MangopayUbo::push_update(db, &env.client, ubos[0])
            .await
            .unwrap();
        assert_eq!(remote_ubos(&env, &declaration)[0]["FirstName"], "Byron");
        assert!(!MangopayUbo::get(db, ubos[0]).await.unwrap().update_due());
    }
);

both_backends!(
    a_ubo_deactivated_while_its_create_is_being_claimed_is_never_sent,
    |env: Env| async move {
        let db = &env.db;
        let (declaration, ubos) = declaration(&env, "stale-create@example.com", &["Ada"]).await;
        let (release, holder, held) = hold_declaration(
            &env,
            declaration.id.unwrap(),
            format!(
                "UPDATE mangopay_ubos SET is_active = FALSE, \
                 updated_at = '2030-01-01 00:00:00' WHERE id = {}",
                ubos[0]
            ),
        );
        held.await.unwrap();
        let creating = {
            let (db, client, id) = (db.clone(), env.client.clone(), ubos[0]);
            tokio::spawn(async move { MangopayUbo::create(&db, &client, id).await })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        release.send(()).unwrap();
        holder.await.unwrap();
        let created = creating.await.unwrap();
        assert!(created.is_err(), "{created:?}");
        assert_eq!(requests_to(&env, "POST", "/ubos"), 0, "nothing sent");
        assert!(remote_ubos(&env, &declaration).is_empty());
    }
);

both_backends!(
    a_lost_declaration_create_never_adopts_an_older_declaration_of_the_user,
    |env: Env| async move {
        let db = &env.db;
        // The user's first declaration was refused minutes ago.
        let (mut first, ubos) = declaration(&env, "older@example.com", &["Ada"]).await;
        MangopayUboDeclaration::create_ubos_and_ask_for_validation(
            db,
            &env.client,
            first.id.unwrap(),
        )
        .await
        .unwrap();
        drop(ubos);
        env.sandbox()
            .set_ubo_outcome(
                first.mangopay_id().unwrap(),
                UboOutcome::Refused {
                    reason: UboReason::MissingUbo,
                    message: None,
                },
            )
            .unwrap();
        MangopayUboDeclaration::update_status(db, &env.client, first.id.unwrap())
            .await
            .unwrap();
        first = MangopayUboDeclaration::get(db, first.id.unwrap())
            .await
            .unwrap();
        assert_eq!(first.status(), Some(&UboDeclarationStatus::Refused));
        // The second one's create is answered (and stored) a 500 before any work.
        env.warm_up().await;
        env.sandbox().knobs().fail_next(1);
        let mut second = MangopayUboDeclaration::new(first.user_id);
        assert!(second.create(db, &env.client).await.is_err());
        let e = second.create(db, &env.client).await.unwrap_err();
        assert!(matches!(e, Error::OutcomeUnknown { .. }), "{e}");
        tokio::time::sleep(RECONCILE_AFTER + Duration::from_millis(300)).await;
        // The refused declaration is listed, recent, the user's: not this row's all the same.
        let mut settled = second.create(db, &env.client).await;
        if settled.is_err() {
            settled = second.create(db, &env.client).await;
        }
        settled.unwrap();
        assert_ne!(second.mangopay_id(), first.mangopay_id());
        assert_eq!(second.status(), Some(&UboDeclarationStatus::Created));
        assert_eq!(env.sandbox().ubo_declarations().len(), 2);
    }
);
