//! Registry, descriptor, sandbox configuration and catalogue tests.

use std::collections::HashSet;
use std::str::FromStr;

use baton_domain::{
    fits_amount, AppId, AppType, Country, Currency, Direction, MatchType, ProblemKind, TransactionType, ValueType,
};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::*;

fn codes(problems: &[baton_domain::Problem]) -> Vec<(String, String)> {
    problems
        .iter()
        .map(|p| {
            let field = p.details.iter().find(|(k, _)| k == "field").map(|(_, v)| v.clone()).unwrap_or_default();
            (p.code.to_string(), field)
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(c, f)| (c.to_string(), f.to_string())).collect()
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

// ---- registry -------------------------------------------------------------------------

#[test]
fn registry_ids_are_unique_and_canonical() {
    let mut seen = HashSet::new();
    for app in registry() {
        assert!(seen.insert(app.app_id), "duplicate app id {}", app.app_id);
        assert_eq!(AppId::parse(app.app_id).unwrap().as_str(), app.app_id, "non-canonical id");
        assert_eq!(app.id().as_str(), app.app_id);
        assert!(!app.name.is_empty() && !app.description.is_empty() && !app.developer_name.is_empty());
        assert_eq!(app.developer_id.len(), 36);
    }
    let ids: Vec<&str> = registry().iter().map(|a| a.app_id).collect();
    assert_eq!(ids, ["SANDBOX_CARD", "SANDBOX_BANK", "SANDBOX_REWARDS", "STRIPE"]);
}

#[test]
fn find_normalises_ids() {
    for (input, expected) in [
        ("sandbox-card", "SANDBOX_CARD"),
        ("Sandbox_Bank", "SANDBOX_BANK"),
        (" sandbox-rewards ", "SANDBOX_REWARDS"),
        ("SANDBOX_CARD", "SANDBOX_CARD"),
    ] {
        assert_eq!(find(&AppId::parse(input).unwrap()).unwrap().app_id, expected);
        assert_eq!(find_str(input).unwrap().app_id, expected);
    }
    assert!(find(&AppId::parse("braintree_sdk").unwrap()).is_none());
    assert!(find_str("not an id").is_none());
    assert!(find_str("").is_none());
}

#[test]
fn descriptors_are_consistent() {
    for app in registry() {
        let mut ids = HashSet::new();
        for m in app.payment_methods {
            assert!(ids.insert(m.id), "{}: method {} twice", app.app_id, m.id);
            assert!(!m.name.is_empty() && !m.tags.is_empty());
            assert!(!m.directions.is_empty());
            assert!(
                m.directions.iter().all(|d| app.supports(*d)),
                "{}: {} serves a foreign direction",
                app.app_id,
                m.id
            );
        }
        for d in app.directions {
            assert!(!app.methods_for(*d).is_empty(), "{}: no method for {d}", app.app_id);
        }
        assert!(!app.transaction_types.is_empty() && !app.countries.is_empty() && !app.currencies.is_empty());
        assert_eq!(app.tags.contains(&"sandbox"), app.app_id.starts_with("SANDBOX_"), "{}", app.app_id);
        let svg = app.icon_svg.trim();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{}: icon is not an SVG document", app.app_id);
        assert!(!svg.contains("href") && svg.matches("http").count() == 1, "{}: icon refers outside", app.app_id);
        assert!(app.config.fields.iter().all(|f| f.name.chars().next().unwrap().is_ascii_lowercase()));
    }
}

#[test]
fn sandbox_card_capabilities() {
    let app = find_str("SANDBOX_CARD").unwrap();
    assert_eq!(app.app_type, AppType::Payment);
    assert_eq!(app.directions, [Direction::Debit, Direction::Credit]);
    assert_eq!(app.method_ids(), ["VISA", "MASTERCARD", "AMERICAN-EXPRESS", "DISCOVER", "MAESTRO", "PAYPAL"]);
    assert_eq!(app.methods_for(Direction::Debit).len(), 6);
    assert_eq!(app.methods_for(Direction::Credit).len(), 6);
    assert!(app.supports_transaction_type(TransactionType::Cit) && app.supports_transaction_type(TransactionType::Mit));
    assert_eq!(app.networks, Network::ALL);
    assert_eq!(app.countries, Country::ALL);
    assert_eq!(app.currencies, Currency::ALL);
    assert_eq!(app.settlement, Settlement::Immediate);
    let amex = app.method("american_express").unwrap();
    assert_eq!(amex.id, "AMERICAN-EXPRESS");
    assert!(amex.provider_warning_required && amex.is_credit_card);
    let paypal = app.method("paypal").unwrap();
    assert!(!paypal.is_credit_card && paypal.supports_recurring && paypal.supports_direct_sale);
    assert!(app.config.has_secrets());
    assert!(app.config.field("APIKEY").unwrap().secret);
}

#[test]
fn sandbox_bank_capabilities() {
    let app = find_str("sandbox_bank").unwrap();
    assert_eq!(app.app_type, AppType::Payment);
    assert!(app.supports(Direction::Debit) && app.supports(Direction::Credit));
    let ids = |d| app.methods_for(d).iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(ids(Direction::Debit), ["DIRECT_DEBIT"]);
    assert_eq!(ids(Direction::Credit), ["BANK_TRANSFER"]);
    assert_eq!(app.method_ids(), ["DIRECT_DEBIT", "BANK_TRANSFER"]);
    assert_eq!(app.transaction_types, [TransactionType::Mit]);
    assert!(!app.supports_transaction_type(TransactionType::Cit));
    assert!(app.networks.is_empty());
    assert_eq!(app.settlement, Settlement::Asynchronous);
    assert!(!app.config.has_secrets());
    assert!(!app.method("DIRECT_DEBIT").unwrap().supports_direct_sale);
}

#[test]
fn sandbox_rewards_capabilities() {
    let app = find_str("sandbox-rewards").unwrap();
    assert_eq!(app.app_type, AppType::Reward);
    assert_eq!(app.directions, [Direction::Credit]);
    assert!(!app.supports(Direction::Debit));
    assert_eq!(app.method_ids(), ["GIFT_CARD", "REWARD_LINK", "DONATION", "CASH_EQUIVALENT"]);
    assert!(app.networks.is_empty());
    assert!(!app.config.has_secrets());
}

#[test]
fn marketplace_filters() {
    let ids = |f: &MarketplaceFilter| registry().iter().filter(|a| a.matches(f)).map(|a| a.app_id).collect::<Vec<_>>();
    assert_eq!(ids(&MarketplaceFilter::default()).len(), 4);
    assert_eq!(ids(&MarketplaceFilter { app_types: vec![AppType::Reward], ..Default::default() }), ["SANDBOX_REWARDS"]);
    assert_eq!(
        ids(&MarketplaceFilter { directions: vec![Direction::Debit], ..Default::default() }),
        ["SANDBOX_CARD", "SANDBOX_BANK", "STRIPE"]
    );
    assert_eq!(
        ids(&MarketplaceFilter { networks: vec![Network::Visa], ..Default::default() }),
        ["SANDBOX_CARD", "STRIPE"]
    );
    assert_eq!(
        ids(&MarketplaceFilter { payment_methods: vec!["paypal".into(), "direct-debit".into()], ..Default::default() }),
        ["SANDBOX_CARD", "SANDBOX_BANK"]
    );
    assert_eq!(
        ids(&MarketplaceFilter {
            transaction_types: vec![TransactionType::Cit],
            directions: vec![Direction::Debit],
            ..Default::default()
        }),
        ["SANDBOX_CARD", "STRIPE"]
    );
    assert!(ids(&MarketplaceFilter { payment_methods: vec!["IDEAL".into()], ..Default::default() }).is_empty());
}

#[test]
fn payment_method_icons() {
    let svg = payment_method_icon_svg("american-express.svg").unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("AMEX") && svg.contains("American Express"));
    assert!(payment_method_icon_svg("direct_debit").unwrap().contains(">DD<"));
    assert!(payment_method_icon_svg("NOPE").is_none());
}

// ---- SANDBOX_CARD configuration ----------------------------------------------------------

fn card() -> &'static AppDescriptor {
    find_str("SANDBOX_CARD").unwrap()
}

