//! Input validation: typed field errors, country codes, e-mail addresses and the string rules
//! Mangopay applies, checked before anything is written or sent.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use chrono::NaiveDate;
use regex::Regex;

/// What is wrong with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldErrorKind {
    /// The field is missing or empty.
    Required,
    /// The field is required because of another field's value (the reason says which).
    RequiredBecause(&'static str),
    /// Longer than Mangopay accepts.
    TooLong {
        /// Maximum number of characters.
        max: usize,
    },
    /// Not a valid e-mail address by Mangopay's rule.
    InvalidEmail,
    /// Not an ISO 3166-1 alpha-2 country code.
    InvalidCountryCode(String),
    /// Not an ISO 4217 currency code.
    InvalidCurrencyCode(String),
    /// A date that must not be in the future is.
    InFuture,
    /// A number outside the accepted range.
    OutOfRange {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// Contains characters Mangopay does not accept.
    InvalidCharacters(&'static str),
    /// A value that is not one of the accepted ones.
    NotAllowed(String),
    /// The field was cleared locally, and Mangopay offers no way to clear it (the reason says
    /// what to do instead).
    CannotClear(&'static str),
}

impl std::error::Error for FieldErrorKind {}

impl fmt::Display for FieldErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldErrorKind::Required => write!(f, "is required"),
            FieldErrorKind::RequiredBecause(why) => write!(f, "is required {why}"),
            FieldErrorKind::TooLong { max } => write!(f, "is longer than {max} characters"),
            FieldErrorKind::InvalidEmail => write!(f, "is not a valid e-mail address"),
            FieldErrorKind::InvalidCountryCode(v) => {
                write!(f, "`{v}` is not an ISO 3166-1 alpha-2 country code")
            }
            FieldErrorKind::InvalidCurrencyCode(v) => {
                write!(f, "`{v}` is not an ISO 4217 currency code")
            }
            FieldErrorKind::InFuture => write!(f, "is in the future"),
            FieldErrorKind::OutOfRange { min, max } => {
                write!(f, "must be between {min} and {max}")
            }
            FieldErrorKind::InvalidCharacters(allowed) => write!(f, "may only contain {allowed}"),
            FieldErrorKind::NotAllowed(why) => write!(f, "{why}"),
            FieldErrorKind::CannotClear(why) => {
                write!(f, "cannot be cleared at Mangopay ({why})")
            }
        }
    }
}

/// One rejected field, named as the model's Rust field (`email`, `address.country`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    field: Cow<'static, str>,
    kind: FieldErrorKind,
}

impl FieldError {
    /// A new field error.
    pub fn new(field: impl Into<Cow<'static, str>>, kind: FieldErrorKind) -> Self {
        Self {
            field: field.into(),
            kind,
        }
    }

    /// The field's name, for example `first_name` or `headquarters_address.postal_code`.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong with it.
    pub fn kind(&self) -> &FieldErrorKind {
        &self.kind
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.kind)
    }
}

/// Every problem found in one model, reported together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors(Vec<FieldError>);

impl ValidationErrors {
    /// An empty set of errors.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one field error.
    pub fn push(&mut self, field: impl Into<Cow<'static, str>>, kind: FieldErrorKind) {
        self.0.push(FieldError::new(field, kind));
    }

    /// The individual errors, in the order they were found.
    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    /// The error for `field`, if that field was rejected.
    pub fn get(&self, field: &str) -> Option<&FieldError> {
        self.0.iter().find(|e| e.field == field)
    }

    /// Whether `field` was rejected.
    pub fn has(&self, field: &str) -> bool {
        self.get(field).is_some()
    }

    /// Whether nothing was rejected.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when empty, the errors otherwise.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }

    /// Adds `prefix.` in front of every field name (for nested values such as addresses).
    pub(crate) fn prefixed(self, prefix: &str) -> Self {
        ValidationErrors(
            self.0
                .into_iter()
                .map(|e| FieldError::new(format!("{prefix}.{}", e.field), e.kind))
                .collect(),
        )
    }

    /// Moves every error of `other` into `self`.
    pub(crate) fn extend(&mut self, other: ValidationErrors) {
        self.0.extend(other.0);
    }

    /// Parses a currency code, recording a bad one under `field`.
    pub(crate) fn currency(&mut self, field: &'static str, value: &str) -> Option<CurrencyCode> {
        match value.parse::<CurrencyCode>() {
            Ok(code) => Some(code),
            Err(kind) => {
                self.push(field, kind);
                None
            }
        }
    }

