//! KYC documents and pages against the sandbox: created, pages uploaded once each (resuming
//! after failures), submitted, their outcome read; the verification predicates on what the
//! database holds; bad input refused before anything is sent; no bytes kept anywhere.

use std::path::{Path, PathBuf};

use diesel::RunQueryDsl;
use diesel::sql_types::{BigInt, Text};
use diesel_mangopay::models::kyc_file::{FileLimits, KycSettings};
use diesel_mangopay::models::{PageResolution, PageSource};
use diesel_mangopay::{
    Backend, Db, DocumentStatus, DocumentType, Error, KycLevel, MangopayDocument,
    MangopayLegalUser, MangopayNaturalUser, MangopayPage, UploadState, UserCategory, Verification,
};
use diesel_mangopay_sandbox::{AnswerLoss, KycOutcome, KycRefusedReason};

use crate::both_backends;
use crate::support::money::{created_user, requests_to};
use crate::support::{Env, legal_owner, natural_owner};

/// A PNG of `size` bytes whose content carries `marker`.
fn png(size: usize, marker: &str) -> Vec<u8> {
    let mut bytes = vec![0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];
    bytes.extend_from_slice(marker.as_bytes());
    let mut i = 0u32;
    while bytes.len() < size {
        bytes.push((i.wrapping_mul(2_654_435_761) >> 24) as u8);
        i += 1;
    }
    bytes.truncate(size);
    bytes
}

/// A PDF of `size` bytes.
fn pdf(size: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.resize(size, b' ');
    bytes
}

/// A handle on `env`'s database staging pages in a directory of its own.
fn staging(env: &Env) -> (Db, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = env.db.clone().with_kyc(KycSettings {
        limits: FileLimits::default(),
        staging_dir: dir.path().join("pages"),
    });
    (db, dir)
}

fn staged_files(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir.join("pages")) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// A saved identity proof of a created OWNER with two pages: one from a file, one as bytes.
async fn identity_proof(
    env: &Env,
    db: &Db,
    email: &str,
    files: &tempfile::TempDir,
) -> MangopayDocument {
    let user = created_user(env, email).await;
    let mut document =
        MangopayDocument::new(user.id.unwrap(), DocumentType::IdentityProof).with_tag("passport");
    document.save(db).await.unwrap();
    let path = files.path().join("front.png");
    std::fs::write(&path, png(40_000, "front")).unwrap();
    MangopayPage::add_file(db, document.id.unwrap(), &path)
        .await
        .unwrap();
    MangopayPage::add_bytes(db, document.id.unwrap(), &pdf(50_000))
        .await
        .unwrap();
    document
}

/// Creates `document`, uploads its pages, submits it, and has Mangopay refuse it as
/// unreadable with `message` and `flags`; returns its local id once the refusal is recorded.
async fn submitted_and_refused(
    env: &Env,
    db: &Db,
    document: &mut MangopayDocument,
    message: Option<&str>,
    flags: Vec<String>,
) -> i64 {
    let id = document.id.unwrap();
    document.create(db, &env.client).await.unwrap();
    MangopayDocument::upload_pages_and_ask_for_validation(db, &env.client, id)
        .await
        .unwrap();
    env.sandbox()
        .set_kyc_outcome(
            document.mangopay_id().unwrap(),
            KycOutcome::Refused {
                reason_type: KycRefusedReason::DocumentUnreadable,
                message: message.map(str::to_owned),
                flags,
            },
        )
        .unwrap();
    MangopayDocument::update_status(db, &env.client, id)
        .await
        .unwrap();
    id
}

fn pages_at_sandbox(env: &Env, document: &MangopayDocument) -> usize {
    env.sandbox()
        .kyc_pages(document.mangopay_id().unwrap())
        .unwrap()
        .len()
}

