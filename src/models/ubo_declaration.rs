//! `MangopayUboDeclaration`: the declaration of the ultimate beneficial owners (UBOs) of a
//! legal user of type `BUSINESS` or `PARTNERSHIP`, mirrored from Mangopay's
//! [UBO Declaration object](https://docs.mangopay.com/api-reference/ubo-declarations/ubo-declaration-object).
//!
//! A declaration is created at Mangopay (`CREATED`), takes up to 15 UBOs
//! ([`MangopayUbo`](crate::MangopayUbo)), is submitted (`VALIDATION_ASKED`) and is then
//! validated, refused, or found `INCOMPLETE` by Mangopay's teams; an incomplete declaration
//! is open again: its UBOs can be added and updated, and it can be submitted again. A user
//! has at most one declaration in progress at a time, here as at Mangopay.
//!
//! Declarations carry no `Tag`: a create whose outcome cannot be learnt is settled by listing
//! the user's declarations and taking the one created since the key's first use
//! ([`Listing::untagged`]), which is safe because a second local declaration for a user with
//! one in progress is refused when it is saved.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::{Value, json};

use super::parent::{self, KycUser};
use super::types::{UboDeclarationStatus, read};
use super::ubo::{MangopayUbo, UboCreateState};
use crate::db::{AnyConnection, MultiBackend};
use crate::schema::{mangopay_ubo_declarations as declarations, mangopay_users};
use crate::sync::{ApiRequest, Listing, Resource, Scope, SyncInfo, SyncTable, UpdateRequest};
use crate::validate::{FieldErrorKind, ValidationErrors};
use crate::{Db, Error, MangopayClient};

/// The table holding every UBO declaration's sync columns.
pub const UBO_DECLARATIONS: SyncTable = SyncTable::new("mangopay_ubo_declarations");

/// The statuses of a declaration the platform can still change (add and update UBOs, submit).
const OPEN: [&str; 2] = ["CREATED", "INCOMPLETE"];

/// The statuses of a declaration in progress: a user has at most one.
const IN_PROGRESS: [&str; 3] = ["CREATED", "VALIDATION_ASKED", "INCOMPLETE"];

/// How far Mangopay's clock may be behind this one when a review's `ProcessedDate` is
/// compared with the time validation was asked.
const CLOCK_MARGIN: chrono::Duration = chrono::Duration::seconds(60);

/// A UBO declaration, kept in `mangopay_ubo_declarations`.
///
/// Build one with [`MangopayUboDeclaration::new`], [`save`](Self::save) and
/// [`create`](Self::create) it, add its UBOs ([`MangopayUbo::add`]), then call
/// [`create_ubos_and_ask_for_validation`](Self::create_ubos_and_ask_for_validation) (or
/// [`MangopayUbo::create`] and [`ask_for_validation`](Self::ask_for_validation) yourself).
/// [`update_status`](Self::update_status) learns the outcome. A declaration is never updated
/// itself: its UBOs are.
#[derive(Debug, Clone, PartialEq)]
pub struct MangopayUboDeclaration {
    /// The local id; `None` until the first save.
    pub id: Option<i64>,
    /// `UserId`: the local id of the legal user (`BUSINESS` or `PARTNERSHIP`) declaring.
    pub user_id: i64,
    facts: UboDeclarationFacts,
    user: KycUser,
    sync: SyncInfo,
}

