//! The hosted checkout pages (SPEC §4.11): served by Baton itself, public (the session
//! id in the path is the customer's capability), rendered from askama templates with
//! every asset embedded in the binary.
//!
//! `GET /checkout?bearerToken=…` (or `/checkout/bearerToken=…`) opens a checkout token
//! once and answers `303` to `/checkout/session/{sessionId}`; the session's page shows
//! the methods the instruction's collect scheme offers; its forms post back to the
//! session (CSRF token bound to the session, rate-limited per session and per client
//! address) and are answered with `303` to the session page, which shows the result and
//! reports it to the merchant (callback redirect, `postMessage` to an allowed parent).
//!
//! Security: a strict Content-Security-Policy with a fresh nonce per page,
//! `frame-ancestors` limited to the tenant's allowed origins, `Referrer-Policy:
//! no-referrer`, `Cache-Control: no-store`, no third-party requests. Request bodies are
//! never logged, and the access log shows these paths without their tokens.

pub mod i18n;
pub mod theme;

use std::net::IpAddr;
use std::num::NonZeroU32;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use baton_domain::text::has_nul;

use crate::pages::Csp;
use baton_domain::{CheckoutStatus, Environment, InstructionStatus, Problem};
use baton_engine::checkout::{
    BankInput, CardInput, CheckoutAction, CheckoutClaims, CheckoutView, Ended, OpenRefusal, PayOutcome, Unavailable,
};
use governor::{DefaultKeyedRateLimiter, Quota};
use serde_json::{json, Value};

use self::i18n::{with_merchant, Lang, Strings};
use self::theme::{page_theme, PageTheme};
use crate::client_ip::ClientIp;
use crate::AppState;

/// The largest form body accepted (a full card form is well under 2 KiB).
pub const FORM_BODY_LIMIT: usize = 16 * 1024;
/// Seconds before the page follows a success or cancel callback, and a failure one
/// (longer, so that "try another card" stays within reach).
const REDIRECT_DELAY: u32 = 3;
const FAILED_REDIRECT_DELAY: u32 = 6;

/// The OpenAPI document of the pages, merged into the whole API's (`docs.rs`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    open,
    open_path,
    session_page,
    pay_card,
    pay_bank,
    paypal_page,
    paypal_decision,
    challenge_decision,
    cancel,
    asset
))]
pub struct CheckoutPagesApi;

pub use crate::pages::PageBody;

/// Submission rate limits of the hosted pages (per node, like the API's).
pub struct CheckoutLimits {
    per_session: DefaultKeyedRateLimiter<String>,
    per_client: DefaultKeyedRateLimiter<IpAddr>,
}

impl Default for CheckoutLimits {
    fn default() -> Self {
        let nz = |n| NonZeroU32::new(n).expect("non-zero");
        Self {
            // 5 submissions at once per session, then one every 10 s.
            per_session: DefaultKeyedRateLimiter::keyed(
                Quota::with_period(std::time::Duration::from_secs(10)).expect("period").allow_burst(nz(5)),
            ),
            // 50 at once per client address (customers behind one NAT), then one a second.
            per_client: DefaultKeyedRateLimiter::keyed(
                Quota::with_period(std::time::Duration::from_secs(1)).expect("period").allow_burst(nz(50)),
            ),
        }
    }
}

impl CheckoutLimits {
    fn admit(&self, session_id: &str, client: Option<IpAddr>) -> bool {
        let session_ok = self.per_session.check_key(&session_id.to_string()).is_ok();
        let client_ok = client.is_none_or(|ip| self.per_client.check_key(&ip).is_ok());
        session_ok && client_ok
    }

    /// Forgets idle keys (called periodically with the API's limits).
    pub fn forget_idle(&self) {
        self.per_session.retain_recent();
        self.per_client.retain_recent();
    }
}

// -- the page model ----------------------------------------------------------------------

/// A callback the page follows.
pub struct Redirect {
    pub url: String,
    pub delay_seconds: u32,
}

pub struct ErrorItem {
    /// The id of the field the error belongs to.
    pub target: &'static str,
    pub message: &'static str,
}

pub struct BrandMark {
    pub class: String,
    pub name: &'static str,
}

pub struct BillingField {
    pub id: &'static str,
    pub name: &'static str,
    pub label: &'static str,
    pub autocomplete: &'static str,
    pub max: usize,
    pub value: String,
    pub required: bool,
}

/// Values typed before a refused submission, shown again (never a card number, CVC or IBAN).
#[derive(Default)]
pub struct KeptValues {
    pub expiry: String,
    pub cardholder_name: String,
    pub account_holder: String,
    /// Billing address lines by form name.
    pub billing: Vec<(&'static str, String)>,
}

pub struct FormsView {
    pub base: String,
    pub csrf: String,
    pub card: bool,
    pub bank: bool,
    pub paypal: bool,
    pub method_count: usize,
    pub selected: &'static str,
    pub brands: Vec<BrandMark>,
    pub collect_name: bool,
    pub collect_billing: bool,
    pub billing_fields: Vec<BillingField>,
    pub mandate_text: String,
    pub errors: Vec<ErrorItem>,
    pub values: KeptValues,
    pub notice: Option<&'static str>,
}

impl FormsView {
    pub fn invalid(&self, id: &str) -> bool {
        self.errors.iter().any(|e| e.target == id)
    }

    pub fn error_for(&self, id: &str) -> &'static str {
        self.errors.iter().find(|e| e.target == id).map(|e| e.message).unwrap_or("")
    }
}

pub struct ActionView {
    pub base: String,
    pub csrf: String,
}

pub struct ResultView {
    /// `succeeded`, `failed`, `cancelled`, `invalid` or `unavailable`.
    pub outcome: &'static str,
    pub pending: bool,
    pub title: &'static str,
    pub body: String,
    pub redirect_note: String,
    pub retry: Option<String>,
    pub retry_label: &'static str,
}

pub enum View {
    Forms(FormsView),
    Paypal(ActionView),
    Challenge(ActionView),
    Result(ResultView),
}

