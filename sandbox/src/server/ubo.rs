//! UBO declarations: the beneficial owners of a legal user of type `BUSINESS` or
//! `PARTNERSHIP`. Create a declaration, add (up to 15) and update its UBOs, submit it, view
//! and list them, answered with the UBO Declaration and UBO objects exactly as Mangopay's
//! reference shows them.
//!
//! A submitted declaration stays `VALIDATION_ASKED` until a control request
//! (`POST /_sandbox/kyc/ubodeclarations/{UboDeclarationId}/outcome`,
//! [`crate::Sandbox::set_ubo_outcome`]) settles it, or until the delay chosen with
//! [`crate::Knobs::set_ubo_outcome_after`] has passed on the sandbox clock. `INCOMPLETE` sends
//! it back to the platform: its UBOs can be added and updated again, and it can be submitted
//! again. A validated declaration counts towards its user's `KYCLevel` (see
//! [`super::kyc`]).

use std::collections::{BTreeSet, HashMap};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde::Serialize;
use serde_json::{Map, Value};

use super::Sandbox;
use super::bank_accounts::{list_cutoff, list_page};
use super::error::{ApiError, json_response};
use super::ids;
use super::kyc::{due_after, user_facts};
use super::state::Shared;
use super::users::{JsonObject, ListQuery, PersonType};
use super::validation::{Address, Fields};

/// The most UBOs a declaration holds.
pub(crate) const MAX_UBOS: usize = 15;

/// Why Mangopay's team found a UBO declaration `INCOMPLETE` or `REFUSED`: its `Reason`. The
/// reference lists no values; these are the official SDKs'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UboReason {
    /// `MISSING_UBO`: at least one beneficial owner is missing from the declaration.
    MissingUbo,
    /// `DECLARATION_DO_NOT_MATCH_UBO_INFORMATION`.
    DeclarationDoNotMatchUboInformation,
    /// `WRONG_UBO_INFORMATION`.
    WrongUboInformation,
    /// `UBO_IDENTITY_NEEDED`.
    UboIdentityNeeded,
    /// `SHAREHOLDERS_DECLARATION_NEEDED`.
    ShareholdersDeclarationNeeded,
    /// `ORGANIZATION_CHART_NEEDED`.
    OrganizationChartNeeded,
    /// `DOCUMENTS_NEEDED`.
    DocumentsNeeded,
    /// `SPECIFIC_CASE`.
    SpecificCase,
}

impl UboReason {
    /// Every reason.
    pub const ALL: [UboReason; 8] = [
        UboReason::MissingUbo,
        UboReason::DeclarationDoNotMatchUboInformation,
        UboReason::WrongUboInformation,
        UboReason::UboIdentityNeeded,
        UboReason::ShareholdersDeclarationNeeded,
        UboReason::OrganizationChartNeeded,
        UboReason::DocumentsNeeded,
        UboReason::SpecificCase,
    ];

    /// The API value, e.g. `MISSING_UBO`.
    pub fn as_str(self) -> &'static str {
        match self {
            UboReason::MissingUbo => "MISSING_UBO",
            UboReason::DeclarationDoNotMatchUboInformation => {
                "DECLARATION_DO_NOT_MATCH_UBO_INFORMATION"
            }
            UboReason::WrongUboInformation => "WRONG_UBO_INFORMATION",
            UboReason::UboIdentityNeeded => "UBO_IDENTITY_NEEDED",
            UboReason::ShareholdersDeclarationNeeded => "SHAREHOLDERS_DECLARATION_NEEDED",
            UboReason::OrganizationChartNeeded => "ORGANIZATION_CHART_NEEDED",
            UboReason::DocumentsNeeded => "DOCUMENTS_NEEDED",
            UboReason::SpecificCase => "SPECIFIC_CASE",
        }
    }

    /// The reason an API value names (any case), if any.
    pub fn parse(text: &str) -> Option<UboReason> {
        UboReason::ALL
            .into_iter()
            .find(|reason| reason.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

/// How a submitted (`VALIDATION_ASKED`) UBO declaration ends: by itself after
/// [`crate::Knobs::set_ubo_outcome_after`], as [`crate::Knobs::set_ubo_outcome`] says, or as a
/// control request asks ([`crate::Sandbox::set_ubo_outcome`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum UboOutcome {
    /// `VALIDATED` (the default), `ProcessedDate` set.
    #[default]
    Validated,
    /// `INCOMPLETE`: the platform may add or fix UBOs and submit it again.
    Incomplete {
        /// The `Reason`.
        reason: UboReason,
        /// The `Message` (`null` when `None`).
        message: Option<String>,
    },
    /// `REFUSED`: a new declaration is needed.
    Refused {
        /// The `Reason`.
        reason: UboReason,
        /// The `Message` (`null` when `None`).
        message: Option<String>,
    },
}

/// `Status` of a stored UBO declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeclarationStatus {
    Created,
    ValidationAsked,
    Incomplete,
    Validated,
    Refused,
}