#[test]
fn card_config_happy_path_splits_secrets() {
    let input = json!({
        "merchantName": "  Test Shop ",
        "apiKey": "sk_test_123",
        "settings": [
            {"currency": "eur", "countries": ["de", "UK"], "merchantAccountId": "acct-eu", "description": "Europe", "x": 1},
            {"currency": "EUR", "merchantAccountId": "acct-eu-any"},
            {"currency": "GBP", "countries": [], "merchantAccountId": "acct-gb"}
        ],
        "unknown": {"dropped": true}
    });
    let valid = card().validate_config(&input).unwrap();
    assert_eq!(
        valid.public,
        json!({
            "merchantName": "Test Shop",
            "settings": [
                {"currency": "EUR", "countries": ["DE", "GB"], "merchantAccountId": "acct-eu", "description": "Europe"},
                {"currency": "EUR", "countries": [], "merchantAccountId": "acct-eu-any"},
                {"currency": "GBP", "countries": [], "merchantAccountId": "acct-gb"}
            ]
        })
    );
    assert_eq!(valid.secrets, json!({"apiKey": "sk_test_123"}));
    assert_eq!(valid.merged()["apiKey"], "sk_test_123");
    assert_eq!(valid.masked()["apiKey"], MASK);
    assert_eq!(valid.masked()["merchantName"], "Test Shop");
    assert!(!format!("{valid:?}").contains("sk_test_123"));
    assert_eq!(config::mask(&valid.public, &valid.secrets), valid.masked());
}

