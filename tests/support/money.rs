//! Money set-ups shared by the tests: users, wallets and bank accounts created at the sandbox,
//! funds credited through its control plane, balances read back.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::RunQueryDsl;
use diesel_mangopay::models::PreregistrationData;
use diesel_mangopay::models::{BankAccountDetails, PayoutMethodType, RecipientHolder};
use diesel_mangopay::{
    Address, BrowserInfo, CardType, CurrencyCode, Hooks, MangopayBankAccount, MangopayCard,
    MangopayCardRegistration, MangopayNaturalUser, MangopayPayIn, MangopayRecipient,
    MangopayWallet, Money,
};
use serde_json::{Value, json};

use super::{Env, natural_owner};

/// `amount` euro cents.
pub fn eur(amount: i64) -> Money {
    Money::new(amount, "EUR".parse::<CurrencyCode>().unwrap())
}

/// A natural OWNER user created at Mangopay.
pub async fn created_user(env: &Env, email: &str) -> MangopayNaturalUser {
    let mut user = natural_owner();
    user.email = email.to_owned();
    user.create(&env.db, &env.client).await.unwrap();
    user
}

/// A wallet of `owner` created at Mangopay.
pub async fn created_wallet(env: &Env, owner: i64, currency: &str) -> MangopayWallet {
    let mut wallet = MangopayWallet::new(owner, currency, "main wallet").unwrap();
    wallet.create(&env.db, &env.client).await.unwrap();
    wallet
}

/// The number of requests the sandbox received whose path contains `part`.
pub fn requests_to(env: &Env, method: &str, part: &str) -> usize {
    env.sandbox()
        .request_log()
        .iter()
        .filter(|r| r.method == method && r.path.contains(part))
        .count()
}

/// The balance Mangopay holds for the wallet.
pub fn sandbox_balance(env: &Env, wallet: &MangopayWallet) -> i64 {
    env.sandbox().wallet(wallet.mangopay_id().unwrap()).unwrap()["Balance"]["Amount"]
        .as_i64()
        .unwrap()
}

/// An IBAN bank account of `user` created at Mangopay.
pub async fn created_account(env: &Env, user: i64) -> MangopayBankAccount {
    let mut account = MangopayBankAccount::new(
        user,
        BankAccountDetails::Iban {
            iban: "FR76 3000 6000 0112 3456 7890 189".into(),
            bic: None,
        },
        "Alex Smith",
        natural_owner().address.unwrap(),
    )
    .unwrap();
    account.create(&env.db, &env.client).await.unwrap();
    account
}

/// A user with a wallet holding `funds` and a bank account, all created at Mangopay.
pub async fn funded(
    env: &Env,
    email: &str,
    funds: i64,
) -> (i64, MangopayWallet, MangopayBankAccount) {
    let user = created_user(env, email).await;
    let wallet = created_wallet(env, user.id.unwrap(), "EUR").await;
    env.sandbox()
        .credit_wallet(wallet.mangopay_id().unwrap(), funds)
        .unwrap();
    let account = created_account(env, user.id.unwrap()).await;
    (user.id.unwrap(), wallet, account)
}

pub fn london() -> Address {
    Address::new("10 Kingsway", "London", "WC2B 6LH", "GB").unwrap()
}

pub fn alex_holder() -> RecipientHolder {
    RecipientHolder::Individual {
        first_name: "Alex".into(),
        last_name: "Smith".into(),
        address: london(),
    }
}

pub fn gbp_details() -> Value {
    json!({"GBP": {"SortCode": "200000", "AccountNumber": "55779911"}})
}

pub fn gbp_recipient(user_id: i64) -> MangopayRecipient {
    MangopayRecipient::new(
        user_id,
        "Alex Smith GBP account",
        alex_holder(),
        "GBP",
        PayoutMethodType::LocalBankTransfer,
        gbp_details(),
    )
    .unwrap()
}

