//! Quickstart: a natural and a legal user saved in a SQLite file, created at Mangopay (the
//! in-process sandbox) by the background worker, and printed with their Mangopay ids.
//!
//! ```sh
//! cargo run --example quickstart
//! ```
//!
//! No configuration is needed. With `DATABASE_URL` set (for example to a PostgreSQL database)
//! that database is used instead of `target/quickstart.db`.

use std::error::Error;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use diesel_mangopay::db::migrations;
use diesel_mangopay::models::MangopayUser;
use diesel_mangopay::{
    Address, ClientConfig, DatabaseUrl, Db, LegalPersonType, MangopayClient, MangopayLegalUser,
    MangopayNaturalUser, UserCategory,
};
use diesel_mangopay_jobs::{JobContext, JobQueue, WorkerOptions, run_worker};
use diesel_mangopay_sandbox::{Sandbox, SandboxConfig};

/// The database: `DATABASE_URL` if set, otherwise a fresh SQLite file under `target/`.
fn database_url() -> Result<DatabaseUrl, Box<dyn Error>> {
    if std::env::var_os("DATABASE_URL").is_some() {
        return Ok(DatabaseUrl::from_env()?);
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("quickstart.db");
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", path.display());
        if std::path::Path::new(&file).exists() {
            std::fs::remove_file(&file)?;
        }
    }
    Ok(DatabaseUrl::Sqlite(path.display().to_string()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    println!("diesel-mangopay quickstart");

    // 1. The database and its tables.
    let url = database_url()?;
    let db = Db::connect(&url).await?;
    let applied = db.run_pending_migrations().await?;
    let known = db.run(migrations::list).await?.len();
    println!(
        "  database:   {url} ({} migration(s) applied, {known} in all)",
        applied.len()
    );

    // 2. Mangopay: the project's sandbox, in this process, on a free loopback port.
    let sandbox = Sandbox::new(SandboxConfig::default())
        .serve("127.0.0.1:0".parse()?)
        .await?;
    let credentials = sandbox.sandbox().config();
    let client = MangopayClient::new(
        ClientConfig::builder(credentials.client_id.clone(), credentials.api_key.clone())
            .base_url(sandbox.base_url())
            .build()?,
    )?;
    println!(
        "  Mangopay:   sandbox at {} (client id {})",
        sandbox.base_url(),
        credentials.client_id
    );

    // 3. The application saves its users; nothing is sent yet.
    let mut natural = MangopayNaturalUser::builder()
        .app_user_ref("customer-42")
        .user_category(UserCategory::Owner)
        .terms_and_conditions_accepted(true)
        .first_name("Alex")
        .last_name("Smith")
        .email("alex.smith@example.com")
        .birthday(NaiveDate::from_ymd_opt(1990, 8, 30).expect("a date"))
        .nationality("FR")
        .country_of_residence("FR")
        .address(
            Address::new("3 rue de la Cité", "Paris", "75004", "FR")?.with_line2("Appartement 7"),
        )
        .build()?;
    natural.save(&db).await?;
    let mut legal = MangopayLegalUser::builder()
        .app_user_ref("merchant-7")
        .user_category(UserCategory::Owner)
        .terms_and_conditions_accepted(true)
        .legal_person_type(LegalPersonType::Business)
        .name("Best Business")
        .email("best.business@example.com")
        .company_number("123456789")
        .headquarters_address(Address::new(
            "34 rue des Entreprises",
            "Paris",
            "75001",
            "FR",
        )?)
        .legal_representative_first_name("Alex")
        .legal_representative_last_name("Smith")
        .legal_representative_birthday(NaiveDate::from_ymd_opt(1990, 8, 30).expect("a date"))
        .legal_representative_nationality("FR")
        .legal_representative_country_of_residence("FR")
        .build()?;
    legal.save(&db).await?;
    let ids = [natural.id.expect("saved"), legal.id.expect("saved")];

    // 4. Their creation at Mangopay is enqueued, as an application does from its own code.
    let queue = JobQueue::connect(&url).await?;
    for id in ids {
        queue.create_mangopay_user(id).await?;
    }
    println!(
        "  saved:      natural user #{} and legal user #{}; creation enqueued",
        ids[0], ids[1]
    );

    // 5. The worker runs until the queue is empty.
    let started = Instant::now();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(run_worker(
        JobContext {
            db: db.clone(),
            client: client.clone(),
        },
        queue.clone(),
        WorkerOptions {
            poll_interval: Duration::from_millis(50),
            ..WorkerOptions::default()
        },
        async move {
            let _ = stopped.await;
        },
    ));
    queue
        .wait_until_idle(Duration::from_millis(50), Duration::from_secs(60))
        .await?;
    let _ = stop.send(());
    worker.await??;
    println!(
        "  worker:     queue empty after {:.2} s",
        started.elapsed().as_secs_f64()
    );

    // 6. The rows, as the application's database now holds them.
    println!();
    println!("  id  kind     name             mangopay_id                        state   kyc");
    for id in ids {
        let (kind, name, user) = match MangopayUser::get(&db, id).await? {
            MangopayUser::Natural(u) => (
                "NATURAL",
                format!("{} {}", u.first_name, u.last_name),
                MangopayUser::Natural(u),
            ),
            MangopayUser::Legal(u) => ("LEGAL", u.name.clone(), MangopayUser::Legal(u)),
        };
        let sync = user.sync();
        println!(
            "  {:<3} {:<8} {:<16} {:<34} {:<7} {}",
            id,
            kind,
            name,
            sync.mangopay_id.as_deref().unwrap_or("-"),
            sync.state.as_str(),
            user.facts().kyc_level.as_ref().map_or("-", |k| k.as_str()),
        );
        if let Some(error) = &sync.last_error {
            println!("      last error: {}", serde_json::to_string(error)?);
        }
    }
    let created = ids.len();
    let synced = created_count(&db, &ids).await?;
    sandbox.shutdown().await;
    if synced != created {
        return Err(format!("{synced} of {created} users reached Mangopay").into());
    }
    Ok(())
}

/// How many of `ids` have a Mangopay id.
async fn created_count(db: &Db, ids: &[i64]) -> Result<usize, Box<dyn Error>> {
    let mut n = 0;
    for id in ids {
        if MangopayUser::get(db, *id)
            .await?
            .sync()
            .mangopay_id
            .is_some()
        {
            n += 1;
        }
    }
    Ok(n)
}
