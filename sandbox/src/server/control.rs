//! Control requests: test-only steering of the money a sandbox holds, which Mangopay's API
//! has no call for. Served outside `/v2.01` under `/_sandbox/`, without authentication, and
//! past the front door's request log, rate limits and injected faults (they are a local test
//! tool, not API calls), and as methods on [`Sandbox`]:
//!
//! - `POST /_sandbox/wallets/{WalletId}/credit` with `{"Amount": 10000}` adds funds to a
//!   wallet (a stand-in for a pay-in; no transaction is recorded) and answers the wallet
//!   ([`Sandbox::credit_wallet`]);
//! - `POST /_sandbox/payouts/{PayoutId}/settle` with `{"Status": "SUCCEEDED"}` or
//!   `{"Status": "FAILED", "ResultCode": "121999", "ResultMessage": "..."}` settles a
//!   `CREATED` pay-out and answers it ([`Sandbox::settle_payout`]);
//! - `POST /_sandbox/payins/{PayInId}/settle` with `{"Status": "SUCCEEDED"}` (and an `Amount`
//!   for a bank wire) or `{"Status": "FAILED", "ResultCode": "...", "ResultMessage": "..."}`
//!   settles a `CREATED` pay-in and answers it ([`Sandbox::settle_payin`]); the pages
//!   `GET /_sandbox/secure-mode/{PayInId}` and `GET /_sandbox/web-payment/{PayInId}` stand for
//!   the 3-D Secure step and the payment page;
//! - `POST /_sandbox/tokenize/{CardRegistrationId}` is the tokenization server every card
//!   registration's `CardRegistrationURL` points at (see [`super::cards`]);
//! - `POST /_sandbox/recipients/{RecipientId}/status` with `{"Status": "ACTIVE"}` or
//!   `{"Status": "CANCELED"}` settles a `PENDING` recipient as its user's SCA session would
//!   and answers it ([`Sandbox::set_recipient_status`]; see [`crate::Knobs::set_recipient_sca`]);
//! - `POST /_sandbox/kyc/documents/{KycDocumentId}/outcome` with `{"Status": "VALIDATED"}` or
//!   `{"Status": "REFUSED", "RefusedReasonType": "DOCUMENT_UNREADABLE", "RefusedReasonMessage":
//!   "...", "Flags": ["009004"]}` ends the review of a `VALIDATION_ASKED` KYC document and
//!   answers it ([`Sandbox::set_kyc_outcome`]; see [`crate::Knobs::set_kyc_outcome_after`]);
//! - `POST /_sandbox/kyc/ubodeclarations/{UboDeclarationId}/outcome` with
//!   `{"Status": "VALIDATED"}`, or `INCOMPLETE` or `REFUSED` with a `Reason` (and `Message`),
//!   ends the review of a `VALIDATION_ASKED` UBO declaration and answers it
//!   ([`Sandbox::set_ubo_outcome`]; see [`crate::Knobs::set_ubo_outcome_after`]).
//!
//! Errors are Mangopay-style reports: 404 `ressource_not_found` for an unknown id, 400
//! `param_error` for a bad body, 400 `invalid_action` for a pay-out or pay-in that is not
//! `CREATED` or a document or declaration that is not `VALIDATION_ASKED`. The tokenization
//! server answers as Mangopay's does instead: plain text, `errorCode=<code>` on failure.

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::Value;

use super::Sandbox;
use super::error::{ApiError, in_context, json_response};
use super::knobs::{GENERIC_PAYOUT_FAILURE, PayoutOutcome};
use super::ledger::{self, SettleError, TransactionRecord};
use super::routing::normalize_path;
use super::users::JsonObject;
use super::validation::Fields;
use super::{cards, kyc, payins, recipients, ubo};

/// Where control requests live.
pub(crate) const PREFIX: &str = "/_sandbox/";

