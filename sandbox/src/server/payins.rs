//! Pay-ins: direct card pay-ins, web card pay-ins and bank wires, created, viewed (generic and
//! typed) and settled, answered with the objects exactly as Mangopay's documentation shows
//! them.
//!
//! A direct card pay-in goes as its card says ([`crate::test_cards`]): `SUCCEEDED` at once
//! (the credited wallet gets `DebitedFunds - Fees`, the client's Fees Wallet the fees),
//! `FAILED` at once with the bank's result (HTTP 200, nothing credited), or `CREATED` waiting
//! for 3-D Secure (`SecureModeNeeded: true`, a `SecureModeRedirectURL` on the sandbox). A web
//! card pay-in is `CREATED` with a `RedirectURL` on the sandbox, a bank wire `CREATED` with
//! the bank account and `WireReference` to wire the funds to. A `CREATED` pay-in ends with the
//! control request `POST /_sandbox/payins/{PayInId}/settle` ([`crate::Sandbox::settle_payin`])
//! or once [`crate::Knobs::set_payin_settle_after`] has passed on the sandbox clock. The first
//! pay-in made with a card decides its `Validity`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

use super::Sandbox;
use super::cards::{CARD_TYPES, CardInfo};
use super::error::{ApiError, json_response};
use super::ids;
use super::knobs::{Knobs, PayInOutcome};
use super::ledger::{self, Detail, Ledger, Money, SettleError, Status, TransactionRecord};
use super::routing::origin;
use super::test_cards::{Behaviour, DO_NOT_HONOR_RESULT, THREE_DS_NOT_AVAILABLE_RESULT};
use super::transactions::TransactionBase;
use super::transfers::{check_currencies, check_fees, check_fees_on};
use super::users::JsonObject;
use super::validation::Fields;

const SECURE_MODES: [&str; 3] = ["DEFAULT", "FORCE", "NO_CHOICE"];
/// The languages of the payment pages (the Web Card PayIn's list, which holds the Direct
/// Card PayIn's).
const CULTURES: [&str; 16] = [
    "CS", "DA", "DE", "EL", "EN", "ES", "FI", "FR", "HU", "IT", "NL", "NO", "PL", "PT", "SK", "SV",
];
const PAYMENT_CATEGORIES: [&str; 2] = ["ECommerce", "TelephoneOrder"];
const BROWSER_INFO: [&str; 9] = [
    "AcceptHeader",
    "JavaEnabled",
    "Language",
    "ColorDepth",
    "ScreenHeight",
    "ScreenWidth",
    "TimeZoneOffset",
    "UserAgent",
    "JavascriptEnabled",
];

/// The result of a web card pay-in or bank wire settled `FAILED` without a result: the
/// payment period has expired.
const PAYMENT_PERIOD_EXPIRED: (&str, &str) = ("101109", "The payment period has expired");

/// What only a direct card pay-in has.
#[derive(Debug, Clone)]
pub(crate) struct CardPayIn {
    secure_mode: String,
    card_id: String,
    return_url: String,
    redirect_url: Option<String>,
    secure_mode_needed: bool,
    culture: String,
    statement_descriptor: Option<String>,
    browser_info: Map<String, Value>,
    ip_address: String,
    billing: Option<Value>,
    shipping: Option<Value>,
    requested_3ds_version: Option<String>,
    preferred_card_network: Option<String>,
    payment_category: String,
    card_info: CardInfo,
    behaviour: Behaviour,
}

/// What only a web card pay-in has.
#[derive(Debug, Clone)]
pub(crate) struct WebPayIn {
    redirect_url: String,
    return_url: String,
    card_type: String,
    culture: String,
    secure_mode: String,
    statement_descriptor: Option<String>,
    billing: Option<Value>,
    shipping: Option<Value>,
}

/// What only a bank wire pay-in has.
#[derive(Debug, Clone)]
pub(crate) struct BankWirePayIn {
    declared_debited_funds: Money,
    declared_fees: Money,
    wire_reference: String,
}

/// The kind-specific part of a pay-in.
#[derive(Debug, Clone)]
pub(crate) enum PayInDetail {
    Card(Box<CardPayIn>),
    Web(Box<WebPayIn>),
    BankWire(Box<BankWirePayIn>),
}

/// `SecurityInfo`: the sandbox never checks addresses.
#[derive(Debug, Serialize)]
struct SecurityInfo {
    #[serde(rename = "AVSResult")]
    avs_result: &'static str,
}

