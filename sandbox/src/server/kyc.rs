//! KYC documents: create, add pages, submit, view and list, answered with the KYC Document
//! object exactly as Mangopay's reference shows it (every key present, `null` where absent,
//! integer timestamps); the outcome of a submitted document; and what validated documents
//! and UBO declarations ([`super::ubo`]) make of their user: the `ProofOf…` Ids of the user
//! object and its `KYCLevel`.
//!
//! A page's file is checked as the reference's file constraints say, then dropped: only its
//! size, SHA-256 and format are kept ([`crate::KycPage`], [`crate::Sandbox::kyc_pages`]).
//! Pages need valid base64 of at most 10 MiB (else 413), a PDF, JPEG or PNG by its magic
//! bytes (GIF with [`crate::Knobs::set_kyc_gif_accepted`]; else 415), at least 32 KiB for an
//! `IDENTITY_PROOF` and 1 KiB for other types ("The file is too small to be readable"), and
//! at most 5 per document (`max_page_number`).
//!
//! A submitted document stays `VALIDATION_ASKED` until a control request
//! (`POST /_sandbox/kyc/documents/{KycDocumentId}/outcome`,
//! [`crate::Sandbox::set_kyc_outcome`]) settles it, or until the delay chosen with
//! [`crate::Knobs::set_kyc_outcome_after`] has passed on the sandbox clock; that delay is
//! looked at whenever a document or a user is read.
//!
//! A user becomes `REGULAR` when it is an `OWNER` whose validated documents cover Mangopay's
//! requirements for its type: an `IDENTITY_PROOF` for a natural user; for a legal user an
//! `IDENTITY_PROOF` (of its legal representative) and a `REGISTRATION_PROOF`, plus
//! `ARTICLES_OF_ASSOCIATION` unless it is a `SOLETRADER`, plus a validated UBO declaration if
//! it is a `BUSINESS` or a `PARTNERSHIP`.

use std::collections::{BTreeSet, HashMap};
use std::sync::MutexGuard;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use super::Sandbox;
use super::bank_accounts::{list_cutoff, list_page};
use super::error::{ApiError, FieldErrors, json_response};
use super::ids;
use super::knobs::DateFilterBounds;
use super::state::Shared;
use super::transactions::{add_values, timestamp};
use super::ubo::UboStore;
use super::users::{JsonObject, ListQuery, PersonType};
use super::validation::Fields;

/// The most pages a KYC document can have ("You can upload up to 5 files to each KYC
/// Document").
pub(crate) const MAX_PAGES: usize = 5;

/// The longest base64 `File` accepted: 10 MiB ("about 7MB (10MB when Base64 encoded)").
pub(crate) const MAX_ENCODED_FILE: usize = 10 * 1024 * 1024;

/// The smallest identity proof file: 32 KiB.
pub(crate) const MIN_IDENTITY_PROOF_FILE: usize = 32 * 1024;

/// The smallest file of the other document types: 1 KiB.
pub(crate) const MIN_OTHER_FILE: usize = 1024;

/// The `Message` of the 400 `max_page_number` error, as the reference words it.
const MAX_PAGES_MESSAGE: &str =
    "Maximum number of pages exceeded. You can only add up to 5 pages to this document";

/// The reference's message for a file below the minimum size.
const TOO_SMALL_MESSAGE: &str = "The file is too small to be readable";

/// The reference's message for a `File` whose length is not a multiple of 4.
const BASE64_LENGTH_MESSAGE: &str = "Invalid length for a Base-64 char array or string.";

/// What the API answers for a `File` with characters that are not base64 (the .NET message).
const BASE64_CHARACTER_MESSAGE: &str = "The input is not a valid Base-64 string as it contains a non-base 64 character, more than two padding characters, or an illegal character among the padding characters.";

/// Standard base64 with its padding, accepting non-zero trailing bits as .NET does.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// The `Type` of a KYC document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DocumentType {
    IdentityProof,
    RegistrationProof,
    ArticlesOfAssociation,
    ShareholderDeclaration,
    AddressProof,
}

/// Every `Type`, as the reference lists them.
const DOCUMENT_TYPES: [&str; 5] = [
    "IDENTITY_PROOF",
    "REGISTRATION_PROOF",
    "ARTICLES_OF_ASSOCIATION",
    "SHAREHOLDER_DECLARATION",
    "ADDRESS_PROOF",
];

/// Every `Status` a KYC document can have, as the reference lists them (`OUT_OF_DATE`, the
/// downgrade after a user's key details change, is not emulated: no document takes it).
const DOCUMENT_STATUSES: [&str; 5] = [
    "CREATED",
    "VALIDATION_ASKED",
    "VALIDATED",
    "REFUSED",
    "OUT_OF_DATE",
];

