//! Baton's HTTP API: the route table, authentication, the error envelope and the
//! other conventions of SPEC §1, metrics and the API documentation.
//!
//! Handlers are thin: they extract input, call one engine use case and map the
//! result. No business rule lives here.

pub mod auth;
pub mod checkout;
pub mod client_ip;
pub mod correlation;
pub mod docs;
pub mod dto;
pub mod error;
mod handlers;
pub mod idempotency;
pub mod json;
pub mod metrics;
pub mod pages;
pub mod routes;
pub mod uri_controls;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn_with_state, map_response};
use axum::response::{IntoResponse, Response};
use axum::Router;
use baton_domain::Problem;
use baton_engine::Engine;
use ipnet::IpNet;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

pub use auth::{Access, RateLimits};
pub use routes::RouteSpec;

use crate::error::ApiError;

/// HTTP settings from the deployment's configuration.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Requests per second per API key; 0 turns limiting off.
    pub rate_limit_per_second: u32,
    pub rate_limit_burst: u32,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self { body_limit: 1024 * 1024, rate_limit_per_second: 100, rate_limit_burst: 100, trusted_proxies: Vec::new() }
    }
}

/// What every handler and middleware can reach.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub settings: Arc<HttpSettings>,
    pub metrics: Arc<metrics::Metrics>,
    pub rate_limits: Option<Arc<RateLimits>>,
    pub docs: Arc<docs::Documents>,
    /// Submission limits of the hosted checkout pages.
    pub checkout_limits: Arc<checkout::CheckoutLimits>,
    correlation_ids: Arc<correlation::CorrelationIds>,
}

impl AppState {
    pub fn new(engine: Arc<Engine>, settings: HttpSettings) -> Self {
        Self {
            rate_limits: RateLimits::new(settings.rate_limit_per_second, settings.rate_limit_burst),
            engine,
            settings: Arc::new(settings),
            metrics: Arc::default(),
            docs: Arc::new(docs::Documents::build()),
            checkout_limits: Arc::default(),
            correlation_ids: Arc::default(),
        }
    }
}

async fn route_not_found() -> ApiError {
    ApiError::problem(Problem::not_found("ROUTE_NOT_FOUND").message("No endpoint matches this path."))
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("non-string panic payload");
    ApiError::Internal(anyhow::anyhow!("handler panicked: {message}")).into_response()
}

/// Headers every response carries.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert("x-content-type-options", axum::http::HeaderValue::from_static("nosniff"));
    headers.entry("cache-control").or_insert(axum::http::HeaderValue::from_static("no-store"));
    response
}

/// The production router: every route of the table behind its access guard, the
/// conventions' middleware around them all.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for (spec, handler) in routes::table() {
        let mut handler = handler;
        if spec.access.needs_token() && spec.method == axum::http::Method::POST {
            handler = handler.route_layer(from_fn_with_state(state.clone(), idempotency::idempotent));
        }
        handler = handler.route_layer(from_fn_with_state((state.clone(), spec.access), auth::guard));
        router = router.route(spec.path, handler);
    }
    // Routing happens inside, after control characters in the URI are neutralised.
    let routed = with_conventions(router, state);
    Router::new().fallback_service(ServiceBuilder::new().map_request(uri_controls::neutralise_request).service(routed))
}

/// Wraps routes in the conventions every response follows: correlation ids, the
/// error envelope, panic capture, client address, metrics and the body limit.
pub fn with_conventions(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .fallback(route_not_found)
        .layer(
            ServiceBuilder::new()
                .layer(map_response(security_headers))
                .layer(from_fn_with_state(state.clone(), correlation::correlate))
                .layer(CatchPanicLayer::custom(panic_response))
                .layer(from_fn_with_state(state.clone(), client_ip::resolve_client_ip))
                .layer(from_fn_with_state(state.clone(), metrics::track))
                .layer(DefaultBodyLimit::max(state.settings.body_limit)),
        )
        .with_state(state)
}
