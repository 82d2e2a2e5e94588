//! Loopback tests of KYC documents (create, pages and their file checks, submit, view, lists,
//! outcomes by control request and by knob), the user's verification (`ProofOf…` Ids and
//! `KYCLevel`), and UBO declarations.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::tests_harness::{self as harness, Answer, Harness, answer};
use super::{KycFileFormat, KycOutcome, KycRefusedReason, UboOutcome, UboReason};

impl Answer {
    /// Asserts a 400 `invalid_action` and returns its `Message`.
    fn invalid_action(&self) -> &str {
        assert!(self.error(400, "invalid_action").is_null());
        self.body["Message"].as_str().unwrap()
    }
}

async fn start() -> Harness {
    harness::start(11).await
}

impl Harness {
    /// A POST without a body, as the Node SDK creates UBO declarations.
    async fn post_empty(&self, path: &str) -> Answer {
        answer(self.http.post(self.api(path)).bearer_auth(&self.token)).await
    }

    async fn natural(&self, category: &str) -> String {
        let body = if category == "OWNER" {
            json!({"UserCategory": "OWNER", "TermsAndConditionsAccepted": true, "Address": paris(),
                   "FirstName": "Alex", "LastName": "Smith", "Email": "alex.smith@example.com",
                   "Birthday": 652117514, "Nationality": "FR", "CountryOfResidence": "FR"})
        } else {
            json!({"UserCategory": "PAYER", "FirstName": "Alex", "LastName": "Smith",
                   "Email": "alex.smith@example.com"})
        };
        let created = self.post("/users/natural", &body).await;
        created.ok()["Id"].as_str().unwrap().to_owned()
    }

    async fn legal(&self, category: &str, legal_person_type: &str) -> String {
        let body = if category == "OWNER" {
            json!({"UserCategory": "OWNER", "TermsAndConditionsAccepted": true,
                   "LegalPersonType": legal_person_type, "Name": "Best Business",
                   "Email": "best.business@example.com", "HeadquartersAddress": paris(),
                   "CompanyNumber": "123456789", "LegalRepresentativeFirstName": "Alex",
                   "LegalRepresentativeLastName": "Smith",
                   "LegalRepresentativeEmail": "alex.smith@example.com",
                   "LegalRepresentativeBirthday": 652117514,
                   "LegalRepresentativeNationality": "FR",
                   "LegalRepresentativeCountryOfResidence": "FR",
                   "LegalRepresentativeAddress": paris()})
        } else {
            json!({"UserCategory": "PAYER", "LegalPersonType": legal_person_type,
                   "Name": "Best Business", "Email": "best.business@example.com",
                   "LegalRepresentativeFirstName": "Alex", "LegalRepresentativeLastName": "Smith"})
        };
        let created = self.post("/users/legal", &body).await;
        created.ok()["Id"].as_str().unwrap().to_owned()
    }

    async fn document(&self, user: &str, kind: &str) -> Value {
        let created = self
            .post(
                &format!("/users/{user}/kyc/documents"),
                &json!({"Type": kind, "Tag": "custom meta"}),
            )
            .await;
        created.ok().clone()
    }

    async fn page(&self, user: &str, document: &str, file: &[u8]) -> Answer {
        self.post(
            &format!("/users/{user}/kyc/documents/{document}/pages"),
            &json!({ "File": STANDARD.encode(file) }),
        )
        .await
    }

    async fn submit(&self, user: &str, document: &str) -> Answer {
        self.put(
            &format!("/users/{user}/kyc/documents/{document}"),
            &json!({"Status": "VALIDATION_ASKED"}),
        )
        .await
    }

    /// A document of `kind` with one page, submitted: its Id.
    async fn submitted(&self, user: &str, kind: &str) -> String {
        let document = self.document(user, kind).await;
        let id = document["Id"].as_str().unwrap().to_owned();
        let page = self.page(user, &id, &png(40 * 1024)).await;
        assert_eq!(page.status, StatusCode::NO_CONTENT, "{}", page.text);
        self.submit(user, &id).await.ok();
        id
    }

    /// A document of `kind` submitted and validated by a control request: its Id.
    async fn validated(&self, user: &str, kind: &str) -> String {
        let id = self.submitted(user, kind).await;
        let outcome = self
            .control(
                &format!("/_sandbox/kyc/documents/{id}/outcome"),
                &json!({"Status": "VALIDATED"}),
            )
            .await;
        assert_eq!(outcome.ok()["Status"], "VALIDATED");
        id
    }

    async fn kyc_level(&self, user: &str) -> String {
        let user = self.get(&format!("/users/{user}")).await;
        user.ok()["KYCLevel"].as_str().unwrap().to_owned()
    }

    async fn declaration(&self, user: &str) -> Value {
        let created = self
            .post_empty(&format!("/users/{user}/kyc/ubodeclarations"))
            .await;
        created.ok().clone()
    }

    async fn ubo(&self, user: &str, declaration: &str, body: &Value) -> Answer {
        self.post(
            &format!("/users/{user}/kyc/ubodeclarations/{declaration}/ubos"),
            body,
        )
        .await
    }
}

fn paris() -> Value {
    json!({"AddressLine1": "The Oasis", "AddressLine2": "Rue des plantes", "City": "Paris",
           "Region": "Ile de France", "PostalCode": "75001", "Country": "FR"})
}

/// `magic` followed by deterministic filler up to `size` bytes: what the sandbox checks of a
/// file is its first bytes and its size.
fn file(magic: &[u8], size: usize) -> Vec<u8> {
    let mut bytes = magic.to_vec();
    bytes.extend((0..size.saturating_sub(magic.len())).map(|i| (i * 31 % 251) as u8));
    bytes.truncate(size);
    bytes
}

fn png(size: usize) -> Vec<u8> {
    file(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A], size)
}

fn jpeg(size: usize) -> Vec<u8> {
    file(&[0xFF, 0xD8, 0xFF, 0xE0], size)
}

fn pdf(size: usize) -> Vec<u8> {
    file(b"%PDF-1.4\n", size)
}

fn gif(size: usize) -> Vec<u8> {
    file(b"GIF89a", size)
}

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort_unstable();
    keys
}

fn sorted(keys: &[&str]) -> Vec<String> {
    let mut keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    keys.sort_unstable();
    keys
}

fn ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item["Id"].as_str().unwrap())
        .collect()
}

fn ubo_body() -> Value {
    json!({"FirstName": "Michaela", "LastName": "Effertz", "Birthday": 652117514,
           "Nationality": "FR",
           "Address": {"AddressLine1": "804 Hane Mountains", "AddressLine2": "Adriel Overpass",
                       "City": "Paris", "Region": "Île-de-France", "PostalCode": "75001",
                       "Country": "FR"},
           "Birthplace": {"City": "Paris", "Country": "FR"}})
}

