//! Fault-injection and timing knobs, changeable while the sandbox serves.
//!
//! Every setter takes `&self`: the values live in atomics and mutexes shared by all
//! clones of the sandbox, so a test can turn a knob between two requests of a running
//! flow. Each knob's documentation says what a client sees, what is stored against an
//! `Idempotency-Key` and whether the object is created; the request log names the fault
//! that shaped an answer ([`crate::RequestRecord::fault`]).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::RngExt as _;
use rand::rngs::StdRng;

use super::kyc::KycOutcome;
use super::recipients::RecipientSca;
use super::ubo::UboOutcome;

/// No override of the first rate-limit window.
const NO_RATE_LIMIT_OVERRIDE: u64 = u64::MAX;

/// How an answer is lost on its way back to the client (see [`Knobs::drop_next_answers`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerLoss {
    /// The connection is closed without any HTTP response: the client sees a connection
    /// error and no status line.
    Close,
    /// The response is withheld: the connection stays open without an answer until the
    /// client gives up or the server shuts down, and is closed without an answer after
    /// 10 minutes at most.
    Hang,
    /// The response arrives with its status and headers, but its body is cut short and is
    /// not JSON (an answer damaged on the way).
    Garble,
}

/// What `GET /responses/{key}` answers when no answer is stored for the key (unknown,
/// expired, or its first request still running). The reference does not say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MissingResponse {
    /// 400 `correlationid_not_found`, with `errors.IdempotencyKey` naming the key.
    #[default]
    CorrelationIdNotFound,
    /// 404 `ressource_not_found`, with `errors.RessourceNotFound` naming the key.
    RessourceNotFound,
}

/// How a `GET /responses/{key}` lookup fails (see [`Knobs::fail_response_lookups`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupFailure {
    /// That status with a Mangopay error report whose `Type` suits it: 400 `param_error`,
    /// 401 `invalid_credentials`, 403 `forbidden_ressource`, 404 `ressource_not_found`,
    /// 405 `method_not_allowed`, 409 `idempotent_creation_conflict`, 429 `rate_limit`,
    /// 503 `service_unavailable`, any other 4xx `bad_request` and any other 5xx
    /// `internal_server_error`. A status outside 400..=599 is answered as 500.
    Status(u16),
    /// The lookup's answer is computed and withheld, as [`AnswerLoss::Hang`] does.
    Hang,
}

/// How `PUT /users/natural/{Id}`, `PUT /users/legal/{Id}` and `PUT /wallets/{Id}` read a
/// `null` value. The reference does not say how a field is cleared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PutNull {
    /// `null` keeps the stored value, as if the key were absent (the default: the official
    /// Node SDK sends `null` for every field it was not given).
    #[default]
    Keep,
    /// `null` clears an optional field; on a required field it is the field's usual
    /// "is required" `param_error`.
    Clear,
}

/// How `PUT /users/natural/{Id}`, `PUT /users/legal/{Id}` and `PUT /wallets/{Id}` read an
/// empty string `""`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PutEmptyString {
    /// `""` clears an optional field; on a required field it is the field's usual
    /// "is required" `param_error` (the default, as creation reads `""` as absent).
    #[default]
    Clear,
    /// `""` keeps the stored value, as if the key were absent.
    Keep,
    /// `""` is refused: 400 `param_error` naming every field sent empty, nothing changes.
    Reject,
}

/// How a pay-out ends when it settles by itself (see [`Knobs::set_payout_settle_after`]), or
/// as a control request asks ([`crate::Sandbox::settle_payout`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PayoutOutcome {
    /// `SUCCEEDED`, `ResultCode` `000000`, `ExecutionDate` set (the default).
    #[default]
    Succeeded,
    /// `FAILED` with this result; the pay-out's `DebitedFunds` go back to its wallet and its
    /// fees leave the client's Fees Wallet.
    Failed {
        /// The `ResultCode`, e.g. `121999`.
        result_code: String,
        /// The `ResultMessage`, e.g. `Generic withdrawal error`.
        result_message: String,
    },
}

