//! Legacy bank accounts (`IBAN`, `GB`, `US`, `CA`, `OTHER`): create, view, list and
//! deactivate, answered with the Bank Account object exactly as Mangopay's documentation
//! shows it (every key present, `null` where absent, integer timestamps), and
//! [`payout_destination`], the check a pay-out makes of its `BankAccountId`.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, MutexGuard};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use iban::IbanLike as _;
use regex::Regex;
use serde::Serialize;
use serde_json::{Map, Value};

use super::Sandbox;
use super::error::{ApiError, json_response};
use super::ids;
use super::recipients::{RecipientScope, RecipientState};
use super::state::Shared;
use super::users::{JsonObject, ListQuery, pagination_headers};
use super::validation::{Address, Fields};

/// The BIC format quoted by Mangopay's own `param_error`.
pub(crate) const BIC_PATTERN: &str = r"^[a-zA-Z]{6}\w{2}(\w{3})?$";

static BIC: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(BIC_PATTERN).expect("the BIC pattern is a valid regex"));

/// An IBAN in its electronic form (upper case, no spaces) when it is one: a country of the
/// SWIFT registry, that country's length and BBAN format, and the mod-97 check digits.
pub(crate) fn parse_iban(text: &str) -> Option<iban::Iban> {
    let compact: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    compact.parse::<iban::Iban>().ok()
}

/// Whether accounts registered in `country` (ISO 3166-1 alpha-2) use IBANs, according to
/// the SWIFT registry: an IBAN of that country with valid check digits and an empty BBAN
/// is refused for its BBAN, not for an unknown country.
pub(crate) fn uses_iban(country: &str) -> bool {
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        return false;
    }
    // The check digits of `<country>00` + BBAN "0": 98 - (BBAN, country, "00") mod 97.
    let digits: String = format!("0{country}00")
        .chars()
        .map(|c| match c.to_digit(36) {
            Some(value) => value.to_string(),
            None => String::new(),
        })
        .collect();
    let remainder = digits
        .bytes()
        .fold(0u32, |acc, b| (acc * 10 + u32::from(b - b'0')) % 97);
    let candidate = format!("{country}{:02}0", 98 - remainder);
    match candidate.parse::<iban::Iban>() {
        Ok(_) => true,
        Err(iban::ParseIbanError::InvalidBban(_)) => true,
        Err(_) => false,
    }
}

/// Whether `bic` (already matching [`BIC_PATTERN`]) is a BIC: letters for the bank code,
/// a real country code, letters and digits for the location and branch.
pub(crate) fn bic_is_valid(bic: &str) -> bool {
    let upper = bic.to_ascii_uppercase();
    upper.len() >= 8
        && upper.bytes().all(|b| b.is_ascii_alphanumeric())
        && upper[..4].bytes().all(|b| b.is_ascii_uppercase())
        && celes::Country::from_alpha2(&upper[4..6]).is_ok()
}

/// The account details of one bank account type, serialized with the type's keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub(crate) enum BankDetails {
    /// `IBAN`: accounts registered in countries that use IBAN.
    Iban {
        #[serde(rename = "IBAN")]
        iban: String,
        #[serde(rename = "BIC")]
        bic: Option<String>,
    },
    /// `GB`: accounts registered in the United Kingdom, paid out in GBP.
    Gb {
        #[serde(rename = "AccountNumber")]
        account_number: String,
        #[serde(rename = "SortCode")]
        sort_code: String,
    },
    /// `US`: accounts registered in the United States.
    Us {
        #[serde(rename = "AccountNumber")]
        account_number: String,
        #[serde(rename = "ABA")]
        aba: String,
        #[serde(rename = "DepositAccountType")]
        deposit_account_type: String,
    },
    /// `CA`: accounts registered in Canada.
    Ca {
        #[serde(rename = "AccountNumber")]
        account_number: String,
        #[serde(rename = "InstitutionNumber")]
        institution_number: String,
        #[serde(rename = "BranchCode")]
        branch_code: String,
        #[serde(rename = "BankName")]
        bank_name: String,
    },
    /// `OTHER`: accounts registered elsewhere, in countries that do not use IBAN.
    Other {
        #[serde(rename = "AccountNumber")]
        account_number: String,
        #[serde(rename = "BIC")]
        bic: String,
        #[serde(rename = "Country")]
        country: String,
    },
}

impl BankDetails {
    /// The `Type` of the bank account.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            BankDetails::Iban { .. } => "IBAN",
            BankDetails::Gb { .. } => "GB",
            BankDetails::Us { .. } => "US",
            BankDetails::Ca { .. } => "CA",
            BankDetails::Other { .. } => "OTHER",
        }
    }
}

