//! `diesel-mangopay-worker`: runs the diesel-mangopay jobs until SIGINT or SIGTERM.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use diesel_mangopay::db::migrations;
use diesel_mangopay::models::kyc_file::KycSettings;
use diesel_mangopay::sync::SweepOptions;
use diesel_mangopay::{Config, Db, MangopayClient, Polling};
use diesel_mangopay_jobs::{
    JobContext, JobQueue, Registry, RetryPolicy, WorkerOptions, run_worker,
};

/// Runs the diesel-mangopay background jobs (Mangopay objects created and updated from the rows
/// your application saves) and the sweep that hands out rows whose work is due. Configured by
/// DATABASE_URL, MANGOPAY_CLIENT_ID, MANGOPAY_API_KEY, MANGOPAY_BASE_URL and the other
/// MANGOPAY_* variables. Stops on SIGINT or SIGTERM after in-flight jobs finish.
#[derive(Parser, Debug)]
#[command(name = "diesel-mangopay-worker", version)]
struct Args {
    /// Jobs run at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
    /// Seconds in-flight jobs may take to finish after a shutdown signal.
    #[arg(long, default_value_t = 30)]
    shutdown_timeout: u64,
    /// Milliseconds between looks for new jobs when idle.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(10..))]
    poll_interval_ms: u64,
    /// Seconds between sweeps for rows whose create or update is due (0: never sweep).
    #[arg(long, default_value_t = 60)]
    sweep_interval: u64,
    /// Seconds a row saved `new` waits before the sweep creates it (its enqueue may have been
    /// lost); 0 leaves `new` rows to the application.
    #[arg(long, default_value_t = 300)]
    sweep_new_rows_after: u64,
    /// Runs of one job in all before its row is left to the sweep.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..))]
    max_attempts: u32,
    /// Seconds between status checks of a pay-out still CREATED (0: the next weekday, as
    /// django-mangopay did).
    #[arg(long, default_value_t = 0)]
    pay_out_check_every: u64,
    /// Status checks of a pay-out still CREATED before it is reported and no longer followed.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i32).range(1..))]
    pay_out_max_checks: i32,
    /// Seconds between status checks of a recipient still PENDING its user's SCA.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    recipient_check_every: u64,
    /// Status checks of a recipient still PENDING before it is reported and no longer followed.
    #[arg(long, default_value_t = 144, value_parser = clap::value_parser!(i32).range(1..))]
    recipient_max_checks: i32,
    /// When the KYC sweep queues the status update of every document awaiting validation: a
    /// cron expression with seconds, in UTC, or `off`. Default: hourly from 08:00 to 17:00,
    /// Monday to Friday.
    #[arg(long, default_value = diesel_mangopay_jobs::KYC_SCHEDULE, value_parser = kyc_schedule)]
    kyc_schedule: KycSchedule,
    /// Where pages handed over as bytes are staged until uploaded (the application's
    /// `KycSettings::staging_dir`); default: `diesel-mangopay-pages` in the temporary directory.
    #[arg(long, env = "MANGOPAY_KYC_STAGING_DIR")]
    kyc_staging_dir: Option<std::path::PathBuf>,
}

/// A KYC schedule, or none.
#[derive(Debug, Clone)]
struct KycSchedule(Option<cron::Schedule>);

fn kyc_schedule(text: &str) -> Result<KycSchedule, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(KycSchedule(None));
    }
    text.parse::<cron::Schedule>()
        .map(|s| KycSchedule(Some(s)))
        .map_err(|e| format!("not a cron expression with seconds (or `off`): {e}"))
}

impl Args {
    /// The job types, with pay-outs and recipients followed as the arguments say.
    fn registry(&self) -> Registry {
        let pay_outs = Polling {
            every: (self.pay_out_check_every > 0)
                .then(|| Duration::from_secs(self.pay_out_check_every)),
            max_checks: self.pay_out_max_checks,
            backoff_up_to: None,
        };
        let recipients = Polling::every(
            Duration::from_secs(self.recipient_check_every),
            self.recipient_max_checks,
        );
        Registry::standard_polling(pay_outs, recipients, Polling::pay_ins())
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = term.recv() => tracing::info!("SIGTERM received"),
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let mut kyc = KycSettings::default();
    if let Some(dir) = &args.kyc_staging_dir {
        kyc.staging_dir = dir.clone();
    }
    let db = Db::connect(config.database_url()).await?.with_kyc(kyc);
    let pending: Vec<_> = db
        .run(migrations::list)
        .await?
        .into_iter()
        .filter(|m| !m.applied)
        .map(|m| m.name)
        .collect();
    if !pending.is_empty() {
        bail!(
            "{} migration(s) not applied ({}); run `diesel-mangopay migrate run` first",
            pending.len(),
            pending.join(", ")
        );
    }
    let client = MangopayClient::new(config.mangopay().clone())?;
    let queue = JobQueue::connect(config.database_url())
        .await
        .context("opening the job storage")?;
    tracing::info!(database = %config.database_url(), mangopay = %config.mangopay().base_url(), "connected");
    let options = WorkerOptions {
        concurrency: usize::from(args.concurrency),
        shutdown_timeout: Duration::from_secs(args.shutdown_timeout),
        poll_interval: Duration::from_millis(args.poll_interval_ms),
        retry: RetryPolicy {
            max_attempts: args.max_attempts,
            ..RetryPolicy::default()
        },
        sweep_interval: (args.sweep_interval > 0).then(|| Duration::from_secs(args.sweep_interval)),
        sweep: SweepOptions {
            new_rows_after: (args.sweep_new_rows_after > 0)
                .then(|| Duration::from_secs(args.sweep_new_rows_after)),
            ..SweepOptions::default()
        },
        registry: args.registry(),
        kyc_schedule: args.kyc_schedule.0.clone(),
    };
    run_worker(JobContext { db, client }, queue, options, shutdown_signal()).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,apalis=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", diesel_mangopay::report(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
