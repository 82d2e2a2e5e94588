//! KYC through the worker: `create_mangopay_document_and_pages_and_ask_for_validation` resumes
//! after a failed page upload without uploading anything twice, and the KYC sweep, on its
//! cron schedule, has the outcome of every document awaiting validation read.

use diesel_mangopay::models::kyc_file::{FileLimits, KycSettings};
use diesel_mangopay::{
    Address, Db, DocumentStatus, DocumentType, MangopayDocument, MangopayPage, MangopayUbo,
    MangopayUboDeclaration, UboDeclarationStatus, UboFields, UploadState, Verification,
};
use diesel_mangopay_jobs::{
    CREATE_MANGOPAY_DOCUMENT_AND_PAGES_AND_ASK_FOR_VALIDATION,
    CREATE_MANGOPAY_UBO_DECLARATION_AND_UBOS_AND_ASK_FOR_VALIDATION, Job, JobQueue, WorkerOptions,
};
use diesel_mangopay_sandbox::{AnswerLoss, KycOutcome};

use crate::both_backends;
use crate::common::{idle, options, posts_to, start_worker_with};
use crate::support::Env;
use crate::support::money::created_user;

/// A worker whose KYC sweep runs every second instead of hourly on working days.
fn kyc_worker(env: &Env, db: &Db, queue: &JobQueue) -> crate::common::Worker {
    start_worker_with(
        db.clone(),
        env.client.clone(),
        queue,
        WorkerOptions {
            kyc_schedule: Some("* * * * * *".parse().unwrap()),
            ..options()
        },
    )
}

/// Waits until the document `id` is `status`.
async fn until_document(db: &Db, id: i64, status: DocumentStatus) {
    crate::support::eventually(
        "the document's status",
        std::time::Duration::from_secs(30),
        || {
            let (db, status) = (db.clone(), status.clone());
            async move { MangopayDocument::get(&db, id).await.unwrap().status() == Some(&status) }
        },
    )
    .await;
}

fn png(size: usize, seed: u8) -> Vec<u8> {
    let mut bytes = vec![0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, seed];
    bytes.resize(size, seed);
    bytes
}

both_backends!(
    the_document_job_resumes_after_a_failed_page_and_uploads_each_page_once,
    |env: Env| async move {
        let dir = tempfile::tempdir().unwrap();
        let db = env.db.clone().with_kyc(KycSettings {
            limits: FileLimits::default(),
            staging_dir: dir.path().join("pages"),
        });
        let user = created_user(&env, "kyc-job@example.com").await;
        let mut document = MangopayDocument::new(user.id.unwrap(), DocumentType::IdentityProof);
        document.create(&db, &env.client).await.unwrap();
        let id = document.id.unwrap();
        let first = MangopayPage::add_bytes(&db, id, &png(40_000, 1))
            .await
            .unwrap();
        let second = MangopayPage::add_bytes(&db, id, &png(40_000, 2))
            .await
            .unwrap();
        MangopayPage::upload(&db, &env.client, first.id())
            .await
            .unwrap();

        // The job's first request is the second page's upload: Mangopay keeps it, and its
        // answer is lost on the way back.
        env.sandbox()
            .knobs()
            .drop_next_answers(1, AnswerLoss::Close);
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        queue
            .enqueue(Job::new(
                CREATE_MANGOPAY_DOCUMENT_AND_PAGES_AND_ASK_FOR_VALIDATION,
                id,
            ))
            .await
            .unwrap();
        let worker = start_worker_with(db.clone(), env.client.clone(), &queue, options());
        until_document(&db, id, DocumentStatus::ValidationAsked).await;
        idle(&queue).await;
        worker.stop().await;

        // Page 1 once (before the job), page 2 once; its retry read the key's stored first
        // answer instead of sending again: two pages at Mangopay.
        assert_eq!(posts_to(&env, "/pages"), [204, 204]);
        let lookups = env
            .sandbox()
            .request_log()
            .iter()
            .filter(|r| r.method == "GET" && r.path.contains("/responses/"))
            .count();
        assert_eq!(lookups, 1);
        let remote = document.mangopay_id().unwrap().to_owned();
        assert_eq!(env.sandbox().kyc_pages(&remote).unwrap().len(), 2);
        let second = MangopayPage::get(&db, second.id()).await.unwrap();
        assert_eq!(second.upload_state(), UploadState::Uploaded);
        assert_eq!(second.upload_attempts(), 2);
        assert!(
            std::fs::read_dir(dir.path().join("pages"))
                .unwrap()
                .next()
                .is_none(),
            "the staged copies are gone"
        );
    }
);

