//! Natural and legal users: create, partial update, view (generic and typed)
//! and list, answered with the objects exactly as Mangopay's documentation
//! shows them (every key present, `null` where absent, integer timestamps).
//! Their `ProofOf…` Ids and `KYCLevel` come from their validated KYC documents and UBO
//! declarations (see [`super::kyc`]).

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use serde::Serialize;
use serde_json::{Map, Value};

use super::Sandbox;
use super::error::{ApiError, FieldErrors, json_response};
use super::ids;
use super::knobs::{PutEmptyString, PutNull};
use super::kyc::Verification;
use super::validation::{Address, Fields};

/// `PersonType` of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PersonType {
    Natural,
    Legal,
}

impl PersonType {
    fn as_str(self) -> &'static str {
        match self {
            PersonType::Natural => "NATURAL",
            PersonType::Legal => "LEGAL",
        }
    }
}

const USER_CATEGORIES: [&str; 2] = ["PAYER", "OWNER"];
const LEGAL_PERSON_TYPES: [&str; 4] = ["BUSINESS", "PARTNERSHIP", "ORGANIZATION", "SOLETRADER"];

/// The writable fields of a natural user, as validated and stored.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NaturalFields {
    user_category: String,
    terms_and_conditions_accepted: bool,
    first_name: String,
    last_name: String,
    email: String,
    birthday: Option<i64>,
    nationality: Option<String>,
    country_of_residence: Option<String>,
    address: Address,
    occupation: Option<String>,
    income_range: Option<u8>,
    tag: Option<String>,
}

/// The writable fields of a legal user, as validated and stored.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct LegalFields {
    user_category: String,
    terms_and_conditions_accepted: bool,
    legal_person_type: String,
    name: String,
    email: String,
    headquarters_address: Address,
    company_number: Option<String>,
    legal_representative_first_name: String,
    legal_representative_last_name: String,
    legal_representative_email: Option<String>,
    legal_representative_birthday: Option<i64>,
    legal_representative_nationality: Option<String>,
    legal_representative_country_of_residence: Option<String>,
    legal_representative_address: Address,
    tag: Option<String>,
}

/// The kind-specific part of a stored user.
#[derive(Debug, Clone)]
pub(crate) enum UserData {
    Natural(Box<NaturalFields>),
    Legal(Box<LegalFields>),
}

/// One stored user.
#[derive(Debug, Clone)]
pub(crate) struct UserRecord {
    pub(crate) id: String,
    creation_date: i64,
    /// The creation instant in milliseconds of the sandbox clock (for the list lag).
    created_at_ms: i64,
    /// When `TermsAndConditionsAccepted` was first set to true.
    terms_accepted_at: Option<i64>,
    data: UserData,
    /// What the user's validated KYC documents and UBO declarations prove, kept up to date
    /// by [`super::state::Shared::settle_kyc`].
    pub(crate) verification: Verification,
}

impl UserRecord {
    pub(crate) fn person_type(&self) -> PersonType {
        match self.data {
            UserData::Natural(_) => PersonType::Natural,
            UserData::Legal(_) => PersonType::Legal,
        }
    }

    /// Whether the user's `UserCategory` is `OWNER`.
    pub(crate) fn is_owner(&self) -> bool {
        self.category_and_terms().0 == "OWNER"
    }

    /// The `LegalPersonType` of a legal user; `None` for a natural user.
    pub(crate) fn legal_person_type(&self) -> Option<&str> {
        match &self.data {
            UserData::Natural(_) => None,
            UserData::Legal(f) => Some(&f.legal_person_type),
        }
    }

