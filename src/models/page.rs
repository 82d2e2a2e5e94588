//! `MangopayPage`: one file of a KYC document, uploaded to Mangopay base64-encoded
//! ("Create a KYC Document Page": `POST /users/{UserId}/kyc/documents/{KycDocumentId}/pages`).
//!
//! The row records where the file is, what the checks found (format, size, SHA-256) and how
//! far its upload went; never the bytes. A file comes either from the application's own local
//! path ([`MangopayPage::add_file`]: read when uploaded, never removed by the library) or as
//! bytes ([`MangopayPage::add_bytes`]: staged in a private temporary file, removed once the
//! upload is settled, uploaded or refused). Nothing is ever fetched from a URL.
//!
//! An upload follows the write-ahead rule of every create: its idempotency key is committed on
//! the row (`sending`) before the request goes out, and a page whose answer was lost is sent
//! again with the same key, so Mangopay answers 409 and its first answer is read back: a page
//! is never uploaded twice. Mangopay keeps a key's first answer for 24 hours and pages cannot
//! be listed, so a page whose outcome cannot be learnt (its first answer was itself a server
//! error, or its key is older than that) is marked `unknown` and left to an operator
//! ([`MangopayPage::resolve_unknown`]), never resent blindly.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::kyc_file::{FileFacts, FileFormat, check_page_file, page_body};
use crate::db::{AnyConnection, MultiBackend};
use crate::schema::{mangopay_documents as documents, mangopay_pages as pages, mangopay_users};
use crate::sync::{Lease, lease_duration, note, now};
use crate::validate::{FieldErrorKind, ValidationErrors};
use crate::{Db, Error, IdempotencyKey, MangopayClient};

const MODEL: &str = "MangopayPage";

/// Where a page's file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageSource {
    /// The application's own file, read when the page is uploaded; the library never removes
    /// it. It must not change until then (its SHA-256 is checked again).
    File(PathBuf),
    /// The library's staged copy of bytes the application handed over, removed once the
    /// upload is settled (uploaded or refused).
    Staged(PathBuf),
}

impl PageSource {
    /// The file's path.
    pub fn path(&self) -> &Path {
        match self {
            PageSource::File(p) | PageSource::Staged(p) => p,
        }
    }
}

/// How far a page's upload went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadState {
    /// Not sent yet.
    Pending,
    /// Sent (or about to be) with the key on the row; its answer is not recorded yet. The next
    /// upload resends the same key.
    Sending,
    /// Mangopay took it.
    Uploaded,
    /// Mangopay refused it (`last_error` says why); it is not part of the document.
    Refused,
    /// Sent, and whether Mangopay kept it cannot be learnt: an operator decides
    /// ([`MangopayPage::resolve_unknown`]).
    Unknown,
}

impl UploadState {
    /// The state as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            UploadState::Pending => "pending",
            UploadState::Sending => "sending",
            UploadState::Uploaded => "uploaded",
            UploadState::Refused => "refused",
            UploadState::Unknown => "unknown",
        }
    }

    fn from_db(text: &str) -> UploadState {
        match text {
            "sending" => UploadState::Sending,
            "uploaded" => UploadState::Uploaded,
            "refused" => UploadState::Refused,
            "unknown" => UploadState::Unknown,
            _ => UploadState::Pending,
        }
    }
}

impl fmt::Display for UploadState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operator's decision about a page whose upload outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageResolution {
    /// Mangopay shows the page (the operator checked the document in the Dashboard): it is
    /// recorded as uploaded.
    WasUploaded,
    /// Mangopay does not show it: the next upload sends it with a new key.
    SendAgain,
}

/// A KYC document page, kept in `mangopay_pages` (without its bytes).
#[derive(Debug, Clone, PartialEq)]
pub struct MangopayPage {
    id: i64,
    document_id: i64,
    position: i32,
    source: PageSource,
    format: Option<FileFormat>,
    size: u64,
    sha256: String,
    upload_state: UploadState,
    upload_attempts: i32,
    uploaded_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = pages)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite, MultiBackend))]