    /// Parses an optional country code, recording a bad one under `field`.
    pub(crate) fn country(
        &mut self,
        field: &'static str,
        value: Option<String>,
    ) -> Option<CountryCode> {
        match value.map(|v| v.parse::<CountryCode>()) {
            Some(Ok(code)) => Some(code),
            Some(Err(kind)) => {
                self.push(field, kind);
                None
            }
            None => None,
        }
    }

    /// Adds the errors of `result` whose field has no error yet.
    pub(crate) fn merge_unreported(&mut self, result: Result<(), ValidationErrors>) {
        if let Err(more) = result {
            for e in more.0 {
                if !self.has(&e.field) {
                    self.0.push(e);
                }
            }
        }
    }

    /// Runs `check` and records its error, if any, under `field`.
    pub(crate) fn check(
        &mut self,
        field: &'static str,
        check: Result<(), FieldErrorKind>,
    ) -> &mut Self {
        if let Err(kind) = check {
            self.push(field, kind);
        }
        self
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// An ISO 3166-1 alpha-2 country code, always upper case (`FR`, `GB`, `US`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// The two-letter code.
    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII upper-case letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }

    /// A code as Mangopay returned it: any two ASCII letters are kept, so a code Mangopay knows
    /// and this crate's ISO table does not yet never breaks a sync.
    pub(crate) fn from_api(value: &str) -> Option<CountryCode> {
        let bytes = value.as_bytes();
        (bytes.len() == 2 && bytes.iter().all(u8::is_ascii_alphabetic))
            .then(|| CountryCode([bytes[0].to_ascii_uppercase(), bytes[1].to_ascii_uppercase()]))
    }
}

impl FromStr for CountryCode {
    type Err = FieldErrorKind;

    /// Accepts a code known to ISO 3166-1 in any letter case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || FieldErrorKind::InvalidCountryCode(s.to_owned());
        let code = CountryCode::from_api(s).ok_or_else(invalid)?;
        celes::Country::from_alpha2(code.as_str()).map_err(|_| invalid())?;
        Ok(code)
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountryCode({})", self.as_str())
    }
}

/// An ISO 4217 currency code, always upper case (`EUR`, `GBP`, `JPY`).
///
/// Which currencies Mangopay accepts depends on the platform's contract, so any ISO 4217 code
/// passes here and Mangopay's own refusal is kept on the row.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CurrencyCode([u8; 3]);

impl CurrencyCode {
    /// `XXX`, ISO 4217's "no currency": what a stored code that is not three letters reads as.
    pub(crate) const UNKNOWN: CurrencyCode = CurrencyCode(*b"XXX");

    /// The three-letter code.
    pub fn as_str(&self) -> &str {
        // The bytes are ASCII upper-case letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }

    /// How many digits of minor units the currency has (2 for EUR, 0 for JPY), per ISO 4217;
    /// `None` for a code only Mangopay knows.
    pub fn minor_digits(&self) -> Option<u16> {
        iso_currency::Currency::from_code(self.as_str()).and_then(|c| c.exponent())
    }

    /// A code as Mangopay returned it: any three ASCII letters are kept.
    pub(crate) fn from_api(value: &str) -> Option<CurrencyCode> {
        let b = value.as_bytes();
        (b.len() == 3 && b.iter().all(u8::is_ascii_alphabetic)).then(|| {
            CurrencyCode([
                b[0].to_ascii_uppercase(),
                b[1].to_ascii_uppercase(),
                b[2].to_ascii_uppercase(),
            ])
        })
    }
}

impl FromStr for CurrencyCode {
    type Err = FieldErrorKind;

    /// Accepts a code known to ISO 4217 in any letter case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || FieldErrorKind::InvalidCurrencyCode(s.to_owned());
        let code = CurrencyCode::from_api(s).ok_or_else(invalid)?;
        iso_currency::Currency::from_code(code.as_str()).ok_or_else(invalid)?;
        Ok(code)
    }
}

impl fmt::Display for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CurrencyCode({})", self.as_str())
    }
}

/// Mangopay's own e-mail rule ([`diesel_mangopay_sandbox::EMAIL_PATTERN`], the pattern its
/// `param_error` answers quote), anchored at both ends.
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!("^(?:{})$", diesel_mangopay_sandbox::EMAIL_PATTERN))
        .expect("the e-mail pattern is a valid regex")
});

/// Whether `email` passes Mangopay's e-mail check.
pub fn is_valid_email(email: &str) -> bool {
    EMAIL.is_match(email)
}

pub(crate) fn email(value: &str) -> Result<(), FieldErrorKind> {
    required(value)?;
    max_len(value, 254)?;
    if is_valid_email(value) {
        Ok(())
    } else {
        Err(FieldErrorKind::InvalidEmail)
    }
}

