//! `MangopayDocument`: a KYC document (one document type sent for a user's verification),
//! mirrored from Mangopay's
//! [KYC Document object](https://docs.mangopay.com/api-reference/kyc-documents/kyc-document-object).
//!
//! A document is created at Mangopay (`CREATED`), takes up to 5 pages
//! ([`MangopayPage`](crate::MangopayPage)), is submitted (`VALIDATION_ASKED`) and is then
//! validated or refused by Mangopay's teams; a validated document may later go
//! `OUT_OF_DATE`. The library never keeps the pages' bytes.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::{Value, json};

use super::page::{MangopayPage, UploadState};
use super::parent::{self, KycUser};
use super::types::{DocumentStatus, DocumentType, read};
use super::user::validate_tag;
use crate::db::{AnyConnection, MultiBackend};
use crate::schema::mangopay_documents as documents;
use crate::sync::body::CreateBody;
use crate::sync::{ApiRequest, Listing, Resource, Scope, SyncInfo, SyncTable, UpdateRequest};
use crate::validate::{FieldErrorKind, ValidationErrors};
use crate::{Db, Error, MangopayClient};

/// The table holding every KYC document's sync columns.
pub const DOCUMENTS: SyncTable = SyncTable::new("mangopay_documents");

/// A KYC document, kept in `mangopay_documents`.
///
/// Build one with [`MangopayDocument::new`], [`save`](Self::save) it, add its pages
/// ([`MangopayPage::add_file`], [`MangopayPage::add_bytes`]), then either enqueue the
/// `create_mangopay_document_and_pages_and_ask_for_validation` job, or call
/// [`create`](Self::create), [`upload_pages`](Self::upload_pages) and
/// [`ask_for_validation`](Self::ask_for_validation) yourself. The worker learns the outcome
/// (`update_mangopay_document_status`, queued for every document awaiting validation by the
/// KYC sweep). A document is never updated: a refused one is replaced by a new document.
#[derive(Debug, Clone, PartialEq)]
pub struct MangopayDocument {
    /// The local id; `None` until the first save.
    pub id: Option<i64>,
    /// `UserId`: the local id of the user the document is about.
    pub user_id: i64,
    /// `Type`.
    pub document_type: DocumentType,
    /// `Tag`.
    pub tag: Option<String>,
    facts: DocumentFacts,
    user: KycUser,
    sync: SyncInfo,
}

/// What Mangopay says about a document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DocumentFacts {
    /// `Status`, as it came (unknown values kept); `None` until created at Mangopay.
    pub status: Option<DocumentStatus>,
    /// `RefusedReasonType` (`DOCUMENT_UNREADABLE`, `DOCUMENT_HAS_EXPIRED`, ...).
    pub refused_reason_type: Option<String>,
    /// `RefusedReasonMessage`.
    pub refused_reason_message: Option<String>,
    /// `Flags`: codes that say more about a refusal.
    pub flags: Vec<String>,
    /// `ProcessedDate`: when Mangopay's teams processed it.
    pub processed_at: Option<DateTime<Utc>>,
    /// `CreationDate`.
    pub mangopay_created_at: Option<DateTime<Utc>>,
    /// When validation was asked: written just before the request is sent, so no page is
    /// added from then on; cleared again if Mangopay refuses the request.
    pub validation_asked_at: Option<DateTime<Utc>>,
    /// How many times its status was checked while it awaited validation.
    pub status_checks: i32,
    /// When it was last checked.
    pub status_checked_at: Option<DateTime<Utc>>,
}

impl MangopayDocument {
    /// A document of `document_type` for the user `user_id` (local id); not saved yet.
    pub fn new(user_id: i64, document_type: DocumentType) -> MangopayDocument {
        MangopayDocument {
            id: None,
            user_id,
            document_type,
            tag: None,
            facts: DocumentFacts::default(),
            user: KycUser::default(),
            sync: SyncInfo::default(),
        }
    }

    /// The same document with `tag` as its tag.
    pub fn with_tag(mut self, tag: impl Into<String>) -> MangopayDocument {
        self.tag = Some(tag.into());
        self
    }

