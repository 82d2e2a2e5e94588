//! Loopback tests of legacy bank accounts, recipients, their control request and SCA knob,
//! and the pay-out destination check.

use std::time::Duration;

use axum::response::IntoResponse as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::bank_accounts::payout_destination;
use super::tests_harness::{self as harness, Answer, Harness};
use super::{RecipientSca, RecipientStatus};

impl Answer {
    /// Asserts a Recipients error report (`Errors`, a bare UUID Id) and returns `Errors`.
    fn recipient_error(&self, kind: &str) -> &Value {
        assert_eq!(self.status, StatusCode::BAD_REQUEST, "{}", self.text);
        assert_eq!(self.body["Type"], kind, "{}", self.text);
        let id = self.body["Id"].as_str().expect("Id is a string");
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
        assert!(self.body["Date"].is_i64());
        let object = self.body.as_object().unwrap();
        assert!(object.contains_key("Errors") && !object.contains_key("errors"));
        &self.body["Errors"]
    }
}

async fn start() -> Harness {
    harness::start(7).await
}

impl Harness {
    async fn user(&self, category: &str) -> String {
        let body = if category == "OWNER" {
            json!({"UserCategory": "OWNER", "TermsAndConditionsAccepted": true, "Address": paris(),
                   "FirstName": "Alex", "LastName": "Smith", "Email": "alex.smith@example.com",
                   "Birthday": 652117514, "Nationality": "FR", "CountryOfResidence": "FR"})
        } else {
            json!({"UserCategory": "PAYER", "FirstName": "Alex", "LastName": "Smith",
                   "Email": "alex.smith@example.com"})
        };
        let created = self.post("/users/natural", &body).await;
        created.ok()["Id"].as_str().unwrap().to_owned()
    }

    async fn bank_account(&self, user: &str, kind: &str, body: &Value) -> Value {
        let created = self
            .post(&format!("/users/{user}/bankaccounts/{kind}"), body)
            .await;
        created.ok().clone()
    }

    async fn recipient(&self, user: &str, body: &Value) -> Value {
        let created = self.post(&format!("/users/{user}/recipients"), body).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        created.body
    }
}

fn paris() -> Value {
    json!({"AddressLine1": "The Oasis", "AddressLine2": "Rue des plantes", "City": "Paris",
           "Region": "Ile de France", "PostalCode": "75001", "Country": "FR"})
}

const IBAN: &str = "FR7630004000031234567890143";

fn iban_body() -> Value {
    json!({"OwnerAddress": paris(), "IBAN": IBAN, "BIC": "BNPAFRPP", "OwnerName": "John Doe",
           "Tag": "custom meta"})
}

fn gb_body() -> Value {
    json!({"OwnerAddress": paris(), "AccountNumber": "11696419", "SortCode": "010039",
           "OwnerName": "Joe Blogs"})
}

fn us_body() -> Value {
    json!({"OwnerAddress": paris(), "AccountNumber": "11696419", "ABA": "071000288",
           "DepositAccountType": "SAVINGS", "OwnerName": "John Doe"})
}

fn ca_body() -> Value {
    json!({"OwnerAddress": paris(), "AccountNumber": "11696419", "InstitutionNumber": "614",
           "BranchCode": "00152", "BankName": "The Bank", "OwnerName": "Joe Blogs"})
}

fn other_body() -> Value {
    json!({"OwnerAddress": paris(), "AccountNumber": "11696419", "BIC": "BNPAFRPP",
           "Country": "FR", "OwnerName": "Joe Blogs"})
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

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort_unstable();
    keys
}

fn sorted(keys: &[&str]) -> Vec<String> {
    let mut keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    keys.sort_unstable();
    keys
}

fn ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item["Id"].as_str().unwrap())
        .collect()
}

// --- bank accounts ------------------------------------------------------------------

#[tokio::test]
async fn iban_account_is_answered_as_the_reference_shows() {
    let h = start().await;
    let user = h.user("OWNER").await;
    let body = with(
        iban_body(),
        json!({"IBAN": "fr76 3000 4000 0312 3456 7890 143"}),
    );
    let account = h.bank_account(&user, "iban", &body).await;
    assert_eq!(
        keys(&account),
        sorted(&[
            "OwnerAddress",
            "IBAN",
            "BIC",
            "UserId",
            "OwnerName",
            "Type",
            "Id",
            "Tag",
            "CreationDate",
            "Active"
        ])
    );
    assert!(account["Id"].as_str().unwrap().starts_with("bankacc_m_"));
    assert_eq!(account["Type"], "IBAN");
    assert_eq!(account["IBAN"], IBAN, "stored in its electronic form");
    assert_eq!(account["BIC"], "BNPAFRPP");
    assert_eq!(account["UserId"], user.as_str());
    assert_eq!(account["OwnerName"], "John Doe");
    assert_eq!(account["OwnerAddress"], paris());
    assert_eq!(account["Tag"], "custom meta");
    assert_eq!(account["Active"], true);
    assert_eq!(
        account["CreationDate"].as_i64(),
        Some(h.sandbox().clock().now().timestamp())
    );

    let without_bic = h
        .bank_account(
            &user,
            "iban",
            &with(iban_body(), json!({"BIC": null, "Tag": null})),
        )
        .await;
    assert!(without_bic["BIC"].is_null() && without_bic["Tag"].is_null());
    assert!(without_bic.as_object().unwrap().contains_key("BIC"));
}

#[tokio::test]
async fn iban_checksum_and_bic_are_checked() {
    let h = start().await;
    let user = h.user("OWNER").await;
    let path = format!("/users/{user}/bankaccounts/iban");
    let bad_checksum = h
        .post(
            &path,
            &with(iban_body(), json!({"IBAN": "FR7630004000031234567890144"})),
        )
        .await;
    assert_eq!(
        bad_checksum.error(400, "param_error")["IBAN"],
        "The value is not a valid IBAN"
    );
    let bad_country_format = h
        .post(
            &path,
            &with(iban_body(), json!({"IBAN": "FR763000400003123456789014"})),
        )
        .await;
    assert_eq!(
        bad_country_format.error(400, "param_error")["IBAN"],
        "The value is not a valid IBAN"
    );
    let bad_format = h
        .post(&path, &with(iban_body(), json!({"BIC": "BNP-FR"})))
        .await;
    assert_eq!(
        bad_format.error(400, "param_error")["BIC"],
        r"The field BIC must match the regular expression '^[a-zA-Z]{6}\w{2}(\w{3})?$'."
    );
    let no_country = h
        .post(&path, &with(iban_body(), json!({"BIC": "BNPAXQPP"})))
        .await;
    assert_eq!(
        no_country.error(400, "param_error")["BIC"],
        "The value is not a valid BIC"
    );
    let bic11 = h
        .bank_account(
            &user,
            "iban",
            &with(iban_body(), json!({"BIC": "bnpafrppxxx"})),
        )
        .await;
    assert_eq!(bic11["BIC"], "BNPAFRPPXXX");
    assert!(h.sandbox().bank_accounts().len() == 1);
}