/// Whether `path` (as received) is a control request's.
pub(crate) fn is_control_path(path: &str) -> bool {
    normalize_path(path).starts_with(PREFIX)
}

/// Runs a control request: its path normalized (`//`, a trailing `/`), its errors stamped
/// by the sandbox's clock and generator, nothing else of the front door.
pub(crate) async fn pass(sandbox: &Sandbox, mut request: Request, next: Next) -> Response {
    let path = normalize_path(request.uri().path());
    let query = request.uri().query().map(str::to_owned);
    let path_and_query = match query {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    if let Ok(uri) = path_and_query.parse() {
        *request.uri_mut() = uri;
    }
    in_context(sandbox.shared().context(), next.run(request)).await
}

/// The control routes, to merge into the API's router: behind the front door, which
/// normalizes their paths and lets them [`pass`].
pub(crate) fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/_sandbox/wallets/{wallet_id}/credit", post(wallets_credit))
        .route("/_sandbox/payouts/{payout_id}/settle", post(payouts_settle))
        .route(
            "/_sandbox/recipients/{recipient_id}/status",
            post(recipients::control_recipient_status),
        )
        .route(
            "/_sandbox/kyc/documents/{document_id}/outcome",
            post(kyc::control_kyc_outcome),
        )
        .route(
            "/_sandbox/kyc/ubodeclarations/{declaration_id}/outcome",
            post(ubo::control_ubo_outcome),
        )
        .route(
            "/_sandbox/tokenize/{registration_id}",
            post(cards::control_tokenize),
        )
        .route(
            "/_sandbox/payins/{payin_id}/settle",
            post(payins::control_payin_settle),
        )
        .route(
            "/_sandbox/secure-mode/{payin_id}",
            get(payins::control_payment_page),
        )
        .route(
            "/_sandbox/web-payment/{payin_id}",
            get(payins::control_payment_page),
        )
}

/// Why [`Sandbox::credit_wallet`] refused an amount.
enum CreditError {
    UnknownWallet,
    Overflow,
}

fn credit(sandbox: &Sandbox, wallet_id: &str, amount: i64) -> Result<Value, CreditError> {
    let mut ledger = sandbox.shared().ledger();
    let wallet = ledger
        .wallet_mut(wallet_id)
        .ok_or(CreditError::UnknownWallet)?;
    wallet.balance = wallet
        .balance
        .checked_add(amount)
        .ok_or(CreditError::Overflow)?;
    Ok(wallet.to_json())
}