impl DocumentType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DocumentType::IdentityProof => "IDENTITY_PROOF",
            DocumentType::RegistrationProof => "REGISTRATION_PROOF",
            DocumentType::ArticlesOfAssociation => "ARTICLES_OF_ASSOCIATION",
            DocumentType::ShareholderDeclaration => "SHAREHOLDER_DECLARATION",
            DocumentType::AddressProof => "ADDRESS_PROOF",
        }
    }

    fn parse(text: &str) -> Option<DocumentType> {
        match text {
            "IDENTITY_PROOF" => Some(DocumentType::IdentityProof),
            "REGISTRATION_PROOF" => Some(DocumentType::RegistrationProof),
            "ARTICLES_OF_ASSOCIATION" => Some(DocumentType::ArticlesOfAssociation),
            "SHAREHOLDER_DECLARATION" => Some(DocumentType::ShareholderDeclaration),
            "ADDRESS_PROOF" => Some(DocumentType::AddressProof),
            _ => None,
        }
    }

    /// The smallest file a page of this type may hold, in bytes.
    fn min_file_size(self) -> usize {
        match self {
            DocumentType::IdentityProof => MIN_IDENTITY_PROOF_FILE,
            _ => MIN_OTHER_FILE,
        }
    }
}

/// The `Status` of a stored KYC document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DocumentStatus {
    Created,
    ValidationAsked,
    Validated,
    Refused,
}

impl DocumentStatus {
    fn as_str(self) -> &'static str {
        match self {
            DocumentStatus::Created => "CREATED",
            DocumentStatus::ValidationAsked => "VALIDATION_ASKED",
            DocumentStatus::Validated => "VALIDATED",
            DocumentStatus::Refused => "REFUSED",
        }
    }
}

/// Why Mangopay refused a KYC document: the `RefusedReasonType` values of the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KycRefusedReason {
    /// `DOCUMENT_DO_NOT_MATCH_USER_DATA`.
    DocumentDoNotMatchUserData,
    /// `DOCUMENT_FALSIFIED`.
    DocumentFalsified,
    /// `DOCUMENT_HAS_EXPIRED`.
    DocumentHasExpired,
    /// `DOCUMENT_INCOMPLETE`.
    DocumentIncomplete,
    /// `DOCUMENT_MISSING`.
    DocumentMissing,
    /// `DOCUMENT_NOT_ACCEPTED`.
    DocumentNotAccepted,
    /// `DOCUMENT_UNREADABLE`.
    DocumentUnreadable,
    /// `SPECIFIC_CASE`.
    SpecificCase,
    /// `UNDERAGE_PERSON`.
    UnderagePerson,
}

impl KycRefusedReason {
    /// Every reason, in the reference's order.
    pub const ALL: [KycRefusedReason; 9] = [
        KycRefusedReason::DocumentDoNotMatchUserData,
        KycRefusedReason::DocumentFalsified,
        KycRefusedReason::DocumentHasExpired,
        KycRefusedReason::DocumentIncomplete,
        KycRefusedReason::DocumentMissing,
        KycRefusedReason::DocumentNotAccepted,
        KycRefusedReason::DocumentUnreadable,
        KycRefusedReason::SpecificCase,
        KycRefusedReason::UnderagePerson,
    ];

    /// The API value, e.g. `DOCUMENT_UNREADABLE`.
    pub fn as_str(self) -> &'static str {
        match self {
            KycRefusedReason::DocumentDoNotMatchUserData => "DOCUMENT_DO_NOT_MATCH_USER_DATA",
            KycRefusedReason::DocumentFalsified => "DOCUMENT_FALSIFIED",
            KycRefusedReason::DocumentHasExpired => "DOCUMENT_HAS_EXPIRED",
            KycRefusedReason::DocumentIncomplete => "DOCUMENT_INCOMPLETE",
            KycRefusedReason::DocumentMissing => "DOCUMENT_MISSING",
            KycRefusedReason::DocumentNotAccepted => "DOCUMENT_NOT_ACCEPTED",
            KycRefusedReason::DocumentUnreadable => "DOCUMENT_UNREADABLE",
            KycRefusedReason::SpecificCase => "SPECIFIC_CASE",
            KycRefusedReason::UnderagePerson => "UNDERAGE_PERSON",
        }
    }

    /// The reason an API value names (any case), if any.
    pub fn parse(text: &str) -> Option<KycRefusedReason> {
        KycRefusedReason::ALL
            .into_iter()
            .find(|reason| reason.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

/// How a submitted (`VALIDATION_ASKED`) KYC document ends: by itself after
/// [`crate::Knobs::set_kyc_outcome_after`], as [`crate::Knobs::set_kyc_outcome`] says, or as a
/// control request asks ([`crate::Sandbox::set_kyc_outcome`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KycOutcome {
    /// `VALIDATED` (the default), `ProcessedDate` set.
    #[default]
    Validated,
    /// `REFUSED`, `ProcessedDate` set, with the reason Mangopay's team gives.
    Refused {
        /// The `RefusedReasonType`.
        reason_type: KycRefusedReason,
        /// The `RefusedReasonMessage` (`null` when `None`).
        message: Option<String>,
        /// The `Flags`: codes of the reference's flags list, such as `"009004"` (the document
        /// is blurred); usually empty except for identity proofs.
        flags: Vec<String>,
    },
}

impl KycOutcome {
    /// `REFUSED` with this reason, no message and no flags.
    pub fn refused(reason_type: KycRefusedReason) -> KycOutcome {
        KycOutcome::Refused {
            reason_type,
            message: None,
            flags: Vec::new(),
        }
    }
}

/// The real format of a KYC page's file, read from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KycFileFormat {
    /// `%PDF`.
    Pdf,
    /// `FF D8 FF`.
    Jpeg,
    /// `89 50 4E 47 0D 0A 1A 0A`.
    Png,
    /// `GIF87a` or `GIF89a` (accepted only with [`crate::Knobs::set_kyc_gif_accepted`]).
    Gif,
}

