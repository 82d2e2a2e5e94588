//! The Mangopay client on the wire, against the sandbox over loopback: tokens, idempotency,
//! typed errors, rate limits, timeouts, redirects and redacted debug logs.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel_mangopay::client::{ApiError, PageRequest};
use diesel_mangopay::{IdempotencyKey, MangopayClient};
use diesel_mangopay_sandbox::SandboxConfig;
use serde_json::{Value, json};

use crate::support::{client_config, client_for, start_sandbox};

fn payer(first_name: &str) -> Value {
    json!({"UserCategory": "PAYER", "TermsAndConditionsAccepted": false, "FirstName": first_name,
           "LastName": "Smith", "Email": "alex.smith@example.com"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_token_is_shared_by_concurrent_calls_and_clones() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let client = client_for(&sandbox);
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.list("users", PageRequest::default()).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(sandbox.sandbox().token_requests(), 1);
    assert_eq!(client.token_fetches(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_token_request_fails_every_call_waiting_for_it() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let client = client_for(&sandbox);
    // The token request fails, slowly enough for every call to be waiting for it.
    sandbox.sandbox().knobs().fail_next(1);
    sandbox
        .sandbox()
        .knobs()
        .set_latency(Duration::from_millis(300));
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.list("users", PageRequest::default()).await })
        })
        .collect();
    let mut sources = Vec::new();
    for call in calls {
        let error = call.await.unwrap().unwrap_err();
        assert_eq!(error.status(), Some(500), "{error:?}");
        assert!(error.is_retryable() && error.never_sent(), "{error:?}");
        match error {
            ApiError::TokenUnavailable { source } => sources.push(source),
            other => panic!("expected no token, got {other:?}"),
        }
    }
    assert!(
        sources.iter().all(|s| Arc::ptr_eq(s, &sources[0])),
        "one failure, shared"
    );
    assert_eq!(sandbox.sandbox().token_requests(), 1);
    assert_eq!(client.token_fetches(), 1);
    assert_eq!(
        sandbox.sandbox().request_log().len(),
        1,
        "no call went out without a token"
    );

    // The failure is not kept: the next call asks for a token again.
    sandbox.sandbox().knobs().set_latency(Duration::ZERO);
    client.list("users", PageRequest::default()).await.unwrap();
    assert_eq!(sandbox.sandbox().token_requests(), 2);
}

#[tokio::test]
async fn the_token_is_renewed_before_it_expires() {
    // Tokens of 2 s: renewed after half their life (the 30 s margin is longer than that).
    let sandbox = start_sandbox(SandboxConfig {
        token_ttl: Duration::from_secs(2),
        ..SandboxConfig::default()
    })
    .await;
    let client = client_for(&sandbox);
    client.list("users", PageRequest::default()).await.unwrap();
    client.list("users", PageRequest::default()).await.unwrap();
    assert_eq!(sandbox.sandbox().token_requests(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    client.list("users", PageRequest::default()).await.unwrap();
    assert_eq!(sandbox.sandbox().token_requests(), 2);
}

#[tokio::test]
async fn a_401_renews_the_token_and_retries_once() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let client = client_for(&sandbox);
    client.list("users", PageRequest::default()).await.unwrap();
    // Mangopay's clock runs past the token's expiry while the client still trusts it.
    sandbox.sandbox().clock().advance(Duration::from_secs(1300));
    sandbox.sandbox().clear_request_log();
    client.list("users", PageRequest::default()).await.unwrap();
    let statuses: Vec<u16> = sandbox
        .sandbox()
        .request_log()
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(
        statuses,
        [401, 200, 200],
        "rejected call, new token, retried call"
    );
    assert_eq!(sandbox.sandbox().token_requests(), 2);
}

#[tokio::test]
async fn wrong_credentials_are_a_typed_401_that_is_not_retried() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let config = client_config(&sandbox);
    let bad = diesel_mangopay::ClientConfig::builder("sandbox-client", "wrong-key")
        .base_url(sandbox.base_url())
        .build()
        .unwrap();
    drop(config);
    let client = MangopayClient::new(bad).unwrap();
    let error = client.get("users/whatever").await.unwrap_err();
    assert_eq!(error.status(), Some(401));
    assert_eq!(
        error.body().unwrap().kind.as_deref(),
        Some("invalid_credentials")
    );
    assert!(
        !error.is_retryable() && error.never_sent(),
        "no token, so the call itself was never sent"
    );
    assert_eq!(sandbox.sandbox().token_requests(), 1);
}

