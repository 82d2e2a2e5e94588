//! Where a row stands with Mangopay: the sync columns every resource table carries, as the
//! application reads them.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text, Timestamp};
use serde_json::Value;

use crate::Error;
use crate::client::ErrorBody;
use crate::db::MultiBackend;

/// Where a row stands with Mangopay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncState {
    /// Saved locally, never sent.
    New,
    /// A create is owed: started with the idempotency key on the row and not recorded yet
    /// (resending the same key is safe; see [`SyncInfo::create_key_spent`]), or to be sent
    /// again with a new key after a search by tag proved the old one created nothing.
    Pending,
    /// Mangopay has the object; `mangopay_id` is set.
    Synced,
    /// Mangopay refused the create (`last_error` says why; fix the row and create again), or
    /// the create's outcome needs a person (the key is still on the row: use
    /// `adopt(mangopay_id)` or `release_key()`).
    Failed,
}

impl SyncState {
    /// The value stored in the `sync_state` column.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::New => "new",
            SyncState::Pending => "pending",
            SyncState::Synced => "synced",
            SyncState::Failed => "failed",
        }
    }
}

impl fmt::Display for SyncState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `sync_state` value this version does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown sync state `{0}`")]
pub struct UnknownSyncState(pub String);

impl FromStr for SyncState {
    type Err = UnknownSyncState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "new" => Ok(SyncState::New),
            "pending" => Ok(SyncState::Pending),
            "synced" => Ok(SyncState::Synced),
            "failed" => Ok(SyncState::Failed),
            other => Err(UnknownSyncState(other.to_owned())),
        }
    }
}

/// What the library and Mangopay know about a row: its sync columns. Written only by the
/// library; `save` never touches them. `Debug` shows `api_payload` with its secrets and card
/// data (tokenization keys, registration data) redacted.
#[derive(Clone, PartialEq)]
pub struct SyncInfo {
    /// Mangopay's `Id`, set once Mangopay accepted the object.
    pub mangopay_id: Option<String>,
    /// Where the row stands with Mangopay.
    pub state: SyncState,
    /// The idempotency key of the create in progress (kept after success: it is also in the
    /// object's `Tag`).
    pub create_idempotency_key: Option<String>,
    /// When that key was first committed; Mangopay remembers a key for 24 hours from its first
    /// use, so past 23 hours it is never resent.
    pub create_idempotency_key_at: Option<DateTime<Utc>>,
    /// When the create was last sent with that key.
    pub create_sent_at: Option<DateTime<Utc>>,
    /// Mangopay answered the key with 409 and its first answer could not be read back: the key
    /// is not resent; the outcome is found by listing the resource and matching the `Tag`.
    pub create_key_spent: bool,
    /// The row version the key's first request was built from: an answer read back for the
    /// key (or found by its tag) may describe that version, not a later one.
    pub create_key_version: Option<i64>,
    /// Who holds the row (a job's token, or one call's), until `lease_until`.
    pub lease_owner: Option<String>,
    /// Until when that holder has the row.
    pub lease_until: Option<DateTime<Utc>>,
    /// Bumped by every application save; Mangopay's answers only overwrite the application's
    /// fields when the row still has the version the request was built from.
    pub version: i64,
    /// An update is owed to Mangopay (set when an update starts or the row changed while a
    /// request was in flight; cleared by a successful update).
    pub dirty: bool,
    /// Failed API write attempts since the last success.
    pub attempts: i32,
    /// The last error: Mangopay's error report (`Message`, `Type`, `Id`, `Date`, `errors`), or
    /// one in the same shape for other failures. Cleared by the next success.
    pub last_error: Option<ErrorBody>,
    /// When `last_error` happened.
    pub last_error_at: Option<DateTime<Utc>>,
    /// The last object Mangopay returned, as JSON (its `Tag` as Mangopay holds it).
    pub api_payload: Option<Value>,
    /// When the row was inserted.
    pub created_at: Option<DateTime<Utc>>,
    /// When the row was last written.
    pub updated_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for SyncInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::client::redact::{PersonalData, json};
        f.debug_struct("SyncInfo")
            .field("mangopay_id", &self.mangopay_id)
            .field("state", &self.state)
            .field("create_idempotency_key", &self.create_idempotency_key)
            .field("create_idempotency_key_at", &self.create_idempotency_key_at)
            .field("create_sent_at", &self.create_sent_at)
            .field("create_key_spent", &self.create_key_spent)
            .field("create_key_version", &self.create_key_version)
            .field("lease_owner", &self.lease_owner)
            .field("lease_until", &self.lease_until)
            .field("version", &self.version)
            .field("dirty", &self.dirty)
            .field("attempts", &self.attempts)
            .field("last_error", &self.last_error)
            .field("last_error_at", &self.last_error_at)
            .field(
                "api_payload",
                &self
                    .api_payload
                    .as_ref()
                    .map(|p| json(p, PersonalData::Show)),
            )
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

impl Default for SyncInfo {
    /// A row that was never saved.
    fn default() -> Self {
        SyncInfo {
            mangopay_id: None,
            state: SyncState::New,
            create_idempotency_key: None,
            create_idempotency_key_at: None,
            create_sent_at: None,
            create_key_spent: false,
            create_key_version: None,
            lease_owner: None,
            lease_until: None,
            version: 0,
            dirty: false,
            attempts: 0,
            last_error: None,
            last_error_at: None,
            api_payload: None,
            created_at: None,
            updated_at: None,
        }
    }
}

/// The sync columns as stored (see [`SyncInfo`] for their meaning).
#[derive(Debug, Clone, diesel::QueryableByName)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite, MultiBackend))]
pub(crate) struct SyncRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Nullable<Text>)]
    pub mangopay_id: Option<String>,
    #[diesel(sql_type = Text)]
    pub sync_state: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub create_idempotency_key: Option<String>,
    #[diesel(sql_type = Nullable<Timestamp>)]
    pub create_idempotency_key_at: Option<NaiveDateTime>,
    #[diesel(sql_type = Nullable<Timestamp>)]
    pub create_sent_at: Option<NaiveDateTime>,
    #[diesel(sql_type = Bool)]
    pub create_key_spent: bool,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub create_key_version: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub lease_owner: Option<String>,
    #[diesel(sql_type = Nullable<Timestamp>)]
    pub lease_until: Option<NaiveDateTime>,
    #[diesel(sql_type = BigInt)]
    pub row_version: i64,
    #[diesel(sql_type = Bool)]
    pub dirty: bool,
    #[diesel(sql_type = Integer)]
    pub sync_attempts: i32,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_error: Option<String>,
    #[diesel(sql_type = Nullable<Timestamp>)]
    pub last_error_at: Option<NaiveDateTime>,
    #[diesel(sql_type = Nullable<Text>)]
    pub api_payload: Option<String>,
    #[diesel(sql_type = Timestamp)]
    pub created_at: NaiveDateTime,
    #[diesel(sql_type = Timestamp)]
    pub updated_at: NaiveDateTime,
}

