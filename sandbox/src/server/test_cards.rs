//! Test card numbers, as Mangopay's sandbox documents them, and what a pay-in made with each
//! card does in this sandbox. Tokenize them at a card registration's `CardRegistrationURL`
//! with any expiry date (`MMYY`) not in the past by the sandbox clock and any 3 or 4 digit
//! CVC.
//!
//! | number | direct card pay-in |
//! |---|---|
//! | [`FRICTIONLESS`], [`FRICTIONLESS_2`] | `SUCCEEDED` at once, without 3-D Secure, unless `SecureMode` is `FORCE` |
//! | [`CHALLENGE`] | `CREATED`, 3-D Secure required (`SecureModeNeeded: true`), whatever the `SecureMode` |
//! | [`DO_NOT_HONOR`] | `FAILED` at once: `101101` "Transaction refused by the bank (Do not honor)" |
//! | [`THREE_DS_NOT_AVAILABLE`] | `CREATED`, 3-D Secure required; completing it fails: `101399` "Secure mode: 3DSecure authentication is not available" |
//! | any other number passing the Luhn check | like [`FRICTIONLESS`] |
//!
//! A pay-in waiting for 3-D Secure (`CREATED`) ends with the control request
//! `POST /_sandbox/payins/{PayInId}/settle`, [`crate::Sandbox::settle_payin`] or
//! [`crate::Knobs::set_payin_settle_after`]. With [`THREE_DS_NOT_AVAILABLE`] a plain
//! `{"Status": "SUCCEEDED"}` still fails with `101399`; `{"Status": "FAILED", ...}` fails
//! with the result it names.

/// A Visa card whose pay-ins succeed without 3-D Secure (unless `SecureMode` is `FORCE`).
pub const FRICTIONLESS: &str = "4970107111111119";

/// Another Visa card whose pay-ins succeed without 3-D Secure (unless `SecureMode` is
/// `FORCE`).
pub const FRICTIONLESS_2: &str = "4970105181818183";

/// A card whose pay-ins always require 3-D Secure (a challenge): they stay `CREATED` until the
/// 3-D Secure step is settled.
pub const CHALLENGE: &str = "4970105191923460";

/// A card the bank refuses: its pay-ins are `FAILED` at once with `101101` "Transaction
/// refused by the bank (Do not honor)", and the card becomes `INVALID`.
pub const DO_NOT_HONOR: &str = "4970101122334406";

/// A card refused at 3-D Secure: its pay-ins require 3-D Secure, and completing it fails with
/// `101399` "Secure mode: 3DSecure authentication is not available" (unless the control
/// request settles the pay-in `FAILED` with another result).
pub const THREE_DS_NOT_AVAILABLE: &str = "4970101122334422";

/// The result of a pay-in with [`DO_NOT_HONOR`].
pub(crate) const DO_NOT_HONOR_RESULT: (&str, &str) =
    ("101101", "Transaction refused by the bank (Do not honor)");

/// The result of completing 3-D Secure with [`THREE_DS_NOT_AVAILABLE`].
pub(crate) const THREE_DS_NOT_AVAILABLE_RESULT: (&str, &str) = (
    "101399",
    "Secure mode: 3DSecure authentication is not available",
);

/// What pay-ins made with a card do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Behaviour {
    /// Succeed at once, unless 3-D Secure is forced.
    Frictionless,
    /// Always require 3-D Secure, then succeed.
    Challenge,
    /// Refused by the bank at once.
    DoNotHonor,
    /// Always require 3-D Secure, which then fails.
    ThreeDsNotAvailable,
}

impl Behaviour {
    /// The behaviour of the card `number` (digits only).
    pub(crate) fn of(number: &str) -> Behaviour {
        match number {
            CHALLENGE => Behaviour::Challenge,
            DO_NOT_HONOR => Behaviour::DoNotHonor,
            THREE_DS_NOT_AVAILABLE => Behaviour::ThreeDsNotAvailable,
            _ => Behaviour::Frictionless,
        }
    }
}
