//! Webhook endpoints, their deliveries and the event catalog (SPEC §5.1). Tenant
//! endpoints live under `/v1/notifications/webhooks` (tenant-admin), account endpoints
//! under `/v1/account/notifications/webhooks` (account-admin), with the same shapes.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use baton_domain::Problem;
use baton_engine::webhooks::{
    catalog, AttemptView, CreatedEndpoint, DeliveryQuery, DeliveryView, EndpointInput, EndpointView,
};
use baton_engine::{KeyOwner, Principal};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{created, normalise_id};
use crate::auth::Caller;
use crate::dto::{iso_time, ErrorEnvelope};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::AppState;

/// The OpenAPI document of this area, merged into the whole API's (`docs.rs`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        create_webhook,
        list_webhooks,
        get_webhook,
        update_webhook,
        delete_webhook,
        rotate_secret,
        test_webhook,
        list_deliveries,
        redeliver,
        create_account_webhook,
        list_account_webhooks,
        get_account_webhook,
        update_account_webhook,
        delete_account_webhook,
        rotate_account_secret,
        test_account_webhook,
        list_account_deliveries,
        redeliver_account,
        event_types
    ),
    components(schemas(WebhookRequest, WebhookDto, RotateRequest, DeliveryDto, AttemptDto, EventTypeDto))
)]
pub struct WebhooksApi;

// -- DTOs ------------------------------------------------------------------------------------

/// An endpoint to create or replace.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookRequest {
    /// Where events are POSTed: `https` (or `http` in the sandbox environment).
    pub url: Option<String>,
    /// Event types to receive (see `GET /v1/notifications/event-types`), or `["*"]` for all.
    pub events: Option<Vec<String>>,
    /// At most 500 characters.
    pub description: Option<String>,
    /// Default `true`.
    pub enabled: Option<bool>,
}

impl From<WebhookRequest> for EndpointInput {
    fn from(r: WebhookRequest) -> Self {
        EndpointInput { url: r.url, events: r.events, description: r.description, enabled: r.enabled }
    }
}

/// A webhook endpoint. `secret` is present only in the answers of creation and rotation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDto {
    pub webhook_id: String,
    /// The owning tenant; absent for account endpoints.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    /// `FAILING` when Baton disabled the endpoint after it failed for the whole retry window.
    pub disabled_reason: Option<String>,
    /// Since when every attempt has failed (none since the last success: absent).
    pub failing_since: Option<String>,
    /// After a rotation: until when the previous secret still signs.
    pub previous_secret_expires_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The signing secret (`whsec_` + base64 of 32 bytes): shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<&EndpointView> for WebhookDto {
    fn from(e: &EndpointView) -> Self {
        Self {
            webhook_id: e.webhook_id.clone(),
            tenant_id: e.tenant_id.clone(),
            url: e.url.clone(),
            events: e.events.clone(),
            description: e.description.clone(),
            enabled: e.enabled,
            disabled_reason: e.disabled_reason.clone(),
            failing_since: e.failing_since.map(iso_time),
            previous_secret_expires_at: e.previous_secret_expires_at.map(iso_time),
            created_at: iso_time(e.created_at),
            updated_at: iso_time(e.updated_at),
            secret: None,
        }
    }
}

impl From<&CreatedEndpoint> for WebhookDto {
    fn from(c: &CreatedEndpoint) -> Self {
        Self { secret: Some(c.secret.clone()), ..WebhookDto::from(&c.endpoint) }
    }
}

/// Optional body of `rotate-secret`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotateRequest {
    /// How long the current secret keeps signing next to the new one (default 86400, at
    /// most 604800; 0 retires it at once).
    pub overlap_seconds: Option<u64>,
}

/// One try at delivering.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptDto {
    pub attempt: i64,
    /// The receiver's HTTP status; absent when no answer came (refused, timed out, reset).
    pub status_code: Option<i64>,
    pub duration_ms: i64,
    /// The first bytes (at most 1024) of the receiver's answer.
    pub response: Option<String>,
    pub error: Option<String>,
    pub attempted_at: String,
}

impl From<&AttemptView> for AttemptDto {
    fn from(a: &AttemptView) -> Self {
        Self {
            attempt: a.attempt,
            status_code: a.status_code,
            duration_ms: a.duration_ms,
            response: a.response.clone(),
            error: a.error.clone(),
            attempted_at: iso_time(a.attempted_at),
        }
    }
}

