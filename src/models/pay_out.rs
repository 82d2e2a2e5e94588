//! `MangopayPayOut`: money sent from a wallet to a bank account or a recipient, mirrored from
//! Mangopay's [Payout object](https://docs.mangopay.com/api-reference/payouts/payout-object),
//! and followed until it settles.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;

use super::money::Money;
use super::parent::{self, Parent};
use super::transaction::{
    FactsFromApi, TransactionColumns, TransactionFacts, check_amounts, stored_currency,
};
use super::transfer::check_transaction;
use super::types::{PayoutMode, TransactionStatus, read};
use super::user::validate_tag;
use crate::db::{AnyConnection, MultiBackend};
use crate::hooks::Hooks;
use crate::schema::mangopay_pay_outs as pay_outs;
use crate::sync::body::CreateBody;
use crate::sync::follow::{self, Followed, Poll, Polling};
use crate::sync::{ApiRequest, Listing, Resource, Scope, SyncInfo, SyncTable, UpdateRequest};
use crate::validate::{self, FieldErrorKind, ValidationErrors};
use crate::{Db, Error, MangopayClient};

/// The table holding every pay-out's sync columns.
pub const PAY_OUTS: SyncTable = SyncTable::new("mangopay_pay_outs");

/// Where a pay-out's money goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayOutDestination {
    /// A legacy bank account (local id of a [`MangopayBankAccount`](crate::MangopayBankAccount)).
    BankAccount(i64),
    /// A recipient (local id of a [`MangopayRecipient`](crate::MangopayRecipient)); it must be
    /// `ACTIVE`.
    Recipient(i64),
}

/// A pay-out by bank wire, kept in `mangopay_pay_outs`.
///
/// Build one with [`MangopayPayOut::new`], [`save`](Self::save) and [`create`](Self::create) it
/// (or enqueue `create_mangopay_pay_out`, which also schedules its follow-up). Mangopay debits
/// the wallet at once and answers `CREATED`; the pay-out settles `SUCCEEDED` or `FAILED` (the
/// funds back in the wallet) later: [`poll_status`](Self::poll_status) follows it, and runs the
/// application's [`Hooks::on_pay_out_succeeded`] exactly once. A pay-out is never updated.
#[derive(Debug, Clone, PartialEq)]
pub struct MangopayPayOut {
    /// The local id; `None` until the first save.
    pub id: Option<i64>,
    /// `AuthorId`: the local id of the user requesting the pay-out.
    pub author_id: i64,
    /// `DebitedWalletId`: the local id of the wallet debited.
    pub debited_wallet_id: i64,
    /// `BankAccountId`: the bank account or recipient paid.
    pub destination: PayOutDestination,
    /// `DebitedFunds`.
    pub debited_funds: Money,
    /// `Fees`, in the same currency; zero for none.
    pub fees: Money,
    /// `BankWireRef`: the reference on the bank statement (up to 255 characters, 12 or less
    /// recommended).
    pub bank_wire_ref: Option<String>,
    /// `PayoutModeRequested`: STANDARD (the default), INSTANT_PAYMENT, INSTANT_PAYMENT_ONLY or
    /// RTGS_PAYMENT.
    pub mode_requested: PayoutMode,
    /// `Tag`.
    pub tag: Option<String>,
    facts: PayOutFacts,
    parents: Parents,
    sync: SyncInfo,
}

/// What Mangopay says about a pay-out, and how far the library has followed it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PayOutFacts {
    /// Status, result, credited funds, dates.
    pub transaction: TransactionFacts,
    /// `ModeApplied`.
    pub mode_applied: Option<PayoutMode>,
    /// `FallbackReason.Code`: why an instant pay-out was not sent instantly.
    pub fallback_reason_code: Option<String>,
    /// `FallbackReason.Message`.
    pub fallback_reason_message: Option<String>,
    /// How many times its status was checked while following it.
    pub status_checks: i32,
    /// When it was last checked.
    pub status_checked_at: Option<DateTime<Utc>>,
    /// When the worker checks it next, while it is followed (see
    /// [`crate::sync::follow`]); `None` once settled or no longer followed.
    pub next_check_at: Option<DateTime<Utc>>,
    /// When the application's pay-out-succeeded hook ran (and committed).
    pub succeeded_hook_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Parents {
    author: Parent,
    wallet: Parent,
    destination: Parent,
}

