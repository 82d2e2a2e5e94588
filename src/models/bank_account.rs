//! `MangopayBankAccount`: a user's bank account of Mangopay's legacy kind (`IBAN`, `GB`, `US`,
//! `CA`, `OTHER`), mirrored from Mangopay's
//! [Bank Account object](https://docs.mangopay.com/api-reference/bank-accounts/bank-account-object).
//!
//! Mangopay has replaced bank accounts with recipients ([`MangopayRecipient`](crate::MangopayRecipient));
//! a bank account is still what a legacy integration pays out to. It is never updated: it is
//! created, read, and deactivated for good.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::{Value, json};

use super::parent::{self, Parent};
use super::types::{Address, AddressColumns, read};
use super::user::validate_tag;
use crate::db::{AnyConnection, MultiBackend};
use crate::schema::mangopay_bank_accounts as accounts;
use crate::sync::body::CreateBody;
use crate::sync::{
    ApiRequest, Lease, Listing, Resource, Scope, SyncInfo, SyncTable, UpdateRequest,
};
use crate::validate::{self, CountryCode, FieldErrorKind, ValidationErrors};
use crate::{Db, Error, MangopayClient};

/// The table holding every bank account's sync columns.
pub const BANK_ACCOUNTS: SyncTable = SyncTable::new("mangopay_bank_accounts");

/// The deposit type of a US bank account (`DepositAccountType`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum DepositAccountType {
    /// `CHECKING` (Mangopay's default).
    #[default]
    Checking,
    /// `SAVINGS`.
    Savings,
}

impl DepositAccountType {
    /// The value as Mangopay spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            DepositAccountType::Checking => "CHECKING",
            DepositAccountType::Savings => "SAVINGS",
        }
    }

    /// Reads a value as Mangopay sends it (any letter case).
    pub fn from_api(value: &str) -> Option<DepositAccountType> {
        if value.eq_ignore_ascii_case("CHECKING") {
            Some(DepositAccountType::Checking)
        } else if value.eq_ignore_ascii_case("SAVINGS") {
            Some(DepositAccountType::Savings)
        } else {
            None
        }
    }
}

impl fmt::Display for DepositAccountType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The account itself, one variant per bank account `Type`. Its `Debug` output (and that of
/// [`MangopayBankAccount`], Mangopay's last answer included) shows only the last four
/// characters of IBANs and account numbers.
///
/// Every value is checked by [`MangopayBankAccount::validate`], errors naming
/// `details.iban`, `details.sort_code`, ...
#[derive(Clone, PartialEq, Eq)]
pub enum BankAccountDetails {
    /// `IBAN`: an account registered in a country that uses IBANs (including the UK when
    /// the pay-outs are not in GBP).
    Iban {
        /// `IBAN`, stored in its electronic form (no spaces, upper case); its check digits
        /// and its country's format are checked.
        iban: String,
        /// `BIC`, 8 or 11 characters; optional (Mangopay may need the 11-character form).
        bic: Option<String>,
    },
    /// `GB`: an account registered in the United Kingdom, for pay-outs in GBP.
    Gb {
        /// `SortCode`: 6 digits.
        sort_code: String,
        /// `AccountNumber`: 8 digits.
        account_number: String,
    },
    /// `US`: an account registered in the United States.
    Us {
        /// `AccountNumber`: digits only.
        account_number: String,
        /// `ABA`: the 9-digit routing number.
        aba: String,
        /// `DepositAccountType`.
        deposit_account_type: DepositAccountType,
    },
    /// `CA`: an account registered in Canada.
    Ca {
        /// `BranchCode`: the 5-digit branch (transit) number.
        branch_code: String,
        /// `InstitutionNumber`: the 3-digit institution number.
        institution_number: String,
        /// `AccountNumber`: 7 to 35 digits.
        account_number: String,
        /// `BankName`: up to 50 letters, digits and spaces.
        bank_name: String,
    },
    /// `OTHER`: an account registered in a country that uses no IBAN and is not the US,
    /// Canada or the UK.
    Other {
        /// `Country`: where the account is registered (ISO 3166-1 alpha-2).
        country: String,
        /// `BIC`, 8 or 11 characters.
        bic: String,
        /// `AccountNumber`: 5 to 35 letters and digits.
        account_number: String,
    },
}

/// `…` and the last four characters of a secret (all of it hidden when it is that short).
pub(crate) fn mask(secret: &str) -> String {
    let n = secret.chars().count();
    if n <= 4 {
        return "…".to_owned();
    }
    let tail: String = secret.chars().skip(n - 4).collect();
    format!("…{tail}")
}

/// The keys of Mangopay's objects whose values are masked in `Debug` output.
const SECRET_KEYS: [&str; 4] = ["IBAN", "AccountNumber", "FFC", "Clabe"];

/// `value` with the secrets of [`SECRET_KEYS`] masked, at any depth.
pub(crate) fn masked(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) if SECRET_KEYS.contains(&k.as_str()) => {
                            Value::String(mask(s))
                        }
                        other => masked(other),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(masked).collect()),
        other => other.clone(),
    }
}

