//! The client's own rate budget: Mangopay's sliding windows (2,300 calls in 15 minutes, 4,500
//! in 30, 8,800 in an hour, 105,600 in a day), counted by the client before it sends, so that
//! a busy worker spends the budget evenly instead of running into 429s.
//!
//! Every clone of a [`MangopayClient`](super::MangopayClient) shares one count. A call is
//! admitted when every window has room; it is counted from the moment it is admitted, plus a
//! safety margin, because Mangopay counts it from when it arrives. A call that must wait
//! longer than [`RateBudget::wait_in_place`] is not sent and fails with
//! [`ApiError::RateLimited`](super::ApiError::RateLimited), so a job can be put back in the
//! queue for that time instead of holding a worker's slot. Shorter waits are slept through.
//!
//! Mangopay's own answer still decides: a 429, or an answer whose rate-limit headers say a
//! window is used up, blocks every call of every clone until that window resets.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::ApiError;

/// Mangopay's published limits: (window, calls).
pub const MANGOPAY_WINDOWS: [(Duration, u64); 4] = [
    (Duration::from_secs(15 * 60), 2_300),
    (Duration::from_secs(30 * 60), 4_500),
    (Duration::from_secs(60 * 60), 8_800),
    (Duration::from_secs(24 * 60 * 60), 105_600),
];

/// How long a call counts in its windows past their end by default: the most a request may
/// take to reach Mangopay after it was admitted.
pub const DEFAULT_MARGIN: Duration = Duration::from_secs(1);

/// The longest wait for the budget a call sleeps through by default; a longer one fails with
/// [`ApiError::RateLimited`](super::ApiError::RateLimited).
pub const DEFAULT_WAIT_IN_PLACE: Duration = Duration::from_secs(5);

/// The longest window or margin a budget takes.
const MAX_PERIOD: Duration = Duration::from_secs(30 * 24 * 3600);

/// One window of a [`RateBudget`]: at most `limit` calls in any `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetWindow {
    /// The window's length.
    pub period: Duration,
    /// The calls it allows.
    pub limit: u64,
}

/// The calls a client allows itself: sliding windows, each allowing `limit` calls in any
/// `period`. The default is Mangopay's published budget ([`MANGOPAY_WINDOWS`]); a platform
/// whose limits Mangopay raised sets its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateBudget {
    windows: Vec<BudgetWindow>,
    margin: Duration,
    wait_in_place: Duration,
}

impl Default for RateBudget {
    fn default() -> Self {
        RateBudget::mangopay()
    }
}

/// Why a budget cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidBudget(String);

impl RateBudget {
    /// Mangopay's published budget.
    pub fn mangopay() -> Self {
        RateBudget::new(MANGOPAY_WINDOWS).expect("the published windows are valid")
    }

    /// No budget: the client sends as fast as it is asked (Mangopay's answers still block it
    /// once a window is used up).
    pub fn unlimited() -> Self {
        RateBudget {
            windows: Vec::new(),
            margin: DEFAULT_MARGIN,
            wait_in_place: DEFAULT_WAIT_IN_PLACE,
        }
    }

    /// A budget of `(period, limit)` windows, with the default margin and wait.
    ///
    /// Each period must be at least a millisecond and each limit at least one call.
    pub fn new(windows: impl IntoIterator<Item = (Duration, u64)>) -> Result<Self, InvalidBudget> {
        let mut list = Vec::new();
        for (period, limit) in windows {
            if period < Duration::from_millis(1) {
                return Err(InvalidBudget(format!(
                    "a window of {period:?} is shorter than a millisecond"
                )));
            }
            if limit == 0 {
                return Err(InvalidBudget(format!(
                    "the {period:?} window allows no call"
                )));
            }
            if period > MAX_PERIOD {
                return Err(InvalidBudget(format!(
                    "a window of {period:?} is longer than 30 days"
                )));
            }
            list.push(BudgetWindow { period, limit });
        }
        list.sort_by_key(|w| w.period);
        Ok(RateBudget {
            windows: list,
            margin: DEFAULT_MARGIN,
            wait_in_place: DEFAULT_WAIT_IN_PLACE,
        })
    }

