//! Idempotency keys: the `Idempotency-Key` header on POSTs, the 409 on reuse
//! within 24 hours, and `GET /responses/{key}` replaying the stored answer.
//!
//! The key is reserved when an authenticated POST with its whole body reaches
//! its route, and the answer, whatever its status, is stored when the handler is
//! done: "Idempotent requests are blocked regardless of the HTTP response code of
//! the first API call". A 500 injected before the work (and, with
//! [`crate::Knobs::set_rate_limited_keys_blocked`], a 429) is decided once the key
//! is reserved and stored like any other answer. Redirects and outages are
//! answered by the front door and never reach a key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest as _, Path, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::Sandbox;
use super::error::{ApiError, json_response};
use super::faults::{self, Deferred, Delivery, Faults};
use super::knobs::{LookupFailure, MissingResponse};
use super::routing::ReceivedUrl;
use super::state::Shared;

/// How long a key blocks reuse and its answer can be read back.
pub(crate) const KEY_LIFETIME: TimeDelta = TimeDelta::hours(24);

/// The header carrying the key.
pub(crate) const HEADER: &str = "idempotency-key";

/// An answer kept for `GET /responses/{key}`.
#[derive(Debug, Clone)]
pub(crate) struct StoredResponse {
    status: u16,
    body: Bytes,
    content_type: String,
    date: DateTime<Utc>,
    url: String,
}

#[derive(Debug)]
struct Entry {
    first_seen: DateTime<Utc>,
    attempt: u64,
    outcome: Option<StoredResponse>,
}

/// Keys per (ClientId, key), with what each first request answered.
#[derive(Debug, Default)]
pub(crate) struct IdempotencyStore {
    inner: Mutex<Keys>,
}

#[derive(Debug, Default)]
struct Keys {
    entries: HashMap<(String, String), Entry>,
    attempts: u64,
    last_prune: Option<DateTime<Utc>>,
}

impl IdempotencyStore {
    fn lock(&self) -> MutexGuard<'_, Keys> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves `key` for `client`, or reports a conflict if it was seen within
    /// [`KEY_LIFETIME`] (even if that first request is still running or failed).
    fn reserve(&self, client: &str, key: &str, now: DateTime<Utc>) -> Option<u64> {
        let mut keys = self.lock();
        if keys
            .last_prune
            .is_none_or(|at| now - at > TimeDelta::minutes(1))
        {
            keys.entries
                .retain(|_, e| now - e.first_seen < KEY_LIFETIME);
            keys.last_prune = Some(now);
        }
        let id = (client.to_owned(), key.to_owned());
        if keys
            .entries
            .get(&id)
            .is_some_and(|e| now - e.first_seen < KEY_LIFETIME)
        {
            return None;
        }
        keys.attempts += 1;
        let attempt = keys.attempts;
        keys.entries.insert(
            id,
            Entry {
                first_seen: now,
                attempt,
                outcome: None,
            },
        );
        Some(attempt)
    }

    fn complete(&self, client: &str, key: &str, attempt: u64, response: StoredResponse) {
        let mut keys = self.lock();
        if let Some(entry) = keys.entries.get_mut(&(client.to_owned(), key.to_owned()))
            && entry.attempt == attempt
        {
            entry.outcome = Some(response);
        }
    }

    /// Frees a reservation whose request never produced an answer.
    fn release(&self, client: &str, key: &str, attempt: u64) {
        let mut keys = self.lock();
        let id = (client.to_owned(), key.to_owned());
        if keys
            .entries
            .get(&id)
            .is_some_and(|e| e.attempt == attempt && e.outcome.is_none())
        {
            keys.entries.remove(&id);
        }
    }

    /// Whether `key` is taken for `client`, its answer stored or not.
    #[cfg(test)]
    pub(crate) fn is_reserved(&self, client: &str, key: &str) -> bool {
        self.lock()
            .entries
            .contains_key(&(client.to_owned(), key.to_owned()))
    }

    /// Whether an answer is stored for `key` of `client`.
    #[cfg(test)]
    pub(crate) fn has_answer(&self, client: &str, key: &str) -> bool {
        self.lock()
            .entries
            .get(&(client.to_owned(), key.to_owned()))
            .is_some_and(|e| e.outcome.is_some())
    }

    fn lookup(&self, client: &str, key: &str, now: DateTime<Utc>) -> Option<StoredResponse> {
        let keys = self.lock();
        let entry = keys.entries.get(&(client.to_owned(), key.to_owned()))?;
        if now - entry.first_seen >= KEY_LIFETIME {
            return None;
        }
        entry.outcome.clone()
    }
}

/// Releases a reservation if its request's processing is dropped before it is
/// answered (it runs on its own task, so only a panic does that).
struct Reservation {
    shared: Arc<Shared>,
    client: String,
    key: String,
    attempt: u64,
    done: bool,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.done {
            self.shared
                .idempotency
                .release(&self.client, &self.key, self.attempt);
        }
    }
}

