//! The sync core: how every resource is saved, created, updated, refreshed, reconciled and
//! swept. A resource ([`Resource`]) only says what its row is and how it maps to Mangopay's
//! API; everything below is written once, here.
//!
//! # The sync columns
//! Every resource table carries the same columns next to its own:
//! `mangopay_id` (unique, NULL until Mangopay accepted the object), `sync_state`
//! ([`SyncState`]), the create's idempotency key with the time of its first use and of its last
//! send (`create_idempotency_key`, `create_idempotency_key_at`, `create_sent_at`), the row
//! version its first request was built from (`create_key_version`), `create_key_spent`, a lease
//! (`lease_owner`, `lease_until`), `row_version`, `dirty`, `sync_attempts`, `last_error(_at)`,
//! `api_payload`, `created_at`, `updated_at`.
//!
//! The create ledger is kept on the row, not in a table of requests: the claim and the record
//! are single-row compare-and-set writes on the very row whose data they guard (its key, its
//! lease, its version), so no transaction spans two tables and no read needs a join;
//! applications filter and join on `sync_state` and `mangopay_id` directly; deleting a row
//! cannot orphan its ledger. The price is one sweep query per table instead of one in all,
//! paid once a minute. One table is shared: `mangopay_orphans` keeps, for good, any object
//! Mangopay created for a key its row no longer holds ([`orphans`]).
//!
//! # Create (write-ahead)
//! 1. **Claim**, one transaction: the lease is taken (one holder at a time, see *Leases*), the
//!    row's key is committed (a fresh UUID with the row version it is built from, or the key
//!    of an earlier unconfirmed attempt), the row goes `pending`, the request is built from the
//!    row as it is now, with its parents (owner, wallets, bank account) read as committed
//!    ([`Resource::resolve`]). Before a key's first send the parents are checked: created at
//!    Mangopay, usable, in the same currency ([`Resource::parents_ready`]); a resend is never
//!    held back by a parent that changed since. The claim is one conditional `UPDATE`, never
//!    a read then a write. Bad input rolls the transaction back: nothing is written or sent.
//! 2. **Send**: `POST` with the key and a `Tag` carrying the row's marker (`dm:{id}:{key}`,
//!    after the application's tag; see [`tag`]).
//! 3. **Record**, one transaction, conditional on the key that was sent and on the row having
//!    no Mangopay id: the id and payload, then (in a savepoint, so that a value a column cannot
//!    hold is noted on the row instead of undoing the id) Mangopay's fields. The application's
//!    own fields are written only if the row still has the version the object was built from:
//!    this request's version for its own answer; the key's first version for an answer read
//!    back by key or found by tag, which may describe an older body. Otherwise the row is
//!    marked `dirty` and its newer fields reach Mangopay with an update. A writer whose
//!    condition fails lost a race and changes nothing but its own lease: a slow or duplicate
//!    worker can never turn a `synced` row back into `pending` or `failed`.
//!
//! What the answer means is decided by a pure function (`outcome.rs`, the table there):
//! created; refused (a 4xx to the key's first send, or the key's own stored 4xx: the key is
//! released, the row `failed`); not processed (429, no connection, no token: the key is kept);
//! or **unknown** (5xx, timeout, lost connection, an unreadable 2xx, a 409 whose first answer
//! cannot be read back, and any refusal of a *resend*, which says nothing about the key's
//! earlier request). Unknown never becomes "not created" without evidence: the key stays, the
//! row stays `pending`, and the next attempt resends the same key (Mangopay answers 409 and
//! the first answer is read back with `GET /responses/{key}`). When that first answer cannot
//! be read, the key is *spent*: it is looked up again, not resent, and once
//! [`reconcile_after`](crate::ClientConfig::reconcile_after) has passed since its last send,
//! the outcome is settled by **reconciliation**:
//!
//! - the resource is listed newest first ([`Resource::listing`]) back to before the key's
//!   first use, and the objects whose tag carries the row's marker are collected (the lease
//!   is renewed before each page);
//! - one found: it is read and recorded as the create's answer (same conditional write);
//! - none found: the key is released (conditional on the key, on the lease, and on the key's
//!   last send having settled) and the create is sent again with a fresh key in the same call;
//! - several, or too many objects to look through: the row goes `failed` with its key, for an
//!   operator, who checks Mangopay and calls `adopt(mangopay_id)` or `release_key()`; both hold
//!   the row like a worker and refuse when Mangopay's side contradicts them.
//!
//! A key older than 23 hours is never resent (Mangopay forgets keys after 24): it is looked up
//! while its last send may still be processed, then reconciled. There is no dead end: every
//! pending row is settled by a resend, a look-up, or a search by tag.
//!
//! # Hooks
//! The application's [`Hooks`](crate::Hooks) run in the transaction that writes the answer
//! they react to ([`Resource::after_apply`]), in its savepoint: a failed hook undoes the
//! answer's fields with it (the id and payload stay), is noted on the row, and a refresh
//! returns it so that the poll runs again; see [`crate::hooks`].
//!
//! # Save, update, refresh
//! A save bumps `row_version`; on a row Mangopay already has, it also sets `dirty`: the new
//! fields are owed to Mangopay. An update takes the lease and sets `dirty` in one transaction,
//! saves the model (a direct call) and builds the `PUT` body, including the optional fields
//! the application cleared since Mangopay's last answer (see [`body`]). The answer is recorded
//! conditional on the lease; `dirty` is cleared only if the row was not saved meanwhile. A
//! failure that retrying may fix leaves the row `dirty` for the sweep; a refusal (4xx, or a
//! field Mangopay did not clear) clears it unless the row was saved meanwhile, and keeps the
//! error. A refresh writes the application's fields only if the row is not `dirty` and its
//! version did not change while the answer was on its way.
//!
//! # Sweep
//! [`sweep::claim_due`] finds, per table, the rows whose work is due and whose lease is free:
//! creates left `pending` (a crash, retries that ran out, an outage, a released key), rows
//! saved `new` whose enqueue may have been lost, and created rows still `dirty`; it reserves
//! them for the jobs it hands them to, in the same statement. One worker sweeps a table at a
//! time (a PostgreSQL advisory lock; SQLite's write lock), and on PostgreSQL a row a worker is
//! claiming at that moment is skipped, never overwritten.
//!
//! # Leases
//! A running call holds its row under a token of its own (a job's task id, or a random one)
//! for the longest one attempt can take (four request timeouts and a margin), renewed before
//! each further request of a long operation, and frees only its own lease. A lease is taken
//! over when it has expired, by its owner (a task apalis hands out again after its worker
//! died), or when it is only a *reservation* (`reserved-…`): the mark the sweep or a scheduled
//! retry leaves for a job waiting in the queue, which the first job or call to get there takes
//! over. A call that finds another holder's live lease stops ([`Error::Busy`]); if the holder
//! died, its lease expires and the sweep hands the row out again.
//!
//! # Clocks
//! Times come from the clock of the process writing them: the workers' and applications'
//! clocks must agree within seconds (NTP). The margins are 30 s on leases, one hour between the
//! 23 hours a key is resent and Mangopay's 24, and 15 minutes when a search compares this
//! clock with Mangopay's creation dates.

