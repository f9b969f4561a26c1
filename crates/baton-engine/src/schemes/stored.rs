//! How a draft's rules are kept in `DraftRecord.rules`: Baton's own JSON, independent of the
//! wire format, so that the API can grow aliases without touching stored data.
//!
//! ```json
//! {"version":1,"rules":[{"priority":1,"currencies":["EUR"],"countries":[],"low":"1","high":"100",
//!   "apps":[{"appId":"SANDBOX_CARD","priority":1,"excluded":["PAYPAL"]}],
//!   "rewardGroups":[{"id":"…","exclusions":["…"]}]}]}
//! ```
//!
//! Decimals are kept as text (never floats). A later format bumps `version`; readers refuse
//! versions they do not know rather than guess.

use std::str::FromStr;

use anyhow::{anyhow, Context};
use baton_domain::{AppEntry, AppId, Country, Currency, RewardGroupRef, Rule};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The format written today.
pub const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredRules {
    version: u32,
    rules: Vec<StoredRule>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    priority: Option<i64>,
    #[serde(default)]
    currencies: Vec<String>,
    #[serde(default)]
    countries: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    low: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    high: Option<String>,
    #[serde(default)]
    apps: Vec<StoredApp>,
    #[serde(default)]
    reward_groups: Vec<StoredGroup>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredApp {
    app_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    priority: Option<i64>,
    #[serde(default)]
    excluded: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredGroup {
    id: String,
    #[serde(default)]
    exclusions: Vec<String>,
}

/// The rules as stored JSON.
pub fn encode(rules: &[Rule]) -> String {
    let stored = StoredRules {
        version: VERSION,
        rules: rules
            .iter()
            .map(|r| StoredRule {
                priority: r.priority,
                currencies: r.currencies.iter().map(|c| c.as_str().to_string()).collect(),
                countries: r.countries.iter().map(|c| c.as_str().to_string()).collect(),
                low: r.low_value_inclusive.map(|d| d.normalize().to_string()),
                high: r.high_value_inclusive.map(|d| d.normalize().to_string()),
                apps: r
                    .apps
                    .iter()
                    .map(|a| StoredApp {
                        app_id: a.app_id.as_str().to_string(),
                        priority: a.priority,
                        excluded: a.excluded_payment_methods.clone(),
                    })
                    .collect(),
                reward_groups: r
                    .reward_groups
                    .iter()
                    .map(|g| StoredGroup { id: g.reward_group_id.clone(), exclusions: g.exclusions.clone() })
                    .collect(),
            })
            .collect(),
    };
    serde_json::to_string(&stored).expect("stored rules serialise")
}

/// Reads stored rules back. Anything unreadable is a corrupt row (an internal fault).
pub fn decode(text: &str) -> anyhow::Result<Vec<Rule>> {
    let stored: StoredRules = serde_json::from_str(text).context("stored draft rules are not readable")?;
    if stored.version != VERSION {
        return Err(anyhow!("stored draft rules have unknown version {}", stored.version));
    }
    stored
        .rules
        .into_iter()
        .map(|r| {
            let decimal = |s: Option<String>| -> anyhow::Result<Option<Decimal>> {
                s.map(|s| Decimal::from_str(&s).with_context(|| format!("stored bound {s:?}"))).transpose()
            };
            Ok(Rule {
                priority: r.priority,
                currencies: r
                    .currencies
                    .iter()
                    .map(|c| c.parse::<Currency>().map_err(|()| anyhow!("stored currency {c:?}")))
                    .collect::<anyhow::Result<_>>()?,
                countries: r
                    .countries
                    .iter()
                    .map(|c| c.parse::<Country>().map_err(|()| anyhow!("stored country {c:?}")))
                    .collect::<anyhow::Result<_>>()?,
                low_value_inclusive: decimal(r.low)?,
                high_value_inclusive: decimal(r.high)?,
                apps: r
                    .apps
                    .into_iter()
                    .map(|a| {
                        Ok(AppEntry {
                            app_id: AppId::parse(&a.app_id).map_err(|_| anyhow!("stored app id {:?}", a.app_id))?,
                            priority: a.priority,
                            excluded_payment_methods: a.excluded,
                        })
                    })
                    .collect::<anyhow::Result<_>>()?,
                reward_groups: r
                    .reward_groups
                    .into_iter()
                    .map(|g| RewardGroupRef { reward_group_id: g.id, exclusions: g.exclusions })
                    .collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_round_trip_in_order() {
        let rules = vec![
            Rule {
                priority: Some(2),
                currencies: vec![Currency::EUR, Currency::GBP],
                countries: vec![Country::GB],
                low_value_inclusive: Some(Decimal::new(100, 2)),
                high_value_inclusive: Some(Decimal::new(10050, 2)),
                apps: vec![AppEntry {
                    app_id: AppId::parse("SANDBOX_CARD").unwrap(),
                    priority: Some(1),
                    excluded_payment_methods: vec!["PAYPAL".into()],
                }],
                reward_groups: vec![RewardGroupRef { reward_group_id: "g".into(), exclusions: vec!["r".into()] }],
            },
            Rule { apps: vec![AppEntry::new(AppId::parse("SANDBOX_BANK").unwrap())], ..Rule::default() },
        ];
        let text = encode(&rules);
        assert!(text.starts_with(r#"{"version":1,"rules":[{"priority":2,"#), "{text}");
        assert!(text.contains(r#""low":"1","high":"100.5""#), "{text}");
        let back = decode(&text).unwrap();
        assert_eq!(back[0].low_value_inclusive, Some(Decimal::ONE));
        assert_eq!(back[0].high_value_inclusive, Some(Decimal::new(1005, 1)));
        assert_eq!(back[1], rules[1]);
        assert_eq!(back[0].apps, rules[0].apps);
        assert_eq!(back[0].reward_groups, rules[0].reward_groups);
    }

    #[test]
    fn unknown_versions_and_garbage_are_refused() {
        assert!(decode(r#"{"version":2,"rules":[]}"#).is_err());
        assert!(decode("[]").is_err());
        assert!(decode(r#"{"version":1,"rules":[{"currencies":["XXX"]}]}"#).is_err());
    }
}