    /// Parses `900:2300,1800:4500,3600:8800,86400:105600` (seconds:calls, as
    /// `MANGOPAY_RATE_BUDGET` takes it), or `off` for [`RateBudget::unlimited`].
    pub fn parse(text: &str) -> Result<Self, InvalidBudget> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(RateBudget::unlimited());
        }
        let windows =
            text.split(',')
                .map(|part| {
                    let (secs, calls) = part
                        .trim()
                        .split_once(':')
                        .ok_or_else(|| InvalidBudget(format!("`{part}` is not `seconds:calls`")))?;
                    let secs: u64 = secs.trim().parse().map_err(|_| {
                        InvalidBudget(format!("`{secs}` is not a number of seconds"))
                    })?;
                    let calls: u64 = calls.trim().parse().map_err(|_| {
                        InvalidBudget(format!("`{calls}` is not a number of calls"))
                    })?;
                    Ok((Duration::from_secs(secs), calls))
                })
                .collect::<Result<Vec<_>, InvalidBudget>>()?;
        RateBudget::new(windows)
    }

    /// How long a call counts past the end of its windows (default 1 s): the most a request
    /// may take to reach Mangopay after it was admitted. Mangopay counts a call when it
    /// arrives; without a margin, a call admitted the instant an old one left a window could
    /// arrive before Mangopay saw the old one leave.
    pub fn with_margin(mut self, margin: Duration) -> Self {
        self.margin = margin.min(MAX_PERIOD);
        self
    }

    /// The longest wait for the budget a call sleeps through (default 5 s). A call that would
    /// wait longer fails with [`ApiError::RateLimited`](super::ApiError::RateLimited) at once,
    /// nothing sent, so the worker puts its job back in the queue for that time.
    pub fn with_wait_in_place(mut self, wait: Duration) -> Self {
        self.wait_in_place = wait.min(MAX_PERIOD);
        self
    }

    /// The windows, shortest first.
    pub fn windows(&self) -> &[BudgetWindow] {
        &self.windows
    }

    /// See [`RateBudget::with_margin`].
    pub fn margin(&self) -> Duration {
        self.margin
    }

    /// See [`RateBudget::with_wait_in_place`].
    pub fn wait_in_place(&self) -> Duration {
        self.wait_in_place
    }

    /// The earliest time, from a fresh budget, at which the last of `calls` calls may be
    /// sent: the floor under the time any client needs for that many calls.
    pub fn minimum_time(&self, calls: u64) -> Duration {
        let mut log = CallLog::default();
        let start = Instant::now();
        let mut now = start;
        for _ in 0..calls {
            loop {
                match log.admit(&self.windows, Duration::ZERO, now) {
                    Ok(()) => break,
                    Err(at) => now = at,
                }
            }
        }
        now - start
    }
}

/// Calls admitted, oldest first, kept as long as the longest window.
#[derive(Debug, Default)]
struct CallLog {
    calls: VecDeque<Instant>,
}

impl CallLog {
    /// Admits a call at `now`, or says when the earliest one could be.
    fn admit(
        &mut self,
        windows: &[BudgetWindow],
        margin: Duration,
        now: Instant,
    ) -> Result<(), Instant> {
        if let Some(longest) = windows.last() {
            let span = longest.period + margin;
            while self.calls.front().is_some_and(|&t| t + span <= now) {
                self.calls.pop_front();
            }
        }
        let mut earliest: Option<Instant> = None;
        for w in windows {
            let span = w.period + margin;
            let first = self.calls.partition_point(|&t| t + span <= now);
            let count = (self.calls.len() - first) as u64;
            if count >= w.limit {
                // The call that must leave for this one to fit, and when it does.
                let leaving = self.calls[first + (count - w.limit) as usize];
                let at = leaving + span;
                earliest = Some(earliest.map_or(at, |e| e.max(at)));
            }
        }
        match earliest {
            Some(at) => Err(at),
            None => {
                self.record(now, 1);
                Ok(())
            }
        }
    }