struct PageRow {
    id: i64,
    document_id: i64,
    position: i32,
    source_kind: String,
    source_path: String,
    file_format: String,
    size_bytes: i64,
    sha256: String,
    upload_state: String,
    upload_key: Option<String>,
    upload_key_at: Option<NaiveDateTime>,
    upload_attempts: i32,
    uploaded_at: Option<NaiveDateTime>,
    lease_owner: Option<String>,
    lease_until: Option<NaiveDateTime>,
    last_error: Option<String>,
}

impl PageRow {
    fn page(&self) -> MangopayPage {
        let path = PathBuf::from(&self.source_path);
        MangopayPage {
            id: self.id,
            document_id: self.document_id,
            position: self.position,
            source: if self.source_kind == "staged" {
                PageSource::Staged(path)
            } else {
                PageSource::File(path)
            },
            format: FileFormat::from_name(&self.file_format),
            size: u64::try_from(self.size_bytes).unwrap_or_default(),
            sha256: self.sha256.clone(),
            upload_state: UploadState::from_db(&self.upload_state),
            upload_attempts: self.upload_attempts,
            uploaded_at: self.uploaded_at.map(|t| t.and_utc()),
            last_error: self.last_error.clone(),
        }
    }
}

/// What a claimed upload sends.
struct Send {
    key: IdempotencyKey,
    path: String,
    source: PageSource,
    sha256: String,
    /// The key was sent before: its stored answer is read first.
    resend: bool,
    /// The key was first sent more than 23 hours (`sync::KEY_RESENT_FOR`) ago: unless its stored answer can
    /// still be read, the outcome cannot be learnt.
    expired: bool,
}

enum Claim {
    /// Nothing to send: the page is already uploaded.
    Done,
    Send(Send),
}

impl MangopayPage {
    /// The local id.
    pub fn id(&self) -> i64 {
        self.id
    }
    /// The document's local id.
    pub fn document_id(&self) -> i64 {
        self.document_id
    }
    /// Its place in the document, from 1: pages are uploaded in this order.
    pub fn position(&self) -> i32 {
        self.position
    }
    /// Where its file is.
    pub fn source(&self) -> &PageSource {
        &self.source
    }
    /// The file's format, read from its content.
    pub fn format(&self) -> Option<FileFormat> {
        self.format
    }
    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
    /// The file's SHA-256, lower-case hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
    /// How far its upload went.
    pub fn upload_state(&self) -> UploadState {
        self.upload_state
    }
    /// How many times an upload was started.
    pub fn upload_attempts(&self) -> i32 {
        self.upload_attempts
    }
    /// When Mangopay took it.
    pub fn uploaded_at(&self) -> Option<DateTime<Utc>> {
        self.uploaded_at
    }
    /// Why its last upload failed, in the shape of Mangopay's error report.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Adds the application's local file at `path` as the next page of the document
    /// `document_id` (local id): the file is read and checked now (format by content, size,
    /// see [`crate::models::kyc_file`]), and read again when uploaded. The document must not
    /// have been submitted, nor have 5 pages already. Nothing is sent.
    pub async fn add_file(
        db: &Db,
        document_id: i64,
        path: impl AsRef<Path>,
    ) -> Result<MangopayPage, Error> {
        let path = path.as_ref().to_path_buf();
        let (path, bytes) = tokio::task::spawn_blocking(move || {
            let full = std::fs::canonicalize(&path)?;
            let bytes = std::fs::read(&full)?;
            Ok::<_, std::io::Error>((full, bytes))
        })
        .await
        .map_err(|e| unreadable(e.to_string()))?
        .map_err(|e| unreadable(e.to_string()))?;
        let facts = check_page_file("file", &bytes, &db.kyc().limits)?;
        drop(bytes);
        insert(db, document_id, PageSource::File(path), facts).await
    }

