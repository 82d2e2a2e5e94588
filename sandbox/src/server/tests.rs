//! Loopback tests: each serves a fresh sandbox on `127.0.0.1:0` and drives it
//! over real HTTP with reqwest, one intent per test.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::{
    AnswerLoss, LookupFailure, MissingResponse, PutEmptyString, PutNull, RequestRecord,
    RunningSandbox, Sandbox, SandboxConfig,
};

const DAY: Duration = Duration::from_secs(24 * 3600);

/// An answer: status, headers and JSON body (`Value::Null` when not JSON).
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
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
        let id = self.body["Id"].as_str().expect("Id is a string");
        let (uuid, unix) = id.split_once('#').expect("Id is <uuid>#<unix>");
        assert!(uuid::Uuid::parse_str(uuid).is_ok(), "{id}");
        assert!(unix.parse::<i64>().is_ok(), "{id}");
        assert!(
            self.body["Date"].is_i64(),
            "Date is an integer: {}",
            self.body
        );
        assert!(self.body["Message"].is_string());
        assert!(self.body.as_object().unwrap().contains_key("errors"));
        &self.body["errors"]
    }

    /// The keys of a param_error's `errors`, sorted.
    fn param_error_keys(&self) -> Vec<String> {
        let errors = self.error(400, "param_error");
        assert_eq!(
            self.body["Message"],
            "One or several required parameters are missing or incorrect. An incorrect resource ID also raises this kind of error."
        );
        errors
            .as_object()
            .expect("errors is a map")
            .keys()
            .cloned()
            .collect()
    }
}

/// A served sandbox, an HTTP client and a valid token.
struct Harness {
    running: RunningSandbox,
    http: reqwest::Client,
    token: String,
}

async fn start() -> Harness {
    start_with(SandboxConfig::default()).await
}

async fn start_with(config: SandboxConfig) -> Harness {
    let running = Sandbox::new(config)
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .expect("the sandbox binds a free port");
    let http = http_client();
    let mut harness = Harness {
        running,
        http,
        token: String::new(),
    };
    harness.token = harness.new_token().await;
    harness
}

impl Harness {
    fn sandbox(&self) -> &Sandbox {
        self.running.sandbox()
    }

