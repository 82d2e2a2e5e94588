//! `MangopayPayIn`: money into a wallet, mirrored from Mangopay's pay-in objects: a direct card
//! pay-in ([Direct Card PayIn](https://docs.mangopay.com/api-reference/direct-card-payins/direct-card-payin-object),
//! with 3-D Secure), a web card pay-in (Mangopay's hosted payment page) or a bank wire
//! ([Bank Wire PayIn](https://docs.mangopay.com/api-reference/bank-wire-payins/bank-wire-payin-object)).
//!
//! A pay-in that needs the cardholder (3-D Secure, the payment page) or a bank (a wire) is
//! `CREATED` until it settles: it is followed ([`MangopayPayIn::poll_status`], the
//! `update_mangopay_pay_in` job) on a backoff with a cap ([`Polling::pay_ins`]).

use std::net::IpAddr;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::money::{self, Money};
use super::parent::{self, Parent};
use super::transaction::{
    FactsFromApi, TransactionColumns, TransactionFacts, check_amounts, stored_currency,
};
use super::types::{CardType, SecureMode, TransactionStatus, read};
use super::user::validate_tag;
use crate::db::{AnyConnection, MultiBackend};
use crate::schema::mangopay_pay_ins as pay_ins;
use crate::sync::body::CreateBody;
use crate::sync::follow::{self, Followed, Poll, Polling};
use crate::sync::{ApiRequest, Listing, Resource, Scope, SyncInfo, SyncTable, UpdateRequest};
use crate::validate::{FieldErrorKind, ValidationErrors};
use crate::{Db, Error, MangopayClient};

/// Whether the answer's `key` funds are in `currency` (a bank wire not received yet answers
/// placeholder funds in `XXX`).
pub(crate) fn in_currency(p: &Value, key: &str, currency: crate::validate::CurrencyCode) -> bool {
    p.get(key)
        .and_then(|m| m.get("Currency"))
        .and_then(Value::as_str)
        == Some(currency.as_str())
}

/// What a settled pay-in actually took, from Mangopay's answer: `(debited, fees)`, when the
/// answer holds them in `currency` (a bank wire's received funds may differ from those
/// declared).
pub(crate) fn settled_amounts(
    payload: &Value,
    currency: crate::validate::CurrencyCode,
) -> Option<(i64, i64)> {
    let amount = |key: &str| {
        in_currency(payload, key, currency)
            .then(|| payload[key].get("Amount").and_then(Value::as_i64))
            .flatten()
    };
    Some((amount("DebitedFunds")?, amount("Fees")?))
}

/// The table holding every pay-in's sync columns.
pub const PAY_INS: SyncTable = SyncTable::new("mangopay_pay_ins");

/// The cardholder's browser, which 3-D Secure 2 requires on a direct card pay-in
/// (`BrowserInfo`), as the page that collected the payment read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BrowserInfo {
    /// The `Accept` header the browser sent.
    pub accept_header: String,
    /// `navigator.javaEnabled()`.
    pub java_enabled: bool,
    /// `navigator.language`, such as `fr-FR`.
    pub language: String,
    /// `screen.colorDepth`: 1, 4, 8, 15, 16, 24, 32 or 48.
    pub color_depth: i32,
    /// `screen.height`, in pixels.
    pub screen_height: i32,
    /// `screen.width`, in pixels.
    pub screen_width: i32,
    /// `new Date().getTimezoneOffset()`, in minutes.
    pub time_zone_offset: i32,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// Whether JavaScript runs.
    pub javascript_enabled: bool,
}

impl BrowserInfo {
    fn validate(&self, e: &mut ValidationErrors) {
        let text = |e: &mut ValidationErrors, field: &'static str, value: &str, max: usize| {
            e.check(field, crate::validate::required(value));
            e.check(field, crate::validate::max_len(value, max));
        };
        text(e, "browser_info.accept_header", &self.accept_header, 2048);
        text(e, "browser_info.language", &self.language, 8);
        text(e, "browser_info.user_agent", &self.user_agent, 2048);
        if ![1, 4, 8, 15, 16, 24, 32, 48].contains(&self.color_depth) {
            e.push(
                "browser_info.color_depth",
                FieldErrorKind::NotAllowed(format!(
                    "must be 1, 4, 8, 15, 16, 24, 32 or 48, not {}",
                    self.color_depth
                )),
            );
        }
        for (field, value) in [
            ("browser_info.screen_height", self.screen_height),
            ("browser_info.screen_width", self.screen_width),
        ] {
            if !(1..=99_999).contains(&value) {
                e.push(
                    field,
                    FieldErrorKind::NotAllowed(format!("must be 1 to 99999 pixels, not {value}")),
                );
            }
        }
        if !(-840..=840).contains(&self.time_zone_offset) {
            e.push(
                "browser_info.time_zone_offset",
                FieldErrorKind::NotAllowed(format!(
                    "must be -840 to 840 minutes, not {}",
                    self.time_zone_offset
                )),
            );
        }
    }
}

