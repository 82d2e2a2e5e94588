//! The OAuth2 bearer token: fetched with the client credentials, shared by every task using
//! the client, renewed 30 seconds before it expires, with at most one renewal in flight.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde::Deserialize;

/// Renew this long before `expires_in` runs out, as Mangopay recommends.
pub(crate) const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(30);

/// A bearer token and when to stop using it.
pub(crate) struct Token {
    pub(crate) access_token: SecretString,
    pub(crate) token_type: String,
    renew_at: Instant,
}

impl Token {
    fn is_fresh(&self, now: Instant) -> bool {
        now < self.renew_at
    }
}

/// The token endpoint's answer.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    expires_in: u64,
}

impl TokenResponse {
    pub(crate) fn into_token(self, received_at: Instant) -> Token {
        let lifetime = Duration::from_secs(self.expires_in);
        // A lifetime shorter than the margin would mean a new token before every call; keep
        // half of it instead.
        let margin = RENEW_BEFORE_EXPIRY.min(lifetime / 2);
        Token {
            access_token: SecretString::from(self.access_token),
            token_type: self.token_type.unwrap_or_else(|| "Bearer".to_owned()),
            renew_at: received_at + lifetime - margin,
        }
    }
}

/// The shared cache. Readers take the current token without waiting; a renewal holds an async
/// lock so that concurrent callers wait for one fetch instead of each starting their own.
#[derive(Default)]
pub(crate) struct TokenCache {
    current: Mutex<Option<Arc<Token>>>,
    renewal: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
}

impl TokenCache {
    fn fresh(&self) -> Option<Arc<Token>> {
        let guard = self.current.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .as_ref()
            .filter(|t| t.is_fresh(Instant::now()))
            .cloned()
    }

    /// The current token, fetching a new one with `fetch` when there is none or it is due for
    /// renewal.
    pub(crate) async fn get<F, Fut, E>(&self, fetch: F) -> Result<Arc<Token>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Token, E>>,
    {
        if let Some(t) = self.fresh() {
            return Ok(t);
        }
        let _renewing = self.renewal.lock().await;
        // Someone else may have renewed while we waited for the lock.
        if let Some(t) = self.fresh() {
            return Ok(t);
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let token = Arc::new(fetch().await?);
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(token.clone());
        Ok(token)
    }

    /// Drops `rejected` after Mangopay answered 401 to it, unless it was already replaced.
    pub(crate) fn invalidate(&self, rejected: &Arc<Token>) {
        let mut guard = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if guard.as_ref().is_some_and(|t| Arc::ptr_eq(t, rejected)) {
            *guard = None;
        }
    }

    /// How many tokens have been requested so far.
    pub(crate) fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn token(expires_in: u64) -> Token {
        TokenResponse {
            access_token: "t".into(),
            token_type: None,
            expires_in,
        }
        .into_token(Instant::now())
    }

    #[test]
    fn renews_thirty_seconds_before_expiry() {
        let t = token(1200);
        assert!(t.is_fresh(Instant::now() + Duration::from_secs(1169)));
        assert!(!t.is_fresh(Instant::now() + Duration::from_secs(1171)));
        assert_eq!(t.token_type, "Bearer");
        let short = token(10);
        assert!(short.is_fresh(Instant::now() + Duration::from_secs(4)));
        assert!(!short.is_fresh(Instant::now() + Duration::from_secs(6)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_one_fetch() {
        let cache = Arc::new(TokenCache::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let (cache, calls) = (cache.clone(), calls.clone());
                tokio::spawn(async move {
                    cache
                        .get(|| async {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok::<_, ()>(token(1200))
                        })
                        .await
                        .unwrap()
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(cache.fetches(), 1);
    }

    #[tokio::test]
    async fn invalidation_only_drops_the_rejected_token() {
        let cache = TokenCache::default();
        let first = cache
            .get(|| async { Ok::<_, ()>(token(1200)) })
            .await
            .unwrap();
        cache.invalidate(&first);
        let second = cache
            .get(|| async { Ok::<_, ()>(token(1200)) })
            .await
            .unwrap();
        assert!(!Arc::ptr_eq(&first, &second));
        cache.invalidate(&first);
        let third = cache
            .get(|| async { Ok::<_, ()>(token(1200)) })
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&second, &third));
        assert_eq!(cache.fetches(), 2);
    }
}