/// A hook that counts its runs, writes the wallet's description through the hook's
/// connection, and fails its first `failures` runs after writing.
pub fn counting_hook(runs: Arc<AtomicUsize>, failures: usize) -> Hooks {
    Hooks::new().on_pay_out_succeeded(move |conn, pay_out| {
        let run = runs.fetch_add(1, Ordering::SeqCst);
        diesel::sql_query(format!(
            "UPDATE mangopay_wallets SET description = 'paid out {}' WHERE id = {}",
            pay_out.debited_funds.amount, pay_out.debited_wallet_id
        ))
        .execute(conn)?;
        if run < failures {
            return Err("the application's hook failed".into());
        }
        Ok(())
    })
}

/// A card test number that pays without 3-D Secure.
pub const CARD_OK: &str = diesel_mangopay_sandbox::test_cards::FRICTIONLESS;
/// A card test number that always needs 3-D Secure.
pub const CARD_3DS: &str = diesel_mangopay_sandbox::test_cards::CHALLENGE;
/// A card test number the bank refuses (101101).
pub const CARD_REFUSED: &str = diesel_mangopay_sandbox::test_cards::DO_NOT_HONOR;
/// The CVC sent with every test card.
pub const CVC: &str = "737";

/// Posts a card to the tokenization server as the card kit does; its answer, `data=...`.
pub async fn tokenize(prereg: &PreregistrationData, number: &str) -> String {
    let form = [
        ("data", prereg.preregistration_data.as_str()),
        ("accessKeyRef", prereg.access_key.as_str()),
        ("cardNumber", number),
        ("cardExpirationDate", "1239"),
        ("cardCvx", CVC),
    ];
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={}", url_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    post_form(&prereg.card_registration_url, body).await
}

/// Posts `body` as a form to `url` (plain HTTP/1.0, as a browser's form post would reach the
/// loopback sandbox) and returns the answer's body.
async fn post_form(url: &str, body: String) -> String {
    use std::io::{Read, Write};
    let url = url::Url::parse(url).unwrap();
    tokio::task::spawn_blocking(move || {
        let host = url.host_str().unwrap().to_owned();
        let port = url.port_or_known_default().unwrap();
        let mut stream = std::net::TcpStream::connect((host.as_str(), port)).unwrap();
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        write!(
            stream,
            "POST {path} HTTP/1.0\r\nHost: {host}:{port}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default()
    })
    .await
    .unwrap()
}

fn url_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A EUR card of `user` registered at Mangopay through the tokenization server.
pub async fn registered_card(env: &Env, user: i64, number: &str) -> MangopayCard {
    let mut registration =
        MangopayCardRegistration::new(user, eur(0).currency, CardType::CbVisaMastercard).unwrap();
    registration.create(&env.db, &env.client).await.unwrap();
    let data = tokenize(&registration.preregistration_data().unwrap(), number).await;
    registration
        .complete(&env.db, &env.client, &data, Some("Alex Smith"))
        .await
        .unwrap()
}

/// A browser as a checkout page reads it.
pub fn browser() -> BrowserInfo {
    BrowserInfo {
        accept_header: "text/html, application/xhtml+xml".into(),
        java_enabled: false,
        language: "fr-FR".into(),
        color_depth: 24,
        screen_height: 1080,
        screen_width: 1920,
        time_zone_offset: -60,
        user_agent: "Mozilla/5.0 (X11; Linux x86_64)".into(),
        javascript_enabled: true,
    }
}

/// A direct card pay-in of `amount` with 1% fees into `wallet`, not saved.
pub fn card_pay_in(
    user: i64,
    wallet: &MangopayWallet,
    card: &MangopayCard,
    amount: i64,
) -> MangopayPayIn {
    MangopayPayIn::card_direct(
        user,
        wallet.id.unwrap(),
        card.id().unwrap(),
        eur(amount),
        eur(amount / 100),
        "https://shop.example.com/return",
        browser(),
        "203.0.113.7",
    )
    .unwrap()
}
