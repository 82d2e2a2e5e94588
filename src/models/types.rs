//! Value types shared by the models: Mangopay's enumerations (tolerant of values Mangopay adds
//! later), addresses and the income range.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};

use crate::validate::{self, CountryCode, FieldErrorKind, ValidationErrors};

/// Defines a Mangopay enumeration stored and sent as its upper-case string, with an `Unknown`
/// variant that keeps any value this version does not know, so a sync never fails on it.
macro_rules! api_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value Mangopay sent that this version does not know.
            Unknown(String),
        }

        impl $name {
            /// The value as Mangopay spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Unknown(other) => other,
                }
            }

            /// Reads a value as Mangopay sent it (any letter case); unknown values are kept.
            pub fn from_api(value: &str) -> Self {
                $(if value.eq_ignore_ascii_case($text) { return Self::$variant; })+
                Self::Unknown(value.to_owned())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok(Self::from_api(&String::deserialize(d)?))
            }
        }
    };
}

api_enum! {
    /// The kind of a KYC document (`Type`).
    DocumentType {
        /// An identity document: passport, identity card, driving licence, residence permit.
        IdentityProof = "IDENTITY_PROOF",
        /// Proof of a legal entity's registration (or a sole trader's).
        RegistrationProof = "REGISTRATION_PROOF",
        /// A legal entity's articles of association.
        ArticlesOfAssociation = "ARTICLES_OF_ASSOCIATION",
        /// A shareholder declaration (older businesses; today's API asks for a UBO declaration).
        ShareholderDeclaration = "SHAREHOLDER_DECLARATION",
        /// A proof of address.
        AddressProof = "ADDRESS_PROOF",
    }
}

api_enum! {
    /// Where a KYC document stands (`Status`).
    DocumentStatus {
        /// Created; pages can be added; not submitted.
        Created = "CREATED",
        /// Submitted: Mangopay's teams are reviewing it.
        ValidationAsked = "VALIDATION_ASKED",
        /// Validated.
        Validated = "VALIDATED",
        /// Refused (see the refused reason); a new document must be sent.
        Refused = "REFUSED",
        /// Downgraded (expired); a new document must be sent.
        OutOfDate = "OUT_OF_DATE",
    }
}

api_enum! {
    /// Where a UBO declaration stands (`Status`).
    UboDeclarationStatus {
        /// Created; UBOs can be added and updated; not submitted.
        Created = "CREATED",
        /// Submitted: Mangopay's teams are reviewing it.
        ValidationAsked = "VALIDATION_ASKED",
        /// Found incomplete (see `Reason` and `Message`): UBOs can be added and updated again,
        /// and it can be submitted again.
        Incomplete = "INCOMPLETE",
        /// Validated.
        Validated = "VALIDATED",
        /// Refused (see `Reason` and `Message`); a new declaration must be sent.
        Refused = "REFUSED",
    }
}

api_enum! {
    /// Whether a user is an individual or a legal entity (`PersonType`).
    PersonType {
        /// An individual.
        Natural = "NATURAL",
        /// A company, organisation, partnership or sole trader.
        Legal = "LEGAL",
    }
}

api_enum! {
    /// What a user may do (`UserCategory`).
    UserCategory {
        /// Can only pay in and transfer to other wallets.
        Payer = "PAYER",
        /// Can also receive transfers, be verified (KYC) and request pay-outs; must have
        /// accepted the terms and conditions.
        Owner = "OWNER",
        /// The platform's own user; assigned by Mangopay only.
        Platform = "PLATFORM",
    }
}

api_enum! {
    /// The kind of legal entity (`LegalPersonType`).
    LegalPersonType {
        /// A company.
        Business = "BUSINESS",
        /// A partnership.
        Partnership = "PARTNERSHIP",
        /// A non-profit or other organisation.
        Organization = "ORGANIZATION",
        /// A sole trader.
        Soletrader = "SOLETRADER",
    }
}

api_enum! {
    /// How far Mangopay has verified a user (`KYCLevel`).
    KycLevel {
        /// Not verified (every new user).
        Light = "LIGHT",
        /// Verified: may request pay-outs.
        Regular = "REGULAR",
    }
}

api_enum! {
    /// Where a transaction (transfer, pay-out, pay-in, refund) stands (`Status`).
    TransactionStatus {
        /// Accepted, not settled yet (a pay-out waiting for the bank).
        Created = "CREATED",
        /// Done.
        Succeeded = "SUCCEEDED",
        /// Refused or failed; `ResultCode` says why.
        Failed = "FAILED",
    }
}