#[test]
fn card_config_may_be_empty() {
    let valid = card().validate_config(&json!({})).unwrap();
    assert_eq!(valid.public, json!({"settings": []}));
    assert_eq!(valid.secrets, json!({}));
    assert_eq!(valid.masked(), json!({"settings": []}));
    // Explicit nulls and blanks are absent too.
    let valid = card().validate_config(&json!({"merchantName": "", "apiKey": null, "settings": null})).unwrap();
    assert_eq!(valid.public, json!({"settings": []}));
    assert_eq!(valid.secrets, json!({}));
}

#[test]
fn config_must_be_an_object() {
    for input in [json!([]), json!("x"), json!(1), Value::Null] {
        for app in registry() {
            let problems = app.validate_config(&input).unwrap_err();
            assert_eq!(problems.len(), 1);
            assert_eq!(problems[0].code, "INVALID_CONFIGURATION");
            assert_eq!(problems[0].kind, ProblemKind::BadRequest);
        }
    }
}

#[test]
fn config_names_match_case_insensitively() {
    let input = json!({
        "MerchantName": "Shop",
        "APIKEY": "k",
        "Settings": [{"Currency": "usd", "COUNTRIES": ["us"], "MerchantAccountID": "a", "Description": "d"}]
    });
    let valid = card().validate_config(&input).unwrap();
    assert_eq!(
        valid.public,
        json!({
            "merchantName": "Shop",
            "settings": [{"currency": "USD", "countries": ["US"], "merchantAccountId": "a", "description": "d"}]
        })
    );
    assert_eq!(valid.secrets, json!({"apiKey": "k"}));
}

#[test]
fn config_names_given_twice_are_refused() {
    let problems = card().validate_config(&json!({"merchantName": "a", "MerchantName": "b"})).unwrap_err();
    assert_eq!(codes(&problems), pairs(&[("INVALID_CONFIGURATION_FIELD", "merchantName")]));
}

