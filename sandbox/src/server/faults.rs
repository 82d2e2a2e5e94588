//! Injected faults along one request: what the front door decided before routing, what
//! the key reservation and the handlers did with it, and how the answer travels back.
//!
//! The front door puts a [`Faults`] cell in every request's extensions. The key
//! reservation takes a deferred fault from it (so the fault is stored against the key),
//! [`work`] (wrapped around every handler) applies the handler delay and the faults
//! after the work, and the front door reads the cell back to log the fault marker and to
//! deliver, drop or withhold the answer.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::Frame;

use super::Sandbox;
use super::connection::Connection;
use super::error::ApiError;
use super::knobs::AnswerLoss;
use super::routing::TOKEN_PATH;

/// Marker of a 500 answered (and stored) before the work.
pub(crate) const FAILED_BEFORE_WORK: &str = "failed_before_work";
/// Marker of a 500 answered (and stored) instead of the real answer, after the work.
pub(crate) const FAILED_AFTER_WORK: &str = "failed_after_work";
/// Marker of an answer lost by closing the connection.
pub(crate) const ANSWER_DROPPED: &str = "answer_dropped";
/// Marker of an answer withheld on an open connection.
pub(crate) const ANSWER_WITHHELD: &str = "answer_withheld";
/// Marker of an answer whose body arrived damaged.
pub(crate) const ANSWER_GARBLED: &str = "answer_garbled";
/// Marker of a 503 from the front door.
pub(crate) const UNAVAILABLE: &str = "unavailable";
/// Marker of a 307 from the front door.
pub(crate) const REDIRECTED: &str = "redirected";
/// Marker of an injected failure of `GET /responses/{key}`.
pub(crate) const LOOKUP_FAILED: &str = "lookup_failed";
/// Marker of a 429 from the rate limiter.
pub(crate) const RATE_LIMITED: &str = "rate_limited";

/// What a garbled answer's body is: JSON cut short.
pub(crate) const GARBLED_BODY: &str = "{\"Id\": \"user_m_01";

/// The longest an answer is withheld.
pub(crate) const HANG_CAP: Duration = Duration::from_secs(10 * 60);

/// A fault the front door leaves to the key reservation of a keyed POST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deferred {
    /// The rate limiter refused the request; the 429 is stored against the key.
    RateLimited,
    /// Whether the request fails before the work is drawn once its key is reserved.
    MaybeFail,
}

/// How the answer travels back to the client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Delivery {
    #[default]
    Send,
    Close,
    Withhold,
    Garble,
}

impl From<AnswerLoss> for Delivery {
    fn from(loss: AnswerLoss) -> Delivery {
        match loss {
            AnswerLoss::Close => Delivery::Close,
            AnswerLoss::Hang => Delivery::Withhold,
            AnswerLoss::Garble => Delivery::Garble,
        }
    }
}

#[derive(Debug, Default)]
struct FaultState {
    deferred: Option<Deferred>,
    marker: Option<&'static str>,
    delivery: Delivery,
}

/// The fault state of one request, shared by the layers it passes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Faults(Arc<Mutex<FaultState>>);

impl Faults {
    fn lock(&self) -> MutexGuard<'_, FaultState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Leaves `deferred` to the key reservation.
    pub(crate) fn defer(&self, deferred: Deferred) {
        self.lock().deferred = Some(deferred);
    }

    /// Takes the deferred fault, if nobody took it yet.
    pub(crate) fn take_deferred(&self) -> Option<Deferred> {
        self.lock().deferred.take()
    }

    /// Records the fault that shaped the answer.
    pub(crate) fn mark(&self, marker: &'static str) {
        self.lock().marker = Some(marker);
    }