/// The bank account type a create route is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BankType {
    Iban,
    Gb,
    Us,
    Ca,
    Other,
}

/// One stored bank account.
#[derive(Debug, Clone)]
pub(crate) struct BankAccountRecord {
    pub(crate) id: String,
    pub(crate) user_id: String,
    pub(crate) tag: Option<String>,
    pub(crate) creation_date: i64,
    /// The creation instant in milliseconds of the sandbox clock (for the list lag).
    pub(crate) created_at_ms: i64,
    pub(crate) owner_name: String,
    pub(crate) owner_address: Address,
    pub(crate) details: BankDetails,
    pub(crate) active: bool,
}

/// The Bank Account object, keys in the documentation's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct BankAccountView<'a> {
    owner_address: &'a Address,
    #[serde(flatten)]
    details: &'a BankDetails,
    user_id: &'a str,
    owner_name: &'a str,
    #[serde(rename = "Type")]
    kind: &'static str,
    id: &'a str,
    tag: Option<&'a str>,
    creation_date: i64,
    active: bool,
}

impl BankAccountRecord {
    fn view(&self) -> BankAccountView<'_> {
        BankAccountView {
            owner_address: &self.owner_address,
            details: &self.details,
            user_id: &self.user_id,
            owner_name: &self.owner_name,
            kind: self.details.type_name(),
            id: &self.id,
            tag: self.tag.as_deref(),
            creation_date: self.creation_date,
            active: self.active,
        }
    }

    /// The object as `GET /users/{UserId}/bankaccounts/{BankAccountId}` answers it.
    pub(crate) fn to_json(&self) -> Value {
        serde_json::to_value(self.view()).unwrap_or(Value::Null)
    }

    fn to_response(&self) -> Response {
        json_response(StatusCode::OK, &self.view())
    }
}

/// Bank accounts in creation order, indexed by id.
#[derive(Debug, Default)]
pub(crate) struct BankAccountStore {
    records: Vec<BankAccountRecord>,
    index: HashMap<String, usize>,
}

impl BankAccountStore {
    pub(crate) fn insert(&mut self, record: BankAccountRecord) {
        self.index.insert(record.id.clone(), self.records.len());
        self.records.push(record);
    }

    pub(crate) fn get(&self, id: &str) -> Option<&BankAccountRecord> {
        self.index.get(id).map(|&i| &self.records[i])
    }

    pub(crate) fn get_mut(&mut self, id: &str) -> Option<&mut BankAccountRecord> {
        self.index.get(id).map(|&i| &mut self.records[i])
    }

    /// All bank accounts, oldest first.
    pub(crate) fn all(&self) -> &[BankAccountRecord] {
        &self.records
    }
}

