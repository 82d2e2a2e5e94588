//! `MangopayLegalUser`: a company, organisation, partnership or sole trader, mirrored from
//! Mangopay's [Legal User object](https://docs.mangopay.com/api-reference/users/legal-user-object).

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde_json::Value;

use super::USERS;
use super::base::{self, BaseFields, UserFacts, UserRow};
use super::natural::{address_changes, country};
use crate::Error;
use crate::db::{AnyConnection, MultiBackend};
use crate::models::types::{
    Address, AddressColumns, LegalPersonType, PersonType, UserCategory, birthday_to_api, read,
};
use crate::schema::{mangopay_legal_users as legal, mangopay_users};
use crate::sync::body::{Clear, CreateBody, UpdateBody};
use crate::sync::{ApiRequest, Listing, Resource, Scope, SyncInfo, SyncTable, UpdateRequest};
use crate::validate::{self, CountryCode, FieldErrorKind, ValidationErrors};

/// A legal entity's Mangopay user, kept in `mangopay_users` plus `mangopay_legal_users`.
///
/// Works like [`crate::MangopayNaturalUser`]: build, [`save`](Self::save),
/// [`create`](Self::create) (or enqueue the job), [`update`](Self::update),
/// [`refresh`](Self::refresh).
#[derive(Debug, Clone, PartialEq)]
pub struct MangopayLegalUser {
    /// The local id; `None` until the first save.
    pub id: Option<i64>,
    /// The application's own reference to its user, up to 255 characters. Not sent.
    pub app_user_ref: Option<String>,
    /// `UserCategory`: PAYER or OWNER.
    pub user_category: UserCategory,
    /// `TermsAndConditionsAccepted`; must be true for an OWNER.
    pub terms_and_conditions_accepted: bool,
    /// `LegalPersonType`.
    pub legal_person_type: LegalPersonType,
    /// `Name`: the registered name, up to 255 characters.
    pub name: String,
    /// `Email`: the entity's e-mail address.
    pub email: String,
    /// `HeadquartersAddress`; required for an OWNER.
    pub headquarters_address: Option<Address>,
    /// `CompanyNumber`; required for an OWNER that is a BUSINESS.
    pub company_number: Option<String>,
    /// `LegalRepresentativeFirstName`, 1 to 100 characters.
    pub legal_representative_first_name: String,
    /// `LegalRepresentativeLastName`, 1 to 100 characters.
    pub legal_representative_last_name: String,
    /// `LegalRepresentativeEmail`.
    pub legal_representative_email: Option<String>,
    /// `LegalRepresentativeBirthday`; required for an OWNER, not in the future.
    pub legal_representative_birthday: Option<NaiveDate>,
    /// `LegalRepresentativeNationality`; required for an OWNER.
    pub legal_representative_nationality: Option<CountryCode>,
    /// `LegalRepresentativeCountryOfResidence`; required for an OWNER.
    pub legal_representative_country_of_residence: Option<CountryCode>,
    /// `LegalRepresentativeAddress`.
    pub legal_representative_address: Option<Address>,
    /// `Tag`, up to [`MAX_APP_TAG_LEN`](crate::sync::tag::MAX_APP_TAG_LEN) characters
    /// (Mangopay's 255 less the marker the library appends to recognise its objects).
    pub tag: Option<String>,
    facts: UserFacts,
    sync: SyncInfo,
}

/// Builds a [`MangopayLegalUser`], checking every field in [`build`](Self::build).
#[derive(Debug, Clone, Default)]
pub struct LegalUserBuilder {
    app_user_ref: Option<String>,
    user_category: Option<UserCategory>,
    terms: bool,
    legal_person_type: Option<LegalPersonType>,
    name: String,
    email: String,
    headquarters_address: Option<Address>,
    company_number: Option<String>,
    rep_first_name: String,
    rep_last_name: String,
    rep_email: Option<String>,
    rep_birthday: Option<NaiveDate>,
    rep_nationality: Option<String>,
    rep_country_of_residence: Option<String>,
    rep_address: Option<Address>,
    tag: Option<String>,
}