#[tokio::test]
async fn owner_name_and_address_are_required() {
    let h = start().await;
    let user = h.user("OWNER").await;
    let path = format!("/users/{user}/bankaccounts/iban");
    let empty = h.post(&path, &json!({})).await;
    let errors = empty.error(400, "param_error");
    assert_eq!(keys(errors), sorted(&["IBAN", "OwnerAddress", "OwnerName"]));
    assert_eq!(errors["OwnerName"], "The OwnerName field is required.");
    let us_address = json!({"AddressLine1": "1 Main St", "City": "Austin", "PostalCode": "78701",
                            "Country": "US"});
    let no_region = h
        .post(
            &path,
            &with(iban_body(), json!({"OwnerAddress": us_address})),
        )
        .await;
    assert_eq!(
        keys(no_region.error(400, "param_error")),
        sorted(&["OwnerAddress.Region"])
    );
}

#[tokio::test]
async fn gb_account_and_its_errors() {
    let h = start().await;
    let user = h.user("PAYER").await;
    let account = h.bank_account(&user, "GB", &gb_body()).await;
    assert_eq!(account["Type"], "GB");
    assert_eq!(account["SortCode"], "010039");
    assert_eq!(account["AccountNumber"], "11696419");
    assert!(!account.as_object().unwrap().contains_key("IBAN"));
    let path = format!("/users/{user}/bankaccounts/gb");
    let bad = h
        .post(
            &path,
            &with(
                gb_body(),
                json!({"SortCode": "01-00-39", "AccountNumber": "1169641"}),
            ),
        )
        .await;
    let errors = bad.error(400, "param_error");
    assert_eq!(
        errors["SortCode"],
        r"The field SortCode must match the regular expression '\d{6}'."
    );
    assert_eq!(
        errors["AccountNumber"],
        r"The field AccountNumber must match the regular expression '\d{8}'."
    );
}

#[tokio::test]
async fn us_account_and_its_errors() {
    let h = start().await;
    let user = h.user("OWNER").await;
    let account = h.bank_account(&user, "us", &us_body()).await;
    assert_eq!(account["Type"], "US");
    assert_eq!(account["ABA"], "071000288");
    assert_eq!(account["DepositAccountType"], "SAVINGS");
    let default = h
        .bank_account(
            &user,
            "us",
            &with(us_body(), json!({"DepositAccountType": null})),
        )
        .await;
    assert_eq!(default["DepositAccountType"], "CHECKING");
    let bad = h
        .post(
            &format!("/users/{user}/bankaccounts/us"),
            &with(
                us_body(),
                json!({"ABA": "07100028", "DepositAccountType": "CURRENT", "AccountNumber": "11-69"}),
            ),
        )
        .await;
    assert_eq!(
        keys(bad.error(400, "param_error")),
        sorted(&["ABA", "AccountNumber", "DepositAccountType"])
    );
}

#[tokio::test]
async fn ca_account_and_the_reference_error() {
    let h = start().await;
    let user = h.user("OWNER").await;
    let account = h.bank_account(&user, "ca", &ca_body()).await;
    assert_eq!(account["Type"], "CA");
    assert_eq!(account["InstitutionNumber"], "614");
    assert_eq!(account["BranchCode"], "00152");
    assert_eq!(account["BankName"], "The Bank");
    let path = format!("/users/{user}/bankaccounts/ca");
    let missing = h
        .post(
            &path,
            &with(
                ca_body(),
                json!({"InstitutionNumber": null, "BranchCode": null, "BankName": null}),
            ),
        )
        .await;
    assert_eq!(
        missing.error(400, "param_error"),
        &json!({"InstitutionNumber": "The InstitutionNumber field is required.",
                "BranchCode": "The BranchCode field is required.",
                "BankName": "The BankName field is required."})
    );
    let bad = h
        .post(
            &path,
            &with(
                ca_body(),
                json!({"InstitutionNumber": "6140", "BranchCode": "152", "BankName": "Bank & Co"}),
            ),
        )
        .await;
    assert_eq!(
        keys(bad.error(400, "param_error")),
        sorted(&["BankName", "BranchCode", "InstitutionNumber"])
    );
}

#[tokio::test]
async fn other_account_and_its_errors() {
    let h = start().await;
    let user = h.user("OWNER").await;
    let account = h.bank_account(&user, "other", &other_body()).await;
    assert_eq!(account["Type"], "OTHER");
    assert_eq!(account["Country"], "FR");
    assert_eq!(account["BIC"], "BNPAFRPP");
    let bad = h
        .post(
            &format!("/users/{user}/bankaccounts/other"),
            &with(
                other_body(),
                json!({"Country": null, "BIC": null, "AccountNumber": "1234"}),
            ),
        )
        .await;
    assert_eq!(
        keys(bad.error(400, "param_error")),
        sorted(&["AccountNumber", "BIC", "Country"])
    );
}

#[tokio::test]
async fn bank_accounts_need_a_known_user_and_ignore_read_only_keys() {
    let h = start().await;
    let unknown = h
        .post("/users/user_m_nobody/bankaccounts/iban", &iban_body())
        .await;
    assert_eq!(
        unknown.error(404, "ressource_not_found")["RessourceNotFound"],
        "Cannot found the ressource User with the id=user_m_nobody"
    );
    // What the Python SDK sends along: its model defaults and read-only fields.
    let user = h.user("OWNER").await;
    let python = with(
        iban_body(),
        json!({"Type": "IBAN", "Active": 1, "DepositAccountType": "CHECKING", "UserId": user}),
    );
    let account = h.bank_account(&user, "IBAN", &python).await;
    assert!(
        !account
            .as_object()
            .unwrap()
            .contains_key("DepositAccountType")
    );
    assert_eq!(h.sandbox().bank_accounts().len(), 1);
}

