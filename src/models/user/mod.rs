//! Mangopay users, natural and legal, on one table.
//!
//! `mangopay_users` holds one row per user of either kind (so that wallets, bank accounts and
//! KYC documents reference "a user"), with the sync columns; `mangopay_natural_users` and
//! `mangopay_legal_users` hold the details of each kind.
//!
//! - [`base`]: the shared row, its fields and facts, and how an answer is written into it;
//! - [`natural`] and [`legal`]: the two kinds, each a [`Resource`](crate::sync::Resource);
//! - [`any`]: [`MangopayUser`], a user of either kind loaded by id (what the jobs work with).

mod any;
mod base;
mod legal;
mod natural;

pub use any::MangopayUser;
pub use base::UserFacts;
pub(crate) use base::validate_tag;
pub use legal::{LegalUserBuilder, MangopayLegalUser};
pub use natural::{MangopayNaturalUser, NaturalUserBuilder};

use crate::sync::{Listing, SyncTable};

/// The table holding every user's sync columns.
pub const USERS: SyncTable = SyncTable::new("mangopay_users");

/// Users are found by tag in `GET /users`, newest first (it has no date filters).
fn listing() -> Listing {
    Listing {
        path: "users".into(),
        date_filters: false,
        filters: Vec::new(),
        item_path: None,
        untagged: false,
    }
}
