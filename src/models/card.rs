//! Cards: `MangopayCardRegistration`, the first step of registering a card through Mangopay's
//! tokenization server (the card number and CVC go from the cardholder's browser to that
//! server, never through the application), and `MangopayCard`, the card it makes, mirrored
//! from Mangopay's [Card object](https://docs.mangopay.com/api-reference/cards/card-object).
//!
//! The flow, as django-mangopay had it:
//! 1. [`MangopayCardRegistration::create`]; hand [`MangopayCardRegistration::preregistration_data`]
//!    to the browser (the card kit), which posts the card to `card_registration_url` and gets
//!    back `data=...`;
//! 2. [`MangopayCardRegistration::complete`] with that text: Mangopay makes the card, recorded
//!    as a [`MangopayCard`] row with its details ([`MangopayCard::request_card_info`]).
//!
//! No column holds a card number, a CVC or the registration data: the answer's
//! `RegistrationData` is never stored, and `Debug` hides the tokenization credentials.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::{Value, json};

use super::money;
use super::parent::{self, Parent};
use super::types::{CardRegistrationStatus, CardType, CardValidity, read};
use super::user::validate_tag;
use crate::db::{AnyConnection, MultiBackend};
use crate::schema::{mangopay_card_registrations as registrations, mangopay_cards as cards};
use crate::sync::body::CreateBody;
use crate::sync::{
    ApiRequest, Lease, Listing, Resource, Scope, SyncInfo, SyncTable, UpdateRequest,
};
use crate::validate::{CurrencyCode, FieldErrorKind, ValidationErrors};
use crate::{Db, Error, MangopayClient};

/// The table holding every card registration's sync columns.
pub const CARD_REGISTRATIONS: SyncTable = SyncTable::new("mangopay_card_registrations");
/// The table holding every card's sync columns.
pub const CARDS: SyncTable = SyncTable::new("mangopay_cards");

/// The longest registration data accepted (Mangopay's tokens are a few hundred characters).
const MAX_REGISTRATION_DATA: usize = 4096;

/// A card registration, kept in `mangopay_card_registrations`.
#[derive(Debug, Clone, PartialEq)]
pub struct MangopayCardRegistration {
    /// The local id; `None` until the first save.
    pub id: Option<i64>,
    /// `UserId`: the local id of the card's owner.
    pub user_id: i64,
    /// `Currency` of the card (one Mangopay supports).
    pub currency: CurrencyCode,
    /// `CardType`.
    pub card_type: CardType,
    /// `Tag` (the card inherits it).
    pub tag: Option<String>,
    facts: CardRegistrationFacts,
    user: Parent,
    sync: SyncInfo,
}

/// What Mangopay says about a card registration.
#[derive(Clone, Default, PartialEq)]
pub struct CardRegistrationFacts {
    /// `AccessKey`, for the tokenization server.
    pub access_key: Option<String>,
    /// `PreregistrationData`, for the tokenization server.
    pub preregistration_data: Option<String>,
    /// `CardRegistrationURL`: where the browser posts the card.
    pub card_registration_url: Option<String>,
    /// `Status`.
    pub status: Option<CardRegistrationStatus>,
    /// `ResultCode` (`000000` once completed; `105299` and others when the data was refused).
    pub result_code: Option<String>,
    /// `ResultMessage`.
    pub result_message: Option<String>,
    /// `CardId`: Mangopay's id of the card made.
    pub mangopay_card_id: Option<String>,
    /// The local id of that card's [`MangopayCard`] row.
    pub card_id: Option<i64>,
    /// `CreationDate`.
    pub mangopay_created_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for CardRegistrationFacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "[redacted]");
        f.debug_struct("CardRegistrationFacts")
            .field("access_key", &hidden(&self.access_key))
            .field("preregistration_data", &hidden(&self.preregistration_data))
            .field("card_registration_url", &self.card_registration_url)
            .field("status", &self.status)
            .field("result_code", &self.result_code)
            .field("result_message", &self.result_message)
            .field("mangopay_card_id", &self.mangopay_card_id)
            .field("card_id", &self.card_id)
            .field("mangopay_created_at", &self.mangopay_created_at)
            .finish()
    }
}

/// What the browser needs to tokenize a card, as django-mangopay's
/// `get_preregistration_data()` gave it.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
pub struct PreregistrationData {
    /// `preregistrationData`: the `data` field of the tokenization form.
    #[serde(rename = "preregistrationData")]
    pub preregistration_data: String,
    /// `accessKey`: the `accessKeyRef` field of the tokenization form.
    #[serde(rename = "accessKey")]
    pub access_key: String,
    /// `cardRegistrationURL`: where the form is posted.
    #[serde(rename = "cardRegistrationURL")]
    pub card_registration_url: String,
}