    /// The fault that shaped the answer so far.
    pub(crate) fn marker(&self) -> Option<&'static str> {
        self.lock().marker
    }

    /// Asks the front door to drop or withhold the answer.
    pub(crate) fn deliver(&self, delivery: Delivery) {
        self.lock().delivery = delivery;
    }

    /// The marker and the delivery decided for the request.
    pub(crate) fn outcome(&self) -> (Option<&'static str>, Delivery) {
        let state = self.lock();
        (state.marker, state.delivery)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Faults {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Faults, Infallible> {
        Ok(parts
            .extensions
            .get::<Faults>()
            .cloned()
            .unwrap_or_default())
    }
}

/// The answer of a request refused before the work: 429 or 500.
pub(crate) fn refusal(deferred: Deferred) -> (Response, &'static str) {
    match deferred {
        Deferred::RateLimited => (ApiError::rate_limited().into_response(), RATE_LIMITED),
        Deferred::MaybeFail => (
            ApiError::injected_failure().into_response(),
            FAILED_BEFORE_WORK,
        ),
    }
}

/// `307 Temporary Redirect` to `location`, with an empty body.
pub(crate) fn redirect(location: &str) -> Response {
    let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
    match header::HeaderValue::from_str(location) {
        Ok(value) => {
            response.headers_mut().insert(header::LOCATION, value);
        }
        Err(_) => tracing::warn!(location, "sandbox redirect location is not a valid header"),
    }
    response
}

/// Middleware around every handler (the innermost layer, after authentication and the
/// key reservation): the handler delay, the 500 after the work and the answer losses.
pub(crate) async fn work(State(sandbox): State<Sandbox>, request: Request, next: Next) -> Response {
    let knobs = sandbox.knobs();
    let faults = request
        .extensions()
        .get::<Faults>()
        .cloned()
        .unwrap_or_default();
    let delay = knobs.handler_delay();
    let is_write = request.method() == Method::POST || request.method() == Method::PUT;
    if delay > Duration::ZERO && is_write && request.uri().path() != TOKEN_PATH {
        tokio::time::sleep(delay).await;
    }
    if knobs.take_failure_after_work() {
        faults.mark(FAILED_AFTER_WORK);
        // The work is done; its answer is lost.
        drop(next.run(request).await);
        return ApiError::injected_failure().into_response();
    }
    let response = next.run(request).await;
    if faults.marker().is_none()
        && let Some(loss) = knobs.take_answer_loss()
    {
        faults.mark(match loss {
            AnswerLoss::Close => ANSWER_DROPPED,
            AnswerLoss::Hang => ANSWER_WITHHELD,
            AnswerLoss::Garble => ANSWER_GARBLED,
        });
        faults.deliver(loss.into());
    }
    response
}

/// Sends `response`, or loses it as `delivery` says: closing `connection` without an
/// answer, or holding it open until the client gives up, the server stops or
/// [`HANG_CAP`] passes, then closing it without an answer.
pub(crate) async fn deliver(
    response: Response,
    delivery: Delivery,
    connection: Option<Connection>,
) -> Response {
    match delivery {
        Delivery::Send => return response,
        Delivery::Garble => {
            let (mut parts, _) = response.into_parts();
            parts.headers.remove(header::CONTENT_LENGTH);
            return Response::from_parts(parts, Body::from(GARBLED_BODY));
        }
        Delivery::Close => {}
        Delivery::Withhold => match &connection {
            Some(connection) => {
                tokio::select! {
                    () = tokio::time::sleep(HANG_CAP) => {}
                    () = connection.server_stopping() => {}
                }
            }
            None => tokio::time::sleep(HANG_CAP).await,
        },
    }
    match connection {
        Some(connection) => {
            connection.close();
            response
        }
        None => {
            // No connection to close (a router served some other way): a body that fails
            // at once makes hyper drop the connection before writing the response.
            let (parts, _) = response.into_parts();
            Response::from_parts(parts, Body::new(FailingBody))
        }
    }
}

/// A response body whose first read fails.
struct FailingBody;

impl HttpBody for FailingBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "the sandbox dropped this answer",
        ))))
    }
}
