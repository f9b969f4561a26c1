//! Request and response bodies of the scheme endpoints (SPEC §4.6, the Reward model of §4.8).

use baton_connectors::CatalogReward;
use baton_domain::{Problem, Rule, SchemeKind};
use baton_engine::schemes::{
    available_payment_methods, AppEntryInput, DraftInput, DraftView, Outcome, PaymentMethodOption, RewardGroupInput,
    RuleInput, SchemeOptions, SchemeView, SimulatedCase, Simulation,
};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use utoipa::ToSchema;

use crate::dto::iso_time;

// ---------------------------------------------------------------------------------------------
// Decimals out as JSON numbers
// ---------------------------------------------------------------------------------------------

/// A decimal as a JSON number: an integer when whole, else its (≤2 dp) value.
fn decimal<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    let n = d.normalize();
    match n.to_i64() {
        Some(i) if n.scale() == 0 => s.serialize_i64(i),
        _ => s.serialize_f64(n.to_f64().unwrap_or_default()),
    }
}

fn opt_decimal<S: Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => decimal(d, s),
        None => s.serialize_none(),
    }
}

/// A decimal as clients send it (a number or a numeric string), as text for the engine.
/// Other JSON types are passed on as their JSON text, which the engine refuses.
fn decimal_text(v: Option<Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/// A draft (scheme creation takes the same body: it becomes the scheme's first draft).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DraftRequest {
    /// Unique per scheme (ignoring case), 1–100 characters.
    pub name: Option<String>,
    /// Optional, echoed in webhooks.
    pub code: Option<String>,
    /// At least one; evaluated in this order.
    pub rules: Option<Vec<RuleRequest>>,
}

/// One rule. App entries go under `apps` or `configurations` (the tutorials' name); when
/// both are sent they must describe the same entries.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleRequest {
    /// Echoed only: the array order decides evaluation.
    pub priority: Option<i64>,
    /// Empty = any currency.
    pub currencies: Option<Vec<String>>,
    /// Empty = any country (`UK` is accepted as `GB`).
    pub countries: Option<Vec<String>>,
    /// Decimal (number or numeric string); null = unbounded.
    #[schema(value_type = Option<f64>)]
    pub low_value_inclusive: Option<Value>,
    /// Decimal (number or numeric string); null = unbounded.
    #[schema(value_type = Option<f64>)]
    pub high_value_inclusive: Option<Value>,
    pub apps: Option<Vec<AppEntryRequest>>,
    pub configurations: Option<Vec<AppEntryRequest>>,
    /// Payout rules only.
    pub reward_groups: Option<Vec<RewardGroupRefRequest>>,
}

/// An app entry. `availablePaymentMethods` is filled by the server and ignored on input.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppEntryRequest {
    pub app_id: Option<String>,
    /// Lower wins when two entries offer the same payment method.
    pub priority: Option<i64>,
    /// Methods of the app this entry does not offer.
    pub excluded_payment_methods: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewardGroupRefRequest {
    pub reward_group_id: Option<String>,
    /// Rewards of the group this rule does not offer.
    pub exclusions: Option<Vec<String>>,
}

fn entry_input(e: &AppEntryRequest) -> AppEntryInput {
    AppEntryInput {
        app_id: e.app_id.clone(),
        priority: e.priority,
        excluded_payment_methods: e.excluded_payment_methods.clone().unwrap_or_default(),
    }
}

/// How `apps` and `configurations` entries are compared: app id ignoring case with `-` ≡ `_`,
/// the set of exclusions likewise, and the priority when both sides give one.
fn same_entries(apps: &[AppEntryRequest], configurations: &[AppEntryRequest]) -> bool {
    fn norm(s: &str) -> String {
        s.trim().to_ascii_uppercase().replace('-', "_")
    }
    fn exclusions(e: &AppEntryRequest) -> Vec<String> {
        let mut v: Vec<String> =
            e.excluded_payment_methods.iter().flatten().map(|m| norm(m)).filter(|m| !m.is_empty()).collect();
        v.sort();
        v.dedup();
        v
    }
    apps.len() == configurations.len()
        && apps.iter().zip(configurations).all(|(a, c)| {
            norm(a.app_id.as_deref().unwrap_or("")) == norm(c.app_id.as_deref().unwrap_or(""))
                && exclusions(a) == exclusions(c)
                && (a.priority.is_none() || c.priority.is_none() || a.priority == c.priority)
        })
}