/// The Direct Card PayIn object, keys in the documentation's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct CardPayInView<'a> {
    #[serde(flatten)]
    base: TransactionBase<'a>,
    payment_type: &'static str,
    execution_type: &'static str,
    secure_mode: &'a str,
    card_id: &'a str,
    #[serde(rename = "SecureModeReturnURL")]
    secure_mode_return_url: &'a str,
    #[serde(rename = "SecureModeRedirectURL")]
    secure_mode_redirect_url: Option<&'a str>,
    secure_mode_needed: bool,
    culture: &'a str,
    security_info: SecurityInfo,
    statement_descriptor: Option<&'a str>,
    browser_info: &'a Map<String, Value>,
    ip_address: &'a str,
    billing: Option<&'a Value>,
    shipping: Option<&'a Value>,
    #[serde(rename = "Requested3DSVersion")]
    requested_3ds_version: Option<&'a str>,
    #[serde(rename = "Applied3DSVersion")]
    applied_3ds_version: Option<&'static str>,
    recurring_payin_registration_id: Option<&'static str>,
    preferred_card_network: Option<&'a str>,
    payment_category: &'a str,
    card_info: &'a CardInfo,
}

/// The Web Card PayIn object, keys in the documentation's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct WebPayInView<'a> {
    #[serde(flatten)]
    base: TransactionBase<'a>,
    payment_type: &'static str,
    execution_type: &'static str,
    #[serde(rename = "RedirectURL")]
    redirect_url: &'a str,
    #[serde(rename = "ReturnURL")]
    return_url: &'a str,
    #[serde(rename = "TemplateURL")]
    template_url: Option<&'static str>,
    card_type: &'a str,
    culture: &'a str,
    secure_mode: &'a str,
    billing: Option<&'a Value>,
    shipping: Option<&'a Value>,
    statement_descriptor: Option<&'a str>,
    bank_name: Option<&'static str>,
}

/// The account bank wires are sent to: Mangopay's, with the reference's address.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct BankAccountView {
    owner_address: OwnerAddress,
    #[serde(rename = "Type")]
    kind: &'static str,
    owner_name: &'static str,
    #[serde(rename = "IBAN")]
    iban: String,
    #[serde(rename = "BIC")]
    bic: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct OwnerAddress {
    address_line1: &'static str,
    address_line2: Option<&'static str>,
    city: &'static str,
    region: Option<&'static str>,
    postal_code: &'static str,
    country: &'static str,
}

/// The Bank Wire PayIn object, keys in the documentation's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct BankWirePayInView<'a> {
    #[serde(flatten)]
    base: TransactionBase<'a>,
    payment_type: &'static str,
    execution_type: &'static str,
    declared_debited_funds: &'a Money,
    declared_fees: &'a Money,
    wire_reference: &'a str,
    bank_account: BankAccountView,
    transaction_details: [Value; 0],
}

/// The mod-97 check digits of an IBAN of `country` with this BBAN.
fn iban(country: &str, bban: &str) -> String {
    let rearranged = format!("{bban}{country}00");
    let remainder = rearranged.chars().fold(0u32, |acc, c| {
        let value = c.to_digit(36).unwrap_or(0);
        if value >= 10 {
            (acc * 100 + value) % 97
        } else {
            (acc * 10 + value) % 97
        }
    });
    format!("{country}{:02}{bban}", 98 - remainder)
}

/// Mangopay's French account bank wires go to: bank 30056, branch 00927, with its RIB key
/// and IBAN check digits.
fn mangopay_iban() -> String {
    let (bank, branch, account) = (30056u64, 927u64, 12_345_678_901u64);
    let rib_key = 97 - (89 * bank + 15 * branch + 3 * account) % 97;
    iban(
        "FR",
        &format!("{bank:05}{branch:05}{account:011}{rib_key:02}"),
    )
}

fn bank_account() -> BankAccountView {
    BankAccountView {
        owner_address: OwnerAddress {
            address_line1: "2 Avenue Amélie",
            address_line2: None,
            city: "Luxembourg",
            region: None,
            postal_code: "L-1125",
            country: "LU",
        },
        kind: "IBAN",
        owner_name: "MANGOPAY SA",
        iban: mangopay_iban(),
        bic: "CCFRFRPPXXX",
    }
}

