//! Update and refresh: an update claims the row (lease, `dirty`), sends `PUT`, and records
//! the answer; a refresh reads the object and records it. Neither lets an older answer
//! overwrite the application's newer fields.

use serde_json::Value;

use super::body::not_cleared;
use super::create::apply_or_note;
use super::resource::{Resource, Scope, UpdateRequest};
use super::state::SyncRow;
use super::store;
use super::{Lease, now, tag_for};
use crate::db::Db;
use crate::{Error, MangopayClient};

/// Where an update starts from.
pub(crate) enum Start<R> {
    /// The application's model: saved first.
    Save(R),
    /// The row as stored (a job).
    Stored(i64),
}

/// How an update call ended: whether it wrote anything (an error before that left the row as
/// it was), and the result with the row's id.
pub(crate) struct Outcome {
    pub written: bool,
    pub result: Result<i64, Error>,
}

/// Sends the row's fields to Mangopay (`PUT`) and records the answer.
pub(crate) async fn update<R: Resource>(
    db: &Db,
    client: &MangopayClient,
    start: Start<R>,
    lease: &Lease,
) -> Outcome {
    match send_update(db, client, start, lease).await {
        Ok(result) => Outcome {
            written: true,
            result,
        },
        Err(e) => Outcome {
            written: false,
            result: Err(e),
        },
    }
}

/// The update; the outer `Err` is a failure of the claim (nothing written).
async fn send_update<R: Resource>(
    db: &Db,
    client: &MangopayClient,
    start: Start<R>,
    lease: &Lease,
) -> Result<Result<i64, Error>, Error> {
    let lease_for = super::lease_duration(client.config().timeout());
    let owner = lease.owner().to_owned();
    // Step 1, one transaction: claim the row (lease, dirty), save the model (a direct call)
    // or load the row (a job), and build the request; bad input rolls it all back.
    let (id, model, version, request) = db
        .write(move |conn| {
            let at = now();
            let id = match &start {
                Start::Save(model) => model.id().ok_or(Error::NotSaved { model: R::MODEL })?,
                Start::Stored(id) => *id,
            };
            let Some(row) = store::claim_update(conn, R::TABLE, id, &owner, at + lease_for, at)?
            else {
                return Err(unclaimed::<R>(store::load(conn, R::TABLE, id)?, id));
            };
            let (model, version) = match start {
                Start::Save(mut model) => {
                    model.set_id(id);
                    model.write_fields(conn, id)?;
                    store::saved(conn, R::TABLE, id, at)?;
                    (model, row.row_version + 1)
                }
                Start::Stored(_) => {
                    let model = super::load_model::<R>(conn, id)?;
                    model.validate()?;
                    (model, row.row_version)
                }
            };
            let mut model = model;
            let key = row.create_idempotency_key.clone();
            model.set_sync(row.into_info(R::TABLE.name())?);
            let tag = tag_for(model.app_tag(), id, key.as_deref());
            let request = model.update_request(tag.as_deref())?;
            Ok((id, model, version, request))
        })
        .await?;
    let UpdateRequest { request, cleared } = request;
    let answer = client.put(&request.path, &request.body).await;
    let owner = lease.owner().to_owned();
    Ok(match answer {
        Ok(payload) => {
            let still_set = not_cleared(&payload, &cleared);
            let note = (!still_set.is_empty()).then(|| {
                super::note(
                    "field_not_cleared",
                    format!(
                        "Mangopay did not clear {}; the row keeps its cleared values",
                        still_set.join(", ")
                    ),
                )
            });
            let complete = still_set.is_empty();
            let hooks = db.hooks().clone();
            let recorded = db.write(move |conn| {
                let stored = super::stored_payload(&payload);
                let Some(row) = store::record_updated(
                    conn,
                    R::TABLE,
                    id,
                    &owner,
                    &stored,
                    version,
                    note.as_deref(),
                    now(),
                )?
                else {
                    tracing::warn!(
                        model = R::MODEL,
                        id,
                        "another holder took the row during the update; its answer is not recorded"
                    );
                    return Ok(());
                };
                let scope = if row.row_version == version && complete {
                    Scope::All
                } else {
                    Scope::ServerOnly
                };
                apply_or_note(conn, &model, id, &payload, scope, now(), &hooks).map(drop)
            })
            .await;
            match recorded {
                Err(e) => Err(e),
                Ok(()) if complete => Ok(id),
                Ok(()) => Err(Error::NotCleared {
                    model: R::MODEL,
                    id,
                    fields: still_set,
                }),
            }
        }
        Err(error) => {
            tracing::warn!(model = R::MODEL, id, error = %error, "update failed");
            let stored = serde_json::to_string(&error.to_stored()).unwrap_or_default();
            // Worth another try later: the row stays dirty, and the sweep resends it.
            let keep_dirty = error.is_retryable();
            let recorded = db
                .write(move |conn| {
                    store::record_update_failure(
                        conn,
                        R::TABLE,
                        id,
                        &owner,
                        &stored,
                        keep_dirty,
                        version,
                        now(),
                    )
                    .map(drop)
                    .map_err(Error::from)
                })
                .await;
            recorded.and(Err(Error::Api(error)))
        }
    })
}

