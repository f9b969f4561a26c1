//! Order management (SPEC §4.9): orders, customer defaults and instructions, and the
//! tenant-wide listings of orders and instructions.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use baton_domain::{Problem, Role};
use baton_engine::listing::Page;
use baton_engine::orders::{
    CustomerDefaultInput, CustomerDefaultView, DefaultFieldInput, EffectiveRef, InstructionInput, InstructionView,
    ListInput, ListedInstructionView, OrderInput, OrderView,
};
use baton_engine::Principal;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use utoipa::ToSchema;

use super::created;
use crate::auth::Caller;
use crate::dto::{iso_time, ErrorEnvelope};
use crate::error::{ApiError, ApiResult};
use crate::idempotency::TakenOver;
use crate::json::{from_value, ApiJson};
use crate::AppState;

/// Roles of the order routes, for the route table.
pub const ORDERS_READ: &[Role] = &[Role::TenantTransactionRead];
pub const ORDERS_WRITE: &[Role] = &[Role::TenantTransactionWrite];

/// The OpenAPI document of this area, merged into the whole API's (`docs.rs`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        create_order,
        get_order,
        put_order_metadata,
        delete_order_metadata,
        put_customer_defaults,
        put_default_instrument,
        put_default_scheme,
        put_default_metadata,
        delete_customer_default,
        create_instruction,
        get_instruction,
        update_instruction,
        void_instruction,
        list_orders,
        list_instructions
    ),
    components(schemas(
        OrderRequest,
        InstructionRequest,
        CustomerDefaultRequest,
        OrderDto,
        InstructionDto,
        CustomerDefaultDto,
        InstrumentRefDto,
        SchemeRefDto,
        InstrumentIdRequest,
        SchemeIdRequest,
        OrderSummaryDto,
        OrderPageDto,
        ListedInstructionDto,
        InstructionPageDto
    ))
)]
pub struct OrdersApi;

pub(crate) fn tenant(caller: &Principal) -> ApiResult<&str> {
    caller
        .tenant_id
        .as_deref()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a tenant route ran without a tenant")))
}

// -- input ---------------------------------------------------------------------------------

/// `OrderCreate`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderRequest {
    pub order_ref: Option<String>,
    pub instructions: Option<Vec<InstructionRequest>>,
    /// Flat string→string map (`[]` = empty).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// `{customerRef: CustomerDefault}` or `[{customerRef, …}]`.
    #[schema(value_type = Option<Object>)]
    pub customer_defaults: Option<Value>,
}

/// `InstructionCreate` (also the body of an update, where the refs are kept).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstructionRequest {
    pub instruction_ref: Option<String>,
    pub customer_ref: Option<String>,
    /// `CREDIT` or `DEBIT`.
    pub direction: Option<String>,
    /// `""` means none.
    pub financial_instrument_id: Option<String>,
    /// Decimal (number or numeric string), > 0.
    #[schema(value_type = Option<String>)]
    pub amount: Option<Value>,
    pub currency: Option<String>,
    pub country: Option<String>,
    #[schema(value_type = Option<String>)]
    pub scheme_id: Option<Value>,
    /// Alias of `schemeId` (the documented tutorial's name).
    #[schema(value_type = Option<String>)]
    pub scheme: Option<Value>,
    /// `YYYY-MM-DD`.
    pub settled_by_date: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// A customer default: nested (`financialInstrument{financialInstrumentId, source}`,
/// `scheme{schemeId, source}`) or flat (`financialInstrumentId`, `schemeId`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerDefaultRequest {
    /// Taken from the map key in the map form.
    pub customer_ref: Option<String>,
    pub financial_instrument_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub financial_instrument: Option<Value>,
    #[schema(value_type = Option<String>)]
    pub scheme_id: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub scheme: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// `PUT …/customer-defaults/{customerRef}/financial-instrument`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstrumentIdRequest {
    /// `""` or null clears it.
    pub financial_instrument_id: Option<String>,
}