impl fmt::Debug for PreregistrationData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreregistrationData")
            .field("preregistration_data", &"[redacted]")
            .field("access_key", &"[redacted]")
            .field("card_registration_url", &self.card_registration_url)
            .finish()
    }
}

/// Checks the text the tokenization server answered: `data=` and a token, nothing else.
/// `errorCode=...` (the server refused the card) is reported with its code.
pub fn check_registration_data(text: &str) -> Result<(), FieldErrorKind> {
    if let Some(code) = text.strip_prefix("errorCode=") {
        return Err(FieldErrorKind::NotAllowed(format!(
            "the tokenization server refused the card (errorCode={})",
            code.chars().take(12).collect::<String>()
        )));
    }
    let Some(token) = text.strip_prefix("data=") else {
        return Err(FieldErrorKind::NotAllowed(
            "must be the tokenization server's answer, `data=` followed by a token".into(),
        ));
    };
    if token.is_empty()
        || text.len() > MAX_REGISTRATION_DATA
        || !token.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(FieldErrorKind::NotAllowed(format!(
            "must be `data=` followed by a token of 1 to {} printable characters",
            MAX_REGISTRATION_DATA - 5
        )));
    }
    Ok(())
}

impl MangopayCardRegistration {
    /// A registration of a `card_type` card in `currency` for the user `user_id` (local id);
    /// not saved yet.
    pub fn new(
        user_id: i64,
        currency: CurrencyCode,
        card_type: CardType,
    ) -> Result<MangopayCardRegistration, ValidationErrors> {
        let registration = MangopayCardRegistration {
            id: None,
            user_id,
            currency,
            card_type,
            tag: None,
            facts: CardRegistrationFacts::default(),
            user: Parent::default(),
            sync: SyncInfo::default(),
        };
        registration.validate().map(|()| registration)
    }

    /// The same registration with `tag` as its tag.
    pub fn with_tag(mut self, tag: impl Into<String>) -> MangopayCardRegistration {
        self.tag = Some(tag.into());
        self
    }

    /// What Mangopay says about the registration.
    pub fn facts(&self) -> &CardRegistrationFacts {
        &self.facts
    }

    /// `Status`, as last recorded.
    pub fn status(&self) -> Option<&CardRegistrationStatus> {
        self.facts.status.as_ref()
    }

