//! What transfers and pay-outs share: Mangopay's transaction facts (status, result, credited
//! funds, dates), the checks on their amounts, and how an answer is read.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

use super::money::{self, Money};
use super::types::{TransactionStatus, read};
use crate::validate::{CurrencyCode, FieldErrorKind, ValidationErrors};

/// What Mangopay says about a transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TransactionFacts {
    /// `Status`.
    pub status: Option<TransactionStatus>,
    /// `ResultCode` (`000000` for success; Mangopay's error codes otherwise).
    pub result_code: Option<String>,
    /// `ResultMessage`.
    pub result_message: Option<String>,
    /// `CreditedFunds`: the debited funds less the fees.
    pub credited_funds: Option<Money>,
    /// `ExecutionDate`: when it succeeded.
    pub execution_date: Option<DateTime<Utc>>,
    /// `CreationDate`.
    pub mangopay_created_at: Option<DateTime<Utc>>,
}

impl TransactionFacts {
    /// The facts from their columns.
    pub(crate) fn from_columns(c: &TransactionColumns, currency: CurrencyCode) -> Self {
        let utc = |t: Option<NaiveDateTime>| t.map(|t| t.and_utc());
        TransactionFacts {
            status: c.status.as_deref().map(TransactionStatus::from_api),
            result_code: c.result_code.clone(),
            result_message: c.result_message.clone(),
            credited_funds: c.credited_amount.map(|a| Money::new(a, currency)),
            execution_date: utc(c.execution_date),
            mangopay_created_at: utc(c.mangopay_created_at),
        }
    }
}

/// The facts as stored.
#[derive(Debug, Clone, Default)]
pub(crate) struct TransactionColumns {
    pub status: Option<String>,
    pub result_code: Option<String>,
    pub result_message: Option<String>,
    pub credited_amount: Option<i64>,
    pub execution_date: Option<NaiveDateTime>,
    pub mangopay_created_at: Option<NaiveDateTime>,
}

/// What an answer says about the facts: the outer `Option` is `None` for an absent key (the
/// column is left alone).
#[derive(Debug, Clone, Default)]
pub(crate) struct FactsFromApi {
    pub status: Option<Option<String>>,
    pub result_code: Option<Option<String>>,
    pub result_message: Option<Option<String>>,
    pub credited_amount: Option<Option<i64>>,
    pub execution_date: Option<Option<NaiveDateTime>>,
    pub mangopay_created_at: Option<Option<NaiveDateTime>>,
}

impl FactsFromApi {
    /// Reads the facts of a transaction object.
    pub(crate) fn read(p: &Value) -> FactsFromApi {
        FactsFromApi {
            status: read::text(p, "Status"),
            result_code: read::text(p, "ResultCode"),
            result_message: read::text(p, "ResultMessage"),
            credited_amount: p
                .get("CreditedFunds")
                .map(|_| Money::from_api(p, "CreditedFunds").map(|m| m.amount)),
            execution_date: read::timestamp(p, "ExecutionDate"),
            mangopay_created_at: read::timestamp(p, "CreationDate"),
        }
    }

    /// Whether the answer said anything about the facts.
    pub(crate) fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.result_code.is_none()
            && self.result_message.is_none()
            && self.credited_amount.is_none()
            && self.execution_date.is_none()
            && self.mangopay_created_at.is_none()
    }
}

/// The checks every money movement makes on its own amounts: debited funds above zero, fees
/// not negative and not above them, one currency for both.
pub(crate) fn check_amounts(e: &mut ValidationErrors, debited: Money, fees: Money) {
    e.check("debited_funds.amount", money::positive(debited.amount));
    e.check("fees.amount", money::fees(fees.amount, debited.amount));
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

/// The currency of a stored row, kept as it came if this crate's ISO table lacks it.
pub(crate) fn stored_currency(code: &str) -> CurrencyCode {
    CurrencyCode::from_api(code).unwrap_or(CurrencyCode::UNKNOWN)
}