both_backends!(
    an_identity_proof_is_created_uploaded_submitted_and_validated,
    |env: Env| async move {
        let (db, dir) = staging(&env);
        let mut document = identity_proof(&env, &db, "kyc@example.com", &dir).await;
        let id = document.id.unwrap();
        assert_eq!(document.status(), None);
        assert_eq!(
            staged_files(dir.path()).len(),
            1,
            "the bytes wait in a staged copy"
        );

        document.create(&db, &env.client).await.unwrap();
        assert_eq!(document.status(), Some(&DocumentStatus::Created));
        let remote = env
            .sandbox()
            .kyc_document(document.mangopay_id().unwrap())
            .unwrap();
        assert_eq!(remote["Type"], "IDENTITY_PROOF");
        assert!(remote["Tag"].as_str().unwrap().starts_with("passport"));

        assert_eq!(document.upload_pages(&db, &env.client).await.unwrap(), 2);
        assert_eq!(pages_at_sandbox(&env, &document), 2);
        assert!(
            staged_files(dir.path()).is_empty(),
            "the staged copy is gone once uploaded"
        );
        let pages = document.pages(&db).await.unwrap();
        assert!(
            pages
                .iter()
                .all(|p| p.upload_state() == UploadState::Uploaded
                    && p.uploaded_at().is_some()
                    && p.upload_attempts() == 1)
        );
        assert_eq!(pages[0].size(), 40_000);
        assert_eq!(pages[1].format().unwrap().as_str(), "PDF");
        assert!(matches!(pages[0].source(), PageSource::File(_)));
        // Uploading again sends nothing.
        assert_eq!(document.upload_pages(&db, &env.client).await.unwrap(), 0);
        assert_eq!(requests_to(&env, "POST", "/pages"), 2);

        document.ask_for_validation(&db, &env.client).await.unwrap();
        assert_eq!(document.status(), Some(&DocumentStatus::ValidationAsked));
        assert!(document.facts().validation_asked_at.is_some());
        assert_eq!(
            MangopayDocument::awaiting_validation(&db).await.unwrap(),
            [id]
        );

        env.sandbox()
            .set_kyc_outcome(document.mangopay_id().unwrap(), KycOutcome::Validated)
            .unwrap();
        let status = MangopayDocument::update_status(&db, &env.client, id)
            .await
            .unwrap();
        assert_eq!(status, Some(DocumentStatus::Validated));
        let document = MangopayDocument::get(&db, id).await.unwrap();
        assert!(document.facts().processed_at.is_some());
        assert_eq!(document.facts().status_checks, 1);
        assert!(
            MangopayDocument::awaiting_validation(&db)
                .await
                .unwrap()
                .is_empty()
        );
        // A validated document is not checked again: nothing is sent.
        let gets = requests_to(&env, "GET", "/kyc/documents");
        MangopayDocument::update_status(&db, &env.client, id)
            .await
            .unwrap();
        assert_eq!(requests_to(&env, "GET", "/kyc/documents"), gets);

        let user_id = document.user_id;
        let listed = MangopayDocument::for_user(&db, user_id).await.unwrap();
        assert_eq!(listed.len(), 1);
        let mut user = MangopayNaturalUser::get(&db, user_id).await.unwrap();
        user.refresh(&db, &env.client).await.unwrap();
        let verification = Verification::of(&db, user_id).await.unwrap();
        assert!(
            verification.light && verification.regular,
            "{verification:?}"
        );
        assert_eq!(verification.kyc_level, Some(KycLevel::Regular));
        assert!(verification.verified_for_pay_outs());
    }
);

both_backends!(
    a_refused_document_keeps_its_reason_and_is_listed_to_send_again,
    |env: Env| async move {
        let (db, dir) = staging(&env);
        let mut document = identity_proof(&env, &db, "refused@example.com", &dir).await;
        let user_id = document.user_id;
        let id = submitted_and_refused(
            &env,
            &db,
            &mut document,
            Some("The scan is blurred"),
            vec!["009004".into()],
        )
        .await;
        let document = MangopayDocument::get(&db, id).await.unwrap();
        assert_eq!(document.status(), Some(&DocumentStatus::Refused));
        let facts = document.facts();
        assert_eq!(
            facts.refused_reason_type.as_deref(),
            Some("DOCUMENT_UNREADABLE")
        );
        assert_eq!(
            facts.refused_reason_message.as_deref(),
            Some("The scan is blurred")
        );
        assert_eq!(facts.flags, ["009004"]);

        let verification = Verification::of(&db, user_id).await.unwrap();
        assert!(verification.light && !verification.regular);
        assert_eq!(verification.to_send_again, [DocumentType::IdentityProof]);
        assert_eq!(verification.missing, ["IDENTITY_PROOF"]);

        // Asking again from a refused state is refused, and nothing is sent.
        let puts = requests_to(&env, "PUT", "/kyc/documents");
        let mut refused = document.clone();
        let e = refused
            .ask_for_validation(&db, &env.client)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::WrongState { .. }), "{e}");
        assert!(e.to_string().contains("REFUSED"), "{e}");
        assert_eq!(requests_to(&env, "PUT", "/kyc/documents"), puts);

        // A new document of the type, in progress, takes it off the list.
        let mut again = MangopayDocument::new(user_id, DocumentType::IdentityProof);
        again.save(&db).await.unwrap();
        let verification = Verification::of(&db, user_id).await.unwrap();
        assert!(verification.to_send_again.is_empty());
    }
);

