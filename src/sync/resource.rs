//! What a resource gives the sync core: its row, its API mapping and its registration. The
//! protocol itself (keys, leases, outcomes, reconciliation, sweeps) is never in a resource.

use chrono::NaiveDateTime;
use diesel::QueryResult;
use serde_json::Value;

use super::body::Cleared;
use super::state::SyncInfo;
use super::store::SyncTable;
use crate::config::ClientConfig;
use crate::db::AnyConnection;
use crate::hooks::Hooks;
use crate::{Error, ValidationErrors};

/// Which fields an API answer may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every field: the row still holds what the request was built from.
    All,
    /// Only the fields Mangopay owns (status, dates, verification level, ...): the application
    /// changed the row meanwhile (or has an update owed), and its newer values must not be
    /// overwritten by an older answer.
    ServerOnly,
}

/// A request to send: a path under `/v2.01/{ClientId}/` and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiRequest {
    /// The path, such as `users/natural`.
    pub path: String,
    /// The body.
    pub body: Value,
}

/// An update request, with the optional fields it clears.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateRequest {
    /// The path and body of the `PUT`.
    pub request: ApiRequest,
    /// The fields the update clears; Mangopay's answer must no longer hold them.
    pub cleared: Vec<Cleared>,
}

/// Where to look for an object this library created when its create's outcome is unknown: a
/// list endpoint that returns the objects' `Tag`, newest first with `Sort=CreationDate:DESC`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The list path, such as `users` or `users/{UserId}/wallets`. Empty for a resource
    /// Mangopay does not list (card registrations, which move no money): an object whose
    /// create's outcome its key cannot settle is then left unused at Mangopay and the key
    /// released, so the next create makes a new one.
    pub path: String,
    /// Whether the endpoint filters on `AfterDate` / `BeforeDate`.
    pub date_filters: bool,
    /// More filters (`Type=PAYOUT`, ...).
    pub filters: Vec<(&'static str, String)>,
    /// Where each listed object is read when the list's items carry no `Tag` (recipients'
    /// summaries): `Some("recipients")` reads `recipients/{Id}` for every item created since
    /// the key's first use. `None`: the items carry their `Tag`.
    pub item_path: Option<&'static str>,
    /// Whether the objects carry no `Tag` at all (UBO declarations): every object listed
    /// that was created since the key's first use (less the clock allowance) and passes
    /// [`Resource::check_untagged`] is then taken as this row's; one is adopted, several are
    /// left to an operator, none releases the key. Only for resources of which one parent
    /// holds one open object at a time.
    pub untagged: bool,
}

impl Listing {
    /// No listing: Mangopay does not list objects of this kind (see [`Listing::path`]).
    pub fn unlisted() -> Listing {
        Listing {
            path: String::new(),
            date_filters: false,
            filters: Vec::new(),
            item_path: None,
            untagged: false,
        }
    }
}