/// The result of [`PayoutOutcome::generic_failure`].
pub(crate) const GENERIC_PAYOUT_FAILURE: (&str, &str) = ("121999", "Generic withdrawal error");

impl PayoutOutcome {
    /// `FAILED` with `121999` "Generic withdrawal error", the reference's generic pay-out
    /// failure.
    pub fn generic_failure() -> PayoutOutcome {
        PayoutOutcome::Failed {
            result_code: GENERIC_PAYOUT_FAILURE.0.to_owned(),
            result_message: GENERIC_PAYOUT_FAILURE.1.to_owned(),
        }
    }
}

/// How a `CREATED` pay-in ends: a card pay-in waiting for its 3-D Secure step, a web card
/// pay-in waiting for its payment page, or a bank wire waiting for its funds. Used by the
/// control request ([`crate::Sandbox::settle_payin`]) and by pay-ins that settle by
/// themselves ([`Knobs::set_payin_settle_after`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PayInOutcome {
    /// `SUCCEEDED`, `ResultCode` `000000`, `ExecutionDate` set: the credited wallet gets
    /// `DebitedFunds - Fees` and the client's Fees Wallet the fees (the default). A bank wire
    /// receives its `DeclaredDebitedFunds`. A card pay-in with test card
    /// [`crate::test_cards::THREE_DS_NOT_AVAILABLE`] fails at its 3-D Secure step instead, with
    /// `101399` "Secure mode: 3DSecure authentication is not available".
    #[default]
    Succeeded,
    /// `FAILED` with this result; nothing is credited.
    Failed {
        /// The `ResultCode`, e.g. `101101`.
        result_code: String,
        /// The `ResultMessage`, e.g. `Transaction refused by the bank (Do not honor)`.
        result_message: String,
    },
    /// A bank wire whose funds arrived: `SUCCEEDED` with `DebitedFunds` this amount (minor
    /// units, at least 1, in the declared currency), `Fees` the declared fees (at most the
    /// amount) and the wallet credited with the difference. Only a bank wire can receive an
    /// amount: the control request refuses it for a card pay-in, and a pay-in settling by
    /// itself reads it as [`PayInOutcome::Succeeded`].
    Received {
        /// The amount received.
        amount: i64,
    },
}

/// What happens to a pay-out requested with `PayoutModeRequested` `INSTANT_PAYMENT` or
/// `INSTANT_PAYMENT_ONLY`, and what `POST /payouts/reachability` answers. Whether a
/// destination bank is reachable by SEPA Instant is the real API's to know.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InstantPayouts {
    /// The bank is reachable: the pay-out is `SUCCEEDED` at once with `ModeApplied`
    /// `INSTANT_PAYMENT`, and the eligibility check answers `IsReachable: true` (the default).
    #[default]
    SettleAtOnce,
    /// The bank is not reachable (`130007` "Destination Bank is not reachable"):
    /// `INSTANT_PAYMENT` falls back to `ModeApplied` `STANDARD` with that `FallbackReason`
    /// and stays `CREATED` like a standard pay-out; `INSTANT_PAYMENT_ONLY` is `FAILED` with
    /// that result at once and moves nothing; the eligibility check answers
    /// `IsReachable: false` with that reason.
    FallBack,
}

/// Whether the `AfterDate` and `BeforeDate` filters of the transaction and KYC document lists
/// keep the objects created at exactly that second. The reference only says "after" and
/// "before".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DateFilterBounds {
    /// `CreationDate > AfterDate` and `CreationDate < BeforeDate` (the default).
    #[default]
    Exclusive,
    /// `CreationDate >= AfterDate` and `CreationDate <= BeforeDate`.
    Inclusive,
}

/// A fault armed for the next `n` occasions.
#[derive(Debug)]
struct Pending<T> {
    left: u32,
    value: Option<T>,
}

impl<T> Default for Pending<T> {
    fn default() -> Pending<T> {
        Pending {
            left: 0,
            value: None,
        }
    }
}

impl<T: Clone> Pending<T> {
    fn arm(&mut self, n: u32, value: T) {
        self.left = n;
        self.value = Some(value);
    }

