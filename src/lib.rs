#![deny(missing_docs)]
//! Mangopay objects kept in your own database with diesel, synced through the Mangopay API.
//!
//! `diesel-mangopay` mirrors Mangopay users (and, as the library grows, wallets, bank accounts,
//! KYC documents, cards and money movements) into tables of the application's own database,
//! SQLite by default and PostgreSQL in production. Each model owns async methods that call the
//! Mangopay REST API v2.01 and write what comes back into its row; the `diesel-mangopay-jobs`
//! crate runs those methods in the background with apalis.
//!
//! Money never moves twice: every `POST` carries an idempotency key that is committed on the
//! row *before* the request is sent, and a `Tag` naming the row. A crash between Mangopay's
//! answer and the database commit is repaired by sending the same key again, which Mangopay
//! answers with the original result; an outcome Mangopay cannot give back is settled by
//! finding the object by its tag. [`sync`] describes the whole protocol, written once for
//! every resource.
//!
//! ```no_run
//! use diesel_mangopay::{Config, Db, MangopayClient, MangopayNaturalUser, UserCategory};
//!
//! # async fn demo() -> Result<(), diesel_mangopay::Error> {
//! let config = Config::from_env()?;
//! let db = Db::connect(config.database_url()).await?;
//! db.run_pending_migrations().await?;
//! let client = MangopayClient::new(config.mangopay().clone())?;
//!
//! let mut user = MangopayNaturalUser::builder()
//!     .first_name("Alex")
//!     .last_name("Smith")
//!     .email("alex.smith@example.com")
//!     .user_category(UserCategory::Payer)
//!     .build()?;
//! user.save(&db).await?;
//! user.create(&db, &client).await?;
//! println!("Mangopay id: {}", user.mangopay_id().unwrap_or_default());
//! # Ok(()) }
//! ```

pub mod client;
pub mod config;
pub mod db;
mod error;
pub mod hooks;
pub mod models;
pub mod schema;
pub mod sync;
pub mod validate;

pub use client::{ApiError, IdempotencyKey, MangopayClient};
pub use config::{ClientConfig, Config, ConfigError, DatabaseUrl};
pub use db::{Backend, Db, DbError, StatementCount};
pub use error::{Error, report};
pub use hooks::{HookResult, Hooks};
pub use models::{
    Address, IncomeRange, KycLevel, LegalPersonType, MangopayLegalUser, MangopayNaturalUser,
    MangopayPayOut, MangopayTransfer, MangopayUser, MangopayWallet, Money, PayOutDestination,
    PayoutMode, PersonType, TransactionStatus, UserCategory, UserFacts, UserStatus,
};
pub use models::{
    BrowserInfo, CardType, MangopayCard, MangopayCardRegistration, MangopayPayIn, MangopayRefund,
    PayInMethod, SecureMode,
};
pub use models::{
    DocumentStatus, DocumentType, MangopayBankAccount, MangopayDocument, MangopayPage,
    MangopayRecipient, UploadState, Verification,
};
pub use models::{
    MangopayUbo, MangopayUboDeclaration, UboCreateState, UboDeclarationStatus, UboFields,
};
pub use sync::{Lease, Poll, Polling, SyncInfo, SyncState};
pub use validate::{CountryCode, CurrencyCode, FieldError, FieldErrorKind, ValidationErrors};
