//! Pay-by-link (SPEC §4.11, §5.7): create, read, resend and cancel links
//! (`/v1/whitelabel-customer/session/checkout/pay-by-link…`), and the public page a
//! link opens (`/pay/{payByLinkId}`), which hands the customer on to the hosted
//! checkout with a fresh token, or says in their language why it cannot.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use baton_domain::{Language, Role};
use baton_engine::pay_by_link::{
    CallbackUrls, DeliveryInput, DeliveryView, LinkOpening, LinkUnavailable, PayByLinkInput, PayByLinkView,
};
use baton_engine::theme::CheckoutTheme;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::created;
use super::orders::tenant;
use crate::auth::Caller;
use crate::dto::{iso_time, ErrorEnvelope};
use crate::error::ApiResult;
use crate::json::{ApiJson, OptionalJson};
use askama::Template;

use crate::pages::Csp;
use crate::AppState;

pub const LINKS_READ: &[Role] = &[Role::TenantTransactionRead];
pub const LINKS_WRITE: &[Role] = &[Role::TenantTransactionWrite];

/// Where the API serves links.
pub const BASE: &str = "/v1/whitelabel-customer/session/checkout/pay-by-link";

/// The OpenAPI document of this area, merged into the whole API's (`docs.rs`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(create_link, get_link, send_link, cancel_link, open_link),
    components(schemas(PayByLinkRequest, CallbacksDto, DeliveryRequest, PayByLinkDto, MessageDeliveryDto))
)]
pub struct PayByLinkApi;

/// `{success, failed, cancelled}`: where the checkout sends the customer afterwards.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallbacksDto {
    /// `https` URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success: Option<String>,
    /// `https` URL; receives `?payload=<base64 JSON>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    /// `https` URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled: Option<String>,
}

/// How the link reaches the customer (SPEC §5.7).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRequest {
    /// `EMAIL` or `SMS`.
    pub channel: Option<String>,
    /// An e-mail address, or a phone number in E.164 form (`+447700900123`).
    pub to: Option<String>,
    /// `en-GB` (default) or `de-DE`: the message's and the page's language.
    pub language: Option<String>,
    /// `PAYMENT_REQUEST` (default for a first message) or `PAYMENT_REMINDER` (default
    /// for a resend once a message was sent).
    pub template: Option<String>,
}

impl From<DeliveryRequest> for DeliveryInput {
    fn from(d: DeliveryRequest) -> Self {
        DeliveryInput { channel: d.channel, to: d.to, language: d.language, template: d.template }
    }
}

/// `POST …/pay-by-link`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayByLinkRequest {
    pub order_ref: Option<String>,
    pub instruction_ref: Option<String>,
    /// How long the link works: 60 to 2592000 seconds, as a number or a numeric
    /// string (`"6000"`); default 3600.
    #[schema(value_type = Option<i64>)]
    pub expiry_seconds: Option<Value>,
    pub callbacks: Option<CallbacksDto>,
    pub delivery: Option<DeliveryRequest>,
    /// The page's language when no delivery names one: `en-GB` or `de-DE`.
    pub language: Option<String>,
}

/// One message of a link.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageDeliveryDto {
    pub delivery_id: String,
    /// `EMAIL` or `SMS`.
    pub channel: String,
    /// The recipient, masked (`j***@example.com`, `+44*******123`).
    pub to: String,
    /// `QUEUED` (waiting or being retried), `SENT` (accepted by the SMTP server or SMS
    /// gateway) or `FAILED` (given up; see `lastError`).
    pub status: String,
    pub language: String,
    pub template: String,
    /// Sends tried.
    pub attempts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
}

impl From<&DeliveryView> for MessageDeliveryDto {
    fn from(d: &DeliveryView) -> Self {
        Self {
            delivery_id: d.delivery_id.clone(),
            channel: d.channel.as_str().into(),
            to: d.to.clone(),
            status: d.status.as_str().into(),
            language: d.language.as_str().into(),
            template: d.template.as_str().into(),
            attempts: d.attempts,
            last_error: d.last_error.clone(),
            created_at: iso_time(d.created_at),
            sent_at: d.sent_at.map(iso_time),
        }
    }
}