    /// The armed value, using up one occasion, or `None` when none is left.
    fn take(&mut self) -> Option<T> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        self.value.clone()
    }
}

/// Whether the front door answers 503 to everything.
#[derive(Debug, Clone, Copy, Default)]
enum Outage {
    #[default]
    Off,
    On,
    Until(Instant),
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn duration_to_us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Latency, fault injection, rate-limit and update-semantics knobs for one sandbox.
///
/// Where a fault is applied, in the order a request meets them:
///
/// 1. the front door, before anything else: [`Knobs::redirect_next`], then
///    [`Knobs::set_unavailable`] (no rate limiting, no authentication, no key);
/// 2. the rate limiter ([`Knobs::set_rate_limit`], [`Knobs::set_rate_limited_keys_blocked`]);
/// 3. the "500 before the work" ([`Knobs::fail_next`], [`Knobs::set_error_rate`]): answered
///    by the front door, except on an authenticated POST with an `Idempotency-Key` to an
///    emulated route, where the key is reserved first and the 500 stored against it;
/// 4. around the handler of an authenticated, routed request (or of the token endpoint):
///    [`Knobs::set_handler_delay`], [`Knobs::fail_next_after_work`],
///    [`Knobs::drop_next_answers`], and in `GET /responses/{key}`
///    [`Knobs::fail_response_lookups`];
/// 5. on the way out: [`Knobs::set_latency`].
///
/// A request meets at most one injected fault: the first that applies uses up its count.
#[derive(Debug, Default)]
pub struct Knobs {
    latency_us: AtomicU64,
    error_rate_bits: AtomicU64,
    fail_next: AtomicU32,
    fail_after_work: AtomicU32,
    answer_loss: Mutex<Pending<AnswerLoss>>,
    handler_delay_us: AtomicU64,
    missing_response: Mutex<MissingResponse>,
    lookup_failures: Mutex<Pending<LookupFailure>>,
    list_lag_us: AtomicU64,
    outage: Mutex<Outage>,
    put_null: Mutex<PutNull>,
    put_empty_string: Mutex<PutEmptyString>,
    redirects: Mutex<Pending<String>>,
    rate_limited_keys_blocked: AtomicBool,
    rate_limit_15_min: RateLimitOverride,
    rate_windows: Mutex<Option<[(Duration, u64); 4]>>,
    blocked_countries: Mutex<Vec<String>>,
    recipient_sca: Mutex<RecipientSca>,
    payout_settle_after: Mutex<Option<Duration>>,
    payout_outcome: Mutex<PayoutOutcome>,
    payin_settle_after: Mutex<Option<Duration>>,
    payin_outcome: Mutex<PayInOutcome>,
    instant_payouts: Mutex<InstantPayouts>,
    date_filter_bounds: Mutex<DateFilterBounds>,
    kyc_outcome_after: Mutex<Option<Duration>>,
    kyc_outcome: Mutex<KycOutcome>,
    kyc_gif_accepted: AtomicBool,
    ubo_outcome_after: Mutex<Option<Duration>>,
    ubo_outcome: Mutex<UboOutcome>,
}

/// The first window's limit override, `u64::MAX` meaning none.
#[derive(Debug)]
struct RateLimitOverride(AtomicU64);

impl Default for RateLimitOverride {
    fn default() -> RateLimitOverride {
        RateLimitOverride(AtomicU64::new(NO_RATE_LIMIT_OVERRIDE))
    }
}

impl Knobs {
    /// Delay added to every answer after the request was processed and before the
    /// response is written: the object already exists and the answer is already stored
    /// against its key while the caller still waits.
    pub fn set_latency(&self, d: Duration) {
        self.latency_us.store(duration_to_us(d), Ordering::SeqCst);
    }

