//! Transfers between two wallets of the same currency: create and view, answered with the
//! Transfer object exactly as Mangopay's documentation shows it. A transfer the debited
//! wallet cannot cover is still created, `FAILED` with result `001001`, and moves nothing;
//! otherwise the debited wallet loses `DebitedFunds`, the credited wallet gains
//! `DebitedFunds - Fees` and the client's Fees Wallet the fees, under one lock.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use serde_json::Value;

use super::Sandbox;
use super::error::{ApiError, json_response};
use super::ids;
use super::ledger::{
    self, Detail, Ledger, Money, Status, TransactionRecord, TransferDetail, UNSUFFICIENT_BALANCE,
};
use super::users::JsonObject;
use super::validation::Fields;

const SCA_CONTEXTS: [&str; 2] = ["USER_PRESENT", "USER_NOT_PRESENT"];

/// The Transfer object, keys in the documentation's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct TransferView<'a> {
    sca_context: Option<&'a str>,
    id: &'a str,
    creation_date: i64,
    debited_wallet_id: Option<&'a str>,
    credited_wallet_id: Option<&'a str>,
    author_id: &'a str,
    credited_user_id: Option<&'a str>,
    debited_funds: &'a Money,
    credited_funds: Money,
    fees: &'a Money,
    #[serde(rename = "Type")]
    kind: &'static str,
    nature: &'static str,
    status: &'static str,
    tag: Option<&'a str>,
    result_code: Option<&'a str>,
    result_message: Option<&'a str>,
    execution_date: Option<i64>,
    /// The SCA redirection; the sandbox never asks for one.
    pending_user_action: Option<Value>,
}

impl TransactionRecord {
    fn transfer_view(&self) -> Option<TransferView<'_>> {
        let Detail::Transfer(detail) = &self.detail else {
            return None;
        };
        Some(TransferView {
            sca_context: detail.sca_context.as_deref(),
            id: &self.id,
            creation_date: self.creation_date,
            debited_wallet_id: self.debited_wallet_id.as_deref(),
            credited_wallet_id: self.credited_wallet_id.as_deref(),
            author_id: &self.author_id,
            credited_user_id: self.credited_user_id.as_deref(),
            debited_funds: &self.debited_funds,
            credited_funds: self.credited_funds(),
            fees: &self.fees,
            kind: self.kind(),
            nature: self.nature(),
            status: self.status.as_str(),
            tag: self.tag.as_deref(),
            result_code: self.result.as_ref().map(|(code, _)| code.as_str()),
            result_message: self.result.as_ref().map(|(_, message)| message.as_str()),
            execution_date: self.execution_date,
            pending_user_action: None,
        })
    }

    /// The transfer as `GET /transfers/{Id}` answers it (`None` for a pay-out).
    pub(crate) fn transfer_json(&self) -> Option<Value> {
        self.transfer_view()
            .and_then(|view| serde_json::to_value(view).ok())
    }
}

/// Checks that the fees leave something to credit (the reference's wording of the refusal)
/// and records the problem on `Fees`.
pub(crate) fn check_fees(f: &mut Fields<'_>, debited: Option<&Money>, fees: Option<&Money>) {
    check_fees_on(f, debited, fees, "Fees");
}

/// [`check_fees`], the problem recorded on `field` (e.g. `DeclaredFees`).
pub(crate) fn check_fees_on(
    f: &mut Fields<'_>,
    debited: Option<&Money>,
    fees: Option<&Money>,
    field: &str,
) {
    if let (Some(debited), Some(fees)) = (debited, fees)
        && debited.currency == fees.currency
        && fees.amount >= debited.amount
    {
        f.error(
            field,
            "CreditedFunds must be more than 0 (DebitedFunds can not equal Fees)",
        );
    }
}

/// Checks the currencies of a debit from a wallet in `wallet_currency`.
pub(crate) fn check_currencies(
    wallet_currency: &str,
    debited: &Money,
    fees: &Money,
) -> Result<(), ApiError> {
    if debited.currency != wallet_currency {
        return Err(ApiError::currency_incompatibility(format!(
            "The Wallet's currency {wallet_currency} and the DebitedFunds's currency {} must be the same",
            debited.currency
        )));
    }
    if fees.currency != debited.currency {
        return Err(ApiError::currency_incompatibility(format!(
            "The DebitedFunds's currency {} and the Fees's currency {} must be the same",
            debited.currency, fees.currency
        )));
    }
    Ok(())
}

