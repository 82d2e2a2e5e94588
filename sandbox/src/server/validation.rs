//! Field-level validation of request bodies with Mangopay's rules, collecting
//! every problem of a body into one `errors` map keyed by API field name
//! (dotted for nested fields, e.g. `Address.Country`).
//!
//! Values are read the way the official SDKs send them: `null` and `""` mean
//! absent, booleans may be `true`/`false` or `1`/`0`, integers may arrive as
//! numeric strings, and string fields accept numbers.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;
use serde_json::{Map, Value};

use super::error::FieldErrors;

/// The e-mail pattern quoted by Mangopay's own error message.
pub(crate) use crate::EMAIL_PATTERN;

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!("^(?:{EMAIL_PATTERN})$")).expect("the e-mail pattern is a valid regex")
});

/// Countries whose addresses need a `Region`.
const COUNTRIES_NEEDING_REGION: [&str; 3] = ["US", "CA", "MX"];

/// A postal address as Mangopay stores it; every sub-key is always present.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Address {
    pub(crate) address_line1: Option<String>,
    pub(crate) address_line2: Option<String>,
    pub(crate) city: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) postal_code: Option<String>,
    pub(crate) country: Option<String>,
}

/// Reads and checks the fields of one JSON object, remembering every problem.
pub(crate) struct Fields<'a> {
    input: &'a Map<String, Value>,
    now: i64,
    blocked: Vec<String>,
    errors: FieldErrors,
}

fn required_message(field: &str) -> String {
    format!("The {field} field is required.")
}

impl<'a> Fields<'a> {
    /// Starts reading `input`; `now` (Unix seconds) bounds dates of birth.
    pub(crate) fn new(input: &'a Map<String, Value>, now: i64) -> Fields<'a> {
        Fields {
            input,
            now,
            blocked: Vec::new(),
            errors: FieldErrors::new(),
        }
    }

    /// Refuses these country codes (Mangopay's country restrictions), here and in addresses.
    pub(crate) fn with_blocked_countries(mut self, blocked: Vec<String>) -> Fields<'a> {
        self.blocked = blocked;
        self
    }