impl LegalUserBuilder {
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
    /// BUSINESS, PARTNERSHIP, ORGANIZATION or SOLETRADER (required).
    pub fn legal_person_type(mut self, v: LegalPersonType) -> Self {
        self.legal_person_type = Some(v);
        self
    }
    /// The registered name.
    pub fn name(mut self, v: impl Into<String>) -> Self {
        self.name = v.into();
        self
    }
    /// The entity's e-mail address.
    pub fn email(mut self, v: impl Into<String>) -> Self {
        self.email = v.into();
        self
    }
    /// The headquarters' address.
    pub fn headquarters_address(mut self, v: Address) -> Self {
        self.headquarters_address = Some(v);
        self
    }
    /// The registration number.
    pub fn company_number(mut self, v: impl Into<String>) -> Self {
        self.company_number = Some(v.into());
        self
    }
    /// The legal representative's first name.
    pub fn legal_representative_first_name(mut self, v: impl Into<String>) -> Self {
        self.rep_first_name = v.into();
        self
    }
    /// The legal representative's last name.
    pub fn legal_representative_last_name(mut self, v: impl Into<String>) -> Self {
        self.rep_last_name = v.into();
        self
    }
    /// The legal representative's e-mail address.
    pub fn legal_representative_email(mut self, v: impl Into<String>) -> Self {
        self.rep_email = Some(v.into());
        self
    }
    /// The legal representative's date of birth.
    pub fn legal_representative_birthday(mut self, v: NaiveDate) -> Self {
        self.rep_birthday = Some(v);
        self
    }
    /// The legal representative's nationality, an ISO 3166-1 alpha-2 code.
    pub fn legal_representative_nationality(mut self, v: impl Into<String>) -> Self {
        self.rep_nationality = Some(v.into());
        self
    }
    /// The legal representative's country of residence, an ISO 3166-1 alpha-2 code.
    pub fn legal_representative_country_of_residence(mut self, v: impl Into<String>) -> Self {
        self.rep_country_of_residence = Some(v.into());
        self
    }
    /// The legal representative's address.
    pub fn legal_representative_address(mut self, v: Address) -> Self {
        self.rep_address = Some(v);
        self
    }
    /// The tag.
    pub fn tag(mut self, v: impl Into<String>) -> Self {
        self.tag = Some(v.into());
        self
    }

    /// Checks every field; the errors name each rejected field.
    pub fn build(self) -> Result<MangopayLegalUser, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let nationality = errors.country("legal_representative_nationality", self.rep_nationality);
        let residence = errors.country(
            "legal_representative_country_of_residence",
            self.rep_country_of_residence,
        );
        if self.user_category.is_none() {
            errors.push("user_category", FieldErrorKind::Required);
        }
        if self.legal_person_type.is_none() {
            errors.push("legal_person_type", FieldErrorKind::Required);
        }
        let user = MangopayLegalUser {
            id: None,
            app_user_ref: self.app_user_ref,
            user_category: self.user_category.unwrap_or(UserCategory::Payer),
            terms_and_conditions_accepted: self.terms,
            legal_person_type: self.legal_person_type.unwrap_or(LegalPersonType::Business),
            name: self.name,
            email: self.email,
            headquarters_address: self.headquarters_address,
            company_number: self.company_number,
            legal_representative_first_name: self.rep_first_name,
            legal_representative_last_name: self.rep_last_name,
            legal_representative_email: self.rep_email,
            legal_representative_birthday: self.rep_birthday,
            legal_representative_nationality: nationality,
            legal_representative_country_of_residence: residence,
            legal_representative_address: self.rep_address,
            tag: self.tag,
            facts: UserFacts::default(),
            sync: SyncInfo::default(),
        };
        errors.merge_unreported(user.validate());
        errors.into_result().map(|()| user)
    }
}

