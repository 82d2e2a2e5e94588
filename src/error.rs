//! The crate-level error: what a model method or a job can fail with.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::{ApiError, ConfigError, DbError, ValidationErrors};

/// Everything a model operation can fail with.
///
/// [`Error::is_retryable`] tells a job runner whether trying the same operation again later can
/// succeed (a timeout, a 5xx, a rate limit, a row held by another worker) or whether a person
/// has to look at the row first (bad input, a 4xx from Mangopay, an outcome only an operator
/// can settle). [`Error::retry_after`] says when, where it is known.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    /// The operation needs another object (a parent: the user, the wallet, the bank account)
    /// created at Mangopay first. Nothing was written or sent. Retryable: the parent's own
    /// create may be under way.
    #[error("{model}.{field}: {parent} {parent_id} has not been created at Mangopay yet")]
    ParentNotCreated {
        /// The model's name.
        model: &'static str,
        /// The model's field that refers to the parent.
        field: &'static str,
        /// The parent's model name.
        parent: &'static str,
        /// The parent's local id.
        parent_id: i64,
    },
    /// A parent exists at Mangopay but cannot be used (a deactivated bank account, a recipient
    /// still waiting for its owner's authentication). Nothing was written or sent.
    #[error("{model}.{field}: {parent} {parent_id} cannot be used: {reason}")]
    ParentNotUsable {
        /// The model's name.
        model: &'static str,
        /// The model's field that refers to the parent.
        field: &'static str,
        /// The parent's model name.
        parent: &'static str,
        /// The parent's local id.
        parent_id: i64,
        /// Why not.
        reason: String,
    },
    /// An operation that needs the object in another state (a pay-out already settled, ...).
    #[error("{model} {id}: {reason}")]
    WrongState {
        /// The model's name.
        model: &'static str,
        /// The local id.
        id: i64,
        /// What the state is and what the operation needs.
        reason: String,
    },
    /// An application hook ([`crate::hooks`]) failed; the state change it reacts to was not
    /// recorded either, and the next poll runs it again.
    #[error("{model} {id}: the {hook} hook failed: {message}")]
    Hook {
        /// The model's name.
        model: &'static str,
        /// The local id.
        id: i64,
        /// The hook's name.
        hook: &'static str,
        /// What it reported.
        message: String,
    },
    /// Another worker (or call) holds the row: it is creating or updating it now.
    #[error("{model} {id} is being synced by another worker until {until}")]
    Busy {
        /// The model's name.
        model: &'static str,
        /// The local id.
        id: i64,
        /// When the holder's lease ends.
        until: DateTime<Utc>,
    },
    /// The create was sent and Mangopay's answer does not say whether the object was created
    /// (a 5xx, a timeout, a lost connection, a first answer that cannot be read back). The key
    /// stays on the row; the next attempt resends it, reads its first answer back, or lists
    /// the resource and matches the object's tag. Never resent with a new key blindly.
    #[error(
        "{model} {id}: the outcome of the create sent with idempotency key {key} is unknown; \
         it is retried with the same key{}: {source}",
        retry_at.map(|t| format!(" (reconciled by tag from {t})")).unwrap_or_default()
    )]
    OutcomeUnknown {
        /// The model's name.
        model: &'static str,
        /// The local id.
        id: i64,
        /// The idempotency key the create was sent with.
        key: String,
        /// When the outcome can be settled by listing the resource (the key's first answer
        /// cannot be read, and Mangopay may still be processing it until then).
        retry_at: Option<DateTime<Utc>>,
        /// What the API answered.
        #[source]
        source: ApiError,
    },
    /// Reconciliation could not settle the create's outcome on its own (several objects carry
    /// the row's tag, or too many objects were created since the key to look through). The row
    /// is `failed` with its key: an operator checks Mangopay and calls `adopt(mangopay_id)` or
    /// `release_key()`.
    #[error("{model} {id}: the create with idempotency key {key} needs an operator: {reason}")]
    NeedsOperator {
        /// The model's name.
        model: &'static str,
        /// The local id.
        id: i64,
        /// The idempotency key.
        key: String,
        /// What was found.
        reason: String,
        /// The Mangopay ids carrying the row's tag, if any.
        candidates: Vec<String>,
    },
    /// A create that must reach Mangopay while its requester waits (a direct card pay-in: the
    /// cardholder at the checkout) was not sent within its window
    /// ([`ClientConfig::card_payment_window`](crate::config::ClientConfig::card_payment_window)),
    /// and Mangopay has nothing for it (never sent, or no object carries its tag). The row is
    /// `failed`, without a key, and is never sent: the application asks the cardholder again
    /// and saves a new pay-in.
    #[error(
        "{model} {id}: not sent within {window_secs} s of being saved, and Mangopay has \
         nothing for it: not sent again, so a card is never charged after its holder left"
    )]
    SendWindowPassed {
        /// The model's name.
        model: &'static str,
        /// The local id.
        id: i64,
        /// The window, in seconds.
        window_secs: u64,
    },
    /// `adopt` was refused: what Mangopay holds contradicts it.
    #[error("{model} {id}: cannot adopt {mangopay_id}: {reason}")]
    AdoptRefused {
        /// The model's name.
        model: &'static str,
        /// The local id.
        id: i64,
        /// The Mangopay id proposed.
        mangopay_id: String,
        /// Why not.
        reason: String,
    },
    /// `release_key` was refused: the evidence says the key may have created an object, or
    /// cannot say yet.
    #[error("{model} {id}: cannot release the idempotency key: {reason}")]
    ReleaseRefused {
        /// The model's name.
        model: &'static str,
        /// The local id.
        id: i64,
        /// Why not.
        reason: String,
    },
    /// The update was sent, and Mangopay's answer still holds values for fields the
    /// application cleared: Mangopay did not clear them. The row keeps the application's
    /// values (the answer does not restore them) and `last_error` names the fields.
    #[error("{model} {id}: Mangopay did not clear {}", fields.join(", "))]
    NotCleared {
        /// The model's name.
        model: &'static str,
        /// The local id.
        id: i64,
        /// The model's fields that are still set at Mangopay.
        fields: Vec<String>,
    },
    /// A stored value this version of the library cannot read (a sync state it does not know,
    /// JSON that does not parse): never read as a default.
    #[error(
        "{table}.{column} of row {id} holds {value:?}, which this version cannot read: {problem}"
    )]
    StoredValue {
        /// The table.
        table: &'static str,
        /// The row's id.
        id: i64,
        /// The column.
        column: &'static str,
        /// The value (at most 200 characters of it).
        value: String,
        /// Why it cannot be read.
        problem: String,
    },
    /// A KYC page's file could not be staged or read back (a disk or permission problem of the
    /// staging directory).
    #[error("KYC page file {path}: {reason}")]
    PageFile {
        /// The file or directory.
        path: String,
        /// What failed.
        reason: String,
    },
}

