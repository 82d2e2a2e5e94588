//! `MangopayNaturalUser`: an individual, mirrored from Mangopay's
//! [Natural User object](https://docs.mangopay.com/api-reference/users/natural-user-object).

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde_json::Value;

use super::USERS;
use super::base::{self, BaseFields, UserFacts, UserRow};
use crate::Error;
use crate::db::{AnyConnection, MultiBackend};
use crate::models::types::{
    Address, AddressColumns, IncomeRange, PersonType, UserCategory, birthday_to_api, read,
};
use crate::schema::{mangopay_natural_users as natural, mangopay_users};
use crate::sync::body::{Clear, CreateBody, UpdateBody};
use crate::sync::{ApiRequest, Listing, Resource, Scope, SyncInfo, SyncTable, UpdateRequest};
use crate::validate::{self, CountryCode, FieldErrorKind, ValidationErrors};

/// An individual's Mangopay user, kept in `mangopay_users` plus `mangopay_natural_users`.
///
/// Build one with [`MangopayNaturalUser::builder`], [`save`](Self::save) it, then
/// [`create`](Self::create) it at Mangopay (or enqueue the `create_mangopay_user` job).
/// Fields are public; every method that writes or sends validates them first and answers bad
/// input with [`Error::Validation`] naming the field, leaving the database untouched.
#[derive(Debug, Clone, PartialEq)]
pub struct MangopayNaturalUser {
    /// The local id; `None` until the first save.
    pub id: Option<i64>,
    /// The application's own reference to its user (a primary key, a UUID...), up to 255
    /// characters. Not sent to Mangopay.
    pub app_user_ref: Option<String>,
    /// `UserCategory`: PAYER, or OWNER (who can be paid and verified).
    pub user_category: UserCategory,
    /// `TermsAndConditionsAccepted`; must be true for an OWNER.
    pub terms_and_conditions_accepted: bool,
    /// `FirstName`, 1 to 100 characters.
    pub first_name: String,
    /// `LastName`, 1 to 100 characters.
    pub last_name: String,
    /// `Email`.
    pub email: String,
    /// `Birthday` (sent as midnight UTC); required for an OWNER, not in the future.
    pub birthday: Option<NaiveDate>,
    /// `Nationality`; required for an OWNER.
    pub nationality: Option<CountryCode>,
    /// `CountryOfResidence`; required for an OWNER.
    pub country_of_residence: Option<CountryCode>,
    /// `Address`.
    pub address: Option<Address>,
    /// `Occupation`, up to 255 characters.
    pub occupation: Option<String>,
    /// `IncomeRange`.
    pub income_range: Option<IncomeRange>,
    /// `Tag`: the application's note on the Mangopay object, up to
    /// [`MAX_APP_TAG_LEN`](crate::sync::tag::MAX_APP_TAG_LEN) characters (Mangopay's 255
    /// less the marker the library appends to recognise its objects).
    pub tag: Option<String>,
    facts: UserFacts,
    sync: SyncInfo,
}

/// Builds a [`MangopayNaturalUser`], checking every field in [`build`](Self::build).
#[derive(Debug, Clone, Default)]
pub struct NaturalUserBuilder {
    app_user_ref: Option<String>,
    user_category: Option<UserCategory>,
    terms: bool,
    first_name: String,
    last_name: String,
    email: String,
    birthday: Option<NaiveDate>,
    nationality: Option<String>,
    country_of_residence: Option<String>,
    address: Option<Address>,
    occupation: Option<String>,
    income_range: Option<i64>,
    tag: Option<String>,
}

impl NaturalUserBuilder {
    /// The application's own reference to its user.
    pub fn app_user_ref(mut self, v: impl Into<String>) -> Self {
        self.app_user_ref = Some(v.into());
        self
    }
    /// PAYER or OWNER (required).
    pub fn user_category(mut self, v: UserCategory) -> Self {
        self.user_category = Some(v);
        self
    }
    /// Whether Mangopay's terms and conditions were accepted.
    pub fn terms_and_conditions_accepted(mut self, v: bool) -> Self {
        self.terms = v;
        self
    }
    /// The first name.
    pub fn first_name(mut self, v: impl Into<String>) -> Self {
        self.first_name = v.into();
        self
    }
    /// The last name.
    pub fn last_name(mut self, v: impl Into<String>) -> Self {
        self.last_name = v.into();
        self
    }
    /// The e-mail address.
    pub fn email(mut self, v: impl Into<String>) -> Self {
        self.email = v.into();
        self
    }
    /// The date of birth.
    pub fn birthday(mut self, v: NaiveDate) -> Self {
        self.birthday = Some(v);
        self
    }
    /// The nationality, an ISO 3166-1 alpha-2 code.
    pub fn nationality(mut self, v: impl Into<String>) -> Self {
        self.nationality = Some(v.into());
        self
    }
    /// The country of residence, an ISO 3166-1 alpha-2 code.
    pub fn country_of_residence(mut self, v: impl Into<String>) -> Self {
        self.country_of_residence = Some(v.into());
        self
    }
    /// The postal address.
    pub fn address(mut self, v: Address) -> Self {
        self.address = Some(v);
        self
    }
    /// The occupation.
    pub fn occupation(mut self, v: impl Into<String>) -> Self {
        self.occupation = Some(v.into());
        self
    }
    /// The income bracket, 1 to 6.
    pub fn income_range(mut self, v: i64) -> Self {
        self.income_range = Some(v);
        self
    }
    /// The tag.
    pub fn tag(mut self, v: impl Into<String>) -> Self {
        self.tag = Some(v.into());
        self
    }

