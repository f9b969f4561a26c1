//! A draft as a client (API or portal) sends it, and its validation: parsing the words and
//! numbers, checking what the rules reference against the tenant's world (installed apps,
//! reward groups), and the structural checks of `baton_domain::validate_rules`. Every problem
//! is reported, each with the field it is about (`rules[0].currencies[1]`).

use std::collections::{HashMap, HashSet};

use baton_domain::{
    validate_rules, AppEntry, AppId, AppType, Country, Currency, DecimalInput, Problem, RewardGroupRef, Rule,
    SchemeKind,
};
use baton_store::RewardGroupRecord;
use rust_decimal::Decimal;

/// Longest draft name and code, in characters.
pub const MAX_DRAFT_NAME: usize = 100;
pub const MAX_DRAFT_CODE: usize = 100;

/// A draft to save: `{name*, code?, rules*}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DraftInput {
    pub name: Option<String>,
    /// `None` or blank: no code.
    pub code: Option<String>,
    pub rules: Vec<RuleInput>,
}

/// One rule as sent. Words are parsed here (any case, `UK` = `GB`); blank list entries are
/// dropped (SPEC §1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleInput {
    pub priority: Option<i64>,
    pub currencies: Vec<String>,
    pub countries: Vec<String>,
    /// Decimal text as sent (a JSON number's text, or a numeric string); `None` or blank =
    /// unbounded.
    pub low_value_inclusive: Option<String>,
    pub high_value_inclusive: Option<String>,
    pub apps: Vec<AppEntryInput>,
    pub reward_groups: Vec<RewardGroupInput>,
}

/// One app entry (`apps[]` / `configurations[]`). `availablePaymentMethods` is the server's
/// to fill and is not input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppEntryInput {
    pub app_id: Option<String>,
    pub priority: Option<i64>,
    pub excluded_payment_methods: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RewardGroupInput {
    pub reward_group_id: Option<String>,
    pub exclusions: Vec<String>,
}

impl From<&Rule> for RuleInput {
    /// A saved rule in input form, to validate it again (at publication).
    fn from(r: &Rule) -> Self {
        Self {
            priority: r.priority,
            currencies: r.currencies.iter().map(|c| c.as_str().to_string()).collect(),
            countries: r.countries.iter().map(|c| c.as_str().to_string()).collect(),
            low_value_inclusive: r.low_value_inclusive.map(|d| d.to_string()),
            high_value_inclusive: r.high_value_inclusive.map(|d| d.to_string()),
            apps: r
                .apps
                .iter()
                .map(|a| AppEntryInput {
                    app_id: Some(a.app_id.as_str().to_string()),
                    priority: a.priority,
                    excluded_payment_methods: a.excluded_payment_methods.clone(),
                })
                .collect(),
            reward_groups: r
                .reward_groups
                .iter()
                .map(|g| RewardGroupInput {
                    reward_group_id: Some(g.reward_group_id.clone()),
                    exclusions: g.exclusions.clone(),
                })
                .collect(),
        }
    }
}

/// What rules are checked against: the tenant's installed apps and the reward groups the
/// rules name (keyed by lower-case id), loaded beforehand.
#[derive(Debug, Default)]
pub(crate) struct World {
    pub installed: HashSet<String>,
    pub groups: HashMap<String, RewardGroupRecord>,
}

/// How reward group ids are compared: Baton issues GUIDs in lower case.
pub(crate) fn group_key(id: &str) -> String {
    id.trim().to_ascii_lowercase()
}

/// The reward group ids the rules name, normalised, de-duplicated, in first-seen order.
pub(crate) fn referenced_groups(rules: &[RuleInput]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for id in rules.iter().flat_map(|r| &r.reward_groups).filter_map(|g| g.reward_group_id.as_deref()) {
        let key = group_key(id);
        if !key.is_empty() && !out.contains(&key) {
            out.push(key);
        }
    }
    out
}