// --- documents ------------------------------------------------------------------------

#[tokio::test]
async fn document_is_created_as_the_reference_shows() {
    let h = start().await;
    let user = h.natural("OWNER").await;
    let document = h.document(&user, "IDENTITY_PROOF").await;
    assert_eq!(
        keys(&document),
        sorted(&[
            "Type",
            "UserId",
            "Flags",
            "Id",
            "Tag",
            "CreationDate",
            "ProcessedDate",
            "Status",
            "RefusedReasonType",
            "RefusedReasonMessage"
        ])
    );
    let id = document["Id"].as_str().unwrap();
    assert!(id.starts_with("kyc_") && id.len() == 30, "{id}");
    assert_eq!(document["Type"], "IDENTITY_PROOF");
    assert_eq!(document["UserId"], user.as_str());
    assert_eq!(document["Flags"], json!([]));
    assert_eq!(document["Tag"], "custom meta");
    assert_eq!(document["Status"], "CREATED");
    assert!(document["ProcessedDate"].is_null());
    assert!(document["RefusedReasonType"].is_null() && document["RefusedReasonMessage"].is_null());
    assert_eq!(
        document["CreationDate"].as_i64(),
        Some(h.sandbox().clock().now().timestamp())
    );
    assert_eq!(h.sandbox().kyc_document(id), Some(document.clone()));
    assert_eq!(h.sandbox().kyc_pages(id), Some(Vec::new()));

    // Read-only keys the Python SDK sends are ignored; the type takes any case.
    let python = h
        .post(
            &format!("/users/{user}/KYC/documents/"),
            &json!({"Type": "address_proof", "UserId": user, "Status": null}),
        )
        .await;
    assert_eq!(python.ok()["Type"], "ADDRESS_PROOF");
    assert!(python.ok()["Tag"].is_null());
}

#[tokio::test]
async fn document_types_and_users_are_checked() {
    let h = start().await;
    let natural = h.natural("OWNER").await;
    let path = format!("/users/{natural}/kyc/documents");
    let missing = h.post(&path, &json!({})).await;
    assert_eq!(
        missing.error(400, "param_error")["Type"],
        "The Type field is required."
    );
    let unknown = h.post(&path, &json!({"Type": "PASSPORT"})).await;
    assert!(
        unknown.error(400, "param_error")["Type"]
            .as_str()
            .unwrap()
            .contains("IDENTITY_PROOF")
    );
    let nobody = h
        .post(
            "/users/user_m_nobody/kyc/documents",
            &json!({"Type": "IDENTITY_PROOF"}),
        )
        .await;
    assert_eq!(
        nobody.error(404, "ressource_not_found")["RessourceNotFound"],
        "Cannot found the ressource User with the id=user_m_nobody"
    );
    for kind in [
        "REGISTRATION_PROOF",
        "ARTICLES_OF_ASSOCIATION",
        "SHAREHOLDER_DECLARATION",
    ] {
        let refused = h.post(&path, &json!({ "Type": kind })).await;
        assert_eq!(
            refused.error(400, "param_error")["Type"],
            format!("{kind} cannot be submitted for NATURAL_PERSON user")
        );
    }
    for legal_person_type in ["BUSINESS", "PARTNERSHIP", "ORGANIZATION", "SOLETRADER"] {
        let legal = h.legal("OWNER", legal_person_type).await;
        let path = format!("/users/{legal}/kyc/documents");
        let address = h.post(&path, &json!({"Type": "ADDRESS_PROOF"})).await;
        assert_eq!(
            address.error(400, "param_error")["Type"],
            format!("ADDRESS_PROOF cannot be submitted for {legal_person_type} user")
        );
        let articles = h
            .post(&path, &json!({"Type": "ARTICLES_OF_ASSOCIATION"}))
            .await;
        if legal_person_type == "SOLETRADER" {
            assert_eq!(
                articles.error(400, "param_error")["Type"],
                "ARTICLES_OF_ASSOCIATION cannot be submitted for SOLETRADER user"
            );
        } else {
            assert_eq!(articles.ok()["Type"], "ARTICLES_OF_ASSOCIATION");
        }
        h.document(&legal, "REGISTRATION_PROOF").await;
        h.document(&legal, "IDENTITY_PROOF").await;
    }
    assert_eq!(h.sandbox().kyc_documents().len(), 11);
}

#[tokio::test]
async fn pdf_jpeg_and_png_pages_are_kept_as_size_and_digest() {
    let h = start().await;
    let user = h.natural("OWNER").await;
    let document = h.document(&user, "IDENTITY_PROOF").await;
    let id = document["Id"].as_str().unwrap();
    let created = document["CreationDate"].as_i64().unwrap();
    let files = [
        (pdf(32 * 1024), KycFileFormat::Pdf),
        (jpeg(50_000), KycFileFormat::Jpeg),
        (png(64 * 1024), KycFileFormat::Png),
    ];
    for (bytes, _) in &files {
        let page = h.page(&user, id, bytes).await;
        assert_eq!(page.status, StatusCode::NO_CONTENT, "{}", page.text);
        assert!(page.text.is_empty());
    }
    let pages = h.sandbox().kyc_pages(id).unwrap();
    assert_eq!(pages.len(), 3);
    for (page, (bytes, format)) in pages.iter().zip(&files) {
        assert_eq!(page.size, bytes.len());
        assert_eq!(page.format, *format);
        let digest: String = Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(page.sha256, digest);
        assert!((created..=h.sandbox().clock().now().timestamp()).contains(&page.creation_date));
    }
    // Pages do not show in the document.
    let viewed = h.get(&format!("/kyc/documents/{id}")).await;
    assert_eq!(viewed.ok(), &document);

    // Base64 split over lines, as some encoders write it, is read as .NET reads it.
    let wrapped: String = STANDARD
        .encode(png(2048))
        .as_bytes()
        .chunks(76)
        .map(|line| format!("{}\r\n", std::str::from_utf8(line).unwrap()))
        .collect();
    let address = h.document(&user, "ADDRESS_PROOF").await;
    let address = address["Id"].as_str().unwrap();
    let page = h
        .post(
            &format!("/users/{user}/kyc/documents/{address}/pages"),
            &json!({ "File": wrapped }),
        )
        .await;
    assert_eq!(page.status, StatusCode::NO_CONTENT, "{}", page.text);
    assert_eq!(h.sandbox().kyc_pages(address).unwrap()[0].size, 2048);
}