/// One event to one endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryDto {
    pub delivery_id: String,
    pub webhook_id: String,
    /// Also the `webhook-id` header: the receiver's de-duplication key.
    pub event_id: String,
    pub event_type: String,
    /// `PENDING` (not tried yet), `FAILED` (retried at `nextAttemptAt`), `SUCCEEDED`,
    /// or `DEAD` (given up after the retry window).
    pub status: String,
    pub next_attempt_at: Option<String>,
    pub event_created_at: String,
    pub created_at: String,
    pub delivered_at: Option<String>,
    pub attempts: Vec<AttemptDto>,
}

impl From<&DeliveryView> for DeliveryDto {
    fn from(d: &DeliveryView) -> Self {
        Self {
            delivery_id: d.delivery_id.clone(),
            webhook_id: d.webhook_id.clone(),
            event_id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            status: d.status.as_str().into(),
            next_attempt_at: d.next_attempt_at.map(iso_time),
            event_created_at: iso_time(d.event_created_at),
            created_at: iso_time(d.created_at),
            delivered_at: d.delivered_at.map(iso_time),
            attempts: d.attempts.iter().map(AttemptDto::from).collect(),
        }
    }
}

/// One event type of the catalog.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeDto {
    pub event_type: String,
    pub description: String,
    /// `TENANT`: sent to tenant endpoints; `ACCOUNT`: sent to account endpoints.
    pub scope: String,
    /// A whole delivery body: `{eventId, eventType, createdAt, accountId, tenantId, data}`.
    #[schema(value_type = Object)]
    pub example: serde_json::Value,
}

// -- helpers ---------------------------------------------------------------------------------

fn tenant_owner(caller: &Principal) -> ApiResult<KeyOwner> {
    let tenant_id = caller
        .tenant_id
        .clone()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a tenant route ran without a tenant")))?;
    Ok(KeyOwner::Tenant { account_id: caller.account_id.clone(), tenant_id })
}

fn account_owner(caller: &Principal) -> ApiResult<KeyOwner> {
    Ok(KeyOwner::Account { account_id: caller.account_id.clone() })
}

const TENANT_BASE: &str = "/v1/notifications/webhooks";
const ACCOUNT_BASE: &str = "/v1/account/notifications/webhooks";

/// A body that may be absent: empty means defaults.
fn optional_body<T: serde::de::DeserializeOwned + Default>(bytes: &Bytes) -> ApiResult<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|_| ApiError::problem(Problem::bad_request("INVALID_REQUEST_BODY")))?;
    crate::json::refuse_controls(&value)?;
    serde_json::from_value(value).map_err(|_| ApiError::problem(Problem::bad_request("INVALID_REQUEST_BODY")))
}

fn delivery_query(pairs: Vec<(String, String)>) -> ApiResult<DeliveryQuery> {
    let mut q = DeliveryQuery::default();
    for (key, value) in pairs {
        match key.to_ascii_lowercase().as_str() {
            "eventtype" => q.event_type = Some(value),
            "status" => q.status = Some(value),
            "from" => q.from = Some(value),
            "to" => q.to = Some(value),
            "limit" => {
                q.limit = Some(value.trim().parse().map_err(|_| {
                    ApiError::problem(Problem::invalid_field("INVALID_LIMIT", "limit", "Expected 1 to 200."))
                })?)
            }
            _ => {}
        }
    }
    Ok(q)
}

async fn do_create(state: AppState, owner: KeyOwner, base: &str, body: WebhookRequest) -> ApiResult<Response> {
    let created_endpoint = state.engine.create_webhook(&owner, body.into()).await?;
    let location = format!("{base}/{}", created_endpoint.endpoint.webhook_id);
    Ok(created(location, WebhookDto::from(&created_endpoint)))
}

async fn do_list(state: AppState, owner: KeyOwner) -> ApiResult<Json<Vec<WebhookDto>>> {
    Ok(Json(state.engine.webhooks(&owner).await?.iter().map(WebhookDto::from).collect()))
}

