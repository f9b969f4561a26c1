//! Evaluating a draft's rules (SPEC §4.6 "Matching"): the options a scheme offers for an
//! amount, currency and country, and the side-by-side simulation of a draft against the
//! published draft. The matching itself is `baton_domain::schemes`; this module feeds it the
//! apps' payment methods, the catalogue's reward terms and the tenant's reward groups.

use std::collections::HashMap;
use std::sync::OnceLock;

use baton_connectors::{sandbox_rewards, CatalogReward};
use baton_domain::{
    first_match, resolve_collect, resolve_payout, AppId, Country, Currency, Direction, GroupMember, MatchQuery,
    MatchType, Problem, RewardTerms, Rule, SchemeKind,
};
use rust_decimal::Decimal;

use super::input::{group_key, parse_decimal, too_precise};

/// The most cases one simulation may hold.
pub const MAX_SIMULATION_CASES: usize = 500;

/// An options request's parameters (or one simulation case), as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptionsQuery {
    /// Decimal text (a number's text or a numeric string).
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub country: Option<String>,
    /// `Exact` (default) or `Max`, any case; payout only (ignored for collect).
    pub match_type: Option<String>,
}

/// One payment method offered, and the app that routes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentMethodOption {
    pub app_id: String,
    pub payment_method_id: String,
    /// The method's display name (`Visa`).
    pub name: String,
    /// The priority of the app entry the method comes from.
    pub priority: Option<i64>,
}

/// What a draft offers for one query: the index of the matched rule (`None`: no rule
/// matched, nothing is offered), its payment methods and (payout) its rewards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub rule_index: Option<usize>,
    pub payment_methods: Vec<PaymentMethodOption>,
    /// Payout only, in offer order.
    pub rewards: Vec<&'static CatalogReward>,
}

impl Outcome {
    fn none() -> Self {
        Self { rule_index: None, payment_methods: Vec::new(), rewards: Vec::new() }
    }
}

/// The options of a scheme's published draft for one query.
#[derive(Debug, Clone)]
pub struct SchemeOptions {
    pub kind: SchemeKind,
    pub scheme_id: String,
    /// The published draft that was evaluated.
    pub draft_id: String,
    pub query: MatchQuery,
    /// Payout only.
    pub match_type: Option<MatchType>,
    pub outcome: Outcome,
}

/// One simulated case: the draft's outcome and the published draft's side by side.
#[derive(Debug, Clone)]
pub struct SimulatedCase {
    pub query: MatchQuery,
    /// Payout only.
    pub match_type: Option<MatchType>,
    pub draft: Outcome,
    /// `None` when the scheme has no published draft yet.
    pub published: Option<Outcome>,
    /// Whether publishing the draft would change this case's outcome (the matched rule or
    /// what is offered). Always true while nothing is published: the options go from
    /// `404 NO_PUBLISHED_DRAFT` to the draft's outcome.
    pub changed: bool,
}

#[derive(Debug, Clone)]
pub struct Simulation {
    pub kind: SchemeKind,
    pub scheme_id: String,
    pub draft_id: String,
    pub published_draft_id: Option<String>,
    pub cases: Vec<SimulatedCase>,
}

impl Simulation {
    pub fn changed_count(&self) -> usize {
        self.cases.iter().filter(|c| c.changed).count()
    }
}

/// The payment methods of each registered app for each direction, by app id.
fn method_ids(app_id: &AppId, direction: Direction) -> Option<&'static [String]> {
    static METHODS: OnceLock<HashMap<(String, Direction), Vec<String>>> = OnceLock::new();
    let map = METHODS.get_or_init(|| {
        let mut map = HashMap::new();
        for app in baton_connectors::registry() {
            for d in Direction::ALL {
                let ids = app.methods_for(*d).iter().map(|m| m.id.to_string()).collect();
                map.insert((app.app_id.to_string(), *d), ids);
            }
        }
        map
    });
    map.get(&(app_id.as_str().to_string(), direction)).map(Vec::as_slice)
}

