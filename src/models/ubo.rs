//! `MangopayUbo`: one ultimate beneficial owner of a UBO declaration
//! ([`MangopayUboDeclaration`](crate::MangopayUboDeclaration)), mirrored from Mangopay's
//! [UBO object](https://docs.mangopay.com/api-reference/ubo-declarations/ubo-object)
//! ("Create a UBO": `POST /users/{UserId}/kyc/ubodeclarations/{UboDeclarationId}/ubos`).
//!
//! A UBO is added locally ([`MangopayUbo::add`]), then created at Mangopay
//! ([`MangopayUbo::create`]) following the write-ahead rule of every create: its idempotency
//! key is committed on the row (`sending`) before the request goes out, and a UBO whose answer
//! was lost is sent again with the same key, so Mangopay answers 409 and its first answer is
//! read back: a UBO is never created twice. When even that cannot tell (the first answer was
//! itself a server error, it cannot be read back, or the key is too old to resend), the
//! declaration is read: it lists every UBO it holds, so a UBO with the same names and
//! birthday that no other row holds is adopted, none means nothing was created (the UBO is
//! sent again with a new key), and several are left to an operator
//! ([`MangopayUbo::resolve_unknown`]).
//!
//! UBOs are personal data: their birthday and address are never written to logs.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::{Value, json};

use super::types::{Address, birthday_to_api, read};
use crate::client::ApiError;
use crate::db::{AnyConnection, MultiBackend};
use crate::schema::{
    mangopay_ubo_declarations as declarations, mangopay_ubos as ubos, mangopay_users,
};
use crate::sync::{Lease, lease_duration, note, now};
use crate::validate::{self, CountryCode, FieldErrorKind, ValidationErrors};
use crate::{Db, Error, IdempotencyKey, MangopayClient};

const MODEL: &str = "MangopayUbo";
const DECLARATION: &str = "MangopayUboDeclaration";

/// The most UBOs Mangopay takes in one declaration (those disregarded included).
pub const MAX_UBOS: i64 = 15;

/// The earliest birth year taken.
const MIN_BIRTH_YEAR: i32 = 1900;

/// A beneficial owner's details, as the application gives them: every one is required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UboFields {
    /// `FirstName`: 1 to 100 characters.
    pub first_name: String,
    /// `LastName`: 1 to 100 characters.
    pub last_name: String,
    /// `Address`: a complete postal address (see [`Address`]).
    pub address: Address,
    /// `Nationality`: an ISO 3166-1 alpha-2 country code.
    pub nationality: String,
    /// `Birthday`: in the past, from 1900 on (sent as midnight UTC of the day).
    pub birthday: NaiveDate,
    /// `Birthplace.City`: 1 to 255 characters.
    pub birthplace_city: String,
    /// `Birthplace.Country`: an ISO 3166-1 alpha-2 country code.
    pub birthplace_country: String,
}

impl UboFields {
    /// Every problem with these details, or `Ok`; errors name `first_name`, `last_name`,
    /// `address.line1` (and the address's other parts), `nationality`, `birthday`,
    /// `birthplace_city` and `birthplace_country`.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut e = ValidationErrors::new();
        e.check("first_name", validate::name(&self.first_name, 100));
        e.check("last_name", validate::name(&self.last_name, 100));
        e.extend(self.address.validate().prefixed("address"));
        e.check("nationality", country(&self.nationality));
        let today = Utc::now().date_naive();
        let birthday = if self.birthday > today {
            Err(FieldErrorKind::InFuture)
        } else if self.birthday.year() < MIN_BIRTH_YEAR {
            Err(FieldErrorKind::OutOfRange {
                min: i64::from(MIN_BIRTH_YEAR),
                max: i64::from(today.year()),
            })
        } else {
            Ok(())
        };
        e.check("birthday", birthday);
        e.check(
            "birthplace_city",
            validate::name(&self.birthplace_city, 255),
        );
        e.check("birthplace_country", country(&self.birthplace_country));
        e.into_result()
    }

    /// The details as Mangopay's create and update bodies hold them.
    fn to_api(&self) -> Value {
        json!({
            "FirstName": self.first_name,
            "LastName": self.last_name,
            "Address": self.address.to_api(),
            "Nationality": self.nationality,
            "Birthday": birthday_to_api(self.birthday),
            "Birthplace": {
                "City": self.birthplace_city,
                "Country": self.birthplace_country,
            },
        })
    }

    /// The details as stored: country codes in upper case.
    fn columns(&self) -> UboColumns {
        let (line1, line2, city, region, postal_code, country) =
            Address::into_columns(Some(&self.address));
        UboColumns {
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            address_line1: line1,
            address_line2: line2,
            address_city: city,
            address_region: region,
            address_postal_code: postal_code,
            address_country: country,
            nationality: self.nationality.trim().to_ascii_uppercase(),
            birthday: self.birthday,
            birthplace_city: self.birthplace_city.clone(),
            birthplace_country: self.birthplace_country.trim().to_ascii_uppercase(),
        }
    }
}

fn country(value: &str) -> Result<(), FieldErrorKind> {
    validate::required(value)?;
    value.trim().parse::<CountryCode>().map(drop)
}

/// How far a UBO's create went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UboCreateState {
    /// Not sent yet.
    Pending,
    /// Sent (or about to be) with the key on the row; its answer is not recorded yet. The
    /// next create resends the same key.
    Sending,
    /// Mangopay has it (`mangopay_id`).
    Created,
    /// Mangopay refused it (`last_error` says why); it is not part of the declaration until
    /// it is fixed ([`MangopayUbo::update`]) or disregarded ([`MangopayUbo::deactivate`]).
    Refused,
    /// Sent, and whether Mangopay created it cannot be learnt: an operator decides
    /// ([`MangopayUbo::resolve_unknown`]).
    Unknown,
}

impl UboCreateState {
    /// The state as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            UboCreateState::Pending => "pending",
            UboCreateState::Sending => "sending",
            UboCreateState::Created => "created",
            UboCreateState::Refused => "refused",
            UboCreateState::Unknown => "unknown",
        }
    }

    fn from_db(text: &str) -> UboCreateState {
        match text {
            "sending" => UboCreateState::Sending,
            "created" => UboCreateState::Created,
            "refused" => UboCreateState::Refused,
            "unknown" => UboCreateState::Unknown,
            _ => UboCreateState::Pending,
        }
    }
}

impl fmt::Display for UboCreateState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A UBO, kept in `mangopay_ubos`.
#[derive(Debug, Clone, PartialEq)]
pub struct MangopayUbo {
    id: i64,
    declaration_id: i64,
    fields: UboFields,
    is_active: bool,
    mangopay_id: Option<String>,
    mangopay_created_at: Option<DateTime<Utc>>,
    create_state: UboCreateState,
    create_attempts: i32,
    update_due: bool,
    last_error: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ubos)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite, MultiBackend))]
