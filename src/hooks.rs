//! The application's hooks: code the library runs when Mangopay reports a state change, in the
//! same database transaction that records the change.
//!
//! A hook runs inside the transaction that writes the new state and marks the hook as run, so
//! the three commit together or not at all: a hook that fails (returns an error or panics
//! before committing) leaves the old state and the mark unset, and the next poll runs it again;
//! a hook that succeeded is never run again, whatever the number of workers polling the same
//! object. Its own database writes should go through the connection it is given, which makes
//! them part of that transaction; effects outside the database (an e-mail) must be idempotent
//! or queued from there.
//!
//! Hooks are registered on the [`Db`](crate::Db) handle ([`Db::with_hooks`](crate::Db::with_hooks))
//! that the worker and the application use: run the worker with that handle
//! (`diesel_mangopay_jobs::run_worker`), since a separate binary cannot run your code. Where no
//! hook is registered nothing is marked: a pay-out recorded `SUCCEEDED` through a handle
//! without the hook has its hook run by the next sweep of a worker whose handle has it
//! ([`MangopayPayOut::run_owed_hooks`]), or the next time a handle with it refreshes the
//! pay-out — once, either way.

use std::fmt;
use std::sync::Arc;

use crate::db::AnyConnection;
use crate::models::MangopayPayOut;

/// What a hook returns: any error fails it, and it is run again at the next poll.
pub type HookResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

pub(crate) type PayOutHookFn =
    dyn Fn(&mut AnyConnection, &MangopayPayOut) -> HookResult + Send + Sync;

/// The hooks registered by the application; cheap to clone.
#[derive(Clone, Default)]
pub struct Hooks {
    pay_out_succeeded: Option<Arc<PayOutHookFn>>,
}

impl Hooks {
    /// No hooks.
    pub fn new() -> Hooks {
        Hooks::default()
    }

    /// Runs `hook` once per pay-out that reaches `SUCCEEDED` (django-mangopay's
    /// `MANGOPAY_PAYOUT_SUCCEEDED_TASK`), with the pay-out as recorded, inside the transaction
    /// that records it.
    pub fn on_pay_out_succeeded<F>(mut self, hook: F) -> Hooks
    where
        F: Fn(&mut AnyConnection, &MangopayPayOut) -> HookResult + Send + Sync + 'static,
    {
        self.pay_out_succeeded = Some(Arc::new(hook));
        self
    }

    pub(crate) fn pay_out_succeeded(&self) -> Option<&PayOutHookFn> {
        self.pay_out_succeeded.as_deref()
    }
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("pay_out_succeeded", &self.pay_out_succeeded.is_some())
            .finish()
    }
}