    /// Counts `n` calls made at `now` (kept sorted whatever order callers read the clock in).
    fn record(&mut self, now: Instant, n: u64) {
        let at = self.calls.back().map_or(now, |&last| last.max(now));
        self.calls.extend(std::iter::repeat_n(at, n as usize));
    }

    /// Calls counted in `w` at `now`.
    fn count(&self, w: &BudgetWindow, margin: Duration, now: Instant) -> u64 {
        let span = w.period + margin;
        (self.calls.len() - self.calls.partition_point(|&t| t + span <= now)) as u64
    }
}

#[derive(Debug, Default)]
struct State {
    log: CallLog,
    /// Calls taken from the shared budget and not sent yet: (count, usable until).
    permits: Option<(u64, Instant)>,
    /// Tasks waiting for the shared budget.
    waiting: u64,
    /// Mangopay answered 429: no call until then (monotonic, and as Mangopay said it).
    blocked: Option<(Instant, DateTime<Utc>)>,
    /// Mangopay said a window is used up, and this count cannot tell whether it knew (its
    /// windows are not Mangopay's four): no call until then.
    full_until: Option<Instant>,
    /// The shared budget could not be reached: count here until then.
    shared_down_until: Option<Instant>,
}

impl State {
    /// Takes one call from the permits taken from the shared budget, if any is still usable.
    fn take_permit(&mut self, now: Instant) -> bool {
        match &mut self.permits {
            Some((count, until)) if *count > 0 && *until > now => {
                *count -= 1;
                true
            }
            _ => false,
        }
    }
}

/// How long calls taken from the shared budget may wait to be sent, at most: a quarter of the
/// margin (the rest covers the database's answer and the way to Mangopay). Unused ones are dropped; they stay counted, so the
/// budget errs on the safe side.
const PERMIT_LIFETIME: Duration = Duration::from_millis(250);

/// How long a process counts alone after the shared budget could not be reached.
const SHARED_RETRY_AFTER: Duration = Duration::from_secs(5);

/// The most calls one visit to the shared budget takes.
const MAX_BATCH: u64 = 64;

/// The count of one client and its clones, kept in this process or, once shared
/// ([`Limiter::share`]), in the database.
#[derive(Debug)]
pub(crate) struct Limiter {
    budget: RateBudget,
    client_id: String,
    state: Mutex<State>,
    shared: std::sync::OnceLock<crate::Db>,
    /// One visit to the shared budget at a time per process: the visit takes calls for every
    /// task waiting.
    visit: tokio::sync::Mutex<()>,
}

impl Limiter {
    pub(crate) fn new(budget: RateBudget, client_id: &str) -> Self {
        Limiter {
            budget,
            client_id: client_id.to_owned(),
            state: Mutex::new(State::default()),
            shared: std::sync::OnceLock::new(),
            visit: tokio::sync::Mutex::new(()),
        }
    }