    /// Adds `bytes` as the next page of the document `document_id` (local id): checked now,
    /// then staged in a new file of the staging directory
    /// ([`KycSettings::staging_dir`](crate::models::kyc_file::KycSettings)) until the page is
    /// uploaded or refused, when the copy is removed. The database never holds them. The
    /// document must not have been submitted, nor have 5 pages already. Nothing is sent.
    pub async fn add_bytes(db: &Db, document_id: i64, bytes: &[u8]) -> Result<MangopayPage, Error> {
        let facts = check_page_file("file", bytes, &db.kyc().limits)?;
        let dir = db.kyc().staging_dir.clone();
        let prefix = staged_prefix(db);
        let bytes = bytes.to_vec();
        let staged = tokio::task::spawn_blocking(move || stage(&dir, &prefix, &bytes))
            .await
            .map_err(|e| Error::PageFile {
                path: String::new(),
                reason: e.to_string(),
            })??;
        let added = insert(db, document_id, PageSource::Staged(staged.clone()), facts).await;
        if added.is_err() {
            remove_staged(&PageSource::Staged(staged));
        }
        added
    }

    /// Loads the page `id`.
    pub async fn get(db: &Db, id: i64) -> Result<MangopayPage, Error> {
        db.run(move |conn| load(conn, id)?.map(|r| r.page()).ok_or(not_found(id)))
            .await
    }

    /// The pages of the document `document_id` (local id), in upload order.
    pub async fn for_document(db: &Db, document_id: i64) -> Result<Vec<MangopayPage>, Error> {
        db.run(move |conn| {
            let rows = pages::table
                .filter(pages::document_id.eq(document_id))
                .order(pages::position)
                .select(PageRow::as_select())
                .load::<PageRow>(conn)?;
            Ok::<_, Error>(rows.iter().map(PageRow::page).collect())
        })
        .await
    }

