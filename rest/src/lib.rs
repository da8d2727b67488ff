//! The REST shell: a thin axum layer over chat-core's use cases for login, conversations and
//! health. Each domain module exposes `router()`; `router` merges them and adds the shared
//! layers once. Errors are `ApiError` (`{"code","message"}` with an HTTP status).
//!
//! Layout:
//! - `api`: the shared wire types (error body, cursor pages) and the OpenAPI document.
//! - `auth`: login providers (WeChat, dev) and JWT bearer tokens.
//! - `error`: `ApiError`. `extract`: `StrictJson`.
//! - `merchants`: applications, their review, merchants' public pages, suspensions, leads.
//! - `shop`: the catalog (merchants' products, public product pages); `shop::orders`: orders,
//!   their payment and the payment callbacks; `shop::claims`: claims of farm animals; `shop::reviews`: reviews.
//! - `staff`: the console login (username, password, TOTP) and staff accounts.
//! - `uploads`: photo uploads and serving them.
//! - `users`: the users area (my account, profiles, settings, blocks, phone, consent, export).
//! - `auth::routes` (login), `conversations`, `alerts` (merchants), `admin` (moderation, bans,
//!   roles, the audit log, orders), `health`: the endpoints of the first areas, one module each.
//!
//! Every route is registered through `utoipa_axum::OpenApiRouter` with its `#[utoipa::path]`,
//! so a route cannot be served without being in `/openapi.json`.

pub mod admin;
pub mod alerts;
pub mod api;
pub mod auth;
pub mod conversations;
pub mod health;
pub mod error;
pub mod extract;
pub mod merchants;
pub mod shop;
pub mod staff;
pub mod uploads;
pub mod users;

use auth::{JwtKeys, LoginProvider};
use axum::extract::{DefaultBodyLimit, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::header;
use axum::Router;
use error::ApiError;
use futures_util::future::BoxFuture;
use jiebanke_chat_core::chat::ChatService;
use jiebanke_chat_core::events::AlertService;
use jiebanke_chat_core::moderation::ModerationService;
use jiebanke_chat_core::ports::TokenVerifier;
use jiebanke_chat_core::sessions::TokenClaims;
use jiebanke_chat_core::UserId;
use std::sync::Arc;

/// One dependency's state for `/readyz`. A critical one down makes the node unready (503); a
/// non-critical one down leaves it serving, degraded (200 with `"status":"degraded"`).
#[derive(Debug, Clone, Copy)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub critical: bool,
}

/// Answers whether the dependencies are reachable, for `/readyz`.
pub type ReadinessCheck = Arc<dyn Fn() -> BoxFuture<'static, Vec<Check>> + Send + Sync>;

/// Everything REST handlers share.
#[derive(Clone)]
pub struct RestState {
    pub chat: Arc<ChatService>,
    pub alerts: Arc<AlertService>,
    pub moderation: Arc<ModerationService>,
    pub users: Arc<jiebanke_chat_core::users::UsersService>,
    pub uploads: Arc<jiebanke_chat_core::uploads::UploadService>,
    pub merchants: Arc<jiebanke_chat_core::merchants::MerchantsService>,
    pub catalog: Arc<jiebanke_chat_core::commerce::catalog::CatalogService>,
    pub orders: Arc<jiebanke_chat_core::commerce::orders::OrderService>,
    pub claims: Arc<jiebanke_chat_core::commerce::claims::ClaimService>,
    pub reviews: Arc<jiebanke_chat_core::commerce::reviews::ReviewService>,
    /// The local payment provider, when it is the one in use (development): its confirm route
    /// builds callbacks as WeChat Pay would.
    pub local_pay: Option<Arc<jiebanke_payments::local::LocalProvider>>,
    pub staff: Arc<jiebanke_chat_core::staff::StaffService>,
    pub qr: Arc<jiebanke_chat_core::logins::QrLoginService>,
    /// Marks users active for the day (logins; the gateway marks session opens).
    pub activity: Arc<jiebanke_chat_core::dashboard::ActivityTracker>,
    pub dashboard: Arc<jiebanke_chat_core::dashboard::DashboardService>,
    /// Reads the banned-word list from its source again; returns how many words it has.
    pub reload_words: Arc<dyn Fn() -> Result<usize, String> + Send + Sync>,
    pub jwt: Arc<JwtKeys>,
    /// Login sessions: opened with each token, checked on every authenticated request, ended
    /// by logging out.
    pub sessions: Arc<jiebanke_chat_core::sessions::SessionService>,
    /// Login providers by name; the first is the default.
    pub logins: Arc<Vec<Arc<dyn LoginProvider>>>,
    pub readiness: ReadinessCheck,
    /// Set while the process drains: `/readyz` says 503 so load balancers stop sending.
    pub draining: tokio_util::sync::CancellationToken,
    /// Website leads per client IP (`JBK_LEADS_PER_HOUR`).
    pub lead_limiter: Arc<governor::DefaultKeyedRateLimiter<std::net::IpAddr>>,
    /// Logins per client IP.
    pub login_limiter: Arc<governor::DefaultKeyedRateLimiter<std::net::IpAddr>>,
    /// Requests per client IP, on every REST route but the probes (`JBK_HTTP_RATE`).
    pub ip_limiter: Arc<governor::DefaultKeyedRateLimiter<std::net::IpAddr>>,
    /// Writes (every method but GET and HEAD) per user (`JBK_WRITE_RATE`).
    pub write_limiter: Arc<governor::DefaultKeyedRateLimiter<UserId>>,
}