impl TransactionRecord {
    /// The pay-in as `GET /payins/{Id}` answers it (`None` for any other transaction).
    pub(crate) fn payin_json(&self) -> Option<Value> {
        let base = self.base();
        let view = match self.payin()? {
            PayInDetail::Card(card) => serde_json::to_value(CardPayInView {
                base,
                payment_type: "CARD",
                execution_type: "DIRECT",
                secure_mode: &card.secure_mode,
                card_id: &card.card_id,
                secure_mode_return_url: &card.return_url,
                secure_mode_redirect_url: card.redirect_url.as_deref(),
                secure_mode_needed: card.secure_mode_needed,
                culture: &card.culture,
                security_info: SecurityInfo {
                    avs_result: "NO_CHECK",
                },
                statement_descriptor: card.statement_descriptor.as_deref(),
                browser_info: &card.browser_info,
                ip_address: &card.ip_address,
                billing: card.billing.as_ref(),
                shipping: card.shipping.as_ref(),
                requested_3ds_version: card.requested_3ds_version.as_deref(),
                applied_3ds_version: card.secure_mode_needed.then_some("V2_1"),
                recurring_payin_registration_id: None,
                preferred_card_network: card.preferred_card_network.as_deref(),
                payment_category: &card.payment_category,
                card_info: &card.card_info,
            }),
            PayInDetail::Web(web) => serde_json::to_value(WebPayInView {
                base,
                payment_type: "CARD",
                execution_type: "WEB",
                redirect_url: &web.redirect_url,
                return_url: &web.return_url,
                template_url: None,
                card_type: &web.card_type,
                culture: &web.culture,
                secure_mode: &web.secure_mode,
                billing: web.billing.as_ref(),
                shipping: web.shipping.as_ref(),
                statement_descriptor: web.statement_descriptor.as_deref(),
                bank_name: None,
            }),
            PayInDetail::BankWire(wire) => serde_json::to_value(BankWirePayInView {
                base,
                payment_type: "BANK_WIRE",
                execution_type: "DIRECT",
                declared_debited_funds: &wire.declared_debited_funds,
                declared_fees: &wire.declared_fees,
                wire_reference: &wire.wire_reference,
                bank_account: bank_account(),
                transaction_details: [],
            }),
        };
        view.ok()
    }
}

/// Which pay-ins a typed view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Any,
    CardDirect,
    CardWeb,
    BankWire,
}

impl Kind {
    fn matches(self, detail: &PayInDetail) -> bool {
        matches!(
            (self, detail),
            (Kind::Any, _)
                | (Kind::CardDirect, PayInDetail::Card(_))
                | (Kind::CardWeb, PayInDetail::Web(_))
                | (Kind::BankWire, PayInDetail::BankWire(_))
        )
    }
}

/// The stored pay-in `id` of `kind` as the API answers it, or 404.
fn payin_response(ledger: &Ledger, id: &str, kind: Kind) -> Result<Response, ApiError> {
    ledger
        .transaction(id)
        .filter(|r| r.payin().is_some_and(|d| kind.matches(d)))
        .and_then(TransactionRecord::payin_json)
        .map(|view| json_response(StatusCode::OK, &view))
        .ok_or_else(|| ApiError::not_found("PayIn", id))
}

/// `url` with `transactionId={id}` appended, as Mangopay hands return URLs back.
fn with_transaction_id(url: &str, id: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}transactionId={id}")
}

/// `StatementDescriptor`: at most 10 letters, digits and spaces.
fn statement_descriptor(f: &mut Fields<'_>) -> Option<String> {
    let text = f.text("StatementDescriptor", 0, 255, false)?;
    if text.chars().count() <= 10 && text.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ') {
        Some(text)
    } else {
        f.error(
            "StatementDescriptor",
            "The field StatementDescriptor must be at most 10 characters long, letters, digits and spaces only.",
        );
        None
    }
}

/// An optional object (`Billing`, `Shipping`), echoed as sent.
fn object(f: &mut Fields<'_>, body: &Map<String, Value>, key: &str) -> Option<Value> {
    match body.get(key) {
        None | Some(Value::Null) => None,
        Some(value @ Value::Object(_)) => Some(value.clone()),
        Some(_) => {
            f.error(key, format!("The field {key} must be an object."));
            None
        }
    }
}

/// `BrowserInfo`: every documented key, its booleans read as the SDKs send them (`true` or
/// `1`), the other values echoed as sent.
fn browser_info(f: &mut Fields<'_>, body: &Map<String, Value>) -> Option<Map<String, Value>> {
    let object = match body.get("BrowserInfo") {
        None | Some(Value::Null) => {
            f.missing("BrowserInfo");
            return None;
        }
        Some(Value::Object(object)) => object,
        Some(_) => {
            f.error("BrowserInfo", "The field BrowserInfo must be an object.");
            return None;
        }
    };
    let mut sub = Fields::new(object, 0);
    let mut info = Map::new();
    for key in BROWSER_INFO {
        let value = match key {
            "JavaEnabled" | "JavascriptEnabled" => sub.boolean(key).map(Value::Bool),
            _ => match object.get(key) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.is_empty() => None,
                Some(value @ (Value::String(_) | Value::Number(_))) => Some(value.clone()),
                Some(_) => {
                    sub.error(
                        key,
                        format!("The field {key} must be a string or a number."),
                    );
                    continue;
                }
            },
        };
        match value {
            Some(value) => {
                info.insert(key.to_owned(), value);
            }
            // A value already refused keeps its own message.
            None => sub.missing(key),
        }
    }
    if let Err(errors) = sub.finish() {
        for (field, message) in errors {
            f.error(
                &format!("BrowserInfo.{field}"),
                message.replace(&field, &format!("BrowserInfo.{field}")),
            );
        }
        return None;
    }
    Some(info)
}

