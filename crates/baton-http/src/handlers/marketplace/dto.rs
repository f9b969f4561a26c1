//! Bodies of the marketplace, installed apps, reward groups and catalog (camelCase out,
//! any case in).

use baton_connectors::{AppDescriptor, CatalogReward, PaymentMethod};
use baton_engine::marketplace::{
    InstalledAppSummary, InstalledAppView, MarketplaceApp, RewardAccountView, RewardGroupView,
};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::dto::iso_time;

/// A decimal as a JSON number: whole values as integers (`10`), others as the shortest
/// float that reads back as the same decimal (`10.5`; amounts have at most 2 decimals).
pub fn decimal_number<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    let n = d.normalize();
    match (n.scale(), n.to_i64()) {
        (0, Some(i)) => s.serialize_i64(i),
        _ => s.serialize_f64(n.to_f64().ok_or_else(|| serde::ser::Error::custom("decimal out of range"))?),
    }
}

pub fn optional_decimal<S: Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => decimal_number(d, s),
        None => s.serialize_none(),
    }
}

/// `SANDBOX_CARD` → `sandbox-card`: the file-name form of ids in asset paths.
fn file_name(id: &str) -> String {
    id.to_ascii_lowercase().replace('_', "-")
}

/// Where Baton serves an app's icon.
pub fn app_icon_url(app_id: &str) -> String {
    format!("/assets/apps/{}.svg", file_name(app_id))
}

/// Where Baton serves a payment method's icon.
pub fn payment_method_icon_url(method_id: &str) -> String {
    format!("/assets/payment-methods/{}.svg", file_name(method_id))
}

fn strings<T: ToString>(items: &[T]) -> Vec<String> {
    items.iter().map(ToString::to_string).collect()
}

/// SPEC §4.4 `PaymentMethod`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentMethodDto {
    /// e.g. `VISA`, `AMERICAN-EXPRESS`, `PAYPAL`, `GIFT_CARD`.
    pub id: String,
    pub name: String,
    /// Served by Baton (`/assets/payment-methods/<id>.svg`).
    pub icon_url: String,
    pub tags: Vec<String>,
    pub is_credit_card: bool,
    pub supports_direct_sale: bool,
    pub supports_recurring: bool,
    /// Check with the provider that the method is activated (e.g. Amex on Braintree).
    pub provider_warning_required: bool,
    /// EXT: the directions the method serves (`DEBIT`, `CREDIT`).
    pub directions: Vec<String>,
}

impl From<&PaymentMethod> for PaymentMethodDto {
    fn from(m: &PaymentMethod) -> Self {
        Self {
            id: m.id.to_string(),
            name: m.name.to_string(),
            icon_url: payment_method_icon_url(m.id),
            tags: strings(m.tags),
            is_credit_card: m.is_credit_card,
            supports_direct_sale: m.supports_direct_sale,
            supports_recurring: m.supports_recurring,
            provider_warning_required: m.provider_warning_required,
            directions: strings(m.directions),
        }
    }
}

/// SPEC §4.4 `App`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppDto {
    pub developer_id: String,
    pub developer_name: String,
    /// Canonical `UPPER_SNAKE` id (paths accept any case, `-` for `_`).
    pub app_id: String,
    pub name: String,
    /// Served by Baton (`/assets/apps/<app-id>.svg`).
    pub icon_url: String,
    pub description: String,
    pub tags: Vec<String>,
    pub supported_payment_methods: Vec<PaymentMethodDto>,
    pub supported_countries: Vec<String>,
    pub supported_currencies: Vec<String>,
    /// EXT: `PAYMENT` or `REWARD`.
    pub app_type: String,
    /// EXT: `DEBIT` (collect) and/or `CREDIT` (payout).
    pub directions: Vec<String>,
    /// EXT: `MIT` and/or `CIT`.
    pub transaction_types: Vec<String>,
    /// EXT: card networks (`VISA`, `MASTERCARD`, `AMERICAN_EXPRESS`, `DISCOVER`).
    pub networks: Vec<String>,
    /// EXT: whether the calling tenant has installed the app.
    pub installed: bool,
}

impl AppDto {
    pub fn new(app: &AppDescriptor, installed: bool) -> Self {
        Self {
            developer_id: app.developer_id.to_string(),
            developer_name: app.developer_name.to_string(),
            app_id: app.app_id.to_string(),
            name: app.name.to_string(),
            icon_url: app_icon_url(app.app_id),
            description: app.description.to_string(),
            tags: strings(app.tags),
            supported_payment_methods: app.payment_methods.iter().map(Into::into).collect(),
            supported_countries: strings(app.countries),
            supported_currencies: strings(app.currencies),
            app_type: app.app_type.to_string(),
            directions: strings(app.directions),
            transaction_types: strings(app.transaction_types),
            networks: strings(app.networks),
            installed,
        }
    }
}

impl From<&MarketplaceApp> for AppDto {
    fn from(a: &MarketplaceApp) -> Self {
        Self::new(a.app, a.installed)
    }
}

