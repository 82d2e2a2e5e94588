//! Errors from the Mangopay API, carrying Mangopay's error body, each classified as worth
//! retrying or not.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Mangopay's error report: `Message`, `Type`, `Id`, `Date` and the per-field `errors`.
///
/// It is stored as-is (JSON) on the row whose operation failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, in Mangopay's words.
    #[serde(rename = "Message", default)]
    pub message: Option<String>,
    /// The error's type, such as `param_error` or `ressource_not_found` (sic).
    #[serde(rename = "Type", default)]
    pub kind: Option<String>,
    /// Mangopay's identifier of this error, for its support team.
    #[serde(rename = "Id", default)]
    pub id: Option<String>,
    /// When it happened (Unix seconds).
    #[serde(rename = "Date", default, deserialize_with = "unix_seconds")]
    pub date: Option<i64>,
    /// Field name → problem, for `param_error`.
    #[serde(
        rename = "errors",
        alias = "Errors",
        default,
        deserialize_with = "field_errors"
    )]
    pub errors: BTreeMap<String, String>,
}

impl ErrorBody {
    /// Parses an error body; OAuth's `{"error", "error_description"}` shape is mapped onto
    /// `Type` and `Message`. `None` when the body is not a JSON object.
    pub fn parse(bytes: &[u8]) -> Option<ErrorBody> {
        let value: Value = serde_json::from_slice(bytes).ok()?;
        let obj = value.as_object()?;
        let mut body: ErrorBody = serde_json::from_value(value.clone()).ok()?;
        if body.message.is_none() && body.kind.is_none() {
            body.kind = obj.get("error").and_then(Value::as_str).map(str::to_owned);
            body.message = obj
                .get("error_description")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        Some(body)
    }
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({})",
            self.message.as_deref().unwrap_or("no message"),
            self.kind.as_deref().unwrap_or("no type")
        )?;
        for (field, problem) in &self.errors {
            write!(f, "; {field}: {problem}")?;
        }
        Ok(())
    }
}

/// Mangopay sends `Date` as an integer, sometimes as a float (`1690291065.0`).
fn unix_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Some(Value::String(s)) => s.parse::<f64>().ok().map(|f| f as i64),
        _ => None,
    })
}

fn field_errors<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Object(map)) => map
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect(),
        _ => BTreeMap::new(),
    })
}

/// A failed call to the Mangopay API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// Mangopay answered with an error status and its error report.
    #[error("Mangopay answered {status}{}: {body}", if *.replayed { " (replayed by idempotency key)" } else { "" })]
    Mangopay {
        /// The HTTP status.
        status: u16,
        /// Mangopay's error report.
        body: Box<ErrorBody>,
        /// The answer is the stored first answer to an earlier request with the same
        /// idempotency key, read back from `GET /responses/{key}`.
        replayed: bool,
        /// When to try again, for 429 answers (from the rate-limit headers).
        retry_after: Option<Duration>,
    },
    /// An error status whose body is not Mangopay's error report (a proxy or gateway error).
    #[error("Mangopay answered {status} with an unexpected body: {body}")]
    UnexpectedResponse {
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// A success status whose body could not be read as the expected JSON.
    #[error("could not read Mangopay's answer ({status}): {message}")]
    Decode {
        /// The HTTP status.
        status: u16,
        /// What did not parse.
        message: String,
    },
    /// The request did not complete: connection refused, reset, or timed out.
    #[error("could not reach Mangopay: {0}")]
    Transport(#[source] reqwest::Error),
    /// The rate budget is used up until `until`, as Mangopay said (a 429, or a window with no
    /// call left) or as the client's own count says ([`RateBudget`](super::RateBudget));
    /// nothing was sent.
    #[error("Mangopay rate limit used up until {until}; nothing was sent")]
    RateLimited {
        /// When the exhausted windows reset.
        until: DateTime<Utc>,
    },
    /// A request was answered 409 for its idempotency key and the first answer could not be
    /// read back (`GET /responses/{key}` failed: not stored yet, lost, forbidden, a timeout,
    /// an unreadable body). Whether the first request did anything is unknown.
    #[error(
        "idempotency key {key} was used before and its first answer cannot be read back: {source}"
    )]
    ReplayUnavailable {
        /// The idempotency key.
        key: String,
        /// Why the look-up failed.
        #[source]
        source: Box<ApiError>,
    },
    /// The HTTP client could not be set up. The source is the underlying error: reqwest's
    /// when the client did not build, rustls' when the TLS configuration did not.
    #[error("could not set up the HTTP client: {0}")]
    Setup(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// No bearer token could be had, so the call was not sent. Every call that was waiting for
    /// the same token request gets this error, sharing the one `source`.
    ///
    /// [`status`](ApiError::status), [`body`](ApiError::body),
    /// [`retry_after`](ApiError::retry_after), [`to_stored`](ApiError::to_stored) and
    /// [`is_retryable`](ApiError::is_retryable) are those of `source`;
    /// [`never_sent`](ApiError::never_sent) is always true.
    #[error("could not get a bearer token: {source}")]
    TokenUnavailable {
        /// Why the token request failed.
        source: Arc<ApiError>,
    },
}

