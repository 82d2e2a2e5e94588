//! `MangopayRefund`: a pay-in paid back, fully or in part, mirrored from Mangopay's
//! [Refund object](https://docs.mangopay.com/api-reference/refunds/refund-object)
//! (`POST /payins/{PayInId}/refunds`).
//!
//! A full refund sends no amounts: Mangopay refunds what is left of the pay-in and its fees.
//! A partial one sends `DebitedFunds` and `Fees`; `Fees` is negative to give fees back, as
//! Mangopay has it. Before anything is sent, the refund is checked against the pay-in: it
//! must have `SUCCEEDED`, and the refunds not failed may never add up to more than it
//! debited, nor give back more fees than it took.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::Value;

use super::money::{self, Money};
use super::parent::{self, Parent};
use super::transaction::{FactsFromApi, TransactionColumns, TransactionFacts, stored_currency};
use super::transfer::check_transaction;
use super::types::TransactionStatus;
use super::user::validate_tag;
use crate::db::{AnyConnection, MultiBackend};
use crate::schema::{mangopay_pay_ins as pay_ins, mangopay_refunds as refunds};
use crate::sync::body::CreateBody;
use crate::sync::{ApiRequest, Listing, Resource, Scope, SyncInfo, SyncTable, UpdateRequest};
use crate::validate::{FieldErrorKind, ValidationErrors};
use crate::{Db, Error, MangopayClient};

/// The table holding every refund's sync columns.
pub const REFUNDS: SyncTable = SyncTable::new("mangopay_refunds");

/// A refund of a pay-in, kept in `mangopay_refunds`.
#[derive(Debug, Clone, PartialEq)]
pub struct MangopayRefund {
    /// The local id; `None` until the first save.
    pub id: Option<i64>,
    /// The local id of the [`MangopayPayIn`](crate::MangopayPayIn) refunded.
    pub pay_in_id: i64,
    /// `AuthorId`: the local id of the pay-in's author.
    pub author_id: i64,
    /// `DebitedFunds` and `Fees` of a partial refund; `None` for a full one.
    pub partial: Option<(Money, Money)>,
    /// `Tag`.
    pub tag: Option<String>,
    facts: RefundFacts,
    parents: Parents,
    sync: SyncInfo,
}

/// What Mangopay says about a refund.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RefundFacts {
    /// Status, result, credited funds, and the execution date Mangopay answered.
    pub transaction: TransactionFacts,
    /// `DebitedFunds`: taken from the credited wallet (for a full refund, as Mangopay
    /// decided).
    pub debited_funds: Option<Money>,
    /// `Fees`: negative for fees given back.
    pub fees: Option<Money>,
}

/// The pay-in, as a refund needs it.
#[derive(Debug, Clone, Default, PartialEq)]
struct PayInParent {
    parent: Parent,
    status: Option<String>,
    debited: i64,
    fees: i64,
    currency: String,
    /// The Mangopay id of the wallet the pay-in credited (the refund debits it).
    wallet: Option<String>,
    /// What other refunds not failed already take: debited funds and fees given back.
    /// `None`: one of them is a full refund.
    taken: Option<(i64, i64)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Parents {
    author: Parent,
    pay_in: PayInParent,
}

impl MangopayRefund {
    /// A full refund of the pay-in `pay_in_id` by its author `author_id` (local ids): all
    /// that is left of it, fees included. Not saved yet.
    pub fn full(pay_in_id: i64, author_id: i64) -> MangopayRefund {
        MangopayRefund {
            id: None,
            pay_in_id,
            author_id,
            partial: None,
            tag: None,
            facts: RefundFacts::default(),
            parents: Parents::default(),
            sync: SyncInfo::default(),
        }
    }

    /// A partial refund of `debited_funds` of the pay-in `pay_in_id`, with `fees` (negative
    /// to give fees back, zero to keep them). Not saved yet.
    pub fn partial(
        pay_in_id: i64,
        author_id: i64,
        debited_funds: Money,
        fees: Money,
    ) -> Result<MangopayRefund, ValidationErrors> {
        let refund = MangopayRefund {
            partial: Some((debited_funds, fees)),
            ..MangopayRefund::full(pay_in_id, author_id)
        };
        refund.validate().map(|()| refund)
    }