    /// Moves the sandbox clock forward and takes a fresh token (the old one may
    /// have expired on the way).
    async fn advance(&mut self, d: Duration) {
        self.sandbox().clock().advance(d);
        self.token = self.new_token().await;
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.base_url())
    }

    /// `/v2.01/{ClientId}` followed by `path`.
    fn api(&self, path: &str) -> String {
        self.url(&format!(
            "/v2.01/{}{path}",
            self.sandbox().config().client_id
        ))
    }

    async fn new_token(&self) -> String {
        let config = self.sandbox().config();
        let answer = self.token_call(&config.client_id, &config.api_key).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.body["access_token"].as_str().unwrap().to_owned()
    }

    async fn token_call(&self, client_id: &str, api_key: &str) -> Answer {
        let request = self
            .http
            .post(self.url("/v2.01/oauth/token"))
            .basic_auth(client_id, Some(api_key))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(r#"{"grant_type": "client_credentials"}"#);
        answer(request).await
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

    /// Creates a user and returns its JSON, asserting a 200.
    async fn create(&self, kind: &str, body: &Value) -> Value {
        let answer = self.post(&format!("/users/{kind}"), body).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.body
    }
}

/// A plain-HTTP client for the loopback tests.
fn http_client() -> reqwest::Client {
    // Built alone, reqwest has no TLS here; in a workspace build it has rustls without a
    // crypto provider, and a client cannot be built until this test binary installs one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// The fault marker of the last request logged.
fn last_fault(h: &Harness) -> Option<&'static str> {
    h.sandbox()
        .request_log()
        .last()
        .expect("a request was logged")
        .fault
}

/// The last logged request carrying this `Idempotency-Key`.
fn keyed_record(h: &Harness, key: &str) -> RequestRecord {
    h.sandbox()
        .request_log()
        .into_iter()
        .rev()
        .find(|r| r.idempotency_key.as_deref() == Some(key))
        .unwrap_or_else(|| panic!("no request with key {key}"))
}

/// Waits until `condition` holds, checking every few milliseconds for at most 5 s.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A request that must fail without any HTTP answer; returns the error.
async fn no_answer(request: reqwest::RequestBuilder) -> reqwest::Error {
    match request.send().await {
        Ok(response) => panic!("expected no answer, got {}", response.status()),
        Err(err) => {
            assert!(err.status().is_none(), "{err:?}");
            err
        }
    }
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("the sandbox answers");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

fn paris() -> Value {
    json!({"AddressLine1": "3 rue de la Cité", "AddressLine2": "Appartement 7", "City": "Paris",
           "Region": "Île-de-France", "PostalCode": "75004", "Country": "FR"})
}

fn natural_owner() -> Value {
    json!({"UserCategory": "OWNER", "TermsAndConditionsAccepted": true, "Address": paris(),
           "FirstName": "Alex", "LastName": "Smith", "Email": "alex.smith@example.com",
           "Birthday": 652117514, "Nationality": "FR", "CountryOfResidence": "FR",
           "Tag": "Created using Mangopay API Postman collection"})
}

fn natural_payer() -> Value {
    json!({"UserCategory": "PAYER", "TermsAndConditionsAccepted": false, "Address": paris(),
           "FirstName": "Alex", "LastName": "Smith", "Email": "alex.smith@example.com",
           "Tag": "Created using Mangopay API Postman collection"})
}

fn legal_owner() -> Value {
    json!({"UserCategory": "OWNER", "TermsAndConditionsAccepted": true, "LegalPersonType": "BUSINESS",
           "Name": "Best Business", "Email": "best.business@example.com",
           "HeadquartersAddress": {"AddressLine1": "34 rue des Entreprises", "AddressLine2": "Batiment B",
                                   "City": "Paris", "Region": "Île-de-France", "PostalCode": "75001", "Country": "FR"},
           "CompanyNumber": "123456789", "LegalRepresentativeFirstName": "Alex",
           "LegalRepresentativeLastName": "Smith", "LegalRepresentativeEmail": "alex.smith@example.com",
           "LegalRepresentativeBirthday": 652117514, "LegalRepresentativeNationality": "FR",
           "LegalRepresentativeCountryOfResidence": "FR", "LegalRepresentativeAddress": paris(),
           "Tag": "Created using Mangopay API Postman collection"})
}

fn legal_payer() -> Value {
    json!({"UserCategory": "PAYER", "TermsAndConditionsAccepted": false, "LegalPersonType": "BUSINESS",
           "Name": "Best Business", "Email": "best.business@example.com",
           "LegalRepresentativeFirstName": "Alex", "LegalRepresentativeLastName": "Smith",
           "LegalRepresentativeAddress": paris(), "Tag": "Created using Mangopay API Postman collection"})
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

fn is_ulid_user_id(id: &str) -> bool {
    let Some(ulid) = id.strip_prefix("user_m_") else {
        return false;
    };
    ulid.len() == 26
        && ulid
            .bytes()
            .all(|b| b"0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(&b))
}

// ---------------------------------------------------------------- tokens

#[tokio::test]
async fn token_answers_200_with_bearer_and_ttl_whatever_the_body() {
    let h = start().await;
    let python = h.token_call("sandbox-client", "sandbox-api-key").await;
    assert_eq!(python.status, StatusCode::OK);
    assert_eq!(
        keys(&python.body),
        ["access_token", "expires_in", "token_type"]
    );
    assert_eq!(python.body["token_type"], "Bearer");
    assert_eq!(python.body["expires_in"], 1200);
    let node = answer(
        h.http
            .post(h.url("/v2.01/oauth/token"))
            .basic_auth("sandbox-client", Some("sandbox-api-key"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials"),
    )
    .await;
    assert_eq!(node.status, StatusCode::OK);
    // start() fetched one token as well.
    assert_eq!(h.sandbox().token_requests(), 3);
}

#[tokio::test]
async fn token_with_bad_or_missing_credentials_is_401() {
    let h = start().await;
    for (client, key) in [
        ("sandbox-client", "wrong"),
        ("other-client", "sandbox-api-key"),
    ] {
        let answer = h.token_call(client, key).await;
        assert!(answer.error(401, "invalid_credentials").is_null());
        assert_eq!(
            answer.body["Message"],
            "The authorization credentials are not valid"
        );
    }
    let missing = answer(h.http.post(h.url("/v2.01/oauth/token"))).await;
    missing.error(401, "invalid_credentials");
    let garbage = answer(
        h.http
            .post(h.url("/v2.01/oauth/token"))
            .header("Authorization", "Basic %%%not-base64"),
    )
    .await;
    garbage.error(401, "invalid_credentials");
    assert_eq!(h.sandbox().token_requests(), 5);
}

#[tokio::test]
async fn calls_need_a_valid_bearer_for_the_path_client() {
    let h = start().await;
    assert_eq!(h.get("/users").await.status, StatusCode::OK);
    let none = answer(h.http.get(h.api("/users"))).await;
    none.error(401, "invalid_credentials");
    let forged = answer(
        h.http
            .get(h.api("/users"))
            .bearer_auth("99999999999.deadbeef"),
    )
    .await;
    forged.error(401, "invalid_credentials");
    let other_client = answer(
        h.http
            .get(h.url("/v2.01/other-client/users"))
            .bearer_auth(&h.token),
    )
    .await;
    other_client.error(401, "invalid_credentials");
}

#[tokio::test]
async fn tokens_expire_by_the_sandbox_clock() {
    let h = start_with(SandboxConfig {
        token_ttl: Duration::from_secs(600),
        ..SandboxConfig::default()
    })
    .await;
    let token = h.token_call("sandbox-client", "sandbox-api-key").await;
    assert_eq!(token.body["expires_in"], 600);
    h.sandbox().clock().advance(Duration::from_secs(599));
    assert_eq!(h.get("/users").await.status, StatusCode::OK);
    h.sandbox().clock().advance(Duration::from_secs(1));
    h.get("/users").await.error(401, "invalid_credentials");
    let fresh = h.new_token().await;
    let answer = answer(h.http.get(h.api("/users")).bearer_auth(fresh)).await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn tokens_survive_a_restart_with_the_same_credentials_only() {
    let first = start().await;
    let token = first.token.clone();
    first.running.shutdown().await;

    let second = start().await;
    let reused = answer(second.http.get(second.api("/users")).bearer_auth(&token)).await;
    assert_eq!(reused.status, StatusCode::OK);

    let rekeyed = start_with(SandboxConfig {
        api_key: "another-key".to_owned(),
        ..SandboxConfig::default()
    })
    .await;
    let refused = answer(rekeyed.http.get(rekeyed.api("/users")).bearer_auth(&token)).await;
    refused.error(401, "invalid_credentials");
}

// ---------------------------------------------------------------- users: shapes

#[tokio::test]
async fn natural_owner_is_created_exactly_as_documented() {
    let h = start().await;
    let before = h.sandbox().clock().now().timestamp();
    let user = h.create("natural", &natural_owner()).await;
    let id = user["Id"].as_str().unwrap();
    assert!(is_ulid_user_id(id), "{id}");
    let creation = user["CreationDate"].as_i64().unwrap();
    assert!((before..=before + 2).contains(&creation));
    let expected = json!({
        "Address": paris(), "FirstName": "Alex", "LastName": "Smith", "Birthday": 652117514,
        "Nationality": "FR", "CountryOfResidence": "FR", "Occupation": null, "IncomeRange": null,
        "ProofOfIdentity": null, "ProofOfAddress": null, "Capacity": "NORMAL", "PhoneNumber": null,
        "PhoneNumberCountry": null, "Id": id, "Tag": "Created using Mangopay API Postman collection",
        "CreationDate": creation, "PersonType": "NATURAL", "Email": "alex.smith@example.com",
        "KYCLevel": "LIGHT", "TermsAndConditionsAccepted": true, "TermsAndConditionsAcceptedDate": creation,
        "UserCategory": "OWNER", "UserStatus": "ACTIVE"
    });
    assert_eq!(user, expected);
    assert_eq!(h.sandbox().user(id), Some(expected.clone()));
    assert_eq!(h.sandbox().users(), vec![expected]);
    assert_eq!(h.sandbox().user_count(), 1);
}

#[tokio::test]
async fn natural_payer_gets_documented_nulls() {
    let h = start().await;
    let body = with(
        natural_payer(),
        json!({"Birthday": 652117514, "Nationality": "FR", "CountryOfResidence": "FR",
               "Occupation": "Baker", "IncomeRange": 3, "TermsAndConditionsAccepted": true}),
    );
    let user = h.create("natural", &body).await;
    for key in [
        "Birthday",
        "Nationality",
        "CountryOfResidence",
        "Occupation",
        "IncomeRange",
        "TermsAndConditionsAcceptedDate",
    ] {
        assert!(user[key].is_null(), "{key} of {user}");
    }
    assert_eq!(user["TermsAndConditionsAccepted"], true);
    assert_eq!(user["Address"], paris());
    assert_eq!(user["UserCategory"], "PAYER");
    assert!(!user.as_object().unwrap().contains_key("PendingUserAction"));
}

#[tokio::test]
async fn legal_owner_is_created_exactly_as_documented() {
    let h = start().await;
    let user = h.create("legal", &legal_owner()).await;
    let id = user["Id"].as_str().unwrap();
    assert!(is_ulid_user_id(id));
    let creation = user["CreationDate"].as_i64().unwrap();
    let expected = json!({
        "HeadquartersAddress": legal_owner()["HeadquartersAddress"], "LegalRepresentativeAddress": paris(),
        "Name": "Best Business", "LegalPersonType": "BUSINESS", "LegalRepresentativeFirstName": "Alex",
        "LegalRepresentativeLastName": "Smith", "LegalRepresentativeEmail": "alex.smith@example.com",
        "LegalRepresentativeBirthday": 652117514, "LegalRepresentativeNationality": "FR",
        "LegalRepresentativeCountryOfResidence": "FR", "ProofOfRegistration": null,
        "ShareholderDeclaration": null, "Statute": null, "LegalRepresentativeProofOfIdentity": null,
        "CompanyNumber": "123456789", "PhoneNumber": null, "PhoneNumberCountry": null, "Id": id,
        "Tag": "Created using Mangopay API Postman collection", "CreationDate": creation,
        "PersonType": "LEGAL", "Email": "best.business@example.com", "KYCLevel": "LIGHT",
        "TermsAndConditionsAccepted": true, "TermsAndConditionsAcceptedDate": creation,
        "UserCategory": "OWNER", "UserStatus": "ACTIVE"
    });
    assert_eq!(user, expected);
}

#[tokio::test]
async fn legal_payer_gets_documented_nulls() {
    let h = start().await;
    let body = with(
        legal_payer(),
        json!({"CompanyNumber": "123", "LegalRepresentativeNationality": "FR"}),
    );
    let user = h.create("legal", &body).await;
    let empty = json!({"AddressLine1": null, "AddressLine2": null, "City": null, "Region": null,
                       "PostalCode": null, "Country": null});
    assert_eq!(user["HeadquartersAddress"], empty);
    assert_eq!(user["LegalRepresentativeAddress"], paris());
    for key in [
        "CompanyNumber",
        "LegalRepresentativeEmail",
        "LegalRepresentativeBirthday",
        "LegalRepresentativeNationality",
        "LegalRepresentativeCountryOfResidence",
        "TermsAndConditionsAcceptedDate",
    ] {
        assert!(user[key].is_null(), "{key} of {user}");
    }
    assert_eq!(user["PersonType"], "LEGAL");
}

#[tokio::test]
async fn sdk_style_values_and_read_only_keys_are_accepted() {
    let h = start().await;
    // Python: booleans as 1/0, numbers as strings, read-only model defaults.
    let python = with(
        natural_owner(),
        json!({"TermsAndConditionsAccepted": 1, "IncomeRange": "2", "PersonType": "NATURAL",
               "KYCLevel": "REGULAR", "Id": "forged", "CreationDate": 1, "UserId": "x", "Capacity": "DECLARATIVE"}),
    );
    let user = h.create("natural", &python).await;
    assert_eq!(user["TermsAndConditionsAccepted"], true);
    assert_eq!(user["IncomeRange"], 2);
    assert_eq!(user["KYCLevel"], "LIGHT");
    assert_ne!(user["Id"], "forged");
    assert_ne!(user["CreationDate"], 1);
    assert_eq!(user["Capacity"], "NORMAL");
    // Node: null defaults for everything not set.
    let node = with(natural_payer(), json!({"Address": null}));
    let mut node = node.as_object().unwrap().clone();
    for key in [
        "Birthday",
        "Nationality",
        "Occupation",
        "ProofOfIdentity",
        "PersonType",
    ] {
        node.insert(key.to_owned(), Value::Null);
    }
    node.insert("TermsAndConditionsAccepted".to_owned(), json!(0));
    let user = h.create("natural", &Value::Object(node)).await;
    assert!(user["Address"]["City"].is_null());
}

// ---------------------------------------------------------------- users: update, view

#[tokio::test]
async fn put_is_a_partial_update_that_ignores_read_only_keys_and_nulls() {
    let h = start().await;
    let user = h.create("natural", &natural_owner()).await;
    let id = user["Id"].as_str().unwrap();
    h.sandbox().clock().advance(Duration::from_secs(60));
    let update = json!({"FirstName": "Alexandra", "Tag": null, "PersonType": "LEGAL", "Id": "other",
                        "KYCLevel": "REGULAR", "CreationDate": 5, "Nationality": "DE", "Unknown": [1, 2]});
    let answer = h.put(&format!("/users/natural/{id}"), &update).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let mut expected = user.clone();
    expected["FirstName"] = json!("Alexandra");
    expected["Nationality"] = json!("DE");
    assert_eq!(answer.body, expected);
    assert_eq!(h.get(&format!("/users/{id}")).await.body, expected);

    let legal = h.create("legal", &legal_owner()).await;
    let legal_id = legal["Id"].as_str().unwrap();
    let address = json!({"AddressLine1": "1 Main St", "City": "Austin", "Region": "TX", "PostalCode": "73301", "Country": "US"});
    let answer = h
        .put(
            &format!("/users/legal/{legal_id}"),
            &json!({"HeadquartersAddress": address, "Name": "New name"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["Name"], "New name");
    assert_eq!(
        answer.body["HeadquartersAddress"]["AddressLine2"],
        Value::Null
    );
    assert_eq!(answer.body["HeadquartersAddress"]["Region"], "TX");
    assert_eq!(answer.body["CompanyNumber"], "123456789");
}

#[tokio::test]
async fn put_validates_the_merged_user() {
    let h = start().await;
    let payer = h.create("natural", &natural_payer()).await;
    let path = format!("/users/natural/{}", payer["Id"].as_str().unwrap());
    let upgrade = json!({"UserCategory": "OWNER", "TermsAndConditionsAccepted": true});
    let missing = h.put(&path, &upgrade).await;
    assert_eq!(
        missing.param_error_keys(),
        sorted(&["Birthday", "CountryOfResidence", "Nationality"])
    );
    h.sandbox().clock().advance(Duration::from_secs(30));
    let full = with(
        upgrade,
        json!({"Birthday": 652117514, "Nationality": "FR", "CountryOfResidence": "FR"}),
    );
    let owner = h.put(&path, &full).await;
    assert_eq!(owner.status, StatusCode::OK, "{}", owner.body);
    assert_eq!(owner.body["UserCategory"], "OWNER");
    assert_eq!(
        owner.body["TermsAndConditionsAcceptedDate"],
        payer["CreationDate"].as_i64().unwrap() + 30
    );

    let downgrade = h.put(&path, &json!({"UserCategory": "PAYER"})).await;
    let errors = downgrade.error(400, "param_error");
    assert_eq!(
        errors["UserCategory"],
        "A User OWNER can't be modified to a user PAYER"
    );
    let revoke = h
        .put(&path, &json!({"TermsAndConditionsAccepted": false}))
        .await;
    assert!(revoke.error(400, "invalid_action").is_null());
    assert_eq!(
        revoke.body["Message"],
        "The user cannot revoke the terms and conditions acceptance"
    );
    let bad = h
        .put(
            &path,
            &json!({"FirstName": "x".repeat(101), "Email": "nope"}),
        )
        .await;
    assert_eq!(bad.param_error_keys(), sorted(&["Email", "FirstName"]));
    assert_eq!(
        h.sandbox().user(payer["Id"].as_str().unwrap()).unwrap()["FirstName"],
        "Alex"
    );
}

#[tokio::test]
async fn wrong_kind_and_unknown_ids_are_404_ressource_not_found() {
    let h = start().await;
    let natural = h.create("natural", &natural_owner()).await;
    let legal = h.create("legal", &legal_owner()).await;
    let (natural_id, legal_id) = (
        natural["Id"].as_str().unwrap(),
        legal["Id"].as_str().unwrap(),
    );
    let cases = [
        h.put(&format!("/users/natural/{legal_id}"), &json!({"Tag": "x"}))
            .await,
        h.put(&format!("/users/legal/{natural_id}"), &json!({"Tag": "x"}))
            .await,
        h.get(&format!("/users/natural/{legal_id}")).await,
        h.get(&format!("/users/legal/{natural_id}")).await,
        h.get("/users/user_m_01JHX332D775R1784M4SK4SFMS").await,
        h.put("/users/natural/nope", &json!({})).await,
    ];
    for answer in &cases {
        let errors = answer.error(404, "ressource_not_found");
        assert_eq!(answer.body["Message"], "The ressource does not exist");
        let message = errors["RessourceNotFound"].as_str().unwrap();
        assert!(
            message.starts_with("Cannot found the ressource User with the id="),
            "{message}"
        );
    }
    assert!(
        cases[0].body["errors"]["RessourceNotFound"]
            .as_str()
            .unwrap()
            .ends_with(legal_id)
    );
    assert_eq!(h.sandbox().user(legal_id).unwrap()["Tag"], legal["Tag"]);
}

#[tokio::test]
async fn users_are_viewed_generically_and_typed() {
    let h = start().await;
    let natural = h.create("natural", &natural_owner()).await;
    let legal = h.create("legal", &legal_payer()).await;
    let (natural_id, legal_id) = (
        natural["Id"].as_str().unwrap(),
        legal["Id"].as_str().unwrap(),
    );
    assert_eq!(h.get(&format!("/users/{natural_id}")).await.body, natural);
    assert_eq!(
        h.get(&format!("/users/natural/{natural_id}")).await.body,
        natural
    );
    assert_eq!(h.get(&format!("/users/{legal_id}")).await.body, legal);
    assert_eq!(h.get(&format!("/users/legal/{legal_id}")).await.body, legal);
}

// ---------------------------------------------------------------- users: list

#[tokio::test]
async fn list_paginates_with_headers_links_and_sort() {
    let h = start().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let body = with(natural_payer(), json!({"Tag": format!("user {i}")}));
        let kind = if i == 2 { "legal" } else { "natural" };
        let body = if i == 2 { legal_payer() } else { body };
        ids.push(
            h.create(kind, &body).await["Id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        h.sandbox().clock().advance(Duration::from_secs(10));
    }
    let page = h.get("/users?page=2&per_page=2").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.header("x-number-of-items"), "5");
    assert_eq!(page.header("x-number-of-pages"), "3");
    let listed: Vec<&str> = page
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["Id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids[2].as_str(), ids[3].as_str()]);
    assert_eq!(
        keys(&page.body[0]),
        [
            "CreationDate",
            "Email",
            "Id",
            "KYCLevel",
            "PersonType",
            "Tag",
            "TermsAndConditionsAccepted",
            "TermsAndConditionsAcceptedDate",
            "UserCategory",
            "UserStatus"
        ]
    );
    assert_eq!(page.body[0]["PersonType"], "LEGAL");
    let base = h.api("/users");
    assert_eq!(
        page.header("link"),
        format!(
            "<{base}?page=1&per_page=2>; rel=\"first\", <{base}?page=1&per_page=2>; rel=\"prev\", \
                 <{base}?page=3&per_page=2>; rel=\"next\", <{base}?page=3&per_page=2>; rel=\"last\""
        )
    );

    let desc = h
        .get("/users?Sort=CreationDate:DESC&Per_Page=3&Page=1")
        .await;
    let listed: Vec<&str> = desc
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["Id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids[4].as_str(), ids[3].as_str(), ids[2].as_str()]);
    assert!(!desc.header("link").contains("rel=\"prev\""));
    let asc = h.get("/users?sort=CreationDate%3AASC").await;
    assert_eq!(asc.body.as_array().unwrap().len(), 5);
    assert_eq!(asc.body[0]["Id"], ids[0].as_str());

    let default = h.get("/users").await;
    assert_eq!(default.body.as_array().unwrap().len(), 5);
    assert_eq!(default.header("x-number-of-pages"), "1");
    let beyond = h.get("/users?page=9").await;
    assert_eq!(beyond.body, json!([]));
}

#[tokio::test]
async fn list_rejects_bad_paging_values() {
    let h = start().await;
    for (query, key) in [
        ("page=0", "page"),
        ("Page=abc", "Page"),
        ("per_page=0", "per_page"),
        ("per_page=101", "per_page"),
        ("Per_Page=-1", "Per_Page"),
        ("Sort=Name:ASC", "Sort"),
    ] {
        let answer = h.get(&format!("/users?{query}")).await;
        assert_eq!(answer.param_error_keys(), [key], "{query}");
    }
    assert_eq!(h.get("/users?per_page=100").await.status, StatusCode::OK);
}

// ---------------------------------------------------------------- validation

#[tokio::test]
async fn natural_required_fields_are_reported_together() {
    let h = start().await;
    let answer = h.post("/users/natural", &json!({})).await;
    assert_eq!(
        answer.param_error_keys(),
        sorted(&["Email", "FirstName", "LastName", "UserCategory"])
    );
    assert_eq!(
        answer.body["errors"]["FirstName"],
        "The FirstName field is required."
    );
    let owner = h
        .post(
            "/users/natural",
            &json!({"UserCategory": "OWNER", "TermsAndConditionsAccepted": true}),
        )
        .await;
    assert_eq!(
        owner.param_error_keys(),
        sorted(&[
            "Birthday",
            "CountryOfResidence",
            "Email",
            "FirstName",
            "LastName",
            "Nationality"
        ])
    );
    let bad_category = h
        .post(
            "/users/natural",
            &with(natural_owner(), json!({"UserCategory": "PLATFORM"})),
        )
        .await;
    assert_eq!(bad_category.param_error_keys(), ["UserCategory"]);
    assert_eq!(h.sandbox().user_count(), 0);
}

#[tokio::test]
async fn natural_field_formats_are_checked() {
    let h = start().await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"FirstName": "x".repeat(101)}), "FirstName"),
        (json!({"LastName": "x".repeat(101)}), "LastName"),
        (json!({"LastName": 12}), ""),
        (json!({"FirstName": {"a": 1}}), "FirstName"),
        (json!({"Email": "alex@"}), "Email"),
        (json!({"Email": "alex smith@example.com"}), "Email"),
        (json!({"Email": "alex@example.com trailing"}), "Email"),
        (json!({"Nationality": "fr"}), "Nationality"),
        (json!({"Nationality": "XX"}), "Nationality"),
        (json!({"CountryOfResidence": "FRA"}), "CountryOfResidence"),
        (json!({"IncomeRange": 0}), "IncomeRange"),
        (json!({"IncomeRange": "7"}), "IncomeRange"),
        (json!({"IncomeRange": "abc"}), "IncomeRange"),
        (json!({"IncomeRange": 6}), ""),
        (
            json!({"TermsAndConditionsAccepted": "maybe"}),
            "TermsAndConditionsAccepted",
        ),
        (
            json!({"TermsAndConditionsAccepted": 2}),
            "TermsAndConditionsAccepted",
        ),
        (json!({"Birthday": "1990-01-01"}), "Birthday"),
        (json!({"Birthday": -86400}), ""),
        (json!({"Birthday": "652117514"}), ""),
        (json!({"Tag": "x".repeat(256)}), "Tag"),
        (json!({"Tag": "x".repeat(255)}), ""),
        (json!({"Occupation": "x".repeat(256)}), "Occupation"),
    ];
    for (change, key) in cases {
        let answer = h
            .post("/users/natural", &with(natural_owner(), change.clone()))
            .await;
        if key.is_empty() {
            assert_eq!(answer.status, StatusCode::OK, "{change}: {}", answer.body);
        } else {
            assert_eq!(answer.param_error_keys(), [key], "{change}");
        }
    }
    let email = h
        .post(
            "/users/natural",
            &with(natural_owner(), json!({"Email": "nope"})),
        )
        .await;
    assert_eq!(
        email.body["errors"]["Email"],
        format!(
            "The field Email must match the regular expression '{}'.",
            super::validation::EMAIL_PATTERN
        )
    );
}

#[tokio::test]
async fn birthday_cannot_be_in_the_future_of_the_sandbox_clock() {
    let mut h = start().await;
    let tomorrow = h.sandbox().clock().now().timestamp() + 86_400;
    let answer = h
        .post(
            "/users/natural",
            &with(natural_owner(), json!({"Birthday": tomorrow})),
        )
        .await;
    assert_eq!(answer.param_error_keys(), ["Birthday"]);
    h.advance(Duration::from_secs(2 * 86_400)).await;
    let later = h
        .post(
            "/users/natural",
            &with(natural_owner(), json!({"Birthday": tomorrow})),
        )
        .await;
    assert_eq!(later.status, StatusCode::OK);
}

#[tokio::test]
async fn addresses_are_checked_field_by_field() {
    let h = start().await;
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"City": "Paris"}),
            vec![
                "Address.AddressLine1",
                "Address.Country",
                "Address.PostalCode",
            ],
        ),
        (
            json!({"AddressLine1": "1 Main St", "City": "Austin", "PostalCode": "73301", "Country": "US"}),
            vec!["Address.Region"],
        ),
        (
            json!({"AddressLine1": "1 Main St", "City": "Toronto", "PostalCode": "M5V 2T6", "Country": "CA", "Region": "ON"}),
            vec![],
        ),
        (
            json!({"AddressLine1": "x", "City": "Paris", "PostalCode": "75_004", "Country": "FR"}),
            vec!["Address.PostalCode"],
        ),
        (
            json!({"AddressLine1": "x", "City": "Paris", "PostalCode": "75004", "Country": "ZZ"}),
            vec!["Address.Country"],
        ),
        (
            json!({"AddressLine1": "x".repeat(256), "City": "Paris", "PostalCode": "75004", "Country": "FR"}),
            vec!["Address.AddressLine1"],
        ),
        (
            json!({"AddressLine1": "x", "AddressLine2": "y".repeat(256), "City": "Paris", "PostalCode": "75004", "Country": "FR"}),
            vec!["Address.AddressLine2"],
        ),
        (
            json!({"AddressLine1": null, "City": null, "PostalCode": null, "Country": null}),
            vec![],
        ),
        (json!("3 rue de la Cité"), vec!["Address"]),
    ];
    for (address, expected) in cases {
        let answer = h
            .post(
                "/users/natural",
                &with(natural_owner(), json!({"Address": address.clone()})),
            )
            .await;
        if expected.is_empty() {
            assert_eq!(answer.status, StatusCode::OK, "{address}: {}", answer.body);
        } else {
            assert_eq!(answer.param_error_keys(), sorted(&expected), "{address}");
        }
    }
}

#[tokio::test]
async fn legal_rules_are_checked() {
    let h = start().await;
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"LegalPersonType": "COMPANY"}),
            vec!["LegalPersonType"],
        ),
        (json!({"LegalPersonType": null}), vec!["LegalPersonType"]),
        (json!({"Name": "x".repeat(256)}), vec!["Name"]),
        (json!({"Name": null, "Email": null}), vec!["Email", "Name"]),
        (json!({"CompanyNumber": null}), vec!["CompanyNumber"]),
        (
            json!({"CompanyNumber": null, "LegalPersonType": "ORGANIZATION"}),
            vec![],
        ),
        (
            json!({"HeadquartersAddress": null}),
            vec!["HeadquartersAddress"],
        ),
        (
            json!({"LegalRepresentativeFirstName": null, "LegalRepresentativeLastName": "x".repeat(101)}),
            vec![
                "LegalRepresentativeFirstName",
                "LegalRepresentativeLastName",
            ],
        ),
        (
            json!({"LegalRepresentativeBirthday": null, "LegalRepresentativeNationality": null,
                "LegalRepresentativeCountryOfResidence": "France"}),
            vec![
                "LegalRepresentativeBirthday",
                "LegalRepresentativeCountryOfResidence",
                "LegalRepresentativeNationality",
            ],
        ),
        (
            json!({"LegalRepresentativeEmail": "not-an-email"}),
            vec!["LegalRepresentativeEmail"],
        ),
        (
            json!({"LegalRepresentativeAddress": {"AddressLine1": "x", "City": "Mexico", "PostalCode": "01000", "Country": "MX"}}),
            vec!["LegalRepresentativeAddress.Region"],
        ),
        (
            json!({"LegalPersonType": "soletrader", "CompanyNumber": null}),
            vec![],
        ),
    ];
    for (change, expected) in cases {
        let answer = h
            .post("/users/legal", &with(legal_owner(), change.clone()))
            .await;
        if expected.is_empty() {
            assert_eq!(answer.status, StatusCode::OK, "{change}: {}", answer.body);
        } else {
            assert_eq!(answer.param_error_keys(), sorted(&expected), "{change}");
        }
    }
    let payer = h
        .post(
            "/users/legal",
            &with(legal_payer(), json!({"LegalRepresentativeAddress": null})),
        )
        .await;
    assert_eq!(
        payer.status,
        StatusCode::OK,
        "a PAYER needs no address nor birthday: {}",
        payer.body
    );
}