/// Whether `key` has Mangopay's format: 16 to 36 characters of `[A-Za-z0-9-]`.
pub(crate) fn key_is_valid(key: &str) -> bool {
    (16..=36).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Middleware on the authenticated routes: reserves the key of a keyed POST,
/// answers 409 on reuse, applies a fault the front door deferred to it, and
/// stores the answer once the handler is done.
pub(crate) async fn reserve_key(
    State(sandbox): State<Sandbox>,
    faults: Faults,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(raw_key) = request.headers().get(HEADER) else {
        return next.run(request).await;
    };
    let key = match raw_key.to_str() {
        Ok(key) if key_is_valid(key) => key.to_owned(),
        _ => {
            return ApiError::param_error(
                "Idempotency-Key",
                "The Idempotency-Key must be between 16 and 36 characters long and contain only alphanumeric characters and dashes",
            )
            .into_response();
        }
    };
    let client = request
        .uri()
        .path()
        .split('/')
        .nth(2)
        .unwrap_or_default()
        .to_owned();
    let url = request
        .extensions()
        .get::<ReceivedUrl>()
        .map_or_else(|| request.uri().to_string(), |u| u.0.clone());
    // A request counts once it has arrived whole: a body that cannot be read
    // reserves nothing.
    let (parts, body) = request.into_parts();
    let body = match Bytes::from_request(Request::from_parts(parts.clone(), body), &()).await {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return ApiError::payload_too_large().into_response();
        }
        Err(rejection) => {
            return ApiError::param_error("Body", rejection.body_text()).into_response();
        }
    };
    let request = Request::from_parts(parts, Body::from(body));
    let now = sandbox.clock().now();
    let Some(attempt) = sandbox.shared().idempotency.reserve(&client, &key, now) else {
        // The request never reaches the point where a deferred fault applies.
        faults.take_deferred();
        return ApiError::idempotency_conflict().into_response();
    };
    let mut reservation = Reservation {
        shared: Arc::clone(sandbox.shared()),
        client,
        key,
        attempt,
        done: false,
    };

    let refused = match faults.take_deferred() {
        Some(Deferred::RateLimited) => Some(Deferred::RateLimited),
        Some(Deferred::MaybeFail) => sandbox
            .knobs()
            .should_fail(&sandbox.shared().rng)
            .then_some(Deferred::MaybeFail),
        None => None,
    };
    let response = match refused {
        Some(refused) => {
            let (response, marker) = faults::refusal(refused);
            faults.mark(marker);
            response
        }
        None => next.run(request).await,
    };
    let (parts, body) = response.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(err) => {
            tracing::error!(%err, "sandbox could not buffer an answer to store it");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "could not buffer the answer",
            )
                .into_response();
        }
    };
    let stored = StoredResponse {
        status: parts.status.as_u16(),
        body: body.clone(),
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        date: sandbox.clock().now(),
        url,
    };
    sandbox.shared().idempotency.complete(
        &reservation.client,
        &reservation.key,
        reservation.attempt,
        stored,
    );
    reservation.done = true;
    Response::from_parts(parts, Body::from(body))
}

/// The "API Response" object.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ApiResponseView {
    status_code: String,
    content_length: String,
    content_type: String,
    date: String,
    #[serde(rename = "RequestURL")]
    request_url: String,
    resource: serde_json::Value,
}

/// `GET /v2.01/{ClientId}/responses/{IdempotencyKey}` (also reached as
/// `/responses//{key}`, which the Python SDK sends). A lookup that finds nothing
/// answers as [`crate::Knobs::set_missing_response`] says; one that
/// [`crate::Knobs::fail_response_lookups`] fails answers that failure instead.
pub(crate) async fn responses_get(
    State(sandbox): State<Sandbox>,
    faults: Faults,
    Path((client_id, key)): Path<(String, String)>,
) -> Response {
    let failure = if faults.marker().is_none() {
        sandbox.knobs().take_lookup_failure()
    } else {
        None
    };
    if let Some(LookupFailure::Status(status)) = failure {
        faults.mark(faults::LOOKUP_FAILED);
        return ApiError::lookup_failure(status, &key).into_response();
    }
    let stored = sandbox
        .shared()
        .idempotency
        .lookup(&client_id, &key, sandbox.clock().now());
    let answer = match stored {
        Some(stored) => replay(stored),
        None => match sandbox.knobs().missing_response() {
            MissingResponse::CorrelationIdNotFound => ApiError::correlation_id_not_found(&key),
            MissingResponse::RessourceNotFound => ApiError::response_not_found(&key),
        }
        .into_response(),
    };
    if failure == Some(LookupFailure::Hang) {
        faults.mark(faults::LOOKUP_FAILED);
        faults.deliver(Delivery::Withhold);
    }
    answer
}

/// The "API Response" object of a stored answer.
fn replay(stored: StoredResponse) -> Response {
    let resource = serde_json::from_slice(&stored.body).unwrap_or(serde_json::Value::Null);
    let view = ApiResponseView {
        status_code: stored.status.to_string(),
        content_length: stored.body.len().to_string(),
        content_type: stored.content_type,
        date: stored.date.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
        request_url: stored.url,
        resource,
    };
    json_response(StatusCode::OK, &view)
}
