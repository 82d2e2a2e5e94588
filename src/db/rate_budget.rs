//! The rate budget's state in the database (`mangopay_rate_budget`): every process of one
//! Mangopay client takes its calls from the same windows (see [`crate::client::budget`]).
//!
//! One transaction per batch: lock the budget (PostgreSQL: an advisory lock; SQLite: the write
//! transaction), drop the rows older than the longest window, sum each window, and either
//! record a batch of calls at the database's clock or say when the next call fits.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text};

use super::conn::AnyConnection;
use crate::client::budget::BudgetWindow;
use crate::sync::store::query;

/// What one visit to the shared budget gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grant {
    /// This many calls, to be sent now.
    Calls(u64),
    /// No room; the next call fits in this many milliseconds.
    WaitMs(u64),
}

/// The advisory lock space of the shared budget (PostgreSQL), one lock per client id.
const LOCK_KEY: i32 = 0x4d50_5254; // "MPRT"

#[derive(QueryableByName)]
struct Millis {
    #[diesel(sql_type = BigInt)]
    ms: i64,
}

#[derive(QueryableByName)]
struct Used {
    #[diesel(sql_type = BigInt)]
    used: i64,
}

#[derive(QueryableByName)]
struct At {
    #[diesel(sql_type = BigInt)]
    granted_at_ms: i64,
}

/// How long rows are kept at least: Mangopay's longest window and a margin.
const RETENTION: std::time::Duration = std::time::Duration::from_secs(25 * 3600);

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Takes up to `want` calls for `client_id` from `windows` (each counted `margin` past its
/// end), in the caller's write transaction.
pub(crate) fn grant(
    conn: &mut AnyConnection,
    client_id: &str,
    windows: &[BudgetWindow],
    margin: std::time::Duration,
    want: u64,
) -> QueryResult<Grant> {
    let now_ms = match conn {
        AnyConnection::Pg(_) => {
            diesel::sql_query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                .bind::<Integer, _>(LOCK_KEY)
                .bind::<Text, _>(client_id)
                .execute(conn)?;
            diesel::sql_query("SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT AS ms")
                .get_result::<Millis>(conn)?
                .ms
        }
        AnyConnection::Sqlite(_) => chrono::Utc::now().timestamp_millis(),
    };
    if windows.is_empty() {
        return Ok(Grant::Calls(want));
    }
    // Kept for a day past the longest window of any process's budget, whatever this one's.
    let longest = windows
        .iter()
        .map(|w| ms(w.period + margin))
        .max()
        .unwrap_or(0)
        .max(ms(RETENTION));
    query(
        conn,
        "DELETE FROM mangopay_rate_budget WHERE client_id = $1 AND granted_at_ms <= $2".into(),
    )
    .bind::<Text, _>(client_id)
    .bind::<BigInt, _>(now_ms - longest)
    .execute(conn)?;
    let mut room = want;
    let mut wait_ms = 0u64;
    for w in windows {
        let since = now_ms - ms(w.period + margin);
        let used = query(
            conn,
            "SELECT CAST(COALESCE(SUM(calls), 0) AS BIGINT) AS used FROM mangopay_rate_budget \
             WHERE client_id = $1 AND granted_at_ms > $2"
                .into(),
        )
        .bind::<Text, _>(client_id)
        .bind::<BigInt, _>(since)
        .get_result::<Used>(conn)?
        .used;
        let used = u64::try_from(used).unwrap_or(0);
        if used < w.limit {
            room = room.min(w.limit - used);
            continue;
        }
        // The window is full: the batch whose leaving frees one call, and when it leaves.
        let must_leave = i64::try_from(used - w.limit + 1).unwrap_or(i64::MAX);
        let leaving = query(
            conn,
            "SELECT granted_at_ms FROM (SELECT granted_at_ms, SUM(calls) OVER \
             (ORDER BY granted_at_ms, id ROWS UNBOUNDED PRECEDING) AS left_before \
             FROM mangopay_rate_budget WHERE client_id = $1 AND granted_at_ms > $2) AS w \
             WHERE left_before >= $3 ORDER BY granted_at_ms LIMIT 1"
                .into(),
        )
        .bind::<Text, _>(client_id)
        .bind::<BigInt, _>(since)
        .bind::<BigInt, _>(must_leave)
        .get_result::<At>(conn)?
        .granted_at_ms;
        let at = leaving + ms(w.period + margin);
        wait_ms = wait_ms.max(u64::try_from(at - now_ms).unwrap_or(0).max(1));
        room = 0;
    }
    if room == 0 {
        return Ok(Grant::WaitMs(wait_ms.max(1)));
    }
    // Stamped when the calls are handed out, not when the visit began.
    let (granted_at, stamp) = match conn {
        AnyConnection::Pg(_) => (
            "GREATEST($2, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT)",
            now_ms,
        ),
        AnyConnection::Sqlite(_) => ("$2", chrono::Utc::now().timestamp_millis().max(now_ms)),
    };
    query(
        conn,
        format!(
            "INSERT INTO mangopay_rate_budget (client_id, granted_at_ms, calls) \
             VALUES ($1, {granted_at}, $3)"
        ),
    )
    .bind::<Text, _>(client_id)
    .bind::<BigInt, _>(stamp)
    .bind::<Integer, _>(i32::try_from(room).unwrap_or(i32::MAX))
    .execute(conn)?;
    Ok(Grant::Calls(room))
}
