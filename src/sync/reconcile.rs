//! Reconciliation: finding the object a create made by listing the resource and matching the
//! `Tag` marker (row id and idempotency key), and the operator's two tools, `adopt` and
//! `release_key`, which hold the row like a worker does and refuse when what Mangopay holds
//! contradicts them.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::create::{KEY_WINDOW, apply_or_note};
use super::resource::{Listing, Resource, Scope};
use super::store::{self, Created, Release, SyncTable};
use super::tag::split;
use super::{Lease, now};
use crate::client::{ApiError, PageRequest};
use crate::db::Db;
use crate::{Error, MangopayClient};

/// Items per page when listing (Mangopay's maximum).
const PER_PAGE: u32 = 100;
/// How many pages a search reads at most before handing over to an operator.
const MAX_PAGES: u32 = 50;
/// How far before the key's first use an object may be dated (clocks differ).
const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(15);

/// What listing the resource found for a row and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Search {
    /// Exactly one object carries the marker: its Mangopay id.
    Found(String),
    /// No object carries it, and the list was read back to before the key's first use.
    Nothing,
    /// Several objects carry it.
    Several(Vec<String>),
    /// The list was not read far enough back (too many newer objects).
    TooFar {
        /// How many objects were looked at.
        looked_at: usize,
    },
}

/// A row held during a long operation: its lease is renewed before each request.
pub(crate) struct Holder<'a> {
    pub db: &'a Db,
    pub client: &'a MangopayClient,
    pub table: SyncTable,
    pub id: i64,
    pub lease: &'a Lease,
}

impl Holder<'_> {
    /// Renews the lease for one more request; [`Error::Busy`] if another holder took it.
    pub(crate) async fn renew(&self) -> Result<(), Error> {
        super::hold(self.db, self.client, self.table, self.id, self.lease).await
    }
}

/// Lists the resource newest first and collects the objects whose tag carries the marker of
/// row `row` and key `key`, until the list is older than the key's first use. With a
/// `holder`, the row's lease is renewed before each page.
pub(crate) async fn search(
    client: &MangopayClient,
    listing: &Listing,
    row: i64,
    key: &str,
    key_at: DateTime<Utc>,
    holder: Option<&Holder<'_>>,
    untagged_match: &(dyn Fn(&Value) -> bool + Sync),
) -> Result<Search, Error> {
    if listing.path.is_empty() {
        // Not listable (card registrations): nothing can be found, and the key is released.
        return Ok(Search::Nothing);
    }
    let since = (key_at - CLOCK_SKEW).timestamp();
    let mut filters: Vec<(&str, String)> = vec![("Sort", "CreationDate:DESC".to_owned())];
    if listing.date_filters {
        filters.push(("AfterDate", since.to_string()));
        filters.push((
            "BeforeDate",
            (Utc::now() + CLOCK_SKEW).timestamp().to_string(),
        ));
    }
    filters.extend(listing.filters.iter().map(|(k, v)| (*k, v.clone())));
    let mut found = Vec::new();
    let mut looked_at = 0;
    let verdict = |mut found: Vec<String>| {
        found.dedup();
        match found.len() {
            0 => Search::Nothing,
            1 => Search::Found(found.remove(0)),
            _ => Search::Several(found),
        }
    };
    for page in 1..=MAX_PAGES {
        if let Some(holder) = holder {
            holder.renew().await?;
        }
        let items = client
            .list_filtered(
                &listing.path,
                &filters,
                PageRequest {
                    page,
                    per_page: PER_PAGE,
                },
            )
            .await?;
        looked_at += items.items.len();
        for item in &items.items {
            let read;
            let item = match (listing.item_path, item.get("Id").and_then(Value::as_str)) {
                // A summary without its Tag: read the object, unless it is older than the key.
                (Some(path), Some(id))
                    if item.get("Tag").is_none()
                        && item
                            .get("CreationDate")
                            .and_then(Value::as_i64)
                            .is_none_or(|t| t >= since) =>
                {
                    if let Some(holder) = holder {
                        holder.renew().await?;
                    }
                    read = client.get(&format!("{path}/{id}")).await?;
                    &read
                }
                _ => item,
            };
            let ours = if listing.untagged {
                item.get("CreationDate")
                    .and_then(Value::as_i64)
                    .is_some_and(|t| t >= since)
                    && untagged_match(item)
            } else {
                item.get("Tag")
                    .and_then(Value::as_str)
                    .and_then(|tag| split(tag).1)
                    .is_some_and(|m| m.row == row && m.key == key)
            };
            if ours && let Some(id) = item.get("Id").and_then(Value::as_str) {
                found.push(id.to_owned());
            }
        }
        let oldest = items
            .items
            .last()
            .and_then(|i| i.get("CreationDate"))
            .and_then(Value::as_i64);
        let last_page = items.items.len() < PER_PAGE as usize
            || items.total_pages.is_some_and(|p| u64::from(page) >= p)
            || oldest.is_some_and(|t| t < since);
        if last_page {
            return Ok(verdict(found));
        }
    }
    Ok(if found.is_empty() {
        Search::TooFar { looked_at }
    } else {
        verdict(found)
    })
}