/// `POST /v2.01/{ClientId}/transfers`. `CreditedUserId` is read-only (the credited wallet's
/// owner); `ScaContext` is echoed and no SCA is ever required (`PendingUserAction: null`).
pub(crate) async fn transfers_create(
    State(sandbox): State<Sandbox>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let now = sandbox.clock().now();
    let mut f = Fields::new(&body, now.timestamp());
    let sca_context = f.one_of("ScaContext", &SCA_CONTEXTS, false);
    let author_id = f.text("AuthorId", 1, 255, true);
    let debited_funds = ledger::money(&mut f, &body, "DebitedFunds");
    let fees = ledger::money(&mut f, &body, "Fees");
    let debited_wallet_id = f.text("DebitedWalletId", 1, 255, true);
    let credited_wallet_id = f.text("CreditedWalletId", 1, 255, true);
    let tag = f.text("Tag", 0, 255, false);
    check_fees(&mut f, debited_funds.as_ref(), fees.as_ref());
    if debited_wallet_id.is_some() && debited_wallet_id == credited_wallet_id {
        f.error(
            "CreditedWalletId",
            "Transaction refused: the Debited Wallet and the Credited Wallet must be different",
        );
    }
    f.finish().map_err(ApiError::param_errors)?;
    let (
        Some(author_id),
        Some(debited_funds),
        Some(fees),
        Some(debited_wallet_id),
        Some(credited_wallet_id),
    ) = (
        author_id,
        debited_funds,
        fees,
        debited_wallet_id,
        credited_wallet_id,
    )
    else {
        unreachable!("required fields were checked");
    };
    if sandbox.shared().users().get(&author_id).is_none() {
        return Err(ApiError::not_found("User", &author_id));
    }
    let id = format!("xfer_m_{}", ids::ulid(now, &mut *sandbox.shared().rng()));

    let mut ledger = sandbox.shared().ledger();
    let debited = ledger
        .wallet(&debited_wallet_id)
        .ok_or_else(|| ApiError::not_found("Wallet", &debited_wallet_id))?;
    let credited = ledger
        .wallet(&credited_wallet_id)
        .ok_or_else(|| ApiError::not_found("Wallet", &credited_wallet_id))?;
    if debited.currency != credited.currency {
        return Err(ApiError::currency_incompatibility(format!(
            "The Debited Wallet's currency {} and the Credited Wallet's currency {} must be the same",
            debited.currency, credited.currency
        )));
    }
    check_currencies(&debited.currency, &debited_funds, &fees)?;
    if debited.owner != author_id {
        return Err(ApiError::author_is_not_debited_wallet_owner(
            &author_id,
            &debited_wallet_id,
        ));
    }
    let covered = debited.balance >= debited_funds.amount;
    let credited_owner = credited.owner.clone();
    let mut record = TransactionRecord {
        id,
        tag,
        creation_date: now.timestamp(),
        created_at_ms: now.timestamp_millis(),
        author_id,
        credited_user_id: Some(credited_owner),
        debited_funds,
        fees,
        status: Status::Created,
        result: None,
        execution_date: None,
        debited_wallet_id: Some(debited_wallet_id.clone()),
        credited_wallet_id: Some(credited_wallet_id.clone()),
        detail: Detail::Transfer(TransferDetail { sca_context }),
    };
    if covered {
        ledger.add_to_wallet(&debited_wallet_id, -record.debited_funds.amount);
        ledger.add_to_wallet(&credited_wallet_id, record.credited_funds().amount);
        ledger.add_fees(&record.fees.currency, record.fees.amount);
        record.succeed(now.timestamp());
    } else {
        record.fail(UNSUFFICIENT_BALANCE.0, UNSUFFICIENT_BALANCE.1);
    }
    let id = record.id.clone();
    ledger.insert_transaction(record);
    transfer_response(&ledger, &id)
}

/// The stored transfer `id` as the API answers it, or 404.
fn transfer_response(ledger: &Ledger, id: &str) -> Result<Response, ApiError> {
    ledger
        .transaction(id)
        .and_then(TransactionRecord::transfer_view)
        .map(|view| json_response(StatusCode::OK, &view))
        .ok_or_else(|| ApiError::not_found("Transfer", id))
}

/// `GET /v2.01/{ClientId}/transfers/{TransferId}`.
pub(crate) async fn transfers_get(
    State(sandbox): State<Sandbox>,
    Path((_client_id, transfer_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    transfer_response(&sandbox.shared().ledger(), &transfer_id)
}