    /// Counts calls in `db` from now on, shared with every process that does the same on the
    /// same database. `false` if the count was already shared (through this or another `db`).
    pub(crate) fn share(&self, db: &crate::Db) -> bool {
        !self.budget.windows.is_empty() && self.shared.set(db.clone()).is_ok()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits one call at `now`, or says until when it must wait (and, when Mangopay itself
    /// refused calls, the time it gave).
    fn try_admit(&self, now: Instant) -> Result<(), (Instant, Option<DateTime<Utc>>)> {
        let mut state = self.state();
        if let Some((until, said)) = state.blocked {
            if until > now {
                return Err((until, Some(said)));
            }
            state.blocked = None;
        }
        if let Some(until) = state.full_until {
            if until > now {
                return Err((until, None));
            }
            state.full_until = None;
        }
        state
            .log
            .admit(&self.budget.windows, self.budget.margin, now)
            .map_err(|at| (at, None))
    }

    /// Waits for room in the budget and counts one call; fails with
    /// [`ApiError::RateLimited`] when Mangopay blocked calls, or when the wait would be
    /// longer than [`RateBudget::wait_in_place`].
    pub(crate) async fn acquire(&self) -> Result<(), ApiError> {
        let deadline = Instant::now() + self.budget.wait_in_place;
        if let Some(db) = self.shared.get() {
            return self.acquire_shared(db, deadline).await;
        }
        loop {
            let now = Instant::now();
            let (at, said) = match self.try_admit(now) {
                Ok(()) => return Ok(()),
                Err(wait) => wait,
            };
            self.wait_or_fail(at, said, deadline).await?;
        }
    }

    /// Mangopay's own word: the block after a 429, or a window it said is used up.
    fn mangopay_says_wait(&self, now: Instant) -> Option<(Instant, Option<DateTime<Utc>>)> {
        let mut state = self.state();
        if let Some((until, said)) = state.blocked {
            if until > now {
                return Some((until, Some(said)));
            }
            state.blocked = None;
        }
        match state.full_until {
            Some(until) if until > now => Some((until, None)),
            _ => None,
        }
    }

    /// [`Limiter::acquire`] with the count in the database: calls are taken in batches, one
    /// visit at a time, for every task waiting. Every call taken is also counted here, so the
    /// count in this process knows this process's calls if the database becomes unreachable.
    async fn acquire_shared(&self, db: &crate::Db, deadline: Instant) -> Result<(), ApiError> {
        loop {
            let now = Instant::now();
            if let Some((at, said)) = self.mangopay_says_wait(now) {
                self.wait_or_fail(at, said, deadline).await?;
                continue;
            }
            let down = {
                let mut state = self.state();
                if state.take_permit(now) {
                    return Ok(());
                }
                state.shared_down_until.is_some_and(|until| until > now)
            };
            if down {
                // Counted here until the database answers again.
                match self.try_admit(now) {
                    Ok(()) => return Ok(()),
                    Err((at, said)) => {
                        self.wait_or_fail(at, said, deadline).await?;
                        continue;
                    }
                }
            }
            let waiting = Waiting::new(self);
            let visit = self.visit.lock().await;
            drop(waiting);
            let want = {
                let mut state = self.state();
                if state.take_permit(Instant::now()) {
                    return Ok(());
                }
                (state.waiting + 1).min(MAX_BATCH)
            };
            let (client_id, windows, margin) = (
                self.client_id.clone(),
                self.budget.windows.clone(),
                self.budget.margin,
            );
            let granted = db
                .write(move |conn| {
                    crate::db::rate_budget::grant(conn, &client_id, &windows, margin, want)
                        .map_err(crate::db::DbError::from)
                })
                .await;
            let now = Instant::now();
            match granted {
                Ok(crate::db::rate_budget::Grant::Calls(n)) => {
                    let mut state = self.state();
                    state.log.record(now, n);
                    let lifetime = PERMIT_LIFETIME.min(self.budget.margin / 4);
                    state.permits = Some((n.saturating_sub(1), now + lifetime));
                    return Ok(());
                }
                Ok(crate::db::rate_budget::Grant::WaitMs(ms)) => {
                    drop(visit);
                    self.wait_or_fail(now + Duration::from_millis(ms), None, deadline)
                        .await?;
                }
                Err(e) => {
                    tracing::warn!(error = %e,
                        "the shared rate budget is unreachable; counting this process's calls alone for now");
                    self.state().shared_down_until = Some(now + SHARED_RETRY_AFTER);
                }
            }
        }
    }

    /// Sleeps until `at` when that is before `deadline` (the end of the wait in place this
    /// call allows), fails with [`ApiError::RateLimited`] otherwise (at once when Mangopay
    /// itself refused calls until `said`).
    async fn wait_or_fail(
        &self,
        at: Instant,
        said: Option<DateTime<Utc>>,
        deadline: Instant,
    ) -> Result<(), ApiError> {
        if let Some(until) = said {
            return Err(ApiError::RateLimited { until });
        }
        if at > deadline {
            let wait = at - Instant::now();
            let until = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
            return Err(ApiError::RateLimited { until });
        }
        tokio::time::sleep_until(at).await;
        Ok(())
    }

    /// Mangopay answered 429: every call fails fast until `until`.
    pub(crate) fn refused_until(&self, until: DateTime<Utc>) {
        let Some(at) = instant_of(until) else {
            return;
        };
        let mut state = self.state();
        if state.blocked.is_none_or(|(current, _)| current < at) {
            state.blocked = Some((at, until));
        }
    }

    /// What Mangopay's headers say: `made` calls in each of its four windows, and, when one
    /// has no call left, until when. Calls Mangopay counted and this count did not (another
    /// process or application on the same client id, calls made before this client started)
    /// are added to this count as made now, so this process leaves them room. When the count
    /// is shared, or its windows are not Mangopay's four, a window used up by calls this
    /// process did not make makes calls wait for its reset.
    pub(crate) fn mangopay_counted(&self, made: &[u64], used_up_until: Option<DateTime<Utc>>) {
        let now = Instant::now();
        let windows = &self.budget.windows;
        let mut state = self.state();
        if windows.len() == made.len() {
            let unseen: Vec<u64> = windows
                .iter()
                .zip(made)
                .map(|(w, &made)| made.saturating_sub(state.log.count(w, self.budget.margin, now)))
                .collect();
            if self.shared.get().is_none() {
                // Added to every window: as many as the window that saw the fewest (a restart
                // must not fill the short windows with a day's calls; a day's calls missed
                // are met, at worst, by one 429).
                let fewest = unseen.iter().copied().min().unwrap_or(0);
                if fewest > 0 {
                    state.log.record(now, fewest);
                }
                // A window this count has itself filled is waited for, and more precisely
                // than by Mangopay's reset (in whole seconds).
                let counted_full = windows
                    .iter()
                    .any(|w| state.log.count(w, self.budget.margin, now) >= w.limit);
                if counted_full {
                    return;
                }
            }
            // Shared: the database counts the processes that share it, not others. A window
            // used up with calls this process did not make waits for Mangopay's reset.
            else if unseen.iter().all(|&n| n == 0) {
                return;
            }
        }
        let Some(at) = used_up_until.and_then(instant_of) else {
            return;
        };
        if state.full_until.is_none_or(|current| current < at) {
            state.full_until = Some(at);
        }
    }
}

/// Counts a task waiting for a visit to the shared budget, for as long as it waits (dropped
/// futures included).
struct Waiting<'a>(&'a Limiter);

impl<'a> Waiting<'a> {
    fn new(limiter: &'a Limiter) -> Self {
        limiter.state().waiting += 1;
        Waiting(limiter)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.waiting = state.waiting.saturating_sub(1);
    }
}

/// The monotonic instant of a future wall-clock time.
fn instant_of(at: DateTime<Utc>) -> Option<Instant> {
    let wait = (at - Utc::now()).to_std().ok()?;
    Some(Instant::now() + wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_full_window_admits_again_when_its_oldest_call_leaves() {
        let budget = RateBudget::new([(ms(1000), 3), (ms(10_000), 5)]).unwrap();
        let mut log = CallLog::default();
        let t0 = Instant::now();
        for i in 0..3 {
            log.admit(budget.windows(), ms(10), t0 + ms(i)).unwrap();
        }
        // The first call leaves the 1 s window at 1 s + the margin.
        assert_eq!(
            log.admit(budget.windows(), ms(10), t0 + ms(5)),
            Err(t0 + ms(1010))
        );
        log.admit(budget.windows(), ms(10), t0 + ms(1010)).unwrap();
        log.admit(budget.windows(), ms(10), t0 + ms(1011)).unwrap();
        // Five calls in the 10 s window: the next waits for the first to leave it.
        assert_eq!(
            log.admit(budget.windows(), ms(10), t0 + ms(2000)),
            Err(t0 + ms(10_010))
        );
    }

    #[test]
    fn the_minimum_time_follows_every_window() {
        let budget = RateBudget::new([(ms(1000), 10), (ms(2000), 15)]).unwrap();
        assert_eq!(budget.minimum_time(10), Duration::ZERO);
        // 10 at 0 s, 5 at 1 s (the 2 s window), 10 at 2 s, 5 at 3 s.
        assert_eq!(budget.minimum_time(15), ms(1000));
        assert_eq!(budget.minimum_time(16), ms(2000));
        assert_eq!(budget.minimum_time(30), ms(3000));
        assert_eq!(
            RateBudget::unlimited().minimum_time(1_000_000),
            Duration::ZERO
        );
    }

    #[test]
    fn budgets_parse_and_refuse_what_cannot_work() {
        let b = RateBudget::parse("60:10, 900:2300").unwrap();
        assert_eq!(
            b.windows()[1],
            BudgetWindow {
                period: Duration::from_secs(900),
                limit: 2300
            }
        );
        assert_eq!(RateBudget::parse("OFF").unwrap().windows(), &[]);
        assert_eq!(RateBudget::default(), RateBudget::mangopay());
        for bad in ["", "60", "60:x", "x:10", "60:0", "0:10"] {
            assert!(RateBudget::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn waits_in_place_only_briefly_and_obeys_mangopay() {
        let limiter = Limiter::new(
            RateBudget::new([(ms(1000), 2), (ms(60_000), 3)])
                .unwrap()
                .with_margin(Duration::ZERO)
                .with_wait_in_place(ms(2000)),
            "test",
        );
        let start = tokio::time::Instant::now();
        limiter.acquire().await.unwrap();
        limiter.acquire().await.unwrap();
        // Third call: the 1 s window is full, a 1 s wait is slept through.
        limiter.acquire().await.unwrap();
        assert!(start.elapsed() >= ms(1000));
        // Fourth: the 60 s window is full, too long to wait here.
        match limiter.acquire().await {
            Err(ApiError::RateLimited { until }) => {
                assert!(until > Utc::now() + chrono::Duration::seconds(50));
            }
            other => panic!("expected RateLimited, got {other:?}"),
        }
        let open = Limiter::new(RateBudget::unlimited(), "test");
        open.acquire().await.unwrap();
        // Mangopay says a window is used up: 3 s to wait, slept through.
        let soon = Utc::now() + chrono::Duration::seconds(3);
        open.mangopay_counted(&[5, 5, 5, 5], Some(soon));
        let before = tokio::time::Instant::now();
        open.acquire().await.unwrap();
        assert!(before.elapsed() >= ms(2900));
        // A 429: every call fails fast until the reset.
        let until = Utc::now() + chrono::Duration::seconds(30);
        open.refused_until(until);
        assert!(matches!(open.acquire().await,
            Err(ApiError::RateLimited { until: u }) if u == until));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_given_up_while_waiting_for_the_shared_budget_takes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let url = crate::DatabaseUrl::Sqlite(dir.path().join("budget.db").display().to_string());
        let db = crate::Db::connect(&url).await.unwrap();
        db.run_pending_migrations().await.unwrap();
        let limiter = Limiter::new(RateBudget::mangopay(), "test");
        assert!(limiter.share(&db));
        let visit = limiter.visit.lock().await;
        for _ in 0..10 {
            let waited = tokio::time::timeout(ms(20), limiter.acquire()).await;
            assert!(waited.is_err(), "the visit is held");
        }
        assert_eq!(limiter.state().waiting, 0, "given-up calls no longer wait");
        drop(visit);
        limiter.acquire().await.unwrap();
        let taken = db
            .run(|conn| {
                use diesel::RunQueryDsl;
                #[derive(diesel::QueryableByName)]
                struct Sum {
                    #[diesel(sql_type = diesel::sql_types::BigInt)]
                    n: i64,
                }
                diesel::sql_query(
                    "SELECT CAST(SUM(calls) AS BIGINT) AS n FROM mangopay_rate_budget",
                )
                .get_result::<Sum>(conn)
                .map_err(crate::db::DbError::from)
            })
            .await
            .unwrap();
        assert_eq!(taken.n, 1, "one call taken, for the one call made");
    }
}