    /// Every problem with the current field values, or `Ok`.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut e = ValidationErrors::new();
        e.check("currency", money::supported(self.currency));
        if let CardType::Unknown(other) = &self.card_type {
            e.push(
                "card_type",
                FieldErrorKind::NotAllowed(format!(
                    "must be CB_VISA_MASTERCARD, AMEX, MAESTRO or BCMC, not {other}"
                )),
            );
        }
        e.check("tag", validate_tag(self.tag.as_deref()));
        e.into_result()
    }

    /// What the browser needs to tokenize the card (django-mangopay's
    /// `get_preregistration_data()`), once the registration was created.
    pub fn preregistration_data(&self) -> Result<PreregistrationData, Error> {
        let f = &self.facts;
        match (
            &f.preregistration_data,
            &f.access_key,
            &f.card_registration_url,
        ) {
            (Some(data), Some(key), Some(url)) => Ok(PreregistrationData {
                preregistration_data: data.clone(),
                access_key: key.clone(),
                card_registration_url: url.clone(),
            }),
            _ => Err(Error::NotCreated {
                model: <Self as Resource>::MODEL,
                id: self.id.unwrap_or_default(),
            }),
        }
    }

    /// Completes the registration with `registration_data`, the tokenization server's answer
    /// (`data=...`), and the cardholder's name as printed on the card if known
    /// (`PUT /cardregistrations/{Id}`): Mangopay makes the card, recorded as a
    /// [`MangopayCard`] row with its details, and returned.
    ///
    /// Malformed data is refused before anything is sent. Registration data Mangopay refuses
    /// leaves the registration `ERROR` with its result code ([`Error::WrongState`] says it);
    /// register again. Safe to call again: once the card was made, the same card is
    /// returned. The registration is held for the whole call: a second call meanwhile (a
    /// double submit, another worker) gets [`Error::Busy`] and sends nothing. The
    /// registration data is sent, never stored.
    pub async fn complete(
        &mut self,
        db: &Db,
        client: &MangopayClient,
        registration_data: &str,
        card_holder_name: Option<&str>,
    ) -> Result<MangopayCard, Error> {
        let mut e = ValidationErrors::new();
        e.check(
            "registration_data",
            check_registration_data(registration_data),
        );
        if let Some(name) = card_holder_name {
            e.check("card_holder_name", crate::validate::name(name, 255));
        }
        e.into_result()?;
        let id = self.id.ok_or(Error::NotSaved {
            model: <Self as Resource>::MODEL,
        })?;
        let work = self.complete_held(db, client, id, registration_data, card_holder_name);
        holding(db, client, id, work).await
    }

    async fn complete_held(
        &mut self,
        db: &Db,
        client: &MangopayClient,
        id: i64,
        registration_data: &str,
        card_holder_name: Option<&str>,
    ) -> Result<MangopayCard, Error> {
        *self = Self::get(db, id).await?;
        if let Some(card) = self.recorded_card(db).await? {
            return with_details(card, db, client).await;
        }
        let mangopay_id = self
            .mangopay_id()
            .ok_or(Error::NotCreated {
                model: <Self as Resource>::MODEL,
                id,
            })?
            .to_owned();
        if self.facts.mangopay_card_id.is_some() {
            // Mangopay made the card already (an earlier call stopped before recording it).
            return self.card_from_answer(db, client, card_holder_name).await;
        }
        if self.status() != Some(&CardRegistrationStatus::Created) {
            return Err(self.not_completable());
        }
        let mut body = json!({ "RegistrationData": registration_data });
        if let Some(name) = card_holder_name {
            body["CardHolderName"] = Value::String(name.to_owned());
        }
        match client
            .put(&format!("cardregistrations/{mangopay_id}"), &body)
            .await
        {
            Ok(answer) => {
                crate::sync::record_answer(db, self.clone(), id, answer).await?;
            }
            // The answer may be lost after Mangopay made the card: what Mangopay holds now
            // says.
            Err(error) => {
                tracing::warn!(id, %error, "completing the card registration failed; reading it back");
                self.refresh(db, client).await?;
                if self.status() == Some(&CardRegistrationStatus::Created) {
                    return Err(error.into());
                }
            }
        }
        *self = Self::get(db, id).await?;
        self.card_from_answer(db, client, card_holder_name).await
    }

    /// Records the card of a completed registration, or says why there is none.
    async fn card_from_answer(
        &mut self,
        db: &Db,
        client: &MangopayClient,
        card_holder_name: Option<&str>,
    ) -> Result<MangopayCard, Error> {
        let Some(card_mangopay_id) = self.facts.mangopay_card_id.clone() else {
            return Err(self.not_completable());
        };
        self.record_card(db, client, &card_mangopay_id, card_holder_name)
            .await
    }

    /// The card this registration already made, if its row exists.
    async fn recorded_card(&self, db: &Db) -> Result<Option<MangopayCard>, Error> {
        match self.facts.card_id {
            Some(card_id) => MangopayCard::get(db, card_id).await.map(Some),
            None => Ok(None),
        }
    }

    fn not_completable(&self) -> Error {
        let f = &self.facts;
        Error::WrongState {
            model: <Self as Resource>::MODEL,
            id: self.id.unwrap_or_default(),
            reason: match &f.status {
                Some(CardRegistrationStatus::Error) => format!(
                    "Mangopay refused the registration data ({} {}): register the card again",
                    f.result_code.as_deref().unwrap_or("no result code"),
                    f.result_message.as_deref().unwrap_or_default()
                ),
                Some(status) => format!("the registration is {status}, not CREATED"),
                None => "the registration's status is not known yet".into(),
            },
        }
    }

    /// Records `card_mangopay_id` as the card this registration made (django-mangopay's
    /// `save_mangopay_card_id`): the card is read from Mangopay (`GET /cards/{Id}`) and must
    /// belong to the registration's user, in its currency; its row is made (or found: one row
    /// per Mangopay card) with its details, and linked. A registration that already made
    /// another card is refused ([`Error::WrongState`]): its card id is never overwritten.
    /// [`complete`](Self::complete) does this on its own.
    pub async fn save_card_id(
        &mut self,
        db: &Db,
        client: &MangopayClient,
        card_mangopay_id: &str,
        card_holder_name: Option<&str>,
    ) -> Result<MangopayCard, Error> {
        let id = self.id.ok_or(Error::NotSaved {
            model: <Self as Resource>::MODEL,
        })?;
        let mut e = ValidationErrors::new();
        e.check(
            "card_mangopay_id",
            crate::validate::name(card_mangopay_id, 128),
        );
        if let Some(name) = card_holder_name {
            e.check("card_holder_name", crate::validate::name(name, 255));
        }
        e.into_result()?;
        let work = self.record_card(db, client, card_mangopay_id, card_holder_name);
        holding(db, client, id, work).await
    }

    /// [`save_card_id`](Self::save_card_id), the registration held by the caller.
    async fn record_card(
        &mut self,
        db: &Db,
        client: &MangopayClient,
        card_mangopay_id: &str,
        card_holder_name: Option<&str>,
    ) -> Result<MangopayCard, Error> {
        let id = self.id.ok_or(Error::NotSaved {
            model: <Self as Resource>::MODEL,
        })?;
        *self = Self::get(db, id).await?;
        let wrong = |reason: String| Error::WrongState {
            model: <Self as Resource>::MODEL,
            id,
            reason,
        };
        if let Some(made) = self.facts.mangopay_card_id.as_deref()
            && made != card_mangopay_id
        {
            return Err(wrong(format!(
                "the registration made card {made}, not {card_mangopay_id}"
            )));
        }
        if let Some(card) = self.recorded_card(db).await?
            && card.mangopay_id() == Some(card_mangopay_id)
        {
            return with_details(card, db, client).await;
        }
        let owner = self
            .user
            .created(
                <Self as Resource>::MODEL,
                "user_id",
                "MangopayUser",
                self.user_id,
            )?
            .to_owned();
        // The card must be this user's at Mangopay, in the registration's currency.
        let payload = client.get(&format!("cards/{card_mangopay_id}")).await?;
        let user_at_mangopay = payload.get("UserId").and_then(Value::as_str);
        if user_at_mangopay != Some(owner.as_str()) {
            return Err(wrong(format!(
                "card {card_mangopay_id} belongs to {}, not to the registration's user {owner}",
                user_at_mangopay.unwrap_or("nobody")
            )));
        }
        let currency = payload.get("Currency").and_then(Value::as_str);
        if currency != Some(self.currency.as_str()) {
            return Err(wrong(format!(
                "card {card_mangopay_id} is in {}, not {}",
                currency.unwrap_or("no currency"),
                self.currency
            )));
        }
        let (user_id, currency, card_type, tag) = (
            self.user_id,
            self.currency.to_string(),
            self.card_type.to_string(),
            self.tag.clone(),
        );
        let wanted = card_mangopay_id.to_owned();
        let holder = card_holder_name.map(str::to_owned);
        let card_id = db
            .write(move |conn| {
                let now = crate::sync::now();
                // One row per Mangopay card, whoever records it first.
                crate::sync::store::query(
                    conn,
                    "INSERT INTO mangopay_cards (user_id, currency, card_type, \
                       card_holder_name, tag, mangopay_id, sync_state, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, 'synced', $7, $7) \
                     ON CONFLICT (mangopay_id) DO NOTHING"
                        .into(),
                )
                .bind::<diesel::sql_types::BigInt, _>(user_id)
                .bind::<diesel::sql_types::Text, _>(currency)
                .bind::<diesel::sql_types::Text, _>(card_type)
                .bind::<diesel::sql_types::Nullable<diesel::sql_types::Text>, _>(holder)
                .bind::<diesel::sql_types::Nullable<diesel::sql_types::Text>, _>(tag)
                .bind::<diesel::sql_types::Text, _>(&wanted)
                .bind::<diesel::sql_types::Timestamp, _>(now)
                .execute(conn)?;
                let (card_id, owner) = cards::table
                    .filter(cards::mangopay_id.eq(&wanted))
                    .select((cards::id, cards::user_id))
                    .first::<(i64, i64)>(conn)?;
                if owner != user_id {
                    return Err(Error::WrongState {
                        model: "MangopayCardRegistration",
                        id,
                        reason: format!(
                            "card {wanted} is row {card_id} of user {owner}, not of user \
                             {user_id}"
                        ),
                    });
                }
                // Never over another card this registration made.
                let linked = diesel::update(
                    registrations::table.find(id).filter(
                        registrations::mangopay_card_id
                            .is_null()
                            .or(registrations::mangopay_card_id.eq(&wanted)),
                    ),
                )
                .set((
                    registrations::card_id.eq(Some(card_id)),
                    registrations::mangopay_card_id.eq(Some(&wanted)),
                ))
                .execute(conn)?;
                if linked == 0 {
                    return Err(Error::WrongState {
                        model: "MangopayCardRegistration",
                        id,
                        reason: "the registration made another card meanwhile".into(),
                    });
                }
                Ok::<_, Error>(card_id)
            })
            .await?;
        let card = MangopayCard::get(db, card_id).await?;
        crate::sync::record_answer(db, card, card_id, payload).await?;
        *self = Self::get(db, id).await?;
        MangopayCard::get(db, card_id).await
    }

    /// The registrations of the user `user_id` (local id), oldest first.
    pub async fn for_user(db: &Db, user_id: i64) -> Result<Vec<MangopayCardRegistration>, Error> {
        crate::sync::get_where(db, move |conn| {
            registrations::table
                .filter(registrations::user_id.eq(user_id))
                .order(registrations::id)
                .select(registrations::id)
                .load::<i64>(conn)
        })
        .await
    }
}

