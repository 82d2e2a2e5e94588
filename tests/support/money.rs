//! Money set-ups shared by the tests: users, wallets and bank accounts created at the sandbox,
//! funds credited through its control plane, balances read back.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::RunQueryDsl;
use diesel_mangopay::models::{BankAccountDetails, PayoutMethodType, RecipientHolder};
use diesel_mangopay::{
    Address, CurrencyCode, Hooks, MangopayBankAccount, MangopayNaturalUser, MangopayRecipient,
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