    /// `REGULAR` for an `OWNER` whose validated documents (and UBO declaration) cover what
    /// its type needs ([`Verification::is_regular`]), else `LIGHT`.
    fn kyc_level(&self) -> &'static str {
        if self.is_owner() && self.verification.is_regular(self.legal_person_type()) {
            "REGULAR"
        } else {
            "LIGHT"
        }
    }

    fn category_and_terms(&self) -> (&str, bool) {
        match &self.data {
            UserData::Natural(f) => (&f.user_category, f.terms_and_conditions_accepted),
            UserData::Legal(f) => (&f.user_category, f.terms_and_conditions_accepted),
        }
    }

    fn summary(&self) -> UserSummary<'_> {
        let (category, terms) = self.category_and_terms();
        let (email, tag) = match &self.data {
            UserData::Natural(f) => (&f.email, &f.tag),
            UserData::Legal(f) => (&f.email, &f.tag),
        };
        UserSummary {
            id: &self.id,
            tag: tag.as_deref(),
            creation_date: self.creation_date,
            person_type: self.person_type().as_str(),
            email,
            kyc_level: self.kyc_level(),
            terms_and_conditions_accepted: terms,
            // Documented as returned null for PAYER users.
            terms_and_conditions_accepted_date: if category == "PAYER" {
                None
            } else {
                self.terms_accepted_at
            },
            user_category: category,
            user_status: "ACTIVE",
        }
    }

    /// The full object, as `GET /users/{Id}` answers it.
    pub(crate) fn to_json(&self) -> Value {
        match &self.data {
            UserData::Natural(fields) => serde_json::to_value(NaturalUserView::new(self, fields)),
            UserData::Legal(fields) => serde_json::to_value(LegalUserView::new(self, fields)),
        }
        .unwrap_or(Value::Null)
    }

    fn to_response(&self) -> Response {
        match &self.data {
            UserData::Natural(fields) => {
                json_response(StatusCode::OK, &NaturalUserView::new(self, fields))
            }
            UserData::Legal(fields) => {
                json_response(StatusCode::OK, &LegalUserView::new(self, fields))
            }
        }
    }
}

/// The keys every user object ends with, and the whole item of `GET /users`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct UserSummary<'a> {
    id: &'a str,
    tag: Option<&'a str>,
    creation_date: i64,
    person_type: &'static str,
    email: &'a str,
    #[serde(rename = "KYCLevel")]
    kyc_level: &'static str,
    terms_and_conditions_accepted: bool,
    terms_and_conditions_accepted_date: Option<i64>,
    user_category: &'a str,
    user_status: &'static str,
}

/// The Natural User object, keys in the documentation's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct NaturalUserView<'a> {
    address: &'a Address,
    first_name: &'a str,
    last_name: &'a str,
    birthday: Option<i64>,
    nationality: Option<&'a str>,
    country_of_residence: Option<&'a str>,
    occupation: Option<&'a str>,
    income_range: Option<u8>,
    proof_of_identity: Option<&'a str>,
    proof_of_address: Option<&'a str>,
    capacity: &'static str,
    phone_number: Option<&'a str>,
    phone_number_country: Option<&'a str>,
    #[serde(flatten)]
    summary: UserSummary<'a>,
}

impl<'a> NaturalUserView<'a> {
    fn new(record: &'a UserRecord, f: &'a NaturalFields) -> NaturalUserView<'a> {
        NaturalUserView {
            address: &f.address,
            first_name: &f.first_name,
            last_name: &f.last_name,
            birthday: f.birthday,
            nationality: f.nationality.as_deref(),
            country_of_residence: f.country_of_residence.as_deref(),
            occupation: f.occupation.as_deref(),
            income_range: f.income_range,
            proof_of_identity: record.verification.identity_proof.as_deref(),
            proof_of_address: record.verification.address_proof.as_deref(),
            capacity: "NORMAL",
            phone_number: None,
            phone_number_country: None,
            summary: record.summary(),
        }
    }
}

/// The Legal User object, keys in the documentation's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct LegalUserView<'a> {
    headquarters_address: &'a Address,
    legal_representative_address: &'a Address,
    name: &'a str,
    legal_person_type: &'a str,
    legal_representative_first_name: &'a str,
    legal_representative_last_name: &'a str,
    legal_representative_email: Option<&'a str>,
    legal_representative_birthday: Option<i64>,
    legal_representative_nationality: Option<&'a str>,
    legal_representative_country_of_residence: Option<&'a str>,
    proof_of_registration: Option<&'a str>,
    shareholder_declaration: Option<&'a str>,
    statute: Option<&'a str>,
    legal_representative_proof_of_identity: Option<&'a str>,
    company_number: Option<&'a str>,
    phone_number: Option<&'a str>,
    phone_number_country: Option<&'a str>,
    #[serde(flatten)]
    summary: UserSummary<'a>,
}

