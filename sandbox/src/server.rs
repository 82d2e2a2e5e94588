//! The emulator: the server, its state, and the knobs and clock tests steer it with.

mod auth;
mod bank_accounts;
mod cards;
mod clock;
mod connection;
mod control;
mod error;
mod faults;
mod idempotency;
mod ids;
mod knobs;
mod kyc;
mod ledger;
mod payins;
mod payouts;
mod ratelimit;
mod recipients;
mod refunds;
mod routing;
mod state;
pub mod test_cards;
mod transactions;
mod transfers;
mod ubo;
mod users;
mod validation;
mod wallets;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_bank;
#[cfg(test)]
mod tests_cards;
#[cfg(test)]
mod tests_harness;
#[cfg(test)]
mod tests_kyc;
#[cfg(test)]
mod tests_money;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use self::clock::Clock;
use self::connection::{Connection, SandboxListener};
pub use self::knobs::{AnswerLoss, Knobs, LookupFailure, MissingResponse, PutEmptyString, PutNull};
pub use self::knobs::{DateFilterBounds, InstantPayouts, PayInOutcome, PayoutOutcome};
pub use self::kyc::{KycFileFormat, KycOutcome, KycPage, KycRefusedReason};
pub use self::recipients::{RecipientSca, RecipientStatus};
pub use self::routing::router;
use self::state::Shared;
pub use self::ubo::{UboOutcome, UboReason};

/// Credentials and token lifetime of the one API client the sandbox serves, and the seed
/// of its randomness.
#[derive(Clone, PartialEq, Eq)]
pub struct SandboxConfig {
    /// The `ClientId`, in every path (`/v2.01/{ClientId}/...`) and in Basic auth.
    pub client_id: String,
    /// The API key (Basic auth password of the token endpoint).
    pub api_key: String,
    /// How long issued tokens stay valid (`expires_in`).
    pub token_ttl: Duration,
    /// The seed of every random draw: which requests [`Knobs::set_error_rate`] fails,
    /// the random part of object ids, error report `Id`s. The same seed and the same
    /// requests, sent one after the other, give the same draws. `None`: seeded from the
    /// operating system.
    pub seed: Option<u64>,
}

impl Default for SandboxConfig {
    /// `sandbox-client` / `sandbox-api-key`, tokens valid 1200 s (Mangopay's
    /// sandbox default), seeded from the operating system.
    fn default() -> SandboxConfig {
        SandboxConfig {
            client_id: "sandbox-client".to_owned(),
            api_key: "sandbox-api-key".to_owned(),
            token_ttl: Duration::from_secs(1200),
            seed: None,
        }
    }
}

impl fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("client_id", &self.client_id)
            .field("api_key", &"[redacted]")
            .field("token_ttl", &self.token_ttl)
            .field("seed", &self.seed)
            .finish()
    }
}

/// One request as the sandbox received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// The HTTP method, e.g. `POST`.
    pub method: String,
    /// The path exactly as received (before `//` and case were normalized),
    /// without the query string.
    pub path: String,
    /// The status answered (for a keyed POST, also the one stored against its key); for
    /// an answer dropped or withheld, the status of the answer that was never sent; 0
    /// while the request is in flight, or if the caller went away before the sandbox
    /// answered.
    pub status: u16,
    /// The `Idempotency-Key` header, if one was sent.
    pub idempotency_key: Option<String>,
    /// The `x-tenant-id` header (UK platforms send `uk`; the Node SDK spells it
    /// `x-tentant-id`), if one was sent.
    pub tenant_id: Option<String>,
    /// The injected fault that shaped the answer, `None` if none did:
    /// `"failed_before_work"` ([`Knobs::fail_next`], [`Knobs::set_error_rate`]),
    /// `"failed_after_work"` ([`Knobs::fail_next_after_work`]), `"answer_dropped"` and
    /// `"answer_withheld"` ([`Knobs::drop_next_answers`]), `"unavailable"`
    /// ([`Knobs::set_unavailable`]), `"redirected"` ([`Knobs::redirect_next`]),
    /// `"lookup_failed"` ([`Knobs::fail_response_lookups`]) or `"rate_limited"` (a 429
    /// from the rate limiter).
    pub fault: Option<&'static str>,
}

/// A Mangopay sandbox: cheap to clone, all clones share the same state.
///
/// Card pay-ins go as Mangopay's test cards say ([`test_cards`]):
/// [`test_cards::FRICTIONLESS`] and [`test_cards::FRICTIONLESS_2`] succeed without 3-D Secure
/// (unless `SecureMode` is `FORCE`), [`test_cards::CHALLENGE`] always waits for 3-D Secure,
/// [`test_cards::DO_NOT_HONOR`] is refused (`101101`), [`test_cards::THREE_DS_NOT_AVAILABLE`]
/// waits for 3-D Secure and then fails (`101399`, even when settled with
/// [`PayInOutcome::Succeeded`]); any other number passing the Luhn check succeeds without
/// 3-D Secure. A pay-in waiting for 3-D Secure, a web card pay-in and a bank wire end with
/// [`Sandbox::settle_payin`] (or its control request) or [`Knobs::set_payin_settle_after`].
#[derive(Clone, Debug)]
pub struct Sandbox {
    shared: Arc<Shared>,
}

