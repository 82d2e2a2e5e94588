//! The models: Mangopay objects as rows of the application's database, each a resource of the
//! sync core ([`crate::sync`]), with async methods that call the Mangopay API and write the
//! answer back.
//!
//! One module per resource family, re-exported flat. Every model has a local surrogate key
//! (`id`) and a unique, nullable `mangopay_id` that stays NULL until Mangopay accepted the
//! object; every write of API data goes through the model's `apply_api_data`.

mod bank_account;
mod card;
mod child;
mod document;
pub mod kyc_file;
mod money;
mod page;
mod parent;
mod pay_in;
mod pay_out;
mod recipient;
mod refund;
mod submission;
mod transaction;
mod transfer;
mod types;
pub mod ubo;
pub mod ubo_declaration;
mod user;
pub mod verification;
mod wallet;

pub use bank_account::{
    BANK_ACCOUNTS, BankAccountDetails, BankAccountFacts, DepositAccountType, MangopayBankAccount,
};
pub use card::{
    CARD_REGISTRATIONS, CARDS, CardFacts, CardRegistrationFacts, MangopayCard,
    MangopayCardRegistration, PreregistrationData, check_registration_data,
};
pub use document::{DOCUMENTS, DocumentFacts, MangopayDocument};
pub use money::{Money, SUPPORTED_CURRENCIES};
pub use page::{MangopayPage, PageResolution, PageSource, UploadState};
pub use pay_in::{BrowserInfo, MangopayPayIn, PAY_INS, PayInFacts, PayInMethod};
pub use pay_out::{MangopayPayOut, PAY_OUTS, PayOutDestination, PayOutFacts};
pub use recipient::{
    MangopayRecipient, PayoutMethodType, RECIPIENTS, RecipientFacts, RecipientHolder,
    RecipientScope, RecipientType,
};
pub use refund::{MangopayRefund, REFUNDS, RefundFacts};
pub use transaction::TransactionFacts;
pub use transfer::{MangopayTransfer, TRANSFERS};
pub use types::RecipientStatus;
pub use types::{
    Address, CardRegistrationStatus, CardType, CardValidity, DocumentStatus, DocumentType,
    IncomeRange, KycLevel, LegalPersonType, PayoutMode, PersonType, SecureMode, TransactionStatus,
    UboDeclarationStatus, UserCategory, UserStatus,
};
pub use ubo::{MangopayUbo, UboCreateState, UboFields};
pub use ubo_declaration::{MangopayUboDeclaration, UBO_DECLARATIONS, UboDeclarationFacts};
pub use user::{
    LegalUserBuilder, MangopayLegalUser, MangopayNaturalUser, MangopayUser, NaturalUserBuilder,
    USERS, UserFacts,
};
pub use verification::Verification;
pub use wallet::{MangopayWallet, WALLETS, WalletFacts};

/// [`Resource::insert`](crate::sync::Resource::insert) and
/// [`Resource::write_fields`](crate::sync::Resource::write_fields) of a model whose application
/// columns are `self.fields()` (`Insertable` and `AsChangeset` for table `$table`): inserted
/// with both timestamps set to `now`, written as they are.
macro_rules! field_writes {
    ($table:ident) => {
        fn insert(
            &self,
            conn: &mut crate::db::AnyConnection,
            now: chrono::NaiveDateTime,
        ) -> diesel::QueryResult<i64> {
            diesel::insert_into($table::table)
                .values((
                    self.fields(),
                    $table::created_at.eq(now),
                    $table::updated_at.eq(now),
                ))
                .returning($table::id)
                .get_result(conn)
        }

        fn write_fields(
            &self,
            conn: &mut crate::db::AnyConnection,
            id: i64,
        ) -> diesel::QueryResult<()> {
            diesel::update($table::table.find(id))
                .set(self.fields())
                .execute(conn)
                .map(drop)
        }
    };
}
pub(crate) use field_writes;