#[derive(Template)]
#[template(path = "checkout/page.html")]
pub struct PageTemplate {
    pub lang: &'static str,
    pub t: &'static Strings,
    pub page_title: &'static str,
    pub merchant: String,
    pub amount: String,
    pub theme_css: String,
    pub nonce: String,
    pub message_json: String,
    pub parent_origin: String,
    pub redirect: Option<Redirect>,
    pub sandbox: bool,
    pub view: View,
}

/// A rendered page with its status and the page's security headers.
struct Page {
    status: StatusCode,
    template: PageTemplate,
    frame_ancestors: Vec<String>,
    form_targets: Vec<String>,
}

impl Page {
    fn new(status: StatusCode, lang: Lang, view: View) -> Self {
        let t = lang.strings();
        let page_title = match &view {
            View::Result(r) => r.title,
            View::Challenge(_) => t.challenge_title,
            View::Paypal(_) => t.paypal_title,
            View::Forms(_) => t.title,
        };
        Self {
            status,
            template: PageTemplate {
                lang: lang.html_lang(),
                t,
                page_title,
                merchant: String::new(),
                amount: String::new(),
                theme_css: String::new(),
                nonce: nonce(),
                message_json: String::new(),
                parent_origin: String::new(),
                redirect: None,
                sandbox: false,
                view,
            },
            frame_ancestors: Vec::new(),
            form_targets: Vec::new(),
        }
    }

    /// A plain result page (no session to speak of).
    fn message(status: StatusCode, lang: Lang, outcome: &'static str, title: &'static str, body: &str) -> Self {
        let view = View::Result(ResultView {
            outcome,
            pending: false,
            title,
            body: body.to_string(),
            redirect_note: String::new(),
            retry: None,
            retry_label: "",
        });
        Self::new(status, lang, view)
    }

    fn render(self) -> Response {
        let nonce = self.template.nonce.clone();
        let html = match self.template.render() {
            Ok(html) => html,
            Err(e) => {
                tracing::error!(error = %e, "checkout page did not render");
                return page_headers(
                    (StatusCode::INTERNAL_SERVER_ERROR, "Internal error").into_response(),
                    &nonce,
                    &[],
                    &[],
                );
            }
        };
        let mut response = (self.status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
        response = page_headers(response, &nonce, &self.frame_ancestors, &self.form_targets);
        response
    }
}

use crate::pages::nonce;

/// The security headers of every checkout response.
fn page_headers(response: Response, nonce: &str, frame_ancestors: &[String], form_targets: &[String]) -> Response {
    let csp = Csp::with_nonce(nonce).own_assets().scripts().form_action(form_targets).frame_ancestors(frame_ancestors);
    crate::pages::secure(response, &csp)
}

fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    page_headers(response, &nonce(), &[], &[])
}

// -- messages to the merchant --------------------------------------------------------------

/// The outcome the merchant is told (callback payload and `postMessage`).
struct Outcome<'a> {
    message_type: &'static str,
    bearer_token: &'a str,
    provider_name: String,
    description: Option<String>,
}

impl Outcome<'_> {
    fn json(&self) -> Value {
        let mut v = json!({
            "messageType": self.message_type,
            "bearerToken": self.bearer_token,
            "providerName": self.provider_name,
        });
        if let Some(d) = &self.description {
            v["messageDescription"] = json!(d);
        }
        v
    }

    /// `{failed}?payload=<standard base64 of the JSON>` (URL-encoded).
    fn failed_url(&self, failed: &str) -> String {
        let payload = STANDARD.encode(self.json().to_string());
        let encoded: String = form_urlencoded::byte_serialize(payload.as_bytes()).collect();
        let sep = if failed.contains('?') { '&' } else { '?' };
        format!("{failed}{sep}payload={encoded}")
    }
}

fn provider_name(app_id: Option<&str>) -> String {
    app_id
        .and_then(|id| baton_domain::AppId::parse(id).ok())
        .and_then(|id| baton_connectors::find(&id).map(|a| a.name.to_string()))
        .unwrap_or_default()
}

// -- language ----------------------------------------------------------------------------

fn request_lang(query: Option<&str>, headers: &HeaderMap) -> Lang {
    query
        .and_then(Lang::parse)
        .or_else(|| {
            headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).and_then(Lang::from_accept_language)
        })
        .unwrap_or(Lang::En)
}

// -- opening a token -------------------------------------------------------------------------

/// The parameters of `GET /checkout` (repeated or unknown ones are ignored, never an error).
#[derive(Debug, Default)]
pub struct OpenQuery {
    bearer_token: Option<String>,
    language: Option<String>,
    parent_origin: Option<String>,
}

impl OpenQuery {
    fn parse(query: &str) -> Self {
        let mut out = Self::default();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            let slot = match k.as_ref() {
                "bearerToken" | "bearertoken" => &mut out.bearer_token,
                "language" => &mut out.language,
                "parentOrigin" => &mut out.parent_origin,
                _ => continue,
            };
            slot.get_or_insert_with(|| v.into_owned());
        }
        out
    }
}

#[utoipa::path(get, path = "/checkout", tag = "hosted checkout", params(
    ("bearerToken" = String, Query, description = "A checkout token from `POST /v1/whitelabel-customer/grants`"),
    ("language" = Option<String>, Query, description = "`en-GB` (default) or `de-DE`; else `Accept-Language`"),
    ("parentOrigin" = Option<String>, Query, description = "The origin of an embedding page, for `postMessage`")),
    responses(
    (status = 303, description = "Token opened (once): `Location: /checkout/session/{sessionId}`"),
    (status = 400, description = "Invalid token: a page in the customer's language", content_type = "text/html"),
    (status = 410, description = "Expired or already used token, or one that ended (its pay-by-link cancelled or \
        expired, its instruction voided): a page saying which, redirecting to the token's `failed` callback with \
        `messageType=imburse_invalid_token`", content_type = "text/html")))]
pub async fn open(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    open_token(&state, &headers, OpenQuery::parse(query.as_deref().unwrap_or(""))).await
}

/// `GET /checkout/bearerToken=…` (the documented form without `?`; `&language=…` may follow).
#[utoipa::path(get, path = "/checkout/{token}", tag = "hosted checkout",
    params(("token" = String, Path, description = "`bearerToken=<checkout token>` (optionally `&language=…`)")),
    responses((status = 303, description = "As `GET /checkout`")))]