impl Sandbox {
    /// An empty sandbox serving the client described by `config`.
    pub fn new(config: SandboxConfig) -> Sandbox {
        Sandbox {
            shared: Arc::new(Shared::new(config)),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The HTTP API as an axum router, to serve or to call in-process. Served by
    /// anything but [`Sandbox::serve`], lost answers fail their body instead of having
    /// their connection closed (see [`Knobs::drop_next_answers`]).
    pub fn router(&self) -> axum::Router {
        router(self.clone())
    }

    /// Binds `addr` (`127.0.0.1:0` picks a free port) and serves on the current
    /// tokio runtime until [`RunningSandbox::shutdown`] or drop.
    ///
    /// Served this way, [`AnswerLoss::Close`] closes the connection before any status
    /// line, and withheld answers end when the server stops.
    pub async fn serve(&self, addr: SocketAddr) -> std::io::Result<RunningSandbox> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let (stop, stopping) = watch::channel(false);
        let mut stopped = stopping.clone();
        let listener = SandboxListener::new(listener, stopping);
        let service = self
            .router()
            .into_make_service_with_connect_info::<Connection>();
        let server = axum::serve(listener, service).with_graceful_shutdown(async move {
            // A dropped sender stops the server as well.
            let _ = stopped.wait_for(|stopping| *stopping).await;
        });
        let task = tokio::spawn(async move { server.await });
        Ok(RunningSandbox {
            sandbox: self.clone(),
            local_addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The fault-injection and timing knobs, usable while serving.
    pub fn knobs(&self) -> &Knobs {
        &self.shared.knobs
    }

    /// The sandbox's controllable clock.
    pub fn clock(&self) -> &Clock {
        &self.shared.clock
    }

    /// Every stored user, oldest first, as `GET /users/{Id}` answers it.
    pub fn users(&self) -> Vec<serde_json::Value> {
        self.shared.settle_kyc();
        self.shared
            .users()
            .all()
            .iter()
            .map(|r| r.to_json())
            .collect()
    }

    /// One stored user as `GET /users/{Id}` answers it.
    pub fn user(&self, id: &str) -> Option<serde_json::Value> {
        self.shared.settle_kyc();
        self.shared.users().get(id).map(|r| r.to_json())
    }

    /// How many users are stored.
    pub fn user_count(&self) -> usize {
        self.shared.users().len()
    }

    /// Every stored bank account, oldest first, as
    /// `GET /users/{UserId}/bankaccounts/{BankAccountId}` answers it.
    pub fn bank_accounts(&self) -> Vec<serde_json::Value> {
        self.shared
            .bank_accounts()
            .all()
            .iter()
            .map(|a| a.to_json())
            .collect()
    }

    /// One stored bank account as `GET /users/{UserId}/bankaccounts/{BankAccountId}`
    /// answers it.
    pub fn bank_account(&self, id: &str) -> Option<serde_json::Value> {
        self.shared.bank_accounts().get(id).map(|a| a.to_json())
    }

    /// Every stored recipient, oldest first, as `GET /recipients/{RecipientId}` answers it
    /// (a status scheduled by [`Knobs::set_recipient_sca`] applied first).
    pub fn recipients(&self) -> Vec<serde_json::Value> {
        recipients::all_json(&self.shared)
    }

    /// One stored recipient as `GET /recipients/{RecipientId}` answers it.
    pub fn recipient(&self, id: &str) -> Option<serde_json::Value> {
        recipients::one_json(&self.shared, id)
    }

    /// Moves a `PENDING` recipient to `ACTIVE` or `CANCELED`, as the user's SCA session
    /// would (the control request `POST /_sandbox/recipients/{RecipientId}/status`), and
    /// returns it as `GET /recipients/{RecipientId}` answers it. Fails, naming the reason,
    /// for an unknown id, a recipient that is not `PENDING`, or `CANCELED` on a `PAYIN`
    /// recipient.
    pub fn set_recipient_status(
        &self,
        id: &str,
        status: RecipientStatus,
    ) -> Result<serde_json::Value, String> {
        self.shared
            .set_recipient_status(id, status)
            .map_err(|err| err.describe())
    }

    /// Every request received since the start or the last
    /// [`Sandbox::clear_request_log`], in arrival order.
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.shared.request_log()
    }

    /// Forgets the requests logged so far.
    pub fn clear_request_log(&self) {
        self.shared.clear_request_log();
    }

    /// Calls to the token endpoint so far, successful or not.
    pub fn token_requests(&self) -> u64 {
        self.shared.token_requests.load(Ordering::SeqCst)
    }

    /// The configuration the sandbox was created with.
    pub fn config(&self) -> &SandboxConfig {
        &self.shared.config
    }
}

/// A sandbox serving HTTP on a local port. Dropping it stops the server.
#[derive(Debug)]
pub struct RunningSandbox {
    sandbox: Sandbox,
    local_addr: SocketAddr,
    stop: Option<watch::Sender<bool>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl RunningSandbox {
    /// How long [`RunningSandbox::shutdown`] waits for open requests.
    const GRACE: Duration = Duration::from_secs(10);

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash or `/v2.01`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// The sandbox being served.
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// Stops accepting connections, closes the connections whose answers are
    /// withheld, lets requests in flight finish (for at most 10 seconds) and waits
    /// for the server to stop.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send_replace(true);
        }
        if let Some(mut task) = self.task.take() {
            match tokio::time::timeout(Self::GRACE, &mut task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(err))) => tracing::warn!(%err, "sandbox server stopped with an error"),
                Ok(Err(err)) => tracing::warn!(%err, "sandbox server task failed"),
                Err(_) => {
                    tracing::warn!("sandbox server did not stop in time; aborting it");
                    task.abort();
                }
            }
        }
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send_replace(true);
        }
    }
}
