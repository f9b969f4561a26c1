//! Scheme rules and rule matching (SPEC §4.6–§4.8): which rule of a draft applies to an
//! amount, currency and country, which payment methods a collect rule offers, and which
//! rewards a payout rule offers.
//!
//! Everything here is pure. The outside world (an app's payment methods, a reward group's
//! members, a reward's terms) comes in through lookup closures, so the engine can serve
//! them from whatever it loaded; checks that need that world to *refuse* a draft (app
//! installed, direction, methods offered, exclusions in the group) are the engine's.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

use crate::apps::{AppId, SchemeKind, ValueType};
use crate::codes::{Country, Currency};
use crate::problem::Problem;

/// One app of a rule (SPEC "App entry"; the tutorials' `configurations`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppEntry {
    pub app_id: AppId,
    /// Lower wins when two entries offer the same payment method; `None` loses to any number.
    pub priority: Option<i64>,
    /// Methods of the app this entry does not offer. Empty excludes nothing.
    pub excluded_payment_methods: Vec<String>,
}

impl AppEntry {
    /// An entry with no priority and no exclusions.
    pub fn new(app_id: AppId) -> Self {
        Self { app_id, priority: None, excluded_payment_methods: Vec::new() }
    }
}

/// A payout rule's reference to a reward group, minus some of its rewards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewardGroupRef {
    pub reward_group_id: String,
    pub exclusions: Vec<String>,
}

/// One rule of a draft: currencies × countries × inclusive amount range → apps (+ reward groups).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rule {
    /// Echoed only; the rules' array order decides evaluation.
    pub priority: Option<i64>,
    /// Empty = any currency.
    pub currencies: Vec<Currency>,
    /// Empty = any country.
    pub countries: Vec<Country>,
    /// `None` = unbounded below.
    pub low_value_inclusive: Option<Decimal>,
    /// `None` = unbounded above.
    pub high_value_inclusive: Option<Decimal>,
    pub apps: Vec<AppEntry>,
    /// Payout rules only.
    pub reward_groups: Vec<RewardGroupRef>,
}

impl Rule {
    /// Whether this rule applies to the query: listed (or any) currency and country, and the
    /// amount inside the inclusive bounds.
    pub fn matches(&self, q: &MatchQuery) -> bool {
        (self.currencies.is_empty() || self.currencies.contains(&q.currency))
            && (self.countries.is_empty() || self.countries.contains(&q.country))
            && self.low_value_inclusive.is_none_or(|low| q.amount >= low)
            && self.high_value_inclusive.is_none_or(|high| q.amount <= high)
    }
}

/// What a rule is matched against: an instruction's (or an options request's) amount,
/// currency and country.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchQuery {
    pub amount: Decimal,
    pub currency: Currency,
    pub country: Country,
}

/// The index of the first rule, in saved order, that matches the query (inclusive bounds,
/// empty lists = any). `None` when no rule matches: the options are then empty.
pub fn first_match(rules: &[Rule], q: &MatchQuery) -> Option<usize> {
    rules.iter().position(|rule| rule.matches(q))
}

// ---------------------------------------------------------------------------------------------
// Collect resolution
// ---------------------------------------------------------------------------------------------

/// One payment method a collect rule offers, and the app that routes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectOption {
    pub app_id: AppId,
    pub payment_method_id: String,
    /// The priority of the app entry the method comes from.
    pub priority: Option<i64>,
}

/// Sort key of an entry's priority: any number before `None`.
fn priority_key(priority: Option<i64>) -> (bool, i64) {
    (priority.is_none(), priority.unwrap_or(0))
}

/// A rule's app entries in routing order: lowest priority first, `None` after any
/// number, ties in array order.
pub fn entries_by_priority(rule: &Rule) -> Vec<&AppEntry> {
    let mut order: Vec<usize> = (0..rule.apps.len()).collect();
    order.sort_by_key(|&i| (priority_key(rule.apps[i].priority), i));
    order.into_iter().map(|i| &rule.apps[i]).collect()
}

/// Collect resolution (SPEC "Collect resolve"): per app entry, the app's payment methods
/// minus the entry's exclusions; a method offered by several entries comes from the entry
/// with the lowest priority (`None` sorts after any number; ties: array order).
///
/// The output is ordered by (priority, entry index, the app's method order). Entries whose app
/// `methods_of` does not know are skipped. Method ids are compared case-insensitively, both for
/// exclusions and for duplicates, so a differently-cased exclusion still excludes.
pub fn resolve_collect<'a>(rule: &Rule, methods_of: impl Fn(&AppId) -> Option<&'a [String]>) -> Vec<CollectOption> {
    let mut out: Vec<CollectOption> = Vec::new();
    for entry in entries_by_priority(rule) {
        let Some(methods) = methods_of(&entry.app_id) else { continue };
        for method in methods {
            let excluded = entry.excluded_payment_methods.iter().any(|x| x.eq_ignore_ascii_case(method));
            let taken = out.iter().any(|o| o.payment_method_id.eq_ignore_ascii_case(method));
            if !excluded && !taken {
                out.push(CollectOption {
                    app_id: entry.app_id.clone(),
                    payment_method_id: method.clone(),
                    priority: entry.priority,
                });
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Payout resolution
// ---------------------------------------------------------------------------------------------

/// How a reward's value is compared with the amount (SPEC §4.8 `matchType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MatchType {
    /// A fixed reward must be worth exactly the amount.
    #[default]
    Exact,
    /// A fixed reward may be worth less than the amount.
    Max,
}

impl MatchType {
    pub const ALL: &'static [MatchType] = &[MatchType::Exact, MatchType::Max];

    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Exact => "Exact",
            MatchType::Max => "Max",
        }
    }

    /// Parses the `matchType` parameter case-insensitively; a blank value means the default,
    /// `Exact`. Anything else is `400 INVALID_MATCH_TYPE` on field `matchType`.
    pub fn parse(input: &str) -> Result<Self, Problem> {
        let s = input.trim();
        if s.is_empty() {
            return Ok(MatchType::default());
        }
        Self::ALL.iter().copied().find(|m| m.as_str().eq_ignore_ascii_case(s)).ok_or_else(|| {
            Problem::invalid_field("INVALID_MATCH_TYPE", "matchType", "{field} must be Exact or Max.")
                .detail("value", input.chars().take(32).collect::<String>())
        })
    }

    /// [`MatchType::parse`] for an optional parameter: absent means `Exact`.
    pub fn parse_opt(input: Option<&str>) -> Result<Self, Problem> {
        input.map_or(Ok(MatchType::default()), Self::parse)
    }
}

impl FromStr for MatchType {
    type Err = Problem;
    fn from_str(s: &str) -> Result<Self, Problem> {
        Self::parse(s)
    }
}

impl fmt::Display for MatchType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The terms of a catalog reward that decide whether a payout can be made with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewardTerms {
    pub reward_id: String,
    pub currency: Currency,
    /// The countries the reward is valid in. A reward listing none is valid nowhere.
    pub countries: Vec<Country>,
    pub value_type: ValueType,
    pub fixed_value: Option<Decimal>,
    pub min_value: Option<Decimal>,
    pub max_value: Option<Decimal>,
    /// `isWholeAmountValueRequired`: the amount must have no fraction.
    pub whole_amount_required: bool,
    /// `status = active`.
    pub active: bool,
}

/// Whether a reward can carry `amount` (SPEC §4.8 `matchType` table, plus the whole-amount rule):
///
/// | matchType | FIXED_VALUE passes when | VARIABLE_VALUE passes when |
/// |---|---|---|
/// | `Exact` | `fixedValue = amount` | `minValue ≤ amount ≤ maxValue` |
/// | `Max` | `fixedValue ≤ amount` | `minValue ≤ amount ≤ maxValue` |
///
/// A fixed reward without a `fixedValue` fits nothing; a variable reward's missing bound is
/// unbounded on that side.
pub fn fits_amount(terms: &RewardTerms, amount: Decimal, match_type: MatchType) -> bool {
    if terms.whole_amount_required && !amount.fract().is_zero() {
        return false;
    }
    match terms.value_type {
        ValueType::FixedValue => match (terms.fixed_value, match_type) {
            (Some(value), MatchType::Exact) => value == amount,
            (Some(value), MatchType::Max) => value <= amount,
            (None, _) => false,
        },
        ValueType::VariableValue => {
            terms.min_value.is_none_or(|min| min <= amount) && terms.max_value.is_none_or(|max| amount <= max)
        }
    }
}

/// Whether a reward can be offered for the query: active, in the query's currency, valid in
/// its country, and fitting its amount.
pub fn reward_fits(terms: &RewardTerms, q: &MatchQuery, match_type: MatchType) -> bool {
    terms.active
        && terms.currency == q.currency
        && terms.countries.contains(&q.country)
        && fits_amount(terms, q.amount, match_type)
}

/// One reward of a reward group. `enabled = false` hides it without removing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    pub reward_id: String,
    pub enabled: bool,
}

