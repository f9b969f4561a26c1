//! REWARD apps' accounts (SPEC §4.5), reward groups (§4.7) and the catalog (§4.8).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use baton_domain::{Country, Currency, DecimalInput, Problem};
use baton_engine::marketplace::{CatalogSearch, RewardAccountRequest, RewardGroupInput};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

use super::dto::{
    CatalogDto, CatalogSearchParams, DepositRequest, RewardAccountDto, RewardAccountRequestDto, RewardGroupDto,
    RewardGroupRequest,
};
use super::{parse_all, tenant_of, QueryParams};
use crate::auth::Caller;
use crate::dto::ErrorEnvelope;
use crate::error::ApiResult;
use crate::handlers::{created, normalise_id};
use crate::json::{ApiJson, OptionalJson};
use crate::AppState;

/// Open the REWARD app's funding account (zero balance, USD), or record an existing
/// provider account's identifiers.
#[utoipa::path(post, path = "/v1/apps/installed/{appId}/account", tag = "reward accounts", params(("appId" = String, Path)),
    request_body(content = Option<RewardAccountRequestDto>, description = "Optional"), responses(
    (status = 200, body = RewardAccountDto),
    (status = 400, description = "NOT_A_REWARD_APP, INVALID_CUSTOMER_IDENTIFIER, INVALID_ACCOUNT_IDENTIFIER", body = ErrorEnvelope),
    (status = 404, description = "APP_NOT_INSTALLED", body = ErrorEnvelope),
    (status = 409, description = "ACCOUNT_ALREADY_EXISTS", body = ErrorEnvelope)))]
pub async fn create_account(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(app_id): Path<String>,
    OptionalJson(body): OptionalJson<RewardAccountRequestDto>,
) -> ApiResult<Json<RewardAccountDto>> {
    let body = body.unwrap_or_default();
    let request = RewardAccountRequest {
        customer_identifier: body.customer_identifier,
        account_identifier: body.account_identifier,
    };
    let account = state.engine.create_reward_account(tenant_of(&caller)?, &app_id, request).await?;
    Ok(Json((&account).into()))
}

/// The REWARD app's funding account and balance.
#[utoipa::path(get, path = "/v1/apps/installed/{appId}/account", tag = "reward accounts", params(("appId" = String, Path)), responses(
    (status = 200, body = RewardAccountDto),
    (status = 400, description = "NOT_A_REWARD_APP", body = ErrorEnvelope),
    (status = 404, description = "APP_NOT_INSTALLED, ACCOUNT_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn get_account(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(app_id): Path<String>,
) -> ApiResult<Json<RewardAccountDto>> {
    Ok(Json((&state.engine.reward_account(tenant_of(&caller)?, &app_id).await?).into()))
}

/// Reads a required, positive decimal field: `AMOUNT_REQUIRED` / `INVALID_AMOUNT`.
fn amount_field(value: Option<Value>) -> Result<Decimal, Problem> {
    let value = match value {
        Some(Value::String(s)) if s.trim().is_empty() => None,
        other => other,
    };
    let value = value.ok_or_else(|| Problem::invalid_field("AMOUNT_REQUIRED", "amount", "{field} is required."))?;
    DecimalInput::deserialize(value).map(|d| d.0).map_err(|_| {
        Problem::invalid_field("INVALID_AMOUNT", "amount", "{field} must be a decimal number (e.g. 100.00).")
    })
}

/// Add funds to the REWARD app's account (`amount` > 0, at most 2 decimals).
#[utoipa::path(post, path = "/v1/apps/installed/{appId}/deposit-funds", tag = "reward accounts", params(("appId" = String, Path)),
    request_body = DepositRequest, responses(
    (status = 200, body = RewardAccountDto),
    (status = 400, description = "AMOUNT_REQUIRED, INVALID_AMOUNT, INVALID_AMOUNT_PRECISION, NOT_A_REWARD_APP", body = ErrorEnvelope),
    (status = 404, description = "APP_NOT_INSTALLED, ACCOUNT_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn deposit_funds(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(app_id): Path<String>,
    ApiJson(body): ApiJson<DepositRequest>,
) -> ApiResult<Json<RewardAccountDto>> {
    let amount = amount_field(body.amount)?;
    Ok(Json((&state.engine.deposit_funds(tenant_of(&caller)?, &app_id, amount).await?).into()))
}

fn group_input(body: RewardGroupRequest) -> RewardGroupInput {
    RewardGroupInput { name: body.name, rewards: body.rewards }
}

/// Create a reward group. Every reward must be offered by an installed REWARD app.
#[utoipa::path(post, path = "/v1/reward-groups", tag = "reward groups", request_body = RewardGroupRequest, responses(
    (status = 201, body = RewardGroupDto),
    (status = 400, description = "REWARD_GROUP_NAME_REQUIRED, INVALID_REWARD_GROUP_NAME, REWARDS_REQUIRED, INVALID_REWARDS, INVALID_REWARD_ENTRY, REWARD_ID_REQUIRED, REWARD_ENABLED_REQUIRED, DUPLICATE_REWARD, REWARD_NOT_FOUND", body = ErrorEnvelope),
    (status = 409, description = "REWARD_GROUP_NAME_ALREADY_EXISTS", body = ErrorEnvelope)))]
pub async fn create_reward_group(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<RewardGroupRequest>,
) -> ApiResult<Response> {
    let group = state.engine.create_reward_group(tenant_of(&caller)?, group_input(body)).await?;
    Ok(created(format!("/v1/reward-groups/{}", group.reward_group_id), RewardGroupDto::from(&group)))
}