crate::models::resource_methods!(MangopayCardRegistration, "card registration");

/// `card` with its details read from Mangopay if they never were (a call stopped after the
/// card's row was made, before its details were written).
async fn with_details(
    mut card: MangopayCard,
    db: &Db,
    client: &MangopayClient,
) -> Result<MangopayCard, Error> {
    if card.sync().api_payload.is_none() {
        card.request_card_info(db, client).await?;
    }
    Ok(card)
}

/// Runs `work` holding the registration `id`'s lease (another call meanwhile gets
/// [`Error::Busy`]), then lets it go.
async fn holding<T>(
    db: &Db,
    client: &MangopayClient,
    id: i64,
    work: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let lease = Lease::random();
    crate::sync::hold(db, client, CARD_REGISTRATIONS, id, &lease).await?;
    let result = work.await;
    let released = crate::sync::release(db, CARD_REGISTRATIONS, id, &lease).await;
    let value = result?;
    released?;
    Ok(value)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = registrations)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite, MultiBackend))]
struct RegistrationRow {
    id: i64,
    user_id: i64,
    currency: String,
    card_type: String,
    access_key: Option<String>,
    preregistration_data: Option<String>,
    card_registration_url: Option<String>,
    status: Option<String>,
    result_code: Option<String>,
    result_message: Option<String>,
    mangopay_card_id: Option<String>,
    card_id: Option<i64>,
    tag: Option<String>,
    mangopay_created_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = registrations, treat_none_as_null = true)]
