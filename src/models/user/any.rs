//! [`MangopayUser`]: a user of either kind, loaded by local id.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::Value;

use super::USERS;
use super::base::UserRow;
use super::legal::{LegalRow, MangopayLegalUser};
use super::natural::{MangopayNaturalUser, NaturalRow};
use crate::Error;
use crate::db::AnyConnection;
use crate::models::types::PersonType;
use crate::schema::{
    mangopay_legal_users as legal, mangopay_natural_users as natural, mangopay_users,
};
use crate::sync::{ApiRequest, Listing, Resource, Scope, SyncInfo, SyncTable, UpdateRequest};
use crate::validate::ValidationErrors;

/// A user of either kind: what the jobs load by id, whatever the user is.
#[derive(Debug, Clone, PartialEq)]
pub enum MangopayUser {
    /// A natural user.
    Natural(MangopayNaturalUser),
    /// A legal user.
    Legal(MangopayLegalUser),
}

/// Runs `$body` with `$u` bound to the user inside, whatever its kind.
macro_rules! each {
    ($user:expr, |$u:ident| $body:expr) => {
        match $user {
            MangopayUser::Natural($u) => $body,
            MangopayUser::Legal($u) => $body,
        }
    };
}

impl MangopayUser {
    /// What Mangopay says about the user (verification level, status, dates).
    pub fn facts(&self) -> &super::UserFacts {
        each!(self, |u| u.facts())
    }

    /// Whether this is a natural or a legal user.
    pub fn person_type(&self) -> PersonType {
        match self {
            MangopayUser::Natural(_) => PersonType::Natural,
            MangopayUser::Legal(_) => PersonType::Legal,
        }
    }
}

crate::models::resource_methods!(MangopayUser, "user");
crate::models::update_method!(MangopayUser);

impl Resource for MangopayUser {
    const MODEL: &'static str = "MangopayUser";
    const TABLE: SyncTable = USERS;

    fn id(&self) -> Option<i64> {
        each!(self, |u| u.id)
    }
    fn set_id(&mut self, id: i64) {
        each!(self, |u| u.id = Some(id))
    }
    fn sync(&self) -> &SyncInfo {
        each!(self, |u| Resource::sync(u))
    }
    fn set_sync(&mut self, sync: SyncInfo) {
        each!(self, |u| u.set_sync(sync))
    }
    fn validate(&self) -> Result<(), ValidationErrors> {
        each!(self, |u| u.validate())
    }
    fn app_tag(&self) -> Option<&str> {
        each!(self, |u| u.tag.as_deref())
    }

    /// One statement: the base row with whichever details it has.
    fn load(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<Self>> {
        let found = mangopay_users::table
            .left_join(natural::table)
            .left_join(legal::table)
            .filter(mangopay_users::id.eq(id))
            .select((
                UserRow::as_select(),
                natural::all_columns.nullable(),
                legal::all_columns.nullable(),
            ))
            .first::<(UserRow, Option<NaturalRow>, Option<LegalRow>)>(conn)
            .optional()?;
        Ok(found.and_then(|(base, n, l)| match (base.kind(), n, l) {
            (PersonType::Natural, Some(n), _) => Some(MangopayUser::Natural(n.into_model(base))),
            (PersonType::Legal, _, Some(l)) => Some(MangopayUser::Legal(l.into_model(base))),
            _ => None,
        }))
    }

    fn insert(&self, conn: &mut AnyConnection, now: NaiveDateTime) -> QueryResult<i64> {
        each!(self, |u| u.insert(conn, now))
    }
    fn write_fields(&self, conn: &mut AnyConnection, id: i64) -> QueryResult<()> {
        each!(self, |u| u.write_fields(conn, id))
    }
    fn apply_api_data(
        &self,
        conn: &mut AnyConnection,
        id: i64,
        data: &Value,
        scope: Scope,
    ) -> QueryResult<()> {
        each!(self, |u| u.apply_api_data(conn, id, data, scope))
    }
    fn create_request(&self, tag: Option<&str>) -> Result<ApiRequest, Error> {
        each!(self, |u| u.create_request(tag))
    }
    fn update_request(&self, tag: Option<&str>) -> Result<UpdateRequest, Error> {
        each!(self, |u| u.update_request(tag))
    }
    fn view_path(&self, mangopay_id: &str) -> String {
        each!(self, |u| u.view_path(mangopay_id))
    }
    fn listing(&self) -> Listing {
        super::listing()
    }
    fn check_found(&self, found: &Value) -> Result<(), String> {
        each!(self, |u| u.check_found(found))
    }
}
