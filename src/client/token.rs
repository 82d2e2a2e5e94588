//! The OAuth2 bearer token: fetched with the client credentials, shared by every task using
//! the client, renewed 30 seconds before it expires, with at most one renewal in flight whose
//! outcome, success or failure, every task waiting for it receives.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde::Deserialize;
use tokio::sync::watch;

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

/// What a token request ended with, as every task that waited for it receives it.
type Outcome<E> = Result<Arc<Token>, Arc<E>>;

/// The shared cache. Readers take the current token without waiting. When it needs renewing,
/// the first caller requests a new one and every caller arriving while that request is in
/// flight waits for its outcome, success or failure: one request, however many callers.
pub(crate) struct TokenCache<E> {
    state: Mutex<State<E>>,
    fetches: AtomicU64,
}

struct State<E> {
    current: Option<Arc<Token>>,
    in_flight: Option<Flight<E>>,
}

/// The token request in flight: its number, and where its outcome will be published.
struct Flight<E> {
    id: u64,
    outcome: watch::Receiver<Option<Outcome<E>>>,
}

impl<E> Default for TokenCache<E> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                current: None,
                in_flight: None,
            }),
            fetches: AtomicU64::new(0),
        }
    }
}

/// Held by the task requesting a token. If that task is dropped before the request ends,
/// the flight is withdrawn and the waiting tasks, seeing the sender gone, start over.
struct Leader<'a, E> {
    cache: &'a TokenCache<E>,
    id: u64,
    outcome: watch::Sender<Option<Outcome<E>>>,
    done: bool,
}

/// What a caller of [`TokenCache::get`] does once it found no fresh token.
enum Role<'a, E> {
    /// Request a token and publish the outcome.
    Fetch(Leader<'a, E>),
    /// Wait for the outcome of the request in flight.
    Wait(watch::Receiver<Option<Outcome<E>>>),
}

impl<E> Leader<'_, E> {
    /// Stores a new token, ends the flight and hands the outcome to every waiting task.
    fn finish(mut self, outcome: Outcome<E>) -> Outcome<E> {
        {
            let mut state = self.cache.state();
            if let Ok(token) = &outcome {
                state.current = Some(token.clone());
            }
            state.in_flight = None;
        }
        // Tasks that subscribed before the flight ended receive this; later ones find the
        // new token or, after a failure, start a request of their own.
        self.outcome.send_replace(Some(outcome.clone()));
        self.done = true;
        outcome
    }
}

impl<E> Drop for Leader<'_, E> {
    fn drop(&mut self) {
        if !self.done {
            let mut state = self.cache.state();
            if state.in_flight.as_ref().is_some_and(|f| f.id == self.id) {
                state.in_flight = None;
            }
        }
    }
}

impl<E> TokenCache<E> {
    fn state(&self) -> MutexGuard<'_, State<E>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current token, fetching a new one with `fetch` when there is none or it is due for
    /// renewal. A failed request is returned to every caller that waited for it, as one shared
    /// error; it is not remembered beyond that.
    pub(crate) async fn get<F, Fut>(&self, fetch: F) -> Outcome<E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Token, E>>,
    {
        loop {
            let role = {
                let mut state = self.state();
                if let Some(t) = state
                    .current
                    .as_ref()
                    .filter(|t| t.is_fresh(Instant::now()))
                {
                    return Ok(t.clone());
                }
                match &state.in_flight {
                    Some(flight) => Role::Wait(flight.outcome.clone()),
                    None => {
                        let id = self.fetches.fetch_add(1, Ordering::Relaxed) + 1;
                        let (sender, receiver) = watch::channel(None);
                        state.in_flight = Some(Flight {
                            id,
                            outcome: receiver,
                        });
                        Role::Fetch(Leader {
                            cache: self,
                            id,
                            outcome: sender,
                            done: false,
                        })
                    }
                }
            };
            match role {
                Role::Fetch(leader) => {
                    let outcome = fetch().await.map(Arc::new).map_err(Arc::new);
                    return leader.finish(outcome);
                }
                Role::Wait(mut outcome) => match outcome.wait_for(Option::is_some).await {
                    Ok(published) => {
                        return published.clone().expect("wait_for saw an outcome");
                    }
                    // The requesting task was dropped mid-request: start over.
                    Err(_) => continue,
                },
            }
        }
    }

    /// Drops `rejected` after Mangopay answered 401 to it, unless it was already replaced.
    pub(crate) fn invalidate(&self, rejected: &Arc<Token>) {
        let mut state = self.state();
        if state
            .current
            .as_ref()
            .is_some_and(|t| Arc::ptr_eq(t, rejected))
        {
            state.current = None;
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
        let cache = Arc::new(TokenCache::<()>::default());
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_fetch_is_shared_by_everyone_waiting_for_it() {
        let cache = Arc::new(TokenCache::<String>::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let (cache, calls) = (cache.clone(), calls.clone());
                tokio::spawn(async move {
                    cache
                        .get(|| async {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            Err::<Token, _>("token endpoint down".to_owned())
                        })
                        .await
                })
            })
            .collect();
        let mut errors = Vec::new();
        for t in tasks {
            errors.push(
                t.await
                    .unwrap()
                    .err()
                    .expect("every caller sees the failure"),
            );
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "one request for 32 callers"
        );
        assert_eq!(errors.len(), 32);
        assert!(errors.iter().all(|e| Arc::ptr_eq(e, &errors[0])));
        assert_eq!(*errors[0], "token endpoint down");

        // The failure is not remembered: the next caller asks again.
        let token = cache
            .get(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok(token(1200))
            })
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(cache.fetches(), 2);
        let again = cache.get(|| async { panic!("the token is fresh") }).await;
        assert!(Arc::ptr_eq(&token, &again.unwrap()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiters_start_over_when_the_fetching_task_is_dropped() {
        let cache = Arc::new(TokenCache::<()>::default());
        let stuck = {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get(std::future::pending::<Result<Token, ()>>).await })
        };
        while cache.fetches() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move {
                    cache
                        .get(|| async {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok(token(1200))
                        })
                        .await
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            cache.fetches(),
            1,
            "the waiters wait for the request in flight"
        );
        stuck.abort();
        let mut tokens = Vec::new();
        for w in waiters {
            let got = tokio::time::timeout(Duration::from_secs(5), w)
                .await
                .expect("a waiter hung after the fetching task was dropped");
            tokens.push(got.unwrap().unwrap());
        }
        assert_eq!(cache.fetches(), 2, "one of the waiters fetched, once");
        assert!(tokens.iter().all(|t| Arc::ptr_eq(t, &tokens[0])));
    }

    #[tokio::test]
    async fn invalidation_only_drops_the_rejected_token() {
        let cache = TokenCache::<()>::default();
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