api_enum! {
    /// The kind of card a registration or a web pay-in is for (`CardType`).
    CardType {
        /// CB, Visa or Mastercard (Mangopay's default).
        CbVisaMastercard = "CB_VISA_MASTERCARD",
        /// American Express.
        Amex = "AMEX",
        /// Maestro.
        Maestro = "MAESTRO",
        /// Bancontact.
        Bcmc = "BCMC",
    }
}

api_enum! {
    /// Where a card registration stands (`Status`).
    CardRegistrationStatus {
        /// Created: waiting for the tokenization server's registration data.
        Created = "CREATED",
        /// Completed: the card was created (`CardId`).
        Validated = "VALIDATED",
        /// The registration data was refused; `ResultCode` says why. Register again.
        Error = "ERROR",
    }
}

api_enum! {
    /// Whether a card can be charged, as far as Mangopay knows (`Validity`).
    CardValidity {
        /// Not charged yet (`UNKNOWN`).
        Unchecked = "UNKNOWN",
        /// A payment with it succeeded.
        Valid = "VALID",
        /// A payment with it was refused, or it expired.
        Invalid = "INVALID",
    }
}

api_enum! {
    /// How 3-D Secure is applied to a card pay-in (`SecureMode`).
    SecureMode {
        /// As the card, the amount and the risk require (Mangopay's default).
        Default = "DEFAULT",
        /// Always: the cardholder authenticates.
        Force = "FORCE",
        /// Exemption requested where the rules allow it.
        NoChoice = "NO_CHOICE",
    }
}

api_enum! {
    /// How a pay-out is sent (`PayoutModeRequested`, `ModeApplied`).
    PayoutMode {
        /// The usual route for the currency and account.
        Standard = "STANDARD",
        /// SEPA Instant, falling back to STANDARD when it cannot be used.
        InstantPayment = "INSTANT_PAYMENT",
        /// SEPA Instant without fallback: the pay-out fails instead.
        InstantPaymentOnly = "INSTANT_PAYMENT_ONLY",
        /// The Eurozone's real-time gross settlement (T2), same working day.
        RtgsPayment = "RTGS_PAYMENT",
        /// Applied mode not known yet (instant and RTGS requests, briefly).
        PendingResponse = "PENDING_RESPONSE",
    }
}

api_enum! {
    /// Whether a user account is open (`UserStatus`).
    UserStatus {
        /// Open.
        Active = "ACTIVE",
        /// Closed.
        Closed = "CLOSED",
    }
}

/// A user's income bracket, 1 to 6 (`IncomeRange`): < 18K, 18–30K, 30–50K, 50–80K, 80–120K,
/// > 120K.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IncomeRange(u8);

impl IncomeRange {
    /// A bracket from 1 to 6.
    pub fn new(bracket: i64) -> Result<Self, FieldErrorKind> {
        match u8::try_from(bracket) {
            Ok(b @ 1..=6) => Ok(IncomeRange(b)),
            _ => Err(FieldErrorKind::OutOfRange { min: 1, max: 6 }),
        }
    }

    /// The bracket number.
    pub fn get(self) -> u8 {
        self.0
    }
}

/// A postal address as Mangopay stores it. Every part is optional in Mangopay's objects, but
/// an address that is given needs a first line, city, postal code and country, and a region
/// when the country is US, CA or MX.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    /// `AddressLine1`.
    pub line1: Option<String>,
    /// `AddressLine2`.
    pub line2: Option<String>,
    /// `City`.
    pub city: Option<String>,
    /// `Region` (required for US, CA and MX).
    pub region: Option<String>,
    /// `PostalCode`: letters, digits, dashes and spaces.
    pub postal_code: Option<String>,
    /// `Country`.
    pub country: Option<CountryCode>,
}

