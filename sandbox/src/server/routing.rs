//! The route table and the front door every request passes before routing:
//! request log, path tolerance (`//`, trailing `/`, case of the fixed path
//! words), rate limiting, injected failures, latency and the `X-RateLimit*`
//! headers. Unknown routes answer 501, never 404.

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::uri::PathAndQuery;
use axum::http::{Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::error::{ApiError, with_clock};
use super::idempotency::{self, HEADER as IDEMPOTENCY_HEADER};
use super::{RequestRecord, Sandbox, auth, users};

/// Bodies up to this size are accepted (Mangopay answers 413 only above 10 MB,
/// and a 10 MB KYC page grows by a third in base64).
pub(crate) const BODY_LIMIT: usize = 32 * 1024 * 1024;

/// The fixed words of Mangopay paths, matched case-insensitively. Ids never are.
pub(crate) const FIXED_WORDS: &[&str] = &[
    "v2.01",
    "oauth",
    "token",
    "users",
    "natural",
    "legal",
    "responses",
    "kyc",
    "documents",
    "pages",
    "wallets",
    "bankaccounts",
    "iban",
    "gb",
    "us",
    "ca",
    "other",
    "cardregistrations",
    "cards",
    "payins",
    "card",
    "direct",
    "bankwire",
    "refunds",
    "payouts",
    "transfers",
    "events",
    "hooks",
];

/// The URL of a request as it was received (before path normalization), kept
/// for the `RequestURL` of stored idempotent answers.
#[derive(Debug, Clone)]
pub(crate) struct ReceivedUrl(pub(crate) String);

/// Collapses `//`, drops a trailing `/` and lower-cases the fixed path words.
/// The segment after `v2.01` is the ClientId and keeps its case, except in
/// `/v2.01/oauth/token`; every segment that is not a fixed word keeps its case.
pub(crate) fn normalize_path(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let is_token_path = segments.len() == 3
        && segments[0].eq_ignore_ascii_case("v2.01")
        && segments[1].eq_ignore_ascii_case("oauth")
        && segments[2].eq_ignore_ascii_case("token");
    let mut normalized = String::with_capacity(path.len());
    for (i, segment) in segments.iter().enumerate() {
        normalized.push('/');
        let lower = segment.to_ascii_lowercase();
        let is_client_id = i == 1 && !is_token_path;
        if !is_client_id && FIXED_WORDS.contains(&lower.as_str()) {
            normalized.push_str(&lower);
        } else {
            normalized.push_str(segment);
        }
    }
    if normalized.is_empty() {
        normalized.push('/');
    }
    normalized
}

fn with_path(uri: &Uri, path: &str) -> Uri {
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    match path_and_query.parse::<PathAndQuery>() {
        Ok(pq) => parts.path_and_query = Some(pq),
        Err(_) => return uri.clone(),
    }
    Uri::from_parts(parts).unwrap_or_else(|_| uri.clone())
}

/// The client a request counts against for rate limiting: the ClientId of the
/// path, or the Basic credentials' client on the token endpoint.
fn rate_limit_client(path: &str, request: &Request) -> String {
    if path == "/v2.01/oauth/token" {
        return auth::basic_credentials(request.headers())
            .map(|(client, _)| client)
            .unwrap_or_default();
    }
    match path.strip_prefix("/v2.01/") {
        Some(rest) => rest.split('/').next().unwrap_or_default().to_owned(),
        None => String::new(),
    }
}

/// The middleware wrapped around the whole router (so it runs before routing).
async fn front_door(State(sandbox): State<Sandbox>, mut request: Request, next: Next) -> Response {
    let shared = sandbox.shared();
    let received_path = request.uri().path().to_owned();
    let seq = shared.log_request(RequestRecord {
        method: request.method().to_string(),
        path: received_path.clone(),
        status: 0,
        idempotency_key: request
            .headers()
            .get(IDEMPOTENCY_HEADER)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        tenant_id: ["x-tenant-id", "x-tentant-id"]
            .iter()
            .find_map(|name| request.headers().get(*name))
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
    });

    let host = request
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let received_url = format!(
        "http://{host}{}",
        request
            .uri()
            .path_and_query()
            .map_or("/", PathAndQuery::as_str)
    );
    request.extensions_mut().insert(ReceivedUrl(received_url));
    let path = normalize_path(&received_path);
    *request.uri_mut() = with_path(request.uri(), &path);

    if path == "/v2.01/oauth/token" && request.method() == Method::POST {
        shared.count_token_request();
    }
    let clock = sandbox.clock().clone();
    let (admitted, usage) = shared.rate_limiter.admit(
        &rate_limit_client(&path, &request),
        clock.now().timestamp_millis(),
        sandbox.knobs().rate_limit(),
    );
    let mut response = with_clock(clock, async {
        if !admitted {
            ApiError::rate_limited().into_response()
        } else if sandbox.knobs().should_fail() {
            ApiError::injected_failure().into_response()
        } else {
            next.run(request).await
        }
    })
    .await;
    usage.write_headers(response.headers_mut());
    shared.log_status(seq, response.status().as_u16());

    let latency = sandbox.knobs().latency();
    if latency > Duration::ZERO {
        tokio::time::sleep(latency).await;
    }
    response
}

/// Any Mangopay route this sandbox does not emulate.
async fn not_implemented(method: Method, uri: Uri) -> ApiError {
    ApiError::not_implemented(method.as_str(), uri.path())
}

/// A known path called with a method it does not accept.
async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::method_not_allowed(method.as_str())
}

/// The sandbox's HTTP API. See [`super::Sandbox::router`].
pub fn router(sandbox: Sandbox) -> Router {
    let client_routes = Router::new()
        .route("/v2.01/{client_id}/users", get(users::users_list))
        .route(
            "/v2.01/{client_id}/users/natural",
            post(users::users_natural_create),
        )
        .route(
            "/v2.01/{client_id}/users/natural/{user_id}",
            get(users::users_natural_get)
                .put(users::users_natural_update)
                .delete(not_implemented),
        )
        .route(
            "/v2.01/{client_id}/users/legal",
            post(users::users_legal_create),
        )
        .route(
            "/v2.01/{client_id}/users/legal/{user_id}",
            get(users::users_legal_get)
                .put(users::users_legal_update)
                .delete(not_implemented),
        )
        .route("/v2.01/{client_id}/users/{user_id}", get(users::users_get))
        .route(
            "/v2.01/{client_id}/responses/{key}",
            get(idempotency::responses_get),
        )
        .route_layer(middleware::from_fn_with_state(
            sandbox.clone(),
            idempotency::reserve_key,
        ))
        .route_layer(middleware::from_fn_with_state(
            sandbox.clone(),
            auth::require_bearer,
        ));

    let api = Router::new()
        .route("/v2.01/oauth/token", post(auth::oauth_token))
        .merge(client_routes)
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_implemented)
        .with_state(sandbox.clone());

    Router::new()
        .fallback_service(api)
        .layer(middleware::from_fn_with_state(sandbox, front_door))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}
