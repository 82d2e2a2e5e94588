//! Mangopay's per-client rate limiting: four sliding windows (15 min, 30 min,
//! 1 h, 24 h) and the `X-RateLimit*` headers that every answer carries.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use axum::http::{HeaderMap, HeaderValue};

/// Window lengths in seconds and their default limits, in header order.
pub(crate) const WINDOWS: [(i64, u64); 4] =
    [(900, 2300), (1800, 4500), (3600, 8800), (86_400, 105_600)];

/// What a client has used of each window, in [`WINDOWS`] order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RateStatus {
    /// Calls made in each window, this one included when it was admitted.
    pub(crate) made: [u64; 4],
    /// Calls left in each window.
    pub(crate) remaining: [u64; 4],
    /// Unix time at which the oldest call of each window leaves it.
    pub(crate) reset: [i64; 4],
}

impl RateStatus {
    /// Writes `X-RateLimit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`.
    pub(crate) fn write_headers(&self, headers: &mut HeaderMap) {
        fn join<T: ToString>(values: &[T]) -> HeaderValue {
            let text = values
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
        }
        headers.insert("x-ratelimit", join(&self.made));
        headers.insert("x-ratelimit-remaining", join(&self.remaining));
        headers.insert("x-ratelimit-reset", join(&self.reset));
    }
}

/// Call times per client, in milliseconds of the sandbox clock, oldest first.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    calls: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl RateLimiter {
    /// Admits and records a call of `client` at `now_ms` unless one of `windows`
    /// (`(length in milliseconds, calls)`, in header order) is full. Returns whether the
    /// call was admitted and the client's usage after the decision.
    pub(crate) fn admit(
        &self,
        client: &str,
        now_ms: i64,
        windows: [(i64, u64); 4],
    ) -> (bool, RateStatus) {
        let mut all = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let calls = all.entry(client.to_owned()).or_default();
        let longest_ms = windows.iter().map(|&(ms, _)| ms).max().unwrap_or(0);
        while calls.front().is_some_and(|&t| t <= now_ms - longest_ms) {
            calls.pop_front();
        }
        let in_window = |calls: &VecDeque<i64>, window_ms: i64| {
            let start = calls.partition_point(|&t| t <= now_ms - window_ms);
            (calls.len() - start, calls.get(start).copied())
        };
        let admitted = windows
            .iter()
            .all(|&(window_ms, limit)| (in_window(calls, window_ms).0 as u64) < limit);
        if admitted {
            // Keep the queue sorted even if the wall clock stepped back.
            let at = calls.back().map_or(now_ms, |&last| last.max(now_ms));
            calls.push_back(at);
        }
        let mut status = RateStatus {
            made: [0; 4],
            remaining: [0; 4],
            reset: [0; 4],
        };
        for (i, &(window_ms, limit)) in windows.iter().enumerate() {
            let (count, oldest) = in_window(calls, window_ms);
            let count = count as u64;
            status.made[i] = count;
            status.remaining[i] = limit.saturating_sub(count);
            let leaves_ms = oldest.unwrap_or(now_ms) + window_ms;
            status.reset[i] =
                leaves_ms.div_euclid(1000) + i64::from(leaves_ms.rem_euclid(1000) != 0);
        }
        (admitted, status)
    }
}
