//! Fault-injection and timing knobs, changeable while the sandbox serves.
//!
//! Every setter takes `&self`: the values live in atomics shared by all clones of
//! the sandbox, so a test can turn a knob between two requests of a running flow.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// No override of the first rate-limit window.
const NO_RATE_LIMIT_OVERRIDE: u64 = u64::MAX;

/// Latency, error injection and rate-limit overrides for one sandbox.
#[derive(Debug)]
pub struct Knobs {
    latency_us: AtomicU64,
    error_rate_bits: AtomicU64,
    fail_next: AtomicU32,
    rate_limit_15_min: AtomicU64,
    blocked_countries: Mutex<Vec<String>>,
}

impl Default for Knobs {
    fn default() -> Knobs {
        Knobs {
            latency_us: AtomicU64::new(0),
            error_rate_bits: AtomicU64::new(0f64.to_bits()),
            fail_next: AtomicU32::new(0),
            rate_limit_15_min: AtomicU64::new(NO_RATE_LIMIT_OVERRIDE),
            blocked_countries: Mutex::new(Vec::new()),
        }
    }
}

impl Knobs {
    /// Delay added to every answer after the request was processed and before the
    /// response is written: the object already exists while the caller still waits.
    pub fn set_latency(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.store(us, Ordering::SeqCst);
    }

    /// The current added latency.
    pub fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_us.load(Ordering::SeqCst))
    }

    /// Answers that fraction of requests (clamped to 0.0..=1.0; NaN means 0) with a
    /// Mangopay-style 500, decided before authentication and before any idempotency
    /// reservation, so such a request creates nothing and consumes no key.
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

    /// Answers the next `n` requests with the same injected 500 (replaces any
    /// count still pending).
    pub fn fail_next(&self, n: u32) {
        self.fail_next.store(n, Ordering::SeqCst);
    }

    /// Overrides the limit of the first (15 minute) rate-limit window; `None`
    /// restores Mangopay's default of 2300.
    pub fn set_rate_limit(&self, per_15_min: Option<u32>) {
        let value = per_15_min.map_or(NO_RATE_LIMIT_OVERRIDE, u64::from);
        self.rate_limit_15_min.store(value, Ordering::SeqCst);
    }

    /// The override of the first window's limit, if any.
    pub fn rate_limit(&self) -> Option<u32> {
        match self.rate_limit_15_min.load(Ordering::SeqCst) {
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
        *self
            .blocked_countries
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = codes;
    }

    /// The blocked countries.
    pub fn blocked_countries(&self) -> Vec<String> {
        self.blocked_countries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Decides whether the current request gets an injected 500, consuming one
    /// pending [`Knobs::fail_next`] if there is one.
    pub(crate) fn should_fail(&self) -> bool {
        let took_pending = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if took_pending {
            return true;
        }
        let rate = self.error_rate();
        rate > 0.0 && (rate >= 1.0 || random_unit() < rate)
    }
}

/// A uniformly distributed number in `0.0..1.0`, from the v4 UUID generator's
/// randomness (the sandbox has no other random source).
fn random_unit() -> f64 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    // 53 random bits: byte 6 carries the UUID version nibble, so avoid it.
    let bits = u64::from_le_bytes(word) & ((1 << 48) - 1);
    let extra = u64::from(bytes[9] & 0x1f);
    let value = (bits << 5) | extra;
    value as f64 / (1u64 << 53) as f64
}