#[tokio::test]
async fn view_finds_only_the_users_own_account() {
    let h = start().await;
    let user = h.user("OWNER").await;
    let other = h.user("OWNER").await;
    let account = h.bank_account(&user, "iban", &iban_body()).await;
    let id = account["Id"].as_str().unwrap();
    let viewed = h.get(&format!("/users/{user}/bankaccounts/{id}")).await;
    assert_eq!(viewed.ok(), &account);
    assert_eq!(h.sandbox().bank_account(id), Some(account.clone()));
    let foreign = h.get(&format!("/users/{other}/bankaccounts/{id}")).await;
    assert_eq!(
        foreign.error(404, "ressource_not_found")["RessourceNotFound"],
        format!("Cannot found the ressource BankAccount with the id={id}")
    );
    let unknown = h
        .get(&format!("/users/{user}/bankaccounts/bankacc_m_x"))
        .await;
    unknown.error(404, "ressource_not_found");
    let unknown_user = h.get(&format!("/users/user_m_x/bankaccounts/{id}")).await;
    assert_eq!(
        unknown_user.error(404, "ressource_not_found")["RessourceNotFound"],
        "Cannot found the ressource User with the id=user_m_x"
    );
}

#[tokio::test]
async fn list_paginates_sorts_and_filters() {
    let mut h = start().await;
    let user = h.user("OWNER").await;
    let other = h.user("OWNER").await;
    let mut created = Vec::new();
    for n in 0..3 {
        let account = h
            .bank_account(
                &user,
                "iban",
                &with(iban_body(), json!({"Tag": format!("n{n}")})),
            )
            .await;
        created.push(account["Id"].as_str().unwrap().to_owned());
        h.advance(Duration::from_secs(2)).await;
    }
    h.bank_account(&other, "gb", &gb_body()).await;

    let all = h.get(&format!("/users/{user}/bankaccounts")).await;
    assert_eq!(ids(all.ok()), created);
    assert_eq!(all.header("x-number-of-items"), "3");

    let page = h
        .get(&format!(
            "/users/{user}/bankaccounts?Page=2&Per_Page=2&Sort=CreationDate:DESC"
        ))
        .await;
    assert_eq!(ids(page.ok()), vec![created[0].as_str()]);
    assert_eq!(page.header("x-number-of-pages"), "2");
    assert!(page.header("link").contains("rel=\"prev\""));

    let first = h
        .put(
            &format!("/users/{user}/bankaccounts/{}", created[0]),
            &json!({"Active": false}),
        )
        .await;
    first.ok();
    let active = h
        .get(&format!("/users/{user}/bankaccounts?active=true"))
        .await;
    assert_eq!(
        ids(active.ok()),
        vec![created[1].as_str(), created[2].as_str()]
    );
    let inactive = h
        .get(&format!("/users/{user}/bankaccounts?Active=false"))
        .await;
    assert_eq!(ids(inactive.ok()), vec![created[0].as_str()]);
    let bad = h
        .get(&format!("/users/{user}/bankaccounts?Active=maybe"))
        .await;
    bad.error(400, "param_error");
    let unknown = h.get("/users/user_m_x/bankaccounts").await;
    unknown.error(404, "ressource_not_found");
}

#[tokio::test]
async fn list_lags_and_a_lost_create_is_found_by_its_tag() {
    let mut h = start().await;
    let user = h.user("OWNER").await;
    h.sandbox().knobs().set_list_lag(Duration::from_secs(30));
    h.sandbox().knobs().fail_next_after_work(1);
    let lost = h
        .post(
            &format!("/users/{user}/bankaccounts/iban"),
            &with(iban_body(), json!({"Tag": "reconcile-me"})),
        )
        .await;
    lost.error(500, "internal_server_error");
    let hidden = h
        .get(&format!(
            "/users/{user}/bankaccounts?Sort=CreationDate:DESC"
        ))
        .await;
    assert_eq!(hidden.ok(), &json!([]));
    assert_eq!(hidden.header("x-number-of-items"), "0");
    h.advance(Duration::from_secs(30)).await;
    let listed = h
        .get(&format!(
            "/users/{user}/bankaccounts?Sort=CreationDate:DESC"
        ))
        .await;
    let found: Vec<&Value> = listed
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["Tag"] == "reconcile-me")
        .collect();
    assert_eq!(found.len(), 1);
    assert_eq!(h.sandbox().bank_accounts(), vec![found[0].clone()]);
}

#[tokio::test]
async fn deactivation_is_for_good() {
    let h = start().await;
    let user = h.user("OWNER").await;
    let account = h.bank_account(&user, "iban", &iban_body()).await;
    let path = format!(
        "/users/{user}/bankaccounts/{}",
        account["Id"].as_str().unwrap()
    );
    let missing = h.put(&path, &json!({})).await;
    assert_eq!(
        missing.error(400, "param_error")["Active"],
        "The Active field is required."
    );
    let reactivate = h.put(&path, &json!({"Active": true})).await;
    reactivate.error(400, "param_error");
    let not_boolean = h.put(&path, &json!({"Active": "no"})).await;
    not_boolean.error(400, "param_error");
    assert_eq!(h.get(&path).await.ok()["Active"], true);

    // The Python SDK sends `0`.
    let deactivated = h.put(&path, &json!({"Active": 0})).await;
    let deactivated = deactivated.ok();
    assert_eq!(deactivated["Active"], false);
    assert_eq!(
        deactivated,
        &with(account.clone(), json!({"Active": false}))
    );
    let again = h.put(&path, &json!({"Active": false})).await;
    assert_eq!(again.ok()["Active"], false);
    let back = h.put(&path, &json!({"Active": true})).await;
    assert_eq!(
        back.error(400, "param_error")["Active"],
        "A bank account cannot be reactivated: Active can only be set to false."
    );
    assert_eq!(h.get(&path).await.ok()["Active"], false);
}

#[tokio::test]
async fn a_keyed_create_is_replayed_not_repeated() {
    let h = start().await;
    let user = h.user("OWNER").await;
    let path = format!("/users/{user}/bankaccounts/iban");
    let key = "bank-account-key-0001";
    let first = h.post_keyed(&path, &iban_body(), key).await;
    let first = first.ok().clone();
    let second = h.post_keyed(&path, &iban_body(), key).await;
    second.error(409, "idempotent_creation_conflict");
    let replay = h.get(&format!("/responses/{key}")).await;
    let replay = replay.ok();
    assert_eq!(replay["StatusCode"], "200");
    assert_eq!(replay["Resource"], first);
    assert_eq!(h.sandbox().bank_accounts().len(), 1);

    let recipient_key = "recipient-key-00001";
    let recipient_path = format!("/users/{user}/recipients");
    let created = h
        .post_keyed(&recipient_path, &eur_international(), recipient_key)
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let conflict = h
        .post_keyed(&recipient_path, &eur_international(), recipient_key)
        .await;
    conflict.error(409, "idempotent_creation_conflict");
    let replay = h.get(&format!("/responses/{recipient_key}")).await;
    assert_eq!(replay.ok()["StatusCode"], "201");
    assert_eq!(replay.ok()["Resource"], created.body);
    assert_eq!(h.sandbox().recipients().len(), 1);
}

