//! Loopback tests of card registrations, the tokenization server, cards, direct and web card
//! pay-ins, bank wires, their settlement (control request, Rust method, knob) and refunds.

use std::time::Duration;

use chrono::Datelike as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::test_cards::{
    CHALLENGE, DO_NOT_HONOR, FRICTIONLESS, FRICTIONLESS_2, THREE_DS_NOT_AVAILABLE,
};
use super::tests_harness::{self as harness, Answer, Harness, answer};
use super::{PayInOutcome, PayoutOutcome};

const HOUR: Duration = Duration::from_secs(3600);

async fn start() -> Harness {
    harness::start(23).await
}

fn id(value: &Value) -> String {
    value["Id"].as_str().expect("an Id").to_owned()
}

fn eur(amount: i64) -> Value {
    json!({"Currency": "EUR", "Amount": amount})
}

/// `application/x-www-form-urlencoded` of `pairs`.
fn form(pairs: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn browser_info() -> Value {
    json!({"AcceptHeader": "text/html, application/xhtml+xml, application/xml;q=0.9, /;q=0.8",
           "JavaEnabled": true, "Language": "en", "ColorDepth": 4, "ScreenHeight": 1800,
           "ScreenWidth": 400, "TimeZoneOffset": 60, "JavascriptEnabled": true,
           "UserAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 13_6_1 like Mac OS X)"})
}

impl Harness {
    async fn card_user(&self) -> String {
        let body = json!({"UserCategory": "OWNER", "TermsAndConditionsAccepted": true,
            "FirstName": "Alex", "LastName": "Smith", "Email": "alex.smith@example.com",
            "Birthday": 652117514, "Nationality": "FR", "CountryOfResidence": "FR"});
        id(self.post("/users/natural", &body).await.ok())
    }

    async fn wallet(&self, owner: &str, currency: &str) -> String {
        let body = json!({"Owners": [owner], "Currency": currency, "Description": "Wallet"});
        id(self.post("/wallets", &body).await.ok())
    }

    async fn balance(&self, wallet: &str) -> i64 {
        self.get(&format!("/wallets/{wallet}")).await.ok()["Balance"]["Amount"]
            .as_i64()
            .unwrap()
    }

    async fn registration(&self, user: &str, currency: &str) -> Value {
        let body = json!({"UserId": user, "Currency": currency, "Tag": "card of alex"});
        self.post("/cardregistrations", &body).await.ok().clone()
    }

    /// An expiry date two years ahead of the sandbox clock, `MMYY`.
    fn expiry(&self) -> String {
        let now = self.sandbox().clock().now();
        format!("{:02}{:02}", now.month(), (now.year() + 2) % 100)
    }

    /// The tokenization POST, as the SDKs' test helpers send it: a form, no authentication.
    async fn tokenize_form(&self, registration: &Value, pairs: &[(&str, &str)]) -> Answer {
        let url = registration["CardRegistrationURL"].as_str().unwrap();
        answer(
            self.http
                .post(url)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(form(pairs)),
        )
        .await
    }

    async fn tokenize(
        &self,
        registration: &Value,
        number: &str,
        expiry: &str,
        cvx: &str,
    ) -> Answer {
        let data = registration["PreregistrationData"].as_str().unwrap();
        let key = registration["AccessKey"].as_str().unwrap();
        self.tokenize_form(
            registration,
            &[
                ("data", data),
                ("accessKeyRef", key),
                ("cardNumber", number),
                ("cardExpirationDate", expiry),
                ("cardCvx", cvx),
            ],
        )
        .await
    }

    /// The tokenizer's answer for a valid card: `data=<token>`.
    async fn token(&self, registration: &Value, number: &str) -> String {
        let answer = self
            .tokenize(registration, number, &self.expiry(), "123")
            .await;
        assert_eq!(answer.status, StatusCode::OK);
        assert!(answer.text.starts_with("data="), "{}", answer.text);
        answer.text
    }

    async fn update(&self, registration: &Value, data: &str) -> Answer {
        self.put(
            &format!("/cardregistrations/{}", id(registration)),
            &json!({"RegistrationData": data, "CardHolderName": "Alex Smith"}),
        )
        .await
    }

    /// A registered card of `user` in EUR.
    async fn card(&self, user: &str, number: &str) -> String {
        let registration = self.registration(user, "EUR").await;
        let token = self.token(&registration, number).await;
        let updated = self.update(&registration, &token).await;
        updated.ok()["CardId"].as_str().unwrap().to_owned()
    }

    /// A user, its EUR wallet and a card with `number`.
    async fn payer(&self, number: &str) -> (String, String, String) {
        let user = self.card_user().await;
        let wallet = self.wallet(&user, "EUR").await;
        let card = self.card(&user, number).await;
        (user, wallet, card)
    }

    async fn direct(&self, body: &Value) -> Answer {
        self.post("/payins/card/direct", body).await
    }

    async fn refund(&self, payin: &str, body: &Value) -> Answer {
        self.post(&format!("/payins/{payin}/refunds"), body).await
    }

    async fn settle(&self, payin: &str, body: &Value) -> Answer {
        self.control(&format!("/_sandbox/payins/{payin}/settle"), body)
            .await
    }
}

fn direct_body(author: &str, wallet: &str, card: &str, amount: i64, fees: i64) -> Value {
    json!({"AuthorId": author, "CreditedWalletId": wallet, "CardId": card,
           "DebitedFunds": eur(amount), "Fees": eur(fees),
           "SecureModeReturnURL": "https://example.com/return", "StatementDescriptor": "Shop 42",
           "BrowserInfo": browser_info(), "IpAddress": "2001:0620:0000:0000:0211:24FF:FE80:C12C",
           "Tag": "order-1"})
}

fn with(mut body: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

// ---------------------------------------------------------------- registrations and cards

#[tokio::test]
async fn a_card_is_registered_tokenized_and_created() {
    let h = start().await;
    let user = h.card_user().await;
    let registration = h.registration(&user, "EUR").await;
    let reg_id = id(&registration);
    assert!(reg_id.starts_with("cardreg_m_"), "{reg_id}");
    assert_eq!(registration["Status"], "CREATED");
    assert_eq!(registration["CardType"], "CB_VISA_MASTERCARD");
    assert_eq!(registration["Currency"], "EUR");
    assert_eq!(registration["UserId"], user.as_str());
    assert_eq!(registration["Tag"], "card of alex");
    assert!(registration["CreationDate"].is_i64());
    for key in ["RegistrationData", "CardId", "ResultCode", "ResultMessage"] {
        assert!(registration[key].is_null(), "{key}");
    }
    assert_eq!(registration["AccessKey"].as_str().unwrap().len(), 20);
    assert!(registration["PreregistrationData"].as_str().unwrap().len() > 40);
    assert_eq!(
        registration["CardRegistrationURL"],
        format!("{}/_sandbox/tokenize/{reg_id}", h.running.base_url())
    );

    let tokenized = h
        .tokenize(&registration, FRICTIONLESS, &h.expiry(), "123")
        .await;
    assert_eq!(tokenized.status, StatusCode::OK);
    assert!(tokenized.header("content-type").starts_with("text/plain"));
    assert_eq!(tokenized.header("access-control-allow-origin"), "*");
    let token = tokenized.text.clone();
    assert!(token.starts_with("data=") && token.len() > 100, "{token}");

    // Python sends every field back, Node a nested `data` copy: both ignored.
    let mut python_style = registration.clone();
    python_style["RegistrationData"] = json!(token);
    python_style["CardHolderName"] = json!("Alex Smith");
    python_style["data"] = registration.clone();
    python_style["Status"] = json!("ERROR");
    let updated = h
        .put(&format!("/CardRegistrations/{reg_id}"), &python_style)
        .await
        .ok()
        .clone();
    assert_eq!(updated["Status"], "VALIDATED");
    assert_eq!(updated["ResultCode"], "000000");
    assert_eq!(updated["ResultMessage"], "Success");
    assert_eq!(updated["RegistrationData"], json!(token));
    assert_eq!(updated["AccessKey"], registration["AccessKey"]);
    let card_id = updated["CardId"].as_str().unwrap().to_owned();
    assert!(card_id.starts_with("card_m_"));
    assert_eq!(
        h.get(&format!("/cardregistrations/{reg_id}")).await.ok(),
        &updated
    );

    let card = h.get(&format!("/cards/{card_id}")).await.ok().clone();
    let expected = json!({
        "ExpirationDate": h.expiry(), "Alias": "497010XXXXXX1119",
        "CardType": "CB_VISA_MASTERCARD", "CardProvider": "VISA", "Country": "FRA",
        "Product": "I", "BankCode": "unknown", "Active": true, "Currency": "EUR",
        "Validity": "UNKNOWN", "UserId": user, "Id": card_id, "Tag": "card of alex",
        "CreationDate": card["CreationDate"], "Fingerprint": card["Fingerprint"],
        "CardHolderName": "Alex Smith"});
    assert_eq!(card, expected);
    let fingerprint = card["Fingerprint"].as_str().unwrap();
    assert_eq!(fingerprint.len(), 32);
    assert!(fingerprint.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(h.sandbox().cards(), std::slice::from_ref(&card));
    assert_eq!(
        h.sandbox().card_registrations(),
        std::slice::from_ref(&updated)
    );

    // The same number gives the same fingerprint, another number another one.
    let same = h.card(&user, FRICTIONLESS).await;
    let other = h.card(&user, FRICTIONLESS_2).await;
    let fingerprint_of = |card: &str| {
        let h = &h;
        let card = card.to_owned();
        async move { h.get(&format!("/cards/{card}")).await.ok()["Fingerprint"].clone() }
    };
    assert_eq!(fingerprint_of(&same).await, card["Fingerprint"]);
    assert_ne!(fingerprint_of(&other).await, card["Fingerprint"]);

    // A validated registration cannot be updated again.
    let again = h.update(&registration, &token).await;
    assert!(again.error(400, "invalid_action").is_null());
    // The card number and CVC are kept nowhere.
    let everything = format!(
        "{:?}{:?}{:?}",
        h.sandbox().cards(),
        h.sandbox().card_registrations(),
        h.sandbox().request_log()
    );
    assert!(!everything.contains(FRICTIONLESS) && !everything.contains("4970105181818183"));
}

#[tokio::test]
async fn registration_fields_are_checked() {
    let h = start().await;
    let unknown = h
        .post(
            "/cardregistrations",
            &json!({"UserId": "user_m_nobody", "Currency": "EUR"}),
        )
        .await;
    assert_eq!(
        unknown.error(404, "ressource_not_found")["RessourceNotFound"],
        "Cannot found the ressource User with the id=user_m_nobody"
    );
    let user = h.card_user().await;
    let bad = h
        .post(
            "/cardregistrations",
            &json!({"UserId": user, "Currency": "XYZ", "CardType": "DINERS"}),
        )
        .await;
    let errors = bad.error(400, "param_error");
    assert_eq!(
        errors.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["CardType", "Currency"]
    );
    let missing = h.post("/cardregistrations", &json!({})).await;
    let errors = missing.error(400, "param_error");
    assert_eq!(
        errors.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["Currency", "UserId"]
    );
    let amex = h
        .post(
            "/cardregistrations",
            &json!({"UserId": user, "Currency": "gbp", "CardType": "amex"}),
        )
        .await;
    assert_eq!(amex.ok()["CardType"], "AMEX");
    assert_eq!(amex.body["Currency"], "GBP");
    h.get("/cardregistrations/cardreg_m_nothing")
        .await
        .error(404, "ressource_not_found");
    let no_data = h
        .put(
            &format!("/cardregistrations/{}", id(&amex.body)),
            &json!({"CardHolderName": "A"}),
        )
        .await;
    let errors = no_data.error(400, "param_error");
    assert_eq!(
        errors["CardHolderName"],
        "The field CardHolderName must be between 2 and 255 characters long."
    );
    assert!(errors["RegistrationData"].is_string());
}

#[tokio::test]
async fn tokenization_errors_are_plain_text_codes() {
    let h = start().await;
    let user = h.card_user().await;
    let registration = h.registration(&user, "EUR").await;
    let data = registration["PreregistrationData"].as_str().unwrap();
    let key = registration["AccessKey"].as_str().unwrap();
    let expiry = h.expiry();
    let mismatches = [
        vec![("data", "wrong"), ("accessKeyRef", key)],
        vec![("data", data), ("accessKeyRef", "wrong")],
        vec![("accessKeyRef", key)],
    ];
    for mismatch in mismatches {
        let mut pairs = mismatch.clone();
        pairs.extend([
            ("cardNumber", FRICTIONLESS),
            ("cardExpirationDate", expiry.as_str()),
            ("cardCvx", "123"),
        ]);
        let answer = h.tokenize_form(&registration, &pairs).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.text, "errorCode=09101");
        assert!(answer.header("content-type").starts_with("text/plain"));
    }
    let unknown = answer(
        h.http
            .post(h.url("/_sandbox/tokenize/cardreg_m_nothing"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form(&[("data", data), ("accessKeyRef", key)])),
    )
    .await;
    assert_eq!(unknown.text, "errorCode=09101");

    let cases = [
        (
            "4970107111111118",
            expiry.as_str(),
            "123",
            "errorCode=105202",
        ),
        ("49701071111", expiry.as_str(), "123", "errorCode=105202"),
        (
            "4970 1071 1111 1119",
            expiry.as_str(),
            "123",
            "errorCode=105202",
        ),
        (
            "49701071111111191111",
            expiry.as_str(),
            "123",
            "errorCode=105202",
        ),
        ("", expiry.as_str(), "123", "errorCode=105202"),
        (FRICTIONLESS, "0120", "123", "errorCode=105203"),
        (FRICTIONLESS, "1340", "123", "errorCode=105203"),
        (FRICTIONLESS, "12/40", "123", "errorCode=105203"),
        (FRICTIONLESS, "", "123", "errorCode=105203"),
        (FRICTIONLESS, expiry.as_str(), "12", "errorCode=105204"),
        (FRICTIONLESS, expiry.as_str(), "12345", "errorCode=105204"),
        (FRICTIONLESS, expiry.as_str(), "abc", "errorCode=105204"),
    ];
    for (number, expiry, cvx, expected) in cases {
        let answer = h.tokenize(&registration, number, expiry, cvx).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.text, expected, "{number} {expiry} {cvx}");
    }
    // This month is not in the past; a 4-digit CVC and a 19-digit number are fine.
    let now = h.sandbox().clock().now();
    let this_month = format!("{:02}{:02}", now.month(), now.year() % 100);
    let ok = h
        .tokenize(&registration, FRICTIONLESS, &this_month, "1234")
        .await;
    assert!(ok.text.starts_with("data="), "{}", ok.text);
    let long = h
        .tokenize(&registration, "4970101234567890127", &expiry, "123")
        .await;
    assert!(long.text.starts_with("data="), "{}", long.text);
}

#[tokio::test]
async fn wrong_or_reused_tokens_leave_the_registration_in_error() {
    let h = start().await;
    let user = h.card_user().await;

    let garbled = h.registration(&user, "EUR").await;
    h.token(&garbled, FRICTIONLESS).await;
    let error = h.update(&garbled, "data=not-a-token").await.ok().clone();
    assert_eq!(error["Status"], "ERROR");
    assert_eq!(error["ResultCode"], "105299");
    assert_eq!(error["ResultMessage"], "Token input Error");
    assert_eq!(error["RegistrationData"], "data=not-a-token");
    assert!(error["CardId"].is_null());
    // An ERROR registration is done with.
    assert!(
        h.update(&garbled, "data=other")
            .await
            .error(400, "invalid_action")
            .is_null()
    );

    // The token of another registration.
    let first = h.registration(&user, "EUR").await;
    let second = h.registration(&user, "EUR").await;
    let token_of_first = h.token(&first, FRICTIONLESS).await;
    let crossed = h.update(&second, &token_of_first).await.ok().clone();
    assert_eq!(crossed["Status"], "ERROR");
    assert_eq!(crossed["ResultCode"], "105299");

    // A token used once cannot make a second card.
    let used = h.update(&first, &token_of_first).await.ok().clone();
    assert_eq!(used["Status"], "VALIDATED");
    let third = h.registration(&user, "EUR").await;
    let reused = h.update(&third, &token_of_first).await.ok().clone();
    assert_eq!(reused["Status"], "ERROR");
    assert_eq!(h.sandbox().cards().len(), 1);

    // Once the registration left CREATED, its tokenization is refused too.
    let late = h.tokenize(&first, FRICTIONLESS, &h.expiry(), "123").await;
    assert_eq!(late.text, "errorCode=09101");
}

#[tokio::test]
async fn the_card_kit_finishes_a_registration_without_a_token() {
    let h = start().await;
    let user = h.card_user().await;
    let registration = h.registration(&user, "EUR").await;
    let token = h.token(&registration, FRICTIONLESS).await;
    let client = h.sandbox().config().client_id.clone();
    let reg_id = id(&registration);
    let finish = |body: String, content_type: &'static str| {
        h.http
            .post(h.url(&format!("/v2.01/{client}/CardRegistrations/{reg_id}")))
            .header("Content-Type", content_type)
            .body(body)
    };
    // Anything but the form stays behind authentication.
    let json_body = json!({"RegistrationData": token}).to_string();
    answer(finish(json_body, "application/json"))
        .await
        .error(401, "invalid_credentials");
    let elsewhere = answer(
        h.http
            .post(h.api("/wallets"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("Owners=x"),
    )
    .await;
    elsewhere.error(401, "invalid_credentials");

    let body = form(&[
        ("Id", reg_id.as_str()),
        ("RegistrationData", token.as_str()),
    ]);
    let finished = answer(finish(
        body,
        "application/x-www-form-urlencoded; charset=UTF-8",
    ))
    .await;
    assert_eq!(finished.ok()["Status"], "VALIDATED");
    assert_eq!(finished.body["ResultCode"], "000000");
    assert!(finished.body["CardId"].is_string());
    assert_eq!(finished.header("access-control-allow-origin"), "*");
}

#[tokio::test]
async fn cards_are_listed_and_deactivated_for_good() {
    let h = start().await;
    let (user, wallet, first) = h.payer(FRICTIONLESS).await;
    let second = h.card(&user, FRICTIONLESS_2).await;
    let other = h.card_user().await;
    h.card(&other, FRICTIONLESS).await;

    let page = h
        .get(&format!("/users/{user}/cards?per_page=1&page=2"))
        .await;
    assert_eq!(page.ok().as_array().unwrap().len(), 1);
    assert_eq!(page.body[0]["Id"], second.as_str());
    assert_eq!(page.header("x-number-of-items"), "2");
    assert_eq!(page.header("x-number-of-pages"), "2");
    let newest = h
        .get(&format!("/users/{user}/cards?Sort=CreationDate:DESC"))
        .await;
    let ids: Vec<&str> = newest
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [second.as_str(), first.as_str()]);
    h.get("/users/user_m_nobody/cards")
        .await
        .error(404, "ressource_not_found");
    h.get("/cards/card_m_nothing")
        .await
        .error(404, "ressource_not_found");

    // Python sends the whole card back, booleans as integers.
    let mut python_style = h.get(&format!("/cards/{first}")).await.ok().clone();
    python_style["Active"] = json!(0);
    let deactivated = h.put(&format!("/cards/{first}"), &python_style).await;
    assert_eq!(deactivated.ok()["Active"], false);
    assert_eq!(deactivated.body["CardHolderName"], "Alex Smith");
    let twice = h
        .put(&format!("/cards/{first}"), &json!({"Active": false}))
        .await;
    assert!(twice.error(400, "card_already_not_active").is_null());
    let back = h
        .put(&format!("/cards/{first}"), &json!({"Active": true}))
        .await;
    assert!(back.error(400, "param_error")["Active"].is_string());
    let refused = h
        .direct(&direct_body(&user, &wallet, &first, 1000, 0))
        .await;
    assert_eq!(
        refused.error(400, "param_error")["CardId"],
        "The card is not active"
    );
    assert_eq!(refused.body["Message"], "The card is not active");
    assert!(h.sandbox().payins().is_empty());

    // A card holder name is added once, never changed.
    let registration = h.registration(&user, "EUR").await;
    let token = h.token(&registration, FRICTIONLESS).await;
    let nameless = h
        .put(
            &format!("/cardregistrations/{}", id(&registration)),
            &json!({"RegistrationData": token}),
        )
        .await;
    let nameless = nameless.ok()["CardId"].as_str().unwrap().to_owned();
    assert!(h.get(&format!("/cards/{nameless}")).await.ok()["CardHolderName"].is_null());
    let named = h
        .put(
            &format!("/cards/{nameless}"),
            &json!({"CardHolderName": "Sam Doe"}),
        )
        .await;
    assert_eq!(named.ok()["CardHolderName"], "Sam Doe");
    assert_eq!(named.body["Active"], true);
    let renamed = h
        .put(
            &format!("/cards/{nameless}"),
            &json!({"CardHolderName": "Kim Doe"}),
        )
        .await;
    assert!(renamed.error(400, "param_error")["cardHolderName"].is_string());
}

// ---------------------------------------------------------------- direct card pay-ins

#[tokio::test]
async fn a_direct_payin_succeeds_and_credits_the_wallet() {
    let h = start().await;
    let (user, wallet, card) = h.payer(FRICTIONLESS).await;
    // Node sends PaymentType and ExecutionType, and to a path with a trailing slash.
    let body = with(
        direct_body(&user, &wallet, &card, 10_000, 100),
        json!({"PaymentType": "CARD", "ExecutionType": "DIRECT", "Unknown": 1}),
    );
    let created = h.post("/payins/card/direct/", &body).await.ok().clone();
    let payin = id(&created);
    assert!(payin.starts_with("payin_m_"));
    let expected = json!({
        "Id": payin, "Tag": "order-1", "CreationDate": created["CreationDate"],
        "AuthorId": user, "CreditedUserId": user, "DebitedFunds": eur(10_000),
        "CreditedFunds": eur(9_900), "Fees": eur(100), "Status": "SUCCEEDED",
        "ResultCode": "000000", "ResultMessage": "Success",
        "ExecutionDate": created["CreationDate"], "Type": "PAYIN", "Nature": "REGULAR",
        "CreditedWalletId": wallet, "DebitedWalletId": null, "PaymentType": "CARD",
        "ExecutionType": "DIRECT"});
    let expected = with(
        expected,
        json!({"SecureMode": "DEFAULT", "CardId": card,
        "SecureModeReturnURL": format!("https://example.com/return?transactionId={payin}"),
        "SecureModeRedirectURL": null, "SecureModeNeeded": false, "Culture": "EN",
        "SecurityInfo": {"AVSResult": "NO_CHECK"}, "StatementDescriptor": "Shop 42",
        "BrowserInfo": browser_info(), "IpAddress": "2001:0620:0000:0000:0211:24FF:FE80:C12C",
        "Billing": null, "Shipping": null, "Requested3DSVersion": null,
        "Applied3DSVersion": null, "RecurringPayinRegistrationId": null,
        "PreferredCardNetwork": null, "PaymentCategory": "ECommerce",
        "CardInfo": {"BIN": "497010", "IssuingBank": "LA BANQUE POSTALE",
                     "IssuerCountryCode": "FR", "Type": "CREDIT", "Brand": "VISA",
                     "SubType": null}}),
    );
    assert_eq!(created, expected);
    assert_eq!(h.balance(&wallet).await, 9_900);
    assert_eq!(h.sandbox().fees_balance("EUR"), 100);
    assert_eq!(
        h.get(&format!("/cards/{card}")).await.ok()["Validity"],
        "VALID"
    );

    assert_eq!(h.get(&format!("/payins/{payin}")).await.ok(), &created);
    assert_eq!(
        h.get(&format!("/payins/card/direct/{payin}")).await.ok(),
        &created
    );
    h.get(&format!("/payins/card/web/{payin}"))
        .await
        .error(404, "ressource_not_found");
    h.get("/payins/payin_m_nothing")
        .await
        .error(404, "ressource_not_found");
    assert_eq!(h.sandbox().payins(), std::slice::from_ref(&created));
    assert_eq!(h.sandbox().payin(&payin), Some(created.clone()));

    for path in [
        format!("/wallets/{wallet}/transactions"),
        format!("/users/{user}/transactions?Type=PAYIN"),
    ] {
        let listed = h.get(&path).await.ok().clone();
        assert_eq!(listed.as_array().unwrap().len(), 1, "{path}");
        assert_eq!(listed[0]["Id"], payin.as_str());
        assert_eq!(listed[0]["Type"], "PAYIN");
        assert_eq!(listed[0]["CreditedFunds"], eur(9_900));
    }
}

#[tokio::test]
async fn a_refused_payin_credits_nothing() {
    let h = start().await;
    let (user, wallet, card) = h.payer(DO_NOT_HONOR).await;
    let refused = h
        .direct(&direct_body(&user, &wallet, &card, 5_000, 50))
        .await;
    assert_eq!(refused.ok()["Status"], "FAILED");
    assert_eq!(refused.body["ResultCode"], "101101");
    assert_eq!(
        refused.body["ResultMessage"],
        "Transaction refused by the bank (Do not honor)"
    );
    assert!(refused.body["ExecutionDate"].is_null());
    assert_eq!(h.balance(&wallet).await, 0);
    assert_eq!(h.sandbox().fees_balance("EUR"), 0);
    assert_eq!(
        h.get(&format!("/cards/{card}")).await.ok()["Validity"],
        "INVALID"
    );
    let failed = h
        .get(&format!(
            "/wallets/{wallet}/transactions?Status=FAILED&ResultCode=101101"
        ))
        .await;
    assert_eq!(failed.ok().as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn direct_payin_fields_are_checked() {
    let h = start().await;
    let (user, wallet, card) = h.payer(FRICTIONLESS).await;
    let keys = |answer: &Answer| -> Vec<String> {
        answer
            .error(400, "param_error")
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let empty = h.direct(&json!({})).await;
    assert_eq!(
        keys(&empty),
        [
            "AuthorId",
            "BrowserInfo",
            "CardId",
            "CreditedWalletId",
            "DebitedFunds",
            "Fees",
            "IpAddress",
            "SecureModeReturnURL"
        ]
    );
    let mut partial_info = browser_info();
    partial_info.as_object_mut().unwrap().remove("UserAgent");
    partial_info["JavaEnabled"] = json!("maybe");
    let bad = h
        .direct(&with(
            direct_body(&user, &wallet, &card, 1_000, 1_000),
            json!({"StatementDescriptor": "Far too long text", "SecureMode": "SOMETIMES",
                   "IpAddress": "not-an-ip", "BrowserInfo": partial_info, "Culture": "XX"}),
        ))
        .await;
    assert_eq!(
        keys(&bad),
        [
            "BrowserInfo.JavaEnabled",
            "BrowserInfo.UserAgent",
            "Culture",
            "Fees",
            "IpAddress",
            "SecureMode",
            "StatementDescriptor"
        ]
    );
    let symbols = h
        .direct(&with(
            direct_body(&user, &wallet, &card, 1_000, 0),
            json!({"StatementDescriptor": "Shop-42!"}),
        ))
        .await;
    assert_eq!(keys(&symbols), ["StatementDescriptor"]);

    let nobody = h
        .direct(&direct_body("user_m_nobody", &wallet, &card, 1_000, 0))
        .await;
    nobody.error(404, "ressource_not_found");
    let no_wallet = h
        .direct(&direct_body(&user, "wlt_m_nothing", &card, 1_000, 0))
        .await;
    no_wallet.error(404, "ressource_not_found");
    let no_card = h
        .direct(&direct_body(&user, &wallet, "card_m_nothing", 1_000, 0))
        .await;
    no_card.error(404, "ressource_not_found");
    let gbp = h.wallet(&user, "GBP").await;
    let currency = h.direct(&direct_body(&user, &gbp, &card, 1_000, 0)).await;
    currency.error(400, "currency_incompatibility");
    let gbp_funds = with(
        direct_body(&user, &gbp, &card, 0, 0),
        json!({"DebitedFunds": {"Currency": "GBP", "Amount": 1000},
               "Fees": {"Currency": "GBP", "Amount": 0}}),
    );
    let card_currency = h.direct(&gbp_funds).await;
    assert_eq!(
        card_currency.error(400, "currency_incompatibility")["currency"],
        "The card's currency EUR and the debitedAmount's currency GBP must be the same"
    );
    let stranger = h.card_user().await;
    let not_theirs = h
        .direct(&direct_body(&stranger, &wallet, &card, 1_000, 0))
        .await;
    assert!(not_theirs.error(400, "param_error")["CardId"].is_string());
    assert!(h.sandbox().payins().is_empty());
    assert_eq!(h.balance(&wallet).await, 0);
}

#[tokio::test]
async fn three_ds_payins_wait_for_their_settlement() {
    let h = start().await;
    let (user, wallet, card) = h.payer(CHALLENGE).await;
    let created = h
        .direct(&direct_body(&user, &wallet, &card, 2_000, 200))
        .await
        .ok()
        .clone();
    let payin = id(&created);
    assert_eq!(created["Status"], "CREATED");
    assert_eq!(created["SecureModeNeeded"], true);
    assert!(created["ResultCode"].is_null() && created["ExecutionDate"].is_null());
    assert_eq!(created["Applied3DSVersion"], "V2_1");
    let redirect = created["SecureModeRedirectURL"].as_str().unwrap();
    assert_eq!(
        redirect,
        format!("{}/_sandbox/secure-mode/{payin}", h.running.base_url())
    );
    let page = answer(h.http.get(redirect)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.header("content-type").starts_with("text/html"));
    assert!(page.text.contains(&payin));
    assert_eq!(h.balance(&wallet).await, 0);
    assert_eq!(
        h.get(&format!("/cards/{card}")).await.ok()["Validity"],
        "UNKNOWN"
    );

    let settled = h.settle(&payin, &json!({"Status": "SUCCEEDED"})).await;
    assert_eq!(settled.ok()["Status"], "SUCCEEDED");
    assert_eq!(settled.body["ResultCode"], "000000");
    assert!(settled.body["ExecutionDate"].is_i64());
    assert_eq!(&settled.body, &h.sandbox().payin(&payin).unwrap());
    assert_eq!(h.balance(&wallet).await, 1_800);
    assert_eq!(h.sandbox().fees_balance("EUR"), 200);
    assert_eq!(
        h.get(&format!("/cards/{card}")).await.ok()["Validity"],
        "VALID"
    );
    let again = h.settle(&payin, &json!({"Status": "FAILED"})).await;
    assert!(again.error(400, "invalid_action").is_null());
    h.settle("payin_m_nothing", &json!({"Status": "SUCCEEDED"}))
        .await
        .error(404, "ressource_not_found");

    // A frictionless card with SecureMode FORCE needs 3-D Secure too; a failure credits nothing.
    let (user, wallet, card) = h.payer(FRICTIONLESS).await;
    let forced = h
        .direct(&with(
            direct_body(&user, &wallet, &card, 2_000, 0),
            json!({"SecureMode": "FORCE"}),
        ))
        .await
        .ok()
        .clone();
    assert_eq!(forced["Status"], "CREATED");
    assert_eq!(forced["SecureMode"], "FORCE");
    let forced = id(&forced);
    let amount = h
        .settle(&forced, &json!({"Status": "SUCCEEDED", "Amount": 10}))
        .await;
    assert!(amount.error(400, "param_error")["Amount"].is_string());
    let failed = h
        .settle(
            &forced,
            &json!({"Status": "FAILED", "ResultCode": "101304",
                    "ResultMessage": "SecureMode: The 3DSecure authentication session has expired"}),
        )
        .await;
    assert_eq!(failed.ok()["Status"], "FAILED");
    assert_eq!(failed.body["ResultCode"], "101304");
    assert_eq!(h.balance(&wallet).await, 0);
    assert_eq!(
        h.get(&format!("/cards/{card}")).await.ok()["Validity"],
        "INVALID"
    );
}

#[tokio::test]
async fn the_three_ds_failure_card_fails_at_settlement() {
    let h = start().await;
    let (user, wallet, card) = h.payer(THREE_DS_NOT_AVAILABLE).await;
    let created = h
        .direct(&direct_body(&user, &wallet, &card, 3_000, 0))
        .await
        .ok()
        .clone();
    assert_eq!(created["Status"], "CREATED");
    assert_eq!(created["SecureModeNeeded"], true);
    let settled = h
        .sandbox()
        .settle_payin(&id(&created), PayInOutcome::Succeeded)
        .unwrap();
    assert_eq!(settled["Status"], "FAILED");
    assert_eq!(settled["ResultCode"], "101399");
    assert_eq!(
        settled["ResultMessage"],
        "Secure mode: 3DSecure authentication is not available"
    );
    assert_eq!(h.balance(&wallet).await, 0);
    assert_eq!(
        h.get(&format!("/cards/{card}")).await.ok()["Validity"],
        "INVALID"
    );
    let again = h
        .sandbox()
        .settle_payin(&id(&created), PayInOutcome::Succeeded)
        .unwrap_err();
    assert!(again.contains("FAILED"), "{again}");
    assert!(
        h.sandbox()
            .settle_payin("payin_m_nothing", PayInOutcome::Succeeded)
            .is_err()
    );
}

// ---------------------------------------------------------------- web card pay-ins and bank wires

#[tokio::test]
async fn web_payins_redirect_then_settle() {
    let h = start().await;
    let user = h.card_user().await;
    let wallet = h.wallet(&user, "EUR").await;
    let body = json!({"AuthorId": user, "CreditedWalletId": wallet,
                      "DebitedFunds": eur(2_000), "Fees": eur(100),
                      "ReturnURL": "https://example.com/back?order=7", "Culture": "fr",
                      "PaymentType": "CARD", "ExecutionType": "WEB"});
    let created = h.post("/payins/card/web/", &body).await.ok().clone();
    let payin = id(&created);
    assert_eq!(created["Status"], "CREATED");
    assert_eq!(created["PaymentType"], "CARD");
    assert_eq!(created["ExecutionType"], "WEB");
    assert_eq!(created["CardType"], "CB_VISA_MASTERCARD");
    assert_eq!(created["Culture"], "FR");
    assert_eq!(created["SecureMode"], "DEFAULT");
    assert!(created["TemplateURL"].is_null());
    assert_eq!(
        created["ReturnURL"],
        format!("https://example.com/back?order=7&transactionId={payin}")
    );
    assert_eq!(
        created["RedirectURL"],
        format!("{}/_sandbox/web-payment/{payin}", h.running.base_url())
    );
    assert_eq!(created["CreditedFunds"], eur(1_900));
    let page = answer(h.http.get(created["RedirectURL"].as_str().unwrap())).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        h.get(&format!("/payins/card/web/{payin}")).await.ok(),
        &created
    );

    let settled = h.settle(&payin, &json!({"Status": "SUCCEEDED"})).await;
    assert_eq!(settled.ok()["Status"], "SUCCEEDED");
    assert_eq!(h.balance(&wallet).await, 1_900);
    assert_eq!(h.sandbox().fees_balance("EUR"), 100);

    let second = h.post("/payins/card/web", &body).await.ok().clone();
    let failed = h.settle(&id(&second), &json!({"Status": "FAILED"})).await;
    assert_eq!(failed.ok()["ResultCode"], "101109");
    assert_eq!(
        failed.body["ResultMessage"],
        "The payment period has expired"
    );
    assert_eq!(h.balance(&wallet).await, 1_900);

    let mut missing = body.clone();
    missing.as_object_mut().unwrap().remove("Culture");
    missing.as_object_mut().unwrap().remove("ReturnURL");
    let missing = h.post("/payins/card/web", &missing).await;
    let errors = missing.error(400, "param_error");
    assert_eq!(
        errors.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["Culture", "ReturnURL"]
    );
}

#[tokio::test]
async fn bank_wires_wait_for_their_funds() {
    let h = start().await;
    let user = h.card_user().await;
    let wallet = h.wallet(&user, "EUR").await;
    let body = json!({"AuthorId": user, "CreditedWalletId": wallet, "Tag": "wire",
                      "DeclaredDebitedFunds": eur(10_000), "DeclaredFees": eur(500)});
    let created = h.post("/payins/bankwire/direct/", &body).await.ok().clone();
    let payin = id(&created);
    let placeholder = json!({"Currency": "XXX", "Amount": 0});
    assert_eq!(created["Status"], "CREATED");
    assert_eq!(created["PaymentType"], "BANK_WIRE");
    assert_eq!(created["ExecutionType"], "DIRECT");
    assert_eq!(created["DebitedFunds"], placeholder);
    assert_eq!(created["CreditedFunds"], placeholder);
    assert_eq!(created["Fees"], placeholder);
    assert_eq!(created["DeclaredDebitedFunds"], eur(10_000));
    assert_eq!(created["DeclaredFees"], eur(500));
    assert_eq!(created["CreditedUserId"], user.as_str());
    assert_eq!(created["TransactionDetails"], json!([]));
    let reference = created["WireReference"].as_str().unwrap();
    assert_eq!(reference.len(), 10);
    assert!(
        reference
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    );
    let account = &created["BankAccount"];
    assert_eq!(account["Type"], "IBAN");
    assert_eq!(account["OwnerName"], "MANGOPAY SA");
    assert_eq!(account["BIC"], "CCFRFRPPXXX");
    assert_eq!(account["OwnerAddress"]["Country"], "LU");
    let iban = account["IBAN"].as_str().unwrap();
    assert_eq!(iban, "FR7630056009271234567890182");
    assert!(iban.parse::<iban::Iban>().is_ok());

    let second = h.post("/payins/bankwire/direct", &body).await.ok().clone();
    assert_ne!(second["WireReference"], created["WireReference"]);
    assert_eq!(
        h.get(&format!("/payins/bankwire/direct/{payin}"))
            .await
            .ok(),
        &created
    );

    let received = h
        .settle(&payin, &json!({"Status": "SUCCEEDED", "Amount": 8_000}))
        .await;
    assert_eq!(received.ok()["Status"], "SUCCEEDED");
    assert_eq!(received.body["DebitedFunds"], eur(8_000));
    assert_eq!(received.body["Fees"], eur(500));
    assert_eq!(received.body["CreditedFunds"], eur(7_500));
    assert_eq!(received.body["DeclaredDebitedFunds"], eur(10_000));
    assert_eq!(h.balance(&wallet).await, 7_500);
    assert_eq!(h.sandbox().fees_balance("EUR"), 500);

    let declared = h
        .sandbox()
        .settle_payin(&id(&second), PayInOutcome::Succeeded)
        .unwrap();
    assert_eq!(declared["DebitedFunds"], eur(10_000));
    assert_eq!(h.balance(&wallet).await, 17_000);

    let third = h.post("/payins/bankwire/direct", &body).await.ok().clone();
    assert!(
        h.sandbox()
            .settle_payin(&id(&third), PayInOutcome::Received { amount: 0 })
            .is_err()
    );
    let received = h
        .sandbox()
        .settle_payin(&id(&third), PayInOutcome::Received { amount: 300 })
        .unwrap();
    assert_eq!(received["Fees"], eur(300));
    assert_eq!(received["CreditedFunds"], eur(0));

    let bad = h
        .post(
            "/payins/bankwire/direct",
            &json!({"AuthorId": user, "CreditedWalletId": wallet,
                    "DeclaredDebitedFunds": eur(100), "DeclaredFees": eur(100)}),
        )
        .await;
    assert!(bad.error(400, "param_error")["DeclaredFees"].is_string());
}

#[tokio::test]
async fn payins_settle_after_the_delay_on_the_sandbox_clock() {
    let mut h = start().await;
    h.sandbox().knobs().set_payin_settle_after(Some(HOUR));
    let (user, wallet, card) = h.payer(CHALLENGE).await;
    let direct = id(h
        .direct(&direct_body(&user, &wallet, &card, 1_000, 100))
        .await
        .ok());
    let web = id(h
        .post(
            "/payins/card/web",
            &json!({"AuthorId": user, "CreditedWalletId": wallet, "DebitedFunds": eur(2_000),
                    "Fees": eur(0), "ReturnURL": "https://example.com", "Culture": "EN"}),
        )
        .await
        .ok());
    let wire = id(h
        .post(
            "/payins/bankwire/direct",
            &json!({"AuthorId": user, "CreditedWalletId": wallet,
                    "DeclaredDebitedFunds": eur(4_000), "DeclaredFees": eur(0)}),
        )
        .await
        .ok());
    let created_at = h.sandbox().payin(&direct).unwrap()["CreationDate"]
        .as_i64()
        .unwrap();
    h.advance(Duration::from_secs(59 * 60)).await;
    for payin in [&direct, &web, &wire] {
        assert_eq!(h.sandbox().payin(payin).unwrap()["Status"], "CREATED");
    }
    assert_eq!(h.balance(&wallet).await, 0);
    h.advance(Duration::from_secs(2 * 60)).await;
    assert_eq!(h.balance(&wallet).await, 900 + 2_000 + 4_000);
    let settled = h.get(&format!("/payins/{direct}")).await.ok().clone();
    assert_eq!(settled["Status"], "SUCCEEDED");
    let executed = settled["ExecutionDate"].as_i64().unwrap();
    assert!((executed - (created_at + 3600)).abs() <= 1, "{executed}");
    assert_eq!(
        h.get(&format!("/cards/{card}")).await.ok()["Validity"],
        "VALID"
    );

    // The outcome knob, and the 3-D Secure failure card settling by itself.
    h.sandbox().knobs().set_payin_outcome(PayInOutcome::Failed {
        result_code: "101109".to_owned(),
        result_message: "The payment period has expired".to_owned(),
    });
    let late = id(h
        .post(
            "/payins/bankwire/direct",
            &json!({"AuthorId": user, "CreditedWalletId": wallet,
                    "DeclaredDebitedFunds": eur(4_000), "DeclaredFees": eur(0)}),
        )
        .await
        .ok());
    h.sandbox()
        .knobs()
        .set_payin_outcome(PayInOutcome::Succeeded);
    let failing_card = h.card(&user, THREE_DS_NOT_AVAILABLE).await;
    let refused = id(h
        .direct(&direct_body(&user, &wallet, &failing_card, 1_000, 0))
        .await
        .ok());
    h.sandbox().knobs().set_payin_outcome(PayInOutcome::Failed {
        result_code: "101109".to_owned(),
        result_message: "The payment period has expired".to_owned(),
    });
    h.advance(HOUR).await;
    assert_eq!(h.sandbox().payin(&late).unwrap()["ResultCode"], "101109");
    assert_eq!(h.sandbox().payin(&refused).unwrap()["ResultCode"], "101109");
    h.sandbox()
        .knobs()
        .set_payin_outcome(PayInOutcome::Succeeded);
    let third_card = h.card(&user, THREE_DS_NOT_AVAILABLE).await;
    let not_available = id(h
        .direct(&direct_body(&user, &wallet, &third_card, 1_000, 0))
        .await
        .ok());
    h.advance(HOUR).await;
    assert_eq!(
        h.sandbox().payin(&not_available).unwrap()["ResultCode"],
        "101399"
    );
    assert_eq!(h.balance(&wallet).await, 6_900);
    // Pay-outs keep their own knob.
    assert_eq!(
        h.sandbox().knobs().payout_outcome(),
        PayoutOutcome::Succeeded
    );
}

// ---------------------------------------------------------------- refunds

/// A user, its wallet and a `SUCCEEDED` pay-in of 10000 with 100 fees.
async fn paid(h: &Harness) -> (String, String, String) {
    let (user, wallet, card) = h.payer(FRICTIONLESS).await;
    let payin = h
        .direct(&direct_body(&user, &wallet, &card, 10_000, 100))
        .await;
    (user, wallet, id(payin.ok()))
}

#[tokio::test]
async fn a_full_refund_returns_the_funds_and_the_fees() {
    let h = start().await;
    let (user, wallet, payin) = paid(&h).await;
    // Python sends the pay-in as `Payin`.
    let refund = h
        .refund(
            &payin,
            &json!({"AuthorId": user, "Payin": payin, "Tag": "sorry"}),
        )
        .await
        .ok()
        .clone();
    let refund_id = id(&refund);
    assert!(refund_id.starts_with("refund_m_"));
    let expected = json!({
        "Id": refund_id, "Tag": "sorry", "CreationDate": refund["CreationDate"],
        "AuthorId": user, "CreditedUserId": null, "DebitedFunds": eur(10_000),
        "CreditedFunds": eur(10_100), "Fees": eur(-100), "Status": "SUCCEEDED",
        "ResultCode": "000000", "ResultMessage": "Success",
        "ExecutionDate": refund["CreationDate"], "Type": "PAYOUT", "Nature": "REFUND",
        "InitialTransactionId": payin, "InitialTransactionType": "PAYIN",
        "InitialTransactionNature": "REGULAR", "DebitedWalletId": wallet,
        "CreditedWalletId": null,
        "RefundReason": {"RefundReasonMessage": null, "RefundReasonType": "INITIALIZED_BY_CLIENT"},
        "StatementDescriptor": null});
    assert_eq!(refund, expected);
    assert_eq!(h.balance(&wallet).await, 0);
    assert_eq!(h.sandbox().fees_balance("EUR"), 0);
    assert_eq!(h.get(&format!("/refunds/{refund_id}")).await.ok(), &refund);
    assert_eq!(
        h.get(&format!("/payins/{payin}/refunds")).await.ok(),
        &json!([refund.clone()])
    );
    assert_eq!(h.sandbox().refunds(), std::slice::from_ref(&refund));
    let listed = h
        .get(&format!("/wallets/{wallet}/transactions?Nature=REFUND"))
        .await
        .ok()
        .clone();
    assert_eq!(listed[0]["Id"], refund_id.as_str());
    assert_eq!(listed[0]["Type"], "PAYOUT");
    h.get("/refunds/refund_m_nothing")
        .await
        .error(404, "ressource_not_found");
    h.get("/payins/payin_m_nothing/refunds")
        .await
        .error(404, "ressource_not_found");

    let again = h.refund(&payin, &json!({"AuthorId": user})).await;
    assert!(again.error(400, "invalid_action").is_null());
}

#[tokio::test]
async fn partial_refunds_go_up_to_what_is_left() {
    let h = start().await;
    let (user, wallet, payin) = paid(&h).await;
    let part = |amount: i64, fees: i64| json!({"AuthorId": user, "DebitedFunds": eur(amount), "Fees": eur(fees)});
    let first = h.refund(&payin, &part(3_000, -30)).await;
    assert_eq!(first.ok()["Status"], "SUCCEEDED");
    assert_eq!(first.body["CreditedFunds"], eur(3_030));
    assert_eq!(h.balance(&wallet).await, 9_900 - 2_970);
    assert_eq!(h.sandbox().fees_balance("EUR"), 70);

    let above = h.refund(&payin, &part(7_001, 0)).await;
    assert!(above.error(400, "param_error")["DebitedFunds"].is_string());
    let fees_above = h.refund(&payin, &part(1_000, -71)).await;
    assert!(fees_above.error(400, "param_error")["Fees"].is_string());

    let rest = h.refund(&payin, &part(7_000, -70)).await;
    assert_eq!(rest.ok()["Status"], "SUCCEEDED");
    assert_eq!(h.balance(&wallet).await, 0);
    assert_eq!(h.sandbox().fees_balance("EUR"), 0);
    let more = h.refund(&payin, &part(1, 0)).await;
    assert!(more.error(400, "param_error")["DebitedFunds"].is_string());
    let listed = h
        .get(&format!(
            "/payins/{payin}/refunds?Sort=CreationDate:DESC&per_page=1"
        ))
        .await;
    assert_eq!(listed.ok()[0]["Id"], rest.body["Id"]);
    assert_eq!(listed.header("x-number-of-items"), "2");

    let (user, _, payin) = paid(&h).await;
    let only_funds = h
        .refund(&payin, &json!({"AuthorId": user, "DebitedFunds": eur(10)}))
        .await;
    assert_eq!(
        only_funds.error(400, "param_error")["Fees"],
        "if DebitedFunds are defined, Fees must be defined"
    );
    let only_fees = h
        .refund(&payin, &json!({"AuthorId": user, "Fees": eur(-10)}))
        .await;
    assert!(only_fees.error(400, "param_error")["DebitedFunds"].is_string());
    let zero = h.refund(&payin, &part(0, 0)).await;
    assert!(zero.error(400, "param_error")["DebitedFunds.Amount"].is_string());
    let stranger = h.card_user().await;
    let not_author = h.refund(&payin, &json!({"AuthorId": stranger})).await;
    assert_eq!(
        not_author.error(400, "param_error")["AuthorId"],
        "Author of the refund is not the author of the initial payin"
    );
    let gbp = h
        .refund(
            &payin,
            &json!({"AuthorId": user, "DebitedFunds": {"Currency": "GBP", "Amount": 10},
                    "Fees": {"Currency": "GBP", "Amount": 0}}),
        )
        .await;
    gbp.error(400, "currency_incompatibility");
    h.refund("payin_m_nothing", &json!({"AuthorId": user}))
        .await
        .error(404, "ressource_not_found");
    let missing = h.refund(&payin, &json!({})).await;
    assert!(missing.error(400, "param_error")["AuthorId"].is_string());
}

#[tokio::test]
async fn only_succeeded_payins_are_refunded() {
    let h = start().await;
    let (user, wallet, card) = h.payer(DO_NOT_HONOR).await;
    let failed = id(h
        .direct(&direct_body(&user, &wallet, &card, 1_000, 0))
        .await
        .ok());
    let refused = h.refund(&failed, &json!({"AuthorId": user})).await;
    assert!(refused.error(400, "invalid_action").is_null());
    let (user, wallet, card) = h.payer(CHALLENGE).await;
    let pending = id(h
        .direct(&direct_body(&user, &wallet, &card, 1_000, 0))
        .await
        .ok());
    let refused = h.refund(&pending, &json!({"AuthorId": user})).await;
    assert!(refused.error(400, "invalid_action").is_null());
    assert!(h.sandbox().refunds().is_empty());
}

#[tokio::test]
async fn a_refund_the_wallet_cannot_cover_is_created_failed() {
    let h = start().await;
    let (user, wallet, payin) = paid(&h).await;
    let savings = h.wallet(&user, "EUR").await;
    let moved = h
        .post(
            "/transfers",
            &json!({"AuthorId": user, "DebitedWalletId": wallet, "CreditedWalletId": savings,
                    "DebitedFunds": eur(5_000), "Fees": eur(0)}),
        )
        .await;
    assert_eq!(moved.ok()["Status"], "SUCCEEDED");
    let refund = h.refund(&payin, &json!({"AuthorId": user})).await;
    assert_eq!(refund.ok()["Status"], "FAILED");
    assert_eq!(refund.body["ResultCode"], "001001");
    assert_eq!(refund.body["ResultMessage"], "Unsufficient wallet balance");
    assert!(refund.body["ExecutionDate"].is_null());
    assert_eq!(h.balance(&wallet).await, 4_900);
    assert_eq!(h.sandbox().fees_balance("EUR"), 100);
    // A failed refund takes nothing from what is left to refund.
    let partial = h
        .refund(
            &payin,
            &json!({"AuthorId": user, "DebitedFunds": eur(4_000), "Fees": eur(-40)}),
        )
        .await;
    assert_eq!(partial.ok()["Status"], "SUCCEEDED");
    assert_eq!(h.balance(&wallet).await, 4_900 - 3_960);
    let rest = h
        .refund(
            &payin,
            &json!({"AuthorId": user, "DebitedFunds": eur(6_000), "Fees": eur(-60)}),
        )
        .await;
    assert_eq!(rest.ok()["Status"], "FAILED");
}

// ---------------------------------------------------------------- keys, faults and limits

#[tokio::test]
async fn keyed_payins_and_refunds_are_replayed_not_repeated() {
    const PAYIN_KEY: &str = "3f1c2b7e-9a4d-4e8f-b6c5-1d2e3f4a5b6c";
    const REFUND_KEY: &str = "8a7b6c5d-4e3f-4a1b-9c8d-7e6f5a4b3c2d";
    let h = start().await;
    let (user, wallet, card) = h.payer(FRICTIONLESS).await;
    let body = direct_body(&user, &wallet, &card, 10_000, 100);
    let first = h
        .post_keyed("/payins/card/direct", &body, PAYIN_KEY)
        .await
        .ok()
        .clone();
    h.post_keyed("/payins/card/direct", &body, PAYIN_KEY)
        .await
        .error(409, "idempotent_creation_conflict");
    let other_body = direct_body(&user, &wallet, &card, 500, 0);
    h.post_keyed("/payins/card/direct", &other_body, PAYIN_KEY)
        .await
        .error(409, "idempotent_creation_conflict");
    let replay = h.get(&format!("/responses/{PAYIN_KEY}")).await.ok().clone();
    assert_eq!(replay["StatusCode"], "200");
    assert_eq!(replay["Resource"], first);
    assert_eq!(h.sandbox().payins().len(), 1);
    assert_eq!(h.balance(&wallet).await, 9_900);

    let refund_body = json!({"AuthorId": user, "DebitedFunds": eur(1_000), "Fees": eur(0)});
    let path = format!("/payins/{}/refunds", id(&first));
    let refund = h
        .post_keyed(&path, &refund_body, REFUND_KEY)
        .await
        .ok()
        .clone();
    h.post_keyed(&path, &refund_body, REFUND_KEY)
        .await
        .error(409, "idempotent_creation_conflict");
    let replay = h
        .get(&format!("/responses/{REFUND_KEY}"))
        .await
        .ok()
        .clone();
    assert_eq!(replay["Resource"], refund);
    assert_eq!(h.sandbox().refunds().len(), 1);
    assert_eq!(h.balance(&wallet).await, 8_900);
}

#[tokio::test]
async fn faults_and_rate_limits_reach_the_card_routes_not_the_tokenizer() {
    let h = start().await;
    let (user, wallet, card) = h.payer(FRICTIONLESS).await;
    h.sandbox().clear_request_log();
    h.sandbox().knobs().fail_next_after_work(1);
    let failed = h
        .direct(&direct_body(&user, &wallet, &card, 1_000, 0))
        .await;
    failed.error(500, "internal_server_error");
    assert_eq!(h.sandbox().payins().len(), 1, "the work was done");
    assert_eq!(h.balance(&wallet).await, 1_000);
    let log = h.sandbox().request_log();
    assert_eq!(log[0].fault, Some("failed_after_work"));

    h.sandbox().knobs().fail_next(1);
    h.get(&format!("/cards/{card}"))
        .await
        .error(500, "internal_server_error");

    // The tokenizer and the control requests are outside the API: no faults, no limits, no log.
    let registration = h.registration(&user, "EUR").await;
    h.sandbox().clear_request_log();
    h.sandbox().knobs().set_rate_limit(Some(0));
    h.sandbox().knobs().fail_next(1);
    let token = h.token(&registration, FRICTIONLESS).await;
    assert!(token.starts_with("data="));
    assert!(h.sandbox().request_log().is_empty());
    let limited = h.get(&format!("/cards/{card}")).await;
    limited.error(429, "rate_limit");
    let limited = h.refund("payin_m_any", &json!({"AuthorId": user})).await;
    limited.error(429, "rate_limit");
    h.sandbox().knobs().set_rate_limit(None);
    h.get(&format!("/cards/{card}"))
        .await
        .error(500, "internal_server_error");
    assert_eq!(
        h.get(&format!("/cards/{card}")).await.status,
        StatusCode::OK
    );
}
