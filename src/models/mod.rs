//! The models: Mangopay objects as rows of the application's database, each with async methods
//! that call the Mangopay API and write the answer back.
//!
//! One module per resource family, re-exported flat. Every model has a local surrogate key
//! (`id`) and a unique, nullable `mangopay_id` that stays NULL until Mangopay accepted the
//! object; every write of API data goes through one function per model.

mod legal_user;
mod natural_user;
mod types;
mod user;

pub use legal_user::{LegalUserBuilder, MangopayLegalUser};
pub use natural_user::{MangopayNaturalUser, NaturalUserBuilder};
pub use types::{
    Address, IncomeRange, KycLevel, LegalPersonType, PersonType, UserCategory, UserStatus,
};
pub use user::{MangopayUser, SyncState, UserSync};
