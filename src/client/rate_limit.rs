//! Mangopay's rate-limit headers: calls made, calls left and reset time for the 15 minute,
//! 30 minute, 1 hour and 24 hour windows.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;

/// The windows Mangopay reports, in header order.
pub const WINDOWS: [Duration; 4] = [
    Duration::from_secs(15 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(60 * 60),
    Duration::from_secs(24 * 60 * 60),
];

/// One rate-limit window as last reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitWindow {
    /// The window's length.
    pub period: Duration,
    /// Calls made in the window (`X-RateLimit`).
    pub made: u64,
    /// Calls left before Mangopay answers 429 (`X-RateLimit-Remaining`).
    pub remaining: u64,
    /// When the window's allowance is back (`X-RateLimit-Reset`).
    pub resets_at: DateTime<Utc>,
}

/// The rate-limit state from the latest response's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    /// One entry per window Mangopay reported, shortest first.
    pub windows: Vec<RateLimitWindow>,
}

fn numbers(headers: &HeaderMap, name: &str) -> Option<Vec<i64>> {
    let raw = headers.get(name)?.to_str().ok()?;
    raw.split(',')
        .map(|v| v.trim().parse::<i64>().ok())
        .collect()
}

impl RateLimit {
    /// Reads `X-RateLimit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`; `None` when they
    /// are absent or malformed.
    pub fn from_headers(headers: &HeaderMap) -> Option<RateLimit> {
        let made = numbers(headers, "x-ratelimit")?;
        let remaining = numbers(headers, "x-ratelimit-remaining")?;
        let reset = numbers(headers, "x-ratelimit-reset")?;
        let windows = made
            .iter()
            .zip(&remaining)
            .zip(&reset)
            .zip(WINDOWS)
            .map(|(((m, r), t), period)| {
                Some(RateLimitWindow {
                    period,
                    made: u64::try_from(*m).ok()?,
                    remaining: u64::try_from(*r).unwrap_or(0),
                    resets_at: DateTime::from_timestamp(*t, 0)?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        (!windows.is_empty()).then_some(RateLimit { windows })
    }

    /// When every exhausted window has reset, if any window has no calls left at `now`.
    pub fn blocked_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.windows
            .iter()
            .filter(|w| w.remaining == 0 && w.resets_at > now)
            .map(|w| w.resets_at)
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(made: &str, remaining: &str, reset: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit", made.parse().unwrap());
        h.insert("x-ratelimit-remaining", remaining.parse().unwrap());
        h.insert("x-ratelimit-reset", reset.parse().unwrap());
        h
    }

    #[test]
    fn parses_the_documented_example() {
        let rl = RateLimit::from_headers(&headers(
            "63015, 121914, 228534, 7103921",
            "436985, 878086, 1771466, 40896079",
            "1715241060, 1715241960, 1715243760, 1715326500",
        ))
        .unwrap();
        assert_eq!(rl.windows.len(), 4);
        assert_eq!(rl.windows[0].made, 63015);
        assert_eq!(rl.windows[3].remaining, 40896079);
        assert_eq!(rl.windows[1].period, Duration::from_secs(1800));
        assert_eq!(rl.windows[2].resets_at.timestamp(), 1715243760);
        assert_eq!(rl.blocked_until(Utc::now()), None);
    }

    #[test]
    fn exhausted_window_blocks_until_reset() {
        let now = DateTime::from_timestamp(1_000, 0).unwrap();
        let rl = RateLimit::from_headers(&headers("5,5,5,5", "0,10,10,10", "1600,2800,4600,87400"))
            .unwrap();
        assert_eq!(rl.blocked_until(now).unwrap().timestamp(), 1600);
        assert_eq!(
            rl.blocked_until(DateTime::from_timestamp(1600, 0).unwrap()),
            None
        );
        assert!(RateLimit::from_headers(&headers("x", "1", "2")).is_none());
        assert!(RateLimit::from_headers(&HeaderMap::new()).is_none());
    }
}
