//! `MangopayTransfer`: money moved from one wallet to another, mirrored from Mangopay's
//! [Transfer object](https://docs.mangopay.com/api-reference/transfers/transfer-object).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::Value;

use super::money::Money;
use super::parent::{self, Parent};
use super::transaction::{
    FactsFromApi, TransactionColumns, TransactionFacts, check_amounts, stored_currency,
};
use super::types::read;
use super::user::validate_tag;
use crate::db::{AnyConnection, MultiBackend};
use crate::schema::mangopay_transfers as transfers;
use crate::sync::body::CreateBody;
use crate::sync::{ApiRequest, Listing, Resource, Scope, SyncInfo, SyncTable, UpdateRequest};
use crate::validate::ValidationErrors;
use crate::{Db, Error};

/// The table holding every transfer's sync columns.
pub const TRANSFERS: SyncTable = SyncTable::new("mangopay_transfers");

/// A transfer between two wallets of one currency, kept in `mangopay_transfers`.
///
/// Build one with [`MangopayTransfer::new`], [`save`](Self::save) it and
/// [`create`](Self::create) it (or enqueue `create_mangopay_transfer`). Mangopay answers a
/// transfer the debited wallet cannot cover by creating it `FAILED` with its result code:
/// that is recorded on the row like any other outcome. A transfer is never updated: once its
/// create was sent, its fields cannot change.
#[derive(Debug, Clone, PartialEq)]
pub struct MangopayTransfer {
    /// The local id; `None` until the first save.
    pub id: Option<i64>,
    /// `AuthorId`: the local id of the user at the source of the transfer.
    pub author_id: i64,
    /// `CreditedUserId`: the local id of the user credited; `None` sends none (Mangopay uses
    /// the credited wallet's owner).
    pub credited_user_id: Option<i64>,
    /// `DebitedWalletId`: the local id of the wallet debited.
    pub debited_wallet_id: i64,
    /// `CreditedWalletId`: the local id of the wallet credited.
    pub credited_wallet_id: i64,
    /// `DebitedFunds`.
    pub debited_funds: Money,
    /// `Fees`: what the platform takes, in the same currency; zero for none.
    pub fees: Money,
    /// `Tag`.
    pub tag: Option<String>,
    facts: TransactionFacts,
    parents: Parents,
    sync: SyncInfo,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Parents {
    author: Parent,
    credited_user: Option<Parent>,
    debited_wallet: Parent,
    credited_wallet: Parent,
}

impl MangopayTransfer {
    /// A transfer of `debited_funds` less `fees` from the wallet `debited_wallet_id` to the
    /// wallet `credited_wallet_id` (local ids), by the user `author_id`; not saved yet.
    pub fn new(
        author_id: i64,
        debited_wallet_id: i64,
        credited_wallet_id: i64,
        debited_funds: Money,
        fees: Money,
    ) -> Result<MangopayTransfer, ValidationErrors> {
        let transfer = MangopayTransfer {
            id: None,
            author_id,
            credited_user_id: None,
            debited_wallet_id,
            credited_wallet_id,
            debited_funds,
            fees,
            tag: None,
            facts: TransactionFacts::default(),
            parents: Parents::default(),
            sync: SyncInfo::default(),
        };
        transfer.validate().map(|()| transfer)
    }

    /// The same transfer crediting the user `credited_user_id` (local id).
    pub fn with_credited_user(mut self, credited_user_id: i64) -> MangopayTransfer {
        self.credited_user_id = Some(credited_user_id);
        self
    }

    /// The same transfer with `tag` as its tag.
    pub fn with_tag(mut self, tag: impl Into<String>) -> MangopayTransfer {
        self.tag = Some(tag.into());
        self
    }

    /// What Mangopay says about the transfer: status, result, credited funds, dates.
    pub fn facts(&self) -> &TransactionFacts {
        &self.facts
    }

    /// Every problem with the current field values, or `Ok`.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut e = ValidationErrors::new();
        check_amounts(&mut e, self.debited_funds, self.fees);
        if self.debited_wallet_id == self.credited_wallet_id {
            e.push(
                "credited_wallet_id",
                crate::FieldErrorKind::NotAllowed("must not be the debited wallet".into()),
            );
        }
        e.check("tag", validate_tag(self.tag.as_deref()));
        e.into_result()
    }

    /// The transfers debiting or crediting the wallet `wallet_id` (local id), oldest first.
    pub async fn for_wallet(db: &Db, wallet_id: i64) -> Result<Vec<MangopayTransfer>, Error> {
        crate::sync::get_where(db, move |conn| {
            transfers::table
                .filter(
                    transfers::debited_wallet_id
                        .eq(wallet_id)
                        .or(transfers::credited_wallet_id.eq(wallet_id)),
                )
                .order(transfers::id)
                .select(transfers::id)
                .load::<i64>(conn)
        })
        .await
    }
}