/// How the money comes in.
#[derive(Debug, Clone, PartialEq)]
pub enum PayInMethod {
    /// `POST /payins/card/direct`: a registered card charged at once, with 3-D Secure when
    /// the card, the amount or `secure_mode` require it.
    CardDirect {
        /// `CardId`: the local id of a [`MangopayCard`](crate::MangopayCard) of the author.
        card_id: i64,
        /// `SecureMode`.
        secure_mode: SecureMode,
        /// `SecureModeReturnURL`: where the cardholder comes back after 3-D Secure.
        secure_mode_return_url: String,
        /// `BrowserInfo`.
        browser_info: BrowserInfo,
        /// `IpAddress` of the cardholder (IPv4 or IPv6).
        ip_address: String,
    },
    /// `POST /payins/card/web`: the cardholder pays on Mangopay's hosted page
    /// (`RedirectURL`) and comes back to `return_url`.
    CardWeb {
        /// `ReturnURL`.
        return_url: String,
        /// `CardType` accepted on the page.
        card_type: CardType,
        /// `SecureMode`.
        secure_mode: SecureMode,
    },
    /// `POST /payins/bankwire/direct`: the user wires the declared funds to the bank account
    /// Mangopay answers (`BankAccount`), quoting `WireReference`.
    BankWire,
}

impl PayInMethod {
    fn types(&self) -> (&'static str, &'static str) {
        match self {
            PayInMethod::CardDirect { .. } => ("CARD", "DIRECT"),
            PayInMethod::CardWeb { .. } => ("CARD", "WEB"),
            PayInMethod::BankWire => ("BANK_WIRE", "DIRECT"),
        }
    }
}

/// A pay-in, kept in `mangopay_pay_ins`.
///
/// Build one with [`card_direct`](Self::card_direct), [`card_web`](Self::card_web) or
/// [`bank_wire`](Self::bank_wire), [`save`](Self::save) and [`create`](Self::create) it (or
/// enqueue `create_mangopay_pay_in`). A refused card payment is recorded `FAILED` with
/// Mangopay's result code and message; a pay-in waiting for 3-D Secure
/// ([`secure_mode_redirect_url`](PayInFacts::secure_mode_redirect_url)), the payment page
/// ([`redirect_url`](PayInFacts::redirect_url)) or a wire stays `CREATED` until it settles.
/// A pay-in is never updated.
#[derive(Debug, Clone, PartialEq)]
pub struct MangopayPayIn {
    /// The local id; `None` until the first save.
    pub id: Option<i64>,
    /// `AuthorId`: the local id of the paying user.
    pub author_id: i64,
    /// `CreditedWalletId`: the local id of the wallet credited.
    pub credited_wallet_id: i64,
    /// `DebitedFunds` (`DeclaredDebitedFunds` for a bank wire).
    pub debited_funds: Money,
    /// `Fees` (`DeclaredFees`), in the same currency; zero for none.
    pub fees: Money,
    /// How the money comes in.
    pub method: PayInMethod,
    /// `StatementDescriptor` on the cardholder's statement: up to 10 letters, digits or
    /// spaces (card pay-ins).
    pub statement_descriptor: Option<String>,
    /// `Culture`: the language of the payment page or 3-D Secure screens (`EN`, `FR`, ...).
    pub culture: Option<String>,
    /// `Tag`.
    pub tag: Option<String>,
    facts: PayInFacts,
    parents: Parents,
    sync: SyncInfo,
}

