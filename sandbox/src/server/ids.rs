//! Object ids in Mangopay's current style: a prefix and a ULID (a 48-bit millisecond
//! timestamp from the sandbox clock, then 80 bits from the sandbox's seeded generator).

use chrono::{DateTime, Utc};
use rand::{Rng, RngExt as _};
use ulid::Ulid;

/// A 26-character ULID for the instant `at` (instants before 1970 count as 1970).
pub(crate) fn ulid<R: Rng + ?Sized>(at: DateTime<Utc>, rng: &mut R) -> Ulid {
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    Ulid::from_parts(millis, rng.random::<u128>())
}

/// A user id such as `user_m_01JHX332D775R1784M4SK4SFMS`.
pub(crate) fn user_id<R: Rng + ?Sized>(at: DateTime<Utc>, rng: &mut R) -> String {
    format!("user_m_{}", ulid(at, rng))
}

/// Letters and digits of URL-safe base64, for opaque keys and tokens.
pub(crate) const URL_SAFE: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Upper-case letters and digits, for references people type.
pub(crate) const UPPER_ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// `len` characters drawn from `alphabet`.
pub(crate) fn random_text<R: Rng + ?Sized>(rng: &mut R, alphabet: &[u8], len: usize) -> String {
    (0..len)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}