/// What Mangopay says about a UBO declaration, and how far its submission went.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UboDeclarationFacts {
    /// `Status`, as it came (unknown values kept); `None` until created at Mangopay.
    pub status: Option<UboDeclarationStatus>,
    /// `Reason`: why it was `REFUSED` or found `INCOMPLETE` (`MISSING_UBO`, ...).
    pub reason: Option<String>,
    /// `Message`: more about the reason, from Mangopay's team.
    pub message: Option<String>,
    /// `ProcessedDate`: when Mangopay's team last processed it.
    pub processed_at: Option<DateTime<Utc>>,
    /// `CreationDate`.
    pub mangopay_created_at: Option<DateTime<Utc>>,
    /// When its submission (create the UBOs, then ask for validation) was asked for.
    pub submission_requested_at: Option<DateTime<Utc>>,
    /// When validation was asked: written just before the request is sent, so no UBO is
    /// added or changed from then on; cleared again if Mangopay refuses the request, and when
    /// the declaration is found `INCOMPLETE`.
    pub validation_asked_at: Option<DateTime<Utc>>,
    /// How many times its status was checked while it awaited validation.
    pub status_checks: i32,
    /// When it was last checked.
    pub status_checked_at: Option<DateTime<Utc>>,
}

impl MangopayUboDeclaration {
    /// A declaration for the legal user `user_id` (local id); not saved yet.
    pub fn new(user_id: i64) -> MangopayUboDeclaration {
        MangopayUboDeclaration {
            id: None,
            user_id,
            facts: UboDeclarationFacts::default(),
            user: KycUser::default(),
            sync: SyncInfo::default(),
        }
    }

    /// What Mangopay says about the declaration.
    pub fn facts(&self) -> &UboDeclarationFacts {
        &self.facts
    }

    /// `Status`, as last recorded; `None` until created at Mangopay.
    pub fn status(&self) -> Option<&UboDeclarationStatus> {
        self.facts.status.as_ref()
    }

    /// `Reason`: why it was `REFUSED` or found `INCOMPLETE`.
    pub fn reason(&self) -> Option<&str> {
        self.facts.reason.as_deref()
    }

    /// `Message`: Mangopay's team's explanation of the reason.
    pub fn message(&self) -> Option<&str> {
        self.facts.message.as_deref()
    }

    /// `ProcessedDate`: when Mangopay's team last processed it.
    pub fn processed_at(&self) -> Option<DateTime<Utc>> {
        self.facts.processed_at
    }

