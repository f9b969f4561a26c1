//! Catalog rewards as REWARD apps offer them (SPEC §4.8): the data behind both the
//! `CatalogReward` and the payout-options `Reward` shapes, which the HTTP layer renders.

use std::fmt;
use std::str::FromStr;

use baton_domain::{Country, Currency, RewardTerms, ValueType};
use rust_decimal::Decimal;

/// What kind of reward this is; `as_str` is the wire form (`"gift card"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RewardType {
    GiftCard,
    RewardLink,
    Donation,
    CashEquivalent,
}

impl RewardType {
    pub const ALL: &'static [RewardType] =
        &[RewardType::GiftCard, RewardType::RewardLink, RewardType::Donation, RewardType::CashEquivalent];

    /// The wire form: `gift card`, `reward link`, `donation`, `cash equivalent`.
    pub fn as_str(self) -> &'static str {
        match self {
            RewardType::GiftCard => "gift card",
            RewardType::RewardLink => "reward link",
            RewardType::Donation => "donation",
            RewardType::CashEquivalent => "cash equivalent",
        }
    }

    /// A title-case label for pages: `Gift Card`, `Reward Link`, `Donation`, `Cash Equivalent`.
    pub fn label(self) -> &'static str {
        match self {
            RewardType::GiftCard => "Gift Card",
            RewardType::RewardLink => "Reward Link",
            RewardType::Donation => "Donation",
            RewardType::CashEquivalent => "Cash Equivalent",
        }
    }
}

impl FromStr for RewardType {
    type Err = ();
    /// Case-insensitive; spaces, `_` and `-` are interchangeable (`GIFT_CARD` = `gift card`).
    fn from_str(s: &str) -> Result<Self, ()> {
        let norm = |t: &str| t.trim().to_ascii_lowercase().replace(['_', '-'], " ");
        let s = norm(s);
        Self::ALL.iter().copied().find(|t| t.as_str() == s).ok_or(())
    }
}

impl fmt::Display for RewardType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The credential types a reward may deliver (SPEC §4.8).
pub const CREDENTIAL_TYPES: &[&str] = &[
    "barcodeNumber",
    "barcodeUrl",
    "bypassUrl",
    "cardCode",
    "cardNumber",
    "cvc2",
    "eventNumber",
    "expirationDate",
    "pin",
    "redemptionUrl",
    "secretCode",
];

/// One brand image. The catalogue shape uses all fields; the payout-options `Reward`
/// shape only `ppi`, `url` and `width`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUrl {
    pub ppi: u32,
    /// Baton-relative (`/assets/rewards/<brandKey>.svg`).
    pub url: String,
    pub width: u32,
    pub ratio_width: u32,
    pub ratio_height: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrandRequirements {
    pub always_show_disclaimer: bool,
    pub disclaimer_instructions: String,
    pub display_instructions: String,
    pub terms_and_conditions_instructions: String,
}

/// A reward's brand. Texts are in [`TEXT_LANGUAGE`]; the catalogue shape renders them as
/// `[{languageCode, text}]`, the `Reward` shape as plain strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brand {
    pub brand_key: String,
    pub brand_name: String,
    pub status_active: bool,
    pub description: String,
    pub short_description: String,
    pub disclaimer: String,
    /// HTML.
    pub terms: String,
    pub image_urls: Vec<ImageUrl>,
    pub requirements: BrandRequirements,
}

/// The language of brand texts.
pub const TEXT_LANGUAGE: &str = "en";

/// One reward of a REWARD app's catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogReward {
    /// Opaque, stable, 64 lowercase hex digits.
    pub reward_id: String,
    pub reward_name: String,
    pub brand_name: String,
    pub brand_key: String,
    pub reward_type: RewardType,
    /// The REWARD app offering it.
    pub app_id: &'static str,
    pub countries: Vec<Country>,
    pub currency: Currency,
    pub is_whole_amount_value_required: bool,
    pub value_type: ValueType,
    /// Set for `FIXED_VALUE`, else `None`.
    pub fixed_value: Option<Decimal>,
    /// Set for `VARIABLE_VALUE`, else `None`.
    pub min_value: Option<Decimal>,
    pub max_value: Option<Decimal>,
    /// `status`: `active` when true, else `inactive`.
    pub status_active: bool,
    /// Names from [`CREDENTIAL_TYPES`].
    pub credential_types: Vec<String>,
    /// HTML.
    pub redemption_instructions: String,
    /// Baton-relative image path (`/assets/rewards/<brandKey>.svg`).
    pub image_url: String,
    pub brand: Brand,
    /// ISO-8601 UTC, e.g. `2024-01-01T09:00:00.000Z`.
    pub created_date: String,
    pub last_update_date: String,
}

impl CatalogReward {
    pub fn status(&self) -> &'static str {
        if self.status_active {
            "active"
        } else {
            "inactive"
        }
    }

    /// The offering app's name (empty if the app is not in the registry, which tests rule out).
    pub fn app_name(&self) -> &'static str {
        crate::registry().iter().find(|a| a.app_id == self.app_id).map(|a| a.name).unwrap_or_default()
    }

    pub fn is_available_in(&self, country: Country) -> bool {
        self.countries.contains(&country)
    }

    /// The terms payout matching needs (`baton_domain::schemes`), which decide
    /// whether an amount can be paid with this reward.
    pub fn terms(&self) -> RewardTerms {
        RewardTerms {
            reward_id: self.reward_id.clone(),
            currency: self.currency,
            countries: self.countries.clone(),
            value_type: self.value_type,
            fixed_value: self.fixed_value,
            min_value: self.min_value,
            max_value: self.max_value,
            whole_amount_required: self.is_whole_amount_value_required,
            active: self.status_active,
        }
    }
}
