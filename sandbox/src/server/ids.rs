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
