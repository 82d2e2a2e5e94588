//! Recipients: create (asynchronous, `PENDING` first), validate, view, list, deactivate,
//! the schema of each supported combination of payout method, recipient type, currency and
//! country, and the payout methods available for a currency and country.
//!
//! One schema drives both `GET /recipients/schema` and the validation of create and
//! validate requests, so a body built from the schema passes. Errors are written as the
//! Recipients reference pages show them: `Errors` (capital E) mapping each field, dotted
//! for nested ones (`LocalBankTransfer.GBP.AccountNumber`), to a code such as `REQUIRED`,
//! `LENGTH_LESS_THAN_MIN`, `INVALID_FORMAT` or `INVALID_IBAN`.
//!
//! Recipient objects omit the keys they have no value for (`AddressLine2` and `Region` are
//! "only returned if sent", `PendingUserAction` only while an SCA is pending), as the
//! reference's examples do.
//!
//! A new recipient stays `PENDING` until a control request
//! (`POST /_sandbox/recipients/{RecipientId}/status`, [`crate::Sandbox::set_recipient_status`])
//! settles it, or until the delay chosen with [`crate::Knobs::set_recipient_sca`] has passed
//! on the sandbox clock; that delay is looked at whenever the recipient is read.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use iban::IbanLike as _;
use rand::RngExt as _;
use regex::Regex;
use serde::ser::SerializeMap as _;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::Sandbox;
use super::bank_accounts::{bic_is_valid, list_cutoff, list_page, parse_iban, uses_iban};
use super::error::{ApiError, FieldErrors, json_response};
use super::ids;
use super::state::Shared;
use super::users::{JsonObject, ListQuery};

/// A status a `PENDING` recipient is moved to by the control request
/// `POST /_sandbox/recipients/{RecipientId}/status` or by
/// [`crate::Sandbox::set_recipient_status`]: the outcome of the user's SCA session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientStatus {
    /// `ACTIVE`: the SCA succeeded (or, for a `PAYIN` recipient, its creation completed);
    /// the recipient can receive pay-outs.
    Active,
    /// `CANCELED`: the SCA was not completed. Only for `PAYOUT` recipients.
    Canceled,
}

/// What happens to a recipient after its creation, which the sandbox cannot learn from a
/// user's SCA session (see [`crate::Knobs::set_recipient_sca`]). The choice in force when a
/// recipient is created applies to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RecipientSca {
    /// The recipient stays `PENDING` until a control request settles it (the default).
    #[default]
    Manual,
    /// The recipient becomes `ACTIVE` once this much sandbox time has passed since its
    /// creation.
    ActivateAfter(Duration),
    /// A `PAYOUT` recipient becomes `CANCELED` once this much sandbox time has passed
    /// since its creation (the SCA was abandoned). A `PAYIN` recipient needs no SCA and
    /// becomes `ACTIVE` after that delay instead, since `CANCELED` does not apply to it.
    CancelAfter(Duration),
}

/// `Status` of a stored recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecipientState {
    Pending,
    Canceled,
    Active,
    Deactivated,
}

impl RecipientState {
    fn as_str(self) -> &'static str {
        match self {
            RecipientState::Pending => "PENDING",
            RecipientState::Canceled => "CANCELED",
            RecipientState::Active => "ACTIVE",
            RecipientState::Deactivated => "DEACTIVATED",
        }
    }
}

/// `RecipientScope` of a stored recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecipientScope {
    Payout,
    Payin,
}

impl RecipientScope {
    fn as_str(self) -> &'static str {
        match self {
            RecipientScope::Payout => "PAYOUT",
            RecipientScope::Payin => "PAYIN",
        }
    }
}

/// The currencies Recipients accept, as the reference lists them.
const CURRENCIES: [&str; 24] = [
    "AED", "AUD", "CAD", "CHF", "CNH", "CZK", "DKK", "EUR", "GBP", "HKD", "HUF", "ILS", "JPY",
    "MXN", "NOK", "NZD", "PLN", "RON", "SAR", "SEK", "SGD", "TRY", "USD", "ZAR",
];

/// The countries of the SEPA scheme, where EUR local transfers (and IBANs of local
/// transfers) go.
const SEPA_COUNTRIES: [&str; 37] = [
    "AD", "AT", "BE", "BG", "CH", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GB", "GI", "GR",
    "HR", "HU", "IE", "IS", "IT", "LI", "LT", "LU", "LV", "MC", "MT", "NL", "NO", "PL", "PT", "RO",
    "SE", "SI", "SK", "SM", "VA",
];

/// Currencies with a `LocalBankTransfer` and the countries it reaches (EUR: SEPA).
fn local_countries(currency: &str) -> &'static [&'static str] {
    match currency {
        "EUR" => &SEPA_COUNTRIES,
        "GBP" => &["GB"],
        "USD" => &["US"],
        "CAD" => &["CA"],
        "CHF" => &["CH", "LI"],
        "CZK" => &["CZ"],
        "DKK" => &["DK"],
        "HUF" => &["HU"],
        "NOK" => &["NO"],
        "PLN" => &["PL"],
        "RON" => &["RO"],
        "SEK" => &["SE"],
        _ => &[],
    }
}

/// Whether `LocalBankTransfer` reaches `country` in `currency`.
fn local_available(currency: &str, country: &str) -> bool {
    local_countries(currency).contains(&country)
}

const PAYOUT_METHODS: [&str; 2] = ["InternationalBankTransfer", "LocalBankTransfer"];
const RECIPIENT_TYPES: [&str; 2] = ["Individual", "Business"];
const SCOPES: [&str; 2] = ["PAYOUT", "PAYIN"];