    /// Uploads the page `id` to its document at Mangopay, at most once: an uploaded page sends
    /// nothing; a page whose answer was lost is sent again with the same idempotency key. The
    /// document must have been created at Mangopay ([`Error::ParentNotCreated`]) and still be
    /// `CREATED`. The file is read and checked again, and must be the one recorded (same
    /// SHA-256).
    ///
    /// A refusal by Mangopay marks the page `refused` (the error is returned and kept on the
    /// row); a failure that retrying may fix leaves it `sending` for the next call; a page
    /// whose outcome cannot be learnt is marked `unknown` ([`Error::NeedsOperator`]). A staged
    /// copy is removed once the page is uploaded or refused. Returns the page's state.
    pub async fn upload(db: &Db, client: &MangopayClient, id: i64) -> Result<UploadState, Error> {
        // A page never sent has its file read and checked before anything is written: a
        // missing or changed file is an error that leaves the row as it was.
        let first = db
            .run(move |conn| load(conn, id)?.ok_or(not_found(id)))
            .await?;
        let mut checked = None;
        if first.upload_key.is_none() && first.upload_state == UploadState::Pending.as_str() {
            let page = first.page();
            checked = Some(read_checked(&page.source, &first.sha256, db).await?);
        }
        let lease = Lease::random_for("page");
        let until = now() + lease_duration(client.config().timeout());
        let me = lease.owner().to_owned();
        let send = match db.write(move |conn| claim(conn, id, &me, until)).await? {
            Claim::Done => return Ok(UploadState::Uploaded),
            Claim::Send(send) => send,
        };
        // A key sent before may have been answered with the answer lost: Mangopay's stored
        // first answer settles it without reading the file again (the application may have
        // moved it since). When nothing is stored (or it cannot be read), resending the same
        // key is safe: Mangopay answers 409 to a key it has seen.
        let stored = if send.resend {
            client
                .stored_response(&send.key)
                .await
                .ok()
                .map(|s| s.into_result().map(|_| true))
        } else {
            None
        };
        let sent = match stored {
            Some(stored) => stored,
            None if send.expired => {
                return expire(db, id, &send).await;
            }
            None => {
                let read = match checked.take().filter(|_| !send.resend) {
                    Some(bytes) => Ok(bytes),
                    None => read_checked(&send.source, &send.sha256, db).await,
                };
                let body = match read {
                    Ok(bytes) => page_body(&bytes),
                    Err(e) => {
                        release(db, id, &lease, None).await?;
                        return Err(e);
                    }
                };
                let sent = client
                    .post_without_answer(&send.path, &body, &send.key)
                    .await;
                drop(body);
                sent
            }
        };
        let (state, error) = match sent {
            Ok(replayed) => {
                tracing::info!(id, replayed, "KYC page uploaded");
                (UploadState::Uploaded, None)
            }
            Err(error) => match verdict(&error, send.resend) {
                PageVerdict::Unknown => {
                    let why = format!(
                        "the first answer to this upload was a server error ({error}); whether \
                         Mangopay kept the page cannot be learnt"
                    );
                    tracing::error!(id, %error, "KYC page upload outcome unknown; needs an operator");
                    let note = note("outcome_unknown", why.clone());
                    settle(db, id, &send.key, UploadState::Unknown, Some(note)).await?;
                    return Err(Error::NeedsOperator {
                        model: MODEL,
                        id,
                        key: send.key.to_string(),
                        reason: why,
                        candidates: Vec::new(),
                    });
                }
                PageVerdict::Refused => {
                    tracing::warn!(id, %error, "Mangopay refused the KYC page");
                    (UploadState::Refused, Some(error))
                }
                PageVerdict::NewKey => {
                    let stored = serde_json::to_string(&error.to_stored()).unwrap_or_default();
                    tracing::warn!(id, %error, "the page's key holds an answer to a request never processed; a new key is used next");
                    new_key(db, id, &send.key, stored).await?;
                    return Err(error.into());
                }
                PageVerdict::Retry => {
                    let stored = serde_json::to_string(&error.to_stored()).unwrap_or_default();
                    release(db, id, &lease, Some(stored)).await?;
                    return Err(error.into());
                }
            },
        };
        let stored = error
            .as_ref()
            .map(|e| serde_json::to_string(&e.to_stored()).unwrap_or_default());
        if !settle(db, id, &send.key, state, stored).await? {
            // Someone else moved the page on meanwhile (an operator, or an upload that took
            // over after this one's lease ended): what it is now is theirs.
            let current = Self::get(db, id).await?;
            tracing::warn!(id, now = %current.upload_state, "the page changed while its upload was in flight");
            return match current.upload_state {
                UploadState::Uploaded => Ok(UploadState::Uploaded),
                _ => Err(Error::Busy {
                    model: MODEL,
                    id,
                    until: Utc::now(),
                }),
            };
        }
        remove_staged(&send.source);
        match error {
            None => Ok(UploadState::Uploaded),
            Some(error) => Err(error.into()),
        }
    }

    /// Removes the staged copies in the staging directory that no page needs any more: files
    /// the library staged for this database (`page-{database}-*.staged`, `{database}` a digest
    /// of its URL, so deployments sharing a directory leave each other's copies alone) that no
    /// page still to upload (pending, sending, unknown) refers to, left behind when a process stopped between staging and recording,
    /// or between settling and removing. Files changed in the last `grace` are kept (a page
    /// may be being added). The KYC sweep calls it; returns how many were removed.
    pub async fn remove_orphaned_staged_files(
        db: &Db,
        grace: std::time::Duration,
    ) -> Result<usize, Error> {
        let dir = db.kyc().staging_dir.clone();
        let prefix = staged_prefix(db);
        let needed = db
            .run(|conn| {
                pages::table
                    .filter(pages::source_kind.eq("staged"))
                    .filter(pages::upload_state.eq_any(["pending", "sending", "unknown"]))
                    .select(pages::source_path)
                    .load::<String>(conn)
                    .map_err(Error::from)
            })
            .await?;
        let needed: std::collections::HashSet<PathBuf> =
            needed.into_iter().map(PathBuf::from).collect();
        tokio::task::spawn_blocking(move || orphans_removed(&dir, &prefix, &needed, grace))
            .await
            .map_err(|e| Error::PageFile {
                path: String::new(),
                reason: e.to_string(),
            })?
    }

