//! The marketplace and installed apps (SPEC §4.4, §4.5), with the documented aliases
//! (SPEC §6: `/v1/marketplace/installed/…` and unversioned `/marketplace/…`).

use axum::extract::{Path, Query, State};
use axum::Json;
use baton_connectors::{MarketplaceFilter, Network};
use baton_domain::{AppType, Direction, Problem, TransactionType};
use serde_json::Value;

use super::dto::{AppDto, InstalledAppDto, InstalledAppSummaryDto, MarketplaceFilterParams};
use super::{parse_all, tenant_of, QueryParams};
use crate::auth::Caller;
use crate::dto::ErrorEnvelope;
use crate::error::ApiResult;
use crate::json::{ApiJson, OptionalJson};
use crate::AppState;

const APP_TYPE: &[&str] = &["appType", "appTypes"];
const DIRECTION: &[&str] = &["direction", "directions"];
const PAYMENT_METHODS: &[&str] = &["paymentMethods", "paymentMethod"];
const TRANSACTION_TYPE: &[&str] = &["transactionType", "transactionTypes"];
const NETWORKS: &[&str] = &["networks", "network"];

fn payment_method(value: &str) -> Result<String, Problem> {
    if baton_connectors::registry().iter().any(|a| a.method(value).is_some()) {
        Ok(value.to_string())
    } else {
        Err(Problem::invalid_field(
            "INVALID_PAYMENT_METHOD",
            "paymentMethods",
            "{field}: no app of the marketplace offers the payment method {value}.",
        )
        .detail("value", value.chars().take(32).collect::<String>()))
    }
}

/// Parses the filters (SPEC §4.4): csv, OR within a filter, AND across filters; every
/// unknown value is reported with its filter as `field`.
fn parse_filter(params: &QueryParams) -> Result<MarketplaceFilter, Vec<Problem>> {
    let mut problems = Vec::new();
    let filter = MarketplaceFilter {
        app_types: parse_all(params.csv(APP_TYPE), |v| AppType::parse(v, "appType"), &mut problems),
        directions: parse_all(params.csv(DIRECTION), |v| Direction::parse(v, "direction"), &mut problems),
        payment_methods: parse_all(params.csv(PAYMENT_METHODS), payment_method, &mut problems),
        transaction_types: parse_all(
            params.csv(TRANSACTION_TYPE),
            |v| TransactionType::parse(v, "transactionType"),
            &mut problems,
        ),
        networks: parse_all(params.csv(NETWORKS), |v| Network::parse(v, "networks"), &mut problems),
    };
    if problems.is_empty() {
        Ok(filter)
    } else {
        Err(problems)
    }
}

/// The filters of a `POST` body (`{"appType": "REWARD", "networks": ["VISA"]}`) as
/// query pairs: strings are csv, arrays list values.
fn body_filters(body: Option<Value>) -> ApiResult<Vec<(String, String)>> {
    let Some(body) = body else { return Ok(Vec::new()) };
    let Value::Object(map) = body else {
        return Err(Problem::bad_request("INVALID_REQUEST_BODY")
            .message("The filters must be a JSON object.")
            .detail("field", "")
            .into());
    };
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut pairs = Vec::new();
    for (key, value) in map {
        match value {
            Value::Null => {}
            Value::Array(items) => pairs.extend(items.iter().filter(|v| !v.is_null()).map(|v| (key.clone(), text(v)))),
            other => pairs.push((key, text(&other))),
        }
    }
    Ok(pairs)
}

async fn list(state: AppState, caller: Caller, pairs: Vec<(String, String)>) -> ApiResult<Json<Vec<AppDto>>> {
    let filter = parse_filter(&QueryParams::new(pairs))?;
    let apps = state.engine.marketplace_apps(tenant_of(&caller.0)?, &filter).await?;
    Ok(Json(apps.iter().map(Into::into).collect()))
}

/// The apps of the marketplace, filtered (csv values; OR within a filter, AND across).
#[utoipa::path(get, path = "/v1/marketplace/apps", tag = "marketplace", params(MarketplaceFilterParams), responses(
    (status = 200, body = [AppDto]),
    (status = 400, description = "INVALID_APP_TYPE, INVALID_DIRECTION, INVALID_PAYMENT_METHOD, INVALID_TRANSACTION_TYPE, INVALID_NETWORK (metadata.field names the filter)", body = ErrorEnvelope)))]
pub async fn list_apps(
    State(state): State<AppState>,
    caller: Caller,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Vec<AppDto>>> {
    list(state, caller, pairs).await
}

/// The apps of the marketplace, as the tutorial calls it (`POST`); filters in the query
/// and/or as a JSON object (string csv or arrays).
#[utoipa::path(post, path = "/v1/marketplace/apps", tag = "marketplace", params(MarketplaceFilterParams),
    request_body(content = Option<MarketplaceFilterParams>, description = "Optional filters"), responses(
    (status = 200, body = [AppDto]),
    (status = 400, description = "INVALID_APP_TYPE, INVALID_DIRECTION, INVALID_PAYMENT_METHOD, INVALID_TRANSACTION_TYPE, INVALID_NETWORK", body = ErrorEnvelope)))]
pub async fn list_apps_post(
    State(state): State<AppState>,
    caller: Caller,
    Query(mut pairs): Query<Vec<(String, String)>>,
    OptionalJson(body): OptionalJson<Value>,
) -> ApiResult<Json<Vec<AppDto>>> {
    pairs.extend(body_filters(body)?);
    list(state, caller, pairs).await
}