    /// The same refund with `tag` as its tag.
    pub fn with_tag(mut self, tag: impl Into<String>) -> MangopayRefund {
        self.tag = Some(tag.into());
        self
    }

    /// What Mangopay says about the refund.
    pub fn facts(&self) -> &RefundFacts {
        &self.facts
    }

    /// `Status`, as last recorded.
    pub fn status(&self) -> Option<&TransactionStatus> {
        self.facts.transaction.status.as_ref()
    }

    /// Every problem with the current field values, or `Ok`.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut e = ValidationErrors::new();
        if let Some((debited, fees)) = self.partial {
            e.check("debited_funds.amount", money::positive(debited.amount));
            e.check("debited_funds.currency", money::supported(debited.currency));
            if fees.amount > 0 {
                e.push(
                    "fees.amount",
                    FieldErrorKind::NotAllowed(format!(
                        "must be zero or negative (fees given back), not {}",
                        fees.amount
                    )),
                );
            }
            if fees.currency != debited.currency {
                e.push(
                    "fees.currency",
                    FieldErrorKind::NotAllowed(format!(
                        "must be the debited funds' currency ({}), not {}",
                        debited.currency, fees.currency
                    )),
                );
            }
        }
        e.check("tag", validate_tag(self.tag.as_deref()));
        e.into_result()
    }

    /// Creates a full refund of the pay-in `pay_in_id` by its author and says whether it
    /// succeeded, as django-mangopay's `create_simple` did; the refund (failed or not) is
    /// returned with it.
    pub async fn create_simple(
        db: &Db,
        client: &MangopayClient,
        pay_in_id: i64,
        author_id: i64,
    ) -> Result<(bool, MangopayRefund), Error> {
        let mut refund = MangopayRefund::full(pay_in_id, author_id);
        refund.create(db, client).await?;
        let succeeded = refund.status() == Some(&TransactionStatus::Succeeded);
        Ok((succeeded, refund))
    }

    /// The refunds of the pay-in `pay_in_id` (local id), oldest first.
    pub async fn for_pay_in(db: &Db, pay_in_id: i64) -> Result<Vec<MangopayRefund>, Error> {
        crate::sync::get_where(db, move |conn| {
            refunds::table
                .filter(refunds::pay_in_id.eq(pay_in_id))
                .order(refunds::id)
                .select(refunds::id)
                .load::<i64>(conn)
        })
        .await
    }

    /// Whether the pay-in can take this refund: `SUCCEEDED`, in the refund's currency, and
    /// with enough left to refund once the other refunds not failed are counted.
    fn check_refundable(&self) -> Result<(), Error> {
        let p = &self.parents.pay_in;
        let pay_in_id = self.pay_in_id;
        let unusable = |reason: String| Error::ParentNotUsable {
            model: <Self as Resource>::MODEL,
            field: "pay_in_id",
            parent: "MangopayPayIn",
            parent_id: pay_in_id,
            reason,
        };
        match p.status.as_deref() {
            Some("SUCCEEDED") => {}
            Some(other) => {
                return Err(unusable(format!(
                    "it is {other}: only a SUCCEEDED pay-in is refunded"
                )));
            }
            None => return Err(unusable("its status is not known yet".into())),
        }
        let mut e = ValidationErrors::new();
        let Some((taken_debited, taken_fees)) = p.taken else {
            e.push(
                "pay_in_id",
                FieldErrorKind::NotAllowed("the pay-in already has a full refund".into()),
            );
            return Err(Error::Validation(e));
        };
        let left = p.debited - taken_debited;
        let fees_left = p.fees - taken_fees;
        match self.partial {
            None if left <= 0 => e.push(
                "pay_in_id",
                FieldErrorKind::NotAllowed("nothing is left to refund".into()),
            ),
            None => {}
            Some((debited, fees)) => {
                if debited.currency.as_str() != p.currency {
                    e.push(
                        "debited_funds.currency",
                        FieldErrorKind::NotAllowed(format!(
                            "must be the pay-in's currency ({}), not {}",
                            p.currency, debited.currency
                        )),
                    );
                }
                if debited.amount > left {
                    e.push(
                        "debited_funds.amount",
                        FieldErrorKind::NotAllowed(format!(
                            "is above what is left to refund of the pay-in ({left} of {})",
                            p.debited
                        )),
                    );
                }
                if -fees.amount > fees_left {
                    e.push(
                        "fees.amount",
                        FieldErrorKind::NotAllowed(format!(
                            "gives back more fees than are left to give back ({fees_left} of {})",
                            p.fees
                        )),
                    );
                }
            }
        }
        e.into_result().map_err(Error::Validation)
    }
}

