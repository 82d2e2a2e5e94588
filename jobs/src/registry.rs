//! Which jobs a worker runs: one line per job type. A resource's create and update jobs come
//! from the sync core (one generic handler each) and put its table on the sweep; any other job
//! is a plain async function.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use diesel_mangopay::models::{
    MangopayBankAccount, MangopayPayOut, MangopayRecipient, MangopayTransfer, MangopayUser,
    MangopayWallet,
};
use diesel_mangopay::sync::{self, Lease, Resource, SyncTable};
use diesel_mangopay::{Db, Error, MangopayClient};

use crate::job::{
    CREATE_MANGOPAY_BANK_ACCOUNT, CREATE_MANGOPAY_PAY_OUT, CREATE_MANGOPAY_RECIPIENT,
    CREATE_MANGOPAY_TRANSFER, CREATE_MANGOPAY_USER, CREATE_MANGOPAY_WALLET, UPDATE_MANGOPAY_USER,
    UPDATE_MANGOPAY_WALLET,
};

/// What every job needs: the database and the Mangopay client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct JobContext {
    /// The application's database.
    pub db: Db,
    /// The Mangopay client (its token is shared by every job).
    pub client: MangopayClient,
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;

/// A job's handler: the context, the row id, and the lease to hold the row with.
pub(crate) type Handler = Arc<dyn Fn(JobContext, i64, Lease) -> BoxFuture + Send + Sync>;

#[derive(Clone)]
pub(crate) struct Entry {
    pub handler: Handler,
    /// The table whose row the job holds (a resource's job): its lease is kept while the job
    /// waits for a retry.
    pub table: Option<SyncTable>,
}

/// A table the sweep visits, with the jobs it enqueues for due rows.
#[derive(Debug, Clone)]
pub(crate) struct SweepTarget {
    pub table: SyncTable,
    pub create: String,
    /// `None` for a resource Mangopay does not update (its rows are never dirty).
    pub update: Option<String>,
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

impl Registry {
    /// No job types.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// The library's job types: every resource's create and update jobs.
    pub fn standard() -> Registry {
        Registry::new()
            .resource::<MangopayUser>(CREATE_MANGOPAY_USER, UPDATE_MANGOPAY_USER)
            .resource::<MangopayWallet>(CREATE_MANGOPAY_WALLET, UPDATE_MANGOPAY_WALLET)
            .create_only::<MangopayBankAccount>(CREATE_MANGOPAY_BANK_ACCOUNT)
            .create_only::<MangopayRecipient>(CREATE_MANGOPAY_RECIPIENT)
            .create_only::<MangopayTransfer>(CREATE_MANGOPAY_TRANSFER)
            .create_only::<MangopayPayOut>(CREATE_MANGOPAY_PAY_OUT)
    }

    /// Registers resource `R`'s create job (`create`: the sync core's create of the stored
    /// row) and update job (`update`), and puts its table on the sweep, which enqueues them
    /// for rows whose create or update is due.
    pub fn resource<R: Resource>(self, create: &str, update: &str) -> Registry {
        let update_handler: Handler = Arc::new(|ctx: JobContext, id, lease: Lease| {
            Box::pin(async move { sync::update_by_id::<R>(&ctx.db, &ctx.client, id, &lease).await })
        });
        self.with_resource::<R>(create, Some((update, update_handler)))
    }

    /// Registers the create job of resource `R`, which Mangopay does not update
    /// ([`Resource::UPDATABLE`] is false), and puts its table on the sweep for creates due.
    pub fn create_only<R: Resource>(self, create: &str) -> Registry {
        debug_assert!(
            !R::UPDATABLE,
            "{} is updated: register it with resource()",
            R::MODEL
        );
        self.with_resource::<R>(create, None)
    }

    fn with_resource<R: Resource>(
        mut self,
        create: &str,
        update: Option<(&str, Handler)>,
    ) -> Registry {
        let table = Some(R::TABLE);
        let create_handler: Handler = Arc::new(|ctx: JobContext, id, lease: Lease| {
            Box::pin(async move { sync::create_by_id::<R>(&ctx.db, &ctx.client, id, &lease).await })
        });
        self.entries.insert(
            create.to_owned(),
            Entry {
                handler: create_handler,
                table,
            },
        );
        if let Some((name, handler)) = &update {
            self.entries.insert(
                (*name).to_owned(),
                Entry {
                    handler: handler.clone(),
                    table,
                },
            );
        }
        self.sweeps.push(SweepTarget {
            table: R::TABLE,
            create: create.to_owned(),
            update: update.map(|(name, _)| name.to_owned()),
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
            Box::pin(async move { handler(ctx, id).await })
        });
        self.entries.insert(
            name.to_owned(),
            Entry {
                handler: entry,
                table: None,
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
                "mangopay_pay_outs"
            ]
        );
        assert_eq!(r.sweeps[4].update, None);
        let custom = r.job("ping", |_ctx, _id| async { Ok(()) });
        assert!(custom.knows("ping"));
        assert!(format!("{custom:?}").contains("ping"));
    }
}