    /// Every problem with the current field values, or `Ok`. Whether the user may declare
    /// UBOs is checked when the row is saved (it depends on the user's row).
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        Ok(())
    }

    /// The UBOs of this declaration, in the order they were added.
    pub async fn ubos(&self, db: &Db) -> Result<Vec<MangopayUbo>, Error> {
        MangopayUbo::for_declaration(db, self.saved_id()?).await
    }

    /// Records that the declaration `id` is to be submitted (its UBOs created, then
    /// validation asked): from then on a sweep can resume a submission that stopped half-way.
    /// [`create_ubos_and_ask_for_validation`](Self::create_ubos_and_ask_for_validation) does it
    /// first. Cleared when the declaration is found `INCOMPLETE`: it is submitted again only
    /// when asked again.
    pub async fn request_submission(db: &Db, id: i64) -> Result<(), Error> {
        super::submission::request::<Self>(db, id).await
    }

    /// The local ids of the declarations whose submission was asked for
    /// ([`request_submission`](Self::request_submission)) and stopped half-way: `CREATED` or
    /// `INCOMPLETE`, with an active UBO to create or created, none of unknown outcome or
    /// refused (those wait for an operator or the application) and none being sent now. A
    /// sweep queues their submission again, oldest first.
    pub async fn submissions_to_resume(db: &Db) -> Result<Vec<i64>, Error> {
        use crate::schema::mangopay_ubos as ubos;
        db.run(|conn| {
            let at = crate::sync::now();
            let blocked = ubos::table
                .filter(ubos::declaration_id.eq(declarations::id))
                .filter(ubos::is_active.eq(true))
                .filter(
                    ubos::create_state
                        .eq_any(["unknown", "refused"])
                        .or(ubos::lease_until.gt(at)),
                );
            let to_send = ubos::table
                .filter(ubos::declaration_id.eq(declarations::id))
                .filter(ubos::is_active.eq(true))
                .filter(ubos::create_state.eq_any(["pending", "sending", "created"]));
            declarations::table
                .filter(declarations::submission_requested_at.is_not_null())
                .filter(declarations::status.eq_any(OPEN))
                .filter(diesel::dsl::not(diesel::dsl::exists(blocked)))
                .filter(diesel::dsl::exists(to_send))
                .order(declarations::id)
                .select(declarations::id)
                .load::<i64>(conn)
                .map_err(Error::from)
        })
        .await
    }

    /// Submits the declaration `id`: requests its submission
    /// ([`request_submission`](Self::request_submission)), creates at Mangopay every active
    /// UBO not created yet, in the order they were added ([`MangopayUbo::create`]; stops at
    /// the first that fails), sends every UBO update due ([`MangopayUbo::push_update`]) and
    /// asks for validation ([`ask_for_validation`](Self::ask_for_validation)). A declaration
    /// already submitted sends nothing.
    ///
    /// Safe to run again after any failure: it resumes where it stopped, and no UBO is ever
    /// created twice.
    pub async fn create_ubos_and_ask_for_validation(
        db: &Db,
        client: &MangopayClient,
        id: i64,
    ) -> Result<(), Error> {
        Self::request_submission(db, id).await?;
        let mut declaration = Self::get(db, id).await?;
        match declaration.status() {
            Some(UboDeclarationStatus::Created | UboDeclarationStatus::Incomplete) => {}
            None => {
                return Err(Error::NotCreated {
                    model: Self::MODEL,
                    id,
                });
            }
            Some(status) => {
                tracing::info!(id, %status, "the UBO declaration was already submitted");
                return Ok(());
            }
        }
        for ubo in MangopayUbo::for_declaration(db, id).await? {
            if ubo.is_active()
                && matches!(
                    ubo.create_state(),
                    UboCreateState::Pending | UboCreateState::Sending
                )
            {
                MangopayUbo::create(db, client, ubo.id()).await?;
            }
        }
        for ubo in MangopayUbo::for_declaration(db, id).await? {
            if ubo.is_active() && ubo.create_state() == UboCreateState::Created && ubo.update_due()
            {
                MangopayUbo::push_update(db, client, ubo.id()).await?;
            }
        }
        declaration.ask_for_validation(db, client).await
    }

    /// Submits the declaration to Mangopay's teams (`PUT` with `Status: VALIDATION_ASKED`)
    /// and records the answer. Only a `CREATED` or `INCOMPLETE` declaration can be submitted,
    /// with at least one UBO created at Mangopay, every active UBO created (none pending, in
    /// flight, refused or of unknown outcome) and no UBO update left to send; anything else is
    /// an [`Error::WrongState`] and nothing is sent.
    ///
    /// `validation_asked_at` is written before the request goes out: no UBO is added or
    /// changed from then on. Safe to call again: when the answer is lost, the declaration is
    /// read back, and one Mangopay shows submitted is recorded as such; one Mangopay shows
    /// still open after a refusal is opened again (its UBOs can be fixed).
    pub async fn ask_for_validation(
        &mut self,
        db: &Db,
        client: &MangopayClient,
    ) -> Result<(), Error> {
        let id = self.saved_id()?;
        let (model, mangopay_id) = db
            .write(move |conn| {
                // The declaration row is written first: a concurrent MangopayUbo::add (or
                // update), which writes it first too, waits for this transaction and then
                // sees the mark; the UBOs are read after it.
                let at = crate::sync::now();
                let held = diesel::update(
                    declarations::table
                        .find(id)
                        .filter(declarations::status.eq_any(OPEN)),
                )
                .set(declarations::updated_at.eq(at))
                .execute(conn)?;
                let (row, model) = crate::sync::load_parts::<MangopayUboDeclaration>(conn, id)?;
                let mangopay_id = row.mangopay_id.ok_or(Error::NotCreated {
                    model: Self::MODEL,
                    id,
                })?;
                let wrong = |reason: String| Error::WrongState {
                    model: Self::MODEL,
                    id,
                    reason,
                };
                if held == 0 {
                    return Err(wrong(format!(
                        "validation can only be asked for a CREATED or INCOMPLETE declaration; \
                         this one is {}",
                        model
                            .status()
                            .map_or("not created", UboDeclarationStatus::as_str)
                    )));
                }
                model
                    .user
                    .parent
                    .created(Self::MODEL, "user_id", "MangopayUser", model.user_id)?;
                let ubos = super::ubo::states(conn, id)?;
                let mut waiting = Vec::new();
                for ubo in &ubos {
                    if ubo.busy {
                        waiting.push(format!("UBO {} is being sent now", ubo.id));
                        continue;
                    }
                    if !ubo.is_active {
                        continue;
                    }
                    match ubo.state {
                        UboCreateState::Created if ubo.dirty => {
                            waiting.push(format!("UBO {} has an update to send first", ubo.id))
                        }
                        UboCreateState::Created => {}
                        UboCreateState::Refused => waiting.push(format!(
                            "UBO {} was refused by Mangopay (update or deactivate it)",
                            ubo.id
                        )),
                        state => waiting.push(format!("UBO {} is {state}", ubo.id)),
                    }
                }
                if !waiting.is_empty() {
                    return Err(wrong(format!(
                        "every UBO must be created at Mangopay first: {}",
                        waiting.join(", ")
                    )));
                }
                if !ubos
                    .iter()
                    .any(|u| u.is_active && u.state == UboCreateState::Created)
                {
                    return Err(wrong("it has no UBO created at Mangopay".into()));
                }
                diesel::update(
                    declarations::table
                        .find(id)
                        .filter(declarations::validation_asked_at.is_null()),
                )
                .set(declarations::validation_asked_at.eq(Some(at)))
                .execute(conn)?;
                // If the answer never comes, the KYC sweep sends the request again.
                diesel::update(
                    declarations::table
                        .find(id)
                        .filter(declarations::submission_requested_at.is_null()),
                )
                .set(declarations::submission_requested_at.eq(Some(at)))
                .execute(conn)?;
                Ok::<_, Error>((model, mangopay_id))
            })
            .await?;
        let path = model.view_path(&mangopay_id);
        let asked = client
            .put(&path, &json!({ "Status": "VALIDATION_ASKED" }))
            .await;
        let answer = match asked {
            Ok(answer) => answer,
            Err(error) => {
                // The submission may have gone through with its answer lost: what Mangopay
                // shows now decides.
                let shown = client.get(&path).await;
                let status = |shown: &Value| {
                    shown
                        .get("Status")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                };
                match shown {
                    Ok(shown) if status(&shown).is_some_and(|s| !OPEN.contains(&s.as_str())) => {
                        tracing::info!(id, %error, "the submission's answer was lost; Mangopay shows it submitted");
                        shown
                    }
                    shown => {
                        // Mangopay shows it still open: after a refusal (or a request never
                        // sent) the declaration is opened again for its UBOs to be fixed;
                        // after a failure retrying may fix, the request may still land, so no
                        // UBO changes until it is settled.
                        let still_open = shown
                            .as_ref()
                            .is_ok_and(|s| status(s).is_some_and(|s| OPEN.contains(&s.as_str())));
                        let reopen = error.never_sent() || (!error.is_retryable() && still_open);
                        let note = crate::sync::note("validation_not_asked", error.to_string());
                        db.write(move |conn| {
                            let at = crate::sync::now();
                            if reopen {
                                diesel::update(declarations::table.find(id))
                                    .set((
                                        declarations::validation_asked_at.eq(None::<NaiveDateTime>),
                                        declarations::submission_requested_at
                                            .eq(None::<NaiveDateTime>),
                                    ))
                                    .execute(conn)?;
                            }
                            crate::sync::store::note_error(conn, UBO_DECLARATIONS, id, &note, at)
                                .map_err(Error::from)
                        })
                        .await?;
                        tracing::warn!(id, %error, reopen, "the UBO declaration's submission failed");
                        return Err(error.into());
                    }
                }
            }
        };
        // The submission is this call's own transition (from CREATED, or back from
        // INCOMPLETE): recorded as such, then the answer as any answer.
        db.write(move |conn| {
            diesel::update(
                declarations::table
                    .find(id)
                    .filter(declarations::status.eq_any(OPEN)),
            )
            .set((
                declarations::status.eq(Some("VALIDATION_ASKED")),
                declarations::reason.eq(None::<String>),
                declarations::message.eq(None::<String>),
            ))
            .execute(conn)
            .map(drop)
            .map_err(Error::from)
        })
        .await?;
        crate::sync::record_answer(db, model, id, answer).await?;
        *self = Self::get(db, id).await?;
        tracing::info!(id, status = ?self.status(), "UBO declaration submitted");
        Ok(())
    }

    /// Reads the status of the declaration `id` from Mangopay if it awaits validation
    /// (`VALIDATION_ASKED`), and records it with the check; a declaration in any other state
    /// is left alone (nothing is sent). Returns the status recorded.
    pub async fn update_status(
        db: &Db,
        client: &MangopayClient,
        id: i64,
    ) -> Result<Option<UboDeclarationStatus>, Error> {
        let declaration = Self::get(db, id).await?;
        if declaration.status() != Some(&UboDeclarationStatus::ValidationAsked) {
            tracing::info!(id, status = ?declaration.status(), "the UBO declaration does not await validation; not checked");
            return Ok(declaration.facts.status);
        }
        super::submission::check_status::<Self>(db, client, id).await?;
        let declaration = Self::get(db, id).await?;
        match declaration.status() {
            Some(status @ (UboDeclarationStatus::Refused | UboDeclarationStatus::Incomplete)) => {
                tracing::warn!(id, %status, reason = ?declaration.facts.reason, "the UBO declaration was not validated")
            }
            Some(status) => tracing::info!(id, %status, "UBO declaration status checked"),
            None => {}
        }
        Ok(declaration.facts.status)
    }

    /// The local ids of the declarations awaiting validation (`VALIDATION_ASKED`), oldest
    /// first.
    pub async fn awaiting_validation(db: &Db) -> Result<Vec<i64>, Error> {
        super::submission::awaiting_validation(db, UBO_DECLARATIONS).await
    }

    /// The declarations of the user `user_id` (local id), oldest first.
    pub async fn for_user(db: &Db, user_id: i64) -> Result<Vec<MangopayUboDeclaration>, Error> {
        crate::sync::get_where(db, move |conn| {
            declarations::table
                .filter(declarations::user_id.eq(user_id))
                .order(declarations::id)
                .select(declarations::id)
                .load::<i64>(conn)
        })
        .await
    }

    /// The newest declaration of the user `user_id` (local id), if there is one.
    pub async fn latest_for_user(
        db: &Db,
        user_id: i64,
    ) -> Result<Option<MangopayUboDeclaration>, Error> {
        let latest = crate::sync::get_where(db, move |conn| {
            declarations::table
                .filter(declarations::user_id.eq(user_id))
                .order(declarations::id.desc())
                .select(declarations::id)
                .limit(1)
                .load::<i64>(conn)
        })
        .await?;
        Ok(latest.into_iter().next())
    }

    fn saved_id(&self) -> Result<i64, Error> {
        self.id.ok_or(Error::NotSaved { model: Self::MODEL })
    }

    /// Whether the user may declare UBOs: a legal user of type `BUSINESS` or `PARTNERSHIP`
    /// ([`Error::Validation`] on `user_id`) of category `OWNER` ([`Error::ParentNotUsable`]).
    fn user_fits(&self) -> Result<(), Error> {
        match self.user.legal_person_type.as_deref() {
            Some("BUSINESS" | "PARTNERSHIP") => {}
            other => {
                let mut e = ValidationErrors::new();
                e.push(
                    "user_id",
                    FieldErrorKind::NotAllowed(format!(
                        "UBO declarations are for legal users of type BUSINESS or PARTNERSHIP; \
                         this user is {}",
                        other.map_or("a natural user".to_owned(), |t| format!("of type {t}"))
                    )),
                );
                return Err(Error::Validation(e));
            }
        }
        if !self.user.owner {
            return Err(Error::ParentNotUsable {
                model: Self::MODEL,
                field: "user_id",
                parent: "MangopayUser",
                parent_id: self.user_id,
                reason: "only users of category OWNER can declare UBOs".into(),
            });
        }
        Ok(())
    }

    /// [`Error::Validation`] on `user_id` when the user has another declaration in progress
    /// locally (not created yet, `CREATED`, `VALIDATION_ASKED` or `INCOMPLETE`, and not
    /// failed). The user's row is written first, so two saves for one user wait for each other
    /// and the second sees the first's row.
    fn none_in_progress(&self, conn: &mut AnyConnection) -> Result<(), Error> {
        diesel::update(mangopay_users::table.find(self.user_id))
            .set(mangopay_users::updated_at.eq(mangopay_users::updated_at))
            .execute(conn)?;
        let others = declarations::table
            .filter(declarations::user_id.eq(self.user_id))
            .filter(
                declarations::status
                    .is_null()
                    .or(declarations::status.eq_any(IN_PROGRESS)),
            )
            .filter(declarations::sync_state.ne("failed"))
            .select(declarations::id)
            .load::<i64>(conn)?;
        if let Some(other) = others.into_iter().find(|o| Some(*o) != self.id) {
            let mut e = ValidationErrors::new();
            e.push(
                "user_id",
                FieldErrorKind::NotAllowed(format!(
                    "the user already has a UBO declaration in progress (MangopayUboDeclaration \
                     {other}): a user has one at a time"
                )),
            );
            return Err(Error::Validation(e));
        }
        Ok(())
    }
}