impl Error {
    /// Whether the same operation may succeed if tried again later without any change.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api(e) => e.is_retryable(),
            Error::Db(e) => e.is_retryable(),
            Error::Busy { .. }
            | Error::OutcomeUnknown { .. }
            | Error::ParentNotCreated { .. }
            | Error::Hook { .. } => true,
            Error::Validation(_)
            | Error::Config(_)
            | Error::NotSaved { .. }
            | Error::NotFound { .. }
            | Error::NotCreated { .. }
            | Error::ParentNotUsable { .. }
            | Error::WrongState { .. }
            | Error::SendWindowPassed { .. }
            | Error::NeedsOperator { .. }
            | Error::AdoptRefused { .. }
            | Error::ReleaseRefused { .. }
            | Error::NotCleared { .. }
            | Error::StoredValue { .. }
            | Error::PageFile { .. } => false,
        }
    }

    /// How long to wait before trying again, when it is known: Mangopay's rate-limit reset,
    /// the end of another holder's lease, the time from which an unknown outcome can be
    /// reconciled.
    pub fn retry_after(&self) -> Option<Duration> {
        let until = |t: DateTime<Utc>| (t - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        match self {
            Error::Api(e) => e.retry_after(),
            Error::Busy { until: t, .. } => Some(until(*t)),
            Error::OutcomeUnknown {
                retry_at, source, ..
            } => retry_at.map(until).or_else(|| source.retry_after()),
            _ => None,
        }
    }

    /// The field errors, when this is a validation error (ours, not Mangopay's).
    pub fn validation(&self) -> Option<&ValidationErrors> {
        match self {
            Error::Validation(v) => Some(v),
            _ => None,
        }
    }

    /// The Mangopay API error, if this is one or was caused by one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) | Error::OutcomeUnknown { source: e, .. } => Some(e),
            _ => None,
        }
    }
}

impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Self {
        Error::Db(e.into())
    }
}

/// An error and its causes on one line, for a command's last words: each cause once (a cause
/// whose text its parent already shows is skipped), whitespace and line breaks folded.
pub fn report(error: &(dyn std::error::Error + 'static)) -> String {
    let fold = |s: String| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut text = fold(error.to_string());
    let mut cause = error.source();
    while let Some(e) = cause {
        let part = fold(e.to_string());
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = e.source();
    }
    text
}