impl Address {
    /// An address with its required parts; errors name `line1`, `city`, `postal_code` or
    /// `country`.
    pub fn new(
        line1: impl Into<String>,
        city: impl Into<String>,
        postal_code: impl Into<String>,
        country: &str,
    ) -> Result<Address, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let country = match country.parse::<CountryCode>() {
            Ok(c) => Some(c),
            Err(kind) => {
                errors.push("country", kind);
                None
            }
        };
        let address = Address {
            line1: Some(line1.into()),
            line2: None,
            city: Some(city.into()),
            region: None,
            postal_code: Some(postal_code.into()),
            country,
        };
        if country.is_some() {
            errors.extend(address.validate());
        }
        errors.into_result().map(|()| address)
    }

    /// Sets the second line.
    pub fn with_line2(mut self, line2: impl Into<String>) -> Self {
        self.line2 = Some(line2.into());
        self
    }

    /// Sets the region.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Every problem with this address; field names are `line1`, `city`, ... (the caller
    /// prefixes them with the address's own field name).
    pub fn validate(&self) -> ValidationErrors {
        let mut e = ValidationErrors::new();
        let req = |v: &Option<String>| match v.as_deref() {
            None => Err(FieldErrorKind::Required),
            Some(s) => validate::required(s).and_then(|()| validate::max_len(s, 255)),
        };
        e.check("line1", req(&self.line1));
        e.check("line2", validate::opt_max_len(self.line2.as_deref(), 255));
        e.check("city", req(&self.city));
        e.check("region", validate::opt_max_len(self.region.as_deref(), 255));
        e.check(
            "postal_code",
            req(&self.postal_code).and_then(|()| {
                validate::postal_code(self.postal_code.as_deref().unwrap_or_default())
            }),
        );
        e.check(
            "country",
            self.country.map(|_| ()).ok_or(FieldErrorKind::Required),
        );
        let needs_region = self
            .country
            .is_some_and(|c| matches!(c.as_str(), "US" | "CA" | "MX"));
        if needs_region && self.region.as_deref().is_none_or(|r| r.trim().is_empty()) {
            e.push(
                "region",
                FieldErrorKind::RequiredBecause("when the country is US, CA or MX"),
            );
        }
        e
    }

    /// Whether no part is set.
    pub fn is_empty(&self) -> bool {
        self.line1.is_none()
            && self.line2.is_none()
            && self.city.is_none()
            && self.region.is_none()
            && self.postal_code.is_none()
            && self.country.is_none()
    }

    pub(crate) fn to_api(&self) -> Value {
        json!({
            "AddressLine1": self.line1,
            "AddressLine2": self.line2,
            "City": self.city,
            "Region": self.region,
            "PostalCode": self.postal_code,
            "Country": self.country.map(|c| c.as_str().to_owned()),
        })
    }

    /// The parts as an update body lists them: API name, model name, value.
    pub(crate) fn parts(&self) -> [(&'static str, &'static str, Option<&str>); 6] {
        [
            ("AddressLine1", "line1", self.line1.as_deref()),
            ("AddressLine2", "line2", self.line2.as_deref()),
            ("City", "city", self.city.as_deref()),
            ("Region", "region", self.region.as_deref()),
            ("PostalCode", "postal_code", self.postal_code.as_deref()),
            (
                "Country",
                "country",
                self.country.as_ref().map(CountryCode::as_str),
            ),
        ]
    }

    /// Every part's API and model name.
    pub(crate) const PARTS: [(&'static str, &'static str); 6] = [
        ("AddressLine1", "line1"),
        ("AddressLine2", "line2"),
        ("City", "city"),
        ("Region", "region"),
        ("PostalCode", "postal_code"),
        ("Country", "country"),
    ];

    /// Reads Mangopay's address object; `None` when it is null or every part is null or
    /// empty.
    pub(crate) fn from_api(value: &Value) -> Option<Address> {
        let obj = value.as_object()?;
        let text = |k: &str| {
            obj.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let address = Address {
            line1: text("AddressLine1"),
            line2: text("AddressLine2"),
            city: text("City"),
            region: text("Region"),
            postal_code: text("PostalCode"),
            country: text("Country").as_deref().and_then(CountryCode::from_api),
        };
        (!address.is_empty()).then_some(address)
    }

    /// The six columns, in schema order: line1, line2, city, region, postal code, country.
    pub(crate) fn into_columns(address: Option<&Address>) -> AddressColumns {
        match address {
            None => Default::default(),
            Some(a) => (
                a.line1.clone(),
                a.line2.clone(),
                a.city.clone(),
                a.region.clone(),
                a.postal_code.clone(),
                a.country.map(|c| c.as_str().to_owned()),
            ),
        }
    }

    pub(crate) fn from_columns(columns: AddressColumns) -> Option<Address> {
        let (line1, line2, city, region, postal_code, country) = columns;
        let address = Address {
            line1,
            line2,
            city,
            region,
            postal_code,
            country: country.as_deref().and_then(CountryCode::from_api),
        };
        (!address.is_empty()).then_some(address)
    }
}

/// An address as six nullable columns.
pub(crate) type AddressColumns = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Helpers reading Mangopay's JSON: the outer `Option` says whether the key was present, the
/// inner one whether it was null, so an absent key leaves a column alone and a null clears it.
pub(crate) mod read {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    use serde_json::Value;

    /// Text; `null` and `""` are both "no value" (a field cleared at Mangopay).
    pub(crate) fn text(obj: &Value, key: &str) -> Option<Option<String>> {
        obj.get(key).map(|v| match v {
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        })
    }

