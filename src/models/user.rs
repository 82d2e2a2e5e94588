//! What natural and legal users share: the `mangopay_users` row, the sync state the library
//! keeps on it, and the create / update / refresh protocol, written once for both kinds.
//!
//! # The create protocol (write-ahead)
//! 1. In one write transaction: the row is saved; if it already has a `mangopay_id` nothing
//!    else happens; otherwise an idempotency key is put on it (or the key of an earlier,
//!    unconfirmed attempt is reused) and the transaction commits.
//! 2. The `POST` is sent with that key.
//! 3. Mangopay's answer is written to the row in a second transaction.
//!
//! A crash between 2 and 3 leaves the key on the row; the next attempt sends the same key,
//! Mangopay answers 409, and the client reads the first answer back from
//! `GET /responses/{key}`: the user Mangopay created the first time. No second user is made.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use diesel::prelude::*;
use serde_json::Value;

use super::types::{KycLevel, PersonType, UserStatus, read};
use crate::client::{ApiError, ErrorBody, IdempotencyKey};
use crate::db::{AnyConnection, Db, MultiBackend};
use crate::schema::mangopay_users;
use crate::{Error, MangopayClient, ValidationErrors};

/// Mangopay keeps an idempotency key for 24 hours; a create older than this is not resent.
const IDEMPOTENCY_WINDOW: chrono::Duration = chrono::Duration::hours(23);

/// The current time as stored: UTC, microseconds (what PostgreSQL keeps).
pub(crate) fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// Where a row stands with Mangopay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncState {
    /// Saved locally, never sent.
    New,
    /// A create was started (its idempotency key is on the row) and not yet confirmed; a
    /// retry resends it with the same key.
    Pending,
    /// Mangopay has the object; `mangopay_id` is set.
    Synced,
    /// Mangopay rejected the create, or its outcome cannot be known safely; `last_error` says
    /// why. Fix the row and call `create` again.
    Failed,
}

impl SyncState {
    /// The value stored in the `sync_state` column.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::New => "new",
            SyncState::Pending => "pending",
            SyncState::Synced => "synced",
            SyncState::Failed => "failed",
        }
    }

    fn from_column(s: &str) -> SyncState {
        match s {
            "pending" => SyncState::Pending,
            "synced" => SyncState::Synced,
            "failed" => SyncState::Failed,
            _ => SyncState::New,
        }
    }
}

/// What the library and Mangopay know about a user row. Written only by the library: `save`
/// never touches it.
#[derive(Debug, Clone, PartialEq)]
pub struct UserSync {
    /// Mangopay's `Id`, set once Mangopay accepted the user.
    pub mangopay_id: Option<String>,
    /// `KYCLevel`.
    pub kyc_level: Option<KycLevel>,
    /// `UserStatus`.
    pub user_status: Option<UserStatus>,
    /// `TermsAndConditionsAcceptedDate`.
    pub terms_and_conditions_accepted_at: Option<DateTime<Utc>>,
    /// `CreationDate`.
    pub mangopay_created_at: Option<DateTime<Utc>>,
    /// Where the row stands with Mangopay.
    pub state: SyncState,
    /// The idempotency key of the create in progress (kept after success, for audit).
    pub create_idempotency_key: Option<String>,
    /// When that key was committed.
    pub create_idempotency_key_at: Option<DateTime<Utc>>,
    /// Failed API write attempts since the last success.
    pub attempts: i32,
    /// The last error: Mangopay's error report (`Message`, `Type`, `Id`, `Date`, `errors`), or
    /// one in the same shape for network failures. Cleared by the next success.
    pub last_error: Option<ErrorBody>,
    /// When `last_error` happened.
    pub last_error_at: Option<DateTime<Utc>>,
    /// The last object Mangopay returned, as JSON.
    pub api_payload: Option<Value>,
    /// When the row was inserted.
    pub created_at: Option<DateTime<Utc>>,
    /// When the row was last written.
    pub updated_at: Option<DateTime<Utc>>,
}