async fn do_get(state: AppState, owner: KeyOwner, id: String) -> ApiResult<Json<WebhookDto>> {
    Ok(Json(WebhookDto::from(&state.engine.webhook(&owner, &normalise_id(&id)).await?)))
}

async fn do_update(state: AppState, owner: KeyOwner, id: String, body: WebhookRequest) -> ApiResult<Json<WebhookDto>> {
    Ok(Json(WebhookDto::from(&state.engine.update_webhook(&owner, &normalise_id(&id), body.into()).await?)))
}

async fn do_delete(state: AppState, owner: KeyOwner, id: String) -> ApiResult<StatusCode> {
    state.engine.delete_webhook(&owner, &normalise_id(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn do_rotate(state: AppState, owner: KeyOwner, id: String, body: Bytes) -> ApiResult<Json<WebhookDto>> {
    let request: RotateRequest = optional_body(&body)?;
    let overlap = request.overlap_seconds.map(std::time::Duration::from_secs);
    Ok(Json(WebhookDto::from(&state.engine.rotate_webhook_secret(&owner, &normalise_id(&id), overlap).await?)))
}

async fn do_test(state: AppState, owner: KeyOwner, id: String) -> ApiResult<Response> {
    let delivery = state.engine.ping_webhook(&owner, &normalise_id(&id)).await?;
    Ok((StatusCode::ACCEPTED, Json(DeliveryDto::from(&delivery))).into_response())
}

async fn do_deliveries(
    state: AppState,
    owner: KeyOwner,
    id: String,
    pairs: Vec<(String, String)>,
) -> ApiResult<Json<Vec<DeliveryDto>>> {
    let query = delivery_query(pairs)?;
    let rows = state.engine.webhook_deliveries(&owner, &normalise_id(&id), query).await?;
    Ok(Json(rows.iter().map(DeliveryDto::from).collect()))
}

async fn do_redeliver(state: AppState, owner: KeyOwner, delivery_id: String) -> ApiResult<Response> {
    let delivery_id = normalise_id(&delivery_id);
    state.engine.redeliver_webhook(&owner, &delivery_id).await?;
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({ "deliveryId": delivery_id, "status": "QUEUED" })))
        .into_response())
}

// -- tenant endpoints --------------------------------------------------------------------------

/// Create a webhook endpoint. The signing secret is in this response only.
#[utoipa::path(post, path = "/v1/notifications/webhooks", tag = "Webhooks", security(("bearer" = [])),
    request_body = WebhookRequest, responses(
    (status = 201, body = WebhookDto),
    (status = 400, description = "INVALID_URL, URL_NOT_ALLOWED, EVENTS_REQUIRED, UNKNOWN_EVENT_TYPE, \
        EVENT_TYPE_NOT_AVAILABLE, DESCRIPTION_TOO_LONG, TOO_MANY_WEBHOOKS", body = ErrorEnvelope)))]
pub async fn create_webhook(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<WebhookRequest>,
) -> ApiResult<Response> {
    do_create(state, tenant_owner(&caller)?, TENANT_BASE, body).await
}

/// The tenant's webhook endpoints, oldest first.
#[utoipa::path(get, path = "/v1/notifications/webhooks", tag = "Webhooks", security(("bearer" = [])),
    responses((status = 200, body = [WebhookDto])))]
pub async fn list_webhooks(State(state): State<AppState>, Caller(caller): Caller) -> ApiResult<Json<Vec<WebhookDto>>> {
    do_list(state, tenant_owner(&caller)?).await
}