// --- recipients -----------------------------------------------------------------------

fn eur_international() -> Value {
    json!({"DisplayName": "Alex Smith EUR IBAN account",
           "Tag": "Created using the Mangopay API Postman collection",
           "PayoutMethodType": "InternationalBankTransfer", "Currency": "EUR", "Country": "FR",
           "RecipientType": "Business",
           "BusinessRecipient": {"BusinessName": "Alex Smith Consulting",
               "Address": {"AddressLine1": "3 rue de la Cité", "AddressLine2": "Appartement 7",
                           "City": "Paris", "Region": "Ile de France", "PostalCode": "75001",
                           "Country": "FR"}},
           "InternationalBankTransfer": {"AccountNumber": IBAN}})
}

fn gbp_local_payin() -> Value {
    json!({"DisplayName": "Alex Smith GBP local pay-in account",
           "PayoutMethodType": "LocalBankTransfer", "RecipientType": "Individual", "Currency": "GBP",
           "Tag": "Created using the Mangopay API Postman collection", "RecipientScope": "PAYIN",
           "IndividualRecipient": {"FirstName": "Alex", "LastName": "Smith",
               "Address": {"AddressLine1": "10 Kingsway", "City": "London", "PostalCode": "WC2B 6LH",
                           "Country": "GB"}},
           "LocalBankTransfer": {"GBP": {"SortCode": "200000", "AccountNumber": "55779911"}}})
}

fn usd_local() -> Value {
    json!({"DisplayName": "Alex Smith USD account", "PayoutMethodType": "LocalBankTransfer",
           "RecipientType": "Individual", "Currency": "USD", "Country": "US",
           "IndividualRecipient": {"FirstName": "Alex", "LastName": "Smith",
               "Address": {"AddressLine1": "900 Williams Ave", "City": "New York", "Region": "NY",
                           "PostalCode": "10025", "Country": "US"}},
           "LocalBankTransfer": {"USD": {"ABA": "071000288", "AccountNumber": "11696419"}}})
}

#[tokio::test]
async fn payout_recipient_is_created_pending_with_an_sca_link() {
    let h = start().await;
    let user = h.user("OWNER").await;
    let recipient = h.recipient(&user, &eur_international()).await;
    let id = recipient["Id"].as_str().unwrap();
    assert!(id.starts_with("rec_") && id.len() == 30, "{id}");
    assert_eq!(recipient["Status"], "PENDING");
    assert_eq!(recipient["RecipientScope"], "PAYOUT");
    assert_eq!(recipient["UserId"], user.as_str());
    assert_eq!(recipient["Country"], "FR");
    assert_eq!(recipient["PayoutMethodType"], "InternationalBankTransfer");
    assert_eq!(
        recipient["BusinessRecipient"],
        eur_international()["BusinessRecipient"]
    );
    assert_eq!(
        recipient["InternationalBankTransfer"]["AccountNumber"],
        IBAN
    );
    let bic = recipient["InternationalBankTransfer"]["BIC"]
        .as_str()
        .unwrap();
    assert!(bic.len() == 11 && &bic[4..6] == "FR", "{bic}");
    let url = recipient["PendingUserAction"]["RedirectUrl"]
        .as_str()
        .unwrap();
    assert!(
        url.starts_with("https://") && url.contains("token=sca_"),
        "{url}"
    );
    assert_eq!(
        keys(&recipient),
        sorted(&[
            "Id",
            "Status",
            "CreationDate",
            "DisplayName",
            "PayoutMethodType",
            "RecipientType",
            "Currency",
            "Country",
            "UserId",
            "RecipientScope",
            "Tag",
            "BusinessRecipient",
            "InternationalBankTransfer",
            "PendingUserAction"
        ])
    );
    let viewed = h.get(&format!("/recipients/{id}")).await;
    assert_eq!(viewed.ok(), &recipient);
    assert_eq!(h.sandbox().recipient(id), Some(recipient.clone()));
}

#[tokio::test]
async fn payin_recipient_needs_no_owner_and_no_sca() {
    let h = start().await;
    let payer = h.user("PAYER").await;
    let recipient = h.recipient(&payer, &gbp_local_payin()).await;
    assert_eq!(recipient["Status"], "PENDING");
    assert_eq!(recipient["RecipientScope"], "PAYIN");
    assert_eq!(recipient["Country"], "GB", "the currency's country");
    assert_eq!(
        recipient["LocalBankTransfer"],
        json!({"GBP": {"AccountNumber": "55779911", "SortCode": "200000"}})
    );
    let address = &recipient["IndividualRecipient"]["Address"];
    assert!(!address.as_object().unwrap().contains_key("AddressLine2"));
    assert!(
        !recipient
            .as_object()
            .unwrap()
            .contains_key("PendingUserAction")
    );

    let payout = h
        .post(&format!("/users/{payer}/recipients"), &usd_local())
        .await;
    assert_eq!(payout.status, StatusCode::BAD_REQUEST);
    assert_eq!(payout.body["Type"], "invalid_action");
    assert_eq!(h.sandbox().recipients().len(), 1);
}

