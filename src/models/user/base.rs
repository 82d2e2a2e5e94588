//! The `mangopay_users` row both kinds of user share: the fields the application owns, the
//! facts Mangopay owns, and how an answer is written into them.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;

use super::super::types::{Address, KycLevel, PersonType, UserCategory, UserStatus, read};
use crate::Error;
use crate::db::{AnyConnection, MultiBackend};
use crate::schema::mangopay_users;
use crate::sync::tag::{MAX_APP_TAG_LEN, looks_marked};
use crate::sync::{Resource, Scope};
use crate::validate::{self, FieldErrorKind, ValidationErrors};

/// What Mangopay says about a user, and only Mangopay sets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserFacts {
    /// `KYCLevel`.
    pub kyc_level: Option<KycLevel>,
    /// `UserStatus`.
    pub user_status: Option<UserStatus>,
    /// `TermsAndConditionsAcceptedDate`.
    pub terms_and_conditions_accepted_at: Option<DateTime<Utc>>,
    /// `CreationDate`.
    pub mangopay_created_at: Option<DateTime<Utc>>,
}

/// The `mangopay_users` columns both kinds read (the sync columns are the core's).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = mangopay_users)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite, MultiBackend))]
pub(crate) struct UserRow {
    pub id: i64,
    pub person_type: String,
    pub app_user_ref: Option<String>,
    pub user_category: String,
    pub terms_and_conditions_accepted: bool,
    pub terms_and_conditions_accepted_at: Option<NaiveDateTime>,
    pub email: String,
    pub tag: Option<String>,
    pub kyc_level: Option<String>,
    pub user_status: Option<String>,
    pub mangopay_created_at: Option<NaiveDateTime>,
}

impl UserRow {
    pub(crate) fn facts(&self) -> UserFacts {
        let utc = |t: Option<NaiveDateTime>| t.map(|t| t.and_utc());
        UserFacts {
            kyc_level: self.kyc_level.as_deref().map(KycLevel::from_api),
            user_status: self.user_status.as_deref().map(UserStatus::from_api),
            terms_and_conditions_accepted_at: utc(self.terms_and_conditions_accepted_at),
            mangopay_created_at: utc(self.mangopay_created_at),
        }
    }

    pub(crate) fn kind(&self) -> PersonType {
        PersonType::from_api(&self.person_type)
    }

    pub(crate) fn category(&self) -> UserCategory {
        UserCategory::from_api(&self.user_category)
    }
}

/// The fields of the base row that the application owns.
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = mangopay_users, treat_none_as_null = true)]
pub(crate) struct BaseFields {
    pub app_user_ref: Option<String>,
    pub user_category: String,
    pub terms_and_conditions_accepted: bool,
    pub email: String,
    pub tag: Option<String>,
}