/// Releases row `id`'s key after a search by tag found nothing: one write, conditional on the
/// key, on `lease` holding the row, on the key being spent or forgotten and on its last send
/// having settled ([`store::release_key`]). Returns whether the key was released.
pub(crate) async fn release_searched(
    db: &Db,
    table: SyncTable,
    id: i64,
    key: String,
    lease: &Lease,
    reconcile_after: chrono::Duration,
    note: String,
) -> Result<bool, Error> {
    let owner = lease.owner().to_owned();
    db.write(move |conn| {
        let at = now();
        let release = Release {
            id,
            key: &key,
            owner: &owner,
            note: &note,
            settled_before: at - reconcile_after,
            window_start: at - KEY_WINDOW,
            now: at,
        };
        store::release_key(conn, table, &release).map_err(Error::from)
    })
    .await
}

/// Adopts the Mangopay object `mangopay_id` as row `id`'s, holding the row (no worker acts on
/// it meanwhile), after checking the object exists, is of the row's kind and owner, is not
/// already another row's, and does not carry another row's marker.
pub(crate) async fn adopt<R: Resource>(
    db: &Db,
    client: &MangopayClient,
    id: i64,
    mangopay_id: &str,
    lease: &Lease,
) -> Result<(), Error> {
    let refuse = |reason: String| Error::AdoptRefused {
        model: R::MODEL,
        id,
        mangopay_id: mangopay_id.to_owned(),
        reason,
    };
    if mangopay_id.trim().is_empty() || mangopay_id.len() > 128 {
        return Err(refuse("a Mangopay id is 1 to 128 characters".into()));
    }
    let wanted = mangopay_id.to_owned();
    let (row, model, holder) = db
        .run(move |conn| {
            let (row, model) = super::load_parts::<R>(conn, id)?;
            let holder = store::id_for_mangopay_id(conn, R::TABLE, &wanted)?;
            Ok::<_, Error>((row, model, holder))
        })
        .await?;
    match row.mangopay_id.as_deref() {
        Some(same) if same == mangopay_id => return Ok(()),
        Some(other) => return Err(refuse(format!("the row already has {other}"))),
        None => {}
    }
    if let Some(other) = holder {
        return Err(refuse(format!("row {other} already has it")));
    }
    super::hold(db, client, R::TABLE, id, lease).await?;
    let result = adopt_held(db, client, &model, id, mangopay_id, &row, lease).await;
    if result.is_err() {
        super::release(db, R::TABLE, id, lease).await?;
    }
    result
}

async fn adopt_held<R: Resource>(
    db: &Db,
    client: &MangopayClient,
    model: &R,
    id: i64,
    mangopay_id: &str,
    row: &super::state::SyncRow,
    lease: &Lease,
) -> Result<(), Error> {
    let refuse = |reason: String| Error::AdoptRefused {
        model: R::MODEL,
        id,
        mangopay_id: mangopay_id.to_owned(),
        reason,
    };
    let payload = match client.get(&model.view_path(mangopay_id)).await {
        Ok(p) => p,
        Err(ApiError::Mangopay { status: 404, .. }) => {
            return Err(refuse("Mangopay has no such object of this kind".into()));
        }
        Err(e) => return Err(Error::Api(e)),
    };
    model.check_found(&payload).map_err(refuse)?;
    if let Some(marker) = payload
        .get("Tag")
        .and_then(Value::as_str)
        .and_then(|t| split(t).1)
        && marker.row != id
    {
        return Err(refuse(format!(
            "its tag says it was created for row {}",
            marker.row
        )));
    }
    let (wanted, owner, model) = (
        mangopay_id.to_owned(),
        lease.owner().to_owned(),
        model.clone(),
    );
    // The object may have been built from any version since the key was first used.
    let built_from = row.create_key_version.unwrap_or(row.row_version);
    let hooks = db.hooks().clone();
    db.write(move |conn| {
        let at = now();
        let stored = super::stored_payload(&payload);
        let created = Created {
            id,
            key: "",
            owner: &owner,
            mangopay_id: &wanted,
            payload: &stored,
            built_from,
            now: at,
        };
        let Some(row) = store::adopt(conn, R::TABLE, &created)? else {
            return Err(Error::AdoptRefused {
                model: R::MODEL,
                id,
                mangopay_id: wanted.clone(),
                reason: "the row changed meanwhile".into(),
            });
        };
        let scope = if row.row_version == built_from {
            Scope::All
        } else {
            Scope::ServerOnly
        };
        apply_or_note(conn, &model, id, &payload, scope, at, &hooks).map(drop)
    })
    .await
    .map_err(|e| match e {
        Error::Db(db) if db.is_unique_violation() => refuse("another row has it".into()),
        other => other,
    })?;
    tracing::warn!(model = R::MODEL, id, mangopay_id, "adopted by an operator");
    Ok(())
}