impl MangopayPayOut {
    /// A STANDARD pay-out of `debited_funds` less `fees` from the wallet `debited_wallet_id`
    /// to `destination`, requested by the user `author_id` (local ids); not saved yet.
    pub fn new(
        author_id: i64,
        debited_wallet_id: i64,
        destination: PayOutDestination,
        debited_funds: Money,
        fees: Money,
    ) -> Result<MangopayPayOut, ValidationErrors> {
        let pay_out = MangopayPayOut {
            id: None,
            author_id,
            debited_wallet_id,
            destination,
            debited_funds,
            fees,
            bank_wire_ref: None,
            mode_requested: PayoutMode::Standard,
            tag: None,
            facts: PayOutFacts::default(),
            parents: Parents::default(),
            sync: SyncInfo::default(),
        };
        pay_out.validate().map(|()| pay_out)
    }

    /// The same pay-out with `reference` on the bank statement.
    pub fn with_bank_wire_ref(mut self, reference: impl Into<String>) -> MangopayPayOut {
        self.bank_wire_ref = Some(reference.into());
        self
    }

    /// The same pay-out sent in `mode`.
    pub fn with_mode(mut self, mode: PayoutMode) -> MangopayPayOut {
        self.mode_requested = mode;
        self
    }

    /// The same pay-out with `tag` as its tag.
    pub fn with_tag(mut self, tag: impl Into<String>) -> MangopayPayOut {
        self.tag = Some(tag.into());
        self
    }

    /// What Mangopay says about the pay-out, and how far it was followed.
    pub fn facts(&self) -> &PayOutFacts {
        &self.facts
    }

    /// `Status`, as last recorded.
    pub fn status(&self) -> Option<&TransactionStatus> {
        self.facts.transaction.status.as_ref()
    }