pub async fn open_path(State(state): State<AppState>, headers: HeaderMap, Path(segment): Path<String>) -> Response {
    let Some(rest) = segment.strip_prefix("bearerToken=").or_else(|| segment.strip_prefix("bearertoken=")) else {
        let lang = request_lang(None, &headers);
        let t = lang.strings();
        return Page::message(StatusCode::NOT_FOUND, lang, "invalid", t.invalid_title, t.invalid_body).render();
    };
    // The token is base64url (no `&`, `=` or `%`); what follows it is a query string.
    let (token, rest) = rest.split_once('&').unwrap_or((rest, ""));
    let mut query = OpenQuery::parse(rest);
    query.bearer_token = Some(token.to_string());
    open_token(&state, &headers, query).await
}

async fn open_token(state: &AppState, headers: &HeaderMap, query: OpenQuery) -> Response {
    let lang = request_lang(query.language.as_deref(), headers);
    let token = query.bearer_token.unwrap_or_default();
    let opened = match state.engine.open_checkout(&token, lang.tag(), query.parent_origin.as_deref()).await {
        Ok(o) => o,
        Err(e) => return internal_error(lang, &e.to_string()),
    };
    match opened {
        Ok(session_id) => see_other(&format!("/checkout/session/{session_id}")),
        Err(refusal) => refused_token(state, lang, &token, refusal).await,
    }
}

/// The page for a token that opened no session: invalid, expired, already used or
/// ended; with the token's `failed` callback (when the token is genuine) it redirects there.
async fn refused_token(state: &AppState, lang: Lang, token: &str, refusal: OpenRefusal) -> Response {
    let t = lang.strings();
    let claims = match &refusal {
        OpenRefusal::Invalid => None,
        OpenRefusal::Expired(c) | OpenRefusal::AlreadyUsed(c) | OpenRefusal::Ended(_, c) => Some(c.as_ref()),
    };
    let merchant = match claims {
        Some(c) => state.engine.checkout_merchant_name(&c.tenant_id).await.unwrap_or_default(),
        None => String::new(),
    };
    let (status, title, body) = match &refusal {
        OpenRefusal::Invalid => (StatusCode::BAD_REQUEST, t.invalid_title, t.invalid_body.to_string()),
        OpenRefusal::Expired(_) => (StatusCode::GONE, t.expired_title, t.expired_body.to_string()),
        OpenRefusal::AlreadyUsed(_) => (StatusCode::GONE, t.used_title, t.used_body.to_string()),
        OpenRefusal::Ended(ended, _) => {
            let (title, body) = ended_text(t, *ended, &merchant);
            (StatusCode::GONE, title, body)
        }
    };
    let mut page = Page::message(status, lang, "invalid", title, &body);
    let outcome = Outcome {
        message_type: "imburse_invalid_token",
        bearer_token: token,
        provider_name: String::new(),
        description: None,
    };
    page.template.message_json = outcome.json().to_string();
    if let Some(claims) = claims {
        page.template.merchant = merchant.clone();
        let failed = claims.callbacks.as_ref().and_then(|c| c.failed.clone());
        if let Some(failed) = failed {
            page.template.redirect = Some(Redirect { url: outcome.failed_url(&failed), delay_seconds: REDIRECT_DELAY });
            if let View::Result(r) = &mut page.template.view {
                r.redirect_note = with_merchant(t.redirecting, &merchant);
            }
        }
        let theme = page_theme(&state.engine, &claims.tenant_id).await;
        page.frame_ancestors = theme.allowed_origins;
    }
    page.render()
}

/// The heading and text saying why a token ended before its expiry.
fn ended_text(t: &'static Strings, ended: Ended, merchant: &str) -> (&'static str, String) {
    match ended {
        Ended::LinkCancelled => (t.link_cancelled_title, with_merchant(t.link_cancelled_body, merchant)),
        Ended::LinkExpired => (t.expired_title, t.expired_body.to_string()),
        Ended::InstructionVoided => (t.withdrawn_title, with_merchant(t.withdrawn_body, merchant)),
    }
}

fn internal_error(lang: Lang, error: &str) -> Response {
    tracing::error!(error, "checkout request failed");
    let t = lang.strings();
    Page::message(StatusCode::INTERNAL_SERVER_ERROR, lang, "unavailable", t.error_title, t.error_body).render()
}

// -- the session page ------------------------------------------------------------------------

#[utoipa::path(get, path = "/checkout/session/{sessionId}", tag = "hosted checkout",
    params(("sessionId" = String, Path), ("retry" = Option<String>, Query), ("method" = Option<String>, Query)),
    responses((status = 200, description = "The payment page, the authentication challenge, or the result", content_type = "text/html"),
    (status = 404, description = "Unknown session", content_type = "text/html"),
    (status = 410, description = "Expired session, or its token ended (its pay-by-link cancelled or expired, \
        its instruction voided)", content_type = "text/html")))]
pub async fn session_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(session_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let fallback = request_lang(None, &headers);
    let view = match state.engine.checkout_view(&session_id).await {
        Ok(Some(v)) => v,
        Ok(None) => return unknown_session(fallback),
        Err(e) => return internal_error(fallback, &e.to_string()),
    };
    let ctx = Context::new(&state, &headers, view).await;
    // `retry`: show the forms again after a failed attempt; `method`: the one to show first.
    let mut retry = false;
    let mut method = String::new();
    for (k, v) in form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "retry" => retry = true,
            "method" => method = v.into_owned(),
            _ => {}
        }
    }
    ctx.page_for_state(retry, &method, Vec::new(), KeptValues::default()).render()
}

fn unknown_session(lang: Lang) -> Response {
    let t = lang.strings();
    Page::message(StatusCode::NOT_FOUND, lang, "invalid", t.invalid_title, t.invalid_body).render()
}

/// What every page of a session shares.
struct Context {
    view: CheckoutView,
    lang: Lang,
    theme: PageTheme,
    csrf: String,
    environment: Environment,
    /// The parent origin messages may be sent to (empty: none).
    parent_origin: String,
}

