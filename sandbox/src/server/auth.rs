//! OAuth 2.0 as Mangopay does it: `POST /v2.01/oauth/token` with Basic
//! credentials, then `Authorization: Bearer <token>` on every other call.
//!
//! Tokens are stateless: `<expiry-unix>.<hex sha256(api_key|client_id|expiry)>`.
//! A restarted sandbox with the same credentials accepts a token an SDK cached
//! on disk, and expiry follows the sandbox clock.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Sandbox;
use super::error::{ApiError, json_response};

/// The token endpoint's success body.
#[derive(Debug, Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
}

/// `POST /v2.01/oauth/token`. The body is ignored: the Python SDK sends JSON
/// under a form content type, Node sends `grant_type=client_credentials`.
pub(crate) async fn oauth_token(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let config = sandbox.config();
    let Some((client_id, api_key)) = basic_credentials(&headers) else {
        return Err(ApiError::invalid_credentials());
    };
    if !constant_time_eq(&client_id, &config.client_id)
        || !constant_time_eq(&api_key, &config.api_key)
    {
        return Err(ApiError::invalid_credentials());
    }
    let ttl = config.token_ttl.as_secs();
    let expiry = sandbox
        .clock()
        .now()
        .timestamp()
        .saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX));
    let body = TokenResponse {
        access_token: mint_token(&config.client_id, &config.api_key, expiry),
        token_type: "Bearer",
        expires_in: ttl,
    };
    Ok(json_response(StatusCode::OK, &body))
}

/// Middleware for every `/v2.01/{ClientId}/...` route: the bearer token must be
/// valid, unexpired and issued for the ClientId of the path.
pub(crate) async fn require_bearer(
    State(sandbox): State<Sandbox>,
    request: Request,
    next: Next,
) -> Response {
    let path_client = request.uri().path().split('/').nth(2).unwrap_or_default();
    let config = sandbox.config();
    let authorized = constant_time_eq(path_client, &config.client_id)
        && bearer_token(request.headers()).is_some_and(|token| {
            token_is_valid(
                token,
                &config.client_id,
                &config.api_key,
                sandbox.clock().now().timestamp(),
            )
        });
    if authorized {
        next.run(request).await
    } else {
        ApiError::invalid_credentials().into_response()
    }
}

/// `(client_id, api_key)` from an `Authorization: Basic ...` header.
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (client_id, api_key) = decoded.split_once(':')?;
    Some((client_id.to_owned(), api_key.to_owned()))
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn signature(client_id: &str, api_key: &str, expiry: i64) -> String {
    let digest = Sha256::digest(format!("{api_key}|{client_id}|{expiry}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A token for `client_id` that expires at Unix time `expiry`.
pub(crate) fn mint_token(client_id: &str, api_key: &str, expiry: i64) -> String {
    format!("{expiry}.{}", signature(client_id, api_key, expiry))
}

/// Whether `token` was minted with these credentials and is still valid at `now`.
pub(crate) fn token_is_valid(token: &str, client_id: &str, api_key: &str, now: i64) -> bool {
    let Some((expiry_text, sig)) = token.split_once('.') else {
        return false;
    };
    let Ok(expiry) = expiry_text.parse::<i64>() else {
        return false;
    };
    constant_time_eq(sig, &signature(client_id, api_key, expiry)) && now < expiry
}

/// Compares two strings without an early exit on the first differing byte.
fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}
