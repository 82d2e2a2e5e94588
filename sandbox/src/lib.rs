//! A stateful emulator of the Mangopay REST API v2.01, speaking the real wire
//! protocol, for testing offline: in-process from Rust tests, or standalone
//! (`diesel-mangopay sandbox`) for the official SDKs.
//!
//! The emulator is behind the `server` feature (on by default). Without it the crate only
//! holds the rules Mangopay publishes for its fields ([`EMAIL_PATTERN`]), which clients check
//! before sending: one definition for the emulator and the client.
//!
//! It serves OAuth tokens, natural and legal users, idempotency keys with
//! `GET /responses/{key}`, Mangopay's rate limiting and error reports, and lets
//! tests steer it: a controllable [`Clock`] and fault-injection [`Knobs`].
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
