//! `diesel-mangopay`: manage the tables (embedded migrations) and serve the Mangopay sandbox.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use diesel_mangopay::DatabaseUrl;
use diesel_mangopay::db::migrations;

/// diesel-mangopay: Mangopay objects in your database.
#[derive(Parser, Debug)]
#[command(name = "diesel-mangopay", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Apply, revert or list the migrations of the database's backend (embedded in this binary).
    Migrate {
        /// postgres://… or postgresql://… for PostgreSQL; sqlite://path or a file path for
        /// SQLite. Default: mangopay.db.
        #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
        database_url: Option<String>,
        #[command(subcommand)]
        action: Option<MigrateAction>,
    },
    /// Serve the Mangopay API sandbox on 127.0.0.1 (needs the `sandbox` cargo feature).
    Sandbox(SandboxArgs),
}

#[derive(Subcommand, Debug, Clone, Copy)]
enum MigrateAction {
    /// Apply every pending migration (the default).
    Run,
    /// Revert the most recent migration.
    Revert,
    /// List every migration and whether it is applied.
    List,
}

#[derive(clap::Args, Debug)]
struct SandboxArgs {
    /// The port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// The client id the sandbox accepts.
    #[arg(long, env = "MANGOPAY_CLIENT_ID")]
    client_id: Option<String>,
    /// The API key the sandbox accepts.
    #[arg(long, env = "MANGOPAY_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Latency added to every answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Fraction of requests (0 to 1) answered with a 500.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Lifetime of the OAuth tokens it issues, in seconds.
    #[arg(long, default_value_t = 1200)]
    token_ttl: u64,
    /// Calls allowed per 15 minutes before answering 429 (Mangopay's default: 2300).
    #[arg(long)]
    rate_limit: Option<u32>,
    /// Countries refused as nationality, residence or address (comma-separated ISO codes), as
    /// Mangopay's country restrictions do.
    #[arg(long, value_delimiter = ',')]
    blocked_countries: Vec<String>,
}

fn migrate(database_url: Option<String>, action: MigrateAction) -> anyhow::Result<()> {
    let url: DatabaseUrl = match database_url {
        Some(raw) => raw.parse().map_err(|e: diesel_mangopay::ConfigError| {
            anyhow::anyhow!("DATABASE_URL: {}", e.problem())
        })?,
        None => DatabaseUrl::from_env()?,
    };
    let mut conn = diesel_mangopay::db::establish(&url)?;
    match action {
        MigrateAction::Run => {
            let applied = migrations::run_pending(&mut conn)?;
            if applied.is_empty() {
                println!("{url}: no pending migrations");
            }
            for version in applied {
                println!("{url}: applied {version}");
            }
        }
        MigrateAction::Revert => {
            let version = migrations::revert_last(&mut conn).context("reverting")?;
            println!("{url}: reverted {version}");
        }
        MigrateAction::List => {
            for m in migrations::list(&mut conn)? {
                println!("[{}] {}", if m.applied { "X" } else { " " }, m.name);
            }
        }
    }
    Ok(())
}

#[cfg(feature = "sandbox")]
async fn sandbox(args: SandboxArgs) -> anyhow::Result<()> {
    use diesel_mangopay_sandbox::{Sandbox, SandboxConfig};

    anyhow::ensure!(
        (0.0..=1.0).contains(&args.error_rate),
        "--error-rate must be between 0 and 1"
    );
    let defaults = SandboxConfig::default();
    let config = SandboxConfig {
        client_id: args
            .client_id
            .clone()
            .unwrap_or_else(|| defaults.client_id.clone()),
        api_key: args
            .api_key
            .clone()
            .unwrap_or_else(|| defaults.api_key.clone()),
        token_ttl: std::time::Duration::from_secs(args.token_ttl),
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::new(config.clone());
    sandbox
        .knobs()
        .set_latency(std::time::Duration::from_millis(args.latency_ms));
    sandbox.knobs().set_error_rate(args.error_rate);
    sandbox.knobs().set_rate_limit(args.rate_limit);
    let blocked: Vec<&str> = args.blocked_countries.iter().map(String::as_str).collect();
    sandbox.knobs().set_blocked_countries(&blocked);
    let running = sandbox
        .serve(std::net::SocketAddr::from(([127, 0, 0, 1], args.port)))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
    println!("Mangopay sandbox listening on {}", running.base_url());
    // The sandbox's default credentials are not secrets: print them so clients can be pointed
    // at it. Credentials given by flag or environment are not echoed.
    let shown = |given: bool, value: &str| {
        if given {
            "(as given)".to_owned()
        } else {
            value.to_owned()
        }
    };
    println!(
        "client id: {}  API key: {}  (MANGOPAY_BASE_URL={})",
        shown(args.client_id.is_some(), &config.client_id),
        shown(args.api_key.is_some(), &config.api_key),
        running.base_url()
    );
    shutdown_signal().await;
    running.shutdown().await;
    Ok(())
}

#[cfg(not(feature = "sandbox"))]
async fn sandbox(_: SandboxArgs) -> anyhow::Result<()> {
    anyhow::bail!("this binary was built without the sandbox; rebuild with `--features sandbox`")
}

#[cfg(feature = "sandbox")]
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Migrate {
            database_url,
            action,
        } => {
            let action = action.unwrap_or(MigrateAction::Run);
            tokio::task::spawn_blocking(move || migrate(database_url, action)).await?
        }
        Command::Sandbox(args) => sandbox(args).await,
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the chain of causes, joined.
            eprintln!("error: {}", diesel_mangopay::report(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