#[tokio::test]
async fn files_are_checked_for_format_and_size() {
    let h = start().await;
    let user = h.natural("OWNER").await;
    let identity = h.document(&user, "IDENTITY_PROOF").await;
    let identity = identity["Id"].as_str().unwrap();
    let address = h.document(&user, "ADDRESS_PROOF").await;
    let address = address["Id"].as_str().unwrap();

    // A text file, whatever it is called, and any other format: 415.
    let text = "Not a scan of anything. ".repeat(2000);
    for bytes in [
        text.as_bytes().to_vec(),
        file(b"PK\x03\x04", 40_000),
        gif(40_000),
    ] {
        let refused = h.page(&user, identity, &bytes).await;
        let errors = refused.error(415, "unsupported_media_type");
        assert_eq!(
            errors["File"],
            "The file format is not supported. Accepted formats: PDF, JPEG, JPG and PNG."
        );
    }
    // GIF only with the knob, for the older documentation's rule.
    h.sandbox().knobs().set_kyc_gif_accepted(true);
    let page = h.page(&user, identity, &gif(40_000)).await;
    assert_eq!(page.status, StatusCode::NO_CONTENT, "{}", page.text);
    assert_eq!(
        h.sandbox().kyc_pages(identity).unwrap()[0].format,
        KycFileFormat::Gif
    );
    h.sandbox().knobs().set_kyc_gif_accepted(false);

    // An empty file.
    let path = format!("/users/{user}/kyc/documents/{identity}/pages");
    for body in [json!({"File": ""}), json!({}), json!({"File": null})] {
        let empty = h.post(&path, &body).await;
        assert_eq!(
            empty.error(400, "param_error")["File"],
            "The File field is required."
        );
    }
    let not_text = h.post(&path, &json!({"File": 42})).await;
    assert_eq!(
        not_text.error(400, "param_error")["File"],
        "The field File must be a string."
    );
    // Below the minimum: 32 KiB for an identity proof, 1 KiB for the other types.
    let small = h.page(&user, identity, &png(32 * 1024 - 1)).await;
    assert_eq!(
        small.error(400, "param_error")["File"],
        "The file is too small to be readable"
    );
    let tiny = h.page(&user, address, &pdf(1023)).await;
    assert_eq!(
        tiny.error(400, "param_error")["File"],
        "The file is too small to be readable"
    );
    assert_eq!(
        h.page(&user, address, &pdf(1024)).await.status,
        StatusCode::NO_CONTENT
    );
    // Above the maximum: more than 10 MiB of base64 (about 7.5 MiB of file).
    let largest = 10 * 1024 * 1024 / 4 * 3;
    assert_eq!(
        h.page(&user, address, &jpeg(largest)).await.status,
        StatusCode::NO_CONTENT
    );
    let large = h.page(&user, address, &jpeg(largest + 1)).await;
    large.error(413, "payload_too_large");
    // Not base64.
    let length = h.post(&path, &json!({"File": "iVBORw0KGgo"})).await;
    assert_eq!(
        length.error(400, "param_error")["File"],
        "Invalid length for a Base-64 char array or string."
    );
    let characters = h.post(&path, &json!({"File": "iVBO*w0KGgo="})).await;
    assert!(
        characters.error(400, "param_error")["File"]
            .as_str()
            .unwrap()
            .starts_with("The input is not a valid Base-64 string")
    );
    assert_eq!(h.sandbox().kyc_pages(identity).unwrap().len(), 1);
    assert_eq!(h.sandbox().kyc_pages(address).unwrap().len(), 2);
}

#[tokio::test]
async fn a_document_takes_five_pages_and_none_after_its_submission() {
    let h = start().await;
    let user = h.natural("OWNER").await;
    let document = h.document(&user, "ADDRESS_PROOF").await;
    let id = document["Id"].as_str().unwrap();
    for n in 0..5 {
        let page = h.page(&user, id, &png(2000 + n)).await;
        assert_eq!(page.status, StatusCode::NO_CONTENT, "{}", page.text);
    }
    let sixth = h.page(&user, id, &png(3000)).await;
    assert!(sixth.error(400, "max_page_number").is_null());
    assert_eq!(
        sixth.body["Message"],
        "Maximum number of pages exceeded. You can only add up to 5 pages to this document"
    );

    let other = h.document(&user, "IDENTITY_PROOF").await;
    let other = other["Id"].as_str().unwrap();
    h.page(&user, other, &png(40_000)).await;
    h.submit(&user, other).await.ok();
    let late = h.page(&user, other, &png(40_000)).await;
    assert!(late.invalid_action().contains("CREATED"));
    assert_eq!(h.sandbox().kyc_pages(other).unwrap().len(), 1);

    // Someone else's document, an unknown one, an unknown user.
    let stranger = h.natural("OWNER").await;
    let theirs = h.page(&stranger, id, &png(2000)).await;
    assert_eq!(
        theirs.error(404, "ressource_not_found")["RessourceNotFound"],
        format!("Cannot found the ressource KycDocument with the id={id}")
    );
    h.page(&user, "kyc_unknown", &png(2000))
        .await
        .error(404, "ressource_not_found");
    h.page("user_m_nobody", id, &png(2000))
        .await
        .error(404, "ressource_not_found");
}

#[tokio::test]
async fn submission_needs_a_created_document_with_pages() {
    let h = start().await;
    let user = h.natural("OWNER").await;
    let document = h.document(&user, "IDENTITY_PROOF").await;
    let id = document["Id"].as_str().unwrap();
    let path = format!("/users/{user}/kyc/documents/{id}");

    let empty = h.submit(&user, id).await;
    assert_eq!(
        empty.invalid_action(),
        "You can not request validation for a KYC document which has no page"
    );
    let wrong = h.put(&path, &json!({"Status": "VALIDATED"})).await;
    assert!(wrong.error(400, "param_error")["Status"].is_string());
    let missing = h.put(&path, &json!({"Tag": "x"})).await;
    assert_eq!(
        missing.error(400, "param_error")["Status"],
        "The Status field is required."
    );

    h.page(&user, id, &png(40_000)).await;
    // The whole object, as the Python SDK sends it.
    let python = json!({"Type": "IDENTITY_PROOF", "Tag": "custom meta", "Status": "VALIDATION_ASKED",
                        "CreationDate": 1, "UserId": user});
    let submitted = h.put(&path, &python).await;
    let submitted = submitted.ok();
    assert_eq!(submitted["Status"], "VALIDATION_ASKED");
    assert!(submitted["ProcessedDate"].is_null());
    assert_eq!(submitted["Tag"], "custom meta");
    let twice = h.submit(&user, id).await;
    assert!(twice.invalid_action().contains("VALIDATION_ASKED"));

    // A PAYER cannot ask for validation.
    let payer = h.natural("PAYER").await;
    let theirs = h.document(&payer, "IDENTITY_PROOF").await;
    let theirs = theirs["Id"].as_str().unwrap();
    h.page(&payer, theirs, &png(40_000)).await;
    assert_eq!(
        h.submit(&payer, theirs).await.invalid_action(),
        "User belonging to category PAYER can't submit KYC documents for validation"
    );
    // Someone else's document.
    h.submit(&payer, id).await.error(404, "ressource_not_found");
}