/// What Mangopay says about a pay-in, and how far the library has followed it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PayInFacts {
    /// Status, result, credited funds, dates.
    pub transaction: TransactionFacts,
    /// `SecureModeNeeded`: the cardholder must complete 3-D Secure.
    pub secure_mode_needed: Option<bool>,
    /// `SecureModeRedirectURL`: where to send the cardholder for 3-D Secure.
    pub secure_mode_redirect_url: Option<String>,
    /// `RedirectURL`: the payment page of a web pay-in.
    pub redirect_url: Option<String>,
    /// `WireReference`: what the bank wire must quote.
    pub wire_reference: Option<String>,
    /// `BankAccount`: where the bank wire goes, as Mangopay gave it.
    pub bank_account: Option<Value>,
    /// How many times its status was checked while following it.
    pub status_checks: i32,
    /// When the worker checks it next, while it is followed; `None` once settled.
    pub next_check_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Parents {
    author: Parent,
    wallet: Parent,
    card: Parent,
}

impl MangopayPayIn {
    fn new(
        author_id: i64,
        credited_wallet_id: i64,
        debited_funds: Money,
        fees: Money,
        method: PayInMethod,
    ) -> MangopayPayIn {
        MangopayPayIn {
            id: None,
            author_id,
            credited_wallet_id,
            debited_funds,
            fees,
            method,
            statement_descriptor: None,
            culture: None,
            tag: None,
            facts: PayInFacts::default(),
            parents: Parents::default(),
            sync: SyncInfo::default(),
        }
    }

    /// A direct card pay-in of `debited_funds` less `fees` into the wallet
    /// `credited_wallet_id`, charged to the card `card_id` of the user `author_id` (local
    /// ids), with `SecureMode` `DEFAULT`; not saved yet.
    #[allow(clippy::too_many_arguments)]
    pub fn card_direct(
        author_id: i64,
        credited_wallet_id: i64,
        card_id: i64,
        debited_funds: Money,
        fees: Money,
        secure_mode_return_url: impl Into<String>,
        browser_info: BrowserInfo,
        ip_address: impl Into<String>,
    ) -> Result<MangopayPayIn, ValidationErrors> {
        let method = PayInMethod::CardDirect {
            card_id,
            secure_mode: SecureMode::Default,
            secure_mode_return_url: secure_mode_return_url.into(),
            browser_info,
            ip_address: ip_address.into(),
        };
        let pay_in = Self::new(author_id, credited_wallet_id, debited_funds, fees, method);
        pay_in.validate().map(|()| pay_in)
    }

    /// A web card pay-in: the user `author_id` pays `debited_funds` on Mangopay's payment
    /// page, in `culture` (`EN`, `FR`, ...), and comes back to `return_url`; the wallet
    /// `credited_wallet_id` receives them less `fees`. Not saved yet.
    pub fn card_web(
        author_id: i64,
        credited_wallet_id: i64,
        debited_funds: Money,
        fees: Money,
        return_url: impl Into<String>,
        culture: impl Into<String>,
    ) -> Result<MangopayPayIn, ValidationErrors> {
        let method = PayInMethod::CardWeb {
            return_url: return_url.into(),
            card_type: CardType::CbVisaMastercard,
            secure_mode: SecureMode::Default,
        };
        let mut pay_in = Self::new(author_id, credited_wallet_id, debited_funds, fees, method);
        pay_in.culture = Some(culture.into());
        pay_in.validate().map(|()| pay_in)
    }

    /// A bank-wire pay-in: the user `author_id` declares a wire of `declared_debited_funds`,
    /// of which `declared_fees` go to the platform, into the wallet `credited_wallet_id`.
    /// Mangopay answers where to wire them (`BankAccount`, `WireReference`). Not saved yet.
    pub fn bank_wire(
        author_id: i64,
        credited_wallet_id: i64,
        declared_debited_funds: Money,
        declared_fees: Money,
    ) -> Result<MangopayPayIn, ValidationErrors> {
        let pay_in = Self::new(
            author_id,
            credited_wallet_id,
            declared_debited_funds,
            declared_fees,
            PayInMethod::BankWire,
        );
        pay_in.validate().map(|()| pay_in)
    }

    /// The same card pay-in with `mode` as its `SecureMode` (no effect on a bank wire).
    pub fn with_secure_mode(mut self, mode: SecureMode) -> MangopayPayIn {
        match &mut self.method {
            PayInMethod::CardDirect { secure_mode, .. }
            | PayInMethod::CardWeb { secure_mode, .. } => *secure_mode = mode,
            PayInMethod::BankWire => {}
        }
        self
    }

