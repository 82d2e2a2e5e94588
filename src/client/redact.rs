//! What request and response logging may show: secrets and card data are replaced before a
//! body reaches `tracing`, and so is personal data unless the application chose to log it.

use serde_json::Value;

/// JSON keys whose values are never logged (compared without regard to case).
const SECRET_KEYS: &[&str] = &[
    "access_token",
    "authorization",
    "apikey",
    "api_key",
    "passphrase",
    "password",
    "accesskey",
    "preregistrationdata",
    "registrationdata",
    "cardnumber",
    "cardcvx",
    "cvx",
    "cardexpirationdate",
    "file",
];

/// JSON keys holding personal data (compared without regard to case): names, e-mails,
/// birthdays and birthplaces, addresses and their parts, phone numbers, bank account
/// identifiers and owners, card aliases. A BIC names a bank, not a person, and stays.
const PERSONAL_KEYS: &[&str] = &[
    // Names.
    "firstname",
    "lastname",
    "name",
    "ownername",
    // E-mails.
    "email",
    // Birthdays.
    "birthday",
    "birthplace",
    // Addresses, whole and in parts.
    "address",
    "headquartersaddress",
    "owneraddress",
    "addressline1",
    "addressline2",
    "city",
    "region",
    "postalcode",
    // Phone numbers.
    "phone",
    "phonenumber",
    "phonenumbercountry",
    // Bank accounts.
    "iban",
    "accountnumber",
    "sortcode",
    "aba",
    "branchcode",
    "institutionnumber",
    // Cards.
    "alias",
];

/// Keys starting with this (without regard to case) describe the legal representative of a
/// legal user, a person: all of them are personal data.
const PERSONAL_PREFIX: &str = "legalrepresentative";

/// Marker written in place of a secret.
pub const REDACTED: &str = "[redacted]";

/// Marker written in place of personal data.
pub const MASKED: &str = "[masked]";

/// Whether a log shows personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PersonalData {
    /// Replace every personal value with [`MASKED`] (the default).
    #[default]
    Mask,
    /// Show personal values as they are; secrets and card data are still redacted.
    Show,
}

fn is_secret(key: &str) -> bool {
    SECRET_KEYS.iter().any(|s| s.eq_ignore_ascii_case(key))
}

fn is_personal(key: &str) -> bool {
    PERSONAL_KEYS.iter().any(|s| s.eq_ignore_ascii_case(key))
        || key
            .get(..PERSONAL_PREFIX.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(PERSONAL_PREFIX))
}

/// A copy of `value` with every secret or card-data value replaced by [`REDACTED`] and, with
/// [`PersonalData::Mask`], every personal value by [`MASKED`], at any depth.
///
/// A masked object keeps its keys and has each of its leaves masked (secrets among them stay
/// [`REDACTED`]); a masked `null` stays `null`, as an absent value tells nothing.
pub fn json(value: &Value, personal_data: PersonalData) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_secret(k) {
                        Value::String(REDACTED.into())
                    } else if personal_data == PersonalData::Mask && is_personal(k) {
                        mask(v)
                    } else {
                        json(v, personal_data)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| json(v, personal_data)).collect()),
        other => other.clone(),
    }
}

/// Every leaf of `value` masked, secrets redacted.
fn mask(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_secret(k) {
                        Value::String(REDACTED.into())
                    } else {
                        mask(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(mask).collect()),
        Value::Null => Value::Null,
        _ => Value::String(MASKED.into()),
    }
}

