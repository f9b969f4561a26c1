//! Chargebacks (SPEC §5.3): read, contest with evidence, or accept the disputes the
//! PSPs report.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use baton_engine::chargebacks::{ChargebackQuery, ChargebackView, EvidenceInput};
use baton_engine::listing::Page;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::orders::tenant;
use crate::auth::Caller;
use crate::dto::{iso_time, ErrorEnvelope};
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::AppState;

/// The OpenAPI document of this area, merged into the whole API's (`docs.rs`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list_chargebacks, get_chargeback, instruction_chargebacks, submit_evidence, accept_chargeback),
    components(schemas(ChargebackDto, ChargebackPageDto, EvidenceRequest, EvidenceDocumentDto))
)]
pub struct ChargebacksApi;

/// A dispute of a settled debit.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChargebackDto {
    pub chargeback_id: String,
    pub order_ref: String,
    pub instruction_ref: String,
    #[serde(serialize_with = "super::orders::decimal")]
    #[schema(value_type = f64)]
    pub amount: Decimal,
    pub currency: String,
    /// `FRAUD`, `QUALITY`, `CLERICAL` or `TECHNICAL`.
    pub reason: String,
    /// The card network's or PSP's own reason code.
    pub provider_reason_code: Option<String>,
    /// `OPEN`, `EVIDENCE_SUBMITTED`, `WON`, `LOST` or `ACCEPTED`.
    pub status: String,
    /// When evidence is due, if the PSP said.
    pub due_by: Option<String>,
    pub created_at: String,
}

impl From<&ChargebackView> for ChargebackDto {
    fn from(c: &ChargebackView) -> Self {
        Self {
            chargeback_id: c.chargeback_id.clone(),
            order_ref: c.order_ref.clone(),
            instruction_ref: c.instruction_ref.clone(),
            amount: c.amount,
            currency: c.currency.clone(),
            reason: c.reason.as_str().into(),
            provider_reason_code: c.provider_reason_code.clone(),
            status: c.status.as_str().into(),
            due_by: c.due_by.map(iso_time),
            created_at: iso_time(c.created_at),
        }
    }
}

/// A page of chargebacks, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChargebackPageDto {
    pub items: Vec<ChargebackDto>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl From<&Page<ChargebackView>> for ChargebackPageDto {
    fn from(p: &Page<ChargebackView>) -> Self {
        Self { items: p.items.iter().map(Into::into).collect(), next_cursor: p.next_cursor.clone() }
    }
}

/// `GET /v1/chargebacks` filters and page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChargebackParams {
    /// `OPEN`, `EVIDENCE_SUBMITTED`, `WON`, `LOST` or `ACCEPTED`.
    pub status: Option<String>,
    /// `FRAUD`, `QUALITY`, `CLERICAL` or `TECHNICAL`.
    pub reason: Option<String>,
    /// Created on or after this date (`YYYY-MM-DD`, UTC).
    pub from: Option<String>,
    /// Created on or before this date (`YYYY-MM-DD`, UTC).
    pub to: Option<String>,
    /// 1 to 200, default 50.
    #[param(value_type = Option<u32>)]
    pub limit: Option<String>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// One evidence file.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceDocumentDto {
    pub file_name: Option<String>,
    pub content_base64: Option<String>,
}

/// `POST /v1/chargebacks/{chargebackId}/evidence`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceRequest {
    pub text: Option<String>,
    pub documents: Option<Vec<EvidenceDocumentDto>>,
}

/// List the tenant's chargebacks.
///
/// Newest first (ties by id), one page at a time (keyset on creation time and id, as
/// the other listings: chargebacks recorded while paging never make a page repeat or
/// skip the ones already there). The filters hold on every page. Pass `nextCursor` as
/// `cursor` for the next page; it is null on the last page.
#[utoipa::path(get, path = "/v1/chargebacks", tag = "Chargebacks", security(("bearer" = [])),
    params(ChargebackParams), responses(
    (status = 200, body = ChargebackPageDto),
    (status = 400, description = "INVALID_CHARGEBACK_STATUS (status), INVALID_CHARGEBACK_REASON (reason), \
        INVALID_DATE (from, to), INVALID_LIMIT (limit), INVALID_CURSOR (cursor); every problem names its `field`",
        body = ErrorEnvelope)))]
