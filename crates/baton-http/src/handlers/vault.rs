//! The customer vault (SPEC §5.4): a customer's financial instruments, their states,
//! and the erasure of a customer (right to be forgotten).
//!
//! Responses carry display data only; sensitive details never leave the engine.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use baton_domain::Role;
use baton_engine::instruments::{InstrumentView, NewInstrument};
use baton_engine::Principal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{created, normalise_id};
use crate::auth::Caller;
use crate::dto::{iso_time, ErrorEnvelope};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::AppState;

/// Roles of the vault routes, for the route table.
pub const VAULT_READ: &[Role] = &[Role::TenantTransactionRead];
pub const VAULT_WRITE: &[Role] = &[Role::TenantTransactionWrite];
pub const VAULT_ERASE: &[Role] = &[Role::TenantAdmin];

/// The OpenAPI document of this area, merged into the whole API's (`docs.rs`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(create_instrument, list_instruments, get_instrument, change_state, erase_customer),
    components(schemas(InstrumentRequest, SupportsDto, InstrumentDto, StateEntryDto, StateChangeRequest, ErasureDto))
)]
pub struct VaultApi;

fn tenant(caller: &Principal) -> ApiResult<&str> {
    caller
        .tenant_id
        .as_deref()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a tenant route ran without a tenant")))
}

/// `supports` of an instrument: the directions it may be used in.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SupportsDto {
    /// May be charged (collect). Default `true`.
    pub debit: Option<bool>,
    /// May be paid out to. Default `true`.
    pub credit: Option<bool>,
}

/// `POST /v1/customer-vault/{customerRef}/financial-instruments`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstrumentRequest {
    /// `CARD`, `BANK_ACCOUNT`, `MOBILE_PHONE` or `DIRECT_DEBIT_MANDATE` (REWARD
    /// instruments come from reward claims).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Per type: CARD `{cardNumber*, expiryMonth*, expiryYear*, cardholderName}` (only when
    /// the deployment accepts raw card data; a CVV/CVC is ignored, never stored);
    /// BANK_ACCOUNT `{accountHolderName*, iban}` or `{accountHolderName*, accountNumber,
    /// sortCode}`; MOBILE_PHONE `{phoneNumber*}` (E.164); DIRECT_DEBIT_MANDATE
    /// `{mandateReference*, accountHolderName*, iban*, signedDate*, scheme* SEPA|BACS}`.
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
    /// PSP tokens of this instrument, by app id (stored encrypted).
    #[schema(value_type = Option<Object>)]
    pub provider_tokens: Option<Value>,
    /// Default `false`.
    pub single_use: Option<bool>,
    pub supports: Option<SupportsDto>,
}

// The body holds card numbers and account numbers: never printed.
impl std::fmt::Debug for InstrumentRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstrumentRequest").field("type", &self.kind).finish_non_exhaustive()
    }
}

/// `PUT …/financial-instruments/{financialInstrumentId}/state`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StateChangeRequest {
    /// `ACTIVE`, `INACTIVE`, `LOCKED` or `CLOSED` (SPEC §0).
    pub state: Option<String>,
    /// `EXPIRED`, `MANDATE_CANCELLED`, `CUSTOMER_REQUEST` or `FRAUD_SUSPECTED`; required
    /// to deactivate.
    pub reason: Option<String>,
}

/// One entry of an instrument's state history.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StateEntryDto {
    pub state: String,
    pub reason: Option<String>,
    /// ISO-8601 UTC.
    pub changed_at: String,
}

/// SPEC §5.4 financial instrument: display data only.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstrumentDto {
    pub financial_instrument_id: String,
    pub customer_ref: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub app_id: Option<String>,
    pub state: String,
    pub state_reason: Option<String>,
    /// `brand`, `last4`, `expiryMonth`, `expiryYear`, `maskedIban`, `country`,
    /// `maskedAccountNumber`, `sortCode`, `maskedPhoneNumber`, `mandateReference`,
    /// `scheme`, `signedDate`, as they apply to the type.
    #[schema(value_type = Object)]
    pub display: Value,
    pub supports: SupportsDto,
    pub single_use: bool,
    /// ISO-8601 UTC.
    pub created_at: String,
    /// On the read of one instrument: every state it has been in, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_history: Option<Vec<StateEntryDto>>,
}

impl From<&InstrumentView> for InstrumentDto {
    fn from(v: &InstrumentView) -> Self {
        Self {
            financial_instrument_id: v.financial_instrument_id.clone(),
            customer_ref: v.customer_ref.clone(),
            kind: v.kind.as_str().to_string(),
            app_id: v.app_id.clone(),
            state: v.state.as_str().to_string(),
            state_reason: v.state_reason.map(|r| r.as_str().to_string()),
            display: v.display.clone(),
            supports: SupportsDto { debit: Some(v.supports_debit), credit: Some(v.supports_credit) },
            single_use: v.single_use,
            created_at: iso_time(v.created_at),
            state_history: v.state_history.as_ref().map(|h| {
                h.iter()
                    .map(|s| StateEntryDto {
                        state: s.state.as_str().to_string(),
                        reason: s.reason.map(|r| r.as_str().to_string()),
                        changed_at: iso_time(s.changed_at),
                    })
                    .collect()
            }),
        }
    }
}

/// `202` answer of an erasure.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErasureDto {
    pub erasure_id: String,
}

fn instrument_location(customer_ref: &str, id: &str) -> String {
    format!("/v1/customer-vault/{customer_ref}/financial-instruments/{id}")
}