both_backends!(
    the_kyc_sweep_on_its_schedule_reads_the_outcome_of_documents_awaiting_validation,
    |env: Env| async move {
        let dir = tempfile::tempdir().unwrap();
        let db = env.db.clone().with_kyc(KycSettings {
            limits: FileLimits::default(),
            staging_dir: dir.path().join("pages"),
        });
        let user = created_user(&env, "kyc-sweep@example.com").await;
        let mut document = MangopayDocument::new(user.id.unwrap(), DocumentType::IdentityProof);
        document.save(&db).await.unwrap();
        let id = document.id.unwrap();
        MangopayPage::add_bytes(&db, id, &png(40_000, 3))
            .await
            .unwrap();
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        queue
            .enqueue(Job::new(
                CREATE_MANGOPAY_DOCUMENT_AND_PAGES_AND_ASK_FOR_VALIDATION,
                id,
            ))
            .await
            .unwrap();
        let worker = kyc_worker(&env, &db, &queue);
        until_document(&db, id, DocumentStatus::ValidationAsked).await;
        let remote = MangopayDocument::get(&db, id)
            .await
            .unwrap()
            .mangopay_id()
            .unwrap()
            .to_owned();
        env.sandbox()
            .set_kyc_outcome(&remote, KycOutcome::Validated)
            .unwrap();
        until_document(&db, id, DocumentStatus::Validated).await;
        worker.stop().await;
        assert!(
            MangopayDocument::awaiting_validation(&db)
                .await
                .unwrap()
                .is_empty()
        );
    }
);

both_backends!(
    the_kyc_sweep_resumes_a_submission_that_stopped_half_way,
    |env: Env| async move {
        let dir = tempfile::tempdir().unwrap();
        let db = env.db.clone().with_kyc(KycSettings {
            limits: FileLimits::default(),
            staging_dir: dir.path().join("pages"),
        });
        let user = created_user(&env, "kyc-resume@example.com").await;
        let mut document = MangopayDocument::new(user.id.unwrap(), DocumentType::IdentityProof);
        document.create(&db, &env.client).await.unwrap();
        let id = document.id.unwrap();
        let first = MangopayPage::add_bytes(&db, id, &png(40_000, 4))
            .await
            .unwrap();
        MangopayPage::add_bytes(&db, id, &png(40_000, 5))
            .await
            .unwrap();
        // The job's worker died after the first page: its task is gone from the queue.
        MangopayDocument::request_submission(&db, id).await.unwrap();
        MangopayPage::upload(&db, &env.client, first.id())
            .await
            .unwrap();
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        let worker = kyc_worker(&env, &db, &queue);
        until_document(&db, id, DocumentStatus::ValidationAsked).await;
        worker.stop().await;
        assert_eq!(posts_to(&env, "/pages"), [204, 204], "each page once");
    }
);

both_backends!(
    the_ubo_declaration_job_and_the_kyc_sweep_take_a_declaration_to_validated,
    |env: Env| async move {
        let mut company = crate::support::legal_owner();
        company.email = "ubo-job@example.com".into();
        company.create(&env.db, &env.client).await.unwrap();
        let mut declaration = MangopayUboDeclaration::new(company.id.unwrap());
        declaration.save(&env.db).await.unwrap();
        let id = declaration.id.unwrap();
        for first in ["Ada", "Grace"] {
            let fields = UboFields {
                first_name: first.into(),
                last_name: "Owner".into(),
                address: Address::new("6 Parvis Notre-Dame", "Paris", "75004", "FR").unwrap(),
                nationality: "FR".into(),
                birthday: chrono::NaiveDate::from_ymd_opt(1985, 3, 12).unwrap(),
                birthplace_city: "Lyon".into(),
                birthplace_country: "FR".into(),
            };
            MangopayUbo::add(&env.db, id, fields).await.unwrap();
        }
        // Mangopay's teams answer a second after the submission.
        env.sandbox()
            .knobs()
            .set_ubo_outcome_after(Some(std::time::Duration::from_secs(1)));
        let queue = JobQueue::connect(&env.database.url).await.unwrap();
        queue
            .enqueue(Job::new(
                CREATE_MANGOPAY_UBO_DECLARATION_AND_UBOS_AND_ASK_FOR_VALIDATION,
                id,
            ))
            .await
            .unwrap();
        let worker = kyc_worker(&env, &env.db, &queue);
        crate::support::eventually(
            "the declaration is validated",
            std::time::Duration::from_secs(30),
            || {
                let db = env.db.clone();
                async move {
                    MangopayUboDeclaration::get(&db, id).await.unwrap().status()
                        == Some(&UboDeclarationStatus::Validated)
                }
            },
        )
        .await;
        worker.stop().await;
        assert_eq!(posts_to(&env, "/ubos"), [200, 200], "each UBO once");
        let verification = Verification::of(&env.db, company.id.unwrap())
            .await
            .unwrap();
        assert!(verification.ubo_declaration_validated, "{verification:?}");
        assert!(
            !verification.missing.iter().any(|m| m == "ubo_declaration"),
            "{verification:?}"
        );
    }
);