/// A pay-by-link.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayByLinkDto {
    pub pay_by_link_id: String,
    /// The absolute URL to send the customer: `{public_url}/pay/{payByLinkId}`.
    pub link: String,
    /// `ACTIVE`, `OPENED`, `COMPLETED`, `EXPIRED` or `CANCELLED`.
    pub status: String,
    pub order_ref: String,
    pub instruction_ref: String,
    pub language: String,
    pub expires_at: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callbacks: Option<CallbacksDto>,
    pub deliveries: Vec<MessageDeliveryDto>,
}

impl From<&PayByLinkView> for PayByLinkDto {
    fn from(v: &PayByLinkView) -> Self {
        Self {
            pay_by_link_id: v.pay_by_link_id.clone(),
            link: v.link.clone(),
            status: v.status.as_str().into(),
            order_ref: v.order_ref.clone(),
            instruction_ref: v.instruction_ref.clone(),
            language: v.language.as_str().into(),
            expires_at: iso_time(v.expires_at),
            created_at: iso_time(v.created_at),
            opened_at: v.opened_at.map(iso_time),
            callbacks: v.callbacks.as_ref().map(|c| CallbacksDto {
                success: c.success.clone(),
                failed: c.failed.clone(),
                cancelled: c.cancelled.clone(),
            }),
            deliveries: v.deliveries.iter().map(MessageDeliveryDto::from).collect(),
        }
    }
}

fn location(id: &str) -> String {
    format!("{BASE}/{id}")
}

