//! Object ids in Mangopay's current style: a prefix and a ULID (Crockford
//! base32 of a 48-bit millisecond timestamp followed by 80 random bits).

use chrono::{DateTime, Utc};

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A 26-character ULID for the instant `at`.
pub(crate) fn ulid(at: DateTime<Utc>) -> String {
    let millis = u128::from(u64::try_from(at.timestamp_millis()).unwrap_or(0) & ((1 << 48) - 1));
    let random = u128::from_be_bytes(uuid::Uuid::new_v4().into_bytes());
    // 80 of the v4 UUID's random bits: the 62 below its variant bits and 18
    // above its version nibble.
    let random = (random & ((1 << 62) - 1)) | ((random >> 80) & ((1 << 18) - 1)) << 62;
    let value = millis << 80 | random;
    (0..26)
        .rev()
        .map(|i| char::from(CROCKFORD[((value >> (i * 5)) & 0x1f) as usize]))
        .collect()
}

/// A user id such as `user_m_01JHX332D775R1784M4SK4SFMS`.
pub(crate) fn user_id(at: DateTime<Utc>) -> String {
    format!("user_m_{}", ulid(at))
}
