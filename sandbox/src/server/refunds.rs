//! Refunds of pay-ins: create, view and list a pay-in's, answered with the Refund object
//! exactly as Mangopay's documentation shows it (`Type` `PAYOUT`, `Nature` `REFUND`).
//!
//! Only a `SUCCEEDED` pay-in is refunded. Without `DebitedFunds` and `Fees` the refund takes
//! what is left of the pay-in's `DebitedFunds` and gives its fees back (`Fees` negative, as
//! Mangopay writes a refund's fees); with them (both or neither) it refunds that part, never
//! more than is left after the `SUCCEEDED` refunds so far. The pay-in's wallet is debited
//! `DebitedFunds + Fees` (the funds less the fees given back) and the client's Fees Wallet gives
//! the fees back, under one lock; a refund the wallet cannot cover is created `FAILED` with
//! `001001` and moves nothing.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde::Serialize;
use serde_json::{Map, Value};

use super::Sandbox;
use super::error::{ApiError, json_response};
use super::ids;
use super::ledger::{self, Detail, Ledger, Money, Status, TransactionRecord, UNSUFFICIENT_BALANCE};
use super::transactions::{TransactionBase, TransactionFilter, list_response, visible};
use super::users::{JsonObject, ListQuery};
use super::validation::Fields;

/// What only a refund has.
#[derive(Debug, Clone)]
pub(crate) struct RefundDetail {
    initial_transaction_id: String,
}

/// `RefundReason` of a pay-in refund.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct RefundReason {
    refund_reason_message: Option<&'static str>,
    refund_reason_type: &'static str,
}

/// The Refund object, keys in the documentation's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct RefundView<'a> {
    #[serde(flatten)]
    base: TransactionBase<'a>,
    initial_transaction_id: &'a str,
    initial_transaction_type: &'static str,
    initial_transaction_nature: &'static str,
    refund_reason: RefundReason,
    statement_descriptor: Option<&'static str>,
}

impl TransactionRecord {
    fn refund_view(&self) -> Option<RefundView<'_>> {
        let detail = self.refund()?;
        Some(RefundView {
            base: self.base(),
            initial_transaction_id: &detail.initial_transaction_id,
            initial_transaction_type: "PAYIN",
            initial_transaction_nature: "REGULAR",
            refund_reason: RefundReason {
                refund_reason_message: None,
                refund_reason_type: "INITIALIZED_BY_CLIENT",
            },
            statement_descriptor: None,
        })
    }

    /// The refund as `GET /refunds/{Id}` answers it (`None` for any other transaction).
    pub(crate) fn refund_json(&self) -> Option<Value> {
        self.refund_view()
            .and_then(|view| serde_json::to_value(view).ok())
    }
}

/// The stored refund `id` as the API answers it, or 404.
fn refund_response(ledger: &Ledger, id: &str) -> Result<Response, ApiError> {
    ledger
        .transaction(id)
        .and_then(TransactionRecord::refund_view)
        .map(|view| json_response(StatusCode::OK, &view))
        .ok_or_else(|| ApiError::not_found("Refund", id))
}

/// What a refund takes, once its body is read: `None` for a full refund.
type Partial = Option<(Money, Money)>;

fn read_request(
    body: &Map<String, Value>,
    now: i64,
) -> Result<(String, Option<String>, Partial), ApiError> {
    let mut f = Fields::new(body, now);
    let tag = f.text("Tag", 0, 255, false);
    let author_id = f.text("AuthorId", 1, 255, true);
    let given = |key: &str| body.get(key).is_some_and(|v| !v.is_null());
    let partial = match (given("DebitedFunds"), given("Fees")) {
        (false, false) => None,
        (true, false) => {
            f.error("Fees", "if DebitedFunds are defined, Fees must be defined");
            None
        }
        (false, true) => {
            f.error(
                "DebitedFunds",
                "if Fees are defined, DebitedFunds must be defined",
            );
            None
        }
        (true, true) => {
            let debited = ledger::money(&mut f, body, "DebitedFunds");
            let fees = ledger::signed_money(&mut f, body, "Fees");
            if debited.as_ref().is_some_and(|d| d.amount < 1) {
                f.error(
                    "DebitedFunds.Amount",
                    "The field DebitedFunds.Amount must be at least 1.",
                );
            }
            debited.zip(fees)
        }
    };
    f.finish().map_err(ApiError::param_errors)?;
    let Some(author_id) = author_id else {
        unreachable!("required fields were checked");
    };
    Ok((author_id, tag, partial))
}