#[tokio::test]
async fn owners_must_accept_the_terms() {
    let h = start().await;
    for terms in [json!(false), json!(0), Value::Null] {
        let answer = h
            .post(
                "/users/natural",
                &with(
                    natural_owner(),
                    json!({"TermsAndConditionsAccepted": terms}),
                ),
            )
            .await;
        assert!(
            answer
                .error(400, "user_hasnt_accepted_terms_and_conditions")
                .is_null()
        );
        assert_eq!(
            answer.body["Message"],
            "User must accept the terms and conditions before account creation or modification."
        );
    }
    let legal = h
        .post(
            "/users/legal",
            &with(legal_owner(), json!({"TermsAndConditionsAccepted": false})),
        )
        .await;
    legal.error(400, "user_hasnt_accepted_terms_and_conditions");
    assert_eq!(h.sandbox().user_count(), 0);
}

#[tokio::test]
async fn bodies_that_are_not_json_objects_are_param_errors() {
    let h = start().await;
    for body in ["not json", "[1, 2]", ""] {
        let answer = answer(
            h.http
                .post(h.api("/users/natural"))
                .bearer_auth(&h.token)
                .header("Content-Type", "application/json")
                .body(body),
        )
        .await;
        assert_eq!(answer.param_error_keys(), ["Body"], "{body:?}");
    }
}