crate::models::resource_methods!(MangopayUboDeclaration, "UBO declaration");

/// How far along a status is: an answer whose status is behind the recorded one is older.
/// A resubmission (`INCOMPLETE` back to `VALIDATION_ASKED`) is recorded by
/// [`MangopayUboDeclaration::ask_for_validation`] itself.
fn rank(status: &str) -> u8 {
    match status {
        "CREATED" => 0,
        "VALIDATION_ASKED" => 1,
        _ => 2,
    }
}

/// Whether an answer saying `new` (processed at `processed`) is older than what the row
/// records: `old`, processed at `old_processed`, validation asked at `asked_at`.
fn stale(
    new: &str,
    old: &str,
    processed: Option<NaiveDateTime>,
    old_processed: Option<NaiveDateTime>,
    asked_at: Option<NaiveDateTime>,
) -> bool {
    match (rank(new), rank(old)) {
        (n, o) if n < o => true,
        // Awaiting validation: an outcome processed before validation was asked is the
        // previous review's (the declaration was found INCOMPLETE, then submitted again).
        (2, 1) => matches!((processed, asked_at), (Some(p), Some(a)) if p < a - CLOCK_MARGIN),
        // Two outcomes: the one processed earlier is older.
        (2, 2) => matches!((processed, old_processed), (Some(p), Some(o)) if p < o),
        _ => false,
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = declarations)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite, MultiBackend))]
struct DeclarationRow {
    id: i64,
    user_id: i64,
    status: Option<String>,
    reason: Option<String>,
    message: Option<String>,
    processed_at: Option<NaiveDateTime>,
    mangopay_created_at: Option<NaiveDateTime>,
    submission_requested_at: Option<NaiveDateTime>,
    validation_asked_at: Option<NaiveDateTime>,
    status_checks: i32,
    status_checked_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = declarations)]
