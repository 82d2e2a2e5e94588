//! Bank-wire pay-outs: create, view (with and without the mode applied) and the instant
//! pay-out eligibility check, answered with the Payout object exactly as Mangopay's
//! documentation shows it.
//!
//! A pay-out debits its wallet at creation (its fees go to the client's Fees Wallet) and is
//! `CREATED`; it then becomes `SUCCEEDED`, or `FAILED` with its debited funds back in the
//! wallet, on a control request or once [`crate::Knobs::set_payout_settle_after`] has passed
//! on the sandbox clock. One the wallet cannot cover is created `FAILED` with result
//! `001001` and moves nothing. Instant pay-outs follow [`crate::Knobs::set_instant_payouts`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use rand::RngExt as _;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::Sandbox;
use super::bank_accounts::payout_destination;
use super::error::{ApiError, json_response};
use super::ids;
use super::knobs::InstantPayouts;
use super::ledger::{
    self, Detail, Ledger, Money, PaymentRef, PayoutDetail, Reason, Status, TransactionRecord,
    UNSUFFICIENT_BALANCE,
};
use super::transactions::TransactionBase;
use super::transfers::{check_currencies, check_fees};
use super::users::JsonObject;
use super::validation::Fields;

const MODES: [&str; 4] = [
    "STANDARD",
    "INSTANT_PAYMENT",
    "INSTANT_PAYMENT_ONLY",
    "RTGS_PAYMENT",
];

/// Why an instant pay-out cannot go instantly when [`InstantPayouts::FallBack`] is on.
pub(crate) const UNREACHABLE_BANK: (&str, &str) = ("130007", "Destination Bank is not reachable");

/// `ModeRequested`, `ModeApplied` and `FallbackReason`: only in the answers that show the
/// payout mode (creation, `GET /payouts/bankwire/{Id}`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ModeView<'a> {
    mode_requested: Option<&'a str>,
    mode_applied: &'a str,
    fallback_reason: Option<&'a Reason>,
}

/// The Payout object, keys in the documentation's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct PayoutView<'a> {
    #[serde(flatten)]
    base: TransactionBase<'a>,
    payment_type: &'static str,
    bank_account_id: &'a str,
    bank_wire_ref: Option<&'a str>,
    #[serde(flatten)]
    mode: Option<ModeView<'a>>,
    end_to_end_id: &'a str,
    payment_ref: Option<&'a PaymentRef>,
}

impl TransactionRecord {
    /// The pay-out's object, with the mode fields when `with_mode`; `None` for a transfer.
    fn payout_view(&self, with_mode: bool) -> Option<PayoutView<'_>> {
        let detail = self.payout()?;
        let mode_applied = if detail.mode_pending && self.status == Status::Created {
            "PENDING_RESPONSE"
        } else {
            detail.mode
        };
        Some(PayoutView {
            base: self.base(),
            payment_type: "BANK_WIRE",
            bank_account_id: &detail.bank_account_id,
            bank_wire_ref: detail.bank_wire_ref.as_deref(),
            mode: with_mode.then_some(ModeView {
                mode_requested: detail.mode_requested.as_deref(),
                mode_applied,
                fallback_reason: detail.fallback_reason.as_ref(),
            }),
            end_to_end_id: &detail.end_to_end_id,
            payment_ref: detail.payment_ref.as_ref(),
        })
    }

    /// The pay-out as `GET /payouts/bankwire/{Id}` answers it (`None` for a transfer).
    pub(crate) fn payout_json(&self) -> Option<Value> {
        self.payout_view(true)
            .and_then(|view| serde_json::to_value(view).ok())
    }
}

/// The stored pay-out `id` as the API answers it, or 404.
fn payout_response(ledger: &Ledger, id: &str, with_mode: bool) -> Result<Response, ApiError> {
    ledger
        .transaction(id)
        .and_then(|record| record.payout_view(with_mode))
        .map(|view| json_response(StatusCode::OK, &view))
        .ok_or_else(|| ApiError::not_found("PayOut", id))
}

/// A pay-out request (or an eligibility check) once its fields are read.
#[derive(Debug)]
struct PayoutRequest {
    author_id: String,
    debited_funds: Money,
    fees: Money,
    debited_wallet_id: String,
    bank_account_id: String,
    bank_wire_ref: Option<String>,
    mode_requested: Option<String>,
    tag: Option<String>,
    payment_ref: Option<PaymentRef>,
}