impl Context {
    async fn new(state: &AppState, headers: &HeaderMap, view: CheckoutView) -> Self {
        let lang = Lang::parse(&view.session.record.language).unwrap_or(Lang::En);
        let theme = page_theme(&state.engine, &view.session.claims.tenant_id).await;
        let csrf = state.engine.checkout_csrf_token(&view.session.record.session_id);
        let parent_origin = view
            .session
            .record
            .parent_origin
            .clone()
            .filter(|o| theme.allowed_origins.contains(o) || is_own_origin(o, headers))
            .unwrap_or_default();
        Self { view, lang, theme, csrf, environment: state.engine.environment(), parent_origin }
    }

    fn claims(&self) -> &CheckoutClaims {
        &self.view.session.claims
    }

    fn base(&self) -> String {
        format!("/checkout/session/{}", self.view.session.record.session_id)
    }

    fn t(&self) -> &'static Strings {
        self.lang.strings()
    }

    fn merchant(&self) -> &str {
        &self.view.merchant_name
    }

    /// A page of this session: merchant, amount, theme, security headers.
    fn page(&self, status: StatusCode, view: View) -> Page {
        let mut page = Page::new(status, self.lang, view);
        page.template.merchant = self.merchant().to_string();
        page.template.amount = self.lang.amount(self.claims().amount, &self.claims().currency);
        page.template.theme_css = self.theme.stylesheet.replace("</", "<\\/");
        page.template.parent_origin = self.parent_origin.clone();
        page.template.sandbox = self.environment == Environment::Sandbox;
        page.frame_ancestors = self.theme.allowed_origins.clone();
        page.form_targets = self.claims().callbacks.as_ref().map(|c| c.origins()).unwrap_or_default();
        page
    }

    fn outcome(&self, message_type: &'static str, description: Option<String>) -> Outcome<'_> {
        Outcome {
            message_type,
            bearer_token: &self.view.session.record.bearer_token,
            provider_name: provider_name(self.view.session.record.provider_name.as_deref()),
            description,
        }
    }

    /// A result page, reported to the merchant and redirected to `callback` if given.
    #[allow(clippy::too_many_arguments)]
    fn result(
        &self,
        status: StatusCode,
        outcome: &'static str,
        title: &'static str,
        body: String,
        message: Outcome<'_>,
        callback: Option<String>,
        delay: u32,
        retry: bool,
    ) -> Page {
        let t = self.t();
        let view = View::Result(ResultView {
            outcome,
            pending: false,
            title,
            body,
            redirect_note: with_merchant(t.redirecting, self.merchant()),
            retry: retry.then(|| format!("{}?retry=1", self.base())),
            retry_label: t.try_again,
        });
        let mut page = self.page(status, view);
        page.template.message_json = message.json().to_string();
        page.template.redirect = callback.map(|url| Redirect { url, delay_seconds: delay });
        page
    }

    /// The failure page for `code`: the customer's message in their language, the
    /// merchant's failed callback with the English description in its payload.
    fn failed(&self, code: &str, retry: bool) -> Page {
        let message = self.outcome("imburse_payment_failed", Some(Lang::En.message(code).to_string()));
        let callback = self.callbacks().failed.map(|f| message.failed_url(&f));
        let body = self.lang.message(code).to_string();
        self.result(
            StatusCode::OK,
            "failed",
            self.t().failed_title,
            body,
            message,
            callback,
            FAILED_REDIRECT_DELAY,
            retry,
        )
    }

    /// The page of a token that ended before its expiry: reported to the merchant as an
    /// invalid token, as an expired one is.
    fn ended(&self, ended: Ended) -> Page {
        let (title, body) = ended_text(self.t(), ended, self.merchant());
        let message = self.outcome("imburse_invalid_token", None);
        let callback = self.callbacks().failed.map(|f| message.failed_url(&f));
        self.result(StatusCode::GONE, "invalid", title, body, message, callback, REDIRECT_DELAY, false)
    }

    fn callbacks(&self) -> baton_engine::checkout::Callbacks {
        self.claims().callbacks.clone().unwrap_or_default()
    }

    /// The page for the session's current state.
    fn page_for_state(&self, retry: bool, method: &str, errors: Vec<ErrorItem>, values: KeptValues) -> Page {
        let t = self.t();
        let record = &self.view.session.record;
        let merchant = self.merchant();
        match record.status {
            // A bank collection the bank refused after it was submitted.
            CheckoutStatus::Succeeded if self.view.payable => return self.failed("PAYMENT_DECLINED", false),
            CheckoutStatus::Succeeded => {
                let pending = self.view.instruction_status == InstructionStatus::Processing;
                let (title, body) =
                    if pending { (t.pending_title, t.pending_body) } else { (t.success_title, t.success_body) };
                let message = self.outcome("imburse_payment_succeeded", None);
                let mut page = self.result(
                    StatusCode::OK,
                    "succeeded",
                    title,
                    with_merchant(body, merchant),
                    message,
                    self.callbacks().success,
                    REDIRECT_DELAY,
                    false,
                );
                if let View::Result(r) = &mut page.template.view {
                    r.pending = pending;
                }
                return page;
            }
            CheckoutStatus::Cancelled => {
                let message = self.outcome("imburse_payment_cancelled", None);
                return self.result(
                    StatusCode::OK,
                    "cancelled",
                    t.cancelled_title,
                    t.cancelled_body.to_string(),
                    message,
                    self.callbacks().cancelled,
                    REDIRECT_DELAY,
                    false,
                );
            }
            _ => {}
        }
        if self.view.expired {
            let message = self.outcome("imburse_invalid_token", None);
            let callback = self.callbacks().failed.map(|f| message.failed_url(&f));
            let message = self.outcome("imburse_invalid_token", None);
            return self.result(
                StatusCode::GONE,
                "invalid",
                t.session_expired_title,
                t.session_expired_body.to_string(),
                message,
                callback,
                REDIRECT_DELAY,
                false,
            );
        }
        if let Some(ended) = self.view.ended {
            return self.ended(ended);
        }
        if record.status == CheckoutStatus::Authenticating {
            return self
                .page(StatusCode::OK, View::Challenge(ActionView { base: self.base(), csrf: self.csrf.clone() }));
        }
        if !self.view.payable {
            let (title, body) = if self.view.instruction_status == InstructionStatus::Settled {
                (t.paid_title, t.paid_body)
            } else {
                (t.not_payable_title, t.not_payable_body)
            };
            return self.page(StatusCode::OK, unavailable_view(title, body.to_string()));
        }
        if !self.view.offers_anything() {
            return self.page(
                StatusCode::OK,
                unavailable_view(t.no_methods_title, with_merchant(t.no_methods_body, merchant)),
            );
        }
        if let (Some(code), false, true) = (record.last_failure.as_deref(), retry, errors.is_empty()) {
            return self.failed(code, true);
        }
        let notice = record.last_failure.as_deref().filter(|_| retry).map(|code| self.lang.message(code));
        let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
        self.page(status, View::Forms(self.forms(method, errors, values, notice)))
    }

    fn forms(
        &self,
        method: &str,
        errors: Vec<ErrorItem>,
        values: KeptValues,
        notice: Option<&'static str>,
    ) -> FormsView {
        let t = self.t();
        let v = &self.view;
        let card = !v.card_brands.is_empty();
        let method_count = [card, v.direct_debit, v.paypal].iter().filter(|m| **m).count();
        let selected = match method {
            "bank" if v.direct_debit => "bank",
            "paypal" if v.paypal => "paypal",
            _ if card => "card",
            _ if v.direct_debit => "bank",
            _ => "paypal",
        };
        let brands = v
            .card_brands
            .iter()
            .map(|b| BrandMark {
                class: b.to_ascii_lowercase(),
                name: match b.as_str() {
                    "VISA" => "Visa",
                    "MASTERCARD" => "Mastercard",
                    "AMERICAN-EXPRESS" => "American Express",
                    "DISCOVER" => "Discover",
                    "MAESTRO" => "Maestro",
                    _ => "Card",
                },
            })
            .collect();
        let billing_fields = if self.theme.collect_billing_address { billing_fields(t, &values) } else { Vec::new() };
        FormsView {
            base: self.base(),
            csrf: self.csrf.clone(),
            card,
            bank: v.direct_debit,
            paypal: v.paypal,
            method_count,
            selected,
            brands,
            collect_name: self.theme.collect_cardholder_name,
            collect_billing: self.theme.collect_billing_address,
            billing_fields,
            mandate_text: with_merchant(t.mandate_text, self.merchant()),
            errors,
            values,
            notice,
        }
    }
}