/// A draft that passed every check, ready to store.
#[derive(Debug, Clone)]
pub(crate) struct ValidDraft {
    pub name: String,
    pub name_key: String,
    pub code: Option<String>,
    pub rules: Vec<Rule>,
    /// What the rules reference, for the store's reference records.
    pub app_ids: Vec<String>,
    pub reward_group_ids: Vec<String>,
}

fn bounded_text(
    value: Option<&str>,
    field: &'static str,
    limit: usize,
    required: bool,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    let v = value.map(str::trim).unwrap_or("");
    if v.is_empty() {
        if required {
            problems.push(Problem::invalid_field("FIELD_REQUIRED", field, "{field} is required."));
        }
        return None;
    }
    if v.chars().count() > limit || v.chars().any(char::is_control) {
        problems.push(
            Problem::invalid_field("FIELD_TOO_LONG", field, "{field} must be at most {limit} printable characters.")
                .detail("limit", limit.to_string()),
        );
        return None;
    }
    Some(v.to_string())
}

/// Checks a whole draft: name, code and rules.
pub(crate) fn check_draft(kind: SchemeKind, input: &DraftInput, world: &World) -> Result<ValidDraft, Vec<Problem>> {
    let mut problems = Vec::new();
    let name = bounded_text(input.name.as_deref(), "name", MAX_DRAFT_NAME, true, &mut problems);
    let code = bounded_text(input.code.as_deref(), "code", MAX_DRAFT_CODE, false, &mut problems);
    let rules = check_rules(kind, &input.rules, world, &mut problems);
    match name {
        Some(name) if problems.is_empty() => {
            let (app_ids, reward_group_ids) = references(&rules);
            Ok(ValidDraft { name_key: name.to_lowercase(), name, code, rules, app_ids, reward_group_ids })
        }
        _ => Err(problems),
    }
}

/// The distinct app ids and reward group ids of the rules.
pub(crate) fn references(rules: &[Rule]) -> (Vec<String>, Vec<String>) {
    let mut apps: Vec<String> = Vec::new();
    let mut groups: Vec<String> = Vec::new();
    for rule in rules {
        for a in &rule.apps {
            if !apps.iter().any(|x| x == a.app_id.as_str()) {
                apps.push(a.app_id.as_str().to_string());
            }
        }
        for g in &rule.reward_groups {
            if !groups.contains(&g.reward_group_id) {
                groups.push(g.reward_group_id.clone());
            }
        }
    }
    (apps, groups)
}

/// Parses a decimal as clients send it (plain decimal text, no exponent).
pub(crate) fn parse_decimal(text: &str) -> Option<Decimal> {
    serde_json::from_value::<DecimalInput>(serde_json::Value::String(text.trim().to_string())).ok().map(|d| d.0)
}

/// Whether a decimal has more fraction digits than any supported currency (2).
pub(crate) fn too_precise(d: Decimal) -> bool {
    d.normalize().scale() > 2
}

fn bound(text: Option<&str>, field: String, problems: &mut Vec<Problem>) -> Option<Decimal> {
    let text = text.map(str::trim).filter(|t| !t.is_empty())?;
    match parse_decimal(text) {
        None => {
            problems.push(
                Problem::invalid_field("INVALID_VALUE_RANGE", field, "{field} must be a decimal number or null.")
                    .detail("value", text.chars().take(32).collect::<String>()),
            );
            None
        }
        Some(d) if too_precise(d) => {
            problems.push(
                Problem::invalid_field(
                    "INVALID_AMOUNT_PRECISION",
                    field,
                    "{field} has more decimal places than the currency allows.",
                )
                .detail("limit", "2"),
            );
            None
        }
        Some(d) => Some(d),
    }
}

