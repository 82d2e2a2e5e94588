//! Create: claim (one transaction), one call to Mangopay, record (one transaction); and, when
//! the outcome is unknown, the look-up and the reconciliation that settle it.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::Connection;
use serde_json::Value;

use super::outcome::Verdict;
use super::reconcile::{self, Search};
use super::resource::{ApiRequest, Resource, Scope};
use super::state::SyncRow;
use super::store::{self, ClaimArgs, Created, Failed, KeyFate};
use super::{Lease, SyncState, now, strip_marker, tag_for};
use crate::client::{ApiError, ErrorBody, IdempotencyKey};
use crate::db::{AnyConnection, Db};
use crate::hooks::Hooks;
use crate::{Error, MangopayClient};

/// Mangopay keeps a key for 24 hours from its first use; past 23 hours it is never resent.
pub(crate) const KEY_WINDOW: chrono::Duration = chrono::Duration::hours(23);

/// Where a create starts from.
pub(crate) enum Start<R> {
    /// The application's model: saved first (its fields written, its version bumped).
    Save(R),
    /// The row as stored (a job): loaded inside the claim.
    Stored(i64),
}

/// What the claim decided.
enum Step {
    /// Send the create with the row's key (`first`: the key was committed by this claim, so
    /// no earlier request can have used it).
    Send { request: ApiRequest, first: bool },
    /// The key's first answer could not be read yet (or the key is too old to resend while
    /// its last send may still be processed): read it back.
    LookUp,
    /// Settle the outcome by listing the resource.
    Reconcile,
}

/// Whether the row's send window ([`Resource::send_window`]) has passed at `at`.
fn window_passed<R: Resource>(
    model: &R,
    config: &crate::config::ClientConfig,
    created_at: Option<NaiveDateTime>,
    at: NaiveDateTime,
) -> bool {
    let Some(window) = model.send_window(config) else {
        return false;
    };
    let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    // A row whose insert time is unknown is taken as old: nothing is sent late.
    created_at.is_none_or(|t| t + window <= at)
}

/// The claim's result.
enum Claimed<R> {
    /// The row cannot be sent, for good, and the claim recorded it `failed` with the reason
    /// in the same transaction, its fresh key released: nothing was ever sent with it.
    Refused(Error),
    /// The row already has its Mangopay id: nothing to send.
    Done,
    /// The row is claimed: act on it.
    Go(Box<Go<R>>),
}

/// A claimed row and what to do with it.
struct Go<R> {
    model: R,
    key: String,
    key_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
    /// The row version the request of this claim was built from.
    version: i64,
    /// The row version the key's first request was built from.
    key_version: i64,
    step: Step,
}

/// How a create call ended: the row's id once the claim inserted or found it, whether the
/// call wrote anything (an error before that left the row as it was), and the result.
pub(crate) struct Outcome {
    pub id: Option<i64>,
    pub written: bool,
    pub result: Result<(), Error>,
}

/// Creates the object at Mangopay.
pub(crate) async fn create<R: Resource>(
    db: &Db,
    client: &MangopayClient,
    start: Start<R>,
    lease: &Lease,
) -> Outcome {
    // A reconciliation that proves nothing was created releases the key; the next round
    // claims a fresh key and sends it, so a second release cannot happen in the same call.
    let mut start = start;
    // Whether the application itself called (its own errors come back with nothing
    // written), or a job or the sweep (a row refused for good is recorded `failed`).
    let by_app = matches!(start, Start::Save(_));
    let mut outcome = Outcome {
        id: match &start {
            Start::Save(model) => model.id(),
            Start::Stored(id) => Some(*id),
        },
        written: false,
        result: Ok(()),
    };
    loop {
        let (claimed, id) = match claim::<R>(db, client, start, lease, by_app).await {
            Ok(claimed) => claimed,
            Err(e) => {
                outcome.result = Err(e);
                return outcome;
            }
        };
        outcome.id = Some(id);
        outcome.written = true;
        let go = match claimed {
            Claimed::Go(go) => go,
            Claimed::Done => return outcome,
            Claimed::Refused(error) => {
                outcome.result = Err(error);
                return outcome;
            }
        };
        let Go {
            model,
            key,
            key_at,
            sent_at,
            version,
            key_version,
            step,
        } = *go;
        let attempt = Attempt {
            db,
            client,
            lease,
            id,
            key: &key,
            version,
            key_version,
            model: &model,
        };
        match attempt.run(step, key_at, sent_at).await {
            Ok(Settled::Done) => return outcome,
            Ok(Settled::Released) => start = Start::Stored(id),
            Err(e) => {
                outcome.result = Err(e);
                return outcome;
            }
        }
    }
}