crate::models::resource_methods!(MangopayTransfer, "transfer");

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = transfers)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite, MultiBackend))]
struct TransferRow {
    id: i64,
    author_id: i64,
    credited_user_id: Option<i64>,
    debited_wallet_id: i64,
    credited_wallet_id: i64,
    currency: String,
    debited_amount: i64,
    fees_amount: i64,
    credited_amount: Option<i64>,
    status: Option<String>,
    result_code: Option<String>,
    result_message: Option<String>,
    execution_date: Option<NaiveDateTime>,
    tag: Option<String>,
    mangopay_created_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = transfers, treat_none_as_null = true)]
struct TransferFields {
    author_id: i64,
    credited_user_id: Option<i64>,
    debited_wallet_id: i64,
    credited_wallet_id: i64,
    currency: String,
    debited_amount: i64,
    fees_amount: i64,
    tag: Option<String>,
}

#[derive(AsChangeset, Default)]
#[diesel(table_name = transfers)]
struct TransferFromApi {
    status: Option<Option<String>>,
    result_code: Option<Option<String>>,
    result_message: Option<Option<String>>,
    credited_amount: Option<Option<i64>>,
    execution_date: Option<Option<NaiveDateTime>>,
    mangopay_created_at: Option<Option<NaiveDateTime>>,
    tag: Option<Option<String>>,
}

impl MangopayTransfer {
    fn fields(&self) -> TransferFields {
        TransferFields {
            author_id: self.author_id,
            credited_user_id: self.credited_user_id,
            debited_wallet_id: self.debited_wallet_id,
            credited_wallet_id: self.credited_wallet_id,
            currency: self.debited_funds.currency.to_string(),
            debited_amount: self.debited_funds.amount,
            fees_amount: self.fees.amount,
            tag: self.tag.clone(),
        }
    }
}

impl Resource for MangopayTransfer {
    const MODEL: &'static str = "MangopayTransfer";
    const TABLE: SyncTable = TRANSFERS;
    const UPDATABLE: bool = false;

