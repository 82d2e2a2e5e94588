//! Card registrations, the tokenization server and cards, answered with the objects exactly as
//! Mangopay's documentation shows them.
//!
//! A card is registered in three steps: `POST /cardregistrations` (`CREATED`, with an
//! `AccessKey`, a `PreregistrationData` and a `CardRegistrationURL`), the tokenization of the
//! card details at that URL (served by the sandbox itself as
//! `POST /_sandbox/tokenize/{CardRegistrationId}`, a form body, no authentication, answered
//! `data=<token>` or `errorCode=<code>` in plain text), then `PUT /cardregistrations/{Id}` with
//! that text as `RegistrationData` (or the card kit's form `POST /CardRegistrations/{Id}`,
//! which needs no token). A token the tokenizer issued for this registration makes it
//! `VALIDATED` with a new card; any other data makes it `ERROR` (`105299` "Token input
//! Error"), without a card. See [`crate::test_cards`] for what pay-ins do with each card.
//!
//! The card number and CVC never leave the tokenization request: the sandbox keeps only the
//! first six and last four digits, the expiry, a salted digest of the number (the
//! `Fingerprint`, keyed by the API key) and which test card it is.

use std::collections::HashMap;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike as _, Utc};
use hmac::{Hmac, KeyInit as _, Mac as _};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::Sha256;

use super::Sandbox;
use super::error::{ApiError, json_response};
use super::ids;
use super::ledger::{self, SUCCESS};
use super::routing::origin;
use super::test_cards::Behaviour;
use super::transactions::{list_response, visible};
use super::users::{JsonObject, ListQuery};
use super::validation::Fields;

/// `CardType` values, the first the default.
pub(crate) const CARD_TYPES: [&str; 4] = ["CB_VISA_MASTERCARD", "AMEX", "MAESTRO", "BCMC"];

/// The result of an update whose `RegistrationData` is not a token issued for the registration.
pub(crate) const TOKEN_INPUT_ERROR: (&str, &str) = ("105299", "Token input Error");

/// The tokenizer's `errorCode` when `data` or `accessKeyRef` do not match a `CREATED`
/// registration.
const TOKEN_MISMATCH: &str = "09101";
/// The tokenizer's `errorCode` for a card number that is not 12 to 19 digits passing Luhn.
const INVALID_NUMBER: &str = "105202";
/// The tokenizer's `errorCode` for an expiry date that is not `MMYY` or is in the past.
const INVALID_EXPIRY: &str = "105203";
/// The tokenizer's `errorCode` for a CVC that is not 3 or 4 digits.
const INVALID_CVX: &str = "105204";

/// `Status` of a card registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RegistrationStatus {
    Created,
    Validated,
    Error,
}

impl RegistrationStatus {
    fn as_str(self) -> &'static str {
        match self {
            RegistrationStatus::Created => "CREATED",
            RegistrationStatus::Validated => "VALIDATED",
            RegistrationStatus::Error => "ERROR",
        }
    }
}

/// One stored card registration.
#[derive(Debug, Clone)]
pub(crate) struct RegistrationRecord {
    id: String,
    tag: Option<String>,
    creation_date: i64,
    user_id: String,
    access_key: String,
    preregistration_data: String,
    registration_data: Option<String>,
    card_id: Option<String>,
    card_type: String,
    url: String,
    result: Option<(&'static str, &'static str)>,
    currency: String,
    status: RegistrationStatus,
}

/// The Card Registration object, keys in the documentation's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct RegistrationView<'a> {
    id: &'a str,
    tag: Option<&'a str>,
    creation_date: i64,
    user_id: &'a str,
    access_key: &'a str,
    preregistration_data: &'a str,
    registration_data: Option<&'a str>,
    card_id: Option<&'a str>,
    card_type: &'a str,
    #[serde(rename = "CardRegistrationURL")]
    card_registration_url: &'a str,
    result_code: Option<&'a str>,
    result_message: Option<&'a str>,
    currency: &'a str,
    status: &'static str,
}

impl RegistrationRecord {
    fn view(&self) -> RegistrationView<'_> {
        RegistrationView {
            id: &self.id,
            tag: self.tag.as_deref(),
            creation_date: self.creation_date,
            user_id: &self.user_id,
            access_key: &self.access_key,
            preregistration_data: &self.preregistration_data,
            registration_data: self.registration_data.as_deref(),
            card_id: self.card_id.as_deref(),
            card_type: &self.card_type,
            card_registration_url: &self.url,
            result_code: self.result.map(|(code, _)| code),
            result_message: self.result.map(|(_, message)| message),
            currency: &self.currency,
            status: self.status.as_str(),
        }
    }

    fn to_json(&self) -> Value {
        serde_json::to_value(self.view()).unwrap_or(Value::Null)
    }
}