/// A body for the log: redacted (and masked, with [`PersonalData::Mask`]) JSON, or a note on
/// its size when it is not JSON.
pub fn body(bytes: &[u8], personal_data: PersonalData) -> String {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => json(&v, personal_data).to_string(),
        Err(_) if bytes.is_empty() => String::new(),
        Err(_) => format!("<{} bytes, not JSON>", bytes.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_and_card_data_are_hidden_at_any_depth() {
        let v = json!({"access_token": "s3cr3t-t0ken", "FirstName": "Alex",
            "nested": [{"CardNumber": "4970107111111119", "Cvx": "123", "AccessKey": "k"}]});
        for personal_data in [PersonalData::Mask, PersonalData::Show] {
            let shown = json(&v, personal_data).to_string();
            for secret in ["s3cr3t-t0ken", "4970107111111119", "\"123\"", "\"k\""] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
            assert_eq!(body(b"not json", personal_data), "<8 bytes, not JSON>");
            assert!(!body(br#"{"access_token":"abc"}"#, personal_data).contains("abc"));
        }
        assert!(json(&v, PersonalData::Show).to_string().contains("Alex"));
    }

    /// A natural user, a legal user and bank accounts as Mangopay sends them.
    fn personal() -> Value {
        json!({
            "Id": "user_m_01", "PersonType": "NATURAL", "FirstName": "Alex", "LASTNAME": "Smith",
            "Email": "alex.smith@example.com", "Birthday": 651974400, "Nationality": "FR",
            "Address": {"AddressLine1": "3 rue de la Cité", "AddressLine2": null, "City": "Paris",
                "Region": "Île-de-France", "PostalCode": "75004", "Country": "FR"},
            "PhoneNumber": "+33612345678",
            "legal": [{
                "Name": "Smith Consulting", "HeadquartersAddress": {"AddressLine1": "34 rue des Entreprises"},
                "LegalRepresentativeFirstName": "Robin", "LegalRepresentativeEmail": "robin@example.com",
                "LegalRepresentativeBirthday": 188265600,
                "LegalRepresentativeAddress": {"City": "Lyon"},
                "LegalRepresentative": {"PhoneNumber": "+33700000000", "Password": "hunter2"}
            }],
            "accounts": [
                {"Type": "IBAN", "OwnerName": "Alex Smith", "OwnerAddress": {"AddressLine1": "3 rue de la Cité"},
                 "IBAN": "FR7630004000031234567890143", "BIC": "BNPAFRPP"},
                {"Type": "GB", "AccountNumber": "11696419", "SortCode": "010039"},
                {"Type": "US", "AccountNumber": "11696420", "ABA": "071000288"},
                {"Type": "CA", "BranchCode": "00152", "InstitutionNumber": "614", "BankName": "The Big Bank"}
            ],
            "card": {"Alias": "497010XXXXXX1119", "CardProvider": "VISA"}
        })
    }

    const PERSONAL_VALUES: &[&str] = &[
        "Alex",
        "Smith",
        "alex.smith@example.com",
        "651974400",
        "rue de la Cité",
        "Paris",
        "Île-de-France",
        "75004",
        "+33612345678",
        "Robin",
        "robin@example.com",
        "188265600",
        "Lyon",
        "+33700000000",
        "rue des Entreprises",
        "FR7630004000031234567890143",
        "11696419",
        "11696420",
        "010039",
        "071000288",
        "00152",
        "\"614\"",
        "497010XXXXXX1119",
    ];

    #[test]
    fn personal_data_is_masked_unless_shown() {
        let masked = json(&personal(), PersonalData::Mask);
        let text = masked.to_string();
        for value in PERSONAL_VALUES {
            assert!(!text.contains(value), "{value} in {text}");
        }
        assert!(!text.contains("hunter2"));
        // Keys stay, so the log still says what was sent; leaves become the marker.
        assert_eq!(masked["FirstName"], MASKED);
        assert_eq!(masked["LASTNAME"], MASKED);
        assert_eq!(masked["Birthday"], MASKED);
        assert_eq!(masked["Address"]["City"], MASKED);
        assert_eq!(masked["Address"]["Country"], MASKED);
        assert_eq!(masked["Address"]["AddressLine2"], Value::Null);
        assert_eq!(
            masked["legal"][0]["LegalRepresentative"]["Password"],
            REDACTED
        );
        // What identifies no one is kept.
        for kept in [
            "user_m_01",
            "NATURAL",
            "BNPAFRPP",
            "The Big Bank",
            "VISA",
            "\"Nationality\":\"FR\"",
        ] {
            assert!(text.contains(kept), "{kept} missing from {text}");
        }

        let shown = json(&personal(), PersonalData::Show).to_string();
        for value in PERSONAL_VALUES {
            assert!(shown.contains(value), "{value} missing from {shown}");
        }
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains(MASKED));

        let bytes = serde_json::to_vec(&personal()).unwrap();
        assert_eq!(body(&bytes, PersonalData::Mask), text);
        assert_eq!(body(&bytes, PersonalData::Show), shown);
    }
}