// The patterns, exactly as the reference and its schema examples publish them.
const DISPLAY_NAME: &str = r"^(?!.*[&,'/]).{1,50}$";
const CURRENCY: &str = r"^[a-zA-Z]{3}$";
const COUNTRY: &str = r"^[a-zA-Z]{2}$";
const WORD: &str = r"^[a-zA-Z]+$";
const TAG: &str = r"^.{0,255}$";
const PERSON_NAME: &str = r"^(?!.*[()&,.:_/]).{1,255}$";
const BUSINESS_NAME: &str = r"^(?!.*[(),.:/]).{1,255}$";
const ADDRESS_LINE: &str = r"^(?!.*[()/]).{1,255}$";
const CITY: &str = r"^(?!.*[&,.:_']).{1,80}$";
const REGION: &str = r"^(?!.*[&,.:_'-/]).{1,50}$";
const POSTAL_CODE: &str = r"^(?!.*[()&,.:_'/]).{1,10}$";
const IBAN: &str = r"^[a-zA-Z]{2}\d{2}\s*(\w{4}\s*){2,7}\w{1,4}\s*$";
const BIC: &str = r"^[0-9a-zA-Z]{8}([0-9a-zA-Z]{3})?$";
const GB_ACCOUNT: &str = r"^\d{8}$";
const SORT_CODE: &str = r"^\d{6}$";
const US_ACCOUNT: &str = r"^[0-9a-zA-Z]{8,12}$";
const ABA: &str = r"^\d{9}$";
const FFC: &str = r"^(?=.{0,140}$)[0-9]{8,12}/FFC [0-9a-zA-Z/\-?:().,'+ ]+$";
const CA_ACCOUNT: &str = r"^\d{7,35}$";
const INSTITUTION_NUMBER: &str = r"^\d{3}$";
const BRANCH_CODE: &str = r"^\d{5}$";
const OTHER_ACCOUNT: &str = r"^[0-9a-zA-Z]{5,35}$";

/// A published pattern made usable by the `regex` crate, which has no look-around: the
/// leading `(?!…)` and `(?=…)` groups become separate tests at the start of the value.
#[derive(Debug)]
struct Pattern {
    /// Must not match at the start.
    refuse: Vec<Regex>,
    /// Must match at the start.
    require: Vec<Regex>,
    body: Regex,
}

impl Pattern {
    fn compile(pattern: &str) -> Pattern {
        let mut rest = pattern.strip_prefix('^').unwrap_or(pattern);
        let mut refuse = Vec::new();
        let mut require = Vec::new();
        while let Some(negative) = rest
            .strip_prefix("(?!")
            .map(|r| (true, r))
            .or_else(|| rest.strip_prefix("(?=").map(|r| (false, r)))
        {
            let (is_negative, inner_and_rest) = negative;
            let close = group_end(inner_and_rest);
            let inner = &inner_and_rest[..close];
            let regex = Regex::new(&format!("^(?:{inner})")).expect("published patterns compile");
            if is_negative {
                refuse.push(regex);
            } else {
                require.push(regex);
            }
            rest = &inner_and_rest[close + 1..];
        }
        Pattern {
            refuse,
            require,
            body: Regex::new(&format!("^{rest}")).expect("published patterns compile"),
        }
    }

    fn is_match(&self, value: &str) -> bool {
        self.refuse.iter().all(|r| !r.is_match(value))
            && self.require.iter().all(|r| r.is_match(value))
            && self.body.is_match(value)
    }
}

/// The index of the `)` closing a group whose content starts `text` (escapes and
/// character classes skipped).
fn group_end(text: &str) -> usize {
    let mut depth = 0usize;
    let mut in_class = false;
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '(' if !in_class => depth += 1,
            ')' if !in_class => {
                if depth == 0 {
                    return i;
                }
                depth -= 1;
            }
            _ => {}
        }
    }
    text.len()
}

static PATTERNS: LazyLock<Mutex<HashMap<&'static str, Arc<Pattern>>>> =
    LazyLock::new(Mutex::default);

/// Whether `value` matches one of the published patterns.
fn matches(pattern: &'static str, value: &str) -> bool {
    let compiled = {
        let mut cache = PATTERNS.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            cache
                .entry(pattern)
                .or_insert_with(|| Arc::new(Pattern::compile(pattern))),
        )
    };
    compiled.is_match(value)
}

/// The schema of one string property, keys in the reference's order.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Spec {
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_values: Option<Vec<String>>,
    required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_length: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_length: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pattern: Option<&'static str>,
    label: &'static str,
    end_user_display: &'static str,
}

impl Spec {
    fn new(label: &'static str, required: bool) -> Spec {
        Spec {
            allowed_values: None,
            required,
            max_length: None,
            min_length: None,
            pattern: None,
            label,
            end_user_display: "Show",
        }
    }

    fn max(mut self, n: usize) -> Spec {
        self.max_length = Some(n);
        self
    }

    fn min(mut self, n: usize) -> Spec {
        self.min_length = Some(n);
        self
    }

    fn pattern(mut self, pattern: &'static str) -> Spec {
        self.pattern = Some(pattern);
        self
    }

    fn allowed(mut self, values: &[&str]) -> Spec {
        self.allowed_values = Some(values.iter().map(|v| (*v).to_owned()).collect());
        self
    }

    fn hidden(mut self) -> Spec {
        self.end_user_display = "Hide";
        self
    }

    /// Checks one value, answering the stored text (an allowed value in its published
    /// spelling) or the reference's error code.
    fn check(&self, value: Option<&Value>) -> Result<Option<String>, &'static str> {
        let text = match value {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => return Err("INVALID_FORMAT"),
        };
        let Some(text) = text else {
            return if self.required {
                Err("REQUIRED")
            } else {
                Ok(None)
            };
        };
        let length = text.chars().count();
        if self.min_length.is_some_and(|min| length < min) {
            return Err("LENGTH_LESS_THAN_MIN");
        }
        if self.max_length.is_some_and(|max| length > max) {
            return Err("LENGTH_MORE_THAN_MAX");
        }
        if let Some(allowed) = &self.allowed_values {
            return match allowed.iter().find(|a| a.eq_ignore_ascii_case(&text)) {
                Some(value) => Ok(Some(value.clone())),
                None => Err("NOT_IN_ALLOWED_VALUES"),
            };
        }
        if let Some(pattern) = self.pattern
            && !matches(pattern, &text)
        {
            return Err("INVALID_FORMAT");
        }
        Ok(Some(text))
    }
}

/// A schema: a property, or an object of named properties in the reference's order.
#[derive(Debug, Clone)]
enum Node {
    Field(Spec),
    Object(Vec<(&'static str, Node)>),
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Field(spec) => spec.serialize(serializer),
            Node::Object(children) => {
                let mut map = serializer.serialize_map(Some(children.len()))?;
                for (name, child) in children {
                    map.serialize_entry(name, child)?;
                }
                map.end()
            }
        }
    }
}

impl Node {
    fn has_required(&self) -> bool {
        match self {
            Node::Field(spec) => spec.required,
            Node::Object(children) => children.iter().any(|(_, c)| c.has_required()),
        }
    }