/// Remembers the reward ids already offered: a linear scan while few, a hash set beyond.
struct Seen<'a> {
    few: Vec<&'a str>,
    many: Option<HashSet<&'a str>>,
}

impl<'a> Seen<'a> {
    const FEW: usize = 16;

    fn new() -> Self {
        Self { few: Vec::new(), many: None }
    }

    /// Records `id`; `false` if it was already there.
    fn insert(&mut self, id: &'a str) -> bool {
        if let Some(set) = &mut self.many {
            return set.insert(id);
        }
        if self.few.contains(&id) {
            return false;
        }
        self.few.push(id);
        if self.few.len() > Self::FEW {
            self.many = Some(self.few.drain(..).collect());
        }
        true
    }
}

/// Payout resolution (SPEC "Payout resolve"): the union of the rule's groups' members in first
/// occurrence order, de-duplicated, keeping only rewards that
/// - are enabled in the group they come from (a reward disabled in one group but enabled in
///   another referenced group is offered),
/// - are not in any of the rule's group refs' `exclusions` (compared case-insensitively: a
///   rule that excludes a reward never offers it, whichever group also holds it),
/// - are known to `reward`, and pass [`reward_fits`] (active, currency, country, amount).
///
/// Groups that `group_members` does not know are skipped.
pub fn resolve_payout<'a, 'b>(
    rule: &Rule,
    q: &MatchQuery,
    match_type: MatchType,
    group_members: impl Fn(&str) -> Option<&'a [GroupMember]>,
    reward: impl Fn(&str) -> Option<&'b RewardTerms>,
) -> Vec<String> {
    let excluded =
        |id: &str| rule.reward_groups.iter().any(|g| g.exclusions.iter().any(|x| x.eq_ignore_ascii_case(id)));

    // Whether a reward fits depends on the reward alone, so a reward met again (in another
    // group) gets the same answer: only offered ones need remembering.
    let mut offered = Seen::new();
    let mut out = Vec::new();
    for group in &rule.reward_groups {
        let Some(members) = group_members(&group.reward_group_id) else { continue };
        for member in members {
            let id = member.reward_id.as_str();
            if member.enabled
                && !excluded(id)
                && reward(id).is_some_and(|terms| reward_fits(terms, q, match_type))
                && offered.insert(id)
            {
                out.push(member.reward_id.clone());
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Structural validation
// ---------------------------------------------------------------------------------------------

/// Structural validation of a draft's rules for a scheme kind: one [`Problem`] per bad thing,
/// each with a `field` detail such as `rules[2].highValueInclusive`.
///
/// | code | when | field |
/// |---|---|---|
/// | `RULES_REQUIRED` | no rules | `rules` |
/// | `RULE_REQUIRES_APP` | collect rule without apps | `rules[i].apps` |
/// | `RULE_REQUIRES_APP_OR_REWARD_GROUP` | payout rule without apps and groups | `rules[i]` |
/// | `REWARD_GROUPS_NOT_ALLOWED` | reward groups on a collect rule | `rules[i].rewardGroups` |
/// | `INVALID_VALUE_RANGE` | `low ≤ 0` | `rules[i].lowValueInclusive` |
/// | `INVALID_VALUE_RANGE` | `high ≤ 0` or `high < low` | `rules[i].highValueInclusive` |
/// | `DUPLICATE_APP_IN_RULE` | an appId a second time in a rule | `rules[i].apps[j].appId` |
/// | `DUPLICATE_REWARD_GROUP_IN_RULE` | a group a second time (case-insensitive) | `rules[i].rewardGroups[j].rewardGroupId` |
///
/// Checks that need the outside world (app installed, direction, methods offered, exclusions
/// in the group) are the engine's.
pub fn validate_rules(kind: SchemeKind, rules: &[Rule]) -> Result<(), Vec<Problem>> {
    let mut problems = Vec::new();
    if rules.is_empty() {
        problems.push(Problem::invalid_field("RULES_REQUIRED", "rules", "{field} must hold at least one rule."));
    }
    for (i, rule) in rules.iter().enumerate() {
        match kind {
            SchemeKind::Collect => {
                if rule.apps.is_empty() {
                    problems.push(Problem::invalid_field(
                        "RULE_REQUIRES_APP",
                        format!("rules[{i}].apps"),
                        "{field} must hold at least one app.",
                    ));
                }
                if !rule.reward_groups.is_empty() {
                    problems.push(Problem::invalid_field(
                        "REWARD_GROUPS_NOT_ALLOWED",
                        format!("rules[{i}].rewardGroups"),
                        "{field} is only allowed on payout rules.",
                    ));
                }
            }
            SchemeKind::Payout => {
                if rule.apps.is_empty() && rule.reward_groups.is_empty() {
                    problems.push(Problem::invalid_field(
                        "RULE_REQUIRES_APP_OR_REWARD_GROUP",
                        format!("rules[{i}]"),
                        "{field} must hold at least one app or reward group.",
                    ));
                }
            }
        }

        if let Some(low) = rule.low_value_inclusive {
            if low <= Decimal::ZERO {
                problems.push(
                    Problem::invalid_field(
                        "INVALID_VALUE_RANGE",
                        format!("rules[{i}].lowValueInclusive"),
                        "{field} must be greater than {limit}.",
                    )
                    .detail("limit", "0"),
                );
            }
        }
        if let Some(high) = rule.high_value_inclusive {
            if high <= Decimal::ZERO {
                problems.push(
                    Problem::invalid_field(
                        "INVALID_VALUE_RANGE",
                        format!("rules[{i}].highValueInclusive"),
                        "{field} must be greater than {limit}.",
                    )
                    .detail("limit", "0"),
                );
            } else if let Some(low) = rule.low_value_inclusive.filter(|low| high < *low) {
                problems.push(
                    Problem::invalid_field(
                        "INVALID_VALUE_RANGE",
                        format!("rules[{i}].highValueInclusive"),
                        "{field} must not be less than lowValueInclusive ({limit}).",
                    )
                    .detail("limit", low.to_string()),
                );
            }
        }

        for (j, entry) in rule.apps.iter().enumerate() {
            if rule.apps[..j].iter().any(|earlier| earlier.app_id == entry.app_id) {
                problems.push(
                    Problem::invalid_field(
                        "DUPLICATE_APP_IN_RULE",
                        format!("rules[{i}].apps[{j}].appId"),
                        "{field} names an app already in this rule.",
                    )
                    .detail("value", entry.app_id.as_str()),
                );
            }
        }
        for (j, group) in rule.reward_groups.iter().enumerate() {
            let id = &group.reward_group_id;
            if rule.reward_groups[..j].iter().any(|earlier| earlier.reward_group_id.eq_ignore_ascii_case(id)) {
                problems.push(
                    Problem::invalid_field(
                        "DUPLICATE_REWARD_GROUP_IN_RULE",
                        format!("rules[{i}].rewardGroups[{j}].rewardGroupId"),
                        "{field} names a reward group already in this rule.",
                    )
                    .detail("value", id.chars().take(64).collect::<String>()),
                );
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn q(amount: &str, currency: Currency, country: Country) -> MatchQuery {
        MatchQuery { amount: dec(amount), currency, country }
    }

    fn app(id: &str) -> AppId {
        AppId::parse(id).unwrap()
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn codes(problems: &[Problem]) -> Vec<(String, String)> {
        problems
            .iter()
            .map(|p| {
                let f = p.details.iter().find(|(k, _)| k == "field").map(|(_, v)| v.clone()).unwrap_or_default();
                (p.code.to_string(), f)
            })
            .collect()
    }

    // ---------------------------------------------------------------------------------------
    // Collect: SPEC §4.6 C1–C6
    // ---------------------------------------------------------------------------------------

    const BRAINTREE_METHODS: [&str; 6] = ["VISA", "MASTERCARD", "DISCOVER", "MAESTRO", "AMERICAN-EXPRESS", "PAYPAL"];
    const CARDS: [&str; 5] = ["VISA", "MASTERCARD", "DISCOVER", "MAESTRO", "AMERICAN-EXPRESS"];

    fn braintree(excluded: &[&str]) -> AppEntry {
        AppEntry { app_id: app("braintree-sdk"), priority: Some(1), excluded_payment_methods: strings(excluded) }
    }

    /// R1 EUR/any/1–100 → cards only; R2 EUR/DE,FR/101–any → cards + PayPal; R3 EUR/any/any → PayPal only.
    fn collect_rules() -> Vec<Rule> {
        vec![
            Rule {
                priority: Some(1),
                currencies: vec![Currency::EUR],
                low_value_inclusive: Some(dec("1")),
                high_value_inclusive: Some(dec("100")),
                apps: vec![braintree(&["PAYPAL"])],
                ..Rule::default()
            },
            Rule {
                priority: Some(2),
                currencies: vec![Currency::EUR],
                countries: vec![Country::DE, Country::FR],
                low_value_inclusive: Some(dec("101")),
                apps: vec![braintree(&[])],
                ..Rule::default()
            },
            Rule {
                priority: Some(3),
                currencies: vec![Currency::EUR],
                apps: vec![braintree(&CARDS)],
                ..Rule::default()
            },
        ]
    }

    fn braintree_catalog() -> HashMap<AppId, Vec<String>> {
        HashMap::from([(app("BRAINTREE_SDK"), strings(&BRAINTREE_METHODS))])
    }

    /// Runs a full collect evaluation: the matched rule's index and its method ids.
    fn collect(rules: &[Rule], query: &MatchQuery) -> (Option<usize>, Vec<String>) {
        let catalog = braintree_catalog();
        let lookup = |id: &AppId| catalog.get(id).map(Vec::as_slice);
        match first_match(rules, query) {
            Some(i) => (Some(i), resolve_collect(&rules[i], lookup).into_iter().map(|o| o.payment_method_id).collect()),
            None => (None, Vec::new()),
        }
    }

    #[test]
    fn c1_de_200_skips_r1_on_amount_and_takes_r2() {
        assert_eq!(
            collect(&collect_rules(), &q("200.00", Currency::EUR, Country::DE)),
            (Some(1), strings(&BRAINTREE_METHODS))
        );
    }

    #[test]
    fn c2_es_200_skips_r2_on_country_and_takes_r3() {
        assert_eq!(
            collect(&collect_rules(), &q("200.00", Currency::EUR, Country::ES)),
            (Some(2), strings(&["PAYPAL"]))
        );
    }

    #[test]
    fn c3_fr_100_takes_r1_inclusive_high() {
        assert_eq!(collect(&collect_rules(), &q("100.00", Currency::EUR, Country::FR)), (Some(0), strings(&CARDS)));
    }

    #[test]
    fn c4_de_101_takes_r2_inclusive_low() {
        assert_eq!(
            collect(&collect_rules(), &q("101.00", Currency::EUR, Country::DE)),
            (Some(1), strings(&BRAINTREE_METHODS))
        );
    }

    #[test]
    fn c5_de_100_50_falls_in_the_gap_to_r3() {
        assert_eq!(
            collect(&collect_rules(), &q("100.50", Currency::EUR, Country::DE)),
            (Some(2), strings(&["PAYPAL"]))
        );
    }

    #[test]
    fn c6_gbp_matches_nothing() {
        assert_eq!(collect(&collect_rules(), &q("50.00", Currency::GBP, Country::DE)), (None, Vec::new()));
    }

    #[test]
    fn collect_options_carry_app_and_priority() {
        let rules = collect_rules();
        let catalog = braintree_catalog();
        let options = resolve_collect(&rules[2], |id| catalog.get(id).map(Vec::as_slice));
        assert_eq!(
            options,
            vec![CollectOption { app_id: app("BRAINTREE_SDK"), payment_method_id: "PAYPAL".into(), priority: Some(1) }]
        );
    }

    #[test]
    fn duplicate_methods_come_from_the_lowest_priority_entry() {
        let entry =
            |id: &str, priority: Option<i64>| AppEntry { app_id: app(id), priority, excluded_payment_methods: vec![] };
        let rule = Rule {
            apps: vec![entry("APP_A", Some(2)), entry("APP_B", Some(1)), entry("APP_C", None), entry("APP_D", Some(1))],
            ..Rule::default()
        };
        let catalog: HashMap<AppId, Vec<String>> = HashMap::from([
            (app("APP_A"), strings(&["VISA", "MASTERCARD"])),
            (app("APP_B"), strings(&["VISA", "AMERICAN-EXPRESS"])),
            (app("APP_C"), strings(&["MASTERCARD", "PAYPAL"])),
            (app("APP_D"), strings(&["AMERICAN-EXPRESS", "DISCOVER"])),
        ]);
        let got: Vec<(String, String, Option<i64>)> = resolve_collect(&rule, |id| catalog.get(id).map(Vec::as_slice))
            .into_iter()
            .map(|o| (o.app_id.to_string(), o.payment_method_id, o.priority))
            .collect();
        let want = [
            ("APP_B", "VISA", Some(1)),
            ("APP_B", "AMERICAN-EXPRESS", Some(1)),
            ("APP_D", "DISCOVER", Some(1)), // tie with APP_B on priority: array order
            ("APP_A", "MASTERCARD", Some(2)),
            ("APP_C", "PAYPAL", None), // None sorts after any number
        ];
        let want: Vec<(String, String, Option<i64>)> =
            want.iter().map(|(a, m, p)| (a.to_string(), m.to_string(), *p)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn an_excluded_method_comes_from_the_next_entry_and_unknown_apps_are_skipped() {
        let rule = Rule {
            apps: vec![
                AppEntry { app_id: app("APP_A"), priority: Some(1), excluded_payment_methods: strings(&["visa"]) },
                AppEntry { app_id: app("UNKNOWN"), priority: Some(0), excluded_payment_methods: vec![] },
                AppEntry { app_id: app("APP_B"), priority: Some(5), excluded_payment_methods: vec![] },
            ],
            ..Rule::default()
        };
        let catalog: HashMap<AppId, Vec<String>> = HashMap::from([
            (app("APP_A"), strings(&["VISA", "MASTERCARD"])),
            (app("APP_B"), strings(&["VISA", "MASTERCARD"])),
        ]);
        let got: Vec<(String, String)> = resolve_collect(&rule, |id| catalog.get(id).map(Vec::as_slice))
            .into_iter()
            .map(|o| (o.app_id.to_string(), o.payment_method_id))
            .collect();
        assert_eq!(got, vec![("APP_A".into(), "MASTERCARD".into()), ("APP_B".into(), "VISA".into())]);
    }

    // ---------------------------------------------------------------------------------------
    // Payout: SPEC §4.6 P1–P4
    // ---------------------------------------------------------------------------------------

    fn variable(id: &str, currency: Currency, countries: &[Country], min: &str, max: &str) -> RewardTerms {
        RewardTerms {
            reward_id: id.into(),
            currency,
            countries: countries.to_vec(),
            value_type: ValueType::VariableValue,
            fixed_value: None,
            min_value: Some(dec(min)),
            max_value: Some(dec(max)),
            whole_amount_required: false,
            active: true,
        }
    }

    fn fixed(id: &str, currency: Currency, countries: &[Country], value: &str) -> RewardTerms {
        RewardTerms {
            reward_id: id.into(),
            currency,
            countries: countries.to_vec(),
            value_type: ValueType::FixedValue,
            fixed_value: Some(dec(value)),
            min_value: Some(dec(value)),
            max_value: Some(dec(value)),
            whole_amount_required: false,
            active: true,
        }
    }

    fn members(ids: &[&str]) -> Vec<GroupMember> {
        ids.iter().map(|id| GroupMember { reward_id: id.to_string(), enabled: true }).collect()
    }

    #[derive(Debug)]
    struct PayoutWorld {
        groups: HashMap<String, Vec<GroupMember>>,
        rewards: HashMap<String, RewardTerms>,
    }

    impl PayoutWorld {
        /// Amazon = {amazon.co.uk (GB/GBP), amazon.de (DE/EUR), amazon.fr (FR/EUR)}, all variable 1–500;
        /// Coffee Shops = {starbucks (DE/EUR fixed 10), nero (GB/GBP variable 5–50), costa (DE,FR/EUR fixed 5)}.
        fn spec() -> Self {
            let rewards = [
                variable("amazon.co.uk", Currency::GBP, &[Country::GB], "1", "500"),
                variable("amazon.de", Currency::EUR, &[Country::DE], "1", "500"),
                variable("amazon.fr", Currency::EUR, &[Country::FR], "1", "500"),
                fixed("starbucks", Currency::EUR, &[Country::DE], "10"),
                variable("nero", Currency::GBP, &[Country::GB], "5", "50"),
                fixed("costa", Currency::EUR, &[Country::DE, Country::FR], "5"),
            ];
            Self {
                groups: HashMap::from([
                    ("rg-amazon".to_string(), members(&["amazon.co.uk", "amazon.de", "amazon.fr"])),
                    ("rg-coffee".to_string(), members(&["starbucks", "nero", "costa"])),
                ]),
                rewards: rewards.into_iter().map(|r| (r.reward_id.clone(), r)).collect(),
            }
        }

        fn resolve(&self, rule: &Rule, query: &MatchQuery, match_type: MatchType) -> Vec<String> {
            resolve_payout(
                rule,
                query,
                match_type,
                |id| self.groups.get(id).map(Vec::as_slice),
                |id| self.rewards.get(id),
            )
        }

        fn evaluate(&self, rules: &[Rule], query: &MatchQuery, match_type: MatchType) -> (Option<usize>, Vec<String>) {
            match first_match(rules, query) {
                Some(i) => (Some(i), self.resolve(&rules[i], query, match_type)),
                None => (None, Vec::new()),
            }
        }
    }

    fn group(id: &str, exclusions: &[&str]) -> RewardGroupRef {
        RewardGroupRef { reward_group_id: id.into(), exclusions: strings(exclusions) }
    }

    /// R1 EUR/any/1–20 → both groups. R2 EUR/any/21–any → Amazon.
    fn payout_rules() -> Vec<Rule> {
        vec![
            Rule {
                currencies: vec![Currency::EUR],
                low_value_inclusive: Some(dec("1")),
                high_value_inclusive: Some(dec("20")),
                reward_groups: vec![group("rg-amazon", &[]), group("rg-coffee", &[])],
                ..Rule::default()
            },
            Rule {
                currencies: vec![Currency::EUR],
                low_value_inclusive: Some(dec("21")),
                reward_groups: vec![group("rg-amazon", &[])],
                ..Rule::default()
            },
        ]
    }

    #[test]
    fn p1_de_120_takes_r2_and_offers_amazon_de_only() {
        let world = PayoutWorld::spec();
        for mt in MatchType::ALL {
            assert_eq!(
                world.evaluate(&payout_rules(), &q("120.00", Currency::EUR, Country::DE), *mt),
                (Some(1), strings(&["amazon.de"]))
            );
        }
    }

    #[test]
    fn p2_excluding_amazon_de_leaves_nothing() {
        let world = PayoutWorld::spec();
        let mut rules = payout_rules();
        rules[1].reward_groups[0].exclusions = strings(&["amazon.de"]);
        assert_eq!(
            world.evaluate(&rules, &q("120.00", Currency::EUR, Country::DE), MatchType::Exact),
            (Some(1), vec![])
        );
    }

    #[test]
    fn p3_de_10_takes_r1_and_offers_amazon_de_plus_fitting_coffee() {
        let world = PayoutWorld::spec();
        let query = q("10.00", Currency::EUR, Country::DE);
        // nero is GB/GBP; costa is worth 5, which only Max accepts for 10.00.
        assert_eq!(
            world.evaluate(&payout_rules(), &query, MatchType::Exact),
            (Some(0), strings(&["amazon.de", "starbucks"]))
        );
        assert_eq!(
            world.evaluate(&payout_rules(), &query, MatchType::Max),
            (Some(0), strings(&["amazon.de", "starbucks", "costa"]))
        );
    }

    #[test]
    fn p4_de_20_50_falls_in_the_gap() {
        let world = PayoutWorld::spec();
        assert_eq!(
            world.evaluate(&payout_rules(), &q("20.50", Currency::EUR, Country::DE), MatchType::Max),
            (None, vec![])
        );
    }

    #[test]
    fn disabled_members_unknown_groups_and_unknown_rewards_are_dropped() {
        let mut world = PayoutWorld::spec();
        world.groups.get_mut("rg-amazon").unwrap()[1].enabled = false; // amazon.de
        world.groups.insert("rg-extra".into(), members(&["ghost", "amazon.de", "starbucks"]));
        let query = q("10.00", Currency::EUR, Country::DE);

        let amazon_only = Rule { reward_groups: vec![group("rg-amazon", &[])], ..Rule::default() };
        assert_eq!(world.resolve(&amazon_only, &query, MatchType::Exact), Vec::<String>::new());

        // Disabled in Amazon but enabled in Extra: offered (once), from Extra's position.
        let both = Rule {
            reward_groups: vec![
                group("rg-missing", &[]),
                group("rg-amazon", &[]),
                group("rg-coffee", &[]),
                group("rg-extra", &[]),
            ],
            ..Rule::default()
        };
        assert_eq!(world.resolve(&both, &query, MatchType::Exact), strings(&["starbucks", "amazon.de"]));
    }

    #[test]
    fn an_exclusion_wins_over_another_group_holding_the_reward() {
        let mut world = PayoutWorld::spec();
        world.groups.insert("rg-extra".into(), members(&["amazon.de", "starbucks"]));
        let rule = Rule {
            reward_groups: vec![
                group("rg-amazon", &["AMAZON.DE"]),
                group("rg-extra", &[]),
                group("rg-coffee", &["costa"]),
            ],
            ..Rule::default()
        };
        assert_eq!(world.resolve(&rule, &q("10", Currency::EUR, Country::DE), MatchType::Max), strings(&["starbucks"]));
    }

    #[test]
    fn inactive_other_currency_and_other_country_rewards_are_dropped() {
        let mut world = PayoutWorld::spec();
        let rule = Rule { reward_groups: vec![group("rg-amazon", &[]), group("rg-coffee", &[])], ..Rule::default() };
        assert_eq!(
            world.resolve(&rule, &q("10", Currency::EUR, Country::FR), MatchType::Exact),
            strings(&["amazon.fr"])
        );
        assert_eq!(
            world.resolve(&rule, &q("10", Currency::GBP, Country::GB), MatchType::Exact),
            strings(&["amazon.co.uk", "nero"])
        );
        // GBP in DE: nothing is both.
        assert_eq!(world.resolve(&rule, &q("10", Currency::GBP, Country::DE), MatchType::Exact), Vec::<String>::new());
        world.rewards.get_mut("amazon.fr").unwrap().active = false;
        assert_eq!(world.resolve(&rule, &q("10", Currency::EUR, Country::FR), MatchType::Exact), Vec::<String>::new());
        // A reward listing no countries is valid nowhere.
        world.rewards.get_mut("amazon.co.uk").unwrap().countries.clear();
        assert_eq!(world.resolve(&rule, &q("10", Currency::GBP, Country::GB), MatchType::Exact), strings(&["nero"]));
    }

    #[test]
    fn many_members_are_deduplicated_in_first_occurrence_order() {
        // More members than the linear scan of `Seen` holds.
        let ids: Vec<String> = (0..60).map(|i| format!("r{i:02}")).collect();
        let rewards: HashMap<String, RewardTerms> =
            ids.iter().map(|id| (id.clone(), variable(id, Currency::EUR, &[Country::DE], "1", "100"))).collect();
        let forward: Vec<GroupMember> =
            ids.iter().map(|id| GroupMember { reward_id: id.clone(), enabled: true }).collect();
        let backward: Vec<GroupMember> = forward.iter().rev().cloned().collect();
        let groups = HashMap::from([("a".to_string(), forward), ("b".to_string(), backward)]);
        let rule = Rule { reward_groups: vec![group("a", &["r07"]), group("b", &[])], ..Rule::default() };
        let got = resolve_payout(
            &rule,
            &q("5", Currency::EUR, Country::DE),
            MatchType::Exact,
            |id| groups.get(id).map(Vec::as_slice),
            |id| rewards.get(id),
        );
        let want: Vec<String> = ids.iter().filter(|id| *id != "r07").cloned().collect();
        assert_eq!(got, want);
    }

    // ---------------------------------------------------------------------------------------
    // Amounts: SPEC §4.8 A1–A5 and the whole-amount rule
    // ---------------------------------------------------------------------------------------

    #[test]
    fn amount_table_a1_to_a5_at_15() {
        let de = [Country::DE];
        let cases = [
            ("A1", variable("a1", Currency::EUR, &de, "1.00", "500.00"), true, true),
            ("A2", variable("a2", Currency::EUR, &de, "20.00", "50.00"), false, false),
            ("A3", fixed("a3", Currency::EUR, &de, "15.00"), true, true),
            ("A4", fixed("a4", Currency::EUR, &de, "10.00"), false, true),
            ("A5", fixed("a5", Currency::EUR, &de, "20.00"), false, false),
        ];
        for (name, terms, exact, max) in cases {
            assert_eq!(fits_amount(&terms, dec("15.00"), MatchType::Exact), exact, "{name} Exact");
            assert_eq!(fits_amount(&terms, dec("15.00"), MatchType::Max), max, "{name} Max");
            // `15` and `15.00` are the same amount.
            assert_eq!(fits_amount(&terms, dec("15"), MatchType::Exact), exact, "{name} Exact, no scale");
        }
    }

    #[test]
    fn whole_amount_rule() {
        let mut terms = variable("w", Currency::EUR, &[Country::DE], "1", "100");
        terms.whole_amount_required = true;
        for mt in MatchType::ALL {
            assert!(fits_amount(&terms, dec("15.00"), *mt));
            assert!(fits_amount(&terms, dec("15"), *mt));
            assert!(!fits_amount(&terms, dec("15.50"), *mt));
        }
        let mut fixed10 = fixed("f", Currency::EUR, &[Country::DE], "10");
        fixed10.whole_amount_required = true;
        assert!(fits_amount(&fixed10, dec("15.00"), MatchType::Max));
        assert!(!fits_amount(&fixed10, dec("15.50"), MatchType::Max));
        fixed10.whole_amount_required = false;
        assert!(fits_amount(&fixed10, dec("15.50"), MatchType::Max));
    }

    #[test]
    fn missing_values() {
        let mut f = fixed("f", Currency::EUR, &[Country::DE], "10");
        f.fixed_value = None;
        assert!(!fits_amount(&f, dec("10"), MatchType::Exact));
        assert!(!fits_amount(&f, dec("10"), MatchType::Max));
        let mut v = variable("v", Currency::EUR, &[Country::DE], "5", "50");
        v.max_value = None;
        assert!(fits_amount(&v, dec("5000"), MatchType::Exact));
        assert!(!fits_amount(&v, dec("4.99"), MatchType::Exact));
        v.min_value = None;
        assert!(fits_amount(&v, dec("0.01"), MatchType::Exact));
    }

    #[test]
    fn match_type_parsing() {
        assert_eq!(MatchType::parse("exact"), Ok(MatchType::Exact));
        assert_eq!(MatchType::parse("MAX"), Ok(MatchType::Max));
        assert_eq!(MatchType::parse(" Max "), Ok(MatchType::Max));
        assert_eq!(MatchType::parse(""), Ok(MatchType::Exact));
        assert_eq!(MatchType::parse_opt(None), Ok(MatchType::Exact));
        assert_eq!(MatchType::parse_opt(Some("max")), Ok(MatchType::Max));
        assert_eq!("Exact".parse::<MatchType>(), Ok(MatchType::Exact));
        assert_eq!(MatchType::default(), MatchType::Exact);
        assert_eq!(MatchType::Max.to_string(), "Max");
        let p = MatchType::parse("min").unwrap_err();
        assert_eq!(p.code, "INVALID_MATCH_TYPE");
        assert_eq!(p.kind, crate::problem::ProblemKind::BadRequest);
        assert!(p.details.iter().any(|(k, v)| k == "field" && v == "matchType"));
    }

    // ---------------------------------------------------------------------------------------
    // Validation
    // ---------------------------------------------------------------------------------------

    #[test]
    fn valid_drafts_pass() {
        assert_eq!(validate_rules(SchemeKind::Collect, &collect_rules()), Ok(()));
        assert_eq!(validate_rules(SchemeKind::Payout, &payout_rules()), Ok(()));
        // A payout rule may route through an app alone; high = low is a one-value range.
        let rule = Rule {
            low_value_inclusive: Some(dec("10")),
            high_value_inclusive: Some(dec("10")),
            apps: vec![AppEntry::new(app("TANGOCARD"))],
            ..Rule::default()
        };
        assert_eq!(validate_rules(SchemeKind::Payout, &[rule]), Ok(()));
    }

    #[test]
    fn no_rules() {
        for kind in [SchemeKind::Collect, SchemeKind::Payout] {
            let problems = validate_rules(kind, &[]).unwrap_err();
            assert_eq!(codes(&problems), vec![("RULES_REQUIRED".into(), "rules".into())]);
        }
    }

    #[test]
    fn every_structural_problem_is_reported_with_its_field() {
        let bt = || AppEntry::new(app("BRAINTREE_SDK"));
        let collect = vec![
            Rule { apps: vec![bt()], ..Rule::default() },
            Rule { reward_groups: vec![group("g", &[])], ..Rule::default() },
            Rule {
                low_value_inclusive: Some(dec("0")),
                high_value_inclusive: Some(dec("-1")),
                apps: vec![bt(), AppEntry::new(app("stripe")), AppEntry::new(app("braintree-sdk"))],
                ..Rule::default()
            },
            Rule {
                low_value_inclusive: Some(dec("50")),
                high_value_inclusive: Some(dec("49.99")),
                apps: vec![bt()],
                ..Rule::default()
            },
            Rule { low_value_inclusive: Some(dec("-3")), apps: vec![bt()], ..Rule::default() },
            Rule { high_value_inclusive: Some(dec("0")), apps: vec![bt()], ..Rule::default() },
        ];
        let problems = validate_rules(SchemeKind::Collect, &collect).unwrap_err();
        assert!(problems.iter().all(|p| p.kind == crate::problem::ProblemKind::BadRequest));
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
        };
        assert_eq!(
            codes(&problems),
            pairs(&[
                ("RULE_REQUIRES_APP", "rules[1].apps"),
                ("REWARD_GROUPS_NOT_ALLOWED", "rules[1].rewardGroups"),
                ("INVALID_VALUE_RANGE", "rules[2].lowValueInclusive"),
                ("INVALID_VALUE_RANGE", "rules[2].highValueInclusive"),
                ("DUPLICATE_APP_IN_RULE", "rules[2].apps[2].appId"),
                ("INVALID_VALUE_RANGE", "rules[3].highValueInclusive"),
                ("INVALID_VALUE_RANGE", "rules[4].lowValueInclusive"),
                ("INVALID_VALUE_RANGE", "rules[5].highValueInclusive"),
            ])
        );
        assert_eq!(
            problems[5].render(&[]),
            "[rules[3].highValueInclusive] must not be less than lowValueInclusive ([50])."
        );

        let payout = vec![
            Rule::default(),
            Rule { reward_groups: vec![group("g1", &[]), group("g2", &[]), group("G1", &[])], ..Rule::default() },
            Rule { apps: vec![AppEntry::new(app("TANGOCARD_RAAS"))], ..Rule::default() },
        ];
        let problems = validate_rules(SchemeKind::Payout, &payout).unwrap_err();
        assert_eq!(
            codes(&problems),
            pairs(&[
                ("RULE_REQUIRES_APP_OR_REWARD_GROUP", "rules[0]"),
                ("DUPLICATE_REWARD_GROUP_IN_RULE", "rules[1].rewardGroups[2].rewardGroupId"),
            ])
        );
    }

    // ---------------------------------------------------------------------------------------
    // Properties
    // ---------------------------------------------------------------------------------------

    const P_APPS: [&str; 4] = ["APP_A", "APP_B", "APP_C", "APP_D"];
    const P_METHODS: [&str; 6] = ["VISA", "MASTERCARD", "DISCOVER", "MAESTRO", "AMERICAN-EXPRESS", "PAYPAL"];
    const P_REWARDS: [&str; 8] = ["r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"];
    const P_GROUPS: [&str; 3] = ["g0", "g1", "g2"];

    /// Amounts from a small pool half of the time, so bounds and amounts often coincide.
    fn amount() -> impl Strategy<Value = Decimal> {
        prop_oneof![
            prop::sample::select(vec![0i64, 1, 100, 1_000, 1_050, 2_000, 2_050, 2_100, 10_000, 10_050, 10_100]),
            0i64..30_000,
        ]
        .prop_map(|cents| Decimal::new(cents, 2))
    }

    fn currency() -> impl Strategy<Value = Currency> {
        prop::sample::select(vec![Currency::EUR, Currency::GBP, Currency::USD])
    }

    fn country() -> impl Strategy<Value = Country> {
        prop::sample::select(vec![Country::DE, Country::FR, Country::ES, Country::GB])
    }

    fn query() -> impl Strategy<Value = MatchQuery> {
        (amount(), currency(), country()).prop_map(|(amount, currency, country)| MatchQuery {
            amount,
            currency,
            country,
        })
    }

    fn subset(items: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
        prop::sample::subsequence(items.to_vec(), 0..=items.len())
            .prop_map(|v| v.into_iter().map(String::from).collect())
    }

    fn app_entries() -> impl Strategy<Value = Vec<AppEntry>> {
        prop::sample::subsequence(P_APPS.to_vec(), 0..=P_APPS.len())
            .prop_shuffle()
            .prop_flat_map(|ids| {
                let n = ids.len();
                (Just(ids), prop::collection::vec((prop::option::of(0i64..3), subset(&P_METHODS)), n))
            })
            .prop_map(|(ids, extra)| {
                ids.into_iter()
                    .zip(extra)
                    .map(|(id, (priority, excluded_payment_methods))| AppEntry {
                        app_id: app(id),
                        priority,
                        excluded_payment_methods,
                    })
                    .collect()
            })
    }

    fn group_refs() -> impl Strategy<Value = Vec<RewardGroupRef>> {
        prop::sample::subsequence(P_GROUPS.to_vec(), 0..=P_GROUPS.len()).prop_shuffle().prop_flat_map(|ids| {
            let n = ids.len();
            (Just(ids), prop::collection::vec(subset(&P_REWARDS), n)).prop_map(|(ids, exclusions)| {
                ids.into_iter()
                    .zip(exclusions)
                    .map(|(id, exclusions)| RewardGroupRef { reward_group_id: id.into(), exclusions })
                    .collect()
            })
        })
    }

    fn rule() -> impl Strategy<Value = Rule> {
        (
            prop::collection::vec(currency(), 0..3),
            prop::collection::vec(country(), 0..3),
            prop::option::of(amount()),
            prop::option::of(amount()),
            app_entries(),
            group_refs(),
        )
            .prop_map(|(currencies, countries, low, high, apps, reward_groups)| Rule {
                priority: None,
                currencies,
                countries,
                low_value_inclusive: low,
                high_value_inclusive: high,
                apps,
                reward_groups,
            })
    }

    /// Each app offers a random subset of the methods, in a random order.
    fn app_catalog() -> impl Strategy<Value = HashMap<AppId, Vec<String>>> {
        prop::collection::vec(subset(&P_METHODS).prop_shuffle(), P_APPS.len())
            .prop_map(|lists| P_APPS.iter().map(|id| app(id)).zip(lists).collect())
    }

    fn reward_terms(id: &'static str) -> impl Strategy<Value = RewardTerms> {
        (
            currency(),
            prop::collection::vec(country(), 0..3),
            any::<bool>(),
            amount(),
            amount(),
            any::<bool>(),
            prop::bool::weighted(0.8),
        )
            .prop_map(move |(currency, countries, is_fixed, a, b, whole, active)| RewardTerms {
                reward_id: id.into(),
                currency,
                countries,
                value_type: if is_fixed { ValueType::FixedValue } else { ValueType::VariableValue },
                fixed_value: Some(a),
                min_value: Some(a.min(b)),
                max_value: Some(a.max(b)),
                whole_amount_required: whole,
                active,
            })
    }

    fn payout_world() -> impl Strategy<Value = PayoutWorld> {
        let groups = prop::collection::vec(
            prop::collection::vec((prop::sample::select(P_REWARDS.to_vec()), prop::bool::weighted(0.8)), 0..8),
            P_GROUPS.len(),
        );
        // r7 is never in the catalog: an unknown reward.
        let rewards: Vec<_> = P_REWARDS[..7].iter().map(|id| reward_terms(id)).collect();
        (groups, rewards).prop_map(|(groups, rewards)| PayoutWorld {
            groups: P_GROUPS
                .iter()
                .zip(groups)
                .map(|(g, ms)| {
                    let ms =
                        ms.into_iter().map(|(id, enabled)| GroupMember { reward_id: id.into(), enabled }).collect();
                    (g.to_string(), ms)
                })
                .collect(),
            rewards: rewards.into_iter().map(|r| (r.reward_id.clone(), r)).collect(),
        })
    }

    /// An empty list allows anything; otherwise `x` must be in it.
    fn any_or_listed<T: PartialEq>(list: &[T], x: T) -> bool {
        let mut found = list.is_empty();
        for item in list {
            found |= *item == x;
        }
        found
    }

    fn naive_first_match(rules: &[Rule], q: &MatchQuery) -> Option<usize> {
        for (i, rule) in rules.iter().enumerate() {
            if !any_or_listed(&rule.currencies, q.currency) || !any_or_listed(&rule.countries, q.country) {
                continue;
            }
            if let Some(low) = rule.low_value_inclusive {
                if q.amount < low {
                    continue;
                }
            }
            if let Some(high) = rule.high_value_inclusive {
                if q.amount > high {
                    continue;
                }
            }
            return Some(i);
        }
        None
    }

    fn methods(rule: &Rule, catalog: &HashMap<AppId, Vec<String>>) -> Vec<CollectOption> {
        resolve_collect(rule, |id| catalog.get(id).map(Vec::as_slice))
    }

    proptest! {
        #[test]
        fn first_match_agrees_with_the_naive_reference(rules in prop::collection::vec(rule(), 0..8), q in query()) {
            prop_assert_eq!(first_match(&rules, &q), naive_first_match(&rules, &q));
        }

        #[test]
        fn a_rule_without_filters_matches_everything(
            rules in prop::collection::vec(rule(), 0..6),
            apps in app_entries(),
            q in query(),
        ) {
            let open = Rule { apps, ..Rule::default() };
            prop_assert!(open.matches(&q));
            let mut rules = rules;
            let at = rules.len();
            rules.push(open);
            let m = first_match(&rules, &q);
            prop_assert!(m.is_some_and(|i| i <= at));
        }

        #[test]
        fn removing_another_rule_keeps_the_match_and_its_options(
            rules in prop::collection::vec(rule(), 1..8),
            remove in any::<prop::sample::Index>(),
            catalog in app_catalog(),
            world in payout_world(),
            q in query(),
            mt in prop::sample::select(MatchType::ALL.to_vec()),
        ) {
            let j = remove.index(rules.len());
            let mut fewer = rules.clone();
            fewer.remove(j);
            let before = first_match(&rules, &q);
            let after = first_match(&fewer, &q);
            match before {
                Some(k) if k != j => {
                    // The same rule still wins (one index earlier if an earlier rule went)...
                    let k2 = if j < k { k - 1 } else { k };
                    prop_assert_eq!(after, Some(k2));
                    // ...and offers exactly what it offered.
                    prop_assert_eq!(methods(&fewer[k2], &catalog), methods(&rules[k], &catalog));
                    prop_assert_eq!(world.resolve(&fewer[k2], &q, mt), world.resolve(&rules[k], &q, mt));
                }
                Some(k) => {
                    // The winner went: a rule after it, or none, wins now.
                    prop_assert!(after.is_none_or(|a| a >= k));
                }
                None => prop_assert_eq!(after, None),
            }
        }

        #[test]
        fn collect_never_offers_an_excluded_method_and_each_method_once(rule in rule(), catalog in app_catalog()) {
            let options = methods(&rule, &catalog);
            for (n, o) in options.iter().enumerate() {
                let entry = rule.apps.iter().find(|e| e.app_id == o.app_id).unwrap();
                prop_assert!(!entry.excluded_payment_methods.contains(&o.payment_method_id));
                prop_assert!(catalog[&o.app_id].contains(&o.payment_method_id));
                prop_assert_eq!(o.priority, entry.priority);
                prop_assert!(options[..n].iter().all(|p| p.payment_method_id != o.payment_method_id));
                // No entry that sorts before the chosen one offers this method.
                let chosen = rule.apps.iter().position(|e| e.app_id == o.app_id).unwrap();
                for (i, e) in rule.apps.iter().enumerate() {
                    let before = (priority_key(e.priority), i) < (priority_key(entry.priority), chosen);
                    let offers = catalog[&e.app_id].contains(&o.payment_method_id)
                        && !e.excluded_payment_methods.contains(&o.payment_method_id);
                    prop_assert!(!(before && offers));
                }
            }
            // Ordered by (priority, entry index).
            let keys: Vec<_> = options
                .iter()
                .map(|o| {
                    let i = rule.apps.iter().position(|e| e.app_id == o.app_id).unwrap();
                    (priority_key(o.priority), i)
                })
                .collect();
            prop_assert!(keys.windows(2).all(|w| w[0] <= w[1]));
        }

        #[test]
        fn excluding_more_methods_never_adds_one(rule in rule(), catalog in app_catalog(), which in any::<prop::sample::Index>(), method in prop::sample::select(P_METHODS.to_vec())) {
            prop_assume!(!rule.apps.is_empty());
            let mut narrower = rule.clone();
            let i = which.index(rule.apps.len());
            narrower.apps[i].excluded_payment_methods.push(method.to_string());
            let wide: Vec<String> = methods(&rule, &catalog).into_iter().map(|o| o.payment_method_id).collect();
            let narrow: Vec<String> = methods(&narrower, &catalog).into_iter().map(|o| o.payment_method_id).collect();
            prop_assert!(narrow.iter().all(|m| wide.contains(m)));
        }

        #[test]
        fn payout_never_offers_an_excluded_disabled_or_unfit_reward(
            refs in group_refs(),
            world in payout_world(),
            q in query(),
            mt in prop::sample::select(MatchType::ALL.to_vec()),
        ) {
            let rule = Rule { reward_groups: refs, ..Rule::default() };
            let offered = world.resolve(&rule, &q, mt);
            for (n, id) in offered.iter().enumerate() {
                prop_assert!(!offered[..n].contains(id));
                prop_assert!(rule.reward_groups.iter().all(|g| !g.exclusions.contains(id)));
                prop_assert!(rule.reward_groups.iter().any(|g| world.groups[&g.reward_group_id]
                    .iter()
                    .any(|m| &m.reward_id == id && m.enabled)));
                let terms = &world.rewards[id];
                prop_assert!(terms.active && terms.currency == q.currency && terms.countries.contains(&q.country));
                prop_assert!(fits_amount(terms, q.amount, mt));
            }
            // Exact never offers more than Max.
            let exact = world.resolve(&rule, &q, MatchType::Exact);
            let max = world.resolve(&rule, &q, MatchType::Max);
            prop_assert!(exact.iter().all(|id| max.contains(id)));
        }

        #[test]
        fn excluding_a_reward_never_adds_one(
            refs in group_refs(),
            world in payout_world(),
            q in query(),
            which in any::<prop::sample::Index>(),
            reward in prop::sample::select(P_REWARDS.to_vec()),
        ) {
            prop_assume!(!refs.is_empty());
            let rule = Rule { reward_groups: refs, ..Rule::default() };
            let mut narrower = rule.clone();
            let i = which.index(rule.reward_groups.len());
            narrower.reward_groups[i].exclusions.push(reward.to_string());
            let wide = world.resolve(&rule, &q, MatchType::Exact);
            let narrow = world.resolve(&narrower, &q, MatchType::Exact);
            prop_assert!(!narrow.iter().any(|id| id == reward));
            prop_assert!(narrow.iter().all(|id| wide.contains(id)));
        }

        #[test]
        fn whole_amount_rewards_never_fit_a_fraction(terms in reward_terms("r"), cents in 1i64..100, units in 0i64..300) {
            let mut terms = terms;
            terms.whole_amount_required = true;
            let amount = Decimal::new(units * 100 + cents, 2);
            for mt in MatchType::ALL {
                prop_assert!(!fits_amount(&terms, amount, *mt));
            }
        }
    }
}
