//! The protocol's statements over the sync columns, written once for every resource table.
//!
//! Each function is one SQL statement, run inside the caller's transaction. Every write that
//! records an outcome is conditional (compare and set) on what the writer saw: the
//! idempotency key it sent, the lease it holds, the row version it built its request from. A
//! writer whose condition fails lost a race and changes nothing; a writer only ever frees its
//! own lease.
//!
//! The table name comes from a resource's static registration ([`SyncTable`]), never from
//! input. Placeholders are written `$n`; on SQLite they become `?n`, which SQLite binds by
//! number as PostgreSQL does.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::query_builder::SqlQuery;
use diesel::sql_types::{BigInt, Bool, Nullable, Text, Timestamp};

use super::state::{SYNC_COLUMNS, SyncRow, SyncState};
use crate::db::{AnyConnection, MultiBackend};

/// A table whose rows carry the sync columns (`mangopay_id`, `sync_state`,
/// `create_idempotency_key`, ... see the migrations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SyncTable(&'static str);

impl SyncTable {
    /// The table called `name` (ASCII lower-case letters, digits and underscores only).
    pub const fn new(name: &'static str) -> SyncTable {
        let bytes = name.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            assert!(
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_',
                "a sync table name is a plain SQL identifier"
            );
            i += 1;
        }
        SyncTable(name)
    }

    /// The table's name.
    pub const fn name(self) -> &'static str {
        self.0
    }
}

/// The prefix of lease tokens that only reserve a row for a job waiting in the queue (handed
/// out by the sweep, or a retry scheduled for later): the first job or call to get to the row
/// takes such a lease over, so a job that waited in a long queue is never locked out by a
/// later reservation. A running call always holds the row under a token of its own.
pub const RESERVATION_PREFIX: &str = "reserved-";

/// `text` with its placeholders in the connection's dialect.
pub(crate) fn query(conn: &AnyConnection, text: String) -> SqlQuery {
    match conn {
        AnyConnection::Pg(_) => diesel::sql_query(text),
        AnyConnection::Sqlite(_) => diesel::sql_query(text.replace('$', "?")),
    }
}

/// The condition under which the holder `$me` may take a row's lease at `$now`: the lease is
/// free, expired, already `$me`'s, or a sweep's reservation.
pub(super) fn takeable(now: &str, me: &str) -> String {
    format!(
        "(lease_until IS NULL OR lease_until < {now} OR lease_owner = {me} \
         OR lease_owner LIKE '{RESERVATION_PREFIX}%')"
    )
}

/// The lease columns after `$me` lets go: freed if `$me` holds them, untouched otherwise.
fn let_go(me: &str) -> String {
    format!(
        "lease_owner = CASE WHEN lease_owner = {me} THEN NULL ELSE lease_owner END, \
         lease_until = CASE WHEN lease_owner = {me} THEN NULL ELSE lease_until END"
    )
}

/// A row left `failed` with its key waits for an operator: no automatic write touches it.
const NOT_WAITING_FOR_OPERATOR: &str =
    "NOT (sync_state = 'failed' AND create_idempotency_key IS NOT NULL)";

/// One `id` column, for statements that return ids.
#[derive(Debug, QueryableByName)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite, MultiBackend))]
pub(crate) struct IdRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Nullable<Text>)]
    pub mangopay_id: Option<String>,
}

/// The row version after a write.
#[derive(Debug, QueryableByName)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite, MultiBackend))]
pub(crate) struct VersionRow {
    #[diesel(sql_type = BigInt)]
    pub row_version: i64,
    #[diesel(sql_type = Bool)]
    pub dirty: bool,
}

/// The sync columns of one row.
pub(crate) fn load(
    conn: &mut AnyConnection,
    t: SyncTable,
    id: i64,
) -> QueryResult<Option<SyncRow>> {
    query(
        conn,
        format!("SELECT {SYNC_COLUMNS} FROM {} WHERE id = $1", t.0),
    )
    .bind::<BigInt, _>(id)
    .get_result(conn)
    .optional()
}

/// The local id of the row holding `mangopay_id`.
pub(crate) fn id_for_mangopay_id(
    conn: &mut AnyConnection,
    t: SyncTable,
    mangopay_id: &str,
) -> QueryResult<Option<i64>> {
    query(
        conn,
        format!("SELECT id, mangopay_id FROM {} WHERE mangopay_id = $1", t.0),
    )
    .bind::<Text, _>(mangopay_id)
    .get_result::<IdRow>(conn)
    .optional()
    .map(|r| r.map(|r| r.id))
}