    fn child(&self, name: &str) -> Option<&Node> {
        match self {
            Node::Object(children) => children.iter().find(|(n, _)| *n == name).map(|(_, c)| c),
            Node::Field(_) => None,
        }
    }

    /// Checks `value` against this schema, recording errors under `path`; the accepted
    /// part of the value, in the schema's order, without the properties not given.
    fn check(&self, value: Option<&Value>, path: &str, errors: &mut FieldErrors) -> Option<Tree> {
        match self {
            Node::Field(spec) => match spec.check(value) {
                Ok(text) => text.map(Tree::Text),
                Err(code) => {
                    errors.insert(path.to_owned(), code.to_owned());
                    None
                }
            },
            Node::Object(children) => {
                let object = match value {
                    None | Some(Value::Null) => {
                        if self.has_required() {
                            errors.insert(path.to_owned(), "REQUIRED".to_owned());
                        }
                        return None;
                    }
                    Some(Value::Object(object)) => object,
                    Some(_) => {
                        errors.insert(path.to_owned(), "INVALID_FORMAT".to_owned());
                        return None;
                    }
                };
                let entries = children
                    .iter()
                    .filter_map(|(name, child)| {
                        let path = format!("{path}.{name}");
                        child
                            .check(object.get(*name), &path, errors)
                            .map(|tree| ((*name).to_owned(), tree))
                    })
                    .collect();
                Some(Tree::Object(entries))
            }
        }
    }
}

/// Accepted, stored recipient data: text, or an object keeping its keys' order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tree {
    Text(String),
    Object(Vec<(String, Tree)>),
}

impl Serialize for Tree {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Tree::Text(text) => serializer.serialize_str(text),
            Tree::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (name, value) in entries {
                    map.serialize_entry(name, value)?;
                }
                map.end()
            }
        }
    }
}

impl Tree {
    fn get(&self, name: &str) -> Option<&Tree> {
        match self {
            Tree::Object(entries) => entries.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            Tree::Text(_) => None,
        }
    }

    fn text(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(Tree::Text(text)) => Some(text),
            _ => None,
        }
    }

    fn set(&mut self, name: &str, value: Tree) {
        if let Tree::Object(entries) = self {
            match entries.iter_mut().find(|(n, _)| n == name) {
                Some(entry) => entry.1 = value,
                None => entries.push((name.to_owned(), value)),
            }
        }
    }
}

/// What a schema is asked for: the four values that decide it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Combination {
    local: bool,
    individual: bool,
    currency: String,
    country: String,
}

impl Combination {
    fn payout_method_type(&self) -> &'static str {
        if self.local {
            "LocalBankTransfer"
        } else {
            "InternationalBankTransfer"
        }
    }

    fn recipient_type(&self) -> &'static str {
        if self.individual {
            "Individual"
        } else {
            "Business"
        }
    }

    fn holder_key(&self) -> &'static str {
        if self.individual {
            "IndividualRecipient"
        } else {
            "BusinessRecipient"
        }
    }

    fn transfer_key(&self) -> &'static str {
        self.payout_method_type()
    }

    /// Whether addresses need a `Region`: local transfers in USD and CAD.
    fn needs_region(&self) -> bool {
        self.local && matches!(self.currency.as_str(), "USD" | "CAD")
    }

    fn address(&self) -> Node {
        Node::Object(vec![
            (
                "AddressLine1",
                Node::Field(
                    Spec::new("Address Line 1", true)
                        .max(255)
                        .pattern(ADDRESS_LINE),
                ),
            ),
            (
                "AddressLine2",
                Node::Field(
                    Spec::new("Address Line 2", false)
                        .max(255)
                        .pattern(ADDRESS_LINE),
                ),
            ),
            (
                "City",
                Node::Field(Spec::new("City", true).max(80).pattern(CITY)),
            ),
            (
                "Country",
                Node::Field(Spec::new("Country", true).max(2).min(2).pattern(WORD)),
            ),
            (
                "Region",
                Node::Field(
                    Spec::new("Region", self.needs_region())
                        .max(50)
                        .pattern(REGION),
                ),
            ),
            (
                "PostalCode",
                Node::Field(Spec::new("Postal Code", true).max(10).pattern(POSTAL_CODE)),
            ),
        ])
    }

    fn holder(&self) -> Node {
        if self.individual {
            Node::Object(vec![
                (
                    "FirstName",
                    Node::Field(Spec::new("First Name", true).max(255).pattern(PERSON_NAME)),
                ),
                (
                    "LastName",
                    Node::Field(Spec::new("Last Name", true).max(255).pattern(PERSON_NAME)),
                ),
                ("Address", self.address()),
            ])
        } else {
            Node::Object(vec![
                (
                    "BusinessName",
                    Node::Field(
                        Spec::new("Business Name", true)
                            .max(255)
                            .pattern(BUSINESS_NAME),
                    ),
                ),
                ("Address", self.address()),
            ])
        }
    }

    fn iban_spec() -> Node {
        Node::Field(Spec::new("IBAN", true).max(34).pattern(IBAN))
    }

    fn transfer(&self) -> Node {
        if !self.local {
            if uses_iban(&self.country) {
                return Node::Object(vec![(
                    "AccountNumber",
                    Node::Field(
                        Spec::new("Account Number", true)
                            .max(34)
                            .min(15)
                            .pattern(IBAN),
                    ),
                )]);
            }
            let account = if self.country == "US" {
                Spec::new("Account Number", true)
                    .max(12)
                    .min(8)
                    .pattern(US_ACCOUNT)
            } else {
                Spec::new("Account Number", true)
                    .max(35)
                    .min(5)
                    .pattern(OTHER_ACCOUNT)
            };
            return Node::Object(vec![
                ("AccountNumber", Node::Field(account)),
                ("BIC", Node::Field(Spec::new("BIC", true).pattern(BIC))),
            ]);
        }
        let details = match self.currency.as_str() {
            "GBP" => Node::Object(vec![
                (
                    "AccountNumber",
                    Node::Field(
                        Spec::new("Account Number", true)
                            .max(8)
                            .min(8)
                            .pattern(GB_ACCOUNT),
                    ),
                ),
                (
                    "SortCode",
                    Node::Field(
                        Spec::new("Sort Code", true)
                            .max(6)
                            .min(6)
                            .pattern(SORT_CODE),
                    ),
                ),
            ]),
            "USD" => Node::Object(vec![
                (
                    "AccountNumber",
                    Node::Field(
                        Spec::new("Account Number", true)
                            .max(12)
                            .min(8)
                            .pattern(US_ACCOUNT),
                    ),
                ),
                (
                    "ABA",
                    Node::Field(Spec::new("ABA", true).max(9).min(9).pattern(ABA)),
                ),
                (
                    "FFC",
                    Node::Field(Spec::new("FFC", false).max(140).min(14).pattern(FFC)),
                ),
            ]),
            "CAD" => Node::Object(vec![
                (
                    "AccountNumber",
                    Node::Field(
                        Spec::new("Account Number", true)
                            .max(35)
                            .min(7)
                            .pattern(CA_ACCOUNT),
                    ),
                ),
                (
                    "InstitutionNumber",
                    Node::Field(
                        Spec::new("Institution Number", true)
                            .max(3)
                            .min(3)
                            .pattern(INSTITUTION_NUMBER),
                    ),
                ),
                (
                    "BranchCode",
                    Node::Field(
                        Spec::new("Branch Code", true)
                            .max(5)
                            .min(5)
                            .pattern(BRANCH_CODE),
                    ),
                ),
                (
                    "BankName",
                    Node::Field(Spec::new("Bank Name", true).max(50)),
                ),
            ]),
            _ => Node::Object(vec![("IBAN", Combination::iban_spec())]),
        };
        let currency: &'static str = CURRENCIES
            .iter()
            .find(|c| **c == self.currency)
            .copied()
            .unwrap_or("EUR");
        Node::Object(vec![(currency, details)])
    }

    /// The whole schema, as `GET /recipients/schema` answers it.
    fn schema(&self) -> Node {
        let country: &str = &self.country;
        Node::Object(vec![
            (
                "DisplayName",
                Node::Field(
                    Spec::new("Display Name", true)
                        .max(50)
                        .pattern(DISPLAY_NAME),
                ),
            ),
            (
                "Currency",
                Node::Field(
                    Spec::new("Currency", true)
                        .allowed(&[&self.currency])
                        .max(3)
                        .min(3)
                        .pattern(CURRENCY)
                        .hidden(),
                ),
            ),
            (
                "Country",
                Node::Field(
                    Spec::new("Destination Country", true)
                        .allowed(&[country])
                        .max(2)
                        .min(2)
                        .pattern(COUNTRY)
                        .hidden(),
                ),
            ),
            (
                "RecipientType",
                Node::Field(
                    Spec::new("Recipient Type", true)
                        .allowed(&[self.recipient_type()])
                        .pattern(WORD)
                        .hidden(),
                ),
            ),
            (
                "PayoutMethodType",
                Node::Field(
                    Spec::new("Payout Method Type", true)
                        .allowed(&[self.payout_method_type()])
                        .pattern(WORD)
                        .hidden(),
                ),
            ),
            (
                "Tag",
                Node::Field(Spec::new("Tag", false).max(255).pattern(TAG).hidden()),
            ),
            (
                "RecipientScope",
                Node::Field(
                    Spec::new("Recipient Scope", false)
                        .allowed(&SCOPES)
                        .pattern(WORD)
                        .hidden(),
                ),
            ),
            (self.holder_key(), self.holder()),
            (self.transfer_key(), self.transfer()),
        ])
    }
}

