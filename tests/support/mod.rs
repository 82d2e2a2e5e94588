//! Test helpers shared by the library's and the jobs' test binaries: a fresh database per test
//! on SQLite and PostgreSQL, an in-process sandbox, a client pointed at it. Each binary uses
//! its own part of them.
#![allow(dead_code)]

pub mod money;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diesel::RunQueryDsl;
use diesel_mangopay::db::{AnyConnection, establish};
use diesel_mangopay::{ClientConfig, DatabaseUrl, Db, MangopayClient};
use diesel_mangopay_sandbox::{RunningSandbox, Sandbox, SandboxConfig};

/// The PostgreSQL server used for tests (a database is created per test).
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A connection to the PostgreSQL server's admin database.
fn admin() -> Result<AnyConnection, diesel_mangopay::DbError> {
    establish(&DatabaseUrl::Postgres(postgres_admin_url()))
}

/// Whether a PostgreSQL server is reachable. In CI (`CI=true`) an unreachable server fails the
/// test run instead of skipping.
pub fn postgres_available() -> bool {
    match admin() {
        Ok(_) => true,
        Err(e) => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "CI=true but PostgreSQL is unreachable at {}: {e}",
                postgres_admin_url()
            );
            eprintln!(
                "SKIPPED (PostgreSQL unreachable at {}: {e}); set TEST_POSTGRES_URL or start PostgreSQL",
                postgres_admin_url()
            );
            false
        }
    }
}

/// A database that exists for one test.
pub struct TestDatabase {
    pub url: DatabaseUrl,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl TestDatabase {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("test.db");
        TestDatabase {
            url: DatabaseUrl::Sqlite(path.to_string_lossy().into_owned()),
            _dir: Some(dir),
            pg_name: None,
        }
    }

    pub fn postgres() -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "dm_test_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            uuid_suffix()
        );
        let mut admin = admin().expect("admin connection");
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .expect("create test database");
        let mut url = url::Url::parse(&postgres_admin_url()).expect("admin url");
        url.set_path(&name);
        TestDatabase {
            url: DatabaseUrl::Postgres(url.to_string()),
            _dir: None,
            pg_name: Some(name),
        }
    }
}

fn uuid_suffix() -> String {
    diesel_mangopay::IdempotencyKey::generate().as_str()[..8].to_owned()
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(name) = &self.pg_name
            && let Ok(mut admin) = admin()
        {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin);
        }
    }
}

/// Everything a test needs: a migrated database, a running sandbox, a client for it.
pub struct Env {
    pub db: Db,
    /// Shared so the macro can keep the database alive while a body that only captured some
    /// fields of `Env` runs.
    pub database: std::sync::Arc<TestDatabase>,
    /// Shared for the same reason as `database`.
    pub sandbox: std::sync::Arc<RunningSandbox>,
    pub client: MangopayClient,
}

impl Env {
    pub async fn new(database: TestDatabase) -> Env {
        let db = Db::connect(&database.url).await.expect("connect");
        db.run_pending_migrations().await.expect("migrations");
        let sandbox = start_sandbox(SandboxConfig::default()).await;
        let client = client_for(&sandbox);
        Env {
            db,
            database: std::sync::Arc::new(database),
            sandbox: std::sync::Arc::new(sandbox),
            client,
        }
    }

    pub fn sandbox(&self) -> &Sandbox {
        self.sandbox.sandbox()
    }
}

pub async fn start_sandbox(config: SandboxConfig) -> RunningSandbox {
    Sandbox::new(config)
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .expect("sandbox")
}

/// How long the tests' clients wait before settling an unknown outcome by tag (Mangopay's
/// default of several minutes would make every such test slow; the sandbox's lists are
/// consistent at once unless a test sets a lag).
pub const RECONCILE_AFTER: Duration = Duration::from_secs(2);

pub fn client_config(sandbox: &RunningSandbox) -> diesel_mangopay::config::ClientConfigBuilder {
    let c = sandbox.sandbox().config();
    ClientConfig::builder(c.client_id.clone(), c.api_key.clone())
        .base_url(sandbox.base_url())
        .timeout(Duration::from_secs(10))
        .reconcile_after(RECONCILE_AFTER)
}

pub fn client_for(sandbox: &RunningSandbox) -> MangopayClient {
    MangopayClient::new(client_config(sandbox).build().unwrap()).unwrap()
}

/// Polls `check` every 20 ms until it returns true; panics after `timeout`.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs a test body once on SQLite and once on PostgreSQL: `both_backends!(name, |env| body)`.
#[macro_export]
macro_rules! both_backends {
    ($(#[$meta:meta])* $name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let env = $crate::support::Env::new($crate::support::TestDatabase::sqlite()).await;
                let _database = env.database.clone();
                let _sandbox = env.sandbox.clone();
                ($body)(env).await;
            }

            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if !$crate::support::postgres_available() {
                    return;
                }
                let env = $crate::support::Env::new($crate::support::TestDatabase::postgres()).await;
                let _database = env.database.clone();
                let _sandbox = env.sandbox.clone();
                ($body)(env).await;
            }
        }
    };
}