    /// The same pay-in with `descriptor` on the cardholder's statement.
    pub fn with_statement_descriptor(mut self, descriptor: impl Into<String>) -> MangopayPayIn {
        self.statement_descriptor = Some(descriptor.into());
        self
    }

    /// The same pay-in with `culture` (`EN`, `FR`, ...).
    pub fn with_culture(mut self, culture: impl Into<String>) -> MangopayPayIn {
        self.culture = Some(culture.into());
        self
    }

    /// The same web pay-in accepting `kind` cards (no effect on other pay-ins).
    pub fn with_card_type(mut self, kind: CardType) -> MangopayPayIn {
        if let PayInMethod::CardWeb { card_type, .. } = &mut self.method {
            *card_type = kind;
        }
        self
    }

    /// The same pay-in with `tag` as its tag.
    pub fn with_tag(mut self, tag: impl Into<String>) -> MangopayPayIn {
        self.tag = Some(tag.into());
        self
    }

    /// What Mangopay says about the pay-in, and how far it was followed.
    pub fn facts(&self) -> &PayInFacts {
        &self.facts
    }

    /// `Status`, as last recorded.
    pub fn status(&self) -> Option<&TransactionStatus> {
        self.facts.transaction.status.as_ref()
    }

    /// The local id of the card charged, for a direct card pay-in.
    pub fn card_id(&self) -> Option<i64> {
        match self.method {
            PayInMethod::CardDirect { card_id, .. } => Some(card_id),
            _ => None,
        }
    }

    /// Every problem with the current field values, or `Ok`.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut e = ValidationErrors::new();
        check_amounts(&mut e, self.debited_funds, self.fees);
        e.check(
            "debited_funds.currency",
            money::supported(self.debited_funds.currency),
        );
        match &self.method {
            PayInMethod::CardDirect {
                secure_mode,
                secure_mode_return_url,
                browser_info,
                ip_address,
                ..
            } => {
                check_secure_mode(&mut e, secure_mode);
                e.check("secure_mode_return_url", check_url(secure_mode_return_url));
                browser_info.validate(&mut e);
                if ip_address.parse::<IpAddr>().is_err() {
                    e.push(
                        "ip_address",
                        FieldErrorKind::NotAllowed("must be an IPv4 or IPv6 address".into()),
                    );
                }
            }
            PayInMethod::CardWeb {
                return_url,
                card_type,
                secure_mode,
            } => {
                check_secure_mode(&mut e, secure_mode);
                e.check("return_url", check_url(return_url));
                if let CardType::Unknown(other) = card_type {
                    e.push(
                        "card_type",
                        FieldErrorKind::NotAllowed(format!(
                            "must be CB_VISA_MASTERCARD, AMEX, MAESTRO or BCMC, not {other}"
                        )),
                    );
                }
                if self.culture.is_none() {
                    e.push("culture", FieldErrorKind::Required);
                }
            }
            PayInMethod::BankWire => {
                if self.statement_descriptor.is_some() {
                    e.push(
                        "statement_descriptor",
                        FieldErrorKind::NotAllowed("bank-wire pay-ins have none".into()),
                    );
                }
            }
        }
        if let Some(descriptor) = &self.statement_descriptor
            && (descriptor.is_empty()
                || descriptor.chars().count() > 10
                || !descriptor
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == ' '))
        {
            e.push(
                "statement_descriptor",
                FieldErrorKind::NotAllowed(
                    "must be 1 to 10 letters, digits or spaces (A-Z, a-z, 0-9)".into(),
                ),
            );
        }
        if let Some(culture) = &self.culture
            && !(culture.len() == 2 && culture.bytes().all(|b| b.is_ascii_alphabetic()))
        {
            e.push(
                "culture",
                FieldErrorKind::NotAllowed(
                    "must be a two-letter language code (EN, FR, ...)".into(),
                ),
            );
        }
        e.check("tag", validate_tag(self.tag.as_deref()));
        e.into_result()
    }

    /// Checks the pay-in `id` once (see [`crate::sync::follow`]): reads it from Mangopay,
    /// counts the check, and says what comes next under `policy` ([`Polling::pay_ins`]). A
    /// `FAILED` pay-in is logged as an error; its result code and message are on the row.
    pub async fn poll_status(
        db: &Db,
        client: &MangopayClient,
        id: i64,
        policy: &Polling,
    ) -> Result<Poll<TransactionStatus>, Error> {
        follow::poll::<Self>(db, client, id, policy).await
    }

    /// The pay-ins crediting the wallet `wallet_id` (local id), oldest first.
    pub async fn for_wallet(db: &Db, wallet_id: i64) -> Result<Vec<MangopayPayIn>, Error> {
        crate::sync::get_where(db, move |conn| {
            pay_ins::table
                .filter(pay_ins::credited_wallet_id.eq(wallet_id))
                .order(pay_ins::id)
                .select(pay_ins::id)
                .load::<i64>(conn)
        })
        .await
    }
}