fn unavailable_view(title: &'static str, body: String) -> View {
    View::Result(ResultView {
        outcome: "unavailable",
        pending: false,
        title,
        body,
        redirect_note: String::new(),
        retry: None,
        retry_label: "",
    })
}

/// Billing address fields: (id, form name, JSON name, autocomplete, required).
const BILLING: [(&str, &str, &str, &str, bool); 9] = [
    ("billing-first-name", "billingFirstName", "firstName", "given-name", true),
    ("billing-last-name", "billingLastName", "lastName", "family-name", true),
    ("billing-company", "billingCompany", "company", "organization", false),
    ("billing-street", "billingStreet", "streetAddress", "address-line1", true),
    ("billing-street2", "billingStreet2", "extendedStreetAddress", "address-line2", false),
    ("billing-locality", "billingLocality", "locality", "address-level2", true),
    ("billing-region", "billingRegion", "region", "address-level1", false),
    ("billing-post-code", "billingPostCode", "postCode", "postal-code", true),
    ("billing-country", "billingCountry", "country", "country", true),
];

fn billing_fields(t: &'static Strings, values: &KeptValues) -> Vec<BillingField> {
    BILLING
        .iter()
        .map(|&(id, name, json, autocomplete, required)| BillingField {
            id,
            name,
            label: match json {
                "firstName" => t.first_name,
                "lastName" => t.last_name,
                "company" => t.company,
                "streetAddress" => t.street,
                "extendedStreetAddress" => t.street2,
                "locality" => t.locality,
                "region" => t.region,
                "postCode" => t.post_code,
                _ => t.country,
            },
            autocomplete,
            max: if json == "country" { 2 } else { baton_domain::BillingAddress::MAX_LINE },
            value: values.billing.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()).unwrap_or_default(),
            required,
        })
        .collect()
}

/// Whether `origin` is this server's own (the `Host` the request came to).
fn is_own_origin(origin: &str, headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
    origin.eq_ignore_ascii_case(&format!("http://{host}")) || origin.eq_ignore_ascii_case(&format!("https://{host}"))
}

// -- submissions -------------------------------------------------------------------------------

/// A form body: `application/x-www-form-urlencoded`, at most [`FORM_BODY_LIMIT`] bytes.
struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or("").to_string()
    }
}

/// Reads a submission's form and runs the checks every submission passes; a refused one
/// is answered with the page to show.
async fn submission(
    state: &AppState,
    headers: &HeaderMap,
    client: Option<Extension<ClientIp>>,
    session_id: &str,
    request: axum::extract::Request,
) -> Result<(Context, Form), Response> {
    let body = form_body(request).await?;
    gate(state, headers, client.map(|c| c.0 .0), session_id, &body).await
}