/// Why an update could not claim the row.
fn unclaimed<R: Resource>(row: Option<SyncRow>, id: i64) -> Error {
    match row {
        None => Error::NotFound {
            model: R::MODEL,
            id,
        },
        Some(row) if row.mangopay_id.is_none() => Error::NotCreated {
            model: R::MODEL,
            id,
        },
        Some(row) => Error::Busy {
            model: R::MODEL,
            id,
            until: row
                .lease_until
                .map_or_else(chrono::Utc::now, |t| t.and_utc()),
        },
    }
}

/// Reads the object from Mangopay and records it. The application's fields are overwritten
/// only when the row has no update owed and was not saved while the answer was on its way.
pub(crate) async fn refresh<R: Resource>(
    db: &Db,
    client: &MangopayClient,
    id: i64,
) -> Result<(), Error> {
    let (model, mangopay_id, version) = db
        .run(move |conn| {
            let (row, model) = super::load_parts::<R>(conn, id)?;
            let mangopay_id = row.mangopay_id.clone().ok_or(Error::NotCreated {
                model: R::MODEL,
                id,
            })?;
            Ok::<_, Error>((model, mangopay_id, row.row_version))
        })
        .await?;
    let payload: Value = client.get(&model.view_path(&mangopay_id)).await?;
    let hooks = db.hooks().clone();
    db.write(move |conn| {
        let Some(row) =
            store::record_refreshed(conn, R::TABLE, id, &super::stored_payload(&payload), now())?
        else {
            return Err(Error::NotFound {
                model: R::MODEL,
                id,
            });
        };
        let scope = if row.row_version == version && !row.dirty {
            Scope::All
        } else {
            Scope::ServerOnly
        };
        apply_or_note(conn, &model, id, &payload, scope, now(), &hooks)
    })
    .await?
    .map_or(Ok(()), Err)
}

/// Records `payload`, Mangopay's answer to a request about row `id`'s object that is neither
/// its create nor its update (a status change asked for, such as a KYC document's
/// submission), as a refresh records it: the payload, then Mangopay's own fields only.
pub(crate) async fn record_answer<R: Resource>(
    db: &Db,
    model: R,
    id: i64,
    payload: Value,
) -> Result<(), Error> {
    let hooks = db.hooks().clone();
    db.write(move |conn| {
        if store::record_refreshed(conn, R::TABLE, id, &super::stored_payload(&payload), now())?
            .is_none()
        {
            return Err(Error::NotFound {
                model: R::MODEL,
                id,
            });
        }
        apply_or_note(conn, &model, id, &payload, Scope::ServerOnly, now(), &hooks)
    })
    .await?
    .map_or(Ok(()), Err)
}