impl Shared {
    /// The bank account store, even if a panicking request poisoned its lock.
    pub(crate) fn bank_accounts(&self) -> MutexGuard<'_, BankAccountStore> {
        self.bank_accounts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A bank account id such as `bankacc_m_01J6A30MFXK50P8C8PCB73PM1B`.
fn bank_account_id<R: rand::Rng + ?Sized>(
    at: chrono::DateTime<chrono::Utc>,
    rng: &mut R,
) -> String {
    format!("bankacc_m_{}", ids::ulid(at, rng))
}

/// `param_error` message of a field that does not match `pattern`, as Mangopay words it.
fn pattern_message(field: &str, pattern: &str) -> String {
    format!("The field {field} must match the regular expression '{pattern}'.")
}

/// The field patterns, compiled once, each matched against the whole value.
static FIELD_PATTERNS: LazyLock<Mutex<HashMap<&'static str, Regex>>> =
    LazyLock::new(Mutex::default);

/// Whether the whole of `value` matches `pattern` (quoted as Mangopay quotes it, anchored
/// or not).
fn whole_match(pattern: &'static str, value: &str) -> bool {
    let mut cache = FIELD_PATTERNS.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(pattern)
        .or_insert_with(|| {
            let inner = pattern.trim_start_matches('^').trim_end_matches('$');
            Regex::new(&format!("^(?:{inner})$")).expect("bank account patterns are valid regexes")
        })
        .is_match(value)
}

/// A text field whose whole value matches `pattern`.
fn matching(
    f: &mut Fields<'_>,
    key: &str,
    pattern: &'static str,
    required: bool,
) -> Option<String> {
    let value = f.text(key, 0, 255, required)?;
    if whole_match(pattern, &value) {
        Some(value)
    } else {
        f.error(key, pattern_message(key, pattern));
        None
    }
}

/// A `BIC`: [`BIC_PATTERN`], then a real bank code and country.
fn bic(f: &mut Fields<'_>, key: &str, required: bool) -> Option<String> {
    let value = f.text(key, 0, 255, required)?;
    if !BIC.is_match(&value) {
        f.error(key, pattern_message(key, BIC_PATTERN));
        None
    } else if !bic_is_valid(&value) {
        f.error(key, "The value is not a valid BIC");
        None
    } else {
        Some(value.to_ascii_uppercase())
    }
}

/// The checked fields of a create request.
struct NewBankAccount {
    owner_name: String,
    owner_address: Address,
    tag: Option<String>,
    details: BankDetails,
}

/// Validates a create body for `kind`: the owner, the tag and the type's own fields.
/// Keys of other types (the Python SDK sends every field it knows) are ignored.
fn validate(
    kind: BankType,
    body: &Map<String, Value>,
    now: i64,
    blocked: Vec<String>,
) -> Result<NewBankAccount, ApiError> {
    let mut f = Fields::new(body, now).with_blocked_countries(blocked.clone());
    let owner_name = f.text("OwnerName", 0, 255, true);
    let owner_address = f.address("OwnerAddress", true);
    let tag = f.text("Tag", 0, 255, false);
    let details = match kind {
        BankType::Iban => {
            let iban = f.text("IBAN", 0, 255, true).and_then(|text| {
                let parsed = parse_iban(&text);
                match parsed {
                    Some(iban) if text.chars().filter(|c| !c.is_whitespace()).count() <= 34 => {
                        let country = iban.country_code().to_owned();
                        if blocked.contains(&country) {
                            f.error("IBAN", "The IBAN used is blocked");
                            None
                        } else {
                            Some(iban.electronic_str().to_owned())
                        }
                    }
                    _ => {
                        f.error("IBAN", "The value is not a valid IBAN");
                        None
                    }
                }
            });
            let bic = bic(&mut f, "BIC", false);
            iban.map(|iban| BankDetails::Iban { iban, bic })
        }
        BankType::Gb => {
            let account_number = matching(&mut f, "AccountNumber", r"\d{8}", true);
            let sort_code = matching(&mut f, "SortCode", r"\d{6}", true);
            account_number
                .zip(sort_code)
                .map(|(account_number, sort_code)| BankDetails::Gb {
                    account_number,
                    sort_code,
                })
        }
        BankType::Us => {
            let account_number = matching(&mut f, "AccountNumber", r"^\d+$", true);
            let aba = matching(&mut f, "ABA", r"\d{9}", true);
            let deposit = f
                .one_of("DepositAccountType", &["CHECKING", "SAVINGS"], false)
                .unwrap_or_else(|| "CHECKING".to_owned());
            account_number
                .zip(aba)
                .map(|(account_number, aba)| BankDetails::Us {
                    account_number,
                    aba,
                    deposit_account_type: deposit,
                })
        }
        BankType::Ca => {
            let account_number = matching(&mut f, "AccountNumber", r"\d{7,35}", true);
            let institution_number = matching(&mut f, "InstitutionNumber", r"\d{3}", true);
            let branch_code = matching(&mut f, "BranchCode", r"\d{5}", true);
            let bank_name = matching(&mut f, "BankName", r"^[a-zA-Z0-9 ]{1,50}$", true);
            match (account_number, institution_number, branch_code, bank_name) {
                (
                    Some(account_number),
                    Some(institution_number),
                    Some(branch_code),
                    Some(bank_name),
                ) => Some(BankDetails::Ca {
                    account_number,
                    institution_number,
                    branch_code,
                    bank_name,
                }),
                _ => None,
            }
        }
        BankType::Other => {
            let country = f.country("Country", true);
            let bic = bic(&mut f, "BIC", true);
            let account_number = matching(&mut f, "AccountNumber", r"^[a-zA-Z0-9]{5,35}$", true);
            match (country, bic, account_number) {
                (Some(country), Some(bic), Some(account_number)) => Some(BankDetails::Other {
                    account_number,
                    bic,
                    country,
                }),
                _ => None,
            }
        }
    };
    f.finish().map_err(ApiError::param_errors)?;
    let (Some(owner_name), Some(details)) = (owner_name, details) else {
        unreachable!("required fields were checked");
    };
    Ok(NewBankAccount {
        owner_name,
        owner_address,
        tag,
        details,
    })
}

fn create(
    sandbox: &Sandbox,
    kind: BankType,
    user_id: &str,
    body: &Map<String, Value>,
) -> Result<Response, ApiError> {
    let now = sandbox.clock().now();
    let new = validate(
        kind,
        body,
        now.timestamp(),
        sandbox.knobs().blocked_countries(),
    )?;
    if sandbox.shared().users().get(user_id).is_none() {
        return Err(ApiError::not_found("User", user_id));
    }
    let record = BankAccountRecord {
        id: bank_account_id(now, &mut *sandbox.shared().rng()),
        user_id: user_id.to_owned(),
        tag: new.tag,
        creation_date: now.timestamp(),
        created_at_ms: now.timestamp_millis(),
        owner_name: new.owner_name,
        owner_address: new.owner_address,
        details: new.details,
        active: true,
    };
    let response = record.to_response();
    sandbox.shared().bank_accounts().insert(record);
    Ok(response)
}

/// `POST /v2.01/{ClientId}/users/{UserId}/bankaccounts/iban`.
pub(crate) async fn bank_accounts_create_iban(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    create(&sandbox, BankType::Iban, &user_id, &body)
}

/// `POST /v2.01/{ClientId}/users/{UserId}/bankaccounts/gb`.
pub(crate) async fn bank_accounts_create_gb(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    create(&sandbox, BankType::Gb, &user_id, &body)
}

/// `POST /v2.01/{ClientId}/users/{UserId}/bankaccounts/us`.
pub(crate) async fn bank_accounts_create_us(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    create(&sandbox, BankType::Us, &user_id, &body)
}

/// `POST /v2.01/{ClientId}/users/{UserId}/bankaccounts/ca`.
pub(crate) async fn bank_accounts_create_ca(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    create(&sandbox, BankType::Ca, &user_id, &body)
}

/// `POST /v2.01/{ClientId}/users/{UserId}/bankaccounts/other`.
pub(crate) async fn bank_accounts_create_other(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    create(&sandbox, BankType::Other, &user_id, &body)
}

/// The user's bank account `id`: 404 `ressource_not_found` for an unknown user, or for an
/// account that does not exist or belongs to someone else.
fn owned<'a>(
    sandbox: &Sandbox,
    accounts: &'a mut BankAccountStore,
    user_id: &str,
    id: &str,
) -> Result<&'a mut BankAccountRecord, ApiError> {
    if sandbox.shared().users().get(user_id).is_none() {
        return Err(ApiError::not_found("User", user_id));
    }
    accounts
        .get_mut(id)
        .filter(|account| account.user_id == user_id)
        .ok_or_else(|| ApiError::not_found("BankAccount", id))
}