/// The sync columns with the secrets of Mangopay's last answer masked, for `Debug` output.
pub(crate) fn masked_sync(sync: &SyncInfo) -> SyncInfo {
    let mut sync = sync.clone();
    sync.api_payload = sync.api_payload.as_ref().map(masked);
    sync
}

impl fmt::Debug for BankAccountDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BankAccountDetails::Iban { iban, bic } => f
                .debug_struct("Iban")
                .field("iban", &mask(iban))
                .field("bic", bic)
                .finish(),
            BankAccountDetails::Gb {
                sort_code,
                account_number,
            } => f
                .debug_struct("Gb")
                .field("sort_code", sort_code)
                .field("account_number", &mask(account_number))
                .finish(),
            BankAccountDetails::Us {
                account_number,
                aba,
                deposit_account_type,
            } => f
                .debug_struct("Us")
                .field("account_number", &mask(account_number))
                .field("aba", aba)
                .field("deposit_account_type", deposit_account_type)
                .finish(),
            BankAccountDetails::Ca {
                branch_code,
                institution_number,
                account_number,
                bank_name,
            } => f
                .debug_struct("Ca")
                .field("branch_code", branch_code)
                .field("institution_number", institution_number)
                .field("account_number", &mask(account_number))
                .field("bank_name", bank_name)
                .finish(),
            BankAccountDetails::Other {
                country,
                bic,
                account_number,
            } => f
                .debug_struct("Other")
                .field("country", country)
                .field("bic", bic)
                .field("account_number", &mask(account_number))
                .finish(),
        }
    }
}

/// The detail columns, in the table's terms.
#[derive(Debug, Clone, Default, PartialEq)]
struct DetailColumns {
    iban: Option<String>,
    bic: Option<String>,
    sort_code: Option<String>,
    account_number: Option<String>,
    aba: Option<String>,
    deposit_account_type: Option<String>,
    branch_code: Option<String>,
    institution_number: Option<String>,
    bank_name: Option<String>,
    country: Option<String>,
}

