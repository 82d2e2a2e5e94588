//! `MangopayRecipient`: a user's beneficiary account for pay-outs (or pay-ins), mirrored from
//! Mangopay's [Recipient object](https://docs.mangopay.com/api-reference/recipients/recipient-object),
//! the successor of bank accounts.
//!
//! A recipient is created `PENDING`. One of scope `PAYOUT` waits for its user's strong
//! customer authentication, on the page `PendingUserAction.RedirectUrl` names
//! ([`MangopayRecipient::redirect_url`]), and then becomes `ACTIVE` (or `CANCELED`); a refresh
//! follows it. It is never updated: only deactivated, for good.

use std::fmt;
use std::sync::LazyLock;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use regex::Regex;
use serde_json::{Map, Value, json};

use super::bank_account::{masked, masked_sync, put_and_record};
use super::parent::{self, Parent};
use super::types::{Address, AddressColumns, RecipientStatus, UserCategory, read};
use super::user::validate_tag;
use crate::db::{AnyConnection, MultiBackend};
use crate::hooks::Hooks;
use crate::schema::{mangopay_recipients as recipients, mangopay_users};
use crate::sync::body::CreateBody;
use crate::sync::follow::{self, Followed, Poll, Polling};
use crate::sync::{ApiRequest, Listing, Resource, Scope, SyncInfo, SyncTable, UpdateRequest};
use crate::validate::{self, CountryCode, CurrencyCode, FieldErrorKind, ValidationErrors};
use crate::{Db, Error, IdempotencyKey, MangopayClient};

/// The table holding every recipient's sync columns.
pub const RECIPIENTS: SyncTable = SyncTable::new("mangopay_recipients");

/// How a recipient is paid (`PayoutMethodType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayoutMethodType {
    /// `LocalBankTransfer`: a wire through the currency's local route; its account details
    /// are keyed by the currency (`{"GBP": {"SortCode": …, "AccountNumber": …}}`).
    LocalBankTransfer,
    /// `InternationalBankTransfer`: a SWIFT wire; its account details are `AccountNumber`
    /// (the IBAN, in IBAN countries) and `BIC` (required elsewhere).
    InternationalBankTransfer,
}

impl PayoutMethodType {
    /// The value as Mangopay spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            PayoutMethodType::LocalBankTransfer => "LocalBankTransfer",
            PayoutMethodType::InternationalBankTransfer => "InternationalBankTransfer",
        }
    }

    /// Reads a value as Mangopay sends it (any letter case).
    pub fn from_api(value: &str) -> Option<PayoutMethodType> {
        [
            PayoutMethodType::LocalBankTransfer,
            PayoutMethodType::InternationalBankTransfer,
        ]
        .into_iter()
        .find(|v| v.as_str().eq_ignore_ascii_case(value))
    }
}

impl fmt::Display for PayoutMethodType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who holds a recipient's account (`RecipientType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecipientType {
    /// `Individual`: a natural person (`IndividualRecipient`).
    Individual,
    /// `Business`: a legal entity (`BusinessRecipient`).
    Business,
}

impl RecipientType {
    /// The value as Mangopay spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientType::Individual => "Individual",
            RecipientType::Business => "Business",
        }
    }

    /// Reads a value as Mangopay sends it (any letter case).
    pub fn from_api(value: &str) -> Option<RecipientType> {
        [RecipientType::Individual, RecipientType::Business]
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(value))
    }
}

impl fmt::Display for RecipientType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a recipient may be used for (`RecipientScope`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum RecipientScope {
    /// `PAYOUT` (Mangopay's default): pay-outs and pay-in uses; only for a user of category
    /// `OWNER`, and only after the user's strong customer authentication.
    #[default]
    Payout,
    /// `PAYIN`: pay-in uses only (direct debit, refunds by pay-out); any user, no SCA.
    Payin,
}

impl RecipientScope {
    /// The value as Mangopay spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientScope::Payout => "PAYOUT",
            RecipientScope::Payin => "PAYIN",
        }
    }

    /// Reads a value as Mangopay sends it (any letter case).
    pub fn from_api(value: &str) -> Option<RecipientScope> {
        [RecipientScope::Payout, RecipientScope::Payin]
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(value))
    }
}

impl fmt::Display for RecipientScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The account holder: `IndividualRecipient` or `BusinessRecipient`. Every part follows the
/// patterns of Mangopay's Recipient object; errors name `holder.first_name`,
/// `holder.address.city`, ...
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientHolder {
    /// A natural person.
    Individual {
        /// `FirstName`: 1 to 255 characters, none of `( ) & , . : _ /`.
        first_name: String,
        /// `LastName`: 1 to 255 characters, none of `( ) & , . : _ /`.
        last_name: String,
        /// `Address`: a first line, city, postal code and country are required, and a region
        /// for local transfers in USD and CAD.
        address: Address,
    },
    /// A legal entity.
    Business {
        /// `BusinessName`: 1 to 255 characters, none of `( ) , . : /`.
        business_name: String,
        /// `Address`, as for an individual.
        address: Address,
    },
}

impl RecipientHolder {
    /// `RecipientType`.
    pub fn recipient_type(&self) -> RecipientType {
        match self {
            RecipientHolder::Individual { .. } => RecipientType::Individual,
            RecipientHolder::Business { .. } => RecipientType::Business,
        }
    }

    /// The holder's address.
    pub fn address(&self) -> &Address {
        match self {
            RecipientHolder::Individual { address, .. }
            | RecipientHolder::Business { address, .. } => address,
        }
    }

    /// `IndividualRecipient` or `BusinessRecipient`, with its object.
    fn to_api(&self) -> (&'static str, Value) {
        let mut address = Map::new();
        for (key, _, value) in self.address().parts() {
            if let Some(value) = value {
                address.insert(key.to_owned(), Value::String(value.to_owned()));
            }
        }
        match self {
            RecipientHolder::Individual {
                first_name,
                last_name,
                ..
            } => (
                "IndividualRecipient",
                json!({"FirstName": first_name, "LastName": last_name, "Address": address}),
            ),
            RecipientHolder::Business { business_name, .. } => (
                "BusinessRecipient",
                json!({"BusinessName": business_name, "Address": address}),
            ),
        }
    }
}