#[test]
fn card_config_reports_every_bad_field_with_its_path() {
    let input = json!({
        "merchantName": 3,
        "apiKey": "x".repeat(MAX_STRING_CHARS + 1),
        "settings": [
            {"countries": ["XX"], "merchantAccountId": 5},
            {"currency": "ABC", "merchantAccountId": "m"},
            "not an object",
            {"currency": "EUR", "countries": "DE", "merchantAccountId": "m"},
            {"currency": "GBP", "countries": ["DE", 7]},
            {"currency": "USD", "merchantAccountId": "   "}
        ]
    });
    let problems = card().validate_config(&input).unwrap_err();
    assert_eq!(
        codes(&problems),
        pairs(&[
            ("INVALID_CONFIGURATION_FIELD", "merchantName"),
            ("INVALID_CONFIGURATION_FIELD", "apiKey"),
            ("CONFIGURATION_FIELD_REQUIRED", "settings[0].currency"),
            ("INVALID_COUNTRY", "settings[0].countries[0]"),
            ("INVALID_CONFIGURATION_FIELD", "settings[0].merchantAccountId"),
            ("INVALID_CURRENCY", "settings[1].currency"),
            ("INVALID_CONFIGURATION_FIELD", "settings[2]"),
            ("INVALID_CONFIGURATION_FIELD", "settings[3].countries"),
            ("INVALID_CONFIGURATION_FIELD", "settings[4].countries[1]"),
            ("CONFIGURATION_FIELD_REQUIRED", "settings[4].merchantAccountId"),
            ("CONFIGURATION_FIELD_REQUIRED", "settings[5].merchantAccountId"),
        ])
    );
    assert!(problems.iter().all(|p| p.kind == ProblemKind::BadRequest));
    let long = &problems[1];
    assert!(long.details.iter().any(|(k, v)| k == "limit" && v == &MAX_STRING_CHARS.to_string()));
    assert_eq!(problems[0].render(&[]), "[merchantName] must be a string.");
    let problems = card().validate_config(&json!({"settings": {"currency": "EUR"}})).unwrap_err();
    assert_eq!(codes(&problems), pairs(&[("INVALID_CONFIGURATION_FIELD", "settings")]));
}

#[test]
fn card_config_refuses_duplicate_settings() {
    let input = json!({"settings": [
        {"currency": "EUR", "countries": ["DE", "FR"], "merchantAccountId": "a"},
        {"currency": "EUR", "countries": [], "merchantAccountId": "b"},
        {"currency": "eur", "countries": ["IT", "fr"], "merchantAccountId": "c"},
        {"currency": "EUR", "merchantAccountId": "d"},
        {"currency": "GBP", "countries": ["DE"], "merchantAccountId": "e"},
        {"currency": "GBP", "countries": ["UK"], "merchantAccountId": "f"},
        {"currency": "GBP", "countries": ["gb"], "merchantAccountId": "g"}
    ]});
    let problems = card().validate_config(&input).unwrap_err();
    assert_eq!(
        codes(&problems),
        pairs(&[
            ("DUPLICATE_MERCHANT_ACCOUNT_SETTING", "settings[2]"),
            ("DUPLICATE_MERCHANT_ACCOUNT_SETTING", "settings[3]"),
            ("DUPLICATE_MERCHANT_ACCOUNT_SETTING", "settings[6]"),
        ])
    );
    let detail = |p: &baton_domain::Problem, key: &str| {
        p.details.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_default()
    };
    assert_eq!(detail(&problems[0], "currency"), "EUR");
    assert_eq!(detail(&problems[0], "country"), "FR");
    assert_eq!(detail(&problems[0], "duplicateOf"), "settings[0]");
    assert_eq!(detail(&problems[1], "duplicateOf"), "settings[1]");
    assert_eq!(detail(&problems[1], "country"), "");
    assert_eq!(detail(&problems[2], "duplicateOf"), "settings[5]");

    // The same country twice within one setting, and blank entries, are tidied silently.
    let valid = card()
        .validate_config(&json!({"settings": [
            {"currency": "EUR", "countries": ["AT", "at", "", null], "merchantAccountId": "a"},
            {"currency": "EUR", "countries": [""], "merchantAccountId": "b"}
        ]}))
        .unwrap();
    assert_eq!(valid.public["settings"][0]["countries"], json!(["AT"]));
    assert_eq!(valid.public["settings"][1]["countries"], json!([]));
}