#[tokio::test]
async fn recipient_fields_follow_the_published_patterns() {
    let h = start().await;
    let user = h.user("OWNER").await;
    let path = format!("/users/{user}/recipients");
    let mut body = gbp_local_payin();
    body["DisplayName"] = json!("Smith & Sons");
    body["IndividualRecipient"]["FirstName"] = json!("A.");
    body["IndividualRecipient"]["Address"]["Region"] = json!("Greater-London");
    body["IndividualRecipient"]["Address"]["PostalCode"] = json!("WC2B 6LH 1234");
    body["IndividualRecipient"]["Address"]
        .as_object_mut()
        .unwrap()
        .remove("City");
    body["LocalBankTransfer"]["GBP"]["AccountNumber"] = json!("5577");
    body["LocalBankTransfer"]["GBP"]["SortCode"] = json!("20000a");
    let refused = h.post(&path, &body).await;
    assert_eq!(
        refused.recipient_error("param_error"),
        &json!({"DisplayName": "INVALID_FORMAT",
                "IndividualRecipient.FirstName": "INVALID_FORMAT",
                "IndividualRecipient.Address.Region": "INVALID_FORMAT",
                "IndividualRecipient.Address.PostalCode": "LENGTH_MORE_THAN_MAX",
                "IndividualRecipient.Address.City": "REQUIRED",
                "LocalBankTransfer.GBP.AccountNumber": "LENGTH_LESS_THAN_MIN",
                "LocalBankTransfer.GBP.SortCode": "INVALID_FORMAT"})
    );

    let mut body = eur_international();
    body.as_object_mut().unwrap().remove("BusinessRecipient");
    body["InternationalBankTransfer"]["AccountNumber"] = json!("FR7630004000031234567890144");
    body["DisplayName"] = json!("x".repeat(51));
    let refused = h.post(&path, &body).await;
    assert_eq!(
        refused.recipient_error("param_error"),
        &json!({"DisplayName": "LENGTH_MORE_THAN_MAX", "BusinessRecipient": "REQUIRED",
                "InternationalBankTransfer.AccountNumber": "INVALID_IBAN"})
    );

    let refused = h
        .post(
            &path,
            &with(
                eur_international(),
                json!({"Currency": "BRL", "RecipientType": "Company", "PayoutMethodType": null}),
            ),
        )
        .await;
    assert_eq!(
        refused.recipient_error("param_error"),
        &json!({"Currency": "UNSUPPORTED_CURRENCY", "RecipientType": "NOT_IN_ALLOWED_VALUES",
                "PayoutMethodType": "REQUIRED"})
    );
    let refused = h
        .post(
            &path,
            &with(eur_international(), json!({"Currency": "EURO"})),
        )
        .await;
    assert_eq!(
        refused.recipient_error("param_error"),
        &json!({"Currency": "NOT_IN_ALLOWED_VALUES"})
    );
    let refused = h
        .post(&path, &with(gbp_local_payin(), json!({"Country": "FR"})))
        .await;
    assert_eq!(
        refused.recipient_error("param_error"),
        &json!({"PayoutMethodType": "UNSUPPORTED_PAYOUT_METHOD_FOR_CURRENCY"})
    );
    let refused = h
        .post(
            &format!("/users/{user}/recipients"),
            &with(
                gbp_local_payin(),
                json!({"Currency": "EUR", "LocalBankTransfer": {"EUR": {"IBAN": "FR00 1234"}}}),
            ),
        )
        .await;
    assert_eq!(
        refused.recipient_error("param_error"),
        &json!({"Country": "REQUIRED"}),
        "an EUR local transfer needs a country or an IBAN naming one"
    );
    let refused = h
        .post(
            &format!("/users/{user}/recipients"),
            &with(
                gbp_local_payin(),
                json!({"Currency": "EUR", "Country": "FR",
                       "LocalBankTransfer": {"EUR": {"IBAN": "BR9700360305000010009795493P1"}}}),
            ),
        )
        .await;
    assert_eq!(
        refused.recipient_error("param_error"),
        &json!({"LocalBankTransfer.EUR.IBAN": "UNSUPPORTED_IBAN"})
    );
    let refused = h.post("/users/user_m_x/recipients", &usd_local()).await;
    assert_eq!(
        refused.recipient_error("param_error"),
        &json!({"UserId": "USER_NOT_FOUND"})
    );
    assert!(h.sandbox().recipients().is_empty());

    let usd = h.recipient(&user, &usd_local()).await;
    assert_eq!(usd["LocalBankTransfer"]["USD"]["ABA"], "071000288");
    let mut no_region = usd_local();
    no_region["IndividualRecipient"]["Address"]
        .as_object_mut()
        .unwrap()
        .remove("Region");
    let refused = h.post(&path, &no_region).await;
    assert_eq!(
        refused.recipient_error("param_error"),
        &json!({"IndividualRecipient.Address.Region": "REQUIRED"})
    );
}

#[tokio::test]
async fn validate_answers_200_without_a_body_and_stores_nothing() {
    let h = start().await;
    let user = h.user("OWNER").await;
    let path = format!("/users/{user}/recipients/validate");
    let valid = h.post(&path, &eur_international()).await;
    assert_eq!(valid.status, StatusCode::OK);
    assert!(valid.text.is_empty());
    let invalid = h
        .post(
            &path,
            &with(eur_international(), json!({"DisplayName": "a/b"})),
        )
        .await;
    assert_eq!(
        invalid.recipient_error("param_error"),
        &json!({"DisplayName": "INVALID_FORMAT"})
    );
    assert!(h.sandbox().recipients().is_empty());
}

#[tokio::test]
async fn list_shows_one_scope_as_summaries() {
    let mut h = start().await;
    let user = h.user("OWNER").await;
    let payout = h.recipient(&user, &eur_international()).await;
    h.advance(Duration::from_secs(1)).await;
    let usd = h.recipient(&user, &usd_local()).await;
    let payin = h.recipient(&user, &gbp_local_payin()).await;
    let other = h.user("OWNER").await;
    h.recipient(&other, &usd_local()).await;

    let listed = h.get(&format!("/users/{user}/recipients")).await;
    let listed = listed.ok();
    assert_eq!(
        ids(listed),
        vec![payout["Id"].as_str().unwrap(), usd["Id"].as_str().unwrap()]
    );
    assert_eq!(
        listed[0],
        json!({"Id": payout["Id"], "DisplayName": payout["DisplayName"],
               "PayoutMethodType": "InternationalBankTransfer", "RecipientType": "Business",
               "Currency": "EUR", "Country": "FR", "UserId": user, "Status": "PENDING",
               "RecipientScope": "PAYOUT"})
    );
    let payins = h
        .get(&format!("/users/{user}/recipients?RecipientScope=PAYIN"))
        .await;
    assert_eq!(ids(payins.ok()), vec![payin["Id"].as_str().unwrap()]);
    let newest = h
        .get(&format!(
            "/users/{user}/recipients?per_page=1&sort=CreationDate:DESC"
        ))
        .await;
    assert_eq!(ids(newest.ok()), vec![usd["Id"].as_str().unwrap()]);
    assert_eq!(newest.header("x-number-of-items"), "2");
    let bad = h
        .get(&format!("/users/{user}/recipients?RecipientScope=BOTH"))
        .await;
    assert_eq!(
        bad.recipient_error("param_error"),
        &json!({"RecipientScope": "NOT_IN_ALLOWED_VALUES"})
    );

    h.sandbox().knobs().set_list_lag(Duration::from_secs(60));
    h.advance(Duration::from_secs(60)).await;
    let late = h.recipient(&user, &usd_local()).await;
    let lagging = h.get(&format!("/users/{user}/recipients")).await;
    assert_eq!(lagging.ok().as_array().unwrap().len(), 2);
    h.advance(Duration::from_secs(60)).await;
    let caught_up = h.get(&format!("/users/{user}/recipients")).await;
    assert_eq!(ids(caught_up.ok()).last().copied(), late["Id"].as_str());
}