pub(crate) fn required(value: &str) -> Result<(), FieldErrorKind> {
    if value.trim().is_empty() {
        Err(FieldErrorKind::Required)
    } else {
        Ok(())
    }
}

pub(crate) fn max_len(value: &str, max: usize) -> Result<(), FieldErrorKind> {
    if value.chars().count() > max {
        Err(FieldErrorKind::TooLong { max })
    } else {
        Ok(())
    }
}

/// A required name of 1 to `max` characters.
pub(crate) fn name(value: &str, max: usize) -> Result<(), FieldErrorKind> {
    required(value)?;
    max_len(value, max)
}

pub(crate) fn opt_max_len(value: Option<&str>, max: usize) -> Result<(), FieldErrorKind> {
    value.map_or(Ok(()), |v| max_len(v, max))
}

pub(crate) fn not_in_future(date: Option<NaiveDate>) -> Result<(), FieldErrorKind> {
    match date {
        Some(d) if d > chrono::Utc::now().date_naive() => Err(FieldErrorKind::InFuture),
        _ => Ok(()),
    }
}

pub(crate) fn postal_code(value: &str) -> Result<(), FieldErrorKind> {
    max_len(value, 255)?;
    if value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ' ')
    {
        Ok(())
    } else {
        Err(FieldErrorKind::InvalidCharacters(
            "letters, digits, dashes and spaces",
        ))
    }
}

/// Present when `condition` holds.
pub(crate) fn present_if<T>(
    value: Option<T>,
    condition: bool,
    why: &'static str,
) -> Result<(), FieldErrorKind> {
    if condition && value.is_none() {
        Err(FieldErrorKind::RequiredBecause(why))
    } else {
        Ok(())
    }
}

// Bank details: IBANs, BICs and the digit strings of local bank accounts, checked before a bank
// account or a recipient is sent (Mangopay answers a bad one with a `param_error`).

/// An IBAN in its electronic form, as it is stored and sent: whitespace removed, upper case.
pub fn normalize_iban(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase()
}

/// Whether `value` (whitespace and letter case aside) is an IBAN: a country of the SWIFT IBAN
/// registry, that country's length and BBAN format, and matching check digits (ISO 13616).
pub fn is_valid_iban(value: &str) -> bool {
    iban(value).is_ok()
}

/// An IBAN, with a reason when it is not one.
pub(crate) fn iban(value: &str) -> Result<(), FieldErrorKind> {
    required(value)?;
    let compact = normalize_iban(value);
    max_len(&compact, 34)?;
    match compact.parse::<::iban::Iban>() {
        Ok(_) => Ok(()),
        Err(::iban::ParseIbanError::InvalidBaseIban {
            source: ::iban::ParseBaseIbanError::InvalidChecksum,
        }) => Err(FieldErrorKind::NotAllowed(
            "is not a valid IBAN: its check digits do not match".into(),
        )),
        Err(::iban::ParseIbanError::InvalidBaseIban { .. }) => Err(FieldErrorKind::NotAllowed(
            "is not an IBAN: two letters, two check digits, then up to 30 letters and digits"
                .into(),
        )),
        Err(::iban::ParseIbanError::InvalidBban(_)) => Err(FieldErrorKind::NotAllowed(
            "is not a valid IBAN: its account part does not follow its country's format".into(),
        )),
        Err(::iban::ParseIbanError::UnknownCountry(_)) => Err(FieldErrorKind::NotAllowed(
            "is not a valid IBAN: its country code is not one of the IBAN registry".into(),
        )),
    }
}

/// A BIC (ISO 9362) in Mangopay's format (`^[a-zA-Z]{6}\w{2}(\w{3})?$`, the pattern its
/// `param_error` quotes), with a bank code of letters and a real country.
static BIC_FORMAT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new("^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$")
        .expect("the BIC pattern is a valid regex")
});

/// Whether `value` (any letter case) is a BIC: 8 or 11 characters, a bank code of four
/// letters, an ISO 3166-1 country, a location and an optional branch of letters and digits.
pub fn is_valid_bic(value: &str) -> bool {
    let upper = value.to_ascii_uppercase();
    BIC_FORMAT.is_match(&upper) && celes::Country::from_alpha2(&upper[4..6]).is_ok()
}

/// A BIC, with a reason when it is not one.
pub(crate) fn bic(value: &str) -> Result<(), FieldErrorKind> {
    required(value)?;
    if is_valid_bic(value) {
        Ok(())
    } else {
        Err(FieldErrorKind::NotAllowed(
            "is not a BIC: 8 or 11 letters and digits (AAAABBCC or AAAABBCCDDD), BB a country"
                .into(),
        ))
    }
}