/// Common checks of every submission: the session exists, the body is a form, the CSRF
/// token is the session's, and the rate limits admit it.
async fn gate(
    state: &AppState,
    headers: &HeaderMap,
    client: Option<IpAddr>,
    session_id: &str,
    body: &Bytes,
) -> Result<(Context, Form), Response> {
    let fallback = request_lang(None, headers);
    let view = match state.engine.checkout_view(session_id).await {
        Ok(Some(v)) => v,
        Ok(None) => return Err(unknown_session(fallback)),
        Err(e) => return Err(internal_error(fallback, &e.to_string())),
    };
    let ctx = Context::new(state, headers, view).await;
    // An ended token takes no submission at all; the start of a payment checks again.
    if let Some(ended) = ctx.view.ended {
        return Err(ctx.ended(ended).render());
    }
    let t = ctx.t();
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
        .unwrap_or(false);
    if !form_type {
        let page =
            ctx.page(StatusCode::UNSUPPORTED_MEDIA_TYPE, unavailable_view(t.error_title, t.error_body.to_string()));
        return Err(page.render());
    }
    let form = Form(form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect());
    if form.0.iter().any(|(k, v)| has_nul(k) || has_nul(v)) {
        tracing::warn!("checkout form refused: a NUL in a field");
        let page = ctx.page(StatusCode::BAD_REQUEST, unavailable_view(t.error_title, t.error_body.to_string()));
        return Err(page.render());
    }
    let csrf_ok = form.get("csrf").is_some_and(|c| state.engine.check_checkout_csrf(session_id, c));
    if !csrf_ok {
        tracing::warn!("checkout form refused: missing or wrong CSRF token");
        let mut page =
            ctx.page(StatusCode::FORBIDDEN, unavailable_view(t.form_expired_title, t.form_expired_body.to_string()));
        if let View::Result(r) = &mut page.template.view {
            r.retry = Some(ctx.base());
            r.retry_label = t.back_to_payment;
        }
        return Err(page.render());
    }
    if !state.checkout_limits.admit(session_id, client) {
        tracing::warn!("checkout submission rate-limited");
        let mut page =
            ctx.page(StatusCode::TOO_MANY_REQUESTS, unavailable_view(t.too_many_title, t.too_many_body.to_string()));
        if let View::Result(r) = &mut page.template.view {
            r.retry = Some(ctx.base());
            r.retry_label = t.back_to_payment;
        }
        let mut response = page.render();
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
        return Err(response);
    }
    Ok((ctx, form))
}

/// Reads a form body within the limit (a larger one is refused before it is read whole).
async fn form_body(request: axum::extract::Request) -> Result<Bytes, Response> {
    axum::body::to_bytes(request.into_body(), FORM_BODY_LIMIT).await.map_err(|_| {
        let t = Lang::En.strings();
        Page::message(StatusCode::PAYLOAD_TOO_LARGE, Lang::En, "unavailable", t.error_title, t.error_body).render()
    })
}

/// The field id of a problem's `field`.
fn target_of(field: &str) -> &'static str {
    match field {
        "details.cardNumber" => "card-number",
        "expiry" | "details.expiryMonth" | "details.expiryYear" => "card-expiry",
        "cvc" => "card-cvc",
        "details.cardholderName" => "cardholder-name",
        "details.iban" => "iban",
        "details.accountHolderName" => "account-holder",
        "mandateConsent" => "mandate-consent",
        f => match f.strip_prefix("details.billingAddress.") {
            Some(name) => BILLING.iter().find(|b| b.2 == name).map(|b| b.0).unwrap_or("form-errors"),
            None => "form-errors",
        },
    }
}

fn error_items(lang: Lang, problems: &[Problem]) -> Vec<ErrorItem> {
    problems
        .iter()
        .map(|p| {
            let field = p.details.iter().find(|(k, _)| k == "field").map(|(_, v)| v.as_str()).unwrap_or("");
            ErrorItem { target: target_of(field), message: lang.message(&p.code) }
        })
        .collect()
}

/// Runs a submission and answers it: `303` to the session page, or the form again
/// with its errors.
async fn submit(state: &AppState, ctx: Context, action: CheckoutAction, method: &str, values: KeptValues) -> Response {
    let session_id = ctx.view.session.record.session_id.clone();
    let lang = ctx.lang;
    let t = ctx.t();
    let outcome = match state.engine.checkout_submit(&session_id, action).await {
        Ok(o) => o,
        Err(e) => return internal_error(lang, &e.to_string()),
    };
    let back = ctx.base();
    match outcome {
        PayOutcome::Invalid(problems) => {
            let errors = error_items(lang, &problems);
            ctx.page_for_state(true, method, errors, values).render()
        }
        PayOutcome::Succeeded { .. }
        | PayOutcome::Failed { .. }
        | PayOutcome::ChallengeRequired
        | PayOutcome::Cancelled => see_other(&back),
        PayOutcome::Unavailable(Unavailable::NotFound) => unknown_session(lang),
        PayOutcome::Unavailable(Unavailable::Busy) => {
            ctx.page(StatusCode::CONFLICT, unavailable_view(t.busy_title, t.busy_body.to_string())).render()
        }
        // Ended while the submission ran: refused where the payment would have started.
        PayOutcome::Unavailable(Unavailable::Ended(ended)) => ctx.ended(ended).render(),
        PayOutcome::Unavailable(_) => see_other(&back),
    }
}

/// `POST /checkout/session/{sessionId}/card`.
#[utoipa::path(post, path = "/checkout/session/{sessionId}/card", tag = "hosted checkout", params(("sessionId" = String, Path)),
    request_body(content_type = "application/x-www-form-urlencoded", description = "Pays with a card: `cardNumber`, `expiry`, `cvc`, `cardholderName`, billing fields; every form also sends `csrf`"),
    responses((status = 303, description = "Submitted: back to the session page, which shows the result"),
    (status = 403, description = "Missing or wrong CSRF token", content_type = "text/html"),
    (status = 410, description = "The token ended (its pay-by-link cancelled or expired, its instruction voided): a page saying so; nothing charged", content_type = "text/html"),
    (status = 413, description = "Form over 16 KiB", content_type = "text/html"),
    (status = 422, description = "Refused input: the form again with its errors; nothing stored", content_type = "text/html"),
    (status = 429, description = "Too many submissions (per session and per client address)", content_type = "text/html")))]
pub async fn pay_card(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<Extension<ClientIp>>,
    Path(session_id): Path<String>,
    request: axum::extract::Request,
) -> Response {
    let (ctx, form) = match submission(&state, &headers, client, &session_id, request).await {
        Ok(pair) => pair,
        Err(page) => return page,
    };
    let billing = ctx.theme.collect_billing_address.then(|| {
        let mut map = serde_json::Map::new();
        for (_, name, json, _, _) in BILLING {
            map.insert(json.to_string(), Value::String(form.text(name)));
        }
        Value::Object(map)
    });
    let holder = form.get("cardholderName").map(str::to_string).filter(|_| ctx.theme.collect_cardholder_name);
    let values = KeptValues {
        expiry: form.text("expiry").chars().take(7).collect(),
        cardholder_name: holder.clone().unwrap_or_default().chars().take(140).collect(),
        account_holder: String::new(),
        billing: BILLING.iter().map(|b| (b.1, form.text(b.1).chars().take(100).collect())).collect(),
    };
    let card = CardInput {
        number: form.text("cardNumber"),
        expiry: form.text("expiry"),
        cvc: form.text("cvc"),
        holder_name: holder,
        billing_address: billing,
    };
    submit(&state, ctx, CheckoutAction::Card(card), "card", values).await
}