    /// Every problem with the current field values, or `Ok`.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut e = ValidationErrors::new();
        check_amounts(&mut e, self.debited_funds, self.fees);
        e.check(
            "bank_wire_ref",
            validate::opt_max_len(self.bank_wire_ref.as_deref(), 255),
        );
        if !matches!(
            self.mode_requested,
            PayoutMode::Standard
                | PayoutMode::InstantPayment
                | PayoutMode::InstantPaymentOnly
                | PayoutMode::RtgsPayment
        ) {
            e.push(
                "mode_requested",
                FieldErrorKind::NotAllowed(format!(
                    "must be STANDARD, INSTANT_PAYMENT, INSTANT_PAYMENT_ONLY or RTGS_PAYMENT, \
                     not {}",
                    self.mode_requested
                )),
            );
        }
        e.check("tag", validate_tag(self.tag.as_deref()));
        e.into_result()
    }

    /// Asks Mangopay whether the pay-out (as it is, not yet created) can be sent instantly
    /// (`POST /payouts/reachability`): the answer as Mangopay gives it. Its parents must have
    /// been created at Mangopay.
    pub async fn instant_eligibility(
        &self,
        db: &Db,
        client: &MangopayClient,
    ) -> Result<Value, Error> {
        self.validate()?;
        let mut model = self.clone();
        let model = db
            .run(move |conn| {
                model.resolve(conn)?;
                Ok::<_, Error>(model)
            })
            .await?;
        model.parents_ready()?;
        let mut request = model.create_request(None)?.body;
        if let Value::Object(body) = &mut request {
            body.remove("Tag");
            if model.mode_requested == PayoutMode::Standard {
                body.insert(
                    "PayoutModeRequested".into(),
                    Value::String(PayoutMode::InstantPayment.as_str().into()),
                );
            }
        }
        // A check, not a create: every POST carries a key, a fresh one here.
        let key = crate::IdempotencyKey::generate();
        Ok(client.post("payouts/reachability", &request, &key).await?)
    }

    /// Checks the pay-out `id` once (see [`crate::sync::follow`]): reads it from Mangopay
    /// (which, when it is `SUCCEEDED`, runs the pay-out-succeeded hook in the same
    /// transaction), counts the check, and says what comes next under `policy`. A `FAILED`
    /// pay-out is logged as an error; its result code and message are on the row.
    pub async fn poll_status(
        db: &Db,
        client: &MangopayClient,
        id: i64,
        policy: &Polling,
    ) -> Result<Poll<TransactionStatus>, Error> {
        follow::poll::<Self>(db, client, id, policy).await
    }

    /// Runs `db`'s pay-out-succeeded hook for up to `limit` pay-outs recorded `SUCCEEDED`
    /// whose hook has not run (recorded through a handle without the hook, such as the
    /// `diesel-mangopay-worker` binary or another process), each exactly once and in its own
    /// transaction. A hook that fails is noted on its row and tried again at the next call.
    /// Returns how many hooks ran; the worker's sweep calls it when its handle has the hook.
    pub async fn run_owed_hooks(db: &Db, limit: i64) -> Result<usize, Error> {
        if db.hooks().pay_out_succeeded().is_none() {
            return Ok(0);
        }
        let ids = db
            .run(move |conn| {
                pay_outs::table
                    .filter(pay_outs::status.eq("SUCCEEDED"))
                    .filter(pay_outs::succeeded_hook_at.is_null())
                    .order(pay_outs::id)
                    .limit(limit)
                    .select(pay_outs::id)
                    .load::<i64>(conn)
                    .map_err(Error::from)
            })
            .await?;
        let mut ran = 0;
        for id in ids {
            let hooks = db.hooks().clone();
            let result = db
                .write(move |conn| {
                    let hook = hooks.pay_out_succeeded().expect("checked above");
                    run_succeeded_hook(conn, id, hook)
                })
                .await;
            match result {
                Ok(true) => ran += 1,
                Ok(false) => {}
                Err(error @ Error::Hook { .. }) => {
                    let note = crate::sync::note("hook_failed", error.to_string());
                    db.write(move |conn| {
                        crate::sync::store::note_error(
                            conn,
                            PAY_OUTS,
                            id,
                            &note,
                            crate::sync::now(),
                        )
                        .map_err(Error::from)
                    })
                    .await?;
                    tracing::error!(id, %error, "the pay-out-succeeded hook failed; tried again later");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(ran)
    }

    /// The pay-outs debiting the wallet `wallet_id` (local id), oldest first.
    pub async fn for_wallet(db: &Db, wallet_id: i64) -> Result<Vec<MangopayPayOut>, Error> {
        crate::sync::get_where(db, move |conn| {
            pay_outs::table
                .filter(pay_outs::debited_wallet_id.eq(wallet_id))
                .order(pay_outs::id)
                .select(pay_outs::id)
                .load::<i64>(conn)
        })
        .await
    }
}

crate::models::resource_methods!(MangopayPayOut, "pay-out");

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = pay_outs)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite, MultiBackend))]
struct PayOutRow {
    id: i64,
    author_id: i64,
    debited_wallet_id: i64,
    bank_account_id: Option<i64>,
    recipient_id: Option<i64>,
    currency: String,
    debited_amount: i64,
    fees_amount: i64,
    credited_amount: Option<i64>,
    bank_wire_ref: Option<String>,
    payout_mode_requested: String,
    mode_applied: Option<String>,
    status: Option<String>,
    result_code: Option<String>,
    result_message: Option<String>,
    fallback_reason_code: Option<String>,
    fallback_reason_message: Option<String>,
    execution_date: Option<NaiveDateTime>,
    tag: Option<String>,
    mangopay_created_at: Option<NaiveDateTime>,
    status_checks: i32,
    status_checked_at: Option<NaiveDateTime>,
    follow_at: Option<NaiveDateTime>,
    succeeded_hook_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = pay_outs, treat_none_as_null = true)]
