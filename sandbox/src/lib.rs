//! A stateful emulator of the Mangopay REST API v2.01, speaking the real wire
//! protocol, for testing offline: in-process from Rust tests, or standalone
//! (`diesel-mangopay sandbox`) for the official SDKs.
//!
//! The emulator is behind the `server` feature (on by default). Without it the crate only
//! holds the rules Mangopay publishes for its fields ([`EMAIL_PATTERN`]), which clients check
//! before sending: one definition for the emulator and the client.
//!
//! # What is emulated
//!
//! - OAuth 2.0: `POST /v2.01/oauth/token` with Basic credentials, stateless bearer tokens
//!   (an HMAC-SHA256 of the client id and expiry, keyed by the API key) that survive a
//!   restart with the same credentials and expire by the sandbox clock.
//! - Natural and legal users: create, partial update, view (generic and typed) and list
//!   (paginated, sorted), with Mangopay's field rules and error reports.
//! - Idempotency keys: a key (16 to 36 characters of `[A-Za-z0-9-]`) reused within 24 hours
//!   gets 409 `idempotent_creation_conflict` whatever the first call answered, and
//!   `GET /v2.01/{ClientId}/responses/{key}` replays that first answer.
//! - Rate limiting over Mangopay's four sliding windows, with the `X-RateLimit*` headers
//!   on every answer and 429 `rate_limit` beyond them.
//! - Mangopay's path tolerance (`//`, a trailing `/`, the case of the fixed path words);
//!   routes it does not emulate answer 501.
//!
//! # Steering it
//!
//! Tests steer a running sandbox through a controllable [`Clock`], the request log
//! ([`Sandbox::request_log`], each [`RequestRecord`] naming the fault that shaped its
//! answer) and the [`Knobs`], each setter usable at any time:
//!
//! - timing: [`Knobs::set_latency`] (after the work), [`Knobs::set_handler_delay`] (after
//!   the key reservation, before the work);
//! - failures before the work: [`Knobs::fail_next`], [`Knobs::set_error_rate`] (draws from
//!   the seeded generator, [`SandboxConfig::seed`]); on a keyed POST the 500 is stored
//!   against the key;
//! - failures after the work: [`Knobs::fail_next_after_work`] (the object exists, the answer
//!   and its replay are a 500);
//! - lost answers: [`Knobs::drop_next_answers`] with [`AnswerLoss::Close`] (the connection
//!   closes without a status line) or [`AnswerLoss::Hang`] (no answer until the client gives
//!   up); the real answer is stored against the key;
//! - `GET /responses/{key}`: [`Knobs::set_missing_response`] ([`MissingResponse`]) and
//!   [`Knobs::fail_response_lookups`] ([`LookupFailure`]);
//! - eventual consistency of lists: [`Knobs::set_list_lag`];
//! - the gateway: [`Knobs::set_unavailable`] and [`Knobs::unavailable_for`] (503 to
//!   everything), [`Knobs::redirect_next`] (307);
//! - rate limiting: [`Knobs::set_rate_limit`], [`Knobs::set_rate_limited_keys_blocked`];
//! - how updates read `null` and `""`: [`Knobs::set_put_null`] ([`PutNull`]),
//!   [`Knobs::set_put_empty_string`] ([`PutEmptyString`]);
//! - Mangopay's country restrictions: [`Knobs::set_blocked_countries`].
//!
//! Where the reference is silent (how a field is cleared, what a lookup of an unknown key
//! answers, whether a 429 uses up a key, whether lists lag), a knob offers each plausible
//! behaviour; its documentation names the default.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use diesel_mangopay_sandbox::{Sandbox, SandboxConfig};
//! let running = Sandbox::new(SandboxConfig::default())
//!     .serve("127.0.0.1:0".parse().unwrap())
//!     .await?;
//! println!("Mangopay sandbox listening on {}", running.base_url());
//! running.shutdown().await;
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

/// The e-mail pattern Mangopay checks `Email` fields against, as quoted in its own `param_error`
/// answers (unanchored).
pub const EMAIL_PATTERN: &str = r"([a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+)*)@(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?\.)+[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?";

#[cfg(feature = "server")]
mod server;
#[cfg(feature = "server")]
pub use server::*;
