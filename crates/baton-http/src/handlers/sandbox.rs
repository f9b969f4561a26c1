//! Sandbox simulators (only when the deployment's environment is `sandbox`; otherwise
//! these paths answer 404): make the sandbox PSPs do now what they would do later.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

use super::chargebacks::ChargebackDto;
use super::orders::{tenant, InstructionDto};
use crate::auth::Caller;
use crate::dto::ErrorEnvelope;
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::AppState;

/// The OpenAPI document of this area, merged into the whole API's (`docs.rs`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(simulate_chargeback, settle_bank_collection, fail_bank_collection, advance_reward_claim),
    components(schemas(SimulatedChargebackRequest, BankCollectionRequest))
)]
pub struct SandboxApi;

/// `POST /v1/sandbox/chargebacks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SimulatedChargebackRequest {
    pub order_ref: Option<String>,
    pub instruction_ref: Option<String>,
    /// `FRAUD`, `QUALITY`, `CLERICAL` or `TECHNICAL`.
    pub reason: Option<String>,
}

/// `POST /v1/sandbox/bank-collections/{settle|fail}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BankCollectionRequest {
    pub order_ref: Option<String>,
    pub instruction_ref: Option<String>,
}

/// Forces a chargeback on a `SETTLED` debit, as its PSP would notify it.
#[utoipa::path(post, path = "/v1/sandbox/chargebacks", tag = "Sandbox", security(("bearer" = [])),
    request_body = SimulatedChargebackRequest, responses(
    (status = 201, description = "`Location` names the chargeback", body = ChargebackDto),
    (status = 400, description = "ORDER_REF_REQUIRED, INSTRUCTION_REF_REQUIRED, CHARGEBACK_REASON_REQUIRED, \
        INVALID_CHARGEBACK_REASON, INSTRUCTION_NOT_SETTLED", body = ErrorEnvelope),
    (status = 404, description = "ROUTE_NOT_FOUND outside sandbox deployments, ORDER_NOT_FOUND, \
        INSTRUCTION_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn simulate_chargeback(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<SimulatedChargebackRequest>,
) -> ApiResult<Response> {
    let c = state
        .engine
        .simulate_chargeback(
            tenant(&caller)?,
            body.order_ref.as_deref(),
            body.instruction_ref.as_deref(),
            body.reason.as_deref(),
        )
        .await?;
    let location = format!("/v1/chargebacks/{}", c.chargeback_id);
    let mut response = (StatusCode::CREATED, Json(ChargebackDto::from(&c))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

async fn bank_collection(
    state: AppState,
    caller: &Caller,
    body: BankCollectionRequest,
    settle: bool,
) -> ApiResult<Json<InstructionDto>> {
    let view = state
        .engine
        .simulate_bank_collection(
            tenant(&caller.0)?,
            body.order_ref.as_deref(),
            body.instruction_ref.as_deref(),
            settle,
        )
        .await?;
    Ok(Json(InstructionDto::from(&view)))
}

/// Settles a `PROCESSING` `SANDBOX_BANK` collection now.
#[utoipa::path(post, path = "/v1/sandbox/bank-collections/settle", tag = "Sandbox", security(("bearer" = [])),
    request_body = BankCollectionRequest, responses(
    (status = 200, description = "The instruction, SETTLED", body = InstructionDto),
    (status = 400, description = "ORDER_REF_REQUIRED, INSTRUCTION_REF_REQUIRED, NO_PENDING_BANK_COLLECTION",
        body = ErrorEnvelope),
    (status = 404, description = "ROUTE_NOT_FOUND outside sandbox deployments, ORDER_NOT_FOUND, \
        INSTRUCTION_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn settle_bank_collection(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<BankCollectionRequest>,
) -> ApiResult<Json<InstructionDto>> {
    bank_collection(state, &caller, body, true).await
}

/// Fails a `PROCESSING` `SANDBOX_BANK` collection now (`PAYMENT_DECLINED`).
#[utoipa::path(post, path = "/v1/sandbox/bank-collections/fail", tag = "Sandbox", security(("bearer" = [])),
    request_body = BankCollectionRequest, responses(
    (status = 200, description = "The instruction, FAILED", body = InstructionDto),
    (status = 400, description = "ORDER_REF_REQUIRED, INSTRUCTION_REF_REQUIRED, NO_PENDING_BANK_COLLECTION",
        body = ErrorEnvelope),
    (status = 404, description = "ROUTE_NOT_FOUND outside sandbox deployments, ORDER_NOT_FOUND, \
        INSTRUCTION_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn fail_bank_collection(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<BankCollectionRequest>,
) -> ApiResult<Json<InstructionDto>> {
    bank_collection(state, &caller, body, false).await
}

/// Makes the sandbox reward provider issue a pending claim now (instead of after about a
/// second): the claim and its instruction end `SETTLED` (or `FAILED`).
#[utoipa::path(post, path = "/v1/sandbox/reward-claims/advance", tag = "Sandbox", security(("bearer" = [])),
    request_body = BankCollectionRequest, responses(
    (status = 200, description = "The instruction, SETTLED or FAILED", body = InstructionDto),
    (status = 400, description = "ORDER_REF_REQUIRED, INSTRUCTION_REF_REQUIRED, NO_PENDING_REWARD_CLAIM",
        body = ErrorEnvelope),
    (status = 404, description = "ROUTE_NOT_FOUND outside sandbox deployments, ORDER_NOT_FOUND, \
        INSTRUCTION_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn advance_reward_claim(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<BankCollectionRequest>,
) -> ApiResult<Json<InstructionDto>> {
    let view = state
        .engine
        .simulate_reward_claim(tenant(&caller)?, body.order_ref.as_deref(), body.instruction_ref.as_deref())
        .await?;
    Ok(Json(InstructionDto::from(&view)))
}
