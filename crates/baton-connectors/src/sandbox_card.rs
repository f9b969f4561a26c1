//! `SANDBOX_CARD`: the built-in sandbox card and wallet PSP (collect and payout, CIT and MIT).

use baton_domain::{AppType, Country, Currency, Direction, Problem, TransactionType};
use serde_json::Value;

use crate::config::{ConfigField, ConfigSchema, FieldKind, MerchantAccountSetting};
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