crate::models::resource_methods!(MangopayPayIn, "pay-in");

fn check_secure_mode(e: &mut ValidationErrors, mode: &SecureMode) {
    if let SecureMode::Unknown(other) = mode {
        e.push(
            "secure_mode",
            FieldErrorKind::NotAllowed(format!("must be DEFAULT, FORCE or NO_CHOICE, not {other}")),
        );
    }
}

/// An absolute `http` or `https` URL of at most 255 characters.
fn check_url(value: &str) -> Result<(), FieldErrorKind> {
    crate::validate::required(value)?;
    crate::validate::max_len(value, 255)?;
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(FieldErrorKind::NotAllowed(
            "must be an absolute http or https URL".into(),
        )),
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = pay_ins)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite, MultiBackend))]
struct PayInRow {
    id: i64,
    payment_type: String,
    execution_type: String,
    author_id: i64,
    credited_wallet_id: i64,
    card_id: Option<i64>,
    currency: String,
    debited_amount: i64,
    fees_amount: i64,
    credited_amount: Option<i64>,
    secure_mode: Option<String>,
    secure_mode_needed: Option<bool>,
    statement_descriptor: Option<String>,
    browser_info: Option<String>,
    ip_address: Option<String>,
    return_url: Option<String>,
    redirect_url: Option<String>,
    culture: Option<String>,
    card_type: Option<String>,
    wire_reference: Option<String>,
    bank_account: Option<String>,
    status: Option<String>,
    result_code: Option<String>,
    result_message: Option<String>,
    execution_date: Option<NaiveDateTime>,
    tag: Option<String>,
    mangopay_created_at: Option<NaiveDateTime>,
    status_checks: i32,
    follow_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = pay_ins, treat_none_as_null = true)]
struct PayInFields {
    payment_type: String,
    execution_type: String,
    author_id: i64,
    credited_wallet_id: i64,
    card_id: Option<i64>,
    currency: String,
    debited_amount: i64,
    fees_amount: i64,
    secure_mode: Option<String>,
    statement_descriptor: Option<String>,
    browser_info: Option<String>,
    ip_address: Option<String>,
    return_url: Option<String>,
    culture: Option<String>,
    card_type: Option<String>,
    tag: Option<String>,
}

#[derive(AsChangeset, Default)]
#[diesel(table_name = pay_ins)]
struct PayInFromApi {
    status: Option<Option<String>>,
    result_code: Option<Option<String>>,
    result_message: Option<Option<String>>,
    credited_amount: Option<Option<i64>>,
    execution_date: Option<Option<NaiveDateTime>>,
    mangopay_created_at: Option<Option<NaiveDateTime>>,
    secure_mode_needed: Option<Option<bool>>,
    redirect_url: Option<Option<String>>,
    wire_reference: Option<Option<String>>,
    bank_account: Option<Option<String>>,
    tag: Option<Option<String>>,
}