/// Step 1, one transaction: save the model (a direct call), claim the row's lease and key,
/// load the row and build the request. A request that cannot be built (bad input) rolls the
/// whole transaction back: nothing is written or sent.
async fn claim<R: Resource>(
    db: &Db,
    client: &MangopayClient,
    start: Start<R>,
    lease: &Lease,
    by_app: bool,
) -> Result<(Claimed<R>, i64), Error> {
    let config = client.config();
    let lease_for = super::lease_duration(config.timeout());
    let reconcile_after =
        chrono::Duration::from_std(config.reconcile_after()).unwrap_or(chrono::Duration::MAX);
    let owner = lease.owner().to_owned();
    let config = config.clone();
    db.write(move |conn| {
        let at = now();
        let mut start = start;
        if let Start::Save(model) = &mut start {
            if R::LOCKS_PARENTS {
                model.lock_parents(conn)?;
            }
            // The parents as committed, not as the application loaded them; a parent that
            // does not exist is a field error before anything is written.
            model.resolve(conn)?;
        }
        let id = match &start {
            Start::Save(model) => match model.id() {
                Some(id) => {
                    let row = store::load(conn, R::TABLE, id)?.ok_or(Error::NotFound {
                        model: R::MODEL,
                        id,
                    })?;
                    super::fixed_once_sent::<R>(&row, id)?;
                    if row.never_sent() {
                        model.check_before_save()?;
                    }
                    model.write_fields(conn, id)?;
                    store::saved(conn, R::TABLE, id, at)?;
                    if row.mangopay_id.is_some() {
                        // Already created: the fields are saved, and owed to Mangopay.
                        store::repair_synced(conn, R::TABLE, id, true, at)?;
                        return Ok((Claimed::Done, id));
                    }
                    id
                }
                None => {
                    model.check_before_save()?;
                    model.insert(conn, at)?
                }
            },
            Start::Stored(id) => {
                if R::LOCKS_PARENTS
                    && let Some(stored) = R::load(conn, *id)?
                {
                    // Parents first, then the row (the claim below locks it).
                    stored.lock_parents(conn)?;
                }
                *id
            }
        };
        let fresh = IdempotencyKey::generate();
        let args = ClaimArgs {
            id,
            now: at,
            fresh_key: fresh.as_str(),
            owner: &owner,
            lease_until: at + lease_for,
            window_start: at - KEY_WINDOW,
        };
        let saved = matches!(start, Start::Save(_));
        let Some(row) = store::claim_create(conn, R::TABLE, &args)? else {
            return unclaimed::<R>(conn, id, saved, at).map(|c| (c, id));
        };
        let mut model = match start {
            Start::Save(mut model) => {
                model.set_id(id);
                model
            }
            Start::Stored(_) => super::load_model::<R>(conn, id)?,
        };
        let key = row
            .create_idempotency_key
            .clone()
            .expect("a claimed row has a key");
        let key_at = row
            .create_idempotency_key_at
            .expect("a claimed row has its key's time")
            .and_utc();
        let sent_at = row.create_sent_at.map(|t| t.and_utc());
        let settled = || sent_at.is_none_or(|t| t.naive_utc() + reconcile_after <= at);
        let too_old = key_at.naive_utc() < at - KEY_WINDOW;
        let first = key == fresh.as_str();
        let late = window_passed(&model, &config, Some(row.created_at), at);
        // Decided here, in the claim's transaction: a fresh key is never committed unless it
        // may be sent.
        let refuse = |conn: &mut AnyConnection, error: Error, kind: &str| {
            let failed = Failed {
                id,
                key: &key,
                owner: &owner,
                error: &super::note(kind, error.to_string()),
                state: SyncState::Failed,
                fate: KeyFate::Release,
                now: at,
            };
            store::record_create_failure(conn, R::TABLE, &failed)?;
            tracing::warn!(model = R::MODEL, id, %error, "not sent");
            Ok::<_, Error>((Claimed::Refused(error), id))
        };
        let step = if late && first {
            // Never sent, and too late to send.
            let window = model.send_window(&config).unwrap_or_default();
            let error = Error::SendWindowPassed {
                model: R::MODEL,
                id,
                window_secs: window.as_secs(),
            };
            return refuse(conn, error, "send_window_passed");
        } else if too_old || row.create_key_spent || late {
            // Never resent: read back, or settled by tag once Mangopay has had time.
            if settled() {
                Step::Reconcile
            } else {
                Step::LookUp
            }
        } else {
            let checked = model
                .validate()
                .map_err(Error::from)
                .and_then(|()| if first { model.parents_ready() } else { Ok(()) });
            match checked {
                Ok(()) => {
                    let tag = tag_for(model.app_tag(), id, Some(&key));
                    Step::Send {
                        request: model.create_request(tag.as_deref())?,
                        first,
                    }
                }
                // A row a job or the sweep sends, whose fields or parents are wrong for good
                // before its first send: it is failed with the reason, not handed out again
                // and again. A parent not ready yet (not created, not active, a status not
                // known) is retried. The application's own call gets the error with nothing
                // written.
                Err(refused @ Error::Validation(_)) if first && !by_app => {
                    return refuse(conn, refused, "refused_before_sending");
                }
                Err(other) => return Err(other),
            }
        };
        let version = row.row_version;
        let key_version = row.create_key_version.unwrap_or(version);
        model.set_sync(row.into_info(R::TABLE.name())?);
        Ok((
            Claimed::Go(Box::new(Go {
                model,
                key,
                key_at,
                sent_at,
                version,
                key_version,
                step,
            })),
            id,
        ))
    })
    .await
}