/// `(DebitedFunds, Fees)` of a refund of `payin`, given the `SUCCEEDED` refunds so far.
fn amounts(
    ledger: &Ledger,
    payin: &TransactionRecord,
    partial: Partial,
) -> Result<(Money, Money), ApiError> {
    let (refunded, fees_refunded) = ledger
        .transactions()
        .iter()
        .filter(|r| {
            r.status == Status::Succeeded
                && r.refund()
                    .is_some_and(|d| d.initial_transaction_id == payin.id)
        })
        .fold((0i64, 0i64), |(funds, fees), r| {
            (funds + r.debited_funds.amount, fees - r.fees.amount)
        });
    let left = payin.debited_funds.amount - refunded;
    let fees_left = payin.fees.amount - fees_refunded;
    let currency = &payin.debited_funds.currency;
    let Some((debited, fees)) = partial else {
        if left <= 0 {
            return Err(ApiError::invalid_action(
                "Transaction has already been successfully refunded",
            ));
        }
        let money = |amount| Money {
            currency: currency.clone(),
            amount,
        };
        return Ok((money(left), money(-fees_left)));
    };
    for (name, money) in [("DebitedFunds", &debited), ("Fees", &fees)] {
        if &money.currency != currency {
            return Err(ApiError::currency_incompatibility(format!(
                "The PayIn's currency {currency} and the {name}'s currency {} must be the same",
                money.currency
            )));
        }
    }
    if debited.amount > left {
        return Err(ApiError::param_error(
            "DebitedFunds",
            format!("The refund cannot exceed initial transaction amount: {left} left to refund"),
        ));
    }
    if -fees.amount > fees_left {
        return Err(ApiError::param_error(
            "Fees",
            format!(
                "The refunded fees cannot exceed initial fee amount: {fees_left} left to refund"
            ),
        ));
    }
    if debited.amount + fees.amount < 0 {
        return Err(ApiError::param_error(
            "Fees",
            "The refunded fees cannot exceed the DebitedFunds of the refund",
        ));
    }
    Ok((debited, fees))
}

/// `POST /v2.01/{ClientId}/payins/{PayInId}/refunds`. Unknown keys (the Python SDK's
/// `Payin`) are ignored.
pub(crate) async fn payins_refunds_create(
    State(sandbox): State<Sandbox>,
    Path((_client_id, payin_id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let now = sandbox.clock().now();
    let (author_id, tag, partial) = read_request(&body, now.timestamp())?;
    let id = format!("refund_m_{}", ids::ulid(now, &mut *sandbox.shared().rng()));

    let mut ledger = sandbox.shared().ledger();
    let payin = ledger
        .transaction(&payin_id)
        .filter(|r| r.payin().is_some())
        .ok_or_else(|| ApiError::not_found("PayIn", &payin_id))?;
    if payin.status != Status::Succeeded {
        return Err(ApiError::invalid_action(format!(
            "The PayIn is {}: only a SUCCEEDED PayIn can be refunded",
            payin.status.as_str()
        )));
    }
    if payin.author_id != author_id {
        return Err(ApiError::param_error(
            "AuthorId",
            "Author of the refund is not the author of the initial payin",
        ));
    }
    let (debited_funds, fees) = amounts(&ledger, payin, partial)?;
    let wallet_id = payin.credited_wallet_id.clone().unwrap_or_default();
    let mut record = TransactionRecord {
        id: id.clone(),
        tag,
        creation_date: now.timestamp(),
        created_at_ms: now.timestamp_millis(),
        author_id,
        credited_user_id: None,
        debited_funds,
        fees,
        status: Status::Created,
        result: None,
        execution_date: None,
        debited_wallet_id: Some(wallet_id.clone()),
        credited_wallet_id: None,
        detail: Detail::Refund(Box::new(RefundDetail {
            initial_transaction_id: payin_id,
        })),
    };
    let debit = record.debited_funds.amount + record.fees.amount;
    let balance = ledger.wallet(&wallet_id).map_or(0, |w| w.balance);
    if balance < debit {
        record.fail(UNSUFFICIENT_BALANCE.0, UNSUFFICIENT_BALANCE.1);
    } else {
        ledger.add_to_wallet(&wallet_id, -debit);
        ledger.add_fees(&record.fees.currency, record.fees.amount);
        record.succeed(now.timestamp());
    }
    ledger.insert_transaction(record);
    refund_response(&ledger, &id)
}

/// `GET /v2.01/{ClientId}/refunds/{RefundId}`.
pub(crate) async fn refunds_get(
    State(sandbox): State<Sandbox>,
    Path((_client_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    refund_response(&sandbox.shared().ledger(), &id)
}

/// `GET /v2.01/{ClientId}/payins/{PayInId}/refunds`: the pay-in's refunds, with the
/// transaction lists' filters (`Status`, `ResultCode`, `AfterDate`, `BeforeDate`), sorting and
/// pagination, without those created within the list lag.
pub(crate) async fn payins_refunds_list(
    State(sandbox): State<Sandbox>,
    Path((_client_id, payin_id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let query = ListQuery::from_uri(&uri)?;
    let filter = TransactionFilter::from_uri(&uri)?;
    let bounds = sandbox.knobs().date_filter_bounds();
    let visible = visible(&sandbox);
    let ledger = sandbox.shared().ledger();
    if ledger
        .transaction(&payin_id)
        .and_then(TransactionRecord::payin)
        .is_none()
    {
        return Err(ApiError::not_found("PayIn", &payin_id));
    }
    let mut refunds: Vec<&TransactionRecord> = ledger
        .transactions()
        .iter()
        .filter(|r| {
            r.refund()
                .is_some_and(|d| d.initial_transaction_id == payin_id)
                && visible(r.created_at_ms)
                && filter.matches(r, bounds)
        })
        .collect();
    // Creation order breaks ties between refunds created within the same second.
    refunds.sort_by_key(|r| r.creation_date);
    if query.is_descending() {
        refunds.reverse();
    }
    Ok(list_response(
        &query,
        &refunds,
        |r| r.refund_view(),
        &headers,
        &uri,
    ))
}

/// Refunds as the API shows them.
impl Sandbox {
    /// Every refund, oldest first, as `GET /refunds/{Id}` answers it.
    pub fn refunds(&self) -> Vec<Value> {
        let ledger = self.shared().ledger();
        ledger
            .transactions()
            .iter()
            .filter_map(TransactionRecord::refund_json)
            .collect()
    }
}
