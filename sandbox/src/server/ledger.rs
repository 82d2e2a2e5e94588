//! The money ledger: wallets, transfers, pay-outs, pay-ins and refunds behind one lock, so
//! that a transfer's debit and credit (or a pay-out's debit and its return on failure) happen
//! together, and the client's Fees Wallet balances. Cards live here too ([`CardStore`]), so
//! that a pay-in and the `Validity` of its card change together. Pay-outs due by
//! [`crate::Knobs::set_payout_settle_after`] and pay-ins due by
//! [`crate::Knobs::set_payin_settle_after`] are settled lazily, whenever the ledger is read.
//!
//! Amounts are integers in the currency's minor unit, as on the wire.

use std::collections::{BTreeMap, HashMap};
use std::sync::MutexGuard;

use serde::Serialize;
use serde_json::{Map, Value};

use super::cards::CardStore;
use super::knobs::{Knobs, PayoutOutcome};
use super::payins::PayInDetail;
use super::refunds::RefundDetail;
use super::state::Shared;
use super::validation::Fields;

/// The currencies Mangopay lists as supported across its features (API reference, "Data
/// formats").
pub(crate) const CURRENCIES: [&str; 15] = [
    "AED", "AUD", "CAD", "CHF", "CZK", "DKK", "EUR", "GBP", "HKD", "JPY", "NOK", "PLN", "SEK",
    "USD", "ZAR",
];

/// The result of a transaction that went through.
pub(crate) const SUCCESS: (&str, &str) = ("000000", "Success");
/// The result of a transaction the debited wallet cannot cover.
pub(crate) const UNSUFFICIENT_BALANCE: (&str, &str) = ("001001", "Unsufficient wallet balance");

/// An amount of money: `{"Currency": "EUR", "Amount": 1260}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Money {
    pub(crate) currency: String,
    pub(crate) amount: i64,
}

/// The value at `key` unless it is absent, `null` or `""`.
fn present<'a>(input: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    match input.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(value) => Some(value),
    }
}

/// A currency code among [`CURRENCIES`] (any case, returned in upper case); `name` is the
/// field named in the errors.
pub(crate) fn currency(
    f: &mut Fields<'_>,
    input: &Map<String, Value>,
    key: &str,
    name: &str,
) -> Option<String> {
    let code = match present(input, key) {
        None => {
            f.missing(name);
            return None;
        }
        Some(Value::String(code)) => code,
        Some(_) => {
            f.error(name, format!("The field {name} must be a string."));
            return None;
        }
    };
    let upper = code.to_ascii_uppercase();
    if CURRENCIES.contains(&upper.as_str()) {
        Some(upper)
    } else {
        f.error(
            name,
            format!("Currency: The currency {code} is not available"),
        );
        None
    }
}

/// A non-negative integer amount, sent as a JSON number without fraction or as a numeric
/// string.
pub(crate) fn amount(
    f: &mut Fields<'_>,
    input: &Map<String, Value>,
    key: &str,
    name: &str,
) -> Option<i64> {
    match signed_amount(f, input, key, name)? {
        amount if amount >= 0 => Some(amount),
        _ => {
            f.error(name, format!("The field {name} cannot be negative."));
            None
        }
    }
}

/// An integer amount that may be negative (the `Fees` of a refund), sent as a JSON number
/// without fraction or as a numeric string.
pub(crate) fn signed_amount(
    f: &mut Fields<'_>,
    input: &Map<String, Value>,
    key: &str,
    name: &str,
) -> Option<i64> {
    let parsed = match present(input, key) {
        None => {
            f.missing(name);
            return None;
        }
        Some(Value::Number(n)) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|x| x.fract() == 0.0 && x.abs() < 9.0e15)
                .map(|x| x as i64)
        }),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        Some(_) => None,
    };
    match parsed {
        Some(amount) => Some(amount),
        None => {
            f.error(name, format!("The field {name} must be an integer."));
            None
        }
    }
}

/// A money object at `key` (`DebitedFunds`, `Fees`), its parts named `DebitedFunds.Currency`
/// and `DebitedFunds.Amount` in the errors.
pub(crate) fn money(f: &mut Fields<'_>, input: &Map<String, Value>, key: &str) -> Option<Money> {
    money_with(f, input, key, amount)
}

