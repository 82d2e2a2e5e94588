//! Following an object Mangopay settles later: a pay-out `CREATED` until its bank wire is
//! done, a recipient `PENDING` until its user completes SCA.
//!
//! A followed row keeps the time of its next status check in `follow_at`: set when an answer
//! records the waiting status (the first check is then owed at once, unless a follower says
//! when), moved to the next check by each check, cleared when the object settles or when the
//! [`Polling`] cap is reached (the row's `last_error` then says it is no longer followed).
//! Whoever makes the check owed at `follow_at` first consumes it, under the row's lease: two
//! followers never make the same check twice, and a follower that dies leaves `follow_at` due
//! for the sweep ([`claim_due`]) to hand out again. Nothing is ever followed silently forever,
//! and nothing waiting is ever forgotten.

use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDateTime, Utc, Weekday};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamp};

use super::store::{self, IdRow, SyncTable};
use super::{Lease, Resource, now};
use crate::db::{AnyConnection, Db, MultiBackend};
use crate::{Error, MangopayClient};

/// When an object still waiting is checked again, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Polling {
    /// `None`: the next weekday at the same time of day, as django-mangopay did for pay-outs
    /// (Friday, Saturday and Sunday go to Monday; UTC, no holiday calendar). `Some(d)`: after
    /// `d`.
    pub every: Option<Duration>,
    /// After this many checks of an object still waiting, it is no longer followed: the row's
    /// `last_error` says so, and the check that reached the cap reports it.
    pub max_checks: i32,
    /// `Some(cap)`: the wait doubles after each check, from `every` up to `cap` (pay-ins
    /// waiting for 3-D Secure or a bank wire). `None`: always `every`.
    pub backoff_up_to: Option<Duration>,
}

impl Polling {
    /// Pay-outs: the next weekday, at most 10 checks (two working weeks).
    pub fn pay_outs() -> Polling {
        Polling {
            every: None,
            max_checks: 10,
            backoff_up_to: None,
        }
    }

    /// Recipients waiting for their user's SCA: every 10 minutes, for a day (144 checks).
    pub fn recipients() -> Polling {
        Polling {
            every: Some(Duration::from_secs(600)),
            max_checks: 144,
            backoff_up_to: None,
        }
    }

    /// Every `every`, at most `max_checks` times.
    pub fn every(every: Duration, max_checks: i32) -> Polling {
        Polling {
            every: Some(every),
            max_checks,
            backoff_up_to: None,
        }
    }

    /// Pay-ins waiting for 3-D Secure or a bank wire: after 30 s, then twice as long after
    /// each check up to an hour, for about 35 days (850 checks): a bank wire waits up to a
    /// month for its money before Mangopay expires it. A card pay-in settles within
    /// minutes, so its following ends long before.
    pub fn pay_ins() -> Polling {
        Polling::backoff(Duration::from_secs(30), Duration::from_secs(3600), 850)
    }

    /// After `first`, then twice as long after each check up to `cap`, at most `max_checks`
    /// times.
    pub fn backoff(first: Duration, cap: Duration, max_checks: i32) -> Polling {
        Polling {
            every: Some(first),
            max_checks,
            backoff_up_to: Some(cap),
        }
    }

    /// When to check again after `now`, `checks` checks made so far.
    pub fn next_check_after(&self, now: DateTime<Utc>, checks: i32) -> DateTime<Utc> {
        match (self.every, self.backoff_up_to) {
            (Some(first), Some(cap)) => {
                let doublings = checks.clamp(0, 30) as u32;
                let wait = first
                    .checked_mul(1u32 << doublings.min(20))
                    .unwrap_or(cap)
                    .min(cap)
                    .max(first.min(cap));
                now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX)
            }
            _ => self.next_check(now),
        }
    }

    /// When to check again after `now`.
    pub fn next_check(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self.every {
            Some(d) => now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX),
            None => next_weekday(now),
        }
    }
}

/// The next weekday after `now`, same time of day: Monday to Thursday go to the next day,
/// Friday, Saturday and Sunday to Monday.
pub fn next_weekday(now: DateTime<Utc>) -> DateTime<Utc> {
    let mut next = now + chrono::Duration::days(1);
    while matches!(next.weekday(), Weekday::Sat | Weekday::Sun) {
        next += chrono::Duration::days(1);
    }
    next
}

