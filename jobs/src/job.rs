//! The one job type every queue holds: a named operation on one row.

use serde::{Deserialize, Serialize};

/// `create_mangopay_user(id)`: creates the user (natural or legal) at Mangopay.
pub const CREATE_MANGOPAY_USER: &str = "create_mangopay_user";
/// `update_mangopay_user(id)`: sends the user's fields to Mangopay.
pub const UPDATE_MANGOPAY_USER: &str = "update_mangopay_user";

/// `create_mangopay_wallet(id)`: creates the wallet at Mangopay.
pub const CREATE_MANGOPAY_WALLET: &str = "create_mangopay_wallet";
/// `update_mangopay_wallet(id)`: sends the wallet's description and tag to Mangopay.
pub const UPDATE_MANGOPAY_WALLET: &str = "update_mangopay_wallet";
/// `create_mangopay_bank_account(id)`: creates the bank account at Mangopay.
pub const CREATE_MANGOPAY_BANK_ACCOUNT: &str = "create_mangopay_bank_account";
/// `create_mangopay_recipient(id)`: creates the recipient at Mangopay, then plans its first
/// status check while it waits for its user's SCA.
pub const CREATE_MANGOPAY_RECIPIENT: &str = "create_mangopay_recipient";
/// `create_mangopay_transfer(id)`: creates the transfer at Mangopay.
pub const CREATE_MANGOPAY_TRANSFER: &str = "create_mangopay_transfer";
/// `create_mangopay_pay_out(id)`: creates the pay-out at Mangopay, then plans its first
/// status check.
pub const CREATE_MANGOPAY_PAY_OUT: &str = "create_mangopay_pay_out";
/// `update_mangopay_pay_out(id)`: checks a pay-out still `CREATED` (as django-mangopay's task
/// of that name did), and plans the next check while it stays so.
pub const UPDATE_MANGOPAY_PAY_OUT: &str = "update_mangopay_pay_out";
/// `update_mangopay_recipient(id)`: checks a recipient still `PENDING` its user's SCA, and
/// plans the next check while it stays so.
pub const UPDATE_MANGOPAY_RECIPIENT: &str = "update_mangopay_recipient";
/// `create_mangopay_document_and_pages_and_ask_for_validation(id)` (django-mangopay's name):
/// creates the KYC document at Mangopay, uploads each of its pages not uploaded yet (each at
/// most once, resuming where an earlier run stopped), and asks for its validation.
pub const CREATE_MANGOPAY_DOCUMENT_AND_PAGES_AND_ASK_FOR_VALIDATION: &str =
    "create_mangopay_document_and_pages_and_ask_for_validation";
/// `update_mangopay_document_status(id)`: reads the status of a KYC document awaiting
/// validation (`VALIDATION_ASKED`); a document in any other state is left alone. The KYC
/// sweep queues it for every document awaiting validation.
pub const UPDATE_MANGOPAY_DOCUMENT_STATUS: &str = "update_mangopay_document_status";
/// `create_mangopay_ubo_declaration_and_ubos_and_ask_for_validation(id)`: creates the UBO
/// declaration at Mangopay, creates each of its UBOs not created yet (each at most once,
/// resuming where an earlier run stopped), sends the UBO changes due, and asks for its
/// validation.
pub const CREATE_MANGOPAY_UBO_DECLARATION_AND_UBOS_AND_ASK_FOR_VALIDATION: &str =
    "create_mangopay_ubo_declaration_and_ubos_and_ask_for_validation";
/// `update_mangopay_ubo_declaration_status(id)`: reads the status of a UBO declaration
/// awaiting validation (`VALIDATION_ASKED`); one in any other state is left alone. The KYC
/// sweep queues it for every declaration awaiting validation.
pub const UPDATE_MANGOPAY_UBO_DECLARATION_STATUS: &str = "update_mangopay_ubo_declaration_status";

/// `create_mangopay_card_registration(id)`: creates the card registration at Mangopay (what
/// the browser needs to tokenize the card is then on the row).
pub const CREATE_MANGOPAY_CARD_REGISTRATION: &str = "create_mangopay_card_registration";
/// `create_mangopay_pay_in(id)`: creates the pay-in at Mangopay, then plans its first status
/// check while it waits (3-D Secure, the payment page, a bank wire).
pub const CREATE_MANGOPAY_PAY_IN: &str = "create_mangopay_pay_in";
/// `update_mangopay_pay_in(id)`: checks a pay-in still `CREATED`, and plans the next check on
/// a backoff with a cap ([`Polling::pay_ins`](diesel_mangopay::Polling::pay_ins)) while it
/// stays so.
pub const UPDATE_MANGOPAY_PAY_IN: &str = "update_mangopay_pay_in";
/// `create_mangopay_refund(id)`: creates the refund at Mangopay.
pub const CREATE_MANGOPAY_REFUND: &str = "create_mangopay_refund";

/// A job: the name of a registered operation and the row id it works on. Rows are loaded when
/// the job runs, so it always works on the latest data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// The operation, such as [`CREATE_MANGOPAY_USER`].
    pub name: String,
    /// The local id of the row.
    pub id: i64,
    /// Which attempt this is, from 0; counts toward the retry budget.
    #[serde(default)]
    pub attempt: u32,
}

impl Job {
    /// A first attempt of `name` on row `id`.
    pub fn new(name: impl Into<String>, id: i64) -> Job {
        Job {
            name: name.into(),
            id,
            attempt: 0,
        }
    }

    /// `create_mangopay_user(id)`.
    pub fn create_mangopay_user(id: i64) -> Job {
        Job::new(CREATE_MANGOPAY_USER, id)
    }

    /// `update_mangopay_user(id)`.
    pub fn update_mangopay_user(id: i64) -> Job {
        Job::new(UPDATE_MANGOPAY_USER, id)
    }
}