impl KycFileFormat {
    /// The format `bytes` start with, if it is one of the four.
    pub fn sniff(bytes: &[u8]) -> Option<KycFileFormat> {
        if bytes.starts_with(b"%PDF") {
            Some(KycFileFormat::Pdf)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(KycFileFormat::Jpeg)
        } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
            Some(KycFileFormat::Png)
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(KycFileFormat::Gif)
        } else {
            None
        }
    }
}

/// A page of a KYC document as the sandbox keeps it: never the file itself (platforms may not
/// store verification documents, and neither does the sandbox), only what tests need to
/// recognise it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KycPage {
    /// The decoded file's size in bytes.
    pub size: usize,
    /// The decoded file's SHA-256, in lower-case hexadecimal.
    pub sha256: String,
    /// The file's format, from its magic bytes.
    pub format: KycFileFormat,
    /// When the page was added (Unix seconds of the sandbox clock).
    pub creation_date: i64,
}

/// One stored KYC document.
#[derive(Debug, Clone)]
pub(crate) struct KycDocumentRecord {
    pub(crate) id: String,
    pub(crate) user_id: String,
    pub(crate) kind: DocumentType,
    tag: Option<String>,
    creation_date: i64,
    /// The creation instant in milliseconds of the sandbox clock (for the list lag).
    created_at_ms: i64,
    pub(crate) status: DocumentStatus,
    processed_date: Option<i64>,
    refused: Option<(KycRefusedReason, Option<String>)>,
    flags: Vec<String>,
    pages: Vec<KycPage>,
    /// The outcome the document takes by itself, and when (milliseconds of the sandbox clock).
    scheduled: Option<(KycOutcome, i64)>,
}

/// The KYC Document object, keys in the reference's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct KycDocumentView<'a> {
    #[serde(rename = "Type")]
    kind: &'static str,
    user_id: &'a str,
    flags: &'a [String],
    id: &'a str,
    tag: Option<&'a str>,
    creation_date: i64,
    processed_date: Option<i64>,
    status: &'static str,
    refused_reason_type: Option<&'static str>,
    refused_reason_message: Option<&'a str>,
}

impl KycDocumentRecord {
    /// Applies the outcome the document was scheduled to take by `now_ms`, if any; whether it
    /// did.
    fn settle(&mut self, now_ms: i64) -> bool {
        if self.status != DocumentStatus::ValidationAsked {
            return false;
        }
        match self.scheduled.take() {
            Some((outcome, at)) if now_ms >= at => {
                self.apply(&outcome, at.div_euclid(1000));
                true
            }
            scheduled => {
                self.scheduled = scheduled;
                false
            }
        }
    }

    /// Ends the review as `outcome` says, processed at `at` (Unix seconds).
    fn apply(&mut self, outcome: &KycOutcome, at: i64) {
        self.scheduled = None;
        self.processed_date = Some(at);
        match outcome {
            KycOutcome::Validated => {
                self.status = DocumentStatus::Validated;
                self.refused = None;
                self.flags.clear();
            }
            KycOutcome::Refused {
                reason_type,
                message,
                flags,
            } => {
                self.status = DocumentStatus::Refused;
                self.refused = Some((*reason_type, message.clone()));
                self.flags = flags.clone();
            }
        }
    }

    fn view(&self) -> KycDocumentView<'_> {
        KycDocumentView {
            kind: self.kind.as_str(),
            user_id: &self.user_id,
            flags: &self.flags,
            id: &self.id,
            tag: self.tag.as_deref(),
            creation_date: self.creation_date,
            processed_date: self.processed_date,
            status: self.status.as_str(),
            refused_reason_type: self.refused.as_ref().map(|(reason, _)| reason.as_str()),
            refused_reason_message: self
                .refused
                .as_ref()
                .and_then(|(_, message)| message.as_deref()),
        }
    }

    /// The object as `GET /kyc/documents/{KycDocumentId}` answers it.
    pub(crate) fn to_json(&self) -> Value {
        serde_json::to_value(self.view()).unwrap_or(Value::Null)
    }

    fn to_response(&self) -> Response {
        json_response(StatusCode::OK, &self.view())
    }
}

/// What a user's validated KYC documents and UBO declarations prove: the Id of the newest
/// validated document of each type and of the newest validated UBO declaration. The user
/// object shows the document Ids (`ProofOfIdentity`, `Statute`, …) and derives its
/// `KYCLevel` from them ([`Verification::is_regular`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Verification {
    pub(crate) identity_proof: Option<String>,
    pub(crate) address_proof: Option<String>,
    pub(crate) registration_proof: Option<String>,
    pub(crate) articles_of_association: Option<String>,
    pub(crate) shareholder_declaration: Option<String>,
    pub(crate) ubo_declaration: Option<String>,
}

