//! Parents: the rows a model refers to (its owner, its wallets, its bank account), read as
//! committed when a request is built ([`Resource::resolve`](crate::sync::Resource::resolve))
//! and checked before a create's first send
//! ([`Resource::parents_ready`](crate::sync::Resource::parents_ready)).

use diesel::prelude::*;

use crate::Error;
use crate::db::AnyConnection;
use crate::schema::{
    mangopay_bank_accounts, mangopay_legal_users, mangopay_recipients, mangopay_users,
    mangopay_wallets,
};
use crate::validate::{FieldErrorKind, ValidationErrors};

/// What a model knows about one parent: the parent's local id (the model's field) and, once
/// resolved, what the parent's row says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Parent {
    /// The parent's Mangopay id, if it has one.
    pub mangopay_id: Option<String>,
    /// The parent's currency (wallets, recipients).
    pub currency: Option<String>,
    /// The parent's owner (a wallet's, a bank account's, a recipient's user).
    pub owner_id: Option<i64>,
    /// Why the parent cannot be used, if it cannot (deactivated, not ACTIVE).
    pub unusable: Option<String>,
}

impl Parent {
    /// The parent's Mangopay id, or [`Error::ParentNotCreated`].
    pub(crate) fn created(
        &self,
        model: &'static str,
        field: &'static str,
        parent: &'static str,
        parent_id: i64,
    ) -> Result<&str, Error> {
        self.mangopay_id.as_deref().ok_or(Error::ParentNotCreated {
            model,
            field,
            parent,
            parent_id,
        })
    }

