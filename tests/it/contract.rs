//! Contract tests: the same test bodies run against this project's sandbox and against
//! Mangopay's own (`https://api.sandbox.mangopay.com`), so that anyone with credentials can
//! check the emulator's assumptions against the real API.
//!
//! Against Mangopay they run when `MANGOPAY_CONTRACT_CLIENT_ID` and `MANGOPAY_CONTRACT_API_KEY`
//! are set when the tests are built (and `MANGOPAY_CONTRACT_BASE_URL` to aim elsewhere);
//! otherwise `cargo test` lists them as ignored, with the reason:
//!
//! ```sh
//! MANGOPAY_CONTRACT_CLIENT_ID=… MANGOPAY_CONTRACT_API_KEY=… cargo test --test it contract
//! ```

use std::time::Duration;

use diesel_mangopay::client::{ApiError, PageRequest};
use diesel_mangopay::{
    ClientConfig, Db, IdempotencyKey, MangopayClient, MangopayNaturalUser, SyncState,
};
use diesel_mangopay_sandbox::RunningSandbox;
use serde_json::json;

use crate::support::{TestDatabase, client_for, legal_owner, natural_owner, start_sandbox};

/// Where a contract test runs: a database of its own, and a client for this project's
/// sandbox or for Mangopay's.
pub struct Target {
    pub db: Db,
    pub client: MangopayClient,
    guards: Guards,
}

/// What must outlive a test body: its database and its sandbox. A body's `async move` block
/// captures only the fields it uses, so the macro keeps these alive itself.
#[derive(Clone)]
pub struct Guards(#[allow(dead_code)] std::sync::Arc<(TestDatabase, Option<RunningSandbox>)>);

impl Target {
    async fn with(client: MangopayClient, sandbox: Option<RunningSandbox>) -> Target {
        let database = TestDatabase::sqlite();
        let db = Db::connect(&database.url).await.unwrap();
        db.run_pending_migrations().await.unwrap();
        Target {
            db,
            client,
            guards: Guards(std::sync::Arc::new((database, sandbox))),
        }
    }

    /// This project's sandbox, in process.
    pub async fn ours() -> Target {
        let sandbox = start_sandbox(Default::default()).await;
        let client = client_for(&sandbox);
        Target::with(client, Some(sandbox)).await
    }

    /// Mangopay's sandbox, with the credentials from the environment.
    pub async fn mangopay() -> Target {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set; see contract.rs"))
        };
        let base = std::env::var("MANGOPAY_CONTRACT_BASE_URL")
            .unwrap_or_else(|_| "https://api.sandbox.mangopay.com".into());
        let config = ClientConfig::builder(
            var("MANGOPAY_CONTRACT_CLIENT_ID"),
            var("MANGOPAY_CONTRACT_API_KEY"),
        )
        .base_url(base)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
        Target::with(MangopayClient::new(config).unwrap(), None).await
    }
}

/// `contract!(name, |target| body)`: the body against this project's sandbox (`ours`) and
/// against Mangopay's (`mangopay`).
macro_rules! contract {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn ours() {
                let target = Target::ours().await;
                let _guards = target.guards.clone();
                ($body)(target).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(
                not(mangopay_contract),
                ignore = "needs MANGOPAY_CONTRACT_CLIENT_ID and MANGOPAY_CONTRACT_API_KEY at build time"
            )]
            async fn mangopay() {
                let target = Target::mangopay().await;
                let _guards = target.guards.clone();
                ($body)(target).await;
            }
        }
    };
}

/// An e-mail address no earlier run used.
fn fresh_email(what: &str) -> String {
    format!(
        "{what}.{}@example.com",
        &IdempotencyKey::generate().as_str()[..8]
    )
}