/// A character class of Mangopay's published patterns, compiled as written.
fn class(pattern: &str) -> Regex {
    Regex::new(pattern).expect("the recipient patterns are valid regexes")
}

// The forbidden characters of `^(?!.*[…]).{min,max}$`, per field of the Recipient object.
static DISPLAY_NAME: LazyLock<Regex> = LazyLock::new(|| class(r"[&,'/]"));
static PERSON_NAME: LazyLock<Regex> = LazyLock::new(|| class(r"[()&,.:_/]"));
static BUSINESS_NAME: LazyLock<Regex> = LazyLock::new(|| class(r"[(),.:/]"));
static ADDRESS_LINE: LazyLock<Regex> = LazyLock::new(|| class(r"[()/]"));
static CITY: LazyLock<Regex> = LazyLock::new(|| class(r"[&,.:_']"));
static REGION: LazyLock<Regex> = LazyLock::new(|| class(r"[&,.:_'-/]"));
static POSTAL_CODE: LazyLock<Regex> = LazyLock::new(|| class(r"[()&,.:_'/]"));
/// `FFC` of a USD local transfer, after its length (at most 140) is checked.
static FFC: LazyLock<Regex> =
    LazyLock::new(|| class(r"^[0-9]{8,12}/FFC [0-9a-zA-Z/\-?:().,'+ ]+$"));

/// A recipient, kept in `mangopay_recipients`.
///
/// Build one with [`MangopayRecipient::new`], check it at Mangopay with
/// [`validate_at_mangopay`](Self::validate_at_mangopay) (the form of its account details
/// depends on the currency and country: [`schema`](Self::schema) gives it), then
/// [`create`](Self::create) it (`POST /users/{UserId}/recipients`): it is recorded `PENDING`
/// with the SCA link to send its user to ([`redirect_url`](Self::redirect_url)), and a
/// [`refresh`](Self::refresh) (or [`poll_status`](Self::poll_status)) follows it to `ACTIVE`
/// or `CANCELED`. Mangopay never updates a recipient: once its create was sent its fields
/// cannot change; [`deactivate`](Self::deactivate) ends it for good.
///
/// Its `Debug` output shows only the last four characters of IBANs and account numbers.
#[derive(Clone, PartialEq)]
pub struct MangopayRecipient {
    /// The local id; `None` until the first save.
    pub id: Option<i64>,
    /// `UserId`: the local id of the user, a [`MangopayUser`](crate::MangopayUser); an
    /// `OWNER` for a recipient of scope `PAYOUT`.
    pub user_id: i64,
    /// `DisplayName`: the application's name for the account, 1 to 50 characters, none of
    /// `& , ' /`.
    pub display_name: String,
    /// `PayoutMethodType`, which says what [`account_details`](Self::account_details) hold.
    pub payout_method_type: PayoutMethodType,
    /// The account holder, which sets `RecipientType`.
    pub holder: RecipientHolder,
    /// `Currency`.
    pub currency: CurrencyCode,
    /// `Country`: the destination country of the pay-outs; optional (Mangopay derives it from
    /// the currency or the IBAN when it can).
    pub country: Option<CountryCode>,
    /// `RecipientScope`: `PAYOUT` unless set.
    pub recipient_scope: RecipientScope,
    /// The `LocalBankTransfer` or `InternationalBankTransfer` object, as sent: a JSON object
    /// whose keys depend on the currency and country (see [`schema`](Self::schema)). The
    /// patterns of the common currencies are checked before anything is sent: GBP
    /// (`AccountNumber`, `SortCode`), EUR (`IBAN`, with its check digits), USD
    /// (`AccountNumber`, `ABA`, `FFC`), CAD (`AccountNumber`, `InstitutionNumber`,
    /// `BranchCode`, `BankName`), and for international transfers an IBAN or an
    /// `AccountNumber` with a `BIC`. Errors name `account_details.GBP.SortCode`, ...
    pub account_details: Value,
    /// `Tag`: the application's note (see [`MangopayNaturalUser::tag`](crate::MangopayNaturalUser::tag)).
    pub tag: Option<String>,
    facts: RecipientFacts,
    owner: Parent,
    owner_category: Option<UserCategory>,
    sync: SyncInfo,
}

/// What Mangopay says about a recipient, and how far it was followed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecipientFacts {
    /// `Status`.
    pub status: Option<RecipientStatus>,
    /// `PendingUserAction.RedirectUrl`: where to send the user for the SCA session (with a
    /// percent-encoded `ReturnUrl` query parameter added); kept while the recipient is
    /// `PENDING`. Mangopay's link expires 10 minutes after the create.
    pub redirect_url: Option<String>,
    /// `CreationDate`.
    pub mangopay_created_at: Option<DateTime<Utc>>,
    /// How many times [`MangopayRecipient::poll_status`] checked it.
    pub status_checks: i32,
    /// When it was last checked so.
    pub status_checked_at: Option<DateTime<Utc>>,
    /// When the worker checks it next, while it is followed (see
    /// [`crate::sync::follow`]); `None` once settled or no longer followed.
    pub next_check_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for MangopayRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MangopayRecipient")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("display_name", &self.display_name)
            .field("payout_method_type", &self.payout_method_type)
            .field("holder", &self.holder)
            .field("currency", &self.currency)
            .field("country", &self.country)
            .field("recipient_scope", &self.recipient_scope)
            .field(
                "account_details",
                &format_args!("{}", masked(&self.account_details)),
            )
            .field("tag", &self.tag)
            .field("facts", &self.facts)
            .field("owner", &self.owner)
            .field("owner_category", &self.owner_category)
            .field("sync", &masked_sync(&self.sync))
            .finish()
    }
}

