//! `SANDBOX_BANK`: the built-in sandbox bank. Collects by direct-debit mandate and pays out
//! by bank transfer, merchant-initiated only, settling asynchronously after a delay.

use std::time::Duration;

use baton_domain::{
    AppType, Country, Currency, Decline, DeclineCategory, Direction, InstrumentDetails, Problem, TransactionType,
};
use serde_json::Value;

use crate::config::{ConfigField, ConfigSchema, DefaultValue, FieldKind};
use crate::connector::{CallContext, Connector, ConnectorError, Outcome, PaymentRequest, RefundRequest, SyncRequest};
use crate::descriptor::{AppDescriptor, PaymentMethod, Settlement};

pub const APP_ID: &str = "SANDBOX_BANK";

/// Seconds between acceptance and settlement when the configuration does not say.
pub const DEFAULT_SETTLEMENT_DELAY_SECONDS: i64 = 2;
pub const MAX_SETTLEMENT_DELAY_SECONDS: i64 = 86_400;
/// The longest creditor id accepted (a SEPA creditor identifier has at most 35 characters).
pub const MAX_CREDITOR_ID_CHARS: usize = 35;

pub const METHODS: &[PaymentMethod] = &[
    PaymentMethod {
        id: "DIRECT_DEBIT",
        name: "Direct Debit",
        is_credit_card: false,
        supports_direct_sale: false,
        supports_recurring: true,
        provider_warning_required: false,
        tags: &["bank", "mandate"],
        directions: &[Direction::Debit],
    },
    PaymentMethod {
        id: "BANK_TRANSFER",
        name: "Bank Transfer",
        is_credit_card: false,
        supports_direct_sale: true,
        supports_recurring: true,
        provider_warning_required: false,
        tags: &["bank"],
        directions: &[Direction::Credit],
    },
];

pub const CONFIG: ConfigSchema = ConfigSchema {
    fields: &[
        ConfigField {
            name: "creditorName",
            kind: FieldKind::String,
            required: true,
            secret: false,
            description: "The creditor name shown on mandates and bank statements.",
            default: None,
        },
        ConfigField {
            name: "creditorId",
            kind: FieldKind::String,
            required: true,
            secret: false,
            description: "The creditor identifier: letters and digits, at most 35 characters.",
            default: None,
        },
        ConfigField {
            name: "settlementDelaySeconds",
            kind: FieldKind::Integer { min: 0, max: MAX_SETTLEMENT_DELAY_SECONDS },
            required: false,
            secret: false,
            description: "How long the sandbox bank waits before settling a transaction.",
            default: Some(DefaultValue::Integer(DEFAULT_SETTLEMENT_DELAY_SECONDS)),
        },
    ],
    check: Some(check),
};

/// A creditor id is 1–35 ASCII letters and digits (e.g. `DE98ZZZ09999999999`).
fn check(config: &Value) -> Vec<Problem> {
    let id = config.get("creditorId").and_then(Value::as_str).unwrap_or_default();
    if id.len() <= MAX_CREDITOR_ID_CHARS && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Vec::new()
    } else {
        vec![Problem::invalid_field(
            "INVALID_CONFIGURATION_FIELD",
            "creditorId",
            "{field} must be at most {limit} letters and digits.",
        )
        .detail("limit", MAX_CREDITOR_ID_CHARS.to_string())]
    }
}

pub const DESCRIPTOR: AppDescriptor = AppDescriptor {
    app_id: APP_ID,
    name: "Sandbox Bank",
    developer_id: crate::BATON_DEVELOPER_ID,
    developer_name: crate::BATON_DEVELOPER_NAME,
    description: "A built-in test bank: collects by direct-debit mandate and pays out by bank transfer. \
                  Payments are merchant-initiated and settle asynchronously after a configurable delay, \
                  like a real bank scheme.",
    icon_svg: include_str!("../assets/sandbox_bank.svg"),
    tags: &["sandbox", "bank", "direct-debit"],
    app_type: AppType::Payment,
    directions: &[Direction::Debit, Direction::Credit],
    payment_methods: METHODS,
    networks: &[],
    transaction_types: &[TransactionType::Mit],
    countries: Country::ALL,
    currencies: Currency::ALL,
    settlement: Settlement::Asynchronous,
    config: &CONFIG,
};

/// The settlement delay of a validated configuration (the default when absent).
pub fn settlement_delay(config: &Value) -> Duration {
    let secs = config
        .get("settlementDelaySeconds")
        .and_then(Value::as_i64)
        .unwrap_or(DEFAULT_SETTLEMENT_DELAY_SECONDS)
        .clamp(0, MAX_SETTLEMENT_DELAY_SECONDS);
    Duration::from_secs(secs.unsigned_abs())
}