/// Why a claim took nothing: the object exists (its state is repaired), another holder has
/// the row, it waits for an operator, or it does not exist.
fn unclaimed<R: Resource>(
    conn: &mut AnyConnection,
    id: i64,
    saved: bool,
    at: NaiveDateTime,
) -> Result<Claimed<R>, Error> {
    let row: SyncRow = store::load(conn, R::TABLE, id)?.ok_or(Error::NotFound {
        model: R::MODEL,
        id,
    })?;
    if row.mangopay_id.is_some() {
        store::repair_synced(conn, R::TABLE, id, saved, at)?;
        return Ok(Claimed::Done);
    }
    if row.sync_state == SyncState::Failed.as_str()
        && let Some(key) = row.create_idempotency_key.clone()
    {
        let reason = row
            .last_error
            .as_deref()
            .and_then(|e| serde_json::from_str::<ErrorBody>(e).ok())
            .and_then(|e| e.message)
            .unwrap_or_else(|| "its outcome could not be settled automatically".into());
        return Err(Error::NeedsOperator {
            model: R::MODEL,
            id,
            key,
            reason,
            candidates: Vec::new(),
        });
    }
    Err(Error::Busy {
        model: R::MODEL,
        id,
        until: row.lease_until.map_or_else(Utc::now, |t| t.and_utc()),
    })
}

/// How an attempt ended, when it did not fail.
enum Settled {
    /// The row has its Mangopay id.
    Done,
    /// Reconciliation proved nothing was created and released the key.
    Released,
}

/// Where a created object's data came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The answer to this claim's request: built from this claim's version.
    ThisRequest,
    /// The first answer read back for the key, or the object found by its tag: built from
    /// the version of the key's first request, perhaps older than this claim's.
    FirstRequest,
}

