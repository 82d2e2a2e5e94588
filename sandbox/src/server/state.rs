//! The sandbox's shared state: configuration, knobs, clock, random generator and
//! the in-memory stores (users, idempotency keys, rate-limit counters, request log).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rand::SeedableRng as _;
use rand::rngs::StdRng;

use super::bank_accounts::BankAccountStore;
use super::clock::Clock;
use super::error::Context;
use super::idempotency::IdempotencyStore;
use super::knobs::Knobs;
use super::kyc::KycStore;
use super::ledger::Ledger;
use super::ratelimit::RateLimiter;
use super::recipients::RecipientStore;
use super::users::UserRecord;
use super::{RequestRecord, SandboxConfig};

/// Everything one sandbox owns; [`super::Sandbox`] is an `Arc` of this.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: SandboxConfig,
    pub(crate) knobs: Knobs,
    pub(crate) clock: Clock,
    /// Every random draw: error-rate decisions, ULIDs, error report Ids.
    pub(crate) rng: Arc<Mutex<StdRng>>,
    pub(crate) users: Mutex<UserStore>,
    /// Legacy bank accounts (see [`super::bank_accounts`]).
    pub(crate) bank_accounts: Mutex<BankAccountStore>,
    /// Recipients (see [`super::recipients`]; read them through [`Shared::recipients`]).
    pub(crate) recipients: Mutex<RecipientStore>,
    /// Wallets, transfers and pay-outs, one lock for every money movement (see
    /// [`super::ledger`]; read it through [`Shared::ledger`]).
    pub(crate) ledger: Mutex<Ledger>,
    /// KYC documents and UBO declarations (see [`super::kyc`] and [`super::ubo`]; read them
    /// through [`Shared::kyc`], after [`Shared::settle_kyc`]).
    pub(crate) kyc: Mutex<KycStore>,
    pub(crate) idempotency: IdempotencyStore,
    pub(crate) rate_limiter: RateLimiter,
    pub(crate) request_log: Mutex<RequestLog>,
    pub(crate) token_requests: AtomicU64,
}

impl Shared {
    pub(crate) fn new(config: SandboxConfig) -> Shared {
        let rng = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => rand::make_rng(),
        };
        Shared {
            config,
            knobs: Knobs::default(),
            clock: Clock::default(),
            rng: Arc::new(Mutex::new(rng)),
            users: Mutex::default(),
            bank_accounts: Mutex::default(),
            recipients: Mutex::default(),
            ledger: Mutex::default(),
            kyc: Mutex::default(),
            idempotency: IdempotencyStore::default(),
            rate_limiter: RateLimiter::default(),
            request_log: Mutex::default(),
            token_requests: AtomicU64::new(0),
        }
    }

    /// What the requests of this sandbox are answered with: its clock and generator.
    pub(crate) fn context(&self) -> Context {
        Context {
            clock: self.clock.clone(),
            rng: Arc::clone(&self.rng),
        }
    }

    /// The random generator, even if a panicking request poisoned its lock.
    pub(crate) fn rng(&self) -> MutexGuard<'_, StdRng> {
        self.rng.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The user store, even if a panicking request poisoned its lock.
    pub(crate) fn users(&self) -> MutexGuard<'_, UserStore> {
        self.users.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn count_token_request(&self) {
        self.token_requests.fetch_add(1, Ordering::SeqCst);
    }

    fn log(&self) -> MutexGuard<'_, RequestLog> {
        self.request_log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Logs a request as it arrives; its status is filled in by [`Shared::log_answer`].
    pub(crate) fn log_request(&self, record: RequestRecord) -> u64 {
        let mut log = self.log();
        log.next_seq += 1;
        let seq = log.next_seq;
        log.entries.push((seq, record));
        seq
    }

    /// Fills in the status answered (or stored) and the fault that shaped it.
    pub(crate) fn log_answer(&self, seq: u64, status: u16, fault: Option<&'static str>) {
        let mut log = self.log();
        if let Some((_, record)) = log.entries.iter_mut().rev().find(|(s, _)| *s == seq) {
            record.status = status;
            record.fault = fault;
        }
    }

    pub(crate) fn request_log(&self) -> Vec<RequestRecord> {
        self.log().entries.iter().map(|(_, r)| r.clone()).collect()
    }

    pub(crate) fn clear_request_log(&self) {
        self.log().entries.clear();
    }
}

/// Requests in arrival order, each with a sequence number to fill its status in.
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    next_seq: u64,
    entries: Vec<(u64, RequestRecord)>,
}

/// Users in creation order, indexed by id.
#[derive(Debug, Default)]
pub(crate) struct UserStore {
    records: Vec<UserRecord>,
    index: HashMap<String, usize>,
}

impl UserStore {
    pub(crate) fn insert(&mut self, record: UserRecord) {
        self.index.insert(record.id.clone(), self.records.len());
        self.records.push(record);
    }

    pub(crate) fn get(&self, id: &str) -> Option<&UserRecord> {
        self.index.get(id).map(|&i| &self.records[i])
    }

    pub(crate) fn get_mut(&mut self, id: &str) -> Option<&mut UserRecord> {
        self.index.get(id).map(|&i| &mut self.records[i])
    }

    /// All users, oldest first.
    pub(crate) fn all(&self) -> &[UserRecord] {
        &self.records
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }
}