// ---------------------------------------------------------------------------------------------
// Behaviour
// ---------------------------------------------------------------------------------------------

/// Test IBANs and what they do; any other valid IBAN settles.
pub mod test_ibans {
    pub const SETTLES: &str = "DE89370400440532013000";
    pub const INSUFFICIENT_FUNDS: &str = "GB82WEST12345698765432";
    pub const MANDATE_CANCELLED: &str = "NL91ABNA0417164300";
}

/// The sandbox bank: accepts at once, settles after the configured delay. The outcome
/// is decided by the IBAN, so a sync always answers the same.
#[derive(Debug, Default, Clone, Copy)]
pub struct SandboxBank;

impl SandboxBank {
    fn iban(instrument: &InstrumentDetails) -> Option<String> {
        match instrument {
            InstrumentDetails::DirectDebitMandate(m) => Some(m.iban.expose().to_string()),
            InstrumentDetails::BankAccount(b) => match &b.account {
                baton_domain::BankAccountId::Iban(iban) => Some(iban.expose().to_string()),
                baton_domain::BankAccountId::Uk { .. } => Some(String::new()),
            },
            _ => None,
        }
    }

    /// The final outcome of a collection or payout.
    fn settled(request: &PaymentRequest<'_>, prefix: &str) -> Outcome {
        let reference = crate::sandbox_card::reference(prefix, request.idempotency_key);
        let failed = |decline: Decline| Outcome::Failed { decline, provider_reference: Some(reference.clone()) };
        match Self::iban(request.instrument).as_deref() {
            None => failed(
                Decline::new(DeclineCategory::HardDecline)
                    .code("PAYMENT_METHOD_NOT_SUPPORTED")
                    .psp(Some("unsupported_instrument".into()), Some("The sandbox bank takes bank accounts.".into())),
            ),
            Some(test_ibans::INSUFFICIENT_FUNDS) if prefix == "sbx_dd" => failed(
                Decline::new(DeclineCategory::InsufficientFunds)
                    .psp(Some("AM04".into()), Some("Insufficient funds (SEPA reason AM04).".into())),
            ),
            Some(test_ibans::MANDATE_CANCELLED) if prefix == "sbx_dd" => failed(
                Decline::new(DeclineCategory::HardDecline)
                    .code("MANDATE_CANCELLED")
                    .psp(Some("MD01".into()), Some("No valid mandate (SEPA reason MD01).".into())),
            ),
            Some(_) => Outcome::Succeeded { provider_reference: reference, result: None },
        }
    }
}

#[async_trait::async_trait]
impl Connector for SandboxBank {
    fn descriptor(&self) -> &'static AppDescriptor {
        &DESCRIPTOR
    }

    async fn debit(&self, ctx: &CallContext<'_>, request: &PaymentRequest<'_>) -> Result<Outcome, ConnectorError> {
        if Self::iban(request.instrument).is_none() {
            return Ok(Self::settled(request, "sbx_dd"));
        }
        Ok(Outcome::Pending {
            provider_reference: crate::sandbox_card::reference("sbx_dd", request.idempotency_key),
            check_after: settlement_delay(&ctx.credentials.public),
        })
    }

    async fn credit(&self, ctx: &CallContext<'_>, request: &PaymentRequest<'_>) -> Result<Outcome, ConnectorError> {
        if Self::iban(request.instrument).is_none() {
            return Ok(Self::settled(request, "sbx_bt"));
        }
        Ok(Outcome::Pending {
            provider_reference: crate::sandbox_card::reference("sbx_bt", request.idempotency_key),
            check_after: settlement_delay(&ctx.credentials.public),
        })
    }

    async fn refund(&self, _ctx: &CallContext<'_>, request: &RefundRequest<'_>) -> Result<Outcome, ConnectorError> {
        Ok(Outcome::Succeeded {
            provider_reference: crate::sandbox_card::reference("sbx_re", request.idempotency_key),
            result: None,
        })
    }

    async fn sync(&self, _ctx: &CallContext<'_>, request: &SyncRequest<'_>) -> Result<Outcome, ConnectorError> {
        let prefix = match request.provider_reference {
            Some(r) if r.starts_with("sbx_bt") => "sbx_bt",
            _ => "sbx_dd",
        };
        Ok(Self::settled(&request.payment, prefix))
    }
}