impl Verification {
    /// Whether this covers what Mangopay requires to verify a user: a natural user
    /// (`legal_person_type` `None`) needs its identity proof; a legal user the identity proof
    /// of its legal representative and its registration proof, its articles of association
    /// unless it is a `SOLETRADER`, and a validated UBO declaration if it is a `BUSINESS` or a
    /// `PARTNERSHIP`.
    pub(crate) fn is_regular(&self, legal_person_type: Option<&str>) -> bool {
        if self.identity_proof.is_none() {
            return false;
        }
        let Some(legal_person_type) = legal_person_type else {
            return true;
        };
        let articles_needed = legal_person_type != "SOLETRADER";
        let ubos_needed = matches!(legal_person_type, "BUSINESS" | "PARTNERSHIP");
        self.registration_proof.is_some()
            && (!articles_needed || self.articles_of_association.is_some())
            && (!ubos_needed || self.ubo_declaration.is_some())
    }
}

/// KYC documents and UBO declarations, one lock for everything a user's verification
/// depends on.
#[derive(Debug, Default)]
pub(crate) struct KycStore {
    documents: Vec<KycDocumentRecord>,
    index: HashMap<String, usize>,
    /// UBO declarations (see [`super::ubo`]).
    pub(crate) declarations: UboStore,
}

impl KycStore {
    fn insert(&mut self, record: KycDocumentRecord) {
        self.index.insert(record.id.clone(), self.documents.len());
        self.documents.push(record);
    }

    pub(crate) fn document(&self, id: &str) -> Option<&KycDocumentRecord> {
        self.index.get(id).map(|&i| &self.documents[i])
    }

    fn document_mut(&mut self, id: &str) -> Option<&mut KycDocumentRecord> {
        self.index.get(id).map(|&i| &mut self.documents[i])
    }

    /// All documents, oldest first.
    pub(crate) fn documents(&self) -> &[KycDocumentRecord] {
        &self.documents
    }

    /// Applies every outcome due by `now_ms`; the users whose documents or declarations
    /// changed.
    fn settle(&mut self, now_ms: i64) -> BTreeSet<String> {
        let mut changed = BTreeSet::new();
        for document in &mut self.documents {
            if document.settle(now_ms) {
                changed.insert(document.user_id.clone());
            }
        }
        changed.extend(self.declarations.settle(now_ms));
        changed
    }

    /// What `user_id`'s validated documents and declarations prove.
    pub(crate) fn verification(&self, user_id: &str) -> Verification {
        let mut verification = Verification::default();
        let mut newest: HashMap<&'static str, (i64, usize)> = HashMap::new();
        for (order, document) in self.documents.iter().enumerate() {
            if document.user_id != user_id || document.status != DocumentStatus::Validated {
                continue;
            }
            let key = (document.processed_date.unwrap_or_default(), order);
            let entry = newest.entry(document.kind.as_str()).or_insert(key);
            if key >= *entry {
                *entry = key;
                let id = Some(document.id.clone());
                match document.kind {
                    DocumentType::IdentityProof => verification.identity_proof = id,
                    DocumentType::AddressProof => verification.address_proof = id,
                    DocumentType::RegistrationProof => verification.registration_proof = id,
                    DocumentType::ArticlesOfAssociation => {
                        verification.articles_of_association = id;
                    }
                    DocumentType::ShareholderDeclaration => {
                        verification.shareholder_declaration = id;
                    }
                }
            }
        }
        verification.ubo_declaration = self.declarations.validated(user_id);
        verification
    }
}

impl Shared {
    /// The KYC store as it is, even if a panicking request poisoned its lock. Outcomes due by
    /// the sandbox clock are applied by [`Shared::settle_kyc`], which readers call first.
    ///
    /// Lock order: the KYC store may be held while the user store is locked, never the other
    /// way round.
    pub(crate) fn kyc(&self) -> MutexGuard<'_, KycStore> {
        self.kyc.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies the KYC and UBO outcomes due by the sandbox clock, and brings the users they
    /// concern up to date. Called before anything reads documents, declarations or users;
    /// never while holding the KYC or user lock.
    pub(crate) fn settle_kyc(&self) {
        let now_ms = self.clock.now().timestamp_millis();
        let changed = self.kyc().settle(now_ms);
        self.refresh_verification(changed);
    }

    /// Recomputes what the documents and declarations of `users` prove, and stores it on
    /// them. Never called while holding the KYC or user lock.
    pub(crate) fn refresh_verification(&self, users: impl IntoIterator<Item = String>) {
        let snapshots: Vec<(String, Verification)> = {
            let kyc = self.kyc();
            users
                .into_iter()
                .map(|user| {
                    let verification = kyc.verification(&user);
                    (user, verification)
                })
                .collect()
        };
        if snapshots.is_empty() {
            return;
        }
        let mut store = self.users();
        for (user, verification) in snapshots {
            if let Some(record) = store.get_mut(&user) {
                record.verification = verification;
            }
        }
    }