/// `PaymentRef`: `{"ReasonType": "PAYIN_REFUND", "ReferenceId": "<pay-in Id>"}`.
fn payment_ref(f: &mut Fields<'_>, body: &Map<String, Value>) -> Option<PaymentRef> {
    let object = match body.get("PaymentRef") {
        None | Some(Value::Null) => return None,
        Some(Value::Object(object)) => object,
        Some(_) => {
            f.error(
                "PaymentRef",
                "The field PaymentRef must be an object with a ReasonType and a ReferenceId.",
            );
            return None;
        }
    };
    let mut sub = Fields::new(object, 0);
    let reason_type = sub.one_of("ReasonType", &["PAYIN_REFUND"], true);
    let reference_id = sub.text("ReferenceId", 1, 255, true);
    if let Err(errors) = sub.finish() {
        for (field, message) in errors {
            f.error(
                &format!("PaymentRef.{field}"),
                message.replace(&field, &format!("PaymentRef.{field}")),
            );
        }
    }
    Some(PaymentRef {
        reason_type: reason_type?,
        reference_id: reference_id?,
    })
}

/// Reads a pay-out body. `PayoutModeRequested` is the documented name; the reference's own
/// request examples also send `ModeRequested`, read when the former is absent.
fn read_request(
    body: &Map<String, Value>,
    now: i64,
    reachability: bool,
) -> Result<PayoutRequest, ApiError> {
    let mut f = Fields::new(body, now);
    let author_id = f.text("AuthorId", 1, 255, true);
    let debited_funds = ledger::money(&mut f, body, "DebitedFunds");
    let fees = ledger::money(&mut f, body, "Fees");
    let debited_wallet_id = f.text("DebitedWalletId", 1, 255, true);
    let bank_account_id = f.text("BankAccountId", 1, 255, true);
    let bank_wire_ref = f.text("BankWireRef", 0, 255, false);
    let mode_key = match body.get("PayoutModeRequested") {
        None | Some(Value::Null) if body.contains_key("ModeRequested") => "ModeRequested",
        _ => "PayoutModeRequested",
    };
    let mode_requested = f.one_of(mode_key, &MODES, reachability);
    if reachability
        && mode_requested
            .as_deref()
            .is_some_and(|m| m != "INSTANT_PAYMENT")
    {
        f.error(
            mode_key,
            format!("The {mode_key} value must be INSTANT_PAYMENT to check the instant payout eligibility."),
        );
    }
    let tag = f.text("Tag", 0, 255, false);
    let payment_ref = if reachability {
        None
    } else {
        payment_ref(&mut f, body)
    };
    check_fees(&mut f, debited_funds.as_ref(), fees.as_ref());
    f.finish().map_err(ApiError::param_errors)?;
    let (
        Some(author_id),
        Some(debited_funds),
        Some(fees),
        Some(debited_wallet_id),
        Some(bank_account_id),
    ) = (
        author_id,
        debited_funds,
        fees,
        debited_wallet_id,
        bank_account_id,
    )
    else {
        unreachable!("required fields were checked");
    };
    Ok(PayoutRequest {
        author_id,
        debited_funds,
        fees,
        debited_wallet_id,
        bank_account_id,
        bank_wire_ref,
        mode_requested,
        tag,
        payment_ref,
    })
}

/// The checks of a pay-out request against the stored objects: its author, its wallet (that
/// the author owns, in the currency of the funds) and its destination (a bank account or
/// recipient of the author's, active).
fn check_request(sandbox: &Sandbox, request: &PayoutRequest) -> Result<(), ApiError> {
    let shared = sandbox.shared();
    if shared.users().get(&request.author_id).is_none() {
        return Err(ApiError::not_found("User", &request.author_id));
    }
    {
        let ledger = shared.ledger();
        let wallet = ledger
            .wallet(&request.debited_wallet_id)
            .ok_or_else(|| ApiError::not_found("Wallet", &request.debited_wallet_id))?;
        check_currencies(&wallet.currency, &request.debited_funds, &request.fees)?;
        if wallet.owner != request.author_id {
            return Err(ApiError::author_is_not_debited_wallet_owner(
                &request.author_id,
                &request.debited_wallet_id,
            ));
        }
    }
    payout_destination(shared, &request.author_id, &request.bank_account_id)
}

/// How a new pay-out goes, given its requested mode and the instant pay-out knob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// `CREATED`, `ModeApplied` pending until it settles in this mode.
    Pending(&'static str),
    /// `SUCCEEDED` at once by SEPA Instant.
    Instant,
    /// `CREATED`, fallen back to `STANDARD` with a `FallbackReason`.
    FallenBack,
    /// `FAILED` at once: instant only, and the bank cannot be reached instantly.
    Refused,
}

fn route(mode_requested: Option<&str>, instant: InstantPayouts) -> Route {
    match (mode_requested, instant) {
        (Some("INSTANT_PAYMENT" | "INSTANT_PAYMENT_ONLY"), InstantPayouts::SettleAtOnce) => {
            Route::Instant
        }
        (Some("INSTANT_PAYMENT"), InstantPayouts::FallBack) => Route::FallenBack,
        (Some("INSTANT_PAYMENT_ONLY"), InstantPayouts::FallBack) => Route::Refused,
        (Some("RTGS_PAYMENT"), _) => Route::Pending("RTGS_PAYMENT"),
        _ => Route::Pending("STANDARD"),
    }
}