/// `GET /v2.01/{ClientId}/users/{UserId}/bankaccounts/{BankAccountId}`.
pub(crate) async fn bank_accounts_get(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id, id)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let mut accounts = sandbox.shared().bank_accounts();
    owned(&sandbox, &mut accounts, &user_id, &id).map(|account| account.to_response())
}

/// `PUT /v2.01/{ClientId}/users/{UserId}/bankaccounts/{BankAccountId}` with
/// `{"Active": false}`: deactivates the account for good. `Active: true` is refused, on an
/// active account as on a deactivated one; deactivating twice answers the account again.
pub(crate) async fn bank_accounts_deactivate(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id, id)): Path<(String, String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let mut f = Fields::new(&body, sandbox.clock().now().timestamp());
    match f.boolean("Active") {
        Some(false) => {}
        Some(true) => f.error(
            "Active",
            "A bank account cannot be reactivated: Active can only be set to false.",
        ),
        // A value that is not a boolean already has its error; this one is then ignored.
        None => f.missing("Active"),
    }
    f.finish().map_err(ApiError::param_errors)?;
    let mut accounts = sandbox.shared().bank_accounts();
    let account = owned(&sandbox, &mut accounts, &user_id, &id)?;
    account.active = false;
    Ok(account.to_response())
}

/// Reads `Active` of a list query (`true`/`false`, `1`/`0`, any case).
fn active_filter(uri: &Uri) -> Result<Option<bool>, ApiError> {
    let pairs: Vec<(String, String)> = axum::extract::Query::try_from_uri(uri)
        .map(|q: axum::extract::Query<Vec<(String, String)>>| q.0)
        .map_err(|err| ApiError::param_error("Query", err.body_text()))?;
    let mut active = None;
    for (name, value) in pairs {
        if name.eq_ignore_ascii_case("active") {
            active = match value.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => {
                    return Err(ApiError::param_error(
                        &name,
                        format!(
                            "The Active value {value} is not valid: allowed values are true and false."
                        ),
                    ));
                }
            };
        }
    }
    Ok(active)
}

