//! `STRIPE`: card collections through Stripe's PaymentIntents API.
//!
//! - tokenize: a PaymentMethod is created from the vault's card details; its id is the
//!   instrument's token for this app (the engine caches it);
//! - debit: a PaymentIntent created and confirmed at once (`off_session` for MIT), with
//!   the attempt's `Idempotency-Key`;
//! - refund: a Refund of the PaymentIntent (a 5xx is indeterminate, never a failure);
//! - refund sync: the Refund read back by its id; when that was never recorded, the
//!   PaymentIntent's refunds listed and the one with this refund's
//!   `metadata[baton_refund]` taken, else the create call repeated with the same
//!   idempotency key; when that again fails at Stripe, no refund is listed after it and
//!   every earlier call is surely over, none was made;
//! - sync: the PaymentIntent read back; when its id was never recorded (the answer was
//!   lost, or Stripe failed with a 5xx, which it calls indeterminate), the PaymentIntent
//!   found by Stripe's search on `metadata['baton_attempt']`, else the create call
//!   repeated with the same idempotency key, which Stripe answers with the original
//!   result instead of charging again;
//! - notifications: webhooks verified with `Stripe-Signature` (HMAC-SHA256, 300 s tolerance).

mod client;
pub mod transformers;

use std::sync::OnceLock;

use async_trait::async_trait;
use baton_domain::{AppType, Country, Currency, DeclineCategory, Direction, InstrumentDetails, TransactionType};

use crate::config::{ConfigField, ConfigSchema, DefaultValue, FieldKind};
use crate::connector::{
    CallContext, Connector, ConnectorError, IncomingNotification, Notification, NotificationError, Outcome,
    PaymentRequest, RefundRequest, RefundSyncRequest, SyncRequest, Tokenized,
};
use crate::descriptor::{AppDescriptor, Network, PaymentMethod, Settlement};
use crate::http_client::{HttpClient, HttpClientConfig};

pub use client::{StripeClient, StripeReply};
pub use transformers::{verify_signature, SIGNATURE_TOLERANCE_SECS};

pub const APP_ID: &str = "STRIPE";

/// Stripe's API.
pub const DEFAULT_API_BASE_URL: &str = "https://api.stripe.com";

const DEBIT: &[Direction] = &[Direction::Debit];

const fn card(id: &'static str, name: &'static str, tags: &'static [&'static str]) -> PaymentMethod {
    PaymentMethod {
        id,
        name,
        is_credit_card: true,
        supports_direct_sale: true,
        supports_recurring: true,
        provider_warning_required: false,
        tags,
        directions: DEBIT,
    }
}

pub const METHODS: &[PaymentMethod] = &[
    card("VISA", "Visa", &["card", "credit-card", "debit-card"]),
    card("MASTERCARD", "Mastercard", &["card", "credit-card", "debit-card"]),
    card("AMERICAN-EXPRESS", "American Express", &["card", "credit-card"]),
    card("DISCOVER", "Discover", &["card", "credit-card"]),
];

pub const CONFIG: ConfigSchema = ConfigSchema {
    fields: &[
        ConfigField {
            name: "secretKey",
            kind: FieldKind::String,
            required: true,
            secret: true,
            description: "Your Stripe secret API key (sk_live_… or sk_test_…, or a restricted key rk_…).",
            default: None,
        },
        ConfigField {
            name: "webhookSecret",
            kind: FieldKind::String,
            required: false,
            secret: true,
            description: "The signing secret (whsec_…) of the webhook endpoint that sends Stripe's events to \
                          Baton. Without it, incoming events are refused.",
            default: None,
        },
        ConfigField {
            name: "apiBaseUrl",
            kind: FieldKind::String,
            required: false,
            secret: false,
            description: "Stripe's API address; change it only to test against a Stripe-compatible server.",
            default: Some(DefaultValue::String(DEFAULT_API_BASE_URL)),
        },
        ConfigField {
            name: "settings",
            kind: FieldKind::Settings,
            required: false,
            secret: false,
            description: "Merchant accounts by currency and countries (empty countries = all).",
            default: None,
        },
    ],
    check: Some(check_config),
};

/// The API address must be an http(s) URL.
fn check_config(config: &serde_json::Value) -> Vec<baton_domain::Problem> {
    let url = config.get("apiBaseUrl").and_then(serde_json::Value::as_str).unwrap_or(DEFAULT_API_BASE_URL);
    let valid = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() > "https://".len()
        && !url.contains(char::is_whitespace);
    if valid {
        Vec::new()
    } else {
        vec![baton_domain::Problem::invalid_field(
            "INVALID_CONFIGURATION_FIELD",
            "apiBaseUrl",
            "{field} must be an http or https URL.",
        )]
    }
}