impl BankAccountDetails {
    /// The bank account `Type`: `IBAN`, `GB`, `US`, `CA` or `OTHER`.
    pub fn account_type(&self) -> &'static str {
        match self {
            BankAccountDetails::Iban { .. } => "IBAN",
            BankAccountDetails::Gb { .. } => "GB",
            BankAccountDetails::Us { .. } => "US",
            BankAccountDetails::Ca { .. } => "CA",
            BankAccountDetails::Other { .. } => "OTHER",
        }
    }

    /// The same details as they are stored and sent: the IBAN in its electronic form, BICs
    /// and the country in upper case.
    pub fn normalized(&self) -> BankAccountDetails {
        let upper = |s: &str| s.trim().to_ascii_uppercase();
        match self {
            BankAccountDetails::Iban { iban, bic } => BankAccountDetails::Iban {
                iban: validate::normalize_iban(iban),
                bic: bic.as_deref().map(upper),
            },
            BankAccountDetails::Other {
                country,
                bic,
                account_number,
            } => BankAccountDetails::Other {
                country: upper(country),
                bic: upper(bic),
                account_number: account_number.clone(),
            },
            other => other.clone(),
        }
    }

    /// Records every problem under `details.{field}`.
    fn check(&self, e: &mut ValidationErrors) {
        match self {
            BankAccountDetails::Iban { iban, bic } => {
                e.check("details.iban", validate::iban(iban));
                if let Some(bic) = bic {
                    e.check("details.bic", validate::bic(bic));
                }
            }
            BankAccountDetails::Gb {
                sort_code,
                account_number,
            } => {
                e.check("details.sort_code", validate::digits(sort_code, 6, 6));
                e.check(
                    "details.account_number",
                    validate::digits(account_number, 8, 8),
                );
            }
            BankAccountDetails::Us {
                account_number,
                aba,
                deposit_account_type: _,
            } => {
                e.check(
                    "details.account_number",
                    validate::digits(account_number, 1, 255),
                );
                e.check("details.aba", validate::digits(aba, 9, 9));
            }
            BankAccountDetails::Ca {
                branch_code,
                institution_number,
                account_number,
                bank_name,
            } => {
                e.check("details.branch_code", validate::digits(branch_code, 5, 5));
                e.check(
                    "details.institution_number",
                    validate::digits(institution_number, 3, 3),
                );
                e.check(
                    "details.account_number",
                    validate::digits(account_number, 7, 35),
                );
                e.check("details.bank_name", bank_name_rule(bank_name));
            }
            BankAccountDetails::Other {
                country,
                bic,
                account_number,
            } => {
                e.check(
                    "details.country",
                    country.trim().parse::<CountryCode>().map(drop),
                );
                e.check("details.bic", validate::bic(bic));
                e.check(
                    "details.account_number",
                    validate::alphanumeric(account_number, 5, 35),
                );
            }
        }
    }

    /// Mangopay's keys for these details (sent as they are stored: see
    /// [`normalized`](Self::normalized)).
    fn put_into(&self, b: &mut CreateBody) {
        match self {
            BankAccountDetails::Iban { iban, bic } => {
                b.put("IBAN", Some(iban)).put("BIC", bic.as_ref());
            }
            BankAccountDetails::Gb {
                sort_code,
                account_number,
            } => {
                b.put("AccountNumber", Some(account_number))
                    .put("SortCode", Some(sort_code));
            }
            BankAccountDetails::Us {
                account_number,
                aba,
                deposit_account_type,
            } => {
                b.put("AccountNumber", Some(account_number))
                    .put("ABA", Some(aba))
                    .put("DepositAccountType", Some(deposit_account_type.as_str()));
            }
            BankAccountDetails::Ca {
                branch_code,
                institution_number,
                account_number,
                bank_name,
            } => {
                b.put("AccountNumber", Some(account_number))
                    .put("InstitutionNumber", Some(institution_number))
                    .put("BranchCode", Some(branch_code))
                    .put("BankName", Some(bank_name));
            }
            BankAccountDetails::Other {
                country,
                bic,
                account_number,
            } => {
                b.put("AccountNumber", Some(account_number))
                    .put("BIC", Some(bic))
                    .put("Country", Some(country));
            }
        }
    }

    fn columns(&self) -> DetailColumns {
        let s = |v: &String| Some(v.clone());
        match self.normalized() {
            BankAccountDetails::Iban { iban, bic } => DetailColumns {
                iban: Some(iban),
                bic,
                ..DetailColumns::default()
            },
            BankAccountDetails::Gb {
                sort_code,
                account_number,
            } => DetailColumns {
                sort_code: s(&sort_code),
                account_number: s(&account_number),
                ..DetailColumns::default()
            },
            BankAccountDetails::Us {
                account_number,
                aba,
                deposit_account_type,
            } => DetailColumns {
                account_number: s(&account_number),
                aba: s(&aba),
                deposit_account_type: Some(deposit_account_type.as_str().to_owned()),
                ..DetailColumns::default()
            },
            BankAccountDetails::Ca {
                branch_code,
                institution_number,
                account_number,
                bank_name,
            } => DetailColumns {
                branch_code: s(&branch_code),
                institution_number: s(&institution_number),
                account_number: s(&account_number),
                bank_name: s(&bank_name),
                ..DetailColumns::default()
            },
            BankAccountDetails::Other {
                country,
                bic,
                account_number,
            } => DetailColumns {
                country: s(&country),
                bic: s(&bic),
                account_number: s(&account_number),
                ..DetailColumns::default()
            },
        }
    }

    fn from_columns(account_type: &str, c: DetailColumns) -> BankAccountDetails {
        let text = |v: Option<String>| v.unwrap_or_default();
        match account_type {
            "GB" => BankAccountDetails::Gb {
                sort_code: text(c.sort_code),
                account_number: text(c.account_number),
            },
            "US" => BankAccountDetails::Us {
                account_number: text(c.account_number),
                aba: text(c.aba),
                deposit_account_type: c
                    .deposit_account_type
                    .as_deref()
                    .and_then(DepositAccountType::from_api)
                    .unwrap_or_default(),
            },
            "CA" => BankAccountDetails::Ca {
                branch_code: text(c.branch_code),
                institution_number: text(c.institution_number),
                account_number: text(c.account_number),
                bank_name: text(c.bank_name),
            },
            "OTHER" => BankAccountDetails::Other {
                country: text(c.country),
                bic: text(c.bic),
                account_number: text(c.account_number),
            },
            // The table's CHECK allows IBAN as the only other type.
            _ => BankAccountDetails::Iban {
                iban: text(c.iban),
                bic: c.bic,
            },
        }
    }
}

/// `BankName`: 1 to 50 letters, digits and spaces (the reference's "letters and digits
/// only"; its own example, "The Bank", has a space).
fn bank_name_rule(name: &str) -> Result<(), FieldErrorKind> {
    validate::name(name, 50)?;
    if name.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ') {
        Ok(())
    } else {
        Err(FieldErrorKind::InvalidCharacters(
            "letters, digits and spaces",
        ))
    }
}

