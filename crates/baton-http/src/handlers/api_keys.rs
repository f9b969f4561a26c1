//! Account and tenant API keys (SPEC §4.1, §4.3).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use baton_domain::Problem;
use baton_engine::{KeyOwner, Principal};

use super::{created, normalise_id};
use crate::auth::Caller;
use crate::dto::{ApiKeyDto, KeyRequestDto};
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::AppState;

fn account_owner(caller: &Principal) -> KeyOwner {
    KeyOwner::Account { account_id: caller.account_id.clone() }
}

/// The owner named by `/v1/tenant/{tenantId}/keys`: any tenant of the caller's
/// account for account tokens, only the caller's own tenant for tenant tokens.
fn tenant_owner(caller: &Principal, tenant_id: &str) -> Result<KeyOwner, Problem> {
    let tenant_id = normalise_id(tenant_id);
    if caller.tenant_id.as_deref().is_some_and(|own| own != tenant_id) {
        return Err(
            Problem::forbidden("TENANT_ID_MISMATCH").message("The path's tenant is not the access token's tenant.")
        );
    }
    Ok(KeyOwner::Tenant { account_id: caller.account_id.clone(), tenant_id })
}

async fn create(state: AppState, owner: KeyOwner, body: KeyRequestDto) -> ApiResult<Response> {
    let location = match &owner {
        KeyOwner::Account { .. } => "/v1/account/keys".to_string(),
        KeyOwner::Tenant { tenant_id, .. } => format!("/v1/tenant/{tenant_id}/keys"),
    };
    let key = state.engine.create_api_key(owner, body.into()).await?;
    Ok(created(format!("{location}/{}", key.key.public_key), ApiKeyDto::from(&key)))
}

/// Create an account API key. The private key is in this response only.
#[utoipa::path(post, path = "/v1/account/keys", tag = "api-keys", request_body = KeyRequestDto,
    responses((status = 201, body = ApiKeyDto), (status = 400, description = "INVALID_ROLE, ROLES_REQUIRED", body = crate::dto::ErrorEnvelope)))]
pub async fn create_account_key(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<KeyRequestDto>,
) -> ApiResult<Response> {
    create(state, account_owner(&caller), body).await
}

/// List the account's API keys (never their private keys).
#[utoipa::path(get, path = "/v1/account/keys", tag = "api-keys", responses((status = 200, body = [ApiKeyDto])))]
pub async fn list_account_keys(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> ApiResult<Json<Vec<ApiKeyDto>>> {
    Ok(Json(state.engine.api_keys(account_owner(&caller)).await?.iter().map(Into::into).collect()))
}

/// One account API key.
#[utoipa::path(get, path = "/v1/account/keys/{publicKey}", tag = "api-keys", params(("publicKey" = String, Path)),
    responses((status = 200, body = ApiKeyDto), (status = 404, description = "API_KEY_NOT_FOUND", body = crate::dto::ErrorEnvelope)))]
pub async fn get_account_key(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(public_key): Path<String>,
) -> ApiResult<Json<ApiKeyDto>> {
    Ok(Json((&state.engine.api_key(account_owner(&caller), &normalise_id(&public_key)).await?).into()))
}

/// Rename an account API key or replace its roles.
#[utoipa::path(put, path = "/v1/account/keys/{publicKey}", tag = "api-keys", params(("publicKey" = String, Path)), request_body = KeyRequestDto,
    responses((status = 200, body = ApiKeyDto), (status = 400, description = "INVALID_ROLE, LAST_ADMIN_KEY", body = crate::dto::ErrorEnvelope)))]
pub async fn update_account_key(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(public_key): Path<String>,
    ApiJson(body): ApiJson<KeyRequestDto>,
) -> ApiResult<Json<ApiKeyDto>> {
    Ok(Json(
        (&state.engine.update_api_key(account_owner(&caller), &normalise_id(&public_key), body.into()).await?).into(),
    ))
}

/// Delete an account API key; its tokens are refused from then on.
#[utoipa::path(delete, path = "/v1/account/keys/{publicKey}", tag = "api-keys", params(("publicKey" = String, Path)),
    responses((status = 204), (status = 400, description = "LAST_ADMIN_KEY", body = crate::dto::ErrorEnvelope)))]
pub async fn delete_account_key(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(public_key): Path<String>,
) -> ApiResult<StatusCode> {
    state.engine.delete_api_key(account_owner(&caller), &normalise_id(&public_key)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create a tenant API key. The private key is in this response only.
#[utoipa::path(post, path = "/v1/tenant/{tenantId}/keys", tag = "api-keys", params(("tenantId" = String, Path)), request_body = KeyRequestDto,
    responses((status = 201, body = ApiKeyDto), (status = 400, description = "INVALID_ROLE, ROLES_REQUIRED", body = crate::dto::ErrorEnvelope)))]
pub async fn create_tenant_key(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(tenant_id): Path<String>,
    ApiJson(body): ApiJson<KeyRequestDto>,
) -> ApiResult<Response> {
    create(state, tenant_owner(&caller, &tenant_id)?, body).await
}

/// List a tenant's API keys.
#[utoipa::path(get, path = "/v1/tenant/{tenantId}/keys", tag = "api-keys", params(("tenantId" = String, Path)), responses((status = 200, body = [ApiKeyDto])))]
pub async fn list_tenant_keys(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(tenant_id): Path<String>,
) -> ApiResult<Json<Vec<ApiKeyDto>>> {
    Ok(Json(state.engine.api_keys(tenant_owner(&caller, &tenant_id)?).await?.iter().map(Into::into).collect()))
}

/// One tenant API key.
#[utoipa::path(get, path = "/v1/tenant/{tenantId}/keys/{publicKey}", tag = "api-keys", params(("tenantId" = String, Path), ("publicKey" = String, Path)),
    responses((status = 200, body = ApiKeyDto), (status = 404, description = "API_KEY_NOT_FOUND", body = crate::dto::ErrorEnvelope)))]
pub async fn get_tenant_key(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((tenant_id, public_key)): Path<(String, String)>,
) -> ApiResult<Json<ApiKeyDto>> {
    Ok(Json((&state.engine.api_key(tenant_owner(&caller, &tenant_id)?, &normalise_id(&public_key)).await?).into()))
}

/// Rename a tenant API key or replace its roles (account tokens only).
#[utoipa::path(put, path = "/v1/tenant/{tenantId}/keys/{publicKey}", tag = "api-keys", params(("tenantId" = String, Path), ("publicKey" = String, Path)), request_body = KeyRequestDto,
    responses((status = 200, body = ApiKeyDto)))]
pub async fn update_tenant_key(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((tenant_id, public_key)): Path<(String, String)>,
    ApiJson(body): ApiJson<KeyRequestDto>,
) -> ApiResult<Json<ApiKeyDto>> {
    let owner = tenant_owner(&caller, &tenant_id)?;
    Ok(Json((&state.engine.update_api_key(owner, &normalise_id(&public_key), body.into()).await?).into()))
}

/// Delete a tenant API key; its tokens are refused from then on.
#[utoipa::path(delete, path = "/v1/tenant/{tenantId}/keys/{publicKey}", tag = "api-keys", params(("tenantId" = String, Path), ("publicKey" = String, Path)),
    responses((status = 204), (status = 404, description = "API_KEY_NOT_FOUND", body = crate::dto::ErrorEnvelope)))]
pub async fn delete_tenant_key(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((tenant_id, public_key)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state.engine.delete_api_key(tenant_owner(&caller, &tenant_id)?, &normalise_id(&public_key)).await?;
    Ok(StatusCode::NO_CONTENT)
}