#[test]
fn masked_secrets_survive_updates() {
    let previous = json!({"apiKey": "old-key"});
    let valid = card().validate_config_update(&json!({"ApiKey": MASK, "merchantName": "n"}), &previous).unwrap();
    assert_eq!(valid.secrets, json!({"apiKey": "old-key"}));
    let valid = card().validate_config_update(&json!({"apiKey": "new-key"}), &previous).unwrap();
    assert_eq!(valid.secrets, json!({"apiKey": "new-key"}));
    // Without a previous value the mask is no value at all.
    let valid = card().validate_config(&json!({"apiKey": MASK})).unwrap();
    assert_eq!(valid.secrets, json!({}));
    let valid = card().validate_config_update(&json!({"apiKey": MASK}), &json!({})).unwrap();
    assert_eq!(valid.secrets, json!({}));
}

#[test]
fn card_routing_uses_settings() {
    let config = card()
        .validate_config(&json!({"settings": [
            {"currency": "EUR", "merchantAccountId": "eu-any"},
            {"currency": "EUR", "countries": ["DE"], "merchantAccountId": "eu-de"}
        ]}))
        .unwrap()
        .merged();
    let route = |cur, cty| sandbox_card::merchant_account_for(&config, cur, cty);
    assert_eq!(route(Currency::EUR, Country::DE).unwrap(), "eu-de");
    assert_eq!(route(Currency::EUR, Country::ES).unwrap(), "eu-any");
    let p = route(Currency::GBP, Country::GB).unwrap_err();
    assert_eq!((p.code.as_ref(), p.kind), ("NO_MERCHANT_ACCOUNT", ProblemKind::PaymentRequired));
    let settings = MerchantAccountSetting::from_config(&config);
    assert_eq!(settings.len(), 2);
    assert_eq!(settings[1].countries, [Country::DE]);
    let empty = card().validate_config(&json!({})).unwrap().merged();
    assert_eq!(
        sandbox_card::merchant_account_for(&empty, Currency::THB, Country::TH).unwrap(),
        sandbox_card::DEFAULT_MERCHANT_ACCOUNT_ID
    );
}

// ---- SANDBOX_BANK configuration ----------------------------------------------------------

fn bank() -> &'static AppDescriptor {
    find_str("SANDBOX_BANK").unwrap()
}

#[test]
fn bank_config_happy_path_with_default_delay() {
    let valid = bank()
        .validate_config(&json!({"CreditorName": "ACME Insurance", "creditorID": "DE98ZZZ09999999999", "x": 1}))
        .unwrap();
    assert_eq!(
        valid.public,
        json!({"creditorName": "ACME Insurance", "creditorId": "DE98ZZZ09999999999", "settlementDelaySeconds": 2})
    );
    assert_eq!(valid.secrets, json!({}));
    assert_eq!(sandbox_bank::settlement_delay(&valid.merged()), std::time::Duration::from_secs(2));
    let valid = bank()
        .validate_config(&json!({"creditorName": "A", "creditorId": "B1", "settlementDelaySeconds": "30"}))
        .unwrap();
    assert_eq!(valid.public["settlementDelaySeconds"], 30);
    assert_eq!(sandbox_bank::settlement_delay(&valid.public), std::time::Duration::from_secs(30));
    for edge in [0, 86_400] {
        let valid = bank()
            .validate_config(&json!({"creditorName": "A", "creditorId": "B1", "settlementDelaySeconds": edge}))
            .unwrap();
        assert_eq!(valid.public["settlementDelaySeconds"], edge);
    }
}