    /// For operators: settles a page whose upload outcome is `unknown`, after checking the
    /// document at Mangopay (the Dashboard shows its pages; the API does not). Any other state
    /// is an [`Error::WrongState`].
    pub async fn resolve_unknown(
        db: &Db,
        id: i64,
        resolution: PageResolution,
    ) -> Result<MangopayPage, Error> {
        let page = db
            .write(move |conn| {
                let row = load(conn, id)?.ok_or(not_found(id))?;
                if row.upload_state != "unknown" {
                    return Err(Error::WrongState {
                        model: MODEL,
                        id,
                        reason: format!(
                            "only a page whose upload outcome is unknown can be resolved; this \
                             one is {}",
                            row.upload_state
                        ),
                    });
                }
                let at = now();
                let target = pages::table
                    .find(id)
                    .filter(pages::upload_state.eq("unknown"));
                match resolution {
                    PageResolution::WasUploaded => diesel::update(target)
                        .set((
                            pages::upload_state.eq("uploaded"),
                            pages::uploaded_at.eq(Some(at)),
                            pages::updated_at.eq(at),
                        ))
                        .execute(conn)?,
                    PageResolution::SendAgain => diesel::update(target)
                        .set((
                            pages::upload_state.eq("pending"),
                            pages::upload_key.eq(None::<String>),
                            pages::upload_key_at.eq(None::<NaiveDateTime>),
                            pages::updated_at.eq(at),
                        ))
                        .execute(conn)?,
                };
                Ok(load(conn, id)?.ok_or(not_found(id))?.page())
            })
            .await?;
        if page.upload_state == UploadState::Uploaded {
            remove_staged(&page.source);
        }
        Ok(page)
    }
}

/// What an upload's failure means for the page.
#[derive(Debug, PartialEq, Eq)]
enum PageVerdict {
    /// Mangopay refused the page itself: it is not part of the document.
    Refused,
    /// The key's stored first answer is a server error: whether Mangopay kept the page
    /// cannot be learnt.
    Unknown,
    /// The key's stored first answer is to a request Mangopay never processed (rate limit,
    /// credentials): the key is spent and the next upload needs a new one.
    NewKey,
    /// Retrying may help: the key stays for the next upload.
    Retry,
}

/// The verdict on a failed upload; `resend`: the key had been sent before.
fn verdict(error: &crate::ApiError, resend: bool) -> PageVerdict {
    let Some(status) = error.status() else {
        return PageVerdict::Retry;
    };
    if error.never_sent() {
        return PageVerdict::Retry;
    }
    let replayed = error.replayed();
    match status {
        // Never looked at (credentials, permissions, the rate limit): as a stored answer it
        // blocks the key; as a direct one it leaves the key unused.
        401 | 403 | 407 | 429 if replayed => PageVerdict::NewKey,
        401 | 403 | 407 | 429 => PageVerdict::Retry,
        408 | 500.. if replayed => PageVerdict::Unknown,
        408 | 500.. => PageVerdict::Retry,
        // A 4xx to a key sent before, not read back: it may answer the resend itself (a
        // proxy, a rule checked before the key), not the page; the next upload reads the
        // key's stored answer first.
        400..=499 if resend && !replayed => PageVerdict::Retry,
        400..=499 => PageVerdict::Refused,
        _ => PageVerdict::Retry,
    }
}

/// The position and upload state of every page of the document `document_id`.
pub(crate) fn states(
    conn: &mut AnyConnection,
    document_id: i64,
) -> QueryResult<Vec<(i32, UploadState)>> {
    let rows = pages::table
        .filter(pages::document_id.eq(document_id))
        .order(pages::position)
        .select((pages::position, pages::upload_state))
        .load::<(i32, String)>(conn)?;
    Ok(rows
        .into_iter()
        .map(|(p, s)| (p, UploadState::from_db(&s)))
        .collect())
}