    /// Settles a `VALIDATION_ASKED` document now, as the control request does.
    pub(crate) fn set_kyc_outcome(
        &self,
        id: &str,
        outcome: &KycOutcome,
    ) -> Result<Value, ApiError> {
        self.settle_kyc();
        let now = self.clock.now().timestamp();
        let (user, json) = {
            let mut kyc = self.kyc();
            let document = kyc
                .document_mut(id)
                .ok_or_else(|| ApiError::not_found("KycDocument", id))?;
            if document.status != DocumentStatus::ValidationAsked {
                return Err(ApiError::invalid_action(format!(
                    "The KYC document {id} is {}: only a VALIDATION_ASKED document can be validated or refused.",
                    document.status.as_str()
                )));
            }
            document.apply(outcome, now);
            (document.user_id.clone(), document.to_json())
        };
        self.refresh_verification([user]);
        Ok(json)
    }
}

/// A KYC document id such as `kyc_01JA5M2N33ENJHWVPQXVJ6Q51P`, as the reference shows them.
fn document_id<R: rand::Rng + ?Sized>(at: chrono::DateTime<chrono::Utc>, rng: &mut R) -> String {
    format!("kyc_{}", ids::ulid(at, rng))
}

/// What the sandbox knows of a user that a KYC or UBO request needs.
#[derive(Debug, Clone)]
pub(crate) struct UserFacts {
    pub(crate) person_type: PersonType,
    pub(crate) owner: bool,
    /// `LegalPersonType` of a legal user.
    pub(crate) legal_person_type: Option<String>,
}

/// The facts of user `user_id`, or 404 `ressource_not_found`.
pub(crate) fn user_facts(shared: &Shared, user_id: &str) -> Result<UserFacts, ApiError> {
    let users = shared.users();
    let user = users
        .get(user_id)
        .ok_or_else(|| ApiError::not_found("User", user_id))?;
    Ok(UserFacts {
        person_type: user.person_type(),
        owner: user.is_owner(),
        legal_person_type: user.legal_person_type().map(str::to_owned),
    })
}

/// Whether a user of this kind may hold a document of `kind`: the refusals the reference
/// shows, as `errors.Type`.
fn type_refusal(facts: &UserFacts, kind: DocumentType) -> Option<String> {
    match (&facts.legal_person_type, kind) {
        (
            None,
            DocumentType::RegistrationProof
            | DocumentType::ArticlesOfAssociation
            | DocumentType::ShareholderDeclaration,
        ) => Some(format!(
            "{} cannot be submitted for NATURAL_PERSON user",
            kind.as_str()
        )),
        (Some(legal), DocumentType::AddressProof) => Some(format!(
            "{} cannot be submitted for {legal} user",
            kind.as_str()
        )),
        (Some(legal), DocumentType::ArticlesOfAssociation) if legal == "SOLETRADER" => Some(
            format!("{} cannot be submitted for {legal} user", kind.as_str()),
        ),
        _ => None,
    }
}

/// `POST /v2.01/{ClientId}/users/{UserId}/kyc/documents`: a `CREATED` document of `Type`, to
/// add pages to.
pub(crate) async fn kyc_documents_create(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let now = sandbox.clock().now();
    let mut f = Fields::new(&body, now.timestamp());
    let kind = f.one_of("Type", &DOCUMENT_TYPES, true);
    let tag = f.text("Tag", 0, 255, false);
    f.finish().map_err(ApiError::param_errors)?;
    let Some(kind) = kind.as_deref().and_then(DocumentType::parse) else {
        unreachable!("required fields were checked");
    };
    let facts = user_facts(sandbox.shared(), &user_id)?;
    if let Some(refusal) = type_refusal(&facts, kind) {
        return Err(ApiError::param_error("Type", refusal));
    }
    let record = KycDocumentRecord {
        id: document_id(now, &mut *sandbox.shared().rng()),
        user_id,
        kind,
        tag,
        creation_date: now.timestamp(),
        created_at_ms: now.timestamp_millis(),
        status: DocumentStatus::Created,
        processed_date: None,
        refused: None,
        flags: Vec::new(),
        pages: Vec::new(),
        scheduled: None,
    };
    let response = record.to_response();
    sandbox.shared().kyc().insert(record);
    Ok(response)
}

/// The user's document `id` in `kyc`: 404 `ressource_not_found` for an unknown user, or for a
/// document that does not exist or belongs to someone else.
fn owned<'a>(
    sandbox: &Sandbox,
    kyc: &'a mut KycStore,
    user_id: &str,
    id: &str,
) -> Result<&'a mut KycDocumentRecord, ApiError> {
    if sandbox.shared().users().get(user_id).is_none() {
        return Err(ApiError::not_found("User", user_id));
    }
    kyc.document_mut(id)
        .filter(|document| document.user_id == user_id)
        .ok_or_else(|| ApiError::not_found("KycDocument", id))
}