/// The catalogue's rewards with their terms, by lower-case reward id.
fn rewards() -> &'static HashMap<String, (RewardTerms, &'static CatalogReward)> {
    static REWARDS: OnceLock<HashMap<String, (RewardTerms, &'static CatalogReward)>> = OnceLock::new();
    REWARDS.get_or_init(|| {
        sandbox_rewards::catalog().iter().map(|r| (r.reward_id.to_ascii_lowercase(), (r.terms(), r))).collect()
    })
}

fn reward(id: &str) -> Option<&'static (RewardTerms, &'static CatalogReward)> {
    let map = rewards();
    map.get(id).or_else(|| map.get(&id.trim().to_ascii_lowercase()))
}

/// The payment methods a rule offers for `direction`, with their names.
fn payment_methods(rule: &Rule, direction: Direction) -> Vec<PaymentMethodOption> {
    resolve_collect(rule, |id| method_ids(id, direction))
        .into_iter()
        .map(|o| {
            let name = baton_connectors::find(&o.app_id)
                .and_then(|a| a.method(&o.payment_method_id))
                .map_or_else(|| o.payment_method_id.clone(), |m| m.name.to_string());
            PaymentMethodOption {
                app_id: o.app_id.as_str().to_string(),
                payment_method_id: o.payment_method_id,
                name,
                priority: o.priority,
            }
        })
        .collect()
}

/// Reward groups' members by lower-case group id.
pub(crate) type GroupMembers = HashMap<String, Vec<GroupMember>>;

/// Evaluates rules for one query: first matching rule in saved order, then its resolution.
pub(crate) fn evaluate(
    kind: SchemeKind,
    rules: &[Rule],
    q: &MatchQuery,
    match_type: MatchType,
    groups: &GroupMembers,
) -> Outcome {
    let Some(index) = first_match(rules, q) else { return Outcome::none() };
    let rule = &rules[index];
    let payment_methods = payment_methods(rule, kind.direction());
    let rewards = match kind {
        SchemeKind::Collect => Vec::new(),
        SchemeKind::Payout => resolve_payout(
            rule,
            q,
            match_type,
            |g| groups.get(&group_key(g)).map(Vec::as_slice),
            |id| reward(id).map(|(terms, _)| terms),
        )
        .iter()
        .filter_map(|id| reward(id).map(|(_, r)| *r))
        .collect(),
    };
    Outcome { rule_index: Some(index), payment_methods, rewards }
}