/// Creates a pay-by-link for a DEBIT instruction and, with `delivery`, queues its
/// message. `link` is what to send the customer.
#[utoipa::path(post, path = "/v1/whitelabel-customer/session/checkout/pay-by-link", tag = "Pay-by-link",
    security(("bearer" = [])), request_body = PayByLinkRequest, responses(
    (status = 201, description = "Created; `Location` names it", body = PayByLinkDto),
    (status = 400, description = "ORDER_REF_REQUIRED, INSTRUCTION_REF_REQUIRED, INVALID_EXPIRY_SECONDS, \
        INVALID_CALLBACK_URL, INVALID_LANGUAGE, DELIVERY_CHANNEL_REQUIRED, INVALID_DELIVERY_CHANNEL, \
        DELIVERY_RECIPIENT_REQUIRED, INVALID_EMAIL_ADDRESS, INVALID_PHONE_NUMBER, INVALID_DELIVERY_TEMPLATE, \
        EMAIL_DELIVERY_NOT_CONFIGURED, SMS_DELIVERY_NOT_CONFIGURED, INSTRUCTION_NOT_UPDATABLE, SCHEME_REQUIRED",
        body = ErrorEnvelope),
    (status = 402, description = "PAY_BY_LINK_NOT_SUPPORTED (a CREDIT instruction)", body = ErrorEnvelope),
    (status = 404, description = "ORDER_NOT_FOUND, INSTRUCTION_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn create_link(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<PayByLinkRequest>,
) -> ApiResult<Response> {
    let input = PayByLinkInput {
        order_ref: body.order_ref,
        instruction_ref: body.instruction_ref,
        expiry_seconds: body.expiry_seconds,
        callbacks: body.callbacks.map(|c| CallbackUrls {
            success: c.success,
            failed: c.failed,
            cancelled: c.cancelled,
        }),
        delivery: body.delivery.map(DeliveryInput::from),
        language: body.language,
    };
    let view = state.engine.create_pay_by_link(tenant(&caller)?, input).await?;
    Ok(created(location(&view.pay_by_link_id), PayByLinkDto::from(&view)))
}

/// A link with its status and its messages' statuses.
#[utoipa::path(get, path = "/v1/whitelabel-customer/session/checkout/pay-by-link/{payByLinkId}",
    tag = "Pay-by-link", security(("bearer" = [])), params(("payByLinkId" = String, Path)), responses(
    (status = 200, body = PayByLinkDto),
    (status = 404, description = "PAY_BY_LINK_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn get_link(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<PayByLinkDto>> {
    let view = state.engine.pay_by_link(tenant(&caller)?, id.trim()).await?;
    Ok(Json(PayByLinkDto::from(&view)))
}

/// Sends the link again: to the recipient given (`{channel, to, language, template}`),
/// or without a body to the last one.
#[utoipa::path(post, path = "/v1/whitelabel-customer/session/checkout/pay-by-link/{payByLinkId}/send",
    tag = "Pay-by-link", security(("bearer" = [])), params(("payByLinkId" = String, Path)),
    request_body(content = Option<DeliveryRequest>, description = "Optional: another recipient"), responses(
    (status = 202, description = "Queued; the link with the new message", body = PayByLinkDto),
    (status = 400, description = "PAY_BY_LINK_NOT_ACTIVE, DELIVERY_RECIPIENT_REQUIRED, INVALID_DELIVERY_CHANNEL, \
        INVALID_EMAIL_ADDRESS, INVALID_PHONE_NUMBER, EMAIL_DELIVERY_NOT_CONFIGURED, SMS_DELIVERY_NOT_CONFIGURED",
        body = ErrorEnvelope),
    (status = 404, description = "PAY_BY_LINK_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn send_link(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<DeliveryRequest>,
) -> ApiResult<Response> {
    let view = state.engine.resend_pay_by_link(tenant(&caller)?, id.trim(), body.map(DeliveryInput::from)).await?;
    let mut response = (StatusCode::ACCEPTED, Json(PayByLinkDto::from(&view))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location(&view.pay_by_link_id)) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// Cancels a link: it stops opening the checkout, the checkout tokens and sessions it
/// minted can no longer pay, and unsent messages are dropped.
#[utoipa::path(delete, path = "/v1/whitelabel-customer/session/checkout/pay-by-link/{payByLinkId}",
    tag = "Pay-by-link", security(("bearer" = [])), params(("payByLinkId" = String, Path)), responses(
    (status = 204, description = "Cancelled (or already cancelled)"),
    (status = 400, description = "PAY_BY_LINK_NOT_ACTIVE (completed or expired)", body = ErrorEnvelope),
    (status = 404, description = "PAY_BY_LINK_NOT_FOUND", body = ErrorEnvelope),
    (status = 409, description = "PAY_BY_LINK_PAYMENT_IN_PROGRESS: a payment of the instruction is under way",
        body = ErrorEnvelope)))]
pub async fn cancel_link(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.engine.cancel_pay_by_link(tenant(&caller)?, id.trim()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `?language=` of the public page.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    pub language: Option<String>,
}

/// The public page of a link: `303` to `/checkout` with a fresh checkout token while
/// the link can be paid, else a page saying why not (in English or German).
#[utoipa::path(get, path = "/pay/{payByLinkId}", tag = "Pay-by-link",
    params(("payByLinkId" = String, Path), ("language" = Option<String>, Query, description = "en-GB or de-DE")),
    responses(
    (status = 303, description = "To `/checkout?bearerToken=…&language=…`"),
    (status = 200, description = "An HTML page: already paid, or being paid"),
    (status = 404, description = "An HTML page: no such link"),
    (status = 410, description = "An HTML page: expired, cancelled or no longer payable")))]
pub async fn open_link(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let language = query.language.as_deref().and_then(Language::from_tag).or_else(|| {
        headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).and_then(Language::from_accept_language)
    });
    let opening = state.engine.open_pay_by_link(&id, language).await?;
    let mut response = match opening {
        LinkOpening::Checkout { access_token, language } => {
            let target = format!("/checkout?bearerToken={access_token}&language={}", language.as_str());
            let mut r = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(&target) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        LinkOpening::Unavailable { reason, language, merchant, theme } => {
            page(reason, language, merchant.as_deref(), theme.as_ref())
        }
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    Ok(response)
}

/// Heading and text of each page, `{merchant}` filled in later.
fn page_text(reason: LinkUnavailable, language: Language) -> (&'static str, &'static str) {
    use LinkUnavailable::*;
    match language {
        Language::EnGb => match reason {
            NotFound => (
                "This payment link is not valid",
                "Please check that you opened the whole link, or ask the sender for a new one.",
            ),
            Expired => ("This payment link has expired", "Please ask {merchant} for a new link."),
            Cancelled => (
                "This payment link is no longer valid",
                "{merchant} has withdrawn this payment request. If you have questions, please contact {merchant}.",
            ),
            Completed => ("This payment has been made", "Thank you. There is nothing more to do."),
            Processing => (
                "Your payment is being processed",
                "Please check back later; there is no need to pay again.",
            ),
            NotPayable => ("This payment can no longer be made", "Please contact {merchant} for help."),
        },
        Language::DeDe => match reason {
            NotFound => (
                "Dieser Zahlungslink ist ungültig",
                "Bitte prüfen Sie, ob Sie den vollständigen Link geöffnet haben, oder bitten Sie den Absender um einen neuen.",
            ),
            Expired => ("Dieser Zahlungslink ist abgelaufen", "Bitte fordern Sie bei {merchant} einen neuen Link an."),
            Cancelled => (
                "Dieser Zahlungslink ist nicht mehr gültig",
                "{merchant} hat diese Zahlungsaufforderung zurückgezogen. Bei Fragen wenden Sie sich bitte an {merchant}.",
            ),
            Completed => ("Diese Zahlung ist erfolgt", "Vielen Dank. Sie müssen nichts weiter tun."),
            Processing => (
                "Ihre Zahlung wird bearbeitet",
                "Bitte schauen Sie später noch einmal vorbei; Sie müssen nicht erneut bezahlen.",
            ),
            NotPayable => ("Diese Zahlung ist nicht mehr möglich", "Bitte wenden Sie sich an {merchant}."),
        },
    }
}

/// The page's own styles: readable on phones and desktops, AA contrast.
const PAGE_CSS: &str = "*{box-sizing:border-box}body{margin:0;background:#f4f5f7;color:#1f2933;\
font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;font-size:16px;line-height:1.5}\
main{max-width:32rem;margin:10vh auto;padding:2rem 1.5rem;background:#fff;border-radius:8px;\
border-top:4px solid var(--baton-brand);box-shadow:0 1px 3px rgba(0,0,0,.08)}\
.merchant{margin:0 0 .5rem;color:#52606d;font-size:.875rem;font-weight:600;text-transform:uppercase;letter-spacing:.04em}\
h1{margin:0 0 1rem;font-size:1.375rem;line-height:1.3;color:var(--baton-brand)}p{margin:0}";

/// The page saying why a link cannot be used (`templates/link/status.html`).
#[derive(askama::Template)]
#[template(path = "link/status.html")]
struct LinkStatusPage<'a> {
    lang: &'a str,
    title: &'a str,
    nonce: &'a str,
    brand: &'a str,
    /// The page's styles and the tenant's sanitised stylesheet.
    css: String,
    class: String,
    merchant: Option<&'a str>,
    /// Who `{merchant}` in the text names: the merchant, or "the sender".
    name: &'a str,
    /// The text around each `{merchant}`.
    text_parts: Vec<&'a str>,
}

/// An HTML page saying why the link cannot be used.
fn page(
    reason: LinkUnavailable,
    language: Language,
    merchant: Option<&str>,
    theme: Option<&CheckoutTheme>,
) -> Response {
    let (heading, text) = page_text(reason, language);
    let fallback = match language {
        Language::EnGb => "the sender",
        Language::DeDe => "den Absender",
    };
    let nonce = crate::pages::nonce();
    let default_theme = CheckoutTheme::default();
    let theme = theme.unwrap_or(&default_theme);
    let csp = Csp::with_nonce(&nonce).frame_ancestors(&theme.allowed_origins);
    let page = LinkStatusPage {
        lang: language.as_str(),
        title: heading,
        nonce: &nonce,
        brand: &theme.brand_color,
        css: format!("{PAGE_CSS}{}", theme.style_sheet),
        class: format!("{reason:?}").to_ascii_lowercase(),
        merchant,
        name: merchant.unwrap_or(fallback),
        text_parts: text.split("{merchant}").collect(),
    };
    let html = match page.render() {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(error = %e, "pay-by-link page did not render");
            return crate::pages::secure((StatusCode::INTERNAL_SERVER_ERROR, "Internal error").into_response(), &csp);
        }
    };
    let status = match reason {
        LinkUnavailable::NotFound => StatusCode::NOT_FOUND,
        LinkUnavailable::Expired | LinkUnavailable::Cancelled | LinkUnavailable::NotPayable => StatusCode::GONE,
        LinkUnavailable::Completed | LinkUnavailable::Processing => StatusCode::OK,
    };
    crate::pages::secure((status, html).into_response(), &csp)
}