both_backends!(
    bad_input_is_refused_before_anything_is_sent_and_changes_nothing,
    |env: Env| async move {
        let (db, dir) = staging(&env);
        let user = created_user(&env, "bad@example.com").await;
        let mut document = MangopayDocument::new(user.id.unwrap(), DocumentType::IdentityProof);
        document.save(&db).await.unwrap();
        let doc = document.id.unwrap();
        let field_error = |e: Error| match e {
            Error::Validation(v) => v,
            other => panic!("expected a validation error, got {other}"),
        };

        // A text file named .pdf, an empty file, a tiny one, an oversized one.
        let fake = dir.path().join("passport.pdf");
        std::fs::write(&fake, vec![b'a'; 40_000]).unwrap();
        let e = field_error(MangopayPage::add_file(&db, doc, &fake).await.unwrap_err());
        assert!(
            e.has("file") && e.to_string().contains("PDF, JPEG or PNG"),
            "{e}"
        );
        let e = field_error(MangopayPage::add_bytes(&db, doc, &[]).await.unwrap_err());
        assert!(e.has("file"), "{e}");
        let e = field_error(
            MangopayPage::add_bytes(&db, doc, &png(1_000, "x"))
                .await
                .unwrap_err(),
        );
        assert!(e.to_string().contains("too small"), "{e}");
        let e = field_error(
            MangopayPage::add_bytes(&db, doc, &pdf(7_500_001))
                .await
                .unwrap_err(),
        );
        assert!(e.to_string().contains("too large"), "{e}");
        let missing = dir.path().join("nowhere.png");
        let e = field_error(
            MangopayPage::add_file(&db, doc, &missing)
                .await
                .unwrap_err(),
        );
        assert!(e.has("file"), "{e}");
        assert!(
            MangopayPage::for_document(&db, doc)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            staged_files(dir.path()).is_empty(),
            "nothing staged for refused files"
        );

        // Five pages, not six.
        for i in 0..5 {
            MangopayPage::add_bytes(&db, doc, &png(33_000, &format!("p{i}")))
                .await
                .unwrap();
        }
        let e = field_error(
            MangopayPage::add_bytes(&db, doc, &png(33_000, "p6"))
                .await
                .unwrap_err(),
        );
        assert!(e.to_string().contains("at most 5"), "{e}");
        assert_eq!(MangopayPage::for_document(&db, doc).await.unwrap().len(), 5);
        assert_eq!(staged_files(dir.path()).len(), 5);

        // A document of a user not created at Mangopay: nothing is sent.
        let mut payer = natural_owner();
        payer.email = "not-created@example.com".into();
        payer.save(&db).await.unwrap();
        let mut orphan = MangopayDocument::new(payer.id.unwrap(), DocumentType::IdentityProof);
        let before = requests_to(&env, "POST", "/kyc/documents");
        let e = orphan.create(&db, &env.client).await.unwrap_err();
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
        assert_eq!(requests_to(&env, "POST", "/kyc/documents"), before);

        // A type the user cannot send, a type that does not exist: refused at save.
        let mut wrong = MangopayDocument::new(user.id.unwrap(), DocumentType::RegistrationProof);
        let e = field_error(wrong.save(&db).await.unwrap_err());
        assert!(e.has("document_type"), "{e}");
        assert_eq!(wrong.id, None);
        let mut unknown = MangopayDocument::new(user.id.unwrap(), DocumentType::from_api("SELFIE"));
        assert!(field_error(unknown.save(&db).await.unwrap_err()).has("document_type"));

        // Pages of a document not created: not uploaded, nothing sent.
        let first = MangopayPage::for_document(&db, doc).await.unwrap()[0].id();
        let e = MangopayPage::upload(&db, &env.client, first)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::ParentNotCreated { .. }), "{e}");
        // Validation asked of a document without uploaded pages, then twice.
        document.create(&db, &env.client).await.unwrap();
        let e = document
            .ask_for_validation(&db, &env.client)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("page 1 is pending"), "{e}");
        assert_eq!(requests_to(&env, "POST", "/pages"), 0);
        document.upload_pages(&db, &env.client).await.unwrap();
        assert!(staged_files(dir.path()).is_empty());
        document.ask_for_validation(&db, &env.client).await.unwrap();
        let puts = requests_to(&env, "PUT", "/kyc/documents");
        let e = document
            .ask_for_validation(&db, &env.client)
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::WrongState { .. }) && e.to_string().contains("VALIDATION_ASKED"),
            "{e}"
        );
        assert_eq!(requests_to(&env, "PUT", "/kyc/documents"), puts);
        // No page once submitted.
        let e = MangopayPage::add_bytes(&db, doc, &png(33_000, "late"))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::WrongState { .. }), "{e}");
        assert!(
            staged_files(dir.path()).is_empty(),
            "the refused page's copy is removed"
        );
    }
);

both_backends!(
    a_payer_cannot_submit_and_a_legal_user_sends_its_registration_proof,
    |env: Env| async move {
        let (db, _dir) = staging(&env);
        let mut payer = natural_owner();
        payer.email = "payer@example.com".into();
        payer.user_category = UserCategory::Payer;
        payer.terms_and_conditions_accepted = false;
        payer.create(&db, &env.client).await.unwrap();
        let mut document = MangopayDocument::new(payer.id.unwrap(), DocumentType::IdentityProof);
        document.create(&db, &env.client).await.unwrap();
        MangopayPage::add_bytes(&db, document.id.unwrap(), &png(40_000, "payer"))
            .await
            .unwrap();
        document.upload_pages(&db, &env.client).await.unwrap();
        let e = document
            .ask_for_validation(&db, &env.client)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::ParentNotUsable { .. }), "{e}");
        assert_eq!(requests_to(&env, "PUT", "/kyc/documents"), 0);

        let mut company: MangopayLegalUser = legal_owner();
        company.create(&db, &env.client).await.unwrap();
        let mut registration =
            MangopayDocument::new(company.id.unwrap(), DocumentType::RegistrationProof);
        registration.create(&db, &env.client).await.unwrap();
        let mut address = MangopayDocument::new(company.id.unwrap(), DocumentType::AddressProof);
        assert!(matches!(
            address.save(&db).await.unwrap_err(),
            Error::Validation(_)
        ));
        let v = Verification::of(&db, company.id.unwrap()).await.unwrap();
        assert!(v.light && !v.regular);
        assert!(v.missing.contains(&"ubo_declaration".to_owned()), "{v:?}");
    }
);

