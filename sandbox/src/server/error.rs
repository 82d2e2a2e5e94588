//! The sandbox's one error type, [`ApiError`], and the only place where Mangopay's
//! error report (`Message`, `Type`, `Id`, `Date`, `errors`) is rendered.
//!
//! Errors are stamped with the sandbox answering them: the front door runs every request
//! inside [`in_context`], so [`ApiError::into_response`] can read that sandbox's clock and
//! draw the report's `Id` from its seeded generator without every call site passing them
//! around.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::RngExt as _;
use rand::rngs::StdRng;
use serde::Serialize;

use super::clock::Clock;

/// What a request's answers are stamped with: the clock and generator of its sandbox.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub(crate) clock: Clock,
    pub(crate) rng: Arc<Mutex<StdRng>>,
}

tokio::task_local! {
    static CONTEXT: Context;
}

/// Runs `fut` with `context` stamping the errors it renders.
pub(crate) async fn in_context<F: Future>(context: Context, fut: F) -> F::Output {
    CONTEXT.scope(context, fut).await
}

/// The context of the request being answered, if any.
pub(crate) fn current_context() -> Option<Context> {
    CONTEXT.try_with(Context::clone).ok()
}

/// The Unix time of the sandbox answering the current request (the wall clock
/// outside of a request).
pub(crate) fn current_unix_time() -> i64 {
    CONTEXT
        .try_with(|context| context.clock.now().timestamp())
        .unwrap_or_else(|_| chrono::Utc::now().timestamp())
}

/// An error report `Id`: `<uuid>#<unix>` as Mangopay writes them, the UUID's bytes from the
/// answering sandbox's generator (a fresh OS-seeded one outside of a request).
fn report_id(date: i64) -> String {
    let bytes: [u8; 16] = CONTEXT
        .try_with(|context| {
            context
                .rng
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .random()
        })
        .unwrap_or_else(|_| rand::make_rng::<StdRng>().random());
    let uuid = uuid::Builder::from_random_bytes(bytes).into_uuid();
    format!("{uuid}#{date}")
}

/// The `Message` of every `param_error`, as the Mangopay documentation words it.
pub(crate) const PARAM_ERROR_MESSAGE: &str = "One or several required parameters are missing or incorrect. An incorrect resource ID also raises this kind of error.";

/// Field problems collected during validation: API field name → message.
pub(crate) type FieldErrors = BTreeMap<String, String>;

/// An error answered in Mangopay's error-report format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    kind: &'static str,
    errors: Option<FieldErrors>,
    style: ReportStyle,
}