/// The `File` of a page request, its whitespace removed, or the error the reference shows.
fn encoded_file(body: &Map<String, Value>) -> Result<String, ApiError> {
    match body.get("File") {
        None | Some(Value::Null) => {
            Err(ApiError::param_error("File", "The File field is required."))
        }
        Some(Value::String(text)) => {
            let compact: String = text
                .chars()
                .filter(|c| !matches!(c, ' ' | '\t' | '\r' | '\n'))
                .collect();
            if compact.is_empty() {
                Err(ApiError::param_error("File", "The File field is required."))
            } else {
                Ok(compact)
            }
        }
        Some(_) => Err(ApiError::param_error(
            "File",
            "The field File must be a string.",
        )),
    }
}

/// 415 for a file that is none of the accepted formats ("wrong file format for KYC document
/// file", as the reference's HTTP response codes say).
fn unsupported_format(gif: bool) -> ApiError {
    let accepted = if gif {
        "PDF, JPEG, JPG, GIF and PNG"
    } else {
        "PDF, JPEG, JPG and PNG"
    };
    ApiError::unsupported_media_type(
        "File",
        format!("The file format is not supported. Accepted formats: {accepted}."),
    )
}

/// Checks a page's file as the reference's file constraints say; the page to keep.
fn checked_page(
    encoded: &str,
    kind: DocumentType,
    gif_accepted: bool,
    now: i64,
) -> Result<KycPage, ApiError> {
    if encoded.len() > MAX_ENCODED_FILE {
        return Err(ApiError::payload_too_large());
    }
    if !encoded.len().is_multiple_of(4) {
        return Err(ApiError::param_error("File", BASE64_LENGTH_MESSAGE));
    }
    let bytes = BASE64
        .decode(encoded)
        .map_err(|_| ApiError::param_error("File", BASE64_CHARACTER_MESSAGE))?;
    if bytes.is_empty() {
        return Err(ApiError::param_error("File", TOO_SMALL_MESSAGE));
    }
    let format = match KycFileFormat::sniff(&bytes) {
        Some(KycFileFormat::Gif) if !gif_accepted => return Err(unsupported_format(false)),
        Some(format) => format,
        None => return Err(unsupported_format(gif_accepted)),
    };
    if bytes.len() < kind.min_file_size() {
        return Err(ApiError::param_error("File", TOO_SMALL_MESSAGE));
    }
    let digest = Sha256::digest(&bytes);
    let sha256 = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok(KycPage {
        size: bytes.len(),
        sha256,
        format,
        creation_date: now,
    })
}

/// `POST /v2.01/{ClientId}/users/{UserId}/kyc/documents/{KycDocumentId}/pages` with
/// `{"File": "<base64>"}`: 204 without a body once the file passes the checks (see the module
/// documentation); only while the document is `CREATED`, and 5 pages at most.
pub(crate) async fn kyc_pages_create(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id, id)): Path<(String, String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    sandbox.shared().settle_kyc();
    let now = sandbox.clock().now().timestamp();
    let gif_accepted = sandbox.knobs().kyc_gif_accepted();
    let kind = accepting_pages(&sandbox, &mut sandbox.shared().kyc(), &user_id, &id)?.kind;
    let encoded = encoded_file(&body)?;
    drop(body);
    // Decoded and hashed without holding the store (a page can be 10 MiB of base64), then
    // checked again before it is kept.
    let page = checked_page(&encoded, kind, gif_accepted, now)?;
    drop(encoded);
    accepting_pages(&sandbox, &mut sandbox.shared().kyc(), &user_id, &id)?
        .pages
        .push(page);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The user's document `id` if it can take one more page: 404 as [`owned`] says, 400
/// `invalid_action` unless it is `CREATED`, 400 `max_page_number` once it has 5 pages.
fn accepting_pages<'a>(
    sandbox: &Sandbox,
    kyc: &'a mut KycStore,
    user_id: &str,
    id: &str,
) -> Result<&'a mut KycDocumentRecord, ApiError> {
    let document = owned(sandbox, kyc, user_id, id)?;
    if document.status != DocumentStatus::Created {
        return Err(ApiError::invalid_action(format!(
            "A page can only be added to a KYC document whose Status is CREATED: this one is {}.",
            document.status.as_str()
        )));
    }
    if document.pages.len() >= MAX_PAGES {
        return Err(ApiError::max_page_number(MAX_PAGES_MESSAGE));
    }
    Ok(document)
}

/// `PUT /v2.01/{ClientId}/users/{UserId}/kyc/documents/{KycDocumentId}` with
/// `{"Status": "VALIDATION_ASKED"}`: submits a `CREATED` document that has pages, for an
/// `OWNER` ("Only users whose UserCategory is OWNER can submit verification documents for
/// validation"). Other keys (the SDKs send the whole object) are ignored.
pub(crate) async fn kyc_documents_submit(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id, id)): Path<(String, String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let now = sandbox.clock().now();
    let mut f = Fields::new(&body, now.timestamp());
    f.one_of("Status", &["VALIDATION_ASKED"], true);
    f.finish().map_err(ApiError::param_errors)?;
    sandbox.shared().settle_kyc();
    let facts = user_facts(sandbox.shared(), &user_id)?;
    let scheduled = sandbox.knobs().kyc_outcome_after().map(|after| {
        (
            sandbox.knobs().kyc_outcome(),
            due_after(now.timestamp_millis(), after),
        )
    });
    let mut kyc = sandbox.shared().kyc();
    let document = owned(&sandbox, &mut kyc, &user_id, &id)?;
    if document.status != DocumentStatus::Created {
        return Err(ApiError::invalid_action(format!(
            "You can not request validation for a KYC document whose Status is {}: only a CREATED document can be submitted.",
            document.status.as_str()
        )));
    }
    if document.pages.is_empty() {
        return Err(ApiError::invalid_action(
            "You can not request validation for a KYC document which has no page",
        ));
    }
    if !facts.owner {
        return Err(ApiError::invalid_action(
            "User belonging to category PAYER can't submit KYC documents for validation",
        ));
    }
    document.status = DocumentStatus::ValidationAsked;
    document.scheduled = scheduled;
    Ok(document.to_response())
}