/// A bank account, kept in `mangopay_bank_accounts`.
///
/// Build one with [`MangopayBankAccount::new`], [`save`](Self::save) it, then
/// [`create`](Self::create) it (`POST /users/{UserId}/bankaccounts/{type}`) once its owner has
/// been created at Mangopay. Mangopay never updates a bank account: once its create was sent
/// its fields cannot change, and the only change Mangopay takes is
/// [`deactivate`](Self::deactivate), for good.
#[derive(Clone, PartialEq)]
pub struct MangopayBankAccount {
    /// The local id; `None` until the first save.
    pub id: Option<i64>,
    /// `UserId`: the local id of the owner, a [`MangopayUser`](crate::MangopayUser).
    pub user_id: i64,
    /// The account (`Type` and its fields).
    pub details: BankAccountDetails,
    /// `OwnerName`: the account holder's full name as the bank knows it, 1 to 255
    /// characters. Given by the application: nothing guesses it from a user.
    pub owner_name: String,
    /// `OwnerAddress`: the account holder's address; required, with a first line, city,
    /// postal code and country (and a region in the US, Canada and Mexico).
    pub owner_address: Address,
    /// `Tag`: the application's note (see [`MangopayNaturalUser::tag`](crate::MangopayNaturalUser::tag)).
    pub tag: Option<String>,
    /// `Active`: true until the account is deactivated, by [`deactivate`](Self::deactivate)
    /// or by Mangopay (a closed account), as recorded from Mangopay's last answer. A save that
    /// changes it is refused ([`Error::WrongState`]): Mangopay never re-activates an account.
    pub active: bool,
    facts: BankAccountFacts,
    owner: Parent,
    sync: SyncInfo,
}

impl fmt::Debug for MangopayBankAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MangopayBankAccount")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("details", &self.details)
            .field("owner_name", &self.owner_name)
            .field("owner_address", &self.owner_address)
            .field("tag", &self.tag)
            .field("active", &self.active)
            .field("facts", &self.facts)
            .field("owner", &self.owner)
            .field("sync", &masked_sync(&self.sync))
            .finish()
    }
}

/// What Mangopay says about a bank account.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BankAccountFacts {
    /// `CreationDate`.
    pub mangopay_created_at: Option<DateTime<Utc>>,
}

impl MangopayBankAccount {
    /// A bank account of the user `user_id` (local id), not saved yet: the IBAN is kept in its
    /// electronic form. Every field is checked; the errors name them.
    pub fn new(
        user_id: i64,
        details: BankAccountDetails,
        owner_name: impl Into<String>,
        owner_address: Address,
    ) -> Result<MangopayBankAccount, ValidationErrors> {
        let account = MangopayBankAccount {
            id: None,
            user_id,
            details: details.normalized(),
            owner_name: owner_name.into(),
            owner_address,
            tag: None,
            active: true,
            facts: BankAccountFacts::default(),
            owner: Parent::default(),
            sync: SyncInfo::default(),
        };
        account.validate().map(|()| account)
    }

    /// The same bank account with `tag` as its tag.
    pub fn with_tag(mut self, tag: impl Into<String>) -> MangopayBankAccount {
        self.tag = Some(tag.into());
        self
    }

    /// What Mangopay says about the bank account.
    pub fn facts(&self) -> &BankAccountFacts {
        &self.facts
    }

    /// The owner's Mangopay id, as of the last load.
    pub fn user_mangopay_id(&self) -> Option<&str> {
        self.owner.mangopay_id.as_deref()
    }

    /// Every problem with the current field values, or `Ok`.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut e = ValidationErrors::new();
        self.details.check(&mut e);
        e.check("owner_name", validate::name(&self.owner_name, 255));
        if self.owner_address.is_empty() {
            e.push("owner_address", FieldErrorKind::Required);
        } else {
            e.extend(self.owner_address.validate().prefixed("owner_address"));
        }
        e.check("tag", validate_tag(self.tag.as_deref()));
        if self.id.is_none() && !self.active {
            e.push(
                "active",
                FieldErrorKind::NotAllowed(
                    "a bank account is created active; deactivate() it once it is created".into(),
                ),
            );
        }
        e.into_result()
    }

    /// Deactivates the account at Mangopay for good (`PUT /users/{UserId}/bankaccounts/{Id}`
    /// with `{"Active": false}`) and records Mangopay's answer in the row; reloads the model.
    /// An account already recorded as deactivated sends nothing. Mangopay never re-activates
    /// an account: a save that sets [`active`](Self::active) back is refused.
    pub async fn deactivate(&mut self, db: &Db, client: &MangopayClient) -> Result<(), Error> {
        let id = self.id.ok_or(Error::NotSaved {
            model: <Self as Resource>::MODEL,
        })?;
        let stored = Self::get(db, id).await?;
        let Some(mangopay_id) = stored.mangopay_id().map(str::to_owned) else {
            return Err(Error::NotCreated {
                model: <Self as Resource>::MODEL,
                id,
            });
        };
        if !stored.active {
            *self = stored;
            return Ok(());
        }
        let user = stored.owner.mangopay_id.clone().unwrap_or_default();
        let path = format!("users/{user}/bankaccounts/{mangopay_id}");
        let result =
            put_and_record::<Self>(db, client, id, &path, &json!({ "Active": false })).await;
        *self = Self::get(db, id).await?;
        result
    }

    /// The bank accounts of the user `user_id` (local id), oldest first.
    pub async fn for_user(db: &Db, user_id: i64) -> Result<Vec<MangopayBankAccount>, Error> {
        crate::sync::get_where(db, move |conn| {
            accounts::table
                .filter(accounts::user_id.eq(user_id))
                .order(accounts::id)
                .select(accounts::id)
                .load::<i64>(conn)
        })
        .await
    }
}

