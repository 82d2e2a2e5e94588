//! Transaction lists: a wallet's transactions (transfers, pay-outs, pay-ins and refunds,
//! debited or credited), and those a user authored, with the reference's filters (`Status`,
//! `ResultCode`, `Type`, `Nature`, `AfterDate`, `BeforeDate`), `Sort=CreationDate:ASC|DESC`
//! and pagination; the list lag ([`crate::Knobs::set_list_lag`]) hides the newest. Also the
//! paging helpers the money lists share.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use serde::Serialize;

use super::Sandbox;
use super::error::{ApiError, FieldErrors, json_response};
use super::knobs::DateFilterBounds;
use super::ledger::{Money, TransactionRecord};
use super::users::{ListQuery, pagination_headers};

/// Whether an object created at `created_at_ms` already shows in lists, given the list lag.
pub(crate) fn visible(sandbox: &Sandbox) -> impl Fn(i64) -> bool + use<> {
    let lag_ms = i64::try_from(sandbox.knobs().list_lag().as_millis()).unwrap_or(i64::MAX);
    let now_ms = sandbox.clock().now().timestamp_millis();
    move |created_at_ms| now_ms.saturating_sub(created_at_ms) >= lag_ms
}

/// One page of `all` (already filtered and ordered as asked), each item rendered by `view`,
/// with the pagination headers.
pub(crate) fn list_response<T, V: Serialize>(
    query: &ListQuery,
    all: &[T],
    view: impl Fn(&T) -> V,
    headers: &HeaderMap,
    uri: &Uri,
) -> Response {
    let (skip, take) = query.window();
    let page: Vec<V> = all.iter().skip(skip).take(take).map(view).collect();
    let mut response = json_response(StatusCode::OK, &page);
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let base = format!("http://{host}{}", uri.path());
    pagination_headers(query, all.len(), &base, response.headers_mut());
    response
}

/// The keys every transaction object starts with (the Transaction object, and the first keys
/// of a pay-out), in the documentation's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TransactionBase<'a> {
    id: &'a str,
    tag: Option<&'a str>,
    creation_date: i64,
    author_id: &'a str,
    credited_user_id: Option<&'a str>,
    debited_funds: &'a Money,
    credited_funds: Money,
    fees: &'a Money,
    status: &'static str,
    result_code: Option<&'a str>,
    result_message: Option<&'a str>,
    execution_date: Option<i64>,
    #[serde(rename = "Type")]
    kind: &'static str,
    nature: &'static str,
    credited_wallet_id: Option<&'a str>,
    debited_wallet_id: Option<&'a str>,
}

impl TransactionRecord {
    pub(crate) fn base(&self) -> TransactionBase<'_> {
        TransactionBase {
            id: &self.id,
            tag: self.tag.as_deref(),
            creation_date: self.creation_date,
            author_id: &self.author_id,
            credited_user_id: self.credited_user_id.as_deref(),
            debited_funds: &self.debited_funds,
            credited_funds: self.credited_funds(),
            fees: &self.fees,
            status: self.status.as_str(),
            result_code: self.result.as_ref().map(|(code, _)| code.as_str()),
            result_message: self.result.as_ref().map(|(_, message)| message.as_str()),
            execution_date: self.execution_date,
            kind: self.kind(),
            nature: self.nature(),
            credited_wallet_id: self.credited_wallet_id.as_deref(),
            debited_wallet_id: self.debited_wallet_id.as_deref(),
        }
    }
}

/// An item of a transaction list: the Transaction object.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct TransactionView<'a> {
    #[serde(flatten)]
    base: TransactionBase<'a>,
    deposit_id: Option<&'a str>,
}

fn transaction_view<'a>(record: &&'a TransactionRecord) -> TransactionView<'a> {
    TransactionView {
        base: record.base(),
        deposit_id: None,
    }
}

const STATUSES: [&str; 3] = ["CREATED", "SUCCEEDED", "FAILED"];
const TYPES: [&str; 4] = ["PAYIN", "TRANSFER", "CONVERSION", "PAYOUT"];
const NATURES: [&str; 4] = ["REGULAR", "REPUDIATION", "REFUND", "SETTLEMENT"];

/// The filters of a transaction list. Each value filter holds the accepted values (`None`:
/// no filter); several values come comma-separated or as repeated parameters.
#[derive(Debug, Default)]
pub(crate) struct TransactionFilter {
    statuses: Option<Vec<String>>,
    result_codes: Option<Vec<String>>,
    types: Option<Vec<String>>,
    natures: Option<Vec<String>>,
    after: Option<i64>,
    before: Option<i64>,
}

/// Adds the comma-separated `value` to `accepted`, checking each against `allowed` (matched
/// case-insensitively) when given.
pub(crate) fn add_values(
    accepted: &mut Option<Vec<String>>,
    name: &str,
    value: &str,
    allowed: Option<&[&str]>,
    errors: &mut FieldErrors,
) {
    let accepted = accepted.get_or_insert_with(Vec::new);
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some(allowed) = allowed else {
            accepted.push(part.to_owned());
            continue;
        };
        let upper = part.to_ascii_uppercase();
        if allowed.contains(&upper.as_str()) {
            accepted.push(upper);
        } else {
            errors.insert(
                name.to_owned(),
                format!(
                    "The value {part} is not valid for {name}. Allowed values: {}.",
                    allowed.join(", ")
                ),
            );
        }
    }
}