pub mod body;
mod create;
pub mod follow;
mod outcome;
mod reconcile;
mod resource;
mod state;
pub mod store;
pub mod sweep;
pub mod tag;
mod update;

use std::time::Duration;

use chrono::{NaiveDateTime, SubsecRound, Utc};
use serde_json::Value;

pub use self::follow::{Followed, Poll, Polling, next_weekday};
pub(crate) use self::resource::row_accessors;
pub use self::resource::{ApiRequest, Listing, Resource, Scope, UpdateRequest};
pub use self::state::{SyncInfo, SyncState, UnknownSyncState};
pub use self::store::{DueRow, SyncTable};
pub use self::sweep::SweepOptions;
pub(crate) use self::update::record_answer;
use crate::db::Db;
use crate::{Error, IdempotencyKey, MangopayClient};

/// The current time as stored: UTC, microseconds (what PostgreSQL keeps).
pub(crate) fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// How long a lease lasts: the longest one attempt can take (a token request, the request, a
/// resend after a renewed token, the look-up after a 409: four timeouts) and a margin for the
/// database waits around them. Long operations (a search through several pages) renew it
/// before each request. Server-side processing that outlives a client's timeout is what
/// [`reconcile_after`](crate::ClientConfig::reconcile_after) covers, not the lease.
pub(crate) fn lease_duration(timeout: Duration) -> chrono::Duration {
    chrono::Duration::from_std(timeout.saturating_mul(4) + Duration::from_secs(30))
        .unwrap_or(chrono::Duration::MAX)
}

