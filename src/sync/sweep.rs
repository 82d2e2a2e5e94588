//! The sweep: what is due across a resource table, claimed by one worker at a time.
//!
//! On PostgreSQL the sweep's transaction takes a transaction-level advisory lock per table
//! (`pg_try_advisory_xact_lock`): a second worker sweeping at the same moment skips the table
//! instead of waiting. On SQLite the transaction starts with `BEGIN IMMEDIATE`, which holds the
//! database's write lock: sweeps of one database run one after the other. Either way the rows
//! handed out are leased in the same statement that finds them, so a sweep never hands out a
//! row a live worker holds or one another sweep already handed out.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};

use super::store::{self, DueRow, SyncTable};
use super::{Lease, now};
use crate::Error;
use crate::db::{AnyConnection, Db};

/// What the sweep looks for.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// Rows saved `new` and untouched for this long are created too (their enqueue may have
    /// been lost); `None` leaves `new` rows to the application.
    pub new_rows_after: Option<Duration>,
    /// How long a row handed to a job stays leased to it (the job takes the lease over when it
    /// runs; if it never runs, the next sweep after this hands the row out again).
    pub lease: Duration,
    /// At most this many rows per table and sweep.
    pub batch: i64,
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions {
            new_rows_after: Some(Duration::from_secs(300)),
            lease: Duration::from_secs(600),
            batch: 500,
        }
    }
}

/// The advisory lock's key for `table`: a stable 64-bit FNV-1a hash of a name.
fn lock_key(table: SyncTable) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in b"diesel-mangopay sweep "
        .iter()
        .chain(table.name().as_bytes())
    {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// Takes the sweep lock of `table` for the current transaction; `false` when another
/// worker's sweep holds it (PostgreSQL). SQLite's write transaction is the lock.
fn try_lock(conn: &mut AnyConnection, table: SyncTable) -> QueryResult<bool> {
    match conn {
        AnyConnection::Pg(_) => diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
            .bind::<BigInt, _>(lock_key(table))
            .get_result::<Locked>(conn)
            .map(|l| l.locked),
        AnyConnection::Sqlite(_) => Ok(true),
    }
}

/// Finds the rows of `table` whose work is due and leases them to `owner`: `None` when
/// another worker is sweeping the table right now.
pub async fn claim_due(
    db: &Db,
    table: SyncTable,
    options: &SweepOptions,
    owner: &Lease,
) -> Result<Option<Vec<DueRow>>, Error> {
    let options = options.clone();
    let owner = owner.owner().to_owned();
    db.write(move |conn| {
        if !try_lock(conn, table)? {
            return Ok(None);
        }
        let at = now();
        let new_before = options
            .new_rows_after
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .map(|d| at - d);
        let lease = chrono::Duration::from_std(options.lease).unwrap_or(chrono::Duration::MAX);
        store::claim_due(
            conn,
            table,
            at,
            new_before,
            &owner,
            at.checked_add_signed(lease)
                .unwrap_or(chrono::NaiveDateTime::MAX),
            options.batch,
        )
        .map(Some)
        .map_err(Error::from)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_per_table() {
        let users = SyncTable::new("mangopay_users");
        assert_eq!(lock_key(users), lock_key(SyncTable::new("mangopay_users")));
        assert_ne!(
            lock_key(users),
            lock_key(SyncTable::new("mangopay_wallets"))
        );
    }
}