impl MangopayRecipient {
    /// A recipient of scope `PAYOUT` for the user `user_id` (local id), paid in `currency`
    /// (ISO 4217) by `payout_method_type` to the account `account_details` (the
    /// `LocalBankTransfer` or `InternationalBankTransfer` object); not saved yet. Every field
    /// is checked; the errors name them.
    pub fn new(
        user_id: i64,
        display_name: impl Into<String>,
        holder: RecipientHolder,
        currency: &str,
        payout_method_type: PayoutMethodType,
        account_details: Value,
    ) -> Result<MangopayRecipient, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let currency = errors.currency("currency", currency);
        let recipient = MangopayRecipient {
            id: None,
            user_id,
            display_name: display_name.into(),
            payout_method_type,
            holder,
            currency: currency.unwrap_or(CurrencyCode::UNKNOWN),
            country: None,
            recipient_scope: RecipientScope::Payout,
            account_details,
            tag: None,
            facts: RecipientFacts::default(),
            owner: Parent::default(),
            owner_category: None,
            sync: SyncInfo::default(),
        };
        errors.merge_unreported(recipient.validate());
        errors.into_result().map(|()| recipient)
    }

    /// The same recipient with `country` as the destination country.
    pub fn with_country(mut self, country: CountryCode) -> MangopayRecipient {
        self.country = Some(country);
        self
    }

    /// The same recipient with `scope`.
    pub fn with_scope(mut self, scope: RecipientScope) -> MangopayRecipient {
        self.recipient_scope = scope;
        self
    }

    /// The same recipient with `tag` as its tag.
    pub fn with_tag(mut self, tag: impl Into<String>) -> MangopayRecipient {
        self.tag = Some(tag.into());
        self
    }

    /// `RecipientType`, from the holder.
    pub fn recipient_type(&self) -> RecipientType {
        self.holder.recipient_type()
    }

    /// What Mangopay says about the recipient.
    pub fn facts(&self) -> &RecipientFacts {
        &self.facts
    }

    /// `Status`, as last recorded.
    pub fn status(&self) -> Option<&RecipientStatus> {
        self.facts.status.as_ref()
    }

    /// Where to send the user to authenticate, while the recipient is `PENDING` (see
    /// [`RecipientFacts::redirect_url`]).
    pub fn redirect_url(&self) -> Option<&str> {
        self.facts.redirect_url.as_deref()
    }

    /// The user's Mangopay id, as of the last load.
    pub fn user_mangopay_id(&self) -> Option<&str> {
        self.owner.mangopay_id.as_deref()
    }

    /// Every problem with the current field values, or `Ok`.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut e = ValidationErrors::new();
        e.check(
            "display_name",
            validate::without_chars(&self.display_name, &DISPLAY_NAME, "& , ' /", 1, 50),
        );
        self.check_holder(&mut e);
        self.check_account(&mut e);
        e.check("tag", validate_tag(self.tag.as_deref()));
        e.into_result()
    }

    fn check_holder(&self, e: &mut ValidationErrors) {
        match &self.holder {
            RecipientHolder::Individual {
                first_name,
                last_name,
                ..
            } => {
                let shown = "( ) & , . : _ /";
                e.check(
                    "holder.first_name",
                    validate::without_chars(first_name, &PERSON_NAME, shown, 1, 255),
                );
                e.check(
                    "holder.last_name",
                    validate::without_chars(last_name, &PERSON_NAME, shown, 1, 255),
                );
            }
            RecipientHolder::Business { business_name, .. } => {
                e.check(
                    "holder.business_name",
                    validate::without_chars(business_name, &BUSINESS_NAME, "( ) , . : /", 1, 255),
                );
            }
        }
        let address = self.holder.address();
        if address.is_empty() {
            e.push("holder.address", FieldErrorKind::Required);
            return;
        }
        let mut part = |name: &str, check: Result<(), FieldErrorKind>| {
            if let Err(kind) = check {
                e.push(format!("holder.address.{name}"), kind);
            }
        };
        let required = |value: &Option<String>,
                        class: &Regex,
                        shown: &str,
                        max: usize|
         -> Result<(), FieldErrorKind> {
            match value.as_deref() {
                None => Err(FieldErrorKind::Required),
                Some(v) => validate::without_chars(v, class, shown, 1, max),
            }
        };
        let optional = |value: &Option<String>, class: &Regex, shown: &str, max: usize| {
            value
                .as_deref()
                .map_or(Ok(()), |v| validate::without_chars(v, class, shown, 1, max))
        };
        part(
            "line1",
            required(&address.line1, &ADDRESS_LINE, "( ) /", 255),
        );
        part(
            "line2",
            optional(&address.line2, &ADDRESS_LINE, "( ) /", 255),
        );
        part("city", required(&address.city, &CITY, "& , . : _ '", 80));
        let region_needed = self.payout_method_type == PayoutMethodType::LocalBankTransfer
            && matches!(self.currency.as_str(), "USD" | "CAD");
        let region_shown = "& : _ ' ( ) * + , - . /";
        if region_needed && address.region.is_none() {
            part(
                "region",
                Err(FieldErrorKind::RequiredBecause(
                    "for a local transfer in USD or CAD",
                )),
            );
        } else {
            part(
                "region",
                optional(&address.region, &REGION, region_shown, 50),
            );
        }
        part(
            "postal_code",
            required(&address.postal_code, &POSTAL_CODE, "( ) & , . : _ ' /", 10),
        );
        part(
            "country",
            address.country.map(drop).ok_or(FieldErrorKind::Required),
        );
    }

    fn check_account(&self, e: &mut ValidationErrors) {
        let Some(details) = self.account_details.as_object() else {
            e.push(
                "account_details",
                FieldErrorKind::NotAllowed(format!(
                    "must be the {} JSON object",
                    self.payout_method_type
                )),
            );
            return;
        };
        match self.payout_method_type {
            PayoutMethodType::LocalBankTransfer => {
                let currency = self.currency.as_str();
                let Some(fields) = details.get(currency).and_then(Value::as_object) else {
                    e.push(
                        "account_details",
                        FieldErrorKind::NotAllowed(format!(
                            "a LocalBankTransfer in {currency} holds its fields in an object \
                             under the key `{currency}`"
                        )),
                    );
                    return;
                };
                let prefix = format!("account_details.{currency}");
                check_local(e, &prefix, currency, fields);
            }
            PayoutMethodType::InternationalBankTransfer => {
                check_international(e, details);
            }
        }
    }

    /// The create body, with `tag` as its `Tag` (what `validate_at_mangopay` sends too).
    fn body(&self, tag: Option<&str>) -> Value {
        let (holder_key, holder) = self.holder.to_api();
        let mut b = CreateBody::new();
        b.put("DisplayName", Some(&self.display_name))
            .put("PayoutMethodType", Some(self.payout_method_type.as_str()))
            .put("RecipientType", Some(self.recipient_type().as_str()))
            .put("Currency", Some(self.currency.as_str()))
            .put("Country", self.country.as_ref().map(CountryCode::as_str))
            .put("RecipientScope", Some(self.recipient_scope.as_str()))
            .put("Tag", tag)
            .put(holder_key, Some(holder))
            .put(
                self.payout_method_type.as_str(),
                Some(&self.account_details),
            );
        b.finish()
    }

    /// Asks Mangopay whether this recipient (as it is, not yet created) would be accepted
    /// (`POST /users/{UserId}/recipients/validate` with the create's body): `Ok` when it
    /// would, Mangopay's error otherwise ([`Error::Api`], its `Errors` naming the fields).
    /// Its user must have been created at Mangopay, and be an `OWNER` for the `PAYOUT`
    /// scope. Nothing is written.
    pub async fn validate_at_mangopay(
        &self,
        db: &Db,
        client: &MangopayClient,
    ) -> Result<(), Error> {
        self.validate()?;
        let mut model = self.clone();
        let model = db
            .run(move |conn| {
                model.resolve(conn)?;
                Ok::<_, Error>(model)
            })
            .await?;
        model.parents_ready()?;
        let request = model.create_request(model.tag.as_deref())?;
        // A check, not a create: every POST carries a key, a fresh one here.
        let key = IdempotencyKey::generate();
        client
            .post(&format!("{}/validate", request.path), &request.body, &key)
            .await?;
        Ok(())
    }

    /// What Mangopay requires of a recipient paid by `payout_method_type` in `currency` to
    /// `country`, held by a `recipient_type` (`GET /recipients/schema`): the schema as
    /// Mangopay gives it, each field with `Required`, `MaxLength`, `Pattern`, `Label`, ...
    pub async fn schema(
        client: &MangopayClient,
        payout_method_type: PayoutMethodType,
        recipient_type: RecipientType,
        currency: CurrencyCode,
        country: Option<CountryCode>,
    ) -> Result<Value, Error> {
        let mut query = vec![
            ("PayoutMethodType", payout_method_type.as_str().to_owned()),
            ("RecipientType", recipient_type.as_str().to_owned()),
            ("Currency", currency.as_str().to_owned()),
        ];
        if let Some(country) = country {
            query.push(("Country", country.as_str().to_owned()));
        }
        Ok(client.get_with_query("recipients/schema", &query).await?)
    }

    /// Deactivates the recipient at Mangopay for good (`PUT /recipients/{Id}` with
    /// `{"Status": "DEACTIVATED"}`; Mangopay only deactivates an `ACTIVE` one) and records the
    /// answer in the row; reloads the model. A recipient already recorded `DEACTIVATED` sends
    /// nothing; a `CANCELED` one is refused ([`Error::WrongState`]): it was never active.
    pub async fn deactivate(&mut self, db: &Db, client: &MangopayClient) -> Result<(), Error> {
        let model = <Self as Resource>::MODEL;
        let id = self.id.ok_or(Error::NotSaved { model })?;
        let stored = Self::get(db, id).await?;
        let Some(mangopay_id) = stored.mangopay_id().map(str::to_owned) else {
            return Err(Error::NotCreated { model, id });
        };
        match stored.status() {
            Some(RecipientStatus::Deactivated) => {
                *self = stored;
                return Ok(());
            }
            Some(RecipientStatus::Canceled) => {
                return Err(Error::WrongState {
                    model,
                    id,
                    reason: "the recipient is CANCELED (its SCA was not completed): it never \
                             became active, and cannot be deactivated"
                        .into(),
                });
            }
            _ => {}
        }
        let body = json!({ "Status": RecipientStatus::Deactivated.as_str() });
        let result =
            put_and_record::<Self>(db, client, id, &format!("recipients/{mangopay_id}"), &body)
                .await;
        *self = Self::get(db, id).await?;
        result
    }

    /// Checks the recipient `id` once (see [`crate::sync::follow`]): reads it from Mangopay
    /// (`GET /recipients/{Id}`), counts the check, and says what comes next under `policy`:
    /// `PENDING` until its user's SCA, then `ACTIVE` or `CANCELED`.
    pub async fn poll_status(
        db: &Db,
        client: &MangopayClient,
        id: i64,
        policy: &Polling,
    ) -> Result<Poll<RecipientStatus>, Error> {
        follow::poll::<Self>(db, client, id, policy).await
    }

    /// The recipients of the user `user_id` (local id), oldest first.
    pub async fn for_user(db: &Db, user_id: i64) -> Result<Vec<MangopayRecipient>, Error> {
        crate::sync::get_where(db, move |conn| {
            recipients::table
                .filter(recipients::user_id.eq(user_id))
                .order(recipients::id)
                .select(recipients::id)
                .load::<i64>(conn)
        })
        .await
    }
}

