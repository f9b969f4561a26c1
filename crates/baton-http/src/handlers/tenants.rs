//! Tenants and their approval (SPEC §4.2).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use baton_domain::{Problem, TenantStatus};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{created, normalise_id};
use crate::auth::Caller;
use crate::dto::{DecisionRequest, TenantDto, TenantRequest};
use crate::error::ApiResult;
use crate::json::{ApiJson, OptionalJson};
use crate::AppState;

#[derive(Debug, Deserialize, IntoParams)]
pub struct TenantFilter {
    /// `ACTIVE`, `PENDING_APPROVAL` or `REJECTED`.
    pub status: Option<String>,
}

/// Create a tenant (flat documented form, or `{name, address}`).
#[utoipa::path(post, path = "/v1/account/tenants", tag = "tenants", request_body = TenantRequest, responses(
    (status = 201, body = TenantDto),
    (status = 402, description = "LICENSE_LIMIT_EXCEEDED", body = crate::dto::ErrorEnvelope),
    (status = 409, description = "TENANT_NAME_ALREADY_EXISTS", body = crate::dto::ErrorEnvelope)))]
pub async fn create_tenant(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<TenantRequest>,
) -> ApiResult<Response> {
    let input = body.parse()?;
    let tenant = state.engine.create_tenant(&caller.account_id, input).await?;
    Ok(created(format!("/v1/account/tenants/{}", tenant.tenant_id), TenantDto::from(&tenant)))
}

/// List the account's tenants, optionally by status.
#[utoipa::path(get, path = "/v1/account/tenants", tag = "tenants", params(TenantFilter), responses((status = 200, body = [TenantDto])))]
pub async fn list_tenants(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(filter): Query<TenantFilter>,
) -> ApiResult<Json<Vec<TenantDto>>> {
    let status = match filter.status.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(s.parse::<TenantStatus>().map_err(|_| {
            Problem::invalid_field(
                "INVALID_TENANT_STATUS",
                "status",
                "{field} must be ACTIVE, PENDING_APPROVAL or REJECTED.",
            )
        })?),
    };
    Ok(Json(state.engine.tenants(&caller.account_id, status).await?.iter().map(Into::into).collect()))
}

/// One tenant of the account.
#[utoipa::path(get, path = "/v1/account/tenants/{tenantId}", tag = "tenants", params(("tenantId" = String, Path)),
    responses((status = 200, body = TenantDto), (status = 404, description = "TENANT_NOT_FOUND", body = crate::dto::ErrorEnvelope)))]
pub async fn get_tenant(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(tenant_id): Path<String>,
) -> ApiResult<Json<TenantDto>> {
    Ok(Json((&state.engine.tenant(&caller.account_id, &normalise_id(&tenant_id)).await?).into()))
}

/// Rename a tenant or change its address.
#[utoipa::path(put, path = "/v1/account/tenants/{tenantId}", tag = "tenants", params(("tenantId" = String, Path)), request_body = TenantRequest,
    responses((status = 200, body = TenantDto), (status = 409, description = "TENANT_NAME_ALREADY_EXISTS", body = crate::dto::ErrorEnvelope)))]
pub async fn update_tenant(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(tenant_id): Path<String>,
    ApiJson(body): ApiJson<TenantRequest>,
) -> ApiResult<Json<TenantDto>> {
    let input = body.parse()?;
    Ok(Json((&state.engine.update_tenant(&caller.account_id, &normalise_id(&tenant_id), input).await?).into()))
}

/// Delete a tenant that is pending approval or rejected.
#[utoipa::path(delete, path = "/v1/account/tenants/{tenantId}", tag = "tenants", params(("tenantId" = String, Path)),
    responses((status = 204), (status = 400, description = "TENANT_CANNOT_BE_DELETED", body = crate::dto::ErrorEnvelope)))]
pub async fn delete_tenant(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(tenant_id): Path<String>,
) -> ApiResult<StatusCode> {
    state.engine.delete_tenant(&caller.account_id, &normalise_id(&tenant_id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn decide(
    state: AppState,
    caller: Caller,
    tenant_id: String,
    body: OptionalJson<DecisionRequest>,
    approve: bool,
) -> ApiResult<Json<TenantDto>> {
    let reason =
        body.0.and_then(|b| b.reason).map(|r| r.trim().chars().take(500).collect::<String>()).filter(|r| !r.is_empty());
    Ok(Json(
        (&state.engine.decide_tenant(&caller.0.account_id, &normalise_id(&tenant_id), approve, reason).await?).into(),
    ))
}

/// Approve a pending tenant.
#[utoipa::path(post, path = "/v1/account/tenants/{tenantId}/approve", tag = "tenants", params(("tenantId" = String, Path)), request_body(content = DecisionRequest, description = "Optional"),
    responses((status = 200, body = TenantDto), (status = 400, description = "TENANT_NOT_PENDING_APPROVAL", body = crate::dto::ErrorEnvelope)))]
pub async fn approve_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<String>,
    body: OptionalJson<DecisionRequest>,
) -> ApiResult<Json<TenantDto>> {
    decide(state, caller, tenant_id, body, true).await
}

/// Reject a pending tenant.
#[utoipa::path(post, path = "/v1/account/tenants/{tenantId}/reject", tag = "tenants", params(("tenantId" = String, Path)), request_body(content = DecisionRequest, description = "Optional"),
    responses((status = 200, body = TenantDto), (status = 400, description = "TENANT_NOT_PENDING_APPROVAL", body = crate::dto::ErrorEnvelope)))]
pub async fn reject_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<String>,
    body: OptionalJson<DecisionRequest>,
) -> ApiResult<Json<TenantDto>> {
    decide(state, caller, tenant_id, body, false).await
}

/// The caller's own tenant (tenant tokens).
#[utoipa::path(get, path = "/v1/tenant", tag = "tenants", responses((status = 200, body = TenantDto)))]
pub async fn current_tenant(State(state): State<AppState>, Caller(caller): Caller) -> ApiResult<Json<TenantDto>> {
    let tenant_id = caller.tenant_id.clone().unwrap_or_default();
    Ok(Json((&state.engine.tenant(&caller.account_id, &tenant_id).await?).into()))
}