#[derive(Insertable)]
#[diesel(table_name = mangopay_users)]
struct NewUserRow {
    #[diesel(embed)]
    fields: BaseFields,
    person_type: String,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

/// Inserts the base row of a user of `kind`; returns its id.
pub(crate) fn insert(
    conn: &mut AnyConnection,
    fields: BaseFields,
    kind: PersonType,
    now: NaiveDateTime,
) -> QueryResult<i64> {
    diesel::insert_into(mangopay_users::table)
        .values(NewUserRow {
            fields,
            person_type: kind.as_str().to_owned(),
            created_at: now,
            updated_at: now,
        })
        .returning(mangopay_users::id)
        .get_result(conn)
}

/// Writes the application's base fields.
pub(crate) fn write(conn: &mut AnyConnection, id: i64, fields: BaseFields) -> QueryResult<()> {
    diesel::update(mangopay_users::table.find(id))
        .set(fields)
        .execute(conn)
        .map(drop)
}

/// What an answer says about the base row; an absent key leaves its column alone.
#[derive(AsChangeset, Default)]
#[diesel(table_name = mangopay_users)]
struct BaseFromApi {
    kyc_level: Option<Option<String>>,
    user_status: Option<Option<String>>,
    terms_and_conditions_accepted_at: Option<Option<NaiveDateTime>>,
    mangopay_created_at: Option<Option<NaiveDateTime>>,
    user_category: Option<String>,
    terms_and_conditions_accepted: Option<bool>,
    email: Option<String>,
    tag: Option<Option<String>>,
}

/// Writes an answer into the base row: Mangopay's facts always, the application's fields in
/// scope [`Scope::All`] only.
pub(crate) fn apply(conn: &mut AnyConnection, id: i64, p: &Value, scope: Scope) -> QueryResult<()> {
    let mut changes = BaseFromApi {
        kyc_level: read::text(p, "KYCLevel"),
        user_status: read::text(p, "UserStatus"),
        terms_and_conditions_accepted_at: read::timestamp(p, "TermsAndConditionsAcceptedDate"),
        mangopay_created_at: read::timestamp(p, "CreationDate"),
        ..BaseFromApi::default()
    };
    if scope == Scope::All {
        changes.user_category = read::required(read::text(p, "UserCategory"));
        changes.terms_and_conditions_accepted = read::boolean(p, "TermsAndConditionsAccepted");
        changes.email = read::required(read::text(p, "Email"));
        changes.tag = read::text(p, "Tag");
    }
    let empty = changes.kyc_level.is_none()
        && changes.user_status.is_none()
        && changes.terms_and_conditions_accepted_at.is_none()
        && changes.mangopay_created_at.is_none()
        && changes.user_category.is_none()
        && changes.terms_and_conditions_accepted.is_none()
        && changes.email.is_none()
        && changes.tag.is_none();
    if empty {
        return Ok(());
    }
    diesel::update(mangopay_users::table.find(id))
        .set(&changes)
        .execute(conn)
        .map(drop)
}

/// Checks the fields both user kinds share: category, terms, e-mail, tag, application ref.
pub(crate) fn validate_common(
    errors: &mut ValidationErrors,
    category: &UserCategory,
    terms: bool,
    email: &str,
    tag: Option<&str>,
    app_user_ref: Option<&str>,
) {
    if !matches!(category, UserCategory::Payer | UserCategory::Owner) {
        errors.push(
            "user_category",
            FieldErrorKind::NotAllowed(format!("must be PAYER or OWNER, not {category}")),
        );
    }
    if *category == UserCategory::Owner && !terms {
        errors.push(
            "terms_and_conditions_accepted",
            FieldErrorKind::NotAllowed("must be true for an OWNER user".into()),
        );
    }
    errors.check("email", validate::email(email));
    errors.check("tag", validate_tag(tag));
    errors.check("app_user_ref", validate::opt_max_len(app_user_ref, 255));
}

/// An application tag fits next to the library's marker and cannot be mistaken for one.
pub(crate) fn validate_tag(tag: Option<&str>) -> Result<(), FieldErrorKind> {
    validate::opt_max_len(tag, MAX_APP_TAG_LEN)?;
    if tag.is_some_and(looks_marked) {
        return Err(FieldErrorKind::NotAllowed(
            "must not end with a `dm:{id}:{key}` marker: the library adds its own".into(),
        ));
    }
    Ok(())
}

/// Checks an optional address, naming its parts `field.line1`, `field.country`, ...
pub(crate) fn validate_address(
    errors: &mut ValidationErrors,
    field: &str,
    address: Option<&Address>,
) {
    if let Some(a) = address {
        errors.extend(a.validate().prefixed(field));
    }
}

/// Whether Mangopay's answer describes this kind of user, for adoption.
pub(crate) fn check_kind(found: &Value, kind: PersonType) -> Result<(), String> {
    match found.get("PersonType").and_then(Value::as_str) {
        Some(t) if PersonType::from_api(t) == kind => Ok(()),
        Some(t) => Err(format!("it is a {t} user, not a {kind} one")),
        None => Err("it is not a user".into()),
    }
}

/// `{kind_path}/{Id}` for a user Mangopay has, or [`Error::NotCreated`].
pub(crate) fn created_path<R: Resource>(user: &R, kind_path: &str) -> Result<String, Error> {
    let mangopay_id = user
        .sync()
        .mangopay_id
        .as_deref()
        .ok_or(Error::NotCreated {
            model: R::MODEL,
            id: user.id().unwrap_or_default(),
        })?;
    Ok(format!("{kind_path}/{mangopay_id}"))
}