both_backends!(
    a_page_whose_upload_failed_is_sent_again_and_only_it,
    |env: Env| async move {
        let (db, dir) = staging(&env);
        let document = identity_proof(&env, &db, "resume@example.com", &dir).await;
        let id = document.id.unwrap();
        let mut document = document;
        document.create(&db, &env.client).await.unwrap();
        let pages = document.pages(&db).await.unwrap();
        MangopayPage::upload(&db, &env.client, pages[0].id())
            .await
            .unwrap();

        // The second page's upload fails at the gateway: Mangopay never sees it.
        env.sandbox().knobs().set_unavailable(true);
        let e = MangopayDocument::upload_pages_and_ask_for_validation(&db, &env.client, id)
            .await
            .unwrap_err();
        assert!(e.is_retryable(), "{e}");
        env.sandbox().knobs().set_unavailable(false);
        let second = MangopayPage::get(&db, pages[1].id()).await.unwrap();
        assert_eq!(second.upload_state(), UploadState::Sending);
        assert!(second.last_error().is_some());
        assert_eq!(staged_files(dir.path()).len(), 1, "kept for the resend");

        // The re-run uploads only what was missing, with the same key, and submits.
        let posts = requests_to(&env, "POST", "/pages");
        MangopayDocument::upload_pages_and_ask_for_validation(&db, &env.client, id)
            .await
            .unwrap();
        assert_eq!(
            requests_to(&env, "POST", "/pages"),
            posts + 1,
            "page 2 only"
        );
        assert_eq!(pages_at_sandbox(&env, &document), 2);
        let document = MangopayDocument::get(&db, id).await.unwrap();
        assert_eq!(document.status(), Some(&DocumentStatus::ValidationAsked));
        assert!(staged_files(dir.path()).is_empty());
    }
);

both_backends!(
    a_page_whose_answer_was_lost_after_mangopay_kept_it_is_never_uploaded_twice,
    |env: Env| async move {
        let (db, dir) = staging(&env);
        let mut document = identity_proof(&env, &db, "lost@example.com", &dir).await;
        let id = document.id.unwrap();
        document.create(&db, &env.client).await.unwrap();
        let pages = document.pages(&db).await.unwrap();
        MangopayPage::upload(&db, &env.client, pages[0].id())
            .await
            .unwrap();

        env.sandbox()
            .knobs()
            .drop_next_answers(1, AnswerLoss::Close);
        let e = MangopayPage::upload(&db, &env.client, pages[1].id())
            .await
            .unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert_eq!(pages_at_sandbox(&env, &document), 2, "Mangopay kept it");

        let state = MangopayPage::upload(&db, &env.client, pages[1].id())
            .await
            .unwrap();
        assert_eq!(state, UploadState::Uploaded);
        assert_eq!(pages_at_sandbox(&env, &document), 2, "not uploaded twice");
        assert_eq!(
            requests_to(&env, "POST", "/pages"),
            2,
            "the key's stored answer settled it: nothing was sent again"
        );
        assert_eq!(requests_to(&env, "GET", "/responses/"), 1);
        MangopayDocument::upload_pages_and_ask_for_validation(&db, &env.client, id)
            .await
            .unwrap();
        assert!(staged_files(dir.path()).is_empty());
    }
);

both_backends!(
    a_page_whose_outcome_cannot_be_learnt_waits_for_an_operator,
    |env: Env| async move {
        let (db, dir) = staging(&env);
        let mut document = identity_proof(&env, &db, "unknown@example.com", &dir).await;
        let id = document.id.unwrap();
        document.create(&db, &env.client).await.unwrap();
        let second = document.pages(&db).await.unwrap()[1].id();
        // Mangopay answers (and stores against the key) a server error.
        env.sandbox().knobs().fail_next(1);
        let e = MangopayPage::upload(&db, &env.client, second)
            .await
            .unwrap_err();
        assert!(e.is_retryable(), "{e}");
        let e = MangopayPage::upload(&db, &env.client, second)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::NeedsOperator { .. }), "{e}");
        let page = MangopayPage::get(&db, second).await.unwrap();
        assert_eq!(page.upload_state(), UploadState::Unknown);
        // Nothing more is sent for it, and the document cannot be submitted.
        let posts = requests_to(&env, "POST", "/pages");
        assert!(
            MangopayPage::upload(&db, &env.client, second)
                .await
                .is_err()
        );
        assert_eq!(requests_to(&env, "POST", "/pages"), posts);
        let e = MangopayDocument::upload_pages_and_ask_for_validation(&db, &env.client, id)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("page 2 is unknown"), "{e}");
        // The operator saw no such page at Mangopay: it is sent again with a new key.
        let page = MangopayPage::resolve_unknown(&db, second, PageResolution::SendAgain)
            .await
            .unwrap();
        assert_eq!(page.upload_state(), UploadState::Pending);
        MangopayDocument::upload_pages_and_ask_for_validation(&db, &env.client, id)
            .await
            .unwrap();
        assert_eq!(pages_at_sandbox(&env, &document), 2);
        assert!(staged_files(dir.path()).is_empty());
    }
);

