//! OAuth 2.0 as Mangopay does it: `POST /v2.01/oauth/token` with Basic
//! credentials, then `Authorization: Bearer <token>` on every other call.
//!
//! Tokens are stateless: `<expiry-unix>.<mac>`, the MAC an HMAC-SHA256 keyed by
//! the API key over the client id and the expiry, in unpadded URL-safe base64.
//! A restarted sandbox with the same credentials accepts a token an SDK cached
//! on disk, and expiry follows the sandbox clock. Secrets are compared in
//! constant time.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit as _, Mac as _};
use serde::Serialize;
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

use super::error::{ApiError, json_response};
use super::{Sandbox, cards};

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
    let matches = client_id.as_bytes().ct_eq(config.client_id.as_bytes())
        & api_key.as_bytes().ct_eq(config.api_key.as_bytes());
    if !bool::from(matches) {
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
/// valid, unexpired and issued for the ClientId of the path. The card kit's form POST that
/// finishes a card registration is the one request served without a token
/// ([`cards::is_card_kit_finish`]).
pub(crate) async fn require_bearer(
    State(sandbox): State<Sandbox>,
    request: Request,
    next: Next,
) -> Response {
    let path_client = request.uri().path().split('/').nth(2).unwrap_or_default();
    let config = sandbox.config();
    // The ClientId of the path is no secret; the token's MAC is checked in constant time.
    let authorized = path_client == config.client_id
        && bearer_token(request.headers()).is_some_and(|token| {
            token_is_valid(
                token,
                &config.client_id,
                &config.api_key,
                sandbox.clock().now().timestamp(),
            )
        });
    // The card kit's last step comes from a browser, which only knows the ClientId.
    let card_kit = !authorized
        && cards::is_card_kit_finish(
            request.method(),
            request.uri().path(),
            request.headers(),
            &config.client_id,
        );
    if authorized || card_kit {
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

/// The MAC of a token for `client_id` expiring at `expiry`, before finalization.
fn token_mac(client_id: &str, api_key: &str, expiry: i64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(api_key.as_bytes())
        .expect("HMAC accepts keys of any length");
    // Length-prefixed, so no two (client id, expiry) pairs share a message.
    mac.update(&(client_id.len() as u64).to_be_bytes());
    mac.update(client_id.as_bytes());
    mac.update(&expiry.to_be_bytes());
    mac
}

/// A token for `client_id` that expires at Unix time `expiry`.
pub(crate) fn mint_token(client_id: &str, api_key: &str, expiry: i64) -> String {
    let tag = token_mac(client_id, api_key, expiry)
        .finalize()
        .into_bytes();
    format!("{expiry}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// Whether `token` was minted with these credentials and is still valid at `now`.
pub(crate) fn token_is_valid(token: &str, client_id: &str, api_key: &str, now: i64) -> bool {
    let Some((expiry_text, tag)) = token.split_once('.') else {
        return false;
    };
    let Ok(expiry) = expiry_text.parse::<i64>() else {
        return false;
    };
    let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else {
        return false;
    };
    token_mac(client_id, api_key, expiry)
        .verify_slice(&tag)
        .is_ok()
        && now < expiry
}