    /// The current added latency.
    pub fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_us.load(Ordering::SeqCst))
    }

    /// Answers that fraction of requests (clamped to 0.0..=1.0; NaN means 0) with a
    /// Mangopay-style 500 `internal_server_error` before the work: nothing is created.
    ///
    /// Most requests get the 500 from the front door, before authentication. An
    /// authenticated POST with an `Idempotency-Key` to an emulated route first reserves
    /// its key; the 500 is then stored against the key, so a retry with that key gets 409
    /// and `GET /responses/{key}` replays the 500. A keyed POST whose key is already taken
    /// gets its 409 and draws no failure. The draws come from the seeded generator
    /// ([`crate::SandboxConfig::seed`]).
    pub fn set_error_rate(&self, fraction: f64) {
        let fraction = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self.error_rate_bits
            .store(fraction.to_bits(), Ordering::SeqCst);
    }

    /// The current injected error rate.
    pub fn error_rate(&self) -> f64 {
        f64::from_bits(self.error_rate_bits.load(Ordering::SeqCst))
    }

    /// Answers the next `n` requests with the 500 of [`Knobs::set_error_rate`]: before
    /// the work, nothing created, stored against the key of a keyed POST (replaces any
    /// count still pending). A request refused 429 or 409 does not use one up.
    pub fn fail_next(&self, n: u32) {
        self.fail_next.store(n, Ordering::SeqCst);
    }

    /// Fails the next `n` requests that reach a handler (authenticated and routed, or the
    /// token endpoint) after the work: the handler runs (a user is created, a token
    /// issued), then the caller gets a 500 `internal_server_error` instead of the real
    /// answer, and the 500 is what is stored against the key of a keyed POST. Neither the
    /// answer nor `GET /responses/{key}` reveals the object: only listing users and
    /// matching its `Tag` finds it. Replaces any count still pending.
    pub fn fail_next_after_work(&self, n: u32) {
        self.fail_after_work.store(n, Ordering::SeqCst);
    }

    /// Loses the answers of the next `n` requests that reach a handler (authenticated and
    /// routed, or the token endpoint): the work is done and the real answer is stored
    /// against the key of a keyed POST (so `GET /responses/{key}` replays it), but the
    /// client never receives it, as `loss` says. Replaces any count still pending.
    ///
    /// [`crate::Sandbox::serve`] closes the connection itself. A
    /// [`crate::Sandbox::router`] served some other way answers with a body that fails
    /// at once: hyper then drops the connection without writing the response, and an
    /// in-process caller sees the body fail.
    pub fn drop_next_answers(&self, n: u32, loss: AnswerLoss) {
        lock(&self.answer_loss).arm(n, loss);
    }

    /// Makes every POST and PUT to a `/v2.01/{ClientId}/...` route wait this long after
    /// authentication and the reservation of its `Idempotency-Key`, before the work: a
    /// second request with the same key arriving meanwhile gets 409, and
    /// `GET /responses/{key}` finds no stored answer yet (see
    /// [`Knobs::set_missing_response`]). The work goes on if the client gives up: the
    /// object is created and its answer stored. Zero (the default) turns it off.
    pub fn set_handler_delay(&self, d: Duration) {
        self.handler_delay_us
            .store(duration_to_us(d), Ordering::SeqCst);
    }

    /// The current handler delay.
    pub fn handler_delay(&self) -> Duration {
        Duration::from_micros(self.handler_delay_us.load(Ordering::SeqCst))
    }

    /// What `GET /responses/{key}` answers when nothing is stored for the key: an unknown
    /// or expired key, or a first request still running. Default:
    /// [`MissingResponse::CorrelationIdNotFound`].
    pub fn set_missing_response(&self, answer: MissingResponse) {
        *lock(&self.missing_response) = answer;
    }

    /// The current answer for a lookup that finds nothing.
    pub fn missing_response(&self) -> MissingResponse {
        *lock(&self.missing_response)
    }

    /// Fails the next `n` authenticated `GET /responses/{key}` lookups as `failure` says,
    /// even when an answer is stored (a Mangopay that lost the answer). The stored answer
    /// is kept: a later lookup replays it. Replaces any count still pending.
    pub fn fail_response_lookups(&self, n: u32, failure: LookupFailure) {
        lock(&self.lookup_failures).arm(n, failure);
    }

    /// Users created less than `d` ago (by the sandbox clock) do not appear yet in
    /// `GET /users`, items and pages counted without them, while `GET /users/{Id}` sees
    /// them at once (lists are eventually consistent); the same goes for wallets in
    /// `GET /users/{Id}/wallets`, cards in `GET /users/{Id}/cards`, refunds in
    /// `GET /payins/{Id}/refunds` and every transaction in the transaction lists
    /// (`GET /wallets/{Id}/transactions`, `GET /users/{Id}/transactions`). Zero (the
    /// default) turns it off. [`crate::Sandbox::users`] always sees every user.
    pub fn set_list_lag(&self, d: Duration) {
        self.list_lag_us.store(duration_to_us(d), Ordering::SeqCst);
    }

    /// The current list lag.
    pub fn list_lag(&self) -> Duration {
        Duration::from_micros(self.list_lag_us.load(Ordering::SeqCst))
    }

    /// While on, every request, the token endpoint included, is answered 503
    /// `service_unavailable` with a Mangopay-style error report by the front door, before
    /// rate limiting and authentication: nothing is created, no key is reserved or used
    /// up, no rate-limit window counts it (a gateway outage: the API never saw the
    /// request). `false` also ends an [`Knobs::unavailable_for`].
    pub fn set_unavailable(&self, on: bool) {
        *lock(&self.outage) = if on { Outage::On } else { Outage::Off };
    }

    /// Like [`Knobs::set_unavailable`]`(true)` for `d` of wall-clock time, after which the
    /// sandbox answers again by itself.
    pub fn unavailable_for(&self, d: Duration) {
        *lock(&self.outage) = match Instant::now().checked_add(d) {
            Some(until) => Outage::Until(until),
            None => Outage::On,
        };
    }

    /// Whether the sandbox currently answers everything 503.
    pub fn is_unavailable(&self) -> bool {
        let mut outage = lock(&self.outage);
        match *outage {
            Outage::Off => false,
            Outage::On => true,
            Outage::Until(until) if Instant::now() < until => true,
            Outage::Until(_) => {
                *outage = Outage::Off;
                false
            }
        }
    }

    /// How `PUT /users/natural/{Id}` and `PUT /users/legal/{Id}` read `null`, at the top
    /// level and in the parts of an address object, and `PUT /wallets/{Id}` in
    /// `Description` and `Tag`. Default: [`PutNull::Keep`].
    pub fn set_put_null(&self, rule: PutNull) {
        *lock(&self.put_null) = rule;
    }

    /// The current reading of `null` in updates.
    pub fn put_null(&self) -> PutNull {
        *lock(&self.put_null)
    }

    /// How `PUT /users/natural/{Id}` and `PUT /users/legal/{Id}` read `""`, at the top
    /// level and in the parts of an address object, and `PUT /wallets/{Id}` in
    /// `Description` and `Tag`. Default: [`PutEmptyString::Clear`].
    pub fn set_put_empty_string(&self, rule: PutEmptyString) {
        *lock(&self.put_empty_string) = rule;
    }

    /// The current reading of `""` in updates.
    pub fn put_empty_string(&self) -> PutEmptyString {
        *lock(&self.put_empty_string)
    }

    /// Answers the next `n` requests `307 Temporary Redirect` with this `Location` and an
    /// empty body, from the front door before doing anything else (a misbehaving proxy):
    /// nothing is created, no key is reserved, no rate-limit window counts it. Replaces
    /// any count still pending.
    pub fn redirect_next(&self, n: u32, location: impl Into<String>) {
        lock(&self.redirects).arm(n, location.into());
    }

    /// Whether a 429 from the rate limiter uses up the `Idempotency-Key` of an
    /// authenticated keyed POST to an emulated route. `false` (the default): the 429 is
    /// answered before the key is reserved, and the key stays free. `true`: the key is
    /// reserved and the 429 stored against it, so a retry with that key gets 409 and
    /// `GET /responses/{key}` replays the 429. The reference does not say.
    pub fn set_rate_limited_keys_blocked(&self, blocked: bool) {
        self.rate_limited_keys_blocked
            .store(blocked, Ordering::SeqCst);
    }

    /// Whether a 429 uses up the key of a keyed POST.
    pub fn rate_limited_keys_blocked(&self) -> bool {
        self.rate_limited_keys_blocked.load(Ordering::SeqCst)
    }

    /// Overrides the limit of the first (15 minute) rate-limit window; `None`
    /// restores Mangopay's default of 2300.
    pub fn set_rate_limit(&self, per_15_min: Option<u32>) {
        let value = per_15_min.map_or(NO_RATE_LIMIT_OVERRIDE, u64::from);
        self.rate_limit_15_min.0.store(value, Ordering::SeqCst);
    }

    /// Replaces Mangopay's four rate-limit windows (15 minutes: 2,300 calls, 30 minutes:
    /// 4,500, 1 hour: 8,800, 24 hours: 105,600) with `(length, calls)` windows, in the
    /// same header order, such as a budget scaled down in time for a benchmark; `None`
    /// restores Mangopay's. [`Knobs::set_rate_limit`] still overrides the first limit.
    /// Lengths are counted in milliseconds (at least one); the `X-RateLimit-Reset`
    /// header stays in whole seconds, rounded up, as Mangopay sends it.
    pub fn set_rate_windows(&self, windows: Option<[(Duration, u64); 4]>) {
        *lock(&self.rate_windows) = windows;
    }

    /// The rate-limit windows in force, as `(length in milliseconds, calls)`.
    pub(crate) fn rate_windows_ms(&self) -> [(i64, u64); 4] {
        let mut windows = match *lock(&self.rate_windows) {
            Some(custom) => custom.map(|(length, calls)| {
                (
                    i64::try_from(length.as_millis()).unwrap_or(i64::MAX).max(1),
                    calls,
                )
            }),
            None => super::ratelimit::WINDOWS.map(|(secs, calls)| (secs * 1000, calls)),
        };
        if let Some(first) = self.rate_limit() {
            windows[0].1 = u64::from(first);
        }
        windows
    }

    /// The override of the first window's limit, if any.
    pub fn rate_limit(&self) -> Option<u32> {
        match self.rate_limit_15_min.0.load(Ordering::SeqCst) {
            NO_RATE_LIMIT_OVERRIDE => None,
            n => u32::try_from(n).ok(),
        }
    }

    /// The countries Mangopay's country restrictions block for this platform (which ones
    /// depends on the platform's contract, so none by default). A user whose nationality,
    /// residence or address is in one of them is refused with a 400 naming the field, as
    /// Mangopay does (`"The CountryOfResidence used is blocked"`).
    pub fn set_blocked_countries(&self, codes: &[&str]) {
        let codes = codes.iter().map(|c| c.to_ascii_uppercase()).collect();
        *lock(&self.blocked_countries) = codes;
    }

    /// The blocked countries.
    pub fn blocked_countries(&self) -> Vec<String> {
        lock(&self.blocked_countries).clone()
    }

    /// What happens to recipients created from now on, whose SCA session the sandbox cannot
    /// see: they stay `PENDING` until the control request
    /// `POST /_sandbox/recipients/{RecipientId}/status` or
    /// [`crate::Sandbox::set_recipient_status`] settles them ([`RecipientSca::Manual`], the
    /// default), or become `ACTIVE` or `CANCELED` by themselves once a delay has passed on
    /// the sandbox clock (looked at whenever the recipient is read, by a view, a list, a
    /// pay-out or the Rust accessors). Recipients created earlier keep the choice they were
    /// created under.
    pub fn set_recipient_sca(&self, outcome: RecipientSca) {
        *lock(&self.recipient_sca) = outcome;
    }

    /// What happens to new recipients.
    pub fn recipient_sca(&self) -> RecipientSca {
        *lock(&self.recipient_sca)
    }

    /// How long after its creation (by the sandbox clock) a `CREATED` pay-out settles by
    /// itself, as [`Knobs::set_payout_outcome`] says, its `ExecutionDate` the instant it
    /// became due. Settlement is lazy: it happens when anything reads the ledger (a wallet,
    /// a pay-out, a transaction list, a new transfer or pay-out), and applies to every
    /// pay-out still `CREATED`, whenever created. `None` (the default): pay-outs stay
    /// `CREATED` until a control request settles them ([`crate::Sandbox::settle_payout`],
    /// `POST /_sandbox/payouts/{Id}/settle`). The real API settles pay-outs over working
    /// days.
    pub fn set_payout_settle_after(&self, after: Option<Duration>) {
        *lock(&self.payout_settle_after) = after;
    }

    /// The current settle delay of pay-outs.
    pub fn payout_settle_after(&self) -> Option<Duration> {
        *lock(&self.payout_settle_after)
    }

    /// How pay-outs that settle by themselves end. Default: [`PayoutOutcome::Succeeded`].
    pub fn set_payout_outcome(&self, outcome: PayoutOutcome) {
        *lock(&self.payout_outcome) = outcome;
    }

    /// The current outcome of pay-outs that settle by themselves.
    pub fn payout_outcome(&self) -> PayoutOutcome {
        lock(&self.payout_outcome).clone()
    }

    /// How long after its creation (by the sandbox clock) a `CREATED` pay-in settles by
    /// itself, as [`Knobs::set_payin_outcome`] says, its `ExecutionDate` the instant it became
    /// due: a card pay-in waiting for 3-D Secure, a web card pay-in, a bank wire. Like
    /// [`Knobs::set_payout_settle_after`], settlement is lazy (whenever anything reads the
    /// ledger: a wallet, a pay-in, a card, a transaction list, a new transaction) and applies
    /// to every pay-in still `CREATED`, whenever created. `None` (the default): pay-ins stay
    /// `CREATED` until a control request settles them ([`crate::Sandbox::settle_payin`],
    /// `POST /_sandbox/payins/{Id}/settle`).
    pub fn set_payin_settle_after(&self, after: Option<Duration>) {
        *lock(&self.payin_settle_after) = after;
    }

    /// The current settle delay of pay-ins.
    pub fn payin_settle_after(&self) -> Option<Duration> {
        *lock(&self.payin_settle_after)
    }

    /// How pay-ins that settle by themselves end. Default: [`PayInOutcome::Succeeded`].
    pub fn set_payin_outcome(&self, outcome: PayInOutcome) {
        *lock(&self.payin_outcome) = outcome;
    }

    /// The current outcome of pay-ins that settle by themselves.
    pub fn payin_outcome(&self) -> PayInOutcome {
        lock(&self.payin_outcome).clone()
    }

    /// What instant pay-outs do. Default: [`InstantPayouts::SettleAtOnce`].
    pub fn set_instant_payouts(&self, rule: InstantPayouts) {
        *lock(&self.instant_payouts) = rule;
    }

    /// The current rule for instant pay-outs.
    pub fn instant_payouts(&self) -> InstantPayouts {
        *lock(&self.instant_payouts)
    }

    /// Whether the `AfterDate` and `BeforeDate` of the transaction and KYC document lists
    /// include their own second.
    /// Default: [`DateFilterBounds::Exclusive`].
    pub fn set_date_filter_bounds(&self, bounds: DateFilterBounds) {
        *lock(&self.date_filter_bounds) = bounds;
    }

    /// The current bounds of the date filters.
    pub fn date_filter_bounds(&self) -> DateFilterBounds {
        *lock(&self.date_filter_bounds)
    }

    /// How long after its submission (by the sandbox clock) a KYC document left
    /// `VALIDATION_ASKED` ends by itself, as [`Knobs::set_kyc_outcome`] says, its
    /// `ProcessedDate` the instant it became due. The delay and outcome in force when a
    /// document is submitted apply to it; the outcome is applied whenever anything reads the
    /// document or its user (a view, a list, the Rust accessors). `None` (the default):
    /// documents stay `VALIDATION_ASKED` until a control request settles them
    /// (`POST /_sandbox/kyc/documents/{Id}/outcome`, [`crate::Sandbox::set_kyc_outcome`]).
    /// The real review takes about 24 hours on working days.
    pub fn set_kyc_outcome_after(&self, after: Option<Duration>) {
        *lock(&self.kyc_outcome_after) = after;
    }

    /// The current review delay of KYC documents.
    pub fn kyc_outcome_after(&self) -> Option<Duration> {
        *lock(&self.kyc_outcome_after)
    }

    /// How KYC documents reviewed by themselves end (see [`Knobs::set_kyc_outcome_after`]).
    /// Default: [`KycOutcome::Validated`].
    pub fn set_kyc_outcome(&self, outcome: KycOutcome) {
        *lock(&self.kyc_outcome) = outcome;
    }

    /// The current outcome of KYC documents reviewed by themselves.
    pub fn kyc_outcome(&self) -> KycOutcome {
        lock(&self.kyc_outcome).clone()
    }

    /// Whether KYC pages may be GIF files. The reference's file constraints accept PDF, JPEG,
    /// JPG and PNG only, so by default (`false`) a GIF is answered 415 like any other format;
    /// older versions of Mangopay's documentation also listed GIF, which `true` accepts.
    pub fn set_kyc_gif_accepted(&self, accepted: bool) {
        self.kyc_gif_accepted.store(accepted, Ordering::SeqCst);
    }

    /// Whether KYC pages may be GIF files.
    pub fn kyc_gif_accepted(&self) -> bool {
        self.kyc_gif_accepted.load(Ordering::SeqCst)
    }

    /// How long after its submission (by the sandbox clock) a UBO declaration left
    /// `VALIDATION_ASKED` ends by itself, as [`Knobs::set_ubo_outcome`] says, like
    /// [`Knobs::set_kyc_outcome_after`] for KYC documents. `None` (the default): declarations
    /// stay `VALIDATION_ASKED` until a control request settles them
    /// (`POST /_sandbox/kyc/ubodeclarations/{Id}/outcome`, [`crate::Sandbox::set_ubo_outcome`]).
    pub fn set_ubo_outcome_after(&self, after: Option<Duration>) {
        *lock(&self.ubo_outcome_after) = after;
    }

    /// The current review delay of UBO declarations.
    pub fn ubo_outcome_after(&self) -> Option<Duration> {
        *lock(&self.ubo_outcome_after)
    }

    /// How UBO declarations reviewed by themselves end (see [`Knobs::set_ubo_outcome_after`]).
    /// Default: [`UboOutcome::Validated`].
    pub fn set_ubo_outcome(&self, outcome: UboOutcome) {
        *lock(&self.ubo_outcome) = outcome;
    }

    /// The current outcome of UBO declarations reviewed by themselves.
    pub fn ubo_outcome(&self) -> UboOutcome {
        lock(&self.ubo_outcome).clone()
    }

    /// Decides whether the current request gets the 500 before the work, using up one
    /// pending [`Knobs::fail_next`] if there is one, else drawing from `rng`.
    pub(crate) fn should_fail(&self, rng: &Mutex<StdRng>) -> bool {
        let took_pending = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if took_pending {
            return true;
        }
        let rate = self.error_rate();
        rate > 0.0 && (rate >= 1.0 || lock(rng).random::<f64>() < rate)
    }

    /// Uses up one pending [`Knobs::fail_next_after_work`], if any.
    pub(crate) fn take_failure_after_work(&self) -> bool {
        self.fail_after_work
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Uses up one pending [`Knobs::drop_next_answers`], if any.
    pub(crate) fn take_answer_loss(&self) -> Option<AnswerLoss> {
        lock(&self.answer_loss).take()
    }

    /// Uses up one pending [`Knobs::fail_response_lookups`], if any.
    pub(crate) fn take_lookup_failure(&self) -> Option<LookupFailure> {
        lock(&self.lookup_failures).take()
    }

    /// Uses up one pending [`Knobs::redirect_next`], if any.
    pub(crate) fn take_redirect(&self) -> Option<String> {
        lock(&self.redirects).take()
    }
}
