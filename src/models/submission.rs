//! What KYC documents and UBO declarations share: both are created, filled (pages, UBOs),
//! submitted for validation once (`submission_requested_at`), and followed while
//! `VALIDATION_ASKED` (`status_checks`, `status_checked_at`). The steps here work on either
//! table by name.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Timestamp};

use crate::sync::{Resource, SyncTable, now, refresh_by_id};
use crate::{Db, Error, MangopayClient};

/// Records that the row `id` of `R`'s table is to be submitted (if not already): from then on
/// the KYC sweep resumes a submission that stopped half-way. [`Error::NotFound`] when there
/// is no such row.
pub(crate) async fn request<R: Resource>(db: &Db, id: i64) -> Result<(), Error> {
    let table = R::TABLE;
    db.write(move |conn| {
        let found = crate::sync::store::query(
            conn,
            format!(
                "UPDATE {} SET submission_requested_at = \
                 COALESCE(submission_requested_at, $1) WHERE id = $2",
                table.name()
            ),
        )
        .bind::<Timestamp, _>(now())
        .bind::<BigInt, _>(id)
        .execute(conn)?;
        if found == 0 {
            return Err(Error::NotFound {
                model: R::MODEL,
                id,
            });
        }
        Ok(())
    })
    .await
}

/// Withdraws the submission request of the row `id` of `R`'s table: the KYC sweep no longer
/// resumes it (what stopped it needs the application).
pub(crate) async fn withdraw<R: Resource>(db: &Db, id: i64) -> Result<(), Error> {
    let table = R::TABLE;
    db.write(move |conn| {
        crate::sync::store::query(
            conn,
            format!(
                "UPDATE {} SET submission_requested_at = NULL WHERE id = $1",
                table.name()
            ),
        )
        .bind::<BigInt, _>(id)
        .execute(conn)
        .map(drop)
        .map_err(Error::from)
    })
    .await
}

/// Reads the row `id` of `R`'s table back from Mangopay and counts the status check.
pub(crate) async fn check_status<R: Resource>(
    db: &Db,
    client: &MangopayClient,
    id: i64,
) -> Result<(), Error> {
    refresh_by_id::<R>(db, client, id).await?;
    let table: SyncTable = R::TABLE;
    db.write(move |conn| {
        crate::sync::store::query(
            conn,
            format!(
                "UPDATE {} SET status_checks = status_checks + 1, status_checked_at = $1 \
                 WHERE id = $2",
                table.name()
            ),
        )
        .bind::<Timestamp, _>(now())
        .bind::<BigInt, _>(id)
        .execute(conn)
        .map(drop)
        .map_err(Error::from)
    })
    .await
}

/// The local ids of the rows of `table` awaiting validation (`VALIDATION_ASKED`), oldest
/// first.
pub(crate) async fn awaiting_validation(db: &Db, table: SyncTable) -> Result<Vec<i64>, Error> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    db.run(move |conn| {
        crate::sync::store::query(
            conn,
            format!(
                "SELECT id FROM {} WHERE status = 'VALIDATION_ASKED' ORDER BY id",
                table.name()
            ),
        )
        .load::<Id>(conn)
        .map(|ids| ids.into_iter().map(|i| i.id).collect())
        .map_err(Error::from)
    })
    .await
}