impl DeclarationStatus {
    fn as_str(self) -> &'static str {
        match self {
            DeclarationStatus::Created => "CREATED",
            DeclarationStatus::ValidationAsked => "VALIDATION_ASKED",
            DeclarationStatus::Incomplete => "INCOMPLETE",
            DeclarationStatus::Validated => "VALIDATED",
            DeclarationStatus::Refused => "REFUSED",
        }
    }

    /// Whether the platform can still change the declaration: add, update and submit.
    fn is_open(self) -> bool {
        matches!(
            self,
            DeclarationStatus::Created | DeclarationStatus::Incomplete
        )
    }

    /// Whether the declaration blocks a new one ("a declaration in progress").
    fn in_progress(self) -> bool {
        matches!(
            self,
            DeclarationStatus::Created
                | DeclarationStatus::ValidationAsked
                | DeclarationStatus::Incomplete
        )
    }
}

/// A beneficial owner's place of birth.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Birthplace {
    city: String,
    country: String,
}

/// The writable fields of a UBO, as validated and stored.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UboFields {
    first_name: String,
    last_name: String,
    birthday: i64,
    nationality: String,
    address: Address,
    birthplace: Birthplace,
}

/// One stored UBO.
#[derive(Debug, Clone)]
pub(crate) struct UboRecord {
    id: String,
    creation_date: i64,
    fields: UboFields,
    is_active: bool,
}

/// The UBO object, keys in the reference's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct UboView<'a> {
    id: &'a str,
    creation_date: i64,
    last_name: &'a str,
    first_name: &'a str,
    birthday: i64,
    nationality: &'a str,
    address: &'a Address,
    birthplace: &'a Birthplace,
    is_active: bool,
}

impl UboRecord {
    fn view(&self) -> UboView<'_> {
        UboView {
            id: &self.id,
            creation_date: self.creation_date,
            last_name: &self.fields.last_name,
            first_name: &self.fields.first_name,
            birthday: self.fields.birthday,
            nationality: &self.fields.nationality,
            address: &self.fields.address,
            birthplace: &self.fields.birthplace,
            is_active: self.is_active,
        }
    }
}

/// One stored UBO declaration.
#[derive(Debug, Clone)]
pub(crate) struct UboDeclarationRecord {
    id: String,
    user_id: String,
    creation_date: i64,
    /// The creation instant in milliseconds of the sandbox clock (for the list lag).
    created_at_ms: i64,
    processed_date: Option<i64>,
    status: DeclarationStatus,
    reason: Option<UboReason>,
    message: Option<String>,
    ubos: Vec<UboRecord>,
    /// The outcome the declaration takes by itself, and when (milliseconds of the sandbox
    /// clock).
    scheduled: Option<(UboOutcome, i64)>,
}

/// The UBO Declaration object, keys in the reference's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct UboDeclarationView<'a> {
    id: &'a str,
    user_id: &'a str,
    creation_date: i64,
    processed_date: Option<i64>,
    status: &'static str,
    reason: Option<&'static str>,
    message: Option<&'a str>,
    ubos: Vec<UboView<'a>>,
}

impl UboDeclarationRecord {
    /// Applies the outcome the declaration was scheduled to take by `now_ms`, if any; whether
    /// it did.
    fn settle(&mut self, now_ms: i64) -> bool {
        if self.status != DeclarationStatus::ValidationAsked {
            return false;
        }
        match self.scheduled.take() {
            Some((outcome, at)) if now_ms >= at => {
                self.apply(&outcome, at.div_euclid(1000));
                true
            }
            scheduled => {
                self.scheduled = scheduled;
                false
            }
        }
    }

