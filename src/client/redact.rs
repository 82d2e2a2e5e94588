//! What request and response logging may show: secrets and card data are replaced before a
//! body reaches `tracing`.

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

/// Marker written in place of a hidden value.
pub const REDACTED: &str = "[redacted]";

/// A copy of `value` with every secret or card-data value replaced by [`REDACTED`].
pub fn json(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let hidden = SECRET_KEYS.iter().any(|s| s.eq_ignore_ascii_case(k));
                    let v = if hidden {
                        Value::String(REDACTED.into())
                    } else {
                        json(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(json).collect()),
        other => other.clone(),
    }
}

/// A body for the log: redacted JSON, or a note on its size when it is not JSON.
pub fn body(bytes: &[u8]) -> String {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => json(&v).to_string(),
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
        let shown = json(&v).to_string();
        for secret in ["s3cr3t-t0ken", "4970107111111119", "\"123\"", "\"k\""] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("Alex"));
        assert_eq!(body(b"not json"), "<8 bytes, not JSON>");
        assert!(!body(br#"{"access_token":"abc"}"#).contains("abc"));
    }
}
