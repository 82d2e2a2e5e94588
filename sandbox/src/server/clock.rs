//! The sandbox's controllable clock: wall time plus an offset that tests move
//! forward to expire tokens, rate-limit windows and idempotency keys.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// Controllable time for one sandbox.
///
/// It drives `CreationDate`, `TermsAndConditionsAcceptedDate`, token expiry,
/// rate-limit windows and the 24 h idempotency window. Clones share the offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// The sandbox's current time: the wall clock plus every [`Clock::advance`] so far.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + TimeDelta::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }

    /// Moves the sandbox's time forward by `d` (saturating at about 292 million years).
    pub fn advance(&self, d: Duration) {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        // An Err here only means the closure declined to update, which it never does.
        let _ = self
            .offset_ms
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |old| {
                Some(old.saturating_add(ms))
            });
    }
}