#[tokio::test]
async fn control_request_settles_a_pending_recipient() {
    let h = start().await;
    let user = h.user("OWNER").await;
    let recipient = h.recipient(&user, &eur_international()).await;
    let id = recipient["Id"].as_str().unwrap();
    let control = format!("/_sandbox/recipients/{id}/status");

    // Outside the API: no token, no injected faults, no request log.
    h.sandbox().knobs().fail_next(1);
    h.sandbox().clear_request_log();
    let bad = h.control(&control, &json!({"Status": "DEACTIVATED"})).await;
    bad.error(400, "param_error");
    let active = h.control(&control, &json!({"Status": "ACTIVE"})).await;
    let active = active.ok();
    assert_eq!(active["Status"], "ACTIVE");
    assert!(
        !active
            .as_object()
            .unwrap()
            .contains_key("PendingUserAction")
    );
    assert!(h.sandbox().request_log().is_empty());

    let again = h.control(&control, &json!({"Status": "CANCELED"})).await;
    again.error(400, "param_error");
    let unknown = h
        .control(
            "/_sandbox/recipients/rec_x/status",
            &json!({"Status": "ACTIVE"}),
        )
        .await;
    unknown.error(404, "ressource_not_found");
    // The failure armed before the control requests is still there for the API.
    let failed = h.get(&format!("/recipients/{id}")).await;
    failed.error(500, "internal_server_error");
    assert_eq!(h.get(&format!("/recipients/{id}")).await.ok(), active);

    let payin = h.recipient(&user, &gbp_local_payin()).await;
    let payin_id = payin["Id"].as_str().unwrap();
    let refused = h
        .sandbox()
        .set_recipient_status(payin_id, RecipientStatus::Canceled);
    assert!(refused.unwrap_err().contains("PAYIN"));
    let canceled_payout = h.recipient(&user, &usd_local()).await;
    let canceled = h
        .sandbox()
        .set_recipient_status(
            canceled_payout["Id"].as_str().unwrap(),
            RecipientStatus::Canceled,
        )
        .unwrap();
    assert_eq!(canceled["Status"], "CANCELED");
    assert!(
        h.sandbox()
            .set_recipient_status("rec_x", RecipientStatus::Active)
            .is_err()
    );
}

#[tokio::test]
async fn only_an_active_recipient_is_deactivated() {
    let h = start().await;
    let user = h.user("OWNER").await;
    let recipient = h.recipient(&user, &eur_international()).await;
    let id = recipient["Id"].as_str().unwrap();
    let path = format!("/recipients/{id}");
    let pending = h.put(&path, &json!({"Status": "DEACTIVATED"})).await;
    assert!(pending.recipient_error("other").is_null());
    assert_eq!(pending.body["Message"], "Invalid State");
    let wrong = h.put(&path, &json!({"Status": "ACTIVE"})).await;
    assert_eq!(
        wrong.recipient_error("param_error"),
        &json!({"Status": "NOT_IN_ALLOWED_VALUES"})
    );
    h.sandbox()
        .set_recipient_status(id, RecipientStatus::Active)
        .unwrap();
    let deactivated = h.put(&path, &json!({"Status": "DEACTIVATED"})).await;
    assert_eq!(deactivated.ok()["Status"], "DEACTIVATED");
    let again = h.put(&path, &json!({"Status": "DEACTIVATED"})).await;
    again.recipient_error("other");
    let unknown = h
        .put("/recipients/rec_x", &json!({"Status": "DEACTIVATED"}))
        .await;
    unknown.error(404, "ressource_not_found");
}