/// What the tokenizer keeps of a card until its token is used: never the number or the CVC.
#[derive(Debug, Clone)]
struct Tokenized {
    registration_id: String,
    bin: String,
    alias: String,
    provider: &'static str,
    expiration_date: String,
    fingerprint: String,
    behaviour: Behaviour,
}

/// `Validity` of a card: set by the first pay-in made with it, for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Validity {
    Unknown,
    Valid,
    Invalid,
}

impl Validity {
    fn as_str(self) -> &'static str {
        match self {
            Validity::Unknown => "UNKNOWN",
            Validity::Valid => "VALID",
            Validity::Invalid => "INVALID",
        }
    }
}

/// One stored card.
#[derive(Debug, Clone)]
pub(crate) struct CardRecord {
    pub(crate) id: String,
    tag: Option<String>,
    creation_date: i64,
    created_at_ms: i64,
    pub(crate) user_id: String,
    expiration_date: String,
    alias: String,
    card_type: String,
    provider: &'static str,
    pub(crate) currency: String,
    pub(crate) active: bool,
    validity: Validity,
    fingerprint: String,
    card_holder_name: Option<String>,
    bin: String,
    pub(crate) behaviour: Behaviour,
}

/// The Card object, keys in the documentation's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct CardView<'a> {
    expiration_date: &'a str,
    alias: &'a str,
    card_type: &'a str,
    card_provider: &'a str,
    country: &'static str,
    product: &'static str,
    bank_code: &'static str,
    active: bool,
    currency: &'a str,
    validity: &'static str,
    user_id: &'a str,
    id: &'a str,
    tag: Option<&'a str>,
    creation_date: i64,
    fingerprint: &'a str,
    card_holder_name: Option<&'a str>,
}

/// A pay-in's `CardInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CardInfo {
    #[serde(rename = "BIN")]
    bin: String,
    issuing_bank: Option<&'static str>,
    issuer_country_code: &'static str,
    #[serde(rename = "Type")]
    kind: &'static str,
    brand: &'static str,
    sub_type: Option<&'static str>,
}

impl CardRecord {
    fn view(&self) -> CardView<'_> {
        CardView {
            expiration_date: &self.expiration_date,
            alias: &self.alias,
            card_type: &self.card_type,
            card_provider: self.provider,
            country: "FRA",
            product: "I",
            bank_code: "unknown",
            active: self.active,
            currency: &self.currency,
            validity: self.validity.as_str(),
            user_id: &self.user_id,
            id: &self.id,
            tag: self.tag.as_deref(),
            creation_date: self.creation_date,
            fingerprint: &self.fingerprint,
            card_holder_name: self.card_holder_name.as_deref(),
        }
    }

    fn to_json(&self) -> Value {
        serde_json::to_value(self.view()).unwrap_or(Value::Null)
    }

    /// What a pay-in made with the card shows of it.
    pub(crate) fn card_info(&self) -> CardInfo {
        CardInfo {
            bin: self.bin.clone(),
            issuing_bank: (self.bin == "497010").then_some("LA BANQUE POSTALE"),
            issuer_country_code: "FR",
            kind: "CREDIT",
            brand: match self.provider {
                "AMEX" => "AMERICAN EXPRESS",
                provider => provider,
            },
            sub_type: None,
        }
    }
}

/// Card registrations, cards and the tokens issued and not used yet, in creation order.
#[derive(Debug, Default)]
pub(crate) struct CardStore {
    registrations: Vec<RegistrationRecord>,
    registration_index: HashMap<String, usize>,
    cards: Vec<CardRecord>,
    card_index: HashMap<String, usize>,
    /// By token (the text after `data=`).
    tokens: HashMap<String, Tokenized>,
}

/// Why a card registration cannot be updated.
enum UpdateError {
    Unknown,
    NotCreated(RegistrationStatus),
}

impl CardStore {
    fn registration_mut(&mut self, id: &str) -> Option<&mut RegistrationRecord> {
        self.registration_index
            .get(id)
            .map(|&i| &mut self.registrations[i])
    }

    fn registration(&self, id: &str) -> Option<&RegistrationRecord> {
        self.registration_index
            .get(id)
            .map(|&i| &self.registrations[i])
    }