/// `POST /v2.01/{ClientId}/payouts/bankwire`.
pub(crate) async fn payouts_create(
    State(sandbox): State<Sandbox>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let now = sandbox.clock().now();
    let request = read_request(&body, now.timestamp(), false)?;
    check_request(&sandbox, &request)?;
    let (id, end_to_end_id) = {
        let mut rng = sandbox.shared().rng();
        let id = format!("po_m_{}", ids::ulid(now, &mut *rng));
        (id, format!("{:032x}", rng.random::<u128>()))
    };
    let route = route(
        request.mode_requested.as_deref(),
        sandbox.knobs().instant_payouts(),
    );
    let unreachable = Reason {
        code: UNREACHABLE_BANK.0.to_owned(),
        message: UNREACHABLE_BANK.1.to_owned(),
    };
    let (mode, mode_pending, fallback_reason) = match route {
        Route::Pending(mode) => (mode, true, None),
        Route::Instant => ("INSTANT_PAYMENT", false, None),
        // "If ModeRequested was INSTANT_PAYMENT_ONLY and a fallback occurs, the ModeApplied
        // is STANDARD."
        Route::FallenBack | Route::Refused => ("STANDARD", false, Some(unreachable)),
    };
    let mut record = TransactionRecord {
        id: id.clone(),
        tag: request.tag,
        creation_date: now.timestamp(),
        created_at_ms: now.timestamp_millis(),
        author_id: request.author_id,
        credited_user_id: None,
        debited_funds: request.debited_funds,
        fees: request.fees,
        status: Status::Created,
        result: None,
        execution_date: None,
        debited_wallet_id: Some(request.debited_wallet_id),
        credited_wallet_id: None,
        detail: Detail::Payout(Box::new(PayoutDetail {
            bank_account_id: request.bank_account_id,
            bank_wire_ref: request.bank_wire_ref,
            mode_requested: request.mode_requested,
            mode,
            mode_pending,
            fallback_reason,
            end_to_end_id,
            payment_ref: request.payment_ref,
        })),
    };

    let wallet_id = record.debited_wallet_id.clone().unwrap_or_default();
    let mut ledger = sandbox.shared().ledger();
    let balance = ledger.wallet(&wallet_id).map_or(0, |w| w.balance);
    if balance < record.debited_funds.amount {
        record.fail(UNSUFFICIENT_BALANCE.0, UNSUFFICIENT_BALANCE.1);
        if let Detail::Payout(detail) = &mut record.detail {
            detail.mode_pending = false;
        }
    } else if route == Route::Refused {
        record.fail(UNREACHABLE_BANK.0, UNREACHABLE_BANK.1);
    } else {
        ledger.add_to_wallet(&wallet_id, -record.debited_funds.amount);
        ledger.add_fees(&record.fees.currency, record.fees.amount);
        if route == Route::Instant {
            record.succeed(now.timestamp());
        }
    }
    ledger.insert_transaction(record);
    payout_response(&ledger, &id, true)
}

/// `GET /v2.01/{ClientId}/payouts/{PayoutId}`: without the payout mode.
pub(crate) async fn payouts_get(
    State(sandbox): State<Sandbox>,
    Path((_client_id, payout_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    payout_response(&sandbox.shared().ledger(), &payout_id, false)
}

/// `GET /v2.01/{ClientId}/payouts/bankwire/{PayoutId}`: with `ModeRequested`, `ModeApplied`
/// and `FallbackReason`.
pub(crate) async fn payouts_bankwire_get(
    State(sandbox): State<Sandbox>,
    Path((_client_id, payout_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    payout_response(&sandbox.shared().ledger(), &payout_id, true)
}

/// `POST /v2.01/{ClientId}/payouts/reachability`: whether an `INSTANT_PAYMENT` pay-out with
/// this body would go instantly. Not reachable when the wallet cannot cover it (`001001`) or
/// when [`InstantPayouts::FallBack`] is on (`130007`); nothing is created.
pub(crate) async fn payouts_reachability(
    State(sandbox): State<Sandbox>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let request = read_request(&body, sandbox.clock().now().timestamp(), true)?;
    check_request(&sandbox, &request)?;
    let balance = sandbox
        .shared()
        .ledger()
        .wallet(&request.debited_wallet_id)
        .map_or(0, |w| w.balance);
    let reason = if balance < request.debited_funds.amount {
        Some(UNSUFFICIENT_BALANCE)
    } else if sandbox.knobs().instant_payouts() == InstantPayouts::FallBack {
        Some(UNREACHABLE_BANK)
    } else {
        None
    };
    let body = json!({
        "InstantPayout": {
            "IsReachable": reason.is_none(),
            "UnreachableReason": reason.map(|(code, message)| json!({"Code": code, "Message": message})),
        }
    });
    Ok(json_response(StatusCode::OK, &body))
}