/// A natural OWNER with every field Mangopay requires of one.
pub fn natural_owner() -> diesel_mangopay::MangopayNaturalUser {
    diesel_mangopay::MangopayNaturalUser::builder()
        .app_user_ref("app-user-1")
        .user_category(diesel_mangopay::UserCategory::Owner)
        .terms_and_conditions_accepted(true)
        .first_name("Alex")
        .last_name("Smith")
        .email("alex.smith@example.com")
        .birthday(chrono::NaiveDate::from_ymd_opt(1990, 8, 30).unwrap())
        .nationality("FR")
        .country_of_residence("FR")
        .address(
            diesel_mangopay::Address::new("3 rue de la Cité", "Paris", "75004", "FR")
                .unwrap()
                .with_line2("Appartement 7")
                .with_region("Île-de-France"),
        )
        .occupation("Engineer")
        .income_range(3)
        .tag("created by the tests")
        .build()
        .expect("a valid natural owner")
}

/// A legal OWNER (a business) with every field Mangopay requires of one.
pub fn legal_owner() -> diesel_mangopay::MangopayLegalUser {
    diesel_mangopay::MangopayLegalUser::builder()
        .app_user_ref("app-company-1")
        .user_category(diesel_mangopay::UserCategory::Owner)
        .terms_and_conditions_accepted(true)
        .legal_person_type(diesel_mangopay::LegalPersonType::Business)
        .name("Best Business")
        .email("best.business@example.com")
        .company_number("123456789")
        .headquarters_address(
            diesel_mangopay::Address::new("34 rue des Entreprises", "Paris", "75001", "FR")
                .unwrap(),
        )
        .legal_representative_first_name("Alex")
        .legal_representative_last_name("Smith")
        .legal_representative_email("alex.smith@example.com")
        .legal_representative_birthday(chrono::NaiveDate::from_ymd_opt(1990, 8, 30).unwrap())
        .legal_representative_nationality("FR")
        .legal_representative_country_of_residence("FR")
        .build()
        .expect("a valid legal owner")
}

impl Env {
    /// Waits until a POST has reached the sandbox and is not answered yet.
    pub async fn until_a_post_is_in_flight(&self) {
        let sandbox = self.sandbox().clone();
        eventually("a POST in flight", Duration::from_secs(10), || {
            let sandbox = sandbox.clone();
            async move {
                sandbox
                    .request_log()
                    .iter()
                    .any(|r| r.method == "POST" && r.status == 0)
            }
        })
        .await;
    }

    /// Ends the lease on user row `id` now, as if its holder's time had run out.
    pub async fn expire_lease(&self, id: i64) {
        self.sql(&format!(
            "UPDATE mangopay_users SET lease_until = '2000-01-01 00:00:00' WHERE id = {id}"
        ))
        .await;
    }

    /// Runs one SQL statement on the test database.
    pub async fn sql(&self, statement: &str) {
        let statement = statement.to_owned();
        self.db
            .run(move |conn| {
                diesel::sql_query(statement)
                    .execute(conn)
                    .map_err(diesel_mangopay::DbError::from)
            })
            .await
            .expect("the statement runs");
    }

    /// Makes the client fetch its token now, so knobs set next apply to the calls under test
    /// rather than to the token request.
    pub async fn warm_up(&self) {
        self.client
            .list("users", diesel_mangopay::client::PageRequest::default())
            .await
            .expect("an authenticated call");
    }
}

impl Env {
    /// Waits until the sandbox holds `count` users (Mangopay has processed the creates).
    pub async fn until_mangopay_has_users(&self, count: usize) {
        let sandbox = self.sandbox().clone();
        eventually(
            &format!("{count} user(s) at Mangopay"),
            Duration::from_secs(30),
            || {
                let sandbox = sandbox.clone();
                async move { sandbox.user_count() == count }
            },
        )
        .await;
    }

    /// Waits until the natural user `id` is synced (at most `timeout`), and returns it.
    pub async fn until_synced(
        &self,
        id: i64,
        timeout: Duration,
    ) -> diesel_mangopay::MangopayNaturalUser {
        use diesel_mangopay::{MangopayNaturalUser, SyncState};
        let db = self.db.clone();
        eventually(&format!("user {id} to be synced"), timeout, || {
            let db = db.clone();
            async move {
                MangopayNaturalUser::get(&db, id)
                    .await
                    .unwrap()
                    .sync()
                    .state
                    == SyncState::Synced
            }
        })
        .await;
        MangopayNaturalUser::get(&self.db, id).await.unwrap()
    }

    /// A client of this sandbox that gives up after `timeout` and settles unknown outcomes
    /// after `reconcile_after`, its token already fetched (so knobs set next apply to the
    /// calls under test, not to the token request).
    pub async fn client_with(
        &self,
        timeout: Duration,
        reconcile_after: Duration,
    ) -> MangopayClient {
        let config = client_config(&self.sandbox)
            .timeout(timeout)
            .reconcile_after(reconcile_after)
            .build()
            .unwrap();
        let client = MangopayClient::new(config).unwrap();
        client
            .list("users", diesel_mangopay::client::PageRequest::default())
            .await
            .expect("an authenticated call");
        client
    }
}

/// A child process of a test, killed when dropped; its log (if it has one) is printed if the
/// test fails.
pub struct Process {
    pub child: std::process::Child,
    pub log: Option<tempfile::NamedTempFile>,
}

impl Process {
    /// Sends a signal (SIGTERM, SIGKILL, ...).
    pub fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) with a pid we own; no memory is touched.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal})");
    }

    /// Waits for the process to exit, at most `timeout`.
    pub async fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the process did not exit within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking()
            && let Some(log) = &self.log
        {
            let text = std::fs::read_to_string(log.path()).unwrap_or_default();
            eprintln!("--- process log ---\n{text}--- end of process log ---");
        }
    }
}
