//! Which jobs a worker runs: one line per job type. A resource's create and update jobs come
//! from the sync core (one generic handler each) and put its table on the sweep; a followed
//! resource's create job also plans its first status check, and its follow job makes each
//! check and plans the next; any other job is a plain async function.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use diesel_mangopay::models::{
    MangopayBankAccount, MangopayCardRegistration, MangopayDocument, MangopayPayIn, MangopayPayOut,
    MangopayRecipient, MangopayRefund, MangopayTransfer, MangopayUboDeclaration, MangopayUser,
    MangopayWallet,
};
use diesel_mangopay::sync::follow::{self, Followed};
use diesel_mangopay::sync::{self, Lease, Resource, SyncTable};
use diesel_mangopay::{Db, Error, MangopayClient, Poll, Polling};

use crate::job::{
    CREATE_MANGOPAY_BANK_ACCOUNT, CREATE_MANGOPAY_CARD_REGISTRATION,
    CREATE_MANGOPAY_DOCUMENT_AND_PAGES_AND_ASK_FOR_VALIDATION, CREATE_MANGOPAY_PAY_IN,
    CREATE_MANGOPAY_PAY_OUT, CREATE_MANGOPAY_RECIPIENT, CREATE_MANGOPAY_REFUND,
    CREATE_MANGOPAY_TRANSFER, CREATE_MANGOPAY_UBO_DECLARATION_AND_UBOS_AND_ASK_FOR_VALIDATION,
    CREATE_MANGOPAY_USER, CREATE_MANGOPAY_WALLET, UPDATE_MANGOPAY_DOCUMENT_STATUS,
    UPDATE_MANGOPAY_PAY_IN, UPDATE_MANGOPAY_PAY_OUT, UPDATE_MANGOPAY_RECIPIENT,
    UPDATE_MANGOPAY_UBO_DECLARATION_STATUS, UPDATE_MANGOPAY_USER, UPDATE_MANGOPAY_WALLET,
};

/// What every job needs: the database and the Mangopay client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct JobContext {
    /// The application's database.
    pub db: Db,
    /// The Mangopay client (its token is shared by every job).
    pub client: MangopayClient,
}

/// What a job that ran asks for: `Some(at)` when the row's object is followed and its next
/// status check is due at `at`.
pub(crate) type CheckAgain = Option<DateTime<Utc>>;

type BoxFuture = Pin<Box<dyn Future<Output = Result<CheckAgain, Error>> + Send>>;

/// A job's handler: the context, the row id, and the lease to hold the row with.
pub(crate) type Handler = Arc<dyn Fn(JobContext, i64, Lease) -> BoxFuture + Send + Sync>;

#[derive(Clone)]
pub(crate) struct Entry {
    pub handler: Handler,
    /// The table whose row the job holds (a resource's job): its lease is kept while the job
    /// waits for a retry.
    pub table: Option<SyncTable>,
    /// The job that makes the next status check, when the handler asks for one.
    pub follow: Option<String>,
}

/// A table the sweep visits, with the jobs it enqueues for due rows.
#[derive(Debug, Clone)]
pub(crate) struct SweepTarget {
    pub table: SyncTable,
    pub create: String,
    /// `None` for a resource Mangopay does not update (its rows are never dirty).
    pub update: Option<String>,
    /// The follow job of a followed resource, for rows whose status check is due.
    pub follow: Option<String>,
}