#[tokio::test]
async fn a_reused_idempotency_key_returns_the_original_resource() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let client = client_for(&sandbox);
    let key = IdempotencyKey::generate();
    let first = client
        .post("users/natural", &payer("Alex"), &key)
        .await
        .unwrap();
    let second = client
        .post("users/natural", &payer("Someone else"), &key)
        .await
        .unwrap();
    assert_eq!(
        first, second,
        "the second POST is answered with the first user"
    );
    assert_eq!(sandbox.sandbox().user_count(), 1);
    let log = sandbox.sandbox().request_log();
    let tail: Vec<(String, u16)> = log
        .iter()
        .rev()
        .take(2)
        .rev()
        .map(|r| (r.method.clone(), r.status))
        .collect();
    assert_eq!(tail, [("POST".to_owned(), 409), ("GET".to_owned(), 200)]);
    assert!(
        log.last()
            .unwrap()
            .path
            .ends_with(&format!("/responses/{key}"))
    );
    let stored = client.stored_response(&key).await.unwrap();
    assert_eq!(stored.status_code, 200);
    assert_eq!(stored.resource["Id"], first["Id"]);
}

#[tokio::test]
async fn a_409_whose_first_answer_cannot_be_read_is_unknown_not_a_refusal() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let client = client_for(&sandbox);
    let knobs = sandbox.sandbox().knobs();
    let key = IdempotencyKey::generate();
    client
        .post("users/natural", &payer("Alex"), &key)
        .await
        .unwrap();
    for failure in [404, 403, 400, 500] {
        knobs.fail_response_lookups(1, diesel_mangopay_sandbox::LookupFailure::Status(failure));
        let error = client
            .post("users/natural", &payer("Alex"), &key)
            .await
            .unwrap_err();
        match &error {
            ApiError::ReplayUnavailable { key: k, source } => {
                assert_eq!(k, key.as_str());
                assert_eq!(source.status(), Some(failure));
            }
            other => panic!("{failure}: expected an unreadable replay, got {other:?}"),
        }
        assert!(error.is_retryable() && !error.never_sent(), "{failure}");
        assert!(
            std::error::Error::source(&error).is_some(),
            "the look-up's error is kept as the source"
        );
    }
    assert_eq!(sandbox.sandbox().user_count(), 1);
}

#[tokio::test]
async fn a_stored_error_is_replayed_as_that_error() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let client = client_for(&sandbox);
    let key = IdempotencyKey::generate();
    let invalid =
        json!({"UserCategory": "PAYER", "FirstName": "A", "LastName": "B", "Email": "nope"});
    let first = client
        .post("users/natural", &invalid, &key)
        .await
        .unwrap_err();
    let replayed = client
        .post("users/natural", &invalid, &key)
        .await
        .unwrap_err();
    for (error, was_replayed) in [(&first, false), (&replayed, true)] {
        match error {
            ApiError::Mangopay {
                status: 400,
                body,
                replayed,
                ..
            } => {
                assert_eq!(*replayed, was_replayed);
                assert!(body.errors.contains_key("Email"), "{body}");
            }
            other => panic!("expected a 400, got {other:?}"),
        }
        assert!(!error.is_retryable());
    }
}

#[tokio::test]
async fn server_errors_and_timeouts_are_retryable() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let client = MangopayClient::new(
        client_config(&sandbox)
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap(),
    )
    .unwrap();
    client.list("users", PageRequest::default()).await.unwrap();
    sandbox.sandbox().knobs().fail_next(1);
    let error = client.get("users").await.unwrap_err();
    assert_eq!(error.status(), Some(500));
    assert!(error.is_retryable() && !error.never_sent());
    assert_eq!(
        error.body().unwrap().kind.as_deref(),
        Some("internal_server_error")
    );

    sandbox
        .sandbox()
        .knobs()
        .set_latency(Duration::from_secs(2));
    let error = client
        .post("users/natural", &payer("Slow"), &IdempotencyKey::generate())
        .await
        .unwrap_err();
    assert!(matches!(error, ApiError::Transport(_)), "{error:?}");
    assert!(
        error.is_retryable() && !error.never_sent(),
        "a timed-out POST may have been processed"
    );
}

