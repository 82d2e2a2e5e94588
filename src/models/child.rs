//! What the rows sent under their own idempotency key share (a KYC page's upload, a UBO's
//! create): settling the answer to the key sent, giving a blocked key up, letting the row go.
//! The statements work on either table through its column names.

use chrono::NaiveDateTime;
use diesel::RunQueryDsl;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};

use crate::sync::{Lease, now};
use crate::{Db, Error, IdempotencyKey};

/// The table of rows sent under their own key, and its columns.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyedRows {
    /// The table.
    pub table: &'static str,
    /// Where the send's state is (`pending`, `sending`, ...).
    pub state: &'static str,
    /// The key.
    pub key: &'static str,
    /// The key's first use.
    pub key_at: &'static str,
    /// Set to the time a send settles as done (`uploaded_at`), if the table has one.
    pub done_at: Option<&'static str>,
}

/// KYC pages.
pub(crate) const PAGES: KeyedRows = KeyedRows {
    table: "mangopay_pages",
    state: "upload_state",
    key: "upload_key",
    key_at: "upload_key_at",
    done_at: Some("uploaded_at"),
};

/// UBOs.
pub(crate) const UBOS: KeyedRows = KeyedRows {
    table: "mangopay_ubos",
    state: "create_state",
    key: "create_key",
    key_at: "create_key_at",
    done_at: None,
};

/// Records the settled state `state` of the row `id` sent with `key` (`done`: it went
/// through) and lets it go. Returns whether it did: nothing is written when the row no longer
/// waits for that key's answer.
pub(crate) async fn settle(
    db: &Db,
    rows: KeyedRows,
    id: i64,
    key: &IdempotencyKey,
    state: &'static str,
    done: bool,
    error: Option<String>,
) -> Result<bool, Error> {
    let key = key.to_string();
    db.write(move |conn| {
        let at = now();
        let done_at = rows
            .done_at
            .map(|c| format!("{c} = $5, "))
            .unwrap_or_default();
        crate::sync::store::query(
            conn,
            format!(
                "UPDATE {t} SET {s} = $1, last_error = $2, last_error_at = $3, {done_at}\
                 lease_owner = NULL, lease_until = NULL, updated_at = $4 \
                 WHERE id = $6 AND {k} = $7 AND {s} = 'sending'",
                t = rows.table,
                s = rows.state,
                k = rows.key,
            ),
        )
        .bind::<Text, _>(state)
        .bind::<Nullable<Text>, _>(error.as_deref())
        .bind::<Nullable<Timestamp>, _>(error.as_ref().map(|_| at))
        .bind::<Timestamp, _>(at)
        .bind::<Nullable<Timestamp>, _>(done.then_some(at))
        .bind::<BigInt, _>(id)
        .bind::<Text, _>(key)
        .execute(conn)
        .map(|n| n == 1)
        .map_err(Error::from)
    })
    .await
}

/// The key sent can no longer be used (its stored answer is to a request Mangopay never
/// processed, or nothing was created with it): the row goes back to `pending` without it, so
/// its next send uses a new key.
pub(crate) async fn give_up_key(
    db: &Db,
    rows: KeyedRows,
    id: i64,
    key: &IdempotencyKey,
    error: String,
) -> Result<(), Error> {
    let key = key.to_string();
    db.write(move |conn| {
        crate::sync::store::query(
            conn,
            format!(
                "UPDATE {t} SET {s} = 'pending', {k} = NULL, {ka} = NULL, last_error = $1, \
                 last_error_at = $2, lease_owner = NULL, lease_until = NULL, updated_at = $2 \
                 WHERE id = $3 AND {k} = $4 AND {s} = 'sending'",
                t = rows.table,
                s = rows.state,
                k = rows.key,
                ka = rows.key_at,
            ),
        )
        .bind::<Text, _>(error)
        .bind::<Timestamp, _>(now())
        .bind::<BigInt, _>(id)
        .bind::<Text, _>(key)
        .execute(conn)
        .map(drop)
        .map_err(Error::from)
    })
    .await
}

/// Lets the row `id` held by `lease` go without settling it, noting `error` if there is one.
pub(crate) async fn release(
    db: &Db,
    rows: KeyedRows,
    id: i64,
    lease: &Lease,
    error: Option<String>,
) -> Result<(), Error> {
    let me = lease.owner().to_owned();
    db.write(move |conn| {
        let at: NaiveDateTime = now();
        crate::sync::store::query(
            conn,
            format!(
                "UPDATE {t} SET last_error = COALESCE($1, last_error), \
                 last_error_at = CASE WHEN $1 IS NULL THEN last_error_at ELSE $2 END, \
                 lease_owner = NULL, lease_until = NULL, updated_at = $2 \
                 WHERE id = $3 AND lease_owner = $4",
                t = rows.table,
            ),
        )
        .bind::<Nullable<Text>, _>(error)
        .bind::<Timestamp, _>(at)
        .bind::<BigInt, _>(id)
        .bind::<Text, _>(me)
        .execute(conn)
        .map(drop)
        .map_err(Error::from)
    })
    .await
}