both_backends!(
    a_staged_copy_is_removed_when_mangopay_refuses_the_page,
    |env: Env| async move {
        let dir = tempfile::tempdir().unwrap();
        // This application accepts GIF files; the sandbox, like Mangopay today, does not.
        let db = env.db.clone().with_kyc(KycSettings {
            limits: FileLimits {
                accept_gif: true,
                ..FileLimits::default()
            },
            staging_dir: dir.path().join("pages"),
        });
        let user = created_user(&env, "gif@example.com").await;
        let mut document = MangopayDocument::new(user.id.unwrap(), DocumentType::IdentityProof);
        document.create(&db, &env.client).await.unwrap();
        let mut gif = b"GIF89a".to_vec();
        gif.resize(40_000, 0);
        let page = MangopayPage::add_bytes(&db, document.id.unwrap(), &gif)
            .await
            .unwrap();
        assert_eq!(staged_files(dir.path()).len(), 1);
        let e = MangopayPage::upload(&db, &env.client, page.id())
            .await
            .unwrap_err();
        assert_eq!(e.api().and_then(|a| a.status()), Some(415), "{e}");
        let page = MangopayPage::get(&db, page.id()).await.unwrap();
        assert_eq!(page.upload_state(), UploadState::Refused);
        assert!(
            page.last_error().unwrap().contains("unsupported"),
            "{:?}",
            page.last_error()
        );
        assert!(
            staged_files(dir.path()).is_empty(),
            "removed after the failed upload"
        );
    }
);

both_backends!(no_table_holds_a_page_s_bytes, |env: Env| async move {
    let (db, dir) = staging(&env);
    let marker = "KYC-BYTES-MUST-NOT-BE-STORED";
    let user = created_user(&env, "bytes@example.com").await;
    let mut document = MangopayDocument::new(user.id.unwrap(), DocumentType::IdentityProof);
    document.create(&db, &env.client).await.unwrap();
    let bytes = png(40_000, marker);
    MangopayPage::add_bytes(&db, document.id.unwrap(), &bytes)
        .await
        .unwrap();
    let path = dir.path().join("back.png");
    std::fs::write(&path, &bytes).unwrap();
    MangopayPage::add_file(&db, document.id.unwrap(), &path)
        .await
        .unwrap();
    MangopayDocument::upload_pages_and_ask_for_validation(&db, &env.client, document.id.unwrap())
        .await
        .unwrap();
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes[..48]);
    let mut conn = db.get().unwrap();
    let columns = text_columns(&mut conn, db.backend());
    assert!(
        columns.iter().any(|(t, _)| t == "mangopay_pages"),
        "{columns:?}"
    );
    for (table, column) in &columns {
        for needle in [marker, encoded.as_str()] {
            let found = diesel::sql_query(format!(
                "SELECT COUNT(*) AS n FROM {table} WHERE CAST({column} AS TEXT) LIKE '%' || $1 || '%'"
            ))
            .bind::<Text, _>(needle)
            .get_result::<Count>(&mut *conn)
            .unwrap();
            assert_eq!(found.n, 0, "{table}.{column} holds the page's bytes");
        }
    }
});

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(diesel::QueryableByName, Debug)]
struct Column {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
}

/// Every column of the library's tables that can hold text.
fn text_columns(
    conn: &mut diesel_mangopay::db::AnyConnection,
    backend: Backend,
) -> Vec<(String, String)> {
    let query = match backend {
        Backend::Postgres => {
            "SELECT table_name::text AS table_name, column_name::text AS column_name \
             FROM information_schema.columns WHERE table_schema = current_schema() \
             AND table_name LIKE 'mangopay_%' AND data_type IN ('text', 'character varying', 'bytea')"
        }
        Backend::Sqlite => {
            "SELECT m.name AS table_name, p.name AS column_name FROM sqlite_master m \
             JOIN pragma_table_info(m.name) p WHERE m.type = 'table' AND m.name LIKE 'mangopay_%' \
             AND (p.type LIKE '%TEXT%' OR p.type LIKE '%CHAR%' OR p.type LIKE '%BLOB%' OR p.type = '')"
        }
    };
    diesel::sql_query(query)
        .load::<Column>(conn)
        .unwrap()
        .into_iter()
        .map(|c| (c.table_name, c.column_name))
        .collect()
}