#[tokio::test]
async fn rate_limits_are_read_and_respected() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let client = client_for(&sandbox);
    client.list("users", PageRequest::default()).await.unwrap();
    let limits = client.rate_limit().expect("rate-limit headers were read");
    assert_eq!(limits.windows.len(), 4);
    assert!(limits.windows[0].made >= 1 && limits.windows[0].remaining > 0);
    assert!(limits.windows[3].remaining > limits.windows[0].remaining);

    // Token call + 2 lists used 3 of 4; the next call uses the last one.
    sandbox.sandbox().knobs().set_rate_limit(Some(4));
    client.list("users", PageRequest::default()).await.unwrap();
    client.list("users", PageRequest::default()).await.unwrap();
    assert_eq!(client.rate_limit().unwrap().windows[0].remaining, 0);
    let sent = sandbox.sandbox().request_log().len();
    let error = client.get("users").await.unwrap_err();
    match &error {
        ApiError::RateLimited { until } => assert!(*until > chrono::Utc::now()),
        other => panic!("expected a local rate-limit stop, got {other:?}"),
    }
    assert!(error.is_retryable() && error.retry_after().is_some());
    assert_eq!(
        sandbox.sandbox().request_log().len(),
        sent,
        "nothing was sent"
    );

    // Another client that has not seen the headers gets Mangopay's 429.
    let other = client_for(&sandbox);
    let error = other
        .list("users", PageRequest::default())
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(429));
    assert!(error.is_retryable());
    assert!(error.retry_after().is_some());
}

#[tokio::test]
async fn the_uk_flag_sends_the_tenant_header() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let uk = MangopayClient::new(
        client_config(&sandbox)
            .uk_header_flag(true)
            .build()
            .unwrap(),
    )
    .unwrap();
    uk.list("users", PageRequest::default()).await.unwrap();
    let plain = client_for(&sandbox);
    plain.list("users", PageRequest::default()).await.unwrap();
    let log = sandbox.sandbox().request_log();
    let api_calls: Vec<_> = log.iter().filter(|r| r.path.ends_with("/users")).collect();
    assert_eq!(api_calls[0].tenant_id.as_deref(), Some("uk"));
    assert_eq!(api_calls[1].tenant_id, None);
}

/// A canned HTTP/1.1 server on loopback: reads each request and answers it with
/// `respond(request line)`. Returns its address and the requests it read, head and body.
async fn canned_server(
    respond: impl Fn(&str) -> String + Send + Sync + 'static,
) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    let respond = Arc::new(respond);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (seen, respond) = (seen.clone(), respond.clone());
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Read the head, then as much body as Content-Length says.
                let complete = loop {
                    let text = String::from_utf8_lossy(&request).into_owned();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (name, value) = l.split_once(':')?;
                                name.eq_ignore_ascii_case("content-length")
                                    .then(|| value.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break Some(text);
                        }
                    }
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break None,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                };
                let Some(request) = complete else { return };
                let answer = respond(request.lines().next().unwrap_or_default());
                seen.lock().unwrap().push(request);
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (address, requests)
}

/// A listener that only counts the connections it receives.
async fn counting_listener() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (address, connections)
}

fn redirect(status: &str, location: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
}

fn client_at(address: SocketAddr) -> MangopayClient {
    MangopayClient::new(
        diesel_mangopay::ClientConfig::builder("redirected-client", "api-key")
            .base_url(format!("http://{address}"))
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_redirected_post_is_an_error_and_is_not_sent_again() {
    let (elsewhere, connections) = counting_listener().await;
    let location = format!("http://{elsewhere}/v2.01/redirected-client/users/natural");
    let (server, requests) = canned_server(move |request_line| {
        if request_line.contains("/oauth/token") {
            let token = r#"{"access_token":"t0k3n","token_type":"Bearer","expires_in":1200}"#;
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{token}",
                token.len()
            )
        } else {
            redirect("307 Temporary Redirect", &location)
        }
    })
    .await;
    let client = client_at(server);
    let key = IdempotencyKey::generate();
    let error = client
        .post("users/natural", &payer("Redirected"), &key)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ApiError::UnexpectedResponse { status: 307, .. }),
        "{error:?}"
    );
    assert_eq!(error.status(), Some(307));
    assert!(
        !error.is_retryable(),
        "a redirect is answered the same way every time"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "the POST was sent to the Location"
    );
    let requests = requests.lock().unwrap().clone();
    assert_eq!(
        requests.len(),
        2,
        "the token request and the POST, once: {requests:?}"
    );
    assert!(requests[1].starts_with("POST /v2.01/redirected-client/users/natural "));
    assert!(
        requests[1]
            .to_ascii_lowercase()
            .contains(&format!("idempotency-key: {key}"))
    );
}