/// Reads a currency: `REQUIRED`, `UNSUPPORTED_CURRENCY` for a well-formed ISO 4217 code
/// Recipients do not take, `NOT_IN_ALLOWED_VALUES` for anything else.
fn currency(value: Option<&str>) -> Result<String, &'static str> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Err("REQUIRED");
    };
    let upper = value.to_ascii_uppercase();
    if CURRENCIES.contains(&upper.as_str()) {
        Ok(upper)
    } else if value.len() == 3 && value.bytes().all(|b| b.is_ascii_alphabetic()) {
        Err("UNSUPPORTED_CURRENCY")
    } else {
        Err("NOT_IN_ALLOWED_VALUES")
    }
}

/// Reads a destination country: two letters naming a country, upper-cased.
fn country(value: &str) -> Result<String, &'static str> {
    let upper = value.to_ascii_uppercase();
    if matches(COUNTRY, value) && celes::Country::from_alpha2(&upper).is_ok() {
        Ok(upper)
    } else {
        Err("INVALID_FORMAT")
    }
}

/// One of `allowed`, matched case-insensitively.
fn one_of(value: Option<&str>, allowed: &[&'static str]) -> Result<&'static str, &'static str> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Err("REQUIRED");
    };
    allowed
        .iter()
        .find(|a| a.eq_ignore_ascii_case(value))
        .copied()
        .ok_or("NOT_IN_ALLOWED_VALUES")
}

/// The text of a top-level property (numbers as text, `null` and `""` as absent).
fn text_of<'a>(body: &'a Map<String, Value>, key: &str) -> Option<std::borrow::Cow<'a, str>> {
    match body.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(std::borrow::Cow::Borrowed(s)),
        Some(Value::Number(n)) => Some(std::borrow::Cow::Owned(n.to_string())),
        _ => None,
    }
}

/// The text at a dotted path of a body (`LocalBankTransfer.EUR.IBAN`).
fn text_at<'a>(body: &'a Map<String, Value>, path: &[&str]) -> Option<&'a str> {
    let (last, parents) = path.split_last()?;
    let mut object = body;
    for key in parents {
        object = object.get(*key)?.as_object()?;
    }
    object.get(*last)?.as_str()
}

/// A validated recipient body, ready to be stored.
#[derive(Debug)]
struct NewRecipient {
    combination: Combination,
    scope: RecipientScope,
    display_name: String,
    tag: Option<String>,
    holder: Tree,
    transfer: Tree,
}

/// The sandbox's BIC for an IBAN (it has no bank directory): a bank code of four letters
/// from the IBAN's bank identifier (digits 0–9 read as A–J), the IBAN's country, and `XX`
/// and `XXX` for location and branch.
fn derived_bic(iban: &iban::Iban) -> String {
    let source = iban
        .bank_identifier()
        .unwrap_or_else(|| &iban.electronic_str()[4..]);
    let mut bank: String = source
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| match c.to_digit(10) {
            Some(d) => char::from(b'A' + d as u8),
            None => c.to_ascii_uppercase(),
        })
        .take(4)
        .collect();
    while bank.len() < 4 {
        bank.push('X');
    }
    format!("{bank}{}XXXXX", iban.country_code())
}