pub const DESCRIPTOR: AppDescriptor = AppDescriptor {
    app_id: APP_ID,
    name: "Stripe",
    developer_id: crate::BATON_DEVELOPER_ID,
    developer_name: crate::BATON_DEVELOPER_NAME,
    description: "Collect card payments through your Stripe account: customer- or merchant-initiated, with \
                  refunds and disputes reported by Stripe's webhooks.",
    icon_svg: include_str!("../../assets/stripe.svg"),
    tags: &["cards", "psp"],
    app_type: AppType::Payment,
    directions: DEBIT,
    payment_methods: METHODS,
    networks: Network::ALL,
    transaction_types: &[TransactionType::Cit, TransactionType::Mit],
    countries: Country::ALL,
    currencies: Currency::ALL,
    settlement: Settlement::Immediate,
    config: &CONFIG,
};

/// The Stripe connector. The HTTP client is built on first use and shared.
#[derive(Debug, Default)]
pub struct Stripe {
    config: Option<HttpClientConfig>,
    http: OnceLock<HttpClient>,
}

impl Stripe {
    pub fn new() -> Self {
        Self::default()
    }

    /// With other timeouts or retries than the defaults.
    pub fn with_http_config(config: HttpClientConfig) -> Self {
        Self { config: Some(config), http: OnceLock::new() }
    }

    fn client(&self, ctx: &CallContext<'_>) -> Result<StripeClient, ConnectorError> {
        let http = self.http.get_or_init(|| HttpClient::new(self.config.unwrap_or_default())).clone();
        let secret_key = ctx
            .credentials
            .get("secretKey")
            .filter(|k| !k.is_empty())
            .ok_or_else(|| ConnectorError::Unsupported("STRIPE is not configured: secretKey is missing".into()))?;
        let base_url = ctx.credentials.get("apiBaseUrl").filter(|u| !u.is_empty()).unwrap_or(DEFAULT_API_BASE_URL);
        Ok(StripeClient::new(http, base_url, secret_key))
    }

    async fn create_intent(
        &self,
        ctx: &CallContext<'_>,
        request: &PaymentRequest<'_>,
    ) -> Result<Outcome, ConnectorError> {
        let Some(token) = request.token else {
            return Ok(Outcome::Failed {
                decline: baton_domain::Decline::new(DeclineCategory::Technical)
                    .code("PAYMENT_METHOD_NOT_SUPPORTED")
                    .psp(None, Some("Stripe needs a payment method; the card was not tokenized.".into())),
                provider_reference: None,
            });
        };
        let client = self.client(ctx)?;
        let form = transformers::payment_intent_form(request, token);
        let reply = client.post("/v1/payment_intents", &form, Some(request.idempotency_key)).await;
        transformers::intent_reply(reply)
    }
}

impl Stripe {
    /// The outcome of an attempt whose answer never came, or came as a 5xx. Stripe's
    /// search finds the payment intent it made, if any; otherwise the create call is
    /// repeated with the same idempotency key, which Stripe answers with what it did (or
    /// carries out, if the first call never reached it). When that still tells nothing
    /// and the attempt is older than search takes to show a payment intent, none was made.
    async fn find_or_repeat(
        &self,
        ctx: &CallContext<'_>,
        request: &SyncRequest<'_>,
    ) -> Result<Outcome, ConnectorError> {
        let client = self.client(ctx)?;
        let attempt = request.payment.attempt_id;
        let found = client.get(&transformers::search_path(attempt)).await;
        if let Some(intent) = transformers::search_reply(found, attempt)? {
            return transformers::intent_outcome(&intent);
        }
        match self.create_intent(ctx, &request.payment).await {
            Err(ConnectorError::Unknown(reason)) if request.attempt_age >= transformers::SEARCH_SHOWS_AFTER => {
                Ok(Outcome::Failed {
                    decline: baton_domain::Decline::new(DeclineCategory::Technical).psp(
                        Some("api_error".into()),
                        Some(format!("Stripe made no payment for this attempt ({reason})")),
                    ),
                    provider_reference: None,
                })
            }
            other => other,
        }
    }

    /// The refund Baton asked for as `request.refund_id`, among the payment intent's
    /// refunds; `None` when Stripe lists none; unknown when the list could not be read.
    async fn listed_refund(
        &self,
        client: &StripeClient,
        request: &RefundRequest<'_>,
    ) -> Result<Option<serde_json::Value>, ConnectorError> {
        let mut after: Option<String> = None;
        for _ in 0..transformers::REFUND_LIST_PAGES {
            let path = transformers::refund_list_path(request.payment_reference, after.as_deref());
            match transformers::refund_list_reply(client.get(&path).await, request.refund_id)? {
                transformers::ListedRefund::Found(refund) => return Ok(Some(refund)),
                transformers::ListedRefund::NotListed => return Ok(None),
                transformers::ListedRefund::NextPage(last) => after = Some(last),
            }
        }
        Err(ConnectorError::Unknown(format!(
            "the payment intent has more than {} pages of refunds",
            transformers::REFUND_LIST_PAGES
        )))
    }

