//! A stateful emulator of the Mangopay REST API v2.01, speaking the real wire
//! protocol, for testing offline: in-process from Rust tests, or standalone
//! (`diesel-mangopay sandbox`) for the official SDKs.
//!
//! The emulator is behind the `server` feature (on by default). Without it the crate only
//! holds the rules Mangopay publishes for its fields ([`EMAIL_PATTERN`]), which clients check
//! before sending: one definition for the emulator and the client.
//!
//! # What is emulated
//!
//! - OAuth 2.0: `POST /v2.01/oauth/token` with Basic credentials, stateless bearer tokens
//!   (an HMAC-SHA256 of the client id and expiry, keyed by the API key) that survive a
//!   restart with the same credentials and expire by the sandbox clock.
//! - Natural and legal users: create, partial update, view (generic and typed) and list
//!   (paginated, sorted), with Mangopay's field rules and error reports.
//! - Money that really moves, in integer minor units: wallets (create, view, update, list a
//!   user's); transfers (a debit the wallet cannot cover is created `FAILED` with
//!   `001001`, moving nothing); bank-wire pay-outs that debit at once and later succeed or
//!   fail (their funds back in the wallet), instant pay-outs and their eligibility check;
//!   fees kept in the client's Fees Wallet per currency ([`Sandbox::fees_balance`]); and the
//!   transaction lists of a wallet or a user, filtered, sorted and paginated.
//! - Cards: card registrations (create, view, update with the tokenizer's `RegistrationData`,
//!   or the card kit's unauthenticated form `POST /CardRegistrations/{Id}`), the tokenization
//!   server itself (`POST /_sandbox/tokenize/{CardRegistrationId}`, the `CardRegistrationURL`
//!   every registration hands out: form in, `data=<token>` or `errorCode=<code>` out, no
//!   authentication, the card number and CVC kept nowhere), and cards (view, list a user's,
//!   deactivate for good, `Validity` set by their first pay-in) ([`Sandbox::cards`],
//!   [`Sandbox::card_registrations`]). The [`test_cards`] decide what pay-ins do.
//! - Pay-ins: direct card pay-ins (`SUCCEEDED`, `FAILED` with the bank's result, or `CREATED`
//!   waiting for 3-D Secure with a `SecureModeRedirectURL`), web card pay-ins (`CREATED` with a
//!   `RedirectURL`), bank wires (`CREATED` with Mangopay's bank account and a `WireReference`),
//!   viewed generically and by type ([`Sandbox::payins`], [`Sandbox::payin`]); and their
//!   refunds, full or partial, `FAILED` with `001001` when the wallet cannot cover them
//!   ([`Sandbox::refunds`]). Pay-ins and refunds move money like the other transactions and
//!   show in the transaction lists.
//! - Legacy bank accounts of the five types (`IBAN` with its check digits and the country's
//!   format, `GB`, `US`, `CA`, `OTHER`): create, view, list (paginated, sorted, `Active`
//!   filter) and deactivate for good ([`Sandbox::bank_accounts`], [`Sandbox::bank_account`]).
//! - Recipients: create (201, `PENDING`, with an SCA link in `PendingUserAction` for the
//!   `PAYOUT` scope, which only `OWNER` users get), validate, view, list one scope,
//!   deactivate an `ACTIVE` one, the schema of each supported payout method, recipient type,
//!   currency and country (the same schema validates the bodies, with the Recipients
//!   endpoints' `Errors` codes), and the payout methods of a currency and country
//!   ([`Sandbox::recipients`], [`Sandbox::recipient`]). A pay-out goes only to an active
//!   bank account or an `ACTIVE` `PAYOUT` recipient of its author.
//! - KYC documents: create (the types each kind of user may hold), pages checked as the
//!   reference's file constraints say (base64; PDF, JPEG or PNG by their magic bytes; 32 KiB
//!   at least for an identity proof, 1 KiB for the other types; 10 MiB of base64 at most; 5
//!   pages), kept as size and SHA-256 only ([`Sandbox::kyc_pages`]), submit, view, list
//!   (per user and client-wide, filtered, sorted, paginated), and their review's outcome
//!   (`VALIDATED`, or `REFUSED` with its `RefusedReasonType` and `Flags`). UBO declarations of
//!   `BUSINESS` and `PARTNERSHIP` owners: create, add and update up to 15 UBOs, submit, view,
//!   list, and their outcome (`VALIDATED`, `INCOMPLETE`, `REFUSED`). Validated documents fill
//!   the user's `ProofOf…` Ids, and a user whose documents (and declaration) cover its type's
//!   requirements becomes `KYCLevel` `REGULAR`.
//! - Idempotency keys: a key (16 to 36 characters of `[A-Za-z0-9-]`) reused within 24 hours
//!   gets 409 `idempotent_creation_conflict` whatever the first call answered, and
//!   `GET /v2.01/{ClientId}/responses/{key}` replays that first answer.
//! - Rate limiting over Mangopay's four sliding windows, with the `X-RateLimit*` headers
//!   on every answer and 429 `rate_limit` beyond them.
//! - Mangopay's path tolerance (`//`, a trailing `/`, the case of the fixed path words);
//!   routes it does not emulate answer 501.
//!
//! # Steering it
//!
//! Tests steer a running sandbox through a controllable [`Clock`], the request log
//! ([`Sandbox::request_log`], each [`RequestRecord`] naming the fault that shaped its
//! answer) and the [`Knobs`], each setter usable at any time:
//!
//! - timing: [`Knobs::set_latency`] (after the work), [`Knobs::set_handler_delay`] (after
//!   the key reservation, before the work);
//! - failures before the work: [`Knobs::fail_next`], [`Knobs::set_error_rate`] (draws from
//!   the seeded generator, [`SandboxConfig::seed`]); on a keyed POST the 500 is stored
//!   against the key;
//! - failures after the work: [`Knobs::fail_next_after_work`] (the object exists, the answer
//!   and its replay are a 500);
//! - lost answers: [`Knobs::drop_next_answers`] with [`AnswerLoss::Close`] (the connection
//!   closes without a status line) or [`AnswerLoss::Hang`] (no answer until the client gives
//!   up); the real answer is stored against the key;
//! - `GET /responses/{key}`: [`Knobs::set_missing_response`] ([`MissingResponse`]) and
//!   [`Knobs::fail_response_lookups`] ([`LookupFailure`]);
//! - eventual consistency of lists: [`Knobs::set_list_lag`];
//! - the gateway: [`Knobs::set_unavailable`] and [`Knobs::unavailable_for`] (503 to
//!   everything), [`Knobs::redirect_next`] (307);
//! - rate limiting: [`Knobs::set_rate_limit`], [`Knobs::set_rate_limited_keys_blocked`];
//! - how updates read `null` and `""`: [`Knobs::set_put_null`] ([`PutNull`]),
//!   [`Knobs::set_put_empty_string`] ([`PutEmptyString`]);
//! - Mangopay's country restrictions: [`Knobs::set_blocked_countries`];
//! - pay-outs: [`Knobs::set_payout_settle_after`] and [`Knobs::set_payout_outcome`]
//!   ([`PayoutOutcome`]) settle them by the sandbox clock, [`Knobs::set_instant_payouts`]
//!   ([`InstantPayouts`]) decides whether instant ones go instantly or fall back;
//! - pay-ins waiting for 3-D Secure, a payment page or their funds:
//!   [`Knobs::set_payin_settle_after`] and [`Knobs::set_payin_outcome`] ([`PayInOutcome`])
//!   settle them by the sandbox clock (by default they wait for a control request);
//! - the transaction lists' `AfterDate` and `BeforeDate`: [`Knobs::set_date_filter_bounds`]
//!   ([`DateFilterBounds`]);
//! - what becomes of a new recipient, whose SCA the sandbox cannot see:
//!   [`Knobs::set_recipient_sca`] ([`RecipientSca`]: `PENDING` until a control request, the
//!   default, or `ACTIVE` or `CANCELED` after a delay on the sandbox clock);
//! - the review of KYC documents and UBO declarations: [`Knobs::set_kyc_outcome_after`] and
//!   [`Knobs::set_kyc_outcome`] ([`KycOutcome`]), [`Knobs::set_ubo_outcome_after`] and
//!   [`Knobs::set_ubo_outcome`] ([`UboOutcome`]) end it by the sandbox clock (by default it
//!   waits for a control request); [`Knobs::set_kyc_gif_accepted`] accepts GIF pages, as older
//!   versions of the reference did.
//!
//! Where the reference is silent (how a field is cleared, what a lookup of an unknown key
//! answers, whether a 429 uses up a key, whether lists lag, when a pay-out settles), a knob
//! offers each plausible behaviour; its documentation names the default.
//!
//! # Control requests
//!
//! Some of what happens on the real platform has no API call: money arriving by pay-in, a
//! bank settling a pay-out, a buyer completing 3-D Secure, Mangopay's team reviewing a
//! document. Tests do it with control
//! requests, outside `/v2.01`, without authentication, never logged, rate limited or failed
//! by the knobs (JSON in and out, errors as Mangopay error reports):
//!
//! - `POST /_sandbox/wallets/{WalletId}/credit` with `{"Amount": 10000}` adds funds to a
//!   wallet and answers it ([`Sandbox::credit_wallet`]);
//! - `POST /_sandbox/payouts/{PayoutId}/settle` with `{"Status": "SUCCEEDED"}` or
//!   `{"Status": "FAILED", "ResultCode": "121999", "ResultMessage": "Generic withdrawal
//!   error"}` (code and message default to those) settles a `CREATED` pay-out and answers
//!   it, 400 `invalid_action` if it is not `CREATED` ([`Sandbox::settle_payout`]);
//! - `POST /_sandbox/payins/{PayInId}/settle` with `{"Status": "SUCCEEDED"}` (plus
//!   `"Amount": 8000` for a bank wire that received another amount than declared) or
//!   `{"Status": "FAILED", "ResultCode": "...", "ResultMessage": "..."}` ends a `CREATED` pay-in:
//!   a card pay-in's 3-D Secure step (with [`test_cards::THREE_DS_NOT_AVAILABLE`] a success
//!   still fails with `101399`), a web card pay-in's payment page, a bank wire's funds; 400
//!   `invalid_action` if it is not `CREATED` ([`Sandbox::settle_payin`]). The pages a buyer is
//!   sent to, `GET /_sandbox/secure-mode/{PayInId}` and `GET /_sandbox/web-payment/{PayInId}`,
//!   only say so;
//! - `POST /_sandbox/recipients/{RecipientId}/status` with `{"Status": "ACTIVE"}` or
//!   `{"Status": "CANCELED"}` settles a `PENDING` recipient as its user's SCA session would
//!   and answers it, 400 `param_error` if it is not `PENDING` or for `CANCELED` on a `PAYIN`
//!   recipient ([`Sandbox::set_recipient_status`], [`RecipientStatus`]);
//! - `POST /_sandbox/kyc/documents/{KycDocumentId}/outcome` with `{"Status": "VALIDATED"}` or
//!   `{"Status": "REFUSED", "RefusedReasonType": "DOCUMENT_UNREADABLE", "RefusedReasonMessage":
//!   "...", "Flags": ["009004"]}` ends the review of a `VALIDATION_ASKED` document and answers
//!   it, 400 `invalid_action` from any other status ([`Sandbox::set_kyc_outcome`]);
//! - `POST /_sandbox/kyc/ubodeclarations/{UboDeclarationId}/outcome` with
//!   `{"Status": "VALIDATED"}`, or `{"Status": "INCOMPLETE", "Reason": "MISSING_UBO",
//!   "Message": "..."}` (or `REFUSED`) does the same for a UBO declaration
//!   ([`Sandbox::set_ubo_outcome`]).
//!
//! [`Sandbox::wallet`], [`Sandbox::wallets`], [`Sandbox::transfers`], [`Sandbox::payouts`],
//! [`Sandbox::payins`] and [`Sandbox::refunds`] show the money as the API answers it; [`Sandbox::kyc_documents`] and
//! [`Sandbox::ubo_declarations`] the verification.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use diesel_mangopay_sandbox::{Sandbox, SandboxConfig};
//! let running = Sandbox::new(SandboxConfig::default())
//!     .serve("127.0.0.1:0".parse().unwrap())
//!     .await?;
//! println!("Mangopay sandbox listening on {}", running.base_url());
//! running.shutdown().await;
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

/// The e-mail pattern Mangopay checks `Email` fields against, as quoted in its own `param_error`
/// answers (unanchored).
pub const EMAIL_PATTERN: &str = r"([a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+)*)@(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?\.)+[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?";

#[cfg(feature = "server")]
mod server;
#[cfg(feature = "server")]
pub use server::*;