#[tokio::test]
async fn documents_are_viewed_by_user_and_by_client() {
    let h = start().await;
    let user = h.natural("OWNER").await;
    let stranger = h.natural("OWNER").await;
    let document = h.document(&user, "IDENTITY_PROOF").await;
    let id = document["Id"].as_str().unwrap();
    assert_eq!(h.get(&format!("/kyc/documents/{id}")).await.ok(), &document);
    assert_eq!(
        h.get(&format!("/users/{user}/KYC/documents/{id}"))
            .await
            .ok(),
        &document
    );
    h.get(&format!("/users/{stranger}/kyc/documents/{id}"))
        .await
        .error(404, "ressource_not_found");
    h.get("/kyc/documents/kyc_nothing")
        .await
        .error(404, "ressource_not_found");
    h.get(&format!("/users/user_m_nobody/kyc/documents/{id}"))
        .await
        .error(404, "ressource_not_found");
}

#[tokio::test]
async fn lists_paginate_sort_and_filter() {
    let mut h = start().await;
    let user = h.natural("OWNER").await;
    let other = h.natural("OWNER").await;
    let mut created = Vec::new();
    let mut dates = Vec::new();
    for kind in ["IDENTITY_PROOF", "ADDRESS_PROOF", "IDENTITY_PROOF"] {
        let document = h.document(&user, kind).await;
        created.push(document["Id"].as_str().unwrap().to_owned());
        dates.push(document["CreationDate"].as_i64().unwrap());
        h.advance(Duration::from_secs(10)).await;
    }
    let theirs = h.submitted(&other, "IDENTITY_PROOF").await;
    let mine: Vec<&str> = created.iter().map(String::as_str).collect();

    let all = h.get(&format!("/users/{user}/kyc/documents")).await;
    assert_eq!(ids(all.ok()), mine);
    assert_eq!(all.header("x-number-of-items"), "3");
    let page = h
        .get(&format!(
            "/users/{user}/kyc/documents?Page=2&Per_Page=2&Sort=CreationDate:DESC"
        ))
        .await;
    assert_eq!(ids(page.ok()), vec![mine[0]]);
    assert_eq!(page.header("x-number-of-pages"), "2");
    assert!(page.header("link").contains("rel=\"prev\""));

    let identity = h
        .get(&format!("/users/{user}/kyc/documents?Type=IDENTITY_PROOF"))
        .await;
    assert_eq!(ids(identity.ok()), vec![mine[0], mine[2]]);
    let two_types = h
        .get(&format!(
            "/users/{user}/kyc/documents?type=ADDRESS_PROOF,IDENTITY_PROOF&per_page=1"
        ))
        .await;
    assert_eq!(two_types.header("x-number-of-items"), "3");
    let window = h
        .get(&format!(
            "/users/{user}/kyc/documents?AfterDate={}&BeforeDate={}",
            dates[0], dates[2]
        ))
        .await;
    assert_eq!(ids(window.ok()), vec![mine[1]]);

    let everything = h.get("/kyc/documents").await;
    assert_eq!(
        ids(everything.ok()),
        vec![mine[0], mine[1], mine[2], theirs.as_str()]
    );
    let asked = h.get("/kyc/documents?Status=VALIDATION_ASKED").await;
    assert_eq!(ids(asked.ok()), vec![theirs.as_str()]);
    let created_or_asked = h
        .get("/kyc/documents?Status=CREATED,VALIDATION_ASKED&Sort=CreationDate:DESC&per_page=2")
        .await;
    assert_eq!(ids(created_or_asked.ok()), vec![theirs.as_str(), mine[2]]);
    assert_eq!(created_or_asked.header("x-number-of-items"), "4");

    let bad = h.get("/kyc/documents?Status=ACCEPTED").await;
    assert!(bad.error(400, "param_error")["Status"].is_string());
    let bad_date = h.get("/kyc/documents?AfterDate=yesterday").await;
    assert!(bad_date.error(400, "param_error")["AfterDate"].is_string());
    h.get("/users/user_m_nobody/kyc/documents")
        .await
        .error(404, "ressource_not_found");

    // Lists lag like every other list.
    h.advance(Duration::from_secs(120)).await;
    h.sandbox().knobs().set_list_lag(Duration::from_secs(60));
    h.document(&user, "ADDRESS_PROOF").await;
    let lagging = h.get(&format!("/users/{user}/kyc/documents")).await;
    assert_eq!(lagging.header("x-number-of-items"), "3");
}

// --- outcomes -------------------------------------------------------------------------