struct UboRow {
    id: i64,
    declaration_id: i64,
    first_name: String,
    last_name: String,
    address_line1: Option<String>,
    address_line2: Option<String>,
    address_city: Option<String>,
    address_region: Option<String>,
    address_postal_code: Option<String>,
    address_country: Option<String>,
    nationality: String,
    birthday: NaiveDate,
    birthplace_city: String,
    birthplace_country: String,
    is_active: bool,
    mangopay_id: Option<String>,
    mangopay_created_at: Option<NaiveDateTime>,
    create_state: String,
    create_key: Option<String>,
    create_key_at: Option<NaiveDateTime>,
    create_attempts: i32,
    dirty: bool,
    lease_owner: Option<String>,
    lease_until: Option<NaiveDateTime>,
    last_error: Option<String>,
    updated_at: NaiveDateTime,
}

impl UboRow {
    fn fields(&self) -> UboFields {
        UboFields {
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            address: Address::from_columns((
                self.address_line1.clone(),
                self.address_line2.clone(),
                self.address_city.clone(),
                self.address_region.clone(),
                self.address_postal_code.clone(),
                self.address_country.clone(),
            ))
            .unwrap_or_default(),
            nationality: self.nationality.clone(),
            birthday: self.birthday,
            birthplace_city: self.birthplace_city.clone(),
            birthplace_country: self.birthplace_country.clone(),
        }
    }

    fn ubo(&self) -> MangopayUbo {
        MangopayUbo {
            id: self.id,
            declaration_id: self.declaration_id,
            fields: self.fields(),
            is_active: self.is_active,
            mangopay_id: self.mangopay_id.clone(),
            mangopay_created_at: self.mangopay_created_at.map(|t| t.and_utc()),
            create_state: UboCreateState::from_db(&self.create_state),
            create_attempts: self.create_attempts,
            update_due: self.dirty,
            last_error: self.last_error.clone(),
        }
    }

    fn state(&self) -> UboCreateState {
        UboCreateState::from_db(&self.create_state)
    }

    /// Whether another holder's lease on the row is still running at `at`.
    fn held_at(&self, at: NaiveDateTime) -> Option<NaiveDateTime> {
        self.lease_owner.as_ref()?;
        self.lease_until.filter(|until| *until > at)
    }
}

#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = ubos, treat_none_as_null = true)]
struct UboColumns {
    first_name: String,
    last_name: String,
    address_line1: Option<String>,
    address_line2: Option<String>,
    address_city: Option<String>,
    address_region: Option<String>,
    address_postal_code: Option<String>,
    address_country: Option<String>,
    nationality: String,
    birthday: NaiveDate,
    birthplace_city: String,
    birthplace_country: String,
}

/// The declaration a UBO belongs to, as a claim reads it.
struct Declaration {
    /// Mangopay's id of the declaration.
    mangopay_id: String,
    /// Mangopay's id of the declaration's user.
    user: String,
}

impl Declaration {
    fn path(&self) -> String {
        format!(
            "users/{}/kyc/ubodeclarations/{}",
            self.user, self.mangopay_id
        )
    }
}

/// What a claimed create sends, and what identifies the UBO in the declaration.
struct Send {
    key: IdempotencyKey,
    /// The key was committed before: an earlier request may have used it.
    resend: bool,
    /// The key was first used more than 23 hours (`sync::KEY_RESENT_FOR`) ago: it is not sent again.
    expired: bool,
    declaration: String,
    body: Value,
    first_name: String,
    last_name: String,
    birthday: i64,
    /// When the row was last written before this claim: no earlier request with the key was
    /// sent after it.
    last_touch: NaiveDateTime,
}

enum Claim {
    /// Nothing to send: the UBO is already created.
    Done,
    Send(Box<Send>),
}

/// What a create's answer means for the UBO.
#[derive(Debug)]
enum Step {
    /// Mangopay created it: here is the object.
    Created(Value),
    /// Mangopay refused the UBO itself.
    Refused(ApiError),
    /// The key's stored first answer is to a request Mangopay never processed (credentials,
    /// rate limit): the next create needs a new key.
    NewKey(ApiError),
    /// Retrying may help: the key stays for the next create.
    Retry(ApiError),
    /// The answer does not tell: the declaration does. `settled`: the key's first request is
    /// known to have finished (its stored answer was read), so the declaration shows all it
    /// did.
    LookUp {
        error: Option<ApiError>,
        settled: bool,
    },
}

/// What reading the declaration decided.
enum Looked {
    Created,
    /// Nothing was created: the row is pending again without its key.
    Released,
}

/// The state of one UBO, as a validation request checks it.
pub(crate) struct UboState {
    pub id: i64,
    pub state: UboCreateState,
    pub is_active: bool,
    pub dirty: bool,
    /// A create, update or deactivation of it is in flight.
    pub busy: bool,
}