/// The job types a worker runs, by name.
#[derive(Clone, Default)]
pub struct Registry {
    pub(crate) entries: BTreeMap<String, Entry>,
    pub(crate) sweeps: Vec<SweepTarget>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("jobs", &self.entries.keys().collect::<Vec<_>>())
            .field(
                "swept",
                &self
                    .sweeps
                    .iter()
                    .map(|s| s.table.name())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The sync core's create of the stored row.
fn create_handler<R: Resource>() -> Handler {
    Arc::new(|ctx: JobContext, id, lease: Lease| {
        Box::pin(async move {
            sync::create_by_id::<R>(&ctx.db, &ctx.client, id, &lease).await?;
            Ok(None)
        })
    })
}

impl Registry {
    /// No job types.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// The library's job types: every resource's create and update jobs, and the follow jobs
    /// of pay-outs ([`Polling::pay_outs`]: the next weekday, 10 checks), recipients
    /// ([`Polling::recipients`]: every 10 minutes for a day) and pay-ins
    /// ([`Polling::pay_ins`]: from 30 s, doubling up to an hour, for about 35 days).
    pub fn standard() -> Registry {
        Registry::standard_polling(
            Polling::pay_outs(),
            Polling::recipients(),
            Polling::pay_ins(),
        )
    }

    /// [`standard`](Self::standard), with pay-outs, recipients and pay-ins followed under
    /// these policies.
    pub fn standard_polling(pay_outs: Polling, recipients: Polling, pay_ins: Polling) -> Registry {
        Registry::new()
            .resource::<MangopayUser>(CREATE_MANGOPAY_USER, UPDATE_MANGOPAY_USER)
            .resource::<MangopayWallet>(CREATE_MANGOPAY_WALLET, UPDATE_MANGOPAY_WALLET)
            .create_only::<MangopayBankAccount>(CREATE_MANGOPAY_BANK_ACCOUNT)
            .followed::<MangopayRecipient>(
                CREATE_MANGOPAY_RECIPIENT,
                UPDATE_MANGOPAY_RECIPIENT,
                recipients,
            )
            .create_only::<MangopayTransfer>(CREATE_MANGOPAY_TRANSFER)
            .followed::<MangopayPayOut>(CREATE_MANGOPAY_PAY_OUT, UPDATE_MANGOPAY_PAY_OUT, pay_outs)
            .kyc_documents()
            .ubo_declarations()
            .money_in(pay_ins)
    }

    /// Registers the money-in jobs: `create_mangopay_card_registration`,
    /// `create_mangopay_pay_in` and `update_mangopay_pay_in` (pay-ins followed under
    /// `pay_ins` while `CREATED`), and `create_mangopay_refund`.
    pub fn money_in(self, pay_ins: Polling) -> Registry {
        self.create_only::<MangopayCardRegistration>(CREATE_MANGOPAY_CARD_REGISTRATION)
            .followed::<MangopayPayIn>(CREATE_MANGOPAY_PAY_IN, UPDATE_MANGOPAY_PAY_IN, pay_ins)
            .create_only::<MangopayRefund>(CREATE_MANGOPAY_REFUND)
    }

    /// Registers the KYC document jobs:
    /// `create_mangopay_document_and_pages_and_ask_for_validation` (on the sweep for documents
    /// whose create is due) and `update_mangopay_document_status` (queued by [`crate::kyc_sweep`]
    /// for every document awaiting validation).
    pub fn kyc_documents(self) -> Registry {
        let create: Handler = Arc::new(|ctx: JobContext, id, lease: Lease| {
            Box::pin(async move {
                sync::create_by_id::<MangopayDocument>(&ctx.db, &ctx.client, id, &lease).await?;
                sync::release(&ctx.db, MangopayDocument::TABLE, id, &lease).await?;
                MangopayDocument::upload_pages_and_ask_for_validation(&ctx.db, &ctx.client, id)
                    .await?;
                Ok(None)
            })
        });
        self.with_resource::<MangopayDocument>(
            (
                CREATE_MANGOPAY_DOCUMENT_AND_PAGES_AND_ASK_FOR_VALIDATION,
                create,
            ),
            None,
            None,
        )
        .job(UPDATE_MANGOPAY_DOCUMENT_STATUS, |ctx, id| async move {
            MangopayDocument::update_status(&ctx.db, &ctx.client, id)
                .await
                .map(drop)
        })
    }

    /// Registers the UBO declaration jobs:
    /// `create_mangopay_ubo_declaration_and_ubos_and_ask_for_validation` (on the sweep for
    /// declarations whose create is due) and `update_mangopay_ubo_declaration_status` (queued
    /// by [`crate::kyc_sweep`] for every declaration awaiting validation).
    pub fn ubo_declarations(self) -> Registry {
        let create: Handler = Arc::new(|ctx: JobContext, id, lease: Lease| {
            Box::pin(async move {
                sync::create_by_id::<MangopayUboDeclaration>(&ctx.db, &ctx.client, id, &lease)
                    .await?;
                sync::release(&ctx.db, MangopayUboDeclaration::TABLE, id, &lease).await?;
                MangopayUboDeclaration::create_ubos_and_ask_for_validation(
                    &ctx.db,
                    &ctx.client,
                    id,
                )
                .await?;
                Ok(None)
            })
        });
        self.with_resource::<MangopayUboDeclaration>(
            (
                CREATE_MANGOPAY_UBO_DECLARATION_AND_UBOS_AND_ASK_FOR_VALIDATION,
                create,
            ),
            None,
            None,
        )
        .job(
            UPDATE_MANGOPAY_UBO_DECLARATION_STATUS,
            |ctx, id| async move {
                MangopayUboDeclaration::update_status(&ctx.db, &ctx.client, id)
                    .await
                    .map(drop)
            },
        )
    }

    /// Registers resource `R`'s create job (`create`: the sync core's create of the stored
    /// row) and update job (`update`), and puts its table on the sweep, which enqueues them
    /// for rows whose create or update is due.
    pub fn resource<R: Resource>(self, create: &str, update: &str) -> Registry {
        let update_handler: Handler = Arc::new(|ctx: JobContext, id, lease: Lease| {
            Box::pin(async move {
                sync::update_by_id::<R>(&ctx.db, &ctx.client, id, &lease).await?;
                Ok(None)
            })
        });
        self.with_resource::<R>(
            (create, create_handler::<R>()),
            Some((update, update_handler)),
            None,
        )
    }

    /// Registers the create job of resource `R`, which Mangopay does not update
    /// ([`Resource::UPDATABLE`] is false), and puts its table on the sweep for creates due.
    pub fn create_only<R: Resource>(self, create: &str) -> Registry {
        debug_assert!(
            !R::UPDATABLE,
            "{} is updated: register it with resource()",
            R::MODEL
        );
        self.with_resource::<R>((create, create_handler::<R>()), None, None)
    }

    /// Registers the create job of resource `R`, whose objects wait at Mangopay before they
    /// settle, and its follow job `follow`: the create plans the first status check under
    /// `polling`, each check plans the next while the object waits, up to the policy's cap.
    /// Puts its table on the sweep for creates due and for checks due whose job was lost.
    pub fn followed<R: Followed>(self, create: &str, follow: &str, polling: Polling) -> Registry {
        debug_assert!(!R::UPDATABLE, "{} is updated", R::MODEL);
        let first = polling.clone();
        let create_handler: Handler = Arc::new(move |ctx: JobContext, id, lease: Lease| {
            let polling = first.clone();
            Box::pin(async move {
                sync::create_by_id::<R>(&ctx.db, &ctx.client, id, &lease).await?;
                follow::plan_first_check::<R>(&ctx.db, id, &polling).await
            })
        });
        let follow_handler: Handler = Arc::new(move |ctx: JobContext, id, lease: Lease| {
            let polling = polling.clone();
            Box::pin(async move {
                if !follow::claim_check(&ctx.db, &ctx.client, R::TABLE, id, &lease).await? {
                    tracing::info!(id, "no {} check owed now; nothing to do", R::WHAT);
                    return Ok(None);
                }
                match follow::poll::<R>(&ctx.db, &ctx.client, id, &polling).await {
                    Ok(Poll::Again { after, .. }) => Ok(Some(after)),
                    Ok(Poll::Settled(_) | Poll::GaveUp { .. }) => {
                        sync::release(&ctx.db, R::TABLE, id, &lease).await?;
                        Ok(None)
                    }
                    Err(e) if !e.is_retryable() => {
                        // No retry fixes it (the object is unknown to Mangopay, say): reported
                        // on the row and no longer followed, never checked in a loop.
                        let why = format!("a status check failed and is not retried: {e}");
                        follow::stop(&ctx.db, R::TABLE, id, why).await?;
                        sync::release(&ctx.db, R::TABLE, id, &lease).await?;
                        Err(e)
                    }
                    Err(e) => Err(e),
                }
            })
        });
        self.with_resource::<R>(
            (create, create_handler),
            None,
            Some((follow, follow_handler)),
        )
    }

    fn with_resource<R: Resource>(
        mut self,
        (create, create_handler): (&str, Handler),
        update: Option<(&str, Handler)>,
        follow: Option<(&str, Handler)>,
    ) -> Registry {
        let table = Some(R::TABLE);
        let follow_name = follow.as_ref().map(|(name, _)| (*name).to_owned());
        let mut add = |name: &str, handler: Handler| {
            self.entries.insert(
                name.to_owned(),
                Entry {
                    handler,
                    table,
                    follow: follow_name.clone(),
                },
            );
        };
        add(create, create_handler);
        for (name, handler) in update.iter().chain(follow.iter()) {
            add(name, handler.clone());
        }
        self.sweeps.push(SweepTarget {
            table: R::TABLE,
            create: create.to_owned(),
            update: update.map(|(name, _)| name.to_owned()),
            follow: follow_name,
        });
        self
    }

    /// Registers a job handled by `handler(context, row id)`.
    pub fn job<F, Fut>(mut self, name: &str, handler: F) -> Registry
    where
        F: Fn(JobContext, i64) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let entry: Handler = Arc::new(move |ctx, id, _lease| {
            let handler = handler.clone();
            Box::pin(async move {
                handler(ctx, id).await?;
                Ok(None)
            })
        });
        self.entries.insert(
            name.to_owned(),
            Entry {
                handler: entry,
                table: None,
                follow: None,
            },
        );
        self
    }

    /// Whether a job of this name is registered.
    pub fn knows(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    pub(crate) fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_registry_runs_the_user_jobs_and_sweeps_their_table() {
        let r = Registry::standard();
        assert!(r.knows(CREATE_MANGOPAY_USER) && r.knows(UPDATE_MANGOPAY_USER));
        assert!(r.knows(CREATE_MANGOPAY_WALLET) && r.knows(CREATE_MANGOPAY_PAY_OUT));
        assert!(
            !r.knows("update_mangopay_transfer"),
            "transfers are never updated"
        );
        let swept: Vec<_> = r.sweeps.iter().map(|s| s.table.name()).collect();
        assert_eq!(
            swept,
            [
                "mangopay_users",
                "mangopay_wallets",
                "mangopay_bank_accounts",
                "mangopay_recipients",
                "mangopay_transfers",
                "mangopay_pay_outs",
                "mangopay_documents",
                "mangopay_ubo_declarations",
                "mangopay_card_registrations",
                "mangopay_pay_ins",
                "mangopay_refunds"
            ]
        );
        assert_eq!(r.sweeps[4].update, None);
        assert!(r.knows(UPDATE_MANGOPAY_PAY_OUT) && r.knows(UPDATE_MANGOPAY_RECIPIENT));
        assert_eq!(r.sweeps[5].follow.as_deref(), Some(UPDATE_MANGOPAY_PAY_OUT));
        assert_eq!(
            r.sweeps[3].follow.as_deref(),
            Some(UPDATE_MANGOPAY_RECIPIENT)
        );
        assert_eq!(r.sweeps[4].follow, None);
        let pay_out = r.entry(CREATE_MANGOPAY_PAY_OUT).unwrap();
        assert_eq!(pay_out.follow.as_deref(), Some(UPDATE_MANGOPAY_PAY_OUT));
        assert!(r.knows(CREATE_MANGOPAY_DOCUMENT_AND_PAGES_AND_ASK_FOR_VALIDATION));
        assert!(r.knows(UPDATE_MANGOPAY_DOCUMENT_STATUS));
        assert!(r.knows(CREATE_MANGOPAY_UBO_DECLARATION_AND_UBOS_AND_ASK_FOR_VALIDATION));
        assert!(r.knows(UPDATE_MANGOPAY_UBO_DECLARATION_STATUS));
        assert_eq!(r.sweeps[6].update, None);
        let custom = r.job("ping", |_ctx, _id| async { Ok(()) });
        assert!(custom.knows("ping"));
        assert!(format!("{custom:?}").contains("ping"));
    }
}