pub(crate) fn timestamp(name: &str, value: &str, errors: &mut FieldErrors) -> Option<i64> {
    match value.trim().parse::<i64>() {
        Ok(timestamp) => Some(timestamp),
        Err(_) => {
            errors.insert(
                name.to_owned(),
                format!("The {name} value {value} is not valid: it must be a Unix timestamp."),
            );
            None
        }
    }
}

impl TransactionFilter {
    /// Reads the filters from the query, names in any case.
    pub(crate) fn from_uri(uri: &Uri) -> Result<TransactionFilter, ApiError> {
        let pairs: Vec<(String, String)> = Query::try_from_uri(uri)
            .map(|q: Query<Vec<(String, String)>>| q.0)
            .map_err(|err| ApiError::param_error("Query", err.body_text()))?;
        let mut errors = FieldErrors::new();
        let mut filter = TransactionFilter::default();
        for (name, value) in pairs {
            match name.to_ascii_lowercase().as_str() {
                "status" => add_values(
                    &mut filter.statuses,
                    &name,
                    &value,
                    Some(&STATUSES),
                    &mut errors,
                ),
                "resultcode" => {
                    add_values(&mut filter.result_codes, &name, &value, None, &mut errors);
                }
                "type" => add_values(&mut filter.types, &name, &value, Some(&TYPES), &mut errors),
                "nature" => add_values(
                    &mut filter.natures,
                    &name,
                    &value,
                    Some(&NATURES),
                    &mut errors,
                ),
                "afterdate" => filter.after = timestamp(&name, &value, &mut errors),
                "beforedate" => filter.before = timestamp(&name, &value, &mut errors),
                _ => {}
            }
        }
        if errors.is_empty() {
            Ok(filter)
        } else {
            Err(ApiError::param_errors(errors))
        }
    }

    pub(crate) fn matches(&self, record: &TransactionRecord, bounds: DateFilterBounds) -> bool {
        let among = |accepted: &Option<Vec<String>>, value: &str| {
            accepted
                .as_ref()
                .is_none_or(|accepted| accepted.iter().any(|a| a == value))
        };
        let date = record.creation_date;
        let (after_ok, before_ok) = match bounds {
            DateFilterBounds::Exclusive => (
                self.after.is_none_or(|after| date > after),
                self.before.is_none_or(|before| date < before),
            ),
            DateFilterBounds::Inclusive => (
                self.after.is_none_or(|after| date >= after),
                self.before.is_none_or(|before| date <= before),
            ),
        };
        among(&self.statuses, record.status.as_str())
            && among(&self.types, record.kind())
            && among(&self.natures, record.nature())
            && self.result_codes.as_ref().is_none_or(|codes| {
                record
                    .result
                    .as_ref()
                    .is_some_and(|(code, _)| codes.contains(code))
            })
            && after_ok
            && before_ok
    }
}

/// The transactions `belongs` picks, filtered, without those within the list lag, ordered
/// and paginated as the query asks.
fn list(
    sandbox: &Sandbox,
    belongs: impl Fn(&TransactionRecord) -> bool,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Response, ApiError> {
    let query = ListQuery::from_uri(uri)?;
    let filter = TransactionFilter::from_uri(uri)?;
    let bounds = sandbox.knobs().date_filter_bounds();
    let visible = visible(sandbox);
    let ledger = sandbox.shared().ledger();
    let mut transactions: Vec<&TransactionRecord> = ledger
        .transactions()
        .iter()
        .filter(|r| belongs(r) && visible(r.created_at_ms) && filter.matches(r, bounds))
        .collect();
    // Creation order breaks ties between transactions created within the same second.
    transactions.sort_by_key(|r| r.creation_date);
    if query.is_descending() {
        transactions.reverse();
    }
    Ok(list_response(
        &query,
        &transactions,
        transaction_view,
        headers,
        uri,
    ))
}

/// `GET /v2.01/{ClientId}/wallets/{WalletId}/transactions`: the transactions that
/// debited or credited the wallet.
pub(crate) async fn wallets_transactions_list(
    State(sandbox): State<Sandbox>,
    Path((_client_id, wallet_id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    if sandbox.shared().ledger().wallet(&wallet_id).is_none() {
        return Err(ApiError::not_found("Wallet", &wallet_id));
    }
    list(
        &sandbox,
        |r| {
            r.debited_wallet_id.as_ref() == Some(&wallet_id)
                || r.credited_wallet_id.as_ref() == Some(&wallet_id)
        },
        &headers,
        &uri,
    )
}

/// `GET /v2.01/{ClientId}/users/{UserId}/transactions`: the transactions whose
/// `AuthorId` is the user, as the reference says.
pub(crate) async fn users_transactions_list(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    if sandbox.shared().users().get(&user_id).is_none() {
        return Err(ApiError::not_found("User", &user_id));
    }
    list(&sandbox, |r| r.author_id == user_id, &headers, &uri)
}
