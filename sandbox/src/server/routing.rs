//! The route table and the front door every request passes before routing:
//! request log, path tolerance (`//`, trailing `/`, case of the fixed path
//! words), redirects and outages, rate limiting, the failures injected before
//! the work, latency, the `X-RateLimit*` headers, and the delivery (or loss) of
//! the answer. Unknown routes answer 501, never 404.
//!
//! The work behind the front door runs on its own task: a client that gives up
//! does not stop it, so the object is created and the answer stored for
//! `GET /responses/{key}` as on the real API.

use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::uri::PathAndQuery;
use axum::http::{Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::connection::Connection;
use super::error::{ApiError, current_context, in_context};
use super::faults::{self, Deferred, Faults};
use super::idempotency::{self, HEADER as IDEMPOTENCY_HEADER};
use super::{RequestRecord, Sandbox, auth, users};
use super::{bank_accounts, kyc, recipients, ubo};
use super::{cards, payins, refunds};
use super::{control, payouts, transactions, transfers, wallets};

/// The token endpoint, after normalization.
pub(crate) const TOKEN_PATH: &str = "/v2.01/oauth/token";

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
    "ubodeclarations",
    "ubos",
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
    "web",
    "bankwire",
    "refunds",
    "payouts",
    "transfers",
    "events",
    "hooks",
    "recipients",
    "schema",
    "validate",
    "payout-methods",
    "reachability",
    "transactions",
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

/// `http://{Host}` of a request, for the URLs the sandbox hands out that point back at itself
/// (`CardRegistrationURL`, `SecureModeRedirectURL`, `RedirectURL`).
pub(crate) fn origin(headers: &axum::http::HeaderMap) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// The client a request counts against for rate limiting: the ClientId of the
/// path, or the Basic credentials' client on the token endpoint.
fn rate_limit_client(path: &str, request: &Request) -> String {
    if path == TOKEN_PATH {
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
    // Control requests are a local test tool, not API calls: no log, limits or faults.
    if control::is_control_path(request.uri().path()) {
        return control::pass(&sandbox, request, next).await;
    }
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
        fault: None,
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
    let connection = request
        .extensions()
        .get::<ConnectInfo<Connection>>()
        .map(|info| info.0.clone());
    let faults = Faults::default();
    request.extensions_mut().insert(faults.clone());

    if path == TOKEN_PATH && request.method() == Method::POST {
        shared.count_token_request();
    }
    let response = in_context(shared.context(), answer(&sandbox, request, next, &faults)).await;
    let (marker, delivery) = faults.outcome();
    shared.log_answer(seq, response.status().as_u16(), marker);

    let latency = sandbox.knobs().latency();
    if latency > Duration::ZERO {
        tokio::time::sleep(latency).await;
    }
    faults::deliver(response, delivery, connection).await
}

/// The answer to a request that went through the front door, before its delivery.
async fn answer(sandbox: &Sandbox, request: Request, next: Next, faults: &Faults) -> Response {
    let knobs = sandbox.knobs();
    if let Some(location) = knobs.take_redirect() {
        faults.mark(faults::REDIRECTED);
        return faults::redirect(&location);
    }
    if knobs.is_unavailable() {
        faults.mark(faults::UNAVAILABLE);
        return ApiError::unavailable().into_response();
    }
    let shared = sandbox.shared();
    let path = request.uri().path();
    let (admitted, usage) = shared.rate_limiter.admit(
        &rate_limit_client(path, &request),
        sandbox.clock().now().timestamp_millis(),
        knobs.rate_windows_ms(),
    );
    // A POST with a key to an emulated route reserves the key before failing, so the
    // failure is stored against it; every other request fails right here.
    let keyed_post = request.method() == Method::POST
        && request.headers().contains_key(IDEMPOTENCY_HEADER)
        && path != TOKEN_PATH;
    let refused = if !admitted {
        Some(Deferred::RateLimited)
    } else if keyed_post {
        None
    } else {
        knobs
            .should_fail(&shared.rng)
            .then_some(Deferred::MaybeFail)
    };
    let mut response = match refused {
        Some(Deferred::RateLimited) if keyed_post && knobs.rate_limited_keys_blocked() => {
            faults.defer(Deferred::RateLimited);
            settle(run_detached(next, request).await, faults, |_| true)
        }
        Some(refused) => {
            let (response, marker) = faults::refusal(refused);
            faults.mark(marker);
            response
        }
        None if keyed_post => {
            faults.defer(Deferred::MaybeFail);
            let response = run_detached(next, request).await;
            settle(response, faults, |_| knobs.should_fail(&shared.rng))
        }
        None => run_detached(next, request).await,
    };
    usage.write_headers(response.headers_mut());
    response
}

/// After a keyed POST came back: if no key reservation took the deferred fault (the
/// request was refused before reaching one: not authenticated, a malformed key, a route
/// not emulated), the fault is answered as for any other request when `applies` says so.
/// Nothing was done for such a request, so its answer can be replaced.
fn settle(response: Response, faults: &Faults, applies: impl FnOnce(Deferred) -> bool) -> Response {
    match faults.take_deferred() {
        Some(deferred) if applies(deferred) => {
            let (response, marker) = faults::refusal(deferred);
            faults.mark(marker);
            response
        }
        _ => response,
    }
}

/// Runs the rest of the stack on its own task, so that it completes even if the client
/// goes away meanwhile.
async fn run_detached(next: Next, request: Request) -> Response {
    let work = next.run(request);
    let task = match current_context() {
        Some(context) => tokio::spawn(in_context(context, work)),
        None => tokio::spawn(work),
    };
    match task.await {
        Ok(response) => response,
        Err(err) => {
            tracing::error!(%err, "sandbox request task failed");
            ApiError::injected_failure().into_response()
        }
    }
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
            "/v2.01/{client_id}/users/{user_id}/bankaccounts",
            get(bank_accounts::bank_accounts_list),
        )
        .route(
            "/v2.01/{client_id}/users/{user_id}/bankaccounts/iban",
            post(bank_accounts::bank_accounts_create_iban),
        )
        .route(
            "/v2.01/{client_id}/users/{user_id}/bankaccounts/gb",
            post(bank_accounts::bank_accounts_create_gb),
        )
        .route(
            "/v2.01/{client_id}/users/{user_id}/bankaccounts/us",
            post(bank_accounts::bank_accounts_create_us),
        )
        .route(
            "/v2.01/{client_id}/users/{user_id}/bankaccounts/ca",
            post(bank_accounts::bank_accounts_create_ca),
        )
        .route(
            "/v2.01/{client_id}/users/{user_id}/bankaccounts/other",
            post(bank_accounts::bank_accounts_create_other),
        )
        .route(
            "/v2.01/{client_id}/users/{user_id}/bankaccounts/{bank_account_id}",
            get(bank_accounts::bank_accounts_get).put(bank_accounts::bank_accounts_deactivate),
        )
        .route(
            "/v2.01/{client_id}/users/{user_id}/recipients",
            get(recipients::recipients_list).post(recipients::recipients_create),
        )
        .route(
            "/v2.01/{client_id}/users/{user_id}/recipients/validate",
            post(recipients::recipients_validate),
        )
        .route(
            "/v2.01/{client_id}/recipients/schema",
            get(recipients::recipients_schema),
        )
        .route(
            "/v2.01/{client_id}/recipients/payout-methods",
            get(recipients::recipients_payout_methods),
        )
        .route(
            "/v2.01/{client_id}/recipients/{recipient_id}",
            get(recipients::recipients_get).put(recipients::recipients_deactivate),
        )
        .route(
            "/v2.01/{client_id}/users/{user_id}/kyc/documents",
            get(kyc::users_kyc_documents_list).post(kyc::kyc_documents_create),
        )
        .route(
            "/v2.01/{client_id}/users/{user_id}/kyc/documents/{document_id}",
            get(kyc::users_kyc_documents_get).put(kyc::kyc_documents_submit),
        )
        .route(
            "/v2.01/{client_id}/users/{user_id}/kyc/documents/{document_id}/pages",
            post(kyc::kyc_pages_create),
        )
        .route(
            "/v2.01/{client_id}/kyc/documents",
            get(kyc::kyc_documents_list),
        )
        .route(
            "/v2.01/{client_id}/kyc/documents/{document_id}",
            get(kyc::kyc_documents_get),
        )
        .route(
            "/v2.01/{client_id}/users/{user_id}/kyc/ubodeclarations",
            get(ubo::users_ubo_declarations_list).post(ubo::ubo_declarations_create),
        )
        .route(
            "/v2.01/{client_id}/users/{user_id}/kyc/ubodeclarations/{declaration_id}",
            get(ubo::users_ubo_declarations_get).put(ubo::ubo_declarations_submit),
        )
        .route(
            "/v2.01/{client_id}/users/{user_id}/kyc/ubodeclarations/{declaration_id}/ubos",
            post(ubo::ubos_create),
        )
        .route(
            "/v2.01/{client_id}/users/{user_id}/kyc/ubodeclarations/{declaration_id}/ubos/{ubo_id}",
            get(ubo::ubos_get).put(ubo::ubos_update),
        )
        .route(
            "/v2.01/{client_id}/kyc/ubodeclarations/{declaration_id}",
            get(ubo::ubo_declarations_get),
        )
        .route(
            "/v2.01/{client_id}/users/{user_id}/wallets",
            get(wallets::users_wallets_list),
        )
        .route(
            "/v2.01/{client_id}/users/{user_id}/transactions",
            get(transactions::users_transactions_list),
        )
        .route("/v2.01/{client_id}/wallets", post(wallets::wallets_create))
        .route(
            "/v2.01/{client_id}/wallets/{wallet_id}",
            get(wallets::wallets_get).put(wallets::wallets_update),
        )
        .route(
            "/v2.01/{client_id}/wallets/{wallet_id}/transactions",
            get(transactions::wallets_transactions_list),
        )
        .route(
            "/v2.01/{client_id}/transfers",
            post(transfers::transfers_create),
        )
        .route(
            "/v2.01/{client_id}/transfers/{transfer_id}",
            get(transfers::transfers_get),
        )
        .route(
            "/v2.01/{client_id}/payouts/bankwire",
            post(payouts::payouts_create),
        )
        .route(
            "/v2.01/{client_id}/payouts/bankwire/{payout_id}",
            get(payouts::payouts_bankwire_get),
        )
        .route(
            "/v2.01/{client_id}/payouts/reachability",
            post(payouts::payouts_reachability),
        )
        .route(
            "/v2.01/{client_id}/payouts/{payout_id}",
            get(payouts::payouts_get),
        )
        .route(
            "/v2.01/{client_id}/cardregistrations",
            post(cards::card_registrations_create),
        )
        .route(
            "/v2.01/{client_id}/cardregistrations/{registration_id}",
            get(cards::card_registrations_get)
                .put(cards::card_registrations_update)
                .post(cards::card_registrations_finish),
        )
        .route(
            "/v2.01/{client_id}/cards/{card_id}",
            get(cards::cards_get).put(cards::cards_update),
        )
        .route(
            "/v2.01/{client_id}/users/{user_id}/cards",
            get(cards::users_cards_list),
        )
        .route(
            "/v2.01/{client_id}/payins/card/direct",
            post(payins::payins_card_direct_create),
        )
        .route(
            "/v2.01/{client_id}/payins/card/direct/{payin_id}",
            get(payins::payins_card_direct_get),
        )
        .route(
            "/v2.01/{client_id}/payins/card/web",
            post(payins::payins_card_web_create),
        )
        .route(
            "/v2.01/{client_id}/payins/card/web/{payin_id}",
            get(payins::payins_card_web_get),
        )
        .route(
            "/v2.01/{client_id}/payins/bankwire/direct",
            post(payins::payins_bankwire_create),
        )
        .route(
            "/v2.01/{client_id}/payins/bankwire/direct/{payin_id}",
            get(payins::payins_bankwire_get),
        )
        .route(
            "/v2.01/{client_id}/payins/{payin_id}",
            get(payins::payins_get),
        )
        .route(
            "/v2.01/{client_id}/payins/{payin_id}/refunds",
            get(refunds::payins_refunds_list).post(refunds::payins_refunds_create),
        )
        .route(
            "/v2.01/{client_id}/refunds/{refund_id}",
            get(refunds::refunds_get),
        )
        .route(
            "/v2.01/{client_id}/responses/{key}",
            get(idempotency::responses_get),
        )
        .route_layer(middleware::from_fn_with_state(
            sandbox.clone(),
            faults::work,
        ))
        .route_layer(middleware::from_fn_with_state(
            sandbox.clone(),
            idempotency::reserve_key,
        ))
        .route_layer(middleware::from_fn_with_state(
            sandbox.clone(),
            auth::require_bearer,
        ));

    let api = Router::new()
        .route(
            TOKEN_PATH,
            post(auth::oauth_token).route_layer(middleware::from_fn_with_state(
                sandbox.clone(),
                faults::work,
            )),
        )
        .merge(client_routes)
        .merge(control::routes())
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_implemented)
        .with_state(sandbox.clone());

    Router::new()
        .fallback_service(api)
        .layer(middleware::from_fn_with_state(sandbox, front_door))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}