impl DraftRequest {
    /// The engine's input. The only problems found here are `apps` and `configurations`
    /// disagreeing (`APPS_CONFIGURATIONS_MISMATCH`); everything else is the engine's to check.
    pub fn into_input(self) -> Result<DraftInput, Vec<Problem>> {
        let mut problems = Vec::new();
        let rules = self
            .rules
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let apps = match (r.apps, r.configurations) {
                    (None, None) => Vec::new(),
                    (Some(a), None) | (None, Some(a)) => a.iter().map(entry_input).collect(),
                    (Some(a), Some(c)) => {
                        if !same_entries(&a, &c) {
                            problems.push(Problem::invalid_field(
                                "APPS_CONFIGURATIONS_MISMATCH",
                                format!("rules[{i}].configurations"),
                                "{field} must describe the same app entries as apps when both are sent.",
                            ));
                        }
                        a.iter()
                            .zip(&c)
                            .map(|(a, c)| AppEntryInput { priority: c.priority.or(a.priority), ..entry_input(c) })
                            .collect()
                    }
                };
                RuleInput {
                    priority: r.priority,
                    currencies: r.currencies.unwrap_or_default(),
                    countries: r.countries.unwrap_or_default(),
                    low_value_inclusive: decimal_text(r.low_value_inclusive),
                    high_value_inclusive: decimal_text(r.high_value_inclusive),
                    apps,
                    reward_groups: r
                        .reward_groups
                        .unwrap_or_default()
                        .into_iter()
                        .map(|g| RewardGroupInput {
                            reward_group_id: g.reward_group_id,
                            exclusions: g.exclusions.unwrap_or_default(),
                        })
                        .collect(),
                }
            })
            .collect();
        if problems.is_empty() {
            Ok(DraftInput { name: self.name, code: self.code, rules })
        } else {
            Err(problems)
        }
    }
}

/// Cases to evaluate against a draft and the published draft.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SimulationRequest {
    /// 1 to 500 cases.
    pub cases: Option<Vec<SimulationCaseRequest>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SimulationCaseRequest {
    /// Decimal (number or numeric string), > 0.
    #[schema(value_type = f64)]
    pub amount: Option<Value>,
    pub currency: Option<String>,
    pub country: Option<String>,
    /// Payout only: `Exact` (default) or `Max`.
    pub match_type: Option<String>,
}