/// `PUT …/customer-defaults/{customerRef}/scheme`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchemeIdRequest {
    /// `""` or null clears it.
    #[schema(value_type = Option<String>)]
    pub scheme_id: Option<Value>,
    #[schema(value_type = Option<String>)]
    pub scheme: Option<Value>,
}

fn invalid_body(field: &str, reason: &str) -> ApiError {
    ApiError::problem(
        Problem::bad_request("INVALID_REQUEST_BODY")
            .message("{field}: {reason}")
            .detail("field", field.to_string())
            .detail("reason", reason.to_string()),
    )
}

/// A value of `object` under `key`, matched case-insensitively.
fn field_ci<'a>(object: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)
}

/// An id sent as a string, or inside an object under `key`, with the object's `source`.
fn id_and_source(value: Option<&Value>, key: &str, field: &str) -> ApiResult<(Option<String>, Option<String>)> {
    let text = |v: Option<&Value>| -> ApiResult<Option<String>> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid_body(field, "expected a string")),
        }
    };
    match value {
        Some(Value::Object(o)) => Ok((text(field_ci(o, key))?, text(field_ci(o, "source"))?)),
        other => Ok((text(other)?, None)),
    }
}

fn scheme_of(scheme_id: Option<&Value>, scheme: Option<&Value>) -> ApiResult<Option<String>> {
    let (id, _) = id_and_source(scheme_id, "schemeId", "schemeId")?;
    match id {
        Some(id) if !id.trim().is_empty() => Ok(Some(id)),
        _ => Ok(id_and_source(scheme, "schemeId", "scheme")?.0),
    }
}

fn instruction_input(r: InstructionRequest) -> ApiResult<InstructionInput> {
    Ok(InstructionInput {
        scheme_id: scheme_of(r.scheme_id.as_ref(), r.scheme.as_ref())?,
        instruction_ref: r.instruction_ref,
        customer_ref: r.customer_ref,
        direction: r.direction,
        financial_instrument_id: r.financial_instrument_id,
        amount: r.amount,
        currency: r.currency,
        country: r.country,
        settled_by_date: r.settled_by_date,
        metadata: r.metadata,
    })
}

fn default_input(key: Option<&str>, value: Value) -> ApiResult<CustomerDefaultInput> {
    let r: CustomerDefaultRequest = from_value(value)?;
    let (nested_fi, fi_source) =
        id_and_source(r.financial_instrument.as_ref(), "financialInstrumentId", "financialInstrument")?;
    let (nested_scheme, scheme_source) = id_and_source(r.scheme.as_ref(), "schemeId", "scheme")?;
    let (flat_scheme, _) = id_and_source(r.scheme_id.as_ref(), "schemeId", "schemeId")?;
    Ok(CustomerDefaultInput {
        customer_ref: key.map(str::to_string).or(r.customer_ref),
        financial_instrument_id: r.financial_instrument_id.filter(|s| !s.trim().is_empty()).or(nested_fi),
        instrument_source: fi_source,
        scheme_id: flat_scheme.filter(|s| !s.trim().is_empty()).or(nested_scheme),
        scheme_source,
        metadata: r.metadata,
    })
}

/// `customerDefaults` in the map form (`{customerRef: {…}}`) or the list form.
fn defaults_input(value: Option<Value>) -> ApiResult<Vec<CustomerDefaultInput>> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(map)) => map.into_iter().map(|(k, v)| default_input(Some(&k), v)).collect(),
        Some(Value::Array(items)) => items.into_iter().map(|v| default_input(None, v)).collect(),
        Some(_) => Err(invalid_body("customerDefaults", "expected an object or an array")),
    }
}

/// A metadata body: `{"metadata": {…}}` or the map itself.
fn metadata_body(body: Value) -> Value {
    if let Value::Object(o) = &body {
        if o.len() == 1 {
            if let Some(inner @ (Value::Object(_) | Value::Array(_) | Value::Null)) = field_ci(o, "metadata") {
                return inner.clone();
            }
        }
    }
    body
}

// -- output --------------------------------------------------------------------------------