impl ApiError {
    /// The HTTP status Mangopay answered with, if it answered (for
    /// [`ApiError::TokenUnavailable`], the token endpoint's answer).
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Mangopay { status, .. }
            | ApiError::UnexpectedResponse { status, .. }
            | ApiError::Decode { status, .. } => Some(*status),
            ApiError::TokenUnavailable { source } => source.status(),
            _ => None,
        }
    }

    /// Mangopay's error report, when there is one.
    pub fn body(&self) -> Option<&ErrorBody> {
        match self {
            ApiError::Mangopay { body, .. } => Some(body),
            ApiError::TokenUnavailable { source } => source.body(),
            _ => None,
        }
    }

    /// Whether trying again later may succeed: timeouts and connection failures, 5xx, 408,
    /// 429, an unreadable success, a 409 whose first answer cannot be read yet. A create that
    /// failed this way is retried by the sync core with the same key (or looked up and
    /// reconciled), never blindly with a new one.
    pub fn is_retryable(&self) -> bool {
        match self {
            ApiError::Mangopay { status, .. } | ApiError::UnexpectedResponse { status, .. } => {
                retryable_status(*status)
            }
            ApiError::Transport(e) => !e.is_builder(),
            ApiError::RateLimited { .. }
            | ApiError::ReplayUnavailable { .. }
            | ApiError::Decode { .. } => true,
            ApiError::Setup(_) => false,
            ApiError::TokenUnavailable { source } => source.is_retryable(),
        }
    }

    /// Whether this is the stored first answer to an earlier request with the same
    /// idempotency key, read back after a 409.
    pub fn replayed(&self) -> bool {
        matches!(self, ApiError::Mangopay { replayed: true, .. })
    }

    /// Whether the request certainly never reached Mangopay: refused by this client (rate
    /// limit, bad setup) or a connection that could not be opened.
    pub fn never_sent(&self) -> bool {
        match self {
            ApiError::RateLimited { .. }
            | ApiError::Setup(_)
            | ApiError::TokenUnavailable { .. } => true,
            ApiError::Transport(e) => e.is_builder() || e.is_connect(),
            _ => false,
        }
    }

    /// How long to wait before retrying, when Mangopay said so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Mangopay { retry_after, .. } => *retry_after,
            ApiError::RateLimited { until } => (*until - Utc::now()).to_std().ok(),
            ApiError::TokenUnavailable { source } => source.retry_after(),
            _ => None,
        }
    }

    /// The error as stored on a row: Mangopay's report when there is one, otherwise a report in
    /// the same shape (`Type` `transport_error`, `unexpected_response`, ...).
    pub fn to_stored(&self) -> ErrorBody {
        let synthetic = |kind: &str| ErrorBody {
            message: Some(self.to_string()),
            kind: Some(kind.to_owned()),
            id: None,
            date: Some(Utc::now().timestamp()),
            errors: BTreeMap::new(),
        };
        match self {
            ApiError::Mangopay { body, .. } => (**body).clone(),
            ApiError::UnexpectedResponse { .. } => synthetic("unexpected_response"),
            ApiError::Decode { .. } => synthetic("decode_error"),
            ApiError::Transport(_) => synthetic("transport_error"),
            ApiError::RateLimited { .. } => synthetic("rate_limit"),
            ApiError::ReplayUnavailable { .. } => synthetic("replay_unavailable"),
            ApiError::Setup(_) => synthetic("client_setup"),
            ApiError::TokenUnavailable { source } => match &**source {
                ApiError::Mangopay { body, .. } => (**body).clone(),
                other => ErrorBody {
                    message: Some(self.to_string()),
                    ..other.to_stored()
                },
            },
        }
    }
}

