//! Exact money: an integer number of minor units and an ISO 4217 currency, as Mangopay sends
//! it (`{"Currency": "EUR", "Amount": 1260}` is EUR 12.60). Never a float.

use std::fmt;

use serde_json::{Value, json};

use crate::validate::{CurrencyCode, FieldErrorKind};

/// The currencies Mangopay supports across its features (API reference, "Data formats").
pub const SUPPORTED_CURRENCIES: [&str; 15] = [
    "AED", "AUD", "CAD", "CHF", "CZK", "DKK", "EUR", "GBP", "HKD", "JPY", "NOK", "PLN", "SEK",
    "USD", "ZAR",
];

/// `currency` is one Mangopay supports, or the error that says it is not.
pub(crate) fn supported(currency: CurrencyCode) -> Result<(), FieldErrorKind> {
    if SUPPORTED_CURRENCIES.contains(&currency.as_str()) {
        Ok(())
    } else {
        Err(FieldErrorKind::NotAllowed(format!(
            "{currency} is not a currency Mangopay supports ({})",
            SUPPORTED_CURRENCIES.join(", ")
        )))
    }
}

/// An amount of money in the currency's smallest unit (cents for EUR, yen for JPY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    /// The amount in minor units.
    pub amount: i64,
    /// The currency.
    pub currency: CurrencyCode,
}

impl Money {
    /// `amount` minor units of `currency`.
    pub fn new(amount: i64, currency: CurrencyCode) -> Money {
        Money { amount, currency }
    }

    /// Zero in `currency`.
    pub fn zero(currency: CurrencyCode) -> Money {
        Money::new(0, currency)
    }

    /// `{"Currency": ..., "Amount": ...}`.
    pub(crate) fn to_api(self) -> Value {
        json!({ "Currency": self.currency.as_str(), "Amount": self.amount })
    }

    /// Reads `{"Currency": ..., "Amount": ...}` at `key`; `None` if absent or malformed.
    pub(crate) fn from_api(obj: &Value, key: &str) -> Option<Money> {
        let m = obj.get(key)?;
        let amount = m.get("Amount")?.as_i64()?;
        let currency = CurrencyCode::from_api(m.get("Currency")?.as_str()?)?;
        Some(Money { amount, currency })
    }
}

impl fmt::Display for Money {
    /// `EUR 12.60`, `JPY 1200`, `EUR -0.05`: the amount with the currency's ISO 4217 minor
    /// digits (two when the currency is not in the table), computed on integers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = u32::from(self.currency.minor_digits().unwrap_or(2));
        let sign = if self.amount < 0 { "-" } else { "" };
        let abs = self.amount.unsigned_abs();
        if digits == 0 {
            return write!(f, "{} {sign}{abs}", self.currency);
        }
        let unit = 10u64.pow(digits);
        write!(
            f,
            "{} {sign}{}.{:0width$}",
            self.currency,
            abs / unit,
            abs % unit,
            width = digits as usize
        )
    }
}

/// A strictly positive amount.
pub(crate) fn positive(amount: i64) -> Result<(), FieldErrorKind> {
    if amount > 0 {
        Ok(())
    } else {
        Err(FieldErrorKind::NotAllowed(format!(
            "must be more than zero, not {amount}"
        )))
    }
}

/// Fees: not negative, and below the debited funds (Mangopay refuses a movement that credits
/// nothing: "CreditedFunds must be more than 0 (DebitedFunds can not equal Fees)").
pub(crate) fn fees(fees: i64, debited: i64) -> Result<(), FieldErrorKind> {
    if fees < 0 {
        Err(FieldErrorKind::NotAllowed(format!(
            "must not be negative, not {fees}"
        )))
    } else if fees >= debited {
        Err(FieldErrorKind::NotAllowed(format!(
            "must be below the debited funds ({fees} >= {debited}): the credited funds would be \
             nothing"
        )))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(code: &str) -> CurrencyCode {
        code.parse().unwrap()
    }

    #[test]
    fn money_prints_exactly() {
        assert_eq!(Money::new(1260, cur("EUR")).to_string(), "EUR 12.60");
        assert_eq!(Money::new(-5, cur("EUR")).to_string(), "EUR -0.05");
        assert_eq!(Money::new(1200, cur("JPY")).to_string(), "JPY 1200");
        assert_eq!(Money::new(1234, cur("KWD")).to_string(), "KWD 1.234");
        assert_eq!(
            Money::new(i64::MIN, cur("EUR")).to_string(),
            "EUR -92233720368547758.08"
        );
    }

    #[test]
    fn money_round_trips_through_the_api_shape() {
        let m = Money::new(1260, cur("GBP"));
        let v = json!({ "DebitedFunds": m.to_api() });
        assert_eq!(Money::from_api(&v, "DebitedFunds"), Some(m));
        assert_eq!(Money::from_api(&v, "Fees"), None);
        let bad = json!({ "Fees": { "Currency": "EUR", "Amount": 1.5 } });
        assert_eq!(Money::from_api(&bad, "Fees"), None);
    }

    #[test]
    fn amounts_and_fees_are_checked() {
        assert!(positive(1).is_ok());
        assert!(positive(0).is_err());
        assert!(positive(-1).is_err());
        assert!(fees(0, 10).is_ok());
        assert!(fees(9, 10).is_ok());
        assert!(fees(10, 10).is_err());
        assert!(fees(11, 10).is_err());
        assert!(fees(-1, 10).is_err());
    }
}