/// One line of `GET /v1/apps/installed`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstalledAppSummaryDto {
    pub app_id: String,
    pub name: String,
    /// Whether a configuration has been given (at installation or since).
    pub configured: bool,
    /// ISO-8601 UTC.
    pub installed_at: String,
}

impl From<&InstalledAppSummary> for InstalledAppSummaryDto {
    fn from(s: &InstalledAppSummary) -> Self {
        Self {
            app_id: s.app_id.clone(),
            name: s.name.clone(),
            configured: s.configured,
            installed_at: iso_time(s.installed_at),
        }
    }
}

/// An installed app: the marketplace `App` plus its installation and configuration.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstalledAppDto {
    #[serde(flatten)]
    pub app: AppDto,
    pub configured: bool,
    /// ISO-8601 UTC.
    pub installed_at: String,
    /// ISO-8601 UTC: the last configuration change (or the installation).
    pub updated_at: String,
    /// The app-specific configuration with every secret shown as `********`; `null` until
    /// configured. Sending a secret back as `********` keeps it.
    #[schema(value_type = Option<Object>)]
    pub configuration: Option<Value>,
}

impl From<&InstalledAppView> for InstalledAppDto {
    fn from(v: &InstalledAppView) -> Self {
        Self {
            app: AppDto::new(v.app, true),
            configured: v.configured,
            installed_at: iso_time(v.installed_at),
            updated_at: iso_time(v.updated_at),
            configuration: v.configuration.clone(),
        }
    }
}

/// Marketplace filters (csv; OR within a filter, AND across filters). Names match
/// ignoring case; a parameter may also be repeated. (Documentation: the handlers read
/// the raw query, to match names ignoring case.)
#[allow(dead_code)]
#[derive(Debug, Deserialize, IntoParams, ToSchema)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct MarketplaceFilterParams {
    /// `PAYMENT`, `REWARD`.
    pub app_type: Option<String>,
    /// `DEBIT`, `CREDIT`.
    pub direction: Option<String>,
    /// Payment method ids, e.g. `VISA,PAYPAL` (`-` ≡ `_`).
    pub payment_methods: Option<String>,
    /// `MIT`, `CIT`.
    pub transaction_type: Option<String>,
    /// `VISA`, `MASTERCARD`, `AMERICAN_EXPRESS`, `DISCOVER` (`AMEX` accepted).
    pub networks: Option<String>,
}

/// `POST …/account`: identifiers of an existing provider account to reuse.
#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct RewardAccountRequestDto {
    /// 1–100 of `[A-Za-z0-9._:-]`; generated when absent.
    pub customer_identifier: Option<String>,
    /// 1–100 of `[A-Za-z0-9._:-]`; generated when absent.
    pub account_identifier: Option<String>,
}

/// A REWARD app's funding account.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewardAccountDto {
    pub customer_identifier: String,
    pub account_identifier: String,
    #[serde(serialize_with = "decimal_number")]
    #[schema(value_type = f64)]
    pub current_balance: Decimal,
    pub currency: String,
}

impl From<&RewardAccountView> for RewardAccountDto {
    fn from(a: &RewardAccountView) -> Self {
        Self {
            customer_identifier: a.customer_identifier.clone(),
            account_identifier: a.account_identifier.clone(),
            current_balance: a.balance.to_decimal(),
            currency: a.balance.currency.to_string(),
        }
    }
}

/// `POST …/deposit-funds`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DepositRequest {
    /// Greater than zero, at most 2 decimals; a number or a numeric string.
    #[schema(value_type = f64)]
    pub amount: Option<Value>,
}

/// One reward of a group.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewardGroupEntryDto {
    pub reward_id: String,
    /// `false` hides the reward without removing it.
    pub enabled: bool,
}

/// `POST /v1/reward-groups`, `PUT /v1/reward-groups/{rewardGroupId}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewardGroupRequest {
    /// Unique per tenant (ignoring case), at most 100 characters. Required on create.
    pub name: Option<String>,
    /// At least one: `{rewardId, enabled}` objects, or plain reward ids (enabled).
    /// Required on create; on update an absent list keeps the rewards.
    #[schema(value_type = Option<Vec<Object>>)]
    pub rewards: Option<Value>,
}

/// SPEC §4.7 `RewardGroup`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewardGroupDto {
    pub reward_group_id: String,
    /// The same as `rewardGroupId` (the tutorial's name).
    pub id: String,
    pub name: String,
    pub rewards: Vec<RewardGroupEntryDto>,
    /// ISO-8601 UTC.
    pub created_at: String,
    /// ISO-8601 UTC.
    pub last_modified: String,
}

impl From<&RewardGroupView> for RewardGroupDto {
    fn from(g: &RewardGroupView) -> Self {
        Self {
            reward_group_id: g.reward_group_id.clone(),
            id: g.reward_group_id.clone(),
            name: g.name.clone(),
            rewards: g
                .members
                .iter()
                .map(|m| RewardGroupEntryDto { reward_id: m.reward_id.clone(), enabled: m.enabled })
                .collect(),
            created_at: iso_time(g.created_at),
            last_modified: iso_time(g.updated_at),
        }
    }
}

/// A brand text in one language.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalisedText {
    pub language_code: String,
    pub text: String,
}

