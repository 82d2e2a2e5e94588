//! The `diesel-mangopay` binary: migrations on both backends, one-line errors, the sandbox.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use diesel_mangopay::client::PageRequest;
use diesel_mangopay::{ClientConfig, DatabaseUrl, MangopayClient, MangopayNaturalUser};

use crate::support::{TestDatabase, postgres_available};

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_diesel-mangopay"))
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .expect("run diesel-mangopay")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn raw_url(url: &DatabaseUrl) -> String {
    match url {
        DatabaseUrl::Postgres(u) => u.clone(),
        DatabaseUrl::Sqlite(p) => format!("sqlite://{p}"),
    }
}

fn migrate_round_trip(database: &TestDatabase) {
    let url = raw_url(&database.url);
    let list = cli(&["migrate", "list", "--database-url", &url]);
    assert!(list.status.success(), "{list:?}");
    assert!(
        stdout(&list).contains("[ ] 2026-11-21-000001_create_mangopay_users"),
        "{}",
        stdout(&list)
    );

    let run = Command::new(env!("CARGO_BIN_EXE_diesel-mangopay"))
        .args(["migrate"])
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    assert!(
        stdout(&run).contains("applied 20261121000001"),
        "{}",
        stdout(&run)
    );
    let list = cli(&["migrate", "list", "--database-url", &url]);
    assert!(stdout(&list).contains("[X] 2026-11-21-000001_create_mangopay_users"));
    let again = cli(&["migrate", "run", "--database-url", &url]);
    assert!(stdout(&again).contains("no pending migrations"));

    assert!(stdout(&run).contains("applied 20261121000002"));
    assert!(stdout(&run).contains("applied 20261121000003"));
    assert!(stdout(&run).contains("applied 20261121000004"));
    assert!(stdout(&run).contains("applied 20261121000005"));
    assert!(stdout(&run).contains("applied 20261121000006"));
    assert!(stdout(&run).contains("applied 20261121000007"));
    assert!(stdout(&run).contains("applied 20261122000008"));

    let revert = cli(&["migrate", "revert", "--database-url", &url]);
    assert!(
        revert.status.success() && stdout(&revert).contains("reverted 20261122000008"),
        "{revert:?}"
    );
    let list = cli(&["migrate", "list", "--database-url", &url]);
    assert!(stdout(&list).contains("[X] 2026-11-21-000007_money_in"));
    assert!(stdout(&list).contains("[ ] 2026-11-22-000008_rate_budget"));
}

#[test]
fn migrate_runs_lists_and_reverts_on_sqlite() {
    migrate_round_trip(&TestDatabase::sqlite());
}

#[test]
fn migrate_runs_lists_and_reverts_on_postgres() {
    if postgres_available() {
        migrate_round_trip(&TestDatabase::postgres());
    }
}

#[test]
fn bad_or_unreachable_databases_get_one_clear_line() {
    let cases = [
        ("mysql://localhost/app", "unsupported scheme `mysql://`"),
        (":memory:", "in-memory SQLite database"),
        (
            "postgres://postgres@127.0.0.1:1/none",
            "cannot connect to postgres://postgres@127.0.0.1:1/none",
        ),
        (
            "postgres://user:hunter2@127.0.0.1:1/none",
            "postgres://user:***@127.0.0.1:1/none",
        ),
        (
            "/nonexistent-dir/sub/app.db",
            "unable to open database file",
        ),
    ];
    for (url, expected) in cases {
        let out = cli(&["migrate", "run", "--database-url", url]);
        assert!(!out.status.success(), "{url} should fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "one line for {url}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(expected),
            "{url}: {stderr}"
        );
        assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
    }
}

/// Starts `diesel-mangopay sandbox` on a free port and returns it with its base URL.
fn spawn_sandbox(args: &[&str]) -> (std::process::Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_diesel-mangopay"))
        .args(["sandbox", "--port", "0"])
        .args(args)
        .env_remove("MANGOPAY_CLIENT_ID")
        .env_remove("MANGOPAY_API_KEY")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the sandbox");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first
        .strip_prefix("Mangopay sandbox listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_owned();
    let second = lines.next().unwrap().unwrap();
    (child, url, second)
}

#[tokio::test]
async fn the_standalone_sandbox_serves_the_client_and_stops_on_sigterm() {
    let (child, url, credentials) =
        spawn_sandbox(&["--client-id", "cli-client", "--api-key", "cli-secret-key"]);
    assert!(
        !credentials.contains("cli-secret-key"),
        "a given key is not echoed: {credentials}"
    );
    let config = ClientConfig::builder("cli-client", "cli-secret-key")
        .base_url(&url)
        .build()
        .unwrap();
    let client = MangopayClient::new(config).unwrap();
    let database = TestDatabase::sqlite();
    let db = diesel_mangopay::Db::connect(&database.url).await.unwrap();
    db.run_pending_migrations().await.unwrap();
    let mut user = crate::support::natural_owner();
    user.create(&db, &client).await.unwrap();
    let page = client.list("users", PageRequest::default()).await.unwrap();
    assert_eq!(page.total_items, Some(1));
    assert_eq!(page.items[0]["Id"].as_str(), user.mangopay_id());
    assert_eq!(
        MangopayNaturalUser::get(&db, user.id.unwrap())
            .await
            .unwrap()
            .mangopay_id(),
        user.mangopay_id()
    );
    let mut process = crate::support::Process { child, log: None };
    process.signal(libc::SIGTERM);
    let status = process.wait(Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}");
}

#[test]
fn the_standalone_sandbox_prints_its_default_credentials() {
    let (mut child, url, credentials) = spawn_sandbox(&[]);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(
        credentials.contains("sandbox-client") && credentials.contains("sandbox-api-key"),
        "{credentials}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn the_standalone_sandbox_takes_its_knobs_from_flags() {
    let (child, url, _) = spawn_sandbox(&["--rate-limit", "2", "--latency-ms", "200"]);
    let mut process = crate::support::Process { child, log: None };
    let client = MangopayClient::new(
        ClientConfig::builder("sandbox-client", "sandbox-api-key")
            .base_url(&url)
            .build()
            .unwrap(),
    )
    .unwrap();
    let started = std::time::Instant::now();
    client.list("users", PageRequest::default()).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "token call and list each waited 200 ms"
    );
    let error = MangopayClient::new(
        ClientConfig::builder("sandbox-client", "sandbox-api-key")
            .base_url(&url)
            .build()
            .unwrap(),
    )
    .unwrap()
    .list("users", PageRequest::default())
    .await
    .unwrap_err();
    assert_eq!(
        error.status(),
        Some(429),
        "the third call in 15 minutes: {error}"
    );
    process.signal(libc::SIGTERM);
    assert!(process.wait(Duration::from_secs(10)).await.success());
}