#[tokio::test]
async fn a_redirected_token_request_is_an_error_and_is_not_sent_again() {
    let (elsewhere, connections) = counting_listener().await;
    let location = format!("http://{elsewhere}/v2.01/oauth/token");
    let (server, requests) =
        canned_server(move |_| redirect("308 Permanent Redirect", &location)).await;
    let client = client_at(server);
    let error = client.get("users/whatever").await.unwrap_err();
    match &error {
        ApiError::TokenUnavailable { source } => assert!(
            matches!(**source, ApiError::UnexpectedResponse { status: 308, .. }),
            "{source:?}"
        ),
        other => panic!("expected no token, got {other:?}"),
    }
    assert_eq!(error.status(), Some(308));
    assert!(!error.is_retryable() && error.never_sent());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "the credentials were sent to the Location"
    );
    let requests = requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(requests[0].starts_with("POST /v2.01/oauth/token "));
}

/// A `tracing` writer collecting everything into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A reqwest client for the tests' own plain-HTTP calls. reqwest is built without a crypto
/// provider of its own and nothing in this process installs one, so it is given a TLS
/// configuration (unused over http) explicitly.
fn plain_http() -> reqwest::Client {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap()
}

/// An owner with a name, an e-mail, a birthday and an address.
fn personal_owner() -> Value {
    json!({"UserCategory": "OWNER", "TermsAndConditionsAccepted": true,
           "FirstName": "Marguerite", "LastName": "Donnadieu",
           "Email": "marguerite.donnadieu@example.org", "Birthday": 651974400,
           "Nationality": "FR", "CountryOfResidence": "FR",
           "Address": {"AddressLine1": "5 rue Saint-Benoit", "City": "Paris",
                       "PostalCode": "75006", "Country": "FR"}})
}

/// The personal values of [`personal_owner`] and of the bank account sent for them.
const PERSONAL_VALUES: &[&str] = &[
    "Marguerite",
    "Donnadieu",
    "marguerite.donnadieu@example.org",
    "651974400",
    "Saint-Benoit",
    "FR7630006000011234567890189",
];

/// What a client with `debug` on (and `debug_personal_data` as given) logs while creating a
/// user and creating an IBAN bank account for them. Also returns the client, for its `Debug`
/// output.
async fn logged_calls(
    sandbox: &diesel_mangopay_sandbox::RunningSandbox,
    debug_personal_data: bool,
) -> (String, MangopayClient) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let client = MangopayClient::new(
        client_config(sandbox)
            .debug(true)
            .debug_personal_data(debug_personal_data)
            .build()
            .unwrap(),
    )
    .unwrap();
    let user = client
        .post(
            "users/natural",
            &personal_owner(),
            &IdempotencyKey::generate(),
        )
        .await
        .unwrap();
    let user_id = user["Id"].as_str().unwrap();
    client
        .post(
            &format!("users/{user_id}/bankaccounts/iban"),
            &json!({"OwnerName": "Marguerite Donnadieu",
                    "OwnerAddress": {"AddressLine1": "5 rue Saint-Benoit", "City": "Paris",
                                     "PostalCode": "75006", "Country": "FR"},
                    "IBAN": "FR7630006000011234567890189", "BIC": "CMCIFR2A"}),
            &IdempotencyKey::generate(),
        )
        .await
        .unwrap();
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    (logs, client)
}