impl<'a> LegalUserView<'a> {
    fn new(record: &'a UserRecord, f: &'a LegalFields) -> LegalUserView<'a> {
        LegalUserView {
            headquarters_address: &f.headquarters_address,
            legal_representative_address: &f.legal_representative_address,
            name: &f.name,
            legal_person_type: &f.legal_person_type,
            legal_representative_first_name: &f.legal_representative_first_name,
            legal_representative_last_name: &f.legal_representative_last_name,
            legal_representative_email: f.legal_representative_email.as_deref(),
            legal_representative_birthday: f.legal_representative_birthday,
            legal_representative_nationality: f.legal_representative_nationality.as_deref(),
            legal_representative_country_of_residence: f
                .legal_representative_country_of_residence
                .as_deref(),
            proof_of_registration: record.verification.registration_proof.as_deref(),
            shareholder_declaration: record.verification.shareholder_declaration.as_deref(),
            statute: record.verification.articles_of_association.as_deref(),
            legal_representative_proof_of_identity: record.verification.identity_proof.as_deref(),
            company_number: f.company_number.as_deref(),
            phone_number: None,
            phone_number_country: None,
            summary: record.summary(),
        }
    }
}

/// What an update has to respect about the user as it was.
#[derive(Debug, Clone, Copy)]
struct Previous {
    owner: bool,
    terms_accepted: bool,
}

/// The checks shared by both kinds once the fields were read: category changes,
/// terms revocation, then the terms an OWNER must have accepted.
fn check_category_and_terms(
    mut fields: Fields<'_>,
    category: Option<&str>,
    terms: Option<bool>,
    previous: Option<Previous>,
) -> Result<(), ApiError> {
    if let (Some(previous), Some("PAYER")) = (previous, category)
        && previous.owner
    {
        fields.error(
            "UserCategory",
            "A User OWNER can't be modified to a user PAYER",
        );
    }
    fields.finish().map_err(ApiError::param_errors)?;
    // Clearing the acceptance (`null` or `""`, see the update knobs) revokes it as well.
    if previous.is_some_and(|p| p.terms_accepted) && terms != Some(true) {
        return Err(ApiError::terms_revoked());
    }
    if category == Some("OWNER") && terms != Some(true) {
        return Err(ApiError::terms_not_accepted());
    }
    Ok(())
}

/// Validates a natural user's body (or an update merged onto the stored user).
fn validate_natural(
    input: &Map<String, Value>,
    now: i64,
    blocked: Vec<String>,
    previous: Option<Previous>,
) -> Result<NaturalFields, ApiError> {
    let mut f = Fields::new(input, now).with_blocked_countries(blocked);
    let category = f.one_of("UserCategory", &USER_CATEGORIES, true);
    let owner = category.as_deref() == Some("OWNER");
    let terms = f.boolean("TermsAndConditionsAccepted");
    let first_name = f.text("FirstName", 1, 100, true);
    let last_name = f.text("LastName", 1, 100, true);
    let email = f.email("Email", true);
    let birthday = f.birthday("Birthday", owner);
    let nationality = f.country("Nationality", owner);
    let country_of_residence = f.country("CountryOfResidence", owner);
    let address = f.address("Address", false);
    let occupation = f.text("Occupation", 0, 255, false);
    let income_range = f.income_range("IncomeRange");
    let tag = f.text("Tag", 0, 255, false);
    check_category_and_terms(f, category.as_deref(), terms, previous)?;

    let (Some(user_category), Some(first_name), Some(last_name), Some(email)) =
        (category, first_name, last_name, email)
    else {
        unreachable!("required fields were checked");
    };
    let mut fields = NaturalFields {
        user_category,
        terms_and_conditions_accepted: terms.unwrap_or(false),
        first_name,
        last_name,
        email,
        birthday,
        nationality,
        country_of_residence,
        address,
        occupation,
        income_range,
        tag,
    };
    if !owner {
        // Documented as returned null for PAYER users.
        fields.birthday = None;
        fields.nationality = None;
        fields.country_of_residence = None;
        fields.occupation = None;
        fields.income_range = None;
    }
    Ok(fields)
}