    /// Ends the review as `outcome` says, processed at `at` (Unix seconds).
    fn apply(&mut self, outcome: &UboOutcome, at: i64) {
        self.scheduled = None;
        self.processed_date = Some(at);
        let (status, reason, message) = match outcome {
            UboOutcome::Validated => (DeclarationStatus::Validated, None, None),
            UboOutcome::Incomplete { reason, message } => (
                DeclarationStatus::Incomplete,
                Some(*reason),
                message.clone(),
            ),
            UboOutcome::Refused { reason, message } => {
                (DeclarationStatus::Refused, Some(*reason), message.clone())
            }
        };
        self.status = status;
        self.reason = reason;
        self.message = message;
    }

    fn view(&self) -> UboDeclarationView<'_> {
        UboDeclarationView {
            id: &self.id,
            user_id: &self.user_id,
            creation_date: self.creation_date,
            processed_date: self.processed_date,
            status: self.status.as_str(),
            reason: self.reason.map(UboReason::as_str),
            message: self.message.as_deref(),
            ubos: self.ubos.iter().map(UboRecord::view).collect(),
        }
    }

    /// The object as `GET /kyc/ubodeclarations/{UboDeclarationId}` answers it.
    pub(crate) fn to_json(&self) -> Value {
        serde_json::to_value(self.view()).unwrap_or(Value::Null)
    }

    fn to_response(&self) -> Response {
        json_response(StatusCode::OK, &self.view())
    }

    fn ubo_mut(&mut self, id: &str) -> Option<&mut UboRecord> {
        self.ubos.iter_mut().find(|ubo| ubo.id == id)
    }
}

/// UBO declarations in creation order, indexed by id.
#[derive(Debug, Default)]
pub(crate) struct UboStore {
    records: Vec<UboDeclarationRecord>,
    index: HashMap<String, usize>,
}

impl UboStore {
    fn insert(&mut self, record: UboDeclarationRecord) {
        self.index.insert(record.id.clone(), self.records.len());
        self.records.push(record);
    }

