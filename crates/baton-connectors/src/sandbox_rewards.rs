//! `SANDBOX_REWARDS`: the built-in sandbox reward provider and its catalogue of sample
//! rewards, shipped in the binary as `data/sandbox_rewards.json` and parsed once.
//!
//! Brand names in the catalogue are samples; the data says so in every brand's texts.
//! Reward ids are stable: lowercase hex SHA-256 of `"<brandKey>|<currency>|<face>"`, where
//! `face` is the fixed value (`10.00`) or `<min>-<max>` (`1.00-500.00`). Account and
//! deposit behaviour belongs to the engine; this module only declares the app.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::OnceLock;

use baton_domain::{AppType, Country, Currency, Decline, DeclineCategory, Direction, TransactionType, ValueType};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::config::{ConfigField, ConfigSchema, FieldKind};
use crate::connector::{CallContext, Connector, ConnectorError, Outcome, PaymentRequest, SyncRequest};
use crate::descriptor::{AppDescriptor, PaymentMethod, Settlement};
use crate::rewards::{Brand, BrandRequirements, CatalogReward, ImageUrl, RewardType};

pub const APP_ID: &str = "SANDBOX_REWARDS";

const fn reward_method(id: &'static str, name: &'static str, tags: &'static [&'static str]) -> PaymentMethod {
    PaymentMethod {
        id,
        name,
        is_credit_card: false,
        supports_direct_sale: true,
        supports_recurring: false,
        provider_warning_required: false,
        tags,
        directions: &[Direction::Credit],
    }
}

/// One method per reward type.
pub const METHODS: &[PaymentMethod] = &[
    reward_method("GIFT_CARD", "Gift Card", &["reward", "gift-card"]),
    reward_method("REWARD_LINK", "Reward Link", &["reward", "reward-link"]),
    reward_method("DONATION", "Donation", &["reward", "donation"]),
    reward_method("CASH_EQUIVALENT", "Cash Equivalent", &["reward", "cash-equivalent"]),
];

pub const CONFIG: ConfigSchema = ConfigSchema {
    fields: &[ConfigField {
        name: "accountName",
        kind: FieldKind::String,
        required: false,
        secret: false,
        description: "A name for the sandbox reward account.",
        default: None,
    }],
    check: None,
};

pub const DESCRIPTOR: AppDescriptor = AppDescriptor {
    app_id: APP_ID,
    name: "Sandbox Rewards",
    developer_id: crate::BATON_DEVELOPER_ID,
    developer_name: crate::BATON_DEVELOPER_NAME,
    description: "A built-in test reward provider: pays out gift cards, reward links, donations and cash-equivalent \
                  cards from a catalogue of sample rewards. Issued codes are fake and have no value.",
    icon_svg: include_str!("../assets/sandbox_rewards.svg"),
    tags: &["sandbox", "rewards", "gift-cards"],
    app_type: AppType::Reward,
    directions: &[Direction::Credit],
    payment_methods: METHODS,
    networks: &[],
    transaction_types: &[TransactionType::Cit, TransactionType::Mit],
    countries: Country::ALL,
    currencies: Currency::ALL,
    settlement: Settlement::Immediate,
    config: &CONFIG,
};

/// The whole catalogue (active and inactive), in the data file's order.
pub fn catalog() -> &'static [CatalogReward] {
    &data().rewards
}

/// The reward with this id (case-insensitive, surrounding spaces ignored).
pub fn find(reward_id: &str) -> Option<&'static CatalogReward> {
    let id = reward_id.trim();
    catalog().iter().find(|r| r.reward_id.eq_ignore_ascii_case(id))
}

/// Every brand of the catalogue, by brand key.
pub fn brands() -> &'static [Brand] {
    &data().brands
}

pub fn brand(brand_key: &str) -> Option<&'static Brand> {
    brands().iter().find(|b| b.brand_key == brand_key)
}

/// The Baton-relative path of a brand's image.
pub fn image_path(brand_key: &str) -> String {
    format!("/assets/rewards/{brand_key}.svg")
}

/// The SVG served at [`image_path`] (`None` for unknown brands): a generated badge with
/// the brand's initials. `brand_key` may carry the `.svg` suffix.
pub fn brand_image_svg(brand_key: &str) -> Option<String> {
    let key = brand_key.strip_suffix(".svg").unwrap_or(brand_key);
    brand(key).map(|b| crate::icons::badge_svg(&b.brand_name, &crate::icons::initials(&b.brand_name), &b.brand_key))
}

