//! Token endpoints (SPEC §2).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use baton_domain::hmac_signature::HmacAuthorization;
use baton_engine::ContextHeaders;

use crate::auth::{rate_limit, ACCOUNT_HEADER, TENANT_HEADER};
use crate::dto::TokenResponse;
use crate::error::ApiError;
use crate::AppState;

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// Exchange an HMAC-signed request for a bearer token.
///
/// Sign the exact request body (usually empty) as SPEC §2 describes and send it in
/// `Authorization: Hmac publicKey:nonce:epoch:signature`. The optional
/// `x-account-id` / `x-tenant-id` headers must name the key's owner.
#[utoipa::path(
    post,
    path = "/identity/v1/hmac/management",
    tag = "identity",
    responses(
        (status = 200, description = "Token issued", body = TokenResponse),
        (status = 401, description = "HMAC_MALFORMED, HMAC_TIMESTAMP_OUT_OF_RANGE, HMAC_NONCE_REUSED, API_KEY_NOT_FOUND, HMAC_SIGNATURE_INVALID", body = crate::dto::ErrorEnvelope),
        (status = 403, description = "ACCOUNT_ID_MISMATCH, TENANT_ID_MISMATCH, TENANT_NOT_ACTIVE", body = crate::dto::ErrorEnvelope),
    )
)]
pub async fn issue_token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let authorization = header_str(&headers, header::AUTHORIZATION.as_str()).unwrap_or("");
    // Limit attempts per claimed key before any database work.
    if let Ok(auth) = HmacAuthorization::parse(authorization) {
        if let Some(limited) = rate_limit(&state, auth.public_key) {
            return limited;
        }
    }
    let ctx = ContextHeaders {
        account_id: header_str(&headers, ACCOUNT_HEADER),
        tenant_id: header_str(&headers, TENANT_HEADER),
    };
    match state.engine.issue_token(authorization, &body, ctx).await {
        Ok(t) => Json(TokenResponse { access_token: t.access_token, expires: t.expires }).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