    pub(crate) fn get(&self, id: &str) -> Option<&UboDeclarationRecord> {
        self.index.get(id).map(|&i| &self.records[i])
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut UboDeclarationRecord> {
        self.index.get(id).map(|&i| &mut self.records[i])
    }

    /// All declarations, oldest first.
    pub(crate) fn all(&self) -> &[UboDeclarationRecord] {
        &self.records
    }

    /// Applies every outcome due by `now_ms`; the users whose declarations changed.
    pub(crate) fn settle(&mut self, now_ms: i64) -> BTreeSet<String> {
        self.records
            .iter_mut()
            .filter_map(|record| record.settle(now_ms).then(|| record.user_id.clone()))
            .collect()
    }

    /// The Id of `user_id`'s newest validated declaration.
    pub(crate) fn validated(&self, user_id: &str) -> Option<String> {
        self.records
            .iter()
            .enumerate()
            .filter(|(_, r)| r.user_id == user_id && r.status == DeclarationStatus::Validated)
            .max_by_key(|(order, r)| (r.processed_date.unwrap_or_default(), *order))
            .map(|(_, r)| r.id.clone())
    }
}

impl Shared {
    /// Settles a `VALIDATION_ASKED` declaration now, as the control request does.
    pub(crate) fn set_ubo_outcome(
        &self,
        id: &str,
        outcome: &UboOutcome,
    ) -> Result<Value, ApiError> {
        self.settle_kyc();
        let now = self.clock.now().timestamp();
        let (user, json) = {
            let mut kyc = self.kyc();
            let declaration = kyc
                .declarations
                .get_mut(id)
                .ok_or_else(|| ApiError::not_found("UboDeclaration", id))?;
            if declaration.status != DeclarationStatus::ValidationAsked {
                return Err(ApiError::invalid_action(format!(
                    "The UBO declaration {id} is {}: only a VALIDATION_ASKED declaration can be validated, found incomplete or refused.",
                    declaration.status.as_str()
                )));
            }
            declaration.apply(outcome, now);
            (declaration.user_id.clone(), declaration.to_json())
        };
        self.refresh_verification([user]);
        Ok(json)
    }
}

/// A UBO declaration or UBO id such as `ubo_m_01JH7TS09VMCDVV7B39F4A2JAF`: the reference
/// shows the same prefix for both.
fn ubo_id<R: rand::Rng + ?Sized>(at: chrono::DateTime<chrono::Utc>, rng: &mut R) -> String {
    format!("ubo_m_{}", ids::ulid(at, rng))
}

/// `POST /v2.01/{ClientId}/users/{UserId}/kyc/ubodeclarations` (no body): a `CREATED`
/// declaration without UBOs, for an `OWNER` legal user of type `BUSINESS` or `PARTNERSHIP`
/// with no other declaration in progress. The refusals are the reference's `invalid_action`
/// errors.
pub(crate) async fn ubo_declarations_create(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    sandbox.shared().settle_kyc();
    let facts = user_facts(sandbox.shared(), &user_id)?;
    if !facts.owner {
        return Err(ApiError::invalid_action(
            "User belonging to category PAYER can't create UBO declarations",
        ));
    }
    match (facts.person_type, facts.legal_person_type.as_deref()) {
        (PersonType::Legal, Some("BUSINESS" | "PARTNERSHIP")) => {}
        (PersonType::Legal, Some(other)) => {
            return Err(ApiError::invalid_action(format!(
                "Cannot create an UBO for a LegalUser of type {other}"
            )));
        }
        _ => {
            return Err(ApiError::invalid_action(
                "Cannot create an UBO for a NaturalUser",
            ));
        }
    }
    let now = sandbox.clock().now();
    let mut kyc = sandbox.shared().kyc();
    if kyc
        .declarations
        .all()
        .iter()
        .any(|d| d.user_id == user_id && d.status.in_progress())
    {
        return Err(ApiError::invalid_action(
            "You can not create a declaration because you already have a declaration in progress",
        ));
    }
    let record = UboDeclarationRecord {
        id: ubo_id(now, &mut *sandbox.shared().rng()),
        user_id,
        creation_date: now.timestamp(),
        created_at_ms: now.timestamp_millis(),
        processed_date: None,
        status: DeclarationStatus::Created,
        reason: None,
        message: None,
        ubos: Vec::new(),
        scheduled: None,
    };
    let response = record.to_response();
    kyc.declarations.insert(record);
    Ok(response)
}

/// The user's declaration `id`: 404 `ressource_not_found` for an unknown user, or for a
/// declaration that does not exist or belongs to someone else.
fn owned<'a>(
    sandbox: &Sandbox,
    declarations: &'a mut UboStore,
    user_id: &str,
    id: &str,
) -> Result<&'a mut UboDeclarationRecord, ApiError> {
    if sandbox.shared().users().get(user_id).is_none() {
        return Err(ApiError::not_found("User", user_id));
    }
    declarations
        .get_mut(id)
        .filter(|declaration| declaration.user_id == user_id)
        .ok_or_else(|| ApiError::not_found("UboDeclaration", id))
}

/// The reference's message for a missing `Region` of a UBO address in the US, CA or MX.
const REGION_MESSAGE: &str = "The Region is a required field for this Country";

/// Reads `Birthplace`: an object with a `City` and a `Country`.
fn birthplace(f: &mut Fields<'_>, body: &Map<String, Value>, now: i64) -> Option<Birthplace> {
    let object = match body.get("Birthplace") {
        None | Some(Value::Null) => {
            f.missing("Birthplace");
            return None;
        }
        Some(Value::Object(object)) => object,
        Some(_) => {
            f.error("Birthplace", "The field Birthplace must be an object.");
            return None;
        }
    };
    let mut sub = Fields::new(object, now);
    let city = sub.text("City", 0, 255, true);
    let country = sub.country("Country", true);
    if let Err(errors) = sub.finish() {
        for (field, message) in errors {
            let message = message.replace(&field, &format!("Birthplace.{field}"));
            f.error(&format!("Birthplace.{field}"), message);
        }
        return None;
    }
    Some(Birthplace {
        city: city?,
        country: country?,
    })
}