impl MangopayPayIn {
    fn fields(&self) -> PayInFields {
        let (payment_type, execution_type) = self.method.types();
        let mut f = PayInFields {
            payment_type: payment_type.into(),
            execution_type: execution_type.into(),
            author_id: self.author_id,
            credited_wallet_id: self.credited_wallet_id,
            card_id: None,
            currency: self.debited_funds.currency.to_string(),
            debited_amount: self.debited_funds.amount,
            fees_amount: self.fees.amount,
            secure_mode: None,
            statement_descriptor: self.statement_descriptor.clone(),
            browser_info: None,
            ip_address: None,
            return_url: None,
            culture: self.culture.clone(),
            card_type: None,
            tag: self.tag.clone(),
        };
        match &self.method {
            PayInMethod::CardDirect {
                card_id,
                secure_mode,
                secure_mode_return_url,
                browser_info,
                ip_address,
            } => {
                f.card_id = Some(*card_id);
                f.secure_mode = Some(secure_mode.to_string());
                f.return_url = Some(secure_mode_return_url.clone());
                f.browser_info = serde_json::to_string(browser_info).ok();
                f.ip_address = Some(ip_address.clone());
            }
            PayInMethod::CardWeb {
                return_url,
                card_type,
                secure_mode,
            } => {
                f.return_url = Some(return_url.clone());
                f.card_type = Some(card_type.to_string());
                f.secure_mode = Some(secure_mode.to_string());
            }
            PayInMethod::BankWire => {}
        }
        f
    }

    fn method_from_row(r: &PayInRow) -> PayInMethod {
        let mode = || {
            r.secure_mode
                .as_deref()
                .map_or(SecureMode::Default, SecureMode::from_api)
        };
        match (r.payment_type.as_str(), r.execution_type.as_str()) {
            ("CARD", "WEB") => PayInMethod::CardWeb {
                return_url: r.return_url.clone().unwrap_or_default(),
                card_type: r
                    .card_type
                    .as_deref()
                    .map_or(CardType::CbVisaMastercard, CardType::from_api),
                secure_mode: mode(),
            },
            ("CARD", _) => PayInMethod::CardDirect {
                card_id: r.card_id.unwrap_or_default(),
                secure_mode: mode(),
                secure_mode_return_url: r.return_url.clone().unwrap_or_default(),
                browser_info: r
                    .browser_info
                    .as_deref()
                    .and_then(|b| serde_json::from_str(b).ok())
                    .unwrap_or(BrowserInfo {
                        accept_header: String::new(),
                        java_enabled: false,
                        language: String::new(),
                        color_depth: 0,
                        screen_height: 0,
                        screen_width: 0,
                        time_zone_offset: 0,
                        user_agent: String::new(),
                        javascript_enabled: false,
                    }),
                ip_address: r.ip_address.clone().unwrap_or_default(),
            },
            _ => PayInMethod::BankWire,
        }
    }
}

impl Resource for MangopayPayIn {
    const MODEL: &'static str = "MangopayPayIn";
    const TABLE: SyncTable = PAY_INS;
    const UPDATABLE: bool = false;