struct PayOutFields {
    author_id: i64,
    debited_wallet_id: i64,
    bank_account_id: Option<i64>,
    recipient_id: Option<i64>,
    currency: String,
    debited_amount: i64,
    fees_amount: i64,
    bank_wire_ref: Option<String>,
    payout_mode_requested: String,
    tag: Option<String>,
}

#[derive(AsChangeset, Default)]
#[diesel(table_name = pay_outs)]
struct PayOutFromApi {
    status: Option<Option<String>>,
    result_code: Option<Option<String>>,
    result_message: Option<Option<String>>,
    credited_amount: Option<Option<i64>>,
    execution_date: Option<Option<NaiveDateTime>>,
    mangopay_created_at: Option<Option<NaiveDateTime>>,
    mode_applied: Option<Option<String>>,
    fallback_reason_code: Option<Option<String>>,
    fallback_reason_message: Option<Option<String>>,
    tag: Option<Option<String>>,
}

impl MangopayPayOut {
    fn fields(&self) -> PayOutFields {
        let (bank_account_id, recipient_id) = match self.destination {
            PayOutDestination::BankAccount(id) => (Some(id), None),
            PayOutDestination::Recipient(id) => (None, Some(id)),
        };
        PayOutFields {
            author_id: self.author_id,
            debited_wallet_id: self.debited_wallet_id,
            bank_account_id,
            recipient_id,
            currency: self.debited_funds.currency.to_string(),
            debited_amount: self.debited_funds.amount,
            fees_amount: self.fees.amount,
            bank_wire_ref: self.bank_wire_ref.clone(),
            payout_mode_requested: self.mode_requested.as_str().to_owned(),
            tag: self.tag.clone(),
        }
    }

    fn destination_names(&self) -> (&'static str, &'static str, i64) {
        match self.destination {
            PayOutDestination::BankAccount(id) => ("bank_account_id", "MangopayBankAccount", id),
            PayOutDestination::Recipient(id) => ("recipient_id", "MangopayRecipient", id),
        }
    }
}

impl Resource for MangopayPayOut {
    const MODEL: &'static str = "MangopayPayOut";
    const TABLE: SyncTable = PAY_OUTS;
    const UPDATABLE: bool = false;