    /// What Mangopay says about the document.
    pub fn facts(&self) -> &DocumentFacts {
        &self.facts
    }

    /// `Status`, as last recorded; `None` until created at Mangopay.
    pub fn status(&self) -> Option<&DocumentStatus> {
        self.facts.status.as_ref()
    }

    /// Every problem with the current field values, or `Ok`. Whether the user may send this
    /// type of document is checked when the row is saved (it depends on the user's row).
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut e = ValidationErrors::new();
        if let DocumentType::Unknown(other) = &self.document_type {
            e.push(
                "document_type",
                FieldErrorKind::NotAllowed(format!("{other} is not a KYC document type")),
            );
        }
        e.check("tag", validate_tag(self.tag.as_deref()));
        e.into_result()
    }

    /// The pages of this document, in upload order.
    pub async fn pages(&self, db: &Db) -> Result<Vec<MangopayPage>, Error> {
        MangopayPage::for_document(db, self.saved_id()?).await
    }

    /// Uploads every page not uploaded yet, in order, each at most once (see
    /// [`MangopayPage::upload`]); stops at the first page that fails. Returns how many pages
    /// were uploaded by this call.
    pub async fn upload_pages(&self, db: &Db, client: &MangopayClient) -> Result<usize, Error> {
        let mut uploaded = 0;
        for page in self.pages(db).await? {
            if matches!(
                page.upload_state(),
                UploadState::Pending | UploadState::Sending
            ) {
                MangopayPage::upload(db, client, page.id()).await?;
                uploaded += 1;
            }
        }
        Ok(uploaded)
    }

    /// What the `create_mangopay_document_and_pages_and_ask_for_validation` job does once the
    /// document `id` is created at Mangopay: uploads its pages not uploaded yet
    /// ([`upload_pages`](Self::upload_pages)) and asks for its validation
    /// ([`ask_for_validation`](Self::ask_for_validation)). A document already submitted sends
    /// nothing. Safe to run again after any failure: it resumes where it stopped.
    pub async fn upload_pages_and_ask_for_validation(
        db: &Db,
        client: &MangopayClient,
        id: i64,
    ) -> Result<(), Error> {
        Self::request_submission(db, id).await?;
        let mut document = Self::get(db, id).await?;
        match document.status() {
            Some(DocumentStatus::Created) => {}
            None => {
                return Err(Error::NotCreated {
                    model: Self::MODEL,
                    id,
                });
            }
            Some(status) => {
                tracing::info!(id, %status, "the document was already submitted");
                return Ok(());
            }
        }
        if let Err(e) = document.upload_pages(db, client).await {
            if e.validation().is_some() {
                // A page's file is missing or changed: the application must fix it and ask
                // again; the sweep does not retry what cannot succeed.
                super::submission::withdraw::<Self>(db, id).await?;
            }
            return Err(e);
        }
        document.ask_for_validation(db, client).await
    }

    /// Records that the document `id` is to be submitted (its pages uploaded, then validation
    /// asked): from then on the KYC sweep resumes a submission that stopped half-way (a worker
    /// that died, a page another call was uploading). The job does it first.
    pub async fn request_submission(db: &Db, id: i64) -> Result<(), Error> {
        super::submission::request::<Self>(db, id).await
    }

    /// The local ids of the documents whose submission was asked for (by the job, or by a
    /// validation request whose answer never came) and stopped half-way: created at Mangopay
    /// and still `CREATED`, with a page to upload or every page uploaded, no page whose
    /// outcome is unknown, none refused (the application decides: a document is not
    /// submitted without a page it meant to send) and none being uploaded now. The KYC sweep
    /// queues their job again.
    pub async fn submissions_to_resume(db: &Db) -> Result<Vec<i64>, Error> {
        use crate::schema::mangopay_pages as pages;
        db.run(|conn| {
            let at = crate::sync::now();
            let busy_or_unknown = pages::table
                .filter(pages::document_id.eq(documents::id))
                .filter(
                    pages::upload_state
                        .eq_any(["unknown", "refused"])
                        .or(pages::upload_state
                            .eq_any(["pending", "sending"])
                            .and(pages::lease_until.gt(at))),
                );
            let to_send = pages::table
                .filter(pages::document_id.eq(documents::id))
                .filter(pages::upload_state.eq_any(["pending", "sending", "uploaded"]));
            documents::table
                .filter(documents::submission_requested_at.is_not_null())
                .filter(documents::status.eq("CREATED"))
                .filter(diesel::dsl::not(diesel::dsl::exists(busy_or_unknown)))
                .filter(diesel::dsl::exists(to_send))
                .order(documents::id)
                .select(documents::id)
                .load::<i64>(conn)
                .map_err(Error::from)
        })
        .await
    }

    /// Submits the document to Mangopay's teams (`PUT` with `Status: VALIDATION_ASKED`) and
    /// records the answer. Only a `CREATED` document can be submitted: any other state is an
    /// [`Error::WrongState`], as is a document with a page not uploaded (pending, in flight or
    /// of unknown outcome) or without any uploaded page, and a user who is not an `OWNER`;
    /// nothing is sent then. A page Mangopay refused is not part of the document.
    ///
    /// Safe to call again: when the submission's answer is lost, the document is read back,
    /// and one Mangopay shows submitted is recorded as such.
    pub async fn ask_for_validation(
        &mut self,
        db: &Db,
        client: &MangopayClient,
    ) -> Result<(), Error> {
        let id = self.saved_id()?;
        // Written before the request: from here on no page is added (a page added while the
        // request is in flight would never be part of the document). The document row is
        // written first, so a concurrent page insert (which writes it first too) waits for
        // this transaction and then sees the mark; the pages are read after it.
        let (model, mangopay_id, user) = db
            .write(move |conn| {
                let (row, model) = crate::sync::load_parts::<MangopayDocument>(conn, id)?;
                let mangopay_id = row.mangopay_id.ok_or(Error::NotCreated {
                    model: Self::MODEL,
                    id,
                })?;
                let wrong = |reason: String| Error::WrongState {
                    model: Self::MODEL,
                    id,
                    reason,
                };
                let at = crate::sync::now();
                let held = diesel::update(
                    documents::table
                        .find(id)
                        .filter(documents::status.eq("CREATED")),
                )
                .set(documents::updated_at.eq(at))
                .execute(conn)?;
                if held == 0 || model.status() != Some(&DocumentStatus::Created) {
                    return Err(wrong(format!(
                        "validation can only be asked for a CREATED document; this one is {}",
                        model.status().map_or("not created", DocumentStatus::as_str)
                    )));
                }
                if !model.user.owner {
                    return Err(Error::ParentNotUsable {
                        model: Self::MODEL,
                        field: "user_id",
                        parent: "MangopayUser",
                        parent_id: model.user_id,
                        reason: "only users of category OWNER can submit documents for \
                                 validation"
                            .into(),
                    });
                }
                let user = model
                    .user
                    .parent
                    .created(Self::MODEL, "user_id", "MangopayUser", model.user_id)?
                    .to_owned();
                let pages = super::page::states(conn, id)?;
                let waiting: Vec<String> = pages
                    .iter()
                    .filter(|(_, state)| {
                        !matches!(state, UploadState::Uploaded | UploadState::Refused)
                    })
                    .map(|(position, state)| format!("page {position} is {state}"))
                    .collect();
                if !waiting.is_empty() {
                    return Err(wrong(format!(
                        "every page must be uploaded first: {}",
                        waiting.join(", ")
                    )));
                }
                if !pages.iter().any(|(_, s)| *s == UploadState::Uploaded) {
                    return Err(wrong("it has no uploaded page".into()));
                }
                diesel::update(
                    documents::table
                        .find(id)
                        .filter(documents::validation_asked_at.is_null()),
                )
                .set(documents::validation_asked_at.eq(Some(at)))
                .execute(conn)?;
                // If the answer never comes, the KYC sweep sends the request again.
                diesel::update(
                    documents::table
                        .find(id)
                        .filter(documents::submission_requested_at.is_null()),
                )
                .set(documents::submission_requested_at.eq(Some(at)))
                .execute(conn)?;
                Ok::<_, Error>((model, mangopay_id, user))
            })
            .await?;
        let path = format!("users/{user}/kyc/documents/{mangopay_id}");
        let asked = client
            .put(&path, &json!({ "Status": "VALIDATION_ASKED" }))
            .await;
        let answer = match asked {
            Ok(answer) => answer,
            Err(error) => {
                // The submission may have gone through with its answer lost: what Mangopay
                // shows now decides.
                let shown = client.get(&model.view_path(&mangopay_id)).await;
                let submitted = |shown: &Value| {
                    shown
                        .get("Status")
                        .and_then(Value::as_str)
                        .is_some_and(|s| rank(s) >= 1)
                };
                match shown {
                    Ok(shown) if submitted(&shown) => {
                        tracing::info!(id, %error, "the submission's answer was lost; Mangopay shows it submitted");
                        shown
                    }
                    shown => {
                        // Mangopay shows it still CREATED: a refusal leaves the document open
                        // for its pages to be fixed; after a failure retrying may fix, the
                        // request may still land, so no page is added until it is settled.
                        let reopen = error.never_sent()
                            || (!error.is_retryable()
                                && shown.as_ref().is_ok_and(|s| {
                                    s.get("Status").and_then(Value::as_str) == Some("CREATED")
                                }));
                        let note = crate::sync::note("validation_not_asked", error.to_string());
                        db.write(move |conn| {
                            let at = crate::sync::now();
                            if reopen {
                                diesel::update(documents::table.find(id))
                                    .set((
                                        documents::validation_asked_at.eq(None::<NaiveDateTime>),
                                        documents::submission_requested_at
                                            .eq(None::<NaiveDateTime>),
                                    ))
                                    .execute(conn)?;
                            }
                            crate::sync::store::note_error(conn, DOCUMENTS, id, &note, at)
                                .map_err(Error::from)
                        })
                        .await?;
                        return Err(error.into());
                    }
                }
            }
        };
        crate::sync::record_answer(db, model, id, answer).await?;
        *self = Self::get(db, id).await?;
        Ok(())
    }

    /// Reads the status of the document `id` from Mangopay if it awaits validation
    /// (`VALIDATION_ASKED`), and records it with the check; a document in any other state is
    /// left alone (nothing is sent). Returns the status recorded.
    pub async fn update_status(
        db: &Db,
        client: &MangopayClient,
        id: i64,
    ) -> Result<Option<DocumentStatus>, Error> {
        let document = Self::get(db, id).await?;
        if document.status() != Some(&DocumentStatus::ValidationAsked) {
            tracing::info!(id, status = ?document.status(), "the document does not await validation; not checked");
            return Ok(document.facts.status);
        }
        super::submission::check_status::<Self>(db, client, id).await?;
        let document = Self::get(db, id).await?;
        match document.status() {
            Some(DocumentStatus::Refused) => tracing::warn!(
                id,
                reason = ?document.facts.refused_reason_type,
                "the KYC document was refused"
            ),
            Some(status) => tracing::info!(id, %status, "KYC document status checked"),
            None => {}
        }
        Ok(document.facts.status)
    }

    /// The local ids of the documents awaiting validation (`VALIDATION_ASKED`), oldest first.
    pub async fn awaiting_validation(db: &Db) -> Result<Vec<i64>, Error> {
        super::submission::awaiting_validation(db, DOCUMENTS).await
    }

    /// The documents of the user `user_id` (local id), oldest first.
    pub async fn for_user(db: &Db, user_id: i64) -> Result<Vec<MangopayDocument>, Error> {
        crate::sync::get_where(db, move |conn| {
            documents::table
                .filter(documents::user_id.eq(user_id))
                .order(documents::id)
                .select(documents::id)
                .load::<i64>(conn)
        })
        .await
    }

    fn saved_id(&self) -> Result<i64, Error> {
        self.id.ok_or(Error::NotSaved { model: Self::MODEL })
    }
}