fn load(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<PageRow>> {
    pages::table
        .find(id)
        .select(PageRow::as_select())
        .first::<PageRow>(conn)
        .optional()
}

fn not_found(id: i64) -> Error {
    Error::NotFound { model: MODEL, id }
}

fn unreadable(reason: String) -> Error {
    let mut e = ValidationErrors::new();
    e.push(
        "file",
        FieldErrorKind::NotAllowed(format!("cannot be read: {reason}")),
    );
    Error::Validation(e)
}

/// Writes `bytes` to a new file of `dir` named `{prefix}….staged` that only this user can
/// read, and keeps it. The directory is created readable by this user only.
fn stage(dir: &Path, prefix: &str, bytes: &[u8]) -> Result<PathBuf, Error> {
    let failed = |e: std::io::Error| Error::PageFile {
        path: dir.display().to_string(),
        reason: e.to_string(),
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(failed)?;
    let mut file = tempfile::Builder::new()
        .prefix(prefix)
        .suffix(".staged")
        .tempfile_in(dir)
        .map_err(failed)?;
    file.write_all(bytes).map_err(failed)?;
    file.as_file().sync_all().map_err(failed)?;
    let (_, path) = file.keep().map_err(|e| failed(e.error))?;
    Ok(path)
}

/// The name prefix of this database's staged copies: `page-` and a digest of its URL.
fn staged_prefix(db: &Db) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(db.url().redacted().as_bytes());
    let tag: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("page-{tag}-")
}

/// Removes from `dir` the staged copies named `{prefix}*.staged` not in `needed` and older
/// than `grace`.
fn orphans_removed(
    dir: &Path,
    prefix: &str,
    needed: &std::collections::HashSet<PathBuf>,
    grace: std::time::Duration,
) -> Result<usize, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => {
            return Err(Error::PageFile {
                path: dir.display().to_string(),
                reason: e.to_string(),
            });
        }
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(prefix) && name.ends_with(".staged")) {
            continue;
        }
        let path = entry.path();
        let settled_for = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok());
        if needed.contains(&path) || settled_for.is_none_or(|age| age < grace) {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "could not remove an orphaned staged KYC page");
            }
        }
    }
    if removed > 0 {
        tracing::info!(removed, dir = %dir.display(), "orphaned staged KYC pages removed");
    }
    Ok(removed)
}

/// Removes a staged copy; an application's own file is left alone.
fn remove_staged(source: &PageSource) {
    if let PageSource::Staged(path) = source {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "could not remove a staged KYC page");
            }
        }
    }
}