#[tokio::test]
async fn the_sca_knob_settles_recipients_after_a_delay() {
    let mut h = start().await;
    let user = h.user("OWNER").await;
    let manual = h.recipient(&user, &eur_international()).await;
    h.sandbox()
        .knobs()
        .set_recipient_sca(RecipientSca::ActivateAfter(Duration::from_secs(300)));
    let activated = h.recipient(&user, &eur_international()).await;
    h.sandbox()
        .knobs()
        .set_recipient_sca(RecipientSca::CancelAfter(Duration::from_secs(300)));
    let canceled = h.recipient(&user, &usd_local()).await;
    let payin = h.recipient(&user, &gbp_local_payin()).await;
    let status = |h: &Harness, r: &Value| {
        h.sandbox().recipient(r["Id"].as_str().unwrap()).unwrap()["Status"].clone()
    };
    h.advance(Duration::from_secs(299)).await;
    for r in [&manual, &activated, &canceled, &payin] {
        assert_eq!(status(&h, r), "PENDING");
    }
    h.advance(Duration::from_secs(1)).await;
    let viewed = h
        .get(&format!(
            "/recipients/{}",
            activated["Id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(viewed.ok()["Status"], "ACTIVE");
    assert!(
        !viewed
            .body
            .as_object()
            .unwrap()
            .contains_key("PendingUserAction")
    );
    let listed = h.get(&format!("/users/{user}/recipients")).await;
    let statuses: Vec<&str> = listed
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["PENDING", "ACTIVE", "CANCELED"]);
    assert_eq!(
        status(&h, &payin),
        "ACTIVE",
        "CANCELED does not apply to PAYIN"
    );
    h.advance(Duration::from_secs(3600)).await;
    assert_eq!(status(&h, &manual), "PENDING");
    assert_eq!(
        h.sandbox().knobs().recipient_sca(),
        RecipientSca::CancelAfter(Duration::from_secs(300))
    );
}

/// The reference's schema example "EUR, US, international, individual".
fn reference_eur_us_schema() -> Value {
    json!({
      "DisplayName": {"Required": true, "MaxLength": 50, "Pattern": "^(?!.*[&,'/]).{1,50}$",
                      "Label": "Display Name", "EndUserDisplay": "Show"},
      "Currency": {"AllowedValues": ["EUR"], "Required": true, "MaxLength": 3, "MinLength": 3,
                   "Pattern": "^[a-zA-Z]{3}$", "Label": "Currency", "EndUserDisplay": "Hide"},
      "Country": {"AllowedValues": ["US"], "Required": true, "MaxLength": 2, "MinLength": 2,
                  "Pattern": "^[a-zA-Z]{2}$", "Label": "Destination Country", "EndUserDisplay": "Hide"},
      "RecipientType": {"AllowedValues": ["Individual"], "Required": true, "Pattern": "^[a-zA-Z]+$",
                        "Label": "Recipient Type", "EndUserDisplay": "Hide"},
      "PayoutMethodType": {"AllowedValues": ["InternationalBankTransfer"], "Required": true,
                           "Pattern": "^[a-zA-Z]+$", "Label": "Payout Method Type", "EndUserDisplay": "Hide"},
      "Tag": {"Required": false, "MaxLength": 255, "Pattern": "^.{0,255}$", "Label": "Tag",
              "EndUserDisplay": "Hide"},
      "RecipientScope": {"AllowedValues": ["PAYOUT", "PAYIN"], "Required": false, "Pattern": "^[a-zA-Z]+$",
                         "Label": "Recipient Scope", "EndUserDisplay": "Hide"},
      "IndividualRecipient": {
        "FirstName": {"Required": true, "MaxLength": 255, "Pattern": "^(?!.*[()&,.:_/]).{1,255}$",
                      "Label": "First Name", "EndUserDisplay": "Show"},
        "LastName": {"Required": true, "MaxLength": 255, "Pattern": "^(?!.*[()&,.:_/]).{1,255}$",
                     "Label": "Last Name", "EndUserDisplay": "Show"},
        "Address": {
          "AddressLine1": {"Required": true, "MaxLength": 255, "Pattern": "^(?!.*[()/]).{1,255}$",
                           "Label": "Address Line 1", "EndUserDisplay": "Show"},
          "AddressLine2": {"Required": false, "MaxLength": 255, "Pattern": "^(?!.*[()/]).{1,255}$",
                           "Label": "Address Line 2", "EndUserDisplay": "Show"},
          "City": {"Required": true, "MaxLength": 80, "Pattern": "^(?!.*[&,.:_']).{1,80}$",
                   "Label": "City", "EndUserDisplay": "Show"},
          "Country": {"Required": true, "MaxLength": 2, "MinLength": 2, "Pattern": "^[a-zA-Z]+$",
                      "Label": "Country", "EndUserDisplay": "Show"},
          "Region": {"Required": false, "MaxLength": 50, "Pattern": "^(?!.*[&,.:_'-/]).{1,50}$",
                     "Label": "Region", "EndUserDisplay": "Show"},
          "PostalCode": {"Required": true, "MaxLength": 10, "Pattern": "^(?!.*[()&,.:_'/]).{1,10}$",
                         "Label": "Postal Code", "EndUserDisplay": "Show"}
        }
      },
      "InternationalBankTransfer": {
        "AccountNumber": {"Required": true, "MaxLength": 12, "MinLength": 8,
                          "Pattern": "^[0-9a-zA-Z]{8,12}$", "Label": "Account Number", "EndUserDisplay": "Show"},
        "BIC": {"Required": true, "Pattern": "^[0-9a-zA-Z]{8}([0-9a-zA-Z]{3})?$", "Label": "BIC",
                "EndUserDisplay": "Show"}
      }
    })
}

#[tokio::test]
async fn schema_matches_the_reference_examples() {
    let h = start().await;
    // As the Python and Node SDKs spell the query.
    let eur_us = h
        .get("/recipients/schema?payoutMethodType=InternationalBankTransfer&recipientType=Individual&currency=EUR&country=US")
        .await;
    assert_eq!(eur_us.ok(), &reference_eur_us_schema());
    assert!(
        eur_us
            .text
            .starts_with(r#"{"DisplayName":{"Required":true,"MaxLength":50"#),
        "keys in the reference's order: {}",
        eur_us.text
    );

    let cad = h
        .get("/recipients/schema?PayoutMethodType=LocalBankTransfer&RecipientType=Business&Currency=CAD&Country=CA")
        .await;
    let cad = cad.ok();
    assert_eq!(
        cad["LocalBankTransfer"],
        json!({"CAD": {
            "AccountNumber": {"Required": true, "MaxLength": 35, "MinLength": 7, "Pattern": "^\\d{7,35}$",
                              "Label": "Account Number", "EndUserDisplay": "Show"},
            "InstitutionNumber": {"Required": true, "MaxLength": 3, "MinLength": 3, "Pattern": "^\\d{3}$",
                                  "Label": "Institution Number", "EndUserDisplay": "Show"},
            "BranchCode": {"Required": true, "MaxLength": 5, "MinLength": 5, "Pattern": "^\\d{5}$",
                           "Label": "Branch Code", "EndUserDisplay": "Show"},
            "BankName": {"Required": true, "MaxLength": 50, "Label": "Bank Name", "EndUserDisplay": "Show"}}})
    );
    assert_eq!(
        cad["BusinessRecipient"]["BusinessName"]["Pattern"],
        "^(?!.*[(),.:/]).{1,255}$"
    );
    assert_eq!(
        cad["BusinessRecipient"]["Address"]["Region"]["Required"],
        true
    );
    assert!(!cad.as_object().unwrap().contains_key("IndividualRecipient"));

    let gbp = h
        .get("/recipients/schema?PayoutMethodType=LocalBankTransfer&RecipientType=Individual&Currency=GBP&Country=GB")
        .await;
    assert_eq!(
        keys(&gbp.ok()["LocalBankTransfer"]["GBP"]),
        sorted(&["AccountNumber", "SortCode"])
    );
    let eur_fr = h
        .get("/recipients/schema?PayoutMethodType=InternationalBankTransfer&RecipientType=Business&Currency=EUR&Country=FR")
        .await;
    assert_eq!(
        keys(&eur_fr.ok()["InternationalBankTransfer"]),
        sorted(&["AccountNumber"]),
        "no BIC for an IBAN country"
    );

    let unsupported = h
        .get("/recipients/schema?PayoutMethodType=LocalBankTransfer&RecipientType=Individual&Currency=GBP&Country=FR")
        .await;
    assert_eq!(
        unsupported.recipient_error("param_error"),
        &json!({"PayoutMethodType": "UNSUPPORTED_PAYOUT_METHOD_FOR_CURRENCY"})
    );
    let missing = h.get("/recipients/schema?Currency=XBT").await;
    assert_eq!(
        missing.recipient_error("param_error"),
        &json!({"PayoutMethodType": "REQUIRED", "RecipientType": "REQUIRED",
                "Currency": "UNSUPPORTED_CURRENCY"})
    );
}

#[tokio::test]
async fn payout_methods_depend_on_currency_and_country() {
    let h = start().await;
    let gbp = h
        .get("/recipients/payout-methods?country=GB&currency=GBP")
        .await;
    assert_eq!(
        gbp.ok(),
        &json!({"AvailablePayoutMethods": ["LocalBankTransfer", "InternationalBankTransfer"]})
    );
    let eur_us = h
        .get("/recipients/payout-methods?Country=US&Currency=EUR")
        .await;
    assert_eq!(
        eur_us.ok(),
        &json!({"AvailablePayoutMethods": ["InternationalBankTransfer"]})
    );
    let brl = h
        .get("/recipients/payout-methods?Country=BR&Currency=BRL")
        .await;
    assert_eq!(
        brl.recipient_error("param_error"),
        &json!({"Currency": "UNSUPPORTED_CURRENCY"})
    );
    let no_country = h.get("/recipients/payout-methods?Currency=EUR").await;
    assert_eq!(
        no_country.recipient_error("param_error"),
        &json!({"Country": "REQUIRED"})
    );
}

#[tokio::test]
async fn fixed_words_of_recipient_paths_take_any_case() {
    let h = start().await;
    let user = h.user("OWNER").await;
    let created = h
        .post(&format!("/Users/{user}/Recipients/"), &usd_local())
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let methods = h
        .get("/Recipients/Payout-Methods?Country=US&Currency=USD")
        .await;
    methods.ok();
    let valid = h
        .post(&format!("/users/{user}/recipients/VALIDATE"), &usd_local())
        .await;
    assert_eq!(valid.status, StatusCode::OK);
}

/// The status and body of an error as a pay-out would answer it.
async fn rendered(error: super::error::ApiError) -> (u16, Value) {
    let response = error.into_response();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn payout_destination_accepts_only_active_own_accounts() {
    let h = start().await;
    let user = h.user("OWNER").await;
    let other = h.user("OWNER").await;
    let shared = h.sandbox().shared().clone();
    let account = h.bank_account(&user, "iban", &iban_body()).await;
    let account = account["Id"].as_str().unwrap();
    assert_eq!(payout_destination(&shared, &user, account), Ok(()));

    let (status, body) = rendered(payout_destination(&shared, &other, account).unwrap_err()).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["errors"]["BankAccountId"],
        "The author is not the bank account owner"
    );

    let (status, body) =
        rendered(payout_destination(&shared, &user, "bankacc_m_unknown").unwrap_err()).await;
    assert_eq!(
        (status, body["Type"].as_str()),
        (404, Some("ressource_not_found"))
    );

    let recipient = h.recipient(&user, &eur_international()).await;
    let recipient = recipient["Id"].as_str().unwrap();
    let (status, body) = rendered(payout_destination(&shared, &user, recipient).unwrap_err()).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["errors"]["BankAccountId"],
        "The associated bank account is not active"
    );
    h.sandbox()
        .set_recipient_status(recipient, RecipientStatus::Active)
        .unwrap();
    assert_eq!(payout_destination(&shared, &user, recipient), Ok(()));
    assert!(payout_destination(&shared, &other, recipient).is_err());

    let payin = h.recipient(&user, &gbp_local_payin()).await;
    let payin = payin["Id"].as_str().unwrap();
    h.sandbox()
        .set_recipient_status(payin, RecipientStatus::Active)
        .unwrap();
    let (status, body) = rendered(payout_destination(&shared, &user, payin).unwrap_err()).await;
    assert_eq!(status, 400);
    assert_eq!(body["Type"], "invalid_action");
    assert_eq!(
        body["Message"],
        "Payout not allowed for RecipientScope PAYIN"
    );

    let path = format!("/users/{user}/bankaccounts/{account}");
    h.put(&path, &json!({"Active": false})).await.ok();
    let (status, body) = rendered(payout_destination(&shared, &user, account).unwrap_err()).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["errors"]["BankAccountId"],
        "The associated bank account is not active"
    );

    // A recipient the SCA knob activates is usable once its delay has passed.
    h.sandbox()
        .knobs()
        .set_recipient_sca(RecipientSca::ActivateAfter(Duration::from_secs(60)));
    let later = h.recipient(&user, &usd_local()).await;
    let later = later["Id"].as_str().unwrap();
    assert!(payout_destination(&shared, &user, later).is_err());
    h.sandbox().clock().advance(Duration::from_secs(60));
    assert_eq!(payout_destination(&shared, &user, later), Ok(()));
}

#[test]
fn iban_countries_come_from_the_swift_registry() {
    use super::bank_accounts::uses_iban;
    for country in ["FR", "DE", "GB", "CH", "BR", "NO"] {
        assert!(uses_iban(country), "{country} uses IBANs");
    }
    for country in ["US", "CA", "AU", "JP", "fr", "XX", "F"] {
        assert!(!uses_iban(country), "{country} does not");
    }
}

#[tokio::test]
async fn bank_accounts_respect_the_country_restrictions() {
    let h = start().await;
    let user = h.user("OWNER").await;
    h.sandbox().knobs().set_blocked_countries(&["DE"]);
    let path = format!("/users/{user}/bankaccounts/iban");
    let blocked = h
        .post(
            &path,
            &with(iban_body(), json!({"IBAN": "DE89370400440532013000"})),
        )
        .await;
    assert_eq!(
        blocked.error(400, "param_error")["IBAN"],
        "The IBAN used is blocked"
    );
    let mut address = paris();
    address["Country"] = json!("DE");
    let blocked = h
        .post(&path, &with(iban_body(), json!({"OwnerAddress": address})))
        .await;
    assert_eq!(
        keys(blocked.error(400, "param_error")),
        sorted(&["OwnerAddress.Country"])
    );
    let other = h
        .post(
            &format!("/users/{user}/bankaccounts/other"),
            &with(other_body(), json!({"Country": "DE"})),
        )
        .await;
    assert_eq!(keys(other.error(400, "param_error")), sorted(&["Country"]));
    h.bank_account(&user, "iban", &iban_body()).await;
}