    /// Checks every field; the errors name each rejected field.
    pub fn build(self) -> Result<MangopayNaturalUser, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let nationality = errors.country("nationality", self.nationality);
        let country_of_residence =
            errors.country("country_of_residence", self.country_of_residence);
        let income_range = self.income_range.and_then(|v| match IncomeRange::new(v) {
            Ok(r) => Some(r),
            Err(kind) => {
                errors.push("income_range", kind);
                None
            }
        });
        if self.user_category.is_none() {
            errors.push("user_category", FieldErrorKind::Required);
        }
        let user = MangopayNaturalUser {
            id: None,
            app_user_ref: self.app_user_ref,
            user_category: self.user_category.unwrap_or(UserCategory::Payer),
            terms_and_conditions_accepted: self.terms,
            first_name: self.first_name,
            last_name: self.last_name,
            email: self.email,
            birthday: self.birthday,
            nationality,
            country_of_residence,
            address: self.address,
            occupation: self.occupation,
            income_range,
            tag: self.tag,
            facts: UserFacts::default(),
            sync: SyncInfo::default(),
        };
        errors.merge_unreported(user.validate());
        errors.into_result().map(|()| user)
    }
}

impl MangopayNaturalUser {
    /// Starts building a natural user.
    pub fn builder() -> NaturalUserBuilder {
        NaturalUserBuilder::default()
    }

    /// What Mangopay says about the user (verification level, status, dates).
    pub fn facts(&self) -> &UserFacts {
        &self.facts
    }

    /// Every problem with the current field values, or `Ok`.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut e = ValidationErrors::new();
        let owner = self.user_category == UserCategory::Owner;
        base::validate_common(
            &mut e,
            &self.user_category,
            self.terms_and_conditions_accepted,
            &self.email,
            self.tag.as_deref(),
            self.app_user_ref.as_deref(),
        );
        e.check("first_name", validate::name(&self.first_name, 100));
        e.check("last_name", validate::name(&self.last_name, 100));
        let why = "for an OWNER user";
        e.check(
            "birthday",
            validate::present_if(self.birthday, owner, why)
                .and_then(|()| validate::not_in_future(self.birthday)),
        );
        e.check(
            "nationality",
            validate::present_if(self.nationality, owner, why),
        );
        e.check(
            "country_of_residence",
            validate::present_if(self.country_of_residence, owner, why),
        );
        base::validate_address(&mut e, "address", self.address.as_ref());
        e.check(
            "occupation",
            validate::opt_max_len(self.occupation.as_deref(), 255),
        );
        e.into_result()
    }

    fn base_fields(&self) -> BaseFields {
        BaseFields {
            app_user_ref: self.app_user_ref.clone(),
            user_category: self.user_category.as_str().to_owned(),
            terms_and_conditions_accepted: self.terms_and_conditions_accepted,
            email: self.email.clone(),
            tag: self.tag.clone(),
        }
    }
}

crate::models::resource_methods!(MangopayNaturalUser, "natural user");
crate::models::update_method!(MangopayNaturalUser);

/// The `mangopay_natural_users` row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = natural, primary_key(user_id), treat_none_as_null = true)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite, MultiBackend))]
pub(crate) struct NaturalRow {
    user_id: i64,
    first_name: String,
    last_name: String,
    birthday: Option<NaiveDate>,
    nationality: Option<String>,
    country_of_residence: Option<String>,
    occupation: Option<String>,
    income_range: Option<i32>,
    address_line1: Option<String>,
    address_line2: Option<String>,
    address_city: Option<String>,
    address_region: Option<String>,
    address_postal_code: Option<String>,
    address_country: Option<String>,
}