/// One webhook endpoint.
#[utoipa::path(get, path = "/v1/notifications/webhooks/{webhookId}", tag = "Webhooks", security(("bearer" = [])),
    params(("webhookId" = String, Path)), responses((status = 200, body = WebhookDto),
    (status = 404, description = "WEBHOOK_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn get_webhook(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<WebhookDto>> {
    do_get(state, tenant_owner(&caller)?, id).await
}

/// Replace an endpoint's url, events, description and enabled flag. Enabling an endpoint
/// that Baton disabled clears its failure record.
#[utoipa::path(put, path = "/v1/notifications/webhooks/{webhookId}", tag = "Webhooks", security(("bearer" = [])),
    params(("webhookId" = String, Path)), request_body = WebhookRequest, responses((status = 200, body = WebhookDto),
    (status = 400, description = "As for creation", body = ErrorEnvelope),
    (status = 404, description = "WEBHOOK_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn update_webhook(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<WebhookRequest>,
) -> ApiResult<Json<WebhookDto>> {
    do_update(state, tenant_owner(&caller)?, id, body).await
}

/// Delete an endpoint and its deliveries.
#[utoipa::path(delete, path = "/v1/notifications/webhooks/{webhookId}", tag = "Webhooks", security(("bearer" = [])),
    params(("webhookId" = String, Path)), responses((status = 204),
    (status = 404, description = "WEBHOOK_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    do_delete(state, tenant_owner(&caller)?, id).await
}

/// Issue a new signing secret (in this response only). The previous one keeps signing
/// next to it for the overlap (default 24 h), so receivers can switch without a gap.
#[utoipa::path(post, path = "/v1/notifications/webhooks/{webhookId}/rotate-secret", tag = "Webhooks",
    security(("bearer" = [])), params(("webhookId" = String, Path)), request_body(content = Option<RotateRequest>),
    responses((status = 200, body = WebhookDto), (status = 400, description = "INVALID_OVERLAP", body = ErrorEnvelope),
    (status = 404, description = "WEBHOOK_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<WebhookDto>> {
    do_rotate(state, tenant_owner(&caller)?, id, body).await
}

/// Send a `ping` event to this endpoint only (even while it is disabled).
#[utoipa::path(post, path = "/v1/notifications/webhooks/{webhookId}/test", tag = "Webhooks", security(("bearer" = [])),
    params(("webhookId" = String, Path)), responses((status = 202, body = DeliveryDto),
    (status = 404, description = "WEBHOOK_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn test_webhook(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    do_test(state, tenant_owner(&caller)?, id).await
}

/// The endpoint's deliveries, newest first, with every attempt.
#[utoipa::path(get, path = "/v1/notifications/webhooks/{webhookId}/deliveries", tag = "Webhooks",
    security(("bearer" = [])), params(("webhookId" = String, Path),
        ("eventType" = Option<String>, Query), ("status" = Option<String>, Query, description = "PENDING, FAILED, SUCCEEDED or DEAD"),
        ("from" = Option<String>, Query, description = "Created at or after (ISO-8601 date or date-time)"),
        ("to" = Option<String>, Query, description = "Created before (ISO-8601 date or date-time)"),
        ("limit" = Option<u32>, Query, description = "1 to 200, default 50")),
    responses((status = 200, body = [DeliveryDto]),
    (status = 400, description = "UNKNOWN_EVENT_TYPE, INVALID_STATUS, INVALID_DATE, INVALID_LIMIT", body = ErrorEnvelope),
    (status = 404, description = "WEBHOOK_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Vec<DeliveryDto>>> {
    do_deliveries(state, tenant_owner(&caller)?, id, pairs).await
}

/// Send a delivery again (same body, same `webhook-id`) at the next worker round.
#[utoipa::path(post, path = "/v1/notifications/webhooks/deliveries/{deliveryId}/redeliver", tag = "Webhooks",
    security(("bearer" = [])), params(("deliveryId" = String, Path)), responses((status = 202),
    (status = 404, description = "DELIVERY_NOT_FOUND", body = ErrorEnvelope),
    (status = 409, description = "DELIVERY_IN_PROGRESS", body = ErrorEnvelope)))]
pub async fn redeliver(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(delivery_id): Path<String>,
) -> ApiResult<Response> {
    do_redeliver(state, tenant_owner(&caller)?, delivery_id).await
}

// -- account endpoints -------------------------------------------------------------------------

/// Create an account webhook endpoint (account events such as `tenant.approval_requested`).
#[utoipa::path(post, path = "/v1/account/notifications/webhooks", tag = "Webhooks", security(("bearer" = [])),
    request_body = WebhookRequest, responses((status = 201, body = WebhookDto),
    (status = 400, description = "As for tenant endpoints", body = ErrorEnvelope)))]
pub async fn create_account_webhook(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<WebhookRequest>,
) -> ApiResult<Response> {
    do_create(state, account_owner(&caller)?, ACCOUNT_BASE, body).await
}

/// The account's webhook endpoints.
#[utoipa::path(get, path = "/v1/account/notifications/webhooks", tag = "Webhooks", security(("bearer" = [])),
    responses((status = 200, body = [WebhookDto])))]
