//! Wallets: create, view, update (`Description`, `Tag`) and list a user's wallets, answered
//! with the Wallet object exactly as Mangopay's documentation shows it. Balances change only
//! through transfers, pay-outs and the sandbox's credit control request.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde::Serialize;
use serde_json::{Map, Value};

use super::Sandbox;
use super::error::{ApiError, FieldErrors, json_response};
use super::ids;
use super::knobs::{PutEmptyString, PutNull};
use super::ledger::{self, Money, WalletRecord};
use super::transactions::{list_response, visible};
use super::users::{JsonObject, ListQuery};
use super::validation::Fields;

/// The Wallet object, keys in the documentation's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WalletView<'a> {
    description: &'a str,
    owners: [&'a str; 1],
    id: &'a str,
    balance: Money,
    currency: &'a str,
    funds_type: &'static str,
    tag: Option<&'a str>,
    creation_date: i64,
}

impl WalletRecord {
    pub(crate) fn view(&self) -> WalletView<'_> {
        WalletView {
            description: &self.description,
            owners: [&self.owner],
            id: &self.id,
            balance: Money {
                currency: self.currency.clone(),
                amount: self.balance,
            },
            currency: &self.currency,
            funds_type: "DEFAULT",
            tag: self.tag.as_deref(),
            creation_date: self.creation_date,
        }
    }

    /// The object as `GET /wallets/{Id}` answers it.
    pub(crate) fn to_json(&self) -> Value {
        serde_json::to_value(self.view()).unwrap_or(Value::Null)
    }

    pub(crate) fn to_response(&self) -> Response {
        json_response(StatusCode::OK, &self.view())
    }
}

/// `Owners`: an array holding exactly one user id.
fn owner(f: &mut Fields<'_>, input: &Map<String, Value>) -> Option<String> {
    let owners = match input.get("Owners") {
        None | Some(Value::Null) => {
            f.missing("Owners");
            return None;
        }
        Some(Value::Array(owners)) => owners,
        Some(_) => {
            f.error("Owners", "The field Owners must be an array of user Ids.");
            return None;
        }
    };
    match owners.as_slice() {
        [] => {
            f.missing("Owners");
            None
        }
        [Value::String(id)] if !id.is_empty() => Some(id.clone()),
        [Value::Number(id)] => Some(id.to_string()),
        [_] => {
            f.error("Owners", "The field Owners must be an array of user Ids.");
            None
        }
        _ => {
            f.error(
                "Owners",
                "Owners doesn't support multiple values for the moment",
            );
            None
        }
    }
}

/// `POST /v2.01/{ClientId}/wallets`.
pub(crate) async fn wallets_create(
    State(sandbox): State<Sandbox>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let now = sandbox.clock().now();
    let mut f = Fields::new(&body, now.timestamp());
    let owner = owner(&mut f, &body);
    let description = f.text("Description", 1, 255, true);
    let currency = ledger::currency(&mut f, &body, "Currency", "Currency");
    let tag = f.text("Tag", 0, 255, false);
    f.finish().map_err(ApiError::param_errors)?;
    let (Some(owner), Some(description), Some(currency)) = (owner, description, currency) else {
        unreachable!("required fields were checked");
    };
    if sandbox.shared().users().get(&owner).is_none() {
        return Err(ApiError::not_found("User", &owner));
    }
    let record = WalletRecord {
        id: format!("wlt_m_{}", ids::ulid(now, &mut *sandbox.shared().rng())),
        owner,
        currency,
        description,
        tag,
        balance: 0,
        creation_date: now.timestamp(),
        created_at_ms: now.timestamp_millis(),
    };
    let response = record.to_response();
    sandbox.shared().ledger().insert_wallet(record);
    Ok(response)
}

/// `GET /v2.01/{ClientId}/wallets/{WalletId}`.
pub(crate) async fn wallets_get(
    State(sandbox): State<Sandbox>,
    Path((_client_id, wallet_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let ledger = sandbox.shared().ledger();
    ledger
        .wallet(&wallet_id)
        .map(WalletRecord::to_response)
        .ok_or_else(|| ApiError::not_found("Wallet", &wallet_id))
}

/// What an update sends for one writable field: `None` keeps the stored value, else the
/// new value (`None` inside clears it). `null` and `""` follow the update knobs.
fn incoming(
    body: &Map<String, Value>,
    key: &str,
    null: PutNull,
    empty: PutEmptyString,
    refused: &mut FieldErrors,
) -> Option<Value> {
    match body.get(key)? {
        Value::Null => match null {
            PutNull::Keep => None,
            PutNull::Clear => Some(Value::Null),
        },
        Value::String(text) if text.is_empty() => match empty {
            PutEmptyString::Clear => Some(Value::Null),
            PutEmptyString::Keep => None,
            PutEmptyString::Reject => {
                refused.insert(
                    key.to_owned(),
                    format!("The field {key} cannot be an empty string."),
                );
                None
            }
        },
        value => Some(value.clone()),
    }
}

/// `PUT /v2.01/{ClientId}/wallets/{WalletId}`: `Description` and `Tag` change, every other
/// key (the SDKs send the whole object back) is ignored; `null` and `""` are read as in user
/// updates ([`crate::Knobs::set_put_null`], [`crate::Knobs::set_put_empty_string`]).
pub(crate) async fn wallets_update(
    State(sandbox): State<Sandbox>,
    Path((_client_id, wallet_id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let knobs = sandbox.knobs();
    let (null, empty) = (knobs.put_null(), knobs.put_empty_string());
    let mut ledger = sandbox.shared().ledger();
    let record = ledger
        .wallet_mut(&wallet_id)
        .ok_or_else(|| ApiError::not_found("Wallet", &wallet_id))?;
    let mut merged = Map::new();
    merged.insert("Description".to_owned(), record.description.clone().into());
    merged.insert(
        "Tag".to_owned(),
        record.tag.clone().map_or(Value::Null, Value::String),
    );
    let mut refused = FieldErrors::new();
    for key in ["Description", "Tag"] {
        if let Some(value) = incoming(&body, key, null, empty, &mut refused) {
            merged.insert(key.to_owned(), value);
        }
    }
    if !refused.is_empty() {
        return Err(ApiError::param_errors(refused));
    }
    let mut f = Fields::new(&merged, sandbox.clock().now().timestamp());
    let description = f.text("Description", 1, 255, true);
    let tag = f.text("Tag", 0, 255, false);
    f.finish().map_err(ApiError::param_errors)?;
    let Some(description) = description else {
        unreachable!("required fields were checked");
    };
    record.description = description;
    record.tag = tag;
    Ok(record.to_response())
}

/// `GET /v2.01/{ClientId}/users/{UserId}/wallets`: paginated, optionally sorted by
/// `CreationDate`, without the wallets created within the list lag
/// ([`crate::Knobs::set_list_lag`]).
pub(crate) async fn users_wallets_list(
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
    let mut wallets: Vec<&WalletRecord> = ledger
        .wallets()
        .iter()
        .filter(|w| w.owner == user_id && visible(w.created_at_ms))
        .collect();
    // Creation order breaks ties between wallets created within the same second.
    wallets.sort_by_key(|w| w.creation_date);
    if query.is_descending() {
        wallets.reverse();
    }
    Ok(list_response(
        &query,
        &wallets,
        |w| w.view(),
        &headers,
        &uri,
    ))
}
