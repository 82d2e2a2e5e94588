//! The Mangopay REST API client (v2.01), on the wire as Mangopay's overview pages describe it.
//!
//! - OAuth2 client credentials; one bearer token shared by every clone of the client, renewed
//!   30 s before it expires, one renewal at a time, and one retry after a 401.
//! - An `Idempotency-Key` on every `POST`; a 409 for a reused key is answered by reading the
//!   first answer back with `GET /responses/{key}`.
//! - Errors carry Mangopay's error report and say whether retrying can help.
//! - A rate budget shaped like Mangopay's windows ([`budget`]), counted before every call and
//!   shared by every clone; rate-limit headers are read after every call, and once Mangopay
//!   says a window is used up (or answers 429), calls fail fast with
//!   [`ApiError::RateLimited`] until it resets instead of being sent.
//! - HTTPS only (except on loopback), redirects never followed, a timeout on every request, and
//!   with `debug` on, requests and responses logged through `tracing` with credentials, tokens
//!   and card data redacted, and personal data masked unless `debug_personal_data` is on.

pub mod budget;
mod error;
mod idempotency;
pub mod rate_limit;
pub mod redact;
mod tls;
mod token;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use url::Url;

pub use budget::{BudgetWindow, RateBudget};
pub use error::{ApiError, ErrorBody};
pub use idempotency::{IdempotencyKey, InvalidIdempotencyKey};
pub use rate_limit::{RateLimit, RateLimitWindow};

use crate::ClientConfig;
use token::{Token, TokenCache, TokenResponse};

/// The API version every path starts with.
pub const API_VERSION: &str = "v2.01";

/// What to do once an answer arrives. Kept apart from the HTTP code so the policy is plain
/// data that the unit tests below pin down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// A success: hand the body over.
    Done,
    /// 401 with a token that may have expired: fetch a new one and send again, once.
    RenewTokenAndResend,
    /// 409 for a reused idempotency key: read the first answer back.
    ReadStoredAnswer,
    /// Any other error status: report it.
    Fail,
}

fn next_step(status: u16, renewed: bool, keyed: bool) -> Next {
    match status {
        200..=299 => Next::Done,
        401 if !renewed => Next::RenewTokenAndResend,
        // Whatever its `Type`, a 409 to a keyed POST may mean the key was used: its first
        // answer is what tells (a conflict of the request itself is stored as that answer).
        409 if keyed => Next::ReadStoredAnswer,
        _ => Next::Fail,
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items on this page.
    pub items: Vec<T>,
    /// `X-Number-Of-Pages`, when Mangopay sent it.
    pub total_pages: Option<u64>,
    /// `X-Number-Of-Items`, when Mangopay sent it.
    pub total_items: Option<u64>,
}

/// Which page of a list to fetch (Mangopay: `page` from 1, `per_page` up to 100).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// The page number, starting at 1.
    pub page: u32,
    /// Items per page, 1 to 100.
    pub per_page: u32,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            page: 1,
            per_page: 10,
        }
    }
}

/// What a keyed `POST` answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Posted {
    /// The answer's body.
    pub body: Value,
    /// Whether this is the stored first answer to an earlier request with the same key, read
    /// back after a 409.
    pub replayed: bool,
}

/// A stored answer, as `GET /responses/{key}` returns it (Mangopay's "API Response" object).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StoredResponse {
    /// The HTTP status of the first answer.
    #[serde(rename = "StatusCode", deserialize_with = "status_code")]
    pub status_code: u16,
    /// The first answer's `Content-Type`.
    #[serde(rename = "ContentType", default)]
    pub content_type: Option<String>,
    /// When the first answer was sent, as an HTTP date.
    #[serde(rename = "Date", default)]
    pub date: Option<String>,
    /// The URL the first request went to.
    #[serde(rename = "RequestURL", default)]
    pub request_url: Option<String>,
    /// The first answer's body.
    #[serde(rename = "Resource", default)]
    pub resource: Value,
}

fn status_code<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => s.trim().parse().map_err(serde::de::Error::custom),
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| serde::de::Error::custom("StatusCode out of range")),
        other => Err(serde::de::Error::custom(format!(
            "unexpected StatusCode {other}"
        ))),
    }
}