/// Checks one app entry of rule `i` (entry `j`). The entry is returned even when it has
/// problems (under a placeholder id if it has no usable one), so that the structural checks
/// see the rule as sent, with the same indices; it is never stored then.
fn check_app_entry(
    kind: SchemeKind,
    i: usize,
    j: usize,
    entry: &AppEntryInput,
    world: &World,
) -> (AppEntry, Vec<Problem>) {
    let direction = kind.direction();
    let field = format!("rules[{i}].apps[{j}].appId");
    let placeholder = || AppEntry::new(AppId::parse(&format!("_INVALID_ENTRY_{j}")).expect("placeholder ids parse"));
    let Some(raw) = entry.app_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) else {
        return (placeholder(), vec![Problem::invalid_field("FIELD_REQUIRED", field, "{field} is required.")]);
    };
    let not_installed = || {
        Problem::invalid_field("APP_NOT_INSTALLED", field.clone(), "{field}: app {appId} is not installed.")
            .detail("appId", raw.chars().take(64).collect::<String>())
    };
    let Ok(app_id) = AppId::parse(raw) else {
        return (placeholder(), vec![not_installed()]);
    };
    let Some(app) = baton_connectors::find(&app_id).filter(|_| world.installed.contains(app_id.as_str())) else {
        return (AppEntry::new(app_id), vec![not_installed()]);
    };
    let fits = match kind {
        SchemeKind::Collect => app.app_type == AppType::Payment && app.supports(direction),
        SchemeKind::Payout => app.supports(direction),
    };
    if !fits {
        let problem = Problem::invalid_field(
            "APP_DIRECTION_NOT_SUPPORTED",
            field,
            "{field}: app {appId} cannot be used in a {kind} scheme.",
        )
        .detail("appId", app_id.as_str())
        .detail("kind", kind.as_str());
        return (AppEntry::new(app_id), vec![problem]);
    }
    let mut problems = Vec::new();
    let mut excluded: Vec<String> = Vec::new();
    for (k, m) in entry.excluded_payment_methods.iter().enumerate() {
        if m.trim().is_empty() {
            continue;
        }
        // Only the methods the entry could offer (the app's methods for this direction).
        match app.method(m).filter(|method| method.supports(direction)) {
            Some(method) => {
                if !excluded.iter().any(|x| x == method.id) {
                    excluded.push(method.id.to_string());
                }
            }
            None => problems.push(
                Problem::invalid_field(
                    "INVALID_PAYMENT_METHOD",
                    format!("rules[{i}].apps[{j}].excludedPaymentMethods[{k}]"),
                    "{field}: {value} is not a payment method of app {appId}.",
                )
                .detail("value", m.chars().take(32).collect::<String>())
                .detail("appId", app_id.as_str()),
            ),
        }
    }
    (AppEntry { app_id, priority: entry.priority, excluded_payment_methods: excluded }, problems)
}