fn retryable_status(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mangopay(status: u16, replayed: bool) -> ApiError {
        ApiError::Mangopay {
            status,
            body: Box::default(),
            replayed,
            retry_after: None,
        }
    }

    #[test]
    fn parses_documented_error_reports() {
        let body = ErrorBody::parse(br#"{"Message":"One or several required parameters are missing or incorrect.","Type":"param_error","Id":"5e83fbe8#1","Date":1740581497.0,"errors":{"CreditedWalletId":"The CreditedWalletId field is required."}}"#).unwrap();
        assert_eq!(body.kind.as_deref(), Some("param_error"));
        assert_eq!(body.date, Some(1740581497));
        assert_eq!(
            body.errors["CreditedWalletId"],
            "The CreditedWalletId field is required."
        );
        let conflict = ErrorBody::parse(br#"{"Message":"A resource has already been created with this Idempotency Key","Type":"idempotent_creation_conflict","Id":"x","Date":1452723944,"errors":null}"#).unwrap();
        assert!(conflict.errors.is_empty());
        let oauth = ErrorBody::parse(br#"{"error":"unauthorized_client","error_description":"This account has been temporarily locked"}"#).unwrap();
        assert_eq!(oauth.kind.as_deref(), Some("unauthorized_client"));
        assert!(ErrorBody::parse(b"<html>502</html>").is_none());
    }

    #[test]
    fn classifies_retryable_and_definitive_errors() {
        for s in [500, 502, 503, 408, 429] {
            assert!(mangopay(s, false).is_retryable(), "{s}");
            assert!(mangopay(s, true).is_retryable(), "{s}");
            assert!(!mangopay(s, false).never_sent(), "{s}");
        }
        for s in [307, 400, 401, 403, 404, 422] {
            assert!(!mangopay(s, false).is_retryable(), "{s}");
        }
        assert!(mangopay(500, true).replayed() && !mangopay(500, false).replayed());
        let lost = ApiError::ReplayUnavailable {
            key: "k".into(),
            source: Box::new(mangopay(404, false)),
        };
        assert!(lost.is_retryable() && !lost.never_sent());
        assert!(std::error::Error::source(&lost).is_some());
        let until = Utc::now() + chrono::Duration::seconds(60);
        let limited = ApiError::RateLimited { until };
        assert!(limited.is_retryable() && limited.never_sent());
        assert!(limited.retry_after().unwrap() <= Duration::from_secs(60));
        assert_eq!(limited.to_stored().kind.as_deref(), Some("rate_limit"));
        // A redirect: the request was not processed where it was sent, and sending it again
        // gets the same redirect.
        for s in [301, 302, 307, 308] {
            let redirect = ApiError::UnexpectedResponse {
                status: s,
                body: String::new(),
            };
            assert!(!redirect.is_retryable(), "{s}");
            assert!(!mangopay(s, false).is_retryable(), "{s}");
            assert_eq!(redirect.status(), Some(s));
        }
    }

    #[test]
    fn a_missing_token_follows_the_token_requests_error() {
        use std::error::Error as _;

        let down = Arc::new(mangopay(503, false));
        let unavailable = ApiError::TokenUnavailable {
            source: down.clone(),
        };
        assert!(unavailable.is_retryable());
        assert!(unavailable.never_sent(), "the call itself was not sent");
        assert_eq!(unavailable.status(), Some(503));
        assert!(
            unavailable
                .to_string()
                .starts_with("could not get a bearer token: Mangopay answered 503")
        );
        let source = unavailable.source().expect("a source");
        assert_eq!(source.to_string(), down.to_string());
        assert!(
            source
                .downcast_ref::<Arc<ApiError>>()
                .is_some_and(|s| Arc::ptr_eq(s, &down))
        );

        let refused = ApiError::TokenUnavailable {
            source: Arc::new(ApiError::Mangopay {
                status: 401,
                body: Box::new(ErrorBody {
                    kind: Some("invalid_credentials".into()),
                    ..ErrorBody::default()
                }),
                replayed: false,
                retry_after: None,
            }),
        };
        assert!(!refused.is_retryable() && refused.never_sent());
        assert_eq!(
            refused.body().unwrap().kind.as_deref(),
            Some("invalid_credentials")
        );
        assert_eq!(
            refused.to_stored().kind.as_deref(),
            Some("invalid_credentials")
        );

        let limited = ApiError::TokenUnavailable {
            source: Arc::new(ApiError::RateLimited {
                until: Utc::now() + chrono::Duration::seconds(30),
            }),
        };
        assert!(limited.retry_after().is_some());
        let stored = limited.to_stored();
        assert_eq!(stored.kind.as_deref(), Some("rate_limit"));
        assert!(
            stored
                .message
                .unwrap()
                .starts_with("could not get a bearer token")
        );
    }

    #[test]
    fn setup_errors_keep_their_cause() {
        use std::error::Error as _;

        let cause = reqwest::Client::builder()
            .tls_backend_preconfigured(())
            .build()
            .unwrap_err();
        let message = cause.to_string();
        let error = ApiError::Setup(Box::new(cause));
        let source = error.source().expect("a source");
        assert!(source.is::<reqwest::Error>());
        assert_eq!(source.to_string(), message);
        assert!(!error.is_retryable() && error.never_sent());
    }
}