impl StoredResponse {
    /// The first answer as this client would have returned it: the body on a 2xx, the error
    /// (marked as replayed) otherwise.
    pub fn into_result(self) -> Result<Value, ApiError> {
        if (200..300).contains(&self.status_code) {
            return Ok(self.resource);
        }
        let body = serde_json::from_value::<ErrorBody>(self.resource.clone()).unwrap_or_default();
        Err(ApiError::Mangopay {
            status: self.status_code,
            body: Box::new(body),
            replayed: true,
            retry_after: None,
        })
    }
}

struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    tokens: TokenCache<ApiError>,
    rate_limit: Mutex<Option<RateLimit>>,
    budget: budget::Limiter,
}

/// A Mangopay API client. Cheap to clone; clones share the token and the rate-limit state.
#[derive(Clone)]
pub struct MangopayClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MangopayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MangopayClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// How long every call waits after a 429 whose headers give no reset time.
const REFUSED_WITHOUT_RESET: chrono::Duration = chrono::Duration::seconds(60);

/// A raw answer: status, headers and body bytes.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: bytes::Bytes,
}

impl MangopayClient {
    /// A client for `config`.
    ///
    /// TLS uses rustls with the process's default crypto provider if the application installed
    /// one, `ring` otherwise; the client never installs a provider itself. Server certificates
    /// are checked against the operating system's trust store.
    ///
    /// Redirects are not followed: a 3xx answer is returned as an error
    /// ([`ApiError::UnexpectedResponse`], or [`ApiError::Mangopay`] if its body is an error
    /// report) and nothing is sent to its `Location`, so credentials, tokens and bodies only
    /// ever go to the configured host.
    pub fn new(config: ClientConfig) -> Result<Self, ApiError> {
        let tls = tls::client_config().map_err(|e| ApiError::Setup(Box::new(e)))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout())
            .connect_timeout(config.timeout().min(Duration::from_secs(10)))
            .user_agent(concat!("diesel-mangopay/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Setup(Box::new(e)))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                tokens: TokenCache::default(),
                rate_limit: Mutex::new(None),
                budget: budget::Limiter::new(config.rate_budget().clone(), config.client_id()),
                config,
            }),
        })
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The rate-limit state from the latest answer that carried the headers.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.inner
            .rate_limit
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Counts this client's calls against its [`RateBudget`] in `db` (the
    /// `mangopay_rate_budget` table) from now on instead of in this process alone, so that
    /// every process doing the same on the same database shares one budget: several workers
    /// on one PostgreSQL together stay within Mangopay's limits. The worker does this on
    /// PostgreSQL. Returns `false` when the count was already shared, or the budget is
    /// unlimited.
    ///
    /// Calls are taken from the database in batches, one visit at a time per process, for
    /// every task then waiting. If the database cannot be reached, calls are counted in this
    /// process until it can.
    pub fn share_budget(&self, db: &crate::Db) -> bool {
        self.inner.budget.share(db)
    }

    /// How many OAuth tokens this client (and its clones) requested so far.
    pub fn token_fetches(&self) -> u64 {
        self.inner.tokens.fetches()
    }

    /// `GET /v2.01/{ClientId}/{path}`.
    pub async fn get(&self, path: &str) -> Result<Value, ApiError> {
        let answer = self
            .send(Method::GET, self.url(path, &[]), None, None)
            .await?;
        into_json(answer)
    }

    /// `GET /v2.01/{ClientId}/{path}?{query}`: a read that takes query parameters and answers
    /// one object (such as `recipients/schema`).
    pub async fn get_with_query(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Value, ApiError> {
        let answer = self
            .send(Method::GET, self.url(path, query), None, None)
            .await?;
        into_json(answer)
    }

    /// One page of a list (`GET` with `page` and `per_page`), with Mangopay's totals.
    pub async fn list(&self, path: &str, page: PageRequest) -> Result<Page<Value>, ApiError> {
        self.list_filtered(path, &[], page).await
    }

    /// One page of a list with filters and sorting (`Sort=CreationDate:DESC`, `AfterDate`,
    /// `Status`, ...), with Mangopay's totals.
    pub async fn list_filtered(
        &self,
        path: &str,
        filters: &[(&str, String)],
        page: PageRequest,
    ) -> Result<Page<Value>, ApiError> {
        let mut query = vec![
            ("page", page.page.to_string()),
            ("per_page", page.per_page.to_string()),
        ];
        query.extend(filters.iter().map(|(k, v)| (*k, v.clone())));
        let answer = self
            .send(Method::GET, self.url(path, &query), None, None)
            .await?;
        let header = |name: &str| {
            answer
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok())
        };
        let (total_pages, total_items) = (header("x-number-of-pages"), header("x-number-of-items"));
        let items = match into_json(answer)? {
            Value::Array(items) => items,
            other => {
                return Err(ApiError::Decode {
                    status: 200,
                    message: format!("expected a JSON array, got {other}"),
                });
            }
        };
        Ok(Page {
            items,
            total_pages,
            total_items,
        })
    }

    /// `PUT /v2.01/{ClientId}/{path}` with a JSON body.
    pub async fn put<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Value, ApiError> {
        let body = to_json(body)?;
        let answer = self
            .send(Method::PUT, self.url(path, &[]), Some(&body), None)
            .await?;
        into_json(answer)
    }

    /// `POST /v2.01/{ClientId}/{path}` with a JSON body and `key` as its `Idempotency-Key`.
    ///
    /// If Mangopay answers 409 because the key was used before, the first answer is read back
    /// with `GET /responses/{key}` and returned as if it had just arrived: the original
    /// resource on success, the original error (marked replayed) otherwise. When the first
    /// answer cannot be read back, the error is [`ApiError::ReplayUnavailable`]: the outcome
    /// of the first request is unknown, never "nothing happened".
    pub async fn post<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
        key: &IdempotencyKey,
    ) -> Result<Value, ApiError> {
        self.post_keyed(path, body, key).await.map(|p| p.body)
    }

    /// [`MangopayClient::post`], also saying whether the body is the stored first answer to
    /// an earlier request with the same key.
    pub async fn post_keyed<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
        key: &IdempotencyKey,
    ) -> Result<Posted, ApiError> {
        let body = to_json(body)?;
        let answer = self
            .send(Method::POST, self.url(path, &[]), Some(&body), Some(key))
            .await?;
        match next_step(answer.status.as_u16(), true, true) {
            Next::Done => Ok(Posted {
                body: into_json(answer)?,
                replayed: false,
            }),
            Next::ReadStoredAnswer => {
                tracing::info!(key = %key, path, "idempotency key already used; reading the first answer back");
                self.replay(key).await
            }
            Next::Fail | Next::RenewTokenAndResend => Err(error_from(answer)),
        }
    }

    /// `POST` of a create whose success has no body (a KYC document page: 204), with `key` as
    /// its `Idempotency-Key`. Returns whether the success is the stored first answer to an
    /// earlier request with the same key (read back after a 409). A stored error comes back
    /// marked replayed; a first answer that cannot be read back is
    /// [`ApiError::ReplayUnavailable`].
    pub async fn post_without_answer<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
        key: &IdempotencyKey,
    ) -> Result<bool, ApiError> {
        let body = to_json(body)?;
        let answer = self
            .send(Method::POST, self.url(path, &[]), Some(&body), Some(key))
            .await?;
        match next_step(answer.status.as_u16(), true, true) {
            Next::Done => Ok(false),
            Next::ReadStoredAnswer => {
                tracing::info!(key = %key, path, "idempotency key already used; reading the first answer back");
                let stored = self.stored_response(key).await.map_err(|source| {
                    ApiError::ReplayUnavailable {
                        key: key.to_string(),
                        source: Box::new(source),
                    }
                })?;
                stored.into_result().map(|_| true)
            }
            Next::Fail | Next::RenewTokenAndResend => Err(error_from(answer)),
        }
    }

    /// The first answer to a request sent with `key`, as [`MangopayClient::post_keyed`]
    /// returns it after a 409: the stored resource, the stored error (replayed), or
    /// [`ApiError::ReplayUnavailable`] when it cannot be read.
    pub async fn replay(&self, key: &IdempotencyKey) -> Result<Posted, ApiError> {
        let unavailable = |source: ApiError| ApiError::ReplayUnavailable {
            key: key.to_string(),
            source: Box::new(source),
        };
        let stored = self.stored_response(key).await.map_err(unavailable)?;
        let status = stored.status_code;
        match stored.into_result() {
            Ok(resource @ Value::Object(_)) => Ok(Posted {
                body: resource,
                replayed: true,
            }),
            Ok(other) => Err(unavailable(ApiError::Decode {
                status,
                message: format!("the stored answer is not a JSON object: {other}"),
            })),
            Err(replayed_error) => Err(replayed_error),
        }
    }

    /// `GET /responses/{key}`: the stored first answer to a request sent with `key`.
    pub async fn stored_response(&self, key: &IdempotencyKey) -> Result<StoredResponse, ApiError> {
        let value = self.get(&format!("responses/{key}")).await?;
        serde_json::from_value(value).map_err(|e| ApiError::Decode {
            status: 200,
            message: format!("API response record: {e}"),
        })
    }

    fn url(&self, path: &str, query: &[(&str, String)]) -> Url {
        let mut url = self.inner.config.base_url().clone();
        {
            let mut segments = url
                .path_segments_mut()
                .expect("http and https URLs have a path");
            segments
                .pop_if_empty()
                .push(API_VERSION)
                .push(self.inner.config.client_id());
            for segment in path.split('/').filter(|s| !s.is_empty()) {
                segments.push(segment);
            }
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    fn token_url(&self) -> Url {
        let mut url = self.inner.config.base_url().clone();
        url.path_segments_mut()
            .expect("http and https URLs have a path")
            .pop_if_empty()
            .extend([API_VERSION, "oauth", "token"]);
        url
    }

    async fn fetch_token(&self) -> Result<Token, ApiError> {
        let config = &self.inner.config;
        let url = self.token_url();
        let debug = config.debug();
        if debug {
            tracing::debug!(target: "diesel_mangopay::http", method = "POST", %url,
                authorization = "Basic [redacted]", body = "grant_type=client_credentials", "mangopay request");
        }
        self.inner.budget.acquire().await?;
        let started = Instant::now();
        let response = self
            .inner
            .http
            .post(url.clone())
            .basic_auth(config.client_id(), Some(config.api_key().expose_secret()))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body("grant_type=client_credentials")
            .send()
            .await
            .map_err(ApiError::Transport)?;
        let answer = self.read(response).await?;
        if debug {
            log_answer(&url, &answer, started, config);
        }
        if !answer.status.is_success() {
            return Err(error_from(answer));
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&answer.body).map_err(|e| ApiError::Decode {
                status: answer.status.as_u16(),
                message: format!("OAuth token: {e}"),
            })?;
        Ok(parsed.into_token(started))
    }

    async fn read(&self, response: reqwest::Response) -> Result<Answer, ApiError> {
        let status = response.status();
        let headers = response.headers().clone();
        let limits = RateLimit::from_headers(&headers);
        let used_up = limits.as_ref().and_then(|rl| rl.blocked_until(Utc::now()));
        if status == StatusCode::TOO_MANY_REQUESTS {
            let budget = &self.inner.budget;
            budget.refused_until(used_up.unwrap_or_else(|| Utc::now() + REFUSED_WITHOUT_RESET));
        } else if let Some(rl) = &limits {
            let made: Vec<u64> = rl.windows.iter().map(|w| w.made).collect();
            self.inner.budget.mangopay_counted(&made, used_up);
        }
        if let Some(rl) = limits {
            *self
                .inner
                .rate_limit
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(rl);
        }
        let body = response.bytes().await.map_err(ApiError::Transport)?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// Sends one request: bearer token, headers, body; renews the token and sends again once
    /// after a 401. Returns whatever Mangopay answered.
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        key: Option<&IdempotencyKey>,
    ) -> Result<Answer, ApiError> {
        let config = &self.inner.config;
        let payload = body.map(|b| serde_json::to_vec(b).expect("a JSON value serializes"));
        let mut renewed = false;
        loop {
            let token = self
                .inner
                .tokens
                .get(|| self.fetch_token())
                .await
                .map_err(|source| ApiError::TokenUnavailable { source })?;
            let mut request = self
                .inner
                .http
                .request(method.clone(), url.clone())
                .header(
                    AUTHORIZATION,
                    format!(
                        "{} {}",
                        token.token_type,
                        token.access_token.expose_secret()
                    ),
                )
                .header(ACCEPT, "application/json");
            if config.uk_header_flag() {
                request = request.header("x-tenant-id", "uk");
            }
            if let Some(key) = key {
                request = request.header("Idempotency-Key", key.as_str());
            }
            if let Some(payload) = &payload {
                request = request
                    .header(CONTENT_TYPE, "application/json")
                    .body(payload.clone());
            }
            if config.debug() {
                tracing::debug!(target: "diesel_mangopay::http", %method, %url,
                    authorization = "Bearer [redacted]",
                    idempotency_key = key.map(IdempotencyKey::as_str),
                    uk_tenant = config.uk_header_flag(),
                    body = %body
                        .map(|b| redact::json(b, personal_data(config)).to_string())
                        .unwrap_or_default(),
                    "mangopay request");
            }
            self.inner.budget.acquire().await?;
            let started = Instant::now();
            let response = request.send().await.map_err(ApiError::Transport)?;
            let answer = self.read(response).await?;
            if config.debug() {
                log_answer(&url, &answer, started, config);
            }
            if next_step(answer.status.as_u16(), renewed, false) == Next::RenewTokenAndResend {
                // The token may have expired early or been revoked: a 401 is answered before
                // anything is processed, so sending again cannot duplicate anything.
                self.inner.tokens.invalidate(&token);
                renewed = true;
                continue;
            }
            return Ok(answer);
        }
    }
}

/// Whether the debug logs of `config` show personal data.
fn personal_data(config: &ClientConfig) -> redact::PersonalData {
    if config.debug_personal_data() {
        redact::PersonalData::Show
    } else {
        redact::PersonalData::Mask
    }
}

fn log_answer(url: &Url, answer: &Answer, started: Instant, config: &ClientConfig) {
    tracing::debug!(target: "diesel_mangopay::http", %url,
        status = answer.status.as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        body = %redact::body(&answer.body, personal_data(config)),
        "mangopay response");
}

fn to_json<B: Serialize + ?Sized>(body: &B) -> Result<Value, ApiError> {
    serde_json::to_value(body).map_err(|e| ApiError::Decode {
        status: 0,
        message: format!("request body: {e}"),
    })
}

/// The body of a success, or the error of a failure.
fn into_json(answer: Answer) -> Result<Value, ApiError> {
    if !answer.status.is_success() {
        return Err(error_from(answer));
    }
    if answer.body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&answer.body).map_err(|e| ApiError::Decode {
        status: answer.status.as_u16(),
        message: e.to_string(),
    })
}