#[test]
fn bank_config_errors() {
    let problems = bank().validate_config(&json!({"creditorName": "  "})).unwrap_err();
    assert_eq!(
        codes(&problems),
        pairs(&[("CONFIGURATION_FIELD_REQUIRED", "creditorName"), ("CONFIGURATION_FIELD_REQUIRED", "creditorId")])
    );
    for delay in [json!(86_401), json!(-1), json!(1.5), json!(true), json!("soon"), json!([2])] {
        let problems = bank()
            .validate_config(&json!({"creditorName": "A", "creditorId": "B", "settlementDelaySeconds": delay}))
            .unwrap_err();
        assert_eq!(codes(&problems), pairs(&[("INVALID_CONFIGURATION_FIELD", "settlementDelaySeconds")]), "{delay}");
        assert!(problems[0].details.iter().any(|(k, v)| k == "max" && v == "86400"));
    }
    // The app-specific check on the creditor id ...
    let problems = bank().validate_config(&json!({"creditorName": "A", "creditorId": "not valid!"})).unwrap_err();
    assert_eq!(codes(&problems), pairs(&[("INVALID_CONFIGURATION_FIELD", "creditorId")]));
    let too_long = "A".repeat(36);
    assert!(bank().validate_config(&json!({"creditorName": "A", "creditorId": too_long})).is_err());
    // ... runs only once every field is valid.
    let problems = bank().validate_config(&json!({"creditorName": 1, "creditorId": "not valid!"})).unwrap_err();
    assert_eq!(codes(&problems), pairs(&[("INVALID_CONFIGURATION_FIELD", "creditorName")]));
}

// ---- SANDBOX_REWARDS configuration -------------------------------------------------------

#[test]
fn rewards_config_is_almost_empty() {
    let app = find_str("SANDBOX_REWARDS").unwrap();
    let valid = app.validate_config(&json!({})).unwrap();
    assert_eq!((valid.public, valid.secrets), (json!({}), json!({})));
    let valid = app.validate_config(&json!({"AccountName": "Main", "other": 1})).unwrap();
    assert_eq!(valid.public, json!({"accountName": "Main"}));
    let problems = app.validate_config(&json!({"accountName": false})).unwrap_err();
    assert_eq!(codes(&problems), pairs(&[("INVALID_CONFIGURATION_FIELD", "accountName")]));
}

// ---- the sandbox rewards catalogue -------------------------------------------------------