/// One claimed create in progress.
struct Attempt<'a, R> {
    db: &'a Db,
    client: &'a MangopayClient,
    lease: &'a Lease,
    id: i64,
    key: &'a str,
    version: i64,
    key_version: i64,
    model: &'a R,
}

impl<R: Resource> Attempt<'_, R> {
    fn key(&self) -> IdempotencyKey {
        IdempotencyKey::new(self.key).expect("keys on rows are checked when generated")
    }

    fn reconcile_after(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.client.config().reconcile_after())
            .unwrap_or(chrono::Duration::MAX)
    }

    async fn run(
        &self,
        step: Step,
        key_at: DateTime<Utc>,
        sent_at: Option<DateTime<Utc>>,
    ) -> Result<Settled, Error> {
        let (verdict, error, source) = match step {
            Step::Send { request, first } => {
                let answer = self
                    .client
                    .post_keyed(&request.path, &request.body, &self.key())
                    .await;
                let source = match &answer {
                    Ok(posted) if posted.replayed => Source::FirstRequest,
                    _ => Source::ThisRequest,
                };
                let (verdict, error) = judge(answer, first);
                (verdict, error, source)
            }
            Step::LookUp => {
                let (verdict, error) = judge(self.client.replay(&self.key()).await, false);
                (verdict, error, Source::FirstRequest)
            }
            Step::Reconcile => return self.reconcile(key_at).await,
        };
        match verdict {
            Verdict::Created(payload) => self.record_created(payload, source).await,
            Verdict::Refused => {
                let error = error.expect("a refusal is an error");
                self.record_failure(&error, SyncState::Failed, KeyFate::Release)
                    .await?;
                Err(Error::Api(error))
            }
            Verdict::NotProcessed { key_blocked } => {
                let error = error.expect("an unprocessed request is an error");
                let fate = if key_blocked {
                    KeyFate::Release
                } else {
                    KeyFate::Keep { spent: false }
                };
                self.record_failure(&error, SyncState::Pending, fate)
                    .await?;
                Err(Error::Api(error))
            }
            Verdict::Unknown { spent } => {
                let error = error.unwrap_or_else(|| ApiError::Decode {
                    status: 200,
                    message: "the answer has no object Id".into(),
                });
                self.record_failure(&error, SyncState::Pending, KeyFate::Keep { spent })
                    .await?;
                let reconcile_at = sent_at.map(|t| t + self.reconcile_after());
                if spent && reconcile_at.is_none_or(|t| t <= Utc::now()) {
                    // The key's first answer is lost and Mangopay has had time: settle it now.
                    return self.reconcile(key_at).await;
                }
                Err(Error::OutcomeUnknown {
                    model: R::MODEL,
                    id: self.id,
                    key: self.key.to_owned(),
                    retry_at: if spent { reconcile_at } else { None },
                    source: error,
                })
            }
        }
    }

    /// Step 3 for a created object, one transaction: the id and payload, conditional on the
    /// key that was sent; then, in a savepoint, the fields: the application's own only if the
    /// row still has the version the object was built from (otherwise the row is marked
    /// dirty, for an update). A failure to write the fields is noted on the row and does not
    /// undo the id.
    async fn record_created(&self, payload: Value, source: Source) -> Result<Settled, Error> {
        let built_from = match source {
            Source::ThisRequest => self.version,
            Source::FirstRequest => self.key_version,
        };
        let (id, key) = (self.id, self.key.to_owned());
        let owner = self.lease.owner().to_owned();
        let model = self.model.clone();
        let hooks = self.db.hooks().clone();
        let mangopay_id = payload["Id"].as_str().unwrap_or_default().to_owned();
        let recorded = self
            .db
            .write(move |conn| {
                let at = now();
                let stored = super::stored_payload(&payload);
                let created = Created {
                    id,
                    key: &key,
                    owner: &owner,
                    mangopay_id: &mangopay_id,
                    payload: &stored,
                    built_from,
                    now: at,
                };
                let Some(row) = store::record_created(conn, R::TABLE, &created)? else {
                    store::release_lease(conn, R::TABLE, id, &owner)?;
                    return orphan_check::<R>(conn, id, &key, &mangopay_id, at);
                };
                let scope = if row.row_version == built_from {
                    Scope::All
                } else {
                    Scope::ServerOnly
                };
                // A failed hook is noted; the pay-out's poll runs it again.
                apply_or_note(conn, &model, id, &payload, scope, at, &hooks)?;
                Ok(true)
            })
            .await?;
        if recorded {
            tracing::info!(
                model = R::MODEL,
                id = self.id,
                ?source,
                "created at Mangopay"
            );
        }
        Ok(Settled::Done)
    }

    /// Step 3 for a failure, one transaction, conditional on the key that was sent. A writer
    /// whose condition fails (the row was created meanwhile, its key replaced, or it waits
    /// for an operator) changes nothing but its own lease.
    async fn record_failure(
        &self,
        error: &ApiError,
        state: SyncState,
        fate: KeyFate,
    ) -> Result<(), Error> {
        tracing::warn!(model = R::MODEL, id = self.id, error = %error, ?fate, "create failed");
        let stored = serde_json::to_string(&error.to_stored()).unwrap_or_default();
        let (id, key, owner) = (self.id, self.key.to_owned(), self.lease.owner().to_owned());
        self.db
            .write(move |conn| {
                let failed = Failed {
                    id,
                    key: &key,
                    owner: &owner,
                    error: &stored,
                    state,
                    fate,
                    now: now(),
                };
                if !store::record_create_failure(conn, R::TABLE, &failed)? {
                    store::release_lease(conn, R::TABLE, id, &owner)?;
                }
                Ok::<_, Error>(())
            })
            .await
    }

    /// Lists the resource and matches the row's tag: adopts the one object found, releases the
    /// key when there is none, and leaves the rest to an operator.
    async fn reconcile(&self, key_at: DateTime<Utc>) -> Result<Settled, Error> {
        let (id, key) = (self.id, self.key.to_owned());
        let listing = self.model.listing();
        let holder = reconcile::Holder {
            db: self.db,
            client: self.client,
            table: R::TABLE,
            id,
            lease: self.lease,
        };
        let model = &self.model;
        let untagged_match = |item: &Value| model.check_untagged(item).is_ok();
        let search = reconcile::search(
            self.client,
            &listing,
            id,
            &key,
            key_at,
            Some(&holder),
            &untagged_match,
        )
        .await;
        match search {
            Err(error) => {
                let error = match error {
                    Error::Api(api) => api,
                    other => return Err(other),
                };
                self.note(&error.to_stored()).await?;
                Err(Error::OutcomeUnknown {
                    model: R::MODEL,
                    id,
                    key,
                    retry_at: None,
                    source: error,
                })
            }
            Ok(Search::Found(found)) => {
                holder.renew().await?;
                let payload = self
                    .client
                    .get(&self.model.view_path(&found))
                    .await
                    .map_err(|source| Error::OutcomeUnknown {
                        model: R::MODEL,
                        id,
                        key: key.clone(),
                        retry_at: None,
                        source,
                    })?;
                // A tag with this row's key proves the object is the row's; an untagged match
                // (only a creation date) is checked against the row first.
                let checked = if listing.untagged {
                    self.model.check_untagged(&payload)
                } else {
                    Ok(())
                };
                if let Err(why) = checked {
                    let reason = format!("the object {found} found for this row is not its: {why}");
                    return self.operator(reason, vec![found]).await;
                }
                tracing::info!(model = R::MODEL, id, mangopay_id = %found, "reconciled: found by tag");
                self.record_created(payload, Source::FirstRequest).await
            }
            Ok(Search::Nothing) if self.late() => self.expire().await,
            Ok(Search::Nothing) => {
                let note = super::note(
                    "idempotency_key_released",
                    format!("no object carries this row's tag for idempotency key {key}: released"),
                );
                let released = reconcile::release_searched(
                    self.db,
                    R::TABLE,
                    id,
                    key,
                    self.lease,
                    self.reconcile_after(),
                    note,
                )
                .await?;
                tracing::info!(
                    model = R::MODEL,
                    id,
                    released,
                    "reconciled: nothing was created"
                );
                if released {
                    Ok(Settled::Released)
                } else {
                    // Someone else moved the row on meanwhile: whatever it is now is theirs.
                    Err(Error::Busy {
                        model: R::MODEL,
                        id,
                        until: Utc::now(),
                    })
                }
            }
            Ok(Search::Several(candidates)) => {
                let reason = format!(
                    "{} objects carry this row's tag: {}",
                    candidates.len(),
                    candidates.join(", ")
                );
                self.operator(reason, candidates).await
            }
            Ok(Search::TooFar { looked_at }) => {
                let reason = format!(
                    "looked through the {looked_at} newest objects without reaching the key's time"
                );
                self.operator(reason, Vec::new()).await
            }
        }
    }

    /// Whether the row's send window has passed: nothing may be sent for it any more.
    fn late(&self) -> bool {
        let created_at = self.model.sync().created_at.map(|t| t.naive_utc());
        window_passed(self.model, self.client.config(), created_at, now())
    }

    /// Fails a row whose send window passed while Mangopay has nothing for it (its key never
    /// sent, or no object carries its tag): the key is released, and nothing is ever sent
    /// for it (the window counts from the row's insert).
    async fn expire(&self) -> Result<Settled, Error> {
        let window = self
            .model
            .send_window(self.client.config())
            .unwrap_or_default();
        let error = Error::SendWindowPassed {
            model: R::MODEL,
            id: self.id,
            window_secs: window.as_secs(),
        };
        // The key goes into the note: should the object show up after all (a list that
        // lagged), the row still says which key to look for.
        let stored = super::note(
            "send_window_passed",
            format!(
                "{error}; no object carries the tag of idempotency key {}",
                self.key
            ),
        );
        self.fail(stored, KeyFate::Release).await?;
        tracing::warn!(
            model = R::MODEL,
            id = self.id,
            "not sent: its send window has passed"
        );
        Err(error)
    }

    /// Records the row `failed` with `note`, conditional on the key; a row moved on meanwhile
    /// (recorded by another holder) is left as it is, the lease let go, and [`Error::Busy`]
    /// returned.
    async fn fail(&self, note: String, fate: KeyFate) -> Result<(), Error> {
        let (id, key, owner) = (self.id, self.key.to_owned(), self.lease.owner().to_owned());
        self.db
            .write(move |conn| {
                let failed = Failed {
                    id,
                    key: &key,
                    owner: &owner,
                    error: &note,
                    state: SyncState::Failed,
                    fate,
                    now: now(),
                };
                if store::record_create_failure(conn, R::TABLE, &failed)? {
                    return Ok(());
                }
                store::release_lease(conn, R::TABLE, id, &owner)?;
                Err(Error::Busy {
                    model: R::MODEL,
                    id,
                    until: Utc::now(),
                })
            })
            .await
    }

    async fn note(&self, error: &ErrorBody) -> Result<(), Error> {
        let (id, stored) = (self.id, serde_json::to_string(error).unwrap_or_default());
        self.db
            .write(move |conn| {
                store::note_error(conn, R::TABLE, id, &stored, now()).map_err(Error::from)
            })
            .await
    }

    async fn operator(&self, reason: String, candidates: Vec<String>) -> Result<Settled, Error> {
        let stored = super::note("reconciliation_needs_operator", reason.clone());
        self.fail(stored, KeyFate::Keep { spent: true }).await?;
        let id = self.id;
        tracing::error!(model = R::MODEL, id, reason, "create needs an operator");
        Err(Error::NeedsOperator {
            model: R::MODEL,
            id,
            key: self.key.to_owned(),
            reason,
            candidates,
        })
    }
}