crate::models::resource_methods!(MangopayDocument, "KYC document");

/// Whether a user with this legal person type (`None`: a natural user) may send a document of
/// `kind`: the refusals Mangopay answers with.
pub(crate) fn type_allowed(kind: &DocumentType, legal: Option<&str>) -> Result<(), String> {
    use DocumentType as T;
    let refused = matches!(
        (legal, kind),
        (
            None,
            T::RegistrationProof | T::ArticlesOfAssociation | T::ShareholderDeclaration
        ) | (Some(_), T::AddressProof)
            | (Some("SOLETRADER"), T::ArticlesOfAssociation)
    );
    if refused {
        Err(format!(
            "{kind} cannot be sent for a {} user",
            legal.unwrap_or("NATURAL")
        ))
    } else {
        Ok(())
    }
}

/// How far along a status is: an answer whose status is behind the recorded one is older.
fn rank(status: &str) -> u8 {
    match status {
        "CREATED" => 0,
        "VALIDATION_ASKED" => 1,
        "OUT_OF_DATE" => 3,
        _ => 2,
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = documents)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite, MultiBackend))]
struct DocumentRow {
    id: i64,
    user_id: i64,
    document_type: String,
    status: Option<String>,
    refused_reason_type: Option<String>,
    refused_reason_message: Option<String>,
    flags: Option<String>,
    processed_at: Option<NaiveDateTime>,
    tag: Option<String>,
    mangopay_created_at: Option<NaiveDateTime>,
    validation_asked_at: Option<NaiveDateTime>,
    status_checks: i32,
    status_checked_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = documents, treat_none_as_null = true)]