crate::models::resource_methods!(MangopayRefund, "refund");

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = refunds)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite, MultiBackend))]
struct RefundRow {
    id: i64,
    pay_in_id: i64,
    author_id: i64,
    currency: String,
    debited_amount: Option<i64>,
    fees_amount: Option<i64>,
    partial: bool,
    credited_amount: Option<i64>,
    status: Option<String>,
    result_code: Option<String>,
    result_message: Option<String>,
    execution_date: Option<NaiveDateTime>,
    tag: Option<String>,
    mangopay_created_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = refunds, treat_none_as_null = true)]
struct RefundFields {
    pay_in_id: i64,
    author_id: i64,
    currency: String,
    debited_amount: Option<i64>,
    fees_amount: Option<i64>,
    partial: bool,
    tag: Option<String>,
}

#[derive(AsChangeset, Default)]
#[diesel(table_name = refunds)]
struct RefundFromApi {
    status: Option<Option<String>>,
    result_code: Option<Option<String>>,
    result_message: Option<Option<String>>,
    credited_amount: Option<Option<i64>>,
    execution_date: Option<Option<NaiveDateTime>>,
    mangopay_created_at: Option<Option<NaiveDateTime>>,
    debited_amount: Option<Option<i64>>,
    fees_amount: Option<Option<i64>>,
    tag: Option<Option<String>>,
}

impl MangopayRefund {
    fn fields(&self) -> RefundFields {
        let currency = match self.partial {
            Some((debited, _)) => debited.currency.to_string(),
            None => self.parents.pay_in.currency.clone(),
        };
        RefundFields {
            pay_in_id: self.pay_in_id,
            author_id: self.author_id,
            currency,
            debited_amount: self.partial.map(|(d, _)| d.amount),
            fees_amount: self.partial.map(|(_, f)| f.amount),
            partial: self.partial.is_some(),
            tag: self.tag.clone(),
        }
    }
}

