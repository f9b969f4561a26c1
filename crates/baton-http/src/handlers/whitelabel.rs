//! The white-label settings of a tenant's checkout: the theme template (SPEC §4.11)
//! and the delivery settings of pay-by-link messages (SPEC §5.7: "SMTP and SMS
//! providers are pluggable per tenant").

use axum::extract::State;
use axum::Json;
use baton_domain::Role;
use baton_engine::pay_by_link::delivery::{
    DeliverySettingsInput, DeliverySettingsView, EmailSettingsInput, SmsSettingsInput,
};
use baton_engine::theme::{CcOptionsInput, CheckoutTheme, InputFieldStyleInput, StyleEntry, StyleInput, ThemeInput};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::orders::tenant;
use crate::auth::Caller;
use crate::dto::{iso_time, ErrorEnvelope};
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::AppState;

pub const WHITELABEL_READ: &[Role] = &[Role::TenantAppRead];
pub const WHITELABEL_WRITE: &[Role] = &[Role::TenantAppWrite];

/// The OpenAPI document of this area, merged into the whole API's (`docs.rs`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(get_theme, put_theme, get_delivery_settings, put_delivery_settings),
    components(schemas(
        ThemeRequest,
        InputFieldStyleDto,
        StyleDto,
        CcOptionsDto,
        ThemeDto,
        DeliverySettingsRequest,
        EmailSettingsDto,
        SmsSettingsDto,
        DeliverySettingsDto
    ))
)]
pub struct WhiteLabelApi;

// -- theme template ----------------------------------------------------------------------

/// One style of a card field.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StyleDto {
    /// e.g. `font-size`; see SPEC §4.11 for the accepted keys.
    pub key: Option<String>,
    /// A plain CSS value (`16px`); numbers are accepted.
    #[schema(value_type = Option<String>)]
    pub value: Option<Value>,
}

/// The styles of one card field.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InputFieldStyleDto {
    /// `input`, `.number`, `.cvv` (also `.css`), `.expiration-month` or `.expiration-year`.
    pub style_name: Option<String>,
    pub styles: Option<Vec<StyleDto>>,
}

/// Which optional card details the checkout collects.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CcOptionsDto {
    /// Default `true`.
    pub cardholder_name: Option<bool>,
    /// Default `false`.
    pub billing_address: Option<bool>,
}

/// `PUT /v1/whitelabel/theme-template`: the WhiteLabelDocument. Fields left out take
/// their defaults (the document replaces the saved one).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThemeRequest {
    /// Full CSS (also `stylesheet`), at most 64 KiB; sanitised and minified on save.
    pub style_sheet: Option<String>,
    pub input_field_styles: Option<Vec<InputFieldStyleDto>>,
    pub cc_data_collection_options: Option<CcOptionsDto>,
    /// EXT: origins (`https://shop.example`) allowed to embed the checkout in a frame.
    pub allowed_origins: Option<Vec<String>>,
    /// EXT: `#rrggbb`, used by the messages and pages; default `#0b5cad`.
    pub brand_color: Option<String>,
}

/// The theme template as saved (or the defaults).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThemeDto {
    /// Sanitised and minified.
    pub style_sheet: String,
    pub input_field_styles: Vec<InputFieldStyleDto>,
    pub cc_data_collection_options: CcOptionsDto,
    pub allowed_origins: Vec<String>,
    pub brand_color: String,
    /// When it was saved; `null` while the defaults apply.
    pub updated_at: Option<String>,
}

fn value_text(v: Option<Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Null => None,
        // Anything else is not a CSS value; the engine refuses it.
        other => Some(format!("{{{other}}}")),
    }
}

impl From<ThemeRequest> for ThemeInput {
    fn from(r: ThemeRequest) -> Self {
        ThemeInput {
            style_sheet: r.style_sheet,
            input_field_styles: r.input_field_styles.map(|fields| {
                fields
                    .into_iter()
                    .map(|f| InputFieldStyleInput {
                        style_name: f.style_name,
                        styles: f.styles.map(|styles| {
                            styles.into_iter().map(|s| StyleInput { key: s.key, value: value_text(s.value) }).collect()
                        }),
                    })
                    .collect()
            }),
            cc_data_collection_options: r
                .cc_data_collection_options
                .map(|o| CcOptionsInput { cardholder_name: o.cardholder_name, billing_address: o.billing_address }),
            allowed_origins: r.allowed_origins,
            brand_color: r.brand_color,
        }
    }
}

impl From<&CheckoutTheme> for ThemeDto {
    fn from(t: &CheckoutTheme) -> Self {
        let style = |s: &StyleEntry| StyleDto { key: Some(s.key.clone()), value: Some(Value::String(s.value.clone())) };
        Self {
            style_sheet: t.style_sheet.clone(),
            input_field_styles: t
                .input_field_styles
                .iter()
                .map(|f| InputFieldStyleDto {
                    style_name: Some(f.style_name.clone()),
                    styles: Some(f.styles.iter().map(style).collect()),
                })
                .collect(),
            cc_data_collection_options: CcOptionsDto {
                cardholder_name: Some(t.cc_data_collection_options.cardholder_name),
                billing_address: Some(t.cc_data_collection_options.billing_address),
            },
            allowed_origins: t.allowed_origins.clone(),
            brand_color: t.brand_color.clone(),
            updated_at: t.updated_at.map(iso_time),
        }
    }
}