/// A money object whose amount may be negative (the `Fees` of a refund).
pub(crate) fn signed_money(
    f: &mut Fields<'_>,
    input: &Map<String, Value>,
    key: &str,
) -> Option<Money> {
    money_with(f, input, key, signed_amount)
}

type AmountReader = fn(&mut Fields<'_>, &Map<String, Value>, &str, &str) -> Option<i64>;

fn money_with(
    f: &mut Fields<'_>,
    input: &Map<String, Value>,
    key: &str,
    read_amount: AmountReader,
) -> Option<Money> {
    let object = match present(input, key) {
        None => {
            f.missing(key);
            return None;
        }
        Some(Value::Object(object)) => object,
        Some(_) => {
            f.error(
                key,
                format!("The field {key} must be an object with a Currency and an Amount."),
            );
            return None;
        }
    };
    let currency = currency(f, object, "Currency", &format!("{key}.Currency"));
    let amount = read_amount(f, object, "Amount", &format!("{key}.Amount"));
    Some(Money {
        currency: currency?,
        amount: amount?,
    })
}

/// `Status` of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Created,
    Succeeded,
    Failed,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Created => "CREATED",
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
        }
    }
}

/// One stored wallet.
#[derive(Debug, Clone)]
pub(crate) struct WalletRecord {
    pub(crate) id: String,
    pub(crate) owner: String,
    pub(crate) currency: String,
    pub(crate) description: String,
    pub(crate) tag: Option<String>,
    pub(crate) balance: i64,
    pub(crate) creation_date: i64,
    /// The creation instant in milliseconds of the sandbox clock (for the list lag).
    pub(crate) created_at_ms: i64,
}

/// `{"Code": ..., "Message": ...}`: a pay-out's `FallbackReason`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Reason {
    pub(crate) code: String,
    pub(crate) message: String,
}

/// A pay-out's `PaymentRef`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PaymentRef {
    pub(crate) reason_type: String,
    pub(crate) reference_id: String,
}

/// What only a transfer has.
#[derive(Debug, Clone)]
pub(crate) struct TransferDetail {
    pub(crate) sca_context: Option<String>,
}

/// What only a pay-out has.
#[derive(Debug, Clone)]
pub(crate) struct PayoutDetail {
    pub(crate) bank_account_id: String,
    pub(crate) bank_wire_ref: Option<String>,
    /// `PayoutModeRequested` as sent (`ModeRequested`).
    pub(crate) mode_requested: Option<String>,
    /// The mode the pay-out goes (or went) by: `STANDARD`, `INSTANT_PAYMENT` or `RTGS_PAYMENT`.
    pub(crate) mode: &'static str,
    /// Whether `ModeApplied` still shows `PENDING_RESPONSE` (until the pay-out settles, unless
    /// the mode was decided at creation, as on a fallback).
    pub(crate) mode_pending: bool,
    pub(crate) fallback_reason: Option<Reason>,
    pub(crate) end_to_end_id: String,
    pub(crate) payment_ref: Option<PaymentRef>,
}

/// The kind-specific part of a transaction.
#[derive(Debug, Clone)]
pub(crate) enum Detail {
    Transfer(TransferDetail),
    Payout(Box<PayoutDetail>),
    PayIn(PayInDetail),
    Refund(Box<RefundDetail>),
}

/// One stored transaction: transfer, pay-out, pay-in or refund.
#[derive(Debug, Clone)]
pub(crate) struct TransactionRecord {
    pub(crate) id: String,
    pub(crate) tag: Option<String>,
    pub(crate) creation_date: i64,
    /// The creation instant in milliseconds of the sandbox clock (list lag, settle delay).
    pub(crate) created_at_ms: i64,
    pub(crate) author_id: String,
    pub(crate) credited_user_id: Option<String>,
    pub(crate) debited_funds: Money,
    pub(crate) fees: Money,
    pub(crate) status: Status,
    pub(crate) result: Option<(String, String)>,
    pub(crate) execution_date: Option<i64>,
    /// `None` for a pay-in, which debits no wallet.
    pub(crate) debited_wallet_id: Option<String>,
    pub(crate) credited_wallet_id: Option<String>,
    pub(crate) detail: Detail,
}