/// Validates a UBO body (or an update laid over the stored UBO).
fn validate(
    body: &Map<String, Value>,
    now: i64,
    blocked: Vec<String>,
) -> Result<UboFields, ApiError> {
    let mut f = Fields::new(body, now).with_blocked_countries(blocked);
    let first_name = f.text("FirstName", 1, 100, true);
    let last_name = f.text("LastName", 1, 100, true);
    let birthday = f.birthday("Birthday", true);
    let nationality = f.country("Nationality", true);
    let address = f.address("Address", true);
    let birthplace = birthplace(&mut f, body, now);
    if let Err(mut errors) = f.finish() {
        // The reference names the address's missing region `Region`, with its own message.
        if errors
            .get("Address.Region")
            .is_some_and(|message| message.contains("required"))
        {
            errors.remove("Address.Region");
            errors.insert("Region".to_owned(), REGION_MESSAGE.to_owned());
        }
        return Err(ApiError::param_errors(errors));
    }
    let (Some(first_name), Some(last_name), Some(birthday), Some(nationality), Some(birthplace)) =
        (first_name, last_name, birthday, nationality, birthplace)
    else {
        unreachable!("required fields were checked");
    };
    Ok(UboFields {
        first_name,
        last_name,
        birthday,
        nationality,
        address,
        birthplace,
    })
}

/// 400 `invalid_action` for a change to a declaration that is no longer the platform's to
/// change.
fn closed(declaration: &UboDeclarationRecord, what: &str) -> ApiError {
    ApiError::invalid_action(format!(
        "You can not {what} a declaration whose Status is {}: only a CREATED or INCOMPLETE declaration can be changed",
        declaration.status.as_str()
    ))
}

/// `POST /v2.01/{ClientId}/users/{UserId}/kyc/ubodeclarations/{UboDeclarationId}/ubos`: a
/// UBO (`FirstName`, `LastName`, `Birthday`, `Nationality`, `Address`, `Birthplace`, all
/// required), added to a `CREATED` or `INCOMPLETE` declaration of at most 15 UBOs.
pub(crate) async fn ubos_create(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id, id)): Path<(String, String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    sandbox.shared().settle_kyc();
    let now = sandbox.clock().now();
    let fields = validate(&body, now.timestamp(), sandbox.knobs().blocked_countries())?;
    let mut kyc = sandbox.shared().kyc();
    let declaration = owned(&sandbox, &mut kyc.declarations, &user_id, &id)?;
    if !declaration.status.is_open() {
        return Err(closed(declaration, "add an UBO to"));
    }
    if declaration.ubos.len() >= MAX_UBOS {
        return Err(ApiError::invalid_action(format!(
            "You can not create more than {MAX_UBOS} UBO for a declaration"
        )));
    }
    let ubo = UboRecord {
        id: ubo_id(now, &mut *sandbox.shared().rng()),
        creation_date: now.timestamp(),
        fields,
        is_active: true,
    };
    let response = json_response(StatusCode::OK, &ubo.view());
    declaration.ubos.push(ubo);
    Ok(response)
}

/// `PUT /v2.01/{ClientId}/users/{UserId}/kyc/ubodeclarations/{UboDeclarationId}/ubos/{UboId}`:
/// the keys given (not `null`) replace the stored ones (an `Address` or `Birthplace` object as
/// a whole), and the result is checked as a new UBO; `IsActive: false` disregards the UBO for
/// good. Only an active UBO of a `CREATED` or `INCOMPLETE` declaration can change.
pub(crate) async fn ubos_update(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id, id, ubo_id)): Path<(String, String, String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    sandbox.shared().settle_kyc();
    let now = sandbox.clock().now().timestamp();
    let blocked = sandbox.knobs().blocked_countries();
    let mut f = Fields::new(&body, now);
    let active = f.boolean("IsActive");
    f.finish().map_err(ApiError::param_errors)?;
    let mut kyc = sandbox.shared().kyc();
    let declaration = owned(&sandbox, &mut kyc.declarations, &user_id, &id)?;
    if !declaration.status.is_open() {
        return Err(closed(declaration, "update an UBO of"));
    }
    let ubo = declaration
        .ubo_mut(&ubo_id)
        .ok_or_else(|| ApiError::not_found("Ubo", &ubo_id))?;
    if !ubo.is_active {
        return Err(ApiError::invalid_action(
            "You can not update an UBO that is inactive",
        ));
    }
    let Ok(Value::Object(mut merged)) = serde_json::to_value(&ubo.fields) else {
        unreachable!("UBO fields serialize to an object");
    };
    for (key, value) in body {
        if merged.contains_key(&key) && !value.is_null() {
            merged.insert(key, value);
        }
    }
    ubo.fields = validate(&merged, now, blocked)?;
    if active == Some(false) {
        ubo.is_active = false;
    }
    Ok(json_response(StatusCode::OK, &ubo.view()))
}