struct RegistrationFields {
    user_id: i64,
    currency: String,
    card_type: String,
    tag: Option<String>,
}

#[derive(AsChangeset, Default)]
#[diesel(table_name = registrations)]
struct RegistrationFromApi {
    access_key: Option<Option<String>>,
    preregistration_data: Option<Option<String>>,
    card_registration_url: Option<Option<String>>,
    status: Option<Option<String>>,
    result_code: Option<Option<String>>,
    result_message: Option<Option<String>>,
    mangopay_card_id: Option<Option<String>>,
    mangopay_created_at: Option<Option<NaiveDateTime>>,
    tag: Option<Option<String>>,
}

impl MangopayCardRegistration {
    fn fields(&self) -> RegistrationFields {
        RegistrationFields {
            user_id: self.user_id,
            currency: self.currency.to_string(),
            card_type: self.card_type.to_string(),
            tag: self.tag.clone(),
        }
    }
}

impl Resource for MangopayCardRegistration {
    const MODEL: &'static str = "MangopayCardRegistration";
    const TABLE: SyncTable = CARD_REGISTRATIONS;
    const UPDATABLE: bool = false;

    crate::sync::row_accessors!();
    fn validate(&self) -> Result<(), ValidationErrors> {
        MangopayCardRegistration::validate(self)
    }
    fn app_tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    fn load(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<Self>> {
        let row = registrations::table
            .find(id)
            .select(RegistrationRow::as_select())
            .first::<RegistrationRow>(conn)
            .optional()?;
        Ok(row.map(|r| MangopayCardRegistration {
            id: Some(r.id),
            user_id: r.user_id,
            currency: super::transaction::stored_currency(&r.currency),
            card_type: CardType::from_api(&r.card_type),
            tag: r.tag,
            facts: CardRegistrationFacts {
                access_key: r.access_key,
                preregistration_data: r.preregistration_data,
                card_registration_url: r.card_registration_url,
                status: r.status.as_deref().map(CardRegistrationStatus::from_api),
                result_code: r.result_code,
                result_message: r.result_message,
                mangopay_card_id: r.mangopay_card_id,
                card_id: r.card_id,
                mangopay_created_at: r.mangopay_created_at.map(|t| t.and_utc()),
            },
            user: Parent::default(),
            sync: SyncInfo::default(),
        }))
    }

    fn resolve(&mut self, conn: &mut AnyConnection) -> Result<(), Error> {
        self.user = parent::user(conn, "user_id", self.user_id)?;
        Ok(())
    }

    fn parents_ready(&self) -> Result<(), Error> {
        self.user
            .ready(Self::MODEL, "user_id", "MangopayUser", self.user_id)
    }

    crate::models::field_writes!(registrations);

    fn apply_api_data(
        &self,
        conn: &mut AnyConnection,
        id: i64,
        p: &Value,
        scope: Scope,
    ) -> QueryResult<()> {
        // `RegistrationData` is never read: it stays out of the database. The tokenization
        // credentials are kept only while the registration can still be completed.
        let status = read::text(p, "Status");
        let spent = matches!(
            status.as_ref().and_then(Option::as_deref),
            Some("VALIDATED" | "ERROR")
        );
        let credential = |key: &str| {
            if spent {
                Some(None)
            } else {
                read::text(p, key)
            }
        };
        let changes = RegistrationFromApi {
            access_key: credential("AccessKey"),
            preregistration_data: credential("PreregistrationData"),
            card_registration_url: read::text(p, "CardRegistrationURL"),
            status,
            result_code: read::text(p, "ResultCode"),
            result_message: read::text(p, "ResultMessage"),
            // A card once made stays this registration's.
            mangopay_card_id: read::text(p, "CardId").filter(Option::is_some),
            mangopay_created_at: read::timestamp(p, "CreationDate"),
            tag: if scope == Scope::All {
                read::text(p, "Tag")
            } else {
                None
            },
        };
        diesel::update(registrations::table.find(id))
            .set(&changes)
            .execute(conn)
            .map(drop)
    }

    fn create_request(&self, tag: Option<&str>) -> Result<ApiRequest, Error> {
        let user = self
            .user
            .created(Self::MODEL, "user_id", "MangopayUser", self.user_id)?;
        let mut b = CreateBody::new();
        b.put("UserId", Some(user))
            .put("Currency", Some(self.currency.as_str()))
            .put("CardType", Some(self.card_type.as_str()))
            .put("Tag", tag);
        Ok(ApiRequest {
            path: "cardregistrations".into(),
            body: b.finish(),
        })
    }

    fn update_request(&self, _tag: Option<&str>) -> Result<UpdateRequest, Error> {
        Err(super::transfer::not_updatable(Self::MODEL, self.id))
    }

    fn view_path(&self, mangopay_id: &str) -> String {
        format!("cardregistrations/{mangopay_id}")
    }

    fn listing(&self) -> Listing {
        // Mangopay lists no card registrations; one left unused moves no money.
        Listing::unlisted()
    }

    fn check_found(&self, found: &Value) -> Result<(), String> {
        let user = self.user.mangopay_id.as_deref();
        match found.get("UserId").and_then(Value::as_str) {
            Some(u) if Some(u) == user => {}
            other => return Err(format!("it belongs to {other:?}, not {user:?}")),
        }
        match found.get("Currency").and_then(Value::as_str) {
            Some(c) if c == self.currency.as_str() => Ok(()),
            other => Err(format!("it is in {other:?}, not {}", self.currency)),
        }
    }
}

/// A card, kept in `mangopay_cards`: made by completing a [`MangopayCardRegistration`], read
/// from Mangopay by [`request_card_info`](Self::request_card_info), and deactivated by
/// [`deactivate`](Self::deactivate). Mangopay never gives the card's number, only its alias.
#[derive(Debug, Clone, PartialEq)]
pub struct MangopayCard {
    /// The local id.
    pub id: Option<i64>,
    /// `UserId`: the local id of the card's owner.
    pub user_id: i64,
    /// `Active`: `false` once deactivated (for good).
    pub active: bool,
    /// `CardHolderName`, as given when the registration was completed.
    pub card_holder_name: Option<String>,
    /// `Tag`, inherited from the registration.
    pub tag: Option<String>,
    facts: CardFacts,
    sync: SyncInfo,
}

/// What Mangopay says about a card.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CardFacts {
    /// `Currency`.
    pub currency: Option<String>,
    /// `CardType`.
    pub card_type: Option<CardType>,
    /// `ExpirationDate`, `MMYY`.
    pub expiration_date: Option<String>,
    /// `Alias`: the masked number, such as `497010XXXXXX1119`.
    pub alias: Option<String>,
    /// `CardProvider` (VISA, MASTERCARD, CB, AMEX, ...).
    pub card_provider: Option<String>,
    /// `Country` of the issuer (ISO 3166-1 alpha-3).
    pub country: Option<String>,
    /// `Product`.
    pub product: Option<String>,
    /// `BankCode`.
    pub bank_code: Option<String>,
    /// `Validity`.
    pub validity: Option<CardValidity>,
    /// `Fingerprint`: the same card registered twice has the same one.
    pub fingerprint: Option<String>,
    /// `CreationDate`.
    pub mangopay_created_at: Option<DateTime<Utc>>,
    /// When the card's details were last read from Mangopay.
    pub info_requested_at: Option<DateTime<Utc>>,
}

