//! The integration tests: one binary, one module per area. Every test that touches a database
//! runs on SQLite and on PostgreSQL (`both_backends!`); the Mangopay side is the in-process
//! sandbox, reached over loopback HTTP by the real client.

#[path = "../support/mod.rs"]
mod support;

mod cli;
mod client;
mod contract;
mod db;
mod kyc;
mod money;
mod money_bank;
mod money_in;
mod money_out;
mod sync;
mod ubo;
mod users;