impl SimulationRequest {
    pub fn into_cases(self) -> Vec<baton_engine::schemes::OptionsQuery> {
        self.cases
            .unwrap_or_default()
            .into_iter()
            .map(|c| baton_engine::schemes::OptionsQuery {
                amount: decimal_text(c.amount),
                currency: c.currency,
                country: c.country,
                match_type: c.match_type,
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Schemes and drafts
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchemeDto {
    pub scheme_id: String,
    /// `""` until a draft is published.
    pub published_draft_id: String,
    /// In creation order.
    pub drafts: Vec<DraftDto>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DraftDto {
    pub draft_id: String,
    pub name: String,
    pub code: Option<String>,
    /// In saved order, which is the order of evaluation.
    pub rules: Vec<RuleDto>,
    /// ISO-8601 UTC.
    pub last_modified: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleDto {
    pub priority: Option<i64>,
    pub currencies: Vec<String>,
    pub countries: Vec<String>,
    #[serde(serialize_with = "opt_decimal")]
    #[schema(value_type = Option<f64>)]
    pub low_value_inclusive: Option<Decimal>,
    #[serde(serialize_with = "opt_decimal")]
    #[schema(value_type = Option<f64>)]
    pub high_value_inclusive: Option<Decimal>,
    /// The app entries (the documented models' name).
    pub apps: Vec<AppEntryDto>,
    /// The same entries under the tutorials' name.
    pub configurations: Vec<AppEntryDto>,
    /// Payout rules only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reward_groups: Option<Vec<RewardGroupRefDto>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppEntryDto {
    pub app_id: String,
    pub priority: Option<i64>,
    /// The app's payment methods for the scheme's direction.
    pub available_payment_methods: Vec<String>,
    pub excluded_payment_methods: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewardGroupRefDto {
    pub reward_group_id: String,
    pub exclusions: Vec<String>,
}

fn rule_dto(kind: SchemeKind, r: &Rule) -> RuleDto {
    let apps: Vec<AppEntryDto> = r
        .apps
        .iter()
        .map(|a| AppEntryDto {
            app_id: a.app_id.as_str().to_string(),
            priority: a.priority,
            available_payment_methods: available_payment_methods(kind, &a.app_id)
                .iter()
                .map(|m| m.id.to_string())
                .collect(),
            excluded_payment_methods: a.excluded_payment_methods.clone(),
        })
        .collect();
    RuleDto {
        priority: r.priority,
        currencies: r.currencies.iter().map(|c| c.as_str().to_string()).collect(),
        countries: r.countries.iter().map(|c| c.as_str().to_string()).collect(),
        low_value_inclusive: r.low_value_inclusive,
        high_value_inclusive: r.high_value_inclusive,
        configurations: apps.clone(),
        apps,
        reward_groups: (kind == SchemeKind::Payout).then(|| {
            r.reward_groups
                .iter()
                .map(|g| RewardGroupRefDto {
                    reward_group_id: g.reward_group_id.clone(),
                    exclusions: g.exclusions.clone(),
                })
                .collect()
        }),
    }
}

impl From<&DraftView> for DraftDto {
    fn from(d: &DraftView) -> Self {
        Self {
            draft_id: d.draft_id.clone(),
            name: d.name.clone(),
            code: d.code.clone(),
            rules: d.rules.iter().map(|r| rule_dto(d.kind, r)).collect(),
            last_modified: iso_time(d.last_modified),
        }
    }
}

impl From<&SchemeView> for SchemeDto {
    fn from(s: &SchemeView) -> Self {
        Self {
            scheme_id: s.scheme_id.clone(),
            published_draft_id: s.published_draft_id.clone().unwrap_or_default(),
            drafts: s.drafts.iter().map(Into::into).collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

/// A payment method offered, with the app that routes it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentMethodOptionDto {
    pub app_id: String,
    pub payment_method_id: String,
    pub name: String,
    /// The priority of the app entry the method comes from.
    pub priority: Option<i64>,
}

impl From<&PaymentMethodOption> for PaymentMethodOptionDto {
    fn from(o: &PaymentMethodOption) -> Self {
        Self {
            app_id: o.app_id.clone(),
            payment_method_id: o.payment_method_id.clone(),
            name: o.name.clone(),
            priority: o.priority,
        }
    }
}

/// What a collect scheme offers for an amount, currency and country.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CollectOptionsDto {
    pub scheme_id: String,
    /// The published draft evaluated.
    pub draft_id: String,
    /// The matched rule (0-based, saved order); null when no rule matched.
    pub rule_index: Option<usize>,
    pub payment_methods: Vec<PaymentMethodOptionDto>,
}

impl From<&SchemeOptions> for CollectOptionsDto {
    fn from(o: &SchemeOptions) -> Self {
        Self {
            scheme_id: o.scheme_id.clone(),
            draft_id: o.draft_id.clone(),
            rule_index: o.outcome.rule_index,
            payment_methods: o.outcome.payment_methods.iter().map(Into::into).collect(),
        }
    }
}

/// What a payout scheme offers: the rewards (SPEC §4.8 Reward) and (EXT) the payment methods
/// of the rule's payout apps, plus (EXT) which draft and rule produced them.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayoutOptionsDto {
    pub rewards: Vec<RewardDto>,
    pub payment_methods: Vec<PaymentMethodOptionDto>,
    pub scheme_id: String,
    pub draft_id: String,
    pub rule_index: Option<usize>,
    /// The `matchType` applied.
    pub match_type: String,
}

impl From<&SchemeOptions> for PayoutOptionsDto {
    fn from(o: &SchemeOptions) -> Self {
        Self {
            rewards: o.outcome.rewards.iter().map(|r| RewardDto::from(*r)).collect(),
            payment_methods: o.outcome.payment_methods.iter().map(Into::into).collect(),
            scheme_id: o.scheme_id.clone(),
            draft_id: o.draft_id.clone(),
            rule_index: o.outcome.rule_index,
            match_type: o.match_type.unwrap_or_default().as_str().to_string(),
        }
    }
}

/// A reward offered by a payout scheme (SPEC §4.8 "Reward").
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewardDto {
    pub reward_id: String,
    pub reward_name: String,
    /// `gift card`, `reward link`, `donation` or `cash equivalent`.
    pub reward_type: String,
    /// `active` or `inactive`.
    pub status: String,
    pub countries: Vec<String>,
    pub currency_code: String,
    /// Always null.
    #[schema(value_type = Option<String>)]
    pub exchange_rate_rule: Option<Value>,
    pub is_whole_amount_value_required: bool,
    /// `FIXED_VALUE` or `VARIABLE_VALUE`.
    pub value_type: String,
    #[serde(serialize_with = "opt_decimal")]
    #[schema(value_type = Option<f64>)]
    pub fixed_value: Option<Decimal>,
    #[serde(serialize_with = "opt_decimal")]
    #[schema(value_type = Option<f64>)]
    pub max_value: Option<Decimal>,
    #[serde(serialize_with = "opt_decimal")]
    #[schema(value_type = Option<f64>)]
    pub min_value: Option<Decimal>,
    pub credential_types: Vec<String>,
    /// HTML.
    pub redemption_instructions: String,
    /// Unused; always empty.
    pub tags: Vec<String>,
    pub app: RewardAppDto,
    pub created_date: String,
    pub last_update_date: String,
    pub brand: RewardBrandDto,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewardAppDto {
    pub app_id: String,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewardBrandDto {
    pub brand_key: String,
    pub brand_name: String,
    /// `active` or `inactive`.
    pub status: String,
    pub description: String,
    pub short_description: String,
    pub disclaimer: String,
    /// HTML.
    pub terms: String,
    pub image_urls: Vec<RewardImageDto>,
    pub requirements: RewardRequirementsDto,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewardImageDto {
    pub ppi: u32,
    pub url: String,
    pub width: u32,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewardRequirementsDto {
    pub always_show_disclaimer: bool,
    pub disclaimer_instructions: String,
    pub display_instructions: String,
    pub terms_and_conditions_instructions: String,
}

fn active(status_active: bool) -> String {
    if status_active { "active" } else { "inactive" }.to_string()
}

impl From<&CatalogReward> for RewardDto {
    fn from(r: &CatalogReward) -> Self {
        let b = &r.brand;
        Self {
            reward_id: r.reward_id.clone(),
            reward_name: r.reward_name.clone(),
            reward_type: r.reward_type.as_str().to_string(),
            status: r.status().to_string(),
            countries: r.countries.iter().map(|c| c.as_str().to_string()).collect(),
            currency_code: r.currency.as_str().to_string(),
            exchange_rate_rule: None,
            is_whole_amount_value_required: r.is_whole_amount_value_required,
            value_type: r.value_type.as_str().to_string(),
            fixed_value: r.fixed_value,
            max_value: r.max_value,
            min_value: r.min_value,
            credential_types: r.credential_types.clone(),
            redemption_instructions: r.redemption_instructions.clone(),
            tags: Vec::new(),
            app: RewardAppDto { app_id: r.app_id.to_string(), name: r.app_name().to_string() },
            created_date: r.created_date.clone(),
            last_update_date: r.last_update_date.clone(),
            brand: RewardBrandDto {
                brand_key: b.brand_key.clone(),
                brand_name: b.brand_name.clone(),
                status: active(b.status_active),
                description: b.description.clone(),
                short_description: b.short_description.clone(),
                disclaimer: b.disclaimer.clone(),
                terms: b.terms.clone(),
                image_urls: b
                    .image_urls
                    .iter()
                    .map(|i| RewardImageDto { ppi: i.ppi, url: i.url.clone(), width: i.width })
                    .collect(),
                requirements: RewardRequirementsDto {
                    always_show_disclaimer: b.requirements.always_show_disclaimer,
                    disclaimer_instructions: b.requirements.disclaimer_instructions.clone(),
                    display_instructions: b.requirements.display_instructions.clone(),
                    terms_and_conditions_instructions: b.requirements.terms_and_conditions_instructions.clone(),
                },
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Simulation
// ---------------------------------------------------------------------------------------------

/// The outcome of every case, for a draft and for the published draft.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SimulationDto {
    pub scheme_id: String,
    /// The draft simulated.
    pub draft_id: String,
    /// The draft it is compared with; `""` when nothing is published.
    pub published_draft_id: String,
    /// How many cases have `changed = true`.
    pub changed_count: usize,
    pub cases: Vec<SimulatedCaseDto>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SimulatedCaseDto {
    #[serde(serialize_with = "decimal")]
    #[schema(value_type = f64)]
    pub amount: Decimal,
    pub currency: String,
    pub country: String,
    /// Payout only: the `matchType` applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_type: Option<String>,
    /// The outcome with the simulated draft published.
    pub draft: OutcomeDto,
    /// The outcome today (null when nothing is published).
    pub published: Option<OutcomeDto>,
    /// Whether publishing the draft would change the matched rule or what is offered
    /// (always true while nothing is published).
    pub changed: bool,
}

/// A matched rule and what it offers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutcomeDto {
    /// The matched rule (0-based, saved order); null when no rule matched.
    pub rule_index: Option<usize>,
    /// Collect: the payment methods offered (as `paymentMethods` of the collect options).
    /// Payout: `{rewards, paymentMethods}`.
    pub options: OptionsDto,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum OptionsDto {
    Collect(Vec<PaymentMethodOptionDto>),
    Payout(PayoutSimulationOptionsDto),
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayoutSimulationOptionsDto {
    pub rewards: Vec<RewardSummaryDto>,
    pub payment_methods: Vec<PaymentMethodOptionDto>,
}

/// The identifying terms of an offered reward (the options endpoint returns the full Reward).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewardSummaryDto {
    pub reward_id: String,
    pub reward_name: String,
    pub brand_name: String,
    pub currency_code: String,
    pub value_type: String,
    #[serde(serialize_with = "opt_decimal")]
    #[schema(value_type = Option<f64>)]
    pub fixed_value: Option<Decimal>,
    #[serde(serialize_with = "opt_decimal")]
    #[schema(value_type = Option<f64>)]
    pub min_value: Option<Decimal>,
    #[serde(serialize_with = "opt_decimal")]
    #[schema(value_type = Option<f64>)]
    pub max_value: Option<Decimal>,
}

fn outcome_dto(kind: SchemeKind, o: &Outcome) -> OutcomeDto {
    let methods = o.payment_methods.iter().map(Into::into).collect();
    let options = match kind {
        SchemeKind::Collect => OptionsDto::Collect(methods),
        SchemeKind::Payout => OptionsDto::Payout(PayoutSimulationOptionsDto {
            rewards: o
                .rewards
                .iter()
                .map(|r| RewardSummaryDto {
                    reward_id: r.reward_id.clone(),
                    reward_name: r.reward_name.clone(),
                    brand_name: r.brand_name.clone(),
                    currency_code: r.currency.as_str().to_string(),
                    value_type: r.value_type.as_str().to_string(),
                    fixed_value: r.fixed_value,
                    min_value: r.min_value,
                    max_value: r.max_value,
                })
                .collect(),
            payment_methods: methods,
        }),
    };
    OutcomeDto { rule_index: o.rule_index, options }
}

fn case_dto(kind: SchemeKind, c: &SimulatedCase) -> SimulatedCaseDto {
    SimulatedCaseDto {
        amount: c.query.amount,
        currency: c.query.currency.as_str().to_string(),
        country: c.query.country.as_str().to_string(),
        match_type: c.match_type.map(|m| m.as_str().to_string()),
        draft: outcome_dto(kind, &c.draft),
        published: c.published.as_ref().map(|p| outcome_dto(kind, p)),
        changed: c.changed,
    }
}

impl From<&Simulation> for SimulationDto {
    fn from(s: &Simulation) -> Self {
        Self {
            scheme_id: s.scheme_id.clone(),
            draft_id: s.draft_id.clone(),
            published_draft_id: s.published_draft_id.clone().unwrap_or_default(),
            changed_count: s.changed_count(),
            cases: s.cases.iter().map(|c| case_dto(s.kind, c)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(json: Value) -> Vec<AppEntryRequest> {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn apps_and_configurations_compare_loosely() {
        let apps = entries(serde_json::json!([{"appId": "sandbox-card", "excludedPaymentMethods": ["paypal", ""]}]));
        let same = entries(
            serde_json::json!([{"appId": "SANDBOX_CARD", "priority": 2, "excludedPaymentMethods": ["PAYPAL"]}]),
        );
        let other = entries(serde_json::json!([{"appId": "SANDBOX_BANK"}]));
        assert!(same_entries(&apps, &same));
        assert!(!same_entries(&apps, &other));
        assert!(!same_entries(&apps, &[]));
    }

    #[test]
    fn decimals_are_numbers() {
        #[derive(Serialize)]
        struct D {
            #[serde(serialize_with = "opt_decimal")]
            a: Option<Decimal>,
            #[serde(serialize_with = "opt_decimal")]
            b: Option<Decimal>,
            #[serde(serialize_with = "opt_decimal")]
            c: Option<Decimal>,
        }
        let d = D { a: Some(Decimal::new(10000, 2)), b: Some(Decimal::new(10050, 2)), c: None };
        assert_eq!(serde_json::to_string(&d).unwrap(), r#"{"a":100,"b":100.5,"c":null}"#);
        assert_eq!(decimal_text(Some(serde_json::json!(12.5))).as_deref(), Some("12.5"));
        assert_eq!(decimal_text(Some(serde_json::json!("12.50"))).as_deref(), Some("12.50"));
        assert_eq!(decimal_text(Some(Value::Null)), None);
    }
}