crate::models::resource_methods!(MangopayBankAccount, "bank account");

/// Sends `PUT path` with `body` for row `id` (an object Mangopay changes only through such a
/// dedicated call: a deactivation), holding the row's lease meanwhile, and records the answer
/// as a refresh does: the payload and, through the model's `apply_api_data`, its fields, in
/// one transaction. The application's fields are written only when the row did not change
/// while the answer was on its way.
pub(super) async fn put_and_record<R: Resource>(
    db: &Db,
    client: &MangopayClient,
    id: i64,
    path: &str,
    body: &Value,
) -> Result<(), Error> {
    let lease = Lease::random();
    crate::sync::hold(db, client, R::TABLE, id, &lease).await?;
    let result = put_held::<R>(db, client, id, path, body).await;
    let released = crate::sync::release(db, R::TABLE, id, &lease).await;
    result.and(released)
}

async fn put_held<R: Resource>(
    db: &Db,
    client: &MangopayClient,
    id: i64,
    path: &str,
    body: &Value,
) -> Result<(), Error> {
    let (model, version) = db
        .run(move |conn| {
            let (row, model) = crate::sync::load_parts::<R>(conn, id)?;
            Ok::<_, Error>((model, row.row_version))
        })
        .await?;
    let payload = client.put(path, body).await?;
    db.write(move |conn| {
        let at = crate::sync::now();
        let row =
            crate::sync::store::record_refreshed(conn, R::TABLE, id, &payload.to_string(), at)?
                .ok_or(Error::NotFound {
                    model: R::MODEL,
                    id,
                })?;
        let scope = if row.row_version == version && !row.dirty {
            Scope::All
        } else {
            Scope::ServerOnly
        };
        model
            .apply_api_data(conn, id, &crate::sync::strip_marker(&payload), scope)
            .map_err(Error::from)
    })
    .await
}

/// The `mangopay_bank_accounts` columns the model reads.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = accounts)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite, MultiBackend))]
struct BankAccountRow {
    id: i64,
    user_id: i64,
    account_type: String,
    owner_name: String,
    owner_address_line1: Option<String>,
    owner_address_line2: Option<String>,
    owner_address_city: Option<String>,
    owner_address_region: Option<String>,
    owner_address_postal_code: Option<String>,
    owner_address_country: Option<String>,
    iban: Option<String>,
    bic: Option<String>,
    sort_code: Option<String>,
    account_number: Option<String>,
    aba: Option<String>,
    deposit_account_type: Option<String>,
    branch_code: Option<String>,
    institution_number: Option<String>,
    bank_name: Option<String>,
    country: Option<String>,
    active: bool,
    tag: Option<String>,
    mangopay_created_at: Option<NaiveDateTime>,
}

/// The fields the application owns (`active` is Mangopay's: only answers write it).
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = accounts, treat_none_as_null = true)]
struct BankAccountFields {
    user_id: i64,
    account_type: String,
    owner_name: String,
    owner_address_line1: Option<String>,
    owner_address_line2: Option<String>,
    owner_address_city: Option<String>,
    owner_address_region: Option<String>,
    owner_address_postal_code: Option<String>,
    owner_address_country: Option<String>,
    iban: Option<String>,
    bic: Option<String>,
    sort_code: Option<String>,
    account_number: Option<String>,
    aba: Option<String>,
    deposit_account_type: Option<String>,
    branch_code: Option<String>,
    institution_number: Option<String>,
    bank_name: Option<String>,
    country: Option<String>,
    tag: Option<String>,
}

/// What an answer says; an absent key leaves its column alone.
#[derive(AsChangeset, Default)]
#[diesel(table_name = accounts)]
struct BankAccountFromApi {
    active: Option<bool>,
    mangopay_created_at: Option<Option<NaiveDateTime>>,
    owner_name: Option<String>,
    owner_address_line1: Option<Option<String>>,
    owner_address_line2: Option<Option<String>>,
    owner_address_city: Option<Option<String>>,
    owner_address_region: Option<Option<String>>,
    owner_address_postal_code: Option<Option<String>>,
    owner_address_country: Option<Option<String>>,
    iban: Option<Option<String>>,
    bic: Option<Option<String>>,
    sort_code: Option<Option<String>>,
    account_number: Option<Option<String>>,
    aba: Option<Option<String>>,
    deposit_account_type: Option<Option<String>>,
    branch_code: Option<Option<String>>,
    institution_number: Option<Option<String>>,
    bank_name: Option<Option<String>>,
    country: Option<Option<String>>,
    tag: Option<Option<String>>,
}

impl BankAccountFromApi {
    fn is_empty(&self) -> bool {
        let texts = [
            self.mangopay_created_at.is_none(),
            self.owner_address_line1.is_none(),
            self.iban.is_none(),
            self.bic.is_none(),
            self.sort_code.is_none(),
            self.account_number.is_none(),
            self.aba.is_none(),
            self.deposit_account_type.is_none(),
            self.branch_code.is_none(),
            self.institution_number.is_none(),
            self.bank_name.is_none(),
            self.country.is_none(),
            self.tag.is_none(),
        ];
        self.active.is_none() && self.owner_name.is_none() && texts.iter().all(|&none| none)
    }
}