struct Data {
    rewards: Vec<CatalogReward>,
    brands: Vec<Brand>,
}

fn data() -> &'static Data {
    static DATA: OnceLock<Data> = OnceLock::new();
    DATA.get_or_init(|| {
        parse(include_str!("../data/sandbox_rewards.json")).unwrap_or_else(|e| panic!("data/sandbox_rewards.json: {e}"))
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawCatalog {
    #[allow(dead_code)]
    id_derivation: String,
    brands: BTreeMap<String, RawBrand>,
    rewards: Vec<RawReward>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawBrand {
    brand_name: String,
    status: String,
    description: String,
    short_description: String,
    disclaimer: String,
    terms: String,
    image_urls: Vec<RawImage>,
    requirements: RawRequirements,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawImage {
    ppi: u32,
    url: String,
    width: u32,
    ratio_width: u32,
    ratio_height: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRequirements {
    always_show_disclaimer: bool,
    disclaimer_instructions: String,
    display_instructions: String,
    terms_and_conditions_instructions: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawReward {
    reward_id: String,
    reward_name: String,
    reward_type: String,
    brand_key: String,
    countries: Vec<String>,
    currency: String,
    value_type: String,
    fixed_value: Option<String>,
    min_value: Option<String>,
    max_value: Option<String>,
    is_whole_amount_value_required: bool,
    status: String,
    credential_types: Vec<String>,
    redemption_instructions: String,
    created_date: String,
    last_update_date: String,
}

fn status(s: &str) -> Result<bool, String> {
    match s {
        "active" => Ok(true),
        "inactive" => Ok(false),
        other => Err(format!("unknown status {other:?}")),
    }
}

fn decimal(v: Option<String>) -> Result<Option<Decimal>, String> {
    v.map(|s| Decimal::from_str(&s).map_err(|e| format!("bad decimal {s:?}: {e}"))).transpose()
}

fn parse(json: &str) -> Result<Data, String> {
    let raw: RawCatalog = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let mut brands = Vec::with_capacity(raw.brands.len());
    for (key, b) in raw.brands {
        brands.push(Brand {
            status_active: status(&b.status).map_err(|e| format!("brand {key}: {e}"))?,
            brand_key: key,
            brand_name: b.brand_name,
            description: b.description,
            short_description: b.short_description,
            disclaimer: b.disclaimer,
            terms: b.terms,
            image_urls: b
                .image_urls
                .into_iter()
                .map(|i| ImageUrl {
                    ppi: i.ppi,
                    url: i.url,
                    width: i.width,
                    ratio_width: i.ratio_width,
                    ratio_height: i.ratio_height,
                })
                .collect(),
            requirements: BrandRequirements {
                always_show_disclaimer: b.requirements.always_show_disclaimer,
                disclaimer_instructions: b.requirements.disclaimer_instructions,
                display_instructions: b.requirements.display_instructions,
                terms_and_conditions_instructions: b.requirements.terms_and_conditions_instructions,
            },
        });
    }
    let mut rewards = Vec::with_capacity(raw.rewards.len());
    for r in raw.rewards {
        let ctx = |e: String| format!("reward {}: {e}", r.reward_id);
        let brand = brands.iter().find(|b| b.brand_key == r.brand_key).ok_or_else(|| ctx("unknown brandKey".into()))?;
        let countries = r
            .countries
            .iter()
            .map(|c| c.parse::<Country>().map_err(|_| ctx(format!("unsupported country {c:?}"))))
            .collect::<Result<Vec<_>, _>>()?;
        rewards.push(CatalogReward {
            reward_name: r.reward_name.clone(),
            brand_name: brand.brand_name.clone(),
            reward_type: r
                .reward_type
                .parse::<RewardType>()
                .map_err(|_| ctx(format!("unknown rewardType {:?}", r.reward_type)))?,
            app_id: APP_ID,
            countries,
            currency: r.currency.parse().map_err(|_| ctx(format!("unsupported currency {:?}", r.currency)))?,
            is_whole_amount_value_required: r.is_whole_amount_value_required,
            value_type: r
                .value_type
                .parse::<ValueType>()
                .map_err(|_| ctx(format!("unknown valueType {:?}", r.value_type)))?,
            fixed_value: decimal(r.fixed_value.clone()).map_err(ctx)?,
            min_value: decimal(r.min_value.clone()).map_err(ctx)?,
            max_value: decimal(r.max_value.clone()).map_err(ctx)?,
            status_active: status(&r.status).map_err(ctx)?,
            credential_types: r.credential_types.clone(),
            redemption_instructions: r.redemption_instructions.clone(),
            image_url: image_path(&brand.brand_key),
            brand: brand.clone(),
            brand_key: r.brand_key.clone(),
            created_date: r.created_date.clone(),
            last_update_date: r.last_update_date.clone(),
            reward_id: r.reward_id,
        });
    }
    Ok(Data { rewards, brands })
}

// ---------------------------------------------------------------------------------------------
// Behaviour
// ---------------------------------------------------------------------------------------------

/// How long the sandbox provider takes to issue a reward.
pub const ISSUE_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// The sandbox reward provider: accepts a claim at once and issues it after
/// [`ISSUE_DELAY`], with credentials of the types the catalogue lists for the reward.
/// The deposited balance is Baton's own record (drawn down when the claim is made).
#[derive(Debug, Default, Clone, Copy)]
pub struct SandboxRewards;

/// The credentials the sandbox issues for `reward`: deterministic from the claim.
pub fn credentials(reward: &CatalogReward, reference: &str) -> serde_json::Value {
    use sha2::{Digest, Sha256};
    let digits: String = Sha256::digest(reference.as_bytes()).iter().map(|b| format!("{:02}", b % 100)).collect();
    let list: Vec<serde_json::Value> = reward
        .credential_types
        .iter()
        .map(|kind| {
            let (label, value, reward_type) = match kind.as_str() {
                "cardNumber" => ("Card Number", digits[..16].to_string(), "text"),
                "pin" => ("PIN", digits[16..22].to_string(), "text"),
                "cvc2" => ("CVC", digits[22..25].to_string(), "text"),
                "expirationDate" => ("Expiration Date", "2028-12-31T00:00:00Z".to_string(), "date"),
                "redemptionUrl" | "bypassUrl" => {
                    ("Redemption Link", format!("https://rewards.sandbox.invalid/redeem/{reference}"), "url")
                }
                "barcodeUrl" => {
                    ("Barcode", format!("https://rewards.sandbox.invalid/barcode/{reference}.png"), "barcode")
                }
                _ => ("Code", digits[..12].to_string(), "text"),
            };
            serde_json::json!({"label": label, "value": value, "rewardType": reward_type, "credentialType": kind})
        })
        .collect();
    serde_json::json!({"credentialList": list, "redemptionInstructions": reward.redemption_instructions})
}

impl SandboxRewards {
    fn issue(request: &PaymentRequest<'_>) -> Outcome {
        let reference = crate::sandbox_card::reference("sbx_rw", request.idempotency_key);
        let reward = request.extra.get("rewardId").and_then(serde_json::Value::as_str).and_then(find);
        match reward {
            Some(reward) if reward.status_active => {
                Outcome::Succeeded { result: Some(credentials(reward, &reference)), provider_reference: reference }
            }
            _ => Outcome::Failed {
                decline: Decline::new(DeclineCategory::HardDecline)
                    .code("REWARD_NOT_AVAILABLE")
                    .psp(Some("reward_unavailable".into()), Some("The reward cannot be issued.".into())),
                provider_reference: Some(reference),
            },
        }
    }
}

#[async_trait::async_trait]
impl Connector for SandboxRewards {
    fn descriptor(&self) -> &'static AppDescriptor {
        &DESCRIPTOR
    }

    async fn debit(&self, _ctx: &CallContext<'_>, _request: &PaymentRequest<'_>) -> Result<Outcome, ConnectorError> {
        Err(ConnectorError::Unsupported("the sandbox reward provider only issues rewards".into()))
    }

    async fn credit(&self, _ctx: &CallContext<'_>, request: &PaymentRequest<'_>) -> Result<Outcome, ConnectorError> {
        Ok(Outcome::Pending {
            provider_reference: crate::sandbox_card::reference("sbx_rw", request.idempotency_key),
            check_after: ISSUE_DELAY,
        })
    }

    async fn sync(&self, _ctx: &CallContext<'_>, request: &SyncRequest<'_>) -> Result<Outcome, ConnectorError> {
        Ok(Self::issue(&request.payment))
    }
}