async fn one(state: AppState, caller: Caller, app_id: String) -> ApiResult<Json<AppDto>> {
    Ok(Json((&state.engine.marketplace_app(tenant_of(&caller.0)?, &app_id).await?).into()))
}

/// One app of the marketplace (`braintree-sdk`, `SANDBOX_CARD`, … any case).
#[utoipa::path(get, path = "/v1/marketplace/apps/{appId}", tag = "marketplace", params(("appId" = String, Path)),
    responses((status = 200, body = AppDto), (status = 404, description = "APP_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn get_app(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
) -> ApiResult<Json<AppDto>> {
    one(state, caller, app_id).await
}

/// One app of the marketplace (`POST`, as the tutorial calls it).
#[utoipa::path(post, path = "/v1/marketplace/apps/{appId}", tag = "marketplace", params(("appId" = String, Path)),
    responses((status = 200, body = AppDto), (status = 404, description = "APP_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn get_app_post(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
) -> ApiResult<Json<AppDto>> {
    one(state, caller, app_id).await
}

async fn install(
    state: AppState,
    caller: Caller,
    app_id: String,
    body: Option<Value>,
) -> ApiResult<Json<InstalledAppDto>> {
    let tenant_id = tenant_of(&caller.0)?;
    let view = state.engine.install_app(&caller.0.account_id, tenant_id, &app_id, body.as_ref()).await?;
    Ok(Json((&view).into()))
}

/// Install an app, optionally with its configuration (validated as for configuration).
#[utoipa::path(post, path = "/v1/marketplace/apps/{appId}/install", tag = "marketplace", params(("appId" = String, Path)),
    request_body(content = Option<Object>, description = "Optional: the app's configuration"), responses(
    (status = 200, body = InstalledAppDto),
    (status = 400, description = "INVALID_CONFIGURATION, CONFIGURATION_FIELD_REQUIRED, INVALID_CONFIGURATION_FIELD, …", body = ErrorEnvelope),
    (status = 402, description = "LICENSE_LIMIT_EXCEEDED (maxCollectApps / maxPayoutApps)", body = ErrorEnvelope),
    (status = 404, description = "APP_NOT_FOUND", body = ErrorEnvelope),
    (status = 409, description = "APP_ALREADY_INSTALLED", body = ErrorEnvelope)))]
pub async fn install_app(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    OptionalJson(body): OptionalJson<Value>,
) -> ApiResult<Json<InstalledAppDto>> {
    install(state, caller, app_id, body).await
}

/// The tenant's installed apps, in installation order.
#[utoipa::path(get, path = "/v1/apps/installed", tag = "installed apps", responses((status = 200, body = [InstalledAppSummaryDto])))]
pub async fn installed_apps(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<InstalledAppSummaryDto>>> {
    let apps = state.engine.installed_apps(tenant_of(&caller.0)?).await?;
    Ok(Json(apps.iter().map(Into::into).collect()))
}

/// One installed app with its configuration (secrets masked as `********`).
#[utoipa::path(get, path = "/v1/apps/installed/{appId}", tag = "installed apps", params(("appId" = String, Path)),
    responses((status = 200, body = InstalledAppDto), (status = 404, description = "APP_NOT_INSTALLED", body = ErrorEnvelope)))]
pub async fn installed_app(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
) -> ApiResult<Json<InstalledAppDto>> {
    Ok(Json((&state.engine.installed_app(tenant_of(&caller.0)?, &app_id).await?).into()))
}

async fn configure(state: AppState, caller: Caller, app_id: String, body: Value) -> ApiResult<Json<Value>> {
    Ok(Json(state.engine.configure_app(tenant_of(&caller.0)?, &app_id, &body).await?))
}

/// Configure an installed app: validated against the app's schema (one error per bad
/// field, `metadata.field` = its JSON path). Secrets are encrypted at rest and masked
/// on output; sending `********` back keeps a stored secret. Returns the configuration.
#[utoipa::path(post, path = "/v1/apps/installed/{appId}/configuration", tag = "installed apps", params(("appId" = String, Path)),
    request_body(content = Object, description = "The app's configuration"), responses(
    (status = 200, description = "The configuration, secrets masked", body = Object),
    (status = 400, description = "INVALID_CONFIGURATION, CONFIGURATION_FIELD_REQUIRED, INVALID_CONFIGURATION_FIELD, INVALID_CURRENCY, INVALID_COUNTRY, DUPLICATE_MERCHANT_ACCOUNT_SETTING", body = ErrorEnvelope),
    (status = 404, description = "APP_NOT_INSTALLED", body = ErrorEnvelope)))]
pub async fn configure_app(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<Value>> {
    configure(state, caller, app_id, body).await
}

async fn uninstall(state: AppState, caller: Caller, app_id: String) -> ApiResult<Json<AppDto>> {
    Ok(Json((&state.engine.uninstall_app(tenant_of(&caller.0)?, &app_id).await?).into()))
}

/// Uninstall an app (its configuration is deleted). Returns the marketplace app.
#[utoipa::path(post, path = "/v1/apps/installed/{appId}/uninstall", tag = "installed apps", params(("appId" = String, Path)), responses(
    (status = 200, body = AppDto),
    (status = 400, description = "APP_IN_USE (referenced by a scheme draft)", body = ErrorEnvelope),
    (status = 404, description = "APP_NOT_INSTALLED", body = ErrorEnvelope)))]
pub async fn uninstall_app(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
) -> ApiResult<Json<AppDto>> {
    uninstall(state, caller, app_id).await
}