fn localised(text: &str) -> Vec<LocalisedText> {
    vec![LocalisedText { language_code: baton_connectors::TEXT_LANGUAGE.to_string(), text: text.to_string() }]
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatalogImageUrlDto {
    pub ppi: u32,
    pub url: String,
    pub width: u32,
    pub ratio_height: u32,
    pub ratio_width: u32,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrandRequirementsDto {
    pub always_show_disclaimer: bool,
    pub disclaimer_instructions: String,
    pub display_instructions: String,
    pub terms_and_conditions_instructions: String,
}

/// A reward's brand, texts localised.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatalogBrandDto {
    pub brand_key: String,
    pub brand_name: String,
    /// `active` or `inactive`.
    pub status: String,
    pub description: Vec<LocalisedText>,
    pub short_description: Vec<LocalisedText>,
    pub disclaimer: Vec<LocalisedText>,
    /// HTML.
    pub terms: Vec<LocalisedText>,
    pub image_urls: Vec<CatalogImageUrlDto>,
    pub requirements: BrandRequirementsDto,
}

/// SPEC §4.8 `CatalogReward`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatalogRewardDto {
    /// Opaque.
    pub reward_id: String,
    pub reward_name: String,
    pub brand_name: String,
    pub app_id: String,
    pub app_name: String,
    /// EXT: `gift card`, `reward link`, `donation` or `cash equivalent`.
    pub reward_type: String,
    pub countries: Vec<String>,
    pub currency_code: String,
    pub is_whole_amount_value_required: bool,
    /// `FIXED_VALUE` or `VARIABLE_VALUE`.
    pub value_type: String,
    #[serde(serialize_with = "optional_decimal")]
    #[schema(value_type = Option<f64>)]
    pub fixed_value: Option<Decimal>,
    #[serde(serialize_with = "optional_decimal")]
    #[schema(value_type = Option<f64>)]
    pub min_value: Option<Decimal>,
    #[serde(serialize_with = "optional_decimal")]
    #[schema(value_type = Option<f64>)]
    pub max_value: Option<Decimal>,
    /// Served by Baton (`/assets/rewards/<brandKey>.svg`).
    pub image_url: String,
    /// `active` or `inactive`.
    pub status: String,
    pub brand: CatalogBrandDto,
}

impl From<&CatalogReward> for CatalogRewardDto {
    fn from(r: &CatalogReward) -> Self {
        let b = &r.brand;
        Self {
            reward_id: r.reward_id.clone(),
            reward_name: r.reward_name.clone(),
            brand_name: r.brand_name.clone(),
            app_id: r.app_id.to_string(),
            app_name: r.app_name().to_string(),
            reward_type: r.reward_type.to_string(),
            countries: strings(&r.countries),
            currency_code: r.currency.to_string(),
            is_whole_amount_value_required: r.is_whole_amount_value_required,
            value_type: r.value_type.to_string(),
            fixed_value: r.fixed_value,
            min_value: r.min_value,
            max_value: r.max_value,
            image_url: r.image_url.clone(),
            status: r.status().to_string(),
            brand: CatalogBrandDto {
                brand_key: b.brand_key.clone(),
                brand_name: b.brand_name.clone(),
                status: if b.status_active { "active" } else { "inactive" }.to_string(),
                description: localised(&b.description),
                short_description: localised(&b.short_description),
                disclaimer: localised(&b.disclaimer),
                terms: localised(&b.terms),
                image_urls: b
                    .image_urls
                    .iter()
                    .map(|i| CatalogImageUrlDto {
                        ppi: i.ppi,
                        url: i.url.clone(),
                        width: i.width,
                        ratio_height: i.ratio_height,
                        ratio_width: i.ratio_width,
                    })
                    .collect(),
                requirements: BrandRequirementsDto {
                    always_show_disclaimer: b.requirements.always_show_disclaimer,
                    disclaimer_instructions: b.requirements.disclaimer_instructions.clone(),
                    display_instructions: b.requirements.display_instructions.clone(),
                    terms_and_conditions_instructions: b.requirements.terms_and_conditions_instructions.clone(),
                },
            },
        }
    }
}

/// `{rewards: CatalogReward[]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogDto {
    pub rewards: Vec<CatalogRewardDto>,
}

impl CatalogDto {
    pub fn new(rewards: &[&CatalogReward]) -> Self {
        Self { rewards: rewards.iter().map(|r| CatalogRewardDto::from(*r)).collect() }
    }
}

/// `GET /v1/catalog/search` (names match ignoring case; empty values are ignored).
/// (Documentation: the handler reads the raw query.)
#[allow(dead_code)]
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct CatalogSearchParams {
    /// Required: an installed REWARD app.
    pub app_id: Option<String>,
    /// Case-insensitive substring of the brand name.
    pub brand_name: Option<String>,
    /// csv of country codes: rewards valid in any of them.
    pub countries: Option<String>,
    /// csv of currency codes.
    pub currencies: Option<String>,
    /// Rewards that can carry exactly this amount (fixed value equal, or within the range).
    pub amount: Option<String>,
    /// Include inactive rewards (default `false`).
    pub show_inactive: Option<bool>,
}