/// Parses and checks the rules; problems are appended, and the rules returned hold
/// everything that parsed (they are only stored when there are no problems).
pub(crate) fn check_rules(
    kind: SchemeKind,
    input: &[RuleInput],
    world: &World,
    problems: &mut Vec<Problem>,
) -> Vec<Rule> {
    let mut rules = Vec::with_capacity(input.len());
    for (i, r) in input.iter().enumerate() {
        let mut rule = Rule { priority: r.priority, ..Rule::default() };

        for (j, c) in r.currencies.iter().enumerate() {
            if c.trim().is_empty() {
                continue;
            }
            match Currency::parse(c, &format!("rules[{i}].currencies[{j}]")) {
                Ok(c) if !rule.currencies.contains(&c) => rule.currencies.push(c),
                Ok(_) => {}
                Err(p) => problems.push(p),
            }
        }
        for (j, c) in r.countries.iter().enumerate() {
            if c.trim().is_empty() {
                continue;
            }
            match Country::parse(c, &format!("rules[{i}].countries[{j}]")) {
                Ok(c) if !rule.countries.contains(&c) => rule.countries.push(c),
                Ok(_) => {}
                Err(p) => problems.push(p),
            }
        }
        rule.low_value_inclusive =
            bound(r.low_value_inclusive.as_deref(), format!("rules[{i}].lowValueInclusive"), problems);
        rule.high_value_inclusive =
            bound(r.high_value_inclusive.as_deref(), format!("rules[{i}].highValueInclusive"), problems);

        for (j, entry) in r.apps.iter().enumerate() {
            let (checked, entry_problems) = check_app_entry(kind, i, j, entry, world);
            problems.extend(entry_problems);
            rule.apps.push(checked);
        }

        for (j, group) in r.reward_groups.iter().enumerate() {
            let field = format!("rules[{i}].rewardGroups[{j}].rewardGroupId");
            let Some(raw) = group.reward_group_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) else {
                problems.push(Problem::invalid_field("FIELD_REQUIRED", field, "{field} is required."));
                rule.reward_groups.push(RewardGroupRef { reward_group_id: format!(" {j}"), exclusions: Vec::new() });
                continue;
            };
            let key = group_key(raw);
            let record = world.groups.get(&key);
            if kind == SchemeKind::Collect || record.is_none() {
                if kind == SchemeKind::Payout {
                    problems.push(
                        Problem::invalid_field(
                            "REWARD_GROUP_NOT_FOUND",
                            field,
                            "{field}: no reward group {rewardGroupId}.",
                        )
                        .detail("rewardGroupId", raw.chars().take(64).collect::<String>()),
                    );
                }
                // Collect rules may hold no groups at all: `validate_rules` says so.
                rule.reward_groups.push(RewardGroupRef { reward_group_id: key, exclusions: Vec::new() });
                continue;
            }
            let record = record.expect("checked above");
            let mut exclusions: Vec<String> = Vec::new();
            for (k, x) in group.exclusions.iter().enumerate() {
                if x.trim().is_empty() {
                    continue;
                }
                match record.members.iter().find(|m| m.reward_id.eq_ignore_ascii_case(x.trim())) {
                    Some(member) => {
                        if !exclusions.contains(&member.reward_id) {
                            exclusions.push(member.reward_id.clone());
                        }
                    }
                    None => problems.push(
                        Problem::invalid_field(
                            "EXCLUSION_NOT_IN_REWARD_GROUP",
                            format!("rules[{i}].rewardGroups[{j}].exclusions[{k}]"),
                            "{field}: reward {rewardId} is not in reward group {rewardGroupId}.",
                        )
                        .detail("rewardId", x.chars().take(64).collect::<String>())
                        .detail("rewardGroupId", record.reward_group_id.clone()),
                    ),
                }
            }
            rule.reward_groups.push(RewardGroupRef { reward_group_id: record.reward_group_id.clone(), exclusions });
        }
        rules.push(rule);
    }
    if let Err(structural) = validate_rules(kind, &rules) {
        problems.extend(structural);
    }
    rules
}

#[cfg(test)]
mod tests {
    use baton_store::RewardGroupMember;

    use super::*;

    fn world() -> World {
        let group = RewardGroupRecord {
            reward_group_id: "g1".into(),
            tenant_id: "t".into(),
            name: "G".into(),
            name_key: "g".into(),
            members: vec![RewardGroupMember { reward_id: "abc".into(), enabled: true }],
            created_at: 0,
            updated_at: 0,
        };
        World {
            installed: ["SANDBOX_CARD", "SANDBOX_REWARDS", "SANDBOX_BANK"].iter().map(|s| s.to_string()).collect(),
            groups: HashMap::from([("g1".to_string(), group)]),
        }
    }

    fn fields(problems: &[Problem]) -> Vec<(String, String)> {
        problems
            .iter()
            .map(|p| {
                let f = p.details.iter().find(|(k, _)| k == "field").map(|(_, v)| v.clone()).unwrap_or_default();
                (p.code.to_string(), f)
            })
            .collect()
    }