    pub(crate) fn int(obj: &Value, key: &str) -> Option<Option<i64>> {
        obj.get(key).map(|v| match v {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
    }

    pub(crate) fn boolean(obj: &Value, key: &str) -> Option<bool> {
        obj.get(key).and_then(|v| match v {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => n.as_i64().map(|n| n != 0),
            _ => None,
        })
    }

    pub(crate) fn timestamp(obj: &Value, key: &str) -> Option<Option<NaiveDateTime>> {
        int(obj, key).map(|v| {
            v.and_then(|t| DateTime::from_timestamp(t, 0))
                .map(|d| d.naive_utc())
        })
    }

    /// A birthday: Mangopay sends midnight UTC of the day as Unix seconds.
    pub(crate) fn date(obj: &Value, key: &str) -> Option<Option<NaiveDate>> {
        timestamp(obj, key).map(|v| v.map(|d| d.date()))
    }

    /// Drops absent keys and nulls alike: for non-nullable columns.
    pub(crate) fn required(v: Option<Option<String>>) -> Option<String> {
        v.flatten()
    }
}

/// A birthday as Mangopay wants it: midnight UTC of that day, in Unix seconds.
pub(crate) fn birthday_to_api(date: chrono::NaiveDate) -> i64 {
    date.and_time(chrono::NaiveTime::MIN).and_utc().timestamp()
}

api_enum! {
    /// Where a recipient stands (`Status`).
    RecipientStatus {
        /// Created, waiting: for a `PAYOUT` recipient, for its user's strong customer
        /// authentication (`PendingUserAction.RedirectUrl`); for a `PAYIN` one, for Mangopay.
        Pending = "PENDING",
        /// The authentication was not completed: the recipient can never be used.
        Canceled = "CANCELED",
        /// Ready: a `PAYOUT` recipient can receive pay-outs.
        Active = "ACTIVE",
        /// Deactivated for good.
        Deactivated = "DEACTIVATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_keep_unknown_values() {
        assert_eq!(UserCategory::from_api("owner"), UserCategory::Owner);
        assert_eq!(
            KycLevel::from_api("SUPERIOR"),
            KycLevel::Unknown("SUPERIOR".into())
        );
        assert_eq!(KycLevel::from_api("SUPERIOR").as_str(), "SUPERIOR");
        let parsed: LegalPersonType = serde_json::from_str("\"SOLETRADER\"").unwrap();
        assert_eq!(parsed, LegalPersonType::Soletrader);
        assert_eq!(
            serde_json::to_string(&UserStatus::Closed).unwrap(),
            "\"CLOSED\""
        );
    }

    #[test]
    fn addresses_need_their_parts_and_a_region_in_north_america() {
        let paris = Address::new("3 rue de la Cité", "Paris", "75004", "fr").unwrap();
        assert_eq!(paris.country.unwrap().as_str(), "FR");
        let e = Address::new("1 Main St", "Austin", "73301", "US").unwrap_err();
        assert!(e.has("region"));
        assert!(Address::new("1 Main St", "Austin", "73301", "US").is_err());
        let e = Address::new("", "Paris", "75#04", "XX").unwrap_err();
        assert!(e.has("country"));
        let e = Address {
            line1: Some("x".into()),
            ..Default::default()
        }
        .validate();
        assert!(e.has("city") && e.has("postal_code") && e.has("country"));
        assert_eq!(
            IncomeRange::new(7),
            Err(FieldErrorKind::OutOfRange { min: 1, max: 6 })
        );
        assert_eq!(IncomeRange::new(3).unwrap().get(), 3);
    }

    #[test]
    fn addresses_round_trip_through_json_and_columns() {
        let a = Address::new("3 rue", "Paris", "75004", "FR")
            .unwrap()
            .with_region("IDF");
        assert_eq!(Address::from_api(&a.to_api()), Some(a.clone()));
        assert_eq!(
            Address::from_columns(Address::into_columns(Some(&a))),
            Some(a)
        );
        assert_eq!(
            Address::from_api(&json!({"AddressLine1": null, "City": null})),
            None
        );
        assert_eq!(Address::from_columns(Address::into_columns(None)), None);
    }

    #[test]
    fn birthdays_are_midnight_utc() {
        let d = chrono::NaiveDate::from_ymd_opt(1990, 8, 30).unwrap();
        assert_eq!(birthday_to_api(d), 651_974_400);
        assert_eq!(
            read::date(&json!({"Birthday": 651_974_400}), "Birthday"),
            Some(Some(d))
        );
        assert_eq!(
            read::date(&json!({"Birthday": null}), "Birthday"),
            Some(None)
        );
        assert_eq!(read::date(&json!({}), "Birthday"), None);
    }
}