    crate::sync::row_accessors!();
    fn validate(&self) -> Result<(), ValidationErrors> {
        MangopayPayOut::validate(self)
    }
    fn app_tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    fn load(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<Self>> {
        let row = pay_outs::table
            .find(id)
            .select(PayOutRow::as_select())
            .first::<PayOutRow>(conn)
            .optional()?;
        Ok(row.map(|r| {
            let utc = |t: Option<NaiveDateTime>| t.map(|t| t.and_utc());
            let currency = stored_currency(&r.currency);
            let transaction = TransactionFacts::from_columns(
                &TransactionColumns {
                    status: r.status,
                    result_code: r.result_code,
                    result_message: r.result_message,
                    credited_amount: r.credited_amount,
                    execution_date: r.execution_date,
                    mangopay_created_at: r.mangopay_created_at,
                },
                currency,
            );
            let destination = match (r.bank_account_id, r.recipient_id) {
                (_, Some(id)) => PayOutDestination::Recipient(id),
                (Some(id), None) => PayOutDestination::BankAccount(id),
                // The table's CHECK makes this impossible.
                (None, None) => PayOutDestination::BankAccount(0),
            };
            MangopayPayOut {
                id: Some(r.id),
                author_id: r.author_id,
                debited_wallet_id: r.debited_wallet_id,
                destination,
                debited_funds: Money::new(r.debited_amount, currency),
                fees: Money::new(r.fees_amount, currency),
                bank_wire_ref: r.bank_wire_ref,
                mode_requested: PayoutMode::from_api(&r.payout_mode_requested),
                tag: r.tag,
                facts: PayOutFacts {
                    transaction,
                    mode_applied: r.mode_applied.as_deref().map(PayoutMode::from_api),
                    fallback_reason_code: r.fallback_reason_code,
                    fallback_reason_message: r.fallback_reason_message,
                    status_checks: r.status_checks,
                    status_checked_at: utc(r.status_checked_at),
                    next_check_at: utc(r.follow_at),
                    succeeded_hook_at: utc(r.succeeded_hook_at),
                },
                parents: Parents::default(),
                sync: SyncInfo::default(),
            }
        }))
    }

    fn resolve(&mut self, conn: &mut AnyConnection) -> Result<(), Error> {
        let destination = match self.destination {
            PayOutDestination::BankAccount(id) => {
                parent::bank_account(conn, "bank_account_id", id)?
            }
            PayOutDestination::Recipient(id) => parent::recipient(conn, "recipient_id", id)?,
        };
        self.parents = Parents {
            author: parent::user(conn, "author_id", self.author_id)?,
            wallet: parent::wallet(conn, "debited_wallet_id", self.debited_wallet_id)?,
            destination,
        };
        Ok(())
    }

    fn parents_ready(&self) -> Result<(), Error> {
        let p = &self.parents;
        p.author
            .ready(Self::MODEL, "author_id", "MangopayUser", self.author_id)?;
        p.wallet.ready(
            Self::MODEL,
            "debited_wallet_id",
            "MangopayWallet",
            self.debited_wallet_id,
        )?;
        let (field, parent, id) = self.destination_names();
        p.destination.ready(Self::MODEL, field, parent, id)?;
        let mut e = ValidationErrors::new();
        let currency = self.debited_funds.currency.as_str();
        parent::same_currency(&mut e, "debited_wallet_id", &p.wallet, currency);
        parent::same_currency(&mut e, field, &p.destination, currency);
        // Mangopay fails a pay-out whose author does not own the wallet or the account.
        parent::owned_by(
            &mut e,
            "author_id",
            &p.wallet,
            self.author_id,
            "the debited wallet",
        );
        parent::owned_by(
            &mut e,
            "author_id",
            &p.destination,
            self.author_id,
            "the account paid",
        );
        e.into_result().map_err(Error::Validation)
    }

    crate::models::field_writes!(pay_outs);

    fn apply_api_data(
        &self,
        conn: &mut AnyConnection,
        id: i64,
        p: &Value,
        scope: Scope,
    ) -> QueryResult<()> {
        let f = FactsFromApi::read(p);
        if follow::is_stale::<Self>(conn, id, f.status.clone().flatten().as_deref())? {
            tracing::info!(
                id,
                "an older answer (still CREATED) is not recorded over a settled pay-out"
            );
            return Ok(());
        }
        let fallback = p.get("FallbackReason");
        let changes = PayOutFromApi {
            mode_applied: read::text(p, "ModeApplied"),
            fallback_reason_code: fallback.map(|r| read::text(r, "Code").flatten()),
            fallback_reason_message: fallback.map(|r| read::text(r, "Message").flatten()),
            tag: if scope == Scope::All {
                read::text(p, "Tag")
            } else {
                None
            },
            status: f.status.clone(),
            result_code: f.result_code.clone(),
            result_message: f.result_message.clone(),
            credited_amount: f.credited_amount,
            execution_date: f.execution_date,
            mangopay_created_at: f.mangopay_created_at,
        };
        if f.is_empty()
            && changes.mode_applied.is_none()
            && changes.fallback_reason_code.is_none()
            && changes.tag.is_none()
        {
            return Ok(());
        }
        diesel::update(pay_outs::table.find(id))
            .set(&changes)
            .execute(conn)
            .map(drop)
    }

    fn after_failed_hook(&self, conn: &mut AnyConnection, id: i64) -> QueryResult<()> {
        follow::owe_check_now(conn, PAY_OUTS, id)
    }

    fn after_apply(&self, conn: &mut AnyConnection, id: i64, hooks: &Hooks) -> Result<(), Error> {
        follow::after_answer::<Self>(conn, id)?;
        let Some(hook) = hooks.pay_out_succeeded() else {
            return Ok(());
        };
        run_succeeded_hook(conn, id, hook).map(drop)
    }

    fn create_request(&self, tag: Option<&str>) -> Result<ApiRequest, Error> {
        let p = &self.parents;
        let m = Self::MODEL;
        let author = p
            .author
            .created(m, "author_id", "MangopayUser", self.author_id)?;
        let wallet = p.wallet.created(
            m,
            "debited_wallet_id",
            "MangopayWallet",
            self.debited_wallet_id,
        )?;
        let (field, parent, id) = self.destination_names();
        let destination = p.destination.created(m, field, parent, id)?;
        let mut b = CreateBody::new();
        b.put("AuthorId", Some(author))
            .put("DebitedFunds", Some(self.debited_funds.to_api()))
            .put("Fees", Some(self.fees.to_api()))
            .put("DebitedWalletId", Some(wallet))
            .put("BankAccountId", Some(destination))
            .put("BankWireRef", self.bank_wire_ref.as_deref())
            .put("PayoutModeRequested", Some(self.mode_requested.as_str()))
            .put("Tag", tag);
        Ok(ApiRequest {
            path: "payouts/bankwire".into(),
            body: b.finish(),
        })
    }

    fn update_request(&self, _tag: Option<&str>) -> Result<UpdateRequest, Error> {
        Err(super::transfer::not_updatable(Self::MODEL, self.id))
    }

    fn view_path(&self, mangopay_id: &str) -> String {
        // The view that also says which mode was applied.
        format!("payouts/bankwire/{mangopay_id}")
    }

    fn listing(&self) -> Listing {
        Listing {
            path: format!(
                "wallets/{}/transactions",
                self.parents
                    .wallet
                    .mangopay_id
                    .as_deref()
                    .unwrap_or_default()
            ),
            date_filters: true,
            filters: vec![("Type", "PAYOUT".into())],
            item_path: None,
            untagged: false,
        }
    }

    fn check_found(&self, found: &Value) -> Result<(), String> {
        check_transaction(
            found,
            "PAYOUT",
            self.parents.wallet.mangopay_id.as_deref(),
            self.debited_funds,
        )
    }
}

impl Followed for MangopayPayOut {
    type Status = TransactionStatus;
    const WHAT: &'static str = "pay-out";
    const WAITING: &'static str = "CREATED";
    fn status(raw: &str) -> TransactionStatus {
        TransactionStatus::from_api(raw)
    }
    fn failed(status: &TransactionStatus) -> bool {
        *status == TransactionStatus::Failed
    }
}

/// Marks the pay-out-succeeded hook of row `id` as run and runs it, in the caller's
/// transaction, if the row is `SUCCEEDED` and the hook has not run: a second writer waits for
/// the first one's commit and then finds the mark. Returns whether it ran.
fn run_succeeded_hook(
    conn: &mut AnyConnection,
    id: i64,
    hook: &crate::hooks::PayOutHookFn,
) -> Result<bool, Error> {
    // Marked and run in one transaction: a second worker recording the same answer waits
    // for this one's commit and then finds the mark.
    let marked = diesel::update(
        pay_outs::table
            .find(id)
            .filter(pay_outs::status.eq("SUCCEEDED"))
            .filter(pay_outs::succeeded_hook_at.is_null()),
    )
    .set(pay_outs::succeeded_hook_at.eq(Some(crate::sync::now())))
    .execute(conn)?;
    if marked == 0 {
        return Ok(false);
    }
    let recorded = crate::sync::load_model::<MangopayPayOut>(conn, id)?;
    tracing::info!(id, "running the pay-out-succeeded hook");
    hook(conn, &recorded).map_err(|e| Error::Hook {
        model: <MangopayPayOut as Resource>::MODEL,
        id,
        hook: "pay-out-succeeded",
        message: e.to_string(),
    })?;
    Ok(true)
}