    /// Created and usable, or the error that says why not.
    pub(crate) fn ready(
        &self,
        model: &'static str,
        field: &'static str,
        parent: &'static str,
        parent_id: i64,
    ) -> Result<(), Error> {
        self.created(model, field, parent, parent_id)?;
        match &self.unusable {
            Some(reason) => Err(Error::ParentNotUsable {
                model,
                field,
                parent,
                parent_id,
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }
}

/// `field` refers to no row of `parent`.
fn missing(field: &'static str, parent: &str, id: i64) -> Error {
    let mut e = ValidationErrors::new();
    e.push(
        field,
        FieldErrorKind::NotAllowed(format!("there is no {parent} with id {id}")),
    );
    Error::Validation(e)
}

/// The user `id`.
pub(crate) fn user(
    conn: &mut AnyConnection,
    field: &'static str,
    id: i64,
) -> Result<Parent, Error> {
    let found = mangopay_users::table
        .find(id)
        .select(mangopay_users::mangopay_id)
        .first::<Option<String>>(conn)
        .optional()?;
    let mangopay_id = found.ok_or_else(|| missing(field, "MangopayUser", id))?;
    Ok(Parent {
        mangopay_id,
        owner_id: Some(id),
        ..Parent::default()
    })
}

/// A user as KYC sees it: the parent, and what decides which documents it may send.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct KycUser {
    /// The user as a parent.
    pub parent: Parent,
    /// `LEGAL` users have a legal person type; `None` for a natural user.
    pub legal_person_type: Option<String>,
    /// Whether the user's category is `OWNER` (only owners submit documents).
    pub owner: bool,
}

/// The user `id`, with its person type and category.
pub(crate) fn kyc_user(
    conn: &mut AnyConnection,
    field: &'static str,
    id: i64,
) -> Result<KycUser, Error> {
    let found = mangopay_users::table
        .find(id)
        .select((
            mangopay_users::mangopay_id,
            mangopay_users::person_type,
            mangopay_users::user_category,
        ))
        .first::<(Option<String>, String, String)>(conn)
        .optional()?;
    let (mangopay_id, person_type, category) =
        found.ok_or_else(|| missing(field, "MangopayUser", id))?;
    let legal_person_type = if person_type == "LEGAL" {
        mangopay_legal_users::table
            .find(id)
            .select(mangopay_legal_users::legal_person_type)
            .first::<String>(conn)
            .optional()?
    } else {
        None
    };
    Ok(KycUser {
        parent: Parent {
            mangopay_id,
            owner_id: Some(id),
            ..Parent::default()
        },
        legal_person_type,
        owner: category == "OWNER",
    })
}

/// The wallet `id`.
pub(crate) fn wallet(
    conn: &mut AnyConnection,
    field: &'static str,
    id: i64,
) -> Result<Parent, Error> {
    let found = mangopay_wallets::table
        .find(id)
        .select((
            mangopay_wallets::mangopay_id,
            mangopay_wallets::currency,
            mangopay_wallets::owner_id,
        ))
        .first::<(Option<String>, String, i64)>(conn)
        .optional()?;
    let (mangopay_id, currency, owner_id) =
        found.ok_or_else(|| missing(field, "MangopayWallet", id))?;
    Ok(Parent {
        mangopay_id,
        currency: Some(currency),
        owner_id: Some(owner_id),
        unusable: None,
    })
}

/// The bank account `id`.
pub(crate) fn bank_account(
    conn: &mut AnyConnection,
    field: &'static str,
    id: i64,
) -> Result<Parent, Error> {
    let found = mangopay_bank_accounts::table
        .find(id)
        .select((
            mangopay_bank_accounts::mangopay_id,
            mangopay_bank_accounts::user_id,
            mangopay_bank_accounts::active,
        ))
        .first::<(Option<String>, i64, bool)>(conn)
        .optional()?;
    let (mangopay_id, owner_id, active) =
        found.ok_or_else(|| missing(field, "MangopayBankAccount", id))?;
    Ok(Parent {
        mangopay_id,
        currency: None,
        owner_id: Some(owner_id),
        unusable: (!active).then(|| "it is deactivated".to_owned()),
    })
}

/// The recipient `id`: usable for a pay-out once `ACTIVE` with scope `PAYOUT`.
pub(crate) fn recipient(
    conn: &mut AnyConnection,
    field: &'static str,
    id: i64,
) -> Result<Parent, Error> {
    let found = mangopay_recipients::table
        .find(id)
        .select((
            mangopay_recipients::mangopay_id,
            mangopay_recipients::user_id,
            mangopay_recipients::currency,
            mangopay_recipients::status,
            mangopay_recipients::recipient_scope,
        ))
        .first::<(Option<String>, i64, String, Option<String>, String)>(conn)
        .optional()?;
    let (mangopay_id, owner_id, currency, status, scope) =
        found.ok_or_else(|| missing(field, "MangopayRecipient", id))?;
    let unusable = match status.as_deref() {
        _ if scope != "PAYOUT" => Some(format!(
            "its scope is {scope}: only PAYOUT recipients receive pay-outs"
        )),
        Some("ACTIVE") => None,
        Some("PENDING") => Some(
            "it is PENDING: its owner has not completed strong customer authentication yet"
                .to_owned(),
        ),
        Some(other) => Some(format!("it is {other}")),
        None => Some("its status is not known yet".to_owned()),
    };
    Ok(Parent {
        mangopay_id,
        currency: Some(currency),
        owner_id: Some(owner_id),
        unusable,
    })
}

/// A currency mismatch between the model (`currency`) and a parent, as a field error.
pub(crate) fn same_currency(
    errors: &mut ValidationErrors,
    field: &'static str,
    parent: &Parent,
    currency: &str,
) {
    if let Some(theirs) = parent.currency.as_deref()
        && theirs != currency
    {
        errors.push(
            field,
            FieldErrorKind::NotAllowed(format!("is in {theirs}, not {currency}")),
        );
    }
}

/// `user_id` does not own `parent` (`what` names it), as a field error.
pub(crate) fn owned_by(
    errors: &mut ValidationErrors,
    field: &'static str,
    parent: &Parent,
    user_id: i64,
    what: &str,
) {
    if let Some(owner) = parent.owner_id
        && owner != user_id
        && !errors.has(field)
    {
        errors.push(
            field,
            FieldErrorKind::NotAllowed(format!(
                "must own {what} (its owner is user {owner}, not {user_id})"
            )),
        );
    }
}

/// The card `id`: usable while active.
pub(crate) fn card(
    conn: &mut AnyConnection,
    field: &'static str,
    id: i64,
) -> Result<Parent, Error> {
    use crate::schema::mangopay_cards;
    let found = mangopay_cards::table
        .find(id)
        .select((
            mangopay_cards::mangopay_id,
            mangopay_cards::currency,
            mangopay_cards::user_id,
            mangopay_cards::active,
        ))
        .first::<(Option<String>, Option<String>, i64, bool)>(conn)
        .optional()?;
    let (mangopay_id, currency, owner_id, active) =
        found.ok_or_else(|| missing(field, "MangopayCard", id))?;
    Ok(Parent {
        mangopay_id,
        currency,
        owner_id: Some(owner_id),
        unusable: (!active).then(|| "it is deactivated".to_owned()),
    })
}