    crate::sync::row_accessors!();
    fn validate(&self) -> Result<(), ValidationErrors> {
        MangopayPayIn::validate(self)
    }
    fn app_tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    fn load(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<Self>> {
        let row = pay_ins::table
            .find(id)
            .select(PayInRow::as_select())
            .first::<PayInRow>(conn)
            .optional()?;
        Ok(row.map(|r| {
            let utc = |t: Option<NaiveDateTime>| t.map(|t| t.and_utc());
            let currency = stored_currency(&r.currency);
            let method = Self::method_from_row(&r);
            let web = matches!(method, PayInMethod::CardWeb { .. }).then_some(());
            let transaction = TransactionFacts::from_columns(
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
            MangopayPayIn {
                id: Some(r.id),
                author_id: r.author_id,
                credited_wallet_id: r.credited_wallet_id,
                debited_funds: Money::new(r.debited_amount, currency),
                fees: Money::new(r.fees_amount, currency),
                method,
                statement_descriptor: r.statement_descriptor,
                culture: r.culture,
                tag: r.tag,
                facts: PayInFacts {
                    transaction,
                    secure_mode_needed: r.secure_mode_needed,
                    secure_mode_redirect_url: web
                        .is_none()
                        .then(|| r.redirect_url.clone())
                        .flatten(),
                    redirect_url: web.and(r.redirect_url),
                    wire_reference: r.wire_reference,
                    bank_account: r
                        .bank_account
                        .as_deref()
                        .and_then(|b| serde_json::from_str(b).ok()),
                    status_checks: r.status_checks,
                    next_check_at: utc(r.follow_at),
                },
                parents: Parents::default(),
                sync: SyncInfo::default(),
            }
        }))
    }

    fn resolve(&mut self, conn: &mut AnyConnection) -> Result<(), Error> {
        self.parents = Parents {
            author: parent::user(conn, "author_id", self.author_id)?,
            wallet: parent::wallet(conn, "credited_wallet_id", self.credited_wallet_id)?,
            card: match self.method {
                PayInMethod::CardDirect { card_id, .. } => parent::card(conn, "card_id", card_id)?,
                _ => Parent::default(),
            },
        };
        Ok(())
    }

    fn parents_ready(&self) -> Result<(), Error> {
        let p = &self.parents;
        p.author
            .ready(Self::MODEL, "author_id", "MangopayUser", self.author_id)?;
        p.wallet.ready(
            Self::MODEL,
            "credited_wallet_id",
            "MangopayWallet",
            self.credited_wallet_id,
        )?;
        let mut e = ValidationErrors::new();
        let currency = self.debited_funds.currency.as_str();
        parent::same_currency(&mut e, "credited_wallet_id", &p.wallet, currency);
        if let PayInMethod::CardDirect { card_id, .. } = self.method {
            p.card
                .ready(Self::MODEL, "card_id", "MangopayCard", card_id)?;
            parent::same_currency(&mut e, "card_id", &p.card, currency);
            parent::owned_by(&mut e, "author_id", &p.card, self.author_id, "the card");
        }
        e.into_result().map_err(Error::Validation)
    }

    crate::models::field_writes!(pay_ins);

    fn apply_api_data(
        &self,
        conn: &mut AnyConnection,
        id: i64,
        p: &Value,
        scope: Scope,
    ) -> QueryResult<()> {
        let f = FactsFromApi::read(p);
        if follow::is_stale::<Self>(conn, id, f.status.clone().flatten().as_deref())? {
            tracing::info!(
                id,
                "an older answer (still CREATED) is not recorded over a settled pay-in"
            );
            return Ok(());
        }
        let changes = PayInFromApi {
            status: f.status,
            result_code: f.result_code,
            result_message: f.result_message,
            // A bank wire not received yet shows placeholder funds (`XXX`, 0): not an amount.
            credited_amount: f
                .credited_amount
                .filter(|_| in_currency(p, "CreditedFunds", self.debited_funds.currency)),
            execution_date: f.execution_date,
            mangopay_created_at: f.mangopay_created_at,
            secure_mode_needed: p
                .get("SecureModeNeeded")
                .map(|_| read::boolean(p, "SecureModeNeeded")),
            // One column: where to send the payer (3-D Secure, or the payment page).
            redirect_url: match self.method {
                PayInMethod::CardWeb { .. } => read::text(p, "RedirectURL"),
                _ => read::text(p, "SecureModeRedirectURL"),
            },
            wire_reference: read::text(p, "WireReference"),
            bank_account: p
                .get("BankAccount")
                .map(|b| (!b.is_null()).then(|| b.to_string())),
            tag: if scope == Scope::All {
                read::text(p, "Tag")
            } else {
                None
            },
        };
        diesel::update(pay_ins::table.find(id))
            .set(&changes)
            .execute(conn)
            .map(drop)
    }

    fn after_apply(
        &self,
        conn: &mut AnyConnection,
        id: i64,
        _hooks: &crate::hooks::Hooks,
    ) -> Result<(), Error> {
        follow::after_answer::<Self>(conn, id)?;
        Ok(())
    }

    fn after_failed_hook(&self, conn: &mut AnyConnection, id: i64) -> QueryResult<()> {
        follow::owe_check_now(conn, PAY_INS, id)
    }

    /// A direct card pay-in is sent while its cardholder is at the checkout, within
    /// [`ClientConfig::card_payment_window`](crate::config::ClientConfig::card_payment_window)
    /// of being saved, or never: a worker backlog or a retry after an outage must not charge
    /// a card hours later. Web pay-ins and bank wires only open a payment: no window.
    fn send_window(&self, config: &crate::config::ClientConfig) -> Option<std::time::Duration> {
        matches!(self.method, PayInMethod::CardDirect { .. }).then(|| config.card_payment_window())
    }

    fn create_request(&self, tag: Option<&str>) -> Result<ApiRequest, Error> {
        let p = &self.parents;
        let m = Self::MODEL;
        let author = p
            .author
            .created(m, "author_id", "MangopayUser", self.author_id)?;
        let wallet = p.wallet.created(
            m,
            "credited_wallet_id",
            "MangopayWallet",
            self.credited_wallet_id,
        )?;
        let mut b = CreateBody::new();
        b.put("AuthorId", Some(author))
            .put("CreditedWalletId", Some(wallet));
        let path = match &self.method {
            PayInMethod::CardDirect {
                card_id,
                secure_mode,
                secure_mode_return_url,
                browser_info,
                ip_address,
            } => {
                let card = p.card.created(m, "card_id", "MangopayCard", *card_id)?;
                b.put("DebitedFunds", Some(self.debited_funds.to_api()))
                    .put("Fees", Some(self.fees.to_api()))
                    .put("CardId", Some(card))
                    .put("SecureMode", Some(secure_mode.as_str()))
                    .put("SecureModeReturnURL", Some(secure_mode_return_url.as_str()))
                    .put("StatementDescriptor", self.statement_descriptor.as_deref())
                    .put("BrowserInfo", serde_json::to_value(browser_info).ok())
                    .put("IpAddress", Some(ip_address.as_str()))
                    .put("Culture", self.culture.as_deref());
                "payins/card/direct"
            }
            PayInMethod::CardWeb {
                return_url,
                card_type,
                secure_mode,
            } => {
                b.put("DebitedFunds", Some(self.debited_funds.to_api()))
                    .put("Fees", Some(self.fees.to_api()))
                    .put("ReturnURL", Some(return_url.as_str()))
                    .put("CardType", Some(card_type.as_str()))
                    .put("SecureMode", Some(secure_mode.as_str()))
                    .put("StatementDescriptor", self.statement_descriptor.as_deref())
                    .put("Culture", self.culture.as_deref());
                "payins/card/web"
            }
            PayInMethod::BankWire => {
                b.put("DeclaredDebitedFunds", Some(self.debited_funds.to_api()))
                    .put("DeclaredFees", Some(self.fees.to_api()));
                "payins/bankwire/direct"
            }
        };
        b.put("Tag", tag);
        Ok(ApiRequest {
            path: path.into(),
            body: b.finish(),
        })
    }

    fn update_request(&self, _tag: Option<&str>) -> Result<UpdateRequest, Error> {
        Err(super::transfer::not_updatable(Self::MODEL, self.id))
    }

    fn view_path(&self, mangopay_id: &str) -> String {
        format!("payins/{mangopay_id}")
    }

    fn listing(&self) -> Listing {
        Listing {
            path: format!(
                "wallets/{}/transactions",
                self.parents
                    .wallet
                    .mangopay_id
                    .as_deref()
                    .unwrap_or_default()
            ),
            date_filters: true,
            filters: vec![("Type", "PAYIN".into())],
            item_path: None,
            untagged: false,
        }
    }

    fn check_found(&self, found: &Value) -> Result<(), String> {
        match found.get("Type").and_then(Value::as_str) {
            Some("PAYIN") => {}
            other => return Err(format!("it is a {other:?} transaction, not a PAYIN")),
        }
        let wallet = self.parents.wallet.mangopay_id.as_deref();
        match found.get("CreditedWalletId").and_then(Value::as_str) {
            Some(w) if Some(w) == wallet => {}
            other => return Err(format!("it credits {other:?}, not {wallet:?}")),
        }
        let (payment_type, _) = self.method.types();
        match found.get("PaymentType").and_then(Value::as_str) {
            Some(t) if t == payment_type => {}
            other => return Err(format!("it is paid by {other:?}, not {payment_type}")),
        }
        if matches!(self.method, PayInMethod::BankWire) {
            // A wire's debited funds are only known once it arrives.
            return Ok(());
        }
        match Money::from_api(found, "DebitedFunds") {
            Some(m) if m == self.debited_funds => Ok(()),
            other => Err(format!("it debits {other:?}, not {}", self.debited_funds)),
        }
    }
}

impl Followed for MangopayPayIn {
    type Status = TransactionStatus;
    const WHAT: &'static str = "pay-in";
    const WAITING: &'static str = "CREATED";
    fn status(raw: &str) -> TransactionStatus {
        TransactionStatus::from_api(raw)
    }
    fn failed(status: &TransactionStatus) -> bool {
        *status == TransactionStatus::Failed
    }
}
