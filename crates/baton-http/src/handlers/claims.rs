//! Reward claims (SPEC §4.10): claiming a reward for a payout instruction, and polling it.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::normalise_id;
use super::orders::tenant;
use crate::auth::Caller;
use crate::dto::ErrorEnvelope;
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::AppState;

/// The OpenAPI document of this area, merged into the whole API's (`docs.rs`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(claim_reward, claim_status), components(schemas(ClaimRewardRequest, ClaimStatusDto)))]
pub struct ClaimsApi;

/// `POST …/claim-reward` body.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimRewardRequest {
    /// A reward the instruction's payout scheme offers for its amount (`Exact` match).
    pub reward_id: String,
}

/// A claim as polled.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimStatusDto {
    /// `SETTLING`, `SETTLED` or `FAILED`.
    pub status: String,
    /// `null` until `SETTLED`, then `{credentialList: [{label, value, rewardType, credentialType}],
    /// redemptionInstructions}`.
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
}

/// The `rewardId` of a body (property names in any case).
fn reward_id(body: &Value) -> Option<String> {
    body.as_object()?
        .iter()
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("rewardId"))
        .and_then(|(_, v)| v.as_str())
        .map(str::to_string)
}

/// Claims a reward for a payout instruction: creates a `REWARD` financial instrument
/// for the customer and moves the instruction to `PROCESSING`; poll the `Location`.
#[utoipa::path(post, path = "/v1/order-management/{orderRef}/instruction/{instructionRef}/claim-reward",
    tag = "order management", security(("bearer" = [])),
    params(("orderRef" = String, Path), ("instructionRef" = String, Path)),
    request_body = ClaimRewardRequest, responses(
    (status = 202, description = "Accepted; `Location` names the claim's transaction."),
    (status = 400, description = "FIELD_REQUIRED, NOT_A_PAYOUT_INSTRUCTION, REWARD_NOT_AVAILABLE, \
        INSTRUCTION_NOT_UPDATABLE, NO_PUBLISHED_DRAFT", body = ErrorEnvelope),
    (status = 402, description = "INSUFFICIENT_PROVIDER_FUNDS", body = ErrorEnvelope),
    (status = 404, description = "ORDER_NOT_FOUND, INSTRUCTION_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn claim_reward(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((order_ref, instruction_ref)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    let reward = reward_id(&body);
    let claim = state.engine.claim_reward(tenant(&caller)?, &order_ref, &instruction_ref, reward.as_deref()).await?;
    let mut response = StatusCode::ACCEPTED.into_response();
    if let Ok(v) = HeaderValue::from_str(&claim.location()) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// A reward claim's status, with the reward's credentials once `SETTLED`.
#[utoipa::path(get,
    path = "/v1/customer-vault/{customerRef}/reward/{financialInstrumentId}/transaction/{transactionId}",
    tag = "customer vault", security(("bearer" = [])),
    params(("customerRef" = String, Path), ("financialInstrumentId" = String, Path), ("transactionId" = String, Path)),
    responses(
    (status = 200, body = ClaimStatusDto),
    (status = 404, description = "TRANSACTION_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn claim_status(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((customer_ref, instrument_id, transaction_id)): Path<(String, String, String)>,
) -> ApiResult<Json<ClaimStatusDto>> {
    let status = state
        .engine
        .claim_status(tenant(&caller)?, &customer_ref, &normalise_id(&instrument_id), &normalise_id(&transaction_id))
        .await?;
    Ok(Json(ClaimStatusDto { status: status.status.to_string(), data: status.data }))
}