#[tokio::test]
async fn control_request_validates_or_refuses_a_submitted_document() {
    let mut h = start().await;
    let user = h.natural("OWNER").await;
    let id = h.submitted(&user, "IDENTITY_PROOF").await;
    h.advance(Duration::from_secs(30)).await;
    let path = format!("/_sandbox/kyc/documents/{id}/outcome");

    let bad = h.control(&path, &json!({"Status": "OUT_OF_DATE"})).await;
    assert!(bad.error(400, "param_error")["Status"].is_string());
    let no_reason = h.control(&path, &json!({"Status": "REFUSED"})).await;
    assert!(no_reason.error(400, "param_error")["RefusedReasonType"].is_string());
    let bad_flags = h
        .control(
            &path,
            &json!({"Status": "REFUSED", "RefusedReasonType": "DOCUMENT_UNREADABLE", "Flags": ["blurred"]}),
        )
        .await;
    assert!(bad_flags.error(400, "param_error")["Flags"].is_string());

    let before = h.sandbox().clock().now().timestamp();
    let validated = h.control(&path, &json!({"Status": "VALIDATED"})).await;
    let validated = validated.ok().clone();
    let after = h.sandbox().clock().now().timestamp();
    assert_eq!(validated["Status"], "VALIDATED");
    let processed = validated["ProcessedDate"].as_i64().unwrap();
    assert!((before..=after).contains(&processed));
    assert_eq!(
        h.get(&format!("/kyc/documents/{id}")).await.ok(),
        &validated
    );
    let again = h.control(&path, &json!({"Status": "VALIDATED"})).await;
    assert!(again.invalid_action().contains("VALIDATED"));
    h.control(
        "/_sandbox/kyc/documents/kyc_unknown/outcome",
        &json!({"Status": "VALIDATED"}),
    )
    .await
    .error(404, "ressource_not_found");
    // Not an API call: no token needed, nothing logged.
    assert!(
        h.sandbox()
            .request_log()
            .iter()
            .all(|r| !r.path.starts_with("/_sandbox"))
    );

    let refused_id = h.submitted(&user, "ADDRESS_PROOF").await;
    let refused = h
        .control(
            &format!("/_sandbox/kyc/documents/{refused_id}/outcome"),
            &json!({"Status": "REFUSED", "RefusedReasonType": "document_unreadable",
                    "RefusedReasonMessage": "The picture is blurred", "Flags": ["009004"]}),
        )
        .await;
    let refused = refused.ok();
    assert_eq!(refused["Status"], "REFUSED");
    assert_eq!(refused["RefusedReasonType"], "DOCUMENT_UNREADABLE");
    assert_eq!(refused["RefusedReasonMessage"], "The picture is blurred");
    assert_eq!(refused["Flags"], json!(["009004"]));
    assert!(refused["ProcessedDate"].is_i64());

    // Still CREATED: not yet up for review.
    let created = h.document(&user, "IDENTITY_PROOF").await;
    let created = created["Id"].as_str().unwrap();
    let early = h.sandbox().set_kyc_outcome(created, KycOutcome::Validated);
    assert!(early.unwrap_err().contains("CREATED"));
    // The Rust twin.
    let rust = h.submitted(&user, "IDENTITY_PROOF").await;
    let outcome = KycOutcome::Refused {
        reason_type: KycRefusedReason::DocumentHasExpired,
        message: None,
        flags: vec!["009021".to_owned()],
    };
    let refused = h.sandbox().set_kyc_outcome(&rust, outcome).unwrap();
    assert_eq!(refused["RefusedReasonType"], "DOCUMENT_HAS_EXPIRED");
    assert!(refused["RefusedReasonMessage"].is_null());
    assert!(
        h.sandbox()
            .set_kyc_outcome("kyc_x", KycOutcome::Validated)
            .is_err()
    );
}

#[tokio::test]
async fn the_outcome_knob_settles_documents_after_a_delay() {
    let mut h = start().await;
    let user = h.natural("OWNER").await;
    let before_knob = h.submitted(&user, "ADDRESS_PROOF").await;

    h.sandbox()
        .knobs()
        .set_kyc_outcome_after(Some(Duration::from_secs(3600)));
    let submitted_at = h.sandbox().clock().now().timestamp();
    let validated = h.submitted(&user, "IDENTITY_PROOF").await;
    h.sandbox()
        .knobs()
        .set_kyc_outcome(KycOutcome::refused(KycRefusedReason::UnderagePerson));
    let refused = h.submitted(&user, "IDENTITY_PROOF").await;

    h.advance(Duration::from_secs(3599)).await;
    let waiting = h.get(&format!("/kyc/documents/{validated}")).await;
    assert_eq!(waiting.ok()["Status"], "VALIDATION_ASKED");
    assert_eq!(h.kyc_level(&user).await, "LIGHT");

    h.advance(Duration::from_secs(2)).await;
    let done = h
        .get(&format!("/users/{user}/kyc/documents/{validated}"))
        .await;
    assert_eq!(done.ok()["Status"], "VALIDATED");
    let processed = done.ok()["ProcessedDate"].as_i64().unwrap();
    assert!((submitted_at + 3600..=submitted_at + 3601).contains(&processed));
    let refused = h.sandbox().kyc_document(&refused).unwrap();
    assert_eq!(refused["Status"], "REFUSED");
    assert_eq!(refused["RefusedReasonType"], "UNDERAGE_PERSON");
    assert_eq!(refused["Flags"], json!([]));
    // Submitted while the knob was off: still up to a control request.
    let manual = h.get(&format!("/kyc/documents/{before_knob}")).await;
    assert_eq!(manual.ok()["Status"], "VALIDATION_ASKED");
    // The user list follows.
    let listed = h.get("/users").await;
    assert_eq!(listed.ok()[0]["KYCLevel"], "REGULAR");
}

#[tokio::test]
async fn a_user_read_applies_outcomes_that_fell_due() {
    let mut h = start().await;
    let user = h.natural("OWNER").await;
    h.sandbox()
        .knobs()
        .set_kyc_outcome_after(Some(Duration::ZERO));
    let id = h.submitted(&user, "IDENTITY_PROOF").await;
    h.advance(Duration::from_millis(1)).await;
    let viewed = h.get(&format!("/users/natural/{user}")).await;
    assert_eq!(viewed.ok()["KYCLevel"], "REGULAR");
    assert_eq!(viewed.ok()["ProofOfIdentity"], id.as_str());
    assert_eq!(h.sandbox().user(&user).unwrap()["KYCLevel"], "REGULAR");
}

// --- verification ---------------------------------------------------------------------

#[tokio::test]
async fn a_natural_owner_is_regular_with_its_identity_proof_validated() {
    let h = start().await;
    let user = h.natural("OWNER").await;
    let fresh = h.get(&format!("/users/{user}")).await;
    assert_eq!(fresh.ok()["KYCLevel"], "LIGHT");
    assert!(fresh.ok()["ProofOfIdentity"].is_null() && fresh.ok()["ProofOfAddress"].is_null());

    let address = h.validated(&user, "ADDRESS_PROOF").await;
    let viewed = h.get(&format!("/users/{user}")).await;
    assert_eq!(
        viewed.ok()["KYCLevel"],
        "LIGHT",
        "an address proof is not enough"
    );
    assert_eq!(viewed.ok()["ProofOfAddress"], address.as_str());

    // A refused identity proof does not count.
    let refused = h.submitted(&user, "IDENTITY_PROOF").await;
    h.sandbox()
        .set_kyc_outcome(
            &refused,
            KycOutcome::refused(KycRefusedReason::DocumentFalsified),
        )
        .unwrap();
    assert_eq!(h.kyc_level(&user).await, "LIGHT");

    let identity = h.validated(&user, "IDENTITY_PROOF").await;
    let viewed = h.get(&format!("/users/natural/{user}")).await;
    assert_eq!(viewed.ok()["KYCLevel"], "REGULAR");
    assert_eq!(viewed.ok()["ProofOfIdentity"], identity.as_str());
    let summaries = h.get("/users").await;
    assert_eq!(summaries.ok()[0]["KYCLevel"], "REGULAR");
    assert_eq!(h.sandbox().users()[0]["KYCLevel"], "REGULAR");

    // A newer validated identity proof replaces the older one.
    let newer = h.validated(&user, "IDENTITY_PROOF").await;
    let viewed = h.get(&format!("/users/{user}")).await;
    assert_eq!(viewed.ok()["ProofOfIdentity"], newer.as_str());
    // An update keeps the verification.
    let updated = h
        .put(
            &format!("/users/natural/{user}"),
            &json!({"Occupation": "Baker"}),
        )
        .await;
    assert_eq!(updated.ok()["KYCLevel"], "REGULAR");
}