impl NaturalRow {
    fn of(u: &MangopayNaturalUser, user_id: i64) -> Self {
        let (
            address_line1,
            address_line2,
            address_city,
            address_region,
            address_postal_code,
            address_country,
        ) = Address::into_columns(u.address.as_ref());
        NaturalRow {
            user_id,
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            birthday: u.birthday,
            nationality: u.nationality.map(|c| c.to_string()),
            country_of_residence: u.country_of_residence.map(|c| c.to_string()),
            occupation: u.occupation.clone(),
            income_range: u.income_range.map(|r| i32::from(r.get())),
            address_line1,
            address_line2,
            address_city,
            address_region,
            address_postal_code,
            address_country,
        }
    }

    fn address(&self) -> AddressColumns {
        (
            self.address_line1.clone(),
            self.address_line2.clone(),
            self.address_city.clone(),
            self.address_region.clone(),
            self.address_postal_code.clone(),
            self.address_country.clone(),
        )
    }

    /// The model from its two rows.
    pub(crate) fn into_model(self, base: UserRow) -> MangopayNaturalUser {
        MangopayNaturalUser {
            id: Some(base.id),
            app_user_ref: base.app_user_ref.clone(),
            user_category: base.category(),
            terms_and_conditions_accepted: base.terms_and_conditions_accepted,
            email: base.email.clone(),
            tag: base.tag.clone(),
            birthday: self.birthday,
            nationality: self.nationality.as_deref().and_then(CountryCode::from_api),
            country_of_residence: self
                .country_of_residence
                .as_deref()
                .and_then(CountryCode::from_api),
            address: Address::from_columns(self.address()),
            occupation: self.occupation.clone(),
            income_range: self
                .income_range
                .and_then(|r| IncomeRange::new(i64::from(r)).ok()),
            first_name: self.first_name,
            last_name: self.last_name,
            facts: base.facts(),
            sync: SyncInfo::default(),
        }
    }
}

/// What an API answer says about the detail row; absent keys leave columns alone.
#[derive(AsChangeset, Default)]
#[diesel(table_name = natural)]
struct NaturalFromApi {
    first_name: Option<String>,
    last_name: Option<String>,
    birthday: Option<Option<NaiveDate>>,
    nationality: Option<Option<String>>,
    country_of_residence: Option<Option<String>>,
    occupation: Option<Option<String>>,
    income_range: Option<Option<i32>>,
    address_line1: Option<Option<String>>,
    address_line2: Option<Option<String>>,
    address_city: Option<Option<String>>,
    address_region: Option<Option<String>>,
    address_postal_code: Option<Option<String>>,
    address_country: Option<Option<String>>,
}

/// Address columns from an API answer: absent key → untouched, null or empty → all cleared.
pub(crate) fn address_changes(payload: &Value, key: &str) -> Option<[Option<String>; 6]> {
    let value = payload.get(key)?;
    let a = Address::from_api(value);
    let (l1, l2, city, region, postal, country) = Address::into_columns(a.as_ref());
    Some([l1, l2, city, region, postal, country])
}

/// A country from an API answer, as stored.
pub(crate) fn country(p: &Value, key: &str) -> Option<Option<String>> {
    read::text(p, key).map(|v| {
        v.as_deref()
            .and_then(CountryCode::from_api)
            .map(|c| c.to_string())
    })
}

impl Resource for MangopayNaturalUser {
    const MODEL: &'static str = "MangopayNaturalUser";
    const TABLE: SyncTable = USERS;