/// Checks `key` against `limiter` (trimming a limiter that tracks many keys); the 429 answer
/// with `retry_after_ms` and `Retry-After` when over.
pub fn rate_check<K: Clone + std::hash::Hash + Eq>(
    limiter: &governor::DefaultKeyedRateLimiter<K>,
    key: &K,
    message: &'static str,
) -> Result<(), ApiError> {
    use governor::clock::{Clock, DefaultClock};
    if limiter.len() > 100_000 {
        limiter.retain_recent();
    }
    limiter.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now()).as_millis().max(1) as u64;
        ApiError { retry_after_ms: Some(wait), ..ApiError::new(axum::http::StatusCode::TOO_MANY_REQUESTS, "rate_limited", message) }
    })
}

/// The per-IP request limit, as a middleware on the REST routes.
async fn limit_ip(
    axum::extract::State(state): axum::extract::State<RestState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match rate_check(&state.ip_limiter, &peer.ip(), "too many requests from this address, retry later") {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// Largest request body the REST shell reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// `/healthz` and `/readyz` alone, for a process that runs the gateway without the REST shell.
pub fn health_router(state: RestState) -> Router {
    Router::from(health::router()).with_state(state)
}

/// Every REST route, with the OpenAPI document made from them.
fn documented() -> utoipa_axum::router::OpenApiRouter<RestState> {
    use utoipa::OpenApi;
    utoipa_axum::router::OpenApiRouter::with_openapi(api::ApiDoc::openapi())
        .merge(auth::routes::router())
        .merge(users::router())
        .merge(uploads::router())
        .merge(merchants::router())
        .merge(shop::router())
        .merge(staff::router())
        .merge(conversations::router())
        .merge(alerts::router())
        .merge(admin::router())
}

/// The OpenAPI document of every REST route (what `GET /openapi.json` answers).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = documented().merge(health::router()).into_openapi();
    // The modifiers ran on the bare document, before the routers added their paths: the one
    // that reaches every operation runs again on the whole.
    api::apply_common(&mut doc);
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

pub fn router(state: RestState) -> Router {
    let (business, _) = documented()
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), limit_ip))
        .split_for_parts();
    // The probes are not rate limited: a load balancer polls them from one address.
    let (health, _) = health::router().split_for_parts();
    // The document and its page are counted per address like the business routes: they are
    // the largest answers the shell serves.
    let docs = Router::from(utoipa_swagger_ui::SwaggerUi::new("/docs").url("/openapi.json", openapi()))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), limit_ip))
        .layer(axum::middleware::map_response(docs_headers));
    business
        .merge(health)
        .merge(docs)
        .layer(axum::middleware::from_fn(private_answers))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Every REST answer says `nosniff`; an answer to a request that carried a token is private
/// (an export holds a phone number and licence in clear): `Cache-Control: no-store`, so
/// neither a shared cache nor the browser's disk keeps it.
async fn private_answers(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let authenticated = req.headers().contains_key(header::AUTHORIZATION);
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    if authenticated {
        h.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    }
    resp
}