impl UserSync {
    pub(crate) fn new_row() -> Self {
        UserSync {
            mangopay_id: None,
            kyc_level: None,
            user_status: None,
            terms_and_conditions_accepted_at: None,
            mangopay_created_at: None,
            state: SyncState::New,
            create_idempotency_key: None,
            create_idempotency_key_at: None,
            attempts: 0,
            last_error: None,
            last_error_at: None,
            api_payload: None,
            created_at: None,
            updated_at: None,
        }
    }
}

/// The `mangopay_users` row.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = mangopay_users)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite, MultiBackend))]
pub(crate) struct UserRow {
    pub id: i64,
    pub app_user_ref: Option<String>,
    pub mangopay_id: Option<String>,
    pub user_category: String,
    pub terms_and_conditions_accepted: bool,
    pub terms_and_conditions_accepted_at: Option<NaiveDateTime>,
    pub email: String,
    pub tag: Option<String>,
    pub kyc_level: Option<String>,
    pub user_status: Option<String>,
    pub mangopay_created_at: Option<NaiveDateTime>,
    pub sync_state: String,
    pub create_idempotency_key: Option<String>,
    pub create_idempotency_key_at: Option<NaiveDateTime>,
    pub sync_attempts: i32,
    pub last_error: Option<String>,
    pub last_error_at: Option<NaiveDateTime>,
    pub api_payload: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

fn utc(t: Option<NaiveDateTime>) -> Option<DateTime<Utc>> {
    t.map(|t| t.and_utc())
}

impl UserRow {
    pub(crate) fn sync(&self) -> UserSync {
        UserSync {
            mangopay_id: self.mangopay_id.clone(),
            kyc_level: self.kyc_level.as_deref().map(KycLevel::from_api),
            user_status: self.user_status.as_deref().map(UserStatus::from_api),
            terms_and_conditions_accepted_at: utc(self.terms_and_conditions_accepted_at),
            mangopay_created_at: utc(self.mangopay_created_at),
            state: SyncState::from_column(&self.sync_state),
            create_idempotency_key: self.create_idempotency_key.clone(),
            create_idempotency_key_at: utc(self.create_idempotency_key_at),
            attempts: self.sync_attempts,
            last_error: self
                .last_error
                .as_deref()
                .and_then(|e| serde_json::from_str(e).ok()),
            last_error_at: utc(self.last_error_at),
            api_payload: self
                .api_payload
                .as_deref()
                .and_then(|p| serde_json::from_str(p).ok()),
            created_at: Some(self.created_at.and_utc()),
            updated_at: Some(self.updated_at.and_utc()),
        }
    }
}

/// The fields of the base row that the application owns.
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = mangopay_users, treat_none_as_null = true)]
pub(crate) struct BaseFields {
    pub app_user_ref: Option<String>,
    pub user_category: String,
    pub terms_and_conditions_accepted: bool,
    pub email: String,
    pub tag: Option<String>,
}