#[tokio::test]
async fn legal_users_need_the_documents_of_their_type() {
    let h = start().await;

    let soletrader = h.legal("OWNER", "SOLETRADER").await;
    h.validated(&soletrader, "IDENTITY_PROOF").await;
    assert_eq!(h.kyc_level(&soletrader).await, "LIGHT");
    let registration = h.validated(&soletrader, "REGISTRATION_PROOF").await;
    assert_eq!(h.kyc_level(&soletrader).await, "REGULAR");
    let viewed = h.get(&format!("/users/legal/{soletrader}")).await;
    assert_eq!(viewed.ok()["ProofOfRegistration"], registration.as_str());
    assert!(viewed.ok()["LegalRepresentativeProofOfIdentity"].is_string());

    let organization = h.legal("OWNER", "ORGANIZATION").await;
    let identity = h.validated(&organization, "IDENTITY_PROOF").await;
    h.validated(&organization, "REGISTRATION_PROOF").await;
    assert_eq!(h.kyc_level(&organization).await, "LIGHT");
    let articles = h.validated(&organization, "ARTICLES_OF_ASSOCIATION").await;
    let shareholders = h.validated(&organization, "SHAREHOLDER_DECLARATION").await;
    let viewed = h.get(&format!("/users/{organization}")).await;
    let viewed = viewed.ok();
    assert_eq!(viewed["KYCLevel"], "REGULAR");
    assert_eq!(viewed["Statute"], articles.as_str());
    assert_eq!(viewed["ShareholderDeclaration"], shareholders.as_str());
    assert_eq!(
        viewed["LegalRepresentativeProofOfIdentity"],
        identity.as_str()
    );

    // A business also needs its beneficial owners declared and validated.
    let business = h.legal("OWNER", "BUSINESS").await;
    for kind in [
        "IDENTITY_PROOF",
        "REGISTRATION_PROOF",
        "ARTICLES_OF_ASSOCIATION",
    ] {
        h.validated(&business, kind).await;
    }
    assert_eq!(h.kyc_level(&business).await, "LIGHT");
    let declaration = h.declaration(&business).await;
    let declaration = declaration["Id"].as_str().unwrap();
    h.ubo(&business, declaration, &ubo_body()).await.ok();
    h.put(
        &format!("/users/{business}/kyc/ubodeclarations/{declaration}"),
        &json!({"Status": "VALIDATION_ASKED"}),
    )
    .await
    .ok();
    assert_eq!(h.kyc_level(&business).await, "LIGHT");
    h.sandbox()
        .set_ubo_outcome(declaration, UboOutcome::Validated)
        .unwrap();
    assert_eq!(h.kyc_level(&business).await, "REGULAR");
}

// --- UBO declarations -----------------------------------------------------------------

#[tokio::test]
async fn only_business_and_partnership_owners_declare_ubos() {
    let h = start().await;
    let natural = h.natural("OWNER").await;
    assert_eq!(
        h.post_empty(&format!("/users/{natural}/kyc/ubodeclarations"))
            .await
            .invalid_action(),
        "Cannot create an UBO for a NaturalUser"
    );
    let payer = h.legal("PAYER", "BUSINESS").await;
    assert_eq!(
        h.post_empty(&format!("/users/{payer}/kyc/ubodeclarations"))
            .await
            .invalid_action(),
        "User belonging to category PAYER can't create UBO declarations"
    );
    for legal_person_type in ["SOLETRADER", "ORGANIZATION"] {
        let user = h.legal("OWNER", legal_person_type).await;
        assert_eq!(
            h.post_empty(&format!("/users/{user}/kyc/ubodeclarations"))
                .await
                .invalid_action(),
            format!("Cannot create an UBO for a LegalUser of type {legal_person_type}")
        );
    }
    h.post_empty("/users/user_m_nobody/kyc/ubodeclarations")
        .await
        .error(404, "ressource_not_found");

    let partnership = h.legal("OWNER", "PARTNERSHIP").await;
    let declaration = h.declaration(&partnership).await;
    assert_eq!(
        keys(&declaration),
        sorted(&[
            "Id",
            "UserId",
            "CreationDate",
            "ProcessedDate",
            "Status",
            "Reason",
            "Message",
            "Ubos"
        ])
    );
    assert!(declaration["Id"].as_str().unwrap().starts_with("ubo_m_"));
    assert_eq!(declaration["UserId"], partnership.as_str());
    assert_eq!(declaration["Status"], "CREATED");
    assert_eq!(declaration["Ubos"], json!([]));
    assert!(declaration["ProcessedDate"].is_null() && declaration["Reason"].is_null());

    let second = h
        .post(
            &format!("/users/{partnership}/kyc/ubodeclarations"),
            &json!({}),
        )
        .await;
    assert_eq!(
        second.invalid_action(),
        "You can not create a declaration because you already have a declaration in progress"
    );
    let business = h.legal("OWNER", "BUSINESS").await;
    h.declaration(&business).await;
    assert_eq!(h.sandbox().ubo_declarations().len(), 2);
}