/// Validates a legal user's body (or an update merged onto the stored user).
fn validate_legal(
    input: &Map<String, Value>,
    now: i64,
    blocked: Vec<String>,
    previous: Option<Previous>,
) -> Result<LegalFields, ApiError> {
    let mut f = Fields::new(input, now).with_blocked_countries(blocked);
    let category = f.one_of("UserCategory", &USER_CATEGORIES, true);
    let owner = category.as_deref() == Some("OWNER");
    let terms = f.boolean("TermsAndConditionsAccepted");
    let legal_person_type = f.one_of("LegalPersonType", &LEGAL_PERSON_TYPES, true);
    let name = f.text("Name", 0, 255, true);
    let email = f.email("Email", true);
    let headquarters_address = f.address("HeadquartersAddress", owner);
    let business = legal_person_type.as_deref() == Some("BUSINESS");
    let company_number = f.text("CompanyNumber", 0, 255, owner && business);
    let rep_first_name = f.text("LegalRepresentativeFirstName", 1, 100, true);
    let rep_last_name = f.text("LegalRepresentativeLastName", 1, 100, true);
    let rep_email = f.email("LegalRepresentativeEmail", false);
    let rep_birthday = f.birthday("LegalRepresentativeBirthday", owner);
    let rep_nationality = f.country("LegalRepresentativeNationality", owner);
    let rep_residence = f.country("LegalRepresentativeCountryOfResidence", owner);
    let rep_address = f.address("LegalRepresentativeAddress", false);
    let tag = f.text("Tag", 0, 255, false);
    check_category_and_terms(f, category.as_deref(), terms, previous)?;

    let (
        Some(user_category),
        Some(legal_person_type),
        Some(name),
        Some(email),
        Some(rep_first_name),
        Some(rep_last_name),
    ) = (
        category,
        legal_person_type,
        name,
        email,
        rep_first_name,
        rep_last_name,
    )
    else {
        unreachable!("required fields were checked");
    };
    let mut fields = LegalFields {
        user_category,
        terms_and_conditions_accepted: terms.unwrap_or(false),
        legal_person_type,
        name,
        email,
        headquarters_address,
        company_number,
        legal_representative_first_name: rep_first_name,
        legal_representative_last_name: rep_last_name,
        legal_representative_email: rep_email,
        legal_representative_birthday: rep_birthday,
        legal_representative_nationality: rep_nationality,
        legal_representative_country_of_residence: rep_residence,
        legal_representative_address: rep_address,
        tag,
    };
    if !owner {
        // Documented as returned null for PAYER users.
        fields.headquarters_address = Address::default();
        fields.company_number = None;
        fields.legal_representative_email = None;
        fields.legal_representative_birthday = None;
        fields.legal_representative_nationality = None;
        fields.legal_representative_country_of_residence = None;
    }
    Ok(fields)
}

/// A request body that must be a JSON object; anything else is a `param_error`.
pub(crate) struct JsonObject(pub(crate) Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<JsonObject, ApiError> {
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::payload_too_large()
                } else {
                    ApiError::param_error("Body", rejection.body_text())
                }
            })?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(object)) => Ok(JsonObject(object)),
            Ok(_) => Err(ApiError::param_error(
                "Body",
                "The request body must be a JSON object.",
            )),
            Err(err) => Err(ApiError::param_error(
                "Body",
                format!("The request body is not valid JSON: {err}"),
            )),
        }
    }
}