impl MangopayUbo {
    /// The local id.
    pub fn id(&self) -> i64 {
        self.id
    }
    /// The declaration's local id.
    pub fn declaration_id(&self) -> i64 {
        self.declaration_id
    }
    /// The beneficial owner's details as stored (and, once created and no update is due, as
    /// Mangopay holds them).
    pub fn fields(&self) -> &UboFields {
        &self.fields
    }
    /// `IsActive`: `false` once disregarded ([`deactivate`](Self::deactivate)), for good.
    pub fn is_active(&self) -> bool {
        self.is_active
    }
    /// Mangopay's id, once created.
    pub fn mangopay_id(&self) -> Option<&str> {
        self.mangopay_id.as_deref()
    }
    /// `CreationDate`.
    pub fn mangopay_created_at(&self) -> Option<DateTime<Utc>> {
        self.mangopay_created_at
    }
    /// How far its create went.
    pub fn create_state(&self) -> UboCreateState {
        self.create_state
    }
    /// How many times a create was started.
    pub fn create_attempts(&self) -> i32 {
        self.create_attempts
    }
    /// Whether its details changed since Mangopay last took them: an update
    /// ([`push_update`](Self::push_update)) is due.
    pub fn update_due(&self) -> bool {
        self.update_due
    }
    /// Why its last request failed, in the shape of Mangopay's error report.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Adds a UBO with `fields` to the declaration `declaration_id` (local id). The details
    /// are checked first ([`UboFields::validate`]); the declaration must not be submitted nor
    /// being submitted ([`Error::WrongState`]) and holds at most [`MAX_UBOS`] UBOs (those
    /// Mangopay holds disregarded included; [`Error::Validation`]). Nothing is sent: see
    /// [`create`](Self::create).
    pub async fn add(
        db: &Db,
        declaration_id: i64,
        fields: UboFields,
    ) -> Result<MangopayUbo, Error> {
        fields.validate()?;
        let columns = fields.columns();
        db.write(move |conn| {
            let at = now();
            open_declaration(conn, declaration_id, at, "UBOs can only be added")?;
            let counted = ubos::table
                .filter(ubos::declaration_id.eq(declaration_id))
                .filter(
                    ubos::is_active
                        .eq(true)
                        .or(ubos::create_state.eq_any(["sending", "created", "unknown"])),
                )
                .count()
                .get_result::<i64>(conn)?;
            if counted >= MAX_UBOS {
                let mut e = ValidationErrors::new();
                e.push(
                    "declaration_id",
                    FieldErrorKind::NotAllowed(format!(
                        "the declaration already has {counted} UBOs: Mangopay takes at most \
                         {MAX_UBOS} (those disregarded included)"
                    )),
                );
                return Err(Error::Validation(e));
            }
            let id = diesel::insert_into(ubos::table)
                .values((
                    columns,
                    ubos::declaration_id.eq(declaration_id),
                    ubos::created_at.eq(at),
                    ubos::updated_at.eq(at),
                ))
                .returning(ubos::id)
                .get_result::<i64>(conn)?;
            tracing::info!(id, declaration_id, "UBO added");
            Ok(load(conn, id)?.ok_or(not_found(id))?.ubo())
        })
        .await
    }

    /// Loads the UBO `id`.
    pub async fn get(db: &Db, id: i64) -> Result<MangopayUbo, Error> {
        db.run(move |conn| load(conn, id)?.map(|r| r.ubo()).ok_or(not_found(id)))
            .await
    }

    /// The UBOs of the declaration `declaration_id` (local id), in the order they were added.
    pub async fn for_declaration(db: &Db, declaration_id: i64) -> Result<Vec<MangopayUbo>, Error> {
        db.run(move |conn| {
            let rows = ubos::table
                .filter(ubos::declaration_id.eq(declaration_id))
                .order(ubos::id)
                .select(UboRow::as_select())
                .load::<UboRow>(conn)?;
            Ok::<_, Error>(rows.iter().map(UboRow::ubo).collect())
        })
        .await
    }

    /// Creates the UBO `id` at Mangopay, at most once: a created UBO sends nothing; a UBO
    /// whose answer was lost is sent again with the same idempotency key. The declaration must
    /// have been created at Mangopay ([`Error::ParentNotCreated`]) and be open (`CREATED` or
    /// `INCOMPLETE`, validation not asked: [`Error::WrongState`]). Another call creating it
    /// now is an [`Error::Busy`].
    ///
    /// A refusal by Mangopay marks the UBO `refused` (the error is returned and kept on the
    /// row); a failure that retrying may fix leaves it `sending` for the next call (same
    /// key). When the outcome cannot be learnt from the key, the declaration decides (see the
    /// module's documentation); several candidates mark the UBO `unknown`
    /// ([`Error::NeedsOperator`]). Returns the UBO's state.
    pub async fn create(
        db: &Db,
        client: &MangopayClient,
        id: i64,
    ) -> Result<UboCreateState, Error> {
        let mut released = false;
        loop {
            let lease = Lease::random_for("ubo");
            let until = now() + lease_duration(client.config().timeout());
            let me = lease.owner().to_owned();
            let send = match db.write(move |conn| claim(conn, id, &me, until)).await? {
                Claim::Done => return Ok(UboCreateState::Created),
                Claim::Send(send) => send,
            };
            let step = if send.expired {
                Step::LookUp {
                    error: None,
                    settled: false,
                }
            } else {
                let path = format!("{}/ubos", send.declaration);
                match client.post_keyed(&path, &send.body, &send.key).await {
                    Ok(posted) if created_id(&posted.body).is_some() => Step::Created(posted.body),
                    Ok(posted) if posted.replayed => Step::LookUp {
                        error: None,
                        settled: true,
                    },
                    // An answer without the object: the resend reads the first one back.
                    Ok(_) => Step::Retry(ApiError::Decode {
                        status: 200,
                        message: "the answer has no UBO Id".into(),
                    }),
                    Err(error) => verdict(error, send.resend),
                }
            };
            let stored = |e: &ApiError| serde_json::to_string(&e.to_stored()).unwrap_or_default();
            match step {
                Step::Created(body) => return settle_created(db, id, &send.key, &body).await,
                Step::Refused(error) => {
                    tracing::warn!(id, %error, "Mangopay refused the UBO");
                    let settled = settle(
                        db,
                        id,
                        &send.key,
                        UboCreateState::Refused,
                        Some(stored(&error)),
                    )
                    .await?;
                    if !settled {
                        return moved_on(db, id).await.map(|()| UboCreateState::Created);
                    }
                    return Err(error.into());
                }
                Step::NewKey(error) => {
                    tracing::warn!(id, %error, "the UBO's key holds an answer to a request never processed; a new key is used next");
                    new_key(db, id, &send.key, stored(&error)).await?;
                    return Err(error.into());
                }
                Step::Retry(error) => {
                    tracing::warn!(id, %error, "UBO create failed; it is retried with the same key");
                    release(db, id, &lease, Some(stored(&error))).await?;
                    return Err(error.into());
                }
                Step::LookUp { error, settled } => {
                    match look_up(db, client, id, &send, &lease, error, settled).await? {
                        Looked::Created => return Ok(UboCreateState::Created),
                        // Nothing was created: sent again at once with a new key (once).
                        Looked::Released if !released => released = true,
                        Looked::Released => {
                            return Err(Error::Busy {
                                model: MODEL,
                                id,
                                until: Utc::now(),
                            });
                        }
                    }
                }
            }
        }
    }