/// Inserts a page row at the next position of the document, if it takes one more page.
async fn insert(
    db: &Db,
    document_id: i64,
    source: PageSource,
    facts: FileFacts,
) -> Result<MangopayPage, Error> {
    let max_pages = db.kyc().limits.max_pages.min(5) as i32;
    db.write(move |conn| {
        // The document row is written first: a submission in flight (which writes it first
        // too) and this insert wait for each other, so a page is never added to a document
        // whose validation request is on its way.
        let at = now();
        let open = diesel::update(
            documents::table
                .find(document_id)
                .filter(documents::validation_asked_at.is_null())
                .filter(
                    documents::status
                        .is_null()
                        .or(documents::status.eq("CREATED")),
                ),
        )
        .set(documents::updated_at.eq(at))
        .execute(conn)?;
        if open == 0 {
            let document = documents::table
                .find(document_id)
                .select(documents::status)
                .first::<Option<String>>(conn)
                .optional()?;
            let Some(status) = document else {
                let mut e = ValidationErrors::new();
                e.push(
                    "document_id",
                    FieldErrorKind::NotAllowed(format!(
                        "there is no MangopayDocument with id {document_id}"
                    )),
                );
                return Err(Error::Validation(e));
            };
            let status = status.unwrap_or_else(|| "CREATED".into());
            return Err(Error::WrongState {
                model: "MangopayDocument",
                id: document_id,
                reason: if status == "CREATED" {
                    "pages can only be added before validation is asked; it is being asked now"
                        .into()
                } else {
                    format!("pages can only be added while the document is CREATED; it is {status}")
                },
            });
        }
        let last = pages::table
            .filter(pages::document_id.eq(document_id))
            .select(diesel::dsl::max(pages::position))
            .first::<Option<i32>>(conn)?
            .unwrap_or(0);
        if last >= max_pages {
            let mut e = ValidationErrors::new();
            e.push(
                "file",
                FieldErrorKind::NotAllowed(format!(
                    "the document already has {last} pages: at most {max_pages} are taken"
                )),
            );
            return Err(Error::Validation(e));
        }
        let (kind, path) = match &source {
            PageSource::File(p) => ("file", p),
            PageSource::Staged(p) => ("staged", p),
        };
        let id = diesel::insert_into(pages::table)
            .values((
                pages::document_id.eq(document_id),
                pages::position.eq(last + 1),
                pages::source_kind.eq(kind),
                pages::source_path.eq(path.display().to_string()),
                pages::file_format.eq(facts.format.as_str()),
                pages::size_bytes.eq(i64::try_from(facts.size).unwrap_or(i64::MAX)),
                pages::sha256.eq(&facts.sha256),
                pages::created_at.eq(at),
                pages::updated_at.eq(at),
            ))
            .returning(pages::id)
            .get_result::<i64>(conn)?;
        Ok(load(conn, id)?.ok_or(not_found(id))?.page())
    })
    .await
}

/// Takes the page for one upload: its key (committed before anything is sent), the path to
/// send it to, and where its file is.
fn claim(
    conn: &mut AnyConnection,
    id: i64,
    me: &str,
    until: NaiveDateTime,
) -> Result<Claim, Error> {
    let row = load(conn, id)?.ok_or(not_found(id))?;
    let at = now();
    match UploadState::from_db(&row.upload_state) {
        UploadState::Uploaded => return Ok(Claim::Done),
        state @ (UploadState::Refused | UploadState::Unknown) => {
            return Err(Error::WrongState {
                model: MODEL,
                id,
                reason: format!("the page is {state}: it is not sent again"),
            });
        }
        UploadState::Pending | UploadState::Sending => {}
    }
    if let (Some(owner), Some(held)) = (&row.lease_owner, row.lease_until)
        && owner != me
        && held > at
    {
        return Err(Error::Busy {
            model: MODEL,
            id,
            until: held.and_utc(),
        });
    }
    let (status, mangopay_id, user_id) = documents::table
        .find(row.document_id)
        .select((
            documents::status,
            documents::mangopay_id,
            documents::user_id,
        ))
        .first::<(Option<String>, Option<String>, i64)>(conn)?;
    let not_created = Error::ParentNotCreated {
        model: MODEL,
        field: "document_id",
        parent: "MangopayDocument",
        parent_id: row.document_id,
    };
    let document = mangopay_id.ok_or(not_created)?;
    if status.as_deref() != Some("CREATED") {
        return Err(Error::WrongState {
            model: MODEL,
            id,
            reason: format!(
                "pages can only be uploaded while the document is CREATED; it is {}",
                status.as_deref().unwrap_or("unknown")
            ),
        });
    }
    let user = mangopay_users::table
        .find(user_id)
        .select(mangopay_users::mangopay_id)
        .first::<Option<String>>(conn)?
        .ok_or(Error::ParentNotCreated {
            model: "MangopayDocument",
            field: "user_id",
            parent: "MangopayUser",
            parent_id: user_id,
        })?;
    let crate::sync::KeyToSend {
        key,
        resend,
        expired,
    } = crate::sync::key_to_send(
        "mangopay_pages",
        id,
        "upload_key",
        row.upload_key.as_ref(),
        row.upload_key_at,
        at,
    )?;
    // A compare-and-set on what was read: of two uploads claiming the page at once, one
    // takes it and the other is told the page is busy; neither sends a key the other chose.
    let claimed = diesel::update(
        pages::table
            .find(id)
            .filter(pages::upload_state.eq(&row.upload_state))
            .filter(pages::upload_attempts.eq(row.upload_attempts))
            .filter(pages::lease_until.is_null().or(pages::lease_until.le(at))),
    )
    .set((
        pages::upload_state.eq("sending"),
        pages::upload_key.eq(Some(key.as_str())),
        pages::upload_key_at.eq(row.upload_key_at.or(Some(at))),
        pages::upload_attempts.eq(pages::upload_attempts + 1),
        pages::lease_owner.eq(Some(me)),
        pages::lease_until.eq(Some(until)),
        pages::updated_at.eq(at),
    ))
    .execute(conn)?;
    if claimed != 1 {
        return Err(Error::Busy {
            model: MODEL,
            id,
            until: Utc::now(),
        });
    }
    let page = row.page();
    Ok(Claim::Send(Send {
        key,
        path: format!("users/{user}/kyc/documents/{document}/pages"),
        source: page.source,
        sha256: row.sha256,
        resend,
        expired,
    }))
}