/// The verdict on an answer. A refusal proves nothing was created only when it is the
/// key's first send, or the key's own stored answer read back: a refusal of a resend (a
/// proxy's redirect, a credentials problem, a validation rule met before the key's check)
/// says nothing about the earlier request, so the outcome stays unknown and the key is only
/// looked up and reconciled.
fn judge(
    answer: Result<crate::client::Posted, ApiError>,
    first: bool,
) -> (Verdict, Option<ApiError>) {
    match answer {
        Ok(posted) => (Verdict::of_answer(posted.body, posted.replayed), None),
        Err(e) => {
            let verdict = match Verdict::of_error(&e) {
                Verdict::Refused if !first && !e.replayed() => Verdict::Unknown { spent: true },
                other => other,
            };
            (verdict, Some(e))
        }
    }
}

/// Writes an answer's fields in a savepoint, with what reacts to them
/// ([`Resource::after_apply`]); a failure (a value a column cannot hold, a hook that failed) is
/// noted on the row instead of undoing what the outer transaction recorded. A hook's failure
/// is also handed back (`Ok(Some(..))`), for a refresh to return it.
pub(crate) fn apply_or_note<R: Resource>(
    conn: &mut AnyConnection,
    model: &R,
    id: i64,
    payload: &Value,
    scope: Scope,
    at: NaiveDateTime,
    hooks: &Hooks,
) -> Result<Option<Error>, Error> {
    let applied = conn.transaction(|conn| {
        model
            .apply_api_data(conn, id, &strip_marker(payload), scope)
            .map_err(Error::from)?;
        model.after_apply(conn, id, hooks)
    });
    match applied {
        Ok(()) => Ok(None),
        Err(error @ Error::Hook { .. }) => {
            tracing::error!(model = R::MODEL, id, %error, "a hook failed; the state it reacts to is not recorded");
            model.after_failed_hook(conn, id)?;
            let note = super::note(
                "hook_failed",
                format!("{error}; it runs again at the next status check"),
            );
            store::note_error(conn, R::TABLE, id, &note, at)?;
            Ok(Some(error))
        }
        Err(error) => {
            tracing::error!(model = R::MODEL, id, %error, "could not write Mangopay's answer into the row");
            let note = super::note(
                "answer_not_applied",
                format!(
                    "Mangopay's answer was recorded (api_payload) but its fields could not be written: {error}"
                ),
            );
            store::note_error(conn, R::TABLE, id, &note, at)?;
            Ok(None)
        }
    }
}