pub async fn list_chargebacks(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(params): Query<ChargebackParams>,
) -> ApiResult<Json<ChargebackPageDto>> {
    let query = ChargebackQuery {
        status: params.status,
        reason: params.reason,
        from: params.from,
        to: params.to,
        limit: params.limit,
        cursor: params.cursor,
    };
    let page = state.engine.list_chargebacks(tenant(&caller)?, query).await?;
    Ok(Json((&page).into()))
}

/// One chargeback.
#[utoipa::path(get, path = "/v1/chargebacks/{chargebackId}", tag = "Chargebacks", security(("bearer" = [])),
    params(("chargebackId" = String, Path)), responses(
    (status = 200, body = ChargebackDto),
    (status = 404, description = "CHARGEBACK_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn get_chargeback(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(chargeback_id): Path<String>,
) -> ApiResult<Json<ChargebackDto>> {
    let c = state.engine.get_chargeback(tenant(&caller)?, &chargeback_id).await?;
    Ok(Json(ChargebackDto::from(&c)))
}

/// The instruction's chargebacks, all of them, newest first (a bare array).
#[utoipa::path(get, path = "/v1/order-management/{orderRef}/instruction/{instructionRef}/chargebacks",
    tag = "Chargebacks", security(("bearer" = [])),
    params(("orderRef" = String, Path), ("instructionRef" = String, Path)), responses(
    (status = 200, body = [ChargebackDto]),
    (status = 404, description = "ORDER_NOT_FOUND, INSTRUCTION_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn instruction_chargebacks(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((order_ref, instruction_ref)): Path<(String, String)>,
) -> ApiResult<Json<Vec<ChargebackDto>>> {
    let rows = state.engine.instruction_chargebacks(tenant(&caller)?, &order_ref, &instruction_ref).await?;
    Ok(Json(rows.iter().map(ChargebackDto::from).collect()))
}

/// Contests an `OPEN` chargeback with evidence, sent to the PSP (`EVIDENCE_SUBMITTED`).
#[utoipa::path(post, path = "/v1/chargebacks/{chargebackId}/evidence", tag = "Chargebacks",
    security(("bearer" = [])), request_body = EvidenceRequest, params(("chargebackId" = String, Path)), responses(
    (status = 202, body = ChargebackDto),
    (status = 400, description = "EVIDENCE_REQUIRED, EVIDENCE_FILE_NAME_REQUIRED, INVALID_EVIDENCE_DOCUMENT, \
        EVIDENCE_TOO_LARGE, CHARGEBACK_NOT_OPEN", body = ErrorEnvelope),
    (status = 402, description = "EVIDENCE_NOT_ACCEPTED: the PSP cannot take evidence", body = ErrorEnvelope),
    (status = 404, description = "CHARGEBACK_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn submit_evidence(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(chargeback_id): Path<String>,
    ApiJson(body): ApiJson<EvidenceRequest>,
) -> ApiResult<Response> {
    let input = EvidenceInput {
        text: body.text,
        documents: body.documents.unwrap_or_default().into_iter().map(|d| (d.file_name, d.content_base64)).collect(),
    };
    let c = state.engine.submit_chargeback_evidence(tenant(&caller)?, &chargeback_id, input).await?;
    Ok((StatusCode::ACCEPTED, Json(ChargebackDto::from(&c))).into_response())
}

/// Accepts an `OPEN` chargeback (`ACCEPTED`).
#[utoipa::path(post, path = "/v1/chargebacks/{chargebackId}/accept", tag = "Chargebacks",
    security(("bearer" = [])), params(("chargebackId" = String, Path)), responses(
    (status = 200, body = ChargebackDto),
    (status = 400, description = "CHARGEBACK_NOT_OPEN", body = ErrorEnvelope),
    (status = 404, description = "CHARGEBACK_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn accept_chargeback(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(chargeback_id): Path<String>,
) -> ApiResult<Json<ChargebackDto>> {
    let c = state.engine.accept_chargeback(tenant(&caller)?, &chargeback_id).await?;
    Ok(Json(ChargebackDto::from(&c)))
}