/// Drops row `id`'s idempotency key so that its next create sends a new one, holding the row
/// (no worker acts on it meanwhile, and the key is marked spent first so none resends it),
/// after checking that Mangopay has had time to show the key's object and that no object
/// carries the key's marker.
pub(crate) async fn release_key<R: Resource>(
    db: &Db,
    client: &MangopayClient,
    id: i64,
    lease: &Lease,
) -> Result<(), Error> {
    let refuse = |reason: String| Error::ReleaseRefused {
        model: R::MODEL,
        id,
        reason,
    };
    let (row, model) = db.run(move |conn| super::load_parts::<R>(conn, id)).await?;
    if let Some(existing) = &row.mangopay_id {
        return Err(refuse(format!("the object exists at Mangopay: {existing}")));
    }
    let Some(key) = row.create_idempotency_key.clone() else {
        return Ok(());
    };
    let reconcile_after = chrono::Duration::from_std(client.config().reconcile_after())
        .unwrap_or(chrono::Duration::MAX);
    let settles_at = row.create_sent_at.map(|t| t.and_utc() + reconcile_after);
    if let Some(t) = settles_at.filter(|t| *t > Utc::now()) {
        return Err(refuse(format!(
            "the create was sent recently; Mangopay may still show its object until {t}"
        )));
    }
    super::hold(db, client, R::TABLE, id, lease).await?;
    let owner = lease.owner().to_owned();
    let spent_key = key.clone();
    let marked = db
        .write(move |conn| {
            store::mark_spent(conn, R::TABLE, id, &spent_key, &owner).map_err(Error::from)
        })
        .await?;
    if !marked {
        return Err(refuse("the row's key changed meanwhile".into()));
    }
    let key_at = row
        .create_idempotency_key_at
        .map_or_else(Utc::now, |t| t.and_utc());
    let holder = Holder {
        db,
        client,
        table: R::TABLE,
        id,
        lease,
    };
    let untagged_match = |item: &Value| model.check_untagged(item).is_ok();
    let found = search(
        client,
        &model.listing(),
        id,
        &key,
        key_at,
        Some(&holder),
        &untagged_match,
    )
    .await;
    let refusal = match found {
        Ok(Search::Nothing) => None,
        Ok(Search::Found(object)) => Some(format!(
            "{object} carries this row's tag for the key: adopt it instead"
        )),
        Ok(Search::Several(objects)) => Some(format!(
            "{} carry this row's tag for the key",
            objects.join(", ")
        )),
        Ok(Search::TooFar { looked_at }) => Some(format!(
            "the {looked_at} newest objects do not reach back to the key: no evidence"
        )),
        Err(e) => {
            super::release(db, R::TABLE, id, lease).await?;
            return Err(e);
        }
    };
    if let Some(reason) = refusal {
        super::release(db, R::TABLE, id, lease).await?;
        return Err(refuse(reason));
    }
    let note = super::note(
        "idempotency_key_released",
        format!(
            "idempotency key {key} released by an operator after a search by tag found nothing"
        ),
    );
    let released = release_searched(db, R::TABLE, id, key, lease, reconcile_after, note).await?;
    if !released {
        super::release(db, R::TABLE, id, lease).await?;
        return Err(refuse("the row changed meanwhile".into()));
    }
    tracing::warn!(
        model = R::MODEL,
        id,
        "idempotency key released by an operator"
    );
    Ok(())
}
