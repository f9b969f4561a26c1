//! Executing instructions and reading their transactions (extensions of SPEC §4.9).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use baton_domain::{Amount, Currency, InstructionStatus};
use baton_engine::execution::{ExecuteRequest, TransactionView};
use baton_engine::orders::InstructionView;
use baton_engine::EngineError;
use serde::Serialize;
use utoipa::ToSchema;

use super::orders::{decimal, tenant, InstructionDto};
use crate::auth::Caller;
use crate::dto::{iso_time, ErrorEnvelope};
use crate::error::{ApiError, ApiResult};
use crate::idempotency::TakenOver;
use crate::AppState;

/// The OpenAPI document of this area, merged into the whole API's (`docs.rs`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(execute_instruction, list_transactions), components(schemas(TransactionDto)))]
pub struct ExecutionApi;

/// One attempt at a PSP.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransactionDto {
    pub transaction_id: String,
    pub app_id: String,
    pub payment_method: Option<String>,
    /// `DEBIT`, `CREDIT`, `REFUND` or `REWARD_CLAIM`.
    pub operation: String,
    /// `MIT` or `CIT`.
    pub transaction_type: String,
    /// 1 for the first app tried, 2 for the failover after it, …
    pub attempt: i64,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "decimal")]
    pub amount: rust_decimal::Decimal,
    pub currency: String,
    /// `PENDING`, `PROCESSING`, `SETTLED` or `FAILED`.
    pub status: String,
    pub provider_reference: Option<String>,
    /// `HARD_DECLINE`, `SOFT_DECLINE`, `INSUFFICIENT_FUNDS`, `FRAUD_SUSPECTED`,
    /// `AUTHENTICATION_REQUIRED` or `TECHNICAL`.
    pub decline_category: Option<String>,
    pub error_code: Option<String>,
    pub psp_code: Option<String>,
    pub psp_message: Option<String>,
    /// Milliseconds spent waiting for the PSP.
    pub connector_ms: Option<i64>,
    pub created_at: String,
    pub finished_at: Option<String>,
}

impl From<&TransactionView> for TransactionDto {
    fn from(t: &TransactionView) -> Self {
        let currency: Currency = t.currency.parse().unwrap_or(Currency::EUR);
        Self {
            transaction_id: t.transaction_id.clone(),
            app_id: t.app_id.clone(),
            payment_method: t.payment_method.clone(),
            operation: t.operation.as_str().into(),
            transaction_type: t.transaction_type.as_str().into(),
            attempt: t.attempt,
            amount: Amount { minor: t.amount_minor, currency }.to_decimal(),
            currency: t.currency.clone(),
            status: t.status.as_str().into(),
            provider_reference: t.provider_reference.clone(),
            decline_category: t.decline_category.map(|c| c.as_str().into()),
            error_code: t.error_code.clone(),
            psp_code: t.psp_code.clone(),
            psp_message: t.psp_message.clone(),
            connector_ms: t.connector_ms,
            created_at: iso_time(t.created_at),
            finished_at: t.finished_at.map(iso_time),
        }
    }
}

/// Executes a `READY` or `LATE` instruction now as a merchant-initiated transaction.
#[utoipa::path(post, path = "/v1/order-management/{orderRef}/instruction/{instructionRef}/execute",
    tag = "Orders", security(("bearer" = [])),
    params(("orderRef" = String, Path), ("instructionRef" = String, Path)), responses(
    (status = 200, description = "Settled", body = InstructionDto),
    (status = 202, description = "Accepted by the PSP; the outcome follows (PROCESSING)", body = InstructionDto),
    (status = 400, description = "INSTRUCTION_NOT_EXECUTABLE, FINANCIAL_INSTRUMENT_REQUIRED, \
        FINANCIAL_INSTRUMENT_NOT_ACTIVE, SCHEME_REQUIRED, NO_PUBLISHED_DRAFT, NO_MATCHING_RULE, \
        NO_APP_FOR_PAYMENT_METHOD", body = ErrorEnvelope),
    (status = 402, description = "The payment failed (instruction FAILED): PAYMENT_DECLINED, INSUFFICIENT_FUNDS, \
        AUTHENTICATION_REQUIRED, PSP_UNAVAILABLE, MANDATE_CANCELLED, …", body = ErrorEnvelope),
    (status = 404, description = "ORDER_NOT_FOUND, INSTRUCTION_NOT_FOUND", body = ErrorEnvelope),
    (status = 409, description = "CONCURRENT_MODIFICATION", body = ErrorEnvelope)))]
pub async fn execute_instruction(
    State(state): State<AppState>,
    Caller(caller): Caller,
    taken_over: Option<Extension<TakenOver>>,
    Path((order_ref, instruction_ref)): Path<(String, String)>,
) -> ApiResult<Response> {
    let tenant_id = tenant(&caller)?;
    // An earlier try of this request, cut off by its node's death, may have started it.
    if let Some(Extension(t)) = taken_over {
        let started = state.engine.execution_started_since(tenant_id, &order_ref, &instruction_ref, t.earlier_try_at);
        if let Some(instruction) = started.await? {
            return Ok(executed(&instruction));
        }
    }
    let execution =
        state.engine.execute_instruction(tenant_id, &order_ref, &instruction_ref, ExecuteRequest::default()).await?;
    if let Some(decline) = execution.decline {
        return Err(ApiError::from(EngineError::from(decline.problem())));
    }
    Ok(executed(&execution.instruction))
}

/// `200` with a settled instruction, `202` while its outcome is still to come.
fn executed(instruction: &InstructionView) -> Response {
    let status = match instruction.status {
        InstructionStatus::Settled => StatusCode::OK,
        _ => StatusCode::ACCEPTED,
    };
    (status, Json(InstructionDto::from(instruction))).into_response()
}

/// Every attempt made for the instruction, oldest first.
#[utoipa::path(get, path = "/v1/order-management/{orderRef}/instruction/{instructionRef}/transactions",
    tag = "Orders", security(("bearer" = [])),
    params(("orderRef" = String, Path), ("instructionRef" = String, Path)), responses(
    (status = 200, body = [TransactionDto]),
    (status = 404, description = "ORDER_NOT_FOUND, INSTRUCTION_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn list_transactions(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((order_ref, instruction_ref)): Path<(String, String)>,
) -> ApiResult<Json<Vec<TransactionDto>>> {
    let rows = state.engine.instruction_transactions(tenant(&caller)?, &order_ref, &instruction_ref).await?;
    Ok(Json(rows.iter().map(TransactionDto::from).collect()))
}