impl BankAccountRow {
    fn address(&self) -> AddressColumns {
        (
            self.owner_address_line1.clone(),
            self.owner_address_line2.clone(),
            self.owner_address_city.clone(),
            self.owner_address_region.clone(),
            self.owner_address_postal_code.clone(),
            self.owner_address_country.clone(),
        )
    }
}

impl MangopayBankAccount {
    fn fields(&self) -> BankAccountFields {
        let (line1, line2, city, region, postal_code, country) =
            Address::into_columns(Some(&self.owner_address));
        let d = self.details.columns();
        BankAccountFields {
            user_id: self.user_id,
            account_type: self.details.account_type().to_owned(),
            owner_name: self.owner_name.clone(),
            owner_address_line1: line1,
            owner_address_line2: line2,
            owner_address_city: city,
            owner_address_region: region,
            owner_address_postal_code: postal_code,
            owner_address_country: country,
            iban: d.iban,
            bic: d.bic,
            sort_code: d.sort_code,
            account_number: d.account_number,
            aba: d.aba,
            deposit_account_type: d.deposit_account_type,
            branch_code: d.branch_code,
            institution_number: d.institution_number,
            bank_name: d.bank_name,
            country: d.country,
            tag: self.tag.clone(),
        }
    }
}

/// A text of an answer in upper case (BICs, countries).
fn upper(v: Option<Option<String>>) -> Option<Option<String>> {
    v.map(|v| v.map(|s| s.to_ascii_uppercase()))
}

impl Resource for MangopayBankAccount {
    const MODEL: &'static str = "MangopayBankAccount";
    const TABLE: SyncTable = BANK_ACCOUNTS;
    const UPDATABLE: bool = false;