/// A created object's answer arrived but the row's condition failed: the row was created by
/// another attempt (nothing to do) or its key is no longer the one sent. In the second case
/// the object is an orphan at Mangopay: it is logged, kept in the orphans' ledger for good and
/// noted on the row, never silently dropped.
fn orphan_check<R: Resource>(
    conn: &mut AnyConnection,
    id: i64,
    key: &str,
    mangopay_id: &str,
    at: NaiveDateTime,
) -> Result<bool, Error> {
    let row = store::load(conn, R::TABLE, id)?.ok_or(Error::NotFound {
        model: R::MODEL,
        id,
    })?;
    if row.mangopay_id.as_deref() == Some(mangopay_id) {
        return Ok(false);
    }
    tracing::error!(model = R::MODEL, id, key, mangopay_id, current = ?row.mangopay_id,
        "Mangopay created an object for a key this row no longer holds");
    store::record_orphan(
        conn,
        R::TABLE,
        id,
        mangopay_id,
        key,
        row.mangopay_id.as_deref(),
        at,
    )?;
    let note = ErrorBody {
        message: Some(format!(
            "Mangopay created {mangopay_id} for idempotency key {key}, which this row no longer \
             holds (it has {}): check it and deactivate or adopt it",
            row.mangopay_id.as_deref().unwrap_or("no object yet")
        )),
        kind: Some("orphaned_object".into()),
        date: Some(at.and_utc().timestamp()),
        ..ErrorBody::default()
    };
    store::note_error(
        conn,
        R::TABLE,
        id,
        &serde_json::to_string(&note).unwrap_or_default(),
        at,
    )?;
    Ok(false)
}