    /// Records a problem with `field` (the first one found for a field wins).
    pub(crate) fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors
            .entry(field.to_owned())
            .or_insert_with(|| message.into());
    }

    /// Records that a required `field` is missing.
    pub(crate) fn missing(&mut self, field: &str) {
        self.error(field, required_message(field));
    }

    /// All problems found so far.
    pub(crate) fn finish(self) -> Result<(), FieldErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }

    /// The value at `key`, or `None` when it is absent, `null` or `""`.
    fn present(&self, key: &str) -> Option<&'a Value> {
        match self.input.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(value) => Some(value),
        }
    }

    /// A text field of at most `max` characters; a `min` above 0 is named in the
    /// message, as Mangopay does for names (absent and `""` count as missing).
    pub(crate) fn text(
        &mut self,
        key: &str,
        min: usize,
        max: usize,
        required: bool,
    ) -> Option<String> {
        self.text_at(key, key, min, max, required)
    }

    fn text_at(
        &mut self,
        key: &str,
        name: &str,
        min: usize,
        max: usize,
        required: bool,
    ) -> Option<String> {
        let text = match self.present(key) {
            None => {
                if required {
                    self.missing(name);
                }
                return None;
            }
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => {
                self.error(name, format!("The field {name} must be a string."));
                return None;
            }
        };
        let chars = text.chars().count();
        if chars < min || chars > max {
            let message = if min > 0 {
                format!(
                    "The field {name} must be a string with a minimum length of {min} and a maximum length of {max}."
                )
            } else {
                format!("The field {name} must be a string with a maximum length of {max}.")
            };
            self.error(name, message);
            return None;
        }
        Some(text)
    }

    /// An e-mail address matching Mangopay's pattern.
    pub(crate) fn email(&mut self, key: &str, required: bool) -> Option<String> {
        let email = self.text(key, 0, 255, required)?;
        if EMAIL.is_match(&email) {
            Some(email)
        } else {
            self.error(
                key,
                format!("The field {key} must match the regular expression '{EMAIL_PATTERN}'."),
            );
            None
        }
    }

    /// An ISO 3166-1 alpha-2 country code (two upper-case letters).
    pub(crate) fn country(&mut self, key: &str, required: bool) -> Option<String> {
        self.country_at(key, key, required)
    }

    fn country_at(&mut self, key: &str, name: &str, required: bool) -> Option<String> {
        let code = self.text_at(key, name, 0, 255, required)?;
        let well_formed = code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase());
        if well_formed && self.blocked.contains(&code) {
            self.error(name, format!("The {name} used is blocked"));
            None
        } else if well_formed && celes::Country::from_alpha2(&code).is_ok() {
            Some(code)
        } else {
            self.error(
                name,
                format!(
                    "The value {code} is not a valid ISO 3166-1 alpha-2 country code for {name}."
                ),
            );
            None
        }
    }

    /// One of `allowed` (matched case-insensitively, returned in upper case).
    pub(crate) fn one_of(&mut self, key: &str, allowed: &[&str], required: bool) -> Option<String> {
        let value = self.text(key, 0, 255, required)?;
        let upper = value.to_ascii_uppercase();
        if allowed.contains(&upper.as_str()) {
            Some(upper)
        } else {
            self.error(
                key,
                format!(
                    "The value {value} is not valid for {key}. Allowed values: {}.",
                    allowed.join(", ")
                ),
            );
            None
        }
    }

    /// A boolean sent as `true`/`false`, `1`/`0` or one of those as a string.
    pub(crate) fn boolean(&mut self, key: &str) -> Option<bool> {
        let parsed = match self.present(key)? {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => match n.as_f64() {
                Some(1.0) => Some(true),
                Some(0.0) => Some(false),
                _ => None,
            },
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => None,
            },
            _ => None,
        };
        if parsed.is_none() {
            self.error(
                key,
                format!("The field {key} must be a boolean: true, false, 1 or 0."),
            );
        }
        parsed
    }

    /// An integer sent as a JSON number without fraction or as a numeric string.
    fn integer(&mut self, key: &str, required: bool) -> Option<i64> {
        let Some(value) = self.present(key) else {
            if required {
                self.missing(key);
            }
            return None;
        };
        let parsed = match value {
            Value::Number(n) => n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|x| x.fract() == 0.0 && x.abs() < 9.0e15)
                    .map(|x| x as i64)
            }),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        if parsed.is_none() {
            self.error(key, format!("The field {key} must be an integer."));
        }
        parsed
    }

    /// A date of birth: an integer Unix timestamp that is not in the future.
    pub(crate) fn birthday(&mut self, key: &str, required: bool) -> Option<i64> {
        let timestamp = self.integer(key, required)?;
        if timestamp > self.now {
            self.error(
                key,
                format!("The field {key} cannot be a date in the future."),
            );
            return None;
        }
        Some(timestamp)
    }

    /// An `IncomeRange` bracket, 1 to 6.
    pub(crate) fn income_range(&mut self, key: &str) -> Option<u8> {
        let value = self.integer(key, false)?;
        match u8::try_from(value) {
            Ok(bracket @ 1..=6) => Some(bracket),
            _ => {
                self.error(key, format!("The field {key} must be between 1 and 6."));
                None
            }
        }
    }

    /// A postal address object. One that is given needs `AddressLine1`, `City`,
    /// `PostalCode` and `Country`, and `Region` when the country is US, CA or MX.
    /// An object whose sub-fields are all absent counts as not given.
    pub(crate) fn address(&mut self, key: &str, required: bool) -> Address {
        let object = match self.present(key) {
            None => None,
            Some(Value::Object(object)) => Some(object),
            Some(_) => {
                self.error(key, format!("The field {key} must be an address object."));
                return Address::default();
            }
        };
        let Some(object) = object else {
            if required {
                self.missing(key);
            }
            return Address::default();
        };
        let mut sub = Fields::new(object, self.now).with_blocked_countries(self.blocked.clone());
        let name = |field: &str| format!("{key}.{field}");
        let address = Address {
            address_line1: sub.text_at("AddressLine1", &name("AddressLine1"), 0, 255, false),
            address_line2: sub.text_at("AddressLine2", &name("AddressLine2"), 0, 255, false),
            city: sub.text_at("City", &name("City"), 0, 255, false),
            region: sub.text_at("Region", &name("Region"), 0, 255, false),
            postal_code: sub.text_at("PostalCode", &name("PostalCode"), 0, 255, false),
            country: sub.country_at("Country", &name("Country"), false),
        };
        let given = [
            "AddressLine1",
            "AddressLine2",
            "City",
            "Region",
            "PostalCode",
            "Country",
        ]
        .iter()
        .any(|field| sub.present(field).is_some());
        if given {
            for (field, value) in [
                ("AddressLine1", &address.address_line1),
                ("City", &address.city),
                ("PostalCode", &address.postal_code),
                ("Country", &address.country),
            ] {
                if value.is_none() && sub.present(field).is_none() {
                    sub.missing(&name(field));
                }
            }
            if let Some(country) = &address.country
                && COUNTRIES_NEEDING_REGION.contains(&country.as_str())
                && address.region.is_none()
                && sub.present("Region").is_none()
            {
                sub.error(
                    &name("Region"),
                    format!(
                        "The {} field is required when Country is US, CA or MX.",
                        name("Region")
                    ),
                );
            }
            if let Some(postal_code) = &address.postal_code
                && !postal_code
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ' ')
            {
                sub.error(
                    &name("PostalCode"),
                    format!(
                        "The field {} can only contain alphanumeric characters, dashes and spaces.",
                        name("PostalCode")
                    ),
                );
            }
        } else if required {
            self.missing(key);
        }
        self.errors.append(&mut sub.errors);
        if !given {
            return Address::default();
        }
        address
    }
}