fn create(sandbox: &Sandbox, data: UserData, terms: bool) -> Response {
    let now = sandbox.clock().now();
    let id = ids::user_id(now, &mut *sandbox.shared().rng());
    let record = UserRecord {
        id,
        creation_date: now.timestamp(),
        created_at_ms: now.timestamp_millis(),
        terms_accepted_at: terms.then(|| now.timestamp()),
        data,
        verification: Verification::default(),
    };
    let response = record.to_response();
    sandbox.shared().users().insert(record);
    response
}

/// `POST /v2.01/{ClientId}/users/natural`.
pub(crate) async fn users_natural_create(
    State(sandbox): State<Sandbox>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let fields = validate_natural(
        &body,
        sandbox.clock().now().timestamp(),
        sandbox.knobs().blocked_countries(),
        None,
    )?;
    let terms = fields.terms_and_conditions_accepted;
    Ok(create(&sandbox, UserData::Natural(Box::new(fields)), terms))
}

/// `POST /v2.01/{ClientId}/users/legal`.
pub(crate) async fn users_legal_create(
    State(sandbox): State<Sandbox>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let fields = validate_legal(
        &body,
        sandbox.clock().now().timestamp(),
        sandbox.knobs().blocked_countries(),
        None,
    )?;
    let terms = fields.terms_and_conditions_accepted;
    Ok(create(&sandbox, UserData::Legal(Box::new(fields)), terms))
}

/// How an update reads `null` and `""` (see [`crate::Knobs::set_put_null`] and
/// [`crate::Knobs::set_put_empty_string`]).
#[derive(Debug, Clone, Copy)]
struct UpdateRules {
    null: PutNull,
    empty: PutEmptyString,
}

impl UpdateRules {
    /// What an incoming `value` for the field `name` becomes: `None` keeps the stored value.
    /// A refused `""` is recorded in `refused`.
    fn incoming(self, name: &str, value: Value, refused: &mut FieldErrors) -> Option<Value> {
        match value {
            Value::Null => match self.null {
                PutNull::Keep => None,
                PutNull::Clear => Some(Value::Null),
            },
            Value::String(text) if text.is_empty() => match self.empty {
                PutEmptyString::Clear => Some(Value::String(text)),
                PutEmptyString::Keep => None,
                PutEmptyString::Reject => {
                    refused.insert(
                        name.to_owned(),
                        format!("The field {name} cannot be an empty string."),
                    );
                    None
                }
            },
            value => Some(value),
        }
    }
}

/// The stored writable fields with the body laid over them: keys present replace,
/// absent keys keep their value, `null` and `""` follow `rules`, read-only and unknown
/// keys are ignored. An address object replaces the stored one as a whole (its absent
/// parts are cleared), its `null` and `""` parts following `rules` against the stored
/// parts.
fn merge_update<T: Serialize>(
    stored: &T,
    body: Map<String, Value>,
    rules: UpdateRules,
) -> Result<Map<String, Value>, ApiError> {
    let Ok(Value::Object(mut merged)) = serde_json::to_value(stored) else {
        unreachable!("user fields serialize to an object");
    };
    let mut refused = FieldErrors::new();
    for (key, value) in body {
        let Some(current) = merged.get(&key) else {
            continue;
        };
        let value = match (value, current) {
            (Value::Object(parts), Value::Object(stored_parts)) => {
                let mut address = Map::new();
                for (part, value) in parts {
                    let name = format!("{key}.{part}");
                    let kept = stored_parts.get(&part).cloned();
                    match rules.incoming(&name, value, &mut refused) {
                        Some(value) => {
                            address.insert(part, value);
                        }
                        None => {
                            if let Some(kept) = kept {
                                address.insert(part, kept);
                            }
                        }
                    }
                }
                Value::Object(address)
            }
            (value, _) => match rules.incoming(&key, value, &mut refused) {
                Some(value) => value,
                None => continue,
            },
        };
        merged.insert(key, value);
    }
    if refused.is_empty() {
        Ok(merged)
    } else {
        Err(ApiError::param_errors(refused))
    }
}

