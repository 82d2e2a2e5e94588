//! The database layer: concurrent writers, migrations on both backends.

use diesel::prelude::*;
use diesel_mangopay::db::migrations;
use diesel_mangopay::schema::mangopay_users;
use diesel_mangopay::{MangopayNaturalUser, UserCategory};

use crate::both_backends;
use crate::support::Env;

both_backends!(concurrent_writers_do_not_fail, |env: Env| async move {
    // 64 tasks insert and then update their own row, on a pool of 4 (SQLite) or 10
    // connections: on SQLite every write transaction takes the write lock up front, so none
    // fails with "database is locked".
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let db = env.db.clone();
            tokio::spawn(async move {
                let mut user = MangopayNaturalUser::builder()
                    .user_category(UserCategory::Payer)
                    .first_name(format!("User{i}"))
                    .last_name("Concurrent")
                    .email(format!("user{i}@example.com"))
                    .build()
                    .unwrap();
                user.save(&db).await?;
                user.tag = Some(format!("second write {i}"));
                user.save(&db).await?;
                Ok::<_, diesel_mangopay::Error>(user)
            })
        })
        .collect();
    for task in tasks {
        let user = task.await.unwrap().expect("no write failed");
        assert!(user.tag.unwrap().starts_with("second write"));
    }
    let count: i64 = env
        .db
        .run(|conn| {
            mangopay_users::table
                .count()
                .get_result(conn)
                .map_err(diesel_mangopay::DbError::from)
        })
        .await
        .unwrap();
    assert_eq!(count, 64);
});

both_backends!(migrations_list_revert_and_reapply, |env: Env| async move {
    let mut conn = env.db.get().unwrap();
    let listed = migrations::list(&mut conn).unwrap();
    assert!(
        !listed.is_empty() && listed.iter().all(|m| m.applied),
        "{listed:?}"
    );
    assert!(migrations::run_pending(&mut conn).unwrap().is_empty());
    let reverted = migrations::revert_last(&mut conn).unwrap();
    assert!(listed.last().unwrap().name.starts_with(&reverted[..4]));
    assert!(!migrations::list(&mut conn).unwrap().last().unwrap().applied);
    let budget_gone = diesel::sql_query("SELECT id FROM mangopay_rate_budget").execute(&mut *conn);
    assert!(budget_gone.is_err(), "the revert dropped the rate budget");
    migrations::revert_last(&mut conn).unwrap();
    for table in [
        "mangopay_refunds",
        "mangopay_pay_ins",
        "mangopay_card_registrations",
        "mangopay_cards",
    ] {
        let gone = diesel::sql_query(format!("SELECT id FROM {table}")).execute(&mut *conn);
        assert!(gone.is_err(), "the revert dropped {table}");
    }
    migrations::revert_last(&mut conn).unwrap();
    let ubo_gone = diesel::sql_query("SELECT id FROM mangopay_ubos").execute(&mut *conn);
    assert!(ubo_gone.is_err(), "the revert dropped the UBO tables");
    let column_gone = diesel::sql_query("SELECT submission_requested_at FROM mangopay_documents")
        .execute(&mut *conn);
    assert!(
        column_gone.is_err(),
        "the revert dropped the submission column"
    );
    migrations::revert_last(&mut conn).unwrap();
    let kyc_gone = diesel::sql_query("SELECT id FROM mangopay_pages").execute(&mut *conn);
    assert!(kyc_gone.is_err(), "the revert dropped the KYC tables");
    migrations::revert_last(&mut conn).unwrap();
    let follow_gone =
        diesel::sql_query("SELECT follow_at FROM mangopay_pay_outs").execute(&mut *conn);
    assert!(
        follow_gone.is_err(),
        "the revert dropped the follow columns"
    );
    migrations::revert_last(&mut conn).unwrap();
    let money_gone = diesel::sql_query("SELECT id FROM mangopay_pay_outs").execute(&mut *conn);
    assert!(money_gone.is_err(), "the revert dropped the money tables");
    migrations::revert_last(&mut conn).unwrap();
    let columns_gone = mangopay_users::table
        .select(mangopay_users::row_version)
        .first::<i64>(&mut *conn);
    assert!(columns_gone.is_err(), "the revert dropped the sync columns");
    migrations::revert_last(&mut conn).unwrap();
    let table_gone = mangopay_users::table.count().get_result::<i64>(&mut *conn);
    assert!(table_gone.is_err(), "the second revert dropped the tables");
    assert_eq!(migrations::run_pending(&mut conn).unwrap().len(), 8);
    assert!(
        migrations::list(&mut conn)
            .unwrap()
            .iter()
            .all(|m| m.applied)
    );
});
