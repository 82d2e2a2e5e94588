//! KYC through the worker: `create_mangopay_document_and_pages_and_ask_for_validation` resumes
//! after a failed page upload without uploading anything twice, and the KYC sweep, on its
//! cron schedule, has the outcome of every document awaiting validation read.

use diesel_mangopay::models::kyc_file::{FileLimits, KycSettings};
use diesel_mangopay::{DocumentStatus, DocumentType, MangopayDocument, MangopayPage, UploadState};
use diesel_mangopay_jobs::{
    CREATE_MANGOPAY_DOCUMENT_AND_PAGES_AND_ASK_FOR_VALIDATION, Job, JobQueue, WorkerOptions,
};
use diesel_mangopay_sandbox::{AnswerLoss, KycOutcome};

use crate::both_backends;
use crate::common::{idle, options, posts_to, start_worker_with};
use crate::support::Env;
use crate::support::money::created_user;

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
        crate::support::eventually(
            "the document is submitted",
            std::time::Duration::from_secs(30),
            || {
                let db = db.clone();
                async move {
                    MangopayDocument::get(&db, id).await.unwrap().status()
                        == Some(&DocumentStatus::ValidationAsked)
                }
            },
        )
        .await;
        idle(&queue).await;
        worker.stop().await;

        // Page 1 once (before the job), page 2 once, then its resend answered 409 from the
        // stored first answer: two pages at Mangopay.
        assert_eq!(posts_to(&env, "/pages"), [204, 204, 409]);
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
        // Every second instead of hourly on working days.
        let worker = start_worker_with(
            db.clone(),
            env.client.clone(),
            &queue,
            WorkerOptions {
                kyc_schedule: Some("* * * * * *".parse().unwrap()),
                ..options()
            },
        );
        crate::support::eventually(
            "the document is submitted",
            std::time::Duration::from_secs(30),
            || {
                let db = db.clone();
                async move {
                    MangopayDocument::get(&db, id).await.unwrap().status()
                        == Some(&DocumentStatus::ValidationAsked)
                }
            },
        )
        .await;
        let remote = MangopayDocument::get(&db, id)
            .await
            .unwrap()
            .mangopay_id()
            .unwrap()
            .to_owned();
        env.sandbox()
            .set_kyc_outcome(&remote, KycOutcome::Validated)
            .unwrap();
        crate::support::eventually(
            "the sweep has the outcome read",
            std::time::Duration::from_secs(30),
            || {
                let db = db.clone();
                async move {
                    MangopayDocument::get(&db, id).await.unwrap().status()
                        == Some(&DocumentStatus::Validated)
                }
            },
        )
        .await;
        worker.stop().await;
        assert!(
            MangopayDocument::awaiting_validation(&db)
                .await
                .unwrap()
                .is_empty()
        );
    }
);
