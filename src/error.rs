//! The crate-level error: what a model method or a job can fail with.

use chrono::{DateTime, Utc};

use crate::{ApiError, ConfigError, DbError, ValidationErrors};

/// Everything a model operation can fail with.
///
/// [`Error::is_retryable`] tells a job runner whether trying the same operation again later can
/// succeed (a timeout, a 5xx, a rate limit) or whether a person has to look at the row first
/// (bad input, a 4xx from Mangopay).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model's fields were rejected before anything was sent or written.
    #[error("invalid input: {0}")]
    Validation(#[from] ValidationErrors),
    /// The Mangopay API answered with an error, or could not be reached.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The database could not be reached or a query failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Configuration is missing or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The operation needs a saved row, and this model has never been saved.
    #[error("{model} has not been saved yet: call save() first")]
    NotSaved {
        /// The model's name.
        model: &'static str,
    },
    /// No row with this id exists (for this model).
    #[error("{model} with id {id} does not exist")]
    NotFound {
        /// The model's name.
        model: &'static str,
        /// The local id that was looked up.
        id: i64,
    },
    /// The operation needs the object to exist at Mangopay, and it has not been created yet.
    #[error("{model} {id} has not been created at Mangopay yet (no mangopay_id)")]
    NotCreated {
        /// The model's name.
        model: &'static str,
        /// The local id.
        id: i64,
    },
    /// A create was started more than Mangopay's 24 hour idempotency window ago and never
    /// confirmed. Sending it again could create a duplicate, so the row needs a person to check
    /// the Mangopay dashboard first.
    #[error(
        "{model} {id}: the create started at {started_at} with idempotency key {key} is older than \
         Mangopay's 24 h idempotency window; check Mangopay before retrying"
    )]
    IdempotencyWindowExpired {
        /// The model's name.
        model: &'static str,
        /// The local id.
        id: i64,
        /// The key the create was sent with.
        key: String,
        /// When the key was committed.
        started_at: DateTime<Utc>,
    },
}

impl Error {
    /// Whether the same operation may succeed if tried again later without any change.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api(e) => e.is_retryable(),
            Error::Db(e) => e.is_retryable(),
            Error::Validation(_)
            | Error::Config(_)
            | Error::NotSaved { .. }
            | Error::NotFound { .. }
            | Error::NotCreated { .. }
            | Error::IdempotencyWindowExpired { .. } => false,
        }
    }

    /// The field errors, when this is a validation error (ours, not Mangopay's).
    pub fn validation(&self) -> Option<&ValidationErrors> {
        match self {
            Error::Validation(v) => Some(v),
            _ => None,
        }
    }

    /// The Mangopay API error, if this is one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }
}
