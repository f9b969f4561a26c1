//! Refunds of settled debits (SPEC §5.2).

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use baton_engine::refunds::{RefundInput, RefundView};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::orders::tenant;
use crate::auth::Caller;
use crate::dto::{iso_time, ErrorEnvelope};
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::AppState;

/// The OpenAPI document of this area, merged into the whole API's (`docs.rs`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(create_refund, list_refunds, get_refund), components(schemas(RefundRequest, RefundDto)))]
pub struct RefundsApi;

/// `POST …/refunds`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundRequest {
    /// Unique per instruction.
    pub refund_ref: Option<String>,
    /// Default: what remains refundable. No more fraction digits than the currency has.
    #[schema(value_type = Option<f64>)]
    pub amount: Option<Value>,
    /// `ORDER_NOT_FULFILLED`, `CUSTOMER_CHANGED_MIND`, `INCORRECT_BILLING`, `DUPLICATE` or `OTHER`.
    pub reason: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// A refund.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundDto {
    pub refund_ref: String,
    #[serde(serialize_with = "super::orders::decimal")]
    #[schema(value_type = f64)]
    pub amount: Decimal,
    pub currency: String,
    pub reason: String,
    /// `PENDING`, `PROCESSING`, `SETTLED` or `FAILED`.
    pub status: String,
    pub provider_reference: Option<String>,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The PSP's own code for the failure, when it gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psp_code: Option<String>,
    /// The PSP's words on the failure, when it gave some.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psp_message: Option<String>,
    pub created_at: String,
    #[schema(value_type = Object)]
    pub metadata: Value,
}

impl From<&RefundView> for RefundDto {
    fn from(r: &RefundView) -> Self {
        Self {
            refund_ref: r.refund_ref.clone(),
            amount: r.amount,
            currency: r.currency.clone(),
            reason: r.reason.as_str().into(),
            status: r.status.as_str().into(),
            provider_reference: r.provider_reference.clone(),
            error_code: r.error_code.clone(),
            psp_code: r.psp_code.clone(),
            psp_message: r.psp_message.clone(),
            created_at: iso_time(r.created_at),
            metadata: r.metadata.clone(),
        }
    }
}

/// Refunds a `SETTLED` `DEBIT` instruction, partially or in full, through the app that
/// collected it.
#[utoipa::path(post, path = "/v1/order-management/{orderRef}/instruction/{instructionRef}/refunds",
    tag = "Refunds", security(("bearer" = [])), request_body = RefundRequest,
    params(("orderRef" = String, Path), ("instructionRef" = String, Path)), responses(
    (status = 202, description = "Recorded and sent to the PSP; `Location` names the refund. `PENDING` while \
        the PSP's answer is lost or indeterminate (the refund is then looked up later), `PROCESSING` while the PSP \
        makes it", body = RefundDto),
    (status = 400, description = "NOT_REFUNDABLE, REFUND_EXCEEDS_REMAINING, REFUND_REF_REQUIRED, INVALID_REFUND_REF, \
        REFUND_REASON_REQUIRED, INVALID_REFUND_REASON, INVALID_AMOUNT, INVALID_AMOUNT_PRECISION, INVALID_METADATA",
        body = ErrorEnvelope),
    (status = 402, description = "PROVIDER_DECLINED (the refund is recorded FAILED)", body = ErrorEnvelope),
    (status = 404, description = "ORDER_NOT_FOUND, INSTRUCTION_NOT_FOUND", body = ErrorEnvelope),
    (status = 409, description = "REFUND_REF_ALREADY_EXISTS", body = ErrorEnvelope)))]
pub async fn create_refund(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((order_ref, instruction_ref)): Path<(String, String)>,
    ApiJson(body): ApiJson<RefundRequest>,
) -> ApiResult<Response> {
    let input =
        RefundInput { refund_ref: body.refund_ref, amount: body.amount, reason: body.reason, metadata: body.metadata };
    let refund = state.engine.create_refund(tenant(&caller)?, &order_ref, &instruction_ref, input).await?;
    // Refs are URL-safe by their format (SPEC §3).
    let location =
        format!("/v1/order-management/{order_ref}/instruction/{instruction_ref}/refunds/{}", refund.refund_ref);
    let mut response = (StatusCode::ACCEPTED, Json(RefundDto::from(&refund))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// The instruction's refunds, oldest first.
#[utoipa::path(get, path = "/v1/order-management/{orderRef}/instruction/{instructionRef}/refunds",
    tag = "Refunds", security(("bearer" = [])),
    params(("orderRef" = String, Path), ("instructionRef" = String, Path)), responses(
    (status = 200, body = [RefundDto]),
    (status = 404, description = "ORDER_NOT_FOUND, INSTRUCTION_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn list_refunds(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((order_ref, instruction_ref)): Path<(String, String)>,
) -> ApiResult<Json<Vec<RefundDto>>> {
    let rows = state.engine.list_refunds(tenant(&caller)?, &order_ref, &instruction_ref).await?;
    Ok(Json(rows.iter().map(RefundDto::from).collect()))
}

/// One refund.
#[utoipa::path(get, path = "/v1/order-management/{orderRef}/instruction/{instructionRef}/refunds/{refundRef}",
    tag = "Refunds", security(("bearer" = [])),
    params(("orderRef" = String, Path), ("instructionRef" = String, Path), ("refundRef" = String, Path)), responses(
    (status = 200, body = RefundDto),
    (status = 404, description = "ORDER_NOT_FOUND, INSTRUCTION_NOT_FOUND, REFUND_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn get_refund(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((order_ref, instruction_ref, refund_ref)): Path<(String, String, String)>,
) -> ApiResult<Json<RefundDto>> {
    let refund = state.engine.get_refund(tenant(&caller)?, &order_ref, &instruction_ref, &refund_ref).await?;
    Ok(Json(RefundDto::from(&refund)))
}