/// A decimal as a JSON number: an integer when whole, else its (≤2 dp) value.
pub(crate) fn decimal<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    let n = d.normalize();
    match n.to_i64() {
        Some(i) if n.scale() == 0 => s.serialize_i64(i),
        _ => s.serialize_f64(n.to_f64().unwrap_or_default()),
    }
}

/// The instruction's (or default's) financial instrument.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstrumentRefDto {
    /// `""` when none.
    pub financial_instrument_id: String,
    /// `NONE`, `CUSTOMER_DEFAULT`, `CUSTOMER`, `TENANT` or `SYSTEM_GENERATED`.
    pub source: String,
    pub can_update: bool,
}

/// The instruction's (or default's) scheme.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchemeRefDto {
    /// `""` when none.
    pub scheme_id: String,
    pub source: String,
    pub can_update: bool,
}

fn instrument_ref(r: &EffectiveRef) -> InstrumentRefDto {
    InstrumentRefDto {
        financial_instrument_id: r.id.clone().unwrap_or_default(),
        source: r.source.as_str().to_string(),
        can_update: r.can_update,
    }
}

fn scheme_ref(r: &EffectiveRef) -> SchemeRefDto {
    SchemeRefDto {
        scheme_id: r.id.clone().unwrap_or_default(),
        source: r.source.as_str().to_string(),
        can_update: r.can_update,
    }
}

/// SPEC §4.9 Instruction, with effective values.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstructionDto {
    pub instruction_ref: String,
    pub direction: String,
    pub status: String,
    pub customer_ref: String,
    pub financial_instrument: InstrumentRefDto,
    #[serde(serialize_with = "decimal")]
    #[schema(value_type = f64)]
    pub amount: Decimal,
    pub currency: String,
    pub country: String,
    /// ISO-8601 UTC (`2020-12-31T00:00:00.000Z`), or null.
    pub settled_by_date: Option<String>,
    pub scheme: SchemeRefDto,
    /// Effective: the customer default's merged with the instruction's (instruction wins).
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// ISO-8601 UTC.
    pub created_at: String,
}

impl From<&InstructionView> for InstructionDto {
    fn from(v: &InstructionView) -> Self {
        Self {
            instruction_ref: v.instruction_ref.clone(),
            direction: v.direction.as_str().to_string(),
            status: v.status.as_str().to_string(),
            customer_ref: v.customer_ref.clone(),
            financial_instrument: instrument_ref(&v.financial_instrument),
            amount: v.amount,
            currency: v.currency.clone(),
            country: v.country.clone(),
            settled_by_date: v.settled_by_date.map(|d| d.to_iso()),
            scheme: scheme_ref(&v.scheme),
            metadata: v.metadata.to_json(),
            created_at: iso_time(v.created_at),
        }
    }
}

/// A customer's defaults within an order.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerDefaultDto {
    pub financial_instrument: InstrumentRefDto,
    pub scheme: SchemeRefDto,
    #[schema(value_type = Object)]
    pub metadata: Value,
}

impl From<&CustomerDefaultView> for CustomerDefaultDto {
    fn from(v: &CustomerDefaultView) -> Self {
        Self {
            financial_instrument: instrument_ref(&v.financial_instrument),
            scheme: scheme_ref(&v.scheme),
            metadata: v.metadata.to_json(),
        }
    }
}

/// SPEC §4.9 Order.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderDto {
    pub order_ref: String,
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// By customer ref.
    pub customer_defaults: BTreeMap<String, CustomerDefaultDto>,
    pub instructions: Vec<InstructionDto>,
    /// ISO-8601 UTC.
    pub created_at: String,
}

impl From<&OrderView> for OrderDto {
    fn from(v: &OrderView) -> Self {
        Self {
            order_ref: v.order_ref.clone(),
            metadata: v.metadata.to_json(),
            customer_defaults: v.customer_defaults.iter().map(|d| (d.customer_ref.clone(), d.into())).collect(),
            instructions: v.instructions.iter().map(Into::into).collect(),
            created_at: iso_time(v.created_at),
        }
    }
}