/// The methods every model has, as inherent methods that hand over to the sync core
/// ([`crate::sync`]); `$noun` names the model in the documentation.
macro_rules! resource_methods {
    ($model:ty, $noun:literal) => {
        impl $model {
            /// The local id, once saved.
            pub fn id(&self) -> Option<i64> {
                <Self as $crate::sync::Resource>::id(self)
            }

            /// Mangopay's id, once Mangopay accepted the object.
            pub fn mangopay_id(&self) -> Option<&str> {
                <Self as $crate::sync::Resource>::sync(self).mangopay_id.as_deref()
            }

            /// Where the row stands with Mangopay: its sync columns.
            pub fn sync(&self) -> &$crate::sync::SyncInfo {
                <Self as $crate::sync::Resource>::sync(self)
            }

            #[doc = concat!("Loads the ", $noun, " with this local id.")]
            pub async fn get(db: &$crate::Db, id: i64) -> Result<Self, $crate::Error> {
                $crate::sync::get(db, id).await
            }

            #[doc = concat!("Loads the ", $noun, " with this Mangopay id, if there is one.")]
            pub async fn find_by_mangopay_id(
                db: &$crate::Db,
                mangopay_id: &str,
            ) -> Result<Option<Self>, $crate::Error> {
                $crate::sync::find_by_mangopay_id(db, mangopay_id).await
            }

            /// Inserts the row (setting its id) or writes its fields. Local only: nothing is
            /// sent. Bad input is refused before anything is written.
            pub async fn save(&mut self, db: &$crate::Db) -> Result<(), $crate::Error> {
                $crate::sync::save(self, db).await
            }

            #[doc = concat!(
                "Creates the ", $noun, " at Mangopay and writes Mangopay's answer (its id and ",
                "every returned field) into the row; saves the row first.\n\n",
                "Safe to call again after any failure or crash: the idempotency key is ",
                "committed on the row before the request goes out, a row that already has a ",
                "Mangopay id sends nothing, and an unknown outcome is settled by resending the ",
                "same key or by finding the object by its tag, never by a blind new key. ",
                "Mangopay's errors are kept on the row (`sync().last_error`). See ",
                "[`crate::sync`]."
            )]
            pub async fn create(
                &mut self,
                db: &$crate::Db,
                client: &$crate::MangopayClient,
            ) -> Result<(), $crate::Error> {
                $crate::sync::create(self, db, client).await
            }

            /// Reads the object from Mangopay (`GET`) into the row. Fields the application
            /// changed and has not sent yet are kept.
            pub async fn refresh(
                &mut self,
                db: &$crate::Db,
                client: &$crate::MangopayClient,
            ) -> Result<(), $crate::Error> {
                $crate::sync::refresh(self, db, client).await
            }

            /// For operators: records `mangopay_id` as this row's object, after checking at
            /// Mangopay that it exists, is of this kind and owner, belongs to no other row and
            /// does not carry another row's tag.
            pub async fn adopt(
                &mut self,
                db: &$crate::Db,
                client: &$crate::MangopayClient,
                mangopay_id: &str,
            ) -> Result<(), $crate::Error> {
                $crate::sync::adopt(self, db, client, mangopay_id).await
            }

            /// For operators: drops the row's idempotency key so that the next create sends a
            /// new one, after checking that Mangopay shows no object carrying the key's tag.
            pub async fn release_key(
                &mut self,
                db: &$crate::Db,
                client: &$crate::MangopayClient,
            ) -> Result<(), $crate::Error> {
                $crate::sync::release_key(self, db, client).await
            }
        }
    };
}
pub(crate) use resource_methods;

/// `update`, for the models Mangopay updates (`PUT`).
macro_rules! update_method {
    ($model:ty) => {
        impl $model {
            /// Saves the row and sends its fields to Mangopay (`PUT`), clearing at Mangopay the
            /// optional fields cleared here (or refusing with a typed error naming a field
            /// Mangopay cannot clear); writes the answer back.
            pub async fn update(
                &mut self,
                db: &$crate::Db,
                client: &$crate::MangopayClient,
            ) -> Result<(), $crate::Error> {
                $crate::sync::update(self, db, client).await
            }
        }
    };
}
pub(crate) use update_method;