pub async fn list_account_webhooks(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> ApiResult<Json<Vec<WebhookDto>>> {
    do_list(state, account_owner(&caller)?).await
}

/// One account webhook endpoint.
#[utoipa::path(get, path = "/v1/account/notifications/webhooks/{webhookId}", tag = "Webhooks",
    security(("bearer" = [])), params(("webhookId" = String, Path)), responses((status = 200, body = WebhookDto),
    (status = 404, description = "WEBHOOK_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn get_account_webhook(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<WebhookDto>> {
    do_get(state, account_owner(&caller)?, id).await
}

/// Replace an account endpoint.
#[utoipa::path(put, path = "/v1/account/notifications/webhooks/{webhookId}", tag = "Webhooks",
    security(("bearer" = [])), params(("webhookId" = String, Path)), request_body = WebhookRequest,
    responses((status = 200, body = WebhookDto), (status = 404, description = "WEBHOOK_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn update_account_webhook(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<WebhookRequest>,
) -> ApiResult<Json<WebhookDto>> {
    do_update(state, account_owner(&caller)?, id, body).await
}

/// Delete an account endpoint.
#[utoipa::path(delete, path = "/v1/account/notifications/webhooks/{webhookId}", tag = "Webhooks",
    security(("bearer" = [])), params(("webhookId" = String, Path)), responses((status = 204),
    (status = 404, description = "WEBHOOK_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn delete_account_webhook(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    do_delete(state, account_owner(&caller)?, id).await
}

/// Rotate an account endpoint's secret.
#[utoipa::path(post, path = "/v1/account/notifications/webhooks/{webhookId}/rotate-secret", tag = "Webhooks",
    security(("bearer" = [])), params(("webhookId" = String, Path)), request_body(content = Option<RotateRequest>),
    responses((status = 200, body = WebhookDto), (status = 404, description = "WEBHOOK_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn rotate_account_secret(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<WebhookDto>> {
    do_rotate(state, account_owner(&caller)?, id, body).await
}

/// Send a `ping` to an account endpoint.
#[utoipa::path(post, path = "/v1/account/notifications/webhooks/{webhookId}/test", tag = "Webhooks",
    security(("bearer" = [])), params(("webhookId" = String, Path)), responses((status = 202, body = DeliveryDto),
    (status = 404, description = "WEBHOOK_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn test_account_webhook(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    do_test(state, account_owner(&caller)?, id).await
}

/// An account endpoint's deliveries.
#[utoipa::path(get, path = "/v1/account/notifications/webhooks/{webhookId}/deliveries", tag = "Webhooks",
    security(("bearer" = [])), params(("webhookId" = String, Path), ("eventType" = Option<String>, Query),
        ("status" = Option<String>, Query), ("from" = Option<String>, Query), ("to" = Option<String>, Query),
        ("limit" = Option<u32>, Query)),
    responses((status = 200, body = [DeliveryDto]), (status = 404, description = "WEBHOOK_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn list_account_deliveries(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Vec<DeliveryDto>>> {
    do_deliveries(state, account_owner(&caller)?, id, pairs).await
}

/// Redeliver one of the account endpoints' deliveries.
#[utoipa::path(post, path = "/v1/account/notifications/webhooks/deliveries/{deliveryId}/redeliver", tag = "Webhooks",
    security(("bearer" = [])), params(("deliveryId" = String, Path)), responses((status = 202),
    (status = 404, description = "DELIVERY_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn redeliver_account(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(delivery_id): Path<String>,
) -> ApiResult<Response> {
    do_redeliver(state, account_owner(&caller)?, delivery_id).await
}

// -- catalog ------------------------------------------------------------------------------------

/// Every event type with what it announces, who receives it and an example body.
#[utoipa::path(get, path = "/v1/notifications/event-types", tag = "Webhooks", security(("bearer" = [])),
    responses((status = 200, body = [EventTypeDto])))]
pub async fn event_types() -> Json<Vec<EventTypeDto>> {
    Json(
        catalog::event_types()
            .into_iter()
            .map(|i| EventTypeDto {
                event_type: i.event_type.as_str().into(),
                description: i.description.into(),
                scope: i.scope.into(),
                example: i.example,
            })
            .collect(),
    )
}