/// After the application's fields were written (a save): bumps the row version, and marks a
/// row Mangopay already has dirty (its new fields are owed to Mangopay).
pub(crate) fn saved(
    conn: &mut AnyConnection,
    t: SyncTable,
    id: i64,
    now: NaiveDateTime,
) -> QueryResult<()> {
    query(
        conn,
        format!(
            "UPDATE {} SET row_version = row_version + 1, updated_at = $1, \
               dirty = CASE WHEN mangopay_id IS NOT NULL THEN TRUE ELSE dirty END \
             WHERE id = $2",
            t.0
        ),
    )
    .bind::<Timestamp, _>(now)
    .bind::<BigInt, _>(id)
    .execute(conn)
    .map(drop)
}

/// What a create claim needs to know.
pub(crate) struct ClaimArgs<'a> {
    pub id: i64,
    pub now: NaiveDateTime,
    /// The key to commit if the row has none.
    pub fresh_key: &'a str,
    pub owner: &'a str,
    pub lease_until: NaiveDateTime,
    /// Keys first used before this are never resent.
    pub window_start: NaiveDateTime,
}

/// Step 1 of a create, one statement: takes the row's lease and commits an idempotency key
/// (the row's existing key, or `fresh_key` when it has none, with the row version it is built
/// from), and stamps `create_sent_at` unless the key will not be sent (spent, or older than
/// the window).
///
/// Only a row without a Mangopay id whose lease can be taken is claimed, and not one left
/// `failed` with its key (that needs a person). Returns the row as claimed, or `None` when
/// nothing was claimed.
pub(crate) fn claim_create(
    conn: &mut AnyConnection,
    t: SyncTable,
    a: &ClaimArgs<'_>,
) -> QueryResult<Option<SyncRow>> {
    query(
        conn,
        format!(
            "UPDATE {t} SET \
               create_idempotency_key = COALESCE(create_idempotency_key, $1), \
               create_idempotency_key_at = COALESCE(create_idempotency_key_at, $2), \
               create_key_version = CASE WHEN create_idempotency_key IS NULL \
                   THEN row_version ELSE create_key_version END, \
               create_sent_at = CASE WHEN create_key_spent OR create_idempotency_key_at < $3 \
                   THEN create_sent_at ELSE $2 END, \
               sync_state = 'pending', lease_owner = $4, lease_until = $5, updated_at = $2 \
             WHERE id = $6 AND mangopay_id IS NULL AND {NOT_WAITING_FOR_OPERATOR} \
               AND {takeable} \
             RETURNING {SYNC_COLUMNS}",
            t = t.0,
            takeable = takeable("$2", "$4"),
        ),
    )
    .bind::<Text, _>(a.fresh_key)
    .bind::<Timestamp, _>(a.now)
    .bind::<Timestamp, _>(a.window_start)
    .bind::<Text, _>(a.owner)
    .bind::<Timestamp, _>(a.lease_until)
    .bind::<BigInt, _>(a.id)
    .get_result(conn)
    .optional()
}

/// Marks a row that already has its Mangopay id as synced (a claim that finds the object
/// created repairs the state); `dirty` too when the caller just saved the application's
/// fields into it.
pub(crate) fn repair_synced(
    conn: &mut AnyConnection,
    t: SyncTable,
    id: i64,
    saved: bool,
    now: NaiveDateTime,
) -> QueryResult<()> {
    query(
        conn,
        format!(
            "UPDATE {} SET sync_state = 'synced', create_key_spent = FALSE, updated_at = $1, \
               dirty = CASE WHEN $2 THEN TRUE ELSE dirty END \
             WHERE id = $3 AND mangopay_id IS NOT NULL",
            t.0
        ),
    )
    .bind::<Timestamp, _>(now)
    .bind::<Bool, _>(saved)
    .bind::<BigInt, _>(id)
    .execute(conn)
    .map(drop)
}

/// What a record of a created object knows.
pub(crate) struct Created<'a> {
    pub id: i64,
    /// The key that was sent.
    pub key: &'a str,
    /// The lease holder writing.
    pub owner: &'a str,
    pub mangopay_id: &'a str,
    pub payload: &'a str,
    /// The row version the object may have been built from: the row is marked dirty if it
    /// is newer now.
    pub built_from: i64,
    pub now: NaiveDateTime,
}