#[tokio::test]
async fn ubos_are_created_checked_viewed_and_updated() {
    let h = start().await;
    let user = h.legal("OWNER", "BUSINESS").await;
    let declaration = h.declaration(&user).await;
    let declaration = declaration["Id"].as_str().unwrap();

    let ubo = h.ubo(&user, declaration, &ubo_body()).await;
    let ubo = ubo.ok().clone();
    assert_eq!(
        keys(&ubo),
        sorted(&[
            "Id",
            "CreationDate",
            "LastName",
            "FirstName",
            "Birthday",
            "Nationality",
            "Address",
            "Birthplace",
            "IsActive"
        ])
    );
    assert!(ubo["Id"].as_str().unwrap().starts_with("ubo_m_"));
    assert_eq!(ubo["FirstName"], "Michaela");
    assert_eq!(ubo["Address"], ubo_body()["Address"]);
    assert_eq!(ubo["Birthplace"], json!({"City": "Paris", "Country": "FR"}));
    assert_eq!(ubo["IsActive"], true);
    let ubo_id = ubo["Id"].as_str().unwrap();
    let path = format!("/users/{user}/kyc/ubodeclarations/{declaration}/ubos/{ubo_id}");
    assert_eq!(h.get(&path).await.ok(), &ubo);
    let viewed = h.get(&format!("/kyc/ubodeclarations/{declaration}")).await;
    assert_eq!(viewed.ok()["Ubos"], json!([ubo]));

    // The reference's field rules and its Region error.
    let empty = h.ubo(&user, declaration, &json!({})).await;
    assert_eq!(
        keys(empty.error(400, "param_error")),
        sorted(&[
            "FirstName",
            "LastName",
            "Birthday",
            "Nationality",
            "Address",
            "Birthplace"
        ])
    );
    let mut us = ubo_body();
    us["Address"] = json!({"AddressLine1": "1 Main St", "City": "Austin", "PostalCode": "78701",
                           "Country": "US"});
    let region = h.ubo(&user, declaration, &us).await;
    assert_eq!(
        region.error(400, "param_error"),
        &json!({"Region": "The Region is a required field for this Country"})
    );
    let mut birthplace = ubo_body();
    birthplace["Birthplace"] = json!({"City": "Paris", "Country": "France"});
    let bad = h.ubo(&user, declaration, &birthplace).await;
    assert!(bad.error(400, "param_error")["Birthplace.Country"].is_string());
    birthplace["Birthplace"] = json!({"Country": "FR"});
    let no_city = h.ubo(&user, declaration, &birthplace).await;
    assert_eq!(
        no_city.error(400, "param_error")["Birthplace.City"],
        "The Birthplace.City field is required."
    );
    let mut future = ubo_body();
    future["Birthday"] = json!(h.sandbox().clock().now().timestamp() + 86_400);
    assert!(
        h.ubo(&user, declaration, &future)
            .await
            .error(400, "param_error")["Birthday"]
            .is_string()
    );

    // Updates: the keys given replace the stored ones.
    let updated = h
        .put(
            &path,
            &json!({"Id": ubo_id, "FirstName": "Jess", "LastName": "Wiza", "Nationality": null}),
        )
        .await;
    let updated = updated.ok();
    assert_eq!(updated["FirstName"], "Jess");
    assert_eq!(updated["LastName"], "Wiza");
    assert_eq!(updated["Nationality"], "FR");
    assert_eq!(updated["CreationDate"], ubo["CreationDate"]);
    let invalid = h.put(&path, &json!({"Nationality": "XX"})).await;
    assert!(invalid.error(400, "param_error")["Nationality"].is_string());
    let disregarded = h.put(&path, &json!({"IsActive": false})).await;
    assert_eq!(disregarded.ok()["IsActive"], false);
    assert_eq!(
        h.put(&path, &json!({"FirstName": "Again"}))
            .await
            .invalid_action(),
        "You can not update an UBO that is inactive"
    );
    h.get(&format!(
        "/users/{user}/kyc/ubodeclarations/{declaration}/ubos/ubo_m_nothing"
    ))
    .await
    .error(404, "ressource_not_found");
    let stranger = h.legal("OWNER", "BUSINESS").await;
    h.get(&format!(
        "/users/{stranger}/kyc/ubodeclarations/{declaration}/ubos/{ubo_id}"
    ))
    .await
    .error(404, "ressource_not_found");
}

#[tokio::test]
async fn a_declaration_holds_fifteen_ubos() {
    let h = start().await;
    let user = h.legal("OWNER", "BUSINESS").await;
    let declaration = h.declaration(&user).await;
    let declaration = declaration["Id"].as_str().unwrap();
    for _ in 0..15 {
        h.ubo(&user, declaration, &ubo_body()).await.ok();
    }
    assert_eq!(
        h.ubo(&user, declaration, &ubo_body())
            .await
            .invalid_action(),
        "You can not create more than 15 UBO for a declaration"
    );
}

#[tokio::test]
async fn a_declaration_is_submitted_found_incomplete_and_validated() {
    let mut h = start().await;
    let user = h.legal("OWNER", "BUSINESS").await;
    let declaration = h.declaration(&user).await;
    let id = declaration["Id"].as_str().unwrap();
    let path = format!("/users/{user}/kyc/ubodeclarations/{id}");
    let submit = json!({"Id": id, "Status": "VALIDATION_ASKED"});

    assert_eq!(
        h.put(&path, &submit).await.invalid_action(),
        "You can not request validation for a declaration which has no ubo"
    );
    let wrong = h.put(&path, &json!({"Status": "VALIDATED"})).await;
    assert!(wrong.error(400, "param_error")["Status"].is_string());

    let first = h.ubo(&user, id, &ubo_body()).await;
    let first_id = first.ok()["Id"].as_str().unwrap().to_owned();
    let submitted = h.put(&path, &submit).await;
    assert_eq!(submitted.ok()["Status"], "VALIDATION_ASKED");
    assert_eq!(submitted.ok()["Ubos"].as_array().unwrap().len(), 1);
    assert!(
        h.put(&path, &submit)
            .await
            .invalid_action()
            .contains("VALIDATION_ASKED")
    );
    assert!(
        h.ubo(&user, id, &ubo_body())
            .await
            .invalid_action()
            .contains("VALIDATION_ASKED")
    );
    assert!(
        h.put(
            &format!("{path}/ubos/{first_id}"),
            &json!({"FirstName": "Jess"})
        )
        .await
        .invalid_action()
        .contains("VALIDATION_ASKED")
    );

    // Found incomplete by a control request: the platform completes it and submits again.
    let control = format!("/_sandbox/kyc/ubodeclarations/{id}/outcome");
    let no_reason = h.control(&control, &json!({"Status": "INCOMPLETE"})).await;
    assert!(no_reason.error(400, "param_error")["Reason"].is_string());
    let incomplete = h
        .control(
            &control,
            &json!({"Status": "INCOMPLETE", "Reason": "MISSING_UBO",
                    "Message": "The second shareholder is missing"}),
        )
        .await;
    let incomplete = incomplete.ok();
    assert_eq!(incomplete["Status"], "INCOMPLETE");
    assert_eq!(incomplete["Reason"], "MISSING_UBO");
    assert_eq!(incomplete["Message"], "The second shareholder is missing");
    assert!(incomplete["ProcessedDate"].is_i64());
    h.ubo(&user, id, &ubo_body()).await.ok();
    h.put(
        &format!("{path}/ubos/{first_id}"),
        &json!({"FirstName": "Jess"}),
    )
    .await
    .ok();
    // A new declaration is refused while this one is in progress.
    h.post_empty(&format!("/users/{user}/kyc/ubodeclarations"))
        .await
        .invalid_action();

    // The knob validates it an hour after its second submission.
    h.sandbox()
        .knobs()
        .set_ubo_outcome_after(Some(Duration::from_secs(3600)));
    let resubmitted = h.put(&path, &submit).await;
    let resubmitted = resubmitted.ok();
    assert_eq!(resubmitted["Status"], "VALIDATION_ASKED");
    assert!(resubmitted["Reason"].is_null() && resubmitted["Message"].is_null());
    h.advance(Duration::from_secs(3601)).await;
    let validated = h.get(&path).await;
    let validated = validated.ok();
    assert_eq!(validated["Status"], "VALIDATED");
    assert_eq!(validated["Ubos"].as_array().unwrap().len(), 2);
    assert_eq!(validated["Ubos"][0]["FirstName"], "Jess");
    assert!(
        h.control(&control, &json!({"Status": "VALIDATED"}))
            .await
            .invalid_action()
            .contains("VALIDATED")
    );

    // Once validated, a new declaration can be made; the knob can refuse it.
    h.sandbox().knobs().set_ubo_outcome(UboOutcome::Refused {
        reason: UboReason::WrongUboInformation,
        message: Some("Birthday does not match".to_owned()),
    });
    let next = h.declaration(&user).await;
    let next = next["Id"].as_str().unwrap();
    h.ubo(&user, next, &ubo_body()).await.ok();
    h.put(
        &format!("/users/{user}/kyc/ubodeclarations/{next}"),
        &json!({"Status": "VALIDATION_ASKED"}),
    )
    .await
    .ok();
    h.advance(Duration::from_secs(3600)).await;
    let refused = h.sandbox().ubo_declaration(next).unwrap();
    assert_eq!(refused["Status"], "REFUSED");
    assert_eq!(refused["Reason"], "WRONG_UBO_INFORMATION");
    assert_eq!(refused["Message"], "Birthday does not match");
    assert!(
        h.sandbox()
            .set_ubo_outcome(next, UboOutcome::Validated)
            .unwrap_err()
            .contains("REFUSED")
    );
    assert!(
        h.sandbox()
            .set_ubo_outcome("ubo_m_x", UboOutcome::Validated)
            .is_err()
    );
}