#[tokio::test]
async fn debug_logs_show_requests_but_never_secrets() {
    let sandbox = start_sandbox(SandboxConfig {
        api_key: "very-secret-api-key-0042".into(),
        ..SandboxConfig::default()
    })
    .await;
    let (masked, client) = logged_calls(&sandbox, false).await;
    let (shown, _) = logged_calls(&sandbox, true).await;
    let token = {
        // The bearer token the clients used, fetched the same way for comparison.
        let answer: Value = plain_http()
            .post(format!("{}/v2.01/oauth/token", sandbox.base_url()))
            .basic_auth("sandbox-client", Some("very-secret-api-key-0042"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["access_token"].as_str().unwrap().to_owned()
    };
    for logs in [&masked, &shown] {
        assert!(
            logs.contains("mangopay request") && logs.contains("mangopay response"),
            "{logs}"
        );
        assert!(
            logs.contains("Bearer [redacted]") && logs.contains("Basic [redacted]"),
            "{logs}"
        );
        assert!(logs.contains(r#""access_token":"[redacted]""#), "{logs}");
        assert!(
            !logs.contains("very-secret-api-key-0042"),
            "the API key leaked: {logs}"
        );
        assert!(!logs.contains(&token), "the bearer token leaked: {logs}");
        // Bodies are logged, with what identifies no one (a BIC names a bank).
        assert!(
            logs.contains(r#""UserCategory":"OWNER""#) && logs.contains("CMCIFR2A"),
            "{logs}"
        );
    }

    // By default personal data is masked, in requests and responses alike.
    for value in PERSONAL_VALUES {
        assert!(!masked.contains(value), "{value} was logged: {masked}");
    }
    let iban = regex::Regex::new(r"\b[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}\b").unwrap();
    assert!(!iban.is_match(&masked), "an IBAN was logged: {masked}");
    assert!(
        masked.contains(r#""FirstName":"[masked]""#)
            && masked.contains(r#""IBAN":"[masked]""#)
            && masked.contains(r#""Address":{"AddressLine1":"[masked]""#),
        "{masked}"
    );
    // With the opt-in it is shown.
    for value in PERSONAL_VALUES {
        assert!(shown.contains(value), "{value} was not logged: {shown}");
    }

    let shown_client = format!("{client:?}");
    assert!(
        !shown_client.contains("very-secret-api-key-0042") && !shown_client.contains(&token),
        "{shown_client}"
    );

    // Without the debug flag nothing is logged.
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    client_for(&sandbox)
        .list("users", PageRequest::default())
        .await
        .unwrap();
    assert!(
        !String::from_utf8(captured.0.lock().unwrap().clone())
            .unwrap()
            .contains("mangopay request")
    );
}

/// A budget scaled down in time: 1 s, 2 s, 4 s and a minute, as Mangopay's 15 minutes,
/// 30 minutes, hour and day.
fn scaled_windows() -> [(Duration, u64); 4] {
    [
        (Duration::from_secs(1), 10),
        (Duration::from_secs(2), 15),
        (Duration::from_secs(4), 25),
        (Duration::from_secs(60), 1_000),
    ]
}

fn rate_limited(sandbox: &diesel_mangopay_sandbox::RunningSandbox) -> usize {
    sandbox
        .sandbox()
        .request_log()
        .iter()
        .filter(|r| r.status == 429)
        .count()
}

#[tokio::test]
async fn many_tasks_share_one_budget_and_meet_no_429() {
    use diesel_mangopay::client::RateBudget;

    let sandbox = start_sandbox(SandboxConfig::default()).await;
    sandbox
        .sandbox()
        .knobs()
        .set_rate_windows(Some(scaled_windows()));
    let budget = RateBudget::new(scaled_windows())
        .unwrap()
        .with_margin(Duration::from_millis(100));
    let client = MangopayClient::new(
        client_config(&sandbox)
            .rate_budget(budget.clone())
            .build()
            .unwrap(),
    )
    .unwrap();
    // 34 calls and the token call, from 64 tasks over clones of one client.
    let calls = 34;
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                if i < calls {
                    client.get("users").await.map(|_| ())
                } else {
                    Ok(())
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let took = started.elapsed();
    assert_eq!(rate_limited(&sandbox), 0, "no call met a 429");
    assert_eq!(sandbox.sandbox().request_log().len(), calls + 1);
    // 10 calls at 0 s, 5 at 1 s (the 2 s window), 10 at 2 s, 0 at 3 s (the 4 s window),
    // 10 at 4 s: the 35th call could not be sent before 4 s.
    let minimum = budget.minimum_time(calls as u64 + 1);
    assert_eq!(minimum, Duration::from_secs(4));
    assert!(
        took >= minimum,
        "{took:?} < {minimum:?}: the budget was overspent"
    );

    // Without a budget of its own, the same load meets Mangopay's 429s.
    let unlimited = MangopayClient::new(
        client_config(&sandbox)
            .rate_budget(RateBudget::unlimited())
            .build()
            .unwrap(),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let results: Vec<_> = futures_join((0..30).map(|_| {
        let client = unlimited.clone();
        async move { client.get("users").await }
    }))
    .await;
    assert!(
        rate_limited(&sandbox) > 0,
        "the sandbox enforces the budget"
    );
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Err(e) if e.status() == Some(429))),
        "some calls were refused"
    );
}

/// Runs the futures concurrently on their own tasks and collects their results in order.
async fn futures_join<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_429_stops_every_clone_until_the_reset() {
    use diesel_mangopay::client::RateBudget;

    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let client = MangopayClient::new(
        client_config(&sandbox)
            .rate_budget(RateBudget::unlimited())
            .build()
            .unwrap(),
    )
    .unwrap();
    client.get("users").await.unwrap();
    // Another process spends the rest of the 15-minute window.
    sandbox.sandbox().knobs().set_rate_limit(Some(3));
    let other = client_for(&sandbox);
    other.get("users").await.unwrap_err();
    let error = client.get("users").await.unwrap_err();
    assert_eq!(error.status(), Some(429), "{error:?}");
    let sent = sandbox.sandbox().request_log().len();
    // Every clone now fails fast, nothing sent, until Mangopay's reset.
    for clone in [client.clone(), client.clone()] {
        match clone.get("users").await.unwrap_err() {
            ApiError::RateLimited { until } => {
                assert!(until > chrono::Utc::now() + chrono::Duration::minutes(10));
            }
            other => panic!("expected RateLimited, got {other:?}"),
        }
    }
    assert_eq!(
        sandbox.sandbox().request_log().len(),
        sent,
        "nothing was sent"
    );
}

#[tokio::test]
async fn calls_another_process_made_are_left_room_for() {
    use diesel_mangopay::client::RateBudget;

    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let windows = [
        (Duration::from_secs(2), 4),
        (Duration::from_secs(30), 100),
        (Duration::from_secs(60), 100),
        (Duration::from_secs(120), 100),
    ];
    sandbox.sandbox().knobs().set_rate_windows(Some(windows));
    let budget = RateBudget::new(windows)
        .unwrap()
        .with_margin(Duration::from_millis(100));
    let client =
        MangopayClient::new(client_config(&sandbox).rate_budget(budget).build().unwrap()).unwrap();
    // Another process spends two calls of the 2 s window; this one's answers say so.
    let other = client_for(&sandbox);
    other.get("users").await.unwrap(); // token + 1
    client.get("users").await.unwrap(); // token + 1: the window is used up
    let started = std::time::Instant::now();
    let results = futures_join((0..3).map(|_| {
        let client = client.clone();
        async move { client.get("users").await }
    }))
    .await;
    for r in &results {
        assert!(r.is_ok(), "{r:?}");
    }
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "the calls waited for the other process's calls to leave the window: {:?}",
        started.elapsed()
    );
    assert_eq!(rate_limited(&sandbox), 0);
}

crate::both_backends!(
    two_processes_share_one_budget_through_the_database,
    |env: crate::support::Env| async move {
        use diesel_mangopay::Db;
        use diesel_mangopay::client::RateBudget;

        env.sandbox()
            .knobs()
            .set_rate_windows(Some(scaled_windows()));
        let budget = RateBudget::new(scaled_windows())
            .unwrap()
            .with_margin(Duration::from_millis(300))
            .with_wait_in_place(Duration::from_secs(30));
        // Two clients with their own pools, as two worker processes would have.
        let process = || async {
            let client = MangopayClient::new(
                client_config(&env.sandbox)
                    .rate_budget(budget.clone())
                    .build()
                    .unwrap(),
            )
            .unwrap();
            let db = Db::connect(&env.database.url).await.unwrap();
            assert!(client.share_budget(&db));
            assert!(!client.share_budget(&db), "shared once");
            client
        };
        let (a, b) = (process().await, process().await);
        let started = std::time::Instant::now();
        let results = futures_join((0..34).map(|i| {
            let client = if i % 2 == 0 { a.clone() } else { b.clone() };
            async move { client.get("users").await }
        }))
        .await;
        let took = started.elapsed();
        for r in &results {
            assert!(r.is_ok(), "{r:?}");
        }
        assert_eq!(rate_limited(&env.sandbox), 0, "no call met a 429");
        // 34 calls and two token calls.
        let minimum = budget.minimum_time(36);
        assert!(
            took >= minimum,
            "{took:?} < {minimum:?}: the budget was overspent"
        );

        // Two processes counting alone overspend it.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let alone = || {
            MangopayClient::new(
                client_config(&env.sandbox)
                    .rate_budget(budget.clone())
                    .build()
                    .unwrap(),
            )
            .unwrap()
        };
        let (a, b) = (alone(), alone());
        futures_join((0..20).map(|i| {
            let client = if i % 2 == 0 { a.clone() } else { b.clone() };
            async move { client.get("users").await }
        }))
        .await;
        assert!(rate_limited(&env.sandbox) > 0, "unshared budgets meet 429s");
    }
);
