//! The `diesel-mangopay-worker` binary as a child process, for the tests that signal it.

use diesel_mangopay::DatabaseUrl;

use crate::support::{Env, Process};

/// Starts `diesel-mangopay-worker` for `env` (its database and sandbox) with `extra_args`;
/// killed when dropped, its log printed if the test fails.
pub fn spawn_worker(env: &Env, extra_args: &[&str]) -> Process {
    let config = env.sandbox().config();
    let url = match &env.database.url {
        DatabaseUrl::Postgres(u) => u.clone(),
        DatabaseUrl::Sqlite(p) => p.clone(),
    };
    let log = tempfile::NamedTempFile::new().expect("worker log file");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_diesel-mangopay-worker"))
        .args(["--poll-interval-ms", "50"])
        .args(extra_args)
        .env("DATABASE_URL", url)
        .env("MANGOPAY_CLIENT_ID", &config.client_id)
        .env("MANGOPAY_API_KEY", &config.api_key)
        .env("MANGOPAY_BASE_URL", env.sandbox.base_url())
        .env("MANGOPAY_TIMEOUT_SECS", "5")
        .env(
            "MANGOPAY_RECONCILE_AFTER_SECS",
            crate::support::RECONCILE_AFTER.as_secs().to_string(),
        )
        .env("RUST_LOG", "info,sqlx=warn")
        .stdout(std::process::Stdio::null())
        .stderr(log.reopen().expect("worker log file"))
        .spawn()
        .expect("spawn the worker");
    Process {
        child,
        log: Some(log),
    }
}