/// Who holds a row while a create or update is in progress: a token, the same across the
/// retries of one job so it can take its own lease back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    owner: String,
}

impl Lease {
    /// The lease of `owner` (a job's token); at most 64 characters are kept.
    pub fn new(owner: impl Into<String>) -> Lease {
        let mut owner = owner.into();
        if owner.len() > 64 {
            let mut end = 64;
            while !owner.is_char_boundary(end) {
                end -= 1;
            }
            owner.truncate(end);
        }
        Lease { owner }
    }

    /// A lease with a fresh random token (one direct call).
    pub fn random() -> Lease {
        Lease::random_for("call")
    }

    /// A lease with a fresh random token that starts with `who`.
    pub fn random_for(who: &str) -> Lease {
        Lease::new(format!("{who}-{}", uuid::Uuid::new_v4().simple()))
    }

    /// A reservation (see [`store::RESERVATION_PREFIX`]) for a job waiting in the queue,
    /// `why` saying whose: `sweep`, `retry`.
    pub fn reservation(why: &str) -> Lease {
        Lease::random_for(&format!("{}{why}", store::RESERVATION_PREFIX))
    }

    /// Whether this token only reserves the row.
    pub fn is_reservation(&self) -> bool {
        self.owner.starts_with(store::RESERVATION_PREFIX)
    }

    /// The token.
    pub fn owner(&self) -> &str {
        &self.owner
    }
}

/// How long a child row's idempotency key (a KYC page's, a UBO's) is sent again: Mangopay
/// keeps a key's first answer for 24 hours; an hour is left for clocks and the request's own
/// time.
pub(crate) const KEY_RESENT_FOR: chrono::Duration = chrono::Duration::hours(23);

/// The key a child row's next send uses, and whether it was sent before: the row's stored
/// key (`column` of `table`), or a new one when it has none.
pub(crate) fn key_to_send(
    table: &'static str,
    id: i64,
    column: &'static str,
    stored: Option<&String>,
    first_use: Option<chrono::NaiveDateTime>,
    at: chrono::NaiveDateTime,
) -> Result<KeyToSend, Error> {
    let (key, resend) = match stored {
        Some(key) => (
            IdempotencyKey::new(key.clone()).map_err(|e| Error::StoredValue {
                table,
                id,
                column,
                value: key.chars().take(200).collect(),
                problem: e.to_string(),
            })?,
            true,
        ),
        None => (IdempotencyKey::generate(), false),
    };
    Ok(KeyToSend {
        key,
        resend,
        expired: first_use.is_some_and(|first| at - first > KEY_RESENT_FOR),
    })
}

/// What [`key_to_send`] found.
pub(crate) struct KeyToSend {
    /// The key.
    pub key: IdempotencyKey,
    /// It was sent before: its stored answer may settle the send.
    pub resend: bool,
    /// It was first used more than [`KEY_RESENT_FOR`] ago.
    pub expired: bool,
}

/// A note kept as a row's `last_error`, in the shape of Mangopay's error report.
pub(crate) fn note(kind: &str, message: String) -> String {
    serde_json::to_string(&crate::client::ErrorBody {
        message: Some(message),
        kind: Some(kind.to_owned()),
        date: Some(Utc::now().timestamp()),
        ..crate::client::ErrorBody::default()
    })
    .unwrap_or_default()
}

/// The `Tag` to send for row `id`.
pub(crate) fn tag_for(app_tag: Option<&str>, id: i64, key: Option<&str>) -> Option<String> {
    tag::compose(app_tag, id, key)
}

/// An answer with its `Tag` reduced to the application's part.
pub(crate) fn strip_marker(payload: &Value) -> Value {
    let mut payload = payload.clone();
    if let Some(Value::String(tagged)) = payload.get("Tag") {
        let app = tag::split(tagged).0;
        payload["Tag"] = app.map_or(Value::Null, Value::String);
    }
    payload
}