/// What a status check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll<S> {
    /// Settled with this status (for a pay-out `SUCCEEDED`, once the application's hook has
    /// run, or `FAILED`).
    Settled(S),
    /// Still waiting: check again at `after`.
    Again {
        /// When.
        after: DateTime<Utc>,
        /// Checks so far.
        checks: i32,
    },
    /// Still waiting after the last check allowed: no longer followed.
    GaveUp {
        /// Checks made.
        checks: i32,
    },
}

/// A resource whose objects wait at Mangopay before they settle. Its table has the columns
/// `status`, `status_checks`, `status_checked_at` and `follow_at`.
pub trait Followed: Resource {
    /// The status as the model reads it.
    type Status: std::fmt::Debug + Send + 'static;
    /// What the object is called in logs and notes (`pay-out`).
    const WHAT: &'static str;
    /// The status Mangopay gives while the object waits (`CREATED`).
    const WAITING: &'static str;
    /// Reads a stored status.
    fn status(raw: &str) -> Self::Status;
    /// Whether a settled status is a failure (logged as an error; the row keeps Mangopay's
    /// result code and message where the object has them).
    fn failed(status: &Self::Status) -> bool;
}

#[derive(QueryableByName)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite, MultiBackend))]
struct Checked {
    #[diesel(sql_type = Nullable<Text>)]
    status: Option<String>,
    #[diesel(sql_type = Integer)]
    status_checks: i32,
}

#[derive(QueryableByName)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite, MultiBackend))]
struct FollowRow {
    #[diesel(sql_type = Nullable<Timestamp>)]
    follow_at: Option<NaiveDateTime>,
}

/// Keeps `follow_at` in step with an answer just recorded (in the transaction that wrote it):
/// an object waiting that was never checked owes its first check now (unless `follow_at` is
/// already set); an object no longer waiting is no longer followed. A waiting object whose
/// checks ran out stays unfollowed.
pub(crate) fn after_answer<R: Followed>(conn: &mut AnyConnection, id: i64) -> QueryResult<()> {
    store::query(
        conn,
        format!(
            "UPDATE {} SET follow_at = CASE \
               WHEN status IS NULL OR status <> $1 THEN NULL \
               WHEN follow_at IS NULL AND status_checks = 0 THEN $2 \
               ELSE follow_at END \
             WHERE id = $3",
            R::TABLE.name()
        ),
    )
    .bind::<Text, _>(R::WAITING)
    .bind::<Timestamp, _>(now())
    .bind::<BigInt, _>(id)
    .execute(conn)
    .map(drop)
}

/// Owes a status check of row `id` now, unless one is already planned (a hook failed and the
/// state it reacts to was undone: the next check records it again and reruns the hook).
pub(crate) fn owe_check_now(conn: &mut AnyConnection, t: SyncTable, id: i64) -> QueryResult<()> {
    store::query(
        conn,
        format!(
            "UPDATE {} SET follow_at = COALESCE(follow_at, $1) WHERE id = $2",
            t.name()
        ),
    )
    .bind::<Timestamp, _>(now())
    .bind::<BigInt, _>(id)
    .execute(conn)
    .map(drop)
}

#[derive(QueryableByName)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite, MultiBackend))]
struct Status {
    #[diesel(sql_type = Nullable<Text>)]
    status: Option<String>,
}

/// Whether an answer saying `incoming` is older than what row `id` holds: it says the object
/// still waits while the row already recorded it settled (a read that started before the
/// settlement and finished after another follower recorded it). Statuses only move forward.
pub(crate) fn is_stale<R: Followed>(
    conn: &mut AnyConnection,
    id: i64,
    incoming: Option<&str>,
) -> QueryResult<bool> {
    if incoming != Some(R::WAITING) {
        return Ok(false);
    }
    let stored: Option<Status> = store::query(
        conn,
        format!("SELECT status FROM {} WHERE id = $1", R::TABLE.name()),
    )
    .bind::<BigInt, _>(id)
    .get_result(conn)
    .optional()?;
    Ok(stored
        .and_then(|s| s.status)
        .is_some_and(|s| s != R::WAITING))
}

/// Stops following row `id` (a check failed in a way no retry fixes), with `why` noted.
pub async fn stop(db: &Db, table: SyncTable, id: i64, why: String) -> Result<(), Error> {
    db.write(move |conn| {
        set_follow_at(conn, table, id, None)?;
        let note = super::note("not_followed", why);
        store::note_error(conn, table, id, &note, now())?;
        Ok::<_, Error>(())
    })
    .await
}