fn order_location(order_ref: &str) -> String {
    format!("/v1/order-management/{order_ref}")
}

// -- handlers ------------------------------------------------------------------------------

const ORDER_400: &str = "ORDER_REF_REQUIRED, INVALID_ORDER_REF, INVALID_METADATA, METADATA_LIMIT_EXCEEDED, \
    METADATA_SENSITIVE_DATA, INVALID_CUSTOMER_REF, CUSTOMER_REF_REQUIRED, DUPLICATE_CUSTOMER_REF, INVALID_SOURCE, \
    and every instruction code (fields prefixed instructions[i].)";
const INSTRUCTION_400: &str = "INSTRUCTION_REF_REQUIRED, INVALID_INSTRUCTION_REF, CUSTOMER_REF_REQUIRED, \
    INVALID_CUSTOMER_REF, CUSTOMER_REF_NOT_IN_CUSTOMER_DEFAULTS, FIELD_REQUIRED, INVALID_DIRECTION, INVALID_AMOUNT, \
    INVALID_AMOUNT_PRECISION, INVALID_CURRENCY, INVALID_COUNTRY, INVALID_DATE, SCHEME_NOT_FOUND, \
    SCHEME_DIRECTION_MISMATCH, FINANCIAL_INSTRUMENT_NOT_FOUND, FINANCIAL_INSTRUMENT_NOT_ACTIVE, INVALID_METADATA, \
    METADATA_LIMIT_EXCEEDED";

/// Create an order: `201` without instructions; `202` with a `Location` when
/// instructions are included (all validated and stored in one transaction first).
#[utoipa::path(post, path = "/v1/order-management", tag = "order management", request_body = OrderRequest,
    responses(
    (status = 201, body = OrderDto),
    (status = 202, body = OrderDto, description = "Instructions included"),
    (status = 400, description = ORDER_400, body = ErrorEnvelope),
    (status = 409, description = "ORDER_REF_ALREADY_EXISTS, INSTRUCTION_REF_ALREADY_EXISTS", body = ErrorEnvelope)))]