#[derive(Insertable)]
#[diesel(table_name = mangopay_users)]
struct NewUserRow {
    #[diesel(embed)]
    fields: BaseFields,
    person_type: String,
    sync_state: String,
    sync_attempts: i32,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

/// What an API answer says about the base row. An absent key leaves its column alone.
#[derive(AsChangeset, Default)]
#[diesel(table_name = mangopay_users)]
struct BaseFromApi {
    mangopay_id: Option<String>,
    user_category: Option<String>,
    terms_and_conditions_accepted: Option<bool>,
    terms_and_conditions_accepted_at: Option<Option<NaiveDateTime>>,
    email: Option<String>,
    tag: Option<Option<String>>,
    kyc_level: Option<Option<String>>,
    user_status: Option<Option<String>>,
    mangopay_created_at: Option<Option<NaiveDateTime>>,
    api_payload: Option<String>,
    updated_at: Option<NaiveDateTime>,
}

/// The public methods both user models share, documented for each kind (`$word` is `natural`
/// or `legal`, `$kind` the matching [`PersonType`] variant).
macro_rules! user_model_methods {
    ($model:ident, $kind:ident, $word:literal) => {
        impl $model {
            /// The local id, once saved.
            pub fn id(&self) -> Option<i64> {
                self.id
            }

            /// Mangopay's id, once Mangopay accepted the user.
            pub fn mangopay_id(&self) -> Option<&str> {
                self.sync.mangopay_id.as_deref()
            }

            /// What the library and Mangopay know about this row.
            pub fn sync(&self) -> &UserSync {
                &self.sync
            }

            #[doc = concat!("Loads the ", $word, " user with this local id.")]
            pub async fn get(db: &Db, id: i64) -> Result<Self, Error> {
                super::user::get(db, id).await
            }

            #[doc = concat!("Loads the ", $word, " user with this Mangopay id, if there is one.")]
            pub async fn find_by_mangopay_id(db: &Db, mangopay_id: &str) -> Result<Option<Self>, Error> {
                match super::user::id_for_mangopay_id(db, mangopay_id.to_owned()).await? {
                    Some((id, PersonType::$kind)) => Ok(Some(Self::get(db, id).await?)),
                    _ => Ok(None),
                }
            }

            /// Inserts the row (setting [`id`](Self::id)) or updates it. Local only: nothing is
            /// sent.
            pub async fn save(&mut self, db: &Db) -> Result<(), Error> {
                super::user::save(self, db).await
            }

            #[doc = concat!(
                "Creates the user at Mangopay (`POST /users/", $word, "`) and writes Mangopay's ",
                "answer (its id and every returned field) into the row; saves the row first.\n\n",
                "Safe to call again after any failure or crash: the idempotency key is committed ",
                "on the row before the request goes out, and a row that already has a Mangopay id ",
                "sends nothing. A 4xx from Mangopay is stored on the row ",
                "([`UserSync::last_error`])."
            )]
            pub async fn create(&mut self, db: &Db, client: &MangopayClient) -> Result<(), Error> {
                super::user::create(self, db, client).await
            }

            #[doc = concat!("Saves the row and sends its fields to Mangopay (`PUT /users/", $word, "/{Id}`).")]
            pub async fn update(&mut self, db: &Db, client: &MangopayClient) -> Result<(), Error> {
                super::user::update(self, db, client).await
            }

            #[doc = concat!("Reads the user from Mangopay (`GET /users/", $word, "/{Id}`) into the row.")]
            pub async fn refresh(&mut self, db: &Db, client: &MangopayClient) -> Result<(), Error> {
                super::user::refresh(self, db, client).await
            }
        }
    };
}
pub(crate) use user_model_methods;

/// The part of a user model that differs between natural and legal users.
pub(crate) trait UserKind: Sized + Clone + Send + 'static {
    /// The model's name, for errors.
    const MODEL: &'static str;
    /// Which kind of user this is.
    const PERSON_TYPE: PersonType;
    /// The API path of this kind, such as `users/natural`.
    const PATH: &'static str;

    fn local_id(&self) -> Option<i64>;
    fn set_local_id(&mut self, id: i64);
    fn sync_ref(&self) -> &UserSync;
    fn sync_mut(&mut self) -> &mut UserSync;
    fn validate(&self) -> Result<(), ValidationErrors>;
    fn base_fields(&self) -> BaseFields;
    /// The JSON body of a create or an update (unset fields left out).
    fn api_body(&self) -> Value;
    fn insert_details(&self, conn: &mut AnyConnection, user_id: i64) -> QueryResult<()>;
    fn update_details(&self, conn: &mut AnyConnection, user_id: i64) -> QueryResult<()>;
    /// Writes what an API answer says about this kind's detail row.
    fn details_from_api(conn: &mut AnyConnection, user_id: i64, payload: &Value)
    -> QueryResult<()>;
    /// Loads the row (both tables); `None` when there is no such row of this kind.
    fn load(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<Self>>;
}