/// Parses an options query (or a simulation case, with `prefix` = `cases[3].`), reporting
/// every bad parameter.
pub(crate) fn parse_query(
    kind: SchemeKind,
    prefix: &str,
    input: &OptionsQuery,
) -> Result<(MatchQuery, Option<MatchType>), Vec<Problem>> {
    let mut problems = Vec::new();
    let field = |name: &str| format!("{prefix}{name}");
    let text = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);

    let amount = match text(&input.amount) {
        None => {
            problems.push(Problem::invalid_field("INVALID_AMOUNT", field("amount"), "{field} is required."));
            None
        }
        Some(raw) => match parse_decimal(&raw) {
            None => {
                problems.push(
                    Problem::invalid_field("INVALID_AMOUNT", field("amount"), "{field} must be a decimal number.")
                        .detail("value", raw.chars().take(32).collect::<String>()),
                );
                None
            }
            Some(d) if d <= Decimal::ZERO => {
                problems.push(
                    Problem::invalid_field("INVALID_AMOUNT", field("amount"), "{field} must be greater than {limit}.")
                        .detail("limit", "0"),
                );
                None
            }
            Some(d) if too_precise(d) => {
                problems.push(
                    Problem::invalid_field(
                        "INVALID_AMOUNT_PRECISION",
                        field("amount"),
                        "{field} has more decimal places than the currency allows.",
                    )
                    .detail("limit", "2"),
                );
                None
            }
            Some(d) => Some(d),
        },
    };
    let currency = match text(&input.currency) {
        None => {
            problems.push(Problem::invalid_field("INVALID_CURRENCY", field("currency"), "{field} is required."));
            None
        }
        Some(raw) => Currency::parse(&raw, &field("currency")).map_err(|p| problems.push(p)).ok(),
    };
    let country = match text(&input.country) {
        None => {
            problems.push(Problem::invalid_field("INVALID_COUNTRY", field("country"), "{field} is required."));
            None
        }
        Some(raw) => Country::parse(&raw, &field("country")).map_err(|p| problems.push(p)).ok(),
    };
    let match_type = match kind {
        SchemeKind::Collect => None,
        SchemeKind::Payout => match MatchType::parse_opt(input.match_type.as_deref()) {
            Ok(m) => Some(m),
            Err(_) => {
                problems.push(
                    Problem::invalid_field("INVALID_MATCH_TYPE", field("matchType"), "{field} must be Exact or Max.")
                        .detail(
                            "value",
                            input.match_type.as_deref().unwrap_or("").chars().take(32).collect::<String>(),
                        ),
                );
                None
            }
        },
    };
    match (amount, currency, country) {
        (Some(amount), Some(currency), Some(country)) if problems.is_empty() => {
            Ok((MatchQuery { amount, currency, country }, match_type))
        }
        _ => Err(problems),
    }
}

/// Parses a simulation's cases (1 to [`MAX_SIMULATION_CASES`]).
pub(crate) fn parse_cases(
    kind: SchemeKind,
    cases: &[OptionsQuery],
) -> Result<Vec<(MatchQuery, Option<MatchType>)>, Vec<Problem>> {
    if cases.is_empty() {
        return Err(vec![Problem::invalid_field("CASES_REQUIRED", "cases", "{field} must hold at least one case.")]);
    }
    if cases.len() > MAX_SIMULATION_CASES {
        return Err(vec![Problem::invalid_field("TOO_MANY_CASES", "cases", "{field} may hold at most {limit} cases.")
            .detail("limit", MAX_SIMULATION_CASES.to_string())]);
    }
    let mut problems = Vec::new();
    let mut parsed = Vec::with_capacity(cases.len());
    for (i, case) in cases.iter().enumerate() {
        match parse_query(kind, &format!("cases[{i}]."), case) {
            Ok(p) => parsed.push(p),
            Err(p) => problems.extend(p),
        }
    }
    if problems.is_empty() {
        Ok(parsed)
    } else {
        Err(problems)
    }
}