    crate::sync::row_accessors!();
    fn validate(&self) -> Result<(), ValidationErrors> {
        MangopayBankAccount::validate(self)
    }
    fn app_tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    fn load(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<Self>> {
        let row = accounts::table
            .find(id)
            .select(BankAccountRow::as_select())
            .first::<BankAccountRow>(conn)
            .optional()?;
        Ok(row.map(|r| {
            let owner_address = Address::from_columns(r.address()).unwrap_or_default();
            let details = BankAccountDetails::from_columns(
                &r.account_type,
                DetailColumns {
                    iban: r.iban,
                    bic: r.bic,
                    sort_code: r.sort_code,
                    account_number: r.account_number,
                    aba: r.aba,
                    deposit_account_type: r.deposit_account_type,
                    branch_code: r.branch_code,
                    institution_number: r.institution_number,
                    bank_name: r.bank_name,
                    country: r.country,
                },
            );
            MangopayBankAccount {
                id: Some(r.id),
                user_id: r.user_id,
                details,
                owner_name: r.owner_name,
                owner_address,
                tag: r.tag,
                active: r.active,
                facts: BankAccountFacts {
                    mangopay_created_at: r.mangopay_created_at.map(|t| t.and_utc()),
                },
                owner: Parent::default(),
                sync: SyncInfo::default(),
            }
        }))
    }

    fn resolve(&mut self, conn: &mut AnyConnection) -> Result<(), Error> {
        self.owner = parent::user(conn, "user_id", self.user_id)?;
        let Some(id) = self.id else {
            return Ok(());
        };
        let stored = accounts::table
            .find(id)
            .select(accounts::active)
            .first::<bool>(conn)
            .optional()?;
        match stored {
            Some(false) if self.active => Err(Error::WrongState {
                model: Self::MODEL,
                id,
                reason: "the bank account is deactivated, and Mangopay never re-activates one: \
                         create a new bank account instead"
                    .into(),
            }),
            Some(true) if !self.active => Err(Error::WrongState {
                model: Self::MODEL,
                id,
                reason: "a bank account is deactivated at Mangopay with deactivate(), not by \
                         saving `active`"
                    .into(),
            }),
            _ => Ok(()),
        }
    }

    fn parents_ready(&self) -> Result<(), Error> {
        self.owner
            .ready(Self::MODEL, "user_id", "MangopayUser", self.user_id)
    }

    crate::models::field_writes!(accounts);

    fn apply_api_data(
        &self,
        conn: &mut AnyConnection,
        id: i64,
        p: &Value,
        scope: Scope,
    ) -> QueryResult<()> {
        let mut changes = BankAccountFromApi {
            active: read::boolean(p, "Active"),
            mangopay_created_at: read::timestamp(p, "CreationDate"),
            ..BankAccountFromApi::default()
        };
        let same_type = p
            .get("Type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case(self.details.account_type()));
        if scope == Scope::All {
            changes.tag = read::text(p, "Tag");
            changes.owner_name = read::required(read::text(p, "OwnerName"));
            if let Some(value) = p.get("OwnerAddress") {
                let (l1, l2, city, region, postal, country) =
                    Address::into_columns(Address::from_api(value).as_ref());
                changes.owner_address_line1 = Some(l1);
                changes.owner_address_line2 = Some(l2);
                changes.owner_address_city = Some(city);
                changes.owner_address_region = Some(region);
                changes.owner_address_postal_code = Some(postal);
                changes.owner_address_country = Some(country);
            }
            if same_type {
                let d = &mut changes;
                match self.details {
                    BankAccountDetails::Iban { .. } => {
                        d.iban =
                            read::text(p, "IBAN").map(|v| v.map(|s| validate::normalize_iban(&s)));
                        d.bic = upper(read::text(p, "BIC"));
                    }
                    BankAccountDetails::Gb { .. } => {
                        d.sort_code = read::text(p, "SortCode");
                        d.account_number = read::text(p, "AccountNumber");
                    }
                    BankAccountDetails::Us { .. } => {
                        d.account_number = read::text(p, "AccountNumber");
                        d.aba = read::text(p, "ABA");
                        d.deposit_account_type = upper(read::text(p, "DepositAccountType"));
                    }
                    BankAccountDetails::Ca { .. } => {
                        d.branch_code = read::text(p, "BranchCode");
                        d.institution_number = read::text(p, "InstitutionNumber");
                        d.account_number = read::text(p, "AccountNumber");
                        d.bank_name = read::text(p, "BankName");
                    }
                    BankAccountDetails::Other { .. } => {
                        d.country = upper(read::text(p, "Country"));
                        d.bic = upper(read::text(p, "BIC"));
                        d.account_number = read::text(p, "AccountNumber");
                    }
                }
            }
        }
        if changes.is_empty() {
            return Ok(());
        }
        diesel::update(accounts::table.find(id))
            .set(&changes)
            .execute(conn)
            .map(drop)
    }

    fn create_request(&self, tag: Option<&str>) -> Result<ApiRequest, Error> {
        let owner = self
            .owner
            .created(Self::MODEL, "user_id", "MangopayUser", self.user_id)?;
        let details = self.details.normalized();
        let mut b = CreateBody::new();
        b.put("OwnerName", Some(&self.owner_name))
            .put("OwnerAddress", Some(self.owner_address.to_api()));
        details.put_into(&mut b);
        b.put("Tag", tag);
        Ok(ApiRequest {
            path: format!(
                "users/{owner}/bankaccounts/{}",
                details.account_type().to_ascii_lowercase()
            ),
            body: b.finish(),
        })
    }

    fn update_request(&self, _tag: Option<&str>) -> Result<UpdateRequest, Error> {
        Err(super::transfer::not_updatable(Self::MODEL, self.id))
    }

    fn view_path(&self, mangopay_id: &str) -> String {
        format!(
            "users/{}/bankaccounts/{mangopay_id}",
            self.owner.mangopay_id.as_deref().unwrap_or_default()
        )
    }

    fn listing(&self) -> Listing {
        Listing {
            path: format!(
                "users/{}/bankaccounts",
                self.owner.mangopay_id.as_deref().unwrap_or_default()
            ),
            date_filters: false,
            filters: Vec::new(),
            item_path: None,
            untagged: false,
        }
    }

    fn check_found(&self, found: &Value) -> Result<(), String> {
        let owner = self.owner.mangopay_id.as_deref().unwrap_or_default();
        match found.get("UserId").and_then(Value::as_str) {
            Some(user) if user == owner => {}
            Some(user) => return Err(format!("it belongs to {user}, not to {owner}")),
            None => return Err("it is not a bank account".into()),
        }
        let wanted = self.details.account_type();
        match found.get("Type").and_then(Value::as_str) {
            Some(t) if t.eq_ignore_ascii_case(wanted) => Ok(()),
            Some(t) => Err(format!("it is a {t} bank account, not a {wanted} one")),
            None => Err("it is not a bank account".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paris() -> Address {
        Address::new("3 rue de la Cité", "Paris", "75004", "FR").unwrap()
    }

    fn iban(iban: &str, bic: Option<&str>) -> BankAccountDetails {
        BankAccountDetails::Iban {
            iban: iban.into(),
            bic: bic.map(Into::into),
        }
    }

    #[test]
    fn ibans_are_checked_and_kept_in_their_electronic_form() {
        let a = MangopayBankAccount::new(
            1,
            iban("fr76 3000 4000 0312 3456 7890 143", Some("bnpafrpp")),
            "Alex Smith",
            paris(),
        )
        .unwrap();
        assert_eq!(
            a.details,
            iban("FR7630004000031234567890143", Some("BNPAFRPP"))
        );
        let e =
            MangopayBankAccount::new(1, iban("FR7630004000031234567890144", None), "A", paris())
                .unwrap_err();
        assert!(e.has("details.iban"), "{e}");
        assert!(e.to_string().contains("check digits"), "{e}");
        let e = MangopayBankAccount::new(1, iban("FR76", Some("BNPA")), "A", paris()).unwrap_err();
        assert!(e.has("details.iban") && e.has("details.bic"), "{e}");
        for bad in ["BNPAZZPP", "1NPAFRPP", "BNPAFRPPX", "BNPAFRP_"] {
            let e = MangopayBankAccount::new(
                1,
                iban("FR7630004000031234567890143", Some(bad)),
                "A",
                paris(),
            )
            .unwrap_err();
            assert!(e.has("details.bic"), "{bad}: {e}");
        }
        assert!(validate::is_valid_bic("BNPAFRPPXXX"));
        assert!(validate::is_valid_iban("GB33BUKB20201555555555"));
    }

    #[test]
    fn local_account_numbers_follow_the_reference() {
        let check = |d: BankAccountDetails| {
            MangopayBankAccount::new(1, d, "Alex Smith", paris())
                .err()
                .map(|e| {
                    e.errors()
                        .iter()
                        .map(|f| f.field().to_owned())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        };
        let gb = |s: &str, a: &str| BankAccountDetails::Gb {
            sort_code: s.into(),
            account_number: a.into(),
        };
        assert!(check(gb("200000", "55779911")).is_empty());
        assert_eq!(check(gb("20-00-00", "55779911")), ["details.sort_code"]);
        assert_eq!(check(gb("200000", "5577991")), ["details.account_number"]);
        let us = |a: &str, aba: &str| BankAccountDetails::Us {
            account_number: a.into(),
            aba: aba.into(),
            deposit_account_type: DepositAccountType::Savings,
        };
        assert!(check(us("11696419", "071000288")).is_empty());
        assert_eq!(check(us("11696419", "07100028")), ["details.aba"]);
        assert_eq!(
            check(us("1169641A", "071000288")),
            ["details.account_number"]
        );
        let ca = |b: &str, i: &str, a: &str, n: &str| BankAccountDetails::Ca {
            branch_code: b.into(),
            institution_number: i.into(),
            account_number: a.into(),
            bank_name: n.into(),
        };
        assert!(check(ca("00152", "614", "11696419", "The Bank")).is_empty());
        assert_eq!(
            check(ca("0015", "61", "116964", "The Bank & Co")),
            [
                "details.branch_code",
                "details.institution_number",
                "details.account_number",
                "details.bank_name"
            ]
        );
        let other = |c: &str, b: &str, a: &str| BankAccountDetails::Other {
            country: c.into(),
            bic: b.into(),
            account_number: a.into(),
        };
        assert!(check(other("au", "ANZBAU3M", "11696419")).is_empty());
        assert_eq!(
            check(other("ZZ", "ANZBAU3M", "1169")),
            ["details.country", "details.account_number"]
        );
    }

    #[test]
    fn owner_and_address_are_required() {
        let e = MangopayBankAccount::new(
            1,
            iban("FR7630004000031234567890143", None),
            "",
            Address::default(),
        )
        .unwrap_err();
        assert!(e.has("owner_name") && e.has("owner_address"), "{e}");
        let mut partial = paris();
        partial.city = None;
        let e =
            MangopayBankAccount::new(1, iban("FR7630004000031234567890143", None), "A", partial)
                .unwrap_err();
        assert!(e.has("owner_address.city"), "{e}");
    }

    #[test]
    fn debug_output_masks_account_numbers() {
        let d = iban("FR7630004000031234567890143", Some("BNPAFRPP"));
        let shown = format!("{d:?}");
        assert!(
            shown.contains("…0143") && !shown.contains("30004000"),
            "{shown}"
        );
        let gb = BankAccountDetails::Gb {
            sort_code: "200000".into(),
            account_number: "55779911".into(),
        };
        let shown = format!("{gb:?}");
        assert!(
            shown.contains("…9911") && !shown.contains("55779911"),
            "{shown}"
        );
        assert_eq!(mask("1234"), "…");
    }

    #[test]
    fn create_requests_go_to_the_type_endpoint() {
        let mut a = MangopayBankAccount::new(
            7,
            BankAccountDetails::Us {
                account_number: "11696419".into(),
                aba: "071000288".into(),
                deposit_account_type: DepositAccountType::Checking,
            },
            "Alex Smith",
            paris(),
        )
        .unwrap();
        assert!(matches!(
            a.create_request(None),
            Err(Error::ParentNotCreated {
                field: "user_id",
                parent_id: 7,
                ..
            })
        ));
        a.owner.mangopay_id = Some("user_m_1".into());
        let r = a.create_request(Some("t")).unwrap();
        assert_eq!(r.path, "users/user_m_1/bankaccounts/us");
        assert_eq!(r.body["ABA"], "071000288");
        assert_eq!(r.body["DepositAccountType"], "CHECKING");
        assert_eq!(r.body["OwnerAddress"]["City"], "Paris");
        assert_eq!(r.body["Tag"], "t");
        assert!(r.body.get("IBAN").is_none());
    }
}