impl MangopayCard {
    /// What Mangopay says about the card, as last read.
    pub fn facts(&self) -> &CardFacts {
        &self.facts
    }

    /// The local id, once saved.
    pub fn id(&self) -> Option<i64> {
        self.id
    }

    /// Mangopay's id.
    pub fn mangopay_id(&self) -> Option<&str> {
        self.sync.mangopay_id.as_deref()
    }

    /// Where the row stands with Mangopay: its sync columns.
    pub fn sync(&self) -> &SyncInfo {
        &self.sync
    }

    /// Loads the card with this local id.
    pub async fn get(db: &Db, id: i64) -> Result<MangopayCard, Error> {
        crate::sync::get(db, id).await
    }

    /// Loads the card with this Mangopay id, if there is one.
    pub async fn find_by_mangopay_id(
        db: &Db,
        mangopay_id: &str,
    ) -> Result<Option<MangopayCard>, Error> {
        crate::sync::find_by_mangopay_id(db, mangopay_id).await
    }

    /// The cards of the user `user_id` (local id), oldest first.
    pub async fn for_user(db: &Db, user_id: i64) -> Result<Vec<MangopayCard>, Error> {
        crate::sync::get_where(db, move |conn| {
            cards::table
                .filter(cards::user_id.eq(user_id))
                .order(cards::id)
                .select(cards::id)
                .load::<i64>(conn)
        })
        .await
    }