    /// For operators: settles a UBO whose create outcome is `unknown`, after checking the
    /// declaration at Mangopay. `Some(mangopay_id)`: that UBO of the declaration is this
    /// row's (it must be no other row's); `None`: Mangopay holds none of it, and the next
    /// create sends it with a new key. Any other state is an [`Error::WrongState`].
    pub async fn resolve_unknown(
        db: &Db,
        id: i64,
        mangopay_id: Option<&str>,
    ) -> Result<MangopayUbo, Error> {
        let wanted = mangopay_id.map(str::to_owned);
        db.write(move |conn| {
            let row = load(conn, id)?.ok_or(not_found(id))?;
            if row.state() != UboCreateState::Unknown {
                return Err(Error::WrongState {
                    model: MODEL,
                    id,
                    reason: format!(
                        "only a UBO whose create outcome is unknown can be resolved; this one \
                         is {}",
                        row.create_state
                    ),
                });
            }
            let at = now();
            let target = ubos::table
                .find(id)
                .filter(ubos::create_state.eq("unknown"));
            match &wanted {
                Some(mangopay_id) => {
                    let holder = ubos::table
                        .filter(ubos::mangopay_id.eq(mangopay_id))
                        .select(ubos::id)
                        .first::<i64>(conn)
                        .optional()?;
                    if let Some(other) = holder {
                        return Err(Error::AdoptRefused {
                            model: MODEL,
                            id,
                            mangopay_id: mangopay_id.clone(),
                            reason: format!("UBO {other} already has it"),
                        });
                    }
                    diesel::update(target)
                        .set((
                            ubos::create_state.eq("created"),
                            ubos::mangopay_id.eq(Some(mangopay_id)),
                            ubos::lease_owner.eq(None::<String>),
                            ubos::lease_until.eq(None::<NaiveDateTime>),
                            ubos::updated_at.eq(at),
                        ))
                        .execute(conn)?
                }
                None => diesel::update(target)
                    .set((
                        ubos::create_state.eq("pending"),
                        ubos::create_key.eq(None::<String>),
                        ubos::create_key_at.eq(None::<NaiveDateTime>),
                        ubos::lease_owner.eq(None::<String>),
                        ubos::lease_until.eq(None::<NaiveDateTime>),
                        ubos::updated_at.eq(at),
                    ))
                    .execute(conn)?,
            };
            tracing::warn!(
                id,
                adopted = wanted.is_some(),
                "UBO resolved by an operator"
            );
            Ok(load(conn, id)?.ok_or(not_found(id))?.ubo())
        })
        .await
    }

    /// Stores new details for the UBO `id` (checked first). Only an active UBO of an open
    /// declaration (not submitted nor being submitted) changes ([`Error::WrongState`]), and
    /// not while its create is in flight or of unknown outcome. Nothing is sent: a created
    /// UBO is marked as having an update due ([`push_update`](Self::push_update)); a UBO
    /// Mangopay refused goes back to pending, to be created with a new key.
    pub async fn update(db: &Db, id: i64, fields: UboFields) -> Result<MangopayUbo, Error> {
        fields.validate()?;
        let columns = fields.columns();
        db.write(move |conn| {
            let at = now();
            let row = load(conn, id)?.ok_or(not_found(id))?;
            open_declaration(conn, row.declaration_id, at, "UBOs can only be changed")?;
            let row = load(conn, id)?.ok_or(not_found(id))?;
            let wrong = |reason: String| Error::WrongState {
                model: MODEL,
                id,
                reason,
            };
            if !row.is_active {
                return Err(wrong("the UBO was deactivated: it cannot change".into()));
            }
            let target = ubos::table
                .find(id)
                .filter(ubos::create_state.eq(&row.create_state));
            let n = match row.state() {
                UboCreateState::Pending => diesel::update(target)
                    .set((&columns, ubos::updated_at.eq(at)))
                    .execute(conn)?,
                UboCreateState::Refused => diesel::update(target)
                    .set((
                        &columns,
                        ubos::create_state.eq("pending"),
                        ubos::create_key.eq(None::<String>),
                        ubos::create_key_at.eq(None::<NaiveDateTime>),
                        ubos::updated_at.eq(at),
                    ))
                    .execute(conn)?,
                UboCreateState::Created => diesel::update(target)
                    .set((&columns, ubos::dirty.eq(true), ubos::updated_at.eq(at)))
                    .execute(conn)?,
                state @ (UboCreateState::Sending | UboCreateState::Unknown) => {
                    return Err(wrong(format!(
                        "the UBO's create is {state}: it cannot change until its outcome is \
                         settled"
                    )));
                }
            };
            if n != 1 {
                return Err(Error::Busy {
                    model: MODEL,
                    id,
                    until: Utc::now(),
                });
            }
            tracing::info!(id, "UBO details changed");
            Ok(load(conn, id)?.ok_or(not_found(id))?.ubo())
        })
        .await
    }

    /// Sends the details of the UBO `id` to Mangopay (`PUT` of the whole UBO) if an update is
    /// due; nothing is sent otherwise. The UBO must be created and active, and its
    /// declaration open ([`Error::WrongState`]). The update is marked done only if the details
    /// did not change while it was in flight (then another update is due). A failure keeps
    /// the update due, with the error on the row.
    pub async fn push_update(db: &Db, client: &MangopayClient, id: i64) -> Result<(), Error> {
        let lease = Lease::random_for("ubo");
        let until = now() + lease_duration(client.config().timeout());
        let me = lease.owner().to_owned();
        let claimed = db
            .write(move |conn| {
                let at = now();
                let row = load(conn, id)?.ok_or(not_found(id))?;
                if !row.dirty {
                    return Ok(None);
                }
                let wrong = |reason: String| Error::WrongState {
                    model: MODEL,
                    id,
                    reason,
                };
                if !row.is_active {
                    return Err(wrong("the UBO was deactivated: it is not updated".into()));
                }
                let Some(mangopay_id) = row.mangopay_id.clone() else {
                    return Err(Error::NotCreated { model: MODEL, id });
                };
                let declaration =
                    open_declaration(conn, row.declaration_id, at, "UBOs can only be updated")?;
                take_lease(conn, &row, me.as_str(), until, at)?;
                Ok(Some((
                    format!("{}/ubos/{mangopay_id}", declaration.path()),
                    row.fields().to_api(),
                    at,
                )))
            })
            .await?;
        let Some((path, body, claimed_at)) = claimed else {
            return Ok(());
        };
        match client.put(&path, &body).await {
            Ok(_) => {
                let me = lease.owner().to_owned();
                let done = db
                    .write(move |conn| {
                        let at = now();
                        let n = diesel::update(
                            ubos::table
                                .find(id)
                                .filter(ubos::lease_owner.eq(Some(me.as_str())))
                                .filter(ubos::updated_at.eq(claimed_at)),
                        )
                        .set((
                            ubos::dirty.eq(false),
                            ubos::last_error.eq(None::<String>),
                            ubos::last_error_at.eq(None::<NaiveDateTime>),
                            ubos::lease_owner.eq(None::<String>),
                            ubos::lease_until.eq(None::<NaiveDateTime>),
                            ubos::updated_at.eq(at),
                        ))
                        .execute(conn)?;
                        Ok::<_, Error>(n == 1)
                    })
                    .await?;
                if !done {
                    tracing::info!(
                        id,
                        "the UBO changed while its update was in flight; another update is due"
                    );
                    release(db, id, &lease, None).await?;
                } else {
                    tracing::info!(id, "UBO updated at Mangopay");
                }
                Ok(())
            }
            Err(error) => {
                tracing::warn!(id, %error, "UBO update failed");
                let stored = serde_json::to_string(&error.to_stored()).unwrap_or_default();
                release(db, id, &lease, Some(stored)).await?;
                Err(error.into())
            }
        }
    }