    pub(crate) fn card(&self, id: &str) -> Option<&CardRecord> {
        self.card_index.get(id).map(|&i| &self.cards[i])
    }

    fn card_mut(&mut self, id: &str) -> Option<&mut CardRecord> {
        self.card_index.get(id).map(|&i| &mut self.cards[i])
    }

    /// Records the outcome of a pay-in made with card `id`: the first one decides its
    /// `Validity` for good.
    pub(crate) fn record_payment(&mut self, id: &str, succeeded: bool) {
        if let Some(card) = self.card_mut(id)
            && card.validity == Validity::Unknown
        {
            card.validity = if succeeded {
                Validity::Valid
            } else {
                Validity::Invalid
            };
        }
    }

    /// Applies `registration_data` to the `CREATED` registration `id`: `VALIDATED` with a new
    /// card `card_id` for a token issued for it, `ERROR` otherwise. Either way the
    /// registration's other tokens are forgotten.
    fn update(
        &mut self,
        id: &str,
        registration_data: String,
        card_holder_name: Option<String>,
        card_id: String,
        now: DateTime<Utc>,
    ) -> Result<Value, UpdateError> {
        let registration = self.registration(id).ok_or(UpdateError::Unknown)?;
        if registration.status != RegistrationStatus::Created {
            return Err(UpdateError::NotCreated(registration.status));
        }
        let token = registration_data
            .strip_prefix("data=")
            .unwrap_or(&registration_data);
        let tokenized = self
            .tokens
            .get(token)
            .filter(|t| t.registration_id == id)
            .cloned();
        self.tokens.retain(|_, t| t.registration_id != id);
        let registration = self
            .registration_mut(id)
            .expect("the registration was just found");
        registration.registration_data = Some(registration_data);
        let Some(tokenized) = tokenized else {
            registration.status = RegistrationStatus::Error;
            registration.result = Some(TOKEN_INPUT_ERROR);
            return Ok(registration.to_json());
        };
        registration.status = RegistrationStatus::Validated;
        registration.result = Some(SUCCESS);
        registration.card_id = Some(card_id.clone());
        let card = CardRecord {
            id: card_id.clone(),
            tag: registration.tag.clone(),
            creation_date: now.timestamp(),
            created_at_ms: now.timestamp_millis(),
            user_id: registration.user_id.clone(),
            expiration_date: tokenized.expiration_date,
            alias: tokenized.alias,
            card_type: registration.card_type.clone(),
            provider: tokenized.provider,
            currency: registration.currency.clone(),
            active: true,
            validity: Validity::Unknown,
            fingerprint: tokenized.fingerprint,
            card_holder_name,
            bin: tokenized.bin,
            behaviour: tokenized.behaviour,
        };
        let answer = registration.to_json();
        self.card_index.insert(card_id, self.cards.len());
        self.cards.push(card);
        Ok(answer)
    }
}

/// The card details of a tokenization form, checked as the tokenization server does.
struct CardDetails<'a> {
    number: &'a str,
    expiration_date: &'a str,
}

/// Whether `number` passes the Luhn checksum.
fn luhn(number: &str) -> bool {
    let sum: u32 = number
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let digit = u32::from(b - b'0');
            if i % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn digits(text: &str, lengths: std::ops::RangeInclusive<usize>) -> bool {
    lengths.contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit())
}

/// The number, expiry (`MMYY`, not before this month) and CVC of a tokenization form, or the
/// `errorCode` of the first one that is wrong.
fn card_details<'a>(
    form: &'a HashMap<String, String>,
    now: DateTime<Utc>,
) -> Result<CardDetails<'a>, &'static str> {
    let field = |name: &str| form.get(name).map_or("", |v| v.trim());
    let number = field("cardNumber");
    if !digits(number, 12..=19) || !luhn(number) {
        return Err(INVALID_NUMBER);
    }
    let expiration_date = field("cardExpirationDate");
    let expiry = digits(expiration_date, 4..=4)
        .then(|| {
            let month: u32 = expiration_date[..2].parse().ok()?;
            let year: i32 = expiration_date[2..].parse().ok()?;
            (1..=12).contains(&month).then_some((2000 + year, month))
        })
        .flatten();
    match expiry {
        Some(expiry) if expiry >= (now.year(), now.month()) => {}
        _ => return Err(INVALID_EXPIRY),
    }
    if !digits(field("cardCvx"), 3..=4) {
        return Err(INVALID_CVX);
    }
    Ok(CardDetails {
        number,
        expiration_date,
    })
}

