//! `MangopayWallet`: a user's e-wallet in one currency, mirrored from Mangopay's
//! [Wallet object](https://docs.mangopay.com/api-reference/wallets/wallet-object).

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;

use super::money::Money;
use super::parent::{self, Parent};
use super::transaction::stored_currency;
use super::types::read;
use super::user::validate_tag;
use crate::db::{AnyConnection, MultiBackend};
use crate::schema::mangopay_wallets as wallets;
use crate::sync::body::{Clear, CreateBody, UpdateBody};
use crate::sync::{ApiRequest, Listing, Resource, Scope, SyncInfo, SyncTable, UpdateRequest};
use crate::validate::{self, CurrencyCode, ValidationErrors};
use crate::{Db, Error, MangopayClient};

/// The table holding every wallet's sync columns.
pub const WALLETS: SyncTable = SyncTable::new("mangopay_wallets");

/// A wallet, kept in `mangopay_wallets`.
///
/// Build one with [`MangopayWallet::new`], [`save`](Self::save) it, then
/// [`create`](Self::create) it at Mangopay (or enqueue the `create_mangopay_wallet` job) once
/// its owner has been created. [`balance`](Self::balance) reads the balance from Mangopay and
/// records it with the time it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct MangopayWallet {
    /// The local id; `None` until the first save.
    pub id: Option<i64>,
    /// The owner: the local id of a [`MangopayUser`](crate::MangopayUser) (`Owners`).
    pub owner_id: i64,
    /// `Currency`; cannot change once the wallet is created.
    pub currency: CurrencyCode,
    /// `Description`, 1 to 255 characters.
    pub description: String,
    /// `Tag`: the application's note (see [`MangopayNaturalUser::tag`](crate::MangopayNaturalUser::tag)).
    pub tag: Option<String>,
    facts: WalletFacts,
    owner: Parent,
    sync: SyncInfo,
}

/// What Mangopay says about a wallet.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WalletFacts {
    /// The balance last read from Mangopay (`Balance`).
    pub balance: Option<Money>,
    /// When that balance was read (UTC).
    pub balance_read_at: Option<DateTime<Utc>>,
    /// `FundsType` (`DEFAULT` for users' wallets).
    pub funds_type: Option<String>,
    /// `CreationDate`.
    pub mangopay_created_at: Option<DateTime<Utc>>,
}

impl MangopayWallet {
    /// A wallet for the user `owner_id` (local id) in `currency` (ISO 4217), not saved yet.
    pub fn new(
        owner_id: i64,
        currency: &str,
        description: impl Into<String>,
    ) -> Result<MangopayWallet, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let currency = errors.currency("currency", currency);
        let wallet = MangopayWallet {
            id: None,
            owner_id,
            currency: currency.unwrap_or(CurrencyCode::UNKNOWN),
            description: description.into(),
            tag: None,
            facts: WalletFacts::default(),
            owner: Parent::default(),
            sync: SyncInfo::default(),
        };
        errors.merge_unreported(wallet.validate());
        errors.into_result().map(|()| wallet)
    }

    /// The same wallet with `tag` as its tag.
    pub fn with_tag(mut self, tag: impl Into<String>) -> MangopayWallet {
        self.tag = Some(tag.into());
        self
    }

    /// What Mangopay says about the wallet (balance, dates).
    pub fn facts(&self) -> &WalletFacts {
        &self.facts
    }

    /// The owner's Mangopay id, as of the last load.
    pub fn owner_mangopay_id(&self) -> Option<&str> {
        self.owner.mangopay_id.as_deref()
    }

    /// Every problem with the current field values, or `Ok`.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut e = ValidationErrors::new();
        e.check("description", validate::name(&self.description, 255));
        e.check("tag", validate_tag(self.tag.as_deref()));
        e.into_result()
    }

    /// Reads the wallet from Mangopay (`GET /wallets/{Id}`), records its balance and the time
    /// it was read, and returns the balance: exact minor units and currency.
    pub async fn balance(&mut self, db: &Db, client: &MangopayClient) -> Result<Money, Error> {
        self.refresh(db, client).await?;
        self.facts.balance.ok_or_else(|| Error::WrongState {
            model: <Self as Resource>::MODEL,
            id: self.id.unwrap_or_default(),
            reason: "Mangopay's answer has no readable Balance".into(),
        })
    }

    /// The wallets of the user `owner_id` (local id), oldest first.
    pub async fn for_owner(db: &Db, owner_id: i64) -> Result<Vec<MangopayWallet>, Error> {
        crate::sync::get_where(db, move |conn| {
            wallets::table
                .filter(wallets::owner_id.eq(owner_id))
                .order(wallets::id)
                .select(wallets::id)
                .load::<i64>(conn)
        })
        .await
    }
}

crate::models::resource_methods!(MangopayWallet, "wallet");
crate::models::update_method!(MangopayWallet);

/// The `mangopay_wallets` columns the model reads.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = wallets)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite, MultiBackend))]
struct WalletRow {
    id: i64,
    owner_id: i64,
    currency: String,
    description: String,
    tag: Option<String>,
    balance_amount: Option<i64>,
    balance_read_at: Option<NaiveDateTime>,
    funds_type: Option<String>,
    mangopay_created_at: Option<NaiveDateTime>,
}

/// The fields the application owns.
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = wallets, treat_none_as_null = true)]
struct WalletFields {
    owner_id: i64,
    currency: String,
    description: String,
    tag: Option<String>,
}

