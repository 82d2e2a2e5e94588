//! The Mangopay client on the wire, against the sandbox over loopback: tokens, idempotency,
//! typed errors, rate limits, timeouts and redacted debug logs.

use std::io::Write;
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
    assert!(!error.is_retryable() && error.created_nothing());
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
        assert!(!error.is_retryable() && error.created_nothing());
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
    assert!(error.is_retryable() && !error.created_nothing());
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
        error.is_retryable() && !error.created_nothing(),
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

#[tokio::test]
async fn debug_logs_show_requests_but_never_secrets() {
    let sandbox = start_sandbox(SandboxConfig {
        api_key: "very-secret-api-key-0042".into(),
        ..SandboxConfig::default()
    })
    .await;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let client = MangopayClient::new(client_config(&sandbox).debug(true).build().unwrap()).unwrap();
    client
        .post(
            "users/natural",
            &payer("Logged"),
            &IdempotencyKey::generate(),
        )
        .await
        .unwrap();
    let token = {
        // The bearer token the client used, fetched the same way for comparison.
        let http = reqwest::Client::new();
        let answer: Value = http
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
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("mangopay request") && logs.contains("mangopay response"),
        "{logs}"
    );
    assert!(
        logs.contains("Logged"),
        "bodies are logged in debug mode: {logs}"
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
    let shown = format!("{client:?}");
    assert!(
        !shown.contains("very-secret-api-key-0042") && !shown.contains(&token),
        "{shown}"
    );

    // Without the debug flag nothing is logged.
    captured.0.lock().unwrap().clear();
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