/// `CardProvider` of a card of `card_type` with this number.
fn provider(card_type: &str, number: &str) -> &'static str {
    let prefix = |n: usize| number.get(..n).and_then(|p| p.parse::<u32>().ok());
    match card_type {
        "AMEX" => "AMEX",
        "MAESTRO" => "MAESTRO",
        "BCMC" => "BCMC",
        _ if number.starts_with('4') => "VISA",
        _ if prefix(2).is_some_and(|p| (51..=55).contains(&p))
            || prefix(4).is_some_and(|p| (2221..=2720).contains(&p)) =>
        {
            "MASTERCARD"
        }
        _ if number.starts_with("34") || number.starts_with("37") => "AMEX",
        _ => "CB",
    }
}

/// The `Fingerprint` of a card number: the same number always gives the same one, and it
/// cannot be turned back into the number without the API key.
fn fingerprint(api_key: &str, number: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(api_key.as_bytes()).expect("HMAC accepts any key");
    mac.update(b"card-fingerprint:");
    mac.update(number.as_bytes());
    mac.finalize().into_bytes()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A plain-text answer, readable from any origin (the tokenization server and the card kit
/// are called from browsers).
fn text_response(body: String) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

/// `POST /_sandbox/tokenize/{CardRegistrationId}`: the tokenization server. A form with
/// `data` (the `PreregistrationData`), `accessKeyRef` (the `AccessKey`), `cardNumber`,
/// `cardExpirationDate` (`MMYY`) and `cardCvx`; answers `data=<token>` or `errorCode=<code>`,
/// always 200 and plain text.
pub(crate) async fn control_tokenize(
    State(sandbox): State<Sandbox>,
    Path(registration_id): Path<String>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return text_response(format!("errorCode={TOKEN_MISMATCH}"));
    };
    let now = sandbox.clock().now();
    let token = ids::random_text(&mut *sandbox.shared().rng(), ids::URL_SAFE, 128);
    let mut ledger = sandbox.shared().ledger();
    let field = |name: &str| form.get(name).map(String::as_str);
    let Some(registration) = ledger.cards.registration(&registration_id).filter(|r| {
        r.status == RegistrationStatus::Created
            && field("data") == Some(r.preregistration_data.as_str())
            && field("accessKeyRef") == Some(r.access_key.as_str())
    }) else {
        return text_response(format!("errorCode={TOKEN_MISMATCH}"));
    };
    let details = match card_details(&form, now) {
        Ok(details) => details,
        Err(code) => return text_response(format!("errorCode={code}")),
    };
    let number = details.number;
    let tokenized = Tokenized {
        registration_id: registration_id.clone(),
        bin: number[..6].to_owned(),
        alias: format!(
            "{}{}{}",
            &number[..6],
            "X".repeat(number.len() - 10),
            &number[number.len() - 4..]
        ),
        provider: provider(&registration.card_type, number),
        expiration_date: details.expiration_date.to_owned(),
        fingerprint: fingerprint(&sandbox.config().api_key, number),
        behaviour: Behaviour::of(number),
    };
    ledger.cards.tokens.insert(token.clone(), tokenized);
    text_response(format!("data={token}"))
}

/// The registration `id` as the API answers it, or 404.
fn registration_response(sandbox: &Sandbox, id: &str) -> Result<Response, ApiError> {
    sandbox
        .shared()
        .ledger()
        .cards
        .registration(id)
        .map(|r| json_response(StatusCode::OK, &r.view()))
        .ok_or_else(|| ApiError::not_found("CardRegistration", id))
}

/// `POST /v2.01/{ClientId}/cardregistrations`.
pub(crate) async fn card_registrations_create(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let now = sandbox.clock().now();
    let mut f = Fields::new(&body, now.timestamp());
    let user_id = f.text("UserId", 1, 255, true);
    let currency = ledger::currency(&mut f, &body, "Currency", "Currency");
    let card_type = f.one_of("CardType", &CARD_TYPES, false);
    let tag = f.text("Tag", 0, 255, false);
    f.finish().map_err(ApiError::param_errors)?;
    let (Some(user_id), Some(currency)) = (user_id, currency) else {
        unreachable!("required fields were checked");
    };
    if sandbox.shared().users().get(&user_id).is_none() {
        return Err(ApiError::not_found("User", &user_id));
    }
    let (id, access_key, preregistration_data) = {
        let mut rng = sandbox.shared().rng();
        (
            format!("cardreg_m_{}", ids::ulid(now, &mut *rng)),
            ids::random_text(&mut *rng, &ids::URL_SAFE[..62], 20),
            ids::random_text(&mut *rng, ids::URL_SAFE, 86),
        )
    };
    let record = RegistrationRecord {
        url: format!("{}/_sandbox/tokenize/{id}", origin(&headers)),
        id: id.clone(),
        tag,
        creation_date: now.timestamp(),
        user_id,
        access_key,
        preregistration_data,
        registration_data: None,
        card_id: None,
        card_type: card_type.unwrap_or_else(|| CARD_TYPES[0].to_owned()),
        result: None,
        currency,
        status: RegistrationStatus::Created,
    };
    let response = json_response(StatusCode::OK, &record.view());
    let mut ledger = sandbox.shared().ledger();
    let cards = &mut ledger.cards;
    cards
        .registration_index
        .insert(id, cards.registrations.len());
    cards.registrations.push(record);
    Ok(response)
}

/// `GET /v2.01/{ClientId}/cardregistrations/{CardRegistrationId}`.
pub(crate) async fn card_registrations_get(
    State(sandbox): State<Sandbox>,
    Path((_client_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    registration_response(&sandbox, &id)
}

/// `CardHolderName`: 2 to 255 characters, as the reference's error words it.
fn card_holder_name(f: &mut Fields<'_>, body: &Map<String, Value>) -> Option<String> {
    let name = match body.get("CardHolderName") {
        None | Some(Value::Null) => return None,
        Some(Value::String(name)) => name,
        Some(_) => {
            f.error(
                "CardHolderName",
                "The field CardHolderName must be a string.",
            );
            return None;
        }
    };
    if (2..=255).contains(&name.chars().count()) {
        Some(name.clone())
    } else {
        f.error(
            "CardHolderName",
            "The field CardHolderName must be between 2 and 255 characters long.",
        );
        None
    }
}

/// Validates (or refuses) the registration `id` with `registration_data`.
fn update_registration(
    sandbox: &Sandbox,
    id: &str,
    registration_data: String,
    card_holder_name: Option<String>,
) -> Result<Response, ApiError> {
    let now = sandbox.clock().now();
    let card_id = format!("card_m_{}", ids::ulid(now, &mut *sandbox.shared().rng()));
    let mut ledger = sandbox.shared().ledger();
    match ledger
        .cards
        .update(id, registration_data, card_holder_name, card_id, now)
    {
        Ok(registration) => Ok(json_response(StatusCode::OK, &registration)),
        Err(UpdateError::Unknown) => Err(ApiError::not_found("CardRegistration", id)),
        Err(UpdateError::NotCreated(status)) => Err(ApiError::invalid_action(format!(
            "The card registration is {}: only a CREATED card registration can be updated",
            status.as_str()
        ))),
    }
}

/// `PUT /v2.01/{ClientId}/cardregistrations/{CardRegistrationId}`: `RegistrationData` (the
/// tokenizer's answer, `data=<token>`) and an optional `CardHolderName`, kept on the card.
/// Every other key is ignored: the SDKs send the whole object back, Node with a nested `data`
/// copy of it.
pub(crate) async fn card_registrations_update(
    State(sandbox): State<Sandbox>,
    Path((_client_id, id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let mut f = Fields::new(&body, 0);
    let registration_data = f.text("RegistrationData", 1, 4096, true);
    let card_holder_name = card_holder_name(&mut f, &body);
    f.finish().map_err(ApiError::param_errors)?;
    let Some(registration_data) = registration_data else {
        unreachable!("required fields were checked");
    };
    update_registration(&sandbox, &id, registration_data, card_holder_name)
}

/// `POST /v2.01/{ClientId}/CardRegistrations/{CardRegistrationId}`: the card kit's last step,
/// a form `Id=...&RegistrationData=data%3D...` sent from the browser without authentication
/// (see [`is_card_kit_finish`]); answered as the update is, readable from any origin.
pub(crate) async fn card_registrations_finish(
    State(sandbox): State<Sandbox>,
    Path((_client_id, id)): Path<(String, String)>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Result<Response, ApiError> {
    let Form(form) = form.map_err(|err| ApiError::param_error("Body", err.body_text()))?;
    let body: Map<String, Value> = form
        .into_iter()
        .map(|(key, value)| (key, Value::String(value)))
        .collect();
    let mut f = Fields::new(&body, 0);
    let registration_data = f.text("RegistrationData", 1, 4096, true);
    f.finish().map_err(ApiError::param_errors)?;
    let Some(registration_data) = registration_data else {
        unreachable!("required fields were checked");
    };
    let mut response = update_registration(&sandbox, &id, registration_data, None)?;
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    Ok(response)
}

/// Whether `request` is the card kit's finish step for client `client_id`: a form POST to
/// `/v2.01/{ClientId}/cardregistrations/{Id}` (path normalized) without an `Authorization`
/// header. Only that request is served without a token.
pub(crate) fn is_card_kit_finish(
    method: &axum::http::Method,
    path: &str,
    headers: &HeaderMap,
    client_id: &str,
) -> bool {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    method == axum::http::Method::POST
        && matches!(segments.as_slice(), ["v2.01", client, "cardregistrations", id]
            if *client == client_id && !id.is_empty())
        && is_form
        && !headers.contains_key(header::AUTHORIZATION)
}

/// `GET /v2.01/{ClientId}/cards/{CardId}`.
pub(crate) async fn cards_get(
    State(sandbox): State<Sandbox>,
    Path((_client_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    sandbox
        .shared()
        .ledger()
        .cards
        .card(&id)
        .map(|card| json_response(StatusCode::OK, &card.view()))
        .ok_or_else(|| ApiError::not_found("Card", &id))
}

/// `PUT /v2.01/{ClientId}/cards/{CardId}`: `{"Active": false}` deactivates the card for good
/// (a second deactivation is `card_already_not_active`, a reactivation a `param_error`), and
/// a `CardHolderName` is added if the card has none (changing it is refused). Every other key
/// is ignored.
pub(crate) async fn cards_update(
    State(sandbox): State<Sandbox>,
    Path((_client_id, id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let mut f = Fields::new(&body, 0);
    let active = f.boolean("Active");
    let card_holder_name = card_holder_name(&mut f, &body);
    f.finish().map_err(ApiError::param_errors)?;
    let mut ledger = sandbox.shared().ledger();
    let card = ledger
        .cards
        .card_mut(&id)
        .ok_or_else(|| ApiError::not_found("Card", &id))?;
    match (active, card.active) {
        (Some(false), false) => return Err(ApiError::card_already_not_active()),
        (Some(true), false) => {
            return Err(ApiError::param_error(
                "Active",
                "A deactivated card cannot be activated again.",
            ));
        }
        _ => {}
    }
    if let (Some(new), Some(old)) = (&card_holder_name, &card.card_holder_name)
        && new != old
    {
        return Err(ApiError::param_error(
            "cardHolderName",
            "card holder name already exists",
        ));
    }
    if active == Some(false) {
        card.active = false;
    }
    if card.card_holder_name.is_none() {
        card.card_holder_name = card_holder_name;
    }
    Ok(json_response(StatusCode::OK, &card.view()))
}

/// `GET /v2.01/{ClientId}/users/{UserId}/cards`: paginated, optionally sorted by
/// `CreationDate`, without the cards created within the list lag
/// ([`crate::Knobs::set_list_lag`]).
pub(crate) async fn users_cards_list(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let query = ListQuery::from_uri(&uri)?;
    if sandbox.shared().users().get(&user_id).is_none() {
        return Err(ApiError::not_found("User", &user_id));
    }
    let visible = visible(&sandbox);
    let ledger = sandbox.shared().ledger();
    let mut cards: Vec<&CardRecord> = ledger
        .cards
        .cards
        .iter()
        .filter(|c| c.user_id == user_id && visible(c.created_at_ms))
        .collect();
    // Creation order breaks ties between cards created within the same second.
    cards.sort_by_key(|c| c.creation_date);
    if query.is_descending() {
        cards.reverse();
    }
    Ok(list_response(&query, &cards, |c| c.view(), &headers, &uri))
}

/// Card registrations and cards as the API shows them.
impl Sandbox {
    /// Every card registration, oldest first, as `GET /cardregistrations/{Id}` answers it.
    pub fn card_registrations(&self) -> Vec<Value> {
        let ledger = self.shared().ledger();
        ledger
            .cards
            .registrations
            .iter()
            .map(RegistrationRecord::to_json)
            .collect()
    }

    /// Every card, oldest first, as `GET /cards/{Id}` answers it.
    pub fn cards(&self) -> Vec<Value> {
        let ledger = self.shared().ledger();
        ledger.cards.cards.iter().map(CardRecord::to_json).collect()
    }
}