/// Reads the page's file and checks that it is the one recorded.
async fn read_checked(source: &PageSource, sha256: &str, db: &Db) -> Result<Vec<u8>, Error> {
    let path = source.path().to_path_buf();
    let bytes = tokio::task::spawn_blocking(move || std::fs::read(path))
        .await
        .map_err(|e| unreadable(e.to_string()))?
        .map_err(|e| unreadable(e.to_string()))?;
    let facts = check_page_file("file", &bytes, &db.kyc().limits)?;
    if facts.sha256 != sha256 {
        let mut e = ValidationErrors::new();
        e.push(
            "file",
            FieldErrorKind::NotAllowed(format!(
                "{} changed since the page was added (its SHA-256 differs)",
                source.path().display()
            )),
        );
        return Err(Error::Validation(e));
    }
    Ok(bytes)
}

/// Records the settled state `state` of the page sent with `key` and lets it go. Returns
/// whether it did: nothing is written when the page no longer waits for that key's answer.
async fn settle(
    db: &Db,
    id: i64,
    key: &IdempotencyKey,
    state: UploadState,
    error: Option<String>,
) -> Result<bool, Error> {
    let done = state == UploadState::Uploaded;
    super::child::settle(
        db,
        super::child::PAGES,
        id,
        key,
        state.as_str(),
        done,
        error,
    )
    .await
}

/// The key sent is blocked by a stored answer to a request Mangopay never processed: the page
/// goes back to `pending` without it, so its next upload uses a new key.
async fn new_key(db: &Db, id: i64, key: &IdempotencyKey, error: String) -> Result<(), Error> {
    super::child::give_up_key(db, super::child::PAGES, id, key, error).await
}

/// The key was first sent too long ago for Mangopay to still tell its answer, and none could
/// be read: the page is marked `unknown` for an operator.
async fn expire(db: &Db, id: i64, send: &Send) -> Result<UploadState, Error> {
    let why = format!(
        "the upload with key {} was first sent more than 23 hours ago and its answer was never \
         recorded; Mangopay keeps answers for 24 hours only",
        send.key
    );
    let note = note("outcome_unknown", why.clone());
    settle(db, id, &send.key, UploadState::Unknown, Some(note)).await?;
    Err(Error::NeedsOperator {
        model: MODEL,
        id,
        key: send.key.to_string(),
        reason: why,
        candidates: Vec::new(),
    })
}

/// Lets the page go without settling it, noting `error` if there is one.
async fn release(db: &Db, id: i64, lease: &Lease, error: Option<String>) -> Result<(), Error> {
    super::child::release(db, super::child::PAGES, id, lease, error).await
}