#[test]
fn catalog_has_enough_stable_unique_rewards() {
    let catalog = sandbox_rewards::catalog();
    assert!(catalog.len() >= 40, "only {} rewards", catalog.len());
    assert!(std::ptr::eq(catalog, sandbox_rewards::catalog()), "parsed more than once");
    let mut ids = HashSet::new();
    for r in catalog {
        assert_eq!(r.reward_id.len(), 64);
        assert!(r.reward_id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{}", r.reward_id);
        assert!(ids.insert(r.reward_id.as_str()), "duplicate id {}", r.reward_id);
        let face = match r.value_type {
            ValueType::FixedValue => r.fixed_value.unwrap().to_string(),
            ValueType::VariableValue => format!("{}-{}", r.min_value.unwrap(), r.max_value.unwrap()),
        };
        let expected = Sha256::digest(format!("{}|{}|{}", r.brand_key, r.currency, face).as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        assert_eq!(r.reward_id, expected, "{} ({}) should have id {expected}", r.reward_name, face);
        assert_eq!(sandbox_rewards::find(&r.reward_id).unwrap().reward_id, r.reward_id);
    }
    let first = &catalog[0];
    assert_eq!(sandbox_rewards::find(&first.reward_id.to_uppercase()).unwrap(), first);
    assert!(sandbox_rewards::find("0".repeat(64).as_str()).is_none());
}

#[test]
fn catalog_covers_every_variation() {
    let catalog = sandbox_rewards::catalog();
    assert!(catalog.iter().any(|r| r.value_type == ValueType::FixedValue));
    assert!(catalog.iter().any(|r| r.value_type == ValueType::VariableValue));
    assert!(catalog.iter().any(|r| r.is_whole_amount_value_required));
    assert!(catalog.iter().any(|r| !r.is_whole_amount_value_required));
    assert!(catalog.iter().any(|r| !r.status_active));
    assert!(catalog.iter().filter(|r| r.status_active).count() >= 40);
    for t in RewardType::ALL {
        assert!(catalog.iter().any(|r| r.reward_type == *t), "no {t}");
    }
    let brands: HashSet<&str> = catalog.iter().map(|r| r.brand_key.as_str()).collect();
    assert!(brands.len() >= 10);
    let currencies: HashSet<Currency> = catalog.iter().map(|r| r.currency).collect();
    assert_eq!(currencies.len(), Currency::ALL.len(), "every supported currency has a reward");
    for t in CREDENTIAL_TYPES {
        assert!(catalog.iter().any(|r| r.credential_types.iter().any(|c| c == t)), "{t} never used");
    }
}

#[test]
fn catalog_rewards_are_well_formed() {
    let app = find_str("SANDBOX_REWARDS").unwrap();
    for r in sandbox_rewards::catalog() {
        let name = &r.reward_name;
        assert_eq!(r.app_id, "SANDBOX_REWARDS");
        assert_eq!(r.app_name(), "Sandbox Rewards");
        assert!(!r.countries.is_empty(), "{name}");
        assert!(r.countries.iter().all(|c| app.supports_country(*c)), "{name}");
        assert!(app.supports_currency(r.currency), "{name}");
        match r.value_type {
            ValueType::FixedValue => {
                assert!(r.fixed_value.unwrap() > Decimal::ZERO, "{name}");
                assert!(r.min_value.is_none() && r.max_value.is_none(), "{name}");
            }
            ValueType::VariableValue => {
                let (min, max) = (r.min_value.unwrap(), r.max_value.unwrap());
                assert!(Decimal::ZERO < min && min <= max, "{name}");
                assert!(r.fixed_value.is_none(), "{name}");
            }
        }
        for v in [r.fixed_value, r.min_value, r.max_value].into_iter().flatten() {
            assert!(v.scale() <= r.currency.exponent(), "{name}: {v}");
        }
        assert!(!r.credential_types.is_empty(), "{name}");
        let unique: HashSet<&String> = r.credential_types.iter().collect();
        assert_eq!(unique.len(), r.credential_types.len(), "{name}");
        assert!(r.credential_types.iter().all(|c| CREDENTIAL_TYPES.contains(&c.as_str())), "{name}");
        assert!(r.redemption_instructions.starts_with('<') && r.redemption_instructions.ends_with('>'), "{name}");
        assert_eq!(r.image_url, format!("/assets/rewards/{}.svg", r.brand_key));
        assert_eq!(r.brand.brand_key, r.brand_key);
        assert_eq!(r.brand_name, r.brand.brand_name);
        assert!(r.reward_name.contains(&r.brand_name), "{name}");
        assert!(!r.brand.description.is_empty() && !r.brand.short_description.is_empty(), "{name}");
        assert!(!r.brand.disclaimer.is_empty() && !r.brand.terms.is_empty(), "{name}");
        assert!(!r.brand.image_urls.is_empty(), "{name}");
        assert!(r.brand.image_urls.iter().all(|i| i.url == r.image_url && i.width > 0 && i.ppi > 0));
        if !r.brand.status_active {
            assert!(!r.status_active, "{name}: active reward of an inactive brand");
        }
        for date in [&r.created_date, &r.last_update_date] {
            assert!(date.len() == 24 && date.ends_with(".000Z") && date.as_bytes()[10] == b'T', "{name}: {date}");
        }
        assert!(r.created_date < r.last_update_date, "{name}");
        assert!(sandbox_rewards::brand_image_svg(&r.brand_key)
            .unwrap()
            .contains(&r.brand.brand_name.replace('&', "&amp;")));
    }
}

#[test]
fn catalog_data_has_no_third_party_urls() {
    let raw = include_str!("../data/sandbox_rewards.json");
    assert!(!raw.contains("http"), "the catalogue must not point at other hosts");
    assert!(!raw.contains("www."));
    for b in sandbox_rewards::brands() {
        let svg = sandbox_rewards::brand_image_svg(&format!("{}.svg", b.brand_key)).unwrap();
        assert!(svg.starts_with("<svg") && !svg.contains("href"));
        assert_eq!(sandbox_rewards::image_path(&b.brand_key), format!("/assets/rewards/{}.svg", b.brand_key));
    }
    assert!(sandbox_rewards::brand_image_svg("no-such-brand").is_none());
    assert!(sandbox_rewards::brand("caffe-nero").unwrap().brand_name == "Caffè Nero");
}

/// The fixtures of SPEC §4.6 payout tests (P1–P4) exist in the catalogue.
#[test]
fn catalog_supports_the_spec_payout_fixtures() {
    fn by_brand(key: &str) -> impl Iterator<Item = &'static CatalogReward> + '_ {
        sandbox_rewards::catalog().iter().filter(move |r| r.brand_key == key && r.status_active)
    }
    let one = |key: &str| {
        let all: Vec<_> = by_brand(key).collect();
        assert_eq!(all.len(), 1, "{key}");
        all[0]
    };
    let de = one("amazon-de");
    assert!(de.is_available_in(Country::DE) && de.currency == Currency::EUR);
    assert!(fits_amount(&de.terms(), dec("120.00"), MatchType::Exact));
    assert!(one("amazon-co-uk").is_available_in(Country::GB));
    assert!(one("amazon-fr").is_available_in(Country::FR) && !one("amazon-fr").is_available_in(Country::DE));
    for coffee in ["starbucks", "caffe-nero", "costa-coffee"] {
        assert!(
            by_brand(coffee).any(|r| r.is_available_in(Country::DE)
                && r.currency == Currency::EUR
                && fits_amount(&r.terms(), dec("10.00"), MatchType::Exact)),
            "{coffee} has no DE/EUR reward for 10.00"
        );
    }
}

/// SPEC §4.8 amount tests at €15.00.
#[test]
fn amount_matching() {
    let base = sandbox_rewards::catalog()[0].clone();
    let variable = |min: &str, max: &str| CatalogReward {
        value_type: ValueType::VariableValue,
        fixed_value: None,
        min_value: Some(dec(min)),
        max_value: Some(dec(max)),
        is_whole_amount_value_required: false,
        ..base.clone()
    };
    let fixed = |v: &str| CatalogReward {
        value_type: ValueType::FixedValue,
        fixed_value: Some(dec(v)),
        min_value: None,
        max_value: None,
        is_whole_amount_value_required: false,
        ..base.clone()
    };
    let amount = dec("15.00");
    let cases = [
        (variable("1.00", "500.00"), true, true),
        (variable("20.00", "50.00"), false, false),
        (fixed("15.00"), true, true),
        (fixed("10.00"), false, true),
        (fixed("20.00"), false, false),
    ];
    for (i, (reward, exact, max)) in cases.iter().enumerate() {
        assert_eq!(fits_amount(&reward.terms(), amount, MatchType::Exact), *exact, "A{}", i + 1);
        assert_eq!(fits_amount(&reward.terms(), amount, MatchType::Max), *max, "A{}", i + 1);
    }
    let whole = CatalogReward { is_whole_amount_value_required: true, ..variable("1.00", "500.00") };
    assert!(fits_amount(&whole.terms(), dec("15"), MatchType::Exact));
    assert!(!fits_amount(&whole.terms(), dec("15.50"), MatchType::Exact));
}

#[test]
fn reward_types_parse() {
    assert_eq!("GIFT_CARD".parse::<RewardType>(), Ok(RewardType::GiftCard));
    assert_eq!("Cash Equivalent".parse::<RewardType>(), Ok(RewardType::CashEquivalent));
    assert_eq!("reward-link".parse::<RewardType>(), Ok(RewardType::RewardLink));
    assert!("voucher".parse::<RewardType>().is_err());
    assert_eq!(RewardType::Donation.label(), "Donation");
    assert_eq!(RewardType::GiftCard.to_string(), "gift card");
}