    /// Disregards the UBO `id` for good (`IsActive: false`): at Mangopay (`PUT`) if it was
    /// created there, locally only if it never was (pending or refused). Refused for a UBO
    /// already inactive, one whose create is in flight or of unknown outcome, and one of a
    /// declaration that is not open ([`Error::WrongState`]). Safe to call again after a lost
    /// answer: the UBO is read back.
    pub async fn deactivate(
        db: &Db,
        client: &MangopayClient,
        id: i64,
    ) -> Result<MangopayUbo, Error> {
        let lease = Lease::random_for("ubo");
        let until = now() + lease_duration(client.config().timeout());
        let me = lease.owner().to_owned();
        let claimed = db
            .write(move |conn| {
                let at = now();
                let row = load(conn, id)?.ok_or(not_found(id))?;
                let wrong = |reason: String| Error::WrongState {
                    model: MODEL,
                    id,
                    reason,
                };
                if !row.is_active {
                    return Err(wrong("the UBO is already deactivated".into()));
                }
                let declaration =
                    open_declaration(conn, row.declaration_id, at, "UBOs can only be deactivated")?;
                match row.state() {
                    UboCreateState::Pending | UboCreateState::Refused => {
                        // Only as read: a create that claimed it meanwhile goes on, and this
                        // deactivation is told the UBO is busy.
                        let n = diesel::update(
                            ubos::table
                                .find(id)
                                .filter(ubos::create_state.eq(&row.create_state))
                                .filter(ubos::create_attempts.eq(row.create_attempts))
                                .filter(ubos::updated_at.eq(row.updated_at))
                                .filter(ubos::lease_until.is_null().or(ubos::lease_until.le(at))),
                        )
                        .set((
                            ubos::is_active.eq(false),
                            ubos::dirty.eq(false),
                            ubos::updated_at.eq(at),
                        ))
                        .execute(conn)?;
                        if n != 1 {
                            return Err(Error::Busy {
                                model: MODEL,
                                id,
                                until: Utc::now(),
                            });
                        }
                        Ok(None)
                    }
                    state @ (UboCreateState::Sending | UboCreateState::Unknown) => Err(wrong(
                        format!("the UBO's create is {state}: settle it first"),
                    )),
                    UboCreateState::Created => {
                        take_lease(conn, &row, me.as_str(), until, at)?;
                        let mangopay_id = row.mangopay_id.clone().unwrap_or_default();
                        Ok(Some(format!("{}/ubos/{mangopay_id}", declaration.path())))
                    }
                }
            })
            .await?;
        let Some(path) = claimed else {
            tracing::info!(id, "UBO deactivated (never sent)");
            return Self::get(db, id).await;
        };
        let answer = match client.put(&path, &json!({ "IsActive": false })).await {
            Ok(answer) => answer,
            // The answer may have been lost after Mangopay took it: the UBO says.
            Err(error) => match client.get(&path).await {
                Ok(shown) if read::boolean(&shown, "IsActive") == Some(false) => shown,
                _ => {
                    tracing::warn!(id, %error, "UBO deactivation failed");
                    let stored = serde_json::to_string(&error.to_stored()).unwrap_or_default();
                    release(db, id, &lease, Some(stored)).await?;
                    return Err(error.into());
                }
            },
        };
        let me = lease.owner().to_owned();
        let inactive = read::boolean(&answer, "IsActive") == Some(false);
        db.write(move |conn| {
            let at = now();
            if inactive {
                diesel::update(ubos::table.find(id))
                    .set((
                        ubos::is_active.eq(false),
                        ubos::dirty.eq(false),
                        ubos::last_error.eq(None::<String>),
                        ubos::last_error_at.eq(None::<NaiveDateTime>),
                        ubos::updated_at.eq(at),
                    ))
                    .execute(conn)?;
            }
            diesel::update(
                ubos::table
                    .find(id)
                    .filter(ubos::lease_owner.eq(Some(me.as_str()))),
            )
            .set((
                ubos::lease_owner.eq(None::<String>),
                ubos::lease_until.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?;
            Ok::<_, Error>(())
        })
        .await?;
        tracing::info!(id, inactive, "UBO deactivated at Mangopay");
        Self::get(db, id).await
    }
}

/// The verdict on a failed create; `resend`: the key had been committed before.
fn verdict(error: ApiError, resend: bool) -> Step {
    if matches!(error, ApiError::ReplayUnavailable { .. }) {
        return Step::LookUp {
            error: Some(error),
            settled: false,
        };
    }
    let Some(status) = error.status() else {
        return Step::Retry(error);
    };
    if error.never_sent() {
        return Step::Retry(error);
    }
    let replayed = error.replayed();
    match status {
        // Never looked at (credentials, permissions, the rate limit): as a stored answer it
        // blocks the key; as a direct one it leaves the key unused.
        401 | 403 | 407 | 429 if replayed => Step::NewKey(error),
        401 | 403 | 407 | 429 => Step::Retry(error),
        // The key's first request ended in a server error: what it did is in the declaration.
        408 | 500.. if replayed => Step::LookUp {
            error: Some(error),
            settled: true,
        },
        408 | 500.. => Step::Retry(error),
        // A 4xx to a key sent before, not read back: it may answer the resend itself (a
        // proxy, a rule checked before the key), not the UBO.
        400..=499 if resend && !replayed => Step::LookUp {
            error: Some(error),
            settled: false,
        },
        400..=499 => Step::Refused(error),
        _ => Step::Retry(error),
    }
}

/// The `Id` of a created UBO in an answer.
fn created_id(body: &Value) -> Option<&str> {
    body.get("Id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
}

/// Reads the declaration to learn whether the create sent with the row's key made the UBO,
/// and settles the row accordingly.
async fn look_up(
    db: &Db,
    client: &MangopayClient,
    id: i64,
    send: &Send,
    lease: &Lease,
    error: Option<ApiError>,
    settled: bool,
) -> Result<Looked, Error> {
    let key = send.key.to_string();
    if !settled {
        // The key's request may still be running at Mangopay: the declaration is only
        // authoritative once it has had time to finish.
        let wait = chrono::Duration::from_std(client.config().reconcile_after())
            .unwrap_or(chrono::Duration::MAX);
        let from = send.last_touch + wait;
        if from > now() {
            let stored = error
                .as_ref()
                .map(|e| serde_json::to_string(&e.to_stored()).unwrap_or_default());
            release(db, id, lease, stored).await?;
            let until = from.and_utc();
            return Err(match error {
                Some(source) => Error::OutcomeUnknown {
                    model: MODEL,
                    id,
                    key,
                    retry_at: Some(until),
                    source,
                },
                None => Error::Busy {
                    model: MODEL,
                    id,
                    until,
                },
            });
        }
    }
    let shown = match client.get(&send.declaration).await {
        Ok(shown) => shown,
        Err(source) => {
            let stored = serde_json::to_string(&source.to_stored()).unwrap_or_default();
            release(db, id, lease, Some(stored)).await?;
            return Err(Error::OutcomeUnknown {
                model: MODEL,
                id,
                key,
                retry_at: None,
                source,
            });
        }
    };
    let matching: Vec<(String, Value)> = shown
        .get("Ubos")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|u| {
            u.get("FirstName").and_then(Value::as_str) == Some(send.first_name.as_str())
                && u.get("LastName").and_then(Value::as_str) == Some(send.last_name.as_str())
                && read::int(u, "Birthday").flatten() == Some(send.birthday)
        })
        .filter_map(|u| created_id(u).map(|i| (i.to_owned(), u.clone())))
        .collect();
    let ids: Vec<String> = matching.iter().map(|(i, _)| i.clone()).collect();
    let recorded = db
        .run(move |conn| {
            ubos::table
                .filter(ubos::mangopay_id.eq_any(ids))
                .select(ubos::mangopay_id)
                .load::<Option<String>>(conn)
                .map_err(Error::from)
        })
        .await?;
    let mut candidates: Vec<(String, Value)> = matching
        .into_iter()
        .filter(|(i, _)| !recorded.iter().flatten().any(|r| r == i))
        .collect();
    match candidates.len() {
        1 => {
            let (found, ubo) = candidates.remove(0);
            tracing::info!(id, mangopay_id = %found, "the UBO was found in its declaration");
            settle_created(db, id, &send.key, &ubo).await?;
            Ok(Looked::Created)
        }
        0 => {
            let why = note(
                "idempotency_key_released",
                format!(
                    "the declaration holds no UBO created with key {key} ({}): it is sent \
                     again with a new key",
                    error.map_or_else(|| "the key is too old to resend".into(), |e| e.to_string())
                ),
            );
            tracing::info!(id, "the UBO is not in its declaration: nothing was created");
            new_key(db, id, &send.key, why).await?;
            Ok(Looked::Released)
        }
        _ => {
            let ids: Vec<String> = candidates.into_iter().map(|(i, _)| i).collect();
            let reason = format!(
                "whether the create with key {key} made the UBO cannot be learnt, and the \
                 declaration holds {} UBOs of the same name and birthday that no row has: {}",
                ids.len(),
                ids.join(", ")
            );
            tracing::error!(id, candidates = ?ids, "UBO create outcome unknown; needs an operator");
            settle(
                db,
                id,
                &send.key,
                UboCreateState::Unknown,
                Some(note("outcome_unknown", reason.clone())),
            )
            .await?;
            Err(Error::NeedsOperator {
                model: MODEL,
                id,
                key,
                reason,
                candidates: ids,
            })
        }
    }
}

/// The answer to the create sent with `key` is the UBO `ubo`: recorded if the row still waits
/// for that key's answer.
async fn settle_created(
    db: &Db,
    id: i64,
    key: &IdempotencyKey,
    ubo: &Value,
) -> Result<UboCreateState, Error> {
    let mangopay_id = created_id(ubo).unwrap_or_default().to_owned();
    let created_at = read::timestamp(ubo, "CreationDate").flatten();
    let active = read::boolean(ubo, "IsActive").unwrap_or(true);
    let key = key.to_string();
    let recorded_id = mangopay_id.clone();
    let written = db
        .write(move |conn| {
            let at = now();
            diesel::update(
                ubos::table
                    .find(id)
                    .filter(ubos::create_key.eq(Some(key)))
                    .filter(ubos::create_state.eq("sending")),
            )
            .set((
                ubos::create_state.eq("created"),
                ubos::mangopay_id.eq(Some(recorded_id)),
                ubos::mangopay_created_at.eq(created_at),
                ubos::is_active.eq(active),
                ubos::last_error.eq(None::<String>),
                ubos::last_error_at.eq(None::<NaiveDateTime>),
                ubos::lease_owner.eq(None::<String>),
                ubos::lease_until.eq(None::<NaiveDateTime>),
                ubos::updated_at.eq(at),
            ))
            .execute(conn)
            .map_err(Error::from)
        })
        .await;
    match written {
        Ok(1) => {
            tracing::info!(id, %mangopay_id, "UBO created at Mangopay");
            Ok(UboCreateState::Created)
        }
        Ok(_) => moved_on(db, id).await.map(|()| UboCreateState::Created),
        Err(Error::Db(e)) if e.is_unique_violation() => {
            let reason = format!(
                "Mangopay answered with UBO {mangopay_id}, which another row already holds"
            );
            tracing::error!(id, %mangopay_id, "a UBO Mangopay answered is another row's");
            let stored = note("outcome_unknown", reason.clone());
            let key = key_of(db, id).await?;
            if let Some(k) = &key {
                settle(db, id, k, UboCreateState::Unknown, Some(stored)).await?;
            }
            Err(Error::NeedsOperator {
                model: MODEL,
                id,
                key: key.map(|k| k.to_string()).unwrap_or_default(),
                reason,
                candidates: vec![mangopay_id],
            })
        }
        Err(e) => Err(e),
    }
}

/// The row's key, if it has one.
async fn key_of(db: &Db, id: i64) -> Result<Option<IdempotencyKey>, Error> {
    let row = db
        .run(move |conn| load(conn, id).map_err(Error::from))
        .await?;
    Ok(row
        .and_then(|r| r.create_key)
        .and_then(|k| IdempotencyKey::new(k).ok()))
}

/// The row no longer waited for this call's answer: someone else (another call after this
/// one's lease ended, an operator) settled it. Ok if it is created; [`Error::Busy`] otherwise.
async fn moved_on(db: &Db, id: i64) -> Result<(), Error> {
    let current = MangopayUbo::get(db, id).await?;
    tracing::warn!(id, now = %current.create_state, "the UBO changed while its create was in flight");
    match current.create_state {
        UboCreateState::Created => Ok(()),
        _ => Err(Error::Busy {
            model: MODEL,
            id,
            until: Utc::now(),
        }),
    }
}

/// Writes the declaration `declaration_id` first (a validation request writes it first too,
/// so the two wait for each other) and checks that it is open: not submitted and not being
/// submitted. `what` says what needs it open. Returns where the declaration is at Mangopay
/// when it is created there.
fn open_declaration(
    conn: &mut AnyConnection,
    declaration_id: i64,
    at: NaiveDateTime,
    what: &str,
) -> Result<Declaration, Error> {
    let open = diesel::update(
        declarations::table
            .find(declaration_id)
            .filter(declarations::validation_asked_at.is_null())
            .filter(
                declarations::status
                    .is_null()
                    .or(declarations::status.eq_any(["CREATED", "INCOMPLETE"])),
            ),
    )
    .set(declarations::updated_at.eq(at))
    .execute(conn)?;
    let found = declarations::table
        .find(declaration_id)
        .select((
            declarations::status,
            declarations::mangopay_id,
            declarations::user_id,
        ))
        .first::<(Option<String>, Option<String>, i64)>(conn)
        .optional()?;
    let Some((status, mangopay_id, user_id)) = found else {
        let mut e = ValidationErrors::new();
        e.push(
            "declaration_id",
            FieldErrorKind::NotAllowed(format!(
                "there is no MangopayUboDeclaration with id {declaration_id}"
            )),
        );
        return Err(Error::Validation(e));
    };
    if open == 0 {
        return Err(Error::WrongState {
            model: DECLARATION,
            id: declaration_id,
            reason: match status.as_deref() {
                None | Some("CREATED" | "INCOMPLETE") => format!(
                    "{what} before validation is asked; it is being asked (or was, and its \
                     outcome is not settled)"
                ),
                Some(status) => {
                    format!("{what} while the declaration is CREATED or INCOMPLETE; it is {status}")
                }
            },
        });
    }
    let user = mangopay_users::table
        .find(user_id)
        .select(mangopay_users::mangopay_id)
        .first::<Option<String>>(conn)?;
    Ok(Declaration {
        mangopay_id: mangopay_id.unwrap_or_default(),
        user: user.unwrap_or_default(),
    })
}

/// Takes the row's lease for `me`: a compare-and-set on the state and attempts read in `row`
/// and a lease that is free or has run out, so of two calls taking it at once one gets it and
/// the other is told the UBO is busy.
fn take_lease(
    conn: &mut AnyConnection,
    row: &UboRow,
    me: &str,
    until: NaiveDateTime,
    at: NaiveDateTime,
) -> Result<(), Error> {
    if let Some(held) = row.held_at(at) {
        return Err(Error::Busy {
            model: MODEL,
            id: row.id,
            until: held.and_utc(),
        });
    }
    let taken = diesel::update(
        ubos::table
            .find(row.id)
            .filter(ubos::create_state.eq(&row.create_state))
            .filter(ubos::create_attempts.eq(row.create_attempts))
            .filter(ubos::is_active.eq(row.is_active))
            .filter(ubos::updated_at.eq(row.updated_at))
            .filter(ubos::lease_until.is_null().or(ubos::lease_until.le(at))),
    )
    .set((
        ubos::lease_owner.eq(Some(me)),
        ubos::lease_until.eq(Some(until)),
        ubos::updated_at.eq(at),
    ))
    .execute(conn)?;
    if taken != 1 {
        return Err(Error::Busy {
            model: MODEL,
            id: row.id,
            until: Utc::now(),
        });
    }
    Ok(())
}

/// Takes the UBO for one create: its key (committed before anything is sent), with what to
/// send and what identifies the UBO in its declaration.
fn claim(
    conn: &mut AnyConnection,
    id: i64,
    me: &str,
    until: NaiveDateTime,
) -> Result<Claim, Error> {
    let row = load(conn, id)?.ok_or(not_found(id))?;
    let at = now();
    match row.state() {
        UboCreateState::Created => return Ok(Claim::Done),
        state @ (UboCreateState::Refused | UboCreateState::Unknown) => {
            return Err(Error::WrongState {
                model: MODEL,
                id,
                reason: format!("the UBO is {state}: it is not sent again"),
            });
        }
        UboCreateState::Pending | UboCreateState::Sending => {}
    }
    if !row.is_active {
        return Err(Error::WrongState {
            model: MODEL,
            id,
            reason: "the UBO was deactivated before it was created: it is not sent".into(),
        });
    }
    if let Some(held) = row.held_at(at) {
        return Err(Error::Busy {
            model: MODEL,
            id,
            until: held.and_utc(),
        });
    }
    let created = declarations::table
        .find(row.declaration_id)
        .select(declarations::mangopay_id)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten();
    if created.is_none() {
        return Err(Error::ParentNotCreated {
            model: MODEL,
            field: "declaration_id",
            parent: DECLARATION,
            parent_id: row.declaration_id,
        });
    }
    let declaration = open_declaration(conn, row.declaration_id, at, "UBOs can only be created")?;
    let crate::sync::KeyToSend {
        key,
        resend,
        expired,
    } = crate::sync::key_to_send(
        "mangopay_ubos",
        id,
        "create_key",
        row.create_key.as_ref(),
        row.create_key_at,
        at,
    )?;
    // A compare-and-set on what was read (every claim bumps the attempts): of two creates
    // claiming the UBO at once, one takes it and the other is told it is busy; neither sends
    // a key the other chose.
    let claimed = diesel::update(
        ubos::table
            .find(id)
            .filter(ubos::create_state.eq(&row.create_state))
            .filter(ubos::create_attempts.eq(row.create_attempts))
            .filter(ubos::is_active.eq(true))
            .filter(ubos::updated_at.eq(row.updated_at))
            .filter(ubos::lease_until.is_null().or(ubos::lease_until.le(at))),
    )
    .set((
        ubos::create_state.eq("sending"),
        ubos::create_key.eq(Some(key.as_str())),
        ubos::create_key_at.eq(row.create_key_at.or(Some(at))),
        ubos::create_attempts.eq(ubos::create_attempts + 1),
        ubos::lease_owner.eq(Some(me)),
        ubos::lease_until.eq(Some(until)),
        ubos::updated_at.eq(at),
    ))
    .execute(conn)?;
    if claimed != 1 {
        return Err(Error::Busy {
            model: MODEL,
            id,
            until: Utc::now(),
        });
    }
    let fields = row.fields();
    Ok(Claim::Send(Box::new(Send {
        key,
        resend,
        expired,
        declaration: declaration.path(),
        body: fields.to_api(),
        first_name: fields.first_name,
        last_name: fields.last_name,
        birthday: birthday_to_api(fields.birthday),
        last_touch: row.updated_at,
    })))
}

/// Records the settled state `state` of the UBO sent with `key` and lets it go. Returns
/// whether it did: nothing is written when the UBO no longer waits for that key's answer.
async fn settle(
    db: &Db,
    id: i64,
    key: &IdempotencyKey,
    state: UboCreateState,
    error: Option<String>,
) -> Result<bool, Error> {
    super::child::settle(
        db,
        super::child::UBOS,
        id,
        key,
        state.as_str(),
        false,
        error,
    )
    .await
}

/// The key sent created nothing (or can never be used): the UBO goes back to `pending`
/// without it, so its next create uses a new key.
async fn new_key(db: &Db, id: i64, key: &IdempotencyKey, error: String) -> Result<(), Error> {
    super::child::give_up_key(db, super::child::UBOS, id, key, error).await
}

/// Lets the UBO go without settling it, noting `error` if there is one.
async fn release(db: &Db, id: i64, lease: &Lease, error: Option<String>) -> Result<(), Error> {
    super::child::release(db, super::child::UBOS, id, lease, error).await
}

/// The state of every UBO of the declaration `declaration_id`, in the order they were added.
pub(crate) fn states(conn: &mut AnyConnection, declaration_id: i64) -> QueryResult<Vec<UboState>> {
    let at = now();
    let rows = ubos::table
        .filter(ubos::declaration_id.eq(declaration_id))
        .order(ubos::id)
        .select((
            ubos::id,
            ubos::create_state,
            ubos::is_active,
            ubos::dirty,
            ubos::lease_until,
        ))
        .load::<(i64, String, bool, bool, Option<NaiveDateTime>)>(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, state, is_active, dirty, lease_until)| UboState {
            id,
            state: UboCreateState::from_db(&state),
            is_active,
            dirty,
            busy: lease_until.is_some_and(|until| until > at),
        })
        .collect())
}