/// Store a financial instrument for the customer. Answers display data only.
#[utoipa::path(post, path = "/v1/customer-vault/{customerRef}/financial-instruments", tag = "customer vault",
    params(("customerRef" = String, Path)), request_body = InstrumentRequest, responses(
    (status = 201, body = InstrumentDto),
    (status = 400, description = "INVALID_CUSTOMER_REF, FIELD_REQUIRED, INVALID_FINANCIAL_INSTRUMENT_TYPE, REWARD_INSTRUMENT_NOT_CREATABLE, RAW_CARD_DATA_NOT_ACCEPTED, INVALID_FINANCIAL_INSTRUMENT_DETAILS, INVALID_CARD_NUMBER, INVALID_EXPIRY, CARD_EXPIRED, INVALID_IBAN, INVALID_BANK_ACCOUNT, INVALID_ACCOUNT_NUMBER, INVALID_SORT_CODE, INVALID_PHONE_NUMBER, INVALID_MANDATE_REFERENCE, INVALID_MANDATE_SCHEME, INVALID_DATE, INVALID_HOLDER_NAME, INVALID_PROVIDER_TOKENS, INVALID_PROVIDER_TOKEN, INVALID_APP_ID", body = ErrorEnvelope),
    (status = 409, description = "CUSTOMER_ERASED", body = ErrorEnvelope)))]
pub async fn create_instrument(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(customer_ref): Path<String>,
    ApiJson(body): ApiJson<InstrumentRequest>,
) -> ApiResult<Response> {
    let supports = body.supports.unwrap_or_default();
    let input = NewInstrument {
        kind: body.kind,
        details: body.details.unwrap_or(Value::Null),
        provider_tokens: body.provider_tokens,
        single_use: body.single_use,
        supports_debit: supports.debit,
        supports_credit: supports.credit,
    };
    let fi = state.engine.create_instrument(tenant(&caller)?, &customer_ref, input).await?;
    let location = instrument_location(&fi.customer_ref, &fi.financial_instrument_id);
    Ok(created(location, InstrumentDto::from(&fi)))
}

/// The customer's financial instruments, oldest first (`?state=` filters).
#[utoipa::path(get, path = "/v1/customer-vault/{customerRef}/financial-instruments", tag = "customer vault",
    params(("customerRef" = String, Path), ("state" = Option<String>, Query, description = "ACTIVE, INACTIVE, LOCKED or CLOSED")),
    responses(
    (status = 200, body = [InstrumentDto]),
    (status = 400, description = "INVALID_CUSTOMER_REF, INVALID_STATE", body = ErrorEnvelope)))]
pub async fn list_instruments(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(customer_ref): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Vec<InstrumentDto>>> {
    let filter = pairs.iter().rev().find(|(k, _)| k.trim().eq_ignore_ascii_case("state")).map(|(_, v)| v.as_str());
    let list = state.engine.instruments(tenant(&caller)?, &customer_ref, filter).await?;
    Ok(Json(list.iter().map(Into::into).collect()))
}

/// One financial instrument, with its state history.
#[utoipa::path(get, path = "/v1/customer-vault/{customerRef}/financial-instruments/{financialInstrumentId}",
    tag = "customer vault", params(("customerRef" = String, Path), ("financialInstrumentId" = String, Path)), responses(
    (status = 200, body = InstrumentDto),
    (status = 400, description = "INVALID_CUSTOMER_REF", body = ErrorEnvelope),
    (status = 404, description = "FINANCIAL_INSTRUMENT_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn get_instrument(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((customer_ref, id)): Path<(String, String)>,
) -> ApiResult<Json<InstrumentDto>> {
    let fi = state.engine.instrument(tenant(&caller)?, &customer_ref, &normalise_id(&id)).await?;
    Ok(Json((&fi).into()))
}

/// Change a financial instrument's state (SPEC §0): deactivate with a reason,
/// reactivate, lock, or close for good.
#[utoipa::path(put, path = "/v1/customer-vault/{customerRef}/financial-instruments/{financialInstrumentId}/state",
    tag = "customer vault", params(("customerRef" = String, Path), ("financialInstrumentId" = String, Path)),
    request_body = StateChangeRequest, responses(
    (status = 200, body = InstrumentDto),
    (status = 400, description = "INVALID_CUSTOMER_REF, FIELD_REQUIRED, INVALID_STATE, INVALID_STATE_REASON, INVALID_STATE_TRANSITION, STATE_REASON_REQUIRED", body = ErrorEnvelope),
    (status = 404, description = "FINANCIAL_INSTRUMENT_NOT_FOUND", body = ErrorEnvelope),
    (status = 409, description = "CONCURRENT_MODIFICATION", body = ErrorEnvelope)))]
pub async fn change_state(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((customer_ref, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<StateChangeRequest>,
) -> ApiResult<Json<InstrumentDto>> {
    let fi = state
        .engine
        .change_instrument_state(
            tenant(&caller)?,
            &customer_ref,
            &normalise_id(&id),
            body.state.as_deref(),
            body.reason.as_deref(),
        )
        .await?;
    Ok(Json((&fi).into()))
}

/// Forget the customer (right to be forgotten): their data key is destroyed, so their
/// instruments' details can never be decrypted again, and every instrument is closed.
/// The instruments stay readable with display data only. Repeating it is harmless.
#[utoipa::path(delete, path = "/v1/customer-vault/{customerRef}", tag = "customer vault",
    params(("customerRef" = String, Path)), responses(
    (status = 202, body = ErasureDto),
    (status = 400, description = "INVALID_CUSTOMER_REF", body = ErrorEnvelope)))]
pub async fn erase_customer(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(customer_ref): Path<String>,
) -> ApiResult<Response> {
    let erasure = state.engine.erase_customer(tenant(&caller)?, &customer_ref).await?;
    Ok((StatusCode::ACCEPTED, Json(ErasureDto { erasure_id: erasure.erasure_id })).into_response())
}