/// A Mangopay resource kept in a table of its own (or a family of tables), synced by the core.
///
/// Implementing it is what adding a resource means, with its migration (the table carries the
/// sync columns) and one line in the jobs' registry. Every method is about the resource
/// itself: its row, its request bodies, the mapping of Mangopay's answers into its columns.
pub trait Resource: Sized + Clone + Send + Sync + 'static {
    /// The model's name, for errors and logs.
    const MODEL: &'static str;
    /// The table holding the row's sync columns.
    const TABLE: SyncTable;
    /// Whether Mangopay updates the object (`PUT`). When it does not (transfers, pay-outs,
    /// bank accounts), the application's fields cannot change once the create was sent: a
    /// save is refused ([`Error::WrongState`]) from the claim of the first key on.
    const UPDATABLE: bool = true;

    /// The local id, once saved.
    fn id(&self) -> Option<i64>;
    /// Sets the local id after an insert.
    fn set_id(&mut self, id: i64);
    /// The row's sync columns.
    fn sync(&self) -> &SyncInfo;
    /// Replaces the row's sync columns (after loading).
    fn set_sync(&mut self, sync: SyncInfo);
    /// Every problem with the fields, or `Ok`: checked before anything is written or sent.
    fn validate(&self) -> Result<(), ValidationErrors>;
    /// The application's own tag; the `Tag` sent is this followed by the library's marker.
    fn app_tag(&self) -> Option<&str>;

    /// Loads the row's fields (not its sync columns) by local id.
    fn load(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<Self>>;
    /// Inserts the application's fields as a new row (sync state `new`); returns its id.
    fn insert(&self, conn: &mut AnyConnection, now: NaiveDateTime) -> QueryResult<i64>;
    /// Writes the application's fields to the row `id`.
    fn write_fields(&self, conn: &mut AnyConnection, id: i64) -> QueryResult<()>;
    /// Writes Mangopay's data into the row: the one function through which an answer (create,
    /// update, refresh, reconciliation, adoption) reaches the resource's columns. Its `Tag`
    /// holds the application's tag only (the marker is stripped). Absent keys leave their
    /// columns alone.
    fn apply_api_data(
        &self,
        conn: &mut AnyConnection,
        id: i64,
        data: &Value,
        scope: Scope,
    ) -> QueryResult<()>;

    /// Reads from other rows what the requests need: the Mangopay ids and states of the
    /// parents (the owner, the wallets, the bank account). The core calls it inside the
    /// claim's transaction, before [`parents_ready`](Self::parents_ready) and
    /// [`create_request`](Self::create_request), so a request is always built from the
    /// parents as committed, never from a copy the application loaded earlier. A resource
    /// without parents keeps the default, which reads nothing. A parent row that does not
    /// exist is an [`Error::Validation`] naming the field. [`save`](super::save) calls it too,
    /// before writing anything.
    fn resolve(&mut self, conn: &mut AnyConnection) -> Result<(), Error> {
        let _ = conn;
        Ok(())
    }

    /// Whether [`lock_parents`](Self::lock_parents) locks anything: the core then calls it
    /// first in every write transaction that checks the row against its parents (a save, a
    /// create's claim), before the row itself is written or locked.
    const LOCKS_PARENTS: bool = false;

    /// Locks the parent rows whose state this row's checks read and that writes of other
    /// rows change (a refund's pay-in: two refunds of one pay-in are checked one after the
    /// other, against what the other left). Called before the row itself is locked, so every
    /// writer takes its locks in one order (parent, then row); reads never lock.
    fn lock_parents(&self, conn: &mut AnyConnection) -> QueryResult<()> {
        let _ = conn;
        Ok(())
    }

    /// Checks, when a row not sent yet is saved (inserted, or its fields written before its
    /// first key), what depends on its parents as [`resolve`](Self::resolve) read them (a
    /// refund within what is left of its pay-in). An error leaves the database unchanged.
    /// The default checks nothing; [`parents_ready`](Self::parents_ready) checks again at
    /// the first send.
    fn check_before_save(&self) -> Result<(), Error> {
        Ok(())
    }

    /// Whether every parent can take this object: created at Mangopay
    /// ([`Error::ParentNotCreated`]), usable ([`Error::ParentNotUsable`]: active, verified),
    /// and agreeing with it (one currency: [`Error::Validation`] naming the field). Checked
    /// before a key's first send only: a resend of a key that may already have been processed
    /// is never held back by a parent that changed since.
    fn parents_ready(&self) -> Result<(), Error> {
        Ok(())
    }

    /// How long after the row was inserted its create may be sent at all: `Some` for a create
    /// that must reach Mangopay while its requester waits (a direct card pay-in: the
    /// cardholder at the checkout). Past it nothing is sent for the row any more, neither a
    /// first request, nor its key resent, nor a new key after Mangopay proved nothing was
    /// created: the key is read back and settled by tag, and a row with nothing at Mangopay
    /// goes `failed` ([`Error::SendWindowPassed`]). `None`, the default: the key is resent
    /// for 23 hours, and a new key follows a proof that nothing was created.
    fn send_window(&self, config: &ClientConfig) -> Option<std::time::Duration> {
        let _ = config;
        None
    }

    /// The create request, with `tag` as its `Tag`. An error here (a parent object not
    /// created at Mangopay yet, ...) is returned before anything is written or sent.
    fn create_request(&self, tag: Option<&str>) -> Result<ApiRequest, Error>;
    /// The update request, with `tag` as its `Tag`.
    fn update_request(&self, tag: Option<&str>) -> Result<UpdateRequest, Error>;
    /// Runs, in the transaction (and savepoint) that wrote an answer with
    /// [`apply_api_data`](Self::apply_api_data), what reacts to the state recorded: the
    /// application's [`Hooks`]. An error undoes the answer's fields with it (the id and the
    /// payload stay), and is noted on the row; a refresh returns it, so the poll that brought
    /// the state runs again.
    fn after_apply(&self, conn: &mut AnyConnection, id: i64, hooks: &Hooks) -> Result<(), Error> {
        let _ = (conn, id, hooks);
        Ok(())
    }

    /// After a hook failed and the answer's fields were undone with it: makes sure the row is
    /// looked at again (a followed resource owes a status check now), whatever wrote the
    /// answer (a create, a reconciliation, an operator's adoption, a refresh).
    fn after_failed_hook(&self, conn: &mut AnyConnection, id: i64) -> QueryResult<()> {
        let _ = (conn, id);
        Ok(())
    }

    /// The path that views the object `mangopay_id`.
    fn view_path(&self, mangopay_id: &str) -> String;
    /// Where objects of this resource can be listed to find one by its tag.
    fn listing(&self) -> Listing;
    /// Whether `found` (an object an operator or reconciliation proposes for this row) can be
    /// this row's object: the right kind, the right owner. `Err` says why not.
    fn check_found(&self, found: &Value) -> Result<(), String>;
    /// Whether `found`, listed for this row by an untagged search
    /// ([`Listing::untagged`]: only its creation date matched), is the object this row's
    /// create made: [`check_found`](Self::check_found) by default; a resource whose objects
    /// change once created checks they are still as the create left them.
    fn check_untagged(&self, found: &Value) -> Result<(), String> {
        self.check_found(found)
    }
}

/// The row accessors of [`Resource`] for a model whose local id is the field
/// `id: Option<i64>` and whose sync columns are the field `sync: SyncInfo`.
macro_rules! row_accessors {
    () => {
        fn id(&self) -> Option<i64> {
            self.id
        }
        fn set_id(&mut self, id: i64) {
            self.id = Some(id);
        }
        fn sync(&self) -> &$crate::sync::SyncInfo {
            &self.sync
        }
        fn set_sync(&mut self, sync: $crate::sync::SyncInfo) {
            self.sync = sync;
        }
    };
}
pub(crate) use row_accessors;