    /// Reads the card from Mangopay (`GET /cards/{Id}`) and records its details: expiration
    /// date, alias, active, validity, provider, country, fingerprint, and the rest.
    pub async fn request_card_info(
        &mut self,
        db: &Db,
        client: &MangopayClient,
    ) -> Result<(), Error> {
        crate::sync::refresh(self, db, client).await
    }

    /// Deactivates the card at Mangopay (`PUT /cards/{Id}` with `Active: false`), for good:
    /// it can no longer be charged, and Mangopay cannot reactivate it. Records the answer;
    /// when the answer is lost, the card is read back. A card already inactive sends
    /// nothing, and no later answer makes the row active again.
    pub async fn deactivate(&mut self, db: &Db, client: &MangopayClient) -> Result<(), Error> {
        let id = self.id.ok_or(Error::NotSaved {
            model: <Self as Resource>::MODEL,
        })?;
        *self = Self::get(db, id).await?;
        if !self.active {
            return Ok(());
        }
        let mangopay_id = self
            .mangopay_id()
            .ok_or(Error::NotCreated {
                model: <Self as Resource>::MODEL,
                id,
            })?
            .to_owned();
        let path = format!("cards/{mangopay_id}");
        let put = super::bank_account::put_and_record::<Self>(
            db,
            client,
            id,
            &path,
            &json!({ "Active": false }),
        )
        .await;
        if let Err(error @ Error::Api(_)) = put {
            // The answer may be lost after Mangopay deactivated the card: read it back.
            tracing::warn!(id, %error, "deactivating the card failed; reading it back");
            self.request_card_info(db, client).await?;
            *self = Self::get(db, id).await?;
            return if self.active { Err(error) } else { Ok(()) };
        }
        put?;
        *self = Self::get(db, id).await?;
        Ok(())
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = cards)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite, MultiBackend))]
struct CardRow {
    id: i64,
    user_id: i64,
    currency: Option<String>,
    card_type: Option<String>,
    expiration_date: Option<String>,
    alias: Option<String>,
    card_provider: Option<String>,
    country: Option<String>,
    product: Option<String>,
    bank_code: Option<String>,
    active: bool,
    validity: Option<String>,
    fingerprint: Option<String>,
    card_holder_name: Option<String>,
    tag: Option<String>,
    mangopay_created_at: Option<NaiveDateTime>,
    info_requested_at: Option<NaiveDateTime>,
}