    crate::sync::row_accessors!();
    fn validate(&self) -> Result<(), ValidationErrors> {
        MangopayNaturalUser::validate(self)
    }
    fn app_tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    fn load(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<Self>> {
        let found = mangopay_users::table
            .inner_join(natural::table)
            .filter(mangopay_users::id.eq(id))
            .select((UserRow::as_select(), NaturalRow::as_select()))
            .first::<(UserRow, NaturalRow)>(conn)
            .optional()?;
        Ok(found.map(|(base, details)| details.into_model(base)))
    }

    fn insert(&self, conn: &mut AnyConnection, now: NaiveDateTime) -> QueryResult<i64> {
        let id = base::insert(conn, self.base_fields(), PersonType::Natural, now)?;
        diesel::insert_into(natural::table)
            .values(NaturalRow::of(self, id))
            .execute(conn)?;
        Ok(id)
    }

    fn write_fields(&self, conn: &mut AnyConnection, id: i64) -> QueryResult<()> {
        base::write(conn, id, self.base_fields())?;
        diesel::update(natural::table.find(id))
            .set(NaturalRow::of(self, id))
            .execute(conn)
            .map(drop)
    }

    fn apply_api_data(
        &self,
        conn: &mut AnyConnection,
        id: i64,
        p: &Value,
        scope: Scope,
    ) -> QueryResult<()> {
        base::apply(conn, id, p, scope)?;
        if scope != Scope::All {
            return Ok(());
        }
        let mut changes = NaturalFromApi {
            first_name: read::required(read::text(p, "FirstName")),
            last_name: read::required(read::text(p, "LastName")),
            birthday: read::date(p, "Birthday"),
            nationality: country(p, "Nationality"),
            country_of_residence: country(p, "CountryOfResidence"),
            occupation: read::text(p, "Occupation"),
            income_range: read::int(p, "IncomeRange")
                .map(|v| v.and_then(|n| i32::try_from(n).ok())),
            ..Default::default()
        };
        if let Some([l1, l2, city, region, postal, country]) = address_changes(p, "Address") {
            changes.address_line1 = Some(l1);
            changes.address_line2 = Some(l2);
            changes.address_city = Some(city);
            changes.address_region = Some(region);
            changes.address_postal_code = Some(postal);
            changes.address_country = Some(country);
        }
        if changes.first_name.is_none() && changes.last_name.is_none() {
            // A list summary or another partial object: nothing about the details.
            return Ok(());
        }
        diesel::update(natural::table.find(id))
            .set(&changes)
            .execute(conn)
            .map(drop)
    }

    fn create_request(&self, tag: Option<&str>) -> Result<ApiRequest, Error> {
        let mut b = CreateBody::new();
        b.put("UserCategory", Some(self.user_category.as_str()))
            .put(
                "TermsAndConditionsAccepted",
                Some(self.terms_and_conditions_accepted),
            )
            .put("FirstName", Some(&self.first_name))
            .put("LastName", Some(&self.last_name))
            .put("Email", Some(&self.email))
            .put("Birthday", self.birthday.map(birthday_to_api))
            .put("Nationality", self.nationality.map(|c| c.to_string()))
            .put(
                "CountryOfResidence",
                self.country_of_residence.map(|c| c.to_string()),
            )
            .put("Address", self.address.as_ref().map(Address::to_api))
            .put("Occupation", self.occupation.as_deref())
            .put("IncomeRange", self.income_range.map(IncomeRange::get))
            .put("Tag", tag);
        Ok(ApiRequest {
            path: "users/natural".into(),
            body: b.finish(),
        })
    }

    fn update_request(&self, tag: Option<&str>) -> Result<UpdateRequest, Error> {
        let path = base::created_path::<Self>(self, "users/natural")?;
        let required_for_owners = "Mangopay requires it of OWNER users; set another value";
        let mut b = UpdateBody::new(self.sync.api_payload.as_ref());
        b.set("UserCategory", self.user_category.as_str())
            .set(
                "TermsAndConditionsAccepted",
                self.terms_and_conditions_accepted,
            )
            .set("FirstName", &self.first_name)
            .set("LastName", &self.last_name)
            .set("Email", &self.email)
            .opt(
                "Birthday",
                "birthday",
                self.birthday.map(birthday_to_api),
                Clear::Refuse(required_for_owners),
            )
            .opt(
                "Nationality",
                "nationality",
                self.nationality.map(|c| c.to_string()),
                Clear::Refuse(required_for_owners),
            )
            .opt(
                "CountryOfResidence",
                "country_of_residence",
                self.country_of_residence.map(|c| c.to_string()),
                Clear::Refuse(required_for_owners),
            )
            .object(
                "Address",
                "address",
                self.address
                    .as_ref()
                    .map(Address::parts)
                    .as_ref()
                    .map(|p| &p[..]),
                &Address::PARTS,
            )
            .opt(
                "Occupation",
                "occupation",
                self.occupation.as_deref(),
                Clear::EmptyString,
            )
            .opt(
                "IncomeRange",
                "income_range",
                self.income_range.map(IncomeRange::get),
                // The reference lists `null` among IncomeRange's allowed values.
                Clear::Null,
            )
            .opt("Tag", "tag", tag, Clear::EmptyString);
        let (body, cleared) = b.finish()?;
        Ok(UpdateRequest {
            request: ApiRequest { path, body },
            cleared,
        })
    }

    fn view_path(&self, mangopay_id: &str) -> String {
        format!("users/natural/{mangopay_id}")
    }

    fn listing(&self) -> Listing {
        super::listing()
    }

    fn check_found(&self, found: &Value) -> Result<(), String> {
        base::check_kind(found, PersonType::Natural)
    }
}