/// Records a created object, conditional on the key that was sent and on the row having no
/// Mangopay id yet. If the row changed after `built_from`, it is marked dirty so its newer
/// fields reach Mangopay with an update. Returns the row's version and dirty flag, or `None`
/// if the condition failed.
pub(crate) fn record_created(
    conn: &mut AnyConnection,
    t: SyncTable,
    c: &Created<'_>,
) -> QueryResult<Option<VersionRow>> {
    query(
        conn,
        format!(
            "UPDATE {} SET mangopay_id = $1, sync_state = 'synced', create_key_spent = FALSE, \
               api_payload = $2, updated_at = $3, {let_go}, \
               sync_attempts = 0, last_error = NULL, last_error_at = NULL, \
               dirty = CASE WHEN row_version = $4 THEN dirty ELSE TRUE END \
             WHERE id = $5 AND create_idempotency_key = $6 AND mangopay_id IS NULL \
             RETURNING row_version, dirty",
            t.0,
            let_go = let_go("$7"),
        ),
    )
    .bind::<Text, _>(c.mangopay_id)
    .bind::<Text, _>(c.payload)
    .bind::<Timestamp, _>(c.now)
    .bind::<BigInt, _>(c.built_from)
    .bind::<BigInt, _>(c.id)
    .bind::<Text, _>(c.key)
    .bind::<Text, _>(c.owner)
    .get_result(conn)
    .optional()
}

/// What a failed create does to the row's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyFate {
    /// Keep the key for a resend (or a look-up, when `spent`).
    Keep { spent: bool },
    /// Mangopay certainly created nothing with it: drop the key so the next create sends a
    /// new one.
    Release,
}

/// What a record of a failed create knows.
pub(crate) struct Failed<'a> {
    pub id: i64,
    pub key: &'a str,
    pub owner: &'a str,
    pub error: &'a str,
    pub state: SyncState,
    pub fate: KeyFate,
    pub now: NaiveDateTime,
}

/// Records a failed create, conditional on the key that was sent (and never over a row that
/// waits for an operator): the error, one more attempt, the new state, the key's fate; the
/// writer's lease is freed. Returns whether the row was written.
pub(crate) fn record_create_failure(
    conn: &mut AnyConnection,
    t: SyncTable,
    f: &Failed<'_>,
) -> QueryResult<bool> {
    let key_columns = match f.fate {
        KeyFate::Keep { spent: true } => "create_key_spent = TRUE",
        KeyFate::Keep { spent: false } => "create_key_spent = create_key_spent",
        KeyFate::Release => {
            "create_idempotency_key = NULL, create_idempotency_key_at = NULL, \
             create_sent_at = NULL, create_key_version = NULL, create_key_spent = FALSE"
        }
    };
    query(
        conn,
        format!(
            "UPDATE {} SET last_error = $1, last_error_at = $2, updated_at = $2, \
               sync_attempts = sync_attempts + 1, sync_state = $3, {key_columns}, {let_go} \
             WHERE id = $4 AND create_idempotency_key = $5 AND mangopay_id IS NULL \
               AND {NOT_WAITING_FOR_OPERATOR}",
            t.0,
            let_go = let_go("$6"),
        ),
    )
    .bind::<Text, _>(f.error)
    .bind::<Timestamp, _>(f.now)
    .bind::<Text, _>(f.state.as_str())
    .bind::<BigInt, _>(f.id)
    .bind::<Text, _>(f.key)
    .bind::<Text, _>(f.owner)
    .execute(conn)
    .map(|n| n == 1)
}

/// Marks the row's key spent (never to be resent), conditional on the key and on `owner`
/// holding the lease: the first step of an operator's release.
pub(crate) fn mark_spent(
    conn: &mut AnyConnection,
    t: SyncTable,
    id: i64,
    key: &str,
    owner: &str,
) -> QueryResult<bool> {
    query(
        conn,
        format!(
            "UPDATE {} SET create_key_spent = TRUE \
             WHERE id = $1 AND create_idempotency_key = $2 AND mangopay_id IS NULL \
               AND lease_owner = $3",
            t.0
        ),
    )
    .bind::<BigInt, _>(id)
    .bind::<Text, _>(key)
    .bind::<Text, _>(owner)
    .execute(conn)
    .map(|n| n == 1)
}