struct DocumentFields {
    user_id: i64,
    document_type: String,
    tag: Option<String>,
}

#[derive(AsChangeset, Default)]
#[diesel(table_name = documents)]
struct DocumentFromApi {
    status: Option<Option<String>>,
    refused_reason_type: Option<Option<String>>,
    refused_reason_message: Option<Option<String>>,
    flags: Option<Option<String>>,
    processed_at: Option<Option<NaiveDateTime>>,
    mangopay_created_at: Option<Option<NaiveDateTime>>,
    tag: Option<Option<String>>,
}

impl MangopayDocument {
    fn fields(&self) -> DocumentFields {
        DocumentFields {
            user_id: self.user_id,
            document_type: self.document_type.as_str().to_owned(),
            tag: self.tag.clone(),
        }
    }
}

impl Resource for MangopayDocument {
    const MODEL: &'static str = "MangopayDocument";
    const TABLE: SyncTable = DOCUMENTS;
    const UPDATABLE: bool = false;

    crate::sync::row_accessors!();
    fn validate(&self) -> Result<(), ValidationErrors> {
        MangopayDocument::validate(self)
    }
    fn app_tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    fn load(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<Self>> {
        let row = documents::table
            .find(id)
            .select(DocumentRow::as_select())
            .first::<DocumentRow>(conn)
            .optional()?;
        Ok(row.map(|r| {
            let utc = |t: Option<NaiveDateTime>| t.map(|t| t.and_utc());
            MangopayDocument {
                id: Some(r.id),
                user_id: r.user_id,
                document_type: DocumentType::from_api(&r.document_type),
                tag: r.tag,
                facts: DocumentFacts {
                    status: r.status.as_deref().map(DocumentStatus::from_api),
                    refused_reason_type: r.refused_reason_type,
                    refused_reason_message: r.refused_reason_message,
                    flags: r
                        .flags
                        .and_then(|f| serde_json::from_str(&f).ok())
                        .unwrap_or_default(),
                    processed_at: utc(r.processed_at),
                    mangopay_created_at: utc(r.mangopay_created_at),
                    validation_asked_at: utc(r.validation_asked_at),
                    status_checks: r.status_checks,
                    status_checked_at: utc(r.status_checked_at),
                },
                user: KycUser::default(),
                sync: SyncInfo::default(),
            }
        }))
    }

    fn resolve(&mut self, conn: &mut AnyConnection) -> Result<(), Error> {
        self.user = parent::kyc_user(conn, "user_id", self.user_id)?;
        if let Err(why) = type_allowed(&self.document_type, self.user.legal_person_type.as_deref())
        {
            let mut e = ValidationErrors::new();
            e.push("document_type", FieldErrorKind::NotAllowed(why));
            return Err(Error::Validation(e));
        }
        Ok(())
    }

    fn parents_ready(&self) -> Result<(), Error> {
        self.user
            .parent
            .ready(Self::MODEL, "user_id", "MangopayUser", self.user_id)
    }

    crate::models::field_writes!(documents);

    fn apply_api_data(
        &self,
        conn: &mut AnyConnection,
        id: i64,
        p: &Value,
        scope: Scope,
    ) -> QueryResult<()> {
        let status = read::text(p, "Status");
        if let Some(Some(new)) = &status {
            let recorded = documents::table
                .find(id)
                .select(documents::status)
                .first::<Option<String>>(conn)
                .optional()?
                .flatten();
            if recorded.is_some_and(|old| rank(new) < rank(&old)) {
                tracing::info!(id, status = %new, "an older answer is not recorded over a later status");
                return Ok(());
            }
        }
        let flags = p.get("Flags").map(|f| match f {
            Value::Array(items) if !items.is_empty() => Some(f.to_string()),
            _ => None,
        });
        let changes = DocumentFromApi {
            status,
            refused_reason_type: read::text(p, "RefusedReasonType"),
            refused_reason_message: read::text(p, "RefusedReasonMessage"),
            flags,
            processed_at: read::timestamp(p, "ProcessedDate"),
            mangopay_created_at: read::timestamp(p, "CreationDate"),
            tag: if scope == Scope::All {
                read::text(p, "Tag")
            } else {
                None
            },
        };
        if changes.status.is_none()
            && changes.refused_reason_type.is_none()
            && changes.refused_reason_message.is_none()
            && changes.flags.is_none()
            && changes.processed_at.is_none()
            && changes.mangopay_created_at.is_none()
            && changes.tag.is_none()
        {
            return Ok(());
        }
        diesel::update(documents::table.find(id))
            .set(&changes)
            .execute(conn)
            .map(drop)
    }

    fn create_request(&self, tag: Option<&str>) -> Result<ApiRequest, Error> {
        let user =
            self.user
                .parent
                .created(Self::MODEL, "user_id", "MangopayUser", self.user_id)?;
        let mut b = CreateBody::new();
        b.put("Type", Some(self.document_type.as_str()))
            .put("Tag", tag);
        Ok(ApiRequest {
            path: format!("users/{user}/kyc/documents"),
            body: b.finish(),
        })
    }

    fn update_request(&self, _tag: Option<&str>) -> Result<UpdateRequest, Error> {
        Err(super::transfer::not_updatable(Self::MODEL, self.id))
    }

    fn view_path(&self, mangopay_id: &str) -> String {
        format!("kyc/documents/{mangopay_id}")
    }

    fn listing(&self) -> Listing {
        Listing {
            path: format!(
                "users/{}/kyc/documents",
                self.user.parent.mangopay_id.as_deref().unwrap_or_default()
            ),
            date_filters: true,
            filters: Vec::new(),
            item_path: None,
            untagged: false,
        }
    }

    fn check_found(&self, found: &Value) -> Result<(), String> {
        let user = self.user.parent.mangopay_id.as_deref().unwrap_or_default();
        match found.get("UserId").and_then(Value::as_str) {
            Some(u) if u == user => {}
            Some(u) => return Err(format!("it belongs to user {u}, not to {user}")),
            None => return Err("it is not a KYC document".into()),
        }
        match found.get("Type").and_then(Value::as_str) {
            Some(t) if t == self.document_type.as_str() => Ok(()),
            Some(t) => Err(format!("it is a {t}, not a {}", self.document_type)),
            None => Err("it is not a KYC document".into()),
        }
    }
}