/// `POST /_sandbox/wallets/{WalletId}/credit`.
async fn wallets_credit(
    State(sandbox): State<Sandbox>,
    Path(wallet_id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let mut f = Fields::new(&body, 0);
    let amount = ledger::amount(&mut f, &body, "Amount", "Amount");
    f.finish().map_err(ApiError::param_errors)?;
    let Some(amount) = amount else {
        unreachable!("required fields were checked");
    };
    match credit(&sandbox, &wallet_id, amount) {
        Ok(wallet) => Ok(json_response(StatusCode::OK, &wallet)),
        Err(CreditError::UnknownWallet) => Err(ApiError::not_found("Wallet", &wallet_id)),
        Err(CreditError::Overflow) => Err(ApiError::param_error(
            "Amount",
            "The wallet's balance cannot hold that much.",
        )),
    }
}

fn settle(
    sandbox: &Sandbox,
    payout_id: &str,
    outcome: &PayoutOutcome,
) -> Result<Value, SettleError> {
    let now = sandbox.clock().now().timestamp();
    let mut ledger = sandbox.shared().ledger();
    ledger
        .settle(payout_id, outcome, now)
        .map(|record| record.payout_json().unwrap_or(Value::Null))
}

fn settle_error_message(id: &str, error: &SettleError) -> String {
    match error {
        SettleError::Unknown => format!("There is no pay-out {id}."),
        SettleError::NotCreated(status) => {
            format!("The pay-out is {}, not CREATED.", status.as_str())
        }
        SettleError::NotBankWire => "Only a bank wire pay-in receives an amount.".to_owned(),
    }
}

/// `POST /_sandbox/payouts/{PayoutId}/settle`.
async fn payouts_settle(
    State(sandbox): State<Sandbox>,
    Path(payout_id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let mut f = Fields::new(&body, 0);
    let status = f.one_of("Status", &["SUCCEEDED", "FAILED"], true);
    let result_code = f.text("ResultCode", 1, 255, false);
    let result_message = f.text("ResultMessage", 1, 255, false);
    f.finish().map_err(ApiError::param_errors)?;
    let outcome = match status.as_deref() {
        Some("FAILED") => PayoutOutcome::Failed {
            result_code: result_code.unwrap_or_else(|| GENERIC_PAYOUT_FAILURE.0.to_owned()),
            result_message: result_message.unwrap_or_else(|| GENERIC_PAYOUT_FAILURE.1.to_owned()),
        },
        _ => PayoutOutcome::Succeeded,
    };
    match settle(&sandbox, &payout_id, &outcome) {
        Ok(payout) => Ok(json_response(StatusCode::OK, &payout)),
        Err(SettleError::Unknown) => Err(ApiError::not_found("PayOut", &payout_id)),
        Err(error) => Err(ApiError::invalid_action(settle_error_message(
            &payout_id, &error,
        ))),
    }
}

/// The money a sandbox holds: views and control requests.
impl Sandbox {
    /// One stored wallet as `GET /wallets/{Id}` answers it.
    pub fn wallet(&self, id: &str) -> Option<Value> {
        self.shared().ledger().wallet(id).map(|w| w.to_json())
    }

    /// Every stored wallet, oldest first, as `GET /wallets/{Id}` answers it.
    pub fn wallets(&self) -> Vec<Value> {
        let ledger = self.shared().ledger();
        ledger.wallets().iter().map(|w| w.to_json()).collect()
    }

    /// Every transfer, oldest first, as `GET /transfers/{Id}` answers it.
    pub fn transfers(&self) -> Vec<Value> {
        let ledger = self.shared().ledger();
        ledger
            .transactions()
            .iter()
            .filter_map(TransactionRecord::transfer_json)
            .collect()
    }

    /// Every pay-out, oldest first, as `GET /payouts/bankwire/{Id}` answers it (the Payout
    /// object with `ModeRequested`, `ModeApplied` and `FallbackReason`).
    pub fn payouts(&self) -> Vec<Value> {
        let ledger = self.shared().ledger();
        ledger
            .transactions()
            .iter()
            .filter_map(TransactionRecord::payout_json)
            .collect()
    }

    /// The balance of the client's Fees Wallet in `currency` (ISO 4217, e.g. `EUR`): the
    /// fees of the transfers that went through and of the pay-outs not failed.
    pub fn fees_balance(&self, currency: &str) -> i64 {
        self.shared()
            .ledger()
            .fees_balance(&currency.to_ascii_uppercase())
    }

    /// Adds `amount` (minor units, at least 0) to a wallet's balance, as a pay-in would (no
    /// transaction is recorded), and returns the wallet as `GET /wallets/{Id}` answers it.
    /// `None` if there is no such wallet, `amount` is negative or the balance would
    /// overflow.
    pub fn credit_wallet(&self, wallet_id: &str, amount: i64) -> Option<Value> {
        if amount < 0 {
            return None;
        }
        credit(self, wallet_id, amount).ok()
    }

    /// Settles a `CREATED` pay-out now, as `outcome` says (a failure puts its debited funds
    /// back in its wallet), and returns it as [`Sandbox::payouts`] shows it. Err names why
    /// not: no such pay-out, or it is no longer `CREATED`.
    pub fn settle_payout(&self, id: &str, outcome: PayoutOutcome) -> Result<Value, String> {
        settle(self, id, &outcome).map_err(|error| settle_error_message(id, &error))
    }
}