/// Checks the object `id` once: reads it from Mangopay (which records its status, and runs
/// what reacts to it), counts the check, and keeps the next one under `policy`.
pub async fn poll<R: Followed>(
    db: &Db,
    client: &MangopayClient,
    id: i64,
    policy: &Polling,
) -> Result<Poll<R::Status>, Error> {
    super::refresh_by_id::<R>(db, client, id).await?;
    let policy = policy.clone();
    let poll = db
        .write(move |conn| {
            let at = now();
            let checked: Checked = store::query(
                conn,
                format!(
                    "UPDATE {} SET status_checks = status_checks + 1, status_checked_at = $1 \
                     WHERE id = $2 RETURNING status, status_checks",
                    R::TABLE.name()
                ),
            )
            .bind::<Timestamp, _>(at)
            .bind::<BigInt, _>(id)
            .get_result(conn)?;
            let checks = checked.status_checks;
            let waiting = checked.status.as_deref().is_none_or(|s| s == R::WAITING);
            let poll = match checked.status {
                Some(raw) if !waiting => Poll::Settled(R::status(&raw)),
                _ if checks >= policy.max_checks => Poll::GaveUp { checks },
                _ => Poll::Again {
                    after: policy.next_check_after(at.and_utc(), checks - 1),
                    checks,
                },
            };
            let next = match &poll {
                Poll::Again { after, .. } => Some(after.naive_utc()),
                _ => None,
            };
            set_follow_at(conn, R::TABLE, id, next)?;
            if let Poll::GaveUp { .. } = poll {
                let note = super::note(
                    "still_pending",
                    format!(
                        "still {} after {checks} status checks: no longer followed; check it \
                         at Mangopay",
                        R::WAITING
                    ),
                );
                store::note_error(conn, R::TABLE, id, &note, at)?;
            }
            Ok::<_, Error>(poll)
        })
        .await?;
    match &poll {
        Poll::GaveUp { checks } => tracing::error!(
            id,
            checks,
            "{} {id} is still {} after {checks} checks; no longer followed",
            R::WHAT,
            R::WAITING
        ),
        Poll::Settled(status) if R::failed(status) => {
            tracing::error!(id, ?status, "{} {id} settled as a failure", R::WHAT);
        }
        Poll::Settled(status) => tracing::info!(id, ?status, "{} {id} settled", R::WHAT),
        Poll::Again { .. } => {}
    }
    Ok(poll)
}

fn set_follow_at(
    conn: &mut AnyConnection,
    t: SyncTable,
    id: i64,
    at: Option<NaiveDateTime>,
) -> QueryResult<()> {
    store::query(
        conn,
        format!("UPDATE {} SET follow_at = $1 WHERE id = $2", t.name()),
    )
    .bind::<Nullable<Timestamp>, _>(at)
    .bind::<BigInt, _>(id)
    .execute(conn)
    .map(drop)
}

/// Plans the first check of the object `id` just created: if it waits and was never checked,
/// a first check owed now moves to `policy`'s first time. Returns when the next check is due
/// (also one owed at once, after a hook failed), `None` when nothing is to be followed.
pub async fn plan_first_check<R: Followed>(
    db: &Db,
    id: i64,
    policy: &Polling,
) -> Result<Option<DateTime<Utc>>, Error> {
    let policy = policy.clone();
    db.write(move |conn| {
        let at = now();
        let first = policy.next_check(at.and_utc()).naive_utc();
        let row: Option<FollowRow> = store::query(
            conn,
            format!(
                "UPDATE {} SET follow_at = CASE \
                   WHEN follow_at <= $1 AND status = $4 AND status_checks = 0 THEN $2 \
                   ELSE follow_at END \
                 WHERE id = $3 AND follow_at IS NOT NULL \
                 RETURNING follow_at",
                R::TABLE.name()
            ),
        )
        .bind::<Timestamp, _>(at)
        .bind::<Timestamp, _>(first)
        .bind::<BigInt, _>(id)
        .bind::<Text, _>(R::WAITING)
        .get_result(conn)
        .optional()?;
        Ok(row.and_then(|r| r.follow_at).map(|t| t.and_utc()))
    })
    .await
}