/// Checks a create or validate body: first the values that decide the schema, then the
/// body against that schema, then what a pattern cannot tell (IBAN check digits, BICs,
/// IBANs outside SEPA for local transfers, country codes of addresses).
fn validate(body: &Map<String, Value>) -> Result<NewRecipient, ApiError> {
    let mut errors = FieldErrors::new();
    let mut record = |field: &str, result: Result<&'static str, &'static str>| match result {
        Ok(value) => Some(value),
        Err(code) => {
            errors.insert(field.to_owned(), code.to_owned());
            None
        }
    };
    let method = record(
        "PayoutMethodType",
        one_of(
            text_of(body, "PayoutMethodType").as_deref(),
            &PAYOUT_METHODS,
        ),
    );
    let kind = record(
        "RecipientType",
        one_of(text_of(body, "RecipientType").as_deref(), &RECIPIENT_TYPES),
    );
    let scope = match text_of(body, "RecipientScope") {
        None => Some("PAYOUT"),
        Some(value) => record("RecipientScope", one_of(Some(&value), &SCOPES)),
    };
    let currency = match currency(text_of(body, "Currency").as_deref()) {
        Ok(currency) => Some(currency),
        Err(code) => {
            errors.insert("Currency".to_owned(), code.to_owned());
            None
        }
    };
    let given_country = match text_of(body, "Country") {
        None => None,
        Some(value) => match country(&value) {
            Ok(country) => Some(country),
            Err(code) => {
                errors.insert("Country".to_owned(), code.to_owned());
                None
            }
        },
    };
    let (Some(method), Some(kind), Some(scope), Some(currency)) = (method, kind, scope, currency)
    else {
        return Err(ApiError::recipient_errors(errors));
    };
    if !errors.is_empty() {
        return Err(ApiError::recipient_errors(errors));
    }
    let local = method == "LocalBankTransfer";
    // Without a Country: the currency's own country, or the IBAN's.
    let country = given_country.or_else(|| {
        let iban_country = || {
            let path: &[&str] = if local {
                &["LocalBankTransfer", &currency, "IBAN"]
            } else {
                &["InternationalBankTransfer", "AccountNumber"]
            };
            text_at(body, path)
                .and_then(parse_iban)
                .map(|iban| iban.country_code().to_owned())
        };
        match local_countries(&currency) {
            [only] if local => Some((*only).to_owned()),
            _ => iban_country(),
        }
    });
    let Some(country) = country else {
        errors.insert("Country".to_owned(), "REQUIRED".to_owned());
        return Err(ApiError::recipient_errors(errors));
    };
    if local && !local_available(&currency, &country) {
        errors.insert(
            "PayoutMethodType".to_owned(),
            "UNSUPPORTED_PAYOUT_METHOD_FOR_CURRENCY".to_owned(),
        );
        return Err(ApiError::recipient_errors(errors));
    }
    let combination = Combination {
        local,
        individual: kind == "Individual",
        currency,
        country,
    };
    let schema = combination.schema();
    let check = |name: &str, errors: &mut FieldErrors| {
        schema
            .child(name)
            .and_then(|node| node.check(body.get(name), name, errors))
    };
    let display_name = check("DisplayName", &mut errors);
    let tag = check("Tag", &mut errors);
    let holder = check(combination.holder_key(), &mut errors);
    let mut transfer = check(combination.transfer_key(), &mut errors);

    if let Some(holder) = &holder
        && let Some(address_country) = holder.get("Address").and_then(|a| a.text("Country"))
        && country_code(address_country).is_none()
    {
        errors.insert(
            format!("{}.Address.Country", combination.holder_key()),
            "INVALID_FORMAT".to_owned(),
        );
    }
    if let Some(transfer) = &mut transfer {
        check_account(&combination, transfer, &mut errors);
    }
    if !errors.is_empty() {
        return Err(ApiError::recipient_errors(errors));
    }
    let (Some(Tree::Text(display_name)), Some(holder), Some(transfer)) =
        (display_name, holder, transfer)
    else {
        unreachable!("required properties were checked");
    };
    Ok(NewRecipient {
        combination,
        scope: if scope == "PAYIN" {
            RecipientScope::Payin
        } else {
            RecipientScope::Payout
        },
        display_name,
        tag: match tag {
            Some(Tree::Text(tag)) => Some(tag),
            _ => None,
        },
        holder,
        transfer,
    })
}

/// A country code of an address, upper-cased, if it names a country.
fn country_code(code: &str) -> Option<String> {
    let upper = code.to_ascii_uppercase();
    celes::Country::from_alpha2(&upper).ok().map(|_| upper)
}

/// What patterns cannot tell about the account details (already well-formed): IBAN check
/// digits and country formats, BICs, local transfers to IBANs outside SEPA. The BIC of an
/// account in an IBAN country is derived from the IBAN, as the reference says.
fn check_account(combination: &Combination, transfer: &mut Tree, errors: &mut FieldErrors) {
    let key = combination.transfer_key();
    if combination.local {
        let currency = combination.currency.as_str();
        let Some(details) = transfer.get(currency) else {
            return;
        };
        if let Some(text) = details.text("IBAN") {
            match parse_iban(text) {
                None => {
                    errors.insert(format!("{key}.{currency}.IBAN"), "INVALID_IBAN".to_owned());
                }
                Some(iban) if !SEPA_COUNTRIES.contains(&iban.country_code()) => {
                    errors.insert(
                        format!("{key}.{currency}.IBAN"),
                        "UNSUPPORTED_IBAN".to_owned(),
                    );
                }
                Some(_) => {}
            }
        }
        return;
    }
    if uses_iban(&combination.country) {
        if let Some(text) = transfer.text("AccountNumber") {
            match parse_iban(text) {
                None => {
                    errors.insert(format!("{key}.AccountNumber"), "INVALID_IBAN".to_owned());
                }
                Some(iban) => transfer.set("BIC", Tree::Text(derived_bic(&iban))),
            }
        }
    } else if let Some(bic) = transfer.text("BIC") {
        if bic_is_valid(bic) {
            let upper = bic.to_ascii_uppercase();
            transfer.set("BIC", Tree::Text(upper));
        } else {
            errors.insert(format!("{key}.BIC"), "INVALID_BIC".to_owned());
        }
    }
}