both_backends!(
    a_page_whose_upload_could_not_authenticate_is_kept_for_the_next_upload,
    |env: Env| async move {
        let (db, dir) = staging(&env);
        let user = created_user(&env, "auth@example.com").await;
        let mut document = MangopayDocument::new(user.id.unwrap(), DocumentType::IdentityProof);
        document.create(&db, &env.client).await.unwrap();
        let page = MangopayPage::add_bytes(&db, document.id.unwrap(), &png(40_000, "auth"))
            .await
            .unwrap();
        // Credentials rotated without the application knowing: no token, nothing sent.
        let client_id = env.sandbox().config().client_id.clone();
        let config = diesel_mangopay::ClientConfig::builder(client_id, "a-key-it-does-not-know")
            .base_url(env.sandbox.base_url())
            .build()
            .unwrap();
        let stale = diesel_mangopay::MangopayClient::new(config).unwrap();
        let e = MangopayPage::upload(&db, &stale, page.id())
            .await
            .unwrap_err();
        assert!(e.api().is_some_and(|a| a.never_sent()), "{e}");
        let kept = MangopayPage::get(&db, page.id()).await.unwrap();
        assert_eq!(kept.upload_state(), UploadState::Sending, "not refused");
        assert_eq!(staged_files(dir.path()).len(), 1, "the staged copy is kept");
        // With the right credentials the same page is uploaded.
        let state = MangopayPage::upload(&db, &env.client, page.id())
            .await
            .unwrap();
        assert_eq!(state, UploadState::Uploaded);
        assert_eq!(pages_at_sandbox(&env, &document), 1);
        assert!(staged_files(dir.path()).is_empty());
    }
);

both_backends!(
    a_page_uploaded_whose_answer_was_lost_is_settled_even_once_its_file_is_gone,
    |env: Env| async move {
        let (db, dir) = staging(&env);
        let mut document = identity_proof(&env, &db, "moved@example.com", &dir).await;
        document.create(&db, &env.client).await.unwrap();
        let first = document.pages(&db).await.unwrap()[0].clone();
        env.sandbox()
            .knobs()
            .drop_next_answers(1, AnswerLoss::Close);
        MangopayPage::upload(&db, &env.client, first.id())
            .await
            .unwrap_err();
        // The application moved its file on, taking the page as sent.
        std::fs::remove_file(first.source().path()).unwrap();
        let state = MangopayPage::upload(&db, &env.client, first.id())
            .await
            .unwrap();
        assert_eq!(state, UploadState::Uploaded);
        assert_eq!(requests_to(&env, "POST", "/pages"), 1, "sent once");
        assert_eq!(pages_at_sandbox(&env, &document), 1);
    }
);

both_backends!(
    two_uploads_of_one_page_at_once_send_it_once,
    |env: Env| async move {
        let (db, _dir) = staging(&env);
        let user = created_user(&env, "race@example.com").await;
        let mut document = MangopayDocument::new(user.id.unwrap(), DocumentType::IdentityProof);
        document.create(&db, &env.client).await.unwrap();
        let mut pages = Vec::new();
        for i in 0..5 {
            let bytes = png(40_000, &format!("race-{i}"));
            pages.push(
                MangopayPage::add_bytes(&db, document.id.unwrap(), &bytes)
                    .await
                    .unwrap(),
            );
        }
        for page in &pages {
            let (a, b) = tokio::join!(
                MangopayPage::upload(&db, &env.client, page.id()),
                MangopayPage::upload(&db, &env.client, page.id()),
            );
            let ok = [&a, &b].iter().filter(|r| r.is_ok()).count();
            assert!(ok >= 1, "{a:?} {b:?}");
            for r in [a, b] {
                if let Err(e) = r {
                    assert!(matches!(e, Error::Busy { .. }), "{e}");
                }
            }
        }
        assert_eq!(
            requests_to(&env, "POST", "/pages"),
            5,
            "each page sent once, with one key"
        );
        assert_eq!(pages_at_sandbox(&env, &document), 5);
    }
);