fn error_from(answer: Answer) -> ApiError {
    let status = answer.status.as_u16();
    match ErrorBody::parse(&answer.body) {
        Some(body) => {
            let retry_after = (status == 429).then(|| {
                RateLimit::from_headers(&answer.headers)
                    .and_then(|rl| rl.blocked_until(Utc::now()))
                    .and_then(|until| (until - Utc::now()).to_std().ok())
                    .unwrap_or_else(|| REFUSED_WITHOUT_RESET.to_std().unwrap_or_default())
            });
            ApiError::Mangopay {
                status,
                body: Box::new(body),
                replayed: false,
                retry_after,
            }
        }
        None => ApiError::UnexpectedResponse {
            status,
            body: String::from_utf8_lossy(&answer.body)
                .chars()
                .take(300)
                .collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_map_to_the_next_step() {
        assert_eq!(next_step(200, false, true), Next::Done);
        assert_eq!(next_step(204, true, false), Next::Done);
        assert_eq!(next_step(401, false, true), Next::RenewTokenAndResend);
        assert_eq!(next_step(401, true, true), Next::Fail);
        assert_eq!(next_step(409, true, true), Next::ReadStoredAnswer);
        assert_eq!(next_step(409, true, false), Next::Fail);
        for s in [400, 403, 404, 429, 500, 503] {
            assert_eq!(next_step(s, false, true), Next::Fail, "{s}");
        }
    }

    #[test]
    fn stored_answers_replay_as_results() {
        let ok: StoredResponse = serde_json::from_value(serde_json::json!({
            "StatusCode": "200", "ContentLength": "10", "ContentType": "application/json",
            "Date": "Tue, 19 Jul 2022 08:47:59 GMT", "RequestURL": "https://x/v2.01/c/users/natural",
            "Resource": {"Id": "user_1"}})).unwrap();
        assert_eq!(ok.into_result().unwrap()["Id"], "user_1");
        let failed: StoredResponse = serde_json::from_value(serde_json::json!({
            "StatusCode": 400, "Resource": {"Message": "bad", "Type": "param_error",
            "errors": {"Email": "invalid"}}}))
        .unwrap();
        match failed.into_result().unwrap_err() {
            ApiError::Mangopay {
                status: 400,
                body,
                replayed: true,
                ..
            } => {
                assert_eq!(body.errors["Email"], "invalid")
            }
            other => panic!("{other:?}"),
        }
    }

    /// The first source of `error` that is a reqwest error, for the tests below.
    fn transport_error(error: &ApiError) -> &reqwest::Error {
        match error {
            ApiError::TokenUnavailable { source } => match &**source {
                ApiError::Transport(e) => e,
                other => panic!("expected a transport error, got {other:?}"),
            },
            other => panic!("expected no token, got {other:?}"),
        }
    }

    /// Whether a rustls error is among the causes of `error`, inside I/O errors included.
    fn tls_failure(error: &(dyn std::error::Error + 'static)) -> bool {
        let inside_io = error
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .is_some_and(|inner| tls_failure(inner));
        error.is::<rustls::Error>() || inside_io || error.source().is_some_and(tls_failure)
    }

    fn https_client(port: u16) -> MangopayClient {
        let config = ClientConfig::builder("my-client", "key")
            .base_url(format!("https://127.0.0.1:{port}"))
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        MangopayClient::new(config).unwrap()
    }

    #[tokio::test]
    async fn https_works_without_a_process_wide_crypto_provider() {
        use rustls::crypto::CryptoProvider;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        // A port where nothing listens.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = https_client(closed);
        assert!(
            CryptoProvider::get_default().is_none(),
            "building a client installed a process-wide crypto provider"
        );
        let error = client.get("users").await.unwrap_err();
        assert!(transport_error(&error).is_connect(), "{error:?}");
        assert!(error.is_retryable() && error.never_sent());

        // A server answering the TLS handshake in plain HTTP: the handshake starts, with the
        // client's own provider, and fails.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut hello = [0u8; 1024];
                let _ = stream.read(&mut hello).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    .await;
            }
        });
        let error = https_client(port).get("users").await.unwrap_err();
        assert!(transport_error(&error).is_connect(), "{error:?}");
        assert!(
            tls_failure(&error),
            "the TLS handshake did not run: {error:?}"
        );
        assert!(CryptoProvider::get_default().is_none());
    }

    #[test]
    fn urls_are_built_segment_by_segment() {
        let config = ClientConfig::builder("my-client", "key")
            .base_url("http://127.0.0.1:9/prefix/")
            .build()
            .unwrap();
        let client = MangopayClient::new(config).unwrap();
        assert_eq!(
            client.url("users/natural/user_m_01AB", &[]).as_str(),
            "http://127.0.0.1:9/prefix/v2.01/my-client/users/natural/user_m_01AB"
        );
        assert_eq!(
            client.url("/users/", &[("page", "2".into())]).as_str(),
            "http://127.0.0.1:9/prefix/v2.01/my-client/users?page=2"
        );
        assert_eq!(
            client.url("users/a b", &[]).path(),
            "/prefix/v2.01/my-client/users/a%20b"
        );
        assert_eq!(
            client.token_url().as_str(),
            "http://127.0.0.1:9/prefix/v2.01/oauth/token"
        );
    }
}