/// `GET /v2.01/{ClientId}/users/{UserId}/kyc/documents/{KycDocumentId}`.
pub(crate) async fn users_kyc_documents_get(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id, id)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    sandbox.shared().settle_kyc();
    let mut kyc = sandbox.shared().kyc();
    owned(&sandbox, &mut kyc, &user_id, &id).map(|document| document.to_response())
}

/// `GET /v2.01/{ClientId}/kyc/documents/{KycDocumentId}`.
pub(crate) async fn kyc_documents_get(
    State(sandbox): State<Sandbox>,
    Path((_client_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    sandbox.shared().settle_kyc();
    let kyc = sandbox.shared().kyc();
    kyc.document(&id)
        .map(KycDocumentRecord::to_response)
        .ok_or_else(|| ApiError::not_found("KycDocument", &id))
}

/// The filters of a KYC document list: `Status` and `Type` (comma-separated or repeated),
/// `AfterDate` and `BeforeDate` on `CreationDate` (bounds as
/// [`crate::Knobs::set_date_filter_bounds`] says).
#[derive(Debug, Default)]
struct DocumentFilter {
    statuses: Option<Vec<String>>,
    types: Option<Vec<String>>,
    after: Option<i64>,
    before: Option<i64>,
}

impl DocumentFilter {
    fn from_uri(uri: &Uri) -> Result<DocumentFilter, ApiError> {
        let pairs: Vec<(String, String)> = Query::try_from_uri(uri)
            .map(|q: Query<Vec<(String, String)>>| q.0)
            .map_err(|err| ApiError::param_error("Query", err.body_text()))?;
        let mut errors = FieldErrors::new();
        let mut filter = DocumentFilter::default();
        for (name, value) in pairs {
            match name.to_ascii_lowercase().as_str() {
                "status" => add_values(
                    &mut filter.statuses,
                    &name,
                    &value,
                    Some(&DOCUMENT_STATUSES),
                    &mut errors,
                ),
                "type" => add_values(
                    &mut filter.types,
                    &name,
                    &value,
                    Some(&DOCUMENT_TYPES),
                    &mut errors,
                ),
                "afterdate" => filter.after = timestamp(&name, &value, &mut errors),
                "beforedate" => filter.before = timestamp(&name, &value, &mut errors),
                _ => {}
            }
        }
        if errors.is_empty() {
            Ok(filter)
        } else {
            Err(ApiError::param_errors(errors))
        }
    }

    fn matches(&self, document: &KycDocumentRecord, bounds: DateFilterBounds) -> bool {
        let among = |accepted: &Option<Vec<String>>, value: &str| {
            accepted
                .as_ref()
                .is_none_or(|accepted| accepted.iter().any(|a| a == value))
        };
        let date = document.creation_date;
        let (after_ok, before_ok) = match bounds {
            DateFilterBounds::Exclusive => (
                self.after.is_none_or(|after| date > after),
                self.before.is_none_or(|before| date < before),
            ),
            DateFilterBounds::Inclusive => (
                self.after.is_none_or(|after| date >= after),
                self.before.is_none_or(|before| date <= before),
            ),
        };
        among(&self.statuses, document.status.as_str())
            && among(&self.types, document.kind.as_str())
            && after_ok
            && before_ok
    }
}

/// The documents `belongs` picks, filtered, without those within the list lag, sorted and
/// paginated as the query asks.
fn list(
    sandbox: &Sandbox,
    belongs: impl Fn(&KycDocumentRecord) -> bool,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Response, ApiError> {
    let query = ListQuery::from_uri(uri)?;
    let filter = DocumentFilter::from_uri(uri)?;
    let bounds = sandbox.knobs().date_filter_bounds();
    let cutoff = list_cutoff(sandbox);
    let kyc = sandbox.shared().kyc();
    let mut items: Vec<&KycDocumentRecord> = kyc
        .documents()
        .iter()
        .filter(|d| belongs(d) && d.created_at_ms <= cutoff && filter.matches(d, bounds))
        .collect();
    // Creation order breaks ties between documents created within the same second.
    items.sort_by_key(|d| d.creation_date);
    let views: Vec<KycDocumentView<'_>> = items.iter().map(|d| d.view()).collect();
    Ok(list_page(&query, views, headers, uri))
}

/// `GET /v2.01/{ClientId}/users/{UserId}/kyc/documents`: the user's documents, filtered
/// (`Status`, `Type`, `AfterDate`, `BeforeDate`), sorted by `CreationDate` and paginated.
pub(crate) async fn users_kyc_documents_list(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    sandbox.shared().settle_kyc();
    if sandbox.shared().users().get(&user_id).is_none() {
        return Err(ApiError::not_found("User", &user_id));
    }
    list(&sandbox, |d| d.user_id == user_id, &headers, &uri)
}

/// `GET /v2.01/{ClientId}/kyc/documents`: every document of the platform, filtered, sorted
/// and paginated like a user's.
pub(crate) async fn kyc_documents_list(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    sandbox.shared().settle_kyc();
    list(&sandbox, |_| true, &headers, &uri)
}

/// Reads the outcome a control request asks for.
fn requested_outcome(body: &Map<String, Value>) -> Result<KycOutcome, ApiError> {
    let reasons: Vec<&str> = KycRefusedReason::ALL.iter().map(|r| r.as_str()).collect();
    let mut f = Fields::new(body, 0);
    let status = f.one_of("Status", &["VALIDATED", "REFUSED"], true);
    let reason = f.one_of("RefusedReasonType", &reasons, false);
    let message = f.text("RefusedReasonMessage", 0, 255, false);
    let mut flags = Vec::new();
    match body.get("Flags") {
        None | Some(Value::Null) => {}
        Some(Value::Array(values)) => {
            for value in values {
                match value.as_str() {
                    Some(code) if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) => {
                        flags.push(code.to_owned());
                    }
                    _ => f.error(
                        "Flags",
                        "Each flag must be a code of the flags list, such as 009004.",
                    ),
                }
            }
        }
        Some(_) => f.error("Flags", "The field Flags must be an array of codes."),
    }
    if status.as_deref() == Some("REFUSED") && reason.is_none() {
        f.error(
            "RefusedReasonType",
            "The RefusedReasonType field is required when Status is REFUSED.",
        );
    }
    f.finish().map_err(ApiError::param_errors)?;
    Ok(match (status.as_deref(), reason) {
        (Some("REFUSED"), Some(reason)) => KycOutcome::Refused {
            reason_type: KycRefusedReason::parse(&reason).unwrap_or(KycRefusedReason::SpecificCase),
            message,
            flags,
        },
        _ => KycOutcome::Validated,
    })
}

/// `POST /_sandbox/kyc/documents/{KycDocumentId}/outcome` with `{"Status": "VALIDATED"}` or
/// `{"Status": "REFUSED", "RefusedReasonType": "DOCUMENT_UNREADABLE", "RefusedReasonMessage":
/// "...", "Flags": ["009004"]}` (message and flags optional): ends the review of a
/// `VALIDATION_ASKED` document as Mangopay's team would (a control request, not Mangopay's
/// API). Answers the document; 400 `invalid_action` from any other status; 404 for an unknown
/// id.
pub(crate) async fn control_kyc_outcome(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let outcome = requested_outcome(&body)?;
    let document = sandbox.shared().set_kyc_outcome(&id, &outcome)?;
    Ok(json_response(StatusCode::OK, &document))
}

/// KYC documents and UBO declarations: views and control requests.
impl Sandbox {
    /// Every KYC document, oldest first, as `GET /kyc/documents/{KycDocumentId}` answers it
    /// (outcomes due by [`crate::Knobs::set_kyc_outcome_after`] applied first).
    pub fn kyc_documents(&self) -> Vec<Value> {
        self.shared().settle_kyc();
        let kyc = self.shared().kyc();
        kyc.documents()
            .iter()
            .map(KycDocumentRecord::to_json)
            .collect()
    }

    /// One KYC document as `GET /kyc/documents/{KycDocumentId}` answers it.
    pub fn kyc_document(&self, id: &str) -> Option<Value> {
        self.shared().settle_kyc();
        self.shared()
            .kyc()
            .document(id)
            .map(KycDocumentRecord::to_json)
    }

    /// The pages of a KYC document, oldest first: their size, digest and format, never their
    /// bytes. `None` for an unknown document.
    pub fn kyc_pages(&self, id: &str) -> Option<Vec<KycPage>> {
        self.shared()
            .kyc()
            .document(id)
            .map(|document| document.pages.clone())
    }

    /// Ends the review of a `VALIDATION_ASKED` KYC document now, as `outcome` says (the
    /// control request `POST /_sandbox/kyc/documents/{KycDocumentId}/outcome`), and returns it
    /// as `GET /kyc/documents/{KycDocumentId}` answers it; the user's `ProofOf…` Ids and
    /// `KYCLevel` follow. Fails, naming the reason, for an unknown id or a document that is
    /// not `VALIDATION_ASKED`.
    pub fn set_kyc_outcome(&self, id: &str, outcome: KycOutcome) -> Result<Value, String> {
        self.shared()
            .set_kyc_outcome(id, &outcome)
            .map_err(|err| err.describe())
    }
}

/// How long after its submission a document or declaration is due, in milliseconds.
pub(crate) fn due_after(submitted_ms: i64, after: Duration) -> i64 {
    let delay_ms = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
    submitted_ms.saturating_add(delay_ms)
}