/// One stored recipient.
#[derive(Debug, Clone)]
pub(crate) struct RecipientRecord {
    pub(crate) id: String,
    pub(crate) user_id: String,
    pub(crate) status: RecipientState,
    pub(crate) scope: RecipientScope,
    creation_date: i64,
    /// The creation instant in milliseconds of the sandbox clock (for the list lag).
    created_at_ms: i64,
    display_name: String,
    combination: Combination,
    tag: Option<String>,
    holder: Tree,
    transfer: Tree,
    /// The SCA session link while a `PAYOUT` recipient is `PENDING`.
    redirect_url: Option<String>,
    /// The status the recipient takes by itself, and from when (sandbox milliseconds).
    scheduled: Option<(RecipientState, i64)>,
}

/// `PendingUserAction` of a recipient awaiting SCA.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct PendingUserAction<'a> {
    redirect_url: &'a str,
}

/// The Recipient object, keys in the documentation's order, absent ones omitted.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct RecipientView<'a> {
    id: &'a str,
    status: &'static str,
    creation_date: i64,
    display_name: &'a str,
    payout_method_type: &'static str,
    recipient_type: &'static str,
    currency: &'a str,
    country: &'a str,
    user_id: &'a str,
    recipient_scope: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    individual_recipient: Option<&'a Tree>,
    #[serde(skip_serializing_if = "Option::is_none")]
    business_recipient: Option<&'a Tree>,
    #[serde(skip_serializing_if = "Option::is_none")]
    international_bank_transfer: Option<&'a Tree>,
    #[serde(skip_serializing_if = "Option::is_none")]
    local_bank_transfer: Option<&'a Tree>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pending_user_action: Option<PendingUserAction<'a>>,
}

/// An item of `GET /users/{UserId}/recipients`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct RecipientSummary<'a> {
    id: &'a str,
    display_name: &'a str,
    payout_method_type: &'static str,
    recipient_type: &'static str,
    currency: &'a str,
    country: &'a str,
    user_id: &'a str,
    status: &'static str,
    recipient_scope: &'static str,
}

impl RecipientRecord {
    /// Applies the status the recipient was scheduled to take by `now_ms`, if any.
    pub(crate) fn settle(&mut self, now_ms: i64) {
        if self.status == RecipientState::Pending
            && let Some((status, at)) = self.scheduled
            && now_ms >= at
        {
            self.change_status(status);
        }
    }

    fn change_status(&mut self, status: RecipientState) {
        self.status = status;
        self.scheduled = None;
        if status != RecipientState::Pending {
            self.redirect_url = None;
        }
    }

    fn view(&self) -> RecipientView<'_> {
        let c = &self.combination;
        RecipientView {
            id: &self.id,
            status: self.status.as_str(),
            creation_date: self.creation_date,
            display_name: &self.display_name,
            payout_method_type: c.payout_method_type(),
            recipient_type: c.recipient_type(),
            currency: &c.currency,
            country: &c.country,
            user_id: &self.user_id,
            recipient_scope: self.scope.as_str(),
            tag: self.tag.as_deref(),
            individual_recipient: c.individual.then_some(&self.holder),
            business_recipient: (!c.individual).then_some(&self.holder),
            international_bank_transfer: (!c.local).then_some(&self.transfer),
            local_bank_transfer: c.local.then_some(&self.transfer),
            pending_user_action: self
                .redirect_url
                .as_deref()
                .map(|redirect_url| PendingUserAction { redirect_url }),
        }
    }

    fn summary(&self) -> RecipientSummary<'_> {
        let c = &self.combination;
        RecipientSummary {
            id: &self.id,
            display_name: &self.display_name,
            payout_method_type: c.payout_method_type(),
            recipient_type: c.recipient_type(),
            currency: &c.currency,
            country: &c.country,
            user_id: &self.user_id,
            status: self.status.as_str(),
            recipient_scope: self.scope.as_str(),
        }
    }

    /// The object as `GET /recipients/{RecipientId}` answers it.
    pub(crate) fn to_json(&self) -> Value {
        serde_json::to_value(self.view()).unwrap_or(Value::Null)
    }

    fn to_response(&self, status: StatusCode) -> Response {
        json_response(status, &self.view())
    }
}

/// Recipients in creation order, indexed by id.
#[derive(Debug, Default)]
pub(crate) struct RecipientStore {
    records: Vec<RecipientRecord>,
    index: HashMap<String, usize>,
}

impl RecipientStore {
    fn insert(&mut self, record: RecipientRecord) {
        self.index.insert(record.id.clone(), self.records.len());
        self.records.push(record);
    }

    pub(crate) fn get_mut(&mut self, id: &str) -> Option<&mut RecipientRecord> {
        self.index.get(id).map(|&i| &mut self.records[i])
    }

    /// Every recipient, oldest first, each settled at `now_ms`.
    pub(crate) fn settled(&mut self, now_ms: i64) -> &[RecipientRecord] {
        for record in &mut self.records {
            record.settle(now_ms);
        }
        &self.records
    }

    /// One recipient settled at `now_ms`.
    pub(crate) fn settled_one(&mut self, id: &str, now_ms: i64) -> Option<&mut RecipientRecord> {
        let record = self.get_mut(id)?;
        record.settle(now_ms);
        Some(record)
    }
}

impl Shared {
    /// The recipient store, even if a panicking request poisoned its lock.
    pub(crate) fn recipients(&self) -> MutexGuard<'_, RecipientStore> {
        self.recipients.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves a `PENDING` recipient to `status`, as the control request does.
    pub(crate) fn set_recipient_status(
        &self,
        id: &str,
        status: RecipientStatus,
    ) -> Result<Value, ApiError> {
        let now_ms = self.clock.now().timestamp_millis();
        let mut recipients = self.recipients();
        let record = recipients
            .settled_one(id, now_ms)
            .ok_or_else(|| ApiError::not_found("Recipient", id))?;
        if record.status != RecipientState::Pending {
            return Err(ApiError::param_error(
                "Status",
                format!(
                    "The recipient {id} is {}: only a PENDING recipient can become ACTIVE or CANCELED.",
                    record.status.as_str()
                ),
            ));
        }
        let target = match status {
            RecipientStatus::Active => RecipientState::Active,
            RecipientStatus::Canceled if record.scope == RecipientScope::Payin => {
                return Err(ApiError::param_error(
                    "Status",
                    "The CANCELED status does not apply to PAYIN recipients.",
                ));
            }
            RecipientStatus::Canceled => RecipientState::Canceled,
        };
        record.change_status(target);
        Ok(record.to_json())
    }
}

