//! `SANDBOX_CARD`: the built-in sandbox card and wallet PSP (collect and payout, CIT and MIT).
//!
//! # Notifications
//!
//! The sandbox PSP's notifications are posted to `POST /v1/psp-events/{tenantId}/SANDBOX_CARD`
//! (no bearer token) as a JSON body signed with HMAC-SHA256 under the installed app's
//! secret `apiKey`: header `Baton-Sandbox-Signature: t=<unix seconds>,v1=<hex>` where the
//! signature is over `"<t>.<body>"`, and `t` must be within 300 s of Baton's clock. Without
//! a configured `apiKey` every notification is refused as unverifiable. Bodies:
//!
//! - `{"type": "chargeback", "paymentReference", "disputeReference", "amountMinor",
//!   "currency", "reason": FRAUD|QUALITY|CLERICAL|TECHNICAL, "providerReasonCode"?,
//!   "status": OPEN|EVIDENCE_SUBMITTED|WON|LOST|ACCEPTED, "dueBy"? (unix ms)}`
//! - `{"type": "payment", "providerReference", "status": SETTLED|FAILED, "code"? (a
//!   decline category such as INSUFFICIENT_FUNDS, for FAILED)}`
//! - `{"type": "refund", "paymentReference", "refundReference", "status": SETTLED|FAILED}`
//! - anything else with a `type` is verified and ignored.

use std::time::Duration;

use async_trait::async_trait;
use baton_domain::{
    AppType, ChargebackReason, ChargebackStatus, Country, Currency, Decline, DeclineCategory, Direction,
    InstrumentDetails, Problem, TransactionType,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::{ConfigField, ConfigSchema, FieldKind, MerchantAccountSetting};
use crate::connector::{
    CallContext, Connector, ConnectorError, DisputeRequest, FollowUp, IncomingNotification, Notification,
    NotificationError, Outcome, PaymentRequest, RefundRequest, SyncRequest, Tokenized,
};
use crate::descriptor::{AppDescriptor, Network, PaymentMethod, Settlement};

pub const APP_ID: &str = "SANDBOX_CARD";

/// The merchant account used when the configuration has no settings: the sandbox then
/// accepts every supported currency.
pub const DEFAULT_MERCHANT_ACCOUNT_ID: &str = "sandbox-default";

const BOTH: &[Direction] = &[Direction::Debit, Direction::Credit];

const fn card(
    id: &'static str,
    name: &'static str,
    tags: &'static [&'static str],
    provider_warning_required: bool,
) -> PaymentMethod {
    PaymentMethod {
        id,
        name,
        is_credit_card: true,
        supports_direct_sale: true,
        supports_recurring: true,
        provider_warning_required,
        tags,
        directions: BOTH,
    }
}

pub const METHODS: &[PaymentMethod] = &[
    card("VISA", "Visa", &["card", "credit-card", "debit-card"], false),
    card("MASTERCARD", "Mastercard", &["card", "credit-card", "debit-card"], false),
    // As on Braintree, American Express must be activated with the provider first.
    card("AMERICAN-EXPRESS", "American Express", &["card", "credit-card"], true),
    card("DISCOVER", "Discover", &["card", "credit-card"], false),
    card("MAESTRO", "Maestro", &["card", "debit-card"], false),
    PaymentMethod {
        id: "PAYPAL",
        name: "PayPal",
        is_credit_card: false,
        supports_direct_sale: true,
        supports_recurring: true,
        provider_warning_required: false,
        tags: &["wallet"],
        directions: BOTH,
    },
];

pub const CONFIG: ConfigSchema = ConfigSchema {
    fields: &[
        ConfigField {
            name: "merchantName",
            kind: FieldKind::String,
            required: false,
            secret: false,
            description: "The name shown to customers on the sandbox checkout.",
            default: None,
        },
        ConfigField {
            name: "apiKey",
            kind: FieldKind::String,
            required: false,
            secret: true,
            description: "A pretend provider API key; stored encrypted and masked on output.",
            default: None,
        },
        ConfigField {
            name: "settings",
            kind: FieldKind::Settings,
            required: false,
            secret: false,
            description: "Merchant accounts by currency and countries (empty countries = all). \
                          With no settings every supported currency uses the default sandbox account.",
            default: None,
        },
    ],
    check: None,
};