pub async fn create_order(
    State(state): State<AppState>,
    Caller(caller): Caller,
    taken_over: Option<Extension<TakenOver>>,
    ApiJson(body): ApiJson<OrderRequest>,
) -> ApiResult<Response> {
    let instructions = body.instructions.unwrap_or_default();
    let with_instructions = !instructions.is_empty();
    // An earlier try of this request, cut off by its node's death, may have created it.
    let resumed = match (taken_over, body.order_ref.as_deref()) {
        (Some(Extension(t)), Some(order_ref)) => {
            state.engine.order_created_since(tenant(&caller)?, order_ref, t.earlier_try_at).await?
        }
        _ => None,
    };
    let order = match resumed {
        Some(order) => order,
        None => {
            let input = OrderInput {
                order_ref: body.order_ref,
                instructions: instructions.into_iter().map(instruction_input).collect::<ApiResult<_>>()?,
                metadata: body.metadata,
                customer_defaults: defaults_input(body.customer_defaults)?,
            };
            state.engine.create_order(tenant(&caller)?, input).await?
        }
    };
    let location = order_location(&order.order_ref);
    if !with_instructions {
        return Ok(created(location, OrderDto::from(&order)));
    }
    let mut response = (StatusCode::ACCEPTED, Json(OrderDto::from(&order))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// One order with its customer defaults and instructions.
#[utoipa::path(get, path = "/v1/order-management/{orderRef}", tag = "order management",
    params(("orderRef" = String, Path)), responses(
    (status = 200, body = OrderDto),
    (status = 404, description = "ORDER_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn get_order(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(order_ref): Path<String>,
) -> ApiResult<Json<OrderDto>> {
    let order = state.engine.order(tenant(&caller)?, &order_ref).await?;
    Ok(Json((&order).into()))
}

/// Replace the order's metadata (`{"metadata": {…}}` or the map itself).
#[utoipa::path(put, path = "/v1/order-management/{orderRef}/metadata", tag = "order management",
    params(("orderRef" = String, Path)), request_body = Object, responses(
    (status = 200, body = OrderDto),
    (status = 400, description = "INVALID_METADATA, METADATA_LIMIT_EXCEEDED, METADATA_SENSITIVE_DATA", body = ErrorEnvelope),
    (status = 404, description = "ORDER_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn put_order_metadata(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(order_ref): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<OrderDto>> {
    let metadata = metadata_body(body);
    let order = state.engine.set_order_metadata(tenant(&caller)?, &order_ref, Some(&metadata)).await?;
    Ok(Json((&order).into()))
}

/// Clear the order's metadata.
#[utoipa::path(delete, path = "/v1/order-management/{orderRef}/metadata", tag = "order management",
    params(("orderRef" = String, Path)), responses(
    (status = 204),
    (status = 404, description = "ORDER_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn delete_order_metadata(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(order_ref): Path<String>,
) -> ApiResult<StatusCode> {
    state.engine.set_order_metadata(tenant(&caller)?, &order_ref, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Insert or replace customer defaults (`{customerRef: CustomerDefault}` or a list).
/// Unprocessed instructions that inherit are re-resolved in the same transaction.
#[utoipa::path(put, path = "/v1/order-management/{orderRef}/customer-defaults", tag = "order management",
    params(("orderRef" = String, Path)), request_body = Object, responses(
    (status = 200, body = OrderDto),
    (status = 400, description = "CUSTOMER_REF_REQUIRED, INVALID_CUSTOMER_REF, FINANCIAL_INSTRUMENT_NOT_FOUND, FINANCIAL_INSTRUMENT_NOT_ACTIVE, SCHEME_NOT_FOUND, INVALID_SOURCE, INVALID_METADATA, METADATA_LIMIT_EXCEEDED", body = ErrorEnvelope),
    (status = 404, description = "ORDER_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn put_customer_defaults(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(order_ref): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<OrderDto>> {
    let body = match body {
        Value::Object(o) if o.len() == 1 && field_ci(&o, "customerDefaults").is_some() => {
            field_ci(&o, "customerDefaults").cloned()
        }
        other => Some(other),
    };
    let order = state.engine.put_customer_defaults(tenant(&caller)?, &order_ref, defaults_input(body)?).await?;
    Ok(Json((&order).into()))
}

/// Set (or clear with `""`) a customer default's financial instrument.
#[utoipa::path(put, path = "/v1/order-management/{orderRef}/customer-defaults/{customerRef}/financial-instrument",
    tag = "order management", params(("orderRef" = String, Path), ("customerRef" = String, Path)),
    request_body = InstrumentIdRequest, responses(
    (status = 200, body = OrderDto),
    (status = 400, description = "FINANCIAL_INSTRUMENT_NOT_FOUND, FINANCIAL_INSTRUMENT_NOT_ACTIVE", body = ErrorEnvelope),
    (status = 404, description = "ORDER_NOT_FOUND, CUSTOMER_DEFAULT_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn put_default_instrument(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((order_ref, customer_ref)): Path<(String, String)>,
    ApiJson(body): ApiJson<InstrumentIdRequest>,
) -> ApiResult<Json<OrderDto>> {
    let change = DefaultFieldInput::Instrument(body.financial_instrument_id);
    let order = state.engine.change_customer_default(tenant(&caller)?, &order_ref, &customer_ref, change).await?;
    Ok(Json((&order).into()))
}

/// Set (or clear with `""`) a customer default's scheme.
#[utoipa::path(put, path = "/v1/order-management/{orderRef}/customer-defaults/{customerRef}/scheme",
    tag = "order management", params(("orderRef" = String, Path), ("customerRef" = String, Path)),
    request_body = SchemeIdRequest, responses(
    (status = 200, body = OrderDto),
    (status = 400, description = "SCHEME_NOT_FOUND", body = ErrorEnvelope),
    (status = 404, description = "ORDER_NOT_FOUND, CUSTOMER_DEFAULT_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn put_default_scheme(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((order_ref, customer_ref)): Path<(String, String)>,
    ApiJson(body): ApiJson<SchemeIdRequest>,
) -> ApiResult<Json<OrderDto>> {
    let change = DefaultFieldInput::Scheme(scheme_of(body.scheme_id.as_ref(), body.scheme.as_ref())?);
    let order = state.engine.change_customer_default(tenant(&caller)?, &order_ref, &customer_ref, change).await?;
    Ok(Json((&order).into()))
}

/// Replace a customer default's metadata (`{"metadata": {…}}` or the map itself).
#[utoipa::path(put, path = "/v1/order-management/{orderRef}/customer-defaults/{customerRef}/metadata",
    tag = "order management", params(("orderRef" = String, Path), ("customerRef" = String, Path)),
    request_body = Object, responses(
    (status = 200, body = OrderDto),
    (status = 400, description = "INVALID_METADATA, METADATA_LIMIT_EXCEEDED, METADATA_SENSITIVE_DATA", body = ErrorEnvelope),
    (status = 404, description = "ORDER_NOT_FOUND, CUSTOMER_DEFAULT_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn put_default_metadata(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((order_ref, customer_ref)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<OrderDto>> {
    let change = DefaultFieldInput::Metadata(Some(metadata_body(body)));
    let order = state.engine.change_customer_default(tenant(&caller)?, &order_ref, &customer_ref, change).await?;
    Ok(Json((&order).into()))
}

/// Delete a customer default that no instruction (other than VOID ones) of the customer uses.
#[utoipa::path(delete, path = "/v1/order-management/{orderRef}/customer-defaults/{customerRef}",
    tag = "order management", params(("orderRef" = String, Path), ("customerRef" = String, Path)), responses(
    (status = 204),
    (status = 400, description = "CUSTOMER_DEFAULT_IN_USE", body = ErrorEnvelope),
    (status = 404, description = "ORDER_NOT_FOUND, CUSTOMER_DEFAULT_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn delete_customer_default(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((order_ref, customer_ref)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state.engine.delete_customer_default(tenant(&caller)?, &order_ref, &customer_ref).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Add an instruction to an order.
#[utoipa::path(post, path = "/v1/order-management/{orderRef}/instruction", tag = "order management",
    params(("orderRef" = String, Path)), request_body = InstructionRequest, responses(
    (status = 201, body = InstructionDto),
    (status = 400, description = INSTRUCTION_400, body = ErrorEnvelope),
    (status = 404, description = "ORDER_NOT_FOUND", body = ErrorEnvelope),
    (status = 409, description = "INSTRUCTION_REF_ALREADY_EXISTS", body = ErrorEnvelope)))]
pub async fn create_instruction(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(order_ref): Path<String>,
    ApiJson(body): ApiJson<InstructionRequest>,
) -> ApiResult<Response> {
    let instruction = state.engine.create_instruction(tenant(&caller)?, &order_ref, instruction_input(body)?).await?;
    let location = format!("{}/instruction/{}", order_location(&order_ref), instruction.instruction_ref);
    Ok(created(location, InstructionDto::from(&instruction)))
}

/// One instruction with its effective values (status polling).
#[utoipa::path(get, path = "/v1/order-management/{orderRef}/instruction/{instructionRef}", tag = "order management",
    params(("orderRef" = String, Path), ("instructionRef" = String, Path)), responses(
    (status = 200, body = InstructionDto),
    (status = 404, description = "ORDER_NOT_FOUND, INSTRUCTION_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn get_instruction(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((order_ref, instruction_ref)): Path<(String, String)>,
) -> ApiResult<Json<InstructionDto>> {
    let instruction = state.engine.instruction(tenant(&caller)?, &order_ref, &instruction_ref).await?;
    Ok(Json((&instruction).into()))
}

/// Replace an instruction's values (body as for creation; its refs are kept) while it
/// is INCOMPLETE or READY.
#[utoipa::path(put, path = "/v1/order-management/{orderRef}/instruction/{instructionRef}", tag = "order management",
    params(("orderRef" = String, Path), ("instructionRef" = String, Path)), request_body = InstructionRequest,
    responses(
    (status = 200, body = InstructionDto),
    (status = 400, description = "INSTRUCTION_NOT_UPDATABLE, CUSTOMER_REF_NOT_UPDATABLE, and the creation codes", body = ErrorEnvelope),
    (status = 404, description = "ORDER_NOT_FOUND, INSTRUCTION_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn update_instruction(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((order_ref, instruction_ref)): Path<(String, String)>,
    ApiJson(body): ApiJson<InstructionRequest>,
) -> ApiResult<Json<InstructionDto>> {
    let input = instruction_input(body)?;
    let instruction = state.engine.update_instruction(tenant(&caller)?, &order_ref, &instruction_ref, input).await?;
    Ok(Json((&instruction).into()))
}

/// Void an instruction (from INCOMPLETE, READY or LATE); answers it with status VOID.
#[utoipa::path(delete, path = "/v1/order-management/{orderRef}/instruction/{instructionRef}", tag = "order management",
    params(("orderRef" = String, Path), ("instructionRef" = String, Path)), responses(
    (status = 200, body = InstructionDto),
    (status = 400, description = "INVALID_STATUS_TRANSITION", body = ErrorEnvelope),
    (status = 404, description = "ORDER_NOT_FOUND, INSTRUCTION_NOT_FOUND", body = ErrorEnvelope),
    (status = 409, description = "CONCURRENT_MODIFICATION", body = ErrorEnvelope)))]
pub async fn void_instruction(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((order_ref, instruction_ref)): Path<(String, String)>,
) -> ApiResult<Json<InstructionDto>> {
    let instruction = state.engine.void_instruction(tenant(&caller)?, &order_ref, &instruction_ref).await?;
    Ok(Json((&instruction).into()))
}

// -- listings ------------------------------------------------------------------------------

/// An order in the order listing: the Order without its `instructions` (to keep pages
/// small; read them with `GET /v1/order-management/{orderRef}` or `GET /v1/instructions`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderSummaryDto {
    pub order_ref: String,
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// By customer ref.
    pub customer_defaults: BTreeMap<String, CustomerDefaultDto>,
    /// ISO-8601 UTC.
    pub created_at: String,
}

impl From<&OrderView> for OrderSummaryDto {
    fn from(v: &OrderView) -> Self {
        Self {
            order_ref: v.order_ref.clone(),
            metadata: v.metadata.to_json(),
            customer_defaults: v.customer_defaults.iter().map(|d| (d.customer_ref.clone(), d.into())).collect(),
            created_at: iso_time(v.created_at),
        }
    }
}

/// A page of orders, oldest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderPageDto {
    pub items: Vec<OrderSummaryDto>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// An instruction of the instruction listing: the Instruction with its order's ref.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListedInstructionDto {
    pub order_ref: String,
    #[serde(flatten)]
    pub instruction: InstructionDto,
}

/// A page of instructions, oldest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstructionPageDto {
    pub items: Vec<ListedInstructionDto>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl From<&Page<OrderView>> for OrderPageDto {
    fn from(p: &Page<OrderView>) -> Self {
        Self { items: p.items.iter().map(Into::into).collect(), next_cursor: p.next_cursor.clone() }
    }
}

impl From<&Page<ListedInstructionView>> for InstructionPageDto {
    fn from(p: &Page<ListedInstructionView>) -> Self {
        Self {
            items: p
                .items
                .iter()
                .map(|i| ListedInstructionDto { order_ref: i.order_ref.clone(), instruction: (&i.instruction).into() })
                .collect(),
            next_cursor: p.next_cursor.clone(),
        }
    }
}

/// The listing query (names match ignoring case; the last non-blank value wins, and
/// repeated `status` parameters add up).
fn list_input(pairs: &[(String, String)]) -> ListInput {
    let named = |name: &'static str| {
        pairs.iter().filter(move |(k, _)| k.trim().eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    };
    let last = |name: &'static str| named(name).rfind(|v| !v.trim().is_empty()).map(str::to_string);
    let statuses: Vec<&str> = named("status").collect();
    ListInput {
        status: (!statuses.is_empty()).then(|| statuses.join(",")),
        customer_ref: last("customerRef"),
        direction: last("direction"),
        currency: last("currency"),
        created_from: last("createdFrom"),
        created_to: last("createdTo"),
        settled_by_from: last("settledByFrom"),
        settled_by_to: last("settledByTo"),
        limit: last("limit"),
        cursor: last("cursor"),
    }
}

const PAGE_400: &str = "INVALID_LIMIT (limit), INVALID_CURSOR (cursor), INVALID_DATE (createdFrom, createdTo), \
    INVALID_CUSTOMER_REF (customerRef); every problem names its `field`";

/// List the tenant's orders, without their instructions.
///
/// Oldest first, one page at a time (keyset on creation time and id: orders created
/// while paging never make a page repeat or skip the orders already there). Each item
/// is the Order **without `instructions`**, to keep pages small: read an order's
/// instructions with `GET /v1/order-management/{orderRef}`, or list them with
/// `GET /v1/instructions`. Pass `nextCursor` as `cursor` for the next page; it is
/// null on the last page.
#[utoipa::path(get, path = "/v1/order-management", tag = "order management",
    params(
        ("customerRef" = Option<String>, Query, description = "Orders having an instruction or a customer default for this customer"),
        ("createdFrom" = Option<String>, Query, description = "YYYY-MM-DD, inclusive (UTC)"),
        ("createdTo" = Option<String>, Query, description = "YYYY-MM-DD, inclusive (UTC)"),
        ("limit" = Option<u32>, Query, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "The nextCursor of the previous page")),
    responses(
    (status = 200, body = OrderPageDto),
    (status = 400, description = PAGE_400, body = ErrorEnvelope)))]
pub async fn list_orders(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<OrderPageDto>> {
    let page = state.engine.orders(tenant(&caller)?, &list_input(&pairs)).await?;
    Ok(Json((&page).into()))
}

/// List the tenant's instructions across its orders.
///
/// Oldest first, one page at a time (keyset on creation time and id, as for orders).
/// Each item is the Instruction with its `orderRef`, with the same effective values
/// (inherited financial instrument, scheme and metadata) as the single read. Pass
/// `nextCursor` as `cursor` for the next page; it is null on the last page.
#[utoipa::path(get, path = "/v1/instructions", tag = "order management",
    params(
        ("status" = Option<String>, Query, description = "Comma-separated: INCOMPLETE, READY, LATE, PROCESSING, SETTLED, FAILED, VOID"),
        ("customerRef" = Option<String>, Query),
        ("direction" = Option<String>, Query, description = "DEBIT or CREDIT"),
        ("currency" = Option<String>, Query, description = "ISO 4217"),
        ("createdFrom" = Option<String>, Query, description = "YYYY-MM-DD, inclusive (UTC)"),
        ("createdTo" = Option<String>, Query, description = "YYYY-MM-DD, inclusive (UTC)"),
        ("settledByFrom" = Option<String>, Query, description = "YYYY-MM-DD, inclusive; instructions without a settle-by date never match"),
        ("settledByTo" = Option<String>, Query, description = "YYYY-MM-DD, inclusive; instructions without a settle-by date never match"),
        ("limit" = Option<u32>, Query, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "The nextCursor of the previous page")),
    responses(
    (status = 200, body = InstructionPageDto),
    (status = 400, description = "INVALID_INSTRUCTION_STATUS (status), INVALID_DIRECTION (direction), INVALID_CURRENCY (currency), INVALID_DATE (createdFrom, createdTo, settledByFrom, settledByTo), INVALID_LIMIT (limit), INVALID_CURSOR (cursor), INVALID_CUSTOMER_REF (customerRef); every problem names its `field`", body = ErrorEnvelope)))]
pub async fn list_instructions(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<InstructionPageDto>> {
    let page = state.engine.instructions(tenant(&caller)?, &list_input(&pairs)).await?;
    Ok(Json((&page).into()))
}