#[tokio::test]
async fn large_bodies_are_not_capped() {
    let h = start().await;
    let body = with(
        natural_payer(),
        json!({"Padding": "x".repeat(3 * 1024 * 1024)}),
    );
    assert_eq!(h.post("/users/natural", &body).await.status, StatusCode::OK);
}

// ---------------------------------------------------------------- path quirks

#[tokio::test]
async fn paths_tolerate_slashes_and_case_of_fixed_words_only() {
    let h = start().await;
    let client = h.sandbox().config().client_id.clone();
    let created = answer(
        h.http
            .post(h.url(&format!("/V2.01/{client}//Users/NATURAL/")))
            .bearer_auth(&h.token)
            .json(&natural_owner()),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let id = created.body["Id"].as_str().unwrap();
    let found = answer(
        h.http
            .get(h.url(&format!("/v2.01/{client}/users//{id}/")))
            .bearer_auth(&h.token),
    )
    .await;
    assert_eq!(found.body["Id"], id);
    let lower = id.to_ascii_lowercase();
    let wrong_case = h.get(&format!("/USERS/{lower}")).await;
    wrong_case.error(404, "ressource_not_found");
    assert!(
        wrong_case.body["errors"]["RessourceNotFound"]
            .as_str()
            .unwrap()
            .ends_with(&lower)
    );
    // The ClientId is case-sensitive too.
    let upper_client = answer(
        h.http
            .get(h.url(&format!("/v2.01/{}/users", client.to_uppercase())))
            .bearer_auth(&h.token),
    )
    .await;
    upper_client.error(401, "invalid_credentials");
    let token = answer(
        h.http
            .post(h.url("/V2.01/OAuth/Token/"))
            .basic_auth(&client, Some("sandbox-api-key")),
    )
    .await;
    assert_eq!(token.status, StatusCode::OK);
}

#[tokio::test]
async fn sdk_headers_on_get_are_accepted() {
    let h = start().await;
    let answer = answer(
        h.http
            .get(h.api("/users"))
            .bearer_auth(&h.token)
            .header("Content-Type", "application/json")
            .header("x-tenant-id", "uk")
            .header("x-tentant-id", "uk"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_routes_answer_501_and_wrong_methods_405() {
    let h = start().await;
    for (method, path) in [
        ("GET", "/v2.01/sandbox-client/preauthorizations/123"),
        ("POST", "/v2.01/sandbox-client/payins/paypal/web/"),
        ("GET", "/elsewhere"),
        ("DELETE", "/v2.01/sandbox-client/users/natural/user_m_x"),
    ] {
        let request = h
            .http
            .request(method.parse().unwrap(), h.url(path))
            .bearer_auth(&h.token);
        let answer = answer(request).await;
        answer.error(501, "not_implemented");
        let message = answer.body["Message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!(
                "Not implemented by the diesel-mangopay sandbox: {method} /"
            )),
            "{message}"
        );
    }
    let wrong = answer(h.http.delete(h.api("/users")).bearer_auth(&h.token)).await;
    wrong.error(405, "method_not_allowed");
    let token = answer(h.http.get(h.url("/v2.01/oauth/token"))).await;
    token.error(405, "method_not_allowed");
}

// ---------------------------------------------------------------- idempotency

const KEY: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";
const KEY2: &str = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
const KEY3: &str = "16fd2706-8baf-433b-82eb-8c7fada847da";

#[tokio::test]
async fn a_reused_key_is_409_and_creates_nothing() {
    let h = start().await;
    let first = h.post_keyed("/users/natural", &natural_owner(), KEY).await;
    assert_eq!(first.status, StatusCode::OK);
    let again = h.post_keyed("/users/natural", &natural_payer(), KEY).await;
    assert!(again.error(409, "idempotent_creation_conflict").is_null());
    assert_eq!(
        again.body["Message"],
        "A resource has already been created with this Idempotency Key"
    );
    let other_route = h.post_keyed("/users/legal", &legal_owner(), KEY).await;
    other_route.error(409, "idempotent_creation_conflict");
    assert_eq!(h.sandbox().user_count(), 1);
}

#[tokio::test]
async fn stored_answers_replay_through_responses() {
    let h = start().await;
    let created = h.post_keyed("/users/natural", &natural_owner(), KEY).await;
    let raw_length = serde_json::to_vec(&created.body).unwrap().len();
    for path in [
        format!("/responses/{KEY}"),
        format!("/responses//{KEY}"),
        format!("/Responses/{KEY}/"),
    ] {
        let replay = h.get(&path).await;
        assert_eq!(replay.status, StatusCode::OK, "{path}");
        assert_eq!(
            keys(&replay.body),
            [
                "ContentLength",
                "ContentType",
                "Date",
                "RequestURL",
                "Resource",
                "StatusCode"
            ]
        );
        assert_eq!(replay.body["StatusCode"], "200");
        assert_eq!(replay.body["ContentLength"], raw_length.to_string());
        assert_eq!(
            replay.body["ContentType"],
            "application/json; charset=utf-8"
        );
        assert_eq!(replay.body["RequestURL"], h.api("/users/natural"));
        assert!(replay.body["Date"].as_str().unwrap().ends_with(" GMT"));
        assert_eq!(replay.body["Resource"], created.body);
    }
    let unknown = h
        .get("/responses/ffffffff-ffff-4fff-bfff-ffffffffffff")
        .await;
    unknown.error(400, "correlationid_not_found");
}

#[tokio::test]
async fn failed_keyed_requests_are_stored_and_block_the_key() {
    let h = start().await;
    let invalid = h
        .post_keyed("/users/natural", &json!({"UserCategory": "PAYER"}), KEY)
        .await;
    invalid.param_error_keys();
    let replay = h.get(&format!("/responses/{KEY}")).await;
    assert_eq!(replay.body["StatusCode"], "400");
    assert_eq!(replay.body["Resource"], invalid.body);
    let retry = h.post_keyed("/users/natural", &natural_owner(), KEY).await;
    retry.error(409, "idempotent_creation_conflict");
    assert_eq!(h.sandbox().user_count(), 0);
}

#[tokio::test]
async fn keys_expire_after_24_hours_of_sandbox_time() {
    let mut h = start().await;
    assert_eq!(
        h.post_keyed("/users/natural", &natural_owner(), KEY)
            .await
            .status,
        StatusCode::OK
    );
    h.advance(DAY - Duration::from_secs(2)).await;
    assert_eq!(
        h.get(&format!("/responses/{KEY}")).await.status,
        StatusCode::OK
    );
    h.post_keyed("/users/natural", &natural_owner(), KEY)
        .await
        .error(409, "idempotent_creation_conflict");
    h.advance(Duration::from_secs(2)).await;
    h.get(&format!("/responses/{KEY}"))
        .await
        .error(400, "correlationid_not_found");
    assert_eq!(
        h.post_keyed("/users/natural", &natural_payer(), KEY)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(h.sandbox().user_count(), 2);
    assert_eq!(
        h.get(&format!("/responses/{KEY}")).await.body["Resource"]["UserCategory"],
        "PAYER"
    );
}

#[tokio::test]
async fn malformed_keys_are_param_errors_naming_the_header() {
    let h = start().await;
    for key in [
        "too-short-key15",
        &"k".repeat(37),
        "has_underscore_0123",
        "has space 0123456789",
    ] {
        let answer = h.post_keyed("/users/natural", &natural_owner(), key).await;
        assert_eq!(answer.param_error_keys(), ["Idempotency-Key"], "{key:?}");
    }
    for key in ["sixteen-chars-ok", &"K".repeat(36)] {
        assert_eq!(
            h.post_keyed("/users/natural", &natural_payer(), key)
                .await
                .status,
            StatusCode::OK
        );
    }
    assert_eq!(h.sandbox().user_count(), 2);
}

#[tokio::test]
async fn keys_on_other_methods_or_unauthenticated_posts_are_not_reserved() {
    let h = start().await;
    let get = answer(
        h.http
            .get(h.api("/users"))
            .bearer_auth(&h.token)
            .header("Idempotency-Key", KEY),
    )
    .await;
    assert_eq!(get.status, StatusCode::OK);
    let unauthenticated = answer(
        h.http
            .post(h.api("/users/natural"))
            .header("Idempotency-Key", KEY)
            .json(&natural_owner()),
    )
    .await;
    unauthenticated.error(401, "invalid_credentials");
    assert_eq!(
        h.post_keyed("/users/natural", &natural_owner(), KEY)
            .await
            .status,
        StatusCode::OK
    );
}

// ---------------------------------------------------------------- knobs

#[tokio::test]
async fn latency_delays_the_answer_after_the_object_exists() {
    let h = start().await;
    h.sandbox().knobs().set_latency(Duration::from_millis(400));
    let started = Instant::now();
    let request = h
        .http
        .post(h.api("/users/natural"))
        .bearer_auth(&h.token)
        .json(&natural_owner());
    let pending = tokio::spawn(answer(request));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        h.sandbox().user_count(),
        1,
        "the user exists while the caller still waits"
    );
    let answer = pending.await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    h.sandbox().knobs().set_latency(Duration::ZERO);
    let quick = Instant::now();
    h.get("/users").await;
    assert!(quick.elapsed() < Duration::from_millis(400));
}

#[tokio::test]
async fn a_caller_still_waiting_can_read_its_answer_and_retries_get_409() {
    let h = start().await;
    h.sandbox().knobs().set_latency(Duration::from_millis(400));
    let request = h
        .http
        .post(h.api("/users/natural"))
        .bearer_auth(&h.token)
        .header("Idempotency-Key", KEY)
        .json(&natural_owner());
    let first = tokio::spawn(answer(request));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (body, replay_path) = (natural_owner(), format!("/responses/{KEY}"));
    let (retry, replay) = tokio::join!(
        h.post_keyed("/users/natural", &body, KEY),
        h.get(&replay_path)
    );
    retry.error(409, "idempotent_creation_conflict");
    assert_eq!(replay.body["StatusCode"], "200");
    let first = first.await.unwrap();
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(replay.body["Resource"], first.body);
    assert_eq!(h.sandbox().user_count(), 1);
}

#[tokio::test]
async fn error_rate_one_fails_everything_creates_nothing_and_burns_keyed_posts_keys() {
    let h = start().await;
    h.sandbox().knobs().set_error_rate(1.0);
    let keys = [KEY, KEY2, KEY3];
    for key in keys {
        h.post_keyed("/users/natural", &natural_owner(), key)
            .await
            .error(500, "internal_server_error");
        assert_eq!(last_fault(&h), Some("failed_before_work"));
    }
    // The key is taken: the retry is refused before any failure is drawn.
    h.post_keyed("/users/natural", &natural_owner(), KEY)
        .await
        .error(409, "idempotent_creation_conflict");
    assert_eq!(last_fault(&h), None);
    h.post("/users/natural", &natural_owner())
        .await
        .error(500, "internal_server_error");
    h.get("/users").await.error(500, "internal_server_error");
    h.token_call("sandbox-client", "sandbox-api-key")
        .await
        .error(500, "internal_server_error");
    assert_eq!(h.sandbox().user_count(), 0);

    h.sandbox().knobs().set_error_rate(0.0);
    for key in keys {
        let replay = h.get(&format!("/responses/{key}")).await;
        assert_eq!(replay.body["StatusCode"], "500", "{key}");
        assert_eq!(replay.body["Resource"]["Type"], "internal_server_error");
        h.post_keyed("/users/natural", &natural_owner(), key)
            .await
            .error(409, "idempotent_creation_conflict");
    }
    assert_eq!(h.sandbox().user_count(), 0);
}

#[tokio::test]
async fn fail_next_fails_exactly_n_requests() {
    let h = start().await;
    h.sandbox().knobs().fail_next(3);
    // Injected before authentication: even an unauthenticated call gets the 500.
    answer(h.http.get(h.api("/users")))
        .await
        .error(500, "internal_server_error");
    // A keyed POST that never reaches a key reservation gets it the same way.
    answer(
        h.http
            .post(h.api("/users/natural"))
            .header("Idempotency-Key", KEY)
            .json(&natural_owner()),
    )
    .await
    .error(500, "internal_server_error");
    h.post_keyed("/users/natural", &natural_owner(), KEY)
        .await
        .error(500, "internal_server_error");
    h.post_keyed("/users/natural", &natural_owner(), KEY)
        .await
        .error(409, "idempotent_creation_conflict");
    assert_eq!(
        h.post_keyed("/users/natural", &natural_owner(), KEY2)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(h.get("/users").await.status, StatusCode::OK);
    assert_eq!(h.sandbox().user_count(), 1);
}

#[tokio::test]
async fn every_answer_carries_rate_limit_headers() {
    let h = start().await;
    let answer = h.get("/users/nope").await;
    // The token call of start() counted as well.
    assert_eq!(answer.header("x-ratelimit"), "2, 2, 2, 2");
    assert_eq!(
        answer.header("x-ratelimit-remaining"),
        "2298, 4498, 8798, 105598"
    );
    let now = h.sandbox().clock().now().timestamp();
    let resets: Vec<i64> = answer
        .header("x-ratelimit-reset")
        .split(',')
        .map(|v| v.trim().parse().unwrap())
        .collect();
    assert_eq!(resets.len(), 4);
    for (reset, window) in resets.iter().zip([900, 1800, 3600, 86_400]) {
        assert!(
            (now + window - 5..=now + window + 1).contains(reset),
            "{reset} vs now {now} + {window}"
        );
    }
}

#[tokio::test]
async fn over_the_limit_answers_429_without_burning_keys_until_the_window_slides() {
    let h = start().await;
    h.sandbox().knobs().set_rate_limit(Some(3));
    assert_eq!(
        h.get("/users")
            .await
            .header("x-ratelimit-remaining")
            .split(',')
            .next(),
        Some("1")
    );
    assert_eq!(h.get("/users").await.status, StatusCode::OK);
    let limited = h.post_keyed("/users/natural", &natural_owner(), KEY).await;
    assert!(limited.error(429, "rate_limit").is_null());
    assert_eq!(
        limited.body["Message"],
        "Rate limit exceeded. Please contact support for more assistance"
    );
    assert_eq!(limited.header("x-ratelimit"), "3, 3, 3, 3");
    assert!(limited.header("x-ratelimit-remaining").starts_with("0, "));
    assert_eq!(h.sandbox().user_count(), 0);

    h.sandbox().knobs().set_rate_limit(None);
    assert_eq!(
        h.post_keyed("/users/natural", &natural_owner(), KEY)
            .await
            .status,
        StatusCode::OK
    );

    h.sandbox().knobs().set_rate_limit(Some(4));
    h.get("/users").await.error(429, "rate_limit");
    h.sandbox().clock().advance(Duration::from_secs(15 * 60));
    let slid = h.get("/users").await;
    assert_eq!(slid.status, StatusCode::OK);
    assert_eq!(slid.header("x-ratelimit"), "1, 5, 5, 5");
}

// ---------------------------------------------------------------- request log, config, lifecycle

#[tokio::test]
async fn the_request_log_keeps_every_request_in_order() {
    let h = start().await;
    h.sandbox().clear_request_log();
    let client = h.sandbox().config().client_id.clone();
    h.post_keyed("/users/natural", &natural_owner(), KEY).await;
    answer(
        h.http
            .get(h.url(&format!("/v2.01/{client}/responses//{KEY}")))
            .bearer_auth(&h.token),
    )
    .await;
    h.get("/users?Page=1").await;
    answer(h.http.get(h.url("/nowhere"))).await;
    let record = |method: &str, path: String, status: u16, key: Option<&str>| RequestRecord {
        method: method.to_owned(),
        path,
        status,
        idempotency_key: key.map(str::to_owned),
        tenant_id: None,
        fault: None,
    };
    assert_eq!(
        h.sandbox().request_log(),
        vec![
            record(
                "POST",
                format!("/v2.01/{client}/users/natural"),
                200,
                Some(KEY)
            ),
            record(
                "GET",
                format!("/v2.01/{client}/responses//{KEY}"),
                200,
                None
            ),
            record("GET", format!("/v2.01/{client}/users"), 200, None),
            record("GET", "/nowhere".to_owned(), 501, None),
        ]
    );
    h.sandbox().clear_request_log();
    assert!(h.sandbox().request_log().is_empty());
}

#[test]
fn config_debug_hides_the_api_key() {
    let config = SandboxConfig {
        api_key: "super-secret".to_owned(),
        ..SandboxConfig::default()
    };
    let printed = format!("{config:?} {:?}", Sandbox::new(config.clone()));
    assert!(!printed.contains("super-secret"), "{printed}");
    assert!(printed.contains("[redacted]"));
    assert_eq!(
        SandboxConfig::default().token_ttl,
        Duration::from_secs(1200)
    );
}

#[test]
fn ids_are_sortable_ulids_of_the_sandbox_clock() {
    use rand::SeedableRng as _;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let clock = super::Clock::default();
    clock.advance(DAY);
    let at = clock.now();
    let first = super::ids::user_id(at, &mut rng);
    clock.advance(Duration::from_millis(5));
    let second = super::ids::user_id(clock.now(), &mut rng);
    assert!(is_ulid_user_id(&first) && is_ulid_user_id(&second));
    assert!(first < second);
    let ulid = ulid::Ulid::from_string(first.trim_start_matches("user_m_")).unwrap();
    assert_eq!(
        i64::try_from(ulid.timestamp_ms()).unwrap(),
        at.timestamp_millis()
    );
    assert_ne!(ulid.random(), 0);
}

#[tokio::test]
async fn shutdown_and_drop_stop_the_server() {
    let h = start().await;
    let base = h.running.base_url();
    assert!(base.starts_with("http://127.0.0.1:"));
    assert_eq!(
        h.running.local_addr().to_string(),
        base.trim_start_matches("http://")
    );
    h.running.shutdown().await;
    assert!(
        http_client()
            .get(format!("{base}/v2.01/oauth/token"))
            .send()
            .await
            .is_err()
    );

    let running = Sandbox::new(SandboxConfig::default())
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = running.base_url();
    drop(running);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        http_client()
            .get(format!("{base}/v2.01/oauth/token"))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn blocked_countries_are_refused_with_the_field_named() {
    let h = start().await;
    h.sandbox().knobs().set_blocked_countries(&["kp"]);
    let address = json!({"AddressLine1": "1 Rd", "City": "P", "PostalCode": "1", "Country": "KP"});
    let blocked = with(
        natural_owner(),
        json!({"CountryOfResidence": "KP", "Address": address}),
    );
    let answer = h.post("/users/natural", &blocked).await;
    assert_eq!(
        answer.param_error_keys(),
        ["Address.Country", "CountryOfResidence"]
    );
    assert_eq!(
        answer.body["errors"]["CountryOfResidence"],
        "The CountryOfResidence used is blocked"
    );
    let legal = with(
        legal_owner(),
        json!({"LegalRepresentativeNationality": "KP"}),
    );
    let answer = h.post("/users/legal", &legal).await;
    assert_eq!(
        answer.param_error_keys(),
        ["LegalRepresentativeNationality"]
    );
    assert_eq!(h.sandbox().user_count(), 0);
    h.sandbox().knobs().set_blocked_countries(&[]);
    assert_eq!(
        h.post("/users/natural", &blocked).await.status,
        StatusCode::OK
    );
}

// ---------------------------------------------------------------- fault model

#[tokio::test]
async fn a_failure_before_the_work_is_stored_against_the_key() {
    let h = start().await;
    h.sandbox().knobs().fail_next(1);
    let failed = h.post_keyed("/users/natural", &natural_owner(), KEY).await;
    failed.error(500, "internal_server_error");
    let record = keyed_record(&h, KEY);
    assert_eq!(
        (record.status, record.fault),
        (500, Some("failed_before_work"))
    );
    assert!(failed.header("x-ratelimit").starts_with("2, "));

    let replay = h.get(&format!("/responses/{KEY}")).await;
    assert_eq!(replay.status, StatusCode::OK);
    assert_eq!(replay.body["StatusCode"], "500");
    assert_eq!(replay.body["Resource"], failed.body);
    assert_eq!(last_fault(&h), None);
    h.post_keyed("/users/natural", &natural_owner(), KEY)
        .await
        .error(409, "idempotent_creation_conflict");
    assert_eq!(h.sandbox().user_count(), 0);

    // Without a key: a plain 500, nothing stored, nothing created.
    h.sandbox().knobs().fail_next(1);
    h.post("/users/natural", &natural_owner())
        .await
        .error(500, "internal_server_error");
    assert_eq!(last_fault(&h), Some("failed_before_work"));
    assert_eq!(h.sandbox().user_count(), 0);
}

#[tokio::test]
async fn error_rate_draws_follow_the_seed() {
    async fn statuses(seed: Option<u64>) -> (Vec<u16>, Vec<String>) {
        let h = start_with(SandboxConfig {
            seed,
            ..SandboxConfig::default()
        })
        .await;
        let mut random_parts = Vec::new();
        for _ in 0..2 {
            let id = h.create("natural", &natural_payer()).await["Id"]
                .as_str()
                .unwrap()
                .to_owned();
            // The last 16 characters of the ULID are its 80 random bits.
            random_parts.push(id[id.len() - 16..].to_owned());
        }
        h.sandbox().knobs().set_error_rate(0.5);
        let mut statuses = Vec::new();
        for _ in 0..40 {
            statuses.push(h.get("/users").await.status.as_u16());
        }
        (statuses, random_parts)
    }
    let (first, first_ids) = statuses(Some(7)).await;
    let (again, again_ids) = statuses(Some(7)).await;
    let (other, other_ids) = statuses(Some(8)).await;
    let (_, unseeded_ids) = statuses(None).await;
    assert_eq!(first, again);
    assert_eq!(first_ids, again_ids);
    assert!(first.contains(&500) && first.contains(&200), "{first:?}");
    assert_ne!(first, other);
    assert_ne!(first_ids, other_ids);
    assert_ne!(first_ids, unseeded_ids);
}

#[tokio::test]
async fn a_429_leaves_the_key_free_unless_rate_limited_keys_are_blocked() {
    let h = start().await;
    // start() took a token: one more call fills a window of 2.
    h.sandbox().knobs().set_rate_limit(Some(2));
    assert_eq!(h.get("/users").await.status, StatusCode::OK);
    h.post_keyed("/users/natural", &natural_owner(), KEY)
        .await
        .error(429, "rate_limit");
    assert_eq!(last_fault(&h), Some("rate_limited"));
    assert!(
        !h.sandbox()
            .shared()
            .idempotency
            .is_reserved("sandbox-client", KEY)
    );

    h.sandbox().knobs().set_rate_limited_keys_blocked(true);
    let limited = h.post_keyed("/users/natural", &natural_owner(), KEY).await;
    limited.error(429, "rate_limit");
    assert_eq!(
        (keyed_record(&h, KEY).status, last_fault(&h)),
        (429, Some("rate_limited"))
    );
    // Unauthenticated: refused before any reservation, a plain 429.
    answer(
        h.http
            .post(h.api("/users/natural"))
            .header("Idempotency-Key", KEY2)
            .json(&natural_owner()),
    )
    .await
    .error(429, "rate_limit");
    h.sandbox().knobs().set_rate_limit(None);
    let replay = h.get(&format!("/responses/{KEY}")).await;
    assert_eq!(replay.body["StatusCode"], "429");
    assert_eq!(replay.body["Resource"], limited.body);
    h.post_keyed("/users/natural", &natural_owner(), KEY)
        .await
        .error(409, "idempotent_creation_conflict");
    h.get(&format!("/responses/{KEY2}"))
        .await
        .error(400, "correlationid_not_found");
    assert_eq!(h.sandbox().user_count(), 0);
}

#[tokio::test]
async fn a_failure_after_the_work_hides_the_created_user() {
    let h = start().await;
    h.sandbox().knobs().fail_next_after_work(1);
    let tag = "order-4711";
    let body = with(natural_owner(), json!({"Tag": tag}));
    let failed = h.post_keyed("/users/natural", &body, KEY).await;
    failed.error(500, "internal_server_error");
    let record = keyed_record(&h, KEY);
    assert_eq!(
        (record.status, record.fault),
        (500, Some("failed_after_work"))
    );
    assert_eq!(h.sandbox().user_count(), 1, "the work was done");

    let replay = h.get(&format!("/responses/{KEY}")).await;
    assert_eq!(replay.body["StatusCode"], "500");
    assert_eq!(replay.body["Resource"], failed.body);
    assert!(!replay.body.to_string().contains("user_m_"));
    h.post_keyed("/users/natural", &body, KEY)
        .await
        .error(409, "idempotent_creation_conflict");

    let listed = h.get("/users").await;
    let found: Vec<&Value> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["Tag"] == tag)
        .collect();
    assert_eq!(found.len(), 1);
    assert_eq!(h.sandbox().users()[0]["Id"], found[0]["Id"]);

    // On an update: the change is made, the answer is a 500, once.
    h.sandbox().knobs().fail_next_after_work(1);
    let id = found[0]["Id"].as_str().unwrap();
    h.put(
        &format!("/users/natural/{id}"),
        &json!({"FirstName": "Sam"}),
    )
    .await
    .error(500, "internal_server_error");
    assert_eq!(h.sandbox().user(id).unwrap()["FirstName"], "Sam");
    assert_eq!(
        h.put(&format!("/users/natural/{id}"), &json!({"LastName": "Doe"}))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_closed_connection_loses_the_answer_but_stores_it() {
    let h = start().await;
    h.sandbox().knobs().drop_next_answers(1, AnswerLoss::Close);
    let err = no_answer(
        h.http
            .post(h.api("/users/natural"))
            .bearer_auth(&h.token)
            .header("Idempotency-Key", KEY)
            .json(&natural_owner()),
    )
    .await;
    assert!(!err.is_timeout(), "{err:?}");
    let record = keyed_record(&h, KEY);
    assert_eq!((record.status, record.fault), (200, Some("answer_dropped")));
    assert_eq!(h.sandbox().user_count(), 1);

    let replay = h.get(&format!("/responses/{KEY}")).await;
    assert_eq!(replay.body["StatusCode"], "200");
    assert_eq!(replay.body["Resource"], h.sandbox().users()[0]);
    h.post_keyed("/users/natural", &natural_owner(), KEY)
        .await
        .error(409, "idempotent_creation_conflict");
}

#[tokio::test]
async fn a_garbled_answer_keeps_its_status_but_not_its_body_and_is_stored_intact() {
    let h = start().await;
    h.sandbox().knobs().drop_next_answers(1, AnswerLoss::Garble);
    let answer = h.post_keyed("/users/natural", &natural_owner(), KEY).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, Value::Null, "the body is not JSON");
    let record = keyed_record(&h, KEY);
    assert_eq!((record.status, record.fault), (200, Some("answer_garbled")));
    assert_eq!(h.sandbox().user_count(), 1);
    let replay = h.get(&format!("/responses/{KEY}")).await;
    assert_eq!(replay.body["StatusCode"], "200");
    assert_eq!(replay.body["Resource"], h.sandbox().users()[0]);
}

#[tokio::test]
async fn a_closed_connection_sends_not_a_single_byte() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let h = start().await;
    h.sandbox().knobs().drop_next_answers(1, AnswerLoss::Close);
    let body = natural_payer().to_string();
    let request = format!(
        "POST /v2.01/sandbox-client/users/natural HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        h.running.local_addr(),
        h.token,
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(h.running.local_addr())
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut received))
        .await
        .expect("the sandbox closes the connection");
    assert!(
        read.is_err() || received.is_empty(),
        "received {:?}",
        String::from_utf8_lossy(&received)
    );
    assert_eq!(h.sandbox().user_count(), 1);
    assert_eq!(last_fault(&h), Some("answer_dropped"));
}

#[tokio::test]
async fn a_withheld_answer_keeps_the_client_waiting_until_it_gives_up() {
    let h = start().await;
    h.sandbox().knobs().drop_next_answers(1, AnswerLoss::Hang);
    let err = no_answer(
        h.http
            .post(h.api("/users/natural"))
            .bearer_auth(&h.token)
            .header("Idempotency-Key", KEY)
            .timeout(Duration::from_millis(300))
            .json(&natural_owner()),
    )
    .await;
    assert!(err.is_timeout(), "{err:?}");
    let record = keyed_record(&h, KEY);
    assert_eq!(
        (record.status, record.fault),
        (200, Some("answer_withheld"))
    );
    assert_eq!(h.sandbox().user_count(), 1);
    let replay = h.get(&format!("/responses/{KEY}")).await;
    assert_eq!(replay.body["StatusCode"], "200");
    assert_eq!(replay.body["Resource"], h.sandbox().users()[0]);
    assert_eq!(h.get("/users").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_withheld_answer_ends_when_the_server_shuts_down() {
    let h = start().await;
    h.sandbox().knobs().drop_next_answers(1, AnswerLoss::Hang);
    let pending = tokio::spawn(no_answer(
        h.http
            .post(h.api("/users/natural"))
            .bearer_auth(&h.token)
            .json(&natural_owner()),
    ));
    let sandbox = h.sandbox().clone();
    eventually("the answer is withheld", || {
        sandbox
            .request_log()
            .iter()
            .any(|r| r.fault == Some("answer_withheld"))
    })
    .await;
    assert!(!pending.is_finished());
    let started = Instant::now();
    h.running.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let err = pending.await.unwrap();
    assert!(!err.is_timeout(), "{err:?}");
    assert_eq!(sandbox.user_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_withheld_answer_is_dropped_after_ten_minutes() {
    let h = start().await;
    h.sandbox().knobs().drop_next_answers(1, AnswerLoss::Hang);
    let started = tokio::time::Instant::now();
    let err = no_answer(h.http.get(h.api("/users")).bearer_auth(&h.token)).await;
    assert!(!err.is_timeout(), "{err:?}");
    let waited = started.elapsed();
    assert!(
        (Duration::from_secs(600)..Duration::from_secs(660)).contains(&waited),
        "{waited:?}"
    );
    assert_eq!(last_fault(&h), Some("answer_withheld"));
}

#[tokio::test]
async fn a_router_served_elsewhere_still_loses_a_dropped_answer() {
    let sandbox = Sandbox::new(SandboxConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(axum::serve(listener, sandbox.router()).into_future());
    sandbox.knobs().drop_next_answers(1, AnswerLoss::Close);
    let err = no_answer(
        http_client()
            .post(format!("{base}/v2.01/oauth/token"))
            .basic_auth("sandbox-client", Some("sandbox-api-key")),
    )
    .await;
    assert!(!err.is_timeout(), "{err:?}");
    let record = sandbox.request_log()[0].clone();
    assert_eq!((record.status, record.fault), (200, Some("answer_dropped")));
    server.abort();
}

#[tokio::test]
async fn a_slow_handler_holds_the_key_without_an_answer_to_read() {
    let h = start().await;
    h.sandbox()
        .knobs()
        .set_handler_delay(Duration::from_millis(800));
    let first = tokio::spawn(answer(
        h.http
            .post(h.api("/users/natural"))
            .bearer_auth(&h.token)
            .header("Idempotency-Key", KEY)
            .json(&natural_owner()),
    ));
    let shared = h.sandbox().shared().clone();
    eventually("the key is reserved", || {
        shared.idempotency.is_reserved("sandbox-client", KEY)
    })
    .await;
    h.post_keyed("/users/natural", &natural_payer(), KEY)
        .await
        .error(409, "idempotent_creation_conflict");
    let missing = h.get(&format!("/responses/{KEY}")).await;
    missing.error(400, "correlationid_not_found");
    assert_eq!(
        missing.body["errors"]["IdempotencyKey"],
        format!("No response was found for the idempotency key {KEY}")
    );
    h.sandbox()
        .knobs()
        .set_missing_response(MissingResponse::RessourceNotFound);
    let missing = h.get(&format!("/responses/{KEY}")).await;
    missing.error(404, "ressource_not_found");
    assert!(
        !first.is_finished(),
        "lookups and conflicts are not delayed"
    );
    assert_eq!(h.sandbox().user_count(), 0);

    let first = first.await.unwrap();
    assert_eq!(first.status, StatusCode::OK);
    let replay = h.get(&format!("/responses/{KEY}")).await;
    assert_eq!(replay.body["Resource"], first.body);
    assert_eq!(h.sandbox().user_count(), 1);
}

#[tokio::test]
async fn work_goes_on_when_the_client_gives_up() {
    let h = start().await;
    h.sandbox()
        .knobs()
        .set_handler_delay(Duration::from_millis(300));
    let err = no_answer(
        h.http
            .post(h.api("/users/natural"))
            .bearer_auth(&h.token)
            .header("Idempotency-Key", KEY)
            .timeout(Duration::from_millis(50))
            .json(&natural_owner()),
    )
    .await;
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(h.sandbox().user_count(), 0, "still waiting for the handler");
    let shared = h.sandbox().shared().clone();
    eventually("the answer is stored", || {
        shared.idempotency.has_answer("sandbox-client", KEY)
    })
    .await;
    assert_eq!(h.sandbox().user_count(), 1);
    let replay = h.get(&format!("/responses/{KEY}")).await;
    assert_eq!(replay.body["StatusCode"], "200");
    assert_eq!(replay.body["Resource"], h.sandbox().users()[0]);
}

#[tokio::test]
async fn missing_responses_answer_as_the_knob_says() {
    let h = start().await;
    let unknown = "ffffffff-ffff-4fff-bfff-ffffffffffff";
    h.get(&format!("/responses/{unknown}"))
        .await
        .error(400, "correlationid_not_found");
    h.sandbox()
        .knobs()
        .set_missing_response(MissingResponse::RessourceNotFound);
    let missing = h.get(&format!("/responses/{unknown}")).await;
    let errors = missing.error(404, "ressource_not_found");
    assert_eq!(
        errors["RessourceNotFound"],
        format!("Cannot found the ressource Response with the id={unknown}")
    );
    assert_eq!(last_fault(&h), None);
    h.sandbox()
        .knobs()
        .set_missing_response(MissingResponse::CorrelationIdNotFound);
    h.get(&format!("/responses/{unknown}"))
        .await
        .error(400, "correlationid_not_found");
}

#[tokio::test]
async fn lookups_fail_as_asked_even_when_an_answer_is_stored() {
    let h = start().await;
    let created = h.post_keyed("/users/natural", &natural_owner(), KEY).await;
    assert_eq!(created.status, StatusCode::OK);
    let path = format!("/responses/{KEY}");
    for (status, kind) in [
        (404, "ressource_not_found"),
        (403, "forbidden_ressource"),
        (400, "param_error"),
        (500, "internal_server_error"),
        (502, "internal_server_error"),
        (503, "service_unavailable"),
        (418, "bad_request"),
        (200, "internal_server_error"),
    ] {
        h.sandbox()
            .knobs()
            .fail_response_lookups(1, LookupFailure::Status(status));
        let failed = h.get(&path).await;
        let expected = if status == 200 { 500 } else { status };
        failed.error(expected, kind);
        assert_eq!(last_fault(&h), Some("lookup_failed"));
        assert_eq!(h.sandbox().request_log().last().unwrap().status, expected);
    }
    h.sandbox()
        .knobs()
        .fail_response_lookups(2, LookupFailure::Status(404));
    h.get(&path).await.error(404, "ressource_not_found");
    h.get(&path).await.error(404, "ressource_not_found");
    let replay = h.get(&path).await;
    assert_eq!(replay.body["Resource"], created.body);
    assert_eq!(last_fault(&h), None);
}

#[tokio::test]
async fn a_hanging_lookup_withholds_the_replay() {
    let h = start().await;
    let created = h.post_keyed("/users/natural", &natural_owner(), KEY).await;
    h.sandbox()
        .knobs()
        .fail_response_lookups(1, LookupFailure::Hang);
    let err = no_answer(
        h.http
            .get(h.api(&format!("/responses/{KEY}")))
            .bearer_auth(&h.token)
            .timeout(Duration::from_millis(200)),
    )
    .await;
    assert!(err.is_timeout(), "{err:?}");
    let record = h.sandbox().request_log().last().cloned().unwrap();
    assert_eq!((record.status, record.fault), (200, Some("lookup_failed")));
    let replay = h.get(&format!("/responses/{KEY}")).await;
    assert_eq!(replay.body["Resource"], created.body);
}

#[tokio::test]
async fn lists_lag_behind_views() {
    let h = start().await;
    h.sandbox().knobs().set_list_lag(Duration::from_secs(60));
    let user = h.create("natural", &natural_owner()).await;
    let id = user["Id"].as_str().unwrap();
    let listed = h.get("/users").await;
    assert_eq!(listed.body, json!([]));
    assert_eq!(listed.header("x-number-of-items"), "0");
    assert_eq!(h.get(&format!("/users/{id}")).await.body, user);
    assert_eq!(h.sandbox().user_count(), 1);

    h.sandbox().clock().advance(Duration::from_secs(59));
    assert_eq!(h.get("/users").await.body, json!([]));
    h.sandbox().clock().advance(Duration::from_secs(1));
    let listed = h.get("/users").await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    assert_eq!(listed.body[0]["Id"], id);

    let second = h.create("natural", &natural_payer()).await;
    assert_eq!(h.get("/users").await.header("x-number-of-items"), "1");
    h.sandbox().knobs().set_list_lag(Duration::ZERO);
    let listed = h.get("/users").await;
    assert_eq!(listed.header("x-number-of-items"), "2");
    assert_eq!(listed.body[1]["Id"], second["Id"]);
}

#[tokio::test]
async fn an_outage_answers_503_before_anything_else() {
    let h = start().await;
    h.sandbox().knobs().set_unavailable(true);
    assert!(h.sandbox().knobs().is_unavailable());
    let token = h.token_call("sandbox-client", "sandbox-api-key").await;
    token.error(503, "service_unavailable");
    assert!(token.headers.get("x-ratelimit").is_none());
    assert_eq!(last_fault(&h), Some("unavailable"));
    answer(h.http.get(h.api("/users")))
        .await
        .error(503, "service_unavailable");
    h.post_keyed("/users/natural", &natural_owner(), KEY)
        .await
        .error(503, "service_unavailable");
    let record = keyed_record(&h, KEY);
    assert_eq!((record.status, record.fault), (503, Some("unavailable")));

    h.sandbox().knobs().set_unavailable(false);
    let created = h.post_keyed("/users/natural", &natural_owner(), KEY).await;
    assert_eq!(created.status, StatusCode::OK, "the key was not used up");
    // Neither the 503s nor anything else but start()'s token and this POST counted.
    assert_eq!(created.header("x-ratelimit"), "2, 2, 2, 2");
    assert_eq!(h.sandbox().user_count(), 1);
}

#[tokio::test]
async fn an_outage_for_a_while_ends_by_itself() {
    let h = start().await;
    h.sandbox()
        .knobs()
        .unavailable_for(Duration::from_millis(150));
    h.get("/users").await.error(503, "service_unavailable");
    let knobs = h.sandbox().clone();
    eventually("the outage ends", || !knobs.knobs().is_unavailable()).await;
    assert_eq!(h.get("/users").await.status, StatusCode::OK);
    assert_eq!(last_fault(&h), None);
}

#[tokio::test]
async fn redirects_are_answered_before_anything_else() {
    let h = start().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let location = "https://api.sandbox.mangopay.com/v2.01/sandbox-client/users/natural";
    h.sandbox().knobs().redirect_next(2, location);
    let redirected = answer(
        http.post(h.api("/users/natural"))
            .bearer_auth(&h.token)
            .header("Idempotency-Key", KEY)
            .json(&natural_owner()),
    )
    .await;
    assert_eq!(redirected.status, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(redirected.header("location"), location);
    assert_eq!(redirected.body, Value::Null);
    let record = keyed_record(&h, KEY);
    assert_eq!((record.status, record.fault), (307, Some("redirected")));
    let token = answer(http.post(h.url("/v2.01/oauth/token"))).await;
    assert_eq!(token.status, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(h.sandbox().user_count(), 0);

    let created = h.post_keyed("/users/natural", &natural_owner(), KEY).await;
    assert_eq!(created.status, StatusCode::OK, "the key was not used up");
    assert_eq!(created.header("x-ratelimit"), "2, 2, 2, 2");
    assert_eq!(last_fault(&h), None);
}

#[tokio::test]
async fn put_null_keeps_or_clears_optional_fields() {
    let h = start().await;
    let body = with(
        natural_owner(),
        json!({"Occupation": "Baker", "IncomeRange": 3}),
    );
    let user = h.create("natural", &body).await;
    let path = format!("/users/natural/{}", user["Id"].as_str().unwrap());
    let nulls = json!({"Occupation": null, "IncomeRange": null, "Tag": null,
                       "Address": {"AddressLine1": "1 rue Neuve", "AddressLine2": null, "Region": null,
                                   "City": "Paris", "PostalCode": "75001", "Country": "FR"}});

    let kept = h.put(&path, &nulls).await;
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.body);
    assert_eq!(kept.body["Occupation"], "Baker");
    assert_eq!(kept.body["IncomeRange"], 3);
    assert_eq!(kept.body["Tag"], user["Tag"]);
    assert_eq!(kept.body["Address"]["AddressLine1"], "1 rue Neuve");
    assert_eq!(kept.body["Address"]["AddressLine2"], "Appartement 7");
    assert_eq!(kept.body["Address"]["Region"], "Île-de-France");

    h.sandbox().knobs().set_put_null(PutNull::Clear);
    let cleared = h.put(&path, &nulls).await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.body);
    for key in ["Occupation", "IncomeRange", "Tag"] {
        assert!(cleared.body[key].is_null(), "{key}: {}", cleared.body);
    }
    assert!(cleared.body["Address"]["AddressLine2"].is_null());
    assert!(cleared.body["Address"]["Region"].is_null());
    let no_address = h.put(&path, &json!({"Address": null})).await;
    assert!(
        no_address.body["Address"]["City"].is_null(),
        "{}",
        no_address.body
    );

    let required = h
        .put(&path, &json!({"FirstName": null, "Nationality": null}))
        .await;
    assert_eq!(
        required.param_error_keys(),
        sorted(&["FirstName", "Nationality"])
    );
    assert_eq!(
        required.body["errors"]["FirstName"],
        "The FirstName field is required."
    );
    h.put(&path, &json!({"TermsAndConditionsAccepted": null}))
        .await
        .error(400, "invalid_action");
    assert_eq!(
        h.sandbox().user(user["Id"].as_str().unwrap()).unwrap()["FirstName"],
        "Alex"
    );
}

#[tokio::test]
async fn put_empty_strings_clear_keep_or_are_rejected() {
    let h = start().await;
    let legal = h.create("legal", &legal_owner()).await;
    let id = legal["Id"].as_str().unwrap();
    let path = format!("/users/legal/{id}");
    let mut headquarters = legal_owner()["HeadquartersAddress"].clone();
    headquarters["Region"] = json!("");
    let empties =
        json!({"Tag": "", "LegalRepresentativeEmail": "", "HeadquartersAddress": headquarters});

    h.sandbox()
        .knobs()
        .set_put_empty_string(PutEmptyString::Reject);
    let rejected = h.put(&path, &empties).await;
    assert_eq!(
        rejected.param_error_keys(),
        sorted(&[
            "HeadquartersAddress.Region",
            "LegalRepresentativeEmail",
            "Tag"
        ])
    );
    assert_eq!(
        rejected.body["errors"]["Tag"],
        "The field Tag cannot be an empty string."
    );
    assert_eq!(h.sandbox().user(id).unwrap(), legal);

    h.sandbox()
        .knobs()
        .set_put_empty_string(PutEmptyString::Keep);
    let kept = h.put(&path, &empties).await;
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.body);
    assert_eq!(kept.body["Tag"], legal["Tag"]);
    assert_eq!(
        kept.body["LegalRepresentativeEmail"],
        legal["LegalRepresentativeEmail"]
    );
    assert_eq!(
        kept.body["HeadquartersAddress"],
        legal["HeadquartersAddress"]
    );
    assert_eq!(
        h.put(&path, &json!({"Name": ""})).await.body["Name"],
        "Best Business"
    );

    h.sandbox()
        .knobs()
        .set_put_empty_string(PutEmptyString::Clear);
    let cleared = h.put(&path, &empties).await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.body);
    assert!(cleared.body["Tag"].is_null());
    assert!(cleared.body["LegalRepresentativeEmail"].is_null());
    assert!(cleared.body["HeadquartersAddress"]["Region"].is_null());
    assert_eq!(cleared.body["HeadquartersAddress"]["City"], "Paris");
    let required = h
        .put(
            &path,
            &json!({"CompanyNumber": "", "LegalRepresentativeFirstName": ""}),
        )
        .await;
    assert_eq!(
        required.param_error_keys(),
        sorted(&["CompanyNumber", "LegalRepresentativeFirstName"])
    );
}