contract!(
    users_are_created_updated_and_read_back,
    |t: Target| async move {
        let mut user = natural_owner();
        user.email = fresh_email("contract");
        user.create(&t.db, &t.client).await.unwrap();
        assert_eq!(user.sync().state, SyncState::Synced);
        let id = user.mangopay_id().unwrap().to_owned();
        let tag = user.sync().api_payload.as_ref().unwrap()["Tag"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(tag.contains(" dm:"), "the marker is kept: {tag}");
        assert_eq!(user.tag.as_deref(), Some("created by the tests"));

        user.occupation = Some("Architect".into());
        user.update(&t.db, &t.client).await.unwrap();
        let remote = t.client.get(&format!("users/natural/{id}")).await.unwrap();
        assert_eq!(remote["Occupation"], "Architect");
        // "" clears an optional text field.
        user.occupation = None;
        user.update(&t.db, &t.client).await.unwrap();
        user.refresh(&t.db, &t.client).await.unwrap();
        assert_eq!(user.occupation, None);

        let mut legal = legal_owner();
        legal.email = fresh_email("contract.legal");
        legal.create(&t.db, &t.client).await.unwrap();
        assert_eq!(legal.sync().state, SyncState::Synced);
        let reloaded = MangopayNaturalUser::get(&t.db, user.id.unwrap())
            .await
            .unwrap();
        assert_eq!(reloaded.mangopay_id(), Some(id.as_str()));
    }
);

contract!(
    a_reused_key_gets_409_and_the_first_answer_back,
    |t: Target| async move {
        let key = IdempotencyKey::generate();
        let body = json!({"UserCategory": "PAYER", "TermsAndConditionsAccepted": false,
            "FirstName": "Contract", "LastName": "Check", "Email": fresh_email("replay")});
        let first = t.client.post("users/natural", &body, &key).await.unwrap();
        let again = t
            .client
            .post_keyed("users/natural", &body, &key)
            .await
            .unwrap();
        assert!(again.replayed);
        assert_eq!(again.body["Id"], first["Id"]);
        let stored = t.client.stored_response(&key).await.unwrap();
        assert_eq!(stored.status_code, 200);
        assert_eq!(stored.resource["Id"], first["Id"]);
    }
);

contract!(
    a_refused_create_is_a_param_error_naming_the_field,
    |t: Target| async move {
        let body = json!({"UserCategory": "PAYER", "FirstName": "A", "LastName": "B",
            "Email": "not-an-email"});
        let error = t
            .client
            .post("users/natural", &body, &IdempotencyKey::generate())
            .await
            .unwrap_err();
        match error {
            ApiError::Mangopay {
                status: 400, body, ..
            } => {
                assert_eq!(body.kind.as_deref(), Some("param_error"));
                assert!(body.errors.contains_key("Email"), "{body}");
            }
            other => panic!("expected a 400 param_error, got {other:?}"),
        }
    }
);

contract!(
    users_are_listed_newest_first_with_their_tags,
    |t: Target| async move {
        let mut user = natural_owner();
        user.email = fresh_email("listed");
        user.create(&t.db, &t.client).await.unwrap();
        let page = t
            .client
            .list_filtered(
                "users",
                &[("Sort", "CreationDate:DESC".to_owned())],
                PageRequest {
                    page: 1,
                    per_page: 100,
                },
            )
            .await
            .unwrap();
        assert!(page.total_items.is_some() && page.total_pages.is_some());
        let listed = page
            .items
            .iter()
            .find(|u| u["Id"].as_str() == user.mangopay_id())
            .expect("the new user is on the first page, newest first");
        assert!(listed["Tag"].as_str().unwrap().contains(" dm:"));
        let dates: Vec<i64> = page
            .items
            .iter()
            .filter_map(|u| u["CreationDate"].as_i64())
            .collect();
        assert!(dates.windows(2).all(|w| w[0] >= w[1]), "newest first");
    }
);

contract!(
    a_key_never_used_has_no_stored_answer,
    |t: Target| async move {
        let error = t
            .client
            .stored_response(&IdempotencyKey::generate())
            .await
            .unwrap_err();
        let status = error.status().expect("an answer");
        assert!((400..500).contains(&status), "{error}");
    }
);
