//! The loopback test harness shared by the sandbox's endpoint tests: a sandbox on a free port,
//! a client with a token, and the answers read back as status, headers and JSON.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

use super::{RunningSandbox, Sandbox, SandboxConfig};

/// An answer: status, headers and JSON body (`Value::Null` when not JSON), and the raw text.
pub(super) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    pub(super) fn ok(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.text);
        &self.body
    }

    /// Asserts a classic error report (`errors`, `<uuid>#<unix>` Id) and returns `errors`.
    pub(super) fn error(&self, status: u16, kind: &str) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(self.body["Type"], kind, "{}", self.text);
        let id = self.body["Id"].as_str().expect("Id is a string");
        assert!(id.contains('#'), "{id}");
        assert!(self.body["Date"].is_i64());
        assert!(self.body.as_object().unwrap().contains_key("errors"));
        &self.body["errors"]
    }

    pub(super) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header"))
    }
}

pub(super) struct Harness {
    pub running: RunningSandbox,
    pub http: reqwest::Client,
    pub token: String,
}

/// A sandbox seeded with `seed`, and a token.
pub(super) async fn start(seed: u64) -> Harness {
    let running = Sandbox::new(SandboxConfig {
        seed: Some(seed),
        ..SandboxConfig::default()
    })
    .serve("127.0.0.1:0".parse().unwrap())
    .await
    .expect("the sandbox binds a free port");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut harness = Harness {
        running,
        http: reqwest::Client::new(),
        token: String::new(),
    };
    harness.token = harness.new_token().await;
    harness
}

pub(super) async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("the sandbox answers");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
        text,
    }
}

impl Harness {
    pub(super) fn sandbox(&self) -> &Sandbox {
        self.running.sandbox()
    }

    pub(super) async fn advance(&mut self, d: Duration) {
        self.sandbox().clock().advance(d);
        self.token = self.new_token().await;
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.base_url())
    }

    pub(super) fn api(&self, path: &str) -> String {
        self.url(&format!(
            "/v2.01/{}{path}",
            self.sandbox().config().client_id
        ))
    }

    pub(super) async fn new_token(&self) -> String {
        let config = self.sandbox().config();
        let request = self
            .http
            .post(self.url("/v2.01/oauth/token"))
            .basic_auth(&config.client_id, Some(&config.api_key))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials");
        let answer = answer(request).await;
        answer.ok()["access_token"].as_str().unwrap().to_owned()
    }

    pub(super) async fn get(&self, path: &str) -> Answer {
        answer(self.http.get(self.api(path)).bearer_auth(&self.token)).await
    }

    pub(super) async fn post(&self, path: &str, body: &Value) -> Answer {
        answer(
            self.http
                .post(self.api(path))
                .bearer_auth(&self.token)
                .json(body),
        )
        .await
    }

    pub(super) async fn post_keyed(&self, path: &str, body: &Value, key: &str) -> Answer {
        answer(
            self.http
                .post(self.api(path))
                .bearer_auth(&self.token)
                .header("Idempotency-Key", key)
                .json(body),
        )
        .await
    }

    pub(super) async fn put(&self, path: &str, body: &Value) -> Answer {
        answer(
            self.http
                .put(self.api(path))
                .bearer_auth(&self.token)
                .json(body),
        )
        .await
    }

    /// A control request: no bearer token.
    pub(super) async fn control(&self, path: &str, body: &Value) -> Answer {
        answer(self.http.post(self.url(path)).json(body)).await
    }
}