/// `IpAddress`: an IPv4 or IPv6 address.
fn ip_address(f: &mut Fields<'_>) -> Option<String> {
    let text = f.text("IpAddress", 1, 255, true)?;
    if text.parse::<std::net::IpAddr>().is_ok() {
        Some(text)
    } else {
        f.error(
            "IpAddress",
            "The field IpAddress must be an IPv4 or IPv6 address.",
        );
        None
    }
}

/// A value of `allowed` matched case-insensitively, returned as `allowed` spells it.
fn spelled_as(f: &mut Fields<'_>, key: &str, allowed: &[&'static str]) -> Option<&'static str> {
    let upper: Vec<String> = allowed.iter().map(|a| a.to_ascii_uppercase()).collect();
    let upper: Vec<&str> = upper.iter().map(String::as_str).collect();
    let value = f.one_of(key, &upper, false)?;
    allowed
        .iter()
        .copied()
        .find(|a| a.eq_ignore_ascii_case(&value))
}

/// The author, credited wallet and funds every pay-in body has.
struct Funding {
    author_id: String,
    credited_wallet_id: String,
    debited_funds: Money,
    fees: Money,
}

/// Unwraps the fields of a body whose problems were all reported.
fn funding(
    author_id: Option<String>,
    credited_wallet_id: Option<String>,
    debited_funds: Option<Money>,
    fees: Option<Money>,
) -> Funding {
    let (Some(author_id), Some(credited_wallet_id), Some(debited_funds), Some(fees)) =
        (author_id, credited_wallet_id, debited_funds, fees)
    else {
        unreachable!("required fields were checked");
    };
    Funding {
        author_id,
        credited_wallet_id,
        debited_funds,
        fees,
    }
}

/// Checks that the author of a pay-in exists (before the ledger is locked).
fn check_author(sandbox: &Sandbox, funding: &Funding) -> Result<(), ApiError> {
    if sandbox.shared().users().get(&funding.author_id).is_none() {
        return Err(ApiError::not_found("User", &funding.author_id));
    }
    Ok(())
}

/// The checks every pay-in makes against the ledger: its credited wallet exists, in the
/// currency of the funds. Returns the wallet's owner.
fn check_funding(ledger: &Ledger, funding: &Funding) -> Result<String, ApiError> {
    let wallet = ledger
        .wallet(&funding.credited_wallet_id)
        .ok_or_else(|| ApiError::not_found("Wallet", &funding.credited_wallet_id))?;
    check_currencies(&wallet.currency, &funding.debited_funds, &funding.fees)?;
    Ok(wallet.owner.clone())
}

/// A new `CREATED` pay-in record.
fn record(
    id: String,
    now: chrono::DateTime<chrono::Utc>,
    tag: Option<String>,
    funding: Funding,
    credited_user_id: String,
    detail: PayInDetail,
) -> TransactionRecord {
    TransactionRecord {
        id,
        tag,
        creation_date: now.timestamp(),
        created_at_ms: now.timestamp_millis(),
        author_id: funding.author_id,
        credited_user_id: Some(credited_user_id),
        debited_funds: funding.debited_funds,
        fees: funding.fees,
        status: Status::Created,
        result: None,
        execution_date: None,
        debited_wallet_id: None,
        credited_wallet_id: Some(funding.credited_wallet_id),
        detail: Detail::PayIn(detail),
    }
}