/// Keys of Mangopay's answers that are never stored in `api_payload`: the tokenization
/// server's `RegistrationData` (a card registration echoes it) stays out of the database, and
/// a registration's tokenization credentials (`AccessKey`, `PreregistrationData`) are kept in
/// their own columns only while the registration can use them.
const NEVER_STORED: &[&str] = &["RegistrationData", "AccessKey", "PreregistrationData"];

/// An answer as `api_payload` keeps it: [`NEVER_STORED`] values replaced.
pub(crate) fn stored_payload(payload: &Value) -> String {
    let mut payload = payload.clone();
    if let Value::Object(fields) = &mut payload {
        for key in NEVER_STORED {
            if let Some(value) = fields.get_mut(*key)
                && !value.is_null()
            {
                *value = Value::String("[redacted]".into());
            }
        }
    }
    payload.to_string()
}

/// (Re)takes row `id`'s lease for one more request.
pub(crate) async fn hold(
    db: &Db,
    client: &MangopayClient,
    table: SyncTable,
    id: i64,
    lease: &Lease,
) -> Result<(), Error> {
    let owner = lease.owner().to_owned();
    let duration = lease_duration(client.config().timeout());
    let held = db
        .write(move |conn| {
            let at = now();
            store::hold_lease(conn, table, id, &owner, at + duration, at).map_err(Error::from)
        })
        .await?;
    if held {
        Ok(())
    } else {
        Err(Error::Busy {
            model: table.name(),
            id,
            until: Utc::now() + duration,
        })
    }
}

/// Loads row `id` with its sync columns.
pub async fn get<R: Resource>(db: &Db, id: i64) -> Result<R, Error> {
    db.run(move |conn| load::<R>(conn, id)).await
}

/// Loads the rows whose ids `select` returns, in its order, each with its sync columns (one
/// connection for all).
pub async fn get_where<R, F>(db: &Db, select: F) -> Result<Vec<R>, Error>
where
    R: Resource,
    F: FnOnce(&mut crate::db::AnyConnection) -> diesel::QueryResult<Vec<i64>> + Send + 'static,
{
    db.run(move |conn| {
        let ids = select(conn)?;
        ids.into_iter().map(|id| load::<R>(conn, id)).collect()
    })
    .await
}

fn load<R: Resource>(conn: &mut crate::db::AnyConnection, id: i64) -> Result<R, Error> {
    let (row, mut model) = load_parts::<R>(conn, id)?;
    model.set_sync(row.into_info(R::TABLE.name())?);
    Ok(model)
}

/// Row `id`'s sync columns and its model (whose own sync columns are left unset).
pub(crate) fn load_parts<R: Resource>(
    conn: &mut crate::db::AnyConnection,
    id: i64,
) -> Result<(state::SyncRow, R), Error> {
    let row = store::load(conn, R::TABLE, id)?.ok_or(Error::NotFound {
        model: R::MODEL,
        id,
    })?;
    Ok((row, load_model::<R>(conn, id)?))
}

/// Row `id`'s model, or [`Error::NotFound`].
pub(crate) fn load_model<R: Resource>(
    conn: &mut crate::db::AnyConnection,
    id: i64,
) -> Result<R, Error> {
    let mut model = R::load(conn, id)?.ok_or(Error::NotFound {
        model: R::MODEL,
        id,
    })?;
    model.resolve(conn)?;
    Ok(model)
}