impl MangopayLegalUser {
    /// Starts building a legal user.
    pub fn builder() -> LegalUserBuilder {
        LegalUserBuilder::default()
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
        if let LegalPersonType::Unknown(v) = &self.legal_person_type {
            e.push(
                "legal_person_type",
                FieldErrorKind::NotAllowed(format!(
                    "must be BUSINESS, PARTNERSHIP, ORGANIZATION or SOLETRADER, not {v}"
                )),
            );
        }
        e.check("name", validate::name(&self.name, 255));
        let why = "for an OWNER user";
        if owner && self.headquarters_address.is_none() {
            e.push("headquarters_address", FieldErrorKind::RequiredBecause(why));
        }
        base::validate_address(
            &mut e,
            "headquarters_address",
            self.headquarters_address.as_ref(),
        );
        let business_owner = owner && self.legal_person_type == LegalPersonType::Business;
        e.check(
            "company_number",
            match self.company_number.as_deref() {
                None if business_owner => Err(FieldErrorKind::RequiredBecause(
                    "for an OWNER that is a BUSINESS",
                )),
                Some(n) if business_owner => validate::name(n, 255),
                other => validate::opt_max_len(other, 255),
            },
        );
        e.check(
            "legal_representative_first_name",
            validate::name(&self.legal_representative_first_name, 100),
        );
        e.check(
            "legal_representative_last_name",
            validate::name(&self.legal_representative_last_name, 100),
        );
        e.check(
            "legal_representative_email",
            self.legal_representative_email
                .as_deref()
                .map_or(Ok(()), validate::email),
        );
        e.check(
            "legal_representative_birthday",
            validate::present_if(self.legal_representative_birthday, owner, why)
                .and_then(|()| validate::not_in_future(self.legal_representative_birthday)),
        );
        e.check(
            "legal_representative_nationality",
            validate::present_if(self.legal_representative_nationality, owner, why),
        );
        e.check(
            "legal_representative_country_of_residence",
            validate::present_if(self.legal_representative_country_of_residence, owner, why),
        );
        base::validate_address(
            &mut e,
            "legal_representative_address",
            self.legal_representative_address.as_ref(),
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

crate::models::resource_methods!(MangopayLegalUser, "legal user");
crate::models::update_method!(MangopayLegalUser);

/// The `mangopay_legal_users` row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = legal, primary_key(user_id), treat_none_as_null = true)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite, MultiBackend))]
pub(crate) struct LegalRow {
    user_id: i64,
    legal_person_type: String,
    name: String,
    company_number: Option<String>,
    headquarters_address_line1: Option<String>,
    headquarters_address_line2: Option<String>,
    headquarters_address_city: Option<String>,
    headquarters_address_region: Option<String>,
    headquarters_address_postal_code: Option<String>,
    headquarters_address_country: Option<String>,
    legal_representative_first_name: String,
    legal_representative_last_name: String,
    legal_representative_email: Option<String>,
    legal_representative_birthday: Option<NaiveDate>,
    legal_representative_nationality: Option<String>,
    legal_representative_country_of_residence: Option<String>,
    legal_representative_address_line1: Option<String>,
    legal_representative_address_line2: Option<String>,
    legal_representative_address_city: Option<String>,
    legal_representative_address_region: Option<String>,
    legal_representative_address_postal_code: Option<String>,
    legal_representative_address_country: Option<String>,
}

impl LegalRow {
    fn of(u: &MangopayLegalUser, user_id: i64) -> Self {
        let (h1, h2, hc, hr, hp, hco) = Address::into_columns(u.headquarters_address.as_ref());
        let (r1, r2, rc, rr, rp, rco) =
            Address::into_columns(u.legal_representative_address.as_ref());
        LegalRow {
            user_id,
            legal_person_type: u.legal_person_type.as_str().to_owned(),
            name: u.name.clone(),
            company_number: u.company_number.clone(),
            headquarters_address_line1: h1,
            headquarters_address_line2: h2,
            headquarters_address_city: hc,
            headquarters_address_region: hr,
            headquarters_address_postal_code: hp,
            headquarters_address_country: hco,
            legal_representative_first_name: u.legal_representative_first_name.clone(),
            legal_representative_last_name: u.legal_representative_last_name.clone(),
            legal_representative_email: u.legal_representative_email.clone(),
            legal_representative_birthday: u.legal_representative_birthday,
            legal_representative_nationality: u
                .legal_representative_nationality
                .map(|c| c.to_string()),
            legal_representative_country_of_residence: u
                .legal_representative_country_of_residence
                .map(|c| c.to_string()),
            legal_representative_address_line1: r1,
            legal_representative_address_line2: r2,
            legal_representative_address_city: rc,
            legal_representative_address_region: rr,
            legal_representative_address_postal_code: rp,
            legal_representative_address_country: rco,
        }
    }

    fn headquarters(&self) -> AddressColumns {
        (
            self.headquarters_address_line1.clone(),
            self.headquarters_address_line2.clone(),
            self.headquarters_address_city.clone(),
            self.headquarters_address_region.clone(),
            self.headquarters_address_postal_code.clone(),
            self.headquarters_address_country.clone(),
        )
    }

    /// The model from its two rows.
    pub(crate) fn into_model(self, base: UserRow) -> MangopayLegalUser {
        MangopayLegalUser {
            id: Some(base.id),
            app_user_ref: base.app_user_ref.clone(),
            user_category: base.category(),
            terms_and_conditions_accepted: base.terms_and_conditions_accepted,
            legal_person_type: LegalPersonType::from_api(&self.legal_person_type),
            email: base.email.clone(),
            tag: base.tag.clone(),
            headquarters_address: Address::from_columns(self.headquarters()),
            company_number: self.company_number.clone(),
            legal_representative_email: self.legal_representative_email.clone(),
            legal_representative_birthday: self.legal_representative_birthday,
            legal_representative_nationality: self
                .legal_representative_nationality
                .as_deref()
                .and_then(CountryCode::from_api),
            legal_representative_country_of_residence: self
                .legal_representative_country_of_residence
                .as_deref()
                .and_then(CountryCode::from_api),
            legal_representative_address: Address::from_columns(self.representative_address()),
            name: self.name,
            legal_representative_first_name: self.legal_representative_first_name,
            legal_representative_last_name: self.legal_representative_last_name,
            facts: base.facts(),
            sync: SyncInfo::default(),
        }
    }

    fn representative_address(&self) -> AddressColumns {
        (
            self.legal_representative_address_line1.clone(),
            self.legal_representative_address_line2.clone(),
            self.legal_representative_address_city.clone(),
            self.legal_representative_address_region.clone(),
            self.legal_representative_address_postal_code.clone(),
            self.legal_representative_address_country.clone(),
        )
    }
}

/// What an API answer says about the detail row; absent keys leave columns alone.
#[derive(AsChangeset, Default)]
#[diesel(table_name = legal)]
struct LegalFromApi {
    legal_person_type: Option<String>,
    name: Option<String>,
    company_number: Option<Option<String>>,
    headquarters_address_line1: Option<Option<String>>,
    headquarters_address_line2: Option<Option<String>>,
    headquarters_address_city: Option<Option<String>>,
    headquarters_address_region: Option<Option<String>>,
    headquarters_address_postal_code: Option<Option<String>>,
    headquarters_address_country: Option<Option<String>>,
    legal_representative_first_name: Option<String>,
    legal_representative_last_name: Option<String>,
    legal_representative_email: Option<Option<String>>,
    legal_representative_birthday: Option<Option<NaiveDate>>,
    legal_representative_nationality: Option<Option<String>>,
    legal_representative_country_of_residence: Option<Option<String>>,
    legal_representative_address_line1: Option<Option<String>>,
    legal_representative_address_line2: Option<Option<String>>,
    legal_representative_address_city: Option<Option<String>>,
    legal_representative_address_region: Option<Option<String>>,
    legal_representative_address_postal_code: Option<Option<String>>,
    legal_representative_address_country: Option<Option<String>>,
}

impl Resource for MangopayLegalUser {
    const MODEL: &'static str = "MangopayLegalUser";
    const TABLE: SyncTable = USERS;

    crate::sync::row_accessors!();
    fn validate(&self) -> Result<(), ValidationErrors> {
        MangopayLegalUser::validate(self)
    }
    fn app_tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    fn load(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<Self>> {
        let found = mangopay_users::table
            .inner_join(legal::table)
            .filter(mangopay_users::id.eq(id))
            .select((UserRow::as_select(), LegalRow::as_select()))
            .first::<(UserRow, LegalRow)>(conn)
            .optional()?;
        Ok(found.map(|(base, details)| details.into_model(base)))
    }

    fn insert(&self, conn: &mut AnyConnection, now: NaiveDateTime) -> QueryResult<i64> {
        let id = base::insert(conn, self.base_fields(), PersonType::Legal, now)?;
        diesel::insert_into(legal::table)
            .values(LegalRow::of(self, id))
            .execute(conn)?;
        Ok(id)
    }

    fn write_fields(&self, conn: &mut AnyConnection, id: i64) -> QueryResult<()> {
        base::write(conn, id, self.base_fields())?;
        diesel::update(legal::table.find(id))
            .set(LegalRow::of(self, id))
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
        let mut c = LegalFromApi {
            legal_person_type: read::required(read::text(p, "LegalPersonType")),
            name: read::required(read::text(p, "Name")),
            company_number: read::text(p, "CompanyNumber"),
            legal_representative_first_name: read::required(read::text(
                p,
                "LegalRepresentativeFirstName",
            )),
            legal_representative_last_name: read::required(read::text(
                p,
                "LegalRepresentativeLastName",
            )),
            legal_representative_email: read::text(p, "LegalRepresentativeEmail"),
            legal_representative_birthday: read::date(p, "LegalRepresentativeBirthday"),
            legal_representative_nationality: country(p, "LegalRepresentativeNationality"),
            legal_representative_country_of_residence: country(
                p,
                "LegalRepresentativeCountryOfResidence",
            ),
            ..Default::default()
        };
        if let Some([l1, l2, city, region, postal, country]) =
            address_changes(p, "HeadquartersAddress")
        {
            c.headquarters_address_line1 = Some(l1);
            c.headquarters_address_line2 = Some(l2);
            c.headquarters_address_city = Some(city);
            c.headquarters_address_region = Some(region);
            c.headquarters_address_postal_code = Some(postal);
            c.headquarters_address_country = Some(country);
        }
        if let Some([l1, l2, city, region, postal, country]) =
            address_changes(p, "LegalRepresentativeAddress")
        {
            c.legal_representative_address_line1 = Some(l1);
            c.legal_representative_address_line2 = Some(l2);
            c.legal_representative_address_city = Some(city);
            c.legal_representative_address_region = Some(region);
            c.legal_representative_address_postal_code = Some(postal);
            c.legal_representative_address_country = Some(country);
        }
        if c.legal_person_type.is_none()
            && c.name.is_none()
            && c.legal_representative_first_name.is_none()
        {
            // A list summary or another partial object: nothing about the details.
            return Ok(());
        }
        diesel::update(legal::table.find(id))
            .set(&c)
            .execute(conn)
            .map(drop)
    }

    fn create_request(&self, tag: Option<&str>) -> Result<ApiRequest, Error> {
        let country = |c: Option<CountryCode>| c.map(|c| c.to_string());
        let mut b = CreateBody::new();
        b.put("UserCategory", Some(self.user_category.as_str()))
            .put(
                "TermsAndConditionsAccepted",
                Some(self.terms_and_conditions_accepted),
            )
            .put("LegalPersonType", Some(self.legal_person_type.as_str()))
            .put("Name", Some(&self.name))
            .put("Email", Some(&self.email))
            .put(
                "HeadquartersAddress",
                self.headquarters_address.as_ref().map(Address::to_api),
            )
            .put("CompanyNumber", self.company_number.as_deref())
            .put(
                "LegalRepresentativeFirstName",
                Some(&self.legal_representative_first_name),
            )
            .put(
                "LegalRepresentativeLastName",
                Some(&self.legal_representative_last_name),
            )
            .put(
                "LegalRepresentativeEmail",
                self.legal_representative_email.as_deref(),
            )
            .put(
                "LegalRepresentativeBirthday",
                self.legal_representative_birthday.map(birthday_to_api),
            )
            .put(
                "LegalRepresentativeNationality",
                country(self.legal_representative_nationality),
            )
            .put(
                "LegalRepresentativeCountryOfResidence",
                country(self.legal_representative_country_of_residence),
            )
            .put(
                "LegalRepresentativeAddress",
                self.legal_representative_address
                    .as_ref()
                    .map(Address::to_api),
            )
            .put("Tag", tag);
        Ok(ApiRequest {
            path: "users/legal".into(),
            body: b.finish(),
        })
    }

    fn update_request(&self, tag: Option<&str>) -> Result<UpdateRequest, Error> {
        let path = base::created_path::<Self>(self, "users/legal")?;
        let required_for_owners = "Mangopay requires it of OWNER users; set another value";
        let country = |c: Option<CountryCode>| c.map(|c| c.to_string());
        let headquarters = self.headquarters_address.as_ref().map(Address::parts);
        let representative = self
            .legal_representative_address
            .as_ref()
            .map(Address::parts);
        let mut b = UpdateBody::new(self.sync.api_payload.as_ref());
        b.set("UserCategory", self.user_category.as_str())
            .set(
                "TermsAndConditionsAccepted",
                self.terms_and_conditions_accepted,
            )
            .set("LegalPersonType", self.legal_person_type.as_str())
            .set("Name", &self.name)
            .set("Email", &self.email)
            .object(
                "HeadquartersAddress",
                "headquarters_address",
                headquarters.as_ref().map(|p| &p[..]),
                &Address::PARTS,
            )
            .opt(
                "CompanyNumber",
                "company_number",
                self.company_number.as_deref(),
                Clear::EmptyString,
            )
            .set(
                "LegalRepresentativeFirstName",
                &self.legal_representative_first_name,
            )
            .set(
                "LegalRepresentativeLastName",
                &self.legal_representative_last_name,
            )
            .opt(
                "LegalRepresentativeEmail",
                "legal_representative_email",
                self.legal_representative_email.as_deref(),
                Clear::EmptyString,
            )
            .opt(
                "LegalRepresentativeBirthday",
                "legal_representative_birthday",
                self.legal_representative_birthday.map(birthday_to_api),
                Clear::Refuse(required_for_owners),
            )
            .opt(
                "LegalRepresentativeNationality",
                "legal_representative_nationality",
                country(self.legal_representative_nationality),
                Clear::Refuse(required_for_owners),
            )
            .opt(
                "LegalRepresentativeCountryOfResidence",
                "legal_representative_country_of_residence",
                country(self.legal_representative_country_of_residence),
                Clear::Refuse(required_for_owners),
            )
            .object(
                "LegalRepresentativeAddress",
                "legal_representative_address",
                representative.as_ref().map(|p| &p[..]),
                &Address::PARTS,
            )
            .opt("Tag", "tag", tag, Clear::EmptyString);
        let (body, cleared) = b.finish()?;
        Ok(UpdateRequest {
            request: ApiRequest { path, body },
            cleared,
        })
    }

    fn view_path(&self, mangopay_id: &str) -> String {
        format!("users/legal/{mangopay_id}")
    }

    fn listing(&self) -> Listing {
        super::listing()
    }

    fn check_found(&self, found: &Value) -> Result<(), String> {
        base::check_kind(found, PersonType::Legal)
    }
}