#[tokio::test]
async fn declarations_are_viewed_and_listed() {
    let mut h = start().await;
    let user = h.legal("OWNER", "BUSINESS").await;
    let stranger = h.legal("OWNER", "BUSINESS").await;
    let mut created = Vec::new();
    for _ in 0..3 {
        let declaration = h.declaration(&user).await;
        let id = declaration["Id"].as_str().unwrap().to_owned();
        h.ubo(&user, &id, &ubo_body()).await.ok();
        h.put(
            &format!("/users/{user}/kyc/ubodeclarations/{id}"),
            &json!({"Status": "VALIDATION_ASKED"}),
        )
        .await
        .ok();
        h.sandbox()
            .set_ubo_outcome(
                &id,
                UboOutcome::Refused {
                    reason: UboReason::SpecificCase,
                    message: None,
                },
            )
            .unwrap();
        created.push(id);
        h.advance(Duration::from_secs(5)).await;
    }
    let mine: Vec<&str> = created.iter().map(String::as_str).collect();
    let list = h.get(&format!("/users/{user}/kyc/ubodeclarations")).await;
    assert_eq!(ids(list.ok()), mine);
    assert_eq!(list.ok()[0]["Ubos"].as_array().unwrap().len(), 1);
    let page = h
        .get(&format!(
            "/users/{user}/KYC/UboDeclarations?per_page=2&page=1&sort=CreationDate:DESC"
        ))
        .await;
    assert_eq!(ids(page.ok()), vec![mine[2], mine[1]]);
    assert_eq!(page.header("x-number-of-pages"), "2");
    let theirs = h
        .get(&format!("/users/{stranger}/kyc/ubodeclarations"))
        .await;
    assert_eq!(theirs.ok(), &json!([]));

    let viewed = h
        .get(&format!("/users/{user}/kyc/ubodeclarations/{}", mine[0]))
        .await;
    assert_eq!(viewed.ok()["Reason"], "SPECIFIC_CASE");
    assert_eq!(
        h.get(&format!("/kyc/ubodeclarations/{}", mine[0]))
            .await
            .ok(),
        viewed.ok()
    );
    h.get(&format!(
        "/users/{stranger}/kyc/ubodeclarations/{}",
        mine[0]
    ))
    .await
    .error(404, "ressource_not_found");
    h.get("/kyc/ubodeclarations/ubo_m_nothing")
        .await
        .error(404, "ressource_not_found");
    h.get("/users/user_m_nobody/kyc/ubodeclarations")
        .await
        .error(404, "ressource_not_found");
}

// --- idempotency ----------------------------------------------------------------------

#[tokio::test]
async fn keyed_creates_are_replayed_not_repeated() {
    let h = start().await;
    let user = h.natural("OWNER").await;
    let path = format!("/users/{user}/kyc/documents");
    let body = json!({"Type": "IDENTITY_PROOF"});
    let key = "kyc-document-key-0001";
    let first = h.post_keyed(&path, &body, key).await;
    let first = first.ok().clone();
    h.post_keyed(&path, &body, key)
        .await
        .error(409, "idempotent_creation_conflict");
    let replay = h.get(&format!("/responses/{key}")).await;
    assert_eq!(replay.ok()["StatusCode"], "200");
    assert_eq!(replay.ok()["Resource"], first);
    assert_eq!(h.sandbox().kyc_documents().len(), 1);

    let id = first["Id"].as_str().unwrap();
    let page_path = format!("{path}/{id}/pages");
    let page_key = "kyc-page-key-00000001";
    let page = json!({"File": STANDARD.encode(png(40_000))});
    assert_eq!(
        h.post_keyed(&page_path, &page, page_key).await.status,
        StatusCode::NO_CONTENT
    );
    h.post_keyed(&page_path, &page, page_key)
        .await
        .error(409, "idempotent_creation_conflict");
    let replay = h.get(&format!("/responses/{page_key}")).await;
    assert_eq!(replay.ok()["StatusCode"], "204");
    assert_eq!(h.sandbox().kyc_pages(id).unwrap().len(), 1);

    let business = h.legal("OWNER", "BUSINESS").await;
    let declaration_key = "ubo-declaration-key-1";
    let declaration = answer(
        h.http
            .post(h.api(&format!("/users/{business}/kyc/ubodeclarations")))
            .bearer_auth(&h.token)
            .header("Idempotency-Key", declaration_key),
    )
    .await;
    declaration.ok();
    let replay = h.get(&format!("/responses/{declaration_key}")).await;
    assert_eq!(replay.ok()["Resource"], declaration.body);
    assert_eq!(h.sandbox().ubo_declarations().len(), 1);
}