fn update(
    sandbox: &Sandbox,
    kind: PersonType,
    id: &str,
    body: Map<String, Value>,
) -> Result<Response, ApiError> {
    let now = sandbox.clock().now();
    sandbox.shared().settle_kyc();
    let mut users = sandbox.shared().users();
    let record = users
        .get_mut(id)
        .filter(|r| r.person_type() == kind)
        .ok_or_else(|| ApiError::not_found("User", id))?;
    let (category, terms_accepted) = record.category_and_terms();
    let previous = Some(Previous {
        owner: category == "OWNER",
        terms_accepted,
    });
    let rules = UpdateRules {
        null: sandbox.knobs().put_null(),
        empty: sandbox.knobs().put_empty_string(),
    };
    let data = match &record.data {
        UserData::Natural(stored) => UserData::Natural(Box::new(validate_natural(
            &merge_update(stored.as_ref(), body, rules)?,
            now.timestamp(),
            sandbox.knobs().blocked_countries(),
            previous,
        )?)),
        UserData::Legal(stored) => UserData::Legal(Box::new(validate_legal(
            &merge_update(stored.as_ref(), body, rules)?,
            now.timestamp(),
            sandbox.knobs().blocked_countries(),
            previous,
        )?)),
    };
    record.data = data;
    if record.category_and_terms().1 && record.terms_accepted_at.is_none() {
        record.terms_accepted_at = Some(now.timestamp());
    }
    Ok(record.to_response())
}

/// `PUT /v2.01/{ClientId}/users/natural/{UserId}`: a partial update (see
/// [`merge_update`]).
pub(crate) async fn users_natural_update(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    update(&sandbox, PersonType::Natural, &user_id, body)
}

/// `PUT /v2.01/{ClientId}/users/legal/{UserId}`: a partial update.
pub(crate) async fn users_legal_update(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    update(&sandbox, PersonType::Legal, &user_id, body)
}

fn view(sandbox: &Sandbox, kind: Option<PersonType>, id: &str) -> Result<Response, ApiError> {
    sandbox.shared().settle_kyc();
    let users = sandbox.shared().users();
    users
        .get(id)
        .filter(|r| kind.is_none_or(|kind| r.person_type() == kind))
        .map(UserRecord::to_response)
        .ok_or_else(|| ApiError::not_found("User", id))
}

/// `GET /v2.01/{ClientId}/users/{UserId}`, either kind.
pub(crate) async fn users_get(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    view(&sandbox, None, &user_id)
}

/// `GET /v2.01/{ClientId}/users/natural/{UserId}`.
pub(crate) async fn users_natural_get(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    view(&sandbox, Some(PersonType::Natural), &user_id)
}

/// `GET /v2.01/{ClientId}/users/legal/{UserId}`.
pub(crate) async fn users_legal_get(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    view(&sandbox, Some(PersonType::Legal), &user_id)
}

/// Pagination and sorting of a list call, from case-insensitive query names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListQuery {
    page: u64,
    per_page: u64,
    /// `Some(true)` for `CreationDate:DESC`; `None` when no sort was asked.
    descending: Option<bool>,
}

impl ListQuery {
    /// Reads `page` (default 1), `per_page` (default 10, at most 100) and
    /// `Sort` (`CreationDate:ASC` or `CreationDate:DESC`), names in any case.
    pub(crate) fn from_uri(uri: &Uri) -> Result<ListQuery, ApiError> {
        let pairs: Vec<(String, String)> = axum::extract::Query::try_from_uri(uri)
            .map(|q: axum::extract::Query<Vec<(String, String)>>| q.0)
            .map_err(|err| ApiError::param_error("Query", err.body_text()))?;
        let mut errors = FieldErrors::new();
        let mut query = ListQuery {
            page: 1,
            per_page: 10,
            descending: None,
        };
        for (name, value) in pairs {
            match name.to_ascii_lowercase().as_str() {
                "page" => match value.trim().parse::<u64>() {
                    Ok(page) if page >= 1 => query.page = page,
                    _ => {
                        errors.insert(name, format!("The page value {value} is not valid: it must be an integer of at least 1."));
                    }
                },
                "per_page" => match value.trim().parse::<u64>() {
                    Ok(per_page @ 1..=100) => query.per_page = per_page,
                    _ => {
                        errors.insert(name, format!("The per_page value {value} is not valid: it must be an integer from 1 to 100."));
                    }
                },
                "sort" => match value.trim().to_ascii_uppercase().as_str() {
                    "CREATIONDATE:ASC" => query.descending = Some(false),
                    "CREATIONDATE:DESC" => query.descending = Some(true),
                    _ => {
                        errors.insert(name, format!("The Sort value {value} is not valid: allowed values are CreationDate:ASC and CreationDate:DESC."));
                    }
                },
                _ => {}
            }
        }
        if errors.is_empty() {
            Ok(query)
        } else {
            Err(ApiError::param_errors(errors))
        }
    }

