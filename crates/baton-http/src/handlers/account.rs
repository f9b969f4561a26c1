//! The account and its licence (SPEC §4.1, §5.6).

use axum::extract::State;
use axum::Json;

use crate::auth::Caller;
use crate::dto::{AccountDto, AccountUpdateRequest, LicenseDto, LicenseHistoryEntry};
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::AppState;

/// The caller's account, with its current licence.
#[utoipa::path(get, path = "/v1/account", tag = "account", responses((status = 200, body = AccountDto)))]
pub async fn get_account(State(state): State<AppState>, Caller(caller): Caller) -> ApiResult<Json<AccountDto>> {
    Ok(Json((&state.engine.account(&caller.account_id).await?).into()))
}

/// Update the company name, billing contact and the tenant approval setting.
#[utoipa::path(put, path = "/v1/account", tag = "account", request_body = AccountUpdateRequest,
    responses((status = 200, body = AccountDto), (status = 400, description = "NO_TENANT_APPROVER, FIELD_REQUIRED, INVALID_COUNTRY", body = crate::dto::ErrorEnvelope)))]
pub async fn update_account(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<AccountUpdateRequest>,
) -> ApiResult<Json<AccountDto>> {
    let update = body.parse()?;
    Ok(Json((&state.engine.update_account(&caller.account_id, update).await?).into()))
}

/// The account's current licence (`-1` = unlimited).
#[utoipa::path(get, path = "/v1/account/license", tag = "account", responses((status = 200, body = LicenseDto)))]
pub async fn get_license(State(state): State<AppState>, Caller(caller): Caller) -> ApiResult<Json<LicenseDto>> {
    Ok(Json((&state.engine.license(&caller.account_id).await?).into()))
}

/// Every licence the account has held, oldest first.
#[utoipa::path(get, path = "/v1/account/license-history", tag = "account", responses((status = 200, body = [LicenseHistoryEntry])))]
pub async fn license_history(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> ApiResult<Json<Vec<LicenseHistoryEntry>>> {
    Ok(Json(state.engine.license_history(&caller.account_id).await?.iter().map(Into::into).collect()))
}