/// Takes the row's lease for `lease` (a follower about to check, for as long as one request
/// may take) if a check is owed now:
/// `false` when none is (another follower made it, or it is not yet time) or another
/// follower holds the row.
pub async fn claim_check(
    db: &Db,
    client: &MangopayClient,
    table: SyncTable,
    id: i64,
    lease: &Lease,
) -> Result<bool, Error> {
    let owner = lease.owner().to_owned();
    let hold_for = super::lease_duration(client.config().timeout());
    db.write(move |conn| {
        let at = now();
        let claimed: Option<IdRow> = store::query(
            conn,
            format!(
                "UPDATE {} SET lease_owner = $1, lease_until = $2 \
                 WHERE id = $3 AND follow_at IS NOT NULL AND follow_at <= $4 AND {takeable} \
                 RETURNING id, mangopay_id",
                table.name(),
                takeable = store::takeable("$4", "$1"),
            ),
        )
        .bind::<Text, _>(&owner)
        .bind::<Timestamp, _>(at + hold_for)
        .bind::<BigInt, _>(id)
        .bind::<Timestamp, _>(at)
        .get_result(conn)
        .optional()?;
        Ok(claimed.is_some())
    })
    .await
}

/// Finds up to `limit` rows of `table` whose check is due and whose lease is free or expired
/// (no follower holds them, no follow-up job is waiting for them) and reserves them for
/// `owner` for `hold_for`. The sweep hands each to a follow-up job.
pub async fn claim_due(
    db: &Db,
    table: SyncTable,
    owner: &Lease,
    hold_for: Duration,
    limit: i64,
) -> Result<Vec<i64>, Error> {
    let owner = owner.owner().to_owned();
    let hold_for = chrono::Duration::from_std(hold_for).unwrap_or(chrono::Duration::MAX);
    db.write(move |conn| {
        let due = "mangopay_id IS NOT NULL AND follow_at IS NOT NULL AND follow_at <= $3 \
                   AND (lease_until IS NULL OR lease_until < $3)";
        let lock = match conn {
            AnyConnection::Pg(_) => "FOR UPDATE SKIP LOCKED",
            AnyConnection::Sqlite(_) => "",
        };
        let at = now();
        let rows: Vec<IdRow> = store::query(
            conn,
            format!(
                "UPDATE {t} SET lease_owner = $1, lease_until = $2 \
                 WHERE id IN (SELECT id FROM {t} WHERE {due} ORDER BY follow_at LIMIT $4 {lock}) \
                   AND {due} \
                 RETURNING id, mangopay_id",
                t = table.name()
            ),
        )
        .bind::<Text, _>(&owner)
        .bind::<Timestamp, _>(at + hold_for)
        .bind::<Timestamp, _>(at)
        .bind::<BigInt, _>(limit)
        .load(conn)?;
        let mut ids: Vec<i64> = rows.into_iter().map(|r| r.id).collect();
        ids.sort_unstable();
        Ok(ids)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn pay_ins_are_followed_past_a_bank_wires_month() {
        let policy = Polling::pay_ins();
        let start = Utc.with_ymd_and_hms(2026, 1, 31, 9, 0, 0).unwrap();
        let mut at = start;
        for checks in 0..policy.max_checks {
            at = policy.next_check_after(at, checks);
        }
        let followed = at - start;
        assert!(followed > chrono::Duration::days(31), "{followed}");
        assert!(followed < chrono::Duration::days(40), "{followed}");
        assert_eq!(
            policy.next_check_after(start, 0) - start,
            chrono::Duration::seconds(30)
        );
    }

    #[test]
    fn the_next_weekday_skips_the_weekend_for_every_day_of_the_week() {
        // 2026-11-16 is a Monday.
        let at = |day: u32| Utc.with_ymd_and_hms(2026, 11, day, 9, 30, 0).unwrap();
        let expected = [
            (16, 17), // Monday → Tuesday
            (17, 18), // Tuesday → Wednesday
            (18, 19), // Wednesday → Thursday
            (19, 20), // Thursday → Friday
            (20, 23), // Friday → Monday
            (21, 23), // Saturday → Monday
            (22, 23), // Sunday → Monday
        ];
        for (from, to) in expected {
            assert_eq!(next_weekday(at(from)), at(to), "from 2026-11-{from}");
        }
        let every = Polling::every(Duration::from_secs(90), 3);
        assert_eq!(
            every.next_check(at(20)),
            at(20) + chrono::Duration::seconds(90)
        );
        assert_eq!(Polling::pay_outs().next_check(at(20)), at(23));
    }
}