    /// The outcome of a refund whose answer never came, or came as a 5xx. The payment
    /// intent's refunds are listed (the list, unlike search, shows a refund as soon as it
    /// is made); if it is not there, the create call is repeated with the same idempotency
    /// key, which Stripe answers with what it did (or carries out, if no earlier call
    /// reached it). A repeat that fails at Stripe again (a 5xx: no call with this key is
    /// still running, or it would be answered `409`) is followed by a second look at the
    /// list; when that still shows no refund and every earlier call is surely over, none
    /// was made.
    async fn find_or_repeat_refund(
        &self,
        ctx: &CallContext<'_>,
        request: &RefundSyncRequest<'_>,
    ) -> Result<Outcome, ConnectorError> {
        let client = self.client(ctx)?;
        if let Some(refund) = self.listed_refund(&client, &request.refund).await? {
            return transformers::refund_outcome(&refund);
        }
        let form = transformers::refund_form(&request.refund);
        let reply = client.post("/v1/refunds", &form, Some(request.refund.idempotency_key)).await;
        let Some(failure) = transformers::stripe_failure(&reply) else { return transformers::refund_reply(reply) };
        if let Some(refund) = self.listed_refund(&client, &request.refund).await? {
            return transformers::refund_outcome(&refund);
        }
        if request.refund_age >= transformers::REFUND_CALLS_OVER_AFTER {
            return Ok(transformers::no_refund_made(&failure));
        }
        transformers::refund_reply(reply)
    }
}

#[async_trait]
impl Connector for Stripe {
    fn descriptor(&self) -> &'static AppDescriptor {
        &DESCRIPTOR
    }

    async fn tokenize(
        &self,
        ctx: &CallContext<'_>,
        instrument: &InstrumentDetails,
    ) -> Result<Tokenized, ConnectorError> {
        let InstrumentDetails::Card(card) = instrument else { return Ok(Tokenized::NotNeeded) };
        let client = self.client(ctx)?;
        let form = transformers::payment_method_form(card);
        // Creating a payment method moves no money: no idempotency key needed.
        let reply = client.post("/v1/payment_methods", &form, None).await;
        transformers::tokenize_reply(reply)
    }

    async fn debit(&self, ctx: &CallContext<'_>, request: &PaymentRequest<'_>) -> Result<Outcome, ConnectorError> {
        self.create_intent(ctx, request).await
    }

    async fn refund(&self, ctx: &CallContext<'_>, request: &RefundRequest<'_>) -> Result<Outcome, ConnectorError> {
        let client = self.client(ctx)?;
        let form = transformers::refund_form(request);
        let reply = client.post("/v1/refunds", &form, Some(request.idempotency_key)).await;
        transformers::refund_reply(reply)
    }

    async fn sync_refund(
        &self,
        ctx: &CallContext<'_>,
        request: &RefundSyncRequest<'_>,
    ) -> Result<Outcome, ConnectorError> {
        match request.provider_reference.filter(|r| r.starts_with("re_")) {
            Some(reference) => {
                let client = self.client(ctx)?;
                let reply = client.get(&format!("/v1/refunds/{reference}")).await;
                transformers::refund_read_reply(reply)
            }
            None => self.find_or_repeat_refund(ctx, request).await,
        }
    }

    async fn sync(&self, ctx: &CallContext<'_>, request: &SyncRequest<'_>) -> Result<Outcome, ConnectorError> {
        match request.provider_reference.filter(|r| r.starts_with("pi_")) {
            Some(reference) => {
                let client = self.client(ctx)?;
                let reply = client.get(&format!("/v1/payment_intents/{reference}")).await;
                transformers::intent_reply(reply)
            }
            None => self.find_or_repeat(ctx, request).await,
        }
    }

    fn parse_notification(
        &self,
        ctx: &CallContext<'_>,
        incoming: &IncomingNotification<'_>,
    ) -> Result<Vec<Notification>, NotificationError> {
        let secret = ctx
            .credentials
            .get("webhookSecret")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| NotificationError::Unverified("STRIPE has no webhookSecret configured".into()))?;
        let header = incoming
            .headers
            .get("stripe-signature")
            .ok_or_else(|| NotificationError::Unverified("the Stripe-Signature header is missing".into()))?;
        verify_signature(secret, header, incoming.body, incoming.now, SIGNATURE_TOLERANCE_SECS)?;
        transformers::parse_event(incoming.body)
    }
}

#[cfg(test)]
mod tests;