    fn entry(id: &str, excluded: &[&str]) -> AppEntryInput {
        AppEntryInput {
            app_id: Some(id.into()),
            priority: None,
            excluded_payment_methods: excluded.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let input = DraftInput {
            name: Some("  ".into()),
            code: None,
            rules: vec![
                RuleInput {
                    currencies: vec!["eur".into(), "".into(), "XXX".into()],
                    countries: vec!["uk".into(), "ZZ".into()],
                    low_value_inclusive: Some("abc".into()),
                    high_value_inclusive: Some("1.005".into()),
                    apps: vec![entry("sandbox-card", &["paypal", "NOPE"]), entry("UNKNOWN_APP", &[])],
                    ..RuleInput::default()
                },
                RuleInput { apps: vec![entry("SANDBOX_REWARDS", &[])], ..RuleInput::default() },
                RuleInput { apps: vec![entry("", &[]), entry("SANDBOX_CARD", &[])], ..RuleInput::default() },
                RuleInput { currencies: vec!["GBP".into()], ..RuleInput::default() },
            ],
        };
        let problems = check_draft(SchemeKind::Collect, &input, &world()).unwrap_err();
        let expected: Vec<(String, String)> = [
            ("FIELD_REQUIRED", "name"),
            ("INVALID_CURRENCY", "rules[0].currencies[2]"),
            ("INVALID_COUNTRY", "rules[0].countries[1]"),
            ("INVALID_VALUE_RANGE", "rules[0].lowValueInclusive"),
            ("INVALID_AMOUNT_PRECISION", "rules[0].highValueInclusive"),
            ("INVALID_PAYMENT_METHOD", "rules[0].apps[0].excludedPaymentMethods[1]"),
            ("APP_NOT_INSTALLED", "rules[0].apps[1].appId"),
            ("APP_DIRECTION_NOT_SUPPORTED", "rules[1].apps[0].appId"),
            ("FIELD_REQUIRED", "rules[2].apps[0].appId"),
            ("RULE_REQUIRES_APP", "rules[3].apps"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(fields(&problems), expected);
    }

    #[test]
    fn a_valid_payout_draft_is_normalised() {
        let input = DraftInput {
            name: Some(" Payout ".into()),
            code: Some("".into()),
            rules: vec![RuleInput {
                currencies: vec!["eur".into(), "EUR".into()],
                countries: vec!["UK".into()],
                low_value_inclusive: Some("1".into()),
                apps: vec![entry("sandbox_rewards", &["gift-card", ""])],
                reward_groups: vec![RewardGroupInput {
                    reward_group_id: Some("G1".into()),
                    exclusions: vec!["ABC".into(), "".into()],
                }],
                ..RuleInput::default()
            }],
        };
        let valid = check_draft(SchemeKind::Payout, &input, &world()).unwrap();
        assert_eq!((valid.name.as_str(), valid.name_key.as_str(), valid.code), ("Payout", "payout", None));
        let rule = &valid.rules[0];
        assert_eq!(rule.currencies, vec![Currency::EUR]);
        assert_eq!(rule.countries, vec![Country::GB]);
        assert_eq!(rule.apps[0].excluded_payment_methods, vec!["GIFT_CARD".to_string()]);
        assert_eq!(rule.reward_groups[0].reward_group_id, "g1");
        assert_eq!(rule.reward_groups[0].exclusions, vec!["abc".to_string()]);
        assert_eq!(valid.app_ids, vec!["SANDBOX_REWARDS".to_string()]);
        assert_eq!(valid.reward_group_ids, vec!["g1".to_string()]);

        let missing = DraftInput {
            name: Some("x".into()),
            rules: vec![RuleInput {
                reward_groups: vec![
                    RewardGroupInput { reward_group_id: Some("nope".into()), exclusions: vec![] },
                    RewardGroupInput { reward_group_id: Some("g1".into()), exclusions: vec!["zzz".into()] },
                ],
                ..RuleInput::default()
            }],
            ..DraftInput::default()
        };
        let problems = check_draft(SchemeKind::Payout, &missing, &world()).unwrap_err();
        assert_eq!(
            fields(&problems),
            vec![
                ("REWARD_GROUP_NOT_FOUND".to_string(), "rules[0].rewardGroups[0].rewardGroupId".to_string()),
                ("EXCLUSION_NOT_IN_REWARD_GROUP".to_string(), "rules[0].rewardGroups[1].exclusions[0]".to_string()),
            ]
        );
    }
}