both_backends!(
    no_page_is_added_while_validation_is_being_asked,
    |env: Env| async move {
        let (db, dir) = staging(&env);
        let mut document = identity_proof(&env, &db, "inflight@example.com", &dir).await;
        let id = document.id.unwrap();
        document.create(&db, &env.client).await.unwrap();
        document.upload_pages(&db, &env.client).await.unwrap();
        env.sandbox()
            .knobs()
            .set_latency(std::time::Duration::from_millis(800));
        let asking = {
            let (db, client) = (db.clone(), env.client.clone());
            let mut document = document.clone();
            tokio::spawn(async move { document.ask_for_validation(&db, &client).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let e = MangopayPage::add_bytes(&db, id, &png(40_000, "late"))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::WrongState { .. }), "{e}");
        asking.await.unwrap().unwrap();
        env.sandbox().knobs().set_latency(std::time::Duration::ZERO);
        assert_eq!(MangopayPage::for_document(&db, id).await.unwrap().len(), 2);
        assert!(staged_files(dir.path()).is_empty(), "the late copy is gone");
        let asked = MangopayDocument::get(&db, id).await.unwrap();
        assert_eq!(asked.status(), Some(&DocumentStatus::ValidationAsked));
    }
);

both_backends!(
    a_failed_validation_request_keeps_pages_out_until_settled_and_a_refused_one_reopens,
    |env: Env| async move {
        let (db, dir) = staging(&env);
        let mut document = identity_proof(&env, &db, "reopen@example.com", &dir).await;
        let id = document.id.unwrap();
        document.create(&db, &env.client).await.unwrap();
        document.upload_pages(&db, &env.client).await.unwrap();
        // A failure retrying may fix: the request may still land, so no page is added.
        env.sandbox().knobs().set_unavailable(true);
        let e = document
            .ask_for_validation(&db, &env.client)
            .await
            .unwrap_err();
        env.sandbox().knobs().set_unavailable(false);
        assert!(e.is_retryable(), "{e}");
        let e = MangopayPage::add_bytes(&db, id, &png(40_000, "x"))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::WrongState { .. }), "{e}");
        assert_eq!(
            MangopayDocument::submissions_to_resume(&db).await.unwrap(),
            [id],
            "the KYC sweep asks again"
        );
        // A refusal (a proxy's redirect) while Mangopay shows it CREATED: open again.
        env.sandbox()
            .knobs()
            .redirect_next(1, "https://proxy.invalid/");
        let e = document
            .ask_for_validation(&db, &env.client)
            .await
            .unwrap_err();
        assert!(!e.is_retryable(), "{e}");
        let reopened = MangopayDocument::get(&db, id).await.unwrap();
        assert_eq!(reopened.facts().validation_asked_at, None);
        assert!(
            MangopayDocument::submissions_to_resume(&db)
                .await
                .unwrap()
                .is_empty(),
            "a refused request is the application's to send again"
        );
        MangopayPage::add_bytes(&db, id, &png(40_000, "third"))
            .await
            .unwrap();
        MangopayDocument::upload_pages_and_ask_for_validation(&db, &env.client, id)
            .await
            .unwrap();
        assert_eq!(pages_at_sandbox(&env, &document), 3);
        let asked = MangopayDocument::get(&db, id).await.unwrap();
        assert_eq!(asked.status(), Some(&DocumentStatus::ValidationAsked));
        assert!(asked.facts().validation_asked_at.is_some());
    }
);

both_backends!(
    a_page_whose_key_holds_a_rate_limit_answer_is_sent_with_a_new_key,
    |env: Env| async move {
        let (db, _dir) = staging(&env);
        let user = created_user(&env, "limited@example.com").await;
        let mut document = MangopayDocument::new(user.id.unwrap(), DocumentType::IdentityProof);
        document.create(&db, &env.client).await.unwrap();
        let page = MangopayPage::add_bytes(&db, document.id.unwrap(), &png(40_000, "rl"))
            .await
            .unwrap();
        let knobs = env.sandbox().knobs();
        knobs.set_rate_limited_keys_blocked(true);
        knobs.set_rate_limit(Some(1));
        let e = MangopayPage::upload(&db, &env.client, page.id())
            .await
            .unwrap_err();
        assert_eq!(e.api().and_then(|a| a.status()), Some(429), "{e}");
        knobs.set_rate_limit(None);
        // After the budget's reset (a client that has not seen the 429): the key's stored
        // answer is the 429, so the next upload learns it and gives the key up.
        let later = crate::support::client_for(&env.sandbox);
        let e = MangopayPage::upload(&db, &later, page.id())
            .await
            .unwrap_err();
        assert_eq!(e.api().and_then(|a| a.status()), Some(429), "{e}");
        let page_now = MangopayPage::get(&db, page.id()).await.unwrap();
        assert_eq!(page_now.upload_state(), UploadState::Pending);
        let state = MangopayPage::upload(&db, &later, page.id()).await.unwrap();
        assert_eq!(state, UploadState::Uploaded);
        assert_eq!(pages_at_sandbox(&env, &document), 1);
    }
);

both_backends!(
    interrupted_submissions_are_listed_to_resume,
    |env: Env| async move {
        let (db, dir) = staging(&env);
        let mut document = identity_proof(&env, &db, "resume@example.com", &dir).await;
        let id = document.id.unwrap();
        document.create(&db, &env.client).await.unwrap();
        assert!(
            MangopayDocument::submissions_to_resume(&db)
                .await
                .unwrap()
                .is_empty(),
            "a document nobody asked to submit is left alone"
        );
        MangopayDocument::request_submission(&db, id).await.unwrap();
        let first = document.pages(&db).await.unwrap()[0].id();
        MangopayPage::upload(&db, &env.client, first).await.unwrap();
        // The worker died here: one page uploaded, one pending.
        assert_eq!(
            MangopayDocument::submissions_to_resume(&db).await.unwrap(),
            vec![id]
        );
        MangopayDocument::upload_pages_and_ask_for_validation(&db, &env.client, id)
            .await
            .unwrap();
        assert!(
            MangopayDocument::submissions_to_resume(&db)
                .await
                .unwrap()
                .is_empty()
        );
    }
);