/// `GET /v2.01/{ClientId}/users/{UserId}/kyc/ubodeclarations/{UboDeclarationId}/ubos/{UboId}`.
pub(crate) async fn ubos_get(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id, id, ubo_id)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    sandbox.shared().settle_kyc();
    let mut kyc = sandbox.shared().kyc();
    let declaration = owned(&sandbox, &mut kyc.declarations, &user_id, &id)?;
    declaration
        .ubo_mut(&ubo_id)
        .map(|ubo| json_response(StatusCode::OK, &ubo.view()))
        .ok_or_else(|| ApiError::not_found("Ubo", &ubo_id))
}

/// `PUT /v2.01/{ClientId}/users/{UserId}/kyc/ubodeclarations/{UboDeclarationId}` with
/// `{"Status": "VALIDATION_ASKED"}`: submits a `CREATED` or `INCOMPLETE` declaration that has
/// an active UBO. Other keys (the SDKs send the whole object) are ignored.
pub(crate) async fn ubo_declarations_submit(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id, id)): Path<(String, String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let now = sandbox.clock().now();
    let mut f = Fields::new(&body, now.timestamp());
    f.one_of("Status", &["VALIDATION_ASKED"], true);
    f.finish().map_err(ApiError::param_errors)?;
    sandbox.shared().settle_kyc();
    let scheduled = sandbox.knobs().ubo_outcome_after().map(|after| {
        (
            sandbox.knobs().ubo_outcome(),
            due_after(now.timestamp_millis(), after),
        )
    });
    let mut kyc = sandbox.shared().kyc();
    let declaration = owned(&sandbox, &mut kyc.declarations, &user_id, &id)?;
    if !declaration.status.is_open() {
        return Err(closed(declaration, "request validation for"));
    }
    if !declaration.ubos.iter().any(|ubo| ubo.is_active) {
        return Err(ApiError::invalid_action(
            "You can not request validation for a declaration which has no ubo",
        ));
    }
    declaration.status = DeclarationStatus::ValidationAsked;
    declaration.reason = None;
    declaration.message = None;
    declaration.scheduled = scheduled;
    Ok(declaration.to_response())
}

/// `GET /v2.01/{ClientId}/users/{UserId}/kyc/ubodeclarations/{UboDeclarationId}`.
pub(crate) async fn users_ubo_declarations_get(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id, id)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    sandbox.shared().settle_kyc();
    let mut kyc = sandbox.shared().kyc();
    owned(&sandbox, &mut kyc.declarations, &user_id, &id).map(|d| d.to_response())
}