crate::models::resource_methods!(MangopayRecipient, "recipient");

/// A text field of account details: `Ok(None)` when absent or null.
fn text<'a>(fields: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, FieldErrorKind> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(FieldErrorKind::NotAllowed("must be a string".into())),
    }
}

/// Runs `rule` on the field `key` of `fields`, recording its error under `prefix.key`; a
/// missing field is an error when `required`.
fn field(
    e: &mut ValidationErrors,
    prefix: &str,
    fields: &Map<String, Value>,
    key: &str,
    required: bool,
    rule: impl FnOnce(&str) -> Result<(), FieldErrorKind>,
) {
    let result = text(fields, key).and_then(|value| match value {
        Some(v) => rule(v),
        None if required => Err(FieldErrorKind::Required),
        None => Ok(()),
    });
    if let Err(kind) = result {
        let name = if prefix.is_empty() {
            format!("account_details.{key}")
        } else {
            format!("{prefix}.{key}")
        };
        e.push(name, kind);
    }
}

/// The `LocalBankTransfer` fields of the common currencies, as the reference publishes them.
fn check_local(
    e: &mut ValidationErrors,
    prefix: &str,
    currency: &str,
    fields: &Map<String, Value>,
) {
    match currency {
        "GBP" => {
            field(e, prefix, fields, "AccountNumber", true, |v| {
                validate::digits(v, 8, 8)
            });
            field(e, prefix, fields, "SortCode", true, |v| {
                validate::digits(v, 6, 6)
            });
        }
        "USD" => {
            field(e, prefix, fields, "AccountNumber", true, |v| {
                validate::alphanumeric(v, 8, 12)
            });
            field(e, prefix, fields, "ABA", true, |v| {
                validate::digits(v, 9, 9)
            });
            field(e, prefix, fields, "FFC", false, |v| {
                validate::max_len(v, 140)?;
                if FFC.is_match(v) {
                    Ok(())
                } else {
                    Err(FieldErrorKind::NotAllowed(
                        "must be 8 to 12 digits, `/FFC `, then the transfer's information".into(),
                    ))
                }
            });
        }
        "CAD" => {
            field(e, prefix, fields, "AccountNumber", true, |v| {
                validate::digits(v, 7, 35)
            });
            field(e, prefix, fields, "InstitutionNumber", true, |v| {
                validate::digits(v, 3, 3)
            });
            field(e, prefix, fields, "BranchCode", true, |v| {
                validate::digits(v, 5, 5)
            });
            field(e, prefix, fields, "BankName", true, |v| {
                validate::name(v, 50)
            });
        }
        // EUR goes to an IBAN; other currencies may (CHF, PLN, SEK, ...): checked when given.
        _ => field(e, prefix, fields, "IBAN", currency == "EUR", validate::iban),
    }
}