both_backends!(
    orphaned_staged_copies_are_removed_and_needed_ones_kept,
    |env: Env| async move {
        let (db, dir) = staging(&env);
        let user = created_user(&env, "orphan@example.com").await;
        let mut document = MangopayDocument::new(user.id.unwrap(), DocumentType::IdentityProof);
        document.save(&db).await.unwrap();
        let page = MangopayPage::add_bytes(&db, document.id.unwrap(), &png(40_000, "keep"))
            .await
            .unwrap();
        // A process stopped between staging a copy and recording its page.
        let name = page.source().path().file_name().unwrap().to_string_lossy();
        let prefix = &name[..name[5..].find('-').unwrap() + 6];
        let orphan = dir
            .path()
            .join("pages")
            .join(format!("{prefix}orphan.staged"));
        std::fs::write(&orphan, b"left behind").unwrap();
        // Another deployment's database stages its pages in the same directory.
        let theirs = dir.path().join("pages").join("page-0123456789ab-x.staged");
        std::fs::write(&theirs, b"another database's").unwrap();
        let other = dir.path().join("pages").join("not-ours.txt");
        std::fs::write(&other, b"the application's").unwrap();
        let removed =
            MangopayPage::remove_orphaned_staged_files(&db, std::time::Duration::from_secs(3600))
                .await
                .unwrap();
        assert_eq!(removed, 0, "recent files are kept");
        let removed = MangopayPage::remove_orphaned_staged_files(&db, std::time::Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(removed, 1);
        assert!(!orphan.exists());
        assert!(other.exists(), "only the library's own copies are touched");
        assert!(theirs.exists(), "another database's copies are left alone");
        assert!(
            page.source().path().exists(),
            "a page still to upload keeps its copy"
        );
    }
);

both_backends!(
    a_missing_file_is_refused_before_anything_is_written_or_sent,
    |env: Env| async move {
        let (db, _dir) = staging(&env);
        let files = tempfile::tempdir().unwrap();
        let user = created_user(&env, "gone@example.com").await;
        let mut document = MangopayDocument::new(user.id.unwrap(), DocumentType::IdentityProof);
        document.create(&db, &env.client).await.unwrap();
        let path = files.path().join("scan.png");
        std::fs::write(&path, png(40_000, "gone")).unwrap();
        let page = MangopayPage::add_file(&db, document.id.unwrap(), &path)
            .await
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        let e = MangopayPage::upload(&db, &env.client, page.id())
            .await
            .unwrap_err();
        assert!(e.validation().is_some_and(|v| v.has("file")), "{e}");
        assert_eq!(
            MangopayPage::get(&db, page.id()).await.unwrap(),
            page,
            "unchanged"
        );
        assert_eq!(requests_to(&env, "POST", "/pages"), 0);
        // Through the job's steps: the sweep does not retry what cannot succeed.
        let id = document.id.unwrap();
        let e = MangopayDocument::upload_pages_and_ask_for_validation(&db, &env.client, id)
            .await
            .unwrap_err();
        assert!(e.validation().is_some(), "{e}");
        assert!(
            MangopayDocument::submissions_to_resume(&db)
                .await
                .unwrap()
                .is_empty()
        );
    }
);

both_backends!(
    a_document_with_a_refused_page_is_not_resumed_by_the_sweep,
    |env: Env| async move {
        let dir = tempfile::tempdir().unwrap();
        let db = env.db.clone().with_kyc(KycSettings {
            limits: FileLimits {
                accept_gif: true,
                ..FileLimits::default()
            },
            staging_dir: dir.path().join("pages"),
        });
        let user = created_user(&env, "half@example.com").await;
        let mut document = MangopayDocument::new(user.id.unwrap(), DocumentType::IdentityProof);
        document.create(&db, &env.client).await.unwrap();
        let id = document.id.unwrap();
        MangopayPage::add_bytes(&db, id, &png(40_000, "front"))
            .await
            .unwrap();
        let mut gif = b"GIF89a".to_vec();
        gif.resize(40_000, 0);
        MangopayPage::add_bytes(&db, id, &gif).await.unwrap();
        MangopayDocument::upload_pages_and_ask_for_validation(&db, &env.client, id)
            .await
            .unwrap_err();
        let states: Vec<_> = MangopayPage::for_document(&db, id)
            .await
            .unwrap()
            .iter()
            .map(MangopayPage::upload_state)
            .collect();
        assert_eq!(states, [UploadState::Uploaded, UploadState::Refused]);
        assert!(
            MangopayDocument::submissions_to_resume(&db)
                .await
                .unwrap()
                .is_empty(),
            "not submitted without the page the application meant to send"
        );
    }
);

both_backends!(
    a_document_mangopay_never_created_does_not_hide_a_refused_one,
    |env: Env| async move {
        let (db, dir) = staging(&env);
        let mut refused = identity_proof(&env, &db, "hidden@example.com", &dir).await;
        let user_id = refused.user_id;
        submitted_and_refused(&env, &db, &mut refused, None, Vec::new()).await;
        // A second try whose create Mangopay refused (a proxy's redirect): failed, no status.
        let mut second = MangopayDocument::new(user_id, DocumentType::IdentityProof);
        env.sandbox()
            .knobs()
            .redirect_next(1, "https://proxy.invalid/");
        second.create(&db, &env.client).await.unwrap_err();
        assert_eq!(second.status(), None);
        let verification = Verification::of(&db, user_id).await.unwrap();
        assert_eq!(verification.to_send_again, [DocumentType::IdentityProof]);
    }
);
