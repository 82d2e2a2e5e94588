//! The jobs' integration tests: one binary, one module per area. Every test that touches a
//! database runs on SQLite and on PostgreSQL (`both_backends!`); Mangopay is the in-process
//! sandbox, reached over loopback HTTP by the real client; the worker is the real one, in
//! process or as the `diesel-mangopay-worker` binary.

#[path = "../../../tests/support/mod.rs"]
mod support;

mod common;
mod cost;
mod crash;
mod faults;
mod follow;
mod kyc;
mod money;
mod money_in;
mod process;
mod sweep;
mod worker;
