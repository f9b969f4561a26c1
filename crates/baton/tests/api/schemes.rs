//! Collect and payout schemes (SPEC §4.6): schemes, drafts, publication, options (SPEC's
//! C1–C6 and P1–P4 end to end) and simulation, through the real HTTP API.

use crate::common;

use std::collections::BTreeSet;

use common::{Reply, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

// Sandbox reward ids (stable: SHA-256 of "<brandKey>|<currency>|<face>", see
// `baton_connectors::sandbox_rewards`).
const AMAZON_DE: &str = "b1c0b8432a425a4e16ca521aad11890fdcdfd10e8f2efd60fcde2c83a5320e1b"; // EUR 1–500, DE AT
const AMAZON_UK: &str = "cbb8fbfe77d4e6cf7e55097a83d9313c288776b607cc3cca0725cea3e54b6e48"; // GBP 1–500, GB
const AMAZON_FR: &str = "d0e821a53cf89c5c8d95c5012d03bb38001b92ccbff8580e6008cec78875fb9b"; // EUR 1–500, FR
const STARBUCKS_EUR_10: &str = "0f3d9111e2e4a87e1b20f8a71aeb8124381a208508dad99a96106550180e5a77"; // fixed €10, DE AT
const STARBUCKS_GBP_5: &str = "456ebfdb6d5e4240f8f04958c1d0d0050de347b8e881f1447d90adc57520f80a"; // fixed £5, GB
const NERO_EUR: &str = "d0e162b53169b081428740539fddd30aba731484335e39e2af04cc45585f23e4"; // EUR 5–50 whole, DE IE NL
const COSTA_EUR_10: &str = "52cb7d5c07b9b4909ccc81310cdbd1bcde496e888747b06ad7071d31bc1dffb7"; // fixed €10, DE PL
const COSTA_EUR_20: &str = "4283fa5ed6df50a013cb1a5154f6f00ca00c3bc85e5ecaf2a14bfbf4273b0fb1"; // fixed €20, DE PL

const CARDS: [&str; 5] = ["VISA", "MASTERCARD", "AMERICAN-EXPRESS", "DISCOVER", "MAESTRO"];
const CARDS_AND_PAYPAL: [&str; 6] = ["VISA", "MASTERCARD", "AMERICAN-EXPRESS", "DISCOVER", "MAESTRO", "PAYPAL"];

/// A node, a tenant and a tenant-admin token for it.
struct Fx {
    app: TestApp,
    admin: String,
    tenant: String,
    token: String,
}

impl Fx {
    async fn new() -> Self {
        let app = TestApp::spawn().await;
        let admin = app.admin_token().await;
        let tenant = app.create_tenant(&admin, "Schemes tenant").await;
        let key = app.create_tenant_key(&admin, &tenant, &["tenant-admin"]).await;
        let token = app.token(&key).await;
        Self { app, admin, tenant, token }
    }

    /// A token for a new key of the fixture's tenant holding `roles`.
    async fn token_with(&self, roles: &[&str]) -> String {
        let key = self.app.create_tenant_key(&self.admin, &self.tenant, roles).await;
        self.app.token(&key).await
    }

    /// Another tenant of the same account, with its own admin token.
    async fn other_tenant(&self) -> (String, String) {
        let tenant = self.app.create_tenant(&self.admin, "Other tenant").await;
        let key = self.app.create_tenant_key(&self.admin, &tenant, &["tenant-admin"]).await;
        (tenant.clone(), self.app.token(&key).await)
    }

    async fn install(&self, app_id: &str) {
        install(&self.app, &self.token, app_id).await;
    }

    async fn group(&self, name: &str, rewards: Value) -> String {
        group(&self.app, &self.token, name, rewards).await
    }

    async fn get(&self, path: &str) -> Reply {
        self.app.get(path, &self.token).await
    }

    async fn post(&self, path: &str, body: &Value) -> Reply {
        self.app.post(path, &self.token, body).await
    }

    async fn put(&self, path: &str, body: &Value) -> Reply {
        self.app.put(path, &self.token, body).await
    }

    async fn delete(&self, path: &str) -> Reply {
        self.app.delete(path, &self.token).await
    }

    /// Creates a scheme and returns its body.
    async fn create(&self, kind: &str, body: Value) -> Value {
        let reply = self.post(&format!("/v1/schemes/{kind}"), &body).await;
        let scheme = reply.assert_status(201).clone();
        let id = scheme["schemeId"].as_str().unwrap();
        assert_eq!(reply.header("location"), Some(format!("/v1/schemes/{kind}/{id}").as_str()));
        scheme
    }

    /// Adds a draft and returns its id.
    async fn add_draft(&self, kind: &str, scheme_id: &str, body: Value) -> String {
        let reply = self.post(&format!("/v1/schemes/{kind}/{scheme_id}/drafts"), &body).await;
        let id = reply.assert_status(201)["draftId"].as_str().unwrap().to_string();
        assert_eq!(reply.header("location"), Some(format!("/v1/schemes/{kind}/{scheme_id}/drafts/{id}").as_str()));
        id
    }

    async fn publish(&self, kind: &str, scheme_id: &str, draft_id: &str) -> Value {
        let reply = self.post(&format!("/v1/schemes/{kind}/{scheme_id}/drafts/{draft_id}/publish"), &json!({})).await;
        reply.assert_status(200).clone()
    }

    /// Every scheme of both kinds, for "nothing changed" checks.
    async fn everything(&self) -> Value {
        json!({
            "collect": self.get("/v1/schemes/collect").await.assert_status(200),
            "payout": self.get("/v1/schemes/payout").await.assert_status(200),
        })
    }

    async fn options(&self, kind: &str, scheme_id: &str, query: &str) -> Reply {
        self.get(&format!("/v1/schemes/{kind}/{scheme_id}/options?{query}")).await
    }
}

async fn install(app: &TestApp, token: &str, app_id: &str) {
    let reply = app.send(Method::POST, &format!("/v1/marketplace/apps/{app_id}/install"), Some(token), &[], None).await;
    reply.assert_status(200);
}

async fn group(app: &TestApp, token: &str, name: &str, rewards: Value) -> String {
    let reply = app.post("/v1/reward-groups", token, &json!({ "name": name, "rewards": rewards })).await;
    reply.assert_status(201)["rewardGroupId"].as_str().unwrap().to_string()
}

/// The `(errorCode, metadata.field)` of every error.
fn problems(reply: &Reply) -> Vec<(String, String)> {
    reply.body["errors"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|e| {
            (
                e["errorCode"].as_str().unwrap_or("").to_string(),
                e["metadata"]["field"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Asserts a 400 with exactly these `(code, field)` problems, in any order.
#[track_caller]
fn assert_problems(reply: &Reply, expected: &[(&str, &str)]) {
    reply.assert_error(400, reply.code());
    let got: BTreeSet<(String, String)> = problems(reply).into_iter().collect();
    let want: BTreeSet<(String, String)> = expected.iter().map(|(c, f)| (c.to_string(), f.to_string())).collect();
    assert_eq!(got, want, "body: {}", reply.text);
    assert_eq!(problems(reply).len(), expected.len(), "body: {}", reply.text);
}

fn card_entry(excluded: &[&str]) -> Value {
    json!({ "appId": "SANDBOX_CARD", "priority": 1, "excludedPaymentMethods": excluded })
}

/// SPEC §4.6 collect tests, with SANDBOX_CARD in Braintree's place: R1 EUR/any/1–100 → cards
/// only; R2 EUR/DE,FR/101–any → cards + PayPal; R3 EUR/any/any → PayPal only.
fn spec_collect_rules() -> Value {
    json!([
        { "priority": 1, "currencies": ["EUR"], "countries": [], "lowValueInclusive": 1, "highValueInclusive": "100.00",
          "apps": [card_entry(&["PAYPAL"])] },
        { "priority": 2, "currencies": ["eur"], "countries": ["DE", "fr"], "lowValueInclusive": "101", "highValueInclusive": null,
          "apps": [card_entry(&[])] },
        { "priority": 3, "currencies": ["EUR"], "apps": [card_entry(&CARDS)] },
    ])
}

/// The method ids of an options response (collect) or of a simulation outcome.
fn method_ids(methods: &Value) -> Vec<String> {
    methods.as_array().unwrap().iter().map(|m| m["paymentMethodId"].as_str().unwrap().to_string()).collect()
}

fn reward_ids(rewards: &Value) -> Vec<String> {
    rewards.as_array().unwrap().iter().map(|r| r["rewardId"].as_str().unwrap().to_string()).collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

// -------------------------------------------------------------------------------------------
// Schemes and drafts
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn schemes_and_drafts_live_through_their_whole_cycle() {
    let fx = Fx::new().await;
    fx.install("SANDBOX_CARD").await;
    fx.get("/v1/schemes/collect").await.assert_status(200);
    assert_eq!(fx.get("/v1/schemes/collect").await.body, json!([]));

    // Create: one unpublished draft, rules in saved order, both app-entry forms out.
    let scheme =
        fx.create("collect", json!({ "name": "Checkout", "code": "CHK-1", "rules": spec_collect_rules() })).await;
    let sid = scheme["schemeId"].as_str().unwrap().to_string();
    assert_eq!(scheme["publishedDraftId"], "");
    assert_eq!(scheme["drafts"].as_array().unwrap().len(), 1);
    let first = &scheme["drafts"][0];
    let d1 = first["draftId"].as_str().unwrap().to_string();
    assert_eq!((first["name"].as_str(), first["code"].as_str()), (Some("Checkout"), Some("CHK-1")));
    assert!(first["lastModified"].as_str().unwrap().ends_with('Z'));
    let rules = first["rules"].as_array().unwrap();
    assert_eq!(rules.iter().map(|r| r["priority"].as_i64().unwrap()).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(rules[0]["lowValueInclusive"], json!(1));
    assert_eq!(rules[0]["highValueInclusive"], json!(100));
    assert_eq!(rules[1]["currencies"], json!(["EUR"]));
    assert_eq!(rules[1]["countries"], json!(["DE", "FR"]));
    assert_eq!(rules[1]["highValueInclusive"], Value::Null);
    assert_eq!(rules[2]["lowValueInclusive"], Value::Null);
    assert_eq!(rules[2]["countries"], json!([]));
    let entry = &rules[0]["apps"][0];
    assert_eq!(entry["appId"], "SANDBOX_CARD");
    assert_eq!(entry["priority"], 1);
    assert_eq!(entry["availablePaymentMethods"], json!(CARDS_AND_PAYPAL));
    assert_eq!(entry["excludedPaymentMethods"], json!(["PAYPAL"]));
    assert_eq!(rules[0]["configurations"], rules[0]["apps"]);
    assert!(rules[0].get("rewardGroups").is_none(), "collect rules have no reward groups");

    // Read back: list, one, draft.
    assert_eq!(fx.get("/v1/schemes/collect").await.assert_status(200), &json!([scheme.clone()]));
    assert_eq!(fx.get(&format!("/v1/schemes/collect/{sid}")).await.assert_status(200), &scheme);
    assert_eq!(fx.get(&format!("/v1/schemes/collect/{}", sid.to_uppercase())).await.assert_status(200), &scheme);
    assert_eq!(fx.get(&format!("/v1/schemes/collect/{sid}/drafts/{d1}")).await.assert_status(200), first);
    // A collect scheme is not a payout scheme.
    fx.get(&format!("/v1/schemes/payout/{sid}")).await.assert_error(404, "SCHEME_NOT_FOUND");
    fx.get(&format!("/v1/schemes/collect/{sid}/drafts/published")).await.assert_error(404, "NO_PUBLISHED_DRAFT");

    // A second draft; names are unique per scheme ignoring case.
    let reversed: Vec<Value> = spec_collect_rules().as_array().unwrap().iter().rev().cloned().collect();
    let d2 = fx.add_draft("collect", &sid, json!({ "name": "Reversed", "rules": reversed })).await;
    let draft2 = fx.get(&format!("/v1/schemes/collect/{sid}/drafts/{d2}")).await.assert_status(200).clone();
    assert_eq!(draft2["code"], Value::Null);
    let priorities: Vec<i64> =
        draft2["rules"].as_array().unwrap().iter().map(|r| r["priority"].as_i64().unwrap()).collect();
    assert_eq!(priorities, [3, 2, 1], "rules are kept in saved order, not sorted by priority");
    let before = fx.everything().await;
    let dup =
        fx.post(&format!("/v1/schemes/collect/{sid}/drafts"), &json!({ "name": "checkout", "rules": reversed })).await;
    dup.assert_error(409, "DRAFT_NAME_ALREADY_EXISTS");
    assert_eq!(problems(&dup), [("DRAFT_NAME_ALREADY_EXISTS".to_string(), "name".to_string())]);
    let rename = fx
        .put(&format!("/v1/schemes/collect/{sid}/drafts/{d2}"), &json!({ "name": "CHECKOUT", "rules": reversed }))
        .await;
    rename.assert_error(409, "DRAFT_NAME_ALREADY_EXISTS");
    assert_eq!(fx.everything().await, before, "refused requests change nothing");

    // Update the unpublished draft: a whole replacement.
    fx.app.clock.advance(std::time::Duration::from_secs(5));
    let updated = fx
        .put(
            &format!("/v1/schemes/collect/{sid}/drafts/{d2}"),
            &json!({ "name": "Cards only", "code": "C2", "rules": [{ "apps": [card_entry(&["PAYPAL"])] }] }),
        )
        .await
        .assert_status(200)
        .clone();
    assert_eq!((updated["name"].as_str(), updated["code"].as_str()), (Some("Cards only"), Some("C2")));
    assert_eq!(updated["rules"].as_array().unwrap().len(), 1);
    assert_ne!(updated["lastModified"], draft2["lastModified"]);
    assert_eq!(fx.get(&format!("/v1/schemes/collect/{sid}/drafts/{d2}")).await.assert_status(200), &updated);

    // Publish the first draft.
    let published = fx.publish("collect", &sid, &d1).await;
    assert_eq!(published["publishedDraftId"], d1.as_str());
    assert_eq!(published["drafts"].as_array().unwrap().len(), 2);
    assert_eq!(fx.get(&format!("/v1/schemes/collect/{sid}/drafts/published")).await.assert_status(200), first);
    // Publishing it again changes nothing.
    assert_eq!(fx.publish("collect", &sid, &d1).await["publishedDraftId"], d1.as_str());

    // The published draft is immutable and undeletable.
    let before = fx.everything().await;
    let put = fx.put(&format!("/v1/schemes/collect/{sid}/drafts/{d1}"), &json!({ "name": "x", "rules": [] })).await;
    put.assert_error(400, "PUBLISHED_DRAFT_IMMUTABLE");
    let put = fx
        .put(&format!("/v1/schemes/collect/{sid}/drafts/{d1}"), &json!({ "name": "x", "rules": spec_collect_rules() }))
        .await;
    put.assert_error(400, "PUBLISHED_DRAFT_IMMUTABLE");
    fx.delete(&format!("/v1/schemes/collect/{sid}/drafts/{d1}")).await.assert_error(400, "PUBLISHED_DRAFT_IMMUTABLE");
    assert_eq!(fx.everything().await, before);

    // Publishing another draft switches; the former one can then be changed and deleted.
    let switched = fx.publish("collect", &sid, &d2).await;
    assert_eq!(switched["publishedDraftId"], d2.as_str());
    assert_eq!(fx.get(&format!("/v1/schemes/collect/{sid}/drafts/published")).await.assert_status(200), &updated);
    fx.put(&format!("/v1/schemes/collect/{sid}/drafts/{d1}"), &json!({ "name": "Old", "rules": spec_collect_rules() }))
        .await
        .assert_status(200);
    fx.delete(&format!("/v1/schemes/collect/{sid}/drafts/{d1}")).await.assert_status(204);
    fx.get(&format!("/v1/schemes/collect/{sid}/drafts/{d1}")).await.assert_error(404, "DRAFT_NOT_FOUND");
    let left = fx.get(&format!("/v1/schemes/collect/{sid}")).await.assert_status(200).clone();
    assert_eq!(left["drafts"].as_array().unwrap().len(), 1);

    // Unknown drafts and schemes, on every endpoint.
    let ghost = uuid::Uuid::new_v4().to_string();
    let before = fx.everything().await;
    let draft_paths = [
        (Method::GET, format!("/v1/schemes/collect/{sid}/drafts/{ghost}")),
        (Method::PUT, format!("/v1/schemes/collect/{sid}/drafts/{ghost}")),
        (Method::DELETE, format!("/v1/schemes/collect/{sid}/drafts/{ghost}")),
        (Method::POST, format!("/v1/schemes/collect/{sid}/drafts/{ghost}/publish")),
        (Method::POST, format!("/v1/schemes/collect/{sid}/drafts/{ghost}/simulate")),
    ];
    let body = json!({ "name": "Ghost", "rules": spec_collect_rules(), "cases": [{ "amount": 1, "currency": "EUR", "country": "DE" }] });
    for (method, path) in &draft_paths {
        let reply = fx.app.send(method.clone(), path, Some(&fx.token), &[], Some(&body)).await;
        reply.assert_error(404, "DRAFT_NOT_FOUND");
        let on_ghost_scheme = path.replace(&sid, &ghost);
        let reply = fx.app.send(method.clone(), &on_ghost_scheme, Some(&fx.token), &[], Some(&body)).await;
        reply.assert_error(404, "SCHEME_NOT_FOUND");
    }
    for (method, path) in [
        (Method::GET, format!("/v1/schemes/collect/{ghost}")),
        (Method::DELETE, format!("/v1/schemes/collect/{ghost}")),
        (Method::GET, format!("/v1/schemes/collect/{ghost}/drafts/published")),
        (Method::POST, format!("/v1/schemes/collect/{ghost}/drafts")),
        (Method::GET, format!("/v1/schemes/collect/{ghost}/options?amount=1&currency=EUR&country=DE")),
    ] {
        let reply = fx.app.send(method, &path, Some(&fx.token), &[], Some(&body)).await;
        reply.assert_error(404, "SCHEME_NOT_FOUND");
    }
    assert_eq!(fx.everything().await, before);

    // Deleting the scheme takes its drafts (even the published one).
    fx.delete(&format!("/v1/schemes/collect/{sid}")).await.assert_status(204);
    fx.get(&format!("/v1/schemes/collect/{sid}")).await.assert_error(404, "SCHEME_NOT_FOUND");
    fx.get(&format!("/v1/schemes/collect/{sid}/drafts/{d2}")).await.assert_error(404, "SCHEME_NOT_FOUND");
    fx.delete(&format!("/v1/schemes/collect/{sid}")).await.assert_error(404, "SCHEME_NOT_FOUND");
    assert_eq!(fx.get("/v1/schemes/collect").await.body, json!([]));
}

#[tokio::test]
async fn drafts_are_validated_in_full_and_refusals_change_nothing() {
    let fx = Fx::new().await;
    fx.install("SANDBOX_CARD").await;
    fx.install("SANDBOX_REWARDS").await;
    let coffee = fx.group("Coffee", json!([STARBUCKS_EUR_10, NERO_EUR])).await;
    let scheme = fx.create("collect", json!({ "name": "Valid", "rules": spec_collect_rules() })).await;
    let sid = scheme["schemeId"].as_str().unwrap().to_string();
    let did = scheme["drafts"][0]["draftId"].as_str().unwrap().to_string();
    let before = fx.everything().await;

    // Every problem of a collect draft at once, each with its field.
    let bad_collect = json!({
        "name": " ",
        "code": "x".repeat(101),
        "rules": [
            { "currencies": ["EUR", "EURO", ""], "countries": ["UK", "XX"], "lowValueInclusive": 0,
              "highValueInclusive": "ten",
              "apps": [
                  { "appId": "SANDBOX_CARD", "excludedPaymentMethods": ["VISA", "BANK_TRANSFER", "nope"] },
                  { "appId": "SANDBOX_BANK" },
                  { "appId": "no such app!" },
                  { "appId": "" },
                  { "appId": "sandbox-card" },
              ] },
            { "apps": [{ "appId": "SANDBOX_REWARDS" }], "rewardGroups": [{ "rewardGroupId": coffee }] },
            { "currencies": ["GBP"], "lowValueInclusive": 50, "highValueInclusive": 10.555 },
            { "lowValueInclusive": 20, "highValueInclusive": 10, "apps": [] },
        ],
    });
    let expected = [
        ("FIELD_REQUIRED", "name"),
        ("FIELD_TOO_LONG", "code"),
        ("INVALID_CURRENCY", "rules[0].currencies[1]"),
        ("INVALID_COUNTRY", "rules[0].countries[1]"),
        ("INVALID_VALUE_RANGE", "rules[0].lowValueInclusive"),
        ("INVALID_VALUE_RANGE", "rules[0].highValueInclusive"),
        ("INVALID_PAYMENT_METHOD", "rules[0].apps[0].excludedPaymentMethods[1]"),
        ("INVALID_PAYMENT_METHOD", "rules[0].apps[0].excludedPaymentMethods[2]"),
        ("APP_NOT_INSTALLED", "rules[0].apps[1].appId"),
        ("APP_NOT_INSTALLED", "rules[0].apps[2].appId"),
        ("FIELD_REQUIRED", "rules[0].apps[3].appId"),
        ("DUPLICATE_APP_IN_RULE", "rules[0].apps[4].appId"),
        ("APP_DIRECTION_NOT_SUPPORTED", "rules[1].apps[0].appId"),
        ("REWARD_GROUPS_NOT_ALLOWED", "rules[1].rewardGroups"),
        ("INVALID_AMOUNT_PRECISION", "rules[2].highValueInclusive"),
        ("RULE_REQUIRES_APP", "rules[2].apps"),
        ("RULE_REQUIRES_APP", "rules[3].apps"),
        ("INVALID_VALUE_RANGE", "rules[3].highValueInclusive"),
    ];
    let reply = fx.post("/v1/schemes/collect", &bad_collect).await;
    assert_problems(&reply, &expected);
    let method = reply.body["errors"].as_array().unwrap().iter().find(|e| e["errorCode"] == "INVALID_PAYMENT_METHOD");
    assert_eq!(method.unwrap()["metadata"]["appId"], "SANDBOX_CARD", "{}", reply.text);
    // The same checks guard new drafts and updates.
    assert_problems(&fx.post(&format!("/v1/schemes/collect/{sid}/drafts"), &bad_collect).await, &expected);
    assert_problems(&fx.put(&format!("/v1/schemes/collect/{sid}/drafts/{did}"), &bad_collect).await, &expected);

    // No rules at all; a payout scheme's own problems.
    let reply = fx.post("/v1/schemes/collect", &json!({ "name": "Empty" })).await;
    assert_problems(&reply, &[("RULES_REQUIRED", "rules")]);
    let reply = fx.post("/v1/schemes/payout", &json!({ "name": "Empty", "rules": [] })).await;
    assert_problems(&reply, &[("RULES_REQUIRED", "rules")]);
    let ghost_group = uuid::Uuid::new_v4().to_string();
    let bad_payout = json!({
        "name": "Bad payout",
        "rules": [
            { "currencies": ["EUR"] },
            { "apps": [{ "appId": "SANDBOX_REWARDS", "excludedPaymentMethods": ["GIFT_CARD", "VISA"] }],
              "rewardGroups": [
                  { "rewardGroupId": ghost_group },
                  { "rewardGroupId": coffee, "exclusions": [NERO_EUR.to_uppercase(), AMAZON_DE] },
                  { "rewardGroupId": coffee.to_uppercase() },
              ] },
        ],
    });
    let reply = fx.post("/v1/schemes/payout", &bad_payout).await;
    assert_problems(
        &reply,
        &[
            ("RULE_REQUIRES_APP_OR_REWARD_GROUP", "rules[0]"),
            ("INVALID_PAYMENT_METHOD", "rules[1].apps[0].excludedPaymentMethods[1]"),
            ("REWARD_GROUP_NOT_FOUND", "rules[1].rewardGroups[0].rewardGroupId"),
            ("EXCLUSION_NOT_IN_REWARD_GROUP", "rules[1].rewardGroups[1].exclusions[1]"),
            ("DUPLICATE_REWARD_GROUP_IN_RULE", "rules[1].rewardGroups[2].rewardGroupId"),
        ],
    );

    // Malformed bodies.
    fx.post("/v1/schemes/collect", &json!({ "name": "x", "rules": "all" }))
        .await
        .assert_error(400, "INVALID_REQUEST_BODY");
    let reply =
        fx.app.post_raw("/v1/schemes/collect", &[("authorization", &format!("Bearer {}", fx.token))], "{}").await;
    reply.assert_error(415, "UNSUPPORTED_MEDIA_TYPE");

    assert_eq!(fx.everything().await, before, "refused requests change nothing");

    // A valid payout draft: direction-filtered methods, UK = GB, ids normalised.
    let good = fx
        .create(
            "payout",
            json!({ "name": "Payout", "rules": [{
                "currencies": ["gbp"], "countries": ["uk"],
                "apps": [{ "appId": "sandbox-rewards", "excludedPaymentMethods": ["donation", ""] }],
                "rewardGroups": [{ "rewardGroupId": coffee.to_uppercase(), "exclusions": [NERO_EUR.to_uppercase()] }],
            }] }),
        )
        .await;
    let rule = &good["drafts"][0]["rules"][0];
    assert_eq!(rule["countries"], json!(["GB"]));
    assert_eq!(rule["currencies"], json!(["GBP"]));
    assert_eq!(rule["apps"][0]["appId"], "SANDBOX_REWARDS");
    assert_eq!(rule["apps"][0]["priority"], Value::Null);
    assert_eq!(rule["apps"][0]["excludedPaymentMethods"], json!(["DONATION"]));
    assert_eq!(
        rule["apps"][0]["availablePaymentMethods"],
        json!(["GIFT_CARD", "REWARD_LINK", "DONATION", "CASH_EQUIVALENT"])
    );
    assert_eq!(rule["rewardGroups"], json!([{ "rewardGroupId": coffee, "exclusions": [NERO_EUR] }]));

    // SANDBOX_BANK offers DIRECT_DEBIT when collecting and BANK_TRANSFER when paying out.
    fx.install("SANDBOX_BANK").await;
    let bank = |excluded: &str| json!({ "name": "Bank", "rules": [{ "apps": [{ "appId": "SANDBOX_BANK", "excludedPaymentMethods": [excluded] }] }] });
    let c = fx.create("collect", bank("direct-debit")).await;
    assert_eq!(c["drafts"][0]["rules"][0]["apps"][0]["availablePaymentMethods"], json!(["DIRECT_DEBIT"]));
    let p = fx.create("payout", bank("bank_transfer")).await;
    assert_eq!(p["drafts"][0]["rules"][0]["apps"][0]["availablePaymentMethods"], json!(["BANK_TRANSFER"]));
    let reply = fx.post("/v1/schemes/payout", &bank("DIRECT_DEBIT")).await;
    assert_problems(&reply, &[("INVALID_PAYMENT_METHOD", "rules[0].apps[0].excludedPaymentMethods[0]")]);
}

#[tokio::test]
async fn app_entries_come_as_apps_or_configurations() {
    let fx = Fx::new().await;
    fx.install("SANDBOX_CARD").await;

    // The models' form: `apps` without priorities.
    let apps =
        fx.create("collect", json!({ "name": "Apps", "rules": [{ "apps": [{ "appId": "SANDBOX_CARD" }] }] })).await;
    let rule = &apps["drafts"][0]["rules"][0];
    assert_eq!(rule["apps"], rule["configurations"]);
    assert_eq!(rule["apps"][0]["priority"], Value::Null);

    // The tutorials' form: `configurations` with priorities, property names in any case.
    let conf = fx
        .create(
            "collect",
            json!({ "Name": "Configurations", "Code": "T1", "Rules": [{
                "Priority": 7, "Currencies": ["EUR"],
                "Configurations": [{ "AppId": "SANDBOX_CARD", "Priority": 3, "ExcludedPaymentMethods": ["PAYPAL"] }],
            }] }),
        )
        .await;
    let rule = &conf["drafts"][0]["rules"][0];
    assert_eq!(conf["drafts"][0]["code"], "T1");
    assert_eq!(rule["priority"], 7);
    assert_eq!(rule["configurations"][0]["priority"], 3);
    assert_eq!(rule["configurations"][0]["excludedPaymentMethods"], json!(["PAYPAL"]));
    assert_eq!(rule["apps"], rule["configurations"]);

    // Both, describing the same entries (as Baton's own output does): accepted.
    let echoed = json!({ "name": "Echo", "rules": conf["drafts"][0]["rules"].clone() });
    let echo = fx.create("collect", echoed).await;
    assert_eq!(echo["drafts"][0]["rules"], conf["drafts"][0]["rules"]);
    let loose = json!({ "name": "Loose", "rules": [{
        "apps": [{ "appId": "sandbox-card", "excludedPaymentMethods": ["paypal"] }],
        "configurations": [{ "appId": "SANDBOX_CARD", "priority": 2, "excludedPaymentMethods": ["PAYPAL"] }],
    }] });
    let loose = fx.create("collect", loose).await;
    assert_eq!(loose["drafts"][0]["rules"][0]["apps"][0]["priority"], 2);

    // Both, but different: refused, naming the rule.
    let before = fx.everything().await;
    for configurations in [
        json!([{ "appId": "SANDBOX_BANK" }]),
        json!([{ "appId": "SANDBOX_CARD", "excludedPaymentMethods": ["VISA"] }]),
        json!([{ "appId": "SANDBOX_CARD", "priority": 9 }]),
        json!([]),
    ] {
        let body = json!({ "name": "Mismatch", "rules": [
            { "apps": [{ "appId": "SANDBOX_CARD" }] },
            { "apps": [{ "appId": "SANDBOX_CARD", "priority": 1 }], "configurations": configurations },
        ] });
        let reply = fx.post("/v1/schemes/collect", &body).await;
        assert_problems(&reply, &[("APPS_CONFIGURATIONS_MISMATCH", "rules[1].configurations")]);
    }
    assert_eq!(fx.everything().await, before);
}

// -------------------------------------------------------------------------------------------
// Options
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn collect_options_reproduce_the_spec_cases() {
    let fx = Fx::new().await;
    fx.install("SANDBOX_CARD").await;
    let scheme = fx.create("collect", json!({ "name": "Spec", "rules": spec_collect_rules() })).await;
    let sid = scheme["schemeId"].as_str().unwrap().to_string();
    let did = scheme["drafts"][0]["draftId"].as_str().unwrap().to_string();

    // Nothing published yet.
    fx.options("collect", &sid, "amount=10&currency=EUR&country=DE").await.assert_error(404, "NO_PUBLISHED_DRAFT");
    fx.publish("collect", &sid, &did).await;

    // (case, query, expected rule, its index, the methods offered)
    type Case = (&'static str, &'static str, &'static str, Option<u64>, &'static [&'static str]);
    let cases: [Case; 6] = [
        ("C1", "amount=200.00&currency=EUR&country=DE", "R2", Some(1), &CARDS_AND_PAYPAL),
        ("C2", "amount=200.00&currency=EUR&country=ES", "R3", Some(2), &["PAYPAL"]),
        ("C3", "amount=100.00&currency=EUR&country=FR", "R1", Some(0), &CARDS),
        ("C4", "amount=101.00&currency=EUR&country=DE", "R2", Some(1), &CARDS_AND_PAYPAL),
        ("C5", "amount=100.50&currency=EUR&country=DE", "R3", Some(2), &["PAYPAL"]),
        ("C6", "amount=50.00&currency=GBP&country=DE", "none", None, &[]),
    ];
    for (name, query, rule, index, methods) in cases {
        let reply = fx.options("collect", &sid, query).await;
        let body = reply.assert_status(200);
        assert_eq!(body["schemeId"], sid.as_str(), "{name}");
        assert_eq!(body["draftId"], did.as_str(), "{name}");
        assert_eq!(body["ruleIndex"].as_u64(), index, "{name} → {rule}");
        assert_eq!(method_ids(&body["paymentMethods"]), strings(methods), "{name} → {rule}");
    }
    let body = fx.options("collect", &sid, "amount=200&currency=EUR&country=DE").await.assert_status(200).clone();
    assert_eq!(
        body["paymentMethods"][0],
        json!({ "appId": "SANDBOX_CARD", "paymentMethodId": "VISA", "name": "Visa", "priority": 1 })
    );
    // Codes in any case, `UK` = `GB`, parameter names in any case.
    let body = fx.options("collect", &sid, "Amount=20&Currency=eur&Country=uk").await.assert_status(200).clone();
    assert_eq!(body["ruleIndex"], 0);
    // matchType means nothing to collect schemes.
    fx.options("collect", &sid, "amount=20&currency=EUR&country=DE&matchType=nope").await.assert_status(200);

    // Parameters are validated, every one reported.
    let refusals: [(&str, &[(&str, &str)]); 9] = [
        ("currency=EUR&country=DE", &[("INVALID_AMOUNT", "amount")]),
        ("amount=&currency=EUR&country=DE", &[("INVALID_AMOUNT", "amount")]),
        ("amount=abc&currency=EUR&country=DE", &[("INVALID_AMOUNT", "amount")]),
        ("amount=0&currency=EUR&country=DE", &[("INVALID_AMOUNT", "amount")]),
        ("amount=-5&currency=EUR&country=DE", &[("INVALID_AMOUNT", "amount")]),
        ("amount=1.001&currency=EUR&country=DE", &[("INVALID_AMOUNT_PRECISION", "amount")]),
        ("amount=1&currency=XXX&country=DE", &[("INVALID_CURRENCY", "currency")]),
        ("amount=1&currency=EUR&country=ZZ", &[("INVALID_COUNTRY", "country")]),
        ("", &[("INVALID_AMOUNT", "amount"), ("INVALID_CURRENCY", "currency"), ("INVALID_COUNTRY", "country")]),
    ];
    for (query, expected) in refusals {
        assert_problems(&fx.options("collect", &sid, query).await, expected);
    }

    // Who may ask: collect readers and transaction readers, not payout readers.
    let tx = fx.token_with(&["tenant-transaction-read"]).await;
    let path = format!("/v1/schemes/collect/{sid}/options?amount=10&currency=EUR&country=DE");
    assert_eq!(fx.app.get(&path, &tx).await.assert_status(200)["ruleIndex"], 0);
    fx.app.get(&format!("/v1/schemes/collect/{sid}"), &tx).await.assert_error(403, "ROLE_REQUIRED");
    let ps = fx.token_with(&["tenant-payout-scheme-write"]).await;
    fx.app.get(&path, &ps).await.assert_error(403, "ROLE_REQUIRED");
    let cs = fx.token_with(&["tenant-collect-scheme-read"]).await;
    fx.app.get(&path, &cs).await.assert_status(200);
    fx.app.post("/v1/schemes/collect", &cs, &json!({})).await.assert_error(403, "ROLE_REQUIRED");
}

/// SPEC §4.6 payout tests with sandbox rewards. Groups: Amazon = {amazon.co.uk, amazon.de,
/// amazon.fr}; Coffee = {Starbucks €10, Starbucks £5, Caffè Nero EUR 5–50 (whole), Costa €10,
/// Costa €20}. Rules: R1 EUR/any/1–20 → both groups; R2 EUR/any/21–any → Amazon.
#[tokio::test]
async fn payout_options_reproduce_the_spec_cases() {
    let fx = Fx::new().await;
    fx.install("SANDBOX_REWARDS").await;
    fx.install("SANDBOX_CARD").await;
    let amazon = fx.group("Amazon", json!([AMAZON_UK, AMAZON_DE, AMAZON_FR])).await;
    let coffee = fx
        .group("Coffee Shops", json!([STARBUCKS_EUR_10, STARBUCKS_GBP_5, NERO_EUR, COSTA_EUR_10, COSTA_EUR_20]))
        .await;
    let rules = |r2_exclusions: &[&str]| {
        json!([
            { "currencies": ["EUR"], "lowValueInclusive": 1, "highValueInclusive": 20,
              "rewardGroups": [{ "rewardGroupId": amazon }, { "rewardGroupId": coffee }] },
            { "currencies": ["EUR"], "lowValueInclusive": 21,
              "apps": [{ "appId": "SANDBOX_CARD", "priority": 2, "excludedPaymentMethods": ["PAYPAL", "MAESTRO"] }],
              "rewardGroups": [{ "rewardGroupId": amazon, "exclusions": r2_exclusions }] },
        ])
    };
    let scheme = fx.create("payout", json!({ "name": "Rewards", "rules": rules(&[]) })).await;
    let sid = scheme["schemeId"].as_str().unwrap().to_string();
    let d1 = scheme["drafts"][0]["draftId"].as_str().unwrap().to_string();
    assert_eq!(
        scheme["drafts"][0]["rules"][0]["rewardGroups"][1],
        json!({ "rewardGroupId": coffee, "exclusions": [] })
    );
    fx.options("payout", &sid, "amount=10&currency=EUR&country=DE").await.assert_error(404, "NO_PUBLISHED_DRAFT");
    fx.publish("payout", &sid, &d1).await;

    let offered = |query: &'static str| {
        let fx = &fx;
        let sid = sid.clone();
        async move {
            let reply = fx.options("payout", &sid, query).await;
            let body = reply.assert_status(200).clone();
            (body["ruleIndex"].as_u64(), reward_ids(&body["rewards"]), body)
        }
    };

    // P1: DE EUR 120.00 → R2 → amazon.de only (plus R2's payout app methods, EXT).
    let (rule, ids, body) = offered("amount=120.00&currency=EUR&country=DE").await;
    assert_eq!((rule, ids), (Some(1), strings(&[AMAZON_DE])));
    assert_eq!(body["draftId"], d1.as_str());
    assert_eq!(body["matchType"], "Exact");
    assert_eq!(method_ids(&body["paymentMethods"]), strings(&["VISA", "MASTERCARD", "AMERICAN-EXPRESS", "DISCOVER"]));
    assert_eq!(body["paymentMethods"][0]["priority"], 2);
    // The Reward model (SPEC §4.8).
    let reward = &body["rewards"][0];
    assert_eq!(reward["rewardName"], "Amazon.de Gift Card (EUR)");
    assert_eq!(reward["rewardType"], "gift card");
    assert_eq!(reward["status"], "active");
    assert_eq!(reward["countries"], json!(["DE", "AT"]));
    assert_eq!(reward["currencyCode"], "EUR");
    assert_eq!(reward["exchangeRateRule"], Value::Null);
    assert_eq!(reward["isWholeAmountValueRequired"], false);
    assert_eq!(reward["valueType"], "VARIABLE_VALUE");
    assert_eq!(
        (reward["fixedValue"].clone(), reward["minValue"].clone(), reward["maxValue"].clone()),
        (Value::Null, json!(1), json!(500))
    );
    assert_eq!(reward["credentialTypes"], json!(["cardCode"]));
    assert!(reward["redemptionInstructions"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(reward["tags"], json!([]));
    assert_eq!(reward["app"], json!({ "appId": "SANDBOX_REWARDS", "name": "Sandbox Rewards" }));
    assert_eq!(reward["createdDate"], "2024-01-01T09:00:00.000Z");
    assert!(reward["lastUpdateDate"].is_string());
    let brand = &reward["brand"];
    assert_eq!((brand["brandKey"].as_str(), brand["status"].as_str()), (Some("amazon-de"), Some("active")));
    for field in ["brandName", "description", "shortDescription", "disclaimer", "terms"] {
        assert!(brand[field].is_string(), "brand.{field}: {brand}");
    }
    let image = &brand["imageUrls"][0];
    assert!(image["ppi"].is_u64() && image["width"].is_u64() && image["url"].as_str().unwrap().starts_with('/'));
    for field in
        ["alwaysShowDisclaimer", "disclaimerInstructions", "displayInstructions", "termsAndConditionsInstructions"]
    {
        assert!(!brand["requirements"][field].is_null(), "requirements.{field}");
    }
    // FR gets the French card instead.
    assert_eq!(offered("amount=120&currency=EUR&country=FR").await.1, strings(&[AMAZON_FR]));

    // P3: DE EUR 10.00 → R1 → amazon.de + the coffee rewards valid for DE, EUR and €10.
    let (rule, ids, body) = offered("amount=10.00&currency=EUR&country=DE").await;
    assert_eq!((rule, ids), (Some(0), strings(&[AMAZON_DE, STARBUCKS_EUR_10, NERO_EUR, COSTA_EUR_10])));
    assert_eq!(body["paymentMethods"], json!([]), "R1 has no payout apps");
    // matchType: Exact (default) needs fixed values equal to the amount; Max takes those below it.
    assert_eq!(offered("amount=15&currency=EUR&country=DE").await.1, strings(&[AMAZON_DE, NERO_EUR]));
    assert_eq!(offered("amount=15&currency=EUR&country=DE&matchType=Exact").await.1, strings(&[AMAZON_DE, NERO_EUR]));
    let (_, ids, body) = offered("amount=15&currency=EUR&country=DE&matchType=max").await;
    assert_eq!(ids, strings(&[AMAZON_DE, STARBUCKS_EUR_10, NERO_EUR, COSTA_EUR_10]));
    assert_eq!(body["matchType"], "Max");
    // Caffè Nero needs a whole amount.
    let (_, ids, _) = offered("amount=15.50&currency=EUR&country=DE&MatchType=MAX").await;
    assert_eq!(ids, strings(&[AMAZON_DE, STARBUCKS_EUR_10, COSTA_EUR_10]));
    assert_eq!(offered("amount=20&currency=EUR&country=DE&matchType=Max").await.1.len(), 5);

    // P4: DE EUR 20.50 → between R1 and R2 → nothing.
    let (rule, ids, body) = offered("amount=20.50&currency=EUR&country=DE").await;
    assert_eq!((rule, ids), (None, Vec::<String>::new()));
    assert_eq!(body["paymentMethods"], json!([]));
    // No rule for GBP at all.
    assert_eq!(offered("amount=10&currency=GBP&country=GB").await.0, None);

    // A disabled group member is hidden at once (no republication needed).
    let members = json!([
        { "rewardId": STARBUCKS_EUR_10, "enabled": false },
        { "rewardId": STARBUCKS_GBP_5, "enabled": true },
        { "rewardId": NERO_EUR, "enabled": true },
        { "rewardId": COSTA_EUR_10, "enabled": true },
        { "rewardId": COSTA_EUR_20, "enabled": true },
    ]);
    fx.put(&format!("/v1/reward-groups/{coffee}"), &json!({ "name": "Coffee Shops", "rewards": members }))
        .await
        .assert_status(200);
    assert_eq!(offered("amount=10&currency=EUR&country=DE").await.1, strings(&[AMAZON_DE, NERO_EUR, COSTA_EUR_10]));

    // P2: R2 excluding amazon.de → nothing for P1's query.
    let d2 = fx.add_draft("payout", &sid, json!({ "name": "Without amazon.de", "rules": rules(&[AMAZON_DE]) })).await;
    fx.publish("payout", &sid, &d2).await;
    let (rule, ids, body) = offered("amount=120.00&currency=EUR&country=DE").await;
    assert_eq!((rule, ids), (Some(1), Vec::<String>::new()));
    assert_eq!(body["draftId"], d2.as_str());
    assert_eq!(offered("amount=120&currency=EUR&country=FR").await.1, strings(&[AMAZON_FR]));

    // Parameters.
    let reply = fx.options("payout", &sid, "amount=10&currency=EUR&country=DE&matchType=Nearest").await;
    assert_problems(&reply, &[("INVALID_MATCH_TYPE", "matchType")]);
    let reply = fx.options("payout", &sid, "amount=0&currency=EUR&country=DE&matchType=Nearest").await;
    assert_problems(&reply, &[("INVALID_AMOUNT", "amount"), ("INVALID_MATCH_TYPE", "matchType")]);
    // Who may ask: payout readers and transaction readers.
    let path = format!("/v1/schemes/payout/{sid}/options?amount=10&currency=EUR&country=DE");
    for roles in [["tenant-transaction-read"], ["tenant-payout-scheme-read"]] {
        fx.app.get(&path, &fx.token_with(&roles).await).await.assert_status(200);
    }
    fx.app.get(&path, &fx.token_with(&["tenant-collect-scheme-write"]).await).await.assert_error(403, "ROLE_REQUIRED");
}

// -------------------------------------------------------------------------------------------
// Publication
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn publication_revalidates_what_the_draft_references() {
    let fx = Fx::new().await;
    fx.install("SANDBOX_REWARDS").await;
    fx.install("SANDBOX_CARD").await;
    let coffee = fx.group("Coffee", json!([STARBUCKS_EUR_10, NERO_EUR])).await;
    let spare = fx.group("Spare", json!([AMAZON_DE])).await;
    let payout = fx
        .create(
            "payout",
            json!({ "name": "Payout", "rules": [
                { "rewardGroups": [{ "rewardGroupId": spare }] },
                { "rewardGroups": [{ "rewardGroupId": coffee, "exclusions": [NERO_EUR] }] },
            ] }),
        )
        .await;
    let sid = payout["schemeId"].as_str().unwrap().to_string();
    let did = payout["drafts"][0]["draftId"].as_str().unwrap().to_string();

    // The group no longer holds the excluded reward.
    fx.put(&format!("/v1/reward-groups/{coffee}"), &json!({ "name": "Coffee", "rewards": [STARBUCKS_EUR_10] }))
        .await
        .assert_status(200);
    let before = fx.everything().await;
    let reply = fx.post(&format!("/v1/schemes/payout/{sid}/drafts/{did}/publish"), &json!({})).await;
    assert_problems(&reply, &[("EXCLUSION_NOT_IN_REWARD_GROUP", "rules[1].rewardGroups[0].exclusions[0]")]);
    assert_eq!(fx.everything().await, before);

    // A group it names was deleted (allowed while only unpublished drafts name it).
    fx.put(
        &format!("/v1/reward-groups/{coffee}"),
        &json!({ "name": "Coffee", "rewards": [STARBUCKS_EUR_10, NERO_EUR] }),
    )
    .await
    .assert_status(200);
    fx.delete(&format!("/v1/reward-groups/{spare}")).await.assert_status(204);
    let before = fx.everything().await;
    let reply = fx.post(&format!("/v1/schemes/payout/{sid}/drafts/{did}/publish"), &json!({})).await;
    assert_problems(&reply, &[("REWARD_GROUP_NOT_FOUND", "rules[0].rewardGroups[0].rewardGroupId")]);
    assert_eq!(fx.everything().await, before);
    assert_eq!(fx.get(&format!("/v1/schemes/payout/{sid}")).await.body["publishedDraftId"], "");
    // New drafts cannot name it either.
    let reply = fx
        .post(
            &format!("/v1/schemes/payout/{sid}/drafts"),
            &json!({ "name": "Again", "rules": [{ "rewardGroups": [{ "rewardGroupId": spare }] }] }),
        )
        .await;
    assert_problems(&reply, &[("REWARD_GROUP_NOT_FOUND", "rules[0].rewardGroups[0].rewardGroupId")]);

    // Once published, the group a draft names cannot be deleted (REWARD_GROUP_IN_USE).
    let fixed = fx
        .add_draft(
            "payout",
            &sid,
            json!({ "name": "Fixed", "rules": [{ "rewardGroups": [{ "rewardGroupId": coffee }] }] }),
        )
        .await;
    assert_eq!(fx.publish("payout", &sid, &fixed).await["publishedDraftId"], fixed.as_str());
    fx.delete(&format!("/v1/reward-groups/{coffee}")).await.assert_error(400, "REWARD_GROUP_IN_USE");

    // An app a draft names has vanished (the API refuses to uninstall it, so the state is
    // arranged in the database, as after a restore).
    let collect = fx.create("collect", json!({ "name": "Cards", "rules": [{ "apps": [card_entry(&[])] }] })).await;
    let csid = collect["schemeId"].as_str().unwrap().to_string();
    let cdid = collect["drafts"][0]["draftId"].as_str().unwrap().to_string();
    fx.app
        .execute_sql(&format!(
            "DELETE FROM installed_apps WHERE tenant_id = '{}' AND app_id = 'SANDBOX_CARD'",
            fx.tenant
        ))
        .await;
    let before = fx.everything().await;
    let reply = fx.post(&format!("/v1/schemes/collect/{csid}/drafts/{cdid}/publish"), &json!({})).await;
    assert_problems(&reply, &[("APP_NOT_INSTALLED", "rules[0].apps[0].appId")]);
    assert_eq!(fx.everything().await, before);
    // Reinstalled, it publishes.
    fx.install("SANDBOX_CARD").await;
    assert_eq!(fx.publish("collect", &csid, &cdid).await["publishedDraftId"], cdid.as_str());
}

/// Options requests racing repeated publications between two drafts only ever see one draft
/// whole: the outcome always belongs to the draft the response names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publication_is_atomic_for_concurrent_option_requests() {
    let fx = Fx::new().await;
    fx.install("SANDBOX_CARD").await;
    let cards = json!({ "name": "Cards", "rules": [
        { "currencies": ["GBP"], "apps": [card_entry(&[])] },
        { "currencies": ["EUR"], "apps": [card_entry(&["PAYPAL"])] },
    ] });
    let scheme = fx.create("collect", cards).await;
    let sid = scheme["schemeId"].as_str().unwrap().to_string();
    let a = scheme["drafts"][0]["draftId"].as_str().unwrap().to_string();
    let b = fx
        .add_draft(
            "collect",
            &sid,
            json!({ "name": "PayPal", "rules": [{ "currencies": ["EUR"], "apps": [card_entry(&CARDS)] }] }),
        )
        .await;
    fx.publish("collect", &sid, &a).await;
    // Reads go through a second node on the same database.
    let peer = fx.app.spawn_peer().await;
    let options_url =
        format!("http://{}/v1/schemes/collect/{sid}/options?amount=10&currency=EUR&country=DE", peer.addr);

    let done = std::sync::atomic::AtomicBool::new(false);
    let publisher = async {
        for i in 0..40 {
            let draft = if i % 2 == 0 { &b } else { &a };
            fx.publish("collect", &sid, draft).await;
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
    };
    let reader = async {
        let mut seen = BTreeSet::new();
        let mut reads = 0;
        while !done.load(std::sync::atomic::Ordering::SeqCst) || reads < 20 {
            let reply =
                common::read(fx.app.client.get(&options_url).bearer_auth(&fx.token).send().await.unwrap()).await;
            let body = reply.assert_status(200);
            let draft = body["draftId"].as_str().unwrap().to_string();
            let (index, methods) = (body["ruleIndex"].as_u64(), method_ids(&body["paymentMethods"]));
            if draft == a {
                assert_eq!((index, methods), (Some(1), strings(&CARDS)), "draft A's outcome");
            } else {
                assert_eq!(draft, b, "one of the two drafts");
                assert_eq!((index, methods), (Some(0), strings(&["PAYPAL"])), "draft B's outcome");
            }
            seen.insert(draft);
            reads += 1;
        }
        (seen, reads)
    };
    let ((), (seen, reads)) = tokio::join!(publisher, reader);
    assert!(reads >= 20 && !seen.is_empty());
    eprintln!("{reads} reads saw {} draft(s)", seen.len());
    peer.shutdown().await.unwrap();
}

// -------------------------------------------------------------------------------------------
// Simulation
// -------------------------------------------------------------------------------------------

fn case(amount: Value, currency: &str, country: &str) -> Value {
    json!({ "amount": amount, "currency": currency, "country": country })
}

#[tokio::test]
async fn simulation_flags_the_cases_a_publication_would_change() {
    let fx = Fx::new().await;
    fx.install("SANDBOX_CARD").await;
    let scheme = fx.create("collect", json!({ "name": "Spec", "rules": spec_collect_rules() })).await;
    let sid = scheme["schemeId"].as_str().unwrap().to_string();
    let spec = scheme["drafts"][0]["draftId"].as_str().unwrap().to_string();
    let simulate = |draft: &str, cases: Value| {
        let path = format!("/v1/schemes/collect/{sid}/drafts/{draft}/simulate");
        let fx = &fx;
        async move { fx.post(&path, &json!({ "cases": cases })).await }
    };
    let spec_cases = json!([
        case(json!(200), "EUR", "DE"),
        case(json!("200.00"), "EUR", "ES"),
        case(json!(100), "EUR", "FR"),
        case(json!(101), "eur", "de"),
        case(json!(100.5), "EUR", "DE"),
        case(json!(50), "GBP", "UK"),
    ]);

    // Nothing published: every case would change (from 404 to the draft's outcome).
    let reply = simulate(&spec, spec_cases.clone()).await;
    let body = reply.assert_status(200);
    assert_eq!((body["draftId"].as_str(), body["publishedDraftId"].as_str()), (Some(spec.as_str()), Some("")));
    assert_eq!(body["changedCount"], 6);
    let first = &body["cases"][0];
    assert_eq!(
        (first["amount"].clone(), first["currency"].clone(), first["country"].clone()),
        (json!(200), json!("EUR"), json!("DE"))
    );
    assert_eq!(first["published"], Value::Null);
    assert_eq!(first["changed"], true);
    assert_eq!(first["draft"]["ruleIndex"], 1);
    assert_eq!(method_ids(&first["draft"]["options"]), strings(&CARDS_AND_PAYPAL));
    assert_eq!(body["cases"][4]["amount"], json!(100.5));
    assert_eq!(body["cases"][5]["country"], "GB");
    assert_eq!(body["cases"][5]["draft"], json!({ "ruleIndex": null, "options": [] }));

    // Publish it; simulating the published draft itself changes nothing.
    fx.publish("collect", &sid, &spec).await;
    let body = simulate(&spec, spec_cases.clone()).await.assert_status(200).clone();
    assert_eq!(body["changedCount"], 0);
    for c in body["cases"].as_array().unwrap() {
        assert_eq!((c["draft"].clone(), c["changed"].clone()), (c["published"].clone(), json!(false)));
    }

    // A candidate: R1 reaches 150 (C4 and C5 move to R1), R3 offers Maestro instead of PayPal
    // (C2 keeps its rule but changes options), and GBP gets a rule (C6).
    let candidate = json!([
        { "currencies": ["EUR"], "lowValueInclusive": 1, "highValueInclusive": 150, "apps": [card_entry(&["PAYPAL"])] },
        { "currencies": ["EUR"], "countries": ["DE", "FR"], "lowValueInclusive": 151, "apps": [card_entry(&[])] },
        { "currencies": ["EUR"], "apps": [card_entry(&["VISA", "MASTERCARD", "AMERICAN-EXPRESS", "DISCOVER", "PAYPAL"])] },
        { "currencies": ["GBP"], "apps": [card_entry(&[])] },
    ]);
    let next = fx.add_draft("collect", &sid, json!({ "name": "Candidate", "rules": candidate })).await;
    let mut cases = spec_cases.as_array().unwrap().clone();
    cases.push(case(json!(30), "EUR", "IT")); // R1 in both
    cases.push(case(json!(200), "EUR", "FR")); // R2 in both, same methods
    cases.push(case(json!(160), "EUR", "DE")); // R2 in both
    let body = simulate(&next, json!(cases)).await.assert_status(200).clone();
    assert_eq!(body["publishedDraftId"], spec.as_str());
    let flags: Vec<bool> = body["cases"].as_array().unwrap().iter().map(|c| c["changed"].as_bool().unwrap()).collect();
    assert_eq!(flags, [false, true, false, true, true, true, false, false, false]);
    assert_eq!(body["changedCount"], 4);
    let outcome = |i: usize, side: &str| {
        let o = &body["cases"][i][side];
        (o["ruleIndex"].as_u64(), method_ids(&o["options"]))
    };
    // C1 unchanged: R2 and the same methods on both sides.
    assert_eq!(outcome(0, "published"), (Some(1), strings(&CARDS_AND_PAYPAL)));
    assert_eq!(outcome(0, "draft"), outcome(0, "published"));
    // C2: same rule, other methods.
    assert_eq!(outcome(1, "published"), (Some(2), strings(&["PAYPAL"])));
    assert_eq!(outcome(1, "draft"), (Some(2), strings(&["MAESTRO"])));
    // C4: another rule.
    assert_eq!(outcome(3, "published"), (Some(1), strings(&CARDS_AND_PAYPAL)));
    assert_eq!(outcome(3, "draft"), (Some(0), strings(&CARDS)));
    // C6: from nothing to the new GBP rule.
    assert_eq!(outcome(5, "published"), (None, Vec::new()));
    assert_eq!(outcome(5, "draft"), (Some(3), strings(&CARDS_AND_PAYPAL)));
    let c1 = &body["cases"][0];
    // The published outcome matches what the options endpoint answers today.
    let live = fx.options("collect", &sid, "amount=200&currency=EUR&country=DE").await.assert_status(200).clone();
    assert_eq!(c1["published"]["options"], live["paymentMethods"]);
    assert_eq!(c1["published"]["ruleIndex"], live["ruleIndex"]);

    // Validation: 1–500 cases, every bad field named; nothing is published by simulating.
    let before = fx.everything().await;
    assert_problems(&simulate(&next, json!([])).await, &[("CASES_REQUIRED", "cases")]);
    let path = format!("/v1/schemes/collect/{sid}/drafts/{next}/simulate");
    assert_problems(&fx.post(&path, &json!({})).await, &[("CASES_REQUIRED", "cases")]);
    let many: Vec<Value> = (0..501).map(|_| case(json!(1), "EUR", "DE")).collect();
    assert_problems(&simulate(&next, json!(many)).await, &[("TOO_MANY_CASES", "cases")]);
    let most: Vec<Value> = (0..500).map(|i| case(json!(i + 1), "EUR", "DE")).collect();
    assert_eq!(simulate(&next, json!(most)).await.assert_status(200)["cases"].as_array().unwrap().len(), 500);
    let reply = simulate(
        &next,
        json!([case(json!(1), "EUR", "DE"), case(json!("x"), "EUR", "DE"), { "amount": -1, "currency": "ABC" }]),
    )
    .await;
    assert_problems(
        &reply,
        &[
            ("INVALID_AMOUNT", "cases[1].amount"),
            ("INVALID_AMOUNT", "cases[2].amount"),
            ("INVALID_CURRENCY", "cases[2].currency"),
            ("INVALID_COUNTRY", "cases[2].country"),
        ],
    );
    assert_eq!(fx.everything().await, before);

    // Readers may simulate; others may not.
    let cs = fx.token_with(&["tenant-collect-scheme-read"]).await;
    fx.app.post(&path, &cs, &json!({ "cases": spec_cases })).await.assert_status(200);
    let ps = fx.token_with(&["tenant-payout-scheme-write", "tenant-transaction-read"]).await;
    fx.app.post(&path, &ps, &json!({ "cases": spec_cases })).await.assert_error(403, "ROLE_REQUIRED");
}

#[tokio::test]
async fn payout_simulation_compares_rewards_by_match_type() {
    let fx = Fx::new().await;
    fx.install("SANDBOX_REWARDS").await;
    let amazon = fx.group("Amazon", json!([AMAZON_UK, AMAZON_DE, AMAZON_FR])).await;
    let coffee = fx.group("Coffee", json!([STARBUCKS_EUR_10, NERO_EUR, COSTA_EUR_10, COSTA_EUR_20])).await;
    let scheme = fx
        .create("payout", json!({ "name": "Amazon", "rules": [{ "rewardGroups": [{ "rewardGroupId": amazon }] }] }))
        .await;
    let sid = scheme["schemeId"].as_str().unwrap().to_string();
    fx.publish("payout", &sid, scheme["drafts"][0]["draftId"].as_str().unwrap()).await;
    let next = fx
        .add_draft(
            "payout",
            &sid,
            json!({ "name": "More", "rules": [{
                "apps": [{ "appId": "SANDBOX_REWARDS", "excludedPaymentMethods": ["DONATION", "CASH_EQUIVALENT"] }],
                "rewardGroups": [{ "rewardGroupId": amazon, "exclusions": [AMAZON_FR] }, { "rewardGroupId": coffee }],
            }] }),
        )
        .await;
    let cases = json!([
        { "amount": 15, "currency": "EUR", "country": "DE" },
        { "amount": 15, "currency": "EUR", "country": "DE", "matchType": "max" },
        { "amount": 50, "currency": "GBP", "country": "GB" },
        { "amount": 50, "currency": "EUR", "country": "FR", "matchType": "Exact" },
    ]);
    let reply = fx.post(&format!("/v1/schemes/payout/{sid}/drafts/{next}/simulate"), &json!({ "cases": cases })).await;
    let body = reply.assert_status(200);
    let c = body["cases"].as_array().unwrap();
    assert_eq!(c[0]["matchType"], "Exact");
    assert_eq!(c[1]["matchType"], "Max");
    assert_eq!(reward_ids(&c[0]["published"]["options"]["rewards"]), strings(&[AMAZON_DE]));
    assert_eq!(reward_ids(&c[0]["draft"]["options"]["rewards"]), strings(&[AMAZON_DE, NERO_EUR]));
    assert_eq!(
        reward_ids(&c[1]["draft"]["options"]["rewards"]),
        strings(&[AMAZON_DE, STARBUCKS_EUR_10, NERO_EUR, COSTA_EUR_10])
    );
    assert_eq!(method_ids(&c[0]["draft"]["options"]["paymentMethods"]), strings(&["GIFT_CARD", "REWARD_LINK"]));
    assert_eq!(c[0]["published"]["options"]["paymentMethods"], json!([]));
    let summary = &c[0]["draft"]["options"]["rewards"][1];
    assert_eq!(summary["rewardName"], "Caffè Nero Gift Card (EUR)");
    assert_eq!(
        (summary["minValue"].clone(), summary["maxValue"].clone(), summary["fixedValue"].clone()),
        (json!(5), json!(50), Value::Null)
    );
    // GB: the same Amazon.co.uk card either way, but the rule now offers payment methods too.
    assert_eq!(reward_ids(&c[2]["draft"]["options"]["rewards"]), strings(&[AMAZON_UK]));
    assert_eq!(c[2]["changed"], true);
    // FR: amazon.fr is excluded now.
    assert_eq!(reward_ids(&c[3]["published"]["options"]["rewards"]), strings(&[AMAZON_FR]));
    assert_eq!(reward_ids(&c[3]["draft"]["options"]["rewards"]), Vec::<String>::new());
    assert_eq!(body["changedCount"], 4);
    let reply = fx
        .post(
            &format!("/v1/schemes/payout/{sid}/drafts/{next}/simulate"),
            &json!({ "cases": [{ "amount": 1, "currency": "EUR", "country": "DE", "matchType": "near" }] }),
        )
        .await;
    assert_problems(&reply, &[("INVALID_MATCH_TYPE", "cases[0].matchType")]);
}

// -------------------------------------------------------------------------------------------
// Tenancy
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn another_tenants_schemes_and_groups_are_not_found() {
    let fx = Fx::new().await;
    fx.install("SANDBOX_CARD").await;
    fx.install("SANDBOX_REWARDS").await;
    let coffee = fx.group("Coffee", json!([STARBUCKS_EUR_10])).await;
    let scheme = fx
        .create("payout", json!({ "name": "Mine", "rules": [{ "rewardGroups": [{ "rewardGroupId": coffee }] }] }))
        .await;
    let sid = scheme["schemeId"].as_str().unwrap().to_string();
    let did = scheme["drafts"][0]["draftId"].as_str().unwrap().to_string();
    fx.publish("payout", &sid, &did).await;
    let before = fx.everything().await;

    let (_other, token) = fx.other_tenant().await;
    install(&fx.app, &token, "SANDBOX_REWARDS").await;
    let body = json!({ "name": "Theirs", "rules": [{ "rewardGroups": [{ "rewardGroupId": coffee }] }],
                       "cases": [{ "amount": 10, "currency": "EUR", "country": "DE" }] });
    for (method, path, code) in [
        (Method::GET, format!("/v1/schemes/payout/{sid}"), "SCHEME_NOT_FOUND"),
        (Method::DELETE, format!("/v1/schemes/payout/{sid}"), "SCHEME_NOT_FOUND"),
        (Method::GET, format!("/v1/schemes/payout/{sid}/drafts/published"), "SCHEME_NOT_FOUND"),
        (Method::POST, format!("/v1/schemes/payout/{sid}/drafts"), "SCHEME_NOT_FOUND"),
        (Method::GET, format!("/v1/schemes/payout/{sid}/drafts/{did}"), "SCHEME_NOT_FOUND"),
        (Method::PUT, format!("/v1/schemes/payout/{sid}/drafts/{did}"), "SCHEME_NOT_FOUND"),
        (Method::DELETE, format!("/v1/schemes/payout/{sid}/drafts/{did}"), "SCHEME_NOT_FOUND"),
        (Method::POST, format!("/v1/schemes/payout/{sid}/drafts/{did}/publish"), "SCHEME_NOT_FOUND"),
        (Method::POST, format!("/v1/schemes/payout/{sid}/drafts/{did}/simulate"), "SCHEME_NOT_FOUND"),
        (
            Method::GET,
            format!("/v1/schemes/payout/{sid}/options?amount=10&currency=EUR&country=DE"),
            "SCHEME_NOT_FOUND",
        ),
    ] {
        let reply = fx.app.send(method.clone(), &path, Some(&token), &[], Some(&body)).await;
        assert_eq!(reply.code(), code, "{method} {path}: {}", reply.text);
        reply.assert_error(404, code);
    }
    assert_eq!(fx.app.get("/v1/schemes/payout", &token).await.body, json!([]));
    // Nor can its drafts name this tenant's reward group, or use apps only this tenant installed.
    let reply = fx.app.post("/v1/schemes/payout", &token, &body).await;
    assert_problems(&reply, &[("REWARD_GROUP_NOT_FOUND", "rules[0].rewardGroups[0].rewardGroupId")]);
    let reply = fx
        .app
        .post("/v1/schemes/collect", &token, &json!({ "name": "Cards", "rules": [{ "apps": [card_entry(&[])] }] }))
        .await;
    assert_problems(&reply, &[("APP_NOT_INSTALLED", "rules[0].apps[0].appId")]);
    assert_eq!(fx.everything().await, before);
}
