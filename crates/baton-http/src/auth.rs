//! Authentication and authorisation for every route.
//!
//! Each route declares its [`Access`] in the route table (`routes.rs`); [`guard`]
//! enforces it before the handler runs, and handlers read the verified caller with
//! the [`Caller`] extractor.

use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use baton_domain::{KeyKind, Problem, ProblemKind, Role};
use baton_engine::Principal;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::error::ApiError;
use crate::AppState;

pub const ACCOUNT_HEADER: &str = "x-account-id";
pub const TENANT_HEADER: &str = "x-tenant-id";

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, metrics, documentation).
    Public,
    /// An HMAC-signed request (the token endpoints); verified by the handler.
    Hmac,
    /// An account token holding any of the roles.
    Account(&'static [Role]),
    /// A tenant token holding any of the roles.
    Tenant(&'static [Role]),
    /// Either an account token with any of `account` or a tenant token with any of `tenant`.
    AccountOrTenant { account: &'static [Role], tenant: &'static [Role] },
}

impl Access {
    pub fn needs_token(self) -> bool {
        !matches!(self, Access::Public | Access::Hmac)
    }

    /// Every role that passes, for documentation.
    pub fn roles(self) -> Vec<Role> {
        match self {
            Access::Public | Access::Hmac => vec![],
            Access::Account(r) | Access::Tenant(r) => r.to_vec(),
            Access::AccountOrTenant { account, tenant } => account.iter().chain(tenant).copied().collect(),
        }
    }
}

/// The verified caller of the current request.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Caller)
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("route reads its caller but declares no token access")))
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

fn bearer(headers: &HeaderMap) -> Result<&str, Problem> {
    let missing =
        || Problem::unauthorized("TOKEN_MISSING").message("An 'Authorization: Bearer <token>' header is required.");
    let value = header_str(headers, header::AUTHORIZATION.as_str()).ok_or_else(missing)?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(missing());
    }
    Ok(token.trim())
}

/// Checks the caller's context and roles against the route's access.
pub fn authorize(access: Access, principal: &Principal, headers: &HeaderMap) -> Result<(), Problem> {
    if let Some(account) = header_str(headers, ACCOUNT_HEADER) {
        if !account.eq_ignore_ascii_case(&principal.account_id) {
            return Err(
                Problem::forbidden("ACCOUNT_ID_MISMATCH").message("x-account-id does not match the access token.")
            );
        }
    }
    let tenant_header = header_str(headers, TENANT_HEADER);
    if let (Some(t), Some(own)) = (tenant_header, principal.tenant_id.as_deref()) {
        if !t.eq_ignore_ascii_case(own) {
            return Err(
                Problem::forbidden("TENANT_ID_MISMATCH").message("x-tenant-id does not match the access token.")
            );
        }
    }
    let required = match (access, principal.kind()) {
        (Access::Account(roles), KeyKind::Account) => roles,
        (Access::Account(_), KeyKind::Tenant) => {
            return Err(
                Problem::forbidden("ACCOUNT_KEY_REQUIRED").message("This endpoint needs an account access token.")
            )
        }
        (Access::Tenant(roles), KeyKind::Tenant) => roles,
        (Access::Tenant(_), KeyKind::Account) if tenant_header.is_none() => {
            return Err(Problem::bad_request("TENANT_ID_IS_REQUIRED"))
        }
        (Access::Tenant(_), KeyKind::Account) => {
            return Err(Problem::forbidden("TENANT_KEY_REQUIRED").message("This endpoint needs a tenant access token."))
        }
        (Access::AccountOrTenant { account, .. }, KeyKind::Account) => account,
        (Access::AccountOrTenant { tenant, .. }, KeyKind::Tenant) => tenant,
        (Access::Public | Access::Hmac, _) => return Ok(()),
    };
    if principal.roles.satisfies_any(required) {
        Ok(())
    } else {
        let names: Vec<&str> = required.iter().map(|r| r.as_str()).collect();
        Err(Problem::forbidden("ROLE_REQUIRED")
            .message("This endpoint needs one of the roles: {roles}.")
            .detail("roles", names.join(", ")))
    }
}

/// Per-API-key request rate limits, kept in each node's memory.
pub struct RateLimits {
    limiter: DefaultKeyedRateLimiter<String>,
}

impl RateLimits {
    /// `None` when `per_second` is 0 (limiting off).
    pub fn new(per_second: u32, burst: u32) -> Option<Arc<Self>> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(burst.max(1)).expect("at least one");
        Some(Arc::new(Self { limiter: DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)) }))
    }

    /// Admits one request for `key`, or refuses it with the seconds to wait.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        match self.limiter.check_key(&key.to_string()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(wait.as_secs() + 1)
            }
        }
    }

    /// Forgets keys that have been idle (called periodically).
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// The response to a rate-limited request.
pub fn too_many_requests(retry_after_secs: u64) -> Response {
    let mut response = ApiError::problem(
        Problem::new(ProblemKind::TooManyRequests, "RATE_LIMITED")
            .message("Too many requests for this API key; retry after {retryAfter} seconds.")
            .detail("retryAfter", retry_after_secs.to_string()),
    )
    .into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    response
}

/// Applies a rate limit keyed by `key`, if limiting is on: `Some(response)` refuses.
pub fn rate_limit(state: &AppState, key: &str) -> Option<Response> {
    state.rate_limits.as_ref()?.check(key).err().map(too_many_requests)
}

/// Enforces a route's [`Access`]: authenticates the bearer token, checks context
/// headers and roles, applies the caller's rate limit, and hands the caller on.
pub async fn guard(State((state, access)): State<(AppState, Access)>, mut request: Request, next: Next) -> Response {
    if !access.needs_token() {
        return next.run(request).await;
    }
    let principal = match bearer(request.headers()) {
        Ok(token) => match state.engine.authenticate(token).await {
            Ok(p) => p,
            Err(e) => return ApiError::from(e).into_response(),
        },
        Err(p) => return ApiError::problem(p).into_response(),
    };
    if let Err(p) = authorize(access, &principal, request.headers()) {
        return ApiError::problem(p).into_response();
    }
    if let Some(limited) = rate_limit(&state, &principal.key_id) {
        return limited;
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}