/// The tenant's reward groups, oldest first.
#[utoipa::path(get, path = "/v1/reward-groups", tag = "reward groups", responses((status = 200, body = [RewardGroupDto])))]
pub async fn list_reward_groups(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> ApiResult<Json<Vec<RewardGroupDto>>> {
    Ok(Json(state.engine.reward_groups(tenant_of(&caller)?).await?.iter().map(Into::into).collect()))
}

/// One reward group.
#[utoipa::path(get, path = "/v1/reward-groups/{rewardGroupId}", tag = "reward groups", params(("rewardGroupId" = String, Path)),
    responses((status = 200, body = RewardGroupDto), (status = 404, description = "REWARD_GROUP_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn get_reward_group(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<RewardGroupDto>> {
    Ok(Json((&state.engine.reward_group(tenant_of(&caller)?, &normalise_id(&id)).await?).into()))
}

/// Rename a reward group and/or replace its rewards (an absent field keeps its value).
#[utoipa::path(put, path = "/v1/reward-groups/{rewardGroupId}", tag = "reward groups", params(("rewardGroupId" = String, Path)),
    request_body = RewardGroupRequest, responses(
    (status = 200, body = RewardGroupDto),
    (status = 400, description = "As for create", body = ErrorEnvelope),
    (status = 404, description = "REWARD_GROUP_NOT_FOUND", body = ErrorEnvelope),
    (status = 409, description = "REWARD_GROUP_NAME_ALREADY_EXISTS", body = ErrorEnvelope)))]
pub async fn update_reward_group(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RewardGroupRequest>,
) -> ApiResult<Json<RewardGroupDto>> {
    let group = state.engine.update_reward_group(tenant_of(&caller)?, &normalise_id(&id), group_input(body)).await?;
    Ok(Json((&group).into()))
}

/// Delete a reward group, unless a published payout scheme draft uses it.
#[utoipa::path(delete, path = "/v1/reward-groups/{rewardGroupId}", tag = "reward groups", params(("rewardGroupId" = String, Path)), responses(
    (status = 204),
    (status = 400, description = "REWARD_GROUP_IN_USE", body = ErrorEnvelope),
    (status = 404, description = "REWARD_GROUP_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn delete_reward_group(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.engine.delete_reward_group(tenant_of(&caller)?, &normalise_id(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The active rewards of the tenant's installed REWARD apps.
#[utoipa::path(get, path = "/v1/catalog", tag = "catalog", responses((status = 200, body = CatalogDto)))]
pub async fn catalog(State(state): State<AppState>, Caller(caller): Caller) -> ApiResult<Json<CatalogDto>> {
    Ok(Json(CatalogDto::new(&state.engine.catalog(tenant_of(&caller)?).await?)))
}

fn parse_search(params: &QueryParams) -> Result<CatalogSearch, Vec<Problem>> {
    let mut problems = Vec::new();
    let countries = parse_all(params.csv(&["countries", "country"]), |v| Country::parse(v, "countries"), &mut problems);
    let currencies =
        parse_all(params.csv(&["currencies", "currency"]), |v| Currency::parse(v, "currencies"), &mut problems);
    let amount = params.single(&["amount"]).and_then(|text| {
        let parsed = serde_json::from_value::<DecimalInput>(Value::String(text.clone())).map(|d| d.0);
        match parsed {
            Ok(a) if a <= Decimal::ZERO => problems.push(
                Problem::invalid_field("INVALID_AMOUNT", "amount", "{field} must be greater than zero.")
                    .detail("value", text.chars().take(32).collect::<String>()),
            ),
            Ok(a) if a.normalize().scale() > 2 => problems.push(
                Problem::invalid_field("INVALID_AMOUNT_PRECISION", "amount", "{field} has more than {limit} decimals.")
                    .detail("limit", "2"),
            ),
            Ok(a) => return Some(a),
            Err(_) => problems.push(
                Problem::invalid_field("INVALID_AMOUNT", "amount", "{field} must be a decimal number (e.g. 15.00).")
                    .detail("value", text.chars().take(32).collect::<String>()),
            ),
        }
        None
    });
    let show_inactive = match params.single(&["showInactive"]) {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => true,
        Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => false,
        Some(v) => {
            problems.push(
                Problem::invalid_field("INVALID_SHOW_INACTIVE", "showInactive", "{field} must be true or false.")
                    .detail("value", v.chars().take(32).collect::<String>()),
            );
            false
        }
    };
    let search = CatalogSearch {
        app_id: params.single(&["appId"]),
        brand_name: params.single(&["brandName"]),
        countries,
        currencies,
        amount,
        show_inactive,
    };
    if problems.is_empty() {
        Ok(search)
    } else {
        Err(problems)
    }
}

/// Search one installed REWARD app's catalogue. Brand: case-insensitive substring;
/// countries: any overlap; currencies: membership; amount: the `Exact` rule. Empty
/// parameters are ignored.
#[utoipa::path(get, path = "/v1/catalog/search", tag = "catalog", params(CatalogSearchParams), responses(
    (status = 200, body = CatalogDto),
    (status = 400, description = "APP_ID_IS_REQUIRED, APP_NOT_FOUND, NOT_A_REWARD_APP, INVALID_COUNTRY, INVALID_CURRENCY, INVALID_AMOUNT, INVALID_AMOUNT_PRECISION, INVALID_SHOW_INACTIVE", body = ErrorEnvelope)))]
pub async fn search_catalog(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<CatalogDto>> {
    let search = parse_search(&QueryParams::new(pairs))?;
    Ok(Json(CatalogDto::new(&state.engine.search_catalog(tenant_of(&caller)?, &search).await?)))
}