/// `POST /v2.01/{ClientId}/payins/card/direct`. `PaymentType`, `ExecutionType` and unknown
/// keys are ignored; `CreditedUserId` is the credited wallet's owner.
pub(crate) async fn payins_card_direct_create(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let now = sandbox.clock().now();
    let mut f = Fields::new(&body, now.timestamp());
    let tag = f.text("Tag", 0, 255, false);
    let author_id = f.text("AuthorId", 1, 255, true);
    let debited_funds = ledger::money(&mut f, &body, "DebitedFunds");
    let fees = ledger::money(&mut f, &body, "Fees");
    let credited_wallet_id = f.text("CreditedWalletId", 1, 255, true);
    let secure_mode = f.one_of("SecureMode", &SECURE_MODES, false);
    let card_id = f.text("CardId", 1, 255, true);
    let return_url = f.text("SecureModeReturnURL", 1, 255, true);
    let culture = f.one_of("Culture", &CULTURES, false);
    let statement_descriptor = statement_descriptor(&mut f);
    let browser_info = browser_info(&mut f, &body);
    let ip_address = ip_address(&mut f);
    let billing = object(&mut f, &body, "Billing");
    let shipping = object(&mut f, &body, "Shipping");
    let requested_3ds_version = f.one_of("Requested3DSVersion", &["V1", "V2_1"], false);
    let preferred_card_network = f.one_of(
        "PreferredCardNetwork",
        &["VISA", "MASTERCARD", "CB", "MAESTRO"],
        false,
    );
    let payment_category = spelled_as(&mut f, "PaymentCategory", &PAYMENT_CATEGORIES);
    check_fees(&mut f, debited_funds.as_ref(), fees.as_ref());
    f.finish().map_err(ApiError::param_errors)?;
    let (Some(card_id), Some(return_url), Some(browser_info), Some(ip_address)) =
        (card_id, return_url, browser_info, ip_address)
    else {
        unreachable!("required fields were checked");
    };
    let funding = funding(author_id, credited_wallet_id, debited_funds, fees);
    let id = format!("payin_m_{}", ids::ulid(now, &mut *sandbox.shared().rng()));

    check_author(&sandbox, &funding)?;
    let mut ledger = sandbox.shared().ledger();
    let credited_user_id = check_funding(&ledger, &funding)?;
    let card = ledger
        .cards
        .card(&card_id)
        .ok_or_else(|| ApiError::not_found("Card", &card_id))?;
    if card.user_id != funding.author_id {
        return Err(ApiError::card_refused("Author is not the card owner"));
    }
    if !card.active {
        return Err(ApiError::card_refused("The card is not active"));
    }
    if card.currency != funding.debited_funds.currency {
        return Err(ApiError::currency_incompatibility(format!(
            "The card's currency {} and the debitedAmount's currency {} must be the same",
            card.currency, funding.debited_funds.currency
        )));
    }
    let secure_mode = secure_mode.unwrap_or_else(|| SECURE_MODES[0].to_owned());
    let behaviour = card.behaviour;
    let secure_mode_needed = match behaviour {
        Behaviour::Frictionless => secure_mode == "FORCE",
        Behaviour::Challenge | Behaviour::ThreeDsNotAvailable => true,
        Behaviour::DoNotHonor => false,
    };
    let detail = CardPayIn {
        secure_mode,
        card_id: card_id.clone(),
        return_url: with_transaction_id(&return_url, &id),
        redirect_url: secure_mode_needed
            .then(|| format!("{}/_sandbox/secure-mode/{id}", origin(&headers))),
        secure_mode_needed,
        culture: culture.unwrap_or_else(|| "EN".to_owned()),
        statement_descriptor,
        browser_info,
        ip_address,
        billing,
        shipping,
        requested_3ds_version,
        preferred_card_network,
        payment_category: payment_category.unwrap_or(PAYMENT_CATEGORIES[0]).to_owned(),
        card_info: card.card_info(),
        behaviour,
    };
    let mut record = record(
        id.clone(),
        now,
        tag,
        funding,
        credited_user_id,
        PayInDetail::Card(Box::new(detail)),
    );
    if behaviour == Behaviour::DoNotHonor {
        record.fail(DO_NOT_HONOR_RESULT.0, DO_NOT_HONOR_RESULT.1);
        ledger.cards.record_payment(&card_id, false);
    } else if !secure_mode_needed {
        credit(&mut ledger, &mut record, now.timestamp());
        ledger.cards.record_payment(&card_id, true);
    }
    ledger.insert_transaction(record);
    payin_response(&ledger, &id, Kind::Any)
}

/// Books a pay-in that went through: its wallet gets `DebitedFunds - Fees`, the client's Fees
/// Wallet the fees.
fn credit(ledger: &mut Ledger, record: &mut TransactionRecord, at: i64) {
    if let Some(wallet_id) = &record.credited_wallet_id {
        ledger.add_to_wallet(wallet_id, record.credited_funds().amount);
    }
    ledger.add_fees(&record.fees.currency, record.fees.amount);
    record.succeed(at);
}

/// `POST /v2.01/{ClientId}/payins/card/web`.
pub(crate) async fn payins_card_web_create(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let now = sandbox.clock().now();
    let mut f = Fields::new(&body, now.timestamp());
    let tag = f.text("Tag", 0, 255, false);
    let author_id = f.text("AuthorId", 1, 255, true);
    let debited_funds = ledger::money(&mut f, &body, "DebitedFunds");
    let fees = ledger::money(&mut f, &body, "Fees");
    let credited_wallet_id = f.text("CreditedWalletId", 1, 255, true);
    let return_url = f.text("ReturnURL", 1, 255, true);
    let card_type = f.one_of("CardType", &CARD_TYPES, false);
    let culture = f.one_of("Culture", &CULTURES, true);
    let secure_mode = f.one_of("SecureMode", &SECURE_MODES, false);
    let billing = object(&mut f, &body, "Billing");
    let shipping = object(&mut f, &body, "Shipping");
    let statement_descriptor = statement_descriptor(&mut f);
    check_fees(&mut f, debited_funds.as_ref(), fees.as_ref());
    f.finish().map_err(ApiError::param_errors)?;
    let (Some(return_url), Some(culture)) = (return_url, culture) else {
        unreachable!("required fields were checked");
    };
    let funding = funding(author_id, credited_wallet_id, debited_funds, fees);
    let id = format!("payin_m_{}", ids::ulid(now, &mut *sandbox.shared().rng()));

    check_author(&sandbox, &funding)?;
    let mut ledger = sandbox.shared().ledger();
    let credited_user_id = check_funding(&ledger, &funding)?;
    let detail = WebPayIn {
        redirect_url: format!("{}/_sandbox/web-payment/{id}", origin(&headers)),
        return_url: with_transaction_id(&return_url, &id),
        card_type: card_type.unwrap_or_else(|| CARD_TYPES[0].to_owned()),
        culture,
        secure_mode: secure_mode.unwrap_or_else(|| SECURE_MODES[0].to_owned()),
        statement_descriptor,
        billing,
        shipping,
    };
    ledger.insert_transaction(record(
        id.clone(),
        now,
        tag,
        funding,
        credited_user_id,
        PayInDetail::Web(Box::new(detail)),
    ));
    payin_response(&ledger, &id, Kind::Any)
}