/// `min` to `max` ASCII digits.
pub(crate) fn digits(value: &str, min: usize, max: usize) -> Result<(), FieldErrorKind> {
    required(value)?;
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FieldErrorKind::InvalidCharacters("digits"));
    }
    length_between(value, min, max, "digits")
}

/// `min` to `max` ASCII letters and digits.
pub(crate) fn alphanumeric(value: &str, min: usize, max: usize) -> Result<(), FieldErrorKind> {
    required(value)?;
    if !value.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(FieldErrorKind::InvalidCharacters("letters and digits"));
    }
    length_between(value, min, max, "letters and digits")
}

fn length_between(value: &str, min: usize, max: usize, what: &str) -> Result<(), FieldErrorKind> {
    let n = value.chars().count();
    if (min..=max).contains(&n) {
        Ok(())
    } else if min == max {
        Err(FieldErrorKind::NotAllowed(format!(
            "must be exactly {min} {what}"
        )))
    } else {
        Err(FieldErrorKind::NotAllowed(format!(
            "must be {min} to {max} {what}"
        )))
    }
}

/// A text of `min` to `max` characters on one line, with none of the characters of the class
/// `forbidden`: Mangopay's patterns of the form `^(?!.*[&,'/]).{1,50}$`, the class compiled
/// as written (so `'-/` in `[&,.:_'-/]` is a range, as it is for Mangopay). `shown` lists the
/// forbidden characters in the error.
pub(crate) fn without_chars(
    value: &str,
    forbidden: &Regex,
    shown: &str,
    min: usize,
    max: usize,
) -> Result<(), FieldErrorKind> {
    let n = value.chars().count();
    if min > 0 && value.trim().is_empty() {
        return Err(FieldErrorKind::Required);
    }
    if n > max {
        return Err(FieldErrorKind::TooLong { max });
    }
    if n < min {
        return Err(FieldErrorKind::NotAllowed(format!(
            "must be at least {min} characters"
        )));
    }
    if value.contains(['\n', '\r']) || forbidden.is_match(value) {
        return Err(FieldErrorKind::NotAllowed(format!(
            "must be one line without any of {shown}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_codes_are_checked_against_iso_3166() {
        assert_eq!("fr".parse::<CountryCode>().unwrap().as_str(), "FR");
        assert_eq!("GB".parse::<CountryCode>().unwrap().to_string(), "GB");
        for bad in ["", "F", "FRA", "ZZ", "1A", "É1"] {
            assert_eq!(
                bad.parse::<CountryCode>(),
                Err(FieldErrorKind::InvalidCountryCode(bad.to_owned())),
                "{bad:?}"
            );
        }
        assert_eq!(CountryCode::from_api("xk").unwrap().as_str(), "XK");
    }

    #[test]
    fn currency_codes_are_checked_against_iso_4217() {
        let eur = "eur".parse::<CurrencyCode>().unwrap();
        assert_eq!(eur.as_str(), "EUR");
        assert_eq!(eur.minor_digits(), Some(2));
        assert_eq!(
            "JPY".parse::<CurrencyCode>().unwrap().minor_digits(),
            Some(0)
        );
        for bad in ["", "EU", "EURO", "ZZZ", "E1R"] {
            assert_eq!(
                bad.parse::<CurrencyCode>(),
                Err(FieldErrorKind::InvalidCurrencyCode(bad.to_owned())),
                "{bad:?}"
            );
        }
        assert_eq!(CurrencyCode::from_api("xts").unwrap().as_str(), "XTS");
    }

    #[test]
    fn emails_follow_mangopays_rule() {
        for ok in [
            "alex.smith@example.com",
            "a+b@x.co",
            "o'neil@mail.example.fr",
        ] {
            assert!(is_valid_email(ok), "{ok}");
        }
        for bad in [
            "",
            "alex",
            "alex@",
            "@example.com",
            "a@b",
            "a b@example.com",
            "a@-x.com",
        ] {
            assert!(!is_valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn errors_name_their_fields() {
        let mut errors = ValidationErrors::new();
        errors.check("email", email("nope"));
        errors.check("first_name", name("", 100));
        let errors = errors.prefixed("owner");
        assert!(errors.has("owner.email"));
        assert_eq!(
            errors.to_string(),
            "owner.email is not a valid e-mail address; owner.first_name is required"
        );
    }

    #[test]
    fn postal_codes_allow_letters_digits_dashes_spaces() {
        assert!(postal_code("SW1A 1AA").is_ok());
        assert!(postal_code("75004").is_ok());
        assert!(postal_code("750#4").is_err());
    }
}