impl TransactionRecord {
    /// `Type`: `TRANSFER`, `PAYOUT` or `PAYIN`; a refund of a pay-in is a `PAYOUT`, as
    /// Mangopay shows it.
    pub(crate) fn kind(&self) -> &'static str {
        match self.detail {
            Detail::Transfer(_) => "TRANSFER",
            Detail::Payout(_) | Detail::Refund(_) => "PAYOUT",
            Detail::PayIn(_) => "PAYIN",
        }
    }

    /// `Nature`: `REFUND` for a refund, `REGULAR` for every other transaction.
    pub(crate) fn nature(&self) -> &'static str {
        match self.detail {
            Detail::Refund(_) => "REFUND",
            _ => "REGULAR",
        }
    }

    /// `CreditedFunds` = `DebitedFunds` - `Fees`.
    pub(crate) fn credited_funds(&self) -> Money {
        Money {
            currency: self.debited_funds.currency.clone(),
            amount: self.debited_funds.amount - self.fees.amount,
        }
    }

    pub(crate) fn payout(&self) -> Option<&PayoutDetail> {
        match &self.detail {
            Detail::Payout(detail) => Some(detail),
            _ => None,
        }
    }

    pub(crate) fn payin(&self) -> Option<&PayInDetail> {
        match &self.detail {
            Detail::PayIn(detail) => Some(detail),
            _ => None,
        }
    }

    pub(crate) fn refund(&self) -> Option<&RefundDetail> {
        match &self.detail {
            Detail::Refund(detail) => Some(detail),
            _ => None,
        }
    }

    /// Marks the transaction as gone through at `at` (Unix seconds).
    pub(crate) fn succeed(&mut self, at: i64) {
        self.status = Status::Succeeded;
        self.result = Some((SUCCESS.0.to_owned(), SUCCESS.1.to_owned()));
        self.execution_date = Some(at);
    }

    /// Marks the transaction as failed with this result.
    pub(crate) fn fail(&mut self, code: &str, message: &str) {
        self.status = Status::Failed;
        self.result = Some((code.to_owned(), message.to_owned()));
        self.execution_date = None;
    }
}

/// Why a control request could not settle a pay-out or a pay-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SettleError {
    Unknown,
    NotCreated(Status),
    /// An amount received, for a pay-in that is not a bank wire.
    NotBankWire,
}

/// Wallets, transactions, cards and the client's fees, in creation order, indexed by id.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    wallets: Vec<WalletRecord>,
    wallet_index: HashMap<String, usize>,
    transactions: Vec<TransactionRecord>,
    transaction_index: HashMap<String, usize>,
    /// Pay-outs still `CREATED`, oldest first.
    pending_payouts: Vec<usize>,
    /// Pay-ins still `CREATED`, oldest first.
    pub(crate) pending_payins: Vec<usize>,
    /// The client's Fees Wallet balance per currency.
    fees: BTreeMap<String, i64>,
    /// Card registrations, the tokens issued for them, and cards.
    pub(crate) cards: CardStore,
}

impl Ledger {
    pub(crate) fn insert_wallet(&mut self, record: WalletRecord) {
        self.wallet_index
            .insert(record.id.clone(), self.wallets.len());
        self.wallets.push(record);
    }

    pub(crate) fn wallet(&self, id: &str) -> Option<&WalletRecord> {
        self.wallet_index.get(id).map(|&i| &self.wallets[i])
    }

    pub(crate) fn wallet_mut(&mut self, id: &str) -> Option<&mut WalletRecord> {
        self.wallet_index.get(id).map(|&i| &mut self.wallets[i])
    }

    /// All wallets, oldest first.
    pub(crate) fn wallets(&self) -> &[WalletRecord] {
        &self.wallets
    }

    /// Stores a transaction whose money movements were already booked.
    pub(crate) fn insert_transaction(&mut self, record: TransactionRecord) {
        let index = self.transactions.len();
        if record.status == Status::Created {
            if record.payout().is_some() {
                self.pending_payouts.push(index);
            } else if record.payin().is_some() {
                self.pending_payins.push(index);
            }
        }
        self.transaction_index.insert(record.id.clone(), index);
        self.transactions.push(record);
    }

    pub(crate) fn transaction(&self, id: &str) -> Option<&TransactionRecord> {
        self.transaction_index
            .get(id)
            .map(|&i| &self.transactions[i])
    }

    /// The position of transaction `id` in [`Ledger::transactions`].
    pub(crate) fn transaction_index(&self, id: &str) -> Option<usize> {
        self.transaction_index.get(id).copied()
    }

