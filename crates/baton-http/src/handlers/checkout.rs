//! White-label checkout grants (SPEC §4.11): minting a checkout token for the hosted page.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use baton_domain::Role;
use baton_engine::checkout::{parse_expiry_seconds, Callbacks, GrantRequest};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::orders::tenant;
use crate::auth::Caller;
use crate::dto::ErrorEnvelope;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::AppState;

/// Roles of the grant route, for the route table.
pub const CHECKOUT_WRITE: &[Role] = &[Role::TenantTransactionWrite];

/// The OpenAPI document of this area, merged into the whole API's (`docs.rs`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(create_grant), components(schemas(GrantBody, CallbacksBody, GrantDto)))]
pub struct CheckoutApi;

/// Where the hosted page sends the customer afterwards: absolute `https` URLs.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallbacksBody {
    pub success: Option<String>,
    /// Receives `?payload=<base64 JSON {bearerToken, providerName, messageType, messageDescription}>`.
    pub failed: Option<String>,
    pub cancelled: Option<String>,
}

/// `POST /v1/whitelabel-customer/grants`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantBody {
    pub order_ref: Option<String>,
    pub instruction_ref: Option<String>,
    /// Lifetime of the token in seconds, a number or a numeric string, 60 to 2592000
    /// (default 3600).
    #[schema(value_type = Option<i64>)]
    pub expiry_seconds: Option<Value>,
    pub callbacks: Option<CallbacksBody>,
}

/// A checkout token, to open the hosted page with (`/checkout?bearerToken=…`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantDto {
    /// The checkout token: opaque, single use.
    pub access_token: String,
    /// Expiry in Unix milliseconds, as a string (as for access tokens).
    pub expires: String,
}

/// Mints a single-use checkout token for a DEBIT instruction that can still be paid
/// (`INCOMPLETE`, `READY` or `LATE`). Open the hosted page with it:
/// `/checkout?bearerToken={accessToken}&language=en-GB|de-DE`.
#[utoipa::path(post, path = "/v1/whitelabel-customer/grants", tag = "checkout", security(("bearer" = [])),
    request_body = GrantBody, responses(
    (status = 201, description = "Token minted", body = GrantDto),
    (status = 400, description = "FIELD_REQUIRED, INVALID_EXPIRY_SECONDS, INVALID_CALLBACK_URL, \
        INSTRUCTION_NOT_UPDATABLE, NOT_A_DEBIT_INSTRUCTION, SCHEME_REQUIRED", body = ErrorEnvelope),
    (status = 404, description = "ORDER_NOT_FOUND, INSTRUCTION_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn create_grant(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<GrantBody>,
) -> ApiResult<Response> {
    let expires_in_seconds = parse_expiry_seconds(body.expiry_seconds.as_ref()).map_err(ApiError::from)?;
    let callbacks = body.callbacks.map(|c| Callbacks { success: c.success, failed: c.failed, cancelled: c.cancelled });
    let request = GrantRequest {
        order_ref: body.order_ref.unwrap_or_default(),
        instruction_ref: body.instruction_ref.unwrap_or_default(),
        expires_in_seconds,
        callbacks,
        pay_by_link_id: None,
    };
    let grant = state.engine.grant_checkout(tenant(&caller)?, request).await?;
    let expires_ms = grant.expires.unix_timestamp() * 1000;
    let body = GrantDto { access_token: grant.access_token, expires: expires_ms.to_string() };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}