pub(crate) fn load_row(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<UserRow>> {
    mangopay_users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

fn load_required<K: UserKind>(conn: &mut AnyConnection, id: i64) -> Result<K, Error> {
    K::load(conn, id)?.ok_or(Error::NotFound {
        model: K::MODEL,
        id,
    })
}

/// Inserts or updates the row's application-owned fields (never the sync state).
fn write_local<K: UserKind>(conn: &mut AnyConnection, user: &K) -> Result<i64, Error> {
    let fields = user.base_fields();
    let written = now();
    let id = match user.local_id() {
        Some(id) => {
            let updated = diesel::update(mangopay_users::table.find(id))
                .set((&fields, mangopay_users::updated_at.eq(written)))
                .execute(conn)?;
            if updated == 0 {
                return Err(Error::NotFound {
                    model: K::MODEL,
                    id,
                });
            }
            user.update_details(conn, id)?;
            id
        }
        None => {
            let id = diesel::insert_into(mangopay_users::table)
                .values(NewUserRow {
                    fields,
                    person_type: K::PERSON_TYPE.as_str().to_owned(),
                    sync_state: SyncState::New.as_str().to_owned(),
                    sync_attempts: 0,
                    created_at: written,
                    updated_at: written,
                })
                .returning(mangopay_users::id)
                .get_result::<i64>(conn)?;
            user.insert_details(conn, id)?;
            id
        }
    };
    Ok(id)
}

/// Validates and saves the application-owned fields; sets the local id on first save.
pub(crate) async fn save<K: UserKind>(user: &mut K, db: &Db) -> Result<(), Error> {
    user.validate()?;
    let snapshot = user.clone();
    let saved: K = db
        .write(move |conn| {
            let id = write_local(conn, &snapshot)?;
            load_required(conn, id)
        })
        .await?;
    *user = saved;
    Ok(())
}

/// Loads a user of kind `K` by local id.
pub(crate) async fn get<K: UserKind>(db: &Db, id: i64) -> Result<K, Error> {
    db.run(move |conn| load_required(conn, id)).await
}

/// Writes everything an API answer says into the row: the one way API data reaches the
/// database (create, update, refresh and replays all go through it).
pub(crate) fn apply_api_data<K: UserKind>(
    conn: &mut AnyConnection,
    id: i64,
    payload: &Value,
) -> Result<(), Error> {
    let changes = BaseFromApi {
        mangopay_id: read::required(read::text(payload, "Id")),
        user_category: read::required(read::text(payload, "UserCategory")),
        terms_and_conditions_accepted: read::boolean(payload, "TermsAndConditionsAccepted"),
        terms_and_conditions_accepted_at: read::timestamp(
            payload,
            "TermsAndConditionsAcceptedDate",
        ),
        email: read::required(read::text(payload, "Email")),
        tag: read::text(payload, "Tag"),
        kyc_level: read::text(payload, "KYCLevel"),
        user_status: read::text(payload, "UserStatus"),
        mangopay_created_at: read::timestamp(payload, "CreationDate"),
        api_payload: Some(payload.to_string()),
        updated_at: Some(now()),
    };
    diesel::update(mangopay_users::table.find(id))
        .set(&changes)
        .execute(conn)?;
    K::details_from_api(conn, id, payload)?;
    Ok(())
}

/// The outcome of step 1 of the create protocol.
enum Claim {
    /// The row already has a Mangopay id: send nothing.
    AlreadyCreated,
    /// Send the create with this key.
    Send(IdempotencyKey),
    /// The row's key is older than the idempotency window.
    Expired { key: String, since: NaiveDateTime },
}

/// Step 1: save the row and commit the idempotency key the create will be sent with.
fn claim<K: UserKind>(conn: &mut AnyConnection, user: &K) -> Result<(i64, Claim), Error> {
    if let Some(id) = user.local_id() {
        let row = load_row(conn, id)?.ok_or(Error::NotFound {
            model: K::MODEL,
            id,
        })?;
        if row.mangopay_id.is_some() {
            return Ok((id, Claim::AlreadyCreated));
        }
    }
    let id = write_local(conn, user)?;
    let row = load_row(conn, id)?.ok_or(Error::NotFound {
        model: K::MODEL,
        id,
    })?;
    let started = now();
    let key = match (row.create_idempotency_key, row.create_idempotency_key_at) {
        (Some(key), Some(since)) if started - since > IDEMPOTENCY_WINDOW => {
            return Ok((id, Claim::Expired { key, since }));
        }
        (Some(key), _) => key,
        (None, _) => {
            let fresh = IdempotencyKey::generate();
            // Conditional on the key still being unset, so two concurrent creates of one row
            // end up sending the same key.
            let set = diesel::update(
                mangopay_users::table
                    .find(id)
                    .filter(mangopay_users::create_idempotency_key.is_null()),
            )
            .set((
                mangopay_users::create_idempotency_key.eq(fresh.as_str()),
                mangopay_users::create_idempotency_key_at.eq(started),
            ))
            .execute(conn)?;
            if set == 1 {
                fresh.to_string()
            } else {
                load_row(conn, id)?
                    .and_then(|r| r.create_idempotency_key)
                    .unwrap_or_else(|| fresh.to_string())
            }
        }
    };
    diesel::update(mangopay_users::table.find(id))
        .set((
            mangopay_users::sync_state.eq(SyncState::Pending.as_str()),
            mangopay_users::updated_at.eq(started),
        ))
        .execute(conn)?;
    let key = IdempotencyKey::new(key.clone()).map_err(|_| Error::IdempotencyWindowExpired {
        model: K::MODEL,
        id,
        key,
        started_at: started.and_utc(),
    })?;
    Ok((id, Claim::Send(key)))
}

/// Records a failed API write on the row: the error, its time, one more attempt. For a create,
/// `state` says where the row goes, and `drop_key` clears the idempotency key when Mangopay
/// certainly created nothing (so a corrected row is sent with a fresh key).
fn record_failure(
    conn: &mut AnyConnection,
    id: i64,
    error: &ErrorBody,
    state: Option<SyncState>,
    drop_key: bool,
) -> QueryResult<()> {
    let at = now();
    let stored = serde_json::to_string(error).unwrap_or_default();
    diesel::update(mangopay_users::table.find(id))
        .set((
            mangopay_users::last_error.eq(stored),
            mangopay_users::last_error_at.eq(at),
            mangopay_users::sync_attempts.eq(mangopay_users::sync_attempts + 1),
            mangopay_users::updated_at.eq(at),
        ))
        .execute(conn)?;
    if let Some(state) = state {
        diesel::update(mangopay_users::table.find(id))
            .set(mangopay_users::sync_state.eq(state.as_str()))
            .execute(conn)?;
    }
    if drop_key {
        diesel::update(mangopay_users::table.find(id))
            .set((
                mangopay_users::create_idempotency_key.eq(None::<String>),
                mangopay_users::create_idempotency_key_at.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Records a successful API answer: its data, and a clean error state.
fn record_success<K: UserKind>(
    conn: &mut AnyConnection,
    id: i64,
    payload: &Value,
) -> Result<(), Error> {
    apply_api_data::<K>(conn, id, payload)?;
    diesel::update(mangopay_users::table.find(id))
        .set((
            mangopay_users::sync_state.eq(SyncState::Synced.as_str()),
            mangopay_users::sync_attempts.eq(0),
            mangopay_users::last_error.eq(None::<String>),
            mangopay_users::last_error_at.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
    Ok(())
}

/// Creates the user at Mangopay (see the module documentation for the protocol).
pub(crate) async fn create<K: UserKind>(
    user: &mut K,
    db: &Db,
    client: &MangopayClient,
) -> Result<(), Error> {
    user.validate()?;
    let snapshot = user.clone();
    let (id, claim) = db.write(move |conn| claim(conn, &snapshot)).await?;
    user.set_local_id(id);
    let key = match claim {
        Claim::AlreadyCreated => {
            let current: K = get(db, id).await?;
            *user.sync_mut() = current.sync_ref().clone();
            return Ok(());
        }
        Claim::Expired { key, since } => {
            let error = Error::IdempotencyWindowExpired {
                model: K::MODEL,
                id,
                key,
                started_at: since.and_utc(),
            };
            let body = ErrorBody {
                message: Some(error.to_string()),
                kind: Some("idempotency_window_expired".into()),
                date: Some(Utc::now().timestamp()),
                ..ErrorBody::default()
            };
            db.write(move |conn| {
                record_failure(conn, id, &body, Some(SyncState::Failed), false).map_err(Error::from)
            })
            .await?;
            *user = get(db, id).await?;
            return Err(error);
        }
        Claim::Send(key) => key,
    };
    let body = user.api_body();
    let result = client.post(K::PATH, &body, &key).await;
    finish(user, db, id, result, true).await
}

/// Step 3 of a create, or the end of an update: writes the answer (or the error) to the row and
/// reloads the model.
async fn finish<K: UserKind>(
    user: &mut K,
    db: &Db,
    id: i64,
    result: Result<Value, ApiError>,
    creating: bool,
) -> Result<(), Error> {
    match result {
        Ok(payload) => {
            db.write(move |conn| record_success::<K>(conn, id, &payload))
                .await?;
            *user = get(db, id).await?;
            Ok(())
        }
        Err(api) => {
            let stored = api.to_stored();
            let (state, drop_key) = match (creating, api.created_nothing(), api.is_retryable()) {
                (false, _, _) => (None, false),
                // Mangopay certainly created nothing: a corrected row gets a fresh key.
                (true, true, retryable) => (
                    Some(if retryable {
                        SyncState::Pending
                    } else {
                        SyncState::Failed
                    }),
                    !retryable,
                ),
                // The outcome is unknown: keep the key so a retry cannot duplicate.
                (true, false, true) => (Some(SyncState::Pending), false),
                (true, false, false) => (Some(SyncState::Failed), false),
            };
            tracing::warn!(model = K::MODEL, id, error = %api, retryable = api.is_retryable(), "Mangopay call failed");
            db.write(move |conn| {
                record_failure(conn, id, &stored, state, drop_key).map_err(Error::from)
            })
            .await?;
            *user = get(db, id).await?;
            Err(Error::Api(api))
        }
    }
}

fn require_mangopay_id<K: UserKind>(user: &K) -> Result<(i64, String), Error> {
    let id = user.local_id().ok_or(Error::NotSaved { model: K::MODEL })?;
    let mangopay_id = user
        .sync_ref()
        .mangopay_id
        .clone()
        .ok_or(Error::NotCreated {
            model: K::MODEL,
            id,
        })?;
    Ok((id, mangopay_id))
}

/// Saves the row and sends its fields to Mangopay (`PUT`); writes the answer back.
pub(crate) async fn update<K: UserKind>(
    user: &mut K,
    db: &Db,
    client: &MangopayClient,
) -> Result<(), Error> {
    user.validate()?;
    let (id, mangopay_id) = require_mangopay_id(user)?;
    let snapshot = user.clone();
    db.write(move |conn| write_local(conn, &snapshot)).await?;
    let body = user.api_body();
    let result = client
        .put(&format!("{}/{mangopay_id}", K::PATH), &body)
        .await;
    finish(user, db, id, result, false).await
}

/// Reads the user from Mangopay (`GET`) and writes it into the row.
pub(crate) async fn refresh<K: UserKind>(
    user: &mut K,
    db: &Db,
    client: &MangopayClient,
) -> Result<(), Error> {
    let (id, mangopay_id) = require_mangopay_id(user)?;
    let payload = client.get(&format!("{}/{mangopay_id}", K::PATH)).await?;
    db.write(move |conn| apply_api_data::<K>(conn, id, &payload))
        .await?;
    *user = get(db, id).await?;
    Ok(())
}

/// Finds the local id of the user with this Mangopay id, of any kind.
pub(crate) async fn id_for_mangopay_id(
    db: &Db,
    mangopay_id: String,
) -> Result<Option<(i64, PersonType)>, Error> {
    db.run(move |conn| {
        mangopay_users::table
            .filter(mangopay_users::mangopay_id.eq(mangopay_id))
            .select((mangopay_users::id, mangopay_users::person_type))
            .first::<(i64, String)>(conn)
            .optional()
            .map(|r| r.map(|(id, kind)| (id, PersonType::from_api(&kind))))
            .map_err(|e| Error::Db(e.into()))
    })
    .await
}

/// The local ids of users whose create was started and never confirmed, and whose row has not
/// been written for `idle_for`, oldest first.
pub(crate) async fn pending_creates(
    db: &Db,
    idle_for: std::time::Duration,
) -> Result<Vec<i64>, Error> {
    let idle = chrono::Duration::from_std(idle_for).unwrap_or(chrono::Duration::MAX);
    let before = now().checked_sub_signed(idle).unwrap_or(NaiveDateTime::MIN);
    db.run(move |conn| {
        mangopay_users::table
            .filter(mangopay_users::sync_state.eq(SyncState::Pending.as_str()))
            .filter(mangopay_users::mangopay_id.is_null())
            .filter(mangopay_users::updated_at.le(before))
            .order(mangopay_users::id)
            .select(mangopay_users::id)
            .load::<i64>(conn)
            .map_err(|e| Error::Db(e.into()))
    })
    .await
}

/// A user of either kind, loaded by local id: what the jobs work with.
#[derive(Debug, Clone, PartialEq)]
pub enum MangopayUser {
    /// A natural user.
    Natural(super::MangopayNaturalUser),
    /// A legal user.
    Legal(super::MangopayLegalUser),
}

impl MangopayUser {
    /// Loads the user with this local id, whatever its kind.
    pub async fn get(db: &Db, id: i64) -> Result<MangopayUser, Error> {
        let kind = db
            .run(move |conn| {
                mangopay_users::table
                    .find(id)
                    .select(mangopay_users::person_type)
                    .first::<String>(conn)
                    .optional()
                    .map_err(|e| Error::Db(e.into()))
            })
            .await?
            .ok_or(Error::NotFound {
                model: "MangopayUser",
                id,
            })?;
        match PersonType::from_api(&kind) {
            PersonType::Legal => Ok(MangopayUser::Legal(get(db, id).await?)),
            _ => Ok(MangopayUser::Natural(get(db, id).await?)),
        }
    }

    /// The local ids of users whose create was started and never confirmed (a crash, or
    /// retries that ran out) and whose row has not been written for `idle_for`, oldest first.
    /// Workers resume these: the create is resent with the same idempotency key.
    pub async fn pending_creates(
        db: &Db,
        idle_for: std::time::Duration,
    ) -> Result<Vec<i64>, Error> {
        pending_creates(db, idle_for).await
    }

    /// The local id.
    pub fn id(&self) -> Option<i64> {
        match self {
            MangopayUser::Natural(u) => u.id,
            MangopayUser::Legal(u) => u.id,
        }
    }

    /// The sync state.
    pub fn sync(&self) -> &UserSync {
        match self {
            MangopayUser::Natural(u) => u.sync(),
            MangopayUser::Legal(u) => u.sync(),
        }
    }

    /// See [`super::MangopayNaturalUser::create`].
    pub async fn create(&mut self, db: &Db, client: &MangopayClient) -> Result<(), Error> {
        match self {
            MangopayUser::Natural(u) => u.create(db, client).await,
            MangopayUser::Legal(u) => u.create(db, client).await,
        }
    }

    /// See [`super::MangopayNaturalUser::update`].
    pub async fn update(&mut self, db: &Db, client: &MangopayClient) -> Result<(), Error> {
        match self {
            MangopayUser::Natural(u) => u.update(db, client).await,
            MangopayUser::Legal(u) => u.update(db, client).await,
        }
    }

    /// See [`super::MangopayNaturalUser::refresh`].
    pub async fn refresh(&mut self, db: &Db, client: &MangopayClient) -> Result<(), Error> {
        match self {
            MangopayUser::Natural(u) => u.refresh(db, client).await,
            MangopayUser::Legal(u) => u.refresh(db, client).await,
        }
    }
}

impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Self {
        Error::Db(e.into())
    }
}