pub const DESCRIPTOR: AppDescriptor = AppDescriptor {
    app_id: APP_ID,
    name: "Sandbox Card",
    developer_id: crate::BATON_DEVELOPER_ID,
    developer_name: crate::BATON_DEVELOPER_NAME,
    description: "A built-in test PSP for cards and PayPal. Collects and pays out in every supported country and \
                  currency, customer- or merchant-initiated, without contacting any provider. Test card numbers \
                  decide the outcome.",
    icon_svg: include_str!("../assets/sandbox_card.svg"),
    tags: &["sandbox", "cards", "wallet"],
    app_type: AppType::Payment,
    directions: BOTH,
    payment_methods: METHODS,
    networks: Network::ALL,
    transaction_types: &[TransactionType::Cit, TransactionType::Mit],
    countries: Country::ALL,
    currencies: Currency::ALL,
    settlement: Settlement::Immediate,
    config: &CONFIG,
};

/// The merchant account for a payment under a validated configuration: the configured
/// setting (SPEC §4.5 routing), or [`DEFAULT_MERCHANT_ACCOUNT_ID`] when there are no
/// settings; `402 NO_MERCHANT_ACCOUNT` when settings exist but none fits.
pub fn merchant_account_for(config: &Value, currency: Currency, country: Country) -> Result<String, Problem> {
    let settings = MerchantAccountSetting::from_config(config);
    if settings.is_empty() {
        return Ok(DEFAULT_MERCHANT_ACCOUNT_ID.to_string());
    }
    MerchantAccountSetting::select(&settings, currency, country).map(|s| s.merchant_account_id.clone()).ok_or_else(
        || {
            Problem::payment_required("NO_MERCHANT_ACCOUNT")
                .message("No merchant account is configured for {currency} in {country}.")
                .detail("currency", currency.as_str())
                .detail("country", country.as_str())
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Behaviour
// ---------------------------------------------------------------------------------------------

/// Test cards and what they do (debits; payouts succeed except to the decline numbers).
/// [`test_cards::AUTHENTICATION_REQUIRED`] succeeds only when the customer passed the
/// checkout's challenge (`extra.authenticated`), so a merchant-initiated debit fails.
pub mod test_cards {
    pub const VISA: &str = "4242424242424242";
    pub const MASTERCARD: &str = "5555555555554444";
    pub const AMEX: &str = "378282246310005";
    pub const HARD_DECLINE: &str = "4000000000000002";
    pub const INSUFFICIENT_FUNDS: &str = "4000000000009995";
    pub const TECHNICAL_ERROR: &str = "4000000000000119";
    pub const AUTHENTICATION_REQUIRED: &str = "4000000000003220";
    pub const FRAUD_CHARGEBACK: &str = "4000000000000259";
}

/// How long after its success a [`test_cards::FRAUD_CHARGEBACK`] payment is disputed.
pub const FRAUD_CHARGEBACK_DELAY: Duration = Duration::from_secs(3);

/// The sandbox card PSP: deterministic outcomes by card number, so that a status sync
/// of an attempt answers exactly what the original call answered.
#[derive(Debug, Default, Clone, Copy)]
pub struct SandboxCard;

/// A sandbox provider reference: `prefix` and a digest of the call's idempotency key, so
/// that repeating a call (a sync) names the same operation. Shared by the sandbox apps.
pub(crate) fn reference(prefix: &str, idempotency_key: &str) -> String {
    let digest = Sha256::digest(idempotency_key.as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("{prefix}_{hex}")
}

impl SandboxCard {
    fn outcome(request: &PaymentRequest<'_>, payout: bool) -> Outcome {
        let declined = |category: DeclineCategory, psp_code: &str, message: &str| Outcome::Failed {
            decline: Decline::new(category).psp(Some(psp_code.into()), Some(message.into())),
            provider_reference: Some(reference("sbx_ch", request.idempotency_key)),
        };
        let number = match request.instrument {
            InstrumentDetails::Card(card) => card.number.expose().to_string(),
            // PayPal and other wallets approve in the checkout; an approved wallet pays.
            _ if request.payment_method.is_some_and(|m| m.eq_ignore_ascii_case("PAYPAL")) => String::new(),
            _ => {
                return Outcome::Failed {
                    decline: Decline::new(DeclineCategory::HardDecline)
                        .code("PAYMENT_METHOD_NOT_SUPPORTED")
                        .psp(Some("unsupported_instrument".into()), Some("The sandbox card PSP takes cards.".into())),
                    provider_reference: None,
                }
            }
        };
        match number.as_str() {
            test_cards::HARD_DECLINE => declined(DeclineCategory::HardDecline, "card_declined", "Do not honour."),
            test_cards::INSUFFICIENT_FUNDS => {
                declined(DeclineCategory::InsufficientFunds, "insufficient_funds", "Insufficient funds.")
            }
            test_cards::TECHNICAL_ERROR => {
                declined(DeclineCategory::Technical, "processing_error", "The issuer could not be reached.")
            }
            test_cards::AUTHENTICATION_REQUIRED
                if !payout && !request.extra.get("authenticated").and_then(Value::as_bool).unwrap_or(false) =>
            {
                declined(
                    DeclineCategory::AuthenticationRequired,
                    "authentication_required",
                    "The issuer requires the customer to authenticate.",
                )
            }
            _ => Outcome::Succeeded {
                provider_reference: reference(if payout { "sbx_po" } else { "sbx_ch" }, request.idempotency_key),
                result: None,
            },
        }
    }
}

#[async_trait]
impl Connector for SandboxCard {
    fn descriptor(&self) -> &'static AppDescriptor {
        &DESCRIPTOR
    }

    async fn tokenize(
        &self,
        _ctx: &CallContext<'_>,
        instrument: &InstrumentDetails,
    ) -> Result<Tokenized, ConnectorError> {
        match instrument {
            InstrumentDetails::Card(card) => Ok(Tokenized::Token(reference(
                "sbx_pm",
                &format!("{}|{}", card.number.expose(), card.expiry.display()),
            ))),
            _ => Ok(Tokenized::NotNeeded),
        }
    }

    async fn debit(&self, _ctx: &CallContext<'_>, request: &PaymentRequest<'_>) -> Result<Outcome, ConnectorError> {
        Ok(Self::outcome(request, false))
    }

    async fn credit(&self, _ctx: &CallContext<'_>, request: &PaymentRequest<'_>) -> Result<Outcome, ConnectorError> {
        Ok(Self::outcome(request, true))
    }

    async fn refund(&self, _ctx: &CallContext<'_>, request: &RefundRequest<'_>) -> Result<Outcome, ConnectorError> {
        Ok(Outcome::Succeeded { provider_reference: reference("sbx_re", request.idempotency_key), result: None })
    }

    async fn sync(&self, _ctx: &CallContext<'_>, request: &SyncRequest<'_>) -> Result<Outcome, ConnectorError> {
        Ok(Self::outcome(&request.payment, false))
    }

    /// The sandbox takes every evidence submission and acceptance.
    async fn dispute(&self, _ctx: &CallContext<'_>, _request: &DisputeRequest<'_>) -> Result<(), ConnectorError> {
        Ok(())
    }

    fn parse_notification(
        &self,
        ctx: &CallContext<'_>,
        incoming: &IncomingNotification<'_>,
    ) -> Result<Vec<Notification>, NotificationError> {
        signed::parse(ctx, incoming)
    }

    fn follow_ups(&self, request: &PaymentRequest<'_>, outcome: &Outcome) -> Vec<FollowUp> {
        let (InstrumentDetails::Card(card), Outcome::Succeeded { provider_reference, .. }) =
            (request.instrument, outcome)
        else {
            return Vec::new();
        };
        if card.number.expose() != test_cards::FRAUD_CHARGEBACK {
            return Vec::new();
        }
        vec![FollowUp {
            after: FRAUD_CHARGEBACK_DELAY,
            notification: Notification::Chargeback {
                payment_reference: provider_reference.clone(),
                dispute_reference: reference("sbx_dp", request.idempotency_key),
                amount_minor: request.amount_minor,
                currency: request.currency,
                reason: ChargebackReason::Fraud,
                provider_reason_code: Some("10.4".into()),
                status: ChargebackStatus::Open,
                due_by: None,
            },
        }]
    }
}

/// The sandbox PSPs' signed notifications (see the module documentation).
pub mod signed {
    use baton_domain::{ChargebackReason, ChargebackStatus, Currency, Decline, DeclineCategory};
    use hmac::{Hmac, Mac};
    use serde_json::Value;
    use sha2::Sha256;

    use crate::connector::{CallContext, IncomingNotification, Notification, NotificationError, Outcome};

    /// The signature header (lower case, as the engine passes headers).
    pub const HEADER: &str = "baton-sandbox-signature";
    /// How far `t` may be from Baton's clock.
    pub const TOLERANCE_SECONDS: i64 = 300;

    fn mac(secret: &str, t: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The header value for `body` signed at `t` (for clients and tests).
    pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
        let bytes = mac(secret, t, body).finalize().into_bytes();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("t={t},v1={hex}")
    }

    fn unhex(s: &str) -> Option<Vec<u8>> {
        if !s.len().is_multiple_of(2) {
            return None;
        }
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
    }

    /// Verifies the signature with the app's `apiKey`, then reads the body.
    pub fn parse(
        ctx: &CallContext<'_>,
        incoming: &IncomingNotification<'_>,
    ) -> Result<Vec<Notification>, NotificationError> {
        let unverified = |why: &str| NotificationError::Unverified(why.to_string());
        let secret = ctx.credentials.secrets.get("apiKey").and_then(Value::as_str).filter(|s| !s.is_empty());
        let secret = secret.ok_or_else(|| unverified("no apiKey is configured to verify notifications"))?;
        let header = incoming.headers.get(HEADER).ok_or_else(|| unverified("signature header missing"))?;
        let mut t = None;
        let mut signatures = Vec::new();
        for part in header.split(',') {
            match part.trim().split_once('=') {
                Some(("t", v)) => t = v.trim().parse::<i64>().ok(),
                Some(("v1", v)) => signatures.push(v.trim().to_string()),
                _ => {}
            }
        }
        let t = t.ok_or_else(|| unverified("timestamp missing"))?;
        if (incoming.now - t).abs() > TOLERANCE_SECONDS {
            return Err(unverified("timestamp outside the tolerance"));
        }
        let valid = signatures
            .iter()
            .filter_map(|s| unhex(s))
            .any(|sig| mac(secret, t, incoming.body).verify_slice(&sig).is_ok());
        if !valid {
            return Err(unverified("signature mismatch"));
        }
        let body: Value = serde_json::from_slice(incoming.body)
            .map_err(|_| NotificationError::Malformed("the body is not JSON".into()))?;
        read(&body).map(|n| vec![n])
    }

    fn read(v: &Value) -> Result<Notification, NotificationError> {
        let malformed = |what: &str| NotificationError::Malformed(format!("{what} is missing or invalid"));
        let text = |name: &str| v.get(name).and_then(Value::as_str).map(str::to_string).ok_or_else(|| malformed(name));
        let kind = text("type")?;
        match kind.as_str() {
            "chargeback" => Ok(Notification::Chargeback {
                payment_reference: text("paymentReference")?,
                dispute_reference: text("disputeReference")?,
                amount_minor: v
                    .get("amountMinor")
                    .and_then(Value::as_i64)
                    .filter(|a| *a > 0)
                    .ok_or_else(|| malformed("amountMinor"))?,
                currency: text("currency")?.parse::<Currency>().map_err(|_| malformed("currency"))?,
                reason: text("reason")?.parse::<ChargebackReason>().map_err(|_| malformed("reason"))?,
                provider_reason_code: v.get("providerReasonCode").and_then(Value::as_str).map(str::to_string),
                status: text("status")?.parse::<ChargebackStatus>().map_err(|_| malformed("status"))?,
                due_by: v.get("dueBy").and_then(Value::as_i64),
            }),
            "payment" => {
                let provider_reference = text("providerReference")?;
                let outcome = match text("status")?.as_str() {
                    "SETTLED" => Outcome::Succeeded { provider_reference: provider_reference.clone(), result: None },
                    "FAILED" => {
                        let category = match v.get("code").and_then(Value::as_str) {
                            None => DeclineCategory::HardDecline,
                            Some(c) => c.parse::<DeclineCategory>().map_err(|_| malformed("code"))?,
                        };
                        Outcome::Failed {
                            decline: Decline::new(category).psp(Some("sandbox_notification".into()), None),
                            provider_reference: Some(provider_reference.clone()),
                        }
                    }
                    _ => return Err(malformed("status")),
                };
                Ok(Notification::Payment { provider_reference, outcome })
            }
            "refund" => Ok(Notification::Refund {
                provider_reference: text("paymentReference")?,
                refund_reference: text("refundReference")?,
                succeeded: match text("status")?.as_str() {
                    "SETTLED" => true,
                    "FAILED" => false,
                    _ => return Err(malformed("status")),
                },
            }),
            _ => Ok(Notification::Ignored),
        }
    }
}