/// Records what a declaration's answer lists of its UBOs (`Ubos`) in the rows that hold them:
/// whether they are still active (a deactivation is for good) and their creation date. UBOs
/// no row holds are left alone (one may be the answer of a create in flight).
pub(crate) fn apply_listed(
    conn: &mut AnyConnection,
    declaration_id: i64,
    listed: &[Value],
) -> QueryResult<()> {
    let mut unknown = 0;
    for item in listed {
        let Some(mangopay_id) = created_id(item) else {
            continue;
        };
        let target = ubos::table
            .filter(ubos::declaration_id.eq(declaration_id))
            .filter(ubos::mangopay_id.eq(mangopay_id));
        if target.count().get_result::<i64>(conn)? == 0 {
            unknown += 1;
            continue;
        }
        if read::boolean(item, "IsActive") == Some(false) {
            diesel::update(target.filter(ubos::is_active.eq(true)))
                .set((ubos::is_active.eq(false), ubos::dirty.eq(false)))
                .execute(conn)?;
        }
        if let Some(created) = read::timestamp(item, "CreationDate").flatten() {
            diesel::update(target.filter(ubos::mangopay_created_at.is_null()))
                .set(ubos::mangopay_created_at.eq(Some(created)))
                .execute(conn)?;
        }
    }
    if unknown > 0 {
        tracing::info!(
            declaration_id,
            unknown,
            "the declaration lists UBOs no row holds"
        );
    }
    Ok(())
}