/// Whether an account number is written as an IBAN (two letters, two digits): it is then
/// checked as one.
fn looks_like_iban(value: &str) -> bool {
    let compact = validate::normalize_iban(value);
    let b = compact.as_bytes();
    b.len() > 4
        && b[..2].iter().all(u8::is_ascii_alphabetic)
        && b[2..4].iter().all(u8::is_ascii_digit)
}

/// `InternationalBankTransfer`: an IBAN (its BIC optional), or an account number with a BIC.
fn check_international(e: &mut ValidationErrors, fields: &Map<String, Value>) {
    let account = text(fields, "AccountNumber").ok().flatten();
    let iban = account.is_some_and(looks_like_iban);
    field(e, "", fields, "AccountNumber", true, |v| {
        if iban {
            validate::iban(v)
        } else {
            validate::name(v, 35)
        }
    });
    field(
        e,
        "",
        fields,
        "BIC",
        !iban && account.is_some(),
        validate::bic,
    );
}

/// The `mangopay_recipients` columns the model reads.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = recipients)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite, MultiBackend))]
struct RecipientRow {
    id: i64,
    user_id: i64,
    display_name: String,
    payout_method_type: String,
    recipient_type: String,
    currency: String,
    country: Option<String>,
    recipient_scope: String,
    individual_first_name: Option<String>,
    individual_last_name: Option<String>,
    business_name: Option<String>,
    holder_address_line1: Option<String>,
    holder_address_line2: Option<String>,
    holder_address_city: Option<String>,
    holder_address_region: Option<String>,
    holder_address_postal_code: Option<String>,
    holder_address_country: Option<String>,
    account_details: String,
    status: Option<String>,
    pending_redirect_url: Option<String>,
    status_checks: i32,
    status_checked_at: Option<NaiveDateTime>,
    follow_at: Option<NaiveDateTime>,
    tag: Option<String>,
    mangopay_created_at: Option<NaiveDateTime>,
}

/// The fields the application owns.
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = recipients, treat_none_as_null = true)]
struct RecipientFields {
    user_id: i64,
    display_name: String,
    payout_method_type: String,
    recipient_type: String,
    currency: String,
    country: Option<String>,
    recipient_scope: String,
    individual_first_name: Option<String>,
    individual_last_name: Option<String>,
    business_name: Option<String>,
    holder_address_line1: Option<String>,
    holder_address_line2: Option<String>,
    holder_address_city: Option<String>,
    holder_address_region: Option<String>,
    holder_address_postal_code: Option<String>,
    holder_address_country: Option<String>,
    account_details: String,
    tag: Option<String>,
}

/// What an answer says; an absent key leaves its column alone.
#[derive(AsChangeset, Default)]
#[diesel(table_name = recipients)]
struct RecipientFromApi {
    status: Option<Option<String>>,
    pending_redirect_url: Option<Option<String>>,
    mangopay_created_at: Option<Option<NaiveDateTime>>,
    display_name: Option<String>,
    country: Option<Option<String>>,
    tag: Option<Option<String>>,
}

/// A stored value this version cannot read.
fn unreadable(column: &str, value: &str) -> diesel::result::Error {
    let value: String = value.chars().take(200).collect();
    diesel::result::Error::DeserializationError(
        format!("mangopay_recipients.{column} holds {value:?}, which this version cannot read")
            .into(),
    )
}