/// The pay-in `id` as a refund `refund_id` needs it, with what its other refunds took. A
/// write locks the pay-in first ([`Resource::lock_parents`]).
fn pay_in_parent(
    conn: &mut AnyConnection,
    id: i64,
    refund_id: Option<i64>,
) -> Result<PayInParent, Error> {
    let found = pay_ins::table
        .find(id)
        .select((
            pay_ins::mangopay_id,
            pay_ins::status,
            pay_ins::debited_amount,
            pay_ins::fees_amount,
            pay_ins::currency,
            pay_ins::author_id,
        ))
        .first::<(Option<String>, Option<String>, i64, i64, String, i64)>(conn)
        .optional()?;
    let Some((mangopay_id, status, mut debited, mut fees, currency, author)) = found else {
        let mut e = ValidationErrors::new();
        e.push(
            "pay_in_id",
            FieldErrorKind::NotAllowed(format!("there is no MangopayPayIn with id {id}")),
        );
        return Err(Error::Validation(e));
    };
    // What the pay-in actually took, as Mangopay last said: a bank wire's received funds
    // may differ from those declared.
    let payload = crate::sync::store::load(conn, super::pay_in::PAY_INS, id)?
        .and_then(|row| row.api_payload)
        .and_then(|text| serde_json::from_str::<Value>(&text).ok());
    if status.as_deref() == Some("SUCCEEDED")
        && let Some((d, f)) = payload
            .as_ref()
            .and_then(|p| super::pay_in::settled_amounts(p, stored_currency(&currency)))
    {
        (debited, fees) = (d, f);
    }
    // Every other refund of the pay-in that did not fail (sent, in flight or not sent yet). A
    // row `failed` while it still holds a key waits for an operator: Mangopay may have made
    // its refund, so it counts too.
    let others = refunds::table
        .filter(refunds::pay_in_id.eq(id))
        .filter(
            refunds::sync_state
                .ne("failed")
                .or(refunds::mangopay_id.is_not_null())
                .or(refunds::create_idempotency_key.is_not_null()),
        )
        .filter(refunds::status.is_null().or(refunds::status.ne("FAILED")))
        .select((
            refunds::id,
            refunds::partial,
            refunds::debited_amount,
            refunds::fees_amount,
        ))
        .load::<(i64, bool, Option<i64>, Option<i64>)>(conn)?;
    let mut taken = Some((0, 0));
    for (other, partial, debited, fees) in others {
        if Some(other) == refund_id {
            continue;
        }
        taken = match (taken, partial) {
            (Some((d, f)), true) => Some((
                d + debited.unwrap_or_default(),
                f + fees.unwrap_or_default().min(0).abs(),
            )),
            _ => None,
        };
    }
    Ok(PayInParent {
        parent: Parent {
            mangopay_id,
            currency: Some(currency.clone()),
            owner_id: Some(author),
            unusable: None,
        },
        status,
        debited,
        fees,
        currency,
        wallet: payload
            .as_ref()
            .and_then(|p| p.get("CreditedWalletId"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        taken,
    })
}

impl Resource for MangopayRefund {
    const MODEL: &'static str = "MangopayRefund";
    const TABLE: SyncTable = REFUNDS;
    const UPDATABLE: bool = false;

    crate::sync::row_accessors!();
    fn validate(&self) -> Result<(), ValidationErrors> {
        MangopayRefund::validate(self)
    }
    fn app_tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    fn load(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<Self>> {
        let row = refunds::table
            .find(id)
            .select(RefundRow::as_select())
            .first::<RefundRow>(conn)
            .optional()?;
        Ok(row.map(|r| {
            let currency = stored_currency(&r.currency);
            let money = |a: Option<i64>| a.map(|a| Money::new(a, currency));
            let partial = if r.partial {
                Some((
                    Money::new(r.debited_amount.unwrap_or_default(), currency),
                    Money::new(r.fees_amount.unwrap_or_default(), currency),
                ))
            } else {
                None
            };
            MangopayRefund {
                id: Some(r.id),
                pay_in_id: r.pay_in_id,
                author_id: r.author_id,
                partial,
                tag: r.tag,
                facts: RefundFacts {
                    transaction: TransactionFacts::from_columns(
                        &TransactionColumns {
                            status: r.status,
                            result_code: r.result_code,
                            result_message: r.result_message,
                            credited_amount: r.credited_amount,
                            execution_date: r.execution_date,
                            mangopay_created_at: r.mangopay_created_at,
                        },
                        currency,
                    ),
                    debited_funds: money(r.debited_amount),
                    fees: money(r.fees_amount),
                },
                parents: Parents::default(),
                sync: SyncInfo::default(),
            }
        }))
    }

    const LOCKS_PARENTS: bool = true;

    /// Locks the pay-in's row until the transaction ends: two refunds of one pay-in are
    /// checked one after the other.
    fn lock_parents(&self, conn: &mut AnyConnection) -> QueryResult<()> {
        diesel::update(pay_ins::table.find(self.pay_in_id))
            .set(pay_ins::updated_at.eq(pay_ins::updated_at))
            .execute(conn)
            .map(drop)
    }

    fn resolve(&mut self, conn: &mut AnyConnection) -> Result<(), Error> {
        self.parents = Parents {
            author: parent::user(conn, "author_id", self.author_id)?,
            pay_in: pay_in_parent(conn, self.pay_in_id, self.id)?,
        };
        Ok(())
    }

    /// A refund not sent yet is checked against the pay-in before it is written.
    fn check_before_save(&self) -> Result<(), Error> {
        self.check_refundable()
    }

    fn parents_ready(&self) -> Result<(), Error> {
        let p = &self.parents;
        p.author
            .ready(Self::MODEL, "author_id", "MangopayUser", self.author_id)?;
        p.pay_in
            .parent
            .ready(Self::MODEL, "pay_in_id", "MangopayPayIn", self.pay_in_id)?;
        let mut e = ValidationErrors::new();
        parent::owned_by(
            &mut e,
            "author_id",
            &p.pay_in.parent,
            self.author_id,
            "the pay-in (as its author)",
        );
        e.into_result().map_err(Error::Validation)?;
        self.check_refundable()
    }

    crate::models::field_writes!(refunds);

    fn apply_api_data(
        &self,
        conn: &mut AnyConnection,
        id: i64,
        p: &Value,
        scope: Scope,
    ) -> QueryResult<()> {
        let f = FactsFromApi::read(p);
        let amount = |key: &str| {
            p.get(key)
                .map(|_| Money::from_api(p, key).map(|m| m.amount))
        };
        let changes = RefundFromApi {
            status: f.status,
            result_code: f.result_code,
            result_message: f.result_message,
            credited_amount: f.credited_amount,
            execution_date: f.execution_date,
            mangopay_created_at: f.mangopay_created_at,
            // What a full refund took is known from the answer; a partial one keeps its own.
            debited_amount: if self.partial.is_none() {
                amount("DebitedFunds")
            } else {
                None
            },
            fees_amount: if self.partial.is_none() {
                amount("Fees")
            } else {
                None
            },
            tag: if scope == Scope::All {
                super::types::read::text(p, "Tag")
            } else {
                None
            },
        };
        diesel::update(refunds::table.find(id))
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
        let pay_in = p
            .pay_in
            .parent
            .created(m, "pay_in_id", "MangopayPayIn", self.pay_in_id)?;
        let mut b = CreateBody::new();
        b.put("AuthorId", Some(author));
        if let Some((debited, fees)) = self.partial {
            b.put("DebitedFunds", Some(debited.to_api()))
                .put("Fees", Some(fees.to_api()));
        }
        b.put("Tag", tag);
        Ok(ApiRequest {
            path: format!("payins/{pay_in}/refunds"),
            body: b.finish(),
        })
    }

    fn update_request(&self, _tag: Option<&str>) -> Result<UpdateRequest, Error> {
        Err(super::transfer::not_updatable(Self::MODEL, self.id))
    }

    fn view_path(&self, mangopay_id: &str) -> String {
        format!("refunds/{mangopay_id}")
    }

    fn listing(&self) -> Listing {
        Listing {
            path: format!(
                "payins/{}/refunds",
                self.parents
                    .pay_in
                    .parent
                    .mangopay_id
                    .as_deref()
                    .unwrap_or_default()
            ),
            date_filters: true,
            filters: Vec::new(),
            item_path: None,
            untagged: false,
        }
    }

    fn check_found(&self, found: &Value) -> Result<(), String> {
        match found.get("Nature").and_then(Value::as_str) {
            Some("REFUND") => {}
            other => return Err(format!("its nature is {other:?}, not REFUND")),
        }
        let pay_in = self.parents.pay_in.parent.mangopay_id.as_deref();
        match found.get("InitialTransactionId").and_then(Value::as_str) {
            Some(t) if Some(t) == pay_in => {}
            other => return Err(format!("it refunds {other:?}, not {pay_in:?}")),
        }
        match self.partial {
            Some((debited, _)) => check_transaction(
                found,
                "PAYOUT",
                self.parents.pay_in.wallet.as_deref(),
                debited,
            ),
            None => Ok(()),
        }
    }
}