/// A recipient id such as `rec_01JRADYFJYPFM10XPQ8VFWW947`.
fn recipient_id<R: rand::Rng + ?Sized>(at: chrono::DateTime<chrono::Utc>, rng: &mut R) -> String {
    format!("rec_{}", ids::ulid(at, rng))
}

/// The user a recipients request is made for: `UserId: USER_NOT_FOUND` if unknown, else
/// whether it is an `OWNER`.
fn user_is_owner(sandbox: &Sandbox, user_id: &str) -> Result<bool, ApiError> {
    let users = sandbox.shared().users();
    let user = users.get(user_id).ok_or_else(|| {
        ApiError::recipient_errors(FieldErrors::from([(
            "UserId".to_owned(),
            "USER_NOT_FOUND".to_owned(),
        )]))
    })?;
    Ok(user.to_json()["UserCategory"] == "OWNER")
}

/// The user check and the body check shared by create and validate.
fn checked(
    sandbox: &Sandbox,
    user_id: &str,
    body: &Map<String, Value>,
) -> Result<NewRecipient, ApiError> {
    let owner = user_is_owner(sandbox, user_id)?;
    let new = validate(body)?;
    if new.scope == RecipientScope::Payout && !owner {
        return Err(ApiError::invalid_action(
            "A PAYOUT recipient can only be created by a user with the UserCategory OWNER",
        ));
    }
    Ok(new)
}

/// `POST /v2.01/{ClientId}/users/{UserId}/recipients`: 201 with the recipient, `PENDING`,
/// and for the `PAYOUT` scope the SCA session link in `PendingUserAction.RedirectUrl`.
pub(crate) async fn recipients_create(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let new = checked(&sandbox, &user_id, &body)?;
    let now = sandbox.clock().now();
    let now_ms = now.timestamp_millis();
    let (id, token) = {
        let mut rng = sandbox.shared().rng();
        let id = recipient_id(now, &mut *rng);
        let token: u128 = rng.random::<u128>() & ((1u128 << 80) - 1);
        (id, format!("sca_{:012x}{token:020x}", now_ms.max(0)))
    };
    let delay_ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let scheduled = match sandbox.knobs().recipient_sca() {
        RecipientSca::Manual => None,
        RecipientSca::ActivateAfter(d) => {
            Some((RecipientState::Active, now_ms.saturating_add(delay_ms(d))))
        }
        RecipientSca::CancelAfter(d) => {
            let status = match new.scope {
                RecipientScope::Payout => RecipientState::Canceled,
                RecipientScope::Payin => RecipientState::Active,
            };
            Some((status, now_ms.saturating_add(delay_ms(d))))
        }
    };
    let record = RecipientRecord {
        id,
        user_id,
        status: RecipientState::Pending,
        scope: new.scope,
        creation_date: now.timestamp(),
        created_at_ms: now_ms,
        display_name: new.display_name,
        combination: new.combination,
        tag: new.tag,
        holder: new.holder,
        transfer: new.transfer,
        redirect_url: (new.scope == RecipientScope::Payout)
            .then(|| format!("https://sca.sandbox.mangopay.com/?token={token}")),
        scheduled,
    };
    let response = record.to_response(StatusCode::CREATED);
    sandbox.shared().recipients().insert(record);
    Ok(response)
}

