//! Quickstart: a natural and a legal user saved in a SQLite file, created at Mangopay (the
//! in-process sandbox) by the background worker, and printed with their Mangopay ids; then the
//! natural user's verification (a refused identity proof listed to send again, a second one
//! with two pages validated, the user verified for pay-outs); then a wallet for each, a bank account and a recipient, a card registered through the
//! tokenization server and charged into the wallet, a second card's pay-in through 3-D Secure
//! and its partial refund, a transfer, and a pay-out the worker follows until it SUCCEEDED, with the
//! application's pay-out-succeeded hook run once.
//!
//! ```sh
//! cargo run --example quickstart
//! ```
//!
//! No configuration is needed. With `DATABASE_URL` set (for example to a PostgreSQL database)
//! that database is used instead of `target/quickstart.db`.

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use diesel_mangopay::db::migrations;
use diesel_mangopay::models::kyc_file::KycSettings;
use diesel_mangopay::models::{
    BankAccountDetails, MangopayUser, PayoutMethodType, RecipientHolder,
};
use diesel_mangopay::{
    Address, BrowserInfo, CardType, ClientConfig, CurrencyCode, DatabaseUrl, Db, DocumentStatus,
    DocumentType, Hooks, LegalPersonType, MangopayBankAccount, MangopayCard,
    MangopayCardRegistration, MangopayClient, MangopayDocument, MangopayLegalUser,
    MangopayNaturalUser, MangopayPage, MangopayPayIn, MangopayPayOut, MangopayRecipient,
    MangopayRefund, MangopayTransfer, MangopayWallet, Money, PayOutDestination, Polling,
    TransactionStatus, UserCategory, Verification,
};
use diesel_mangopay_jobs::{
    CREATE_MANGOPAY_BANK_ACCOUNT, CREATE_MANGOPAY_DOCUMENT_AND_PAGES_AND_ASK_FOR_VALIDATION,
    CREATE_MANGOPAY_PAY_IN, CREATE_MANGOPAY_PAY_OUT, CREATE_MANGOPAY_RECIPIENT,
    CREATE_MANGOPAY_TRANSFER, CREATE_MANGOPAY_WALLET, Job, JobContext, JobQueue, Registry,
    WorkerOptions, kyc_sweep, run_worker,
};
use diesel_mangopay_sandbox::{KycOutcome, KycRefusedReason, RecipientSca, Sandbox, SandboxConfig};

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

    // 4. The worker runs in the background, as `diesel-mangopay-worker` would. Pay-outs and
    //    recipients are checked every second here (by default: pay-outs the next weekday,
    //    recipients every 10 minutes); the application's hook runs once per pay-out that
    //    succeeds, in the transaction that records it.
    let hook_runs = Arc::new(AtomicUsize::new(0));
    let runs = hook_runs.clone();
    let hooks = Hooks::new().on_pay_out_succeeded(move |_conn, pay_out| {
        runs.fetch_add(1, Ordering::SeqCst);
        println!(
            "  hook:       pay-out #{} of {} SUCCEEDED: mark the seller's order as paid out",
            pay_out.id.unwrap_or_default(),
            pay_out.debited_funds
        );
        Ok(())
    });
    // Pages handed over as bytes wait in a staging directory until the worker uploads them.
    let staging = tempfile::tempdir()?;
    let db = db.with_hooks(hooks).with_kyc(KycSettings {
        staging_dir: staging.path().to_path_buf(),
        ..KycSettings::default()
    });
    let queue = JobQueue::connect(&url).await?;
    let every_second = Polling::every(Duration::from_secs(1), 30);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(run_worker(
        JobContext {
            db: db.clone(),
            client: client.clone(),
        },
        queue.clone(),
        WorkerOptions {
            poll_interval: Duration::from_millis(50),
            registry: Registry::standard_polling(
                every_second.clone(),
                every_second.clone(),
                every_second,
            ),
            ..WorkerOptions::default()
        },
        async move {
            let _ = stopped.await;
        },
    ));
    let started = Instant::now();

    // 5. Their creation at Mangopay is enqueued, as an application does from its own code.
    for id in ids {
        queue.create_mangopay_user(id).await?;
    }
    println!(
        "  saved:      natural user #{} and legal user #{}; creation enqueued",
        ids[0], ids[1]
    );
    drained(&queue).await?;
    println!(
        "  worker:     users created after {:.2} s",
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
    let synced = created_count(&db, &ids).await?;
    if synced != ids.len() {
        return Err(format!("{synced} of {} users reached Mangopay", ids.len()).into());
    }
    println!();

    // 7. Alex's verification. A first identity proof is refused (the sandbox's reviewers are
    //    a control request away); a second one, two pages, is validated. The worker creates
    //    each document, uploads its pages and submits it; the KYC sweep (hourly on working
    //    days by default) has the outcomes read.
    let [alex, business] = ids;
    let ctx = JobContext {
        db: db.clone(),
        client: client.clone(),
    };
    let mut verdicts = Vec::new();
    for (pages, outcome) in [
        (
            vec![page(1)],
            KycOutcome::Refused {
                reason_type: KycRefusedReason::DocumentUnreadable,
                message: Some("The photo is blurred".into()),
                flags: Vec::new(),
            },
        ),
        (vec![page(2), page(3)], KycOutcome::Validated),
    ] {
        let mut document = MangopayDocument::new(alex, DocumentType::IdentityProof);
        document.save(&db).await?;
        let id = document.id.expect("saved");
        for bytes in &pages {
            MangopayPage::add_bytes(&db, id, bytes).await?;
        }
        queue
            .enqueue(Job::new(
                CREATE_MANGOPAY_DOCUMENT_AND_PAGES_AND_ASK_FOR_VALIDATION,
                id,
            ))
            .await?;
        drained(&queue).await?;
        let document = MangopayDocument::get(&db, id).await?;
        let remote = document
            .mangopay_id()
            .ok_or("the document was not created")?;
        sandbox.sandbox().set_kyc_outcome(remote, outcome)?;
        kyc_sweep(&ctx, &queue).await?;
        drained(&queue).await?;
        let document = MangopayDocument::get(&db, id).await?;
        println!(
            "  kyc:        identity proof #{id} ({} page(s) uploaded) -> {}{}",
            document.pages(&db).await?.len(),
            document.status().map_or("-", |s| s.as_str()),
            document
                .facts()
                .refused_reason_type
                .as_deref()
                .map(|r| format!(
                    " ({r}: {})",
                    document
                        .facts()
                        .refused_reason_message
                        .as_deref()
                        .unwrap_or("-")
                ))
                .unwrap_or_default()
        );
        verdicts.push(document.status().cloned());
        if document.status() == Some(&DocumentStatus::Refused) {
            let to_send = Verification::of(&db, alex).await?.to_send_again;
            println!(
                "  kyc:        to send again: {}",
                to_send
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if to_send != [DocumentType::IdentityProof] {
                return Err("the refused identity proof is not listed to send again".into());
            }
        }
    }
    let mut alex_user = MangopayNaturalUser::get(&db, alex).await?;
    alex_user.refresh(&db, &client).await?;
    let verification = Verification::of(&db, alex).await?;
    println!(
        "  kyc:        Alex: light {}, regular {}, KYC level {}, verified for pay-outs: {}",
        verification.light,
        verification.regular,
        verification.kyc_level.as_ref().map_or("-", |k| k.as_str()),
        if verification.verified_for_pay_outs() {
            "yes"
        } else {
            "no"
        }
    );
    if verdicts
        != [
            Some(DocumentStatus::Refused),
            Some(DocumentStatus::Validated),
        ]
        || !verification.verified_for_pay_outs()
    {
        return Err("Alex's verification did not end as expected".into());
    }
    if std::fs::read_dir(staging.path())?.next().is_some() {
        return Err("a staged page was left behind".into());
    }
    println!();

    // 8. Where the money lives and goes: a wallet each, Alex's bank account (IBAN) and a
    //    recipient. The recipient waits for Alex's SCA; the sandbox completes it after 2 s.
    sandbox
        .sandbox()
        .knobs()
        .set_recipient_sca(RecipientSca::ActivateAfter(Duration::from_secs(2)));
    let mut alex_wallet = MangopayWallet::new(alex, "EUR", "Alex's earnings")?;
    alex_wallet.save(&db).await?;
    let mut business_wallet = MangopayWallet::new(business, "EUR", "Best Business")?;
    business_wallet.save(&db).await?;
    let paris = Address::new("3 rue de la Cité", "Paris", "75004", "FR")?;
    let mut account = MangopayBankAccount::new(
        alex,
        BankAccountDetails::Iban {
            iban: "FR76 3000 6000 0112 3456 7890 189".into(),
            bic: Some("BNPAFRPP".into()),
        },
        "Alex Smith",
        paris.clone(),
    )?;
    account.save(&db).await?;
    let mut recipient = MangopayRecipient::new(
        alex,
        "Alex Smith current account",
        RecipientHolder::Individual {
            first_name: "Alex".into(),
            last_name: "Smith".into(),
            address: paris,
        },
        "EUR",
        PayoutMethodType::InternationalBankTransfer,
        serde_json::json!({"AccountNumber": "FR7630004000031234567890143"}),
    )?
    .with_country("FR".parse()?);
    recipient.save(&db).await?;
    let wallet_ids = [
        alex_wallet.id.expect("saved"),
        business_wallet.id.expect("saved"),
    ];
    for id in wallet_ids {
        queue.enqueue(Job::new(CREATE_MANGOPAY_WALLET, id)).await?;
    }
    let account_id = account.id.expect("saved");
    let recipient_id = recipient.id.expect("saved");
    queue
        .enqueue(Job::new(CREATE_MANGOPAY_BANK_ACCOUNT, account_id))
        .await?;
    queue
        .enqueue(Job::new(CREATE_MANGOPAY_RECIPIENT, recipient_id))
        .await?;
    drained(&queue).await?;
    let account = MangopayBankAccount::get(&db, account_id).await?;
    let recipient = MangopayRecipient::get(&db, recipient_id).await?;
    println!(
        "  bank:       IBAN account {} ({}), recipient {} {} after {} status check(s)",
        account.mangopay_id().unwrap_or("-"),
        account.sync().state.as_str(),
        recipient.mangopay_id().unwrap_or("-"),
        recipient.status().map_or("-", |s| s.as_str()),
        recipient.facts().status_checks,
    );

    // 9. Funds: Alex registers a card (the number goes from the "browser" to the tokenization
    //    server, never through the application), and a direct card pay-in funds the wallet.
    let alex_wallet = MangopayWallet::get(&db, wallet_ids[0]).await?;
    let alex_mangopay_wallet = alex_wallet
        .mangopay_id()
        .ok_or("Alex's wallet was not created")?
        .to_owned();
    let eur: CurrencyCode = "EUR".parse()?;
    let card = register_card(&db, &client, alex, eur, "4970107111111119").await?;
    let mut funding = MangopayPayIn::card_direct(
        alex,
        wallet_ids[0],
        card.id().expect("saved"),
        Money::new(10_000, eur),
        Money::new(0, eur),
        "https://shop.example.com/3ds-return",
        browser(),
        "203.0.113.7",
    )?
    .with_statement_descriptor("QUICKSTART");
    funding.create(&db, &client).await?;
    println!(
        "  card:       {} {} ({}), pay-in {} {}",
        card.mangopay_id().unwrap_or("-"),
        card.facts().alias.as_deref().unwrap_or("-"),
        card.facts().card_provider.as_deref().unwrap_or("-"),
        funding.debited_funds,
        funding.status().map_or("-", |s| s.as_str()),
    );

    // A second card needs 3-D Secure: its pay-in waits, CREATED, until the cardholder
    // completes the challenge (the sandbox: after 2 s); the worker follows it meanwhile.
    sandbox
        .sandbox()
        .knobs()
        .set_payin_settle_after(Some(Duration::from_secs(2)));
    let secure_card = register_card(&db, &client, alex, eur, "4970105191923460").await?;
    let mut secure = MangopayPayIn::card_direct(
        alex,
        wallet_ids[0],
        secure_card.id().expect("saved"),
        Money::new(2_000, eur),
        Money::new(20, eur),
        "https://shop.example.com/3ds-return",
        browser(),
        "203.0.113.7",
    )?;
    secure.save(&db).await?;
    let secure_id = secure.id().expect("saved");
    queue
        .enqueue(Job::new(CREATE_MANGOPAY_PAY_IN, secure_id))
        .await?;
    drained(&queue).await?;
    let secure = MangopayPayIn::get(&db, secure_id).await?;
    println!(
        "  3-D Secure: pay-in {} {} after {} status check(s) (redirect was {})",
        secure.debited_funds,
        secure.status().map_or("-", |s| s.as_str()),
        secure.facts().status_checks,
        secure
            .facts()
            .secure_mode_redirect_url
            .as_deref()
            .unwrap_or("-"),
    );
    let mut refund =
        MangopayRefund::partial(secure_id, alex, Money::new(500, eur), Money::new(-5, eur))?;
    refund.create(&db, &client).await?;
    println!(
        "  refund:     {} of the 3-D Secure pay-in {}",
        refund
            .facts()
            .debited_funds
            .map_or("-".into(), |m| m.to_string()),
        refund.status().map_or("-", |s| s.as_str()),
    );
    let _ = alex_mangopay_wallet;

    // 10. A transfer to the business, and a pay-out of the rest to Alex's bank account,
    //    followed by the worker until Mangopay settles it (the sandbox: after 2 s).
    sandbox
        .sandbox()
        .knobs()
        .set_payout_settle_after(Some(Duration::from_secs(2)));
    let mut transfer = MangopayTransfer::new(
        alex,
        wallet_ids[0],
        wallet_ids[1],
        Money::new(3_000, eur),
        Money::new(100, eur),
    )?;
    transfer.save(&db).await?;
    let mut pay_out = MangopayPayOut::new(
        alex,
        wallet_ids[0],
        PayOutDestination::BankAccount(account_id),
        Money::new(6_000, eur),
        Money::new(50, eur),
    )?
    .with_bank_wire_ref("quickstart");
    pay_out.save(&db).await?;
    let transfer_id = transfer.id.expect("saved");
    let pay_out_id = pay_out.id.expect("saved");
    queue
        .enqueue(Job::new(CREATE_MANGOPAY_TRANSFER, transfer_id))
        .await?;
    // After the transfer, so the pay-out never competes with it for the wallet's funds.
    drained(&queue).await?;
    queue
        .enqueue(Job::new(CREATE_MANGOPAY_PAY_OUT, pay_out_id))
        .await?;
    drained(&queue).await?;
    let _ = stop.send(());
    worker.await??;
    println!(
        "  worker:     queue empty after {:.2} s",
        started.elapsed().as_secs_f64()
    );

    // 11. What the database holds now, next to what Mangopay says.
    let transfer = MangopayTransfer::get(&db, transfer_id).await?;
    let pay_out = MangopayPayOut::get(&db, pay_out_id).await?;
    println!();
    println!(
        "  transfer #{transfer_id}: {} -> {}",
        transfer.debited_funds,
        transfer.facts().status.as_ref().map_or("-", |s| s.as_str())
    );
    println!(
        "  pay-out  #{pay_out_id}: {} -> {} after {} status check(s), hook run {} time(s)",
        pay_out.debited_funds,
        pay_out.status().map_or("-", |s| s.as_str()),
        pay_out.facts().status_checks,
        hook_runs.load(Ordering::SeqCst)
    );
    println!();
    println!("  wallet  owner  mangopay_id                          balance    at Mangopay");
    let mut balances_agree = true;
    for id in wallet_ids {
        let mut wallet = MangopayWallet::get(&db, id).await?;
        let balance = wallet.balance(&db, &client).await?;
        let stored = MangopayWallet::get(&db, id).await?.facts().balance;
        let remote = sandbox
            .sandbox()
            .wallet(wallet.mangopay_id().unwrap_or_default())
            .and_then(|w| w["Balance"]["Amount"].as_i64());
        balances_agree &= stored == Some(balance) && remote == Some(balance.amount);
        println!(
            "  {:<7} {:<6} {:<36} {:<10} {}",
            id,
            wallet.owner_id,
            wallet.mangopay_id().unwrap_or("-"),
            balance.to_string(),
            remote.map_or("-".to_owned(), |a| Money::new(a, eur).to_string()),
        );
    }
    sandbox.shutdown().await;
    if pay_out.status() != Some(&TransactionStatus::Succeeded) {
        return Err("the pay-out did not succeed".into());
    }
    if hook_runs.load(Ordering::SeqCst) != 1 {
        return Err("the pay-out-succeeded hook did not run exactly once".into());
    }
    if !balances_agree {
        return Err("the database's balances differ from Mangopay's".into());
    }
    Ok(())
}

/// A sample page file: a PNG header and 40 KB of filler (a real application hands over the
/// user's scan).
/// A card of `user` registered as a checkout page does it: the registration created, the
/// card posted to the tokenization server (here by a plain HTTP form post, as the card kit
/// would from the browser), the registration completed with its answer.
async fn register_card(
    db: &Db,
    client: &MangopayClient,
    user: i64,
    currency: CurrencyCode,
    number: &str,
) -> Result<MangopayCard, Box<dyn Error>> {
    let mut registration =
        MangopayCardRegistration::new(user, currency, CardType::CbVisaMastercard)?;
    registration.create(db, client).await?;
    let prereg = registration.preregistration_data()?;
    // A plain reqwest client for this request outside the library needs a TLS provider (the
    // library's client brings its own configuration and installs none).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("data", &prereg.preregistration_data)
        .append_pair("accessKeyRef", &prereg.access_key)
        .append_pair("cardNumber", number)
        .append_pair("cardExpirationDate", "1230")
        .append_pair("cardCvx", "123")
        .finish();
    let data = reqwest::Client::new()
        .post(&prereg.card_registration_url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(registration
        .complete(db, client, &data, Some("Alex Smith"))
        .await?)
}

/// The cardholder's browser, as the checkout page reads it.
fn browser() -> BrowserInfo {
    BrowserInfo {
        accept_header: "text/html".into(),
        java_enabled: false,
        language: "fr-FR".into(),
        color_depth: 24,
        screen_height: 1080,
        screen_width: 1920,
        time_zone_offset: -60,
        user_agent: "Mozilla/5.0".into(),
        javascript_enabled: true,
    }
}

fn page(seed: u8) -> Vec<u8> {
    let mut bytes = vec![0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, seed];
    bytes.resize(40_000, seed);
    bytes
}

/// Waits until the worker has run every job enqueued, and every check planned, so far.
async fn drained(queue: &JobQueue) -> Result<(), Box<dyn Error>> {
    queue
        .wait_until_idle(Duration::from_millis(50), Duration::from_secs(60))
        .await?;
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