    crate::sync::row_accessors!();
    fn validate(&self) -> Result<(), ValidationErrors> {
        MangopayTransfer::validate(self)
    }
    fn app_tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    fn load(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<Self>> {
        let row = transfers::table
            .find(id)
            .select(TransferRow::as_select())
            .first::<TransferRow>(conn)
            .optional()?;
        Ok(row.map(|r| {
            let currency = stored_currency(&r.currency);
            let facts = TransactionFacts::from_columns(
                &TransactionColumns {
                    status: r.status,
                    result_code: r.result_code,
                    result_message: r.result_message,
                    credited_amount: r.credited_amount,
                    execution_date: r.execution_date,
                    mangopay_created_at: r.mangopay_created_at,
                },
                currency,
            );
            MangopayTransfer {
                id: Some(r.id),
                author_id: r.author_id,
                credited_user_id: r.credited_user_id,
                debited_wallet_id: r.debited_wallet_id,
                credited_wallet_id: r.credited_wallet_id,
                debited_funds: Money::new(r.debited_amount, currency),
                fees: Money::new(r.fees_amount, currency),
                tag: r.tag,
                facts,
                parents: Parents::default(),
                sync: SyncInfo::default(),
            }
        }))
    }

    fn resolve(&mut self, conn: &mut AnyConnection) -> Result<(), Error> {
        self.parents = Parents {
            author: parent::user(conn, "author_id", self.author_id)?,
            credited_user: self
                .credited_user_id
                .map(|id| parent::user(conn, "credited_user_id", id))
                .transpose()?,
            debited_wallet: parent::wallet(conn, "debited_wallet_id", self.debited_wallet_id)?,
            credited_wallet: parent::wallet(conn, "credited_wallet_id", self.credited_wallet_id)?,
        };
        Ok(())
    }

    fn parents_ready(&self) -> Result<(), Error> {
        let p = &self.parents;
        p.author
            .ready(Self::MODEL, "author_id", "MangopayUser", self.author_id)?;
        if let (Some(user), Some(id)) = (&p.credited_user, self.credited_user_id) {
            user.ready(Self::MODEL, "credited_user_id", "MangopayUser", id)?;
        }
        p.debited_wallet.ready(
            Self::MODEL,
            "debited_wallet_id",
            "MangopayWallet",
            self.debited_wallet_id,
        )?;
        p.credited_wallet.ready(
            Self::MODEL,
            "credited_wallet_id",
            "MangopayWallet",
            self.credited_wallet_id,
        )?;
        let mut e = ValidationErrors::new();
        let currency = self.debited_funds.currency.as_str();
        parent::same_currency(&mut e, "debited_wallet_id", &p.debited_wallet, currency);
        parent::same_currency(&mut e, "credited_wallet_id", &p.credited_wallet, currency);
        // Mangopay refuses a transfer whose author does not own the debited wallet.
        parent::owned_by(
            &mut e,
            "author_id",
            &p.debited_wallet,
            self.author_id,
            "the debited wallet",
        );
        e.into_result().map_err(Error::Validation)
    }

    crate::models::field_writes!(transfers);

    fn apply_api_data(
        &self,
        conn: &mut AnyConnection,
        id: i64,
        p: &Value,
        scope: Scope,
    ) -> QueryResult<()> {
        let f = FactsFromApi::read(p);
        let tag = if scope == Scope::All {
            read::text(p, "Tag")
        } else {
            None
        };
        if f.is_empty() && tag.is_none() {
            return Ok(());
        }
        let changes = TransferFromApi {
            status: f.status,
            result_code: f.result_code,
            result_message: f.result_message,
            credited_amount: f.credited_amount,
            execution_date: f.execution_date,
            mangopay_created_at: f.mangopay_created_at,
            tag,
        };
        diesel::update(transfers::table.find(id))
            .set(&changes)
            .execute(conn)
            .map(drop)
    }

    fn create_request(&self, tag: Option<&str>) -> Result<ApiRequest, Error> {
        let p = &self.parents;
        let m = Self::MODEL;
        let author = p
            .author
            .created(m, "author_id", "MangopayUser", self.author_id)?;
        let credited_user = match (&p.credited_user, self.credited_user_id) {
            (Some(u), Some(id)) => Some(u.created(m, "credited_user_id", "MangopayUser", id)?),
            _ => None,
        };
        let debited = p.debited_wallet.created(
            m,
            "debited_wallet_id",
            "MangopayWallet",
            self.debited_wallet_id,
        )?;
        let credited = p.credited_wallet.created(
            m,
            "credited_wallet_id",
            "MangopayWallet",
            self.credited_wallet_id,
        )?;
        let mut b = CreateBody::new();
        b.put("AuthorId", Some(author))
            .put("CreditedUserId", credited_user)
            .put("DebitedFunds", Some(self.debited_funds.to_api()))
            .put("Fees", Some(self.fees.to_api()))
            .put("DebitedWalletId", Some(debited))
            .put("CreditedWalletId", Some(credited))
            .put("Tag", tag);
        Ok(ApiRequest {
            path: "transfers".into(),
            body: b.finish(),
        })
    }

    fn update_request(&self, _tag: Option<&str>) -> Result<UpdateRequest, Error> {
        Err(not_updatable(Self::MODEL, self.id))
    }

    fn view_path(&self, mangopay_id: &str) -> String {
        format!("transfers/{mangopay_id}")
    }

    fn listing(&self) -> Listing {
        Listing {
            path: format!(
                "wallets/{}/transactions",
                self.parents
                    .debited_wallet
                    .mangopay_id
                    .as_deref()
                    .unwrap_or_default()
            ),
            date_filters: true,
            filters: vec![("Type", "TRANSFER".into())],
            item_path: None,
            untagged: false,
        }
    }

    fn check_found(&self, found: &Value) -> Result<(), String> {
        check_transaction(
            found,
            "TRANSFER",
            self.parents.debited_wallet.mangopay_id.as_deref(),
            self.debited_funds,
        )?;
        let credited = self.parents.credited_wallet.mangopay_id.as_deref();
        match found.get("CreditedWalletId").and_then(Value::as_str) {
            Some(w) if Some(w) == credited => Ok(()),
            other => Err(format!("it credits {other:?}, not {credited:?}")),
        }
    }
}

/// The error of an update of an object Mangopay does not update.
pub(crate) fn not_updatable(model: &'static str, id: Option<i64>) -> Error {
    Error::WrongState {
        model,
        id: id.unwrap_or_default(),
        reason: "Mangopay does not update this kind of object".into(),
    }
}

/// Whether `found` is a transaction of `kind` debiting `wallet` with `funds`.
pub(crate) fn check_transaction(
    found: &Value,
    kind: &str,
    wallet: Option<&str>,
    funds: Money,
) -> Result<(), String> {
    match found.get("Type").and_then(Value::as_str) {
        Some(t) if t == kind => {}
        other => return Err(format!("it is a {other:?} transaction, not a {kind}")),
    }
    match found.get("DebitedWalletId").and_then(Value::as_str) {
        Some(w) if Some(w) == wallet => {}
        other => return Err(format!("it debits {other:?}, not {wallet:?}")),
    }
    match Money::from_api(found, "DebitedFunds") {
        Some(m) if m == funds => Ok(()),
        other => Err(format!("it debits {other:?}, not {funds}")),
    }
}