/// How an error report is written: most of the API writes `errors` and a `<uuid>#<unix>`
/// `Id`; the Recipients endpoints write `Errors` and a bare UUID, as their reference pages
/// show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReportStyle {
    Classic,
    Recipients,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            kind,
            errors: None,
            style: ReportStyle::Classic,
        }
    }

    /// 400 `param_error` listing every field problem found.
    pub(crate) fn param_errors(errors: FieldErrors) -> ApiError {
        ApiError {
            errors: Some(errors),
            ..ApiError::new(StatusCode::BAD_REQUEST, "param_error", PARAM_ERROR_MESSAGE)
        }
    }

    /// 400 `param_error` about a single field.
    pub(crate) fn param_error(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::param_errors(FieldErrors::from([(field.to_owned(), message.into())]))
    }

    /// 401 `invalid_credentials`.
    pub(crate) fn invalid_credentials() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "The authorization credentials are not valid",
        )
    }

    /// 404 `ressource_not_found` (Mangopay's spelling) for a resource kind and id.
    pub(crate) fn not_found(resource: &str, id: &str) -> ApiError {
        ApiError {
            errors: Some(FieldErrors::from([(
                "RessourceNotFound".to_owned(),
                format!("Cannot found the ressource {resource} with the id={id}"),
            )])),
            ..ApiError::new(
                StatusCode::NOT_FOUND,
                "ressource_not_found",
                "The ressource does not exist",
            )
        }
    }

    /// 400 `user_hasnt_accepted_terms_and_conditions`.
    pub(crate) fn terms_not_accepted() -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "user_hasnt_accepted_terms_and_conditions",
            "User must accept the terms and conditions before account creation or modification.",
        )
    }

    /// 400 `invalid_action`: a user tried to take back its acceptance of the terms.
    pub(crate) fn terms_revoked() -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_action",
            "The user cannot revoke the terms and conditions acceptance",
        )
    }

    /// 400 `invalid_action` with `errors: null`, e.g. a pay-out to a `PAYIN` recipient.
    pub(crate) fn invalid_action(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_action", message)
    }

    /// 400 `param_error` as the Recipients endpoints write it: `Errors` maps each field
    /// (dotted for nested ones, e.g. `IndividualRecipient.Address.City`) to a code such as
    /// `REQUIRED` or `INVALID_FORMAT`.
    pub(crate) fn recipient_errors(errors: FieldErrors) -> ApiError {
        ApiError {
            errors: Some(errors),
            style: ReportStyle::Recipients,
            ..ApiError::new(StatusCode::BAD_REQUEST, "param_error", PARAM_ERROR_MESSAGE)
        }
    }

    /// 400 `other` "Invalid State" with `Errors: null`: a recipient that is not in the
    /// status the change needs.
    pub(crate) fn recipient_invalid_state() -> ApiError {
        ApiError {
            style: ReportStyle::Recipients,
            ..ApiError::new(StatusCode::BAD_REQUEST, "other", "Invalid State")
        }
    }

    /// The problem in words, for the Rust side of control requests: each field's message,
    /// or the report's `Message` when it names no field.
    pub(crate) fn describe(&self) -> String {
        match &self.errors {
            Some(errors) if !errors.is_empty() => errors
                .iter()
                .map(|(field, message)| format!("{field}: {message}"))
                .collect::<Vec<_>>()
                .join("; "),
            _ => self.message.clone(),
        }
    }

    /// 409 `idempotent_creation_conflict`.
    pub(crate) fn idempotency_conflict() -> ApiError {
        ApiError::new(
            StatusCode::CONFLICT,
            "idempotent_creation_conflict",
            "A resource has already been created with this Idempotency Key",
        )
    }

    /// 404 `ressource_not_found` for an idempotency key with no stored response.
    pub(crate) fn response_not_found(key: &str) -> ApiError {
        ApiError::not_found("Response", key)
    }

    /// 503 `service_unavailable`: the gateway answers instead of the API.
    pub(crate) fn unavailable() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "The service is temporarily unavailable. Please try again later.",
        )
    }

    /// An injected failure of `GET /responses/{key}` with `status` (400..=599, else 500)
    /// and the `Type` Mangopay uses for that status.
    pub(crate) fn lookup_failure(status: u16, key: &str) -> ApiError {
        let status = StatusCode::from_u16(status)
            .ok()
            .filter(|s| s.is_client_error() || s.is_server_error())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match status.as_u16() {
            400 => ApiError::param_error(
                "IdempotencyKey",
                format!("The response for the idempotency key {key} could not be read."),
            ),
            401 => ApiError::invalid_credentials(),
            403 => ApiError::new(
                status,
                "forbidden_ressource",
                "This endpoint is not available for your account",
            ),
            404 => ApiError::response_not_found(key),
            405 => ApiError::method_not_allowed("GET"),
            409 => ApiError::idempotency_conflict(),
            429 => ApiError::rate_limited(),
            500 => ApiError::injected_failure(),
            503 => ApiError::unavailable(),
            _ if status.is_client_error() => ApiError::new(
                status,
                "bad_request",
                status
                    .canonical_reason()
                    .unwrap_or("The request could not be processed"),
            ),
            _ => ApiError {
                status,
                ..ApiError::injected_failure()
            },
        }
    }

    /// 400 `correlationid_not_found`: no stored response for that idempotency key.
    pub(crate) fn correlation_id_not_found(key: &str) -> ApiError {
        ApiError {
            errors: Some(FieldErrors::from([(
                "IdempotencyKey".to_owned(),
                format!("No response was found for the idempotency key {key}"),
            )])),
            ..ApiError::new(
                StatusCode::BAD_REQUEST,
                "correlationid_not_found",
                "Cannot find the API response for this idempotency key",
            )
        }
    }

    /// 429 `rate_limit`.
    pub(crate) fn rate_limited() -> ApiError {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit",
            "Rate limit exceeded. Please contact support for more assistance",
        )
    }

    /// 500 injected by the knobs.
    pub(crate) fn injected_failure() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_server_error",
            "An internal error occurred. Please try again later.",
        )
    }

    /// 501 for a Mangopay route this sandbox does not emulate. Never 404: the
    /// Python SDK reads a 404 as a successful answer.
    pub(crate) fn not_implemented(method: &str, path: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "not_implemented",
            format!("Not implemented by the diesel-mangopay sandbox: {method} {path}"),
        )
    }

    /// 405 for a known path called with a method it does not accept.
    pub(crate) fn method_not_allowed(method: &str) -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("The requested resource does not support http method '{method}'."),
        )
    }

    /// 400 `max_page_number` with `errors: null`: a KYC document already has its most pages.
    pub(crate) fn max_page_number(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "max_page_number", message)
    }

    /// 415 `unsupported_media_type` naming `field`: a KYC page's file is none of the accepted
    /// formats. The reference gives the status ("wrong file format for KYC document file")
    /// but no body; this one follows the error report's shape.
    pub(crate) fn unsupported_media_type(field: &str, message: impl Into<String>) -> ApiError {
        let message = message.into();
        ApiError {
            errors: Some(FieldErrors::from([(field.to_owned(), message.clone())])),
            ..ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                message,
            )
        }
    }

    /// 413 for a body above the sandbox's limit.
    pub(crate) fn payload_too_large() -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "The request entity is larger than the server is able to process",
        )
    }
}