/// The columns of [`SyncRow`], in a form to paste into SQL.
pub(crate) const SYNC_COLUMNS: &str = "id, mangopay_id, sync_state, create_idempotency_key, \
     create_idempotency_key_at, create_sent_at, create_key_spent, create_key_version, \
     lease_owner, lease_until, \
     row_version, dirty, sync_attempts, last_error, last_error_at, api_payload, created_at, \
     updated_at";

fn utc(t: Option<NaiveDateTime>) -> Option<DateTime<Utc>> {
    t.map(|t| t.and_utc())
}

impl SyncRow {
    /// Whether no create was ever sent (or claimed) for the row: no Mangopay id, no key.
    pub(crate) fn never_sent(&self) -> bool {
        self.mangopay_id.is_none() && self.create_idempotency_key.is_none()
    }

    /// The row as the application reads it; a stored value this version cannot read is an
    /// error naming the column, never a silent default.
    pub(crate) fn into_info(self, table: &'static str) -> Result<SyncInfo, Error> {
        let bad = |column: &'static str, value: &str, problem: String| Error::StoredValue {
            table,
            id: self.id,
            column,
            value: value.chars().take(200).collect(),
            problem,
        };
        let state = self
            .sync_state
            .parse::<SyncState>()
            .map_err(|e| bad("sync_state", &self.sync_state, e.to_string()))?;
        let last_error = match self.last_error.as_deref() {
            None => None,
            Some(text) => Some(
                serde_json::from_str::<ErrorBody>(text)
                    .map_err(|e| bad("last_error", text, e.to_string()))?,
            ),
        };
        let api_payload = match self.api_payload.as_deref() {
            None => None,
            Some(text) => Some(
                serde_json::from_str::<Value>(text)
                    .map_err(|e| bad("api_payload", text, e.to_string()))?,
            ),
        };
        Ok(SyncInfo {
            mangopay_id: self.mangopay_id,
            state,
            create_idempotency_key: self.create_idempotency_key,
            create_idempotency_key_at: utc(self.create_idempotency_key_at),
            create_sent_at: utc(self.create_sent_at),
            create_key_spent: self.create_key_spent,
            create_key_version: self.create_key_version,
            lease_owner: self.lease_owner,
            lease_until: utc(self.lease_until),
            version: self.row_version,
            dirty: self.dirty,
            attempts: self.sync_attempts,
            last_error,
            last_error_at: utc(self.last_error_at),
            api_payload,
            created_at: Some(self.created_at.and_utc()),
            updated_at: Some(self.updated_at.and_utc()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_unknown_values_are_errors() {
        for s in [
            SyncState::New,
            SyncState::Pending,
            SyncState::Synced,
            SyncState::Failed,
        ] {
            assert_eq!(s.as_str().parse::<SyncState>().unwrap(), s);
        }
        assert_eq!(
            "archived".parse::<SyncState>().unwrap_err(),
            UnknownSyncState("archived".into())
        );
        assert!("".parse::<SyncState>().is_err());
    }
}