struct DeclarationFields {
    user_id: i64,
}

#[derive(AsChangeset, Default)]
#[diesel(table_name = declarations)]
struct DeclarationFromApi {
    status: Option<Option<String>>,
    reason: Option<Option<String>>,
    message: Option<Option<String>>,
    processed_at: Option<Option<NaiveDateTime>>,
    mangopay_created_at: Option<Option<NaiveDateTime>>,
}

impl MangopayUboDeclaration {
    fn fields(&self) -> DeclarationFields {
        DeclarationFields {
            user_id: self.user_id,
        }
    }
}

impl Resource for MangopayUboDeclaration {
    const MODEL: &'static str = "MangopayUboDeclaration";
    const TABLE: SyncTable = UBO_DECLARATIONS;
    const UPDATABLE: bool = false;

    crate::sync::row_accessors!();
    fn validate(&self) -> Result<(), ValidationErrors> {
        MangopayUboDeclaration::validate(self)
    }
    fn app_tag(&self) -> Option<&str> {
        None
    }

    fn load(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<Self>> {
        let row = declarations::table
            .find(id)
            .select(DeclarationRow::as_select())
            .first::<DeclarationRow>(conn)
            .optional()?;
        Ok(row.map(|r| {
            let utc = |t: Option<NaiveDateTime>| t.map(|t| t.and_utc());
            MangopayUboDeclaration {
                id: Some(r.id),
                user_id: r.user_id,
                facts: UboDeclarationFacts {
                    status: r.status.as_deref().map(UboDeclarationStatus::from_api),
                    reason: r.reason,
                    message: r.message,
                    processed_at: utc(r.processed_at),
                    mangopay_created_at: utc(r.mangopay_created_at),
                    submission_requested_at: utc(r.submission_requested_at),
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
        // A new row, or a saved one given another user: the user must fit and have no other
        // declaration in progress. A row loaded as stored is not checked again.
        let stored_user = match self.id {
            Some(id) => declarations::table
                .find(id)
                .select(declarations::user_id)
                .first::<i64>(conn)
                .optional()?,
            None => None,
        };
        if self.id.is_none() || stored_user.is_some_and(|u| u != self.user_id) {
            self.user_fits()?;
            self.none_in_progress(conn)?;
        }
        Ok(())
    }

    fn parents_ready(&self) -> Result<(), Error> {
        self.user
            .parent
            .created(Self::MODEL, "user_id", "MangopayUser", self.user_id)?;
        self.user_fits()
    }

    crate::models::field_writes!(declarations);

    fn apply_api_data(
        &self,
        conn: &mut AnyConnection,
        id: i64,
        p: &Value,
        _scope: Scope,
    ) -> QueryResult<()> {
        let Some((old_status, old_processed, asked_at)) = declarations::table
            .find(id)
            .select((
                declarations::status,
                declarations::processed_at,
                declarations::validation_asked_at,
            ))
            .first::<(Option<String>, Option<NaiveDateTime>, Option<NaiveDateTime>)>(conn)
            .optional()?
        else {
            return Ok(());
        };
        let status = read::text(p, "Status").flatten();
        let processed = read::timestamp(p, "ProcessedDate");
        if let (Some(new), Some(old)) = (&status, &old_status)
            && stale(new, old, processed.flatten(), old_processed, asked_at)
        {
            tracing::info!(id, status = %new, recorded = %old, "an older answer is not recorded over a later status");
            return Ok(());
        }
        let reopened =
            status.as_deref() == Some("INCOMPLETE") && old_status.as_deref() != Some("INCOMPLETE");
        let changes = DeclarationFromApi {
            status: status.clone().map(Some),
            reason: read::text(p, "Reason"),
            message: read::text(p, "Message"),
            processed_at: processed,
            mangopay_created_at: read::timestamp(p, "CreationDate"),
        };
        if changes.status.is_some()
            || changes.reason.is_some()
            || changes.message.is_some()
            || changes.processed_at.is_some()
            || changes.mangopay_created_at.is_some()
        {
            diesel::update(declarations::table.find(id))
                .set(&changes)
                .execute(conn)?;
        }
        if reopened {
            // Found incomplete: open again for its UBOs to be fixed; submitted again only
            // when asked again.
            diesel::update(declarations::table.find(id))
                .set((
                    declarations::validation_asked_at.eq(None::<NaiveDateTime>),
                    declarations::submission_requested_at.eq(None::<NaiveDateTime>),
                ))
                .execute(conn)?;
        }
        if let Some(Value::Array(listed)) = p.get("Ubos") {
            super::ubo::apply_listed(conn, id, listed)?;
        }
        Ok(())
    }

    fn create_request(&self, _tag: Option<&str>) -> Result<ApiRequest, Error> {
        let user =
            self.user
                .parent
                .created(Self::MODEL, "user_id", "MangopayUser", self.user_id)?;
        Ok(ApiRequest {
            path: format!("users/{user}/kyc/ubodeclarations"),
            body: json!({}),
        })
    }

    fn update_request(&self, _tag: Option<&str>) -> Result<UpdateRequest, Error> {
        Err(super::transfer::not_updatable(Self::MODEL, self.id))
    }

    fn view_path(&self, mangopay_id: &str) -> String {
        match self.user.parent.mangopay_id.as_deref() {
            Some(user) => format!("users/{user}/kyc/ubodeclarations/{mangopay_id}"),
            None => format!("kyc/ubodeclarations/{mangopay_id}"),
        }
    }

    fn listing(&self) -> Listing {
        Listing {
            path: format!(
                "users/{}/kyc/ubodeclarations",
                self.user.parent.mangopay_id.as_deref().unwrap_or_default()
            ),
            // The list takes pagination and `Sort` only.
            date_filters: false,
            filters: Vec::new(),
            item_path: None,
            untagged: true,
        }
    }

    fn check_untagged(&self, found: &Value) -> Result<(), String> {
        self.check_found(found)?;
        // This row's create left a CREATED declaration without UBOs, and none is added
        // before the create is recorded: one that moved on is another's (a Dashboard user's,
        // another row's).
        if found.get("Status").and_then(Value::as_str) != Some("CREATED") {
            return Err("it is no longer CREATED: it is not the one this row created".into());
        }
        if found
            .get("Ubos")
            .and_then(Value::as_array)
            .is_some_and(|u| !u.is_empty())
        {
            return Err("it already has UBOs: it is not the one this row created".into());
        }
        Ok(())
    }

    fn check_found(&self, found: &Value) -> Result<(), String> {
        let user = self.user.parent.mangopay_id.as_deref().unwrap_or_default();
        if !found.get("Ubos").is_some_and(Value::is_array) {
            return Err("it is not a UBO declaration".into());
        }
        match found.get("UserId").and_then(Value::as_str) {
            Some(u) if u == user => Ok(()),
            Some(u) => Err(format!("it belongs to user {u}, not to {user}")),
            None => Err("it is not a UBO declaration".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Option<NaiveDateTime> {
        DateTime::from_timestamp(s, 0).map(|d| d.naive_utc())
    }

    #[test]
    fn older_answers_never_regress_the_status() {
        let t = 1_800_000_000;
        // Behind the recorded status.
        assert!(stale("CREATED", "VALIDATION_ASKED", None, None, at(t)));
        assert!(stale("VALIDATION_ASKED", "INCOMPLETE", None, at(t), None));
        assert!(stale("VALIDATION_ASKED", "VALIDATED", None, at(t), None));
        // A review after validation was asked is recorded; the previous review is not.
        assert!(!stale(
            "VALIDATED",
            "VALIDATION_ASKED",
            at(t + 5),
            None,
            at(t)
        ));
        assert!(!stale(
            "INCOMPLETE",
            "VALIDATION_ASKED",
            at(t),
            at(t - 3600),
            at(t)
        ));
        assert!(stale(
            "INCOMPLETE",
            "VALIDATION_ASKED",
            at(t - 3600),
            at(t - 3600),
            at(t)
        ));
        // Between outcomes, the one processed earlier is older.
        assert!(stale("INCOMPLETE", "VALIDATED", at(t - 10), at(t), None));
        assert!(!stale("REFUSED", "REFUSED", at(t), at(t), None));
        assert!(!stale("VALIDATION_ASKED", "CREATED", None, None, None));
    }
}