/// What a release knows.
pub(crate) struct Release<'a> {
    pub id: i64,
    pub key: &'a str,
    /// The releaser, who must hold the lease.
    pub owner: &'a str,
    /// Kept as `last_error`, so the row says why.
    pub note: &'a str,
    /// The key must not have been sent after this (Mangopay may still be showing its object).
    pub settled_before: NaiveDateTime,
    /// Or its first use must be older than this (Mangopay forgot it).
    pub window_start: NaiveDateTime,
    pub now: NaiveDateTime,
}

/// Drops the row's key after a search by tag proved Mangopay has no object for it: the row
/// goes back to `pending` without a key (the next create sends a new one) and the lease is
/// freed. Conditional on the key, on the releaser holding the lease, on the key being spent
/// or forgotten, and on its last send having settled.
pub(crate) fn release_key(
    conn: &mut AnyConnection,
    t: SyncTable,
    r: &Release<'_>,
) -> QueryResult<bool> {
    query(
        conn,
        format!(
            "UPDATE {} SET last_error = $1, last_error_at = $2, updated_at = $2, \
               sync_state = 'pending', create_idempotency_key = NULL, \
               create_idempotency_key_at = NULL, create_sent_at = NULL, \
               create_key_version = NULL, create_key_spent = FALSE, \
               lease_owner = NULL, lease_until = NULL \
             WHERE id = $3 AND create_idempotency_key = $4 AND mangopay_id IS NULL \
               AND lease_owner = $5 \
               AND (create_sent_at IS NULL OR create_sent_at <= $6) \
               AND (create_key_spent OR create_idempotency_key_at < $7)",
            t.0
        ),
    )
    .bind::<Text, _>(r.note)
    .bind::<Timestamp, _>(r.now)
    .bind::<BigInt, _>(r.id)
    .bind::<Text, _>(r.key)
    .bind::<Text, _>(r.owner)
    .bind::<Timestamp, _>(r.settled_before)
    .bind::<Timestamp, _>(r.window_start)
    .execute(conn)
    .map(|n| n == 1)
}

/// Records the object an operator adopted, conditional on the row having no Mangopay id yet
/// and on `owner` holding its lease. The row is marked dirty if it changed after
/// `built_from`.
pub(crate) fn adopt(
    conn: &mut AnyConnection,
    t: SyncTable,
    c: &Created<'_>,
) -> QueryResult<Option<VersionRow>> {
    query(
        conn,
        format!(
            "UPDATE {} SET mangopay_id = $1, sync_state = 'synced', create_key_spent = FALSE, \
               api_payload = $2, updated_at = $3, lease_owner = NULL, lease_until = NULL, \
               sync_attempts = 0, last_error = NULL, last_error_at = NULL, \
               dirty = CASE WHEN row_version = $4 THEN dirty ELSE TRUE END \
             WHERE id = $5 AND mangopay_id IS NULL AND lease_owner = $6 \
             RETURNING row_version, dirty",
            t.0
        ),
    )
    .bind::<Text, _>(c.mangopay_id)
    .bind::<Text, _>(c.payload)
    .bind::<Timestamp, _>(c.now)
    .bind::<BigInt, _>(c.built_from)
    .bind::<BigInt, _>(c.id)
    .bind::<Text, _>(c.owner)
    .get_result(conn)
    .optional()
}

/// Writes `error` as the row's last error without changing its state (a note for operators,
/// a failure to apply an answer).
pub(crate) fn note_error(
    conn: &mut AnyConnection,
    t: SyncTable,
    id: i64,
    error: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    query(
        conn,
        format!(
            "UPDATE {} SET last_error = $1, last_error_at = $2, updated_at = $2 WHERE id = $3",
            t.0
        ),
    )
    .bind::<Text, _>(error)
    .bind::<Timestamp, _>(now)
    .bind::<BigInt, _>(id)
    .execute(conn)
    .map(drop)
}

/// Keeps an object Mangopay created for a key row `id` no longer holds, for good (the
/// row's `last_error` is overwritten by its next success; this ledger is not).
pub(crate) fn record_orphan(
    conn: &mut AnyConnection,
    t: SyncTable,
    id: i64,
    mangopay_id: &str,
    key: &str,
    row_mangopay_id: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    query(
        conn,
        "INSERT INTO mangopay_orphans \
           (table_name, row_id, mangopay_id, idempotency_key, row_mangopay_id, found_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"
            .to_owned(),
    )
    .bind::<Text, _>(t.0)
    .bind::<BigInt, _>(id)
    .bind::<Text, _>(mangopay_id)
    .bind::<Text, _>(key)
    .bind::<Nullable<Text>, _>(row_mangopay_id)
    .bind::<Timestamp, _>(now)
    .execute(conn)
    .map(drop)
}