/// The refusals of money movements (transfers, pay-outs).
impl ApiError {
    /// 400 `currency_incompatibility`: currencies that must match do not; `detail` is the
    /// `errors.currency` message, e.g. "The Debited Wallet's currency EUR and the Credited
    /// Wallet's currency GBP must be the same".
    pub(crate) fn currency_incompatibility(detail: impl Into<String>) -> ApiError {
        ApiError {
            errors: Some(FieldErrors::from([("currency".to_owned(), detail.into())])),
            ..ApiError::new(
                StatusCode::BAD_REQUEST,
                "currency_incompatibility",
                "Error: multi-currency usage is not authorized",
            )
        }
    }

    /// 400 `author_is_not_debited_wallet_owner`, with `errors: null`.
    pub(crate) fn author_is_not_debited_wallet_owner(author: &str, wallet: &str) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "author_is_not_debited_wallet_owner",
            format!("Author {author} is not debited wallet {wallet} owner."),
        )
    }
}

/// The refusals of card operations.
impl ApiError {
    /// 400 `card_already_not_active`, with `errors: null`: a deactivated card deactivated again.
    pub(crate) fn card_already_not_active() -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "card_already_not_active",
            "The card has already been deactivated",
        )
    }

    /// 400 `param_error` naming `CardId`, its `Message` saying why: a pay-in with a card that
    /// is deactivated (`The card is not active`) or not its author's.
    pub(crate) fn card_refused(message: &str) -> ApiError {
        ApiError {
            errors: Some(FieldErrors::from([(
                "CardId".to_owned(),
                message.to_owned(),
            )])),
            ..ApiError::new(StatusCode::BAD_REQUEST, "param_error", message)
        }
    }
}

#[derive(Serialize)]
struct ErrorReport<'a> {
    #[serde(rename = "Message")]
    message: &'a str,
    #[serde(rename = "Type")]
    kind: &'a str,
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "Date")]
    date: i64,
    errors: Option<&'a FieldErrors>,
}

/// The error report of the Recipients endpoints, keys in their documentation's order.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RecipientErrorReport<'a> {
    id: String,
    message: &'a str,
    #[serde(rename = "Type")]
    kind: &'a str,
    date: i64,
    errors: Option<&'a FieldErrors>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let date = current_unix_time();
        if self.style == ReportStyle::Recipients {
            let id = report_id(date);
            let report = RecipientErrorReport {
                id: id
                    .split_once('#')
                    .map_or(id.as_str(), |(uuid, _)| uuid)
                    .to_owned(),
                message: &self.message,
                kind: self.kind,
                date,
                errors: self.errors.as_ref(),
            };
            return json_response(self.status, &report);
        }
        let report = ErrorReport {
            message: &self.message,
            kind: self.kind,
            id: report_id(date),
            date,
            errors: self.errors.as_ref(),
        };
        json_response(self.status, &report)
    }
}

/// The content type of every JSON answer, as the real API sends it.
pub(crate) const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// Serializes `body` into a JSON response with Mangopay's content type.
pub(crate) fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut response = (status, bytes).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(JSON_CONTENT_TYPE),
            );
            response
        }
        Err(err) => {
            tracing::error!(%err, "sandbox could not serialize a response body");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
