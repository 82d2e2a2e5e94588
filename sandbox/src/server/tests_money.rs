//! Loopback tests of wallets, transfers, pay-outs, the transaction lists and the control
//! requests: each serves a fresh sandbox on `127.0.0.1:0` and drives it over real HTTP with
//! reqwest, one intent per test.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::{
    DateFilterBounds, InstantPayouts, PayoutOutcome, RunningSandbox, Sandbox, SandboxConfig,
};

const HOUR: Duration = Duration::from_secs(3600);

/// An answer: status, headers and JSON body (`Value::Null` when not JSON).
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn ok(self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        self.body
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    /// Asserts a Mangopay error report with this status and `Type`, returns `errors`.
    fn error(&self, status: u16, kind: &str) -> &Value {
        assert_eq!(self.status.as_u16(), status, "status of {}", self.body);
        assert_eq!(self.body["Type"], kind, "Type of {}", self.body);
        assert!(self.body["Id"].is_string(), "{}", self.body);
        assert!(self.body["Date"].is_i64(), "{}", self.body);
        assert!(self.body["Message"].is_string(), "{}", self.body);
        assert!(self.body.as_object().unwrap().contains_key("errors"));
        &self.body["errors"]
    }

    /// The `errors` of a 400 `param_error`.
    fn param_errors(&self) -> &Value {
        self.error(400, "param_error")
    }

    /// The sorted keys of a 400 `param_error`'s `errors`.
    fn param_error_keys(&self) -> Vec<String> {
        self.param_errors()
            .as_object()
            .expect("errors is a map")
            .keys()
            .cloned()
            .collect()
    }
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("the sandbox answers");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    Answer {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

/// A served sandbox, an HTTP client and a valid token.
struct Harness {
    running: RunningSandbox,
    http: reqwest::Client,
    token: String,
}

async fn start() -> Harness {
    let running = Sandbox::new(SandboxConfig::default())
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .expect("the sandbox binds a free port");
    // In a workspace build reqwest has rustls without a crypto provider: install one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut harness = Harness {
        running,
        http: reqwest::Client::new(),
        token: String::new(),
    };
    harness.token = harness.new_token().await;
    harness
}

impl Harness {
    fn sandbox(&self) -> &Sandbox {
        self.running.sandbox()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.base_url())
    }

    fn api(&self, path: &str) -> String {
        self.url(&format!(
            "/v2.01/{}{path}",
            self.sandbox().config().client_id
        ))
    }

    async fn new_token(&self) -> String {
        let config = self.sandbox().config();
        let request = self
            .http
            .post(self.url("/v2.01/oauth/token"))
            .basic_auth(&config.client_id, Some(&config.api_key))
            .body("grant_type=client_credentials");
        answer(request).await.ok()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Moves the sandbox clock forward and takes a fresh token.
    async fn advance(&mut self, d: Duration) {
        self.sandbox().clock().advance(d);
        self.token = self.new_token().await;
    }

    async fn get(&self, path: &str) -> Answer {
        answer(self.http.get(self.api(path)).bearer_auth(&self.token)).await
    }

    async fn post(&self, path: &str, body: &Value) -> Answer {
        answer(
            self.http
                .post(self.api(path))
                .bearer_auth(&self.token)
                .json(body),
        )
        .await
    }

    async fn post_keyed(&self, path: &str, body: &Value, key: &str) -> Answer {
        let request = self
            .http
            .post(self.api(path))
            .bearer_auth(&self.token)
            .header("Idempotency-Key", key)
            .json(body);
        answer(request).await
    }

    async fn put(&self, path: &str, body: &Value) -> Answer {
        answer(
            self.http
                .put(self.api(path))
                .bearer_auth(&self.token)
                .json(body),
        )
        .await
    }

    /// A control request: no authentication.
    async fn control(&self, path: &str, body: &Value) -> Answer {
        answer(self.http.post(self.url(path)).json(body)).await
    }

    async fn user(&self, tag: &str) -> String {
        let body = json!({"UserCategory": "OWNER", "TermsAndConditionsAccepted": true,
            "FirstName": "Alex", "LastName": "Smith", "Email": "alex.smith@example.com",
            "Birthday": 652117514, "Nationality": "FR", "CountryOfResidence": "FR", "Tag": tag});
        id(&self.post("/users/natural", &body).await.ok())
    }

    async fn wallet(&self, owner: &str, currency: &str) -> String {
        let body = json!({"Owners": [owner], "Currency": currency,
                          "Description": "Wallet", "Tag": "wallet"});
        id(&self.post("/wallets", &body).await.ok())
    }

    async fn credit(&self, wallet: &str, amount: i64) -> Value {
        self.control(
            &format!("/_sandbox/wallets/{wallet}/credit"),
            &json!({"Amount": amount}),
        )
        .await
        .ok()
    }

    async fn balance(&self, wallet: &str) -> i64 {
        self.get(&format!("/wallets/{wallet}")).await.ok()["Balance"]["Amount"]
            .as_i64()
            .unwrap()
    }

    async fn transfer(&self, body: &Value) -> Answer {
        self.post("/transfers", body).await
    }

    async fn iban_account(&self, user: &str) -> String {
        let body = json!({"OwnerName": "Alex Smith", "IBAN": "FR7630004000031234567890143",
            "BIC": "BNPAFRPP", "Tag": "bank account",
            "OwnerAddress": {"AddressLine1": "3 rue de la Cité", "City": "Paris",
                             "PostalCode": "75004", "Country": "FR"}});
        id(&self
            .post(&format!("/users/{user}/bankaccounts/iban"), &body)
            .await
            .ok())
    }

    async fn payout(&self, body: &Value) -> Answer {
        self.post("/payouts/bankwire", body).await
    }

    /// A user with a EUR wallet holding `funds`.
    async fn funded(&self, funds: i64) -> (String, String) {
        let user = self.user("funded").await;
        let wallet = self.wallet(&user, "EUR").await;
        if funds > 0 {
            self.credit(&wallet, funds).await;
        }
        (user, wallet)
    }
}

fn id(value: &Value) -> String {
    value["Id"].as_str().expect("an Id").to_owned()
}

fn eur(amount: i64) -> Value {
    json!({"Currency": "EUR", "Amount": amount})
}

fn transfer_body(author: &str, from: &str, to: &str, amount: i64, fees: i64, tag: &str) -> Value {
    json!({"AuthorId": author, "DebitedFunds": eur(amount), "Fees": eur(fees),
           "DebitedWalletId": from, "CreditedWalletId": to, "Tag": tag})
}

fn payout_body(author: &str, wallet: &str, account: &str, amount: i64, fees: i64) -> Value {
    json!({"AuthorId": author, "DebitedFunds": eur(amount), "Fees": eur(fees),
           "DebitedWalletId": wallet, "BankAccountId": account, "BankWireRef": "invoice 7282",
           "Tag": "payout"})
}

/// `base` with the given keys replaced (a `null` value removes the key).
fn with(base: Value, changes: Value) -> Value {
    let mut object = base.as_object().unwrap().clone();
    for (key, value) in changes.as_object().unwrap() {
        if value.is_null() {
            object.remove(key);
        } else {
            object.insert(key.clone(), value.clone());
        }
    }
    Value::Object(object)
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

fn sorted(keys: &[&str]) -> Vec<String> {
    let mut keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    keys.sort_unstable();
    keys
}

fn ids_of(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(id).collect()
}

fn has_ulid(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|ulid| {
        ulid.len() == 26
            && ulid
                .bytes()
                .all(|b| b"0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(&b))
    })
}

const TRANSACTION_KEYS: [&str; 16] = [
    "Id",
    "Tag",
    "CreationDate",
    "AuthorId",
    "CreditedUserId",
    "DebitedFunds",
    "CreditedFunds",
    "Fees",
    "Status",
    "ResultCode",
    "ResultMessage",
    "ExecutionDate",
    "Type",
    "Nature",
    "CreditedWalletId",
    "DebitedWalletId",
];

fn payout_keys(with_mode: bool) -> Vec<String> {
    let mut keys: Vec<&str> = TRANSACTION_KEYS.to_vec();
    keys.extend([
        "PaymentType",
        "BankAccountId",
        "BankWireRef",
        "EndToEndId",
        "PaymentRef",
    ]);
    if with_mode {
        keys.extend(["ModeRequested", "ModeApplied", "FallbackReason"]);
    }
    sorted(&keys)
}

// ---------------------------------------------------------------- wallets

#[tokio::test]
async fn wallet_is_created_exactly_as_documented() {
    let h = start().await;
    let owner = h.user("owner").await;
    let body = json!({"Owners": [owner], "Currency": "EUR",
                      "Description": "Description of the user's wallet",
                      "Tag": "Created using Mangopay API Postman Collection"});
    let before = h.sandbox().clock().now().timestamp();
    let wallet = h.post("/wallets", &body).await.ok();
    let after = h.sandbox().clock().now().timestamp();
    assert_eq!(
        keys(&wallet),
        [
            "Balance",
            "CreationDate",
            "Currency",
            "Description",
            "FundsType",
            "Id",
            "Owners",
            "Tag"
        ]
    );
    assert!(
        has_ulid(wallet["Id"].as_str().unwrap(), "wlt_m_"),
        "{wallet}"
    );
    assert_eq!(wallet["Owners"], json!([owner]));
    assert_eq!(wallet["Balance"], json!({"Currency": "EUR", "Amount": 0}));
    assert_eq!(wallet["Currency"], "EUR");
    assert_eq!(wallet["FundsType"], "DEFAULT");
    assert_eq!(wallet["Description"], "Description of the user's wallet");
    assert_eq!(
        wallet["Tag"],
        "Created using Mangopay API Postman Collection"
    );
    let created = wallet["CreationDate"].as_i64().unwrap();
    assert!((before..=after).contains(&created), "{created}");
    let viewed = h.get(&format!("/wallets/{}", id(&wallet))).await.ok();
    assert_eq!(viewed, wallet);
    assert_eq!(h.sandbox().wallet(&id(&wallet)), Some(wallet.clone()));
    assert_eq!(h.sandbox().wallets(), vec![wallet]);
    // No Tag: null, every key present.
    let untagged = h
        .post("/wallets", &with(body, json!({"Tag": null})))
        .await
        .ok();
    assert!(untagged["Tag"].is_null());
    assert_eq!(keys(&untagged).len(), 8);
}

#[tokio::test]
async fn wallet_fields_are_checked() {
    let h = start().await;
    let owner = h.user("owner").await;
    let empty = h.post("/wallets", &json!({})).await;
    assert_eq!(
        empty.param_error_keys(),
        ["Currency", "Description", "Owners"]
    );
    assert_eq!(
        empty.param_errors()["Owners"],
        "The Owners field is required."
    );
    let two = h
        .post(
            "/wallets",
            &json!({"Owners": [owner, owner], "Currency": "EUR", "Description": "x"}),
        )
        .await;
    assert_eq!(
        two.param_errors()["Owners"],
        "Owners doesn't support multiple values for the moment"
    );
    let azn = h
        .post(
            "/wallets",
            &json!({"Owners": [owner], "Currency": "AZN", "Description": "x"}),
        )
        .await;
    assert_eq!(
        azn.param_errors()["Currency"],
        "Currency: The currency AZN is not available"
    );
    let long = h
        .post(
            "/wallets",
            &json!({"Owners": [owner], "Currency": "GBP", "Description": "d".repeat(256),
                    "Tag": "t".repeat(256)}),
        )
        .await;
    assert_eq!(long.param_error_keys(), ["Description", "Tag"]);
    let not_array = h
        .post(
            "/wallets",
            &json!({"Owners": owner, "Currency": "EUR", "Description": "x"}),
        )
        .await;
    assert_eq!(not_array.param_error_keys(), ["Owners"]);
    let unknown = h
        .post(
            "/wallets",
            &json!({"Owners": ["user_m_nobody"], "Currency": "EUR", "Description": "x"}),
        )
        .await;
    assert_eq!(
        unknown.error(404, "ressource_not_found")["RessourceNotFound"],
        "Cannot found the ressource User with the id=user_m_nobody"
    );
    assert!(h.sandbox().wallets().is_empty());
    // Every supported currency is accepted, in any case.
    for currency in ["aed", "JPY", "zar"] {
        let wallet = h
            .post(
                "/wallets",
                &json!({"Owners": [owner], "Currency": currency, "Description": "x"}),
            )
            .await
            .ok();
        assert_eq!(wallet["Currency"], currency.to_ascii_uppercase());
    }
}

#[tokio::test]
async fn unknown_wallets_are_404() {
    let h = start().await;
    let missing = h.get("/wallets/wlt_m_missing").await;
    assert_eq!(
        missing.error(404, "ressource_not_found")["RessourceNotFound"],
        "Cannot found the ressource Wallet with the id=wlt_m_missing"
    );
    h.put("/wallets/wlt_m_missing", &json!({"Tag": "x"}))
        .await
        .error(404, "ressource_not_found");
    h.get("/wallets/wlt_m_missing/transactions")
        .await
        .error(404, "ressource_not_found");
    h.get("/users/user_m_missing/wallets")
        .await
        .error(404, "ressource_not_found");
    assert_eq!(h.sandbox().wallet("wlt_m_missing"), None);
}

#[tokio::test]
async fn wallet_update_changes_description_and_tag_only() {
    let h = start().await;
    let (owner, wallet) = h.funded(500).await;
    let before = h.get(&format!("/wallets/{wallet}")).await.ok();
    // What an SDK sends back: the whole object, read-only keys included.
    let updated = h
        .put(
            &format!("/wallets/{wallet}"),
            &json!({"Description": "New description of the wallet", "Tag": "Updated",
                    "Owners": ["someone"], "Currency": "GBP", "FundsType": "FEES",
                    "Balance": {"Currency": "GBP", "Amount": 1}, "CreationDate": 1}),
        )
        .await
        .ok();
    assert_eq!(
        updated,
        with(
            before,
            json!({"Description": "New description of the wallet", "Tag": "Updated"})
        )
    );
    assert_eq!(updated["Owners"], json!([owner]));
    assert_eq!(updated["Balance"]["Amount"], 500);
    // null keeps, "" clears the Tag and is refused on the required Description.
    let kept = h
        .put(
            &format!("/wallets/{wallet}"),
            &json!({"Description": null, "Tag": null}),
        )
        .await
        .ok();
    assert_eq!(kept, updated);
    let cleared = h
        .put(&format!("/wallets/{wallet}"), &json!({"Tag": ""}))
        .await
        .ok();
    assert!(cleared["Tag"].is_null());
    let refused = h
        .put(&format!("/wallets/{wallet}"), &json!({"Description": ""}))
        .await;
    assert_eq!(
        refused.param_errors()["Description"],
        "The Description field is required."
    );
    let long = h
        .put(
            &format!("/wallets/{wallet}"),
            &json!({"Description": "d".repeat(256)}),
        )
        .await;
    assert_eq!(long.param_error_keys(), ["Description"]);
    assert_eq!(
        h.get(&format!("/wallets/{wallet}")).await.ok()["Description"],
        "New description of the wallet"
    );
}

#[tokio::test]
async fn user_wallets_are_listed_paginated_and_sorted() {
    let mut h = start().await;
    let owner = h.user("owner").await;
    let other = h.user("other").await;
    let mut created = Vec::new();
    for currency in ["EUR", "GBP", "USD"] {
        created.push(h.wallet(&owner, currency).await);
        h.advance(Duration::from_secs(2)).await;
    }
    h.wallet(&other, "EUR").await;
    let all = h.get(&format!("/users/{owner}/wallets")).await;
    assert_eq!(all.header("x-number-of-items"), "3");
    assert_eq!(all.header("x-number-of-pages"), "1");
    let body = all.ok();
    assert_eq!(ids_of(&body), created);
    assert_eq!(keys(&body[0]).len(), 8);
    let page = h
        .get(&format!(
            "/users/{owner}/wallets?Page=2&Per_Page=2&Sort=CreationDate:DESC"
        ))
        .await;
    assert_eq!(page.header("x-number-of-pages"), "2");
    let link = page.header("link").to_owned();
    assert!(link.contains("rel=\"prev\""), "{link}");
    assert!(link.contains("sort=CreationDate:DESC"), "{link}");
    assert_eq!(ids_of(&page.ok()), [created[0].clone()]);
    let newest_first = h
        .get(&format!("/users/{owner}/wallets?sort=CreationDate%3ADESC"))
        .await
        .ok();
    let mut reversed = created.clone();
    reversed.reverse();
    assert_eq!(ids_of(&newest_first), reversed);
    h.get(&format!("/users/{owner}/wallets?Sort=Balance:ASC"))
        .await
        .param_errors();

    // The list lag hides new wallets from the list only.
    h.advance(Duration::from_secs(61)).await;
    h.sandbox().knobs().set_list_lag(Duration::from_secs(60));
    let fresh = h.wallet(&owner, "CHF").await;
    let lagging = h.get(&format!("/users/{owner}/wallets")).await;
    assert_eq!(lagging.header("x-number-of-items"), "3");
    assert!(!ids_of(&lagging.ok()).contains(&fresh));
    h.get(&format!("/wallets/{fresh}")).await.ok();
    h.advance(Duration::from_secs(61)).await;
    assert!(ids_of(&h.get(&format!("/users/{owner}/wallets")).await.ok()).contains(&fresh));
}

// ---------------------------------------------------------------- transfers

#[tokio::test]
async fn a_transfer_moves_money_and_is_answered_as_documented() {
    let h = start().await;
    let (alice, from) = h.funded(10_000).await;
    let bob = h.user("bob").await;
    let to = h.wallet(&bob, "EUR").await;
    let body = with(
        transfer_body(
            &alice,
            &from,
            &to,
            3_000,
            100,
            "Created using Mangopay API Postman Collection",
        ),
        json!({"ScaContext": "USER_PRESENT", "CreditedUserId": "ignored"}),
    );
    let transfer = h.transfer(&body).await.ok();
    assert_eq!(
        keys(&transfer),
        sorted(&[
            "ScaContext",
            "Id",
            "CreationDate",
            "DebitedWalletId",
            "CreditedWalletId",
            "AuthorId",
            "CreditedUserId",
            "DebitedFunds",
            "CreditedFunds",
            "Fees",
            "Type",
            "Nature",
            "Status",
            "Tag",
            "ResultCode",
            "ResultMessage",
            "ExecutionDate",
            "PendingUserAction"
        ])
    );
    assert!(has_ulid(transfer["Id"].as_str().unwrap(), "xfer_m_"));
    assert_eq!(transfer["ScaContext"], "USER_PRESENT");
    assert_eq!(transfer["AuthorId"], alice.as_str());
    assert_eq!(transfer["CreditedUserId"], bob.as_str());
    assert_eq!(transfer["DebitedWalletId"], from.as_str());
    assert_eq!(transfer["CreditedWalletId"], to.as_str());
    assert_eq!(transfer["DebitedFunds"], eur(3_000));
    assert_eq!(transfer["CreditedFunds"], eur(2_900));
    assert_eq!(transfer["Fees"], eur(100));
    assert_eq!(transfer["Type"], "TRANSFER");
    assert_eq!(transfer["Nature"], "REGULAR");
    assert_eq!(transfer["Status"], "SUCCEEDED");
    assert_eq!(transfer["ResultCode"], "000000");
    assert_eq!(transfer["ResultMessage"], "Success");
    assert_eq!(transfer["ExecutionDate"], transfer["CreationDate"]);
    assert!(transfer["ExecutionDate"].is_i64());
    assert!(transfer["PendingUserAction"].is_null());
    assert_eq!(
        transfer["Tag"],
        "Created using Mangopay API Postman Collection"
    );

    assert_eq!(h.balance(&from).await, 7_000);
    assert_eq!(h.balance(&to).await, 2_900);
    assert_eq!(h.sandbox().fees_balance("EUR"), 100);
    let viewed = h.get(&format!("/transfers/{}", id(&transfer))).await.ok();
    assert_eq!(viewed, transfer);
    assert_eq!(h.sandbox().transfers(), vec![transfer.clone()]);
    // Without ScaContext it is null.
    let plain = h
        .transfer(&transfer_body(&alice, &from, &to, 1, 0, "t"))
        .await
        .ok();
    assert!(plain["ScaContext"].is_null());
}

#[tokio::test]
async fn a_transfer_the_wallet_cannot_cover_is_created_failed() {
    let h = start().await;
    let (alice, from) = h.funded(1_000).await;
    let to = h.wallet(&h.user("bob").await, "EUR").await;
    let failed = h
        .transfer(&transfer_body(&alice, &from, &to, 1_001, 1, "too much"))
        .await
        .ok();
    assert_eq!(failed["Status"], "FAILED");
    assert_eq!(failed["ResultCode"], "001001");
    assert_eq!(failed["ResultMessage"], "Unsufficient wallet balance");
    assert!(failed["ExecutionDate"].is_null());
    assert_eq!(failed["CreditedFunds"], eur(1_000));
    assert!(has_ulid(failed["Id"].as_str().unwrap(), "xfer_m_"));
    assert_eq!(h.balance(&from).await, 1_000);
    assert_eq!(h.balance(&to).await, 0);
    assert_eq!(h.sandbox().fees_balance("EUR"), 0);
    assert_eq!(
        h.get(&format!("/transfers/{}", id(&failed))).await.ok(),
        failed
    );
    // Exactly the balance goes through.
    let exact = h
        .transfer(&transfer_body(&alice, &from, &to, 1_000, 0, "all"))
        .await
        .ok();
    assert_eq!(exact["Status"], "SUCCEEDED");
    assert_eq!(h.balance(&from).await, 0);
}

#[tokio::test]
async fn transfer_fields_are_checked() {
    let h = start().await;
    let (alice, from) = h.funded(1_000).await;
    let bob = h.user("bob").await;
    let to = h.wallet(&bob, "EUR").await;
    let pounds = h.wallet(&bob, "GBP").await;
    let body = transfer_body(&alice, &from, &to, 500, 10, "t");

    let empty = h.transfer(&json!({})).await;
    assert_eq!(
        empty.param_error_keys(),
        [
            "AuthorId",
            "CreditedWalletId",
            "DebitedFunds",
            "DebitedWalletId",
            "Fees"
        ]
    );
    let parts = h
        .transfer(&with(
            body.clone(),
            json!({"DebitedFunds": {"Amount": -1}, "Fees": {"Currency": "XYZ", "Amount": 1.5},
                   "ScaContext": "SOMETIMES"}),
        ))
        .await;
    assert_eq!(
        parts.param_error_keys(),
        [
            "DebitedFunds.Amount",
            "DebitedFunds.Currency",
            "Fees.Amount",
            "Fees.Currency",
            "ScaContext"
        ]
    );
    assert_eq!(
        parts.param_errors()["DebitedFunds.Currency"],
        "The DebitedFunds.Currency field is required."
    );
    let fees = h
        .transfer(&with(body.clone(), json!({"Fees": eur(500)})))
        .await;
    assert_eq!(
        fees.param_errors()["Fees"],
        "CreditedFunds must be more than 0 (DebitedFunds can not equal Fees)"
    );
    let same = h
        .transfer(&with(body.clone(), json!({"CreditedWalletId": from})))
        .await;
    assert_eq!(
        same.param_errors()["CreditedWalletId"],
        "Transaction refused: the Debited Wallet and the Credited Wallet must be different"
    );
    let wallets = h
        .transfer(&with(body.clone(), json!({"CreditedWalletId": pounds})))
        .await;
    assert_eq!(
        wallets.error(400, "currency_incompatibility")["currency"],
        "The Debited Wallet's currency EUR and the Credited Wallet's currency GBP must be the same"
    );
    assert_eq!(
        wallets.body["Message"],
        "Error: multi-currency usage is not authorized"
    );
    let funds = h
        .transfer(&with(
            body.clone(),
            json!({"DebitedFunds": {"Currency": "GBP", "Amount": 500},
                   "Fees": {"Currency": "GBP", "Amount": 0}}),
        ))
        .await;
    assert_eq!(
        funds.error(400, "currency_incompatibility")["currency"],
        "The Wallet's currency EUR and the DebitedFunds's currency GBP must be the same"
    );
    let fee_currency = h
        .transfer(&with(
            body.clone(),
            json!({"Fees": {"Currency": "GBP", "Amount": 0}}),
        ))
        .await;
    fee_currency.error(400, "currency_incompatibility");
    let not_owner = h
        .transfer(&with(body.clone(), json!({"AuthorId": bob})))
        .await;
    assert!(
        not_owner
            .error(400, "author_is_not_debited_wallet_owner")
            .is_null()
    );
    assert_eq!(
        not_owner.body["Message"],
        format!("Author {bob} is not debited wallet {from} owner.")
    );
    let unknown_wallet = h
        .transfer(&with(body.clone(), json!({"CreditedWalletId": "wlt_m_x"})))
        .await;
    assert_eq!(
        unknown_wallet.error(404, "ressource_not_found")["RessourceNotFound"],
        "Cannot found the ressource Wallet with the id=wlt_m_x"
    );
    let unknown_author = h
        .transfer(&with(body.clone(), json!({"AuthorId": "user_m_x"})))
        .await;
    unknown_author.error(404, "ressource_not_found");
    h.get("/transfers/xfer_m_missing")
        .await
        .error(404, "ressource_not_found");

    // Nothing was created or moved by any of them; numeric strings are read as numbers.
    assert!(h.sandbox().transfers().is_empty());
    assert_eq!(h.balance(&from).await, 1_000);
    let sdk_style = h
        .transfer(&with(
            body,
            json!({"DebitedFunds": {"Currency": "eur", "Amount": "500"}}),
        ))
        .await
        .ok();
    assert_eq!(sdk_style["DebitedFunds"], eur(500));
    assert_eq!(h.balance(&from).await, 500);
}

#[tokio::test]
async fn a_replayed_transfer_moves_money_once() {
    const KEY: &str = "5e8f9c2a-0d1b-4c3e-9f7a-6b5d4c3b2a19";
    let h = start().await;
    let (alice, from) = h.funded(1_000).await;
    let to = h.wallet(&h.user("bob").await, "EUR").await;
    let body = transfer_body(&alice, &from, &to, 400, 0, "keyed");
    let first = h.post_keyed("/transfers", &body, KEY).await.ok();
    let again = h.post_keyed("/transfers", &body, KEY).await;
    again.error(409, "idempotent_creation_conflict");
    let replay = h.get(&format!("/responses/{KEY}")).await.ok();
    assert_eq!(replay["StatusCode"], "200");
    assert_eq!(replay["Resource"], first);
    assert_eq!(h.balance(&from).await, 600);
    assert_eq!(h.balance(&to).await, 400);
    assert_eq!(h.sandbox().transfers().len(), 1);
}

// ---------------------------------------------------------------- pay-outs

#[tokio::test]
async fn a_payout_debits_at_once_and_is_answered_as_documented() {
    let h = start().await;
    let (alice, wallet) = h.funded(10_000).await;
    let account = h.iban_account(&alice).await;
    let created = h
        .payout(&payout_body(&alice, &wallet, &account, 5_792, 579))
        .await
        .ok();
    assert_eq!(keys(&created), payout_keys(true));
    assert!(has_ulid(created["Id"].as_str().unwrap(), "po_m_"));
    assert_eq!(created["Status"], "CREATED");
    assert!(created["ResultCode"].is_null());
    assert!(created["ResultMessage"].is_null());
    assert!(created["ExecutionDate"].is_null());
    assert_eq!(created["Type"], "PAYOUT");
    assert_eq!(created["Nature"], "REGULAR");
    assert_eq!(created["PaymentType"], "BANK_WIRE");
    assert_eq!(created["AuthorId"], alice.as_str());
    assert!(created["CreditedUserId"].is_null());
    assert!(created["CreditedWalletId"].is_null());
    assert_eq!(created["DebitedWalletId"], wallet.as_str());
    assert_eq!(created["BankAccountId"], account.as_str());
    assert_eq!(created["BankWireRef"], "invoice 7282");
    assert_eq!(created["DebitedFunds"], eur(5_792));
    assert_eq!(created["CreditedFunds"], eur(5_213));
    assert_eq!(created["Fees"], eur(579));
    assert!(created["ModeRequested"].is_null());
    assert_eq!(created["ModeApplied"], "PENDING_RESPONSE");
    assert!(created["FallbackReason"].is_null());
    assert!(created["PaymentRef"].is_null());
    let end_to_end = created["EndToEndId"].as_str().unwrap();
    assert!(
        end_to_end.len() == 32 && end_to_end.bytes().all(|b| b.is_ascii_hexdigit()),
        "{end_to_end}"
    );
    assert_eq!(h.balance(&wallet).await, 10_000 - 5_792);
    assert_eq!(h.sandbox().fees_balance("EUR"), 579);

    let plain = h.get(&format!("/payouts/{}", id(&created))).await.ok();
    assert_eq!(keys(&plain), payout_keys(false));
    let with_mode = h
        .get(&format!("/payouts/bankwire/{}", id(&created)))
        .await
        .ok();
    assert_eq!(with_mode, created);
    assert_eq!(h.sandbox().payouts(), vec![created.clone()]);
    h.get("/payouts/po_m_missing")
        .await
        .error(404, "ressource_not_found");
    h.get("/payouts/bankwire/po_m_missing")
        .await
        .error(404, "ressource_not_found");
    // A transfer is no pay-out, and a pay-out no transfer.
    h.get(&format!("/transfers/{}", id(&created)))
        .await
        .error(404, "ressource_not_found");

    // The mode requested is echoed; a trailing slash (the Node SDK's) is fine.
    let rtgs = answer(
        h.http
            .post(h.api("/payouts/bankwire/"))
            .bearer_auth(&h.token)
            .json(&with(
                payout_body(&alice, &wallet, &account, 100, 0),
                json!({"PayoutModeRequested": "RTGS_PAYMENT",
                       "PaymentRef": {"ReasonType": "PAYIN_REFUND", "ReferenceId": "payin_m_1"}}),
            )),
    )
    .await
    .ok();
    assert_eq!(rtgs["ModeRequested"], "RTGS_PAYMENT");
    assert_eq!(
        rtgs["PaymentRef"],
        json!({"ReasonType": "PAYIN_REFUND", "ReferenceId": "payin_m_1"})
    );
    let settled = h
        .sandbox()
        .settle_payout(&id(&rtgs), PayoutOutcome::Succeeded)
        .unwrap();
    assert_eq!(settled["ModeApplied"], "RTGS_PAYMENT");
}

#[tokio::test]
async fn payouts_settle_by_control_request() {
    let h = start().await;
    let (alice, wallet) = h.funded(10_000).await;
    let account = h.iban_account(&alice).await;
    let body = payout_body(&alice, &wallet, &account, 3_000, 300);
    let first = id(&h.payout(&body).await.ok());
    let second = id(&h.payout(&body).await.ok());
    assert_eq!(h.balance(&wallet).await, 4_000);
    assert_eq!(h.sandbox().fees_balance("EUR"), 600);

    let succeeded = h
        .control(
            &format!("/_sandbox/payouts/{first}/settle"),
            &json!({"Status": "SUCCEEDED"}),
        )
        .await
        .ok();
    assert_eq!(succeeded["Status"], "SUCCEEDED");
    assert_eq!(succeeded["ResultCode"], "000000");
    assert_eq!(succeeded["ResultMessage"], "Success");
    let executed = succeeded["ExecutionDate"].as_i64().unwrap();
    assert!(executed >= succeeded["CreationDate"].as_i64().unwrap());
    assert!(executed <= h.sandbox().clock().now().timestamp());
    assert_eq!(succeeded["ModeApplied"], "STANDARD");
    assert_eq!(
        h.get(&format!("/payouts/bankwire/{first}")).await.ok(),
        succeeded
    );
    let again = h
        .control(
            &format!("/_sandbox/payouts/{first}/settle"),
            &json!({"Status": "FAILED"}),
        )
        .await;
    again.error(400, "invalid_action");
    assert_eq!(
        again.body["Message"],
        "The pay-out is SUCCEEDED, not CREATED."
    );

    let failed = h
        .control(
            &format!("/_sandbox/payouts/{second}/settle"),
            &json!({"Status": "FAILED"}),
        )
        .await
        .ok();
    assert_eq!(failed["Status"], "FAILED");
    assert_eq!(failed["ResultCode"], "121999");
    assert_eq!(failed["ResultMessage"], "Generic withdrawal error");
    assert!(failed["ExecutionDate"].is_null());
    // The debited funds are back, the fees left the Fees Wallet.
    assert_eq!(h.balance(&wallet).await, 7_000);
    assert_eq!(h.sandbox().fees_balance("EUR"), 300);

    let third = id(&h.payout(&body).await.ok());
    let custom = h
        .control(
            &format!("/_sandbox/payouts/{third}/settle"),
            &json!({"Status": "failed", "ResultCode": "121005",
                    "ResultMessage": "Refused due to the Fraud Policy"}),
        )
        .await
        .ok();
    assert_eq!(custom["ResultCode"], "121005");
    assert_eq!(custom["ResultMessage"], "Refused due to the Fraud Policy");
    assert_eq!(h.balance(&wallet).await, 7_000);

    h.control(
        "/_sandbox/payouts/po_m_missing/settle",
        &json!({"Status": "SUCCEEDED"}),
    )
    .await
    .error(404, "ressource_not_found");
    assert_eq!(
        h.control(
            &format!("/_sandbox/payouts/{third}/settle"),
            &json!({"Status": "LOST"})
        )
        .await
        .param_error_keys(),
        ["Status"]
    );
    assert!(
        h.sandbox()
            .settle_payout(&third, PayoutOutcome::Succeeded)
            .is_err()
    );
    assert!(
        h.sandbox()
            .settle_payout("po_m_missing", PayoutOutcome::Succeeded)
            .is_err()
    );
}

#[tokio::test]
async fn payouts_settle_after_the_delay_on_the_sandbox_clock() {
    let mut h = start().await;
    h.sandbox().knobs().set_payout_settle_after(Some(HOUR));
    let (alice, wallet) = h.funded(10_000).await;
    let account = h.iban_account(&alice).await;
    let body = payout_body(&alice, &wallet, &account, 1_000, 10);
    let created = h.payout(&body).await.ok();
    let payout = id(&created);
    let created_at = created["CreationDate"].as_i64().unwrap();

    h.advance(HOUR - Duration::from_secs(60)).await;
    assert_eq!(
        h.get(&format!("/payouts/{payout}")).await.ok()["Status"],
        "CREATED"
    );
    h.advance(Duration::from_secs(61)).await;
    let settled = h.get(&format!("/payouts/{payout}")).await.ok();
    assert_eq!(settled["Status"], "SUCCEEDED");
    assert_eq!(settled["ResultCode"], "000000");
    // It settled when it became due, not when it was read.
    let executed = settled["ExecutionDate"].as_i64().unwrap();
    assert!(
        (created_at + 3599..=created_at + 3601).contains(&executed),
        "{executed} vs {created_at}"
    );
    assert_eq!(h.balance(&wallet).await, 9_000);

    // Failing ones give the funds back, seen through the wallet alone.
    h.sandbox()
        .knobs()
        .set_payout_outcome(PayoutOutcome::generic_failure());
    let failing = id(&h.payout(&body).await.ok());
    assert_eq!(h.balance(&wallet).await, 8_000);
    h.advance(HOUR).await;
    assert_eq!(h.balance(&wallet).await, 9_000);
    assert_eq!(h.sandbox().fees_balance("EUR"), 10);
    let failed = h.get(&format!("/payouts/bankwire/{failing}")).await.ok();
    assert_eq!(failed["Status"], "FAILED");
    assert_eq!(failed["ResultCode"], "121999");
    assert_eq!(failed["ModeApplied"], "STANDARD");

    // Without a delay, pay-outs wait for a control request however long.
    h.sandbox().knobs().set_payout_settle_after(None);
    let waiting = id(&h.payout(&body).await.ok());
    h.advance(24 * HOUR).await;
    assert_eq!(
        h.get(&format!("/payouts/{waiting}")).await.ok()["Status"],
        "CREATED"
    );
    // Turning the delay on settles what is already overdue.
    h.sandbox()
        .knobs()
        .set_payout_outcome(PayoutOutcome::Succeeded);
    h.sandbox().knobs().set_payout_settle_after(Some(HOUR));
    assert_eq!(h.sandbox().payouts()[2]["Status"], "SUCCEEDED");
}

#[tokio::test]
async fn a_payout_the_wallet_cannot_cover_is_created_failed() {
    let h = start().await;
    let (alice, wallet) = h.funded(500).await;
    let account = h.iban_account(&alice).await;
    let failed = h
        .payout(&payout_body(&alice, &wallet, &account, 501, 0))
        .await
        .ok();
    assert_eq!(failed["Status"], "FAILED");
    assert_eq!(failed["ResultCode"], "001001");
    assert_eq!(failed["ResultMessage"], "Unsufficient wallet balance");
    assert!(failed["ExecutionDate"].is_null());
    assert_eq!(failed["ModeApplied"], "STANDARD");
    assert_eq!(h.balance(&wallet).await, 500);
    assert_eq!(h.sandbox().fees_balance("EUR"), 0);
    assert!(
        h.sandbox()
            .settle_payout(&id(&failed), PayoutOutcome::Succeeded)
            .is_err()
    );
}

#[tokio::test]
async fn instant_payouts_settle_at_once_by_default() {
    let h = start().await;
    let (alice, wallet) = h.funded(10_000).await;
    let account = h.iban_account(&alice).await;
    for mode in ["INSTANT_PAYMENT", "INSTANT_PAYMENT_ONLY"] {
        let payout = h
            .payout(&with(
                payout_body(&alice, &wallet, &account, 1_000, 0),
                json!({"PayoutModeRequested": mode}),
            ))
            .await
            .ok();
        assert_eq!(payout["Status"], "SUCCEEDED", "{mode}");
        assert_eq!(payout["ResultCode"], "000000");
        assert!(payout["ExecutionDate"].is_i64());
        assert_eq!(payout["ModeRequested"], mode);
        assert_eq!(payout["ModeApplied"], "INSTANT_PAYMENT");
        assert!(payout["FallbackReason"].is_null());
    }
    assert_eq!(h.balance(&wallet).await, 8_000);
    let reachable = h
        .post(
            "/payouts/reachability",
            &with(
                payout_body(&alice, &wallet, &account, 1_000, 0),
                json!({"PayoutModeRequested": "INSTANT_PAYMENT"}),
            ),
        )
        .await
        .ok();
    assert_eq!(
        reachable,
        json!({"InstantPayout": {"IsReachable": true, "UnreachableReason": null}})
    );
    let too_much = h
        .post(
            "/payouts/reachability",
            &with(
                payout_body(&alice, &wallet, &account, 8_001, 0),
                json!({"PayoutModeRequested": "INSTANT_PAYMENT"}),
            ),
        )
        .await
        .ok();
    assert_eq!(
        too_much,
        json!({"InstantPayout": {"IsReachable": false, "UnreachableReason":
            {"Code": "001001", "Message": "Unsufficient wallet balance"}}})
    );
    // The check creates nothing and needs the instant mode.
    assert_eq!(h.sandbox().payouts().len(), 2);
    let standard = h
        .post(
            "/payouts/reachability",
            &payout_body(&alice, &wallet, &account, 1_000, 0),
        )
        .await;
    assert_eq!(standard.param_error_keys(), ["PayoutModeRequested"]);
    let wrong = h
        .post(
            "/payouts/reachability",
            &with(
                payout_body(&alice, &wallet, &account, 1_000, 0),
                json!({"PayoutModeRequested": "STANDARD"}),
            ),
        )
        .await;
    assert_eq!(wrong.param_error_keys(), ["PayoutModeRequested"]);
}

#[tokio::test]
async fn instant_payouts_fall_back_when_the_bank_is_unreachable() {
    let h = start().await;
    h.sandbox()
        .knobs()
        .set_instant_payouts(InstantPayouts::FallBack);
    let (alice, wallet) = h.funded(10_000).await;
    let account = h.iban_account(&alice).await;
    let unreachable = json!({"Code": "130007", "Message": "Destination Bank is not reachable"});
    let fallen_back = h
        .payout(&with(
            payout_body(&alice, &wallet, &account, 1_000, 10),
            json!({"PayoutModeRequested": "INSTANT_PAYMENT"}),
        ))
        .await
        .ok();
    assert_eq!(fallen_back["Status"], "CREATED");
    assert_eq!(fallen_back["ModeRequested"], "INSTANT_PAYMENT");
    assert_eq!(fallen_back["ModeApplied"], "STANDARD");
    assert_eq!(fallen_back["FallbackReason"], unreachable);
    assert_eq!(h.balance(&wallet).await, 9_000);
    let settled = h
        .sandbox()
        .settle_payout(&id(&fallen_back), PayoutOutcome::Succeeded)
        .unwrap();
    assert_eq!(settled["Status"], "SUCCEEDED");
    assert_eq!(settled["ModeApplied"], "STANDARD");

    let refused = h
        .payout(&with(
            payout_body(&alice, &wallet, &account, 1_000, 10),
            json!({"ModeRequested": "INSTANT_PAYMENT_ONLY"}),
        ))
        .await
        .ok();
    assert_eq!(refused["Status"], "FAILED");
    assert_eq!(refused["ResultCode"], "130007");
    assert_eq!(
        refused["ResultMessage"],
        "Destination Bank is not reachable"
    );
    assert_eq!(refused["ModeRequested"], "INSTANT_PAYMENT_ONLY");
    assert_eq!(refused["ModeApplied"], "STANDARD");
    assert_eq!(refused["FallbackReason"], unreachable);
    assert_eq!(h.balance(&wallet).await, 9_000);
    assert_eq!(h.sandbox().fees_balance("EUR"), 10);

    let check = h
        .post(
            "/payouts/reachability",
            &with(
                payout_body(&alice, &wallet, &account, 1_000, 0),
                json!({"PayoutModeRequested": "INSTANT_PAYMENT"}),
            ),
        )
        .await
        .ok();
    assert_eq!(
        check,
        json!({"InstantPayout": {"IsReachable": false, "UnreachableReason": unreachable}})
    );
}

#[tokio::test]
async fn payout_fields_and_destination_are_checked() {
    let h = start().await;
    let (alice, wallet) = h.funded(10_000).await;
    let account = h.iban_account(&alice).await;
    let (bob, bobs_wallet) = h.funded(10_000).await;
    let bobs_account = h.iban_account(&bob).await;
    let body = payout_body(&alice, &wallet, &account, 1_000, 0);

    let empty = h.payout(&json!({})).await;
    assert_eq!(
        empty.param_error_keys(),
        [
            "AuthorId",
            "BankAccountId",
            "DebitedFunds",
            "DebitedWalletId",
            "Fees"
        ]
    );
    let mode = h
        .payout(&with(
            body.clone(),
            json!({"PayoutModeRequested": "TELEPATHY", "BankWireRef": "r".repeat(256),
                   "PaymentRef": {"ReasonType": "GIFT"}}),
        ))
        .await;
    assert_eq!(
        mode.param_error_keys(),
        [
            "BankWireRef",
            "PaymentRef.ReasonType",
            "PaymentRef.ReferenceId",
            "PayoutModeRequested"
        ]
    );
    let fees = h
        .payout(&with(body.clone(), json!({"Fees": eur(1_000)})))
        .await;
    assert_eq!(fees.param_error_keys(), ["Fees"]);
    h.payout(&with(
        body.clone(),
        json!({"Fees": {"Currency": "GBP", "Amount": 0}}),
    ))
    .await
    .error(400, "currency_incompatibility");
    h.payout(&with(body.clone(), json!({"DebitedWalletId": bobs_wallet})))
        .await
        .error(400, "author_is_not_debited_wallet_owner");
    h.payout(&with(body.clone(), json!({"DebitedWalletId": "wlt_m_x"})))
        .await
        .error(404, "ressource_not_found");
    h.payout(&with(body.clone(), json!({"AuthorId": "user_m_x"})))
        .await
        .error(404, "ressource_not_found");
    h.payout(&with(body.clone(), json!({"BankAccountId": "bankacc_m_x"})))
        .await
        .error(404, "ressource_not_found");
    let others = h
        .payout(&with(body.clone(), json!({"BankAccountId": bobs_account})))
        .await;
    assert_eq!(others.param_error_keys(), ["BankAccountId"]);
    assert!(h.sandbox().payouts().is_empty());
    assert_eq!(h.balance(&wallet).await, 10_000);
    h.payout(&body).await.ok();
}

// ---------------------------------------------------------------- transactions

/// A user with a funded wallet, a second user's wallet, and in this order: a transfer, a
/// failed transfer, a pay-out, a transfer back from the second user, each a second apart.
struct History {
    alice: String,
    bob: String,
    alices_wallet: String,
    bobs_wallet: String,
    /// The transactions' ids, oldest first.
    ids: Vec<String>,
    /// Their `CreationDate`s.
    dates: Vec<i64>,
}

async fn history(h: &mut Harness) -> History {
    let (alice, alices_wallet) = h.funded(10_000).await;
    let bob = h.user("bob").await;
    let bobs_wallet = h.wallet(&bob, "EUR").await;
    let account = h.iban_account(&alice).await;
    let mut created = Vec::new();
    created.push(
        h.transfer(&transfer_body(
            &alice,
            &alices_wallet,
            &bobs_wallet,
            1_000,
            0,
            "first",
        ))
        .await
        .ok(),
    );
    h.advance(Duration::from_secs(1)).await;
    created.push(
        h.transfer(&transfer_body(
            &alice,
            &alices_wallet,
            &bobs_wallet,
            99_000,
            0,
            "failed",
        ))
        .await
        .ok(),
    );
    h.advance(Duration::from_secs(1)).await;
    created.push(
        h.payout(&with(
            payout_body(&alice, &alices_wallet, &account, 2_000, 20),
            json!({"Tag": "payout"}),
        ))
        .await
        .ok(),
    );
    h.advance(Duration::from_secs(1)).await;
    created.push(
        h.transfer(&transfer_body(
            &bob,
            &bobs_wallet,
            &alices_wallet,
            500,
            5,
            "back",
        ))
        .await
        .ok(),
    );
    History {
        alice,
        bob,
        alices_wallet,
        bobs_wallet,
        ids: created.iter().map(id).collect(),
        dates: created
            .iter()
            .map(|t| t["CreationDate"].as_i64().unwrap())
            .collect(),
    }
}

#[tokio::test]
async fn wallet_transactions_are_listed_with_their_tags_newest_first() {
    let mut h = start().await;
    let story = history(&mut h).await;
    let wallet = &story.alices_wallet;
    let all = h.get(&format!("/wallets/{wallet}/transactions")).await;
    assert_eq!(all.header("x-number-of-items"), "4");
    let all = all.ok();
    assert_eq!(ids_of(&all), story.ids);
    let mut item_keys = TRANSACTION_KEYS.to_vec();
    item_keys.push("DepositId");
    for item in all.as_array().unwrap() {
        assert_eq!(keys(item), sorted(&item_keys));
        assert!(item["DepositId"].is_null());
    }
    let tags: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["Tag"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["first", "failed", "payout", "back"]);
    assert_eq!(all[2]["Type"], "PAYOUT");
    assert!(all[2]["CreditedWalletId"].is_null());
    assert_eq!(all[2]["CreditedFunds"], eur(1_980));

    let newest = h
        .get(&format!(
            "/wallets/{wallet}/transactions?Sort=CreationDate:DESC&Per_Page=1&Page=1"
        ))
        .await;
    assert_eq!(newest.header("x-number-of-pages"), "4");
    assert_eq!(ids_of(&newest.ok()), [story.ids[3].clone()]);
    let second_page = h
        .get(&format!(
            "/wallets/{wallet}/transactions?sort=CreationDate:DESC&per_page=3&page=2"
        ))
        .await
        .ok();
    assert_eq!(ids_of(&second_page), [story.ids[0].clone()]);

    // Bob's wallet saw the two transfers to it and the one back, not the pay-out.
    let bobs = h
        .get(&format!("/wallets/{}/transactions", story.bobs_wallet))
        .await
        .ok();
    assert_eq!(
        ids_of(&bobs),
        [
            story.ids[0].clone(),
            story.ids[1].clone(),
            story.ids[3].clone()
        ]
    );
}

#[tokio::test]
async fn transaction_filters_follow_the_reference() {
    let mut h = start().await;
    let story = history(&mut h).await;
    let list = |query: String| {
        let h = &h;
        let wallet = story.alices_wallet.clone();
        async move {
            ids_of(
                &h.get(&format!("/wallets/{wallet}/transactions?{query}"))
                    .await
                    .ok(),
            )
        }
    };
    let ids = &story.ids;
    assert_eq!(list("Type=PAYOUT".into()).await, [ids[2].clone()]);
    assert_eq!(
        list("type=transfer&Status=SUCCEEDED".into()).await,
        [ids[0].clone(), ids[3].clone()]
    );
    assert_eq!(
        list("Status=Succeeded&Status=Failed".into()).await,
        [ids[0].clone(), ids[1].clone(), ids[3].clone()]
    );
    assert_eq!(
        list("Status=CREATED,FAILED".into()).await,
        [ids[1].clone(), ids[2].clone()]
    );
    assert_eq!(list("ResultCode=001001".into()).await, [ids[1].clone()]);
    assert_eq!(list("Nature=REGULAR".into()).await.len(), 4);
    assert!(list("Nature=REFUND".into()).await.is_empty());
    assert!(list("Type=PAYIN,CONVERSION".into()).await.is_empty());
    // Dates: exclusive by default.
    let dates = &story.dates;
    assert_eq!(
        list(format!("AfterDate={}", dates[1])).await,
        [ids[2].clone(), ids[3].clone()]
    );
    assert_eq!(
        list(format!("BeforeDate={}&AfterDate={}", dates[3], dates[0])).await,
        [ids[1].clone(), ids[2].clone()]
    );
    h.sandbox()
        .knobs()
        .set_date_filter_bounds(DateFilterBounds::Inclusive);
    assert_eq!(
        list(format!("AfterDate={}", dates[1])).await,
        [ids[1].clone(), ids[2].clone(), ids[3].clone()]
    );
    assert_eq!(
        list(format!(
            "BeforeDate={}&AfterDate={}&Sort=CreationDate:DESC",
            dates[2], dates[1]
        ))
        .await,
        [ids[2].clone(), ids[1].clone()]
    );

    let wallet = &story.alices_wallet;
    let bad = h
        .get(&format!(
            "/wallets/{wallet}/transactions?Status=LOST&Type=GIFT&AfterDate=yesterday"
        ))
        .await;
    assert_eq!(bad.param_error_keys(), ["AfterDate", "Status", "Type"]);
}

#[tokio::test]
async fn user_transactions_are_those_the_user_authored() {
    let mut h = start().await;
    let story = history(&mut h).await;
    let alices = h
        .get(&format!(
            "/users/{}/transactions?Sort=CreationDate:DESC",
            story.alice
        ))
        .await;
    assert_eq!(alices.header("x-number-of-items"), "3");
    assert_eq!(
        ids_of(&alices.ok()),
        [
            story.ids[2].clone(),
            story.ids[1].clone(),
            story.ids[0].clone()
        ]
    );
    let bobs = h
        .get(&format!("/users/{}/transactions", story.bob))
        .await
        .ok();
    assert_eq!(ids_of(&bobs), [story.ids[3].clone()]);
    h.get("/users/user_m_missing/transactions")
        .await
        .error(404, "ressource_not_found");
}

#[tokio::test]
async fn transaction_lists_lag_like_the_other_lists() {
    let mut h = start().await;
    let story = history(&mut h).await;
    h.advance(Duration::from_secs(31)).await;
    h.sandbox().knobs().set_list_lag(Duration::from_secs(30));
    let late = h
        .transfer(&transfer_body(
            &story.alice,
            &story.alices_wallet,
            &story.bobs_wallet,
            10,
            0,
            "late",
        ))
        .await
        .ok();
    let path = format!("/wallets/{}/transactions", story.alices_wallet);
    let lagging = h.get(&path).await;
    assert_eq!(lagging.header("x-number-of-items"), "4");
    assert!(!ids_of(&lagging.ok()).contains(&id(&late)));
    h.get(&format!("/transfers/{}", id(&late))).await.ok();
    h.advance(Duration::from_secs(31)).await;
    let caught_up = h.get(&format!("{path}?Sort=CreationDate:DESC")).await.ok();
    assert_eq!(caught_up[0]["Tag"], "late");
}

// ---------------------------------------------------------------- balances and controls

#[tokio::test]
async fn balances_add_up_after_a_scripted_series() {
    let mut h = start().await;
    h.sandbox().knobs().set_payout_settle_after(Some(HOUR));
    let (alice, a) = h.funded(0).await;
    let bob = h.user("bob").await;
    let b = h.wallet(&bob, "EUR").await;
    let c = h.wallet(&bob, "EUR").await;
    let account = h.iban_account(&bob).await;
    let credited = [50_000, 7_000, 12_345];
    for amount in credited {
        h.credit(&a, amount).await;
    }
    let mut outgoing = 0;
    for (amount, fees) in [(10_000, 150), (2_500, 0), (80_000, 10), (3_333, 33)] {
        let transfer = h
            .transfer(&transfer_body(&alice, &a, &b, amount, fees, "series"))
            .await
            .ok();
        assert_eq!(
            transfer["Status"],
            if amount == 80_000 {
                "FAILED"
            } else {
                "SUCCEEDED"
            }
        );
    }
    h.transfer(&transfer_body(&bob, &b, &c, 4_000, 40, "inner"))
        .await
        .ok();
    // One pay-out succeeds by the delay, one fails by control, one stays pending.
    let body = |amount: i64, fees: i64| payout_body(&bob, &b, &account, amount, fees);
    let first = h.payout(&body(3_000, 30)).await.ok();
    outgoing += first["CreditedFunds"]["Amount"].as_i64().unwrap();
    let refused = id(&h.payout(&body(1_000, 10)).await.ok());
    h.control(
        &format!("/_sandbox/payouts/{refused}/settle"),
        &json!({"Status": "FAILED"}),
    )
    .await
    .ok();
    h.advance(HOUR).await;
    let pending = h.payout(&body(500, 5)).await.ok();
    outgoing += pending["CreditedFunds"]["Amount"].as_i64().unwrap();
    h.payout(&body(1_000_000, 0)).await.ok();

    let balances: i64 = [&a, &b, &c]
        .iter()
        .map(|w| {
            h.sandbox().wallet(w).unwrap()["Balance"]["Amount"]
                .as_i64()
                .unwrap()
        })
        .sum();
    let fees = h.sandbox().fees_balance("EUR");
    assert_eq!(fees, 150 + 33 + 40 + 30 + 5);
    assert_eq!(
        balances + fees + outgoing,
        credited.iter().sum::<i64>(),
        "every minor unit is accounted for"
    );
    assert_eq!(h.balance(&a).await, 69_345 - 10_000 - 2_500 - 3_333);
    assert_eq!(h.balance(&c).await, 3_960);
    let statuses: Vec<String> = h
        .sandbox()
        .payouts()
        .iter()
        .map(|p| p["Status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses, ["SUCCEEDED", "FAILED", "CREATED", "FAILED"]);
}

#[tokio::test]
async fn control_requests_need_no_token_and_escape_faults_and_the_log() {
    let h = start().await;
    let (_, wallet) = h.funded(0).await;
    h.sandbox().clear_request_log();
    h.sandbox().knobs().fail_next(1);
    h.sandbox().knobs().set_rate_limit(Some(0));
    let credited = h
        .control(
            &format!("/_sandbox/wallets/{wallet}/credit"),
            &json!({"Amount": 10_000}),
        )
        .await
        .ok();
    assert_eq!(credited["Balance"], eur(10_000));
    assert_eq!(credited, h.sandbox().wallet(&wallet).unwrap());
    // Path tolerance as on the API.
    let again = answer(
        h.http
            .post(h.url(&format!("/_sandbox//wallets/{wallet}/credit/")))
            .json(&json!({"Amount": "5"})),
    )
    .await
    .ok();
    assert_eq!(again["Balance"]["Amount"], 10_005);
    h.sandbox().knobs().set_unavailable(true);
    h.control(
        &format!("/_sandbox/wallets/{wallet}/credit"),
        &json!({"Amount": 1}),
    )
    .await
    .ok();
    h.sandbox().knobs().set_unavailable(false);
    assert!(h.sandbox().request_log().is_empty());
    // The armed failure is still there for the next API call.
    h.sandbox().knobs().set_rate_limit(None);
    h.get(&format!("/wallets/{wallet}"))
        .await
        .error(500, "internal_server_error");

    h.control(
        &format!("/_sandbox/wallets/{wallet}/credit"),
        &json!({"Amount": -1}),
    )
    .await
    .param_errors();
    h.control(&format!("/_sandbox/wallets/{wallet}/credit"), &json!({}))
        .await
        .param_errors();
    h.control("/_sandbox/wallets/wlt_m_x/credit", &json!({"Amount": 1}))
        .await
        .error(404, "ressource_not_found");
    assert_eq!(h.sandbox().credit_wallet("wlt_m_x", 1), None);
    assert_eq!(h.sandbox().credit_wallet(&wallet, -1), None);
    assert_eq!(
        h.sandbox().credit_wallet(&wallet, 4).unwrap()["Balance"]["Amount"],
        10_010
    );
    assert_eq!(h.sandbox().credit_wallet(&wallet, i64::MAX), None);
    assert_eq!(h.balance(&wallet).await, 10_010);
}

#[tokio::test]
async fn money_paths_tolerate_the_case_of_fixed_words() {
    let h = start().await;
    let (alice, wallet) = h.funded(100).await;
    h.get(&format!("/Wallets/{wallet}/Transactions/"))
        .await
        .ok();
    h.get(&format!("/USERS/{alice}/wallets")).await.ok();
    let account = h.iban_account(&alice).await;
    h.post(
        "/Payouts/Reachability",
        &with(
            payout_body(&alice, &wallet, &account, 10, 0),
            json!({"PayoutModeRequested": "INSTANT_PAYMENT"}),
        ),
    )
    .await
    .ok();
}