/// One page of `items` (already filtered, oldest first) as a list answer with the
/// pagination headers, newest first when the query asks.
pub(crate) fn list_page<T: Serialize>(
    query: &ListQuery,
    mut items: Vec<T>,
    headers: &HeaderMap,
    uri: &Uri,
) -> Response {
    if query.is_descending() {
        items.reverse();
    }
    let total = items.len();
    let (skip, take) = query.window();
    let page: Vec<T> = items.into_iter().skip(skip).take(take).collect();
    let mut response = json_response(StatusCode::OK, &page);
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let base = format!("http://{host}{}", uri.path());
    pagination_headers(query, total, &base, response.headers_mut());
    response
}

/// How long ago (by the sandbox clock) an object must have been created to appear in
/// lists ([`crate::Knobs::set_list_lag`]), and the current instant, in milliseconds.
pub(crate) fn list_cutoff(sandbox: &Sandbox) -> i64 {
    let lag_ms = i64::try_from(sandbox.knobs().list_lag().as_millis()).unwrap_or(i64::MAX);
    sandbox
        .clock()
        .now()
        .timestamp_millis()
        .saturating_sub(lag_ms)
}

/// `GET /v2.01/{ClientId}/users/{UserId}/bankaccounts`: the user's bank accounts,
/// paginated, sorted by `CreationDate`, optionally only the active (`Active=true`) or
/// deactivated (`Active=false`) ones, without those created within the list lag.
pub(crate) async fn bank_accounts_list(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let query = ListQuery::from_uri(&uri)?;
    let active = active_filter(&uri)?;
    if sandbox.shared().users().get(&user_id).is_none() {
        return Err(ApiError::not_found("User", &user_id));
    }
    let cutoff = list_cutoff(&sandbox);
    let accounts = sandbox.shared().bank_accounts();
    let mut items: Vec<&BankAccountRecord> = accounts
        .all()
        .iter()
        .filter(|a| a.user_id == user_id)
        .filter(|a| a.created_at_ms <= cutoff)
        .filter(|a| active.is_none_or(|active| a.active == active))
        .collect();
    // Creation order breaks ties between accounts created within the same second.
    items.sort_by_key(|a| a.creation_date);
    let views: Vec<BankAccountView<'_>> = items.iter().map(|a| a.view()).collect();
    Ok(list_page(&query, views, &headers, &uri))
}

/// The `BankAccountId` field of a pay-out request.
const PAYOUT_FIELD: &str = "BankAccountId";

/// Whether a pay-out by user `user_id` may be sent to `id`, a legacy bank account or a
/// recipient. Ok for a bank account of that user that is still active, or a recipient of
/// that user whose `Status` is `ACTIVE` and `RecipientScope` is `PAYOUT`. Otherwise the
/// error the pay-out request is answered with:
///
/// - 404 `ressource_not_found` for an id that is neither;
/// - 400 `invalid_action` "Payout not allowed for RecipientScope PAYIN" (the reference's
///   example) for a `PAYIN` recipient;
/// - 400 `param_error` on `BankAccountId` for another user's account or recipient ("The
///   author is not the bank account owner"), a deactivated account or a recipient that is
///   not `ACTIVE` ("The associated bank account is not active"), in the wording of the
///   reference's pay-out result messages.
pub(crate) fn payout_destination(shared: &Shared, user_id: &str, id: &str) -> Result<(), ApiError> {
    let (owner, active) = {
        let accounts = shared.bank_accounts();
        match accounts.get(id) {
            Some(account) => (account.user_id.clone(), account.active),
            None => {
                drop(accounts);
                let now_ms = shared.clock.now().timestamp_millis();
                let mut recipients = shared.recipients();
                let Some(recipient) = recipients.get_mut(id) else {
                    return Err(ApiError::not_found("BankAccount", id));
                };
                recipient.settle(now_ms);
                if recipient.scope == RecipientScope::Payin {
                    return Err(ApiError::invalid_action(
                        "Payout not allowed for RecipientScope PAYIN",
                    ));
                }
                (
                    recipient.user_id.clone(),
                    recipient.status == RecipientState::Active,
                )
            }
        }
    };
    if owner != user_id {
        return Err(ApiError::param_error(
            PAYOUT_FIELD,
            "The author is not the bank account owner",
        ));
    }
    if !active {
        return Err(ApiError::param_error(
            PAYOUT_FIELD,
            "The associated bank account is not active",
        ));
    }
    Ok(())
}