impl RecipientRow {
    fn into_model(self) -> QueryResult<MangopayRecipient> {
        let utc = |t: Option<NaiveDateTime>| t.map(|t| t.and_utc());
        let payout_method_type = PayoutMethodType::from_api(&self.payout_method_type)
            .ok_or_else(|| unreadable("payout_method_type", &self.payout_method_type))?;
        let recipient_scope = RecipientScope::from_api(&self.recipient_scope)
            .ok_or_else(|| unreadable("recipient_scope", &self.recipient_scope))?;
        let account_details: Value = serde_json::from_str(&self.account_details)
            .map_err(|_| unreadable("account_details", "(not JSON)"))?;
        let address: AddressColumns = (
            self.holder_address_line1,
            self.holder_address_line2,
            self.holder_address_city,
            self.holder_address_region,
            self.holder_address_postal_code,
            self.holder_address_country,
        );
        let address = Address::from_columns(address).unwrap_or_default();
        let holder = match RecipientType::from_api(&self.recipient_type) {
            Some(RecipientType::Individual) => RecipientHolder::Individual {
                first_name: self.individual_first_name.unwrap_or_default(),
                last_name: self.individual_last_name.unwrap_or_default(),
                address,
            },
            Some(RecipientType::Business) => RecipientHolder::Business {
                business_name: self.business_name.unwrap_or_default(),
                address,
            },
            None => return Err(unreadable("recipient_type", &self.recipient_type)),
        };
        Ok(MangopayRecipient {
            id: Some(self.id),
            user_id: self.user_id,
            display_name: self.display_name,
            payout_method_type,
            holder,
            currency: CurrencyCode::from_api(&self.currency).unwrap_or(CurrencyCode::UNKNOWN),
            country: self.country.as_deref().and_then(CountryCode::from_api),
            recipient_scope,
            account_details,
            tag: self.tag,
            facts: RecipientFacts {
                status: self.status.as_deref().map(RecipientStatus::from_api),
                redirect_url: self.pending_redirect_url,
                mangopay_created_at: utc(self.mangopay_created_at),
                status_checks: self.status_checks,
                status_checked_at: utc(self.status_checked_at),
                next_check_at: utc(self.follow_at),
            },
            owner: Parent::default(),
            owner_category: None,
            sync: SyncInfo::default(),
        })
    }
}

impl MangopayRecipient {
    fn fields(&self) -> RecipientFields {
        let (line1, line2, city, region, postal_code, country) =
            Address::into_columns(Some(self.holder.address()));
        let (first_name, last_name, business_name) = match &self.holder {
            RecipientHolder::Individual {
                first_name,
                last_name,
                ..
            } => (Some(first_name.clone()), Some(last_name.clone()), None),
            RecipientHolder::Business { business_name, .. } => {
                (None, None, Some(business_name.clone()))
            }
        };
        RecipientFields {
            user_id: self.user_id,
            display_name: self.display_name.clone(),
            payout_method_type: self.payout_method_type.as_str().to_owned(),
            recipient_type: self.recipient_type().as_str().to_owned(),
            currency: self.currency.to_string(),
            country: self.country.map(|c| c.to_string()),
            recipient_scope: self.recipient_scope.as_str().to_owned(),
            individual_first_name: first_name,
            individual_last_name: last_name,
            business_name,
            holder_address_line1: line1,
            holder_address_line2: line2,
            holder_address_city: city,
            holder_address_region: region,
            holder_address_postal_code: postal_code,
            holder_address_country: country,
            account_details: self.account_details.to_string(),
            tag: self.tag.clone(),
        }
    }
}

impl Resource for MangopayRecipient {
    const MODEL: &'static str = "MangopayRecipient";
    const TABLE: SyncTable = RECIPIENTS;
    const UPDATABLE: bool = false;