/// What an answer says; an absent key leaves its column alone.
#[derive(AsChangeset, Default)]
#[diesel(table_name = wallets)]
struct WalletFromApi {
    balance_amount: Option<Option<i64>>,
    balance_read_at: Option<Option<NaiveDateTime>>,
    funds_type: Option<Option<String>>,
    mangopay_created_at: Option<Option<NaiveDateTime>>,
    description: Option<String>,
    tag: Option<Option<String>>,
}

impl MangopayWallet {
    fn fields(&self) -> WalletFields {
        WalletFields {
            owner_id: self.owner_id,
            currency: self.currency.to_string(),
            description: self.description.clone(),
            tag: self.tag.clone(),
        }
    }
}

impl Resource for MangopayWallet {
    const MODEL: &'static str = "MangopayWallet";
    const TABLE: SyncTable = WALLETS;

    crate::sync::row_accessors!();
    fn validate(&self) -> Result<(), ValidationErrors> {
        MangopayWallet::validate(self)
    }
    fn app_tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    fn load(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<Self>> {
        let row = wallets::table
            .find(id)
            .select(WalletRow::as_select())
            .first::<WalletRow>(conn)
            .optional()?;
        Ok(row.map(|r| {
            let utc = |t: Option<NaiveDateTime>| t.map(|t| t.and_utc());
            let currency = stored_currency(&r.currency);
            MangopayWallet {
                id: Some(r.id),
                owner_id: r.owner_id,
                currency,
                description: r.description,
                tag: r.tag,
                facts: WalletFacts {
                    balance: r.balance_amount.map(|a| Money::new(a, currency)),
                    balance_read_at: utc(r.balance_read_at),
                    funds_type: r.funds_type,
                    mangopay_created_at: utc(r.mangopay_created_at),
                },
                owner: Parent::default(),
                sync: SyncInfo::default(),
            }
        }))
    }

    fn resolve(&mut self, conn: &mut AnyConnection) -> Result<(), Error> {
        self.owner = parent::user(conn, "owner_id", self.owner_id)?;
        Ok(())
    }

    fn parents_ready(&self) -> Result<(), Error> {
        self.owner
            .ready(Self::MODEL, "owner_id", "MangopayUser", self.owner_id)
    }

    crate::models::field_writes!(wallets);

    fn apply_api_data(
        &self,
        conn: &mut AnyConnection,
        id: i64,
        p: &Value,
        scope: Scope,
    ) -> QueryResult<()> {
        let balance = Money::from_api(p, "Balance");
        let mut changes = WalletFromApi {
            balance_amount: balance.map(|m| Some(m.amount)),
            balance_read_at: balance.map(|_| Some(crate::sync::now())),
            funds_type: read::text(p, "FundsType"),
            mangopay_created_at: read::timestamp(p, "CreationDate"),
            ..WalletFromApi::default()
        };
        if scope == Scope::All {
            changes.description = read::required(read::text(p, "Description"));
            changes.tag = read::text(p, "Tag");
        }
        if changes.balance_amount.is_none()
            && changes.funds_type.is_none()
            && changes.mangopay_created_at.is_none()
            && changes.description.is_none()
            && changes.tag.is_none()
        {
            return Ok(());
        }
        diesel::update(wallets::table.find(id))
            .set(&changes)
            .execute(conn)
            .map(drop)
    }

    fn create_request(&self, tag: Option<&str>) -> Result<ApiRequest, Error> {
        let owner = self
            .owner
            .created(Self::MODEL, "owner_id", "MangopayUser", self.owner_id)?;
        let mut b = CreateBody::new();
        b.put("Owners", Some([owner]))
            .put("Currency", Some(self.currency.as_str()))
            .put("Description", Some(&self.description))
            .put("Tag", tag);
        Ok(ApiRequest {
            path: "wallets".into(),
            body: b.finish(),
        })
    }

    fn update_request(&self, tag: Option<&str>) -> Result<UpdateRequest, Error> {
        let mangopay_id = self.sync.mangopay_id.as_deref().ok_or(Error::NotCreated {
            model: Self::MODEL,
            id: self.id.unwrap_or_default(),
        })?;
        let mut b = UpdateBody::new(self.sync.api_payload.as_ref());
        b.set("Description", &self.description)
            .opt("Tag", "tag", tag, Clear::EmptyString);
        let (body, cleared) = b.finish()?;
        Ok(UpdateRequest {
            request: ApiRequest {
                path: format!("wallets/{mangopay_id}"),
                body,
            },
            cleared,
        })
    }

    fn view_path(&self, mangopay_id: &str) -> String {
        format!("wallets/{mangopay_id}")
    }

    fn listing(&self) -> Listing {
        Listing {
            path: format!(
                "users/{}/wallets",
                self.owner.mangopay_id.as_deref().unwrap_or_default()
            ),
            date_filters: false,
            filters: Vec::new(),
            item_path: None,
            untagged: false,
        }
    }

    fn check_found(&self, found: &Value) -> Result<(), String> {
        let owners: Vec<&str> = found
            .get("Owners")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let owner = self.owner.mangopay_id.as_deref().unwrap_or_default();
        if !owners.contains(&owner) {
            return Err(format!("it belongs to {owners:?}, not to {owner}"));
        }
        match found.get("Currency").and_then(Value::as_str) {
            Some(c) if c.eq_ignore_ascii_case(self.currency.as_str()) => Ok(()),
            Some(c) => Err(format!("it is in {c}, not {}", self.currency)),
            None => Err("it is not a wallet".into()),
        }
    }
}