/// `POST /v2.01/{ClientId}/payins/bankwire/direct`: a declaration of funds to be wired, shown
/// with placeholder `DebitedFunds`, `CreditedFunds` and `Fees` (`XXX`, 0) until they arrive.
pub(crate) async fn payins_bankwire_create(
    State(sandbox): State<Sandbox>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let now = sandbox.clock().now();
    let mut f = Fields::new(&body, now.timestamp());
    let tag = f.text("Tag", 0, 255, false);
    let author_id = f.text("AuthorId", 1, 255, true);
    let credited_wallet_id = f.text("CreditedWalletId", 1, 255, true);
    let declared_debited_funds = ledger::money(&mut f, &body, "DeclaredDebitedFunds");
    let declared_fees = ledger::money(&mut f, &body, "DeclaredFees");
    check_fees_on(
        &mut f,
        declared_debited_funds.as_ref(),
        declared_fees.as_ref(),
        "DeclaredFees",
    );
    f.finish().map_err(ApiError::param_errors)?;
    let funding = funding(
        author_id,
        credited_wallet_id,
        declared_debited_funds,
        declared_fees,
    );
    let (id, candidates) = {
        let mut rng = sandbox.shared().rng();
        let id = format!("payin_m_{}", ids::ulid(now, &mut *rng));
        let candidates: Vec<String> = (0..4)
            .map(|_| ids::random_text(&mut *rng, ids::UPPER_ALPHANUMERIC, 10))
            .collect();
        (id, candidates)
    };

    check_author(&sandbox, &funding)?;
    let mut ledger = sandbox.shared().ledger();
    let credited_user_id = check_funding(&ledger, &funding)?;
    let taken = |reference: &str| {
        ledger.transactions().iter().any(|r| {
            matches!(r.payin(), Some(PayInDetail::BankWire(wire)) if wire.wire_reference == reference)
        })
    };
    let wire_reference = candidates
        .into_iter()
        .find(|c| !taken(c))
        .unwrap_or_else(|| id["payin_m_".len()..].to_owned());
    let placeholder = Money {
        currency: "XXX".to_owned(),
        amount: 0,
    };
    let detail = BankWirePayIn {
        declared_debited_funds: funding.debited_funds.clone(),
        declared_fees: funding.fees.clone(),
        wire_reference,
    };
    let funding = Funding {
        debited_funds: placeholder.clone(),
        fees: placeholder,
        ..funding
    };
    ledger.insert_transaction(record(
        id.clone(),
        now,
        tag,
        funding,
        credited_user_id,
        PayInDetail::BankWire(Box::new(detail)),
    ));
    payin_response(&ledger, &id, Kind::Any)
}