    pub(crate) fn transaction_at_mut(&mut self, index: usize) -> &mut TransactionRecord {
        &mut self.transactions[index]
    }

    /// Every transaction, oldest first.
    pub(crate) fn transactions(&self) -> &[TransactionRecord] {
        &self.transactions
    }

    /// The client's Fees Wallet balance in `currency`.
    pub(crate) fn fees_balance(&self, currency: &str) -> i64 {
        self.fees.get(currency).copied().unwrap_or(0)
    }

    /// Adds `amount` (negative to take) to the balance of wallet `id`, if there is one
    /// (saturating).
    pub(crate) fn add_to_wallet(&mut self, id: &str, amount: i64) {
        if let Some(wallet) = self.wallet_mut(id) {
            wallet.balance = wallet.balance.saturating_add(amount);
        }
    }

    /// Adds `amount` (negative to take back) to the client's Fees Wallet in `currency`.
    pub(crate) fn add_fees(&mut self, currency: &str, amount: i64) {
        let balance = self.fees.entry(currency.to_owned()).or_insert(0);
        *balance = balance.saturating_add(amount);
    }

    /// Settles the `CREATED` pay-out at `index` as `outcome` says, at `at` (Unix seconds): on
    /// a failure its debited funds go back to its wallet and its fees leave the Fees Wallet.
    fn settle_at(&mut self, index: usize, outcome: &PayoutOutcome, at: i64) {
        let record = &mut self.transactions[index];
        if let Detail::Payout(detail) = &mut record.detail {
            detail.mode_pending = false;
        }
        match outcome {
            PayoutOutcome::Succeeded => record.succeed(at),
            PayoutOutcome::Failed {
                result_code,
                result_message,
            } => {
                record.fail(result_code, result_message);
                let wallet_id = record.debited_wallet_id.clone().unwrap_or_default();
                let debited = record.debited_funds.clone();
                let fees = record.fees.clone();
                self.add_to_wallet(&wallet_id, debited.amount);
                self.add_fees(&fees.currency, -fees.amount);
            }
        }
        self.pending_payouts.retain(|&i| i != index);
    }

    /// Settles the pay-outs created at least [`Knobs::payout_settle_after`] before `now_ms`
    /// (sandbox clock) as [`Knobs::payout_outcome`] says, each at the instant it became due,
    /// and the pay-ins due by [`Knobs::payin_settle_after`] likewise. No delay set: nothing
    /// settles by itself.
    pub(crate) fn settle_due(&mut self, now_ms: i64, knobs: &Knobs) {
        self.settle_payins_due(now_ms, knobs);
        if self.pending_payouts.is_empty() {
            return;
        }
        let Some(after) = knobs.payout_settle_after() else {
            return;
        };
        let after_ms = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
        let due: Vec<(usize, i64)> = self
            .pending_payouts
            .iter()
            .filter_map(|&i| {
                let due_at = self.transactions[i].created_at_ms.saturating_add(after_ms);
                (due_at <= now_ms).then_some((i, due_at))
            })
            .collect();
        if due.is_empty() {
            return;
        }
        let outcome = knobs.payout_outcome();
        for (index, due_at_ms) in due {
            self.settle_at(index, &outcome, due_at_ms.div_euclid(1000));
        }
    }

    /// Settles the pay-out `id` now (a control request).
    pub(crate) fn settle(
        &mut self,
        id: &str,
        outcome: &PayoutOutcome,
        now: i64,
    ) -> Result<&TransactionRecord, SettleError> {
        let index = *self
            .transaction_index
            .get(id)
            .filter(|&&i| self.transactions[i].payout().is_some())
            .ok_or(SettleError::Unknown)?;
        let status = self.transactions[index].status;
        if status != Status::Created {
            return Err(SettleError::NotCreated(status));
        }
        self.settle_at(index, outcome, now);
        Ok(&self.transactions[index])
    }
}

impl Shared {
    /// The ledger as of now, even if a panicking request poisoned its lock: the pay-outs and
    /// pay-ins that became due by the sandbox clock are settled before anything reads it.
    pub(crate) fn ledger(&self) -> MutexGuard<'_, Ledger> {
        let mut ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
        ledger.settle_due(self.clock.now().timestamp_millis(), &self.knobs);
        ledger
    }
}
