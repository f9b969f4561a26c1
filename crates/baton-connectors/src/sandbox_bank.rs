//! `SANDBOX_BANK`: the built-in sandbox bank. Collects by direct-debit mandate and pays out
//! by bank transfer, merchant-initiated only, settling asynchronously after a delay.

use std::time::Duration;

use baton_domain::{AppType, Country, Currency, Direction, Problem, TransactionType};
use serde_json::Value;

use crate::config::{ConfigField, ConfigSchema, DefaultValue, FieldKind};
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