/// `GET /v2.01/{ClientId}/payins/{PayInId}`: any pay-in.
pub(crate) async fn payins_get(
    State(sandbox): State<Sandbox>,
    Path((_client_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    payin_response(&sandbox.shared().ledger(), &id, Kind::Any)
}

/// `GET /v2.01/{ClientId}/payins/card/direct/{PayInId}`: a direct card pay-in.
pub(crate) async fn payins_card_direct_get(
    State(sandbox): State<Sandbox>,
    Path((_client_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    payin_response(&sandbox.shared().ledger(), &id, Kind::CardDirect)
}

/// `GET /v2.01/{ClientId}/payins/card/web/{PayInId}`: a web card pay-in.
pub(crate) async fn payins_card_web_get(
    State(sandbox): State<Sandbox>,
    Path((_client_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    payin_response(&sandbox.shared().ledger(), &id, Kind::CardWeb)
}

/// `GET /v2.01/{ClientId}/payins/bankwire/direct/{PayInId}`: a bank wire pay-in.
pub(crate) async fn payins_bankwire_get(
    State(sandbox): State<Sandbox>,
    Path((_client_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    payin_response(&sandbox.shared().ledger(), &id, Kind::BankWire)
}

/// Settlement of `CREATED` pay-ins.
impl Ledger {
    /// Settles the `CREATED` pay-in at `index` as `outcome` says, at `at` (Unix seconds). A
    /// card pay-in completes its 3-D Secure step (which fails for
    /// [`Behaviour::ThreeDsNotAvailable`]); an amount received counts only for a bank wire.
    fn settle_payin_at(&mut self, index: usize, outcome: &PayInOutcome, at: i64) {
        self.pending_payins.retain(|&i| i != index);
        let mut record = self.transactions()[index].clone();
        let card = match record.payin() {
            Some(PayInDetail::Card(card)) => Some((card.card_id.clone(), card.behaviour)),
            _ => None,
        };
        let failure = match outcome {
            PayInOutcome::Failed {
                result_code,
                result_message,
            } => Some((result_code.as_str(), result_message.as_str())),
            _ if card.as_ref().map(|(_, b)| *b) == Some(Behaviour::ThreeDsNotAvailable) => {
                Some(THREE_DS_NOT_AVAILABLE_RESULT)
            }
            _ => None,
        };
        if let Some((code, message)) = failure {
            record.fail(code, message);
        } else {
            if let Some(PayInDetail::BankWire(wire)) = record.payin() {
                let amount = match outcome {
                    PayInOutcome::Received { amount } => *amount,
                    _ => wire.declared_debited_funds.amount,
                };
                let currency = wire.declared_debited_funds.currency.clone();
                record.fees = Money {
                    currency: currency.clone(),
                    amount: wire.declared_fees.amount.min(amount),
                };
                record.debited_funds = Money { currency, amount };
            }
            credit(self, &mut record, at);
        }
        if let Some((card_id, _)) = card {
            self.cards
                .record_payment(&card_id, record.status == Status::Succeeded);
        }
        *self.transaction_at_mut(index) = record;
    }

    /// Settles the pay-ins created at least [`Knobs::payin_settle_after`] before `now_ms`
    /// (sandbox clock) as [`Knobs::payin_outcome`] says, each at the instant it became due.
    pub(crate) fn settle_payins_due(&mut self, now_ms: i64, knobs: &Knobs) {
        if self.pending_payins.is_empty() {
            return;
        }
        let Some(after) = knobs.payin_settle_after() else {
            return;
        };
        let after_ms = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
        let due: Vec<(usize, i64)> = self
            .pending_payins
            .iter()
            .filter_map(|&i| {
                let due_at = self.transactions()[i]
                    .created_at_ms
                    .saturating_add(after_ms);
                (due_at <= now_ms).then_some((i, due_at))
            })
            .collect();
        if due.is_empty() {
            return;
        }
        let outcome = knobs.payin_outcome();
        for (index, due_at_ms) in due {
            self.settle_payin_at(index, &outcome, due_at_ms.div_euclid(1000));
        }
    }

    /// Settles the pay-in `id` now (a control request). `outcome` `None`: `FAILED` with the
    /// default result of its kind.
    fn settle_payin(
        &mut self,
        id: &str,
        outcome: Option<PayInOutcome>,
        now: i64,
    ) -> Result<&TransactionRecord, SettleError> {
        let index = self
            .transaction_index(id)
            .filter(|&i| self.transactions()[i].payin().is_some())
            .ok_or(SettleError::Unknown)?;
        let record = &self.transactions()[index];
        if record.status != Status::Created {
            return Err(SettleError::NotCreated(record.status));
        }
        let is_bank_wire = matches!(record.payin(), Some(PayInDetail::BankWire(_)));
        let outcome = match outcome {
            Some(PayInOutcome::Received { .. }) if !is_bank_wire => {
                return Err(SettleError::NotBankWire);
            }
            Some(outcome) => outcome,
            None => {
                let (code, message) = match record.payin() {
                    Some(PayInDetail::Card(_)) => DO_NOT_HONOR_RESULT,
                    _ => PAYMENT_PERIOD_EXPIRED,
                };
                PayInOutcome::Failed {
                    result_code: code.to_owned(),
                    result_message: message.to_owned(),
                }
            }
        };
        self.settle_payin_at(index, &outcome, now);
        Ok(&self.transactions()[index])
    }
}

fn settle(
    sandbox: &Sandbox,
    id: &str,
    outcome: Option<PayInOutcome>,
) -> Result<Value, SettleError> {
    let now = sandbox.clock().now().timestamp();
    let mut ledger = sandbox.shared().ledger();
    ledger
        .settle_payin(id, outcome, now)
        .map(|record| record.payin_json().unwrap_or(Value::Null))
}

fn settle_error(id: &str, error: SettleError) -> ApiError {
    match error {
        SettleError::Unknown => ApiError::not_found("PayIn", id),
        SettleError::NotCreated(status) => {
            ApiError::invalid_action(format!("The pay-in is {}, not CREATED.", status.as_str()))
        }
        SettleError::NotBankWire => {
            ApiError::param_error("Amount", "Only a bank wire pay-in receives an amount.")
        }
    }
}

/// `POST /_sandbox/payins/{PayInId}/settle`: `{"Status": "SUCCEEDED"}` (with `"Amount"` for a
/// bank wire that received another amount than declared), or `{"Status": "FAILED",
/// "ResultCode": "...", "ResultMessage": "..."}` (by default `101101` for a card pay-in,
/// `101109` "The payment period has expired" for a web card pay-in or a bank wire).
pub(crate) async fn control_payin_settle(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let mut f = Fields::new(&body, 0);
    let status = f.one_of("Status", &["SUCCEEDED", "FAILED"], true);
    let result_code = f.text("ResultCode", 1, 255, false);
    let result_message = f.text("ResultMessage", 1, 255, false);
    let amount = body
        .get("Amount")
        .filter(|v| !v.is_null())
        .and_then(|_| ledger::amount(&mut f, &body, "Amount", "Amount"));
    if amount == Some(0) {
        f.error("Amount", "The field Amount must be at least 1.");
    }
    if amount.is_some() && status.as_deref() == Some("FAILED") {
        f.error("Amount", "A FAILED pay-in receives no amount.");
    }
    f.finish().map_err(ApiError::param_errors)?;
    let outcome = match (status.as_deref(), amount) {
        (Some("FAILED"), _) => match (result_code, result_message) {
            (None, None) => None,
            (code, message) => Some(PayInOutcome::Failed {
                result_code: code.unwrap_or_else(|| DO_NOT_HONOR_RESULT.0.to_owned()),
                result_message: message.unwrap_or_else(|| "Transaction refused".to_owned()),
            }),
        },
        (_, Some(amount)) => Some(PayInOutcome::Received { amount }),
        _ => Some(PayInOutcome::Succeeded),
    };
    settle(&sandbox, &id, outcome)
        .map(|payin| json_response(StatusCode::OK, &payin))
        .map_err(|error| settle_error(&id, error))
}

/// `GET /_sandbox/secure-mode/{PayInId}` and `GET /_sandbox/web-payment/{PayInId}`: the page a
/// buyer is sent to, which only says how a test settles the pay-in.
pub(crate) async fn control_payment_page(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
) -> Response {
    let status = sandbox
        .shared()
        .ledger()
        .transaction(&id)
        .filter(|r| r.payin().is_some())
        .map(|r| r.status.as_str());
    let (code, body) = match status {
        Some(status) => (
            StatusCode::OK,
            format!(
                "<!DOCTYPE html><html><head><title>Mangopay sandbox payment</title></head><body>\
                 <h1>Pay-in {id}</h1><p>Status: {status}.</p><p>This sandbox page stands for the \
                 payment step. Settle the pay-in with <code>POST /_sandbox/payins/{id}/settle</code> \
                 and <code>{{\"Status\": \"SUCCEEDED\"}}</code> or \
                 <code>{{\"Status\": \"FAILED\"}}</code>.</p></body></html>"
            ),
        ),
        None => (
            StatusCode::NOT_FOUND,
            "<!DOCTYPE html><html><body><p>No such pay-in.</p></body></html>".to_owned(),
        ),
    };
    let mut response = (code, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// Pay-ins as the API shows them, and their settlement.
impl Sandbox {
    /// Every pay-in, oldest first, as `GET /payins/{Id}` answers it.
    pub fn payins(&self) -> Vec<Value> {
        let ledger = self.shared().ledger();
        ledger
            .transactions()
            .iter()
            .filter_map(TransactionRecord::payin_json)
            .collect()
    }

    /// One pay-in as `GET /payins/{Id}` answers it.
    pub fn payin(&self, id: &str) -> Option<Value> {
        self.shared()
            .ledger()
            .transaction(id)
            .and_then(TransactionRecord::payin_json)
    }

    /// Settles a `CREATED` pay-in now, as the control request
    /// `POST /_sandbox/payins/{PayInId}/settle` does, and returns it as `GET /payins/{Id}`
    /// answers it: a card pay-in completes its 3-D Secure step (with test card
    /// [`crate::test_cards::THREE_DS_NOT_AVAILABLE`], [`PayInOutcome::Succeeded`] still fails
    /// with `101399`), a web card pay-in its payment page, a bank wire receives its funds
    /// ([`PayInOutcome::Received`] for another amount than declared). Err names why not: no
    /// such pay-in, not `CREATED`, an amount received by a card pay-in or below 1.
    pub fn settle_payin(&self, id: &str, outcome: PayInOutcome) -> Result<Value, String> {
        if let PayInOutcome::Received { amount } = outcome
            && amount < 1
        {
            return Err("The amount received must be at least 1.".to_owned());
        }
        settle(self, id, Some(outcome)).map_err(|error| settle_error(id, error).describe())
    }
}