    /// Whether `CreationDate:DESC` was asked (newest first).
    pub(crate) fn is_descending(&self) -> bool {
        self.descending == Some(true)
    }

    /// How many items of the whole list come before the asked page, and how many it holds
    /// at most.
    pub(crate) fn window(&self) -> (usize, usize) {
        let skip =
            usize::try_from((self.page - 1).saturating_mul(self.per_page)).unwrap_or(usize::MAX);
        (skip, usize::try_from(self.per_page).unwrap_or(usize::MAX))
    }

    fn link(&self, base: &str, page: u64) -> String {
        let sort = match self.descending {
            Some(true) => "&sort=CreationDate:DESC",
            Some(false) => "&sort=CreationDate:ASC",
            None => "",
        };
        format!("<{base}?page={page}&per_page={}{sort}>", self.per_page)
    }
}

/// `X-Number-Of-Pages`, `X-Number-Of-Items` and `Link` for one page of a list.
pub(crate) fn pagination_headers(
    query: &ListQuery,
    total: usize,
    base: &str,
    headers: &mut HeaderMap,
) {
    let total = total as u64;
    let pages = total.div_ceil(query.per_page);
    let last = pages.max(1);
    let mut links = vec![format!("{}; rel=\"first\"", query.link(base, 1))];
    if query.page > 1 {
        links.push(format!(
            "{}; rel=\"prev\"",
            query.link(base, (query.page - 1).min(last))
        ));
    }
    if query.page < pages {
        links.push(format!(
            "{}; rel=\"next\"",
            query.link(base, query.page + 1)
        ));
    }
    links.push(format!("{}; rel=\"last\"", query.link(base, last)));
    headers.insert("x-number-of-pages", HeaderValue::from(pages));
    headers.insert("x-number-of-items", HeaderValue::from(total));
    if let Ok(link) = HeaderValue::from_str(&links.join(", ")) {
        headers.insert(header::LINK, link);
    }
}

/// `GET /v2.01/{ClientId}/users`: summaries, paginated, optionally sorted, without
/// the users created within the list lag ([`crate::Knobs::set_list_lag`]).
pub(crate) async fn users_list(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let query = ListQuery::from_uri(&uri)?;
    let lag_ms = i64::try_from(sandbox.knobs().list_lag().as_millis()).unwrap_or(i64::MAX);
    let now_ms = sandbox.clock().now().timestamp_millis();
    sandbox.shared().settle_kyc();
    let users = sandbox.shared().users();
    let mut all: Vec<&UserRecord> = users
        .all()
        .iter()
        .filter(|r| now_ms.saturating_sub(r.created_at_ms) >= lag_ms)
        .collect();
    // Creation order breaks ties between users created within the same second.
    all.sort_by_key(|r| r.creation_date);
    if query.descending == Some(true) {
        all.reverse();
    }
    let skip =
        usize::try_from((query.page - 1).saturating_mul(query.per_page)).unwrap_or(usize::MAX);
    let page: Vec<UserSummary<'_>> = all
        .iter()
        .skip(skip)
        .take(query.per_page as usize)
        .map(|r| r.summary())
        .collect();
    let mut response = json_response(StatusCode::OK, &page);
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let base = format!("http://{host}{}", uri.path());
    pagination_headers(&query, all.len(), &base, response.headers_mut());
    Ok(response)
}