fn load(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<UboRow>> {
    ubos::table
        .find(id)
        .select(UboRow::as_select())
        .first::<UboRow>(conn)
        .optional()
}

fn not_found(id: i64) -> Error {
    Error::NotFound { model: MODEL, id }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> UboFields {
        UboFields {
            first_name: "Joe".into(),
            last_name: "Blogs".into(),
            address: Address::new("6 Parvis Notre-Dame", "Paris", "75004", "FR").unwrap(),
            nationality: "fr".into(),
            birthday: NaiveDate::from_ymd_opt(1985, 3, 12).unwrap(),
            birthplace_city: "Lyon".into(),
            birthplace_country: "FR".into(),
        }
    }

    #[test]
    fn every_field_is_checked_and_named() {
        assert!(fields().validate().is_ok());
        let bad = UboFields {
            first_name: " ".into(),
            last_name: "x".repeat(101),
            address: Address::default(),
            nationality: "XX".into(),
            birthday: Utc::now().date_naive() + chrono::Duration::days(2),
            birthplace_city: String::new(),
            birthplace_country: "France".into(),
        };
        let e = bad.validate().unwrap_err();
        for field in [
            "first_name",
            "last_name",
            "address.line1",
            "address.city",
            "address.postal_code",
            "address.country",
            "nationality",
            "birthday",
            "birthplace_city",
            "birthplace_country",
        ] {
            assert!(e.has(field), "{field}: {e}");
        }
        let old = UboFields {
            birthday: NaiveDate::from_ymd_opt(1850, 1, 1).unwrap(),
            ..fields()
        };
        assert!(old.validate().unwrap_err().has("birthday"));
    }

    #[test]
    fn the_body_holds_every_field_and_codes_are_stored_upper_case() {
        let body = fields().to_api();
        assert_eq!(body["Birthday"], 479_433_600);
        assert_eq!(body["Birthplace"]["City"], "Lyon");
        assert_eq!(body["Address"]["Country"], "FR");
        assert_eq!(fields().columns().nationality, "FR");
    }

    fn mangopay(status: u16, replayed: bool) -> ApiError {
        ApiError::Mangopay {
            status,
            body: Box::default(),
            replayed,
            retry_after: None,
        }
    }

    #[test]
    fn failures_map_to_what_the_row_does_next() {
        assert!(matches!(
            verdict(mangopay(400, false), false),
            Step::Refused(_)
        ));
        assert!(matches!(
            verdict(mangopay(400, true), true),
            Step::Refused(_)
        ));
        assert!(matches!(
            verdict(mangopay(400, false), true),
            Step::LookUp { settled: false, .. }
        ));
        assert!(matches!(
            verdict(mangopay(500, false), false),
            Step::Retry(_)
        ));
        assert!(matches!(
            verdict(mangopay(500, true), true),
            Step::LookUp { settled: true, .. }
        ));
        assert!(matches!(
            verdict(mangopay(401, false), false),
            Step::Retry(_)
        ));
        assert!(matches!(
            verdict(mangopay(429, true), true),
            Step::NewKey(_)
        ));
        let unavailable = ApiError::ReplayUnavailable {
            key: "k".into(),
            source: Box::new(mangopay(404, false)),
        };
        assert!(matches!(
            verdict(unavailable, true),
            Step::LookUp { settled: false, .. }
        ));
    }
}