/// Loads the row holding `mangopay_id`, if it is a row of this resource.
pub async fn find_by_mangopay_id<R: Resource>(
    db: &Db,
    mangopay_id: &str,
) -> Result<Option<R>, Error> {
    let mangopay_id = mangopay_id.to_owned();
    db.run(move |conn| {
        let Some(id) = store::id_for_mangopay_id(conn, R::TABLE, &mangopay_id)? else {
            return Ok(None);
        };
        match load::<R>(conn, id) {
            Ok(model) => Ok(Some(model)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    })
    .await
}

/// Inserts or updates the row (local only: nothing is sent); an update bumps its version.
pub async fn save<R: Resource>(model: &mut R, db: &Db) -> Result<(), Error> {
    model.validate()?;
    let mut snapshot = model.clone();
    let id = db
        .write(move |conn| {
            let at = now();
            if R::LOCKS_PARENTS {
                snapshot.lock_parents(conn)?;
            }
            snapshot.resolve(conn)?;
            match snapshot.id() {
                Some(id) => {
                    let row = store::load(conn, R::TABLE, id)?.ok_or(Error::NotFound {
                        model: R::MODEL,
                        id,
                    })?;
                    fixed_once_sent::<R>(&row, id)?;
                    if row.never_sent() {
                        snapshot.check_before_save()?;
                    }
                    snapshot.write_fields(conn, id)?;
                    store::saved(conn, R::TABLE, id, at)?;
                    Ok::<_, Error>(id)
                }
                None => {
                    snapshot.check_before_save()?;
                    Ok(snapshot.insert(conn, at)?)
                }
            }
        })
        .await?;
    *model = get(db, id).await?;
    Ok(())
}

/// [`Error::WrongState`] when the row's fields can no longer change: its resource is not
/// updated by Mangopay and a create was sent (or may have been) for it.
pub(crate) fn fixed_once_sent<R: Resource>(row: &state::SyncRow, id: i64) -> Result<(), Error> {
    if R::UPDATABLE || (row.mangopay_id.is_none() && row.create_idempotency_key.is_none()) {
        return Ok(());
    }
    Err(Error::WrongState {
        model: R::MODEL,
        id,
        reason: "its create was sent, and Mangopay does not update this kind of object: \
                 its fields cannot change"
            .into(),
    })
}

/// Creates the object at Mangopay from the model (saved first) and reloads the model.
pub async fn create<R: Resource>(
    model: &mut R,
    db: &Db,
    client: &MangopayClient,
) -> Result<(), Error> {
    model.validate()?;
    let lease = Lease::random();
    let start = match model.id() {
        // An object Mangopay does not update, whose create was already sent: it is sent (or
        // looked up) as stored; its fields cannot change any more (see `Resource::UPDATABLE`).
        Some(id) if !R::UPDATABLE && was_sent::<R>(db, id).await? => create::Start::Stored(id),
        _ => create::Start::Save(model.clone()),
    };
    let outcome = create::create(db, client, start, &lease).await;
    if !outcome.written {
        // Nothing was written (bad input, another holder, a row waiting for an operator):
        // the model keeps the application's values.
        return outcome.result;
    }
    if let Some(id) = outcome.id {
        model.set_id(id);
    }
    let result = outcome.result.map(|()| outcome.id.unwrap_or_default());
    reload_after(model, db, result).await
}

/// Whether row `id` has a Mangopay id or a create key.
async fn was_sent<R: Resource>(db: &Db, id: i64) -> Result<bool, Error> {
    let row = db
        .run(move |conn| store::load(conn, R::TABLE, id).map_err(Error::from))
        .await?;
    Ok(row.is_some_and(|r| r.mangopay_id.is_some() || r.create_idempotency_key.is_some()))
}

/// Creates the object of row `id` at Mangopay as it is stored (what a job does).
pub async fn create_by_id<R: Resource>(
    db: &Db,
    client: &MangopayClient,
    id: i64,
    lease: &Lease,
) -> Result<(), Error> {
    create::create::<R>(db, client, create::Start::Stored(id), lease)
        .await
        .result
}

/// Saves the model and sends its fields to Mangopay (`PUT`); reloads the model.
pub async fn update<R: Resource>(
    model: &mut R,
    db: &Db,
    client: &MangopayClient,
) -> Result<(), Error> {
    model.validate()?;
    let lease = Lease::random();
    let outcome = update::update(db, client, update::Start::Save(model.clone()), &lease).await;
    if !outcome.written {
        return outcome.result.map(drop);
    }
    reload_after(model, db, outcome.result).await
}

/// Sends row `id`'s fields to Mangopay as they are stored (what a job does).
pub async fn update_by_id<R: Resource>(
    db: &Db,
    client: &MangopayClient,
    id: i64,
    lease: &Lease,
) -> Result<(), Error> {
    update::update::<R>(db, client, update::Start::Stored(id), lease)
        .await
        .result
        .map(drop)
}

/// Reads the object from Mangopay into row `id`.
pub async fn refresh_by_id<R: Resource>(
    db: &Db,
    client: &MangopayClient,
    id: i64,
) -> Result<(), Error> {
    update::refresh::<R>(db, client, id).await
}

/// Reads the object from Mangopay into the model's row and reloads the model.
pub async fn refresh<R: Resource>(
    model: &mut R,
    db: &Db,
    client: &MangopayClient,
) -> Result<(), Error> {
    let id = model.id().ok_or(Error::NotSaved { model: R::MODEL })?;
    let result = update::refresh::<R>(db, client, id).await.map(|()| id);
    reload_after(model, db, result).await
}

/// Adopts `mangopay_id` as the model's object (an operator's decision after checking
/// Mangopay); refused when Mangopay's side contradicts it.
pub async fn adopt<R: Resource>(
    model: &mut R,
    db: &Db,
    client: &MangopayClient,
    mangopay_id: &str,
) -> Result<(), Error> {
    let id = model.id().ok_or(Error::NotSaved { model: R::MODEL })?;
    let lease = Lease::random_for("operator");
    let result = reconcile::adopt::<R>(db, client, id, mangopay_id, &lease)
        .await
        .map(|()| id);
    reload_after(model, db, result).await
}

/// Releases the model's idempotency key (an operator's decision), so the next create sends a
/// new one; refused when an object carries the key's marker or it is too early to tell.
pub async fn release_key<R: Resource>(
    model: &mut R,
    db: &Db,
    client: &MangopayClient,
) -> Result<(), Error> {
    let id = model.id().ok_or(Error::NotSaved { model: R::MODEL })?;
    let lease = Lease::random_for("operator");
    let result = reconcile::release_key::<R>(db, client, id, &lease)
        .await
        .map(|()| id);
    reload_after(model, db, result).await
}

/// Hands row `id`'s lease from `from` (a job that ran) to `to` (a reservation for the job it
/// enqueues next) until `until` from now, in one statement, so no sweep can take the row in
/// between; also takes a free, expired or reserved lease. `false` when another holder has it.
pub async fn hand_over(
    db: &Db,
    table: SyncTable,
    id: i64,
    from: &Lease,
    to: &Lease,
    until: Duration,
) -> Result<bool, Error> {
    let (from, to) = (from.owner().to_owned(), to.owner().to_owned());
    let until = chrono::Duration::from_std(until).unwrap_or(chrono::Duration::MAX);
    db.write(move |conn| {
        let at = now();
        store::hand_over(conn, table, id, &from, &to, at + until, at).map_err(Error::from)
    })
    .await
}

/// An object Mangopay created for an idempotency key its row no longer held: a duplicate, kept
/// in `mangopay_orphans` for an operator to deactivate or adopt.
#[derive(Debug, Clone, PartialEq, Eq, diesel::Queryable)]
pub struct Orphan {
    /// The ledger's id.
    pub id: i64,
    /// The table of the row.
    pub table_name: String,
    /// The row's local id.
    pub row_id: i64,
    /// The orphaned object's Mangopay id.
    pub mangopay_id: String,
    /// The key that created it.
    pub idempotency_key: String,
    /// The row's own object when the orphan was found, if it had one.
    pub row_mangopay_id: Option<String>,
    /// When it was found (UTC).
    pub found_at: NaiveDateTime,
}

/// Every orphaned object found so far, oldest first.
pub async fn orphans(db: &Db) -> Result<Vec<Orphan>, Error> {
    use crate::schema::mangopay_orphans::dsl;
    use diesel::prelude::*;
    db.run(|conn| {
        dsl::mangopay_orphans
            .order(dsl::id)
            .load::<Orphan>(conn)
            .map_err(Error::from)
    })
    .await
}

/// Frees row `id`'s lease if `lease` holds it.
pub async fn release(db: &Db, table: SyncTable, id: i64, lease: &Lease) -> Result<(), Error> {
    let owner = lease.owner().to_owned();
    db.write(move |conn| store::release_lease(conn, table, id, &owner).map_err(Error::from))
        .await
}

/// Reloads the model after an operation on row `id` that may have written it, whatever the
/// operation's result, and returns that result.
async fn reload_after<R: Resource>(
    model: &mut R,
    db: &Db,
    result: Result<i64, Error>,
) -> Result<(), Error> {
    let id = match &result {
        Ok(id) => Some(*id),
        Err(_) => model.id(),
    };
    if let Some(id) = id {
        match get::<R>(db, id).await {
            Ok(fresh) => *model = fresh,
            Err(Error::NotFound { .. }) if result.is_err() => {}
            Err(e) if result.is_ok() => return Err(e),
            Err(_) => {}
        }
    }
    result.map(drop)
}