/// The Content-Security-Policy of the API's own page (`/docs`, Swagger UI): its scripts and
/// styles from this origin only (its styles set inline attributes, hence `unsafe-inline` for
/// styles alone), no frames, no plugins.
pub const DOCS_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

async fn docs_headers(mut resp: axum::response::Response) -> axum::response::Response {
    resp.headers_mut().insert(header::CONTENT_SECURITY_POLICY, header::HeaderValue::from_static(DOCS_CSP));
    resp
}

/// The answers for a path no route has (404 `not_found`) and a method the route does not take
/// (405 `method_not_allowed`), in the one JSON error shape. Applied to the whole router of the
/// process (REST and gateway alike).
pub fn with_fallbacks(router: Router) -> Router {
    router
        .fallback(|| async { ApiError::new(axum::http::StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(axum::http::StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method")
        })
}

/// The caller of the routes a banned user may still use (their PIPL rights: export and erase),
/// from `Authorization: Bearer <token>`: the token must be valid and its account not erased.
pub struct AccountOwner(pub UserId);

impl<S> FromRequestParts<S> for AccountOwner
where
    RestState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = RestState::from_ref(state);
        let user = bearer_user(parts, &state).await?.user;
        match state.chat.user(user).await {
            Ok(u) if !u.erased => {}
            Ok(_) | Err(jiebanke_chat_core::CoreError::NotFound(_)) => return Err(ApiError::unauthorized("unknown user")),
            Err(e) => return Err(e.into()),
        }
        write_limit(parts, &state, user)?;
        Ok(AccountOwner(user))
    }
}

/// The per-user write limit: every method but GET and HEAD counts.
fn write_limit(parts: &Parts, state: &RestState, user: UserId) -> Result<(), ApiError> {
    if !matches!(parts.method, axum::http::Method::GET | axum::http::Method::HEAD) {
        rate_check(&state.write_limiter, &user, "too many changes, retry later")?;
    }
    Ok(())
}

/// The bearer token's user, once its signature, expiry and session are checked (a session
/// ended by a logout answers 401 like an expired token).
async fn bearer_user(parts: &Parts, state: &RestState) -> Result<TokenClaims, ApiError> {
    let token = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
    let claims = state.jwt.verify(token).map_err(|_| ApiError::unauthorized("invalid or expired token"))?;
    state.sessions.check(&claims).await.map_err(|e| match e {
        jiebanke_chat_core::CoreError::Unauthorized(_) => ApiError::unauthorized("this session has ended; log in again"),
        other => ApiError::from(other),
    })?;
    Ok(claims)
}

/// The caller's login session (for logging out), checked as `AuthUser` is.
pub struct CurrentSession(pub TokenClaims);

impl<S> FromRequestParts<S> for CurrentSession
where
    RestState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = RestState::from_ref(state);
        let claims = bearer_user(parts, &state).await?;
        write_limit(parts, &state, claims.user)?;
        Ok(CurrentSession(claims))
    }
}

/// The caller, from `Authorization: Bearer <token>`.
pub struct AuthUser(pub UserId);

impl<S> FromRequestParts<S> for AuthUser
where
    RestState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = RestState::from_ref(state);
        let user = bearer_user(parts, &state).await?.user;
        // As on the socket: a valid token of a user who does not exist is 401, of a banned one
        // 403 `banned`.
        state.moderation.session_allowed(user).await.map_err(|e| match e {
            jiebanke_chat_core::CoreError::NotFound(_) | jiebanke_chat_core::CoreError::Unauthorized(_) => {
                ApiError::unauthorized("unknown user")
            }
            other => ApiError::from(other),
        })?;
        write_limit(parts, &state, user)?;
        Ok(AuthUser(user))
    }
}

/// The caller as the actor of a staff use case: who (from the bearer token, checked as
/// `AuthUser` is) and from which address (for the audit log).
pub struct Acting(pub jiebanke_chat_core::audit::Actor);

impl<S> FromRequestParts<S> for Acting
where
    RestState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let AuthUser(user) = AuthUser::from_request_parts(parts, state).await?;
        let ip = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip().to_string());
        Ok(Acting(jiebanke_chat_core::audit::Actor::new(user, ip)))
    }
}