/// The tenant's theme template; the defaults until one is saved.
#[utoipa::path(get, path = "/v1/whitelabel/theme-template", tag = "White label", security(("bearer" = [])),
    responses((status = 200, body = ThemeDto)))]
pub async fn get_theme(State(state): State<AppState>, Caller(caller): Caller) -> ApiResult<Json<ThemeDto>> {
    let theme = state.engine.checkout_theme(tenant(&caller)?).await?;
    Ok(Json(ThemeDto::from(&theme)))
}

/// Saves the theme template: validated in full, the stylesheet stripped of anything
/// that loads resources or runs script, and minified.
#[utoipa::path(put, path = "/v1/whitelabel/theme-template", tag = "White label", security(("bearer" = [])),
    request_body = ThemeRequest, responses(
    (status = 200, description = "Saved; the document as stored", body = ThemeDto),
    (status = 400, description = "INVALID_STYLE_NAME, INVALID_STYLE_KEY, INVALID_STYLE_VALUE, STYLESHEET_TOO_LARGE, \
        INVALID_ALLOWED_ORIGIN, TOO_MANY_ALLOWED_ORIGINS, INVALID_BRAND_COLOR", body = ErrorEnvelope)))]
pub async fn put_theme(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<ThemeRequest>,
) -> ApiResult<Json<ThemeDto>> {
    let theme = state.engine.save_theme_template(tenant(&caller)?, body.into()).await?;
    Ok(Json(ThemeDto::from(&theme)))
}

// -- delivery settings -------------------------------------------------------------------

/// The tenant's own SMTP server.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmailSettingsDto {
    pub host: Option<String>,
    /// Default by `tls`: 25, 587 or 465.
    pub port: Option<i64>,
    /// `none`, `starttls` (default) or `tls`.
    pub tls: Option<String>,
    pub username: Option<String>,
    /// Write-only: shown as `********`; sending `********` keeps the saved one.
    pub password: Option<String>,
    /// The sender: `payments@example.com` or `Acme <payments@example.com>`.
    pub from: Option<String>,
}

/// The tenant's own SMS gateway.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SmsSettingsDto {
    pub url: Option<String>,
    /// `POST` (default) or `PUT`.
    pub method: Option<String>,
    /// The JSON body (an object, or a string holding one) whose strings use
    /// `{{to}}` and `{{message}}`.
    #[schema(value_type = Option<Object>)]
    pub body: Option<Value>,
    /// e.g. `Authorization`.
    pub auth_header: Option<String>,
    /// Write-only: shown as `********`; sending `********` keeps the saved one.
    pub auth_value: Option<String>,
}

/// `PUT /v1/whitelabel/delivery-settings`: a channel left out (or `null`) uses the
/// deployment's settings.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliverySettingsRequest {
    pub email: Option<EmailSettingsDto>,
    pub sms: Option<SmsSettingsDto>,
}

/// The tenant's delivery settings, secrets masked, and which settings each channel uses.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliverySettingsDto {
    #[schema(value_type = Option<Object>)]
    pub email: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub sms: Option<Value>,
    /// `TENANT`, `DEPLOYMENT` or `NONE` (e-mail cannot be sent).
    pub email_source: String,
    /// `TENANT`, `DEPLOYMENT` or `NONE` (SMS cannot be sent).
    pub sms_source: String,
}

impl From<DeliverySettingsView> for DeliverySettingsDto {
    fn from(v: DeliverySettingsView) -> Self {
        Self {
            email: v.email,
            sms: v.sms,
            email_source: v.email_source.as_str().into(),
            sms_source: v.sms_source.as_str().into(),
        }
    }
}

/// The tenant's pay-by-link delivery settings (secrets masked).
#[utoipa::path(get, path = "/v1/whitelabel/delivery-settings", tag = "White label", security(("bearer" = [])),
    responses((status = 200, body = DeliverySettingsDto)))]
pub async fn get_delivery_settings(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> ApiResult<Json<DeliverySettingsDto>> {
    Ok(Json(state.engine.delivery_settings(tenant(&caller)?).await?.into()))
}

/// Replaces the tenant's own SMTP server and SMS gateway. Secrets are sealed and
/// never returned.
#[utoipa::path(put, path = "/v1/whitelabel/delivery-settings", tag = "White label", security(("bearer" = [])),
    request_body = DeliverySettingsRequest, responses(
    (status = 200, body = DeliverySettingsDto),
    (status = 400, description = "INVALID_DELIVERY_SETTINGS, URL_NOT_ALLOWED", body = ErrorEnvelope)))]
pub async fn put_delivery_settings(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<DeliverySettingsRequest>,
) -> ApiResult<Json<DeliverySettingsDto>> {
    let input = DeliverySettingsInput {
        email: body.email.map(|e| EmailSettingsInput {
            host: e.host,
            port: e.port,
            tls: e.tls,
            username: e.username,
            password: e.password,
            from: e.from,
        }),
        sms: body.sms.map(|s| SmsSettingsInput {
            url: s.url,
            method: s.method,
            body: s.body,
            auth_header: s.auth_header,
            auth_value: s.auth_value,
        }),
    };
    Ok(Json(state.engine.save_delivery_settings(tenant(&caller)?, input).await?.into()))
}