/// `POST /checkout/session/{sessionId}/bank`.
#[utoipa::path(post, path = "/checkout/session/{sessionId}/bank", tag = "hosted checkout", params(("sessionId" = String, Path)),
    request_body(content_type = "application/x-www-form-urlencoded", description = "Pays by SEPA direct debit: `iban`, `accountHolder`, `mandateConsent`; every form also sends `csrf`"),
    responses((status = 303, description = "Submitted: back to the session page, which shows the result"),
    (status = 403, description = "Missing or wrong CSRF token", content_type = "text/html"),
    (status = 410, description = "The token ended (its pay-by-link cancelled or expired, its instruction voided): a page saying so; nothing charged", content_type = "text/html"),
    (status = 413, description = "Form over 16 KiB", content_type = "text/html"),
    (status = 422, description = "Refused input: the form again with its errors; nothing stored", content_type = "text/html"),
    (status = 429, description = "Too many submissions (per session and per client address)", content_type = "text/html")))]
pub async fn pay_bank(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<Extension<ClientIp>>,
    Path(session_id): Path<String>,
    request: axum::extract::Request,
) -> Response {
    let (ctx, form) = match submission(&state, &headers, client, &session_id, request).await {
        Ok(pair) => pair,
        Err(page) => return page,
    };
    let values =
        KeptValues { account_holder: form.text("accountHolder").chars().take(140).collect(), ..Default::default() };
    let bank = BankInput {
        iban: form.text("iban"),
        holder_name: form.text("accountHolder"),
        consent: form.get("mandateConsent").is_some_and(|v| !v.is_empty()),
    };
    submit(&state, ctx, CheckoutAction::DirectDebit(bank), "bank", values).await
}

/// `GET /checkout/session/{sessionId}/paypal`: the sandbox PayPal approval step.
#[utoipa::path(get, path = "/checkout/session/{sessionId}/paypal", tag = "hosted checkout",
    params(("sessionId" = String, Path)),
    responses((status = 200, description = "The sandbox PayPal approval page", content_type = "text/html")))]
pub async fn paypal_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(session_id): Path<String>,
) -> Response {
    let fallback = request_lang(None, &headers);
    let view = match state.engine.checkout_view(&session_id).await {
        Ok(Some(v)) => v,
        Ok(None) => return unknown_session(fallback),
        Err(e) => return internal_error(fallback, &e.to_string()),
    };
    let ctx = Context::new(&state, &headers, view).await;
    let open = ctx.view.session.record.status == CheckoutStatus::Open && !ctx.view.expired;
    if !open || !ctx.view.payable || !ctx.view.paypal || ctx.view.ended.is_some() {
        return see_other(&ctx.base());
    }
    ctx.page(StatusCode::OK, View::Paypal(ActionView { base: ctx.base(), csrf: ctx.csrf.clone() })).render()
}

/// `POST /checkout/session/{sessionId}/paypal` with `decision=approve|cancel`.
#[utoipa::path(post, path = "/checkout/session/{sessionId}/paypal", tag = "hosted checkout", params(("sessionId" = String, Path)),
    request_body(content_type = "application/x-www-form-urlencoded", description = "The sandbox PayPal approval: `decision=approve|cancel`; every form also sends `csrf`"),
    responses((status = 303, description = "Submitted: back to the session page, which shows the result"),
    (status = 403, description = "Missing or wrong CSRF token", content_type = "text/html"),
    (status = 410, description = "The token ended (its pay-by-link cancelled or expired, its instruction voided): a page saying so; nothing charged", content_type = "text/html"),
    (status = 413, description = "Form over 16 KiB", content_type = "text/html"),
    (status = 422, description = "Refused input: the form again with its errors; nothing stored", content_type = "text/html"),
    (status = 429, description = "Too many submissions (per session and per client address)", content_type = "text/html")))]
pub async fn paypal_decision(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<Extension<ClientIp>>,
    Path(session_id): Path<String>,
    request: axum::extract::Request,
) -> Response {
    let (ctx, form) = match submission(&state, &headers, client, &session_id, request).await {
        Ok(pair) => pair,
        Err(page) => return page,
    };
    if form.get("decision") != Some("approve") {
        return see_other(&format!("{}?method=paypal", ctx.base()));
    }
    let action = CheckoutAction::WalletApproved { provider: "PAYPAL".into() };
    submit(&state, ctx, action, "paypal", KeptValues::default()).await
}

/// `POST /checkout/session/{sessionId}/challenge` with `decision=approve|fail`.
#[utoipa::path(post, path = "/checkout/session/{sessionId}/challenge", tag = "hosted checkout", params(("sessionId" = String, Path)),
    request_body(content_type = "application/x-www-form-urlencoded", description = "The sandbox authentication challenge: `decision=approve|fail`; every form also sends `csrf`"),
    responses((status = 303, description = "Submitted: back to the session page, which shows the result"),
    (status = 403, description = "Missing or wrong CSRF token", content_type = "text/html"),
    (status = 410, description = "The token ended (its pay-by-link cancelled or expired, its instruction voided): a page saying so; nothing charged", content_type = "text/html"),
    (status = 413, description = "Form over 16 KiB", content_type = "text/html"),
    (status = 422, description = "Refused input: the form again with its errors; nothing stored", content_type = "text/html"),
    (status = 429, description = "Too many submissions (per session and per client address)", content_type = "text/html")))]
pub async fn challenge_decision(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<Extension<ClientIp>>,
    Path(session_id): Path<String>,
    request: axum::extract::Request,
) -> Response {
    let (ctx, form) = match submission(&state, &headers, client, &session_id, request).await {
        Ok(pair) => pair,
        Err(page) => return page,
    };
    let approved = form.get("decision") == Some("approve");
    submit(&state, ctx, CheckoutAction::Authentication { approved }, "card", KeptValues::default()).await
}