/// Step 1 of an update, one statement: takes the lease of a created row and marks it dirty
/// (an update is owed until one succeeds). Returns the row, or `None` when the row has no
/// Mangopay id or another holder has its lease.
pub(crate) fn claim_update(
    conn: &mut AnyConnection,
    t: SyncTable,
    id: i64,
    owner: &str,
    lease_until: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<Option<SyncRow>> {
    query(
        conn,
        format!(
            "UPDATE {} SET dirty = TRUE, lease_owner = $1, lease_until = $2, updated_at = $3 \
             WHERE id = $4 AND mangopay_id IS NOT NULL AND {takeable} \
             RETURNING {SYNC_COLUMNS}",
            t.0,
            takeable = takeable("$3", "$1"),
        ),
    )
    .bind::<Text, _>(owner)
    .bind::<Timestamp, _>(lease_until)
    .bind::<Timestamp, _>(now)
    .bind::<BigInt, _>(id)
    .get_result(conn)
    .optional()
}

/// Records an update's answer, conditional on the lease being ours (or free): the payload,
/// and `dirty` cleared only if the row still has the version the request was built from.
/// `error` is kept as the last error (an update Mangopay did not fully apply). Returns the
/// version and dirty flag, or `None` if another holder took the row.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_updated(
    conn: &mut AnyConnection,
    t: SyncTable,
    id: i64,
    owner: &str,
    payload: &str,
    built_from: i64,
    error: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<Option<VersionRow>> {
    query(
        conn,
        format!(
            "UPDATE {} SET api_payload = $1, updated_at = $2, lease_owner = NULL, \
               lease_until = NULL, last_error = $3, \
               last_error_at = CASE WHEN $3 IS NULL THEN NULL ELSE $2 END, \
               sync_attempts = CASE WHEN $3 IS NULL THEN 0 ELSE sync_attempts + 1 END, \
               dirty = CASE WHEN row_version = $4 THEN FALSE ELSE TRUE END \
             WHERE id = $5 AND (lease_owner IS NULL OR lease_owner = $6) \
             RETURNING row_version, dirty",
            t.0
        ),
    )
    .bind::<Text, _>(payload)
    .bind::<Timestamp, _>(now)
    .bind::<Nullable<Text>, _>(error)
    .bind::<BigInt, _>(built_from)
    .bind::<BigInt, _>(id)
    .bind::<Text, _>(owner)
    .get_result(conn)
    .optional()
}

/// Records a failed update, conditional on the lease: the error, one more attempt, the lease
/// freed. The row stays dirty if retrying may help (`keep_dirty`) or if it was saved after
/// `built_from` (that newer save is still owed).
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_update_failure(
    conn: &mut AnyConnection,
    t: SyncTable,
    id: i64,
    owner: &str,
    error: &str,
    keep_dirty: bool,
    built_from: i64,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    query(
        conn,
        format!(
            "UPDATE {} SET last_error = $1, last_error_at = $2, updated_at = $2, \
               sync_attempts = sync_attempts + 1, \
               dirty = CASE WHEN row_version = $3 THEN $4 ELSE TRUE END, \
               lease_owner = NULL, lease_until = NULL \
             WHERE id = $5 AND (lease_owner IS NULL OR lease_owner = $6)",
            t.0
        ),
    )
    .bind::<Text, _>(error)
    .bind::<Timestamp, _>(now)
    .bind::<BigInt, _>(built_from)
    .bind::<Bool, _>(keep_dirty)
    .bind::<BigInt, _>(id)
    .bind::<Text, _>(owner)
    .execute(conn)
    .map(|n| n == 1)
}

/// Records a refreshed object: the payload. Returns the version and dirty flag, which decide
/// whether the answer may overwrite the application's fields.
pub(crate) fn record_refreshed(
    conn: &mut AnyConnection,
    t: SyncTable,
    id: i64,
    payload: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<VersionRow>> {
    query(
        conn,
        format!(
            "UPDATE {} SET api_payload = $1, updated_at = $2 WHERE id = $3 \
             RETURNING row_version, dirty",
            t.0
        ),
    )
    .bind::<Text, _>(payload)
    .bind::<Timestamp, _>(now)
    .bind::<BigInt, _>(id)
    .get_result(conn)
    .optional()
}

/// Holds (or takes) the row's lease for `owner` until `until`, if it can be taken. Returns
/// whether the lease is now `owner`'s.
pub(crate) fn hold_lease(
    conn: &mut AnyConnection,
    t: SyncTable,
    id: i64,
    owner: &str,
    until: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    query(
        conn,
        format!(
            "UPDATE {} SET lease_owner = $1, lease_until = $2 WHERE id = $3 AND {takeable}",
            t.0,
            takeable = takeable("$4", "$1"),
        ),
    )
    .bind::<Text, _>(owner)
    .bind::<Timestamp, _>(until)
    .bind::<BigInt, _>(id)
    .bind::<Timestamp, _>(now)
    .execute(conn)
    .map(|n| n == 1)
}

/// Gives the row's lease to `to` until `until` if `from` holds it or `to` may take it.
pub(crate) fn hand_over(
    conn: &mut AnyConnection,
    t: SyncTable,
    id: i64,
    from: &str,
    to: &str,
    until: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    query(
        conn,
        format!(
            "UPDATE {} SET lease_owner = $1, lease_until = $2 \
             WHERE id = $3 AND (lease_owner = $5 OR {takeable})",
            t.0,
            takeable = takeable("$4", "$1"),
        ),
    )
    .bind::<Text, _>(to)
    .bind::<Timestamp, _>(until)
    .bind::<BigInt, _>(id)
    .bind::<Timestamp, _>(now)
    .bind::<Text, _>(from)
    .execute(conn)
    .map(|n| n == 1)
}

/// Frees the row's lease if `owner` holds it.
pub(crate) fn release_lease(
    conn: &mut AnyConnection,
    t: SyncTable,
    id: i64,
    owner: &str,
) -> QueryResult<()> {
    query(
        conn,
        format!(
            "UPDATE {} SET lease_owner = NULL, lease_until = NULL \
             WHERE id = $1 AND lease_owner = $2",
            t.0
        ),
    )
    .bind::<BigInt, _>(id)
    .bind::<Text, _>(owner)
    .execute(conn)
    .map(drop)
}

/// What the sweep hands to the jobs: rows whose create or update is due, reserved for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueRow {
    /// The local id.
    pub id: i64,
    /// Whether the row needs an update (it has a Mangopay id) rather than a create.
    pub update: bool,
}

/// One statement: finds up to `limit` rows whose work is due and whose lease is free or
/// expired — creates not confirmed (`pending`), rows saved `new` before `new_before` (their
/// enqueue may have been lost), created rows still `dirty` — and reserves them for `owner`
/// until `lease_until`, so neither a live worker's row nor one another sweep just handed out
/// is enqueued twice. On PostgreSQL the candidates are locked (`FOR UPDATE SKIP LOCKED`) and
/// the conditions checked again on the rows as they are when locked, so a worker's claim
/// committed meanwhile is never overwritten.
pub(crate) fn claim_due(
    conn: &mut AnyConnection,
    t: SyncTable,
    now: NaiveDateTime,
    new_before: Option<NaiveDateTime>,
    owner: &str,
    lease_until: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<DueRow>> {
    let due = "(lease_until IS NULL OR lease_until < $3) AND ( \
                 (mangopay_id IS NULL AND (sync_state = 'pending' \
                   OR (sync_state = 'new' AND $5 IS NOT NULL AND updated_at <= $5))) \
                 OR (mangopay_id IS NOT NULL AND dirty))";
    let lock = match conn {
        AnyConnection::Pg(_) => "FOR UPDATE SKIP LOCKED",
        AnyConnection::Sqlite(_) => "",
    };
    let rows: Vec<IdRow> = query(
        conn,
        format!(
            "UPDATE {t} SET lease_owner = $1, lease_until = $2 \
             WHERE id IN (SELECT id FROM {t} WHERE {due} ORDER BY id LIMIT $4 {lock}) \
               AND {due} \
             RETURNING id, mangopay_id",
            t = t.0
        ),
    )
    .bind::<Text, _>(owner)
    .bind::<Timestamp, _>(lease_until)
    .bind::<Timestamp, _>(now)
    .bind::<BigInt, _>(limit)
    .bind::<Nullable<Timestamp>, _>(new_before)
    .load(conn)?;
    let mut due: Vec<DueRow> = rows
        .into_iter()
        .map(|r| DueRow {
            id: r.id,
            update: r.mangopay_id.is_some(),
        })
        .collect();
    due.sort_by_key(|r| r.id);
    Ok(due)
}