#[derive(AsChangeset, Default)]
#[diesel(table_name = cards)]
struct CardFromApi {
    currency: Option<Option<String>>,
    card_type: Option<Option<String>>,
    expiration_date: Option<Option<String>>,
    alias: Option<Option<String>>,
    card_provider: Option<Option<String>>,
    country: Option<Option<String>>,
    product: Option<Option<String>>,
    bank_code: Option<Option<String>>,
    active: Option<bool>,
    validity: Option<Option<String>>,
    fingerprint: Option<Option<String>>,
    mangopay_created_at: Option<Option<NaiveDateTime>>,
    info_requested_at: Option<Option<NaiveDateTime>>,
}

impl Resource for MangopayCard {
    const MODEL: &'static str = "MangopayCard";
    const TABLE: SyncTable = CARDS;
    const UPDATABLE: bool = false;

    crate::sync::row_accessors!();
    fn validate(&self) -> Result<(), ValidationErrors> {
        Ok(())
    }
    fn app_tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    fn load(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<Self>> {
        let row = cards::table
            .find(id)
            .select(CardRow::as_select())
            .first::<CardRow>(conn)
            .optional()?;
        Ok(row.map(|r| MangopayCard {
            id: Some(r.id),
            user_id: r.user_id,
            active: r.active,
            card_holder_name: r.card_holder_name,
            tag: r.tag,
            facts: CardFacts {
                currency: r.currency,
                card_type: r.card_type.as_deref().map(CardType::from_api),
                expiration_date: r.expiration_date,
                alias: r.alias,
                card_provider: r.card_provider,
                country: r.country,
                product: r.product,
                bank_code: r.bank_code,
                validity: r.validity.as_deref().map(CardValidity::from_api),
                fingerprint: r.fingerprint,
                mangopay_created_at: r.mangopay_created_at.map(|t| t.and_utc()),
                info_requested_at: r.info_requested_at.map(|t| t.and_utc()),
            },
            sync: SyncInfo::default(),
        }))
    }

    fn insert(&self, _conn: &mut AnyConnection, _now: NaiveDateTime) -> QueryResult<i64> {
        // Cards are made by completing a registration (`save_card_id`), never saved alone.
        Err(diesel::result::Error::QueryBuilderError(
            "a card is recorded by completing its card registration".into(),
        ))
    }

    fn write_fields(&self, _conn: &mut AnyConnection, _id: i64) -> QueryResult<()> {
        Ok(())
    }

    fn apply_api_data(
        &self,
        conn: &mut AnyConnection,
        id: i64,
        p: &Value,
        _scope: Scope,
    ) -> QueryResult<()> {
        let changes = CardFromApi {
            currency: read::text(p, "Currency"),
            card_type: read::text(p, "CardType"),
            expiration_date: read::text(p, "ExpirationDate"),
            alias: read::text(p, "Alias"),
            card_provider: read::text(p, "CardProvider"),
            country: read::text(p, "Country"),
            product: read::text(p, "Product"),
            bank_code: read::text(p, "BankCode"),
            // Deactivation is for good: an answer read before it (a slow `GET`) must not
            // write the card back to active.
            active: read::boolean(p, "Active").filter(|active| !active),
            validity: read::text(p, "Validity"),
            fingerprint: read::text(p, "Fingerprint"),
            mangopay_created_at: read::timestamp(p, "CreationDate"),
            info_requested_at: Some(Some(crate::sync::now())),
        };
        diesel::update(cards::table.find(id))
            .set(&changes)
            .execute(conn)
            .map(drop)
    }

    fn create_request(&self, _tag: Option<&str>) -> Result<ApiRequest, Error> {
        Err(Error::WrongState {
            model: Self::MODEL,
            id: self.id.unwrap_or_default(),
            reason: "a card is made by completing its card registration".into(),
        })
    }

    fn update_request(&self, _tag: Option<&str>) -> Result<UpdateRequest, Error> {
        Err(super::transfer::not_updatable(Self::MODEL, self.id))
    }

    fn view_path(&self, mangopay_id: &str) -> String {
        format!("cards/{mangopay_id}")
    }

    fn listing(&self) -> Listing {
        Listing::unlisted()
    }

    fn check_found(&self, _found: &Value) -> Result<(), String> {
        Err("cards are recorded by completing their registration".into())
    }
}