/// `POST /checkout/session/{sessionId}/cancel`.
#[utoipa::path(post, path = "/checkout/session/{sessionId}/cancel", tag = "hosted checkout", params(("sessionId" = String, Path)),
    request_body(content_type = "application/x-www-form-urlencoded", description = "The customer cancels the payment; every form also sends `csrf`"),
    responses((status = 303, description = "Submitted: back to the session page, which shows the result"),
    (status = 403, description = "Missing or wrong CSRF token", content_type = "text/html"),
    (status = 410, description = "The token ended (its pay-by-link cancelled or expired, its instruction voided): a page saying so; nothing charged", content_type = "text/html"),
    (status = 413, description = "Form over 16 KiB", content_type = "text/html"),
    (status = 422, description = "Refused input: the form again with its errors; nothing stored", content_type = "text/html"),
    (status = 429, description = "Too many submissions (per session and per client address)", content_type = "text/html")))]
pub async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<Extension<ClientIp>>,
    Path(session_id): Path<String>,
    request: axum::extract::Request,
) -> Response {
    let (ctx, _form) = match submission(&state, &headers, client, &session_id, request).await {
        Ok(pair) => pair,
        Err(page) => return page,
    };
    submit(&state, ctx, CheckoutAction::Cancel, "card", KeptValues::default()).await
}

// -- assets --------------------------------------------------------------------------------------

const CSS: &str = include_str!("../../assets/checkout/checkout.css");
const JS: &str = include_str!("../../assets/checkout/checkout.js");

/// `GET /checkout/assets/{file}`: the page's stylesheet and script, embedded in the binary.
#[utoipa::path(get, path = "/checkout/assets/{file}", tag = "hosted checkout",
    params(("file" = String, Path, description = "`checkout.css` or `checkout.js`")),
    responses((status = 200, description = "The asset")))]
pub async fn asset(Path(file): Path<String>) -> Response {
    let (content_type, body) = match file.as_str() {
        "checkout.css" => ("text/css; charset=utf-8", CSS),
        "checkout.js" => ("text/javascript; charset=utf-8", JS),
        _ => return (StatusCode::NOT_FOUND, "").into_response(),
    };
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    response
}

/// The path as the access log shows it: checkout tokens and session ids left out.
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    if let Some(rest) = path.strip_prefix("/checkout/session/") {
        let tail = rest.split_once('/').map(|(_, t)| format!("/{t}")).unwrap_or_default();
        return format!("/checkout/session/{{sessionId}}{tail}").into();
    }
    if path.starts_with("/checkout/") && !path.starts_with("/checkout/assets/") {
        return "/checkout/{token}".into();
    }
    path.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_payload_is_url_encoded_standard_base64() {
        let o = Outcome {
            message_type: "imburse_payment_failed",
            bearer_token: "tok",
            provider_name: "Sandbox Card".into(),
            description: Some("Declined.".into()),
        };
        let url = o.failed_url("https://shop.example/failed?order=1");
        let payload = url.strip_prefix("https://shop.example/failed?order=1&payload=").unwrap();
        let decoded: String = form_urlencoded::parse(format!("p={payload}").as_bytes()).next().unwrap().1.into_owned();
        let json: Value = serde_json::from_slice(&STANDARD.decode(decoded).unwrap()).unwrap();
        assert_eq!(
            json,
            json!({ "bearerToken": "tok", "providerName": "Sandbox Card", "messageType": "imburse_payment_failed",
                    "messageDescription": "Declined." })
        );
        assert!(o.failed_url("https://shop.example/f").starts_with("https://shop.example/f?payload="));
    }

    #[test]
    fn log_paths_hide_capabilities() {
        assert_eq!(loggable_path("/checkout/session/AbC_123/card"), "/checkout/session/{sessionId}/card");
        assert_eq!(loggable_path("/checkout/session/AbC_123"), "/checkout/session/{sessionId}");
        assert_eq!(loggable_path("/checkout/bearerToken=secret"), "/checkout/{token}");
        assert_eq!(loggable_path("/checkout/assets/checkout.css"), "/checkout/assets/checkout.css");
        assert_eq!(loggable_path("/v1/account"), "/v1/account");
    }

    #[test]
    fn the_billing_address_form_and_escaping() {
        let lang = Lang::De;
        let t = lang.strings();
        let values = KeptValues {
            cardholder_name: "<img src=x onerror=alert(1)>".into(),
            billing: vec![("billingLocality", "Köln".into())],
            ..Default::default()
        };
        let forms = FormsView {
            base: "/checkout/session/x".into(),
            csrf: "c".into(),
            card: true,
            bank: false,
            paypal: false,
            method_count: 1,
            selected: "card",
            brands: vec![BrandMark { class: "visa".into(), name: "Visa" }],
            collect_name: true,
            collect_billing: true,
            billing_fields: billing_fields(t, &values),
            mandate_text: String::new(),
            errors: vec![ErrorItem { target: "billing-post-code", message: t.err_required }],
            values,
            notice: None,
        };
        let mut page = Page::new(StatusCode::OK, lang, View::Forms(forms));
        page.template.merchant = "Acme <script>alert(1)</script>".into();
        let html = page.template.render().unwrap();
        for hook in [
            r#"id="billing-first-name""#,
            r#"autocomplete="postal-code""#,
            r#"id="billing-country""#,
            r#"<label for="billing-company">Firma <span class="optional">(optional)</span>"#,
        ] {
            assert!(html.contains(hook), "{hook}");
        }
        assert!(html.contains(
            r#"id="billing-post-code-error" class="error" aria-live="polite">Dieses Feld ist erforderlich."#
        ));
        assert!(html.contains("Acme &lt;script&gt;alert(1)&lt;/script&gt;") && !html.contains("<script>alert"));
        assert!(html.contains(
            r#"name="billingLocality" type="text" autocomplete="address-level2" maxlength="100" value="Köln""#
        ));
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;") && !html.contains("<img"));
    }

    #[test]
    fn problems_point_at_their_fields() {
        assert_eq!(target_of("details.cardNumber"), "card-number");
        assert_eq!(target_of("details.expiryYear"), "card-expiry");
        assert_eq!(target_of("details.billingAddress.postCode"), "billing-post-code");
        assert_eq!(target_of("somewhere"), "form-errors");
    }
}