/// `POST /v2.01/{ClientId}/users/{UserId}/recipients/validate`: 200 without a body when a
/// create with this body would pass, else the errors it would get. Nothing is stored.
pub(crate) async fn recipients_validate(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    checked(&sandbox, &user_id, &body)?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /v2.01/{ClientId}/recipients/{RecipientId}`.
pub(crate) async fn recipients_get(
    State(sandbox): State<Sandbox>,
    Path((_client_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let now_ms = sandbox.clock().now().timestamp_millis();
    let mut recipients = sandbox.shared().recipients();
    recipients
        .settled_one(&id, now_ms)
        .map(|r| r.to_response(StatusCode::OK))
        .ok_or_else(|| ApiError::not_found("Recipient", &id))
}

/// `PUT /v2.01/{ClientId}/recipients/{RecipientId}` with `{"Status": "DEACTIVATED"}`:
/// deactivates an `ACTIVE` recipient for good; any other status is 400 "Invalid State".
pub(crate) async fn recipients_deactivate(
    State(sandbox): State<Sandbox>,
    Path((_client_id, id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    if let Err(code) = one_of(text_of(&body, "Status").as_deref(), &["DEACTIVATED"]) {
        return Err(ApiError::recipient_errors(FieldErrors::from([(
            "Status".to_owned(),
            code.to_owned(),
        )])));
    }
    let now_ms = sandbox.clock().now().timestamp_millis();
    let mut recipients = sandbox.shared().recipients();
    let record = recipients
        .settled_one(&id, now_ms)
        .ok_or_else(|| ApiError::not_found("Recipient", &id))?;
    if record.status != RecipientState::Active {
        return Err(ApiError::recipient_invalid_state());
    }
    record.change_status(RecipientState::Deactivated);
    Ok(record.to_response(StatusCode::OK))
}

/// The query of a request, names lower-cased.
fn query_pairs(uri: &Uri) -> Result<Vec<(String, String)>, ApiError> {
    axum::extract::Query::try_from_uri(uri)
        .map(|q: axum::extract::Query<Vec<(String, String)>>| {
            q.0.into_iter()
                .map(|(name, value)| (name.to_ascii_lowercase(), value))
                .collect()
        })
        .map_err(|err| ApiError::param_error("Query", err.body_text()))
}

fn query_value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// `GET /v2.01/{ClientId}/users/{UserId}/recipients`: the user's recipients of one scope
/// (`RecipientScope=PAYIN`, else `PAYOUT`), as summaries, paginated and sorted like other
/// lists, without those created within the list lag.
pub(crate) async fn recipients_list(
    State(sandbox): State<Sandbox>,
    Path((_client_id, user_id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let query = ListQuery::from_uri(&uri)?;
    let pairs = query_pairs(&uri)?;
    let scope = match query_value(&pairs, "recipientscope") {
        None => RecipientScope::Payout,
        Some(value) => match one_of(Some(value), &SCOPES) {
            Ok("PAYIN") => RecipientScope::Payin,
            Ok(_) => RecipientScope::Payout,
            Err(code) => {
                return Err(ApiError::recipient_errors(FieldErrors::from([(
                    "RecipientScope".to_owned(),
                    code.to_owned(),
                )])));
            }
        },
    };
    user_is_owner(&sandbox, &user_id)?;
    let cutoff = list_cutoff(&sandbox);
    let now_ms = sandbox.clock().now().timestamp_millis();
    let mut recipients = sandbox.shared().recipients();
    let mut items: Vec<&RecipientRecord> = recipients
        .settled(now_ms)
        .iter()
        .filter(|r| r.user_id == user_id && r.scope == scope && r.created_at_ms <= cutoff)
        .collect();
    items.sort_by_key(|r| r.creation_date);
    let summaries: Vec<RecipientSummary<'_>> = items.iter().map(|r| r.summary()).collect();
    Ok(list_page(&query, summaries, &headers, &uri))
}

/// Reads the currency and country of a schema or payout-methods query.
fn currency_and_country(
    pairs: &[(String, String)],
    errors: &mut FieldErrors,
) -> (Option<String>, Option<String>) {
    let currency = match currency(query_value(pairs, "currency")) {
        Ok(currency) => Some(currency),
        Err(code) => {
            errors.insert("Currency".to_owned(), code.to_owned());
            None
        }
    };
    let country = match query_value(pairs, "country") {
        None => None,
        Some(value) => match country(value) {
            Ok(country) => Some(country),
            Err(code) => {
                errors.insert("Country".to_owned(), code.to_owned());
                None
            }
        },
    };
    (currency, country)
}

/// `GET /v2.01/{ClientId}/recipients/schema?PayoutMethodType=…&RecipientType=…&Currency=…&Country=…`
/// (names in any case): what a recipient of that combination needs. Without a `Country`, a
/// local transfer's currency names it when it has a single country.
pub(crate) async fn recipients_schema(uri: Uri) -> Result<Response, ApiError> {
    let pairs = query_pairs(&uri)?;
    let mut errors = FieldErrors::new();
    let method = match one_of(query_value(&pairs, "payoutmethodtype"), &PAYOUT_METHODS) {
        Ok(method) => Some(method),
        Err(code) => {
            errors.insert("PayoutMethodType".to_owned(), code.to_owned());
            None
        }
    };
    let kind = match one_of(query_value(&pairs, "recipienttype"), &RECIPIENT_TYPES) {
        Ok(kind) => Some(kind),
        Err(code) => {
            errors.insert("RecipientType".to_owned(), code.to_owned());
            None
        }
    };
    let (currency, country) = currency_and_country(&pairs, &mut errors);
    let (Some(method), Some(kind), Some(currency)) = (method, kind, currency) else {
        return Err(ApiError::recipient_errors(errors));
    };
    if !errors.is_empty() {
        return Err(ApiError::recipient_errors(errors));
    }
    let local = method == "LocalBankTransfer";
    let country = country.or_else(|| match local_countries(&currency) {
        [only] if local => Some((*only).to_owned()),
        _ => None,
    });
    let Some(country) = country else {
        errors.insert("Country".to_owned(), "REQUIRED".to_owned());
        return Err(ApiError::recipient_errors(errors));
    };
    if local && !local_available(&currency, &country) {
        errors.insert(
            "PayoutMethodType".to_owned(),
            "UNSUPPORTED_PAYOUT_METHOD_FOR_CURRENCY".to_owned(),
        );
        return Err(ApiError::recipient_errors(errors));
    }
    let combination = Combination {
        local,
        individual: kind == "Individual",
        currency,
        country,
    };
    Ok(json_response(StatusCode::OK, &combination.schema()))
}

/// `GET /v2.01/{ClientId}/recipients/payout-methods?Country=…&Currency=…`: the payout
/// methods for that currency and destination country: `LocalBankTransfer` where the
/// currency has a local route to the country, and `InternationalBankTransfer` always.
pub(crate) async fn recipients_payout_methods(uri: Uri) -> Result<Response, ApiError> {
    let pairs = query_pairs(&uri)?;
    let mut errors = FieldErrors::new();
    let (currency, country) = currency_and_country(&pairs, &mut errors);
    if country.is_none() && !errors.contains_key("Country") {
        errors.insert("Country".to_owned(), "REQUIRED".to_owned());
    }
    let (Some(currency), Some(country)) = (currency, country) else {
        return Err(ApiError::recipient_errors(errors));
    };
    let mut methods = Vec::new();
    if local_available(&currency, &country) {
        methods.push("LocalBankTransfer");
    }
    methods.push("InternationalBankTransfer");
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "AvailablePayoutMethods": methods }),
    ))
}

/// `POST /_sandbox/recipients/{RecipientId}/status` with `{"Status": "ACTIVE"}` or
/// `{"Status": "CANCELED"}`: settles a `PENDING` recipient as its user's SCA session would
/// (a control request, not Mangopay's API). Answers the recipient; 400 from any other
/// status, or for `CANCELED` on a `PAYIN` recipient; 404 for an unknown id.
pub(crate) async fn control_recipient_status(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let status = match text_of(&body, "Status")
        .map(|s| s.to_ascii_uppercase())
        .as_deref()
    {
        Some("ACTIVE") => RecipientStatus::Active,
        Some("CANCELED") => RecipientStatus::Canceled,
        _ => {
            return Err(ApiError::param_error(
                "Status",
                "The Status field must be ACTIVE or CANCELED.",
            ));
        }
    };
    let recipient = sandbox.shared().set_recipient_status(&id, status)?;
    Ok(json_response(StatusCode::OK, &recipient))
}

/// Every recipient, oldest first, as `GET /recipients/{Id}` answers it.
pub(crate) fn all_json(shared: &Shared) -> Vec<Value> {
    let now_ms = shared.clock.now().timestamp_millis();
    shared
        .recipients()
        .settled(now_ms)
        .iter()
        .map(RecipientRecord::to_json)
        .collect()
}

/// One recipient as `GET /recipients/{Id}` answers it.
pub(crate) fn one_json(shared: &Shared, id: &str) -> Option<Value> {
    let now_ms = shared.clock.now().timestamp_millis();
    shared
        .recipients()
        .settled_one(id, now_ms)
        .map(|r| r.to_json())
}
