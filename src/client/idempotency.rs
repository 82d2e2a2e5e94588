//! Idempotency keys: what Mangopay accepts, and how this crate makes them.

use std::fmt;
use std::str::FromStr;

/// A value for the `Idempotency-Key` header: 16 to 36 ASCII letters, digits or dashes.
///
/// Mangopay blocks a second `POST` with the same key for 24 hours (HTTP 409) and keeps the
/// first answer, which `GET /responses/{key}` returns.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

/// A string that Mangopay would not accept as an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("idempotency key `{0}` must be 16 to 36 ASCII letters, digits or dashes")]
pub struct InvalidIdempotencyKey(pub String);

impl IdempotencyKey {
    /// Checks `key` against Mangopay's rule.
    pub fn new(key: impl Into<String>) -> Result<Self, InvalidIdempotencyKey> {
        let key = key.into();
        let ok = (16..=36).contains(&key.len())
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if ok {
            Ok(Self(key))
        } else {
            Err(InvalidIdempotencyKey(key))
        }
    }

    /// A fresh random key (a UUID v4, 36 characters, as Mangopay recommends).
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().hyphenated().to_string())
    }

    /// The key as sent in the header.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for IdempotencyKey {
    type Err = InvalidIdempotencyKey;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_mangopays_rule() {
        let k = IdempotencyKey::generate();
        assert_eq!(k.as_str().len(), 36);
        assert!(IdempotencyKey::new(k.as_str()).is_ok());
        assert_ne!(IdempotencyKey::generate(), k);
        assert!(IdempotencyKey::new("1700000000abcdefg").is_ok());
        for bad in [
            "short",
            "x".repeat(37).as_str(),
            "has spaces in it ok",
            "ünicode-0123456789",
        ] {
            assert!(IdempotencyKey::new(bad).is_err(), "{bad}");
        }
    }
}