/// `GET /v2.01/{ClientId}/kyc/ubodeclarations/{UboDeclarationId}`.
pub(crate) async fn ubo_declarations_get(
    State(sandbox): State<Sandbox>,
    Path((_client_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    sandbox.shared().settle_kyc();
    let kyc = sandbox.shared().kyc();
    kyc.declarations
        .get(&id)
        .map(UboDeclarationRecord::to_response)
        .ok_or_else(|| ApiError::not_found("UboDeclaration", &id))
}

/// `GET /v2.01/{ClientId}/users/{UserId}/kyc/ubodeclarations`: the user's declarations with
/// their UBOs, sorted by `CreationDate` and paginated, without those created within the list
/// lag.
pub(crate) async fn users_ubo_declarations_list(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let query = ListQuery::from_uri(&uri)?;
    sandbox.shared().settle_kyc();
    if sandbox.shared().users().get(&user_id).is_none() {
        return Err(ApiError::not_found("User", &user_id));
    }
    let cutoff = list_cutoff(&sandbox);
    let kyc = sandbox.shared().kyc();
    let mut items: Vec<&UboDeclarationRecord> = kyc
        .declarations
        .all()
        .iter()
        .filter(|d| d.user_id == user_id && d.created_at_ms <= cutoff)
        .collect();
    items.sort_by_key(|d| d.creation_date);
    let views: Vec<UboDeclarationView<'_>> = items.iter().map(|d| d.view()).collect();
    Ok(list_page(&query, views, &headers, &uri))
}

/// Reads the outcome a control request asks for.
fn requested_outcome(body: &Map<String, Value>) -> Result<UboOutcome, ApiError> {
    let reasons: Vec<&str> = UboReason::ALL.iter().map(|r| r.as_str()).collect();
    let mut f = Fields::new(body, 0);
    let status = f.one_of("Status", &["VALIDATED", "INCOMPLETE", "REFUSED"], true);
    let reason = f.one_of("Reason", &reasons, false);
    let message = f.text("Message", 0, 255, false);
    if matches!(status.as_deref(), Some("INCOMPLETE" | "REFUSED")) && reason.is_none() {
        f.error(
            "Reason",
            "The Reason field is required when Status is INCOMPLETE or REFUSED.",
        );
    }
    f.finish().map_err(ApiError::param_errors)?;
    let reason = reason
        .as_deref()
        .and_then(UboReason::parse)
        .unwrap_or(UboReason::SpecificCase);
    Ok(match status.as_deref() {
        Some("INCOMPLETE") => UboOutcome::Incomplete { reason, message },
        Some("REFUSED") => UboOutcome::Refused { reason, message },
        _ => UboOutcome::Validated,
    })
}

/// `POST /_sandbox/kyc/ubodeclarations/{UboDeclarationId}/outcome` with
/// `{"Status": "VALIDATED"}`, or `{"Status": "INCOMPLETE", "Reason": "MISSING_UBO",
/// "Message": "..."}` (or `REFUSED`; message optional): ends the review of a
/// `VALIDATION_ASKED` declaration as Mangopay's team would (a control request, not Mangopay's
/// API). Answers the declaration; 400 `invalid_action` from any other status; 404 for an
/// unknown id.
pub(crate) async fn control_ubo_outcome(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let outcome = requested_outcome(&body)?;
    let declaration = sandbox.shared().set_ubo_outcome(&id, &outcome)?;
    Ok(json_response(StatusCode::OK, &declaration))
}

/// UBO declarations: views and control requests.
impl Sandbox {
    /// Every UBO declaration, oldest first, as `GET /kyc/ubodeclarations/{UboDeclarationId}`
    /// answers it (outcomes due by [`crate::Knobs::set_ubo_outcome_after`] applied first).
    pub fn ubo_declarations(&self) -> Vec<Value> {
        self.shared().settle_kyc();
        let kyc = self.shared().kyc();
        kyc.declarations
            .all()
            .iter()
            .map(UboDeclarationRecord::to_json)
            .collect()
    }

    /// One UBO declaration as `GET /kyc/ubodeclarations/{UboDeclarationId}` answers it.
    pub fn ubo_declaration(&self, id: &str) -> Option<Value> {
        self.shared().settle_kyc();
        self.shared()
            .kyc()
            .declarations
            .get(id)
            .map(UboDeclarationRecord::to_json)
    }

    /// Ends the review of a `VALIDATION_ASKED` UBO declaration now, as `outcome` says (the
    /// control request `POST /_sandbox/kyc/ubodeclarations/{UboDeclarationId}/outcome`), and
    /// returns it as `GET /kyc/ubodeclarations/{UboDeclarationId}` answers it; the user's
    /// `KYCLevel` follows. Fails, naming the reason, for an unknown id or a declaration that
    /// is not `VALIDATION_ASKED`.
    pub fn set_ubo_outcome(&self, id: &str, outcome: UboOutcome) -> Result<Value, String> {
        self.shared()
            .set_ubo_outcome(id, &outcome)
            .map_err(|err| err.describe())
    }
}