    crate::sync::row_accessors!();
    fn validate(&self) -> Result<(), ValidationErrors> {
        MangopayRecipient::validate(self)
    }
    fn app_tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    fn load(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<Self>> {
        recipients::table
            .find(id)
            .select(RecipientRow::as_select())
            .first::<RecipientRow>(conn)
            .optional()?
            .map(RecipientRow::into_model)
            .transpose()
    }

    fn resolve(&mut self, conn: &mut AnyConnection) -> Result<(), Error> {
        self.owner = parent::user(conn, "user_id", self.user_id)?;
        self.owner_category = mangopay_users::table
            .find(self.user_id)
            .select(mangopay_users::user_category)
            .first::<String>(conn)
            .optional()?
            .as_deref()
            .map(UserCategory::from_api);
        Ok(())
    }

    fn parents_ready(&self) -> Result<(), Error> {
        self.owner
            .ready(Self::MODEL, "user_id", "MangopayUser", self.user_id)?;
        if self.recipient_scope == RecipientScope::Payout
            && self.owner_category != Some(UserCategory::Owner)
        {
            return Err(Error::ParentNotUsable {
                model: Self::MODEL,
                field: "user_id",
                parent: "MangopayUser",
                parent_id: self.user_id,
                reason: format!(
                    "a recipient of scope PAYOUT needs a user of category OWNER, and this one \
                     is {}",
                    self.owner_category
                        .as_ref()
                        .map_or("of no known category", UserCategory::as_str)
                ),
            });
        }
        Ok(())
    }

    crate::models::field_writes!(recipients);

    fn after_apply(&self, conn: &mut AnyConnection, id: i64, _hooks: &Hooks) -> Result<(), Error> {
        follow::after_answer::<Self>(conn, id).map_err(Error::from)
    }

    fn apply_api_data(
        &self,
        conn: &mut AnyConnection,
        id: i64,
        p: &Value,
        scope: Scope,
    ) -> QueryResult<()> {
        let status = read::text(p, "Status")
            .map(|s| s.map(|s| RecipientStatus::from_api(&s).as_str().to_owned()));
        if follow::is_stale::<Self>(conn, id, status.clone().flatten().as_deref())? {
            tracing::info!(
                id,
                "an older answer (still PENDING) is not recorded over a settled recipient"
            );
            return Ok(());
        }
        let pending = status.as_ref().map(|s| s.as_deref() == Some("PENDING"));
        let redirect = p
            .get("PendingUserAction")
            .and_then(|a| a.get("RedirectUrl"))
            .and_then(Value::as_str)
            .filter(|url| !url.is_empty());
        let pending_redirect_url = match (redirect, pending) {
            (Some(url), _) => Some(Some(url.to_owned())),
            // Settled: the link is of no use any more.
            (None, Some(false)) => Some(None),
            // Still pending without a link in this answer (a view may omit it): kept.
            (None, _) => None,
        };
        let mut changes = RecipientFromApi {
            status,
            pending_redirect_url,
            mangopay_created_at: read::timestamp(p, "CreationDate"),
            ..RecipientFromApi::default()
        };
        if scope == Scope::All {
            changes.tag = read::text(p, "Tag");
            changes.display_name = read::required(read::text(p, "DisplayName"));
            changes.country = read::text(p, "Country")
                .flatten()
                .and_then(|c| CountryCode::from_api(&c))
                .map(|c| Some(c.to_string()));
        }
        if changes.status.is_none()
            && changes.pending_redirect_url.is_none()
            && changes.mangopay_created_at.is_none()
            && changes.tag.is_none()
            && changes.display_name.is_none()
            && changes.country.is_none()
        {
            return Ok(());
        }
        diesel::update(recipients::table.find(id))
            .set(&changes)
            .execute(conn)
            .map(drop)
    }

    fn create_request(&self, tag: Option<&str>) -> Result<ApiRequest, Error> {
        let owner = self
            .owner
            .created(Self::MODEL, "user_id", "MangopayUser", self.user_id)?;
        Ok(ApiRequest {
            path: format!("users/{owner}/recipients"),
            body: self.body(tag),
        })
    }

    fn update_request(&self, _tag: Option<&str>) -> Result<UpdateRequest, Error> {
        Err(super::transfer::not_updatable(Self::MODEL, self.id))
    }

    fn view_path(&self, mangopay_id: &str) -> String {
        format!("recipients/{mangopay_id}")
    }

    fn listing(&self) -> Listing {
        // The list holds PAYOUT recipients unless PAYIN ones are asked for.
        let filters = match self.recipient_scope {
            RecipientScope::Payout => Vec::new(),
            RecipientScope::Payin => vec![("RecipientScope", "PAYIN".to_owned())],
        };
        Listing {
            path: format!(
                "users/{}/recipients",
                self.owner.mangopay_id.as_deref().unwrap_or_default()
            ),
            date_filters: false,
            filters,
            // Recipient lists hold summaries without their Tag.
            item_path: Some("recipients"),
            untagged: false,
        }
    }

    fn check_found(&self, found: &Value) -> Result<(), String> {
        let owner = self.owner.mangopay_id.as_deref().unwrap_or_default();
        let get = |key: &str| found.get(key).and_then(Value::as_str);
        match get("UserId") {
            Some(user) if user == owner => {}
            Some(user) => return Err(format!("it belongs to {user}, not to {owner}")),
            None => return Err("it is not a recipient".into()),
        }
        match get("Currency") {
            Some(c) if c.eq_ignore_ascii_case(self.currency.as_str()) => {}
            Some(c) => return Err(format!("it is in {c}, not {}", self.currency)),
            None => return Err("it is not a recipient".into()),
        }
        let method = self.payout_method_type.as_str();
        match get("PayoutMethodType") {
            Some(m) if m.eq_ignore_ascii_case(method) => Ok(()),
            Some(m) => Err(format!("it is paid by {m}, not {method}")),
            None => Err("it is not a recipient".into()),
        }
    }
}

impl Followed for MangopayRecipient {
    type Status = RecipientStatus;
    const WHAT: &'static str = "recipient";
    const WAITING: &'static str = "PENDING";
    fn status(raw: &str) -> RecipientStatus {
        RecipientStatus::from_api(raw)
    }
    fn failed(status: &RecipientStatus) -> bool {
        *status == RecipientStatus::Canceled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn london() -> Address {
        Address::new("10 Kingsway", "London", "WC2B 6LH", "GB").unwrap()
    }

    fn alex() -> RecipientHolder {
        RecipientHolder::Individual {
            first_name: "Alex".into(),
            last_name: "Smith".into(),
            address: london(),
        }
    }

    fn fields_of(e: &ValidationErrors) -> Vec<&str> {
        e.errors().iter().map(|f| f.field()).collect()
    }

    #[test]
    fn local_details_follow_the_currency_patterns() {
        let gbp = |sort: &str, number: &str| {
            MangopayRecipient::new(
                1,
                "Alex GBP",
                alex(),
                "GBP",
                PayoutMethodType::LocalBankTransfer,
                json!({"GBP": {"SortCode": sort, "AccountNumber": number}}),
            )
        };
        assert!(gbp("200000", "55779911").is_ok());
        let e = gbp("2000", "557799111").unwrap_err();
        assert_eq!(
            fields_of(&e),
            [
                "account_details.GBP.AccountNumber",
                "account_details.GBP.SortCode"
            ]
        );
        let eur = |iban: &str| {
            MangopayRecipient::new(
                1,
                "Alex EUR",
                alex(),
                "EUR",
                PayoutMethodType::LocalBankTransfer,
                json!({"EUR": {"IBAN": iban}}),
            )
        };
        assert!(eur("FR76 3000 4000 0312 3456 7890 143").is_ok());
        assert_eq!(
            fields_of(&eur("FR7630004000031234567890144").unwrap_err()),
            ["account_details.EUR.IBAN"]
        );
        let usd = MangopayRecipient::new(
            1,
            "Alex USD",
            RecipientHolder::Business {
                business_name: "Alex Smith Consulting".into(),
                address: Address {
                    line1: Some("1 Main St".into()),
                    city: Some("Austin".into()),
                    postal_code: Some("73301".into()),
                    country: "US".parse().ok(),
                    ..Address::default()
                },
            },
            "USD",
            PayoutMethodType::LocalBankTransfer,
            json!({"USD": {"AccountNumber": "1234567", "ABA": "07100028X"}}),
        )
        .unwrap_err();
        assert_eq!(
            fields_of(&usd),
            [
                "holder.address.region",
                "account_details.USD.AccountNumber",
                "account_details.USD.ABA"
            ]
        );
        let cad = MangopayRecipient::new(
            1,
            "Alex CAD",
            alex(),
            "CAD",
            PayoutMethodType::LocalBankTransfer,
            json!({"GBP": {}}),
        )
        .unwrap_err();
        assert!(cad.has("account_details") && cad.has("holder.address.region"));
    }

    #[test]
    fn usd_transfers_may_carry_an_ffc() {
        let usd = |ffc: &str| {
            MangopayRecipient::new(
                1,
                "Alex USD",
                RecipientHolder::Individual {
                    first_name: "Alex".into(),
                    last_name: "Smith".into(),
                    address: Address {
                        line1: Some("1 Main St".into()),
                        city: Some("Austin".into()),
                        region: Some("TX".into()),
                        postal_code: Some("73301".into()),
                        country: "US".parse().ok(),
                        ..Address::default()
                    },
                },
                "USD",
                PayoutMethodType::LocalBankTransfer,
                json!({"USD": {"AccountNumber": "1234567890", "ABA": "071000288", "FFC": ffc}}),
            )
        };
        assert!(usd("12345678/FFC Alex Smith, acct 42").is_ok());
        let too_long = format!("12345678/FFC {}", "x".repeat(130));
        for bad in [
            "12345678 FFC Alex",
            "1234567/FFC Alex",
            "12345678/FFC Alex#1",
            &too_long,
        ] {
            assert_eq!(
                fields_of(&usd(bad).unwrap_err()),
                ["account_details.USD.FFC"],
                "{bad}"
            );
        }
    }

    #[test]
    fn international_details_are_an_iban_or_an_account_and_a_bic() {
        let intl = |details: Value| {
            MangopayRecipient::new(
                1,
                "Alex",
                alex(),
                "USD",
                PayoutMethodType::InternationalBankTransfer,
                details,
            )
        };
        assert!(intl(json!({"AccountNumber": "FR7630004000031234567890143"})).is_ok());
        assert!(intl(json!({"AccountNumber": "123456789", "BIC": "CHASUS33"})).is_ok());
        assert_eq!(
            fields_of(&intl(json!({"AccountNumber": "123456789"})).unwrap_err()),
            ["account_details.BIC"]
        );
        assert_eq!(
            fields_of(&intl(json!({"AccountNumber": "GB00BUKB20201555555555"})).unwrap_err()),
            ["account_details.AccountNumber"]
        );
        assert_eq!(
            fields_of(&intl(json!("FR7630004000031234567890143")).unwrap_err()),
            ["account_details"]
        );
    }

    #[test]
    fn names_and_addresses_follow_the_published_patterns() {
        let e = MangopayRecipient::new(
            1,
            "Alex & Co",
            RecipientHolder::Individual {
                first_name: "A.".into(),
                last_name: String::new(),
                address: Address {
                    line1: Some("10 (Kingsway)".into()),
                    city: Some("St. Albans".into()),
                    postal_code: Some("WC2B 6LH 12345".into()),
                    region: Some("Herts*".into()),
                    ..Address::default()
                },
            },
            "GBP",
            PayoutMethodType::LocalBankTransfer,
            json!({"GBP": {"SortCode": "200000", "AccountNumber": "55779911"}}),
        )
        .unwrap_err();
        assert_eq!(
            fields_of(&e),
            [
                "display_name",
                "holder.first_name",
                "holder.last_name",
                "holder.address.line1",
                "holder.address.city",
                "holder.address.region",
                "holder.address.postal_code",
                "holder.address.country"
            ]
        );
        let long = "x".repeat(51);
        let e = MangopayRecipient::new(
            1,
            long,
            alex(),
            "XXZ",
            PayoutMethodType::LocalBankTransfer,
            json!({}),
        )
        .unwrap_err();
        assert!(e.has("display_name") && e.has("currency"), "{e}");
    }

    #[test]
    fn the_body_and_debug_output() {
        let mut r = MangopayRecipient::new(
            1,
            "Alex GBP",
            alex(),
            "gbp",
            PayoutMethodType::LocalBankTransfer,
            json!({"GBP": {"SortCode": "200000", "AccountNumber": "55779911"}}),
        )
        .unwrap()
        .with_scope(RecipientScope::Payin)
        .with_tag("mine");
        assert!(matches!(
            r.create_request(None),
            Err(Error::ParentNotCreated {
                field: "user_id",
                ..
            })
        ));
        r.owner.mangopay_id = Some("user_m_1".into());
        let request = r.create_request(Some("mine dm:1:k")).unwrap();
        assert_eq!(request.path, "users/user_m_1/recipients");
        let b = &request.body;
        assert_eq!(b["Currency"], "GBP");
        assert_eq!(b["RecipientType"], "Individual");
        assert_eq!(b["RecipientScope"], "PAYIN");
        assert_eq!(b["IndividualRecipient"]["Address"]["City"], "London");
        assert!(b["IndividualRecipient"]["Address"].get("Region").is_none());
        assert_eq!(b["LocalBankTransfer"]["GBP"]["SortCode"], "200000");
        assert!(b.get("Country").is_none());
        assert_eq!(
            r.listing().filters,
            vec![("RecipientScope", "PAYIN".to_owned())]
        );
        let shown = format!("{r:?}");
        assert!(
            shown.contains("…9911") && !shown.contains("55779911"),
            "{shown}"
        );
        r.recipient_scope = RecipientScope::Payout;
        r.owner_category = Some(UserCategory::Payer);
        assert!(matches!(
            r.parents_ready(),
            Err(Error::ParentNotUsable {
                field: "user_id",
                ..
            })
        ));
        r.owner_category = Some(UserCategory::Owner);
        assert!(r.parents_ready().is_ok());
    }
}