/// Runs every case against the draft's rules and the published draft's.
pub(crate) fn simulate_cases(
    kind: SchemeKind,
    draft: &[Rule],
    published: Option<&[Rule]>,
    cases: Vec<(MatchQuery, Option<MatchType>)>,
    groups: &GroupMembers,
) -> Vec<SimulatedCase> {
    cases
        .into_iter()
        .map(|(query, match_type)| {
            let mt = match_type.unwrap_or_default();
            let draft = evaluate(kind, draft, &query, mt, groups);
            let published = published.map(|rules| evaluate(kind, rules, &query, mt, groups));
            let changed = published.as_ref() != Some(&draft);
            SimulatedCase { query, match_type, draft, published, changed }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use baton_domain::{AppEntry, RewardGroupRef};

    use super::*;

    fn q(amount: &str, currency: Currency, country: Country) -> MatchQuery {
        MatchQuery { amount: amount.parse().unwrap(), currency, country }
    }

    fn card(excluded: &[&str]) -> AppEntry {
        AppEntry {
            app_id: AppId::parse("SANDBOX_CARD").unwrap(),
            priority: Some(1),
            excluded_payment_methods: excluded.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn collect_options_name_their_methods() {
        let rules = vec![Rule { currencies: vec![Currency::EUR], apps: vec![card(&["PAYPAL"])], ..Rule::default() }];
        let out = evaluate(SchemeKind::Collect, &rules, &q("10", Currency::EUR, Country::DE), MatchType::Exact, &{
            GroupMembers::new()
        });
        assert_eq!(out.rule_index, Some(0));
        let ids: Vec<&str> = out.payment_methods.iter().map(|m| m.payment_method_id.as_str()).collect();
        assert_eq!(ids, ["VISA", "MASTERCARD", "AMERICAN-EXPRESS", "DISCOVER", "MAESTRO"]);
        assert_eq!(out.payment_methods[2].name, "American Express");
        let none = evaluate(SchemeKind::Collect, &rules, &q("10", Currency::GBP, Country::DE), MatchType::Exact, &{
            GroupMembers::new()
        });
        assert_eq!(none, Outcome::none());
    }

    #[test]
    fn payout_rewards_come_from_groups_and_the_catalogue() {
        let starbucks_10 = "0f3d9111e2e4a87e1b20f8a71aeb8124381a208508dad99a96106550180e5a77";
        let amazon_de = "b1c0b8432a425a4e16ca521aad11890fdcdfd10e8f2efd60fcde2c83a5320e1b";
        let groups = GroupMembers::from([(
            "g".to_string(),
            vec![
                GroupMember { reward_id: amazon_de.to_uppercase(), enabled: true },
                GroupMember { reward_id: starbucks_10.into(), enabled: true },
            ],
        )]);
        let rules = vec![Rule {
            reward_groups: vec![RewardGroupRef { reward_group_id: "G".into(), exclusions: vec![] }],
            ..Rule::default()
        }];
        let ids = |amount: &str, mt: MatchType| -> Vec<String> {
            evaluate(SchemeKind::Payout, &rules, &q(amount, Currency::EUR, Country::DE), mt, &groups)
                .rewards
                .iter()
                .map(|r| r.reward_id.clone())
                .collect()
        };
        assert_eq!(ids("10", MatchType::Exact), [amazon_de, starbucks_10]);
        assert_eq!(ids("12", MatchType::Exact), [amazon_de]);
        assert_eq!(ids("12", MatchType::Max), [amazon_de, starbucks_10]);
    }

    #[test]
    fn queries_report_every_bad_parameter() {
        let bad = OptionsQuery {
            amount: Some("-1".into()),
            currency: Some("XXX".into()),
            country: None,
            match_type: Some("nearest".into()),
        };
        let problems = parse_query(SchemeKind::Payout, "cases[2].", &bad).unwrap_err();
        let codes: Vec<(&str, &str)> = problems
            .iter()
            .map(|p| (p.code.as_ref(), p.details.iter().find(|(k, _)| k == "field").unwrap().1.as_str()))
            .collect();
        assert_eq!(
            codes,
            [
                ("INVALID_AMOUNT", "cases[2].amount"),
                ("INVALID_CURRENCY", "cases[2].currency"),
                ("INVALID_COUNTRY", "cases[2].country"),
                ("INVALID_MATCH_TYPE", "cases[2].matchType"),
            ]
        );
        let good = OptionsQuery {
            amount: Some("10.5".into()),
            currency: Some("eur".into()),
            country: Some("uk".into()),
            match_type: Some("max".into()),
        };
        let (query, mt) = parse_query(SchemeKind::Payout, "", &good).unwrap();
        assert_eq!((query.currency, query.country, mt), (Currency::EUR, Country::GB, Some(MatchType::Max)));
        assert_eq!(parse_query(SchemeKind::Collect, "", &good).unwrap().1, None);
        for amount in ["0", "abc", "1.001", ""] {
            let p = parse_query(SchemeKind::Collect, "", &OptionsQuery { amount: Some(amount.into()), ..good.clone() })
                .unwrap_err();
            assert!(p[0].code.starts_with("INVALID_AMOUNT"), "{amount}: {p:?}");
        }
    }
}
